#include "metaq_kernels.h"
#include <string.h>

/* Winograd convolution F(m x m, 3 x 3) for m = 2 (4 x 4 tiles) and m = 4 (6 x 6 tiles), on
   NHWC images: the transforms only. Every transform is a fixed linear combination of whole
   channel vectors (NHWC keeps a pixel's channels contiguous), so the loops over channels are
   the vectorised ones; the element-wise stage is t * t independent products
   [tiles x C] x [C x O], run by the caller through BLAS. Matrices (Lavin and Gray 2016):
   y = A^T [(G g G^T) . (B^T d B)] A. The tables are constants, so once the generic
   routines are inlined with a fixed t the zero coefficients fold away. */

#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif
#define INLINE __attribute__((always_inline)) static inline

static const float BT2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
static const float G2[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
static const float AT2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

static const float BT4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const float G4[6][3] = {{1.0f / 4, 0, 0},
                               {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                               {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                               {1.0f / 24, 1.0f / 12, 1.0f / 6},
                               {1.0f / 24, -1.0f / 12, 1.0f / 6},
                               {0, 0, 1}};
static const float AT4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

/* The tile transforms work on chunks of W channels: the t * t vectors of a chunk are local
   arrays of constant size, the loops over tile positions are unrolled (t is a constant once
   inlined), and each coefficient is a constant, so zero terms vanish and the rest become
   vector adds and fused multiply-adds on whole registers. `full` chunks read and write W
   channels; the last, partial one reads zeros and writes only its n channels. */
#define W 16
#define UNROLL _Pragma("clang loop unroll(full)")

/* out[i * S + j] = sum_k M[i][k] in[k * S + j] for i < P, j < S, k < R (in: R x S vectors). */
INLINE void left(const int P, const int R, const int S, const float *M, const float (*in)[W], float (*out)[W]) {
    UNROLL for (int i = 0; i < P; i++)
        UNROLL for (int j = 0; j < S; j++) {
            float acc[W];
            int first = 1;
            UNROLL for (int k = 0; k < R; k++) {
                const float a = M[i * R + k];
                if (a == 0) continue;
                for (int cc = 0; cc < W; cc++) acc[cc] = first ? a * in[k * S + j][cc] : acc[cc] + a * in[k * S + j][cc];
                first = 0;
            }
            for (int cc = 0; cc < W; cc++) out[i * S + j][cc] = first ? 0.0f : acc[cc];
        }
}

/* out[i * P + l] = sum_k in[i * R + k] M[l][k] for i < S, l < P, k < R (in: S x R vectors). */
INLINE void right(const int S, const int R, const int P, const float *M, const float (*in)[W], float (*out)[W]) {
    UNROLL for (int i = 0; i < S; i++)
        UNROLL for (int l = 0; l < P; l++) {
            float acc[W];
            int first = 1;
            UNROLL for (int k = 0; k < R; k++) {
                const float a = M[l * R + k];
                if (a == 0) continue;
                for (int cc = 0; cc < W; cc++) acc[cc] = first ? a * in[i * R + k][cc] : acc[cc] + a * in[i * R + k][cc];
                first = 0;
            }
            for (int cc = 0; cc < W; cc++) out[i * P + l][cc] = first ? 0.0f : acc[cc];
        }
}

INLINE void load(const int full, long n, const float *src, float *dst) {
    if (full) for (int cc = 0; cc < W; cc++) dst[cc] = src[cc];
    else for (int cc = 0; cc < W; cc++) dst[cc] = cc < n ? src[cc] : 0.0f;
}

INLINE void store(const int full, long n, const float *src, float *dst) {
    if (full) for (int cc = 0; cc < W; cc++) dst[cc] = src[cc];
    else for (int cc = 0; cc < n; cc++) dst[cc] = src[cc];
}

/* ---- input transform: v[p][tile][c] = (B^T d B)[p] ---- */
INLINE void input_chunk(const int t, const float *BT, const int full, long n, const float *const *pixels, long c0,
                        float *vt, long ldv) {
    float d[36][W], tmp[36][W], v[36][W];
    UNROLL for (int k = 0; k < t * t; k++) load(full, n, pixels[k] + c0, d[k]);
    left(t, t, t, BT, (const float (*)[W])d, tmp);
    right(t, t, t, BT, (const float (*)[W])tmp, v);
    UNROLL for (int p = 0; p < t * t; p++) store(full, n, v[p], vt + p * ldv + c0);
}

INLINE void input_tiles(const int t, const int m, const float *BT, long first, long last, long h, long w, long c,
                        long pad, long th, long tw, const float *x, float *v, long ldv, const float *zero) {
    const float *pixels[36];
    for (long tile = first; tile < last; tile++) {
        const long image = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        const float *img = x + image * h * w * c;
        const long y0 = ty * m - pad, x0 = tx * m - pad;
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++) {
                const long yy = y0 + i, xx = x0 + j;
                /* outside the image: a zero vector as long as a chunk, read from offset 0 */
                pixels[i * t + j] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? img + (yy * w + xx) * c : NULL;
            }
        float *vt = v + (tile - first) * c;
        long c0 = 0;
        for (; c0 + W <= c; c0 += W) {
            const float *p[36];
            for (int k = 0; k < t * t; k++) p[k] = pixels[k] ? pixels[k] : zero - c0;
            input_chunk(t, BT, 1, W, p, c0, vt, ldv);
        }
        if (c0 < c) {
            const float *p[36];
            for (int k = 0; k < t * t; k++) p[k] = pixels[k] ? pixels[k] : zero - c0;
            input_chunk(t, BT, 0, c - c0, p, c0, vt, ldv);
        }
    }
}

static const float ZERO[W];

CLONES void metaq_winograd_input(long m, long first, long last, long h, long w, long c, long pad, long th, long tw,
                                 const float *x, float *v, long ldv) {
    if (m == 2) input_tiles(4, 2, &BT2[0][0], first, last, h, w, c, pad, th, tw, x, v, ldv, ZERO);
    else input_tiles(6, 4, &BT4[0][0], first, last, h, w, c, pad, th, tw, x, v, ldv, ZERO);
}

/* ---- output transform: y tile = A^T M A (+ bias), pixels inside ho x wo only ---- */
INLINE void output_chunk(const int t, const int m, const float *AT, const int full, long n, const float *mt, long ldm,
                         long o0, const float *bias, float *const *pixels) {
    float d[36][W], tmp[24][W], y[16][W];
    UNROLL for (int p = 0; p < t * t; p++) load(full, n, mt + p * ldm + o0, d[p]);
    left(m, t, t, AT, (const float (*)[W])d, tmp);
    right(m, t, m, AT, (const float (*)[W])tmp, y);
    float b[W];
    if (bias) load(full, n, bias + o0, b);
    UNROLL for (int q = 0; q < m * m; q++) {
        if (!pixels[q]) continue;
        if (bias) for (int cc = 0; cc < W; cc++) y[q][cc] += b[cc];
        store(full, n, y[q], pixels[q] + o0);
    }
}

INLINE void output_tiles(const int t, const int m, const float *AT, long first, long last, long ho, long wo,
                         long o, long th, long tw, const float *mm, long ldm, const float *bias, float *y) {
    float *pixels[16];
    for (long tile = first; tile < last; tile++) {
        const long image = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        float *img = y + image * ho * wo * o;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                const long yy = ty * m + i, xx = tx * m + j;
                pixels[i * m + j] = (yy < ho && xx < wo) ? img + (yy * wo + xx) * o : NULL;
            }
        const float *mt = mm + (tile - first) * o;
        long o0 = 0;
        for (; o0 + W <= o; o0 += W) output_chunk(t, m, AT, 1, W, mt, ldm, o0, bias, pixels);
        if (o0 < o) output_chunk(t, m, AT, 0, o - o0, mt, ldm, o0, bias, pixels);
    }
}

CLONES void metaq_winograd_output(long m, long first, long last, long ho, long wo, long o, long th, long tw,
                                  const float *mm, long ldm, const float *bias, float *y) {
    if (m == 2) output_tiles(4, 2, &AT2[0][0], first, last, ho, wo, o, th, tw, mm, ldm, bias, y);
    else output_tiles(6, 4, &AT4[0][0], first, last, ho, wo, o, th, tw, mm, ldm, bias, y);
}

/* ---- adjoint of the output transform: dyt[p][tile][o] = (A dy A^T)[p], dy zero outside ---- */
/* With A = AT^T: (A dy A^T)[k][l] = sum_ij AT[i][k] dy[i][j] AT[j][l]; `A` below is AT
   transposed (t x m), so the same left/right products apply. */
INLINE void adjoint_chunk(const int t, const int m, const float *A, const int full, long n, const float *const *pixels,
                          long o0, float *dt, long ldm) {
    float d[16][W], tmp[24][W], v[36][W];
    UNROLL for (int q = 0; q < m * m; q++) load(full, n, pixels[q] + o0, d[q]);
    left(t, m, m, A, (const float (*)[W])d, tmp);
    right(t, m, t, A, (const float (*)[W])tmp, v);
    UNROLL for (int p = 0; p < t * t; p++) store(full, n, v[p], dt + p * ldm + o0);
}

INLINE void output_adjoint_tiles(const int t, const int m, const float *A, long first, long last, long ho, long wo,
                                 long o, long th, long tw, const float *dy, float *dyt, long ldm, const float *zero) {
    const float *pixels[16];
    for (long tile = first; tile < last; tile++) {
        const long image = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        const float *img = dy + image * ho * wo * o;
        float *dt = dyt + (tile - first) * o;
        long o0 = 0;
        for (; o0 < o; o0 += W) {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) {
                    const long yy = ty * m + i, xx = tx * m + j;
                    pixels[i * m + j] = (yy < ho && xx < wo) ? img + (yy * wo + xx) * o : zero - o0;
                }
            if (o0 + W <= o) adjoint_chunk(t, m, A, 1, W, pixels, o0, dt, ldm);
            else adjoint_chunk(t, m, A, 0, o - o0, pixels, o0, dt, ldm);
        }
    }
}

static const float A2[4][2] = {{1, 0}, {1, 1}, {1, -1}, {0, -1}};
static const float A4[6][4] = {{1, 0, 0, 0}, {1, 1, 1, 1}, {1, -1, 1, -1}, {1, 2, 4, 8}, {1, -2, 4, -8}, {0, 0, 0, 1}};

CLONES void metaq_winograd_output_adjoint(long m, long first, long last, long ho, long wo, long o, long th, long tw,
                                          const float *dy, float *dyt, long ldm) {
    if (m == 2) output_adjoint_tiles(4, 2, &A2[0][0], first, last, ho, wo, o, th, tw, dy, dyt, ldm, ZERO);
    else output_adjoint_tiles(6, 4, &A4[0][0], first, last, ho, wo, o, th, tw, dy, dyt, ldm, ZERO);
}

/* ---- filters: u[p][c][o] = (G g G^T)[p] from w [(i, j, c), o]; and the adjoint ---- */
INLINE void filter_transform(const int t, const float (*G)[3], long c, long o, const float *w, float *u) {
    const long plane = c * o;
    for (int a = 0; a < t; a++)
        for (int b = 0; b < t; b++) {
            float *dst = u + (a * t + b) * plane;
            for (long q = 0; q < plane; q++) dst[q] = 0;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    const float s = G[a][i] * G[b][j];
                    if (s == 0) continue;
                    const float *src = w + (i * 3 + j) * plane;
                    for (long q = 0; q < plane; q++) dst[q] += s * src[q];
                }
        }
}

INLINE void filter_adjoint(const int t, const float (*G)[3], long c, long o, const float *du, float *dw) {
    const long plane = c * o;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            float *dst = dw + (i * 3 + j) * plane;
            for (long q = 0; q < plane; q++) dst[q] = 0;
            for (int a = 0; a < t; a++)
                for (int b = 0; b < t; b++) {
                    const float s = G[a][i] * G[b][j];
                    if (s == 0) continue;
                    const float *src = du + (a * t + b) * plane;
                    for (long q = 0; q < plane; q++) dst[q] += s * src[q];
                }
        }
}

CLONES void metaq_winograd_filter(long m, long c, long o, const float *w, float *u) {
    if (m == 2) filter_transform(4, G2, c, o, w, u);
    else filter_transform(6, G4, c, o, w, u);
}

CLONES void metaq_winograd_filter_adjoint(long m, long c, long o, const float *du, float *dw) {
    if (m == 2) filter_adjoint(4, G2, c, o, du, dw);
    else filter_adjoint(6, G4, c, o, du, dw);
}
