/* red.h - the public header of red, grouped by module. What modules share
 * beyond it, and the hooks tests reach, is in red_internal.h.
 *
 * red: Reasoning-preserved Efficient Distillation in freestanding C99.
 * Conventions: row-major storage; a matrix "m x n" has m rows of n floats,
 * element (i,j) at i*ld + j. Linear weights are [out, in] as in PyTorch.
 * The library never exits or prints; it returns a red_status, and functions
 * that can fail for reasons a user must see (files, formats) also fill a
 * red_error with the file, byte offset and what was expected.
 */
#ifndef RED_H
#define RED_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#define RED_VERSION "0.1.0"

/* ------------------------------------------------------------------ red.c: status, errors, names */

typedef enum {
    RED_OK = 0,
    RED_E_ARG,         /* invalid argument (shape, pointer, range)           */
    RED_E_NOMEM,       /* allocation failed or arena exhausted               */
    RED_E_IO,          /* open/read/write/rename failed                      */
    RED_E_FORMAT,      /* malformed or unsupported file contents             */
    RED_E_NOCONV,      /* iterative method hit its iteration cap             */
    RED_E_UNSUPPORTED, /* valid input that this build does not handle (yet)  */
    RED_E_INTERRUPTED  /* stopped on request (a signal); state was saved     */
} red_status;

/* A status with a human-readable message; filled by I/O and parsing code. */
typedef struct {
    red_status code;
    char msg[512];
} red_error;

const char *red_status_name(red_status s);
/* Sets err->code and formats err->msg (printf-style); returns the code.
 * err may be NULL (then only the code is returned); arguments may point into
 * err->msg. */
red_status red_error_set(red_error *err, red_status code, const char *fmt, ...);

/* Enum names for options, logs and reports: rows {name, value} ending with
 * {NULL, 0}; several names may share a value (the first is the canonical one). */
typedef struct {
    const char *name;
    int value;
} red_name;
red_status red_name_find(const red_name *t, const char *name, int *value);  /* RED_E_ARG if absent */
const char *red_name_of(const red_name *t, int value);                      /* "?" if none */

/* ------------------------------------------------------------------ tensor.c */

/* Aligned (64-byte) heap block, freed with red_free_aligned. */
void *red_malloc_aligned(size_t bytes);
void red_free_aligned(void *p);

/* fp32 tensor, up to 4-D, contiguous row-major. */
#define RED_MAX_DIMS 4
typedef struct {
    float *data;
    int ndim;
    int64_t shape[RED_MAX_DIMS];  /* unused trailing entries are 1 */
} red_tensor;

int64_t red_tensor_numel(const red_tensor *t);
/* Heap-backed tensor (aligned); free with red_tensor_free. */
red_status red_tensor_heap(red_tensor *t, int ndim, const int64_t *shape);
void red_tensor_free(red_tensor *t);

/* Thread pool: persistent workers; a task runs as fn(arg, ith, nth) on every
 * thread at once (the caller is ith 0) and red_pool_run returns when all are
 * done. Work is split statically by ith/nth, so results never depend on
 * scheduling. Each thread owns a scratch block (for GEMM packing). */
typedef struct red_pool red_pool;
typedef void (*red_task_fn)(void *arg, int ith, int nth);

#define RED_POOL_SCRATCH_BYTES ((size_t)8 << 20) /* per thread */
/* The scratch is reserved for every thread up front (--threads 1024 asked
 * for 8 GB), so pools are capped: 256 threads = 2 GB of address space. */
#define RED_POOL_MAX_THREADS 256
/* nthreads <= 0: red_default_threads(). NULL on failure, or when nthreads
 * exceeds RED_POOL_MAX_THREADS or a quarter of the address space. */
red_pool *red_pool_create(int nthreads);
void red_pool_destroy(red_pool *p);
int red_pool_size(const red_pool *p);
/* 1 while no worker sleeps: they are spinning (for ~4 ms after a task), so a
 * task starts in about a microsecond instead of a sleeping thread's ~100 us. */
int red_pool_awake(const red_pool *p);
/* Sends sleeping workers back to spinning, without a task and without
 * waiting: for a caller that ran small work alone because they slept. */
void red_pool_wake(red_pool *p);
/* Runs fn on the first nth threads of the pool (1 <= nth <= size; else size). */
void red_pool_run(red_pool *p, int nth, red_task_fn fn, void *arg);
void *red_pool_scratch(red_pool *p, int ith);  /* RED_POOL_SCRATCH_BYTES, 64-aligned */
double red_time_seconds(void);  /* monotonic clock */
/* Runs fn(ctx, lo, hi) over static slices of [0, n), one thread per ~5e4
 * units of work (work_per_unit per item; waking a worker costs ~100 us, so
 * small jobs stay on the caller). pool may be NULL. */
typedef void (*red_range_fn)(void *ctx, int64_t lo, int64_t hi);
void red_par_range(red_pool *pool, int64_t n, double work_per_unit, red_range_fn fn, void *ctx);
/* RED_THREADS if set and valid, else online cores (at least 1). */
int red_default_threads(void);
/* Static partition of [0,n) into nth nearly equal ranges: this thread's [lo,hi). */
void red_split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi);

/* RNG: xoshiro256** seeded through splitmix64; normals by Marsaglia's polar
 * method with a log built from + - * / only, so every platform and libm give
 * bit-identical streams. One generator type for the whole project. */
typedef struct {
    uint64_t s[4];
    double spare;     /* second normal from the last polar draw */
    int has_spare;
} red_rng;

void red_rng_seed(red_rng *r, uint64_t seed);
double red_rng_uniform(red_rng *r);            /* [0, 1), 53 bits */
double red_rng_normal(red_rng *r);             /* N(0, 1) */
uint64_t red_rng_below(red_rng *r, uint64_t n);/* uniform in [0, n), unbiased */
void red_rng_fill_uniform(red_rng *r, float *x, size_t n, float lo, float hi);
void red_rng_fill_normal(red_rng *r, float *x, size_t n, float mean, float std);

/* Elementwise and reduction kernels (SIMD where built, scalar otherwise).
 * Reductions use a fixed order, so a given build is deterministic. */
void red_vec_fill(float *y, float v, size_t n);
void red_vec_add(float *y, const float *a, const float *b, size_t n); /* y = a + b  */
void red_vec_add_par(red_pool *pool, float *y, const float *a, const float *b, size_t n); /* y = a + b, threaded */
void red_vec_scale(float *y, float s, size_t n);                      /* y *= s     */
void red_vec_axpy(float *y, float a, const float *x, size_t n);       /* y += a * x */
float red_vec_dot(const float *a, const float *b, size_t n);
/* C[r*ldc + c] = red_vec_dot(X + r*ldx, W + c*ldw, n) for r < rows, c < cols,
 * the same bits, in register blocks (decode: inputs against weight rows, a
 * query against cached keys). */
void red_vec_dot_grid(float *C, size_t ldc, const float *X, size_t ldx, size_t rows, const float *W, size_t ldw,
                      size_t cols, size_t n);
/* y += a[j] * rows[j*ld ...] for j = 0..m-1 in order: the same bits as m
 * red_vec_axpy calls, with y held in registers. */
void red_vec_axpy_rows(float *y, const float *a, const float *rows, size_t ld, size_t m, size_t n);
float red_vec_max(const float *x, size_t n);                          /* -inf if n=0 */
/* Numerically safe in-place softmax of one row (max-subtracted). */
void red_softmax(float *x, size_t n);
/* red_softmax of row i of x (stride ld) over its first n0 + i*step entries,
 * rows at once (step 1: causal attention's rows); the same bits per row. */
void red_softmax_rows(float *x, size_t ld, int rows, size_t n0, size_t step);

/* The SIMD path this build was compiled for: "avx512", "avx2", "neon", "scalar". */
const char *red_simd_name(void);

/* ------------------------------------------------------------------ linalg.c */

/* C = alpha * op(A) * op(B) + beta * C, row-major, C is m x n, inner size k.
 *   RED_NN: A m x k, B k x n      (Y = X W  with W [in,out])
 *   RED_NT: A m x k, B n x k      (Y = X Wᵀ, the linear forward; dX = dY W is NN)
 *   RED_TN: A k x m, B k x n      (dW = dYᵀ X)
 * beta == 0 never reads C (NaN in C is overwritten). Threads split the output
 * into tiles; every element is reduced by one thread in a fixed order, so the
 * result is bit-identical for any thread count. Not reentrant on one pool. */
typedef enum { RED_NN = 0, RED_NT = 1, RED_TN = 2 } red_trans;

red_status red_sgemm(red_pool *pool, red_trans trans, int m, int n, int k,
                     float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);
const char *red_trans_name(red_trans t);  /* "nn", "nt", "tn" */
/* op(B) of nt products packed once for several of them (a layer's weights
 * for every sequence of a batch, attention's K for every row chunk):
 * red_gemm_nt_pack writes B (n x k, row stride ldb) as the panels red_sgemm's
 * own nt packing makes (red_gemm_nt_packed_floats(n, k) floats),
 * red_sgemm_nt_packed multiplies by its first n <= packed_n columns, on the
 * pool or, with serial_ws, on the calling thread. The same bits as
 * red_sgemm(RED_NT). */
size_t red_gemm_nt_packed_floats(int n, int k);
void red_gemm_nt_pack(const float *B, int ldb, int n, int k, float *packed);
red_status red_sgemm_nt_packed(red_pool *pool, void *serial_ws, int m, int n, int k, float alpha, const float *A,
                               int lda, const float *packed, int packed_n, float beta, float *C, int ldc);
/* C_p = alpha A B_pᵀ + beta C_p for p < parts (B_p is n[p] x k, C_p m x n[p]):
 * the nt products of one input, e.g. q/k/v or gate/up, as one product that
 * packs A once; each element gets red_sgemm's very operations (the same bits).
 * packed, if not NULL, holds each B_p packed by red_gemm_nt_pack. */
#define RED_GEMM_PARTS 4
red_status red_sgemm_nt_parts(red_pool *pool, int m, int k, float alpha, const float *A, int lda, int parts,
                              const int *n, const float *const *B, const int *ldb, const float *const *packed,
                              float beta, float *const *C, const int *ldc);

/* Thin SVD by one-sided Jacobi (double internally): A (m x n, lda) = U S Vᵀ,
 * k = min(m,n); U m x k, S k (descending, >= 0), V n x k, all row-major.
 * U and/or V may be NULL (values only is much cheaper). Returns RED_E_NOCONV
 * when the sweep cap is reached (outputs then hold the last iterate).
 * Workspace: about m n doubles, twice that with the long vectors (U if
 * m >= n, else V). */
typedef struct {
    int sweeps;      /* sweeps performed (of the run that gave the result) */
    int rotations;   /* rotations applied in total (same run) */
    int solved;      /* 1: the long singular vectors (U if m >= n, else V) came
                      * from a triangular solve after the sweeps, 0: from
                      * accumulated rotations, or were not asked for */
} red_svd_info;

red_status red_svd(red_pool *pool, int m, int n, const float *A, int lda,
                   float *U, float *S, float *V, red_svd_info *info);

/* Symmetric eigendecomposition by cyclic Jacobi (double internally):
 * A (n x n, symmetric; only this contract is assumed, the lower triangle is
 * read) = Q diag(w) Qᵀ, w descending, Q's columns the eigenvectors (n x n
 * row-major); Q may be NULL. */
red_status red_eig_sym(int n, const float *A, int lda, float *w, float *Q);

/* Q (n x k, k <= n): orthonormal columns, Haar-distributed (QR of a Gaussian
 * with R's diagonal made positive), from the given RNG. */
red_status red_random_orthonormal(red_rng *rng, int n, int k, float *Q);

/* eRank of the rows of X (m x n); center != 0 subtracts column means first. */
red_status red_erank(red_pool *pool, int m, int n, const float *X, int ldx, int center,
                     double *erank);

/* Token indistinguishability of hidden states X (m x n, rows = positions):
 * cos_mean = mean of cos(x_i, x_j) over the pairs i < j; indist[t] = among
 * the pairs whose token ids differ (every pair when ids is NULL), the
 * fraction with cos >= red_indist_theta[t] (0.95, 0.99). Exact: rows are
 * normalised in double and every pair's cosine is a double dot product, taken
 * tile by tile from the Gram matrix (no m x m buffer); partial sums are
 * combined in a fixed order, so the result is the same for any thread count.
 * A zero row has cos 0 with every row. NaN when there is no pair (m < 2) or no
 * pair of distinct ids; RED_E_ARG for a non-finite row. */
#define RED_INDIST_N 2
extern const double red_indist_theta[RED_INDIST_N];
typedef struct {
    double cos_mean;
    double indist[RED_INDIST_N];
    int64_t pairs, distinct_pairs;
} red_indist;
red_status red_token_indist(red_pool *pool, int m, int n, const float *X, int ldx, const int64_t *ids,
                            red_indist *out);

/* ------------------------------------------------------------------ io.c */

/* .npy: reads versions 1.0-3.0, dtype '<f4' or '<f8' (converted to fp32),
 * C order, up to 4 dims; anything else is a clear RED_E_FORMAT/UNSUPPORTED.
 * t->data is heap memory: release with red_tensor_free. */
red_status red_npy_load(const char *path, red_tensor *t, red_error *err);
/* Token ids (labels) from a .npy of any shape, flattened: '<i1'..'<i8',
 * '<u1'..'<u8' ('|' for one byte) or '<f4'/'<f8' holding whole numbers.
 * *ids is heap memory (free()). */
red_status red_npy_load_ids(const char *path, int64_t **ids, int64_t *n, red_error *err);
/* Writes '<f4' v1.0 atomically (temp file in the same directory, then rename). */
red_status red_npy_save(const char *path, const red_tensor *t, red_error *err);

/* Reads a whole file into a heap buffer (free with free()). */
red_status red_read_file(const char *path, unsigned char **buf, size_t *len, red_error *err);
/* Creates a directory (0777 before umask); an existing one is fine. */
red_status red_make_dir(const char *path, red_error *err);
/* 1 if a and b are the same file or directory (device and inode, so links
 * and other spellings count); two paths that do not exist yet are the same
 * when their directories are and their last components are equal (two
 * outputs that would overwrite each other). */
int red_same_file(const char *a, const char *b);
/* Checks, before any work, that an output can be written: a file path's
 * directory exists and is writable (it is not a directory itself); a
 * directory exists writable or can be created in a writable parent. */
red_status red_check_output(const char *path, int is_dir, red_error *err);
/* Writes a buffer atomically: path.tmp.<pid> then rename over path. */
red_status red_write_file_atomic(const char *path, const void *buf, size_t len, red_error *err);
/* Little-endian fields of the binary state files, whatever the host order. */
void red_put_u64le(unsigned char *p, uint64_t v);
uint64_t red_get_u64le(const unsigned char *p);
void red_put_f32le(unsigned char *p, const float *x, size_t n);
void red_get_f32le(float *x, const unsigned char *p, size_t n);
/* Half floats at the file boundary: IEEE binary16 and bfloat16, round to nearest even. */
float red_f16_to_f32(uint16_t h);
uint16_t red_f32_to_f16(float f);
float red_bf16_to_f32(uint16_t h);
uint16_t red_f32_to_bf16(float f);

/* ------------------------------------------------------------------ json.c */

/* Strict RFC 8259 JSON tree. Object members keep their order; duplicate keys,
 * invalid UTF-8, lone surrogates, trailing commas, leading zeros, NaN and
 * trailing garbage are errors that name the byte offset. */
typedef enum {
    RED_JSON_NULL, RED_JSON_FALSE, RED_JSON_TRUE, RED_JSON_NUMBER,
    RED_JSON_STRING, RED_JSON_ARRAY, RED_JSON_OBJECT
} red_json_type;

typedef struct red_json red_json;
struct red_json {
    red_json_type type;
    double number;       /* NUMBER */
    int is_int;          /* NUMBER written as an integer that fits int64 */
    int64_t ival;        /* exact value when is_int */
    char *str;           /* STRING: NUL-terminated UTF-8 (may hold \0) */
    size_t len;          /* STRING: byte length */
    char *key;           /* member key when the parent is an OBJECT */
    size_t key_len;
    red_json *child;     /* ARRAY/OBJECT: first element */
    red_json *next;      /* next sibling */
    size_t count;        /* ARRAY/OBJECT: number of elements */
    size_t offset;       /* byte offset of the value in the source */
};

red_status red_json_parse(const char *text, size_t len, const char *name, red_json **root,
                          red_error *err);
void red_json_free(red_json *root);
const red_json *red_json_get(const red_json *obj, const char *key);  /* NULL if absent */
const red_json *red_json_at(const red_json *arr, size_t i);          /* NULL if out of range */
const char *red_json_type_name(red_json_type t);

/* Growable text buffer for writers; `failed` is sticky on allocation failure. */
typedef struct {
    char *p;       /* NUL-terminated when non-NULL */
    size_t len, cap;
    int failed;
} red_sbuf;

void red_sbuf_init(red_sbuf *b);
void red_sbuf_free(red_sbuf *b);
void red_sbuf_put(red_sbuf *b, const char *s, size_t n);
void red_sbuf_puts(red_sbuf *b, const char *s);
void red_sbuf_printf(red_sbuf *b, const char *fmt, ...);
void red_json_put_string(red_sbuf *b, const char *s, size_t n);  /* quoted, escaped */
void red_json_put_number(red_sbuf *b, double v);  /* shortest round trip; non-finite -> null */
void red_json_put_float(red_sbuf *b, float v);    /* shortest text that reads back as v */
void red_json_put_numbers(red_sbuf *b, const double *x, int n);  /* [x0, x1, ...] */

void red_name_list(const red_name *t, red_sbuf *out);  /* "a, b, c" (red_name: red.c) */

/* JSON Lines: one value per line (blank lines skipped); errors name the line. */
red_status red_jsonl_read(const char *path, red_json ***items, size_t *n, red_error *err);
void red_jsonl_free(red_json **items, size_t n);

/* ------------------------------------------------------------------ model.c */

/* Dimension legend: B batch, T sequence, N = B*T rows, D hidden (dim), F ffn,
 * H query heads, KV key/value heads, HD head_dim, QD = H*HD, KD = KV*HD,
 * V vocab, L layers. */
typedef enum { RED_ARCH_LLAMA = 0, RED_ARCH_QWEN2 = 1 } red_arch;

typedef struct {
    red_arch arch;
    int dim;            /* hidden_size */
    int ffn;            /* intermediate_size */
    int n_layers;       /* num_hidden_layers */
    int n_heads;        /* num_attention_heads */
    int n_kv_heads;     /* num_key_value_heads (divides n_heads) */
    int head_dim;       /* may differ from dim / n_heads */
    int vocab;          /* vocab_size */
    int max_pos;        /* max_position_embeddings */
    float norm_eps;     /* rms_norm_eps */
    float rope_theta;
    int rope_llama3;    /* rope_scaling.rope_type == "llama3" */
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_ctx;  /* original_max_position_embeddings */
    int tied;           /* tie_word_embeddings */
    int qkv_bias;       /* q/k/v biases (Qwen2 always; Llama attention_bias) */
    int bos_id, eos_id; /* -1 when absent */
} red_config;

/* A small Llama-shaped default (dim 64, 2 layers, vocab 259) to edit from. */
void red_config_default(red_config *c);
red_status red_config_check(const red_config *c, red_error *err);
const char *red_arch_name(red_arch a);  /* "llama", "qwen2" */

/* Per-layer named pointers into a parameter-shaped slab. */
typedef struct {
    float *attn_norm;       /* [D]      input_layernorm           */
    float *wq, *bq;         /* [QD, D], [QD] (bq NULL without bias) */
    float *wk, *bk;         /* [KD, D], [KD]                      */
    float *wv, *bv;         /* [KD, D], [KD]                      */
    float *wo;              /* [D, QD]                            */
    float *mlp_norm;        /* [D]      post_attention_layernorm  */
    float *wg, *wu;         /* [F, D]   gate_proj, up_proj        */
    float *wd;              /* [D, F]   down_proj                 */
} red_layer_weights;

typedef struct {
    float *embed;               /* [V, D] */
    red_layer_weights *layers;  /* [L] */
    float *norm;                /* [D] final norm */
    float *lm_head;             /* [V, D]; == embed when tied */
} red_weights;

/* One tensor of the parameter slab, with its Hugging Face name. */
typedef struct {
    char name[64];
    size_t offset;     /* floats from the slab start */
    size_t numel;
    int ndim;          /* 1 or 2 */
    int64_t shape[2];  /* PyTorch shape */
} red_param;

/* Number of tensors / floats in a model's parameter slab; the slab order is
 * embed, then per layer the HF order (norms, q,k,v (+bias), o, norm, gate, up,
 * down), then final norm, then lm_head when untied. */
int red_param_tensors(const red_config *c);
size_t red_param_floats(const red_config *c);
/* RoPE inverse frequencies inv[HD/2], rotate_half convention, llama3 scaling
 * applied (the op pairs themselves are in red_internal.h). */
void red_rope_inv_freq(const red_config *c, float *inv);

/* The model: config, parameter slab (own or bound), and, once training is
 * enabled, gradient and AdamW slabs plus the activation slab for B x T.
 * Nothing is allocated inside forward/backward/step. */
typedef struct red_train_acts red_train_acts;
typedef struct red_weight_pack red_weight_pack;
typedef struct {
    red_config cfg;
    red_pool *pool;           /* not owned */
    size_t n_params;          /* floats in each slab */
    int n_tensors;
    red_param *table;         /* [n_tensors] */
    float *params;            /* [n_params] own or bound */
    int own_params;
    red_weights w;            /* named pointers into params */
    float *grads;             /* [n_params + grad_tail] or NULL */
    size_t grad_tail;         /* floats a caller keeps after the gradient (red_model_grad_tail) */
    red_weights gw;           /* named pointers into grads */
    unsigned char *grad_unwritten; /* [n_tensors] 1 = zero by red_model_zero_grad, not yet written */
    float *adam_m, *adam_v;   /* [n_params] or NULL */
    unsigned char *decay_mask;/* [n_tensors] 1 = weight-decayed (matrices) */
    int64_t adam_t;           /* AdamW steps taken */
    red_train_acts *acts;     /* NULL until red_model_train_alloc */
    float *rope_inv_freq;     /* [HD/2] effective inverse frequencies */
    red_layer_weights *layer_buf; /* storage behind w.layers and gw.layers */
    const red_weight_pack *wpack; /* NULL, or these weights packed for the forward (below) */
} red_model;

/* A model's matrices packed for the forward's GEMMs once for a whole batch,
 * so that its sequences do not each pack them again: red_weight_pack_fill
 * packs the current weights, and while m->wpack points at the pack the
 * forward reads the packed copies (the same bits). The caller owns the
 * validity: the weights must not change while m->wpack is set. Models past
 * RED_WEIGHT_PACK_MAX bytes are not packed (of stays NULL): their GEMMs are
 * long enough to pack as they go. */
#define RED_WEIGHT_PACK_MAX ((size_t)256 << 20)
struct red_weight_pack {
    float *buf;
    const float **of;  /* [n_tensors] tensor i packed (red_gemm_nt_pack), NULL if not */
    int n_tensors;
};
red_status red_weight_pack_fill(red_weight_pack *p, const red_model *m, red_error *err);
void red_weight_pack_free(red_weight_pack *p);

/* Allocates a zeroed parameter slab. pool is used by every heavy op. */
red_status red_model_alloc(red_model *m, const red_config *c, red_pool *pool, red_error *err);
void red_model_free(red_model *m);
/* A model over src's weights (not copied, not owned, to be read only: a
 * frozen teacher shared by threads that each need their own run state). */
red_status red_model_share(red_model *m, const red_model *src, red_pool *pool, red_error *err);
/* Initialises weights: matrices N(0, std^2) (embed too), norms 1, biases 0;
 * with out_std > 0 the o and down projections use out_std instead. */
void red_model_init_random(red_model *m, red_rng *rng, float std, float out_std);
/* Run state for batches up to B x T, apart from the weights: the forward
 * activations always (what backward and the clone targets read); with
 * RED_RUN_BACKWARD the gradient slab, dlogits and backward scratch; with
 * RED_RUN_ADAM the AdamW moments. A frozen teacher needs the forward only,
 * a distillation student's merged model no AdamW. With RED_RUN_HEAD_CHUNKS
 * forward stops at the final norm and logits/dlogits hold only
 * red_model_head_rows(m) rows: the caller runs the LM head chunk by chunk
 * (red_model_head_forward/_backward), so [N, V] is never resident. With
 * RED_RUN_KEEP_ATTN_OUT and RED_RUN_KEEP_FFN_OUT forward also keeps every
 * block's attention or FFN output (red_layer_acts.attn_out, ffn_out) when
 * those asked for fit 256 MB together, else the FFN output alone if it fits. */
enum {
    RED_RUN_FORWARD = 0, RED_RUN_BACKWARD = 1, RED_RUN_ADAM = 2, RED_RUN_HEAD_CHUNKS = 4,
    RED_RUN_KEEP_ATTN_OUT = 8, RED_RUN_KEEP_FFN_OUT = 16
};
red_status red_model_run_alloc(red_model *m, int B, int T, int what, red_error *err);
/* red_model_run_alloc(m, B, T, RED_RUN_BACKWARD | RED_RUN_ADAM): all of it. */
red_status red_model_train_alloc(red_model *m, int B, int T, red_error *err);

/* Training forward over tokens [B*T] (each row a sequence starting at
 * position 0); keeps everything backward needs. Logits [N, V] are in
 * red_model_logits(m). */
red_status red_model_forward(red_model *m, const int *tokens, int B, int T);
float *red_model_logits(red_model *m);   /* [N, V] from the last forward (chunked: [head_rows, V]) */
float *red_model_dlogits(red_model *m);  /* [N, V] gradient read by backward; NULL without RED_RUN_BACKWARD */
/* Chunked head (RED_RUN_HEAD_CHUNKS), after forward: rows [r0, r0 + rows)
 * with r0 a multiple of red_model_head_rows(m) and rows <= it. head_forward
 * writes their logits to red_model_logits(m); head_backward reads
 * red_model_dlogits(m) for them, writes their final-norm gradient and adds
 * to the head's weight gradient. Bit for bit the unchunked computation;
 * backward then needs every row done. RED_E_ARG otherwise. */
int64_t red_model_head_rows(const red_model *m);
red_status red_model_head_forward(red_model *m, int64_t r0, int64_t rows);
red_status red_model_head_backward(red_model *m, int64_t r0, int64_t rows);
/* Mean cross-entropy over targets [N] (target < 0 = ignored); writes
 * d(loss)/d(logits) into red_model_dlogits (overwriting) when want_grad.
 * Returns the loss (0 when every target is ignored); *n_counted gets the
 * count. NaN for a chunked run state. */
float red_model_cross_entropy(red_model *m, const int *targets, int want_grad, int64_t *n_counted);
/* sum plus the same rows' cross-entropies, added in row order, the gradient
 * scaled by 1/count: a part of a larger batch whose targets number count (a
 * sequence of a batch, a rank's share). Passing the running sum on makes a
 * batch evaluated a sequence at a time add up to the same bits as at once. */
double red_model_ce_sum(red_model *m, const int *targets, int want_grad, int64_t count, double sum);
void red_model_zero_grad(red_model *m);
/* The gradient slab backward writes: slab (n_params + grad_tail floats, the caller's) from
 * now on, or the model's own again. The slab must exist (RED_RUN_BACKWARD). */
void red_model_bind_grads(red_model *m, float *slab);
/* Room for `floats` of the caller's own after the model's gradient, at
 * m->grads + n_params: terms that travel with it through a batch's sum (the
 * distillation's FFN-out targets' dP_d). Set before RED_RUN_BACKWARD
 * allocates the slab (after it only the same size is accepted). Backward
 * leaves the tail alone; a slab bound in place of the model's must hold it. */
red_status red_model_grad_tail(red_model *m, size_t floats, red_error *err);
/* Backward from red_model_dlogits; accumulates into m->grads. */
red_status red_model_backward(red_model *m);
/* Views of the activations the last forward saved for layer l (rows N = B*T). */
typedef struct {
    const float *x;        /* [N, D]  block input (residual stream) */
    const float *xn_a;     /* [N, D]  attention-norm output */
    const float *q, *k;    /* [N, QD], [N, KD] after RoPE */
    const float *v;        /* [N, KD] */
    const float *att;      /* [N, QD] attention heads (o_proj input) */
    const float *h;        /* [N, D]  residual after attention */
    const float *xn_m;     /* [N, D]  MLP-norm output */
    const float *g, *u;    /* [N, F]  gate/up before SiLU */
    const float *act;      /* [N, F]  silu(g)*u, down_proj's input; NULL where not kept (large runs) */
    const float *out;      /* [N, D]  block output */
    const float *attn_out; /* [N, D]  att W_oᵀ, added to x to give h; NULL unless kept (RED_RUN_KEEP_ATTN_OUT) */
    const float *ffn_out;  /* [N, D]  act W_dᵀ, added to h to give out; NULL unless kept (RED_RUN_KEEP_FFN_OUT) */
} red_layer_acts;
void red_model_layer_acts(const red_model *m, int l, red_layer_acts *out);
const float *red_model_final_normed(const red_model *m);  /* [N, D] final-norm output */
int red_model_max_batch(const red_model *m);  /* B of red_model_train_alloc, 0 before */

/* Gradients of extra loss terms at activations (distillation's clone terms),
 * added during backward where they attach: fill(ctx, l) runs before layer
 * l's backward and writes layer l's into the arrays (one layer at a time,
 * so no [L, N, ...] is stored); any array may be NULL. dq/dk are w.r.t.
 * q/k after RoPE (RoPE is a rotation, so a loss on the pre-RoPE values has
 * the same gradient expressed there). dffn is the gradient w.r.t. the FFN
 * output alone, not the residual it is added to. */
typedef struct {
    const float *dq;    /* [N, QD] */
    const float *dk;    /* [N, KD] */
    const float *dv;    /* [N, KD] */
    const float *datt;  /* [N, QD] */
    const float *dg, *du;  /* [N, F] */
    const float *dffn;  /* [N, D] */
    void (*fill)(void *ctx, int l);
    void *ctx;
} red_act_grads;
red_status red_model_backward_ex(red_model *m, const red_act_grads *extra);

/* Inference with a KV cache for up to n_seq sequences of max_len tokens,
 * processing up to max_rows tokens per call. */
typedef struct {
    int n_seq, max_len, max_rows;
    float *k_cache, *v_cache;   /* [L, n_seq, max_len, KD] */
    float *buf;                 /* per-call activations */
    size_t buf_floats;
    float *logits;              /* [max_rows, V] */
} red_kv_state;

red_status red_kv_alloc(red_kv_state *s, const red_model *m, int n_seq, int max_len, int max_rows,
                        red_error *err);
void red_kv_free(red_kv_state *s);
/* Runs n tokens; token r belongs to sequence seq[r] at position pos[r]. Its K/V
 * go to the cache, and it attends to that sequence's cache [0, pos[r]]. Rows
 * of one sequence must come in increasing position and every earlier
 * position must already be cached (or be in this call). Logits -> s->logits.
 * RED_E_ARG for bad rows, RED_E_FORMAT when a logit is NaN or Inf;
 * red_kv_failure(status) says which, for messages. */
const char *red_kv_failure(red_status st);
red_status red_kv_forward(red_model *m, red_kv_state *s, int n, const int *tokens, const int *seq,
                          const int *pos);

typedef struct {
    float temperature;  /* <= 0: greedy (first maximum) */
    int top_k;          /* <= 0: off */
    float top_p;        /* >= 1: off */
} red_sampler;
/* Samples one id from logits [V] (modified in place: scaled and softmaxed).
 * Order: temperature, top-k, top-p (smallest most-probable prefix with mass
 * >= top_p), then one uniform draw. idx_scratch holds 2*V ints. */
int red_sample(float *logits, int V, const red_sampler *sp, red_rng *rng, int *idx_scratch);

/* Generates up to n_new tokens for each of n_seq prompts (lengths lens[i] >= 1)
 * in one batch; out[i] (capacity n_new) gets the new ids, out_len[i] their
 * count. A sequence stops after emitting stop_id (>= 0; included) */
red_status red_generate(red_model *m, int n_seq, const int *const *prompts, const int *lens,
                        int n_new, const red_sampler *sp, uint64_t seed, int stop_id,
                        int **out, int *out_len, red_error *err);

/* ------------------------------------------------------------------ hfdir.c */

/* safetensors: one tensor as read from a file. */
typedef enum { RED_DT_F32 = 0, RED_DT_F16 = 1, RED_DT_BF16 = 2, RED_DT_OTHER = 3 } red_dtype;

typedef struct {
    char *name;
    red_dtype dtype;
    char dtype_name[16];
    int ndim;
    int64_t shape[8];
    uint64_t begin, end;   /* byte offsets into the data buffer */
} red_st_entry;

typedef struct {
    unsigned char *file;   /* whole file */
    size_t file_len;
    uint64_t header_len;
    const unsigned char *data;  /* file + 8 + header_len */
    int n;
    red_st_entry *e;
    char path[1024];
} red_safetensors;

/* Reads and validates a file (header JSON, dtypes, shapes, offsets that tile
 * the buffer exactly, as the reference reader demands). */
red_status red_st_open(red_safetensors *st, const char *path, red_error *err);
void red_st_close(red_safetensors *st);

/* A config.json at `path`. */
red_status red_config_read(red_config *c, const char *path, red_error *err);
/* Loads dir into an initialised-by-this-call model. */
red_status red_model_load(red_model *m, const char *dir, red_pool *pool, red_error *err);
/* Writes config.json and model.safetensors (F32 or BF16) atomically; creates dir. */
red_status red_model_save(const red_model *m, const char *dir, red_dtype dtype, red_error *err);

/* ------------------------------------------------------------------ model files: gguf.c, llama2c.c */

struct red_tokenizer;  /* tokenizer.c, below */

/* One entry point for every command that takes --model: path is a Hugging
 * Face directory (config.json + model.safetensors or a sharded index), a
 * GGUF file (magic "GGUF") or a llama2.c checkpoint (.bin, v0/v1/v2). */
typedef enum { RED_FMT_DIR = 0, RED_FMT_GGUF = 1, RED_FMT_LLAMA2C = 2 } red_model_format;
red_status red_model_format_of(const char *path, red_model_format *fmt, red_error *err);
red_status red_model_open(red_model *m, const char *path, red_pool *pool, red_error *err);
/* The tokenizer of a model: tok_path when given (anything red_tokenizer_load
 * reads, or a .gguf carrying one), else the model's own (a directory's files,
 * a GGUF's tokenizer.ggml.*); a llama2.c checkpoint carries none. A path that
 * is itself a tokenizer is passed as both. */
red_status red_model_tokenizer(struct red_tokenizer **out, const char *model_path, const char *tok_path,
                               red_error *err);
/* Writes m as a directory, FILE.gguf (F32/F16/BF16 matrices) or FILE.bin
 * (llama2.c v0, fp32), chosen by the path's ending, atomically. tok (may be
 * NULL) goes into a GGUF, or into a directory as red_tokenizer.json (red's own
 * kinds); a llama2.c file holds none. */
red_status red_model_write(const red_model *m, const struct red_tokenizer *tok, const char *path, red_dtype dtype,
                           red_error *err);

/* llama2.c checkpoint; Q/K rows are converted from interleaved RoPE pairs to
 * red's rotate-half order. */
red_status red_llama2c_load(red_model *m, const char *path, red_pool *pool, red_error *err);
/* version 0 (legacy, what run.c reads) or 1 ("ak42" header). */
red_status red_llama2c_save(const red_model *m, const char *path, int version, red_error *err);
/* Rows of w [heads*hd, cols], per head: interleaved row 2i+t <-> rotate-half
 * row t*hd/2+i; to_half 1 goes interleaved -> rotate-half, 0 back. */
red_status red_rope_permute_rows(float *w, int heads, int hd, int64_t cols, int to_half);

/* ------------------------------------------------------------------ tokenizer.c */

/* Text <-> ids behind one interface: an opaque heap handle (tables sized by
 * the vocabulary, 150k+ ids). Kinds:
 * RED_TOK_BYTE: ids 0-255 are UTF-8 bytes, then BOS 256, EOS 257, PAD 258.
 * RED_TOK_BPE: the same 259 ids, then merged tokens 259.. (merge i makes id
 * 259 + i from a pair of earlier ids), learned on a corpus; text is first
 * split into chunks no merge crosses: a letter run with its leading space,
 * every digit alone (numbers stay digit by digit, as in Llama), a newline,
 * a run of other symbols with its leading space, a run of spaces.
 * RED_TOK_BYTE_BPE: byte-level BPE as Hugging Face's tokenizers (GPT-2,
 * Llama-3, Qwen2/2.5/3): normalizer, Split regex, ByteLevel, merges by rank.
 * RED_TOK_SPM_BPE: SentencePiece-style BPE (Llama-2, Mistral): U+2581 for
 * spaces, byte fallback <0xXX>; merges by rank (tokenizer.json) or by score
 * (GGUF "llama").
 * RED_TOK_LLAMA2C: llama2.c's tokenizer.bin, encoded as its run.c does. */
#define RED_TOKEN_MAX_BYTES 1024   /* longest token text (red_token_bytes' buffer) */
#define RED_BPE_MAX_VOCAB 2048     /* red's own BPE */
typedef enum { RED_TOK_BYTE = 0, RED_TOK_BPE = 1, RED_TOK_BYTE_BPE, RED_TOK_SPM_BPE, RED_TOK_LLAMA2C } red_tok_kind;
typedef struct red_tokenizer red_tokenizer;

/* The byte tokenizer. */
red_status red_tokenizer_byte_new(red_tokenizer **out, red_error *err);
/* PATH: a directory (red_tokenizer.json, else tokenizer.json with
 * tokenizer_config.json), a tokenizer.json, or a llama2.c tokenizer.bin. */
red_status red_tokenizer_load(red_tokenizer **out, const char *path, red_error *err);
/* Writes DIR/red_tokenizer.json (atomically); red's own kinds only. */
red_status red_tokenizer_save(const red_tokenizer *t, const char *dir, red_error *err);
void red_tokenizer_free(red_tokenizer *t);
red_tok_kind red_tokenizer_kind(const red_tokenizer *t);
int red_tokenizer_vocab(const red_tokenizer *t);   /* ids 0..vocab-1 can occur */
int red_tokenizer_bos(const red_tokenizer *t);     /* -1 = none */
int red_tokenizer_eos(const red_tokenizer *t);
int red_tokenizer_pad(const red_tokenizer *t);
int red_tokenizer_add_bos(const red_tokenizer *t); /* the tokenizer's config asks for BOS first */
int red_tokenizer_add_eos(const red_tokenizer *t);
int red_tokenizer_n_merges(const red_tokenizer *t);

/* A vocabulary given as arrays (GGUF's tokenizer.ggml.* keys carry exactly these). */
typedef struct {
    const char *model;          /* "gpt2" = byte-level BPE, "llama" = SentencePiece BPE */
    const char *pre;            /* pre-tokenizer name (GGUF tokenizer.ggml.pre: "default"/"gpt2", "llama3"/"llama-bpe", "qwen2"); NULL = model default */
    int n_tokens;
    const char *const *tokens;  /* token texts as stored (byte-level: GPT-2 unicode-mapped; SPM: with U+2581) */
    const float *scores;        /* may be NULL */
    const int32_t *types;       /* llama.cpp token types (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte); may be NULL */
    int n_merges;
    const char *const *merges;  /* "left right" */
    int bos_id, eos_id, unk_id, pad_id;  /* -1 = none */
    int add_bos, add_eos;
} red_vocab_spec;
red_status red_tokenizer_from_vocab(red_tokenizer **out, const red_vocab_spec *s, red_error *err);
/* and the inverse, for writing a tokenizer into a GGUF: fills s with pointers owned by t
 * (built on the first call and kept in t: not concurrently with itself). Hugging Face and
 * GGUF kinds; llama2.c gives model "llama" with its scores, U+2581 for spaces, no merges. */
red_status red_tokenizer_to_vocab(const red_tokenizer *t, red_vocab_spec *s, red_error *err);

/* Encodes text (optionally after BOS) into ids[0..cap); returns the full
 * count, which may exceed cap (then call again with a bigger buffer), or -1
 * when out of memory. Added tokens (<|im_start|>, <s>, ...) in the text are
 * matched as Hugging Face does; no BOS/EOS is added unless add_bos. */
int red_tokenize(const red_tokenizer *t, const char *text, size_t len, int add_bos, int *ids, int cap);
/* The bytes of one token (0 for specials); out holds RED_TOKEN_MAX_BYTES. */
int red_token_bytes(const red_tokenizer *t, int id, char *out);
/* Appends the text of ids to out, as the tokenizer's decoder does (SPM: the
 * first space is dropped; llama2.c: the space after BOS); returns the bytes appended. */
size_t red_detokenize(const red_tokenizer *t, const int *ids, int n, red_sbuf *out);
/* Learns a BPE tokenizer of `vocab` ids (259..RED_BPE_MAX_VOCAB) from text:
 * the most frequent adjacent pair within chunks is merged first (ties to the
 * lower pair of ids); stops early when no pair occurs twice. Deterministic. */
red_status red_tokenizer_train_bpe(red_tokenizer **out, const char *text, size_t len, int vocab, red_error *err);

/* ------------------------------------------------------------------ data.c */

/* Tokenized documents (each ends with EOS) and the current epoch's stream. */
typedef struct {
    int answer_only;     /* set before adding files: context tokens are not targets */
    int *tokens;
    unsigned char *target; /* [n_tok] 1 = predicting this token is trained */
    unsigned char *stream_target; /* bit 0: target, bit 1: a document starts here */
    size_t n_tok, cap_tok;
    size_t *doc_start;   /* [n_docs + 1] */
    size_t n_docs, cap_docs;
    int *stream;         /* epoch order */
    uint64_t epoch_built, seed_built; /* the (epoch, seed) `stream` holds */
    int have_epoch;
} red_train_data;

/* Calibration and measurement rows are read from the data stream shuffled
 * with this seed, from its start. */
#define RED_CALIB_SEED 0x0ca11bu

/* Adds a file: .jsonl (gsm8k, {"text"}, multiple-choice or WinoGrande form,
 * formatted as train.c describes) or plain text (one document per line). */
red_status red_train_data_add_file(red_train_data *d, const red_tokenizer *tok, const char *path, red_error *err);
void red_train_data_free(red_train_data *d);
/* Appends the documents of a file as training formats them, one per line
 * (for learning a tokenizer on exactly what the model will read). */
red_status red_docs_text(const char *path, red_sbuf *out, red_error *err);
/* B rows of T inputs and targets (-1 = not a target) from (epoch, offset) of
 * the stream shuffled by seed; advances epoch/offset. Each row starts at a
 * document start; the tail of a document cut by a row's end is skipped. */
red_status red_train_data_batch(red_train_data *d, uint64_t seed, uint64_t *epoch, uint64_t *offset, int B, int T,
                                int *in, int *tgt, red_error *err);
/* The first n_rows rows of T tokens of the stream shuffled with
 * RED_CALIB_SEED: a fixed token set every model can be measured on. */
red_status red_train_data_rows(red_train_data *d, int n_rows, int T, int *tokens, red_error *err);
/* FNV-1a over the tokens and their target flags: two runs read the same data
 * exactly when this (with the counts) agrees. */
uint64_t red_train_data_fingerprint(const red_train_data *d);

/* ------------------------------------------------------------------ optim.c */

/* AdamW with decoupled weight decay (Loshchilov & Hutter), PyTorch's form:
 * p -= lr*wd*p; m,v moments; p -= lr * mhat / (sqrt(vhat) + eps). */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} red_adamw_cfg;
/* One update of n elements; t is the 1-based step (bias correction). */
void red_adamw_update(float *p, const float *g, float *m, float *v, size_t n,
                      const red_adamw_cfg *c, float weight_decay, int64_t t);
/* Global L2 norm of g (double partial sums over fixed 64K chunks, added in
 * order, so the same for any thread count); if max_norm > 0 and the norm
 * exceeds it, scales g by max_norm / norm. Returns the norm before. pool may
 * be NULL. */
double red_clip_grad_norm(red_pool *pool, float *g, size_t n, double max_norm);

typedef enum { RED_SCHED_CONSTANT = 0, RED_SCHED_LINEAR = 1, RED_SCHED_COSINE = 2 } red_sched_kind;

/* One AdamW step over every parameter; weight decay only on matrices. */
void red_model_adamw(red_model *m, const red_adamw_cfg *c);

/* Where a training loop stands; saved in its state file. */
typedef struct {
    uint64_t step, adam_t, epoch, offset;
} red_loop_pos;
/* A float array of a state file (its size is checked on load). */
typedef struct {
    float *p;
    size_t n;
    const char *name;
} red_state_array;
/* Writes a state file atomically (layout in optim.c): the position, the
 * resume record (text, "key=value\n" lines) and the arrays. */
red_status red_state_save(const char *path, const char *magic, const red_loop_pos *pos, const char *record,
                          const red_state_array *arrays, int n_arrays, red_error *err);
/* Reads a state file after checking magic, version, every size and the
 * record (the first differing key is named); arrays are untouched on failure. */
red_status red_state_load(const char *path, const char *magic, const char *record, red_loop_pos *pos,
                          const red_state_array *arrays, int n_arrays, red_error *err);

/* The options every training loop shares. */
typedef struct {
    const char *out;          /* checkpoint directory */
    uint64_t tokens;          /* steps = tokens / (batch * seq) */
    int batch, seq;
    uint64_t seed;            /* data order */
    float lr, min_lr, beta1, beta2, weight_decay;
    double clip;              /* global-norm clip (0 = off) */
    uint64_t warmup_steps;
    red_sched_kind schedule;
    uint64_t save_every;
    int resume;               /* continue from the state file in out */
    uint64_t stop_after;      /* stop after this step (0 = run to the end); for interruption tests */
    /* when *stop becomes nonzero (a signal handler sets it) the loop writes a
     * checkpoint after the current step and returns RED_E_INTERRUPTED */
    const volatile sig_atomic_t *stop;
    int single;               /* this process alone, even under mpirun (reproduce's students) */
} red_loop_opts;
/* Appends the loop's part of a resume record: options and data fingerprint. */
void red_loop_record(const red_loop_opts *o, const red_train_data *data, red_sbuf *b);

/* One step's outcome, as the loop reports it. */
typedef struct {
    uint64_t step, total_steps, epoch;  /* step is 1-based after the update */
    float lr, loss;
    double grad_norm;
    int rank, ranks;  /* this process among the ranks sharing the batch (0 of 1 alone) */
} red_loop_step;

typedef struct {
    const char *name;  /* "train", "distill": prefixes messages */
    /* forward, backward, clip and update on one batch with opt; sets loss and grad_norm */
    red_status (*step)(void *ctx, const int *in, const int *tgt, const red_adamw_cfg *opt, double clip,
                       red_loop_step *r, red_error *err);
    /* after a step, before its checkpoint (held-out loss, log lines); may be NULL */
    red_status (*after_step)(void *ctx, const red_loop_step *r, red_error *err);
    red_status (*save)(void *ctx, const red_loop_pos *pos, red_error *err);
    red_status (*load)(void *ctx, red_loop_pos *pos, red_error *err);
    void (*progress)(void *ctx, const red_loop_step *r);  /* after the checkpoint; may be NULL */
} red_loop_hooks;
/* The loop: batches from data in the order of o->seed, the schedule, a
 * checkpoint every save_every steps and at the end, resume and stop_after.
 * A non-finite loss or gradient norm stops it with the step named, the last
 * checkpoint untouched. */
red_status red_loop_run(const red_loop_opts *o, red_train_data *data, const red_loop_hooks *h, void *ctx,
                        red_error *err);

/* ------------------------------------------------------------------ train.c */

typedef struct {
    uint64_t step, total_steps, epoch;
    float loss, lr, eval_loss;  /* eval_loss NaN when not measured this step */
    double grad_norm;
} red_train_progress;

typedef struct {
    red_loop_opts loop;       /* resume: from out/train_state.bin (weights loaded by the caller) */
    uint64_t eval_every;
    int eval_batches;
    void (*progress)(void *ctx, const red_train_progress *p);
    void *progress_ctx;
} red_train_opts;

/* Trains m in place; checkpoints (weights, tokenizer, train_state.bin) every
 * save_every steps and at the end, atomically. Same seed, data and threads
 * give bit-identical weights, interrupted and resumed or not. */
red_status red_train(const red_train_opts *o, red_model *m, const red_tokenizer *tok, red_train_data *data,
                     red_train_data *eval_data, red_error *err);

/* ------------------------------------------------------------------ distill.c */

/* The method (../shared/docs/method.md): an LRC student of a frozen teacher.
 * Legend: d_t teacher width, d_s student width, P a [d_t, d_s] projection.
 * Input-side sites (q, k, v, gate, up) use W^S = W P; output-side sites (o,
 * down) W^S = Pᵀ W; the embedding E^S = E P_e (and the head H P_h when the
 * teacher is untied). Trainable: projections and student RMSNorm weights. */
enum { RED_SITE_Q, RED_SITE_K, RED_SITE_V, RED_SITE_O, RED_SITE_G, RED_SITE_U, RED_SITE_D, RED_N_SITES };
extern const char *const red_site_names[RED_N_SITES];  /* "q", "k", "v", "o", "gate", "up", "down" */

typedef struct {
    float *p[RED_N_SITES];        /* [d_t, d_s] each */
    float *attn_norm, *mlp_norm;  /* [d_s] */
} red_student_layer;

typedef struct {
    float *p_embed;               /* [d_t, d_s] */
    float *p_head;                /* [d_t, d_s]; NULL when the teacher is tied */
    float *norm;                  /* [d_s] final norm */
    red_student_layer *layers;    /* [L] */
} red_student_weights;

typedef enum { RED_INIT_LRC, RED_INIT_ORTHOGONAL, RED_INIT_PCA, RED_INIT_MAGNITUDE, RED_INIT_RED } red_init_kind;
typedef enum { RED_SCORE_ENERGY, RED_SCORE_RESID, RED_SCORE_ABSMEAN, RED_SCORE_WANDA } red_score_kind;
/* Student norms at init: DEFAULT = teacher-rms for red, teacher for magnitude, ones otherwise. */
typedef enum { RED_NORMS_DEFAULT, RED_NORMS_ONES, RED_NORMS_TEACHER, RED_NORMS_TEACHER_RMS } red_norm_init;
typedef enum { RED_KL_SEQUENCE, RED_KL_TOKEN } red_kl_reduction;

typedef struct {
    red_init_kind kind;
    float std;             /* lrc: N(0, std^2) entries */
    float orth_scale;      /* orthogonal: column norm (1 = unscaled) */
    red_score_kind score;  /* red: channel score (B2) */
    red_norm_init norms;   /* B3 */
    uint64_t seed;
} red_init_opts;

typedef struct {
    float tau, alpha;      /* KL temperature, clone weight */
    red_kl_reduction kl_reduction;  /* SEQUENCE (LRC): sum over tokens / sequences */
} red_loss_cfg;

/* Each term of the last loss; clone_site[k] is summed over layers (sites q,
 * k, v, o, gate, up, then ffn-out) and total = ce + kl + alpha * clone. */
typedef struct {
    double total, ce, kl, clone;
    double clone_site[RED_N_SITES];
} red_losses;

/* Seconds the last red_student_loss spent in each phase: merging the
 * weights, the teacher's and the student's forward (to the final norm),
 * the vocabulary chunks (logits, CE, KL, head backward), and the clone
 * terms with the backward (a batch's times_sum adds the chain into the
 * projections). */
typedef struct {
    double merge, teacher, student, head, backward;
} red_step_times;

typedef struct {
    red_model *teacher;           /* frozen, not owned */
    red_config cfg;               /* the student's (dim d_s, same heads/head_dim/ffn) */
    int d_t, d_s;
    size_t n;                     /* floats in each trainable slab */
    float *params, *grads, *adam_m, *adam_v;
    red_student_weights w, gw;    /* named pointers into params / grads */
    red_student_layer *layer_buf;
    int64_t adam_t;
    red_model model;              /* the merged student, an ordinary model */
    float *merged;                /* [red_param_floats(cfg)] its weights */
    int B, T;                     /* batch shape after red_student_train_alloc */
    float *clone_grad;            /* one layer's clone gradients [N, 2QD + 2KD + 2F + d_s] */
    float *o_s, *o_t, *y_t;       /* [N, d_t] clone scratch (o_t, y_t: where the forward kept none) */
    float *y_s, *y_tp;            /* [N, d_s] */
    float *act;                   /* [N, F] silu(g)*u, recomputed where the forward kept neither it nor y */
    double *partial;              /* loss partial sums (no allocation inside a step) */
    size_t partial_stride;        /* each clone site's share of partial, in doubles */
    double *row_ce, *row_kl;      /* [N] per-row losses, summed in row order */
    double *clone_layer;          /* [L, RED_N_SITES] clone MSEs, summed in layer order */
    red_step_times times;         /* of the last red_student_loss */
    red_step_times times_sum;     /* a distillation step's, summed over its sequences (thread seconds) */
    int shared;                   /* params and merged weights are another student's (a worker's view) */
} red_student;

/* A student of width d_s with the teacher's config otherwise; parameters zero. */
red_status red_student_alloc(red_student *s, red_model *teacher, int d_s, red_error *err);
void red_student_free(red_student *s);
/* Activations for B x T batches (teacher and student). */
red_status red_student_train_alloc(red_student *s, int B, int T, red_error *err);
/* Initialises projections and norms (method.md A4, B, C). calib (B x T rows,
 * calib_tokens of them) is needed by pca, red and teacher-rms norms. */
red_status red_student_initialize(red_student *s, const red_init_opts *o, red_train_data *calib,
                                  int64_t calib_tokens, red_error *err);
/* Builds the merged student weights from the projections (A2, A8). */
void red_student_merge(red_student *s);
/* Teacher and student forward on tokens [B*T]; CE on targets (< 0 ignored),
 * KL and clone terms (A6). With want_grad, s->grads is overwritten with the
 * gradient of the total. CE and KL run over the vocabulary in chunks of
 * red_model_head_rows rows, so the logits left in the teacher's and the
 * merged model's run states are the last chunk's (all rows when B*T fits). */
red_status red_student_loss(red_student *s, const int *tokens, const int *targets, const red_loss_cfg *c,
                            int want_grad, red_losses *out);

/* `red inspect`: why a channel selection keeps less than a rotation. One
 * calibration pass as the inits make (same rows, same statistics), then per
 * norm site (site 2l: layer l's attention norm, 2l+1: its MLP norm, 2L: the
 * final norm; energies of the norm outputs x̂ the weights read) the fraction
 * of sum ||x̂||² kept by red's selection (default energy score), by
 * magnitude's, by the pca init's shared basis, and by the site's own top d_s
 * principal directions (the most any d_s-dim projection keeps), and how
 * concentrated the channel energy is: share of the top ceil(1%) and ceil(10%)
 * of channels, max / median channel RMS, kurtosis (m4 / m2², 3 for a
 * Gaussian) of the channel RMS values. */
typedef struct {
    double kept_red, kept_magnitude, kept_pca_shared, kept_pca;
    double top1_share, top10_share, rms_max_over_median, rms_kurtosis;
} red_site_energy;
typedef struct {
    int n_sites, d_t, d_s;
    int64_t rows;                 /* calibration tokens seen */
    red_site_energy *site;        /* [n_sites] */
    int *sel_red, *sel_magnitude; /* [d_s] the selections, ascending */
} red_inspect_result;
/* B x T is the calibration batch shape (the rows depend on it, as for the inits). */
red_status red_inspect(red_model *teacher, int d_s, red_train_data *calib, int64_t calib_tokens, int B, int T,
                       red_inspect_result *r, red_error *err);
void red_inspect_free(red_inspect_result *r);

/* eRank and token indistinguishability (red_token_indist; a position's id is
 * its input token) of the same hidden states as red_erank_layers, with the
 * eRank computed exactly as there (the same bits). final_only measures out[L]
 * alone; layers not measured read NaN. */
typedef struct {
    double erank;
    red_indist ind;
} red_layer_metrics;
red_status red_hidden_metrics(red_model *m, const int *tokens, int n_rows, int T, int center, int final_only,
                              red_layer_metrics *out, red_error *err);

typedef struct {
    uint64_t step, total_steps, epoch;
    float lr;
    red_losses loss;
    double grad_norm;
} red_distill_progress;

typedef struct {
    red_loop_opts loop;           /* out: the student's directory (state, curve) */
    red_loss_cfg loss;
    uint64_t log_every;
    const char *record;           /* extra resume-record lines (the init); may be NULL */
    void (*progress)(void *ctx, const red_distill_progress *p);
    void *progress_ctx;
    /* 0: the batch's summed merged-model gradient is chained into the
     * projections once (fewer flops); 1: each sequence's on its own, so the
     * batch's sum, and what ranks exchange, is the projections' gradient
     * (fewer bytes between ranks: 271 MB against 1,026 MB at Qwen2.5-0.5B's
     * shape to width 448). The two differ in their last bits. */
    int chain_each;
} red_distill_opts;

/* The one source of init names and defaults. lrc: Gaussian with std
 * 0.02*sqrt(3072/d_t) (LRC's column norm at any width); lrc-literal: std 0.02. */
extern const red_name red_init_names[], red_score_names[], red_norms_names[], red_kl_names[];
void red_init_opts_default(red_init_opts *io);
/* Sets io->kind (and lrc's std for the teacher width d_t) from a name of red_init_names. */
red_status red_init_by_name(const char *name, int d_t, red_init_opts *io, red_error *err);
void red_distill_opts_default(red_distill_opts *o);

/* One student's whole workflow: initialise, measure, distil, merge, save. */
typedef struct {
    red_model *teacher;            /* loaded, frozen; its pool runs everything */
    const red_tokenizer *tok;      /* written beside the student */
    const char *teacher_name;      /* for the log */
    const char *init_name;         /* as given to red_init_by_name */
    int width;
    red_init_opts init;
    red_distill_opts opt;          /* opt.loop.out: the student's directory */
    red_train_data *data, *calib;
    int64_t calib_tokens;
    const int *erank_rows;         /* [n_erank_rows, opt.loop.seq] fixed measurement rows; 0 rows = no eRank */
    int n_erank_rows;
    int measure_teacher;           /* the teacher's eRank too */
    int write_log;                 /* distill_log.json and distill_init.json */
    /* n_segments > 0: training in that many segments, each ending in a
     * checkpoint and a call of at_segment (seg 1..n); seg 0 is the init */
    int n_segments;
    red_status (*at_segment)(void *ctx, red_student *s, int seg, int n_seg, uint64_t step, red_error *err);
    void *ctx;
    void (*say)(void *ctx, const char *msg);  /* progress lines; may be NULL */
    void *say_ctx;
} red_distill_job;

typedef struct {
    int n_layers, n_proj, width;
    double *erank_teacher, *erank_init, *erank_final;  /* [L+1] each: blocks, then final norm */
    red_layer_metrics *hidden_teacher, *hidden_init, *hidden_final;  /* [L+1] each, the same eRank and
                                                        token indistinguishability (NaN when not measured) */
    float *sv_init, *sv_final;                         /* [n_proj, width] projection spectra */
    double wall_seconds;
} red_distill_report;
/* Runs the job into s (initialised here; the caller frees it, also on failure)
 * and r (freed with red_distill_report_free). */
red_status red_distill_run(red_distill_job *j, red_student *s, red_distill_report *r, red_error *err);
void red_distill_report_free(red_distill_report *r);

/* ------------------------------------------------------------------ reproduce.c */

typedef struct {
    const char *teacher, *out;
    const char *inits[16];
    int n_inits, n_seeds;
    double width_ratio;       /* 0.5 half, 0.25 quarter */
    uint64_t tokens;          /* distillation tokens per student */
    double mix;               /* reasoning share of the distillation data (tokens) */
    int64_t corpus_lines;     /* general corpus lines in the distillation data */
    int per_step;             /* test problems per step count 1..6 */
    int n_choice;             /* multiple-choice test items */
    int n_evals;              /* reasoning checkpoints along training (>= 1) */
    int batch, seq;
    float lr, tau, alpha;
    int64_t calib_tokens, erank_tokens;
    const char *preset;       /* the report's title: "default run", "long run", ... */
    const char *general_file; /* rows of an lm-eval task (a red_lm_task, eval/lmeval.c) scored (acc) for the */
    int general_task;         /* general-ability column instead of the built-in items (NULL: built-in) */
    void (*say)(void *ctx, const char *msg);
    void *say_ctx;
    const volatile sig_atomic_t *stop;  /* see red_loop_opts; checked by every student's training */
} red_repro_opts;

/* The experiment of method.md §E on a teacher directory; resumable (see
 * reproduce.c for the layout of o->out). */
red_status red_reproduce(const red_repro_opts *o, red_pool *pool, red_error *err);

/* ------------------------------------------------------------------ eval/pyrandom.c */

/* CPython's random.Random, bit for bit (MT19937 with CPython's seeding),
 * for lm-eval's few-shot draws. */
typedef struct {
    uint32_t mt[624];
    int mti;
} red_pyrandom;

void red_pyrandom_seed(red_pyrandom *r, uint64_t seed);      /* random.Random(seed), seed >= 0 */
/* out[0..k) = random.sample(range(n), k) */
red_status red_pyrandom_sample(red_pyrandom *r, int64_t n, int k, int64_t *out);

/* ------------------------------------------------------------------ eval/gsm8k.c */

typedef struct {
    char *question, *answer;
} red_gsm8k_doc;

typedef enum { RED_GSM8K = 0, RED_GSM8K_COT = 1, RED_GSM8K_COT_ZEROSHOT = 2 } red_gsm8k_task;

red_status red_gsm8k_load(const char *path, red_gsm8k_doc **docs, int *n, red_error *err);
void red_gsm8k_free(red_gsm8k_doc *docs, int n);
red_status red_gsm8k_task_parse(const char *name, red_gsm8k_task *t);  /* gsm8k, gsm8k_cot, gsm8k_cot_zeroshot */
/* The task's stop strings ("Question:"/"Q:", "</s>", "<|im_end|>"). */
const char *const *red_gsm8k_stops(red_gsm8k_task t, int *n);
/* lm-eval's prompt: shots index train (gsm8k only; cot uses its 8 fixed exemplars). */
void red_gsm8k_prompt(red_gsm8k_task t, const red_gsm8k_doc *train, const int64_t *shots, int n_shots,
                      const char *question, red_sbuf *out);
/* The reference string exact_match compares against (whole answer, or for
 * gsm8k_cot the text after the last '####', stripped). */
void red_gsm8k_gold(red_gsm8k_task t, const char *answer, red_sbuf *out);
/* Length of gen after cutting at the first occurrence of each stop in turn. */
size_t red_cut_at_stops(const char *gen, size_t len, const char *const *stops, int n_stops);

typedef struct {
    red_sbuf strict, flexible;   /* extracted answers */
    int strict_ok, flexible_ok;
} red_gsm8k_scored;
void red_gsm8k_score_one(red_gsm8k_task t, const char *completion, const char *answer, red_gsm8k_scored *s);
void red_gsm8k_scored_free(red_gsm8k_scored *s);
/* lm-eval's mean_stderr from a sum and sum of squares over n items. */
double red_mean_stderr(double sum, double sumsq, int64_t n);

/* ------------------------------------------------------------------ eval/generate.c */

typedef struct {
    int max_gen;                 /* new tokens per prompt (lm-eval default 256) */
    int batch;                   /* prompts decoded together */
    int add_bos;                 /* prepend BOS (lm-eval v0.4.8: no) */
    int calculator;              /* GSM8K's calculator: after "<<expr=" the value of expr and ">>"
                                    are fed instead of the model's tokens (not lm-eval; report apart) */
    const char *const *stops;    /* stop strings, cut as lm-eval cuts */
    int n_stops;
    void (*progress)(void *ctx, int done, int total);  /* after each batch; may be NULL */
    void *progress_ctx;
} red_gen_opts;

/* lm-eval's GSM8K generate task on n docs: prompts (K exemplars drawn per
 * doc as random.Random(1234).sample does, for gsm8k; cot's fixed 8), the
 * task's stop strings (o's are ignored), greedy generation. prompts (may be
 * NULL) and outs are n sbufs, initialised here. */
red_status red_gsm8k_run(red_model *m, const red_tokenizer *tok, red_gsm8k_task task, const red_gsm8k_doc *train,
                         int n_train, int shots, const red_gsm8k_doc *docs, int n, const red_gen_opts *o,
                         red_sbuf *prompts, red_sbuf *outs, red_error *err);

/* ------------------------------------------------------------------ eval/choice.c */

/* A multiple-choice doc. Standard: text = query, options = choices, scored as
 * (query, " " + choice). WinoGrande-style (multi_context): options are the
 * contexts and text the shared continuation, scored as (context, " " + text). */
typedef struct {
    char *text;
    char **options;
    int n_options;
    int gold;
    int multi_context;
} red_mc_doc;

red_status red_mc_load(const char *path, red_mc_doc **docs, int *n, red_error *err);
void red_mc_free(red_mc_doc *docs, int n);
/* Request k of d as lm-eval forms it: returns the context; *cont gets the
 * continuation without the target_delimiter " " that precedes it. */
const char *red_mc_request(const red_mc_doc *d, int k, const char **cont);
/* The whole harness on n docs: requests (query, " " + choice) or (context,
 * " " + continuation), loglikelihood, then pred/pred_norm per doc; ll (sum of
 * the docs' option counts, may be NULL) receives every request's score. */
red_status red_mc_eval(red_model *m, const red_tokenizer *tok, const red_mc_doc *docs, int n, int add_bos, int batch,
                       double *ll, int *pred, int *pred_norm, void (*progress)(void *, int, int), void *pctx,
                       red_error *err);

/* ------------------------------------------------------------------ eval/lmeval.c */

/* lm-evaluation-harness's zero-shot general-ability tasks, read from rows in
 * the Hugging Face datasets' schemas (README "General-ability benchmarks"). */
typedef enum {
    RED_LM_ARC_EASY, RED_LM_ARC_CHALLENGE, RED_LM_HELLASWAG, RED_LM_PIQA, RED_LM_WINOGRANDE, RED_LM_SCIQ,
    RED_LM_BOOLQ, RED_LM_MMLU, RED_LM_N_TASKS
} red_lm_task;
#define RED_MMLU_SUBJECTS 57
#define RED_MMLU_GROUPS 4  /* stem, other, social_sciences, humanities */

red_status red_lm_task_parse(const char *name, red_lm_task *t);  /* RED_E_ARG if unknown */
const char *red_lm_task_name(red_lm_task t);
int red_lm_has_acc_norm(red_lm_task t);  /* lm-eval reports acc_norm for this task */
const char *red_mmlu_group_name(int g);

/* A task's docs: docs[i].text and options are lm-eval's doc_to_text and
 * doc_to_choice (WinoGrande: the contexts and the shared continuation). */
typedef struct {
    red_lm_task task;
    red_mc_doc *docs;
    int n;
    int *subject;  /* MMLU: index of each doc's subject (-1 for other tasks) */
} red_lm_set;

/* A JSONL file, the first `limit` rows (all when limit <= 0). */
red_status red_lm_load(red_lm_task t, const char *path, int limit, red_lm_set *s, red_error *err);
void red_lm_set_free(red_lm_set *s);
/* Every request, doc then choice order, one line each:
 * {"doc": i, "choice": j, "context": "...", "continuation": " ..."}. */
void red_lm_requests_jsonl(const red_lm_set *s, red_sbuf *out);

typedef struct {
    int n;
    double acc, acc_stderr;            /* MMLU: micro average, lm-eval's pooled group stderr */
    double acc_norm, acc_norm_stderr;  /* NaN where lm-eval does not report acc_norm */
    int subj_n[RED_MMLU_SUBJECTS], subj_correct[RED_MMLU_SUBJECTS];
    int group_n[RED_MMLU_GROUPS];
    double group_acc[RED_MMLU_GROUPS], group_stderr[RED_MMLU_GROUPS];
} red_lm_summary;
typedef struct {
    double *ll;           /* [n_req] summed log-likelihood per request */
    int *pred, *pred_norm; /* [n] */
    int n_req;
    red_lm_summary summary;
} red_lm_scores;

red_status red_lm_eval(red_model *m, const red_tokenizer *tok, const red_lm_set *s, int add_bos, int batch,
                       void (*progress)(void *, int, int), void *pctx, red_lm_scores *sc, red_error *err);
void red_lm_scores_free(red_lm_scores *sc);
/* {"data", "n", "acc", "acc_stderr"[, "acc_norm", "acc_norm_stderr"][, MMLU "groups", "subjects"]} */
void red_lm_result_json(const red_lm_set *s, const red_lm_summary *r, const char *data, red_sbuf *b);
/* Per doc: {"doc", "lls", "pred", "gold", "acc"[, "pred_norm", "acc_norm"][, "subject"]}. */
void red_lm_samples_jsonl(const red_lm_set *s, const red_lm_scores *sc, red_sbuf *b);

/* ------------------------------------------------------------------ eval/report.c */

/* What red eval and red score-gsm8k report: summary lines for people go to
 * summary, the JSON summary to json, one JSON line per doc to samples (json
 * and samples may be NULL). Nothing is printed or written to a file here;
 * RED_E_NOMEM when a buffer failed. */
typedef struct {
    const char *task_name;    /* gsm8k, gsm8k_cot, gsm8k_cot_zeroshot */
    const char *model;        /* NULL: completions from elsewhere */
    int shots;                /* -1: completions scored as given (no generation settings) */
    int max_gen, bos, calculator;
} red_gsm8k_report_opts;
/* Scores completions[0..n) against docs; prompts may be NULL. */
red_status red_gsm8k_report(const red_gsm8k_report_opts *o, red_gsm8k_task task, const red_gsm8k_doc *docs,
                            const red_sbuf *completions, const red_sbuf *prompts, int n, red_sbuf *summary,
                            red_sbuf *json, red_sbuf *samples, red_error *err);
/* Multiple choice (red_mc_eval's ll, pred and pred_norm of n docs): acc, and acc_norm unless a doc is WinoGrande's form. */
red_status red_mc_report(const char *model, const char *data, const red_mc_doc *docs, int n, const double *ll,
                         const int *pred, const int *pred_norm, int bos, red_sbuf *summary, red_sbuf *json,
                         red_sbuf *samples, red_error *err);
/* lm-eval tasks: {"model", "num_fewshot", "bos", "results": {TASK: red_lm_result_json, ...}}, one task at a time. */
void red_lm_report_begin(const char *model, int bos, red_sbuf *json);
red_status red_lm_report_task(const red_lm_set *s, const red_lm_summary *r, const char *data, int bos,
                              red_sbuf *summary, red_sbuf *json, red_error *err);
red_status red_lm_report_end(red_sbuf *json, red_error *err);

/* ------------------------------------------------------------------ eval/tasks.c */

/* Splits are decided by a hash of each item's skeleton, so they are disjoint
 * by construction: train 70%, distill 15%, calib 5%, test 10% of the space. */
typedef enum { RED_SPLIT_TRAIN = 0, RED_SPLIT_DISTILL = 1, RED_SPLIT_CALIB = 2, RED_SPLIT_TEST = 3 } red_split;
red_status red_split_parse(const char *name, red_split *s);

typedef struct {
    red_split split;
    int64_t n;            /* problems to write */
    uint64_t seed;
    int min_steps, max_steps;  /* 1..6 */
    int64_t max_number;   /* every intermediate result in [1, max_number] */
    const char *ops;      /* subset of "+-*\/" */
    int restate;          /* solution lines restate the question's sentence: "X loses 2: 5 - 2 = ..." */
    int keyed;            /* question sentences start "On <day>, " (a lookup key per step) */
} red_reasoning_opts;
/* GSM8K-format JSONL lines ({"question", "answer"}) appended to out. */
red_status red_tasks_reasoning(const red_reasoning_opts *o, red_sbuf *out, red_error *err);

typedef struct {
    red_split split;
    int64_t n;            /* items (choice) or extra lines (corpus) */
    uint64_t seed;
    uint64_t world_seed;  /* the world's facts; corpus and items must share it */
    int n_entities;       /* 4..256 creatures */
} red_world_opts;
/* Plain-text corpus: every fact once, then n lines of paraphrased facts. */
red_status red_tasks_corpus(const red_world_opts *o, red_sbuf *out, red_error *err);
/* Multiple-choice JSONL (standard and WinoGrande forms) about the world. */
red_status red_tasks_choice(const red_world_opts *o, red_sbuf *out, red_error *err);

/* ------------------------------------------------------------------ eval/svg.c */

/* One line of a plot: n points (x, y), optional symmetric error bars. */
typedef struct {
    const char *label;     /* legend text (NULL: not in the legend) */
    const double *x, *y, *err;  /* err may be NULL */
    int n;
    const char *color;     /* NULL: the palette's k-th colour */
    int dashed, markers;
    double width;          /* 0 normal, 2 thick, 1 thin */
} red_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int logx, logy;
    int integer_x;         /* ticks at whole numbers only */
    int have_xmin, have_ymin, have_ymax;
    double xmin, ymin, ymax;
} red_plot;

/* A standalone SVG line plot (title, labelled axes, grid, legend), atomically. */
red_status red_svg_plot(const char *path, const red_plot *p, const red_series *s, int ns, red_error *err);

#endif /* RED_H */
