/*
 * migrate_control.c
 *	  The queue's SQL functions: fct_migrate_start (check, queue a job and
 *	  start its worker), fct_migrate_cancel, fct_migrate_cancel_column and
 *	  fct_migrate_resume.  They write the queue only through migrate_queue.c,
 *	  as its owner (see there why), and start workers through
 *	  migrate_worker.c.
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "citus/citus.h"
#include "migrate/migrate.h"
#include "query/query.h"

PG_FUNCTION_INFO_V1(fct_migrate_start);
PG_FUNCTION_INFO_V1(fct_migrate_cancel);
PG_FUNCTION_INFO_V1(fct_migrate_cancel_column);
PG_FUNCTION_INFO_V1(fct_migrate_resume);

#define MIGRATE_MAX_PAUSE_MS	3600000

static int64 take_over_orphan(int64 other, const MigrateTarget *target,
							  int32 batch_size, int32 pause_ms);

/*
 * fct_migrate_start(tbl, col, to_model, batch_size, pause_ms) -> bigint
 *
 * Checks now what can be checked (table, column, model, privileges), queues
 * the job and registers its worker; the worker waits until this transaction
 * has committed (and exits if it rolls back).
 */
Datum
fct_migrate_start(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *attname = NameStr(*PG_GETARG_NAME(1));
	char	   *to_model = text_to_cstring(PG_GETARG_TEXT_PP(2));
	int32		batch_size = PG_GETARG_INT32(3);
	int32		pause_ms = PG_GETARG_INT32(4);
	Oid			userid = GetUserId();
	MigrateTarget target;
	HeapTuple	tp;
	bool		canlogin;
	Oid			argtypes[6];
	Datum		values[6];
	int64		id;
	bool		isnull;

	migrate_check_batch_size(batch_size);
	if (pause_ms < 0 || pause_ms > MIGRATE_MAX_PAUSE_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pause_ms must be between 0 and %d", MIGRATE_MAX_PAUSE_MS),
				 errdetail("pause_ms was %d.", pause_ms)));

	migrate_resolve(relid, attname, to_model, &target);

	/*
	 * The worker will read the rows (by ctid) and update the column as this
	 * role: check the same privileges now, so that the mistake shows here
	 * rather than in the view later.
	 */
	if (pg_class_aclcheck(relid, userid, ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
	if (pg_class_aclcheck(relid, userid, ACL_UPDATE) != ACLCHECK_OK &&
		pg_attribute_aclcheck(relid, target.attnum, userid, ACL_UPDATE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_COLUMN, get_rel_name(relid));

	tp = SearchSysCache1(AUTHOID, ObjectIdGetDatum(userid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for role %u", userid);
	canlogin = ((Form_pg_authid) GETSTRUCT(tp))->rolcanlogin;
	ReleaseSysCache(tp);
	if (!canlogin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" cannot log in, and the migration's worker would connect as it",
						GetUserNameFromId(userid, false)),
				 errhint("Queue the migration as a role with LOGIN, or CALL fct_migrate(...) outside a transaction block.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	argtypes[0] = OIDOID;
	values[0] = ObjectIdGetDatum(relid);
	argtypes[1] = NAMEOID;
	values[1] = PG_GETARG_DATUM(1);
	migrate_queue_exec(psprintf("SELECT id FROM %s WHERE relid " SQL_EQ " $1 AND attname " SQL_EQ " $2 "
								"AND " MIGRATE_QUEUE_LIVE, migrate_queue_name()),
					   2, argtypes, values, NULL);
	if (SPI_processed > 0)
	{
		int64		other = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc,
														1, &isnull));

		id = take_over_orphan(other, &target, batch_size, pause_ms);
		SPI_finish();
		PG_RETURN_INT64(id);
	}

	/*
	 * The checks a run makes before writing, made now, so that a job that
	 * cannot succeed is refused here rather than queued to fail later.
	 */
	{
		List	   *models = NIL;

		/*
		 * A Citus table's shell on the coordinator has no rows to check: each
		 * placement's own CALL fct_migrate checks its shard before writing.
		 */
		if (!citus_table_has_placements(relid) &&
			migrate_census(&target, NULL, &models) > 0)
			migrate_check_writes(&target, models);
	}

	argtypes[2] = TEXTOID;
	values[2] = CStringGetTextDatum(target.to_model_name);
	argtypes[3] = INT4OID;
	values[3] = Int32GetDatum(batch_size);
	argtypes[4] = INT4OID;
	values[4] = Int32GetDatum(pause_ms);
	argtypes[5] = OIDOID;
	values[5] = ObjectIdGetDatum(userid);
	migrate_queue_exec(psprintf("INSERT INTO %s (relid, attname, to_model, batch_size, pause_ms, roleid) "
								"VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", migrate_queue_name()),
					   6, argtypes, values, NULL);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1, &isnull));
	if (!migrate_queue_try_lock(id))
		elog(ERROR, "advisory lock of new migration %lld is taken", (long long) id);
	SPI_finish();

	if (!migrate_launch_worker(id, MyDatabaseId, userid, GetTopTransactionId()))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for the migration of %s",
						target.display),
				 errdetail("Every background worker slot is in use (max_worker_processes = %d).",
						   max_worker_processes),
				 errhint("Retry later, raise max_worker_processes, or CALL fct_migrate(...) outside a transaction block.")));
	PG_RETURN_INT64(id);
}

/*
 * fct_migrate_start found a live job (queued or running) for the same column.
 * If a worker holds it, refuse.  If none does (the server restarted, after a
 * crash or not, and nothing resumed it: without fct in
 * shared_preload_libraries no launcher does), the job is an orphan: for the
 * same target, the caller gets it back, with its own batch size and pause,
 * and a worker is started for it; for another target, refuse with the two
 * ways out.  Returns the job's id.
 */
static int64
take_over_orphan(int64 other, const MigrateTarget *target, int32 batch_size,
				 int32 pause_ms)
{
	MigrateJob	job;
	Oid			argtypes[4] = {INT8OID, INT4OID, INT4OID, OIDOID};
	Datum		values[4];

	if (!migrate_queue_fetch(other, &job))
		elog(ERROR, "migration %lld vanished", (long long) other);
	if (!migrate_queue_try_lock(other))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a migration of %s is already queued or running", target->display),
				 errdetail("Migration %lld, into model \"%s\".", (long long) other,
						   job.to_model),
				 errhint("Follow it in the view fct_migrations, or cancel it with fct_migrate_cancel(%lld).",
						 (long long) other)));
	if (strcmp(job.to_model, target->to_model_name) != 0 ||
		!has_privs_of_role(GetUserId(), job.roleid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a migration of %s is already queued or running", target->display),
				 errdetail("Migration %lld, into model \"%s\" as role \"%s\", has no worker: the server restarted since it was queued.",
						   (long long) other, job.to_model,
						   GetUserNameFromId(job.roleid, true) ? GetUserNameFromId(job.roleid, true) : "?"),
				 errhint("Resume it with fct_migrate_resume(), or cancel it with fct_migrate_cancel(%lld) and queue the new one.",
						 (long long) other)));

	values[0] = Int64GetDatum(other);
	values[1] = Int32GetDatum(batch_size);
	values[2] = Int32GetDatum(pause_ms);
	values[3] = ObjectIdGetDatum(GetUserId());
	migrate_queue_exec(psprintf("UPDATE %s SET batch_size = $2, pause_ms = $3, roleid = $4, "
								"updated_at = pg_catalog.now() WHERE id " SQL_EQ " $1 AND " MIGRATE_QUEUE_LIVE,
								migrate_queue_name()),
					   4, argtypes, values, NULL);
	if (!migrate_launch_worker(other, MyDatabaseId, GetUserId(), InvalidTransactionId))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for the migration of %s",
						target->display),
				 errdetail("Every background worker slot is in use (max_worker_processes = %d).",
						   max_worker_processes),
				 errhint("Retry later, raise max_worker_processes, or CALL fct_migrate(...) outside a transaction block.")));
	ereport(NOTICE,
			(errmsg("migration %lld of %s had no worker: resumed", (long long) other,
					target->display),
			 errdetail("The server restarted since it was queued; its committed batches are kept.")));
	return other;
}

/* Cancel one job; false when it had already finished. */
static bool
cancel_job(int64 id)
{
	MigrateJob	job;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	bool		cancelled;

	if (!migrate_queue_fetch(id, &job))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("migration %lld does not exist", (long long) id),
				 errhint("The view fct_migrations lists the migrations.")));
	if (!has_privs_of_role(GetUserId(), job.roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to cancel migration %lld", (long long) id),
				 errdetail("Only the role that queued it (or a member of it) may cancel it.")));
	migrate_queue_exec(psprintf("UPDATE %s SET state = 'cancelled', finished_at = pg_catalog.now(), "
								"updated_at = pg_catalog.now() "
								"WHERE id " SQL_EQ " $1 AND " MIGRATE_QUEUE_LIVE " RETURNING worker_pid",
								migrate_queue_name()),
					   1, argtypes, values, NULL);
	cancelled = SPI_processed > 0;
	if (cancelled)
	{
		bool		isnull;
		Datum		pid = SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull);

		/* Wake the worker from its pause, so that it sees the state soon. */
		if (!isnull)
		{
			PGPROC	   *proc = BackendPidGetProc(DatumGetInt32(pid));

			if (proc != NULL)
				SetLatch(&proc->procLatch);
		}
	}
	return cancelled;
}

/* fct_migrate_cancel(id bigint) -> boolean */
Datum
fct_migrate_cancel(PG_FUNCTION_ARGS)
{
	bool		result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	result = cancel_job(PG_GETARG_INT64(0));
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/* fct_migrate_cancel(tbl regclass, col name) -> boolean */
Datum
fct_migrate_cancel_column(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Datum		values[2] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)};
	bool		result = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	migrate_queue_exec(psprintf("SELECT id FROM %s WHERE relid " SQL_EQ " $1 AND attname " SQL_EQ " $2 "
								"AND " MIGRATE_QUEUE_LIVE, migrate_queue_name()),
					   2, argtypes, values, NULL);
	if (SPI_processed > 0)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc,
													 1, &isnull));

		result = cancel_job(id);
	}
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/* fct_migrate_resume() -> integer */
Datum
fct_migrate_resume(PG_FUNCTION_ARGS)
{
	int			started;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	started = migrate_worker_resume(true);
	SPI_finish();
	PG_RETURN_INT32(started);
}
