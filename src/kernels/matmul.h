/*
 * matmul.h
 *	  Dense layer products with one fixed rounding per output: the kernel of
 *	  every stored or hashed product (upgrades, migration, the operators'
 *	  on-the-fly upgrade, lsh list assignment).  Pure arithmetic, no catalog.
 *
 * The accumulation order (the definition; kernel_matmul computes exactly
 * this, in float4, every product rounded before its addition, whatever the
 * CPU, the number of rows, or a row's position among them):
 *
 *	 n8 = in_dim rounded down to a multiple of 8
 *	 lane[l] = 0;  for k = 0, 8, ... < n8:  lane[l] += w[o][k + l] * x[k + l]
 *	 t[j] = lane[j] + lane[j + 4]	(j < 4)
 *	 u[j] = t[j] + t[j + 2]			(j < 2)
 *	 s = u[0] + u[1];  for i = n8 .. in_dim - 1:  s += w[o][i] * x[i]
 *	 y[o] = s + bias[o]  (no addition without a bias);  ReLU: y > 0 ? y : 0
 *
 * Why lanes over the input index: a row-major weight (out x in, the order of
 * the spec and of the lsh centres) is read as is, with no packed copy to
 * keep, and eight lanes match one AVX register (two SSE ones), so the
 * vectorised code computes the definition with no reordering at all.
 */
#ifndef FCT_MATMUL_H
#define FCT_MATMUL_H

#include "postgres.h"

/*
 * y[r * ldy + o] = act(bias[o] + <w[o * in_dim ...], x[r * ldx ...]>) for
 * r < rows, o < out_dim, in the order above.  bias may be NULL (no
 * addition); relu applies max(y, 0), NaN giving 0.  w is out_dim x in_dim,
 * row-major.  x and y must not overlap.
 */
extern void kernel_matmul(const float4 *w, const float4 *bias, int out_dim,
						  int in_dim, const float4 *x, int ldx, int rows,
						  float4 *y, int ldy, bool relu);

/*
 * The same definition as plain loops with vectorisation disabled
 * (matmul_scalar.c): what fct.kernel_variant = 'scalar' runs, so that a test
 * can compare the vectorised code's bits with it.
 */
extern void kernel_matmul_scalar(const float4 *w, const float4 *bias,
								 int out_dim, int in_dim, const float4 *x,
								 int ldx, int rows, float4 *y, int ldy,
								 bool relu);

#endif							/* FCT_MATMUL_H */
