/* tests/fuzz/fuzz_hf_tokenizer.c - Hugging Face tokenizer.json (tokenizer.c
 * load_hf): byte-level BPE (GPT-2, Llama 3, Qwen) and SentencePiece BPE
 * (Llama 2, Mistral): normalizers, the Split regex compiler, vocab, merges,
 * added tokens, post-processor, and the tokenizer_config.json beside it.
 * The input is tokenizer.json up to its first NUL byte (JSON holds none) and
 * tokenizer_config.json after it, when there is one. The seeds are the real
 * files of ../shared/data/tokenizers cut to a few hundred ids. */
#include "tok_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    char path[128];
    red_tokenizer *t;
    red_error err;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", fuzz_dir());
    if (nul) fuzz_file("tokenizer_config.json", nul + 1, size - json_len - 1);
    else (void)remove(path);
    snprintf(path, sizeof path, "%s", fuzz_file("tokenizer.json", data, json_len));
    if (red_tokenizer_load(&t, path, &err)) return 0;
    fuzz_tok_check(t);
    red_tokenizer_free(t);
    return 0;
}
