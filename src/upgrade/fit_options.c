/*
 * fit_options.c
 *	  The options of fct_fit_transformation (a jsonb object; sql/install/45_fit.sql
 *	  lists them), and the memory bound they imply: everything a fit holds
 *	  stays within maintenance_work_mem, checked before any pair is read.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "upgrade/fit.h"

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

void
fit_parse_options(Jsonb *jb, FitMethod method, FitOptions *o)
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
Size
fit_model_bytes(FitMethod method, const FitOptions *o, int dim, int sdim, int ndim)
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

Size
fit_limit_bytes(void)
{
	return (Size) maintenance_work_mem * 1024;
}

void
fit_memory_error(FitMethod method, int stride_in, int64 npairs, int stride,
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
