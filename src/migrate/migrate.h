/*
 * migrate.h
 *	  Lazy migration of stored rows into a newer model's space.  Calls go one
 *	  way, top to bottom (README.md says what each file does):
 *
 *	    migrate_procedure.c   CALL fct_migrate, in the caller's session
 *	    migrate_control.c     fct_migrate_start/cancel/resume: queue a job
 *	    migrate_worker.c      the background workers that run queued jobs
 *	    migrate.c             the batch engine a run goes through
 *	    migrate_target.c      resolving (table, column, model), the census
 *	    migrate_check.c       will the table take the upgraded rows?
 *	    migrate_queue.c       the queue table, written only as its owner
 *
 *	  A file calls only files below it, never one above (the procedure and
 *	  the control functions never call each other).
 *
 * A migration is a run of batches.  A batch reads the rows of a range of
 * heap blocks that are not yet in the target model (a TID range scan),
 * upgrades them with batched calls (transform_upgrade_batch: the bits of fct_upgrade),
 * and writes them back with UPDATE ... WHERE ctid in the range AND the row
 * still holds the old value, in a few committed steps (write phases): the
 * first rows of each block go to other pages, and once that step has
 * committed, the next one prunes their old versions and its rows fit on
 * their own page as HOT updates, which insert nothing into the indexes.  The
 * phases are pipelined: a step reads a batch and writes its first phase
 * together with the later phases of the batches before it, in one UPDATE
 * over their (consecutive) blocks.  The caller commits after every step.
 * The invariants:
 *
 *	 - A row is written only if it still holds, byte for byte, the very value
 *	   that was upgraded: a row updated meanwhile has a new ctid (the UPDATE
 *	   re-checks its quals on the newest version, EvalPlanQual) or another
 *	   value, and is skipped; a row that holds that old value is a row whose
 *	   upgrade is the value written.  For the first step the snapshot of the
 *	   read is also held until the write, so no line pointer read by the
 *	   batch can be reused meanwhile.  A concurrent write is therefore never
 *	   overwritten; a skipped row is left for a later pass, which upgrades it
 *	   if it still needs it.
 *	 - A row already in the target model is never touched, so a run that is
 *	   cancelled or crashes loses nothing (every step committed or not at
 *	   all) and a new run resumes where the last one stopped: every row is
 *	   upgraded exactly once.
 *	 - A run starts with a census (the rows' models: a path from each to the
 *	   target is checked before anything is written).  A pass sweeps the
 *	   table's blocks once; at its end a count (one snapshot) of the rows
 *	   still not in the target model decides whether another pass is needed
 *	   (rows skipped, moved or inserted by concurrent writers), at most
 *	   MIGRATE_MAX_PASSES.
 *
 * Every statement runs through SPI as the current user, so a migration needs
 * the privileges of UPDATE t SET col = ... WHERE ..., row-level security and
 * triggers apply, and no security definer is involved.
 */
#ifndef FCT_MIGRATE_H
#define FCT_MIGRATE_H

#include "postgres.h"

#include "access/attnum.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "storage/block.h"

#define MIGRATE_MAX_BATCH_SIZE	1000000
#define MIGRATE_MAX_PASSES		10

/* What to migrate: a resolved and validated (table, column, target model). */
typedef struct MigrateTarget
{
	Oid			relid;
	AttrNumber	attnum;
	Oid			typid;			/* the column's type (embedding) */
	int32		to_model;
	char	   *relname;		/* schema-qualified and quoted, for SQL */
	char	   *colname;		/* quoted, for SQL */
	char	   *attname;		/* as named, for the progress report */
	char	   *display;		/* "schema.table.column", for messages */
	char	   *to_model_name;
} MigrateTarget;

/* The state of a run, kept across the transactions of its batches. */
typedef struct MigrateRun
{
	MigrateTarget target;
	int			batch_size;
	MemoryContext batch_cxt;	/* reset at every batch */
	SPIPlanPtr	read_plan;		/* ctid, col of a block range */
	SPIPlanPtr	write_plan;		/* UPDATE ... FROM unnest(tids, old, new) */
	SPIPlanPtr	count_plan;		/* count(*) of the rows not in the target */
	struct MigrateBatch *batch; /* the batch's arrays, kept for the whole run */
	double		rows_per_block; /* non-null rows per block, from the census */
	int16		typlen;
	bool		typbyval;
	char		typalign;

	/* the sweep */
	int			pass;			/* 1, 2, ... */
	BlockNumber next_block;
	BlockNumber pass_end;		/* table length when the pass started */
	int64		cands_seen;		/* in this pass, for the size of a read */
	int64		blocks_seen;
	BlockNumber last_range;		/* blocks in the last read */
	bool		finished;

	/* counters */
	int64		rows_left_at_start; /* census at the start of the pass */
	int64		rows_done;		/* written by this run */
	int64		rows_done_pass; /* written by this run in this pass */
	int64		rows_skipped;	/* changed concurrently, left for a pass */
	int64		rows_left;		/* estimate, exact at the end of a pass */
	int64		batches;		/* steps that read or wrote rows */
	TimestampTz started;

	/* the last step */
	int64		batch_rows;		/* rows written */
	double		batch_secs;
} MigrateRun;

/* migrate_target.c */

/*
 * Resolve (table, column, target model) and check what can be checked
 * without reading the table: the relation is a table, the column exists and
 * is an embedding, the model exists.  Errors with a specific SQLSTATE.
 */
extern void migrate_resolve(Oid relid, const char *attname,
							const char *to_model, MigrateTarget *target);

/*
 * The census of target's column: the number of rows not in the target model,
 * after checking that each of their models has a path to it (errors before
 * anything is written otherwise).  Needs an SPI connection; reads the table
 * once.  *total (if not NULL): the number of non-null values; *models (if
 * not NULL): the ids of the models of those rows, appended.
 */
extern int64 migrate_census(const MigrateTarget *target, int64 *total,
							List **models);

/*
 * The census's check of its rows in model id (not the target): errors when
 * id names no model or the model has no path to the target.
 */
extern void migrate_census_check(const MigrateTarget *target, int32 id, int64 rows);

/*
 * migrate_check.c: will the table take the rows upgraded into the target
 * model?  The column's typmod, and, on one row of each of models (upgraded
 * in memory), every CHECK constraint and index that reads the column (an lsh
 * index must keep holding one model).  Errors naming the object, with the
 * statement that fixes it in the hint; writes nothing.  Needs an SPI
 * connection.
 */
extern void migrate_check_writes(const MigrateTarget *target, List *models);

/* migrate.c: the engine */

/*
 * Start a run: census of the rows (their models), check that a path leads
 * from each to the target (errors otherwise, before anything is written),
 * prepare the plans.  Needs an open transaction and an SPI connection; the
 * run is allocated in CurrentMemoryContext, which must outlive the
 * transaction.
 */
extern MigrateRun *migrate_run_begin(const MigrateTarget *target,
									 int batch_size);

/*
 * One batch.  Needs an open transaction and an SPI connection; the caller
 * commits afterwards.  Returns false when the run has finished (nothing
 * written in this call then).
 */
extern bool migrate_run_step(MigrateRun *run);

/* Free the saved plans and the run's memory. */
extern void migrate_run_end(MigrateRun *run);

/* "1 row", "2 rows": a count of rows in a message, in the number it needs. */
extern char *migrate_rows_text(int64 n);

/* Rows per second written since the run started. */
extern double migrate_run_rate(const MigrateRun *run);

/* Errors (22023) unless 1 <= batch_size <= MIGRATE_MAX_BATCH_SIZE. */
extern void migrate_check_batch_size(int batch_size);

/*
 * Publish where a migration of target is (progress/, the view fct_progress):
 * with run NULL, that its census and checks are under way; otherwise the
 * run's rows done and left, batches, pass and rate.  job_id: the queue's job
 * a background worker runs, 0 for CALL fct_migrate.
 */
extern void migrate_progress(const MigrateTarget *target, const MigrateRun *run,
							 int64 job_id);

/*
 * The queue (migrate_queue.c): table fct_migration_queue, written only as the
 * table's owner by fct's own code, so that the role recorded for a job (the
 * role its worker runs as) is always the role that queued it.
 */
typedef struct MigrateJob
{
	int64		id;
	Oid			relid;
	char		attname[NAMEDATALEN];
	char	   *to_model;
	int			batch_size;
	int			pause_ms;
	Oid			roleid;
	char		state[16];
} MigrateJob;

/* Advisory lock key (first half) held by the worker of a job for its life. */
#define MIGRATE_LOCK_KEY	6710132	/* 0x666374, "fct" */

/* Needs an SPI connection.  False when the job does not exist (or is not visible). */
extern bool migrate_queue_fetch(int64 id, MigrateJob *job);

/* The queue's qualified, quoted name, for SQL. */
extern char *migrate_queue_name(void);

/* A job that is queued or running (the condition of the queue's partial unique index). */
#define MIGRATE_QUEUE_LIVE \
	"(state OPERATOR(pg_catalog.=) 'queued' OR state OPERATOR(pg_catalog.=) 'running')"

/*
 * Run a statement on the queue as its owner (SPI connected); it names every
 * operator and function with its schema (query/query.h).
 */
extern int	migrate_queue_exec(const char *sql, int nargs, Oid *argtypes,
							   Datum *values, const char *nulls);

/*
 * Take the job's advisory lock until the end of this transaction; false when
 * someone (a live worker) holds it.  Needs an SPI connection.
 */
extern bool migrate_queue_try_lock(int64 id);

/* The background workers (migrate_worker.c). */
extern void migrate_init(void);
extern bool migrate_launch_worker(int64 job_id, Oid dboid, Oid roleid,
								  TransactionId queuing_xid);

/*
 * Start a worker for every queued or running job of this database that has
 * none alive.  check_role: only jobs whose role the current user has the
 * privileges of.  Needs an SPI connection.  Returns how many were started.
 */
extern int	migrate_worker_resume(bool check_role);

/* migrate_distributed.c: a Citus table, migrated on its shard placements' nodes */

/*
 * CALL fct_migrate on every shard placement of Citus table relid (rel: its
 * qualified, quoted name), one session per node at a time, committing
 * between rounds (migrate_distributed.c).  Caller: fct_migrate, with SPI
 * connected in nonatomic mode.  Returns the rows still not in to_model.
 */
extern int64 citus_migrate_placements(Oid relid, const char *rel, const char *col,
									 const char *to_model, int batch_size);

/*
 * The same migration in steps, for the queue's background worker (one job,
 * one worker, whatever the number of shards): begin lists the placements,
 * checks the paths and counts the rows (allocated in CurrentMemoryContext,
 * which must outlive the transactions); each round runs the next placement
 * of every node at once (false when none is left); end errors naming the
 * placements that failed, otherwise returns the rows still not in the target
 * model (what the placements' own closing counts found).  job_id: the queue's job, for the progress
 * each step publishes (fct_progress).  Each needs an open transaction and an SPI
 * connection; the caller commits between them.
 */
typedef struct CitusMigrateRun CitusMigrateRun;

extern CitusMigrateRun *citus_migrate_begin(Oid relid, const char *rel, const char *col,
											const char *to_model, int batch_size,
											int64 job_id);
extern bool citus_migrate_round(CitusMigrateRun *run);
extern int64 citus_migrate_end(CitusMigrateRun *run);
/* Rows not yet upgraded (counted per placement as they finish), rows of the last round, rows/s. */
extern int64 citus_migrate_rows_left(const CitusMigrateRun *run);
extern int64 citus_migrate_round_rows(const CitusMigrateRun *run);
extern double citus_migrate_rate(const CitusMigrateRun *run);

#endif							/* FCT_MIGRATE_H */
