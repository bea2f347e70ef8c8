/* linalg.c - packed GEMM, one-sided Jacobi SVD, symmetric Jacobi eigensolver,
 * random orthonormal matrices and effective rank.
 * Legend: m, n = rows, cols of the output; k = inner size; ld* = row strides;
 *         MR x NR = micro-kernel register tile; MC, KC, NC = cache blocks.
 * GEMM follows BLIS (Van Zee & van de Geijn 2015): loops NC -> KC -> pack B ->
 * MC -> pack A -> NR -> MR -> micro-kernel, panels zero-padded at pack time so
 * the micro-kernel is branch-free.
 */
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"
#include "simd.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================== GEMM */

/* c (MR x NR, row stride ldc) = alpha * a_panel·b_panel + beta * c; beta == 0
 * never reads c. a: kc x MR (k-major, a row every lda floats), b: kc x NR
 * (k-major, a row every ldb floats). */
typedef void (*gemm_ukernel)(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                             float alpha, float beta);

typedef struct {
    int mr, nr;      /* register tile */
    int mc, kc, nc;  /* cache blocks: mc % mr == 0, nc % nr == 0 */
    gemm_ukernel kernel;
    /* optional: the same kernel on the first short_rows[i] rows only, for the
     * last row tile (256 tokens = 21 x 12 + 4 rows, 512 = 42 x 12 + 8); same
     * arithmetic per element, so the same bits. Ascending; 0 = none. */
    gemm_ukernel kernel_short[2];
    int short_rows[2];
    /* optional: the kernel reading a row-major A (nn, nt) in place, its lda
     * the rows' stride; NULL = A is always packed */
    gemm_ukernel kernel_a_rowmajor;
} gemm_arch;

/* ---- scalar micro-kernel: always built, the reference for the SIMD paths ---- */
#define SC_MR 4
#define SC_NR 8
static void ukernel_scalar(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                           float alpha, float beta) {
    float acc[SC_MR][SC_NR];
    int p, i, j;
    memset(acc, 0, sizeof acc);
    for (p = 0; p < kc; p++) {
        for (i = 0; i < SC_MR; i++) {
            float ai = a[i];
            for (j = 0; j < SC_NR; j++) acc[i][j] += ai * b[j];
        }
        a += lda;
        b += ldb;
    }
    for (i = 0; i < SC_MR; i++) {
        float *cr = c + (size_t)i * ldc;
        for (j = 0; j < SC_NR; j++) {
            float v = alpha * acc[i][j];
            if (beta == 0.0f) cr[j] = v;
            else cr[j] = v + (beta == 1.0f ? cr[j] : beta * cr[j]);
        }
    }
}
static const gemm_arch arch_scalar = {SC_MR, SC_NR, 128, 256, 1024, ukernel_scalar, {NULL, NULL}, {0, 0}, NULL};

/* ---- AVX-512: 12 x 32 tile, 24 zmm accumulators + 2 for B + 1 broadcast ---- */
#if defined(RED_SIMD_AVX512)
#define AX_MR 12
#define AX_NR 32
/* rows: how many of the 12 rows to compute and store (a constant after
 * inlining). Row r's k-th element of A is a[r * rs + k * lda]: a packed panel
 * or tn's A in place has rs 1, a row-major A read in place rs its row stride. */
static inline void ukernel_avx512_rows(int rows, int kc, const float *a, int lda, int rs, const float *b, int ldb,
                                       float *c, int ldc, float alpha, float beta) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
           c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00,
           ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    __m512 va = c00, vb0, vb1, vab = _mm512_set1_ps(alpha), vbe = _mm512_set1_ps(beta);
    int p;
    /* C's rows are a large stride apart, so no hardware prefetcher fetches them;
     * asked for now, they arrive while the kc loop runs (1 thread: 2048^3 210 ->
     * 226 GFLOP/s, 1024^3 223 -> 234, 64^3 170 -> 185; the bits do not change) */
    for (p = 0; p < rows; p++) {
        _mm_prefetch((const char *)(c + (size_t)p * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)p * ldc + 16), _MM_HINT_T0);
    }
    for (p = 0; p < kc; p++) {
        vb0 = _mm512_loadu_ps(b);
        vb1 = _mm512_loadu_ps(b + 16);
#define AX_ROW(r, x0, x1)                  \
    if ((r) < rows) {                      \
        va = _mm512_set1_ps(a[(r) * rs]);  \
        x0 = _mm512_fmadd_ps(va, vb0, x0); \
        x1 = _mm512_fmadd_ps(va, vb1, x1); \
    }
        AX_ROW(0, c00, c01) AX_ROW(1, c10, c11) AX_ROW(2, c20, c21) AX_ROW(3, c30, c31)
        AX_ROW(4, c40, c41) AX_ROW(5, c50, c51) AX_ROW(6, c60, c61) AX_ROW(7, c70, c71)
        AX_ROW(8, c80, c81) AX_ROW(9, c90, c91) AX_ROW(10, ca0, ca1) AX_ROW(11, cb0, cb1)
#undef AX_ROW
        a += lda;
        b += ldb;
    }
    (void)va;
#define AX_STORE(r, x0, x1)                                                                 \
    if ((r) < rows) {                                                                       \
        float *cr = c + (size_t)(r) * ldc;                                                  \
        if (beta == 0.0f) {                                                                 \
            _mm512_storeu_ps(cr, _mm512_mul_ps(vab, x0));                                   \
            _mm512_storeu_ps(cr + 16, _mm512_mul_ps(vab, x1));                              \
        } else if (beta == 1.0f) {                                                          \
            _mm512_storeu_ps(cr, _mm512_fmadd_ps(vab, x0, _mm512_loadu_ps(cr)));            \
            _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(vab, x1, _mm512_loadu_ps(cr + 16)));  \
        } else {                                                                            \
            _mm512_storeu_ps(cr, _mm512_fmadd_ps(vab, x0,                                   \
                                                 _mm512_mul_ps(vbe, _mm512_loadu_ps(cr)))); \
            _mm512_storeu_ps(cr + 16,                                                       \
                             _mm512_fmadd_ps(vab, x1,                                       \
                                             _mm512_mul_ps(vbe, _mm512_loadu_ps(cr + 16)))); \
        }                                                                                   \
    }
    AX_STORE(0, c00, c01) AX_STORE(1, c10, c11) AX_STORE(2, c20, c21) AX_STORE(3, c30, c31)
    AX_STORE(4, c40, c41) AX_STORE(5, c50, c51) AX_STORE(6, c60, c61) AX_STORE(7, c70, c71)
    AX_STORE(8, c80, c81) AX_STORE(9, c90, c91) AX_STORE(10, ca0, ca1) AX_STORE(11, cb0, cb1)
#undef AX_STORE
}
static void ukernel_avx512(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha,
                            float beta) {
    ukernel_avx512_rows(AX_MR, kc, a, lda, 1, b, ldb, c, ldc, alpha, beta);
}
static void ukernel_avx512_4(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha,
                            float beta) {
    ukernel_avx512_rows(4, kc, a, lda, 1, b, ldb, c, ldc, alpha, beta);
}
static void ukernel_avx512_8(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha,
                            float beta) {
    ukernel_avx512_rows(8, kc, a, lda, 1, b, ldb, c, ldc, alpha, beta);
}
/* A row-major (rows lda apart), read in place: the same arithmetic as packed */
static void ukernel_avx512_a_rowmajor(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                                      float alpha, float beta) {
    ukernel_avx512_rows(AX_MR, kc, a, 1, lda, b, ldb, c, ldc, alpha, beta);
}
static const gemm_arch arch_simd = {AX_MR, AX_NR, 192, 384, 2048, ukernel_avx512,
                                    {ukernel_avx512_4, ukernel_avx512_8}, {4, 8}, ukernel_avx512_a_rowmajor};

/* ---- AVX2+FMA: 6 x 16 tile (BLIS Haswell), 12 ymm accumulators ---- */
#elif defined(RED_SIMD_AVX2)
#define AV_MR 6
#define AV_NR 16
/* Row r's k-th element of A is a[r * rs + k * lda], as in the AVX-512 kernel. */
static inline void ukernel_avx2_rs(int kc, const float *a, int lda, int rs, const float *b, int ldb, float *c,
                                   int ldc, float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m256 va, vb0, vb1, vab = _mm256_set1_ps(alpha), vbe = _mm256_set1_ps(beta);
    int p;
    /* C's rows arrive while the kc loop runs (see the AVX-512 kernel) */
    for (p = 0; p < AV_MR; p++) {
        _mm_prefetch((const char *)(c + (size_t)p * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)p * ldc + 15), _MM_HINT_T0);
    }
    for (p = 0; p < kc; p++) {
        vb0 = _mm256_loadu_ps(b);
        vb1 = _mm256_loadu_ps(b + 8);
#define AV_ROW(r, x0, x1)                  \
    va = _mm256_broadcast_ss(a + (r) * rs); \
    x0 = _mm256_fmadd_ps(va, vb0, x0);     \
    x1 = _mm256_fmadd_ps(va, vb1, x1);
        AV_ROW(0, c00, c01) AV_ROW(1, c10, c11) AV_ROW(2, c20, c21)
        AV_ROW(3, c30, c31) AV_ROW(4, c40, c41) AV_ROW(5, c50, c51)
#undef AV_ROW
        a += lda;
        b += ldb;
    }
#define AV_STORE(r, x0, x1)                                                                \
    {                                                                                      \
        float *cr = c + (size_t)(r) * ldc;                                                 \
        if (beta == 0.0f) {                                                                \
            _mm256_storeu_ps(cr, _mm256_mul_ps(vab, x0));                                  \
            _mm256_storeu_ps(cr + 8, _mm256_mul_ps(vab, x1));                              \
        } else if (beta == 1.0f) {                                                         \
            _mm256_storeu_ps(cr, _mm256_fmadd_ps(vab, x0, _mm256_loadu_ps(cr)));           \
            _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(vab, x1, _mm256_loadu_ps(cr + 8)));   \
        } else {                                                                           \
            _mm256_storeu_ps(cr, _mm256_fmadd_ps(vab, x0,                                  \
                                                 _mm256_mul_ps(vbe, _mm256_loadu_ps(cr)))); \
            _mm256_storeu_ps(cr + 8,                                                       \
                             _mm256_fmadd_ps(vab, x1,                                      \
                                             _mm256_mul_ps(vbe, _mm256_loadu_ps(cr + 8)))); \
        }                                                                                  \
    }
    AV_STORE(0, c00, c01) AV_STORE(1, c10, c11) AV_STORE(2, c20, c21)
    AV_STORE(3, c30, c31) AV_STORE(4, c40, c41) AV_STORE(5, c50, c51)
#undef AV_STORE
}
static void ukernel_avx2(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc, float alpha,
                         float beta) {
    ukernel_avx2_rs(kc, a, lda, 1, b, ldb, c, ldc, alpha, beta);
}
static void ukernel_avx2_a_rowmajor(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                                    float alpha, float beta) {
    ukernel_avx2_rs(kc, a, 1, lda, b, ldb, c, ldc, alpha, beta);
}
/* kc as the AVX-512 path's: 4096x256x768 106 -> 110 GFLOPS, 128^3 112 -> 116 against kc 256 */
static const gemm_arch arch_simd = {AV_MR, AV_NR, 144, 384, 2048, ukernel_avx2, {NULL, NULL}, {0, 0},
                                    ukernel_avx2_a_rowmajor};

/* ---- NEON (AArch64): 8 x 12 tile, 24 q accumulators, FMA by lane ---- */
#elif defined(RED_SIMD_NEON)
#define NE_MR 8
#define NE_NR 12
static void ukernel_neon(int kc, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                         float alpha, float beta) {
    float32x4_t acc[NE_MR][3];
    int p, i, j;
    for (i = 0; i < NE_MR; i++)
        for (j = 0; j < 3; j++) acc[i][j] = vdupq_n_f32(0.0f);
    for (p = 0; p < kc; p++) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
#define NE_ROW(r, av, lane)                                  \
    acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av, lane);    \
    acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av, lane);    \
    acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av, lane);
        NE_ROW(0, a0, 0) NE_ROW(1, a0, 1) NE_ROW(2, a0, 2) NE_ROW(3, a0, 3)
        NE_ROW(4, a1, 0) NE_ROW(5, a1, 1) NE_ROW(6, a1, 2) NE_ROW(7, a1, 3)
#undef NE_ROW
        a += lda;
        b += ldb;
    }
    {
        float32x4_t vab = vdupq_n_f32(alpha), vbe = vdupq_n_f32(beta);
        for (i = 0; i < NE_MR; i++) {
            float *cr = c + (size_t)i * ldc;
            for (j = 0; j < 3; j++) {
                float32x4_t v;
                if (beta == 0.0f) v = vmulq_f32(vab, acc[i][j]);
                else if (beta == 1.0f) v = vfmaq_f32(vld1q_f32(cr + 4 * j), vab, acc[i][j]);
                else v = vfmaq_f32(vmulq_f32(vbe, vld1q_f32(cr + 4 * j)), vab, acc[i][j]);
                vst1q_f32(cr + 4 * j, v);
            }
        }
    }
}
static const gemm_arch arch_simd = {NE_MR, NE_NR, 128, 256, 1536, ukernel_neon, {NULL, NULL}, {0, 0}, NULL};

#else
#define arch_simd arch_scalar
#endif

typedef struct {
    const gemm_arch *arch;
    red_trans trans;
    int m, n, k;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
    red_pool *pool;
    int split_rows;  /* 1: threads own row slabs of C, 0: column slabs */
    /* nt over parts (red_sgemm_nt_parts, red_sgemm_nt_packed): op(B) and C are
     * side by side blocks, part p owning columns [col0[p], col0[p+1]); parts == 0:
     * one B and C. Bpk[p], if set, is part p's op(B) packed beforehand
     * (red_gemm_nt_pack) for pkn[p] columns, so nothing of B is packed here. */
    int parts;
    int col0[RED_GEMM_PARTS + 1];
    const float *Bp[RED_GEMM_PARTS];
    float *Cp[RED_GEMM_PARTS];
    int ldbp[RED_GEMM_PARTS], ldcp[RED_GEMM_PARTS];
    const float *Bpk[RED_GEMM_PARTS];
    int pkn[RED_GEMM_PARTS];
} gemm_task;

/* The part holding column j of C (parts split at whole register tiles). */
static int gemm_part(const gemm_task *g, int j) {
    int p = 0;
    while (j >= g->col0[p + 1]) p++;
    return p;
}

/* dst[p*R + r] = src[r*ld + p] for r < rows, p < kc, and 0 for rows <= r < R:
 * rows of a row-major matrix to one k-major panel. This transposing copy packs
 * A for nn/nt and B for nt; written as scalar loops it stored one float at a
 * stride of R and took ~15% of a small training step. The x86 builds move 8x8
 * (AVX) and 4x4 (SSE) blocks through registers; elsewhere the loop writes the
 * panel in order and reads the R rows as R sequential streams. */
#if defined(RED_SIMD_AVX512) || defined(RED_SIMD_AVX2)
static void transpose8x8_store(const float *src, size_t ld, float *dst, int R) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld), r2 = _mm256_loadu_ps(src + 2 * ld),
           r3 = _mm256_loadu_ps(src + 3 * ld), r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld),
           r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * R, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * R, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * R, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * R, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * R, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * R, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * R, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * R, _mm256_permute2f128_ps(u3, u7, 0x31));
}

static void transpose4x4_store(const float *src, size_t ld, float *dst, int R) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + ld), r2 = _mm_loadu_ps(src + 2 * ld),
           r3 = _mm_loadu_ps(src + 3 * ld);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst + 0 * R, r0);
    _mm_storeu_ps(dst + 1 * R, r1);
    _mm_storeu_ps(dst + 2 * R, r2);
    _mm_storeu_ps(dst + 3 * R, r3);
}
#endif

static void pack_rows_to_panel(const float *src, size_t ld, int rows, int kc, float *dst, int R) {
    int r = 0, p;
#if defined(RED_SIMD_AVX512) || defined(RED_SIMD_AVX2)
    for (; r + 8 <= rows; r += 8) {
        for (p = 0; p + 8 <= kc; p += 8) transpose8x8_store(src + (size_t)r * ld + p, ld, dst + (size_t)p * R + r, R);
        for (; p < kc; p++) {
            int i;
            for (i = 0; i < 8; i++) dst[(size_t)p * R + r + i] = src[(size_t)(r + i) * ld + p];
        }
    }
    for (; r + 4 <= rows; r += 4) {
        for (p = 0; p + 4 <= kc; p += 4) transpose4x4_store(src + (size_t)r * ld + p, ld, dst + (size_t)p * R + r, R);
        for (; p < kc; p++) {
            int i;
            for (i = 0; i < 4; i++) dst[(size_t)p * R + r + i] = src[(size_t)(r + i) * ld + p];
        }
    }
#endif
    if (r == R) return;  /* all rows done above: skip kc empty passes */
    for (p = 0; p < kc; p++) {
        int i;
        for (i = r; i < rows; i++) dst[(size_t)p * R + i] = src[(size_t)i * ld + p];
        for (; i < R; i++) dst[(size_t)p * R + i] = 0.0f;
    }
}

/* dst panel q (R columns wide, kc deep, at dst + q*R*kc) gets src row p's
 * columns [q*R, q*R + R) at row p, zero-padded past n: a row-major block
 * (kc x n, row stride ld) cut into k-major panels. Row p is read once, front
 * to back, for all panels; going panel by panel instead walks each row in
 * R-float pieces at a stride of ld, which for power-of-two ld thrashes a few
 * cache sets (nn at m 4096, n 256, k 768: 0.94x -> 1.0x OpenBLAS). */
static void pack_cols_to_panels(const float *src, size_t ld, int n, int kc, float *dst, int R) {
    int p, q, j;
    for (p = 0; p < kc; p++) {
        const float *row = src + (size_t)p * ld;
#if defined(RED_SIMD_AVX512) || defined(RED_SIMD_AVX2)
        /* rows a page or more apart defeat the hardware prefetcher: ask for
         * the row 8 ahead by hand (tn at m 4096, n 256, k 768: 0.82x -> 0.99x
         * with 4 ahead; 8 ahead, 228-231 -> 233-239 GFLOPS on AVX-512) */
        if (p + 8 < kc)
            for (j = 0; j < n; j += 16) _mm_prefetch((const char *)(row + 8 * ld + j), _MM_HINT_T0);
#endif
        for (q = 0; q * R < n; q++) {
            float *d = dst + (size_t)q * R * kc + (size_t)p * R;
            int w = n - q * R < R ? n - q * R : R;
            memcpy(d, row + (size_t)q * R, (size_t)w * sizeof *d);
            for (j = w; j < R; j++) d[j] = 0.0f;
        }
    }
}

/* op(A)[ic:ic+mc, pc:pc+kc] -> MR-row panels, k-major, zero-padded rows. */
static void gemm_pack_a(const gemm_task *g, int ic, int mc, int pc, int kc, float *ap) {
    const int MR = g->arch->mr;
    int ir;
    if (g->trans == RED_TN) {  /* A is k x m: rows of op(A) are columns of A */
        pack_cols_to_panels(g->A + (size_t)pc * g->lda + ic, (size_t)g->lda, mc, kc, ap, MR);
        return;
    }
    for (ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        pack_rows_to_panel(g->A + (size_t)(ic + ir) * g->lda + pc, (size_t)g->lda, mr, kc, ap + (size_t)ir * kc, MR);
    }
}

/* op(B)[pc:pc+kc, jc:jc+nc] -> NR-column panels, k-major, zero-padded columns. */
static void gemm_pack_b(const gemm_task *g, int pc, int kc, int jc, int nc, float *bp) {
    const int NR = g->arch->nr;
    int jr;
    if (g->trans != RED_NT) {  /* B is k x n */
        pack_cols_to_panels(g->B + (size_t)pc * g->ldb + jc, (size_t)g->ldb, nc, kc, bp, NR);
        return;
    }
    for (jr = 0; jr < nc; jr += NR) {  /* B is n x k: columns of op(B) are rows of B */
        int nr = nc - jr < NR ? nc - jr : NR, j = jc + jr, p;
        const float *b = g->B + (size_t)j * g->ldb;
        size_t ldb = (size_t)g->ldb;
        if (g->parts) {
            p = gemm_part(g, j);
            b = g->Bp[p] + (size_t)(j - g->col0[p]) * g->ldbp[p];
            ldb = (size_t)g->ldbp[p];
        }
        pack_rows_to_panel(b + pc, ldb, nr, kc, bp + (size_t)jr * kc, NR);
    }
}

/* A is read in place (tn: its rows hold op(A)'s MR-wide panels; nn, nt:
 * MR rows of it, lda apart, by kernel_a_rowmajor) while at most this many
 * columns of C share it and its rows are at most this far apart: rows 16 KB
 * apart (lda 4096) fall into a few L2 sets, and AVX2's 4096x256x768 tn
 * dropped to 0.74x OpenBLAS. nn/nt in place, 1 thread, GFLOPS: 64^3 224 ->
 * 248, 128^3 255 -> 267, 256x128x384 248 -> 267 (AVX2: 64^3 105 -> 128,
 * 4096x256x768 nn 121 -> 137). */
#define DIRECT_A_COLS 512
#define DIRECT_A_LD 768

/* op(A)'s rows [ic, ic + mc), k block pc: packed into ap, or, when A is read
 * in place, only the last row panel that no kernel reads in place (zero-padded). */
static void gemm_pack_a_block(const gemm_task *g, int in_place, int ic, int mc, int pc, int kc, float *ap) {
    const gemm_arch *ar = g->arch;
    const int MR = ar->mr, last = (mc - 1) / MR * MR, last_rows = mc - last;
    if (!in_place)
        gemm_pack_a(g, ic, mc, pc, kc, ap);
    else if (g->trans != RED_TN) {  /* nn, nt: only whole MR-row panels in place */
        if (last_rows < MR)
            pack_rows_to_panel(g->A + (size_t)(ic + last) * g->lda + pc, (size_t)g->lda, last_rows, kc, ap, MR);
    } else if (last_rows != MR && last_rows != ar->short_rows[0] && last_rows != ar->short_rows[1])
        pack_cols_to_panels(g->A + (size_t)pc * g->lda + ic + last, (size_t)g->lda, last_rows, kc, ap, MR);
}

/* C[m0:m1, n0:n1] by one thread, with its own packing buffers. */
static void gemm_region(const gemm_task *g, float *ws, int m0, int m1, int n0, int n1) {
    const gemm_arch *ar = g->arch;
    const int MR = ar->mr, NR = ar->nr;
    float *ap = ws;                                 /* mc x kc */
    float *bp = ap + (size_t)ar->mc * ar->kc;       /* kc x nc */
    float *tile = bp + (size_t)ar->kc * ar->nc;     /* MR x NR edge tile */
    /* B (k x n) already holds whole panels in place, a row of NR floats every
     * ldb. With few rows of C to share a packed panel, packing costs more than
     * the strided reads, so read B there and pack only the zero-padded last
     * panel (1 thread, GFLOP/s: 64^3 187 -> 201, 128^3 225 -> 243, 256x768x256
     * 240 -> 253). Strided panels share cache sets, so at more rows or a longer
     * stride packing wins (512^3 250 -> 211). */
    const int direct = g->trans != RED_NT && m1 - m0 <= 256 && g->ldb <= 768;
    /* tn's A (k x m) already holds MR-wide row panels in place, a row every
     * lda floats: read them there too while few columns of C share them
     * (DIRECT_A_COLS); the last panel, if no kernel has its rows, is packed. */
    const int direct_a = g->trans == RED_TN && n1 - n0 <= DIRECT_A_COLS && g->lda <= DIRECT_A_LD;
    const int direct_a_rowmajor =
        g->trans != RED_TN && ar->kernel_a_rowmajor && n1 - n0 <= DIRECT_A_COLS && g->lda <= DIRECT_A_LD;
    int jc, pc, ic, jr, ir, i;
    for (jc = n0; jc < n1; jc += ar->nc) {
        int nc = n1 - jc < ar->nc ? n1 - jc : ar->nc;
        for (pc = 0; pc < g->k; pc += ar->kc) {
            int kc = g->k - pc < ar->kc ? g->k - pc : ar->kc;
            float beta = pc == 0 ? g->beta : 1.0f;
            const int full = nc - nc % NR;  /* columns in whole NR panels */
            if (!g->Bpk[0] && !direct)  /* (B packed beforehand: read from its parts' packing) */
                gemm_pack_b(g, pc, kc, jc, nc, bp);
            else if (!g->Bpk[0] && full < nc)
                gemm_pack_b(g, pc, kc, jc + full, nc - full, bp);
            for (ic = m0; ic < m1; ic += ar->mc) {
                int mc = m1 - ic < ar->mc ? m1 - ic : ar->mc;
                gemm_pack_a_block(g, direct_a || direct_a_rowmajor, ic, mc, pc, kc, ap);
                for (jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR, ldc = g->ldc;
                    const float *bj = bp + (size_t)jr * kc;
                    float *cj = g->C + jc + jr;  /* C's column jc + jr, row 0 */
                    int ldb = NR;
                    if (g->parts) {
                        int p = gemm_part(g, jc + jr);
                        cj = g->Cp[p] + (jc + jr - g->col0[p]);
                        ldc = g->ldcp[p];
                        if (g->Bpk[0])  /* k blocks of pkn columns rounded up to NR, one after another */
                            bj = g->Bpk[p] + (size_t)pc * ((g->pkn[p] + NR - 1) / NR * NR) +
                                 (size_t)(jc + jr - g->col0[p]) * kc;
                    }
                    if (direct) {
                        bj = jr < full ? g->B + (size_t)pc * g->ldb + jc + jr : bp;
                        ldb = jr < full ? g->ldb : NR;
                    }
                    for (ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        float *c = cj + (size_t)(ic + ir) * ldc;
                        const int s = mr <= ar->short_rows[0] ? 0 : mr <= ar->short_rows[1] ? 1 : -1;
                        gemm_ukernel kern = s >= 0 ? ar->kernel_short[s] : ar->kernel;
                        const int whole = mr == MR || (s >= 0 && mr == ar->short_rows[s]);
                        const float *ai = ap + (size_t)(direct_a || direct_a_rowmajor ? 0 : ir) * kc;
                        int lda = MR;
                        if (direct_a && whole) {
                            ai = g->A + (size_t)pc * g->lda + ic + ir;
                            lda = g->lda;
                        } else if (direct_a_rowmajor && mr == MR) {
                            ai = g->A + (size_t)(ic + ir) * g->lda + pc;
                            lda = g->lda;
                            kern = ar->kernel_a_rowmajor;
                        }
                        if (nr == NR && whole) {
                            kern(kc, ai, lda, bj, ldb, c, ldc, g->alpha, beta);
                            continue;
                        }
                        /* Edge: run the same kernel on a padded copy so every element
                         * sees identical arithmetic wherever the tile boundaries fall. */
                        if (beta != 0.0f) {
                            memset(tile, 0, (size_t)MR * NR * sizeof *tile);
                            for (i = 0; i < mr; i++) memcpy(tile + i * NR, c + (size_t)i * ldc, (size_t)nr * sizeof *c);
                        }
                        kern(kc, ai, lda, bj, ldb, tile, NR, g->alpha, beta);
                        for (i = 0; i < mr; i++) memcpy(c + (size_t)i * ldc, tile + i * NR, (size_t)nr * sizeof *c);
                    }
                }
            }
        }
    }
}

static void gemm_thread(void *arg, int ith, int nth) {
    const gemm_task *g = arg;
    int64_t lo, hi;
    float *ws = red_pool_scratch(g->pool, ith);
    if (g->split_rows) {
        int64_t units = (g->m + g->arch->mr - 1) / g->arch->mr;
        red_split_range(units, ith, nth, &lo, &hi);
        lo *= g->arch->mr;
        hi = hi * g->arch->mr < g->m ? hi * g->arch->mr : g->m;
        if (lo < hi) gemm_region(g, ws, (int)lo, (int)hi, 0, g->n);
    } else {
        int64_t units = (g->n + g->arch->nr - 1) / g->arch->nr;
        red_split_range(units, ith, nth, &lo, &hi);
        lo *= g->arch->nr;
        hi = hi * g->arch->nr < g->n ? hi * g->arch->nr : g->n;
        if (lo < hi) gemm_region(g, ws, 0, g->m, (int)lo, (int)hi);
    }
}

/* C = beta*C when there is nothing to multiply (k == 0 or alpha == 0). */
static void gemm_scale_c(int m, int n, float beta, float *C, int ldc) {
    int i, j;
    for (i = 0; i < m; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            for (j = 0; j < n; j++) c[j] = 0.0f;
        else if (beta != 1.0f)
            for (j = 0; j < n; j++) c[j] *= beta;
    }
}

/* One thread per this many flops while the pool's workers spin (see below). */
#define GEMM_FLOPS_AWAKE 2.5e5

/* Runs a filled task: on the calling thread with serial_ws, else on the pool. */
static red_status gemm_launch(gemm_task *g, void *serial_ws) {
    const gemm_arch *arch = g->arch;
    int64_t rows_units, cols_units, units, nth;
    double flops;
    int awake;
    /* the packing buffers and the edge tile must fit one thread's scratch */
    if (((size_t)arch->mc * arch->kc + (size_t)arch->kc * arch->nc + (size_t)arch->mr * arch->nr) *
            sizeof(float) > RED_POOL_SCRATCH_BYTES)
        return RED_E_NOMEM;
    if (serial_ws) {
        gemm_region(g, serial_ws, 0, g->m, 0, g->n);
        return RED_OK;
    }
    /* Each thread packs the whole of the operand it does not split: row slabs
     * duplicate B (k x n), column slabs duplicate A (m x k); duplicate the
     * smaller, unless that leaves too few tiles to go round. */
    rows_units = (g->m + arch->mr - 1) / arch->mr;
    cols_units = (g->n + arch->nr - 1) / arch->nr;
    if (rows_units >= red_pool_size(g->pool) && cols_units >= red_pool_size(g->pool))
        g->split_rows = g->m >= g->n;
    else
        g->split_rows = rows_units >= cols_units;
    units = g->split_rows ? rows_units : cols_units;
    /* Waking a sleeping worker costs up to ~100 us on a VM (128^3 ran slower
     * on 2 threads than on 1; 256^3 gained 1.5x): one thread per 10 MFLOP.
     * Spinning workers start within a microsecond: one per GEMM_FLOPS_AWAKE.
     * A product that ran alone only because they slept wakes them for the
     * next one. Bits do not depend on the split. */
    flops = 2.0 * g->m * (double)g->n * g->k;
    awake = red_pool_awake(g->pool);
    nth = (int64_t)(flops / (awake ? GEMM_FLOPS_AWAKE : 1.0e7));
    if (!awake && nth < 2 && flops >= 2 * GEMM_FLOPS_AWAKE) red_pool_wake(g->pool);
    if (nth > red_pool_size(g->pool)) nth = red_pool_size(g->pool);
    if (nth > units) nth = units;
    if (nth < 1) nth = 1;
    red_pool_run(g->pool, (int)nth, gemm_thread, g);
    return RED_OK;
}

/* serial_ws != NULL: run on the calling thread with that workspace (no pool). */
static red_status gemm_run(const gemm_arch *arch, red_pool *pool, void *serial_ws, red_trans trans,
                           int m, int n, int k, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_task g;
    if ((!pool && !serial_ws) || m < 0 || n < 0 || k < 0 || (trans != RED_NN && trans != RED_NT && trans != RED_TN))
        return RED_E_ARG;
    if (m == 0 || n == 0) return RED_OK;
    if (!C || ldc < n) return RED_E_ARG;
    if (k == 0 || alpha == 0.0f) {
        gemm_scale_c(m, n, beta, C, ldc);
        return RED_OK;
    }
    if (!A || !B) return RED_E_ARG;
    if (trans == RED_TN ? lda < m : lda < k) return RED_E_ARG;
    if (trans == RED_NT ? ldb < k : ldb < n) return RED_E_ARG;
    memset(&g, 0, sizeof g);
    g.arch = arch;
    g.trans = trans;
    g.m = m; g.n = n; g.k = k;
    g.alpha = alpha; g.beta = beta;
    g.A = A; g.B = B; g.C = C;
    g.lda = lda; g.ldb = ldb; g.ldc = ldc;
    g.pool = pool;
    return gemm_launch(&g, serial_ws);
}

/* C_p = alpha A B_pᵀ + beta C_p over parts side by side: one nt product that
 * packs A once. A part that ends off a register tile (but the last) would put
 * two parts' columns in one tile, so those run as separate products. */
red_status red_sgemm_nt_parts(red_pool *pool, int m, int k, float alpha, const float *A, int lda, int parts,
                              const int *n, const float *const *B, const int *ldb, const float *const *packed,
                              float beta, float *const *C, const int *ldc) {
    gemm_task g;
    int p, cols = 0, aligned = 1;
    if (!pool || parts < 1 || parts > RED_GEMM_PARTS || m < 0 || k < 0) return RED_E_ARG;
    for (p = 0; p < parts; p++) {
        if (n[p] < 0 || !B[p] || !C[p] || ldb[p] < k || ldc[p] < n[p]) return RED_E_ARG;
        if (p < parts - 1 && n[p] % arch_simd.nr) aligned = 0;
        cols += n[p];
    }
    if (!aligned || m == 0 || cols == 0 || k == 0 || alpha == 0.0f || !A || lda < k) {
        for (p = 0; p < parts; p++) {
            red_status st = packed ? red_sgemm_nt_packed(pool, NULL, m, n[p], k, alpha, A, lda, packed[p], n[p], beta,
                                                         C[p], ldc[p])
                                   : red_sgemm(pool, RED_NT, m, n[p], k, alpha, A, lda, B[p], ldb[p], beta, C[p],
                                               ldc[p]);
            if (st) return st;
        }
        return RED_OK;
    }
    memset(&g, 0, sizeof g);
    g.arch = &arch_simd;
    g.trans = RED_NT;
    g.m = m; g.n = cols; g.k = k;
    g.alpha = alpha; g.beta = beta;
    g.A = A; g.lda = lda;
    g.pool = pool;
    g.parts = parts;
    for (p = 0; p < parts; p++) {
        g.col0[p + 1] = g.col0[p] + n[p];
        g.Bp[p] = B[p]; g.ldbp[p] = ldb[p];
        g.Cp[p] = C[p]; g.ldcp[p] = ldc[p];
        g.Bpk[p] = packed ? packed[p] : NULL;
        g.pkn[p] = n[p];
    }
    return gemm_launch(&g, NULL);
}

red_status red_sgemm(red_pool *pool, red_trans trans, int m, int n, int k, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc) {
    return gemm_run(&arch_simd, pool, NULL, trans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

red_status red_sgemm_scalar(red_pool *pool, red_trans trans, int m, int n, int k, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta,
                            float *C, int ldc) {
    return gemm_run(&arch_scalar, pool, NULL, trans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

red_status red_sgemm_serial(void *scratch, red_trans trans, int m, int n, int k, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta,
                            float *C, int ldc) {
    if (!scratch) return RED_E_ARG;
    return gemm_run(&arch_simd, NULL, scratch, trans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

int red_sgemm_k_block(void) { return arch_simd.kc; }

size_t red_gemm_nt_packed_floats(int n, int k) {
    const int NR = arch_simd.nr;
    return n < 1 || k < 1 ? 0 : (size_t)(n + NR - 1) / NR * NR * (size_t)k;
}

/* The layout gemm_region reads: k blocks of kc one after another, each what
 * gemm_pack_b makes of all n columns (NR-column panels, zero-padded past n). */
void red_gemm_nt_pack(const float *B, int ldb, int n, int k, float *packed) {
    const int NR = arch_simd.nr, KC = arch_simd.kc, npad = (n + NR - 1) / NR * NR;
    gemm_task g;
    int pc;
    memset(&g, 0, sizeof g);
    g.arch = &arch_simd;
    g.trans = RED_NT;
    g.B = B;
    g.ldb = ldb;
    for (pc = 0; pc < k; pc += KC) gemm_pack_b(&g, pc, k - pc < KC ? k - pc : KC, 0, n, packed + (size_t)pc * npad);
}

red_status red_sgemm_nt_packed(red_pool *pool, void *serial_ws, int m, int n, int k, float alpha, const float *A,
                               int lda, const float *packed, int packed_n, float beta, float *C, int ldc) {
    gemm_task g;
    if ((!pool && !serial_ws) || m < 0 || n < 0 || k < 0 || n > packed_n) return RED_E_ARG;
    if (m == 0 || n == 0) return RED_OK;
    if (!C || ldc < n) return RED_E_ARG;
    if (k == 0 || alpha == 0.0f) {
        gemm_scale_c(m, n, beta, C, ldc);
        return RED_OK;
    }
    if (!A || !packed || lda < k) return RED_E_ARG;
    memset(&g, 0, sizeof g);  /* one part, its B packed */
    g.arch = &arch_simd;
    g.trans = RED_NT;
    g.m = m; g.n = n; g.k = k;
    g.alpha = alpha; g.beta = beta;
    g.A = A; g.lda = lda;
    g.parts = 1;
    g.col0[1] = n;
    g.Cp[0] = C; g.ldcp[0] = ldc;
    g.Bpk[0] = packed; g.pkn[0] = packed_n;
    g.pool = pool;
    return gemm_launch(&g, serial_ws);
}

const char *red_trans_name(red_trans t) {
    return t == RED_NN ? "nn" : t == RED_NT ? "nt" : t == RED_TN ? "tn" : "??";
}

/* ================================================================== SVD */

/* Double-precision vectors of the SIMD path (DV_LANES doubles), for the SVD's
 * kernels; dv_hsum is each path's own order of adding the lanes. */
#if defined(RED_SIMD_AVX512)
#define DV_SIMD 1
#define DV_LANES 8
#define DV __m512d
#define DV_LOAD _mm512_loadu_pd
#define DV_STORE _mm512_storeu_pd
#define DV_SET1 _mm512_set1_pd
#define DV_ZERO _mm512_setzero_pd
#define DV_FMA _mm512_fmadd_pd
#define DV_ADD _mm512_add_pd
#define DV_SUB _mm512_sub_pd
#define DV_MUL _mm512_mul_pd
static double dv_hsum(DV v) { return _mm512_reduce_add_pd(v); }
#elif defined(RED_SIMD_AVX2)
#define DV_SIMD 1
#define DV_LANES 4
#define DV __m256d
#define DV_LOAD _mm256_loadu_pd
#define DV_STORE _mm256_storeu_pd
#define DV_SET1 _mm256_set1_pd
#define DV_ZERO _mm256_setzero_pd
#define DV_FMA _mm256_fmadd_pd
#define DV_ADD _mm256_add_pd
#define DV_SUB _mm256_sub_pd
#define DV_MUL _mm256_mul_pd
static double dv_hsum(DV v) {
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}
#else
#define DV_SIMD 0
#endif

/* Double-precision helpers for the Jacobi sweeps (vectorised where built). */
static double dot_d(const double *x, const double *y, int n) {
    int i = 0;
    /* four accumulators: one FMA chain would wait out its latency each step */
#if DV_SIMD
    DV s0 = DV_ZERO(), s1 = s0, s2 = s0, s3 = s0;
    double s;
    for (; i + 4 * DV_LANES <= n; i += 4 * DV_LANES) {
        s0 = DV_FMA(DV_LOAD(x + i), DV_LOAD(y + i), s0);
        s1 = DV_FMA(DV_LOAD(x + i + DV_LANES), DV_LOAD(y + i + DV_LANES), s1);
        s2 = DV_FMA(DV_LOAD(x + i + 2 * DV_LANES), DV_LOAD(y + i + 2 * DV_LANES), s2);
        s3 = DV_FMA(DV_LOAD(x + i + 3 * DV_LANES), DV_LOAD(y + i + 3 * DV_LANES), s3);
    }
    for (; i + DV_LANES <= n; i += DV_LANES) s0 = DV_FMA(DV_LOAD(x + i), DV_LOAD(y + i), s0);
    s = dv_hsum(DV_ADD(DV_ADD(s0, s1), DV_ADD(s2, s3)));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
#else
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i] * y[i];
        s1 += x[i + 1] * y[i + 1];
        s2 += x[i + 2] * y[i + 2];
        s3 += x[i + 3] * y[i + 3];
    }
    for (; i < n; i++) s0 += x[i] * y[i];
    return (s0 + s1) + (s2 + s3);
#endif
}

/* The dot products of x with DOTS_G vectors y + g ld in one pass over x, and
 * the matching axpys y_g -= s_g x: x is read once for all of them. Each
 * vector's arithmetic is dot_d's, and the axpy's a multiply then a subtract
 * as the plain loop compiles, so the bits are those of one vector at a time.
 * AVX2 has 16 registers: two vectors' four accumulators each, and x's. */
#if defined(RED_SIMD_AVX2)
#define DOTS_G 2
#else
#define DOTS_G 4
#endif
static void dots_d(const double *x, const double *y, size_t ld, int n, double *out) {
    int i = 0, g;
#if DV_SIMD
    DV a[DOTS_G][4];
    for (g = 0; g < DOTS_G; g++) a[g][0] = a[g][1] = a[g][2] = a[g][3] = DV_ZERO();
    for (; i + 4 * DV_LANES <= n; i += 4 * DV_LANES) {
        const DV x0 = DV_LOAD(x + i), x1 = DV_LOAD(x + i + DV_LANES), x2 = DV_LOAD(x + i + 2 * DV_LANES),
                 x3 = DV_LOAD(x + i + 3 * DV_LANES);
        for (g = 0; g < DOTS_G; g++) {
            const double *yg = y + g * ld + i;
            a[g][0] = DV_FMA(x0, DV_LOAD(yg), a[g][0]);
            a[g][1] = DV_FMA(x1, DV_LOAD(yg + DV_LANES), a[g][1]);
            a[g][2] = DV_FMA(x2, DV_LOAD(yg + 2 * DV_LANES), a[g][2]);
            a[g][3] = DV_FMA(x3, DV_LOAD(yg + 3 * DV_LANES), a[g][3]);
        }
    }
    for (; i + DV_LANES <= n; i += DV_LANES)
        for (g = 0; g < DOTS_G; g++) a[g][0] = DV_FMA(DV_LOAD(x + i), DV_LOAD(y + g * ld + i), a[g][0]);
    for (g = 0; g < DOTS_G; g++) out[g] = dv_hsum(DV_ADD(DV_ADD(a[g][0], a[g][1]), DV_ADD(a[g][2], a[g][3])));
    for (; i < n; i++)
        for (g = 0; g < DOTS_G; g++) out[g] += x[i] * y[g * ld + i];
#else
    double a[DOTS_G][4] = {{0.0}};
    int start;
    for (; i + 4 <= n; i += 4)
        for (g = 0; g < DOTS_G; g++) {
            const double *yg = y + g * ld + i;
            a[g][0] += x[i] * yg[0];
            a[g][1] += x[i + 1] * yg[1];
            a[g][2] += x[i + 2] * yg[2];
            a[g][3] += x[i + 3] * yg[3];
        }
    for (start = i, g = 0; g < DOTS_G; g++) {  /* dot_d's scalar tail goes into its first sum */
        for (i = start; i < n; i++) a[g][0] += x[i] * y[g * ld + i];
        out[g] = (a[g][0] + a[g][1]) + (a[g][2] + a[g][3]);
    }
#endif
}

static void axpys_d(double *y, size_t ld, const double *s, const double *x, int n) {
    int i = 0, g;
#if DV_SIMD
    DV sg[DOTS_G];
    for (g = 0; g < DOTS_G; g++) sg[g] = DV_SET1(s[g]);
    for (; i + DV_LANES <= n; i += DV_LANES) {
        const DV x0 = DV_LOAD(x + i);
        for (g = 0; g < DOTS_G; g++) DV_STORE(y + g * ld + i, DV_SUB(DV_LOAD(y + g * ld + i), DV_MUL(sg[g], x0)));
    }
#endif
    for (; i < n; i++)
        for (g = 0; g < DOTS_G; g++) y[g * ld + i] -= s[g] * x[i];
}

/* (x, y) <- (x - t1 y, y + t2 x): a plane rotation with its cosine left out
 * (it goes into the columns' scales), 2 FMAs per element pair where the
 * plain rotation takes 2 multiplies and 2 FMAs. */
static void rot_scaled_d(double *x, double *y, int n, double t1, double t2) {
    int i = 0;
#if defined(RED_SIMD_AVX512)
    __m512d v1 = _mm512_set1_pd(t1), v2 = _mm512_set1_pd(t2);
    for (; i + 16 <= n; i += 16) {
        __m512d x0 = _mm512_loadu_pd(x + i), y0 = _mm512_loadu_pd(y + i);
        __m512d x1 = _mm512_loadu_pd(x + i + 8), y1 = _mm512_loadu_pd(y + i + 8);
        _mm512_storeu_pd(x + i, _mm512_fnmadd_pd(v1, y0, x0));
        _mm512_storeu_pd(y + i, _mm512_fmadd_pd(v2, x0, y0));
        _mm512_storeu_pd(x + i + 8, _mm512_fnmadd_pd(v1, y1, x1));
        _mm512_storeu_pd(y + i + 8, _mm512_fmadd_pd(v2, x1, y1));
    }
    for (; i + 8 <= n; i += 8) {
        __m512d x0 = _mm512_loadu_pd(x + i), y0 = _mm512_loadu_pd(y + i);
        _mm512_storeu_pd(x + i, _mm512_fnmadd_pd(v1, y0, x0));
        _mm512_storeu_pd(y + i, _mm512_fmadd_pd(v2, x0, y0));
    }
#elif defined(RED_SIMD_AVX2)
    __m256d v1 = _mm256_set1_pd(t1), v2 = _mm256_set1_pd(t2);
    for (; i + 4 <= n; i += 4) {
        __m256d x0 = _mm256_loadu_pd(x + i), y0 = _mm256_loadu_pd(y + i);
        _mm256_storeu_pd(x + i, _mm256_fnmadd_pd(v1, y0, x0));
        _mm256_storeu_pd(y + i, _mm256_fmadd_pd(v2, x0, y0));
    }
#endif
    for (; i < n; i++) {
        double xi = x[i], yi = y[i];
        x[i] = xi - t1 * yi;
        y[i] = yi + t2 * xi;
    }
}

/* (x, y) <- (c x - s y, s x + c y) */
static void rot_d(double *x, double *y, int n, double c, double s) {
    int i = 0;
#if defined(RED_SIMD_AVX512)
    __m512d vc = _mm512_set1_pd(c), vs = _mm512_set1_pd(s);
    for (; i + 8 <= n; i += 8) {
        __m512d xi = _mm512_loadu_pd(x + i), yi = _mm512_loadu_pd(y + i);
        _mm512_storeu_pd(x + i, _mm512_fmsub_pd(vc, xi, _mm512_mul_pd(vs, yi)));
        _mm512_storeu_pd(y + i, _mm512_fmadd_pd(vs, xi, _mm512_mul_pd(vc, yi)));
    }
#elif defined(RED_SIMD_AVX2)
    __m256d vc = _mm256_set1_pd(c), vs = _mm256_set1_pd(s);
    for (; i + 4 <= n; i += 4) {
        __m256d xi = _mm256_loadu_pd(x + i), yi = _mm256_loadu_pd(y + i);
        _mm256_storeu_pd(x + i, _mm256_fmsub_pd(vc, xi, _mm256_mul_pd(vs, yi)));
        _mm256_storeu_pd(y + i, _mm256_fmadd_pd(vs, xi, _mm256_mul_pd(vc, yi)));
    }
#endif
    for (; i < n; i++) {
        double xi = x[i], yi = y[i];
        x[i] = c * xi - s * yi;
        y[i] = s * xi + c * yi;
    }
}

/* rot_scaled_d, returning the new x's dot with z from the same pass: the
 * rotation is bound by its stores, so the dot's loads and FMAs come free. */
static double rot_scaled_dot_d(double *x, double *y, const double *z, int n, double t1, double t2) {
    int i = 0;
    double s;
#if defined(RED_SIMD_AVX512)
    __m512d v1 = _mm512_set1_pd(t1), v2 = _mm512_set1_pd(t2), a0 = _mm512_setzero_pd(), a1 = a0;
    for (; i + 16 <= n; i += 16) {
        __m512d x0 = _mm512_loadu_pd(x + i), y0 = _mm512_loadu_pd(y + i);
        __m512d x1 = _mm512_loadu_pd(x + i + 8), y1 = _mm512_loadu_pd(y + i + 8);
        __m512d u0 = _mm512_fnmadd_pd(v1, y0, x0), u1 = _mm512_fnmadd_pd(v1, y1, x1);
        _mm512_storeu_pd(x + i, u0);
        _mm512_storeu_pd(y + i, _mm512_fmadd_pd(v2, x0, y0));
        _mm512_storeu_pd(x + i + 8, u1);
        _mm512_storeu_pd(y + i + 8, _mm512_fmadd_pd(v2, x1, y1));
        a0 = _mm512_fmadd_pd(u0, _mm512_loadu_pd(z + i), a0);
        a1 = _mm512_fmadd_pd(u1, _mm512_loadu_pd(z + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) {
        __m512d x0 = _mm512_loadu_pd(x + i), y0 = _mm512_loadu_pd(y + i);
        __m512d u0 = _mm512_fnmadd_pd(v1, y0, x0);
        _mm512_storeu_pd(x + i, u0);
        _mm512_storeu_pd(y + i, _mm512_fmadd_pd(v2, x0, y0));
        a0 = _mm512_fmadd_pd(u0, _mm512_loadu_pd(z + i), a0);
    }
    s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#elif defined(RED_SIMD_AVX2)
    __m256d v1 = _mm256_set1_pd(t1), v2 = _mm256_set1_pd(t2), a0 = _mm256_setzero_pd(), a1 = a0;
    double tt[4];
    for (; i + 8 <= n; i += 8) {
        __m256d x0 = _mm256_loadu_pd(x + i), y0 = _mm256_loadu_pd(y + i);
        __m256d x1 = _mm256_loadu_pd(x + i + 4), y1 = _mm256_loadu_pd(y + i + 4);
        __m256d u0 = _mm256_fnmadd_pd(v1, y0, x0), u1 = _mm256_fnmadd_pd(v1, y1, x1);
        _mm256_storeu_pd(x + i, u0);
        _mm256_storeu_pd(y + i, _mm256_fmadd_pd(v2, x0, y0));
        _mm256_storeu_pd(x + i + 4, u1);
        _mm256_storeu_pd(y + i + 4, _mm256_fmadd_pd(v2, x1, y1));
        a0 = _mm256_fmadd_pd(u0, _mm256_loadu_pd(z + i), a0);
        a1 = _mm256_fmadd_pd(u1, _mm256_loadu_pd(z + i + 4), a1);
    }
    _mm256_storeu_pd(tt, _mm256_add_pd(a0, a1));
    s = (tt[0] + tt[1]) + (tt[2] + tt[3]);
#else
    double s1 = 0.0;
    s = 0.0;
    for (; i + 2 <= n; i += 2) {
        double x0 = x[i], y0 = y[i], x1 = x[i + 1], y1 = y[i + 1];
        x[i] = x0 - t1 * y0;
        y[i] = y0 + t2 * x0;
        x[i + 1] = x1 - t1 * y1;
        y[i + 1] = y1 + t2 * x1;
        s += x[i] * z[i];
        s1 += x[i + 1] * z[i + 1];
    }
    s += s1;
#endif
    for (; i < n; i++) {
        double xi = x[i], yi = y[i];
        x[i] = xi - t1 * yi;
        y[i] = yi + t2 * xi;
        s += x[i] * z[i];
    }
    return s;
}

typedef struct {
    int ncol, len;      /* columns being orthogonalised, and their length */
    double *w;          /* ncol x len: column j of the working matrix is scale[j] times row j */
    double *vt;         /* ncol x ncol: column j of the accumulated rotations is scale[j]
                         * times row j, or NULL */
    double *scale;      /* ncol: the cosines the fast rotations left out */
    double *norm2;      /* ncol: squared norms of the working columns (scales included) */
    double tol;
    /* the current round of blocks: task t is the block pair (tasks[2t], tasks[2t+1]) of
     * the sweep's column order `slots`; block -1 is a bye; `first` also does the
     * pairs inside each block */
    const int *slots, *tasks;
    int ntasks, bsize, first;
    int *rotated;       /* ntasks: rotations made by each task */
} jacobi_ctx;

/* Column j (and its row of vt) times its scale, which becomes 1. */
static void fold_scale(jacobi_ctx *jr, int j) {
    double d = jr->scale[j], *x = jr->w + (size_t)j * jr->len;
    int i;
    if (d == 1.0) return;
    for (i = 0; i < jr->len; i++) x[i] *= d;
    if (jr->vt) {
        x = jr->vt + (size_t)j * jr->ncol;
        for (i = 0; i < jr->ncol; i++) x[i] *= d;
    }
    jr->scale[j] = 1.0;
}

/* |column j|^2 exactly, after folding its scale in. */
static double exact_norm2(jacobi_ctx *jr, int j) {
    const double *x = jr->w + (size_t)j * jr->len;
    fold_scale(jr, j);
    return dot_d(x, x, jr->len);
}

/* |column p|·|column q|·cos = their dot, scales included. */
static double actual_dot(const jacobi_ctx *jr, int p, int q) {
    return jr->scale[p] * jr->scale[q] * dot_d(jr->w + (size_t)p * jr->len, jr->w + (size_t)q * jr->len, jr->len);
}

/* The Jacobi rotation of columns p and q, whose dot is g, if they are not yet
 * orthogonal; 1 if rotated. When z >= 0, *gz is then the new p's dot with
 * column z, from the rotation's own pass when it rotates. */
static int jacobi_rotate(jacobi_ctx *jr, int p, int q, double g, int z, double *gz) {
    double *wp = jr->w + (size_t)p * jr->len, *wq = jr->w + (size_t)q * jr->len;
    double a = jr->norm2[p], b = jr->norm2[q], dp = jr->scale[p], dq = jr->scale[q], zeta, t, c, t1, t2;
    /* scale-aware test: cosine of the angle between the columns */
    if (a == 0.0 || b == 0.0 || !(fabs(g) > jr->tol * sqrt(a) * sqrt(b))) {
        if (z >= 0) *gz = actual_dot(jr, p, z);
        return 0;
    }
    /* Rutishauser's stable rotation for the 2x2 Gram [[a g][g b]] */
    zeta = (b - a) / (2.0 * g);
    t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
    c = 1.0 / sqrt(1.0 + t * t);
    /* Fast scaled rotation (as LAPACK's xGESVJ): with x = dp x~, y = dq y~,
     * (c x - s y, s x + c y) = (c dp (x~ - t dq/dp y~), c dq (y~ + t dp/dq x~)) */
    t1 = t * (dq / dp);
    t2 = t * (dp / dq);
    if (z >= 0) *gz = c * dp * jr->scale[z] * rot_scaled_dot_d(wp, wq, jr->w + (size_t)z * jr->len, jr->len, t1, t2);
    else rot_scaled_d(wp, wq, jr->len, t1, t2);
    if (jr->vt) rot_scaled_d(jr->vt + (size_t)p * jr->ncol, jr->vt + (size_t)q * jr->ncol, jr->ncol, t1, t2);
    jr->scale[p] = c * dp;
    jr->scale[q] = c * dq;
    /* far below 1 only after hundreds of large rotations in one sweep */
    if (jr->scale[p] < 1e-100) fold_scale(jr, p);
    if (jr->scale[q] < 1e-100) fold_scale(jr, q);
    /* The new norms by the 2x2 update, a' = a - t g, b' = b + t g, exact but
     * for rounding relative to a and b; where cancellation leaves fewer than
     * 9 digits, computed again. Every sweep starts from exact norms. */
    jr->norm2[p] = a - t * g;
    jr->norm2[q] = b + t * g;
    if (!(jr->norm2[p] > 1e-7 * a)) jr->norm2[p] = exact_norm2(jr, p);
    if (!(jr->norm2[q] > 1e-7 * b)) jr->norm2[q] = exact_norm2(jr, q);
    return 1;
}

/* The pairs (p, q[(start + r) % nq]) for r = 0.., in turn: p stays in L1, and
 * each rotation's pass also takes the dot for the next pair. */
static int jacobi_row(jacobi_ctx *jr, int p, const int *q, int nq, int start) {
    int r, rot = 0, cur = q[start % nq];
    double g = actual_dot(jr, p, cur), gn = 0.0;
    for (r = 0; r < nq; r++) {
        const int next = r + 1 < nq ? q[(start + r + 1) % nq] : -1;
        rot += jacobi_rotate(jr, p, cur, g, next, &gn);
        g = gn;
        cur = next;
    }
    return rot;
}

/* Every pair inside the n columns c[0..n) once, by rows (the classic cyclic
 * order), so each row's rotations carry the next pair's dot. */
static int jacobi_block_inner(jacobi_ctx *jr, const int *c, int n) {
    int i, rot = 0;
    for (i = 0; i + 1 < n; i++) rot += jacobi_row(jr, c[i], c + i + 1, n - i - 1, 0);
    return rot;
}

/* The block pairs of one round; blocks are disjoint, so the threads never touch
 * the same column, and each task's rotations run in a fixed order. */
static void jacobi_round_thread(void *arg, int ith, int nth) {
    jacobi_ctx *jr = arg;
    int64_t lo, hi, t;
    red_split_range(jr->ntasks, ith, nth, &lo, &hi);
    for (t = lo; t < hi; t++) {
        int bi = jr->tasks[2 * t], bj = jr->tasks[2 * t + 1], rot = 0, ni = 0, nj = 0, i;
        const int *ci = NULL, *cj = NULL;
        if (bi >= 0) {
            ci = jr->slots + (size_t)bi * jr->bsize;
            ni = jr->ncol - bi * jr->bsize < jr->bsize ? jr->ncol - bi * jr->bsize : jr->bsize;
        }
        if (bj >= 0) {
            cj = jr->slots + (size_t)bj * jr->bsize;
            nj = jr->ncol - bj * jr->bsize < jr->bsize ? jr->ncol - bj * jr->bsize : jr->bsize;
        }
        if (jr->first) {
            if (ni) rot += jacobi_block_inner(jr, ci, ni);
            if (nj) rot += jacobi_block_inner(jr, cj, nj);
        }
        /* the cross pairs: each column of block i against all of block j,
         * starting on a shifted diagonal, so the column stays in L1 */
        if (ni && nj)
            for (i = 0; i < ni; i++) rot += jacobi_row(jr, ci[i], cj, nj, i);
        jr->rotated[t] = rot;
    }
}

static void norms_thread(void *arg, int ith, int nth) {
    jacobi_ctx *jr = arg;
    int64_t lo, hi, j;
    red_split_range(jr->ncol, ith, nth, &lo, &hi);
    for (j = lo; j < hi; j++) jr->norm2[j] = exact_norm2(jr, (int)j);
}

static void complete_orthonormal(double *q, int nrow, int len, const int *good) {
    int j, i, c, pass, cand = 0;
    double *r = malloc((size_t)len * sizeof *r);
    char *ok = malloc((size_t)nrow);
    if (!r || !ok) goto done;
    for (j = 0; j < nrow; j++) ok[j] = (char)good[j];
    for (j = 0; j < nrow; j++) {
        if (ok[j]) continue;
        for (; cand < len; cand++) {
            double nr;
            memset(r, 0, (size_t)len * sizeof *r);
            r[cand] = 1.0;
            for (pass = 0; pass < 2; pass++)
                for (c = 0; c < nrow; c++) {
                    const double *u = q + (size_t)c * len;
                    double d;
                    if (!ok[c]) continue;
                    d = dot_d(u, r, len);
                    for (i = 0; i < len; i++) r[i] -= d * u[i];
                }
            nr = sqrt(dot_d(r, r, len));
            /* sum over all e_i of the residual^2 is len - #good >= 1, so some
             * candidate has residual^2 >= 1/len; accept anything above half that */
            if (nr * nr >= 0.5 / len) {
                for (i = 0; i < len; i++) q[(size_t)j * len + i] = r[i] / nr;
                ok[j] = 1;
                cand++;
                break;
            }
        }
    }
done:
    free(r);
    free(ok);
}

typedef struct {
    double sigma;
    int idx;
} sv_index;

static int sv_index_cmp(const void *x, const void *y) {
    const sv_index *a = x, *b = y;
    if (a->sigma != b->sigma) return a->sigma > b->sigma ? -1 : 1;
    return a->idx - b->idx;  /* stable among ties: deterministic order */
}

/* ------------------------------------------------------------------ QR with column pivoting */

/* The len x ncol matrix M (len >= ncol) is stored by columns: column j is
 * w + j*len. qr_pivoted overwrites it with Householder QR with column pivoting
 * (LAPACK's dgeqp3 in its unblocked form): M P = Q R, R[i][j] = w[j*len + i]
 * for i <= j, reflector k is v_k = (1, w[k*len + k+1 .. len)) with tau[k],
 * and perm[k] is the column of M now in position k.
 * Why: one-sided Jacobi on Rᵀ needs fewer sweeps than on M (the pivoting sorts
 * and grades the rows of R; Drmač & Veselić 2008), and for tall M it works on
 * ncol-long columns instead of len-long ones. */
typedef struct {
    double *w;
    int len, ncol, k;
    double tau;
    double *pnorm, *onorm;  /* norms of the unreduced part, and when last computed exactly */
} qr_step;

/* Applies reflector k to columns k+1.. and downdates their partial norms; each
 * column is one thread's, in a fixed order, so threads do not change the bits. */
static void qr_step_thread(void *arg, int ith, int nth) {
    qr_step *q = arg;
    const int k = q->k, len = q->len, rest = len - k - 1;
    const double *v = q->w + (size_t)k * len;
    const double tol3z = sqrt(DBL_EPSILON);
    int64_t lo, hi, j;
    red_split_range(q->ncol - k - 1, ith, nth, &lo, &hi);
    /* H_k on the columns, DOTS_G at a time (v read once for them), the rest
     * one by one: the same bits either way */
    for (j = k + 1 + lo; q->tau != 0.0 && j < k + 1 + hi; j += DOTS_G) {
        double *c = q->w + (size_t)j * len, dot[DOTS_G], sg[DOTS_G];
        int g, i;
        if (j + DOTS_G > k + 1 + hi) {
            for (; j < k + 1 + hi; j++, c += len) {
                sg[0] = q->tau * (c[k] + dot_d(v + k + 1, c + k + 1, rest));
                c[k] -= sg[0];
                for (i = k + 1; i < len; i++) c[i] -= sg[0] * v[i];
            }
            break;
        }
        dots_d(v + k + 1, c + k + 1, (size_t)len, rest, dot);
        for (g = 0; g < DOTS_G; g++) {
            sg[g] = q->tau * (c[(size_t)g * len + k] + dot[g]);
            c[(size_t)g * len + k] -= sg[g];
        }
        axpys_d(c + k + 1, (size_t)len, sg, v + k + 1, rest);
    }
    for (j = k + 1 + lo; j < k + 1 + hi; j++) {
        double *c = q->w + (size_t)j * len;
        /* LAPACK's downdate of |c[k+1..]|, recomputed once cancellation eats
         * half the digits (Drmač & Bujanović 2008) */
        if (q->pnorm[j] != 0.0) {
            double t = fabs(c[k]) / q->pnorm[j], t2;
            t = (1.0 + t) * (1.0 - t);
            if (t < 0.0) t = 0.0;
            t2 = t * (q->pnorm[j] / q->onorm[j]) * (q->pnorm[j] / q->onorm[j]);
            if (t2 <= tol3z) {
                q->pnorm[j] = sqrt(dot_d(c + k + 1, c + k + 1, rest));
                q->onorm[j] = q->pnorm[j];
            } else {
                q->pnorm[j] *= sqrt(t);
            }
        }
    }
}

static void qr_pivoted(red_pool *pool, int nth, double *w, int len, int ncol, int *perm, double *tau,
                       double *pnorm, double *onorm) {
    qr_step q;
    double tiny = 0.0;
    int j, k;
    q.w = w;
    q.len = len;
    q.ncol = ncol;
    q.pnorm = pnorm;
    q.onorm = onorm;
    for (j = 0; j < ncol; j++) {
        const double *c = w + (size_t)j * len;
        perm[j] = j;
        pnorm[j] = onorm[j] = sqrt(dot_d(c, c, len));
        if (pnorm[j] > tiny) tiny = pnorm[j];
    }
    /* What is left below len*eps of the largest column is rounding residue of
     * exact rank deficiency (the same cut as the Jacobi sweeps make). Reducing
     * it further shrinks it by eps a step until sums of squares underflow and
     * the reflectors stop being orthogonal, so it becomes exactly zero. */
    tiny *= len * DBL_EPSILON;
    for (k = 0; k < ncol; k++) {
        double *c, alpha, xnorm;
        int p = k;
        for (j = k + 1; j < ncol; j++)
            if (pnorm[j] > pnorm[p]) p = j;
        if (p != k) {
            double *a = w + (size_t)k * len, *b = w + (size_t)p * len, t;
            int i = perm[p];
            perm[p] = perm[k];
            perm[k] = i;
            for (i = 0; i < len; i++) {
                t = a[i];
                a[i] = b[i];
                b[i] = t;
            }
            t = pnorm[p];
            pnorm[p] = pnorm[k];
            pnorm[k] = t;
            t = onorm[p];
            onorm[p] = onorm[k];
            onorm[k] = t;
        }
        if (pnorm[k] <= tiny) {
            for (j = k; j < ncol; j++) {
                memset(w + (size_t)j * len + k, 0, (size_t)(len - k) * sizeof *w);
                tau[j] = 0.0;
            }
            break;
        }
        /* the reflector (dlarfg): H (alpha, x) = (beta, 0), |beta| = |(alpha, x)| */
        c = w + (size_t)k * len;
        alpha = c[k];
        xnorm = k + 1 < len ? sqrt(dot_d(c + k + 1, c + k + 1, len - k - 1)) : 0.0;
        if (xnorm == 0.0) {
            tau[k] = 0.0;  /* already reduced: H = I */
        } else {
            double beta = -copysign(hypot(alpha, xnorm), alpha), scale = 1.0 / (alpha - beta);
            int i;
            tau[k] = (beta - alpha) / beta;
            for (i = k + 1; i < len; i++) c[i] *= scale;
            c[k] = beta;
        }
        q.k = k;
        q.tau = tau[k];
        if (k + 1 < ncol) {
            /* one dispatch per column step: worth it only for a large trailing matrix */
            if (pool && nth > 1 && (double)(len - k) * (ncol - k - 1) >= 2.0e5) red_pool_run(pool, nth, qr_step_thread, &q);
            else qr_step_thread(&q, 0, 1);
        }
    }
}

/* ------------------------------------------------------------------ one-sided Jacobi */

/* Orthogonalises the ncol rows of w (each len long) by one-sided Jacobi
 * rotations, accumulating them into vt (ncol x ncol, starts as I) when vt is
 * not NULL. Returns 1 when a sweep rotated nothing, 0 at the sweep cap. */
/* A sweep's start: exact norms, rounding residue zeroed, and slots[] the
 * columns by descending norm (after de Rijk 1989), so block t holds the t-th
 * group of norms. */
static void seat_columns(red_pool *pool, int nth, jacobi_ctx *jr, sv_index *order, int *slots) {
    double mx = 0.0, *w = jr->w, *norm2 = jr->norm2;
    const int ncol = jr->ncol, len = jr->len;
    int j;
    if (pool && nth > 1) red_pool_run(pool, nth, norms_thread, jr);
    else norms_thread(jr, 0, 1);
    /* Columns below len*eps of the largest are rounding residue of exact
     * cancellation (e.g. parallel columns): their direction is noise that no
     * rotation can make orthogonal. Make them exactly zero; the orthonormal
     * completion gives them clean directions. */
    for (j = 0; j < ncol; j++) mx = norm2[j] > mx ? norm2[j] : mx;
    for (j = 0; j < ncol; j++)
        if (norm2[j] > 0.0 && norm2[j] <= mx * (len * DBL_EPSILON) * (len * DBL_EPSILON)) {
            memset(w + (size_t)j * len, 0, (size_t)len * sizeof *w);
            norm2[j] = 0.0;
        }
    for (j = 0; j < ncol; j++) {
        order[j].sigma = norm2[j];
        order[j].idx = j;
    }
    qsort(order, (size_t)ncol, sizeof *order, sv_index_cmp);
    for (j = 0; j < ncol; j++) slots[j] = order[j].idx;
}

static int round_up_4(int n) { return (n + 3) / 4 * 4; }

/* Tiles: a sweep meets every pair of column blocks once (circle method over
 * blocks), and a block pair does all its column pairs while its columns (and
 * their rows of vt) stay in L2: about 512 KB for the two blocks. A multiple of
 * 4 blocks gives each of 2 threads the same number of block pairs a round;
 * never from the thread count, which would change the bits (2 threads, 256^2:
 * 0.027 -> 0.015 s; 1 thread unchanged or faster). */
static int jacobi_block_size(int ncol, int len, int with_vt) {
    const size_t col_bytes = (size_t)(len + (with_vt ? ncol : 0)) * sizeof(double);
    int bsize = (int)((256u << 10) / col_bytes), nb;
    if (bsize < 8) bsize = 8;
    if (bsize > 128) bsize = 128;
    nb = (ncol + bsize - 1) / bsize;
    if ((ncol + round_up_4(nb) - 1) / round_up_4(nb) >= 8) bsize = (ncol + round_up_4(nb) - 1) / round_up_4(nb);
    return bsize;
}

static int jacobi_orthogonalize(red_pool *pool, double *w, double *vt, int ncol, int len, red_svd_info *info) {
    const int max_sweeps = 60;  /* Jacobi converges quadratically: ~6-12 sweeps in practice */
    const int bsize = jacobi_block_size(ncol, len, vt != NULL);
    int nb = (ncol + bsize - 1) / bsize, nbs, i, sweep, round, converged = 0, total_rot = 0, nth;
    double *norm2 = malloc((size_t)ncol * sizeof *norm2), *scale = malloc((size_t)ncol * sizeof *scale);
    int *slots = NULL, *bslots = NULL, *tasks = NULL, *rotated = NULL;
    sv_index *order = malloc((size_t)ncol * sizeof *order);
    jacobi_ctx jr;
    nbs = nb + (nb & 1);  /* an odd block count gets a bye */
    slots = malloc((size_t)ncol * sizeof *slots);
    bslots = malloc((size_t)nbs * sizeof *bslots);
    tasks = malloc((size_t)nbs * sizeof *tasks);
    rotated = malloc((size_t)(nbs / 2) * sizeof *rotated);
    if (!norm2 || !scale || !slots || !bslots || !tasks || !rotated || !order) {
        converged = -1;
        goto out;
    }
    for (i = 0; i < ncol; i++) scale[i] = 1.0;
    /* threads only when a round has a block pair for each and enough work to
     * pay for waking them (measured, 2 threads: 256^2 1.5x, 512^2 1.7x faster,
     * 128^2 no gain) */
    nth = red_pool_size(pool);
    if (nth > nbs / 2) nth = nbs / 2;
    if ((double)len * ncol < 5.0e4) nth = 1;
    jr.ncol = ncol;
    jr.len = len;
    jr.w = w;
    jr.vt = vt;
    jr.norm2 = norm2;
    jr.scale = scale;
    jr.slots = slots;
    jr.tasks = tasks;
    jr.bsize = bsize;
    jr.rotated = rotated;
    /* GSL's 10 M eps: well above the rounding of a length-len dot product, so a
     * pair whose cosine is pure rounding noise is not rotated forever. The
     * results are floats: a cosine below eps_f/8 cannot move them, so short
     * columns stop there (LAPACK's sgesvj stops at sqrt(len) eps_f). */
    jr.tol = 10.0 * len * DBL_EPSILON;
    if (jr.tol < FLT_EPSILON / 8) jr.tol = FLT_EPSILON / 8;

    for (sweep = 0; sweep < max_sweeps && !converged; sweep++) {
        int sweep_rot = 0;
        seat_columns(pool, nth, &jr, order, slots);
        for (i = 0; i < nbs; i++) bslots[i] = i < nb ? i : -1;
        /* circle method over blocks: slot 0 fixed, the others rotate */
        for (round = 0; round < (nbs > 1 ? nbs - 1 : 1); round++) {
            int np = 0, t;
            for (i = 0; i < nbs / 2; i++) {
                int p = bslots[i], q = bslots[nbs - 1 - i];
                if (p < 0 && q < 0) continue;
                if (round > 0 && (p < 0 || q < 0)) continue;  /* a bye has no cross pairs */
                tasks[2 * np] = p < q ? p : q;
                tasks[2 * np + 1] = p < q ? q : p;
                if (tasks[2 * np] < 0) {  /* the bye second */
                    tasks[2 * np] = tasks[2 * np + 1];
                    tasks[2 * np + 1] = -1;
                }
                np++;
            }
            jr.ntasks = np;
            jr.first = round == 0;
            if (pool && nth > 1 && np >= nth) red_pool_run(pool, nth, jacobi_round_thread, &jr);
            else jacobi_round_thread(&jr, 0, 1);
            for (t = 0; t < np; t++) sweep_rot += rotated[t];
            if (nbs > 1) {
                t = bslots[nbs - 1];
                for (i = nbs - 1; i > 1; i--) bslots[i] = bslots[i - 1];
                bslots[1] = t;
            }
        }
        total_rot += sweep_rot;
        if (sweep_rot == 0) converged = 1;
    }
    for (i = 0; i < ncol; i++) fold_scale(&jr, i);  /* scales remain after a capped run */
    if (info) {
        info->sweeps = sweep;
        info->rotations = total_rot;
    }
out:
    free(norm2);
    free(scale);
    free(slots);
    free(bslots);
    free(tasks);
    free(rotated);
    free(order);
    return converged;
}

/* The long singular vectors: column j is Q (vt row order[j].idx, 0), with
 * Q = H_0 ... H_{ncol-1} applied WY_NB reflectors at a time in compact WY
 * form, Q_b = I - V T Vᵀ (LAPACK's dlarft and dlarfb): Y -= V (T (Vᵀ Y)) on
 * WY_G columns held row by row. A reflector at a time, each one streamed the
 * columns through L2 twice (4096x256: 6 GB); a block does it once for WY_NB
 * of them (4096x256 with vectors, 1 thread: AVX-512 78 -> 53 ms, AVX2 128 ->
 * 66 ms). V is kept row by row per block, as much memory again as the QR's.
 * Threads take whole groups of columns, so they do not change the bits. */
#if defined(RED_SIMD_AVX512)
#define WY_NB 16  /* reflectors per block: W's rows are registers (16 of 32) */
#else
#define WY_NB 8   /* AVX2 has 16 registers */
#endif
#if DV_SIMD
#define WY_G DV_LANES  /* columns per group: a row of the group is one register */
#else
#define WY_G 4
#endif

typedef struct {
    const double *vb;   /* per block b: rows k0.. of V, WY_NB per row (zeros above the unit diagonal) */
    const double *t;    /* per block: WY_NB x WY_NB upper-triangular T */
    const double *vt;   /* the accumulated rotations */
    const sv_index *order;
    float *out;         /* len x ncol row-major */
    double *scratch;    /* len x WY_G per thread */
    int len, ncol, nblocks;
} left_vectors_task;

/* Where block b's V starts: block c holds rows c WY_NB .. len, WY_NB each. */
static size_t wy_block_offset(int len, int b) {
    return ((size_t)b * len - (size_t)WY_NB * b * (b - 1) / 2) * WY_NB;
}

/* T of reflectors k0.. (nb of them, columns of w with the unit diagonal
 * implied): T[c][c] = tau_c, T[0:c, c] = -tau_c T[0:c, 0:c] V[:, 0:c]ᵀ v_c. */
static void wy_block_t(const double *w, const double *tau, int len, int k0, int nb, double *t) {
    double dots[WY_NB];
    int c, r, q;
    memset(t, 0, (size_t)WY_NB * WY_NB * sizeof *t);
    for (c = 0; c < nb; c++) {
        const int k = k0 + c;
        const double *vc = w + (size_t)k * len;
        for (r = 0; r < c; r++) {
            const double *vr = w + (size_t)(k0 + r) * len;
            dots[r] = vr[k] + dot_d(vr + k + 1, vc + k + 1, len - k - 1);
        }
        for (r = 0; r < c; r++) {
            double s = 0.0;
            for (q = r; q < c; q++) s += t[r * WY_NB + q] * dots[q];
            t[r * WY_NB + c] = -tau[k] * s;
        }
        t[c * WY_NB + c] = tau[k];
    }
}

/* W (WY_NB x WY_G) = Vᵀ Y over rows [0, rows) of a block's V and the group's Y. */
static void wy_vt_y(const double *v, const double *y, int rows, double w[WY_NB][WY_G]) {
    int i, c;
#if DV_SIMD
    DV acc[WY_NB];
    for (c = 0; c < WY_NB; c++) acc[c] = DV_ZERO();
    for (i = 0; i < rows; i++) {
        const DV yi = DV_LOAD(y + (size_t)i * WY_G);
        for (c = 0; c < WY_NB; c++) acc[c] = DV_FMA(DV_SET1(v[(size_t)i * WY_NB + c]), yi, acc[c]);
    }
    for (c = 0; c < WY_NB; c++) DV_STORE(w[c], acc[c]);
#else
    int g;
    memset(w, 0, sizeof(double) * WY_NB * WY_G);
    for (i = 0; i < rows; i++)
        for (c = 0; c < WY_NB; c++)
            for (g = 0; g < WY_G; g++) w[c][g] += v[(size_t)i * WY_NB + c] * y[(size_t)i * WY_G + g];
#endif
}

/* Y -= V W over rows [0, rows), four rows at a time: each row's sum is a
 * chain of WY_NB multiply-adds, four chains keep the units busy. */
static void wy_y_minus_vw(const double *v, double *y, int rows, const double w[WY_NB][WY_G]) {
    int i, c;
#if DV_SIMD
    DV wc[WY_NB];
    for (c = 0; c < WY_NB; c++) wc[c] = DV_LOAD(w[c]);
    for (i = 0; i + 4 <= rows; i += 4) {
        DV s0 = DV_ZERO(), s1 = s0, s2 = s0, s3 = s0;
        const double *vi = v + (size_t)i * WY_NB;
        double *yi = y + (size_t)i * WY_G;
        for (c = 0; c < WY_NB; c++) {
            s0 = DV_FMA(DV_SET1(vi[c]), wc[c], s0);
            s1 = DV_FMA(DV_SET1(vi[WY_NB + c]), wc[c], s1);
            s2 = DV_FMA(DV_SET1(vi[2 * WY_NB + c]), wc[c], s2);
            s3 = DV_FMA(DV_SET1(vi[3 * WY_NB + c]), wc[c], s3);
        }
        DV_STORE(yi, DV_SUB(DV_LOAD(yi), s0));
        DV_STORE(yi + WY_G, DV_SUB(DV_LOAD(yi + WY_G), s1));
        DV_STORE(yi + 2 * WY_G, DV_SUB(DV_LOAD(yi + 2 * WY_G), s2));
        DV_STORE(yi + 3 * WY_G, DV_SUB(DV_LOAD(yi + 3 * WY_G), s3));
    }
    for (; i < rows; i++) {
        DV s0 = DV_ZERO();
        for (c = 0; c < WY_NB; c++) s0 = DV_FMA(DV_SET1(v[(size_t)i * WY_NB + c]), wc[c], s0);
        DV_STORE(y + (size_t)i * WY_G, DV_SUB(DV_LOAD(y + (size_t)i * WY_G), s0));
    }
#else
    for (i = 0; i < rows; i += 4) {
        const int nr = rows - i < 4 ? rows - i : 4;
        double s[4][WY_G];
        int g, r;
        memset(s, 0, sizeof s);
        for (c = 0; c < WY_NB; c++)
            for (r = 0; r < nr; r++)
                for (g = 0; g < WY_G; g++) s[r][g] += v[(size_t)(i + r) * WY_NB + c] * w[c][g];
        for (r = 0; r < nr; r++)
            for (g = 0; g < WY_G; g++) y[(size_t)(i + r) * WY_G + g] -= s[r][g];
    }
#endif
}

static void left_vectors_group(const left_vectors_task *t, int j0, double *y) {
    const int len = t->len, ncol = t->ncol;
    int b, i, c, d, g;
    memset(y, 0, (size_t)len * WY_G * sizeof *y);
    for (g = 0; g < WY_G && j0 + g < ncol; g++) {
        const double *z = t->vt + (size_t)t->order[j0 + g].idx * ncol;
        for (i = 0; i < ncol; i++) y[(size_t)i * WY_G + g] = z[i];
    }
    for (b = t->nblocks - 1; b >= 0; b--) {
        const int k0 = b * WY_NB;
        const double *vb = t->vb + wy_block_offset(len, b), *tb = t->t + (size_t)b * WY_NB * WY_NB;
        double wk[WY_NB][WY_G], w2[WY_NB][WY_G];
        wy_vt_y(vb, y + (size_t)k0 * WY_G, len - k0, wk);
        for (c = 0; c < WY_NB; c++) {  /* W = T W */
            double s[WY_G] = {0.0};
            for (d = c; d < WY_NB; d++)
                for (g = 0; g < WY_G; g++) s[g] += tb[c * WY_NB + d] * wk[d][g];
            for (g = 0; g < WY_G; g++) w2[c][g] = s[g];
        }
        wy_y_minus_vw(vb, y + (size_t)k0 * WY_G, len - k0, (const double (*)[WY_G])w2);
    }
    for (i = 0; i < len; i++)
        for (g = 0; g < WY_G && j0 + g < ncol; g++) t->out[(size_t)i * ncol + j0 + g] = (float)y[(size_t)i * WY_G + g];
}

static void left_vectors_thread(void *arg, int ith, int nth) {
    const left_vectors_task *t = arg;
    int64_t lo, hi, gi;
    red_split_range((t->ncol + WY_G - 1) / WY_G, ith, nth, &lo, &hi);
    for (gi = lo; gi < hi; gi++) left_vectors_group(t, (int)gi * WY_G, t->scratch + (size_t)ith * t->len * WY_G);
}

/* Returns -1 when out of memory. */
static int left_vectors(red_pool *pool, int nth, const double *w, const double *tau, const double *vt,
                        const sv_index *order, int len, int ncol, float *out) {
    left_vectors_task lt;
    double *vb, *t, *scratch;
    int b, c, i;
    lt.len = len;
    lt.ncol = ncol;
    lt.nblocks = (ncol + WY_NB - 1) / WY_NB;
    vb = red_malloc_aligned(wy_block_offset(len, lt.nblocks) * sizeof *vb);
    t = malloc((size_t)lt.nblocks * WY_NB * WY_NB * sizeof *t);
    scratch = red_malloc_aligned((size_t)(nth > 0 ? nth : 1) * len * WY_G * sizeof *scratch);
    if (!vb || !t || !scratch) {
        red_free_aligned(vb);
        free(t);
        red_free_aligned(scratch);
        return -1;
    }
    lt.vb = vb;
    for (b = 0; b < lt.nblocks; b++) {
        const int k0 = b * WY_NB, nb = ncol - k0 < WY_NB ? ncol - k0 : WY_NB;
        double *v = vb + wy_block_offset(len, b);
        memset(v, 0, (size_t)(len - k0) * WY_NB * sizeof *v);
        for (c = 0; c < nb; c++) {
            const double *col = w + (size_t)(k0 + c) * len;
            v[(size_t)c * WY_NB + c] = 1.0;
            for (i = k0 + c + 1; i < len; i++) v[(size_t)(i - k0) * WY_NB + c] = col[i];
        }
        wy_block_t(w, tau, len, k0, nb, t + (size_t)b * WY_NB * WY_NB);
    }
    lt.t = t;
    lt.vt = vt;
    lt.order = order;
    lt.out = out;
    lt.scratch = scratch;
    if (pool && nth > 1 && (double)len * ncol * ncol >= 1.0e7) red_pool_run(pool, nth, left_vectors_thread, &lt);
    else left_vectors_thread(&lt, 0, 1);
    red_free_aligned(vb);
    free(t);
    red_free_aligned(scratch);
    return 0;
}

/* sigma_j = |w_j| (exact), sorted descending */
static void sigmas_sorted(const double *x, int ncol, sv_index *order) {
    int j;
    for (j = 0; j < ncol; j++) {
        const double *c = x + (size_t)j * ncol;
        order[j].sigma = sqrt(dot_d(c, c, ncol));
        order[j].idx = j;
    }
    qsort(order, (size_t)ncol, sizeof *order, sv_index_cmp);
}

/* V_x without accumulating rotations: X V_x = W with X = Rᵀ lower triangular,
 * so V_x = R⁻ᵀ W by forward substitution (ncol³ flops against the sweeps'
 * 6 ncol flops per rotation for the accumulation). R[k][i] for k <= i is
 * w[i*len + k], one contiguous run per i. Right-hand sides go SOLVE_RHS at a
 * time, so a column of R is read once per group; a group is one thread's, so
 * threads do not change the bits. */
#define SOLVE_RHS 16
#define SOLVE_MAX_COND 1e6
typedef struct {
    const double *r;   /* qr_pivoted's output (R on and above the diagonal) */
    const double *x;   /* W: column p is row p */
    double *vt;        /* out: row p = column p of V_x */
    double *scratch;   /* ncol x SOLVE_RHS per thread */
    int len, ncol;
} solve_task;

/* vi[j] <- (vi[j] - sum_{k<i} ri[k] v[k][j]) / ri[i] for the SOLVE_RHS
 * right-hand sides; two partial sums over k halve the dependent chain. */
static void solve_row(const double *ri, const double *v, int i, double *vi) {
    int k = 0, j;
#if defined(RED_SIMD_AVX512)
    __m512d a0 = _mm512_loadu_pd(vi), a1 = _mm512_loadu_pd(vi + 8), b0 = _mm512_setzero_pd(), b1 = b0, d;
    for (; k + 1 < i; k += 2) {
        const double *v0 = v + (size_t)k * SOLVE_RHS;
        __m512d r0 = _mm512_set1_pd(ri[k]), r1 = _mm512_set1_pd(ri[k + 1]);
        a0 = _mm512_fnmadd_pd(r0, _mm512_loadu_pd(v0), a0);
        a1 = _mm512_fnmadd_pd(r0, _mm512_loadu_pd(v0 + 8), a1);
        b0 = _mm512_fnmadd_pd(r1, _mm512_loadu_pd(v0 + 16), b0);
        b1 = _mm512_fnmadd_pd(r1, _mm512_loadu_pd(v0 + 24), b1);
    }
    if (k < i) {
        __m512d r0 = _mm512_set1_pd(ri[k]);
        a0 = _mm512_fnmadd_pd(r0, _mm512_loadu_pd(v + (size_t)k * SOLVE_RHS), a0);
        a1 = _mm512_fnmadd_pd(r0, _mm512_loadu_pd(v + (size_t)k * SOLVE_RHS + 8), a1);
    }
    d = _mm512_set1_pd(ri[i]);
    _mm512_storeu_pd(vi, _mm512_div_pd(_mm512_add_pd(a0, b0), d));
    _mm512_storeu_pd(vi + 8, _mm512_div_pd(_mm512_add_pd(a1, b1), d));
    (void)j;
#elif defined(RED_SIMD_AVX2)
    __m256d a[4], b[4], d;
    for (j = 0; j < 4; j++) {
        a[j] = _mm256_loadu_pd(vi + 4 * j);
        b[j] = _mm256_setzero_pd();
    }
    for (; k + 1 < i; k += 2) {
        const double *v0 = v + (size_t)k * SOLVE_RHS;
        __m256d r0 = _mm256_set1_pd(ri[k]), r1 = _mm256_set1_pd(ri[k + 1]);
        for (j = 0; j < 4; j++) {
            a[j] = _mm256_fnmadd_pd(r0, _mm256_loadu_pd(v0 + 4 * j), a[j]);
            b[j] = _mm256_fnmadd_pd(r1, _mm256_loadu_pd(v0 + SOLVE_RHS + 4 * j), b[j]);
        }
    }
    if (k < i) {
        __m256d r0 = _mm256_set1_pd(ri[k]);
        for (j = 0; j < 4; j++) a[j] = _mm256_fnmadd_pd(r0, _mm256_loadu_pd(v + (size_t)k * SOLVE_RHS + 4 * j), a[j]);
    }
    d = _mm256_set1_pd(ri[i]);
    for (j = 0; j < 4; j++) _mm256_storeu_pd(vi + 4 * j, _mm256_div_pd(_mm256_add_pd(a[j], b[j]), d));
#else
    double a0[SOLVE_RHS], a1[SOLVE_RHS];
    for (j = 0; j < SOLVE_RHS; j++) {
        a0[j] = vi[j];
        a1[j] = 0.0;
    }
    for (; k + 1 < i; k += 2) {
        const double *v0 = v + (size_t)k * SOLVE_RHS, r0 = ri[k], r1 = ri[k + 1];
        for (j = 0; j < SOLVE_RHS; j++) a0[j] -= r0 * v0[j];
        for (j = 0; j < SOLVE_RHS; j++) a1[j] -= r1 * v0[SOLVE_RHS + j];
    }
    if (k < i)
        for (j = 0; j < SOLVE_RHS; j++) a0[j] -= ri[k] * v[(size_t)k * SOLVE_RHS + j];
    for (j = 0; j < SOLVE_RHS; j++) vi[j] = (a0[j] + a1[j]) / ri[i];
#endif
}

static void solve_rt_thread(void *arg, int ith, int nth) {
    solve_task *t = arg;
    const int n = t->ncol;
    double *v = t->scratch + (size_t)ith * n * SOLVE_RHS;  /* v[k*SOLVE_RHS + j] */
    int64_t lo, hi, g;
    red_split_range((n + SOLVE_RHS - 1) / SOLVE_RHS, ith, nth, &lo, &hi);
    for (g = lo; g < hi; g++) {
        const int p0 = (int)g * SOLVE_RHS, nr = n - p0 < SOLVE_RHS ? n - p0 : SOLVE_RHS;
        int i, j;
        for (i = 0; i < n; i++) {
            const double *ri = t->r + (size_t)i * t->len;
            double *vi = v + (size_t)i * SOLVE_RHS;
            for (j = 0; j < SOLVE_RHS; j++) vi[j] = j < nr ? t->x[(size_t)(p0 + j) * n + i] : 0.0;
            solve_row(ri, v, i, vi);
        }
        for (j = 0; j < nr; j++)
            for (i = 0; i < n; i++) t->vt[(size_t)(p0 + j) * n + i] = v[(size_t)i * SOLVE_RHS + j];
    }
}

/* V_x by the solve (before short_vectors, which normalises W in place); -1 when out of memory. */
static int solve_rt(red_pool *pool, int nth, const double *w, const double *x, double *vt, int len, int ncol) {
    solve_task sv;
    const int big = pool && nth > 1 && (double)ncol * ncol * ncol >= 1.0e7;
    sv.r = w;
    sv.x = x;
    sv.vt = vt;
    sv.len = len;
    sv.ncol = ncol;
    sv.scratch = malloc((size_t)(big ? nth : 1) * ncol * SOLVE_RHS * sizeof *sv.scratch);
    if (!sv.scratch) return -1;
    if (big) red_pool_run(pool, nth, solve_rt_thread, &sv);
    else solve_rt_thread(&sv, 0, 1);
    free(sv.scratch);
    return 0;
}

/* Jacobi on the columns of X = Rᵀ (x), order[] their sigmas sorted. The long
 * vectors (vt != NULL) need V_x. Accumulating the rotations doubles the
 * sweeps' cost; solving Rᵀ V_x = W after them costs one triangular solve and
 * loses about cond(R) eps_d, below float rounding when cond(R) <=
 * SOLVE_MAX_COND. |R_00|/|R_kk| <= cond(R) tells first; the exact sigmas
 * after, and a matrix that fails runs again, accumulating. *solve says which
 * way V_x is to be made. Returns jacobi_orthogonalize's result. */
static int orthogonalize_rt(red_pool *pool, const double *w, double *x, double *vt, int len, int ncol,
                            sv_index *order, red_svd_info *info, int *solve) {
    const size_t bytes = (size_t)ncol * ncol * sizeof *x;
    double *x0 = NULL;
    int converged;
    *solve = vt && fabs(w[(size_t)(ncol - 1) * len + ncol - 1]) * SOLVE_MAX_COND >= fabs(w[0]) && w[0] != 0.0;
    if (*solve) {
        if (!(x0 = malloc(bytes))) return -1;
        memcpy(x0, x, bytes);
    }
    converged = jacobi_orthogonalize(pool, x, *solve ? NULL : vt, ncol, ncol, info);
    if (converged >= 0) sigmas_sorted(x, ncol, order);
    if (converged >= 0 && *solve && !(order[0].sigma <= SOLVE_MAX_COND * order[ncol - 1].sigma)) {
        *solve = 0;
        memcpy(x, x0, bytes);
        converged = jacobi_orthogonalize(pool, x, vt, ncol, ncol, info);
        if (converged >= 0) sigmas_sorted(x, ncol, order);
    }
    free(x0);
    return converged;
}

/* P U_x into out (ncol x ncol row-major, columns in sigma order): W's columns
 * normalised, exact-zero ones completed to an orthonormal set; row k of U_x
 * is row perm[k] of P U_x. */
static void short_vectors(double *x, int ncol, const sv_index *order, const int *perm, int *good, float *out) {
    int i, j;
    for (j = 0; j < ncol; j++) {
        double *c = x + (size_t)j * ncol;
        double s = sqrt(dot_d(c, c, ncol));
        good[j] = s > 0.0 && s >= DBL_MIN * 1e20;
        if (good[j])
            for (i = 0; i < ncol; i++) c[i] /= s;
    }
    complete_orthonormal(x, ncol, ncol, good);
    for (j = 0; j < ncol; j++) {
        const double *c = x + (size_t)order[j].idx * ncol;
        for (i = 0; i < ncol; i++) out[(size_t)perm[i] * ncol + j] = (float)c[i];
    }
}

/* The SVD of the len x ncol matrix M (A if tall, Aᵀ if wide; len >= ncol):
 * M P = Q R by qr_pivoted; one-sided Jacobi on the columns of X = Rᵀ gives
 * X V_x = W = U_x Σ, so R = V_x Σ U_xᵀ and M = (Q V_x) Σ (P U_x)ᵀ. The short
 * singular vectors P U_x are the normalised columns of W (no accumulation);
 * only the long ones need the rotations V_x, and then Q. */
red_status red_svd(red_pool *pool, int m, int n, const float *A, int lda, float *U, float *S,
                   float *V, red_svd_info *info) {
    const int tall = m >= n;
    const int ncol = tall ? n : m, len = tall ? m : n;
    float *const out_long = tall ? U : V, *const out_short = tall ? V : U;
    int i, j, nth, converged;
    double *w = NULL, *x = NULL, *vt = NULL, *tau = NULL, *pnorm = NULL, *onorm = NULL;
    int *perm = NULL, *good = NULL, solve;
    sv_index *order = NULL;
    red_status st = RED_OK;

    if (info) info->sweeps = info->rotations = info->solved = 0;
    if (m < 0 || n < 0 || !S || !A || lda < n) return RED_E_ARG;
    if (ncol == 0) return RED_OK;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            float v = A[(size_t)i * lda + j];
            if (v != v || v - v != 0.0f) return RED_E_ARG;  /* NaN or Inf */
        }
    nth = red_pool_size(pool);
    /* the sweeps walk these by columns: red_malloc_aligned puts them on huge pages */
    w = red_malloc_aligned((size_t)ncol * len * sizeof *w);
    x = red_malloc_aligned((size_t)ncol * ncol * sizeof *x);
    if (x) memset(x, 0, (size_t)ncol * ncol * sizeof *x);
    tau = malloc((size_t)ncol * sizeof *tau);
    pnorm = malloc((size_t)ncol * sizeof *pnorm);
    onorm = malloc((size_t)ncol * sizeof *onorm);
    perm = malloc((size_t)ncol * sizeof *perm);
    good = malloc((size_t)ncol * sizeof *good);
    order = malloc((size_t)ncol * sizeof *order);
    if (out_long) {
        vt = red_malloc_aligned((size_t)ncol * ncol * sizeof *vt);
        if (vt) memset(vt, 0, (size_t)ncol * ncol * sizeof *vt);
    }
    if (!w || !x || !tau || !pnorm || !onorm || !perm || !good || !order || (out_long && !vt)) {
        st = RED_E_NOMEM;
        goto out;
    }
    /* M by columns: columns of A (tall, a transpose in 32 x 32 tiles: column
     * by column, 4096x256 spent about 10 of its 100 ms on it) or rows of A (wide) */
    if (tall) {
        int i0, j0;
        for (i0 = 0; i0 < m; i0 += 32)
            for (j0 = 0; j0 < n; j0 += 32)
                for (j = j0; j < n && j < j0 + 32; j++)
                    for (i = i0; i < m && i < i0 + 32; i++) w[(size_t)j * len + i] = A[(size_t)i * lda + j];
    } else {
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++) w[(size_t)i * len + j] = A[(size_t)i * lda + j];
    }
    qr_pivoted(pool, nth, w, len, ncol, perm, tau, pnorm, onorm);
    /* column i of X = Rᵀ is row i of R, stored as row i of x */
    for (i = 0; i < ncol; i++)
        for (j = i; j < ncol; j++) x[(size_t)i * ncol + j] = w[(size_t)j * len + i];
    if (vt)
        for (j = 0; j < ncol; j++) vt[(size_t)j * ncol + j] = 1.0;  /* used only when accumulating */

    converged = orthogonalize_rt(pool, w, x, vt, len, ncol, order, info, &solve);
    if (converged >= 0 && solve && solve_rt(pool, nth, w, x, vt, len, ncol) < 0) converged = -1;
    if (converged < 0) {
        st = RED_E_NOMEM;
        goto out;
    }
    if (!converged) st = RED_E_NOCONV;
    for (j = 0; j < ncol; j++) S[j] = (float)order[j].sigma;
    if (info) info->solved = solve;
    if (out_short) short_vectors(x, ncol, order, perm, good, out_short);
    if (out_long && left_vectors(pool, nth, w, tau, vt, order, len, ncol, out_long) < 0) st = RED_E_NOMEM;
out:
    red_free_aligned(w);
    red_free_aligned(x);
    red_free_aligned(vt);
    free(tau);
    free(pnorm);
    free(onorm);
    free(perm);
    free(good);
    free(order);
    return st;
}

/* ================================================================== symmetric eigen */

typedef struct {
    double w;
    int idx;
} eig_index;

static int eig_index_cmp(const void *x, const void *y) {
    const eig_index *a = x, *b = y;
    if (a->w != b->w) return a->w > b->w ? -1 : 1;
    return a->idx - b->idx;
}

red_status red_eig_sym(int n, const float *A, int lda, float *w, float *Q) {
    const int max_sweeps = 100;
    double *a = NULL, *v = NULL, normf = 0.0;
    eig_index *order = NULL;
    int i, j, p, q, k, sweep, converged = 0;
    red_status st = RED_OK;
    if (n < 0 || !A || !w || lda < n) return RED_E_ARG;
    if (n == 0) return RED_OK;
    a = malloc((size_t)n * n * sizeof *a);
    v = calloc((size_t)n * n, sizeof *v);
    order = malloc((size_t)n * sizeof *order);
    if (!a || !v || !order) {
        st = RED_E_NOMEM;
        goto out;
    }
    /* symmetrise from the lower triangle: the contract reads only that */
    for (i = 0; i < n; i++)
        for (j = 0; j <= i; j++) {
            double x = A[(size_t)i * lda + j];
            if (x != x || x - x != 0.0) {
                st = RED_E_ARG;
                goto out;
            }
            a[(size_t)i * n + j] = a[(size_t)j * n + i] = x;
            normf += (i == j ? 1.0 : 2.0) * x * x;
        }
    normf = sqrt(normf);
    for (i = 0; i < n; i++) v[(size_t)i * n + i] = 1.0;

    /* Cyclic Jacobi (Golub & Van Loan, Alg. 8.5.3): A <- Jᵀ A J, V <- V J. */
    for (sweep = 0; sweep < max_sweeps && !converged; sweep++) {
        int rotations = 0;
        for (p = 0; p < n - 1; p++)
            for (q = p + 1; q < n; q++) {
                double apq = a[(size_t)p * n + q], app = a[(size_t)p * n + p],
                       aqq = a[(size_t)q * n + q], tau, t, c, s;
                /* negligible relative to the diagonal, or to the whole matrix */
                if (fabs(apq) <= DBL_EPSILON * sqrt(fabs(app) * fabs(aqq)) ||
                    fabs(apq) <= 1e-18 * normf) {
                    a[(size_t)p * n + q] = a[(size_t)q * n + p] = 0.0;
                    continue;
                }
                tau = (aqq - app) / (2.0 * apq);
                t = (tau >= 0 ? 1.0 : -1.0) / (fabs(tau) + sqrt(1.0 + tau * tau));
                c = 1.0 / sqrt(1.0 + t * t);
                s = t * c;
                for (k = 0; k < n; k++) {  /* columns p, q */
                    double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
                    a[(size_t)k * n + p] = c * akp - s * akq;
                    a[(size_t)k * n + q] = s * akp + c * akq;
                }
                rot_d(a + (size_t)p * n, a + (size_t)q * n, n, c, s);  /* rows p, q */
                a[(size_t)p * n + q] = a[(size_t)q * n + p] = 0.0;
                for (k = 0; k < n; k++) {
                    double vkp = v[(size_t)k * n + p], vkq = v[(size_t)k * n + q];
                    v[(size_t)k * n + p] = c * vkp - s * vkq;
                    v[(size_t)k * n + q] = s * vkp + c * vkq;
                }
                rotations++;
            }
        if (rotations == 0) converged = 1;
    }
    if (!converged) st = RED_E_NOCONV;
    for (i = 0; i < n; i++) {
        order[i].w = a[(size_t)i * n + i];
        order[i].idx = i;
    }
    qsort(order, (size_t)n, sizeof *order, eig_index_cmp);
    for (j = 0; j < n; j++) {
        w[j] = (float)order[j].w;
        if (Q)
            for (i = 0; i < n; i++) Q[(size_t)i * n + j] = (float)v[(size_t)i * n + order[j].idx];
    }
out:
    free(a);
    free(v);
    free(order);
    return st;
}

/* ================================================================== random orthonormal */

red_status red_random_orthonormal(red_rng *rng, int n, int k, float *Q) {
    double *g;
    int i, j, c, pass;
    if (!rng || !Q || n < 0 || k < 0 || k > n) return RED_E_ARG;
    if (k == 0 || n == 0) return RED_OK;
    g = malloc((size_t)n * k * sizeof *g);  /* column j stored as row j */
    if (!g) return RED_E_NOMEM;
    for (i = 0; i < n; i++)
        for (j = 0; j < k; j++) g[(size_t)j * n + i] = red_rng_normal(rng);
    /* classical Gram-Schmidt applied twice ("twice is enough", Giraud et al. 2005);
     * R's diagonal is the positive norm, which makes Q Haar-distributed. */
    for (j = 0; j < k; j++) {
        double *x = g + (size_t)j * n, nr;
        for (pass = 0; pass < 2; pass++)
            for (c = 0; c < j; c++) {
                const double *u = g + (size_t)c * n;
                double d = dot_d(u, x, n);
                for (i = 0; i < n; i++) x[i] -= d * u[i];
            }
        nr = sqrt(dot_d(x, x, n));
        if (nr == 0.0) {  /* probability zero for a Gaussian; never silently wrong */
            free(g);
            return RED_E_NOCONV;
        }
        for (i = 0; i < n; i++) x[i] /= nr;
    }
    for (i = 0; i < n; i++)
        for (j = 0; j < k; j++) Q[(size_t)i * k + j] = (float)g[(size_t)j * n + i];
    free(g);
    return RED_OK;
}

/* ================================================================== eRank */

double red_erank_from_sv(const float *s, int k) {
    double sum = 0.0, h = 0.0;
    int j;
    for (j = 0; j < k; j++) sum += fabs((double)s[j]);
    if (!(sum > 0.0)) return 0.0;
    for (j = 0; j < k; j++) {
        double p = fabs((double)s[j]) / sum;
        if (p > 0.0) h -= p * log(p);
    }
    return exp(h);
}

red_status red_erank(red_pool *pool, int m, int n, const float *X, int ldx, int center,
                     double *erank) {
    float *y, *s;
    int i, j, k = m < n ? m : n;
    red_status st;
    if (!X || !erank || m < 0 || n < 0 || ldx < n) return RED_E_ARG;
    *erank = 0.0;
    if (k == 0) return RED_OK;
    y = malloc((size_t)m * n * sizeof *y);
    s = malloc((size_t)k * sizeof *s);
    if (!y || !s) {
        free(y);
        free(s);
        return RED_E_NOMEM;
    }
    for (i = 0; i < m; i++) memcpy(y + (size_t)i * n, X + (size_t)i * ldx, (size_t)n * sizeof *y);
    if (center)
        for (j = 0; j < n; j++) {
            double mean = 0.0;
            for (i = 0; i < m; i++) mean += y[(size_t)i * n + j];
            mean /= m;
            for (i = 0; i < m; i++) y[(size_t)i * n + j] = (float)(y[(size_t)i * n + j] - mean);
        }
    st = red_svd(pool, m, n, y, n, NULL, s, NULL, NULL);
    if (st == RED_OK) *erank = red_erank_from_sv(s, k);
    free(y);
    free(s);
    return st;
}

/* ================================================================== token indistinguishability */

/* Pairwise cosines of the rows through the Gram matrix of the unit rows, one
 * 64 x 64 tile of it at a time (never N x N). Rows are normalised in double
 * and packed in panels of 4 rows stored k-major (panel p, column k holds rows
 * 4p..4p+3), so a 4 x 4 block of dot products is 16 independent double sums,
 * each added in k order: the same bits on every SIMD path and thread count.
 * Tiles are numbered (bi <= bj) and each owns one partial sum of cosines and
 * its counts; the partials are added in tile order at the end. */
#define INDIST_PANEL 4
#define INDIST_TILE 64  /* rows per tile side (16 panels) */

const double red_indist_theta[RED_INDIST_N] = {0.95, 0.99};

typedef struct {
    const double *U;     /* [panels, n, 4] unit rows (zero rows stay zero) */
    const int64_t *ids;  /* [m] or NULL (every pair distinct) */
    int m, n, n_tiles;
    int64_t *tile_ij;    /* [items, 2] the row tiles (bi, bj) of each item */
    double *sum;         /* [items] sum of cosines over the item's pairs */
    int64_t *cnt;        /* [items][2 + RED_INDIST_N] pairs, distinct pairs, distinct pairs >= theta */
} indist_ctx;

/* acc[r][c] = dot(row 4pa + r, row 4pb + c), each a plain k-ordered sum. */
static void indist_block(const double *A, const double *B, int n, double acc[INDIST_PANEL][INDIST_PANEL]) {
    int k, r, c;
    for (r = 0; r < INDIST_PANEL; r++)
        for (c = 0; c < INDIST_PANEL; c++) acc[r][c] = 0.0;
    for (k = 0; k < n; k++) {
        const double *a = A + (size_t)k * INDIST_PANEL, *b = B + (size_t)k * INDIST_PANEL;
        for (r = 0; r < INDIST_PANEL; r++)
            for (c = 0; c < INDIST_PANEL; c++) acc[r][c] += a[r] * b[c];
    }
}

static void indist_items(void *vc, int64_t lo, int64_t hi) {
    indist_ctx *c = vc;
    int64_t it;
    for (it = lo; it < hi; it++) {
        int bi = (int)c->tile_ij[2 * it], bj = (int)c->tile_ij[2 * it + 1], pa, pb, r, q, t;
        int64_t *cnt = c->cnt + (size_t)it * (2 + RED_INDIST_N);
        double sum = 0.0;
        for (t = 0; t < 2 + RED_INDIST_N; t++) cnt[t] = 0;
        for (pa = bi * (INDIST_TILE / INDIST_PANEL); pa < (bi + 1) * (INDIST_TILE / INDIST_PANEL); pa++) {
            if (pa * INDIST_PANEL >= c->m) break;
            for (pb = bj == bi ? pa : bj * (INDIST_TILE / INDIST_PANEL); pb < (bj + 1) * (INDIST_TILE / INDIST_PANEL); pb++) {
                double acc[INDIST_PANEL][INDIST_PANEL];
                if (pb * INDIST_PANEL >= c->m) break;
                indist_block(c->U + (size_t)pa * c->n * INDIST_PANEL, c->U + (size_t)pb * c->n * INDIST_PANEL, c->n, acc);
                for (r = 0; r < INDIST_PANEL; r++) {
                    int i = pa * INDIST_PANEL + r;
                    if (i >= c->m) break;
                    for (q = 0; q < INDIST_PANEL; q++) {
                        int j = pb * INDIST_PANEL + q;
                        double cs = acc[r][q];
                        if (j >= c->m) break;
                        if (j <= i) continue;  /* pairs i < j only */
                        sum += cs;
                        cnt[0]++;
                        if (!c->ids || c->ids[i] != c->ids[j]) {
                            cnt[1]++;
                            for (t = 0; t < RED_INDIST_N; t++) cnt[2 + t] += cs >= red_indist_theta[t];
                        }
                    }
                }
            }
        }
        c->sum[it] = sum;
    }
}

red_status red_token_indist(red_pool *pool, int m, int n, const float *X, int ldx, const int64_t *ids,
                            red_indist *out) {
    indist_ctx c;
    int panels, i, k, bi, bj, t;
    int64_t items, it, tot[2 + RED_INDIST_N] = {0};
    double *U, sum = 0.0;
    if (!X || !out || m < 0 || n < 1 || ldx < n) return RED_E_ARG;
    memset(out, 0, sizeof *out);
    panels = (m + INDIST_PANEL - 1) / INDIST_PANEL;
    c.n_tiles = (m + INDIST_TILE - 1) / INDIST_TILE;
    items = (int64_t)c.n_tiles * (c.n_tiles + 1) / 2;
    U = calloc((size_t)panels * n * INDIST_PANEL + 1, sizeof *U);
    c.tile_ij = malloc((size_t)(2 * items + 1) * sizeof *c.tile_ij);
    c.sum = malloc((size_t)(items + 1) * sizeof *c.sum);
    c.cnt = malloc((size_t)(items + 1) * (2 + RED_INDIST_N) * sizeof *c.cnt);
    if (!U || !c.tile_ij || !c.sum || !c.cnt) {
        free(U); free(c.tile_ij); free(c.sum); free(c.cnt);
        return RED_E_NOMEM;
    }
    for (i = 0; i < m; i++) {  /* unit rows in double; a zero row stays zero (cos 0 with every row) */
        const float *x = X + (size_t)i * ldx;
        double nr = 0.0, *u = U + (size_t)(i / INDIST_PANEL) * n * INDIST_PANEL + i % INDIST_PANEL;
        for (k = 0; k < n; k++) nr += (double)x[k] * x[k];
        if (!isfinite(nr)) {
            free(U); free(c.tile_ij); free(c.sum); free(c.cnt);
            return RED_E_ARG;
        }
        nr = sqrt(nr);
        if (nr > 0.0)
            for (k = 0; k < n; k++) u[(size_t)k * INDIST_PANEL] = x[k] / nr;
    }
    for (bi = 0, it = 0; bi < c.n_tiles; bi++)
        for (bj = bi; bj < c.n_tiles; bj++, it++) {
            c.tile_ij[2 * it] = bi;
            c.tile_ij[2 * it + 1] = bj;
        }
    c.U = U; c.ids = ids; c.m = m; c.n = n;
    red_par_range(pool, items, (double)INDIST_TILE * INDIST_TILE * n, indist_items, &c);
    for (it = 0; it < items; it++) {  /* in tile order: the same sum for every thread count */
        sum += c.sum[it];
        for (t = 0; t < 2 + RED_INDIST_N; t++) tot[t] += c.cnt[(size_t)it * (2 + RED_INDIST_N) + t];
    }
    out->pairs = tot[0];
    out->distinct_pairs = tot[1];
    out->cos_mean = tot[0] ? sum / (double)tot[0] : NAN;
    for (t = 0; t < RED_INDIST_N; t++) out->indist[t] = tot[1] ? (double)tot[2 + t] / (double)tot[1] : NAN;
    free(U); free(c.tile_ij); free(c.sum); free(c.cnt);
    return RED_OK;
}
