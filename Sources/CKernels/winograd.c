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
#define CLONES __attribute__((target_clones("avx2", "default")))
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

/* Channels per pass of a tile transform: the tile's t * t * CB intermediate stays in L1. */
#define CB 64

/* out[i][j] = sum_k M[i][k] in[k][j], over channel vectors of n: in is R x S (stride rs
   between rows, ss between columns, in vectors of n), out is P x S. */
#define LEFT(P, R, S, M, in, ins_r, ins_s, out, outs_r, outs_s, n)                                   \
    for (int i_ = 0; i_ < (P); i_++)                                                             \
        for (int j_ = 0; j_ < (S); j_++) {                                                       \
            float *o_ = (out) + i_ * (outs_r) + j_ * (outs_s);                                    \
            for (long c_ = 0; c_ < (n); c_++) o_[c_] = 0;                                        \
            for (int k_ = 0; k_ < (R); k_++) {                                                   \
                const float m_ = (M)[i_][k_];                                                    \
                if (m_ == 0) continue;                                                           \
                const float *x_ = (in) + k_ * (ins_r) + j_ * (ins_s);                             \
                if (m_ == 1) for (long c_ = 0; c_ < (n); c_++) o_[c_] += x_[c_];                  \
                else if (m_ == -1) for (long c_ = 0; c_ < (n); c_++) o_[c_] -= x_[c_];            \
                else for (long c_ = 0; c_ < (n); c_++) o_[c_] += m_ * x_[c_];                     \
            }                                                                                    \
        }

/* ---- input transform: v[p][tile][c] = (B^T d B)[p] ---- */
INLINE void input_tiles(const int t, const int m, const float (*BT)[t], long first, long last, long h, long w,
                        long c, long pad, long th, long tw, const float *x, float *v, long ldv) {
    float zero[CB];
    memset(zero, 0, sizeof zero);
    float d[36 * CB], tmp[36 * CB];
    for (long tile = first; tile < last; tile++) {
        const long image = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        const float *img = x + image * h * w * c;
        const long y0 = ty * m - pad, x0 = tx * m - pad;
        float *vt = v + (tile - first) * c;
        for (long c0 = 0; c0 < c; c0 += CB) {
            const long n = c - c0 < CB ? c - c0 : CB;
            /* the tile's pixels, zero outside the image */
            for (int i = 0; i < t; i++) {
                const long yy = y0 + i;
                for (int j = 0; j < t; j++) {
                    const long xx = x0 + j;
                    const float *src = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? img + (yy * w + xx) * c + c0 : zero;
                    memcpy(d + (i * t + j) * CB, src, (size_t)n * sizeof(float));
                }
            }
            LEFT(t, t, t, BT, d, t * CB, CB, tmp, t * CB, CB, n)
            /* v[i][l] = sum_k tmp[i][k] BT[l][k] */
            for (int i = 0; i < t; i++)
                for (int l = 0; l < t; l++) {
                    float *o = vt + (i * t + l) * ldv + c0;
                    for (long cc = 0; cc < n; cc++) o[cc] = 0;
                    for (int k = 0; k < t; k++) {
                        const float b = BT[l][k];
                        if (b == 0) continue;
                        const float *s = tmp + (i * t + k) * CB;
                        if (b == 1) for (long cc = 0; cc < n; cc++) o[cc] += s[cc];
                        else if (b == -1) for (long cc = 0; cc < n; cc++) o[cc] -= s[cc];
                        else for (long cc = 0; cc < n; cc++) o[cc] += b * s[cc];
                    }
                }
        }
    }
}

CLONES void metaq_winograd_input(long m, long first, long last, long h, long w, long c, long pad, long th, long tw,
                                 const float *x, float *v, long ldv) {
    if (m == 2) input_tiles(4, 2, BT2, first, last, h, w, c, pad, th, tw, x, v, ldv);
    else input_tiles(6, 4, BT4, first, last, h, w, c, pad, th, tw, x, v, ldv);
}

/* ---- output transform: y tile = A^T M A (+ bias), pixels inside ho x wo only ---- */
INLINE void output_tiles(const int t, const int m, const float (*AT)[t], long first, long last, long ho, long wo,
                         long o, long th, long tw, const float *mm, long ldm, const float *bias, float *y) {
    float tmp[24 * CB], out[16 * CB];
    for (long tile = first; tile < last; tile++) {
        const long image = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        float *img = y + image * ho * wo * o;
        const float *mt = mm + (tile - first) * o;
        for (long o0 = 0; o0 < o; o0 += CB) {
            const long n = o - o0 < CB ? o - o0 : CB;
            /* tmp[i][l] = sum_k AT[i][k] M[k][l]: m x t */
            LEFT(m, t, t, AT, mt + o0, t * ldm, ldm, tmp, t * CB, CB, n)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) {
                    float *dst = out + (i * m + j) * CB;
                    if (bias) for (long cc = 0; cc < n; cc++) dst[cc] = bias[o0 + cc];
                    else for (long cc = 0; cc < n; cc++) dst[cc] = 0;
                    for (int l = 0; l < t; l++) {
                        const float a = AT[j][l];
                        if (a == 0) continue;
                        const float *s = tmp + (i * t + l) * CB;
                        if (a == 1) for (long cc = 0; cc < n; cc++) dst[cc] += s[cc];
                        else if (a == -1) for (long cc = 0; cc < n; cc++) dst[cc] -= s[cc];
                        else for (long cc = 0; cc < n; cc++) dst[cc] += a * s[cc];
                    }
                }
            for (int i = 0; i < m; i++) {
                const long yy = ty * m + i;
                if (yy >= ho) break;
                for (int j = 0; j < m; j++) {
                    const long xx = tx * m + j;
                    if (xx >= wo) break;
                    memcpy(img + (yy * wo + xx) * o + o0, out + (i * m + j) * CB, (size_t)n * sizeof(float));
                }
            }
        }
    }
}

CLONES void metaq_winograd_output(long m, long first, long last, long ho, long wo, long o, long th, long tw,
                                  const float *mm, long ldm, const float *bias, float *y) {
    if (m == 2) output_tiles(4, 2, AT2, first, last, ho, wo, o, th, tw, mm, ldm, bias, y);
    else output_tiles(6, 4, AT4, first, last, ho, wo, o, th, tw, mm, ldm, bias, y);
}

/* ---- adjoint of the output transform: dyt[p][tile][o] = (A dy A^T)[p], dy zero outside ---- */
INLINE void output_adjoint_tiles(const int t, const int m, const float (*AT)[t], long first, long last, long ho,
                                 long wo, long o, long th, long tw, const float *dy, float *dyt, long ldm) {
    float zero[CB];
    memset(zero, 0, sizeof zero);
    float d[16 * CB], tmp[24 * CB];
    for (long tile = first; tile < last; tile++) {
        const long image = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        const float *img = dy + image * ho * wo * o;
        float *dt = dyt + (tile - first) * o;
        for (long o0 = 0; o0 < o; o0 += CB) {
            const long n = o - o0 < CB ? o - o0 : CB;
            for (int i = 0; i < m; i++) {
                const long yy = ty * m + i;
                for (int j = 0; j < m; j++) {
                    const long xx = tx * m + j;
                    const float *src = (yy < ho && xx < wo) ? img + (yy * wo + xx) * o + o0 : zero;
                    memcpy(d + (i * m + j) * CB, src, (size_t)n * sizeof(float));
                }
            }
            /* tmp[k][j] = sum_i AT[i][k] dy[i][j]: t x m */
            for (int k = 0; k < t; k++)
                for (int j = 0; j < m; j++) {
                    float *dst = tmp + (k * m + j) * CB;
                    for (long cc = 0; cc < n; cc++) dst[cc] = 0;
                    for (int i = 0; i < m; i++) {
                        const float a = AT[i][k];
                        if (a == 0) continue;
                        const float *s = d + (i * m + j) * CB;
                        if (a == 1) for (long cc = 0; cc < n; cc++) dst[cc] += s[cc];
                        else if (a == -1) for (long cc = 0; cc < n; cc++) dst[cc] -= s[cc];
                        else for (long cc = 0; cc < n; cc++) dst[cc] += a * s[cc];
                    }
                }
            /* dyt[k][l] = sum_j tmp[k][j] AT[j][l] */
            for (int k = 0; k < t; k++)
                for (int l = 0; l < t; l++) {
                    float *dst = dt + (k * t + l) * ldm + o0;
                    for (long cc = 0; cc < n; cc++) dst[cc] = 0;
                    for (int j = 0; j < m; j++) {
                        const float a = AT[j][l];
                        if (a == 0) continue;
                        const float *s = tmp + (k * m + j) * CB;
                        if (a == 1) for (long cc = 0; cc < n; cc++) dst[cc] += s[cc];
                        else if (a == -1) for (long cc = 0; cc < n; cc++) dst[cc] -= s[cc];
                        else for (long cc = 0; cc < n; cc++) dst[cc] += a * s[cc];
                    }
                }
        }
    }
}

CLONES void metaq_winograd_output_adjoint(long m, long first, long last, long ho, long wo, long o, long th, long tw,
                                          const float *dy, float *dyt, long ldm) {
    if (m == 2) output_adjoint_tiles(4, 2, AT2, first, last, ho, wo, o, th, tw, dy, dyt, ldm);
    else output_adjoint_tiles(6, 4, AT4, first, last, ho, wo, o, th, tw, dy, dyt, ldm);
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
