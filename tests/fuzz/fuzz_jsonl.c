/* tests/fuzz/fuzz_jsonl.c - the JSONL readers: the document loaders built on
 * red_jsonl_read (gsm8k and multiple-choice test sets, the training-data
 * formats of data.c, which also reads plain text). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static red_tokenizer *tok;
    const char *path = fuzz_file("docs.jsonl", data, size);
    red_gsm8k_doc *g;
    red_mc_doc *mc;
    int ng, nmc;
    red_train_data td;
    red_sbuf text;
    red_error err;
    if (!tok && red_tokenizer_byte_new(&tok, &err) != RED_OK) abort();
    if (red_gsm8k_load(path, &g, &ng, &err) == RED_OK) red_gsm8k_free(g, ng);
    if (red_mc_load(path, &mc, &nmc, &err) == RED_OK) red_mc_free(mc, nmc);
    memset(&td, 0, sizeof td);
    (void)red_train_data_add_file(&td, tok, path, &err);
    red_train_data_free(&td);
    red_sbuf_init(&text);
    (void)red_docs_text(path, &text, &err);
    red_sbuf_free(&text);
    return 0;
}
