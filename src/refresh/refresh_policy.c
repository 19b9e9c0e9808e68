/*
 * refresh_policy.c
 *	  Which rows a refresh writes, and its record: the threshold (given, or
 *	  estimated from a sample of drifts so that a target fraction is
 *	  skipped), the full pass every full_every-th refresh of a (table,
 *	  column) counted in fct_refresh_log, and the log row each refresh
 *	  appends there.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "type/embedding.h"
#include "model/model.h"
#include "query/query.h"
#include "refresh/refresh.h"
#include "citus/citus.h"

/* Size of the sample of drifts from which target_skip sets the threshold. */
#define REFRESH_SAMPLE		10000

static char *
refresh_log_name(Oid *relid)
{
	Oid			nsp = fct_extension_schema();

	*relid = get_relname_relid("fct_refresh_log", nsp);
	if (!OidIsValid(*relid))
		elog(ERROR, "table fct_refresh_log not found in the fct extension's schema");
	return quote_qualified_identifier(get_namespace_name(nsp), "fct_refresh_log");
}

/*
 * Is this refresh a full pass?  It is when full_every > 0 and this is the
 * full_every-th refresh of (tbl, col) since its last full pass (or since the
 * first refresh), counted in fct_refresh_log.
 */
bool
refresh_is_full_pass(RefreshTarget *t, int32 full_every)
{
	Oid			logrelid;
	char	   *q;
	Oid			argtypes[2] = {REGCLASSOID, NAMEOID};
	Datum		values[2];
	NameData	col;
	bool		isnull;
	int64		since;

	if (full_every <= 0)
		return false;
	if (full_every == 1)
		return true;
	namestrcpy(&col, t->colname);
	values[0] = ObjectIdGetDatum(t->relid);
	values[1] = NameGetDatum(&col);
	q = psprintf("SELECT pg_catalog.count(*) FROM %s l WHERE l.tbl " SQL_EQ " $1 AND l.col " SQL_EQ " $2"
				 " AND l.id " SQL_GT " coalesce((SELECT pg_catalog.max(f.id) FROM %s f"
				 " WHERE f.tbl " SQL_EQ " $1 AND f.col " SQL_EQ " $2 AND f.full_pass), 0)",
				 refresh_log_name(&logrelid), refresh_log_name(&logrelid));
	/* not read-only: a fresh snapshot sees refreshes earlier in this statement */
	if (SPI_execute_with_args(q, 2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read fct_refresh_log");
	since = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return since + 1 >= full_every;
}

static int
float8_cmp(const void *a, const void *b)
{
	float8		x = *(const float8 *) a;
	float8		y = *(const float8 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * target_skip: the threshold that skips at least that fraction of a sample
 * of drifts (stored rows that are NULL are always written and not sampled).
 * The sample is a Bernoulli sample of the source joined to the table, at a
 * rate that aims at REFRESH_SAMPLE rows from the table's size estimate; when
 * that undershoots (a source much smaller than the table), a uniform sample
 * of REFRESH_SAMPLE rows is drawn by sorting on random().
 *
 * With the sample's drifts sorted, d[0..m-1], and k = ceil(target_skip * m),
 * the threshold lies halfway between d[k-1] and the next larger sampled
 * drift, so that ties (for instance many exact zeros) are all skipped rather
 * than all written.
 */
float8
refresh_estimate_threshold(RefreshTarget *t, float8 target_skip,
						   int64 *sample_size)
{
	HeapTuple	tp;
	float8		reltuples = -1;
	float8		rate;
	float8	   *d;
	uint64		m = 0;
	int64		k;
	float8		thr;

	if (t->citus)
	{
		/* the coordinator's shell of a Citus table is empty: count its shards' rows */
		reltuples = citus_table_rows(t->relid);
	}
	else
	{
		tp = SearchSysCache1(RELOID, ObjectIdGetDatum(t->relid));
		if (HeapTupleIsValid(tp))
		{
			reltuples = ((Form_pg_class) GETSTRUCT(tp))->reltuples;
			ReleaseSysCache(tp);
		}
	}
	rate = reltuples > 2.0 * REFRESH_SAMPLE ? 2.0 * REFRESH_SAMPLE / reltuples : 1.0;

	for (int attempt = 0; attempt < 2; attempt++)
	{
		char	   *q;
		int			rc;
		SPITupleTable *tt;

		if (attempt == 0)
			q = psprintf("SELECT t.%s, s.e, t.%s FROM (%s\n) AS s(k, e) JOIN %s AS t ON t.%s %s s.k"
						 " WHERE t.%s IS NOT NULL AND pg_catalog.random() " SQL_LT " %.17g LIMIT %d",
						 t->qkey, t->qcol, t->source, t->qualname, t->qkey, t->keyeq,
						 t->qcol, rate, REFRESH_SAMPLE);
		else
			q = psprintf("SELECT t.%s, s.e, t.%s FROM (%s\n) AS s(k, e) JOIN %s AS t ON t.%s %s s.k"
						 " WHERE t.%s IS NOT NULL ORDER BY pg_catalog.random() LIMIT %d",
						 t->qkey, t->qcol, t->source, t->qualname, t->qkey, t->keyeq,
						 t->qcol, REFRESH_SAMPLE);
		rc = SPI_execute(q, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "sampling the source failed: %s", SPI_result_code_string(rc));
		tt = SPI_tuptable;
		m = SPI_processed;
		d = palloc(sizeof(float8) * Max(m, 1));
		for (uint64 i = 0; i < m; i++)
		{
			bool		isnull;
			Datum		key = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
			Datum		fd = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull);
			Embedding  *fresh;
			Embedding  *stored;

			if (isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("source embedding for key %s is NULL", refresh_key_text(t, key)),
						 errhint("Leave the rows out of the source (WHERE embedding IS NOT NULL).")));
			fresh = DatumGetEmbeddingP(fd);
			stored = DatumGetEmbeddingP(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));
			refresh_check_pair(t->keyoutput, key, stored, fresh);
			d[i] = refresh_drift(stored, fresh);
		}
		SPI_freetuptable(tt);
		/* the second sample is the last: d is what the rest reads */
		if (attempt == 1 || rate >= 1.0 || m >= REFRESH_SAMPLE / 2)
			break;
		pfree(d);
	}

	*sample_size = m;
	if (m == 0)
		return 0.0;				/* nothing to learn from: skip nothing */
	qsort(d, m, sizeof(float8), float8_cmp);
	k = (int64) ceil(target_skip * (float8) m);
	if (k <= 0)
		thr = 0.0;
	else
	{
		uint64		j = k;

		if (j > m)
			j = m;
		while (j < m && d[j] <= d[k - 1])
			j++;
		if (j < m)
			thr = d[k - 1] + (d[j] - d[k - 1]) / 2.0;
		else
			thr = nextafter(d[m - 1], get_float8_infinity());
	}
	pfree(d);
	return thr;
}

/*
 * Append the refresh's row to fct_refresh_log.  The log belongs to the
 * extension's owner and nobody else may write it, so the INSERT runs as the
 * log's owner, the way PostgreSQL's referential integrity triggers switch to
 * a table's owner: a fixed statement on the extension's own table, never
 * user data, in a restricted security context (query_execute_as_owner).  The
 * caller's rights to the refreshed table were checked before anything ran.
 */
void
refresh_log_append(RefreshTarget *t, TimestampTz started, RefreshCounts *c,
				   float8 threshold, bool has_target_skip, float8 target_skip,
				   bool full_pass)
{
	Oid			logrelid;
	char	   *logname = refresh_log_name(&logrelid);
	NameData	col;
	NameData	who;
	char	   *q;
	Oid			argtypes[12] = {REGCLASSOID, NAMEOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		INT8OID, INT8OID, INT8OID, INT8OID, FLOAT8OID, FLOAT8OID, BOOLOID, NAMEOID};
	Datum		values[12];
	char		nulls[12];
	int			rc;

	namestrcpy(&col, t->colname);
	namestrcpy(&who, GetUserNameFromId(GetUserId(), false));
	memset(nulls, ' ', sizeof(nulls));
	values[0] = ObjectIdGetDatum(t->relid);
	values[1] = NameGetDatum(&col);
	values[2] = TimestampTzGetDatum(started);
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[4] = Int64GetDatum(c->updated);
	values[5] = Int64GetDatum(c->skipped);
	values[6] = Int64GetDatum(c->forced);
	values[7] = Int64GetDatum(c->missing);
	values[8] = Float8GetDatum(threshold);
	values[9] = Float8GetDatum(target_skip);
	if (!has_target_skip)
		nulls[9] = 'n';
	values[10] = BoolGetDatum(full_pass);
	values[11] = NameGetDatum(&who);

	q = psprintf("INSERT INTO %s (tbl, col, started, finished, updated, skipped,"
				 " forced, missing, threshold, target_skip, full_pass, refreshed_by)"
				 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
				 logname);
	rc = query_execute_as_owner(logrelid, q, 12, argtypes, values, nulls, false);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not write fct_refresh_log: %s", SPI_result_code_string(rc));
}
