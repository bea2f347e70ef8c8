/* red_internal.h - what the library's modules share beyond the public API,
 * and the hooks the tests and fuzz harnesses reach: the model's op
 * forward/backward pairs, the scalar reference kernels the SIMD paths are
 * tested against, in-memory parsers behind the file loaders, the GGUF
 * container, and the app entry points of bench/. Grouped by module like
 * red.h; nothing here is a stable interface.
 */
#ifndef RED_INTERNAL_H
#define RED_INTERNAL_H

#include "red.h"

/* ------------------------------------------------------------------ red.c */

/* A NUL-terminated copy of the first n bytes of s; NULL when out of memory. */
char *red_strndup(const char *s, size_t n);

/* ------------------------------------------------------------------ tensor.c */

/* Arena: one block, bump allocation, 64-byte aligned; reset to a mark.
 * Size it before the hot loop; red_arena_alloc never calls malloc. */
typedef struct {
    unsigned char *base;
    size_t cap;   /* bytes */
    size_t used;  /* bytes */
} red_arena;

red_status red_arena_reserve(red_arena *a, size_t cap_bytes);
void *red_arena_alloc(red_arena *a, size_t bytes);  /* NULL when exhausted */
size_t red_arena_mark(const red_arena *a);
void red_arena_reset(red_arena *a, size_t mark);
void red_arena_free(red_arena *a);

/* Shape check + allocation from an arena (data NULL and RED_E_NOMEM if full). */
red_status red_tensor_arena(red_tensor *t, red_arena *a, int ndim, const int64_t *shape);

uint64_t red_rng_u64(red_rng *r);
float red_rng_uniformf(red_rng *r);            /* [0, 1), 24 bits */
/* Natural log from IEEE basic operations only (correctly rounded +,-,*,/), so
 * it is the same on every platform; error < 2 ulp. x <= 0 gives -inf/NaN. */
double red_log(double x);

void red_vec_mul(float *y, const float *a, const float *b, size_t n); /* y = a * b  */
float red_vec_sum(const float *x, size_t n);
float red_vec_sumsq(const float *x, size_t n);
/* The scalar versions, always built: the reference the SIMD paths are tested against. */
float red_vec_dot_scalar(const float *a, const float *b, size_t n);
float red_vec_sum_scalar(const float *x, size_t n);
float red_vec_sumsq_scalar(const float *x, size_t n);
void red_vec_axpy_scalar(float *y, float a, const float *x, size_t n);
/* exp in float, <= 2 ulp, the same bits on every SIMD path and thread count
 * (tensor.c states the algorithm and the values outside [-87.3, 88.7]). */
float red_expf(float x);
void red_vec_exp(float *y, const float *x, size_t n);           /* y = exp(x), y == x allowed */
double red_vec_sum_exp(const float *x, float shift, size_t n);  /* sum exp(x - shift), index order */

/* ------------------------------------------------------------------ linalg.c */

/* red_sgemm's contract, portable scalar micro-kernel (always built; tests/bench). */
red_status red_sgemm_scalar(red_pool *pool, red_trans trans, int m, int n, int k,
                            float alpha, const float *A, int lda, const float *B, int ldb,
                            float beta, float *C, int ldc);
/* red_sgemm's contract on the calling thread only, packing into `scratch`
 * (RED_POOL_SCRATCH_BYTES, e.g. red_pool_scratch(pool, ith) inside a pool
 * task): for many small independent products run in parallel. */
red_status red_sgemm_serial(void *scratch, red_trans trans, int m, int n, int k, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta,
                            float *C, int ldc);
/* red_sgemm's k block (KC): each output element sums k in blocks of this
 * many, block by block, so a GEMM over k rows split at multiples of it and
 * accumulated with beta 1 gives the same bits as one call. */
int red_sgemm_k_block(void);
/* Effective rank (Roy & Vetterli 2007): p_j = s_j / sum s, exp(-sum p ln p).
 * Zero singular values contribute nothing; all-zero gives 0. */
double red_erank_from_sv(const float *s, int k);

/* ------------------------------------------------------------------ json.c */

/* red_jsonl_read, and *lines (may be NULL; free it) gets each item's 1-based
 * line number, so readers that check the items' fields say FILE:LINE. */
red_status red_jsonl_read_lines(const char *path, red_json ***items, size_t *n, size_t **lines, red_error *err);

/* ------------------------------------------------------------------ io.c */

/* Parses an in-memory file image (name is used in messages). */
red_status red_npy_parse(const unsigned char *buf, size_t len, const char *name,
                         red_tensor *t, red_error *err);
red_status red_npy_parse_ids(const unsigned char *buf, size_t len, const char *name, int64_t **ids, int64_t *n,
                             red_error *err);

/* ------------------------------------------------------------------ model.c */

/* Fills tab[0..red_param_tensors-1]. */
void red_param_table(const red_config *c, red_param *tab);

/* The ops, as <op>_forward / <op>_backward pairs (model.c). Backward adds
 * into parameter gradients; input gradients are added (rmsnorm, embed) or
 * written (linear with din_beta 0, rope in place, attention dq, swiglu), as
 * each comment says. pool is required by linear and attention (GEMM); the
 * elementwise ops accept NULL and then run on the calling thread. */
void red_embed_forward(red_pool *pool, float *out, const int *tok, const float *E, int64_t N, int D);
void red_embed_backward(red_pool *pool, float *dE, const float *dout, const int *tok, int64_t N, int D,
                        int V);
/* out = x * rstd * w; rstd[N] saved for backward. dx += ..., dw += ... */
void red_rmsnorm_forward(red_pool *pool, float *out, float *rstd, const float *x, const float *w,
                         int64_t N, int D, float eps);
void red_rmsnorm_backward(red_pool *pool, float *dx, float *dw, const float *dout, const float *x,
                          const float *w, const float *rstd, int64_t N, int D);
/* out[N,O] = in[N,I] Wᵀ (+ b);  din = din_beta*din + dout W (din may be
 * NULL), dW = dw_beta*dW + doutᵀ in, db += colsum(dout). */
void red_linear_forward(red_pool *pool, float *out, const float *in, const float *W, const float *b,
                        int64_t N, int O, int I);
void red_linear_backward(red_pool *pool, float *din, float *dW, float *db, const float *dout,
                         const float *in, const float *W, int64_t N, int O, int I, float din_beta, float dw_beta);
/* RoPE, rotate_half convention. inv[HD/2] effective inverse frequencies
 * (llama3 scaling applied); table cs[rows, HD] = cos | sin of pos*inv. Row n
 * of x uses table row n % T. Backward rotates the gradient back, in place. */
void red_rope_table(float *cs, const float *inv, int half, int rows, const int *pos);
void red_rope_forward(red_pool *pool, float *x, const float *cs, int64_t N, int T, int heads, int HD);
void red_rope_backward(red_pool *pool, float *dx, const float *cs, int64_t N, int T, int heads, int HD);
/* A weight of m (a pointer into its parameter slab) as m->wpack packed it for
 * red_sgemm_nt_packed, or NULL (no pack set, or too large to pack). */
const float *red_model_packed_weight(const red_model *m, const float *W);
/* out [N, O] = in [N, I] Wᵀ, W [O, I] one of m's weights: the product its
 * forward runs (packed or not, GEMV for few rows), bit for bit. */
void red_model_linear(red_pool *pool, const red_model *m, float *out, const float *in, const float *W, int64_t N,
                      int O, int I);
/* Causal GQA attention over B sequences of T: q [B*T, H*HD], k, v [B*T, KV*HD],
 * out [B*T, H*HD]. With pkeep ([B*H, T, T]) forward keeps the probabilities
 * there and backward reads them; with pkeep NULL backward recomputes them
 * chunk by chunk, bit-identical to forward's. Backward writes dq, adds into
 * dk, dv. pscratch and dscratch each hold red_pool_size(pool) *
 * red_attention_scratch_floats(T, HD) floats. */
#define RED_ATT_CHUNK 64
size_t red_attention_scratch_floats(int T, int HD);
void red_attention_forward(red_pool *pool, float *out, float *pscratch, float *pkeep, const float *q,
                           const float *k, const float *v, int B, int T, int H, int KV, int HD);
void red_attention_backward(red_pool *pool, float *dq, float *dk, float *dv, float *dscratch,
                            const float *dout, float *pscratch, float *pkeep, const float *q, const float *k,
                            const float *v, int B, int T, int H, int KV, int HD);
/* act = silu(g) * u; backward writes dg, du. */
void red_swiglu_forward(red_pool *pool, float *act, const float *g, const float *u, int64_t n);
void red_swiglu_backward(red_pool *pool, float *dg, float *du, const float *dact, const float *g,
                         const float *u, int64_t n);

/* Cross-entropy of rows logits [rows, V] against targets [rows] (< 0:
 * ignored, loss 0): row_loss[n] = logsumexp - target logit; dlogits (when
 * non-NULL) = (softmax - onehot) * inv_count, 0 for ignored rows. */
void red_cross_entropy_rows(red_pool *pool, double *row_loss, float *dlogits, const float *logits,
                            const int *targets, int64_t rows, int V, float inv_count);

/* After backward: d(loss)/d(input embeddings) [N, D], the gradient that
 * flows into the embedding table (the distiller chains it into its own
 * embedding projection). */
const float *red_model_dinput(const red_model *m);

/* ------------------------------------------------------------------ hfdir.c */

red_status red_st_parse(red_safetensors *st, unsigned char *file, size_t len, const char *name,
                        red_error *err);  /* takes ownership of file */
const red_st_entry *red_st_find(const red_safetensors *st, const char *name);
/* Converts F32/F16/BF16 data of e to floats (numel of them). */
red_status red_st_read_f32(const red_safetensors *st, const red_st_entry *e, float *out,
                           red_error *err);

/* One tensor to write. */
typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[4];
} red_st_tensor;
/* Writes atomically with dtype F32, F16 or BF16 (round to nearest even),
 * header padded to 8 bytes, tensors in the given order, {"format":"pt"}. */
red_status red_st_save(const char *path, const red_st_tensor *t, int n, red_dtype dtype,
                       red_error *err);

/* config.json parsed (name for messages) / written. */
red_status red_config_from_json(red_config *c, const red_json *j, const char *name, red_error *err);
void red_config_to_json(const red_config *c, red_sbuf *b);  /* appends */
/* Reads DIR/config.json. */
red_status red_config_load(red_config *c, const char *dir, red_error *err);

/* ------------------------------------------------------------------ model files: gguf.c, llama2c.c */

/* llama2.c: parse an in-memory file (name for messages); Q/K rows are
 * converted from interleaved RoPE pairs to red's rotate-half order. */
red_status red_llama2c_parse(red_model *m, const unsigned char *buf, size_t len, const char *name, red_pool *pool,
                             red_error *err);

/* GGUF v3 (v2 read too). Value types and ggml tensor types by their ids. */
enum {
    RED_GGUF_U8 = 0, RED_GGUF_I8, RED_GGUF_U16, RED_GGUF_I16, RED_GGUF_U32, RED_GGUF_I32, RED_GGUF_F32,
    RED_GGUF_BOOL, RED_GGUF_STRING, RED_GGUF_ARRAY, RED_GGUF_U64, RED_GGUF_I64, RED_GGUF_F64
};
enum { RED_GGML_F32 = 0, RED_GGML_F16 = 1, RED_GGML_Q8_0 = 8, RED_GGML_BF16 = 30 };

typedef struct {
    char *key;
    uint32_t type;       /* RED_GGUF_* */
    uint32_t elem_type;  /* ARRAY: element type */
    uint64_t n;          /* ARRAY: element count; STRING: byte length */
    uint64_t at;         /* file offset of the value (ARRAY: of its first element) */
    union { uint64_t u; int64_t i; double f; } v;  /* scalars; BOOL in u */
    char *str;           /* STRING: NUL-terminated copy */
    uint64_t *elem_at;   /* ARRAY of STRING: file offset of each element's length field */
} red_gguf_kv;

typedef struct {
    char *name;
    int n_dims;
    uint64_t ne[4];      /* ggml order: ne[0] is the contiguous axis (reversed PyTorch shape) */
    uint32_t type;       /* ggml type id */
    uint64_t offset;     /* from data_start */
    uint64_t nbytes;
} red_gguf_tensor;

typedef struct {
    unsigned char *file;
    size_t len;
    char path[1024];
    uint32_t version;
    uint64_t n_kv, n_tensors, alignment, data_start;
    red_gguf_kv *kv;
    red_gguf_tensor *t;
    uint64_t *kv_slot, *t_slot;  /* hash indexes of keys and tensor names (entry + 1, 0 empty) */
    uint64_t kv_mask, t_mask;
} red_gguf;

/* Validates everything a reader relies on (counts against the file size,
 * strings, types, dims, alignment, offsets in order, inside the file);
 * errors name the file, the byte offset and the expectation. parse takes
 * ownership of file. */
red_status red_gguf_parse(red_gguf *g, unsigned char *file, size_t len, const char *name, red_error *err);
red_status red_gguf_open(red_gguf *g, const char *path, red_error *err);
void red_gguf_close(red_gguf *g);
const red_gguf_kv *red_gguf_find(const red_gguf *g, const char *key);
const red_gguf_tensor *red_gguf_find_tensor(const red_gguf *g, const char *name);
/* Integer (any integer type or bool) / number / string value of a key:
 * 1 found with that kind, 0 absent, -1 present with another type. */
int red_gguf_get_int(const red_gguf *g, const char *key, int64_t *out);
int red_gguf_get_float(const red_gguf *g, const char *key, double *out);
const char *red_gguf_get_str(const red_gguf *g, const char *key);
/* Element i of an ARRAY kv: strings (pointer into the file, not
 * NUL-terminated), numbers as double. */
const char *red_gguf_arr_str(const red_gguf *g, const red_gguf_kv *kv, uint64_t i, uint64_t *len);
double red_gguf_arr_num(const red_gguf *g, const red_gguf_kv *kv, uint64_t i);
/* A tensor's values as floats (F32, F16, BF16, Q8_0 dequantised). */
red_status red_gguf_tensor_f32(const red_gguf *g, const red_gguf_tensor *t, float *out, red_error *err);

/* Writer: metadata and tensors in the order added, data aligned to 32. */
typedef struct {
    red_sbuf kv, info;   /* encoded metadata / tensor infos */
    uint64_t n_kv, n_tensors, data_bytes;
    struct red_gguf_wtensor *t;
    size_t cap;
} red_gguf_writer;
void red_gguf_w_init(red_gguf_writer *w);
void red_gguf_w_free(red_gguf_writer *w);
void red_gguf_w_u32(red_gguf_writer *w, const char *key, uint32_t v);
void red_gguf_w_str(red_gguf_writer *w, const char *key, const char *s);
/* A tensor of type F32/F16/BF16/Q8_0 from floats (ne in ggml order); data
 * is copied when copy != 0, else it must live until red_gguf_w_write. */
red_status red_gguf_w_tensor(red_gguf_writer *w, const char *name, int n_dims, const uint64_t *ne, uint32_t type,
                             const float *data, int copy, red_error *err);
red_status red_gguf_w_write(red_gguf_writer *w, const char *path, red_error *err);

/* A red model in llama.cpp's layout and names (llama: Q/K rows permuted to
 * interleaved pairs; qwen2: as is). dtype applies to matrices; norms and
 * biases are F32, as llama.cpp's converter writes them. */
red_status red_gguf_model_load(red_model *m, const red_gguf *g, red_pool *pool, red_error *err);
/* tok (may be NULL) is embedded as tokenizer.ggml.* (red_tokenizer_to_vocab). */
red_status red_gguf_model_save(const red_model *m, const struct red_tokenizer *tok, const char *path,
                               red_dtype dtype, red_error *err);
/* The tokenizer a GGUF carries (tokenizer.ggml.*, via red_tokenizer_from_vocab). */
red_status red_gguf_tokenizer(struct red_tokenizer **out, const red_gguf *g, red_error *err);

/* ------------------------------------------------------------------ tokenizer.c */

/* Merge i: the pair of ids it joins (0 if i is out of range). */
int red_tokenizer_merge(const red_tokenizer *t, int i, int *a, int *b);

/* ------------------------------------------------------------------ optim.c */

typedef struct {
    red_sched_kind kind;
    float lr;             /* peak learning rate */
    int64_t warmup;       /* linear warm-up steps (from lr/warmup to lr) */
    int64_t total;        /* total steps: decay reaches min_lr at total */
    float min_lr;
} red_lr_sched;
/* Learning rate for 0-based step. */
float red_lr_at(const red_lr_sched *s, int64_t step);

/* The batch gradient: per-sequence gradients summed by a fixed pairwise tree
 * over sequence index (a range of n sequences splits after its first
 * ceil(n/2)), whatever the number of ranks. Rank r of `ranks` (a power of two
 * dividing B) computes the subtree of sequences [r B/ranks, (r+1) B/ranks);
 * red_dist_tree_sum joins the subtrees as the tree's top levels. leaf
 * computes sequence seq's gradient and points *grad at it (it may be out:
 * each leaf is consumed before the next); where the tree keeps the gradient
 * it passes dst, and a leaf that can write there directly (saving a copy)
 * does and points *grad at dst. Slabs (at most ceil(log2 B/ranks) gradients)
 * stay in t between steps. out holds the batch gradient after. */
typedef red_status (*red_seq_grad_fn)(void *ctx, int seq, float *dst, const float **grad, red_error *err);
/* Workers (red_grad_tree_workers): with several threads, subtrees of at most
 * `width` sequences run at once, sequence lo + i on worker i's thread and
 * one-thread pool (the caller gives each worker its own run state and
 * gradient on worker_pools[i]); *grad gets the worker's own writable
 * gradient. The additions are the same, in the same order: the same bits. */
#define RED_TREE_MAX_WIDTH 64
typedef red_status (*red_seq_worker_fn)(void *ctx, int worker, int seq, float **grad);
typedef struct {
    size_t n;
    float *slab[32];
    float *scratch;  /* half a gradient, for the exchange between ranks */
    int width;       /* workers (0: one sequence at a time) */
    int n_pools;
    red_pool **worker_pools;  /* [n_pools] one thread each */
    red_status *worker_st;
    red_seq_worker_fn worker;
    const char *what;         /* "train", "distill": for messages */
} red_grad_tree;
/* width = min(pool's threads, B, RED_TREE_MAX_WIDTH) workers when that is at
 * least 2 (else none, and width stays 0). */
red_status red_grad_tree_workers(red_grad_tree *t, red_pool *pool, int B, red_seq_worker_fn worker, const char *what,
                                 red_error *err);
red_status red_grad_tree_run(red_grad_tree *t, red_pool *pool, int B, int rank, int ranks, size_t n,
                             red_seq_grad_fn leaf, void *ctx, float *out, red_error *err);
void red_grad_tree_free(red_grad_tree *t);
/* The ranks' sequences of a global batch B: [*first, *first + *count); an
 * error unless ranks is a power of two dividing B. */
red_status red_batch_share(int B, int rank, int ranks, int *first, int *count, red_error *err);

/* The trainer's batch gradient (train.c): the model's gradient of the mean
 * cross-entropy of a B x T batch as the tree above over its sequences, this
 * rank's share of them (rank 0 of 1 alone); *loss the batch's mean. `red
 * bench train` times the same step. */
typedef struct {
    red_model *m;
    int B, T;
    red_grad_tree tree;
    double *seq_loss;         /* [B] summed cross-entropy per sequence */
    const int *in, *tgt;      /* the step's batch */
    int64_t count;            /* its counted targets */
    int n_workers;            /* tree.width once allocated (0: one sequence at a time) */
    red_model *workers;       /* [n_workers] on m's weights, each its own run state and gradient */
    red_weight_pack pack;     /* m's weights packed at each batch's start */
} red_batch_grad;
red_status red_batch_grad_alloc(red_batch_grad *g, red_model *m, int B, int T, red_error *err);
red_status red_batch_grad_run(red_batch_grad *g, const int *in, const int *tgt, int rank, int ranks, float *loss,
                              red_error *err);
void red_batch_grad_free(red_batch_grad *g);

/* ------------------------------------------------------------------ dist.c */

/* The ranks of a data-parallel run: Open MPI's world with `make MPI=1`
 * (started by mpirun, or one rank without it), else always one rank. */
void red_dist_init(int *argc, char ***argv);
void red_dist_finalize(void);
void red_dist_abort(int code);  /* ends every rank (when there are several) */
int red_dist_rank(void);
int red_dist_size(void);
const char *red_dist_transport(void);  /* "Open MPI" or "none" */
/* x = sum over ranks of x, as a perfect pairwise tree over rank index; every
 * rank gets the same bits. scratch: n/2 + 1 floats. */
red_status red_dist_tree_sum(red_pool *pool, float *x, size_t n, float *scratch, red_error *err);
/* x = sum over ranks, for values each set on one rank only (zeros elsewhere): exact. */
red_status red_dist_gather_f64(double *x, size_t n, red_error *err);
red_status red_dist_bcast(void *p, size_t bytes, int root, red_error *err);
red_status red_dist_barrier(red_error *err);

/* ------------------------------------------------------------------ distill.c */

/* A part of a batch (some of its sequences, as a data-parallel step runs
 * them one at a time): the loss terms of the part's B rows with the whole
 * batch's denominators, so the parts' terms and gradients add up to the
 * batch's. out->ce is the part's summed cross-entropy (not yet divided);
 * red_losses_finish turns summed parts into red_student_loss's values. */
typedef struct {
    int seqs;       /* sequences in the batch */
    int64_t count;  /* its counted targets */
} red_loss_batch;
/* With want_grad the gradient is the merged model's (s->model.grads) with
 * the FFN-out targets' dP_d terms in its tail (red_model_grad_tail), not yet
 * chained into s->grads: red_student_loss and the batch do that. */
red_status red_student_loss_part(red_student *s, const int *tokens, const int *targets, int B, const red_loss_cfg *lc,
                                 int want_grad, const red_loss_batch *whole, red_losses *out);
void red_losses_finish(red_losses *out, int64_t count, float alpha);

/* A distillation step's gradient (as train.c's red_batch_grad): the batch's
 * sequences, this rank's share, each through red_student_loss_part with the
 * whole batch's denominators, their merged-model gradients joined by
 * optim.c's tree and the sum chained into s->grads; out the batch's loss
 * terms. With several threads the sequences run one per
 * thread on workers (views of s with their own gradient and run states).
 * `red bench distill` times the same step. */
typedef struct {
    red_student *s;
    red_loss_cfg loss_cfg;
    red_grad_tree tree;
    double *seq_terms;        /* [B][2 + RED_N_SITES]: each sequence's ce (summed), kl, clone sites */
    const int *in, *tgt;      /* the step's batch */
    red_loss_batch whole;
    int n_workers;            /* tree.width once allocated (0: one sequence at a time) */
    red_student *workers;     /* [n_workers] views of s */
    red_model *worker_teachers;  /* [n_workers] views of the teacher */
    /* the merged student packed at each batch's start; the teacher, frozen,
       at the first batch only (teacher_packed) */
    red_weight_pack teacher_pack, student_pack;
    int teacher_packed;
    int chain_each;           /* each sequence chained into the projections (red_distill_opts) */
    size_t n_leaf;            /* floats of a sequence's gradient: s->n, or the merged model's and its tail */
} red_distill_batch;
red_status red_distill_batch_alloc(red_distill_batch *d, red_student *s, const red_loss_cfg *lc, int chain_each,
                                   red_error *err);
red_status red_distill_batch_run(red_distill_batch *d, const int *in, const int *tgt, int rank, int ranks,
                                 red_losses *out, red_error *err);
void red_distill_batch_free(red_distill_batch *d);

/* The n_proj projections in order (per layer q,k,v,o,gate,up,down; embed; head). */
int red_student_n_proj(const red_student *s);
const float *red_student_proj(const red_student *s, int i, char *name, size_t name_cap);

/* eRank (method.md D) of the residual stream after each block (out[0..L-1])
 * and of the final-norm output (out[L]) over n_rows rows of tokens [n_rows,
 * T] (m needs red_model_train_alloc for B x T with B >= 1). */
red_status red_erank_layers(red_model *m, const int *tokens, int n_rows, int T, int center, double *out,
                            red_error *err);

/* Distils s on data; checkpoints (distill_state.bin: projections, norms,
 * AdamW state, data position) every save_every steps and at the end. log (if
 * non-NULL) gets one JSON object per line for step 1, every log_every steps
 * and the last, each with every loss term; it is kept beside the state as
 * distill_curve.jsonl and reloaded on resume. Same seed, data and threads
 * give bit-identical results, resumed or not. */
red_status red_distill(const red_distill_opts *o, red_student *s, red_train_data *data, red_sbuf *log,
                       red_error *err);

/* ------------------------------------------------------------------ eval/pyrandom.c */

uint64_t red_pyrandom_getrandbits(red_pyrandom *r, int k);   /* 1 <= k <= 64 */
double red_pyrandom_random(red_pyrandom *r);
int64_t red_pyrandom_randbelow(red_pyrandom *r, int64_t n);

/* ------------------------------------------------------------------ eval/gsm8k.c */

/* Filters (append the extracted answer or "[invalid]"):
 * strict `#### (\-?[0-9\.\,]+)` first match; cot strict
 * `The answer is (\-?[0-9\.\,]+).`; flexible `(-?[$0-9.,]{2,})|(-?[0-9]+)` last match. */
void red_gsm8k_extract_strict(const char *s, red_sbuf *out);
void red_gsm8k_extract_cot_strict(const char *s, red_sbuf *out);
void red_gsm8k_extract_flexible(const char *s, red_sbuf *out);
/* regexes_to_ignore (`,` `\$` `(?s).*#### ` `\.$`) then lower-casing. */
void red_gsm8k_normalize(const char *s, red_sbuf *out);
int red_gsm8k_exact_match(const char *pred, const char *gold);

/* ------------------------------------------------------------------ eval/generate.c */

/* Greedy generate_until for n prompts; outs[i] (initialised sbufs) get the
 * completions, cut at the stop strings. Deterministic. */
red_status red_generate_until(red_model *m, const red_tokenizer *tok, const char *const *prompts, int n,
                              const red_gen_opts *o, red_sbuf *outs, red_error *err);

/* GSM8K's calculator (openai/grade-school-math): when text ends inside an
 * annotation as "<<expr=", writes the value of expr (numbers, + - * /,
 * parentheses, usual precedence; integers without a decimal point) and ">>"
 * to out and returns 1; 0 when no annotation is open or expr does not parse. */
int red_gsm8k_calculator(const char *text, size_t len, char *out, size_t cap);

/* ------------------------------------------------------------------ eval/choice.c */

/* lm-eval loglikelihood of n (context, continuation) requests: trailing
 * context whitespace moves to the continuation, the continuation is the
 * joint encoding after the context's own token count, an empty context
 * becomes BOS, the window is the last max_position_embeddings tokens; ll =
 * summed log-probabilities (double), greedy = every token was the argmax. */
red_status red_loglikelihood(red_model *m, const red_tokenizer *tok, const char *const *ctx,
                             const char *const *cont, int n, int add_bos, int batch, double *ll, int *greedy,
                             void (*progress)(void *, int, int), void *pctx, red_error *err);
/* acc prediction (first argmax of ll) and acc_norm prediction (ll divided by
 * the choice's length in code points; = pred for multi-context docs). */
void red_mc_score(const red_mc_doc *d, const double *ll, int *pred, int *pred_norm);

/* ------------------------------------------------------------------ eval/lmeval.c */

/* JSONL text (name for messages), the first `limit` rows (all when limit <= 0). */
red_status red_lm_parse(red_lm_task t, const char *text, size_t len, const char *name, int limit, red_lm_set *s,
                        red_error *err);
void red_lm_summarize(const red_lm_set *s, const int *pred, const int *pred_norm, red_lm_summary *r);

/* ------------------------------------------------------------------ bench/ */

/* `red bench ...`: returns the process exit status. */
int red_bench_main(int argc, char **argv);
/* `red bench tokenize` (bench/bench_tokenize.c). */
int red_bench_tokenize(const char *tok_path, const char *data, int reps);

#endif /* RED_INTERNAL_H */
