/*
 * embedding.c
 *	  The embedding type: text and binary I/O, typmod, casts, accessors,
 *	  equality, ordering and hashing.  The layout is described in embedding.h.
 *
 * Text literal
 * ------------
 *
 *	 literal := [ model_name ':' ] '[' v1, v2, ... ']' [ '|' '[' s1, s2, ... ']' ]
 *
 * Whitespace is allowed around every token.  The vector part reads exactly like
 * a pgvector literal ('[1,2,3]'), so clients that speak pgvector work unchanged.
 * The optional model name matches ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ (the rule
 * the model registry enforces) and must name a registered model whose
 * dimension and side dimension the value has.  '|[...]' is the side
 * information; '|[]' is the same as no side part.  Numbers are read with
 * strtof, i.e. as float4 input reads them.
 *
 * Output writes the model prefix only when the value names a model, the side
 * part only when there is side information, and every float as the shortest
 * text that reads back to the same float4 (independently of
 * extra_float_digits), so output followed by input gives the identical value.
 *
 * Errors: a malformed literal is 22P02 (invalid_text_representation); a number
 * that is NaN, infinite, or outside the float4 range (overflow, or underflow to
 * zero) is 22003 (numeric_value_out_of_range) wherever it comes from (text,
 * binary, arrays, arithmetic); more than FCT_MAX_DIM vector or
 * FCT_MAX_SIDE_DIM side values is 54000 (program_limit_exceeded); a dimension
 * that does not match the typmod is 22000 (data_exception), as is a mismatch
 * with the named model (model_check_dims); an unknown model is 42704, except
 * while a dump is restored (check_function_bodies off: see resolve_model).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/shortest_dec.h"
#include "type/embedding.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "model/model.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

/* Binary format version written by embedding_send (see embedding_recv). */
#define EMBEDDING_BINARY_VERSION	1

/* The rule for model names, as the registry enforces it (for messages). */
#define MODEL_NAME_RULE \
	"A model name is 1 to 63 letters, digits, \"_\", \".\" or \"-\", starting with a letter or digit."

static void nonfinite_error(float4 v) pg_attribute_noreturn();
static void syntax_error(const char *lit, const char *detail) pg_attribute_noreturn();
static void binary_error(const char *msg) pg_attribute_noreturn();

/* ----------------------------------------------------------------
 * Construction helpers (declared in embedding.h)
 * ----------------------------------------------------------------
 */

static void
check_dims_limits(int dim, int side_dim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("embedding must have at least 1 dimension")));
	if (dim > FCT_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("embedding cannot have more than %d dimensions", FCT_MAX_DIM),
				 errdetail("The value has %d dimensions.", dim)));
	if (side_dim < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("embedding side dimension cannot be negative")));
	if (side_dim > FCT_MAX_SIDE_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("embedding cannot have more than %d side-information dimensions",
						FCT_MAX_SIDE_DIM),
				 errdetail("The value has %d side-information dimensions.", side_dim)));
}

/*
 * Write the header of a value whose storage (EMBEDDING_SIZE(dim, side_dim)
 * bytes, zeroed) the caller owns: embedding_alloc's, or a slot of an array
 * built in place (fct_upgrade_batch).
 */
void
embedding_init_header(Embedding *e, int dim, int side_dim, int32 model_id)
{
	SET_VARSIZE(e, EMBEDDING_SIZE(dim, side_dim));
	e->version = FCT_EMBEDDING_VERSION;
	e->flags = 0;
	e->dim = (uint16) dim;
	e->side_dim = (uint16) side_dim;
	e->unused = 0;
	e->model_id = model_id;
}

Embedding *
embedding_alloc(int dim, int side_dim, int32 model_id)
{
	Embedding  *e;

	check_dims_limits(dim, side_dim);
	e = (Embedding *) palloc0(EMBEDDING_SIZE(dim, side_dim));
	embedding_init_header(e, dim, side_dim, model_id);
	return e;
}

static void
nonfinite_error(float4 v)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("%s not allowed in embedding", isnan(v) ? "NaN" : "infinity"),
			 errhint("Every value of an embedding must be a finite real number.")));
}

void
embedding_finalize(Embedding *e)
{
	int			n = e->dim + e->side_dim;
	float4	   *x = e->x;

	for (int i = 0; i < n; i++)
	{
		if (unlikely(!isfinite(x[i])))
			nonfinite_error(x[i]);
		/* -0 == 0 is true, so this also stores every -0 as +0 */
		if (x[i] == 0.0f)
			x[i] = 0.0f;
	}
}

void
embedding_check_same_dim(const Embedding *a, const Embedding *b)
{
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different embedding dimensions %d and %d", a->dim, b->dim)));
}

/* Errors unless e has the dimension that typmod asks for (-1: any). */
static void
check_typmod(const Embedding *e, int32 typmod)
{
	if (typmod >= 0 && e->dim != typmod)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", typmod, e->dim),
				 errhint("The column or cast is declared embedding(%d).", typmod)));
}

/*
 * Resolve a model name (NULL: none) and check the value's dimensions.
 *
 * Restore: the type's input (text and binary, "input" true) accepts a model
 * that is not registered when check_function_bodies is off, with the id its
 * name will have (model_id_for_name), and without the dimension checks it
 * cannot make.  pg_dump and pg_restore set check_function_bodies = false at
 * the start of every script and of every parallel worker's session, as
 * PostgreSQL's own convention for "objects are being restored: what they
 * refer to may not be there yet"; and they load table data in
 * schema-then-name order (or in parallel), so a user table may come before
 * the rows of fct_models that its values name.  Such a value was checked when
 * it was first written; once fct_models is restored, its id names the same
 * model, because ids depend on names only.  In normal use
 * (check_function_bodies on, the default) an unknown model stays an error.
 * Functions such as fct_embedding() never take this path.
 */
static int32
resolve_model(const char *name, int dim, int side_dim, bool input)
{
	const FctModel *model;

	if (name == NULL)
		return FCT_NO_MODEL;
	if (input && !check_function_bodies)
	{
		model = model_lookup_name(name);
		if (model == NULL)
			return model_id_for_name(name, strlen(name));
	}
	else
		model = model_by_name(name);
	model_check_dims(model, dim, side_dim);
	return model->id;
}

/* True when name matches ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$. */
static bool
model_name_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '_' || c == '.' || c == '-');
}

static bool
valid_model_name(const char *name, int len)
{
	if (len < 1 || len > FCT_MODEL_NAME_MAX)
		return false;
	for (int i = 0; i < len; i++)
		if (!model_name_char(name[i], i == 0))
			return false;
	return true;
}

/* ----------------------------------------------------------------
 * Text input and output
 * ----------------------------------------------------------------
 */

typedef struct FloatBuf
{
	float4	   *v;
	int			n;
	int			cap;
} FloatBuf;

static inline bool
lit_isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static inline char *
skip_space(char *p)
{
	while (lit_isspace(*p))
		p++;
	return p;
}

static void
syntax_error(const char *lit, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type embedding: \"%s\"", lit),
			 errdetail("%s", detail),
			 errhint("An embedding literal reads [ model: ] [v1,v2,...] [ |[s1,s2,...] ].")));
}

/*
 * Read one float at p, as float4in does: strtof, with an error for values
 * outside the float4 range (overflow, or a nonzero number that underflows to
 * zero) and for NaN and infinity.
 */
static char *
read_float(char *p, const char *lit, float4 *out)
{
	char	   *end;
	float4		v;

	errno = 0;
	v = strtof(p, &end);
	if (end == p)
		syntax_error(lit, "Expected a number.");
	if (errno == ERANGE && (v == 0.0f || isinf(v)))
	{
		int			len = end - p;

		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("\"%.*s\" is out of range for type embedding", len, p),
				 errhint("Every value of an embedding must be a finite float4.")));
	}
	if (!isfinite(v))
		nonfinite_error(v);
	*out = v;
	return end;
}

/*
 * Read '[' num, num, ... ']' at p (after optional whitespace) into buf: the
 * vector part, or the side part when side (which alone may be empty).
 * Returns the position after ']'.
 */
static char *
read_list(char *p, const char *lit, FloatBuf *buf, bool side)
{
	int			limit = side ? FCT_MAX_SIDE_DIM : FCT_MAX_DIM;
	const char *what = side ? "side information" : "vector";

	p = skip_space(p);
	if (*p != '[')
		syntax_error(lit, psprintf("Expected \"[\" at the start of the %s.", what));
	p = skip_space(p + 1);
	if (*p == ']')
	{
		if (!side)
			syntax_error(lit, psprintf("The %s must have at least one value.", what));
		return p + 1;
	}
	for (;;)
	{
		float4		v;

		p = read_float(p, lit, &v);
		if (buf->n >= limit)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 side ?
					 errmsg("embedding cannot have more than %d side-information dimensions", limit) :
					 errmsg("embedding cannot have more than %d dimensions", limit),
					 errdetail("The literal has more than %d values in its %s.", limit, what)));
		if (buf->n == buf->cap)
		{
			buf->cap = Min(buf->cap * 2, limit);
			buf->v = repalloc(buf->v, sizeof(float4) * buf->cap);
		}
		buf->v[buf->n++] = v;

		p = skip_space(p);
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
			return p + 1;
		if (*p == '\0')
			syntax_error(lit, psprintf("Unexpected end of input in the %s.", what));
		syntax_error(lit, psprintf("Expected \",\" or \"]\" after a number in the %s.", what));
	}
}

static Embedding *
embedding_parse(char *lit, int32 typmod)
{
	char	   *p = skip_space(lit);
	char	   *model_name = NULL;
	FloatBuf	vec;
	FloatBuf	side;
	Embedding  *e;

	/* optional model prefix */
	if (*p != '[')
	{
		char	   *start = p;
		int			len;

		while (model_name_char(*p, false))
			p++;
		len = p - start;
		if (len == 0)
			syntax_error(lit, "Expected \"[\" or a model name.");
		if (!valid_model_name(start, len))
			syntax_error(lit, MODEL_NAME_RULE);
		p = skip_space(p);
		if (*p != ':')
			syntax_error(lit, "Expected \":\" after the model name.");
		model_name = pnstrdup(start, len);
		p++;
	}

	vec.n = 0;
	vec.cap = 16;
	vec.v = palloc(sizeof(float4) * vec.cap);
	p = read_list(p, lit, &vec, false);

	side.n = 0;
	side.cap = 16;
	side.v = palloc(sizeof(float4) * side.cap);
	p = skip_space(p);
	if (*p == '|')
		p = read_list(p + 1, lit, &side, true);

	p = skip_space(p);
	if (*p != '\0')
		syntax_error(lit, "Unexpected characters after the end of the embedding.");

	e = embedding_alloc(vec.n, side.n, FCT_NO_MODEL);
	memcpy(EMBEDDING_VEC(e), vec.v, sizeof(float4) * vec.n);
	if (side.n > 0)
		memcpy(EMBEDDING_SIDE(e), side.v, sizeof(float4) * side.n);
	pfree(vec.v);
	pfree(side.v);
	embedding_finalize(e);
	check_typmod(e, typmod);
	e->model_id = resolve_model(model_name, e->dim, e->side_dim, true);
	return e;
}

PG_FUNCTION_INFO_V1(embedding_in);
Datum
embedding_in(PG_FUNCTION_ARGS)
{
	char	   *lit = PG_GETARG_CSTRING(0);
	int32		typmod = PG_NARGS() > 2 ? PG_GETARG_INT32(2) : -1;

	PG_RETURN_EMBEDDING_P(embedding_parse(lit, typmod));
}

static void
append_list(StringInfo s, const float4 *x, int n)
{
	appendStringInfoChar(s, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(s, ',');
		/* the buffer was sized in embedding_out; bufn writes no NUL */
		s->len += float_to_shortest_decimal_bufn(x[i], s->data + s->len);
	}
	appendStringInfoChar(s, ']');
	s->data[s->len] = '\0';
}

PG_FUNCTION_INFO_V1(embedding_out);
Datum
embedding_out(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);
	StringInfoData s;

	initStringInfo(&s);
	/* model name, ':', the lists: each float at most FLOAT_SHORTEST_DECIMAL_LEN - 1 chars plus ',' */
	enlargeStringInfo(&s, FCT_MODEL_NAME_MAX + 8 +
					  (e->dim + e->side_dim) * FLOAT_SHORTEST_DECIMAL_LEN);
	if (e->model_id != FCT_NO_MODEL)
	{
		appendStringInfoString(&s, model_by_id(e->model_id)->name);
		appendStringInfoChar(&s, ':');
	}
	append_list(&s, EMBEDDING_VEC(e), e->dim);
	if (e->side_dim > 0)
	{
		appendStringInfoChar(&s, '|');
		append_list(&s, EMBEDDING_SIDE(e), e->side_dim);
	}
	PG_RETURN_CSTRING(s.data);
}

/* ----------------------------------------------------------------
 * Typmod: embedding(n), n = vector dimension
 * ----------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(embedding_typmod_in);
Datum
embedding_typmod_in(PG_FUNCTION_ARGS)
{
	ArrayType  *ta = PG_GETARG_ARRAYTYPE_P(0);
	int32	   *tl;
	int			n;

	tl = ArrayGetIntegerTypmods(ta, &n);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid type modifier"),
				 errdetail("embedding takes one modifier, the vector dimension.")));
	if (tl[0] < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type embedding must be at least 1")));
	if (tl[0] > FCT_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type embedding cannot exceed %d", FCT_MAX_DIM)));
	PG_RETURN_INT32(tl[0]);
}

PG_FUNCTION_INFO_V1(embedding_typmod_out);
Datum
embedding_typmod_out(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(0);

	if (typmod < 0)
		PG_RETURN_CSTRING(pstrdup(""));
	PG_RETURN_CSTRING(psprintf("(%d)", typmod));
}

/* The length coercion cast embedding(embedding, int4, bool). */
PG_FUNCTION_INFO_V1(embedding_coerce);
Datum
embedding_coerce(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);

	check_typmod(e, PG_GETARG_INT32(1));
	PG_RETURN_EMBEDDING_P(e);
}

/* ----------------------------------------------------------------
 * Binary I/O
 *
 *	 uint8   version       EMBEDDING_BINARY_VERSION
 *	 int16   name length   0..63, 0 = no model
 *	 bytes   model name
 *	 uint16  dim
 *	 uint16  side_dim
 *	 float4  dim + side_dim values (network byte order)
 *
 * Model ids are local to a database, so the name travels instead.
 * ----------------------------------------------------------------
 */

static void
binary_error(const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid binary data for type embedding"),
			 errdetail("%s", msg)));
}

PG_FUNCTION_INFO_V1(embedding_send);
Datum
embedding_send(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);
	StringInfoData buf;
	int			n = e->dim + e->side_dim;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, EMBEDDING_BINARY_VERSION);
	if (e->model_id != FCT_NO_MODEL)
	{
		const char *name = model_by_id(e->model_id)->name;
		int			len = strlen(name);

		pq_sendint16(&buf, (uint16) len);
		pq_sendbytes(&buf, name, len);
	}
	else
		pq_sendint16(&buf, 0);
	pq_sendint16(&buf, e->dim);
	pq_sendint16(&buf, e->side_dim);
	for (int i = 0; i < n; i++)
		pq_sendfloat4(&buf, e->x[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(embedding_recv);
Datum
embedding_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_NARGS() > 2 ? PG_GETARG_INT32(2) : -1;
	int			version;
	int			namelen;
	char	   *name = NULL;
	int			dim;
	int			side_dim;
	Embedding  *e;

	version = pq_getmsgbyte(buf);
	if (version != EMBEDDING_BINARY_VERSION)
		binary_error(psprintf("Unknown format version %d (this build reads version %d).",
							  version, EMBEDDING_BINARY_VERSION));
	namelen = (int16) pq_getmsgint(buf, 2);
	if (namelen < 0 || namelen > FCT_MODEL_NAME_MAX)
		binary_error(psprintf("Model name length %d is out of range 0..%d.",
							  namelen, FCT_MODEL_NAME_MAX));
	if (namelen > 0)
	{
		const char *raw = pq_getmsgbytes(buf, namelen);

		if (!valid_model_name(raw, namelen))
			binary_error("The model name is not a valid model name.");
		name = pnstrdup(raw, namelen);
	}
	dim = (int) pq_getmsgint(buf, 2);
	side_dim = (int) pq_getmsgint(buf, 2);
	if (dim < 1)
		binary_error("The vector dimension is 0.");
	/* embedding_alloc rejects dimensions above the limits */
	e = embedding_alloc(dim, side_dim, FCT_NO_MODEL);
	/*
	 * A message cut short is a protocol violation (08P01), as everywhere else
	 * in this function (pq_getmsgint, pq_getmsgbytes) and in PostgreSQL's own
	 * receive functions: checked here only to say what is missing.
	 */
	if (buf->len - buf->cursor < (int) sizeof(float4) * (dim + side_dim))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("insufficient data left in message"),
				 errdetail("The value announces %d floats; %d bytes are left for them.",
						   dim + side_dim, buf->len - buf->cursor)));
	for (int i = 0; i < dim + side_dim; i++)
		e->x[i] = pq_getmsgfloat4(buf);
	embedding_finalize(e);
	check_typmod(e, typmod);
	e->model_id = resolve_model(name, dim, side_dim, true);
	PG_RETURN_EMBEDDING_P(e);
}

/* ----------------------------------------------------------------
 * Casts between arrays and embeddings
 * ----------------------------------------------------------------
 */

/* Common checks for the array -> embedding casts; returns the element count. */
static int
check_cast_array(ArrayType *a)
{
	int			n;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("array must be one-dimensional to become an embedding"),
				 errdetail("The array has %d dimensions.", ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain nulls to become an embedding")));
	n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("embedding must have at least 1 dimension"),
				 errdetail("The array is empty.")));
	return n;
}

static float4
float8_to_float4(float8 d)
{
	float4		f = (float4) d;

	if (unlikely(isinf(f)) && !isinf(d))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("value %g is out of range for type embedding", d)));
	if (unlikely(f == 0.0f) && d != 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("value %g is out of range for type embedding", d)));
	return f;
}

/*
 * Fill dst with the n elements of array a (one-dimensional, no nulls) of
 * element type float4, float8, int4 or numeric.
 */
static void
array_to_floats(ArrayType *a, float4 *dst, int n)
{
	Oid			elemtype = ARR_ELEMTYPE(a);

	switch (elemtype)
	{
		case FLOAT4OID:
			memcpy(dst, ARR_DATA_PTR(a), sizeof(float4) * n);
			break;
		case FLOAT8OID:
			{
				const float8 *src = (const float8 *) ARR_DATA_PTR(a);

				for (int i = 0; i < n; i++)
					dst[i] = float8_to_float4(src[i]);
			}
			break;
		case INT4OID:
			{
				const int32 *src = (const int32 *) ARR_DATA_PTR(a);

				for (int i = 0; i < n; i++)
					dst[i] = (float4) src[i];
			}
			break;
		case NUMERICOID:
			{
				Datum	   *elems;
				int			nelems;

				deconstruct_array(a, NUMERICOID, -1, false, TYPALIGN_INT,
								  &elems, NULL, &nelems);
				Assert(nelems == n);
				/* numeric_float4 rounds once, as float4 input does */
				for (int i = 0; i < n; i++)
					dst[i] = DatumGetFloat4(DirectFunctionCall1(numeric_float4, elems[i]));
			}
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot make an embedding from an array of %s",
							format_type_be(elemtype))));
	}
}

static Embedding *
embedding_from_array(ArrayType *a)
{
	int			n = check_cast_array(a);
	Embedding  *e = embedding_alloc(n, 0, FCT_NO_MODEL);

	array_to_floats(a, EMBEDDING_VEC(e), n);
	embedding_finalize(e);
	return e;
}

/* real[], double precision[], integer[], numeric[] -> embedding(typmod) */
PG_FUNCTION_INFO_V1(embedding_from_array_cast);
Datum
embedding_from_array_cast(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	Embedding  *e = embedding_from_array(a);

	check_typmod(e, PG_GETARG_INT32(1));
	PG_RETURN_EMBEDDING_P(e);
}

static ArrayType *
floats_to_array(const float4 *x, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	ArrayType  *a;

	for (int i = 0; i < n; i++)
		d[i] = Float4GetDatum(x[i]);
	a = construct_array(d, n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
	pfree(d);
	return a;
}

/* embedding -> real[] (the cast) and fct_vector(e) */
PG_FUNCTION_INFO_V1(embedding_vector);
Datum
embedding_vector(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);

	PG_RETURN_ARRAYTYPE_P(floats_to_array(EMBEDDING_VEC(e), e->dim));
}

/* ----------------------------------------------------------------
 * Constructor and accessors
 * ----------------------------------------------------------------
 */

/* fct_embedding(vec real[], side real[] DEFAULT NULL, model text DEFAULT NULL) */
PG_FUNCTION_INFO_V1(embedding_make);
Datum
embedding_make(PG_FUNCTION_ARGS)
{
	ArrayType  *vec;
	ArrayType  *side = NULL;
	char	   *name = NULL;
	int			dim;
	int			side_dim = 0;
	Embedding  *e;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	vec = PG_GETARG_ARRAYTYPE_P(0);
	dim = check_cast_array(vec);
	if (!PG_ARGISNULL(1))
	{
		side = PG_GETARG_ARRAYTYPE_P(1);
		/* an empty side array means "no side information" */
		if (ARR_NDIM(side) == 0)
			side = NULL;
		else
			side_dim = check_cast_array(side);
	}
	if (!PG_ARGISNULL(2))
	{
		name = text_to_cstring(PG_GETARG_TEXT_PP(2));
		if (!valid_model_name(name, strlen(name)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid model name \"%s\"", name),
					 errdetail(MODEL_NAME_RULE)));
	}

	e = embedding_alloc(dim, side_dim, FCT_NO_MODEL);
	array_to_floats(vec, EMBEDDING_VEC(e), dim);
	if (side != NULL)
		array_to_floats(side, EMBEDDING_SIDE(e), side_dim);
	embedding_finalize(e);
	e->model_id = resolve_model(name, dim, side_dim, false);
	PG_RETURN_EMBEDDING_P(e);
}

PG_FUNCTION_INFO_V1(embedding_model);
Datum
embedding_model(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);

	if (e->model_id == FCT_NO_MODEL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(model_by_id(e->model_id)->name));
}

PG_FUNCTION_INFO_V1(embedding_side);
Datum
embedding_side(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);

	PG_RETURN_ARRAYTYPE_P(floats_to_array(EMBEDDING_SIDE(e), e->side_dim));
}

PG_FUNCTION_INFO_V1(embedding_dims);
Datum
embedding_dims(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);

	PG_RETURN_INT32(e->dim);
}

PG_FUNCTION_INFO_V1(embedding_side_dims);
Datum
embedding_side_dims(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);

	PG_RETURN_INT32(e->side_dim);
}

static float8
vector_norm(const Embedding *e)
{
	const float4 *x = EMBEDDING_VEC(e);
	float8		sum = 0.0;

	for (int i = 0; i < e->dim; i++)
		sum += (float8) x[i] * (float8) x[i];
	return sqrt(sum);
}

PG_FUNCTION_INFO_V1(embedding_norm);
Datum
embedding_norm(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);

	PG_RETURN_FLOAT8(vector_norm(e));
}

/*
 * fct_normalize(e): the vector part scaled to unit L2 norm; side information
 * and model are kept.  A zero vector has no direction: it is returned
 * unchanged (all zeros), as pgvector's l2_normalize does, rather than NaN.
 */
PG_FUNCTION_INFO_V1(embedding_normalize);
Datum
embedding_normalize(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);
	Embedding  *r = embedding_alloc(e->dim, e->side_dim, e->model_id);
	float8		norm = vector_norm(e);

	memcpy(r->x, e->x, sizeof(float4) * (e->dim + e->side_dim));
	if (norm > 0.0)
	{
		float4	   *x = EMBEDDING_VEC(r);

		for (int i = 0; i < r->dim; i++)
			x[i] = (float4) ((float8) x[i] / norm);
	}
	embedding_finalize(r);
	PG_RETURN_EMBEDDING_P(r);
}

/* ----------------------------------------------------------------
 * Equality, ordering, hashing
 *
 * Order: model_id, dim, side_dim, then the vector values, then the side
 * values, each compared as floats.  No stored value is NaN and every -0 is
 * stored as +0 (embedding_finalize), so float comparison is a total order and
 * two values are equal exactly when their bytes from dim to the end are equal
 * (version, flags and unused are constants in version 1).  Hashing those
 * bytes is therefore consistent with equality.
 * ----------------------------------------------------------------
 */

static int
embedding_cmp_internal(const Embedding *a, const Embedding *b)
{
	int			n;

	if (a->model_id != b->model_id)
		return a->model_id < b->model_id ? -1 : 1;
	if (a->dim != b->dim)
		return a->dim < b->dim ? -1 : 1;
	if (a->side_dim != b->side_dim)
		return a->side_dim < b->side_dim ? -1 : 1;
	n = a->dim + a->side_dim;
	for (int i = 0; i < n; i++)
	{
		if (a->x[i] < b->x[i])
			return -1;
		if (a->x[i] > b->x[i])
			return 1;
	}
	return 0;
}

#define EMBEDDING_CMP_FUNC(fname, expr) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	Embedding  *a = PG_GETARG_EMBEDDING_P(0); \
	Embedding  *b = PG_GETARG_EMBEDDING_P(1); \
	int			c = embedding_cmp_internal(a, b); \
\
	PG_FREE_IF_COPY(a, 0); \
	PG_FREE_IF_COPY(b, 1); \
	expr; \
}

EMBEDDING_CMP_FUNC(embedding_cmp, PG_RETURN_INT32(c))
EMBEDDING_CMP_FUNC(embedding_eq, PG_RETURN_BOOL(c == 0))
EMBEDDING_CMP_FUNC(embedding_ne, PG_RETURN_BOOL(c != 0))
EMBEDDING_CMP_FUNC(embedding_lt, PG_RETURN_BOOL(c < 0))
EMBEDDING_CMP_FUNC(embedding_le, PG_RETURN_BOOL(c <= 0))
EMBEDDING_CMP_FUNC(embedding_gt, PG_RETURN_BOOL(c > 0))
EMBEDDING_CMP_FUNC(embedding_ge, PG_RETURN_BOOL(c >= 0))

/* The bytes that define a value: dim, side_dim, unused, model_id, floats. */
#define HASHED_START(e)	((const unsigned char *) &(e)->dim)
#define HASHED_LEN(e)	((int) (VARSIZE(e) - offsetof(Embedding, dim)))

PG_FUNCTION_INFO_V1(embedding_hash);
Datum
embedding_hash(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);
	Datum		h = hash_any(HASHED_START(e), HASHED_LEN(e));

	PG_FREE_IF_COPY(e, 0);
	return h;
}

PG_FUNCTION_INFO_V1(embedding_hash_extended);
Datum
embedding_hash_extended(PG_FUNCTION_ARGS)
{
	Embedding  *e = PG_GETARG_EMBEDDING_P(0);
	Datum		h = hash_any_extended(HASHED_START(e), HASHED_LEN(e),
									  PG_GETARG_INT64(1));

	PG_FREE_IF_COPY(e, 0);
	return h;
}
