/*
 * transform.h
 *	  Transformations between models (table fct_transformations): parse and
 *	  validate a spec, register it, find the path from one model to another,
 *	  and apply it to one embedding or to a batch (kernel_matmul: the same
 *	  bits either way, on every CPU).  The interface for the rest of fct; the
 *	  files behind it, and what they share, are in transform_internal.h.
 *
 * A transformation maps an embedding of model "from" (vector and
 * side-information) into the space of model "to":
 *
 *	 h(old, side) = mixer(concat(old_branch(old), side_branch(side)))
 *
 * where each branch and the mixer are stacks of dense layers (weight, bias,
 * optional BatchNorm in eval mode folded into the weight at import, ReLU or
 * no activation).  The public import format is a jsonb spec (see the README
 * and sql/install/40_transform.sql):
 *
 *	 spec  := { "old": [layer...], "side": [layer...] | null, "mixer": [layer...] }
 *	 layer := { "weight": [[...]...] (out x in), "bias": [...],
 *				"batchnorm": {"mean","var","weight","bias","eps"},
 *				"activation": "relu" | "none" }
 *
 * Registered transformations are immutable and the upgrade graph keeps at
 * most one path between any two models, so the result of an upgrade never
 * changes once computed: fct_upgrade is IMMUTABLE and may serve in index
 * expressions.
 */
#ifndef FCT_TRANSFORM_H
#define FCT_TRANSFORM_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/jsonb.h"

#include "type/embedding.h"

/* One dense layer: y = act(W x + b), BatchNorm already folded into W and b. */
typedef struct TransformLayer
{
	int32		in_dim;
	int32		out_dim;
	bool		relu;
	float4	   *weight;			/* out_dim x in_dim, row-major */
	float4	   *bias;			/* out_dim values (zeros when the spec had none) */
} TransformLayer;

/* One registered transformation (one hop of a path), weights parsed. */
typedef struct TransformNet
{
	int32		from_model;
	int32		to_model;
	int32		old_dim;		/* from model's dim */
	int32		side_dim;		/* from model's side_dim */
	int32		new_dim;		/* to model's dim */
	bool		use_side;		/* false when the spec's "side" was null */
	int32		old_out;		/* width of the old branch's output */
	int32		side_out;		/* width of the side branch's output (0 if unused) */
	int32		max_width;		/* widest layer input or output, for buffers */
	int			n_old;
	int			n_side;
	int			n_mixer;
	TransformLayer *layers;		/* n_old old-branch layers, then n_side, then n_mixer */
} TransformNet;

/* The hops from one model to another, in order; nhops == 0 is the identity. */
typedef struct TransformPath
{
	int32		from_model;
	int32		to_model;
	int			nhops;
	const TransformNet **hops;
	int32		max_width;		/* widest buffer any hop needs */
} TransformPath;

/* Registers the cache's invalidation callback; called once by _PG_init. */
extern void transform_init(void);

/*
 * Parse and validate a spec for a transformation between two models, folding
 * BatchNorm into the layers.  Errors (ERRCODE_INVALID_PARAMETER_VALUE) name
 * the layer ("mixer[1]"), the expected and the actual shape.  The result is
 * allocated in CurrentMemoryContext.
 */
extern TransformNet *transform_parse_spec(Jsonb *spec, int32 from_model,
										  int32 to_model);

/*
 * Register a transformation from a spec (the format above) and return its id.
 * origin is "imported" or "fitted"; metrics (training metrics) may be NULL.
 * The caller needs the privilege to execute fct_register_transformation (its
 * owner or the roles granted it); the row is inserted as the catalog's owner.
 * Errors when the pair is already registered, when it would close a cycle or
 * open a second path between two models (either would make upgrades change).
 * Used by fct_register_transformation and by fit.c.
 */
extern int32 transform_register(int32 from_model, int32 to_model, Jsonb *spec,
								const char *origin, Jsonb *metrics);

/*
 * The checks that registration makes before any weights: the caller's
 * privilege and a compatible pair of models (distinct; the target's
 * side-information dimension equal to the source's, or 0).  For callers that
 * do long work before registering (fit.c), so that they fail first.
 */
extern void transform_check_registrable(int32 from_model, int32 to_model);

/*
 * The same from layers built in C (no jsonb round trip): set from_model,
 * to_model, use_side, n_old, n_side, n_mixer and the layers (BatchNorm
 * already folded, relu set per layer); the rest is filled and checked here.
 */
extern int32 transform_register_net(TransformNet *net, const char *origin,
									Jsonb *metrics);

/*
 * The path from one model to another (chains of registered transformations),
 * NULL when none exists.  Cached per backend: the result stays valid until
 * the end of the current transaction (the files of src/upgrade that keep a
 * path longer, in fn_extra, check the store's generation counter first).
 */
extern const TransformPath *transform_path(int32 from_model, int32 to_model);

/*
 * Upgrade one embedding into to_model: a new palloc'd embedding carrying
 * to_model's id, the transformed vector and the input's side-information
 * (dropped when to_model has none).  A copy when e is already in to_model.
 * Errors (ERRCODE_UNDEFINED_OBJECT, with a hint) when no path exists or e
 * names no model.
 */
extern Embedding *transform_upgrade(const Embedding *e, int32 to_model);

/*
 * Upgrade n embeddings at once: out[i] is in[i] itself when it is already in
 * to_model, otherwise a new palloc'd embedding.  Rows are grouped by source
 * model and each layer is one kernel_matmul over a block of the group.
 * Errors like transform_upgrade.  Each result has the same bits as
 * transform_upgrade's for the same input, whatever else is in the batch.
 */
extern void transform_upgrade_batch(Embedding **in, int n, int32 to_model,
									Embedding **out);

/*
 * Arithmetic only: apply a path to n rows given as row-major arrays
 * (old: n x from dim, side: n x side_dim, out: n x to dim).  No catalog
 * access.  transform_apply_one is the single-vector form (same bits as a row
 * of the batch); its scratch must hold 4 * path->max_width floats.
 */
extern void transform_apply_batch(const TransformPath *path, const float4 *old,
								  const float4 *side, int n, float4 *out);
extern void transform_apply_one(const TransformPath *path, const float4 *old,
								const float4 *side, float4 *out,
								float4 *scratch);

/*
 * For the distance operators: make two operands of different models
 * comparable.  If a path leads from a's model to b's, *a is replaced by its
 * upgrade (or b's by a's when the path runs the other way) and true is
 * returned; false when no path exists either way.  The resolved path and the
 * output buffer are cached in *cache (allocated in mcxt, e.g. fn_extra in
 * fn_mcxt), so repeated calls with the same pair of models do no look-up and
 * no allocation; the replaced pointer stays valid until the next call.
 */
extern bool transform_align(void **cache, MemoryContext mcxt,
							Embedding **a, Embedding **b);

#endif							/* FCT_TRANSFORM_H */
