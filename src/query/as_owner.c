/*
 * as_owner.c
 *	  fct's own statements on the tables that only fct's functions write.
 *
 * Some of fct's tables (the migration queue, the refresh log, the
 * transformations) may be written by fct's functions only, for any caller
 * that passed the function's own privilege checks: the function writes them
 * as the table's owner, the way PostgreSQL's referential integrity triggers
 * switch to a table's owner.  Such a statement must not run anything the
 * caller chose, so besides naming everything with its schema (query.h) it
 * runs with search_path = pg_catalog, pg_temp, as a SECURITY DEFINER function
 * with a SET clause would: an operator or function that a caller's schema
 * would shadow is never even looked up there.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "query/query.h"

int
query_execute_as_owner(Oid relid, const char *sql, int nargs, Oid *argtypes,
					   Datum *values, const char *nulls, bool read_only)
{
	HeapTuple	tp;
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	int			ret;

	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
	ReleaseSysCache(tp);

	/* an error restores both the user and the setting at abort */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	ret = SPI_execute_with_args(sql, nargs, argtypes, values, nulls,
								read_only, 0);
	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (ret < 0)
		elog(ERROR, "statement on %s failed: %s", get_rel_name(relid),
			 SPI_result_code_string(ret));
	return ret;
}
