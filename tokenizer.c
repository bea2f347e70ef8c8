/* tokenizer.c - text <-> token ids behind one interface.
 *
 * The embedded models use a byte-level tokenizer: ids 0-255 are the UTF-8
 * bytes themselves, then BOS, EOS and PAD (vocab 259). Which tokenizer a
 * model uses is recorded in its directory as red_tokenizer.json
 * ({"type": "byte", "bos_token_id": 256, ...}), a name Hugging Face ignores.
 * Callers only use red_tokenize / red_token_bytes / red_detokenize, so a
 * byte-level BPE (Llama-3/Qwen2 tokenizer.json) or SentencePiece-style kind
 * can be added here as another `kind` without touching them.
 */
#include "red.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void red_tokenizer_byte(red_tokenizer *t) {
    memset(t, 0, sizeof *t);
    t->kind = RED_TOK_BYTE;
    t->vocab = 259;
    t->bos_id = 256;
    t->eos_id = 257;
    t->pad_id = 258;
}

int red_tokenize(const red_tokenizer *t, const char *text, size_t len, int add_bos, int *ids, int cap) {
    int n = 0;
    size_t i;
    if (add_bos) {
        if (n < cap) ids[n] = t->bos_id;
        n++;
    }
    for (i = 0; i < len; i++) {  /* RED_TOK_BYTE: one id per byte */
        if (n < cap) ids[n] = (unsigned char)text[i];
        n++;
    }
    return n;
}

int red_token_bytes(const red_tokenizer *t, int id, char *out) {
    if (id >= 0 && id < 256) {
        out[0] = (char)id;
        return 1;
    }
    (void)t;
    return 0;  /* BOS/EOS/PAD and anything else: no text */
}

size_t red_detokenize(const red_tokenizer *t, const int *ids, int n, red_sbuf *out) {
    size_t before = out->len;
    int i;
    for (i = 0; i < n; i++) {
        char b[8];
        int k = red_token_bytes(t, ids[i], b);
        if (k) red_sbuf_put(out, b, (size_t)k);
    }
    return out->len - before;
}

red_status red_tokenizer_load(red_tokenizer *t, const char *dir, red_error *err) {
    char path[2048];
    unsigned char *buf;
    size_t len;
    red_json *j;
    const red_json *ty, *v;
    red_status st;
    snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
    if ((st = red_read_file(path, &buf, &len, err)))
        return red_error_set(err, st, "%s (a model directory records its tokenizer in red_tokenizer.json)", err ? err->msg : "");
    st = red_json_parse((const char *)buf, len, path, &j, err);
    free(buf);
    if (st) return st;
    ty = red_json_get(j, "type");
    if (!ty || ty->type != RED_JSON_STRING || strcmp(ty->str, "byte") != 0) {
        red_json_free(j);
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: \"type\" must be \"byte\" (the only tokenizer this build has)", path);
    }
    red_tokenizer_byte(t);
#define TOKID(key, field)                                                                              \
    v = red_json_get(j, key);                                                                          \
    if (v) {                                                                                           \
        if (v->type != RED_JSON_NUMBER || !v->is_int || v->ival < 256 || v->ival > 65535) {            \
            red_json_free(j);                                                                          \
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: \"%s\" must be an id >= 256", path, \
                                 v->offset, key);                                                      \
        }                                                                                              \
        t->field = (int)v->ival;                                                                       \
    }
    TOKID("bos_token_id", bos_id);
    TOKID("eos_token_id", eos_id);
    TOKID("pad_token_id", pad_id);
#undef TOKID
    t->vocab = 256;
    if (t->bos_id >= t->vocab) t->vocab = t->bos_id + 1;
    if (t->eos_id >= t->vocab) t->vocab = t->eos_id + 1;
    if (t->pad_id >= t->vocab) t->vocab = t->pad_id + 1;
    red_json_free(j);
    return RED_OK;
}

red_status red_tokenizer_save(const red_tokenizer *t, const char *dir, red_error *err) {
    char path[2048], text[256];
    int n;
    snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
    n = snprintf(text, sizeof text, "{\"type\": \"byte\", \"bos_token_id\": %d, \"eos_token_id\": %d, \"pad_token_id\": %d}\n",
                 t->bos_id, t->eos_id, t->pad_id);
    return red_write_file_atomic(path, text, (size_t)n, err);
}
