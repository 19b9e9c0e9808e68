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
 * bytes from memory and multiplying them.  The code is a quarter of the bytes
 * and sits after the vector in the same entry, so a scan touches the
 * vector's cache lines only for the few entries it re-ranks (about 15 of
 * 5,500 per query on Fashion-MNIST; numpy prototype in
 * test/bench/lsh/prototypes.py's spirit), and no page is read twice for it.
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
 *	 inner product: -<q, x> >= -|x| (<q, c> + <q, r^> + |q| err),	aux = |x|
 *
 * and <q, r^> = sum_d q[d] (lo[d] + step[d] / 2) + sum_d (q[d] step[d]) code[d]:
 * one product of a per-query vector with the 8-bit code per entry.  The scan
 * (lshscan.c) loosens each bound by a tolerance for float rounding, so the
 * rows it returns and their order are those of the exact distances.
 *
 * Layout: an entry is the heap TID, the vector, then LshCode (err, aux, the
 * code padded to 4 bytes).  Indexes of page format 2 have no code
 * (meta.code_bits = 0), nor do dimensions whose coded entry would not fit on
 * a page; their scans compute every distance, as before.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "kernels/distance.h"
#include "lsh.h"

/* Outliers clamped at each end when the steps are learned. */
#define LSH_CODE_CLIP	0.001
/*
 * Sample rows the steps are learned from: a sort per dimension of this many
 * residuals (the whole sample, 80,000 rows at a million, made the build half
 * again as costly at 200,000 rows already).
 */
#define LSH_CODE_SAMPLE	8192

/* Bytes of LshCode for dim dimensions. */
static inline Size
code_size(int dim)
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

/* Bytes of one entry of this index: TID, vector, and the code when it has codes. */
Size
lsh_entry_size(const LshMetaPageData *meta)
{
	Size		size = LSH_ENTRY_SIZE(Max(meta->dim, 1));

	if (meta->code_bits > 0)
		size += code_size(meta->dim);
	return size;
}

/* Whether an index of this family, metric and dimension gets codes. */
static bool
code_fits(int dim)
{
	return MAXALIGN(LSH_ENTRY_SIZE(dim) + code_size(dim)) <=
		max_entry_size();
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
	out->aux = l2 ? (float) (2.0 * cr + rn2) :
		state->meta.metric == LSH_METRIC_IP ? (float) norm : 0;
}

/* The code part of an entry of an index with codes. */
LshCode *
lsh_entry_code(const LshEntry *entry, int dim)
{
	return (LshCode *) ((char *) entry->x + sizeof(float4) * (Size) dim);
}

/* ----------------------------------------------------------------
 * The per-query side: <q, r^> for a code
 * ----------------------------------------------------------------
 */

/*
 * w[d] = q[d] step[d] and the constant sum_d q[d] (lo[d] + step[d] / 2): then
 * <q, r^> = constant + lsh_code_dot(w, code).
 */
float8
lsh_code_query(const LshState *state, const float *q, float *w)
{
	int			dim = state->meta.dim;
	float8		k = 0;

	for (int d = 0; d < dim; d++)
	{
		w[d] = q[d] * state->code_step[d];
		k += (float8) q[d] * ((float8) state->code_lo[d] + 0.5 * state->code_step[d]);
	}
	return k;
}

/*
 * sum_d w[d] code[d].  Only a scan's estimate (lshscan.c allows for its
 * rounding), never a stored or returned value, so its summation order may
 * differ between the two versions.  gcc turns a vector conversion of bytes
 * into floats into one scalar conversion per byte, so the AVX2 version is
 * written with intrinsics (8 bytes -> 8 int32 -> 8 floats per step) and picked
 * at run time; other CPUs take the plain loop.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LSH_CODE_AVX2 1

__attribute__((target("avx2")))
static float
code_dot_avx2(const float *w, const uint8 *code, int dim)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m128		h;
	float		s;
	int			d = 0;

	for (; d + 16 <= dim; d += 16)
	{
		__m128i		b = _mm_loadu_si128((const __m128i *) (code + d));
		__m256		c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
		__m256		c1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)));

		s0 = _mm256_add_ps(s0, _mm256_mul_ps(_mm256_loadu_ps(w + d), c0));
		s1 = _mm256_add_ps(s1, _mm256_mul_ps(_mm256_loadu_ps(w + d + 8), c1));
	}
	s0 = _mm256_add_ps(s0, s1);
	h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
	s = _mm_cvtss_f32(h);
	for (; d < dim; d++)
		s += w[d] * code[d];
	return s;
}
#endif

static float
code_dot_plain(const float *w, const uint8 *code, int dim)
{
	float		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int			d = 0;

	for (; d + 4 <= dim; d += 4)
	{
		s0 += w[d] * code[d];
		s1 += w[d + 1] * code[d + 1];
		s2 += w[d + 2] * code[d + 2];
		s3 += w[d + 3] * code[d + 3];
	}
	for (; d < dim; d++)
		s0 += w[d] * code[d];
	return (s0 + s1) + (s2 + s3);
}

float
lsh_code_dot(const float *w, const uint8 *code, int dim)
{
#ifdef LSH_CODE_AVX2
	static int	have_avx2 = -1;

	if (unlikely(have_avx2 < 0))
		have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
	if (have_avx2)
		return code_dot_avx2(w, code, dim);
#endif
	return code_dot_plain(w, code, dim);
}
