/*
 * lshranges.c
 *	  Norm ranges of an inner-product k-means index: chosen at build, by scans
 *	  simulated on the sample.
 *
 * For inner product the rows that win are long rows pointing the query's way.
 * Split by norm into ranges, each range with its own lists, the lists of the
 * long rows get their own largest norm, and the bounds of the other lists
 * (lshbound.c: -maxnorm u) let the scan pass them by.  Whether that pays is a
 * property of the data: where a class spreads over many lists and its rows'
 * norms vary within it (the benchmark's MLP embeddings: 10 classes, 400
 * lists), 8 ranges cut the CPU per query at recall@10 0.95 2-2.4x; where tight
 * clusters each fill a list or less (the mixture set: 1,000 clusters), every
 * range splits every cluster, a list holds pieces of several, and 8 ranges
 * cost 3-5x.
 *
 * So the build measures it.  It learns the lists with one range and with
 * LSH_MEASURED_RANGES; for each, it hashes the sample, takes the lists'
 * bounds the table would give from the sample rows (table_maxima), calibrates
 * the unit on them (lshcalibrate.c) and simulates the default scan for three
 * kinds of query: the calibration's sample rows (queries like the data), its
 * draws (queries off the data) and the one range's centres (queries between
 * the rows, as a cluster's mean is).  The ranges are kept when the scans of
 * the queries like the data read at most LSH_RANGES_GAIN of the rows the one
 * range's read, and no kind of query loses more than LSH_RANGES_RECALL_LOSS
 * of recall: on a mixture mapped by a linear upgrade (TAP 059), 8 ranges read
 * 2.6x fewer rows for queries like the data but found 0.940 of the centres'
 * neighbours against 1.000, and the built index's recall@10 for queries near
 * the clusters' centres fell from 0.99 to 0.89.  Where the ranges lose more
 * than that at the default margin, they are simulated again at
 * LSH_RANGES_WIDER times the margin and kept, their unit scaled by it, when
 * they pass there: the shapes are then compared at equal recall, not at
 * equal margin.  (The MLP embeddings on an analysed table, 64 pairs of each
 * kind: 8 ranges read 2,312 rows against 4,887 but found 0.961 of the
 * centres' neighbours; at 1.2 times the margin 2,887 rows and 0.984; built,
 * recall@10 0.990 at 80 index pages a query at the defaults, where one range
 * gave 0.956 at 133.)  An explicit norm_ranges option is used as given.
 *
 * What the simulation said, rows read a query like the data with 1 and 8
 * ranges (the index built: pages or CPU a query): MLP embeddings 5,290 and
 * 1,917 (CPU at recall 0.95 2-2.4x lower with 8); the mixture 1,246 and 12,000
 * (8 ranges cost 3-5x); TAP 053's broad classes 4,995 and 1,060 (pages 37 and
 * 8), its tight clusters 1,525 and 2,361 (pages 14 and 20).
 *
 * Cost: the second learning is about an eighth of the first (each range's
 * k-means has an eighth of the sample and of the lists), plus two hashes of
 * the sample and the simulated scans (a few hundred queries against the
 * sample, one matrix product per block of queries for both shapes): on the
 * benchmark's 200,000 rows, +11% of the build where one range is kept, -8%
 * where the ranges are (their hash compares a row with fewer centres); on the
 * million-row mixture +15% (LSH_RANGES_TRIAL_ROWS).
 */
#include "postgres.h"

#include <math.h>

#include "lshbuild.h"
#include "utils/rel.h"

/* The ranges measured against one range. */
#define LSH_MEASURED_RANGES		8
/* Queries at the one range's centres (between the rows). */
#define LSH_CENTRE_QUERIES		128
/*
 * Sample rows the trial of the ranges learns from: all of them up to a table
 * of about 400,000 rows; at a million rows, learning 8 ranges of 250 lists
 * from the whole sample (65,536 rows at maintenance_work_mem 64MB) took twice
 * the one range's two-level learning.  The scans are simulated on the whole
 * sample: on 16,384 rows (8 a list) the bounds and the rows read said
 * nothing (the mixture: 99,244 rows a query with one range, 79,471 with 8,
 * where the whole sample says 1,137 and 18,818).
 */
#define LSH_RANGES_TRIAL_ROWS	16384
/* To be kept, the ranges read at most this share of the one range's rows (queries like the data)... */
#define LSH_RANGES_GAIN			0.8
/* ... and lose at most this much simulated recall on any kind of query. */
#define LSH_RANGES_RECALL_LOSS	0.02
/*
 * Where they lose more at the default margin, the ranges are also tried at
 * this many times the margin, and kept, with their unit scaled by it, when
 * they meet both conditions there.
 */
#define LSH_RANGES_WIDER		1.2

/* Whether the build chooses the norm ranges (lsh_learn_measuring_ranges). */
bool
lsh_ranges_measured(const LshBuildState *bs)
{
	return bs->family == LSH_FAMILY_KMEANS && bs->metric == LSH_METRIC_IP &&
		!(bs->opts && bs->opts->norm_ranges > 0);
}

/*
 * The largest of each list's values (resid or norm of its n sample members,
 * lists[i] the list of member i) that the table's rows would give, into
 * out[l].  A list's largest residual and norm grow with its members, and the
 * scan's bounds with them; the sample holds about one row in ntuples / n, and
 * its own largest values made the simulated scans on the MLP embeddings read
 * 2.5x fewer rows than those of the index built.  So a list's largest value
 * is its sample mean plus its sample spread times the standardised value
 * that one in (its members in the table) of the pooled sample's exceeds.
 */
static void
table_maxima(const float *value, const int *lists, int n, int nlists, double ntuples,
			 float *out)
{
	double	   *sum = palloc0(sizeof(double) * nlists);
	double	   *sum2 = palloc0(sizeof(double) * nlists);
	int		   *count = palloc0(sizeof(int) * nlists);
	float	   *z = palloc(sizeof(float) * Max(n, 1));
	int			nz = 0;

	for (int i = 0; i < n; i++)
	{
		sum[lists[i]] += value[i];
		sum2[lists[i]] += (double) value[i] * value[i];
		count[lists[i]]++;
	}
	for (int l = 0; l < nlists; l++)
	{
		double		mean = count[l] > 0 ? sum[l] / count[l] : 0;

		sum2[l] = count[l] > 1 ? sqrt(Max(sum2[l] / count[l] - mean * mean, 0.0)) : 0;
		sum[l] = mean;
		out[l] = 0;
	}
	for (int i = 0; i < n; i++)
	{
		int			l = lists[i];

		out[l] = Max(out[l], value[i]);
		if (sum2[l] > 0)
			z[nz++] = (float) ((value[i] - sum[l]) / sum2[l]);
	}
	qsort(z, nz, sizeof(float), lsh_cmp_float);
	for (int l = 0; l < nlists && nz > 0; l++)
	{
		double		members = count[l] * ntuples / Max(n, 1);
		int			at = (int) ((1.0 - 1.0 / (members + 1.0)) * (nz - 1));

		out[l] = Max(out[l], (float) (sum[l] + sum2[l] * z[Max(0, Min(at, nz - 1))]));
	}
	pfree(sum);
	pfree(sum2);
	pfree(count);
	pfree(z);
}

/*
 * A shape to simulate, from the family as learned (state): each sample row's
 * list, the lists' bounds the table would give, and the unit the calibration
 * gives them.
 */
static void
shape_of(const LshBuildState *bs, int n, const LshState *state, const LshCalibration *cal,
		 LshSimShape *shape)
{
	int			nlists = state->meta.nlists;
	int		   *lists = palloc(sizeof(int) * n);
	float	   *resid = palloc(sizeof(float) * n);
	float	   *norm = palloc(sizeof(float) * n);
	float	   *rmax = palloc(sizeof(float) * nlists);
	float	   *maxnorm = palloc(sizeof(float) * nlists);
	LshListItem *items = palloc(sizeof(LshListItem) * nlists);
	float8	   *sum_r2 = palloc0(sizeof(float8) * nlists);
	int64	   *count = palloc0(sizeof(int64) * nlists);

	lsh_hash_batch(state, bs->sample, n, lists);
	for (int l = 0; l < nlists; l++)
		lsh_item_init(&items[l], InvalidBlockNumber);
	for (int i = 0; i < n; i++)
	{
		lsh_member_geometry(state, lists[i], bs->sample + (Size) i * bs->dim, &resid[i], &norm[i]);
		lsh_item_widen(&items[lists[i]], resid[i], norm[i]);
		sum_r2[lists[i]] += (float8) resid[i] * resid[i];
		count[lists[i]]++;
	}
	/* the sample's spread is the table's: no extrapolation, unlike the maxima */
	lsh_items_set_rms(items, nlists, sum_r2, count);
	table_maxima(resid, lists, n, nlists, bs->ntuples, rmax);
	table_maxima(norm, lists, n, nlists, bs->ntuples, maxnorm);
	for (int l = 0; l < nlists; l++)
		if (items[l].rmax >= items[l].rmin)
			lsh_item_widen(&items[l], rmax[l], maxnorm[l]);
	shape->state = state;
	shape->items = items;
	shape->lists = lists;
	shape->unit = lsh_calibrate_unit(cal, state, items);
	pfree(resid);
	pfree(norm);
	pfree(rmax);
	pfree(maxnorm);
	pfree(sum_r2);
	pfree(count);
}

/*
 * Whether simulated shape k pays against shape 0 (one range): it reads at
 * most LSH_RANGES_GAIN of the rows for queries like the data and loses at
 * most LSH_RANGES_RECALL_LOSS of recall on every kind of query.
 */
static bool
shape_pays(double rows[][3], double recall[][3], int k)
{
	if (rows[k][0] > LSH_RANGES_GAIN * rows[0][0])
		return false;
	for (int kind = 0; kind < 3; kind++)
		if (recall[k][kind] < recall[0][kind] - LSH_RANGES_RECALL_LOSS)
			return false;
	return true;
}

static void
shape_free(LshSimShape *shape)
{
	pfree((void *) shape->items);
	pfree((void *) shape->lists);
}

/*
 * lsh_learn, for an index whose norm ranges the build chooses: learns one
 * range and LSH_MEASURED_RANGES (where the sample holds enough rows per
 * range) and keeps the ranges where the simulated scans say so (see the file
 * header).  cal: the calibration's queries, from the same sample.
 */
void
lsh_learn_measuring_ranges(LshBuildState *bs, const LshCalibration *cal)
{
	LshMetaPageData planned = bs->state.meta;
	int			full_n = bs->sample_n;
	int			trial_n = Min(full_n, LSH_RANGES_TRIAL_ROWS);
	LshState	one;
	LshSimShape shapes[3];
	double		rows[3][3];
	double		recall[3][3];
	int			ranges = lsh_ranges_that_fit(bs, LSH_MEASURED_RANGES);
	int			ncentres;
	float	   *centres;
	bool		keep;

	bs->state.meta.nranges = 1;
	lsh_learn(bs);
	if (cal == NULL || ranges <= 1)
		return;
	one = bs->state;

	/*
	 * The trial of the ranges learns from at most LSH_RANGES_TRIAL_ROWS of the
	 * sample (its first slots: a uniform subset of the rows), from the planned
	 * shape, not from what the first learning left (two-level cells).
	 */
	bs->state.meta = planned;
	bs->state.meta.nranges = ranges;
	bs->sample_n = trial_n;
	lsh_learn(bs);
	bs->sample_n = full_n;
	/* learn_norm_ranges may have cut the ranges (ties) */
	if (bs->state.meta.nranges == 1)
	{
		bs->state = one;
		return;
	}

	/* queries between the rows: the one range's centres (directions), spread over the lists */
	ncentres = Min(one.meta.nlists, LSH_CENTRE_QUERIES);
	centres = palloc(sizeof(float) * (Size) ncentres * bs->dim);
	for (int c = 0; c < ncentres; c++)
		memcpy(centres + (Size) c * bs->dim,
			   one.params + (Size) (((int64) c * one.meta.nlists) / ncentres) * bs->dim,
			   sizeof(float) * bs->dim);
	shape_of(bs, full_n, &one, cal, &shapes[0]);
	shape_of(bs, full_n, &bs->state, cal, &shapes[1]);
	/* the ranges again at the wider margin: the same lists and bounds */
	shapes[2] = shapes[1];
	shapes[2].unit *= LSH_RANGES_WIDER;
	lsh_calibrate_scan(cal, shapes, 3, bs->sample, full_n, bs->ntuples, centres, ncentres,
					   rows, recall);
	for (int k = 0; k < 3; k++)
		elog(DEBUG1, "lsh index \"%s\": simulated scans with %d norm range(s)%s read, a query like the data | drawn | at a centre: %.0f | %.0f | %.0f rows, recall %.3f | %.3f | %.3f",
			 RelationGetRelationName(bs->index), k == 0 ? 1 : bs->state.meta.nranges,
			 k == 2 ? " at the wider margin" : "",
			 rows[k][0] * bs->ntuples / full_n, rows[k][1] * bs->ntuples / full_n,
			 rows[k][2] * bs->ntuples / full_n, recall[k][0], recall[k][1], recall[k][2]);
	if (shape_pays(rows, recall, 1))
		keep = true;
	else if (shape_pays(rows, recall, 2))
	{
		keep = true;
		bs->unit_factor = LSH_RANGES_WIDER;
	}
	else
		keep = false;
	shape_free(&shapes[0]);
	shape_free(&shapes[1]);
	pfree(centres);
	if (!keep)
		bs->state = one;
	else if (full_n > LSH_RANGES_TRIAL_ROWS)
	{
		/* the ranges kept, learned from the whole sample */
		bs->state.meta = planned;
		bs->state.meta.nranges = ranges;
		lsh_learn(bs);
	}
}
