/*
 * lshkmeans.c
 *	  k-means for the learned hash family: Lloyd iterations whose assignment
 *	  step is one matrix product per chunk of points (OpenBLAS sgemm), so the
 *	  build's cost is a few products of (sample x dim) by (dim x lists).
 */
#include "postgres.h"

#include <float.h>
#include <cblas.h>

#include "common/pg_prng.h"
#include "distance.h"
#include "lsh.h"
#include "miscadmin.h"

/* Points assigned per sgemm call: bounds the work buffer to CHUNK x k floats. */
#define KMEANS_CHUNK 1024

/*
 * out[i] = argmin_j |x_i - c_j|^2 = argmin_j (|c_j|^2 - 2 <x_i, c_j>), for
 * n points.  work holds n x k floats.
 */
void
lsh_assign_nearest(const float *x, int n, int dim,
				   const float *centers, const float *center_norm2,
				   int k, int *out, float *work)
{
	if (n == 1)
		cblas_sgemv(CblasRowMajor, CblasNoTrans, k, dim, 1.0f, centers, dim,
					x, 1, 0.0f, work, 1);
	else
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, k, dim,
					1.0f, x, dim, centers, dim, 0.0f, work, k);
	for (int i = 0; i < n; i++)
	{
		const float *row = work + (Size) i * k;
		float		best = FLT_MAX;
		int			bestj = 0;

		for (int j = 0; j < k; j++)
		{
			float		d = center_norm2[j] - 2 * row[j];

			if (d < best)
			{
				best = d;
				bestj = j;
			}
		}
		out[i] = bestj;
	}
}

/*
 * k centres of the n points x (n x dim, row-major) into centers (k x dim).
 * Initial centres are k distinct random points; an empty cluster is re-seeded
 * with a random point.  Requires n >= k >= 1.
 */
void
lsh_kmeans(float *x, int n, int dim, int k, float *centers, int iterations,
		   uint64 seed)
{
	pg_prng_state rng;
	int		   *assign = palloc(sizeof(int) * n);
	int		   *counts = palloc(sizeof(int) * k);
	float	   *norm2 = palloc(sizeof(float) * k);
	float	   *work = palloc(sizeof(float) * (Size) KMEANS_CHUNK * k);
	double	   *sums = palloc(sizeof(double) * (Size) k * dim);

	Assert(n >= k && k >= 1);
	pg_prng_seed(&rng, seed);

	/* k distinct points: a partial Fisher-Yates shuffle of the indexes */
	{
		int		   *idx = palloc(sizeof(int) * n);

		for (int i = 0; i < n; i++)
			idx[i] = i;
		for (int j = 0; j < k; j++)
		{
			int			r = j + (int) pg_prng_uint64_range(&rng, 0, n - 1 - j);
			int			t = idx[j];

			idx[j] = idx[r];
			idx[r] = t;
			memcpy(centers + (Size) j * dim, x + (Size) idx[j] * dim, sizeof(float) * dim);
		}
		pfree(idx);
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
		}
	}

	pfree(assign);
	pfree(counts);
	pfree(norm2);
	pfree(work);
	pfree(sums);
}
