/*
 * lshinspect.c
 *	  Inspecting lsh indexes from SQL: the statistics function fct_lsh_stats
 *	  and the consistency check fct_lsh_verify (every live heap row reachable
 *	  from the index, no entry pointing nowhere, every entry within its list's
 *	  bounds, in the spirit of amcheck), and the internal _fct_lsh_entries
 *	  (every entry and its list, for tests comparing two builds).
 *
 * fct_lsh_verify reads the rows' values from the table (the entries of a
 * coded index hold none): one scan of the table, as the build's, evaluates
 * the index's expression for each row the snapshot sees, finds the row's
 * entry by TID, and checks that the value hashes to the entry's list, lies
 * within that list's bounds and encodes to the entry's code.
 */
#include "postgres.h"

#include "access/amvalidate.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "lsh.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* ----------------------------------------------------------------
 * Walking an index
 * ----------------------------------------------------------------
 */

static void
check_is_lsh(Relation index)
{
	if (index->rd_rel->relkind != RELKIND_INDEX ||
		index->rd_indam == NULL || index->rd_indam->amgettuple != lsh_gettuple)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an lsh index", RelationGetRelationName(index))));
}

/* A fresh copy of the metapage (not the backend's cached image). */
static void
read_meta_fresh(Relation index, LshMetaPageData *meta)
{
	Buffer		buf = ReadBuffer(index, LSH_METAPAGE_BLKNO);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(meta, LshPageGetMeta(BufferGetPage(buf)), sizeof(LshMetaPageData));
	UnlockReleaseBuffer(buf);
}

/* Every entry of every list through visit; the entry pages read. */
static int64
walk_index(Relation index, const LshMetaPageData *meta, LshListItem *items,
		   lsh_entry_visitor visit, void *arg)
{
	int64		pages = 0;

	lsh_read_directory(index, meta, items);
	for (int list = 0; list < meta->nlists; list++)
		pages += lsh_walk_chain(index, list, items[list].head, visit, arg);
	return pages;
}

/* ----------------------------------------------------------------
 * fct_lsh_stats
 * ----------------------------------------------------------------
 */

typedef struct StatsState
{
	int64	   *counts;
	int64		total;
} StatsState;

static void
stats_visit(int list, OffsetNumber maxoff, const LshEntry *entry, void *arg)
{
	StatsState *s = arg;

	if (entry == NULL)
		return;

	s->counts[list]++;
	s->total++;
}

PG_FUNCTION_INFO_V1(fct_lsh_stats);
Datum
fct_lsh_stats(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Relation	index;
	LshMetaPageData meta;
	StatsState	s;
	int64		entry_pages;
	int64		minc = 0;
	int64		maxc = 0;
	int			empty = 0;
	TupleDesc	tupdesc;
	Datum		values[14];
	bool		nulls[14] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	index = index_open(indexoid, AccessShareLock);
	check_is_lsh(index);
	lsh_pending_flush(index);
	read_meta_fresh(index, &meta);
	s.counts = palloc0(sizeof(int64) * meta.nlists);
	s.total = 0;
	entry_pages = walk_index(index, &meta, palloc(sizeof(LshListItem) * meta.nlists),
							 stats_visit, &s);
	for (int l = 0; l < meta.nlists; l++)
	{
		if (l == 0 || s.counts[l] < minc)
			minc = s.counts[l];
		if (s.counts[l] > maxc)
			maxc = s.counts[l];
		if (s.counts[l] == 0)
			empty++;
	}

	values[0] = CStringGetTextDatum(lsh_family_name(meta.family));
	values[1] = CStringGetTextDatum(lsh_metric_name(meta.metric));
	values[2] = Int32GetDatum(meta.dim);
	values[3] = BoolGetDatum(meta.learned);
	values[4] = Int32GetDatum(meta.nlists);
	values[5] = Int32GetDatum(meta.nranges);
	values[6] = Int32GetDatum(meta.family == LSH_FAMILY_SIMPLE ? meta.bits
							  : meta.family == LSH_FAMILY_WTA ? meta.windows : 0);
	values[7] = Int64GetDatum(s.total);
	values[8] = Int64GetDatum((int64) RelationGetNumberOfBlocks(index));
	values[9] = Int64GetDatum(entry_pages);
	values[10] = Int32GetDatum(empty);
	values[11] = Int64GetDatum(minc);
	values[12] = Int64GetDatum(maxc);
	values[13] = Float8GetDatum(meta.nlists > 0 ? (double) s.total / meta.nlists : 0);

	index_close(index, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ----------------------------------------------------------------
 * fct_lsh_verify
 * ----------------------------------------------------------------
 */

/* What the walk keeps of an entry, sorted by TID for the table scan. */
typedef struct VerifyEntry
{
	ItemPointerData tid;		/* first: the entries sort and search as TIDs */
	int32		list;
	uint32		code_hash;		/* hash of the entry's code (an index with codes) */
} VerifyEntry;

typedef struct VerifyState
{
	Relation	index;
	LshState   *state;
	LshListItem *items;
	LshListItem *seen;			/* per list: the bounds its entries need */
	VerifyEntry *entries;
	int64		ntids;
	int64		capacity;
	/* table rows waiting to be hashed together, and their entries */
	float	   *batch;			/* LSH_HASH_CHUNK x dim */
	const VerifyEntry **batch_entry;
	int		   *batch_hashed;
	int			nbatch;
	MemoryContext tmpcxt;		/* per table row */
	int64		misplaced;
	int64		outside;		/* lists with entries outside their bounds */
	int64		badcodes;		/* entries whose code is not their vector's */
	LshCode    *code;			/* room for one code */
	int64		heap_rows;
	int64		missing;
	ItemPointerData first_missing;
} VerifyState;

static uint32
code_hash(const LshCode *code, int dim)
{
	return hash_bytes((const unsigned char *) code, offsetof(LshCode, code) + dim);
}

static void
verify_visit(int list, OffsetNumber maxoff, const LshEntry *entry, void *arg)
{
	VerifyState *v = arg;
	const LshMetaPageData *meta = &v->state->meta;
	VerifyEntry *e;

	if (entry == NULL)
		return;

	if (v->ntids == v->capacity)
	{
		v->capacity *= 2;
		v->entries = repalloc_huge(v->entries, sizeof(VerifyEntry) * v->capacity);
	}
	e = &v->entries[v->ntids++];
	e->tid = entry->heap_tid;
	e->list = list;
	e->code_hash = meta->code_bits > 0 ? code_hash(lsh_entry_code(meta, entry), meta->dim) : 0;
}

/*
 * The waiting table rows: hashed in one call, as the build hashes its rows
 * (lsh_hash_batch: the same list as one at a time, at a build's cost), each
 * compared with the list its entry is in; measured against that list for
 * its bounds; encoded, as the build encodes it, against the entry's code.
 */
static void
verify_flush(VerifyState *v)
{
	const LshMetaPageData *meta = &v->state->meta;
	int			dim = meta->dim;

	if (v->nbatch == 0)
		return;
	lsh_hash_batch(v->state, v->batch, v->nbatch, v->batch_hashed);
	for (int i = 0; i < v->nbatch; i++)
	{
		const VerifyEntry *e = v->batch_entry[i];
		const float *x = v->batch + (Size) i * dim;

		if (v->batch_hashed[i] != e->list)
			v->misplaced++;
		if (lsh_has_bounds(meta))
		{
			float		resid;
			float		norm;

			lsh_member_geometry(v->state, e->list, x, &resid, &norm);
			lsh_item_widen(&v->seen[e->list], resid, norm);
		}
		if (meta->code_bits > 0)
		{
			/* the scan bounds the row by its code: it must be its vector's */
			lsh_code_encode(v->state, e->list, x, v->code);
			if (code_hash(v->code, dim) != e->code_hash)
				v->badcodes++;
		}
	}
	v->nbatch = 0;
}

static int
cmp_tid(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

/*
 * Every row the snapshot sees: its entry (missing if none), and in a learned
 * index its value (the index's expression evaluated, as the build did)
 * against that entry: the entries of a coded index hold no vector.
 */
static void
verify_heap_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
					 bool tupleIsAlive, void *arg)
{
	VerifyState *v = arg;
	const VerifyEntry *e;

	if (isnull[0])
		return;
	v->heap_rows++;
	e = bsearch(tid, v->entries, v->ntids, sizeof(VerifyEntry), cmp_tid);
	if (e == NULL)
	{
		if (v->missing == 0)
			v->first_missing = *tid;
		v->missing++;
		return;
	}
	if (v->state->meta.learned)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(v->tmpcxt);
		Embedding  *x = DatumGetEmbeddingP(values[0]);
		int			dim = v->state->meta.dim;

		if (x->dim == dim)
		{
			memcpy(v->batch + (Size) v->nbatch * dim, EMBEDDING_VEC(x), sizeof(float) * dim);
			v->batch_entry[v->nbatch++] = e;
		}
		else
			v->misplaced++;
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(v->tmpcxt);
		if (v->nbatch == LSH_HASH_CHUNK)
			verify_flush(v);
	}
}

PG_FUNCTION_INFO_V1(fct_lsh_verify);
Datum
fct_lsh_verify(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Oid			heapoid;
	LOCKMODE	heaplock;
	Relation	heap;
	Relation	index;
	LshMetaPageData meta;
	VerifyState v;
	int64		entry_pages;
	int64		dangling = 0;
	int64		duplicates = 0;
	ItemPointerData first_dangling;
	BlockNumber heap_blocks;
	Snapshot	snapshot;
	IndexInfo  *indexInfo;
	TableScanDesc scan;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	/*
	 * Lock the heap first (as amcheck does), in a mode that keeps VACUUM out:
	 * VACUUM could otherwise free a line pointer between our reading an entry
	 * and our looking at the heap, and we would call the entry dangling.
	 * Inserts, updates and queries go on.  A standby cannot take that lock:
	 * there the check runs under AccessShareLock, and a VACUUM replayed in
	 * the middle of it could make it report an entry as dangling.
	 */
	heaplock = RecoveryInProgress() ? AccessShareLock : ShareUpdateExclusiveLock;
	heapoid = IndexGetRelation(indexoid, true);
	if (!OidIsValid(heapoid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an lsh index",
						get_rel_name(indexoid) ? get_rel_name(indexoid) : "?")));
	heap = table_open(heapoid, heaplock);
	index = index_open(indexoid, AccessShareLock);
	check_is_lsh(index);
	lsh_pending_flush(index);
	read_meta_fresh(index, &meta);

	snapshot = RegisterSnapshot(GetTransactionSnapshot());

	/* 1. every entry: its TID, its list, its code */
	memset(&v, 0, sizeof(v));
	v.index = index;
	v.state = lsh_get_state(index);
	v.batch = palloc(sizeof(float) * LSH_HASH_CHUNK * Max(v.state->meta.dim, 1));
	v.batch_entry = palloc(sizeof(VerifyEntry *) * LSH_HASH_CHUNK);
	v.batch_hashed = palloc(sizeof(int) * LSH_HASH_CHUNK);
	v.code = palloc(lsh_code_size(Max(meta.dim, 1)));
	v.tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "lsh verify row", ALLOCSET_DEFAULT_SIZES);
	v.capacity = 1024;
	v.entries = palloc_extended(sizeof(VerifyEntry) * v.capacity, MCXT_ALLOC_HUGE);
	v.items = palloc(sizeof(LshListItem) * meta.nlists);
	v.seen = palloc(sizeof(LshListItem) * meta.nlists);
	for (int l = 0; l < meta.nlists; l++)
		lsh_item_init(&v.seen[l], InvalidBlockNumber);
	entry_pages = walk_index(index, &meta, v.items, verify_visit, &v);
	qsort(v.entries, v.ntids, sizeof(VerifyEntry), cmp_tid);

	/* 2. no entry points nowhere, none twice */
	heap_blocks = RelationGetNumberOfBlocks(heap);
	ItemPointerSetInvalid(&first_dangling);
	{
		Buffer		buf = InvalidBuffer;
		BlockNumber cur = InvalidBlockNumber;

		for (int64 i = 0; i < v.ntids; i++)
		{
			ItemPointer tid = &v.entries[i].tid;
			BlockNumber blk = ItemPointerGetBlockNumber(tid);
			OffsetNumber off = ItemPointerGetOffsetNumber(tid);
			bool		ok;

			if (i > 0 && ItemPointerEquals(tid, &v.entries[i - 1].tid))
				duplicates++;
			if (blk >= heap_blocks)
				ok = false;
			else
			{
				Page		page;

				if (blk != cur)
				{
					if (BufferIsValid(buf))
						UnlockReleaseBuffer(buf);
					buf = ReadBuffer(heap, blk);
					LockBuffer(buf, BUFFER_LOCK_SHARE);
					cur = blk;
					CHECK_FOR_INTERRUPTS();
				}
				page = BufferGetPage(buf);
				ok = off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page) &&
					ItemIdIsUsed(PageGetItemId(page, off));
			}
			if (!ok)
			{
				if (dangling == 0)
					first_dangling = *tid;
				dangling++;
			}
		}
		if (BufferIsValid(buf))
			UnlockReleaseBuffer(buf);
	}

	/*
	 * 3. every row our snapshot sees (with a non-NULL key) has an entry, in
	 * the list its value hashes to, with its value's code
	 */
	indexInfo = BuildIndexInfo(index);
	indexInfo->ii_Concurrent = true;	/* MVCC snapshot scan, as amcheck */
	scan = table_beginscan_strat(heap, snapshot, 0, NULL, true, false);
	table_index_build_scan(heap, index, indexInfo, true, false,
						   verify_heap_callback, &v, scan);
	verify_flush(&v);
	UnregisterSnapshot(snapshot);

	/*
	 * Every entry within its list's bounds, or a scan could stop before
	 * reading it.  The directory is read again: an insert widens the bounds
	 * before it writes its entries, so bounds read now cover every entry the
	 * walk saw.
	 */
	if (lsh_has_bounds(&meta))
	{
		lsh_read_directory(index, &meta, v.items);
		for (int l = 0; l < meta.nlists; l++)
			if (v.seen[l].rmax >= v.seen[l].rmin &&
				(!lsh_item_covers(&v.items[l], v.seen[l].rmin, v.seen[l].maxnorm) ||
				 !lsh_item_covers(&v.items[l], v.seen[l].rmax, v.seen[l].maxnorm)))
				v.outside++;
	}

	if (v.badcodes > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("lsh index \"%s\" has %lld entries whose code does not match their vector",
						RelationGetRelationName(index), (long long) v.badcodes),
				 errdetail("A scan bounds an entry's distance by its code: it could skip the entry or return rows out of order."),
				 errhint("REINDEX the index.")));
	if (v.outside > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("lsh index \"%s\" has %lld lists with entries outside the list's bounds",
						RelationGetRelationName(index), (long long) v.outside),
				 errdetail("An ordered scan could stop before reading them."),
				 errhint("REINDEX the index.")));
	if (v.missing > 0 || dangling > 0 || duplicates > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("lsh index \"%s\" is inconsistent with table \"%s\"",
						RelationGetRelationName(index), RelationGetRelationName(heap)),
				 errdetail("%lld live rows have no entry (first (%u,%u)), %lld entries point nowhere (first (%u,%u)), %lld entries are duplicates.",
						   (long long) v.missing,
						   ItemPointerGetBlockNumberNoCheck(&v.first_missing),
						   ItemPointerGetOffsetNumberNoCheck(&v.first_missing),
						   (long long) dangling,
						   ItemPointerGetBlockNumberNoCheck(&first_dangling),
						   ItemPointerGetOffsetNumberNoCheck(&first_dangling),
						   (long long) duplicates),
				 errhint("REINDEX the index.")));

	values[0] = Int64GetDatum(v.ntids);
	values[1] = Int64GetDatum(v.heap_rows);
	values[2] = Int64GetDatum(v.missing);
	values[3] = Int64GetDatum(dangling);
	values[4] = Int64GetDatum(v.misplaced);
	values[5] = Int64GetDatum(entry_pages);

	index_close(index, AccessShareLock);
	table_close(heap, heaplock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ----------------------------------------------------------------
 * _fct_lsh_entries
 * ----------------------------------------------------------------
 */

typedef struct EntriesState
{
	ReturnSetInfo *rsinfo;
} EntriesState;

static void
entries_visit(int list, OffsetNumber maxoff, const LshEntry *entry, void *arg)
{
	EntriesState *s = arg;
	Datum		values[2];
	bool		nulls[2] = {0};

	if (entry == NULL)
		return;
	values[0] = Int32GetDatum(list);
	values[1] = PointerGetDatum(&entry->heap_tid);
	tuplestore_putvalues(s->rsinfo->setResult, s->rsinfo->setDesc, values, nulls);
}

/*
 * Every entry of an lsh index with the list that holds it: two builds of one
 * table compare row by row (TAP 051: a parallel build against a serial one).
 * Internal, and the caller must be able to read the table, whose TIDs it
 * returns.
 */
PG_FUNCTION_INFO_V1(fct_lsh_entries);
Datum
fct_lsh_entries(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Oid			heapoid = IndexGetRelation(indexoid, true);
	Relation	index;
	LshMetaPageData meta;
	EntriesState s;

	if (!OidIsValid(heapoid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an lsh index",
						get_rel_name(indexoid) ? get_rel_name(indexoid) : "?")));
	if (pg_class_aclcheck(heapoid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(heapoid)),
				 errdetail("The entries of an index are the table's row locations."),
				 errhint("Grant SELECT on the table.")));

	InitMaterializedSRF(fcinfo, 0);
	s.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	index = index_open(indexoid, AccessShareLock);
	check_is_lsh(index);
	lsh_pending_flush(index);
	read_meta_fresh(index, &meta);
	walk_index(index, &meta, palloc(sizeof(LshListItem) * meta.nlists), entries_visit, &s);
	index_close(index, AccessShareLock);
	return (Datum) 0;
}
