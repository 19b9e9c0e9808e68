/*
 * citus_tables.c
 *	  What Citus's metadata says about a table: is it a Citus table, on which
 *	  column is it distributed, how many rows do its shards hold.
 *
 * Read through SPI from Citus's own catalog tables (pg_dist_partition) and
 * functions, as a user would, so that fct needs no Citus header.  On a
 * server without the citus extension every answer is "not a Citus table".
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "citus/citus.h"

bool
citus_table_has_placements(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	bool		found;

	if (citus_node_role() == FCT_CITUS_NONE)
		return false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT FROM pg_catalog.pg_dist_partition"
							  " WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading pg_dist_partition failed");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

AttrNumber
citus_distribution_column(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	AttrNumber	attnum = InvalidAttrNumber;

	if (citus_node_role() == FCT_CITUS_NONE)
		return InvalidAttrNumber;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* partkey is a Var's node text; Citus's column_to_column_name reads it */
	if (SPI_execute_with_args("SELECT pg_catalog.column_to_column_name(logicalrelid, partkey)"
							  " FROM pg_catalog.pg_dist_partition"
							  " WHERE logicalrelid OPERATOR(pg_catalog.=) $1"
							  " AND partmethod OPERATOR(pg_catalog.=) 'h'",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading pg_dist_partition failed");
	if (SPI_processed == 1)
	{
		char	   *col = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (col != NULL)
			attnum = get_attnum(relid, col);
	}
	SPI_finish();
	return attnum;
}

float8
citus_table_rows(Oid relid)
{
	char	   *sql;
	bool		isnull;
	float8		rows;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* count(*) runs on every shard at once; estimates would need a round trip per shard too */
	sql = psprintf("SELECT pg_catalog.count(*)::pg_catalog.float8 FROM %s",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											  get_rel_name(relid)));
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "counting the rows of %s failed", get_rel_name(relid));
	rows = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return rows;
}
