/*
 * operators.c
 *	  The SQL distance functions l2_distance, inner_product, cosine_distance
 *	  and the operators <-> (L2 distance), <#> (negative inner product, so that
 *	  ascending order is "most similar first", as in pgvector) and <=> (cosine
 *	  distance), on the vector part of two embeddings.
 *
 * Each call first makes its operands comparable (operands_align), then runs a
 * kernel from distance.c.  Comparing is cheap and per-row work touches no
 * catalog: the model ids are compared as integers, and the registry is read
 * only to name the models in an error.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"

#include "kernels/distance.h"
#include "type/embedding.h"
#include "model/model.h"
#include "upgrade/transform.h"

/*
 * Make *a and *b comparable, or error.  The one place that decides when two
 * embeddings can meet:
 *
 *	 - same model, or at least one operand naming no model (a bare literal such
 *	   as '[1,2,3]' is taken to be in the other operand's space, which keeps
 *	   pgvector-style queries working against model-tagged columns);
 *	 - then the same vector dimension.
 *
 * Two different models: when a registered path leads from one to the other,
 * the older operand (the one the path starts from) is upgraded on the fly
 * (transform_align; the resolved path and the output buffer live in
 * fn_extra, so a scan pays no look-up and no allocation per row); without a
 * path, an error.
 */
static void
operands_align(FunctionCallInfo fcinfo, Embedding **a, Embedding **b)
{
	int32		ma = (*a)->model_id;
	int32		mb = (*b)->model_id;

	if (ma != mb && ma != FCT_NO_MODEL && mb != FCT_NO_MODEL &&
		!transform_align(&fcinfo->flinfo->fn_extra, fcinfo->flinfo->fn_mcxt,
						 a, b))
	{
		const char *na = model_display_name(ma);
		const char *nb = model_display_name(mb);

		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot compare embeddings of different models \"%s\" and \"%s\"",
						na, nb),
				 errdetail("Embeddings of different models live in different spaces."),
				 errhint("Register a transformation from one model to the other (fct_register_transformation), or embed both operands with the same model.")));
	}

	embedding_check_same_dim(*a, *b);
}

PG_FUNCTION_INFO_V1(fct_l2_distance);
Datum
fct_l2_distance(PG_FUNCTION_ARGS)
{
	Embedding  *a = PG_GETARG_EMBEDDING_P(0);
	Embedding  *b = PG_GETARG_EMBEDDING_P(1);

	operands_align(fcinfo, &a, &b);
	PG_RETURN_FLOAT8(sqrt(kernel_l2_squared(EMBEDDING_VEC(a), EMBEDDING_VEC(b),
											a->dim)));
}

PG_FUNCTION_INFO_V1(fct_inner_product);
Datum
fct_inner_product(PG_FUNCTION_ARGS)
{
	Embedding  *a = PG_GETARG_EMBEDDING_P(0);
	Embedding  *b = PG_GETARG_EMBEDDING_P(1);

	operands_align(fcinfo, &a, &b);
	PG_RETURN_FLOAT8(kernel_inner_product(EMBEDDING_VEC(a), EMBEDDING_VEC(b),
										  a->dim));
}

PG_FUNCTION_INFO_V1(fct_negative_inner_product);
Datum
fct_negative_inner_product(PG_FUNCTION_ARGS)
{
	Embedding  *a = PG_GETARG_EMBEDDING_P(0);
	Embedding  *b = PG_GETARG_EMBEDDING_P(1);

	operands_align(fcinfo, &a, &b);
	PG_RETURN_FLOAT8(-kernel_inner_product(EMBEDDING_VEC(a), EMBEDDING_VEC(b),
										   a->dim));
}

PG_FUNCTION_INFO_V1(fct_cosine_distance);
Datum
fct_cosine_distance(PG_FUNCTION_ARGS)
{
	Embedding  *a = PG_GETARG_EMBEDDING_P(0);
	Embedding  *b = PG_GETARG_EMBEDDING_P(1);

	operands_align(fcinfo, &a, &b);
	PG_RETURN_FLOAT8(kernel_cosine_distance(EMBEDDING_VEC(a), EMBEDDING_VEC(b),
											a->dim));
}
