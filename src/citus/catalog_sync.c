/*
 * catalog_sync.c
 *	  fct's catalogs on every node of a Citus cluster, changed atomically.
 *
 * Each catalog table that the C look-ups read (fct_models,
 * fct_transformations, the label-set tables) stays an ordinary table on every
 * node, so the type's input, the upgrade path search and their caches read
 * the local table as on a single server.  On the coordinator, statement
 * triggers (sql/install/90_citus.sql) send every change to every worker as
 * one command, fct_catalog_apply(table, op, rows), in the same distributed
 * transaction: Citus prepares the workers' transactions and commits them with
 * the coordinator's (two-phase commit), the way it propagates its own
 * metadata.  A worker that cannot be reached makes the change fail on the
 * coordinator, so nothing is half-registered.  A node added later is brought
 * up to date by fct_citus_sync(), which sends every row of every catalog.
 *
 * The rows travel as jsonb (to_jsonb of the transition table) and are read
 * back with jsonb_populate_recordset, both with search_path = pg_catalog so
 * that regclass values are schema-qualified: every value round-trips exactly
 * (float4 prints its shortest exact form, bytea its hex, timestamptz its
 * offset), so a fitted transformation is the same bits on every node; it is
 * never refitted there.
 *
 * On a worker, a change that does not come from the coordinator is refused:
 * it would exist on that node only.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "citus/citus.h"
#include "model/model.h"

/* True while this backend applies a change sent by the coordinator. */
static bool catalog_applying = false;

/* search_path = pg_catalog, pg_temp for what follows; returns the nest level. */
static int
catalog_guc_push(bool restore_mode)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/*
	 * Applying rows that come from the coordinator is a restore of rows
	 * registered there: the guards that let a restore in (check_function_bodies
	 * off, see fct_transformations_insert_guard) let them in too.
	 */
	if (restore_mode)
	{
		(void) set_config_option("check_function_bodies", "off",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		/* and a drop checked there (fct_drop_model, sql/install/85_drop.sql) */
		(void) set_config_option("fct.catalog_drop", "on",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	return nest;
}

static char *
qualified_relname(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/* Sends one change of a catalog table to the workers. */
static void
catalog_send(Relation rel, const char *op, const char *rows)
{
	char	   *cmd;

	cmd = psprintf("SELECT %s._fct_catalog_apply(%s::pg_catalog.regclass, %s, %s::pg_catalog.jsonb)",
				   quote_identifier(get_namespace_name(fct_extension_schema())),
				   quote_literal_cstr(qualified_relname(rel)),
				   quote_literal_cstr(op),
				   rows ? quote_literal_cstr(rows) : "NULL");
	citus_send_to_workers(cmd);
	pfree(cmd);
}

static void
refuse_on_worker(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("fct's catalogs can only be changed on the Citus coordinator"),
			 errdetail("This node is a Citus worker: a change to %s made here would exist on this node only.",
					   RelationGetRelationName(rel)),
			 errhint("Run the same command on the coordinator; it applies it on every worker in the same transaction.")));
}

/*
 * fct_catalog_propagate: AFTER ... FOR EACH STATEMENT trigger of every
 * catalog table, with its transition table named fct_catalog_rows (the new
 * rows of an INSERT or UPDATE, the old rows of a DELETE).
 */
PG_FUNCTION_INFO_V1(fct_catalog_propagate);
Datum
fct_catalog_propagate(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	TriggerEvent ev;
	const char *op;
	char	   *rows = NULL;
	FctCitusRole role;
	MemoryContext outer = CurrentMemoryContext;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trig->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_catalog_propagate: not called as an AFTER statement trigger")));

	if (catalog_applying)
		return PointerGetDatum(NULL);
	role = citus_node_role();
	if (role == FCT_CITUS_NONE)
		return PointerGetDatum(NULL);
	if (role == FCT_CITUS_WORKER)
		refuse_on_worker(trig->tg_relation);

	ev = trig->tg_event;
	if (TRIGGER_FIRED_BY_INSERT(ev))
		op = "insert";
	else if (TRIGGER_FIRED_BY_UPDATE(ev))
		op = "update";
	else if (TRIGGER_FIRED_BY_DELETE(ev))
		op = "delete";
	else
		op = "truncate";

	if (!TRIGGER_FIRED_BY_TRUNCATE(ev))
	{
		int			nest;
		bool		isnull;
		Datum		d;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_register_trigger_data(trig) != SPI_OK_TD_REGISTER)
			elog(ERROR, "SPI_register_trigger_data failed");
		nest = catalog_guc_push(false);
		if (SPI_execute("SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r))::pg_catalog.text"
						" FROM fct_catalog_rows r", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading the transition table failed");
		AtEOXact_GUC(true, nest);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			rows = MemoryContextStrdup(outer, TextDatumGetCString(d));
		SPI_finish();
		if (rows == NULL)
			return PointerGetDatum(NULL);	/* the statement changed no row */
	}

	catalog_send(trig->tg_relation, op, rows);
	return PointerGetDatum(NULL);
}

/* "t.a OPERATOR(pg_catalog.=) r.a AND ..." over the primary key's columns. */
static char *
pkey_match(Relation rel)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	StringInfoData buf;
	Relation	idx;

	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("fct catalog table %s has no primary key", RelationGetRelationName(rel))));
	idx = index_open(pk, AccessShareLock);
	initStringInfo(&buf);
	for (int i = 0; i < idx->rd_index->indnkeyatts; i++)
	{
		const char *col = quote_identifier(get_attname(RelationGetRelid(rel),
													   idx->rd_index->indkey.values[i], false));

		appendStringInfo(&buf, "%st.%s OPERATOR(pg_catalog.=) r.%s",
						 i > 0 ? " AND " : "", col, col);
	}
	index_close(idx, AccessShareLock);
	return buf.data;
}

/* The primary key's columns, "a, b", for ON CONFLICT. */
static char *
pkey_columns(Relation rel)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	StringInfoData buf;
	Relation	idx = index_open(pk, AccessShareLock);

	initStringInfo(&buf);
	for (int i = 0; i < idx->rd_index->indnkeyatts; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(get_attname(RelationGetRelid(rel),
													  idx->rd_index->indkey.values[i], false)));
	index_close(idx, AccessShareLock);
	return buf.data;
}

/*
 * The columns written (not dropped, not generated), as "a, b", with prefix
 * before each ("r." gives "r.a, r.b"), or as "a = EXCLUDED.a, ..." when
 * assign.
 */
static char *
column_list(Relation rel, const char *prefix, bool assign)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *col;

		if (att->attisdropped || att->attgenerated)
			continue;
		col = quote_identifier(NameStr(att->attname));
		if (assign)
			appendStringInfo(&buf, "%s%s = %s%s", first ? "" : ", ", col, prefix, col);
		else
			appendStringInfo(&buf, "%s%s%s", first ? "" : ", ", prefix, col);
		first = false;
	}
	return buf.data;
}

/*
 * fct_catalog_apply(tbl regclass, op text, rows jsonb): apply on this node a
 * change that the coordinator made to one of fct's catalog tables.  op is
 * insert, update, delete or truncate (rows: the rows inserted, the new rows,
 * the old rows, NULL), or sync (rows: the whole table on the coordinator;
 * what differs here is written, what is missing is added, what the
 * coordinator does not have is deleted).  Run by the coordinator's Citus
 * connection as the Citus extension's owner; EXECUTE is revoked from PUBLIC.
 */
PG_FUNCTION_INFO_V1(fct_catalog_apply);
Datum
fct_catalog_apply(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *op = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Datum		rows = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	Relation	rel;
	char	   *tbl;
	char	   *src;
	List	   *stmts = NIL;
	int			nest;
	uint64		expected = 0;

	rel = table_open(relid, RowExclusiveLock);
	if (get_rel_namespace(relid) != fct_extension_schema())
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a catalog table of extension fct", RelationGetRelationName(rel))));
	tbl = qualified_relname(rel);
	src = psprintf("pg_catalog.jsonb_populate_recordset(NULL::%s, $1) r", tbl);

	if (strcmp(op, "truncate") != 0 && rows == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("fct_catalog_apply: %s needs rows", op)));
	if (rows != (Datum) 0)
		expected = (uint64) JsonContainerSize(&DatumGetJsonbP(rows)->root);

	if (strcmp(op, "insert") == 0)
		stmts = list_make1(psprintf("INSERT INTO %s (%s) SELECT %s FROM %s",
									tbl, column_list(rel, "", false),
									column_list(rel, "r.", false), src));
	else if (strcmp(op, "update") == 0)
		stmts = list_make1(psprintf("UPDATE %s t SET %s FROM %s WHERE %s",
									tbl, column_list(rel, "r.", true), src,
									pkey_match(rel)));
	else if (strcmp(op, "delete") == 0)
		stmts = list_make1(psprintf("DELETE FROM %s t USING %s WHERE %s",
									tbl, src, pkey_match(rel)));
	else if (strcmp(op, "truncate") == 0)
		stmts = list_make1(psprintf("TRUNCATE %s", tbl));
	else if (strcmp(op, "sync") == 0)
	{
		/*
		 * Rows that already hold the coordinator's values, byte for byte
		 * (*=, record_image_eq), are left alone: immutable catalogs refuse
		 * any UPDATE, even one that changes nothing.
		 */
		stmts = list_make2(psprintf("DELETE FROM %s t WHERE NOT EXISTS (SELECT FROM %s WHERE %s)",
									tbl, src, pkey_match(rel)),
						   psprintf("INSERT INTO %s AS t (%s) SELECT %s FROM %s"
									" ON CONFLICT (%s) DO UPDATE SET %s"
									" WHERE NOT (t OPERATOR(pg_catalog.*=) EXCLUDED)",
									tbl, column_list(rel, "", false),
									column_list(rel, "r.", false), src,
									pkey_columns(rel),
									column_list(rel, "EXCLUDED.", true)));
		expected = 0;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fct_catalog_apply: unknown operation \"%s\"", op)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	nest = catalog_guc_push(true);
	catalog_applying = true;
	PG_TRY();
	{
		ListCell   *lc;

		foreach(lc, stmts)
		{
			Oid			argtypes[1] = {JSONBOID};
			Datum		args[1] = {rows};
			char		nulls[1] = {rows == (Datum) 0 ? 'n' : ' '};
			int			rc;

			rc = SPI_execute_with_args(lfirst(lc), 1, argtypes, args, nulls, false, 0);
			if (rc < 0)
				elog(ERROR, "fct_catalog_apply: %s failed (%d)", op, rc);
			/* an update or a delete that misses a row: this node has diverged */
			if (expected > 0 && SPI_processed != expected)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("fct catalog %s on this node differs from the coordinator's",
								RelationGetRelationName(rel)),
						 errdetail_plural("The coordinator's %s concerns " UINT64_FORMAT " row, of which this node has " UINT64_FORMAT ".",
										  "The coordinator's %s concerns " UINT64_FORMAT " rows, of which this node has " UINT64_FORMAT ".",
										  (unsigned long) expected,
										  op, expected, (uint64) SPI_processed),
						 errhint("Run SELECT fct_citus_sync() on the coordinator, then the command again.")));
		}
	}
	PG_FINALLY();
	{
		catalog_applying = false;
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
	SPI_finish();
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

/*
 * fct_catalog_send(tbl regclass, op text, rows jsonb): send a change to the
 * workers (coordinator only); fct_citus_sync's one call per table.
 */
PG_FUNCTION_INFO_V1(fct_catalog_send);
Datum
fct_catalog_send(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *op = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *rows = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Relation	rel;

	if (citus_node_role() != FCT_CITUS_COORDINATOR)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("fct's catalogs are sent from the Citus coordinator only"),
				 errhint("Run it on the coordinator of a database where the citus extension exists.")));
	rel = table_open(relid, AccessShareLock);
	catalog_send(rel, op, rows);
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}
