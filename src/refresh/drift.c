/*
 * drift.c
 *	  Drift: how far a fresh embedding moved from the stored one,
 *	  ||stored - new|| / ||stored|| over the vector (fct_drift), and whether
 *	  a fresh value is a stale copy not worth writing (refresh_is_stale, used
 *	  by fct_refresh and the trigger fct_skip_stale).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/float.h"

#include "kernels/distance.h"
#include "type/embedding.h"
#include "refresh/refresh.h"

/*
 * ||a - b|| / ||a|| over n floats.  A zero a gives 0 if b is zero too and
 * +infinity otherwise: no finite threshold skips a move away from zero.
 */
static inline float8
drift_floats(const float4 *a, const float4 *b, int n)
{
	float8		na = kernel_norm_squared(a, n);
	float8		d = kernel_l2_squared(a, b, n);

	if (na == 0.0)
		return d == 0.0 ? 0.0 : get_float8_infinity();
	return sqrt(d / na);
}

/*
 * Is b a stale copy of a, i.e. not worth writing?  Same model, dimension and
 * side-information, and a vector drift below threshold.  (Side-information
 * comes from another model and is not part of the drift: any change of it is
 * a change worth writing.)
 */
bool
refresh_is_stale(const Embedding *a, const Embedding *b, float8 threshold)
{
	if (a->model_id != b->model_id || a->dim != b->dim ||
		a->side_dim != b->side_dim)
		return false;
	if (a->side_dim > 0 &&
		memcmp(EMBEDDING_SIDE(a), EMBEDDING_SIDE(b), sizeof(float4) * a->side_dim) != 0)
		return false;
	return drift_floats(EMBEDDING_VEC(a), EMBEDDING_VEC(b), a->dim) < threshold;
}

/* Errors unless a and b are of the same model and vector dimension. */
static void
drift_check_comparable(const Embedding *a, const Embedding *b)
{
	if (a->model_id != b->model_id)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot measure the drift between embeddings of models \"%s\" and \"%s\"",
						model_display_name(a->model_id),
						model_display_name(b->model_id)),
				 errhint("Drift compares two values of the same model; upgrade one of them to the other's model first.")));
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot measure the drift between embeddings of %d and %d dimensions",
						a->dim, b->dim)));
}

PG_FUNCTION_INFO_V1(fct_drift);
Datum
fct_drift(PG_FUNCTION_ARGS)
{
	Embedding  *a = PG_GETARG_EMBEDDING_P(0);
	Embedding  *b = PG_GETARG_EMBEDDING_P(1);
	float8		r;

	drift_check_comparable(a, b);
	r = drift_floats(EMBEDDING_VEC(a), EMBEDDING_VEC(b), a->dim);
	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	PG_RETURN_FLOAT8(r);
}

/* The drift of fresh from stored (the same vector dimension). */
float8
refresh_drift(const Embedding *stored, const Embedding *fresh)
{
	return drift_floats(EMBEDDING_VEC(stored), EMBEDDING_VEC(fresh), stored->dim);
}
