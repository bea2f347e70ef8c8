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
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"

#include <pthread.h>
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
static uint32_t byte_to_char(int b);
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
    uint32_t *sto_off, *sto_len; /* [vocab] text as the vocabulary stores it (GPT-2 byte mapping, U+2581) */
    /* Hugging Face pipeline: normalizers, pre-tokenizer, model options */
    int n_norm;
    struct { int op; uint32_t a_off, a_len, b_off, b_len; } norm[8];  /* NORM_* with strings in the arena */
    tok_regex *re;               /* Split pattern (NULL: the segment is one piece) */
    int split_removed;           /* Split behavior "Removed" instead of "Isolated" */
    int metaspace, ms_scheme, ms_split; /* Metaspace pre-tokenizer: prepend never 0 / first 1 / always 2, split at U+2581 */
    uint32_t ms_off, ms_len;     /* its replacement character */
    int byte_level, bl_prefix_space, byte_fallback, fuse_unk, ignore_merges, strip_first_space;
    const unsigned char *bmp;    /* BMP categories for the pattern (shared, static) */
    int16_t char_byte[324];      /* GPT-2's byte mapping reversed (-1: not a byte's character) */
    char *model_name, *pre_name;
    int n_added;
    added_token *added;
    unsigned char added_first[256]; /* some added token starts with this byte */
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
    for (i = 0; i < 324; i++) t->char_byte[i] = -1;
    for (i = 0; i < 256; i++) t->char_byte[byte_to_char(i)] = (int16_t)i;
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
    free(t->sto_off);
    free(t->sto_len);
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
        size_t c = chunk_len(text, len, i), h, k;
        uint64_t fnv = 1469598103934665603ull;  /* 64-bit FNV-1a, also where size_t is 32 bits */
        if (c > 256) c = 256;
        if (c >= 2) {
            for (k = 0; k < c; k++) fnv = (fnv ^ (unsigned char)text[i + k]) * 1099511628211ull;
            for (h = (size_t)fnv & (slots - 1);; h = (h + 1) & (slots - 1)) {
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

/* Pair counts over all chunks in an open-addressing table (key a << 16 | b), rebuilt per merge. */
#define PC_SLOTS ((size_t)1 << 18)
static red_status count_pairs(const chunk_set *cs, int64_t *pc, uint32_t *pk, red_error *err) {
    size_t c, k, used = 0;
    memset(pc, 0, PC_SLOTS * sizeof(int64_t));
    for (c = 0; c < cs->n; c++)
        for (k = cs->start[c]; k + 1 < cs->start[c + 1]; k++) {
            uint32_t key = (uint32_t)cs->ids[k] << 16 | (uint32_t)cs->ids[k + 1];
            size_t h = (size_t)(key * 2654435761u) & (PC_SLOTS - 1);
            while (pc[h] && pk[h] != key) h = (h + 1) & (PC_SLOTS - 1);
            if (!pc[h]) {
                if (++used * 2 > PC_SLOTS) return red_error_set(err, RED_E_NOMEM, "tokenizer: too many distinct pairs");
                pk[h] = key;
            }
            pc[h] += cs->count[c];
        }
    return RED_OK;
}

/* The pair to merge next: the most frequent one occurring at least twice whose text fits a token,
 * ties to the lower (a, b); *ba < 0 when there is none. */
static void best_pair(const red_tokenizer *t, const int64_t *pc, const uint32_t *pk, int *ba, int *bb) {
    int64_t best = 1;
    size_t k;
    *ba = *bb = -1;
    for (k = 0; k < PC_SLOTS; k++)
        if (pc[k] > 1) {
            int a = (int)(pk[k] >> 16), b = (int)(pk[k] & 0xffff);
            if ((pc[k] > best || (pc[k] == best && *ba >= 0 && (a < *ba || (a == *ba && b < *bb)))) &&
                t->txt_len[a] + t->txt_len[b] <= RED_BPE_TOKEN_BYTES) {
                best = pc[k];
                *ba = a;
                *bb = b;
            }
        }
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
    pc = malloc(PC_SLOTS * sizeof(int64_t));
    pk = malloc(PC_SLOTS * sizeof(uint32_t));
    if (!pc || !pk) {
        st = red_error_set(err, RED_E_NOMEM, "tokenizer: out of memory for pair counts");
        goto out;
    }
    while (259 + t->n_merges < vocab) {
        int V = 259 + t->n_merges, ba, bb;
        if ((st = count_pairs(&cs, pc, pk, err))) goto out;
        best_pair(t, pc, pk, &ba, &bb);
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
#undef PC_SLOTS

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
        /* a special id equal to a merged id would decode as that token's text */                   \
        if (v->type != RED_JSON_NUMBER || !v->is_int || v->ival < 256 || v->ival > 65535 ||            \
            (v->ival >= 259 && v->ival < 259 + t->n_merges)) {                                         \
            size_t off = v->offset;                                                                    \
            red_tokenizer_free(t);                                                                     \
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: \"%s\" must be an id >= 256 and not " \
                                 "a merged token's", path, off, key);                                  \
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

/* ------------------------------------------------------------------ Unicode */

/* unicode.c (generated by data/make_unicode.py) */
extern const int red_uc_n_cat, red_uc_n_ccc, red_uc_n_dec, red_uc_n_comp, red_uc_n_second;
extern const uint32_t red_uc_cat_start[], red_uc_ccc[][2], red_uc_dec[][3], red_uc_comp[][3], red_uc_second[];
extern const unsigned char red_uc_cat[];

/* General category codes of unicode.c: 0 Cn, 1-5 L*, 6-8 M*, 9-11 N*, 12-18 P*, 19-22 S*, 23-25 Z*, 26-29 C*. */
#define CAT_BIT(c) (1u << (c))
#define MASK_L 0x3Eu
#define MASK_M 0x1C0u
#define MASK_N 0xE00u
#define MASK_P 0x7F000u
#define MASK_S 0x780000u
#define MASK_Z 0x3800000u
#define MASK_C (0x3C000000u | 1u)

static int uc_category(uint32_t c) {
    int lo = 0, hi = red_uc_n_cat - 1;
    while (lo < hi) {  /* the last range starting at or before c */
        int mid = (lo + hi + 1) / 2;
        if (red_uc_cat_start[mid] <= c) lo = mid;
        else hi = mid - 1;
    }
    return red_uc_cat[lo];
}

/* Category of every BMP code point, looked up per character by the
 * pre-tokenizer: one read-only table per process, filled on first use (a
 * table per tokenizer cost more than loading a small vocabulary). */
static unsigned char bmp_table[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void bmp_fill(void) {
    int i, r;
    for (r = 0; r < red_uc_n_cat && red_uc_cat_start[r] < 0x10000; r++) {
        uint32_t end = r + 1 < red_uc_n_cat ? red_uc_cat_start[r + 1] : 0x110000;
        for (i = (int)red_uc_cat_start[r]; i < (int)end && i < 0x10000; i++) bmp_table[i] = red_uc_cat[r];
    }
}

static const unsigned char *bmp_categories(void) {
    return pthread_once(&bmp_once, bmp_fill) == 0 ? bmp_table : NULL;
}

/* White_Space (Oniguruma's \s for Unicode text). */
static int uc_space(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Decodes one UTF-8 character at s[0..n) (n >= 1); an invalid byte is one
 * character of its own, U+FFFD for classification, kept as it is. */
static int utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    uint32_t c = s[0], min;
    int k, i;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xE0) == 0xC0) { k = 2; c &= 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { k = 3; c &= 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { k = 4; c &= 0x07; min = 0x10000; }
    else { *cp = 0xFFFD; return 1; }
    if ((size_t)k > n) { *cp = 0xFFFD; return 1; }
    for (i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = 0xFFFD; return 1; }
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) { *cp = 0xFFFD; return 1; }
    *cp = c;
    return k;
}

static int utf8_put(uint32_t c, char *o) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | c >> 6); o[1] = (char)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12); o[1] = (char)(0x80 | (c >> 6 & 63)); o[2] = (char)(0x80 | (c & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18); o[1] = (char)(0x80 | (c >> 12 & 63)); o[2] = (char)(0x80 | (c >> 6 & 63));
    o[3] = (char)(0x80 | (c & 63));
    return 4;
}

/* ------------------------------------------------------------------ NFC */

#define HANGUL_S 0xAC00
#define HANGUL_L 0x1100
#define HANGUL_V 0x1161
#define HANGUL_T 0x11A7
#define HANGUL_NS 11172
#define HANGUL_NT 28

static int uc_ccc(uint32_t c) {
    int lo = 0, hi = red_uc_n_ccc - 1;
    if (c < 0x300) return 0;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (red_uc_ccc[mid][0] == c) return (int)red_uc_ccc[mid][1];
        if (red_uc_ccc[mid][0] < c) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

static int uc_dec_index(uint32_t c) {
    int lo = 0, hi = red_uc_n_dec - 1;
    if (c < 0xC0) return -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (red_uc_dec[mid][0] == c) return mid;
        if (red_uc_dec[mid][0] < c) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static uint32_t uc_compose(uint32_t a, uint32_t b) {
    int lo = 0, hi = red_uc_n_comp - 1;
    if (a >= HANGUL_L && a < HANGUL_L + 19 && b >= HANGUL_V && b < HANGUL_V + 21)
        return HANGUL_S + ((a - HANGUL_L) * 21 + (b - HANGUL_V)) * HANGUL_NT;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_NS && (a - HANGUL_S) % HANGUL_NT == 0 && b > HANGUL_T &&
        b < HANGUL_T + HANGUL_NT)
        return a + (b - HANGUL_T);
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (red_uc_comp[mid][0] == a && red_uc_comp[mid][1] == b) return red_uc_comp[mid][2];
        if (red_uc_comp[mid][0] < a || (red_uc_comp[mid][0] == a && red_uc_comp[mid][1] < b)) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

/* Full canonical decomposition of c appended to out[*n] (cap checked by the caller: at most 4 per char). */
static void decompose(uint32_t c, uint32_t *out, size_t *n) {
    int k;
    if (c >= HANGUL_S && c < HANGUL_S + HANGUL_NS) {
        uint32_t s = c - HANGUL_S;
        out[(*n)++] = HANGUL_L + s / (21 * HANGUL_NT);
        out[(*n)++] = HANGUL_V + s % (21 * HANGUL_NT) / HANGUL_NT;
        if (s % HANGUL_NT) out[(*n)++] = HANGUL_T + s % HANGUL_NT;
        return;
    }
    if ((k = uc_dec_index(c)) < 0) {
        out[(*n)++] = c;
        return;
    }
    decompose(red_uc_dec[k][1], out, n);
    if (red_uc_dec[k][2]) decompose(red_uc_dec[k][2], out, n);
}

static int uc_second(uint32_t c) {
    int lo = 0, hi = red_uc_n_second - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (red_uc_second[mid] == c) return 1;
        if (red_uc_second[mid] < c) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

/* A character NFC may change or combine with its neighbour: text without any is already NFC. */
static int nfc_maybe(uint32_t c) {
    if (c < 0xC0) return 0;
    return uc_dec_index(c) >= 0 || uc_ccc(c) || uc_second(c) || (c >= HANGUL_V && c < HANGUL_T + HANGUL_NT) ||
           (c >= HANGUL_S && c < HANGUL_S + HANGUL_NS);
}

/* NFC of s[0..n) into a new buffer (*out, *out_n); returns 0, or 1 when s is already NFC (nothing allocated), -1 out of memory. */
static int nfc(const char *s, size_t n, char **out, size_t *out_n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i, m = 0, k;
    uint32_t *cps, c;
    int need = 0, len;
    char *o;
    for (i = 0; i < n; i += (size_t)len) {
        len = utf8_next(u + i, n - i, &c);
        if (nfc_maybe(c)) {
            need = 1;
            break;
        }
    }
    if (!need) return 1;
    if (!(cps = malloc(sizeof(uint32_t) * (4 * n + 1)))) return -1;
    for (i = 0; i < n; i += (size_t)len) {  /* decompose; invalid bytes stay as 0x80000000 | byte */
        len = utf8_next(u + i, n - i, &c);
        if (c == 0xFFFD && len == 1) cps[m++] = 0x80000000u | u[i];
        else decompose(c, cps, &m);
    }
    for (i = 1; i < m; i++) {  /* canonical order: stable sort of each run of non-starters by class */
        int cc = cps[i] & 0x80000000u ? 0 : uc_ccc(cps[i]);
        if (!cc) continue;
        for (k = i; k > 0; k--) {
            int pc = cps[k - 1] & 0x80000000u ? 0 : uc_ccc(cps[k - 1]);
            uint32_t tmp;
            if (pc <= cc) break;
            tmp = cps[k];
            cps[k] = cps[k - 1];
            cps[k - 1] = tmp;
        }
    }
    /* compose: a character joins the last starter unless a character between
     * them has class 0 or a class >= its own (then it is blocked) */
    if (m) {
        size_t w = 1, starter = uc_ccc(cps[0]) ? (size_t)-1 : 0;
        int last_cc = -1;  /* class of the last character kept since the starter; -1 = none */
        for (i = 1; i < m; i++) {
            uint32_t ch = cps[i], comp;
            int cc = uc_ccc(ch);
            if (starter != (size_t)-1 && (last_cc == -1 || last_cc < cc) && (comp = uc_compose(cps[starter], ch))) {
                cps[starter] = comp;
                continue;
            }
            if (cc == 0) {
                starter = w;
                last_cc = -1;
            } else last_cc = cc;
            cps[w++] = ch;
        }
        m = w;
    }
    if (!(o = malloc(4 * m + 1))) {
        free(cps);
        return -1;
    }
    for (i = 0, k = 0; i < m; i++) {
        if (cps[i] & 0x80000000u) o[k++] = (char)(cps[i] & 0xFF);
        else k += (size_t)utf8_put(cps[i], o + k);
    }
    free(cps);
    *out = o;
    *out_n = k;
    return 0;
}

/* ------------------------------------------------------------------ pre-tokenizer patterns */

/* A small backtracking matcher for the Split patterns of GPT-2, Llama-3 and
 * Qwen (Oniguruma semantics: leftmost alternative first, greedy
 * quantifiers): alternation, (?:...) (?i:...) (...) groups, (?=...) (?!...)
 * lookahead, classes [...] [^...] with ranges, \p{..} \P{..} general
 * categories, \s \S \d \D \w \W, ".", and the quantifiers ? * + {n} {n,}
 * {n,m} on single characters and classes. Anything else is rejected when
 * the tokenizer loads. Nodes continue with `next`; a sequence ends in the
 * node its parent links it to. */
enum { RX_END, RX_JOIN, RX_SET, RX_ALT, RX_LOOK };
enum { IT_RANGE, IT_CAT, IT_SPACE };

typedef struct {
    int kind, neg;
    uint32_t lo, hi;   /* RANGE; CAT: lo = category mask */
} rx_item;

typedef struct {
    int type, next;
    int negate, ci, min, max;  /* SET: one character of the class, min..max times (max -1: any) */
    int item0, n_items;
    int br0, n_br;             /* ALT: branches[br0 .. br0 + n_br) */
    int sub, neg;              /* LOOK */
} rx_node;

struct tok_regex {
    char *pat;                 /* the pattern as given */
    rx_node *node;
    int n_node, cap_node;
    rx_item *item;
    int n_item, cap_item;
    int *branch;
    int n_branch, cap_branch;
    int start;
};

typedef struct {
    const char *p, *end, *pat;
    tok_regex *re;
    char err[200];
} rx_parser;

static void tok_regex_free(tok_regex *re) {
    if (!re) return;
    free(re->pat);
    free(re->node);
    free(re->item);
    free(re->branch);
    free(re);
}

static int rx_new_node(rx_parser *ps, int type) {
    tok_regex *re = ps->re;
    if (re->n_node == re->cap_node) {
        int cap = re->cap_node ? 2 * re->cap_node : 64;
        rx_node *n = realloc(re->node, sizeof *n * (size_t)cap);
        if (!n) return -1;
        re->node = n;
        re->cap_node = cap;
    }
    memset(&re->node[re->n_node], 0, sizeof(rx_node));
    re->node[re->n_node].type = type;
    re->node[re->n_node].next = -1;
    return re->n_node++;
}

static int rx_add_item(rx_parser *ps, int kind, int neg, uint32_t lo, uint32_t hi) {
    tok_regex *re = ps->re;
    if (re->n_item == re->cap_item) {
        int cap = re->cap_item ? 2 * re->cap_item : 64;
        rx_item *n = realloc(re->item, sizeof *n * (size_t)cap);
        if (!n) return -1;
        re->item = n;
        re->cap_item = cap;
    }
    re->item[re->n_item].kind = kind;
    re->item[re->n_item].neg = neg;
    re->item[re->n_item].lo = lo;
    re->item[re->n_item].hi = hi;
    re->n_item++;
    return 0;
}

static int rx_fail(rx_parser *ps, const char *what) {
    snprintf(ps->err, sizeof ps->err, "%s at pattern offset %d", what, (int)(ps->p - ps->pat));
    return -1;
}

static uint32_t rx_getc(rx_parser *ps) {
    uint32_t c;
    ps->p += utf8_next((const unsigned char *)ps->p, (size_t)(ps->end - ps->p), &c);
    return c;
}

/* \p{Name}: the category mask of a name (L, Lu, N, Nd, P, ...); 0 if unknown. */
static uint32_t rx_category_mask(const char *name, size_t n) {
    static const char *const cats[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps",
                                       "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
    int i;
    if (n == 1) {
        switch (name[0]) {
        case 'L': return MASK_L;
        case 'M': return MASK_M;
        case 'N': return MASK_N;
        case 'P': return MASK_P;
        case 'S': return MASK_S;
        case 'Z': return MASK_Z;
        case 'C': return MASK_C;
        default: return 0;
        }
    }
    for (i = 0; i < 30; i++)
        if (n == 2 && !memcmp(cats[i], name, 2)) return CAT_BIT(i);
    return 0;
}

/* One escape after '\' as class items; returns 0, or -1 on an unknown escape. */
static int rx_escape(rx_parser *ps) {
    uint32_t c;
    if (ps->p >= ps->end) return rx_fail(ps, "pattern ends after '\\'");
    c = rx_getc(ps);
    switch (c) {
    case 'p': case 'P': {
        const char *name = ps->p + 1, *close;
        uint32_t mask;
        if (ps->p >= ps->end || *ps->p != '{' || !(close = memchr(ps->p, '}', (size_t)(ps->end - ps->p))))
            return rx_fail(ps, "\\p needs {Name}");
        mask = rx_category_mask(name, (size_t)(close - name));
        if (!mask) return rx_fail(ps, "unknown Unicode category in \\p{...}");
        ps->p = close + 1;
        return rx_add_item(ps, IT_CAT, c == 'P', mask, 0);
    }
    case 's': return rx_add_item(ps, IT_SPACE, 0, 0, 0);
    case 'S': return rx_add_item(ps, IT_SPACE, 1, 0, 0);
    case 'd': return rx_add_item(ps, IT_CAT, 0, CAT_BIT(9), 0);
    case 'D': return rx_add_item(ps, IT_CAT, 1, CAT_BIT(9), 0);
    case 'w': case 'W': return rx_add_item(ps, IT_CAT, c == 'W', MASK_L | MASK_M | CAT_BIT(9) | CAT_BIT(12), 0);
    case 'r': c = '\r'; break;
    case 'n': c = '\n'; break;
    case 't': c = '\t'; break;
    case 'f': c = '\f'; break;
    case 'v': c = '\v'; break;
    case 'x': {
        uint32_t v = 0;
        int k = 0, brace = ps->p < ps->end && *ps->p == '{';
        if (brace) ps->p++;
        while (ps->p < ps->end && k < (brace ? 8 : 2)) {
            char h = *ps->p;
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) break;
            v = v * 16 + (uint32_t)d;
            ps->p++;
            k++;
        }
        if (!k || (brace && (ps->p >= ps->end || *ps->p++ != '}'))) return rx_fail(ps, "bad \\x escape");
        c = v;
        break;
    }
    default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            return rx_fail(ps, "unsupported escape");
        break;  /* an escaped symbol stands for itself */
    }
    return rx_add_item(ps, IT_RANGE, 0, c, c);
}

/* [...] after '['. */
static int rx_class(rx_parser *ps, int node) {
    rx_node *n;
    int first = 1;
    ps->re->node[node].item0 = ps->re->n_item;
    if (ps->p < ps->end && *ps->p == '^') {
        ps->re->node[node].negate = 1;
        ps->p++;
    }
    for (;;) {
        uint32_t c;
        if (ps->p >= ps->end) return rx_fail(ps, "unterminated [...]");
        if (*ps->p == ']' && !first) {
            ps->p++;
            break;
        }
        first = 0;
        if (*ps->p == '[') return rx_fail(ps, "nested classes are not supported");
        if (*ps->p == '\\') {
            ps->p++;
            if (rx_escape(ps)) return -1;
        } else {
            c = rx_getc(ps);
            if (rx_add_item(ps, IT_RANGE, 0, c, c)) return -1;
        }
        /* a range a-z (the '-' before ']' is a literal) */
        if (ps->p + 1 < ps->end && ps->p[0] == '-' && ps->p[1] != ']') {
            rx_item *lo = &ps->re->item[ps->re->n_item - 1];
            uint32_t hi;
            if (lo->kind != IT_RANGE) return rx_fail(ps, "range from a class escape");
            ps->p++;
            if (*ps->p == '\\') {
                ps->p++;
                if (rx_escape(ps)) return -1;
                ps->re->n_item--;
                hi = ps->re->item[ps->re->n_item].lo;
                if (ps->re->item[ps->re->n_item].kind != IT_RANGE) return rx_fail(ps, "range to a class escape");
            } else hi = rx_getc(ps);
            lo = &ps->re->item[ps->re->n_item - 1];
            if (hi < lo->lo) return rx_fail(ps, "reversed range");
            lo->hi = hi;
        }
    }
    n = &ps->re->node[node];
    n->n_items = ps->re->n_item - n->item0;
    return 0;
}

static int rx_alt(rx_parser *ps, int ci, int *first, int *last);

/* Quantifier after an atom: ? * + {n} {n,} {n,m}. */
static int rx_quant(rx_parser *ps, int node) {
    rx_node *n = &ps->re->node[node];
    n->min = n->max = 1;
    if (ps->p >= ps->end) return 0;
    switch (*ps->p) {
    case '?': n->min = 0; n->max = 1; ps->p++; break;
    case '*': n->min = 0; n->max = -1; ps->p++; break;
    case '+': n->min = 1; n->max = -1; ps->p++; break;
    case '{': {
        long a = 0, b;
        const char *q = ps->p + 1;
        if (q >= ps->end || *q < '0' || *q > '9') return 0;  /* a literal '{' */
        while (q < ps->end && *q >= '0' && *q <= '9' && a < 100000) a = a * 10 + (*q++ - '0');
        b = a;
        if (q < ps->end && *q == ',') {
            q++;
            b = -1;
            if (q < ps->end && *q >= '0' && *q <= '9')
                for (b = 0; q < ps->end && *q >= '0' && *q <= '9' && b < 100000; q++) b = b * 10 + (*q - '0');
        }
        if (q >= ps->end || *q != '}' || (b >= 0 && b < a)) return rx_fail(ps, "bad {n,m} quantifier");
        n->min = (int)a;
        n->max = (int)b;
        ps->p = q + 1;
        break;
    }
    default: return 0;
    }
    if (ps->p < ps->end && (*ps->p == '?' || *ps->p == '+')) return rx_fail(ps, "lazy and possessive quantifiers are not supported");
    return 0;
}

/* A sequence up to '|' or ')' (or the end); *first = -1 when empty. */
static int rx_seq(rx_parser *ps, int ci, int *first, int *last) {
    *first = *last = -1;
    while (ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
        int a, b;
        char c = *ps->p;
        if (c == '(') {
            int look = -1;
            int inner_ci = ci;
            ps->p++;
            if (ps->p < ps->end && *ps->p == '?') {
                ps->p++;
                if (ps->p < ps->end && *ps->p == ':') ps->p++;
                else if (ps->p < ps->end && (*ps->p == '=' || *ps->p == '!')) look = *ps->p++ == '!';
                else if (ps->p + 1 < ps->end && ps->p[0] == 'i' && ps->p[1] == ':') {
                    inner_ci = 1;
                    ps->p += 2;
                } else return rx_fail(ps, "unsupported group (only (?:, (?i:, (?= and (?!)");
            }
            if (look >= 0) {
                int sf, sl, end;
                if ((a = rx_new_node(ps, RX_LOOK)) < 0 || rx_alt(ps, inner_ci, &sf, &sl) || (end = rx_new_node(ps, RX_END)) < 0)
                    return -1;
                ps->re->node[sl].next = end;
                ps->re->node[a].sub = sf;
                ps->re->node[a].neg = look;
                b = a;
            } else if (rx_alt(ps, inner_ci, &a, &b)) return -1;
            if (ps->p >= ps->end || *ps->p != ')') return rx_fail(ps, "missing ')'");
            ps->p++;
            if (ps->p < ps->end && (*ps->p == '?' || *ps->p == '*' || *ps->p == '+' || *ps->p == '{'))
                return rx_fail(ps, "quantified groups are not supported");
        } else {
            if ((a = rx_new_node(ps, RX_SET)) < 0) return -1;
            ps->re->node[a].ci = ci;
            ps->re->node[a].item0 = ps->re->n_item;
            if (c == '[') {
                ps->p++;
                if (rx_class(ps, a)) return -1;
            } else if (c == '\\') {
                ps->p++;
                if (rx_escape(ps)) return -1;
                ps->re->node[a].n_items = 1;
            } else if (c == '.') {
                ps->p++;
                ps->re->node[a].negate = 1;
                if (rx_add_item(ps, IT_RANGE, 0, '\n', '\n')) return -1;
                ps->re->node[a].n_items = 1;
            } else if (c == '^' || c == '$' || c == '*' || c == '+' || c == '?') {
                return rx_fail(ps, "unsupported construct");
            } else {
                uint32_t ch = rx_getc(ps);
                if (rx_add_item(ps, IT_RANGE, 0, ch, ch)) return -1;
                ps->re->node[a].n_items = 1;
            }
            if (rx_quant(ps, a)) return -1;
            b = a;
        }
        if (*first < 0) *first = a;
        else ps->re->node[*last].next = a;
        *last = b;
    }
    return 0;
}

/* Alternatives up to ')' or the end: an ALT node and the JOIN its branches end in. */
static int rx_alt(rx_parser *ps, int ci, int *first, int *last) {
    int alt = rx_new_node(ps, RX_ALT), join = rx_new_node(ps, RX_JOIN), br[64], n = 0, i;
    if (alt < 0 || join < 0) return rx_fail(ps, "out of memory");
    for (;;) {
        int f, l;
        if (rx_seq(ps, ci, &f, &l)) return -1;
        if (n == 64) return rx_fail(ps, "more than 64 alternatives");
        if (f < 0) br[n++] = join;
        else {
            ps->re->node[l].next = join;
            br[n++] = f;
        }
        if (ps->p < ps->end && *ps->p == '|') {
            ps->p++;
            continue;
        }
        break;
    }
    if (ps->re->n_branch + n > ps->re->cap_branch) {
        int cap = 2 * (ps->re->n_branch + n) + 16, *b = realloc(ps->re->branch, sizeof(int) * (size_t)cap);
        if (!b) return rx_fail(ps, "out of memory");
        ps->re->branch = b;
        ps->re->cap_branch = cap;
    }
    ps->re->node[alt].br0 = ps->re->n_branch;
    ps->re->node[alt].n_br = n;
    for (i = 0; i < n; i++) ps->re->branch[ps->re->n_branch++] = br[i];
    *first = alt;
    *last = join;
    return 0;
}

static red_status tok_regex_compile(const char *pat, size_t n, tok_regex **out, const char *path, red_error *err) {
    rx_parser ps;
    int f, l, end;
    memset(&ps, 0, sizeof ps);
    *out = NULL;
    if (!(ps.re = calloc(1, sizeof(tok_regex))) || !(ps.re->pat = malloc(n + 1))) {
        free(ps.re);
        return nomem(err);
    }
    memcpy(ps.re->pat, pat, n);
    ps.re->pat[n] = 0;
    ps.p = ps.pat = pat;
    ps.end = pat + n;
    if (rx_alt(&ps, 0, &f, &l) == 0 && ps.p < ps.end) rx_fail(&ps, "unbalanced ')'");
    if (!ps.err[0] && (end = rx_new_node(&ps, RX_END)) >= 0) {
        ps.re->node[l].next = end;
        ps.re->start = f;
        *out = ps.re;
        return RED_OK;
    }
    tok_regex_free(ps.re);
    return red_error_set(err, RED_E_UNSUPPORTED, "%s: pre-tokenizer pattern \"%s\": %s", path, pat,
                         ps.err[0] ? ps.err : "out of memory");
}

typedef struct {
    const unsigned char *s;
    size_t n;
    const unsigned char *bmp;  /* categories of the BMP */
    unsigned char *failed;     /* bit node * (n + 1) + pos: rx_run(node, pos) fails (NULL: not kept) */
} rx_text;

static int char_category(const rx_text *x, uint32_t c) {
    return c < 0x10000 ? x->bmp[c] : uc_category(c);
}

static int rx_item_match(const rx_item *it, uint32_t c, int cat) {
    int m;
    switch (it->kind) {
    case IT_RANGE: return c >= it->lo && c <= it->hi;
    case IT_CAT: m = (int)(it->lo >> cat & 1); break;
    default: m = uc_space(c); break;
    }
    return m ^ it->neg;
}

static int rx_set_match(const tok_regex *re, const rx_node *nd, const rx_text *x, uint32_t c) {
    int cat = char_category(x, c), i, m = 0;
    for (i = 0; i < nd->n_items && !m; i++) m = rx_item_match(&re->item[nd->item0 + i], c, cat);
    if (!m && nd->ci) {  /* case-insensitive: the other case of ASCII letters, and long s / Kelvin sign */
        uint32_t alt[2];
        int na = 0, k;
        if (c < 128 && ((c | 32) >= 'a' && (c | 32) <= 'z')) alt[na++] = c ^ 32;
        if (c == 0x17F) { alt[na++] = 's'; alt[na++] = 'S'; }
        if (c == 0x212A) { alt[na++] = 'k'; alt[na++] = 'K'; }
        if (c == 's' || c == 'S') alt[na++] = 0x17F;
        if (c == 'k' || c == 'K') alt[na++] = 0x212A;
        for (k = 0; k < na && !m; k++)
            for (i = 0; i < nd->n_items && !m; i++) m = rx_item_match(&re->item[nd->item0 + i], alt[k], char_category(x, alt[k]));
    }
    return m ^ nd->negate;
}

static long rx_run(const tok_regex *re, int node, const rx_text *x, size_t pos);

/* End of the match of node at pos, or -1. */
static long rx_match(const tok_regex *re, int node, const rx_text *x, size_t pos) {
    for (;;) {
        const rx_node *nd = &re->node[node];
        switch (nd->type) {
        case RX_END: return (long)pos;
        case RX_JOIN: node = nd->next; continue;
        case RX_LOOK: {
            long r = rx_run(re, nd->sub, x, pos);
            if ((r >= 0) == nd->neg) return -1;
            node = nd->next;
            continue;
        }
        case RX_ALT: {
            int i;
            for (i = 0; i < nd->n_br; i++) {
                long r = rx_run(re, re->branch[nd->br0 + i], x, pos);
                if (r >= 0) return r;
            }
            return -1;
        }
        default: {  /* SET: greedy, then give back one character at a time */
            size_t at[65], p = pos;
            int k = 0, j;
            at[0] = pos;
            while ((nd->max < 0 || k < nd->max) && p < x->n) {
                uint32_t c;
                int len = utf8_next(x->s + p, x->n - p, &c);
                if (!rx_set_match(re, nd, x, c)) break;
                p += (size_t)len;
                k++;
                if (k < 65) at[k] = p;
            }
            if (k < nd->min) return -1;
            if (re->node[nd->next].type == RX_END) return (long)p;
            for (j = k; j >= nd->min; j--) {
                size_t q = at[j < 65 ? j : 0];
                long r;
                if (j >= 65) {  /* long run: walk forward again */
                    int s;
                    uint32_t c;
                    for (q = pos, s = 0; s < j; s++) q += (size_t)utf8_next(x->s + q, x->n - q, &c);
                }
                r = rx_run(re, nd->next, x, q);
                if (r >= 0) return r;
            }
            return -1;
        }
        }
    }
}

/* rx_match remembering its failures: without back-references the result
 * depends on (node, pos) only, so each pair fails once and a pattern such as
 * a*a*a*a*a*a*a*a*Z costs nodes x length steps, not length^8 (a hostile
 * tokenizer.json hung the encoder of a 50-byte text). */
static long rx_run(const tok_regex *re, int node, const rx_text *x, size_t pos) {
    size_t bit = (size_t)node * (x->n + 1) + pos;
    long r;
    if (x->failed && (x->failed[bit >> 3] >> (bit & 7) & 1)) return -1;
    r = rx_match(re, node, x, pos);
    if (r < 0 && x->failed) x->failed[bit >> 3] |= (unsigned char)(1u << (bit & 7));
    return r;
}

/* ------------------------------------------------------------------ BPE by merge rank */

enum { NORM_NFC = 1, NORM_PREPEND, NORM_REPLACE };

static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* GPT-2's byte <-> character map: printable Latin-1 bytes stand for
 * themselves, the others for U+0100.. in byte order. */
static uint32_t byte_to_char(int b) {
    int k = 0, i;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
    for (i = 0; i < b; i++)
        if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF))) k++;
    return 256u + (uint32_t)k;
}

/* The raw bytes of a byte-level token text; -1 if a character is outside the map. */
static int unmap_bytes(const red_tokenizer *t, const char *s, size_t n, char *out, size_t *out_n) {
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t c;
        int b;
        i += (size_t)utf8_next((const unsigned char *)s + i, n - i, &c);
        if (c >= 324 || (b = t->char_byte[c]) < 0) return -1;
        out[k++] = (char)b;
    }
    *out_n = k;
    return 0;
}

typedef struct {
    int rank, pos, out;
} bpe_item;

static int item_less(const bpe_item *a, const bpe_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_item *h, int *n, bpe_item it) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!item_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static bpe_item heap_pop(bpe_item *h, int *n) {
    bpe_item top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && item_less(&h[c + 1], &h[c])) c++;
        if (!item_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Scratch for one word: symbols with links, and the merge queue. */
typedef struct {
    int *sym, *prev, *next;
    bpe_item *heap;
    size_t cap;
} bpe_scratch;

static int scratch_reserve(bpe_scratch *w, size_t n) {
    if (n <= w->cap) return 0;
    free(w->sym);
    free(w->prev);
    free(w->next);
    free(w->heap);
    w->sym = malloc(n * sizeof(int));
    w->prev = malloc(n * sizeof(int));
    w->next = malloc(n * sizeof(int));
    w->heap = malloc(2 * n * sizeof(bpe_item));
    w->cap = w->sym && w->prev && w->next && w->heap ? n : 0;
    return w->cap ? 0 : -1;
}

static void scratch_free(bpe_scratch *w) {
    free(w->sym);
    free(w->prev);
    free(w->next);
    free(w->heap);
}

static void push_pair(const red_tokenizer *t, const bpe_scratch *w, int *nh, int pos) {
    int r = pair_lookup(t, w->sym[pos], w->sym[w->next[pos]]);
    if (r >= 0) {
        bpe_item it;
        it.rank = r;
        it.pos = pos;
        it.out = t->merge_out[r];
        heap_push(w->heap, nh, it);
    }
}

/* Hugging Face's BPE merge loop over w->sym[0..n): the lowest-rank pair
 * first, the leftmost of equal ranks. Appends the result to ids. */
static int bpe_merge(const red_tokenizer *t, bpe_scratch *w, int n, int *ids, int at, int cap) {
    int nh = 0, i;
    for (i = 0; i < n; i++) {
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (i = 0; i + 1 < n; i++) push_pair(t, w, &nh, i);
    while (nh) {
        bpe_item top = heap_pop(w->heap, &nh);
        int p = top.pos, q = w->next[p], r;
        if (w->sym[p] < 0 || q < 0) continue;  /* merged away, or last */
        r = pair_lookup(t, w->sym[p], w->sym[q]);
        if (r < 0 || t->merge_out[r] != top.out) continue;  /* the pair changed since */
        w->sym[p] = top.out;
        w->sym[q] = -1;
        w->next[p] = w->next[q];
        if (w->next[q] >= 0) w->prev[w->next[q]] = p;
        if (w->prev[p] >= 0) push_pair(t, w, &nh, w->prev[p]);
        if (w->next[p] >= 0) push_pair(t, w, &nh, p);
    }
    for (i = 0; i >= 0 && i < n; i = w->next[i]) {
        if (at < cap) ids[at] = w->sym[i];
        at++;
    }
    return at;
}

/* One pre-tokenized piece through the model: ids appended at ids[at]. */
static int bpe_piece(const red_tokenizer *t, bpe_scratch *w, const char *s, size_t n, int *ids, int at, int cap) {
    int k = 0, id;
    size_t i;
    if (!n) return at;
    if (t->ignore_merges && (id = map_find(t, s, n)) >= 0) {
        if (at < cap) ids[at] = id;
        return at + 1;
    }
    if (t->byte_level) {
        for (i = 0; i < n; i++)
            if ((id = t->byte_id[(unsigned char)s[i]]) >= 0) w->sym[k++] = id;
            else if (t->unk_id >= 0) w->sym[k++] = t->unk_id;
        return bpe_merge(t, w, k, ids, at, cap);
    }
    for (i = 0; i < n;) {  /* characters; byte fallback; unknown (fused) */
        uint32_t c;
        int len = utf8_next((const unsigned char *)s + i, n - i, &c), j, all = 1;
        if ((id = map_find(t, s + i, (size_t)len)) >= 0) w->sym[k++] = id;
        else {
            if (t->byte_fallback) {
                for (j = 0; j < len; j++) all &= t->byte_id[(unsigned char)s[i + j]] >= 0;
                if (all)
                    for (j = 0; j < len; j++) w->sym[k++] = t->byte_id[(unsigned char)s[i + j]];
            }
            if ((!t->byte_fallback || !all) && t->unk_id >= 0 && !(t->fuse_unk && k && w->sym[k - 1] == t->unk_id))
                w->sym[k++] = t->unk_id;
        }
        i += (size_t)len;
    }
    return bpe_merge(t, w, k, ids, at, cap);
}

/* ------------------------------------------------------------------ Hugging Face pipeline */

/* The leftmost added token in s[from..n) (the longest at that position): its id, or -1. */
static int find_added(const red_tokenizer *t, const char *s, size_t n, size_t from, size_t *start, size_t *end) {
    size_t i;
    for (i = from; i < n; i++) {
        int k, best = -1;
        size_t best_len = 0;
        if (!t->added_first[(unsigned char)s[i]]) continue;
        for (k = 0; k < t->n_added; k++) {
            const added_token *a = &t->added[k];
            if (a->len > best_len && a->len <= n - i && t->arena[a->off] == s[i] && !memcmp(t->arena + a->off, s + i, a->len)) {
                best = k;
                best_len = a->len;
            }
        }
        if (best >= 0) {
            const added_token *a = &t->added[best];
            *start = i;
            *end = i + best_len;
            if (a->lstrip)
                while (*start > from && uc_space((unsigned char)s[*start - 1])) (*start)--;
            if (a->rstrip)
                while (*end < n && uc_space((unsigned char)s[*end])) (*end)++;
            return (int)a->id;
        }
    }
    return -1;
}

/* Applies the normalizers to s[0..n): returns the text (s itself or buf->p). */
static const char *normalize(const red_tokenizer *t, const char *s, size_t *n, red_sbuf *buf, int *failed) {
    int k;
    for (k = 0; k < t->n_norm; k++) {
        const char *a = t->arena + t->norm[k].a_off, *b = t->arena + t->norm[k].b_off;
        size_t an = t->norm[k].a_len, bn = t->norm[k].b_len, i;
        red_sbuf o;
        red_sbuf_init(&o);
        red_sbuf_puts(&o, "");
        if (t->norm[k].op == NORM_NFC) {
            char *q;
            size_t qn;
            int r = nfc(s, *n, &q, &qn);
            if (r < 0) *failed = 1;
            if (r) {
                red_sbuf_free(&o);
                continue;
            }
            red_sbuf_put(&o, q, qn);
            free(q);
        } else if (t->norm[k].op == NORM_PREPEND) {
            if (!*n) {
                red_sbuf_free(&o);
                continue;
            }
            red_sbuf_put(&o, a, an);
            red_sbuf_put(&o, s, *n);
        } else {  /* REPLACE a -> b */
            for (i = 0; i < *n;) {
                if (an && i + an <= *n && !memcmp(s + i, a, an)) {
                    red_sbuf_put(&o, b, bn);
                    i += an;
                } else red_sbuf_put(&o, s + i++, 1);
            }
        }
        if (o.failed) *failed = 1;
        red_sbuf_free(buf);
        *buf = o;
        s = buf->p;
        *n = buf->len;
    }
    return s;
}

/* A segment between added tokens: normalize, split, byte-map, BPE. */
/* Metaspace: spaces become the replacement, which starts the text (scheme
 * always, or first for the start of the input) unless it already does; with
 * split, every replacement starts a new piece. */
static int metaspace_pieces(const red_tokenizer *t, const char *s, size_t n, int at_start, int *ids, int at, int cap,
                            bpe_scratch *w, int *failed) {
    const char *rep = t->arena + t->ms_off;
    size_t rn = t->ms_len, i, start = 0;
    red_sbuf b;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "");
    if ((t->ms_scheme == 2 || (t->ms_scheme == 1 && at_start)) && !(n && s[0] == ' ') && !(n >= rn && !memcmp(s, rep, rn)))
        red_sbuf_put(&b, rep, rn);
    for (i = 0; i < n; i++)
        if (s[i] == ' ') red_sbuf_put(&b, rep, rn);
        else red_sbuf_put(&b, s + i, 1);
    if (b.failed || scratch_reserve(w, b.len + 1)) {
        *failed = 1;
        red_sbuf_free(&b);
        return at;
    }
    for (i = 1; t->ms_split && rn && i + rn <= b.len; i++)
        if (!memcmp(b.p + i, rep, rn)) {
            at = bpe_piece(t, w, b.p + start, i - start, ids, at, cap);
            start = i;
        }
    at = bpe_piece(t, w, b.p + start, b.len - start, ids, at, cap);
    red_sbuf_free(&b);
    return at;
}

static int encode_segment(const red_tokenizer *t, const char *s, size_t n, int at_start, int *ids, int at, int cap,
                          bpe_scratch *w, int *failed) {
    red_sbuf nb, pb;
    rx_text x;
    size_t pos = 0, gap = 0;
    red_sbuf_init(&nb);
    red_sbuf_init(&pb);
    s = normalize(t, s, &n, &nb, failed);
    if (t->byte_level && t->bl_prefix_space && n && s[0] != ' ') {  /* ByteLevel's add_prefix_space */
        red_sbuf_puts(&pb, " ");
        red_sbuf_put(&pb, s, n);
        s = pb.p;
        n = pb.len;
    }
    if (*failed || pb.failed || scratch_reserve(w, n + 1)) {
        *failed = 1;
        red_sbuf_free(&nb);
        red_sbuf_free(&pb);
        return at;
    }
    if (t->metaspace) at = metaspace_pieces(t, s, n, at_start, ids, at, cap, w, failed);
    else if (!t->re) at = bpe_piece(t, w, s, n, ids, at, cap);
    else {
        x.s = (const unsigned char *)s;
        x.n = n;
        x.bmp = t->bmp;
        x.failed = n + 1 <= SIZE_MAX / 8 / (size_t)t->re->n_node
                       ? calloc(((size_t)t->re->n_node * (n + 1) + 7) / 8, 1) : NULL;
        if (!x.failed) {
            *failed = 1;
            red_sbuf_free(&nb);
            red_sbuf_free(&pb);
            return at;
        }
        while (pos < n) {  /* Split, "Isolated": every match and every gap between matches is a piece */
            long e = rx_run(t->re, t->re->start, &x, pos);
            if (e > (long)pos) {
                if (gap < pos) at = bpe_piece(t, w, s + gap, pos - gap, ids, at, cap);
                if (!t->split_removed) at = bpe_piece(t, w, s + pos, (size_t)e - pos, ids, at, cap);
                pos = gap = (size_t)e;
            } else {
                uint32_t c;
                pos += (size_t)utf8_next(x.s + pos, n - pos, &c);
            }
        }
        if (gap < n) at = bpe_piece(t, w, s + gap, n - gap, ids, at, cap);
        free(x.failed);
    }
    red_sbuf_free(&nb);
    red_sbuf_free(&pb);
    return at;
}

static int hf_encode(const red_tokenizer *t, const char *text, size_t len, int n, int *ids, int cap) {
    bpe_scratch w;
    size_t pos = 0;
    int failed = 0;
    memset(&w, 0, sizeof w);
    while (pos < len) {
        size_t a = len, b = len;
        int id = t->n_added ? find_added(t, text, len, pos, &a, &b) : -1;
        if (a > pos) n = encode_segment(t, text + pos, a - pos, pos == 0, ids, n, cap, &w, &failed);
        if (id >= 0) {
            if (n < cap) ids[n] = id;
            n++;
        }
        pos = b;
    }
    scratch_free(&w);
    return failed ? -1 : n;
}

/* ------------------------------------------------------------------ loading vocabularies */

/* Sets id's stored text; its decoded bytes and lookup key follow from the kind. */
static int set_token(red_tokenizer *t, int id, const char *s, size_t n) {
    char raw[RED_TOKEN_MAX_BYTES + 1];
    size_t rn = 0, i;
    unsigned v;
    if (n > RED_TOKEN_MAX_BYTES || arena_put(t, s, n, &t->sto_off[id])) return -1;
    t->sto_len[id] = (uint32_t)n;
    if (t->byte_level) {
        if (unmap_bytes(t, s, n, raw, &rn)) {  /* not byte-mapped (an added token with other text): as it is */
            memcpy(raw, s, n);
            rn = n;
        }
        if (arena_put(t, raw, rn, &t->txt_off[id])) return -1;
        t->txt_len[id] = (uint32_t)rn;
        t->key_off[id] = t->txt_off[id];
        t->key_len[id] = t->txt_len[id];
        if (rn == 1 && t->byte_id[(unsigned char)raw[0]] < 0) t->byte_id[(unsigned char)raw[0]] = id;
    } else {
        t->key_off[id] = t->sto_off[id];
        t->key_len[id] = t->sto_len[id];
        if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && sscanf(s + 3, "%2X", &v) == 1 &&
            ((s[3] >= '0' && s[3] <= '9') || (s[3] >= 'A' && s[3] <= 'F')) &&
            ((s[4] >= '0' && s[4] <= '9') || (s[4] >= 'A' && s[4] <= 'F'))) {  /* byte fallback token */
            raw[0] = (char)v;
            rn = 1;
            if (t->byte_id[v] < 0) t->byte_id[v] = id;
        } else {
            for (i = 0; i < n; i++) {  /* U+2581 (E2 96 81) stands for a space */
                if (i + 2 < n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) {
                    raw[rn++] = ' ';
                    i += 2;
                } else raw[rn++] = s[i];
            }
        }
        if (arena_put(t, raw, rn, &t->txt_off[id])) return -1;
        t->txt_len[id] = (uint32_t)rn;
    }
    return 0;
}

/* Allocates the tables of n ids, all empty and without text until set. */
static int vocab_alloc(red_tokenizer *t, int n) {
    int i;
    if (tok_alloc_ids(t, n)) return -1;
    t->sto_off = calloc((size_t)n + 1, sizeof(uint32_t));
    t->sto_len = calloc((size_t)n + 1, sizeof(uint32_t));
    if (!t->sto_off || !t->sto_len) return -1;
    for (i = 0; i < n; i++) t->no_text[i] = 1;
    return 0;
}

/* The lookup key of a stored text (byte-level: its raw bytes) into buf; returns its length or -1. */
static long key_of(const red_tokenizer *t, const char *s, size_t n, char *buf) {
    size_t k;
    if (t->byte_level && !unmap_bytes(t, s, n, buf, &k)) return (long)k;
    memcpy(buf, s, n);
    return (long)n;
}

/* Merge "a b" (given as two texts): looks both and their concatenation up. */
static red_status add_merge_texts(red_tokenizer *t, const char *a, size_t an, const char *b, size_t bn, size_t i,
                                  const char *path, red_error *err) {
    char buf[2 * RED_TOKEN_MAX_BYTES];
    long ka, kb;
    int ia = -1, ib = -1, io = -1;
    if (an <= RED_TOKEN_MAX_BYTES && bn <= RED_TOKEN_MAX_BYTES) {  /* no token is longer */
        ka = key_of(t, a, an, buf);
        ia = map_find(t, buf, (size_t)ka);
        kb = key_of(t, b, bn, buf + ka);
        ib = map_find(t, buf + ka, (size_t)kb);
        io = map_find(t, buf, (size_t)(ka + kb));
    }
    if (ia < 0 || ib < 0 || io < 0)
        return red_error_set(err, RED_E_FORMAT, "%s: merge %zu (\"%.*s\" \"%.*s\") names a token that is not in the vocabulary",
                             path, i, (int)(an > 64 ? 64 : an), a, (int)(bn > 64 ? 64 : bn), b);
    if (merge_add(t, ia, ib, io)) return nomem(err);
    return RED_OK;
}

/* A merge written "left right" (exactly one space). */
static red_status add_merge_line(red_tokenizer *t, const char *m, size_t n, size_t i, const char *path, red_error *err) {
    const char *sp = memchr(m, ' ', n);
    if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp - m) - 1))
        return red_error_set(err, RED_E_FORMAT, "%s: merge %zu must be two tokens separated by one space", path, i);
    return add_merge_texts(t, m, (size_t)(sp - m), sp + 1, n - (size_t)(sp - m) - 1, i, path, err);
}

static int add_added(red_tokenizer *t, int id, const char *s, size_t n, int special, int lstrip, int rstrip) {
    added_token *a = realloc(t->added, sizeof *a * (size_t)(t->n_added + 1));
    if (!a) return -1;
    t->added = a;
    a = &t->added[t->n_added];
    memset(a, 0, sizeof *a);
    if (!n || arena_put(t, s, n, &a->off)) return n ? -1 : 0;
    a->len = (uint32_t)n;
    a->id = (uint32_t)id;
    a->special = (unsigned char)special;
    a->lstrip = (unsigned char)lstrip;
    a->rstrip = (unsigned char)rstrip;
    t->added_first[(unsigned char)s[0]] = 1;
    t->n_added++;
    return 0;
}

/* The id of a token given by its text: added tokens first, then the vocabulary. */
static int token_id(const red_tokenizer *t, const char *s, size_t n) {
    int k;
    char *buf;
    long kn;
    for (k = 0; k < t->n_added; k++)
        if (t->added[k].len == n && !memcmp(t->arena + t->added[k].off, s, n)) return (int)t->added[k].id;
    if (!(buf = malloc(n + 1))) return -1;
    kn = key_of(t, s, n, buf);
    k = map_find(t, buf, (size_t)kn);
    free(buf);
    return k;
}

static const red_json *jget(const red_json *o, const char *key, red_json_type type) {
    const red_json *v = red_json_get(o, key);
    return v && v->type == type ? v : NULL;
}

static int jbool(const red_json *o, const char *key) {
    const red_json *v = red_json_get(o, key);
    return v && v->type == RED_JSON_TRUE;
}

static int jtype_is(const red_json *o, const char *type) {
    const red_json *v = jget(o, "type", RED_JSON_STRING);
    return v && !strcmp(v->str, type);
}

static red_status add_norm(red_tokenizer *t, int op, const char *a, size_t an, const char *b, size_t bn, const char *path,
                           red_error *err) {
    if (t->n_norm == 8) return red_error_set(err, RED_E_UNSUPPORTED, "%s: more than 8 normalizers", path);
    t->norm[t->n_norm].op = op;
    if (arena_put(t, a, an, &t->norm[t->n_norm].a_off) || arena_put(t, b, bn, &t->norm[t->n_norm].b_off)) return nomem(err);
    t->norm[t->n_norm].a_len = (uint32_t)an;
    t->norm[t->n_norm].b_len = (uint32_t)bn;
    t->n_norm++;
    return RED_OK;
}

static red_status parse_normalizer(red_tokenizer *t, const red_json *n, const char *path, red_error *err) {
    const red_json *ty, *c;
    red_status st;
    if (!n || n->type == RED_JSON_NULL) return RED_OK;
    if (!(ty = jget(n, "type", RED_JSON_STRING))) return red_error_set(err, RED_E_FORMAT, "%s: a normalizer without \"type\"", path);
    if (!strcmp(ty->str, "Sequence")) {
        const red_json *list = jget(n, "normalizers", RED_JSON_ARRAY);
        if (!list) return red_error_set(err, RED_E_FORMAT, "%s: Sequence normalizer without \"normalizers\"", path);
        for (c = list->child; c; c = c->next)
            if ((st = parse_normalizer(t, c, path, err))) return st;
        return RED_OK;
    }
    if (!strcmp(ty->str, "NFC")) return add_norm(t, NORM_NFC, "", 0, "", 0, path, err);
    if (!strcmp(ty->str, "Prepend")) {
        const red_json *p = jget(n, "prepend", RED_JSON_STRING);
        if (!p) return red_error_set(err, RED_E_FORMAT, "%s: Prepend normalizer without \"prepend\"", path);
        return add_norm(t, NORM_PREPEND, p->str, p->len, "", 0, path, err);
    }
    if (!strcmp(ty->str, "Replace")) {
        const red_json *pat = jget(n, "pattern", RED_JSON_OBJECT), *s = pat ? jget(pat, "String", RED_JSON_STRING) : NULL,
                       *to = jget(n, "content", RED_JSON_STRING);
        if (!s || !to)
            return red_error_set(err, RED_E_UNSUPPORTED, "%s: Replace normalizer: only {\"String\": ...} patterns are supported", path);
        return add_norm(t, NORM_REPLACE, s->str, s->len, to->str, to->len, path, err);
    }
    return red_error_set(err, RED_E_UNSUPPORTED, "%s: normalizer \"%s\" is not supported (NFC, Prepend, Replace, Sequence)", path,
                         ty->str);
}

static red_status set_pattern(red_tokenizer *t, const char *pat, size_t n, const char *path, red_error *err) {
    if (t->re) return red_error_set(err, RED_E_UNSUPPORTED, "%s: more than one splitting pre-tokenizer", path);
    return tok_regex_compile(pat, n, &t->re, path, err);
}

static red_status parse_pretokenizer(red_tokenizer *t, const red_json *p, const char *path, red_error *err) {
    const red_json *ty, *c;
    red_status st;
    if (!p || p->type == RED_JSON_NULL) return RED_OK;
    if (!(ty = jget(p, "type", RED_JSON_STRING))) return red_error_set(err, RED_E_FORMAT, "%s: a pre-tokenizer without \"type\"", path);
    if (!strcmp(ty->str, "Sequence")) {
        const red_json *list = jget(p, "pretokenizers", RED_JSON_ARRAY);
        if (!list) return red_error_set(err, RED_E_FORMAT, "%s: Sequence pre-tokenizer without \"pretokenizers\"", path);
        for (c = list->child; c; c = c->next)
            if ((st = parse_pretokenizer(t, c, path, err))) return st;
        return RED_OK;
    }
    if (!strcmp(ty->str, "Split")) {
        const red_json *pat = jget(p, "pattern", RED_JSON_OBJECT), *re = pat ? jget(pat, "Regex", RED_JSON_STRING) : NULL,
                       *beh = jget(p, "behavior", RED_JSON_STRING);
        if (!re || !beh || jbool(p, "invert") || (strcmp(beh->str, "Isolated") && strcmp(beh->str, "Removed")))
            return red_error_set(err, RED_E_UNSUPPORTED, "%s: Split pre-tokenizer: only a {\"Regex\": ...} pattern with behavior "
                                 "Isolated or Removed, not inverted, is supported", path);
        t->split_removed = !strcmp(beh->str, "Removed");
        return set_pattern(t, re->str, re->len, path, err);
    }
    if (!strcmp(ty->str, "ByteLevel")) {
        const red_json *ur = red_json_get(p, "use_regex");
        t->byte_level = 1;
        t->bl_prefix_space = jbool(p, "add_prefix_space");
        if (!ur || ur->type == RED_JSON_TRUE) return set_pattern(t, GPT2_PATTERN, strlen(GPT2_PATTERN), path, err);
        return RED_OK;
    }
    if (!strcmp(ty->str, "Metaspace")) {
        const red_json *rep = jget(p, "replacement", RED_JSON_STRING), *sch = jget(p, "prepend_scheme", RED_JSON_STRING),
                       *sp = red_json_get(p, "split");
        t->metaspace = 1;
        t->ms_scheme = sch ? (!strcmp(sch->str, "always") ? 2 : !strcmp(sch->str, "first") ? 1 : !strcmp(sch->str, "never") ? 0 : -1)
                           : red_json_get(p, "add_prefix_space") && !jbool(p, "add_prefix_space") ? 0 : 2;
        t->ms_split = !sp || sp->type == RED_JSON_TRUE;
        if (t->ms_scheme < 0) return red_error_set(err, RED_E_UNSUPPORTED, "%s: Metaspace prepend_scheme \"%s\"", path, sch->str);
        if (arena_put(t, rep ? rep->str : "\xE2\x96\x81", rep ? rep->len : 3, &t->ms_off)) return nomem(err);
        t->ms_len = rep ? (uint32_t)rep->len : 3;
        return RED_OK;
    }
    return red_error_set(err, RED_E_UNSUPPORTED, "%s: pre-tokenizer \"%s\" is not supported (Split, ByteLevel, Metaspace, Sequence)",
                         path, ty->str);
}

/* Does the decoder strip the first space (SentencePiece style)? */
static int decoder_strips(const red_json *d) {
    const red_json *c, *list;
    if (!d || d->type != RED_JSON_OBJECT) return 0;
    if (jtype_is(d, "Strip")) {
        const red_json *s = jget(d, "start", RED_JSON_NUMBER);
        return s && s->number >= 1;
    }
    if (jtype_is(d, "Metaspace")) return 1;
    if ((list = jget(d, "decoders", RED_JSON_ARRAY)))
        for (c = list->child; c; c = c->next)
            if (decoder_strips(c)) return 1;
    return 0;
}

/* vocab: {"token": id, ...}; added: [{"id", "content", ...}]. Sizes the tables to the largest id. */
static red_status hf_vocab(red_tokenizer *t, const red_json *vocab, const red_json *added, const char *path, red_error *err) {
    const red_json *c;
    int top = -1;
    for (c = vocab->child; c; c = c->next) {
        if (c->type != RED_JSON_NUMBER || !c->is_int || c->ival < 0 || c->ival >= (1 << 24))
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: vocabulary ids must be integers in 0..2^24", path, c->offset);
        if (c->ival > top) top = (int)c->ival;
    }
    if (added)
        for (c = added->child; c; c = c->next) {
            const red_json *id = jget(c, "id", RED_JSON_NUMBER), *content = jget(c, "content", RED_JSON_STRING);
            if (!id || !content || !id->is_int || id->ival < 0 || id->ival >= (1 << 24) || !content->len)
                return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: an added token needs an \"id\" in 0..2^24 and a "
                                     "non-empty \"content\"", path, c->offset);
            if (id->ival > top) top = (int)id->ival;
        }
    if (top < 0) return red_error_set(err, RED_E_FORMAT, "%s: the vocabulary is empty", path);
    if (vocab_alloc(t, top + 1)) return nomem(err);
    for (c = vocab->child; c; c = c->next) {
        int id = (int)c->ival;
        if (!t->no_text[id]) return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: id %d is given twice", path, c->offset, id);
        if (c->key_len > RED_TOKEN_MAX_BYTES)
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: token longer than %d bytes", path, c->offset, RED_TOKEN_MAX_BYTES);
        if (set_token(t, id, c->key, c->key_len)) return nomem(err);
        t->no_text[id] = 0;
    }
    if (map_build(t)) return nomem(err);
    return RED_OK;
}

static red_status hf_added(red_tokenizer *t, const red_json *added, const char *path, red_error *err) {
    const red_json *c;
    if (!added) return RED_OK;
    for (c = added->child; c; c = c->next) {
        const red_json *content = jget(c, "content", RED_JSON_STRING);
        int id = (int)jget(c, "id", RED_JSON_NUMBER)->ival, special = jbool(c, "special");
        if (content->len > RED_TOKEN_MAX_BYTES)
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: added token longer than %d bytes", path, c->offset,
                                 RED_TOKEN_MAX_BYTES);
        if (t->sto_len[id] == 0 && set_token(t, id, content->str, content->len)) return nomem(err);
        t->no_text[id] = (unsigned char)special;
        if (add_added(t, id, content->str, content->len, special, jbool(c, "lstrip"), jbool(c, "rstrip"))) return nomem(err);
    }
    return RED_OK;
}

static red_status hf_merges(red_tokenizer *t, const red_json *merges, const char *path, red_error *err) {
    const red_json *c;
    size_t i = 0;
    red_status st;
    if (!merges) return RED_OK;
    for (c = merges->child; c; c = c->next, i++) {
        if (c->type == RED_JSON_STRING) st = add_merge_line(t, c->str, c->len, i, path, err);
        else if (c->type == RED_JSON_ARRAY && c->count == 2 && c->child->type == RED_JSON_STRING &&
                 c->child->next->type == RED_JSON_STRING)
            st = add_merge_texts(t, c->child->str, c->child->len, c->child->next->str, c->child->next->len, i, path, err);
        else st = red_error_set(err, RED_E_FORMAT, "%s: byte %zu: merge %zu must be \"a b\" or [\"a\", \"b\"]", path, c->offset, i);
        if (st) return st;
    }
    return RED_OK;
}

/* A special token named in a config: a string or {"content": ...}; -1 if absent or unknown. */
static int config_token(const red_tokenizer *t, const red_json *v) {
    if (v && v->type == RED_JSON_OBJECT) v = jget(v, "content", RED_JSON_STRING);
    if (!v || v->type != RED_JSON_STRING) return -1;
    return token_id(t, v->str, v->len);
}

/* BOS/EOS from the post-processor's template when the config says nothing. */
static void template_specials(red_tokenizer *t, const red_json *pp) {
    const red_json *single = jget(pp, "single", RED_JSON_ARRAY), *c, *st;
    if (!pp || !jtype_is(pp, "TemplateProcessing") || !single) return;
    for (c = single->child; c; c = c->next)
        if ((st = jget(c, "SpecialToken", RED_JSON_OBJECT))) {
            int id = config_token(t, jget(st, "id", RED_JSON_STRING));
            if (c == single->child) {
                if (t->bos_id < 0) t->bos_id = id;
                t->add_bos = id >= 0 && id == t->bos_id;
            } else if (!c->next) {
                if (t->eos_id < 0) t->eos_id = id;
                t->add_eos = id >= 0 && id == t->eos_id;
            }
        }
}

/* tokenizer_config.json next to tokenizer.json: BOS, EOS, PAD and whether to add them. */
static red_status hf_config(red_tokenizer *t, const char *path, const red_json *post, red_error *err) {
    char cp[4096];
    const char *slash = strrchr(path, '/');
    red_json *j;
    red_status st;
    const red_json *v;
    template_specials(t, post);
    snprintf(cp, sizeof cp, "%.*stokenizer_config.json", slash ? (int)(slash - path + 1) : 0, path);
    if (!file_exists(cp)) return RED_OK;
    if ((st = load_json_file(cp, &j, err))) return st;
    if ((v = red_json_get(j, "bos_token")) && v->type != RED_JSON_NULL) t->bos_id = config_token(t, v);
    if ((v = red_json_get(j, "eos_token")) && v->type != RED_JSON_NULL) t->eos_id = config_token(t, v);
    if ((v = red_json_get(j, "pad_token")) && v->type != RED_JSON_NULL) t->pad_id = config_token(t, v);
    if ((v = red_json_get(j, "add_bos_token"))) t->add_bos = v->type == RED_JSON_TRUE && t->bos_id >= 0;
    if ((v = red_json_get(j, "add_eos_token"))) t->add_eos = v->type == RED_JSON_TRUE && t->eos_id >= 0;
    red_json_free(j);
    return RED_OK;
}

static red_status hf_build(red_tokenizer *t, const red_json *j, const char *path, red_error *err) {
    const red_json *model = jget(j, "model", RED_JSON_OBJECT), *vocab, *added = jget(j, "added_tokens", RED_JSON_ARRAY), *v;
    red_status st;
    if (!model || !jtype_is(model, "BPE"))
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: only \"model\": {\"type\": \"BPE\"} tokenizers are supported", path);
    if (!(vocab = jget(model, "vocab", RED_JSON_OBJECT)))
        return red_error_set(err, RED_E_FORMAT, "%s: model.vocab must be an object", path);
    if (((v = jget(model, "continuing_subword_prefix", RED_JSON_STRING)) && v->len) ||
        ((v = jget(model, "end_of_word_suffix", RED_JSON_STRING)) && v->len))
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: BPE with a subword prefix or word suffix is not supported", path);
    if ((st = parse_normalizer(t, red_json_get(j, "normalizer"), path, err)) ||
        (st = parse_pretokenizer(t, red_json_get(j, "pre_tokenizer"), path, err)))
        return st;
    if ((v = jget(j, "decoder", RED_JSON_OBJECT)) && jtype_is(v, "ByteLevel")) t->byte_level = 1;
    t->kind = t->byte_level ? RED_TOK_BYTE_BPE : RED_TOK_SPM_BPE;
    t->strip_first_space = !t->byte_level && decoder_strips(red_json_get(j, "decoder"));
    t->byte_fallback = jbool(model, "byte_fallback");
    t->fuse_unk = jbool(model, "fuse_unk");
    t->ignore_merges = jbool(model, "ignore_merges");
    if ((st = hf_vocab(t, vocab, added, path, err)) || (st = hf_merges(t, jget(model, "merges", RED_JSON_ARRAY), path, err)) ||
        (st = hf_added(t, added, path, err)))
        return st;
    if ((v = jget(model, "unk_token", RED_JSON_STRING))) t->unk_id = token_id(t, v->str, v->len);
    if (!(t->bmp = bmp_categories())) return nomem(err);
    return hf_config(t, path, jget(j, "post_processor", RED_JSON_OBJECT), err);
}

static red_status load_hf(red_tokenizer **out, const char *path, red_error *err) {
    red_json *j;
    red_tokenizer *t;
    red_status st;
    *out = NULL;
    if ((st = load_json_file(path, &j, err))) return st;
    if (!(t = tok_new(RED_TOK_BYTE_BPE))) {
        red_json_free(j);
        return nomem(err);
    }
    if ((st = hf_build(t, j, path, err))) red_tokenizer_free(t);
    else *out = t;
    red_json_free(j);
    return st;
}

/* ------------------------------------------------------------------ llama2.c tokenizer.bin */

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* int32 max_token_length, then per token: float score, int32 length, bytes
 * (little-endian; the count is what the file holds). */
static red_status llama2c_parse(red_tokenizer *t, const unsigned char *b, size_t len, const char *path, red_error *err) {
    size_t pos = 4;
    int n = 0, i;
    if (len < 4) return red_error_set(err, RED_E_FORMAT, "%s: %zu bytes, too short for a llama2.c tokenizer", path, len);
    while (pos < len) {  /* count and check the records */
        uint32_t k;
        if (len - pos < 8)
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: token %d is cut off (score and length need 8 bytes)", path, pos, n);
        k = le32(b + pos + 4);
        if (k > RED_TOKEN_MAX_BYTES || k > len - pos - 8)
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: token %d claims %u bytes but %zu remain (at most %d)", path,
                                 pos + 4, n, k, len - pos - 8, RED_TOKEN_MAX_BYTES);
        pos += 8 + k;
        if (++n > (1 << 24)) return red_error_set(err, RED_E_FORMAT, "%s: more than 2^24 tokens", path);
    }
    if (n < 259)
        return red_error_set(err, RED_E_FORMAT, "%s: %d tokens; a llama2.c tokenizer has <unk>, <s>, </s> and 256 byte tokens", path, n);
    if (vocab_alloc(t, n) || !(t->score = malloc(sizeof(float) * (size_t)n))) return nomem(err);
    for (i = 0, pos = 4; i < n; i++) {
        uint32_t bits = le32(b + pos), k = le32(b + pos + 4);
        memcpy(&t->score[i], &bits, 4);
        if (set_token(t, i, (const char *)b + pos + 8, k)) return nomem(err);
        t->no_text[i] = i < 3;  /* <unk>, <s>, </s> */
        pos += 8 + k;
    }
    for (i = 0; i < 256; i++) t->byte_id[i] = 3 + i;  /* run.c's byte fallback: id = byte + 3 */
    t->unk_id = 0;
    t->bos_id = 1;
    t->eos_id = 2;
    t->add_bos = 1;
    return map_build(t) ? nomem(err) : RED_OK;
}

static red_status load_llama2c(red_tokenizer **out, const char *path, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_tokenizer *t;
    red_status st;
    *out = NULL;
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    if (!(t = tok_new(RED_TOK_LLAMA2C))) {
        free(buf);
        return nomem(err);
    }
    if ((st = llama2c_parse(t, buf, len, path, err))) red_tokenizer_free(t);
    else *out = t;
    free(buf);
    return st;
}

/* The id of the concatenated texts of a and b, or -1 (buf holds 2 * RED_TOKEN_MAX_BYTES). */
static int concat_id(const red_tokenizer *t, int a, int b, char *buf) {
    size_t la = t->key_len[a], lb = t->key_len[b];
    memcpy(buf, t->arena + t->key_off[a], la);
    memcpy(buf + la, t->arena + t->key_off[b], lb);
    return map_find(t, buf, la + lb);
}

/* run.c's encode: a space token in front, each UTF-8 character (or its
 * bytes + 3), then repeatedly the adjacent pair whose concatenation has the
 * best score (the first of equal scores). ids[0..n) may hold BOS, which
 * takes part in the merging as in run.c. */
static int llama2c_encode(const red_tokenizer *t, const char *text, size_t len, int n, int *ids, int cap) {
    int *tok, *pair, k = 0, i, sp;
    char buf[2 * RED_TOKEN_MAX_BYTES], cur[5];
    size_t str_len = 0, j;
    const char *nul = memchr(text, 0, len);
    if (nul) len = (size_t)(nul - text);  /* run.c reads a C string */
    tok = malloc(sizeof(int) * (len + 3));
    pair = malloc(sizeof(int) * (len + 3));
    if (!tok || !pair) {
        free(tok);
        free(pair);
        return -1;
    }
    if (n) tok[k++] = t->bos_id;
    if (len && (sp = map_find(t, " ", 1)) >= 0) tok[k++] = sp;
    for (j = 0; j < len; j++) {
        int id;
        if (((unsigned char)text[j] & 0xC0) != 0x80) str_len = 0;
        cur[str_len++] = text[j];
        if (j + 1 < len && ((unsigned char)text[j + 1] & 0xC0) == 0x80 && str_len < 4) continue;
        if ((id = map_find(t, cur, str_len)) >= 0) tok[k++] = id;
        else
            for (i = 0; i < (int)str_len; i++) tok[k++] = (unsigned char)cur[i] + 3;
        str_len = 0;
    }
    for (i = 0; i + 1 < k; i++) pair[i] = concat_id(t, tok[i], tok[i + 1], buf);
    for (;;) {
        float best = -1e10f;
        int bi = -1;
        for (i = 0; i + 1 < k; i++)
            if (pair[i] >= 0 && t->score[pair[i]] > best) {
                best = t->score[pair[i]];
                bi = i;
            }
        if (bi < 0) break;
        tok[bi] = pair[bi];
        memmove(tok + bi + 1, tok + bi + 2, sizeof(int) * (size_t)(k - bi - 2));
        if (k - bi - 3 > 0) memmove(pair + bi + 1, pair + bi + 2, sizeof(int) * (size_t)(k - bi - 3));
        k--;
        if (bi > 0) pair[bi - 1] = concat_id(t, tok[bi - 1], tok[bi], buf);
        if (bi + 1 < k) pair[bi] = concat_id(t, tok[bi], tok[bi + 1], buf);
    }
    for (i = 0; i < k; i++)
        if (i < cap) ids[i] = tok[i];
    free(tok);
    free(pair);
    return k;
}

/* ------------------------------------------------------------------ vocabularies as arrays (GGUF) */

typedef struct {
    float score;
    int out, a, b;
} score_merge;

static int score_merge_cmp(const void *x, const void *y) {
    const score_merge *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->out != b->out) return a->out < b->out ? -1 : 1;
    return a->a < b->a ? -1 : a->a > b->a;
}

/* SentencePiece vocabularies given with scores only: every split of a token
 * into two tokens is a merge, the better the merged token's score the earlier. */
static red_status merges_from_scores(red_tokenizer *t, red_error *err) {
    score_merge *m = NULL;
    size_t n = 0, cap = 0, i;
    int id;
    for (id = 0; id < t->vocab; id++) {
        const char *s = t->arena + t->key_off[id];
        size_t len = t->key_len[id], cut;
        if (t->no_text[id] || len < 2 || (t->type && t->type[id] != 1)) continue;
        for (cut = 1; cut < len; cut++) {
            int a, b;
            if (((unsigned char)s[cut] & 0xC0) == 0x80) continue;  /* only between characters */
            if ((a = map_find(t, s, cut)) < 0 || (b = map_find(t, s + cut, len - cut)) < 0) continue;
            if (n == cap) {
                score_merge *g = realloc(m, sizeof *m * (cap = cap ? 2 * cap : 4096));
                if (!g) {
                    free(m);
                    return nomem(err);
                }
                m = g;
            }
            m[n].score = t->score[id];
            m[n].out = id;
            m[n].a = a;
            m[n].b = b;
            n++;
        }
    }
    if (n) qsort(m, n, sizeof *m, score_merge_cmp);
    for (i = 0; i < n; i++)
        if (merge_add(t, m[i].a, m[i].b, m[i].out)) {
            free(m);
            return nomem(err);
        }
    free(m);
    return RED_OK;
}

static red_status vocab_build(red_tokenizer *t, const red_vocab_spec *s, red_error *err) {
    int i, gpt2 = !strcmp(s->model, "gpt2");
    red_status st;
    const char *pre = s->pre ? s->pre : "default";
    t->byte_level = gpt2;
    t->kind = gpt2 ? RED_TOK_BYTE_BPE : RED_TOK_SPM_BPE;
    if (s->n_tokens < 1 || s->n_tokens > (1 << 24) || !s->tokens || (s->n_merges && !s->merges) || s->n_merges < 0)
        return red_error_set(err, RED_E_ARG, "tokenizer: vocabulary of %d tokens and %d merges", s->n_tokens, s->n_merges);
    if (gpt2) {
        const char *pat = !strcmp(pre, "default") || !strcmp(pre, "gpt2") || !strcmp(pre, "gpt-2") ? GPT2_PATTERN
                          : !strcmp(pre, "llama3") || !strcmp(pre, "llama-bpe") || !strcmp(pre, "llama-v3") ? LLAMA3_PATTERN
                          : !strcmp(pre, "qwen2") ? QWEN2_PATTERN : NULL;
        if (!pat) return red_error_set(err, RED_E_UNSUPPORTED, "tokenizer: pre-tokenizer \"%s\" is not supported (gpt2, llama-bpe, qwen2)", pre);
        t->ignore_merges = pat == LLAMA3_PATTERN;
        if ((st = tok_regex_compile(pat, strlen(pat), &t->re, "tokenizer", err))) return st;
        /* Qwen's tokenizer.json normalizes to NFC first (Hugging Face does; llama.cpp does not) */
        if (pat == QWEN2_PATTERN && (st = add_norm(t, NORM_NFC, "", 0, "", 0, "tokenizer", err))) return st;
    } else {
        if ((st = add_norm(t, NORM_PREPEND, "\xE2\x96\x81", 3, "", 0, "tokenizer", err)) ||
            (st = add_norm(t, NORM_REPLACE, " ", 1, "\xE2\x96\x81", 3, "tokenizer", err)))
            return st;
        t->byte_fallback = 1;
        t->strip_first_space = 1;
    }
    if (vocab_alloc(t, s->n_tokens) || !(t->score = calloc((size_t)s->n_tokens, sizeof(float))) ||
        !(t->type = malloc(sizeof(int32_t) * (size_t)s->n_tokens)) || !(t->model_name = malloc(strlen(s->model) + 1)) ||
        !(t->pre_name = malloc(strlen(pre) + 1)))
        return nomem(err);
    strcpy(t->model_name, s->model);
    strcpy(t->pre_name, pre);
    for (i = 0; i < s->n_tokens; i++) {
        const char *x = s->tokens[i] ? s->tokens[i] : "";
        size_t n = strlen(x);
        int ty = s->types ? s->types[i] : 1;
        if (n > RED_TOKEN_MAX_BYTES) return red_error_set(err, RED_E_FORMAT, "tokenizer: token %d is longer than %d bytes", i, RED_TOKEN_MAX_BYTES);
        t->type[i] = ty;
        if (s->scores) t->score[i] = s->scores[i];
        if (set_token(t, i, x, n)) return nomem(err);
        t->no_text[i] = ty == 3 || ty == 2;  /* control and unknown tokens decode to nothing */
        if ((ty == 2 || ty == 3 || ty == 4) && n && add_added(t, i, x, n, ty != 4, 0, 0)) return nomem(err);
        if (ty == 2 && t->unk_id < 0) t->unk_id = i;
    }
    if (map_build(t) || !(t->bmp = bmp_categories())) return nomem(err);
    for (i = 0; i < s->n_merges; i++)
        if (!s->merges[i] || (st = add_merge_line(t, s->merges[i], strlen(s->merges[i]), (size_t)i, "tokenizer", err)))
            return s->merges[i] ? st : red_error_set(err, RED_E_ARG, "tokenizer: merge %d is NULL", i);
    if (!gpt2 && !s->n_merges && (st = merges_from_scores(t, err))) return st;
#define SPEC_ID(v, field)                                                                                  \
    if (v >= s->n_tokens || v < -1)                                                                        \
        return red_error_set(err, RED_E_FORMAT, "tokenizer: %s id %d outside the vocabulary", #field, v);  \
    if (v >= 0) t->field = v;
    SPEC_ID(s->bos_id, bos_id);
    SPEC_ID(s->eos_id, eos_id);
    SPEC_ID(s->unk_id, unk_id);
    SPEC_ID(s->pad_id, pad_id);
#undef SPEC_ID
    t->add_bos = s->add_bos && t->bos_id >= 0;
    t->add_eos = s->add_eos && t->eos_id >= 0;
    return RED_OK;
}

red_status red_tokenizer_from_vocab(red_tokenizer **out, const red_vocab_spec *s, red_error *err) {
    red_tokenizer *t;
    red_status st;
    *out = NULL;
    if (!s->model || (strcmp(s->model, "gpt2") && strcmp(s->model, "llama")))
        return red_error_set(err, RED_E_UNSUPPORTED, "tokenizer: model \"%s\" is not supported (gpt2, llama)",
                             s->model ? s->model : "(none)");
    if (!(t = tok_new(RED_TOK_BYTE_BPE))) return nomem(err);
    if ((st = vocab_build(t, s, err))) red_tokenizer_free(t);
    else *out = t;
    return st;
}

/* The pre-tokenizer's GGUF name, from the pattern the tokenizer was built with. */
static const char *pre_name(const red_tokenizer *t, const char *pat) {
    if (t->pre_name) return t->pre_name;
    if (!pat) return NULL;
    if (!strcmp(pat, GPT2_PATTERN)) return "gpt2";
    if (!strcmp(pat, LLAMA3_PATTERN)) return "llama-bpe";
    if (!strcmp(pat, QWEN2_PATTERN)) return "qwen2";
    return NULL;
}

/* llama2.c's token text with U+2581 for its spaces, into the arena; its offset. */
static int spm_text(red_tokenizer *t, int id, uint32_t *off) {
    const char *x = t->arena + t->sto_off[id];
    size_t n = t->sto_len[id], i, k = 0;
    char *b = malloc(3 * n + 1);
    int r;
    if (!b) return -1;
    for (i = 0; i < n; i++) {
        if (x[i] == ' ' && !t->no_text[id]) {
            memcpy(b + k, "\xE2\x96\x81", 3);
            k += 3;
        } else b[k++] = x[i];
    }
    r = arena_put(t, b, k, off);
    free(b);
    return r;
}

/* Builds the arrays to_vocab hands out (once; cached in t). */
static int vocab_arrays(red_tokenizer *t) {
    uint32_t *voff = malloc(sizeof(uint32_t) * (size_t)t->vocab), *moff = malloc(sizeof(uint32_t) * (size_t)(t->n_merges + 1));
    int i, ok = voff && moff;
    ok = ok && (t->vocab_ptrs = malloc(sizeof(char *) * (size_t)t->vocab)) != NULL;
    ok = ok && (t->merge_ptrs = malloc(sizeof(char *) * (size_t)(t->n_merges + 1))) != NULL;
    if (ok && !t->score) {  /* merge order as scores: the earlier the merge making a token, the better */
        ok = (t->score = malloc(sizeof(float) * (size_t)t->vocab)) != NULL;
        for (i = 0; ok && i < t->vocab; i++) t->score[i] = -1e9f;
        for (i = t->n_merges - 1; ok && i >= 0; i--) t->score[t->merge_out[i]] = -(float)i;
    }
    if (ok && !t->type) {
        ok = (t->type = malloc(sizeof(int32_t) * (size_t)t->vocab)) != NULL;
        for (i = 0; ok && i < t->vocab; i++) t->type[i] = t->no_text[i] ? 3 : 1;
        for (i = 0; ok && i < t->n_added; i++)
            if (!t->added[i].special) t->type[t->added[i].id] = 4;
        for (i = 0; ok && i < 256 && !t->byte_level; i++)
            if (t->byte_id[i] >= 0) t->type[t->byte_id[i]] = 6;
        if (ok && t->unk_id >= 0) t->type[t->unk_id] = 2;
    }
    for (i = 0; ok && i < t->vocab; i++) {  /* offsets first: the arena may move while it grows */
        voff[i] = t->sto_off[i];
        if (t->kind == RED_TOK_LLAMA2C) ok = !spm_text(t, i, &voff[i]);
    }
    for (i = 0; ok && i < t->n_merges; i++) {
        int a = t->merge[2 * i], b = t->merge[2 * i + 1];
        size_t la = t->sto_len[a], lb = t->sto_len[b];
        char *x = malloc(la + lb + 2);
        ok = x != NULL;
        if (ok) {
            memcpy(x, t->arena + t->sto_off[a], la);
            x[la] = ' ';
            memcpy(x + la + 1, t->arena + t->sto_off[b], lb);
            ok = !arena_put(t, x, la + lb + 1, &moff[i]);
        }
        free(x);
    }
    for (i = 0; ok && i < t->vocab; i++) t->vocab_ptrs[i] = t->arena + voff[i];
    for (i = 0; ok && i < t->n_merges; i++) t->merge_ptrs[i] = t->arena + moff[i];
    free(voff);
    free(moff);
    if (!ok) {
        free(t->vocab_ptrs);
        free(t->merge_ptrs);
        t->vocab_ptrs = t->merge_ptrs = NULL;
    }
    return ok ? 0 : -1;
}

red_status red_tokenizer_to_vocab(const red_tokenizer *t, red_vocab_spec *s, red_error *err) {
    red_tokenizer *m = (red_tokenizer *)t;  /* the arrays are built once and cached in t */
    memset(s, 0, sizeof *s);
    if (t->kind == RED_TOK_BYTE || t->kind == RED_TOK_BPE)
        return red_error_set(err, RED_E_UNSUPPORTED, "tokenizer: red's own tokenizers are recorded as red_tokenizer.json, not as arrays");
    s->model = t->byte_level ? "gpt2" : "llama";
    s->pre = t->byte_level ? pre_name(t, t->re ? t->re->pat : NULL) : NULL;
    if (t->byte_level && !s->pre)
        return red_error_set(err, RED_E_UNSUPPORTED, "tokenizer: the pre-tokenizer pattern has no GGUF name (gpt2, llama-bpe, qwen2)");
    if (!t->vocab_ptrs && vocab_arrays(m)) return nomem(err);
    s->n_tokens = t->vocab;
    s->tokens = t->vocab_ptrs;
    s->scores = t->score;
    s->types = t->type;
    s->n_merges = t->kind == RED_TOK_LLAMA2C ? 0 : t->n_merges;
    s->merges = t->merge_ptrs;
    s->bos_id = t->bos_id;
    s->eos_id = t->eos_id;
    s->unk_id = t->unk_id;
    s->pad_id = t->pad_id;
    s->add_bos = t->add_bos;
    s->add_eos = t->add_eos;
    return RED_OK;
}
