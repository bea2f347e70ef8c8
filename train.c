/* train.c - training a model from scratch: the shared loop of optim.c with
 * a cross-entropy step, held-out evaluation, and checkpoints (config.json,
 * model.safetensors, the tokenizer, train_state.bin) that resume
 * bit-identically. The data stream is data.c's.
 *
 * train_state.bin holds AdamW's m and v (the weights are model.safetensors,
 * written first) and a resume record: the loop options, the model shape and
 * the data fingerprint, so a resume with other settings is refused.
 */
#include "red_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const red_train_opts *o;
    red_model *m;
    const red_tokenizer *tok;
    red_train_data *eval_data;
    int *ev_in, *ev_tgt;      /* held-out batch scratch */
    float eval_loss;          /* of this step, NaN when not measured */
    red_sbuf record;
    red_batch_grad grad;      /* the step's gradient */
} train_run;

static void train_record(train_run *t, red_train_data *data) {
    const red_config *c = &t->m->cfg;
    red_sbuf_init(&t->record);
    red_sbuf_printf(&t->record, "kind=train\nmodel=%s dim %d layers %d heads %d/%d head_dim %d ffn %d vocab %d\n",
                    red_arch_name(c->arch), c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn, c->vocab);
    red_loop_record(&t->o->loop, data, &t->record);
}

static red_status train_save(void *ctx, const red_loop_pos *pos, red_error *err) {
    train_run *t = ctx;
    red_model *m = t->m;
    const char *out = t->o->loop.out;
    red_state_array arr[2];
    red_loop_pos p = *pos;
    char path[2048];
    red_status st;
    if ((st = red_make_dir(out, err))) return st;
    /* weights first, state last: a state file always describes saved weights
     * of the same or a later step */
    if ((st = red_model_save(m, out, RED_DT_F32, err)) || (st = red_tokenizer_save(t->tok, out, err))) return st;
    arr[0].p = m->adam_m; arr[0].n = m->n_params; arr[0].name = "adam_m";
    arr[1].p = m->adam_v; arr[1].n = m->n_params; arr[1].name = "adam_v";
    p.adam_t = (uint64_t)m->adam_t;
    snprintf(path, sizeof path, "%s/train_state.bin", out);
    return red_state_save(path, "REDTRAIN", &p, t->record.p, arr, 2, err);
}

static red_status train_load(void *ctx, red_loop_pos *pos, red_error *err) {
    train_run *t = ctx;
    red_model *m = t->m;
    red_state_array arr[2];
    char path[2048];
    red_status st;
    arr[0].p = m->adam_m; arr[0].n = m->n_params; arr[0].name = "adam_m";
    arr[1].p = m->adam_v; arr[1].n = m->n_params; arr[1].name = "adam_v";
    snprintf(path, sizeof path, "%s/train_state.bin", t->o->loop.out);
    if ((st = red_state_load(path, "REDTRAIN", t->record.p, pos, arr, 2, err))) return st;
    m->adam_t = (int64_t)pos->adam_t;
    return RED_OK;
}

/* ------------------------------------------------------------------ the batch gradient */

static red_status worker_grad(void *ctx, int worker, int seq, float **grad);

/* With several threads and sequences, each thread runs whole sequences on a
 * worker (the model's weights, its own one-thread pool, run state and
 * gradient): a sequence is too little work to split over threads well, and
 * every op gives the same bits on one thread as on many. */
red_status red_batch_grad_alloc(red_batch_grad *g, red_model *m, int B, int T, red_error *err) {
    int w;
    red_status st;
    memset(g, 0, sizeof *g);
    g->m = m;
    g->B = B;
    g->T = T;
    if (!(g->seq_loss = malloc(sizeof(double) * (size_t)B)))
        return red_error_set(err, RED_E_NOMEM, "train: out of memory");
    if ((st = red_grad_tree_workers(&g->tree, m->pool, B, worker_grad, "train", err)) || !g->tree.width) return st;
    if (!(g->workers = calloc((size_t)g->tree.width, sizeof *g->workers)))  /* zeroed: each one safe to free */
        return red_error_set(err, RED_E_NOMEM, "train: out of memory");
    g->n_workers = g->tree.width;
    for (w = 0; w < g->n_workers; w++)
        if ((st = red_model_share(&g->workers[w], m, g->tree.worker_pools[w], err)) ||
            (st = red_model_run_alloc(&g->workers[w], 1, T, RED_RUN_BACKWARD, err)))
            return st;
    return RED_OK;
}

void red_batch_grad_free(red_batch_grad *g) {
    int w;
    for (w = 0; w < g->n_workers; w++) red_model_free(&g->workers[w]);
    free(g->workers);
    red_weight_pack_free(&g->pack);
    free(g->seq_loss);
    red_grad_tree_free(&g->tree);  /* after the workers: it holds their pools */
    memset(g, 0, sizeof *g);
}

/* One sequence's gradient of the batch loss (its targets over the batch's
 * count) in model m's gradient slab. */
static red_status sequence_grad(red_batch_grad *g, red_model *m, int seq) {
    size_t T = (size_t)g->T;
    red_status st;
    if ((st = red_model_forward(m, g->in + seq * T, 1, (int)T))) return st;
    red_model_zero_grad(m);
    g->seq_loss[seq] = red_model_ce_sum(m, g->tgt + seq * T, 1, g->count, 0.0);
    return red_model_backward(m);
}

/* With dst, the model's gradient slab is dst for the sequence (backward
 * writes every element), which saves copying it there after. */
static red_status batch_leaf(void *ctx, int seq, float *dst, const float **grad, red_error *err) {
    red_batch_grad *g = ctx;
    float *own = g->m->grads;
    red_status st;
    if (dst) red_model_bind_grads(g->m, dst);
    st = sequence_grad(g, g->m, seq);
    *grad = g->m->grads;
    if (dst) red_model_bind_grads(g->m, own);
    if (st) return red_error_set(err, st, "train: the step of sequence %d failed (%s)", seq, red_status_name(st));
    return RED_OK;
}

static red_status worker_grad(void *ctx, int worker, int seq, float **grad) {
    red_batch_grad *g = ctx;
    *grad = g->workers[worker].grads;
    return sequence_grad(g, &g->workers[worker], seq);
}

/* The batch gradient is optim.c's tree over sequences, the loss the sum of
 * the sequences' in order: neither depends on how many ranks made them. */
red_status red_batch_grad_run(red_batch_grad *g, const int *in, const int *tgt, int rank, int ranks, float *loss,
                              red_error *err) {
    red_model *m = g->m;
    size_t n = (size_t)g->B * g->T, i;
    double sum = 0.0;
    int b, w;
    red_status st;
    g->in = in;
    g->tgt = tgt;
    for (g->count = 0, i = 0; i < n; i++) g->count += tgt[i] >= 0;
    memset(g->seq_loss, 0, (size_t)g->B * sizeof(double));
    /* the weights, fixed for the batch, packed once for all its sequences */
    if (g->B > 1 && (st = red_weight_pack_fill(&g->pack, m, err))) return st;
    m->wpack = &g->pack;
    for (w = 0; w < g->n_workers; w++) g->workers[w].wpack = &g->pack;
    st = red_grad_tree_run(&g->tree, m->pool, g->B, rank, ranks, m->n_params, batch_leaf, g, m->grads, err);
    m->wpack = NULL;
    for (w = 0; w < g->n_workers; w++) g->workers[w].wpack = NULL;
    if (st || (ranks > 1 && (st = red_dist_gather_f64(g->seq_loss, (size_t)g->B, err)))) return st;
    for (b = 0; b < g->B; b++) sum += g->seq_loss[b];
    *loss = g->count ? (float)(sum / g->count) : 0.0f;
    return RED_OK;
}

/* ------------------------------------------------------------------ the trainer */

static red_status train_step(void *ctx, const int *in, const int *tgt, const red_adamw_cfg *opt, double clip,
                             red_loop_step *r, red_error *err) {
    train_run *t = ctx;
    red_model *m = t->m;
    red_status st;
    if ((st = red_batch_grad_run(&t->grad, in, tgt, r->rank, r->ranks, &r->loss, err))) return st;
    r->grad_norm = red_clip_grad_norm(m->pool, m->grads, m->n_params, clip);
    red_model_adamw(m, opt);
    return RED_OK;
}

/* Mean cross-entropy over a fixed held-out set of rows, a sequence at a time
 * (the run state holds one), summed in row order: the same bits as one
 * forward over the batch. */
static red_status train_after_step(void *ctx, const red_loop_step *r, red_error *err) {
    train_run *t = ctx;
    const red_train_opts *o = t->o;
    uint64_t e = 0, off = 0;
    double sum = 0.0;
    red_status st;
    int k;
    t->eval_loss = NAN;
    if (!t->eval_data || !o->eval_every || (r->step % o->eval_every && r->step != r->total_steps)) return RED_OK;
    for (k = 0; k < o->eval_batches; k++) {
        const size_t T = (size_t)o->loop.seq, n = (size_t)o->loop.batch * T;
        double batch_sum = 0.0;
        int64_t count = 0;
        size_t i;
        int b;
        if ((st = red_train_data_batch(t->eval_data, 0, &e, &off, o->loop.batch, o->loop.seq, t->ev_in, t->ev_tgt, err)))
            return st;
        for (i = 0; i < n; i++) count += t->ev_tgt[i] >= 0;
        for (b = 0; b < o->loop.batch; b++) {
            if ((st = red_model_forward(t->m, t->ev_in + b * T, 1, o->loop.seq)))
                return red_error_set(err, st, "train: held-out forward failed (%s)", red_status_name(st));
            batch_sum = red_model_ce_sum(t->m, t->ev_tgt + b * T, 0, count, batch_sum);
        }
        sum += count ? (float)(batch_sum / count) : 0.0f;
    }
    t->eval_loss = (float)(sum / o->eval_batches);
    return RED_OK;
}

static void train_progress(void *ctx, const red_loop_step *r) {
    train_run *t = ctx;
    red_train_progress pr;
    if (!t->o->progress) return;
    pr.step = r->step;
    pr.total_steps = r->total_steps;
    pr.epoch = r->epoch;
    pr.loss = r->loss;
    pr.lr = r->lr;
    pr.eval_loss = t->eval_loss;
    pr.grad_norm = r->grad_norm;
    t->o->progress(t->o->progress_ctx, &pr);
}

red_status red_train(const red_train_opts *o, red_model *m, const red_tokenizer *tok, red_train_data *data,
                     red_train_data *eval_data, red_error *err) {
    static const red_loop_hooks hooks = {"train", train_step, train_after_step, train_save, train_load, train_progress};
    const red_loop_opts *lo = &o->loop;
    train_run t;
    red_status st;
    if (lo->batch < 1 || lo->seq < 2 || lo->seq > m->cfg.max_pos)
        return red_error_set(err, RED_E_ARG, "train: batch >= 1 and 2 <= seq <= max_position_embeddings (%d)", m->cfg.max_pos);
    if (red_tokenizer_vocab(tok) > m->cfg.vocab)  /* ids past the logits would be read and written as targets */
        return red_error_set(err, RED_E_ARG, "train: the tokenizer has %d ids, the model's vocabulary only %d",
                             red_tokenizer_vocab(tok), m->cfg.vocab);
    /* every check that needs no memory comes before the activations (B x T
     * rows and B x H x T x T attention probabilities: 276 GB at B 4, T 65536) */
    if (lo->tokens / ((uint64_t)lo->batch * lo->seq) < 1)
        return red_error_set(err, RED_E_ARG, "train: --tokens is less than one batch (%d x %d)", lo->batch, lo->seq);
    if (data->n_tok < (size_t)lo->seq + 1 || (eval_data && eval_data->n_tok < (size_t)lo->seq + 1))
        return red_error_set(err, RED_E_ARG, "train: the %sdata has %zu tokens, fewer than one sequence of %d",
                             data->n_tok < (size_t)lo->seq + 1 ? "" : "eval ",
                             data->n_tok < (size_t)lo->seq + 1 ? data->n_tok : eval_data->n_tok, lo->seq + 1);
    /* one sequence of run state: the step runs a sequence at a time */
    if ((st = red_model_run_alloc(m, 1, lo->seq, RED_RUN_BACKWARD | RED_RUN_ADAM, err))) return st;
    memset(&t, 0, sizeof t);
    t.o = o;
    t.m = m;
    t.tok = tok;
    t.eval_data = eval_data;
    if (eval_data) {  /* held-out batches get their own rows, so a step's batch is never overwritten */
        t.ev_in = malloc(sizeof(int) * (size_t)lo->batch * lo->seq);
        t.ev_tgt = malloc(sizeof(int) * (size_t)lo->batch * lo->seq);
    }
    train_record(&t, data);
    if ((st = red_batch_grad_alloc(&t.grad, m, lo->batch, lo->seq, err)))
        ;
    else if ((eval_data && (!t.ev_in || !t.ev_tgt)) || t.record.failed)
        st = red_error_set(err, RED_E_NOMEM, "train: out of memory");
    else
        st = red_loop_run(lo, data, &hooks, &t, err);
    free(t.ev_in);
    free(t.ev_tgt);
    red_batch_grad_free(&t.grad);
    red_sbuf_free(&t.record);
    return st;
}
