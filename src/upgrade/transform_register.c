/*
 * transform_register.c
 *	  Registering a transformation: the caller's privilege, a compatible pair
 *	  of models, the checks that keep the upgrade graph a multitree (no cycle,
 *	  at most one path between two models), the insert into
 *	  fct_transformations as its owner; the trigger that lets no other row in;
 *	  and the SQL function fct_register_transformation.
 *
 * Why the graph checks: transformations and models never change, so as long
 * as the path between two models is unique, the path from a model to another
 * never changes once it exists, and neither does the result of an upgrade:
 * fct_upgrade is IMMUTABLE and may serve in index expressions.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "model/model.h"
#include "query/query.h"
#include "upgrade/transform_internal.h"

/* True while transform_register_net inserts its row (the insert guard). */
static bool transform_registering = false;

/* Whether a path leads from a to b over the given edges. */
static bool
edges_reach(int m, const int32 *f, const int32 *t, int32 a, int32 b)
{
	List	   *seen = list_make1_int(a);
	List	   *frontier = list_make1_int(a);

	if (a == b)
		return true;
	while (frontier != NIL)
	{
		List	   *next = NIL;
		ListCell   *lc;

		foreach(lc, frontier)
		{
			int32		x = lfirst_int(lc);
			int			i;

			for (i = 0; i < m; i++)
			{
				if (f[i] != x || list_member_int(seen, t[i]))
					continue;
				if (t[i] == b)
					return true;
				seen = lappend_int(seen, t[i]);
				next = lappend_int(next, t[i]);
			}
		}
		frontier = next;
	}
	return false;
}

/* The caller must be allowed to execute fct_register_transformation. */
static void
check_register_privilege(void)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, JSONBOID};
	char	   *nspname = get_namespace_name(fct_extension_schema());
	Oid			fn;

	fn = LookupFuncName(list_make2(makeString(nspname),
								   makeString("fct_register_transformation")),
						3, argtypes, true);
	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function fct_register_transformation(text, text, jsonb) of extension \"fct\" not found")));
	if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to register a transformation"),
				 errdetail("Registering needs the privilege to execute fct_register_transformation(text, text, jsonb)."),
				 errhint("The owner of extension \"fct\" can GRANT EXECUTE on it.")));
}

static int32
register_net(TransformNet *net, const char *origin, Jsonb *metrics)
{
	const FctModel *from = model_by_id(net->from_model);
	const FctModel *to = model_by_id(net->to_model);
	int32	   *f;
	int32	   *t;
	int32	   *ids;
	int			m;
	int			i;
	List	   *anc = NIL;
	List	   *desc = NIL;
	ListCell   *la;
	ListCell   *ld;
	char	   *sql;
	Oid			argtypes[6] = {INT4OID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, JSONBOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;
	bool		isnull;
	int32		id;

	if (strcmp(origin, "imported") != 0 && strcmp(origin, "fitted") != 0)
		elog(ERROR, "invalid transformation origin \"%s\"", origin);
	check_register_privilege();

	/*
	 * Registrations are serialised (the lock conflicts with itself), so the
	 * graph checks below see every committed transformation and no other can
	 * slip in before ours commits.
	 */
	LockRelationOid(transform_catalog_relid(), ShareRowExclusiveLock);
	m = transform_read_edges(&f, &t, &ids);

	for (i = 0; i < m; i++)
		if (f[i] == from->id && t[i] == to->id)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("transformation from \"%s\" to \"%s\" already exists",
							from->name, to->name),
					 errdetail("Registered transformations are immutable: fct_upgrade results may be stored in indexes."),
					 errhint("Register a new target model for a different transformation.")));
	if (edges_reach(m, f, t, to->id, from->id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("transformation from \"%s\" to \"%s\" would close a cycle",
						from->name, to->name),
				 errdetail("An upgrade path already leads from \"%s\" to \"%s\".",
						   to->name, from->name),
				 errhint("Upgrades go one way: register a new target model instead.")));

	/* Models from which "from" is reachable, and those reachable from "to". */
	anc = list_make1_int(from->id);
	desc = list_make1_int(to->id);
	for (i = 0; i < m; i++)
	{
		if (!list_member_int(anc, f[i]) && edges_reach(m, f, t, f[i], from->id))
			anc = lappend_int(anc, f[i]);
		if (!list_member_int(desc, t[i]) && edges_reach(m, f, t, to->id, t[i]))
			desc = lappend_int(desc, t[i]);
	}
	foreach(la, anc)
	{
		foreach(ld, desc)
		{
			int32		x = lfirst_int(la);
			int32		y = lfirst_int(ld);

			if (edges_reach(m, f, t, x, y))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
						 errmsg("transformation from \"%s\" to \"%s\" would open a second upgrade path from \"%s\" to \"%s\"",
								from->name, to->name,
								model_display_name(x), model_display_name(y)),
						 errdetail("fct_upgrade is IMMUTABLE: the path between two models must never change once it exists."),
						 errhint("Register a new target model instead.")));
		}
	}
	/* Insert as the catalog's owner (the caller's privilege was checked). */
	sql = psprintf("INSERT INTO %s "
				   "(from_model, to_model, architecture, weights, origin, metrics) "
				   "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
				   query_ext_name("fct_transformations"));
	values[0] = Int32GetDatum(from->id);
	values[1] = Int32GetDatum(to->id);
	values[2] = CStringGetTextDatum(net_architecture(net));
	values[3] = PointerGetDatum(net_serialize(net));
	values[4] = CStringGetTextDatum(origin);
	if (metrics != NULL)
		values[5] = JsonbPGetDatum(metrics);
	else
	{
		values[5] = (Datum) 0;
		nulls[5] = 'n';
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * No row limit: with one, the executor stops ModifyTable early and the
	 * AFTER STATEMENT trigger (the cache invalidation) never fires.  The
	 * insert guard lets this one row in (an error resets the flag).
	 */
	transform_registering = true;
	PG_TRY();
	{
		rc = query_execute_as_owner(transform_catalog_relid(), sql, 6, argtypes,
									values, nulls, false);
	}
	PG_FINALLY();
	{
		transform_registering = false;
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "inserting into fct_transformations failed: %s",
			 SPI_result_code_string(rc));
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return id;
}

/*
 * fct_transformations_insert_guard: BEFORE INSERT row trigger.
 *
 * The graph checks (no cycle, no second path, shapes against both models)
 * are made by registration, which needs every committed edge; a row written
 * into the table directly, even by its owner, would bypass them and break
 * the contract that makes fct_upgrade IMMUTABLE.  So the only rows let in are
 * the one transform_register_net is inserting, and the rows of a restore:
 * while check_function_bodies is off (pg_dump and pg_restore set it first,
 * see resolve_model in embedding.c), the rows come from a database where
 * they were registered, and their models may not be restored yet (the data
 * of the extension's tables loads in any order under pg_restore -j, which is
 * also why the table has no foreign key to fct_models).
 */
PG_FUNCTION_INFO_V1(fct_transformations_insert_guard);
Datum
fct_transformations_insert_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_transformations_insert_guard: not called as a BEFORE INSERT row trigger")));

	if (!transform_registering && check_function_bodies)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert into fct_transformations directly"),
				 errdetail("Registration checks the upgrade graph (no cycle, no second path) and the shapes: fct_upgrade is IMMUTABLE only because of them."),
				 errhint("Use fct_register_transformation or fct_fit_transformation.")));

	return PointerGetDatum(trigdata->tg_trigtuple);
}

static void
check_pair(const FctModel *from, const FctModel *to)
{
	if (from->id == to->id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transformation needs two different models, got \"%s\" twice",
						from->name)));
	if (to->side_dim != 0 && to->side_dim != from->side_dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg_plural("model \"%s\" has %d side-information dimension, model \"%s\" has %d",
							   "model \"%s\" has %d side-information dimensions, model \"%s\" has %d",
							   to->side_dim,
							   to->name, to->side_dim, from->name, from->side_dim),
				 errdetail("An upgrade keeps the side-information, so the target model must have the same side-information dimension, or none."),
				 from->side_dim > 0 ?
				 errhint("Register the target model with side_dim => %d, or 0.", from->side_dim) :
				 errhint("Register the target model with side_dim => 0.")));
}

void
transform_check_registrable(int32 from_model, int32 to_model)
{
	check_register_privilege();
	check_pair(model_by_id(from_model), model_by_id(to_model));
}

int32
transform_register(int32 from_model, int32 to_model, Jsonb *spec,
				   const char *origin, Jsonb *metrics)
{
	TransformNet *net;

	check_pair(model_by_id(from_model), model_by_id(to_model));
	net = transform_parse_spec(spec, from_model, to_model);
	return register_net(net, origin, metrics);
}

int32
transform_register_net(TransformNet *net, const char *origin, Jsonb *metrics)
{
	check_pair(model_by_id(net->from_model), model_by_id(net->to_model));
	net->old_dim = model_by_id(net->from_model)->dim;
	net->side_dim = model_by_id(net->from_model)->side_dim;
	net->new_dim = model_by_id(net->to_model)->dim;
	net_validate(net);
	return register_net(net, origin, metrics);
}

PG_FUNCTION_INFO_V1(fct_register_transformation);
Datum
fct_register_transformation(PG_FUNCTION_ARGS)
{
	char	   *from_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *to_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Jsonb	   *spec = PG_GETARG_JSONB_P(2);
	const FctModel *from = model_by_name(from_name);
	int32		from_id = from->id;
	int32		to_id = model_by_name(to_name)->id;

	PG_RETURN_INT32(transform_register(from_id, to_id, spec, "imported", NULL));
}
