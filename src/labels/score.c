/*
 * score.c
 *	  Scoring queries against a label set: the top k of a vector, the
 *	  softmax over candidate labels (with the prior correction), and the
 *	  scores of every row of a query against every label, a block at a time
 *	  (one cblas_sgemm per block).  The look-ups (lookup.c) and the EM
 *	  estimate of a prior (prior_em.c) score through these; they call nothing
 *	  else of labels/.
 */
#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "labels/labels.h"
#include "miscadmin.h"
#include "type/embedding.h"

/* Scores held at once by the batch form: block rows x C floats. */
#define BATCH_SCORE_FLOATS	(8 * 1024 * 1024)
#define BATCH_MAX_ROWS		256

/* ----------------------------------------------------------------
 * Top k and softmax
 * ----------------------------------------------------------------
 */

/* Is position a better than position b? */
static inline bool
topk_better(const float8 *v, const int32 *idx, int32 a, int32 b)
{
	if (v[a] != v[b])
		return v[a] > v[b];
	return (idx ? idx[a] : a) < (idx ? idx[b] : b);
}

static void
topk_sift_down(const float8 *v, const int32 *idx, int32 *heap, int n, int i)
{
	/* min-heap on "better": the root is the worst kept position */
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					w = i;

		if (l < n && topk_better(v, idx, heap[w], heap[l]))
			w = l;
		if (r < n && topk_better(v, idx, heap[w], heap[r]))
			w = r;
		if (w == i)
			break;
		{
			int32		t = heap[i];

			heap[i] = heap[w];
			heap[w] = t;
		}
		i = w;
	}
}

int
score_topk(const float8 *v, const int32 *idx, int n, int k, int32 *top)
{
	int			m = 0;

	if (k > n)
		k = n;
	if (k <= 0)
		return 0;
	for (int32 j = 0; j < n; j++)
	{
		if (m < k)
		{
			/* sift up */
			int			i = m++;

			top[i] = j;
			while (i > 0)
			{
				int			p = (i - 1) / 2;

				if (!topk_better(v, idx, top[p], top[i]))
					break;
				{
					int32		t = top[p];

					top[p] = top[i];
					top[i] = t;
				}
				i = p;
			}
		}
		else if (topk_better(v, idx, j, top[0]))
		{
			top[0] = j;
			topk_sift_down(v, idx, top, m, 0);
		}
	}
	/* heap sort: move the worst to the end, repeatedly */
	for (int end = m - 1; end > 0; end--)
	{
		int32		t = top[0];

		top[0] = top[end];
		top[end] = t;
		topk_sift_down(v, idx, top, end, 0);
	}
	return m;
}

void
score_topk_init(ScoreTopk *t, int n, int k)
{
	t->n = n;
	t->k = k;
	t->work = palloc(sizeof(float8) * Max(n, 1));
	t->top = palloc(sizeof(int32) * Max(Min(k, n), 1));
	t->prob = palloc(sizeof(float8) * Max(Min(k, n), 1));
}

int
score_softmax_topk(const float4 *scores, const int32 *idx, int n,
					const float8 *log_adjust, ScoreTopk *t)
{
	float8	   *work = t->work;
	float8		mx = -INFINITY;
	float8		sum = 0.0;
	int			m;

	Assert(n <= t->n);

	for (int j = 0; j < n; j++)
	{
		float8		l = scores[j];

		if (log_adjust)
			l += log_adjust[idx ? idx[j] : j];
		work[j] = l;
		if (l > mx)
			mx = l;
	}
	for (int j = 0; j < n; j++)
		sum += exp(work[j] - mx);
	m = score_topk(work, idx, n, t->k, t->top);
	for (int i = 0; i < m; i++)
		t->prob[i] = exp(work[t->top[i]] - mx) / sum;
	return m;
}

/*
 * Score the rows of a query against every label of the set, a block of
 * queries at a time with one cblas_sgemm, and hand each block of scores to fn.
 * With ids, the query must return (query_id integer type, q embedding);
 * without, its first embedding column is used.
 */
void
score_queries(LabelSet *ls, const char *queries, bool with_ids,
					 ScoreBlockFn fn, void *arg)
{
	int			C = ls->n_labels;
	int			dim = ls->dim;
	int			block = Max(1, Min(BATCH_MAX_ROWS, BATCH_SCORE_FLOATS / C));
	float4	   *Q = palloc(sizeof(float4) * (Size) block * dim);
	float4	   *S = palloc(sizeof(float4) * (Size) block * C);
	int64	   *ids = palloc0(sizeof(int64) * block);
	Oid			emb_type = embedding_type_oid();
	Portal		portal;
	int			qcol = 0;
	Oid			idtype = InvalidOid;
	int64		row = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, queries, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		TupleDesc	desc;
		int			b;

		SPI_cursor_fetch(portal, true, block);
		b = (int) SPI_processed;
		if (b == 0)
			break;
		desc = SPI_tuptable->tupdesc;
		if (qcol == 0 && with_ids)
		{
			idtype = desc->natts >= 1 ? SPI_gettypeid(desc, 1) : InvalidOid;
			if (desc->natts < 2 ||
				(idtype != INT8OID && idtype != INT4OID && idtype != INT2OID) ||
				SPI_gettypeid(desc, 2) != emb_type)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("the queries must return (query_id bigint, q embedding)"),
						 errhint("Cast the query id to bigint and the query to embedding.")));
			qcol = 2;
		}
		else if (qcol == 0)
		{
			for (int c = 1; c <= desc->natts && qcol == 0; c++)
				if (SPI_gettypeid(desc, c) == emb_type)
					qcol = c;
			if (qcol == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("the queries must return an embedding column")));
		}
		for (int r = 0; r < b; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			bool		isnull1 = false,
						isnull2;
			Datum		d = SPI_getbinval(tup, desc, qcol, &isnull2);
			Embedding  *q;

			if (with_ids)
			{
				Datum		id = SPI_getbinval(tup, desc, 1, &isnull1);

				if (!isnull1)
					ids[r] = idtype == INT8OID ? DatumGetInt64(id) :
						idtype == INT4OID ? DatumGetInt32(id) : DatumGetInt16(id);
			}
			else
				ids[r] = ++row;
			if (isnull1 || isnull2)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("query ids and query embeddings must not be null")));
			q = DatumGetEmbeddingP(d);
			if (q->dim != dim ||
				(q->model_id != ls->model_id && q->model_id != FCT_NO_MODEL &&
				 ls->model_id != FCT_NO_MODEL))
				labelset_check_query(ls, q, psprintf("query %lld", (long long) ids[r]));
			memcpy(Q + (Size) r * dim, EMBEDDING_VEC(q), sizeof(float4) * dim);
			if ((Pointer) q != DatumGetPointer(d))
				pfree(q);
			if (ls->bias)
				memcpy(S + (Size) r * C, ls->bias, sizeof(float4) * C);
		}
		/* S = Q L^T (+ bias, already in S) */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, C, dim,
					1.0f, Q, dim, ls->matrix, dim,
					ls->bias ? 1.0f : 0.0f, S, C);
		fn(arg, b, ids, S);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	pfree(Q);
	pfree(S);
	pfree(ids);
}
