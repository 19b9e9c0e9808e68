/*
 * migrate_procedure.c
 *	  CALL fct_migrate: a migration run in the caller's session, committing
 *	  after every batch (the engine of migrate.c); a Citus table's migration
 *	  runs on each of its shard placements (citus/).
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "utils/builtins.h"

#include "citus/citus.h"
#include "migrate/migrate.h"
#include "progress/progress.h"

PG_FUNCTION_INFO_V1(fct_migrate);

/*
 * The procedure's run, committing after every batch (the caller is connected
 * to SPI in nonatomic mode).
 */
static void
migrate_procedure(Oid relid, const char *attname, const char *to_model,
				  int batch_size)
{
	MigrateTarget target;
	MigrateRun *run;

	migrate_resolve(relid, attname, to_model, &target);

	/* A Citus table: the same migration on each of its shard placements. */
	if (citus_table_has_placements(target.relid))
	{
		citus_migrate_placements(target.relid, target.relname, attname,
								 target.to_model_name, batch_size);
		return;
	}
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
	migrate_run_end(run);
	progress_end();
}

/*
 * CALL fct_migrate(tbl regclass, col name, to_model text, batch_size int)
 *
 * A procedure, so that it can commit after every batch (SPI nonatomic mode).
 */
Datum
fct_migrate(PG_FUNCTION_ARGS)
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
		migrate_procedure(PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)),
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
	PG_RETURN_VOID();
}
