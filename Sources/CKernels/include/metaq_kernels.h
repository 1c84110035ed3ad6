#ifndef METAQ_KERNELS_H
#define METAQ_KERNELS_H

#include <stddef.h>

/// C_i = op(A_i) * op(B_i) for i in [first, last), row-major, where op is an optional
/// transpose. A_i starts at a + i * stride_a, B_i at b + i * stride_b, C_i at c + i * m * n.
/// Tuned for the small products of meta-learning (m, n, k up to a few hundred); uses AVX2 and
/// FMA when the CPU has them, portable C otherwise.
void metaq_small_gemm(long first, long last, long m, long n, long k,
                      const float *a, int transpose_a, long stride_a,
                      const float *b, int transpose_b, long stride_b,
                      float *c);

/// Per thread: nonzero while a first-order backward pass runs, so that the tensor operations
/// of derivative rules record no graph (see metaq_recording_paused). Initial-exec TLS: one
/// load from the thread pointer, no call.
extern _Thread_local int metaq_recording_paused_flag __attribute__((tls_model("initial-exec")));
/// Whether this thread's tensor operations record no graph right now.
static inline int metaq_recording_paused(void) { return metaq_recording_paused_flag; }
/// Sets this thread's flag; returns the previous value (to restore it afterwards).
static inline int metaq_set_recording_paused(int paused) {
    int previous = metaq_recording_paused_flag;
    metaq_recording_paused_flag = paused;
    return previous;
}

/// A cache of freed blocks for reuse by blocks of exactly the same size (block_cache.c):
/// at most METAQ_CACHE_SIZES distinct sizes, blocks of METAQ_CACHE_MINIMUM_BYTES or more,
/// METAQ_CACHE_CAPACITY_BYTES held in all (the shared cache: up to the process's peak of live
/// tensor memory when that is larger, at most a quarter of physical memory). Thread-safe. Blocks are malloc-family memory
/// (freed with free() when the cache makes room).
#define METAQ_CACHE_SIZES 128
#define METAQ_CACHE_MINIMUM_BYTES (16L << 10)
#define METAQ_CACHE_CAPACITY_BYTES (512L << 20)
typedef struct metaq_block_cache metaq_block_cache;
/// The process-wide cache tensor buffers use (static: no initialisation on first use).
metaq_block_cache *metaq_block_cache_shared(void);
/// A separate, empty cache (tests); destroy frees its bookkeeping, not the blocks it holds.
metaq_block_cache *metaq_block_cache_create(void);
void metaq_block_cache_destroy(metaq_block_cache *cache);
/// A cached block of exactly `bytes`, or NULL.
void *metaq_block_cache_take(metaq_block_cache *cache, long bytes);
/// Keeps `block` for reuse; 0 when the cache declines it (too small, or no room).
int metaq_block_cache_keep(metaq_block_cache *cache, void *block, long bytes);
/// Counters of the bytes tensor buffers hold: now, and the most since the last reset.
void metaq_memory_allocated(long bytes);
void metaq_memory_freed(long bytes);
long metaq_memory_live(void);
long metaq_memory_peak(void);
void metaq_memory_reset_peak(void);

/// Binary operations and operand layouts for metaq_binary / metaq_binary_rows.
enum { METAQ_ADD = 0, METAQ_SUB = 1, METAQ_MUL = 2, METAQ_DIV = 3, METAQ_GE = 4 };
enum { METAQ_SAME = 0, METAQ_B_SCALAR = 1, METAQ_A_SCALAR = 2 };

/// o[i] = a[i] op b[i] over n elements; with METAQ_B_SCALAR (METAQ_A_SCALAR) b (a) is one value.
void metaq_binary(int op, int mode, long n, const float *a, const float *b, float *o);
/// o = a op b over `rows` rows of `width`, where the block operand (b when block_is_b, else a)
/// is one row repeated for every row.
void metaq_binary_rows(int op, int block_is_b, long rows, long width, const float *a, const float *b, float *o);
/// o[r, j] += row[j] for `rows` rows of `width` (a bias added in place).
void metaq_add_row(long rows, long width, float *o, const float *row);
/// o[i] = x[i] * scale + shift.
void metaq_affine_scalar(long n, const float *x, float scale, float shift, float *o);
/// acc[i] += g[i] (gradient accumulation in place).
void metaq_accumulate(long n, float *acc, const float *g);
/// o[i] = a[i] - scale * b[i] (an SGD step).
void metaq_sub_scaled(long n, const float *a, const float *b, float scale, float *o);
/// One Adam step over n elements: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// o = p - step_size * m / (sqrt(v) / c2_root + epsilon). Rounded like the plain expression
/// (no contraction into fused multiply-adds).
void metaq_adam(long n, const float *p, const float *g, float *m, float *v, float beta1, float beta2,
                float step_size, float c2_root, float epsilon, float *o);
/// o[i] = max(x[i], 0), and its backward o[i] = x[i] > 0 ? g[i] : 0.
void metaq_relu(long n, const float *x, float *o);
void metaq_relu_backward(long n, const float *g, const float *x, float *o);
/// o[i] = x[i] > 0 ? x[i] : slope * x[i], and its backward o[i] = x[i] > 0 ? g[i] : slope * g[i].
void metaq_leaky_relu(long n, const float *x, float slope, float *o);
void metaq_leaky_relu_backward(long n, const float *g, const float *x, float slope, float *o);
/// im2col / col2im of NHWC images first..<last (col2im zero-fills those images first).
void metaq_im2col(long first, long last, long h, long w, long c, long kernel, long stride, long padding,
                  long ho, long wo, const float *src, float *dst);
void metaq_col2im(long first, long last, long h, long w, long c, long kernel, long stride, long padding,
                  long ho, long wo, const float *src, float *dst);
/// Max-pooling of NHWC images first..<last over size x size windows with stride size; writes
/// the maxima and the flat index of each one (the first of ties).
void metaq_max_pool(long first, long last, long h, long w, long c, long size, long ho, long wo,
                    const float *src, float *out, int *indices);

/// Per-channel statistics over `rows` rows of `width` channels, accumulated into the outputs:
/// sums[j] += x[r, j]; sums[j] += (x[r, j] - mean[j])^2; and sg[j] += g, sgh[j] += g * h.
void metaq_column_sums(long rows, long width, const float *x, float *sums);
void metaq_column_squared_deviations(long rows, long width, const float *x, const float *mean, float *sums);
void metaq_column_sums2(long rows, long width, const float *g, const float *h, float *sg, float *sgh);
/// out = (x - mean) * inv per channel, and its backward
/// out = inv * (g - mean_g - h * mean_gh) with h the normalised values.
void metaq_normalize_rows(long rows, long width, const float *x, const float *mean, const float *inv, float *out);
void metaq_normalize_backward_rows(long rows, long width, const float *g, const float *h, const float *inv,
                                   const float *mean_g, const float *mean_gh, float *out);

/// y = max(x * s + b, 0) with per-channel s and b, and its backward: with gm = (y > 0 ? g : 0),
/// dx = gm * s, and ds[j] += gm * x, db[j] += gm accumulated over the rows.
void metaq_affine_relu(long rows, long width, const float *x, const float *s, const float *b, float *y);
void metaq_affine_relu_backward(long rows, long width, const float *g, const float *x, const float *y,
                                const float *s, float *dx, float *ds, float *db);

/// The tail of a conv4 block fused (normalized_pooling.c): for images first..<last of one
/// statistics group, a = (x - mean) * inv * s + b per channel, out = max(window max of a, 0)
/// over size x size windows with stride size, indices = flat index in x of each window's
/// first largest a. Backward, first order: with gm = (out > 0 ? g : 0) and h the normalised
/// x at the recorded index, ds[k] += gm * h and db[k] += gm over `rows` pooled rows; then
/// dx = inv * (gh - mean_g - h * mean_gh) with gh = gm * s at the recorded indices, 0 elsewhere.
void metaq_norm_relu_pool(long first, long last, long h, long w, long c, long size, long ho, long wo,
                          const float *x, const float *mean, const float *inv, const float *s, const float *b,
                          float *out, int *indices);
void metaq_norm_relu_pool_sums(long rows, long c, const float *g, const float *out, const int *indices,
                               const float *x, const float *mean, const float *inv, float *ds, float *db);
void metaq_norm_relu_pool_backward(long first, long last, long h, long w, long c, long ho, long wo,
                                   const float *g, const float *out, const int *indices, const float *x,
                                   const float *mean, const float *inv, const float *s, const float *mean_g,
                                   const float *mean_gh, float *dx);

/// Winograd F(m x m, 3 x 3) convolution transforms (winograd.c), m = 2 or 4, t = m + 2.
/// Tiles are numbered (image, tile row, tile column) with th x tw tiles per image; tile
/// (ty, tx) reads input rows ty * m - pad ..< ty * m - pad + t (zero outside the image) and
/// writes output rows ty * m ..< ty * m + m (those inside ho x wo). For tiles first..<last,
/// entry p of tile `tile` lives at base + p * ld + (tile - first) * channels.
/// Input: v = B^T d B of h x w x c images x. Output: y = A^T M A (+ bias [o]) from m.
/// Output adjoint: dyt = A dy A^T of the gradient dy [ho, wo, o] (for the filter gradient).
/// Filter: u[p][c][o] = G g G^T of w [(i, j, c), o]; filter adjoint: dw = the transpose map.
void metaq_winograd_input(long m, long first, long last, long h, long w, long c, long pad, long th, long tw,
                          const float *x, float *v, long ldv);
void metaq_winograd_output(long m, long first, long last, long ho, long wo, long o, long th, long tw,
                           const float *mm, long ldm, const float *bias, float *y);
void metaq_winograd_output_adjoint(long m, long first, long last, long ho, long wo, long o, long th, long tw,
                                   const float *dy, float *dyt, long ldm);
void metaq_winograd_filter(long m, long c, long o, const float *w, float *u);
void metaq_winograd_filter_adjoint(long m, long c, long o, const float *du, float *dw);

/// A spin-wait hint to the CPU (x86 `pause`); nothing elsewhere.
void metaq_cpu_relax(void);

#endif
