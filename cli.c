/* cli.c - `red` subcommands and argument parsing; the only place that exits. */
#define _POSIX_C_SOURCE 200809L
#include "red.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_main =
    "red - Reasoning-preserved Efficient Distillation, in C99\n"
    "\n"
    "usage: red <command> [options]   (red <command> --help for details)\n"
    "\n"
    "commands:\n"
    "  svd      thin SVD of a matrix in a .npy file (one-sided Jacobi)\n"
    "  erank    effective rank of the rows of a matrix in a .npy file\n"
    "  bench    measure matmul / svd / FMA peak (machine-readable key=value lines)\n"
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
    "usage: red erank X.npy [--center] [--threads N]\n"
    "\n"
    "Prints the effective rank (Roy & Vetterli 2007) of the rows of a 2-D .npy\n"
    "matrix X (N x d): exp of the entropy of the normalised singular values.\n"
    "--center subtracts the column means first (default: uncentred).\n";

static void die(int code, const char *fmt, const char *arg) {
    fprintf(stderr, "red: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(code);
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
    if (!p) die(1, "cannot start the thread pool (%s)", "out of memory or thread limit");
    return p;
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

static int cmd_erank(int argc, char **argv) {
    const char *in = NULL;
    int threads = 0, center = 0, i;
    red_tensor x;
    red_pool *pool;
    double er;
    red_status st;
    for (i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_erank, stdout);
            return 0;
        } else if (!strcmp(o, "--center")) {
            center = 1;
        } else if (!strcmp(o, "--threads")) {
            if (i + 1 >= argc) die(2, "%s needs a value", o);
            threads = parse_threads(argv[++i]);
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
    pool = make_pool(threads);
    st = red_erank(pool, (int)x.shape[0], (int)x.shape[1], x.data, (int)x.shape[1], center, &er);
    red_pool_destroy(pool);
    red_tensor_free(&x);
    if (st == RED_E_ARG) die(1, "%s: matrix contains NaN or Inf", in);
    if (st != RED_OK) die(1, "erank: SVD failed: %s", red_status_name(st));
    printf("%.6f\n", er);
    return 0;
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
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return cmd_version();
    fprintf(stderr, "red: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
