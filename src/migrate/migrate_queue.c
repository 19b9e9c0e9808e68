/*
 * migrate_queue.c
 *	  The migration queue, table fct_migration_queue: its name, the one way
 *	  fct writes it, reading a job, and a job's advisory lock.  The SQL
 *	  functions that queue and cancel jobs are in migrate_control.c; the
 *	  workers that run them in migrate_worker.c.
 *
 * The queue records, for every job, the role whose rights its worker uses.
 * So nobody may write the table directly (PUBLIC may only read it): these
 * functions write it as the table's owner, for a moment and only with the
 * statements below, and they record GetUserId(), never a role the caller
 * names.  The migration itself never runs as the owner: the worker connects
 * as the recorded role.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "migrate/migrate.h"
#include "model/model.h"
#include "query/query.h"

static Oid
queue_relid(void)
{
	Oid			relid = get_relname_relid("fct_migration_queue",
										  fct_extension_schema());

	if (!OidIsValid(relid))
		elog(ERROR, "table fct_migration_queue of extension fct is missing");
	return relid;
}

char *
migrate_queue_name(void)
{
	return quote_qualified_identifier(get_namespace_name(fct_extension_schema()),
									  "fct_migration_queue");
}

/*
 * As the table's owner (query_execute_as_owner): our own fixed statements on
 * our own table, which has no triggers.
 */
int
migrate_queue_exec(const char *sql, int nargs, Oid *argtypes, Datum *values,
				   const char *nulls)
{
	return query_execute_as_owner(queue_relid(), sql, nargs, argtypes, values,
								  nulls, false);
}

bool
migrate_queue_fetch(int64 id, MigrateJob *job)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	migrate_queue_exec(psprintf("SELECT relid, attname, to_model, batch_size, pause_ms, roleid, state "
								"FROM %s WHERE id " SQL_EQ " $1", migrate_queue_name()),
					   1, argtypes, values, NULL);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	job->id = id;
	job->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
	strlcpy(job->attname, NameStr(*DatumGetName(SPI_getbinval(tup, desc, 2, &isnull))),
			NAMEDATALEN);
	job->to_model = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
	job->batch_size = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
	job->pause_ms = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	job->roleid = DatumGetObjectId(SPI_getbinval(tup, desc, 6, &isnull));
	strlcpy(job->state,
			TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull)),
			sizeof(job->state));
	return true;
}

/*
 * Take the job's advisory lock until the end of this transaction; false when
 * someone (a live worker) holds it.  A worker we then start queues on it and
 * gets it when we commit (migrate_launch_worker).
 */
bool
migrate_queue_try_lock(int64 id)
{
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	LOCKTAG		tag;

	/*
	 * Advisory locks are re-entrant: if this transaction holds the lock
	 * already, it queued or resumed the job itself, and the worker it started
	 * is waiting for the lock; the job is not an orphan.
	 */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) MIGRATE_LOCK_KEY,
						 (uint32) (id % PG_INT32_MAX), 2);
	if (LockHeldByMe(&tag, ExclusiveLock))
		return false;

	values[0] = Int32GetDatum(MIGRATE_LOCK_KEY);
	values[1] = Int32GetDatum((int32) (id % PG_INT32_MAX));
	if (SPI_execute_with_args("SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_try_advisory_xact_lock failed");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}
