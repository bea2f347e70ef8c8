/* gguf.c - GGUF v3 files, read and written (facts: ../shared/docs/formats.md
 * section 2; ggml docs/gguf.md and src/gguf.cpp).
 *
 * Layout: "GGUF", u32 version, u64 tensor count, u64 kv count; kvs (u64-length
 * string key, u32 type, value); tensor infos (name, u32 n_dims, u64 ne[n_dims]
 * innermost first, u32 ggml type, u64 offset from the data start); zeros to
 * the alignment (general.alignment, default 32); tensor data, each tensor at
 * an aligned offset. All fields little-endian, decoded byte by byte.
 *
 * The reader trusts nothing: every count is checked against the bytes left
 * before anything is allocated for it, strings must fit, nested arrays,
 * unknown types, more than 4 dims, element counts over 2^62, misaligned or
 * overlapping or out-of-file tensor data are errors naming the byte offset.
 * Model mapping (llama.cpp's names, its Q/K permutation for llama) at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 64   /* ggml's GGML_MAX_NAME, NUL included */
#define QK8_0 32

/* ------------------------------------------------------------------ types */

static const int value_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};  /* 0: variable */
static const char *const value_names[13] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                            "string", "array", "u64", "i64", "f64"};

/* Block size and bytes per block of the ggml types red can read. */
static int ggml_block(uint32_t type, uint64_t *blck, uint64_t *bytes) {
    switch (type) {
    case RED_GGML_F32: *blck = 1; *bytes = 4; return 1;
    case RED_GGML_F16: case RED_GGML_BF16: *blck = 1; *bytes = 2; return 1;
    case RED_GGML_Q8_0: *blck = QK8_0; *bytes = 34; return 1;
    default: return 0;
    }
}

static const char *ggml_type_name(uint32_t type) {
    static const char *const names[] = {"F32", "F16", "Q4_0", "Q4_1", "(4)", "(5)", "Q5_0", "Q5_1", "Q8_0",
                                        "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS",
                                        "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
                                        "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};
    return type < sizeof names / sizeof *names ? names[type] : "unknown";
}

/* ------------------------------------------------------------------ cursor */

typedef struct {
    const unsigned char *p;
    size_t len, pos;
    const char *name;
    red_error *err;
} cursor;

static red_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->len - c->pos)
        return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: %s needs %llu bytes, only %zu left (truncated "
                             "or a lying count)", c->name, c->pos, what, (unsigned long long)n, c->len - c->pos);
    return RED_OK;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    int i;
    for (i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static red_status take_u32(cursor *c, uint32_t *v, const char *what) {
    red_status st = need(c, 4, what);
    if (st) return st;
    *v = (uint32_t)le(c->p + c->pos, 4);
    c->pos += 4;
    return RED_OK;
}

static red_status take_u64(cursor *c, uint64_t *v, const char *what) {
    red_status st = need(c, 8, what);
    if (st) return st;
    *v = le(c->p + c->pos, 8);
    c->pos += 8;
    return RED_OK;
}

/* A string: u64 length + bytes. *s points into the file. */
static red_status take_str(cursor *c, const char **s, uint64_t *n, const char *what) {
    size_t at = c->pos;
    red_status st = take_u64(c, n, what);
    if (st) return st;
    if (*n > c->len - c->pos)
        return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: %s has length %llu but only %zu bytes are left",
                             c->name, at, what, (unsigned long long)*n, c->len - c->pos);
    *s = (const char *)c->p + c->pos;
    c->pos += (size_t)*n;
    return RED_OK;
}

static double num_at(const unsigned char *p, uint32_t type) {
    uint64_t u = le(p, value_size[type]);
    switch (type) {
    case RED_GGUF_I8: return (double)(int8_t)(u < 128 ? (int)u : (int)u - 256);
    case RED_GGUF_I16: return (double)(u < 32768 ? (long)u : (long)u - 65536);
    case RED_GGUF_I32: return (double)(u < 0x80000000u ? (int64_t)u : (int64_t)u - ((int64_t)1 << 32));
    case RED_GGUF_I64: return u <= (uint64_t)INT64_MAX ? (double)(int64_t)u : -(double)(~u) - 1.0;
    case RED_GGUF_F32: {
        float f;
        uint32_t w = (uint32_t)u;
        memcpy(&f, &w, 4);
        return f;
    }
    case RED_GGUF_F64: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    default: return (double)u;
    }
}

/* ------------------------------------------------------------------ name indexes */

/* Keys and tensor names are hashed (open addressing) so the duplicate checks
 * and look-ups stay linear in the entries: a file of 100,000 keys is parsed
 * in milliseconds, not minutes. */
static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

static const char *entry_name(const red_gguf *g, int tensors, uint64_t i) {
    return tensors ? g->t[i].name : g->kv[i].key;
}

/* The slot holding name, or the empty slot where it would go. */
static uint64_t *index_probe(const red_gguf *g, int tensors, const char *name) {
    uint64_t *slot = tensors ? g->t_slot : g->kv_slot, mask = tensors ? g->t_mask : g->kv_mask, h;
    for (h = name_hash(name) & mask; slot[h]; h = (h + 1) & mask)
        if (!strcmp(entry_name(g, tensors, slot[h] - 1), name)) break;
    return &slot[h];
}

/* Room for n entries at most half full; n is already bounded by the file size. */
static uint64_t *index_new(uint64_t n, uint64_t *mask) {
    uint64_t slots = 16;
    while (slots < 2 * n) slots *= 2;
    *mask = slots - 1;
    return calloc((size_t)slots, sizeof(uint64_t));
}

/* ------------------------------------------------------------------ read */

void red_gguf_close(red_gguf *g) {
    uint64_t i;
    if (g->kv)
        for (i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].str);
            free(g->kv[i].elem_at);
        }
    if (g->t)
        for (i = 0; i < g->n_tensors; i++) free(g->t[i].name);
    free(g->kv);
    free(g->t);
    free(g->kv_slot);
    free(g->t_slot);
    free(g->file);
    memset(g, 0, sizeof *g);
}

static red_status parse_value(cursor *c, red_gguf_kv *kv) {
    red_status st;
    size_t at = c->pos;
    uint64_t i;
    kv->at = c->pos;
    if (kv->type == RED_GGUF_STRING) {
        const char *s;
        if ((st = take_str(c, &s, &kv->n, "string value"))) return st;
        kv->at = c->pos - kv->n;
        if (!(kv->str = red_strndup(s, (size_t)kv->n))) return red_error_set(c->err, RED_E_NOMEM, "%s: out of memory", c->name);
        return RED_OK;
    }
    if (kv->type != RED_GGUF_ARRAY) {
        if ((st = need(c, (uint64_t)value_size[kv->type], "value"))) return st;
        kv->v.u = le(c->p + c->pos, value_size[kv->type]);
        if (kv->type == RED_GGUF_BOOL && kv->v.u > 1)
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: bool value %llu, expected 0 or 1", c->name, at,
                                 (unsigned long long)kv->v.u);
        if (kv->type == RED_GGUF_I8 || kv->type == RED_GGUF_I16 || kv->type == RED_GGUF_I32 || kv->type == RED_GGUF_I64)
            kv->v.i = (int64_t)num_at(c->p + c->pos, kv->type);
        else if (kv->type == RED_GGUF_F32 || kv->type == RED_GGUF_F64)
            kv->v.f = num_at(c->p + c->pos, kv->type);
        c->pos += (size_t)value_size[kv->type];
        return RED_OK;
    }
    if ((st = take_u32(c, &kv->elem_type, "array element type")) || (st = take_u64(c, &kv->n, "array count")))
        return st;
    if (kv->elem_type > RED_GGUF_F64 || kv->elem_type == RED_GGUF_ARRAY)
        return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: array element type %u, expected 0..12 and not "
                             "array (nested arrays are not GGUF)", c->name, at, kv->elem_type);
    kv->at = c->pos;
    if (kv->elem_type != RED_GGUF_STRING) {
        uint64_t sz = (uint64_t)value_size[kv->elem_type];
        if (kv->n > (c->len - c->pos) / sz)
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: array of %llu %s needs %llu bytes, only %zu left",
                                 c->name, at + 4, (unsigned long long)kv->n, value_names[kv->elem_type],
                                 (unsigned long long)(kv->n * sz), c->len - c->pos);
        if (kv->elem_type == RED_GGUF_BOOL)
            for (i = 0; i < kv->n; i++)
                if (c->p[c->pos + i] > 1)
                    return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: bool value %d, expected 0 or 1",
                                         c->name, c->pos + (size_t)i, c->p[c->pos + i]);
        c->pos += (size_t)(kv->n * sz);
        return RED_OK;
    }
    /* every string takes at least its 8-byte length: bound n before allocating */
    if (kv->n > (c->len - c->pos) / 8)
        return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: array of %llu strings cannot fit in the %zu bytes "
                             "left", c->name, at + 4, (unsigned long long)kv->n, c->len - c->pos);
    if (!(kv->elem_at = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->elem_at)))
        return red_error_set(c->err, RED_E_NOMEM, "%s: out of memory", c->name);
    for (i = 0; i < kv->n; i++) {
        const char *s;
        uint64_t n;
        kv->elem_at[i] = c->pos;
        if ((st = take_str(c, &s, &n, "array string"))) return st;
    }
    return RED_OK;
}

static red_status parse_kvs(cursor *c, red_gguf *g) {
    uint64_t i;
    red_status st;
    /* a kv is at least 8 (key length) + 4 (type) + 1 bytes */
    if (g->n_kv > (c->len - c->pos) / 13)
        return red_error_set(c->err, RED_E_FORMAT, "%s: byte 16: %llu metadata entries cannot fit in %zu bytes",
                             c->name, (unsigned long long)g->n_kv, c->len - c->pos);
    if (!(g->kv = calloc((size_t)(g->n_kv ? g->n_kv : 1), sizeof *g->kv)) || !(g->kv_slot = index_new(g->n_kv, &g->kv_mask)))
        return red_error_set(c->err, RED_E_NOMEM, "%s: out of memory", c->name);
    for (i = 0; i < g->n_kv; i++) {
        red_gguf_kv *kv = &g->kv[i];
        const char *key;
        uint64_t klen, *slot;
        size_t at = c->pos;
        if ((st = take_str(c, &key, &klen, "metadata key"))) return st;
        if (klen == 0 || klen > 65535 || memchr(key, 0, (size_t)klen))
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: metadata key of %llu bytes, expected 1..65535 "
                                 "without NUL", c->name, at, (unsigned long long)klen);
        if (!(kv->key = red_strndup(key, (size_t)klen))) return red_error_set(c->err, RED_E_NOMEM, "%s: out of memory", c->name);
        if (*(slot = index_probe(g, 0, kv->key)))
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: duplicate metadata key \"%s\"", c->name,
                                 at, kv->key);
        *slot = i + 1;
        at = c->pos;
        if ((st = take_u32(c, &kv->type, "metadata value type"))) return st;
        if (kv->type > RED_GGUF_F64)
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: value type %u of \"%s\", expected 0..12",
                                 c->name, at, kv->type, kv->key);
        if ((st = parse_value(c, kv))) return st;
    }
    return RED_OK;
}

static red_status parse_tensor_infos(cursor *c, red_gguf *g) {
    uint64_t i, k;
    red_status st;
    /* an info is at least 8 (name length) + 4 + 4 + 8 bytes */
    if (g->n_tensors > (c->len - c->pos) / 24)
        return red_error_set(c->err, RED_E_FORMAT, "%s: byte 8: %llu tensor infos cannot fit in the %zu bytes left",
                             c->name, (unsigned long long)g->n_tensors, c->len - c->pos);
    if (!(g->t = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *g->t)) ||
        !(g->t_slot = index_new(g->n_tensors, &g->t_mask)))
        return red_error_set(c->err, RED_E_NOMEM, "%s: out of memory", c->name);
    for (i = 0; i < g->n_tensors; i++) {
        red_gguf_tensor *t = &g->t[i];
        const char *nm;
        uint64_t nlen, numel = 1, blck, bsize, *slot;
        uint32_t nd;
        size_t at = c->pos;
        if ((st = take_str(c, &nm, &nlen, "tensor name"))) return st;
        if (nlen == 0 || nlen >= GGUF_MAX_NAME || memchr(nm, 0, (size_t)nlen))
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: tensor name of %llu bytes, expected 1..63",
                                 c->name, at, (unsigned long long)nlen);
        if (!(t->name = red_strndup(nm, (size_t)nlen))) return red_error_set(c->err, RED_E_NOMEM, "%s: out of memory", c->name);
        if (*(slot = index_probe(g, 1, t->name)))
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: duplicate tensor name \"%s\"", c->name, at,
                                 t->name);
        *slot = i + 1;
        at = c->pos;
        if ((st = take_u32(c, &nd, "n_dims"))) return st;
        if (nd < 1 || nd > GGUF_MAX_DIMS)
            return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: tensor \"%s\" has %u dims, expected 1..4",
                                 c->name, at, t->name, nd);
        t->n_dims = (int)nd;
        for (k = 0; k < GGUF_MAX_DIMS; k++) t->ne[k] = 1;
        for (k = 0; k < nd; k++) {
            at = c->pos;
            if ((st = take_u64(c, &t->ne[k], "tensor dim"))) return st;
            if (t->ne[k] && numel > ((uint64_t)1 << 62) / t->ne[k])
                return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: dims of tensor \"%s\" overflow (more than "
                                     "2^62 elements)", c->name, at, t->name);
            numel *= t->ne[k];
        }
        at = c->pos;
        if ((st = take_u32(c, &t->type, "tensor type"))) return st;
        if (!ggml_block(t->type, &blck, &bsize))
            return red_error_set(c->err, RED_E_UNSUPPORTED, "%s: byte %zu: tensor \"%s\" has ggml type %u (%s); red "
                                 "reads F32, F16, BF16 and Q8_0", c->name, at, t->name, t->type, ggml_type_name(t->type));
        if (t->ne[0] % blck)
            return red_error_set(c->err, RED_E_FORMAT, "%s: tensor \"%s\": ne[0] = %llu is not a multiple of the %s "
                                 "block size %llu", c->name, t->name, (unsigned long long)t->ne[0],
                                 ggml_type_name(t->type), (unsigned long long)blck);
        t->nbytes = numel / blck * bsize;
        if ((st = take_u64(c, &t->offset, "tensor offset"))) return st;
    }
    return RED_OK;
}

/* Offsets: aligned, in data order without overlap, inside the file. */
static red_status check_layout(cursor *c, red_gguf *g) {
    uint64_t i, end = 0, data_len;
    if (g->n_tensors == 0) {
        g->data_start = c->pos;  /* vocab-only files end after the kvs */
        return RED_OK;
    }
    g->data_start = (c->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->data_start > c->len)
        return red_error_set(c->err, RED_E_FORMAT, "%s: byte %zu: the tensor data should start at byte %llu, past the "
                             "end of the %zu-byte file", c->name, c->pos, (unsigned long long)g->data_start, c->len);
    data_len = c->len - g->data_start;
    for (i = 0; i < g->n_tensors; i++) {
        const red_gguf_tensor *t = &g->t[i];
        if (t->offset % g->alignment)
            return red_error_set(c->err, RED_E_FORMAT, "%s: tensor \"%s\": offset %llu is not a multiple of the "
                                 "alignment %llu", c->name, t->name, (unsigned long long)t->offset,
                                 (unsigned long long)g->alignment);
        if (t->offset < end)
            return red_error_set(c->err, RED_E_FORMAT, "%s: tensor \"%s\": offset %llu overlaps the previous tensor "
                                 "(ending at %llu); tensors must be in data order", c->name, t->name,
                                 (unsigned long long)t->offset, (unsigned long long)end);
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            return red_error_set(c->err, RED_E_FORMAT, "%s: tensor \"%s\": data [%llu, %llu) after byte %llu runs past "
                                 "the end of the %zu-byte file", c->name, t->name, (unsigned long long)t->offset,
                                 (unsigned long long)(t->offset + t->nbytes), (unsigned long long)g->data_start, c->len);
        end = t->offset + t->nbytes;
    }
    return RED_OK;
}

red_status red_gguf_parse(red_gguf *g, unsigned char *file, size_t len, const char *name, red_error *err) {
    cursor c;
    uint32_t magic;
    red_status st;
    int64_t align = 0;
    int have;
    memset(g, 0, sizeof *g);
    g->file = file;
    g->len = len;
    snprintf(g->path, sizeof g->path, "%s", name);
    c.p = file; c.len = len; c.pos = 0; c.name = g->path; c.err = err;
    if ((st = take_u32(&c, &magic, "magic"))) goto fail;
    if (memcmp(file, GGUF_MAGIC, 4)) {
        st = red_error_set(err, RED_E_FORMAT, "%s: byte 0: magic is not \"GGUF\"", name);
        goto fail;
    }
    if ((st = take_u32(&c, &g->version, "version"))) goto fail;
    if (g->version != 2 && g->version != 3) {
        st = red_error_set(err, RED_E_UNSUPPORTED, "%s: byte 4: GGUF version %u, expected 3 (or 2)%s", name, g->version,
                           g->version == 0x03000000u ? "; this file is big-endian" : "");
        goto fail;
    }
    if ((st = take_u64(&c, &g->n_tensors, "tensor count")) || (st = take_u64(&c, &g->n_kv, "metadata count")) ||
        (st = parse_kvs(&c, g)) || (st = parse_tensor_infos(&c, g)))
        goto fail;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    have = red_gguf_get_int(g, "general.alignment", &align);
    if (have) {
        const red_gguf_kv *kv = red_gguf_find(g, "general.alignment");
        if (kv->type != RED_GGUF_U32 || align < 1 || (align & (align - 1))) {
            st = red_error_set(err, RED_E_FORMAT, "%s: byte %llu: general.alignment must be a u32 power of two",
                               name, (unsigned long long)kv->at);
            goto fail;
        }
        g->alignment = (uint64_t)align;
    }
    if ((st = check_layout(&c, g))) goto fail;
    return RED_OK;
fail:
    red_gguf_close(g);
    return st;
}

red_status red_gguf_open(red_gguf *g, const char *path, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status st;
    memset(g, 0, sizeof *g);
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    return red_gguf_parse(g, buf, len, path, err);
}

const red_gguf_kv *red_gguf_find(const red_gguf *g, const char *key) {
    uint64_t i = g->kv_slot ? *index_probe(g, 0, key) : 0;
    return i ? &g->kv[i - 1] : NULL;
}

const red_gguf_tensor *red_gguf_find_tensor(const red_gguf *g, const char *name) {
    uint64_t i = g->t_slot ? *index_probe(g, 1, name) : 0;
    return i ? &g->t[i - 1] : NULL;
}

int red_gguf_get_int(const red_gguf *g, const char *key, int64_t *out) {
    const red_gguf_kv *kv = red_gguf_find(g, key);
    if (!kv) return 0;
    switch (kv->type) {
    case RED_GGUF_U8: case RED_GGUF_U16: case RED_GGUF_U32: case RED_GGUF_BOOL:
        *out = (int64_t)kv->v.u;
        return 1;
    case RED_GGUF_U64:
        if (kv->v.u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)kv->v.u;
        return 1;
    case RED_GGUF_I8: case RED_GGUF_I16: case RED_GGUF_I32: case RED_GGUF_I64:
        *out = kv->v.i;
        return 1;
    default: return -1;
    }
}

int red_gguf_get_float(const red_gguf *g, const char *key, double *out) {
    const red_gguf_kv *kv = red_gguf_find(g, key);
    int64_t i;
    int r;
    if (!kv) return 0;
    if (kv->type == RED_GGUF_F32 || kv->type == RED_GGUF_F64) {
        *out = kv->v.f;
        return 1;
    }
    if ((r = red_gguf_get_int(g, key, &i)) == 1) *out = (double)i;
    return r;
}

const char *red_gguf_get_str(const red_gguf *g, const char *key) {
    const red_gguf_kv *kv = red_gguf_find(g, key);
    return kv && kv->type == RED_GGUF_STRING ? kv->str : NULL;
}

const char *red_gguf_arr_str(const red_gguf *g, const red_gguf_kv *kv, uint64_t i, uint64_t *len) {
    if (kv->type != RED_GGUF_ARRAY || kv->elem_type != RED_GGUF_STRING || i >= kv->n) return NULL;
    *len = le(g->file + kv->elem_at[i], 8);
    return (const char *)g->file + kv->elem_at[i] + 8;
}

double red_gguf_arr_num(const red_gguf *g, const red_gguf_kv *kv, uint64_t i) {
    if (kv->type != RED_GGUF_ARRAY || kv->elem_type == RED_GGUF_STRING || i >= kv->n) return NAN;
    return num_at(g->file + kv->at + i * (uint64_t)value_size[kv->elem_type], kv->elem_type);
}

red_status red_gguf_tensor_f32(const red_gguf *g, const red_gguf_tensor *t, float *out, red_error *err) {
    const unsigned char *p = g->file + g->data_start + t->offset;
    uint64_t i, j, n;
    switch (t->type) {
    case RED_GGML_F32:
        red_get_f32le(out, p, (size_t)(t->nbytes / 4));
        return RED_OK;
    case RED_GGML_F16: case RED_GGML_BF16:
        for (i = 0; i < t->nbytes / 2; i++) {
            uint16_t h = (uint16_t)le(p + 2 * i, 2);
            out[i] = t->type == RED_GGML_F16 ? red_f16_to_f32(h) : red_bf16_to_f32(h);
        }
        return RED_OK;
    case RED_GGML_Q8_0:  /* blocks {f16 d; i8 qs[32]}: x = qs * d */
        n = t->nbytes / 34;
        for (i = 0; i < n; i++, p += 34) {
            float d = red_f16_to_f32((uint16_t)le(p, 2));
            for (j = 0; j < QK8_0; j++) {
                int q = p[2 + j] < 128 ? p[2 + j] : p[2 + j] - 256;
                out[i * QK8_0 + j] = (float)q * d;
            }
        }
        return RED_OK;
    default:
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: tensor \"%s\": ggml type %u cannot be read", g->path, t->name,
                             t->type);
    }
}

/* ------------------------------------------------------------------ write */

struct red_gguf_wtensor {
    const float *data;
    float *own;           /* the copy, when asked for */
    uint64_t numel;
    uint32_t type;
};

void red_gguf_w_init(red_gguf_writer *w) {
    memset(w, 0, sizeof *w);
    red_sbuf_init(&w->kv);
    red_sbuf_init(&w->info);
}

void red_gguf_w_free(red_gguf_writer *w) {
    size_t i;
    for (i = 0; i < w->n_tensors; i++) free(w->t[i].own);
    free(w->t);
    red_sbuf_free(&w->kv);
    red_sbuf_free(&w->info);
    memset(w, 0, sizeof *w);
}

static void put_le(red_sbuf *b, uint64_t v, int n) {
    char p[8];
    int i;
    for (i = 0; i < n; i++) p[i] = (char)(unsigned char)(v >> (8 * i));
    red_sbuf_put(b, p, (size_t)n);
}

static void put_str(red_sbuf *b, const char *s, size_t n) {
    put_le(b, n, 8);
    red_sbuf_put(b, s, n);
}

static void put_key(red_gguf_writer *w, const char *key, uint32_t type) {
    put_str(&w->kv, key, strlen(key));
    put_le(&w->kv, type, 4);
    w->n_kv++;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

void red_gguf_w_u32(red_gguf_writer *w, const char *key, uint32_t v) { put_key(w, key, RED_GGUF_U32); put_le(&w->kv, v, 4); }
static void red_gguf_w_f32(red_gguf_writer *w, const char *key, float v) { put_key(w, key, RED_GGUF_F32); put_le(&w->kv, f32_bits(v), 4); }
static void red_gguf_w_bool(red_gguf_writer *w, const char *key, int v) { put_key(w, key, RED_GGUF_BOOL); put_le(&w->kv, v != 0, 1); }
void red_gguf_w_str(red_gguf_writer *w, const char *key, const char *s) { put_key(w, key, RED_GGUF_STRING); put_str(&w->kv, s, strlen(s)); }

static void put_arr_head(red_gguf_writer *w, const char *key, uint32_t elem, uint64_t n) {
    put_key(w, key, RED_GGUF_ARRAY);
    put_le(&w->kv, elem, 4);
    put_le(&w->kv, n, 8);
}

static void red_gguf_w_arr_str(red_gguf_writer *w, const char *key, const char *const *s, const size_t *lens, uint64_t n) {
    uint64_t i;
    put_arr_head(w, key, RED_GGUF_STRING, n);
    for (i = 0; i < n; i++) put_str(&w->kv, s[i], lens ? lens[i] : strlen(s[i]));
}

static void red_gguf_w_arr_f32(red_gguf_writer *w, const char *key, const float *x, uint64_t n) {
    uint64_t i;
    put_arr_head(w, key, RED_GGUF_F32, n);
    for (i = 0; i < n; i++) put_le(&w->kv, f32_bits(x[i]), 4);
}

static void red_gguf_w_arr_i32(red_gguf_writer *w, const char *key, const int32_t *x, uint64_t n) {
    uint64_t i;
    put_arr_head(w, key, RED_GGUF_I32, n);
    for (i = 0; i < n; i++) put_le(&w->kv, (uint32_t)x[i], 4);
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

red_status red_gguf_w_tensor(red_gguf_writer *w, const char *name, int n_dims, const uint64_t *ne, uint32_t type,
                             const float *data, int copy, red_error *err) {
    struct red_gguf_wtensor *t;
    uint64_t numel = 1, blck, bsize;
    int k;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || strlen(name) >= GGUF_MAX_NAME || !ggml_block(type, &blck, &bsize) ||
        ne[0] % blck)
        return red_error_set(err, RED_E_ARG, "gguf writer: tensor \"%s\": bad dims, name or type %u", name, type);
    for (k = 0; k < n_dims; k++) numel *= ne[k];
    if (w->n_tensors == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        struct red_gguf_wtensor *g = realloc(w->t, cap * sizeof *g);
        if (!g) return red_error_set(err, RED_E_NOMEM, "gguf writer: out of memory");
        w->t = g;
        w->cap = cap;
    }
    t = &w->t[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->data = data;
    t->numel = numel;
    t->type = type;
    if (copy) {
        if (!(t->own = malloc((size_t)numel * sizeof(float) + 1)))
            return red_error_set(err, RED_E_NOMEM, "gguf writer: out of memory for \"%s\"", name);
        memcpy(t->own, data, (size_t)numel * sizeof(float));
        t->data = t->own;
    }
    w->n_tensors++;
    put_str(&w->info, name, strlen(name));
    put_le(&w->info, (uint64_t)n_dims, 4);
    for (k = 0; k < n_dims; k++) put_le(&w->info, ne[k], 8);
    put_le(&w->info, type, 4);
    put_le(&w->info, w->data_bytes, 8);
    w->data_bytes = pad_to(w->data_bytes + numel / blck * bsize, GGUF_DEFAULT_ALIGNMENT);
    return RED_OK;
}

/* ggml's quantize_row_q8_0_ref: d = amax/127, q = round(x/d). */
static void put_q8_0(unsigned char *p, const float *x, uint64_t n) {
    uint64_t b, j;
    for (b = 0; b < n / QK8_0; b++, p += 34, x += QK8_0) {
        float amax = 0.0f, d, id;
        uint16_t dh;
        for (j = 0; j < QK8_0; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        dh = red_f32_to_f16(d);
        p[0] = (unsigned char)dh;
        p[1] = (unsigned char)(dh >> 8);
        for (j = 0; j < QK8_0; j++) p[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
    }
}

static void put_data(unsigned char *p, const struct red_gguf_wtensor *t) {
    uint64_t i;
    if (t->type == RED_GGML_F32) red_put_f32le(p, t->data, (size_t)t->numel);
    else if (t->type == RED_GGML_Q8_0) put_q8_0(p, t->data, t->numel);
    else
        for (i = 0; i < t->numel; i++) {
            uint16_t h = t->type == RED_GGML_F16 ? red_f32_to_f16(t->data[i]) : red_f32_to_bf16(t->data[i]);
            p[2 * i] = (unsigned char)h;
            p[2 * i + 1] = (unsigned char)(h >> 8);
        }
}

red_status red_gguf_w_write(red_gguf_writer *w, const char *path, red_error *err) {
    unsigned char *buf, *p;
    uint64_t head, total, off = 0;
    size_t i;
    red_status st;
    if (w->kv.failed || w->info.failed) return red_error_set(err, RED_E_NOMEM, "%s: out of memory", path);
    head = 24 + w->kv.len + w->info.len;
    total = w->n_tensors ? pad_to(head, GGUF_DEFAULT_ALIGNMENT) + w->data_bytes : head;
    if (total > (uint64_t)SIZE_MAX / 2) return red_error_set(err, RED_E_NOMEM, "%s: too large", path);
    if (!(buf = calloc((size_t)total, 1)))
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory (%llu bytes)", path, (unsigned long long)total);
    memcpy(buf, GGUF_MAGIC, 4);
    red_put_u64le(buf + 4, 3);  /* u32 version 3; the next 4 bytes are overwritten below */
    red_put_u64le(buf + 8, w->n_tensors);
    red_put_u64le(buf + 16, w->n_kv);
    if (w->kv.len) memcpy(buf + 24, w->kv.p, w->kv.len);
    if (w->info.len) memcpy(buf + 24 + w->kv.len, w->info.p, w->info.len);
    p = buf + pad_to(head, GGUF_DEFAULT_ALIGNMENT);
    for (i = 0; i < w->n_tensors; i++) {
        uint64_t blck, bsize;
        ggml_block(w->t[i].type, &blck, &bsize);
        put_data(p + off, &w->t[i]);
        off = pad_to(off + w->t[i].numel / blck * bsize, GGUF_DEFAULT_ALIGNMENT);
    }
    st = red_write_file_atomic(path, buf, (size_t)total, err);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ tokenizers */

/* An optional integer key; absent or negative gives def. */
static int tok_id(const red_gguf *g, const char *key, int def) {
    int64_t v;
    return red_gguf_get_int(g, key, &v) == 1 && v >= 0 && v <= INT32_MAX ? (int)v : def;
}

/* The strings of an array kv as NUL-terminated copies in one block. */
static red_status arr_strings(const red_gguf *g, const red_gguf_kv *kv, char ***out, red_error *err) {
    uint64_t i, len = 0, total = 0;
    char **p, *s;
    for (i = 0; i < kv->n; i++) {
        red_gguf_arr_str(g, kv, i, &len);
        total += len + 1;
    }
    p = malloc((size_t)kv->n * sizeof *p + (size_t)total + 1);
    if (!p) return red_error_set(err, RED_E_NOMEM, "%s: out of memory for %s", g->path, kv->key);
    s = (char *)(p + kv->n);
    for (i = 0; i < kv->n; i++) {
        const char *src = red_gguf_arr_str(g, kv, i, &len);
        p[i] = s;
        memcpy(s, src, (size_t)len);
        s[len] = 0;
        s += len + 1;
    }
    *out = p;
    return RED_OK;
}

static red_status tok_array(const red_gguf *g, const char *key, int strings, uint64_t want_n, const red_gguf_kv **out,
                            red_error *err) {
    const red_gguf_kv *kv = red_gguf_find(g, key);
    *out = NULL;
    if (!kv) return RED_OK;
    if (kv->type != RED_GGUF_ARRAY || (strings != (kv->elem_type == RED_GGUF_STRING)) ||
        kv->elem_type == RED_GGUF_BOOL || kv->n > INT32_MAX || (want_n && kv->n != want_n))
        return red_error_set(err, RED_E_FORMAT, "%s: byte %llu: %s must be an array of %s%s", g->path,
                             (unsigned long long)kv->at, key, strings ? "strings" : "numbers",
                             want_n ? " with one entry per token" : "");
    *out = kv;
    return RED_OK;
}

red_status red_gguf_tokenizer(red_tokenizer **out, const red_gguf *g, red_error *err) {
    red_vocab_spec s;
    const red_gguf_kv *tokens, *merges, *scores, *types;
    char **tok_str = NULL, **merge_str = NULL;
    float *sc = NULL;
    int32_t *ty = NULL;
    int64_t flag;
    red_status st;
    uint64_t i;
    *out = NULL;
    memset(&s, 0, sizeof s);
    s.model = red_gguf_get_str(g, "tokenizer.ggml.model");
    if (!s.model) return red_error_set(err, RED_E_FORMAT, "%s: no tokenizer (tokenizer.ggml.model); pass --tokenizer", g->path);
    if ((st = tok_array(g, "tokenizer.ggml.tokens", 1, 0, &tokens, err))) return st;
    if (!tokens) return red_error_set(err, RED_E_FORMAT, "%s: tokenizer.ggml.tokens is missing", g->path);
    if ((st = tok_array(g, "tokenizer.ggml.merges", 1, 0, &merges, err)) ||
        (st = tok_array(g, "tokenizer.ggml.scores", 0, tokens->n, &scores, err)) ||
        (st = tok_array(g, "tokenizer.ggml.token_type", 0, tokens->n, &types, err)))
        return st;
    if ((st = arr_strings(g, tokens, &tok_str, err)) || (merges && (st = arr_strings(g, merges, &merge_str, err))))
        goto done;
    if ((scores && !(sc = malloc(sizeof *sc * (size_t)(tokens->n + 1)))) ||
        (types && !(ty = malloc(sizeof *ty * (size_t)(tokens->n + 1))))) {
        st = red_error_set(err, RED_E_NOMEM, "%s: out of memory", g->path);
        goto done;
    }
    for (i = 0; i < tokens->n; i++) {
        double v = sc ? red_gguf_arr_num(g, scores, i) : 0.0, t = ty ? red_gguf_arr_num(g, types, i) : 1.0;
        /* checked before the conversion: an out-of-range one is undefined in C */
        if (!(fabs(v) <= FLT_MAX) || !(t >= 0 && t <= 6 && t == floor(t))) {
            st = red_error_set(err, RED_E_FORMAT, "%s: token %llu: %s %g, expected %s", g->path, (unsigned long long)i,
                               fabs(v) <= FLT_MAX ? "tokenizer.ggml.token_type" : "tokenizer.ggml.scores",
                               fabs(v) <= FLT_MAX ? t : v,
                               fabs(v) <= FLT_MAX ? "a llama.cpp token type 0..6" : "a finite float score");
            goto done;
        }
        if (sc) sc[i] = (float)v;
        if (ty) ty[i] = (int32_t)t;
    }
    s.pre = red_gguf_get_str(g, "tokenizer.ggml.pre");
    s.n_tokens = (int)tokens->n;
    s.tokens = (const char *const *)tok_str;
    s.scores = sc;
    s.types = ty;
    s.n_merges = merges ? (int)merges->n : 0;
    s.merges = (const char *const *)merge_str;
    s.bos_id = tok_id(g, "tokenizer.ggml.bos_token_id", -1);
    s.eos_id = tok_id(g, "tokenizer.ggml.eos_token_id", -1);
    s.unk_id = tok_id(g, "tokenizer.ggml.unknown_token_id", -1);
    s.pad_id = tok_id(g, "tokenizer.ggml.padding_token_id", -1);
    /* llama.cpp's defaults: SentencePiece vocabularies add BOS, byte-level ones do not */
    s.add_bos = red_gguf_get_int(g, "tokenizer.ggml.add_bos_token", &flag) == 1 ? flag != 0 : !strcmp(s.model, "llama");
    s.add_eos = red_gguf_get_int(g, "tokenizer.ggml.add_eos_token", &flag) == 1 ? flag != 0 : 0;
    {
        red_error e2;
        if ((st = red_tokenizer_from_vocab(out, &s, &e2))) st = red_error_set(err, st, "%s: %s", g->path, e2.msg);
    }
done:
    free(tok_str);
    free(merge_str);
    free(sc);
    free(ty);
    return st;
}

/* tokenizer.ggml.* from a tokenizer. */
static red_status put_tokenizer(red_gguf_writer *w, const red_tokenizer *tok, red_error *err) {
    red_vocab_spec s;
    red_status st = red_tokenizer_to_vocab(tok, &s, err);
    if (st) return st;
    red_gguf_w_str(w, "tokenizer.ggml.model", s.model);
    if (s.pre) red_gguf_w_str(w, "tokenizer.ggml.pre", s.pre);
    red_gguf_w_arr_str(w, "tokenizer.ggml.tokens", s.tokens, NULL, (uint64_t)s.n_tokens);
    if (s.scores) red_gguf_w_arr_f32(w, "tokenizer.ggml.scores", s.scores, (uint64_t)s.n_tokens);
    if (s.types) red_gguf_w_arr_i32(w, "tokenizer.ggml.token_type", s.types, (uint64_t)s.n_tokens);
    if (s.n_merges) red_gguf_w_arr_str(w, "tokenizer.ggml.merges", s.merges, NULL, (uint64_t)s.n_merges);
    if (s.bos_id >= 0) red_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s.bos_id);
    if (s.eos_id >= 0) red_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s.eos_id);
    if (s.unk_id >= 0) red_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)s.unk_id);
    if (s.pad_id >= 0) red_gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)s.pad_id);
    red_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", s.add_bos);
    red_gguf_w_bool(w, "tokenizer.ggml.add_eos_token", s.add_eos);
    return RED_OK;
}

/* ------------------------------------------------------------------ models */

/* HF name suffix -> llama.cpp name suffix (formats.md 2.5). */
static const char *const name_map[][2] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},         {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},         {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},         {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},          {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

static void gguf_name_of(const char *hf, char *out, size_t cap) {
    int layer;
    size_t k;
    char rest[64];
    if (!strcmp(hf, "model.embed_tokens.weight")) snprintf(out, cap, "token_embd.weight");
    else if (!strcmp(hf, "model.norm.weight")) snprintf(out, cap, "output_norm.weight");
    else if (!strcmp(hf, "lm_head.weight")) snprintf(out, cap, "output.weight");
    else if (sscanf(hf, "model.layers.%d.%63s", &layer, rest) == 2) {
        for (k = 0; k < sizeof name_map / sizeof *name_map; k++)
            if (!strcmp(rest, name_map[k][0])) {
                snprintf(out, cap, "blk.%d.%s", layer, name_map[k][1]);
                return;
            }
        snprintf(out, cap, "%s", hf);
    } else snprintf(out, cap, "%s", hf);
}

/* Rows of the Q/K weights and biases of every layer between llama.cpp's
 * interleaved order (arch llama) and red's rotate-half order. */
static red_status permute_qk(red_weights *w, const red_config *c, int to_half) {
    int l;
    for (l = 0; l < c->n_layers; l++) {
        red_layer_weights *lw = &w->layers[l];
        if (red_rope_permute_rows(lw->wq, c->n_heads, c->head_dim, c->dim, to_half) ||
            red_rope_permute_rows(lw->wk, c->n_kv_heads, c->head_dim, c->dim, to_half) ||
            (lw->bq && red_rope_permute_rows(lw->bq, c->n_heads, c->head_dim, 1, to_half)) ||
            (lw->bk && red_rope_permute_rows(lw->bk, c->n_kv_heads, c->head_dim, 1, to_half)))
            return RED_E_NOMEM;
    }
    return RED_OK;
}

/* An integer "{arch}.suffix" in [lo, hi]; absent: *out keeps its default
 * unless required. */
static red_status arch_int(const red_gguf *g, const char *arch, const char *suffix, int required, int lo, int hi,
                           int *out, red_error *err) {
    char key[128];
    int64_t v = 0;
    int r;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    r = red_gguf_get_int(g, key, &v);
    if (r == 0 && !required) return RED_OK;
    if (r == 0) return red_error_set(err, RED_E_FORMAT, "%s: missing metadata key %s", g->path, key);
    if (r < 0 || v < lo || v > hi)
        return red_error_set(err, RED_E_FORMAT, "%s: byte %llu: %s must be an integer in %d..%d", g->path,
                             (unsigned long long)red_gguf_find(g, key)->at, key, lo, hi);
    *out = (int)v;
    return RED_OK;
}

static red_status arch_float(const red_gguf *g, const char *arch, const char *suffix, float *out, red_error *err) {
    char key[128];
    double v = 0.0;
    int r;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    r = red_gguf_get_float(g, key, &v);
    if (r < 0 || (r > 0 && !(v > 0.0 && v < 1e30)))
        return red_error_set(err, RED_E_FORMAT, "%s: byte %llu: %s must be a positive number", g->path,
                             (unsigned long long)red_gguf_find(g, key)->at, key);
    if (r > 0) *out = (float)v;
    return RED_OK;
}

/* llama3 RoPE scaling is stored only as rope_freqs.weight (the divisor of each
 * inverse frequency). red recognises it as Llama 3.x's scaling (low 1, high 4,
 * original context 8192) with the factor its largest divisor. */
static red_status rope_freqs_config(const red_gguf *g, red_config *c, red_error *err) {
    const red_gguf_tensor *t = red_gguf_find_tensor(g, "rope_freqs.weight");
    float div[2048], inv[2048], base[2048], mx = 1.0f;
    red_config plain = *c;
    int i, half = c->head_dim / 2;
    red_status st;
    if (!t) return RED_OK;
    if (t->n_dims != 1 || t->ne[0] != (uint64_t)half || half > 2048)
        return red_error_set(err, RED_E_FORMAT, "%s: rope_freqs.weight has %llu values, expected head_dim/2 = %d",
                             g->path, (unsigned long long)t->ne[0], half);
    if ((st = red_gguf_tensor_f32(g, t, div, err))) return st;
    for (i = 0; i < half; i++) mx = div[i] > mx ? div[i] : mx;
    if (mx == 1.0f) return RED_OK;
    c->rope_llama3 = 1;
    c->rope_factor = mx;
    c->rope_low_freq = 1.0f;
    c->rope_high_freq = 4.0f;
    c->rope_orig_ctx = 8192;
    red_rope_inv_freq(c, inv);
    red_rope_inv_freq(&plain, base);
    for (i = 0; i < half; i++)
        if (fabsf(base[i] / inv[i] - div[i]) > 1e-4f * div[i])
            return red_error_set(err, RED_E_UNSUPPORTED, "%s: rope_freqs.weight[%d] = %g is not Llama 3's rope "
                                 "scaling (factor %g, low 1, high 4, original context 8192 gives %g)", g->path, i,
                                 div[i], mx, base[i] / inv[i]);
    return RED_OK;
}

static red_status gguf_config(const red_gguf *g, red_config *c, red_error *err) {
    const char *arch = red_gguf_get_str(g, "general.architecture"), *scaling;
    const red_gguf_tensor *emb = red_gguf_find_tensor(g, "token_embd.weight");
    int64_t id;
    int kl = 0, vl = 0, rd = 0;
    red_status st;
    char key[128];
    red_config_default(c);
    if (!arch) return red_error_set(err, RED_E_FORMAT, "%s: no general.architecture string", g->path);
    if (!strcmp(arch, "llama")) c->arch = RED_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2")) c->arch = RED_ARCH_QWEN2;
    else return red_error_set(err, RED_E_UNSUPPORTED, "%s: architecture \"%s\" is not supported (llama, qwen2)", g->path, arch);
    c->max_pos = 2048;
    if ((st = arch_int(g, arch, "embedding_length", 1, 1, 1 << 16, &c->dim, err)) ||
        (st = arch_int(g, arch, "feed_forward_length", 1, 1, 1 << 18, &c->ffn, err)) ||
        (st = arch_int(g, arch, "block_count", 1, 1, 1024, &c->n_layers, err)) ||
        (st = arch_int(g, arch, "attention.head_count", 1, 1, 1024, &c->n_heads, err)) ||
        (st = arch_int(g, arch, "context_length", 0, 1, 1 << 24, &c->max_pos, err)))
        return st;
    c->n_kv_heads = c->n_heads;
    if ((st = arch_int(g, arch, "attention.head_count_kv", 0, 1, 1024, &c->n_kv_heads, err)) ||
        (st = arch_int(g, arch, "attention.key_length", 0, 1, 4096, &kl, err)) ||
        (st = arch_int(g, arch, "attention.value_length", 0, 1, 4096, &vl, err)) ||
        (st = arch_int(g, arch, "rope.dimension_count", 0, 1, 4096, &rd, err)) ||
        (st = arch_float(g, arch, "attention.layer_norm_rms_epsilon", &c->norm_eps, err)) ||
        (st = arch_float(g, arch, "rope.freq_base", &c->rope_theta, err)))
        return st;
    c->head_dim = kl ? kl : c->dim / c->n_heads;
    if ((vl && vl != c->head_dim) || (rd && rd != c->head_dim))
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: key_length %d, value_length %d, rope.dimension_count %d: "
                             "red needs them equal (full rotary, one head size)", g->path, c->head_dim, vl, rd);
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    scaling = red_gguf_get_str(g, key);
    if (scaling && strcmp(scaling, "none"))
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: %s \"%s\" is not supported", g->path, key, scaling);
    if (!emb || emb->n_dims != 2 || emb->ne[0] != (uint64_t)c->dim || emb->ne[1] < 1 || emb->ne[1] > (1u << 22))
        return red_error_set(err, RED_E_FORMAT, "%s: token_embd.weight must be a 2-D tensor with ne[0] = "
                             "embedding_length %d", g->path, c->dim);
    c->vocab = (int)emb->ne[1];
    c->tied = red_gguf_find_tensor(g, "output.weight") == NULL;
    c->qkv_bias = red_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    if (red_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &id) == 1 && id >= 0 && id < c->vocab) c->bos_id = (int)id;
    if (red_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &id) == 1 && id >= 0 && id < c->vocab) c->eos_id = (int)id;
    if ((st = rope_freqs_config(g, c, err))) return st;
    {
        red_error e2;
        if ((st = red_config_check(c, &e2))) return red_error_set(err, st, "%s: %s", g->path, e2.msg);
    }
    return RED_OK;
}

red_status red_gguf_model_load(red_model *m, const red_gguf *g, red_pool *pool, red_error *err) {
    red_config c;
    red_status st;
    uint64_t k;
    int i;
    char nm[96];
    uint64_t file_numel = 0;
    unsigned char *seen;  /* the file's tensors the model reads */
    if ((st = gguf_config(g, &c, err))) return st;
    /* no allocation beyond what the file's tensors can fill */
    for (k = 0; k < g->n_tensors; k++) file_numel += g->t[k].ne[0] * g->t[k].ne[1] * g->t[k].ne[2] * g->t[k].ne[3];
    if ((uint64_t)red_param_floats(&c) > file_numel)
        return red_error_set(err, RED_E_FORMAT, "%s: the metadata implies %llu parameters, the file's tensors hold %llu",
                             g->path, (unsigned long long)red_param_floats(&c), (unsigned long long)file_numel);
    if (!(seen = calloc((size_t)g->n_tensors + 1, 1))) return red_error_set(err, RED_E_NOMEM, "%s: out of memory", g->path);
    if ((st = red_model_alloc(m, &c, pool, err))) {
        free(seen);
        return st;
    }
    for (i = 0; i < m->n_tensors; i++) {
        const red_param *p = &m->table[i];
        const red_gguf_tensor *t;
        gguf_name_of(p->name, nm, sizeof nm);
        t = red_gguf_find_tensor(g, nm);
        if (!t) {
            st = red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" is missing (metadata says %d layers%s)", g->path,
                               nm, c.n_layers, c.qkv_bias ? ", q/k/v biases" : "");
            goto fail;
        }
        if (t->n_dims != p->ndim || t->ne[0] != (uint64_t)p->shape[p->ndim - 1] ||
            (p->ndim == 2 && t->ne[1] != (uint64_t)p->shape[0])) {
            st = red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" has ne [%llu, %llu] (%d-D), the metadata implies "
                               "[%lld, %lld] (innermost first)", g->path, nm, (unsigned long long)t->ne[0],
                               (unsigned long long)t->ne[1], t->n_dims, (long long)p->shape[p->ndim - 1],
                               (long long)(p->ndim == 2 ? p->shape[0] : 1));
            goto fail;
        }
        if ((st = red_gguf_tensor_f32(g, t, m->params + p->offset, err))) goto fail;
        seen[t - g->t] = 1;
    }
    for (k = 0; k < g->n_tensors; k++)
        if (!seen[k] && strcmp(g->t[k].name, "rope_freqs.weight")) {
            st = red_error_set(err, RED_E_FORMAT, "%s: unexpected tensor \"%s\" for a %s model of %d layers",
                               g->path, g->t[k].name, red_arch_name(c.arch), c.n_layers);
            goto fail;
        }
    if (c.arch == RED_ARCH_LLAMA && permute_qk(&m->w, &c, 1)) {
        st = red_error_set(err, RED_E_NOMEM, "%s: out of memory", g->path);
        goto fail;
    }
    free(seen);
    return RED_OK;
fail:
    free(seen);
    red_model_free(m);
    return st;
}

static void put_config(red_gguf_writer *w, const red_config *c, red_dtype dtype, int ids) {
    const char *a = red_arch_name(c->arch);
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    red_gguf_w_str(w, "general.architecture", a);
    red_gguf_w_str(w, "general.name", "red");
    red_gguf_w_u32(w, "general.file_type", dtype == RED_DT_F32 ? 0 : dtype == RED_DT_F16 ? 1 : 32);
    red_gguf_w_u32(w, KEY("context_length"), (uint32_t)c->max_pos);
    red_gguf_w_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
    red_gguf_w_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    red_gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn);
    red_gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    red_gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    red_gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
    red_gguf_w_f32(w, KEY("rope.freq_base"), c->rope_theta);
    if (c->head_dim * c->n_heads != c->dim) {
        red_gguf_w_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
        red_gguf_w_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    }
    if (c->arch == RED_ARCH_LLAMA) {
        red_gguf_w_u32(w, KEY("vocab_size"), (uint32_t)c->vocab);
        red_gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    }
#undef KEY
    if (ids && c->bos_id >= 0) red_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id);
    if (ids && c->eos_id >= 0) red_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id);
}

/* Tensors of m in slab order under llama.cpp's names (llama: Q/K rows in
 * interleaved order), then rope_freqs for llama3 scaling. */
static red_status put_tensors(red_gguf_writer *w, const red_model *m, uint32_t mtype, red_error *err) {
    const red_config *c = &m->cfg;
    red_status st = RED_OK;
    int i;
    char nm[96];
    for (i = 0; i < m->n_tensors && !st; i++) {
        const red_param *p = &m->table[i];
        const float *src = m->params + p->offset;
        uint64_t ne[2];
        int q = strstr(p->name, "q_proj") != NULL, k = strstr(p->name, "k_proj") != NULL;
        gguf_name_of(p->name, nm, sizeof nm);
        ne[0] = (uint64_t)p->shape[p->ndim - 1];
        ne[1] = (uint64_t)p->shape[0];
        if (c->arch == RED_ARCH_LLAMA && (q || k)) {
            float *tmp = malloc(p->numel * sizeof(float));
            if (!tmp) return red_error_set(err, RED_E_NOMEM, "out of memory");
            memcpy(tmp, src, p->numel * sizeof(float));
            red_rope_permute_rows(tmp, q ? c->n_heads : c->n_kv_heads, c->head_dim, p->ndim == 2 ? c->dim : 1, 0);
            st = red_gguf_w_tensor(w, nm, p->ndim, ne, p->ndim == 2 ? mtype : RED_GGML_F32, tmp, 1, err);
            free(tmp);
        } else {
            st = red_gguf_w_tensor(w, nm, p->ndim, ne, p->ndim == 2 ? mtype : RED_GGML_F32, src, 0, err);
        }
    }
    if (!st && c->rope_llama3) {
        red_config plain = *c;
        float base[2048], inv[2048];
        uint64_t half = (uint64_t)c->head_dim / 2;
        plain.rope_llama3 = 0;
        red_rope_inv_freq(&plain, base);
        red_rope_inv_freq(c, inv);
        for (i = 0; i < (int)half; i++) base[i] /= inv[i];
        st = red_gguf_w_tensor(w, "rope_freqs.weight", 1, &half, RED_GGML_F32, base, 1, err);
    }
    return st;
}

red_status red_gguf_model_save(const red_model *m, const red_tokenizer *tok, const char *path, red_dtype dtype,
                               red_error *err) {
    red_gguf_writer w;
    red_status st = RED_OK;
    uint32_t mtype = dtype == RED_DT_F32 ? RED_GGML_F32 : dtype == RED_DT_F16 ? RED_GGML_F16 : RED_GGML_BF16;
    if (dtype != RED_DT_F32 && dtype != RED_DT_F16 && dtype != RED_DT_BF16)
        return red_error_set(err, RED_E_ARG, "%s: GGUF is written as F32, F16 or BF16", path);
    if (m->cfg.head_dim > 4096) return red_error_set(err, RED_E_ARG, "%s: head_dim too large", path);
    red_gguf_w_init(&w);
    put_config(&w, &m->cfg, dtype, tok == NULL);
    if (tok) {
        red_error e2;
        if ((st = put_tokenizer(&w, tok, &e2))) st = red_error_set(err, st, "%s: %s", path, e2.msg);
    }
    if (!st) st = put_tensors(&w, m, mtype, err);
    if (!st) st = red_gguf_w_write(&w, path, err);
    red_gguf_w_free(&w);
    return st;
}
