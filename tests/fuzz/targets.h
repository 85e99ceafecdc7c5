/* targets.h — the fuzz targets, one line each: TARGET(name, "seed globs", body). `body` runs one input
 * (`data`, `len` bytes) through a reader, with `err` an lm_error in scope; the seed globs (from the
 * repository root) seed its corpus. tests/fuzz/CMakeLists.txt builds fuzz_<name> for each line and
 * tools/fuzz.sh reads the names and the globs from here, so a new reader is one more line.
 */
TARGET(jpeg, "tests/fixtures/jpeg/*.jpg tests/fixtures/broken/*.jpg", { lm_tensor_release(lm_jpeg_decode("fuzz.jpg", data, len, &err)); })
TARGET(png, "tests/fixtures/images/*.png tests/fixtures/broken/png_*", { lm_tensor_release(lm_png_decode("fuzz.png", data, len, &err)); })
TARGET(npy, "tests/fixtures/npy/*.npy tests/fixtures/broken/npy_*", { lm_tensor_release(lm_npy_decode("fuzz.npy", data, len, &err)); })
TARGET(safetensors, "tests/fixtures/npy/*.safetensors tests/fixtures/broken/st_*", { lm_safetensors_free(lm_safetensors_decode("fuzz.safetensors", data, len, &err)); })
TARGET(gzip, "tests/fixtures/npy/*.gz tests/fixtures/broken/gz_*", { size_t n; free(lm_gunzip_limited("fuzz.gz", data, len, &n, &err)); })
TARGET(onnx, "tests/fixtures/broken_models/*.onnx tests/fixtures/broken_models/seeds/*.onnx", { lm_onnx_free(lm_onnx_parse(data, len, "fuzz.onnx", &err)); })
TARGET(tflite, "tests/fixtures/broken_models/*.tflite tests/fixtures/broken_models/seeds/*.tflite", { lm_tflite_free(lm_tflite_parse(data, len, "fuzz.tflite", &err)); })
