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

/* AVX2 + FMA kernel. op(A)[r, p] = a[r * rs + p * ps]; B is row-major [k, n]; C is row-major
   [m, n]. A tile is R rows by 8 * NV columns (R, NV and `masked` are constants once inlined
   into the switches below), with its R x NV accumulators in registers across the whole k
   loop, so every row count keeps R independent FMA chains. Full tiles use plain loads and
   stores; only the last columns (fewer than 8) use masked ones. */
__attribute__((target("avx2,fma"), always_inline))
static inline void tile_avx2(const int R, const int NV, const int masked, long n, long k,
                             const float *a, long rs, long ps, const float *b, float *c, __m256i mask) {
    __m256 acc[8][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
    for (long p = 0; p < k; p++) {
        const float *row = b + p * n;
        __m256 bv[2];
        for (int v = 0; v < NV; v++) bv[v] = masked ? _mm256_maskload_ps(row, mask) : _mm256_loadu_ps(row + 8 * v);
        const float *ap = a + p * ps;
        for (int r = 0; r < R; r++) {
            __m256 s = _mm256_broadcast_ss(ap + r * rs);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(s, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            if (masked) _mm256_maskstore_ps(c + r * n, mask, acc[r][v]);
            else _mm256_storeu_ps(c + r * n + 8 * v, acc[r][v]);
        }
}

/* Rows r0..<m of one column block: R = 6 rows at a time for 16 columns (12 accumulators),
   8 for narrower blocks, then one tile of the remaining rows. */
#define ROW_TILES(NV, MASKED, FULL)                                                              \
    do {                                                                                         \
        long r0 = 0;                                                                             \
        for (; r0 + FULL <= m; r0 += FULL)                                                       \
            tile_avx2(FULL, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); \
        switch (m - r0) {                                                                        \
        case 1: tile_avx2(1, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); break; \
        case 2: tile_avx2(2, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); break; \
        case 3: tile_avx2(3, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); break; \
        case 4: tile_avx2(4, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); break; \
        case 5: tile_avx2(5, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); break; \
        case 6: tile_avx2(6, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); break; \
        case 7: tile_avx2(7, NV, MASKED, n, k, a + r0 * rs, rs, ps, b + j0, c + r0 * n + j0, mask); break; \
        default: break;                                                                          \
        }                                                                                        \
    } while (0)

__attribute__((target("avx2,fma")))
static void gemm_avx2(long m, long n, long k, const float *a, int transpose_a,
                      const float *b, float *c) {
    static const int mask_source[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    long rs = transpose_a ? 1 : k, ps = transpose_a ? m : 1;
    __m256i mask = _mm256_setzero_si256();
    long j0 = 0;
    for (; j0 + 16 <= n; j0 += 16) ROW_TILES(2, 0, 6);
    for (; j0 + 8 <= n; j0 += 8) ROW_TILES(1, 0, 8);
    if (j0 < n) {
        mask = _mm256_loadu_si256((const __m256i *)(mask_source + 8 - (n - j0)));
        ROW_TILES(1, 1, 8);
    }
}

/* The sum of the 8 lanes of each of s0..s3, as 4 floats. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m128 sum4_avx2(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* R rows of A (contiguous, [*, k]) against C columns of B ([n, k]): R x C dot products of
   contiguous rows, each its own accumulator, sharing every load across the block. */
__attribute__((target("avx2,fma"), always_inline))
static inline void nt_block_avx2(const int R, const int C, long k, long full, __m256i mask,
                                 const float *a, const float *b, float *c, long n) {
    __m256 acc[2][4];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) acc[r][j] = _mm256_setzero_ps();
    for (long p = 0; p <= full; p += 8) {
        int tail = p == full;
        if (tail && full == k) break;
        __m256 bv[4];
        for (int j = 0; j < C; j++) bv[j] = tail ? _mm256_maskload_ps(b + j * k + p, mask) : _mm256_loadu_ps(b + j * k + p);
        for (int r = 0; r < R; r++) {
            __m256 av = tail ? _mm256_maskload_ps(a + r * k + p, mask) : _mm256_loadu_ps(a + r * k + p);
            for (int j = 0; j < C; j++) acc[r][j] = _mm256_fmadd_ps(av, bv[j], acc[r][j]);
        }
    }
    for (int r = 0; r < R; r++) {
        if (C == 4) {
            _mm_storeu_ps(c + r * n, sum4_avx2(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        } else {
            __m256 z = _mm256_setzero_ps();
            float out[4];
            _mm_storeu_ps(out, sum4_avx2(acc[r][0], C > 1 ? acc[r][1] : z, C > 2 ? acc[r][2] : z, z));
            for (int j = 0; j < C; j++) c[r * n + j] = out[j];
        }
    }
}

/* AVX2 + FMA kernel for C = A B^T with A row-major [m, k] and B row-major [n, k]: every entry
   is a dot product of two contiguous rows, computed in blocks of 2 rows by 4 columns
   (8 accumulators, 4 loads of B and 2 of A per step, within the 16 registers). */
__attribute__((target("avx2,fma")))
static void gemm_avx2_nt(long m, long n, long k, const float *a, const float *b, float *c) {
    static const int mask_source[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    long tail = k % 8, full = k - tail;
    __m256i mask = _mm256_loadu_si256((const __m256i *)(mask_source + 8 - tail));
    for (long r0 = 0; r0 < m; r0 += 2) {
        long rows = m - r0 < 2 ? m - r0 : 2;
        const float *ar = a + r0 * k;
        float *cr = c + r0 * n;
        long j = 0;
        for (; j + 4 <= n; j += 4) {
            if (rows == 2) nt_block_avx2(2, 4, k, full, mask, ar, b + j * k, cr + j, n);
            else nt_block_avx2(1, 4, k, full, mask, ar, b + j * k, cr + j, n);
        }
        if (j < n) {
            long cols = n - j;
#define NT_REST(R)                                                                              \
            if (cols == 3) nt_block_avx2(R, 3, k, full, mask, ar, b + j * k, cr + j, n);        \
            else if (cols == 2) nt_block_avx2(R, 2, k, full, mask, ar, b + j * k, cr + j, n);   \
            else nt_block_avx2(R, 1, k, full, mask, ar, b + j * k, cr + j, n);
            if (rows == 2) { NT_REST(2) } else { NT_REST(1) }
#undef NT_REST
        }
    }
}

/* dst [k, n] = src [n, k]^T, in 8 x 8 blocks of registers where both sides allow. */
__attribute__((target("avx2,fma")))
static void transpose_avx2(long n, long k, const float *src, float *dst) {
    long n8 = n - n % 8, k8 = k - k % 8;
    for (long i = 0; i < n8; i += 8)
        for (long j = 0; j < k8; j += 8) {
            __m256 r[8], t[8];
            for (int q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(src + (i + q) * k + j);
            for (int q = 0; q < 8; q += 2) {
                t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
                t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
            }
            for (int q = 0; q < 8; q += 4) {
                r[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
                r[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xEE);
                r[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
                r[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
            }
            for (int q = 0; q < 4; q++) {
                t[q] = _mm256_permute2f128_ps(r[q], r[q + 4], 0x20);
                t[q + 4] = _mm256_permute2f128_ps(r[q], r[q + 4], 0x31);
            }
            /* t[q] is now column j + q of rows i..i+7. */
            for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (j + q) * n + i, t[q]);
        }
    for (long i = 0; i < n; i++)
        for (long j = (i < n8 ? k8 : 0); j < k; j++) dst[j * n + i] = src[i * k + j];
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
    /* A transpose of a matrix with one row or one column is the same memory. */
    if (transpose_a && (m == 1 || k == 1)) transpose_a = 0;
    if (transpose_b && (n == 1 || k == 1)) transpose_b = 0;
    if (fast && n == 1) {
        /* A matrix-vector product (B is one column; transpose_b was cleared above): A b as dot
           products of A's rows with b, and A^T b as the row b^T A, one row of the plain kernel. */
        for (long i = first; i < last; i++) {
            if (transpose_a) gemm_avx2(1, m, k, b + i * stride_b, 0, a + i * stride_a, c + i * m);
            else gemm_avx2_nt(m, 1, k, a + i * stride_a, b + i * stride_b, c + i * m);
        }
        return;
    }
    if (fast && transpose_b && !transpose_a && n < 8) {
        /* Few columns: dot products beat a transpose into mostly masked tiles. */
        for (long i = first; i < last; i++) gemm_avx2_nt(m, n, k, a + i * stride_a, b + i * stride_b, c + i * m * n);
        return;
    }
    /* A transposed B is laid out as [k, n] first (on the stack when it is small). */
    float local[4096];
    float *scratch = !transpose_b ? NULL : k * n <= 4096 ? local : malloc(sizeof(float) * (size_t)(k * n));
    for (long i = first; i < last; i++) {
        const float *ai = a + i * stride_a;
        const float *bi = b + i * stride_b;
        float *ci = c + i * m * n;
        if (transpose_b) {
            /* B_i is [n, k]; lay its transpose out as [k, n]. */
            if (fast) transpose_avx2(n, k, bi, scratch);
            else
                for (long row = 0; row < n; row++)
                    for (long p = 0; p < k; p++) scratch[p * n + row] = bi[row * k + p];
            bi = scratch;
        }
        if (fast) gemm_avx2(m, n, k, ai, transpose_a, bi, ci);
        else gemm_portable(m, n, k, ai, transpose_a, bi, ci);
    }
    if (scratch != local) free(scratch);
}
