#include "metaq_kernels.h"

/* The tail of a conv4 block, fused: batch normalisation (statistics given), per-channel scale
   and shift, ReLU and max-pooling, forward and (first-order) backward. Expressions match the
   unfused kernels (metaq_normalize_rows, metaq_affine_relu, metaq_max_pool) so the fused and
   unfused paths pick the same window maxima. */

#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

CLONES void metaq_norm_relu_pool(long first, long last, long h, long w, long c, long size, long ho, long wo,
                                 const float *restrict x, const float *restrict mean, const float *restrict inv,
                                 const float *restrict s, const float *restrict b,
                                 float *restrict out, int *restrict indices) {
    for (long img = first; img < last; img++) {
        for (long oh = 0; oh < ho; oh++) {
            for (long ow = 0; ow < wo; ow++) {
                float *restrict best = out + ((img * ho + oh) * wo + ow) * c;
                int *restrict where = indices + ((img * ho + oh) * wo + ow) * c;
                for (long di = 0; di < size; di++) {
                    for (long dj = 0; dj < size; dj++) {
                        const long at = ((img * h + oh * size + di) * w + ow * size + dj) * c;
                        const float *restrict cand = x + at;
                        if (di == 0 && dj == 0) {
                            for (long k = 0; k < c; k++) {
                                best[k] = ((cand[k] - mean[k]) * inv[k]) * s[k] + b[k];
                                where[k] = (int)(at + k);
                            }
                            continue;
                        }
                        for (int k = 0; k < (int)c; k++) {
                            const float v = ((cand[k] - mean[k]) * inv[k]) * s[k] + b[k], cur = best[k];
                            const int better = v > cur;
                            best[k] = better ? v : cur;
                            where[k] = better ? (int)at + k : where[k];
                        }
                    }
                }
                for (long k = 0; k < c; k++) best[k] = best[k] > 0 ? best[k] : 0.0f;
            }
        }
    }
}

CLONES void metaq_norm_relu_pool_sums(long rows, long c, const float *restrict g, const float *restrict out,
                                      const int *restrict indices, const float *restrict x,
                                      const float *restrict mean, const float *restrict inv,
                                      float *restrict ds, float *restrict db) {
    for (long r = 0; r < rows; r++) {
        const float *gr = g + r * c, *orow = out + r * c;
        const int *ir = indices + r * c;
        for (long k = 0; k < c; k++) {
            const float gm = orow[k] > 0 ? gr[k] : 0.0f;
            const float hk = (x[ir[k]] - mean[k]) * inv[k];
            ds[k] += gm * hk;
            db[k] += gm;
        }
    }
}

CLONES void metaq_norm_relu_pool_backward(long first, long last, long h, long w, long c, long ho, long wo,
                                          const float *restrict g, const float *restrict out,
                                          const int *restrict indices, const float *restrict x,
                                          const float *restrict mean, const float *restrict inv,
                                          const float *restrict s, const float *restrict mean_g,
                                          const float *restrict mean_gh, float *restrict dx) {
    for (long img = first; img < last; img++) {
        const float *xi = x + img * h * w * c;
        float *di = dx + img * h * w * c;
        for (long p = 0; p < h * w; p++) {
            const float *xr = xi + p * c;
            float *dr = di + p * c;
            for (long k = 0; k < c; k++) {
                const float hk = (xr[k] - mean[k]) * inv[k];
                dr[k] = inv[k] * (0.0f - mean_g[k] - hk * mean_gh[k]);
            }
        }
        const long pooled = ho * wo * c, base = img * pooled;
        for (long r = 0; r < ho * wo; r++) {
            for (long k = 0; k < c; k++) {
                const long e = base + r * c + k;
                const float gm = out[e] > 0 ? g[e] : 0.0f;
                dx[indices[e]] += inv[k] * (gm * s[k]);
            }
        }
    }
}
