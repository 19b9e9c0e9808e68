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
 * bound is loosened for float rounding (below), so it is at most what the
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

/* ----------------------------------------------------------------
 * The product of a query's integer weights with a code: sum_d wi[d] code[d],
 * exact in int32 (code_weights_init bounds the weights for that), so the
 * AVX2 version and the plain loop give the same value.  gcc turns a vector
 * widening of bytes into one scalar conversion per byte, so the AVX2 version
 * is written with intrinsics (16 bytes -> 16 int16, multiplied and summed in
 * pairs into 8 int32 per step) and picked at run time.
 * ----------------------------------------------------------------
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LSH_CODE_AVX2 1

static bool
have_avx2(void)
{
	static int	avx2 = -1;

	if (unlikely(avx2 < 0))
		avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
	return avx2 == 1;
}

__attribute__((target("avx2")))
static int32
code_dot_int_avx2(const int16 *w, const uint8 *code, int dim)
{
	__m256i		s0 = _mm256_setzero_si256();
	__m256i		s1 = _mm256_setzero_si256();
	__m128i		h;
	int32		s;
	int			d = 0;

	for (; d + 32 <= dim; d += 32)
	{
		__m256i		b = _mm256_loadu_si256((const __m256i *) (code + d));
		__m256i		c0 = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(b));
		__m256i		c1 = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(b, 1));

		s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, _mm256_loadu_si256((const __m256i *) (w + d))));
		s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(c1, _mm256_loadu_si256((const __m256i *) (w + d + 16))));
	}
	for (; d + 16 <= dim; d += 16)
	{
		__m256i		c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *) (code + d)));

		s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, _mm256_loadu_si256((const __m256i *) (w + d))));
	}
	s0 = _mm256_add_epi32(s0, s1);
	h = _mm_add_epi32(_mm256_castsi256_si128(s0), _mm256_extracti128_si256(s0, 1));
	h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
	h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
	s = _mm_cvtsi128_si32(h);
	for (; d < dim; d++)
		s += (int32) w[d] * code[d];
	return s;
}
#endif

static int32
code_dot_int_plain(const int16 *w, const uint8 *code, int dim)
{
	int32		s = 0;

	for (int d = 0; d < dim; d++)
		s += (int32) w[d] * code[d];
	return s;
}

/* ----------------------------------------------------------------
 * The per-query side: lower bounds on the operator's value
 *
 * A scan returns a coded row with lsh_code_bounds' value and the executor
 * recomputes the operator on the heap row (lshscan.c).  PostgreSQL stops
 * the query ("index returned tuples in wrong order") if the value it
 * computes is below the index's, so the bound must be at most the
 * operator's float8 result bit for bit, on every path, and not merely at
 * most the exact real distance.  Every float quantity here and in the
 * operator (src/kernels/distance.c: float4 lanes, float8 at the end) is a
 * sum of at most dim + a few rounded products, whose first-order error is at
 * most dim u times the sum of the terms' magnitudes (u = 2^-24, whatever the
 * order of the additions); rel = 2 (dim + 16) u covers each such sum with a
 * factor two to spare, and is charged to every magnitude that enters a
 * bound: the operator's own (|x| |q| for inner product, the two norms and the
 * dot product of cosine, the squared distance of L2), <q, c>, <q, r^> (its
 * terms are at most qrscale), |c|, |r^| <= rmax + err, and the stored
 * rounding of aux and err.  Products that underflow lose at most FLT_MIN
 * each: an absolute allowance.  A bound that overflows or is NaN becomes
 * -infinity (still a bound).  test/t/052_lsh_rerank_bounds.pl runs queries at
 * zero distance, near duplicates, cosine near 0 and 2 and large norms through
 * the executor's check.
 * ----------------------------------------------------------------
 */

/*
 * The weights as integers, for an exact integer product with the codes
 * (code_dot_int): wi[d] = w[d] / wscale rounded, with |wi| small enough that
 * no sum of dim products of a code overflows int32 (15 bits at 128
 * dimensions).  What the rounding leaves out is at most
 * 255 sum_d |w[d] - wscale wi[d]| for any code: added to wconst, so that
 * wconst + wscale code_dot_int(wi, code) is at least wconst + sum_d w[d] code[d],
 * the value the bounds take for <q~, r^>; they all fall as it grows, so they
 * stay bounds.
 */
static void
code_weights_init(LshCodeQuery *cq)
{
	int			dim = cq->dim;
	float8		wmax = 0;
	float8		limit = Min(32767.0, floor((float8) PG_INT32_MAX / (255.0 * Max(dim, 1))));
	float8		slack = 0;

	cq->wi = palloc0(sizeof(int16) * TYPEALIGN(16, (Size) dim));
	for (int d = 0; d < dim; d++)
		wmax = Max(wmax, fabs((float8) cq->w[d]));
	cq->wscale = wmax > 0 && isfinite(wmax) ? wmax / limit : 0;
	for (int d = 0; d < dim; d++)
	{
		float8		v = cq->wscale > 0 ? rint((float8) cq->w[d] / cq->wscale) : 0;

		v = Max(-limit, Min(limit, v));
		cq->wi[d] = (int16) v;
		slack += fabs((float8) cq->w[d] - cq->wscale * v);
	}
	/* the float8 arithmetic of the slack itself, with room to spare */
	cq->wconst += 255.0 * slack * (1.0 + 1e-9) + 255.0 * dim * cq->wscale * 1e-12;
}

/* Once per query: the code's weights and the allowances. */
void
lsh_code_bounds_init(LshCodeQuery *cq, const LshState *state, const float *q)
{
	int			dim = state->meta.dim;
	const float *qt = q;
	float8		k = 0;

	cq->metric = (LshMetric) state->meta.metric;
	cq->cosine_aux = cq->metric == LSH_METRIC_COSINE && state->meta.code_cosine_aux;
	cq->dim = dim;
	cq->q = q;
	cq->qn = sqrt(kernel_norm_squared(q, dim));
	cq->rel = 2.0 * (dim + 16) * ldexp(1.0, -24);
	if (cq->metric == LSH_METRIC_COSINE)
	{
		/* cosine: the code scores q' = q / |q| (a zero query: 0) */
		float	   *t = palloc(sizeof(float) * dim);

		for (int d = 0; d < dim; d++)
			t[d] = cq->qn > 0 ? (float) (q[d] / cq->qn) : 0;
		qt = t;
		/* ab / sqrt(aa bb) with aa, bb >= 1e-30 (or float8): underflow of ab */
		cq->abs = (dim + 16) * (float8) FLT_MIN / 1e-30;
	}
	else
		cq->abs = 4.0 * (dim + 16) * (float8) FLT_MIN;

	/*
	 * w[d] = q~[d] step[d] and the constant sum_d q~[d] (lo[d] + step[d] / 2):
	 * then <q~, r^> = constant + sum_d w[d] code[d] (code_weights_init: as integers).
	 */
	cq->w = palloc(sizeof(float) * dim);
	cq->qrscale = 0;
	for (int d = 0; d < dim; d++)
	{
		cq->w[d] = qt[d] * state->code_step[d];
		k += (float8) qt[d] * ((float8) state->code_lo[d] + 0.5 * state->code_step[d]);
		cq->qrscale += fabs((float8) qt[d]) *
			(fabs((float8) state->code_lo[d]) +
			 fabs((float8) state->code_lo[d] + 256.0 * state->code_step[d]));
	}
	cq->wconst = k;
	code_weights_init(cq);
}

/*
 * Once per list read: qc is <q, c> as lsh_list_bounds computed it (float,
 * kernel_matmul's order).
 */
void
lsh_code_list(LshCodeQuery *cq, const LshState *state, int list,
			  const LshListItem *item, float8 qc)
{
	const float *c = state->params + (Size) list * cq->dim;

	cq->cn = sqrt(state->center_norm2[list]);
	cq->rm = Max((float8) item->rmax, 0.0);
	switch (cq->metric)
	{
		case LSH_METRIC_L2:
			cq->k1 = kernel_l2_squared(cq->q, c, cq->dim);
			break;
		case LSH_METRIC_COSINE:
			cq->k1 = cq->qn > 0 ? qc / cq->qn : 0;
			cq->k1q = 1.0 - 2.0 * cq->k1 + state->center_norm2[list];
			break;
		case LSH_METRIC_IP:
			cq->k1 = qc;
			break;
	}
}

/*
 * Lower bounds on the operator's value for an entry with this code, in the
 * scan's units (lsh_distance: squared L2), the formulas of the file header
 * loosened by the allowances above; qr is <q~, r^> (lsh_code_bounds).  One
 * function per metric, so that a page's loop has no branch on the metric.
 */
static inline float8
bound_finite(float8 lb)
{
	return isfinite(lb) ? lb : -get_float8_infinity();
}

static inline float8
bound_l2(const LshCodeQuery *cq, const LshCode *code, float8 qr)
{
	float8		err = code->err;
	float8		rh = cq->rm + err;	/* |r^| is at most this */
	float8		rel = cq->rel;
	float8		est2 = cq->k1 - 2.0 * qr + code->aux -
		rel * (cq->k1 + 2.0 * cq->qrscale + 2.0 * cq->cn * rh + rh * rh);
	float8		e = est2 > 0 ? sqrt(est2) - err * (1.0 + rel) : 0;
	float8		lb;

	/* the operator is sqrt of a float sum: its squares' allowance */
	lb = e > 0 ? e * e * (1.0 - 2.0 * rel) - cq->abs : 0;
	return bound_finite(lb > 0 ? lb : 0);
}

static inline float8
bound_cosine(const LshCodeQuery *cq, const LshCode *code, float8 qr)
{
	float8		err = code->err;
	float8		rh = cq->rm + err;
	float8		rel = cq->rel;
	float8		lb = 1.0 - cq->k1 - qr - err * (1.0 + rel) -
		rel * (3.0 + cq->cn + rh + cq->qrscale) - cq->abs;

	if (cq->cosine_aux)
	{
		/*
		 * The quadratic bound (file header): e estimates |q' - x^| from
		 * below, as bound_l2 does |q - x^| (its terms' allowance, and 2 for
		 * |q'|^2 = 1 up to rounding); |q' - x'| >= e - err; the operator's
		 * value is |q' - x'|^2 / 2 up to its own rounding (3 rel, as above).
		 */
		float8		est2 = cq->k1q - 2.0 * qr + code->aux -
			rel * (2.0 + cq->k1q + 2.0 * cq->qrscale + 2.0 * cq->cn * rh + rh * rh);
		float8		e = est2 > 0 ? sqrt(est2) - err * (1.0 + rel) - rel : 0;
		float8		lbq = e > 0 ? 0.5 * e * e * (1.0 - 2.0 * rel) - 3.0 * rel - cq->abs : 0;

		lb = Max(lb, lbq);
	}
	/* the operator clamps the cosine to [-1, 1] */
	return bound_finite(lb > 0 ? lb : 0);
}

static inline float8
bound_ip(const LshCodeQuery *cq, const LshCode *code, float8 qr)
{
	float8		err = code->err;
	float8		rh = cq->rm + err;
	float8		rel = cq->rel;

	return bound_finite(-(float8) code->aux *
						(cq->k1 + qr + cq->qn * err * (1.0 + rel) +
						 rel * (cq->qn * (1.0 + cq->cn + rh + err) + cq->qrscale)) -
						cq->abs * (1.0 + code->aux));
}

/* <q~, r^> from the integer product of the code with the weights */
static inline float8
code_qr(const LshCodeQuery *cq, int32 dot)
{
	return cq->wconst + cq->wscale * (float8) dot;
}

/*
 * Lower bounds of n codes (a page's entries, at most MaxIndexTuplesPerPage)
 * into out[0 .. n).  The product with each code is exact (integers: the same
 * on every CPU).  All of a page's products come first and then all its
 * bounds, in a loop per metric: each bound is a chain of dependent float
 * operations (a square root among them), and in a loop of its own the CPU
 * overlaps the chains of consecutive entries (perf: the bounds took a sixth
 * of a warm query's CPU, most of it waiting on those chains).
 */
void
lsh_code_bounds(const LshCodeQuery *cq, const LshCode *const *codes, int n, float8 *out)
{
	int32		(*dot) (const int16 *w, const uint8 *code, int dim) = code_dot_int_plain;
	int32		dots[MaxIndexTuplesPerPage];

	Assert(n <= MaxIndexTuplesPerPage);
#ifdef LSH_CODE_AVX2
	if (have_avx2())
		dot = code_dot_int_avx2;
#endif
	for (int i = 0; i < n; i++)
		dots[i] = dot(cq->wi, codes[i]->code, cq->dim);
	switch (cq->metric)
	{
		case LSH_METRIC_L2:
			for (int i = 0; i < n; i++)
				out[i] = bound_l2(cq, codes[i], code_qr(cq, dots[i]));
			break;
		case LSH_METRIC_COSINE:
			for (int i = 0; i < n; i++)
				out[i] = bound_cosine(cq, codes[i], code_qr(cq, dots[i]));
			break;
		default:
			for (int i = 0; i < n; i++)
				out[i] = bound_ip(cq, codes[i], code_qr(cq, dots[i]));
			break;
	}
}

/* The operator's value of a distance in the scan's units. */
float8
lsh_operator_value(LshMetric metric, float8 dist)
{
	/* a negative L2 bound is -infinity (lsh_code_bounds): still a bound */
	return metric == LSH_METRIC_L2 && dist >= 0 ? sqrt(dist) : dist;
}
