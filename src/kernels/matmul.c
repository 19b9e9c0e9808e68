/*
 * matmul.c
 *	  kernel_matmul: dense layer products in the fixed order of matmul.h,
 *	  vectorised.
 *
 * Why not BLAS.  cblas_sgemv (one row) and cblas_sgemm (a batch) sum each
 * output in different orders, which differ again with the CPU's SIMD width
 * and its FMA unit: the same row upgraded alone, in a batch, or on another
 * server came out different in the last bits, and an index built on the
 * IMMUTABLE fct_upgrade stopped finding migrated rows.  Here every output is
 * summed in the one order matmul.h defines, whether it is computed alone or
 * among thousands, and on every CPU:
 *
 *	 - the eight lanes of the definition are one vector of eight float4 (gcc's
 *	   vector extension): a lane-wise multiply then add is exactly the
 *	   definition's "lane[l] += w * x", with no reassociation (gcc reorders
 *	   floating-point arithmetic only under -ffast-math, which fct never uses);
 *	 - the Makefile compiles fct with -ffp-contract=off, so that no
 *	   multiply-add is fused into an FMA (an FMA rounds once where the
 *	   definition rounds twice, and the baseline x86-64 has none): the
 *	   AVX2 and AVX-512 builds below use their instruction sets for width and
 *	   registers only, and their bits equal the baseline's and the scalar
 *	   reference's (matmul_scalar.c; test/bench/distance_kernels compares the
 *	   three builds' bits);
 *	 - the three tree levels are lane shuffles and additions of the same pairs
 *	   the definition adds.
 *
 * Speed.  Blocks of (row, output) pairs are computed at once, independent
 * accumulators, so that the additions' latency overlaps: one row against
 * eight outputs (the one-row form: each weight read once, streaming, like
 * sgemv), or two rows against four outputs (the batched form: each weight
 * load serves two rows and each input load four outputs).  Where the CPU
 * has AVX-512, the batched form computes eight rows against four outputs in
 * sixteen-lane vectors that hold two rows' eight lanes side by side: the
 * same sums, lane for lane, two at a time, so the CPUs with full-width
 * AVX-512 units do twice the multiplies and adds per instruction (without
 * FMA, eight-lane vectors could not go past the 256-bit FMA peak: one row
 * / batched was 2.05 at the ml-fct shape, 2.5-3 with these blocks).  Each
 * group of eight sums is reduced together, transposed (three shuffle-add
 * levels give the eight results in one vector; sixteen in the wide
 * blocks).  The batched form walks panels of outputs whose weights fit in
 * L2 and, inside one, tiles of rows that fit in L1.  Without FMA a
 * multiply-add is two instructions instead of one; on CPUs with separate
 * add and multiply pipes (Zen, recent Intel) that costs little:
 * test/bench/transform measures it against sgemv and sgemm.
 */
#include "postgres.h"

#include "kernels/matmul.h"
#include "kernels/variant.h"

/*
 * Three builds of the same code on x86-64 with gcc, chosen once by the CPU:
 * x86-64-v4 (AVX-512: 32 registers, which hold the sixteen accumulators of
 * a 4 x 4 block of eight-lane vectors or of an 8 x 4 block of sixteen-lane
 * ones), x86-64-v3 (AVX2, 16 registers: 2 x 4 blocks) and the baseline.
 * The benchmark defines FCT_KERNEL_CLONES (empty, as for distance.c) to
 * measure the baseline alone, and FCT_KERNEL_NO_V4 to measure the v3 build
 * on a v4 CPU.
 */
#if !defined(FCT_KERNEL_CLONES) && defined(__x86_64__) && defined(__GNUC__) && \
	!defined(__clang__)
#define MATMUL_DISPATCH 1
#include <immintrin.h>
#endif

/* Eight float4 lanes; aligned(4) because rows start anywhere. */
typedef float4 v8sf __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32 v8si __attribute__((vector_size(32)));

#define LOAD(p) (*(const v8sf *) (p))
/* Lanes of a and b (numbered 0-7 and 8-15) by constant indices: gcc's and clang's spellings. */
#ifdef __clang__
#define SHUF(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
#else
#define SHUF(a, b, ...) __builtin_shuffle((a), (b), (v8si) {__VA_ARGS__})
#endif

/*
 * The batched form's loops: a panel of outputs whose weights stay in L2, a
 * tile of rows whose inputs stay in L1, and inside them each block of four
 * weight rows is loaded from L2 once per tile and used by all its rows.
 * Without the panels, weights larger than the caches (23 MB) came from
 * memory once per tile: 2.6x slower than sgemm instead of 1.1x.  The
 * AVX-512 build's tiles (MATMUL_TILE_BYTES_WIDE, a multiple of eight rows)
 * are copied into a buffer of that size on the stack, each pair of rows
 * side by side; 16 to 40 kB ran within the benchmark's noise on a 48 kB L1,
 * and 24 kB leaves room for the weights on CPUs with a 32 kB one.  (The
 * benchmark may define it to measure another size.)
 */
#define MATMUL_TILE_BYTES	(16 * 1024)
#ifndef MATMUL_TILE_BYTES_WIDE
#define MATMUL_TILE_BYTES_WIDE	(24 * 1024)
#endif
#define MATMUL_PANEL_BYTES	(256 * 1024)

/*
 * Every helper is inlined into each build of matmul_body, so that each
 * compiles them for its own instruction set (a helper left out of line would
 * be compiled once, for the baseline).
 */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/*
 * The tree of matmul.h for eight accumulators at once: s[j] becomes
 * ((a_j[0] + a_j[4]) + (a_j[2] + a_j[6])) + ((a_j[1] + a_j[5]) + (a_j[3] + a_j[7])),
 * i.e. t = lo + hi, u = t[0..1] + t[2..3], s = u[0] + u[1].  A macro: vector
 * arguments of a function would change the ABI of the baseline build.
 */
#define REDUCE8(s, a0, a1, a2, a3, a4, a5, a6, a7) \
	do { \
		/* t: [t_0 | t_4], [t_1 | t_5], [t_2 | t_6], [t_3 | t_7] */ \
		v8sf		p04_ = SHUF(a0, a4, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(a0, a4, 4, 5, 6, 7, 12, 13, 14, 15); \
		v8sf		p15_ = SHUF(a1, a5, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(a1, a5, 4, 5, 6, 7, 12, 13, 14, 15); \
		v8sf		p26_ = SHUF(a2, a6, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(a2, a6, 4, 5, 6, 7, 12, 13, 14, 15); \
		v8sf		p37_ = SHUF(a3, a7, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(a3, a7, 4, 5, 6, 7, 12, 13, 14, 15); \
		/* u: [u_0 u_1 | u_4 u_5] and [u_2 u_3 | u_6 u_7], two lanes each */ \
		v8sf		q_ = SHUF(p04_, p15_, 0, 1, 8, 9, 4, 5, 12, 13) + SHUF(p04_, p15_, 2, 3, 10, 11, 6, 7, 14, 15); \
		v8sf		r_ = SHUF(p26_, p37_, 0, 1, 8, 9, 4, 5, 12, 13) + SHUF(p26_, p37_, 2, 3, 10, 11, 6, 7, 14, 15); \
		/* s: [s_0 .. s_7] */ \
		(s) = SHUF(q_, r_, 0, 2, 8, 10, 4, 6, 12, 14) + SHUF(q_, r_, 1, 3, 9, 11, 5, 7, 13, 15); \
	} while (0)

/*
 * The inputs past the last multiple of eight, added one at a time to each of
 * the eight sums (rare: most widths are multiples of 8).  Pair j is input row
 * xs[j] against weight row ws[j].
 */
static void
add_tail(float4 *s, const float4 *const *ws, const float4 *const *xs, int n8,
		 int in_dim)
{
	for (int j = 0; j < 8; j++)
		for (int i = n8; i < in_dim; i++)
			s[j] += ws[j][i] * xs[j][i];
}

/*
 * The bias (when the layer has one: adding a zero would turn -0 into +0)
 * and the ReLU (max(v, 0), NaN giving +0, like the reference's
 * !(v > 0) ? 0 : v), eight lanes at once.
 */
#define BIAS_RELU(s, bvec, has_bias, relu) \
	do { \
		if (has_bias) \
			(s) += (bvec); \
		if (relu) \
			(s) = (v8sf) ((v8si) (s) & ((s) > (v8sf) {0})); \
	} while (0)

/* Weight row of output o, padding past the last output with the last row. */
#define WROW(w, o, out_dim, in_dim) \
	((w) + (Size) Min((o), (out_dim) - 1) * (in_dim))

/*
 * One row x against outputs o .. o + 7 (those below out_dim are stored to
 * y[o ..]); bvec holds their biases.
 */
static ALWAYS_INLINE void
block_1x8(const float4 *w, int o, int out_dim, int in_dim, const float4 *x,
		  const v8sf *bvec, bool has_bias, float4 *y, bool relu)
{
	v8sf		a0 = {0},
				a1 = {0},
				a2 = {0},
				a3 = {0},
				a4 = {0},
				a5 = {0},
				a6 = {0},
				a7 = {0};
	const float4 *w0 = WROW(w, o, out_dim, in_dim),
			   *w1 = WROW(w, o + 1, out_dim, in_dim),
			   *w2 = WROW(w, o + 2, out_dim, in_dim),
			   *w3 = WROW(w, o + 3, out_dim, in_dim),
			   *w4 = WROW(w, o + 4, out_dim, in_dim),
			   *w5 = WROW(w, o + 5, out_dim, in_dim),
			   *w6 = WROW(w, o + 6, out_dim, in_dim),
			   *w7 = WROW(w, o + 7, out_dim, in_dim);
	int			n8 = in_dim & ~7;
	v8sf		s;

	for (int k = 0; k < n8; k += 8)
	{
		v8sf		xv = LOAD(x + k);

		a0 += LOAD(w0 + k) * xv;
		a1 += LOAD(w1 + k) * xv;
		a2 += LOAD(w2 + k) * xv;
		a3 += LOAD(w3 + k) * xv;
		a4 += LOAD(w4 + k) * xv;
		a5 += LOAD(w5 + k) * xv;
		a6 += LOAD(w6 + k) * xv;
		a7 += LOAD(w7 + k) * xv;
	}
	REDUCE8(s, a0, a1, a2, a3, a4, a5, a6, a7);
	if (unlikely(n8 < in_dim))
	{
		const float4 *ws[8] = {w0, w1, w2, w3, w4, w5, w6, w7};
		const float4 *xs[8] = {x, x, x, x, x, x, x, x};
		float4		t[8];

		memcpy(t, &s, sizeof(t));
		add_tail(t, ws, xs, n8, in_dim);
		memcpy(&s, t, sizeof(t));
	}
	BIAS_RELU(s, *bvec, has_bias, relu);
	if (o + 8 <= out_dim)
		memcpy(y + o, &s, sizeof(s));
	else
	{
		float4		t[8];

		memcpy(t, &s, sizeof(t));
		for (int j = 0; o + j < out_dim; j++)
			y[o + j] = t[j];
	}
}

/*
 * The end of a 2 x 4 group: s holds pair j = row j / 4 against output
 * o + j % 4 after the tree; add the tail, the bias and the ReLU, store the
 * outputs below out_dim to y0[o ..] and y1[o ..].
 */
static ALWAYS_INLINE void
finish_2x4(v8sf *s, const float4 *w0, const float4 *w1, const float4 *w2,
		   const float4 *w3, const float4 *x0, const float4 *x1, int n8,
		   int in_dim, const v8sf *bvec, bool has_bias, float4 *y0,
		   float4 *y1, int o, int out_dim, bool relu)
{
	if (unlikely(n8 < in_dim))
	{
		const float4 *ws[8] = {w0, w1, w2, w3, w0, w1, w2, w3};
		const float4 *xs[8] = {x0, x0, x0, x0, x1, x1, x1, x1};
		float4		t[8];

		memcpy(t, s, sizeof(t));
		add_tail(t, ws, xs, n8, in_dim);
		memcpy(s, t, sizeof(t));
	}
	BIAS_RELU(*s, *bvec, has_bias, relu);
	if (o + 4 <= out_dim)
	{
		memcpy(y0 + o, s, 4 * sizeof(float4));
		memcpy(y1 + o, (float4 *) s + 4, 4 * sizeof(float4));
	}
	else
	{
		float4		t[8];

		memcpy(t, s, sizeof(t));
		for (int j = 0; o + j < out_dim; j++)
		{
			y0[o + j] = t[j];
			y1[o + j] = t[j + 4];
		}
	}
}

/*
 * Two rows x0, x1 against outputs o .. o + 3 (stored to y0[o ..] and
 * y1[o ..] below out_dim); bvec holds their biases twice.  Pair j is row
 * j / 4 against output o + j % 4.
 */
static ALWAYS_INLINE void
block_2x4(const float4 *w, int o, int out_dim, int in_dim, const float4 *x0,
		  const float4 *x1, const v8sf *bvec, bool has_bias, float4 *y0,
		  float4 *y1, bool relu)
{
	v8sf		a0 = {0},
				a1 = {0},
				a2 = {0},
				a3 = {0},
				a4 = {0},
				a5 = {0},
				a6 = {0},
				a7 = {0};
	const float4 *w0 = WROW(w, o, out_dim, in_dim),
			   *w1 = WROW(w, o + 1, out_dim, in_dim),
			   *w2 = WROW(w, o + 2, out_dim, in_dim),
			   *w3 = WROW(w, o + 3, out_dim, in_dim);
	int			n8 = in_dim & ~7;
	v8sf		s;

	for (int k = 0; k < n8; k += 8)
	{
		v8sf		u = LOAD(x0 + k);
		v8sf		v = LOAD(x1 + k);
		v8sf		b0 = LOAD(w0 + k);
		v8sf		b1 = LOAD(w1 + k);
		v8sf		b2 = LOAD(w2 + k);
		v8sf		b3 = LOAD(w3 + k);

		a0 += b0 * u;
		a1 += b1 * u;
		a2 += b2 * u;
		a3 += b3 * u;
		a4 += b0 * v;
		a5 += b1 * v;
		a6 += b2 * v;
		a7 += b3 * v;
	}
	REDUCE8(s, a0, a1, a2, a3, a4, a5, a6, a7);
	finish_2x4(&s, w0, w1, w2, w3, x0, x1, n8, in_dim, bvec, has_bias, y0, y1,
			   o, out_dim, relu);
}

/*
 * Four rows x[0..3] against outputs o .. o + 3: sixteen accumulators, for
 * the build with 32 vector registers only (with 16 they spill, and ran at
 * half the speed).  Each load of a weight serves four rows and each load of
 * an input four outputs.
 */
static ALWAYS_INLINE void
block_4x4(const float4 *w, int o, int out_dim, int in_dim,
		  const float4 *const *x, const v8sf *bvec, bool has_bias,
		  float4 *const *y, bool relu)
{
	v8sf		a0 = {0},
				a1 = {0},
				a2 = {0},
				a3 = {0},
				a4 = {0},
				a5 = {0},
				a6 = {0},
				a7 = {0};
	v8sf		c0 = {0},
				c1 = {0},
				c2 = {0},
				c3 = {0},
				c4 = {0},
				c5 = {0},
				c6 = {0},
				c7 = {0};
	const float4 *w0 = WROW(w, o, out_dim, in_dim),
			   *w1 = WROW(w, o + 1, out_dim, in_dim),
			   *w2 = WROW(w, o + 2, out_dim, in_dim),
			   *w3 = WROW(w, o + 3, out_dim, in_dim);
	const float4 *x0 = x[0],
			   *x1 = x[1],
			   *x2 = x[2],
			   *x3 = x[3];
	int			n8 = in_dim & ~7;
	v8sf		s,
				t;

	for (int k = 0; k < n8; k += 8)
	{
		v8sf		b0 = LOAD(w0 + k);
		v8sf		b1 = LOAD(w1 + k);
		v8sf		b2 = LOAD(w2 + k);
		v8sf		b3 = LOAD(w3 + k);
		v8sf		u = LOAD(x0 + k);
		v8sf		v = LOAD(x1 + k);
		v8sf		p = LOAD(x2 + k);
		v8sf		q = LOAD(x3 + k);

		a0 += b0 * u;
		a1 += b1 * u;
		a2 += b2 * u;
		a3 += b3 * u;
		a4 += b0 * v;
		a5 += b1 * v;
		a6 += b2 * v;
		a7 += b3 * v;
		c0 += b0 * p;
		c1 += b1 * p;
		c2 += b2 * p;
		c3 += b3 * p;
		c4 += b0 * q;
		c5 += b1 * q;
		c6 += b2 * q;
		c7 += b3 * q;
	}
	REDUCE8(s, a0, a1, a2, a3, a4, a5, a6, a7);
	REDUCE8(t, c0, c1, c2, c3, c4, c5, c6, c7);
	finish_2x4(&s, w0, w1, w2, w3, x0, x1, n8, in_dim, bvec, has_bias, y[0],
			   y[1], o, out_dim, relu);
	finish_2x4(&t, w0, w1, w2, w3, x2, x3, n8, in_dim, bvec, has_bias, y[2],
			   y[3], o, out_dim, relu);
}

/* The biases of outputs o .. o + width - 1, repeated to fill eight lanes. */
static ALWAYS_INLINE void
load_bias(v8sf *bvec, const float4 *bias, int o, int out_dim, int width)
{
	float4		t[8] = {0};

	if (bias != NULL)
		for (int j = 0; j < 8; j++)
			t[j] = bias[Min(o + j % width, out_dim - 1)];
	memcpy(bvec, t, sizeof(t));
}

#ifdef MATMUL_DISPATCH
/*
 * The AVX-512 build's batched form: vectors of sixteen lanes, each holding
 * two rows' eight lanes of the definition side by side (the low half one
 * row, the high half another, against the same output).  Every lane still
 * sums its own products of matmul.h in the same order; the wider vector
 * computes two of them at once, which on CPUs with full-width AVX-512 units
 * doubles the multiplies and adds per cycle (without FMA, a 4 x 4 block of
 * eight-lane vectors cannot go beyond the FMA peak of 256-bit vectors).
 */
typedef float4 v16sf __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32 v16si __attribute__((vector_size(64)));

#define LOAD16(p) (*(const v16sf *) (p))
#define SHUF16(a, b, ...) __builtin_shuffle((a), (b), (v16si) {__VA_ARGS__})
/* rows a and b's eight inputs from k, side by side */
#define LOAD_PAIR(a, b) \
	((v16sf) _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(a)), \
								_mm256_loadu_ps(b), 1))
/* eight weights from k, in both halves */
#define LOAD_BCAST(p) ((v16sf) _mm512_broadcast_f32x8(_mm256_loadu_ps(p)))

/*
 * REDUCE8 on both halves at once: the same shuffles and additions, lane for
 * lane, applied to the low and the high eight lanes of a0 .. a7 (each index
 * of REDUCE8's patterns, within a half, plus 16 for b).  s: the low half
 * REDUCE8 of the low halves, the high half that of the high halves.
 */
#define REDUCE16(s, a0, a1, a2, a3, a4, a5, a6, a7) \
	do { \
		v16sf		p04_ = SHUF16(a0, a4, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) + \
						   SHUF16(a0, a4, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
		v16sf		p15_ = SHUF16(a1, a5, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) + \
						   SHUF16(a1, a5, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
		v16sf		p26_ = SHUF16(a2, a6, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) + \
						   SHUF16(a2, a6, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
		v16sf		p37_ = SHUF16(a3, a7, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) + \
						   SHUF16(a3, a7, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
		v16sf		q_ = SHUF16(p04_, p15_, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) + \
						 SHUF16(p04_, p15_, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
		v16sf		r_ = SHUF16(p26_, p37_, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) + \
						 SHUF16(p26_, p37_, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
		(s) = SHUF16(q_, r_, 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30) + \
			  SHUF16(q_, r_, 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31); \
	} while (0)

/*
 * The end of four rows against outputs o .. o + 3: quarter q of s holds row
 * xs[q] against the four outputs.  The tail, the bias (bvec: the four
 * biases four times) and the ReLU, then the outputs below out_dim stored
 * to ys[q][o ..].
 */
__attribute__((target("arch=x86-64-v4")))
static ALWAYS_INLINE void
finish_4x4(v16sf s, const float4 *const *ws, const float4 *const *xs, int n8,
		   int in_dim, v16sf bvec, bool has_bias, float4 *const *ys, int o,
		   int out_dim, bool relu)
{
	float4		t[16];

	if (unlikely(n8 < in_dim))
	{
		memcpy(t, &s, sizeof(t));
		for (int q = 0; q < 4; q++)
			for (int j = 0; j < 4; j++)
				for (int i = n8; i < in_dim; i++)
					t[4 * q + j] += ws[j][i] * xs[q][i];
		memcpy(&s, t, sizeof(t));
	}
	if (has_bias)
		s += bvec;
	if (relu)
		s = (v16sf) ((v16si) s & (s > (v16sf) {0}));
	memcpy(t, &s, sizeof(t));
	for (int q = 0; q < 4; q++)
	{
		if (o + 4 <= out_dim)
			memcpy(ys[q] + o, t + 4 * q, 4 * sizeof(float4));
		else
			for (int j = 0; o + j < out_dim; j++)
				ys[q][o + j] = t[4 * q + j];
	}
}

/*
 * Eight rows against outputs o .. o + 3: sixteen accumulators, a_pj for the
 * rows 2p (low half) and 2p + 1 (high half) against output o + j.  Each
 * broadcast weight serves eight rows, each pair of inputs four outputs.
 * xp: the eight rows' first n8 inputs packed by pairs (pair p's inputs k ..
 * k + 7 at xp[p * 2 * n8 + 2 * k], then row 2p + 1's), or NULL to read the
 * rows themselves, putting each pair side by side as it goes.
 */
__attribute__((target("arch=x86-64-v4")))
static ALWAYS_INLINE void
block_8x4(const float4 *w, int o, int out_dim, int in_dim,
		  const float4 *const *x, const float4 *xp, v16sf bvec,
		  bool has_bias, float4 *const *y, bool relu)
{
	v16sf		a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0},
				a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0},
				a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0},
				a30 = {0}, a31 = {0}, a32 = {0}, a33 = {0};
	const float4 *ws[4] = {WROW(w, o, out_dim, in_dim),
		WROW(w, o + 1, out_dim, in_dim),
		WROW(w, o + 2, out_dim, in_dim),
	WROW(w, o + 3, out_dim, in_dim)};
	const float4 *w0 = ws[0],
			   *w1 = ws[1],
			   *w2 = ws[2],
			   *w3 = ws[3];
	int			n8 = in_dim & ~7;
	v16sf		s;

#define BLOCK_8X4_STEP(u0, u1, u2, u3) \
	do { \
		v16sf		b0 = LOAD_BCAST(w0 + k); \
		v16sf		b1 = LOAD_BCAST(w1 + k); \
		v16sf		b2 = LOAD_BCAST(w2 + k); \
		v16sf		b3 = LOAD_BCAST(w3 + k); \
		v16sf		u0_ = (u0), u1_ = (u1), u2_ = (u2), u3_ = (u3); \
		a00 += b0 * u0_; a01 += b1 * u0_; a02 += b2 * u0_; a03 += b3 * u0_; \
		a10 += b0 * u1_; a11 += b1 * u1_; a12 += b2 * u1_; a13 += b3 * u1_; \
		a20 += b0 * u2_; a21 += b1 * u2_; a22 += b2 * u2_; a23 += b3 * u2_; \
		a30 += b0 * u3_; a31 += b1 * u3_; a32 += b2 * u3_; a33 += b3 * u3_; \
	} while (0)

	if (xp != NULL)
	{
		const float4 *p0 = xp,
				   *p1 = xp + 2 * n8,
				   *p2 = xp + 4 * n8,
				   *p3 = xp + 6 * n8;

		for (int k = 0; k < n8; k += 8)
			BLOCK_8X4_STEP(LOAD16(p0 + 2 * k), LOAD16(p1 + 2 * k),
						   LOAD16(p2 + 2 * k), LOAD16(p3 + 2 * k));
	}
	else
	{
		for (int k = 0; k < n8; k += 8)
			BLOCK_8X4_STEP(LOAD_PAIR(x[0] + k, x[1] + k),
						   LOAD_PAIR(x[2] + k, x[3] + k),
						   LOAD_PAIR(x[4] + k, x[5] + k),
						   LOAD_PAIR(x[6] + k, x[7] + k));
	}
#undef BLOCK_8X4_STEP

	/* quarters: rows 0, 2, 1, 3 (then 4, 6, 5, 7) against o .. o + 3 */
	{
		const float4 *xs[4] = {x[0], x[2], x[1], x[3]};
		float4	   *ys[4] = {y[0], y[2], y[1], y[3]};

		REDUCE16(s, a00, a01, a02, a03, a10, a11, a12, a13);
		finish_4x4(s, ws, xs, n8, in_dim, bvec, has_bias, ys, o, out_dim, relu);
	}
	{
		const float4 *xs[4] = {x[4], x[6], x[5], x[7]};
		float4	   *ys[4] = {y[4], y[6], y[5], y[7]};

		REDUCE16(s, a20, a21, a22, a23, a30, a31, a32, a33);
		finish_4x4(s, ws, xs, n8, in_dim, bvec, has_bias, ys, o, out_dim, relu);
	}
}

/*
 * Rows r0 .. end - 1 in groups of eight (end - r0 a multiple of eight),
 * against outputs p0 .. pend - 1.  The tile's inputs are first packed by
 * pairs of rows when they fit in the buffer (the tile is sized for L1), so
 * that the inner loop loads each pair as one vector.  Not inlined: the
 * caller is compiled for every build, this for AVX-512 only.
 */
__attribute__((noinline, target("arch=x86-64-v4")))
static void
tile_8x4(const float4 *w, const float4 *bias, int out_dim, int in_dim,
		 int p0, int pend, const float4 *x, int ldx, int r0, int end,
		 float4 *y, int ldy, bool relu)
{
	float4		buf[MATMUL_TILE_BYTES_WIDE / sizeof(float4)];
	int			n8 = in_dim & ~7;
	bool		packed = (Size) (end - r0) * n8 <= lengthof(buf);

	if (packed)
		for (int r = r0; r < end; r += 2)
		{
			const float4 *xa = x + (Size) r * ldx;
			const float4 *xb = xa + ldx;
			float4	   *d = buf + (Size) (r - r0) * n8;

			for (int k = 0; k < n8; k += 8)
			{
				memcpy(d + 2 * k, xa + k, 8 * sizeof(float4));
				memcpy(d + 2 * k + 8, xb + k, 8 * sizeof(float4));
			}
		}

	for (int o = p0; o < pend; o += 4)
	{
		v8sf		b8;
		v16sf		bvec;

		load_bias(&b8, bias, o, out_dim, 4);
		bvec = (v16sf) _mm512_broadcast_f32x8((__m256) b8);
		for (int r = r0; r < end; r += 8)
		{
			const float4 *xs[8];
			float4	   *ys[8];

			for (int j = 0; j < 8; j++)
			{
				xs[j] = x + (Size) (r + j) * ldx;
				ys[j] = y + (Size) (r + j) * ldy;
			}
			block_8x4(w, o, out_dim, in_dim, xs,
					  packed ? buf + (Size) (r - r0) * n8 : NULL, bvec,
					  bias != NULL, ys, relu);
		}
	}
}
#endif


/* One row, every output: blocks of eight outputs, the last one padded. */
static ALWAYS_INLINE void
row_all_outputs(const float4 *w, const float4 *bias, int out_dim, int in_dim,
				const float4 *x, float4 *y, bool relu)
{
	for (int o = 0; o < out_dim; o += 8)
	{
		v8sf		bvec;

		if (bias != NULL && o + 8 <= out_dim)
			bvec = LOAD(bias + o);
		else
			load_bias(&bvec, bias, o, out_dim, 8);
		block_1x8(w, o, out_dim, in_dim, x, &bvec, bias != NULL, y, relu);
	}
}

/*
 * The whole product; wide: the build has 32 vector registers (4 x 4
 * blocks).  Inlined into each build below.
 */
static ALWAYS_INLINE void
matmul_body(const float4 *w, const float4 *bias, int out_dim, int in_dim,
			const float4 *x, int ldx, int rows, float4 *y, int ldy,
			bool relu, bool wide)
{
	int			tile;
	int			panel;

	if (rows <= 0 || out_dim <= 0)
		return;
	if (rows == 1)
	{
		row_all_outputs(w, bias, out_dim, in_dim, x, y, relu);
		return;
	}

	/*
	 * A multiple of four rows per tile, at least four; of eight for the
	 * AVX-512 build's blocks of eight rows.
	 */
	if (wide)
	{
		tile = MATMUL_TILE_BYTES_WIDE / ((int) sizeof(float4) * Max(in_dim, 1));
		tile = Max(tile & ~7, 8);
	}
	else
	{
		tile = MATMUL_TILE_BYTES / ((int) sizeof(float4) * Max(in_dim, 1));
		tile = Max(tile & ~3, 4);
	}
	/* a multiple of four outputs per panel, at least four */
	panel = MATMUL_PANEL_BYTES / ((int) sizeof(float4) * Max(in_dim, 1));
	panel = Max(panel & ~3, 4);

	for (int p0 = 0; p0 < out_dim; p0 += panel)
	{
		int			pend = Min(out_dim, p0 + panel);

		for (int r0 = 0; r0 < rows; r0 += tile)
		{
			int			rend = Min(rows, r0 + tile);
			int			pairs_end = r0 + ((rend - r0) & ~1);
			int			r8 = r0;

#ifdef MATMUL_DISPATCH
			if (wide && rend - r0 >= 8)
			{
				r8 = r0 + ((rend - r0) & ~7);
				tile_8x4(w, bias, out_dim, in_dim, p0, pend, x, ldx, r0, r8,
						 y, ldy, relu);
			}
#endif

			for (int o = p0; o < pend; o += 4)
			{
				v8sf		bvec;
				int			r = r8;

				load_bias(&bvec, bias, o, out_dim, 4);
				if (wide)
				{
					for (; r + 4 <= pairs_end; r += 4)
					{
						const float4 *xs[4] = {x + (Size) r * ldx, x + (Size) (r + 1) * ldx,
						x + (Size) (r + 2) * ldx, x + (Size) (r + 3) * ldx};
						float4	   *ys[4] = {y + (Size) r * ldy, y + (Size) (r + 1) * ldy,
						y + (Size) (r + 2) * ldy, y + (Size) (r + 3) * ldy};

						block_4x4(w, o, out_dim, in_dim, xs, &bvec, bias != NULL,
								  ys, relu);
					}
				}
				for (; r < pairs_end; r += 2)
					block_2x4(w, o, out_dim, in_dim, x + (Size) r * ldx,
							  x + (Size) (r + 1) * ldx, &bvec, bias != NULL,
							  y + (Size) r * ldy, y + (Size) (r + 1) * ldy, relu);
			}
		}
	}
	/* an odd last row */
	if (rows & 1)
		row_all_outputs(w, bias, out_dim, in_dim, x + (Size) (rows - 1) * ldx,
						y + (Size) (rows - 1) * ldy, relu);
}

#define MATMUL_ARGS const float4 *w, const float4 *bias, int out_dim, \
	int in_dim, const float4 *x, int ldx, int rows, float4 *y, int ldy, \
	bool relu

typedef void (*matmul_fn) (MATMUL_ARGS);

static void
matmul_baseline(MATMUL_ARGS)
{
	matmul_body(w, bias, out_dim, in_dim, x, ldx, rows, y, ldy, relu, false);
}

#ifdef MATMUL_DISPATCH
__attribute__((target("arch=x86-64-v3")))
static void
matmul_v3(MATMUL_ARGS)
{
	matmul_body(w, bias, out_dim, in_dim, x, ldx, rows, y, ldy, relu, false);
}

#ifndef FCT_KERNEL_NO_V4
__attribute__((target("arch=x86-64-v4")))
static void
matmul_v4(MATMUL_ARGS)
{
	matmul_body(w, bias, out_dim, in_dim, x, ldx, rows, y, ldy, relu, true);
}
#endif
#endif

/* The build for this CPU. */
static matmul_fn
matmul_choose(void)
{
#ifdef MATMUL_DISPATCH
	__builtin_cpu_init();
#ifndef FCT_KERNEL_NO_V4
	if (__builtin_cpu_supports("x86-64-v4"))
		return matmul_v4;
#endif
	if (__builtin_cpu_supports("x86-64-v3"))
		return matmul_v3;
#endif
	return matmul_baseline;
}

void
kernel_matmul(const float4 *w, const float4 *bias, int out_dim, int in_dim,
			  const float4 *x, int ldx, int rows, float4 *y, int ldy,
			  bool relu)
{
	/* chosen on the first call; every backend chooses the same */
	static matmul_fn impl = NULL;

	if (kernel_variant == KERNEL_VARIANT_SCALAR)
	{
		kernel_matmul_scalar(w, bias, out_dim, in_dim, x, ldx, rows, y, ldy,
							 relu);
		return;
	}
	if (unlikely(impl == NULL))
		impl = matmul_choose();
	impl(w, bias, out_dim, in_dim, x, ldx, rows, y, ldy, relu);
}
