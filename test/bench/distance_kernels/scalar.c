/*
 * scalar.c
 *	  The baseline: the plain loops one would write first, compiled by
 *	  test/bench/distance_kernels/run with -O2 -fno-tree-vectorize.
 */
#include <math.h>

#include "bench.h"

double
scalar_inner_product(const float *a, const float *b, int n)
{
	float		s = 0;
	int			i;

	for (i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

double
scalar_l2_squared(const float *a, const float *b, int n)
{
	float		s = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		float		d = a[i] - b[i];

		s += d * d;
	}
	return s;
}

double
scalar_cosine_distance(const float *a, const float *b, int n)
{
	float		ab = 0,
				aa = 0,
				bb = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		ab += a[i] * b[i];
		aa += a[i] * a[i];
		bb += b[i] * b[i];
	}
	if (aa == 0 || bb == 0)
		return 1.0;
	return 1.0 - ab / sqrt((double) aa * bb);
}
