/* distill.c - the method: an LRC student of a frozen teacher (projections,
 * student norms, merged weights), its losses (CE + KL(tau) + alpha * clone
 * MSE) and their backward into the projections, the five initialisations
 * (lrc, orthogonal, pca, magnitude, red), the distillation loop with exact
 * resume, and eRank diagnostics. Spec: ../shared/docs/method.md (A-D).
 *
 * Legend: d_t teacher width, d_s student width, N = B*T rows, L layers,
 * QD = heads*head_dim, KD = kv_heads*head_dim, F ffn, V vocab.
 * The student is an ordinary red_model over a merged weight slab: the
 * model's own forward/backward give d(loss)/d(W^S), which is chained into
 * each projection (A9): input side W^S = W P -> dP = Wᵀ dW^S; output side
 * W^S = Pᵀ W -> dP = W dW^Sᵀ. Clone gradients enter the model backward at
 * the activations where they attach (red_model_backward_ex); the FFN-out
 * target y_T P_d adds its own term to dP_d.
 *
 * The distillation job (red_distill_run) is the whole workflow of one
 * student: initialise, measure (eRank, projection spectra), distil, merge,
 * save, log; `red distill` and each student of `red reproduce` run it.
 *
 * State file (distill_state.bin, optim.c's layout, magic "REDDSTIL"): the
 * loop position, the resume record, then params, Adam m, Adam v.
 */
#include "red_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSE_CHUNK 65536  /* elements per partial sum of the clone MSEs */
#define MSE_LANES 4      /* clone sites whose sums run side by side */

const char *const red_site_names[RED_N_SITES] = {"q", "k", "v", "o", "gate", "up", "down"};

/* Output side sites: W^S = Pᵀ W. */
static int site_is_output(int site) { return site == RED_SITE_O || site == RED_SITE_D; }

/* Teacher weight of a site and its "other" dimension (rows for input-side,
 * columns for output-side). */
static const float *site_weight(const red_model *t, int l, int site, int *other) {
    const red_config *c = &t->cfg;
    const red_layer_weights *w = &t->w.layers[l];
    int QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    switch (site) {
    case RED_SITE_Q: *other = QD; return w->wq;
    case RED_SITE_K: *other = KD; return w->wk;
    case RED_SITE_V: *other = KD; return w->wv;
    case RED_SITE_O: *other = QD; return w->wo;
    case RED_SITE_G: *other = c->ffn; return w->wg;
    case RED_SITE_U: *other = c->ffn; return w->wu;
    default: *other = c->ffn; return w->wd;
    }
}

static float *merged_site(red_layer_weights *w, int site) {
    switch (site) {
    case RED_SITE_Q: return w->wq;
    case RED_SITE_K: return w->wk;
    case RED_SITE_V: return w->wv;
    case RED_SITE_O: return w->wo;
    case RED_SITE_G: return w->wg;
    case RED_SITE_U: return w->wu;
    default: return w->wd;
    }
}

/* ------------------------------------------------------------------ the student */

static void point_student(red_student_weights *w, const red_student *s, float *p) {
    int l, k;
    size_t P = (size_t)s->d_t * s->d_s;
    for (l = 0; l < s->cfg.n_layers; l++) {
        red_student_layer *ly = &w->layers[l];
        for (k = 0; k < RED_N_SITES; k++, p += P) ly->p[k] = p;
        ly->attn_norm = p; p += s->d_s;
        ly->mlp_norm = p; p += s->d_s;
    }
    w->p_embed = p; p += P;
    w->p_head = NULL;
    if (!s->teacher->cfg.tied) { w->p_head = p; p += P; }
    w->norm = p;
}

red_status red_student_alloc(red_student *s, red_model *teacher, int d_s, red_error *err) {
    const red_config *tc = &teacher->cfg;
    red_status st;
    int L = tc->n_layers;
    size_t P;
    memset(s, 0, sizeof *s);
    if (d_s < 1 || d_s > tc->dim)
        return red_error_set(err, RED_E_ARG, "distill: student width %d must be in 1..%d (the teacher's)", d_s, tc->dim);
    s->teacher = teacher;
    s->d_t = tc->dim;
    s->d_s = d_s;
    s->cfg = *tc;
    s->cfg.dim = d_s;  /* head_dim stays the teacher's: the config must carry it explicitly (A1) */
    P = (size_t)s->d_t * d_s;
    s->n = (size_t)L * (RED_N_SITES * P + 2 * (size_t)d_s) + P * (tc->tied ? 1 : 2) + (size_t)d_s;
    s->params = red_malloc_aligned(s->n * sizeof(float));
    s->grads = red_malloc_aligned(s->n * sizeof(float));
    s->adam_m = red_malloc_aligned(s->n * sizeof(float));
    s->adam_v = red_malloc_aligned(s->n * sizeof(float));
    s->layer_buf = calloc((size_t)2 * L, sizeof *s->layer_buf);
    if (!s->params || !s->grads || !s->adam_m || !s->adam_v || !s->layer_buf) {
        red_student_free(s);
        return red_error_set(err, RED_E_NOMEM, "distill: out of memory for %zu student parameters", s->n);
    }
    memset(s->params, 0, s->n * sizeof(float));
    memset(s->grads, 0, s->n * sizeof(float));
    memset(s->adam_m, 0, s->n * sizeof(float));
    memset(s->adam_v, 0, s->n * sizeof(float));
    s->w.layers = s->layer_buf;
    s->gw.layers = s->layer_buf + L;
    point_student(&s->w, s, s->params);
    point_student(&s->gw, s, s->grads);
    if ((st = red_model_alloc(&s->model, &s->cfg, teacher->pool, err))) {
        red_student_free(s);
        return st;
    }
    /* the model allocated its own zeroed slab; the merged weights live there */
    s->merged = s->model.params;
    return RED_OK;
}

/* A worker: src's projections and merged weights (read only; the caller
 * merges before a step), teacher a view of src's teacher with the worker's
 * pool; its own run states, scratch and merged-model gradient
 * (red_student_train_alloc), and a projection gradient with_grads (when
 * each sequence is chained on its own). */
static red_status student_share(red_student *w, const red_student *src, red_model *teacher, int with_grads,
                                 red_error *err) {
    red_status st;
    memset(w, 0, sizeof *w);
    w->teacher = teacher;
    w->cfg = src->cfg;
    w->d_t = src->d_t;
    w->d_s = src->d_s;
    w->n = src->n;
    w->shared = 1;
    w->params = src->params;
    w->layer_buf = calloc((size_t)2 * w->cfg.n_layers, sizeof *w->layer_buf);
    if (!w->layer_buf || (with_grads && !(w->grads = red_malloc_aligned(w->n * sizeof(float)))))
        return red_error_set(err, RED_E_NOMEM, "distill: out of memory for a worker");
    w->w.layers = w->layer_buf;
    point_student(&w->w, w, w->params);
    if (with_grads) {
        w->gw.layers = w->layer_buf + w->cfg.n_layers;
        point_student(&w->gw, w, w->grads);
    }
    if ((st = red_model_share(&w->model, &src->model, teacher->pool, err))) return st;
    w->merged = w->model.params;
    return RED_OK;
}

void red_student_free(red_student *s) {
    red_model_free(&s->model);
    if (!s->shared) red_free_aligned(s->params);
    red_free_aligned(s->grads);
    red_free_aligned(s->adam_m);
    red_free_aligned(s->adam_v);
    red_free_aligned(s->clone_grad);
    red_free_aligned(s->o_s);
    free(s->partial);
    free(s->layer_buf);
    memset(s, 0, sizeof *s);
}

red_status red_student_train_alloc(red_student *s, int B, int T, red_error *err) {
    const red_config *c = &s->cfg;
    int L = c->n_layers, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    size_t N = (size_t)B * T, per = N * (2 * (size_t)QD + 2 * (size_t)KD + 2 * (size_t)c->ffn + (size_t)s->d_s),
           widest = (size_t)(c->ffn > s->d_t ? c->ffn : s->d_t), n_partial;
    red_status st;
    if (s->clone_grad && B == s->B && T == s->T) return RED_OK;
    /* the frozen teacher: forward activations only; the merged student: gradients, no AdamW (the
       projections have it); both leave the [N, V] logits to the loss, a chunk of rows at a time */
    /* the teacher's attention and FFN outputs are clone targets, the student's FFN output a clone site */
    if ((st = red_model_run_alloc(s->teacher, B, T,
                                  RED_RUN_FORWARD | RED_RUN_HEAD_CHUNKS | RED_RUN_KEEP_ATTN_OUT | RED_RUN_KEEP_FFN_OUT,
                                  err)) ||
        (st = red_model_grad_tail(&s->model, (size_t)L * s->d_t * s->d_s, err)) ||
        (st = red_model_run_alloc(&s->model, B, T, RED_RUN_BACKWARD | RED_RUN_HEAD_CHUNKS | RED_RUN_KEEP_FFN_OUT,
                                  err)))
        return st;
    red_free_aligned(s->clone_grad);
    red_free_aligned(s->o_s);
    free(s->partial);
    /* per-chunk MSE sums (sized for the widest activation), per-row CE and KL, per-layer clone MSEs */
    if ((size_t)QD > widest) widest = (size_t)QD;
    n_partial = (N * widest + MSE_CHUNK - 1) / MSE_CHUNK;
    s->clone_grad = red_malloc_aligned(per * sizeof(float));
    s->o_s = red_malloc_aligned(N * (3 * (size_t)s->d_t + 2 * (size_t)s->d_s + (size_t)c->ffn) * sizeof(float));
    s->partial = malloc((MSE_LANES * n_partial + 2 * N + (size_t)L * RED_N_SITES) * sizeof(double));
    s->partial_stride = n_partial;
    if (!s->clone_grad || !s->o_s || !s->partial) return red_error_set(err, RED_E_NOMEM, "distill: out of memory for B=%d T=%d", B, T);
    s->row_ce = s->partial + MSE_LANES * n_partial;
    s->row_kl = s->row_ce + N;
    s->clone_layer = s->row_kl + N;
    s->o_t = s->o_s + N * s->d_t;
    s->y_t = s->o_t + N * s->d_t;
    s->y_s = s->y_t + N * s->d_t;
    s->y_tp = s->y_s + N * s->d_s;
    s->act = s->y_tp + N * s->d_s;
    s->B = B;
    s->T = T;
    return RED_OK;
}

void red_student_merge(red_student *s) {
    const red_model *t = s->teacher;
    const red_config *c = &s->cfg;
    red_pool *pool = t->pool;
    int l, k, ds = s->d_s, dt = s->d_t;
    double t0 = red_time_seconds();
    for (l = 0; l < c->n_layers; l++) {
        red_layer_weights *mw = &s->model.w.layers[l];
        const red_layer_weights *tw = &t->w.layers[l];
        const red_student_layer *sw = &s->w.layers[l];
        int QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
        for (k = 0; k < RED_N_SITES; k++) {
            int other;
            const float *W = site_weight(t, l, k, &other);
            if (site_is_output(k))  /* [d_s, other] = Pᵀ [d_t, other] */
                red_sgemm(pool, RED_TN, ds, other, dt, 1.0f, sw->p[k], ds, W, other, 0.0f, merged_site(mw, k), other);
            else  /* [other, d_s] = [other, d_t] P */
                red_sgemm(pool, RED_NN, other, ds, dt, 1.0f, W, dt, sw->p[k], ds, 0.0f, merged_site(mw, k), ds);
        }
        memcpy(mw->attn_norm, sw->attn_norm, (size_t)ds * sizeof(float));
        memcpy(mw->mlp_norm, sw->mlp_norm, (size_t)ds * sizeof(float));
        if (c->qkv_bias) {  /* Qwen2 biases: kept, not projected (A1) */
            memcpy(mw->bq, tw->bq, (size_t)QD * sizeof(float));
            memcpy(mw->bk, tw->bk, (size_t)KD * sizeof(float));
            memcpy(mw->bv, tw->bv, (size_t)KD * sizeof(float));
        }
    }
    red_sgemm(pool, RED_NN, c->vocab, ds, dt, 1.0f, t->w.embed, dt, s->w.p_embed, ds, 0.0f, s->model.w.embed, ds);
    if (!c->tied)
        red_sgemm(pool, RED_NN, c->vocab, ds, dt, 1.0f, t->w.lm_head, dt, s->w.p_head, ds, 0.0f, s->model.w.lm_head, ds);
    memcpy(s->model.w.norm, s->w.norm, (size_t)ds * sizeof(float));
    s->times.merge = red_time_seconds() - t0;
}

/* s->grads = dP from the merged model's gradient and the FFN-out targets'
 * dP_d terms in its tail (red_student_loss_part's, or a batch's sum of
 * them): the chain rule through the merge (A9) is linear, so a batch may
 * chain its summed gradient once instead of each sequence's. */
static void chain_to_projections(red_student *s) {
    const red_model *t = s->teacher;
    const red_config *c = &s->cfg;
    red_pool *pool = t->pool;
    int l, k, ds = s->d_s, dt = s->d_t;
    memset(s->grads, 0, s->n * sizeof(float));
    for (l = 0; l < c->n_layers; l++)  /* the targets' own terms come first */
        memcpy(s->gw.layers[l].p[RED_SITE_D], s->model.grads + s->model.n_params + (size_t)l * dt * ds,
               (size_t)dt * ds * sizeof(float));
    for (l = 0; l < c->n_layers; l++) {
        red_layer_weights *gm = &s->model.gw.layers[l];
        red_student_layer *g = &s->gw.layers[l];
        for (k = 0; k < RED_N_SITES; k++) {
            int other;
            const float *W = site_weight(t, l, k, &other);
            if (site_is_output(k))  /* dP = W dW^Sᵀ: [d_t, other] [d_s, other]ᵀ */
                red_sgemm(pool, RED_NT, dt, ds, other, 1.0f, W, other, merged_site(gm, k), other, 1.0f, g->p[k], ds);
            else  /* dP = Wᵀ dW^S: [other, d_t]ᵀ [other, d_s] */
                red_sgemm(pool, RED_TN, dt, ds, other, 1.0f, W, dt, merged_site(gm, k), ds, 1.0f, g->p[k], ds);
        }
        red_vec_add(g->attn_norm, g->attn_norm, gm->attn_norm, (size_t)ds);
        red_vec_add(g->mlp_norm, g->mlp_norm, gm->mlp_norm, (size_t)ds);
    }
    /* tied: the model's embed gradient already holds the head's use too */
    red_sgemm(pool, RED_TN, dt, ds, c->vocab, 1.0f, t->w.embed, dt, s->model.gw.embed, ds, 1.0f, s->gw.p_embed, ds);
    if (!c->tied)
        red_sgemm(pool, RED_TN, dt, ds, c->vocab, 1.0f, t->w.lm_head, dt, s->model.gw.lm_head, ds, 1.0f, s->gw.p_head, ds);
    red_vec_add(s->gw.norm, s->gw.norm, s->model.gw.norm, (size_t)ds);
}

int red_student_n_proj(const red_student *s) { return s->cfg.n_layers * RED_N_SITES + 1 + !s->cfg.tied; }

const float *red_student_proj(const red_student *s, int i, char *name, size_t cap) {
    int L = s->cfg.n_layers;
    if (i < L * RED_N_SITES) {
        if (name) snprintf(name, cap, "layers.%d.%s", i / RED_N_SITES, red_site_names[i % RED_N_SITES]);
        return s->w.layers[i / RED_N_SITES].p[i % RED_N_SITES];
    }
    if (i == L * RED_N_SITES) {
        if (name) snprintf(name, cap, "embed");
        return s->w.p_embed;
    }
    if (name) snprintf(name, cap, "head");
    return s->w.p_head;
}

/* ------------------------------------------------------------------ losses */

/* One clone site's squared error: the sum of squares of a - b in double, and
 * grad (when non-NULL) = scale * (a - b). */
typedef struct {
    const float *a, *b;
    float *grad;
    size_t n;
    float scale;
    double *partial;  /* per 64K chunk, added in order: thread-count independent */
} mse_site;

/* A chunk's partial sum is one chain of dependent double adds in index
 * order, bound by the add's latency: up to MSE_LANES sites' chains run side
 * by side, each in its own order, so every partial has one site at a time's
 * bits. Idle lanes repeat lane 0's reads and keep nothing. */
typedef struct {
    mse_site s[MSE_LANES];
    int lanes;
} mse_ctx;

static void mse_chunks(void *vc, int64_t lo, int64_t hi) {
    const mse_ctx *c = vc;
    const mse_site *t = c->s;
    int64_t k;
    int l;
    for (k = lo; k < hi; k++) {
        const size_t i0 = (size_t)k * MSE_CHUNK;
        const float *a[MSE_LANES], *b[MSE_LANES];
        float *g[MSE_LANES], f[MSE_LANES];
        size_t end[MSE_LANES], common = i0 + MSE_CHUNK, i;
        double acc[MSE_LANES];
        for (l = 0; l < MSE_LANES; l++) {
            const mse_site *u = l < c->lanes ? &t[l] : &t[0];
            a[l] = u->a; b[l] = u->b; f[l] = u->scale;
            g[l] = l < c->lanes ? u->grad : NULL;
            end[l] = u->n < i0 + MSE_CHUNK ? u->n : i0 + MSE_CHUNK;
            if (end[l] < common) common = end[l];
            acc[l] = 0.0;
        }
        if (common > i0) {
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            for (i = i0; i < common; i++) {
                float d0 = a[0][i] - b[0][i], d1 = a[1][i] - b[1][i], d2 = a[2][i] - b[2][i], d3 = a[3][i] - b[3][i];
                s0 += (double)d0 * d0;
                s1 += (double)d1 * d1;
                s2 += (double)d2 * d2;
                s3 += (double)d3 * d3;
                if (g[0]) g[0][i] = f[0] * d0;
                if (g[1]) g[1][i] = f[1] * d1;
                if (g[2]) g[2][i] = f[2] * d2;
                if (g[3]) g[3][i] = f[3] * d3;
            }
            acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
        } else {
            common = i0;
        }
        for (l = 0; l < c->lanes; l++) {  /* each site's rest of the chunk, its chain continued */
            double ss = acc[l];
            if (end[l] <= i0) continue;  /* this site has no chunk k */
            for (i = common; i < end[l]; i++) {
                float d = a[l][i] - b[l][i];
                ss += (double)d * d;
                if (g[l]) g[l][i] = f[l] * d;
            }
            t[l].partial[k] = ss;
        }
    }
}

static mse_site mse_of(const float *a, const float *b, size_t n, float *grad) {
    mse_site t;
    t.a = a; t.b = b; t.n = n; t.grad = grad; t.scale = 0.0f; t.partial = NULL;
    return t;
}

/* Each site's squared error over its n elements (rows of a part of the
 * batch) divided by the batch's element count, n * per_row (per_row = batch
 * rows / part rows), into v[site]; grad = alpha * its derivative w.r.t. a
 * where given. partial holds MSE_LANES x `stride` doubles. */
static void clone_mse(red_pool *pool, mse_site *sites, int lanes, double per_row, float alpha, double *partial,
                      size_t stride, double *v) {
    mse_ctx c;
    int64_t chunks = 0, k;
    int l;
    for (l = 0; l < lanes; l++) {
        int64_t ck = (int64_t)((sites[l].n + MSE_CHUNK - 1) / MSE_CHUNK);
        if (ck > chunks) chunks = ck;
        sites[l].scale = (float)(2.0 * alpha / ((double)sites[l].n * per_row));
        sites[l].partial = partial + (size_t)l * stride;
        c.s[l] = sites[l];
    }
    c.lanes = lanes;
    red_par_range(pool, chunks, 2.0 * lanes * MSE_CHUNK, mse_chunks, &c);
    for (l = 0; l < lanes; l++) {
        double ss = 0.0;
        for (k = 0; k < (int64_t)((sites[l].n + MSE_CHUNK - 1) / MSE_CHUNK); k++) ss += sites[l].partial[k];
        v[l] = ss / ((double)sites[l].n * per_row);
    }
}

/* Forward KL(p_T || p_S) at temperature tau per row; dlogits += scale * dKL/dz_S. */
typedef struct {
    const float *zt, *zs;
    float *dz;
    int V;
    float tau, scale;
    double *row;
} kl_ctx;

/* a = (z - m) / tau rounded once to float, e = exp(a) (vector red_expf), for
 * KL_BLOCK entries at most. */
#define KL_BLOCK 256
static void kl_block(float *a, float *e, const float *z, double m, double inv, int cnt) {
    int i;
    for (i = 0; i < cnt; i++) a[i] = (float)((z[i] - m) * inv);
    red_vec_exp(e, a, (size_t)cnt);
}

/* Exps in float (<= 2 ulp), everything after them in double: sums in index
 * order, p = e / sum (one exp per logit instead of exp(log p)), log p = a - log(sum). */
static void kl_rows(void *vc, int64_t lo, int64_t hi) {
    kl_ctx *c = vc;
    float at[KL_BLOCK], et[KL_BLOCK], as[KL_BLOCK], es[KL_BLOCK];
    int64_t n;
    int j, j0, m, V = c->V;
    double inv = 1.0 / c->tau;
    for (n = lo; n < hi; n++) {
        const float *zt = c->zt + (size_t)n * V, *zs = c->zs + (size_t)n * V;
        float *dz = c->dz ? c->dz + (size_t)n * V : NULL;
        double mt = zt[0], ms = zs[0], st = 0.0, ss = 0.0, kl = 0.0, lt, ls, rt, rs;
        for (j = 1; j < V; j++) {
            if (zt[j] > mt) mt = zt[j];
            if (zs[j] > ms) ms = zs[j];
        }
        for (j0 = 0; j0 < V; j0 += m) {
            m = V - j0 < KL_BLOCK ? V - j0 : KL_BLOCK;
            kl_block(at, et, zt + j0, mt, inv, m);
            kl_block(as, es, zs + j0, ms, inv, m);
            for (j = 0; j < m; j++) {
                st += et[j];
                ss += es[j];
            }
        }
        lt = log(st);
        ls = log(ss);
        rt = 1.0 / st;
        rs = 1.0 / ss;
        for (j0 = 0; j0 < V; j0 += m) {
            m = V - j0 < KL_BLOCK ? V - j0 : KL_BLOCK;
            kl_block(at, et, zt + j0, mt, inv, m);
            kl_block(as, es, zs + j0, ms, inv, m);
            for (j = 0; j < m; j++) {
                double pt = et[j] * rt, lpt = at[j] - lt, lps = as[j] - ls;
                kl += pt * (lpt - lps);
                if (dz) dz[j0 + j] += (float)(c->scale * (es[j] * rs - pt) * inv);
            }
        }
        c->row[n] = kl;
    }
}

/* CE and KL over the vocabulary, a chunk of rows at a time: the teacher's
 * and the student's logits of the chunk, their per-row losses, the
 * student's dlogits (CE writes, KL adds) and the head's backward for those
 * rows; [N, V] is never resident. Per-row losses are summed in row order. */
static red_status vocab_losses(red_student *s, const int *targets, int B, const red_loss_batch *whole,
                               const red_loss_cfg *lc, int want_grad, red_losses *out) {
    red_model *t = s->teacher, *m = &s->model;
    red_pool *pool = t->pool;
    int64_t N = (int64_t)B * s->T, R = red_model_head_rows(m), r0, n;
    int V = s->cfg.vocab;
    double ce = 0.0, kl = 0.0,
           denom = lc->kl_reduction == RED_KL_TOKEN ? (double)whole->seqs * s->T : (double)whole->seqs;
    float inv_count = whole->count ? 1.0f / (float)whole->count : 0.0f;
    kl_ctx kc;
    red_status st;
    kc.zt = red_model_logits(t);
    kc.zs = red_model_logits(m);
    kc.dz = want_grad ? red_model_dlogits(m) : NULL;
    kc.V = V;
    kc.tau = lc->tau;
    kc.scale = (float)(1.0 / denom);
    for (r0 = 0; r0 < N; r0 += R) {
        int64_t rows = N - r0 < R ? N - r0 : R;
        if ((st = red_model_head_forward(t, r0, rows)) || (st = red_model_head_forward(m, r0, rows))) return st;
        red_cross_entropy_rows(pool, s->row_ce + r0, kc.dz, kc.zs, targets + r0, rows, V, inv_count);
        kc.row = s->row_kl + r0;
        red_par_range(pool, rows, 30.0 * V, kl_rows, &kc);
        if (want_grad && (st = red_model_head_backward(m, r0, rows))) return st;
    }
    for (n = 0; n < N; n++) ce += s->row_ce[n];
    out->ce = ce;  /* summed: red_losses_finish divides by the batch's count */
    for (n = 0; n < N; n++) kl += s->row_kl[n];
    out->kl = kl / denom;
    return RED_OK;
}

/* silu(g)*u of a layer: the forward's, or recomputed into scratch. */
static const float *layer_act(red_pool *pool, const red_layer_acts *la, float *scratch, size_t n) {
    if (la->act) return la->act;
    red_swiglu_forward(pool, scratch, la->g, la->u, (int64_t)n);
    return scratch;
}

/* A block's attention or FFN output: the forward's (RED_RUN_KEEP_*_OUT),
 * or its product run again into out, bit for bit. W is W_o or W_d of `owner`
 * (O x I); act_scratch holds silu(g)*u where that too must be recomputed. */
static const float *attn_out_of(red_pool *pool, const red_model *owner, const red_layer_acts *la, const float *W,
                                int64_t N, int O, int I, float *out) {
    if (la->attn_out) return la->attn_out;
    red_model_linear(pool, owner, out, la->att, W, N, O, I);
    return out;
}

static const float *ffn_out_of(red_pool *pool, const red_model *owner, const red_layer_acts *la, const float *W,
                               int64_t N, int O, int I, float *act_scratch, float *out) {
    if (la->ffn_out) return la->ffn_out;
    red_model_linear(pool, owner, out, layer_act(pool, la, act_scratch, (size_t)N * I), W, N, O, I);
    return out;
}

/* The clone terms of layer l (A6): their MSEs into v[RED_N_SITES] and, with
 * want_grad, their gradients into the one-layer clone_grad (laid out as
 * clone_grads names them) and the FFN-out target's own term of dP_d into
 * the merged model gradient's tail. */
static void clone_layer(red_student *s, int l, int B, double per_row, float alpha, int want_grad, double *v) {
    red_model *t = s->teacher, *m = &s->model;
    const red_config *c = &s->cfg;
    red_pool *pool = t->pool;
    int ds = s->d_s, dt = s->d_t, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim, F = c->ffn, other;
    size_t N = (size_t)B * s->T, NQ = N * QD, NK = N * KD, NF = N * F, ND = N * ds;
    const float *Wo = site_weight(t, l, RED_SITE_O, &other), *Wd = site_weight(t, l, RED_SITE_D, &other), *o_t, *y_s,
                *y_t;
    float *gq = NULL, *gk = NULL, *gv = NULL, *gatt = NULL, *gg = NULL, *gu = NULL, *gy = NULL;
    red_layer_acts sa, ta;
    mse_site sites[MSE_LANES];
    if (want_grad) {
        gq = s->clone_grad; gk = gq + NQ; gv = gk + NK; gatt = gv + NK; gg = gatt + NQ; gu = gg + NF; gy = gu + NF;
    }
    red_model_layer_acts(m, l, &sa);
    red_model_layer_acts(t, l, &ta);
    /* attention out in d_t: o = A W_oᵀ with the teacher's W_o, before P_o */
    red_model_linear(pool, t, s->o_s, sa.att, Wo, (int64_t)N, dt, QD);
    o_t = attn_out_of(pool, t, &ta, Wo, (int64_t)N, dt, QD, s->o_t);
    /* q and k after RoPE: a rotation, so the same MSE as before it */
    sites[0] = mse_of(sa.q, ta.q, NQ, gq);
    sites[1] = mse_of(sa.k, ta.k, NK, gk);
    sites[2] = mse_of(sa.v, ta.v, NK, gv);
    sites[3] = mse_of(s->o_s, o_t, N * dt, want_grad ? s->o_s : NULL);  /* its gradient in place */
    clone_mse(pool, sites, 4, per_row, alpha, s->partial, s->partial_stride, v + RED_SITE_Q);
    if (want_grad)  /* d(att) = dO W_o */
        red_sgemm(pool, RED_NN, (int)N, QD, dt, 1.0f, s->o_s, dt, Wo, QD, 0.0f, gatt, QD);
    /* FFN out: y_S (d_s) against y_T P_d with the trainable P_d; silu(g)*u
       where the forward did not keep it is recomputed by the same op, bit for bit */
    y_s = ffn_out_of(pool, m, &sa, m->w.layers[l].wd, (int64_t)N, ds, F, s->act, s->y_s);
    y_t = ffn_out_of(pool, t, &ta, Wd, (int64_t)N, dt, F, s->act, s->y_t);
    red_sgemm(pool, RED_NN, (int)N, ds, dt, 1.0f, y_t, dt, s->w.layers[l].p[RED_SITE_D], ds, 0.0f, s->y_tp, ds);
    sites[0] = mse_of(sa.g, ta.g, NF, gg);
    sites[1] = mse_of(sa.u, ta.u, NF, gu);
    sites[2] = mse_of(y_s, s->y_tp, ND, gy);
    clone_mse(pool, sites, 3, per_row, alpha, s->partial, s->partial_stride, v + RED_SITE_G);
    if (want_grad)  /* the target's path: its term of dP_d, -y_Tᵀ gy, into the gradient's tail */
        red_sgemm(pool, RED_TN, dt, ds, (int)N, -1.0f, y_t, dt, gy, ds, 0.0f,
                  m->grads + m->n_params + (size_t)l * dt * ds, ds);
}

/* Backward's per-layer hook: layer l's clone gradients, just before they are needed. */
typedef struct {
    red_student *s;
    int B;
    double per_row;
    float alpha;
} clone_fill_ctx;

static void clone_fill(void *ctx, int l) {
    clone_fill_ctx *f = ctx;
    clone_layer(f->s, l, f->B, f->per_row, f->alpha, 1, f->s->clone_layer + (size_t)l * RED_N_SITES);
}

red_status red_student_loss(red_student *s, const int *tokens, const int *targets, const red_loss_cfg *lc,
                            int want_grad, red_losses *out) {
    red_loss_batch whole;
    size_t n = (size_t)s->B * s->T, i;
    red_status st;
    whole.seqs = s->B;
    whole.count = 0;
    for (i = 0; i < n; i++) whole.count += targets[i] >= 0;
    red_student_merge(s);
    if ((st = red_student_loss_part(s, tokens, targets, s->B, lc, want_grad, &whole, out))) return st;
    if (want_grad) chain_to_projections(s);
    red_losses_finish(out, whole.count, lc->alpha);
    return RED_OK;
}

void red_losses_finish(red_losses *out, int64_t count, float alpha) {
    int k;
    out->ce = count ? (float)(out->ce / count) : 0.0f;
    out->clone = 0.0;
    for (k = 0; k < RED_N_SITES; k++) out->clone += out->clone_site[k];
    out->total = out->ce + out->kl + alpha * out->clone;
}

red_status red_student_loss_part(red_student *s, const int *tokens, const int *targets, int B, const red_loss_cfg *lc,
                                 int want_grad, const red_loss_batch *whole, red_losses *out) {
    red_model *t = s->teacher, *m = &s->model;
    int T = s->T, l, k, L = s->cfg.n_layers, QD = s->cfg.n_heads * s->cfg.head_dim,
        KD = s->cfg.n_kv_heads * s->cfg.head_dim;
    size_t N = (size_t)B * T, NQ = N * QD, NK = N * KD, NF = N * s->cfg.ffn;
    double t0, t1 = red_time_seconds(), per_row = (double)whole->seqs / B;
    red_status st;
    if (!s->clone_grad || B < 1 || B > s->B) return RED_E_ARG;
    memset(out, 0, sizeof *out);
    if ((st = red_model_forward(t, tokens, B, T))) return st;
    s->times.teacher = (t0 = red_time_seconds()) - t1;
    if ((st = red_model_forward(m, tokens, B, T))) return st;
    s->times.student = (t1 = red_time_seconds()) - t0;
    if (want_grad) red_model_zero_grad(m);
    if ((st = vocab_losses(s, targets, B, whole, lc, want_grad, out))) return st;
    s->times.head = (t0 = red_time_seconds()) - t1;
    if (want_grad) {  /* each layer's clone terms are computed as its backward needs them */
        clone_fill_ctx f;
        red_act_grads ex;
        f.s = s;
        f.B = B;
        f.per_row = per_row;
        f.alpha = lc->alpha;
        ex.dq = s->clone_grad;
        ex.dk = ex.dq + NQ;
        ex.dv = ex.dk + NK;
        ex.datt = ex.dv + NK;
        ex.dg = ex.datt + NQ;
        ex.du = ex.dg + NF;
        ex.dffn = ex.du + NF;
        ex.fill = clone_fill;
        ex.ctx = &f;
        if ((st = red_model_backward_ex(m, &ex))) return st;
    } else
        for (l = 0; l < L; l++) clone_layer(s, l, B, per_row, lc->alpha, 0, s->clone_layer + (size_t)l * RED_N_SITES);
    /* summed in layer order, whichever order the layers ran in */
    for (l = 0; l < L; l++)
        for (k = 0; k < RED_N_SITES; k++) out->clone_site[k] += s->clone_layer[(size_t)l * RED_N_SITES + k];
    s->times.backward = red_time_seconds() - t0;
    return RED_OK;
}

/* ------------------------------------------------------------------ initialisation */

/* Teacher statistics over the calibration rows at the 2L+1 norm outputs the
 * weights read (site 2l: attention norm of layer l, 2l+1: MLP norm, 2L: final). */
typedef struct {
    int n_sites, d;
    double *energy;    /* [sites, d] sum of x̂² per channel */
    double *total;     /* [sites] sum of ||x̂||² */
    double *absum;     /* [sites, d] sum of |x̂| */
    double *resid_sq;  /* [L, d] sum of h² of each block's output */
    double *rms_ratio; /* [sites] sum over tokens of rms(x[I]) / rms(x), x the norm input */
    float *gram;       /* [d, d] sum of x̂ᵀ x̂ over every site (pca), or NULL */
    double *site_gram; /* [sites, d, d] sum of x̂ᵀ x̂ per site (red inspect), or NULL */
    float *scratch;    /* [d, d] one batch's product for site_gram */
    int64_t rows;
} calib_stats;

static const float *site_normed(const red_model *t, int site, red_layer_acts *la) {
    int L = t->cfg.n_layers;
    if (site == 2 * L) return red_model_final_normed(t);
    red_model_layer_acts(t, site / 2, la);
    return site % 2 ? la->xn_m : la->xn_a;
}

static const float *site_input(const red_model *t, int site, red_layer_acts *la) {
    int L = t->cfg.n_layers;
    if (site == 2 * L) {
        red_model_layer_acts(t, L - 1, la);
        return la->out;
    }
    red_model_layer_acts(t, site / 2, la);
    return site % 2 ? la->h : la->x;
}

/* One pass over the calibration rows; sel (d_s indices) non-NULL computes
 * only the RMS ratios for that selection, else every other statistic. */
static red_status calib_pass(red_student *s, red_train_data *calib, int64_t calib_tokens, const int *sel,
                             int want_gram, calib_stats *cs, int *in, int *tgt, red_error *err) {
    red_model *t = s->teacher;
    int B = s->B, T = s->T, L = t->cfg.n_layers, d = s->d_t, site, j, k;
    uint64_t epoch = 0, offset = 0;
    int64_t done = 0;
    red_status st;
    while (done < calib_tokens) {
        int64_t n, N = (int64_t)B * T;
        if ((st = red_train_data_batch(calib, RED_CALIB_SEED, &epoch, &offset, B, T, in, tgt, err))) return st;
        if (epoch > 0 && done > 0) break;  /* the calibration data is exhausted */
        if ((st = red_model_forward(t, in, B, T))) return red_error_set(err, st, "distill: calibration forward failed");
        for (site = 0; site <= 2 * L; site++) {
            red_layer_acts la;
            if (sel) {
                const float *x = site_input(t, site, &la);
                for (n = 0; n < N; n++) {
                    const float *r = x + (size_t)n * d;
                    double all = 0.0, part = 0.0;
                    for (j = 0; j < d; j++) all += (double)r[j] * r[j];
                    for (k = 0; k < s->d_s; k++) part += (double)r[sel[k]] * r[sel[k]];
                    if (all > 0.0) cs->rms_ratio[site] += sqrt((part / s->d_s) / (all / d));
                }
            } else {
                const float *x = site_normed(t, site, &la);
                double *e = cs->energy + (size_t)site * d, *a = cs->absum + (size_t)site * d;
                for (n = 0; n < N; n++) {
                    const float *r = x + (size_t)n * d;
                    for (j = 0; j < d; j++) {
                        e[j] += (double)r[j] * r[j];
                        a[j] += fabs((double)r[j]);
                    }
                }
                if (want_gram)
                    red_sgemm(t->pool, RED_TN, d, d, (int)N, 1.0f, x, d, x, d, 1.0f, cs->gram, d);
                if (cs->site_gram) {  /* per batch in float, summed in double */
                    double *g = cs->site_gram + (size_t)site * d * d;
                    red_sgemm(t->pool, RED_TN, d, d, (int)N, 1.0f, x, d, x, d, 0.0f, cs->scratch, d);
                    for (j = 0; j < d * d; j++) g[j] += cs->scratch[j];
                }
            }
        }
        if (!sel)
            for (k = 0; k < L; k++) {
                red_layer_acts la;
                double *rs = cs->resid_sq + (size_t)k * d;
                red_model_layer_acts(t, k, &la);
                for (n = 0; n < N; n++)
                    for (j = 0; j < d; j++) rs[j] += (double)la.out[(size_t)n * d + j] * la.out[(size_t)n * d + j];
            }
        done += N;
        if (!sel) cs->rows += N;
    }
    if (!sel)
        for (site = 0; site <= 2 * L; site++)
            for (j = 0; j < d; j++) cs->total[site] += cs->energy[(size_t)site * d + j];
    return RED_OK;
}

/* Squared norm of column i (input side) or row i (output side) of W, over ||W||². */
static double weight_channel_share(const float *W, int rows, int cols, int i, int by_row) {
    double all = 0.0, part = 0.0;
    int r, c;
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++) {
            double v = (double)W[(size_t)r * cols + c] * W[(size_t)r * cols + c];
            all += v;
            if ((by_row ? r : c) == i) part += v;
        }
    return all > 0.0 ? part / all : 0.0;
}

/* Column norms of the weights reading site `site` (wanda). */
static void site_reader_colnorm(const red_model *t, int site, double *out) {
    const red_config *c = &t->cfg;
    int L = c->n_layers, d = c->dim, j, r, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    const float *W[3];
    int rows[3], nw = 0, w;
    if (site == 2 * L) { W[0] = t->w.lm_head; rows[0] = c->vocab; nw = 1; }
    else if (site % 2 == 0) {
        const red_layer_weights *lw = &t->w.layers[site / 2];
        W[0] = lw->wq; rows[0] = QD; W[1] = lw->wk; rows[1] = KD; W[2] = lw->wv; rows[2] = KD; nw = 3;
    } else {
        const red_layer_weights *lw = &t->w.layers[site / 2];
        W[0] = lw->wg; rows[0] = c->ffn; W[1] = lw->wu; rows[1] = c->ffn; nw = 2;
    }
    for (j = 0; j < d; j++) out[j] = 0.0;
    for (w = 0; w < nw; w++)
        for (r = 0; r < rows[w]; r++)
            for (j = 0; j < d; j++) out[j] += (double)W[w][(size_t)r * d + j] * W[w][(size_t)r * d + j];
    for (j = 0; j < d; j++) out[j] = sqrt(out[j]);
}

/* Top d_s channels by score (ties to the lower index), ascending. */
static red_status select_top(const double *score, int d, int ds, int *sel) {
    unsigned char *taken = calloc((size_t)d, 1);
    int k, j;
    if (!taken) return RED_E_NOMEM;
    for (k = 0; k < ds && k < d; k++) {
        int best = -1;
        for (j = 0; j < d; j++)
            if (!taken[j] && (best < 0 || score[j] > score[best])) best = j;
        if (best < 0) break;
        taken[best] = 1;
    }
    for (j = 0, k = 0; j < d; j++)
        if (taken[j]) sel[k++] = j;
    free(taken);
    return RED_OK;
}

/* The shared index set I of a selection init (B1, B2): the top d_s channels
 * by the init's score (weight shares for magnitude, calibration statistics
 * for red), ascending. score and tmp hold d doubles each. */
static red_status choose_channels(const red_model *t, const red_init_opts *o, const calib_stats *cs, int ds,
                                  double *score, double *tmp, int *sel) {
    const red_config *c = &t->cfg;
    int L = c->n_layers, d = c->dim, n_sites = 2 * L + 1, i, j, k;
    for (j = 0; j < d; j++) score[j] = 0.0;
    if (o->kind == RED_INIT_MAGNITUDE) {
        for (j = 0; j < d; j++) {
            for (i = 0; i < L; i++)
                for (k = 0; k < RED_N_SITES; k++) {
                    int other;
                    const float *W = site_weight(t, i, k, &other);
                    score[j] += site_is_output(k) ? weight_channel_share(W, d, other, j, 1)
                                                  : weight_channel_share(W, other, d, j, 0);
                }
            score[j] += weight_channel_share(t->w.embed, c->vocab, d, j, 0);
            if (!c->tied) score[j] += weight_channel_share(t->w.lm_head, c->vocab, d, j, 0);
        }
    } else if (o->score == RED_SCORE_RESID) {
        for (i = 0; i < L; i++)
            for (j = 0; j < d; j++) score[j] += sqrt(cs->resid_sq[(size_t)i * d + j]);
    } else {
        for (i = 0; i < n_sites; i++) {
            double sum = 0.0;
            if (o->score == RED_SCORE_ENERGY) {
                for (j = 0; j < d; j++) tmp[j] = cs->energy[(size_t)i * d + j];
            } else if (o->score == RED_SCORE_ABSMEAN) {
                for (j = 0; j < d; j++) tmp[j] = cs->absum[(size_t)i * d + j];
            } else {  /* wanda: activation norm x weight-column norm */
                site_reader_colnorm(t, i, tmp);
                for (j = 0; j < d; j++) tmp[j] *= sqrt(cs->energy[(size_t)i * d + j]);
            }
            for (j = 0; j < d; j++) sum += tmp[j];
            if (sum > 0.0)
                for (j = 0; j < d; j++) score[j] += tmp[j] / sum;
        }
    }
    return select_top(score, d, ds, sel);
}

/* The pca init's shared basis (C): the top d_s eigenvectors of the Gram of
 * the stacked norm outputs (gram, d x d), as the columns of basis [d, d_s]. */
static red_status pca_basis(const float *gram, int d, int ds, float *basis) {
    float *ev = malloc((size_t)d * sizeof(float)), *Q = malloc((size_t)d * d * sizeof(float));
    red_status st = RED_E_NOMEM;
    int i, k;
    if (ev && Q && (st = red_eig_sym(d, gram, d, ev, Q)) == RED_OK)
        for (i = 0; i < d; i++)
            for (k = 0; k < ds; k++) basis[(size_t)i * ds + k] = Q[(size_t)i * d + k];
    free(ev);
    free(Q);
    return st;
}

red_status red_student_initialize(red_student *s, const red_init_opts *o, red_train_data *calib,
                                  int64_t calib_tokens, red_error *err) {
    red_model *t = s->teacher;
    const red_config *c = &t->cfg;
    int L = c->n_layers, d = s->d_t, ds = s->d_s, n_sites = 2 * L + 1, i, k, np = red_student_n_proj(s);
    int selection = o->kind == RED_INIT_MAGNITUDE || o->kind == RED_INIT_RED;
    red_norm_init norms = o->norms;
    int need_stats = o->kind == RED_INIT_RED || o->kind == RED_INIT_PCA;
    size_t P = (size_t)d * ds;
    calib_stats cs;
    double *score = NULL, *tmp = NULL;
    int *sel = NULL, *in = NULL, *tgt = NULL;
    float *basis = NULL;
    red_rng rng;
    red_status st = RED_OK;
    if (norms == RED_NORMS_DEFAULT)
        norms = o->kind == RED_INIT_RED ? RED_NORMS_TEACHER_RMS : o->kind == RED_INIT_MAGNITUDE ? RED_NORMS_TEACHER : RED_NORMS_ONES;
    if (!selection && norms != RED_NORMS_ONES)
        return red_error_set(err, RED_E_ARG, "distill: teacher norms need a channel-selection init (magnitude, red)");
    if (norms == RED_NORMS_TEACHER_RMS) need_stats = 1;
    if (need_stats && (!calib || calib_tokens < 1))
        return red_error_set(err, RED_E_ARG, "distill: this init needs calibration data (--calib, --calib-tokens)");
    if (need_stats && !s->clone_grad)
        return red_error_set(err, RED_E_ARG, "distill: red_student_train_alloc must come before initialisation");
    memset(&cs, 0, sizeof cs);
    cs.n_sites = n_sites;
    cs.d = d;
    cs.energy = calloc((size_t)n_sites * d, sizeof(double));
    cs.absum = calloc((size_t)n_sites * d, sizeof(double));
    cs.total = calloc((size_t)n_sites, sizeof(double));
    cs.rms_ratio = calloc((size_t)n_sites, sizeof(double));
    cs.resid_sq = calloc((size_t)L * d, sizeof(double));
    score = calloc((size_t)d, sizeof(double));
    tmp = calloc((size_t)d, sizeof(double));
    sel = calloc((size_t)ds, sizeof(int));
    basis = red_malloc_aligned(P * sizeof(float));
    if (o->kind == RED_INIT_PCA) cs.gram = calloc((size_t)d * d, sizeof(float));
    if (need_stats) {
        in = malloc((size_t)s->B * s->T * sizeof(int));
        tgt = malloc((size_t)s->B * s->T * sizeof(int));
    }
    if (!cs.energy || !cs.absum || !cs.total || !cs.rms_ratio || !cs.resid_sq || !score || !tmp || !sel || !basis ||
        (o->kind == RED_INIT_PCA && !cs.gram) || (need_stats && (!in || !tgt))) {
        st = red_error_set(err, RED_E_NOMEM, "distill: out of memory for initialisation");
        goto out;
    }
    if (need_stats && (st = calib_pass(s, calib, calib_tokens, NULL, o->kind == RED_INIT_PCA, &cs, in, tgt, err)))
        goto out;
    red_rng_seed(&rng, o->seed);
    memset(s->params, 0, s->n * sizeof(float));
    memset(s->adam_m, 0, s->n * sizeof(float));
    memset(s->adam_v, 0, s->n * sizeof(float));
    s->adam_t = 0;
    if (selection) {  /* channel score -> one shared index set I (B1, B2) */
        if ((st = choose_channels(t, o, &cs, ds, score, tmp, sel))) {
            st = red_error_set(err, st, "distill: out of memory");
            goto out;
        }
        memset(basis, 0, P * sizeof(float));
        for (k = 0; k < ds; k++) basis[(size_t)sel[k] * ds + k] = 1.0f;
    } else if (o->kind == RED_INIT_PCA && (st = pca_basis(cs.gram, d, ds, basis))) {
        st = red_error_set(err, st, st == RED_E_NOMEM ? "distill: out of memory for pca"
                                                      : "distill: pca eigendecomposition did not converge");
        goto out;
    }
    for (i = 0; i < np; i++) {
        float *p = (float *)red_student_proj(s, i, NULL, 0);
        if (o->kind == RED_INIT_LRC) red_rng_fill_normal(&rng, p, P, 0.0f, o->std);
        else if (o->kind == RED_INIT_ORTHOGONAL) {
            if ((st = red_random_orthonormal(&rng, d, ds, p))) {
                st = red_error_set(err, st, "distill: random orthonormal matrix failed");
                goto out;
            }
            red_vec_scale(p, o->orth_scale, P);
        } else memcpy(p, basis, P * sizeof(float));
    }
    /* student norms (B3): gamma_t[I] times the per-site RMS correction */
    if (norms == RED_NORMS_TEACHER_RMS && (st = calib_pass(s, calib, calib_tokens, sel, 0, &cs, in, tgt, err)))
        goto out;
    for (i = 0; i < n_sites; i++) {
        float *dst = i == 2 * L ? s->w.norm : i % 2 ? s->w.layers[i / 2].mlp_norm : s->w.layers[i / 2].attn_norm;
        const float *src = i == 2 * L ? t->w.norm : i % 2 ? t->w.layers[i / 2].mlp_norm : t->w.layers[i / 2].attn_norm;
        float corr = 1.0f;
        if (norms == RED_NORMS_TEACHER_RMS && cs.rows > 0) corr = (float)(cs.rms_ratio[i] / (double)cs.rows);
        for (k = 0; k < ds; k++) dst[k] = norms == RED_NORMS_ONES ? 1.0f : corr * src[sel[k]];
    }
out:
    free(cs.energy); free(cs.absum); free(cs.total); free(cs.rms_ratio); free(cs.resid_sq); free(cs.gram);
    free(score); free(tmp); free(sel); free(in); free(tgt);
    red_free_aligned(basis);
    return st;
}

/* ------------------------------------------------------------------ red inspect: energy kept at init */

/* Channel-energy concentration of one site from its per-channel energies. */
static void site_concentration(const double *e, int d, int64_t rows, red_site_energy *o) {
    double *v = malloc((size_t)d * sizeof(double)), tot = 0.0, top = 0.0, mean = 0.0, m2 = 0.0, m4 = 0.0, med;
    int j, k, k1 = (d + 99) / 100, k10 = (d + 9) / 10;
    if (!v) return;
    for (j = 0; j < d; j++) { v[j] = e[j]; tot += e[j]; }
    for (j = 1; j < d; j++) {  /* insertion sort, descending (d is a model width) */
        double x = v[j];
        for (k = j; k > 0 && v[k - 1] < x; k--) v[k] = v[k - 1];
        v[k] = x;
    }
    for (j = 0; j < k10; j++) {
        top += v[j];
        if (j + 1 == k1) o->top1_share = tot > 0 ? top / tot : 0.0;
    }
    o->top10_share = tot > 0 ? top / tot : 0.0;
    for (j = 0; j < d; j++) v[j] = sqrt(v[j] / (double)(rows > 0 ? rows : 1));  /* channel RMS, descending */
    med = d % 2 ? v[d / 2] : 0.5 * (v[d / 2 - 1] + v[d / 2]);
    o->rms_max_over_median = med > 0 ? v[0] / med : INFINITY;
    for (j = 0; j < d; j++) mean += v[j] / d;
    for (j = 0; j < d; j++) {
        double z = v[j] - mean;
        m2 += z * z / d;
        m4 += z * z * z * z / d;
    }
    o->rms_kurtosis = m2 > 0 ? m4 / (m2 * m2) : NAN;
    free(v);
}

/* Fractions of one site's energy kept by a selection, a basis, and its own top d_s directions. */
static red_status site_kept(const calib_stats *cs, int site, int ds, const int *sel_red, const int *sel_mag,
                            const float *basis, float *gf, float *w, red_site_energy *o) {
    int d = cs->d, j, k, q;
    const double *e = cs->energy + (size_t)site * d, *G = cs->site_gram + (size_t)site * d * d;
    double tot = cs->total[site], kr = 0.0, km = 0.0, ks = 0.0, tr = 0.0, top = 0.0, all = 0.0;
    red_status st;
    for (k = 0; k < ds; k++) { kr += e[sel_red[k]]; km += e[sel_mag[k]]; }
    for (j = 0; j < d; j++) tr += G[(size_t)j * d + j];
    for (k = 0; k < ds; k++)  /* q_kᵀ G q_k for each basis column */
        for (j = 0; j < d; j++) {
            double gq = 0.0;
            for (q = 0; q < d; q++) gq += G[(size_t)j * d + q] * basis[(size_t)q * ds + k];
            ks += basis[(size_t)j * ds + k] * gq;
        }
    for (j = 0; j < d * d; j++) gf[j] = (float)G[j];
    if ((st = red_eig_sym(d, gf, d, w, NULL))) return st;
    for (j = 0; j < d; j++) {
        all += w[j];
        if (j < ds) top += w[j];
    }
    o->kept_red = tot > 0 ? kr / tot : 0.0;
    o->kept_magnitude = tot > 0 ? km / tot : 0.0;
    o->kept_pca_shared = tr > 0 ? ks / tr : 0.0;
    o->kept_pca = all > 0 ? top / all : 0.0;
    return RED_OK;
}

red_status red_inspect(red_model *t, int d_s, red_train_data *calib, int64_t calib_tokens, int B, int T,
                       red_inspect_result *r, red_error *err) {
    const red_config *c = &t->cfg;
    int L = c->n_layers, d = c->dim, n_sites = 2 * L + 1, i;
    red_student s;
    calib_stats cs;
    red_init_opts io;
    double *score = NULL, *tmp = NULL;
    int *in = NULL, *tgt = NULL;
    float *basis = NULL, *gf = NULL, *w = NULL;
    red_status st;
    memset(r, 0, sizeof *r);
    memset(&cs, 0, sizeof cs);
    if (!calib || calib_tokens < 1) return red_error_set(err, RED_E_ARG, "inspect: calibration data is needed");
    if ((st = red_student_alloc(&s, t, d_s, err))) return st;
    if ((st = red_student_train_alloc(&s, B, T, err))) goto out;
    r->n_sites = n_sites; r->d_t = d; r->d_s = d_s;
    r->site = calloc((size_t)n_sites, sizeof *r->site);
    r->sel_red = calloc((size_t)d_s, sizeof(int));
    r->sel_magnitude = calloc((size_t)d_s, sizeof(int));
    cs.n_sites = n_sites;
    cs.d = d;
    cs.energy = calloc((size_t)n_sites * d, sizeof(double));
    cs.absum = calloc((size_t)n_sites * d, sizeof(double));
    cs.total = calloc((size_t)n_sites, sizeof(double));
    cs.resid_sq = calloc((size_t)L * d, sizeof(double));
    cs.gram = calloc((size_t)d * d, sizeof(float));
    cs.site_gram = calloc((size_t)n_sites * d * d, sizeof(double));
    cs.scratch = malloc((size_t)d * d * sizeof(float));
    score = calloc((size_t)d, sizeof(double));
    tmp = calloc((size_t)d, sizeof(double));
    in = malloc((size_t)B * T * sizeof(int));
    tgt = malloc((size_t)B * T * sizeof(int));
    basis = malloc((size_t)d * d_s * sizeof(float));
    gf = malloc((size_t)d * d * sizeof(float));
    w = malloc((size_t)d * sizeof(float));
    if (!r->site || !r->sel_red || !r->sel_magnitude || !cs.energy || !cs.absum || !cs.total || !cs.resid_sq ||
        !cs.gram || !cs.site_gram || !cs.scratch || !score || !tmp || !in || !tgt || !basis || !gf || !w) {
        st = red_error_set(err, RED_E_NOMEM, "inspect: out of memory (%d sites of %d x %d)", n_sites, d, d);
        goto out;
    }
    /* the calibration pass the inits make, then each init's own choice from it */
    if ((st = calib_pass(&s, calib, calib_tokens, NULL, 1, &cs, in, tgt, err))) goto out;
    r->rows = cs.rows;
    memset(&io, 0, sizeof io);
    io.kind = RED_INIT_RED;
    io.score = RED_SCORE_ENERGY;
    if ((st = choose_channels(t, &io, &cs, d_s, score, tmp, r->sel_red))) goto out_nomem;
    io.kind = RED_INIT_MAGNITUDE;
    if ((st = choose_channels(t, &io, &cs, d_s, score, tmp, r->sel_magnitude))) goto out_nomem;
    if ((st = pca_basis(cs.gram, d, d_s, basis))) {
        st = red_error_set(err, st, "inspect: pca eigendecomposition did not converge");
        goto out;
    }
    for (i = 0; i < n_sites; i++) {
        if ((st = site_kept(&cs, i, d_s, r->sel_red, r->sel_magnitude, basis, gf, w, &r->site[i]))) {
            st = red_error_set(err, st, "inspect: eigendecomposition of site %d did not converge", i);
            goto out;
        }
        site_concentration(cs.energy + (size_t)i * d, d, cs.rows, &r->site[i]);
    }
    goto out;
out_nomem:
    st = red_error_set(err, st, "inspect: out of memory");
out:
    free(cs.energy); free(cs.absum); free(cs.total); free(cs.resid_sq); free(cs.gram); free(cs.site_gram);
    free(cs.scratch); free(score); free(tmp); free(in); free(tgt); free(basis); free(gf); free(w);
    red_student_free(&s);
    if (st) red_inspect_free(r);
    return st;
}

void red_inspect_free(red_inspect_result *r) {
    free(r->site);
    free(r->sel_red);
    free(r->sel_magnitude);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ eRank and token indistinguishability */

/* Hidden states on tokens [n_rows, T]: the residual stream after each block
 * and the final-norm output (layers L+1 blocks of rows*D floats in *H), or
 * the final-norm output alone (final_only). */
static red_status hidden_states(red_model *m, const int *tokens, int n_rows, int T, int final_only, float **Hout,
                                red_error *err) {
    const red_config *c = &m->cfg;
    int L = c->n_layers, D = c->dim, l, r = 0, maxB, first = final_only ? L : 0;
    size_t rows = (size_t)n_rows * T, per = rows * D;
    float *H;
    red_status st;
    *Hout = NULL;
    if (!m->acts) return red_error_set(err, RED_E_ARG, "erank: the model needs activations (train_alloc)");
    maxB = red_model_max_batch(m);
    H = red_malloc_aligned((size_t)(L + 1 - first) * per * sizeof(float));
    if (!H) return red_error_set(err, RED_E_NOMEM, "erank: out of memory for %zu rows", rows);
    while (r < n_rows) {
        int b = n_rows - r < maxB ? n_rows - r : maxB;
        size_t at = (size_t)r * T * D, n = (size_t)b * T * D;
        if ((st = red_model_forward(m, tokens + (size_t)r * T, b, T))) {
            red_free_aligned(H);
            return red_error_set(err, st, "erank: forward failed (token out of range or T != the model's)");
        }
        for (l = first; l < L; l++) {
            red_layer_acts la;
            red_model_layer_acts(m, l, &la);
            memcpy(H + (size_t)l * per + at, la.out, n * sizeof(float));
        }
        memcpy(H + (size_t)(L - first) * per + at, red_model_final_normed(m), n * sizeof(float));
        r += b;
    }
    *Hout = H;
    return RED_OK;
}

red_status red_erank_layers(red_model *m, const int *tokens, int n_rows, int T, int center, double *out,
                            red_error *err) {
    int L = m->cfg.n_layers, D = m->cfg.dim, l;
    size_t rows = (size_t)n_rows * T, per = rows * D;
    float *H;
    red_status st;
    if ((st = hidden_states(m, tokens, n_rows, T, 0, &H, err))) return st;
    for (l = 0; l <= L; l++)
        if ((st = red_erank(m->pool, (int)rows, D, H + (size_t)l * per, D, center, &out[l]))) {
            st = red_error_set(err, st, "erank: SVD of layer %d did not converge", l);
            break;
        }
    red_free_aligned(H);
    return st;
}

red_status red_hidden_metrics(red_model *m, const int *tokens, int n_rows, int T, int center, int final_only,
                              red_layer_metrics *out, red_error *err) {
    int L = m->cfg.n_layers, D = m->cfg.dim, l, t, first = final_only ? L : 0;
    size_t rows = (size_t)n_rows * T, per = rows * D, i;
    int64_t *ids;
    float *H;
    red_status st;
    for (l = 0; l <= L; l++) {  /* layers not measured read NaN */
        out[l].erank = out[l].ind.cos_mean = NAN;
        for (t = 0; t < RED_INDIST_N; t++) out[l].ind.indist[t] = NAN;
        out[l].ind.pairs = out[l].ind.distinct_pairs = 0;
    }
    if (!(ids = malloc((rows ? rows : 1) * sizeof *ids))) return red_error_set(err, RED_E_NOMEM, "erank: out of memory");
    for (i = 0; i < rows; i++) ids[i] = tokens[i];  /* a position's id is its input token */
    if ((st = hidden_states(m, tokens, n_rows, T, final_only, &H, err))) {
        free(ids);
        return st;
    }
    for (l = first; l <= L; l++) {
        const float *X = H + (size_t)(l - first) * per;
        if ((st = red_erank(m->pool, (int)rows, D, X, D, center, &out[l].erank))) {
            st = red_error_set(err, st, "erank: SVD of layer %d did not converge", l);
            break;
        }
        if ((st = red_token_indist(m->pool, (int)rows, D, X, D, ids, &out[l].ind))) {
            st = red_error_set(err, st, "erank: layer %d has non-finite hidden states", l);
            break;
        }
    }
    red_free_aligned(H);
    free(ids);
    return st;
}

/* ------------------------------------------------------------------ the distillation loop */

static void log_losses(red_sbuf *log, const red_distill_progress *p, uint64_t tokens) {
    int k;
    red_sbuf_printf(log, "{\"step\": %llu, \"tokens\": %llu, \"lr\": ", (unsigned long long)p->step,
                    (unsigned long long)tokens);
    red_json_put_float(log, p->lr);
    red_sbuf_puts(log, ", \"loss\": ");
    red_json_put_number(log, p->loss.total);
    red_sbuf_puts(log, ", \"ce\": ");
    red_json_put_number(log, p->loss.ce);
    red_sbuf_puts(log, ", \"kl\": ");
    red_json_put_number(log, p->loss.kl);
    red_sbuf_puts(log, ", \"clone\": ");
    red_json_put_number(log, p->loss.clone);
    for (k = 0; k < RED_N_SITES; k++) {
        red_sbuf_printf(log, ", \"clone_%s\": ", k == RED_SITE_D ? "ffn_out" : red_site_names[k]);
        red_json_put_number(log, p->loss.clone_site[k]);
    }
    red_sbuf_puts(log, ", \"grad_norm\": ");
    red_json_put_number(log, p->grad_norm);
    red_sbuf_puts(log, "}");
}

/* The loss curve of an interrupted run (one JSON object per line), up to its
 * checkpointed step. */
static red_status load_curve(const char *dir, uint64_t step, red_sbuf *log, red_error *err) {
    char path[2048];
    unsigned char *buf;
    size_t len, p = 0, line = 0;
    red_status st = RED_OK;
    FILE *f;
    snprintf(path, sizeof path, "%s/distill_curve.jsonl", dir);
    if (!(f = fopen(path, "rb"))) return RED_OK;  /* the interrupted run kept no curve */
    fclose(f);
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    while (p < len && st == RED_OK) {
        size_t e = p;
        red_json *j;
        const red_json *js;
        while (e < len && buf[e] != '\n') e++;
        line++;
        if (e > p) {
            char where[2100];
            snprintf(where, sizeof where, "%s:%zu", path, line);
            if ((st = red_json_parse((const char *)buf + p, e - p, where, &j, err))) break;
            js = red_json_get(j, "step");
            if (!js || !js->is_int)
                st = red_error_set(err, RED_E_FORMAT, "%s: expected an object with an integer \"step\"", where);
            else if ((uint64_t)js->ival <= step) {
                red_sbuf_put(log, (const char *)buf + p, e - p);
                red_sbuf_puts(log, "\n");
            }
            red_json_free(j);
        }
        p = e + 1;
    }
    free(buf);
    return st;
}

typedef struct {
    const red_distill_opts *o;
    red_student *s;
    red_sbuf *log;
    red_losses loss;          /* of the last step */
    red_sbuf record;
    red_distill_batch batch;  /* the step's gradient */
} distill_run;

static void distill_state_arrays(red_student *s, red_state_array *arr) {
    arr[0].p = s->params; arr[0].n = s->n; arr[0].name = "projections and norms";
    arr[1].p = s->adam_m; arr[1].n = s->n; arr[1].name = "adam_m";
    arr[2].p = s->adam_v; arr[2].n = s->n; arr[2].name = "adam_v";
}

static red_status distill_save(void *ctx, const red_loop_pos *pos, red_error *err) {
    distill_run *d = ctx;
    const char *out = d->o->loop.out;
    red_state_array arr[3];
    red_loop_pos p = *pos;
    char path[2048];
    red_status st;
    snprintf(path, sizeof path, "%s/distill_curve.jsonl", out);
    /* the curve first: on resume, entries past the state's step are dropped */
    if (d->log && (st = red_write_file_atomic(path, d->log->p ? d->log->p : "", d->log->len, err))) return st;
    distill_state_arrays(d->s, arr);
    p.adam_t = (uint64_t)d->s->adam_t;
    snprintf(path, sizeof path, "%s/distill_state.bin", out);
    return red_state_save(path, "REDDSTIL", &p, d->record.p, arr, 3, err);
}

static red_status distill_load(void *ctx, red_loop_pos *pos, red_error *err) {
    distill_run *d = ctx;
    red_state_array arr[3];
    char path[2048];
    red_status st;
    distill_state_arrays(d->s, arr);
    snprintf(path, sizeof path, "%s/distill_state.bin", d->o->loop.out);
    if ((st = red_state_load(path, "REDDSTIL", d->record.p, pos, arr, 3, err))) return st;
    d->s->adam_t = (int64_t)pos->adam_t;
    return d->log ? load_curve(d->o->loop.out, pos->step, d->log, err) : RED_OK;
}

/* ------------------------------------------------------------------ the batch gradient */

#define DISTILL_TERMS (2 + RED_N_SITES)

/* One sequence's gradient of the batch loss (whole-batch denominators) in
 * student s's gradient slab, its loss terms into seq_terms. */
static red_status sequence_grad(red_distill_batch *d, red_student *s, int seq) {
    size_t T = (size_t)s->T;
    double *terms = d->seq_terms + (size_t)seq * DISTILL_TERMS;
    red_losses part;
    red_status st;
    if ((st = red_student_loss_part(s, d->in + seq * T, d->tgt + seq * T, 1, &d->loss_cfg, 1, &d->whole, &part)))
        return st;
    terms[0] = part.ce;
    terms[1] = part.kl;
    memcpy(terms + 2, part.clone_site, sizeof part.clone_site);
    if (d->chain_each) {
        double t0 = red_time_seconds();
        chain_to_projections(s);
        s->times.backward += red_time_seconds() - t0;
    }
    s->times_sum.teacher += s->times.teacher;
    s->times_sum.student += s->times.student;
    s->times_sum.head += s->times.head;
    s->times_sum.backward += s->times.backward;
    return RED_OK;
}

/* The gradient a sequence gives the batch's tree: its projections' with
 * chain_each, else the merged model's with its tail. */
static float *leaf_grad(const red_distill_batch *d, red_student *s) { return d->chain_each ? s->grads : s->model.grads; }

/* With dst (and the merged model's gradient as the leaf), the model's slab
 * is dst for the sequence, which saves copying it there after. */
static red_status batch_leaf(void *ctx, int seq, float *dst, const float **grad, red_error *err) {
    red_distill_batch *d = ctx;
    red_model *m = &d->s->model;
    float *own = m->grads;
    red_status st;
    if (dst && !d->chain_each) red_model_bind_grads(m, dst);
    st = sequence_grad(d, d->s, seq);
    *grad = leaf_grad(d, d->s);
    if (dst && !d->chain_each) red_model_bind_grads(m, own);
    if (st) return red_error_set(err, st, "distill: the loss of sequence %d failed (%s)", seq, red_status_name(st));
    return RED_OK;
}

static red_status worker_grad(void *ctx, int worker, int seq, float **grad) {
    red_distill_batch *d = ctx;
    *grad = leaf_grad(d, &d->workers[worker]);
    return sequence_grad(d, &d->workers[worker], seq);
}

/* With several threads and sequences each thread runs whole sequences on a
 * worker (as train.c's batch gradient does): the same bits, less waiting. */
static red_status batch_workers_alloc(red_distill_batch *d, red_error *err) {
    red_student *s = d->s;
    int w;
    red_status st;
    if ((st = red_grad_tree_workers(&d->tree, s->teacher->pool, s->B, worker_grad, "distill", err)) || !d->tree.width)
        return st;
    d->workers = calloc((size_t)d->tree.width, sizeof *d->workers);  /* zeroed: each one safe to free */
    d->worker_teachers = calloc((size_t)d->tree.width, sizeof *d->worker_teachers);
    if (!d->workers || !d->worker_teachers) return red_error_set(err, RED_E_NOMEM, "distill: out of memory for workers");
    d->n_workers = d->tree.width;
    for (w = 0; w < d->n_workers; w++)
        if ((st = red_model_share(&d->worker_teachers[w], s->teacher, d->tree.worker_pools[w], err)) ||
            (st = student_share(&d->workers[w], s, &d->worker_teachers[w], d->chain_each, err)) ||
            (st = red_student_train_alloc(&d->workers[w], 1, s->T, err)))
            return st;
    return RED_OK;
}

static void batch_workers_free(red_distill_batch *d) {
    int w;
    for (w = 0; w < d->n_workers; w++) {
        red_student_free(&d->workers[w]);
        red_model_free(&d->worker_teachers[w]);
    }
    free(d->workers);
    free(d->worker_teachers);
}

red_status red_distill_batch_alloc(red_distill_batch *d, red_student *s, const red_loss_cfg *lc, int chain_each,
                                   red_error *err) {
    memset(d, 0, sizeof *d);
    d->s = s;
    d->loss_cfg = *lc;
    if (!s->clone_grad) return red_error_set(err, RED_E_ARG, "distill: red_student_train_alloc must come first");
    d->chain_each = chain_each;
    d->n_leaf = chain_each ? s->n : s->model.n_params + s->model.grad_tail;
    if (!(d->seq_terms = malloc((size_t)s->B * DISTILL_TERMS * sizeof(double))))
        return red_error_set(err, RED_E_NOMEM, "distill: out of memory");
    return batch_workers_alloc(d, err);
}

void red_distill_batch_free(red_distill_batch *d) {
    batch_workers_free(d);
    red_weight_pack_free(&d->teacher_pack);
    red_weight_pack_free(&d->student_pack);
    free(d->seq_terms);
    red_grad_tree_free(&d->tree);  /* after the workers: it holds their pools */
    memset(d, 0, sizeof *d);
}

/* The packed weights every model of the batch (and its workers' views) reads. */
static void batch_packs_set(red_distill_batch *d, const red_weight_pack *teacher, const red_weight_pack *student) {
    int w;
    d->s->teacher->wpack = teacher;
    d->s->model.wpack = student;
    for (w = 0; w < d->n_workers; w++) {
        d->worker_teachers[w].wpack = teacher;
        d->workers[w].model.wpack = student;
    }
}

/* The batch gradient is optim.c's tree over sequences, each loss term the sum
 * of the sequences' in order: neither depends on how many ranks made them. */
red_status red_distill_batch_run(red_distill_batch *d, const int *in, const int *tgt, int rank, int ranks,
                                 red_losses *out, red_error *err) {
    red_student *s = d->s;
    int B = s->B, b, k;
    size_t n = (size_t)B * s->T, i;
    red_status st;
    double t0, chain;
    d->in = in;
    d->tgt = tgt;
    d->whole.seqs = B;
    for (d->whole.count = 0, i = 0; i < n; i++) d->whole.count += tgt[i] >= 0;
    memset(d->seq_terms, 0, (size_t)B * DISTILL_TERMS * sizeof(double));
    memset(&s->times_sum, 0, sizeof s->times_sum);
    for (k = 0; k < d->n_workers; k++) memset(&d->workers[k].times_sum, 0, sizeof s->times_sum);
    red_student_merge(s);  /* once per step: every sequence reads the same merged weights */
    /* both models' weights, fixed for the batch, packed once for all its
       sequences; the teacher's never change (110 MB a step for (c)) */
    if (B > 1 && !d->teacher_packed) {
        if ((st = red_weight_pack_fill(&d->teacher_pack, s->teacher, err))) return st;
        d->teacher_packed = 1;
    }
    if (B > 1 && (st = red_weight_pack_fill(&d->student_pack, &s->model, err))) return st;
    batch_packs_set(d, &d->teacher_pack, &d->student_pack);
    /* the sum lands in the student's own gradient, written once every leaf is done */
    st = red_grad_tree_run(&d->tree, s->teacher->pool, B, rank, ranks, d->n_leaf, batch_leaf, d,
                           d->chain_each ? s->grads : s->model.grads, err);
    batch_packs_set(d, NULL, NULL);
    if (st || (ranks > 1 && (st = red_dist_gather_f64(d->seq_terms, (size_t)B * DISTILL_TERMS, err)))) return st;
    t0 = red_time_seconds();
    if (!d->chain_each) chain_to_projections(s);  /* once, on the batch's sum */
    chain = red_time_seconds() - t0;
    for (k = 0; k < d->n_workers; k++) {
        s->times_sum.teacher += d->workers[k].times_sum.teacher;
        s->times_sum.student += d->workers[k].times_sum.student;
        s->times_sum.head += d->workers[k].times_sum.head;
        s->times_sum.backward += d->workers[k].times_sum.backward;
    }
    s->times_sum.backward += chain;
    s->times_sum.merge = s->times.merge;
    memset(out, 0, sizeof *out);
    for (b = 0; b < B; b++) {
        const double *terms = d->seq_terms + (size_t)b * DISTILL_TERMS;
        out->ce += terms[0];
        out->kl += terms[1];
        for (k = 0; k < RED_N_SITES; k++) out->clone_site[k] += terms[2 + k];
    }
    red_losses_finish(out, d->whole.count, d->loss_cfg.alpha);
    return RED_OK;
}

/* ------------------------------------------------------------------ the loop */

static red_status distill_step(void *ctx, const int *in, const int *tgt, const red_adamw_cfg *opt, double clip,
                               red_loop_step *r, red_error *err) {
    distill_run *d = ctx;
    red_student *s = d->s;
    red_status st;
    if ((st = red_distill_batch_run(&d->batch, in, tgt, r->rank, r->ranks, &d->loss, err))) return st;
    r->loss = (float)d->loss.total;
    if (!isfinite(d->loss.total)) return RED_OK;  /* the loop stops with the step named; no update */
    r->grad_norm = red_clip_grad_norm(s->teacher->pool, s->grads, s->n, clip);
    s->adam_t++;
    red_adamw_update(s->params, s->grads, s->adam_m, s->adam_v, s->n, opt, opt->weight_decay, s->adam_t);
    return RED_OK;
}

static void distill_progress_of(const distill_run *d, const red_loop_step *r, red_distill_progress *pr) {
    pr->step = r->step;
    pr->total_steps = r->total_steps;
    pr->epoch = r->epoch;
    pr->lr = r->lr;
    pr->loss = d->loss;
    pr->grad_norm = r->grad_norm;
}

static red_status distill_after_step(void *ctx, const red_loop_step *r, red_error *err) {
    distill_run *d = ctx;
    const red_distill_opts *o = d->o;
    red_distill_progress pr;
    (void)err;
    if (!d->log || !o->log_every || (r->step % o->log_every && r->step != r->total_steps && r->step != 1)) return RED_OK;
    distill_progress_of(d, r, &pr);
    log_losses(d->log, &pr, r->step * (uint64_t)o->loop.batch * o->loop.seq);
    red_sbuf_puts(d->log, "\n");
    return RED_OK;
}

static void distill_progress(void *ctx, const red_loop_step *r) {
    distill_run *d = ctx;
    red_distill_progress pr;
    if (!d->o->progress) return;
    distill_progress_of(d, r, &pr);
    d->o->progress(d->o->progress_ctx, &pr);
}

red_status red_distill(const red_distill_opts *o, red_student *s, red_train_data *data, red_sbuf *log,
                       red_error *err) {
    static const red_loop_hooks hooks = {"distill", distill_step, distill_after_step, distill_save, distill_load,
                                         distill_progress};
    const red_config *c = &s->teacher->cfg;
    distill_run d;
    red_status st;
    if (o->loop.batch != s->B || o->loop.seq != s->T)
        return red_error_set(err, RED_E_ARG, "distill: batch shape %dx%d differs from the student's %dx%d", o->loop.batch,
                             o->loop.seq, s->B, s->T);
    memset(&d, 0, sizeof d);
    d.o = o;
    d.s = s;
    d.log = log;
    red_sbuf_init(&d.record);
    red_sbuf_printf(&d.record, "kind=distill\nteacher=%s dim %d layers %d heads %d/%d ffn %d vocab %d\nwidth=%d\n"
                               "tau=%.9g\nalpha=%.9g\nkl_reduction=%d\n", red_arch_name(c->arch), c->dim, c->n_layers,
                    c->n_heads, c->n_kv_heads, c->ffn, c->vocab, s->d_s, o->loss.tau, o->loss.alpha,
                    (int)o->loss.kl_reduction);
    if (o->chain_each) red_sbuf_puts(&d.record, "chain=each sequence\n");  /* other bits: no resuming across */
    if (o->record) red_sbuf_puts(&d.record, o->record);
    red_loop_record(&o->loop, data, &d.record);
    if (d.record.failed)
        st = red_error_set(err, RED_E_NOMEM, "distill: out of memory");
    else if (!(st = red_distill_batch_alloc(&d.batch, s, &o->loss, o->chain_each, err)))
        st = red_loop_run(&o->loop, data, &hooks, &d, err);
    red_distill_batch_free(&d.batch);
    red_sbuf_free(&d.record);
    return st;
}

/* ------------------------------------------------------------------ names and defaults */

/* lrc's Gaussian std: LRC's 0.02 at d_t = 3072, kept at the same column norm
 * for other widths (method.md A4); lrc-literal is 0.02 at any width. */
static float lrc_std(const char *name, int d_t) {
    return !strcmp(name, "lrc") ? (float)(0.02 * sqrt(3072.0 / d_t)) : 0.02f;
}

const red_name red_init_names[] = {{"lrc", RED_INIT_LRC},      {"lrc-literal", RED_INIT_LRC}, {"orthogonal", RED_INIT_ORTHOGONAL},
                                   {"pca", RED_INIT_PCA},      {"magnitude", RED_INIT_MAGNITUDE}, {"red", RED_INIT_RED},
                                   {NULL, 0}};
const red_name red_score_names[] = {{"energy", RED_SCORE_ENERGY}, {"resid", RED_SCORE_RESID}, {"absmean", RED_SCORE_ABSMEAN},
                                    {"wanda", RED_SCORE_WANDA}, {NULL, 0}};
const red_name red_norms_names[] = {{"default", RED_NORMS_DEFAULT}, {"ones", RED_NORMS_ONES}, {"teacher", RED_NORMS_TEACHER},
                                    {"teacher-rms", RED_NORMS_TEACHER_RMS}, {NULL, 0}};
const red_name red_kl_names[] = {{"sequence", RED_KL_SEQUENCE}, {"token", RED_KL_TOKEN}, {NULL, 0}};

void red_init_opts_default(red_init_opts *io) {
    memset(io, 0, sizeof *io);
    io->kind = RED_INIT_LRC;
    io->std = 0.02f;
    io->orth_scale = 1.0f;
    io->score = RED_SCORE_ENERGY;
    io->norms = RED_NORMS_DEFAULT;
}

red_status red_init_by_name(const char *name, int d_t, red_init_opts *io, red_error *err) {
    int kind;
    if (red_name_find(red_init_names, name, &kind) != RED_OK) {
        red_sbuf all;
        red_status st;
        red_sbuf_init(&all);
        red_name_list(red_init_names, &all);
        st = red_error_set(err, RED_E_ARG, "unknown init '%s' (%s)", name, all.p ? all.p : "");
        red_sbuf_free(&all);
        return st;
    }
    io->kind = (red_init_kind)kind;
    if (io->kind == RED_INIT_LRC) io->std = lrc_std(name, d_t);
    return RED_OK;
}

void red_distill_opts_default(red_distill_opts *o) {
    memset(o, 0, sizeof *o);
    o->loop.batch = 8;
    o->loop.seq = 256;
    o->loop.lr = 3e-3f;
    o->loop.min_lr = 0.0f;
    o->loop.beta1 = 0.9f;
    o->loop.beta2 = 0.999f;
    o->loop.clip = 1.0;
    o->loop.schedule = RED_SCHED_LINEAR;
    o->loop.save_every = 100;
    o->loss.tau = 10.0f;
    o->loss.alpha = 0.2f;
    o->loss.kl_reduction = RED_KL_SEQUENCE;
    o->log_every = 10;
}

/* ------------------------------------------------------------------ the distillation job */

static void say(const red_distill_job *j, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    if (!j->say) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    j->say(j->say_ctx, msg);
}

/* Singular values of every projection, [n_proj, d_s], sorted descending. */
static red_status projection_spectra(const red_student *s, float *sv, red_error *err) {
    int i, np = red_student_n_proj(s);
    for (i = 0; i < np; i++) {
        char name[64];
        const float *p = red_student_proj(s, i, name, sizeof name);
        if (red_svd(s->teacher->pool, s->d_t, s->d_s, p, s->d_s, NULL, sv + (size_t)i * s->d_s, NULL, NULL) != RED_OK)
            return red_error_set(err, RED_E_NOCONV, "distill: SVD of projection %s did not converge", name);
    }
    return RED_OK;
}

/* eRank and token indistinguishability per layer (hidden) of m on the job's rows; erank[l] = hidden[l].erank. */
static red_status hidden_diagnostics(const red_distill_job *j, red_model *m, double *erank, red_layer_metrics *hidden,
                                     red_error *err) {
    int l;
    red_status st;
    if (!j->n_erank_rows) return RED_OK;
    if ((st = red_hidden_metrics(m, j->erank_rows, j->n_erank_rows, j->opt.loop.seq, 0, 0, hidden, err))) return st;
    for (l = 0; l <= m->cfg.n_layers; l++) erank[l] = hidden[l].erank;
    return RED_OK;
}

/* eRank, indistinguishability and the projection spectra of the merged student. */
static red_status student_diagnostics(const red_distill_job *j, red_student *s, double *erank, red_layer_metrics *hidden,
                                      float *sv, red_error *err) {
    red_status st;
    red_student_merge(s);
    if ((st = hidden_diagnostics(j, &s->model, erank, hidden, err))) return st;
    return projection_spectra(s, sv, err);
}

/* distill_log.json members ",\n  \"cos_mean_<who>\": [...]" and indist@0.95/0.99 per layer. */
static void put_hidden_log(red_sbuf *b, const red_layer_metrics *m, int n, const char *who) {
    static const char *const keys[] = {"cos_mean", "indist_0.95", "indist_0.99"};
    double v[256];
    int k, l;
    for (k = 0; k < 3; k++) {
        for (l = 0; l < n && l < 256; l++) v[l] = k ? m[l].ind.indist[k - 1] : m[l].ind.cos_mean;
        red_sbuf_printf(b, ",\n  \"%s_%s\": ", keys[k], who);
        red_json_put_numbers(b, v, l);
    }
}

static void put_spectra(red_sbuf *b, const red_student *s, const float *sv) {
    int i, k, np = red_student_n_proj(s);
    red_sbuf_puts(b, "[");
    for (i = 0; i < np; i++) {
        char name[64];
        red_student_proj(s, i, name, sizeof name);
        red_sbuf_puts(b, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        red_json_put_string(b, name, strlen(name));
        red_sbuf_puts(b, ", \"sv\": [");
        for (k = 0; k < s->d_s; k++) {
            if (k) red_sbuf_puts(b, ", ");
            red_json_put_float(b, sv[(size_t)i * s->d_s + k]);
        }
        red_sbuf_puts(b, "]}");
    }
    red_sbuf_puts(b, "]");
}

/* Appends lines of text (one JSON object each) as the items of an array. */
static void put_lines_as_array(red_sbuf *b, const char *text, size_t len, const char *sep) {
    size_t p = 0;
    int first = 1;
    while (p < len) {
        size_t e = p;
        while (e < len && text[e] != '\n') e++;
        if (e > p) {
            red_sbuf_puts(b, first ? sep + 1 : sep);
            red_sbuf_put(b, text + p, e - p);
            first = 0;
        }
        p = e + 1;
    }
}

static void put_options(red_sbuf *b, const red_distill_job *j) {
    const red_distill_opts *o = &j->opt;
    red_sbuf_puts(b, "\"init_std\": ");
    red_json_put_float(b, j->init.std);
    red_sbuf_puts(b, ", \"orth_scale\": ");
    red_json_put_float(b, j->init.orth_scale);
    red_sbuf_printf(b, ", \"score\": \"%s\", \"norms\": \"%s\", \"calib_tokens\": %lld, \"tau\": ",
                    red_name_of(red_score_names, j->init.score), red_name_of(red_norms_names, j->init.norms),
                    (long long)j->calib_tokens);
    red_json_put_float(b, o->loss.tau);
    red_sbuf_puts(b, ", \"alpha\": ");
    red_json_put_float(b, o->loss.alpha);
    red_sbuf_printf(b, ", \"kl_reduction\": \"%s\", \"lr\": ", red_name_of(red_kl_names, o->loss.kl_reduction));
    red_json_put_float(b, o->loop.lr);
    red_sbuf_printf(b, ", \"batch\": %d, \"seq\": %d}", o->loop.batch, o->loop.seq);
}

/* distill_log.json: options, eRank (teacher, init, end), spectra, the
 * Marchenko-Pastur band of lrc's Gaussian, the loss curve. */
static red_status write_log(const red_distill_job *j, const red_student *s, const red_distill_report *r,
                            const red_sbuf *init_part, const red_sbuf *curve, red_error *err) {
    int L = s->cfg.n_layers, ne = j->n_erank_rows ? L + 1 : 0;
    double sd = j->init.std, a = sqrt((double)s->d_t), b = sqrt((double)s->d_s);
    char path[2048];
    red_sbuf js;
    red_status st;
    red_sbuf_init(&js);
    red_sbuf_puts(&js, "{\"teacher\": ");
    red_json_put_string(&js, j->teacher_name, strlen(j->teacher_name));
    red_sbuf_printf(&js, ", \"init\": \"%s\", \"d_t\": %d, \"d_s\": %d, \"seed\": %llu, \"tokens\": %llu,\n  \"options\": {",
                    j->init_name, s->d_t, s->d_s, (unsigned long long)j->opt.loop.seed,
                    (unsigned long long)j->opt.loop.tokens);
    put_options(&js, j);
    red_sbuf_printf(&js, ",\n  \"erank_tokens\": %d,\n  \"erank_teacher\": ", j->n_erank_rows * j->opt.loop.seq);
    red_json_put_numbers(&js, r->erank_teacher, ne);
    put_hidden_log(&js, r->hidden_teacher, ne, "teacher");
    red_sbuf_puts(&js, ",\n  ");
    red_sbuf_put(&js, init_part->p, init_part->len);
    red_sbuf_puts(&js, ",\n  \"erank_student_final\": ");
    red_json_put_numbers(&js, r->erank_final, ne);
    put_hidden_log(&js, r->hidden_final, ne, "student_final");
    red_sbuf_puts(&js, ",\n  \"projections_final\": ");
    put_spectra(&js, s, r->sv_final);
    /* a d_t x d_s Gaussian with std sigma has singular values in sigma (sqrt(d_t) -+ sqrt(d_s)) */
    red_sbuf_puts(&js, ",\n  \"marchenko_pastur\": {\"std\": ");
    red_json_put_float(&js, (float)sd);
    red_sbuf_puts(&js, ", \"lower\": ");
    red_json_put_number(&js, sd * (a - b));
    red_sbuf_puts(&js, ", \"upper\": ");
    red_json_put_number(&js, sd * (a + b));
    red_sbuf_puts(&js, "},\n  \"curve\": [");
    put_lines_as_array(&js, curve->p ? curve->p : "", curve->len, ",\n    ");
    red_sbuf_printf(&js, "],\n  \"wall_seconds\": %.1f}\n", r->wall_seconds);
    snprintf(path, sizeof path, "%s/distill_log.json", j->opt.loop.out);
    st = js.failed ? red_error_set(err, RED_E_NOMEM, "%s: out of memory", path)
                   : red_write_file_atomic(path, js.p, js.len, err);
    red_sbuf_free(&js);
    return st;
}

/* The init part of the log, also kept as distill_init.json. */
static red_status write_init_part(const red_distill_job *j, const red_student *s, const red_distill_report *r,
                                  red_sbuf *part, red_error *err) {
    char path[2048];
    red_sbuf_puts(part, "\"erank_student_init\": ");
    red_json_put_numbers(part, r->erank_init, j->n_erank_rows ? s->cfg.n_layers + 1 : 0);
    red_sbuf_puts(part, ",\n  \"projections_init\": ");
    put_spectra(part, s, r->sv_init);
    put_hidden_log(part, r->hidden_init, j->n_erank_rows ? s->cfg.n_layers + 1 : 0, "student_init");
    if (part->failed) return red_error_set(err, RED_E_NOMEM, "distill: out of memory");
    snprintf(path, sizeof path, "%s/distill_init.json", j->opt.loop.out);
    return red_write_file_atomic(path, part->p, part->len, err);
}

/* Training, in segments when the job asks for them (a checkpoint where
 * each stops, then at_segment); one call of red_distill otherwise. */
static red_status distill_segments(red_distill_job *j, red_student *s, red_sbuf *curve, red_error *err) {
    red_distill_opts o = j->opt;
    uint64_t steps = o.loop.tokens / ((uint64_t)o.loop.batch * o.loop.seq);
    int seg, segmented = j->n_segments > 0, n_seg = segmented ? j->n_segments : 1;
    red_status st;
    if (o.loop.tokens == 0) return RED_OK;
    if (steps < (uint64_t)n_seg) n_seg = (int)(steps ? steps : 1);
    say(j, "distill: %zu documents, %zu tokens; %zu trainable parameters; %llu steps of %d x %d", j->data->n_docs,
        j->data->n_tok, s->n, (unsigned long long)steps, o.loop.batch, o.loop.seq);
    for (seg = 1; seg <= n_seg; seg++) {
        if (segmented) {
            o.loop.stop_after = steps * (uint64_t)seg / (uint64_t)n_seg;
            o.loop.save_every = o.loop.stop_after;  /* a checkpoint where each segment stops */
        }
        curve->len = 0;  /* reloaded from distill_curve.jsonl on resume */
        if ((st = red_distill(&o, s, j->data, curve, err))) return st;
        o.loop.resume = 1;  /* (a segment already done just reloads its checkpoint) */
        if (j->at_segment && (st = j->at_segment(j->ctx, s, seg, n_seg, o.loop.stop_after, err))) return st;
    }
    return RED_OK;
}

static red_status report_alloc(red_distill_report *r, const red_student *s, red_error *err) {
    int L1 = s->cfg.n_layers + 1;
    size_t nsv = (size_t)red_student_n_proj(s) * s->d_s;
    memset(r, 0, sizeof *r);
    r->erank_teacher = calloc((size_t)3 * L1, sizeof(double));
    r->sv_init = calloc(2 * nsv, sizeof(float));
    r->hidden_teacher = calloc((size_t)3 * L1, sizeof(red_layer_metrics));
    if (!r->erank_teacher || !r->sv_init || !r->hidden_teacher) {
        red_distill_report_free(r);
        return red_error_set(err, RED_E_NOMEM, "distill: out of memory");
    }
    r->erank_init = r->erank_teacher + L1;
    r->erank_final = r->erank_init + L1;
    r->sv_final = r->sv_init + nsv;
    r->hidden_init = r->hidden_teacher + L1;
    r->hidden_final = r->hidden_init + L1;
    {   /* NaN until measured */
        int i;
        for (i = 0; i < 3 * L1; i++) {
            red_indist *d = &r->hidden_teacher[i].ind;
            r->hidden_teacher[i].erank = d->cos_mean = d->indist[0] = d->indist[1] = NAN;
        }
    }
    r->n_layers = s->cfg.n_layers;
    r->n_proj = red_student_n_proj(s);
    r->width = s->d_s;
    return RED_OK;
}

void red_distill_report_free(red_distill_report *r) {
    free(r->erank_teacher);
    free(r->sv_init);
    free(r->hidden_teacher);
    memset(r, 0, sizeof *r);
}

red_status red_distill_run(red_distill_job *j, red_student *s, red_distill_report *r, red_error *err) {
    red_distill_opts *o = &j->opt;
    double t0 = red_time_seconds();
    red_sbuf curve, init_part, init_rec;
    red_status st;
    int writer = o->loop.single || red_dist_rank() == 0;  /* of several ranks, rank 0 measures and writes */
    memset(s, 0, sizeof *s);
    memset(r, 0, sizeof *r);
    /* checks that need no memory come before the student's activations */
    if (o->loop.batch < 1 || o->loop.seq < 2 ||  /* tokens 0: the initialised student, untrained */
        (o->loop.tokens && o->loop.tokens / ((uint64_t)o->loop.batch * o->loop.seq) < 1))
        return red_error_set(err, RED_E_ARG, "distill: --tokens is less than one batch (%d x %d)", o->loop.batch,
                             o->loop.seq);
    if (j->data && j->data->n_tok < (size_t)o->loop.seq + 1)
        return red_error_set(err, RED_E_ARG, "distill: the data has %zu tokens, fewer than one sequence of %d",
                             j->data->n_tok, o->loop.seq + 1);
    if ((st = red_student_alloc(s, j->teacher, j->width, err))) return st;
    if ((st = red_student_train_alloc(s, o->loop.batch, o->loop.seq, err)) || (st = report_alloc(r, s, err)) ||
        (st = red_make_dir(o->loop.out, err)))
        return st;
    red_sbuf_init(&curve);
    red_sbuf_puts(&curve, "");
    red_sbuf_init(&init_part);
    red_sbuf_puts(&init_part, "");
    red_sbuf_init(&init_rec);
    if (writer && j->measure_teacher && (st = hidden_diagnostics(j, j->teacher, r->erank_teacher, r->hidden_teacher, err)))
        goto out;
    if (!o->loop.resume)
        say(j, "distill: init %s, width %d -> %d, calibration %lld tokens", j->init_name, s->d_t, s->d_s,
            (long long)j->calib_tokens);
    /* initialised even when resuming (deterministic; the state then replaces
     * the projections), so the init diagnostics are the same either way */
    if ((st = red_student_initialize(s, &j->init, j->calib, j->calib_tokens, err)) ||
        (writer && (st = student_diagnostics(j, s, r->erank_init, r->hidden_init, r->sv_init, err))))
        goto out;
    if (writer && j->write_log && (st = write_init_part(j, s, r, &init_part, err))) goto out;
    if (j->at_segment && (st = j->at_segment(j->ctx, s, 0, j->n_segments, 0, err))) goto out;
    /* the init joins the resume record: a run may not resume as another init */
    red_sbuf_printf(&init_rec, "init=%s\ninit_std=%.9g\north_scale=%.9g\nscore=%d\nnorms=%d\ninit_seed=%llu\n",
                    j->init_name, j->init.std, j->init.orth_scale, (int)j->init.score, (int)j->init.norms,
                    (unsigned long long)j->init.seed);
    if (init_rec.failed) {
        st = red_error_set(err, RED_E_NOMEM, "distill: out of memory");
        goto out;
    }
    o->record = init_rec.p;
    st = distill_segments(j, s, &curve, err);
    o->record = NULL;
    if (st || !writer) goto out;
    if ((st = student_diagnostics(j, s, r->erank_final, r->hidden_final, r->sv_final, err))) goto out;
    /* red's own tokenizers are written here; others keep their files (the CLI copies them) */
    if ((st = red_model_save(&s->model, o->loop.out, RED_DT_F32, err)) ||
        (red_tokenizer_kind(j->tok) <= RED_TOK_BPE && (st = red_tokenizer_save(j->tok, o->loop.out, err))))
        goto out;
    r->wall_seconds = red_time_seconds() - t0;
    if (j->write_log) st = write_log(j, s, r, &init_part, &curve, err);
out:
    red_sbuf_free(&curve);
    red_sbuf_free(&init_part);
    red_sbuf_free(&init_rec);
    return st;
}
