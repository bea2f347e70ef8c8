/* model.c - the Llama/Qwen2 decoder: config, parameter table, training
 * forward/backward as <op>_forward/<op>_backward pairs, cross-entropy,
 * KV-cache inference and sampling.
 *
 * Dimension legend: B batch, T sequence, N = B*T rows, D hidden, F ffn,
 * H query heads, KV key/value heads, G = H/KV query heads per KV head,
 * HD head_dim, QD = H*HD, KD = KV*HD, V vocab, L layers.
 * Activations are [rows, features] row-major; weights [out, in] (PyTorch).
 *
 * Block (HF LlamaDecoderLayer / Qwen2DecoderLayer):
 *   h = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = rmsnorm(x)*w_in
 *   y = h + down(silu(gate(m)) * up(m)),                               m = rmsnorm(h)*w_post
 * RoPE is rotate_half (pairs i, i+HD/2), angle(pos, i) = pos * inv_freq[i].
 * Backward ops accumulate into gradient buffers (llm.c convention); every
 * parallel op gives each output element to one thread, in a fixed order, so
 * results are bit-identical for a given thread count and, except for GEMM
 * tiling (also fixed), across thread counts.
 */
#include "red_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ config */

const char *red_arch_name(red_arch a) { return a == RED_ARCH_QWEN2 ? "qwen2" : "llama"; }

void red_config_default(red_config *c) {
    memset(c, 0, sizeof *c);
    c->arch = RED_ARCH_LLAMA;
    c->dim = 64;
    c->ffn = 192;
    c->n_layers = 2;
    c->n_heads = 4;
    c->n_kv_heads = 4;
    c->head_dim = 16;
    c->vocab = 259;
    c->max_pos = 2048;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_factor = 1.0f;
    c->rope_low_freq = 1.0f;
    c->rope_high_freq = 4.0f;
    c->rope_orig_ctx = 8192;
    c->tied = 1;
    c->qkv_bias = 0;
    c->bos_id = -1;
    c->eos_id = -1;
}

red_status red_config_check(const red_config *c, red_error *err) {
#define CHECK_POS(f, lim)                                                                       \
    if (c->f < 1 || c->f > (lim))                                                              \
        return red_error_set(err, RED_E_FORMAT, "config: " #f " = %d, expected 1..%d", c->f, (lim));
    CHECK_POS(dim, 1 << 16);
    CHECK_POS(ffn, 1 << 18);
    CHECK_POS(n_layers, 1024);
    CHECK_POS(n_heads, 1024);
    CHECK_POS(n_kv_heads, 1024);
    CHECK_POS(head_dim, 4096);
    CHECK_POS(vocab, 1 << 22);
    CHECK_POS(max_pos, 1 << 24);
#undef CHECK_POS
    if (c->n_heads % c->n_kv_heads)
        return red_error_set(err, RED_E_FORMAT, "config: num_key_value_heads %d does not divide num_attention_heads %d",
                             c->n_kv_heads, c->n_heads);
    if (c->head_dim % 2)
        return red_error_set(err, RED_E_FORMAT, "config: head_dim %d must be even for RoPE", c->head_dim);
    if (!(c->norm_eps > 0.0f) || !(c->rope_theta > 1.0f))
        return red_error_set(err, RED_E_FORMAT, "config: rms_norm_eps must be > 0 and rope_theta > 1");
    if (c->rope_llama3 && !(c->rope_factor >= 1.0f && c->rope_high_freq > c->rope_low_freq &&
                            c->rope_low_freq > 0.0f && c->rope_orig_ctx > 0))
        return red_error_set(err, RED_E_FORMAT, "config: llama3 rope_scaling needs factor >= 1, "
                             "high_freq_factor > low_freq_factor > 0, original_max_position_embeddings > 0");
    if (c->arch != RED_ARCH_LLAMA && c->arch != RED_ARCH_QWEN2)
        return red_error_set(err, RED_E_FORMAT, "config: unknown architecture %d", (int)c->arch);
    if (c->bos_id >= c->vocab || c->eos_id >= c->vocab)
        return red_error_set(err, RED_E_FORMAT, "config: bos/eos id outside the vocabulary (%d)", c->vocab);
    return RED_OK;
}

/* ------------------------------------------------------------------ parameter table */

int red_param_tensors(const red_config *c) {
    return 1 + c->n_layers * (9 + (c->qkv_bias ? 3 : 0)) + 1 + (c->tied ? 0 : 1);
}

static red_param *param_add(red_param *tab, int *i, size_t *off, const char *name, int64_t rows,
                            int64_t cols) {
    red_param *p = &tab[(*i)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = *off;
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols ? cols : 1;
    p->numel = (size_t)rows * (size_t)(cols ? cols : 1);
    *off += p->numel;
    return p;
}

/* Walks the slab layout; tab may be NULL (count only). Returns floats. */
static size_t param_layout(const red_config *c, red_param *tab) {
    red_param scratch;
    size_t off = 0;
    int i = 0, l;
    int64_t D = c->dim, F = c->ffn, QD = (int64_t)c->n_heads * c->head_dim,
            KD = (int64_t)c->n_kv_heads * c->head_dim;
    char nm[64];
#define ADD(name, r, cc)                                                      \
    do {                                                                      \
        if (tab) param_add(tab, &i, &off, name, r, cc);                       \
        else { int z = 0; param_add(&scratch, &z, &off, name, r, cc); }       \
    } while (0)
    ADD("model.embed_tokens.weight", c->vocab, D);
    for (l = 0; l < c->n_layers; l++) {
#define LADD(suffix, r, cc)                                                   \
        snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix);             \
        ADD(nm, r, cc)
        LADD("input_layernorm.weight", D, 0);
        LADD("self_attn.q_proj.weight", QD, D);
        if (c->qkv_bias) { LADD("self_attn.q_proj.bias", QD, 0); }
        LADD("self_attn.k_proj.weight", KD, D);
        if (c->qkv_bias) { LADD("self_attn.k_proj.bias", KD, 0); }
        LADD("self_attn.v_proj.weight", KD, D);
        if (c->qkv_bias) { LADD("self_attn.v_proj.bias", KD, 0); }
        LADD("self_attn.o_proj.weight", D, QD);
        LADD("post_attention_layernorm.weight", D, 0);
        LADD("mlp.gate_proj.weight", F, D);
        LADD("mlp.up_proj.weight", F, D);
        LADD("mlp.down_proj.weight", D, F);
#undef LADD
    }
    ADD("model.norm.weight", D, 0);
    if (!c->tied) ADD("lm_head.weight", c->vocab, D);
#undef ADD
    return off;
}

size_t red_param_floats(const red_config *c) { return param_layout(c, NULL); }
void red_param_table(const red_config *c, red_param *tab) { param_layout(c, tab); }

/* Points w (layers array of n_layers entries, caller-owned) into slab. */
static void red_weights_point(red_weights *w, const red_config *c, float *slab, red_layer_weights *layers) {
    size_t D = (size_t)c->dim, F = (size_t)c->ffn, QD = (size_t)c->n_heads * c->head_dim,
           KD = (size_t)c->n_kv_heads * c->head_dim;
    float *p = slab;
    int l;
    w->embed = p; p += (size_t)c->vocab * D;
    w->layers = layers;
    for (l = 0; l < c->n_layers; l++) {
        red_layer_weights *L = &layers[l];
        L->attn_norm = p; p += D;
        L->wq = p; p += QD * D;
        L->bq = c->qkv_bias ? p : NULL; p += c->qkv_bias ? QD : 0;
        L->wk = p; p += KD * D;
        L->bk = c->qkv_bias ? p : NULL; p += c->qkv_bias ? KD : 0;
        L->wv = p; p += KD * D;
        L->bv = c->qkv_bias ? p : NULL; p += c->qkv_bias ? KD : 0;
        L->wo = p; p += D * QD;
        L->mlp_norm = p; p += D;
        L->wg = p; p += F * D;
        L->wu = p; p += F * D;
        L->wd = p; p += D * F;
    }
    w->norm = p; p += D;
    w->lm_head = c->tied ? w->embed : p;
}

/* ------------------------------------------------------------------ embedding */

typedef struct {
    float *out, *dE;
    const float *E, *dout;
    const int *tok;
    int64_t N;
    int D;
} embed_ctx;

static void embed_forward_rows(void *vc, int64_t lo, int64_t hi) {
    embed_ctx *c = vc;
    int64_t n;
    for (n = lo; n < hi; n++)
        memcpy(c->out + n * c->D, c->E + (size_t)c->tok[n] * c->D, sizeof(float) * c->D);
}

/* out[N,D] = E[tok[n]] */
void red_embed_forward(red_pool *pool, float *out, const int *tok, const float *E, int64_t N, int D) {
    embed_ctx c;
    c.out = out; c.E = E; c.tok = tok; c.N = N; c.D = D;
    red_par_range(pool, N, D, embed_forward_rows, &c);
}

/* Threads own vocabulary ranges, so rows repeated in tok never race. */
static void embed_backward_vocab(void *vc, int64_t lo, int64_t hi) {
    embed_ctx *c = vc;
    int64_t n;
    for (n = 0; n < c->N; n++)
        if (c->tok[n] >= lo && c->tok[n] < hi)
            red_vec_axpy(c->dE + (size_t)c->tok[n] * c->D, 1.0f, c->dout + n * c->D, (size_t)c->D);
}

/* dE[tok[n]] += dout[n] */
void red_embed_backward(red_pool *pool, float *dE, const float *dout, const int *tok, int64_t N,
                        int D, int V) {
    embed_ctx c;
    c.dE = dE; c.dout = dout; c.tok = tok; c.N = N; c.D = D;
    red_par_range(pool, V, (double)N * D / V + N, embed_backward_vocab, &c);
}

/* ------------------------------------------------------------------ rmsnorm */

typedef struct {
    float *out, *rstd, *dx, *dw;
    const float *x, *w, *dout, *rstd_in;
    int64_t N;
    int D;
    float eps;
} rmsnorm_ctx;

/* A row's sum below is one chain of dependent double adds in index order,
 * bound by the add's latency; the row loops run four rows' chains side by
 * side, each in its own order, so the bits are those of one row at a time. */
static void rmsnorm_out_row(const rmsnorm_ctx *c, int64_t n, double ss) {
    const float *x = c->x + n * c->D;
    float *o = c->out + n * c->D;
    float r = (float)(1.0 / sqrt(ss / c->D + (double)c->eps));
    int i;
    c->rstd[n] = r;
    for (i = 0; i < c->D; i++) o[i] = x[i] * r * c->w[i];
}

static void rmsnorm_forward_rows(void *vc, int64_t lo, int64_t hi) {
    rmsnorm_ctx *c = vc;
    int64_t n;
    int i;
    /* mean of squares in double: the rstd must not depend on SIMD order */
    for (n = lo; n + 4 <= hi; n += 4) {
        const float *x0 = c->x + n * c->D, *x1 = x0 + c->D, *x2 = x1 + c->D, *x3 = x2 + c->D;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (i = 0; i < c->D; i++) {
            s0 += (double)x0[i] * x0[i];
            s1 += (double)x1[i] * x1[i];
            s2 += (double)x2[i] * x2[i];
            s3 += (double)x3[i] * x3[i];
        }
        rmsnorm_out_row(c, n, s0);
        rmsnorm_out_row(c, n + 1, s1);
        rmsnorm_out_row(c, n + 2, s2);
        rmsnorm_out_row(c, n + 3, s3);
    }
    for (; n < hi; n++) {
        const float *x = c->x + n * c->D;
        double ss = 0.0;
        for (i = 0; i < c->D; i++) ss += (double)x[i] * x[i];
        rmsnorm_out_row(c, n, ss);
    }
}

/* out[N,D] = x * rstd * w, rstd[n] = 1/sqrt(mean(x^2) + eps). */
void red_rmsnorm_forward(red_pool *pool, float *out, float *rstd, const float *x, const float *w,
                         int64_t N, int D, float eps) {
    rmsnorm_ctx c;
    c.out = out; c.rstd = rstd; c.x = x; c.w = w; c.N = N; c.D = D; c.eps = eps;
    red_par_range(pool, N, 3.0 * D, rmsnorm_forward_rows, &c);
}

static void rmsnorm_dx_row(const rmsnorm_ctx *c, int64_t n, double dot) {
    const float *x = c->x + n * c->D, *dy = c->dout + n * c->D;
    float *dx = c->dx + n * c->D;
    float r = c->rstd_in[n], k = (float)(dot * r * r * r / c->D);
    int i;
    for (i = 0; i < c->D; i++) dx[i] += r * c->w[i] * dy[i] - k * x[i];
}

static void rmsnorm_backward_rows(void *vc, int64_t lo, int64_t hi) {
    rmsnorm_ctx *c = vc;
    const float *w = c->w;
    int64_t n;
    int i, D = c->D;
    for (n = lo; n + 4 <= hi; n += 4) {
        const float *x = c->x + n * D, *dy = c->dout + n * D;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (i = 0; i < D; i++) {
            s0 += (double)dy[i] * w[i] * x[i];
            s1 += (double)dy[D + i] * w[i] * x[D + i];
            s2 += (double)dy[2 * D + i] * w[i] * x[2 * D + i];
            s3 += (double)dy[3 * D + i] * w[i] * x[3 * D + i];
        }
        rmsnorm_dx_row(c, n, s0);
        rmsnorm_dx_row(c, n + 1, s1);
        rmsnorm_dx_row(c, n + 2, s2);
        rmsnorm_dx_row(c, n + 3, s3);
    }
    for (; n < hi; n++) {
        const float *x = c->x + n * D, *dy = c->dout + n * D;
        double dot = 0.0;
        for (i = 0; i < D; i++) dot += (double)dy[i] * w[i] * x[i];
        rmsnorm_dx_row(c, n, dot);
    }
}

/* Columns of dw are owned by threads; each sums its rows in order. */
static void rmsnorm_backward_cols(void *vc, int64_t lo, int64_t hi) {
    rmsnorm_ctx *c = vc;
    int64_t n, i;
    for (n = 0; n < c->N; n++) {
        const float *x = c->x + n * c->D, *dy = c->dout + n * c->D;
        float r = c->rstd_in[n];
        for (i = lo; i < hi; i++) c->dw[i] += dy[i] * x[i] * r;
    }
}

/* dx += d/dx, dw += sum_n dout * x * rstd. */
void red_rmsnorm_backward(red_pool *pool, float *dx, float *dw, const float *dout, const float *x,
                          const float *w, const float *rstd, int64_t N, int D) {
    rmsnorm_ctx c;
    c.dx = dx; c.dw = dw; c.dout = dout; c.x = x; c.w = w; c.rstd_in = rstd; c.N = N; c.D = D;
    red_par_range(pool, N, 5.0 * D, rmsnorm_backward_rows, &c);
    red_par_range(pool, D, 3.0 * N, rmsnorm_backward_cols, &c);
}

/* ------------------------------------------------------------------ linear */

typedef struct {
    float *out, *db;
    const float *b, *dout;
    int64_t N;
    int O;
} bias_ctx;

static void bias_add_rows(void *vc, int64_t lo, int64_t hi) {
    bias_ctx *c = vc;
    int64_t n;
    for (n = lo; n < hi; n++) red_vec_axpy(c->out + n * c->O, 1.0f, c->b, (size_t)c->O);
}

static void bias_grad_cols(void *vc, int64_t lo, int64_t hi) {
    bias_ctx *c = vc;
    int64_t n, o;
    for (n = 0; n < c->N; n++)
        for (o = lo; o < hi; o++) c->db[o] += c->dout[n * c->O + o];
}

typedef struct {
    float *out;
    const float *in, *W;
    int64_t N;
    int O, I;
} gemv_ctx;

static void gemv_outputs(void *vc, int64_t lo, int64_t hi) {
    gemv_ctx *c = vc;
    /* the few input rows stay in cache while each weight row is read once */
    red_vec_dot_grid(c->out + lo, (size_t)c->O, c->in, (size_t)c->I, (size_t)c->N, c->W + lo * c->I, (size_t)c->I,
                     (size_t)(hi - lo), (size_t)c->I);
}

static void bias_add(red_pool *pool, float *out, const float *b, int64_t N, int O) {
    bias_ctx c;
    c.out = out; c.b = b; c.N = N; c.O = O;
    red_par_range(pool, N, O, bias_add_rows, &c);
}

/* Up to this many rows (batched KV-cache decoding) a GEMM would spend its
 * time packing W for a handful of rows, so rows are dotted with W directly
 * (measured: 16 decode rows of config (b) ran 1.6x faster this way). */
#define LINEAR_GEMV_ROWS 16

/* out[N,O] = in[N,I] Wᵀ (+ b), overwritten: a residual is added after (red_model_forward). */
void red_linear_forward(red_pool *pool, float *out, const float *in, const float *W, const float *b,
                        int64_t N, int O, int I) {
    if (N <= LINEAR_GEMV_ROWS) {
        gemv_ctx g;
        g.out = out; g.in = in; g.W = W; g.N = N; g.O = O; g.I = I;
        red_par_range(pool, O, 2.0 * N * I, gemv_outputs, &g);
    } else {
        red_sgemm(pool, RED_NT, (int)N, O, I, 1.0f, in, I, W, I, 0.0f, out, O);
    }
    if (b) bias_add(pool, out, b, N, O);
}

/* red_linear_forward with W also packed (packed non-NULL: red_weight_pack). */
static void linear_forward_packed(red_pool *pool, float *out, const float *in, const float *W, const float *packed,
                                  const float *b, int64_t N, int O, int I) {
    if (!packed || N <= LINEAR_GEMV_ROWS) {
        red_linear_forward(pool, out, in, W, b, N, O, I);
        return;
    }
    red_sgemm_nt_packed(pool, NULL, (int)N, O, I, 1.0f, in, I, packed, O, 0.0f, out, O);
    if (b) bias_add(pool, out, b, N, O);
}

/* out_p = in W_pᵀ (+ b_p) for the weights that read one input (q, k, v;
 * gate, up): one GEMM that packs the input once, the same bits as one
 * red_linear_forward per part. packed: NULL, or every W_p packed. */
static void linear_forward_parts(red_pool *pool, int parts, float *const *out, const float *in,
                                 const float *const *W, const float *const *packed, const float *const *b, int64_t N,
                                 const int *O, int I) {
    int p, ld[RED_GEMM_PARTS];
    if (N <= LINEAR_GEMV_ROWS) {
        for (p = 0; p < parts; p++) red_linear_forward(pool, out[p], in, W[p], b[p], N, O[p], I);
        return;
    }
    for (p = 0; p < parts; p++) ld[p] = I;
    red_sgemm_nt_parts(pool, (int)N, I, 1.0f, in, I, parts, O, W, ld, packed, 0.0f, out, O);
    for (p = 0; p < parts; p++)
        if (b[p]) bias_add(pool, out[p], b[p], N, O[p]);
}

/* din = din_beta*din + dout W;  dW = dw_beta*dW + doutᵀ in;  db += colsum(dout).
 * din may be NULL. */
void red_linear_backward(red_pool *pool, float *din, float *dW, float *db, const float *dout,
                         const float *in, const float *W, int64_t N, int O, int I, float din_beta, float dw_beta) {
    if (din) red_sgemm(pool, RED_NN, (int)N, I, O, 1.0f, dout, O, W, I, din_beta, din, I);
    red_sgemm(pool, RED_TN, O, I, (int)N, 1.0f, dout, O, in, I, dw_beta, dW, I);
    if (db) {
        bias_ctx c;
        c.db = db; c.dout = dout; c.N = N; c.O = O;
        red_par_range(pool, O, N, bias_grad_cols, &c);
    }
}

/* ------------------------------------------------------------------ rope */

/* Effective inverse frequencies, HF's _compute_default/_llama3_parameters. */
void red_rope_inv_freq(const red_config *c, float *inv) {
    int i, half = c->head_dim / 2;
    for (i = 0; i < half; i++) {
        double f = 1.0 / pow((double)c->rope_theta, (2.0 * i) / c->head_dim);
        if (c->rope_llama3) {
            const double PI = 3.14159265358979323846;
            double wavelen = 2.0 * PI / f;
            double low_wl = c->rope_orig_ctx / (double)c->rope_low_freq;
            double high_wl = c->rope_orig_ctx / (double)c->rope_high_freq;
            if (wavelen > low_wl) f = f / c->rope_factor;
            else if (wavelen >= high_wl) {
                double s = (c->rope_orig_ctx / wavelen - c->rope_low_freq) /
                           (c->rope_high_freq - c->rope_low_freq);
                f = (1.0 - s) * f / c->rope_factor + s * f;
            }
        }
        inv[i] = (float)f;
    }
}

/* cs[r, 0:half] = cos, cs[r, half:HD] = sin of pos[r]*inv_freq (pos NULL: r). */
void red_rope_table(float *cs, const float *inv, int half, int rows, const int *pos) {
    int r, i;
    for (r = 0; r < rows; r++) {
        double p = pos ? pos[r] : r;
        for (i = 0; i < half; i++) {
            /* angle in float as HF computes it (inv_freq f32 times position) */
            float ang = (float)p * inv[i];
            cs[(size_t)r * 2 * half + i] = (float)cos((double)ang);
            cs[(size_t)r * 2 * half + half + i] = (float)sin((double)ang);
        }
    }
}

typedef struct {
    float *x;
    const float *cs;
    int heads, HD, ld, T;  /* row n uses table row n % T */
    float sign;
} rope_ctx;

static void rope_rows(void *vc, int64_t lo, int64_t hi) {
    rope_ctx *c = vc;
    int half = c->HD / 2, h, i;
    int64_t n;
    for (n = lo; n < hi; n++) {
        const float *cs = c->cs + (size_t)(n % c->T) * c->HD;
        for (h = 0; h < c->heads; h++) {
            float *x = c->x + n * c->ld + (size_t)h * c->HD;
            for (i = 0; i < half; i++) {
                float co = cs[i], si = c->sign * cs[half + i];
                float x0 = x[i], x1 = x[i + half];
                x[i] = x0 * co - x1 * si;
                x[i + half] = x1 * co + x0 * si;
            }
        }
    }
}

/* In place over N rows of `heads` heads: x' = x cos + rotate_half(x) sin. */
void red_rope_forward(red_pool *pool, float *x, const float *cs, int64_t N, int T, int heads, int HD) {
    rope_ctx c;
    c.x = x; c.cs = cs; c.heads = heads; c.HD = HD; c.ld = heads * HD; c.T = T; c.sign = 1.0f;
    red_par_range(pool, N, 3.0 * heads * HD, rope_rows, &c);
}

/* The rotation is orthogonal: its backward is the inverse rotation (sin -> -sin). */
void red_rope_backward(red_pool *pool, float *dx, const float *cs, int64_t N, int T, int heads, int HD) {
    rope_ctx c;
    c.x = dx; c.cs = cs; c.heads = heads; c.HD = HD; c.ld = heads * HD; c.T = T; c.sign = -1.0f;
    red_par_range(pool, N, 3.0 * heads * HD, rope_rows, &c);
}

/* ------------------------------------------------------------------ attention */

/* Causal attention is done in row chunks: chunk [r0, r0+ch) only needs key
 * columns [0, r0+ch), which halves the work of a full T x T product. Where
 * the caller has room for them (pkeep), forward keeps the probabilities for
 * backward. Otherwise it computes each chunk in a per-thread scratch and
 * backward recomputes it there with the very same operations (the same GEMM
 * call and softmax), so the bits are the same either way and memory is
 * O(threads x chunk x T), not O(B H T^2). */
#define ATT_CHUNK RED_ATT_CHUNK
/* Bytes a run state may spend on each kind of tensor it keeps only to spare a
 * recomputation (attention probabilities, silu(g)*u of every layer). */
#define KEEP_MAX (256.0 * 1024 * 1024)

typedef struct {
    red_pool *pool;
    float *out, *pscratch, *pkeep, *dq, *dk, *dv, *dscratch;
    const float *q, *k, *v, *dout;
    int B, T, H, KV, HD;
    float scale;
} att_ctx;

size_t red_attention_scratch_floats(int T, int HD) {
    return (size_t)ATT_CHUNK * T + red_gemm_nt_packed_floats(T, HD);
}

/* A thread's share of a scratch: a chunk of probabilities (or of their
 * gradient), then K or V packed for the QKᵀ or dO Vᵀ products: packed once
 * per head, read by every row chunk. */
static float *att_scratch(const att_ctx *c, float *scratch, int ith) {
    return scratch + (size_t)ith * red_attention_scratch_floats(c->T, c->HD);
}

/* Probabilities of rows [r0, r0+rows) of one head into Pc [rows, T] (Kp: its K packed):
 * softmax(mask(Q Kᵀ * scale)) over the first r0+rows columns. */
static void attention_probs(const att_ctx *c, void *ws, const float *Q, const float *Kp, int r0, int rows, float *Pc) {
    int QD = c->H * c->HD, T = c->T, cols = r0 + rows, i, j;
    red_sgemm_nt_packed(NULL, ws, rows, cols, c->HD, c->scale, Q + (size_t)r0 * QD, QD, Kp, T, 0.0f, Pc, T);
    red_softmax_rows(Pc, (size_t)T, rows, (size_t)r0 + 1, 1);
    for (i = 0; i < rows; i++)
        for (j = r0 + i + 1; j < cols; j++) Pc[(size_t)i * T + j] = 0.0f;
}

/* One (b, h): O = P V chunk by chunk. */
static void attention_forward_units(void *vc, int ith, int nth) {
    att_ctx *c = vc;
    int64_t lo, hi, u;
    int QD = c->H * c->HD, KD = c->KV * c->HD, G = c->H / c->KV, T = c->T;
    void *ws = red_pool_scratch(c->pool, ith);
    float *Pc = att_scratch(c, c->pscratch, ith), *Kp = Pc + (size_t)ATT_CHUNK * T;
    int64_t packed = -1;  /* the (b, kv head) whose K is in Kp */
    red_split_range((int64_t)c->B * c->H, ith, nth, &lo, &hi);
    for (u = lo; u < hi; u++) {
        float *P = c->pkeep ? c->pkeep + (size_t)u * T * T : NULL;
        int b = (int)(u / c->H), h = (int)(u % c->H), g = h / G, r0;
        const float *Q = c->q + (size_t)b * T * QD + (size_t)h * c->HD;
        const float *K = c->k + (size_t)b * T * KD + (size_t)g * c->HD;
        const float *Vv = c->v + (size_t)b * T * KD + (size_t)g * c->HD;
        float *O = c->out + (size_t)b * T * QD + (size_t)h * c->HD;
        if (packed != (int64_t)b * c->KV + g) {
            red_gemm_nt_pack(K, KD, T, c->HD, Kp);
            packed = (int64_t)b * c->KV + g;
        }
        for (r0 = 0; r0 < T; r0 += ATT_CHUNK) {
            int rows = T - r0 < ATT_CHUNK ? T - r0 : ATT_CHUNK;
            if (P) Pc = P + (size_t)r0 * T;
            attention_probs(c, ws, Q, Kp, r0, rows, Pc);
            red_sgemm_serial(ws, RED_NN, rows, c->HD, r0 + rows, 1.0f, Pc, T, Vv, KD, 0.0f, O + (size_t)r0 * QD, QD);
        }
    }
}

static int attention_threads(red_pool *pool, double flops, int64_t units) {
    int64_t nth = (int64_t)(flops / 2.0e6);
    if (nth > red_pool_size(pool)) nth = red_pool_size(pool);
    if (nth > units) nth = units;
    return nth < 1 ? 1 : (int)nth;
}

void red_attention_forward(red_pool *pool, float *out, float *pscratch, float *pkeep, const float *q,
                           const float *k, const float *v, int B, int T, int H, int KV, int HD) {
    att_ctx c;
    memset(&c, 0, sizeof c);
    c.pool = pool; c.out = out; c.pscratch = pscratch; c.pkeep = pkeep; c.q = q; c.k = k; c.v = v;
    c.B = B; c.T = T; c.H = H; c.KV = KV; c.HD = HD;
    c.scale = (float)(1.0 / sqrt((double)HD));
    red_pool_run(pool, attention_threads(pool, 2.0 * T * T * HD * B * H, (int64_t)B * H), attention_forward_units, &c);
}

/* Softmax backward on a chunk: dS = P (dP - rowsum(P dP)) * scale. */
static void softmax_backward_chunk(const float *Pc, float *dS, int r0, int rows, int T, float scale) {
    int i, j, cols = r0 + rows;
    for (i = 0; i < rows; i++) {
        const float *p = Pc + (size_t)i * T;
        float *d = dS + (size_t)i * T;
        int n = r0 + i + 1;
        float s = red_vec_dot(p, d, (size_t)n);
        for (j = 0; j < n; j++) d[j] = p[j] * (d[j] - s) * scale;
        for (; j < cols; j++) d[j] = 0.0f;
    }
}

/* One (b, kv head) per unit, so the G query heads sharing K,V accumulate
 * dK, dV in a fixed order and no two threads touch the same rows. */
static void attention_backward_units(void *vc, int ith, int nth) {
    att_ctx *c = vc;
    int64_t lo, hi, u;
    int QD = c->H * c->HD, KD = c->KV * c->HD, G = c->H / c->KV, T = c->T;
    void *ws = red_pool_scratch(c->pool, ith);
    float *dS = att_scratch(c, c->dscratch, ith), *Pc = att_scratch(c, c->pscratch, ith);
    float *Vp = dS + (size_t)ATT_CHUNK * T, *Kp = Pc + (size_t)ATT_CHUNK * T;
    red_split_range((int64_t)c->B * c->KV, ith, nth, &lo, &hi);
    for (u = lo; u < hi; u++) {
        int b = (int)(u / c->KV), g = (int)(u % c->KV), hh, r0;
        const float *K = c->k + (size_t)b * T * KD + (size_t)g * c->HD;
        const float *Vv = c->v + (size_t)b * T * KD + (size_t)g * c->HD;
        float *dK = c->dk + (size_t)b * T * KD + (size_t)g * c->HD;
        float *dV = c->dv + (size_t)b * T * KD + (size_t)g * c->HD;
        red_gemm_nt_pack(Vv, KD, T, c->HD, Vp);
        if (!c->pkeep) red_gemm_nt_pack(K, KD, T, c->HD, Kp);
        for (hh = 0; hh < G; hh++) {
            int h = g * G + hh;
            const float *Q = c->q + (size_t)b * T * QD + (size_t)h * c->HD;
            const float *dO = c->dout + (size_t)b * T * QD + (size_t)h * c->HD;
            float *dQ = c->dq + (size_t)b * T * QD + (size_t)h * c->HD;
            const float *P = c->pkeep ? c->pkeep + ((size_t)b * c->H + h) * T * T : NULL;
            for (r0 = 0; r0 < T; r0 += ATT_CHUNK) {
                int rows = T - r0 < ATT_CHUNK ? T - r0 : ATT_CHUNK, cols = r0 + rows;
                const float *Pr = P ? P + (size_t)r0 * T : Pc;  /* forward's, or recomputed bit-identically */
                if (!P) attention_probs(c, ws, Q, Kp, r0, rows, Pc);
                /* dV += Pᵀ dO ; dP = dO Vᵀ */
                red_sgemm_serial(ws, RED_TN, cols, c->HD, rows, 1.0f, Pr, T, dO + (size_t)r0 * QD, QD, 1.0f, dV, KD);
                red_sgemm_nt_packed(NULL, ws, rows, cols, c->HD, 1.0f, dO + (size_t)r0 * QD, QD, Vp, T, 0.0f, dS, T);
                softmax_backward_chunk(Pr, dS, r0, rows, T, c->scale);
                /* dQ = dS K ; dK += dSᵀ Q */
                red_sgemm_serial(ws, RED_NN, rows, c->HD, cols, 1.0f, dS, T, K, KD, 0.0f, dQ + (size_t)r0 * QD, QD);
                red_sgemm_serial(ws, RED_TN, cols, c->HD, rows, 1.0f, dS, T, Q + (size_t)r0 * QD, QD, 1.0f, dK, KD);
            }
        }
    }
}

/* dq = d/dq (overwritten); dk, dv += (zero them first for a fresh layer). */
void red_attention_backward(red_pool *pool, float *dq, float *dk, float *dv, float *dscratch,
                            const float *dout, float *pscratch, float *pkeep, const float *q, const float *k,
                            const float *v, int B, int T, int H, int KV, int HD) {
    att_ctx c;
    memset(&c, 0, sizeof c);
    c.pool = pool; c.dq = dq; c.dk = dk; c.dv = dv; c.dscratch = dscratch; c.dout = dout;
    c.pscratch = pscratch; c.pkeep = pkeep; c.q = q; c.k = k; c.v = v;
    c.B = B; c.T = T; c.H = H; c.KV = KV; c.HD = HD;
    c.scale = (float)(1.0 / sqrt((double)HD));
    red_pool_run(pool, attention_threads(pool, 5.0 * T * T * HD * B * H, (int64_t)B * KV), attention_backward_units, &c);
}

/* ------------------------------------------------------------------ swiglu */

typedef struct {
    float *act, *dg, *du;
    const float *g, *u, *dact;
} swiglu_ctx;

/* e[i] = exp(-g[i]) for a block of at most SILU_BLOCK (vector exp, stack scratch). */
#define SILU_BLOCK 256
static void exp_neg_block(float *e, const float *g, int64_t m) {
    int64_t i;
    for (i = 0; i < m; i++) e[i] = -g[i];
    red_vec_exp(e, e, (size_t)m);
}

static void swiglu_forward_range(void *vc, int64_t lo, int64_t hi) {
    swiglu_ctx *c = vc;
    float e[SILU_BLOCK];
    int64_t i0, i, m;
    for (i0 = lo; i0 < hi; i0 += m) {
        m = hi - i0 < SILU_BLOCK ? hi - i0 : SILU_BLOCK;
        exp_neg_block(e, c->g + i0, m);
        for (i = 0; i < m; i++) c->act[i0 + i] = c->g[i0 + i] / (1.0f + e[i]) * c->u[i0 + i];
    }
}

/* act = silu(g) * u, silu(g) = g * sigmoid(g). */
void red_swiglu_forward(red_pool *pool, float *act, const float *g, const float *u, int64_t n) {
    swiglu_ctx c;
    c.act = act; c.g = g; c.u = u;
    red_par_range(pool, n, 12.0, swiglu_forward_range, &c);
}

static void swiglu_backward_range(void *vc, int64_t lo, int64_t hi) {
    swiglu_ctx *c = vc;
    float e[SILU_BLOCK];
    int64_t i0, i, m;
    for (i0 = lo; i0 < hi; i0 += m) {
        m = hi - i0 < SILU_BLOCK ? hi - i0 : SILU_BLOCK;
        exp_neg_block(e, c->g + i0, m);
        for (i = i0; i < i0 + m; i++) {
            float g = c->g[i], s = 1.0f / (1.0f + e[i - i0]), d = c->dact[i];
            c->dg[i] = d * c->u[i] * s * (1.0f + g * (1.0f - s));
            c->du[i] = d * g * s;
        }
    }
}

/* dg, du = gradients (overwritten). */
void red_swiglu_backward(red_pool *pool, float *dg, float *du, const float *dact, const float *g,
                         const float *u, int64_t n) {
    swiglu_ctx c;
    c.dg = dg; c.du = du; c.dact = dact; c.g = g; c.u = u;
    red_par_range(pool, n, 14.0, swiglu_backward_range, &c);
}

/* ------------------------------------------------------------------ cross-entropy */

typedef struct {
    const float *logits;
    float *dlogits;
    const int *targets;
    int V;
    double *partial;  /* per row loss */
    float inv_count;
} ce_ctx;

/* Without a gradient: each row's float exps (red_expf, <= 2 ulp) summed in
 * double in index order. */
static void cross_entropy_loss_rows(const ce_ctx *c, int64_t lo, int64_t hi) {
    int64_t n;
    for (n = lo; n < hi; n++) {
        const float *z = c->logits + n * c->V;
        int t = c->targets[n];
        float mx;
        if (t < 0) {
            c->partial[n] = 0.0;
            continue;
        }
        mx = red_vec_max(z, (size_t)c->V);
        c->partial[n] = mx + log(red_vec_sum_exp(z, mx, (size_t)c->V)) - z[t];
    }
}

/* With the gradient: the exps go straight into dlogits and are summed from
 * there (the same values, the same order: the loss's bits), and four rows'
 * sums, each a chain of dependent double adds, run side by side. */
#define CE_GROUP 4
static void cross_entropy_rows(void *vc, int64_t lo, int64_t hi) {
    ce_ctx *c = vc;
    int64_t n0;
    int j, r, V = c->V;
    if (!c->dlogits) {
        cross_entropy_loss_rows(c, lo, hi);
        return;
    }
    for (n0 = lo; n0 < hi; n0 += CE_GROUP) {
        int g = hi - n0 < CE_GROUP ? (int)(hi - n0) : CE_GROUP;
        float mx[CE_GROUP] = {0};
        double se[CE_GROUP] = {0};
        for (r = 0; r < g; r++) {
            const float *z = c->logits + (n0 + r) * V;
            float *d = c->dlogits + (n0 + r) * V;
            if (c->targets[n0 + r] < 0) {  /* ignored: no loss, no gradient */
                memset(d, 0, sizeof(float) * V);
                continue;
            }
            mx[r] = red_vec_max(z, (size_t)V);
            for (j = 0; j < V; j++) d[j] = z[j] - mx[r];
            red_vec_exp(d, d, (size_t)V);
        }
        if (g == CE_GROUP) {
            const float *d0 = c->dlogits + n0 * V, *d1 = d0 + V, *d2 = d1 + V, *d3 = d2 + V;
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            for (j = 0; j < V; j++) {
                s0 += d0[j];
                s1 += d1[j];
                s2 += d2[j];
                s3 += d3[j];
            }
            se[0] = s0; se[1] = s1; se[2] = s2; se[3] = s3;
        } else {
            for (r = 0; r < g; r++)
                for (j = 0; j < V; j++) se[r] += c->dlogits[(n0 + r) * V + j];
        }
        for (r = 0; r < g; r++) {
            const float *z = c->logits + (n0 + r) * V;
            float *d = c->dlogits + (n0 + r) * V;
            int t = c->targets[n0 + r];
            double inv_se;
            if (t < 0) {
                c->partial[n0 + r] = 0.0;
                continue;
            }
            c->partial[n0 + r] = mx[r] + log(se[r]) - z[t];
            inv_se = 1.0 / se[r];
            for (j = 0; j < V; j++) d[j] = (float)(d[j] * inv_se) * c->inv_count;
            d[t] -= c->inv_count;
        }
    }
}

/* ------------------------------------------------------------------ training activations */

struct red_train_acts {
    int maxB, maxT, B, T;
    int backward;   /* the backward scratch and dlogits exist */
    int chunked;    /* RED_RUN_HEAD_CHUNKS: logits are the caller's, head_rows at a time */
    int64_t head_rows;  /* rows of logits (and dlogits) held: N, or a multiple of the GEMM's k block */
    int64_t head_done;  /* rows red_model_head_backward has run since the last forward */
    float *slab;
    size_t n_floats;
    /* saved by forward (L = layers) */
    float *resid;   /* [L+1, N, D] block inputs; resid[L] feeds the final norm */
    float *xn_a;    /* [L, N, D] attention-norm output */
    float *rstd_a;  /* [L, N] */
    float *q;       /* [L, N, QD] after RoPE */
    float *k, *v;   /* [L, N, KD] (k after RoPE) */
    float *pscratch; /* [threads, red_attention_scratch_floats] a chunk of attention probabilities and a packed K */
    float *pkeep;    /* [L, B*H, T, T] the probabilities, kept for backward when they fit KEEP_MAX; else NULL */
    float *att;     /* [L, N, QD] attention output (o_proj input) */
    float *h;       /* [L, N, D] residual after attention */
    float *attn_out, *ffn_out; /* [L, N, D] each: the blocks' outputs before the residual adds, asked for
                                  by RED_RUN_KEEP_ATTN_OUT / _FFN_OUT and kept when those fit KEEP_MAX; else NULL */
    float *outs;               /* the allocation behind them */
    int outputs_asked;         /* the RED_RUN_KEEP_* bits asked for */
    float *xn_m;    /* [L, N, D] */
    float *rstd_m;  /* [L, N] */
    float *g, *u;   /* [L, N, F] gate/up before SiLU */
    float *act;     /* [L, N, F] silu(g)*u when it fits KEEP_MAX (act_kept), else [N, F] of one
                       layer, recomputed from g, u where needed */
    int act_kept;
    float *xn_f;    /* [N, D] */
    float *rstd_f;  /* [N] */
    float *logits, *dlogits; /* [head_rows, V] */
    float *rope_cs; /* [T, HD] cos | sin */
    /* backward scratch, one layer at a time */
    float *dres, *dxn;        /* [N, D] */
    float *dq, *datt;         /* [N, QD] */
    float *dk, *dv;           /* [N, KD] */
    float *dg, *du, *dact;    /* [N, F] */
    float *dscratch;          /* [threads, red_attention_scratch_floats] */
    double *row_loss;         /* [N] */
    int *tokens;              /* [N] */
};

static void acts_free(red_train_acts *a) {
    if (!a) return;
    red_free_aligned(a->slab);
    red_free_aligned(a->pkeep);
    red_free_aligned(a->outs);
    free(a->row_loss);
    free(a->tokens);
    free(a);
}

/* The slab size in 64-bit arithmetic (red_config_check bounds keep it below
 * 2^50): on a 32-bit host the size_t layout would wrap around. */
static uint64_t param_floats_u64(const red_config *c) {
    uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->ffn, V = (uint64_t)c->vocab,
             QD = (uint64_t)c->n_heads * (uint64_t)c->head_dim, KD = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
    uint64_t layer = 2 * D + 2 * QD * D + 2 * KD * D + 3 * F * D + (c->qkv_bias ? QD + 2 * KD : 0);
    return V * D * (c->tied ? 1 : 2) + (uint64_t)c->n_layers * layer + D;
}

/* Config, tables and named pointers around a parameter slab: a new zeroed
 * one (slab NULL) or a shared one. */
static red_status model_setup(red_model *m, const red_config *c, red_pool *pool, float *slab, red_error *err) {
    red_status st;
    int i;
    memset(m, 0, sizeof *m);
    if ((st = red_config_check(c, err))) return st;
    if (param_floats_u64(c) > SIZE_MAX / sizeof(float))
        return red_error_set(err, RED_E_NOMEM, "model: %llu parameters do not fit in this host's address space",
                             (unsigned long long)param_floats_u64(c));
    m->cfg = *c;
    m->pool = pool;
    m->n_params = red_param_floats(c);
    m->n_tensors = red_param_tensors(c);
    m->table = calloc((size_t)m->n_tensors, sizeof *m->table);
    m->layer_buf = calloc((size_t)c->n_layers * 2, sizeof *m->layer_buf);
    m->decay_mask = calloc((size_t)m->n_tensors, 1);
    m->rope_inv_freq = calloc((size_t)c->head_dim / 2, sizeof(float));
    m->own_params = !slab;
    m->params = slab ? slab : red_malloc_aligned(m->n_params * sizeof(float));
    if (!m->table || !m->layer_buf || !m->decay_mask || !m->rope_inv_freq || !m->params) {
        size_t n = m->n_params;  /* red_model_free clears m */
        red_model_free(m);
        return red_error_set(err, RED_E_NOMEM, "model: out of memory for %zu parameters", n);
    }
    if (!slab) memset(m->params, 0, m->n_params * sizeof(float));
    red_param_table(c, m->table);
    for (i = 0; i < m->n_tensors; i++) m->decay_mask[i] = m->table[i].ndim == 2;
    red_weights_point(&m->w, c, m->params, m->layer_buf);
    red_rope_inv_freq(c, m->rope_inv_freq);
    return RED_OK;
}

red_status red_model_alloc(red_model *m, const red_config *c, red_pool *pool, red_error *err) {
    return model_setup(m, c, pool, NULL, err);
}

red_status red_model_share(red_model *m, const red_model *src, red_pool *pool, red_error *err) {
    return model_setup(m, &src->cfg, pool, src->params, err);
}

void red_model_free(red_model *m) {
    if (m->own_params) red_free_aligned(m->params);
    red_free_aligned(m->grads);
    free(m->grad_unwritten);
    red_free_aligned(m->adam_m);
    red_free_aligned(m->adam_v);
    acts_free(m->acts);
    free(m->table);
    free(m->layer_buf);
    free(m->decay_mask);
    free(m->rope_inv_freq);
    memset(m, 0, sizeof *m);
}

void red_model_init_random(red_model *m, red_rng *rng, float std, float out_std) {
    int i;
    for (i = 0; i < m->n_tensors; i++) {
        const red_param *p = &m->table[i];
        float *x = m->params + p->offset;
        size_t len = strlen(p->name);
        if (p->ndim == 1) {
            int is_bias = len > 5 && strcmp(p->name + len - 5, ".bias") == 0;
            red_vec_fill(x, is_bias ? 0.0f : 1.0f, p->numel);
        } else {
            int is_out = strstr(p->name, "o_proj") || strstr(p->name, "down_proj");
            red_rng_fill_normal(rng, x, p->numel, 0.0f, (is_out && out_std > 0.0f) ? out_std : std);
        }
    }
}

/* Gradient and AdamW slabs, as `what` asks (each allocated once, zeroed). */
static red_status alloc_param_slabs(red_model *m, int what, red_error *err) {
    size_t bytes = m->n_params * sizeof(float), grad_bytes = (m->n_params + m->grad_tail) * sizeof(float);
    if ((what & RED_RUN_BACKWARD) && !m->grads) {
        if (!(m->grads = red_malloc_aligned(grad_bytes)))
            return red_error_set(err, RED_E_NOMEM, "model: out of memory for gradients (%.1f MB)", grad_bytes / 1e6);
        memset(m->grads, 0, grad_bytes);
        red_weights_point(&m->gw, &m->cfg, m->grads, m->layer_buf + m->cfg.n_layers);
        if (!(m->grad_unwritten = calloc((size_t)m->n_tensors, 1)))
            return red_error_set(err, RED_E_NOMEM, "model: out of memory");
    }
    if ((what & RED_RUN_ADAM) && !m->adam_m) {
        m->adam_m = red_malloc_aligned(bytes);
        m->adam_v = red_malloc_aligned(bytes);
        if (!m->adam_m || !m->adam_v)
            return red_error_set(err, RED_E_NOMEM, "model: out of memory for AdamW moments (%.1f MB)", 2 * bytes / 1e6);
        memset(m->adam_m, 0, bytes);
        memset(m->adam_v, 0, bytes);
    }
    return RED_OK;
}

/* Rows of logits a chunked run state holds: one k block of the GEMM, so the
 * head's weight gradient, summed over rows chunk by chunk, adds the same
 * k blocks in the same order as one GEMM over all rows (bit for bit). */
static int64_t head_chunk_rows(int64_t N) {
    int64_t kb = red_sgemm_k_block();
    return N < kb ? N : kb;
}

/* The blocks' outputs (`outputs`: RED_RUN_KEEP_* bits; per floats each) spare
 * distillation recomputing its clone targets (red_layer_acts.attn_out,
 * ffn_out); past KEEP_MAX, or if the allocation fails, they are recomputed,
 * the attention's first (its product is the cheaper: K = QD, not F). */
static void outputs_alloc(red_train_acts *a, int outputs, size_t per) {
    int n_out = !!(outputs & RED_RUN_KEEP_ATTN_OUT) + !!(outputs & RED_RUN_KEEP_FFN_OUT);
    a->outputs_asked = outputs;
    if (n_out == 2 && 2.0 * per * sizeof(float) > KEEP_MAX) {
        outputs &= ~RED_RUN_KEEP_ATTN_OUT;
        n_out = 1;
    }
    if (n_out && (double)n_out * per * sizeof(float) <= KEEP_MAX &&
        (a->outs = red_malloc_aligned(n_out * per * sizeof(float)))) {
        a->attn_out = outputs & RED_RUN_KEEP_ATTN_OUT ? a->outs : NULL;
        a->ffn_out = !(outputs & RED_RUN_KEEP_FFN_OUT) ? NULL : a->attn_out ? a->outs + per : a->outs;
    }
}

red_status red_model_run_alloc(red_model *m, int B, int T, int what, red_error *err) {
    const red_config *c = &m->cfg;
    red_train_acts *a;
    int backward = (what & RED_RUN_BACKWARD) != 0, chunked = (what & RED_RUN_HEAD_CHUNKS) != 0,
        outputs = what & (RED_RUN_KEEP_ATTN_OUT | RED_RUN_KEEP_FFN_OUT);
    size_t N = (size_t)B * T, D = (size_t)c->dim, F = (size_t)c->ffn, L = (size_t)c->n_layers,
           QD = (size_t)c->n_heads * c->head_dim, KD = (size_t)c->n_kv_heads * c->head_dim,
           V = (size_t)c->vocab, nth = (size_t)red_pool_size(m->pool), R, total;
    red_status st;
    float *p;
    if (B < 1 || T < 1 || T > c->max_pos)
        return red_error_set(err, RED_E_ARG, "model: batch %d x %d outside 1..max_position_embeddings %d",
                             B, T, c->max_pos);
    if (m->acts) {
        if (B <= m->acts->maxB && T == m->acts->maxT && (!backward || m->acts->backward) &&
            chunked == m->acts->chunked && !(outputs & ~m->acts->outputs_asked))
            return alloc_param_slabs(m, what, err);
        acts_free(m->acts);
        m->acts = NULL;
    }
    if ((st = alloc_param_slabs(m, what, err))) return st;
    a = calloc(1, sizeof *a);
    if (!a) return red_error_set(err, RED_E_NOMEM, "model: out of memory");
    a->maxB = B;
    a->maxT = T;
    a->backward = backward;
    a->chunked = chunked;
    a->head_rows = (int64_t)(R = chunked ? (size_t)head_chunk_rows((int64_t)N) : N);
    /* per layer: everything backward reads; silu(g)*u of one layer only unless all fit KEEP_MAX */
    a->act_kept = (double)L * N * F * sizeof(float) <= KEEP_MAX;
    total = (L + 1) * N * D + L * (N * D + N + N * QD + 2 * N * KD + N * QD + N * D + N * D + N + 2 * N * F) +
            (a->act_kept ? L : 1) * N * F + N * D + N + R * V + (size_t)T * c->head_dim +
            nth * red_attention_scratch_floats(T, c->head_dim);
    if (backward)  /* dlogits and one layer of backward scratch */
        total += R * V + 2 * N * D + 2 * N * QD + 2 * N * KD + 3 * N * F +
                 nth * red_attention_scratch_floats(T, c->head_dim);
    a->n_floats = total;
    a->slab = red_malloc_aligned(total * sizeof(float));
    a->row_loss = malloc(N * sizeof(double));
    a->tokens = malloc(N * sizeof(int));
    if (!a->slab || !a->row_loss || !a->tokens) {
        acts_free(a);
        return red_error_set(err, RED_E_NOMEM, "model: out of memory for activations (%.1f MB for batch %d x %d)",
                             total * 4.0 / 1e6, B, T);
    }
    p = a->slab;
#define TAKE(field, count) do { a->field = p; p += (count); } while (0)
    TAKE(resid, (L + 1) * N * D);
    TAKE(xn_a, L * N * D);
    TAKE(rstd_a, L * N);
    TAKE(q, L * N * QD);
    TAKE(k, L * N * KD);
    TAKE(v, L * N * KD);
    TAKE(att, L * N * QD);
    TAKE(h, L * N * D);
    TAKE(xn_m, L * N * D);
    TAKE(rstd_m, L * N);
    TAKE(g, L * N * F);
    TAKE(u, L * N * F);
    TAKE(act, (a->act_kept ? L : 1) * N * F);
    TAKE(xn_f, N * D);
    TAKE(rstd_f, N);
    TAKE(logits, R * V);
    TAKE(rope_cs, (size_t)T * c->head_dim);
    TAKE(pscratch, nth * red_attention_scratch_floats(T, c->head_dim));
    if (backward) {
        TAKE(dlogits, R * V);
        TAKE(dres, N * D);
        TAKE(dxn, N * D);
        TAKE(dq, N * QD);
        TAKE(datt, N * QD);
        TAKE(dk, N * KD);
        TAKE(dv, N * KD);
        TAKE(dg, N * F);
        TAKE(du, N * F);
        TAKE(dact, N * F);
        TAKE(dscratch, nth * red_attention_scratch_floats(T, c->head_dim));
    }
#undef TAKE
    /* Kept probabilities spare backward a QKᵀ product and a softmax per chunk;
     * past KEEP_MAX (long sequences), or if this allocation fails, backward
     * recomputes them instead. */
    if (backward && (double)L * N * c->n_heads * T * sizeof(float) <= KEEP_MAX)
        a->pkeep = red_malloc_aligned(L * N * (size_t)c->n_heads * T * sizeof(float));  /* NULL: recomputed */
    outputs_alloc(a, outputs, L * N * D);
    red_rope_table(a->rope_cs, m->rope_inv_freq, c->head_dim / 2, T, NULL);
    m->acts = a;
    return RED_OK;
}

red_status red_model_train_alloc(red_model *m, int B, int T, red_error *err) {
    return red_model_run_alloc(m, B, T, RED_RUN_BACKWARD | RED_RUN_ADAM, err);
}

float *red_model_logits(red_model *m) { return m->acts ? m->acts->logits : NULL; }
float *red_model_dlogits(red_model *m) { return m->acts ? m->acts->dlogits : NULL; }

/* Per-layer slices of the saved activations. */
#define LAYER(ptr, l, per) ((ptr) + (size_t)(l) * (per))

/* Layer l's kept attention probabilities at the run's maxB, or NULL. */
static float *keep_layer(const red_train_acts *a, int l, const red_config *c) {
    return a->pkeep ? LAYER(a->pkeep, l, (size_t)a->maxB * c->n_heads * a->maxT * a->maxT) : NULL;
}

/* The tensor of a slab laid out like the parameters (base) that p points into. */
static int tensor_at(const red_model *m, const float *base, const float *p) {
    size_t off = (size_t)(p - base);
    int lo = 0, hi = m->n_tensors - 1;
    while (lo < hi) {  /* the last tensor starting at or before off */
        int mid = (lo + hi + 1) / 2;
        if (m->table[mid].offset <= off) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static int grad_tensor(const red_model *m, const float *g) { return tensor_at(m, m->grads, g); }

/* W packed for the forward (m->wpack), or NULL: W is then packed by its GEMM. */
const float *red_model_packed_weight(const red_model *m, const float *W) {
    return m->wpack && m->wpack->of ? m->wpack->of[tensor_at(m, m->params, W)] : NULL;
}

/* Every matrix the forward multiplies as Wᵀ: all of them but an untied embedding. */
static int weight_packs(const red_model *m, int i) {
    return m->table[i].ndim == 2 && (m->cfg.tied || m->params + m->table[i].offset != m->w.embed);
}

void red_model_linear(red_pool *pool, const red_model *m, float *out, const float *in, const float *W, int64_t N,
                      int O, int I) {
    linear_forward_packed(pool, out, in, W, red_model_packed_weight(m, W), NULL, N, O, I);
}

red_status red_weight_pack_fill(red_weight_pack *p, const red_model *m, red_error *err) {
    size_t floats = 0, off = 0;
    int i;
    for (i = 0; i < m->n_tensors; i++)
        if (weight_packs(m, i))
            floats += red_gemm_nt_packed_floats((int)m->table[i].shape[0], (int)m->table[i].shape[1]);
    if (floats * sizeof(float) > RED_WEIGHT_PACK_MAX) return RED_OK;  /* not packed: of stays NULL */
    if (!p->buf) {
        p->buf = red_malloc_aligned(floats * sizeof(float));
        p->of = calloc((size_t)m->n_tensors, sizeof *p->of);
        p->n_tensors = m->n_tensors;
        if (!p->buf || !p->of) {
            red_weight_pack_free(p);
            return red_error_set(err, RED_E_NOMEM, "model: out of memory for packed weights (%.1f MB)",
                                 floats * 4.0 / 1e6);
        }
    }
    if (p->n_tensors != m->n_tensors) return red_error_set(err, RED_E_ARG, "model: a weight pack of another model");
    for (i = 0; i < m->n_tensors; i++) {
        const red_param *t = &m->table[i];
        if (!weight_packs(m, i)) continue;
        red_gemm_nt_pack(m->params + t->offset, (int)t->shape[1], (int)t->shape[0], (int)t->shape[1], p->buf + off);
        p->of[i] = p->buf + off;
        off += red_gemm_nt_packed_floats((int)t->shape[0], (int)t->shape[1]);
    }
    return RED_OK;
}

void red_weight_pack_free(red_weight_pack *p) {
    red_free_aligned(p->buf);
    free(p->of);
    memset(p, 0, sizeof *p);
}

red_status red_model_forward(red_model *m, const int *tokens, int B, int T) {
    const red_config *c = &m->cfg;
    red_train_acts *a = m->acts;
    red_pool *pool = m->pool;
    int64_t N = (int64_t)B * T, i;
    int D = c->dim, F = c->ffn, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim, l;
    size_t ND = (size_t)N * D, NF = (size_t)N * F, NQ = (size_t)N * QD, NK = (size_t)N * KD;
    if (!a || B < 1 || B > a->maxB || T != a->maxT) return RED_E_ARG;
    for (i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab) return RED_E_ARG;
    a->B = B;
    a->T = T;
    memcpy(a->tokens, tokens, (size_t)N * sizeof(int));
    red_embed_forward(pool, a->resid, tokens, m->w.embed, N, D);
    for (l = 0; l < c->n_layers; l++) {
        const red_layer_weights *w = &m->w.layers[l];
        float *x = LAYER(a->resid, l, ND), *xn = LAYER(a->xn_a, l, ND), *q = LAYER(a->q, l, NQ),
              *k = LAYER(a->k, l, NK), *v = LAYER(a->v, l, NK), *att = LAYER(a->att, l, NQ),
              *h = LAYER(a->h, l, ND), *xm = LAYER(a->xn_m, l, ND), *g = LAYER(a->g, l, NF),
              *u = LAYER(a->u, l, NF), *y = LAYER(a->resid, l + 1, ND),
              *act = a->act_kept ? LAYER(a->act, l, NF) : a->act,
              *attn_out = a->attn_out ? LAYER(a->attn_out, l, ND) : h,
              *ffn_out = a->ffn_out ? LAYER(a->ffn_out, l, ND) : y;
        red_rmsnorm_forward(pool, xn, LAYER(a->rstd_a, l, N), x, w->attn_norm, N, D, c->norm_eps);
        {
            float *out[3];
            const float *W[3], *bias[3];
            int O[3];
            const float *pk[3];
            out[0] = q; W[0] = w->wq; bias[0] = w->bq; O[0] = QD; pk[0] = red_model_packed_weight(m, w->wq);
            out[1] = k; W[1] = w->wk; bias[1] = w->bk; O[1] = KD; pk[1] = red_model_packed_weight(m, w->wk);
            out[2] = v; W[2] = w->wv; bias[2] = w->bv; O[2] = KD; pk[2] = red_model_packed_weight(m, w->wv);
            linear_forward_parts(pool, 3, out, xn, W, pk[0] ? pk : NULL, bias, N, O, D);
        }
        red_rope_forward(pool, q, a->rope_cs, N, T, c->n_heads, c->head_dim);
        red_rope_forward(pool, k, a->rope_cs, N, T, c->n_kv_heads, c->head_dim);
        red_attention_forward(pool, att, a->pscratch, keep_layer(a, l, c), q, k, v, B, T, c->n_heads,
                              c->n_kv_heads, c->head_dim);
        /* each block's output is a product of its own, added to the residual once
           (not accumulated into it): the same bits whether or not it is kept */
        linear_forward_packed(pool, attn_out, att, w->wo, red_model_packed_weight(m, w->wo), NULL, N, D, QD);
        red_vec_add_par(pool, h, x, attn_out, ND);
        red_rmsnorm_forward(pool, xm, LAYER(a->rstd_m, l, N), h, w->mlp_norm, N, D, c->norm_eps);
        {
            float *out[2];
            const float *W[2], *bias[2] = {NULL, NULL};
            int O[2];
            const float *pk[2];
            out[0] = g; W[0] = w->wg; O[0] = F; pk[0] = red_model_packed_weight(m, w->wg);
            out[1] = u; W[1] = w->wu; O[1] = F; pk[1] = red_model_packed_weight(m, w->wu);
            linear_forward_parts(pool, 2, out, xm, W, pk[0] ? pk : NULL, bias, N, O, D);
        }
        red_swiglu_forward(pool, act, g, u, (int64_t)NF);
        linear_forward_packed(pool, ffn_out, act, w->wd, red_model_packed_weight(m, w->wd), NULL, N, D, F);
        red_vec_add_par(pool, y, h, ffn_out, ND);
    }
    red_rmsnorm_forward(pool, a->xn_f, a->rstd_f, LAYER(a->resid, c->n_layers, ND), m->w.norm, N, D,
                    c->norm_eps);
    a->head_done = 0;
    if (!a->chunked)
        linear_forward_packed(pool, a->logits, a->xn_f, m->w.lm_head, red_model_packed_weight(m, m->w.lm_head), NULL,
                              N, c->vocab, D);
    return RED_OK;
}

/* A chunk of rows [r0, r0 + rows) must start on a chunk edge and fit the buffer. */
static int head_chunk_ok(const red_train_acts *a, int64_t r0, int64_t rows) {
    int64_t N = (int64_t)a->B * a->T;
    return a->chunked && r0 >= 0 && rows >= 1 && rows <= a->head_rows && r0 + rows <= N && r0 % a->head_rows == 0;
}

red_status red_model_head_forward(red_model *m, int64_t r0, int64_t rows) {
    red_train_acts *a = m->acts;
    int D = m->cfg.dim, V = m->cfg.vocab;
    const float *packed = red_model_packed_weight(m, m->w.lm_head);
    if (!a || !head_chunk_ok(a, r0, rows)) return RED_E_ARG;
    if (rows == (int64_t)a->B * a->T)  /* all rows: the unchunked call itself (which may take the GEMV path) */
        linear_forward_packed(m->pool, a->logits, a->xn_f, m->w.lm_head, packed, NULL, rows, V, D);
    else if (packed)  /* more rows than LINEAR_GEMV_ROWS in all: the unchunked call is this GEMM, rows independent */
        red_sgemm_nt_packed(m->pool, NULL, (int)rows, V, D, 1.0f, a->xn_f + (size_t)r0 * D, D, packed, V, 0.0f,
                            a->logits, V);
    else
        red_sgemm(m->pool, RED_NT, (int)rows, V, D, 1.0f, a->xn_f + (size_t)r0 * D, D, m->w.lm_head, D, 0.0f,
                  a->logits, V);
    return RED_OK;
}

/* Lazily zeroed gradients. red_model_zero_grad only marks every tensor
 * unwritten; in backward a tensor's first writer overwrites it (a GEMM with
 * beta 0: the same bits as adding to zeros, since its sum starts at +0) and
 * an accumulator is cleared just before its first addition; backward clears
 * whatever it never wrote before it returns. A training step so skips a pass
 * over the whole gradient slab per sequence. */

/* 1 if g's tensor is unwritten since red_model_zero_grad (it is then marked written). */
static int grad_first(red_model *m, const float *g) {
    int i = grad_tensor(m, g);
    if (!m->grad_unwritten[i]) return 0;
    m->grad_unwritten[i] = 0;
    return 1;
}

/* The beta of a GEMM that writes gradient g: 0 the first time, then 1. */
static float grad_beta(red_model *m, const float *g) { return grad_first(m, g) ? 0.0f : 1.0f; }

/* An accumulator (+=) about to be added into: zeroed the first time. */
static float *grad_clear(red_model *m, float *g) {
    if (g && grad_first(m, g)) memset(g, 0, m->table[grad_tensor(m, g)].numel * sizeof(float));
    return g;
}

static void grads_settle(red_model *m) {
    int i;
    for (i = 0; i < m->n_tensors; i++)
        if (m->grad_unwritten[i]) {
            memset(m->grads + m->table[i].offset, 0, m->table[i].numel * sizeof(float));
            m->grad_unwritten[i] = 0;
        }
}

red_status red_model_grad_tail(red_model *m, size_t floats, red_error *err) {
    if (floats == m->grad_tail) return RED_OK;
    if (m->grads)  /* a slab bound in its place would be the caller's: no reallocating under it */
        return red_error_set(err, RED_E_ARG,
                             "model: a gradient tail must be set before the gradient (RED_RUN_BACKWARD)");
    m->grad_tail = floats;  /* allocated with the slab */
    return RED_OK;
}

void red_model_bind_grads(red_model *m, float *slab) {
    m->grads = slab;
    red_weights_point(&m->gw, &m->cfg, m->grads, m->layer_buf + m->cfg.n_layers);
}

void red_model_zero_grad(red_model *m) {
    if (m->grads) memset(m->grad_unwritten, 1, (size_t)m->n_tensors);
}

red_status red_model_head_backward(red_model *m, int64_t r0, int64_t rows) {
    red_train_acts *a = m->acts;
    int D = m->cfg.dim;
    if (!a || !a->backward || !m->grads || !head_chunk_ok(a, r0, rows)) return RED_E_ARG;
    red_linear_backward(m->pool, a->dxn + (size_t)r0 * D, m->gw.lm_head, NULL, a->dlogits, a->xn_f + (size_t)r0 * D,
                        m->w.lm_head, rows, m->cfg.vocab, D, 0.0f, grad_beta(m, m->gw.lm_head));
    a->head_done += rows;
    return RED_OK;
}

int64_t red_model_head_rows(const red_model *m) { return m->acts ? m->acts->head_rows : 0; }

void red_cross_entropy_rows(red_pool *pool, double *row_loss, float *dlogits, const float *logits,
                            const int *targets, int64_t rows, int V, float inv_count) {
    ce_ctx c;
    c.logits = logits;
    c.dlogits = dlogits;
    c.targets = targets;
    c.V = V;
    c.partial = row_loss;
    c.inv_count = inv_count;
    red_par_range(pool, rows, 40.0 * V, cross_entropy_rows, &c);  /* exp dominates */
}

float red_model_cross_entropy(red_model *m, const int *targets, int want_grad, int64_t *n_counted) {
    red_train_acts *a = m->acts;
    int64_t N = (int64_t)a->B * a->T, n, count = 0;
    double sum;
    if (want_grad && !a->dlogits) return NAN;  /* no backward run state */
    for (n = 0; n < N; n++) count += targets[n] >= 0;
    sum = red_model_ce_sum(m, targets, want_grad, count, 0.0);
    if (n_counted) *n_counted = count;
    return count ? (float)(sum / count) : 0.0f;
}

double red_model_ce_sum(red_model *m, const int *targets, int want_grad, int64_t count, double sum) {
    red_train_acts *a = m->acts;
    int64_t N = (int64_t)a->B * a->T, n;
    if (want_grad && !a->dlogits) return NAN;  /* no backward run state */
    if (a->chunked) return NAN;                /* the forward left the logits to the caller's loss */
    red_cross_entropy_rows(m->pool, a->row_loss, want_grad ? a->dlogits : NULL, a->logits, targets, N,
                           m->cfg.vocab, count ? 1.0f / (float)count : 0.0f);
    for (n = 0; n < N; n++) sum += a->row_loss[n];  /* fixed order */
    return sum;
}

const float *red_model_dinput(const red_model *m) { return m->acts ? m->acts->dres : NULL; }

/* Flat slab passes (zeroing, gradient norm) work on fixed 64K-element chunks;
 * the norm adds per-chunk sums in chunk order, so it does not depend on how
 * many threads computed them. */
#define CLIP_CHUNK 65536

typedef struct {
    float *g;
    size_t n;
    double *partial;
    float scale;
} clip_ctx;

void red_model_layer_acts(const red_model *m, int l, red_layer_acts *out) {
    const red_config *c = &m->cfg;
    const red_train_acts *a = m->acts;
    int64_t N = (int64_t)a->B * a->T;
    size_t ND = (size_t)N * c->dim, NF = (size_t)N * c->ffn, NQ = (size_t)N * c->n_heads * c->head_dim,
           NK = (size_t)N * c->n_kv_heads * c->head_dim;
    out->x = LAYER(a->resid, l, ND);
    out->xn_a = LAYER(a->xn_a, l, ND);
    out->q = LAYER(a->q, l, NQ);
    out->k = LAYER(a->k, l, NK);
    out->v = LAYER(a->v, l, NK);
    out->att = LAYER(a->att, l, NQ);
    out->h = LAYER(a->h, l, ND);
    out->xn_m = LAYER(a->xn_m, l, ND);
    out->g = LAYER(a->g, l, NF);
    out->u = LAYER(a->u, l, NF);
    out->act = a->act_kept ? LAYER(a->act, l, NF) : NULL;
    out->attn_out = a->attn_out ? LAYER(a->attn_out, l, ND) : NULL;
    out->ffn_out = a->ffn_out ? LAYER(a->ffn_out, l, ND) : NULL;
    out->out = LAYER(a->resid, l + 1, ND);
}

int red_model_max_batch(const red_model *m) { return m->acts ? m->acts->maxB : 0; }

const float *red_model_final_normed(const red_model *m) { return m->acts ? m->acts->xn_f : NULL; }

/* Adds an extra activation gradient (when given) into d. */
static void add_extra(float *d, const float *extra, size_t per) {
    if (extra) red_vec_add(d, d, extra, per);
}

red_status red_model_backward(red_model *m) { return red_model_backward_ex(m, NULL); }

red_status red_model_backward_ex(red_model *m, const red_act_grads *ex) {
    const red_config *c = &m->cfg;
    red_train_acts *a = m->acts;
    red_pool *pool = m->pool;
    int B, T, l, D = c->dim, F = c->ffn, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    int64_t N;
    size_t ND, NF, NQ, NK;
    if (!a || !a->backward || !m->grads || a->B < 1) return RED_E_ARG;  /* no RED_RUN_BACKWARD run state */
    B = a->B;
    T = a->T;
    N = (int64_t)B * T;
    ND = (size_t)N * D; NF = (size_t)N * F; NQ = (size_t)N * QD; NK = (size_t)N * KD;
    /* refused: the slab is left as zero_grad would have left it, not stale */
    if ((ex && !ex->fill) || (a->chunked && a->head_done != N)) {
        grads_settle(m);
        return RED_E_ARG;
    }
    /* head (unless the caller ran it chunk by chunk) and final norm */
    if (!a->chunked)
        red_linear_backward(pool, a->dxn, m->gw.lm_head, NULL, a->dlogits, a->xn_f, m->w.lm_head, N, c->vocab, D,
                            0.0f, grad_beta(m, m->gw.lm_head));
    memset(a->dres, 0, ND * sizeof(float));
    red_rmsnorm_backward(pool, a->dres, grad_clear(m, m->gw.norm), a->dxn, LAYER(a->resid, c->n_layers, ND), m->w.norm,
                     a->rstd_f, N, D);
    for (l = c->n_layers - 1; l >= 0; l--) {
        const red_layer_weights *w = &m->w.layers[l];
        red_layer_weights *gw = &m->gw.layers[l];
        float *x = LAYER(a->resid, l, ND), *xn = LAYER(a->xn_a, l, ND), *q = LAYER(a->q, l, NQ),
              *k = LAYER(a->k, l, NK), *v = LAYER(a->v, l, NK), *att = LAYER(a->att, l, NQ),
              *h = LAYER(a->h, l, ND), *xm = LAYER(a->xn_m, l, ND), *g = LAYER(a->g, l, NF),
              *u = LAYER(a->u, l, NF), *dffn, *act;
        if (ex) ex->fill(ex->ctx, l);
        /* MLP: dres is d(loss)/d(block output) and passes straight to h; an
           extra FFN-output gradient reaches only the MLP branch */
        dffn = a->dres;
        if (ex && ex->dffn) {  /* dxn is free until the gate/up backward overwrites it */
            red_vec_add(a->dxn, a->dres, ex->dffn, ND);
            dffn = a->dxn;
        }
        if (a->act_kept)
            act = LAYER(a->act, l, NF);
        else
            red_swiglu_forward(pool, act = a->act, g, u, (int64_t)NF);  /* the same op as forward's: the same bits */
        red_linear_backward(pool, a->dact, gw->wd, NULL, dffn, act, w->wd, N, D, F, 0.0f, grad_beta(m, gw->wd));
        red_swiglu_backward(pool, a->dg, a->du, a->dact, g, u, (int64_t)NF);
        if (ex) {
            add_extra(a->dg, ex->dg, NF);
            add_extra(a->du, ex->du, NF);
        }
        red_linear_backward(pool, a->dxn, gw->wg, NULL, a->dg, xm, w->wg, N, F, D, 0.0f, grad_beta(m, gw->wg));
        red_linear_backward(pool, a->dxn, gw->wu, NULL, a->du, xm, w->wu, N, F, D, 1.0f, grad_beta(m, gw->wu));
        red_rmsnorm_backward(pool, a->dres, grad_clear(m, gw->mlp_norm), a->dxn, h, w->mlp_norm, LAYER(a->rstd_m, l, N),
                             N, D);
        /* attention */
        red_linear_backward(pool, a->datt, gw->wo, NULL, a->dres, att, w->wo, N, D, QD, 0.0f, grad_beta(m, gw->wo));
        memset(a->dk, 0, NK * sizeof(float));
        memset(a->dv, 0, NK * sizeof(float));
        if (ex) add_extra(a->datt, ex->datt, NQ);
        red_attention_backward(pool, a->dq, a->dk, a->dv, a->dscratch, a->datt, a->pscratch, keep_layer(a, l, c),
                               q, k, v, B, T, c->n_heads, c->n_kv_heads, c->head_dim);
        if (ex) {  /* q, k gradients in the rotated space: RoPE's backward maps them back */
            add_extra(a->dq, ex->dq, NQ);
            add_extra(a->dk, ex->dk, NK);
            add_extra(a->dv, ex->dv, NK);
        }
        red_rope_backward(pool, a->dq, a->rope_cs, N, T, c->n_heads, c->head_dim);
        red_rope_backward(pool, a->dk, a->rope_cs, N, T, c->n_kv_heads, c->head_dim);
        red_linear_backward(pool, a->dxn, gw->wq, grad_clear(m, gw->bq), a->dq, xn, w->wq, N, QD, D, 0.0f,
                            grad_beta(m, gw->wq));
        red_linear_backward(pool, a->dxn, gw->wk, grad_clear(m, gw->bk), a->dk, xn, w->wk, N, KD, D, 1.0f,
                            grad_beta(m, gw->wk));
        red_linear_backward(pool, a->dxn, gw->wv, grad_clear(m, gw->bv), a->dv, xn, w->wv, N, KD, D, 1.0f,
                            grad_beta(m, gw->wv));
        red_rmsnorm_backward(pool, a->dres, grad_clear(m, gw->attn_norm), a->dxn, x, w->attn_norm,
                             LAYER(a->rstd_a, l, N), N, D);
    }
    red_embed_backward(pool, grad_clear(m, m->gw.embed), a->dres, a->tokens, N, D, c->vocab);
    grads_settle(m);
    return RED_OK;
}

/* ------------------------------------------------------------------ KV-cache inference */

red_status red_kv_alloc(red_kv_state *s, const red_model *m, int n_seq, int max_len, int max_rows,
                        red_error *err) {
    const red_config *c = &m->cfg;
    size_t KD = (size_t)c->n_kv_heads * c->head_dim, QD = (size_t)c->n_heads * c->head_dim,
           R = (size_t)max_rows, nth = (size_t)red_pool_size(m->pool), cache;
    memset(s, 0, sizeof *s);
    if (n_seq < 1 || max_len < 1 || max_rows < 1)
        return red_error_set(err, RED_E_ARG, "kv cache: n_seq, max_len and max_rows must be >= 1");
    if (max_len > c->max_pos)
        return red_error_set(err, RED_E_ARG, "kv cache: %d positions exceed max_position_embeddings %d",
                             max_len, c->max_pos);
    s->n_seq = n_seq;
    s->max_len = max_len;
    s->max_rows = max_rows;
    cache = (size_t)c->n_layers * n_seq * max_len * KD;
    /* x, xn | q, att | k, v | g, u | cos/sin | scores per thread */
    s->buf_floats = R * (2 * (size_t)c->dim + 2 * QD + 2 * KD + 2 * (size_t)c->ffn + (size_t)c->head_dim) +
                    (nth * (size_t)max_len > R ? nth * (size_t)max_len : R);
    s->k_cache = red_malloc_aligned(cache * sizeof(float));
    s->v_cache = red_malloc_aligned(cache * sizeof(float));
    s->buf = red_malloc_aligned(s->buf_floats * sizeof(float));
    s->logits = red_malloc_aligned(R * c->vocab * sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->buf || !s->logits) {
        red_kv_free(s);
        return red_error_set(err, RED_E_NOMEM, "kv cache: out of memory (%.1f MB)", 8.0 * cache / 1e6);
    }
    return RED_OK;
}

void red_kv_free(red_kv_state *s) {
    red_free_aligned(s->k_cache);
    red_free_aligned(s->v_cache);
    red_free_aligned(s->buf);
    red_free_aligned(s->logits);
    memset(s, 0, sizeof *s);
}

typedef struct {
    const red_config *c;
    const float *q, *kc, *vc;  /* this layer's caches */
    float *att, *scores;
    const int *seq, *pos;
    int n, max_len;
} kv_att_ctx;

/* One (row, head) per unit: softmax over the sequence's cache [0, pos]. */
static void kv_attention_units(void *vp, int ith, int nth) {
    kv_att_ctx *c = vp;
    const red_config *cf = c->c;
    int H = cf->n_heads, HD = cf->head_dim, G = cf->n_heads / cf->n_kv_heads;
    size_t KD = (size_t)cf->n_kv_heads * HD, QD = (size_t)H * HD;
    float *sc = c->scores + (size_t)ith * c->max_len, scale = (float)(1.0 / sqrt((double)HD));
    int64_t lo, hi, u;
    red_split_range((int64_t)c->n * H, ith, nth, &lo, &hi);
    for (u = lo; u < hi; u++) {
        int r = (int)(u / H), h = (int)(u % H), g = h / G, j, P = c->pos[r];
        const float *q = c->q + (size_t)r * QD + (size_t)h * HD;
        const float *K = c->kc + (size_t)c->seq[r] * c->max_len * KD + (size_t)g * HD;
        const float *V = c->vc + (size_t)c->seq[r] * c->max_len * KD + (size_t)g * HD;
        float *o = c->att + (size_t)r * QD + (size_t)h * HD;
        red_vec_dot_grid(sc, 0, q, 0, 1, K, KD, (size_t)P + 1, (size_t)HD);
        for (j = 0; j <= P; j++) sc[j] *= scale;
        red_softmax(sc, (size_t)P + 1);
        memset(o, 0, sizeof(float) * HD);
        red_vec_axpy_rows(o, sc, V, KD, (size_t)P + 1, (size_t)HD);
    }
}

typedef struct {
    float *x;
    const float *cs;
    int heads, HD;
} kv_rope_ctx;

static void kv_rope_rows(void *vp, int64_t lo, int64_t hi) {
    kv_rope_ctx *c = vp;
    rope_ctx rc;
    int64_t r;
    rc.heads = c->heads; rc.HD = c->HD; rc.ld = c->heads * c->HD; rc.T = 1; rc.sign = 1.0f;
    for (r = lo; r < hi; r++) {  /* each row has its own table row */
        rc.x = c->x + r * rc.ld;
        rc.cs = c->cs + r * c->HD;
        rope_rows(&rc, 0, 1);
    }
}

const char *red_kv_failure(red_status st) {
    return st == RED_E_FORMAT ? "the model's logits are not finite (NaN or Inf)" : "invalid rows, positions or tokens";
}

red_status red_kv_forward(red_model *m, red_kv_state *s, int n, const int *tokens, const int *seq,
                          const int *pos) {
    const red_config *c = &m->cfg;
    red_pool *pool = m->pool;
    int D = c->dim, F = c->ffn, HD = c->head_dim, QD = c->n_heads * HD, KD = c->n_kv_heads * HD, l, r;
    size_t R = (size_t)s->max_rows, layer_cache = (size_t)s->n_seq * s->max_len * KD;
    float *x = s->buf, *xn = x + R * D, *q = xn + R * D, *att = q + R * QD, *k = att + R * QD,
          *v = k + R * KD, *g = v + R * KD, *u = g + R * F, *cs = u + R * F, *scores = cs + R * HD;
    kv_att_ctx ac;
    kv_rope_ctx rc;
    int64_t nth;
    if (n < 1 || n > s->max_rows) return RED_E_ARG;
    for (r = 0; r < n; r++)
        if (tokens[r] < 0 || tokens[r] >= c->vocab || seq[r] < 0 || seq[r] >= s->n_seq || pos[r] < 0 ||
            pos[r] >= s->max_len)
            return RED_E_ARG;
    red_embed_forward(pool, x, tokens, m->w.embed, n, D);
    red_rope_table(cs, m->rope_inv_freq, HD / 2, n, pos);
    ac.c = c; ac.att = att; ac.scores = scores; ac.seq = seq; ac.pos = pos; ac.n = n;
    ac.max_len = s->max_len; ac.q = q;
    for (l = 0; l < c->n_layers; l++) {
        const red_layer_weights *w = &m->w.layers[l];
        float *kc = s->k_cache + (size_t)l * layer_cache, *vc = s->v_cache + (size_t)l * layer_cache;
        float *mlp_norm_rstd = scores;  /* scores are free until attention: borrow for rstd */
        red_rmsnorm_forward(pool, xn, mlp_norm_rstd, x, w->attn_norm, n, D, c->norm_eps);
        red_linear_forward(pool, q, xn, w->wq, w->bq, n, QD, D);
        red_linear_forward(pool, k, xn, w->wk, w->bk, n, KD, D);
        red_linear_forward(pool, v, xn, w->wv, w->bv, n, KD, D);
        rc.cs = cs; rc.HD = HD;
        rc.x = q; rc.heads = c->n_heads;
        red_par_range(pool, n, 3.0 * QD, kv_rope_rows, &rc);
        rc.x = k; rc.heads = c->n_kv_heads;
        red_par_range(pool, n, 3.0 * KD, kv_rope_rows, &rc);
        for (r = 0; r < n; r++) {  /* cache first: rows of a prompt attend to each other */
            size_t at = ((size_t)seq[r] * s->max_len + pos[r]) * KD;
            memcpy(kc + at, k + (size_t)r * KD, sizeof(float) * KD);
            memcpy(vc + at, v + (size_t)r * KD, sizeof(float) * KD);
        }
        ac.kc = kc; ac.vc = vc;
        {
            double work = 0.0;
            for (r = 0; r < n; r++) work += 4.0 * (pos[r] + 1) * (double)HD * c->n_heads;
            nth = (int64_t)(work / 2.0e5);
            if (nth > red_pool_size(pool)) nth = red_pool_size(pool);
            if (nth > (int64_t)n * c->n_heads) nth = (int64_t)n * c->n_heads;
            if (nth < 1) nth = 1;
            red_pool_run(pool, (int)nth, kv_attention_units, &ac);
        }
        red_linear_forward(pool, xn, att, w->wo, NULL, n, D, QD);  /* xn is free until the norm */
        red_vec_add_par(pool, x, x, xn, (size_t)n * D);  /* added to the residual as the full forward adds it */
        red_rmsnorm_forward(pool, xn, mlp_norm_rstd, x, w->mlp_norm, n, D, c->norm_eps);
        red_linear_forward(pool, g, xn, w->wg, NULL, n, F, D);
        red_linear_forward(pool, u, xn, w->wu, NULL, n, F, D);
        red_swiglu_forward(pool, g, g, u, (int64_t)n * F);
        red_linear_forward(pool, xn, g, w->wd, NULL, n, D, F);
        red_vec_add_par(pool, x, x, xn, (size_t)n * D);
    }
    red_rmsnorm_forward(pool, xn, scores, x, m->w.norm, n, D, c->norm_eps);
    red_linear_forward(pool, s->logits, xn, m->w.lm_head, NULL, n, c->vocab, D);
    {  /* NaN/Inf logits would be decoded or scored as if they were valid */
        size_t i, nv = (size_t)n * (size_t)c->vocab;
        for (i = 0; i < nv; i++)
            if (!isfinite(s->logits[i])) return RED_E_FORMAT;
    }
    return RED_OK;
}

/* ------------------------------------------------------------------ sampling */

/* Stable merge sort of ids by descending probability (ties: ascending id,
 * since the input is in id order): no global state, unlike qsort's comparator. */
static void sort_by_prob(const float *p, int *idx, int *tmp, int V) {
    int width, i;
    for (i = 0; i < V; i++) idx[i] = i;
    for (width = 1; width < V; width *= 2) {
        int lo;
        for (lo = 0; lo < V; lo += 2 * width) {
            int mid = lo + width < V ? lo + width : V, hi = lo + 2 * width < V ? lo + 2 * width : V;
            int a = lo, b = mid, o = lo;
            while (a < mid && b < hi) tmp[o++] = p[idx[b]] > p[idx[a]] ? idx[b++] : idx[a++];
            while (a < mid) tmp[o++] = idx[a++];
            while (b < hi) tmp[o++] = idx[b++];
        }
        memcpy(idx, tmp, sizeof(int) * V);
    }
}

int red_sample(float *logits, int V, const red_sampler *sp, red_rng *rng, int *idx) {
    int i, keep = V, best = 0;
    double u, cum = 0.0, total = 0.0;
    if (sp->temperature <= 0.0f) {  /* greedy: first maximum */
        for (i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    red_vec_scale(logits, 1.0f / sp->temperature, (size_t)V);
    red_softmax(logits, (size_t)V);
    if ((sp->top_k > 0 && sp->top_k < V) || sp->top_p < 1.0f) {
        sort_by_prob(logits, idx, idx + V, V);
        if (sp->top_k > 0 && sp->top_k < V) keep = sp->top_k;
        if (sp->top_p < 1.0f) {  /* smallest prefix with mass >= top_p (at least one) */
            double mass = 0.0;
            for (i = 0; i < keep; i++) {
                mass += logits[idx[i]];
                if (mass >= sp->top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
    } else {
        for (i = 0; i < V; i++) idx[i] = i;
    }
    for (i = 0; i < keep; i++) total += logits[idx[i]];
    u = red_rng_uniform(rng) * total;
    for (i = 0; i < keep; i++) {
        cum += logits[idx[i]];
        if (u < cum) return idx[i];
    }
    return idx[keep - 1];
}

red_status red_generate(red_model *m, int n_seq, const int *const *prompts, const int *lens, int n_new,
                        const red_sampler *sp, uint64_t seed, int stop_id, int **out, int *out_len,
                        red_error *err) {
    red_kv_state s;
    red_rng rng;
    red_status st;
    int i, j, max_len = 0, max_rows = n_seq, step, V = m->cfg.vocab;
    int *tok = NULL, *seq = NULL, *pos = NULL, *idx = NULL, *cur = NULL, *done = NULL;
    if (n_seq < 1 || n_new < 0) return red_error_set(err, RED_E_ARG, "generate: need >= 1 prompt");
    for (i = 0; i < n_seq; i++) {
        if (lens[i] < 1) return red_error_set(err, RED_E_ARG, "generate: prompt %d is empty", i);
        for (j = 0; j < lens[i]; j++)
            if (prompts[i][j] < 0 || prompts[i][j] >= V)
                return red_error_set(err, RED_E_ARG, "generate: prompt %d token %d = %d outside vocabulary 0..%d",
                                     i, j, prompts[i][j], V - 1);
        if (lens[i] + n_new > max_len) max_len = lens[i] + n_new;
        if (lens[i] > max_rows) max_rows = lens[i];
        out_len[i] = 0;
    }
    if (max_len > m->cfg.max_pos)
        return red_error_set(err, RED_E_ARG, "generate: prompt + %d new tokens = %d exceeds max_position_embeddings %d",
                             n_new, max_len, m->cfg.max_pos);
    if ((st = red_kv_alloc(&s, m, n_seq, max_len, max_rows, err))) return st;
    tok = malloc(sizeof(int) * max_rows);
    seq = malloc(sizeof(int) * max_rows);
    pos = malloc(sizeof(int) * max_rows);
    idx = malloc(sizeof(int) * 2 * V);
    cur = malloc(sizeof(int) * n_seq);
    done = calloc((size_t)n_seq, sizeof(int));
    if (!tok || !seq || !pos || !idx || !cur || !done) {
        st = red_error_set(err, RED_E_NOMEM, "generate: out of memory");
        goto out;
    }
    red_rng_seed(&rng, seed);
    /* prefill each prompt; sample its first new token from the last row */
    for (i = 0; i < n_seq && n_new > 0; i++) {
        for (j = 0; j < lens[i]; j++) {
            tok[j] = prompts[i][j];
            seq[j] = i;
            pos[j] = j;
        }
        if ((st = red_kv_forward(m, &s, lens[i], tok, seq, pos))) {
            red_error_set(err, st, "generate: forward failed: %s", red_kv_failure(st));
            goto out;
        }
        cur[i] = red_sample(s.logits + (size_t)(lens[i] - 1) * V, V, sp, &rng, idx);
        out[i][out_len[i]++] = cur[i];
        if (cur[i] == stop_id) done[i] = 1;
    }
    for (step = 1; step < n_new; step++) {
        int n = 0;
        for (i = 0; i < n_seq; i++)
            if (!done[i]) {
                tok[n] = cur[i];
                seq[n] = i;
                pos[n] = lens[i] + out_len[i] - 1;
                n++;
            }
        if (!n) break;
        if ((st = red_kv_forward(m, &s, n, tok, seq, pos))) {
            red_error_set(err, st, "generate: forward failed: %s", red_kv_failure(st));
            goto out;
        }
        for (j = 0; j < n; j++) {
            i = seq[j];
            cur[i] = red_sample(s.logits + (size_t)j * V, V, sp, &rng, idx);
            out[i][out_len[i]++] = cur[i];
            if (cur[i] == stop_id) done[i] = 1;
        }
    }
    st = RED_OK;
out:
    red_kv_free(&s);
    free(tok); free(seq); free(pos); free(idx); free(cur); free(done);
    return st;
}
