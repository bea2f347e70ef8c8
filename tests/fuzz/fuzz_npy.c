/* tests/fuzz/fuzz_npy.c - NumPy .npy (io.c red_npy_parse). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_tensor t;
    red_error err;
    if (red_npy_parse(data, size, "fuzz.npy", &t, &err) == RED_OK) red_tensor_free(&t);
    return 0;
}
