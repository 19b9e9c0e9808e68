/*
 * citus.h
 *	  fct on a Citus cluster: which node this is, and sending a command to the
 *	  workers inside the coordinator's distributed transaction.
 *
 * fct does not link against Citus (it builds and runs without it): the few
 * Citus functions it calls are looked up in the already loaded citus library
 * by name, and only in a database where the citus extension exists (Citus
 * refuses to run unless it is in shared_preload_libraries, so then it is
 * loaded).  See README.md in this folder for the design.
 */
#ifndef FCT_CITUS_H
#define FCT_CITUS_H

#include "postgres.h"

typedef enum FctCitusRole
{
	FCT_CITUS_NONE,				/* no citus extension in this database */
	FCT_CITUS_COORDINATOR,		/* Citus's group 0 (also a single-node Citus) */
	FCT_CITUS_WORKER			/* any other group */
} FctCitusRole;

extern FctCitusRole citus_node_role(void);

/*
 * Sends command to every worker with metadata, in the current distributed
 * transaction (two-phase commit at this transaction's commit), as the Citus
 * extension's owner; an unreachable worker is an error here.  Coordinator
 * only.
 */
extern void citus_send_to_workers(const char *command);

/* True when relid is a Citus table: its rows live in shard placements (citus_tables.c). */
extern bool citus_table_has_placements(Oid relid);

/*
 * The distribution column of relid when it is a hash-distributed Citus
 * table, InvalidAttrNumber otherwise (reference tables, local tables, no
 * Citus).
 */
extern AttrNumber citus_distribution_column(Oid relid);

/* The number of rows in the shards of Citus table relid (a count through Citus). */
extern float8 citus_table_rows(Oid relid);

/*
 * CALL fct_migrate on every shard placement of Citus table relid (rel: its
 * qualified, quoted name), one placement per node at a time, committing
 * between rounds (distributed_migrate.c).  Caller: fct_migrate, with SPI
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

#endif							/* FCT_CITUS_H */
