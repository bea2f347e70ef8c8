/* tokenizer.c - text <-> token ids behind one interface.
 *
 * Kinds (red.h): red's own "byte" and "bpe" (recorded in a model directory
 * as red_tokenizer.json: {"type": "byte"|"bpe", "bos_token_id": 256, ...,
 * "merges": [[a, b], ...]}, a name Hugging Face ignores), Hugging Face
 * tokenizer.json BPE (byte-level and SentencePiece-style), GGUF vocabularies
 * (red_tokenizer_from_vocab) and llama2.c's tokenizer.bin.
 *
 * One handle for all: every id has its decoded bytes (what red_token_bytes
 * returns) and its stored text (the vocabulary's key, looked up when
 * merging); merges live in a hash map (left id, right id) -> rank.
 */
#include "red.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RED_BPE_TOKEN_BYTES 32  /* red's own BPE: longest merged token */

typedef struct {
    uint32_t off, len, id;
    unsigned char special, lstrip, rstrip;
} added_token;

typedef struct tok_regex tok_regex;
static void tok_regex_free(tok_regex *re);
static red_status load_hf(red_tokenizer **out, const char *path, red_error *err);
static red_status load_llama2c(red_tokenizer **out, const char *path, red_error *err);
static int hf_encode(const red_tokenizer *t, const char *text, size_t len, int n, int *ids, int cap);
static int llama2c_encode(const red_tokenizer *t, const char *text, size_t len, int n, int *ids, int cap);

struct red_tokenizer {
    red_tok_kind kind;
    int vocab;
    int bos_id, eos_id, pad_id, unk_id, add_bos, add_eos;
    char *arena;                 /* all texts */
    size_t arena_len, arena_cap;
    uint32_t *txt_off, *txt_len; /* [vocab] decoded bytes */
    uint32_t *key_off, *key_len; /* [vocab] stored text */
    unsigned char *no_text;      /* [vocab] control tokens: decode to nothing */
    float *score;                /* [vocab] or NULL */
    int32_t *type;               /* [vocab] or NULL */
    int32_t *map;                /* stored text -> id (open addressing, -1 empty) */
    size_t map_mask;
    int n_merges, merges_cap;
    int32_t *merge;              /* [2 * n_merges] left, right */
    int32_t *merge_out;          /* [n_merges] the merged id */
    uint64_t *pair_key;          /* (left << 32 | right) -> rank */
    int32_t *pair_rank;
    size_t pair_mask;
    int byte_id[256];            /* id of each raw byte (-1 = none) */
    /* Hugging Face pipeline */
    int nfc, prepend_space, replace_space, byte_fallback, fuse_unk, ignore_merges, strip_first_space;
    tok_regex *re;
    char *model_name, *pre_name;
    int n_added;
    added_token *added;
    /* to_vocab's arrays, built on demand */
    const char **vocab_ptrs, **merge_ptrs;
};

/* ------------------------------------------------------------------ tables */

static int arena_put(red_tokenizer *t, const char *s, size_t n, uint32_t *off) {
    if (t->arena_len + n + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
        char *p;
        while (cap < t->arena_len + n + 1) cap *= 2;
        if (cap > 0xffffffffu || !(p = realloc(t->arena, cap))) return -1;
        t->arena = p;
        t->arena_cap = cap;
    }
    if (n) memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = 0;
    *off = (uint32_t)t->arena_len;
    t->arena_len += n + 1;
    return 0;
}

/* Allocates the per-id tables of a vocabulary of n ids (texts empty). */
static int tok_alloc_ids(red_tokenizer *t, int n) {
    t->vocab = n;
    t->txt_off = calloc((size_t)n + 1, sizeof(uint32_t));
    t->txt_len = calloc((size_t)n + 1, sizeof(uint32_t));
    t->key_off = calloc((size_t)n + 1, sizeof(uint32_t));
    t->key_len = calloc((size_t)n + 1, sizeof(uint32_t));
    t->no_text = calloc((size_t)n + 1, 1);
    return t->txt_off && t->txt_len && t->key_off && t->key_len && t->no_text ? 0 : -1;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int map_find(const red_tokenizer *t, const char *s, size_t n) {
    size_t h;
    if (!t->map) return -1;
    for (h = hash_bytes(s, n) & t->map_mask; t->map[h] >= 0; h = (h + 1) & t->map_mask) {
        int id = t->map[h];
        if (t->key_len[id] == n && !memcmp(t->arena + t->key_off[id], s, n)) return id;
    }
    return -1;
}

/* Indexes every id's stored text; the first id of a duplicated text wins. */
static int map_build(red_tokenizer *t) {
    size_t slots = 1024, h;
    int id;
    while (slots < (size_t)t->vocab * 2) slots *= 2;
    free(t->map);
    if (!(t->map = malloc(slots * sizeof(int32_t)))) return -1;
    memset(t->map, 0xff, slots * sizeof(int32_t));
    t->map_mask = slots - 1;
    for (id = 0; id < t->vocab; id++) {
        const char *s = t->arena + t->key_off[id];
        size_t n = t->key_len[id];
        if (map_find(t, s, n) >= 0) continue;
        for (h = hash_bytes(s, n) & t->map_mask; t->map[h] >= 0; h = (h + 1) & t->map_mask) {}
        t->map[h] = id;
    }
    return 0;
}

static size_t pair_hash(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return (size_t)(key >> 32);
}

static int pair_lookup(const red_tokenizer *t, int a, int b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t h;
    if (!t->pair_key) return -1;
    for (h = pair_hash(key) & t->pair_mask; t->pair_rank[h] >= 0; h = (h + 1) & t->pair_mask)
        if (t->pair_key[h] == key) return t->pair_rank[h];
    return -1;
}

/* Appends merge (a, b) -> out with the next rank; a repeated pair keeps its first rank. */
static int merge_add(red_tokenizer *t, int a, int b, int out) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t h;
    if (t->n_merges == t->merges_cap) {
        int cap = t->merges_cap ? 2 * t->merges_cap : 1024;
        int32_t *m = realloc(t->merge, sizeof(int32_t) * 2 * (size_t)cap), *o;
        if (!m) return -1;
        t->merge = m;
        if (!(o = realloc(t->merge_out, sizeof(int32_t) * (size_t)cap))) return -1;
        t->merge_out = o;
        t->merges_cap = cap;
    }
    if (!t->pair_key || (size_t)t->n_merges * 2 >= t->pair_mask) {  /* grow and rehash */
        size_t slots = t->pair_key ? 2 * (t->pair_mask + 1) : 4096;
        uint64_t *k = malloc(slots * sizeof(uint64_t));
        int32_t *r = malloc(slots * sizeof(int32_t));
        int i;
        if (!k || !r) {
            free(k);
            free(r);
            return -1;
        }
        memset(r, 0xff, slots * sizeof(int32_t));
        free(t->pair_key);
        free(t->pair_rank);
        t->pair_key = k;
        t->pair_rank = r;
        t->pair_mask = slots - 1;
        for (i = 0; i < t->n_merges; i++) {
            uint64_t kk = (uint64_t)(uint32_t)t->merge[2 * i] << 32 | (uint32_t)t->merge[2 * i + 1];
            for (h = pair_hash(kk) & t->pair_mask; t->pair_rank[h] >= 0; h = (h + 1) & t->pair_mask) {}
            if (pair_lookup(t, t->merge[2 * i], t->merge[2 * i + 1]) >= 0) continue;
            t->pair_key[h] = kk;
            t->pair_rank[h] = i;
        }
    }
    t->merge[2 * t->n_merges] = a;
    t->merge[2 * t->n_merges + 1] = b;
    t->merge_out[t->n_merges] = out;
    for (h = pair_hash(key) & t->pair_mask; t->pair_rank[h] >= 0; h = (h + 1) & t->pair_mask)
        if (t->pair_key[h] == key) break;
    if (t->pair_rank[h] < 0) {
        t->pair_key[h] = key;
        t->pair_rank[h] = t->n_merges;
    }
    t->n_merges++;
    return 0;
}

static red_tokenizer *tok_new(red_tok_kind kind) {
    red_tokenizer *t = calloc(1, sizeof *t);
    int i;
    if (!t) return NULL;
    t->kind = kind;
    t->bos_id = t->eos_id = t->pad_id = t->unk_id = -1;
    for (i = 0; i < 256; i++) t->byte_id[i] = -1;
    return t;
}

void red_tokenizer_free(red_tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->txt_off);
    free(t->txt_len);
    free(t->key_off);
    free(t->key_len);
    free(t->no_text);
    free(t->score);
    free(t->type);
    free(t->map);
    free(t->merge);
    free(t->merge_out);
    free(t->pair_key);
    free(t->pair_rank);
    free(t->model_name);
    free(t->pre_name);
    free(t->added);
    free(t->vocab_ptrs);
    free(t->merge_ptrs);
    tok_regex_free(t->re);
    free(t);
}

red_tok_kind red_tokenizer_kind(const red_tokenizer *t) { return t->kind; }
int red_tokenizer_vocab(const red_tokenizer *t) { return t->vocab; }
int red_tokenizer_bos(const red_tokenizer *t) { return t->bos_id; }
int red_tokenizer_eos(const red_tokenizer *t) { return t->eos_id; }
int red_tokenizer_pad(const red_tokenizer *t) { return t->pad_id; }
int red_tokenizer_add_bos(const red_tokenizer *t) { return t->add_bos; }
int red_tokenizer_add_eos(const red_tokenizer *t) { return t->add_eos; }
int red_tokenizer_n_merges(const red_tokenizer *t) { return t->n_merges; }

int red_tokenizer_merge(const red_tokenizer *t, int i, int *a, int *b) {
    if (i < 0 || i >= t->n_merges) return 0;
    *a = t->merge[2 * i];
    *b = t->merge[2 * i + 1];
    return 1;
}

static red_status nomem(red_error *err) { return red_error_set(err, RED_E_NOMEM, "tokenizer: out of memory"); }

/* ------------------------------------------------------------------ red's byte and BPE kinds */

/* The byte tokenizer's 259 ids with room for n_extra more (red BPE). */
static red_tokenizer *byte_tokenizer(int n_extra) {
    red_tokenizer *t = tok_new(RED_TOK_BYTE);
    int i;
    if (!t || tok_alloc_ids(t, 259 + n_extra)) {
        red_tokenizer_free(t);
        return NULL;
    }
    t->vocab = 259;
    t->bos_id = 256;
    t->eos_id = 257;
    t->pad_id = 258;
    for (i = 0; i < 259; i++) {
        char c = (char)i;
        if (arena_put(t, &c, i < 256, &t->txt_off[i])) {
            red_tokenizer_free(t);
            return NULL;
        }
        t->txt_len[i] = i < 256;
        t->no_text[i] = i >= 256;
        t->key_off[i] = t->txt_off[i];
        t->key_len[i] = t->txt_len[i];
        if (i < 256) t->byte_id[i] = i;
    }
    return t;
}

red_status red_tokenizer_byte_new(red_tokenizer **out, red_error *err) {
    if (!(*out = byte_tokenizer(0))) return nomem(err);
    return RED_OK;
}

/* red BPE: merge i makes id 259 + i from ids a and b. */
static int red_bpe_add(red_tokenizer *t, int a, int b) {
    int id = 259 + t->n_merges;
    char buf[2 * RED_BPE_TOKEN_BYTES];
    size_t la = t->txt_len[a], lb = t->txt_len[b];
    memcpy(buf, t->arena + t->txt_off[a], la);
    memcpy(buf + la, t->arena + t->txt_off[b], lb);
    if (arena_put(t, buf, la + lb, &t->txt_off[id])) return -1;
    t->txt_len[id] = (uint32_t)(la + lb);
    t->key_off[id] = t->txt_off[id];
    t->key_len[id] = t->txt_len[id];
    if (merge_add(t, a, b, id)) return -1;
    t->vocab = id + 1;
    return 0;
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
static int red_bpe_chunk(const red_tokenizer *t, const char *s, size_t n, int *ids) {
    int k = (int)n, i, j;
    for (i = 0; i < k; i++) ids[i] = (unsigned char)s[i];
    for (;;) {
        int best = -1, bi = -1, a, b;
        for (i = 0; i + 1 < k; i++) {
            int r = pair_lookup(t, ids[i], ids[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                bi = i;
            }
        }
        if (best < 0) return k;
        a = t->merge[2 * best];
        b = t->merge[2 * best + 1];
        for (i = bi, j = bi; i < k; i++, j++) {
            if (i + 1 < k && ids[i] == a && ids[i + 1] == b) {
                ids[j] = t->merge_out[best];
                i++;
            } else ids[j] = ids[i];
        }
        k = j;
    }
}

static int red_tokenize_own(const red_tokenizer *t, const char *text, size_t len, int n, int *ids, int cap) {
    size_t i;
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
        k = red_bpe_chunk(t, text + i, c, buf);
        for (j = 0; j < k; j++, n++)
            if (n < cap) ids[n] = buf[j];
        i += c;
    }
    return n;
}

/* Chunk table for training: unique chunks with counts, as id sequences. */
typedef struct {
    int *ids;          /* all chunks' ids, concatenated */
    size_t *start;     /* [n + 1] */
    int64_t *count;
    size_t n;
} chunk_set;

/* Unique chunks (longer than one byte: single bytes cannot merge) with counts. */
static red_status count_chunks(chunk_set *cs, const char *text, size_t len, red_error *err) {
    size_t cap = 1 << 16, i, slots = 1 << 18;
    size_t *slot_of = calloc(slots, sizeof(size_t));  /* hash of chunk text -> chunk index + 1 */
    red_status st = RED_OK;
    cs->ids = malloc(cap * 16 * sizeof(int));
    cs->start = malloc((cap + 1) * sizeof(size_t));
    cs->count = malloc(cap * sizeof(int64_t));
    if (!slot_of || !cs->ids || !cs->start || !cs->count) {
        free(slot_of);
        return nomem(err);
    }
    cs->start[0] = 0;
    for (i = 0; i < len;) {
        size_t c = chunk_len(text, len, i), h = 1469598103934665603ull, k;
        if (c > 256) c = 256;
        if (c >= 2) {
            for (k = 0; k < c; k++) h = (h ^ (unsigned char)text[i + k]) * 1099511628211ull;
            for (h &= slots - 1;; h = (h + 1) & (slots - 1)) {
                size_t e = slot_of[h];
                if (!e) {
                    if (cs->n == cap || cs->start[cs->n] + c > cap * 16 || cs->n * 2 >= slots) {
                        st = red_error_set(err, RED_E_NOMEM, "tokenizer: more than %zu distinct chunks", cap);
                        goto out;
                    }
                    for (k = 0; k < c; k++) cs->ids[cs->start[cs->n] + k] = (unsigned char)text[i + k];
                    cs->start[cs->n + 1] = cs->start[cs->n] + c;
                    cs->count[cs->n] = 1;
                    slot_of[h] = ++cs->n;
                    break;
                }
                e--;
                if (cs->start[e + 1] - cs->start[e] == c) {
                    for (k = 0; k < c && cs->ids[cs->start[e] + k] == (unsigned char)text[i + k]; k++) {}
                    if (k == c) {
                        cs->count[e]++;
                        break;
                    }
                }
            }
        }
        i += c;
    }
out:
    free(slot_of);
    return st;
}

/* Applies merge (ba, bb) -> V to every chunk, then drops the freed slots. */
static void apply_merge(chunk_set *cs, int ba, int bb, int V) {
    size_t c, w = 0, prev = cs->start[0];
    for (c = 0; c < cs->n; c++) {  /* in place; chunks only shrink */
        size_t r = cs->start[c], wr = cs->start[c], e = cs->start[c + 1];
        for (; r < e; r++, wr++) {
            if (r + 1 < e && cs->ids[r] == ba && cs->ids[r + 1] == bb) {
                cs->ids[wr] = V;
                r++;
            } else cs->ids[wr] = cs->ids[r];
        }
        for (; wr < e; wr++) cs->ids[wr] = -1;  /* padding, skipped below */
    }
    for (c = 0; c < cs->n; c++) {  /* compact so pairs stay adjacent */
        size_t r, e = cs->start[c + 1];
        cs->start[c] = w;
        for (r = prev; r < e; r++)
            if (cs->ids[r] >= 0) cs->ids[w++] = cs->ids[r];
        prev = e;
    }
    cs->start[cs->n] = w;
}

red_status red_tokenizer_train_bpe(red_tokenizer **out, const char *text, size_t len, int vocab, red_error *err) {
    chunk_set cs;
    int64_t *pc = NULL;
    uint32_t *pk = NULL;
    red_status st = RED_OK;
    red_tokenizer *t;
    *out = NULL;
    if (vocab < 259 || vocab > RED_BPE_MAX_VOCAB)
        return red_error_set(err, RED_E_ARG, "tokenizer: vocab must be in 259..%d", RED_BPE_MAX_VOCAB);
    if (!(t = byte_tokenizer(vocab - 259))) return nomem(err);
    t->kind = RED_TOK_BPE;
    memset(&cs, 0, sizeof cs);
    if ((st = count_chunks(&cs, text, len, err))) goto out;
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
                    t->txt_len[a] + t->txt_len[b] <= RED_BPE_TOKEN_BYTES) {
                    best = pc[k];
                    ba = a;
                    bb = b;
                }
            }
        if (ba < 0) break;  /* no pair occurs twice */
        if (red_bpe_add(t, ba, bb)) {
            st = nomem(err);
            goto out;
        }
        apply_merge(&cs, ba, bb, V);
    }
out:
    free(pc);
    free(pk);
    free(cs.ids);
    free(cs.start);
    free(cs.count);
    if (st) red_tokenizer_free(t);
    else *out = t;
    return st;
}

/* DIR/red_tokenizer.json (the file is already parsed into j). */
static red_status load_red_json(red_tokenizer **out, const red_json *j, const char *path, red_error *err) {
    const red_json *ty = red_json_get(j, "type"), *v, *mg = red_json_get(j, "merges"), *e;
    red_tokenizer *t;
    size_t i;
    if (!ty || ty->type != RED_JSON_STRING || (strcmp(ty->str, "byte") && strcmp(ty->str, "bpe")))
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: \"type\" must be \"byte\" or \"bpe\"", path);
    if (!strcmp(ty->str, "bpe") && (!mg || mg->type != RED_JSON_ARRAY || mg->count > RED_BPE_MAX_VOCAB - 259))
        return red_error_set(err, RED_E_FORMAT, "%s: \"merges\" must be an array of at most %d [a, b] pairs", path,
                             RED_BPE_MAX_VOCAB - 259);
    if (!(t = byte_tokenizer(strcmp(ty->str, "bpe") ? 0 : (int)mg->count))) return nomem(err);
    if (!strcmp(ty->str, "bpe")) {
        t->kind = RED_TOK_BPE;
        for (i = 0, e = mg->child; e; e = e->next, i++) {
            const red_json *a = red_json_at(e, 0), *b = red_json_at(e, 1);
            int lim = 259 + (int)i;  /* a merge joins earlier ids only */
            if (e->type != RED_JSON_ARRAY || e->count != 2 || !a->is_int || !b->is_int || a->ival < 0 || b->ival < 0 ||
                a->ival >= lim || b->ival >= lim || (a->ival >= 256 && a->ival < 259) || (b->ival >= 256 && b->ival < 259) ||
                t->txt_len[a->ival] + t->txt_len[b->ival] > RED_BPE_TOKEN_BYTES) {
                red_tokenizer_free(t);
                return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: merge %zu must join two earlier non-special ids "
                                     "into at most %d bytes", path, e->offset, i, RED_BPE_TOKEN_BYTES);
            }
            if (red_bpe_add(t, (int)a->ival, (int)b->ival)) {
                red_tokenizer_free(t);
                return nomem(err);
            }
        }
    }
#define TOKID(key, field)                                                                              \
    v = red_json_get(j, key);                                                                          \
    if (v) {                                                                                           \
        if (v->type != RED_JSON_NUMBER || !v->is_int || v->ival < 256 || v->ival > 65535) {            \
            red_tokenizer_free(t);                                                                     \
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: \"%s\" must be an id >= 256", path, \
                                 v->offset, key);                                                      \
        }                                                                                              \
        t->field = (int)v->ival;                                                                       \
    }
    TOKID("bos_token_id", bos_id);
    TOKID("eos_token_id", eos_id);
    TOKID("pad_token_id", pad_id);
#undef TOKID
    {   /* ids beyond the merges (a special id placed higher) get empty texts */
        int V = t->kind == RED_TOK_BPE ? 259 + t->n_merges : 256, top = V, k;
        if (t->bos_id >= top) top = t->bos_id + 1;
        if (t->eos_id >= top) top = t->eos_id + 1;
        if (t->pad_id >= top) top = t->pad_id + 1;
        if (top > 259 + t->n_merges) {
            unsigned char *nt = realloc(t->no_text, (size_t)top + 1);
            uint32_t *p[4];
            int q;
            p[0] = realloc(t->txt_off, ((size_t)top + 1) * 4); if (p[0]) t->txt_off = p[0];
            p[1] = realloc(t->txt_len, ((size_t)top + 1) * 4); if (p[1]) t->txt_len = p[1];
            p[2] = realloc(t->key_off, ((size_t)top + 1) * 4); if (p[2]) t->key_off = p[2];
            p[3] = realloc(t->key_len, ((size_t)top + 1) * 4); if (p[3]) t->key_len = p[3];
            if (nt) t->no_text = nt;
            for (q = 0; q < 4; q++)
                if (!p[q] || !nt) {
                    red_tokenizer_free(t);
                    return nomem(err);
                }
            for (k = 259 + t->n_merges; k < top; k++) {
                t->txt_off[k] = t->key_off[k] = 0;
                t->txt_len[k] = t->key_len[k] = 0;
                t->no_text[k] = 1;
            }
        }
        t->vocab = top;
    }
    *out = t;
    return RED_OK;
}

red_status red_tokenizer_save(const red_tokenizer *t, const char *dir, red_error *err) {
    char path[2048];
    red_sbuf b;
    red_status st;
    int i;
    if (t->kind != RED_TOK_BYTE && t->kind != RED_TOK_BPE)
        return red_error_set(err, RED_E_UNSUPPORTED, "tokenizer: only red's own tokenizers are written as red_tokenizer.json");
    snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
    red_sbuf_init(&b);
    red_sbuf_printf(&b, "{\"type\": \"%s\", \"bos_token_id\": %d, \"eos_token_id\": %d, \"pad_token_id\": %d",
                    t->kind == RED_TOK_BPE ? "bpe" : "byte", t->bos_id, t->eos_id, t->pad_id);
    if (t->kind == RED_TOK_BPE) {
        red_sbuf_puts(&b, ",\n \"merges\": [");
        for (i = 0; i < t->n_merges; i++)
            red_sbuf_printf(&b, "%s[%d, %d]", i ? (i % 12 ? ", " : ",\n  ") : "", t->merge[2 * i], t->merge[2 * i + 1]);
        red_sbuf_puts(&b, "]");
    }
    red_sbuf_puts(&b, "}\n");
    st = b.failed ? nomem(err) : red_write_file_atomic(path, b.p, b.len, err);
    red_sbuf_free(&b);
    return st;
}

/* ------------------------------------------------------------------ one interface */

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static red_status load_json_file(const char *path, red_json **j, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status st = red_read_file(path, &buf, &len, err);
    if (st) return st;
    st = red_json_parse((const char *)buf, len, path, j, err);
    free(buf);
    return st;
}

red_status red_tokenizer_load(red_tokenizer **out, const char *path, red_error *err) {
    char p[4096];
    red_json *j;
    red_status st;
    *out = NULL;
    if (is_dir(path)) {
        snprintf(p, sizeof p, "%s/red_tokenizer.json", path);
        if (file_exists(p)) {
            if ((st = load_json_file(p, &j, err))) return st;
            st = load_red_json(out, j, p, err);
            red_json_free(j);
            return st;
        }
        snprintf(p, sizeof p, "%s/tokenizer.json", path);
        if (file_exists(p)) return load_hf(out, p, err);
        snprintf(p, sizeof p, "%s/tokenizer.bin", path);
        if (file_exists(p)) return load_llama2c(out, p, err);
        return red_error_set(err, RED_E_IO, "%s: no red_tokenizer.json, tokenizer.json or tokenizer.bin in the directory "
                             "(a model directory records its tokenizer in one of them)", path);
    }
    if (ends_with(path, ".gguf"))
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: reading a tokenizer from a .gguf is not supported yet", path);
    if (ends_with(path, ".json")) {
        if (ends_with(path, "red_tokenizer.json")) {
            if ((st = load_json_file(path, &j, err))) return st;
            st = load_red_json(out, j, path, err);
            red_json_free(j);
            return st;
        }
        return load_hf(out, path, err);
    }
    if (!file_exists(path)) return red_error_set(err, RED_E_IO, "%s: no such tokenizer file or directory", path);
    return load_llama2c(out, path, err);
}

int red_tokenize(const red_tokenizer *t, const char *text, size_t len, int add_bos, int *ids, int cap) {
    int n = 0;
    if (add_bos && t->bos_id >= 0) {
        if (n < cap) ids[n] = t->bos_id;
        n++;
    }
    if (t->kind == RED_TOK_BYTE || t->kind == RED_TOK_BPE) return red_tokenize_own(t, text, len, n, ids, cap);
    if (t->kind == RED_TOK_LLAMA2C) return llama2c_encode(t, text, len, n, ids, cap);
    return hf_encode(t, text, len, n, ids, cap);
}

int red_token_bytes(const red_tokenizer *t, int id, char *out) {
    size_t n;
    if (id < 0 || id >= t->vocab || t->no_text[id]) return 0;  /* BOS/EOS/PAD and anything else: no text */
    n = t->txt_len[id];
    if (n > RED_TOKEN_MAX_BYTES) n = RED_TOKEN_MAX_BYTES;
    memcpy(out, t->arena + t->txt_off[id], n);
    return (int)n;
}

size_t red_detokenize(const red_tokenizer *t, const int *ids, int n, red_sbuf *out) {
    size_t before = out->len;
    int i, first = 1;
    for (i = 0; i < n; i++) {
        const char *s;
        size_t k;
        int id = ids[i];
        if (id < 0 || id >= t->vocab) continue;
        s = t->arena + t->txt_off[id];
        k = t->no_text[id] ? 0 : t->txt_len[id];
        /* SentencePiece decoders drop the space the encoder put in front;
         * llama2.c's run.c drops it after BOS only */
        if (k && *s == ' ' && ((t->strip_first_space && first) ||
                               (t->kind == RED_TOK_LLAMA2C && i > 0 && ids[i - 1] == t->bos_id))) {
            s++;
            k--;
        }
        if (k) red_sbuf_put(out, s, k);
        if (!(t->no_text[id] && t->kind == RED_TOK_SPM_BPE)) first = 0;
    }
    return out->len - before;
}

/* ------------------------------------------------------------------ (next: Hugging Face, GGUF, llama2.c) */

static void tok_regex_free(tok_regex *re) { (void)re; }

static red_status load_hf(red_tokenizer **out, const char *path, red_error *err) {
    (void)out;
    return red_error_set(err, RED_E_UNSUPPORTED, "%s: tokenizer.json is not supported yet", path);
}

static red_status load_llama2c(red_tokenizer **out, const char *path, red_error *err) {
    (void)out;
    return red_error_set(err, RED_E_UNSUPPORTED, "%s: llama2.c tokenizer.bin is not supported yet", path);
}

static int hf_encode(const red_tokenizer *t, const char *text, size_t len, int n, int *ids, int cap) {
    (void)t; (void)text; (void)len; (void)ids; (void)cap;
    return n;
}

static int llama2c_encode(const red_tokenizer *t, const char *text, size_t len, int n, int *ids, int cap) {
    (void)t; (void)text; (void)len; (void)ids; (void)cap;
    return n;
}

red_status red_tokenizer_from_vocab(red_tokenizer **out, const red_vocab_spec *s, red_error *err) {
    (void)s;
    (void)map_build;
    *out = NULL;
    return red_error_set(err, RED_E_UNSUPPORTED, "tokenizer: vocabularies from arrays are not supported yet");
}

red_status red_tokenizer_to_vocab(const red_tokenizer *t, red_vocab_spec *s, red_error *err) {
    (void)t;
    memset(s, 0, sizeof *s);
    return red_error_set(err, RED_E_UNSUPPORTED, "tokenizer: not supported yet");
}
