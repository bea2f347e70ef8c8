/* tokenizer.c - text <-> token ids behind one interface.
 *
 * Two kinds. "byte": ids 0-255 are the UTF-8 bytes themselves, then BOS,
 * EOS and PAD (vocab 259). "bpe": the same 259 ids plus merged tokens learned
 * on a corpus (red_tokenizer_train_bpe), with a fixed pre-split into chunks
 * that no merge crosses (red.h describes it); digits are never merged, so
 * numbers are spelled digit by digit. Which tokenizer a model uses is
 * recorded in its directory as red_tokenizer.json ({"type": "byte"|"bpe",
 * "bos_token_id": 256, ..., "merges": [[a, b], ...]}), a name Hugging Face
 * ignores. Callers only use red_tokenize / red_token_bytes / red_detokenize.
 */
#include "red.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void red_tokenizer_byte(red_tokenizer *t) {
    int i;
    memset(t, 0, sizeof *t);
    t->kind = RED_TOK_BYTE;
    t->vocab = 259;
    t->bos_id = 256;
    t->eos_id = 257;
    t->pad_id = 258;
    for (i = 0; i < 256; i++) {
        t->tok_len[i] = 1;
        t->tok_text[i][0] = (char)i;
    }
}

/* ------------------------------------------------------------------ BPE */

#define PAIR_SLOTS (2 * RED_BPE_MAX_VOCAB)

static uint32_t pair_hash(uint32_t key) {
    key *= 2654435761u;
    return key >> 20;  /* PAIR_SLOTS = 4096 = 2^12 */
}

static void pair_insert(red_tokenizer *t, int a, int b, int rank) {
    uint32_t key = (uint32_t)a << 16 | (uint32_t)b, h = pair_hash(key) & (PAIR_SLOTS - 1);
    while (t->pair_rank[h] >= 0) h = (h + 1) & (PAIR_SLOTS - 1);
    t->pair_key[h] = key;
    t->pair_rank[h] = (int16_t)rank;
}

static int pair_lookup(const red_tokenizer *t, int a, int b) {
    uint32_t key = (uint32_t)a << 16 | (uint32_t)b, h = pair_hash(key) & (PAIR_SLOTS - 1);
    while (t->pair_rank[h] >= 0) {
        if (t->pair_key[h] == key) return t->pair_rank[h];
        h = (h + 1) & (PAIR_SLOTS - 1);
    }
    return -1;
}

/* Rebuilds token texts and the pair map from merge[0..n_merges). */
static void bpe_index(red_tokenizer *t) {
    int i;
    for (i = 0; i < PAIR_SLOTS; i++) t->pair_rank[i] = -1;
    for (i = 0; i < t->n_merges; i++) {
        int a = t->merge[i][0], b = t->merge[i][1], id = 259 + i;
        memcpy(t->tok_text[id], t->tok_text[a], t->tok_len[a]);
        memcpy(t->tok_text[id] + t->tok_len[a], t->tok_text[b], t->tok_len[b]);
        t->tok_len[id] = (unsigned char)(t->tok_len[a] + t->tok_len[b]);
        pair_insert(t, a, b, i);
    }
    t->vocab = 259 + t->n_merges;
}

static int char_class(unsigned char c) {  /* 0 letter (and UTF-8), 1 digit, 2 space, 3 newline, 4 other */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return 0;
    if (c >= '0' && c <= '9') return 1;
    if (c == ' ') return 2;
    if (c == '\n') return 3;
    return 4;
}

/* Length of the chunk starting at text[i]. */
static size_t chunk_len(const char *text, size_t len, size_t i) {
    int c = char_class((unsigned char)text[i]);
    size_t j = i + 1;
    if (c == 1 || c == 3) return 1;
    if (c == 2) {  /* a space joins the letter or symbol run after it */
        if (j < len) {
            int d = char_class((unsigned char)text[j]);
            if (d == 0 || d == 4) {
                c = d;
                j++;
            } else {
                while (j < len && text[j] == ' ') j++;
                return j - i;
            }
        } else return 1;
    }
    while (j < len && char_class((unsigned char)text[j]) == c) j++;
    return j - i;
}

/* Merges within one chunk: repeatedly the lowest-rank adjacent pair (all its
 * non-overlapping occurrences, left to right). */
static int bpe_chunk(const red_tokenizer *t, const char *s, size_t n, int *ids) {
    int k = (int)n, i, j;
    for (i = 0; i < k; i++) ids[i] = (unsigned char)s[i];
    for (;;) {
        int best = -1, bi = -1;
        for (i = 0; i + 1 < k; i++) {
            int r = pair_lookup(t, ids[i], ids[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                bi = i;
            }
        }
        if (best < 0) return k;
        for (i = bi, j = bi; i < k; i++, j++) {
            if (i + 1 < k && ids[i] == t->merge[best][0] && ids[i + 1] == t->merge[best][1]) {
                ids[j] = 259 + best;
                i++;
            } else ids[j] = ids[i];
        }
        k = j;
    }
}

int red_tokenize(const red_tokenizer *t, const char *text, size_t len, int add_bos, int *ids, int cap) {
    int n = 0;
    size_t i;
    if (add_bos) {
        if (n < cap) ids[n] = t->bos_id;
        n++;
    }
    if (t->kind == RED_TOK_BYTE) {
        for (i = 0; i < len; i++) {  /* one id per byte */
            if (n < cap) ids[n] = (unsigned char)text[i];
            n++;
        }
        return n;
    }
    for (i = 0; i < len;) {
        size_t c = chunk_len(text, len, i);
        int buf[256], k, j;
        if (c > 256) c = 256;  /* very long runs are split; merges never cross 256 bytes */
        k = bpe_chunk(t, text + i, c, buf);
        for (j = 0; j < k; j++, n++)
            if (n < cap) ids[n] = buf[j];
        i += c;
    }
    return n;
}

int red_token_bytes(const red_tokenizer *t, int id, char *out) {
    if (id >= 0 && id < 256) {
        out[0] = (char)id;
        return 1;
    }
    /* merged ids only: special ids may lie past the merge tables */
    if (t->kind == RED_TOK_BPE && id >= 259 && id < 259 + t->n_merges) {
        memcpy(out, t->tok_text[id], t->tok_len[id]);
        return t->tok_len[id];
    }
    return 0;  /* BOS/EOS/PAD and anything else: no text */
}

/* Chunk table for training: unique chunks with counts, as id sequences. */
typedef struct {
    int *ids;          /* all chunks' ids, concatenated */
    size_t *start;     /* [n + 1] */
    int64_t *count;
    size_t n;
} chunk_set;

red_status red_tokenizer_train_bpe(red_tokenizer *t, const char *text, size_t len, int vocab, red_error *err) {
    size_t cap = 1 << 16, i, slots = 1 << 18, total = 0;
    size_t *slot_of = calloc(slots, sizeof(size_t));  /* hash of chunk text -> chunk index + 1 */
    chunk_set cs;
    int64_t *pc = NULL;
    uint32_t *pk = NULL;
    red_status st = RED_OK;
    if (vocab < 259 || vocab > RED_BPE_MAX_VOCAB)
        return red_error_set(err, RED_E_ARG, "tokenizer: vocab must be in 259..%d", RED_BPE_MAX_VOCAB);
    red_tokenizer_byte(t);
    t->kind = RED_TOK_BPE;
    memset(&cs, 0, sizeof cs);
    cs.ids = malloc(cap * 16 * sizeof(int));
    cs.start = malloc((cap + 1) * sizeof(size_t));
    cs.count = malloc(cap * sizeof(int64_t));
    if (!slot_of || !cs.ids || !cs.start || !cs.count) {
        st = red_error_set(err, RED_E_NOMEM, "tokenizer: out of memory");
        goto out;
    }
    cs.start[0] = 0;
    /* unique chunks (longer than one byte: single bytes cannot merge) */
    for (i = 0; i < len;) {
        size_t c = chunk_len(text, len, i), h, k;
        uint64_t fnv = 1469598103934665603ull;  /* 64-bit FNV-1a, also where size_t is 32 bits */
        if (c > 256) c = 256;
        if (c >= 2) {
            for (k = 0; k < c; k++) fnv = (fnv ^ (unsigned char)text[i + k]) * 1099511628211ull;
            for (h = (size_t)fnv & (slots - 1);; h = (h + 1) & (slots - 1)) {
                size_t e = slot_of[h];
                if (!e) {
                    if (cs.n == cap || cs.start[cs.n] + c > cap * 16 || cs.n * 2 >= slots) {
                        st = red_error_set(err, RED_E_NOMEM, "tokenizer: more than %zu distinct chunks", cap);
                        goto out;
                    }
                    for (k = 0; k < c; k++) cs.ids[cs.start[cs.n] + k] = (unsigned char)text[i + k];
                    cs.start[cs.n + 1] = cs.start[cs.n] + c;
                    cs.count[cs.n] = 1;
                    slot_of[h] = ++cs.n;
                    break;
                }
                e--;
                if (cs.start[e + 1] - cs.start[e] == c) {
                    for (k = 0; k < c && cs.ids[cs.start[e] + k] == (unsigned char)text[i + k]; k++) {}
                    if (k == c) {
                        cs.count[e]++;
                        break;
                    }
                }
            }
        }
        total += c;
        i += c;
    }
    /* pair counts in an open-addressing table (key a << 16 | b), rebuilt per merge */
#define PC_SLOTS ((size_t)1 << 18)
    pc = malloc(PC_SLOTS * sizeof(int64_t));
    pk = malloc(PC_SLOTS * sizeof(uint32_t));
    if (!pc || !pk) {
        st = red_error_set(err, RED_E_NOMEM, "tokenizer: out of memory for pair counts");
        goto out;
    }
    while (259 + t->n_merges < vocab) {
        int V = 259 + t->n_merges, ba = -1, bb = -1;
        int64_t best = 1;
        size_t c, k, used = 0;
        memset(pc, 0, PC_SLOTS * sizeof(int64_t));
        for (c = 0; c < cs.n; c++)
            for (k = cs.start[c]; k + 1 < cs.start[c + 1]; k++) {
                uint32_t key = (uint32_t)cs.ids[k] << 16 | (uint32_t)cs.ids[k + 1];
                size_t h = (size_t)(key * 2654435761u) & (PC_SLOTS - 1);
                while (pc[h] && pk[h] != key) h = (h + 1) & (PC_SLOTS - 1);
                if (!pc[h]) {
                    if (++used * 2 > PC_SLOTS) {
                        st = red_error_set(err, RED_E_NOMEM, "tokenizer: too many distinct pairs");
                        goto out;
                    }
                    pk[h] = key;
                }
                pc[h] += cs.count[c];
            }
        for (k = 0; k < PC_SLOTS; k++)
            if (pc[k] > 1) {
                int a = (int)(pk[k] >> 16), b = (int)(pk[k] & 0xffff);
                /* most frequent; ties to the lower (a, b) */
                if ((pc[k] > best || (pc[k] == best && ba >= 0 && (a < ba || (a == ba && b < bb)))) &&
                    t->tok_len[a] + t->tok_len[b] <= RED_TOKEN_MAX_BYTES) {
                    best = pc[k];
                    ba = a;
                    bb = b;
                }
            }
        if (ba < 0) break;  /* no pair occurs twice */
        t->merge[t->n_merges][0] = (int16_t)ba;
        t->merge[t->n_merges][1] = (int16_t)bb;
        t->n_merges++;
        bpe_index(t);
        for (c = 0; c < cs.n; c++) {  /* apply the merge in place; chunks only shrink */
            size_t r = cs.start[c], w = cs.start[c], e = cs.start[c + 1];
            for (; r < e; r++, w++) {
                if (r + 1 < e && cs.ids[r] == ba && cs.ids[r + 1] == bb) {
                    cs.ids[w] = V;
                    r++;
                } else cs.ids[w] = cs.ids[r];
            }
            for (; w < e; w++) cs.ids[w] = -1;  /* padding, skipped below */
        }
        /* compact: drop the padding so pairs stay adjacent */
        {
            size_t w = 0, c2;
            size_t prev = cs.start[0];
            for (c2 = 0; c2 < cs.n; c2++) {
                size_t r, e = cs.start[c2 + 1];
                cs.start[c2] = w;
                for (r = prev; r < e; r++)
                    if (cs.ids[r] >= 0) cs.ids[w++] = cs.ids[r];
                prev = e;
            }
            cs.start[cs.n] = w;
        }
    }
    bpe_index(t);
    (void)total;
out:
    free(pc);
    free(pk);
    free(slot_of);
    free(cs.ids);
    free(cs.start);
    free(cs.count);
    return st;
}

size_t red_detokenize(const red_tokenizer *t, const int *ids, int n, red_sbuf *out) {
    size_t before = out->len;
    int i;
    for (i = 0; i < n; i++) {
        char b[RED_TOKEN_MAX_BYTES];
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
    if (!ty || ty->type != RED_JSON_STRING || (strcmp(ty->str, "byte") && strcmp(ty->str, "bpe"))) {
        red_json_free(j);
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: \"type\" must be \"byte\" or \"bpe\"", path);
    }
    red_tokenizer_byte(t);
    if (!strcmp(ty->str, "bpe")) {
        const red_json *mg = red_json_get(j, "merges"), *e;
        size_t i;
        if (!mg || mg->type != RED_JSON_ARRAY || mg->count > RED_BPE_MAX_VOCAB - 259) {
            red_json_free(j);
            return red_error_set(err, RED_E_FORMAT, "%s: \"merges\" must be an array of at most %d [a, b] pairs", path,
                                 RED_BPE_MAX_VOCAB - 259);
        }
        t->kind = RED_TOK_BPE;
        for (i = 0, e = mg->child; e; e = e->next, i++) {
            const red_json *a = red_json_at(e, 0), *b = red_json_at(e, 1);
            int lim = 259 + (int)i;  /* a merge joins earlier ids only */
            if (e->type != RED_JSON_ARRAY || e->count != 2 || !a->is_int || !b->is_int || a->ival < 0 || b->ival < 0 ||
                a->ival >= lim || b->ival >= lim || (a->ival >= 256 && a->ival < 259) || (b->ival >= 256 && b->ival < 259) ||
                t->tok_len[a->ival] + t->tok_len[b->ival] > RED_TOKEN_MAX_BYTES) {
                size_t off = e->offset;
                red_json_free(j);
                return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: merge %zu must join two earlier non-special ids "
                                     "into at most %d bytes", path, off, i, RED_TOKEN_MAX_BYTES);
            }
            t->merge[i][0] = (int16_t)a->ival;
            t->merge[i][1] = (int16_t)b->ival;
            t->n_merges = (int)i + 1;
            bpe_index(t);  /* token lengths of the earlier merges are needed above */
        }
        bpe_index(t);
    }
#define TOKID(key, field)                                                                              \
    v = red_json_get(j, key);                                                                          \
    if (v) {                                                                                           \
        /* a special id equal to a merged id would decode as that token's text */                   \
        if (v->type != RED_JSON_NUMBER || !v->is_int || v->ival < 256 || v->ival > 65535 ||            \
            (v->ival >= 259 && v->ival < 259 + t->n_merges)) {                                         \
            size_t off = v->offset;  /* v is freed with j */                                           \
            red_json_free(j);                                                                          \
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: \"%s\" must be an id >= 256 and not " \
                                 "a merged token's", path, off, key);                                  \
        }                                                                                              \
        t->field = (int)v->ival;                                                                       \
    }
    TOKID("bos_token_id", bos_id);
    TOKID("eos_token_id", eos_id);
    TOKID("pad_token_id", pad_id);
#undef TOKID
    t->vocab = t->kind == RED_TOK_BPE ? 259 + t->n_merges : 256;
    if (t->bos_id >= t->vocab) t->vocab = t->bos_id + 1;
    if (t->eos_id >= t->vocab) t->vocab = t->eos_id + 1;
    if (t->pad_id >= t->vocab) t->vocab = t->pad_id + 1;
    red_json_free(j);
    return RED_OK;
}

red_status red_tokenizer_save(const red_tokenizer *t, const char *dir, red_error *err) {
    char path[2048];
    red_sbuf b;
    red_status st;
    int i;
    snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
    red_sbuf_init(&b);
    red_sbuf_printf(&b, "{\"type\": \"%s\", \"bos_token_id\": %d, \"eos_token_id\": %d, \"pad_token_id\": %d",
                    t->kind == RED_TOK_BPE ? "bpe" : "byte", t->bos_id, t->eos_id, t->pad_id);
    if (t->kind == RED_TOK_BPE) {
        red_sbuf_puts(&b, ",\n \"merges\": [");
        for (i = 0; i < t->n_merges; i++)
            red_sbuf_printf(&b, "%s[%d, %d]", i ? (i % 12 ? ", " : ",\n  ") : "", t->merge[i][0], t->merge[i][1]);
        red_sbuf_puts(&b, "]");
    }
    red_sbuf_puts(&b, "}\n");
    st = b.failed ? red_error_set(err, RED_E_NOMEM, "tokenizer: out of memory") : red_write_file_atomic(path, b.p, b.len, err);
    red_sbuf_free(&b);
    return st;
}
