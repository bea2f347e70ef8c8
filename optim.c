/* optim.c - what every training loop shares: AdamW, global-norm clipping,
 * learning-rate schedules, the state file that makes a run resumable, and
 * the loop itself (schedule, batches, checkpoint cadence, resume, stop).
 * red_train (train.c) and red_distill (distill.c) are this loop with their own
 * step, save and load.
 *
 * State file (little-endian): magic[8] ("REDTRAIN", "REDDSTIL"), u32
 * version = 2, u64 step, u64 adam_t, u64 epoch, u64 offset, u64 rng[4],
 * u64 record_len, the resume record (record_len bytes of "key=value\n"
 * lines: options, model shape, data fingerprint), u64 n_arrays, then per
 * array u64 n and n f32 values. Resuming compares the record line by line
 * and names the first key that differs.
 */
#include "red_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ AdamW, clipping, schedules */

/* The norm adds per-chunk sums of fixed 64K-element chunks in chunk order,
 * so it does not depend on how many threads computed them. */
#define NORM_CHUNK 65536

typedef struct {
    float *g;
    size_t n;
    double *partial;
    float scale;
} norm_ctx;

void red_adamw_update(float *p, const float *g, float *m, float *v, size_t n, const red_adamw_cfg *c,
                      float weight_decay, int64_t t) {
    double bc1 = 1.0 - pow((double)c->beta1, (double)t), bc2 = 1.0 - pow((double)c->beta2, (double)t);
    float step = (float)(c->lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2)), decay = 1.0f - c->lr * weight_decay;
    float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    size_t i;
    for (i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}

static void clip_sumsq_chunks(void *vc, int64_t lo, int64_t hi) {
    norm_ctx *c = vc;
    int64_t k;
    for (k = lo; k < hi; k++) {
        size_t i = (size_t)k * NORM_CHUNK, e = i + NORM_CHUNK < c->n ? i + NORM_CHUNK : c->n;
        double ss = 0.0;
        for (; i < e; i++) ss += (double)c->g[i] * c->g[i];
        c->partial[k] = ss;
    }
}

static void clip_scale_chunks(void *vc, int64_t lo, int64_t hi) {
    norm_ctx *c = vc;
    size_t a = (size_t)lo * NORM_CHUNK, b = (size_t)hi * NORM_CHUNK < c->n ? (size_t)hi * NORM_CHUNK : c->n;
    red_vec_scale(c->g + a, c->scale, b - a);
}

double red_clip_grad_norm(red_pool *pool, float *g, size_t n, double max_norm) {
    norm_ctx c;
    int64_t chunks = (int64_t)((n + NORM_CHUNK - 1) / NORM_CHUNK), k;
    double ss = 0.0, norm, stack[64];
    c.g = g;
    c.n = n;
    c.partial = chunks <= 64 ? stack : malloc(sizeof(double) * (size_t)chunks);
    if (!c.partial) {  /* cannot split: one pass in the same chunk order */
        double part;
        size_t i;
        for (k = 0; k < chunks; k++) {
            size_t e = (size_t)(k + 1) * NORM_CHUNK < n ? (size_t)(k + 1) * NORM_CHUNK : n;
            part = 0.0;
            for (i = (size_t)k * NORM_CHUNK; i < e; i++) part += (double)g[i] * g[i];
            ss += part;
        }
    } else {
        red_par_range(pool, chunks, 2.0 * NORM_CHUNK, clip_sumsq_chunks, &c);
        for (k = 0; k < chunks; k++) ss += c.partial[k];
        if (c.partial != stack) free(c.partial);
    }
    norm = sqrt(ss);
    if (max_norm > 0.0 && norm > max_norm) {
        c.scale = (float)(max_norm / (norm + 1e-6));
        red_par_range(pool, chunks, 1.0 * NORM_CHUNK, clip_scale_chunks, &c);
    }
    return norm;
}

typedef struct {
    red_model *m;
    const red_adamw_cfg *c;
} adam_ctx;

static void adamw_tensors(void *vc, int64_t lo, int64_t hi) {
    adam_ctx *ac = vc;
    red_model *m = ac->m;
    int64_t i;
    for (i = lo; i < hi; i++) {
        const red_param *p = &m->table[i];
        red_adamw_update(m->params + p->offset, m->grads + p->offset, m->adam_m + p->offset,
                         m->adam_v + p->offset, p->numel, ac->c,
                         m->decay_mask[i] ? ac->c->weight_decay : 0.0f, m->adam_t);
    }
}

void red_model_adamw(red_model *m, const red_adamw_cfg *c) {
    adam_ctx ac;
    ac.m = m;
    ac.c = c;
    m->adam_t++;
    /* per-tensor slices: each element is updated by exactly one thread */
    red_par_range(m->pool, m->n_tensors, 10.0 * (double)m->n_params / m->n_tensors, adamw_tensors, &ac);
}

float red_lr_at(const red_lr_sched *s, int64_t step) {
    double frac;
    if (s->warmup > 0 && step < s->warmup) return s->lr * (float)(step + 1) / (float)s->warmup;
    if (s->kind == RED_SCHED_CONSTANT || s->total <= s->warmup) return s->lr;
    frac = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    if (frac > 1.0) frac = 1.0;
    if (s->kind == RED_SCHED_LINEAR) return (float)(s->lr + (s->min_lr - s->lr) * frac);
    return (float)(s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(3.14159265358979323846 * frac)));
}

/* ------------------------------------------------------------------ the state file */

#define STATE_VERSION 2
#define STATE_FIXED (8 + 4 + 8 * 4 + 8)  /* magic, version, step/adam_t/epoch/offset, record_len */

red_status red_state_save(const char *path, const char *magic, const red_loop_pos *pos, const char *record,
                          const red_state_array *arrays, int n_arrays, red_error *err) {
    size_t rec_len = strlen(record), bytes = STATE_FIXED + rec_len + 8, at;
    unsigned char *b;
    red_status st;
    int i;
    for (i = 0; i < n_arrays; i++) bytes += 8 + 4 * arrays[i].n;
    if (!(b = malloc(bytes))) return red_error_set(err, RED_E_NOMEM, "%s: out of memory for the state file", path);
    memcpy(b, magic, 8);
    b[8] = STATE_VERSION; b[9] = b[10] = b[11] = 0;
    red_put_u64le(b + 12, pos->step);
    red_put_u64le(b + 20, pos->adam_t);
    red_put_u64le(b + 28, pos->epoch);
    red_put_u64le(b + 36, pos->offset);
    red_put_u64le(b + 44, rec_len);
    memcpy(b + STATE_FIXED, record, rec_len);
    at = STATE_FIXED + rec_len;
    red_put_u64le(b + at, (uint64_t)n_arrays);
    at += 8;
    for (i = 0; i < n_arrays; i++) {
        red_put_u64le(b + at, arrays[i].n);
        red_put_f32le(b + at + 8, arrays[i].p, arrays[i].n);
        at += 8 + 4 * arrays[i].n;
    }
    st = red_write_file_atomic(path, b, bytes, err);
    free(b);
    return st;
}

/* The value of key in a record of "key=value\n" lines, as (pointer, length); NULL if absent. */
static const char *record_value(const char *rec, size_t len, const char *key, size_t *vlen) {
    size_t p = 0, klen = strlen(key);
    while (p < len) {
        size_t e = p;
        while (e < len && rec[e] != '\n') e++;
        if (e - p > klen && rec[p + klen] == '=' && !memcmp(rec + p, key, klen)) {
            *vlen = e - p - klen - 1;
            return rec + p + klen + 1;
        }
        p = e + 1;
    }
    return NULL;
}

/* Names the first key of want whose value differs in have (or is missing). */
static red_status record_check(const char *path, const char *have, size_t have_len, const char *want, red_error *err) {
    size_t p = 0, len = strlen(want);
    if (have_len == len && !memcmp(have, want, len)) return RED_OK;
    while (p < len) {
        size_t e = p, k = p, vlen = 0;
        const char *v;
        char key[64];
        while (e < len && want[e] != '\n') e++;
        while (k < e && want[k] != '=') k++;
        snprintf(key, sizeof key, "%.*s", (int)(k - p), want + p);
        v = record_value(have, have_len, key, &vlen);
        if (!v || vlen != e - k - 1 || memcmp(v, want + k + 1, vlen))
            return red_error_set(err, RED_E_ARG, "%s: cannot resume: %s is %.*s in the saved run but %.*s in this one "
                                 "(start a new run, or resume with the same options and data)", path, key,
                                 v ? (int)(vlen > 200 ? 200 : vlen) : 9, v ? v : "(missing)", (int)(e - k - 1), want + k + 1);
        p = e + 1;
    }
    return red_error_set(err, RED_E_ARG, "%s: cannot resume: the saved run records settings this one does not have", path);
}

red_status red_state_load(const char *path, const char *magic, const char *record, red_loop_pos *pos,
                          const red_state_array *arrays, int n_arrays, red_error *err) {
    unsigned char *b;
    size_t len, at, rec_len;
    uint64_t v;
    red_status st;
    int i;
    if ((st = red_read_file(path, &b, &len, err))) return st;
    if (len < STATE_FIXED || memcmp(b, magic, 8) || b[8] != STATE_VERSION || b[9] || b[10] || b[11]) {
        st = red_error_set(err, RED_E_FORMAT, "%s: byte 0: not a red state file of this kind (magic %.8s, version %d)",
                           path, magic, STATE_VERSION);
        goto out;
    }
    v = red_get_u64le(b + 44);
    if (v > len - STATE_FIXED || len - STATE_FIXED - v < 8) {
        st = red_error_set(err, RED_E_FORMAT, "%s: byte 44: resume record of %llu bytes runs past the end (%zu bytes)",
                           path, (unsigned long long)v, len);
        goto out;
    }
    rec_len = (size_t)v;
    if ((st = record_check(path, (const char *)b + STATE_FIXED, rec_len, record, err))) goto out;
    at = STATE_FIXED + rec_len;
    if (red_get_u64le(b + at) != (uint64_t)n_arrays) {
        st = red_error_set(err, RED_E_FORMAT, "%s: byte %zu: expected %d arrays, found %llu", path, at, n_arrays,
                           (unsigned long long)red_get_u64le(b + at));
        goto out;
    }
    at += 8;
    for (i = 0; i < n_arrays; i++) {  /* sizes first, so a failure leaves every array untouched */
        v = len - at >= 8 ? red_get_u64le(b + at) : ~(uint64_t)0;
        if (v != arrays[i].n || (len - at - 8) / 4 < arrays[i].n) {
            st = red_error_set(err, RED_E_FORMAT, "%s: byte %zu: %s: expected %zu values, found %llu in %zu bytes", path,
                               at, arrays[i].name, arrays[i].n, (unsigned long long)v, len);
            goto out;
        }
        at += 8 + 4 * arrays[i].n;
    }
    if (at != len) {
        st = red_error_set(err, RED_E_FORMAT, "%s: byte %zu: %zu bytes after the last array", path, at, len - at);
        goto out;
    }
    pos->step = red_get_u64le(b + 12);
    pos->adam_t = red_get_u64le(b + 20);
    pos->epoch = red_get_u64le(b + 28);
    pos->offset = red_get_u64le(b + 36);
    for (i = 0, at = STATE_FIXED + rec_len + 8; i < n_arrays; i++) {
        red_get_f32le(arrays[i].p, b + at + 8, arrays[i].n);
        at += 8 + 4 * arrays[i].n;
    }
out:
    free(b);
    return st;
}

void red_loop_record(const red_loop_opts *o, const red_train_data *data, red_sbuf *b) {
    red_sbuf_printf(b, "tokens=%llu\nbatch=%d\nseq=%d\nseed=%llu\nlr=%.9g\nmin_lr=%.9g\nbeta1=%.9g\nbeta2=%.9g\n"
                       "weight_decay=%.9g\nclip=%.17g\nwarmup_steps=%llu\nschedule=%d\ndata=%zu tokens, %zu documents, "
                       "fingerprint %016llx\n", (unsigned long long)o->tokens, o->batch, o->seq,
                    (unsigned long long)o->seed, o->lr, o->min_lr, o->beta1, o->beta2, o->weight_decay, o->clip,
                    (unsigned long long)o->warmup_steps, (int)o->schedule, data->n_tok, data->n_docs,
                    (unsigned long long)red_train_data_fingerprint(data));
}

/* ------------------------------------------------------------------ the batch gradient tree */

red_status red_batch_share(int B, int rank, int ranks, int *first, int *count, red_error *err) {
    if (ranks < 1 || (ranks & (ranks - 1)) || B % ranks)
        return red_error_set(err, RED_E_ARG, "the batch (%d sequences) must split evenly over the %d ranks, "
                             "a power of two dividing it", B, ranks);
    *count = B / ranks;
    *first = rank * *count;
    return RED_OK;
}

typedef struct {
    red_grad_tree *t;
    red_pool *pool;
    red_seq_grad_fn leaf;
    void *ctx;
    red_error *err;
} tree_walk;

static void slabs_free(red_grad_tree *t) {
    int i;
    for (i = 0; i < 32; i++) {
        red_free_aligned(t->slab[i]);
        t->slab[i] = NULL;
    }
    red_free_aligned(t->scratch);
    t->scratch = NULL;
}

static float *tree_slab(red_grad_tree *t, int depth) {
    if (!t->slab[depth]) t->slab[depth] = red_malloc_aligned(t->n * sizeof(float));
    return t->slab[depth];
}

typedef struct {
    tree_walk *w;
    int lo;
    float **grads;
} workers_task;

static void workers_thread(void *arg, int ith, int nth) {
    workers_task *k = arg;
    red_grad_tree *t = k->w->t;
    (void)nth;
    t->worker_st[ith] = t->worker(k->w->ctx, ith, k->lo + ith, &k->grads[ith]);
}

/* Sequences [lo, hi) at once, sequence lo + i on worker i's thread. */
static red_status run_workers(tree_walk *w, int lo, int hi, float **grads) {
    red_grad_tree *t = w->t;
    workers_task k;
    int i;
    k.w = w;
    k.lo = lo;
    k.grads = grads;
    red_pool_run(w->pool, hi - lo, workers_thread, &k);
    for (i = 0; i < hi - lo; i++)
        if (t->worker_st[i])
            return red_error_set(w->err, t->worker_st[i], "%s: the step of sequence %d failed (%s)", t->what, lo + i,
                                 red_status_name(t->worker_st[i]));
    return RED_OK;
}

red_status red_grad_tree_workers(red_grad_tree *t, red_pool *pool, int B, red_seq_worker_fn worker, const char *what,
                                 red_error *err) {
    int i, n = red_pool_size(pool) < B ? red_pool_size(pool) : B;
    if (n > RED_TREE_MAX_WIDTH) n = RED_TREE_MAX_WIDTH;
    if (n < 2) return RED_OK;
    t->worker_pools = calloc((size_t)n, sizeof *t->worker_pools);
    t->worker_st = calloc((size_t)n, sizeof *t->worker_st);
    if (!t->worker_pools || !t->worker_st) return red_error_set(err, RED_E_NOMEM, "%s: out of memory for workers", what);
    t->n_pools = n;
    for (i = 0; i < n; i++)
        if (!(t->worker_pools[i] = red_pool_create(1)))
            return red_error_set(err, RED_E_NOMEM, "%s: out of memory for workers", what);
    t->worker = worker;
    t->what = what;
    t->width = n;
    return RED_OK;
}

/* The tree over leaves g[lo..hi) computed at once, added in place: the same
 * additions in the same order as subtree's, so the same bits. */
static float *group_sum(red_pool *pool, float **g, int lo, int hi, size_t n) {
    int mid = lo + (hi - lo + 1) / 2;
    float *left;
    if (hi - lo == 1) return g[lo];
    left = group_sum(pool, g, lo, mid, n);
    red_vec_add_par(pool, left, left, group_sum(pool, g, mid, hi, n), n);
    return left;
}

/* The sum of sequences [lo, hi) into slab[depth]: left half in place, right
 * half one level deeper (a right leaf is added straight from the model); a
 * range of at most t->width sequences runs at once on the workers. */
static red_status subtree(tree_walk *w, int lo, int hi, int depth) {
    red_grad_tree *t = w->t;
    float *out = depth < 32 ? tree_slab(t, depth) : NULL;
    const float *g;
    int mid = lo + (hi - lo + 1) / 2;
    red_status st;
    if (!out) return red_error_set(w->err, RED_E_NOMEM, "out of memory for a gradient slab (%zu floats)", t->n);
    if (t->width && hi - lo > 1 && hi - lo <= t->width) {
        float *group[RED_TREE_MAX_WIDTH];
        if ((st = run_workers(w, lo, hi, group))) return st;
        memcpy(out, group_sum(w->pool, group, 0, hi - lo, t->n), t->n * sizeof(float));
        return RED_OK;
    }
    if (hi - lo == 1) {
        if ((st = w->leaf(w->ctx, lo, out, &g, w->err))) return st;
        if (g != out) memcpy(out, g, t->n * sizeof(float));
        return RED_OK;
    }
    if ((st = subtree(w, lo, mid, depth))) return st;
    if (hi - mid == 1) {
        if ((st = w->leaf(w->ctx, mid, NULL, &g, w->err))) return st;
    } else {
        if ((st = subtree(w, mid, hi, depth + 1))) return st;
        g = t->slab[depth + 1];
    }
    red_vec_add_par(w->pool, out, out, g, t->n);
    return RED_OK;
}

red_status red_grad_tree_run(red_grad_tree *t, red_pool *pool, int B, int rank, int ranks, size_t n,
                             red_seq_grad_fn leaf, void *ctx, float *out, red_error *err) {
    tree_walk w;
    const float *g;
    int first = 0, count = 0;
    red_status st;
    if ((st = red_batch_share(B, rank, ranks, &first, &count, err))) return st;
    if (t->n != n) {  /* slabs of another size: freed; the workers stay */
        slabs_free(t);
        t->n = n;
    }
    w.t = t; w.pool = pool; w.leaf = leaf; w.ctx = ctx; w.err = err;
    if (count == 1) {  /* one leaf: no slab */
        if ((st = leaf(ctx, first, out, &g, err))) return st;
        if (g != out) memcpy(out, g, n * sizeof(float));
    } else {
        if ((st = subtree(&w, first, first + count, 0))) return st;
        memcpy(out, t->slab[0], n * sizeof(float));
    }
    if (ranks == 1) return RED_OK;
    if (!t->scratch && !(t->scratch = red_malloc_aligned((n / 2 + 1) * sizeof(float))))
        return red_error_set(err, RED_E_NOMEM, "out of memory for the gradient exchange (%zu floats)", n / 2 + 1);
    return red_dist_tree_sum(pool, out, n, t->scratch, err);
}

void red_grad_tree_free(red_grad_tree *t) {
    int i;
    slabs_free(t);
    for (i = 0; i < t->n_pools; i++)
        if (t->worker_pools[i]) red_pool_destroy(t->worker_pools[i]);
    free(t->worker_pools);
    free(t->worker_st);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ the loop */

red_status red_loop_run(const red_loop_opts *o, red_train_data *data, const red_loop_hooks *h, void *ctx,
                        red_error *err) {
    red_loop_pos pos;
    red_loop_step r;
    red_lr_sched sched;
    red_adamw_cfg opt;
    uint64_t total;
    int *in = NULL, *tgt = NULL, first = 0, count = 0, stop;
    /* rank 0 of several logs, evaluates and writes; every rank reads a resume */
    int rank = o->single ? 0 : red_dist_rank(), ranks = o->single ? 1 : red_dist_size();
    red_status st = RED_OK;
    total = o->tokens / ((uint64_t)o->batch * o->seq);
    if (total < 1) return red_error_set(err, RED_E_ARG, "%s: --tokens is less than one batch (%d x %d)", h->name, o->batch, o->seq);
    in = malloc(sizeof(int) * (size_t)o->batch * o->seq);
    tgt = malloc(sizeof(int) * (size_t)o->batch * o->seq);
    if (!in || !tgt) {
        st = red_error_set(err, RED_E_NOMEM, "%s: out of memory", h->name);
        goto out;
    }
    memset(&pos, 0, sizeof pos);
    if ((st = red_batch_share(o->batch, rank, ranks, &first, &count, err))) goto out;
    if (o->resume && (st = h->load(ctx, &pos, err))) goto out;
    sched.kind = o->schedule;
    sched.lr = o->lr;
    sched.warmup = (int64_t)o->warmup_steps;
    sched.total = (int64_t)total;
    sched.min_lr = o->min_lr;
    opt.lr = o->lr; opt.beta1 = o->beta1; opt.beta2 = o->beta2; opt.eps = 1e-8f; opt.weight_decay = o->weight_decay;
    while (pos.step < total && !(o->stop_after && pos.step >= o->stop_after)) {
        if ((st = red_train_data_batch(data, o->seed, &pos.epoch, &pos.offset, o->batch, o->seq, in, tgt, err))) goto out;
        opt.lr = red_lr_at(&sched, (int64_t)pos.step);
        memset(&r, 0, sizeof r);
        r.rank = rank;
        r.ranks = ranks;
        if ((st = h->step(ctx, in, tgt, &opt, o->clip, &r, err))) goto out;
        pos.step++;
        r.step = pos.step;
        r.total_steps = total;
        r.epoch = pos.epoch;
        r.lr = opt.lr;
        if (!isfinite(r.loss) || !isfinite(r.grad_norm)) {  /* the last checkpoint stays the last good one */
            st = red_error_set(err, RED_E_NOCONV, "%s: %s is %g at step %llu (lower --lr?)", h->name,
                               isfinite(r.loss) ? "gradient norm" : "loss", isfinite(r.loss) ? r.grad_norm : r.loss,
                               (unsigned long long)pos.step);
            goto out;
        }
        if (rank == 0 && h->after_step && (st = h->after_step(ctx, &r, err))) goto out;
        if ((o->save_every && pos.step % o->save_every == 0) || pos.step == total) {
            if (rank == 0 && (st = h->save(ctx, &pos, err))) goto out;
            if (ranks > 1 && (st = red_dist_barrier(err))) goto out;  /* a resume after this finds the checkpoint */
        }
        if (rank == 0 && h->progress) h->progress(ctx, &r);
        stop = o->stop && *o->stop;
        if (ranks > 1 && (st = red_dist_bcast(&stop, sizeof stop, 0, err))) goto out;  /* rank 0's signal stops all */
        if (stop) {
            if (rank) {
                st = red_error_set(err, RED_E_INTERRUPTED, "%s: interrupted after step %llu", h->name,
                                   (unsigned long long)pos.step);
                goto out;
            }  /* asked to stop: a checkpoint of this very step, then out */
            if ((o->save_every && pos.step % o->save_every == 0) || pos.step == total || (st = h->save(ctx, &pos, err)) == RED_OK)
                st = red_error_set(err, RED_E_INTERRUPTED, "%s: interrupted after step %llu of %llu; checkpoint in %s "
                                   "(run again with --resume to continue)", h->name, (unsigned long long)pos.step,
                                   (unsigned long long)total, o->out);
            goto out;
        }
    }
out:
    free(in);
    free(tgt);
    return st;
}
