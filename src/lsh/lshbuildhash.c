/*
 * lshbuildhash.c
 *	  The build's second pass, per row: check the value, gather it into a
 *	  chunk, hash the chunk (one matrix product per chunk and norm range),
 *	  measure each row against its list's centre for the bounds, and make
 *	  each row's entry.
 *
 * What becomes of a hashed chunk is the caller's (bs->emit): a serial build
 * and a parallel build's leader add its rows to the lists' page images
 * (lsh_build_add_chunk), a parallel build's worker sends them to the leader
 * (lshparallel.c).  The list a row gets is lsh_hash_batch's whoever computes
 * it, so a parallel build puts every row in the list a serial build does.
 */
#include "postgres.h"

#include "lshbuild.h"
#include "utils/memutils.h"

/* The value's dimension and model must be the first value's (or the index's). */
void
lsh_build_check_shape(LshBuildState *bs, const Embedding *e)
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

/* The chunk's arrays, for LSH_HASH_CHUNK rows of bs->dim floats. */
void
lsh_build_chunk_init(LshBuildState *bs)
{
	bs->chunk = palloc(sizeof(float) * LSH_HASH_CHUNK * bs->dim);
	bs->chunk_tids = palloc(sizeof(ItemPointerData) * LSH_HASH_CHUNK);
	bs->chunk_lists = palloc(sizeof(int) * LSH_HASH_CHUNK);
	bs->chunk_resid = palloc0(sizeof(float) * LSH_HASH_CHUNK);
	bs->chunk_norm = palloc0(sizeof(float) * LSH_HASH_CHUNK);
	bs->entry_size = lsh_entry_size(&bs->state.meta);
	bs->chunk_entries = palloc0(bs->entry_size * LSH_HASH_CHUNK);
	bs->nchunk = 0;
}

/*
 * Hash the chunk's rows, measure them for the bounds, make their entries,
 * hand them to bs->emit.
 */
void
lsh_build_flush_chunk(LshBuildState *bs)
{
	if (bs->nchunk == 0)
		return;

	lsh_hash_batch(&bs->state, bs->chunk, bs->nchunk, bs->chunk_lists);
	if (lsh_has_bounds(&bs->state.meta))
		for (int i = 0; i < bs->nchunk; i++)
			lsh_member_geometry(&bs->state, bs->chunk_lists[i],
								bs->chunk + (Size) i * bs->dim,
								&bs->chunk_resid[i], &bs->chunk_norm[i]);
	for (int i = 0; i < bs->nchunk; i++)
		lsh_make_entry(&bs->state, bs->chunk_lists[i], &bs->chunk_tids[i],
					   bs->chunk + (Size) i * bs->dim,
					   (LshEntry *) (bs->chunk_entries + bs->entry_size * i));
	bs->emit(bs);
	bs->nchunk = 0;
}

/* table_index_build_scan's callback of the second pass. */
void
lsh_build_hash_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
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
	lsh_build_check_shape(bs, e);
	memcpy(bs->chunk + (Size) bs->nchunk * bs->dim, EMBEDDING_VEC(e), sizeof(float) * bs->dim);
	bs->chunk_tids[bs->nchunk] = *tid;
	bs->nchunk++;
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(bs->tmpcxt);

	if (bs->nchunk == LSH_HASH_CHUNK)
		lsh_build_flush_chunk(bs);
}
