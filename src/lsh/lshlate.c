/*
 * lshlate.c
 *	  Rows an ordered scan of coded entries finds late: their exact distances,
 *	  and whether they can still be returned in order.
 *
 * A scan of coded entries (lshscan.c) returns rows by their codes' lower
 * bounds and the executor reorders them by their exact distances
 * (IndexNextWithReorder): when the index has returned a value v, the
 * executor has emitted exactly the rows returned so far whose distance is at
 * most v, and holds the others.  That is exact order as long as no row
 * returned later is nearer than a row already emitted.  The lists' bounds are
 * scaled by fct.lsh_margin and are not certain, so a list read late can hold
 * a row whose bound is below the largest value returned: returned as it is,
 * the executor could emit it after farther rows.  Such rows are rare (a few
 * per hundred queries), and for each the scan reads the heap row itself and
 * computes the ORDER BY operator on it, the same function on the same value
 * as the executor (the index expression evaluated as the build does), so the
 * same bits.  With that distance d the row is in order unless a row already
 * emitted is farther: one returned whose distance lies in (d, largest value
 * returned].  Only then do the rows returned get their distances computed
 * here (each once per query): a row that can be returned in order costs
 * recall nothing.
 *
 * The record of the rows returned is kept for every query (a TID each); the
 * heap fetch, slot and executor state are made when a query meets its first
 * late row and ended with the query.
 */
#include "postgres.h"

#include <math.h>

#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "lsh.h"
#include "utils/float.h"
#include "utils/rel.h"

/* A row the scan returned; its distance once computed (late_distance). */
typedef struct LshReturned
{
	ItemPointerData tid;
	bool		known;
	float8		dist;			/* +infinity: the executor saw no row */
} LshReturned;

struct LshLate
{
	MemoryContext keep;			/* the scan's: the record, reused by every query */
	MemoryContext cxt;			/* the query's: the fetching state */
	LshReturned *ret;
	int			nret;
	int			retcap;
	/* made for the query's first late row */
	IndexFetchTableData *fetch;
	TupleTableSlot *slot;
	IndexInfo  *info;
	EState	   *estate;
	int64		fetched;		/* heap rows read this query (DEBUG2) */
};

/*
 * At the scan's start: keep holds the record; cxt is the per-query context,
 * reset only after lsh_late_reset.
 */
LshLate *
lsh_late_create(MemoryContext keep, MemoryContext cxt)
{
	LshLate    *late = MemoryContextAllocZero(keep, sizeof(LshLate));

	late->keep = keep;
	late->cxt = cxt;
	return late;
}

/* A row the scan returns, with its distance when the scan knows it. */
void
lsh_late_returned(LshLate *late, ItemPointer tid, bool known, float8 dist)
{
	LshReturned *r;

	if (late->nret == late->retcap)
	{
		late->retcap = Max(256, late->retcap * 2);
		if (late->ret == NULL)
			late->ret = MemoryContextAlloc(late->keep, sizeof(LshReturned) * late->retcap);
		else
			late->ret = repalloc(late->ret, sizeof(LshReturned) * late->retcap);
	}
	r = &late->ret[late->nret++];
	r->tid = *tid;
	r->known = known;
	r->dist = dist;
}

static void
fetch_begin(IndexScanDesc scan, LshLate *late)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(late->cxt);

	late->fetch = table_index_fetch_begin(scan->heapRelation);
	late->slot = table_slot_create(scan->heapRelation, NULL);
	late->info = BuildIndexInfo(scan->indexRelation);
	late->estate = CreateExecutorState();
	GetPerTupleExprContext(late->estate)->ecxt_scantuple = late->slot;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The ORDER BY operator's value for the heap row at tid, into *value; false
 * when the scan's snapshot sees no row there (the executor would not return
 * it either) or the row's key is NULL.
 */
bool
lsh_late_distance(IndexScanDesc scan, LshLate *late, ItemPointer tid, float8 *value)
{
	ExprContext *econtext;
	MemoryContext oldcxt;
	ItemPointerData t = *tid;
	bool		call_again = false;
	bool		all_dead = false;
	Datum		key;
	bool		isnull;

	if (late->fetch == NULL)
		fetch_begin(scan, late);
	late->fetched++;

	/*
	 * The first version of a HOT chain the snapshot sees is the row (a
	 * snapshot that sees several, call_again, sees the same key in each: a
	 * HOT update changes no indexed column).
	 */
	if (!table_index_fetch_tuple(late->fetch, &t, scan->xs_snapshot, late->slot,
								 &call_again, &all_dead))
		return false;

	econtext = GetPerTupleExprContext(late->estate);
	ResetExprContext(econtext);
	oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	FormIndexDatum(late->info, late->slot, late->estate, &key, &isnull);
	if (!isnull)
		*value = DatumGetFloat8(FunctionCall2Coll(&scan->orderByData[0].sk_func,
												  scan->orderByData[0].sk_collation,
												  key, scan->orderByData[0].sk_argument));
	MemoryContextSwitchTo(oldcxt);
	ExecClearTuple(late->slot);
	return !isnull;
}

/*
 * Has the executor emitted a row farther than dist, a late row's distance?
 * maxret is the largest value the scan has returned: the rows emitted are
 * those returned whose distance is at most that.
 */
bool
lsh_late_emitted_beyond(IndexScanDesc scan, LshLate *late, float8 dist, float8 maxret)
{
	/* the rows returned last first: their bounds are nearest maxret */
	for (int i = late->nret - 1; i >= 0; i--)
	{
		LshReturned *r = &late->ret[i];

		if (!r->known)
		{
			if (!lsh_late_distance(scan, late, &r->tid, &r->dist))
				r->dist = get_float8_infinity();
			r->known = true;
		}
		if (r->dist > dist && r->dist <= maxret)
			return true;
	}
	return false;
}

/*
 * The end of a query: forget its rows, release the heap fetch, the slot and
 * the executor state (their memory goes with the query's context).
 */
void
lsh_late_reset(LshLate *late)
{
	late->nret = 0;
	if (late->fetch == NULL)
		return;
	elog(DEBUG2, "lsh scan: %lld heap rows read for rows found late", (long long) late->fetched);
	table_index_fetch_end(late->fetch);
	ExecDropSingleTupleTableSlot(late->slot);
	FreeExecutorState(late->estate);
	late->fetch = NULL;
	late->slot = NULL;
	late->info = NULL;
	late->estate = NULL;
	late->fetched = 0;
}

/* The end of the scan. */
void
lsh_late_free(LshLate *late)
{
	lsh_late_reset(late);
	if (late->ret)
		pfree(late->ret);
	pfree(late);
}
