/*
 * prior.c
 *	  A label prior as a vector: validation (prior_validate, and the SQL
 *	  function fct_check_prior), the floor every estimate is raised to, and
 *	  the real[] a prior is returned as.  It calls nothing else of labels/:
 *	  the catalog (labelset.c) validates the priors it reads here, and the
 *	  estimates (prior_em.c, adapter.c) finish here.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "labels/labels.h"
#include "utils/builtins.h"

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
prior_array(const float8 *v, int n)
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
	PG_RETURN_ARRAYTYPE_P(prior_array(p, n));
}
