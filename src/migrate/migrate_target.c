/*
 * migrate_target.c
 *	  What a migration works on: resolving (table, column, target model) and
 *	  checking what can be checked without reading the table; the census of
 *	  the rows' models (a path from each to the target, checked before
 *	  anything is written); the SQL function fct_model_census.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "type/embedding.h"
#include "migrate/migrate.h"
#include "model/model.h"
#include "query/query.h"
#include "upgrade/transform.h"

PG_FUNCTION_INFO_V1(fct_model_census);

void
migrate_resolve(Oid relid, const char *attname, const char *to_model,
				MigrateTarget *target)
{
	char		relkind = get_rel_relkind(relid);
	char	   *relname = get_rel_name(relid);
	char	   *nspname;
	HeapTuple	tp;
	Form_pg_attribute att;
	Oid			embtype;

	if (relkind == '\0' || relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	nspname = get_namespace_name(get_rel_namespace(relid));
	if (relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", relname),
				 relkind == RELKIND_PARTITIONED_TABLE ?
				 errdetail("A migration works on a table's heap blocks, and a partitioned table has none.") : 0,
				 relkind == RELKIND_PARTITIONED_TABLE ?
				 errhint("Migrate each partition.") : 0));

	tp = SearchSysCacheAttName(relid, attname);
	if (!HeapTupleIsValid(tp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						attname, relname)));
	att = (Form_pg_attribute) GETSTRUCT(tp);
	embtype = embedding_type_oid();
	if (att->attnum <= 0 || att->atttypid != embtype)
	{
		Oid			typid = att->atttypid;

		ReleaseSysCache(tp);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" is of type %s, not embedding",
						attname, relname, format_type_be(typid)),
				 errhint("Only embedding columns hold values of a model that can be upgraded.")));
	}
	target->relid = relid;
	target->attnum = att->attnum;
	target->typid = att->atttypid;
	ReleaseSysCache(tp);

	target->relname = quote_qualified_identifier(nspname, relname);
	target->colname = pstrdup(quote_identifier(attname));
	target->attname = pstrdup(attname);
	target->display = psprintf("%s.%s", target->relname, target->colname);
	if (to_model != NULL)
	{
		const FctModel *model = model_by_name(to_model);

		target->to_model = model->id;
		target->to_model_name = pstrdup(model->name);
	}
	else
	{
		target->to_model = FCT_NO_MODEL;
		target->to_model_name = NULL;
	}
}

/*
 * The check of one line of a census: rows of target's column in model id
 * (not the target) must have a path to the target.  Errors before anything
 * is written otherwise; shared with a Citus table's census, made of its
 * shards' (migrate/migrate_distributed.c).
 */
void
migrate_census_check(const MigrateTarget *t, int32 id, int64 rows)
{
	const FctModel *from;

	if (id == FCT_NO_MODEL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg_plural("%lld row of %s holds an embedding that names no model",
							   "%lld rows of %s hold embeddings that name no model",
							   (unsigned long) rows,
							   (long long) rows, t->display),
				 errdetail("An embedding without a model has no path to model \"%s\".",
						   t->to_model_name),
				 errhint("Give those rows a model (or set them to NULL) before migrating.")));
	from = model_by_id(id);
	if (transform_path(from->id, t->to_model) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no upgrade path from model \"%s\" to model \"%s\"",
						from->name, t->to_model_name),
				 errdetail_plural("%lld row of %s is in model \"%s\".",
								  "%lld rows of %s are in model \"%s\".",
								  (unsigned long) rows,
								  (long long) rows, t->display, from->name),
				 errhint("Register a transformation with fct_register_transformation, or fit one with fct_fit_transformation.")));
}

/*
 * Census of the rows that are not in the target model: their number, and
 * (checked here, before anything is written) a path from each of their
 * models to the target.  Grouped by model id (an integer read from the
 * value's header), so it costs little more than a scan.  *total (if not
 * NULL) is set to the number of non-null values.
 */
int64
migrate_census(const MigrateTarget *t, int64 *total, List **models)
{
	int64		left = 0;
	int64		all = 0;
	int			ret;
	uint64		i;

	ret = SPI_execute(psprintf("SELECT %s(%s), pg_catalog.count(*) FROM %s "
							   "WHERE %s IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
							   query_ext_name("_fct_migrate_model_id"), t->colname,
							   t->relname, t->colname),
					  false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "census of %s failed: %s", t->display,
			 SPI_result_code_string(ret));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int32		id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		int64		rows = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));

		all += rows;
		if (id == t->to_model)
			continue;
		migrate_census_check(t, id, rows);
		left += rows;
		if (models)
			*models = lappend_int(*models, id);
	}
	SPI_freetuptable(SPI_tuptable);
	if (total)
		*total = all;
	return left;
}

/*
 * fct_model_census(tbl regclass, col name) -> table (model text, rows bigint)
 *
 * How many rows hold an embedding of each model (NULL: rows whose column is
 * NULL; "(no model)": embeddings that name no model), most rows first.  Read
 * with the caller's rights.
 */
Datum
fct_model_census(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MigrateTarget target;
	char	   *sql;
	int			ret;
	uint64		i;

	InitMaterializedSRF(fcinfo, 0);
	migrate_resolve(PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)), NULL,
					&target);
	sql = psprintf("SELECT CASE WHEN %s IS NOT NULL THEN coalesce(%s(%s), '(no model)') END AS model, "
				   "pg_catalog.count(*) AS rows "
				   "FROM %s GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST",
				   target.colname, query_ext_name("fct_model"), target.colname,
				   target.relname);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute(sql, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "census of %s failed: %s", target.display,
			 SPI_result_code_string(ret));
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		values[2];
		bool		nulls[2];

		values[0] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  1, &nulls[0]);
		values[1] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  2, &nulls[1]);
		/* the text datum lives in SPI memory: the tuplestore copies it */
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
