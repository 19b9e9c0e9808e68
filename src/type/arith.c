/*
 * arith.c
 *	  Sums of embeddings: the + and - operators and the avg(embedding)
 *	  aggregate, the ones pgvector users reach for (centroids, analogies).
 *
 * Operands must lie in one space: the same vector dimension, and the same
 * model, or no model (a value without a model, such as a pgvector value cast
 * to embedding, adds to any model's value, as it compares with any in the
 * distance operators).  The result names that model.  It has no
 * side-information: side-information describes the one item a value was
 * computed from, and a sum or a mean is no item.  Values of two different
 * models are refused (22000) rather than upgraded on the fly: which space
 * the sum should live in is the caller's choice (fct_upgrade one side).
 *
 * Arithmetic is a plain loop in double, rounded once to float4, so the
 * operators give the same bits on every CPU (they are IMMUTABLE).  avg sums
 * in double in the order rows arrive; a parallel plan combines partial sums
 * in the order workers finish, so avg is exact to float4 rounding but not
 * bit-identical between plans, as avg(float4) is not.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "model/model.h"
#include "type/embedding.h"
#include "utils/array.h"

/* The model of a sum of a and b, or an error when they lie in two spaces. */
static int32
common_model(int32 a, int32 b)
{
	if (a != 0 && b != 0 && a != b)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot add or average embeddings of two different models"),
				 errdetail("Models \"%s\" and \"%s\".", model_by_id(a)->name, model_by_id(b)->name),
				 errhint("Upgrade one side first: fct_upgrade(e, 'model').")));
	return a != 0 ? a : b;
}

static Embedding *
add_sub(Embedding *a, Embedding *b, bool sub)
{
	Embedding  *r;
	float4	   *x;
	const float4 *ax = EMBEDDING_VEC(a);
	const float4 *bx = EMBEDDING_VEC(b);

	embedding_check_same_dim(a, b);
	r = embedding_alloc(a->dim, 0, common_model(a->model_id, b->model_id));
	x = EMBEDDING_VEC(r);
	for (int i = 0; i < a->dim; i++)
		x[i] = (float4) (sub ? (float8) ax[i] - (float8) bx[i] : (float8) ax[i] + (float8) bx[i]);
	/* float4 overflow gives infinity: 22003, as everywhere */
	embedding_finalize(r);
	return r;
}

PG_FUNCTION_INFO_V1(fct_embedding_add);
Datum
fct_embedding_add(PG_FUNCTION_ARGS)
{
	PG_RETURN_EMBEDDING_P(add_sub(PG_GETARG_EMBEDDING_P(0), PG_GETARG_EMBEDDING_P(1), false));
}

PG_FUNCTION_INFO_V1(fct_embedding_sub);
Datum
fct_embedding_sub(PG_FUNCTION_ARGS)
{
	PG_RETURN_EMBEDDING_P(add_sub(PG_GETARG_EMBEDDING_P(0), PG_GETARG_EMBEDDING_P(1), true));
}

/*
 * avg's state is a double precision[]: {n, model id, dim, sum_1 .. sum_dim}
 * ({0} before the first row).  An array, not internal, so that it needs no
 * serial functions for parallel aggregation; a model id and a dimension
 * (below 2^24) are exact in a double.
 */
#define STATE_HEAD	3

static float8 *
state_values(ArrayType *a, int *n)
{
	if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		elog(ERROR, "avg(embedding): malformed state");
	*n = ARR_DIMS(a)[0];
	return (float8 *) ARR_DATA_PTR(a);
}

static ArrayType *
state_make(const float8 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

PG_FUNCTION_INFO_V1(fct_embedding_avg_accum);
Datum
fct_embedding_avg_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *sa = PG_GETARG_ARRAYTYPE_P(0);
	Embedding  *e = PG_GETARG_EMBEDDING_P(1);
	const float4 *x = EMBEDDING_VEC(e);
	int			n;
	float8	   *s = state_values(sa, &n);
	float8	   *out;

	if (s[0] == 0)
	{
		out = palloc0(sizeof(float8) * (STATE_HEAD + e->dim));
		out[1] = e->model_id;
		out[2] = e->dim;
	}
	else
	{
		if ((int) s[2] != e->dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different embedding dimensions %d and %d", (int) s[2], e->dim)));
		out = palloc(sizeof(float8) * n);
		memcpy(out, s, sizeof(float8) * n);
		out[1] = common_model((int32) s[1], e->model_id);
	}
	out[0] += 1;
	for (int i = 0; i < e->dim; i++)
		out[STATE_HEAD + i] += x[i];
	PG_RETURN_ARRAYTYPE_P(state_make(out, STATE_HEAD + e->dim));
}

PG_FUNCTION_INFO_V1(fct_embedding_avg_combine);
Datum
fct_embedding_avg_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *aa = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *ba = PG_GETARG_ARRAYTYPE_P(1);
	int			na,
				nb;
	float8	   *a = state_values(aa, &na);
	float8	   *b = state_values(ba, &nb);
	float8	   *out;

	if (b[0] == 0)
		PG_RETURN_ARRAYTYPE_P(aa);
	if (a[0] == 0)
		PG_RETURN_ARRAYTYPE_P(ba);
	if (na != nb)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different embedding dimensions %d and %d", (int) a[2], (int) b[2])));
	out = palloc(sizeof(float8) * na);
	out[0] = a[0] + b[0];
	out[1] = common_model((int32) a[1], (int32) b[1]);
	out[2] = a[2];
	for (int i = STATE_HEAD; i < na; i++)
		out[i] = a[i] + b[i];
	PG_RETURN_ARRAYTYPE_P(state_make(out, na));
}

PG_FUNCTION_INFO_V1(fct_embedding_avg_final);
Datum
fct_embedding_avg_final(PG_FUNCTION_ARGS)
{
	ArrayType  *sa = PG_GETARG_ARRAYTYPE_P(0);
	int			n;
	float8	   *s = state_values(sa, &n);
	Embedding  *e;
	float4	   *x;

	/* no rows (or only NULLs): NULL, as avg of anything */
	if (s[0] == 0)
		PG_RETURN_NULL();
	e = embedding_alloc(n - STATE_HEAD, 0, (int32) s[1]);
	x = EMBEDDING_VEC(e);
	for (int i = 0; i < e->dim; i++)
		x[i] = (float4) (s[STATE_HEAD + i] / s[0]);
	embedding_finalize(e);
	PG_RETURN_EMBEDDING_P(e);
}
