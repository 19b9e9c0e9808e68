/*
 * transform.c
 *	  Transformations between models: parse and validate a spec, register it,
 *	  cache the weights per backend, find upgrade paths, and apply them to one
 *	  embedding or to a batch (the same bits either way).
 *
 * The catalog fct_transformations holds one immutable row per (from_model,
 * to_model) with the layers already folded (BatchNorm into the preceding
 * linear map) in a compact binary form, the "weights" bytea:
 *
 *	 int32 magic 'FCTW', int32 version (1),
 *	 int32 old_dim, side_dim, new_dim, use_side (0/1), n_old, n_side, n_mixer,
 *	 then per layer (old branch, side branch, mixer, in order):
 *	   int32 in_dim, out_dim, flags (bit 0: ReLU after the layer),
 *	   float4 weight[out_dim * in_dim] (row-major), float4 bias[out_dim]
 *
 * every number little-endian.
 *
 * The cache: the list of edges (from, to, id) is read from the table in one
 * scan when first needed; a transformation's weights are read and parsed the
 * first time a path uses it; paths (and their absence) are memoised.  The
 * whole cache is dropped when the table changes, exactly as model.c does for
 * fct_models: a statement trigger sends a relcache invalidation, our callback
 * only flips a flag (and bumps a generation counter, which callers that keep
 * a path beyond one call, in fn_extra, compare), and the next look-up hands
 * the stale cache's memory to TopTransactionContext, so that pointers handed
 * out earlier in the transaction stay valid until its end.
 *
 * The arithmetic (kernel_matmul per layer, for one vector or a block of rows)
 * is in transform_apply.c.
 *
 * Why upgrades may be IMMUTABLE: transformations and models never change, and
 * registration keeps the upgrade graph a "multitree" (no cycle, at most one
 * path between two models), so the path from a model to another never changes
 * once it exists.  See sql/install/40_transform.sql.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "port/pg_bswap.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "type/embedding.h"
#include "model/model.h"
#include "query/query.h"
#include "upgrade/transform.h"

/* Column numbers of fct_transformations, as 40_transform.sql declares them. */
#define Anum_fct_transformations_id			1
#define Anum_fct_transformations_from_model	2
#define Anum_fct_transformations_to_model	3
#define Anum_fct_transformations_weights	5

#define WEIGHTS_MAGIC		0x57544346	/* "FCTW" read little-endian */
#define WEIGHTS_VERSION		1
#define LAYER_FLAG_RELU		1

/* Widest hidden layer a spec may declare. */
#define TRANSFORM_MAX_WIDTH		65536

/* ---------------------------------------------------------------------
 * Layers: validation, BatchNorm folding, architecture summary
 * ---------------------------------------------------------------------
 */

static const char *
layer_name(const TransformNet *net, int i)
{
	if (i < net->n_old)
		return psprintf("old[%d]", i);
	i -= net->n_old;
	if (i < net->n_side)
		return psprintf("side[%d]", i);
	return psprintf("mixer[%d]", i - net->n_side);
}

/*
 * Check that a net's layers chain up and fit both models; fill old_out,
 * side_out and max_width.  Errors name the layer and both shapes.  Used for
 * parsed specs, for nets built in C (fit.c) and for weights read back from
 * the catalog (where a mismatch means corruption, but the message is the
 * same).
 */
static void
net_validate(TransformNet *net)
{
	const FctModel *from = model_by_id(net->from_model);
	const FctModel *to = model_by_id(net->to_model);
	int			total;
	int			i;
	int			max_width;

	if (net->old_dim != from->dim || net->side_dim != from->side_dim ||
		net->new_dim != to->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("transformation from \"%s\" to \"%s\" does not match the models' dimensions",
						from->name, to->name),
				 errdetail("It maps %d + %d side dimensions to %d; the models have %d + %d and %d.",
						   net->old_dim, net->side_dim, net->new_dim,
						   from->dim, from->side_dim, to->dim)));
	if (net->n_mixer < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transformation spec needs at least one mixer layer"),
				 errhint("The smallest spec is {\"mixer\": [{\"weight\": W}]}, W of shape %d x %d.",
						 to->dim, from->dim + (net->use_side ? from->side_dim : 0))));
	if (net->n_side > 0 && !net->use_side)
		elog(ERROR, "transformation has side layers but does not use the side-information");
	if (net->n_side > 0 && from->side_dim == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transformation spec has a side branch, but model \"%s\" has no side-information",
						from->name),
				 errhint("Leave \"side\" out, or set it to null.")));

	/* The widths entering the mixer. */
	net->old_out = net->n_old > 0 ? net->layers[net->n_old - 1].out_dim : from->dim;
	if (!net->use_side)
		net->side_out = 0;
	else if (net->n_side > 0)
		net->side_out = net->layers[net->n_old + net->n_side - 1].out_dim;
	else
		net->side_out = from->side_dim;

	max_width = Max(Max(from->dim, from->side_dim), to->dim);
	max_width = Max(max_width, net->old_out + net->side_out);
	total = net->n_old + net->n_side + net->n_mixer;
	for (i = 0; i < total; i++)
	{
		TransformLayer *l = &net->layers[i];
		int			expected_in;
		const char *why;

		if (i == 0 && net->n_old > 0)
		{
			expected_in = from->dim;
			why = psprintf("the old branch starts from model \"%s\"'s vector of dimension %d",
						   from->name, from->dim);
		}
		else if (i == net->n_old && net->n_side > 0)
		{
			expected_in = from->side_dim;
			why = psprintf("the side branch starts from model \"%s\"'s side-information of dimension %d",
						   from->name, from->side_dim);
		}
		else if (i == net->n_old + net->n_side)
		{
			expected_in = net->old_out + net->side_out;
			if (net->use_side)
				why = psprintf("the mixer's input is the old branch's %d outputs and the side branch's %d",
							   net->old_out, net->side_out);
			else
				why = psprintf("the mixer's input is the old branch's %d outputs (the side-information is not used)",
							   net->old_out);
		}
		else
		{
			expected_in = net->layers[i - 1].out_dim;
			why = psprintf("it follows layer %s with %d outputs",
						   layer_name(net, i - 1), net->layers[i - 1].out_dim);
		}

		if (l->in_dim != expected_in)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("layer %s of the transformation spec has %d inputs, expected %d",
							layer_name(net, i), l->in_dim, expected_in),
					 errdetail("Its weight is %d x %d (out x in); %s.",
							   l->out_dim, l->in_dim, why)));
		if (l->out_dim < 1 || l->out_dim > TRANSFORM_MAX_WIDTH)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("layer %s of the transformation spec has %d outputs, the limit is %d",
							layer_name(net, i), l->out_dim, TRANSFORM_MAX_WIDTH)));
		max_width = Max(max_width, Max(l->in_dim, l->out_dim));
	}

	if (net->layers[total - 1].out_dim != to->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("layer %s of the transformation spec has %d outputs, expected %d",
						layer_name(net, total - 1), net->layers[total - 1].out_dim, to->dim),
				 errdetail("Its weight is %d x %d (out x in); the mixer's last layer produces model \"%s\"'s vector of dimension %d.",
						   net->layers[total - 1].out_dim, net->layers[total - 1].in_dim,
						   to->name, to->dim)));
	net->max_width = max_width;
}

static char *
net_architecture(const TransformNet *net)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	appendStringInfo(&s, "old %d", net->old_dim);
	for (i = 0; i < net->n_old; i++)
		appendStringInfo(&s, "->%d", net->layers[i].out_dim);
	if (!net->use_side)
		appendStringInfoString(&s, " | side unused");
	else
	{
		appendStringInfo(&s, " | side %d", net->side_dim);
		for (i = net->n_old; i < net->n_old + net->n_side; i++)
			appendStringInfo(&s, "->%d", net->layers[i].out_dim);
	}
	appendStringInfo(&s, " | mixer %d", net->old_out + net->side_out);
	for (i = net->n_old + net->n_side; i < net->n_old + net->n_side + net->n_mixer; i++)
		appendStringInfo(&s, "->%d", net->layers[i].out_dim);
	return s.data;
}

/* ---------------------------------------------------------------------
 * Spec parsing (jsonb)
 * ---------------------------------------------------------------------
 */

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

/* ---------------------------------------------------------------------
 * The weights bytea
 * ---------------------------------------------------------------------
 */

static inline uint32
to_le32(uint32 x)
{
#ifdef WORDS_BIGENDIAN
	return pg_bswap32(x);
#else
	return x;
#endif
}

static void
put_int(StringInfo s, int32 v)
{
	uint32		u = to_le32((uint32) v);

	appendBinaryStringInfo(s, (char *) &u, 4);
}

static void
put_floats(StringInfo s, const float4 *x, Size n)
{
#ifdef WORDS_BIGENDIAN
	Size		i;

	for (i = 0; i < n; i++)
	{
		uint32		u;

		memcpy(&u, &x[i], 4);
		put_int(s, (int32) u);
	}
#else
	appendBinaryStringInfo(s, (const char *) x, n * sizeof(float4));
#endif
}

static bytea *
net_serialize(const TransformNet *net)
{
	StringInfoData s;
	bytea	   *b;
	int			i;

	initStringInfo(&s);
	appendStringInfoSpaces(&s, VARHDRSZ);
	put_int(&s, WEIGHTS_MAGIC);
	put_int(&s, WEIGHTS_VERSION);
	put_int(&s, net->old_dim);
	put_int(&s, net->side_dim);
	put_int(&s, net->new_dim);
	put_int(&s, net->use_side ? 1 : 0);
	put_int(&s, net->n_old);
	put_int(&s, net->n_side);
	put_int(&s, net->n_mixer);
	for (i = 0; i < net->n_old + net->n_side + net->n_mixer; i++)
	{
		const TransformLayer *l = &net->layers[i];

		put_int(&s, l->in_dim);
		put_int(&s, l->out_dim);
		put_int(&s, l->relu ? LAYER_FLAG_RELU : 0);
		put_floats(&s, l->weight, (Size) l->out_dim * l->in_dim);
		put_floats(&s, l->bias, l->out_dim);
	}
	b = (bytea *) s.data;
	SET_VARSIZE(b, s.len);
	return b;
}

typedef struct WeightsReader
{
	const char *p;
	const char *end;
	int32		id;
} WeightsReader;

static void
weights_corrupt(WeightsReader *r)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("weights of transformation %d in fct_transformations are corrupted", r->id)));
}

static int32
get_int(WeightsReader *r)
{
	uint32		u;

	if (r->end - r->p < 4)
		weights_corrupt(r);
	memcpy(&u, r->p, 4);
	r->p += 4;
	return (int32) to_le32(u);
}

static float4 *
get_floats(WeightsReader *r, Size n)
{
	float4	   *x;
	Size		i;

	if ((Size) (r->end - r->p) < n * sizeof(float4))
		weights_corrupt(r);
	x = palloc(sizeof(float4) * Max(n, 1));
	memcpy(x, r->p, n * sizeof(float4));
	r->p += n * sizeof(float4);
#ifdef WORDS_BIGENDIAN
	for (i = 0; i < n; i++)
	{
		uint32		u;

		memcpy(&u, &x[i], 4);
		u = pg_bswap32(u);
		memcpy(&x[i], &u, 4);
	}
#endif
	for (i = 0; i < n; i++)
		if (!isfinite(x[i]))
			weights_corrupt(r);
	return x;
}

/* Parse the weights of transformation id (from -> to) into CurrentMemoryContext. */
static TransformNet *
net_deserialize(bytea *b, int32 id, int32 from_model, int32 to_model)
{
	WeightsReader r;
	TransformNet *net = palloc0(sizeof(TransformNet));
	int			total;
	int			i;

	r.p = VARDATA_ANY(b);
	r.end = r.p + VARSIZE_ANY_EXHDR(b);
	r.id = id;
	if (get_int(&r) != WEIGHTS_MAGIC || get_int(&r) != WEIGHTS_VERSION)
		weights_corrupt(&r);
	net->from_model = from_model;
	net->to_model = to_model;
	net->old_dim = get_int(&r);
	net->side_dim = get_int(&r);
	net->new_dim = get_int(&r);
	net->use_side = get_int(&r) != 0;
	net->n_old = get_int(&r);
	net->n_side = get_int(&r);
	net->n_mixer = get_int(&r);
	if (net->n_old < 0 || net->n_side < 0 || net->n_mixer < 1 ||
		net->n_old + net->n_side + net->n_mixer > 10000)
		weights_corrupt(&r);
	total = net->n_old + net->n_side + net->n_mixer;
	net->layers = palloc0(sizeof(TransformLayer) * total);
	for (i = 0; i < total; i++)
	{
		TransformLayer *l = &net->layers[i];

		l->in_dim = get_int(&r);
		l->out_dim = get_int(&r);
		l->relu = (get_int(&r) & LAYER_FLAG_RELU) != 0;
		if (l->in_dim < 1 || l->in_dim > TRANSFORM_MAX_WIDTH ||
			l->out_dim < 1 || l->out_dim > TRANSFORM_MAX_WIDTH)
			weights_corrupt(&r);
		l->weight = get_floats(&r, (Size) l->out_dim * l->in_dim);
		l->bias = get_floats(&r, l->out_dim);
	}
	if (r.p != r.end)
		weights_corrupt(&r);
	net_validate(net);
	return net;
}

/* ---------------------------------------------------------------------
 * The per-backend cache
 * ---------------------------------------------------------------------
 */

typedef struct EdgeKey
{
	int32		from_model;
	int32		to_model;
} EdgeKey;

typedef struct EdgeEntry
{
	EdgeKey		key;
	int32		id;
	TransformNet *net;			/* NULL until first used */
} EdgeEntry;

typedef struct PathEntry
{
	EdgeKey		key;
	TransformPath *path;		/* NULL: no path */
} PathEntry;

static MemoryContext transform_cxt = NULL;
static HTAB *edges = NULL;		/* every registered transformation */
static HTAB *paths = NULL;		/* memoised paths */

static Oid	transformations_relid = InvalidOid;
static Oid	transformations_pair_index = InvalidOid;

/* fct.restore_wait: see upgrade_wait. */
static int	restore_wait_seconds = 60;

/* True while transform_register_net inserts its row (the insert guard). */
static bool transform_registering = false;

static bool transform_cache_valid = true;
static uint64 transform_cache_generation = 1;
static bool transform_callback_registered = false;

static void
transform_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid ||
		(OidIsValid(transformations_relid) && relid == transformations_relid))
	{
		transform_cache_valid = false;
		transform_cache_generation++;
	}
}

void
transform_init(void)
{
	if (transform_callback_registered)
		return;
	CacheRegisterRelcacheCallback(transform_relcache_callback, (Datum) 0);
	transform_callback_registered = true;

	DefineCustomIntVariable("fct.restore_wait",
							"While a dump is restored, how long fct_upgrade waits for the models and transformations it needs.",
							"Only while check_function_bodies is off (pg_dump and pg_restore set it so): "
							"pg_restore -j may build an index on fct_upgrade before the extension's tables are loaded.",
							&restore_wait_seconds,
							60, 0, 3600,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

uint64
transform_generation(void)
{
	return transform_cache_generation;
}

static void
transform_cache_check(void)
{
	if (transform_cache_valid)
		return;
	transform_cache_valid = true;
	if (transform_cxt != NULL)
	{
		/* Freed at the end of the transaction: callers may hold pointers. */
		MemoryContextSetParent(transform_cxt, TopTransactionContext);
		transform_cxt = NULL;
	}
	edges = NULL;
	paths = NULL;
	transformations_relid = InvalidOid;
	transformations_pair_index = InvalidOid;
}

static void
transform_resolve_catalog(void)
{
	Oid			nsp;
	Oid			relid;
	Oid			pair_index;

	transform_cache_check();
	if (OidIsValid(transformations_relid))
		return;
	nsp = fct_extension_schema();
	relid = get_relname_relid("fct_transformations", nsp);
	pair_index = get_relname_relid("fct_transformations_pair_key", nsp);
	if (!OidIsValid(relid) || !OidIsValid(pair_index))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("transformation catalog of extension \"fct\" not found"),
				 errdetail("Table fct_transformations or its index fct_transformations_pair_key is missing in schema \"%s\".",
						   get_namespace_name(nsp))));
	transformations_relid = relid;
	transformations_pair_index = pair_index;
}

/*
 * Read every edge (from, to, id) of the catalog, with a fresh catalog
 * snapshot.  Returns the count; the arrays are palloc'd in
 * CurrentMemoryContext.
 */
static int
read_edges(int32 **from_out, int32 **to_out, int32 **id_out)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			n = 0;
	int			cap = 16;
	int32	   *f = palloc(sizeof(int32) * cap);
	int32	   *t = palloc(sizeof(int32) * cap);
	int32	   *ids = palloc(sizeof(int32) * cap);

	transform_resolve_catalog();
	rel = table_open(transformations_relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull[3];
		Datum		d_id = heap_getattr(tup, Anum_fct_transformations_id,
										RelationGetDescr(rel), &isnull[0]);
		Datum		d_from = heap_getattr(tup, Anum_fct_transformations_from_model,
										  RelationGetDescr(rel), &isnull[1]);
		Datum		d_to = heap_getattr(tup, Anum_fct_transformations_to_model,
										RelationGetDescr(rel), &isnull[2]);

		if (isnull[0] || isnull[1] || isnull[2])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("fct_transformations holds a row with a null id, from_model or to_model")));
		if (n == cap)
		{
			cap *= 2;
			f = repalloc(f, sizeof(int32) * cap);
			t = repalloc(t, sizeof(int32) * cap);
			ids = repalloc(ids, sizeof(int32) * cap);
		}
		ids[n] = DatumGetInt32(d_id);
		f[n] = DatumGetInt32(d_from);
		t[n] = DatumGetInt32(d_to);
		n++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	*from_out = f;
	*to_out = t;
	*id_out = ids;
	return n;
}

static void
transform_cache_load(void)
{
	HASHCTL		ctl;
	int32	   *f;
	int32	   *t;
	int32	   *ids;
	int			n;
	int			i;
	MemoryContext cxt;
	HTAB	   *e;
	HTAB	   *p;

	transform_cache_check();
	if (edges != NULL)
		return;

	n = read_edges(&f, &t, &ids);

	/* Build in a fresh context, install only once complete. */
	cxt = AllocSetContextCreate(CacheMemoryContext, "fct transformation cache",
								ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(EdgeKey);
	ctl.entrysize = sizeof(EdgeEntry);
	ctl.hcxt = cxt;
	e = hash_create("fct transformations", Max(n, 16), &ctl,
					HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(EdgeKey);
	ctl.entrysize = sizeof(PathEntry);
	ctl.hcxt = cxt;
	p = hash_create("fct upgrade paths", 16, &ctl,
					HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (i = 0; i < n; i++)
	{
		EdgeKey		key;
		EdgeEntry  *entry;

		key.from_model = f[i];
		key.to_model = t[i];
		entry = hash_search(e, &key, HASH_ENTER, NULL);
		entry->id = ids[i];
		entry->net = NULL;
	}
	pfree(f);
	pfree(t);
	pfree(ids);

	/* An invalidation during the scan must be seen again: start over. */
	if (!transform_cache_valid)
	{
		MemoryContextDelete(cxt);
		transform_cache_load();
		return;
	}
	transform_cxt = cxt;
	edges = e;
	paths = p;
}

/* Read and parse one transformation's weights into the cache. */
static TransformNet *
edge_net(EdgeEntry *entry)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData keys[2];
	HeapTuple	tup;
	TransformNet *net = NULL;
	MemoryContext old;

	if (entry->net != NULL)
		return entry->net;

	ScanKeyInit(&keys[0], Anum_fct_transformations_from_model, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(entry->key.from_model));
	ScanKeyInit(&keys[1], Anum_fct_transformations_to_model, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(entry->key.to_model));
	rel = table_open(transformations_relid, AccessShareLock);
	scan = systable_beginscan(rel, transformations_pair_index, true, NULL, 2, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_fct_transformations_weights,
									 RelationGetDescr(rel), &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("transformation %d in fct_transformations has null weights", entry->id)));
		old = MemoryContextSwitchTo(transform_cxt);
		net = net_deserialize(DatumGetByteaPP(d), entry->id,
							  entry->key.from_model, entry->key.to_model);
		MemoryContextSwitchTo(old);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (net == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("transformation %d disappeared from fct_transformations", entry->id)));
	entry->net = net;
	return net;
}

/*
 * The unique path from -> to, by breadth-first search over the edges (the
 * graph is a multitree, so the first path found is the only one).  Returns
 * the list of edges in order, or NIL.
 */
typedef struct ParentEntry
{
	int32		model;			/* hash key */
	EdgeKey		edge;			/* the edge that reached it */
} ParentEntry;

static List *
find_path(int32 from, int32 to)
{
	List	   *frontier = list_make1_int(from);
	List	   *seen = list_make1_int(from);
	HTAB	   *parent;
	HASHCTL		ctl;
	List	   *result = NIL;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(ParentEntry);
	ctl.hcxt = CurrentMemoryContext;
	parent = hash_create("fct path search", 16, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	while (frontier != NIL && !list_member_int(seen, to))
	{
		List	   *next = NIL;
		ListCell   *lc;

		foreach(lc, frontier)
		{
			int32		m = lfirst_int(lc);
			HASH_SEQ_STATUS st;
			EdgeEntry  *e;

			hash_seq_init(&st, edges);
			while ((e = hash_seq_search(&st)) != NULL)
			{
				ParentEntry *pe;

				if (e->key.from_model != m || list_member_int(seen, e->key.to_model))
					continue;
				seen = lappend_int(seen, e->key.to_model);
				next = lappend_int(next, e->key.to_model);
				pe = hash_search(parent, &e->key.to_model, HASH_ENTER, NULL);
				pe->edge = e->key;
			}
		}
		frontier = next;
	}

	if (list_member_int(seen, to))
	{
		int32		m = to;

		while (m != from)
		{
			ParentEntry *pe = hash_search(parent, &m, HASH_FIND, NULL);

			Assert(pe != NULL);
			result = lcons(&pe->edge, result);
			m = pe->edge.from_model;
		}
	}
	return result;
}

const TransformPath *
transform_path(int32 from_model, int32 to_model)
{
	EdgeKey		key;
	PathEntry  *pe;
	bool		found;
	List	   *hops;
	TransformPath *path = NULL;

	transform_cache_load();
	key.from_model = from_model;
	key.to_model = to_model;
	pe = hash_search(paths, &key, HASH_FIND, NULL);
	if (pe != NULL)
		return pe->path;

	if (from_model == to_model)
	{
		path = MemoryContextAllocZero(transform_cxt, sizeof(TransformPath));
		path->from_model = from_model;
		path->to_model = to_model;
		path->max_width = model_by_id(to_model)->dim;
	}
	else if ((hops = find_path(from_model, to_model)) != NIL)
	{
		ListCell   *lc;
		int			i = 0;
		const TransformNet **nets;

		nets = MemoryContextAllocZero(transform_cxt,
									  sizeof(TransformNet *) * list_length(hops));
		path = MemoryContextAllocZero(transform_cxt, sizeof(TransformPath));
		path->from_model = from_model;
		path->to_model = to_model;
		foreach(lc, hops)
		{
			EdgeEntry  *e = hash_search(edges, lfirst(lc), HASH_FIND, NULL);

			nets[i] = edge_net(e);
			path->max_width = Max(path->max_width, nets[i]->max_width);
			i++;
		}
		path->hops = nets;
		path->nhops = i;
	}

	/* Loading weights may have processed an invalidation: start over. */
	if (!transform_cache_valid)
		return transform_path(from_model, to_model);

	pe = hash_search(paths, &key, HASH_ENTER, &found);
	pe->path = path;
	return path;
}

/* ---------------------------------------------------------------------
 * Upgrading embeddings
 * ---------------------------------------------------------------------
 */

static void
no_model_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("cannot upgrade an embedding that names no model"),
			 errhint("Write embeddings with their model, e.g. 'v1:[1,2,3]|[0.5]' or fct_embedding(vec, side, 'v1').")));
}

/*
 * While a dump is restored (check_function_bodies off, see resolve_model in
 * embedding.c), fct_upgrade may run before the models and transformations it
 * needs are loaded: pg_restore -j builds an index on fct_upgrade(col, 'v2')
 * as soon as its table's data is in, in parallel with the data of other
 * tables, and pg_dump records no dependency from that index to the data of
 * the extension's tables (the function belongs to the extension; the data of
 * its configuration tables depends on nothing).  Nor can it: the index's
 * dependencies are computed from pg_depend, and a member table has no entry
 * in the archive to depend on.  So fct_upgrade waits for them then, up to
 * fct.restore_wait seconds, polling every 100 ms (a load commits and sends
 * its invalidation); in normal use (check_function_bodies on) it never waits.
 *
 * Returns false when the caller should stop waiting and report what is
 * missing.  *start is 0 on the first call.
 */
static bool
upgrade_wait(TimestampTz *start)
{
	if (check_function_bodies || restore_wait_seconds <= 0)
		return false;
	if (*start == 0)
		*start = GetCurrentTimestamp();
	else if (TimestampDifferenceExceeds(*start, GetCurrentTimestamp(),
										restore_wait_seconds * 1000))
		return false;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 100L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	AcceptInvalidationMessages();
	return true;
}

/* The target model of fct_upgrade (waiting for it while restoring). */
static const FctModel *
upgrade_target(const char *name)
{
	TimestampTz start = 0;
	const FctModel *m;

	while ((m = model_lookup_name(name)) == NULL && upgrade_wait(&start))
		;
	return m != NULL ? m : model_by_name(name);
}

static void no_path_error(int32 from_model, int32 to_model) pg_attribute_noreturn();

/* The path of fct_upgrade (waiting for it while restoring), or an error. */
static const TransformPath *
upgrade_path(int32 from_model, int32 to_model)
{
	TimestampTz start = 0;
	const TransformPath *path;

	for (;;)
	{
		path = NULL;
		if (model_lookup_id(from_model) != NULL)
			path = transform_path(from_model, to_model);
		if (path != NULL || !upgrade_wait(&start))
			break;
	}
	if (path == NULL)
		no_path_error(from_model, to_model);
	return path;
}

static void
no_path_error(int32 from_model, int32 to_model)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("no upgrade path from model \"%s\" to model \"%s\"",
					model_display_name(from_model), model_display_name(to_model)),
			 errhint("Register a transformation with fct_register_transformation() or fit one with fct_fit_transformation().")));
}

/*
 * Errors unless e has the dimensions the path starts from.  A value may carry
 * no side-information even when its model has some (a query embedding usually
 * has none): that is fine unless a hop of the path reads it, and then it is an
 * error rather than a read past the value's end.
 */
static inline void
check_input(const TransformPath *path, const Embedding *e)
{
	int			k;

	if (path->nhops == 0)
		return;
	if (e->dim != path->hops[0]->old_dim || e->side_dim != path->hops[0]->side_dim)
		model_check_dims(model_by_id(path->from_model), e->dim, e->side_dim);
	if (e->side_dim > 0)
		return;
	for (k = 0; k < path->nhops; k++)
	{
		const TransformNet *net = path->hops[k];

		if (net->use_side && net->side_dim > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("embedding of model \"%s\" has no side-information, which the transformation from model \"%s\" to model \"%s\" reads",
							model_display_name(path->from_model),
							model_display_name(net->from_model),
							model_display_name(net->to_model)),
					 errdetail_plural("Model \"%s\" has %d side-information dimension; the value has none.",
									  "Model \"%s\" has %d side-information dimensions; the value has none.",
									  net->side_dim,
									  model_display_name(path->from_model), net->side_dim),
					 errhint("Store old embeddings with their side-information, or register a transformation that does not use it (spec \"side\": null, or fit with {\"use_side\": false}).")));
	}
}

/*
 * The side-information an upgraded value carries: the input's, unless the
 * target model has none (then it is dropped); a value without any stays
 * without.
 */
static int32
output_side_dim(const TransformPath *path, const Embedding *e)
{
	if (path->nhops == 0 || e->side_dim == 0)
		return e->side_dim;
	return model_by_id(path->to_model)->side_dim;
}

Embedding *
transform_upgrade(const Embedding *e, int32 to_model)
{
	const TransformPath *path;
	const FctModel *to;
	Embedding  *r;
	float4	   *scratch;

	if (e->model_id == FCT_NO_MODEL)
		no_model_error();
	to = model_by_id(to_model);
	if (e->model_id == to_model)
	{
		r = palloc(VARSIZE(e));
		memcpy(r, e, VARSIZE(e));
		return r;
	}
	path = transform_path(e->model_id, to_model);
	if (path == NULL)
		no_path_error(e->model_id, to_model);
	check_input(path, e);

	r = embedding_alloc(to->dim, output_side_dim(path, e), to_model);
	scratch = palloc(sizeof(float4) * 4 * path->max_width);
	transform_apply_one(path, EMBEDDING_VEC(e), EMBEDDING_SIDE(e),
						EMBEDDING_VEC(r), scratch);
	if (r->side_dim > 0)
		memcpy(EMBEDDING_SIDE(r), EMBEDDING_SIDE(e), sizeof(float4) * r->side_dim);
	pfree(scratch);
	embedding_finalize(r);
	return r;
}

/*
 * Rows gathered per call of transform_apply_batch: the gathered inputs and
 * the outputs stay in the cache between the gather, the product and the
 * scatter, and their buffers are allocated once per call whatever n is
 * (gathering a whole 20,000-row batch first used to allocate and page in
 * tens of megabytes for each call).
 */
#define UPGRADE_CHUNK_ROWS	1024

/*
 * transform_upgrade_batch, and its form for fct_upgrade_batch that writes
 * into storage prepared by the caller (prepared: out[i] points to zeroed
 * memory of upgraded_size(in[i]) bytes), so that the results land in the
 * result array directly instead of one palloc each and a copy.
 */
static void
upgrade_batch(Embedding **in, int n, int32 to_model, Embedding **out,
			  bool prepared)
{
	const FctModel *to = model_by_id(to_model);
	bool	   *done = palloc0(sizeof(bool) * Max(n, 1));
	int		   *group = palloc(sizeof(int) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
	{
		if (in[i]->model_id == FCT_NO_MODEL)
			no_model_error();
		if (in[i]->model_id == to_model)
		{
			if (prepared)
				memcpy(out[i], in[i], VARSIZE(in[i]));
			else
				out[i] = in[i];
			done[i] = true;
		}
	}

	/*
	 * One group per source model; each group in chunks: gather, one batched
	 * application, scatter.
	 */
	for (i = 0; i < n; i++)
	{
		int32		from_model;
		const TransformPath *path;
		int			g = 0;
		int			chunk;
		int			c;
		int			j;
		float4	   *x;
		float4	   *s;
		float4	   *y;
		int32		dim;
		int32		side_dim;

		if (done[i])
			continue;
		from_model = in[i]->model_id;
		path = transform_path(from_model, to_model);
		if (path == NULL)
			no_path_error(from_model, to_model);
		dim = path->hops[0]->old_dim;
		side_dim = path->hops[0]->side_dim;
		for (j = i; j < n; j++)
		{
			if (done[j] || in[j]->model_id != from_model)
				continue;
			check_input(path, in[j]);
			group[g++] = j;
		}
		chunk = Min(g, UPGRADE_CHUNK_ROWS);
		x = palloc(sizeof(float4) * (Size) chunk * dim);
		s = palloc(sizeof(float4) * Max((Size) chunk * side_dim, 1));
		y = palloc(sizeof(float4) * (Size) chunk * to->dim);
		for (c = 0; c < g; c += chunk)
		{
			int			rows = Min(chunk, g - c);

			for (j = 0; j < rows; j++)
			{
				Embedding  *e = in[group[c + j]];

				memcpy(x + (Size) j * dim, EMBEDDING_VEC(e), sizeof(float4) * dim);

				/*
				 * check_input let a value without side-information through
				 * only if no hop reads it
				 */
				if (side_dim > 0 && e->side_dim > 0)
					memcpy(s + (Size) j * side_dim, EMBEDDING_SIDE(e), sizeof(float4) * side_dim);
				else if (side_dim > 0)
					memset(s + (Size) j * side_dim, 0, sizeof(float4) * side_dim);
			}
			transform_apply_batch(path, x, s, rows, y);
			for (j = 0; j < rows; j++)
			{
				Embedding  *e = in[group[c + j]];
				Embedding  *r;

				if (prepared)
				{
					r = out[group[c + j]];
					embedding_init_header(r, to->dim, output_side_dim(path, e), to_model);
				}
				else
					r = embedding_alloc(to->dim, output_side_dim(path, e), to_model);
				memcpy(EMBEDDING_VEC(r), y + (Size) j * to->dim, sizeof(float4) * to->dim);
				if (r->side_dim > 0)
					memcpy(EMBEDDING_SIDE(r), EMBEDDING_SIDE(e), sizeof(float4) * r->side_dim);
				embedding_finalize(r);
				out[group[c + j]] = r;
				done[group[c + j]] = true;
			}
		}
		pfree(x);
		pfree(s);
		pfree(y);
	}
	pfree(done);
	pfree(group);
}

void
transform_upgrade_batch(Embedding **in, int n, int32 to_model, Embedding **out)
{
	upgrade_batch(in, n, to_model, out, false);
}

/* fct_upgrade_batch's result array, as it grows, must stay allocatable. */
static void
check_result_array_size(Size nbytes)
{
	if (!AllocSizeIsValid(nbytes))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("array size exceeds the maximum allowed (%d)",
						(int) MaxAllocSize),
				 errhint("Upgrade the embeddings in smaller arrays.")));
}

/*
 * The size of e upgraded into to (checks what upgrade_batch checks first:
 * a model, a path).  *from and *path memoise the last source model, so that
 * a batch from one model looks its path up once.
 */
static Size
upgraded_size(const Embedding *e, const FctModel *to, int32 *from,
			  const TransformPath **path)
{
	if (e->model_id == FCT_NO_MODEL)
		no_model_error();
	if (e->model_id == to->id)
		return VARSIZE(e);
	if (*path == NULL || *from != e->model_id)
	{
		*path = transform_path(e->model_id, to->id);
		if (*path == NULL)
			no_path_error(e->model_id, to->id);
		*from = e->model_id;
	}
	return EMBEDDING_SIZE(to->dim, output_side_dim(*path, e));
}

/*
 * Operand alignment for the distance operators, with its state in fn_extra.
 */
typedef struct AlignCache
{
	uint64		generation;
	int32		model_a;
	int32		model_b;
	int			which;			/* 0: no path; 1: upgrade a; 2: upgrade b */
	const TransformPath *path;
	Embedding  *buf;			/* the upgraded operand */
	Size		buf_size;
	float4	   *scratch;
	int32		scratch_width;
} AlignCache;

bool
transform_align(void **cache, MemoryContext mcxt, Embedding **a,
				Embedding **b)
{
	AlignCache *c = (AlignCache *) *cache;
	const Embedding *src;
	int32		ma = (*a)->model_id;
	int32		mb = (*b)->model_id;

	if (ma == mb)
		return true;
	if (c == NULL)
	{
		c = MemoryContextAllocZero(mcxt, sizeof(AlignCache));
		*cache = c;
	}
	if (c->generation != transform_cache_generation ||
		c->model_a != ma || c->model_b != mb)
	{
		/* Resolve once per pair of models (and per catalog change). */
		const TransformPath *path = NULL;
		int			which = 0;
		const FctModel *to;
		int32		out_side;
		Size		size;

		c->generation = 0;		/* not valid until the end */
		if (ma != FCT_NO_MODEL && mb != FCT_NO_MODEL)
		{
			if ((path = transform_path(ma, mb)) != NULL)
				which = 1;
			else if ((path = transform_path(mb, ma)) != NULL)
				which = 2;
		}
		if (path != NULL)
		{
			to = model_by_id(path->to_model);
			out_side = to->side_dim;
			size = EMBEDDING_SIZE(to->dim, out_side);
			if (c->buf == NULL || c->buf_size < size)
			{
				MemoryContext old = MemoryContextSwitchTo(mcxt);

				if (c->buf)
					pfree(c->buf);
				c->buf = embedding_alloc(to->dim, out_side, to->id);
				c->buf_size = size;
				MemoryContextSwitchTo(old);
			}
			SET_VARSIZE(c->buf, size);
			c->buf->version = FCT_EMBEDDING_VERSION;
			c->buf->flags = 0;
			c->buf->dim = to->dim;
			c->buf->side_dim = out_side;
			c->buf->unused = 0;
			c->buf->model_id = to->id;
			if (c->scratch == NULL || c->scratch_width < path->max_width)
			{
				if (c->scratch)
					pfree(c->scratch);
				c->scratch = MemoryContextAlloc(mcxt, sizeof(float4) * 4 * path->max_width);
				c->scratch_width = path->max_width;
			}
		}
		c->path = path;
		c->which = which;
		c->model_a = ma;
		c->model_b = mb;
		c->generation = transform_cache_generation;
	}
	if (c->which == 0)
		return false;

	src = (c->which == 1) ? *a : *b;
	check_input(c->path, src);
	/* the buffer was sized for the target's side-information: a value without any gets none */
	c->buf->side_dim = output_side_dim(c->path, src);
	SET_VARSIZE(c->buf, EMBEDDING_SIZE(c->buf->dim, c->buf->side_dim));
	transform_apply_one(c->path, EMBEDDING_VEC(src), EMBEDDING_SIDE(src),
						EMBEDDING_VEC(c->buf), c->scratch);
	if (c->buf->side_dim > 0)
		memcpy(EMBEDDING_SIDE(c->buf), EMBEDDING_SIDE(src),
			   sizeof(float4) * c->buf->side_dim);
	embedding_finalize(c->buf);
	if (c->which == 1)
		*a = c->buf;
	else
		*b = c->buf;
	return true;
}

/* ---------------------------------------------------------------------
 * Registration
 * ---------------------------------------------------------------------
 */

/* Whether a path leads from a to b over the given edges. */
static bool
edges_reach(int m, const int32 *f, const int32 *t, int32 a, int32 b)
{
	List	   *seen = list_make1_int(a);
	List	   *frontier = list_make1_int(a);

	if (a == b)
		return true;
	while (frontier != NIL)
	{
		List	   *next = NIL;
		ListCell   *lc;

		foreach(lc, frontier)
		{
			int32		x = lfirst_int(lc);
			int			i;

			for (i = 0; i < m; i++)
			{
				if (f[i] != x || list_member_int(seen, t[i]))
					continue;
				if (t[i] == b)
					return true;
				seen = lappend_int(seen, t[i]);
				next = lappend_int(next, t[i]);
			}
		}
		frontier = next;
	}
	return false;
}

/* The caller must be allowed to execute fct_register_transformation. */
static void
check_register_privilege(void)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, JSONBOID};
	char	   *nspname = get_namespace_name(fct_extension_schema());
	Oid			fn;

	fn = LookupFuncName(list_make2(makeString(nspname),
								   makeString("fct_register_transformation")),
						3, argtypes, true);
	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function fct_register_transformation(text, text, jsonb) of extension \"fct\" not found")));
	if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to register a transformation"),
				 errdetail("Registering needs the privilege to execute fct_register_transformation(text, text, jsonb)."),
				 errhint("The owner of extension \"fct\" can GRANT EXECUTE on it.")));
}

static int32
register_net(TransformNet *net, const char *origin, Jsonb *metrics)
{
	const FctModel *from = model_by_id(net->from_model);
	const FctModel *to = model_by_id(net->to_model);
	int32	   *f;
	int32	   *t;
	int32	   *ids;
	int			m;
	int			i;
	List	   *anc = NIL;
	List	   *desc = NIL;
	ListCell   *la;
	ListCell   *ld;
	char	   *sql;
	Oid			argtypes[6] = {INT4OID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, JSONBOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;
	bool		isnull;
	int32		id;

	if (strcmp(origin, "imported") != 0 && strcmp(origin, "fitted") != 0)
		elog(ERROR, "invalid transformation origin \"%s\"", origin);
	check_register_privilege();

	/*
	 * Registrations are serialised (the lock conflicts with itself), so the
	 * graph checks below see every committed transformation and no other can
	 * slip in before ours commits.
	 */
	transform_resolve_catalog();
	LockRelationOid(transformations_relid, ShareRowExclusiveLock);
	m = read_edges(&f, &t, &ids);

	for (i = 0; i < m; i++)
		if (f[i] == from->id && t[i] == to->id)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("transformation from \"%s\" to \"%s\" already exists",
							from->name, to->name),
					 errdetail("Registered transformations are immutable: fct_upgrade results may be stored in indexes."),
					 errhint("Register a new target model for a different transformation.")));
	if (edges_reach(m, f, t, to->id, from->id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("transformation from \"%s\" to \"%s\" would close a cycle",
						from->name, to->name),
				 errdetail("An upgrade path already leads from \"%s\" to \"%s\".",
						   to->name, from->name),
				 errhint("Upgrades go one way: register a new target model instead.")));

	/* Models from which "from" is reachable, and those reachable from "to". */
	anc = list_make1_int(from->id);
	desc = list_make1_int(to->id);
	for (i = 0; i < m; i++)
	{
		if (!list_member_int(anc, f[i]) && edges_reach(m, f, t, f[i], from->id))
			anc = lappend_int(anc, f[i]);
		if (!list_member_int(desc, t[i]) && edges_reach(m, f, t, to->id, t[i]))
			desc = lappend_int(desc, t[i]);
	}
	foreach(la, anc)
	{
		foreach(ld, desc)
		{
			int32		x = lfirst_int(la);
			int32		y = lfirst_int(ld);

			if (edges_reach(m, f, t, x, y))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
						 errmsg("transformation from \"%s\" to \"%s\" would open a second upgrade path from \"%s\" to \"%s\"",
								from->name, to->name,
								model_display_name(x), model_display_name(y)),
						 errdetail("fct_upgrade is IMMUTABLE: the path between two models must never change once it exists."),
						 errhint("Register a new target model instead.")));
		}
	}
	/* Insert as the catalog's owner (the caller's privilege was checked). */
	sql = psprintf("INSERT INTO %s "
				   "(from_model, to_model, architecture, weights, origin, metrics) "
				   "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
				   query_ext_name("fct_transformations"));
	values[0] = Int32GetDatum(from->id);
	values[1] = Int32GetDatum(to->id);
	values[2] = CStringGetTextDatum(net_architecture(net));
	values[3] = PointerGetDatum(net_serialize(net));
	values[4] = CStringGetTextDatum(origin);
	if (metrics != NULL)
		values[5] = JsonbPGetDatum(metrics);
	else
	{
		values[5] = (Datum) 0;
		nulls[5] = 'n';
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * No row limit: with one, the executor stops ModifyTable early and the
	 * AFTER STATEMENT trigger (the cache invalidation) never fires.  The
	 * insert guard lets this one row in (an error resets the flag).
	 */
	transform_registering = true;
	PG_TRY();
	{
		rc = query_execute_as_owner(transformations_relid, sql, 6, argtypes,
									values, nulls, false);
	}
	PG_FINALLY();
	{
		transform_registering = false;
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "inserting into fct_transformations failed: %s",
			 SPI_result_code_string(rc));
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return id;
}

/*
 * fct_transformations_insert_guard: BEFORE INSERT row trigger.
 *
 * The graph checks (no cycle, no second path, shapes against both models)
 * are made by registration, which needs every committed edge; a row written
 * into the table directly, even by its owner, would bypass them and break
 * the contract that makes fct_upgrade IMMUTABLE.  So the only rows let in are
 * the one transform_register_net is inserting, and the rows of a restore:
 * while check_function_bodies is off (pg_dump and pg_restore set it first,
 * see resolve_model in embedding.c), the rows come from a database where
 * they were registered, and their models may not be restored yet (the data
 * of the extension's tables loads in any order under pg_restore -j, which is
 * also why the table has no foreign key to fct_models).
 */
PG_FUNCTION_INFO_V1(fct_transformations_insert_guard);
Datum
fct_transformations_insert_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_transformations_insert_guard: not called as a BEFORE INSERT row trigger")));

	if (!transform_registering && check_function_bodies)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert into fct_transformations directly"),
				 errdetail("Registration checks the upgrade graph (no cycle, no second path) and the shapes: fct_upgrade is IMMUTABLE only because of them."),
				 errhint("Use fct_register_transformation or fct_fit_transformation.")));

	return PointerGetDatum(trigdata->tg_trigtuple);
}

static void
check_pair(const FctModel *from, const FctModel *to)
{
	if (from->id == to->id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transformation needs two different models, got \"%s\" twice",
						from->name)));
	if (to->side_dim != 0 && to->side_dim != from->side_dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg_plural("model \"%s\" has %d side-information dimension, model \"%s\" has %d",
							   "model \"%s\" has %d side-information dimensions, model \"%s\" has %d",
							   to->side_dim,
							   to->name, to->side_dim, from->name, from->side_dim),
				 errdetail("An upgrade keeps the side-information, so the target model must have the same side-information dimension, or none."),
				 from->side_dim > 0 ?
				 errhint("Register the target model with side_dim => %d, or 0.", from->side_dim) :
				 errhint("Register the target model with side_dim => 0.")));
}

void
transform_check_registrable(int32 from_model, int32 to_model)
{
	check_register_privilege();
	check_pair(model_by_id(from_model), model_by_id(to_model));
}

int32
transform_register(int32 from_model, int32 to_model, Jsonb *spec,
				   const char *origin, Jsonb *metrics)
{
	TransformNet *net;

	check_pair(model_by_id(from_model), model_by_id(to_model));
	net = transform_parse_spec(spec, from_model, to_model);
	return register_net(net, origin, metrics);
}

int32
transform_register_net(TransformNet *net, const char *origin, Jsonb *metrics)
{
	check_pair(model_by_id(net->from_model), model_by_id(net->to_model));
	net->old_dim = model_by_id(net->from_model)->dim;
	net->side_dim = model_by_id(net->from_model)->side_dim;
	net->new_dim = model_by_id(net->to_model)->dim;
	net_validate(net);
	return register_net(net, origin, metrics);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(fct_register_transformation);
Datum
fct_register_transformation(PG_FUNCTION_ARGS)
{
	char	   *from_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *to_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Jsonb	   *spec = PG_GETARG_JSONB_P(2);
	const FctModel *from = model_by_name(from_name);
	int32		from_id = from->id;
	int32		to_id = model_by_name(to_name)->id;

	PG_RETURN_INT32(transform_register(from_id, to_id, spec, "imported", NULL));
}

typedef struct UpgradeCache
{
	uint64		generation;
	char		to_name[FCT_MODEL_NAME_MAX + 1];
	int32		to_model;
	int32		from_model;
	const TransformPath *path;
	float4	   *scratch;		/* 4 * scratch_width floats, in fn_mcxt */
	int32		scratch_width;
} UpgradeCache;

/*
 * fct_upgrade(e, to_model text) and fct_upgrade(e, to_model integer): the
 * target by name, or by id (to_text NULL).  The integer form exists for
 * postgres_fdw, which ships no function whose input collation comes from a
 * constant (a text argument), while fct_upgrade(e, fct_model_id('m2')) is
 * folded by the planner into fct_upgrade(e, <id>) and shipped.
 */
static Datum
upgrade_value(FunctionCallInfo fcinfo, Embedding *e, text *to_text, int32 to_id)
{
	UpgradeCache *c = (UpgradeCache *) fcinfo->flinfo->fn_extra;
	int			len = to_text ? VARSIZE_ANY_EXHDR(to_text) : 0;
	const FctModel *to;
	Embedding  *r;

	if (e->model_id == FCT_NO_MODEL)
		no_model_error();
	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(UpgradeCache));
		fcinfo->flinfo->fn_extra = c;
	}

	/* The target model, resolved once while the argument stays the same. */
	if (to_text == NULL ? (c->generation == 0 || c->to_model != to_id) :
		(c->generation == 0 || len > FCT_MODEL_NAME_MAX ||
		 strncmp(c->to_name, VARDATA_ANY(to_text), len) != 0 ||
		 c->to_name[len] != '\0'))
	{
		c->generation = 0;
		to = to_text ? upgrade_target(text_to_cstring(to_text)) : model_by_id(to_id);
		strlcpy(c->to_name, to->name, sizeof(c->to_name));
		c->to_model = to->id;
		c->from_model = FCT_NO_MODEL;
		c->path = NULL;
		c->generation = transform_cache_generation;
	}

	if (e->model_id == c->to_model)
		PG_RETURN_EMBEDDING_P(e);

	if (c->generation != transform_cache_generation || c->path == NULL ||
		c->from_model != e->model_id)
	{
		c->path = NULL;
		c->path = upgrade_path(e->model_id, c->to_model);
		c->from_model = e->model_id;
		if (c->scratch == NULL || c->scratch_width < c->path->max_width)
		{
			if (c->scratch)
				pfree(c->scratch);
			c->scratch = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
											sizeof(float4) * 4 * c->path->max_width);
			c->scratch_width = c->path->max_width;
		}
		c->generation = transform_cache_generation;
	}
	check_input(c->path, e);

	to = model_by_id(c->to_model);
	r = embedding_alloc(to->dim, output_side_dim(c->path, e), to->id);
	transform_apply_one(c->path, EMBEDDING_VEC(e), EMBEDDING_SIDE(e),
						EMBEDDING_VEC(r), c->scratch);
	if (r->side_dim > 0)
		memcpy(EMBEDDING_SIDE(r), EMBEDDING_SIDE(e), sizeof(float4) * r->side_dim);
	embedding_finalize(r);
	PG_RETURN_EMBEDDING_P(r);
}

PG_FUNCTION_INFO_V1(fct_upgrade);
Datum
fct_upgrade(PG_FUNCTION_ARGS)
{
	return upgrade_value(fcinfo, PG_GETARG_EMBEDDING_P(0), PG_GETARG_TEXT_PP(1), 0);
}

PG_FUNCTION_INFO_V1(fct_upgrade_by_id);
Datum
fct_upgrade_by_id(PG_FUNCTION_ARGS)
{
	return upgrade_value(fcinfo, PG_GETARG_EMBEDDING_P(0), NULL, PG_GETARG_INT32(1));
}

/*
 * fct_upgrade_batch(embedding[], to_model): the batched form, one kernel_matmul per
 * layer over the rows of each source model (transform_upgrade_batch).  NULL
 * elements stay NULL; the result has the input's dimensions and bounds.
 *
 * The result array is laid out first (the sizes of the upgraded values are
 * known before any arithmetic) and the values are written into it: one
 * allocation of the array's size instead of one palloc per value and the
 * copy of construct_md_array, which with a freshly paged-in array each made
 * a fifth of the call's time.
 */
PG_FUNCTION_INFO_V1(fct_upgrade_array);
Datum
fct_upgrade_array(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	const FctModel *to = model_by_name(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int			ndim = ARR_NDIM(arr);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			m = 0;
	int			i;
	Embedding **in;
	Embedding **out;
	Size	   *offsets;
	Size		nbytes = 0;
	int32		dataoffset;
	bool		hasnulls = false;
	int32		from = FCT_NO_MODEL;
	const TransformPath *path = NULL;
	ArrayType  *result;
	char	   *data;

	if (ndim == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(elemtype));

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign,
					  &elems, &nulls, &n);
	in = palloc(sizeof(Embedding *) * Max(n, 1));
	out = palloc(sizeof(Embedding *) * Max(n, 1));
	offsets = palloc(sizeof(Size) * Max(n, 1));

	/* The layout of the result, as construct_md_array computes it. */
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
		{
			hasnulls = true;
			continue;
		}
		in[m] = DatumGetEmbeddingP(elems[i]);
		offsets[m] = nbytes;
		nbytes += upgraded_size(in[m], to, &from, &path);
		nbytes = att_align_nominal(nbytes, typalign);
		check_result_array_size(nbytes);
		m++;
	}
	if (hasnulls)
	{
		dataoffset = ARR_OVERHEAD_WITHNULLS(ndim, n);
		nbytes += dataoffset;
	}
	else
	{
		dataoffset = 0;
		nbytes += ARR_OVERHEAD_NONULLS(ndim);
	}
	check_result_array_size(nbytes);

	result = (ArrayType *) palloc0(nbytes);
	SET_VARSIZE(result, nbytes);
	result->ndim = ndim;
	result->dataoffset = dataoffset;
	result->elemtype = elemtype;
	memcpy(ARR_DIMS(result), ARR_DIMS(arr), sizeof(int) * ndim);
	memcpy(ARR_LBOUND(result), ARR_LBOUND(arr), sizeof(int) * ndim);
	if (hasnulls)
	{
		bits8	   *bitmap = ARR_NULLBITMAP(result);

		/* bit set = not null; palloc0 left the others clear */
		for (i = 0; i < n; i++)
			if (!nulls[i])
				bitmap[i / BITS_PER_BYTE] |= (bits8) (1 << (i % BITS_PER_BYTE));
	}
	data = ARR_DATA_PTR(result);
	for (i = 0; i < m; i++)
		out[i] = (Embedding *) (data + offsets[i]);

	upgrade_batch(in, m, to->id, out, true);
	PG_RETURN_ARRAYTYPE_P(result);
}

PG_FUNCTION_INFO_V1(fct_upgrade_path);
Datum
fct_upgrade_path(PG_FUNCTION_ARGS)
{
	const FctModel *from = model_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	const FctModel *to = model_by_name(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	const TransformPath *path = transform_path(from->id, to->id);
	Datum	   *names;
	int			i;

	if (path == NULL)
		PG_RETURN_NULL();
	names = palloc(sizeof(Datum) * (path->nhops + 1));
	names[0] = CStringGetTextDatum(from->name);
	for (i = 0; i < path->nhops; i++)
		names[i + 1] = CStringGetTextDatum(model_display_name(path->hops[i]->to_model));
	PG_RETURN_ARRAYTYPE_P(construct_array(names, path->nhops + 1, TEXTOID, -1,
										  false, TYPALIGN_INT));
}

