/*
 * citus_api.c
 *	  The Citus functions fct calls, looked up by name in the loaded library.
 *
 * Linking against Citus would make fct need it at build and load time, and
 * Citus is an optional companion.  Citus exports its C functions (PGXS
 * builds them with default visibility), so they are found with
 * load_external_function, which returns the already loaded library's symbol
 * (shared_preload_libraries loaded it in the postmaster).  The functions are
 * the ones Citus itself uses to propagate its metadata to its workers
 * (metadata_sync.c): they are part of how Citus keeps nodes consistent, and
 * their signatures have been stable across Citus 11, 12 and 13.
 */
#include "postgres.h"

#include "commands/extension.h"
#include "fmgr.h"

#include "citus/citus.h"

typedef int32 (*GetLocalGroupId_fn) (void);
typedef void (*SendCommand_fn) (const char *command);

static GetLocalGroupId_fn citus_get_local_group_id = NULL;
static SendCommand_fn citus_send_via_superuser = NULL;

/* Group id of the coordinator in pg_dist_node (Citus's COORDINATOR_GROUP_ID). */
#define CITUS_COORDINATOR_GROUP_ID 0

static void
citus_resolve(void)
{
	if (citus_get_local_group_id != NULL)
		return;
	citus_get_local_group_id = (GetLocalGroupId_fn)
		load_external_function("$libdir/citus", "GetLocalGroupId", true, NULL);
	citus_send_via_superuser = (SendCommand_fn)
		load_external_function("$libdir/citus",
							   "SendCommandToWorkersWithMetadataViaSuperUser",
							   true, NULL);
}

FctCitusRole
citus_node_role(void)
{
	if (!OidIsValid(get_extension_oid("citus", true)))
		return FCT_CITUS_NONE;
	citus_resolve();
	return citus_get_local_group_id() == CITUS_COORDINATOR_GROUP_ID ?
		FCT_CITUS_COORDINATOR : FCT_CITUS_WORKER;
}

void
citus_send_to_workers(const char *command)
{
	Assert(citus_node_role() == FCT_CITUS_COORDINATOR);
	citus_resolve();
	citus_send_via_superuser(command);
}
