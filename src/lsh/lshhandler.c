/*
 * lshhandler.c
 *	  The lsh access method's handler and its opclasses' support functions,
 *	  and the subsystem's start-up: the top of src/lsh, the one file that
 *	  names every callback (build, insert, scan, vacuum, cost, validate), so
 *	  that the files it names never call back up into it.
 */
#include "postgres.h"

#include "access/amapi.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "lsh.h"

/* At library load (fct.c): reloptions and GUCs, then the pending-insert buffer's callbacks. */
void
lsh_init(void)
{
	lsh_options_init();
	lsh_pending_init();
}

PG_FUNCTION_INFO_V1(fct_lsh_handler);
Datum
fct_lsh_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;
	amroutine->amsupport = LSH_NPROCS;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = false;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = true;
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = lsh_build;
	amroutine->ambuildempty = lsh_buildempty;
	amroutine->aminsert = lsh_insert;
	amroutine->ambulkdelete = lsh_bulkdelete;
	amroutine->amvacuumcleanup = lsh_vacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = lsh_costestimate;
	amroutine->amoptions = lsh_options;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = lsh_buildphasename;
	amroutine->amvalidate = lsh_validate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = lsh_beginscan;
	amroutine->amrescan = lsh_rescan;
	amroutine->amgettuple = lsh_gettuple;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = lsh_endscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}

/* Support function 1 of each opclass: which metric it orders by. */
PG_FUNCTION_INFO_V1(fct_lsh_metric_ip);
Datum
fct_lsh_metric_ip(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(LSH_METRIC_IP);
}

PG_FUNCTION_INFO_V1(fct_lsh_metric_cosine);
Datum
fct_lsh_metric_cosine(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(LSH_METRIC_COSINE);
}

PG_FUNCTION_INFO_V1(fct_lsh_metric_l2);
Datum
fct_lsh_metric_l2(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(LSH_METRIC_L2);
}
