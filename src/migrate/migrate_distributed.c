/*
 * migrate_distributed.c
 *	  CALL fct_migrate on a Citus table: the same migration, run on every shard
 *	  placement where its rows live.
 *
 * A Citus table's rows are in shard placements, ordinary tables on the
 * workers; the shell on the coordinator is empty, and the migration's own
 * statements (TID range scans, UPDATE ... FROM unnest($1...)) are not plans
 * Citus can distribute.  So the coordinator runs the migration on each
 * placement's node (CALL _fct_migrate_placements(shards, ...), the procedure
 * fct_migrate runs, on each of the shards in turn), where it is a local
 * migration with all its guarantees (committed batches, resumable,
 * concurrent writes never overwritten), through Citus's master_run_on_worker
 * (new connections, no transaction block, so the procedure can commit its
 * batches).  Bounded parallelism: one session per node at a time, every
 * node at once, in rounds; a round gives a node's session one placement, or
 * several small ones (MIGRATE_ROUND_BATCHES), so that a table of many small
 * shards (Citus's default is 32) does not pay a connection and a warm-up
 * per shard.  The coordinator commits between rounds, so it holds no
 * snapshot for long.
 *
 * The coordinator reads the table once, before the run: one statement per
 * node, every node at once, that reads each of its placements once and
 * groups the rows by placement and model (every model found must have a
 * path to the target: checked before anything is written), which gives both
 * the table's census and each placement's count for the progress and the
 * rounds.  What is left at the end comes from the placements' own runs
 * (_fct_migrate_placements returns what each closing count found), not from
 * another read of the table.  A placement that fails (its node crashed,
 * say) does not stop the other nodes; the call ends with an error that names
 * the placements of the failed sessions, and calling again resumes: rows
 * already in the target model are never touched again.
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

#include "migrate/migrate.h"
#include "model/model.h"
#include "progress/progress.h"

/*
 * A round gives each node enough of its placements to hold this many
 * batches of rows to upgrade: a placement's run costs a connection and a
 * warm-up of the node's caches (about a batch's time), which several small
 * placements then share; large placements still go one per round, which
 * keeps the progress and the queue's cancel between rounds.
 */
#define MIGRATE_ROUND_BATCHES 4

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

/* Is placement a on the node of placement b? */
static bool
same_node(const Placement *a, const Placement *b)
{
	return a->port == b->port && strcmp(a->node, b->node) == 0;
}

/* The next number in *p ({{1,2},{3,4}}, {5,6}), false at the end */
static bool
next_number(char **p, int64 *value)
{
	char	   *end;

	while (**p != '\0' && !(**p >= '0' && **p <= '9') && **p != '-')
		(*p)++;
	if (**p == '\0')
		return false;
	*value = strtoll(*p, &end, 10);
	if (end == *p)
		return false;
	*p = end;
	return true;
}

/*
 * Runs cmds[i] on node names[i]:ports[i], every node at once, through
 * Citus's master_run_on_worker (a new connection per command, as the
 * caller, outside any transaction block).  The results (success, result
 * text) stay in SPI_tuptable, in the order of the commands.
 */
static void
run_on_nodes(const CitusMigrateRun *r, ArrayBuildState *names, ArrayBuildState *ports,
			 ArrayBuildState *cmds, int ncmd, MemoryContext cxt)
{
	Oid			rtypes[3] = {TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID};
	Datum		rargs[3];

	rargs[0] = makeArrayResult(names, cxt);
	rargs[1] = makeArrayResult(ports, cxt);
	rargs[2] = makeArrayResult(cmds, cxt);
	if (SPI_execute_with_args("SELECT success, result FROM pg_catalog.master_run_on_worker($1, $2, $3, true)",
							  3, rtypes, rargs, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != (uint64) ncmd)
		elog(ERROR, "running a command on the nodes of %s failed", r->rel);
}

/*
 * The census of the table, made of its placements': on every node at once,
 * one statement that reads each of the node's placements once (a UNION ALL
 * of them, which the node's planner may scan in parallel) and groups its
 * rows by placement and model id, sent back as text ({{shard,id,rows},...}).
 * It runs as the caller (master_run_on_worker connects as the current
 * user), so the shards are read with the caller's rights.  The table's
 * census is the sum over one placement of each shard (a shard replicated on
 * several nodes holds its rows once); each model in it must have a path to
 * the target (migrate_census_check: the messages of a local table's census).
 * Each placement's rows not in the target go to the progress and size the
 * rounds; a node that cannot be read now leaves its placements at -1, and a
 * shard none of whose placements can be read fails the run, as a query of
 * the table would.  Returns the rows of the table not in the target model.
 */
static int64
census_placements(CitusMigrateRun *r, Oid relid, const char *col)
{
	MemoryContext cxt = CurrentMemoryContext;
	MigrateTarget t;
	ArrayBuildState *names = initArrayResult(TEXTOID, cxt, false);
	ArrayBuildState *ports = initArrayResult(INT4OID, cxt, false);
	ArrayBuildState *cmds = initArrayResult(TEXTOID, cxt, false);
	int		   *cmd_first = palloc(sizeof(int) * (r->npl + 1));
	int		   *cmd_end = palloc(sizeof(int) * (r->npl + 1));
	int			ncmd = 0;
	int64	   *census = palloc0(sizeof(int64) * 3 * Max(r->npl, 1));	/* placement, id, rows */
	int			ncensus = 0;
	int			cap = Max(r->npl, 1);
	int32	   *ids;			/* the table's census: model ids and their rows */
	int64	   *rows;
	int			nids = 0;
	int64		left = 0;
	int			unread = 0;
	StringInfoData errors;

	migrate_resolve(relid, col, r->to_model, &t);
	initStringInfo(&errors);

	/* the placements are listed by node: one statement per node */
	for (int i = 0, j; i < r->npl; i = j)
	{
		StringInfoData q;

		initStringInfo(&q);
		appendStringInfo(&q, "SELECT pg_catalog.array_agg(ARRAY[c.s, c.id, c.n])::text FROM"
						 " (SELECT u.s, %s._fct_migrate_model_id(u.e)::pg_catalog.int8 AS id,"
						 " pg_catalog.count(*) AS n FROM (", r->ext);
		for (j = i; j < r->npl && same_node(&r->pl[j], &r->pl[i]); j++)
			appendStringInfo(&q, "%sSELECT " INT64_FORMAT "::pg_catalog.int8 AS s, %s AS e FROM %s",
							 j > i ? " UNION ALL " : "", r->pl[j].shardid, t.colname, r->pl[j].shard);
		appendStringInfoString(&q, ") u WHERE u.e IS NOT NULL GROUP BY 1, 2) c");
		cmd_first[ncmd] = i;
		cmd_end[ncmd++] = j;
		accumArrayResult(names, CStringGetTextDatum(r->pl[i].node), false, TEXTOID, cxt);
		accumArrayResult(ports, Int32GetDatum(r->pl[i].port), false, INT4OID, cxt);
		accumArrayResult(cmds, CStringGetTextDatum(q.data), false, TEXTOID, cxt);
	}
	if (ncmd > 0)
		run_on_nodes(r, names, ports, cmds, ncmd, cxt);
	for (int k = 0; k < ncmd; k++)
	{
		HeapTuple	tup = SPI_tuptable->vals[k];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		ok = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *result = SPI_getvalue(tup, desc, 2);
		char	   *p = result;
		int64		shardid;
		int64		id;
		int64		n;

		if (!ok)
		{
			appendStringInfo(&errors, "%s%s:%d (%s)", errors.len > 0 ? "; " : "",
							 r->pl[cmd_first[k]].node, r->pl[cmd_first[k]].port,
							 result ? result : "no result");
			continue;
		}
		for (int i = cmd_first[k]; i < cmd_end[k]; i++)
			r->pl[i].rows = 0;
		while (p != NULL && next_number(&p, &shardid))
		{
			int			pl = -1;

			if (!next_number(&p, &id) || !next_number(&p, &n))
				elog(ERROR, "unexpected census of %s on %s:%d: %s", r->rel,
					 r->pl[cmd_first[k]].node, r->pl[cmd_first[k]].port, result);
			for (int i = cmd_first[k]; i < cmd_end[k]; i++)
				if (r->pl[i].shardid == shardid)
					pl = i;
			if (pl < 0 || id == t.to_model)
				continue;
			r->pl[pl].rows += n;
			if (ncensus == cap)
			{
				cap *= 2;
				census = repalloc(census, sizeof(int64) * 3 * cap);
			}
			census[3 * ncensus] = pl;
			census[3 * ncensus + 1] = id;
			census[3 * ncensus + 2] = n;
			ncensus++;
		}
	}
	SPI_freetuptable(SPI_tuptable);
	ids = palloc(sizeof(int32) * Max(ncensus, 1));
	rows = palloc(sizeof(int64) * Max(ncensus, 1));

	/* one placement read of each shard counts; a shard with none cannot be counted */
	for (int j = 0; j < r->npl; j++)
	{
		bool		first_read = r->pl[j].rows >= 0;
		bool		any_read = r->pl[j].rows >= 0;

		for (int k = 0; k < r->npl; k++)
			if (k != j && r->pl[k].shardid == r->pl[j].shardid && r->pl[k].rows >= 0)
			{
				any_read = true;
				if (k < j)
					first_read = false;
			}
		if (!any_read)
			unread++;
		if (!first_read)
			continue;
		left += r->pl[j].rows;
		for (int c = 0; c < ncensus; c++)
		{
			int			m;

			if (census[3 * c] != j)
				continue;
			for (m = 0; m < nids && ids[m] != (int32) census[3 * c + 1]; m++)
				;
			if (m == nids)
			{
				ids[nids] = (int32) census[3 * c + 1];
				rows[nids++] = 0;
			}
			rows[m] += census[3 * c + 2];
		}
	}
	if (unread > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg_plural("fct_migrate: %d shard placement of %s could not be read",
							   "fct_migrate: %d shard placements of %s could not be read", unread,
							   unread, r->rel),
				 errdetail("%s", errors.data),
				 errhint("Nothing was written: migrate again once the nodes are back.")));
	for (int m = 0; m < nids; m++)
		migrate_census_check(&t, ids[m], rows[m]);
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
	int		   *group_first;	/* a node's placements in this round: [first, end) */
	int		   *group_end;
	int			ngroups = 0;
	int			nfailed_before = r->nfailed;
	int64		enough = (int64) MIGRATE_ROUND_BATCHES * r->batch_size;

	r->round_rows = 0;
	if (r->done >= r->npl)
		return false;
	names = initArrayResult(TEXTOID, cxt, false);
	ports = initArrayResult(INT4OID, cxt, false);
	cmds = initArrayResult(TEXTOID, cxt, false);
	group_first = palloc(sizeof(int) * r->npl);
	group_end = palloc(sizeof(int) * r->npl);

	/*
	 * The next placements of each node (listed by node, taken in order):
	 * enough of them to hold MIGRATE_ROUND_BATCHES batches of rows to
	 * upgrade, so that small placements share one connection and one warm-up
	 * (a placement whose rows are unknown is enough alone).
	 */
	for (int i = 0, j; i < r->npl; i = j)
	{
		StringInfoData shards;
		int64		rows = 0;
		int			first = -1;

		initStringInfo(&shards);
		for (j = i; j < r->npl && same_node(&r->pl[j], &r->pl[i]); j++)
		{
			if (r->taken[j] || (first >= 0 && rows >= enough))
				continue;
			if (first < 0)
				first = j;
			r->taken[j] = true;
			group_end[ngroups] = j + 1;
			rows += r->pl[j].rows >= 0 ? r->pl[j].rows : enough;
			appendStringInfo(&shards, "%s%s", shards.len > 0 ? ", " : "",
							 quote_literal_cstr(r->pl[j].shard));
		}
		/* the rest of the node's placements: past them */
		while (j < r->npl && same_node(&r->pl[j], &r->pl[i]))
			j++;
		if (first < 0)
			continue;
		group_first[ngroups++] = first;
		accumArrayResult(names, CStringGetTextDatum(r->pl[first].node), false, TEXTOID, cxt);
		accumArrayResult(ports, Int32GetDatum(r->pl[first].port), false, INT4OID, cxt);
		accumArrayResult(cmds,
						 CStringGetTextDatum(psprintf("CALL %s._fct_migrate_placements(ARRAY[%s]::pg_catalog.regclass[], %s, %s, %d, NULL)",
													  r->ext, shards.data,
													  quote_literal_cstr(r->col),
													  quote_literal_cstr(r->to_model), r->batch_size)),
						 false, TEXTOID, cxt);
	}
	run_on_nodes(r, names, ports, cmds, ngroups, cxt);
	for (int g = 0; g < ngroups; g++)
	{
		bool		isnull;
		bool		ok = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[g], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *result = SPI_getvalue(SPI_tuptable->vals[g], SPI_tuptable->tupdesc, 2);
		char	   *cur = result;

		for (int i = group_first[g]; i < group_end[g]; i++)
		{
			Placement  *p = &r->pl[i];

			r->done++;
			if (!ok)
			{
				/* r->failed grows in its own context (repalloc) */
				appendStringInfo(&r->failed, "%s%s on %s:%d (%s)", r->nfailed > 0 ? "; " : "",
								 p->shard, p->node, p->port, result);
				r->nfailed++;
			}
			else
			{
				/* its result: {left, left, ...}, what each run's closing count found */
				if (cur == NULL || !next_number(&cur, &p->left))
					elog(ERROR, "unexpected result of the migration of %s on %s:%d: %s",
						 p->shard, p->node, p->port, result ? result : "none");
				if (p->rows > 0)
					r->round_rows += p->rows;
			}
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
