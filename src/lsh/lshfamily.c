/*
 * lshfamily.c
 *	  The hash families: the distance a scan orders by, the list a vector
 *	  hashes to (one vector, or a batch as the build and buffered inserts
 *	  hash), and the ranking of the lists for a query (see lsh.h for the
 *	  families).
 */
#include "postgres.h"

#include <math.h>

#include "kernels/distance.h"
#include "lsh.h"

/* ----------------------------------------------------------------
 * Distances and hash families
 * ----------------------------------------------------------------
 */

/* Smaller is nearer; the order of the SQL operator, not always its value. */
float8
lsh_distance(LshMetric metric, const float *q, const float *x, int dim)
{
	switch (metric)
	{
		case LSH_METRIC_IP:
			return -kernel_inner_product(q, x, dim);
		case LSH_METRIC_COSINE:
			return kernel_cosine_distance(q, x, dim);
		case LSH_METRIC_L2:
			return kernel_l2_squared(q, x, dim);
	}
	return 0;
}

static float
norm_of(const float *x, int dim)
{
	return (float) sqrt(kernel_norm_squared(x, dim));
}

/* The norm range a vector of norm n falls in. */
static int
range_of(const LshMetaPageData *meta, float n)
{
	int			r;

	for (r = 0; r < meta->nranges - 1; r++)
		if (n <= meta->range_upper[r])
			break;
	return r;
}

/* First list of norm range r. */
static inline int
range_first_list(const LshMetaPageData *meta, int r)
{
	return (int) (((int64) meta->nlists * r) / meta->nranges);
}

/* Parameters of the simple family: bits projections of dim + 1 floats per range */
static int
simple_hash(const LshState *state, const float *x, int r, float *work)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	int			code = 0;
	float		aug = 0;

	if (meta->metric == LSH_METRIC_IP)
	{
		float		m = meta->range_upper[r];
		float		n2 = (float) kernel_norm_squared(x, dim) / (m * m);

		aug = n2 < 1 ? sqrtf(1 - n2) : 0;
		for (int i = 0; i < dim; i++)
			work[i] = x[i] / m;
	}
	else
		memcpy(work, x, sizeof(float) * dim);
	for (int b = 0; b < meta->bits; b++)
	{
		const float *p = state->params + (Size) b * (dim + 1);
		float		s = (float) kernel_inner_product(p, work, dim) + p[dim] * aug;

		if (s > 0)
			code |= 1 << b;
	}
	return (r << meta->bits) | code;
}

static int
wta_hash(const LshState *state, const float *x)
{
	const LshMetaPageData *meta = &state->meta;
	int			code = 0;

	for (int w = meta->windows - 1; w >= 0; w--)
	{
		const float *perm = state->params + (Size) w * meta->wta_k;
		int			best = 0;

		for (int i = 1; i < meta->wta_k; i++)
			if (x[(int) perm[i]] > x[(int) perm[best]])
				best = i;
		code = code * meta->wta_k + best;
	}
	return code;
}

/*
 * The list a vector hashes to.  work holds at least dim + nlists floats.
 */
int
lsh_hash(const LshState *state, const float *x, float *work)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;

	if (!meta->learned)
		return 0;

	switch ((LshFamily) meta->family)
	{
		case LSH_FAMILY_KMEANS:
			{
				/* one function for one vector and for a batch: the same list */
				int			list;

				lsh_hash_batch(state, x, 1, &list);
				return list;
			}
		case LSH_FAMILY_SIMPLE:
			{
				int			r = meta->nranges > 1 ? range_of(meta, norm_of(x, dim)) : 0;

				if (meta->metric == LSH_METRIC_COSINE)
				{
					float		n = norm_of(x, dim);

					for (int i = 0; i < dim; i++)
						work[i] = n > 0 ? x[i] / n : 0;
					x = work;
					work += dim;
				}
				return simple_hash(state, x, r, work);
			}
		case LSH_FAMILY_WTA:
			return wta_hash(state, x);
	}
	return 0;
}

/*
 * The lists of the m vectors xs (as the centres compare them: directions for
 * inner product and cosine) of norm range r: the nearest centre of the
 * range's lists, or through the coarse cells (lshtwolevel.c) when the index
 * has them.  lsh_hash_batch's step after the norms, and the build's for the
 * sample rows it learned from.
 */
void
lsh_hash_in_range(const LshState *state, int r, const float *xs, int m, int *out)
{
	const LshMetaPageData *meta = &state->meta;
	int			first = range_first_list(meta, r);
	int			k = range_first_list(meta, r + 1) - first;
	float	   *dots;

	if (meta->ncoarse > 0)
	{
		lsh_assign_two_level(state, r, xs, m, out);
		return;
	}
	dots = palloc(sizeof(float) * (Size) Min(m, LSH_ASSIGN_BLOCK) * Max(k, 1));
	lsh_assign_nearest(xs, m, meta->dim, state->params + (Size) first * meta->dim,
					   state->center_norm2 + first, k, out, dots);
	for (int j = 0; j < m; j++)
		out[j] += first;
	pfree(dots);
}

/*
 * The lists of n vectors (n x dim, row-major; not modified).  For k-means,
 * the one assignment function of every path (build, single and buffered
 * inserts, fct_lsh_verify): the vectors as the centres compare them, then
 * per norm range one matrix product against the range's centres (or its
 * coarse cells and their lists); for the other families one vector at a time.
 */
void
lsh_hash_batch(const LshState *state, const float *x, int n, int *lists)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	float	   *norm_x;
	float	   *xs;
	int		   *ranges;
	int		   *idx;
	int		   *out;

	if (!meta->learned)
	{
		memset(lists, 0, sizeof(int) * n);
		return;
	}
	if (meta->family != LSH_FAMILY_KMEANS)
	{
		float	   *work = palloc(sizeof(float) * (dim + meta->nlists));

		for (int i = 0; i < n; i++)
			lists[i] = lsh_hash(state, x + (Size) i * dim, work);
		pfree(work);
		return;
	}

	norm_x = palloc(sizeof(float) * (Size) n * dim);
	ranges = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		const float *v = x + (Size) i * dim;
		float	   *w = norm_x + (Size) i * dim;
		float		nn = norm_of(v, dim);

		/* ip and cosine centres are directions: compare directions */
		if (meta->metric != LSH_METRIC_L2 && nn > 0)
			for (int d = 0; d < dim; d++)
				w[d] = v[d] / nn;
		else
			memcpy(w, v, sizeof(float) * dim);
		ranges[i] = meta->nranges > 1 ? range_of(meta, nn) : 0;
	}
	if (meta->nranges == 1)
		lsh_hash_in_range(state, 0, norm_x, n, lists);
	else
	{
		xs = palloc(sizeof(float) * (Size) n * dim);
		idx = palloc(sizeof(int) * n);
		out = palloc(sizeof(int) * n);
		for (int r = 0; r < meta->nranges; r++)
		{
			int			m = 0;

			for (int i = 0; i < n; i++)
				if (ranges[i] == r)
				{
					memcpy(xs + (Size) m * dim, norm_x + (Size) i * dim, sizeof(float) * dim);
					idx[m++] = i;
				}
			if (m == 0)
				continue;
			lsh_hash_in_range(state, r, xs, m, out);
			for (int j = 0; j < m; j++)
				lists[idx[j]] = out[j];
		}
		pfree(xs);
		pfree(idx);
		pfree(out);
	}
	pfree(norm_x);
	pfree(ranges);
}

/*
 * The derived parts of a learned k-means state, from its parameters (the
 * build and lsh_get_state both call this, so they agree): the mean norms'
 * place, the centres' squared norms, the two-level tables.
 */
void
lsh_kmeans_state_init(LshState *state)
{
	const LshMetaPageData *meta = &state->meta;

	state->list_norm = state->params + (Size) meta->nlists * meta->dim;
	state->center_norm2 = palloc(sizeof(float) * meta->nlists);
	for (int l = 0; l < meta->nlists; l++)
		state->center_norm2[l] = (float)
			kernel_norm_squared(state->params + (Size) l * meta->dim, meta->dim);
	lsh_two_level_init(state);
}

/*
 * Score every list for query q: scores[l], smaller is more promising.  The
 * scan probes lists in increasing score order (multi-probe).
 */
void
lsh_rank_lists(const LshState *state, const float *q, float *scores)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	int			nlists = meta->nlists;

	if (!meta->learned)
	{
		scores[0] = 0;
		return;
	}

	switch ((LshFamily) meta->family)
	{
		case LSH_FAMILY_KMEANS:
			kernel_inner_product_batch(q, state->params, nlists, dim, scores);
			if (meta->metric == LSH_METRIC_L2)
			{
				for (int l = 0; l < nlists; l++)
					scores[l] = state->center_norm2[l] - 2 * scores[l];
			}
			else if (meta->metric == LSH_METRIC_IP)
			{
				/* estimated inner product: mean norm x <q, direction> */
				for (int l = 0; l < nlists; l++)
					scores[l] = -state->list_norm[l] * scores[l];
			}
			else
			{
				/* cosine: the largest cosine with the centre */
				for (int l = 0; l < nlists; l++)
					scores[l] = -scores[l];
			}
			break;
		case LSH_FAMILY_SIMPLE:
			{
				/*
				 * Multi-probe for sign projections: a bucket's penalty is the
				 * sum of |<p, q>| over the bits where it disagrees with the
				 * query's code (Lv et al. 2007).  Across norm ranges the
				 * penalty is traded against the range's maximum norm:
				 * estimated inner product M_r * cos(pi * penalty / total).
				 */
				int			nb = meta->bits;
				float		margins[LSH_MAX_BITS];
				float		total = 0;
				int			qcode = 0;
				float		qn = norm_of(q, dim);

				for (int b = 0; b < nb; b++)
				{
					const float *p = state->params + (Size) b * (dim + 1);
					float		s = (float) kernel_inner_product(p, q, dim) / (qn > 0 ? qn : 1);

					margins[b] = fabsf(s);
					total += margins[b];
					if (s > 0)
						qcode |= 1 << b;
				}
				for (int l = 0; l < nlists; l++)
				{
					int			r = l >> nb;
					int			diff = (l & ((1 << nb) - 1)) ^ qcode;
					float		pen = 0;
					float		m = meta->metric == LSH_METRIC_IP ? meta->range_upper[r] : 1;

					for (int b = 0; b < nb; b++)
						if (diff & (1 << b))
							pen += margins[b];
					scores[l] = -m * cosf((float) M_PI * pen / (total > 0 ? total : 1));
				}
			}
			break;
		case LSH_FAMILY_WTA:
			{
				/*
				 * A bucket is one winner per window; its score is the sum of
				 * the query's values at the winning coordinates.
				 */
				for (int l = 0; l < nlists; l++)
				{
					int			code = l;
					float		s = 0;

					for (int w = 0; w < meta->windows; w++)
					{
						const float *perm = state->params + (Size) w * meta->wta_k;

						s += q[(int) perm[code % meta->wta_k]];
						code /= meta->wta_k;
					}
					scores[l] = -s;
				}
			}
			break;
	}
}
