/*
 * typeoid.c
 *	  The embedding type's oid, for the code that checks a column's or a
 *	  query's type (fitting's pairs query, refresh, migration, label sets).
 *
 * Looked up by name in the extension's schema on each call, not cached: a
 * DROP EXTENSION and CREATE EXTENSION in the same backend makes a new type,
 * and a syscache probe is cheap beside the statements that need it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "model/model.h"
#include "type/embedding.h"
#include "utils/syscache.h"

Oid
embedding_type_oid(void)
{
	Oid			typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										CStringGetDatum("embedding"),
										ObjectIdGetDatum(fct_extension_schema()));

	if (!OidIsValid(typid))
		elog(ERROR, "type embedding not found in the fct extension's schema");
	return typid;
}
