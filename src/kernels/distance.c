/*
 * distance.c
 *	  Distance kernels over float4 arrays.
 *
 * Pure arithmetic: no catalog, no models, no allocation, no error reporting
 * (the callers check dimensions), so the benchmark in test/bench can link
 * this file on its own.
 *
 * Vectorisation.  A floating-point sum is a serial dependency chain, and gcc
 * does not reorder it without -ffast-math, so a plain loop runs one addition
 * per cycle at best.  The kernels therefore accumulate in explicit vectors of
 * eight float4 lanes (gcc's vector extension), several of them at once so that
 * consecutive iterations do not wait for each other; the lanes are added up in
 * float8 at the end.  Each kernel is compiled twice (target_clones): for
 * x86-64-v3 (AVX2 and FMA: one 256-bit fused multiply-add per element group)
 * and for the baseline x86-64 (the same vectors as pairs of SSE registers),
 * and the dynamic loader picks the clone the CPU supports.  Summing in float4
 * lanes rounds a little differently from a float8 loop (relative error about
 * 1e-7 * sqrt(n)), which is the precision of the stored values anyway.
 * test/bench/distance_kernels measures these against a scalar loop and
 * OpenBLAS's cblas_sdot.
 *
 * Determinism.  These kernels feed IMMUTABLE operators and the lsh hash, so
 * their bits must not depend on the clone: the order of every addition is
 * fixed by the code (four accumulators over blocks of 32, then blocks of 8
 * into the first, a fixed tree, the tail in float8), the compiler does not
 * reassociate floating-point arithmetic, and the Makefile's -ffp-contract=off
 * keeps the x86-64-v3 clone from fusing a multiply and an add into an FMA
 * (which the baseline clone cannot do).  distance_scalar.c writes the same
 * orders as plain loops: fct.kernel_variant = 'scalar' runs them, and the
 * tests check that both give the same bits.
 */
#include "postgres.h"

#include <math.h>

#include "kernels/distance.h"
#include "kernels/distance_scalar.h"
#include "kernels/matmul.h"
#include "kernels/variant.h"

/* The benchmark defines FCT_KERNEL_CLONES empty to measure the baseline clone. */
#ifndef FCT_KERNEL_CLONES
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
	defined(__has_attribute)
#if __has_attribute(target_clones)
#define FCT_KERNEL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#endif
#ifndef FCT_KERNEL_CLONES
#define FCT_KERNEL_CLONES
#endif

/* Eight float4 lanes; aligned(4) because the values follow a 16-byte header. */
typedef float4 v8sf __attribute__((vector_size(32), aligned(4), may_alias));

#define LANES 8

/* Sum of the lanes, in float8 (by pointer: vector arguments change the ABI). */
static inline float8
hsum(const v8sf *v)
{
	/* pairwise, which also leaves gcc independent additions to schedule */
	return (((float8) (*v)[0] + (*v)[4]) + ((float8) (*v)[1] + (*v)[5])) +
		(((float8) (*v)[2] + (*v)[6]) + ((float8) (*v)[3] + (*v)[7]));
}

#define LOAD(p) (*(const v8sf *) (p))

/*
 * Float4 lanes overflow when the values are large (|x| above ~1e19 squares
 * past FLT_MAX) and underflow when they are tiny; the kernels then redo the
 * sum in float8, which holds every square of a float4.  Rare, so plain loops.
 */
static float8
inner_product_f8(const float4 *a, const float4 *b, int n)
{
	float8		s = 0;
	int			i;

	for (i = 0; i < n; i++)
		s += (float8) a[i] * b[i];
	return s;
}

static float8
l2_squared_f8(const float4 *a, const float4 *b, int n)
{
	float8		s = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		float8		d = (float8) a[i] - b[i];

		s += d * d;
	}
	return s;
}

FCT_KERNEL_CLONES
static float8
inner_product_lanes(const float4 *a, const float4 *b, int n)
{
	v8sf		s0 = {0},
				s1 = {0},
				s2 = {0},
				s3 = {0};
	float8		sum;
	int			i = 0;

	for (; i + 4 * LANES <= n; i += 4 * LANES)
	{
		s0 += LOAD(a + i) * LOAD(b + i);
		s1 += LOAD(a + i + LANES) * LOAD(b + i + LANES);
		s2 += LOAD(a + i + 2 * LANES) * LOAD(b + i + 2 * LANES);
		s3 += LOAD(a + i + 3 * LANES) * LOAD(b + i + 3 * LANES);
	}
	for (; i + LANES <= n; i += LANES)
		s0 += LOAD(a + i) * LOAD(b + i);
	s0 = (s0 + s1) + (s2 + s3);
	sum = hsum(&s0);
	for (; i < n; i++)
		sum += (float8) a[i] * b[i];
	return sum;
}

float8
kernel_inner_product(const float4 *a, const float4 *b, int n)
{
	float8		sum;

	if (kernel_variant == KERNEL_VARIANT_SCALAR)
		sum = scalar_inner_product_lanes(a, b, n);
	else
		sum = inner_product_lanes(a, b, n);
	if (unlikely(!isfinite(sum)))
		return inner_product_f8(a, b, n);
	return sum;
}

FCT_KERNEL_CLONES
static float8
l2_squared_lanes(const float4 *a, const float4 *b, int n)
{
	v8sf		s0 = {0},
				s1 = {0},
				s2 = {0},
				s3 = {0};
	v8sf		d0,
				d1,
				d2,
				d3;
	float8		sum;
	int			i = 0;

	for (; i + 4 * LANES <= n; i += 4 * LANES)
	{
		d0 = LOAD(a + i) - LOAD(b + i);
		d1 = LOAD(a + i + LANES) - LOAD(b + i + LANES);
		d2 = LOAD(a + i + 2 * LANES) - LOAD(b + i + 2 * LANES);
		d3 = LOAD(a + i + 3 * LANES) - LOAD(b + i + 3 * LANES);
		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i + LANES <= n; i += LANES)
	{
		d0 = LOAD(a + i) - LOAD(b + i);
		s0 += d0 * d0;
	}
	s0 = (s0 + s1) + (s2 + s3);
	sum = hsum(&s0);
	for (; i < n; i++)
	{
		float8		d = (float8) a[i] - b[i];

		sum += d * d;
	}
	return sum;
}

float8
kernel_l2_squared(const float4 *a, const float4 *b, int n)
{
	float8		sum;

	if (kernel_variant == KERNEL_VARIANT_SCALAR)
		sum = scalar_l2_squared_lanes(a, b, n);
	else
		sum = l2_squared_lanes(a, b, n);
	if (unlikely(!isfinite(sum)))
		return l2_squared_f8(a, b, n);
	return sum;
}

FCT_KERNEL_CLONES
static float8
norm_squared_lanes(const float4 *a, int n)
{
	v8sf		s0 = {0},
				s1 = {0},
				s2 = {0},
				s3 = {0};
	v8sf		x0,
				x1,
				x2,
				x3;
	float8		sum;
	int			i = 0;

	for (; i + 4 * LANES <= n; i += 4 * LANES)
	{
		x0 = LOAD(a + i);
		x1 = LOAD(a + i + LANES);
		x2 = LOAD(a + i + 2 * LANES);
		x3 = LOAD(a + i + 3 * LANES);
		s0 += x0 * x0;
		s1 += x1 * x1;
		s2 += x2 * x2;
		s3 += x3 * x3;
	}
	for (; i + LANES <= n; i += LANES)
	{
		x0 = LOAD(a + i);
		s0 += x0 * x0;
	}
	s0 = (s0 + s1) + (s2 + s3);
	sum = hsum(&s0);
	for (; i < n; i++)
		sum += (float8) a[i] * a[i];
	return sum;
}

float8
kernel_norm_squared(const float4 *a, int n)
{
	float8		sum;

	if (kernel_variant == KERNEL_VARIANT_SCALAR)
		sum = scalar_norm_squared_lanes(a, n);
	else
		sum = norm_squared_lanes(a, n);
	if (unlikely(!isfinite(sum)))
		return inner_product_f8(a, a, n);
	return sum;
}

/*
 * One pass computes <a,b>, |a|^2 and |b|^2 (two accumulators each: six
 * vector registers plus the loads fit in the sixteen that AVX2 has).
 */
FCT_KERNEL_CLONES
static void
cosine_lanes(const float4 *a, const float4 *b, int n, float8 *ab_out,
			 float8 *aa_out, float8 *bb_out)
{
	v8sf		ab0 = {0},
				ab1 = {0},
				aa0 = {0},
				aa1 = {0},
				bb0 = {0},
				bb1 = {0};
	v8sf		x0,
				x1,
				y0,
				y1;
	float8		ab,
				aa,
				bb;
	int			i = 0;

	for (; i + 2 * LANES <= n; i += 2 * LANES)
	{
		x0 = LOAD(a + i);
		x1 = LOAD(a + i + LANES);
		y0 = LOAD(b + i);
		y1 = LOAD(b + i + LANES);
		ab0 += x0 * y0;
		ab1 += x1 * y1;
		aa0 += x0 * x0;
		aa1 += x1 * x1;
		bb0 += y0 * y0;
		bb1 += y1 * y1;
	}
	for (; i + LANES <= n; i += LANES)
	{
		x0 = LOAD(a + i);
		y0 = LOAD(b + i);
		ab0 += x0 * y0;
		aa0 += x0 * x0;
		bb0 += y0 * y0;
	}
	ab0 += ab1;
	aa0 += aa1;
	bb0 += bb1;
	ab = hsum(&ab0);
	aa = hsum(&aa0);
	bb = hsum(&bb0);
	for (; i < n; i++)
	{
		ab += (float8) a[i] * b[i];
		aa += (float8) a[i] * a[i];
		bb += (float8) b[i] * b[i];
	}
	*ab_out = ab;
	*aa_out = aa;
	*bb_out = bb;
}

float8
kernel_cosine_distance(const float4 *a, const float4 *b, int n)
{
	float8		ab,
				aa,
				bb,
				sim;

	if (kernel_variant == KERNEL_VARIANT_SCALAR)
		scalar_cosine_lanes(a, b, n, &ab, &aa, &bb);
	else
		cosine_lanes(a, b, n, &ab, &aa, &bb);

	/*
	 * Overflow, or norms so small that float4 squares may have underflowed
	 * (a zero vector lands here too): redo the three sums in float8.
	 */
	if (unlikely(!(aa >= 1e-30 && bb >= 1e-30 && isfinite(aa) &&
				   isfinite(bb) && isfinite(ab))))
	{
		ab = inner_product_f8(a, b, n);
		aa = inner_product_f8(a, a, n);
		bb = inner_product_f8(b, b, n);
	}

	/* A zero vector has no direction: call it orthogonal to everything. */
	if (aa == 0 || bb == 0)
		return 1.0;

	sim = ab / sqrt(aa * bb);
	/* Rounding can push |sim| a hair above 1. */
	if (sim > 1.0)
		sim = 1.0;
	else if (sim < -1.0)
		sim = -1.0;
	return 1.0 - sim;
}

/*
 * The rows are the weight of a layer without bias and q its one input row:
 * kernel_matmul's order, the one lsh's list assignment uses, so that ranking
 * the lists for a query and hashing a vector score a centre alike.
 */
void
kernel_inner_product_batch(const float4 *q, const float4 *rows,
						   int nrows, int n, float4 *out)
{
	if (nrows <= 0)
		return;
	kernel_matmul(rows, NULL, nrows, n, q, n, 1, out, nrows, false);
}
