/*
 * refresh.c
 *	  Drift-aware refresh: write only the embeddings that moved.  This file
 *	  is fct_refresh and its batched writes; drift.c measures drift,
 *	  refresh_target.c resolves and checks the call, refresh_policy.c decides
 *	  the threshold and the full pass and keeps the log, skip_stale.c is the
 *	  trigger form.
 *
 * A model retrained in place (same space, fresh data) produces a new value
 * for every stored embedding, but with skewed popularity most of them barely
 * move.  Every rewritten row costs a tuple version, WAL, an entry in every
 * index and VACUUM work later, so fct_refresh writes a row only when its
 * relative drift ||stored - new|| / ||stored|| (fct_drift) reaches a
 * threshold, and every full_every-th refresh of a (table, column) writes
 * every row as a safety valve.  As in Slipstream, the threshold may instead
 * be estimated from a sample of drifts so that a target fraction is skipped.
 * Since drift is measured against the stored value, a slow drift accumulates
 * until it crosses the threshold and is written.
 *
 * How fct_refresh runs (all inside the caller's transaction, with the
 * caller's rights, through SPI):
 *
 *	1. one cursor reads the source joined to the table:
 *		 SELECT t.key, s.e, t.col FROM (source) s(k, e) LEFT JOIN tbl t ON t.key = s.k
 *	   so the planner can hash-join the two instead of probing per key;
 *	2. batches of REFRESH_BATCH rows are compared in C (no catalog access per
 *	   row: types, operators and plans are resolved once per call);
 *	3. the rows to write go to one set-based UPDATE per batch,
 *		 UPDATE tbl t SET col = u.e FROM unnest(keys, news, olds, forced, tids) u
 *		 WHERE t.ctid = u.tid AND t.key = u.k AND t.col IS NOT DISTINCT FROM u.o
 *	   which writes a row only if it still holds the value that was compared;
 *	   the rows it did not find where the cursor read them (a concurrent
 *	   UPDATE moved them) go through the same UPDATE without the ctid
 *	   condition, found by key.
 *	   A concurrent writer that changed the row after the cursor read it wins
 *	   (under READ COMMITTED the UPDATE rechecks the condition on the newest
 *	   row version); such rows are counted as skipped and reported.  A writer
 *	   that comes after our UPDATE waits for our commit and then writes its
 *	   own value.  Either way no concurrent change is lost.
 *
 * (Written here in short: the statements themselves name every operator and
 * function with its schema, and spell IS NOT DISTINCT FROM out with a
 * qualified =, see query/query.h.)
 *
 * No row is locked unless it is written: locking the skipped rows would
 * dirty (and WAL-log) every page of the table, which is what the refresh
 * exists to avoid.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "type/embedding.h"
#include "model/model.h"
#include "query/query.h"
#include "refresh/refresh.h"

/* Source rows compared per batch, and written by one UPDATE at most. */
#define REFRESH_BATCH		1000
/* At most one progress NOTICE per this many milliseconds. */
#define REFRESH_PROGRESS_MS 10000

/* The rows of one batch that are to be written. */
typedef struct RefreshBatch
{
	int			n;
	Datum	   *tids;			/* where the cursor read each row */
	Datum	   *keys;
	Datum	   *news;
	Datum	   *olds;			/* the values compared (NULL: oldnulls) */
	bool	   *oldnulls;
	Datum	   *forced;			/* bool: written only because of a full pass */
	bool	   *done;			/* written */
	int		   *pick;			/* scratch: the entries one UPDATE gets */
	Datum	   *scratch;		/* scratch: their values */
	bool	   *scratchnulls;
} RefreshBatch;

/*
 * The set-based, conditional UPDATE of a batch (see the file header).  by_tid
 * finds the rows where the cursor read them (a TID scan, no index probe);
 * the key and value conditions still hold it to the row and the value that
 * were compared.  A row that has moved since (a concurrent UPDATE of any
 * column) is not found that way, so the rows that the first form did not
 * write go through the second, by key, which writes them if their value is
 * still the one compared.
 */

static SPIPlanPtr
refresh_prepare_update(RefreshTarget *t, bool by_tid)
{
	char	   *q;
	Oid			argtypes[5];
	SPIPlanPtr	plan;

	argtypes[0] = t->keyarraytype;
	argtypes[1] = t->embarraytype;
	argtypes[2] = t->embarraytype;
	argtypes[3] = BOOLARRAYOID;
	argtypes[4] = TIDARRAYOID;
	q = psprintf("UPDATE %s AS t SET %s = u.e"
				 " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
				 " pg_catalog.unnest($4), pg_catalog.unnest($5)) WITH ORDINALITY AS u(k, e, o, f, tid, n)"
				 " WHERE %s t.%s %s u.k"
				 " AND (t.%s %s u.o OR (t.%s IS NULL AND u.o IS NULL))"
				 " RETURNING u.n, u.f",
				 t->qualname, t->qcol, by_tid ? "t.ctid " SQL_EQ " u.tid AND" : "",
				 t->qkey, t->keyeq, t->qcol, t->embeq, t->qcol);
	plan = SPI_prepare(q, 5, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	return plan;
}

static ArrayType *
refresh_array(RefreshBatch *b, int m, Datum *from, bool *nulls, Oid type,
			  int16 len, bool byval, char align)
{
	int			dims[1] = {m};
	int			lbs[1] = {1};

	for (int i = 0; i < m; i++)
	{
		b->scratch[i] = from[b->pick[i]];
		b->scratchnulls[i] = nulls ? nulls[b->pick[i]] : false;
	}
	return construct_md_array(b->scratch, b->scratchnulls, 1, dims, lbs,
							  type, len, byval, align);
}

/* Run one form of the UPDATE on the m entries b->pick[0..m-1]. */
static void
refresh_update(RefreshTarget *t, SPIPlanPtr plan, RefreshBatch *b, int m,
			   RefreshCounts *c, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	Datum		args[5];
	int			rc;

	args[0] = PointerGetDatum(refresh_array(b, m, b->keys, NULL, t->keytype,
											t->keylen, t->keybyval, t->keyalign));
	args[1] = PointerGetDatum(refresh_array(b, m, b->news, NULL, t->embtype,
											-1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(refresh_array(b, m, b->olds, b->oldnulls, t->embtype,
											-1, false, TYPALIGN_INT));
	args[3] = PointerGetDatum(refresh_array(b, m, b->forced, NULL, BOOLOID,
											1, true, TYPALIGN_CHAR));
	args[4] = PointerGetDatum(refresh_array(b, m, b->tids, NULL, TIDOID,
											sizeof(ItemPointerData), false,
											TYPALIGN_SHORT));
	MemoryContextSwitchTo(oldcxt);

	rc = SPI_execute_plan(plan, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "fct_refresh: batch update failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		ord = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 1, &isnull));
		bool		f = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc, 2, &isnull));
		int			j = b->pick[ord - 1];

		if (b->done[j])
			continue;			/* cannot happen: one row per entry */
		b->done[j] = true;
		if (f)
			c->forced++;
		else
			c->updated++;
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Write a batch: by tid, then by key what that did not write.  What is still
 * not written changed since the cursor read it, vanished, or was skipped by
 * a BEFORE UPDATE trigger: it is counted as skipped.
 */
static void
refresh_write_batch(RefreshTarget *t, SPIPlanPtr by_tid, SPIPlanPtr by_key,
					RefreshBatch *b, RefreshCounts *c, MemoryContext cxt)
{
	int			m = 0;

	for (int i = 0; i < b->n; i++)
	{
		b->done[i] = false;
		b->pick[i] = i;
	}
	if (by_tid)
	{
		refresh_update(t, by_tid, b, b->n, c, cxt);
		for (int i = 0; i < b->n; i++)
			if (!b->done[i])
				b->pick[m++] = i;
	}
	else
		m = b->n;
	if (m == 0)
		return;
	refresh_update(t, by_key, b, m, c, cxt);
	for (int i = 0; i < b->n; i++)
	{
		if (!b->done[i])
		{
			c->conflicts++;
			c->skipped++;
		}
	}
}

PG_FUNCTION_INFO_V1(fct_refresh);
Datum
fct_refresh(PG_FUNCTION_ARGS)
{
	RefreshTarget t;
	RefreshCounts c = {0};
	TupleDesc	resdesc;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz last_progress = started;
	float8		threshold = 0;
	float8		target_skip = 0;
	bool		has_threshold = !PG_ARGISNULL(4);
	bool		has_target_skip = !PG_ARGISNULL(5);
	int32		full_every = PG_ARGISNULL(6) ? 0 : PG_GETARG_INT32(6);
	bool		full_pass;
	int64		sample_size = 0;
	char	   *readq;
	Portal		portal;
	SPIPlanPtr	by_tid;
	SPIPlanPtr	by_key;
	bool		use_tid;
	ItemPointerData no_tid;
	RefreshBatch b;
	MemoryContext batchcxt;
	MemoryContext spicxt;
	Datum		result[5];
	bool		resnulls[5] = {false};

	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "fct_refresh must return a record");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tbl, col, key and source of fct_refresh must not be NULL")));
	if (has_threshold == has_target_skip)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fct_refresh needs either a threshold or a target_skip, not %s",
						has_threshold ? "both" : "neither"),
				 errhint("threshold => 0.05 skips rows that moved less than 5%%; target_skip => 0.7 estimates the threshold that skips 70%% of them.")));
	if (has_threshold)
	{
		threshold = PG_GETARG_FLOAT8(4);
		if (isnan(threshold) || threshold < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("threshold must be a non-negative number, not %g", threshold)));
	}
	if (has_target_skip)
	{
		target_skip = PG_GETARG_FLOAT8(5);
		if (isnan(target_skip) || target_skip < 0 || target_skip >= 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target_skip must be at least 0 and less than 1, not %g", target_skip)));
	}
	if (full_every < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("full_every must not be negative, not %d", full_every),
				 errhint("full_every => 0 never forces a full pass.")));

	refresh_resolve_target(&t, PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)),
						   NameStr(*PG_GETARG_NAME(2)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	spicxt = CurrentMemoryContext;
	refresh_check_source(&t, text_to_cstring(PG_GETARG_TEXT_PP(3)));
	full_pass = refresh_is_full_pass(&t, full_every);
	if (has_target_skip)
		threshold = refresh_estimate_threshold(&t, target_skip, &sample_size);
	if (t.on_shards)
	{
		refresh_on_shards(&t, threshold, full_pass, &c);
		goto done;
	}
	by_key = refresh_prepare_update(&t, false);

	/*
	 * tids identify rows within one relation only, not through partitions
	 * (nor through a Citus table's shards);
	 * and reading ctid needs SELECT on the whole table, where a plain UPDATE
	 * needs SELECT on the key and the column only.
	 */
	use_tid = get_rel_relkind(t.relid) == RELKIND_RELATION && !t.citus &&
		pg_class_aclcheck(t.relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	by_tid = use_tid ? refresh_prepare_update(&t, true) : NULL;
	ItemPointerSetInvalid(&no_tid);

	batchcxt = AllocSetContextCreate(spicxt, "fct_refresh batch",
									 ALLOCSET_DEFAULT_SIZES);
	b.tids = palloc(sizeof(Datum) * REFRESH_BATCH);
	b.keys = palloc(sizeof(Datum) * REFRESH_BATCH);
	b.news = palloc(sizeof(Datum) * REFRESH_BATCH);
	b.olds = palloc(sizeof(Datum) * REFRESH_BATCH);
	b.oldnulls = palloc(sizeof(bool) * REFRESH_BATCH);
	b.forced = palloc(sizeof(Datum) * REFRESH_BATCH);
	b.done = palloc(sizeof(bool) * REFRESH_BATCH);
	b.pick = palloc(sizeof(int) * REFRESH_BATCH);
	b.scratch = palloc(sizeof(Datum) * REFRESH_BATCH);
	b.scratchnulls = palloc(sizeof(bool) * REFRESH_BATCH);

	readq = psprintf("SELECT t.%s, s.e, t.%s, %s FROM (%s\n) AS s(k, e) LEFT JOIN %s AS t ON t.%s %s s.k",
					 t.qkey, t.qcol, use_tid ? "t.ctid" : "NULL::pg_catalog.tid",
					 t.source, t.qualname, t.qkey, t.keyeq);
	portal = SPI_cursor_open_with_args(NULL, readq, 0, NULL, NULL, NULL, false, 0);

	for (;;)
	{
		SPITupleTable *tt;
		uint64		n;
		int			nw = 0;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, REFRESH_BATCH);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
		{
			SPI_freetuptable(tt);
			break;
		}
		c.read += n;

		/* detoasted values live until the batch is written */
		MemoryContextSwitchTo(batchcxt);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			bool		keynull;
			bool		newnull;
			bool		oldnull;
			Datum		key = SPI_getbinval(tup, tt->tupdesc, 1, &keynull);
			Datum		newd;
			Datum		oldd;
			bool		force = false;

			if (keynull)
			{
				c.missing++;
				continue;
			}
			newd = SPI_getbinval(tup, tt->tupdesc, 2, &newnull);
			if (newnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("source embedding for key %s is NULL", refresh_key_text(&t, key)),
						 errhint("Leave the rows out of the source (WHERE embedding IS NOT NULL).")));
			oldd = SPI_getbinval(tup, tt->tupdesc, 3, &oldnull);
			if (!oldnull)
			{
				Embedding  *stored = DatumGetEmbeddingP(oldd);
				Embedding  *fresh = DatumGetEmbeddingP(newd);

				refresh_check_pair(t.keyoutput, key, stored, fresh);
				if (refresh_is_stale(stored, fresh, threshold))
				{
					if (!full_pass)
					{
						c.skipped++;
						continue;
					}
					force = true;
				}
				/* compare by value in the UPDATE: pass the plain (detoasted) value */
				oldd = PointerGetDatum(stored);
				newd = PointerGetDatum(fresh);
			}
			/* without tids, the by-key UPDATE ignores this placeholder */
			b.tids[nw] = use_tid ? SPI_getbinval(tup, tt->tupdesc, 4, &keynull) :
				PointerGetDatum(&no_tid);
			b.keys[nw] = key;
			b.news[nw] = newd;
			b.olds[nw] = oldd;
			b.oldnulls[nw] = oldnull;
			b.forced[nw] = BoolGetDatum(force);
			nw++;
		}

		MemoryContextSwitchTo(spicxt);
		if (nw > 0)
		{
			b.n = nw;
			refresh_write_batch(&t, by_tid, by_key, &b, &c, batchcxt);
		}
		MemoryContextSwitchTo(spicxt);
		MemoryContextReset(batchcxt);
		SPI_freetuptable(tt);

		if (TimestampDifferenceExceeds(last_progress, GetCurrentTimestamp(),
									   REFRESH_PROGRESS_MS))
		{
			last_progress = GetCurrentTimestamp();
			ereport(NOTICE,
					(errmsg("fct_refresh of %s.%s: " INT64_FORMAT " source rows read, "
							INT64_FORMAT " updated, " INT64_FORMAT " forced, "
							INT64_FORMAT " skipped, " INT64_FORMAT " missing",
							t.qualname, t.qcol, c.read, c.updated, c.forced,
							c.skipped, c.missing)));
		}
	}
	SPI_cursor_close(portal);

	if (c.conflicts > 0)
		ereport(NOTICE,
				(errmsg_plural("fct_refresh left " INT64_FORMAT " row of %s as a concurrent writer or a trigger left it",
							   "fct_refresh left " INT64_FORMAT " rows of %s as concurrent writers or triggers left them",
							   c.conflicts, c.conflicts, t.qualname),
				 errdetail("Rows that changed after they were compared, or that a BEFORE UPDATE trigger skipped, are counted as skipped.")));

done:
	refresh_log_append(&t, started, &c, threshold, has_target_skip, target_skip,
					   full_pass);
	SPI_finish();

	result[0] = Int64GetDatum(c.updated);
	result[1] = Int64GetDatum(c.skipped);
	result[2] = Int64GetDatum(c.forced);
	result[3] = Int64GetDatum(c.missing);
	result[4] = Float8GetDatum(threshold);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc),
													  result, resnulls)));
}
