/* llama2c.c - karpathy/llama2.c checkpoints (facts: ../shared/docs/formats.md
 * section 5; layout from run.c, runq.c and export.py at 350e04fe).
 *
 * v0 (legacy, what run.c reads): 7 int32 dim, hidden_dim, n_layers, n_heads,
 *    n_kv_heads, vocab_size (< 0: the classifier is not shared), seq_len;
 *    then f32 arrays, each layer-major, rows [out, in]: embed, att norms,
 *    wq, wk, wv, wo, ffn norms, w1 (gate), w2 (down), w3 (up), final norm,
 *    freq_cis_real/imag [seq_len, hs/2] (unused), [wcls].
 * v1: u32 magic "ak42", i32 version, the 7 int32, u8 shared flag, zeros to
 *    byte 256; f32: att norms, ffn norms, final norm, embed, wq..w3, [wcls].
 * v2: v1's header plus i32 group size GS at byte 37; norms f32, every other
 *    array Q8_0 per tensor: int8 q[n] then f32 scale[n / GS] (x = q * scale).
 *
 * v0 has no magic, so the header is only trusted when the file size is
 * exactly what it implies. llama2.c rotates interleaved pairs (2i, 2i+1);
 * red (and Hugging Face) rotate pairs (i, i + hs/2): the reader permutes the
 * rows of wq and wk within each head, the writer permutes them back, so
 * logits are the same. run.c fixes RMSNorm eps 1e-5 and RoPE theta 10000.
 */
#include "red_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L2C_MAGIC 0x616b3432u   /* "ak42" */
#define L2C_HEADER_V1 256

/* ------------------------------------------------------------------ RoPE row order */

/* Within each head of hd rows: interleaved (Meta, llama2.c, GGUF llama) row
 * 2i + t holds rotate-half (HF) row t*hd/2 + i. to_half != 0 goes
 * interleaved -> rotate-half, else back. w is [heads*hd, cols]. */
red_status red_rope_permute_rows(float *w, int heads, int hd, int64_t cols, int to_half) {
    size_t row_bytes = (size_t)cols * sizeof(float), hsz = (size_t)hd * (size_t)cols;
    float *tmp = malloc(hsz * sizeof(float));
    int h, i, t;
    if (!tmp) return RED_E_NOMEM;
    for (h = 0; h < heads; h++) {
        float *head = w + (size_t)h * hsz;
        memcpy(tmp, head, hsz * sizeof(float));
        for (i = 0; i < hd / 2; i++)
            for (t = 0; t < 2; t++) {
                size_t inter = (size_t)(2 * i + t), half = (size_t)(t * hd / 2 + i);
                if (to_half) memcpy(head + half * cols, tmp + inter * cols, row_bytes);
                else memcpy(head + inter * cols, tmp + half * cols, row_bytes);
            }
    }
    free(tmp);
    return RED_OK;
}

/* ------------------------------------------------------------------ layout */

/* The arrays in file order; `per_layer` arrays repeat n_layers times. */
enum { A_EMB, A_ATT_NORM, A_WQ, A_WK, A_WV, A_WO, A_FFN_NORM, A_W1, A_W2, A_W3, A_FINAL, A_FREQ, A_WCLS };
static const int order_v0[] = {A_EMB, A_ATT_NORM, A_WQ, A_WK, A_WV, A_WO, A_FFN_NORM, A_W1, A_W2, A_W3,
                               A_FINAL, A_FREQ, A_WCLS};
static const int order_v1[] = {A_ATT_NORM, A_FFN_NORM, A_FINAL, A_EMB, A_WQ, A_WK, A_WV, A_WO,
                               A_W1, A_W2, A_W3, A_WCLS};
static const char *const array_names[] = {"token_embedding_table", "rms_att_weight", "wq", "wk", "wv", "wo",
                                          "rms_ffn_weight", "w1", "w2", "w3", "rms_final_weight",
                                          "freq_cis_real/imag", "wcls"};

typedef struct {
    int dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    int shared, version, gs;  /* gs: v2 group size */
} l2c_header;

static int is_per_layer(int a) { return a >= A_ATT_NORM && a <= A_W3; }
static int is_norm(int a) { return a == A_ATT_NORM || a == A_FFN_NORM || a == A_FINAL; }

/* Floats of one copy of array a. */
static uint64_t array_numel(const l2c_header *h, int a) {
    uint64_t D = (uint64_t)h->dim, F = (uint64_t)h->hidden, hs = D / (uint64_t)h->n_heads;
    uint64_t KD = hs * (uint64_t)h->n_kv_heads, V = (uint64_t)h->vocab;
    switch (a) {
    case A_EMB: case A_WCLS: return V * D;
    case A_ATT_NORM: case A_FFN_NORM: case A_FINAL: return D;
    case A_WQ: case A_WO: return D * D;
    case A_WK: case A_WV: return KD * D;
    case A_W1: case A_W2: case A_W3: return F * D;
    default: return (uint64_t)h->seq_len * hs;  /* A_FREQ: real and imag, hs/2 each */
    }
}

/* Bytes of one copy of array a in the file. */
static uint64_t array_bytes(const l2c_header *h, int a) {
    uint64_t n = array_numel(h, a);
    if (h->version == 2 && !is_norm(a)) return n + n / (uint64_t)h->gs * 4;
    return n * 4;
}

static void array_order(const l2c_header *h, const int **order, int *n) {
    *order = h->version == 0 ? order_v0 : order_v1;
    *n = h->version == 0 ? (int)(sizeof order_v0 / sizeof *order_v0) : (int)(sizeof order_v1 / sizeof *order_v1);
    if (h->shared) (*n)--;  /* A_WCLS is last in both orders */
}

static uint64_t expected_size(const l2c_header *h) {
    uint64_t total = h->version == 0 ? 28 : L2C_HEADER_V1;
    const int *order;
    int n, k;
    array_order(h, &order, &n);
    for (k = 0; k < n; k++)
        total += array_bytes(h, order[k]) * (uint64_t)(is_per_layer(order[k]) ? h->n_layers : 1);
    return total;
}

/* ------------------------------------------------------------------ header */

static int32_t get_i32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return u <= 0x7FFFFFFFu ? (int32_t)u : -(int32_t)(~u) - 1;
}

static void put_i32(unsigned char *p, int32_t v) {
    uint32_t u = (uint32_t)v;
    p[0] = (unsigned char)u; p[1] = (unsigned char)(u >> 8); p[2] = (unsigned char)(u >> 16); p[3] = (unsigned char)(u >> 24);
}

static red_status parse_header(l2c_header *h, const unsigned char *buf, size_t len, const char *name,
                               red_error *err) {
    static const char *const fields[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                          "seq_len"};
    static const int limits[7] = {1 << 16, 1 << 18, 1024, 1024, 1024, 1 << 22, 1 << 24};
    int v[7], k, base;
    uint64_t want;
    memset(h, 0, sizeof *h);
    if (len >= 8 && (uint32_t)get_i32(buf) == L2C_MAGIC) {
        h->version = get_i32(buf + 4);
        if (h->version != 1 && h->version != 2)
            return red_error_set(err, RED_E_UNSUPPORTED, "%s: byte 4: llama2.c version %d, expected 1 or 2", name,
                                 h->version);
        if (len < L2C_HEADER_V1)
            return red_error_set(err, RED_E_FORMAT, "%s: %zu bytes, shorter than the 256-byte llama2.c v%d header",
                                 name, len, h->version);
        base = 8;
    } else {
        if (len < 28)
            return red_error_set(err, RED_E_FORMAT, "%s: %zu bytes: not a GGUF file, and too short for a llama2.c "
                                 "checkpoint (28-byte header)", name, len);
        base = 0;
    }
    for (k = 0; k < 7; k++) {
        v[k] = get_i32(buf + base + 4 * k);
        if (k == 5 && h->version == 0 && v[k] < 0 && v[k] != INT32_MIN) v[k] = -v[k];  /* unshared classifier */
        if (v[k] < 1 || v[k] > limits[k])
            return red_error_set(err, RED_E_FORMAT, "%s: byte %d: llama2.c header field %s = %d, expected 1..%d "
                                 "(is this a llama2.c checkpoint?)", name, base + 4 * k, fields[k], v[k], limits[k]);
    }
    h->dim = v[0]; h->hidden = v[1]; h->n_layers = v[2]; h->n_heads = v[3];
    h->n_kv_heads = v[4]; h->vocab = v[5]; h->seq_len = v[6];
    if (h->version == 0) h->shared = get_i32(buf + 20) > 0;
    else {
        if (buf[36] > 1)
            return red_error_set(err, RED_E_FORMAT, "%s: byte 36: shared-classifier flag %d, expected 0 or 1", name, buf[36]);
        h->shared = buf[36];
    }
    if (h->dim % h->n_heads || (h->dim / h->n_heads) % 2 || h->n_heads % h->n_kv_heads)
        return red_error_set(err, RED_E_FORMAT, "%s: llama2.c header: dim %d, n_heads %d, n_kv_heads %d: n_heads must "
                             "divide dim into an even head size and n_kv_heads divide n_heads", name, h->dim,
                             h->n_heads, h->n_kv_heads);
    if (h->version == 2) {
        int k2;
        h->gs = get_i32(buf + 37);
        if (h->gs < 1 || h->gs > (1 << 20))
            return red_error_set(err, RED_E_FORMAT, "%s: byte 37: group size %d, expected 1..1048576", name, h->gs);
        for (k2 = A_EMB; k2 <= A_WCLS; k2++)
            if (!is_norm(k2) && k2 != A_FREQ && array_numel(h, k2) % (uint64_t)h->gs)
                return red_error_set(err, RED_E_FORMAT, "%s: byte 37: group size %d does not divide %s (%llu values)",
                                     name, h->gs, array_names[k2], (unsigned long long)array_numel(h, k2));
    }
    want = expected_size(h);
    if (want != (uint64_t)len)
        return red_error_set(err, RED_E_FORMAT, "%s: llama2.c v%d header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                             "n_kv_heads %d, vocab %d, seq_len %d, %s classifier) implies %llu bytes, the file has %zu%s",
                             name, h->version, h->dim, h->hidden, h->n_layers, h->n_heads, h->n_kv_heads, h->vocab,
                             h->seq_len, h->shared ? "shared" : "separate", (unsigned long long)want, len,
                             h->version == 0 ? " (not a GGUF, a llama2.c checkpoint or a model directory?)" : "");
    return RED_OK;
}

/* ------------------------------------------------------------------ read */

/* Destination of copy `l` of array a in the model (NULL: skipped). */
static float *array_dst(red_model *m, int a, int l) {
    red_layer_weights *lw = &m->w.layers[l];
    switch (a) {
    case A_EMB: return m->w.embed;
    case A_ATT_NORM: return lw->attn_norm;
    case A_WQ: return lw->wq;
    case A_WK: return lw->wk;
    case A_WV: return lw->wv;
    case A_WO: return lw->wo;
    case A_FFN_NORM: return lw->mlp_norm;
    case A_W1: return lw->wg;
    case A_W2: return lw->wd;
    case A_W3: return lw->wu;
    case A_FINAL: return m->w.norm;
    case A_WCLS: return m->w.lm_head;
    default: return NULL;
    }
}

static void read_q8(float *dst, const unsigned char *p, uint64_t n, int gs) {
    const unsigned char *s = p + n;
    uint64_t g, j;
    for (g = 0; g < n / (uint64_t)gs; g++) {
        float scale;
        red_get_f32le(&scale, s + 4 * g, 1);
        for (j = 0; j < (uint64_t)gs; j++) {
            unsigned char b = p[g * gs + j];
            dst[g * gs + j] = (float)(b < 128 ? (int)b : (int)b - 256) * scale;
        }
    }
}

red_status red_llama2c_parse(red_model *m, const unsigned char *buf, size_t len, const char *name, red_pool *pool,
                             red_error *err) {
    l2c_header h;
    red_config c;
    red_status st;
    const int *order;
    size_t pos;
    int n, k, l;
    if ((st = parse_header(&h, buf, len, name, err))) return st;
    red_config_default(&c);
    c.arch = RED_ARCH_LLAMA;
    c.dim = h.dim;
    c.ffn = h.hidden;
    c.n_layers = h.n_layers;
    c.n_heads = h.n_heads;
    c.n_kv_heads = h.n_kv_heads;
    c.head_dim = h.dim / h.n_heads;
    c.vocab = h.vocab;
    c.max_pos = h.seq_len;
    c.norm_eps = 1e-5f;       /* run.c's constants */
    c.rope_theta = 10000.0f;
    c.tied = h.shared;
    c.bos_id = h.vocab > 1 ? 1 : -1;  /* SentencePiece ids of tokenizer.bin: <s> 1, </s> 2 */
    c.eos_id = h.vocab > 2 ? 2 : -1;
    if ((st = red_model_alloc(m, &c, pool, err))) return st;
    array_order(&h, &order, &n);
    pos = h.version == 0 ? 28 : L2C_HEADER_V1;
    for (k = 0; k < n; k++) {
        int a = order[k], reps = is_per_layer(a) ? h.n_layers : 1;
        uint64_t numel = array_numel(&h, a);
        for (l = 0; l < reps; l++) {
            float *dst = array_dst(m, a, l);
            if (dst && h.version == 2 && !is_norm(a)) read_q8(dst, buf + pos, numel, h.gs);
            else if (dst) red_get_f32le(dst, buf + pos, (size_t)numel);
            pos += (size_t)array_bytes(&h, a);
        }
    }
    for (l = 0; l < h.n_layers; l++) {
        red_layer_weights *lw = &m->w.layers[l];
        if (red_rope_permute_rows(lw->wq, c.n_heads, c.head_dim, c.dim, 1) ||
            red_rope_permute_rows(lw->wk, c.n_kv_heads, c.head_dim, c.dim, 1)) {
            red_model_free(m);
            return red_error_set(err, RED_E_NOMEM, "%s: out of memory", name);
        }
    }
    return RED_OK;
}

red_status red_llama2c_load(red_model *m, const char *path, red_pool *pool, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status st;
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    st = red_llama2c_parse(m, buf, len, path, pool, err);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ write */

/* v0 (run.c reads it) or v1, fp32. Only what llama2.c can express: llama,
 * head_dim = dim / n_heads, no biases, theta 10000, eps 1e-5, no scaling. */
red_status red_llama2c_save(const red_model *m, const char *path, int version, red_error *err) {
    const red_config *c = &m->cfg;
    l2c_header h;
    unsigned char *buf, *p;
    uint64_t total;
    const int *order;
    float *tmp = NULL;
    red_status st;
    int n, k, l;
    if (version != 0 && version != 1)
        return red_error_set(err, RED_E_ARG, "%s: llama2.c version %d cannot be written (0 or 1)", path, version);
    /* (float) casts: FLT_EVAL_METHOD 1 hosts (s390x) would compare 1e-5f as a double */
    if (c->arch != RED_ARCH_LLAMA || c->qkv_bias || c->head_dim * c->n_heads != c->dim || c->rope_llama3 ||
        c->rope_theta != (float)10000.0f || c->norm_eps != (float)1e-5f)
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: llama2.c files hold only llama models with head_dim = "
                             "dim / heads, no biases, rope_theta 10000, rms_norm_eps 1e-5 and no rope scaling "
                             "(this model: %s, head_dim %d, theta %g, eps %g); write a GGUF or a directory instead",
                             path, red_arch_name(c->arch), c->head_dim, c->rope_theta, c->norm_eps);
    memset(&h, 0, sizeof h);
    h.dim = c->dim; h.hidden = c->ffn; h.n_layers = c->n_layers; h.n_heads = c->n_heads;
    h.n_kv_heads = c->n_kv_heads; h.vocab = c->vocab; h.seq_len = c->max_pos; h.shared = c->tied;
    h.version = version;
    total = expected_size(&h);
    if (total > (uint64_t)SIZE_MAX / 2) return red_error_set(err, RED_E_NOMEM, "%s: model too large", path);
    buf = calloc((size_t)total, 1);
    tmp = malloc((size_t)c->dim * (size_t)c->dim * sizeof(float));
    if (!buf || !tmp) {
        free(buf); free(tmp);
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory (%llu bytes)", path, (unsigned long long)total);
    }
    p = buf;
    if (version == 1) {
        put_i32(p, (int32_t)L2C_MAGIC);
        put_i32(p + 4, 1);
        p += 8;
    }
    put_i32(p, h.dim); put_i32(p + 4, h.hidden); put_i32(p + 8, h.n_layers); put_i32(p + 12, h.n_heads);
    put_i32(p + 16, h.n_kv_heads); put_i32(p + 20, version == 0 && !h.shared ? -h.vocab : h.vocab);
    put_i32(p + 24, h.seq_len);
    if (version == 1) p[28] = (unsigned char)h.shared;
    p = buf + (version == 0 ? 28 : L2C_HEADER_V1);
    array_order(&h, &order, &n);
    for (k = 0; k < n; k++) {
        int a = order[k], reps = is_per_layer(a) ? h.n_layers : 1;
        size_t numel = (size_t)array_numel(&h, a);
        for (l = 0; l < reps; l++) {
            const float *src = array_dst((red_model *)m, a, l);
            if (a == A_FREQ) {  /* model.py's precompute_freqs_cis: cos then sin, [seq_len, hs/2] */
                int half = c->head_dim / 2, t, i, part;
                for (part = 0; part < 2; part++)
                    for (t = 0; t < h.seq_len; t++)
                        for (i = 0; i < half; i++) {
                            float f = 1.0f / powf(10000.0f, (float)(2 * i) / (float)c->head_dim), ang = (float)t * f;
                            float v = part ? sinf(ang) : cosf(ang);
                            red_put_f32le(p + 4 * ((size_t)part * h.seq_len * half + (size_t)t * half + i), &v, 1);
                        }
            } else if (a == A_WQ || a == A_WK) {  /* back to interleaved pairs */
                int heads = a == A_WQ ? c->n_heads : c->n_kv_heads;
                memcpy(tmp, src, numel * sizeof(float));
                if ((st = red_rope_permute_rows(tmp, heads, c->head_dim, c->dim, 0))) {
                    free(buf); free(tmp);
                    return red_error_set(err, st, "%s: out of memory", path);
                }
                red_put_f32le(p, tmp, numel);
            } else {
                red_put_f32le(p, src, numel);
            }
            p += numel * 4;
        }
    }
    st = red_write_file_atomic(path, buf, (size_t)total, err);
    free(buf);
    free(tmp);
    return st;
}
