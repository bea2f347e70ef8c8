/* simd.h - private: the compile-time SIMD selection shared by tensor.c and
 * linalg.c. The Makefile defines exactly one of RED_SIMD_AVX512, RED_SIMD_AVX2,
 * RED_SIMD_NEON or nothing (scalar). A tiny vector-macro layer (after ggml's
 * simd-mappings.h) lets the elementwise kernels be written once; the GEMM
 * micro-kernels use the intrinsics directly because their register tiles differ.
 *   VEC_LANES   floats per register
 *   vec_t       register type
 *   VLOAD/VSTORE unaligned load/store, VSET1 broadcast, VZERO
 *   VADD/VMUL   lanewise, VFMA(a,b,c) = a*b + c (fused)
 *   VREDUCE     horizontal sum in a fixed order
 */
#ifndef RED_SIMD_H
#define RED_SIMD_H

#if defined(RED_SIMD_AVX512)
#  if !defined(__AVX512F__) || !defined(__FMA__)
#    error "RED_SIMD_AVX512 needs -mavx512f -mfma (use make SIMD=avx512)"
#  endif
#  include <immintrin.h>
#  define RED_SIMD_NAME "avx512"
#  define VEC_LANES 16
typedef __m512 vec_t;
#  define VLOAD(p) _mm512_loadu_ps(p)
#  define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#  define VSET1(x) _mm512_set1_ps(x)
#  define VZERO() _mm512_setzero_ps()
#  define VADD(a, b) _mm512_add_ps((a), (b))
#  define VMUL(a, b) _mm512_mul_ps((a), (b))
#  define VMAX(a, b) _mm512_max_ps((a), (b))
#  define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
static inline float vec_reduce(vec_t v) {
    /* fixed pairwise tree: 16 -> 8 -> 4 -> 2 -> 1 */
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
}
static inline float vec_reduce_max(vec_t v) { return _mm512_reduce_max_ps(v); }
#  define VREDUCE(v) vec_reduce(v)
#  define VREDUCE_MAX(v) vec_reduce_max(v)

#elif defined(RED_SIMD_AVX2)
#  if !defined(__AVX2__) || !defined(__FMA__)
#    error "RED_SIMD_AVX2 needs -mavx2 -mfma (use make SIMD=avx2)"
#  endif
#  include <immintrin.h>
#  define RED_SIMD_NAME "avx2"
#  define VEC_LANES 8
typedef __m256 vec_t;
#  define VLOAD(p) _mm256_loadu_ps(p)
#  define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#  define VSET1(x) _mm256_set1_ps(x)
#  define VZERO() _mm256_setzero_ps()
#  define VADD(a, b) _mm256_add_ps((a), (b))
#  define VMUL(a, b) _mm256_mul_ps((a), (b))
#  define VMAX(a, b) _mm256_max_ps((a), (b))
#  define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
static inline float vec_reduce(vec_t v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
}
static inline float vec_reduce_max(vec_t v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
}
#  define VREDUCE(v) vec_reduce(v)
#  define VREDUCE_MAX(v) vec_reduce_max(v)

#elif defined(RED_SIMD_NEON)
#  if !defined(__ARM_NEON) || !defined(__aarch64__)
#    error "RED_SIMD_NEON needs an AArch64 compiler (use make SIMD=neon CC=aarch64-linux-gnu-gcc)"
#  endif
#  include <arm_neon.h>
#  define RED_SIMD_NAME "neon"
#  define VEC_LANES 4
typedef float32x4_t vec_t;
#  define VLOAD(p) vld1q_f32(p)
#  define VSTORE(p, v) vst1q_f32((p), (v))
#  define VSET1(x) vdupq_n_f32(x)
#  define VZERO() vdupq_n_f32(0.0f)
#  define VADD(a, b) vaddq_f32((a), (b))
#  define VMUL(a, b) vmulq_f32((a), (b))
#  define VMAX(a, b) vmaxq_f32((a), (b))
#  define VFMA(a, b, c) vfmaq_f32((c), (a), (b))
#  define VREDUCE(v) vaddvq_f32(v)
#  define VREDUCE_MAX(v) vmaxvq_f32(v)

#else
#  define RED_SIMD_NAME "scalar"
#  define RED_SIMD_SCALAR 1
#  define VEC_LANES 1
#endif

#endif /* RED_SIMD_H */
