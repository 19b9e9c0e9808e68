/*
 * lshkmeans.c
 *	  k-means for the learned hash family: Lloyd iterations whose assignment
 *	  step is one matrix product per chunk of points (OpenBLAS sgemm), so the
 *	  build's cost is a few products of (sample x dim) by (dim x lists).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <cblas.h>

#include "common/pg_prng.h"
#include "distance.h"
#include "lsh.h"
#include "miscadmin.h"

/* Points assigned per sgemm call: bounds the work buffer to CHUNK x k floats. */
#define KMEANS_CHUNK 1024

/*
 * The j minimising center_norm2[j] - 2 row[j] (row is overwritten): first
 * the minimum, eight lanes at a time (the compiler vectorises the lanes; one
 * running minimum with its index would not), then its first position.
 */
static int
argmin_scores(float *row, const float *center_norm2, int k)
{
	float		lane[8];
	float		best;
	int			j;

	for (j = 0; j < k; j++)
		row[j] = center_norm2[j] - 2 * row[j];
	for (int l = 0; l < 8; l++)
		lane[l] = FLT_MAX;
	for (j = 0; j + 8 <= k; j += 8)
		for (int l = 0; l < 8; l++)
			lane[l] = row[j + l] < lane[l] ? row[j + l] : lane[l];
	best = FLT_MAX;
	for (; j < k; j++)
		best = row[j] < best ? row[j] : best;
	for (int l = 0; l < 8; l++)
		best = lane[l] < best ? lane[l] : best;
	for (j = 0; j < k; j++)
		if (row[j] == best)
			return j;
	return 0;					/* every score NaN */
}

/*
 * out[i] = argmin_j |x_i - c_j|^2 = argmin_j (|c_j|^2 - 2 <x_i, c_j>), for
 * n points.  work holds min(n, ASSIGN_BLOCK) x k floats: the products of a
 * block of points stay in cache while their minimum is found.
 */
#define ASSIGN_BLOCK 256

void
lsh_assign_nearest(const float *x, int n, int dim,
				   const float *centers, const float *center_norm2,
				   int k, int *out, float *work)
{
	if (n == 1)
	{
		cblas_sgemv(CblasRowMajor, CblasNoTrans, k, dim, 1.0f, centers, dim,
					x, 1, 0.0f, work, 1);
		out[0] = argmin_scores(work, center_norm2, k);
		return;
	}
	for (int b = 0; b < n; b += ASSIGN_BLOCK)
	{
		int			m = Min(ASSIGN_BLOCK, n - b);

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, dim,
					1.0f, x + (Size) b * dim, dim, centers, dim, 0.0f, work, k);
		for (int i = 0; i < m; i++)
			out[b + i] = argmin_scores(work + (Size) i * k, center_norm2, k);
	}
}

/*
 * k centres of the n points x (n x dim, row-major) into centers (k x dim).
 * Initial centres by k-means++ (D^2 sampling), which keeps the partition
 * balanced when the data has many more clusters than k; an empty cluster is
 * re-seeded with a random point.  spherical: the points are unit vectors and
 * the centres are renormalised after each update (cosine k-means).  Requires
 * n >= k >= 1.
 */
void
lsh_kmeans(float *x, int n, int dim, int k, float *centers, int iterations,
		   uint64 seed, bool spherical)
{
	pg_prng_state rng;
	int		   *assign = palloc(sizeof(int) * n);
	int		   *counts = palloc(sizeof(int) * k);
	float	   *norm2 = palloc(sizeof(float) * k);
	float	   *work = palloc(sizeof(float) * (Size) KMEANS_CHUNK * k);
	double	   *sums = palloc(sizeof(double) * (Size) k * dim);

	Assert(n >= k && k >= 1);
	pg_prng_seed(&rng, seed);

	/* k-means++ */
	{
		double	   *d2 = palloc(sizeof(double) * n);
		int			first = (int) pg_prng_uint64_range(&rng, 0, n - 1);

		memcpy(centers, x + (Size) first * dim, sizeof(float) * dim);
		for (int i = 0; i < n; i++)
			d2[i] = kernel_l2_squared(x + (Size) i * dim, centers, dim);
		for (int j = 1; j < k; j++)
		{
			double		total = 0;
			double		r;
			int			pick = n - 1;
			float	   *c = centers + (Size) j * dim;

			CHECK_FOR_INTERRUPTS();
			for (int i = 0; i < n; i++)
				total += d2[i];
			r = pg_prng_double(&rng) * total;
			for (int i = 0; i < n; i++)
			{
				r -= d2[i];
				if (r <= 0)
				{
					pick = i;
					break;
				}
			}
			if (total <= 0)
				pick = (int) pg_prng_uint64_range(&rng, 0, n - 1);
			memcpy(c, x + (Size) pick * dim, sizeof(float) * dim);
			for (int i = 0; i < n; i++)
			{
				double		d = kernel_l2_squared(x + (Size) i * dim, c, dim);

				if (d < d2[i])
					d2[i] = d;
			}
		}
		pfree(d2);
	}

	for (int it = 0; it < iterations; it++)
	{
		int			changed = 0;

		for (int j = 0; j < k; j++)
			norm2[j] = (float) kernel_norm_squared(centers + (Size) j * dim, dim);

		for (int i = 0; i < n; i += KMEANS_CHUNK)
		{
			int			m = Min(KMEANS_CHUNK, n - i);
			int			newa[KMEANS_CHUNK];

			CHECK_FOR_INTERRUPTS();
			lsh_assign_nearest(x + (Size) i * dim, m, dim, centers, norm2, k, newa, work);
			for (int t = 0; t < m; t++)
			{
				if (it == 0 || assign[i + t] != newa[t])
					changed++;
				assign[i + t] = newa[t];
			}
		}
		if (it > 0 && changed == 0)
			break;

		memset(sums, 0, sizeof(double) * (Size) k * dim);
		memset(counts, 0, sizeof(int) * k);
		for (int i = 0; i < n; i++)
		{
			double	   *s = sums + (Size) assign[i] * dim;
			const float *p = x + (Size) i * dim;

			for (int d = 0; d < dim; d++)
				s[d] += p[d];
			counts[assign[i]]++;
		}
		for (int j = 0; j < k; j++)
		{
			float	   *c = centers + (Size) j * dim;

			if (counts[j] == 0)
			{
				int			r = (int) pg_prng_uint64_range(&rng, 0, n - 1);

				memcpy(c, x + (Size) r * dim, sizeof(float) * dim);
				continue;
			}
			for (int d = 0; d < dim; d++)
				c[d] = (float) (sums[(Size) j * dim + d] / counts[j]);
			if (spherical)
			{
				float		cn = (float) sqrt(kernel_norm_squared(c, dim));

				if (cn > 0)
					for (int d = 0; d < dim; d++)
						c[d] /= cn;
			}
		}
	}

	pfree(assign);
	pfree(counts);
	pfree(norm2);
	pfree(work);
	pfree(sums);
}
