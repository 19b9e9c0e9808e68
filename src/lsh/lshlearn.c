/*
 * lshlearn.c
 *	  The build's middle: from the first pass's row count and sample, decide
 *	  the index's shape (lists, norm ranges, bits) and learn the hash family
 *	  (k-means centres, flat or two-level; sign projections; wta permutations).
 *
 * Everything here works on the sample in memory and is deterministic (one
 * seed, LSH_SEED): the same rows give the same parameters, so a REINDEX, a
 * parallel build and a serial one hash every row alike.
 */
#include "postgres.h"

#include <math.h>

#include "kernels/distance.h"
#include "lshbuild.h"
#include "miscadmin.h"
#include "utils/rel.h"

#define LSH_KMEANS_ITERATIONS	8
#define LSH_ROWS_PER_LIST		500
#define LSH_DEFAULT_NORM_RANGES 1

/* Default lists for n rows: about LSH_ROWS_PER_LIST rows each. */
int
lsh_default_lists(double n)
{
	double		lists = n / LSH_ROWS_PER_LIST;

	if (n > 1000000)
		lists = 2 * sqrt(n);
	return (int) Max(1, Min(lists, LSH_MAX_LISTS));
}

/* ----------------------------------------------------------------
 * Learning the hash family
 * ----------------------------------------------------------------
 */

/*
 * Norm range bounds: equal-count quantiles of the sample's norms.  Ties (for
 * instance normalised vectors, all of norm 1) can leave a range with fewer
 * sample rows than it has lists; then fewer ranges are used.
 */
static void
learn_norm_ranges(LshBuildState *bs, LshMetaPageData *meta, float *norms)
{
	float	   *sorted = palloc(sizeof(float) * bs->sample_n);
	int		   *counts = palloc(sizeof(int) * LSH_MAX_NORM_RANGES);

	memcpy(sorted, norms, sizeof(float) * bs->sample_n);
	qsort(sorted, bs->sample_n, sizeof(float), lsh_cmp_float);
	for (;;)
	{
		bool		ok = true;
		int			ri = 0;

		for (int r = 0; r < meta->nranges; r++)
		{
			int			i = (int) (((int64) bs->sample_n * (r + 1)) / meta->nranges) - 1;

			meta->range_upper[r] = sorted[Max(i, 0)];
			counts[r] = 0;
		}
		/* count as the hash will assign: the first range whose bound holds */
		for (int i = 0; i < bs->sample_n; i++)
		{
			while (ri < meta->nranges - 1 && sorted[i] > meta->range_upper[ri])
				ri++;
			counts[ri]++;
		}
		for (int r = 0; r < meta->nranges && ok; r++)
		{
			int			first = (int) (((int64) meta->nlists * r) / meta->nranges);
			int			k = (int) (((int64) meta->nlists * (r + 1)) / meta->nranges) - first;

			if (counts[r] < Max(k, 1))
				ok = false;
		}
		if (ok || meta->nranges == 1)
			break;
		meta->nranges--;
	}
	pfree(counts);
	pfree(sorted);
}

/* First list of norm range r (as lshfamily.c numbers them). */
static int
range_first_list_of(const LshMetaPageData *meta, int r)
{
	return (int) (((int64) meta->nlists * r) / meta->nranges);
}

void
lsh_learn(LshBuildState *bs)
{
	LshMetaPageData *meta = &bs->state.meta;
	int			dim = bs->dim;
	int			n = bs->sample_n;
	float	   *norms = palloc(sizeof(float) * n);
	pg_prng_state rng;

	pg_prng_seed(&rng, LSH_SEED);
	for (int i = 0; i < n; i++)
	{
		float	   *x = bs->sample + (Size) i * dim;

		norms[i] = (float) sqrt(kernel_norm_squared(x, dim));
		if (bs->metric == LSH_METRIC_COSINE && norms[i] > 0)
			for (int d = 0; d < dim; d++)
				x[d] /= norms[i];
	}

	switch (bs->family)
	{
		case LSH_FAMILY_KMEANS:
			{
				float	   *grouped = palloc_extended(sizeof(float) * (Size) n * dim, MCXT_ALLOC_HUGE);
				int			pos = 0;
				bool		spherical = bs->metric != LSH_METRIC_L2;
				float	   *gnorms = palloc(sizeof(float) * n);
				int		   *range_start = palloc(sizeof(int) * (LSH_MAX_NORM_RANGES + 1));
				float	   *list_norm;
				int		   *counts;
				int		   *assigned;
				bool		two_level;
				float	   *coarse = NULL;
				int		   *starts = NULL;
				int			ncoarse = 0;
				int			cap = 0;

				/* centres, mean norm per list, then the two-level tables */
				if (meta->nranges > 1)
					learn_norm_ranges(bs, meta, norms);
				meta->coarse_probes = LSH_COARSE_PROBES;
				two_level = lsh_coarse_cells(meta->nlists / meta->nranges, meta->coarse_probes) > 0;
				bs->state.params = palloc0(sizeof(float) * ((Size) meta->nlists * dim + meta->nlists));
				if (two_level)
				{
					for (int r = 0; r < meta->nranges; r++)
						cap += lsh_coarse_cells(range_first_list_of(meta, r + 1) - range_first_list_of(meta, r),
												meta->coarse_probes);
					coarse = palloc(sizeof(float) * (Size) cap * dim);
					starts = palloc(sizeof(int) * (cap + 1));
				}

				/* group the sample by norm range, then k-means per range */
				for (int r = 0; r < meta->nranges; r++)
				{
					int			first = range_first_list_of(meta, r);
					int			k = range_first_list_of(meta, r + 1) - first;
					int			start = pos;

					range_start[r] = start;
					for (int i = 0; i < n; i++)
					{
						int			ri = 0;

						if (meta->nranges > 1)
							while (ri < meta->nranges - 1 && norms[i] > meta->range_upper[ri])
								ri++;
						if (ri == r)
						{
							float	   *g = grouped + (Size) pos * dim;

							memcpy(g, bs->sample + (Size) i * dim, sizeof(float) * dim);
							/* inner product: cluster the directions */
							if (bs->metric == LSH_METRIC_IP && norms[i] > 0)
								for (int d = 0; d < dim; d++)
									g[d] /= norms[i];
							gnorms[pos] = norms[i];
							pos++;
						}
					}
					if (pos - start < k)
						elog(ERROR, "lsh: norm range %d has %d sample rows for %d lists",
							 r, pos - start, k);
					if (two_level)
					{
						int			used;

						used = lsh_learn_two_level(grouped + (Size) start * dim, gnorms + start,
												   pos - start, dim, k,
												   lsh_coarse_cells(k, meta->coarse_probes),
												   bs->state.params + (Size) first * dim,
												   coarse + (Size) ncoarse * dim, starts + ncoarse,
												   LSH_KMEANS_ITERATIONS, LSH_SEED + r, spherical);
						for (int c = ncoarse; c < ncoarse + used; c++)
							starts[c] += first;
						ncoarse += used;
					}
					else
						lsh_kmeans(grouped + (Size) start * dim, pos - start, dim, k,
								   bs->state.params + (Size) first * dim,
								   LSH_KMEANS_ITERATIONS, LSH_SEED + r, spherical);
				}
				range_start[meta->nranges] = pos;

				if (bs->metric == LSH_METRIC_COSINE)
				{
					for (int l = 0; l < meta->nlists; l++)
					{
						float	   *c = bs->state.params + (Size) l * dim;
						float		cn = (float) sqrt(kernel_norm_squared(c, dim));

						if (cn > 0)
							for (int d = 0; d < dim; d++)
								c[d] /= cn;
					}
				}

				/* the parameters as stored: centres, mean norms, coarse centres, cells' first lists */
				meta->nparams = meta->nlists * dim + meta->nlists;
				if (two_level)
				{
					float	   *tail;

					meta->ncoarse = ncoarse;
					meta->nparams += ncoarse * dim + ncoarse + 1;
					bs->state.params = repalloc(bs->state.params, sizeof(float) * meta->nparams);
					tail = bs->state.params + (Size) meta->nlists * dim + meta->nlists;
					memcpy(tail, coarse, sizeof(float) * (Size) ncoarse * dim);
					tail += (Size) ncoarse * dim;
					for (int c = 0; c < ncoarse; c++)
						tail[c] = (float) starts[c];
					tail[ncoarse] = (float) meta->nlists;
					elog(DEBUG1, "lsh index \"%s\": %d lists under %d coarse cells, %d candidate cells per vector",
						 RelationGetRelationName(bs->index), meta->nlists, ncoarse, meta->coarse_probes);
				}
				lsh_kmeans_state_init(&bs->state);

				/* mean norm per list, from the sample rows the hash puts in it */
				list_norm = bs->state.list_norm;
				counts = palloc0(sizeof(int) * meta->nlists);
				assigned = palloc(sizeof(int) * Max(n, 1));
				for (int r = 0; r < meta->nranges; r++)
				{
					int			first = range_first_list_of(meta, r);
					int			k = range_first_list_of(meta, r + 1) - first;
					int			m = range_start[r + 1] - range_start[r];

					memset(list_norm + first, 0, sizeof(float) * k);
					if (m > 0)
						lsh_hash_in_range(&bs->state, r, grouped + (Size) range_start[r] * dim, m, assigned);
					for (int i = 0; i < m; i++)
					{
						list_norm[assigned[i]] += gnorms[range_start[r] + i];
						counts[assigned[i]]++;
					}
					for (int j = first; j < first + k; j++)
						list_norm[j] = counts[j] > 0 ? list_norm[j] / counts[j] : meta->range_upper[r];
				}
				pfree(assigned);
				pfree(grouped);
				pfree(gnorms);
				pfree(counts);
				pfree(range_start);
				if (coarse)
					pfree(coarse);
				if (starts)
					pfree(starts);
			}
			break;
		case LSH_FAMILY_SIMPLE:
			{
				meta->nparams = meta->bits * (dim + 1);
				bs->state.params = palloc(sizeof(float) * meta->nparams);
				for (int i = 0; i < meta->nparams; i++)
					bs->state.params[i] = (float) lsh_gaussian(&rng);
				if (meta->nranges > 1 || bs->metric == LSH_METRIC_IP)
					learn_norm_ranges(bs, meta, norms);
			}
			break;
		case LSH_FAMILY_WTA:
			{
				int		   *perm = palloc(sizeof(int) * dim);

				meta->nparams = meta->windows * meta->wta_k;
				bs->state.params = palloc(sizeof(float) * meta->nparams);
				for (int w = 0; w < meta->windows; w++)
				{
					for (int d = 0; d < dim; d++)
						perm[d] = d;
					for (int j = 0; j < meta->wta_k; j++)
					{
						int			r = j + (int) pg_prng_uint64_range(&rng, 0, dim - 1 - j);
						int			t = perm[j];

						perm[j] = perm[r];
						perm[r] = t;
						bs->state.params[w * meta->wta_k + j] = (float) perm[j];
					}
				}
				pfree(perm);
			}
			break;
	}
	pfree(norms);

	/* ranges cut for want of sample rows (ties, a small table): say so */
	if (bs->opts && bs->opts->norm_ranges > meta->nranges &&
		bs->metric != LSH_METRIC_COSINE &&
		!(bs->family == LSH_FAMILY_SIMPLE && bs->metric != LSH_METRIC_IP) &&
		bs->family != LSH_FAMILY_WTA)
		ereport(NOTICE,
				(errmsg("lsh index \"%s\" uses %d norm ranges instead of %d",
						RelationGetRelationName(bs->index), meta->nranges, bs->opts->norm_ranges),
				 errdetail("Each norm range needs at least as many distinct sample norms as it has lists; the build sampled %d rows.",
						   bs->sample_n)));
}

/*
 * bits (simple: ranges x 2^bits lists; wta: base^windows lists) cut to what
 * the build's page images fit in: an explicit "bits" that does not fit is an
 * error naming the memory it needs (as an explicit "lists" is), an automatic
 * one is lowered with a NOTICE.
 */
static int
fit_bits(LshBuildState *bs, int bits, int ranges, int base, int max_lists_mem)
{
	int			want = bits;
	double		lists = ranges * pow(base, bits);

	while (bits > 1 && ranges * pow(base, bits) > max_lists_mem)
		bits--;
	if (bits == want)
		return bits;
	if (bs->opts && bs->opts->bits > 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("lsh index with bits = %d (%.0f lists) needs at least %.0f kB of maintenance_work_mem to build",
						want, lists, lists * BLCKSZ * 2 / 1024),
				 errdetail("The build keeps one page per list in memory, in half of maintenance_work_mem (%d kB).",
						   maintenance_work_mem),
				 errhint("Raise maintenance_work_mem or lower the bits option.")));
	ereport(NOTICE,
			(errmsg("lsh index \"%s\" uses bits = %d (%.0f lists) instead of %d",
					RelationGetRelationName(bs->index), bits, ranges * pow(base, bits), want),
			 errdetail("The build keeps one page per list in half of maintenance_work_mem (%d kB).",
					   maintenance_work_mem),
			 errhint("Raise maintenance_work_mem for more lists.")));
	return bits;
}

/*
 * The most norm ranges, up to want, of a k-means index of meta.nlists lists:
 * each range must hold at least as many sample rows as lists.
 */
int
lsh_ranges_that_fit(const LshBuildState *bs, int want)
{
	int			lists = bs->state.meta.nlists;
	int			ranges = Max(1, Min(want, lists));

	while (ranges > 1 && bs->sample_n / ranges < (lists + ranges - 1) / ranges + 1)
		ranges--;
	return ranges;
}

/*
 * Decide the shape of the index (lists, ranges, bits) from the options and
 * the row count.  An explicit option is used as given or is an error; where
 * the table cannot support it (too few rows, too little memory for an
 * automatic choice) a NOTICE says what the build uses instead.
 */
void
lsh_plan_shape(LshBuildState *bs)
{
	LshMetaPageData *meta = &bs->state.meta;
	LshOptions *opts = bs->opts;
	double		n = bs->ntuples;
	Size		page_budget = (Size) maintenance_work_mem * 1024 / 2;
	int			max_lists_mem = (int) Min(page_budget / BLCKSZ, LSH_MAX_LISTS);
	int			want_ranges;

	/*
	 * One range by default: with lists learned on directions and ranked by
	 * mean norm x cosine, splitting by norm measured worse on the mixture
	 * benchmark (it splits each cluster across ranges) and no better on
	 * Fashion-MNIST; see README.
	 */
	want_ranges = opts && opts->norm_ranges > 0 ? opts->norm_ranges : LSH_DEFAULT_NORM_RANGES;
	/* cosine ignores norms; sign projections use ranges for inner product only */
	if (bs->metric == LSH_METRIC_COSINE ||
		(bs->family == LSH_FAMILY_SIMPLE && bs->metric != LSH_METRIC_IP))
	{
		if (want_ranges > 1)
			ereport(NOTICE,
					(errmsg("lsh index \"%s\" uses 1 norm range instead of %d",
							RelationGetRelationName(bs->index), want_ranges),
					 errdetail(bs->metric == LSH_METRIC_COSINE ?
							   "Cosine distance does not depend on the norms." :
							   "Family simple splits by norm for inner product only.")));
		want_ranges = 1;
	}

	switch (bs->family)
	{
		case LSH_FAMILY_KMEANS:
			{
				int			lists = opts && opts->lists > 0 ? opts->lists : lsh_default_lists(n);

				if (lists > max_lists_mem)
				{
					if (opts && opts->lists > 0)
						ereport(ERROR,
								(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
								 errmsg("lsh index with %d lists needs at least %zu kB of maintenance_work_mem to build",
										lists, (Size) lists * BLCKSZ * 2 / 1024),
								 errdetail("The build keeps one page per list in memory, in half of maintenance_work_mem (%d kB).",
										   maintenance_work_mem),
								 errhint("Raise maintenance_work_mem or lower the lists option.")));
					ereport(NOTICE,
							(errmsg("lsh index \"%s\" uses %d lists instead of %d",
									RelationGetRelationName(bs->index), max_lists_mem, lists),
							 errdetail("The build keeps one page per list in half of maintenance_work_mem (%d kB).",
									   maintenance_work_mem),
							 errhint("Raise maintenance_work_mem for more lists.")));
					lists = max_lists_mem;
				}
				/* k-means needs a few sample points per centre */
				if (lists > Max(1, bs->sample_n / 4))
				{
					if (opts && opts->lists > 0)
						ereport(NOTICE,
								(errmsg("lsh index \"%s\" uses %d lists instead of %d",
										RelationGetRelationName(bs->index), Max(1, bs->sample_n / 4), lists),
								 errdetail("k-means learns each list from at least 4 sample rows; the build sampled %d rows.",
										   bs->sample_n),
								 errhint("REINDEX when the table has more rows.")));
					lists = Max(1, bs->sample_n / 4);
				}
				meta->nlists = lists;
				meta->nranges = lsh_ranges_that_fit(bs, want_ranges);
			}
			break;
		case LSH_FAMILY_SIMPLE:
			{
				int			bits;

				meta->nranges = Max(1, Min(want_ranges, bs->sample_n));
				if (opts && opts->bits > 0)
					bits = opts->bits;
				else
					bits = (int) Max(1, Min(floor(log2(Max(1.0, n / LSH_ROWS_PER_LIST / meta->nranges)) + 0.5), LSH_MAX_BITS));
				bits = fit_bits(bs, bits, meta->nranges, 2, max_lists_mem);
				meta->bits = bits;
				meta->nlists = meta->nranges << bits;
			}
			break;
		case LSH_FAMILY_WTA:
			{
				int			windows;

				meta->nranges = 1;
				meta->wta_k = Min(LSH_WTA_K, bs->dim);
				if (opts && opts->bits > 0)
					windows = opts->bits;
				else
					windows = (int) Max(1, floor(log(Max(1.0, n / LSH_ROWS_PER_LIST)) / log(meta->wta_k) + 0.5));
				windows = Min(windows, LSH_MAX_WTA_WINDOWS);
				windows = fit_bits(bs, windows, 1, Max(meta->wta_k, 1), max_lists_mem);
				meta->windows = windows;
				meta->nlists = (int) pow(meta->wta_k, windows);
				if (meta->wta_k < 2)
					meta->nlists = 1;
			}
			break;
	}
}
