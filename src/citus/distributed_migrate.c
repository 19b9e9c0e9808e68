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

#include "citus/citus.h"
#include "model/model.h"

typedef struct Placement
{
	char	   *node;
	int32		port;
	char	   *shard;			/* schema-qualified shard name */
} Placement;

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

/*
 * Caller: fct_migrate, SPI connected in nonatomic mode, outside any
 * transaction block.  rel is the table's qualified, quoted name; col and
 * to_model as the user gave them.
 */
void
citus_migrate_placements(Oid relid, const char *rel, const char *col,
						 const char *to_model, int batch_size)
{
	const char *ext = quote_identifier(get_namespace_name(fct_extension_schema()));
	Placement  *pl;
	int			npl;
	int			nnodes = 0;
	int			done = 0;
	bool	   *taken;
	int64		left;
	StringInfoData failed;
	int			nfailed = 0;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};

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
	npl = (int) SPI_processed;
	pl = palloc0(sizeof(Placement) * Max(npl, 1));
	for (int i = 0; i < npl; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		pl[i].node = pstrdup(SPI_getvalue(tup, desc, 1));
		pl[i].port = pg_strtoint32(SPI_getvalue(tup, desc, 2));
		pl[i].shard = pstrdup(SPI_getvalue(tup, desc, 3));
		nnodes = Max(nnodes, pg_strtoint32(SPI_getvalue(tup, desc, 4)));
	}

	left = distributed_rows_left(ext, rel, col, to_model, true);
	ereport(NOTICE,
			(errmsg("fct_migrate: %lld rows of %s.%s to upgrade into model \"%s\", in %d shard placements on %d nodes",
					(long long) left, rel, col, to_model, npl, nnodes)));
	SPI_commit();

	taken = palloc0(sizeof(bool) * Max(npl, 1));
	initStringInfo(&failed);
	while (done < npl)
	{
		ArrayBuildState *names = initArrayResult(TEXTOID, CurrentMemoryContext, false);
		ArrayBuildState *ports = initArrayResult(INT4OID, CurrentMemoryContext, false);
		ArrayBuildState *cmds = initArrayResult(TEXTOID, CurrentMemoryContext, false);
		int		   *round = palloc(sizeof(int) * npl);
		int			nround = 0;
		Oid			rtypes[3] = {TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID};
		Datum		rargs[3];

		/* the next placement of each node */
		for (int i = 0; i < npl; i++)
		{
			bool		node_busy = false;

			if (taken[i])
				continue;
			for (int j = 0; j < nround; j++)
				if (strcmp(pl[round[j]].node, pl[i].node) == 0 && pl[round[j]].port == pl[i].port)
					node_busy = true;
			if (node_busy)
				continue;
			taken[i] = true;
			round[nround++] = i;
			accumArrayResult(names, CStringGetTextDatum(pl[i].node), false, TEXTOID, CurrentMemoryContext);
			accumArrayResult(ports, Int32GetDatum(pl[i].port), false, INT4OID, CurrentMemoryContext);
			accumArrayResult(cmds,
							 CStringGetTextDatum(psprintf("CALL %s.fct_migrate(%s::pg_catalog.regclass, %s, %s, %d)",
														  ext, quote_literal_cstr(pl[i].shard),
														  quote_literal_cstr(col),
														  quote_literal_cstr(to_model), batch_size)),
							 false, TEXTOID, CurrentMemoryContext);
		}
		rargs[0] = makeArrayResult(names, CurrentMemoryContext);
		rargs[1] = makeArrayResult(ports, CurrentMemoryContext);
		rargs[2] = makeArrayResult(cmds, CurrentMemoryContext);
		if (SPI_execute_with_args("SELECT success, result FROM pg_catalog.master_run_on_worker($1, $2, $3, true)",
								  3, rtypes, rargs, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_processed != (uint64) nround)
			elog(ERROR, "running fct_migrate on the shard placements of %s failed", rel);
		for (int j = 0; j < nround; j++)
		{
			bool		isnull;
			bool		ok = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1, &isnull));
			Placement  *p = &pl[round[j]];

			done++;
			if (!ok)
			{
				appendStringInfo(&failed, "%s%s on %s:%d (%s)", nfailed > 0 ? "; " : "",
								 p->shard, p->node, p->port,
								 SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 2));
				nfailed++;
			}
		}
		ereport(NOTICE,
				(errmsg("fct_migrate: %d of %d shard placements of %s migrated%s",
						done - nfailed, npl, rel, nfailed > 0 ? psprintf(", %d failed", nfailed) : "")));
		SPI_commit();
	}

	/* no closing census then: it would fail on the same nodes */
	if (nfailed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("fct_migrate: %d of %d shard placements of %s failed",
						nfailed, npl, rel),
				 errdetail("%s", failed.data),
				 errhint("Every batch that committed stays upgraded: CALL fct_migrate again once the nodes are back, it resumes where each placement stopped.")));
	left = distributed_rows_left(ext, rel, col, to_model, false);
	if (left > 0)
		ereport(WARNING,
				(errmsg("fct_migrate: %lld rows of %s.%s are still not in model \"%s\"",
						(long long) left, rel, col, to_model),
				 errhint("Concurrent transactions kept writing rows of older models; CALL fct_migrate again once those writes have stopped.")));
	else
		ereport(NOTICE,
				(errmsg("fct_migrate: done, every row of %s.%s is in model \"%s\"", rel, col, to_model)));
}
