/*
 * fit_pairs.c
 *	  The pairs of a fit: the pairs query read through SPI with the caller's
 *	  rights into one float matrix (each row checked, the memory bound checked
 *	  as rows arrive), shuffled with the fit's seeded generator, and the loss
 *	  of predicting the training mean that a fit must beat.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "query/query.h"
#include "type/embedding.h"
#include "upgrade/fit.h"

/* ------------------------------------------------------------ reading pairs */

static void
check_columns(TupleDesc desc)
{
	Oid			typid = embedding_type_oid();
	int			i;

	if (desc->natts != 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("pairs query must return 2 columns, not %d", desc->natts),
				 errhint("Return (old embedding with its side-information, new "
						 "embedding of the same item), e.g. SELECT e_old, e_new FROM t.")));
	for (i = 0; i < 2; i++)
	{
		Oid			coltype = getBaseType(TupleDescAttr(desc, i)->atttypid);

		if (coltype != typid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d of the pairs query has type %s, not embedding",
							i + 1, format_type_be(TupleDescAttr(desc, i)->atttypid)),
					 errhint("Return (old embedding with its side-information, new "
							 "embedding of the same item).")));
	}
}

static void
check_finite(const float4 *x, int n, int64 row, const char *what)
{
	int			i;

	for (i = 0; i < n; i++)
		if (!isfinite(x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FLOATING_POINT_EXCEPTION),
					 errmsg("pairs query row %lld: the %s embedding holds a non-finite value",
							(long long) row + 1, what)));
}

static void
check_embedding(const Embedding *e, const FctModel *m, int64 row, const char *what,
				bool check_side)
{
	if (e->model_id != m->id)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("pairs query row %lld: the %s embedding is from model \"%s\", not \"%s\"",
						(long long) row + 1, what, model_display_name(e->model_id), m->name),
				 errhint("The query returns (embedding of the from model, embedding of the "
						 "to model), in that order.")));
	if (e->dim != m->dim || (check_side && e->side_dim != m->side_dim))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("pairs query row %lld: the %s embedding has dimensions %d|%d, "
						"model \"%s\" has %d|%d",
						(long long) row + 1, what, e->dim, e->side_dim, m->name,
						m->dim, m->side_dim)));
}

/*
 * Run the pairs query through SPI (as the current user, read-only) and copy
 * the rows into P, checking each one and the memory bound as rows arrive.
 */
void
fit_read_pairs(const char *query, const FctModel *from, const FctModel *to,
		   FitMethod method, const FitOptions *o, Size mbytes,
		   MemoryContext fitcxt, Pairs *P)
{
	Portal		portal;
	MemoryContext rowcxt;
	Size		limit = fit_limit_bytes();
	bool		first = true;

	P->n = 0;
	P->cap = 0;
	P->data = NULL;
	P->truncated = false;

	query_check_select(query, "fct_fit_transformation");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "fct fit rows",
								   ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		uint64		i;
		MemoryContext old;

		if (P->n > 0)
			fit_progress("reading pairs", P->n, -1, NULL);
		SPI_cursor_fetch(portal, true, FIT_FETCH);
		if (first)
		{
			check_columns(SPI_tuptable->tupdesc);
			first = false;
		}
		if (SPI_processed == 0)
			break;

		old = MemoryContextSwitchTo(rowcxt);
		for (i = 0; i < SPI_processed && !P->truncated; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		null1,
						null2;
			Datum		d1 = SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &null1);
			Datum		d2 = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &null2);
			Embedding  *a,
					   *b;
			float4	   *row;

			if (P->n >= o->max_pairs)
			{
				P->truncated = true;
				break;
			}
			if (null1 || null2)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("pairs query row %lld has a null embedding",
								(long long) P->n + 1),
						 errhint("Filter the rows, e.g. WHERE e_old IS NOT NULL AND e_new IS NOT NULL.")));
			a = DatumGetEmbeddingP(d1);
			b = DatumGetEmbeddingP(d2);
			/* without the side-information, old embeddings need not carry it */
			check_embedding(a, from, P->n, "old", P->sdim > 0);
			check_embedding(b, to, P->n, "new", false);
			check_finite(a->x, a->dim + (P->sdim > 0 ? a->side_dim : 0), P->n, "old");
			check_finite(b->x, b->dim, P->n, "new");

			if (P->n == P->cap)
			{
				Size		rowbytes = (Size) P->stride * sizeof(float4) + P->row_extra;
				int64		newcap = P->cap == 0 ? 1024 : P->cap * 2;

				if (newcap > o->max_pairs)
					newcap = o->max_pairs;
				if ((Size) (P->n + 1) * rowbytes + mbytes > limit)
					fit_memory_error(method, P->dim + P->sdim, P->n + 1, P->stride,
								 P->row_extra, mbytes, limit);
				/* never reserve more than the limit lets us fill */
				if ((Size) newcap * rowbytes + mbytes > limit)
					newcap = (int64) ((limit - mbytes) / rowbytes);
				if (P->data == NULL)
					P->data = MemoryContextAllocHuge(fitcxt, (Size) newcap * rowbytes);
				else
					P->data = repalloc_huge(P->data, (Size) newcap * rowbytes);
				P->cap = newcap;
			}
			row = PAIR_ROW(P, P->n);
			memcpy(row, EMBEDDING_VEC(a), sizeof(float4) * P->dim);
			if (P->sdim > 0)
				memcpy(row + P->dim, EMBEDDING_SIDE(a), sizeof(float4) * P->sdim);
			memcpy(row + P->dim + P->sdim, EMBEDDING_VEC(b), sizeof(float4) * P->ndim);
			P->n++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
		if (P->truncated)
			break;
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/* Fisher-Yates on the rows themselves, so both splits are contiguous. */
void
fit_shuffle_rows(Pairs *P, pg_prng_state *rng)
{
	float4	   *tmp = palloc(sizeof(float4) * P->stride);
	int64		i;

	for (i = P->n - 1; i > 0; i--)
	{
		int64		j = (int64) pg_prng_uint64_range(rng, 0, (uint64) i);

		if (j != i)
		{
			memcpy(tmp, PAIR_ROW(P, i), sizeof(float4) * P->stride);
			memcpy(PAIR_ROW(P, i), PAIR_ROW(P, j), sizeof(float4) * P->stride);
			memcpy(PAIR_ROW(P, j), tmp, sizeof(float4) * P->stride);
		}
	}
	pfree(tmp);
}

/* ------------------------------------------------------------ losses */

/* Mean squared error (over pairs and coordinates) of predicting the training mean. */
double
fit_baseline_loss(const Pairs *P, int64 val_n)
{
	int			off = P->dim + P->sdim;
	double	   *mean;
	double		sum = 0;
	int64		i;
	int			j;

	if (val_n == 0)
		return NAN;
	mean = palloc0(sizeof(double) * P->ndim);
	for (i = val_n; i < P->n; i++)
		for (j = 0; j < P->ndim; j++)
			mean[j] += PAIR_ROW(P, i)[off + j];
	for (j = 0; j < P->ndim; j++)
		mean[j] /= (double) (P->n - val_n);
	for (i = 0; i < val_n; i++)
		for (j = 0; j < P->ndim; j++)
		{
			double		d = PAIR_ROW(P, i)[off + j] - mean[j];

			sum += d * d;
		}
	pfree(mean);
	return sum / ((double) val_n * P->ndim);
}
