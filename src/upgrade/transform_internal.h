/*
 * transform_internal.h
 *	  What the files of a transformation share with each other and with no one
 *	  else (transform.h is the interface for the rest of fct).  The files, each
 *	  calling only those listed before it (README.md draws the picture):
 *
 *	  transform_apply.c		the arithmetic: a path over one vector or a block of
 *							rows, kernel_matmul per layer (no catalog)
 *	  transform_net.c		a net's shape checked against its two models; its
 *							one-line summary (fct_transformations.architecture)
 *	  transform_spec.c		the jsonb spec parsed into a net, BatchNorm folded
 *	  transform_weights.c	a net to and from the catalog's "weights" bytea
 *	  transform_store.c		the per-backend cache of the catalog, path search,
 *							the restore wait (fct.restore_wait)
 *	  transform_register.c	registration: the graph checks, the insert, the
 *							insert guard trigger, fct_register_transformation
 *	  transform_upgrade.c	upgrading values in C: one, a batch, an operand of
 *							the distance operators, through one apply helper
 *	  transform_sql.c		the SQL functions fct_upgrade, fct_upgrade_batch,
 *							fct_upgrade_path
 */
#ifndef FCT_TRANSFORM_INTERNAL_H
#define FCT_TRANSFORM_INTERNAL_H

#include "postgres.h"

#include "utils/timestamp.h"

#include "upgrade/transform.h"

/* Widest hidden layer a spec may declare (and a stored net may have). */
#define TRANSFORM_MAX_WIDTH		65536

/* transform_net.c */

/*
 * Check that a net's layers chain up and fit both models; fill old_out,
 * side_out and max_width.  Used for parsed specs, for nets built in C
 * (fit.c) and for weights read back from the catalog.
 */
extern void net_validate(TransformNet *net);

/* "old 128->256 | side 16->32 | mixer 288->128": the architecture column. */
extern char *net_architecture(const TransformNet *net);

/* transform_weights.c */

/* The "weights" bytea of a net (the format is at the top of the file). */
extern bytea *net_serialize(const TransformNet *net);

/* Parse (and validate) the weights of transformation id, from -> to. */
extern TransformNet *net_deserialize(bytea *b, int32 id, int32 from_model,
									 int32 to_model);

/* transform_store.c */

/* The OID of fct_transformations (an error when the catalog is missing). */
extern Oid	transform_catalog_relid(void);

/*
 * Every edge (from, to, id) of the catalog, read with a fresh catalog
 * snapshot; the count, the arrays palloc'd in CurrentMemoryContext.
 */
extern int	transform_read_edges(int32 **from_out, int32 **to_out,
								 int32 **id_out);

/*
 * A counter that changes whenever the catalog does: a caller that keeps a
 * path beyond the current transaction (in fn_extra) compares it first.
 */
extern uint64 transform_store_generation(void);

/* ERRCODE_UNDEFINED_OBJECT: no upgrade path from one model to the other. */
extern void transform_no_path_error(int32 from_model, int32 to_model) pg_attribute_noreturn();

/*
 * While a dump is restored, wait a little for the catalogs to be loaded:
 * false when the caller should stop waiting (*start is 0 on the first call).
 */
extern bool transform_restore_wait(TimestampTz *start);

/* transform_upgrade.c */

/* ERRCODE_INVALID_PARAMETER_VALUE: a value that names no model. */
extern void upgrade_no_model_error(void) pg_attribute_noreturn();

/* Errors unless e has the dimensions (and side-information) path reads. */
extern void upgrade_check_input(const TransformPath *path, const Embedding *e);

/* The side-information dimension of e once upgraded along path. */
extern int32 upgrade_output_side_dim(const TransformPath *path,
									 const Embedding *e);

/*
 * Write e upgraded along path (at least one hop) into r, or into a new
 * palloc'd value when r is NULL: header, vector, side-information,
 * finalised.  vec: e's row already through the path in a batch; NULL: the
 * path is applied here in scratch (4 * path->max_width floats).  Every way
 * of upgrading a value ends here, so that they all store the same bits.
 */
extern Embedding *upgrade_write(const TransformPath *path, const Embedding *e,
								Embedding *r, const float4 *vec,
								float4 *scratch);

/* Grow *scratch (kept in mcxt, e.g. fn_extra) to what upgrade_write needs. */
extern void upgrade_scratch_reserve(float4 **scratch, int32 *width,
									const TransformPath *path,
									MemoryContext mcxt);

/*
 * transform_upgrade_batch, and the form for fct_upgrade_batch that writes
 * into storage prepared by the caller (prepared: out[i] points to zeroed
 * memory of the upgraded value's size).
 */
extern void upgrade_batch(Embedding **in, int n, int32 to_model,
						  Embedding **out, bool prepared);

#endif							/* FCT_TRANSFORM_INTERNAL_H */
