/*
 * ordering.c
 *	  Let the plain new-model query use the index built for it.
 *
 * After CREATE INDEX ON items USING lsh (fct_upgrade(emb, 'clip-v2')
 * embedding_cosine_ops), users write
 *
 *		SELECT ... ORDER BY emb <=> 'clip-v2:[...]' LIMIT 10
 *
 * and the planner can only match an index to an ordering expression equal to
 * the index's, fct_upgrade(emb, 'clip-v2') <=> ..., so the plain form ran as
 * a sequential scan and a sort.  Both orderings are equal by definition: the
 * operator upgrades the older operand on the fly with the same function
 * (operators.c), and fct_upgrade is the identity on a row already in the
 * query's model.  So before the standard planner runs, a sort key of the form
 *
 *		col <op> <value of model M>		(<op>: <->, <#>, <=>; either side)
 *
 * is rewritten to fct_upgrade(col, M) <op> <value> when col's table has an
 * index on exactly fct_upgrade(col, M) whose operator class orders by <op>;
 * the planner then weighs that index as for the explicit form, and EXPLAIN
 * shows it.
 *
 * Why the rewrite never changes an answer: the index is valid and has no
 * predicate, so every row of the table has been through fct_upgrade(col, M)
 * without error (a row whose model has no path to M could not be in the
 * table), and for such a row col <op> q and fct_upgrade(col, M) <op> q are
 * the same computation.  A NULL is NULL in both.  What is not rewritten:
 *
 *	 - a query value naming no model (a bare '[...]' meets every row in that
 *	   row's own space, which is another ordering);
 *	 - a query value of another model than the index's, older or newer: the
 *	   plain form compares each row in the newer of the two models, which is
 *	   not the index's order (the explicit form, fct_upgrade(col, M) <op>
 *	   'older:[...]', uses the index, and the operator upgrades the query);
 *	 - a parameter whose value the planner does not know: a prepared
 *	   statement's custom plans see it (the rewrite applies), a generic plan
 *	   does not (plan_cache_mode = force_generic_plan keeps the plain form).
 *
 * The hook is installed when the library loads, which the query's embedding
 * literal itself causes (its input function is fct's) before planning; with
 * no fct in the database (no operator is fct's), or fct.upgrade_orderings
 * off, it does nothing.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "model/model.h"
#include "type/embedding.h"
#include "upgrade/ordering.h"
#include "upgrade/transform.h"

/* The C functions behind the operators and fct_upgrade (operators.c, transform_sql.c). */
extern Datum fct_l2_distance(PG_FUNCTION_ARGS);
extern Datum fct_negative_inner_product(PG_FUNCTION_ARGS);
extern Datum fct_cosine_distance(PG_FUNCTION_ARGS);
extern Datum fct_upgrade(PG_FUNCTION_ARGS);
extern Datum fct_upgrade_by_id(PG_FUNCTION_ARGS);

static planner_hook_type prev_planner_hook = NULL;
static bool upgrade_orderings = true;

/* The C function a function runs (fmgr_sql and the like for other languages). */
static PGFunction
c_function(Oid funcid)
{
	FmgrInfo	flinfo;

	fmgr_info(funcid, &flinfo);
	return flinfo.fn_addr;
}

static bool
is_distance_function(Oid funcid)
{
	PGFunction	f = c_function(funcid);

	return f == fct_l2_distance || f == fct_negative_inner_product ||
		f == fct_cosine_distance;
}

/*
 * The model of a query operand known at planning time: a Const, or a
 * parameter whose value a custom plan is built for.  FCT_NO_MODEL when
 * unknown, NULL or naming no model.
 */
static int32
operand_model(Node *node, ParamListInfo params)
{
	Datum		value;

	if (IsA(node, Const))
	{
		if (((Const *) node)->constisnull)
			return FCT_NO_MODEL;
		value = ((Const *) node)->constvalue;
	}
	else if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN &&
			 params != NULL)
	{
		Param	   *p = (Param *) node;
		ParamExternData workspace;
		ParamExternData *prm;

		if (p->paramid <= 0 || p->paramid > params->numParams)
			return FCT_NO_MODEL;
		prm = params->paramFetch != NULL ?
			params->paramFetch(params, p->paramid, false, &workspace) :
			&params->params[p->paramid - 1];
		/* only a value this plan is made for (a custom plan) */
		if (prm == NULL || prm->isnull || !(prm->pflags & PARAM_FLAG_CONST) ||
			prm->ptype != p->paramtype)
			return FCT_NO_MODEL;
		value = prm->value;
	}
	else
		return FCT_NO_MODEL;
	return DatumGetEmbeddingP(value)->model_id;
}

/*
 * If expr is fct_upgrade(<column attnum>, <model>) (with InvalidAttrNumber:
 * of anything), the model's id; else FCT_NO_MODEL.
 */
static int32
upgrade_expr_model(Node *expr, AttrNumber attnum)
{
	FuncExpr   *f = (FuncExpr *) expr;
	PGFunction	fn;
	Var		   *v;
	Const	   *m;

	if (!IsA(expr, FuncExpr) || list_length(f->args) != 2)
		return FCT_NO_MODEL;
	v = linitial(f->args);
	m = lsecond(f->args);
	if ((attnum != InvalidAttrNumber && (!IsA(v, Var) || v->varattno != attnum)) ||
		!IsA(m, Const) || m->constisnull)
		return FCT_NO_MODEL;
	fn = c_function(f->funcid);
	if (fn == fct_upgrade && m->consttype == TEXTOID)
	{
		text	   *name = DatumGetTextPP(m->constvalue);

		return model_id_for_name(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	}
	if (fn == fct_upgrade_by_id && m->consttype == INT4OID)
		return DatumGetInt32(m->constvalue);
	return FCT_NO_MODEL;
}

/*
 * An index of relid on exactly fct_upgrade(col, model) whose first column's
 * operator family orders by opno, valid and without a predicate: its expression
 * (Vars of varno 1), or NULL.
 */
static Node *
find_upgrade_index(Oid relid, AttrNumber attnum, int32 model, Oid opno)
{
	Relation	rel = table_open(relid, NoLock);	/* locked by the parser */
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Node	   *found = NULL;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index index = idx->rd_index;

		if (index->indisvalid && index->indkey.values[0] == 0 &&
			RelationGetIndexPredicate(idx) == NIL &&
			SearchSysCacheExists3(AMOPOPID, ObjectIdGetDatum(opno),
								  CharGetDatum(AMOP_ORDER),
								  ObjectIdGetDatum(idx->rd_opfamily[0])))
		{
			List	   *exprs = RelationGetIndexExpressions(idx);

			if (exprs != NIL && upgrade_expr_model(linitial(exprs), attnum) == model)
				found = linitial(exprs);
		}
		index_close(idx, AccessShareLock);
		if (found)
			break;
	}
	list_free(indexes);
	table_close(rel, NoLock);
	return found;
}

/*
 * fct_upgrade(value, M) <op> ... for a sort key fct_upgrade(x, M) <op> value
 * whose value is of a model older than M: the operator would upgrade the
 * value to M anyway, and an index on fct_upgrade(x, M) takes only queries of
 * M.  The planner folds fct_upgrade of a constant into a constant.
 */
static Node *
upgrade_value_to(FuncExpr *upgrade, int32 model, Node *value,
				 ParamListInfo params)
{
	int32		value_model = operand_model(value, params);
	FuncExpr   *f;

	if (value_model == FCT_NO_MODEL || value_model == model ||
		transform_path(value_model, model) == NULL)
		return value;
	f = (FuncExpr *) copyObject(upgrade);
	linitial(f->args) = value;
	return (Node *) f;
}

/* Rewrite one sort key if it qualifies; see the file's comment. */
static void
rewrite_sort_key(Query *q, TargetEntry *tle, ParamListInfo params)
{
	OpExpr	   *op = (OpExpr *) tle->expr;
	Node	   *left;
	Node	   *right;
	Node	   *key;
	Node	   *value;
	Var		   *var;
	RangeTblEntry *rte;
	int32		model;
	Node	   *index_expr;
	FuncExpr   *upgraded;

	if (!IsA(op, OpExpr) || list_length(op->args) != 2)
		return;
	left = linitial(op->args);
	right = lsecond(op->args);
	if (IsA(left, Var) || IsA(left, FuncExpr))
	{
		key = left;
		value = right;
	}
	else if (IsA(right, Var) || IsA(right, FuncExpr))
	{
		key = right;
		value = left;
	}
	else
		return;
	if (exprType(value) != exprType(key) || contain_var_clause(value))
		return;
	set_opfuncid(op);
	if (!is_distance_function(op->opfuncid))
		return;

	/* the explicit form, fct_upgrade(x, M) <op> value of an older model */
	if (IsA(key, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) key;

		model = upgrade_expr_model((Node *) f, InvalidAttrNumber);
		if (model == FCT_NO_MODEL)
			return;
		value = upgrade_value_to(f, model, value, params);
		if (value != left && value != right)
		{
			op = (OpExpr *) copyObject(op);
			op->args = list_make2(key, value);
			tle->expr = (Expr *) op;
		}
		return;
	}

	/* the plain form, col <op> value of model M */
	var = (Var *) key;
	if (var->varlevelsup != 0)
		return;
	rte = rt_fetch(var->varno, q->rtable);
	if (rte->rtekind != RTE_RELATION ||
		(rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_PARTITIONED_TABLE))
		return;
	model = operand_model(value, params);
	if (model == FCT_NO_MODEL)
		return;
	index_expr = find_upgrade_index(rte->relid, var->varattno, model, op->opno);
	if (index_expr == NULL)
		return;

	/* fct_upgrade(col, M) <op> value: the index's expression on this query's Var */
	upgraded = (FuncExpr *) copyObject(index_expr);
	linitial(upgraded->args) = copyObject(var);
	op = (OpExpr *) copyObject(op);
	op->args = list_make2(upgraded, value);
	tle->expr = (Expr *) op;
}

static bool rewrite_walker(Node *node, ParamListInfo params);

static void
rewrite_query(Query *q, ParamListInfo params)
{
	ListCell   *lc;

	if (q->commandType == CMD_SELECT)
		foreach(lc, q->sortClause)
		{
			SortGroupClause *sgc = lfirst(lc);

			rewrite_sort_key(q, get_sortgroupclause_tle(sgc, q->targetList),
							 params);
		}
	(void) query_tree_walker(q, rewrite_walker, params, 0);
}

static bool
rewrite_walker(Node *node, ParamListInfo params)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		rewrite_query((Query *) node, params);
		return false;
	}
	return expression_tree_walker(node, rewrite_walker, params);
}

/* Is there a sort key at all, anywhere?  The cheap test before any catalog look-up. */
static bool
has_sort_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;

		if (q->sortClause != NIL)
			return true;
		return query_tree_walker(q, has_sort_walker, context, 0);
	}
	return expression_tree_walker(node, has_sort_walker, context);
}

static PlannedStmt *
ordering_planner(Query *parse, const char *query_string, int cursorOptions,
				 ParamListInfo boundParams)
{
	/*
	 * No catalog look-up unless a sort key is an operator between a column
	 * and something else; and the operator's function is fct's only where
	 * fct is installed.
	 */
	if (upgrade_orderings && has_sort_walker((Node *) parse, NULL))
		rewrite_query(parse, boundParams);
	if (prev_planner_hook)
		return prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

void
ordering_init(void)
{
	DefineCustomBoolVariable("fct.upgrade_orderings",
							 "Serve ORDER BY col <op> 'M:[...]' from an index on fct_upgrade(col, 'M').",
							 "The two orderings are equal; off keeps the query as written.",
							 &upgrade_orderings,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	prev_planner_hook = planner_hook;
	planner_hook = ordering_planner;
}
