/*
 * prior_em.c
 *	  The EM estimate of the label prior of a window of unlabelled queries
 *	  (fct_estimate_prior_em), over the scores of score.c.
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

#include "fmgr.h"
#include "labels/labels.h"
#include "miscadmin.h"
#include "query/query.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

typedef struct EmState
{
	int			C;
	int			m;				/* candidates kept per query */
	int64		n;				/* queries so far */
	int64		cap;			/* room for queries */
	int32	   *idx;			/* n x m label indices */
	float4	   *post;			/* n x m posteriors under p_train */
	ScoreTopk	t;				/* the m most probable labels of a query */
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

		got = score_softmax_topk(S + (Size) r * st->C, NULL, st->C, NULL, &st->t);
		for (int j = 0; j < got; j++)
		{
			idx[j] = st->t.top[j];
			post[j] = (float4) st->t.prob[j];
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
	score_topk_init(&st.t, st.C, st.m);

	train = palloc(sizeof(float8) * st.C);
	for (int y = 0; y < st.C; y++)
		train[y] = exp(ls->log_train[y]);

	labelset_pin(ls);
	PG_TRY();
	{
		score_queries(ls, queries, false, em_block, &st);
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
	PG_RETURN_ARRAYTYPE_P(prior_array(pi, st.C));
}
