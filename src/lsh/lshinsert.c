/*
 * lshinsert.c
 *	  Inserting into an lsh index (aminsert): lsh_insert checks the value and
 *	  adds it to the transaction's pending rows (lshpending.c), which are
 *	  written later in batches through lshchain.c.
 *
 * Calls go one way: lshinsert.c -> lshpending.c -> lshchain.c -> lshpage.c.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lsh.h"
#include "miscadmin.h"
#include "utils/rel.h"

bool
lsh_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
		   Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
		   IndexInfo *indexInfo)
{
	Embedding  *e;
	LshState   *state;
	Datum		detoasted;

	/* NULLs are not indexed: no distance orders them */
	if (isnull[0])
		return false;

	detoasted = PointerGetDatum(PG_DETOAST_DATUM(values[0]));
	e = (Embedding *) DatumGetPointer(detoasted);
	state = lsh_get_state(index);
	if (!state->meta.has_model)
	{
		lsh_check_value(index, &state->meta, e, false);
		lsh_fix_model(index, e);
		state = lsh_get_state(index);
	}
	/* errors belong to the inserting statement: check now, write later */
	lsh_check_value(index, &state->meta, e, false);
	lsh_pending_add(index, state, heap_tid, EMBEDDING_VEC(e), e->dim);

	if (detoasted != values[0])
		pfree(DatumGetPointer(detoasted));
	return false;
}
