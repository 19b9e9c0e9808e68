/*
 * lookup.c
 *	  Label look-ups: fct_top_labels (one query), fct_top_labels_batch (many
 *	  queries, one matrix product per block of queries, through score.c) and
 *	  fct_label_search_path.
 *
 * Candidates.  With an exact search every label of the set is a candidate and
 * the probabilities are the full softmax.  With an index search (the label
 * set's lsh index, or fct.label_search = index) the candidates are the
 * max(k, fct.label_candidates) labels that ORDER BY embedding <#> q LIMIT n
 * returns, their exact scores are computed here, and the softmax runs over
 * them only: the sampled softmax of Vijayanarasimhan et al., which equals the
 * full softmax up to the mass of the labels the index did not return.  The
 * index ranks by inner product without the bias; fetching more candidates
 * than k leaves room for the bias to reorder them.
 *
 * fct.label_search = auto.  The index path is approximate, and not always
 * faster: on 100,000 x 64 labels it took 3.8 ms a query at recall 0.99 where
 * the exact path took 2.5 ms at recall 1.  So auto takes the index only when it
 * is faster: at the first look-up after a session reads the set's labels (and
 * again when fct.label_candidates or the lsh probe settings change), both
 * paths run on that query, alternately, and the faster is remembered in the
 * cache (fct_label_search_path shows the choice and the times).  A set without
 * a usable index, or with no more labels than fct.label_candidates, is always
 * scored exactly; with fct.label_cache = off nothing is remembered, so auto is
 * exact there too.
 *
 * Correction.  When corrected is true and the set has a predicted prior, the
 * probability of label y is proportional to p_model(y|x) / p_train(y) *
 * p_pred(y), i.e. the softmax of score(y) + log p_pred(y) - log p_train(y).
 * The returned score is the uncorrected <label, q> + bias.
 */
#include "postgres.h"


#include "catalog/pg_type.h"
#include "kernels/distance.h"
#include "type/embedding.h"
#include "fmgr.h"
#include "funcapi.h"
#include "labels/labels.h"
#include "miscadmin.h"
#include "query/query.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

/* ----------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------
 */

static void
check_k(int k)
{
	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1, not %d", k)));
}

static void
emit_row(ReturnSetInfo *rsinfo, bool with_query, int64 query_id,
		 const char *label, float4 score, float8 prob)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int			i = 0;

	if (with_query)
		values[i++] = Int64GetDatum(query_id);
	values[i++] = CStringGetTextDatum(label);
	values[i++] = Float4GetDatum(score);
	values[i++] = Float4GetDatum((float4) prob);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Candidates through ORDER BY embedding <#> q LIMIT m (the index path). */
static void
top_labels_index(ReturnSetInfo *rsinfo, LabelSet *ls, Embedding *q, Datum qd,
				 int k, bool corrected)
{
	int			m = Max(k, fct_label_candidates);
	Datum		args[3];
	float4	   *scores;
	int32	   *idx;
	ScoreTopk	t;
	char	  **labels;
	int			n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ls->index_plan == NULL)
	{
		char	   *sql;
		Oid			argtypes[3] = {embedding_type_oid(), INT4OID, TEXTOID};
		SPIPlanPtr	plan;

		/*
		 * The label index of each candidate by a look-up per candidate
		 * (a subquery on the unique index), never a join that the planner
		 * could turn into a scan of all C labels.
		 */
		sql = psprintf("SELECT (SELECT li.idx FROM %s li "
					   "        WHERE li.label_set " SQL_EQ " $3 "
					   "          AND li.label " SQL_EQ " t.id::pg_catalog.text), "
					   "       t.id::pg_catalog.text, t.e, t.b FROM "
					   "(SELECT %s AS id, %s AS e, %s AS b FROM %s "
					   " ORDER BY %s %s $1 LIMIT $2) t",
					   query_ext_name("fct_label_index"),
					   quote_identifier(ls->id_col), quote_identifier(ls->embedding_col),
					   ls->bias_col ? psprintf("%s::pg_catalog.float4", quote_identifier(ls->bias_col)) :
					   "0::pg_catalog.float4",
					   quote_qualified_identifier(get_namespace_name(get_rel_namespace(ls->relid)),
												  get_rel_name(ls->relid)),
					   quote_identifier(ls->embedding_col), query_ext_operator("<#>"));
		plan = SPI_prepare(sql, 3, argtypes);
		if (plan == NULL)
			elog(ERROR, "could not prepare the candidate query: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		ls->index_plan = plan;
	}
	args[0] = qd;
	args[1] = Int32GetDatum(m);
	args[2] = CStringGetTextDatum(ls->name);
	if (SPI_execute_plan(ls->index_plan, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run the candidate query");

	n = (int) SPI_processed;
	scores = palloc(sizeof(float4) * Max(n, 1));
	idx = palloc(sizeof(int32) * Max(n, 1));
	labels = palloc(sizeof(char *) * Max(n, 1));
	score_topk_init(&t, n, k);
	for (int j = 0; j < n; j++)
	{
		HeapTuple	tup = SPI_tuptable->vals[j];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		Embedding  *e;
		float4		b;

		labels[j] = SPI_getvalue(tup, desc, 2);
		d = SPI_getbinval(tup, desc, 1, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("label set \"%s\" is out of date with its table", ls->name),
					 errdetail("Label %s is not numbered in fct_label_index.", labels[j]),
					 errhint("SELECT fct_refresh_label_set('%s') numbers the labels again.", ls->name)));
		idx[j] = DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("label %s of label set \"%s\" has a null embedding", labels[j], ls->name)));
		e = DatumGetEmbeddingP(d);
		if (e->dim != q->dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("label %s of label set \"%s\" has %d dimensions, the query has %d",
							labels[j], ls->name, e->dim, q->dim)));
		b = DatumGetFloat4(SPI_getbinval(tup, desc, 4, &isnull));
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("label %s of label set \"%s\" has a null bias", labels[j], ls->name),
					 errhint("Use a bias of 0 for no bias.")));
		scores[j] = (float4) kernel_inner_product(EMBEDDING_VEC(e), EMBEDDING_VEC(q), q->dim) + b;
	}
	n = score_softmax_topk(scores, idx, n, corrected ? ls->log_adjust : NULL, &t);
	for (int i = 0; i < n; i++)
		emit_row(rsinfo, false, 0, labels[t.top[i]], scores[t.top[i]], t.prob[i]);
	SPI_finish();
}

/* Every label is a candidate: one matrix-vector product. */
static void
top_labels_exact(ReturnSetInfo *rsinfo, LabelSet *ls, Embedding *q, int k, bool corrected)
{
	int			C = ls->n_labels;
	float4	   *scores = palloc(sizeof(float4) * C);
	ScoreTopk	t;
	int			n;

	kernel_inner_product_batch(EMBEDDING_VEC(q), ls->matrix, C, ls->dim, scores);
	if (ls->bias)
		for (int i = 0; i < C; i++)
			scores[i] += ls->bias[i];
	score_topk_init(&t, C, k);
	n = score_softmax_topk(scores, NULL, C, corrected ? ls->log_adjust : NULL, &t);
	for (int i = 0; i < n; i++)
		emit_row(rsinfo, false, 0, ls->labels[t.top[i]], scores[t.top[i]], t.prob[i]);
}

/* Runs of each path when auto measures them (the best run counts). */
#define AUTO_MEASURE_RUNS	3

/* The settings an auto measurement depends on, as one string. */
static char *
auto_settings(void)
{
	/* GetConfigOption returns a static buffer for a number: copy each */
	const char *probes = GetConfigOption("fct.lsh_probes", true, false);
	char	   *p = pstrdup(probes ? probes : "");
	const char *ratio = GetConfigOption("fct.lsh_probe_ratio", true, false);

	return psprintf("%d|%s|%s", fct_label_candidates, p, ratio ? ratio : "");
}

/* Does ls need an auto measurement (it has none for the current settings)? */
static bool
auto_needs_measure(LabelSet *ls)
{
	return ls->auto_choice == LABEL_SEARCH_AUTO ||
		strcmp(ls->auto_settings, auto_settings()) != 0;
}

/*
 * Time both look-up paths on query q (the matrix must be loaded, the entry
 * pinned) and remember the faster in ls: the index path only when it is
 * strictly faster, as it is the approximate one.  The rows go to a scratch
 * tuplestore.  A first run of each prepares the candidate query and brings
 * the pages in; then the paths alternate, best of AUTO_MEASURE_RUNS each.
 */
static void
auto_measure(LabelSet *ls, Embedding *q, Datum qd, int k, bool corrected,
			 ReturnSetInfo *rsinfo)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "fct label search measurement",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ReturnSetInfo scratch = *rsinfo;
	float8		best_exact = get_float8_infinity();
	float8		best_index = get_float8_infinity();
	char	   *settings = auto_settings();

	scratch.setResult = tuplestore_begin_heap(false, false, work_mem);
	top_labels_index(&scratch, ls, q, qd, k, corrected);
	top_labels_exact(&scratch, ls, q, k, corrected);
	for (int r = 0; r < AUTO_MEASURE_RUNS; r++)
	{
		instr_time	t0,
					t1;

		INSTR_TIME_SET_CURRENT(t0);
		top_labels_exact(&scratch, ls, q, k, corrected);
		INSTR_TIME_SET_CURRENT(t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		best_exact = Min(best_exact, INSTR_TIME_GET_MILLISEC(t1));

		INSTR_TIME_SET_CURRENT(t0);
		top_labels_index(&scratch, ls, q, qd, k, corrected);
		INSTR_TIME_SET_CURRENT(t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		best_index = Min(best_index, INSTR_TIME_GET_MILLISEC(t1));
	}
	tuplestore_end(scratch.setResult);
	MemoryContextSwitchTo(old);

	ls->auto_exact_ms = best_exact;
	ls->auto_index_ms = best_index;
	ls->auto_choice = best_index < best_exact ? LABEL_SEARCH_INDEX : LABEL_SEARCH_EXACT;
	strlcpy(ls->auto_settings, settings, sizeof(ls->auto_settings));
	MemoryContextDelete(cxt);
}

PG_FUNCTION_INFO_V1(fct_top_labels);
Datum
fct_top_labels(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Datum		qd = PG_GETARG_DATUM(1);
	Embedding  *q = DatumGetEmbeddingP(qd);
	int			k = PG_GETARG_INT32(2);
	bool		corrected = PG_GETARG_BOOL(3);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LabelSet   *ls;
	int			path = fct_label_search;

	check_k(k);
	InitMaterializedSRF(fcinfo, 0);
	ls = labelset_get(name, false);
	if (path == LABEL_SEARCH_AUTO)
	{
		/* see "fct.label_search = auto" at the top of this file */
		if (!fct_label_cache || !ls->use_index || ls->n_labels <= fct_label_candidates)
			path = LABEL_SEARCH_EXACT;
		else if (!auto_needs_measure(ls))
			path = ls->auto_choice;
	}
	if (path != LABEL_SEARCH_INDEX)
		ls = labelset_get(name, true);
	labelset_check_query(ls, q, "the query");

	labelset_pin(ls);
	PG_TRY();
	{
		if (path == LABEL_SEARCH_AUTO)
		{
			auto_measure(ls, q, PointerGetDatum(q), k, corrected, rsinfo);
			path = ls->auto_choice;
		}
		if (path == LABEL_SEARCH_INDEX)
			top_labels_index(rsinfo, ls, q, PointerGetDatum(q), k, corrected);
		else
			top_labels_exact(rsinfo, ls, q, k, corrected);
	}
	PG_FINALLY();
	{
		labelset_unpin(ls);
	}
	PG_END_TRY();
	return (Datum) 0;
}

/*
 * fct_label_search_path(label_set) -> (path, exact_ms, index_ms): the path
 * fct_top_labels takes for the set in this session under the current
 * fct.label_search, and, under auto, the times it measured (NULL when it has
 * not measured: no usable index, too few labels, no look-up yet since the set
 * or the settings changed).  path is 'exact', 'index', or 'auto' while auto
 * has not measured yet.
 */
PG_FUNCTION_INFO_V1(fct_label_search_path);
Datum
fct_label_search_path(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, true, true};
	LabelSet   *ls;
	const char *path;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "fct_label_search_path must return a row");
	ls = labelset_get(name, false);
	if (fct_label_search == LABEL_SEARCH_EXACT)
		path = "exact";
	else if (fct_label_search == LABEL_SEARCH_INDEX)
		path = "index";
	else if (!fct_label_cache || !ls->use_index || ls->n_labels <= fct_label_candidates)
		path = "exact";
	else if (auto_needs_measure(ls))
		path = "auto";
	else
	{
		path = ls->auto_choice == LABEL_SEARCH_INDEX ? "index" : "exact";
		values[1] = Float8GetDatum(ls->auto_exact_ms);
		values[2] = Float8GetDatum(ls->auto_index_ms);
		nulls[1] = nulls[2] = false;
	}
	values[0] = CStringGetTextDatum(path);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

typedef struct BatchState
{
	ReturnSetInfo *rsinfo;
	LabelSet   *ls;
	const float8 *adjust;
	ScoreTopk	t;
} BatchState;

static void
batch_block(void *arg, int b, const int64 *ids, const float4 *S)
{
	BatchState *st = (BatchState *) arg;
	int			C = st->ls->n_labels;

	for (int r = 0; r < b; r++)
	{
		const float4 *s = S + (Size) r * C;
		int			n = score_softmax_topk(s, NULL, C, st->adjust, &st->t);

		for (int i = 0; i < n; i++)
			emit_row(st->rsinfo, true, ids[r], st->ls->labels[st->t.top[i]],
					 s[st->t.top[i]], st->t.prob[i]);
	}
}

/*
 * fct_top_labels_batch(label_set, queries, k, corrected): queries is a query
 * returning (query_id integer type, q embedding).  The search is always exact
 * (every label is a candidate), with the cached label matrix.
 */
PG_FUNCTION_INFO_V1(fct_top_labels_batch);
Datum
fct_top_labels_batch(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *queries = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			k = PG_GETARG_INT32(2);
	bool		corrected = PG_GETARG_BOOL(3);
	LabelSet   *ls;
	BatchState	st;

	check_k(k);
	query_check_select(queries, "fct_top_labels_batch");
	InitMaterializedSRF(fcinfo, 0);
	ls = labelset_get(name, true);
	st.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	st.ls = ls;
	st.adjust = corrected ? ls->log_adjust : NULL;
	score_topk_init(&st.t, ls->n_labels, k);

	labelset_pin(ls);
	PG_TRY();
	{
		score_queries(ls, queries, true, batch_block, &st);
	}
	PG_FINALLY();
	{
		labelset_unpin(ls);
	}
	PG_END_TRY();
	return (Datum) 0;
}
