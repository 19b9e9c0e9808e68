/*
 * distance_scalar.c
 *	  distance.c's sums written as plain loops over eight lanes, in the same
 *	  order (see distance_scalar.h).  Compiled with vectorisation disabled
 *	  (Makefile): the reference that fct.kernel_variant = 'scalar' runs and
 *	  that the tests compare the vectorised clones with, bit for bit.
 */
#include "postgres.h"

#include "kernels/distance_scalar.h"

#define LANES 8

/* distance.c's hsum: the eight lanes of one accumulator, added in float8. */
static float8
hsum(const float4 *v)
{
	return (((float8) v[0] + v[4]) + ((float8) v[1] + v[5])) +
		(((float8) v[2] + v[6]) + ((float8) v[3] + v[7]));
}

/*
 * The lanes of a sum of f(a[i], b[i]) in distance.c's order: four
 * accumulators over blocks of 32, blocks of 8 into the first, then
 * (s0 + s1) + (s2 + s3).  Returns the index where the tail starts.
 */
#define LANE_SUM(out, n, TERM) \
	do { \
		float4		s_[4][LANES] = {{0}}; \
		int			i_ = 0; \
		for (; i_ + 4 * LANES <= (n); i_ += 4 * LANES) \
			for (int b_ = 0; b_ < 4; b_++) \
				for (int l_ = 0; l_ < LANES; l_++) \
				{ \
					int			i = i_ + b_ * LANES + l_; \
					s_[b_][l_] += (TERM); \
				} \
		for (; i_ + LANES <= (n); i_ += LANES) \
			for (int l_ = 0; l_ < LANES; l_++) \
			{ \
				int			i = i_ + l_; \
				s_[0][l_] += (TERM); \
			} \
		for (int l_ = 0; l_ < LANES; l_++) \
			(out)[l_] = (s_[0][l_] + s_[1][l_]) + (s_[2][l_] + s_[3][l_]); \
		tail = i_; \
	} while (0)

float8
scalar_inner_product_lanes(const float4 *a, const float4 *b, int n)
{
	float4		lanes[LANES];
	float8		sum;
	int			tail;

	LANE_SUM(lanes, n, a[i] * b[i]);
	sum = hsum(lanes);
	for (int i = tail; i < n; i++)
		sum += (float8) a[i] * b[i];
	return sum;
}

float8
scalar_l2_squared_lanes(const float4 *a, const float4 *b, int n)
{
	float4		lanes[LANES];
	float8		sum;
	int			tail;

	LANE_SUM(lanes, n, (a[i] - b[i]) * (a[i] - b[i]));
	sum = hsum(lanes);
	for (int i = tail; i < n; i++)
	{
		float8		d = (float8) a[i] - b[i];

		sum += d * d;
	}
	return sum;
}

float8
scalar_norm_squared_lanes(const float4 *a, int n)
{
	float4		lanes[LANES];
	float8		sum;
	int			tail;

	LANE_SUM(lanes, n, a[i] * a[i]);
	sum = hsum(lanes);
	for (int i = tail; i < n; i++)
		sum += (float8) a[i] * a[i];
	return sum;
}

/*
 * distance.c's cosine pass: two accumulators per sum over blocks of 16,
 * blocks of 8 into the first, then s0 + s1.
 */
void
scalar_cosine_lanes(const float4 *a, const float4 *b, int n, float8 *ab_out,
					float8 *aa_out, float8 *bb_out)
{
	float4		ab[2][LANES] = {{0}};
	float4		aa[2][LANES] = {{0}};
	float4		bb[2][LANES] = {{0}};
	float8		sab,
				saa,
				sbb;
	int			i = 0;

	for (; i + 2 * LANES <= n; i += 2 * LANES)
		for (int h = 0; h < 2; h++)
			for (int l = 0; l < LANES; l++)
			{
				float4		x = a[i + h * LANES + l];
				float4		y = b[i + h * LANES + l];

				ab[h][l] += x * y;
				aa[h][l] += x * x;
				bb[h][l] += y * y;
			}
	for (; i + LANES <= n; i += LANES)
		for (int l = 0; l < LANES; l++)
		{
			float4		x = a[i + l];
			float4		y = b[i + l];

			ab[0][l] += x * y;
			aa[0][l] += x * x;
			bb[0][l] += y * y;
		}
	for (int l = 0; l < LANES; l++)
	{
		ab[0][l] += ab[1][l];
		aa[0][l] += aa[1][l];
		bb[0][l] += bb[1][l];
	}
	sab = hsum(ab[0]);
	saa = hsum(aa[0]);
	sbb = hsum(bb[0]);
	for (; i < n; i++)
	{
		sab += (float8) a[i] * b[i];
		saa += (float8) a[i] * a[i];
		sbb += (float8) b[i] * b[i];
	}
	*ab_out = sab;
	*aa_out = saa;
	*bb_out = sbb;
}
