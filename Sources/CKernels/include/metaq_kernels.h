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

#endif
