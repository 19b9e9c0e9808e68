/*
 * distributed_migrate.c
 *	  CALL fct_migrate on a Citus table: the same migration, run on every shard
 *	  placement where its rows live.
 *
 * A Citus table's rows are in shard placements, ordinary tables on the
 * workers; the shell on the coordinator is empty, and the migration's own
 * statements (TID range scans, UPDATE ... FROM unnest($1...)) are not plans
 * Citus can distribute.  So the coordinator runs CALL fct_migrate(shard, ...)
 * on each placement's node, where it is a local migration with all its
 * guarantees (committed batches, resumable, concurrent writes never
 * overwritten), through Citus's master_run_on_worker (new connections, no
 * transaction block, so the procedure can commit its batches).  Bounded
 * parallelism: one placement per node at a time, every node at once; the
 * coordinator commits between rounds, so it holds no snapshot for long.  One
 * census before (every model found must have a path to the target) and one
 * after, for the whole table.  A placement that fails (its node crashed,
 * say) does not stop the others; the call ends with an error that names
 * them, and calling again resumes: rows already in the target model are
 * never touched again.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "citus/citus.h"
#include "model/model.h"
#include "progress/progress.h"

typedef struct Placement
{
	char	   *node;
	int32		port;
	char	   *shard;			/* schema-qualified shard name */
	int64		rows;			/* rows not in the target model when the run began (-1: unknown) */
} Placement;

struct CitusMigrateRun
{
	char	   *ext;			/* the extension's schema, quoted */
	char	   *rel;			/* the table's qualified, quoted name */
	char	   *col;
	char	   *to_model;
	int			batch_size;
	Placement  *pl;
	int			npl;
	int			nnodes;
	bool	   *taken;
	int			done;			/* placements run (succeeded or failed) */
	int			nfailed;
	StringInfoData failed;		/* "shard on node:port (error); ..." */
	int64		rows_left;
	int64		rows_done;
	int64		round_rows;
	int			rounds;
	TimestampTz started;
	int64		job_id;			/* the queue's job (0: CALL fct_migrate) */
};

/* Rows of rel.col not in to_model (one census through Citus); checks every path. */
static int64
distributed_rows_left(const char *ext, const char *rel, const char *col,
					  const char *to_model, bool check_paths)
{
	char	   *sql;
	int64		left = 0;
	List	   *models = NIL;
	ListCell   *lc;

	sql = psprintf("SELECT c.model, c.rows FROM %s.fct_model_census(%s::pg_catalog.regclass, %s) c"
				   " WHERE c.model IS NOT NULL AND c.model OPERATOR(pg_catalog.<>) %s",
				   ext, quote_literal_cstr(rel), quote_literal_cstr(col),
				   quote_literal_cstr(to_model));
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "census of %s failed", rel);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		models = lappend(models, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		left += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	/* fct_upgrade_path raises the usual error when a model has no path */
	foreach(lc, check_paths ? models : NIL)
	{
		const char *model = lfirst(lc);

		if (strcmp(model, "(no model)") == 0)
			continue;
		if (SPI_execute(psprintf("SELECT %s.fct_upgrade_path(%s, %s)", ext,
								 quote_literal_cstr(model), quote_literal_cstr(to_model)),
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "checking the upgrade path from %s failed", model);
	}
	return left;
}

/* "1 row", "2 rows": a count and its noun in the form the count needs */
static char *
count_text(int64 n, const char *one, const char *many)
{
	return psprintf("%lld %s", (long long) n, n == 1 ? one : many);
}

/*
 * Rows of each placement not in to_model, counted on the placements at once
 * (Citus's run_command_on_placements), for the progress of the run; a
 * placement that cannot be counted now (its node is down) is left at -1.
 */
static void
count_placements(CitusMigrateRun *r, Oid relid)
{
	const FctModel *m = model_by_name(r->to_model);
	char	   *cmd;
	Oid			argtypes[2] = {REGCLASSOID, TEXTOID};
	Datum		args[2];

	/* %s: the shard's name, filled in by run_command_on_placements */
	cmd = psprintf("SELECT pg_catalog.count(*) FROM %%s WHERE %s._fct_migrate_model_id(%s) OPERATOR(pg_catalog.<>) %d",
				   r->ext, quote_identifier(r->col), m->id);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(cmd);
	if (SPI_execute_with_args("SELECT pg_catalog.shard_name($1, shardid), success, result"
							  " FROM pg_catalog.run_command_on_placements($1, $2)",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "counting the rows of the placements of %s failed", r->rel);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *shard = SPI_getvalue(tup, desc, 1);
		bool		isnull;
		bool		ok = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));

		for (int j = 0; j < r->npl; j++)
			if (strcmp(r->pl[j].shard, shard) == 0 && ok)
				r->pl[j].rows = pg_strtoint64(SPI_getvalue(tup, desc, 3));
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * The run's progress in fct_progress (progress/), as a local migration shows
 * it (migrate_progress), with the placements in place of batches: each
 * placement's own CALL fct_migrate shows its batches on its node.
 */
static void
report_progress(const CitusMigrateRun *r, const char *phase)
{
	StringInfoData m;
	char	   *what = psprintf("%s.%s -> %s", r->rel, quote_identifier(r->col), r->to_model);

	initStringInfo(&m);
	progress_append_member(&m, "table", r->rel);
	progress_append_member(&m, "column", r->col);
	progress_append_member(&m, "to_model", r->to_model);
	if (r->job_id > 0)
		appendStringInfo(&m, ",\"job\":" INT64_FORMAT, r->job_id);
	progress_append_member(&m, "started", timestamptz_to_str(r->started));
	appendStringInfo(&m, ",\"rows_left\":" INT64_FORMAT ",\"rounds\":%d,\"placements_done\":%d"
					 ",\"placements\":%d,\"placements_failed\":%d,\"nodes\":%d"
					 ",\"batch_size\":%d,\"rate\":%.1f",
					 r->rows_left, r->rounds, r->done, r->npl, r->nfailed, r->nnodes,
					 r->batch_size, citus_migrate_rate(r));
	progress_report("fct_migrate", what, phase, r->rows_done, r->rows_done + r->rows_left, m.data);
	pfree(m.data);
	pfree(what);
}

CitusMigrateRun *
citus_migrate_begin(Oid relid, const char *rel, const char *col,
					const char *to_model, int batch_size, int64 job_id)
{
	/* SPI returns to its own context after each statement: allocate in the caller's */
	MemoryContext cxt = CurrentMemoryContext;
	CitusMigrateRun *r = palloc0(sizeof(CitusMigrateRun));
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};

	r->ext = pstrdup(quote_identifier(get_namespace_name(fct_extension_schema())));
	r->rel = pstrdup(rel);
	r->col = pstrdup(col);
	r->to_model = pstrdup(to_model);
	r->batch_size = batch_size;
	r->started = GetCurrentTimestamp();
	r->job_id = job_id;
	initStringInfo(&r->failed);

	/* every placement of every shard, by node */
	if (SPI_execute_with_args("SELECT n.nodename, n.nodeport, pg_catalog.shard_name(s.logicalrelid, s.shardid),"
							  " pg_catalog.dense_rank() OVER (ORDER BY n.nodeid)"
							  " FROM pg_catalog.pg_dist_shard s"
							  " JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid"
							  " JOIN pg_catalog.pg_dist_node n ON n.groupid OPERATOR(pg_catalog.=) p.groupid"
							  " WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1 AND n.noderole OPERATOR(pg_catalog.=) 'primary'"
							  " ORDER BY n.nodeid, s.shardid",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the placements of %s failed", rel);
	r->npl = (int) SPI_processed;
	r->pl = MemoryContextAllocZero(cxt, sizeof(Placement) * Max(r->npl, 1));
	r->taken = MemoryContextAllocZero(cxt, sizeof(bool) * Max(r->npl, 1));
	for (int i = 0; i < r->npl; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		r->pl[i].node = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 1));
		r->pl[i].port = pg_strtoint32(SPI_getvalue(tup, desc, 2));
		r->pl[i].shard = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 3));
		r->pl[i].rows = -1;
		r->nnodes = Max(r->nnodes, pg_strtoint32(SPI_getvalue(tup, desc, 4)));
	}
	SPI_freetuptable(SPI_tuptable);

	report_progress(r, "census and checks");
	r->rows_left = distributed_rows_left(r->ext, rel, col, to_model, true);
	count_placements(r, relid);
	report_progress(r, "upgrading the shard placements");
	ereport(NOTICE,
			(errmsg("fct_migrate: %s of %s.%s to upgrade into model \"%s\", in %s on %s",
					count_text(r->rows_left, "row", "rows"), rel, col, to_model,
					count_text(r->npl, "shard placement", "shard placements"),
					count_text(r->nnodes, "node", "nodes"))));
	MemoryContextSwitchTo(cxt);
	return r;
}

bool
citus_migrate_round(CitusMigrateRun *r)
{
	MemoryContext cxt = CurrentMemoryContext;
	ArrayBuildState *names;
	ArrayBuildState *ports;
	ArrayBuildState *cmds;
	int		   *round;
	int			nround = 0;
	int			nfailed_before = r->nfailed;
	Oid			rtypes[3] = {TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID};
	Datum		rargs[3];

	r->round_rows = 0;
	if (r->done >= r->npl)
		return false;
	names = initArrayResult(TEXTOID, cxt, false);
	ports = initArrayResult(INT4OID, cxt, false);
	cmds = initArrayResult(TEXTOID, cxt, false);
	round = palloc(sizeof(int) * r->npl);

	/* the next placement of each node */
	for (int i = 0; i < r->npl; i++)
	{
		bool		node_busy = false;

		if (r->taken[i])
			continue;
		for (int j = 0; j < nround; j++)
			if (strcmp(r->pl[round[j]].node, r->pl[i].node) == 0 && r->pl[round[j]].port == r->pl[i].port)
				node_busy = true;
		if (node_busy)
			continue;
		r->taken[i] = true;
		round[nround++] = i;
		accumArrayResult(names, CStringGetTextDatum(r->pl[i].node), false, TEXTOID, cxt);
		accumArrayResult(ports, Int32GetDatum(r->pl[i].port), false, INT4OID, cxt);
		accumArrayResult(cmds,
						 CStringGetTextDatum(psprintf("CALL %s.fct_migrate(%s::pg_catalog.regclass, %s, %s, %d)",
													  r->ext, quote_literal_cstr(r->pl[i].shard),
													  quote_literal_cstr(r->col),
													  quote_literal_cstr(r->to_model), r->batch_size)),
						 false, TEXTOID, cxt);
	}
	rargs[0] = makeArrayResult(names, cxt);
	rargs[1] = makeArrayResult(ports, cxt);
	rargs[2] = makeArrayResult(cmds, cxt);
	if (SPI_execute_with_args("SELECT success, result FROM pg_catalog.master_run_on_worker($1, $2, $3, true)",
							  3, rtypes, rargs, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != (uint64) nround)
		elog(ERROR, "running fct_migrate on the shard placements of %s failed", r->rel);
	for (int j = 0; j < nround; j++)
	{
		bool		isnull;
		bool		ok = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1, &isnull));
		Placement  *p = &r->pl[round[j]];

		r->done++;
		if (!ok)
		{
			/* r->failed grows in its own context (repalloc) */
			appendStringInfo(&r->failed, "%s%s on %s:%d (%s)", r->nfailed > 0 ? "; " : "",
							 p->shard, p->node, p->port,
							 SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 2));
			r->nfailed++;
		}
		else if (p->rows > 0)
			r->round_rows += p->rows;
	}
	SPI_freetuptable(SPI_tuptable);
	r->rows_done += r->round_rows;
	r->rows_left = Max(r->rows_left - r->round_rows, 0);
	r->rounds++;
	report_progress(r, "upgrading the shard placements");
	ereport(NOTICE,
			(errmsg_plural("fct_migrate: %d of %d shard placement of %s migrated%s",
						   "fct_migrate: %d of %d shard placements of %s migrated%s", r->npl,
					r->done - r->nfailed, r->npl, r->rel,
					r->nfailed > nfailed_before ? psprintf(", %d failed", r->nfailed) : "")));
	return true;
}

int64
citus_migrate_rows_left(const CitusMigrateRun *r)
{
	return r->rows_left;
}

int64
citus_migrate_round_rows(const CitusMigrateRun *r)
{
	return r->round_rows;
}

double
citus_migrate_rate(const CitusMigrateRun *r)
{
	return progress_rate(r->started, r->rows_done);
}

int64
citus_migrate_end(CitusMigrateRun *r)
{
	/* no closing census then: it would fail on the same nodes */
	if (r->nfailed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg_plural("fct_migrate: %d of %d shard placement of %s failed",
							   "fct_migrate: %d of %d shard placements of %s failed", r->npl,
						r->nfailed, r->npl, r->rel),
				 errdetail("%s", r->failed.data),
				 errhint("Every batch that committed stays upgraded: migrate again once the nodes are back (CALL fct_migrate or fct_migrate_start), it resumes where each placement stopped.")));
	r->rows_left = distributed_rows_left(r->ext, r->rel, r->col, r->to_model, false);
	if (r->rows_left > 0)
		ereport(WARNING,
				(errmsg("fct_migrate: %s of %s.%s %s still not in model \"%s\"",
						count_text(r->rows_left, "row", "rows"), r->rel, r->col,
						r->rows_left == 1 ? "is" : "are", r->to_model),
				 errhint("Concurrent transactions kept writing rows of older models; migrate again once those writes have stopped.")));
	else
		ereport(NOTICE,
				(errmsg("fct_migrate: done, every row of %s.%s is in model \"%s\"", r->rel, r->col, r->to_model)));
	return r->rows_left;
}

/*
 * Caller: fct_migrate, SPI connected in nonatomic mode, outside any
 * transaction block: a round per transaction.
 */
void
citus_migrate_placements(Oid relid, const char *rel, const char *col,
						 const char *to_model, int batch_size)
{
	CitusMigrateRun *r = citus_migrate_begin(relid, rel, col, to_model, batch_size, 0);

	SPI_commit();
	while (citus_migrate_round(r))
		SPI_commit();
	(void) citus_migrate_end(r);
	progress_end();
}
