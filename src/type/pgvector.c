/*
 * pgvector.c
 *	  Casts between pgvector's `vector` and `embedding`, for the fct_pgvector
 *	  extension (sql/pgvector/fct_pgvector--*.sql), which exists only in a
 *	  database that has both fct and pgvector.
 *
 * fct does not link against pgvector (nor need it installed to build): these
 * functions read and write pgvector's on-disk layout, which pgvector has kept
 * since its first release and documents in src/vector.h:
 *
 *	 offset  size  field
 *	 0       4     varlena header
 *	 4       2     dim      int16, 1..16000
 *	 6       2     unused   int16, always 0
 *	 8       4*dim         float4 values
 *
 * A value whose size does not match its dim is refused (XX001, data
 * corrupted): if pgvector ever changes its layout, the casts fail loudly
 * rather than read garbage.  test/t/130_pgvector_casts.pl checks every value
 * of a random sample against pgvector's own text output.
 *
 * vector -> embedding gives a value with no model and no side-information;
 * embedding -> vector keeps the vector part only (the model and the
 * side-information are dropped, as the cast to real[] does).  Both copy the
 * floats bit for bit, except that -0 becomes +0 in an embedding
 * (embedding_finalize: byte equality, btree equality and hashing agree).  A
 * typmod on either side (embedding(3), vector(3)) is applied by the type's
 * own length coercion after the cast.
 */
#include "postgres.h"

#include "fmgr.h"
#include "type/embedding.h"

/* pgvector's limit (VECTOR_MAX_DIM), which is also FCT_MAX_DIM */
#define PGVECTOR_MAX_DIM	16000

typedef struct PgvectorVector
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	int16		dim;
	int16		unused;
	float4		x[FLEXIBLE_ARRAY_MEMBER];
} PgvectorVector;

#define PGVECTOR_SIZE(dim)	(offsetof(PgvectorVector, x) + sizeof(float4) * (Size) (dim))

PG_FUNCTION_INFO_V1(fct_vector_to_embedding);
Datum
fct_vector_to_embedding(PG_FUNCTION_ARGS)
{
	PgvectorVector *v = (PgvectorVector *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	Embedding  *e;

	if (v->dim < 1 || v->dim > PGVECTOR_MAX_DIM || VARSIZE(v) != PGVECTOR_SIZE(v->dim))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("value is not a pgvector vector of the layout fct reads"),
				 errdetail("%zu bytes for %d dimensions; the layout is int16 dim, int16 unused, float4 x[dim].",
						   (size_t) VARSIZE(v), (int) v->dim),
				 errhint("Cast through text instead: v::text::embedding.")));
	/* checks dim against FCT_MAX_DIM (54000), zero model, no side part */
	e = embedding_alloc(v->dim, 0, 0);
	memcpy(EMBEDDING_VEC(e), v->x, sizeof(float4) * v->dim);
	/* pgvector stores only finite values, but a corrupt one is refused here */
	embedding_finalize(e);
	PG_RETURN_EMBEDDING_P(e);
}

PG_FUNCTION_INFO_V1(fct_embedding_to_vector);
Datum
fct_embedding_to_vector(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);
	PgvectorVector *v;

	if (e->dim > PGVECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector cannot have more than %d dimensions", PGVECTOR_MAX_DIM)));
	v = (PgvectorVector *) palloc0(PGVECTOR_SIZE(e->dim));
	SET_VARSIZE(v, PGVECTOR_SIZE(e->dim));
	v->dim = (int16) e->dim;
	v->unused = 0;
	memcpy(v->x, EMBEDDING_VEC(e), sizeof(float4) * e->dim);
	PG_RETURN_POINTER(v);
}
