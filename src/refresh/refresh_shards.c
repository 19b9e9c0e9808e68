/*
 * refresh_shards.c
 *	  fct_refresh on a Citus table distributed on the key column: the same
 *	  refresh, run by every shard placement where the rows live.
 *
 * The single-server path (refresh.c) reads the source joined to the table
 * through a cursor and writes batches with UPDATE ... FROM unnest(arrays).
 * On a Citus table that moves every stored and fresh value to the
 * coordinator and back, and each batch's UPDATE is a statement on every
 * shard: 16x slower than on a local table.  When the table is distributed on
 * the key, a source row and its stored row meet on one shard, so the whole
 * comparison is one statement that Citus pushes down to every shard at once
 * (the join on the distribution column makes it a co-located query):
 *
 *	 UPDATE tbl t SET col = c.e
 *	   FROM (SELECT s.k, s.e, t2.col AS o,
 *				  _fct_refresh_decision(s.k, t2.col, s.e, threshold, full_pass) AS d
 *			 FROM (source) s(k, e) JOIN tbl t2 ON t2.key = s.k) c
 *	  WHERE c.d > 0 AND t.key = c.k AND t.col IS NOT DISTINCT FROM c.o
 *
 * _fct_refresh_decision is the same C comparison the cursor path makes
 * (refresh_is_stale, the same errors), evaluated on the workers.  The guard
 * on the compared value o keeps refresh.c's rule for concurrent writers:
 * under READ COMMITTED each shard's UPDATE rechecks it on the newest row
 * version, so a writer that changed the row after the comparison wins.  The
 * statement runs in the caller's transaction, which Citus commits on every
 * node with two-phase commit: the refresh is all or nothing, as on one
 * server.  A source that is itself a co-located table is joined on each
 * shard where it lies; any other source (a local table, a query Citus cannot
 * push down) is computed once and sent to the shards by Citus's recursive
 * planning.
 *
 * The counts: one more pushed-down statement counts the source rows and
 * those that found a row (the rest are missing); the UPDATE's row count
 * gives the rows written, split by RETURNING c.d into updated and forced only
 * in a full pass (the only one that forces); skipped is what found a row and
 * was not written.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "query/query.h"
#include "refresh/refresh.h"
#include "type/embedding.h"

/* _fct_refresh_decision's answers */
#define DECISION_SKIP	0
#define DECISION_WRITE	1
#define DECISION_FORCE	2

/*
 * _fct_refresh_decision(key anyelement, stored embedding, fresh embedding,
 * threshold float8, full_pass boolean) returns integer: what fct_refresh does
 * with one row (0 leave it, 1 write it, 2 write it only because this is a
 * full pass), with the cursor path's errors for a NULL fresh value or one of
 * another model or dimension (key names the row).
 */
PG_FUNCTION_INFO_V1(fct_refresh_decision);
Datum
fct_refresh_decision(PG_FUNCTION_ARGS)
{
	Embedding  *stored;
	Embedding  *fresh;
	float8		threshold = PG_GETARG_FLOAT8(3);
	bool		full_pass = PG_GETARG_BOOL(4);
	Oid			keytype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			keyoutput = InvalidOid;
	bool		isvarlena;

	if (OidIsValid(keytype))
		getTypeOutputInfo(keytype, &keyoutput, &isvarlena);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source embedding for key %s is NULL",
						PG_ARGISNULL(0) || !OidIsValid(keyoutput) ? "NULL" :
						OidOutputFunctionCall(keyoutput, PG_GETARG_DATUM(0))),
				 errhint("Leave the rows out of the source (WHERE embedding IS NOT NULL).")));
	if (PG_ARGISNULL(1))
		PG_RETURN_INT32(DECISION_WRITE);	/* a NULL stored value is always written */
	stored = PG_GETARG_EMBEDDING_P(1);
	fresh = PG_GETARG_EMBEDDING_P(2);
	refresh_check_pair(keyoutput, PG_GETARG_DATUM(0), stored, fresh);
	if (!refresh_is_stale(stored, fresh, threshold))
		PG_RETURN_INT32(DECISION_WRITE);
	PG_RETURN_INT32(full_pass ? DECISION_FORCE : DECISION_SKIP);
}

void
refresh_on_shards(RefreshTarget *t, float8 threshold, bool full_pass,
				  RefreshCounts *c)
{
	char	   *q;
	Oid			argtypes[2] = {FLOAT8OID, BOOLOID};
	Datum		args[2] = {Float8GetDatum(threshold), BoolGetDatum(full_pass)};
	bool		isnull;
	int64		matched;
	int			rc;

	/* what the source holds, and how much of it has a row to compare with */
	q = psprintf("SELECT pg_catalog.count(*), pg_catalog.count(t.%s)"
				 " FROM (%s\n) AS s(k, e) LEFT JOIN %s AS t ON t.%s %s s.k",
				 t->qkey, t->source, t->qualname, t->qkey, t->keyeq);
	if (SPI_execute(q, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "fct_refresh: counting the source rows of %s failed", t->qualname);
	c->read = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	matched = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_freetuptable(SPI_tuptable);
	c->missing = c->read - matched;

	q = psprintf("UPDATE %s AS t SET %s = c.e"
				 " FROM (SELECT s.k, s.e, t2.%s AS o, %s(s.k, t2.%s, s.e, $1, $2) AS d"
				 " FROM (%s\n) AS s(k, e) JOIN %s AS t2 ON t2.%s %s s.k) AS c"
				 " WHERE c.d " SQL_GT " 0 AND t.%s %s c.k"
				 " AND (t.%s %s c.o OR (t.%s IS NULL AND c.o IS NULL))%s",
				 t->qualname, t->qcol,
				 t->qcol, query_ext_name("_fct_refresh_decision"), t->qcol,
				 t->source, t->qualname, t->qkey, t->keyeq,
				 t->qkey, t->keyeq,
				 t->qcol, t->embeq, t->qcol,
				 full_pass ? " RETURNING c.d" : "");
	rc = SPI_execute_with_args(q, 2, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE && rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "fct_refresh: the update of %s failed: %s", t->qualname,
			 SPI_result_code_string(rc));
	if (full_pass)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			if (DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)) == DECISION_FORCE)
				c->forced++;
			else
				c->updated++;
		}
	}
	else
		c->updated = (int64) SPI_processed;
	SPI_freetuptable(SPI_tuptable);

	/*
	 * What found a row and was not written: stale, or changed by a concurrent
	 * writer since it was compared (both are skipped on one server too).  The
	 * count ran in its own snapshot: rows inserted between the two statements
	 * can make the difference negative, never a written row uncounted.
	 */
	c->skipped = Max(matched - c->updated - c->forced, 0);
}
