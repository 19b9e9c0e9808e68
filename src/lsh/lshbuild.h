/*
 * lshbuild.h
 *	  The build's state, shared by the files of the build (and by nothing
 *	  else): lshbuild.c runs the passes over the heap, lshlearn.c decides the
 *	  index's shape and learns the hash family from the sample, lshbuildhash.c
 *	  hashes the second pass's rows (with workers: lshparallel.c), and
 *	  lshbuildwrite.c writes the pages.
 */
#ifndef FCT_LSHBUILD_H
#define FCT_LSHBUILD_H

#include "lsh.h"

#include "common/pg_prng.h"
#include "nodes/execnodes.h"
#include "utils/memutils.h"

/* The seed of every random choice of a build: the same rows give the same index. */
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
	float8	   *sum_r2;			/* per list: sum of the members' |r|^2 */
	int64	   *members;		/* per list: members added */
	LshCalibration *calibration;	/* sample queries for the bounds' unit */
	float		unit_factor;	/* the measured unit is scaled by this
								 * (lshranges.c: a shape kept at a wider
								 * margin) */
	int			nchunk;
	float	   *chunk;			/* LSH_HASH_CHUNK x dim */
	ItemPointerData *chunk_tids;
	int		   *chunk_lists;
	float	   *chunk_resid;	/* per row: residual norm and norm (bounds) */
	float	   *chunk_norm;
	char	   *chunk_entries;	/* per row: its entry, entry_size bytes */
	Size		entry_size;
	void		(*emit) (struct LshBuildState *bs);	/* what becomes of a hashed chunk */
	void	   *emit_arg;
	double		indtuples;
	MemoryContext tmpcxt;

	/* pages written so far (straight to the fork), and whether to WAL-log */
	BlockNumber nblocks;
	bool		use_wal;
} LshBuildState;

/* lshlearn.c */
extern int	lsh_default_lists(double n);
extern int	lsh_ranges_that_fit(const LshBuildState *bs, int want);
extern void lsh_plan_shape(LshBuildState *bs);
extern void lsh_learn(LshBuildState *bs);

/* lshranges.c */
extern bool lsh_ranges_measured(const LshBuildState *bs);
extern void lsh_learn_measuring_ranges(LshBuildState *bs, const LshCalibration *cal);

/* lshbuildhash.c */
extern void lsh_build_check_shape(LshBuildState *bs, const Embedding *e);
extern void lsh_build_chunk_init(LshBuildState *bs);
extern void lsh_build_flush_chunk(LshBuildState *bs);
extern void lsh_build_hash_callback(Relation index, ItemPointer tid, Datum *values,
									bool *isnull, bool tupleIsAlive, void *state);

/* lshparallel.c */
extern bool lsh_parallel_hash(LshBuildState *bs, Relation heap, IndexInfo *indexInfo,
							  double *reltuples);

/* lshbuildwrite.c */
extern void lsh_empty_meta(LshMetaPageData *meta, LshMetric metric, LshFamily family);
extern void lsh_fill_meta_page(Page page, const LshMetaPageData *meta);
extern void lsh_build_put_page(LshBuildState *bs, BlockNumber blkno, Page image);
extern BlockNumber lsh_build_new_page(LshBuildState *bs, Page image);
extern void lsh_build_write_params(LshBuildState *bs, Page page);
extern void lsh_build_add_entry(LshBuildState *bs, int list, const LshEntry *entry, Size size);
extern void lsh_build_add_rows(LshBuildState *bs, int n, const int *lists, const float *resid,
							   const float *norm, const char *entries);
extern void lsh_build_add_chunk(LshBuildState *bs);
extern void lsh_build_write_heads(LshBuildState *bs);
extern void lsh_build_write_directory(LshBuildState *bs, Page page);
extern void lsh_build_finish_pages(LshBuildState *bs);

#endif							/* FCT_LSHBUILD_H */
