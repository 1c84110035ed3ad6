#include "metaq_kernels.h"
#include <immintrin.h>
#include <stdlib.h>

/* op(A)[r, p] */
#define A_AT(a, r, p) (transpose_a ? (a)[(p) * m + (r)] : (a)[(r) * k + (p)])

/* Portable kernel: row by row, the inner loop over contiguous columns of B. */
static void gemm_portable(long m, long n, long k, const float *a, int transpose_a,
                          const float *b, float *c) {
    for (long r = 0; r < m; r++) {
        float *out = c + r * n;
        for (long j = 0; j < n; j++) out[j] = 0;
        for (long p = 0; p < k; p++) {
            float s = A_AT(a, r, p);
            const float *row = b + p * n;
            for (long j = 0; j < n; j++) out[j] += s * row[j];
        }
    }
}

/* AVX2 + FMA kernel. op(A)[r, p] = a[r * rs + p * ps]; B is row-major [k, n]. Full tiles of
   4 rows x 16 columns keep 8 accumulators in registers across the k loop; the last rows go
   one at a time and the last columns use masked loads and stores. */
__attribute__((target("avx2,fma"), always_inline))
static inline void tile_avx2(long rows, long n, long k, const float *a, long rs, long ps,
                             const float *b, long j0, float *c, __m256i mask_lo, __m256i mask_hi, long hi) {
    if (rows == 4) {
        __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
        __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
        const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs;
        for (long p = 0; p < k; p++) {
            const float *row = b + p * n + j0;
            __m256 b0 = _mm256_maskload_ps(row, mask_lo);
            __m256 b1 = _mm256_maskload_ps(row + 8, mask_hi);
            __m256 s0 = _mm256_broadcast_ss(a0 + p * ps), s1 = _mm256_broadcast_ss(a1 + p * ps);
            __m256 s2 = _mm256_broadcast_ss(a2 + p * ps), s3 = _mm256_broadcast_ss(a3 + p * ps);
            c00 = _mm256_fmadd_ps(s0, b0, c00); c01 = _mm256_fmadd_ps(s0, b1, c01);
            c10 = _mm256_fmadd_ps(s1, b0, c10); c11 = _mm256_fmadd_ps(s1, b1, c11);
            c20 = _mm256_fmadd_ps(s2, b0, c20); c21 = _mm256_fmadd_ps(s2, b1, c21);
            c30 = _mm256_fmadd_ps(s3, b0, c30); c31 = _mm256_fmadd_ps(s3, b1, c31);
        }
        _mm256_maskstore_ps(c + j0, mask_lo, c00);
        _mm256_maskstore_ps(c + n + j0, mask_lo, c10);
        _mm256_maskstore_ps(c + 2 * n + j0, mask_lo, c20);
        _mm256_maskstore_ps(c + 3 * n + j0, mask_lo, c30);
        if (hi > 0) {
            _mm256_maskstore_ps(c + j0 + 8, mask_hi, c01);
            _mm256_maskstore_ps(c + n + j0 + 8, mask_hi, c11);
            _mm256_maskstore_ps(c + 2 * n + j0 + 8, mask_hi, c21);
            _mm256_maskstore_ps(c + 3 * n + j0 + 8, mask_hi, c31);
        }
        return;
    }
    for (long i = 0; i < rows; i++) {
        __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
        const float *ai = a + i * rs;
        for (long p = 0; p < k; p++) {
            const float *row = b + p * n + j0;
            __m256 s = _mm256_broadcast_ss(ai + p * ps);
            c0 = _mm256_fmadd_ps(s, _mm256_maskload_ps(row, mask_lo), c0);
            c1 = _mm256_fmadd_ps(s, _mm256_maskload_ps(row + 8, mask_hi), c1);
        }
        _mm256_maskstore_ps(c + i * n + j0, mask_lo, c0);
        if (hi > 0) _mm256_maskstore_ps(c + i * n + j0 + 8, mask_hi, c1);
    }
}

__attribute__((target("avx2,fma")))
static void gemm_avx2(long m, long n, long k, const float *a, int transpose_a,
                      const float *b, float *c) {
    static const int mask_source[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    long rs = transpose_a ? 1 : k, ps = transpose_a ? m : 1;
    for (long j0 = 0; j0 < n; j0 += 16) {
        long cols = n - j0 < 16 ? n - j0 : 16;
        long lo = cols < 8 ? cols : 8, hi = cols - lo;
        __m256i mask_lo = _mm256_loadu_si256((const __m256i *)(mask_source + 8 - lo));
        __m256i mask_hi = _mm256_loadu_si256((const __m256i *)(mask_source + 8 - hi));
        for (long r0 = 0; r0 < m; r0 += 4) {
            long rows = m - r0 < 4 ? m - r0 : 4;
            tile_avx2(rows, n, k, a + r0 * rs, rs, ps, b, j0, c + r0 * n, mask_lo, mask_hi, hi);
        }
    }
}

/* AVX2 + FMA kernel for C = A B^T with A row-major [m, k] and B row-major [n, k]: each entry
   is a dot product of two contiguous rows; 4 columns at a time share the loads of A's row. */
__attribute__((target("avx2,fma")))
static void gemm_avx2_nt(long m, long n, long k, const float *a, const float *b, float *c) {
    static const int mask_source[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    long tail = k % 8;
    __m256i mask = _mm256_loadu_si256((const __m256i *)(mask_source + 8 - tail));
    long full = k - tail;
    for (long r = 0; r < m; r++) {
        const float *ar = a + r * k;
        long j = 0;
        for (; j + 4 <= n; j += 4) {
            const float *b0 = b + j * k, *b1 = b0 + k, *b2 = b1 + k, *b3 = b2 + k;
            __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
            for (long p = 0; p < full; p += 8) {
                __m256 av = _mm256_loadu_ps(ar + p);
                s0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b0 + p), s0);
                s1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b1 + p), s1);
                s2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + p), s2);
                s3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b3 + p), s3);
            }
            if (tail) {
                __m256 av = _mm256_maskload_ps(ar + full, mask);
                s0 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b0 + full, mask), s0);
                s1 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b1 + full, mask), s1);
                s2 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b2 + full, mask), s2);
                s3 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b3 + full, mask), s3);
            }
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
            _mm_storeu_ps(c + r * n + j, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
        }
        for (; j < n; j++) {
            const float *bj = b + j * k;
            __m256 s0 = _mm256_setzero_ps();
            for (long p = 0; p < full; p += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(ar + p), _mm256_loadu_ps(bj + p), s0);
            if (tail) s0 = _mm256_fmadd_ps(_mm256_maskload_ps(ar + full, mask), _mm256_maskload_ps(bj + full, mask), s0);
            __m128 q = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
            q = _mm_hadd_ps(q, q);
            q = _mm_hadd_ps(q, q);
            c[r * n + j] = _mm_cvtss_f32(q);
        }
    }
}

static int has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

void metaq_small_gemm(long first, long last, long m, long n, long k,
                      const float *a, int transpose_a, long stride_a,
                      const float *b, int transpose_b, long stride_b,
                      float *c) {
    int fast = has_avx2_fma();
    if (fast && transpose_b && !transpose_a) {
        for (long i = first; i < last; i++) gemm_avx2_nt(m, n, k, a + i * stride_a, b + i * stride_b, c + i * m * n);
        return;
    }
    float *scratch = transpose_b ? malloc(sizeof(float) * (size_t)(k * n > 0 ? k * n : 1)) : NULL;
    for (long i = first; i < last; i++) {
        const float *ai = a + i * stride_a;
        const float *bi = b + i * stride_b;
        float *ci = c + i * m * n;
        if (transpose_b) {
            /* B_i is [n, k]; lay its transpose out as [k, n]. */
            for (long row = 0; row < n; row++)
                for (long p = 0; p < k; p++) scratch[p * n + row] = bi[row * k + p];
            bi = scratch;
        }
        if (fast) gemm_avx2(m, n, k, ai, transpose_a, bi, ci);
        else gemm_portable(m, n, k, ai, transpose_a, bi, ci);
    }
    free(scratch);
}
