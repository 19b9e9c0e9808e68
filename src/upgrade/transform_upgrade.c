/*
 * transform_upgrade.c
 *	  Upgrading embeddings in C: one value (transform_upgrade), a batch
 *	  (transform_upgrade_batch, grouped by source model), and an operand of the
 *	  distance operators (transform_align, with its state in fn_extra).
 *
 * The path comes from the store (transform_store.c), the arithmetic from
 * transform_apply.c: kernel_matmul per layer for one vector or a block of
 * rows, the same bits either way, which is what lets an index on the
 * IMMUTABLE fct_upgrade find rows a migration upgraded in batches.  The
 * upgraded value keeps the input's side-information unless the target model
 * has none.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "model/model.h"
#include "upgrade/transform_internal.h"

void
upgrade_no_model_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("cannot upgrade an embedding that names no model"),
			 errhint("Write embeddings with their model, e.g. 'v1:[1,2,3]|[0.5]' or fct_embedding(vec, side, 'v1').")));
}

/*
 * Errors unless e has the dimensions the path starts from.  A value may carry
 * no side-information even when its model has some (a query embedding usually
 * has none): that is fine unless a hop of the path reads it, and then it is an
 * error rather than a read past the value's end.
 */
void
upgrade_check_input(const TransformPath *path, const Embedding *e)
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
int32
upgrade_output_side_dim(const TransformPath *path, const Embedding *e)
{
	if (path->nhops == 0 || e->side_dim == 0)
		return e->side_dim;
	return model_by_id(path->to_model)->side_dim;
}

/*
 * The one way an upgraded value is written, by every path that makes one
 * (transform_upgrade, the batch, the operators' operand, fct_upgrade): the
 * header (embedding_init_header: the target's id and dimension, the
 * side-information e keeps), the vector through the path, e's
 * side-information, then the checks every value passes (embedding_finalize).
 *
 * path has at least one hop (a value already in the target model is never
 * upgraded).  r: storage of EMBEDDING_SIZE(target dim,
 * upgrade_output_side_dim(path, e)) bytes, or NULL for a new palloc'd value.
 * vec: e's row of a batch already through the path (transform_apply_batch);
 * NULL: e goes through it here (transform_apply_one, in scratch of
 * 4 * path->max_width floats).  Both are kernel_matmul per layer and give the
 * same bits (transform_apply.c), so every path stores the same value.
 */
Embedding *
upgrade_write(const TransformPath *path, const Embedding *e, Embedding *r,
			  const float4 *vec, float4 *scratch)
{
	int32		dim;
	int32		side_dim = upgrade_output_side_dim(path, e);

	Assert(path->nhops > 0);
	dim = path->hops[path->nhops - 1]->new_dim;
	if (r == NULL)
		r = embedding_alloc(dim, side_dim, path->to_model);
	else
		embedding_init_header(r, dim, side_dim, path->to_model);
	if (vec != NULL)
		memcpy(EMBEDDING_VEC(r), vec, sizeof(float4) * dim);
	else
		transform_apply_one(path, EMBEDDING_VEC(e), EMBEDDING_SIDE(e),
							EMBEDDING_VEC(r), scratch);
	if (side_dim > 0)
		memcpy(EMBEDDING_SIDE(r), EMBEDDING_SIDE(e), sizeof(float4) * side_dim);
	embedding_finalize(r);
	return r;
}

/*
 * Scratch memory for upgrade_write along path, kept in mcxt by a caller that
 * upgrades value after value (fn_extra): grown when a wider path comes.
 */
void
upgrade_scratch_reserve(float4 **scratch, int32 *width,
						const TransformPath *path, MemoryContext mcxt)
{
	if (*scratch != NULL && *width >= path->max_width)
		return;
	if (*scratch != NULL)
		pfree(*scratch);
	*scratch = MemoryContextAlloc(mcxt, sizeof(float4) * 4 * path->max_width);
	*width = path->max_width;
}

Embedding *
transform_upgrade(const Embedding *e, int32 to_model)
{
	const TransformPath *path;
	Embedding  *r;
	float4	   *scratch;

	if (e->model_id == FCT_NO_MODEL)
		upgrade_no_model_error();
	(void) model_by_id(to_model);	/* an error when there is no such model */
	if (e->model_id == to_model)
	{
		r = palloc(VARSIZE(e));
		memcpy(r, e, VARSIZE(e));
		return r;
	}
	path = transform_path(e->model_id, to_model);
	if (path == NULL)
		transform_no_path_error(e->model_id, to_model);
	upgrade_check_input(path, e);

	scratch = palloc(sizeof(float4) * 4 * path->max_width);
	r = upgrade_write(path, e, NULL, NULL, scratch);
	pfree(scratch);
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
void
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
			upgrade_no_model_error();
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
			transform_no_path_error(from_model, to_model);
		dim = path->hops[0]->old_dim;
		side_dim = path->hops[0]->side_dim;
		for (j = i; j < n; j++)
		{
			if (done[j] || in[j]->model_id != from_model)
				continue;
			upgrade_check_input(path, in[j]);
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
				int			k = group[c + j];

				out[k] = upgrade_write(path, in[k], prepared ? out[k] : NULL,
									   y + (Size) j * to->dim, NULL);
				done[k] = true;
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
	Size		buf_size;		/* room for the target's side-information */
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
	if (c->generation != transform_store_generation() ||
		c->model_a != ma || c->model_b != mb)
	{
		/* Resolve once per pair of models (and per catalog change). */
		const TransformPath *path = NULL;
		int			which = 0;
		const FctModel *to;
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
			size = EMBEDDING_SIZE(to->dim, to->side_dim);
			if (c->buf == NULL || c->buf_size < size)
			{
				MemoryContext old = MemoryContextSwitchTo(mcxt);

				if (c->buf)
					pfree(c->buf);
				c->buf = embedding_alloc(to->dim, to->side_dim, to->id);
				c->buf_size = size;
				MemoryContextSwitchTo(old);
			}
			upgrade_scratch_reserve(&c->scratch, &c->scratch_width, path, mcxt);
		}
		c->path = path;
		c->which = which;
		c->model_a = ma;
		c->model_b = mb;
		c->generation = transform_store_generation();
	}
	if (c->which == 0)
		return false;

	src = (c->which == 1) ? *a : *b;
	upgrade_check_input(c->path, src);
	/* the buffer has room for the target's side-information; the header says what src keeps */
	upgrade_write(c->path, src, c->buf, NULL, c->scratch);
	if (c->which == 1)
		*a = c->buf;
	else
		*b = c->buf;
	return true;
}
