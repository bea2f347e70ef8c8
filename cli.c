/* cli.c - `red` subcommands and argument parsing; the only place that exits. */
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *usage_main =
    "red - Reasoning-preserved Efficient Distillation, in C99\n"
    "\n"
    "usage: red <command> [options]   (red <command> --help for details)\n"
    "\n"
    "commands:\n"
    "  svd      thin SVD of a matrix in a .npy file (one-sided Jacobi)\n"
    "  erank    effective rank of a .npy matrix, or per layer of a model on data\n"
    "  tasks    generate the built-in reasoning and general-ability tasks (JSONL/text)\n"
    "  train    train a byte-level model from scratch (checkpoints, exact resume)\n"
    "  distill  LRC/RED distillation of a teacher into a narrower student\n"
    "  inspect  activation energy a width-D init keeps per norm site (red, magnitude, pca)\n"
    "  reproduce  the paper's experiment end to end: report.md, results.json, SVG plots\n"
    "  tokenizer  learn a BPE tokenizer on data (train), show an encoding (encode)\n"
    "  init     write a randomly initialised model directory (smoke tests)\n"
    "  info     describe a model (directory, .gguf or llama2.c .bin)\n"
    "  convert  convert a model between a directory, GGUF and llama2.c\n"
    "  forward  logits of a token sequence, written as a .npy [T, V]\n"
    "  generate continue token prompts with a KV cache (greedy or sampled)\n"
    "  eval     lm-eval-compatible harnesses: gsm8k (3 variants), multiple choice\n"
    "  score-gsm8k  score completions from any system with lm-eval's gsm8k filters\n"
    "  bench    measure matmul / svd / peak / train / infer (key=value lines)\n"
    "  version  print version and build configuration\n"
    "\n"
    "threads: --threads N on any command, else $RED_THREADS, else online cores.\n";

static const char *usage_svd =
    "usage: red svd A.npy [--u U.npy] [--s S.npy] [--v V.npy] [--threads N]\n"
    "\n"
    "Thin SVD A = U diag(S) Vᵀ of a 2-D float32/float64 .npy (m x n), k = min(m,n):\n"
    "U is m x k, S has k values (descending, >= 0), V is n x k; outputs are float32\n"
    ".npy written atomically. Without --s the singular values go to stdout, one per\n"
    "line. A summary (shape, sweeps, seconds) goes to stderr.\n";

static const char *usage_erank =
    "usage: red erank X.npy [--ids IDS.npy] [--center] [--json OUT] [--threads N]\n"
    "       red erank --model DIR --data FILE [--data FILE ...] [--tokens N] [--seq T]\n"
    "                 [--center] [--json OUT] [--threads N]\n"
    "\n"
    "Prints the effective rank (Roy & Vetterli 2007) of the rows of a 2-D .npy\n"
    "matrix X (N x d): exp of the entropy of the normalised singular values; and\n"
    "token indistinguishability: cos_mean, the mean cosine over all pairs of rows,\n"
    "and indist@0.95 / indist@0.99, the share of pairs of rows with different token\n"
    "ids whose cosine is at least 0.95 / 0.99 (exact, in double; a zero row has\n"
    "cosine 0). IDS.npy holds the N ids (integers, or floats holding whole\n"
    "numbers); without it every pair counts as distinct.\n"
    "With --model: the same per layer, for the residual stream after each block\n"
    "and the final-norm output, on the first N tokens (default 8192) of the data\n"
    "(text or JSONL as red train reads it, in rows of T tokens, default 256, taken\n"
    "in a fixed order, so every model is measured on the same tokens); a\n"
    "position's id is its input token.\n"
    "--center subtracts the column means first for eRank (default: uncentred).\n"
    "--json writes {erank, cos_mean, indist_0.95, indist_0.99} (per-layer arrays\n"
    "with --model).\n";

/* Prints "red: " and the formatted message, then exits with code. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
static void die(int code, const char *fmt, ...) {
    va_list ap;
    fputs("red: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* SIGINT/SIGTERM during training: the loop writes a checkpoint after the
 * current step and returns; a second signal kills at once. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    stop_requested = 1;
    signal(sig, SIG_DFL);
}

static void catch_stop_signals(void) {
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
}

/* Exits with the library's message; 130 (as a shell reports SIGINT) when interrupted. */
static void die_err(red_status st, const red_error *err) {
    fprintf(stderr, "red: %s\n", err->msg);
    exit(st == RED_E_INTERRUPTED ? 130 : 1);
}

/* Parses a positive int option value or exits with a usage error. */
static int parse_threads(const char *s) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 1024) die(2, "--threads: expected an integer in 1..1024, got '%s'", s);
    return (int)v;
}

static red_pool *make_pool(int threads) {
    red_pool *p = red_pool_create(threads);
    if (!p) {
        fprintf(stderr, "red: cannot start a pool of %d threads: each reserves %d MB of matrix-multiply scratch, so at "
                "most %d (and the system must allow that many threads and that memory)\n",
                threads > 0 ? threads : red_default_threads(), (int)(RED_POOL_SCRATCH_BYTES >> 20), RED_POOL_MAX_THREADS);
        exit(1);
    }
    return p;
}

/* Outputs are checked before any work starts: writable (a directory
 * creatable), and never one of the inputs, which writing would destroy. */
static void check_output(const char *cmd, const char *opt, const char *path, int is_dir) {
    red_error err;
    if (path && red_check_output(path, is_dir, &err) != RED_OK) {
        fprintf(stderr, "red: %s: %s: %s\n", cmd, opt, err.msg);
        exit(1);
    }
}

static void check_distinct(const char *cmd, const char *out_opt, const char *out, const char *in_opt, const char *in) {
    if (out && in && red_same_file(out, in)) {
        fprintf(stderr, "red: %s: %s %s is the same file as %s %s; refusing to overwrite an input\n", cmd, out_opt, out,
                in_opt, in);
        exit(2);
    }
}

static void load_matrix(const char *path, red_tensor *t) {
    red_error err;
    if (red_npy_load(path, t, &err) != RED_OK) die(1, "%s", err.msg);
    if (t->ndim != 2) {
        fprintf(stderr, "red: %s: expected a 2-D matrix, found %d dimensions\n", path, t->ndim);
        exit(1);
    }
    if (t->shape[0] > 1 << 30 || t->shape[1] > 1 << 30) die(1, "%s: matrix too large", path);
}

static void save_matrix(const char *path, float *data, int ndim, int64_t d0, int64_t d1) {
    red_tensor t;
    red_error err;
    t.data = data;
    t.ndim = ndim;
    t.shape[0] = d0;
    t.shape[1] = d1;
    t.shape[2] = t.shape[3] = 1;
    if (red_npy_save(path, &t, &err) != RED_OK) die(1, "%s", err.msg);
}

static void *xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "red: out of memory (%zu bytes) at %s:%d\n", n, file, line);
        exit(1);
    }
    return p;
}
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)

static int cmd_svd(int argc, char **argv) {
    const char *in = NULL, *u_out = NULL, *s_out = NULL, *v_out = NULL;
    int threads = 0, i, m, n, k;
    red_tensor a;
    float *U = NULL, *S, *V = NULL;
    red_svd_info info;
    red_status st;
    red_pool *pool;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_svd, stdout);
            return 0;
        } else if (!strcmp(o, "--u") || !strcmp(o, "--s") || !strcmp(o, "--v") || !strcmp(o, "--threads")) {
            if (i + 1 >= argc) die(2, "%s needs a value", o);
            if (!strcmp(o, "--u")) u_out = argv[++i];
            else if (!strcmp(o, "--s")) s_out = argv[++i];
            else if (!strcmp(o, "--v")) v_out = argv[++i];
            else threads = parse_threads(argv[++i]);
        } else if (o[0] == '-' && o[1]) {
            die(2, "svd: unknown option '%s' (see red svd --help)", o);
        } else if (!in) {
            in = o;
        } else {
            die(2, "svd: unexpected argument '%s'", o);
        }
    }
    if (!in) {
        fputs(usage_svd, stderr);
        return 2;
    }
    load_matrix(in, &a);
    m = (int)a.shape[0];
    n = (int)a.shape[1];
    k = m < n ? m : n;
    S = xmalloc((size_t)k * sizeof *S);
    if (u_out) U = xmalloc((size_t)m * k * sizeof *U);
    if (v_out) V = xmalloc((size_t)n * k * sizeof *V);
    pool = make_pool(threads);
    st = red_svd(pool, m, n, a.data, n, U, S, V, &info);
    red_pool_destroy(pool);
    if (st == RED_E_ARG) die(1, "%s: matrix contains NaN or Inf", in);
    if (st != RED_OK) {
        fprintf(stderr, "red: svd of %s failed: %s after %d sweeps\n", in, red_status_name(st), info.sweeps);
        return 1;
    }
    fprintf(stderr, "svd: %s %dx%d k=%d sweeps=%d rotations=%d\n", in, m, n, k, info.sweeps,
            info.rotations);
    if (u_out) save_matrix(u_out, U, 2, m, k);
    if (v_out) save_matrix(v_out, V, 2, n, k);
    if (s_out) save_matrix(s_out, S, 1, k, 1);
    else
        for (i = 0; i < k; i++) printf("%.9g\n", S[i]);
    free(U);
    free(S);
    free(V);
    red_tensor_free(&a);
    return 0;
}

static int cmd_erank_model(int argc, char **argv);
static void write_text_file(const char *path, const red_sbuf *b);

/* {"erank": ..., "cos_mean": ..., "indist_0.95": ..., "indist_0.99": ...} members, arrays of n per key. */
static void put_hidden_metrics(red_sbuf *b, const red_layer_metrics *m, int n, int as_array) {
    static const char *const keys[] = {"erank", "cos_mean", "indist_0.95", "indist_0.99"};
    int k, l;
    for (k = 0; k < 4; k++) {
        double v[1024];
        for (l = 0; l < n && l < 1024; l++)
            v[l] = k == 0 ? m[l].erank : k == 1 ? m[l].ind.cos_mean : m[l].ind.indist[k - 2];
        red_sbuf_printf(b, "%s\"%s\": ", k ? ", " : "", keys[k]);
        if (as_array) red_json_put_numbers(b, v, n < 1024 ? n : 1024);
        else red_json_put_number(b, v[0]);
    }
}

static int cmd_erank(int argc, char **argv) {
    const char *in = NULL, *ids_path = NULL, *json = NULL;
    int threads = 0, center = 0, i;
    for (i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--model")) return cmd_erank_model(argc, argv);
    red_tensor x;
    red_pool *pool;
    red_layer_metrics met;
    int64_t *ids = NULL, n_ids = 0;
    red_error err;
    red_status st;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_erank, stdout);
            return 0;
        } else if (!strcmp(o, "--center")) {
            center = 1;
        } else if (!strcmp(o, "--threads") || !strcmp(o, "--ids") || !strcmp(o, "--json")) {
            if (i + 1 >= argc) die(2, "%s needs a value", o);
            if (!strcmp(o, "--threads")) threads = parse_threads(argv[++i]);
            else if (!strcmp(o, "--ids")) ids_path = argv[++i];
            else json = argv[++i];
        } else if (o[0] == '-' && o[1]) {
            die(2, "erank: unknown option '%s' (see red erank --help)", o);
        } else if (!in) {
            in = o;
        } else {
            die(2, "erank: unexpected argument '%s'", o);
        }
    }
    if (!in) {
        fputs(usage_erank, stderr);
        return 2;
    }
    load_matrix(in, &x);
    if (ids_path) {
        if (red_npy_load_ids(ids_path, &ids, &n_ids, &err) != RED_OK) die(1, "%s", err.msg);
        if (n_ids != x.shape[0])
            die(1, "erank: %s", "--ids holds a different number of ids than X has rows");
    }
    pool = make_pool(threads);
    st = red_erank(pool, (int)x.shape[0], (int)x.shape[1], x.data, (int)x.shape[1], center, &met.erank);
    if (st == RED_E_ARG) die(1, "%s: matrix contains NaN or Inf", in);
    if (st != RED_OK) die(1, "erank: SVD failed: %s", red_status_name(st));
    if (red_token_indist(pool, (int)x.shape[0], (int)x.shape[1], x.data, (int)x.shape[1], ids, &met.ind) != RED_OK)
        die(1, "%s: cannot measure indistinguishability (NaN, Inf, no columns or out of memory)", in);
    red_pool_destroy(pool);
    red_tensor_free(&x);
    free(ids);
    printf("erank        %.6f\ncos_mean     %.6f\nindist@0.95  %.6f\nindist@0.99  %.6f\n", met.erank,
           met.ind.cos_mean, met.ind.indist[0], met.ind.indist[1]);
    if (json) {
        red_sbuf b;
        red_sbuf_init(&b);
        red_sbuf_puts(&b, "{");
        put_hidden_metrics(&b, &met, 1, 0);
        red_sbuf_printf(&b, ", \"center\": %s, \"pairs\": %lld, \"distinct_pairs\": %lld}\n", center ? "true" : "false",
                        (long long)met.ind.pairs, (long long)met.ind.distinct_pairs);
        write_text_file(json, &b);
        red_sbuf_free(&b);
    }
    return 0;
}


/* Copies text into out (strlen(text) + 1 bytes), turning \n, \t and \\ into
 * newline, tab and backslash when escape is set; returns the length. */
static size_t unescape_text(const char *text, int escape, char *out) {
    size_t len = strlen(text), q, k = 0;
    for (q = 0; q < len; q++) {
        if (escape && text[q] == '\\' && q + 1 < len) {
            char c = text[++q];
            out[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else out[k++] = text[q];
    }
    out[k] = 0;
    return k;
}

static const char *usage_info =
    "usage: red info --model PATH\n"
    "\n"
    "Prints the model's configuration (Hugging Face config.json keys), its\n"
    "parameter count and, for a directory, the dtypes of model.safetensors.\n"
    "PATH (for every --model and --teacher): a Hugging Face directory, a .gguf or\n"
    "a llama2.c .bin; --tokenizer PATH gives the tokenizer when the model has none.\n";

static const char *usage_forward =
    "usage: red forward --model DIR --tokens \"ID ID ...\" --out LOGITS.npy [--threads N]\n"
    "\n"
    "Runs the model on one token sequence (ids separated by spaces or commas,\n"
    "position 0 first) and writes the logits as float32 .npy of shape [T, V],\n"
    "atomically. Prints the argmax of the last position to stdout.\n";

static const char *usage_generate =
    "usage: red generate --model PATH [--tokenizer PATH] (--tokens \"ID ...[; ID ...]\" | --prompt TEXT [--escape] [--bos])\n"
    "                    -n N [--temp T] [--top-k K] [--top-p P] [--seed S] [--stop ID | --no-stop]\n"
    "                    [--threads N]\n"
    "\n"
    "--prompt TEXT is tokenized with the model's tokenizer (red_tokenizer.json,\n"
    "tokenizer.json or tokenizer.bin) and the continuation is printed as text;\n"
    "--escape turns \\n, \\t and \\\\ into newline, tab and backslash; --bos starts\n"
    "from the BOS token, as does a tokenizer whose config says add_bos_token\n"
    "(llama2.c: always).\n"
    "\n"
    "Continues each prompt (several prompts, separated by ';', run as one batch)\n"
    "by up to N tokens with a KV cache and prints the new ids of each prompt on\n"
    "its own line. --temp 0 (the default) is greedy; otherwise logits/T are\n"
    "sampled after top-k (0 = off) and top-p (1 = off) filtering with red's RNG\n"
    "seeded by --seed (default 0), so a run is reproducible. A prompt stops after\n"
    "emitting --stop (default: eos_token_id from config.json).\n";

/* Parses "1 2, 3" into ids; exits with a usage error on anything else. */
static int parse_ids(const char *s, int **out) {
    int n = 0, cap = 16, *ids = xmalloc(sizeof(int) * 16);
    const char *p = s;
    while (*p) {
        char *end;
        long v;
        if (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') { p++; continue; }
        errno = 0;
        v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7FFFFFFF) {
            fprintf(stderr, "red: --tokens: expected non-negative integer ids, found '%.20s' at character %d\n", p,
                    (int)(p - s));
            exit(2);
        }
        if (n == cap) {
            int *g = realloc(ids, sizeof(int) * (size_t)(cap *= 2));
            if (!g) die(1, "out of memory");
            ids = g;
        }
        ids[n++] = (int)v;
        p = end;
    }
    *out = ids;
    return n;
}

static void load_model(red_model *m, const char *dir, red_pool *pool) {
    red_error err;
    if (!dir) die(2, "--model DIR is required");
    if (red_model_open(m, dir, pool, &err) != RED_OK) die(1, "%s", err.msg);
}

static void check_ids(const int *ids, int n, int vocab, const char *what) {
    int i;
    for (i = 0; i < n; i++)
        if (ids[i] >= vocab) {
            fprintf(stderr, "red: %s: token %d (position %d) is outside the vocabulary 0..%d\n", what, ids[i], i,
                    vocab - 1);
            exit(2);
        }
}

/* Options shared by the model commands. */
typedef struct {
    const char *model, *tokens, *out, *prompt, *tokenizer;
    int escape, bos;
    int threads, n, top_k, stop, no_stop;
    float temp, top_p;
    uint64_t seed;
} model_args;

static double parse_num(const char *opt, const char *s, double lo, double hi) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "red: %s: expected a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
        exit(2);
    }
    return v;
}

/* An integer option: a whole number in [lo, hi] ("2.5" is refused, "1e6" is 1000000). */
static double parse_whole(const char *opt, const char *s, double lo, double hi) {
    double v = parse_num(opt, s, lo, hi);
    if (v != floor(v)) {
        fprintf(stderr, "red: %s: expected an integer in [%g, %g], got '%s'\n", opt, lo, hi, s);
        exit(2);
    }
    return v;
}

static void parse_model_args(int argc, char **argv, model_args *a, const char *usage, const char *cmd) {
    int i;
    memset(a, 0, sizeof *a);
    a->top_p = 1.0f;
    a->stop = -2;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(o, "--no-stop")) { a->no_stop = 1; continue; }
        if (!strcmp(o, "--escape")) { a->escape = 1; continue; }
        if (!strcmp(o, "--bos")) { a->bos = 1; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "red %s: %s needs a value (see red %s --help)\n", cmd, o, cmd);
            exit(2);
        }
        if (!strcmp(o, "--model")) a->model = argv[++i];
        else if (!strcmp(o, "--tokenizer")) a->tokenizer = argv[++i];
        else if (!strcmp(o, "--tokens")) a->tokens = argv[++i];
        else if (!strcmp(o, "--prompt")) a->prompt = argv[++i];
        else if (!strcmp(o, "--out")) a->out = argv[++i];
        else if (!strcmp(o, "--threads")) a->threads = parse_threads(argv[++i]);
        else if (!strcmp(o, "-n")) a->n = (int)parse_whole(o, argv[++i], 0, 1 << 24);
        else if (!strcmp(o, "--temp")) a->temp = (float)parse_num(o, argv[++i], 0, 1e6);
        else if (!strcmp(o, "--top-k")) a->top_k = (int)parse_whole(o, argv[++i], 0, 1 << 30);
        else if (!strcmp(o, "--top-p")) a->top_p = (float)parse_num(o, argv[++i], 1e-9, 1);
        else if (!strcmp(o, "--seed")) a->seed = (uint64_t)parse_whole(o, argv[++i], 0, 9007199254740992.0);
        else if (!strcmp(o, "--stop")) a->stop = (int)parse_whole(o, argv[++i], 0, 1 << 30);
        else {
            fprintf(stderr, "red %s: unknown option '%s' (see red %s --help)\n", cmd, o, cmd);
            exit(2);
        }
    }
}

static int cmd_info(int argc, char **argv) {
    model_args a;
    red_model m;
    red_safetensors st;
    red_error err;
    char path[2048];
    const red_config *c;
    int i;
    parse_model_args(argc, argv, &a, usage_info, "info");
    load_model(&m, a.model, NULL);
    c = &m.cfg;
    printf("model_type: %s\nhidden_size: %d\nintermediate_size: %d\nnum_hidden_layers: %d\n"
           "num_attention_heads: %d\nnum_key_value_heads: %d\nhead_dim: %d\nvocab_size: %d\n"
           "max_position_embeddings: %d\nrms_norm_eps: %g\nrope_theta: %g\nrope_scaling: %s\n"
           "tie_word_embeddings: %s\nqkv_bias: %s\nbos_token_id: %d\neos_token_id: %d\n",
           red_arch_name(c->arch), c->dim, c->ffn, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab,
           c->max_pos, c->norm_eps, c->rope_theta, c->rope_llama3 ? "llama3" : "none", c->tied ? "true" : "false",
           c->qkv_bias ? "true" : "false", c->bos_id, c->eos_id);
    if (c->rope_llama3)
        printf("rope_llama3: factor %g, low_freq_factor %g, high_freq_factor %g, original_max_position_embeddings %d\n",
               c->rope_factor, c->rope_low_freq, c->rope_high_freq, c->rope_orig_ctx);
    printf("parameters: %zu (%.2f M, %.1f MB as float32)\ntensors: %d\n", m.n_params, m.n_params / 1e6,
           m.n_params * 4.0 / 1e6, m.n_tensors);
    snprintf(path, sizeof path, "%s/model.safetensors", a.model);
    if (access(path, R_OK) == 0) {
        if (red_st_open(&st, path, &err) != RED_OK) die(1, "%s", err.msg);
        int counts[4] = {0};
        for (i = 0; i < st.n; i++) counts[st.e[i].dtype]++;
        printf("file dtypes: F32 %d, F16 %d, BF16 %d\n", counts[RED_DT_F32], counts[RED_DT_F16], counts[RED_DT_BF16]);
        red_st_close(&st);
    }
    red_model_free(&m);
    return 0;
}

static int cmd_forward(int argc, char **argv) {
    model_args a;
    red_model m;
    red_kv_state kv;
    red_error err;
    red_pool *pool;
    int *ids, n, *seq, *pos, i, best = 0;
    float *last;
    parse_model_args(argc, argv, &a, usage_forward, "forward");
    if (!a.tokens || !a.out) die(2, "forward: --tokens and --out are required (see red forward --help)");
    check_output("forward", "--out", a.out, 0);
    n = parse_ids(a.tokens, &ids);
    if (n < 1) die(2, "forward: --tokens is empty");
    pool = make_pool(a.threads);
    load_model(&m, a.model, pool);
    check_ids(ids, n, m.cfg.vocab, "--tokens");
    if (red_kv_alloc(&kv, &m, 1, n, n, &err) != RED_OK) die(1, "%s", err.msg);
    seq = xmalloc(sizeof(int) * (size_t)n);
    pos = xmalloc(sizeof(int) * (size_t)n);
    for (i = 0; i < n; i++) { seq[i] = 0; pos[i] = i; }
    {
        red_status st = red_kv_forward(&m, &kv, n, ids, seq, pos);
        if (st != RED_OK) die(1, "forward: %s", red_kv_failure(st));
    }
    save_matrix(a.out, kv.logits, 2, n, m.cfg.vocab);
    last = kv.logits + (size_t)(n - 1) * m.cfg.vocab;
    for (i = 1; i < m.cfg.vocab; i++)
        if (last[i] > last[best]) best = i;
    printf("%d\n", best);
    fprintf(stderr, "forward: %d tokens -> %s [%d, %d]\n", n, a.out, n, m.cfg.vocab);
    red_kv_free(&kv);
    red_model_free(&m);
    red_pool_destroy(pool);
    free(ids); free(seq); free(pos);
    return 0;
}

static int cmd_generate(int argc, char **argv) {
    model_args a;
    red_model m;
    red_error err;
    red_pool *pool;
    red_sampler sp;
    int n_seq = 0, i, j, **outs, *lens, *olen, **prompts, stop, text_mode = 0;
    char *buf, *part, *save = NULL;
    red_tokenizer *tok = NULL;
    parse_model_args(argc, argv, &a, usage_generate, "generate");
    if (!a.tokens == !a.prompt) die(2, "generate: give exactly one of --tokens and --prompt (see red generate --help)");
    pool = make_pool(a.threads);
    load_model(&m, a.model, pool);
    if (a.prompt) {  /* text: tokenize with the model's own tokenizer, print text back */
        size_t len = strlen(a.prompt), k = 0, q;
        int cap;
        text_mode = 1;
        if (red_model_tokenizer(&tok, a.model, a.tokenizer, &err) != RED_OK) die(1, "%s", err.msg);
        buf = xmalloc(len + 1);
        k = unescape_text(a.prompt, a.escape, buf);
        (void)q;
        prompts = xmalloc(sizeof(int *));
        lens = xmalloc(sizeof(int));
        cap = red_tokenize(tok, buf, k, a.bos || red_tokenizer_add_bos(tok), NULL, 0);
        if (cap < 0) die(1, "generate: out of memory while tokenizing --prompt");
        prompts[0] = xmalloc(sizeof(int) * (size_t)(cap ? cap : 1));
        lens[0] = red_tokenize(tok, buf, k, a.bos || red_tokenizer_add_bos(tok), prompts[0], cap);
        if (lens[0] < 1) die(2, "generate: --prompt is empty (add --bos to start from BOS)");
        check_ids(prompts[0], lens[0], m.cfg.vocab, "--prompt");
        n_seq = 1;
    } else {
        buf = xmalloc(strlen(a.tokens) + 1);
        strcpy(buf, a.tokens);
        prompts = xmalloc(sizeof(int *) * (strlen(a.tokens) + 1));
        lens = xmalloc(sizeof(int) * (strlen(a.tokens) + 1));
        for (part = strtok_r(buf, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
            lens[n_seq] = parse_ids(part, &prompts[n_seq]);
            if (lens[n_seq] < 1) die(2, "generate: prompt %s is empty", "");
            check_ids(prompts[n_seq], lens[n_seq], m.cfg.vocab, "--tokens");
            n_seq++;
        }
    }
    if (!n_seq) die(2, "generate: --tokens is empty");
    outs = xmalloc(sizeof(int *) * (size_t)n_seq);
    olen = xmalloc(sizeof(int) * (size_t)n_seq);
    for (i = 0; i < n_seq; i++) outs[i] = xmalloc(sizeof(int) * (size_t)(a.n + 1));
    sp.temperature = a.temp;
    sp.top_k = a.top_k;
    sp.top_p = a.top_p;
    stop = a.no_stop ? -1 : a.stop >= 0 ? a.stop : m.cfg.eos_id;
    if (red_generate(&m, n_seq, (const int *const *)prompts, lens, a.n, &sp, a.seed, stop, outs, olen, &err) != RED_OK)
        die(1, "%s", err.msg);
    for (i = 0; i < n_seq; i++) {
        if (text_mode) {  /* the text the continuation adds to the prompt's (decoders may drop a first space) */
            red_sbuf t, pt;
            int *all = xmalloc(sizeof(int) * (size_t)(lens[i] + olen[i] + 1));
            memcpy(all, prompts[i], sizeof(int) * (size_t)lens[i]);
            memcpy(all + lens[i], outs[i], sizeof(int) * (size_t)olen[i]);
            red_sbuf_init(&t);
            red_sbuf_init(&pt);
            red_detokenize(tok, all, lens[i] + olen[i], &t);
            red_detokenize(tok, prompts[i], lens[i], &pt);
            if (t.len >= pt.len && (!pt.len || !memcmp(t.p, pt.p, pt.len))) {
                if (t.len > pt.len) fwrite(t.p + pt.len, 1, t.len - pt.len, stdout);
            } else {
                red_sbuf_free(&t);
                red_sbuf_init(&t);
                red_detokenize(tok, outs[i], olen[i], &t);
                if (t.len) fwrite(t.p, 1, t.len, stdout);
            }
            red_sbuf_free(&t);
            red_sbuf_free(&pt);
            free(all);
        } else {
            for (j = 0; j < olen[i]; j++) printf(j ? " %d" : "%d", outs[i][j]);
        }
        printf("\n");
        free(outs[i]);
        free(prompts[i]);
    }
    free(outs); free(olen); free(prompts); free(lens); free(buf);
    red_tokenizer_free(tok);
    red_model_free(&m);
    red_pool_destroy(pool);
    return 0;
}

static const char *usage_eval =
    "usage: red eval --task gsm8k|gsm8k_cot|gsm8k_cot_zeroshot|choice|LM-EVAL-TASK --model DIR --data TEST.jsonl\n"
    "                [--fewshot-from TRAIN.jsonl] [--shots K] [--limit N] [--json OUT.json]\n"
    "                [--samples OUT.jsonl] [--batch B] [--max-gen N] [--bos] [--calculator] [--threads N]\n"
    "\n"
    "Reproduces lm-eval's GSM8K tasks (v0.4.8 conventions, ../shared/docs/eval.md):\n"
    "  gsm8k               'Question: q\\nAnswer:' with K exemplars (default 5 with\n"
    "                      --fewshot-from, else 0) drawn per test doc in order as\n"
    "                      random.Random(1234).sample(range(len(train)), K) does;\n"
    "  gsm8k_cot           'Q: q\\nA:' after the 8 fixed chain-of-thought exemplars;\n"
    "  gsm8k_cot_zeroshot  'Q: q\\nA: Let's think step by step.'\n"
    "Greedy decoding, up to --max-gen new tokens (256), stop strings as lm-eval's.\n"
    "Scores exact_match under strict-match and flexible-extract with lm-eval's\n"
    "regexes_to_ignore, each with its standard error. No BOS unless --bos (as v0.4.8).\n"
    "--calculator: GSM8K's original calculator (openai/grade-school-math), not part\n"
    "of lm-eval: when the model has written '<<expr=' the value of expr and '>>' are\n"
    "fed in its place. Report such scores apart; the summary says it was on.\n"
    "  choice              multiple choice, one JSON object per line:\n"
    "                      {\"query\", \"choices\": [...], \"gold\": k} scored as lm-eval's\n"
    "                      loglikelihood of (query, \" \" + choice): acc and acc_norm\n"
    "                      (divided by the choice's length in characters); or\n"
    "                      {\"contexts\": [...], \"continuation\", \"gold\"} (WinoGrande: acc)\n"
    "The model must carry its tokenizer (directory files or GGUF), or give --tokenizer PATH.\n"
    "--json writes a summary, --samples one line per doc (prompt, completion,\n"
    "extracted answers, gold, correct); both atomically.\n"
    "\n"
    "lm-eval's zero-shot general-ability tasks, from the Hugging Face datasets'\n"
    "rows exported as JSONL (README: General-ability benchmarks):\n"
    "  red eval --task arc_easy|arc_challenge|hellaswag|piqa|winogrande|sciq|boolq|mmlu\n"
    "           --data ROWS.jsonl [--model DIR] [--dump-requests OUT.jsonl] [--json OUT.json]\n"
    "  red eval --tasks arc_easy,piqa,... (--data-dir DIR | --data TASK=ROWS.jsonl ...)\n"
    "           --model DIR [--json OUT.json]\n"
    "--tasks reads each task's rows from --data TASK=FILE if given, else DIR/TASK.jsonl,\n"
    "and writes one summary: {\"results\": {TASK: {\"acc\", \"acc_stderr\", ...}}}.\n"
    "acc and acc_norm (loglikelihood / the choice's length in characters) where\n"
    "lm-eval reports them, with lm-eval's standard errors; mmlu adds its four groups\n"
    "and the subjects (acc = the micro average, stderr pooled as lm-eval pools it).\n"
    "--dump-requests writes every (context, continuation) request in doc then\n"
    "choice order; without --model nothing is scored. --limit N takes the first N\n"
    "rows of each file.\n";

static const char *usage_score =
    "usage: red score-gsm8k --data TEST.jsonl --completions FILE.jsonl [--task gsm8k|gsm8k_cot]\n"
    "                       [--json OUT.json] [--samples OUT.jsonl]\n"
    "\n"
    "Scores completions produced by any system (one JSON object per line with a\n"
    "\"completion\" string, in test order; fewer lines than test docs scores a prefix)\n"
    "with the same filters and exact_match as red eval.\n";

typedef struct {
    double t0;
    const char *what;
} progress_state;


static void progress_line(void *ctx, int done, int total) {
    progress_state *p = ctx;
    double el = red_time_seconds() - p->t0, rate = done / (el > 1e-9 ? el : 1e-9);
    if (!isatty(2)) return;
    fprintf(stderr, "\r%s: %d/%d items, %.2f items/s, ETA %.0f s   ", p->what, done, total, rate,
            (total - done) / (rate > 1e-9 ? rate : 1e-9));
    if (done == total) fputc('\n', stderr);
}

static void write_text_file(const char *path, const red_sbuf *b) {
    red_error err;
    if (b->failed) die(1, "%s: out of memory", path);
    if (red_write_file_atomic(path, b->p ? b->p : "", b->len, &err) != RED_OK) die(1, "%s", err.msg);
}

/* Scores completions[0..n) against docs, prints the summary, writes the files. */
static void report_gsm8k(red_gsm8k_task task, const char *task_name, const red_gsm8k_doc *docs,
                         const red_sbuf *completions, const red_sbuf *prompts, int n, const char *json_out,
                         const char *samples_out, const char *model, int shots, int max_gen, int bos,
                         int calculator) {
    double ss = 0, fs = 0;
    int i;
    red_sbuf samples, js;
    red_sbuf_init(&samples);
    for (i = 0; i < n; i++) {
        red_gsm8k_scored sc;
        red_sbuf gold;
        red_gsm8k_score_one(task, completions[i].p ? completions[i].p : "", docs[i].answer, &sc);
        ss += sc.strict_ok;
        fs += sc.flexible_ok;
        if (samples_out) {
            red_sbuf_init(&gold);
            red_sbuf_puts(&gold, "");
            red_gsm8k_gold(task, docs[i].answer, &gold);
            red_sbuf_printf(&samples, "{\"doc\": %d, \"prompt\": ", i);
            if (prompts) red_json_put_string(&samples, prompts[i].p, prompts[i].len);
            else red_sbuf_puts(&samples, "null");
            red_sbuf_puts(&samples, ", \"completion\": ");
            red_json_put_string(&samples, completions[i].p ? completions[i].p : "", completions[i].len);
            red_sbuf_puts(&samples, ", \"strict\": ");
            red_json_put_string(&samples, sc.strict.p, sc.strict.len);
            red_sbuf_puts(&samples, ", \"flexible\": ");
            red_json_put_string(&samples, sc.flexible.p, sc.flexible.len);
            red_sbuf_puts(&samples, ", \"gold\": ");
            red_json_put_string(&samples, gold.p, gold.len);
            red_sbuf_printf(&samples, ", \"strict_correct\": %d, \"flexible_correct\": %d}\n", sc.strict_ok,
                            sc.flexible_ok);
            red_sbuf_free(&gold);
        }
        red_gsm8k_scored_free(&sc);
    }
    {
        double sa = n ? ss / n : 0, fa = n ? fs / n : 0, se_s = red_mean_stderr(ss, ss, n),
               se_f = red_mean_stderr(fs, fs, n);
        if (shots >= 0)
            printf("%s (%d-shot, %d docs, greedy, max %d new tokens, bos %s%s)\n", task_name, shots, n, max_gen,
                   bos ? "yes" : "no", calculator ? ", WITH CALCULATOR (not lm-eval)" : "");
        else
            printf("%s (%d docs, completions scored as given)\n", task_name, n);
        printf("  exact_match,strict-match      %.4f ± %.4f\n", sa, se_s);
        printf("  exact_match,flexible-extract  %.4f ± %.4f\n", fa, se_f);
        if (json_out) {
            red_sbuf_init(&js);
            red_sbuf_puts(&js, "{\"task\": ");
            red_json_put_string(&js, task_name, strlen(task_name));
            red_sbuf_puts(&js, ", \"model\": ");
            if (model) red_json_put_string(&js, model, strlen(model));
            else red_sbuf_puts(&js, "null");
            if (shots >= 0)
                red_sbuf_printf(&js, ", \"n\": %d, \"num_fewshot\": %d, \"fewshot_seed\": 1234, \"max_gen_toks\": %d, "
                                     "\"bos\": %s, \"calculator\": %s, \"results\": {\"exact_match,strict-match\": ",
                                n, shots, max_gen, bos ? "true" : "false", calculator ? "true" : "false");
            else  /* scored external completions: no generation settings to report */
                red_sbuf_printf(&js, ", \"n\": %d, \"source\": \"external completions\", "
                                     "\"results\": {\"exact_match,strict-match\": ", n);
            red_json_put_number(&js, sa);
            red_sbuf_puts(&js, ", \"exact_match_stderr,strict-match\": ");
            red_json_put_number(&js, se_s);
            red_sbuf_puts(&js, ", \"exact_match,flexible-extract\": ");
            red_json_put_number(&js, fa);
            red_sbuf_puts(&js, ", \"exact_match_stderr,flexible-extract\": ");
            red_json_put_number(&js, se_f);
            red_sbuf_puts(&js, "}}\n");
            write_text_file(json_out, &js);
            red_sbuf_free(&js);
        }
    }
    if (samples_out) write_text_file(samples_out, &samples);
    red_sbuf_free(&samples);
}

/* red eval --task choice: lm-eval multiple_choice scoring of a JSONL file. */
static int cmd_eval_choice(const char *model, const char *tok_path, const char *data, int limit, int batch, int bos, int threads,
                           const char *json_out, const char *samples_out) {
    red_mc_doc *docs;
    int n, n_all, i, k, n_req = 0, q = 0, any_multi = 0, *preds;
    red_error err;
    red_model m;
    red_tokenizer *tok = NULL;
    red_pool *pool;
    double *ll, acc = 0, accn = 0;
    red_sbuf js, samples;
    progress_state ps;
    if (red_mc_load(data, &docs, &n, &err) != RED_OK) die(1, "%s", err.msg);
    n_all = n;
    if (limit && limit < n) n = limit;
    pool = make_pool(threads);
    load_model(&m, model, pool);
    if (red_model_tokenizer(&tok, model, tok_path, &err) != RED_OK) die(1, "%s", err.msg);
    for (i = 0; i < n; i++) {
        n_req += docs[i].n_options;
        any_multi |= docs[i].multi_context;
    }
    ll = xmalloc(sizeof *ll * (size_t)(n_req ? n_req : 1));
    preds = xmalloc(sizeof *preds * 2 * (size_t)(n ? n : 1));
    ps.t0 = red_time_seconds();
    ps.what = "choice";
    if (red_mc_eval(&m, tok, docs, n, bos, batch, ll, preds, preds + n, progress_line, &ps, &err) != RED_OK)
        die(1, "%s", err.msg);
    fprintf(stderr, "eval: %d docs (%d requests) in %.1f s\n", n, n_req, red_time_seconds() - ps.t0);
    red_sbuf_init(&samples);
    for (i = 0, q = 0; i < n; q += docs[i].n_options, i++) {
        int pred = preds[i], pred_norm = preds[n + i];
        acc += pred == docs[i].gold;
        accn += pred_norm == docs[i].gold;
        if (samples_out) {
            red_sbuf_printf(&samples, "{\"doc\": %d, \"lls\": [", i);
            for (k = 0; k < docs[i].n_options; k++) {
                if (k) red_sbuf_puts(&samples, ", ");
                red_json_put_number(&samples, ll[q + k]);
            }
            red_sbuf_printf(&samples, "], \"pred\": %d, \"pred_norm\": %d, \"gold\": %d, \"acc\": %d, \"acc_norm\": %d}\n",
                            pred, pred_norm, docs[i].gold, pred == docs[i].gold, pred_norm == docs[i].gold);
        }
    }
    printf("choice (%d docs, 0-shot, bos %s)\n  acc       %.4f ± %.4f\n", n, bos ? "yes" : "no", n ? acc / n : 0,
           red_mean_stderr(acc, acc, n));
    if (!any_multi) printf("  acc_norm  %.4f ± %.4f\n", n ? accn / n : 0, red_mean_stderr(accn, accn, n));
    if (json_out) {
        red_sbuf_init(&js);
        red_sbuf_puts(&js, "{\"task\": \"choice\", \"model\": ");
        red_json_put_string(&js, model, strlen(model));
        red_sbuf_puts(&js, ", \"data\": ");
        red_json_put_string(&js, data, strlen(data));
        red_sbuf_printf(&js, ", \"n\": %d, \"num_fewshot\": 0, \"bos\": %s, \"results\": {\"acc\": ", n, bos ? "true" : "false");
        red_json_put_number(&js, n ? acc / n : 0);
        red_sbuf_puts(&js, ", \"acc_stderr\": ");
        red_json_put_number(&js, red_mean_stderr(acc, acc, n));
        if (!any_multi) {
            red_sbuf_puts(&js, ", \"acc_norm\": ");
            red_json_put_number(&js, n ? accn / n : 0);
            red_sbuf_puts(&js, ", \"acc_norm_stderr\": ");
            red_json_put_number(&js, red_mean_stderr(accn, accn, n));
        }
        red_sbuf_puts(&js, "}}\n");
        write_text_file(json_out, &js);
        red_sbuf_free(&js);
    }
    if (samples_out) write_text_file(samples_out, &samples);
    red_sbuf_free(&samples);
    free(ll); free(preds);
    red_mc_free(docs, n_all);
    red_model_free(&m);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}

/* red eval --task/--tasks over lm-eval's general-ability tasks (eval/lmeval.c). */
static int cmd_eval_lm(const char *one, const char *list, const char *const *datas, int n_data, const char *dir,
                       const char *model, const char *tok_path, const char *dump, int limit, int batch, int bos, int threads,
                       const char *json_out, const char *samples_out) {
    red_lm_set sets[RED_LM_N_TASKS];
    char dir_paths[RED_LM_N_TASKS][4096], names[256], *tok_s;
    const char *paths[RED_LM_N_TASKS];
    int nt = 0, i, j;
    red_error err;
    red_model m;
    red_tokenizer *tok = NULL;
    red_pool *pool;
    red_sbuf js, b;
    if (snprintf(names, sizeof names, "%s", list ? list : one) >= (int)sizeof names) die(2, "eval: task list too long");
    for (tok_s = strtok(names, ","); tok_s; tok_s = strtok(NULL, ",")) {
        red_lm_task t;
        const char *path = NULL;
        if (red_lm_task_parse(tok_s, &t) != RED_OK || nt == RED_LM_N_TASKS)
            die(2, "eval: unknown or repeated task '%s' (arc_easy, arc_challenge, hellaswag, piqa, winogrande, sciq, boolq, mmlu)", tok_s);
        for (j = 0; j < nt; j++)
            if (sets[j].task == t) die(2, "eval: task '%s' given twice", tok_s);
        for (j = 0; j < n_data; j++) {
            size_t k = strlen(tok_s);
            if (!list) path = datas[j];
            else if (!strncmp(datas[j], tok_s, k) && datas[j][k] == '=') path = datas[j] + k + 1;
        }
        if (!path && dir) {
            if (snprintf(dir_paths[nt], sizeof dir_paths[nt], "%s/%s.jsonl", dir, tok_s) >= (int)sizeof dir_paths[nt])
                die(2, "eval: --data-dir path too long");
            path = dir_paths[nt];
        }
        if (!path) die(2, "eval: no data for task '%s' (--data TASK=FILE or --data-dir DIR)", tok_s);
        paths[nt] = path;
        if (red_lm_load(t, paths[nt], limit, &sets[nt], &err) != RED_OK) die(1, "%s", err.msg);
        nt++;
    }
    for (j = 0; list && j < n_data; j++) {  /* every --data TASK=FILE names a task of the list */
        red_lm_task t;
        char name[32];
        const char *eq = strchr(datas[j], '=');
        int k, used = 0;
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - datas[j]) : 0, datas[j]);
        for (k = 0; k < nt && red_lm_task_parse(name, &t) == RED_OK; k++) used |= sets[k].task == t;
        if (!used) die(2, "eval: --data '%s' is not TASK=FILE for a task of --tasks", datas[j]);
    }
    if ((dump || samples_out) && nt != 1) die(2, "eval: --dump-requests and --samples take a single --task");
    if (dump) {
        red_sbuf_init(&b);
        red_lm_requests_jsonl(&sets[0], &b);
        write_text_file(dump, &b);
        red_sbuf_free(&b);
        if (!model) {
            red_lm_set_free(&sets[0]);
            return 0;
        }
    }
    if (!model) die(2, "eval: --model is required to score (or give --dump-requests alone)");
    pool = make_pool(threads);
    load_model(&m, model, pool);
    if (red_model_tokenizer(&tok, model, tok_path, &err) != RED_OK) die(1, "%s", err.msg);
    red_sbuf_init(&js);
    red_sbuf_puts(&js, "{\"model\": ");
    red_json_put_string(&js, model, strlen(model));
    red_sbuf_printf(&js, ", \"num_fewshot\": 0, \"bos\": %s, \"results\": {", bos ? "true" : "false");
    for (i = 0; i < nt; i++) {
        const char *name = red_lm_task_name(sets[i].task);
        red_lm_scores sc;
        const red_lm_summary *r = &sc.summary;
        progress_state ps;
        ps.t0 = red_time_seconds();
        ps.what = name;
        if (red_lm_eval(&m, tok, &sets[i], bos, batch, progress_line, &ps, &sc, &err) != RED_OK) die(1, "%s", err.msg);
        fprintf(stderr, "eval: %s: %d docs (%d requests) in %.1f s\n", name, r->n, sc.n_req, red_time_seconds() - ps.t0);
        printf("%s (%d docs, 0-shot, bos %s)\n  acc       %.4f ± %.4f\n", name, r->n, bos ? "yes" : "no", r->acc,
               r->acc_stderr);
        if (red_lm_has_acc_norm(sets[i].task)) printf("  acc_norm  %.4f ± %.4f\n", r->acc_norm, r->acc_norm_stderr);
        for (j = 0; j < RED_MMLU_GROUPS && sets[i].task == RED_LM_MMLU; j++)
            if (r->group_n[j]) printf("  %-16s acc %.4f ± %.4f (%d docs)\n", red_mmlu_group_name(j), r->group_acc[j], r->group_stderr[j], r->group_n[j]);
        red_sbuf_printf(&js, "%s\"%s\": ", i ? ", " : "", name);
        red_lm_result_json(&sets[i], r, paths[i], &js);
        if (samples_out) {
            red_sbuf_init(&b);
            red_lm_samples_jsonl(&sets[i], &sc, &b);
            write_text_file(samples_out, &b);
            red_sbuf_free(&b);
        }
        red_lm_scores_free(&sc);
        red_lm_set_free(&sets[i]);
    }
    red_sbuf_puts(&js, "}}\n");
    if (json_out) write_text_file(json_out, &js);
    red_sbuf_free(&js);
    red_model_free(&m);
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
    return 0;
}

static int cmd_eval(int argc, char **argv) {
    const char *tok_path = NULL;
    const char *task_name = NULL, *model = NULL, *data = NULL, *fewshot = NULL, *json_out = NULL,
               *samples_out = NULL, *tasks = NULL, *data_dir = NULL, *dump = NULL, *datas[RED_LM_N_TASKS];
    int n_data = 0;
    red_lm_task lm_task;
    int shots = -1, limit = 0, batch = 8, max_gen = 256, bos = 0, threads = 0, i, n_test, n_all, n_train = 0,
        calculator = 0;
    red_gsm8k_task task;
    red_gsm8k_doc *test, *train = NULL;
    red_error err;
    red_model m;
    red_tokenizer *tok = NULL;
    red_pool *pool;
    red_sbuf *prompts, *outs;
    red_gen_opts go;
    progress_state ps;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_eval, stdout);
            return 0;
        }
        if (!strcmp(o, "--bos")) { bos = 1; continue; }
        if (!strcmp(o, "--calculator")) { calculator = 1; continue; }
        if (i + 1 >= argc) die(2, "eval: %s needs a value (see red eval --help)", o);
        if (!strcmp(o, "--task")) task_name = argv[++i];
        else if (!strcmp(o, "--tokenizer")) tok_path = argv[++i];
        else if (!strcmp(o, "--model")) model = argv[++i];
        else if (!strcmp(o, "--data")) {
            if (n_data == RED_LM_N_TASKS) die(2, "eval: too many --data");
            data = datas[n_data++] = argv[++i];
        } else if (!strcmp(o, "--tasks")) tasks = argv[++i];
        else if (!strcmp(o, "--data-dir")) data_dir = argv[++i];
        else if (!strcmp(o, "--dump-requests")) dump = argv[++i];
        else if (!strcmp(o, "--fewshot-from")) fewshot = argv[++i];
        else if (!strcmp(o, "--json")) json_out = argv[++i];
        else if (!strcmp(o, "--samples")) samples_out = argv[++i];
        else if (!strcmp(o, "--shots")) shots = (int)parse_whole(o, argv[++i], 0, 64);
        else if (!strcmp(o, "--limit")) limit = (int)parse_whole(o, argv[++i], 1, 1e9);
        else if (!strcmp(o, "--batch")) batch = (int)parse_whole(o, argv[++i], 1, 1024);
        else if (!strcmp(o, "--max-gen")) max_gen = (int)parse_whole(o, argv[++i], 1, 1 << 20);
        else if (!strcmp(o, "--threads")) threads = parse_threads(argv[++i]);
        else die(2, "eval: unknown option '%s' (see red eval --help)", o);
    }
    if (tasks || (task_name && red_lm_task_parse(task_name, &lm_task) == RED_OK)) {
        if (tasks && task_name) die(2, "eval: give --task or --tasks, not both");
        if (!tasks && n_data != 1) die(2, "eval: --task %s needs one --data ROWS.jsonl", task_name);
        return cmd_eval_lm(task_name, tasks, datas, n_data, data_dir, model, tok_path, dump, limit, batch, bos, threads, json_out,
                           samples_out);
    }
    if (task_name && strcmp(task_name, "choice") && red_gsm8k_task_parse(task_name, &task) != RED_OK)
        die(2, "eval: unknown task '%s' (gsm8k, gsm8k_cot, gsm8k_cot_zeroshot, choice, arc_easy, arc_challenge, "
               "hellaswag, piqa, winogrande, sciq, boolq, mmlu)", task_name);
    if (!task_name || !model || !data) die(2, "eval: --task, --model and --data are required (see red eval --help)");
    check_distinct("eval", "--json", json_out, "--samples", samples_out);
    check_distinct("eval", "--json", json_out, "--data", data);
    check_distinct("eval", "--samples", samples_out, "--data", data);
    check_distinct("eval", "--json", json_out, "--fewshot-from", fewshot);
    check_distinct("eval", "--samples", samples_out, "--fewshot-from", fewshot);
    check_output("eval", "--json", json_out, 0);
    check_output("eval", "--samples", samples_out, 0);
    if (!strcmp(task_name, "choice")) return cmd_eval_choice(model, tok_path, data, limit, batch, bos, threads, json_out, samples_out);
    if (shots < 0) shots = task == RED_GSM8K && fewshot ? 5 : task == RED_GSM8K_COT ? 8 : 0;
    if (task == RED_GSM8K && shots > 0 && !fewshot) die(2, "eval: gsm8k with --shots > 0 needs --fewshot-from TRAIN.jsonl");
    if (task == RED_GSM8K_COT && shots != 8) die(2, "eval: gsm8k_cot always uses its 8 fixed exemplars");
    if (task == RED_GSM8K_COT_ZEROSHOT && shots != 0) die(2, "eval: gsm8k_cot_zeroshot is zero-shot");
    if (red_gsm8k_load(data, &test, &n_test, &err) != RED_OK) die(1, "%s", err.msg);
    if (task == RED_GSM8K && shots > 0) {
        if (red_gsm8k_load(fewshot, &train, &n_train, &err) != RED_OK) die(1, "%s", err.msg);
        if (n_train < shots) die(1, "eval: the few-shot file has fewer docs than --shots");
    }
    n_all = n_test;
    if (limit && limit < n_test) n_test = limit;
    pool = make_pool(threads);
    load_model(&m, model, pool);
    if (red_model_tokenizer(&tok, model, tok_path, &err) != RED_OK) die(1, "%s", err.msg);
    prompts = xmalloc(sizeof *prompts * (size_t)(n_test ? n_test : 1));
    outs = xmalloc(sizeof *outs * (size_t)(n_test ? n_test : 1));
    memset(&go, 0, sizeof go);
    go.max_gen = max_gen;
    go.batch = batch;
    go.add_bos = bos;
    go.calculator = calculator;
    ps.t0 = red_time_seconds();
    ps.what = task_name;
    go.progress = progress_line;
    go.progress_ctx = &ps;
    if (red_gsm8k_run(&m, tok, task, train, n_train, shots, test, n_test, &go, prompts, outs, &err) != RED_OK)
        die(1, "%s", err.msg);
    fprintf(stderr, "eval: %d docs in %.1f s\n", n_test, red_time_seconds() - ps.t0);
    report_gsm8k(task, task_name, test, outs, prompts, n_test, json_out, samples_out, model, shots, max_gen, bos,
                 calculator);
    for (i = 0; i < n_test; i++) {
        red_sbuf_free(&prompts[i]);
        red_sbuf_free(&outs[i]);
    }
    free(prompts); free(outs);
    red_gsm8k_free(test, n_all);
    red_gsm8k_free(train, n_train);
    red_model_free(&m);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}

static int cmd_score_gsm8k(int argc, char **argv) {
    const char *data = NULL, *comp = NULL, *json_out = NULL, *samples_out = NULL, *task_name = "gsm8k";
    red_gsm8k_task task;
    red_gsm8k_doc *test;
    int n_test, i;
    red_json **items;
    size_t n_items, k;
    red_sbuf *outs;
    red_error err;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_score, stdout);
            return 0;
        }
        if (i + 1 >= argc) die(2, "score-gsm8k: %s needs a value", o);
        if (!strcmp(o, "--data")) data = argv[++i];
        else if (!strcmp(o, "--completions")) comp = argv[++i];
        else if (!strcmp(o, "--json")) json_out = argv[++i];
        else if (!strcmp(o, "--samples")) samples_out = argv[++i];
        else if (!strcmp(o, "--task")) task_name = argv[++i];
        else if (!strcmp(o, "--threads")) (void)parse_threads(argv[++i]);  /* accepted by every command */
        else die(2, "score-gsm8k: unknown option '%s' (see red score-gsm8k --help)", o);
    }
    if (!data || !comp) die(2, "score-gsm8k: --data and --completions are required");
    check_distinct("score-gsm8k", "--json", json_out, "--samples", samples_out);
    check_distinct("score-gsm8k", "--json", json_out, "--data", data);
    check_distinct("score-gsm8k", "--samples", samples_out, "--data", data);
    check_distinct("score-gsm8k", "--json", json_out, "--completions", comp);
    check_distinct("score-gsm8k", "--samples", samples_out, "--completions", comp);
    check_output("score-gsm8k", "--json", json_out, 0);
    check_output("score-gsm8k", "--samples", samples_out, 0);
    if (red_gsm8k_task_parse(task_name, &task) != RED_OK) die(2, "score-gsm8k: unknown task '%s'", task_name);
    if (red_gsm8k_load(data, &test, &n_test, &err) != RED_OK) die(1, "%s", err.msg);
    if (red_jsonl_read(comp, &items, &n_items, &err) != RED_OK) die(1, "%s", err.msg);
    if ((int)n_items > n_test) {
        fprintf(stderr, "red: %s has %zu completions but %s only %d docs\n", comp, n_items, data, n_test);
        return 1;
    }
    outs = xmalloc(sizeof *outs * (n_items ? n_items : 1));
    for (k = 0; k < n_items; k++) {
        const red_json *c = red_json_get(items[k], "completion");
        if (!c || c->type != RED_JSON_STRING) {
            fprintf(stderr, "red: %s: line %zu: expected an object with a string \"completion\"\n", comp, k + 1);
            return 1;
        }
        red_sbuf_init(&outs[k]);
        red_sbuf_put(&outs[k], c->str, c->len);
    }
    report_gsm8k(task, task_name, test, outs, NULL, (int)n_items, json_out, samples_out, NULL,
                 -1, 0, 0, 0);
    for (k = 0; k < n_items; k++) red_sbuf_free(&outs[k]);
    free(outs);
    red_jsonl_free(items, n_items);
    red_gsm8k_free(test, n_test);
    return 0;
}

/* ------------------------------------------------------------------ convert */

static const char *usage_convert =
    "usage: red convert --from PATH --to DIR|FILE.gguf|FILE.bin [--dtype f32|f16|bf16] [--tokenizer PATH]\n"
    "\n"
    "Converts a model between a Hugging Face directory (config.json +\n"
    "model.safetensors), GGUF (llama.cpp's names; llama Q/K rows in its order)\n"
    "and llama2.c (.bin, legacy v0 as run.c reads it, f32 only). --from may be any\n"
    "of them (GGUF F32/F16/BF16/Q8_0, llama2.c v0/v1/v2, sharded safetensors);\n"
    "the output kind follows --to's ending. --dtype applies to the matrices\n"
    "(default f32). Logits are unchanged up to the chosen dtype's rounding.\n"
    "The tokenizer (the model's own, or --tokenizer PATH, e.g. a llama2.c\n"
    "tokenizer.bin) is embedded in a GGUF and copied into a directory.\n";

/* A directory output gets the tokenizer's files (red's own kinds are
 * written by red_model_write). */
static void copy_tokenizer_files(const char *src, const char *dir) {
    static const char *const names[3] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.bin"};
    red_model_format f;
    red_error err;
    char from[2048], to[2048];
    int k, n = 0, json = strlen(src) > 5 && !strcmp(src + strlen(src) - 5, ".json");
    if (red_model_format_of(src, &f, &err) != RED_OK) die(1, "%s", err.msg);
    for (k = 0; k < 3; k++) {
        unsigned char *buf;
        size_t len;
        if (f == RED_FMT_DIR) snprintf(from, sizeof from, "%s/%s", src, names[k]);
        else if (f == RED_FMT_GGUF || k != (json ? 0 : 2)) continue;  /* a file: tokenizer.json or llama2.c's .bin */
        else snprintf(from, sizeof from, "%s", src);
        if (access(from, R_OK) != 0) continue;
        if (red_read_file(from, &buf, &len, &err) != RED_OK) die(1, "%s", err.msg);
        snprintf(to, sizeof to, "%s/%s", dir, names[k]);
        if (red_write_file_atomic(to, buf, len, &err) != RED_OK) die(1, "%s", err.msg);
        free(buf);
        n++;
    }
    if (!n) fprintf(stderr, "convert: %s: this tokenizer is not written into a directory; pass --tokenizer %s when "
                    "using it\n", dir, src);
}

static int cmd_convert(int argc, char **argv) {
    const char *from = NULL, *to = NULL, *dt = "f32", *tok_path = NULL;
    red_tokenizer *tok = NULL;
    red_vocab_spec vs;
    red_dtype dtype = RED_DT_F32;
    red_model m;
    red_error err;
    int i, gguf_out;
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_convert, stdout);
            return 0;
        }
        if (i + 1 >= argc) die(2, "convert: %s needs a value (see red convert --help)", argv[i]);
        if (!strcmp(argv[i], "--from")) from = argv[++i];
        else if (!strcmp(argv[i], "--to")) to = argv[++i];
        else if (!strcmp(argv[i], "--dtype")) dt = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer")) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--threads")) (void)parse_threads(argv[++i]);  /* accepted by every command */
        else die(2, "convert: unknown option '%s' (see red convert --help)", argv[i]);
    }
    if (!from || !to) die(2, "convert: --from and --to are required (see red convert --help)");
    if (!strcmp(dt, "f32")) dtype = RED_DT_F32;
    else if (!strcmp(dt, "f16")) dtype = RED_DT_F16;
    else if (!strcmp(dt, "bf16")) dtype = RED_DT_BF16;
    else die(2, "convert: --dtype must be f32, f16 or bf16, not '%s'", dt);
    if (red_model_open(&m, from, NULL, &err) != RED_OK) die(1, "%s", err.msg);
    gguf_out = strlen(to) > 5 && !strcmp(to + strlen(to) - 5, ".gguf");
    if (red_model_tokenizer(&tok, from, tok_path, &err) != RED_OK) {
        if (tok_path) die(1, "%s", err.msg);
        fprintf(stderr, "convert: no tokenizer is written (%s)\n", err.msg);
    } else if (gguf_out && red_tokenizer_to_vocab(tok, &vs, &err) != RED_OK) {
        fprintf(stderr, "convert: the GGUF gets no tokenizer (%s)\n", err.msg);
        red_tokenizer_free(tok);
        tok = NULL;
    }
    if (tok && red_tokenizer_vocab(tok) > m.cfg.vocab) die(1, "convert: the tokenizer has more ids than the model");
    if (red_model_write(&m, tok, to, dtype, &err) != RED_OK) die(1, "%s", err.msg);
    if (tok && !gguf_out && (strlen(to) < 4 || strcmp(to + strlen(to) - 4, ".bin")) &&
        red_tokenizer_kind(tok) != RED_TOK_BYTE && red_tokenizer_kind(tok) != RED_TOK_BPE)
        copy_tokenizer_files(tok_path ? tok_path : from, to);
    fprintf(stderr, "convert: %s -> %s (%s %s, %d layers, dim %d, vocab %d, %zu parameters, %s%s)\n", from, to,
            red_arch_name(m.cfg.arch), m.cfg.tied ? "tied" : "untied", m.cfg.n_layers, m.cfg.dim, m.cfg.vocab,
            m.n_params, dt, tok && gguf_out ? ", tokenizer embedded" : "");
    red_tokenizer_free(tok);
    red_model_free(&m);
    return 0;
}

static const char *usage_init =
    "usage: red init --out DIR [--config CONFIG.json] [--seed S] [--std X] [--bf16]\n"
    "\n"
    "Writes a randomly initialised model directory (config.json, model.safetensors,\n"
    "red_tokenizer.json for the byte tokenizer): matrices N(0, X^2) (default 0.02),\n"
    "o/down projections scaled by 1/sqrt(2 layers), norms 1, biases 0, from red's RNG\n"
    "seeded by S (default 0). Without --config: a small byte-level Llama (dim 64,\n"
    "2 layers, 4 heads, FFN 192, vocab 259, BOS 256, EOS 257). Useful for smoke tests.\n";

static int cmd_init(int argc, char **argv) {
    const char *out = NULL, *cfg_path = NULL;
    uint64_t seed = 0;
    double std = 0.02;
    int bf16 = 0, i;
    red_config c;
    red_model m;
    red_tokenizer *tok = NULL;
    red_error err;
    red_rng r;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_init, stdout);
            return 0;
        }
        if (!strcmp(o, "--bf16")) { bf16 = 1; continue; }
        if (i + 1 >= argc) die(2, "init: %s needs a value", o);
        if (!strcmp(o, "--out")) out = argv[++i];
        else if (!strcmp(o, "--config")) cfg_path = argv[++i];
        else if (!strcmp(o, "--seed")) seed = (uint64_t)parse_whole(o, argv[++i], 0, 9007199254740992.0);
        else if (!strcmp(o, "--std")) std = parse_num(o, argv[++i], 0, 10);
        else if (!strcmp(o, "--threads")) (void)parse_threads(argv[++i]);  /* accepted by every command */
        else die(2, "init: unknown option '%s' (see red init --help)", o);
    }
    if (!out) die(2, "init: --out DIR is required");
    check_output("init", "--out", out, 1);
    if (red_tokenizer_byte_new(&tok, &err) != RED_OK) die(1, "%s", err.msg);
    if (cfg_path) {
        if (red_config_read(&c, cfg_path, &err) != RED_OK) die(1, "%s", err.msg);
        if (c.vocab < red_tokenizer_vocab(tok)) die(1, "init: vocab_size must be >= 259 for the byte tokenizer");
    } else {
        red_config_default(&c);
        c.bos_id = red_tokenizer_bos(tok);
        c.eos_id = red_tokenizer_eos(tok);
    }
    if (red_model_init(&m, &c, NULL, &err) != RED_OK) die(1, "%s", err.msg);
    red_rng_seed(&r, seed);
    red_model_init_random(&m, &r, (float)std, (float)(std / sqrt(2.0 * c.n_layers)));
    if (red_model_save(&m, out, bf16 ? RED_DT_BF16 : RED_DT_F32, &err) != RED_OK) die(1, "%s", err.msg);
    if (red_tokenizer_save(tok, out, &err) != RED_OK) die(1, "%s", err.msg);
    fprintf(stderr, "init: %s: %zu parameters (%s)\n", out, m.n_params, red_arch_name(c.arch));
    red_model_free(&m);
    red_tokenizer_free(tok);
    return 0;
}

static const char *usage_tasks =
    "usage: red tasks reasoning --split S -n N [--seed X] [--steps A-B] [--max-number M] [--ops +-*/]\n"
    "                            [--solution short|restate] [--keyed]\n"
    "       red tasks choice --split S -n N [--seed X] [--world-seed W] [--entities E]\n"
    "       red tasks corpus -n N [--seed X] [--world-seed W] [--entities E]\n"
    "       (all: [--out FILE], default standard output)\n"
    "\n"
    "reasoning: GSM8K-format JSONL ({\"question\", \"answer\"}): word problems chaining\n"
    "  A..B steps (default 1-6), one solution step per line with a calculator\n"
    "  annotation <<a op b=r>>, final line '#### N'; every intermediate result in\n"
    "  [1, M] (default 100); exact division only; ops default +-*/. --solution\n"
    "  restate starts each line with the question's sentence for that step\n"
    "  ('Mia has 3 more stickers than Zoe: 5 + 3 = <<5+3=8>>8 stickers.'); --keyed\n"
    "  starts the question's sentences with 'On Monday, ', 'On Tuesday, ', ...\n"
    "choice: multiple-choice JSONL about a generated world of creatures (colour,\n"
    "  home, kind, weight): {\"query\", \"choices\", \"gold\"} and the WinoGrande form\n"
    "  {\"contexts\", \"continuation\", \"gold\"}. corpus: the plain text stating that\n"
    "  world's facts (each fact once, then N paraphrased lines). The world depends\n"
    "  only on --world-seed (default 1) and --entities (default 48).\n"
    "Splits train, distill, calib, test are disjoint by construction (a hash of each\n"
    "item's skeleton picks its split). Output is deterministic for a seed.\n";

static int cmd_tasks(int argc, char **argv) {
    const char *what, *out = NULL, *split_name = NULL, *ops = "+-*/";
    int64_t n = -1, max_number = 100;
    uint64_t seed = 0, world_seed = 1;
    int i, a = 1, b = 6, entities = 48, restate = 0, keyed = 0;
    red_split split = RED_SPLIT_TRAIN;
    red_sbuf buf;
    red_error err;
    red_status st;
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fputs(usage_tasks, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    what = argv[0];
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_tasks, stdout);
            return 0;
        }
        if (!strcmp(o, "--keyed")) { keyed = 1; continue; }
        if (i + 1 >= argc) die(2, "tasks: %s needs a value", o);
        if (!strcmp(o, "--out")) out = argv[++i];
        else if (!strcmp(o, "--split")) split_name = argv[++i];
        else if (!strcmp(o, "-n")) n = (int64_t)parse_whole(o, argv[++i], 0, 1e9);
        else if (!strcmp(o, "--seed")) seed = (uint64_t)parse_whole(o, argv[++i], 0, 1e15);
        else if (!strcmp(o, "--world-seed")) world_seed = (uint64_t)parse_whole(o, argv[++i], 0, 1e15);
        else if (!strcmp(o, "--entities")) entities = (int)parse_whole(o, argv[++i], 4, 256);
        else if (!strcmp(o, "--max-number")) max_number = (int64_t)parse_whole(o, argv[++i], 10, 1e9);
        else if (!strcmp(o, "--ops")) ops = argv[++i];
        else if (!strcmp(o, "--solution")) {
            const char *v = argv[++i];
            if (!strcmp(v, "restate")) restate = 1;
            else if (!strcmp(v, "short")) restate = 0;
            else die(2, "tasks: --solution expects short or restate, got '%s'", v);
        } else if (!strcmp(o, "--steps")) {
            const char *s = argv[++i];
            if (sscanf(s, "%d-%d", &a, &b) != 2 && sscanf(s, "%d", &a) == 1) b = a;
            if (a < 1 || b > 6 || a > b) die(2, "tasks: --steps expects A-B with 1 <= A <= B <= 6, got '%s'", s);
        } else if (!strcmp(o, "--threads")) (void)parse_threads(argv[++i]);  /* accepted by every command */
        else die(2, "tasks: unknown option '%s' (see red tasks --help)", o);
    }
    if (n < 0) die(2, "tasks: -n N is required");
    if (strcmp(what, "corpus")) {
        if (!split_name) die(2, "tasks: --split train|distill|calib|test is required");
        if (red_split_parse(split_name, &split) != RED_OK) die(2, "tasks: unknown split '%s' (train, distill, calib, test)", split_name);
    }
    red_sbuf_init(&buf);
    red_sbuf_puts(&buf, "");
    if (!strcmp(what, "reasoning")) {
        red_reasoning_opts ro;
        ro.split = split; ro.n = n; ro.seed = seed; ro.min_steps = a; ro.max_steps = b; ro.max_number = max_number;
        ro.ops = ops;
        ro.restate = restate;
        ro.keyed = keyed;
        st = red_tasks_reasoning(&ro, &buf, &err);
    } else if (!strcmp(what, "choice") || !strcmp(what, "corpus")) {
        red_world_opts wo;
        wo.split = split; wo.n = n; wo.seed = seed; wo.world_seed = world_seed; wo.n_entities = entities;
        st = !strcmp(what, "choice") ? red_tasks_choice(&wo, &buf, &err) : red_tasks_corpus(&wo, &buf, &err);
    } else {
        die(2, "tasks: unknown generator '%s' (reasoning, choice, corpus)", what);
        return 2;
    }
    if (st != RED_OK) die(1, "%s", err.msg);
    if (out) write_text_file(out, &buf);
    else if (fwrite(buf.p, 1, buf.len, stdout) != buf.len) die(1, "tasks: write error on standard output");
    red_sbuf_free(&buf);
    return 0;
}

static const char *usage_train =
    "usage: red train --data FILE [--data FILE ...] --out DIR [--eval-data FILE] [--config CONFIG.json]\n"
    "                 [--dim D] [--layers L] [--heads H] [--kv-heads K] [--ffn F] [--seq T] [--batch B]\n"
    "                 [--tokens N] [--lr LR] [--min-lr LR] [--warmup S] [--schedule cosine|linear|constant]\n"
    "                 [--wd W] [--clip C] [--seed S] [--save-every S] [--eval-every S] [--log-every S]\n"
    "                 [--answer-loss] [--tokenizer DIR] [--resume] [--threads N]\n"
    "\n"
    "Trains a Llama-style model from scratch, byte-level or with the BPE tokenizer\n"
    "in DIR/red_tokenizer.json (--tokenizer; see red tokenizer train). Data: .jsonl files (GSM8K\n"
    "{question, answer} as 'Question: q\\nAnswer: a'; {text}; multiple-choice items as\n"
    "query + ' ' + gold choice; WinoGrande form as gold context + ' ' + continuation)\n"
    "or text files (one document per line); every document ends with EOS and the\n"
    "documents are packed into rows of T+1 tokens, reshuffled each epoch.\n"
    "Defaults: dim 128, 4 layers, 4 heads, FFN 384, seq 256, batch 16, 1M tokens,\n"
    "AdamW lr 3e-3 (betas 0.9/0.95, wd 0.1 on matrices), 2% warm-up then cosine to\n"
    "lr/10, clip 1.0, seed 0. Checkpoints (config.json, model.safetensors,\n"
    "red_tokenizer.json, train_state.bin) go to DIR every --save-every steps (200)\n"
    "and at the end, atomically; --resume continues exactly where the last one\n"
    "stopped (bit-identical to an uninterrupted run with the same threads).\n"
    "--answer-loss trains only on what the harnesses score: in question/answer and\n"
    "choice items the context (up to 'Answer:', the query) is not a prediction target.\n"
    "A progress line (step, loss, held-out loss, lr, tokens/s, ETA) goes to stderr.\n";

typedef struct {
    double t0;
    uint64_t first_step;
    int log_every;
    int tokens_per_step;
} train_log;

static void train_progress(void *ctx, const red_train_progress *p) {
    train_log *l = ctx;
    double el = red_time_seconds() - l->t0, rate = (p->step - l->first_step) * (double)l->tokens_per_step / (el > 1e-9 ? el : 1e-9);
    double eta = (p->total_steps - p->step) * (double)l->tokens_per_step / (rate > 1 ? rate : 1);
    if (p->step % (uint64_t)l->log_every && p->step != p->total_steps && p->eval_loss != p->eval_loss) return;
    fprintf(stderr, "step %llu/%llu  loss %.4f", (unsigned long long)p->step, (unsigned long long)p->total_steps, p->loss);
    if (p->eval_loss == p->eval_loss) fprintf(stderr, "  eval %.4f", p->eval_loss);
    fprintf(stderr, "  lr %.2e  |g| %.2f  epoch %llu  %.0f tok/s  ETA %.0f s\n", p->lr, p->grad_norm,
            (unsigned long long)p->epoch, rate, eta);
}

static int cmd_train(int argc, char **argv) {
    const char *data[64], *eval_path = NULL, *cfg_path = NULL, *tok_dir = NULL;
    int n_data = 0, i, threads = 0, log_every = 10, resume = 0, answer_only = 0;
    red_train_opts o;
    red_config c;
    red_model m;
    static red_tokenizer *tok = NULL;
    red_train_data d, ev;
    red_error err;
    red_status st;
    red_pool *pool;
    train_log tl;
    red_rng r;
    double warm_frac = 0.02;
    int64_t warm_steps = -1;
    red_config_default(&c);
    c.dim = 128; c.n_layers = 4; c.n_heads = 4; c.n_kv_heads = 4; c.head_dim = 32; c.ffn = 384;
    c.vocab = 259; c.bos_id = 256; c.eos_id = 257; c.max_pos = 1024;
    memset(&o, 0, sizeof o);
    o.loop.tokens = 1000000; o.loop.batch = 16; o.loop.seq = 256; o.loop.lr = 3e-3f; o.loop.min_lr = -1; o.loop.beta1 = 0.9f; o.loop.beta2 = 0.95f;
    o.loop.weight_decay = 0.1f; o.loop.clip = 1.0; o.loop.schedule = RED_SCHED_COSINE; o.loop.save_every = 200; o.eval_every = 100;
    o.eval_batches = 4;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_train, stdout);
            return 0;
        }
        if (!strcmp(a, "--resume")) { resume = 1; continue; }
        if (!strcmp(a, "--answer-loss")) { answer_only = 1; continue; }
        if (i + 1 >= argc) die(2, "train: %s needs a value (see red train --help)", a);
        if (!strcmp(a, "--data")) {
            if (n_data == 64) die(2, "train: at most 64 --data files");
            data[n_data++] = argv[++i];
        } else if (!strcmp(a, "--eval-data")) eval_path = argv[++i];
        else if (!strcmp(a, "--out")) o.loop.out = argv[++i];
        else if (!strcmp(a, "--config")) cfg_path = argv[++i];
        else if (!strcmp(a, "--tokenizer")) tok_dir = argv[++i];
        else if (!strcmp(a, "--dim")) c.dim = (int)parse_whole(a, argv[++i], 8, 65536);
        else if (!strcmp(a, "--layers")) c.n_layers = (int)parse_whole(a, argv[++i], 1, 1024);
        else if (!strcmp(a, "--heads")) c.n_heads = c.n_kv_heads = (int)parse_whole(a, argv[++i], 1, 1024);
        else if (!strcmp(a, "--kv-heads")) c.n_kv_heads = (int)parse_whole(a, argv[++i], 1, 1024);
        else if (!strcmp(a, "--ffn")) c.ffn = (int)parse_whole(a, argv[++i], 1, 1 << 20);
        else if (!strcmp(a, "--seq")) o.loop.seq = (int)parse_whole(a, argv[++i], 2, 1 << 16);
        else if (!strcmp(a, "--batch")) o.loop.batch = (int)parse_whole(a, argv[++i], 1, 1 << 16);
        else if (!strcmp(a, "--tokens")) o.loop.tokens = (uint64_t)parse_whole(a, argv[++i], 1, 1e15);
        else if (!strcmp(a, "--lr")) o.loop.lr = (float)parse_num(a, argv[++i], 0, 10);
        else if (!strcmp(a, "--min-lr")) o.loop.min_lr = (float)parse_num(a, argv[++i], 0, 10);
        else if (!strcmp(a, "--warmup")) warm_steps = (int64_t)parse_whole(a, argv[++i], 0, 1e12);
        else if (!strcmp(a, "--wd")) o.loop.weight_decay = (float)parse_num(a, argv[++i], 0, 10);
        else if (!strcmp(a, "--clip")) o.loop.clip = parse_num(a, argv[++i], 0, 1e9);
        else if (!strcmp(a, "--seed")) o.loop.seed = (uint64_t)parse_whole(a, argv[++i], 0, 1e15);
        else if (!strcmp(a, "--save-every")) o.loop.save_every = (uint64_t)parse_whole(a, argv[++i], 0, 1e12);
        else if (!strcmp(a, "--eval-every")) o.eval_every = (uint64_t)parse_whole(a, argv[++i], 0, 1e12);
        else if (!strcmp(a, "--log-every")) log_every = (int)parse_whole(a, argv[++i], 1, 1e9);
        else if (!strcmp(a, "--threads")) threads = parse_threads(argv[++i]);
        else if (!strcmp(a, "--schedule")) {
            const char *k = argv[++i];
            if (!strcmp(k, "cosine")) o.loop.schedule = RED_SCHED_COSINE;
            else if (!strcmp(k, "linear")) o.loop.schedule = RED_SCHED_LINEAR;
            else if (!strcmp(k, "constant")) o.loop.schedule = RED_SCHED_CONSTANT;
            else die(2, "train: --schedule expects cosine, linear or constant, got '%s'", k);
        } else die(2, "train: unknown option '%s' (see red train --help)", a);
    }
    if (!n_data || !o.loop.out) die(2, "train: --data and --out are required (see red train --help)");
    for (i = 0; i < n_data; i++) check_distinct("train", "--out", o.loop.out, "--data", data[i]);
    check_output("train", "--out", o.loop.out, 1);
    if (o.loop.min_lr < 0) o.loop.min_lr = o.loop.lr / 10;
    c.head_dim = c.dim / c.n_heads;
    c.max_pos = o.loop.seq;  /* the context is what training saw: positions beyond it were never trained */
    pool = make_pool(threads);
    if (red_tokenizer_byte_new(&tok, &err) != RED_OK) die(1, "%s", err.msg);
    if (resume) {
        load_model(&m, o.loop.out, pool);
        red_tokenizer_free(tok);
        if (red_tokenizer_load(&tok, o.loop.out, &err) != RED_OK) die(1, "%s", err.msg);
    } else {
        if (tok_dir) {
            red_tokenizer_free(tok);
            if (red_tokenizer_load(&tok, tok_dir, &err) != RED_OK) die(1, "%s", err.msg);
            c.vocab = red_tokenizer_vocab(tok);
        }
        if (cfg_path) {
            if (red_config_read(&c, cfg_path, &err) != RED_OK) die(1, "%s", err.msg);
        }
        if (c.vocab < red_tokenizer_vocab(tok)) die(1, "train: vocab_size is smaller than the tokenizer's");
        if (red_model_init(&m, &c, pool, &err) != RED_OK) die(1, "%s", err.msg);
        red_rng_seed(&r, o.loop.seed);
        red_model_init_random(&m, &r, 0.02f, (float)(0.02 / sqrt(2.0 * c.n_layers)));
    }
    memset(&d, 0, sizeof d);
    memset(&ev, 0, sizeof ev);
    d.answer_only = ev.answer_only = answer_only;
    for (i = 0; i < n_data; i++)
        if (red_train_data_add_file(&d, tok, data[i], &err) != RED_OK) die(1, "%s", err.msg);
    if (eval_path && red_train_data_add_file(&ev, tok, eval_path, &err) != RED_OK) die(1, "%s", err.msg);
    {
        uint64_t steps = o.loop.tokens / ((uint64_t)o.loop.batch * o.loop.seq);
        o.loop.warmup_steps = warm_steps >= 0 ? (uint64_t)warm_steps : (uint64_t)(warm_frac * steps);
        fprintf(stderr, "train: %zu documents, %zu tokens; model %zu parameters (dim %d, %d layers, %d heads, ffn %d); "
                        "%llu steps of %d x %d\n", d.n_docs, d.n_tok, m.n_params, m.cfg.dim, m.cfg.n_layers, m.cfg.n_heads,
                m.cfg.ffn, (unsigned long long)steps, o.loop.batch, o.loop.seq);
    }
    o.loop.resume = resume;
    tl.t0 = red_time_seconds();
    tl.first_step = 0;
    tl.log_every = log_every;
    tl.tokens_per_step = o.loop.batch * o.loop.seq;
    o.progress = train_progress;
    o.progress_ctx = &tl;
    if (!eval_path) o.eval_every = 0;
    o.loop.stop = &stop_requested;
    catch_stop_signals();
    if ((st = red_train(&o, &m, tok, &d, eval_path ? &ev : NULL, &err)) != RED_OK) die_err(st, &err);
    fprintf(stderr, "train: done in %.1f s -> %s\n", red_time_seconds() - tl.t0, o.loop.out);
    red_train_data_free(&d);
    red_train_data_free(&ev);
    red_model_free(&m);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}


/* ------------------------------------------------------------------ distill, erank --model */

static int *fixed_rows(red_train_data *d, int n_rows, int T) {
    int *tok = malloc((size_t)n_rows * T * sizeof(int));
    red_error err;
    if (!tok) die(1, "out of memory for %s rows", "eRank");
    if (red_train_data_rows(d, n_rows, T, tok, &err) != RED_OK) die(1, "%s", err.msg);
    return tok;
}

static void load_data_files(red_train_data *d, const red_tokenizer *tok, const char *const *files, int n) {
    red_error err;
    int i;
    memset(d, 0, sizeof *d);
    for (i = 0; i < n; i++)
        if (red_train_data_add_file(d, tok, files[i], &err) != RED_OK) die(1, "%s", err.msg);
}

static int cmd_erank_model(int argc, char **argv) {
    const char *tok_path = NULL;
    const char *model = NULL, *json = NULL, *data[64];
    int n_data = 0, threads = 0, center = 0, T = 256, i, n_rows, L;
    int64_t tokens = 8192;
    red_model m;
    red_tokenizer *tok = NULL;
    red_train_data d;
    red_pool *pool;
    red_error err;
    red_layer_metrics *met;
    int *rows;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--center")) { center = 1; continue; }
        if (i + 1 >= argc) die(2, "erank: %s needs a value (see red erank --help)", o);
        if (!strcmp(o, "--tokenizer")) tok_path = argv[++i];
        else if (!strcmp(o, "--model")) model = argv[++i];
        else if (!strcmp(o, "--data")) {
            if (n_data == 64) die(2, "erank: at most 64 --data files");
            data[n_data++] = argv[++i];
        } else if (!strcmp(o, "--tokens")) tokens = (int64_t)parse_whole(o, argv[++i], 1, 1e9);
        else if (!strcmp(o, "--seq")) T = (int)parse_whole(o, argv[++i], 2, 1 << 16);
        else if (!strcmp(o, "--json")) json = argv[++i];
        else if (!strcmp(o, "--threads")) threads = parse_threads(argv[++i]);
        else die(2, "erank: unknown option '%s' (see red erank --help)", o);
    }
    if (!model || !n_data) die(2, "erank: --model and --data are required (see red erank --help)");
    pool = make_pool(threads);
    load_model(&m, model, pool);
    if (red_model_tokenizer(&tok, model, tok_path, &err) != RED_OK) die(1, "%s", err.msg);
    if (T > m.cfg.max_pos) T = m.cfg.max_pos;
    n_rows = (int)((tokens + T - 1) / T);
    load_data_files(&d, tok, data, n_data);
    rows = fixed_rows(&d, n_rows, T);
    if (red_model_run_alloc(&m, n_rows < 8 ? n_rows : 8, T, RED_RUN_FORWARD, &err) != RED_OK) die(1, "%s", err.msg);
    L = m.cfg.n_layers;
    met = xmalloc((size_t)(L + 1) * sizeof *met);
    if (red_hidden_metrics(&m, rows, n_rows, T, center, 0, met, &err) != RED_OK) die(1, "%s", err.msg);
    printf("# eRank and token indistinguishability of %s on %d x %d tokens (eRank %s), width %d\n", model, n_rows, T,
           center ? "centred" : "uncentred", m.cfg.dim);
    printf("layer\terank\tcos_mean\tindist@0.95\tindist@0.99\n");
    for (i = 0; i <= L; i++) {
        if (i < L) printf("block %d", i);
        else printf("final_norm");
        printf("\t%.4f\t%.4f\t%.6f\t%.6f\n", met[i].erank, met[i].ind.cos_mean, met[i].ind.indist[0], met[i].ind.indist[1]);
    }
    if (json) {
        red_sbuf b;
        red_sbuf_init(&b);
        red_sbuf_puts(&b, "{\"model\": ");
        red_json_put_string(&b, model, strlen(model));
        red_sbuf_printf(&b, ", \"width\": %d, \"tokens\": %d, \"center\": %s, ", m.cfg.dim, n_rows * T,
                        center ? "true" : "false");
        put_hidden_metrics(&b, met, L + 1, 1);
        red_sbuf_puts(&b, "}\n");
        write_text_file(json, &b);
        red_sbuf_free(&b);
    }
    free(met);
    free(rows);
    red_train_data_free(&d);
    red_model_free(&m);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}

/* ------------------------------------------------------------------ inspect */

static const char *usage_inspect =
    "usage: red inspect --model DIR --data FILE [--data FILE ...] --width D [--json OUT]\n"
    "                   [--calib-tokens N] [--batch B] [--seq T] [--threads N]\n"
    "\n"
    "Why a channel selection keeps less than a rotation: one calibration pass of\n"
    "the model on the data (the pass the inits make: same rows for the same B x T\n"
    "and N), then per RMSNorm site (each layer's attention and MLP norm, the final\n"
    "norm; energies of the norm outputs the weights read) the fraction of the\n"
    "activation energy kept at width D by red's channel selection, by magnitude's\n"
    "selection, by the shared basis the pca init uses, and by the site's own top-D\n"
    "principal directions (the most any D-dim projection keeps; a random one keeps\n"
    "D/d on average), and how concentrated the channel energy is: share of the top\n"
    "1% and 10% of channels (at least one), max/median channel RMS, kurtosis of\n"
    "the channel RMS (3 for a Gaussian; outlier channels make it large).\n"
    "Defaults are red reproduce's: --calib-tokens 131072, --batch 1, --seq 1024\n"
    "(at most the model's context).\n";

static const char *site_name(int site, int L, char *buf, size_t cap) {
    if (site == 2 * L) snprintf(buf, cap, "final_norm");
    else snprintf(buf, cap, "layers.%d.%s", site / 2, site % 2 ? "mlp_norm" : "attn_norm");
    return buf;
}

static int cmd_inspect(int argc, char **argv) {
    const char *model = NULL, *json = NULL, *data[64];
    int n_data = 0, threads = 0, width = 0, B = 1, T = 1024, i;
    int64_t calib_tokens = 131072;
    red_model m;
    red_tokenizer *tok = NULL;
    red_train_data d;
    red_pool *pool;
    red_error err;
    red_inspect_result r;
    double mean[8] = {0};
    char name[64];
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_inspect, stdout);
            return 0;
        }
        if (i + 1 >= argc) die(2, "inspect: %s needs a value (see red inspect --help)", o);
        if (!strcmp(o, "--model")) model = argv[++i];
        else if (!strcmp(o, "--data")) {
            if (n_data == 64) die(2, "inspect: at most 64 --data files");
            data[n_data++] = argv[++i];
        } else if (!strcmp(o, "--width")) width = (int)parse_whole(o, argv[++i], 1, 1 << 20);
        else if (!strcmp(o, "--json")) json = argv[++i];
        else if (!strcmp(o, "--calib-tokens")) calib_tokens = (int64_t)parse_whole(o, argv[++i], 1, 1e12);
        else if (!strcmp(o, "--batch")) B = (int)parse_whole(o, argv[++i], 1, 1 << 16);
        else if (!strcmp(o, "--seq")) T = (int)parse_whole(o, argv[++i], 2, 1 << 16);
        else if (!strcmp(o, "--threads")) threads = parse_threads(argv[++i]);
        else die(2, "inspect: unknown option '%s' (see red inspect --help)", o);
    }
    if (!model || !n_data || !width) die(2, "inspect: --model, --data and --width are required (see red inspect --help)");
    pool = make_pool(threads);
    load_model(&m, model, pool);
    if (red_model_tokenizer(&tok, model, NULL, &err) != RED_OK) die(1, "%s", err.msg);
    if (T > m.cfg.max_pos) T = m.cfg.max_pos;
    load_data_files(&d, tok, data, n_data);
    if (red_inspect(&m, width, &d, calib_tokens, B, T, &r, &err) != RED_OK) die(1, "%s", err.msg);
    printf("# red inspect: %s, width %d -> %d, %lld calibration tokens (%d x %d rows); a random projection keeps %.3f\n",
           model, r.d_t, r.d_s, (long long)r.rows, B, T, (double)r.d_s / r.d_t);
    printf("%-20s %8s %8s %8s %8s %8s %8s %8s %8s\n", "site", "red", "magn.", "pca-shr", "pca-own", "top1%", "top10%",
           "max/med", "kurt");
    for (i = 0; i < r.n_sites; i++) {
        const red_site_energy *e = &r.site[i];
        double v[8];
        int k;
        v[0] = e->kept_red; v[1] = e->kept_magnitude; v[2] = e->kept_pca_shared; v[3] = e->kept_pca;
        v[4] = e->top1_share; v[5] = e->top10_share; v[6] = e->rms_max_over_median; v[7] = e->rms_kurtosis;
        printf("%-20s", site_name(i, m.cfg.n_layers, name, sizeof name));
        for (k = 0; k < 8; k++) {
            printf(" %8.3f", v[k]);
            mean[k] += v[k] / r.n_sites;
        }
        printf("\n");
    }
    printf("%-20s", "mean");
    for (i = 0; i < 8; i++) printf(" %8.3f", mean[i]);
    printf("\n");
    if (json) {
        red_sbuf b;
        double sel[2][4096];
        int k;
        red_sbuf_init(&b);
        red_sbuf_puts(&b, "{\"model\": ");
        red_json_put_string(&b, model, strlen(model));
        red_sbuf_printf(&b, ", \"d_t\": %d, \"d_s\": %d, \"calib_tokens\": %lld, \"batch\": %d, \"seq\": %d, "
                        "\"kept_random_expected\": ", r.d_t, r.d_s, (long long)r.rows, B, T);
        red_json_put_number(&b, (double)r.d_s / r.d_t);
        for (k = 0; k < r.d_s && k < 4096; k++) { sel[0][k] = r.sel_red[k]; sel[1][k] = r.sel_magnitude[k]; }
        red_sbuf_puts(&b, ",\n \"sel_red\": ");
        red_json_put_numbers(&b, sel[0], k);
        red_sbuf_puts(&b, ",\n \"sel_magnitude\": ");
        red_json_put_numbers(&b, sel[1], k);
        red_sbuf_puts(&b, ",\n \"sites\": [");
        for (i = 0; i < r.n_sites; i++) {
            const red_site_energy *e = &r.site[i];
            static const char *const keys[] = {"kept_red", "kept_magnitude", "kept_pca_shared", "kept_pca", "top1_share",
                                                "top10_share", "rms_max_over_median", "rms_kurtosis"};
            double v[8];
            v[0] = e->kept_red; v[1] = e->kept_magnitude; v[2] = e->kept_pca_shared; v[3] = e->kept_pca;
            v[4] = e->top1_share; v[5] = e->top10_share; v[6] = e->rms_max_over_median; v[7] = e->rms_kurtosis;
            red_sbuf_puts(&b, i ? ",\n  {\"site\": " : "\n  {\"site\": ");
            red_json_put_string(&b, site_name(i, m.cfg.n_layers, name, sizeof name), strlen(name));
            for (k = 0; k < 8; k++) {
                red_sbuf_printf(&b, ", \"%s\": ", keys[k]);
                red_json_put_number(&b, v[k]);
            }
            red_sbuf_puts(&b, "}");
        }
        red_sbuf_puts(&b, "]}\n");
        write_text_file(json, &b);
        red_sbuf_free(&b);
    }
    red_inspect_free(&r);
    red_train_data_free(&d);
    red_model_free(&m);
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
    return 0;
}

static const char *usage_distill =
    "usage: red distill --teacher DIR --width D --init lrc|lrc-literal|orthogonal|pca|magnitude|red\n"
    "                   --data FILE [--data FILE ...] --tokens N --out DIR [options]\n"
    "\n"
    "LRC-style distillation (../shared/docs/method.md): the student's weights are\n"
    "the teacher's through trainable projections (W P on the input side, PᵀW on the\n"
    "output side, E P_e), trained with CE + KL(tau) + alpha * clone MSE on q, k, v,\n"
    "attention out, gate, up and FFN out; the teacher is frozen. At the end the\n"
    "merged student is written to DIR as an ordinary model (config.json,\n"
    "model.safetensors, red_tokenizer.json), with distill_log.json: options, loss\n"
    "curve, eRank per layer (teacher, student at init and at the end) and the\n"
    "singular values of every projection with the Marchenko-Pastur bounds.\n"
    "--tokens 0 writes the initialised student without training.\n"
    "\n"
    "init:   lrc: Gaussian, std 0.02*sqrt(3072/d_t) (LRC's column norm at any width);\n"
    "        lrc-literal: std 0.02; --init-std S|matched overrides (matched = lrc's)\n"
    "        --orth-scale unit|lrc orthogonal column norm (default unit; lrc = std*sqrt(d_t))\n"
    "        --score energy|resid|absmean|wanda   red channel score (default energy)\n"
    "        --norms default|ones|teacher|teacher-rms  student norms (default: teacher-rms\n"
    "                for red, teacher for magnitude, ones otherwise)\n"
    "        --calib FILE (default: the --data files)  --calib-tokens N (default 262144)\n"
    "        --seed S  (init draws and data order; default 0)\n"
    "loss:   --tau T (default 10)  --alpha A (default 0.2)  --kl-reduction sequence|token\n"
    "        (sequence, LRC's: sum over tokens / sequences)\n"
    "optim:  --lr LR (default 3e-3)  --min-lr LR (0)  --warmup S (1% of steps)\n"
    "        --schedule linear|cosine|constant (linear)  --wd W (0)  --clip C (1.0)\n"
    "        --batch B (8)  --seq T (256)\n"
    "run:    --save-every S (100)  --log-every S (10)  --resume  --threads N\n"
    "        --stop-after S (stop after step S, as if killed: for resume tests)\n"
    "        --erank-tokens N (8192, from the calibration stream)\n";

typedef struct {
    double t0;
    uint64_t first_step;
    int log_every, tokens_per_step;
} distill_log;

static void distill_progress(void *ctx, const red_distill_progress *p) {
    distill_log *l = ctx;
    double el = red_time_seconds() - l->t0, rate = (p->step - l->first_step) * (double)l->tokens_per_step / (el > 1e-9 ? el : 1e-9);
    double eta = (p->total_steps - p->step) * (double)l->tokens_per_step / (rate > 1 ? rate : 1);
    const double *c = p->loss.clone_site;
    if (p->step % (uint64_t)l->log_every && p->step != p->total_steps && p->step != 1) return;
    fprintf(stderr, "step %llu/%llu  loss %.4f  ce %.4f  kl %.4f  clone %.4f (q %.3f k %.3f v %.3f o %.3f g %.3f u %.3f "
            "y %.3f)  lr %.2e  |g| %.2f  %.0f tok/s  ETA %.0f s\n", (unsigned long long)p->step,
            (unsigned long long)p->total_steps, p->loss.total, p->loss.ce, p->loss.kl, p->loss.clone, c[0], c[1], c[2],
            c[3], c[4], c[5], c[6], p->lr, p->grad_norm, rate, eta);
}

static void say_plain(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

/* Parses a name of a table or exits naming the choices. */
static int parse_name(const char *cmd, const char *opt, const red_name *t, const char *v) {
    int value;
    red_sbuf all;
    if (red_name_find(t, v, &value) == RED_OK) return value;
    red_sbuf_init(&all);
    red_name_list(t, &all);
    fprintf(stderr, "red %s: %s expects %s, got '%s'\n", cmd, opt, all.p ? all.p : "", v);
    exit(2);
}

static int cmd_distill(int argc, char **argv) {
    const char *tok_path = NULL;
    const char *teacher_dir = NULL, *out = NULL, *data[64], *calib_files[64], *init_name = NULL, *init_std = NULL;
    int n_data = 0, n_calib = 0, width = 0, threads = 0, log_every = 10, i, orth_lrc = 0;
    int64_t calib_tokens = 262144, erank_tokens = 8192, warm_steps = -1;
    uint64_t tokens = 0;
    int have_tokens = 0;
    red_distill_job job;
    red_distill_report rep;
    red_status st;
    red_distill_opts o;
    red_init_opts io;
    red_model t;
    red_student s;
    red_tokenizer *tok = NULL;
    red_train_data d, cd;
    red_pool *pool;
    red_error err;
    distill_log dl;
    int *er_rows = NULL, er_n = 0, L;
    red_distill_opts_default(&o);
    red_init_opts_default(&io);
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_distill, stdout);
            return 0;
        }
        if (!strcmp(a, "--resume")) { o.loop.resume = 1; continue; }
        if (i + 1 >= argc) die(2, "distill: %s needs a value (see red distill --help)", a);
        if (!strcmp(a, "--tokenizer")) tok_path = argv[++i];
        else if (!strcmp(a, "--teacher")) teacher_dir = argv[++i];
        else if (!strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--width")) width = (int)parse_whole(a, argv[++i], 1, 1 << 20);
        else if (!strcmp(a, "--init")) init_name = argv[++i];
        else if (!strcmp(a, "--data")) {
            if (n_data == 64) die(2, "distill: at most 64 --data files");
            data[n_data++] = argv[++i];
        } else if (!strcmp(a, "--calib")) {
            if (n_calib == 64) die(2, "distill: at most 64 --calib files");
            calib_files[n_calib++] = argv[++i];
        } else if (!strcmp(a, "--calib-tokens")) calib_tokens = (int64_t)parse_whole(a, argv[++i], 1, 1e12);
        else if (!strcmp(a, "--erank-tokens")) erank_tokens = (int64_t)parse_whole(a, argv[++i], 0, 1e9);
        else if (!strcmp(a, "--tokens")) { tokens = (uint64_t)parse_whole(a, argv[++i], 0, 1e15); have_tokens = 1; }
        else if (!strcmp(a, "--seed")) o.loop.seed = io.seed = (uint64_t)parse_whole(a, argv[++i], 0, 1e15);
        else if (!strcmp(a, "--tau")) o.loss.tau = (float)parse_num(a, argv[++i], 1e-3, 1e6);
        else if (!strcmp(a, "--alpha")) o.loss.alpha = (float)parse_num(a, argv[++i], 0, 1e6);
        else if (!strcmp(a, "--lr")) o.loop.lr = (float)parse_num(a, argv[++i], 0, 10);
        else if (!strcmp(a, "--min-lr")) o.loop.min_lr = (float)parse_num(a, argv[++i], 0, 10);
        else if (!strcmp(a, "--warmup")) warm_steps = (int64_t)parse_whole(a, argv[++i], 0, 1e12);
        else if (!strcmp(a, "--wd")) o.loop.weight_decay = (float)parse_num(a, argv[++i], 0, 10);
        else if (!strcmp(a, "--clip")) o.loop.clip = parse_num(a, argv[++i], 0, 1e9);
        else if (!strcmp(a, "--batch")) o.loop.batch = (int)parse_whole(a, argv[++i], 1, 1 << 16);
        else if (!strcmp(a, "--seq")) o.loop.seq = (int)parse_whole(a, argv[++i], 2, 1 << 16);
        else if (!strcmp(a, "--save-every")) o.loop.save_every = (uint64_t)parse_whole(a, argv[++i], 0, 1e12);
        else if (!strcmp(a, "--log-every")) log_every = (int)parse_whole(a, argv[++i], 1, 1e9);
        else if (!strcmp(a, "--stop-after")) o.loop.stop_after = (uint64_t)parse_whole(a, argv[++i], 1, 1e15);
        else if (!strcmp(a, "--threads")) threads = parse_threads(argv[++i]);
        else if (!strcmp(a, "--init-std")) init_std = argv[++i];
        else if (!strcmp(a, "--orth-scale")) {
            const char *v = argv[++i];
            if (!strcmp(v, "lrc")) orth_lrc = 1;
            else if (strcmp(v, "unit")) die(2, "distill: --orth-scale expects unit or lrc, got '%s'", v);
        } else if (!strcmp(a, "--score")) io.score = (red_score_kind)parse_name("distill", a, red_score_names, argv[++i]);
        else if (!strcmp(a, "--norms")) io.norms = (red_norm_init)parse_name("distill", a, red_norms_names, argv[++i]);
        else if (!strcmp(a, "--kl-reduction"))
            o.loss.kl_reduction = (red_kl_reduction)parse_name("distill", a, red_kl_names, argv[++i]);
        else if (!strcmp(a, "--schedule")) {
            const char *k = argv[++i];
            if (!strcmp(k, "cosine")) o.loop.schedule = RED_SCHED_COSINE;
            else if (!strcmp(k, "linear")) o.loop.schedule = RED_SCHED_LINEAR;
            else if (!strcmp(k, "constant")) o.loop.schedule = RED_SCHED_CONSTANT;
            else die(2, "distill: --schedule expects linear, cosine or constant, got '%s'", k);
        } else die(2, "distill: unknown option '%s' (see red distill --help)", a);
    }
    if (!teacher_dir || !out || !n_data || !width || !init_name || !have_tokens)
        die(2, "distill: --teacher, --width, --init, --data, --tokens and --out are required (see red distill --help)");
    check_distinct("distill", "--out", out, "--teacher", teacher_dir);
    for (i = 0; i < n_data; i++) check_distinct("distill", "--out", out, "--data", data[i]);
    check_output("distill", "--out", out, 1);
    if (red_init_by_name(init_name, 128, &io, &err) != RED_OK) die(2, "distill: %s", err.msg);
    o.loop.out = out;
    pool = make_pool(threads);
    load_model(&t, teacher_dir, pool);
    if (red_model_tokenizer(&tok, teacher_dir, tok_path, &err) != RED_OK) die(1, "%s", err.msg);
    if (o.loop.seq > t.cfg.max_pos) die(2, "distill: --seq exceeds the teacher's max_position_embeddings (%s)", "see red info");
    red_init_by_name(init_name, t.cfg.dim, &io, &err);
    if (init_std && !strcmp(init_std, "matched")) io.std = (float)(0.02 * sqrt(3072.0 / t.cfg.dim));
    else if (init_std) io.std = (float)parse_num("--init-std", init_std, 0, 100);
    if (orth_lrc) io.orth_scale = (float)(io.std * sqrt((double)t.cfg.dim));
    load_data_files(&d, tok, data, n_data);
    load_data_files(&cd, tok, n_calib ? calib_files : data, n_calib ? n_calib : n_data);
    L = t.cfg.n_layers;
    if (erank_tokens > 0) {
        er_n = (int)((erank_tokens + o.loop.seq - 1) / o.loop.seq);
        er_rows = fixed_rows(&cd, er_n, o.loop.seq);
    }
    {
        uint64_t steps = tokens / ((uint64_t)o.loop.batch * o.loop.seq);
        o.loop.tokens = tokens;
        o.loop.warmup_steps = warm_steps >= 0 ? (uint64_t)warm_steps : steps / 100;
        o.log_every = (uint64_t)log_every;
    }
    dl.t0 = red_time_seconds();
    dl.first_step = 0;
    dl.log_every = log_every;
    dl.tokens_per_step = o.loop.batch * o.loop.seq;
    o.progress = distill_progress;
    o.progress_ctx = &dl;
    memset(&job, 0, sizeof job);
    job.teacher = &t; job.tok = tok; job.teacher_name = teacher_dir; job.init_name = init_name; job.width = width;
    job.init = io; job.opt = o; job.data = &d; job.calib = &cd; job.calib_tokens = calib_tokens;
    job.erank_rows = er_rows; job.n_erank_rows = er_n; job.measure_teacher = 1; job.write_log = 1;
    job.say = say_plain;
    job.opt.loop.stop = &stop_requested;
    catch_stop_signals();
    if ((st = red_distill_run(&job, &s, &rep, &err)) != RED_OK) die_err(st, &err);
    if (red_tokenizer_kind(tok) > RED_TOK_BPE) copy_tokenizer_files(tok_path ? tok_path : teacher_dir, out);
    fprintf(stderr, "distill: eRank final norm: teacher %.2f, student at init %.2f, at end %.2f -> %s\n",
            rep.erank_teacher[L], rep.erank_init[L], rep.erank_final[L], out);
    fprintf(stderr, "distill: indist@0.95 final norm: teacher %.4f, student at init %.4f, at end %.4f\n",
            rep.hidden_teacher[L].ind.indist[0], rep.hidden_init[L].ind.indist[0], rep.hidden_final[L].ind.indist[0]);
    red_distill_report_free(&rep);
    free(er_rows);
    red_train_data_free(&d);
    red_train_data_free(&cd);
    red_student_free(&s);
    red_model_free(&t);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}


static const char *usage_reproduce =
    "usage: red reproduce [--out DIR] [--teacher DIR] [--quick | --long | --full] [--quarter]\n"
    "                     [--inits lrc,orthogonal,pca,magnitude,red] [--seeds N] [--tokens N]\n"
    "                     [--mix F] [--lr LR] [--batch B] [--evals N] [--per-step N] [--choice N]\n"
    "                     [--general FILE:TASK] [--threads N]\n"
    "\n"
    "The paper's experiment (../shared/docs/method.md §E) on a teacher (default\n"
    "data/teacher): students at half width (--quarter: a quarter) with every init\n"
    "and several seeds at an equal token budget, distilled on mostly general corpus\n"
    "with a minority of reasoning problems (--mix, default 0.3 of the tokens);\n"
    "every student and the teacher evaluated with the zero-shot GSM8K harness on\n"
    "held-out problems of 1..6 steps and with the multiple-choice harness; eRank\n"
    "per layer at init and after. Writes DIR (default reproduce-out)/report.md,\n"
    "results.json and SVG plots. Interrupted runs resume: finished students are\n"
    "kept, an unfinished one continues from its last checkpoint.\n"
    "Budgets: default 3 seeds, 655360 tokens per student (about 20 minutes on 2\n"
    "cores); --quick 1 seed, 16384 tokens, small test sets (a smoke run); --long 3\n"
    "seeds at 4x the tokens with 100 problems per step count and 400 multiple-choice\n"
    "items (the firm run; about 100 minutes); --full 5\n"
    "seeds, 4x the tokens, larger test sets and lrc-literal too (hours).\n"
    "Recipe: batch B (default 1) x min(1024, teacher context) tokens, AdamW lr LR\n"
    "(default 3e-3), 1% warm-up then linear decay, clip 1, tau 10, alpha 0.2, KL\n"
    "reduced by sequence (LRC's). --evals N: points on the accuracy curve (default\n"
    "4). Inits: lrc (Gaussian, std 0.02*sqrt(3072/d_t): LRC's column norm),\n"
    "lrc-literal (std 0.02), orthogonal, pca, magnitude, red.\n"
    "--general FILE:TASK: the general-ability column scores lm-eval's zero-shot TASK\n"
    "(arc_easy, arc_challenge, hellaswag, piqa, winogrande, sciq, boolq, mmlu; rows as\n"
    "red eval reads them) by acc instead of the built-in items; an output directory\n"
    "keeps the general-ability data it was first run with.\n";

static void say_line(void *ctx, const char *msg) {
    double *t0 = ctx;
    fprintf(stderr, "[%6.0f s] %s\n", red_time_seconds() - *t0, msg);
}

static int cmd_reproduce(int argc, char **argv) {
    red_repro_opts o;
    red_status st;
    red_pool *pool;
    red_error err;
    int i, threads = 0, quick = 0, full = 0, lng = 0, seeds = -1, per_step = -1, n_choice = -1, batch = -1, evals = -1;
    double t0 = red_time_seconds(), mix = 0.3;
    int64_t tokens = -1;
    float lr = 3e-3f;
    char *inits = NULL;
    memset(&o, 0, sizeof o);
    o.teacher = "data/teacher";
    o.out = "reproduce-out";
    o.width_ratio = 0.5;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_reproduce, stdout);
            return 0;
        }
        if (!strcmp(a, "--quick")) { quick = 1; continue; }
        if (!strcmp(a, "--full")) { full = 1; continue; }
        if (!strcmp(a, "--long")) { lng = 1; continue; }
        if (!strcmp(a, "--quarter")) { o.width_ratio = 0.25; continue; }
        if (i + 1 >= argc) die(2, "reproduce: %s needs a value (see red reproduce --help)", a);
        if (!strcmp(a, "--out")) o.out = argv[++i];
        else if (!strcmp(a, "--teacher")) o.teacher = argv[++i];
        else if (!strcmp(a, "--inits")) inits = argv[++i];
        else if (!strcmp(a, "--seeds")) seeds = (int)parse_whole(a, argv[++i], 1, 64);
        else if (!strcmp(a, "--tokens")) tokens = (int64_t)parse_whole(a, argv[++i], 1, 1e12);
        else if (!strcmp(a, "--mix")) mix = parse_num(a, argv[++i], 0, 0.95);
        else if (!strcmp(a, "--per-step")) per_step = (int)parse_whole(a, argv[++i], 1, 100000);
        else if (!strcmp(a, "--choice")) n_choice = (int)parse_whole(a, argv[++i], 1, 100000);
        else if (!strcmp(a, "--general")) {  /* FILE:TASK, split at the last colon */
            char *colon = strrchr(argv[++i], ':');
            red_lm_task t = (red_lm_task)0;
            if (!colon || red_lm_task_parse(colon + 1, &t) != RED_OK)
                die(2, "reproduce: --general wants FILE:TASK with an lm-eval task (arc_easy, ..., mmlu), got '%s'", argv[i]);
            *colon = 0;
            o.general_file = argv[i];
            o.general_task = (int)t;
        }
        else if (!strcmp(a, "--lr")) lr = (float)parse_num(a, argv[++i], 0, 10);
        else if (!strcmp(a, "--batch")) batch = (int)parse_whole(a, argv[++i], 1, 1024);
        else if (!strcmp(a, "--evals")) evals = (int)parse_whole(a, argv[++i], 1, 64);
        else if (!strcmp(a, "--threads")) threads = parse_threads(argv[++i]);
        else die(2, "reproduce: unknown option '%s' (see red reproduce --help)", a);
    }
    if (quick + full + lng > 1) die(2, "reproduce: --quick, --long and --full exclude each other");
    check_distinct("reproduce", "--out", o.out, "--teacher", o.teacher);
    check_output("reproduce", "--out", o.out, 1);
    if (inits) {
        char *p = inits, *tok;
        while ((tok = strtok(p, ",")) != NULL) {
            if (o.n_inits == 16) die(2, "reproduce: at most 16 inits");
            o.inits[o.n_inits++] = tok;
            p = NULL;
        }
    } else {
        /* lrc is the scale-matched Gaussian (method.md A4); --full adds LRC's literal std 0.02 */
        static const char *const def[] = {"lrc", "orthogonal", "pca", "magnitude", "red", "lrc-literal"};
        for (i = 0; i < (full ? 6 : 5); i++) o.inits[o.n_inits++] = def[i];
    }
    o.preset = quick ? "quick smoke run" : full ? "full run" : lng ? "long run" : "default run";
    o.n_seeds = quick ? 1 : full ? 5 : 3;
    o.tokens = quick ? 16384 : full || lng ? 4 * 655360 : 655360;
    o.per_step = quick ? 6 : full || lng ? 100 : 40;
    o.n_choice = quick ? 40 : full || lng ? 400 : 200;
    o.n_evals = quick ? 1 : full ? 8 : 4;
    o.corpus_lines = quick ? 4000 : 40000;
    o.calib_tokens = quick ? 16384 : 131072;
    o.erank_tokens = quick ? 2048 : 8192;
    o.batch = 1;  /* more steps for the tokens: at 655 k tokens batch 1 beat 2 and 4 (README) */
    o.seq = 1024;
    if (seeds > 0) o.n_seeds = seeds;
    if (tokens > 0) o.tokens = (uint64_t)tokens;
    if (per_step > 0) o.per_step = per_step;
    if (n_choice > 0) o.n_choice = n_choice;
    if (batch > 0) o.batch = batch;
    if (evals > 0) o.n_evals = evals;
    o.mix = mix;
    o.lr = lr;
    o.tau = 10.0f;
    o.alpha = 0.2f;
    o.say = say_line;
    o.say_ctx = &t0;
    {
        red_config c;
        char path[2048];
        snprintf(path, sizeof path, "%s/config.json", o.teacher);
        if (red_config_read(&c, path, &err) != RED_OK)
            die(1, "reproduce: no teacher at %s (make teacher, or --teacher DIR)", o.teacher);
        if (o.seq > c.max_pos) o.seq = c.max_pos;
    }
    pool = make_pool(threads);
    o.stop = &stop_requested;
    catch_stop_signals();
    if ((st = red_reproduce(&o, pool, &err)) != RED_OK) die_err(st, &err);
    red_pool_destroy(pool);
    return 0;
}


static const char *usage_tokenizer =
    "usage: red tokenizer train --data FILE [--data FILE ...] --vocab N --out DIR\n"
    "       red tokenizer encode --tokenizer PATH (--text TEXT [--escape] | --input FILE.jsonl) [--special]\n"
    "       red tokenizer decode --tokenizer PATH --ids \"ID ID ...\"\n"
    "\n"
    "train: learns a BPE tokenizer of N ids (259..2048) from the files' documents\n"
    "(text or JSONL, formatted as red train reads them) and writes\n"
    "DIR/red_tokenizer.json; use it with red train --tokenizer DIR. Chunks no merge\n"
    "crosses: a letter run with its leading space, each digit, a newline, a symbol\n"
    "run with its leading space, a run of spaces.\n"
    "encode: prints the ids of TEXT (or of every line of FILE.jsonl: an object with\n"
    "a \"text\" field, or a JSON string), space separated, one line per input.\n"
    "PATH: a model directory (red_tokenizer.json or Hugging Face tokenizer.json),\n"
    "a tokenizer.json, or a llama2.c tokenizer.bin. Added tokens (<|im_start|>,\n"
    "<s>, ...) in the text are matched; --special also adds BOS/EOS where the\n"
    "tokenizer's config asks for them (tokenizer_config.json; llama2.c: BOS).\n"
    "decode: prints the text of the ids.\n";

static void print_ids(const red_tokenizer *tok, const char *text, size_t len, int special) {
    int n = red_tokenize(tok, text, len, special && red_tokenizer_add_bos(tok), NULL, 0), k, *ids;
    if (n < 0) die(1, "tokenizer: out of memory");
    ids = xmalloc(sizeof(int) * (size_t)(n + 1));
    red_tokenize(tok, text, len, special && red_tokenizer_add_bos(tok), ids, n);
    if (special && red_tokenizer_add_eos(tok)) ids[n++] = red_tokenizer_eos(tok);
    for (k = 0; k < n; k++) printf(k ? " %d" : "%d", ids[k]);
    putchar('\n');
    free(ids);
}

static int cmd_tokenizer(int argc, char **argv) {
    const char *files[64], *out = NULL, *model = NULL, *text = NULL, *input = NULL, *ids_text = NULL;
    int n_files = 0, vocab = 1024, i, escape = 0, special = 0;
    red_tokenizer *tok = NULL;
    red_error err;
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fputs(usage_tokenizer, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--escape")) { escape = 1; continue; }
        if (!strcmp(a, "--special")) { special = 1; continue; }
        if (i + 1 >= argc) die(2, "tokenizer: %s needs a value (see red tokenizer --help)", a);
        if (!strcmp(a, "--data")) {
            if (n_files == 64) die(2, "tokenizer: at most 64 --data files");
            files[n_files++] = argv[++i];
        } else if (!strcmp(a, "--vocab")) vocab = (int)parse_whole(a, argv[++i], 259, RED_BPE_MAX_VOCAB);
        else if (!strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--tokenizer") || !strcmp(a, "--model")) model = argv[++i];
        else if (!strcmp(a, "--text")) text = argv[++i];
        else if (!strcmp(a, "--input")) input = argv[++i];
        else if (!strcmp(a, "--ids")) ids_text = argv[++i];
        else if (!strcmp(a, "--threads")) (void)parse_threads(argv[++i]);  /* accepted by every command */
        else die(2, "tokenizer: unknown option '%s' (see red tokenizer --help)", a);
    }
    if (!strcmp(argv[0], "train")) {
        red_sbuf all;
        double t0 = red_time_seconds();
        if (!n_files || !out) die(2, "tokenizer train: --data and --out are required");
        for (i = 0; i < n_files; i++) check_distinct("tokenizer", "--out", out, "--data", files[i]);
        check_output("tokenizer", "--out", out, 1);
        red_sbuf_init(&all);
        red_sbuf_puts(&all, "");
        for (i = 0; i < n_files; i++)
            if (red_docs_text(files[i], &all, &err) != RED_OK) die(1, "%s", err.msg);
        if (red_tokenizer_train_bpe(&tok, all.p, all.len, vocab, &err) != RED_OK) die(1, "%s", err.msg);
        if (red_make_dir(out, &err) != RED_OK) die(1, "tokenizer: %s", err.msg);
        if (red_tokenizer_save(tok, out, &err) != RED_OK) die(1, "%s", err.msg);
        {
            int n = red_tokenize(tok, all.p, all.len, 0, NULL, 0);
            fprintf(stderr, "tokenizer: %d ids (%d merges) from %zu bytes in %.1f s; %.2f bytes per token -> %s\n",
                    red_tokenizer_vocab(tok), red_tokenizer_n_merges(tok), all.len, red_time_seconds() - t0,
                    (double)all.len / (n ? n : 1), out);
        }
        red_sbuf_free(&all);
        red_tokenizer_free(tok);
        return 0;
    }
    if (!strcmp(argv[0], "encode")) {
        if (!model || !text == !input)
            die(2, "tokenizer encode: --tokenizer and one of --text and --input are required (see red tokenizer --help)");
        if (red_model_tokenizer(&tok, model, model, &err) != RED_OK) die(1, "%s", err.msg);
        if (text) {
            char *buf = xmalloc(strlen(text) + 1);
            print_ids(tok, buf, unescape_text(text, escape, buf), special);
            free(buf);
        } else {
            red_json **items;
            size_t n, k;
            if (red_jsonl_read(input, &items, &n, &err) != RED_OK) die(1, "%s", err.msg);
            for (k = 0; k < n; k++) {
                const red_json *v = items[k]->type == RED_JSON_STRING ? items[k] : red_json_get(items[k], "text");
                if (!v || v->type != RED_JSON_STRING) {
                    fprintf(stderr, "red: %s: item %zu: expected a JSON string or an object with a \"text\" string\n", input, k + 1);
                    exit(1);
                }
                print_ids(tok, v->str, v->len, special);
            }
            red_jsonl_free(items, n);
        }
        red_tokenizer_free(tok);
        return 0;
    }
    if (!strcmp(argv[0], "decode")) {
        int *ids, n = 0;
        const char *p;
        red_sbuf o;
        if (!model || !ids_text) die(2, "tokenizer decode: --tokenizer and --ids are required");
        if (red_model_tokenizer(&tok, model, model, &err) != RED_OK) die(1, "%s", err.msg);
        ids = xmalloc(sizeof(int) * (strlen(ids_text) / 2 + 1));
        for (p = ids_text; *p;) {
            char *end;
            long v;
            while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
            if (!*p) break;
            v = strtol(p, &end, 10);
            if (end == p || v < 0 || v >= red_tokenizer_vocab(tok)) {
                fprintf(stderr, "red: tokenizer decode: --ids: '%.20s' is not an id below %d\n", p, red_tokenizer_vocab(tok));
                exit(2);
            }
            ids[n++] = (int)v;
            p = end;
        }
        red_sbuf_init(&o);
        red_sbuf_puts(&o, "");
        red_detokenize(tok, ids, n, &o);
        fwrite(o.p, 1, o.len, stdout);
        putchar('\n');
        red_sbuf_free(&o);
        free(ids);
        red_tokenizer_free(tok);
        return 0;
    }
    die(2, "tokenizer: unknown command '%s' (train, encode, decode)", argv[0]);
    return 2;
}

static int cmd_version(void) {
    printf("red %s\nsimd: %s\ndefault threads: %d\ncompiler: %s\n", RED_VERSION, red_simd_name(),
           red_default_threads(),
#if defined(__clang__)
           "clang " __clang_version__
#elif defined(__GNUC__)
           "gcc " __VERSION__
#else
           "unknown"
#endif
    );
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_main, cmd ? stdout : stderr);
        return cmd ? 0 : 2;
    }
    if (!strcmp(cmd, "svd")) return cmd_svd(argc - 2, argv + 2);
    if (!strcmp(cmd, "erank")) return cmd_erank(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return red_bench_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "distill")) return cmd_distill(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "reproduce")) return cmd_reproduce(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenizer")) return cmd_tokenizer(argc - 2, argv + 2);
    if (!strcmp(cmd, "tasks")) return cmd_tasks(argc - 2, argv + 2);
    if (!strcmp(cmd, "init")) return cmd_init(argc - 2, argv + 2);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "score-gsm8k")) return cmd_score_gsm8k(argc - 2, argv + 2);
    if (!strcmp(cmd, "forward")) return cmd_forward(argc - 2, argv + 2);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return cmd_version();
    fprintf(stderr, "red: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
