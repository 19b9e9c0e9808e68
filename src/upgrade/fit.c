/*
 * fit.c
 *	  Fitting a transformation inside the database: fct_fit_transformation.
 *
 * The user gives a query returning pairs (old embedding with its
 * side-information, new embedding of the same item).  The pairs are read
 * through SPI with the caller's rights (the SQL function is not SECURITY
 * DEFINER), copied into one float matrix, shuffled with a seeded generator and
 * split into a training and a validation part.  Then one of two methods fits
 * h(old, side) ~ new:
 *
 *	 linear  closed-form ridge regression on [old, side, 1]: the normal
 *			 equations (X'X + lambda I) W' = X'Y, solved by LAPACK (Cholesky,
 *			 sposv_, with an LU fallback, sgesv_).  The bias is not penalised.
 *	 mlp	 the apple/ml-fct shape with small widths: an old branch
 *			 Linear+ReLU, a side branch Linear+ReLU, their outputs
 *			 concatenated, then a mixer MLP (Linear+ReLU ..., Linear); trained
 *			 with Adam on the mean squared error in minibatches.  Every matrix
 *			 product is one cblas_sgemm; with the serial OpenBLAS and a fixed
 *			 seed the result is the same bit for bit on one machine.
 *
 * The inputs of the mlp are standardised (per coordinate, training mean and
 * standard deviation) while training, and the standardisation is folded into
 * the first layer of each branch at the end, so that the registered spec takes
 * raw embeddings.  The layers are registered as they are (transform.h's
 * transform_register_net, no jsonb round trip) with origin 'fitted' and the
 * training metrics, and the metrics are returned; with {"register": false}
 * nothing is registered and the spec is returned with the metrics.
 *
 * Memory: the function holds the pairs matrix (n x (dim + side_dim + new_dim)
 * float4) plus, for linear, the normal equations ((p+1)^2 + new_dim (p+1)
 * floats, p = dim + side_dim), or, for mlp, the weights with their gradients
 * and both Adam moments (4 floats per parameter) and the minibatch buffers.
 * The total must stay within maintenance_work_mem; options.max_pairs caps the
 * number of pairs read (the first ones the query returns).
 */
#include "postgres.h"

#include <math.h>

#include <cblas.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#include "type/embedding.h"
#include "model/model.h"
#include "query/query.h"
#include "upgrade/transform.h"

/*
 * LAPACK, from the same OpenBLAS library.  It is Fortran compiled by
 * gfortran: character arguments carry a hidden length after the others.
 */
extern void sposv_(const char *uplo, const int *n, const int *nrhs, float *a,
				   const int *lda, float *b, const int *ldb, int *info,
				   size_t uplo_len);
extern void sgesv_(const int *n, const int *nrhs, float *a, const int *lda,
				   int *ipiv, float *b, const int *ldb, int *info);

#define FIT_MIN_TRAIN		2		/* fewest training pairs accepted */
#define FIT_MAX_MIXER		8		/* most hidden layers in the mixer */
#define FIT_MAX_WIDTH		16384	/* widest hidden layer accepted */
#define FIT_FETCH			1000	/* rows per SPI fetch */

/*
 * A fit is registered only when its validation loss is below this share of
 * the loss of predicting the training mean (options.max_val_ratio), unless
 * options.force: a transformation that learned nothing would upgrade every
 * value to about the same point, silently.
 */
#define FIT_MAX_VAL_RATIO	0.9

/*
 * mlp with epochs not given: at least FIT_MIN_STEPS optimiser steps (a few
 * hundred pairs make three minibatches an epoch: 30 epochs would be 90 steps,
 * too few to move from the initial weights), at least FIT_DEFAULT_EPOCHS
 * epochs and at most FIT_MAX_AUTO_EPOCHS.
 */
#define FIT_DEFAULT_EPOCHS	30
#define FIT_MIN_STEPS		3000
#define FIT_MAX_AUTO_EPOCHS	2000

typedef enum FitMethod
{
	FIT_LINEAR,
	FIT_MLP
} FitMethod;

typedef struct FitOptions
{
	bool		use_side;
	int			epochs;
	double		lr;
	int			batch_size;
	int			old_hidden;
	int			side_hidden;
	int			n_mixer;		/* hidden layers of the mixer */
	int			mixer_hidden[FIT_MAX_MIXER];
	double		lambda;
	double		val_fraction;
	int64		seed;
	int64		max_pairs;
	bool		do_register;
	bool		epochs_auto;	/* epochs not given: chosen from the number of steps */
	int			patience;		/* mlp: epochs without a better validation loss; 0 = auto */
	double		max_val_ratio;	/* refuse unless val_loss < max_val_ratio * baseline */
	bool		force;			/* register even so */
} FitOptions;

/* The pairs, one row each: [old (dim) | side (sdim) | new (ndim)]. */
typedef struct Pairs
{
	float4	   *data;
	int64		n;
	int64		cap;
	int			dim;
	int			sdim;			/* 0 when the side-information is not used */
	int			ndim;
	int			stride;
	int			row_extra;		/* bytes held per pair besides the row (mlp's order) */
	bool		truncated;		/* max_pairs stopped the read */
} Pairs;

#define PAIR_ROW(P, i)	((P)->data + (Size) (i) * (P)->stride)

/* What fitting produced, for the spec and the metrics. */
typedef struct FitResult
{
	/* the fitted layers, in transform.h's terms (branches absent = identity) */
	bool		use_side;
	int			n_old;
	int			n_side;
	int			n_mixer;
	TransformLayer layers[FIT_MAX_MIXER + 3];
	double		train_loss;
	double		val_loss;		/* NaN when there is no validation split */
	double		baseline_val_loss;	/* predicting the training mean */
	double		seconds;		/* training time (excluding loading) */
	double		pairs_per_second;	/* training pairs through one epoch */
	double		seconds_per_epoch;
	int			epochs;
	int			best_epoch;		/* mlp: the epoch whose weights were kept (0: the last) */
	int64		n_params;
	StringInfoData history;		/* JSON arrays of per-epoch losses, or empty */
} FitResult;

/* ---------------------------------------------------------------- options */

static void
option_error(const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\" of fct_fit_transformation", key),
			 errdetail("Expected %s.", expected)));
}

static double
option_number(JsonbValue *v, const char *key, const char *expected)
{
	if (v->type != jbvNumeric)
		option_error(key, expected);
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8,
											  NumericGetDatum(v->val.numeric)));
}

static int64
option_integer(JsonbValue *v, const char *key, int64 lo, int64 hi)
{
	char		expected[128];
	double		d;

	snprintf(expected, sizeof(expected), "an integer between " INT64_FORMAT " and " INT64_FORMAT, lo, hi);
	d = option_number(v, key, expected);
	if (d != floor(d) || d < (double) lo || d > (double) hi)
		option_error(key, expected);
	return (int64) d;
}

static bool
option_bool(JsonbValue *v, const char *key)
{
	if (v->type != jbvBool)
		option_error(key, "true or false");
	return v->val.boolean;
}

/* Options that only one method reads. */
static const char *const linear_only[] = {"lambda", NULL};
static const char *const mlp_only[] = {"epochs", "lr", "batch_size", "old_hidden",
"side_hidden", "mixer_hidden", "seed", "patience", NULL};

static bool
in_list(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

static void
parse_options(Jsonb *jb, FitMethod method, FitOptions *o)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	int			depth = 0;

	o->use_side = true;
	o->epochs = FIT_DEFAULT_EPOCHS;
	o->lr = 1e-3;
	o->batch_size = 128;
	o->old_hidden = 128;
	o->side_hidden = 32;
	o->n_mixer = 1;
	o->mixer_hidden[0] = 128;
	o->lambda = 1e-3;
	o->val_fraction = 0.1;
	o->seed = 42;
	o->max_pairs = 1000000;
	o->do_register = true;
	o->epochs_auto = true;
	o->patience = 0;
	o->max_val_ratio = FIT_MAX_VAL_RATIO;
	o->force = false;

	if (jb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options of fct_fit_transformation must be a jsonb object")));

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT)
		{
			depth++;
			continue;
		}
		if (tok == WJB_END_OBJECT)
		{
			depth--;
			continue;
		}
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			if ((method == FIT_LINEAR && in_list(mlp_only, key)) ||
				(method == FIT_MLP && in_list(linear_only, key)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" does not apply to method \"%s\"",
								key, method == FIT_LINEAR ? "linear" : "mlp")));
			continue;
		}
		if (tok != WJB_VALUE || depth != 1 || key == NULL)
			continue;

		if (strcmp(key, "use_side") == 0)
			o->use_side = option_bool(&v, key);
		else if (strcmp(key, "register") == 0)
			o->do_register = option_bool(&v, key);
		else if (strcmp(key, "force") == 0)
			o->force = option_bool(&v, key);
		else if (strcmp(key, "epochs") == 0)
		{
			o->epochs = (int) option_integer(&v, key, 1, 100000);
			o->epochs_auto = false;
		}
		else if (strcmp(key, "patience") == 0)
			o->patience = (int) option_integer(&v, key, 0, 100000);
		else if (strcmp(key, "max_val_ratio") == 0)
		{
			o->max_val_ratio = option_number(&v, key, "a number in (0, 10]");
			if (!(o->max_val_ratio > 0 && o->max_val_ratio <= 10))
				option_error(key, "a number in (0, 10]");
		}
		else if (strcmp(key, "batch_size") == 0)
			o->batch_size = (int) option_integer(&v, key, 1, 65536);
		else if (strcmp(key, "old_hidden") == 0)
			o->old_hidden = (int) option_integer(&v, key, 1, FIT_MAX_WIDTH);
		else if (strcmp(key, "side_hidden") == 0)
			o->side_hidden = (int) option_integer(&v, key, 1, FIT_MAX_WIDTH);
		else if (strcmp(key, "seed") == 0)
			o->seed = option_integer(&v, key, 0, INT64CONST(9007199254740991));
		else if (strcmp(key, "max_pairs") == 0)
			o->max_pairs = option_integer(&v, key, 1, INT64CONST(100000000));
		else if (strcmp(key, "lr") == 0)
		{
			o->lr = option_number(&v, key, "a number between 0 and 1");
			if (!(o->lr > 0 && o->lr <= 1))
				option_error(key, "a number between 0 and 1");
		}
		else if (strcmp(key, "lambda") == 0)
		{
			o->lambda = option_number(&v, key, "a number >= 0");
			if (!(o->lambda >= 0 && o->lambda < 1e30))
				option_error(key, "a number >= 0");
		}
		else if (strcmp(key, "val_fraction") == 0)
		{
			o->val_fraction = option_number(&v, key, "a number in [0, 0.9]");
			if (!(o->val_fraction >= 0 && o->val_fraction <= 0.9))
				option_error(key, "a number in [0, 0.9]");
		}
		else if (strcmp(key, "mixer_hidden") == 0)
		{
			/* an array of widths ([] = a single linear mixer layer) */
			if (v.type != jbvBinary)
				option_error(key, "an array of widths, e.g. [128]");
			{
				JsonbIterator *ait = JsonbIteratorInit(v.val.binary.data);
				JsonbValue	av;
				JsonbIteratorToken atok;
				int			n = 0;

				atok = JsonbIteratorNext(&ait, &av, true);
				if (atok != WJB_BEGIN_ARRAY)
					option_error(key, "an array of widths, e.g. [128]");
				while ((atok = JsonbIteratorNext(&ait, &av, true)) == WJB_ELEM)
				{
					if (n >= FIT_MAX_MIXER)
						option_error(key, "at most 8 widths");
					o->mixer_hidden[n++] = (int) option_integer(&av, key, 1, FIT_MAX_WIDTH);
				}
				o->n_mixer = n;
			}
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\" of fct_fit_transformation", key),
					 errhint("Options are use_side, val_fraction, max_pairs, register, "
							 "max_val_ratio and force; lambda for linear; epochs, patience, lr, "
							 "batch_size, old_hidden, side_hidden, mixer_hidden and seed for mlp.")));
	}
}

/* ------------------------------------------------------------ memory bound */

/* Bytes of everything but the pairs, for the method and shapes. */
static Size
model_bytes(FitMethod method, const FitOptions *o, int dim, int sdim, int ndim)
{
	double		floats;

	if (method == FIT_LINEAR)
	{
		double		p1 = (double) dim + sdim + 1;

		/* G and the right sides, each with a copy for the LU fallback; W; pivots */
		floats = 2 * (p1 * p1 + (double) ndim * p1) + (double) ndim * p1 + p1 +
			1024.0 * ndim;
	}
	else
	{
		double		params = 0,
					acts = 0,
					in;
		int			i;

		params += (double) o->old_hidden * (dim + 1);
		acts += o->old_hidden;
		in = o->old_hidden;
		if (sdim > 0)
		{
			params += (double) o->side_hidden * (sdim + 1);
			acts += o->side_hidden;
			in += o->side_hidden;
		}
		for (i = 0; i < o->n_mixer; i++)
		{
			params += (double) o->mixer_hidden[i] * (in + 1);
			acts += o->mixer_hidden[i];
			in = o->mixer_hidden[i];
		}
		params += (double) ndim * (in + 1);
		acts += ndim;
		/* weights, the best ones, gradients, two Adam moments; outputs and their gradients */
		floats = 5 * params + 2 * acts * o->batch_size +
			(double) o->batch_size * (dim + sdim + ndim) + 2.0 * (dim + sdim);
	}
	return (Size) Min(floats * sizeof(float4), (double) MaxAllocHugeSize);
}

static Size
fit_limit_bytes(void)
{
	return (Size) maintenance_work_mem * 1024;
}

static void
memory_error(FitMethod method, int stride_in, int64 npairs, int stride,
			 int row_extra, Size mbytes, Size limit)
{
	Size		rowbytes = (Size) stride * sizeof(float4) + row_extra;
	int64		max_fit = (int64) ((limit > mbytes ? limit - mbytes : 0) / rowbytes);

	if (npairs == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("fitting would hold more than maintenance_work_mem (%d kB)",
						maintenance_work_mem),
				 errdetail("The model alone (weights, gradients, Adam moments or normal "
						   "equations, batch buffers) takes %lld kB, before any pair.",
						   (long long) (mbytes / 1024)),
				 method == FIT_LINEAR ?
				 errhint("Raise maintenance_work_mem: the normal equations of %d inputs "
						 "take (%d + 1)^2 floats, twice.", stride_in, stride_in) :
				 errhint("Raise maintenance_work_mem, or choose smaller hidden widths "
						 "or batch_size.")));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("fitting would hold more than maintenance_work_mem (%d kB)",
					maintenance_work_mem),
			 errdetail("%lld pairs of %d floats (and %d bytes of bookkeeping) take %lld kB, and the model "
					   "(weights, gradients, Adam moments or normal equations, "
					   "batch buffers) %lld kB.",
					   (long long) npairs, stride, row_extra,
					   (long long) ((Size) npairs * rowbytes / 1024),
					   (long long) (mbytes / 1024)),
			 errhint("Raise maintenance_work_mem, set options.max_pairs to at most "
					 "%lld, or return fewer pairs from the query.",
					 (long long) max_fit)));
}

/* ------------------------------------------------------------ reading pairs */

static Oid
embedding_type_oid(void)
{
	Oid			nsp = fct_extension_schema();
	Oid			typid;

	typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
							CStringGetDatum("embedding"),
							ObjectIdGetDatum(nsp));
	if (!OidIsValid(typid))
		elog(ERROR, "type embedding of extension fct not found");
	return typid;
}

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
static void
read_pairs(const char *query, const FctModel *from, const FctModel *to,
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
					memory_error(method, P->dim + P->sdim, P->n + 1, P->stride,
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
static void
shuffle_rows(Pairs *P, pg_prng_state *rng)
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

/* ------------------------------------------------------------ JSON helpers */

static void
append_floats(StringInfo s, const float4 *x, int n)
{
	int			i;

	appendStringInfoChar(s, '[');
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(s, ',');
		/* 9 significant digits: a float4 reads back bit for bit */
		appendStringInfo(s, "%.9g", (double) x[i]);
	}
	appendStringInfoChar(s, ']');
}

static void
append_layer(StringInfo s, const TransformLayer *L)
{
	int			r;

	appendStringInfoString(s, "{\"weight\":[");
	for (r = 0; r < L->out_dim; r++)
	{
		if (r > 0)
			appendStringInfoChar(s, ',');
		append_floats(s, L->weight + (Size) r * L->in_dim, L->in_dim);
		CHECK_FOR_INTERRUPTS();
	}
	appendStringInfoString(s, "],\"bias\":");
	append_floats(s, L->bias, L->out_dim);
	appendStringInfo(s, ",\"activation\":\"%s\"}", L->relu ? "relu" : "none");
}

static void
append_double(StringInfo s, double d)
{
	if (isnan(d) || isinf(d))
		appendStringInfoString(s, "null");
	else
		appendStringInfo(s, "%.17g", d);
}

/* ------------------------------------------------------------ losses */

/* Mean squared error (over pairs and coordinates) of predicting the training mean. */
static double
baseline_loss(const Pairs *P, int64 val_n)
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

/* ------------------------------------------------------------ linear */

/*
 * Ridge regression: minimise |X W' + 1 b' - Y|^2 + lambda |W|^2 over the
 * training rows, X = [old, side].  With G = [X 1]'[X 1] + lambda diag(1..1, 0)
 * and R = [X 1]'Y, the solution solves G [W b]' = R.  G is symmetric, so its
 * row-major and column-major layouts agree; R is built transposed (new_dim x
 * (p+1), row-major), which is the column-major (p+1) x new_dim that LAPACK
 * wants, and the solution comes back in that layout: row j = [W_j, b_j].
 */
static void
fit_linear(Pairs *P, int64 val_n, const FitOptions *o, FitResult *res)
{
	int			p = P->dim + P->sdim;
	int			p1 = p + 1;
	int			nd = P->ndim;
	int64		ntr = P->n - val_n;
	const float4 *X = PAIR_ROW(P, val_n);
	const float4 *Y = X + p;
	float4	   *G = palloc_extended(sizeof(float4) * (Size) p1 * p1, MCXT_ALLOC_HUGE);
	float4	   *Gcopy;
	float4	   *R = palloc_extended(sizeof(float4) * (Size) nd * p1, MCXT_ALLOC_HUGE);
	float4	   *Rcopy;
	double	   *colsum = palloc0(sizeof(double) * (p1 + nd));
	int			info = 0;
	int			i,
				j;
	int64		r;
	instr_time	start,
				dur;
	float4	   *pred;
	float4	   *W,
			   *bias;
	const int	chunk = 1024;
	double		sse;

	INSTR_TIME_SET_CURRENT(start);

	/* G = X'X in the top-left p x p block (ldc = p1), R = Y'X (ldc = p1) */
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, p, (int) ntr,
				1.0f, X, P->stride, X, P->stride, 0.0f, G, p1);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nd, p, (int) ntr,
				1.0f, Y, P->stride, X, P->stride, 0.0f, R, p1);
	for (r = 0; r < ntr; r++)
	{
		const float4 *row = X + (Size) r * P->stride;

		for (j = 0; j < p + nd; j++)
			colsum[j] += row[j];
		if ((r & 65535) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	for (i = 0; i < p; i++)
	{
		G[(Size) i * p1 + p] = (float4) colsum[i];
		G[(Size) p * p1 + i] = (float4) colsum[i];
		G[(Size) i * p1 + i] += (float4) o->lambda;
	}
	G[(Size) p * p1 + p] = (float4) ntr;
	for (j = 0; j < nd; j++)
		R[(Size) j * p1 + p] = (float4) colsum[p + j];

	/* Cholesky first; when G is not positive definite (lambda 0, rank-deficient X), LU */
	Gcopy = palloc_extended(sizeof(float4) * (Size) p1 * p1, MCXT_ALLOC_HUGE);
	Rcopy = palloc_extended(sizeof(float4) * (Size) nd * p1, MCXT_ALLOC_HUGE);
	memcpy(Gcopy, G, sizeof(float4) * (Size) p1 * p1);
	memcpy(Rcopy, R, sizeof(float4) * (Size) nd * p1);
	sposv_("U", &p1, &nd, G, &p1, R, &p1, &info, 1);
	if (info > 0)
	{
		int		   *ipiv = palloc(sizeof(int) * p1);

		memcpy(G, Gcopy, sizeof(float4) * (Size) p1 * p1);
		memcpy(R, Rcopy, sizeof(float4) * (Size) nd * p1);
		sgesv_(&p1, &nd, G, &p1, ipiv, R, &p1, &info);
		if (info > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the normal equations of the linear fit are singular"),
					 errdetail("%lld training pairs for %d coefficients per output, ridge lambda %g.",
							   (long long) ntr, p1, o->lambda),
					 errhint("Set options.lambda > 0, or give more (and more varied) pairs.")));
		pfree(ipiv);
	}
	if (info < 0)
		elog(ERROR, "LAPACK argument %d was invalid", -info);
	pfree(Gcopy);
	pfree(Rcopy);

	/* W (nd x p) and bias (nd) out of R's rows [W_j, b_j] */
	W = palloc_extended(sizeof(float4) * (Size) nd * p, MCXT_ALLOC_HUGE);
	bias = palloc(sizeof(float4) * nd);
	for (j = 0; j < nd; j++)
	{
		memcpy(W + (Size) j * p, R + (Size) j * p1, sizeof(float4) * p);
		bias[j] = R[(Size) j * p1 + p];
	}
	for (i = 0; i < nd * p; i++)
		if (!isfinite(W[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FLOATING_POINT_EXCEPTION),
					 errmsg("the linear fit produced non-finite weights"),
					 errhint("Set options.lambda > 0.")));

	INSTR_TIME_SET_CURRENT(dur);
	INSTR_TIME_SUBTRACT(dur, start);
	res->seconds = INSTR_TIME_GET_DOUBLE(dur);
	res->epochs = 0;
	res->best_epoch = 0;
	res->seconds_per_epoch = NAN;
	res->pairs_per_second = res->seconds > 0 ? ntr / res->seconds : NAN;
	res->n_params = (int64) nd * p1;

	/* losses, in chunks so that the prediction buffer stays small */
	pred = palloc(sizeof(float4) * chunk * nd);
	for (i = 0; i < 2; i++)
	{
		int64		lo = i == 0 ? val_n : 0;
		int64		hi = i == 0 ? P->n : val_n;

		sse = 0;
		for (r = lo; r < hi; r += chunk)
		{
			int			m = (int) Min(chunk, hi - r);
			int			k,
						c;

			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nd, p,
						1.0f, PAIR_ROW(P, r), P->stride, W, p, 0.0f, pred, nd);
			for (k = 0; k < m; k++)
				for (c = 0; c < nd; c++)
				{
					double		d = (double) pred[k * nd + c] + bias[c] -
						PAIR_ROW(P, r + k)[p + c];

					sse += d * d;
				}
			CHECK_FOR_INTERRUPTS();
		}
		if (i == 0)
			res->train_loss = sse / ((double) ntr * nd);
		else
			res->val_loss = hi > 0 ? sse / ((double) hi * nd) : NAN;
	}

	/* identity branches (side absent or null), one linear mixer layer */
	res->use_side = P->sdim > 0;
	res->n_old = 0;
	res->n_side = 0;
	res->n_mixer = 1;
	res->layers[0] = (TransformLayer)
	{
		.in_dim = p,.out_dim = nd,.relu = false,.weight = W,.bias = bias
	};
	initStringInfo(&res->history);
}

/* ------------------------------------------------------------ mlp */

typedef struct Layer
{
	int			in;
	int			out;
	bool		relu;			/* ReLU on the output */
	bool		in_relu;		/* the input is a ReLU output (mask its gradient) */
	float4	   *w;				/* out x in, row-major, in the parameter block */
	float4	   *b;
	float4	   *gw;				/* gradients, in the gradient block */
	float4	   *gb;
	const float4 *x;			/* input rows, leading dimension ldx */
	int			ldx;
	float4	   *y;				/* output rows, leading dimension ldy */
	int			ldy;
	float4	   *dy;				/* gradient of the output, same layout as y */
	float4	   *dx;				/* gradient of the input (NULL: not needed) */
} Layer;

typedef struct Net
{
	int			nlayers;
	Layer		layers[FIT_MAX_MIXER + 3];
	int			n_branch;		/* layers before the mixer (1 or 2) */
	int			side_layer;		/* index of the side layer, -1 when unused */
	Size		nparams;
	float4	   *params;
	float4	   *grads;
	float4	   *m;
	float4	   *v;
	float4	   *z;				/* concatenated branch outputs, B x zc */
	float4	   *dz;
	int			zc;
	int			batch;			/* rows the buffers hold */
} Net;

/*
 * The elementwise loops are small functions of restrict parameters, one simple
 * statement each, so that the compiler vectorises them without alias checks
 * (and without branches on the ReLU's sign, which the data make
 * unpredictable); the Makefile adds -fno-math-errno and the dynamic vector
 * cost model for this file.
 */

/* row = max(row + b, 0) */
static void
add_bias_relu(float4 *restrict row, const float4 *restrict b, int n)
{
	for (int j = 0; j < n; j++)
	{
		float4		t = row[j] + b[j];

		row[j] = t > 0.0f ? t : 0.0f;
	}
}

/* row += b */
static void
add_bias(float4 *restrict row, const float4 *restrict b, int n)
{
	for (int j = 0; j < n; j++)
		row[j] += b[j];
}

/* dx = 0 where the ReLU was off (x <= 0) */
static void
mask_relu(float4 *restrict dx, const float4 *restrict x, int n)
{
	for (int j = 0; j < n; j++)
		dx[j] = x[j] > 0.0f ? dx[j] : 0.0f;
}

static void
layer_forward(Layer *L, int B)
{
	int			r;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, L->out, L->in,
				1.0f, L->x, L->ldx, L->w, L->in, 0.0f, L->y, L->ldy);
	for (r = 0; r < B; r++)
	{
		if (L->relu)
			add_bias_relu(L->y + (Size) r * L->ldy, L->b, L->out);
		else
			add_bias(L->y + (Size) r * L->ldy, L->b, L->out);
	}
}

static void
layer_backward(Layer *L, int B)
{
	int			r;

	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->out, L->in, B,
				1.0f, L->dy, L->ldy, L->x, L->ldx, 0.0f, L->gw, L->in);
	memset(L->gb, 0, sizeof(float4) * L->out);
	for (r = 0; r < B; r++)
		add_bias(L->gb, L->dy + (Size) r * L->ldy, L->out);
	if (L->dx == NULL)
		return;
	/* dx has the layout of x when x is a buffer of ours (ld = ldx) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, L->in, L->out,
				1.0f, L->dy, L->ldy, L->w, L->in, 0.0f, L->dx, L->ldx);
	if (L->in_relu)
		for (r = 0; r < B; r++)
			mask_relu(L->dx + (Size) r * L->ldx, L->x + (Size) r * L->ldx, L->in);
}

/* One step of Adam over every parameter, as torch.optim.Adam computes it. */
static void
adam_update(float4 *restrict p, const float4 *restrict g, float4 *restrict m,
			float4 *restrict v, Size n, float step_size, float sbc2)
{
	const float b1 = 0.9f,
				b2 = 0.999f,
				eps = 1e-8f;

	for (Size i = 0; i < n; i++)
	{
		float		mi = b1 * m[i] + (1.0f - b1) * g[i];
		float		vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];

		m[i] = mi;
		v[i] = vi;
		p[i] -= step_size * mi / (sqrtf(vi) / sbc2 + eps);
	}
}

static void
adam_step(Net *N, float lr, int64 step)
{
	const float b1 = 0.9f,
				b2 = 0.999f;
	float		bc1 = 1.0f - powf(b1, (float) step);
	float		sbc2 = sqrtf(1.0f - powf(b2, (float) step));
	float		step_size = lr / bc1;

	adam_update(N->params, N->grads, N->m, N->v, N->nparams, step_size, sbc2);
}

/* Lay out the layers, their parameters and buffers; initialise like torch's nn.Linear. */
static void
net_build(Net *N, const Pairs *P, const FitOptions *o, pg_prng_state *rng)
{
	int			widths[FIT_MAX_MIXER + 1];
	int			nw = 0;
	int			i,
				in;
	Size		off;
	int			B = o->batch_size;

	memset(N, 0, sizeof(Net));
	N->batch = B;
	N->zc = o->old_hidden + (P->sdim > 0 ? o->side_hidden : 0);
	N->z = palloc_extended(sizeof(float4) * (Size) B * N->zc, MCXT_ALLOC_HUGE);
	N->dz = palloc_extended(sizeof(float4) * (Size) B * N->zc, MCXT_ALLOC_HUGE);

	/* old branch: writes the first old_hidden columns of z */
	N->layers[0] = (Layer)
	{
		.in = P->dim,.out = o->old_hidden,.relu = true,.ldx = P->stride,
			.y = N->z,.dy = N->dz,.ldy = N->zc
	};
	N->nlayers = 1;
	N->side_layer = -1;
	if (P->sdim > 0)
	{
		N->side_layer = 1;
		N->layers[1] = (Layer)
		{
			.in = P->sdim,.out = o->side_hidden,.relu = true,.ldx = P->stride,
				.y = N->z + o->old_hidden,.dy = N->dz + o->old_hidden,.ldy = N->zc
		};
		N->nlayers = 2;
	}
	N->n_branch = N->nlayers;

	/* the mixer */
	for (i = 0; i < o->n_mixer; i++)
		widths[nw++] = o->mixer_hidden[i];
	widths[nw++] = P->ndim;
	in = N->zc;
	for (i = 0; i < nw; i++)
	{
		Layer	   *L = &N->layers[N->nlayers];
		Layer	   *prev = i > 0 ? &N->layers[N->nlayers - 1] : NULL;

		L->in = in;
		L->out = widths[i];
		L->relu = i < nw - 1;
		L->in_relu = true;
		L->x = prev ? prev->y : N->z;
		L->ldx = in;
		L->dx = prev ? prev->dy : N->dz;
		L->y = palloc_extended(sizeof(float4) * (Size) B * L->out, MCXT_ALLOC_HUGE);
		L->dy = palloc_extended(sizeof(float4) * (Size) B * L->out, MCXT_ALLOC_HUGE);
		L->ldy = L->out;
		in = L->out;
		N->nlayers++;
	}

	/* one block each for parameters, gradients and the Adam moments */
	N->nparams = 0;
	for (i = 0; i < N->nlayers; i++)
		N->nparams += (Size) N->layers[i].out * (N->layers[i].in + 1);
	N->params = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE);
	N->grads = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	N->m = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	N->v = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	off = 0;
	for (i = 0; i < N->nlayers; i++)
	{
		Layer	   *L = &N->layers[i];
		Size		nw_l = (Size) L->out * L->in;
		double		bound = 1.0 / sqrt((double) L->in);
		Size		k;

		L->w = N->params + off;
		L->gw = N->grads + off;
		L->b = L->w + nw_l;
		L->gb = L->gw + nw_l;
		for (k = 0; k < nw_l + L->out; k++)
			L->w[k] = (float4) ((2.0 * pg_prng_double(rng) - 1.0) * bound);
		off += nw_l + L->out;
	}
}

/* Forward B rows starting at rows (leading dimension P->stride); returns the prediction. */
static float4 *
net_forward(Net *N, const Pairs *P, const float4 *rows, int B)
{
	int			i;

	N->layers[0].x = rows;
	if (N->side_layer >= 0)
		N->layers[N->side_layer].x = rows + P->dim;
	for (i = 0; i < N->nlayers; i++)
		layer_forward(&N->layers[i], B);
	return N->layers[N->nlayers - 1].y;
}

/* Sum of squared errors of the prediction for B rows; optionally the loss gradient. */
static double
net_sse(Net *N, const Pairs *P, const float4 *rows, int B, float4 *grad, float4 scale)
{
	Layer	   *last = &N->layers[N->nlayers - 1];
	const float4 *pred = last->y;
	int			off = P->dim + P->sdim;
	double		sse = 0;
	int			r,
				j;

	for (r = 0; r < B; r++)
	{
		const float4 *t = rows + (Size) r * P->stride + off;
		const float4 *y = pred + (Size) r * P->ndim;

		for (j = 0; j < P->ndim; j++)
		{
			float4		d = y[j] - t[j];

			sse += (double) d * d;
			if (grad)
				grad[(Size) r * P->ndim + j] = scale * d;
		}
	}
	return sse;
}

/* Mean squared error over rows [lo, hi), in batches. */
static double
net_loss(Net *N, const Pairs *P, int64 lo, int64 hi)
{
	double		sse = 0;
	int64		r;

	if (hi <= lo)
		return NAN;
	for (r = lo; r < hi; r += N->batch)
	{
		int			B = (int) Min(N->batch, hi - r);

		net_forward(N, P, PAIR_ROW(P, r), B);
		sse += net_sse(N, P, PAIR_ROW(P, r), B, NULL, 0);
		CHECK_FOR_INTERRUPTS();
	}
	return sse / ((double) (hi - lo) * P->ndim);
}

static void
divergence_error(double loss, int epoch, const FitOptions *o)
{
	ereport(ERROR,
			(errcode(ERRCODE_FLOATING_POINT_EXCEPTION),
			 errmsg("the mlp fit diverged at epoch %d (loss %g)", epoch, loss),
			 errhint("Lower options.lr (now %g).", o->lr)));
}

/*
 * The mlp's training loop.  What makes the defaults learn (issue #14: a
 * default fit on 300 pairs of new = [old, 2 old] ended at the mean
 * predictor's loss):
 *
 *	 - inputs standardised per coordinate and targets centred per coordinate
 *	   and scaled by one common factor (so the loss is still the plain mean
 *	   squared error, up to that factor), both with the training rows'
 *	   statistics and folded into the first and last layers at the end, so the
 *	   registered spec takes and gives raw embeddings;
 *	 - with epochs not given, enough epochs for FIT_MIN_STEPS steps;
 *	 - the learning rate decays along a cosine from lr to lr / 100 over the
 *	   planned steps;
 *	 - early stopping on the validation split: the weights of the epoch with
 *	   the lowest validation loss are kept, and training stops after
 *	   `patience` epochs without a better one.
 */
static void
fit_mlp(Pairs *P, int64 val_n, const FitOptions *o, pg_prng_state *rng,
		FitResult *res)
{
	int			p = P->dim + P->sdim;
	int			off = p;
	int64		ntr = P->n - val_n;
	double	   *mu = palloc0(sizeof(double) * p);
	double	   *sd = palloc0(sizeof(double) * p);
	double	   *ymu = palloc0(sizeof(double) * P->ndim);
	double		yscale = 0;
	double		yscale2;
	int64	   *order = palloc_extended(sizeof(int64) * ntr, MCXT_ALLOC_HUGE);
	float4	   *batch;
	float4	   *best;
	Net			N;
	int64		r;
	int			j,
				epoch,
				epochs,
				patience,
				best_epoch = 0;
	int64		step = 0,
				steps_per_epoch,
				total_steps;
	double		best_val = INFINITY;
	double		train_seconds = 0;
	StringInfoData thist,
				vhist;

	/*
	 * Standardise the inputs with the training rows' statistics (in place;
	 * folded back into the first layers at the end).
	 */
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < p; j++)
			mu[j] += PAIR_ROW(P, r)[j];
	for (j = 0; j < p; j++)
		mu[j] /= (double) ntr;
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < p; j++)
		{
			double		d = PAIR_ROW(P, r)[j] - mu[j];

			sd[j] += d * d;
		}
	for (j = 0; j < p; j++)
	{
		sd[j] = sqrt(sd[j] / (double) ntr);
		if (!(sd[j] > 1e-12))
			sd[j] = 1.0;		/* a constant coordinate: centre it only */
	}

	/* the targets: centred per coordinate, one scale for all (the rms deviation) */
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < P->ndim; j++)
			ymu[j] += PAIR_ROW(P, r)[off + j];
	for (j = 0; j < P->ndim; j++)
		ymu[j] /= (double) ntr;
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < P->ndim; j++)
		{
			double		d = PAIR_ROW(P, r)[off + j] - ymu[j];

			yscale += d * d;
		}
	yscale = sqrt(yscale / ((double) ntr * P->ndim));
	if (!(yscale > 1e-12))
		yscale = 1.0;
	yscale2 = yscale * yscale;

	for (r = 0; r < P->n; r++)
	{
		float4	   *row = PAIR_ROW(P, r);

		for (j = 0; j < p; j++)
			row[j] = (float4) ((row[j] - mu[j]) / sd[j]);
		for (j = 0; j < P->ndim; j++)
			row[off + j] = (float4) ((row[off + j] - ymu[j]) / yscale);
	}

	net_build(&N, P, o, rng);
	batch = palloc_extended(sizeof(float4) * (Size) o->batch_size * P->stride, MCXT_ALLOC_HUGE);
	best = palloc_extended(sizeof(float4) * N.nparams, MCXT_ALLOC_HUGE);
	for (r = 0; r < ntr; r++)
		order[r] = val_n + r;

	steps_per_epoch = (ntr + o->batch_size - 1) / o->batch_size;
	epochs = o->epochs;
	if (o->epochs_auto)
		epochs = (int) Min(FIT_MAX_AUTO_EPOCHS,
						   Max(FIT_DEFAULT_EPOCHS,
							   (FIT_MIN_STEPS + steps_per_epoch - 1) / steps_per_epoch));
	total_steps = steps_per_epoch * epochs;
	patience = o->patience > 0 ? o->patience : Max(10, epochs / 10);

	initStringInfo(&thist);
	initStringInfo(&vhist);
	for (epoch = 1; epoch <= epochs; epoch++)
	{
		instr_time	start,
					dur;
		double		sse = 0,
					val;

		INSTR_TIME_SET_CURRENT(start);
		/* a fresh order of the training rows each epoch */
		for (r = ntr - 1; r > 0; r--)
		{
			int64		k = (int64) pg_prng_uint64_range(rng, 0, (uint64) r);
			int64		t = order[r];

			order[r] = order[k];
			order[k] = t;
		}
		for (r = 0; r < ntr; r += o->batch_size)
		{
			int			B = (int) Min(o->batch_size, ntr - r);
			int			k;
			Layer	   *last = &N.layers[N.nlayers - 1];
			double		lr;

			CHECK_FOR_INTERRUPTS();
			for (k = 0; k < B; k++)
				memcpy(batch + (Size) k * P->stride, PAIR_ROW(P, order[r + k]),
					   sizeof(float4) * P->stride);
			net_forward(&N, P, batch, B);
			sse += net_sse(&N, P, batch, B, last->dy,
						   2.0f / ((float4) B * (float4) P->ndim));
			/* the branches' layers have dx NULL: no input gradient needed */
			for (k = N.nlayers - 1; k >= 0; k--)
				layer_backward(&N.layers[k], B);

			/* cosine decay from lr to lr / 100 over the planned steps */
			lr = o->lr * (0.01 + 0.99 * 0.5 * (1.0 + cos(M_PI * (double) step / (double) total_steps)));
			adam_step(&N, (float) lr, ++step);
		}
		INSTR_TIME_SET_CURRENT(dur);
		INSTR_TIME_SUBTRACT(dur, start);
		train_seconds += INSTR_TIME_GET_DOUBLE(dur);

		sse /= (double) ntr * P->ndim;
		if (!isfinite(sse))
			divergence_error(sse * yscale2, epoch, o);
		val = net_loss(&N, P, 0, val_n);
		appendStringInfoString(&thist, epoch > 1 ? "," : "[");
		append_double(&thist, sse * yscale2);
		appendStringInfoString(&vhist, epoch > 1 ? "," : "[");
		append_double(&vhist, val * yscale2);

		/* early stopping: keep the best weights, stop when they stay best */
		if (val_n > 0)
		{
			if (val < best_val)
			{
				best_val = val;
				best_epoch = epoch;
				memcpy(best, N.params, sizeof(float4) * N.nparams);
			}
			else if (epoch - best_epoch >= patience)
			{
				epoch++;
				break;
			}
		}
	}
	epochs = epoch - 1;
	appendStringInfoChar(&thist, ']');
	appendStringInfoChar(&vhist, ']');
	if (best_epoch > 0)
		memcpy(N.params, best, sizeof(float4) * N.nparams);

	res->train_loss = net_loss(&N, P, val_n, P->n) * yscale2;
	res->val_loss = net_loss(&N, P, 0, val_n) * yscale2;
	if (!isfinite(res->train_loss))
		divergence_error(res->train_loss, epochs, o);
	res->epochs = epochs;
	res->best_epoch = best_epoch;
	res->seconds = train_seconds;
	res->seconds_per_epoch = train_seconds / epochs;
	res->pairs_per_second = train_seconds > 0 ? (double) ntr * epochs / train_seconds : NAN;
	res->n_params = (int64) N.nparams;
	initStringInfo(&res->history);
	appendStringInfo(&res->history, "\"train_loss_history\":%s,\"val_loss_history\":%s,",
					 thist.data, vhist.data);

	/* fold the standardisation into the branches' first layers: W' = W / sd, b' = b - W' mu */
	for (j = 0; j < N.n_branch; j++)
	{
		Layer	   *L = &N.layers[j];
		int			base = (j == 0) ? 0 : P->dim;
		int			o_,
					i;

		for (o_ = 0; o_ < L->out; o_++)
		{
			float4	   *w = L->w + (Size) o_ * L->in;
			double		shift = 0;

			for (i = 0; i < L->in; i++)
			{
				w[i] = (float4) (w[i] / sd[base + i]);
				shift += (double) w[i] * mu[base + i];
			}
			L->b[o_] = (float4) (L->b[o_] - shift);
		}
	}
	/* and the targets' into the last layer: W' = s W, b' = s b + mean */
	{
		Layer	   *L = &N.layers[N.nlayers - 1];
		int			o_,
					i;

		for (o_ = 0; o_ < L->out; o_++)
		{
			float4	   *w = L->w + (Size) o_ * L->in;

			for (i = 0; i < L->in; i++)
				w[i] = (float4) (w[i] * yscale);
			L->b[o_] = (float4) (L->b[o_] * yscale + ymu[o_]);
		}
	}

	res->use_side = N.side_layer >= 0;
	res->n_old = 1;
	res->n_side = N.side_layer >= 0 ? 1 : 0;
	res->n_mixer = N.nlayers - N.n_branch;
	for (j = 0; j < N.nlayers; j++)
		res->layers[j] = (TransformLayer)
	{
		.in_dim = N.layers[j].in,.out_dim = N.layers[j].out,
			.relu = N.layers[j].relu,.weight = N.layers[j].w,.bias = N.layers[j].b
	};
}

/* The spec (the import format of fct_register_transformation) as JSON text. */
static char *
spec_text(const FitResult *res)
{
	StringInfoData s;
	int			k = 0;
	int			i;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	if (res->n_old > 0)
	{
		appendStringInfoString(&s, "\"old\":[");
		for (i = 0; i < res->n_old; i++, k++)
		{
			if (i > 0)
				appendStringInfoChar(&s, ',');
			append_layer(&s, &res->layers[k]);
		}
		appendStringInfoString(&s, "],");
	}
	if (!res->use_side)
		appendStringInfoString(&s, "\"side\":null,");
	else if (res->n_side > 0)
	{
		appendStringInfoString(&s, "\"side\":[");
		for (i = 0; i < res->n_side; i++, k++)
		{
			if (i > 0)
				appendStringInfoChar(&s, ',');
			append_layer(&s, &res->layers[k]);
		}
		appendStringInfoString(&s, "],");
	}
	appendStringInfoString(&s, "\"mixer\":[");
	for (i = 0; i < res->n_mixer; i++, k++)
	{
		if (i > 0)
			appendStringInfoChar(&s, ',');
		append_layer(&s, &res->layers[k]);
	}
	appendStringInfoString(&s, "]}");
	return s.data;
}

/* ------------------------------------------------------------ entry point */

PG_FUNCTION_INFO_V1(fct_fit_transformation);
Datum
fct_fit_transformation(PG_FUNCTION_ARGS)
{
	char	   *from_name,
			   *to_name,
			   *query,
			   *method_name;
	Jsonb	   *options;
	const FctModel *fromp,
			   *top;
	FctModel	from,
				to;
	FitMethod	method;
	FitOptions	o;
	Pairs		P;
	MemoryContext fitcxt,
				oldcxt;
	pg_prng_state rng;
	int64		val_n;
	FitResult	res;
	Size		mbytes;
	char	   *extra;
	StringInfoData metrics;
	Jsonb	   *metrics_jb;
	instr_time	t0,
				t1;
	bool		learned;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("from_model, to_model, pairs_query and method must not be null")));
	from_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	to_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	query = text_to_cstring(PG_GETARG_TEXT_PP(2));
	method_name = text_to_cstring(PG_GETARG_TEXT_PP(3));
	options = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);

	if (strcmp(method_name, "linear") == 0)
		method = FIT_LINEAR;
	else if (strcmp(method_name, "mlp") == 0)
		method = FIT_MLP;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown fitting method \"%s\"", method_name),
				 errhint("The methods are \"linear\" (closed-form ridge) and \"mlp\".")));
	parse_options(options, method, &o);

	/* copies: the cache entries live only until the end of the transaction */
	fromp = model_by_name(from_name);
	from = *fromp;
	top = model_by_name(to_name);
	to = *top;
	if (from.id == to.id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit a transformation from model \"%s\" to itself", from.name)));
	if (o.do_register)
	{
		/* fail before reading and training when the result could not be registered */
		transform_check_registrable(from.id, to.id);
		if (transform_path(from.id, to.id) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("a path from model \"%s\" to model \"%s\" already exists",
							from.name, to.name),
					 errhint("Transformations are immutable: register a new target model, "
							 "or pass options {\"register\": false} to fit without registering.")));
	}

	P.dim = from.dim;
	P.sdim = o.use_side ? from.side_dim : 0;
	P.ndim = to.dim;
	P.stride = P.dim + P.sdim + P.ndim;
	P.row_extra = method == FIT_MLP ? sizeof(int64) : 0;

	mbytes = model_bytes(method, &o, P.dim, P.sdim, P.ndim);
	if (mbytes > fit_limit_bytes())
		memory_error(method, P.dim + P.sdim, 0, P.stride, P.row_extra, mbytes,
					 fit_limit_bytes());

	fitcxt = AllocSetContextCreate(CurrentMemoryContext, "fct fit",
								   ALLOCSET_DEFAULT_SIZES);
	INSTR_TIME_SET_CURRENT(t0);
	read_pairs(query, &from, &to, method, &o, mbytes, fitcxt, &P);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);

	oldcxt = MemoryContextSwitchTo(fitcxt);

	/* the split: a validation share of the rows, at least one when asked for */
	val_n = 0;
	if (o.val_fraction > 0 && P.n > 0)
		val_n = Max(1, (int64) floor(P.n * o.val_fraction + 0.5));
	if (P.n - val_n < FIT_MIN_TRAIN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("too few pairs to fit a transformation: %lld", (long long) P.n),
				 errdetail("%lld go to validation (val_fraction %g), leaving %lld for "
						   "training; at least %d are needed.",
						   (long long) val_n, o.val_fraction,
						   (long long) (P.n - val_n), FIT_MIN_TRAIN),
				 errhint("Return more pairs from the query, or lower options.val_fraction.")));

	pg_prng_seed(&rng, (uint64) o.seed);
	shuffle_rows(&P, &rng);
	res.baseline_val_loss = baseline_loss(&P, val_n);
	if (method == FIT_LINEAR)
		fit_linear(&P, val_n, &o, &res);
	else
		fit_mlp(&P, val_n, &o, &rng, &res);

	/*
	 * A fit no better than predicting the mean is not registered unless the
	 * caller insists (without a validation split there is nothing to compare).
	 */
	learned = val_n == 0 || res.val_loss < o.max_val_ratio * res.baseline_val_loss;
	if (o.do_register && !learned && !o.force)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s fit from model \"%s\" to model \"%s\" learned nothing",
						method_name, from.name, to.name),
				 errdetail("Validation loss %g is not below %g times the loss of predicting "
						   "the training mean (%g); training loss %g, %lld training and %lld "
						   "validation pairs, %d epochs.",
						   res.val_loss, o.max_val_ratio, res.baseline_val_loss,
						   res.train_loss, (long long) (P.n - val_n), (long long) val_n,
						   res.epochs),
				 errhint("Check that each pair holds the same item in both columns; give more "
						 "pairs, try method \"linear\", or more epochs. Options {\"force\": true} "
						 "registers it anyway; {\"register\": false} returns it to inspect.")));

	/* the metrics: stored with the transformation and returned */
	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"method\":\"%s\",\"from_model\":", method_name);
	escape_json(&metrics, from.name);
	appendStringInfoString(&metrics, ",\"to_model\":");
	escape_json(&metrics, to.name);
	appendStringInfo(&metrics, ",\"use_side\":%s,\"n_pairs\":%lld,\"n_train\":%lld,"
					 "\"n_val\":%lld,\"pairs_truncated\":%s,\"n_params\":%lld,",
					 P.sdim > 0 ? "true" : "false", (long long) P.n,
					 (long long) (P.n - val_n), (long long) val_n,
					 P.truncated ? "true" : "false", (long long) res.n_params);
	appendStringInfoString(&metrics, "\"train_loss\":");
	append_double(&metrics, res.train_loss);
	appendStringInfoString(&metrics, ",\"val_loss\":");
	append_double(&metrics, res.val_loss);
	appendStringInfoString(&metrics, ",\"baseline_val_loss\":");
	append_double(&metrics, res.baseline_val_loss);
	appendStringInfoChar(&metrics, ',');
	appendStringInfoString(&metrics, res.history.data);
	appendStringInfo(&metrics, "\"epochs\":%d,\"best_epoch\":%d,\"learned\":%s,\"seconds_loading\":",
					 res.epochs, res.best_epoch, learned ? "true" : "false");
	append_double(&metrics, INSTR_TIME_GET_DOUBLE(t1));
	appendStringInfoString(&metrics, ",\"seconds_training\":");
	append_double(&metrics, res.seconds);
	appendStringInfoString(&metrics, ",\"seconds_per_epoch\":");
	append_double(&metrics, res.seconds_per_epoch);
	appendStringInfoString(&metrics, ",\"pairs_per_second\":");
	append_double(&metrics, res.pairs_per_second);
	appendStringInfoString(&metrics, ",\"options\":{");
	if (method == FIT_LINEAR)
		appendStringInfo(&metrics, "\"lambda\":%.17g,", o.lambda);
	else
	{
		int			i;

		if (o.epochs_auto)
			appendStringInfoString(&metrics, "\"epochs\":null,");
		else
			appendStringInfo(&metrics, "\"epochs\":%d,", o.epochs);
		appendStringInfo(&metrics, "\"patience\":%d,\"lr\":%.17g,\"batch_size\":%d,"
						 "\"old_hidden\":%d,\"side_hidden\":%d,\"mixer_hidden\":[",
						 o.patience, o.lr, o.batch_size, o.old_hidden, o.side_hidden);
		for (i = 0; i < o.n_mixer; i++)
			appendStringInfo(&metrics, "%s%d", i ? "," : "", o.mixer_hidden[i]);
		appendStringInfo(&metrics, "],\"seed\":%lld,", (long long) o.seed);
	}
	appendStringInfo(&metrics, "\"use_side\":%s,\"val_fraction\":%.17g,\"max_pairs\":%lld,"
					 "\"max_val_ratio\":%.15g,\"force\":%s}}",
					 o.use_side ? "true" : "false", o.val_fraction,
					 (long long) o.max_pairs, o.max_val_ratio, o.force ? "true" : "false");

	MemoryContextSwitchTo(oldcxt);
	metrics_jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(metrics.data)));
	if (o.do_register)
	{
		/* the layers go to the catalog as they are: no jsonb round trip */
		TransformNet *net = palloc0(sizeof(TransformNet));

		net->from_model = from.id;
		net->to_model = to.id;
		net->use_side = res.use_side;
		net->n_old = res.n_old;
		net->n_side = res.n_side;
		net->n_mixer = res.n_mixer;
		net->layers = res.layers;
		extra = psprintf("{\"transformation_id\":%d}",
						 transform_register_net(net, "fitted", metrics_jb));
	}
	else
		/* not registered: return the spec with the metrics, for inspection or export */
		extra = psprintf("{\"spec\":%s}", spec_text(&res));
	MemoryContextDelete(fitcxt);

	PG_RETURN_DATUM(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(metrics_jb),
										DirectFunctionCall1(jsonb_in, CStringGetDatum(extra))));
}
