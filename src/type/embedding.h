/*
 * embedding.h
 *	  The embedding type: a vector tagged with the model that produced it and
 *	  a side-information vector (Forward Compatible Training).
 *
 * On-disk layout (format version 1), a varlena:
 *
 *	 offset  size  field
 *	 0       4     varlena header
 *	 4       1     version      FCT_EMBEDDING_VERSION; readers reject others
 *	 5       1     flags        reserved, always 0 in version 1
 *	 6       2     dim          vector dimension, 1..FCT_MAX_DIM
 *	 8       2     side_dim     side-information dimension, 0..FCT_MAX_SIDE_DIM
 *	 10      2     unused       always 0
 *	 12      4     model_id     fct_models.id = fct_model_id(name), or 0: no model
 *	 16      4*dim             float4 vector values
 *	 ...     4*side_dim        float4 side-information values
 *
 * Every float is finite (no NaN, no infinity), and -0 is stored as +0 so that
 * byte equality, btree equality and hashing agree.  A model's id is a hash
 * of its name (src/model/model.c), the same in every database; text and binary I/O
 * still carry the model's name, which is what users see.
 */
#ifndef FCT_EMBEDDING_H
#define FCT_EMBEDDING_H

#include "postgres.h"
#include "fmgr.h"

#include "model/model.h"

#define FCT_EMBEDDING_VERSION	1
#define FCT_MAX_DIM				16000
#define FCT_MAX_SIDE_DIM		4096

typedef struct Embedding
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
	uint8		flags;
	uint16		dim;
	uint16		side_dim;
	int16		unused;
	int32		model_id;
	float4		x[FLEXIBLE_ARRAY_MEMBER];	/* dim values, then side_dim */
} Embedding;

#define EMBEDDING_SIZE(dim, side_dim) \
	(offsetof(Embedding, x) + sizeof(float4) * ((Size) (dim) + (Size) (side_dim)))
#define EMBEDDING_VEC(e)		((e)->x)
#define EMBEDDING_SIDE(e)		((e)->x + (e)->dim)

#define DatumGetEmbeddingP(d)	((Embedding *) PG_DETOAST_DATUM(d))
#define PG_GETARG_EMBEDDING_P(n) DatumGetEmbeddingP(PG_GETARG_DATUM(n))
#define PG_RETURN_EMBEDDING_P(e) PG_RETURN_POINTER(e)

/*
 * Allocate a zeroed embedding in CurrentMemoryContext.  Dimensions are checked
 * against the limits (ERRCODE_PROGRAM_LIMIT_EXCEEDED); values are left zero.
 */
extern Embedding *embedding_alloc(int dim, int side_dim, int32 model_id);
extern void embedding_init_header(Embedding *e, int dim, int side_dim,
								  int32 model_id);

/*
 * Check that every value is finite (ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, 22003,
 * otherwise: the one code for NaN, infinity and float4 overflow everywhere) and
 * turn -0 into +0.  Every constructor calls this before returning a value.
 */
extern void embedding_finalize(Embedding *e);

/* Errors unless a and b have the same vector dimension. */
extern void embedding_check_same_dim(const Embedding *a, const Embedding *b);

/* The embedding type's oid, in the extension's schema (typeoid.c). */
extern Oid	embedding_type_oid(void);

#endif							/* FCT_EMBEDDING_H */
