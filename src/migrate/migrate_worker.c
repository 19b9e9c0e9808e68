/*
 * migrate_worker.c
 *	  The background workers of the migration queue.
 *
 *	 - A job worker (dynamic, one per job) connects to the job's database as
 *	   the role that queued it, takes the job's advisory lock (held by the
 *	   queuing or resuming transaction until it ends, which hands it over),
 *	   waits until the queuing transaction has committed, then runs the job's batches, one transaction each (see
 *	   migrate.h), writing its progress into the queue row in the same
 *	   transaction as the batch (so the counters are exact after a crash),
 *	   and sleeping pause_ms between batches.  It holds the job's
 *	   advisory lock for its whole life, which is how fct_migrate_resume
 *	   tells a live job from an orphan.
 *	 - With fct in shared_preload_libraries, a launcher (static, started once
 *	   recovery has finished) starts, one database at a time, a resumer that
 *	   starts a job worker for every queued or running job without one, then
 *	   stays idle: the postmaster restarts it after a crash-restart cycle,
 *	   which kills every job worker, and it resumes their jobs again.
 *	   Without it, fct_migrate_resume() does the same from SQL.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "citus/citus.h"
#include "migrate/migrate.h"
#include "progress/progress.h"
#include "query/query.h"

PGDLLEXPORT void fct_migrate_worker_main(Datum arg);
PGDLLEXPORT void fct_migrate_launcher_main(Datum arg);
PGDLLEXPORT void fct_migrate_resumer_main(Datum arg);

/* What a job worker is told, in bgw_extra. */
typedef struct WorkerArgs
{
	int64		job_id;
	Oid			dboid;
	Oid			roleid;
	TransactionId queuing_xid;	/* wait for it to end; invalid: no wait */
} WorkerArgs;

/* The launcher's restart delay after a crash (or an error of its own). */
#define MIGRATE_LAUNCHER_RESTART_SECS 5

/* Errors worth a retry (the batch was rolled back; a new run resumes). */
#define MIGRATE_MAX_RETRIES 5

/*
 * A job worker's run, and its consecutive retries (globals: they survive
 * longjmp).  A Citus table's job has a distributed run instead: this one
 * worker runs the migration on every shard placement, one per node at a time
 * (citus/citus.h).
 */
static MigrateRun *worker_run = NULL;
static CitusMigrateRun *worker_citus_run = NULL;
static int	worker_retries = 0;

static void
fill_worker(BackgroundWorker *w, const char *function, const char *name)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	w->bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w->bgw_library_name, "fct", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(w->bgw_name, name, BGW_MAXLEN);
	strlcpy(w->bgw_type, "fct migrate", BGW_MAXLEN);
}

/*
 * The caller holds the job's advisory lock (transaction-scoped), and a new
 * job worker's first step is to wait for it.  Return once the worker is
 * queued on that lock (or has died, or 10 s have passed): the lock then goes
 * straight to it when the caller commits, so a fct_migrate_resume() right
 * after the commit finds the job locked and does not start a second worker
 * (without this wait it could run before the worker had even connected).
 */
static void
wait_until_blocked_by_us(BackgroundWorkerHandle *handle)
{
	pid_t		pid;
	int			i;

	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (i = 0; i < 1000; i++)
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(pid)};
		bool		isnull;

		if (SPI_execute_with_args("SELECT pg_catalog.pg_backend_pid() " SQL_EQ " ANY (pg_catalog.pg_blocking_pids($1))",
								  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "pg_blocking_pids failed");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull)))
			break;
		if (GetBackgroundWorkerPid(handle, &pid) != BGWH_STARTED)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
}

bool
migrate_launch_worker(int64 job_id, Oid dboid, Oid roleid,
					  TransactionId queuing_xid)
{
	BackgroundWorker w;
	WorkerArgs	args;
	BackgroundWorkerHandle *handle;

	fill_worker(&w, "fct_migrate_worker_main",
				psprintf("fct migrate job %lld", (long long) job_id));
	args.job_id = job_id;
	args.dboid = dboid;
	args.roleid = roleid;
	args.queuing_xid = queuing_xid;
	memcpy(w.bgw_extra, &args, sizeof(args));
	w.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
		return false;
	wait_until_blocked_by_us(handle);
	return true;
}

/*
 * Start a worker for every queued or running job of this database that has
 * none alive (see migrate.h).
 */
int
migrate_worker_resume(bool check_role)
{
	int			started = 0;
	uint64		i;
	uint64		n;
	int64	   *ids;
	Oid		   *roles;

	migrate_queue_exec(psprintf("SELECT id, roleid FROM %s WHERE " MIGRATE_QUEUE_LIVE " ORDER BY id",
								migrate_queue_name()),
					   0, NULL, NULL, NULL);
	n = SPI_processed;
	ids = palloc(sizeof(int64) * (n + 1));
	roles = palloc(sizeof(Oid) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		roles[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	for (i = 0; i < n; i++)
	{
		if (check_role && !has_privs_of_role(GetUserId(), roles[i]))
			continue;

		/*
		 * A live worker holds the job's advisory lock.  Taking it for this
		 * transaction proves there is none; the worker we start waits for
		 * the lock until we commit.
		 */
		if (!migrate_queue_try_lock(ids[i]))
			continue;
		if (!migrate_launch_worker(ids[i], MyDatabaseId, roles[i],
								   InvalidTransactionId))
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start a background worker for migration %lld",
							(long long) ids[i]),
					 errdetail("Every background worker slot is in use (max_worker_processes = %d).",
							   max_worker_processes),
					 errhint("Call fct_migrate_resume() again later.")));
		else
			started++;
	}
	return started;
}


void
migrate_init(void)
{
	BackgroundWorker w;

	if (!process_shared_preload_libraries_in_progress)
		return;
	fill_worker(&w, "fct_migrate_launcher_main", "fct migrate launcher");

	/*
	 * After a crash-restart cycle (a backend killed with -9 makes the
	 * postmaster end every process and reinitialise without a shutdown) the
	 * postmaster forgets the workers that never restart, and restarts the
	 * others: so the launcher asks to be restarted, and stays alive once its
	 * work is done (it would be unregistered if it exited with status 0).
	 */
	w.bgw_restart_time = MIGRATE_LAUNCHER_RESTART_SECS;
	RegisterBackgroundWorker(&w);
}

static void
sleep_ms(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
begin_xact(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* SPI needs an outer snapshot; each statement still takes a fresh one */
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
end_xact(void)
{
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/*
 * Wait until the job's row is visible: the queuing transaction has
 * committed.  False when it never will be (rolled back, or the job is gone).
 */
static bool
wait_for_job(const WorkerArgs *args, MigrateJob *job)
{
	for (;;)
	{
		bool		found;
		bool		running;

		begin_xact();
		found = migrate_queue_fetch(args->job_id, job);
		running = !found && TransactionIdIsValid(args->queuing_xid) &&
			TransactionIdIsInProgress(args->queuing_xid);
		if (!found && !running)
		{
			/* it may have committed between the look-up and the check */
			end_xact();
			begin_xact();
			found = migrate_queue_fetch(args->job_id, job);
		}
		if (found)
			job->to_model = MemoryContextStrdup(TopMemoryContext, job->to_model);
		end_xact();
		if (found)
			return true;
		if (!running)
			return false;
		sleep_ms(100);
	}
}

static void
lock_job(int64 id)
{
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		values[2];

	values[0] = Int32GetDatum(MIGRATE_LOCK_KEY);
	values[1] = Int32GetDatum((int32) (id % PG_INT32_MAX));
	begin_xact();
	if (SPI_execute_with_args("SELECT pg_catalog.pg_advisory_lock($1, $2)",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_advisory_lock failed");
	end_xact();
}

/*
 * Update the job's row while it is still queued or running; false when it is
 * not (a fct_migrate_cancel that committed after this transaction's check
 * must win, not be overwritten).
 */
static bool
queue_update(const char *set, int64 id, int nargs, Oid *types, Datum *values)
{
	Oid			argtypes[8];
	Datum		argvalues[8];
	int			i;

	argtypes[0] = INT8OID;
	argvalues[0] = Int64GetDatum(id);
	for (i = 0; i < nargs; i++)
	{
		argtypes[i + 1] = types[i];
		argvalues[i + 1] = values[i];
	}
	migrate_queue_exec(psprintf("UPDATE %s SET %s, updated_at = pg_catalog.now() "
								"WHERE id " SQL_EQ " $1 AND " MIGRATE_QUEUE_LIVE,
								migrate_queue_name(), set),
					   nargs + 1, argtypes, argvalues, NULL);
	return SPI_processed > 0;
}

/* The state of the job's row, read in the current transaction. */
static bool
job_still_live(int64 id)
{
	MigrateJob	job;

	if (!migrate_queue_fetch(id, &job))
		return false;
	return strcmp(job.state, "queued") == 0 || strcmp(job.state, "running") == 0;
}

typedef enum
{
	STEP_MORE,
	STEP_DONE,
	STEP_STOPPED
} StepResult;

/*
 * One transaction of the job: the first one resolves the target and starts
 * the run, every later one writes one batch and the progress.
 */
static StepResult
job_step(MigrateJob *job, MemoryContext runcxt)
{
	MigrateRun *run = worker_run;
	CitusMigrateRun *crun = worker_citus_run;
	StepResult	result = STEP_MORE;

	begin_xact();
	if (!job_still_live(job->id))
	{
		end_xact();
		return STEP_STOPPED;
	}
	if (run == NULL && crun == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(runcxt);
		MigrateTarget target;
		Oid			types[2] = {INT4OID, INT8OID};
		Datum		values[2];

		migrate_resolve(job->relid, job->attname, job->to_model, &target);
		if (citus_table_has_placements(job->relid))
			crun = worker_citus_run = citus_migrate_begin(job->relid, target.relname, job->attname,
														  target.to_model_name, job->batch_size,
														  job->id);
		else
		{
			migrate_progress(&target, NULL, job->id);
			run = worker_run = migrate_run_begin(&target, job->batch_size);
			migrate_progress(&run->target, run, job->id);
		}
		MemoryContextSwitchTo(old);
		values[0] = Int32GetDatum(MyProcPid);
		values[1] = Int64GetDatum(crun ? citus_migrate_rows_left(crun) : run->rows_left);
		if (!queue_update("state = 'running', worker_pid = $2, rows_left = $3, "
						  "started_at = coalesce(started_at, pg_catalog.now()), last_error = NULL",
						  job->id, 2, types, values))
			result = STEP_STOPPED;
	}
	else if (crun ? citus_migrate_round(crun) : migrate_run_step(run))
	{
		Oid			types[3] = {INT8OID, INT8OID, FLOAT8OID};
		Datum		values[3];

		if (run)
			migrate_progress(&run->target, run, job->id);
		values[0] = Int64GetDatum(crun ? citus_migrate_round_rows(crun) : run->batch_rows);
		values[1] = Int64GetDatum(crun ? citus_migrate_rows_left(crun) : run->rows_left);
		values[2] = Float8GetDatum(crun ? citus_migrate_rate(crun) : migrate_run_rate(run));
		/* cancelled meanwhile: the batch is right all the same, keep it */
		if (!queue_update("rows_done = rows_done " SQL_PLUS " $2, rows_left = $3, rate = $4",
						  job->id, 3, types, values))
			result = STEP_STOPPED;
	}
	else
	{
		Datum		values[2];
		char		nulls[3] = "  n";
		int64		left = crun ? citus_migrate_end(crun) : run->rows_left;

		values[0] = Int64GetDatum(left);
		if (left > 0)
		{
			/* a distributed run's passes are its placements' own, not counted here */
			char	   *during = crun ? "" :
				psprintf(" during %d %s", run->pass, run->pass == 1 ? "pass" : "passes");

			values[1] = CStringGetTextDatum(psprintf("%s %s still not in model \"%s\": concurrent transactions kept writing rows of older models%s",
													 migrate_rows_text(left),
													 left == 1 ? "is" : "are",
													 job->to_model, during));
			nulls[2] = ' ';
		}
		else
			values[1] = (Datum) 0;
		migrate_queue_exec(psprintf("UPDATE %s SET state = CASE WHEN $2 " SQL_EQ " 0 THEN 'done' ELSE 'failed' END, "
									"rows_left = $2, last_error = $3, finished_at = pg_catalog.now(), "
									"updated_at = pg_catalog.now() "
									"WHERE id " SQL_EQ " $1 AND " MIGRATE_QUEUE_LIVE,
									migrate_queue_name()),
						   3, (Oid[]) {INT8OID, INT8OID, TEXTOID},
						   (Datum[]) {Int64GetDatum(job->id), values[0], values[1]},
						   nulls);
		result = STEP_DONE;
	}
	end_xact();
	return result;
}

static void
record_error(int64 id, ErrorData *edata, bool failed)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	begin_xact();
	values[0] = CStringGetTextDatum(psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode),
											 edata->message));
	if (failed)
		(void) queue_update("state = 'failed', last_error = $2, finished_at = pg_catalog.now()",
							id, 1, types, values);
	else
		(void) queue_update("last_error = $2", id, 1, types, values);
	end_xact();
}

void
fct_migrate_worker_main(Datum arg)
{
	WorkerArgs	args;
	MigrateJob	job;
	MemoryContext runcxt;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleid, 0);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);

	/* first the lock, which the launching transaction hands over at commit */
	lock_job(args.job_id);
	if (!wait_for_job(&args, &job))
		proc_exit(0);

	runcxt = AllocSetContextCreate(TopMemoryContext, "fct migrate run",
								   ALLOCSET_DEFAULT_SIZES);

	/*
	 * The worker's "query" in pg_stat_activity, which the progress of its run
	 * (fct_progress) is written before; it stays active while the job runs,
	 * pauses between batches included.
	 */
	debug_query_string = MemoryContextStrdup(TopMemoryContext,
											 psprintf("fct migrate job %lld", (long long) job.id));
	for (;;)
	{
		MemoryContext oldcxt = CurrentMemoryContext;
		StepResult	result;

		/* a run under way shows its progress, which the next step updates */
		if (worker_run == NULL && worker_citus_run == NULL)
			pgstat_report_activity(STATE_RUNNING, debug_query_string);
		PG_TRY();
		{
			result = job_step(&job, runcxt);
			/* a distributed run's retries end when a round upgrades nothing new */
			if (worker_citus_run == NULL || citus_migrate_round_rows(worker_citus_run) > 0)
				worker_retries = 0;
		}
		PG_CATCH();
		{
			ErrorData  *edata;
			bool		retry;

			MemoryContextSwitchTo(oldcxt);
			EmitErrorReport();
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();

			/*
			 * The batch was rolled back; a fresh run (census, new pass)
			 * resumes where the committed batches stopped.
			 */
			worker_run = NULL;
			worker_citus_run = NULL;
			MemoryContextReset(runcxt);

			/*
			 * A node of a Citus table that could not be reached may be
			 * restarting: a new run retries every placement (those done
			 * have no row left to upgrade).
			 */
			retry = (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_TRANSACTION_ROLLBACK ||
					 edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
					 edata->sqlerrcode == ERRCODE_CONNECTION_FAILURE) &&
				++worker_retries <= MIGRATE_MAX_RETRIES;
			record_error(job.id, edata, !retry);
			FreeErrorData(edata);
			progress_end();
			pgstat_report_activity(STATE_IDLE, NULL);
			if (!retry)
				proc_exit(1);
			result = STEP_MORE;
		}
		PG_END_TRY();

		if (result != STEP_MORE)
		{
			progress_end();
			pgstat_report_activity(STATE_IDLE, NULL);
			break;
		}
		if (worker_run == NULL && worker_citus_run == NULL)
			sleep_ms(1000);		/* after an error, before the retry */
		else if (job.pause_ms > 0)
			sleep_ms(job.pause_ms);
		else
			CHECK_FOR_INTERRUPTS();
	}
	proc_exit(0);
}

/*
 * The launcher: one resumer per database that accepts connections, one at a
 * time (so that a cluster with many databases does not use up the worker
 * slots the jobs need).
 */
void
fct_migrate_launcher_main(Datum arg)
{
	List	   *dbs = NIL;
	ListCell   *lc;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			dbs = lappend_oid(dbs, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	foreach(lc, dbs)
	{
		BackgroundWorker w;
		BackgroundWorkerHandle *handle;
		pid_t		pid;

		fill_worker(&w, "fct_migrate_resumer_main", "fct migrate resumer");
		w.bgw_main_arg = ObjectIdGetDatum(lfirst_oid(lc));
		w.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&w, &handle))
		{
			ereport(WARNING,
					(errmsg("fct: could not start a migration resumer for database %u",
							lfirst_oid(lc)),
					 errhint("Call fct_migrate_resume() in that database.")));
			continue;
		}
		if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
			(void) WaitForBackgroundWorkerShutdown(handle);
	}

	/* Idle until the server stops or crashes (see migrate_init). */
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* A resumer: in one database, as the bootstrap superuser. */
void
fct_migrate_resumer_main(Datum arg)
{
	int			started = 0;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);

	begin_xact();
	if (OidIsValid(get_extension_oid("fct", true)))
	{
		started = migrate_worker_resume(false);
		if (started > 0)
			ereport(LOG,
					(errmsg_plural("fct: resumed %d queued migration in database \"%s\"",
								   "fct: resumed %d queued migrations in database \"%s\"",
								   started, started, get_database_name(MyDatabaseId))));
	}
	end_xact();
	proc_exit(0);
}
