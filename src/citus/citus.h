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

#endif							/* FCT_CITUS_H */
