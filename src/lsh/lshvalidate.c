/*
 * lshvalidate.c
 *	  The opclass validator of the lsh access method (amvalidate).
 */
#include "postgres.h"

#include "access/amvalidate.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "lsh.h"
#include "utils/syscache.h"

/* ----------------------------------------------------------------
 * amvalidate
 * ----------------------------------------------------------------
 */

bool
lsh_validate(Oid opclassoid)
{
	bool		result = true;
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamilyoid;
	CatCList   *oprlist;
	CatCList   *proclist;
	int			nordering = 0;
	int			nmetric = 0;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamilyoid = classform->opcfamily;

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));

	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		if (oprform->amopstrategy != LSH_DISTANCE_STRATEGY ||
			oprform->amoppurpose != AMOP_ORDER ||
			oprform->amopsortfamily == InvalidOid)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("lsh operator family %u: operator %u must be an ordering operator with strategy %d",
							opfamilyoid, oprform->amopopr, LSH_DISTANCE_STRATEGY)));
			result = false;
		}
		else
			nordering++;
	}

	for (int i = 0; i < proclist->n_members; i++)
	{
		Form_pg_amproc procform = (Form_pg_amproc) GETSTRUCT(&proclist->members[i]->tuple);

		if (procform->amprocnum != LSH_METRIC_PROC ||
			!check_amproc_signature(procform->amproc, INT4OID, true, 1, 1, INTERNALOID))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("lsh operator family %u: support function %d must be a metric function (internal) returning integer",
							opfamilyoid, procform->amprocnum)));
			result = false;
		}
		else
			nmetric++;
	}

	if (nordering != 1 || nmetric != 1)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("lsh operator class %u needs exactly one ordering operator and one metric function",
						opclassoid)));
		result = false;
	}

	ReleaseCatCacheList(proclist);
	ReleaseCatCacheList(oprlist);
	ReleaseSysCache(classtup);
	return result;
}

