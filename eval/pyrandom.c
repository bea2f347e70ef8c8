/* eval/pyrandom.c - CPython's `random` module, bit for bit, for the parts
 * lm-eval uses to draw few-shot exemplars: random.Random(seed) for an int
 * seed (MT19937 init_by_array on the seed's 32-bit words), getrandbits,
 * random(), _randbelow and sample(range(n), k).
 * Sources of the algorithms: CPython Modules/_randommodule.c (genrand_uint32,
 * init_genrand, init_by_array, random_seed, getrandbits) and Lib/random.py
 * (_randbelow_with_getrandbits, sample); MT19937 by Matsumoto & Nishimura.
 */
#include "../red_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

static void init_genrand(red_pyrandom *r, uint32_t s) {
    int i;
    r->mt[0] = s;
    for (i = 1; i < MT_N; i++)
        r->mt[i] = (uint32_t)(1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i);
    r->mti = MT_N;
}

static void init_by_array(red_pyrandom *r, const uint32_t *key, int len) {
    int i = 1, j = 0, k;
    init_genrand(r, 19650218u);
    for (k = MT_N > len ? MT_N : len; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= MT_N) { r->mt[0] = r->mt[MT_N - 1]; i = 1; }
        if (j >= len) j = 0;
    }
    for (k = MT_N - 1; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) { r->mt[0] = r->mt[MT_N - 1]; i = 1; }
    }
    r->mt[0] = 0x80000000u;  /* MSB is 1, assuring a non-zero initial array */
}

/* random.seed(n) for an int n >= 0: key = n's 32-bit words, least significant first. */
void red_pyrandom_seed(red_pyrandom *r, uint64_t seed) {
    uint32_t key[2];
    int len = 0;
    key[len++] = (uint32_t)seed;
    if (seed >> 32) key[len++] = (uint32_t)(seed >> 32);
    init_by_array(r, key, len);
}

static uint32_t red_pyrandom_u32(red_pyrandom *r) {
    static const uint32_t mag01[2] = {0u, 0x9908b0dfu};
    uint32_t y;
    if (r->mti >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (r->mt[MT_N - 1] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[MT_N - 1] = r->mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1u];
        r->mti = 0;
    }
    y = r->mt[r->mti++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

/* getrandbits(k), 1 <= k <= 64: 32-bit words, least significant first, the
 * last one shifted down to the remaining bits. */
uint64_t red_pyrandom_getrandbits(red_pyrandom *r, int k) {
    uint64_t v;
    if (k <= 32) return red_pyrandom_u32(r) >> (32 - k);
    v = red_pyrandom_u32(r);
    return v | ((uint64_t)(red_pyrandom_u32(r) >> (64 - k)) << 32);
}

double red_pyrandom_random(red_pyrandom *r) {
    uint32_t a = red_pyrandom_u32(r) >> 5, b = red_pyrandom_u32(r) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* _randbelow_with_getrandbits: k = n.bit_length(), redraw until r < n. */
int64_t red_pyrandom_randbelow(red_pyrandom *r, int64_t n) {
    int k = 0;
    uint64_t v;
    if (n <= 0) return 0;
    while (k < 64 && ((uint64_t)n >> k)) k++;
    do v = red_pyrandom_getrandbits(r, k);
    while (v >= (uint64_t)n);
    return (int64_t)v;
}

/* random.sample(range(n), k): the pool method for small populations, the
 * set method otherwise, with CPython's exact switch-over size. */
red_status red_pyrandom_sample(red_pyrandom *r, int64_t n, int k, int64_t *out) {
    int64_t setsize = 21, i;
    if (k < 0 || k > n) return RED_E_ARG;
    if (k > 5) setsize += (int64_t)pow(4.0, ceil(log(k * 3.0) / log(4.0)));
    if (n <= setsize) {
        int64_t *pool = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!pool) return RED_E_NOMEM;
        for (i = 0; i < n; i++) pool[i] = i;
        for (i = 0; i < k; i++) {
            int64_t j = red_pyrandom_randbelow(r, n - i);
            out[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
        free(pool);
    } else {
        for (i = 0; i < k; i++) {
            int64_t j, q;
            int again;
            do {  /* redraw while already selected (k is small: a linear scan) */
                j = red_pyrandom_randbelow(r, n);
                again = 0;
                for (q = 0; q < i; q++)
                    if (out[q] == j) again = 1;
            } while (again);
            out[i] = j;
        }
    }
    return RED_OK;
}
