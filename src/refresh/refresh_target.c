/*
 * refresh_target.c
 *	  What one fct_refresh call resolves and checks once, before it reads a
 *	  row: the table, column and key (types, equality operators, the
 *	  caller's column privileges), the source query, and whether a fresh
 *	  value may replace a stored one at all (same model and dimension).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "type/embedding.h"
#include "model/model.h"
#include "query/query.h"
#include "refresh/refresh.h"
#include "citus/citus.h"

char *
refresh_key_text(RefreshTarget *t, Datum key)
{
	return OidOutputFunctionCall(t->keyoutput, key);
}

/*
 * Errors unless the source value can replace the stored one: same model and
 * same vector dimension (a refresh stays in the model's space; moving a
 * column to another model is a migration).
 */
void
refresh_check_pair(Oid keyoutput, Datum key, const Embedding *stored,
				   const Embedding *fresh)
{
	if (stored->model_id != fresh->model_id)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("source embedding for key %s is of model \"%s\", the stored one of model \"%s\"",
						OidOutputFunctionCall(keyoutput, key),
						model_display_name(fresh->model_id),
						model_display_name(stored->model_id)),
				 errdetail("fct_refresh replaces values by new values of the same model."),
				 errhint("To move the column to another model, migrate it (fct_migrate).")));
	if (stored->dim != fresh->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("source embedding for key %s has %d dimensions, the stored one %d",
						OidOutputFunctionCall(keyoutput, key), fresh->dim, stored->dim),
				 errhint("The source must produce embeddings of the stored dimension.")));
}

/* Has the current user this privilege on the table or on the column? */
static bool
refresh_column_privilege(Oid relid, AttrNumber attnum, AclMode mode)
{
	return pg_class_aclcheck(relid, GetUserId(), mode) == ACLCHECK_OK ||
		pg_attribute_aclcheck(relid, attnum, GetUserId(), mode) == ACLCHECK_OK;
}

/* Resolve and check the table, its columns and the caller's privileges. */
void
refresh_resolve_target(RefreshTarget *t, Oid relid, const char *col,
					   const char *key)
{
	char		relkind;
	char	   *relname;
	AttrNumber	colnum;
	AttrNumber	keynum;
	Oid			coltype;
	Oid			outfunc;
	bool		isvarlena;

	memset(t, 0, sizeof(*t));
	t->relid = relid;
	relname = get_rel_name(relid);
	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", relname),
				 errhint("fct_refresh updates the rows of a table.")));
	t->qualname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											 relname);

	colnum = get_attnum(relid, col);
	if (colnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", col, relname)));
	keynum = get_attnum(relid, key);
	if (keynum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", key, relname)));
	if (keynum == colnum)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key column and the embedding column must differ")));

	t->embtype = embedding_type_oid();
	t->embarraytype = get_array_type(t->embtype);
	coltype = getBaseType(get_atttype(relid, colnum));
	if (coltype != t->embtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" is of type %s, not embedding",
						col, relname, format_type_be(coltype))));

	t->keytype = get_atttype(relid, keynum);
	t->keyarraytype = get_array_type(t->keytype);
	if (!OidIsValid(t->keyarraytype))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("key column \"%s\" is of type %s, which has no array type",
						key, format_type_be(t->keytype))));
	get_typlenbyvalalign(t->keytype, &t->keylen, &t->keybyval, &t->keyalign);
	getTypeOutputInfo(t->keytype, &outfunc, &isvarlena);
	t->keyoutput = outfunc;

	t->colname = pstrdup(col);
	t->qcol = pstrdup(quote_identifier(col));
	t->qkey = pstrdup(quote_identifier(key));
	t->keynum = keynum;

	/*
	 * A Citus table distributed on the key: every source row meets its
	 * stored row on one shard, so the refresh runs there (refresh_shards.c).
	 * Any other Citus table goes through the coordinator, row batches as on
	 * one server, which is correct but moves every value twice.
	 */
	t->citus = citus_table_has_placements(relid);
	t->on_shards = t->citus && citus_distribution_column(relid) == keynum;
	if (t->citus && !t->on_shards)
		ereport(NOTICE,
				(errmsg("fct_refresh: %s is not distributed on \"%s\": the refresh runs through the coordinator, row by row",
						relname, key),
				 errhint("A table distributed on the key column is refreshed on its shards, in parallel.")));
	t->keyeq = query_eq_operator(t->keytype);
	t->embeq = query_ext_operator("=");

	/*
	 * Exactly what UPDATE tbl SET col = ... WHERE key = ... AND col = ...
	 * needs: UPDATE on col, SELECT on key and col.  Checked up front so that
	 * a refresh that happens to write nothing needs the same rights as one
	 * that writes (and so that only those may add to fct_refresh_log).
	 */
	if (!refresh_column_privilege(relid, colnum, ACL_UPDATE) ||
		!refresh_column_privilege(relid, colnum, ACL_SELECT) ||
		!refresh_column_privilege(relid, keynum, ACL_SELECT))
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(relkind), relname);
}

/*
 * Check that the source query returns (key, embedding) without running it.
 * Its text is spliced into our queries as a subquery, so it must be one
 * SELECT (a trailing semicolon is dropped).
 */
void
refresh_check_source(RefreshTarget *t, const char *source)
{
	char	   *src = pstrdup(source);
	int			len = strlen(src);
	SPIPlanPtr	plan;
	List	   *plansources;
	CachedPlanSource *ps;
	TupleDesc	desc;

	query_check_select(source, "fct_refresh");
	while (len > 0 && (src[len - 1] == ';' || isspace((unsigned char) src[len - 1])))
		src[--len] = '\0';
	t->source = src;

	plan = SPI_prepare(src, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the source query: %s",
			 SPI_result_code_string(SPI_result));
	plansources = SPI_plan_get_plan_sources(plan);
	ps = list_length(plansources) == 1 ? linitial(plansources) : NULL;
	desc = ps ? ps->resultDesc : NULL;
	if (desc == NULL || desc->natts != 2 ||
		ps->commandTag != CMDTAG_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the source of fct_refresh must be one query returning two columns (key, embedding)"),
				 desc ? errdetail("The query returns %d columns.", desc->natts) : 0));
	if (getBaseType(TupleDescAttr(desc, 1)->atttypid) != t->embtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the second column of the source is of type %s, not embedding",
						format_type_be(TupleDescAttr(desc, 1)->atttypid)),
				 errhint("Cast it to embedding in the source query.")));
	SPI_freeplan(plan);
}

/* Schema-qualified, quoted name of fct_refresh_log, and its oid. */
