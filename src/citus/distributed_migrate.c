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
 * coordinator commits between rounds, so it holds no snapshot for long.
 *
 * The coordinator reads no shard itself beyond one census before the run:
 * one pass over each placement, on every node at once, that groups its rows
 * by model (every model found must have a path to the target: checked
 * before anything is written), which gives both the table's census and each
 * placement's count for the progress.  What is left at the end comes from
 * the placements' own runs (_fct_migrate_placement returns what its closing
 * count found), not from another read of the table.  A placement that fails
 * (its node crashed, say) does not stop the others; the call ends with an
 * error that names them, and calling again resumes: rows already in the
 * target model are never touched again.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "citus/citus.h"
#include "migrate/migrate.h"
#include "model/model.h"
#include "progress/progress.h"

typedef struct Placement
{
	char	   *node;
	int32		port;
	char	   *shard;			/* schema-qualified shard name */
	int64		shardid;
	int64		rows;			/* rows not in the target model when the run began (-1: unknown) */
	int64		left;			/* rows its run left (its closing count; -1: not run) */
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

/* "1 row", "2 rows": a count and its noun in the form the count needs */
static char *
count_text(int64 n, const char *one, const char *many)
{
	return psprintf("%lld %s", (long long) n, n == 1 ? one : many);
}

/*
 * The caller's rights on the table, checked on the coordinator as a query of
 * the table would check them: reading the column (the census) and updating
 * it (the placements' runs).  The shards, which Citus gives the table's
 * grants, are read and written with the caller's rights too.
 */
static void
check_rights(Oid relid, const char *col)
{
	AttrNumber	attnum = get_attnum(relid, col);
	AclMode		modes[2] = {ACL_SELECT, ACL_UPDATE};

	for (int i = 0; i < 2; i++)
		if (pg_class_aclcheck(relid, GetUserId(), modes[i]) != ACLCHECK_OK &&
			pg_attribute_aclcheck(relid, attnum, GetUserId(), modes[i]) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
}

/*
 * The census of the table, made of its placements': on every placement at
 * once (Citus's run_command_on_placements, new connections as the caller,
 * so the shards are read with the caller's rights), one pass that groups its
 * rows by model id, sent back as text ({{id,rows},...}).  The table's census
 * is the sum over one placement of each shard (a shard replicated on several
 * nodes holds its rows once); each model in it must have a path to the
 * target (migrate_census_check: the messages of a local table's census).
 * Each placement's rows not in the target go to the progress; a placement
 * that cannot be read now (its node is down) is left at -1, and a shard none
 * of whose placements can be read fails the run, as a query of the table
 * would.  Returns the rows of the table not in the target model.
 */
static int64
census_placements(CitusMigrateRun *r, Oid relid, const char *col)
{
	MigrateTarget t;
	char	   *cmd;
	Oid			argtypes[2] = {REGCLASSOID, TEXTOID};
	Datum		args[2];
	int64		left = 0;
	int32	   *ids = NULL;
	int64	   *rows = NULL;
	int			nids = 0;
	int			unread = 0;
	StringInfoData errors;

	migrate_resolve(relid, col, r->to_model, &t);
	initStringInfo(&errors);

	/* %s: the shard's name, filled in by run_command_on_placements */
	cmd = psprintf("SELECT pg_catalog.array_agg(ARRAY[c.id, c.n])::text FROM"
				   " (SELECT %s._fct_migrate_model_id(%s)::pg_catalog.int8 AS id, pg_catalog.count(*) AS n"
				   " FROM %%s WHERE %s IS NOT NULL GROUP BY 1) c",
				   r->ext, t.colname, t.colname);
	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(cmd);
	if (SPI_execute_with_args("SELECT shardid, pg_catalog.shard_name($1, shardid), success, result"
							  " FROM pg_catalog.run_command_on_placements($1, $2)"
							  " ORDER BY success DESC, shardid",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "the census of the placements of %s failed", r->rel);
	ids = palloc(sizeof(int32) * 16);
	rows = palloc(sizeof(int64) * 16);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		shardid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *shard = SPI_getvalue(tup, desc, 2);
		bool		ok = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		char	   *result = SPI_getvalue(tup, desc, 4);
		bool		first = true;
		int64		shard_left = 0;
		char	   *p = result;

		if (!ok)
		{
			/* counted below if no placement of its shard could be read */
			appendStringInfo(&errors, "%s%s (%s)", errors.len > 0 ? "; " : "", shard,
							 result ? result : "no result");
			continue;
		}
		/* successful placements come first: one census per shard */
		for (uint64 k = 0; k < i; k++)
			if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[k], desc, 1, &isnull)) == shardid)
				first = false;
		/* {{id,rows},{id,rows},...}, or empty for an empty placement */
		while (p != NULL && *p != '\0')
		{
			char	   *end;
			int64		id;
			int64		n;

			while (*p != '\0' && !(*p >= '0' && *p <= '9') && *p != '-')
				p++;
			if (*p == '\0')
				break;
			id = strtoll(p, &end, 10);
			p = end;
			while (*p != '\0' && !(*p >= '0' && *p <= '9') && *p != '-')
				p++;
			n = strtoll(p, &end, 10);
			if (end == p)
				elog(ERROR, "unexpected census of %s: %s", shard, result);
			p = end;
			if (id == t.to_model)
				continue;
			shard_left += n;
			if (!first)
				continue;
			for (int j = 0; j <= nids; j++)
			{
				if (j == nids)
				{
					if (nids % 16 == 0 && nids > 0)
					{
						ids = repalloc(ids, sizeof(int32) * (nids + 16));
						rows = repalloc(rows, sizeof(int64) * (nids + 16));
					}
					ids[nids] = (int32) id;
					rows[nids++] = 0;
				}
				if (ids[j] == (int32) id)
				{
					rows[j] += n;
					break;
				}
			}
		}
		for (int j = 0; j < r->npl; j++)
			if (r->pl[j].shardid == shardid)
				r->pl[j].rows = shard_left;
		if (first)
			left += shard_left;
	}

	/* a shard with no placement read: its rows are unknown, the census cannot be made */
	for (int j = 0; j < r->npl; j++)
	{
		bool		read = false;

		for (int k = 0; k < r->npl; k++)
			if (r->pl[k].shardid == r->pl[j].shardid && r->pl[k].rows >= 0)
				read = true;
		if (!read)
			unread++;
	}
	SPI_freetuptable(SPI_tuptable);
	if (unread > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg_plural("fct_migrate: %d shard placement of %s could not be read",
							   "fct_migrate: %d shard placements of %s could not be read", unread,
							   unread, r->rel),
				 errdetail("%s", errors.data),
				 errhint("Nothing was written: migrate again once the nodes are back.")));
	for (int j = 0; j < nids; j++)
		migrate_census_check(&t, ids[j], rows[j]);
	return left;
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
							  " pg_catalog.dense_rank() OVER (ORDER BY n.nodeid), s.shardid"
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
		r->pl[i].shardid = pg_strtoint64(SPI_getvalue(tup, desc, 5));
		r->pl[i].rows = -1;
		r->pl[i].left = -1;
		r->nnodes = Max(r->nnodes, pg_strtoint32(SPI_getvalue(tup, desc, 4)));
	}
	SPI_freetuptable(SPI_tuptable);

	/* the caller's rights on the table, as a query of it would check them, before any node is asked */
	check_rights(relid, col);
	report_progress(r, "census and checks");
	r->rows_left = census_placements(r, relid, col);
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
						 CStringGetTextDatum(psprintf("CALL %s._fct_migrate_placement(%s::pg_catalog.regclass, %s, %s, %d, NULL)",
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
		else
		{
			/* its result: the rows its closing count found */
			p->left = pg_strtoint64(SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 2));
			if (p->rows > 0)
				r->round_rows += p->rows;
		}
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

/*
 * What the run left, from the placements' own closing counts (each ran to
 * the end of its last pass): per shard the most any of its placements left.
 * Rows that concurrent writers add to a placement after its run has ended
 * are not counted, as a local run does not count those written after its
 * closing count.
 */
static int64
rows_left_by_placements(const CitusMigrateRun *r)
{
	int64		left = 0;

	for (int i = 0; i < r->npl; i++)
	{
		int64		most = r->pl[i].left;
		bool		first = true;

		for (int k = 0; k < r->npl; k++)
		{
			if (r->pl[k].shardid != r->pl[i].shardid)
				continue;
			if (k < i)
				first = false;
			most = Max(most, r->pl[k].left);
		}
		if (first)
			left += Max(most, 0);
	}
	return left;
}

int64
citus_migrate_end(CitusMigrateRun *r)
{
	/* no closing count then: the failed placements have none */
	if (r->nfailed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg_plural("fct_migrate: %d of %d shard placement of %s failed",
							   "fct_migrate: %d of %d shard placements of %s failed", r->npl,
						r->nfailed, r->npl, r->rel),
				 errdetail("%s", r->failed.data),
				 errhint("Every batch that committed stays upgraded: migrate again once the nodes are back (CALL fct_migrate or fct_migrate_start), it resumes where each placement stopped.")));
	r->rows_left = rows_left_by_placements(r);
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
int64
citus_migrate_placements(Oid relid, const char *rel, const char *col,
						 const char *to_model, int batch_size)
{
	CitusMigrateRun *r = citus_migrate_begin(relid, rel, col, to_model, batch_size, 0);
	int64		left;

	SPI_commit();
	while (citus_migrate_round(r))
		SPI_commit();
	left = citus_migrate_end(r);
	progress_end();
	return left;
}
