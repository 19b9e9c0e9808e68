/*
 * transform_spec.c
 *	  The public import format of a transformation, a jsonb spec (transform.h
 *	  gives its grammar, the README its user-facing statement), parsed into a
 *	  TransformNet: every key checked, every number finite in real, BatchNorm
 *	  (eval mode) folded into the layer before it in double precision.
 *
 * A spec may hold millions of numbers: the parser builds an element's name
 * for a message only when that element is wrong.
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "model/model.h"
#include "upgrade/transform_internal.h"

static JsonbValue *
spec_field(JsonbContainer *obj, const char *key)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
}

/* Errors unless every key of the object is one of the allowed ones. */
static void
spec_check_keys(JsonbContainer *obj, const char *what, const char *const *allowed)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT)
			depth++;
		else if (tok == WJB_END_OBJECT)
			depth--;
		else if (tok == WJB_KEY && depth == 1)
		{
			const char *const *a;
			char	   *k = pnstrdup(v.val.string.val, v.val.string.len);

			for (a = allowed; *a != NULL; a++)
				if (strcmp(*a, k) == 0)
					break;
			if (*a == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown key \"%s\" in %s of the transformation spec", k, what)));
		}
	}
}

/*
 * A json number as float8: 0 on success, 1 when v is not a number, 2 when it
 * is out of the range of real.  Callers in loops build the element's name
 * only on error (a spec may hold millions of numbers).
 */
static int
spec_number_try(JsonbValue *v, float8 *out)
{
	float8		d;

	if (v == NULL || v->type != jbvNumeric)
		return 1;
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v->val.numeric)));
	if (!isfinite(d) || !isfinite((float4) d))
		return 2;
	*out = d;
	return 0;
}

static void
spec_number_error(int err, const char *what)
{
	if (err == 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of the transformation spec is not a number", what)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s of the transformation spec is out of the range of real", what)));
}

static float8
spec_number(JsonbValue *v, const char *what)
{
	float8		d = 0;
	int			err = spec_number_try(v, &d);

	if (err != 0)
		spec_number_error(err, what);
	return d;
}

/* An array container, or an error naming what was expected. */
static JsonbContainer *
spec_array(JsonbValue *v, const char *what)
{
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of the transformation spec must be an array", what)));
	return v->val.binary.data;
}

static JsonbContainer *
spec_object(JsonbValue *v, const char *what)
{
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of the transformation spec must be an object", what)));
	return v->val.binary.data;
}

/* A vector of numbers of the expected length, as doubles. */
static float8 *
spec_vector(JsonbValue *v, int expected, const char *what)
{
	JsonbContainer *arr = spec_array(v, what);
	int			n = JsonContainerSize(arr);
	float8	   *out;
	int			i;

	if (n != expected)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of the transformation spec has %d values, expected %d",
						what, n, expected)));
	out = palloc(sizeof(float8) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(arr, i);

		int			err = spec_number_try(e, &out[i]);

		if (err != 0)
			spec_number_error(err, psprintf("%s[%d]", what, i));
		pfree(e);
	}
	return out;
}

static void
parse_layer(JsonbValue *lv, const char *name, bool last_of_mixer,
			TransformLayer *l)
{
	static const char *const layer_keys[] = {"weight", "bias", "batchnorm", "activation", NULL};
	static const char *const bn_keys[] = {"mean", "var", "weight", "bias", "eps", NULL};
	JsonbContainer *obj = spec_object(lv, psprintf("layer %s", name));
	JsonbContainer *w;
	JsonbValue *v;
	float8	   *wd;
	float8	   *bd;
	int			out;
	int			in = -1;
	int			r;
	int			c;

	spec_check_keys(obj, psprintf("layer %s", name), layer_keys);

	v = spec_field(obj, "weight");
	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("layer %s of the transformation spec has no \"weight\"", name)));
	w = spec_array(v, psprintf("weight of layer %s", name));
	out = JsonContainerSize(w);
	if (out < 1 || out > TRANSFORM_MAX_WIDTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weight of layer %s of the transformation spec has %d rows, expected 1 to %d",
						name, out, TRANSFORM_MAX_WIDTH)));
	wd = NULL;
	for (r = 0; r < out; r++)
	{
		JsonbValue *row = getIthJsonbValueFromContainer(w, r);
		JsonbContainer *rc = spec_array(row, psprintf("row %d of the weight of layer %s", r, name));
		int			n = JsonContainerSize(rc);

		if (r == 0)
		{
			in = n;
			if (in < 1 || in > TRANSFORM_MAX_WIDTH)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("weight of layer %s of the transformation spec has %d columns, expected 1 to %d",
								name, in, TRANSFORM_MAX_WIDTH)));
			if ((Size) out * in * sizeof(float8) >= MaxAllocSize)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("weight of layer %s of the transformation spec is too large (%d x %d)",
								name, out, in)));
			wd = palloc(sizeof(float8) * out * in);
		}
		else if (n != in)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row %d of the weight of layer %s has %d values, expected %d",
							r, name, n, in),
					 errdetail("A weight is a matrix of out x in numbers, every row of the same length.")));
		for (c = 0; c < in; c++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(rc, c);
			int			err = spec_number_try(e, &wd[(Size) r * in + c]);

			if (err != 0)
				spec_number_error(err, psprintf("weight[%d][%d] of layer %s", r, c, name));
			pfree(e);
		}
	}

	v = spec_field(obj, "bias");
	if (v != NULL && v->type != jbvNull)
		bd = spec_vector(v, out, psprintf("bias of layer %s", name));
	else
		bd = palloc0(sizeof(float8) * out);

	/*
	 * BatchNorm1d in eval mode after the linear map:
	 *	 y = gamma * (W x + b - mean) / sqrt(var + eps) + beta
	 * folds into W' = s W, b' = s (b - mean) + beta with s = gamma / sqrt(var + eps),
	 * computed in double precision.
	 */
	v = spec_field(obj, "batchnorm");
	if (v != NULL && v->type != jbvNull)
	{
		JsonbContainer *bn = spec_object(v, psprintf("batchnorm of layer %s", name));
		float8	   *mean;
		float8	   *var;
		float8	   *gamma = NULL;
		float8	   *beta = NULL;
		float8		eps = 1e-5;
		JsonbValue *f;

		spec_check_keys(bn, psprintf("batchnorm of layer %s", name), bn_keys);
		f = spec_field(bn, "mean");
		if (f == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("batchnorm of layer %s of the transformation spec has no \"mean\"", name)));
		mean = spec_vector(f, out, psprintf("batchnorm.mean of layer %s", name));
		f = spec_field(bn, "var");
		if (f == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("batchnorm of layer %s of the transformation spec has no \"var\"", name)));
		var = spec_vector(f, out, psprintf("batchnorm.var of layer %s", name));
		f = spec_field(bn, "weight");
		if (f != NULL && f->type != jbvNull)
			gamma = spec_vector(f, out, psprintf("batchnorm.weight of layer %s", name));
		f = spec_field(bn, "bias");
		if (f != NULL && f->type != jbvNull)
			beta = spec_vector(f, out, psprintf("batchnorm.bias of layer %s", name));
		f = spec_field(bn, "eps");
		if (f != NULL && f->type != jbvNull)
			eps = spec_number(f, psprintf("batchnorm.eps of layer %s", name));
		if (!(eps >= 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("batchnorm.eps of layer %s of the transformation spec is negative", name)));
		for (r = 0; r < out; r++)
		{
			float8		s;

			if (!(var[r] + eps > 0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("batchnorm of layer %s of the transformation spec has var[%d] + eps = %g, which must be positive",
								name, r, var[r] + eps)));
			s = (gamma ? gamma[r] : 1.0) / sqrt(var[r] + eps);
			for (c = 0; c < in; c++)
				wd[(Size) r * in + c] *= s;
			bd[r] = s * (bd[r] - mean[r]) + (beta ? beta[r] : 0.0);
		}
	}

	l->relu = !last_of_mixer;
	v = spec_field(obj, "activation");
	if (v != NULL && v->type != jbvNull)
	{
		char	   *a;

		if (v->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("activation of layer %s of the transformation spec must be \"relu\" or \"none\"", name)));
		a = pnstrdup(v->val.string.val, v->val.string.len);
		if (strcmp(a, "relu") == 0)
			l->relu = true;
		else if (strcmp(a, "none") == 0)
			l->relu = false;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("activation \"%s\" of layer %s of the transformation spec is not supported", a, name),
					 errhint("Use \"relu\" or \"none\".")));
	}

	l->in_dim = in;
	l->out_dim = out;
	l->weight = palloc(sizeof(float4) * out * in);
	l->bias = palloc(sizeof(float4) * out);
	for (r = 0; r < out; r++)
	{
		for (c = 0; c < in; c++)
		{
			float4		x = (float4) wd[(Size) r * in + c];

			if (!isfinite(x))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("layer %s of the transformation spec overflows real once its batchnorm is folded in", name)));
			l->weight[(Size) r * in + c] = x;
		}
		l->bias[r] = (float4) bd[r];
		if (!isfinite(l->bias[r]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("layer %s of the transformation spec overflows real once its batchnorm is folded in", name)));
	}
	pfree(wd);
	pfree(bd);
}

/* The layers of one part of the spec ("old", "side" or "mixer"). */
static int
parse_layers(JsonbValue *v, const char *part, TransformLayer *dst)
{
	JsonbContainer *arr = spec_array(v, psprintf("\"%s\"", part));
	int			n = JsonContainerSize(arr);
	int			i;

	for (i = 0; i < n; i++)
	{
		JsonbValue *lv = getIthJsonbValueFromContainer(arr, i);

		parse_layer(lv, psprintf("%s[%d]", part, i),
					strcmp(part, "mixer") == 0 && i == n - 1, &dst[i]);
	}
	return n;
}

static int
count_layers(JsonbValue *v, const char *part)
{
	if (v == NULL)
		return 0;
	return JsonContainerSize(spec_array(v, psprintf("\"%s\"", part)));
}

TransformNet *
transform_parse_spec(Jsonb *spec, int32 from_model, int32 to_model)
{
	static const char *const spec_keys[] = {"old", "side", "mixer", NULL};
	const FctModel *from = model_by_id(from_model);
	const FctModel *to = model_by_id(to_model);
	TransformNet *net;
	JsonbValue *vold;
	JsonbValue *vside;
	JsonbValue *vmixer;
	int			total;

	if (!JB_ROOT_IS_OBJECT(spec) || JB_ROOT_IS_SCALAR(spec))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transformation spec must be a json object"),
				 errhint("The smallest spec is {\"mixer\": [{\"weight\": W}]}.")));
	spec_check_keys(&spec->root, "the top level", spec_keys);

	net = palloc0(sizeof(TransformNet));
	net->from_model = from->id;
	net->to_model = to->id;
	net->old_dim = from->dim;
	net->side_dim = from->side_dim;
	net->new_dim = to->dim;

	vold = spec_field(&spec->root, "old");
	vside = spec_field(&spec->root, "side");
	vmixer = spec_field(&spec->root, "mixer");
	if (vold != NULL && vold->type == jbvNull)
		vold = NULL;
	net->use_side = !(vside != NULL && vside->type == jbvNull);
	if (!net->use_side)
		vside = NULL;
	if (vmixer == NULL || vmixer->type == jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transformation spec needs at least one mixer layer"),
				 errhint("The smallest spec is {\"mixer\": [{\"weight\": W}]}, W of shape %d x %d.",
						 to->dim, from->dim + (net->use_side ? from->side_dim : 0))));

	total = count_layers(vold, "old") + count_layers(vside, "side") +
		count_layers(vmixer, "mixer");
	net->layers = palloc0(sizeof(TransformLayer) * Max(total, 1));
	if (vold)
		net->n_old = parse_layers(vold, "old", net->layers);
	if (vside)
		net->n_side = parse_layers(vside, "side", net->layers + net->n_old);
	net->n_mixer = parse_layers(vmixer, "mixer", net->layers + net->n_old + net->n_side);

	net_validate(net);
	return net;
}
