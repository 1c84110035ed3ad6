#include "metaq_kernels.h"
#include <string.h>

/* Elementwise kernels over contiguous float runs. Each loop is branch-free and has one
   operation fixed outside it, so the compiler vectorises it; the caller (Swift) splits the
   work across threads and calls these on disjoint ranges. Every load is unconditional, so
   selects become blends; CLONES builds an AVX2 copy beside the baseline one, picked at load
   time by the CPU (without AVX's blend instructions the vectoriser gives up on selects). */

#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

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

CLONES void metaq_binary(int op, int mode, long n, const float *restrict a, const float *restrict b,
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

CLONES void metaq_binary_rows(int op, int block_is_b, long rows, long width, const float *restrict a,
                       const float *restrict b, float *restrict o) {
    switch (op) {
    case METAQ_ADD: ROWS_LOOP(x + y) break;
    case METAQ_SUB: ROWS_LOOP(x - y) break;
    case METAQ_MUL: ROWS_LOOP(x * y) break;
    case METAQ_DIV: ROWS_LOOP(x / y) break;
    case METAQ_GE: ROWS_LOOP(x >= y ? 1.0f : 0.0f) break;
    }
}

CLONES void metaq_add_row(long rows, long width, float *restrict o, const float *restrict row) {
    for (long r = 0; r < rows; r++) {
        float *orow = o + r * width;
        for (long j = 0; j < width; j++) orow[j] += row[j];
    }
}

CLONES void metaq_affine_scalar(long n, const float *restrict x, float scale, float shift, float *restrict o) {
    for (long i = 0; i < n; i++) o[i] = x[i] * scale + shift;
}

CLONES void metaq_adam(long n, const float *restrict p, const float *restrict g, float *restrict m,
                       float *restrict v, float beta1, float beta2, float step_size, float c2_root,
                       float epsilon, float *restrict o) {
#pragma STDC FP_CONTRACT OFF
    for (long i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        o[i] = p[i] - step_size * m[i] / (__builtin_sqrtf(v[i]) / c2_root + epsilon);
    }
}

CLONES void metaq_accumulate(long n, float *restrict acc, const float *restrict g) {
    for (long i = 0; i < n; i++) acc[i] += g[i];
}

CLONES void metaq_sub_scaled(long n, const float *restrict a, const float *restrict b, float scale, float *restrict o) {
    for (long i = 0; i < n; i++) o[i] = a[i] - scale * b[i];
}

CLONES void metaq_relu(long n, const float *restrict x, float *restrict o) {
    for (long i = 0; i < n; i++) { const float xv = x[i]; o[i] = xv > 0 ? xv : 0.0f; }
}

CLONES void metaq_relu_backward(long n, const float *restrict g, const float *restrict x, float *restrict o) {
    for (long i = 0; i < n; i++) { const float gv = g[i], xv = x[i]; o[i] = xv > 0 ? gv : 0.0f; }
}

CLONES void metaq_leaky_relu(long n, const float *restrict x, float slope, float *restrict o) {
    for (long i = 0; i < n; i++) { const float xv = x[i]; o[i] = xv > 0 ? xv : slope * xv; }
}

CLONES void metaq_leaky_relu_backward(long n, const float *restrict g, const float *restrict x, float slope,
                                      float *restrict o) {
    for (long i = 0; i < n; i++) { const float gv = g[i], xv = x[i]; o[i] = xv > 0 ? gv : slope * gv; }
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

CLONES void metaq_col2im(long first, long last, long h, long w, long c, long kernel, long stride, long padding,
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

CLONES void metaq_max_pool(long first, long last, long h, long w, long c, long size, long ho, long wo,
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
                        float *restrict best = out + base;
                        int *restrict where = indices + base;
                        const float *restrict cand = src + at;
                        const int first = (int)at;
                        for (int k = 0; k < (int)c; k++) {
                            const float v = cand[k], cur = best[k];
                            const int ci = where[k];
                            const int better = v > cur;
                            best[k] = better ? v : cur;
                            where[k] = better ? first + k : ci;
                        }
                    }
                }
            }
        }
    }
}

/* Batch-norm style statistics over `rows` rows of `width` channels (NHWC: channels last). */
CLONES void metaq_column_sums(long rows, long width, const float *restrict x, float *restrict sums) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * width;
        for (long j = 0; j < width; j++) sums[j] += row[j];
    }
}

CLONES void metaq_column_squared_deviations(long rows, long width, const float *restrict x,
                                            const float *restrict mean, float *restrict sums) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * width;
        for (long j = 0; j < width; j++) { const float d = row[j] - mean[j]; sums[j] += d * d; }
    }
}

CLONES void metaq_normalize_rows(long rows, long width, const float *restrict x, const float *restrict mean,
                                 const float *restrict inv, float *restrict out) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * width;
        float *o = out + r * width;
        for (long j = 0; j < width; j++) o[j] = (row[j] - mean[j]) * inv[j];
    }
}

CLONES void metaq_column_sums2(long rows, long width, const float *restrict g, const float *restrict h,
                               float *restrict sg, float *restrict sgh) {
    for (long r = 0; r < rows; r++) {
        const float *gr = g + r * width, *hr = h + r * width;
        for (long j = 0; j < width; j++) { sg[j] += gr[j]; sgh[j] += gr[j] * hr[j]; }
    }
}

CLONES void metaq_normalize_backward_rows(long rows, long width, const float *restrict g, const float *restrict h,
                                          const float *restrict inv, const float *restrict mean_g,
                                          const float *restrict mean_gh, float *restrict out) {
    for (long r = 0; r < rows; r++) {
        const float *gr = g + r * width, *hr = h + r * width;
        float *o = out + r * width;
        for (long j = 0; j < width; j++) o[j] = inv[j] * (gr[j] - mean_g[j] - hr[j] * mean_gh[j]);
    }
}

/* y = max(x * s + b, 0) per channel (the batch-norm scale and shift followed by ReLU). */
CLONES void metaq_affine_relu(long rows, long width, const float *restrict x, const float *restrict s,
                              const float *restrict b, float *restrict y) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        for (long j = 0; j < width; j++) { const float v = xr[j] * s[j] + b[j]; yr[j] = v > 0 ? v : 0.0f; }
    }
}

/* Its backward: with gm = (y > 0 ? g : 0), dx = gm * s, ds[j] += gm * x, db[j] += gm. */
CLONES void metaq_affine_relu_backward(long rows, long width, const float *restrict g, const float *restrict x,
                                       const float *restrict y, const float *restrict s, float *restrict dx,
                                       float *restrict ds, float *restrict db) {
    for (long r = 0; r < rows; r++) {
        const float *gr = g + r * width, *xr = x + r * width, *yr = y + r * width;
        float *dr = dx + r * width;
        for (long j = 0; j < width; j++) {
            const float gv = gr[j], yv = yr[j];
            const float gm = yv > 0 ? gv : 0.0f;
            dr[j] = gm * s[j];
            ds[j] += gm * xr[j];
            db[j] += gm;
        }
    }
}

_Thread_local int metaq_recording_paused_flag __attribute__((tls_model("initial-exec"))) = 0;

void metaq_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
