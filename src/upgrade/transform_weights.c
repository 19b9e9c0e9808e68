/*
 * transform_weights.c
 *	  A transformation's weights as the catalog stores them: the "weights"
 *	  bytea of fct_transformations, one immutable row per (from_model,
 *	  to_model), the layers already folded (BatchNorm into the preceding
 *	  linear map):
 *
 *	 int32 magic 'FCTW', int32 version (1),
 *	 int32 old_dim, side_dim, new_dim, use_side (0/1), n_old, n_side, n_mixer,
 *	 then per layer (old branch, side branch, mixer, in order):
 *	   int32 in_dim, out_dim, flags (bit 0: ReLU after the layer),
 *	   float4 weight[out_dim * in_dim] (row-major), float4 bias[out_dim]
 *
 * every number little-endian, so that a dump restores on any platform.
 * Reading back checks every size and number (ERRCODE_DATA_CORRUPTED) and the
 * shapes against the models (net_validate).
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "port/pg_bswap.h"

#include "upgrade/transform_internal.h"

#define WEIGHTS_MAGIC		0x57544346	/* "FCTW" read little-endian */
#define WEIGHTS_VERSION		1
#define LAYER_FLAG_RELU		1

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

bytea *
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
TransformNet *
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
