/*
 * prior.c
 *	  Label priors: validation (fct_check_prior) and the EM estimate of the
 *	  label prior of a window of unlabelled queries (fct_estimate_prior_em).
 *
 * EM (Saerens, Latinne and Decaestecker, "Adjusting the outputs of a
 * classifier to new a priori probabilities", 2002).  The model's posteriors
 * p_model(y|x_i) were learnt under the training prior p_train.  Starting from
 * pi = p_train, each step re-weights every posterior by pi(y) / p_train(y),
 * renormalises it, and sets pi to the mean of the re-weighted posteriors; the
 * fixed point is the maximum-likelihood prior of the window.  The posteriors
 * are kept for the fct.label_candidates labels with the highest score of each
 * query (every label when C is at most that), renormalised over them, so the
 * memory is N x min(C, fct.label_candidates) and a step costs as much.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "labels/labels.h"
#include "miscadmin.h"
#include "query/query.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

float8 *
prior_validate(ArrayType *arr, int n, const char *what)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	float8	   *p;
	float8		sum = 0.0;

	if (ARR_ELEMTYPE(arr) != FLOAT4OID)
		elog(ERROR, "%s must be a real[]", what);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT,
					  &elems, &nulls, &count);
	if (count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has %d entries, the label set has %d labels", what, count, n),
				 errhint("A prior has one entry per label, in label index order (fct_label_index).")));
	p = palloc(sizeof(float8) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		float8		v;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what),
					 errdetail("Entry %d is null.", i + 1)));
		v = DatumGetFloat4(elems[i]);
		if (!isfinite(v))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be finite", what),
					 errdetail("Entry %d is %g.", i + 1, v)));
		if (v < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not be negative", what),
					 errdetail("Entry %d is %g.", i + 1, v)));
		if (v == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must give every label a positive probability", what),
					 errdetail("Entry %d is 0: the correction divides by the training prior, "
							   "and a label with predicted prior 0 could never be predicted again.",
							   i + 1),
					 errhint("Give it a small positive probability (fct_set_train_prior_from "
							 "smooths counts with alpha).")));
		p[i] = v;
		sum += v;
	}
	if (fabs(sum - 1.0) > FCT_PRIOR_TOLERANCE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must sum to 1", what),
				 errdetail("It sums to %g; the tolerance is %g.", sum, FCT_PRIOR_TOLERANCE),
				 errhint("Divide every entry by the sum.")));
	for (int i = 0; i < n; i++)
		p[i] /= sum;
	return p;
}

void
prior_floor(float8 *p, int n)
{
	float8		lo = FCT_PRIOR_FLOOR / n;
	float8		sum = 0.0;
	float8		total = 0.0;

	for (int i = 0; i < n; i++)
		sum += p[i];
	for (int i = 0; i < n; i++)
	{
		p[i] = sum > 0 ? Max(p[i] / sum, lo) : 1.0 / n;
		total += p[i];
	}
	/* unchanged when no entry was below the floor */
	for (int i = 0; i < n; i++)
		p[i] /= total;
}

ArrayType *
labels_float4_array(const float8 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float4GetDatum((float4) v[i]);
	return construct_array(d, n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
}

/* fct_check_prior(prior real[], n_labels int, what text) -> real[] */
PG_FUNCTION_INFO_V1(fct_check_prior);
Datum
fct_check_prior(PG_FUNCTION_ARGS)
{
	ArrayType  *arr;
	int			n;
	char	   *what;
	float8	   *p;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("prior must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("n_labels must not be null")));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	n = PG_GETARG_INT32(1);
	what = PG_ARGISNULL(2) ? "prior" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	p = prior_validate(arr, n, what);
	PG_RETURN_ARRAYTYPE_P(labels_float4_array(p, n));
}

/* ----------------------------------------------------------------
 * EM
 * ----------------------------------------------------------------
 */

typedef struct EmState
{
	int			C;
	int			m;				/* candidates kept per query */
	int64		n;				/* queries so far */
	int64		cap;			/* room for queries */
	int32	   *idx;			/* n x m label indices */
	float4	   *post;			/* n x m posteriors under p_train */
	float8	   *work;
	int32	   *top;
	float8	   *prob;
} EmState;

static void
em_block(void *arg, int b, const int64 *ids, const float4 *S)
{
	EmState    *st = (EmState *) arg;

	if (st->n + b > st->cap)
	{
		st->cap = Max(st->cap * 2, st->n + b);
		if ((Size) st->cap * st->m * sizeof(float4) >= MaxAllocHugeSize / 2)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many queries for EM"),
					 errhint("Use a smaller window, or lower fct.label_candidates.")));
		st->idx = repalloc_huge(st->idx, sizeof(int32) * (Size) st->cap * st->m);
		st->post = repalloc_huge(st->post, sizeof(float4) * (Size) st->cap * st->m);
	}
	for (int r = 0; r < b; r++)
	{
		int32	   *idx = st->idx + (Size) st->n * st->m;
		float4	   *post = st->post + (Size) st->n * st->m;
		int			got;

		got = labels_softmax_topk(S + (Size) r * st->C, NULL, st->C, NULL, st->m,
								  st->work, st->top, st->prob);
		for (int j = 0; j < got; j++)
		{
			idx[j] = st->top[j];
			post[j] = (float4) st->prob[j];
		}
		/* renormalise over the kept candidates (a no-op when m = C) */
		{
			float8		s = 0.0;

			for (int j = 0; j < got; j++)
				s += post[j];
			for (int j = 0; j < got; j++)
				post[j] = (float4) (post[j] / s);
		}
		st->n++;
	}
}

/*
 * fct_estimate_prior_em(label_set, queries, max_iter, tol) -> real[]: the
 * label prior of the queries' window.  queries returns an embedding column
 * (the (query_id, q) query of fct_top_labels_batch works).  Stops after
 * max_iter steps or when no entry moves by more than tol.  Entries below
 * FCT_PRIOR_FLOOR / C are raised to it (then all renormalised), so that no
 * entry is zero.
 */
PG_FUNCTION_INFO_V1(fct_estimate_prior_em);
Datum
fct_estimate_prior_em(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *queries = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			max_iter = PG_GETARG_INT32(2);
	float8		tol = PG_GETARG_FLOAT8(3);
	LabelSet   *ls;
	EmState		st;
	float8	   *train;
	float8	   *pi;
	float8	   *next;
	float8	   *w;

	if (max_iter < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_iter must be at least 1, not %d", max_iter)));
	if (!isfinite(tol) || tol < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tol must be a finite number, at least 0, not %s",
						isnan(tol) ? "NaN" : psprintf("%g", tol)),
				 errdetail("EM stops when no label's prior moves by more than tol in one step.")));
	query_check_select(queries, "fct_estimate_prior_em");

	ls = labelset_get(name, true);
	memset(&st, 0, sizeof(st));
	st.C = ls->n_labels;
	st.m = Min(st.C, fct_label_candidates);
	st.cap = 1024;
	st.idx = palloc_extended(sizeof(int32) * (Size) st.cap * st.m, MCXT_ALLOC_HUGE);
	st.post = palloc_extended(sizeof(float4) * (Size) st.cap * st.m, MCXT_ALLOC_HUGE);
	st.work = palloc(sizeof(float8) * st.C);
	st.top = palloc(sizeof(int32) * st.m);
	st.prob = palloc(sizeof(float8) * st.m);

	train = palloc(sizeof(float8) * st.C);
	for (int y = 0; y < st.C; y++)
		train[y] = exp(ls->log_train[y]);

	labelset_pin(ls);
	PG_TRY();
	{
		labels_score_queries(ls, queries, false, em_block, &st);
	}
	PG_FINALLY();
	{
		labelset_unpin(ls);
	}
	PG_END_TRY();

	if (st.n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the queries returned no rows"),
				 errhint("EM estimates the prior of a window of queries: give it at least one.")));

	pi = palloc(sizeof(float8) * st.C);
	next = palloc(sizeof(float8) * st.C);
	w = palloc(sizeof(float8) * st.C);
	memcpy(pi, train, sizeof(float8) * st.C);
	for (int it = 0; it < max_iter; it++)
	{
		float8		delta = 0.0;

		for (int y = 0; y < st.C; y++)
		{
			w[y] = pi[y] / train[y];
			next[y] = 0.0;
		}
		for (int64 i = 0; i < st.n; i++)
		{
			const int32 *idx = st.idx + (Size) i * st.m;
			const float4 *post = st.post + (Size) i * st.m;
			float8		z = 0.0;

			for (int j = 0; j < st.m; j++)
				z += post[j] * w[idx[j]];
			if (z <= 0)
				continue;		/* every candidate's prior underflowed */
			for (int j = 0; j < st.m; j++)
				next[idx[j]] += post[j] * w[idx[j]] / z;
		}
		for (int y = 0; y < st.C; y++)
		{
			next[y] /= st.n;
			delta = Max(delta, fabs(next[y] - pi[y]));
			pi[y] = next[y];
		}
		CHECK_FOR_INTERRUPTS();
		if (delta <= tol)
			break;
	}
	prior_floor(pi, st.C);
	PG_RETURN_ARRAYTYPE_P(labels_float4_array(pi, st.C));
}
