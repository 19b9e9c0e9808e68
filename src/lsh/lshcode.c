/*
 * lshcode.c
 *	  Compact codes of the k-means family's entries: 8 bits per dimension of
 *	  the entry's residual from its list's centre, and the exact size of what
 *	  the code leaves out, so that a scan can bound a row's distance from the
 *	  code alone and compute the exact distance only for the rows that could
 *	  be returned.
 *
 * Why.  A query reads a few lists and used to compute the exact distance of
 * every entry in them: 512 bytes of vector per entry at 128 dimensions,
 * thousands of entries a query, most of the CPU time spent fetching those
 * bytes from memory and multiplying them.  An entry is now the code alone, a
 * quarter of the bytes, and the vector is read from the heap row only for
 * the few rows a query's executor re-ranks (about 15 of 5,500 per query on
 * Fashion-MNIST): a query reads a quarter of the index pages.
 *
 * The code.  A member x of list l has residual r = x - c (L2) or
 * r = x / |x| - c (inner product and cosine, whose centres are directions).
 * Dimension d is cut into 256 steps between lo[d] and lo[d] + 256 step[d],
 * learned at build from the sample's residuals (their 0.1st and 99.9th
 * percentiles: a few outliers must not widen every step); a value outside is
 * clamped.  The code stands for r^ = lo + step (code + 0.5), and the entry
 * keeps err = |r - r^| (rounded up), so every bound below holds whatever the
 * code is, clamped or not:
 *
 *	 l2:			|q - x| >= |q - c - r^| - err,
 *					|q - c - r^|^2 = |q - c|^2 - 2 <q, r^> + aux,	aux = 2 <c, r^> + |r^|^2
 *	 cosine:		1 - cos(q, x) >= 1 - <q', c> - <q', r^> - err	(q' = q / |q|)
 *					and, as 1 - cos(q, x) = |q' - x'|^2 / 2 (x' = x / |x| = c + r):
 *					1 - cos(q, x) >= (|q' - c - r^| - err)^2 / 2,	aux = 2 <c, r^> + |r^|^2
 *					(the larger; for a near neighbour, |q' - x'| < 1, the second,
 *					which takes err |q' - x'| where the first takes err)
 *	 inner product: -<q, x> >= -|x| (<q, c> + <q, r^> + |q| err),	aux = |x|
 *
 * and <q, r^> = sum_d q[d] (lo[d] + step[d] / 2) + sum_d (q[d] step[d]) code[d]:
 * one product of a per-query vector with the 8-bit code per entry.  Each
 * bound is loosened for float rounding (lshcodebound.c), so it is at most what the
 * operator computes: the scan returns rows by these bounds and the executor
 * re-ranks them by the operator on the heap rows (lshscan.c).
 *
 * Layout (format 4): an entry is the heap TID then LshCode (err, aux, the
 * code padded to 4 bytes): 144 bytes at 128 dimensions where the vector
 * alone is 512, so the index is smaller than the table.  Format 3 kept the
 * vector between the TID and the code; such an index is read by its vectors
 * (lsh_entry_code finds the code after it, for the inserts it still takes).
 * Indexes of page format 2 have no code (meta.code_bits = 0); the other
 * families and unlearned indexes have none either.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/itup.h"
#include "kernels/distance.h"
#include "lsh.h"
#include "utils/float.h"

/* Outliers clamped at each end when the steps are learned. */
#define LSH_CODE_CLIP	0.001
/*
 * Sample rows the steps are learned from: a sort per dimension of this many
 * residuals (the whole sample, 80,000 rows at a million, made the build half
 * again as costly at 200,000 rows already).
 */
#define LSH_CODE_SAMPLE	8192

/* Bytes of LshCode for dim dimensions. */
Size
lsh_code_size(int dim)
{
	return offsetof(LshCode, code) + TYPEALIGN(sizeof(float4), (Size) dim);
}

/* Largest entry a page holds (one line pointer with it). */
static inline Size
max_entry_size(void)
{
	return BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(LshPageOpaqueData)) -
		sizeof(ItemIdData);
}

/*
 * Bytes of one entry of this index: the TID, the vector when its entries hold
 * it, the code when it has codes.
 */
Size
lsh_entry_size(const LshMetaPageData *meta)
{
	Size		size = offsetof(LshEntry, x);

	if (lsh_entry_has_vector(meta))
		size += sizeof(float4) * (Size) Max(meta->dim, 1);
	if (meta->code_bits > 0)
		size += lsh_code_size(meta->dim);
	return size;
}

/* Whether a coded entry (TID and code, format 4) of dim dimensions fits on a page. */
static bool
code_fits(int dim)
{
	return MAXALIGN(offsetof(LshEntry, x) + lsh_code_size(dim)) <= max_entry_size();
}

/*
 * The residual of x in list l (see the file header), in float8; its norm
 * |x| in *norm.
 */
static void
residual(const LshState *state, int list, const float *x, float8 *r, float8 *norm)
{
	int			dim = state->meta.dim;
	const float *c = state->params + (Size) list * dim;
	float8		n = sqrt(kernel_norm_squared(x, dim));

	*norm = n;
	if (state->meta.metric == LSH_METRIC_L2)
		for (int d = 0; d < dim; d++)
			r[d] = (float8) x[d] - c[d];
	else
		for (int d = 0; d < dim; d++)
			r[d] = (n > 0 ? (float8) x[d] / n : 0.0) - c[d];
}

static int
cmp_float8(const void *a, const void *b)
{
	float8		x = *(const float8 *) a;
	float8		y = *(const float8 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Learn the steps from the build's sample (n rows, as the build passes them
 * to lsh_hash_batch) and append them to the state's parameters: lo[dim] then
 * step[dim] at the end, meta.code_bits = 8.  The caller's derived pointers
 * into params are renewed (lsh_kmeans_state_init).  Leaves the index without
 * codes when they do not fit on a page.
 */
void
lsh_code_learn(LshState *state, const float *sample, int n)
{
	LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	int		   *lists;
	float8	   *r;
	float8	   *col;
	float	   *lo;
	float	   *step;

	float	   *rows = NULL;

	meta->code_bits = 0;
	if (!meta->learned || meta->family != LSH_FAMILY_KMEANS || n <= 0 || !code_fits(dim))
		return;

	if (n > LSH_CODE_SAMPLE)
	{
		/* evenly spaced rows of the sample (itself random) */
		rows = palloc(sizeof(float) * (Size) LSH_CODE_SAMPLE * dim);
		for (int i = 0; i < LSH_CODE_SAMPLE; i++)
			memcpy(rows + (Size) i * dim,
				   sample + (Size) ((int64) i * n / LSH_CODE_SAMPLE) * dim, sizeof(float) * dim);
		sample = rows;
		n = LSH_CODE_SAMPLE;
	}
	lists = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i += LSH_HASH_CHUNK)
		lsh_hash_batch(state, sample + (Size) i * dim, Min(LSH_HASH_CHUNK, n - i), lists + i);
	r = palloc_extended(sizeof(float8) * (Size) n * dim, MCXT_ALLOC_HUGE);
	for (int i = 0; i < n; i++)
	{
		float8		norm;

		residual(state, lists[i], sample + (Size) i * dim, r + (Size) i * dim, &norm);
	}

	meta->nparams += 2 * dim;
	state->params = repalloc_huge(state->params, sizeof(float) * meta->nparams);
	lo = state->params + meta->nparams - 2 * dim;
	step = lo + dim;
	col = palloc(sizeof(float8) * n);
	for (int d = 0; d < dim; d++)
	{
		int			ilo = (int) floor(LSH_CODE_CLIP * (n - 1));
		int			ihi = (n - 1) - ilo;
		float8		w;

		for (int i = 0; i < n; i++)
			col[i] = r[(Size) i * dim + d];
		qsort(col, n, sizeof(float8), cmp_float8);
		w = col[ihi] - col[ilo];
		lo[d] = (float) col[ilo];
		/* a constant dimension still gets a step: its err is then exact */
		step[d] = (float) Max(w / 256.0, 1e-30);
	}
	pfree(col);
	pfree(r);
	pfree(lists);
	if (rows)
		pfree(rows);
	meta->code_bits = 8;
	meta->code_cosine_aux = meta->metric == LSH_METRIC_COSINE ? 1 : 0;
	/* params moved: the derived pointers into them with it */
	lsh_kmeans_state_init(state);
	lsh_code_state_init(state);
}

/* The state's pointers to the steps (lsh_get_state and the build). */
void
lsh_code_state_init(LshState *state)
{
	const LshMetaPageData *meta = &state->meta;

	if (meta->code_bits == 0)
	{
		state->code_lo = state->code_step = NULL;
		return;
	}
	state->code_lo = state->params + meta->nparams - 2 * meta->dim;
	state->code_step = state->code_lo + meta->dim;
}

/*
 * The code of x as a member of list (x is the entry's vector): one function
 * for the build, inserts and fct_lsh_verify, so they agree bit for bit.
 */
void
lsh_code_encode(const LshState *state, int list, const float *x, LshCode *out)
{
	int			dim = state->meta.dim;
	bool		l2 = state->meta.metric == LSH_METRIC_L2;
	const float *c = state->params + (Size) list * dim;
	const float *lo = state->code_lo;
	const float *step = state->code_step;
	float8		norm = sqrt(kernel_norm_squared(x, dim));
	float8		e2 = 0;
	float8		rn2 = 0;
	float8		cr = 0;
	float		err;

	memset(out->code, 0, TYPEALIGN(sizeof(float4), (Size) dim));
	for (int d = 0; d < dim; d++)
	{
		/* residual() without an array: no allocation per entry */
		float8		r = (l2 ? (float8) x[d] : norm > 0 ? (float8) x[d] / norm : 0.0) - c[d];
		float8		t = floor((r - lo[d]) / step[d]);
		int			k = t < 0 ? 0 : t > 255 ? 255 : (int) t;
		float8		rh = (float8) lo[d] + (float8) step[d] * (k + 0.5);

		out->code[d] = (uint8) k;
		e2 += (r - rh) * (r - rh);
		rn2 += rh * rh;
		cr += (float8) c[d] * rh;
	}
	/* err rounded up: a bound built on it stays a bound */
	err = (float) sqrt(e2);
	if ((float8) err < sqrt(e2))
		err = nextafterf(err, FLT_MAX);
	out->err = err;
	out->aux = l2 || state->meta.code_cosine_aux ? (float) (2.0 * cr + rn2) :
		state->meta.metric == LSH_METRIC_IP ? (float) norm : 0;
}

/* The code part of an entry of an index with codes. */
LshCode *
lsh_entry_code(const LshMetaPageData *meta, const LshEntry *entry)
{
	return (LshCode *) ((char *) entry->x +
						(lsh_entry_has_vector(meta) ? sizeof(float4) * (Size) meta->dim : 0));
}

/*
 * Fill an entry of this index (lsh_entry_size bytes) for the row tid with
 * vector x, a member of list: the one function of the build, inserts and
 * fct_lsh_verify's check of the codes.
 */
void
lsh_make_entry(const LshState *state, int list, ItemPointer tid, const float *x,
			   LshEntry *entry)
{
	const LshMetaPageData *meta = &state->meta;

	entry->heap_tid = *tid;
	entry->unused = 0;
	if (lsh_entry_has_vector(meta))
		memcpy(entry->x, x, sizeof(float) * meta->dim);
	if (meta->code_bits > 0)
		lsh_code_encode(state, list, x, lsh_entry_code(meta, entry));
}
