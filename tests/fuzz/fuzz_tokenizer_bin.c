/* tests/fuzz/fuzz_tokenizer_bin.c - llama2.c's tokenizer.bin (tokenizer.c,
 * through red_tokenizer_load of a path that is neither a directory nor .json):
 * records of score, length, bytes; the encoder of run.c on what loads. */
#include "tok_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_tokenizer *t;
    red_error err;
    if (red_tokenizer_load(&t, fuzz_file("tokenizer.bin", data, size), &err)) return 0;
    fuzz_tok_check(t);
    red_tokenizer_free(t);
    return 0;
}
