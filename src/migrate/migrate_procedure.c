/*
 * migrate_procedure.c
 *	  CALL fct_migrate: a migration run in the caller's session, committing
 *	  after every batch (the engine of migrate.c); a Citus table's migration
 *	  runs on each of its shard placements (citus/), where the coordinator
 *	  calls _fct_migrate_placements: the same run on each of a node's
 *	  placements in a round, returning what each left.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "citus/citus.h"
#include "migrate/migrate.h"
#include "progress/progress.h"

PG_FUNCTION_INFO_V1(fct_migrate);

/*
 * The procedure's run, committing after every batch (the caller is connected
 * to SPI in nonatomic mode).  Returns the rows still not in the target model
 * when it ended (its closing count).
 */
static int64
migrate_procedure(Oid relid, const char *attname, const char *to_model,
				  int batch_size)
{
	MigrateTarget target;
	MigrateRun *run;
	int64		left;

	migrate_resolve(relid, attname, to_model, &target);

	/* A Citus table: the same migration on each of its shard placements. */
	if (citus_table_has_placements(target.relid))
		return citus_migrate_placements(target.relid, target.relname, attname,
										target.to_model_name, batch_size);
	/* progress in fct_progress, for other sessions (the NOTICEs reach only the caller) */
	migrate_progress(&target, NULL, 0);
	run = migrate_run_begin(&target, batch_size);
	migrate_progress(&target, run, 0);
	ereport(NOTICE,
			(errmsg_plural("fct_migrate: %lld row of %s to upgrade into model \"%s\"",
						   "fct_migrate: %lld rows of %s to upgrade into model \"%s\"",
						   (unsigned long) run->rows_left,
						   (long long) run->rows_left, target.display,
						   target.to_model_name)));

	while (migrate_run_step(run))
	{
		if (run->batch_rows > 0 || run->rows_skipped > 0)
			ereport(NOTICE,
					(errmsg_plural("fct_migrate: %lld row upgraded, %lld left",
								   "fct_migrate: %lld rows upgraded, %lld left",
								   (unsigned long) run->rows_done,
								   (long long) run->rows_done, (long long) run->rows_left),
					 errdetail("Pass %d, batch of %s in %.3f s (%.0f rows/s); %.0f rows/s since the start; %s.",
							   run->pass, migrate_rows_text(run->batch_rows),
							   run->batch_secs,
							   run->batch_secs > 0 ? run->batch_rows / run->batch_secs : 0,
							   migrate_run_rate(run),
							   run->rows_skipped == 1 ?
							   "1 row changed concurrently was left for a later pass" :
							   psprintf("%lld rows changed concurrently were left for a later pass",
										(long long) run->rows_skipped))));
		migrate_progress(&target, run, 0);
		SPI_commit();
	}

	if (run->rows_left > 0)
		ereport(WARNING,
				(errmsg_plural("fct_migrate: %lld row of %s is still not in model \"%s\"",
							   "fct_migrate: %lld rows of %s are still not in model \"%s\"",
							   (unsigned long) run->rows_left,
							   (long long) run->rows_left, target.display,
							   target.to_model_name),
				 errdetail_plural("Concurrent transactions kept writing rows of older models during %d pass.",
								  "Concurrent transactions kept writing rows of older models during %d passes.",
								  run->pass, run->pass),
				 errhint("CALL fct_migrate again once those writes have stopped.")));
	else
		ereport(NOTICE,
				(errmsg_plural("fct_migrate: done, %lld row upgraded, none left",
							   "fct_migrate: done, %lld rows upgraded, none left",
							   (unsigned long) run->rows_done,
							   (long long) run->rows_done),
				 errdetail_plural("%.0f rows/s; %d pass.", "%.0f rows/s; %d passes.",
								  run->pass, migrate_run_rate(run), run->pass)));
	left = run->rows_left;
	migrate_run_end(run);
	progress_end();
	return left;
}

/*
 * The checks and the runs shared by the two procedures below: the tables of
 * relids in turn (committing as each run does), each run's rows still not
 * in the target model in left[].
 */
static void
migrate_call(FunctionCallInfo fcinfo, const Oid *relids, int nrel, int64 *left)
{
	bool		atomic = true;
	int			batch_size;
	int			i;

	if (fcinfo->context && IsA(fcinfo->context, CallContext))
		atomic = ((CallContext *) fcinfo->context)->atomic;
	if (atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("fct_migrate cannot run inside a transaction block"),
				 errdetail("It commits after every batch, which is not possible inside a transaction block or a function."),
				 errhint("CALL it outside a transaction block, or queue the migration with fct_migrate_start(...), which a background worker runs once the transaction has committed.")));
	for (i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("fct_migrate: argument %d must not be NULL", i + 1)));
	batch_size = PG_GETARG_INT32(3);
	migrate_check_batch_size(batch_size);

	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect_ext failed");

	PG_TRY();
	{
		for (i = 0; i < nrel; i++)
			left[i] = migrate_procedure(relids[i], NameStr(*PG_GETARG_NAME(1)),
										text_to_cstring(PG_GETARG_TEXT_PP(2)), batch_size);
	}
	PG_CATCH();
	{
		/* cancelled or failed: the session's query text loses the progress */
		progress_end();
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();
}

/*
 * CALL fct_migrate(tbl regclass, col name, to_model text, batch_size int)
 *
 * A procedure, so that it can commit after every batch (SPI nonatomic mode).
 */
Datum
fct_migrate(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	int64		left;

	migrate_call(fcinfo, &relid, 1, &left);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(fct_migrate_placements);

/*
 * CALL _fct_migrate_placements(shards regclass[], col, to_model, batch_size,
 *								NULL) -> (rows_left bigint[])
 *
 * fct_migrate on shard placements of a Citus table, in turn, as the
 * coordinator runs it on the placements' node (migrate/migrate_distributed.c):
 * the same run on each, in one session, so that the several placements of
 * a round pay for one connection and one warm-up of the caches (Citus's
 * metadata, fct's models and weights, the plans) instead of one each; and
 * it returns what each run's closing count found, so that the coordinator
 * need not read the table again to know what is left.  The result is a row
 * (a procedure's OUT parameter), which the client of CALL receives after
 * the runs' commits.
 */
Datum
fct_migrate_placements(PG_FUNCTION_ARGS)
{
	ArrayType  *shards;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	Oid		   *relids;
	int64	   *left;
	Datum	   *out;
	TupleDesc	desc;
	Datum		value;
	bool		isnull = false;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("fct_migrate: argument 1 must not be NULL")));
	shards = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(shards, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
	relids = palloc(sizeof(Oid) * Max(n, 1));
	left = palloc(sizeof(int64) * Max(n, 1));
	out = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("fct_migrate: argument 1 must not hold NULL")));
		relids[i] = DatumGetObjectId(elems[i]);
	}
	/* allocated here, in the CALL's context, which outlives the runs' commits */
	migrate_call(fcinfo, relids, n, left);
	for (int i = 0; i < n; i++)
		out[i] = Int64GetDatum(left[i]);
	value = PointerGetDatum(construct_array(out, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "_fct_migrate_placements: its result must be a row");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), &value, &isnull)));
}
