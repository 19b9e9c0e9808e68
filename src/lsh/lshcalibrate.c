/*
 * lshcalibrate.c
 *	  The unit of the ordered scan's bounds, measured at build from sample
 *	  queries and their nearest neighbours; the ordered scan's work,
 *	  simulated on the sample for those queries.
 *
 * The bounds (lshbound.c) must guess how far a list's member points towards
 * the query: <q, r> <= s |q| |r|.  A member that is a near neighbour of the
 * query is exactly one that points towards it, and how much depends on the
 * data: for a residual of a random direction in D dimensions s would be about
 * 1 / sqrt(D), but where the variance sits in a few dimensions (Fashion-MNIST's
 * principal components: s of 0.8 for L2) or a list holds several clusters,
 * near neighbours point far more towards the query, and a bound from
 * 1 / sqrt(D) stops the scan before their list (recall@10 0.72 on
 * Fashion-MNIST L2 at the old defaults).  Elsewhere (inner product, where the
 * bound also takes the list's largest norm) s can be much smaller than
 * 1 / sqrt(D) and the old bound read lists for nothing.
 *
 * So the build measures it, with two kinds of query: sample rows (queries
 * like the data) and draws from a Gaussian with the sample's mean and spread
 * per coordinate (queries off the data, as random or other-model queries
 * are).  Their nearest neighbours among the sample rows (the ranks that
 * correspond to the top 10 of the whole table: the sample is a fraction of
 * it) are the members the scan must find.  Once the lists and their bounds
 * are built, each (query, neighbour) pair gives the least s with which the
 * neighbour's list is read before any row farther than the neighbour is
 * returned (lsh_needed_scale).  Per kind of query, the 95th percentile of
 * those; the unit is the larger, divided by the default fct.lsh_margin (3),
 * so that the default margin covers 95% of the pairs of either kind.  In the
 * numpy prototype (test/bench/lsh/README.md) the percentile on the sample
 * was within 0.04 of the one on the benchmarks' real test queries, where the
 * sample rows alone underestimated it for random queries (0.06 against 0.22
 * on 60 clusters of 32 dimensions; the drawn queries gave 0.22).
 *
 * The same queries measure a shape before it is built (lsh_calibrate_scan,
 * for lshranges.c): the default scan, simulated on the sample, reads lists
 * in the order of their bounds until its nearest rows are no farther than the
 * next list's bound; the rows it read and the share of the queries' nearest
 * sample rows it found say what the shape costs and misses.
 *
 * Cost: LSH_CALIBRATION_QUERIES inner products with every sample row (the
 * sample is 40 rows per list, so a few percent of the build's assignment),
 * then a bisection per pair.  Deterministic: fixed query rows, ties broken by
 * position.
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "kernels/distance.h"
#include "kernels/matmul.h"
#include "lsh.h"
#include "utils/float.h"

/* Sample rows used as queries. */
#define LSH_CALIBRATION_QUERIES		128
/* The nearest neighbours the scan must find (LIMIT 10). */
#define LSH_CALIBRATION_K			10
/* The share of (query, neighbour) pairs the default margin covers. */
#define LSH_CALIBRATION_QUANTILE	0.95
/* The default fct.lsh_margin, which the quantile maps to. */
#define LSH_CALIBRATION_MARGIN		3.0
/* The drawn queries' seed (the build is deterministic). */
#define LSH_CALIBRATION_SEED		0xCA11B4A7EULL
/* Smallest unit kept, so that fct.lsh_margin = 1000 is always exact. */
#define LSH_CALIBRATION_MIN_UNIT	0.001

struct LshCalibration
{
	int			dim;
	int			nqueries;
	float	   *queries;		/* nqueries x dim */
	int		   *query_row;		/* per query: its sample row, -1 for a draw */
	int			npairs;
	int		   *pair_query;		/* per pair: its query */
	float	   *x;				/* npairs x dim: the neighbour of each pair */
};

/* Scan distances from dots[i] = <q, rows[i]> (squared L2, cosine, -inner product). */
static void
distances_from_dots(LshMetric metric, float8 qn2, const float *dots, const float *norm2,
					int n, float8 *out)
{
	for (int i = 0; i < n; i++)
	{
		switch (metric)
		{
			case LSH_METRIC_L2:
				out[i] = qn2 - 2.0 * dots[i] + norm2[i];
				break;
			case LSH_METRIC_COSINE:
				out[i] = (qn2 > 0 && norm2[i] > 0) ? 1.0 - dots[i] / sqrt(qn2 * norm2[i]) : 1.0;
				break;
			case LSH_METRIC_IP:
				out[i] = -(float8) dots[i];
				break;
		}
	}
}

/* Scan distance from q to each of n rows; dots: n floats of work. */
static void
distances(LshMetric metric, const float *q, const float *rows, const float *norm2,
		  int n, int dim, float8 *out, float *dots)
{
	kernel_inner_product_batch(q, rows, n, dim, dots);
	distances_from_dots(metric, kernel_norm_squared(q, dim), dots, norm2, n, out);
}

/*
 * The rows of a sample of n rows of a table of ntuples that stand for the
 * table's top 10: about 10 n / ntuples (at least the nearest).
 */
static int
sample_top(int n, double ntuples)
{
	int			m = (int) ceil(LSH_CALIBRATION_K * (double) n / Max(ntuples, (double) n));

	return Max(1, Min(m, LSH_CALIBRATION_K));
}

/*
 * Choose the pairs from the build's sample (n rows of a table of ntuples):
 * the query rows and copies of their neighbours, kept until the lists are
 * built.  NULL when the sample is too small to say anything.
 */
LshCalibration *
lsh_calibrate_begin(const LshState *state, const float *sample, int n, double ntuples)
{
	int			dim = state->meta.dim;
	LshMetric	metric = (LshMetric) state->meta.metric;
	int			nq = Min(LSH_CALIBRATION_QUERIES, n / 4);
	int			m;
	float	   *norm2;
	float8	   *mean;
	float8	   *sd;
	float	   *qdraw;
	pg_prng_state rng;
	float8	   *dist;
	float	   *dots;
	int		   *best;
	LshCalibration *cal;

	if (nq < 8 || !lsh_has_bounds(&state->meta))
		return NULL;

	m = sample_top(n, ntuples);

	cal = palloc(sizeof(LshCalibration));
	cal->dim = dim;
	cal->nqueries = 0;
	cal->queries = palloc(sizeof(float) * (Size) nq * dim);
	cal->query_row = palloc(sizeof(int) * nq);
	cal->npairs = 0;
	cal->pair_query = palloc(sizeof(int) * (Size) nq * m);
	cal->x = palloc(sizeof(float) * (Size) nq * m * dim);

	/* the sample's mean and spread per coordinate, for the drawn queries */
	mean = palloc0(sizeof(float8) * dim);
	sd = palloc0(sizeof(float8) * dim);
	for (int i = 0; i < n; i++)
		for (int d = 0; d < dim; d++)
			mean[d] += sample[(Size) i * dim + d];
	for (int d = 0; d < dim; d++)
		mean[d] /= n;
	for (int i = 0; i < n; i++)
		for (int d = 0; d < dim; d++)
		{
			float8		t = sample[(Size) i * dim + d] - mean[d];

			sd[d] += t * t;
		}
	for (int d = 0; d < dim; d++)
		sd[d] = sqrt(sd[d] / n);
	qdraw = palloc(sizeof(float) * dim);
	pg_prng_seed(&rng, LSH_CALIBRATION_SEED);

	norm2 = palloc(sizeof(float) * n);
	for (int i = 0; i < n; i++)
		norm2[i] = (float) kernel_norm_squared(sample + (Size) i * dim, dim);
	dist = palloc(sizeof(float8) * n);
	dots = palloc(sizeof(float) * n);
	best = palloc(sizeof(int) * m);

	for (int j = 0; j < nq; j++)
	{
		/* the sample is a uniform random draw: spread the queries over it */
		int			qi = (int) (((int64) j * n) / nq);
		bool		is_drawn = (j % 2) == 1;
		const float *q = sample + (Size) qi * dim;
		int			nb = 0;

		if (is_drawn)
		{
			for (int d = 0; d < dim; d++)
				qdraw[d] = (float) (mean[d] + sd[d] * lsh_gaussian(&rng));
			q = qdraw;
		}
		distances(metric, q, sample, norm2, n, dim, dist, dots);
		if (!is_drawn)
			dist[qi] = get_float8_infinity();	/* not itself */

		/* the m nearest, by insertion (m is at most 10) */
		for (int i = 0; i < n; i++)
		{
			int			p;

			if (nb == m && dist[i] >= dist[best[m - 1]])
				continue;
			p = nb < m ? nb++ : m - 1;
			while (p > 0 && dist[best[p - 1]] > dist[i])
			{
				best[p] = best[p - 1];
				p--;
			}
			best[p] = i;
		}
		memcpy(cal->queries + (Size) j * dim, q, sizeof(float) * dim);
		cal->query_row[j] = is_drawn ? -1 : qi;
		for (int b = 0; b < nb; b++)
		{
			if (isinf(dist[best[b]]))
				continue;
			memcpy(cal->x + (Size) cal->npairs * dim, sample + (Size) best[b] * dim,
				   sizeof(float) * dim);
			cal->pair_query[cal->npairs] = j;
			cal->npairs++;
		}
	}
	cal->nqueries = nq;
	pfree(norm2);
	pfree(mean);
	pfree(sd);
	pfree(qdraw);
	pfree(dist);
	pfree(dots);
	pfree(best);
	return cal;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The unit, from the lists' bounds (items); 0 ("not measured": the scan uses
 * 1 / sqrt(D)) without pairs.
 */
float
lsh_calibrate_unit(const LshCalibration *cal, const LshState *state, const LshListItem *items)
{
	int			dim;
	double	   *need[2];
	int			n[2] = {0, 0};
	int		   *lists;
	double		unit = 0;

	if (cal == NULL)
		return 0;
	dim = cal->dim;
	need[0] = palloc(sizeof(double) * Max(cal->npairs, 1));
	need[1] = palloc(sizeof(double) * Max(cal->npairs, 1));
	/* the pairs' neighbours hashed in one call, as the build hashed them */
	lists = palloc(sizeof(int) * Max(cal->npairs, 1));
	lsh_hash_batch(state, cal->x, cal->npairs, lists);
	for (int i = 0; i < cal->npairs; i++)
	{
		const float *q = cal->queries + (Size) cal->pair_query[i] * dim;
		const float *x = cal->x + (Size) i * dim;
		int			list = lists[i];
		int			kind = cal->query_row[cal->pair_query[i]] < 0 ? 1 : 0;

		/* a sample row the second pass did not see (concurrent build) */
		if (items[list].rmax < items[list].rmin)
			continue;

		need[kind][n[kind]++] =
			lsh_needed_scale(state, q, list, &items[list],
							 lsh_distance((LshMetric) state->meta.metric, q, x, dim));
	}
	pfree(lists);
	/* the quantile of each kind of query; the larger serves both */
	for (int kind = 0; kind < 2; kind++)
	{
		int			at;

		if (n[kind] == 0)
			continue;
		qsort(need[kind], n[kind], sizeof(double), cmp_double);
		at = (int) ceil(LSH_CALIBRATION_QUANTILE * n[kind]) - 1;
		unit = Max(unit, need[kind][Max(0, Min(at, n[kind] - 1))] / LSH_CALIBRATION_MARGIN);
		/* how spread the needs are: what a margin other than the default would buy */
		elog(DEBUG1, "lsh calibration: %s queries, %d pairs: s at quantiles 0.5 %.3f 0.8 %.3f 0.9 %.3f 0.95 %.3f 0.98 %.3f",
			 kind ? "drawn" : "row", n[kind], need[kind][n[kind] / 2], need[kind][(int) (0.8 * n[kind])],
			 need[kind][(int) (0.9 * n[kind])], need[kind][Min((int) (0.95 * n[kind]), n[kind] - 1)],
			 need[kind][Min((int) (0.98 * n[kind]), n[kind] - 1)]);
	}
	pfree(need[0]);
	pfree(need[1]);
	if (n[0] + n[1] == 0)
		return 0;
	return (float) Max(unit, LSH_CALIBRATION_MIN_UNIT);
}

/* The unit of the index as built (lsh_calibrate_unit); frees cal. */
float
lsh_calibrate_end(LshCalibration *cal, const LshState *state, const LshListItem *items)
{
	float		unit = lsh_calibrate_unit(cal, state, items);

	if (cal != NULL)
	{
		pfree(cal->queries);
		pfree(cal->query_row);
		pfree(cal->pair_query);
		pfree(cal->x);
		pfree(cal);
	}
	return unit;
}

/* The lists' bounds and ties (lsh_list_bounds), for ordering them as the scan does. */
typedef struct ListOrder
{
	const float8 *lb;
	const float8 *tie;
} ListOrder;

static int
cmp_list_bound(const void *a, const void *b, void *arg)
{
	const ListOrder *o = (const ListOrder *) arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	if (o->lb[x] != o->lb[y])
		return o->lb[x] < o->lb[y] ? -1 : 1;
	if (o->tie[x] != o->tie[y])
		return o->tie[x] < o->tie[y] ? -1 : 1;
	return x - y;
}

/* Keep d among the m smallest of best[0..*nb) (ascending), by insertion. */
static inline void
keep_nearest(float8 *best, int *nb, int m, float8 d)
{
	int			b;

	if (*nb == m && d >= best[m - 1])
		return;
	b = *nb < m ? (*nb)++ : m - 1;
	while (b > 0 && best[b - 1] > d)
	{
		best[b] = best[b - 1];
		b--;
	}
	best[b] = d;
}

/*
 * One ordered scan at allowance s, simulated on the sample for a query whose
 * distances to the sample rows are dist (see lsh_calibrate_scan; mth: the
 * distance of its m-th nearest sample row): the sample rows read, and in
 * *found how many of the m nearest rows of the sample are in the lists read.
 * lb, tie, order: nlists of work.
 */
static int
simulated_scan(const LshSimShape *shape, const int *start, const int *members, float8 s,
			   const float *q, const float8 *dist, float8 mth, int m, int *found,
			   float8 *lb, float8 *tie, int *order, float *work)
{
	int			nlists = shape->state->meta.nlists;
	float8		best[LSH_CALIBRATION_K];
	int			nb = 0;
	int			rows = 0;
	ListOrder	lo = {lb, tie};

	/*
	 * By the bounds alone: the real scan also reads the query's own list
	 * first (lsh_query_own_list), and simulating that too made the
	 * ranges' drawn and centre queries look better than the built index
	 * was (TAP 059: 8 ranges kept, recall@10 0.985 -> 0.922)
	 */
	lsh_list_bounds_at(shape->state, q, shape->items, s, lb, tie, work);
	for (int l = 0; l < nlists; l++)
		order[l] = l;
	qsort_arg(order, nlists, sizeof(int), cmp_list_bound, &lo);
	*found = 0;
	for (int t = 0; t < nlists; t++)
	{
		int			l = order[t];

		if (isinf(lb[l]) ||
			(t >= LSH_BOUNDED_FIRST_LISTS && nb == m && best[m - 1] <= lb[l]))
			break;
		rows += start[l + 1] - start[l];
		for (int i = start[l]; i < start[l + 1]; i++)
		{
			float8		d = dist[members[i]];

			*found += d <= mth;
			keep_nearest(best, &nb, m, d);
		}
	}
	*found = Min(*found, m);
	return rows;
}

/*
 * Queries a matrix product takes at once, and the most bytes of their
 * products with the sample (a large sample takes fewer queries at once).
 */
#define LSH_SIM_BLOCK	32
#define LSH_SIM_BLOCK_BYTES (16 * 1024 * 1024)

/*
 * The work of the ordered scan at the default margin, simulated on the
 * sample (the one the calibration began with, or its first n rows, of a
 * table of ntuples) for each of nshapes shapes (their lists of those rows,
 * bounds and units): lists read in the order of their bounds,
 * at least LSH_BOUNDED_FIRST_LISTS, until the nearest rows read so far (as
 * many as the table's top 10 has in the sample) are no farther than the next
 * list's bound.  Per shape and kind of query (0: the calibration's sample
 * rows, like the data; 1: its drawn queries; 2: the nextra queries given),
 * the mean sample rows read per query, in rows[shape][kind], and the share of
 * the queries' nearest sample rows in the lists read, in recall[shape][kind].
 * The queries' distances to the sample come from one matrix product per
 * block of queries, shared by the shapes.
 */
void
lsh_calibrate_scan(const LshCalibration *cal, const LshSimShape *shapes, int nshapes,
				   const float *sample, int n, double ntuples, const float *extra, int nextra,
				   double rows[][3], double recall[][3])
{
	LshMetric	metric = (LshMetric) shapes[0].state->meta.metric;
	int			dim = cal->dim;
	int			m = sample_top(n, ntuples);
	int			maxlists = 0;
	int		  **start = palloc(sizeof(int *) * nshapes);
	int		  **members = palloc(sizeof(int *) * nshapes);
	float	   *norm2 = palloc(sizeof(float) * Max(n, 1));
	int			block_queries = (int) Max(1, Min(LSH_SIM_BLOCK,
												 LSH_SIM_BLOCK_BYTES / (sizeof(float) * (Size) Max(n, 1))));
	float	   *dots = palloc_extended(sizeof(float) * (Size) block_queries * Max(n, 1), MCXT_ALLOC_HUGE);
	float	   *block = palloc(sizeof(float) * (Size) block_queries * dim);
	float8	   *dist = palloc(sizeof(float8) * Max(n, 1));
	float8	   *lb;
	float8	   *tie;
	int		   *order;
	float	   *work;
	int			queries[3] = {0, 0, 0};
	int		  (*found)[3] = palloc0(sizeof(int[3]) * nshapes);

	/* each shape's sample rows grouped by list */
	for (int k = 0; k < nshapes; k++)
	{
		int			nlists = shapes[k].state->meta.nlists;
		int		   *fill = palloc(sizeof(int) * nlists);

		maxlists = Max(maxlists, nlists);
		start[k] = palloc0(sizeof(int) * (nlists + 1));
		members[k] = palloc(sizeof(int) * Max(n, 1));
		for (int i = 0; i < n; i++)
			start[k][shapes[k].lists[i] + 1]++;
		for (int l = 0; l < nlists; l++)
			start[k][l + 1] += start[k][l];
		memcpy(fill, start[k], sizeof(int) * nlists);
		for (int i = 0; i < n; i++)
			members[k][fill[shapes[k].lists[i]]++] = i;
		pfree(fill);
		memset(rows[k], 0, sizeof(double) * 3);
	}
	lb = palloc(sizeof(float8) * maxlists);
	tie = palloc(sizeof(float8) * maxlists);
	order = palloc(sizeof(int) * maxlists);
	work = palloc(sizeof(float) * maxlists);
	for (int i = 0; i < n; i++)
		norm2[i] = (float) kernel_norm_squared(sample + (Size) i * dim, dim);

	for (int j0 = 0; j0 < cal->nqueries + nextra; j0 += block_queries)
	{
		int			nb = Min(block_queries, cal->nqueries + nextra - j0);

		for (int b = 0; b < nb; b++)
		{
			int			j = j0 + b;

			memcpy(block + (Size) b * dim,
				   j < cal->nqueries ? cal->queries + (Size) j * dim
				   : extra + (Size) (j - cal->nqueries) * dim,
				   sizeof(float) * dim);
		}
		kernel_matmul(sample, NULL, n, dim, block, dim, nb, dots, n, false);
		for (int b = 0; b < nb; b++)
		{
			int			j = j0 + b;
			const float *q = block + (Size) b * dim;
			int			self = j < cal->nqueries ? cal->query_row[j] : -1;
			int			kind = j >= cal->nqueries ? 2 : self < 0 ? 1 : 0;
			float8		best[LSH_CALIBRATION_K];
			int			nbest = 0;

			distances_from_dots(metric, kernel_norm_squared(q, dim), dots + (Size) b * n,
								norm2, n, dist);
			if (self >= 0 && self < n)
				dist[self] = get_float8_infinity();	/* not itself */
			for (int i = 0; i < n; i++)
				keep_nearest(best, &nbest, m, dist[i]);
			queries[kind]++;
			for (int k = 0; k < nshapes; k++)
			{
				int			hits;

				rows[k][kind] += simulated_scan(&shapes[k], start[k], members[k],
												Min(1.0, LSH_CALIBRATION_MARGIN * shapes[k].unit),
												q, dist, best[nbest - 1], m, &hits,
												lb, tie, order, work);
				found[k][kind] += hits;
			}
		}
	}
	for (int k = 0; k < nshapes; k++)
	{
		for (int kind = 0; kind < 3; kind++)
		{
			rows[k][kind] = queries[kind] > 0 ? rows[k][kind] / queries[kind] : 0;
			recall[k][kind] = queries[kind] > 0 ?
				(double) found[k][kind] / ((double) queries[kind] * m) : 1.0;
		}
		pfree(start[k]);
		pfree(members[k]);
	}
	pfree(start);
	pfree(members);
	pfree(found);
	pfree(norm2);
	pfree(dots);
	pfree(block);
	pfree(dist);
	pfree(lb);
	pfree(tie);
	pfree(order);
	pfree(work);
}
