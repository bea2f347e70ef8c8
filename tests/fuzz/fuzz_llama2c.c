/* tests/fuzz/fuzz_llama2c.c - llama2.c checkpoints (llama2c.c
 * red_llama2c_parse): the v0 header trusted only at the exact file size, the
 * v1/v2 "ak42" headers, Q8_0 group sizes, then every array read and the Q/K
 * rows permuted. Seeds: tiny v0, v1 and v2 files (tests/fuzz/make_corpus.sh). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_model m;
    red_error err;
    if (red_llama2c_parse(&m, data, size, "fuzz.bin", NULL, &err) == RED_OK) red_model_free(&m);
    return 0;
}
