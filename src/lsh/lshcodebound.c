/*
 * lshcodebound.c
 *	  A query's lower bounds on the distance of coded entries (lshcode.c has
 *	  the codes, their formulas and how they are learned and written): the
 *	  per-query weights, the per-list constants, and the bounds of a page's
 *	  codes, which an ordered scan reads thousands of per query (lshscan.c).
 *
 * The bounds are a scan's hottest loop: the product of the weights with each
 * code, then each code's bound.  Both have an AVX2 version picked at run
 * time that gives the same bits as the plain one (integers for the product;
 * for the bounds the same float8 operations in the same order, and no fused
 * multiply-add), so the rows a query finds do not depend on the CPU.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "kernels/distance.h"
#include "kernels/variant.h"
#include "lsh.h"
#include "utils/float.h"

/* ----------------------------------------------------------------
 * The product of a query's integer weights with a code: sum_d wi[d] code[d],
 * exact in int32 (code_weights_init bounds the weights for that), so the
 * AVX2 version and the plain loop give the same value.  gcc turns a vector
 * widening of bytes into one scalar conversion per byte, so the AVX2 version
 * is written with intrinsics (16 bytes -> 16 int16, multiplied and summed in
 * pairs into 8 int32 per step), for a page's codes at once, and picked at
 * run time.
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

/* sum_d w[d] code[d] over the dimensions [0, dim & ~15), as 8 int32 to add up */
__attribute__((target("avx2")))
static inline __m256i
code_dot_lanes(const int16 *w, const uint8 *code, int dim16)
{
	__m256i		s = _mm256_setzero_si256();

	/* widened straight from memory: one shuffle per 16 bytes (perf: the shuffle port was the limit) */
	for (int d = 0; d < dim16; d += 16)
		s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *) (code + d))),
												  _mm256_loadu_si256((const __m256i *) (w + d))));
	return s;
}

/*
 * The products of n codes into out: four codes' lanes are added up together
 * (three horizontal adds for four sums, where one sum took five steps), and
 * the loop over a page's codes is here, not a call per code.
 */
__attribute__((target("avx2")))
static void
code_dots_avx2(const int16 *w, const LshCode *const *codes, int n, int dim, int32 *out)
{
	int			dim16 = dim & ~15;
	int			i = 0;

	for (; i + 4 <= n; i += 4)
	{
		__m256i		s01 = _mm256_hadd_epi32(code_dot_lanes(w, codes[i]->code, dim16),
											code_dot_lanes(w, codes[i + 1]->code, dim16));
		__m256i		s23 = _mm256_hadd_epi32(code_dot_lanes(w, codes[i + 2]->code, dim16),
											code_dot_lanes(w, codes[i + 3]->code, dim16));
		/* per 128-bit half: the four codes' partial sums, in order */
		__m256i		h = _mm256_hadd_epi32(s01, s23);

		_mm_storeu_si128((__m128i *) (out + i),
						 _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
	}
	for (; i < n; i++)
	{
		__m256i		s = code_dot_lanes(w, codes[i]->code, dim16);
		__m128i		h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));

		h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
		h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
		out[i] = _mm_cvtsi128_si32(h);
	}
	/* the dimensions past the last 16 (none at 128), plain */
	if (dim16 < dim)
	{
		for (i = 0; i < n; i++)
			for (int d = dim16; d < dim; d++)
				out[i] += (int32) w[d] * codes[i]->code[d];
	}
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

#ifdef LSH_CODE_AVX2
/* ----------------------------------------------------------------
 * The bounds four entries at a time (AVX2, float8 lanes).  Each lane does
 * the scalar function's operations in the same order (the comments give the
 * scalar expressions), with no fused multiply-add (the target is avx2 alone,
 * the build -ffp-contract=off), so each lane has the scalar result's bits;
 * a scalar "c ? x : 0" is a mask (the comparisons are ordered: a NaN
 * compares false, as in C).  The scalar functions do the last n % 4
 * entries.  Perf: the scalar bounds were a sixth of a warm Fashion-MNIST
 * query's CPU, a chain of dependent operations (a square root among them)
 * per entry; four lanes cut a warm query's CPU by a tenth (L2) to a third
 * (cosine, two bounds per entry).  Checked: a build with
 * COPT=-DLSH_CHECK_LANES compares every bound with the plain function's, bit
 * for bit (lsh_code_bounds); TAP 052 compares the rows and the index's work
 * under fct.kernel_variant = 'scalar'.
 * ----------------------------------------------------------------
 */
#define AVX2 __attribute__((target("avx2"))) static inline

AVX2 __m256d vset(float8 x) {return _mm256_set1_pd(x);}
AVX2 __m256d vadd(__m256d a, __m256d b) {return _mm256_add_pd(a, b);}
AVX2 __m256d vsub(__m256d a, __m256d b) {return _mm256_sub_pd(a, b);}
AVX2 __m256d vmul(__m256d a, __m256d b) {return _mm256_mul_pd(a, b);}
/* c ? x : 0 where c is a > b */
AVX2 __m256d vif_gt(__m256d a, __m256d b, __m256d x) {return _mm256_and_pd(_mm256_cmp_pd(a, b, _CMP_GT_OQ), x);}

/* An entry's inputs, per lane: err, aux, qr = code_qr(dot), rh = rm + err. */
typedef struct LshLanes
{
	__m256d		err;
	__m256d		aux;
	__m256d		qr;
	__m256d		rh;
} LshLanes;

AVX2 LshLanes
load_lanes(const LshCodeQuery *cq, const LshCode *const *codes, const int32 *dots)
{
	LshLanes	v;

	v.err = _mm256_set_pd(codes[3]->err, codes[2]->err, codes[1]->err, codes[0]->err);
	v.aux = _mm256_set_pd(codes[3]->aux, codes[2]->aux, codes[1]->aux, codes[0]->aux);
	v.qr = vadd(vset(cq->wconst), vmul(vset(cq->wscale), _mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *) dots))));
	v.rh = vadd(vset(cq->rm), v.err);
	return v;
}

/* bound_finite(lb > 0 ? lb : 0) */
AVX2 __m256d
finite_nonnegative(__m256d lb)
{
	lb = vif_gt(lb, vset(0), lb);
	/* 0 or above now (a NaN became 0): only +infinity is not finite */
	return _mm256_blendv_pd(vset(-get_float8_infinity()), lb,
							_mm256_cmp_pd(lb, vset(get_float8_infinity()), _CMP_LT_OQ));
}

/* bound_l2 */
AVX2 __m256d
lanes_l2(const LshCodeQuery *cq, LshLanes v)
{
	__m256d		rel = vset(cq->rel);
	/* k1 - 2 qr + aux - rel (k1 + 2 qrscale + 2 cn rh + rh rh) */
	__m256d		est2 = vsub(vadd(vsub(vset(cq->k1), vmul(vset(2.0), v.qr)), v.aux),
						   vmul(rel, vadd(vadd(vset(cq->k1 + 2.0 * cq->qrscale), vmul(vset(2.0 * cq->cn), v.rh)),
										vmul(v.rh, v.rh))));
	/* est2 > 0 ? sqrt(est2) - err (1 + rel) : 0 */
	__m256d		e = vif_gt(est2, vset(0), vsub(_mm256_sqrt_pd(est2), vmul(v.err, vset(1.0 + cq->rel))));

	/* e > 0 ? e e (1 - 2 rel) - abs : 0 */
	return finite_nonnegative(vif_gt(e, vset(0), vsub(vmul(vmul(e, e), vset(1.0 - 2.0 * cq->rel)), vset(cq->abs))));
}

/* bound_cosine */
AVX2 __m256d
lanes_cosine(const LshCodeQuery *cq, LshLanes v)
{
	__m256d		rel = vset(cq->rel);
	/* 1 - k1 - qr - err (1 + rel) - rel (3 + cn + rh + qrscale) - abs */
	__m256d		lb = vsub(vsub(vsub(vsub(vset(1.0 - cq->k1), v.qr), vmul(v.err, vset(1.0 + cq->rel))),
								 vmul(rel, vadd(vadd(vset(3.0 + cq->cn), v.rh), vset(cq->qrscale)))),
							 vset(cq->abs));

	if (cq->cosine_aux)
	{
		/* k1q - 2 qr + aux - rel (2 + k1q + 2 qrscale + 2 cn rh + rh rh) */
		__m256d		est2 = vsub(vadd(vsub(vset(cq->k1q), vmul(vset(2.0), v.qr)), v.aux),
							   vmul(rel, vadd(vadd(vset(2.0 + cq->k1q + 2.0 * cq->qrscale), vmul(vset(2.0 * cq->cn), v.rh)),
											vmul(v.rh, v.rh))));
		/* est2 > 0 ? sqrt(est2) - err (1 + rel) - rel : 0 */
		__m256d		e = vif_gt(est2, vset(0), vsub(vsub(_mm256_sqrt_pd(est2), vmul(v.err, vset(1.0 + cq->rel))), rel));
		/* e > 0 ? 0.5 e e (1 - 2 rel) - 3 rel - abs : 0 */
		__m256d		lbq = vif_gt(e, vset(0), vsub(vsub(vmul(vmul(vmul(vset(0.5), e), e), vset(1.0 - 2.0 * cq->rel)),
												 vset(3.0 * cq->rel)),
											 vset(cq->abs)));

		/* Max(lb, lbq) */
		lb = _mm256_blendv_pd(lbq, lb, _mm256_cmp_pd(lb, lbq, _CMP_GT_OQ));
	}
	return finite_nonnegative(lb);
}

/* bound_ip */
AVX2 __m256d
lanes_ip(const LshCodeQuery *cq, LshLanes v)
{
	__m256d		rel = vset(cq->rel);
	__m256d		qn = vset(cq->qn);
	/* -aux (k1 + qr + qn err (1 + rel) + rel (qn (1 + cn + rh + err) + qrscale)) - abs (1 + aux) */
	__m256d		lb = vsub(vmul(_mm256_xor_pd(v.aux, vset(-0.0)),
							 vadd(vadd(vadd(vset(cq->k1), v.qr), vmul(vmul(qn, v.err), vset(1.0 + cq->rel))),
								 vmul(rel, vadd(vmul(qn, vadd(vadd(vset(1.0 + cq->cn), v.rh), v.err)), vset(cq->qrscale))))),
						 vmul(vset(cq->abs), vadd(vset(1.0), v.aux)));
	/* bound_finite: |lb| < infinity (a NaN compares false) */
	__m256d		mag = _mm256_andnot_pd(vset(-0.0), lb);

	return _mm256_blendv_pd(vset(-get_float8_infinity()), lb,
							_mm256_cmp_pd(mag, vset(get_float8_infinity()), _CMP_LT_OQ));
}

/* The bounds of codes[0 .. n - n % 4) into out; returns how many it did. */
__attribute__((target("avx2")))
static int
bounds_avx2(const LshCodeQuery *cq, const LshCode *const *codes, const int32 *dots, int n, float8 *out)
{
	int			i = 0;

	for (; i + 4 <= n; i += 4)
	{
		LshLanes	v = load_lanes(cq, codes + i, dots + i);
		__m256d		lb;

		switch (cq->metric)
		{
			case LSH_METRIC_L2:
				lb = lanes_l2(cq, v);
				break;
			case LSH_METRIC_COSINE:
				lb = lanes_cosine(cq, v);
				break;
			default:
				lb = lanes_ip(cq, v);
				break;
		}
		_mm256_storeu_pd(out + i, lb);
	}
	return i;
}
#undef AVX2
#endif

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
	int32		dots[MaxIndexTuplesPerPage];
	int			done = 0;
	bool		avx2 = false;

	Assert(n <= MaxIndexTuplesPerPage);
#ifdef LSH_CODE_AVX2
	/* fct.kernel_variant = 'scalar': the plain versions, for tests that compare the two */
	avx2 = have_avx2() && kernel_variant != KERNEL_VARIANT_SCALAR;
	if (avx2)
	{
		code_dots_avx2(cq->wi, codes, n, cq->dim, dots);
		done = bounds_avx2(cq, codes, dots, n, out);
	}
#endif
	if (!avx2)
	{
		for (int i = 0; i < n; i++)
			dots[i] = code_dot_int_plain(cq->wi, codes[i]->code, cq->dim);
	}
	switch (cq->metric)
	{
		case LSH_METRIC_L2:
			for (int i = done; i < n; i++)
				out[i] = bound_l2(cq, codes[i], code_qr(cq, dots[i]));
			break;
		case LSH_METRIC_COSINE:
			for (int i = done; i < n; i++)
				out[i] = bound_cosine(cq, codes[i], code_qr(cq, dots[i]));
			break;
		default:
			for (int i = done; i < n; i++)
				out[i] = bound_ip(cq, codes[i], code_qr(cq, dots[i]));
			break;
	}
#ifdef LSH_CHECK_LANES
	/* make COPT=-DLSH_CHECK_LANES: every bound against the plain functions', bit for bit */
	for (int i = 0; i < n; i++)
	{
		float8		qr = code_qr(cq, code_dot_int_plain(cq->wi, codes[i]->code, cq->dim));
		float8		x = cq->metric == LSH_METRIC_L2 ? bound_l2(cq, codes[i], qr) :
			cq->metric == LSH_METRIC_COSINE ? bound_cosine(cq, codes[i], qr) : bound_ip(cq, codes[i], qr);

		if (memcmp(&x, &out[i], sizeof(x)) != 0)
			elog(ERROR, "lsh: the AVX2 bound %.17g differs from the plain one %.17g", out[i], x);
	}
#endif
}

/* The operator's value of a distance in the scan's units. */
float8
lsh_operator_value(LshMetric metric, float8 dist)
{
	/* a negative L2 bound is -infinity (lsh_code_bounds): still a bound */
	return metric == LSH_METRIC_L2 && dist >= 0 ? sqrt(dist) : dist;
}
