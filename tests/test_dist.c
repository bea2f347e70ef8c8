/* tests/test_dist.c - the batch gradient tree of data-parallel steps: for B
 * = 1..8 and every rank count N (a power of two dividing B), the ranks'
 * subtrees joined pairwise by rank equal, bit for bit, a reference pairwise
 * sum over sequence index written here from its definition (a range splits
 * after its first ceil(n/2)); the reference is not a plain left-to-right sum,
 * so the check can fail; batches the ranks cannot split are refused. */
#include "testutil.h"

#define N_EL 1031  /* odd, not a multiple of any chunking */
#define MAX_B 8

typedef struct {
    float g[MAX_B][N_EL];  /* each sequence's gradient */
    float model[N_EL];     /* the "model's" buffer every leaf overwrites */
    int calls[MAX_B];
} seq_grads;

/* Odd sequences take the tree's dst when it offers one (as the trainer's
 * leaf does), even ones always answer with their own buffer. */
static red_status leaf(void *ctx, int seq, float *dst, const float **grad, red_error *err) {
    seq_grads *s = ctx;
    float *g = dst && seq % 2 ? dst : s->model;
    (void)err;
    memcpy(g, s->g[seq], sizeof s->model);
    s->calls[seq]++;
    *grad = g;
    return RED_OK;
}

/* Values over 2^-12 .. 2^12 with random signs: additions round differently in another order. */
static void fill(seq_grads *s) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int b, i;
    for (b = 0; b < MAX_B; b++)
        for (i = 0; i < N_EL; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            s->g[b][i] = ldexpf((float)((x >> 40) & 0xffffff) / 16777216.0f + 0.5f, (int)((x >> 8) % 25) - 12) *
                         ((x & 1) ? -1.0f : 1.0f);
        }
}

static void reference(const seq_grads *s, int lo, int hi, float *out) {
    int mid = lo + (hi - lo + 1) / 2, i;
    float right[N_EL];
    if (hi - lo == 1) {
        memcpy(out, s->g[lo], sizeof right);
        return;
    }
    reference(s, lo, mid, out);
    reference(s, mid, hi, right);
    for (i = 0; i < N_EL; i++) out[i] = out[i] + right[i];
}

/* The ranks' results joined as red_dist_tree_sum does: (r0 + r1) + (r2 + r3) ... */
static void join_ranks(float (*r)[N_EL], int lo, int hi) {
    int mid = (lo + hi) / 2, i;
    if (hi - lo == 1) return;
    join_ranks(r, lo, mid);
    join_ranks(r, mid, hi);
    for (i = 0; i < N_EL; i++) r[lo][i] = r[lo][i] + r[mid][i];
}

Test(dist, tree_equals_pairwise_reference_for_every_rank_count) {
    static seq_grads s;
    static float ref[N_EL], by_rank[MAX_B][N_EL];
    red_pool *pool = red_pool_create(2);
    red_error err;
    int B, N, r, b, differs_from_fold = 0;
    cr_assert(pool);
    fill(&s);
    for (B = 1; B <= MAX_B; B++) {
        float fold[N_EL];
        int i;
        reference(&s, 0, B, ref);
        memcpy(fold, s.g[0], sizeof fold);
        for (b = 1; b < B; b++)
            for (i = 0; i < N_EL; i++) fold[i] += s.g[b][i];
        differs_from_fold |= memcmp(fold, ref, sizeof ref) != 0;
        for (N = 1; N <= B; N *= 2) {
            if (B % N) continue;
            memset(s.calls, 0, sizeof s.calls);
            for (r = 0; r < N; r++) {
                red_grad_tree t;
                memset(&t, 0, sizeof t);
                /* one process: the exchange between ranks is left to join_ranks */
                cr_assert_eq(red_grad_tree_run(&t, pool, B, r, N, N_EL, leaf, &s, by_rank[r], &err), RED_OK, "%s", err.msg);
                red_grad_tree_free(&t);
            }
            for (b = 0; b < B; b++) cr_assert_eq(s.calls[b], 1, "B %d N %d: sequence %d ran %d times", B, N, b, s.calls[b]);
            join_ranks(by_rank, 0, N);
            cr_assert(memcmp(by_rank[0], ref, sizeof ref) == 0, "B %d N %d: the tree differs from the reference", B, N);
        }
    }
    cr_assert(differs_from_fold, "the values never told a pairwise sum from a left fold");
    red_pool_destroy(pool);
}

/* Sequences computed several at a time, one per thread into each worker's
 * own buffer, join to the same bits as one at a time. */
typedef struct {
    seq_grads *s;
    float buf[4][N_EL];
    int used[4];
} group_grads;

static red_status worker(void *ctx, int w, int seq, float **grad) {
    group_grads *gg = ctx;
    memcpy(gg->buf[w], gg->s->g[seq], sizeof gg->buf[w]);
    gg->s->calls[seq]++;
    gg->used[w] = 1;
    *grad = gg->buf[w];
    return RED_OK;
}

static red_status group_leaf(void *ctx, int seq, float *dst, const float **grad, red_error *err) {
    return leaf(((group_grads *)ctx)->s, seq, dst, grad, err);
}

Test(dist, sequences_at_once_join_to_the_same_bits) {
    static seq_grads s;
    static group_grads gg;
    static float ref[N_EL], out[N_EL];
    red_error err;
    int B, threads, b;
    fill(&s);
    gg.s = &s;
    for (threads = 2; threads <= 4; threads++) {
        red_pool *pool = red_pool_create(threads);
        cr_assert(pool);
        for (B = 1; B <= MAX_B; B++) {
            red_grad_tree t;
            int width;
            memset(&t, 0, sizeof t);
            cr_assert_eq(red_grad_tree_workers(&t, pool, B, worker, "test", &err), RED_OK, "%s", err.msg);
            width = B < threads ? B : threads;
            cr_assert_eq(t.width, width < 2 ? 0 : width, "threads %d B %d: %d workers", threads, B, t.width);
            memset(s.calls, 0, sizeof s.calls);
            memset(gg.used, 0, sizeof gg.used);
            reference(&s, 0, B, ref);
            cr_assert_eq(red_grad_tree_run(&t, pool, B, 0, 1, N_EL, group_leaf, &gg, out, &err), RED_OK, "%s", err.msg);
            for (b = 0; b < B; b++) cr_assert_eq(s.calls[b], 1, "threads %d B %d: sequence %d ran %d times", threads, B, b, s.calls[b]);
            cr_assert(memcmp(out, ref, sizeof ref) == 0, "threads %d B %d: differs from the reference", threads, B);
            cr_assert(B < 2 || (gg.used[0] && gg.used[1]), "threads %d B %d: never ran sequences together", threads, B);
            red_grad_tree_free(&t);
        }
        red_pool_destroy(pool);
    }
}

Test(dist, slabs_are_reused_across_steps) {
    static seq_grads s;
    static float a[N_EL], b2[N_EL];
    red_pool *pool = red_pool_create(1);
    red_grad_tree t;
    red_error err;
    fill(&s);
    memset(&t, 0, sizeof t);
    cr_assert_eq(red_grad_tree_run(&t, pool, 7, 0, 1, N_EL, leaf, &s, a, &err), RED_OK);
    cr_assert_eq(red_grad_tree_run(&t, pool, 7, 0, 1, N_EL, leaf, &s, b2, &err), RED_OK);
    cr_assert(memcmp(a, b2, sizeof a) == 0);
    cr_assert(t.slab[0] && t.slab[1] && t.slab[2] == NULL, "7 sequences need 2 slabs (right leaves add in place)");
    red_grad_tree_free(&t);
    red_pool_destroy(pool);
}

Test(dist, batches_the_ranks_cannot_split_are_refused) {
    red_error err;
    int first, count;
    cr_assert_eq(red_batch_share(4, 0, 3, &first, &count, &err), RED_E_ARG);
    cr_assert(strstr(err.msg, "3 ranks"), "%s", err.msg);
    cr_assert_eq(red_batch_share(6, 0, 4, &first, &count, &err), RED_E_ARG);
    cr_assert_eq(red_batch_share(2, 0, 4, &first, &count, &err), RED_E_ARG);
    cr_assert_eq(red_batch_share(12, 3, 4, &first, &count, &err), RED_OK);
    cr_assert(first == 9 && count == 3);
}

Test(dist, one_rank_without_mpirun) {
    float x[3] = {1.0f, -2.5f, 3.25f}, scratch[2];
    double v[2] = {0.5, 7.0};
    red_error err;
    cr_assert_eq(red_dist_size(), 1);
    cr_assert_eq(red_dist_rank(), 0);
    cr_assert_eq(red_dist_tree_sum(NULL, x, 3, scratch, &err), RED_OK);
    cr_assert(x[0] == 1.0f && x[1] == -2.5f && x[2] == 3.25f);
    cr_assert_eq(red_dist_gather_f64(v, 2, &err), RED_OK);
    cr_assert(v[0] == 0.5 && v[1] == 7.0);
}
