/* sha256.c — SHA-256 for manifests (hashes of recipes, models, inputs and outputs), computed by nettle
 * (Debian nettle-dev), a well-kept library; tests/lua/sys_spec.lua checks it against the NIST vectors. */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lumen.h"

static void hex_digest(struct sha256_ctx *ctx, char out[65]) {
  static const char digits[] = "0123456789abcdef";
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_digest(ctx, sizeof d, d);
  for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[64] = 0;
}

void lm_sha256_data(const void *data, size_t len, char out[65]) {
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, len, data);
  hex_digest(&ctx, out);
}

int lm_sha256_file(const char *path, char out[65], lm_error *err) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below then refuses it. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return lm_fail(err, "%s: cannot open for reading (%s)", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return lm_fail(err, "%s: not a regular file", path);
  }
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return lm_fail(err, "%s: read error (%s)", path, strerror(e));
    }
    sha256_update(&ctx, (size_t)n, buf);
  }
  close(fd);
  hex_digest(&ctx, out);
  return 0;
}
