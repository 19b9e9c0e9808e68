/*
 * lshbuild.c
 *	  Building an lsh index: sample the rows, learn the hash family, hash every
 *	  row into its list, write the pages.
 *
 * Two passes over the heap.  The first counts the rows, checks that they share
 * one dimension and model, and keeps a uniform sample (reservoir sampling) for
 * the hash family.  The second hashes every row (in chunks, one matrix product
 * per chunk and norm range) and appends it to its list's page image; a full
 * page image is written out and becomes the head of its list's chain.  With
 * parallel workers (max_parallel_maintenance_workers) the second pass is
 * shared: the workers hash their rows and the leader writes every page, so
 * the index holds the lists a serial build gives (lshparallel.c).
 *
 * Memory (maintenance_work_mem): the sample takes at most half of it, so a
 * large table or a small maintenance_work_mem means a smaller sample (a NOTICE
 * says so) and k-means learns from fewer points; the page images take one page
 * per list, and the lists are capped so that they fit in the other half (a
 * NOTICE says so when the automatic count is cut; an explicit "lists" that does
 * not fit is an error naming the memory needed).  Nothing else grows with the
 * table, so the build never spills.
 *
 * This file runs the passes; lshlearn.c decides the shape and learns the
 * family between them, lshbuildhash.c hashes the second pass's rows (alone or
 * in each participant of lshparallel.c), lshbuildwrite.c writes the pages
 * (lshbuild.h holds the state they share).
 */
#include "postgres.h"

#include "access/tableam.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "lshbuild.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Build sub-phases (pg_stat_progress_create_index.phase) */
#define LSH_PHASE_SAMPLE		2
#define LSH_PHASE_LEARN			3
#define LSH_PHASE_HASH			4
#define LSH_PHASE_FINISH		5

#define LSH_SAMPLE_PER_LIST		40
#define LSH_SAMPLE_MIN			10000

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

/* ----------------------------------------------------------------
 * Pass 1: count, check, sample
 * ----------------------------------------------------------------
 */

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
	lsh_build_check_shape(bs, e);
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
	bs.unit_factor = 1;
	bs.use_wal = RelationNeedsWAL(index);
	pg_prng_seed(&bs.rng, LSH_SEED);

	/* sample size from the planner's estimate of the row count */
	estimate_rel_size(heap, NULL, &pages_est, &tuples_est, &allvisfrac);
	if (bs.family == LSH_FAMILY_KMEANS)
	{
		int			lists = bs.opts && bs.opts->lists > 0 ? bs.opts->lists : lsh_default_lists(tuples_est);

		bs.sample_cap = (int) Min((double) lists * LSH_SAMPLE_PER_LIST, 10000000.0);
		bs.sample_cap = Max(bs.sample_cap, LSH_SAMPLE_MIN);
	}
	else
		bs.sample_cap = LSH_SAMPLE_MIN;

	/*
	 * Pass 1, from the table's first block (allow_sync false): the sample
	 * depends on the order the rows come in, and a synchronized scan would
	 * start where another scan of a large table happens to be, so the same
	 * rows could give another index (a serial build and a parallel one too).
	 */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_SAMPLE);
	reltuples = table_index_build_scan(heap, index, indexInfo, false, true, sample_callback, &bs, NULL);

	lsh_empty_meta(meta, bs.metric, bs.family);
	if (bs.ntuples > 0)
	{
		meta->has_model = true;
		meta->dim = bs.dim;
		meta->model_id = bs.model_id;
		meta->learned = true;
		meta->build_tuples = bs.ntuples;
		lsh_plan_shape(&bs);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_LEARN);
		if (lsh_ranges_measured(&bs))
		{
			/* sample queries and their neighbours measure the norm ranges too */
			bs.calibration = lsh_calibrate_begin(&bs.state, bs.sample, bs.sample_n, bs.ntuples);
			lsh_learn_measuring_ranges(&bs, bs.calibration);
		}
		else
		{
			lsh_learn(&bs);
			/* sample queries and their neighbours, before the sample goes */
			bs.calibration = lsh_calibrate_begin(&bs.state, bs.sample, bs.sample_n, bs.ntuples);
		}
		/* the entries' codes (lshcode.c), from the same sample */
		lsh_code_learn(&bs.state, bs.sample, bs.sample_n);
	}
	if (bs.sample)
		pfree(bs.sample);
	bs.sample = NULL;

	/* metapage placeholder, then parameter pages */
	page = palloc(BLCKSZ);
	lsh_fill_meta_page(page, meta);
	lsh_build_new_page(&bs, page);
	lsh_build_write_params(&bs, page);

	/* pass 2 */
	bs.pages = palloc0(sizeof(Page) * meta->nlists);
	bs.items = palloc(sizeof(LshListItem) * meta->nlists);
	bs.sum_r2 = palloc0(sizeof(float8) * meta->nlists);
	bs.members = palloc0(sizeof(int64) * meta->nlists);
	for (int l = 0; l < meta->nlists; l++)
		lsh_item_init(&bs.items[l], InvalidBlockNumber);
	if (bs.ntuples > 0)
	{
		lsh_build_chunk_init(&bs);
		bs.emit = lsh_build_add_chunk;

		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_HASH);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, (int64) bs.ntuples);
		/* with workers when the planner gives some (lshparallel.c), else alone */
		if (!lsh_parallel_hash(&bs, heap, indexInfo, &reltuples))
			reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
											   lsh_build_hash_callback, &bs, NULL);
		lsh_build_flush_chunk(&bs);
	}

	/* the partial page of each list becomes its head */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, LSH_PHASE_FINISH);
	lsh_build_write_heads(&bs);

	/* the bounds' unit, from the lists' final bounds (lshcalibrate.c) */
	lsh_items_set_rms(bs.items, meta->nlists, bs.sum_r2, bs.members);
	meta->bound_unit = lsh_calibrate_end(bs.calibration, &bs.state, bs.items) * bs.unit_factor;

	/* directory, then the final metapage */
	lsh_build_write_directory(&bs, page);
	lsh_fill_meta_page(page, meta);
	lsh_build_put_page(&bs, LSH_METAPAGE_BLKNO, page);
	lsh_build_finish_pages(&bs);

	MemoryContextSwitchTo(oldcxt);
	result = (IndexBuildResult *) palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs.indtuples;
	MemoryContextDelete(buildcxt);
	return result;
}
