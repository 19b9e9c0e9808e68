/*
 * lshkmeans.c
 *	  k-means for the learned hash family: Lloyd iterations whose assignment
 *	  step is one matrix product per chunk of points (kernel_matmul, the
 *	  product every list assignment uses), so the build's cost is a few
 *	  products of (sample x dim) by (dim x lists).  The k-means++ seeding
 *	  keeps OpenBLAS's sgemv: it only picks starting points.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <cblas.h>

#include "common/pg_prng.h"
#include "kernels/distance.h"
#include "kernels/matmul.h"
#include "lsh.h"
#include "miscadmin.h"

/* Points assigned per call: bounds the work buffer to CHUNK x k floats. */
#define KMEANS_CHUNK 1024

/* Points per centre k-means++ chooses the initial centres from. */
#define KMEANS_INIT_PER_CENTER 16

/* Eight float lanes; aligned(4): rows of the work buffer start anywhere. */
typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32 v8i __attribute__((vector_size(32), aligned(4), may_alias));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
	defined(__has_attribute)
#if __has_attribute(target_clones)
#define ARGMIN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef ARGMIN_CLONES
#define ARGMIN_CLONES
#endif

/* The first j < k with row[j] == best (eight at a time, then the lane); 0 if none. */
static inline int
first_position(const float *restrict row, int k, float best)
{
	int			j;

	for (j = 0; j + 8 <= k; j += 8)
	{
		v8i			eq = *(const v8f *) (row + j) == (v8f) {best, best, best, best, best, best, best, best};
		int64		any = 0;

		for (int l = 0; l < 8; l++)
			any |= eq[l];
		if (any)
			break;
	}
	for (; j < k; j++)
		if (row[j] == best)
			return j;
	return 0;					/* every score NaN */
}

/*
 * The j minimising center_norm2[j] - 2 row[j] (row is overwritten with those
 * values): first the minimum, eight lanes at a time (a running minimum with
 * its index does not vectorise), then its first position.  This pass over
 * the products cost as much as the products themselves when it was scalar.
 */
ARGMIN_CLONES
int
lsh_argmin_scores(float *restrict row, const float *restrict center_norm2, int k)
{
	v8f			lanes;
	float		best = FLT_MAX;
	int			j;

	for (int l = 0; l < 8; l++)
		lanes[l] = FLT_MAX;
	for (j = 0; j + 8 <= k; j += 8)
	{
		v8f			r = *(const v8f *) (row + j);
		v8f			d = *(const v8f *) (center_norm2 + j) - (r + r);
		v8i			lt = d < lanes;

		*(v8f *) (row + j) = d;
		lanes = (v8f) (((v8i) d & lt) | ((v8i) lanes & ~lt));
	}
	for (; j < k; j++)
	{
		row[j] = center_norm2[j] - 2 * row[j];
		best = row[j] < best ? row[j] : best;
	}
	for (int l = 0; l < 8; l++)
		best = lanes[l] < best ? lanes[l] : best;
	return first_position(row, k, best);
}

/* The first position of the smallest of row[0 .. k) (as lsh_argmin_scores). */
ARGMIN_CLONES
int
lsh_argmin(const float *restrict row, int k)
{
	v8f			lanes;
	float		best = FLT_MAX;
	int			j;

	for (int l = 0; l < 8; l++)
		lanes[l] = FLT_MAX;
	for (j = 0; j + 8 <= k; j += 8)
	{
		v8f			d = *(const v8f *) (row + j);
		v8i			lt = d < lanes;

		lanes = (v8f) (((v8i) d & lt) | ((v8i) lanes & ~lt));
	}
	for (; j < k; j++)
		best = row[j] < best ? row[j] : best;
	for (int l = 0; l < 8; l++)
		best = lanes[l] < best ? lanes[l] : best;
	return first_position(row, k, best);
}

/*
 * out[i] = argmin_j |x_i - c_j|^2 = argmin_j (|c_j|^2 - 2 <x_i, c_j>), for
 * n points.  work holds min(n, LSH_ASSIGN_BLOCK) x k floats: the products of a
 * block of points stay in cache while their minimum is found.
 *
 * The products are kernel_matmul's (the centres as a layer without bias),
 * whose order does not depend on n or on a point's position: the build, a
 * single insert, the pending-insert batch, fct_lsh_verify and the scan all
 * put a vector in the same list, on every CPU.  (sgemv for one point and
 * sgemm for many rounded differently, and fct_lsh_verify found entries in
 * lists their vectors no longer hashed to.)
 */
void
lsh_assign_nearest(const float *x, int n, int dim,
				   const float *centers, const float *center_norm2,
				   int k, int *out, float *work)
{
	for (int b = 0; b < n; b += LSH_ASSIGN_BLOCK)
	{
		int			m = Min(LSH_ASSIGN_BLOCK, n - b);

		kernel_matmul(centers, NULL, k, dim, x + (Size) b * dim, dim, m,
					  work, k, false);
		for (int i = 0; i < m; i++)
			out[b + i] = lsh_argmin_scores(work + (Size) i * k, center_norm2, k);
	}
}

/*
 * d2[i] = min(d2[i], |x_i - c|^2) for the m points x (or = when init), by
 * |x|^2 + |c|^2 - 2 <x, c> with one matrix-vector product.
 */
static void
update_d2(const float *x, const float *x_norm2, int m, int dim, const float *c,
		  float *dots, double *d2, bool init)
{
	float		c2 = (float) kernel_norm_squared(c, dim);

	cblas_sgemv(CblasRowMajor, CblasNoTrans, m, dim, 1.0f, x, dim, c, 1, 0.0f, dots, 1);
	for (int i = 0; i < m; i++)
	{
		double		d = Max(0.0, (double) x_norm2[i] + c2 - 2.0 * dots[i]);

		if (init || d < d2[i])
			d2[i] = d;
	}
}

/* A spherical k-means centre back to unit length (a zero centre stays). */
static void
normalise_center(float *c, int dim)
{
	float		cn = (float) sqrt(kernel_norm_squared(c, dim));

	if (cn > 0)
		for (int d = 0; d < dim; d++)
			c[d] /= cn;
}

/*
 * Balance the lists: while the largest list holds more than twice the mean
 * and the smallest less than half of it, the smallest list's centre moves
 * into the largest (both get its centre, pushed 1/1024 apart in opposite
 * directions, and share its points): the next assignment splits the dense
 * region between them and the sparse one goes to its neighbours.  Why:
 * nearest-centre lists on real embeddings are very unequal (1 to 2,475
 * rows for a mean of 500 on the benchmark's MLP embeddings), a query's
 * neighbours lie in the dense regions, so the lists a query reads are the
 * largest ones.  At most k / 8 moves an iteration; counts[] is updated.
 */
static void
balance_lists(float *centers, int *counts, int k, int dim, int n, bool spherical)
{
	double		mean = (double) n / k;

	for (int moves = 0; moves < Max(1, k / 8); moves++)
	{
		int			big = 0;
		int			small = 0;
		float	   *cb;
		float	   *cs;

		for (int j = 1; j < k; j++)
		{
			if (counts[j] > counts[big])
				big = j;
			if (counts[j] < counts[small])
				small = j;
		}
		if (counts[big] <= 2.0 * mean || counts[small] >= 0.5 * mean)
			break;
		cb = centers + (Size) big * dim;
		cs = centers + (Size) small * dim;
		for (int d = 0; d < dim; d++)
		{
			float		e = (d % 2 == 0 ? 1.0f : -1.0f) / 1024.0f;

			cs[d] = cb[d] * (1.0f + e);
			cb[d] = cb[d] * (1.0f - e);
		}
		if (spherical)
		{
			normalise_center(cb, dim);
			normalise_center(cs, dim);
		}
		counts[small] = counts[big] / 2;
		counts[big] -= counts[small];
	}
}

/*
 * k centres of the n points x (n x dim, row-major) into centers (k x dim).
 * Initial centres by k-means++ (D^2 sampling, on a random subset), which
 * keeps the partition balanced when the data has many more clusters than k;
 * an empty cluster is re-seeded with a random point, and each update
 * balances the lists (balance_lists).  spherical: the points
 * are unit vectors and the centres are renormalised after each update (cosine
 * k-means).  Requires n >= k >= 1.
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

	/*
	 * k-means++ on a random subset of KMEANS_INIT_PER_CENTER points per
	 * centre: its cost is k passes over the points, which on the whole sample
	 * was a third of the learning time; the Lloyd iterations then use every
	 * point.
	 */
	{
		int			m = (int) Min((int64) n, (int64) k * KMEANS_INIT_PER_CENTER);
		int		   *idx = palloc(sizeof(int) * n);
		double	   *d2 = palloc(sizeof(double) * m);
		float	   *sub = palloc(sizeof(float) * (Size) m * dim);
		float	   *sub_norm2 = palloc(sizeof(float) * m);
		float	   *dots = palloc(sizeof(float) * m);
		int			first;

		/* idx[0 .. m): a uniform random subset (partial Fisher-Yates) */
		for (int i = 0; i < n; i++)
			idx[i] = i;
		for (int i = 0; i < m && m < n; i++)
		{
			int			r = i + (int) pg_prng_uint64_range(&rng, 0, n - 1 - i);
			int			t = idx[i];

			idx[i] = idx[r];
			idx[r] = t;
		}
		/* the subset, contiguous, and its squared norms: one sgemv per centre */
		for (int i = 0; i < m; i++)
		{
			memcpy(sub + (Size) i * dim, x + (Size) idx[i] * dim, sizeof(float) * dim);
			sub_norm2[i] = (float) kernel_norm_squared(sub + (Size) i * dim, dim);
		}
		first = (int) pg_prng_uint64_range(&rng, 0, m - 1);
		memcpy(centers, sub + (Size) first * dim, sizeof(float) * dim);
		update_d2(sub, sub_norm2, m, dim, centers, dots, d2, true);
		for (int j = 1; j < k; j++)
		{
			double		total = 0;
			double		r;
			int			pick = m - 1;
			float	   *c = centers + (Size) j * dim;

			CHECK_FOR_INTERRUPTS();
			for (int i = 0; i < m; i++)
				total += d2[i];
			r = pg_prng_double(&rng) * total;
			for (int i = 0; i < m; i++)
			{
				r -= d2[i];
				if (r <= 0)
				{
					pick = i;
					break;
				}
			}
			if (total <= 0)
				pick = (int) pg_prng_uint64_range(&rng, 0, m - 1);
			memcpy(c, sub + (Size) pick * dim, sizeof(float) * dim);
			update_d2(sub, sub_norm2, m, dim, c, dots, d2, false);
		}
		pfree(d2);
		pfree(idx);
		pfree(sub);
		pfree(sub_norm2);
		pfree(dots);
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
		/*
		 * Converged when fewer than 1 point in 200 moved: on the 200,000-row
		 * benchmark that is after 4 of the 8 iterations, and the rest moved
		 * recall@10 by about 0.001 for 40% of the learning time.
		 */
		if (it > 0 && changed * 200 < n)
			break;
		if (it > 0)
			elog(DEBUG1, "lsh k-means iteration %d: %d of %d points moved", it, changed, n);

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
				normalise_center(c, dim);
		}
		balance_lists(centers, counts, k, dim, n, spherical);
	}

	pfree(assign);
	pfree(counts);
	pfree(norm2);
	pfree(work);
	pfree(sums);
}
