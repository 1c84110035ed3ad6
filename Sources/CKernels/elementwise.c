#include "metaq_kernels.h"
#include <string.h>

/* Elementwise kernels over contiguous float runs. Each loop is branch-free and has one
   operation fixed outside it, so the compiler vectorises it; the caller (Swift) splits the
   work across threads and calls these on disjoint ranges. */

#define BINARY_LOOP(EXPR)                                                              \
    switch (mode) {                                                                    \
    case METAQ_SAME:                                                                   \
        for (long i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); }       \
        break;                                                                         \
    case METAQ_B_SCALAR: {                                                             \
        const float y = b[0];                                                          \
        for (long i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }                 \
        break;                                                                         \
    }                                                                                  \
    case METAQ_A_SCALAR: {                                                             \
        const float x = a[0];                                                          \
        for (long i = 0; i < n; i++) { float y = b[i]; o[i] = (EXPR); }                 \
        break;                                                                         \
    }                                                                                  \
    }

void metaq_binary(int op, int mode, long n, const float *restrict a, const float *restrict b,
                  float *restrict o) {
    switch (op) {
    case METAQ_ADD: BINARY_LOOP(x + y) break;
    case METAQ_SUB: BINARY_LOOP(x - y) break;
    case METAQ_MUL: BINARY_LOOP(x * y) break;
    case METAQ_DIV: BINARY_LOOP(x / y) break;
    case METAQ_GE: BINARY_LOOP(x >= y ? 1.0f : 0.0f) break;
    }
}

#define ROWS_LOOP(EXPR)                                                                \
    if (block_is_b) {                                                                  \
        for (long r = 0; r < rows; r++) {                                              \
            const float *ar = a + r * width; float *orow = o + r * width;              \
            for (long j = 0; j < width; j++) { float x = ar[j], y = b[j]; orow[j] = (EXPR); } \
        }                                                                              \
    } else {                                                                           \
        for (long r = 0; r < rows; r++) {                                              \
            const float *br = b + r * width; float *orow = o + r * width;              \
            for (long j = 0; j < width; j++) { float x = a[j], y = br[j]; orow[j] = (EXPR); } \
        }                                                                              \
    }

void metaq_binary_rows(int op, int block_is_b, long rows, long width, const float *restrict a,
                       const float *restrict b, float *restrict o) {
    switch (op) {
    case METAQ_ADD: ROWS_LOOP(x + y) break;
    case METAQ_SUB: ROWS_LOOP(x - y) break;
    case METAQ_MUL: ROWS_LOOP(x * y) break;
    case METAQ_DIV: ROWS_LOOP(x / y) break;
    case METAQ_GE: ROWS_LOOP(x >= y ? 1.0f : 0.0f) break;
    }
}

void metaq_affine_scalar(long n, const float *restrict x, float scale, float shift, float *restrict o) {
    for (long i = 0; i < n; i++) o[i] = x[i] * scale + shift;
}

void metaq_relu(long n, const float *restrict x, float *restrict o) {
    for (long i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : 0.0f;
}

void metaq_relu_backward(long n, const float *restrict g, const float *restrict x, float *restrict o) {
    for (long i = 0; i < n; i++) o[i] = x[i] > 0 ? g[i] : 0.0f;
}

void metaq_im2col(long first, long last, long h, long w, long c, long kernel, long stride, long padding,
                  long ho, long wo, const float *restrict src, float *restrict dst) {
    const long width = kernel * kernel * c;
    for (long b = first; b < last; b++) {
        const float *image = src + b * h * w * c;
        for (long oh = 0; oh < ho; oh++) {
            for (long ow = 0; ow < wo; ow++) {
                float *row = dst + ((b * ho + oh) * wo + ow) * width;
                for (long ki = 0; ki < kernel; ki++) {
                    const long ih = oh * stride - padding + ki;
                    for (long kj = 0; kj < kernel; kj++, row += c) {
                        const long iw = ow * stride - padding + kj;
                        if (ih >= 0 && ih < h && iw >= 0 && iw < w) {
                            const float *from = image + (ih * w + iw) * c;
                            if (c == 1) row[0] = from[0];
                            else memcpy(row, from, (size_t)c * sizeof(float));
                        } else {
                            if (c == 1) row[0] = 0;
                            else memset(row, 0, (size_t)c * sizeof(float));
                        }
                    }
                }
            }
        }
    }
}

void metaq_col2im(long first, long last, long h, long w, long c, long kernel, long stride, long padding,
                  long ho, long wo, const float *restrict src, float *restrict dst) {
    const long width = kernel * kernel * c;
    for (long b = first; b < last; b++) {
        float *image = dst + b * h * w * c;
        memset(image, 0, (size_t)(h * w * c) * sizeof(float));
        for (long oh = 0; oh < ho; oh++) {
            for (long ow = 0; ow < wo; ow++) {
                const float *row = src + ((b * ho + oh) * wo + ow) * width;
                for (long ki = 0; ki < kernel; ki++) {
                    const long ih = oh * stride - padding + ki;
                    for (long kj = 0; kj < kernel; kj++, row += c) {
                        const long iw = ow * stride - padding + kj;
                        if (ih >= 0 && ih < h && iw >= 0 && iw < w) {
                            float *to = image + (ih * w + iw) * c;
                            for (long k = 0; k < c; k++) to[k] += row[k];
                        }
                    }
                }
            }
        }
    }
}

void metaq_max_pool(long first, long last, long h, long w, long c, long size, long ho, long wo,
                    const float *restrict src, float *restrict out, int *restrict indices) {
    for (long b = first; b < last; b++) {
        for (long oh = 0; oh < ho; oh++) {
            for (long ow = 0; ow < wo; ow++) {
                const long base = ((b * ho + oh) * wo + ow) * c;
                const long corner = ((b * h + oh * size) * w + ow * size) * c;
                for (long k = 0; k < c; k++) { out[base + k] = src[corner + k]; indices[base + k] = (int)(corner + k); }
                for (long di = 0; di < size; di++) {
                    for (long dj = 0; dj < size; dj++) {
                        if (di == 0 && dj == 0) continue;
                        const long at = ((b * h + oh * size + di) * w + ow * size + dj) * c;
                        for (long k = 0; k < c; k++) {
                            const float v = src[at + k];
                            const int better = v > out[base + k];
                            out[base + k] = better ? v : out[base + k];
                            indices[base + k] = better ? (int)(at + k) : indices[base + k];
                        }
                    }
                }
            }
        }
    }
}
