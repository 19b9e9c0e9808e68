/*
 * refresh.c
 *	  Drift-aware refresh: write only the embeddings that moved.
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

#include <ctype.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "kernels/distance.h"
#include "type/embedding.h"
#include "model/model.h"
#include "query/query.h"
#include "refresh/refresh.h"
#include "citus/citus.h"

/* Source rows compared per batch, and written by one UPDATE at most. */
#define REFRESH_BATCH		1000
/* Size of the sample of drifts from which target_skip sets the threshold. */
#define REFRESH_SAMPLE		10000
/* At most one progress NOTICE per this many milliseconds. */
#define REFRESH_PROGRESS_MS 10000

/* ----------------------------------------------------------------
 * Drift
 * ----------------------------------------------------------------
 */

/*
 * ||a - b|| / ||a|| over n floats.  A zero a gives 0 if b is zero too and
 * +infinity otherwise: no finite threshold skips a move away from zero.
 */
static inline float8
drift_floats(const float4 *a, const float4 *b, int n)
{
	float8		na = kernel_norm_squared(a, n);
	float8		d = kernel_l2_squared(a, b, n);

	if (na == 0.0)
		return d == 0.0 ? 0.0 : get_float8_infinity();
	return sqrt(d / na);
}

/*
 * Is b a stale copy of a, i.e. not worth writing?  Same model, dimension and
 * side-information, and a vector drift below threshold.  (Side-information
 * comes from another model and is not part of the drift: any change of it is
 * a change worth writing.)
 */
bool
refresh_is_stale(const Embedding *a, const Embedding *b, float8 threshold)
{
	if (a->model_id != b->model_id || a->dim != b->dim ||
		a->side_dim != b->side_dim)
		return false;
	if (a->side_dim > 0 &&
		memcmp(EMBEDDING_SIDE(a), EMBEDDING_SIDE(b), sizeof(float4) * a->side_dim) != 0)
		return false;
	return drift_floats(EMBEDDING_VEC(a), EMBEDDING_VEC(b), a->dim) < threshold;
}

/* Errors unless a and b are of the same model and vector dimension. */
static void
drift_check_comparable(const Embedding *a, const Embedding *b)
{
	if (a->model_id != b->model_id)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot measure the drift between embeddings of models \"%s\" and \"%s\"",
						model_display_name(a->model_id),
						model_display_name(b->model_id)),
				 errhint("Drift compares two values of the same model; upgrade one of them to the other's model first.")));
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot measure the drift between embeddings of %d and %d dimensions",
						a->dim, b->dim)));
}

PG_FUNCTION_INFO_V1(fct_drift);
Datum
fct_drift(PG_FUNCTION_ARGS)
{
	Embedding  *a = PG_GETARG_EMBEDDING_P(0);
	Embedding  *b = PG_GETARG_EMBEDDING_P(1);
	float8		r;

	drift_check_comparable(a, b);
	r = drift_floats(EMBEDDING_VEC(a), EMBEDDING_VEC(b), a->dim);
	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	PG_RETURN_FLOAT8(r);
}

/* ----------------------------------------------------------------
 * fct_refresh
 * ----------------------------------------------------------------
 */


static char *
refresh_key_text(RefreshTarget *t, Datum key)
{
	return OidOutputFunctionCall(t->keyoutput, key);
}

/*
 * Errors unless the source value can replace the stored one: same model and
 * same vector dimension (a refresh stays in the model's space; moving a
 * column to another model is a migration).
 */
void
refresh_check_pair(Oid keyoutput, Datum key, const Embedding *stored,
				   const Embedding *fresh)
{
	if (stored->model_id != fresh->model_id)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("source embedding for key %s is of model \"%s\", the stored one of model \"%s\"",
						OidOutputFunctionCall(keyoutput, key),
						model_display_name(fresh->model_id),
						model_display_name(stored->model_id)),
				 errdetail("fct_refresh replaces values by new values of the same model."),
				 errhint("To move the column to another model, migrate it (fct_migrate).")));
	if (stored->dim != fresh->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("source embedding for key %s has %d dimensions, the stored one %d",
						OidOutputFunctionCall(keyoutput, key), fresh->dim, stored->dim),
				 errhint("The source must produce embeddings of the stored dimension.")));
}

/* Has the current user this privilege on the table or on the column? */
static bool
refresh_column_privilege(Oid relid, AttrNumber attnum, AclMode mode)
{
	return pg_class_aclcheck(relid, GetUserId(), mode) == ACLCHECK_OK ||
		pg_attribute_aclcheck(relid, attnum, GetUserId(), mode) == ACLCHECK_OK;
}

/* Resolve and check the table, its columns and the caller's privileges. */
static void
refresh_resolve_target(RefreshTarget *t, Oid relid, const char *col,
					   const char *key)
{
	char		relkind;
	char	   *relname;
	AttrNumber	colnum;
	AttrNumber	keynum;
	Oid			coltype;
	Oid			outfunc;
	bool		isvarlena;

	memset(t, 0, sizeof(*t));
	t->relid = relid;
	relname = get_rel_name(relid);
	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", relname),
				 errhint("fct_refresh updates the rows of a table.")));
	t->qualname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											 relname);

	colnum = get_attnum(relid, col);
	if (colnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", col, relname)));
	keynum = get_attnum(relid, key);
	if (keynum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", key, relname)));
	if (keynum == colnum)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key column and the embedding column must differ")));

	t->embtype = embedding_type_oid();
	t->embarraytype = get_array_type(t->embtype);
	coltype = getBaseType(get_atttype(relid, colnum));
	if (coltype != t->embtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" is of type %s, not embedding",
						col, relname, format_type_be(coltype))));

	t->keytype = get_atttype(relid, keynum);
	t->keyarraytype = get_array_type(t->keytype);
	if (!OidIsValid(t->keyarraytype))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("key column \"%s\" is of type %s, which has no array type",
						key, format_type_be(t->keytype))));
	get_typlenbyvalalign(t->keytype, &t->keylen, &t->keybyval, &t->keyalign);
	getTypeOutputInfo(t->keytype, &outfunc, &isvarlena);
	t->keyoutput = outfunc;

	t->colname = pstrdup(col);
	t->qcol = pstrdup(quote_identifier(col));
	t->qkey = pstrdup(quote_identifier(key));
	t->keynum = keynum;

	/*
	 * A Citus table distributed on the key: every source row meets its
	 * stored row on one shard, so the refresh runs there (refresh_shards.c).
	 * Any other Citus table goes through the coordinator, row batches as on
	 * one server, which is correct but moves every value twice.
	 */
	t->citus = citus_table_has_placements(relid);
	t->on_shards = t->citus && citus_distribution_column(relid) == keynum;
	if (t->citus && !t->on_shards)
		ereport(NOTICE,
				(errmsg("fct_refresh: %s is not distributed on \"%s\": the refresh runs through the coordinator, row by row",
						relname, key),
				 errhint("A table distributed on the key column is refreshed on its shards, in parallel.")));
	t->keyeq = query_eq_operator(t->keytype);
	t->embeq = query_ext_operator("=");

	/*
	 * Exactly what UPDATE tbl SET col = ... WHERE key = ... AND col = ...
	 * needs: UPDATE on col, SELECT on key and col.  Checked up front so that
	 * a refresh that happens to write nothing needs the same rights as one
	 * that writes (and so that only those may add to fct_refresh_log).
	 */
	if (!refresh_column_privilege(relid, colnum, ACL_UPDATE) ||
		!refresh_column_privilege(relid, colnum, ACL_SELECT) ||
		!refresh_column_privilege(relid, keynum, ACL_SELECT))
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(relkind), relname);
}

/*
 * Check that the source query returns (key, embedding) without running it.
 * Its text is spliced into our queries as a subquery, so it must be one
 * SELECT (a trailing semicolon is dropped).
 */
static void
refresh_check_source(RefreshTarget *t, const char *source)
{
	char	   *src = pstrdup(source);
	int			len = strlen(src);
	SPIPlanPtr	plan;
	List	   *plansources;
	CachedPlanSource *ps;
	TupleDesc	desc;

	query_check_select(source, "fct_refresh");
	while (len > 0 && (src[len - 1] == ';' || isspace((unsigned char) src[len - 1])))
		src[--len] = '\0';
	t->source = src;

	plan = SPI_prepare(src, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the source query: %s",
			 SPI_result_code_string(SPI_result));
	plansources = SPI_plan_get_plan_sources(plan);
	ps = list_length(plansources) == 1 ? linitial(plansources) : NULL;
	desc = ps ? ps->resultDesc : NULL;
	if (desc == NULL || desc->natts != 2 ||
		ps->commandTag != CMDTAG_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the source of fct_refresh must be one query returning two columns (key, embedding)"),
				 desc ? errdetail("The query returns %d columns.", desc->natts) : 0));
	if (getBaseType(TupleDescAttr(desc, 1)->atttypid) != t->embtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the second column of the source is of type %s, not embedding",
						format_type_be(TupleDescAttr(desc, 1)->atttypid)),
				 errhint("Cast it to embedding in the source query.")));
	SPI_freeplan(plan);
}

/* Schema-qualified, quoted name of fct_refresh_log, and its oid. */
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
static bool
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
static float8
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
			d[i] = drift_floats(EMBEDDING_VEC(stored), EMBEDDING_VEC(fresh), stored->dim);
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
static void
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

/* ----------------------------------------------------------------
 * fct_skip_stale: BEFORE UPDATE ... FOR EACH ROW trigger
 *
 *	 CREATE TRIGGER t BEFORE UPDATE ON tbl FOR EACH ROW
 *		 EXECUTE FUNCTION fct_skip_stale('0.05' [, 'column']);
 *
 * Watches the named embedding column, or every column of type embedding.
 * The row is not written (the trigger returns NULL) when every other
 * column is unchanged (same bytes, or NULL in both) and every watched
 * column is unchanged or moved by a drift below the threshold (same model
 * dimension and side-information, both non-NULL).  Otherwise the row is written exactly as
 * the UPDATE made it, new embedding included: when other columns change,
 * the writer's whole new row is what it asked for, and a small drift costs
 * nothing extra since the row is rewritten anyway.  Stored generated
 * columns are not compared (they follow from the others).
 * ----------------------------------------------------------------
 */

typedef struct SkipStaleCache
{
	Oid			tgoid;
	Oid			relid;
	int			natts;
	float8		threshold;
	bool	   *watched;		/* per attribute (0-based) */
	bool	   *compared;		/* per attribute: not dropped, not generated */
} SkipStaleCache;

static SkipStaleCache *
skip_stale_cache(FunctionCallInfo fcinfo, TriggerData *td)
{
	SkipStaleCache *cache = (SkipStaleCache *) fcinfo->flinfo->fn_extra;
	Trigger    *tg = td->tg_trigger;
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	MemoryContext oldcxt;
	Oid			embtype;
	char	   *end;
	int			nwatched = 0;

	if (cache != NULL && cache->tgoid == tg->tgoid &&
		cache->relid == RelationGetRelid(td->tg_relation) &&
		cache->natts == desc->natts)
		return cache;

	if (tg->tgnargs < 1 || tg->tgnargs > 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fct_skip_stale takes a threshold and optionally a column name, not %d arguments",
						tg->tgnargs),
				 errhint("EXECUTE FUNCTION fct_skip_stale('0.05') or fct_skip_stale('0.05', 'embedding_column').")));

	oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	cache = palloc0(sizeof(SkipStaleCache));
	cache->tgoid = tg->tgoid;
	cache->relid = RelationGetRelid(td->tg_relation);
	cache->natts = desc->natts;
	cache->watched = palloc0(sizeof(bool) * Max(desc->natts, 1));
	cache->compared = palloc0(sizeof(bool) * Max(desc->natts, 1));
	MemoryContextSwitchTo(oldcxt);

	errno = 0;
	cache->threshold = strtod(tg->tgargs[0], &end);
	if (end == tg->tgargs[0] || *end != '\0' || errno != 0 ||
		isnan(cache->threshold) || cache->threshold < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid threshold \"%s\" for fct_skip_stale on \"%s\"",
						tg->tgargs[0], RelationGetRelationName(td->tg_relation)),
				 errhint("The threshold is a non-negative relative drift, such as '0.05'.")));

	embtype = embedding_type_oid();
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		cache->compared[i] = true;
		if (tg->tgnargs == 2)
			cache->watched[i] = strcmp(NameStr(att->attname), tg->tgargs[1]) == 0;
		else
			cache->watched[i] = getBaseType(att->atttypid) == embtype;
		if (cache->watched[i])
		{
			if (getBaseType(att->atttypid) != embtype)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" of \"%s\" is of type %s, not embedding",
								NameStr(att->attname),
								RelationGetRelationName(td->tg_relation),
								format_type_be(att->atttypid))));
			nwatched++;
		}
	}
	if (tg->tgnargs == 2 && nwatched == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of \"%s\" does not exist",
						tg->tgargs[1], RelationGetRelationName(td->tg_relation))));

	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

PG_FUNCTION_INFO_V1(fct_skip_stale);
Datum
fct_skip_stale(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	SkipStaleCache *cache;
	TupleDesc	desc;
	HeapTuple	oldtup;
	HeapTuple	newtup;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_skip_stale must be called as a trigger")));
	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_skip_stale must be a BEFORE UPDATE ... FOR EACH ROW trigger")));

	cache = skip_stale_cache(fcinfo, td);
	desc = RelationGetDescr(td->tg_relation);
	oldtup = td->tg_trigtuple;
	newtup = td->tg_newtuple;

	for (int i = 0; i < cache->natts; i++)
	{
		Form_pg_attribute att;
		bool		oldnull;
		bool		newnull;
		Datum		o;
		Datum		n;

		if (!cache->compared[i])
			continue;
		att = TupleDescAttr(desc, i);
		o = heap_getattr(oldtup, i + 1, desc, &oldnull);
		n = heap_getattr(newtup, i + 1, desc, &newnull);
		if (oldnull && newnull)
			continue;
		if (oldnull != newnull)
			return PointerGetDatum(newtup);
		if (datum_image_eq(o, n, att->attbyval, att->attlen))
			continue;
		if (!cache->watched[i] ||
			!refresh_is_stale(DatumGetEmbeddingP(o), DatumGetEmbeddingP(n),
								cache->threshold))
			return PointerGetDatum(newtup);
	}
	/* nothing but stale embeddings changed: keep the stored row */
	return PointerGetDatum(NULL);
}
