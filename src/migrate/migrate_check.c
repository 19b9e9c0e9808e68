/*
 * migrate_check.c
 *	  What a migration checks before it writes anything: that the table will
 *	  take rows upgraded into the target model.
 *
 * A migration writes each row back as UPDATE t SET col = <upgraded value>,
 * so everything that reads the column on a write must accept a value of the
 * target model: the column's typmod (embedding(n) checks the dimension of
 * every value written), the stored generated columns computed from it, the
 * table's CHECK constraints, and its indexes (their
 * expressions and predicates, and an lsh index's rule of one model per
 * index).  Finding out at the first write means failing after the census, in
 * the middle of a queued job, with an error that names none of these.  So the
 * checks run first, on the declaration (the typmod) and on one row of every
 * model present, upgraded in memory: each constraint and index is evaluated
 * on it exactly as the write would evaluate it, in a subtransaction, and a
 * failure is reported naming the object and saying what to run.
 *
 * One sample per model catches what depends on the model (dimensions, a path
 * between models, the space an index holds), which is what an upgrade
 * changes; a constraint that depends on each row's numbers may still reject
 * a later row, and then the write fails as it would without these checks,
 * losing nothing (every batch commits or not at all).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "optimizer/optimizer.h"
#include "storage/itemptr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "migrate/migrate.h"
#include "model/model.h"
#include "query/query.h"
#include "type/embedding.h"
#include "upgrade/transform.h"

/* One row of a model present, as stored and as the migration would write it. */
typedef struct Sample
{
	const FctModel *from;
	TupleTableSlot *old;
	TupleTableSlot *new;
	Bitmapset  *changed;		/* attnums (offset by FirstLowInvalidHeapAttributeNumber)
								 * whose value the write changes: the column, and
								 * stored generated columns computed from it */
} Sample;

/*
 * The typmod: embedding(n) refuses any value of another dimension on
 * assignment.  It is a check of what is written, not a property of the
 * stored values (a model carries its own dimension), so a column meant to
 * live through upgrades to models of other dimensions has none; dropping it
 * is a catalog change that rewrites nothing.
 */
static void
check_typmod(const MigrateTarget *t, const FctModel *to)
{
	Oid			typid;
	int32		typmod;
	Oid			collid;

	get_atttypetypmodcoll(t->relid, t->attnum, &typid, &typmod, &collid);

	if (typmod >= 0 && typmod != to->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column %s is declared embedding(%d), and model \"%s\" has %d dimensions",
						t->display, typmod, to->name, to->dim),
				 errdetail("The typmod checks the dimension of every value written; the migration would write values of %d dimensions. Nothing was written.",
						   to->dim),
				 errhint("Drop the typmod (a catalog change that rewrites nothing): ALTER TABLE %s ALTER COLUMN %s TYPE %s;",
						 t->relname, t->colname,
						 format_type_be_qualified(t->typid))));
}

/* One stored row of model `from`, and the same row upgraded; false if none is left. */
static bool
sample_row(Relation rel, const MigrateTarget *t, const FctModel *from,
		   Sample *s)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(from->id);
	bool		isnull;
	ItemPointerData tid;
	Snapshot	snap;
	bool		found;
	TupleDesc	desc = RelationGetDescr(rel);
	Embedding  *old;

	if (SPI_execute_with_args(psprintf("SELECT ctid FROM ONLY %s WHERE %s(%s) " SQL_EQ " $1 LIMIT 1",
									   t->relname, query_ext_name("_fct_migrate_model_id"),
									   t->colname),
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading a row of %s failed", t->display);
	if (SPI_processed == 0)
		return false;			/* changed since the census */
	tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);

	/*
	 * The version of the row the SELECT saw (its snapshot, the active one):
	 * with the latest snapshot a row updated meanwhile by a concurrent
	 * writer was not found, and its model went unchecked (TAP 044 saw
	 * fct_migrate_start queue a job it should have refused).
	 */
	s->from = from;
	s->old = table_slot_create(rel, NULL);
	snap = RegisterSnapshot(GetActiveSnapshot());
	found = table_tuple_fetch_row_version(rel, &tid, snap, s->old);
	UnregisterSnapshot(snap);
	if (found)
		slot_getallattrs(s->old);
	if (!found || s->old->tts_isnull[t->attnum - 1])
	{
		ExecDropSingleTupleTableSlot(s->old);	/* it holds the table's TupleDesc */
		s->old = NULL;
		return false;
	}

	s->new = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ExecClearTuple(s->new);
	memcpy(s->new->tts_values, s->old->tts_values, sizeof(Datum) * desc->natts);
	memcpy(s->new->tts_isnull, s->old->tts_isnull, sizeof(bool) * desc->natts);
	old = DatumGetEmbeddingP(s->old->tts_values[t->attnum - 1]);
	s->new->tts_values[t->attnum - 1] =
		PointerGetDatum(transform_upgrade(old, t->to_model));
	ExecStoreVirtualTuple(s->new);
	s->changed = bms_make_singleton(t->attnum - FirstLowInvalidHeapAttributeNumber);
	return true;
}

/* Does expression (Vars of varno 1) read a column of changed (or the whole row)? */
static bool
expr_reads(Node *expr, Bitmapset *changed)
{
	Bitmapset  *atts = NULL;

	pull_varattnos(expr, 1, &atts);
	return bms_overlap(atts, changed) ||
		bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, atts);
}

/*
 * Run fn(arg) in a subtransaction; on an error, return a copy of it (the
 * caller reports it in its own words) and leave everything as it was.
 */
static ErrorData *
try_in_subxact(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

/* ---------------------------------------------------------------------
 * Stored generated columns
 * ---------------------------------------------------------------------
 */

typedef struct GeneratedEval
{
	Expr	   *expr;
	TupleTableSlot *slot;
	Form_pg_attribute att;
	Datum		value;
	bool		isnull;
} GeneratedEval;

static void
generated_eval(void *arg)
{
	GeneratedEval *g = arg;
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	ExprState  *state = ExecPrepareExpr(g->expr, estate);

	econtext->ecxt_scantuple = g->slot;
	g->value = ExecEvalExpr(state, econtext, &g->isnull);
	if (!g->isnull)
		g->value = datumCopy(g->value, g->att->attbyval, g->att->attlen);
	FreeExecutorState(estate);
}

/*
 * The write recomputes a stored generated column that reads the column: so
 * does the sample (the constraints and indexes below then see its new
 * value), and a generation expression that fails on the new value is
 * refused here.
 */
static void
recompute_generated(Relation rel, const MigrateTarget *t, Sample *s)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (desc->constr == NULL || !desc->constr->has_generated_stored)
		return;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		GeneratedEval g;
		ErrorData  *edata;

		if (att->attisdropped || att->attgenerated != ATTRIBUTE_GENERATED_STORED)
			continue;
		g.expr = (Expr *) build_column_default(rel, i + 1);
		if (g.expr == NULL || !expr_reads((Node *) g.expr, s->changed))
			continue;
		g.slot = s->new;
		g.att = att;
		edata = try_in_subxact(generated_eval, &g);
		if (edata != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("generated column \"%s\" of %s cannot be computed for rows upgraded to model \"%s\"",
							NameStr(att->attname), t->relname, t->to_model_name),
					 errdetail("On a row of model \"%s\" upgraded to model \"%s\", its expression fails: %s. Nothing was written.",
							   s->from->name, t->to_model_name, edata->message),
					 errhint("Change its expression so that it accepts values of model \"%s\", or drop the column, before migrating.",
							 t->to_model_name)));
		s->new->tts_values[i] = g.value;
		s->new->tts_isnull[i] = g.isnull;
		s->changed = bms_add_member(s->changed, i + 1 - FirstLowInvalidHeapAttributeNumber);
	}
}

/* ---------------------------------------------------------------------
 * CHECK constraints
 * ---------------------------------------------------------------------
 */

typedef struct CheckEval
{
	Expr	   *expr;
	TupleTableSlot *slot;
	bool		ok;
} CheckEval;

static void
check_eval(void *arg)
{
	CheckEval  *c = arg;
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	ExprState  *state = ExecPrepareCheck(list_make1(c->expr), estate);

	econtext->ecxt_scantuple = c->slot;
	c->ok = ExecCheck(state, econtext);
	FreeExecutorState(estate);
}

static void
check_constraints(Relation rel, const MigrateTarget *t, const Sample *s)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	int			i;

	if (constr == NULL)
		return;
	for (i = 0; i < constr->num_check; i++)
	{
		ConstrCheck *cc = &constr->check[i];
		CheckEval	c;
		ErrorData  *edata;

		c.expr = stringToNode(cc->ccbin);
		if (!expr_reads((Node *) c.expr, s->changed))
			continue;
		c.slot = s->new;
		c.ok = true;
		edata = try_in_subxact(check_eval, &c);
		if (edata != NULL || !c.ok)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("check constraint \"%s\" of %s would reject rows upgraded to model \"%s\"",
							cc->ccname, t->relname, t->to_model_name),
					 edata ?
					 errdetail("On a row of model \"%s\" upgraded to model \"%s\", the constraint fails: %s. Nothing was written.",
							   s->from->name, t->to_model_name, edata->message) :
					 errdetail("A row of model \"%s\" upgraded to model \"%s\" does not satisfy it. Nothing was written.",
							   s->from->name, t->to_model_name),
					 errhint("Change the constraint so that values of model \"%s\" satisfy it, or drop it: ALTER TABLE %s DROP CONSTRAINT %s;",
							 t->to_model_name, t->relname, quote_identifier(cc->ccname))));
	}
}

/* ---------------------------------------------------------------------
 * Indexes
 * ---------------------------------------------------------------------
 */

typedef struct IndexEval
{
	IndexInfo  *ii;
	TupleDesc	desc;			/* the index's */
	TupleTableSlot *slot;
	bool		indexed;		/* the row passes the predicate */
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
} IndexEval;

/* The index's key of slot, as an insert would form it (the values are copied out). */
static void
index_eval(void *arg)
{
	IndexEval  *ev = arg;
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	IndexInfo  *ii = ev->ii;
	int			i;

	ii->ii_ExpressionsState = NIL;
	ii->ii_PredicateState = NULL;
	econtext->ecxt_scantuple = ev->slot;
	ev->indexed = true;
	if (ii->ii_Predicate != NIL)
	{
		ii->ii_PredicateState = ExecPrepareQual(ii->ii_Predicate, estate);
		ev->indexed = ExecQual(ii->ii_PredicateState, econtext);
	}
	if (ev->indexed)
	{
		FormIndexDatum(ii, ev->slot, estate, ev->values, ev->isnull);
		/* out of the executor's memory, which goes below */
		for (i = 0; i < ii->ii_NumIndexKeyAttrs; i++)
		{
			Form_pg_attribute att = TupleDescAttr(ev->desc, i);

			if (!ev->isnull[i])
				ev->values[i] = datumCopy(ev->values[i], att->attbyval, att->attlen);
		}
	}
	ii->ii_ExpressionsState = NIL;
	ii->ii_PredicateState = NULL;
	FreeExecutorState(estate);
}

/* An operator class's name, schema-qualified and quoted, for SQL. */
static char *
opclass_name(Oid opclass)
{
	HeapTuple	tp = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclass));
	Form_pg_opclass opc;
	char	   *name;

	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for operator class %u", opclass);
	opc = (Form_pg_opclass) GETSTRUCT(tp);
	name = quote_qualified_identifier(get_namespace_name(opc->opcnamespace),
									  NameStr(opc->opcname));
	ReleaseSysCache(tp);
	return name;
}

/*
 * If the index is on fct_upgrade(col, <model>) alone, the statement that
 * builds the same index in to_model's space; otherwise NULL.
 */
static char *
replacement_index(Relation idx, IndexInfo *ii, const MigrateTarget *t)
{
	FuncExpr   *f;
	Var		   *v;

	if (ii->ii_NumIndexAttrs != 1 || ii->ii_IndexAttrNumbers[0] != 0 ||
		list_length(ii->ii_Expressions) != 1 || ii->ii_Predicate != NIL)
		return NULL;
	f = linitial(ii->ii_Expressions);
	if (!IsA(f, FuncExpr) || list_length(f->args) != 2 ||
		get_func_namespace(f->funcid) != fct_extension_schema() ||
		strcmp(get_func_name(f->funcid), "fct_upgrade") != 0)
		return NULL;
	v = linitial(f->args);
	if (!IsA(v, Var) || v->varattno != t->attnum)
		return NULL;
	return psprintf("CREATE INDEX CONCURRENTLY ON %s USING %s (%s(%s, %s) %s);",
					t->relname, quote_identifier(get_am_name(idx->rd_rel->relam)),
					query_ext_name("fct_upgrade"), t->colname,
					quote_literal_cstr(t->to_model_name),
					opclass_name(get_index_column_opclass(RelationGetRelid(idx), 1)));
}

/* "CREATE ...; DROP INDEX CONCURRENTLY idx;" or "DROP INDEX CONCURRENTLY idx;" */
static char *
index_fix(Relation idx, IndexInfo *ii, const MigrateTarget *t)
{
	char	   *create = replacement_index(idx, ii, t);
	char	   *drop = psprintf("DROP INDEX CONCURRENTLY %s;",
								quote_qualified_identifier(get_namespace_name(RelationGetNamespace(idx)),
														   RelationGetRelationName(idx)));

	return create ? psprintf("%s %s", create, drop) : drop;
}

static void
check_index(Relation rel, Oid indexoid, const MigrateTarget *t, const Sample *s)
{
	Relation	idx = index_open(indexoid, AccessShareLock);
	IndexInfo  *ii = BuildIndexInfo(idx);
	bool		reads = false;
	bool		is_lsh = strcmp(get_am_name(idx->rd_rel->relam), "lsh") == 0;
	IndexEval	ev_new;
	IndexEval	ev_old;
	ErrorData  *edata;
	int			i;

	for (i = 0; i < ii->ii_NumIndexAttrs; i++)
		if (ii->ii_IndexAttrNumbers[i] != 0 &&
			bms_is_member(ii->ii_IndexAttrNumbers[i] - FirstLowInvalidHeapAttributeNumber,
						  s->changed))
			reads = true;
	if (!reads && ii->ii_Expressions != NIL)
		reads = expr_reads((Node *) ii->ii_Expressions, s->changed);
	if (!reads && ii->ii_Predicate != NIL)
		reads = expr_reads((Node *) ii->ii_Predicate, s->changed);
	if (!reads)
	{
		index_close(idx, AccessShareLock);
		return;
	}

	memset(&ev_new, 0, sizeof(ev_new));
	ev_new.ii = ii;
	ev_new.desc = RelationGetDescr(idx);
	ev_new.slot = s->new;
	edata = try_in_subxact(index_eval, &ev_new);
	if (edata != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" of %s cannot hold rows upgraded to model \"%s\"",
						RelationGetRelationName(idx), t->relname, t->to_model_name),
				 errdetail("Its definition fails on a row of model \"%s\" upgraded to model \"%s\": %s. Nothing was written.",
						   s->from->name, t->to_model_name, edata->message),
				 errhint("Before migrating, index the new model's space and drop this index: %s",
						 index_fix(idx, ii, t))));

	/*
	 * An lsh index holds the vectors of one model: the migration would
	 * write another model's vectors into it, which its insert refuses.
	 */
	if (is_lsh && ev_new.indexed)
	{
		memset(&ev_old, 0, sizeof(ev_old));
		ev_old.ii = ii;
		ev_old.desc = RelationGetDescr(idx);
		ev_old.slot = s->old;
		edata = try_in_subxact(index_eval, &ev_old);
		for (i = 0; edata == NULL && ev_old.indexed && i < ii->ii_NumIndexKeyAttrs; i++)
		{
			Embedding  *a;
			Embedding  *b;

			if (ev_old.isnull[i] || ev_new.isnull[i] ||
				TupleDescAttr(RelationGetDescr(idx), i)->atttypid != t->typid)
				continue;
			a = DatumGetEmbeddingP(ev_old.values[i]);
			b = DatumGetEmbeddingP(ev_new.values[i]);
			if (a->model_id != b->model_id)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("lsh index \"%s\" of %s holds embeddings of model \"%s\", and the migration would write embeddings of model \"%s\" into it",
								RelationGetRelationName(idx), t->relname,
								model_display_name(a->model_id),
								model_display_name(b->model_id)),
						 errdetail("An lsh index holds the vectors of one model. Nothing was written."),
						 errhint("Before migrating, index the new model's space and drop this index: CREATE INDEX CONCURRENTLY ON %s USING lsh (%s(%s, %s) %s); DROP INDEX CONCURRENTLY %s;",
								 t->relname, query_ext_name("fct_upgrade"), t->colname,
								 quote_literal_cstr(t->to_model_name),
								 opclass_name(get_index_column_opclass(RelationGetRelid(idx), i + 1)),
								 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(idx)),
															RelationGetRelationName(idx)))));
		}
	}
	index_close(idx, AccessShareLock);
}

void
migrate_check_writes(const MigrateTarget *t, List *models)
{
	const FctModel *to = model_by_id(t->to_model);
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;

	check_typmod(t, to);

	rel = table_open(t->relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	foreach(lc, models)
	{
		const FctModel *from = model_by_id(lfirst_int(lc));
		Sample		s;
		ListCell   *li;

		if (from->id == t->to_model || !sample_row(rel, t, from, &s))
			continue;
		recompute_generated(rel, t, &s);
		check_constraints(rel, t, &s);
		foreach(li, indexes)
			check_index(rel, lfirst_oid(li), t, &s);
		ExecDropSingleTupleTableSlot(s.old);
		ExecDropSingleTupleTableSlot(s.new);
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
}
