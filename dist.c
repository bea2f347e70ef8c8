/* dist.c - the ranks of a data-parallel run: Open MPI when built with
 * `make MPI=1`, one rank otherwise (the same calls, no MPI symbols).
 *
 * The float sum over ranks is a perfect pairwise tree over rank index,
 * ((r0 + r1) + (r2 + r3)) + ..., whatever the transport does: recursive
 * halving pairs ranks at distance 1, 2, 4, ... and adds the halves they
 * exchange (IEEE addition is commutative, so which side adds makes no
 * difference), then recursive doubling hands every rank the whole sum. Each
 * rank sends and receives 2 (N-1)/N of the slab, the bandwidth optimum.
 * The rank count must be a power of two.
 */
#include "red_internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef RED_MPI
#include <mpi.h>

static int dist_up;  /* MPI_Init done by red_dist_init */

void red_dist_init(int *argc, char ***argv) {
    int provided;
    /* the thread pool never calls MPI; only the main thread does */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS) dist_up = 1;
}

void red_dist_finalize(void) {
    if (dist_up) MPI_Finalize();
    dist_up = 0;
}

void red_dist_abort(int code) {
    if (dist_up && red_dist_size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

int red_dist_rank(void) {
    int r = 0;
    if (dist_up) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int red_dist_size(void) {
    int n = 1;
    if (dist_up) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

const char *red_dist_transport(void) { return "Open MPI"; }

static red_status mpi_fail(red_error *err, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return red_error_set(err, RED_E_IO, "dist: %s failed (%.*s)", what, len, msg);
}

red_status red_dist_tree_sum(red_pool *pool, float *x, size_t n, float *scratch, red_error *err) {
    int rank = red_dist_rank(), size = red_dist_size(), d, k = 0, rc;
    size_t lo[32], hi[32], a = 0, b = n;
    if (size == 1) return RED_OK;
    if (size & (size - 1)) return red_error_set(err, RED_E_ARG, "dist: %d ranks; a power of two is needed", size);
    if (n > 0x7fffffff) return red_error_set(err, RED_E_ARG, "dist: a slab of %zu floats is too long for one message", n);
    for (d = 1; d < size; d <<= 1, k++) {  /* reduce-scatter by recursive halving */
        size_t mid = a + (b - a) / 2, keep_a = rank & d ? mid : a, keep_b = rank & d ? b : mid;
        size_t give_a = rank & d ? a : mid, give_b = rank & d ? mid : b;
        lo[k] = a; hi[k] = b;
        rc = MPI_Sendrecv(x + give_a, (int)(give_b - give_a), MPI_FLOAT, rank ^ d, k, scratch, (int)(keep_b - keep_a),
                          MPI_FLOAT, rank ^ d, k, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "gradient exchange");
        red_vec_add_par(pool, x + keep_a, x + keep_a, scratch, keep_b - keep_a);
        a = keep_a; b = keep_b;
    }
    for (d = size >> 1, k--; d >= 1; d >>= 1, k--) {  /* allgather by recursive doubling */
        size_t mid = lo[k] + (hi[k] - lo[k]) / 2, other_a = rank & d ? lo[k] : mid, other_b = rank & d ? mid : hi[k];
        rc = MPI_Sendrecv(x + a, (int)(b - a), MPI_FLOAT, rank ^ d, 64 + k, x + other_a, (int)(other_b - other_a),
                          MPI_FLOAT, rank ^ d, 64 + k, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "gradient exchange");
        a = lo[k]; b = hi[k];
    }
    return RED_OK;
}

red_status red_dist_gather_f64(double *x, size_t n, red_error *err) {
    int rc;
    if (red_dist_size() == 1) return RED_OK;
    if (n > 0x7fffffff) return red_error_set(err, RED_E_ARG, "dist: %zu values are too many for one message", n);
    rc = MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? RED_OK : mpi_fail(err, rc, "loss exchange");
}

red_status red_dist_bcast(void *p, size_t bytes, int root, red_error *err) {
    unsigned char *c = p;
    int rc;
    if (red_dist_size() == 1) return RED_OK;
    while (bytes) {  /* counts are ints: 1 GiB at a time */
        size_t part = bytes < ((size_t)1 << 30) ? bytes : ((size_t)1 << 30);
        if ((rc = MPI_Bcast(c, (int)part, MPI_BYTE, root, MPI_COMM_WORLD)) != MPI_SUCCESS)
            return mpi_fail(err, rc, "broadcast");
        c += part;
        bytes -= part;
    }
    return RED_OK;
}

red_status red_dist_barrier(red_error *err) {
    int rc;
    if (red_dist_size() == 1) return RED_OK;
    rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? RED_OK : mpi_fail(err, rc, "barrier");
}

#else  /* one rank */

void red_dist_init(int *argc, char ***argv) { (void)argc; (void)argv; }
void red_dist_finalize(void) {}
void red_dist_abort(int code) { (void)code; }
int red_dist_rank(void) { return 0; }
int red_dist_size(void) { return 1; }
const char *red_dist_transport(void) { return "none"; }

red_status red_dist_tree_sum(red_pool *pool, float *x, size_t n, float *scratch, red_error *err) {
    (void)pool; (void)x; (void)n; (void)scratch; (void)err;
    return RED_OK;
}

red_status red_dist_gather_f64(double *x, size_t n, red_error *err) {
    (void)x; (void)n; (void)err;
    return RED_OK;
}

red_status red_dist_bcast(void *p, size_t bytes, int root, red_error *err) {
    (void)p; (void)bytes; (void)root; (void)err;
    return RED_OK;
}

red_status red_dist_barrier(red_error *err) {
    (void)err;
    return RED_OK;
}

#endif
