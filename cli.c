/* cli.c - `red` subcommands: one option table per command drives parsing,
 * --help and usage errors; each command's run function calls the library.
 * The only place that prints for people and exits. */
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ exits and checked helpers */

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
    red_dist_abort(code);  /* the other ranks of an mpirun would wait for this one forever */
    exit(code);
}

/* A usage error of a command: "red CMD: message", exit code 2. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
static void die_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "red %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
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
    red_dist_abort(st == RED_E_INTERRUPTED ? 130 : 1);
    exit(st == RED_E_INTERRUPTED ? 130 : 1);
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
    if (t->ndim != 2) die(1, "%s: expected a 2-D matrix, found %d dimensions", path, t->ndim);
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
    if (!p) die(1, "out of memory (%zu bytes) at %s:%d", n, file, line);
    return p;
}
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)

static void write_text_file(const char *path, const red_sbuf *b) {
    red_error err;
    if (b->failed) die(1, "%s: out of memory", path);
    if (red_write_file_atomic(path, b->p ? b->p : "", b->len, &err) != RED_OK) die(1, "%s", err.msg);
}

/* Prints a report buffer to standard output. */
static void put_stdout(const red_sbuf *b) {
    if (b->len && fwrite(b->p, 1, b->len, stdout) != b->len) die(1, "write error on standard output");
}

static void load_model(red_model *m, const char *dir, red_pool *pool) {
    red_error err;
    if (red_model_open(m, dir, pool, &err) != RED_OK) die(1, "%s", err.msg);
}

static void load_tokenizer(red_tokenizer **tok, const char *model, const char *path) {
    red_error err;
    if (red_model_tokenizer(tok, model, path, &err) != RED_OK) die(1, "%s", err.msg);
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

static void check_ids(const int *ids, int n, int vocab, const char *what) {
    int i;
    for (i = 0; i < n; i++)
        if (ids[i] >= vocab) {
            fprintf(stderr, "red: %s: token %d (position %d) is outside the vocabulary 0..%d\n", what, ids[i], i,
                    vocab - 1);
            exit(2);
        }
}

static void load_data_files(red_train_data *d, const red_tokenizer *tok, const char *const *files, int n) {
    red_error err;
    int i;
    memset(d, 0, sizeof *d);
    for (i = 0; i < n; i++)
        if (red_train_data_add_file(d, tok, files[i], &err) != RED_OK) die(1, "%s", err.msg);
}

static int *fixed_rows(red_train_data *d, int n_rows, int T) {
    int *tok = malloc((size_t)n_rows * T * sizeof(int));
    red_error err;
    if (!tok) die(1, "out of memory for %s rows", "eRank");
    if (red_train_data_rows(d, n_rows, T, tok, &err) != RED_OK) die(1, "%s", err.msg);
    return tok;
}

/* ------------------------------------------------------------------ option tables */

/* Every command is a row of `commands` (at the end): its options are a table
 * (name, kind, field, range, help), parsed, checked and documented by the
 * same code, so --help, the errors and the parser cannot disagree. */
typedef enum { O_FLAG, O_STR, O_LIST, O_INT, O_I64, O_U64, O_F32, O_F64, O_NAME } opt_kind;
enum { REQ = 1, NODEF = 2 };  /* opt.flags: required; the help line says the default itself */

typedef struct {
    const char *name;        /* "--width", "-n" */
    opt_kind kind;
    size_t off;              /* offsetof the field in the command's argument struct */
    double lo, hi;           /* numbers: the accepted range */
    const red_name *names;   /* O_NAME: the accepted names (an int field) */
    const char *meta;        /* "D" in "--width D" */
    const char *help;
    int flags;
} opt;

#define FLAG(n, T, f, help) {n, O_FLAG, offsetof(T, f), 0, 0, NULL, NULL, help, 0}
#define STR(n, T, f, meta, help, fl) {n, O_STR, offsetof(T, f), 0, 0, NULL, meta, help, fl}
#define LIST(n, T, f, meta, help, fl) {n, O_LIST, offsetof(T, f), 0, 0, NULL, meta, help, fl}
#define NUM(n, k, T, f, lo, hi, meta, help, fl) {n, k, offsetof(T, f), lo, hi, NULL, meta, help, fl}
#define NAME(n, T, f, tab, meta, help, fl) {n, O_NAME, offsetof(T, f), 0, 0, tab, meta, help, fl}
#define END {NULL, O_FLAG, 0, 0, 0, NULL, NULL, NULL, 0}

/* A repeatable option (--data FILE --data FILE ...). */
#define MAX_LIST 64
typedef struct {
    const char *v[MAX_LIST];
    int n;
} str_list;

/* The fields every command's argument struct starts with. */
#define MAX_OPTS 64
typedef struct {
    const char *pos[2];          /* positional arguments */
    int n_pos;
    int threads;                 /* --threads, accepted by every command; 0 = default */
    unsigned char given[MAX_OPTS]; /* given[i]: option i of the table was on the command line */
} cli_common;

typedef struct {
    const char *name, *summary;  /* summary: its line in red --help */
    const char *pos;             /* the positional arguments in the synopsis, or NULL */
    int min_pos, max_pos;
    const char *about;           /* the prose of red CMD --help */
    const opt *opts;
    size_t size;                 /* of the argument struct */
    void (*defaults)(void *args);
    int (*run)(void *args);
    int (*raw)(int argc, char **argv);  /* a command that parses its own arguments (bench) */
} command;

static const opt threads_opt = NUM("--threads", O_INT, cli_common, threads, 1, 1024, "N",
                                   "worker threads (default: $RED_THREADS, else the online cores)", NODEF);

static int opt_given(const void *args, const opt *table, const char *name) {
    const cli_common *cc = args;
    int k;
    for (k = 0; table[k].name && k < MAX_OPTS; k++)
        if (!strcmp(table[k].name, name)) return cc->given[k];
    return 0;
}

static void put_default(const opt *o, const void *defaults, FILE *f) {
    const char *p = (const char *)defaults + o->off;
    if (o->flags & (NODEF | REQ)) return;
    switch (o->kind) {
    case O_STR: if (*(const char *const *)p) fprintf(f, " (default %s)", *(const char *const *)p); break;
    case O_INT: fprintf(f, " (default %d)", *(const int *)p); break;
    case O_I64: fprintf(f, " (default %lld)", (long long)*(const int64_t *)p); break;
    case O_U64: fprintf(f, " (default %llu)", (unsigned long long)*(const uint64_t *)p); break;
    case O_F32: fprintf(f, " (default %g)", *(const float *)p); break;
    case O_F64: fprintf(f, " (default %g)", *(const double *)p); break;
    case O_NAME: fprintf(f, " (default %s)", red_name_of(o->names, *(const int *)p)); break;
    default: break;
    }
}

static void opt_lhs(const opt *o, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s%s", o->name, o->kind == O_FLAG ? "" : " ", o->kind == O_FLAG ? "" : o->meta);
}

static void print_option(const opt *o, int width, const void *def, FILE *f) {
    char lhs[64];
    opt_lhs(o, lhs, sizeof lhs);
    fprintf(f, "  %-*s  %s", width, lhs, o->help);
    if (o->kind == O_NAME) {
        red_sbuf all;
        red_sbuf_init(&all);
        red_name_list(o->names, &all);
        fprintf(f, " (%s)", all.p ? all.p : "");
        red_sbuf_free(&all);
    }
    if (o->kind == O_LIST) fputs(" (repeatable)", f);
    if (o->flags & REQ) fputs(" (required)", f);
    else if (def) put_default(o, def, f);
    fputc('\n', f);
}

/* usage: red CMD POS --required ... [options], the prose, then one line per option. */
static void print_help(const command *c, FILE *f) {
    void *def = calloc(1, c->size);
    const opt *o;
    int width = 12;
    char lhs[64];
    if (def && c->defaults) c->defaults(def);
    fprintf(f, "usage: red %s", c->name);
    if (c->pos) fprintf(f, " %s", c->pos);
    for (o = c->opts; o->name; o++) {
        opt_lhs(o, lhs, sizeof lhs);
        if ((int)strlen(lhs) > width) width = (int)strlen(lhs);
        if (o->flags & REQ) fprintf(f, " %s%s", lhs, o->kind == O_LIST ? " ..." : "");
    }
    /* an about starting with spaces continues the synopsis (a second form of the command) */
    fprintf(f, " [options]\n%s%s\noptions:\n", c->about[0] == ' ' ? "" : "\n", c->about);
    for (o = c->opts; o->name; o++) print_option(o, width, def, f);
    print_option(&threads_opt, width, NULL, f);
    fprintf(f, "  %-*s  this text\n", width, "--help");
    free(def);
}

/* A number in [lo, hi]; integer kinds must be whole ("2.5" is refused, "1e6" is 1000000). */
static double parse_number(const char *cmd, const opt *o, const char *s) {
    int whole = o->kind == O_INT || o->kind == O_I64 || o->kind == O_U64;
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= o->lo && v <= o->hi) || (whole && v != floor(v)))
        die_usage(cmd, "%s: expected %s in [%g, %g], got '%s'", o->name, whole ? "an integer" : "a number", o->lo, o->hi,
                  s);
    return v;
}

static void set_value(const char *cmd, const opt *o, void *args, const char *v) {
    char *p = (char *)args + o->off;
    int value;
    switch (o->kind) {
    case O_FLAG: *(int *)p = 1; break;
    case O_STR: *(const char **)p = v; break;
    case O_LIST: {
        str_list *l = (str_list *)p;
        if (l->n == MAX_LIST) die_usage(cmd, "at most %d %s options", MAX_LIST, o->name);
        l->v[l->n++] = v;
        break;
    }
    case O_INT: *(int *)p = (int)parse_number(cmd, o, v); break;
    case O_I64: *(int64_t *)p = (int64_t)parse_number(cmd, o, v); break;
    case O_U64: *(uint64_t *)p = (uint64_t)parse_number(cmd, o, v); break;
    case O_F32: *(float *)p = (float)parse_number(cmd, o, v); break;
    case O_F64: *(double *)p = parse_number(cmd, o, v); break;
    case O_NAME:
        if (red_name_find(o->names, v, &value) != RED_OK) {
            red_sbuf all;
            red_sbuf_init(&all);
            red_name_list(o->names, &all);
            die_usage(cmd, "%s expects %s, got '%s'", o->name, all.p ? all.p : "", v);
        }
        *(int *)p = value;
        break;
    }
}

static const opt *find_opt(const command *c, const char *s) {
    const opt *o;
    for (o = c->opts; o->name; o++)
        if (!strcmp(o->name, s)) return o;
    return !strcmp(s, threads_opt.name) ? &threads_opt : NULL;
}

/* Fills args (c->size bytes, cli_common first) from argv or exits: 0 after
 * --help, 2 on a usage error. */
static void parse_command(const command *c, int argc, char **argv, void *args) {
    cli_common *cc = args;
    int i, k;
    memset(args, 0, c->size);
    if (c->defaults) c->defaults(args);
    for (i = 0; i < argc; i++) {
        const char *s = argv[i];
        const opt *o;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            print_help(c, stdout);
            exit(0);
        }
        if (s[0] != '-' || !s[1]) {
            if (cc->n_pos >= c->max_pos) die_usage(c->name, "unexpected argument '%s' (see red %s --help)", s, c->name);
            cc->pos[cc->n_pos++] = s;
            continue;
        }
        if (!(o = find_opt(c, s))) die_usage(c->name, "unknown option '%s' (see red %s --help)", s, c->name);
        if (o != &threads_opt && o - c->opts < MAX_OPTS) cc->given[o - c->opts] = 1;
        if (o->kind == O_FLAG) set_value(c->name, o, args, NULL);
        else if (i + 1 >= argc) die_usage(c->name, "%s needs a value (%s; see red %s --help)", s, o->meta, c->name);
        else set_value(c->name, o, args, argv[++i]);
    }
    if (cc->n_pos < c->min_pos) {  /* no subject at all: the help, as a usage error */
        print_help(c, stderr);
        exit(2);
    }
    for (k = 0; c->opts[k].name && k < MAX_OPTS; k++)
        if ((c->opts[k].flags & REQ) && !cc->given[k])
            die_usage(c->name, "%s %s is required (see red %s --help)", c->opts[k].name, c->opts[k].meta, c->name);
}

/* A number option given as text (--init-std S|matched): the same checks as the table's. */
static double parse_num(const char *cmd, const char *name, const char *s, double lo, double hi) {
    opt o = NUM(NULL, O_F64, cli_common, threads, 0, 0, NULL, NULL, 0);
    o.name = name;
    o.lo = lo;
    o.hi = hi;
    return parse_number(cmd, &o, s);
}

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

static void say_plain(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

/* ------------------------------------------------------------------ svd */

typedef struct {
    cli_common c;
    const char *u, *s, *v;
} svd_args;

static const opt svd_opts[] = {
    STR("--u", svd_args, u, "U.npy", "write U (m x k) here", 0),
    STR("--s", svd_args, s, "S.npy", "write S (k) here (default: standard output, one per line)", 0),
    STR("--v", svd_args, v, "V.npy", "write V (n x k) here", 0),
    END};

static const char about_svd[] =
    "Thin SVD A = U diag(S) Vᵀ of a 2-D float32/float64 .npy (m x n), k = min(m,n):\n"
    "U is m x k, S has k values (descending, >= 0), V is n x k; outputs are float32\n"
    ".npy written atomically. Without --s the singular values go to stdout, one per\n"
    "line. A summary (shape, sweeps, seconds) goes to stderr.\n";

static int run_svd(void *args) {
    const svd_args *a = args;
    const char *in = a->c.pos[0];
    int i, m, n, k;
    red_tensor t;
    float *U = NULL, *S, *V = NULL;
    red_svd_info info;
    red_status st;
    red_pool *pool;
    load_matrix(in, &t);
    m = (int)t.shape[0];
    n = (int)t.shape[1];
    k = m < n ? m : n;
    S = xmalloc((size_t)k * sizeof *S);
    if (a->u) U = xmalloc((size_t)m * k * sizeof *U);
    if (a->v) V = xmalloc((size_t)n * k * sizeof *V);
    pool = make_pool(a->c.threads);
    st = red_svd(pool, m, n, t.data, n, U, S, V, &info);
    red_pool_destroy(pool);
    if (st == RED_E_ARG) die(1, "%s: matrix contains NaN or Inf", in);
    if (st != RED_OK) die(1, "svd of %s failed: %s after %d sweeps", in, red_status_name(st), info.sweeps);
    fprintf(stderr, "svd: %s %dx%d k=%d sweeps=%d rotations=%d long_vectors=%s\n", in, m, n, k, info.sweeps,
            info.rotations, info.solved ? "solve" : "rotations");
    if (a->u) save_matrix(a->u, U, 2, m, k);
    if (a->v) save_matrix(a->v, V, 2, n, k);
    if (a->s) save_matrix(a->s, S, 1, k, 1);
    else
        for (i = 0; i < k; i++) printf("%.9g\n", S[i]);
    free(U);
    free(S);
    free(V);
    red_tensor_free(&t);
    return 0;
}

/* ------------------------------------------------------------------ erank */

typedef struct {
    cli_common c;
    const char *ids, *json, *model, *tokenizer;
    int center, seq;
    str_list data;
    int64_t tokens;
} erank_args;

static const opt erank_opts[] = {
    STR("--ids", erank_args, ids, "IDS.npy", "token ids of the rows of X.npy", 0),
    FLAG("--center", erank_args, center, "subtract the column means first for eRank (default: uncentred)"),
    STR("--json", erank_args, json, "OUT", "write the metrics as JSON", 0),
    STR("--model", erank_args, model, "DIR", "measure this model per layer instead of X.npy", 0),
    LIST("--data", erank_args, data, "FILE", "with --model: the text or JSONL the tokens come from", 0),
    NUM("--tokens", O_I64, erank_args, tokens, 1, 1e9, "N", "with --model: tokens measured", 0),
    NUM("--seq", O_INT, erank_args, seq, 2, 1 << 16, "T", "with --model: row length (at most the model's context)", 0),
    STR("--tokenizer", erank_args, tokenizer, "PATH", "with --model: the tokenizer when the model has none", 0),
    END};

static void erank_defaults(void *args) {
    erank_args *a = args;
    a->tokens = 8192;
    a->seq = 256;
}

static const char about_erank[] =
    "       red erank --model DIR --data FILE [--data FILE ...] [options]\n"
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

static int erank_matrix(const erank_args *a) {
    const char *in = a->c.pos[0];
    red_tensor x;
    red_pool *pool;
    red_layer_metrics met;
    int64_t *ids = NULL, n_ids = 0;
    red_error err;
    red_status st;
    load_matrix(in, &x);
    if (a->ids) {
        if (red_npy_load_ids(a->ids, &ids, &n_ids, &err) != RED_OK) die(1, "%s", err.msg);
        if (n_ids != x.shape[0]) die(1, "erank: %s", "--ids holds a different number of ids than X has rows");
    }
    pool = make_pool(a->c.threads);
    st = red_erank(pool, (int)x.shape[0], (int)x.shape[1], x.data, (int)x.shape[1], a->center, &met.erank);
    if (st == RED_E_ARG) die(1, "%s: matrix contains NaN or Inf", in);
    if (st != RED_OK) die(1, "erank: SVD failed: %s", red_status_name(st));
    if (red_token_indist(pool, (int)x.shape[0], (int)x.shape[1], x.data, (int)x.shape[1], ids, &met.ind) != RED_OK)
        die(1, "%s: cannot measure indistinguishability (NaN, Inf, no columns or out of memory)", in);
    red_pool_destroy(pool);
    red_tensor_free(&x);
    free(ids);
    printf("erank        %.6f\ncos_mean     %.6f\nindist@0.95  %.6f\nindist@0.99  %.6f\n", met.erank,
           met.ind.cos_mean, met.ind.indist[0], met.ind.indist[1]);
    if (a->json) {
        red_sbuf b;
        red_sbuf_init(&b);
        red_sbuf_puts(&b, "{");
        put_hidden_metrics(&b, &met, 1, 0);
        red_sbuf_printf(&b, ", \"center\": %s, \"pairs\": %lld, \"distinct_pairs\": %lld}\n",
                        a->center ? "true" : "false", (long long)met.ind.pairs, (long long)met.ind.distinct_pairs);
        write_text_file(a->json, &b);
        red_sbuf_free(&b);
    }
    return 0;
}

static void erank_model_json(const erank_args *a, const red_model *m, int n_tok, const red_layer_metrics *met) {
    red_sbuf b;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "{\"model\": ");
    red_json_put_string(&b, a->model, strlen(a->model));
    red_sbuf_printf(&b, ", \"width\": %d, \"tokens\": %d, \"center\": %s, ", m->cfg.dim, n_tok,
                    a->center ? "true" : "false");
    put_hidden_metrics(&b, met, m->cfg.n_layers + 1, 1);
    red_sbuf_puts(&b, "}\n");
    write_text_file(a->json, &b);
    red_sbuf_free(&b);
}

static int erank_model(const erank_args *a) {
    int T = a->seq, i, n_rows, L;
    red_model m;
    red_tokenizer *tok = NULL;
    red_train_data d;
    red_pool *pool;
    red_error err;
    red_layer_metrics *met;
    int *rows;
    pool = make_pool(a->c.threads);
    load_model(&m, a->model, pool);
    load_tokenizer(&tok, a->model, a->tokenizer);
    if (T > m.cfg.max_pos) T = m.cfg.max_pos;
    n_rows = (int)((a->tokens + T - 1) / T);
    load_data_files(&d, tok, a->data.v, a->data.n);
    rows = fixed_rows(&d, n_rows, T);
    if (red_model_run_alloc(&m, n_rows < 8 ? n_rows : 8, T, RED_RUN_FORWARD, &err) != RED_OK) die(1, "%s", err.msg);
    L = m.cfg.n_layers;
    met = xmalloc((size_t)(L + 1) * sizeof *met);
    if (red_hidden_metrics(&m, rows, n_rows, T, a->center, 0, met, &err) != RED_OK) die(1, "%s", err.msg);
    printf("# eRank and token indistinguishability of %s on %d x %d tokens (eRank %s), width %d\n", a->model, n_rows, T,
           a->center ? "centred" : "uncentred", m.cfg.dim);
    printf("layer\terank\tcos_mean\tindist@0.95\tindist@0.99\n");
    for (i = 0; i <= L; i++) {
        if (i < L) printf("block %d", i);
        else printf("final_norm");
        printf("\t%.4f\t%.4f\t%.6f\t%.6f\n", met[i].erank, met[i].ind.cos_mean, met[i].ind.indist[0], met[i].ind.indist[1]);
    }
    if (a->json) erank_model_json(a, &m, n_rows * T, met);
    free(met);
    free(rows);
    red_train_data_free(&d);
    red_model_free(&m);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}

static int run_erank(void *args) {
    const erank_args *a = args;
    if (a->model) {
        if (a->c.n_pos || a->ids) die_usage("erank", "X.npy and --ids do not go with --model (see red erank --help)");
        if (!a->data.n) die_usage("erank", "--model and --data are required (see red erank --help)");
        return erank_model(a);
    }
    if (a->data.n || opt_given(a, erank_opts, "--tokens") || opt_given(a, erank_opts, "--seq") || a->tokenizer)
        die_usage("erank", "--data, --tokens, --seq and --tokenizer go with --model (see red erank --help)");
    if (!a->c.n_pos) die_usage("erank", "X.npy or --model is required (see red erank --help)");
    return erank_matrix(a);
}

/* ------------------------------------------------------------------ info, forward, generate */

typedef struct {
    cli_common c;
    const char *model, *tokenizer, *tokens, *out, *prompt;
    int escape, bos, n, top_k, stop, no_stop;
    float temp, top_p;
    uint64_t seed;
} model_args;

static const opt info_opts[] = {
    STR("--model", model_args, model, "PATH", "the model", REQ),
    STR("--tokenizer", model_args, tokenizer, "PATH", "the tokenizer when the model has none (not read by info)", 0),
    END};

static const char about_info[] =
    "Prints the model's configuration (Hugging Face config.json keys), its\n"
    "parameter count and, for a directory, the dtypes of model.safetensors.\n"
    "PATH (for every --model and --teacher): a Hugging Face directory, a .gguf or\n"
    "a llama2.c .bin; --tokenizer PATH gives the tokenizer when the model has none.\n";

static int run_info(void *args) {
    const model_args *a = args;
    red_model m;
    red_safetensors st;
    red_error err;
    char path[2048];
    const red_config *c;
    int i;
    load_model(&m, a->model, NULL);
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
    snprintf(path, sizeof path, "%s/model.safetensors", a->model);
    if (access(path, R_OK) == 0) {
        int counts[4] = {0};
        if (red_st_open(&st, path, &err) != RED_OK) die(1, "%s", err.msg);
        for (i = 0; i < st.n; i++) counts[st.e[i].dtype]++;
        printf("file dtypes: F32 %d, F16 %d, BF16 %d\n", counts[RED_DT_F32], counts[RED_DT_F16], counts[RED_DT_BF16]);
        red_st_close(&st);
    }
    red_model_free(&m);
    return 0;
}

static const opt forward_opts[] = {
    STR("--model", model_args, model, "PATH", "the model", REQ),
    STR("--tokens", model_args, tokens, "\"ID ID ...\"", "the token sequence (spaces or commas between ids)", REQ),
    STR("--out", model_args, out, "LOGITS.npy", "the logits [T, V], float32", REQ),
    END};

static const char about_forward[] =
    "Runs the model on one token sequence (ids separated by spaces or commas,\n"
    "position 0 first) and writes the logits as float32 .npy of shape [T, V],\n"
    "atomically. Prints the argmax of the last position to stdout.\n";

static int run_forward(void *args) {
    const model_args *a = args;
    red_model m;
    red_kv_state kv;
    red_error err;
    red_pool *pool;
    red_status st;
    int *ids, n, *seq, *pos, i, best = 0;
    float *last;
    check_output("forward", "--out", a->out, 0);
    n = parse_ids(a->tokens, &ids);
    if (n < 1) die_usage("forward", "--tokens is empty");
    pool = make_pool(a->c.threads);
    load_model(&m, a->model, pool);
    check_ids(ids, n, m.cfg.vocab, "--tokens");
    if (red_kv_alloc(&kv, &m, 1, n, n, &err) != RED_OK) die(1, "%s", err.msg);
    seq = xmalloc(sizeof(int) * (size_t)n);
    pos = xmalloc(sizeof(int) * (size_t)n);
    for (i = 0; i < n; i++) { seq[i] = 0; pos[i] = i; }
    if ((st = red_kv_forward(&m, &kv, n, ids, seq, pos)) != RED_OK) die(1, "forward: %s", red_kv_failure(st));
    save_matrix(a->out, kv.logits, 2, n, m.cfg.vocab);
    last = kv.logits + (size_t)(n - 1) * m.cfg.vocab;
    for (i = 1; i < m.cfg.vocab; i++)
        if (last[i] > last[best]) best = i;
    printf("%d\n", best);
    fprintf(stderr, "forward: %d tokens -> %s [%d, %d]\n", n, a->out, n, m.cfg.vocab);
    red_kv_free(&kv);
    red_model_free(&m);
    red_pool_destroy(pool);
    free(ids); free(seq); free(pos);
    return 0;
}

static const opt generate_opts[] = {
    STR("--model", model_args, model, "PATH", "the model", REQ),
    STR("--tokenizer", model_args, tokenizer, "PATH", "the tokenizer when the model has none", 0),
    STR("--tokens", model_args, tokens, "\"ID ...[; ID ...]\"", "token prompts, ';' between prompts", 0),
    STR("--prompt", model_args, prompt, "TEXT", "a text prompt (instead of --tokens)", 0),
    FLAG("--escape", model_args, escape, "--prompt: \\n, \\t and \\\\ are newline, tab and backslash"),
    FLAG("--bos", model_args, bos, "--prompt: start from the BOS token"),
    NUM("-n", O_INT, model_args, n, 0, 1 << 24, "N", "new tokens at most", 0),
    NUM("--temp", O_F32, model_args, temp, 0, 1e6, "T", "temperature (0: greedy)", 0),
    NUM("--top-k", O_INT, model_args, top_k, 0, 1 << 30, "K", "sample from the K most likely (0: off)", 0),
    NUM("--top-p", O_F32, model_args, top_p, 1e-9, 1, "P", "nucleus sampling (1: off)", 0),
    NUM("--seed", O_U64, model_args, seed, 0, 9007199254740992.0, "S", "sampling seed", 0),
    NUM("--stop", O_INT, model_args, stop, 0, 1 << 30, "ID", "stop after this token (default: eos_token_id)", NODEF),
    FLAG("--no-stop", model_args, no_stop, "never stop before N tokens"),
    END};

static void generate_defaults(void *args) {
    model_args *a = args;
    a->top_p = 1.0f;
    a->stop = -2;
}

static const char about_generate[] =
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

/* The prompts of a generate run: token ids, one row per prompt. */
typedef struct {
    int n, **ids, *len;
    char *buf;
} prompt_set;

static void prompts_from_text(const model_args *a, const red_tokenizer *tok, int vocab, prompt_set *p) {
    size_t k;
    int cap, bos = a->bos || red_tokenizer_add_bos(tok);
    p->buf = xmalloc(strlen(a->prompt) + 1);
    k = unescape_text(a->prompt, a->escape, p->buf);
    p->ids = xmalloc(sizeof(int *));
    p->len = xmalloc(sizeof(int));
    cap = red_tokenize(tok, p->buf, k, bos, NULL, 0);
    if (cap < 0) die(1, "generate: out of memory while tokenizing --prompt");
    p->ids[0] = xmalloc(sizeof(int) * (size_t)(cap ? cap : 1));
    p->len[0] = red_tokenize(tok, p->buf, k, bos, p->ids[0], cap);
    if (p->len[0] < 1) die(2, "generate: --prompt is empty (add --bos to start from BOS)");
    check_ids(p->ids[0], p->len[0], vocab, "--prompt");
    p->n = 1;
}

static void prompts_from_ids(const char *tokens, int vocab, prompt_set *p) {
    char *part, *save = NULL;
    p->n = 0;
    p->buf = xmalloc(strlen(tokens) + 1);
    strcpy(p->buf, tokens);
    p->ids = xmalloc(sizeof(int *) * (strlen(tokens) + 1));
    p->len = xmalloc(sizeof(int) * (strlen(tokens) + 1));
    for (part = strtok_r(p->buf, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
        p->len[p->n] = parse_ids(part, &p->ids[p->n]);
        if (p->len[p->n] < 1) die(2, "generate: prompt %s is empty", "");
        check_ids(p->ids[p->n], p->len[p->n], vocab, "--tokens");
        p->n++;
    }
    if (!p->n) die(2, "generate: --tokens is empty");
}

/* The text the continuation adds to the prompt's (decoders may drop a first space). */
static void print_continuation(const red_tokenizer *tok, const int *prompt, int n_prompt, const int *out, int n_out) {
    red_sbuf t, pt;
    int *all = xmalloc(sizeof(int) * (size_t)(n_prompt + n_out + 1));
    memcpy(all, prompt, sizeof(int) * (size_t)n_prompt);
    memcpy(all + n_prompt, out, sizeof(int) * (size_t)n_out);
    red_sbuf_init(&t);
    red_sbuf_init(&pt);
    red_detokenize(tok, all, n_prompt + n_out, &t);
    red_detokenize(tok, prompt, n_prompt, &pt);
    if (t.len >= pt.len && (!pt.len || !memcmp(t.p, pt.p, pt.len))) {
        if (t.len > pt.len) fwrite(t.p + pt.len, 1, t.len - pt.len, stdout);
    } else {
        red_sbuf_free(&t);
        red_sbuf_init(&t);
        red_detokenize(tok, out, n_out, &t);
        if (t.len) fwrite(t.p, 1, t.len, stdout);
    }
    red_sbuf_free(&t);
    red_sbuf_free(&pt);
    free(all);
}

static int run_generate(void *args) {
    const model_args *a = args;
    red_model m;
    red_error err;
    red_pool *pool;
    red_sampler sp;
    prompt_set p;
    int i, j, **outs, *olen, stop;
    red_tokenizer *tok = NULL;
    if (!a->tokens == !a->prompt) die(2, "generate: give exactly one of --tokens and --prompt (see red generate --help)");
    pool = make_pool(a->c.threads);
    load_model(&m, a->model, pool);
    if (a->prompt) {  /* text: tokenize with the model's own tokenizer, print text back */
        load_tokenizer(&tok, a->model, a->tokenizer);
        prompts_from_text(a, tok, m.cfg.vocab, &p);
    } else {
        prompts_from_ids(a->tokens, m.cfg.vocab, &p);
    }
    outs = xmalloc(sizeof(int *) * (size_t)p.n);
    olen = xmalloc(sizeof(int) * (size_t)p.n);
    for (i = 0; i < p.n; i++) outs[i] = xmalloc(sizeof(int) * (size_t)(a->n + 1));
    sp.temperature = a->temp;
    sp.top_k = a->top_k;
    sp.top_p = a->top_p;
    stop = a->no_stop ? -1 : a->stop >= 0 ? a->stop : m.cfg.eos_id;
    if (red_generate(&m, p.n, (const int *const *)p.ids, p.len, a->n, &sp, a->seed, stop, outs, olen, &err) != RED_OK)
        die(1, "%s", err.msg);
    for (i = 0; i < p.n; i++) {
        if (tok) print_continuation(tok, p.ids[i], p.len[i], outs[i], olen[i]);
        else
            for (j = 0; j < olen[i]; j++) printf(j ? " %d" : "%d", outs[i][j]);
        printf("\n");
        free(outs[i]);
        free(p.ids[i]);
    }
    free(outs); free(olen); free(p.ids); free(p.len); free(p.buf);
    red_tokenizer_free(tok);
    red_model_free(&m);
    red_pool_destroy(pool);
    return 0;
}

/* ------------------------------------------------------------------ eval, score-gsm8k */

typedef struct {
    cli_common c;
    const char *task, *tasks, *model, *tokenizer, *data_dir, *dump, *fewshot, *json, *samples;
    str_list data;
    int shots, limit, batch, max_gen, bos, calculator;
} eval_args;

static const opt eval_opts[] = {
    STR("--task", eval_args, task, "TASK", "gsm8k, gsm8k_cot, gsm8k_cot_zeroshot, choice or an lm-eval task", 0),
    STR("--tasks", eval_args, tasks, "T1,T2,...", "several lm-eval tasks, one summary", 0),
    STR("--model", eval_args, model, "DIR", "the model", 0),
    STR("--tokenizer", eval_args, tokenizer, "PATH", "the tokenizer when the model has none", 0),
    LIST("--data", eval_args, data, "FILE", "the test docs (JSONL); with --tasks TASK=ROWS.jsonl", 0),
    STR("--data-dir", eval_args, data_dir, "DIR", "with --tasks: DIR/TASK.jsonl", 0),
    STR("--fewshot-from", eval_args, fewshot, "TRAIN.jsonl", "gsm8k: the exemplars' docs", 0),
    NUM("--shots", O_INT, eval_args, shots, 0, 64, "K", "exemplars (default: 5 with --fewshot-from, 8 for gsm8k_cot, else 0)", NODEF),
    NUM("--limit", O_INT, eval_args, limit, 1, 1e9, "N", "the first N docs only (default: all)", NODEF),
    NUM("--batch", O_INT, eval_args, batch, 1, 1024, "B", "sequences per forward pass", 0),
    NUM("--max-gen", O_INT, eval_args, max_gen, 1, 1 << 20, "N", "gsm8k: new tokens at most", 0),
    STR("--json", eval_args, json, "OUT.json", "write the summary", 0),
    STR("--samples", eval_args, samples, "OUT.jsonl", "write one line per doc", 0),
    STR("--dump-requests", eval_args, dump, "OUT.jsonl", "lm-eval tasks: write the requests", 0),
    FLAG("--bos", eval_args, bos, "start every request with BOS"),
    FLAG("--calculator", eval_args, calculator, "gsm8k: GSM8K's original calculator (not lm-eval)"),
    END};

static void eval_defaults(void *args) {
    eval_args *a = args;
    a->shots = -1;
    a->batch = 8;
    a->max_gen = 256;
}

static const char about_eval[] =
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

/* Writes a report's buffers: the summary to standard output, the files atomically. */
static void emit_report(red_status st, const red_error *err, red_sbuf *summary, red_sbuf *json, const char *json_out,
                        red_sbuf *samples, const char *samples_out) {
    if (st != RED_OK) die(1, "%s", err->msg);
    put_stdout(summary);
    if (json_out) write_text_file(json_out, json);
    if (samples_out) write_text_file(samples_out, samples);
    red_sbuf_free(summary);
    red_sbuf_free(json);
    red_sbuf_free(samples);
}

/* red eval --task choice: lm-eval multiple_choice scoring of a JSONL file. */
static int eval_choice(const eval_args *a, const char *data) {
    red_mc_doc *docs;
    int n, n_all, i, n_req = 0, *preds;
    red_error err;
    red_model m;
    red_tokenizer *tok = NULL;
    red_pool *pool;
    double *ll;
    red_sbuf summary, js, samples;
    red_status st;
    progress_state ps;
    if (red_mc_load(data, &docs, &n, &err) != RED_OK) die(1, "%s", err.msg);
    n_all = n;
    if (a->limit && a->limit < n) n = a->limit;
    pool = make_pool(a->c.threads);
    load_model(&m, a->model, pool);
    load_tokenizer(&tok, a->model, a->tokenizer);
    for (i = 0; i < n; i++) n_req += docs[i].n_options;
    ll = xmalloc(sizeof *ll * (size_t)(n_req ? n_req : 1));
    preds = xmalloc(sizeof *preds * 2 * (size_t)(n ? n : 1));
    ps.t0 = red_time_seconds();
    ps.what = "choice";
    if (red_mc_eval(&m, tok, docs, n, a->bos, a->batch, ll, preds, preds + n, progress_line, &ps, &err) != RED_OK)
        die(1, "%s", err.msg);
    fprintf(stderr, "eval: %d docs (%d requests) in %.1f s\n", n, n_req, red_time_seconds() - ps.t0);
    red_sbuf_init(&summary);
    red_sbuf_init(&js);
    red_sbuf_init(&samples);
    st = red_mc_report(a->model, data, docs, n, ll, preds, preds + n, a->bos, &summary, a->json ? &js : NULL,
                       a->samples ? &samples : NULL, &err);
    emit_report(st, &err, &summary, &js, a->json, &samples, a->samples);
    free(ll); free(preds);
    red_mc_free(docs, n_all);
    red_model_free(&m);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}

/* The rows of each lm-eval task of --task/--tasks: from --data (TASK=FILE
 * with --tasks) or DIR/TASK.jsonl; returns the number of tasks. */
static int lm_load_sets(const eval_args *a, red_lm_set *sets, const char **paths,
                        char (*dir_paths)[4096]) {
    char names[256], *tok_s;
    int nt = 0, j;
    red_error err;
    if (snprintf(names, sizeof names, "%s", a->tasks ? a->tasks : a->task) >= (int)sizeof names)
        die(2, "eval: task list too long");
    for (tok_s = strtok(names, ","); tok_s; tok_s = strtok(NULL, ",")) {
        red_lm_task t;
        const char *path = NULL;
        if (red_lm_task_parse(tok_s, &t) != RED_OK || nt == RED_LM_N_TASKS)
            die(2, "eval: unknown or repeated task '%s' (arc_easy, arc_challenge, hellaswag, piqa, winogrande, sciq, boolq, mmlu)", tok_s);
        for (j = 0; j < nt; j++)
            if (sets[j].task == t) die(2, "eval: task '%s' given twice", tok_s);
        for (j = 0; j < a->data.n; j++) {
            size_t k = strlen(tok_s);
            if (!a->tasks) path = a->data.v[j];
            else if (!strncmp(a->data.v[j], tok_s, k) && a->data.v[j][k] == '=') path = a->data.v[j] + k + 1;
        }
        if (!path && a->data_dir) {
            if (snprintf(dir_paths[nt], 4096, "%s/%s.jsonl", a->data_dir, tok_s) >= 4096)
                die(2, "eval: --data-dir path too long");
            path = dir_paths[nt];
        }
        if (!path) die(2, "eval: no data for task '%s' (--data TASK=FILE or --data-dir DIR)", tok_s);
        paths[nt] = path;
        if (red_lm_load(t, paths[nt], a->limit, &sets[nt], &err) != RED_OK) die(1, "%s", err.msg);
        nt++;
    }
    for (j = 0; a->tasks && j < a->data.n; j++) {  /* every --data TASK=FILE names a task of the list */
        red_lm_task t;
        char name[32];
        const char *eq = strchr(a->data.v[j], '=');
        int k, used = 0;
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a->data.v[j]) : 0, a->data.v[j]);
        for (k = 0; k < nt && red_lm_task_parse(name, &t) == RED_OK; k++) used |= sets[k].task == t;
        if (!used) die(2, "eval: --data '%s' is not TASK=FILE for a task of --tasks", a->data.v[j]);
    }
    return nt;
}

/* red eval --task/--tasks over lm-eval's general-ability tasks (eval/lmeval.c). */
static int eval_lm(const eval_args *a) {
    static char dir_paths[RED_LM_N_TASKS][4096];
    red_lm_set sets[RED_LM_N_TASKS];
    const char *paths[RED_LM_N_TASKS];
    int nt, i;
    red_error err;
    red_model m;
    red_tokenizer *tok = NULL;
    red_pool *pool;
    red_sbuf js, b, summary;
    nt = lm_load_sets(a, sets, paths, dir_paths);
    if ((a->dump || a->samples) && nt != 1) die(2, "eval: --dump-requests and --samples take a single --task");
    if (a->dump) {
        red_sbuf_init(&b);
        red_lm_requests_jsonl(&sets[0], &b);
        write_text_file(a->dump, &b);
        red_sbuf_free(&b);
        if (!a->model) {
            red_lm_set_free(&sets[0]);
            return 0;
        }
    }
    if (!a->model) die(2, "eval: --model is required to score (or give --dump-requests alone)");
    pool = make_pool(a->c.threads);
    load_model(&m, a->model, pool);
    load_tokenizer(&tok, a->model, a->tokenizer);
    red_sbuf_init(&js);
    red_lm_report_begin(a->model, a->bos, &js);
    for (i = 0; i < nt; i++) {
        const char *name = red_lm_task_name(sets[i].task);
        red_lm_scores sc;
        progress_state ps;
        ps.t0 = red_time_seconds();
        ps.what = name;
        if (red_lm_eval(&m, tok, &sets[i], a->bos, a->batch, progress_line, &ps, &sc, &err) != RED_OK)
            die(1, "%s", err.msg);
        fprintf(stderr, "eval: %s: %d docs (%d requests) in %.1f s\n", name, sc.summary.n, sc.n_req,
                red_time_seconds() - ps.t0);
        red_sbuf_init(&summary);
        if (red_lm_report_task(&sets[i], &sc.summary, paths[i], a->bos, &summary, &js, &err) != RED_OK)
            die(1, "%s", err.msg);
        put_stdout(&summary);
        red_sbuf_free(&summary);
        if (a->samples) {
            red_sbuf_init(&b);
            red_lm_samples_jsonl(&sets[i], &sc, &b);
            write_text_file(a->samples, &b);
            red_sbuf_free(&b);
        }
        red_lm_scores_free(&sc);
        red_lm_set_free(&sets[i]);
    }
    if (red_lm_report_end(&js, &err) != RED_OK) die(1, "%s", err.msg);
    if (a->json) write_text_file(a->json, &js);
    red_sbuf_free(&js);
    red_model_free(&m);
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
    return 0;
}

/* red eval --task gsm8k|gsm8k_cot|gsm8k_cot_zeroshot: generate, then score. */
static int eval_gsm8k(const eval_args *a, red_gsm8k_task task, const char *data) {
    int shots = a->shots, i, n_test, n_all, n_train = 0;
    red_gsm8k_doc *test, *train = NULL;
    red_error err;
    red_model m;
    red_tokenizer *tok = NULL;
    red_pool *pool;
    red_sbuf *prompts, *outs, summary, js, samples;
    red_gen_opts go;
    red_gsm8k_report_opts ro;
    progress_state ps;
    if (shots < 0) shots = task == RED_GSM8K && a->fewshot ? 5 : task == RED_GSM8K_COT ? 8 : 0;
    if (task == RED_GSM8K && shots > 0 && !a->fewshot) die(2, "eval: gsm8k with --shots > 0 needs --fewshot-from TRAIN.jsonl");
    if (task == RED_GSM8K_COT && shots != 8) die(2, "eval: gsm8k_cot always uses its 8 fixed exemplars");
    if (task == RED_GSM8K_COT_ZEROSHOT && shots != 0) die(2, "eval: gsm8k_cot_zeroshot is zero-shot");
    if (red_gsm8k_load(data, &test, &n_test, &err) != RED_OK) die(1, "%s", err.msg);
    if (task == RED_GSM8K && shots > 0) {
        if (red_gsm8k_load(a->fewshot, &train, &n_train, &err) != RED_OK) die(1, "%s", err.msg);
        if (n_train < shots) die(1, "eval: the few-shot file has fewer docs than --shots");
    }
    n_all = n_test;
    if (a->limit && a->limit < n_test) n_test = a->limit;
    pool = make_pool(a->c.threads);
    load_model(&m, a->model, pool);
    load_tokenizer(&tok, a->model, a->tokenizer);
    prompts = xmalloc(sizeof *prompts * (size_t)(n_test ? n_test : 1));
    outs = xmalloc(sizeof *outs * (size_t)(n_test ? n_test : 1));
    memset(&go, 0, sizeof go);
    go.max_gen = a->max_gen;
    go.batch = a->batch;
    go.add_bos = a->bos;
    go.calculator = a->calculator;
    ps.t0 = red_time_seconds();
    ps.what = a->task;
    go.progress = progress_line;
    go.progress_ctx = &ps;
    if (red_gsm8k_run(&m, tok, task, train, n_train, shots, test, n_test, &go, prompts, outs, &err) != RED_OK)
        die(1, "%s", err.msg);
    fprintf(stderr, "eval: %d docs in %.1f s\n", n_test, red_time_seconds() - ps.t0);
    ro.task_name = a->task;
    ro.model = a->model;
    ro.shots = shots;
    ro.max_gen = a->max_gen;
    ro.bos = a->bos;
    ro.calculator = a->calculator;
    red_sbuf_init(&summary);
    red_sbuf_init(&js);
    red_sbuf_init(&samples);
    emit_report(red_gsm8k_report(&ro, task, test, outs, prompts, n_test, &summary, a->json ? &js : NULL,
                                 a->samples ? &samples : NULL, &err),
                &err, &summary, &js, a->json, &samples, a->samples);
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

static int run_eval(void *args) {
    const eval_args *a = args;
    const char *data = a->data.n ? a->data.v[a->data.n - 1] : NULL;
    red_lm_task lm_task;
    red_gsm8k_task task = RED_GSM8K;
    if (a->data.n > RED_LM_N_TASKS) die(2, "eval: too many --data");
    if (a->tasks || (a->task && red_lm_task_parse(a->task, &lm_task) == RED_OK)) {
        if (a->tasks && a->task) die(2, "eval: give --task or --tasks, not both");
        if (!a->tasks && a->data.n != 1) die(2, "eval: --task %s needs one --data ROWS.jsonl", a->task);
        return eval_lm(a);
    }
    if (a->task && strcmp(a->task, "choice") && red_gsm8k_task_parse(a->task, &task) != RED_OK)
        die(2, "eval: unknown task '%s' (gsm8k, gsm8k_cot, gsm8k_cot_zeroshot, choice, arc_easy, arc_challenge, "
               "hellaswag, piqa, winogrande, sciq, boolq, mmlu)", a->task);
    if (!a->task || !a->model || !data) die(2, "eval: --task, --model and --data are required (see red eval --help)");
    check_distinct("eval", "--json", a->json, "--samples", a->samples);
    check_distinct("eval", "--json", a->json, "--data", data);
    check_distinct("eval", "--samples", a->samples, "--data", data);
    check_distinct("eval", "--json", a->json, "--fewshot-from", a->fewshot);
    check_distinct("eval", "--samples", a->samples, "--fewshot-from", a->fewshot);
    check_output("eval", "--json", a->json, 0);
    check_output("eval", "--samples", a->samples, 0);
    if (!strcmp(a->task, "choice")) return eval_choice(a, data);
    return eval_gsm8k(a, task, data);
}

typedef struct {
    cli_common c;
    const char *data, *completions, *json, *samples, *task;
} score_args;

static const opt score_opts[] = {
    STR("--data", score_args, data, "TEST.jsonl", "the test docs", REQ),
    STR("--completions", score_args, completions, "FILE.jsonl", "{\"completion\": ...} per line, in test order", REQ),
    STR("--task", score_args, task, "TASK", "gsm8k or gsm8k_cot (the filters)", 0),
    STR("--json", score_args, json, "OUT.json", "write the summary", 0),
    STR("--samples", score_args, samples, "OUT.jsonl", "write one line per doc", 0),
    END};

static void score_defaults(void *args) {
    ((score_args *)args)->task = "gsm8k";
}

static const char about_score[] =
    "Scores completions produced by any system (one JSON object per line with a\n"
    "\"completion\" string, in test order; fewer lines than test docs scores a prefix)\n"
    "with the same filters and exact_match as red eval.\n";

static int run_score_gsm8k(void *args) {
    const score_args *a = args;
    const char *comp = a->completions;
    red_gsm8k_task task;
    red_gsm8k_doc *test;
    red_gsm8k_report_opts ro;
    int n_test;
    red_json **items;
    size_t n_items, k, *lines;
    red_sbuf *outs, summary, js, samples;
    red_error err;
    check_distinct("score-gsm8k", "--json", a->json, "--samples", a->samples);
    check_distinct("score-gsm8k", "--json", a->json, "--data", a->data);
    check_distinct("score-gsm8k", "--samples", a->samples, "--data", a->data);
    check_distinct("score-gsm8k", "--json", a->json, "--completions", comp);
    check_distinct("score-gsm8k", "--samples", a->samples, "--completions", comp);
    check_output("score-gsm8k", "--json", a->json, 0);
    check_output("score-gsm8k", "--samples", a->samples, 0);
    if (red_gsm8k_task_parse(a->task, &task) != RED_OK) die(2, "score-gsm8k: unknown task '%s'", a->task);
    if (red_gsm8k_load(a->data, &test, &n_test, &err) != RED_OK) die(1, "%s", err.msg);
    if (red_jsonl_read_lines(comp, &items, &n_items, &lines, &err) != RED_OK) die(1, "%s", err.msg);
    if ((int)n_items > n_test) die(1, "%s has %zu completions but %s only %d docs", comp, n_items, a->data, n_test);
    outs = xmalloc(sizeof *outs * (n_items ? n_items : 1));
    for (k = 0; k < n_items; k++) {
        const red_json *c = red_json_get(items[k], "completion");
        if (!c || c->type != RED_JSON_STRING)
            die(1, "%s:%zu: expected an object with a string \"completion\"", comp, lines[k]);
        red_sbuf_init(&outs[k]);
        red_sbuf_put(&outs[k], c->str, c->len);
    }
    memset(&ro, 0, sizeof ro);
    ro.task_name = a->task;
    ro.shots = -1;
    red_sbuf_init(&summary);
    red_sbuf_init(&js);
    red_sbuf_init(&samples);
    emit_report(red_gsm8k_report(&ro, task, test, outs, NULL, (int)n_items, &summary, a->json ? &js : NULL,
                                 a->samples ? &samples : NULL, &err),
                &err, &summary, &js, a->json, &samples, a->samples);
    for (k = 0; k < n_items; k++) red_sbuf_free(&outs[k]);
    free(outs);
    red_jsonl_free(items, n_items);
    free(lines);
    red_gsm8k_free(test, n_test);
    return 0;
}

/* ------------------------------------------------------------------ convert, init */

static const red_name dtype_names[] = {{"f32", RED_DT_F32}, {"f16", RED_DT_F16}, {"bf16", RED_DT_BF16}, {NULL, 0}};

typedef struct {
    cli_common c;
    const char *from, *to, *tokenizer;
    int dtype;
} convert_args;

static const opt convert_opts[] = {
    STR("--from", convert_args, from, "PATH", "the model (directory, .gguf or llama2.c .bin)", REQ),
    STR("--to", convert_args, to, "DIR|FILE.gguf|FILE.bin", "the output; its ending picks the format", REQ),
    NAME("--dtype", convert_args, dtype, dtype_names, "DTYPE", "the matrices' dtype", 0),
    STR("--tokenizer", convert_args, tokenizer, "PATH", "the tokenizer when the model has none", 0),
    END};

static const char about_convert[] =
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

static int run_convert(void *args) {
    const convert_args *a = args;
    const char *to = a->to;
    red_tokenizer *tok = NULL;
    red_vocab_spec vs;
    red_model m;
    red_error err;
    int gguf_out;
    if (red_model_open(&m, a->from, NULL, &err) != RED_OK) die(1, "%s", err.msg);
    gguf_out = strlen(to) > 5 && !strcmp(to + strlen(to) - 5, ".gguf");
    if (red_model_tokenizer(&tok, a->from, a->tokenizer, &err) != RED_OK) {
        if (a->tokenizer) die(1, "%s", err.msg);
        fprintf(stderr, "convert: no tokenizer is written (%s)\n", err.msg);
    } else if (gguf_out && red_tokenizer_to_vocab(tok, &vs, &err) != RED_OK) {
        fprintf(stderr, "convert: the GGUF gets no tokenizer (%s)\n", err.msg);
        red_tokenizer_free(tok);
        tok = NULL;
    }
    if (tok && red_tokenizer_vocab(tok) > m.cfg.vocab) die(1, "convert: the tokenizer has more ids than the model");
    if (red_model_write(&m, tok, to, (red_dtype)a->dtype, &err) != RED_OK) die(1, "%s", err.msg);
    if (tok && !gguf_out && (strlen(to) < 4 || strcmp(to + strlen(to) - 4, ".bin")) &&
        red_tokenizer_kind(tok) != RED_TOK_BYTE && red_tokenizer_kind(tok) != RED_TOK_BPE)
        copy_tokenizer_files(a->tokenizer ? a->tokenizer : a->from, to);
    fprintf(stderr, "convert: %s -> %s (%s %s, %d layers, dim %d, vocab %d, %zu parameters, %s%s)\n", a->from, to,
            red_arch_name(m.cfg.arch), m.cfg.tied ? "tied" : "untied", m.cfg.n_layers, m.cfg.dim, m.cfg.vocab,
            m.n_params, red_name_of(dtype_names, a->dtype), tok && gguf_out ? ", tokenizer embedded" : "");
    red_tokenizer_free(tok);
    red_model_free(&m);
    return 0;
}

typedef struct {
    cli_common c;
    const char *out, *config;
    uint64_t seed;
    double std;
    int bf16;
} init_args;

static const opt init_opts[] = {
    STR("--out", init_args, out, "DIR", "the model directory", REQ),
    STR("--config", init_args, config, "CONFIG.json", "the shape (Hugging Face config.json keys)", 0),
    NUM("--seed", O_U64, init_args, seed, 0, 9007199254740992.0, "S", "RNG seed", 0),
    NUM("--std", O_F64, init_args, std, 0, 10, "X", "std of the matrices", 0),
    FLAG("--bf16", init_args, bf16, "store bfloat16"),
    END};

static void init_defaults(void *args) {
    ((init_args *)args)->std = 0.02;
}

static const char about_init[] =
    "Writes a randomly initialised model directory (config.json, model.safetensors,\n"
    "red_tokenizer.json for the byte tokenizer): matrices N(0, X^2) (default 0.02),\n"
    "o/down projections scaled by 1/sqrt(2 layers), norms 1, biases 0, from red's RNG\n"
    "seeded by S (default 0). Without --config: a small byte-level Llama (dim 64,\n"
    "2 layers, 4 heads, FFN 192, vocab 259, BOS 256, EOS 257). Useful for smoke tests.\n";

static int run_init(void *args) {
    const init_args *a = args;
    red_config c;
    red_model m;
    red_tokenizer *tok = NULL;
    red_error err;
    red_rng r;
    check_output("init", "--out", a->out, 1);
    if (red_tokenizer_byte_new(&tok, &err) != RED_OK) die(1, "%s", err.msg);
    if (a->config) {
        if (red_config_read(&c, a->config, &err) != RED_OK) die(1, "%s", err.msg);
        if (c.vocab < red_tokenizer_vocab(tok)) die(1, "init: vocab_size must be >= 259 for the byte tokenizer");
    } else {
        red_config_default(&c);
        c.bos_id = red_tokenizer_bos(tok);
        c.eos_id = red_tokenizer_eos(tok);
    }
    if (red_model_alloc(&m, &c, NULL, &err) != RED_OK) die(1, "%s", err.msg);
    red_rng_seed(&r, a->seed);
    red_model_init_random(&m, &r, (float)a->std, (float)(a->std / sqrt(2.0 * c.n_layers)));
    if (red_model_save(&m, a->out, a->bf16 ? RED_DT_BF16 : RED_DT_F32, &err) != RED_OK) die(1, "%s", err.msg);
    if (red_tokenizer_save(tok, a->out, &err) != RED_OK) die(1, "%s", err.msg);
    fprintf(stderr, "init: %s: %zu parameters (%s)\n", a->out, m.n_params, red_arch_name(c.arch));
    red_model_free(&m);
    red_tokenizer_free(tok);
    return 0;
}

/* ------------------------------------------------------------------ tasks */

static const red_name solution_names[] = {{"short", 0}, {"restate", 1}, {NULL, 0}};

typedef struct {
    cli_common c;
    const char *out, *split, *ops, *steps;
    int64_t n, max_number;
    uint64_t seed, world_seed;
    int entities, solution, keyed;
} tasks_args;

static const opt tasks_opts[] = {
    NUM("-n", O_I64, tasks_args, n, 0, 1e9, "N", "items (corpus: paraphrased lines)", REQ),
    STR("--split", tasks_args, split, "S", "train, distill, calib or test (reasoning, choice)", 0),
    STR("--out", tasks_args, out, "FILE", "write here (default: standard output)", 0),
    NUM("--seed", O_U64, tasks_args, seed, 0, 1e15, "X", "item seed", 0),
    STR("--steps", tasks_args, steps, "A-B", "reasoning: steps per problem, 1 <= A <= B <= 6", 0),
    NUM("--max-number", O_I64, tasks_args, max_number, 10, 1e9, "M", "reasoning: results in [1, M]", 0),
    STR("--ops", tasks_args, ops, "OPS", "reasoning: the operations", 0),
    NAME("--solution", tasks_args, solution, solution_names, "FORM", "reasoning: solution lines", 0),
    FLAG("--keyed", tasks_args, keyed, "reasoning: 'On Monday, ', ... before the question's sentences"),
    NUM("--world-seed", O_U64, tasks_args, world_seed, 0, 1e15, "W", "choice, corpus: the world's seed", 0),
    NUM("--entities", O_INT, tasks_args, entities, 4, 256, "E", "choice, corpus: creatures in the world", 0),
    END};

static void tasks_defaults(void *args) {
    tasks_args *a = args;
    a->ops = "+-*/";
    a->steps = "1-6";
    a->max_number = 100;
    a->world_seed = 1;
    a->entities = 48;
}

static const char about_tasks[] =
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

static int run_tasks(void *args) {
    const tasks_args *a = args;
    const char *what = a->c.pos[0];
    int lo = 1, hi = 6;
    red_split split = RED_SPLIT_TRAIN;
    red_sbuf buf;
    red_error err;
    red_status st;
    if (sscanf(a->steps, "%d-%d", &lo, &hi) != 2 && sscanf(a->steps, "%d", &lo) == 1) hi = lo;
    if (lo < 1 || hi > 6 || lo > hi) die(2, "tasks: --steps expects A-B with 1 <= A <= B <= 6, got '%s'", a->steps);
    if (strcmp(what, "corpus")) {
        if (!a->split) die(2, "tasks: --split train|distill|calib|test is required");
        if (red_split_parse(a->split, &split) != RED_OK)
            die(2, "tasks: unknown split '%s' (train, distill, calib, test)", a->split);
    }
    red_sbuf_init(&buf);
    red_sbuf_puts(&buf, "");
    if (!strcmp(what, "reasoning")) {
        red_reasoning_opts ro;
        ro.split = split; ro.n = a->n; ro.seed = a->seed; ro.min_steps = lo; ro.max_steps = hi;
        ro.max_number = a->max_number;
        ro.ops = a->ops;
        ro.restate = a->solution;
        ro.keyed = a->keyed;
        st = red_tasks_reasoning(&ro, &buf, &err);
    } else if (!strcmp(what, "choice") || !strcmp(what, "corpus")) {
        red_world_opts wo;
        wo.split = split; wo.n = a->n; wo.seed = a->seed; wo.world_seed = a->world_seed; wo.n_entities = a->entities;
        st = !strcmp(what, "choice") ? red_tasks_choice(&wo, &buf, &err) : red_tasks_corpus(&wo, &buf, &err);
    } else {
        die(2, "tasks: unknown generator '%s' (reasoning, choice, corpus)", what);
    }
    if (st != RED_OK) die(1, "%s", err.msg);
    if (a->out) write_text_file(a->out, &buf);
    else if (fwrite(buf.p, 1, buf.len, stdout) != buf.len) die(1, "tasks: write error on standard output");
    red_sbuf_free(&buf);
    return 0;
}

/* ------------------------------------------------------------------ train */

static const red_name schedule_names[] = {{"cosine", RED_SCHED_COSINE}, {"linear", RED_SCHED_LINEAR},
                                          {"constant", RED_SCHED_CONSTANT}, {NULL, 0}};

typedef struct {
    cli_common c;
    str_list data;
    const char *eval_data, *config, *tokenizer;
    red_train_opts o;        /* o.loop.out: --out */
    red_config cfg;
    int kv_heads, log_every, schedule, resume, answer_loss;
    int64_t warmup;
} train_args;

static const opt train_opts[] = {
    LIST("--data", train_args, data, "FILE", "training documents (text or JSONL)", REQ),
    STR("--out", train_args, o.loop.out, "DIR", "the checkpoint directory", REQ),
    STR("--eval-data", train_args, eval_data, "FILE", "held-out documents (loss every --eval-every steps)", 0),
    STR("--config", train_args, config, "CONFIG.json", "the shape from a config.json instead of the options below", 0),
    STR("--tokenizer", train_args, tokenizer, "DIR", "DIR/red_tokenizer.json (default: bytes)", 0),
    NUM("--dim", O_INT, train_args, cfg.dim, 8, 65536, "D", "width", 0),
    NUM("--layers", O_INT, train_args, cfg.n_layers, 1, 1024, "L", "blocks", 0),
    NUM("--heads", O_INT, train_args, cfg.n_heads, 1, 1024, "H", "attention heads", 0),
    NUM("--kv-heads", O_INT, train_args, kv_heads, 1, 1024, "K", "key/value heads (default: --heads)", NODEF),
    NUM("--ffn", O_INT, train_args, cfg.ffn, 1, 1 << 20, "F", "MLP width", 0),
    NUM("--seq", O_INT, train_args, o.loop.seq, 2, 1 << 16, "T", "tokens per row (the model's context)", 0),
    NUM("--batch", O_INT, train_args, o.loop.batch, 1, 1 << 16, "B", "rows per step", 0),
    NUM("--tokens", O_U64, train_args, o.loop.tokens, 1, 1e15, "N", "training tokens", 0),
    NUM("--lr", O_F32, train_args, o.loop.lr, 0, 10, "LR", "AdamW learning rate", 0),
    NUM("--min-lr", O_F32, train_args, o.loop.min_lr, 0, 10, "LR", "the schedule's end (default: lr/10)", NODEF),
    NUM("--warmup", O_I64, train_args, warmup, 0, 1e12, "S", "warm-up steps (default: 2% of the steps)", NODEF),
    NAME("--schedule", train_args, schedule, schedule_names, "KIND", "after the warm-up", 0),
    NUM("--wd", O_F32, train_args, o.loop.weight_decay, 0, 10, "W", "weight decay (matrices)", 0),
    NUM("--clip", O_F64, train_args, o.loop.clip, 0, 1e9, "C", "global gradient-norm clip (0: off)", 0),
    NUM("--seed", O_U64, train_args, o.loop.seed, 0, 1e15, "S", "init and data order", 0),
    NUM("--save-every", O_U64, train_args, o.loop.save_every, 0, 1e12, "S", "checkpoint every S steps", 0),
    NUM("--eval-every", O_U64, train_args, o.eval_every, 0, 1e12, "S", "held-out loss every S steps", 0),
    NUM("--log-every", O_INT, train_args, log_every, 1, 1e9, "S", "progress line every S steps", 0),
    FLAG("--answer-loss", train_args, answer_loss, "train only on answers and gold choices"),
    FLAG("--resume", train_args, resume, "continue from the checkpoint in --out"),
    END};

static void train_defaults(void *args) {
    train_args *a = args;
    red_config *c = &a->cfg;
    red_config_default(c);
    c->dim = 128; c->n_layers = 4; c->n_heads = 4; c->n_kv_heads = 4; c->head_dim = 32; c->ffn = 384;
    c->vocab = 259; c->bos_id = 256; c->eos_id = 257; c->max_pos = 1024;
    a->o.loop.tokens = 1000000; a->o.loop.batch = 16; a->o.loop.seq = 256; a->o.loop.lr = 3e-3f; a->o.loop.min_lr = -1;
    a->o.loop.beta1 = 0.9f; a->o.loop.beta2 = 0.95f; a->o.loop.weight_decay = 0.1f; a->o.loop.clip = 1.0;
    a->o.loop.save_every = 200; a->o.eval_every = 100; a->o.eval_batches = 4;
    a->schedule = RED_SCHED_COSINE;
    a->log_every = 10;
    a->warmup = -1;
}

static const char about_train[] =
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

/* The model train starts from: the checkpoint in --out (--resume) or a fresh init. */
static void train_model(train_args *a, red_pool *pool, red_model *m, red_tokenizer **tok) {
    red_config c = a->cfg;
    red_error err;
    red_rng r;
    if (red_tokenizer_byte_new(tok, &err) != RED_OK) die(1, "%s", err.msg);
    if (a->resume) {
        load_model(m, a->o.loop.out, pool);
        red_tokenizer_free(*tok);
        if (red_tokenizer_load(tok, a->o.loop.out, &err) != RED_OK) die(1, "%s", err.msg);
        return;
    }
    if (a->tokenizer) {
        red_tokenizer_free(*tok);
        if (red_tokenizer_load(tok, a->tokenizer, &err) != RED_OK) die(1, "%s", err.msg);
        c.vocab = red_tokenizer_vocab(*tok);
    }
    if (a->config && red_config_read(&c, a->config, &err) != RED_OK) die(1, "%s", err.msg);
    if (c.vocab < red_tokenizer_vocab(*tok)) die(1, "train: vocab_size is smaller than the tokenizer's");
    if (red_model_alloc(m, &c, pool, &err) != RED_OK) die(1, "%s", err.msg);
    red_rng_seed(&r, a->o.loop.seed);
    red_model_init_random(m, &r, 0.02f, (float)(0.02 / sqrt(2.0 * c.n_layers)));
}

static int run_train(void *args) {
    train_args *a = args;
    red_train_opts *o = &a->o;
    red_model m;
    red_tokenizer *tok = NULL;
    red_train_data d, ev;
    red_error err;
    red_status st;
    red_pool *pool;
    train_log tl;
    uint64_t steps;
    int i;
    for (i = 0; i < a->data.n; i++) check_distinct("train", "--out", o->loop.out, "--data", a->data.v[i]);
    check_output("train", "--out", o->loop.out, 1);
    if (o->loop.min_lr < 0) o->loop.min_lr = o->loop.lr / 10;
    o->loop.schedule = (red_sched_kind)a->schedule;
    a->cfg.n_kv_heads = a->kv_heads ? a->kv_heads : a->cfg.n_heads;
    a->cfg.head_dim = a->cfg.dim / a->cfg.n_heads;
    a->cfg.max_pos = o->loop.seq;  /* the context is what training saw: positions beyond it were never trained */
    pool = make_pool(a->c.threads);
    train_model(a, pool, &m, &tok);
    memset(&d, 0, sizeof d);
    memset(&ev, 0, sizeof ev);
    d.answer_only = ev.answer_only = a->answer_loss;
    for (i = 0; i < a->data.n; i++)
        if (red_train_data_add_file(&d, tok, a->data.v[i], &err) != RED_OK) die(1, "%s", err.msg);
    if (a->eval_data && red_train_data_add_file(&ev, tok, a->eval_data, &err) != RED_OK) die(1, "%s", err.msg);
    steps = o->loop.tokens / ((uint64_t)o->loop.batch * o->loop.seq);
    o->loop.warmup_steps = a->warmup >= 0 ? (uint64_t)a->warmup : (uint64_t)(0.02 * steps);
    fprintf(stderr, "train: %zu documents, %zu tokens; model %zu parameters (dim %d, %d layers, %d heads, ffn %d); "
                    "%llu steps of %d x %d\n", d.n_docs, d.n_tok, m.n_params, m.cfg.dim, m.cfg.n_layers, m.cfg.n_heads,
            m.cfg.ffn, (unsigned long long)steps, o->loop.batch, o->loop.seq);
    o->loop.resume = a->resume;
    tl.t0 = red_time_seconds();
    tl.first_step = 0;
    tl.log_every = a->log_every;
    tl.tokens_per_step = o->loop.batch * o->loop.seq;
    o->progress = train_progress;
    o->progress_ctx = &tl;
    if (!a->eval_data) o->eval_every = 0;
    o->loop.stop = &stop_requested;
    catch_stop_signals();
    if ((st = red_train(o, &m, tok, &d, a->eval_data ? &ev : NULL, &err)) != RED_OK) die_err(st, &err);
    if (red_dist_rank() == 0) fprintf(stderr, "train: done in %.1f s -> %s\n", red_time_seconds() - tl.t0, o->loop.out);
    red_train_data_free(&d);
    red_train_data_free(&ev);
    red_model_free(&m);
    red_pool_destroy(pool);
    red_tokenizer_free(tok);
    return 0;
}

/* ------------------------------------------------------------------ inspect */

typedef struct {
    cli_common c;
    const char *model, *tokenizer, *json;
    str_list data;
    int width, batch, seq;
    int64_t calib_tokens;
} inspect_args;

static const opt inspect_opts[] = {
    STR("--model", inspect_args, model, "DIR", "the teacher", REQ),
    STR("--tokenizer", inspect_args, tokenizer, "PATH", "the tokenizer when the model has none", 0),
    LIST("--data", inspect_args, data, "FILE", "calibration documents", REQ),
    NUM("--width", O_INT, inspect_args, width, 1, 1 << 20, "D", "the student's width", REQ),
    STR("--json", inspect_args, json, "OUT", "write the energies and selections as JSON", 0),
    NUM("--calib-tokens", O_I64, inspect_args, calib_tokens, 1, 1e12, "N", "calibration tokens", 0),
    NUM("--batch", O_INT, inspect_args, batch, 1, 1 << 16, "B", "calibration rows per pass", 0),
    NUM("--seq", O_INT, inspect_args, seq, 2, 1 << 16, "T", "tokens per row (at most the model's context)", 0),
    END};

static void inspect_defaults(void *args) {
    inspect_args *a = args;
    a->calib_tokens = 131072;
    a->batch = 1;
    a->seq = 1024;
}

static const char about_inspect[] =
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

static void site_values(const red_site_energy *e, double v[8]) {
    v[0] = e->kept_red; v[1] = e->kept_magnitude; v[2] = e->kept_pca_shared; v[3] = e->kept_pca;
    v[4] = e->top1_share; v[5] = e->top10_share; v[6] = e->rms_max_over_median; v[7] = e->rms_kurtosis;
}

static void inspect_table(const inspect_args *a, const red_inspect_result *r, int L, int T) {
    double mean[8] = {0};
    char name[64];
    int i, k;
    printf("# red inspect: %s, width %d -> %d, %lld calibration tokens (%d x %d rows); a random projection keeps %.3f\n",
           a->model, r->d_t, r->d_s, (long long)r->rows, a->batch, T, (double)r->d_s / r->d_t);
    printf("%-20s %8s %8s %8s %8s %8s %8s %8s %8s\n", "site", "red", "magn.", "pca-shr", "pca-own", "top1%", "top10%",
           "max/med", "kurt");
    for (i = 0; i < r->n_sites; i++) {
        double v[8];
        site_values(&r->site[i], v);
        printf("%-20s", site_name(i, L, name, sizeof name));
        for (k = 0; k < 8; k++) {
            printf(" %8.3f", v[k]);
            mean[k] += v[k] / r->n_sites;
        }
        printf("\n");
    }
    printf("%-20s", "mean");
    for (i = 0; i < 8; i++) printf(" %8.3f", mean[i]);
    printf("\n");
}

static void inspect_json(const inspect_args *a, const red_inspect_result *r, int L, int T) {
    static const char *const keys[] = {"kept_red", "kept_magnitude", "kept_pca_shared", "kept_pca", "top1_share",
                                       "top10_share", "rms_max_over_median", "rms_kurtosis"};
    static double sel[2][4096];
    char name[64];
    red_sbuf b;
    int i, k;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "{\"model\": ");
    red_json_put_string(&b, a->model, strlen(a->model));
    red_sbuf_printf(&b, ", \"d_t\": %d, \"d_s\": %d, \"calib_tokens\": %lld, \"batch\": %d, \"seq\": %d, "
                    "\"kept_random_expected\": ", r->d_t, r->d_s, (long long)r->rows, a->batch, T);
    red_json_put_number(&b, (double)r->d_s / r->d_t);
    for (k = 0; k < r->d_s && k < 4096; k++) { sel[0][k] = r->sel_red[k]; sel[1][k] = r->sel_magnitude[k]; }
    red_sbuf_puts(&b, ",\n \"sel_red\": ");
    red_json_put_numbers(&b, sel[0], k);
    red_sbuf_puts(&b, ",\n \"sel_magnitude\": ");
    red_json_put_numbers(&b, sel[1], k);
    red_sbuf_puts(&b, ",\n \"sites\": [");
    for (i = 0; i < r->n_sites; i++) {
        double v[8];
        site_values(&r->site[i], v);
        red_sbuf_puts(&b, i ? ",\n  {\"site\": " : "\n  {\"site\": ");
        red_json_put_string(&b, site_name(i, L, name, sizeof name), strlen(name));
        for (k = 0; k < 8; k++) {
            red_sbuf_printf(&b, ", \"%s\": ", keys[k]);
            red_json_put_number(&b, v[k]);
        }
        red_sbuf_puts(&b, "}");
    }
    red_sbuf_puts(&b, "]}\n");
    write_text_file(a->json, &b);
    red_sbuf_free(&b);
}

static int run_inspect(void *args) {
    const inspect_args *a = args;
    int T = a->seq;
    red_model m;
    red_tokenizer *tok = NULL;
    red_train_data d;
    red_pool *pool;
    red_error err;
    red_inspect_result r;
    pool = make_pool(a->c.threads);
    load_model(&m, a->model, pool);
    load_tokenizer(&tok, a->model, a->tokenizer);
    if (T > m.cfg.max_pos) T = m.cfg.max_pos;
    load_data_files(&d, tok, a->data.v, a->data.n);
    if (red_inspect(&m, a->width, &d, a->calib_tokens, a->batch, T, &r, &err) != RED_OK) die(1, "%s", err.msg);
    inspect_table(a, &r, m.cfg.n_layers, T);
    if (a->json) inspect_json(a, &r, m.cfg.n_layers, T);
    red_inspect_free(&r);
    red_train_data_free(&d);
    red_model_free(&m);
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
    return 0;
}

/* ------------------------------------------------------------------ distill */

static const red_name orth_scale_names[] = {{"unit", 0}, {"lrc", 1}, {NULL, 0}};

typedef struct {
    cli_common c;
    const char *teacher, *tokenizer, *init, *init_std;
    str_list data, calib;
    int width, orth_lrc, score, norms, kl, schedule;
    int64_t calib_tokens, erank_tokens, warmup;
    uint64_t tokens, seed;
    red_distill_opts o;      /* the library's defaults; o.loop.out: --out */
} distill_args;

static const opt distill_opts[] = {
    STR("--teacher", distill_args, teacher, "DIR", "the teacher", REQ),
    NUM("--width", O_INT, distill_args, width, 1, 1 << 20, "D", "the student's width", REQ),
    STR("--init", distill_args, init, "INIT", "lrc, lrc-literal, orthogonal, pca, magnitude or red", REQ),
    LIST("--data", distill_args, data, "FILE", "distillation documents (text or JSONL)", REQ),
    NUM("--tokens", O_U64, distill_args, tokens, 0, 1e15, "N", "distillation tokens (0: write the init)", REQ),
    STR("--out", distill_args, o.loop.out, "DIR", "the student's directory", REQ),
    STR("--tokenizer", distill_args, tokenizer, "PATH", "the tokenizer when the teacher has none", 0),
    STR("--init-std", distill_args, init_std, "S|matched", "lrc's std (matched: lrc's at this width)", 0),
    NAME("--orth-scale", distill_args, orth_lrc, orth_scale_names, "KIND", "orthogonal column norm (lrc: std*sqrt(d_t))", 0),
    NAME("--score", distill_args, score, red_score_names, "KIND", "red's channel score", 0),
    NAME("--norms", distill_args, norms, red_norms_names, "KIND",
         "student norms; default: teacher-rms for red, teacher for magnitude, ones otherwise", NODEF),
    LIST("--calib", distill_args, calib, "FILE", "calibration documents (default: the --data files)", 0),
    NUM("--calib-tokens", O_I64, distill_args, calib_tokens, 1, 1e12, "N", "calibration tokens", 0),
    NUM("--seed", O_U64, distill_args, seed, 0, 1e15, "S", "init draws and data order", 0),
    NUM("--tau", O_F32, distill_args, o.loss.tau, 1e-3, 1e6, "T", "KL temperature", 0),
    NUM("--alpha", O_F32, distill_args, o.loss.alpha, 0, 1e6, "A", "weight of the clone loss", 0),
    NAME("--kl-reduction", distill_args, kl, red_kl_names, "KIND", "KL reduction (sequence, LRC's: sum over tokens / sequences)", 0),
    NUM("--lr", O_F32, distill_args, o.loop.lr, 0, 10, "LR", "AdamW learning rate", 0),
    NUM("--min-lr", O_F32, distill_args, o.loop.min_lr, 0, 10, "LR", "the schedule's end", 0),
    NUM("--warmup", O_I64, distill_args, warmup, 0, 1e12, "S", "warm-up steps (default: 1% of the steps)", NODEF),
    NAME("--schedule", distill_args, schedule, schedule_names, "KIND", "after the warm-up", 0),
    NUM("--wd", O_F32, distill_args, o.loop.weight_decay, 0, 10, "W", "weight decay", 0),
    NUM("--clip", O_F64, distill_args, o.loop.clip, 0, 1e9, "C", "global gradient-norm clip (0: off)", 0),
    NUM("--batch", O_INT, distill_args, o.loop.batch, 1, 1 << 16, "B", "rows per step", 0),
    NUM("--seq", O_INT, distill_args, o.loop.seq, 2, 1 << 16, "T", "tokens per row", 0),
    NUM("--save-every", O_U64, distill_args, o.loop.save_every, 0, 1e12, "S", "checkpoint every S steps", 0),
    NUM("--log-every", O_U64, distill_args, o.log_every, 1, 1e9, "S", "progress line every S steps", 0),
    FLAG("--chain-each-sequence", distill_args, o.chain_each,
         "chain each sequence's gradient into the projections: fewer bytes between ranks, more flops "
         "(default: the batch's sum, once)"),
    FLAG("--resume", distill_args, o.loop.resume, "continue from the checkpoint in --out"),
    NUM("--stop-after", O_U64, distill_args, o.loop.stop_after, 1, 1e15, "S",
        "stop after step S, as if killed (resume tests; default: run to the end)", NODEF),
    NUM("--erank-tokens", O_I64, distill_args, erank_tokens, 0, 1e9, "N", "eRank tokens, from the calibration stream",
        0),
    END};

static void distill_defaults(void *args) {
    distill_args *a = args;
    red_init_opts io;
    red_distill_opts_default(&a->o);
    red_init_opts_default(&io);
    a->score = (int)io.score;
    a->norms = (int)io.norms;
    a->kl = (int)a->o.loss.kl_reduction;
    a->schedule = (int)a->o.loop.schedule;
    a->seed = a->o.loop.seed;
    a->calib_tokens = 262144;
    a->erank_tokens = 8192;
    a->warmup = -1;
}

static const char about_distill[] =
    "LRC-style distillation (../shared/docs/method.md): the student's weights are\n"
    "the teacher's through trainable projections (W P on the input side, PᵀW on the\n"
    "output side, E P_e), trained with CE + KL(tau) + alpha * clone MSE on q, k, v,\n"
    "attention out, gate, up and FFN out; the teacher is frozen. At the end the\n"
    "merged student is written to DIR as an ordinary model (config.json,\n"
    "model.safetensors, red_tokenizer.json), with distill_log.json: options, loss\n"
    "curve, eRank per layer (teacher, student at init and at the end) and the\n"
    "singular values of every projection with the Marchenko-Pastur bounds.\n"
    "--tokens 0 writes the initialised student without training.\n"
    "Inits: lrc: Gaussian, std 0.02*sqrt(3072/d_t) (LRC's column norm at any width);\n"
    "lrc-literal: std 0.02; --init-std S|matched overrides (matched = lrc's).\n";

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

/* The job of one red distill run, its teacher loaded; eRank rows in *er_rows. */
static void distill_job(distill_args *a, red_pool *pool, red_distill_job *job, red_model *t, red_tokenizer **tok,
                        red_train_data *d, red_train_data *cd, int **er_rows) {
    red_distill_opts *o = &a->o;
    red_init_opts io;
    red_error err;
    int er_n = 0;
    uint64_t steps;
    red_init_opts_default(&io);
    io.score = (red_score_kind)a->score;
    io.norms = (red_norm_init)a->norms;
    io.seed = o->loop.seed = a->seed;
    o->loss.kl_reduction = (red_kl_reduction)a->kl;
    o->loop.schedule = (red_sched_kind)a->schedule;
    load_model(t, a->teacher, pool);
    load_tokenizer(tok, a->teacher, a->tokenizer);
    if (o->loop.seq > t->cfg.max_pos) die(2, "distill: --seq exceeds the teacher's max_position_embeddings (%s)", "see red info");
    red_init_by_name(a->init, t->cfg.dim, &io, &err);
    if (a->init_std && !strcmp(a->init_std, "matched")) io.std = (float)(0.02 * sqrt(3072.0 / t->cfg.dim));
    else if (a->init_std) io.std = (float)parse_num("distill", "--init-std", a->init_std, 0, 100);
    if (a->orth_lrc) io.orth_scale = (float)(io.std * sqrt((double)t->cfg.dim));
    load_data_files(d, *tok, a->data.v, a->data.n);
    if (a->calib.n) load_data_files(cd, *tok, a->calib.v, a->calib.n);
    else load_data_files(cd, *tok, a->data.v, a->data.n);
    *er_rows = NULL;
    if (a->erank_tokens > 0) {
        er_n = (int)((a->erank_tokens + o->loop.seq - 1) / o->loop.seq);
        *er_rows = fixed_rows(cd, er_n, o->loop.seq);
    }
    steps = a->tokens / ((uint64_t)o->loop.batch * o->loop.seq);
    o->loop.tokens = a->tokens;
    o->loop.warmup_steps = a->warmup >= 0 ? (uint64_t)a->warmup : steps / 100;
    memset(job, 0, sizeof *job);
    job->teacher = t; job->tok = *tok; job->teacher_name = a->teacher; job->init_name = a->init; job->width = a->width;
    job->init = io; job->opt = *o; job->data = d; job->calib = cd; job->calib_tokens = a->calib_tokens;
    job->erank_rows = *er_rows; job->n_erank_rows = er_n; job->measure_teacher = 1; job->write_log = 1;
    job->say = red_dist_rank() == 0 ? say_plain : NULL;  /* of several ranks, rank 0 speaks */
}

static int run_distill(void *args) {
    distill_args *a = args;
    const char *out = a->o.loop.out;
    red_distill_job job;
    red_distill_report rep;
    red_status st;
    red_init_opts io;
    red_model t;
    red_student s;
    red_tokenizer *tok = NULL;
    red_train_data d, cd;
    red_pool *pool;
    red_error err;
    distill_log dl;
    int *er_rows, L, i;
    check_distinct("distill", "--out", out, "--teacher", a->teacher);
    for (i = 0; i < a->data.n; i++) check_distinct("distill", "--out", out, "--data", a->data.v[i]);
    check_output("distill", "--out", out, 1);
    red_init_opts_default(&io);
    if (red_init_by_name(a->init, 128, &io, &err) != RED_OK) die(2, "distill: %s", err.msg);
    if (a->init_std && strcmp(a->init_std, "matched")) (void)parse_num("distill", "--init-std", a->init_std, 0, 100);
    pool = make_pool(a->c.threads);
    distill_job(a, pool, &job, &t, &tok, &d, &cd, &er_rows);
    dl.t0 = red_time_seconds();
    dl.first_step = 0;
    dl.log_every = (int)a->o.log_every;
    dl.tokens_per_step = a->o.loop.batch * a->o.loop.seq;
    job.opt.progress = distill_progress;
    job.opt.progress_ctx = &dl;
    job.opt.loop.stop = &stop_requested;
    catch_stop_signals();
    if ((st = red_distill_run(&job, &s, &rep, &err)) != RED_OK) die_err(st, &err);
    if (red_dist_rank() == 0 && red_tokenizer_kind(tok) > RED_TOK_BPE)  /* of several ranks, rank 0 writes and speaks */
        copy_tokenizer_files(a->tokenizer ? a->tokenizer : a->teacher, out);
    L = t.cfg.n_layers;
    if (red_dist_rank() == 0) fprintf(stderr, "distill: eRank final norm: teacher %.2f, student at init %.2f, at end %.2f -> %s\n",
            rep.erank_teacher[L], rep.erank_init[L], rep.erank_final[L], out);
    if (red_dist_rank() == 0) fprintf(stderr, "distill: indist@0.95 final norm: teacher %.4f, student at init %.4f, at end %.4f\n",
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

/* ------------------------------------------------------------------ reproduce */

typedef struct {
    cli_common c;
    const char *out, *teacher, *inits, *general;
    int quick, lng, full, quarter, seeds, per_step, choice, batch, evals;
    int64_t tokens;
    double mix;
    float lr;
} repro_args;

static const opt repro_opts[] = {
    STR("--out", repro_args, out, "DIR", "the report's directory", 0),
    STR("--teacher", repro_args, teacher, "DIR", "the teacher", 0),
    FLAG("--quick", repro_args, quick, "1 seed, 16384 tokens, small test sets (a smoke run)"),
    FLAG("--long", repro_args, lng, "3 seeds, 4x the tokens, larger test sets (the firm run)"),
    FLAG("--full", repro_args, full, "5 seeds, 4x the tokens, larger test sets, lrc-literal too"),
    FLAG("--quarter", repro_args, quarter, "students at a quarter of the teacher's width (default: half)"),
    STR("--inits", repro_args, inits, "I1,I2,...", "the inits (default: lrc,orthogonal,pca,magnitude,red)", NODEF),
    NUM("--seeds", O_INT, repro_args, seeds, 1, 64, "N", "seeds per init (default: the preset's)", NODEF),
    NUM("--tokens", O_I64, repro_args, tokens, 1, 1e12, "N", "tokens per student (default: the preset's)", NODEF),
    NUM("--mix", O_F64, repro_args, mix, 0, 0.95, "F", "reasoning share of the distillation tokens", 0),
    NUM("--lr", O_F32, repro_args, lr, 0, 10, "LR", "AdamW learning rate", 0),
    NUM("--batch", O_INT, repro_args, batch, 1, 1024, "B", "rows per step (default 1)", NODEF),
    NUM("--evals", O_INT, repro_args, evals, 1, 64, "N", "points on the accuracy curve (default: the preset's)", NODEF),
    NUM("--per-step", O_INT, repro_args, per_step, 1, 100000, "N", "test problems per step count (default: the preset's)",
        NODEF),
    NUM("--choice", O_INT, repro_args, choice, 1, 100000, "N", "multiple-choice test items (default: the preset's)",
        NODEF),
    STR("--general", repro_args, general, "FILE:TASK", "score lm-eval's TASK on FILE's rows as general ability", 0),
    END};

static void repro_defaults(void *args) {
    repro_args *a = args;
    a->out = "reproduce-out";
    a->teacher = "data/teacher";
    a->seeds = a->per_step = a->choice = a->batch = a->evals = -1;
    a->tokens = -1;
    a->mix = 0.3;
    a->lr = 3e-3f;
}

static const char about_reproduce[] =
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

/* --general FILE:TASK, split at the last colon (FILE may hold colons). */
static void parse_general(const char *arg, red_repro_opts *o) {
    static char file[4096];
    const char *colon = strrchr(arg, ':');
    red_lm_task t = (red_lm_task)0;
    if (!colon || red_lm_task_parse(colon + 1, &t) != RED_OK || colon - arg >= (long)sizeof file)
        die(2, "reproduce: --general wants FILE:TASK with an lm-eval task (arc_easy, ..., mmlu), got '%s'", arg);
    memcpy(file, arg, (size_t)(colon - arg));
    file[colon - arg] = 0;
    o->general_file = file;
    o->general_task = (int)t;
}

/* The preset's budgets (default, --quick, --long, --full), then the options that override them. */
static void reproduce_budget(const repro_args *a, red_repro_opts *o) {
    int quick = a->quick, full = a->full, lng = a->lng;
    o->preset = quick ? "quick smoke run" : full ? "full run" : lng ? "long run" : "default run";
    o->n_seeds = quick ? 1 : full ? 5 : 3;
    o->tokens = quick ? 16384 : full || lng ? 4 * 655360 : 655360;
    o->per_step = quick ? 6 : full || lng ? 100 : 40;
    o->n_choice = quick ? 40 : full || lng ? 400 : 200;
    o->n_evals = quick ? 1 : full ? 8 : 4;
    o->corpus_lines = quick ? 4000 : 40000;
    o->calib_tokens = quick ? 16384 : 131072;
    o->erank_tokens = quick ? 2048 : 8192;
    o->batch = 1;  /* more steps for the tokens: at 655 k tokens batch 1 beat 2 and 4 (README) */
    o->seq = 1024;
    if (a->seeds > 0) o->n_seeds = a->seeds;
    if (a->tokens > 0) o->tokens = (uint64_t)a->tokens;
    if (a->per_step > 0) o->per_step = a->per_step;
    if (a->choice > 0) o->n_choice = a->choice;
    if (a->batch > 0) o->batch = a->batch;
    if (a->evals > 0) o->n_evals = a->evals;
    o->mix = a->mix;
    o->lr = a->lr;
    o->tau = 10.0f;
    o->alpha = 0.2f;
}

static int run_reproduce(void *args) {
    const repro_args *a = args;
    static char inits[1024];
    red_repro_opts o;
    red_status st;
    red_pool *pool;
    red_error err;
    red_config c;
    char path[2048];
    int i;
    double t0 = red_time_seconds();
    memset(&o, 0, sizeof o);
    o.teacher = a->teacher;
    o.out = a->out;
    o.width_ratio = a->quarter ? 0.25 : 0.5;
    if (a->general) parse_general(a->general, &o);
    if (a->quick + a->full + a->lng > 1) die(2, "reproduce: --quick, --long and --full exclude each other");
    check_distinct("reproduce", "--out", o.out, "--teacher", o.teacher);
    check_output("reproduce", "--out", o.out, 1);
    if (a->inits) {
        char *p = inits, *tok;
        if (snprintf(inits, sizeof inits, "%s", a->inits) >= (int)sizeof inits) die(2, "reproduce: --inits too long");
        while ((tok = strtok(p, ",")) != NULL) {
            if (o.n_inits == 16) die(2, "reproduce: at most 16 inits");
            o.inits[o.n_inits++] = tok;
            p = NULL;
        }
    } else {
        /* lrc is the scale-matched Gaussian (method.md A4); --full adds LRC's literal std 0.02 */
        static const char *const def[] = {"lrc", "orthogonal", "pca", "magnitude", "red", "lrc-literal"};
        for (i = 0; i < (a->full ? 6 : 5); i++) o.inits[o.n_inits++] = def[i];
    }
    reproduce_budget(a, &o);
    o.say = say_line;
    o.say_ctx = &t0;
    snprintf(path, sizeof path, "%s/config.json", o.teacher);
    if (red_config_read(&c, path, &err) != RED_OK)
        die(1, "reproduce: no teacher at %s (make teacher, or --teacher DIR)", o.teacher);
    if (o.seq > c.max_pos) o.seq = c.max_pos;
    pool = make_pool(a->c.threads);
    o.stop = &stop_requested;
    catch_stop_signals();
    if ((st = red_reproduce(&o, pool, &err)) != RED_OK) die_err(st, &err);
    red_pool_destroy(pool);
    return 0;
}

/* ------------------------------------------------------------------ tokenizer */

typedef struct {
    cli_common c;
    str_list data;
    const char *out, *tokenizer, *text, *input, *ids;
    int vocab, escape, special;
} tok_args;

static const opt tok_opts[] = {
    LIST("--data", tok_args, data, "FILE", "train: the documents (text or JSONL)", 0),
    NUM("--vocab", O_INT, tok_args, vocab, 259, RED_BPE_MAX_VOCAB, "N", "train: ids", 0),
    STR("--out", tok_args, out, "DIR", "train: writes DIR/red_tokenizer.json", 0),
    STR("--tokenizer", tok_args, tokenizer, "PATH", "encode, decode: the tokenizer", 0),
    STR("--model", tok_args, tokenizer, "PATH", "the same as --tokenizer", 0),
    STR("--text", tok_args, text, "TEXT", "encode: this text", 0),
    FLAG("--escape", tok_args, escape, "encode: \\n, \\t and \\\\ in TEXT are newline, tab and backslash"),
    STR("--input", tok_args, input, "FILE.jsonl", "encode: every line's \"text\" (or JSON string)", 0),
    FLAG("--special", tok_args, special, "encode: add BOS/EOS as the tokenizer's config asks"),
    STR("--ids", tok_args, ids, "\"ID ID ...\"", "decode: these ids", 0),
    END};

static void tok_defaults(void *args) {
    ((tok_args *)args)->vocab = 1024;
}

static const char about_tokenizer[] =
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

static int tokenizer_train(const tok_args *a) {
    red_sbuf all;
    red_tokenizer *tok = NULL;
    red_error err;
    double t0 = red_time_seconds();
    int i, n;
    if (!a->data.n || !a->out) die(2, "tokenizer train: --data and --out are required");
    for (i = 0; i < a->data.n; i++) check_distinct("tokenizer", "--out", a->out, "--data", a->data.v[i]);
    check_output("tokenizer", "--out", a->out, 1);
    red_sbuf_init(&all);
    red_sbuf_puts(&all, "");
    for (i = 0; i < a->data.n; i++)
        if (red_docs_text(a->data.v[i], &all, &err) != RED_OK) die(1, "%s", err.msg);
    if (red_tokenizer_train_bpe(&tok, all.p, all.len, a->vocab, &err) != RED_OK) die(1, "%s", err.msg);
    if (red_make_dir(a->out, &err) != RED_OK) die(1, "tokenizer: %s", err.msg);
    if (red_tokenizer_save(tok, a->out, &err) != RED_OK) die(1, "%s", err.msg);
    n = red_tokenize(tok, all.p, all.len, 0, NULL, 0);
    fprintf(stderr, "tokenizer: %d ids (%d merges) from %zu bytes in %.1f s; %.2f bytes per token -> %s\n",
            red_tokenizer_vocab(tok), red_tokenizer_n_merges(tok), all.len, red_time_seconds() - t0,
            (double)all.len / (n ? n : 1), a->out);
    red_sbuf_free(&all);
    red_tokenizer_free(tok);
    return 0;
}

static int tokenizer_encode(const tok_args *a) {
    red_tokenizer *tok = NULL;
    red_error err;
    if (!a->tokenizer || !a->text == !a->input)
        die(2, "tokenizer encode: --tokenizer and one of --text and --input are required (see red tokenizer --help)");
    load_tokenizer(&tok, a->tokenizer, a->tokenizer);
    if (a->text) {
        char *buf = xmalloc(strlen(a->text) + 1);
        print_ids(tok, buf, unescape_text(a->text, a->escape, buf), a->special);
        free(buf);
    } else {
        red_json **items;
        size_t n, k, *lines;
        if (red_jsonl_read_lines(a->input, &items, &n, &lines, &err) != RED_OK) die(1, "%s", err.msg);
        for (k = 0; k < n; k++) {
            const red_json *v = items[k]->type == RED_JSON_STRING ? items[k] : red_json_get(items[k], "text");
            if (!v || v->type != RED_JSON_STRING)
                die(1, "%s:%zu: expected a JSON string or an object with a \"text\" string", a->input, lines[k]);
            print_ids(tok, v->str, v->len, a->special);
        }
        red_jsonl_free(items, n);
        free(lines);
    }
    red_tokenizer_free(tok);
    return 0;
}

static int tokenizer_decode(const tok_args *a) {
    red_tokenizer *tok = NULL;
    int *ids, n = 0;
    const char *p;
    red_sbuf o;
    if (!a->tokenizer || !a->ids) die(2, "tokenizer decode: --tokenizer and --ids are required");
    load_tokenizer(&tok, a->tokenizer, a->tokenizer);
    ids = xmalloc(sizeof(int) * (strlen(a->ids) / 2 + 1));
    for (p = a->ids; *p;) {
        char *end;
        long v;
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= red_tokenizer_vocab(tok))
            die(2, "tokenizer decode: --ids: '%.20s' is not an id below %d", p, red_tokenizer_vocab(tok));
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

static int run_tokenizer(void *args) {
    const tok_args *a = args;
    const char *what = a->c.pos[0];
    if (!strcmp(what, "train")) return tokenizer_train(a);
    if (!strcmp(what, "encode")) return tokenizer_encode(a);
    if (!strcmp(what, "decode")) return tokenizer_decode(a);
    die(2, "tokenizer: unknown command '%s' (train, encode, decode)", what);
}

/* ------------------------------------------------------------------ version, dispatch */

static const opt no_opts[] = {END};

static int run_version(void *args) {
    (void)args;
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

#define CMD(name, summary, pos, min_pos, max_pos, about, opts, T, defaults, run) \
    {name, summary, pos, min_pos, max_pos, about, opts, sizeof(T), defaults, run, NULL}

static const command commands[] = {
    CMD("svd", "thin SVD of a matrix in a .npy file (one-sided Jacobi)", "A.npy", 1, 1, about_svd, svd_opts, svd_args,
        NULL, run_svd),
    CMD("erank", "effective rank of a .npy matrix, or per layer of a model on data", "[X.npy]", 0, 1, about_erank,
        erank_opts, erank_args, erank_defaults, run_erank),
    CMD("tasks", "generate the built-in reasoning and general-ability tasks (JSONL/text)", "reasoning|choice|corpus", 1,
        1, about_tasks, tasks_opts, tasks_args, tasks_defaults, run_tasks),
    CMD("train", "train a byte-level model from scratch (checkpoints, exact resume)", NULL, 0, 0, about_train,
        train_opts, train_args, train_defaults, run_train),
    CMD("distill", "LRC/RED distillation of a teacher into a narrower student", NULL, 0, 0, about_distill,
        distill_opts, distill_args, distill_defaults, run_distill),
    CMD("inspect", "activation energy a width-D init keeps per norm site (red, magnitude, pca)", NULL, 0, 0,
        about_inspect, inspect_opts, inspect_args, inspect_defaults, run_inspect),
    CMD("reproduce", "the paper's experiment end to end: report.md, results.json, SVG plots", NULL, 0, 0,
        about_reproduce, repro_opts, repro_args, repro_defaults, run_reproduce),
    CMD("tokenizer", "learn a BPE tokenizer on data (train), show an encoding (encode)", "train --data FILE [--data FILE ...] --vocab N --out DIR", 1, 1,
        about_tokenizer, tok_opts, tok_args, tok_defaults, run_tokenizer),
    CMD("init", "write a randomly initialised model directory (smoke tests)", NULL, 0, 0, about_init, init_opts,
        init_args, init_defaults, run_init),
    CMD("info", "describe a model (directory, .gguf or llama2.c .bin)", NULL, 0, 0, about_info, info_opts, model_args,
        NULL, run_info),
    CMD("convert", "convert a model between a directory, GGUF and llama2.c", NULL, 0, 0, about_convert, convert_opts,
        convert_args, NULL, run_convert),
    CMD("forward", "logits of a token sequence, written as a .npy [T, V]", NULL, 0, 0, about_forward, forward_opts,
        model_args, NULL, run_forward),
    CMD("generate", "continue token prompts with a KV cache (greedy or sampled)", NULL, 0, 0, about_generate,
        generate_opts, model_args, generate_defaults, run_generate),
    CMD("eval", "lm-eval-compatible harnesses: gsm8k (3 variants), multiple choice",
        "--task TASK --model DIR --data TEST.jsonl", 0, 0, about_eval, eval_opts,
        eval_args, eval_defaults, run_eval),
    CMD("score-gsm8k", "score completions from any system with lm-eval's gsm8k filters", NULL, 0, 0, about_score,
        score_opts, score_args, score_defaults, run_score_gsm8k),
    {"bench", "measure matmul / svd / peak / train / infer (key=value lines)", NULL, 0, 0, NULL, no_opts, 0, NULL, NULL,
     red_bench_main},
    CMD("version", "print version and build configuration", NULL, 0, 0, "Prints the version and the build's SIMD path,\n"
        "default threads and compiler.\n", no_opts, cli_common, NULL, run_version),
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void print_usage(FILE *f) {
    int i;
    fputs("red - Reasoning-preserved Efficient Distillation, in C99\n\n"
          "usage: red <command> [options]   (red <command> --help for details)\n\ncommands:\n", f);
    for (i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s%s%s\n", commands[i].name, strlen(commands[i].name) > 8 ? "  " : " ", commands[i].summary);
    fputs("\nthreads: --threads N on any command, else $RED_THREADS, else online cores.\n", f);
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : NULL;
    void *args;
    int i, rc;
    if (!name || !strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_usage(name ? stdout : stderr);
        return name ? 0 : 2;
    }
    if (!strcmp(name, "--version")) name = "version";
    for (i = 0; i < N_COMMANDS; i++) {
        const command *c = &commands[i];
        if (strcmp(name, c->name)) continue;
        if (!strcmp(name, "train") || !strcmp(name, "distill") || !strcmp(name, "reproduce")) {  /* mpirun: ranks */
            red_dist_init(&argc, &argv);
            atexit(red_dist_finalize);
        }
        if (c->raw) return c->raw(argc - 2, argv + 2);
        args = xmalloc(c->size);
        parse_command(c, argc - 2, argv + 2, args);
        rc = c->run(args);
        free(args);
        return rc;
    }
    fprintf(stderr, "red: unknown command '%s'\n\n", name);
    print_usage(stderr);
    return 2;
}
