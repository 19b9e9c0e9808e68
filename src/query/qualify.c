/*
 * qualify.c
 *	  Schema-qualified names for the statements fct builds (see query.h).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_operator.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "model/model.h"
#include "query/query.h"

char *
query_ext_name(const char *name)
{
	return quote_qualified_identifier(get_namespace_name(fct_extension_schema()),
									  name);
}

/* OPERATOR(nsp.op): nsp as an identifier, op as it is (never quoted). */
static char *
operator_in(Oid nsp, const char *op)
{
	return psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(nsp)), op);
}

char *
query_ext_operator(const char *op)
{
	return operator_in(fct_extension_schema(), op);
}

char *
query_eq_operator(Oid type)
{
	TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);
	HeapTuple	tp;
	Form_pg_operator op;
	char	   *result;

	if (!OidIsValid(tc->eq_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify an equality operator for type %s",
						format_type_be(type)),
				 errhint("Use a column of a type with a default btree or hash operator class.")));
	tp = SearchSysCache1(OPEROID, ObjectIdGetDatum(tc->eq_opr));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for operator %u", tc->eq_opr);
	op = (Form_pg_operator) GETSTRUCT(tp);
	result = operator_in(op->oprnamespace, NameStr(op->oprname));
	ReleaseSysCache(tp);
	return result;
}
