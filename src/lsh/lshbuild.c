/*
 * lshbuild.c
 *	  Building an lsh index: sample the rows, learn the hash family, hash every
 *	  row into its list, write the pages.
 *
 * Two passes over the heap.  The first counts the rows, checks that they share
 * one dimension and model, and keeps a uniform sample (reservoir sampling) for
 * the hash family.  The second hashes every row (in chunks, one matrix product
 * per chunk and norm range) and appends it to its list's page image; a full
 * page image is written out and becomes the head of its list's chain.
 *
 * Memory (maintenance_work_mem): the sample takes at most half of it, so a
 * large table or a small maintenance_work_mem means a smaller sample (a NOTICE
 * says so) and k-means learns from fewer points; the page images take one page
 * per list, and the lists are capped so that they fit in the other half (a
 * NOTICE says so when the automatic count is cut; an explicit "lists" that does
 * not fit is an error naming the memory needed).  Nothing else grows with the
 * table, so the build never spills.
 */
#include "postgres.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "common/pg_prng.h"
#include "kernels/distance.h"
#include "lsh.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Build sub-phases (pg_stat_progress_create_index.phase) */
#define LSH_PHASE_SAMPLE		2
#define LSH_PHASE_LEARN			3
#define LSH_PHASE_HASH			4
#define LSH_PHASE_FINISH		5

#define LSH_SAMPLE_PER_LIST		40
#define LSH_SAMPLE_MIN			10000
#define LSH_KMEANS_ITERATIONS	8
#define LSH_ROWS_PER_LIST		500
#define LSH_DEFAULT_NORM_RANGES 1
#define LSH_SEED				0x5EED15C0FFEEULL

typedef struct LshBuildState
{
	Relation	index;
	LshMetric	metric;
	LshFamily	family;
	LshOptions *opts;

	/* the vectors' shape, fixed by the first one */
	bool		has_model;
	int			dim;
	int32		model_id;

	/* pass 1 */
	double		ntuples;
	int			sample_cap;
	int			sample_n;
	float	   *sample;
	pg_prng_state rng;

	/* pass 2 */
	LshState	state;			/* meta + params, built in memory */
	Page	   *pages;			/* one page image per list, NULL until used */
	LshListItem *items;			/* per list: chain head, bounds */
	LshCalibration *calibration;	/* sample queries for the bounds' unit */
	int			nchunk;
	float	   *chunk;			/* LSH_HASH_CHUNK x dim */
	ItemPointerData *chunk_tids;
	int		   *chunk_lists;
	LshEntry   *entry;
	double		indtuples;
	MemoryContext tmpcxt;

	/* pages written so far (straight to the fork), and whether to WAL-log */
	BlockNumber nblocks;
	bool		use_wal;
} LshBuildState;

char *
lsh_buildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case LSH_PHASE_SAMPLE:
			return "sampling rows";
		case LSH_PHASE_LEARN:
			return "learning hash functions";
		case LSH_PHASE_HASH:
			return "hashing rows";
		case LSH_PHASE_FINISH:
			return "writing directory";
	}
	return NULL;
}

/* Default lists for n rows: about LSH_ROWS_PER_LIST rows each. */
static int
default_lists(double n)
{
	double		lists = n / LSH_ROWS_PER_LIST;

	if (n > 1000000)
		lists = 2 * sqrt(n);
	return (int) Max(1, Min(lists, LSH_MAX_LISTS));
}

/* ----------------------------------------------------------------
 * Writing pages
 * ----------------------------------------------------------------
 */

/*
 * The build writes its pages straight to the main fork, not through shared
 * buffers (as nbtree's sorted build does): each page is written once, with
 * one WAL record holding its image, and the fork is synced at the end
 * (finish_pages).  Extending through shared buffers wrote every page twice
 * (zeros, then the image) and took a quarter of the build.
 */
static void
put_page(LshBuildState *bs, BlockNumber blkno, Page image)
{
	if (bs->use_wal)
		log_newpage(&bs->index->rd_node, MAIN_FORKNUM, blkno, image, true);
	PageSetChecksumInplace(image, blkno);
	if (blkno == bs->nblocks)
	{
		smgrextend(RelationGetSmgr(bs->index), MAIN_FORKNUM, blkno, (char *) image, true);
		bs->nblocks++;
	}
	else
		smgrwrite(RelationGetSmgr(bs->index), MAIN_FORKNUM, blkno, (char *) image, true);
}

/* Append a page image at the end of the main fork; its block. */
static BlockNumber
write_new_page(LshBuildState *bs, Page image)
{
	BlockNumber blkno = bs->nblocks;

	put_page(bs, blkno, image);
	return blkno;
}

/*
 * The pages bypassed shared buffers, so a checkpoint during the build did not
 * flush them: sync them before the index can be used (a crash after that
 * checkpoint would not replay their WAL).
 */
static void
finish_pages(LshBuildState *bs)
{
	if (bs->use_wal)
		smgrimmedsync(RelationGetSmgr(bs->index), MAIN_FORKNUM);
}

static void
fill_meta_page(Page page, const LshMetaPageData *meta)
{
	lsh_init_page(page, LSH_PAGE_META);
	memcpy(PageGetContents(page), meta, sizeof(LshMetaPageData));
	((PageHeader) page)->pd_lower = (char *) PageGetContents(page) + sizeof(LshMetaPageData) - (char *) page;
}

/* Directory page images for lists [first, first + n), from items. */
static void
fill_dir_page(Page page, const LshListItem *items, int first, int n)
{
	lsh_init_page(page, LSH_PAGE_DIR);
	for (int l = first; l < first + n; l++)
	{
		LshListItem item;

		if (items)
		{
			item = items[l];
			item.insert_page = item.head;
		}
		else
			lsh_item_init(&item, InvalidBlockNumber);
		if (PageAddItem(page, (Item) &item, sizeof(item), InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "lsh: directory page overflow");
	}
}

static int
lists_per_dirpage(void)
{
	return (int) ((BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(LshPageOpaqueData))) /
				  (MAXALIGN(sizeof(LshListItem)) + sizeof(ItemIdData)));
}

/* The metapage of an unlearned index with no rows: one list, nothing fixed. */
static void
empty_meta(LshMetaPageData *meta, LshMetric metric, LshFamily family)
{
	memset(meta, 0, sizeof(LshMetaPageData));
	meta->magic = LSH_MAGIC;
	meta->version = LSH_PAGE_VERSION;
	meta->metric = metric;
	meta->family = family;
	meta->nlists = 1;
	meta->nranges = 1;
	meta->param_start = InvalidBlockNumber;
	meta->dir_start = 1;
	meta->ndirpages = 1;
	meta->lists_per_dirpage = lists_per_dirpage();
}

/*
 * The init fork of an unlogged index: an empty unlearned index.  Written
 * through smgr and log_newpage, as contrib/bloom does: GenericXLog does not
 * log unlogged relations, but the init fork must reach the standby.
 */
void
lsh_buildempty(Relation index)
{
	LshMetaPageData meta;
	Page		page = (Page) palloc(BLCKSZ);

	empty_meta(&meta, lsh_index_metric(index), lsh_options_family(index));

	fill_meta_page(page, &meta);
	PageSetChecksumInplace(page, LSH_METAPAGE_BLKNO);
	smgrwrite(RelationGetSmgr(index), INIT_FORKNUM, LSH_METAPAGE_BLKNO, (char *) page, true);
	log_newpage(&(RelationGetSmgr(index))->smgr_rnode.node, INIT_FORKNUM,
				LSH_METAPAGE_BLKNO, page, true);

	fill_dir_page(page, NULL, 0, 1);
	PageSetChecksumInplace(page, 1);
	smgrwrite(RelationGetSmgr(index), INIT_FORKNUM, 1, (char *) page, true);
	log_newpage(&(RelationGetSmgr(index))->smgr_rnode.node, INIT_FORKNUM, 1, page, true);

	smgrimmedsync(RelationGetSmgr(index), INIT_FORKNUM);
	pfree(page);
}

/* ----------------------------------------------------------------
 * Pass 1: count, check, sample
 * ----------------------------------------------------------------
 */

static void
check_shape(LshBuildState *bs, const Embedding *e)
{
	LshMetaPageData meta;

	if (bs->has_model)
	{
		meta.has_model = true;
		meta.dim = bs->dim;
		meta.model_id = bs->model_id;
	}
	else
		meta.has_model = false;
	lsh_check_value(bs->index, &meta, e, false);
	if (!bs->has_model)
	{
		bs->has_model = true;
		bs->dim = e->dim;
		bs->model_id = e->model_id;
	}
}

static void
sample_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				bool tupleIsAlive, void *state)
{
	LshBuildState *bs = (LshBuildState *) state;
	MemoryContext oldcxt;
	Embedding  *e;
	int			slot;

	if (isnull[0])
		return;

	oldcxt = MemoryContextSwitchTo(bs->tmpcxt);
	e = DatumGetEmbeddingP(values[0]);
	check_shape(bs, e);
	MemoryContextSwitchTo(oldcxt);

	if (bs->sample == NULL)
	{
		Size		budget = (Size) maintenance_work_mem * 1024 / 2;
		int			cap = (int) Min((Size) bs->sample_cap, budget / (sizeof(float) * bs->dim));

		if (cap < bs->sample_cap)
			ereport(NOTICE,
					(errmsg("lsh index \"%s\" learns from a sample of %d rows instead of %d",
							RelationGetRelationName(index), cap, bs->sample_cap),
					 errdetail("The sample may use half of maintenance_work_mem (%d kB).",
							   maintenance_work_mem),
					 errhint("Raise maintenance_work_mem for a larger sample and better recall.")));
		bs->sample_cap = Max(cap, 1);
		bs->sample = palloc_extended(sizeof(float) * (Size) bs->sample_cap * bs->dim,
									 MCXT_ALLOC_HUGE);
	}

	/* Algorithm R: the first cap rows, then row i replaces a slot w.p. cap/i */
	bs->ntuples += 1;
	if (bs->sample_n < bs->sample_cap)
		slot = bs->sample_n++;
	else
	{
		uint64		r = pg_prng_uint64_range(&bs->rng, 0, (uint64) bs->ntuples - 1);

		slot = r < (uint64) bs->sample_cap ? (int) r : -1;
	}
	if (slot >= 0)
		memcpy(bs->sample + (Size) slot * bs->dim, EMBEDDING_VEC(e), sizeof(float) * bs->dim);

	MemoryContextReset(bs->tmpcxt);
}

/* ----------------------------------------------------------------
 * Learning the hash family
 * ----------------------------------------------------------------
 */

static int
cmp_float(const void *a, const void *b)
{
	float		x = *(const float *) a;
	float		y = *(const float *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

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
	qsort(sorted, bs->sample_n, sizeof(float), cmp_float);
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

static void
learn(LshBuildState *bs)
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
 * Decide the shape of the index (lists, ranges, bits) from the options and
 * the row count.  An explicit option is used as given or is an error; where
 * the table cannot support it (too few rows, too little memory for an
 * automatic choice) a NOTICE says what the build uses instead.
 */
static void
plan_shape(LshBuildState *bs)
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
				int			lists = opts && opts->lists > 0 ? opts->lists : default_lists(n);

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
				meta->nranges = Max(1, Min(want_ranges, lists));
				meta->nlists = lists;
				/* each range must hold at least as many sample rows as lists */
				while (meta->nranges > 1 &&
					   bs->sample_n / meta->nranges < (lists + meta->nranges - 1) / meta->nranges + 1)
					meta->nranges--;
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

/* ----------------------------------------------------------------
 * Pass 2: hash and write
 * ----------------------------------------------------------------
 */

static void
add_to_list(LshBuildState *bs, int list, const LshEntry *entry, Size size)
{
	Page		page = bs->pages[list];

	if (page == NULL)
	{
		page = bs->pages[list] = palloc(BLCKSZ);
		lsh_init_page(page, LSH_PAGE_ENTRY);
	}
	if (PageAddItem(page, (Item) entry, size, InvalidOffsetNumber, false, false) != InvalidOffsetNumber)
		return;

	/* full: write it out as the new head of the list's chain */
	LshPageGetOpaque(page)->next = bs->items[list].head;
	bs->items[list].head = write_new_page(bs, page);
	lsh_init_page(page, LSH_PAGE_ENTRY);
	if (PageAddItem(page, (Item) entry, size, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
		elog(ERROR, "lsh: entry of %zu bytes does not fit on an empty page", size);
}

static void
flush_chunk(LshBuildState *bs)
{
	Size		size = LSH_ENTRY_SIZE(bs->dim);

	if (bs->nchunk == 0)
		return;

	lsh_hash_batch(&bs->state, bs->chunk, bs->nchunk, bs->chunk_lists);
	for (int i = 0; i < bs->nchunk; i++)
	{
		if (lsh_has_bounds(&bs->state.meta))
		{
			float		resid;
			float		norm;

			lsh_member_geometry(&bs->state, bs->chunk_lists[i],
								bs->chunk + (Size) i * bs->dim, &resid, &norm);
			lsh_item_widen(&bs->items[bs->chunk_lists[i]], resid, norm);
		}
		bs->entry->heap_tid = bs->chunk_tids[i];
		memcpy(bs->entry->x, bs->chunk + (Size) i * bs->dim, sizeof(float) * bs->dim);
		add_to_list(bs, bs->chunk_lists[i], bs->entry, size);
	}
	bs->indtuples += bs->nchunk;
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) bs->indtuples);
	bs->nchunk = 0;
}

static void
hash_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			  bool tupleIsAlive, void *state)
{
	LshBuildState *bs = (LshBuildState *) state;
	MemoryContext oldcxt;
	Embedding  *e;

	if (isnull[0])
		return;

	oldcxt = MemoryContextSwitchTo(bs->tmpcxt);
	e = DatumGetEmbeddingP(values[0]);
	/* rows the first pass did not see (concurrent build) must match too */
	check_shape(bs, e);
	memcpy(bs->chunk + (Size) bs->nchunk * bs->dim, EMBEDDING_VEC(e), sizeof(float) * bs->dim);
	bs->chunk_tids[bs->nchunk] = *tid;
	bs->nchunk++;
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(bs->tmpcxt);

	if (bs->nchunk == LSH_HASH_CHUNK)
		flush_chunk(bs);
}

/* ----------------------------------------------------------------
 * ambuild
 * ----------------------------------------------------------------
 */

IndexBuildResult *
lsh_build(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	LshBuildState bs;
	LshMetaPageData *meta = &bs.state.meta;
	Page		page;
	BlockNumber pages_est;
	double		tuples_est;
	double		allvisfrac;
	double		reltuples;
	int			lpp;
	MemoryContext buildcxt;
	MemoryContext oldcxt;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	buildcxt = AllocSetContextCreate(CurrentMemoryContext, "lsh build", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(buildcxt);

	memset(&bs, 0, sizeof(bs));
	bs.index = index;
	bs.metric = lsh_index_metric(index);
	bs.family = lsh_options_family(index);
	bs.opts = (LshOptions *) index->rd_options;
	bs.tmpcxt = AllocSetContextCreate(buildcxt, "lsh build tuple", ALLOCSET_DEFAULT_SIZES);
	bs.nblocks = 0;
	bs.use_wal = RelationNeedsWAL(index);
	pg_prng_seed(&bs.rng, LSH_SEED);

	/* sample size from the planner's estimate of the row count */
	estimate_rel_size(heap, NULL, &pages_est, &tuples_est, &allvisfrac);
	if (bs.family == LSH_FAMILY_KMEANS)
	{
		int			lists = bs.opts && bs.opts->lists > 0 ? bs.opts->lists : default_lists(tuples_est);

		bs.sample_cap = (int) Min((double) lists * LSH_SAMPLE_PER_LIST, 10000000.0);
		bs.sample_cap = Max(bs.sample_cap, LSH_SAMPLE_MIN);
	}
	else
		bs.sample_cap = LSH_SAMPLE_MIN;

	/* pass 1 */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_SAMPLE);
	reltuples = table_index_build_scan(heap, index, indexInfo, true, true, sample_callback, &bs, NULL);

	empty_meta(meta, bs.metric, bs.family);
	if (bs.ntuples > 0)
	{
		meta->has_model = true;
		meta->dim = bs.dim;
		meta->model_id = bs.model_id;
		meta->learned = true;
		meta->build_tuples = bs.ntuples;
		plan_shape(&bs);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_LEARN);
		learn(&bs);
		/* sample queries and their neighbours, before the sample goes */
		bs.calibration = lsh_calibrate_begin(&bs.state, bs.sample, bs.sample_n, bs.ntuples);
	}
	if (bs.sample)
		pfree(bs.sample);
	bs.sample = NULL;

	/* metapage placeholder, then parameter pages */
	page = palloc(BLCKSZ);
	fill_meta_page(page, meta);
	write_new_page(&bs, page);
	if (meta->nparams > 0)
	{
		int			done = 0;

		while (done < meta->nparams)
		{
			int			n = Min(LSH_PARAM_FLOATS_PER_PAGE, meta->nparams - done);
			BlockNumber blk;

			lsh_init_page(page, LSH_PAGE_PARAM);
			memcpy(PageGetContents(page), bs.state.params + done, sizeof(float) * n);
			((PageHeader) page)->pd_lower += sizeof(float) * n;
			blk = write_new_page(&bs, page);
			if (done == 0)
				meta->param_start = blk;
			done += n;
		}
	}

	/* pass 2 */
	bs.pages = palloc0(sizeof(Page) * meta->nlists);
	bs.items = palloc(sizeof(LshListItem) * meta->nlists);
	for (int l = 0; l < meta->nlists; l++)
		lsh_item_init(&bs.items[l], InvalidBlockNumber);
	if (bs.ntuples > 0)
	{
		bs.chunk = palloc(sizeof(float) * LSH_HASH_CHUNK * bs.dim);
		bs.chunk_tids = palloc(sizeof(ItemPointerData) * LSH_HASH_CHUNK);
		bs.chunk_lists = palloc(sizeof(int) * LSH_HASH_CHUNK);
		bs.entry = palloc0(LSH_ENTRY_SIZE(bs.dim));

		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_HASH);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, (int64) bs.ntuples);
		reltuples = table_index_build_scan(heap, index, indexInfo, true, true, hash_callback, &bs, NULL);
		flush_chunk(&bs);
	}

	/* the partial page of each list becomes its head */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_FINISH);
	for (int l = 0; l < meta->nlists; l++)
	{
		if (bs.pages[l] == NULL)
			continue;
		LshPageGetOpaque(bs.pages[l])->next = bs.items[l].head;
		bs.items[l].head = write_new_page(&bs, bs.pages[l]);
		pfree(bs.pages[l]);
	}

	/* the bounds' unit, from the lists' final bounds (lshcalibrate.c) */
	meta->bound_unit = lsh_calibrate_end(bs.calibration, &bs.state, bs.items);

	/* directory, then the final metapage */
	lpp = lists_per_dirpage();
	meta->lists_per_dirpage = lpp;
	meta->ndirpages = (meta->nlists + lpp - 1) / lpp;
	for (int d = 0; d < meta->ndirpages; d++)
	{
		int			first = d * lpp;
		BlockNumber blk;

		fill_dir_page(page, bs.items, first, Min(lpp, meta->nlists - first));
		blk = write_new_page(&bs, page);
		if (d == 0)
			meta->dir_start = blk;
	}
	fill_meta_page(page, meta);
	put_page(&bs, LSH_METAPAGE_BLKNO, page);
	finish_pages(&bs);

	MemoryContextSwitchTo(oldcxt);
	result = (IndexBuildResult *) palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs.indtuples;
	MemoryContextDelete(buildcxt);
	return result;
}
