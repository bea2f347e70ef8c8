/* tests/fuzz/fuzz_gguf_vocab.c - the vocabulary a GGUF carries
 * (tokenizer.ggml.*: gguf.c red_gguf_tokenizer, tokenizer.c
 * red_tokenizer_from_vocab for the "gpt2" and "llama" kinds): a tokenizer
 * that loads must encode and decode. The seeds are vocabulary-only GGUFs cut
 * from llama.cpp's GPT-2 vocabulary and from the Mistral and llama2.c ones. */
#include "tok_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_gguf g;
    red_tokenizer *tok;
    red_error err;
    if (red_gguf_parse(&g, fuzz_copy(data, size), size, "fuzz.gguf", &err)) return 0;
    if (red_gguf_tokenizer(&tok, &g, &err) == RED_OK) {
        fuzz_tok_check(tok);
        red_tokenizer_free(tok);
    }
    red_gguf_close(&g);
    return 0;
}
