/*
 * distance_scalar.h
 *	  The sums of distance.c's kernels as plain loops, in the same order
 *	  (four accumulators of eight lanes over blocks of 32, blocks of 8 into
 *	  the first, the lanes combined (s0 + s1) + (s2 + s3), then added in
 *	  float8 as ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)), the tail
 *	  in float8).  Only distance.c calls them, when fct.kernel_variant =
 *	  'scalar'; the results before distance.c's overflow fallback.
 */
#ifndef FCT_DISTANCE_SCALAR_H
#define FCT_DISTANCE_SCALAR_H

#include "postgres.h"

extern float8 scalar_inner_product_lanes(const float4 *a, const float4 *b, int n);
extern float8 scalar_l2_squared_lanes(const float4 *a, const float4 *b, int n);
extern float8 scalar_norm_squared_lanes(const float4 *a, int n);
extern void scalar_cosine_lanes(const float4 *a, const float4 *b, int n,
								float8 *ab, float8 *aa, float8 *bb);

#endif							/* FCT_DISTANCE_SCALAR_H */
