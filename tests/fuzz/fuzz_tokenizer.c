/* tests/fuzz/fuzz_tokenizer.c - red_tokenizer.json (tokenizer.c): a loaded
 * tokenizer must encode and decode text, and every id below its vocab must
 * have bytes. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "Question: Tom has 12 apples. He eats 3.\nAnswer: 9 \xc3\xa9t\xc3\xa9  !!";
    static char b[RED_TOKEN_MAX_BYTES];
    red_tokenizer *t;
    int ids[256], n, i;
    red_error err;
    red_sbuf out;
    fuzz_file("red_tokenizer.json", data, size);
    if (red_tokenizer_load(&t, fuzz_dir(), &err)) return 0;
    n = red_tokenize(t, text, sizeof text - 1, 1, ids, 256);
    if (n < 0 || n > 256) abort();
    red_sbuf_init(&out);
    red_detokenize(t, ids, n, &out);
    if (out.failed || out.len != sizeof text - 1 || memcmp(out.p, text, out.len)) abort();
    red_sbuf_free(&out);
    for (i = 0; i < red_tokenizer_vocab(t); i++) (void)red_token_bytes(t, i, b);
    red_tokenizer_free(t);
    return 0;
}
