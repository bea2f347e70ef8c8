/* tests/fuzz/fuzz_gguf.c - GGUF model files (gguf.c): the reader's checks of
 * counts, strings, types, dims, alignment and offsets, every tensor read as
 * floats, the metadata getters, then red_gguf_model_load (config from the
 * llama/qwen2 keys, rope_freqs, tensor names and shapes) and the embedded
 * tokenizer. The seeds are small models written by `red convert`. */
#include "fuzz.h"

static void read_tensors(const red_gguf *g) {
    red_error err;
    uint64_t i;
    for (i = 0; i < g->n_tensors; i++) {
        const red_gguf_tensor *t = &g->t[i];
        uint64_t numel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        float *out = malloc((size_t)(numel ? numel : 1) * sizeof *out);
        if (!out) abort();
        (void)red_gguf_tensor_f32(g, t, out, &err);
        free(out);
        if (red_gguf_find_tensor(g, t->name) == NULL) abort();
    }
}

static void read_metadata(const red_gguf *g) {
    uint64_t i, j, len;
    int64_t v;
    double f;
    for (i = 0; i < g->n_kv; i++) {
        const red_gguf_kv *kv = &g->kv[i];
        if (red_gguf_find(g, kv->key) != kv) abort();
        (void)red_gguf_get_int(g, kv->key, &v);
        (void)red_gguf_get_float(g, kv->key, &f);
        (void)red_gguf_get_str(g, kv->key);
        for (j = 0; kv->type == RED_GGUF_ARRAY && j < kv->n && j < 64; j++) {
            if (kv->elem_type == RED_GGUF_STRING) {
                const char *s = red_gguf_arr_str(g, kv, j, &len);
                if (!s || s + len > (const char *)g->file + g->len) abort();
            } else (void)red_gguf_arr_num(g, kv, j);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_gguf g;
    red_model m;
    red_tokenizer *tok;
    red_error err;
    if (red_gguf_parse(&g, fuzz_copy(data, size), size, "fuzz.gguf", &err)) return 0;
    read_metadata(&g);
    read_tensors(&g);
    if (red_gguf_model_load(&m, &g, NULL, &err) == RED_OK) red_model_free(&m);
    if (red_gguf_tokenizer(&tok, &g, &err) == RED_OK) red_tokenizer_free(tok);
    red_gguf_close(&g);
    return 0;
}
