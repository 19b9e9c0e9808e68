/*
 * distance.h
 *	  Distance kernels over float4 arrays: pure arithmetic, no catalog, no
 *	  models.  Single-pair kernels are written so that the compiler vectorises
 *	  them; batched forms score one query against many rows.  Each gives the
 *	  same bits on every CPU and with fct.kernel_variant = 'scalar'.
 */
#ifndef FCT_DISTANCE_H
#define FCT_DISTANCE_H

#include "postgres.h"

extern float8 kernel_l2_squared(const float4 *a, const float4 *b, int n);
extern float8 kernel_inner_product(const float4 *a, const float4 *b, int n);
extern float8 kernel_norm_squared(const float4 *a, int n);

/* 1 - cos(a, b); 1 (orthogonal) when either vector is zero, never NaN. */
extern float8 kernel_cosine_distance(const float4 *a, const float4 *b, int n);

/*
 * Batched: out[i] = <q, rows[i*n .. i*n+n-1]> for i < nrows, as float4 in
 * kernel_matmul's order (matmul.h), not kernel_inner_product's.  rows is
 * row-major, nrows x n.
 */
extern void kernel_inner_product_batch(const float4 *q, const float4 *rows,
									   int nrows, int n, float4 *out);

#endif							/* FCT_DISTANCE_H */
