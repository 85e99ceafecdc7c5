/* gz.c — whole files in and out of memory, and gzip decompression (zlib) with a cap on the
 * output so that a small hostile file cannot make us allocate gigabytes. The readers' defaults are
 * the limits file_bytes and inflated_bytes (limits.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lumen.h"

/* The message for a file over max_len bytes (size: its size, or 0 when it does not tell), naming
 * the limit when max_len is one. */
static void *too_large(const char *path, size_t max_len, int limit, uint64_t size, lm_error *err) {
  if (limit < 0) return lm_fail_null(err, "%s: file is larger than the %zu-byte limit", path, max_len);
  if (size)
    lm_limit_fail(err, (lm_limit)limit, size > INT64_MAX ? INT64_MAX : (int64_t)size, path, "the file (%llu bytes)",
                  (unsigned long long)size);
  else
    lm_limit_fail(err, (lm_limit)limit, (int64_t)max_len + 1, path, "the file (more than %zu bytes)", max_len);
  return NULL;
}

/* Opened without blocking (a FIFO nobody writes to would block open() for ever), then read blocking:
 * such a FIFO then reads as empty. Devices (/dev/zero) are refused before reading, and pipes too when
 * regular_only. */
static void *read_file(const char *path, size_t *len, size_t max_len, int limit, int regular_only, lm_error *err) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    if (fd >= 0) close(fd);
    return lm_fail_null(err, "%s: cannot open: %s", path, strerror(e));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  struct stat st;
  if (fstat(fileno(f), &st) != 0)
    st.st_size = 0;
  else if (S_ISDIR(st.st_mode)) {
    fclose(f);
    return lm_fail_null(err, "%s: is a directory", path);
  } else if (!S_ISREG(st.st_mode) && (regular_only || !S_ISFIFO(st.st_mode))) { /* /dev/zero never ends */
    fclose(f);
    return lm_fail_null(err, "%s: not a regular file%s", path, regular_only ? "" : " or a pipe");
  } else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_len) {
    fclose(f);
    return too_large(path, max_len, limit, (uint64_t)st.st_size, err);
  }
  /* Regular files tell their size; pipes and devices grow the buffer as they go. */
  size_t cap = (st.st_size > 0 && (uint64_t)st.st_size <= max_len) ? (size_t)st.st_size + 1 : 65536;
  size_t n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n > max_len) break;
    if (n < cap) break; /* EOF or error */
    size_t ncap = cap * 2;
    char *nb = realloc(buf, ncap);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap = ncap;
  }
  if (!buf) {
    fclose(f);
    return lm_fail_null(err, "%s: out of memory reading the file", path);
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return lm_fail_null(err, "%s: read error", path);
  }
  if (n > max_len) {
    free(buf);
    return too_large(path, max_len, limit, 0, err);
  }
  buf[n] = 0; /* n < cap always holds here */
  *len = n;
  return buf;
}

void *lm_read_file(const char *path, size_t *len, size_t max_len, lm_error *err) {
  return read_file(path, len, max_len, -1, 0, err);
}

void *lm_read_file_limited(const char *path, size_t *len, lm_error *err) {
  return read_file(path, len, (size_t)lm_limit_get(LM_LIMIT_FILE_BYTES), LM_LIMIT_FILE_BYTES, 0, err);
}

void *lm_read_text(const char *path, size_t *len, lm_error *err) {
  return read_file(path, len, (size_t)lm_limit_get(LM_LIMIT_TEXT_BYTES), LM_LIMIT_TEXT_BYTES, 1, err);
}

int lm_write_file(const char *path, int n, const void *const *bufs, const size_t *lens, lm_error *err) {
  FILE *f = fopen(path, "wb");
  if (!f) return lm_fail(err, "%s: cannot open for writing: %s", path, strerror(errno));
  int ok = 1;
  for (int i = 0; i < n && ok; i++) ok = lens[i] == 0 || fwrite(bufs[i], 1, lens[i], f) == lens[i];
  int saved = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    saved = errno;
  }
  if (ok) return 0;
  remove(path);
  return lm_fail(err, "%s: write failed: %s", path, strerror(saved));
}

/* Deflate expands at most 1032:1, so the length the gzip trailer claims (mod 2^32) is a safe first
 * guess for the output size only when it is below that bound. */
static size_t first_capacity(const unsigned char *data, size_t len, size_t max_len) {
  size_t hint = 0;
  if (len >= 18)
    hint =
        (size_t)data[len - 4] | (size_t)data[len - 3] << 8 | (size_t)data[len - 2] << 16 | (size_t)data[len - 1] << 24;
  size_t bound = len > SIZE_MAX / 1032 ? SIZE_MAX : len * 1032;
  if (hint == 0 || hint > bound) hint = len * 4;
  if (hint < 4096) hint = 4096;
  return hint > max_len ? max_len + 1 : hint + 1; /* +1: room to notice the cap and to NUL-terminate */
}

static void *gunzip(const char *name, const void *data, size_t len, size_t *out_len, size_t max_len, int limit,
                    lm_error *err) {
  const unsigned char *in = data;
  if (len < 2 || in[0] != 0x1f || in[1] != 0x8b) return lm_fail_null(err, "%s: not a gzip file (bad magic)", name);
  size_t cap = first_capacity(in, len, max_len), n = 0, pos = 0;
  unsigned char *out = malloc(cap);
  if (!out) return lm_fail_null(err, "%s: out of memory (%zu bytes)", name, cap);
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapper only */
    free(out);
    return lm_fail_null(err, "%s: cannot start zlib", name);
  }
  const char *why = NULL; /* set on failure */
  while (!why) {
    if (n == cap) {
      if (n > max_len) break;
      size_t ncap = cap > max_len / 2 ? max_len + 1 : cap * 2;
      unsigned char *nb = realloc(out, ncap);
      if (!nb) {
        why = "out of memory";
        break;
      }
      out = nb;
      cap = ncap;
    }
    /* zlib counts in uInt: at most 1 GiB in and out per call. */
    size_t in_chunk = len - pos < (1u << 30) ? len - pos : (1u << 30);
    size_t out_chunk = cap - n < (1u << 30) ? cap - n : (1u << 30);
    z.next_in = (Bytef *)(in + pos);
    z.avail_in = (uInt)in_chunk;
    z.next_out = out + n;
    z.avail_out = (uInt)out_chunk;
    int rc = inflate(&z, Z_NO_FLUSH);
    pos += in_chunk - z.avail_in;
    n += out_chunk - z.avail_out;
    if (rc == Z_STREAM_END) {
      if (pos == len) break;
      /* Another gzip member may follow; anything else is garbage. */
      if (len - pos < 2 || in[pos] != 0x1f || in[pos + 1] != 0x8b)
        why = "trailing data after the gzip stream";
      else
        inflateReset(&z);
    } else if (rc == Z_BUF_ERROR && pos == len) {
      why = "truncated gzip stream";
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      why = rc == Z_MEM_ERROR ? "out of memory" : z.msg ? z.msg : "corrupt gzip stream";
    }
  }
  inflateEnd(&z);
  if (!why && n > max_len) {
    free(out);
    if (limit >= 0) {
      lm_limit_fail(err, (lm_limit)limit, (int64_t)max_len + 1, name, "the decompressed data (more than %zu bytes)",
                    max_len);
      return NULL;
    }
    return lm_fail_null(err, "%s: decompressed size exceeds the %zu-byte limit", name, max_len);
  }
  if (!why && n == cap) { /* room for the terminating NUL */
    unsigned char *nb = realloc(out, cap + 1);
    if (nb)
      out = nb;
    else
      why = "out of memory";
  }
  if (why) {
    free(out);
    return lm_fail_null(err, "%s: corrupt gzip data (%s)", name, why);
  }
  out[n] = 0;
  *out_len = n;
  return out;
}

void *lm_gunzip(const char *name, const void *data, size_t len, size_t *out_len, size_t max_len, lm_error *err) {
  return gunzip(name, data, len, out_len, max_len, -1, err);
}

void *lm_gunzip_limited(const char *name, const void *data, size_t len, size_t *out_len, lm_error *err) {
  return gunzip(name, data, len, out_len, (size_t)lm_limit_get(LM_LIMIT_INFLATED_BYTES), LM_LIMIT_INFLATED_BYTES, err);
}

void *lm_gunzip_file(const char *path, size_t *len, size_t max_len, lm_error *err) {
  size_t n;
  void *raw = lm_read_file_limited(path, &n, err);
  if (!raw) return NULL;
  void *out = max_len ? lm_gunzip(path, raw, n, len, max_len, err) : lm_gunzip_limited(path, raw, n, len, err);
  free(raw);
  return out;
}

void *lm_read_file_maybe_gz(const char *path, size_t *len, lm_error *err) {
  size_t n;
  unsigned char *raw = lm_read_file_limited(path, &n, err);
  if (!raw) return NULL;
  if (n < 2 || raw[0] != 0x1f || raw[1] != 0x8b) {
    *len = n;
    return raw;
  }
  void *out = lm_gunzip_limited(path, raw, n, len, err);
  free(raw);
  return out;
}
