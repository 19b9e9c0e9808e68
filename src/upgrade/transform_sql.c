/*
 * transform_sql.c
 *	  The SQL functions that upgrade: fct_upgrade (by the target model's name
 *	  or id), fct_upgrade_batch (an array at once) and fct_upgrade_path (the
 *	  models a path passes through).
 *
 * fct_upgrade keeps the resolved target, path and scratch memory in
 * fn_extra, so that a scan of one model's rows looks nothing up per row;
 * while a dump is restored it waits for the catalogs it needs
 * (transform_restore_wait), since pg_restore -j may build an index on it
 * before they are loaded.
 */
#include "postgres.h"

#include "access/tupmacs.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "model/model.h"
#include "upgrade/transform_internal.h"

/* The target model of fct_upgrade (waiting for it while restoring). */
static const FctModel *
upgrade_target(const char *name)
{
	TimestampTz start = 0;
	const FctModel *m;

	while ((m = model_lookup_name(name)) == NULL && transform_restore_wait(&start))
		;
	return m != NULL ? m : model_by_name(name);
}

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
		if (path != NULL || !transform_restore_wait(&start))
			break;
	}
	if (path == NULL)
		transform_no_path_error(from_model, to_model);
	return path;
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
		upgrade_no_model_error();
	if (e->model_id == to->id)
		return VARSIZE(e);
	if (*path == NULL || *from != e->model_id)
	{
		*path = transform_path(e->model_id, to->id);
		if (*path == NULL)
			transform_no_path_error(e->model_id, to->id);
		*from = e->model_id;
	}
	return EMBEDDING_SIZE(to->dim, upgrade_output_side_dim(*path, e));
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

	if (e->model_id == FCT_NO_MODEL)
		upgrade_no_model_error();
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
		c->generation = transform_store_generation();
	}

	if (e->model_id == c->to_model)
		PG_RETURN_EMBEDDING_P(e);

	if (c->generation != transform_store_generation() || c->path == NULL ||
		c->from_model != e->model_id)
	{
		c->path = NULL;
		c->path = upgrade_path(e->model_id, c->to_model);
		c->from_model = e->model_id;
		upgrade_scratch_reserve(&c->scratch, &c->scratch_width, c->path,
								fcinfo->flinfo->fn_mcxt);
		c->generation = transform_store_generation();
	}
	upgrade_check_input(c->path, e);
	PG_RETURN_EMBEDDING_P(upgrade_write(c->path, e, NULL, NULL, c->scratch));
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
