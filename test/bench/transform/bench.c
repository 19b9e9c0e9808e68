/*
 * bench.c
 *	  The arithmetic of an upgrade (src/upgrade/transform_apply.c and
 *	  src/kernels/matmul.c, compiled alone) against the BLAS path it replaced,
 *	  in one process:
 *
 *	  - sgemv: one cblas_sgemv per layer, same shapes, buffers ready, nothing
 *		else (no bias, no activation, no concatenation): the floor of the old
 *		one-row path (fct_upgrade and the operators used it, within 1%);
 *	  - one:   transform_apply_one, the per-row path of fct_upgrade and of
 *		the on-the-fly upgrade in the distance operators (kernel_matmul);
 *	  - batch: transform_apply_batch (one kernel_matmul per layer per block of
 *		rows), per row;
 *	  - sgemm: bare cblas_sgemm per layer over blocks of 512 rows (nothing
 *		else): the floor of the old batched path; and the core's FMA peak
 *		(independent 8-wide FMA chains, x86-64 with FMA only), in GFLOP/s
 *		beside the others.
 *
 *	  Prints the times per row and the ratios one/sgemv (what determinism
 *	  cost one row; target <= 1.5), one/batch (target >= 2.5), batch/sgemm
 *	  (what it cost a batch); fails unless the batched and single forms give
 *	  the same bits, and the same as the plain-loop reference
 *	  (kernel_variant = scalar).  Times are this thread's CPU time (the
 *	  machines are shared: time spent descheduled is not the arithmetic's).
 *	  Usage: bench OLD SIDE HIDDEN NEW ROWS SECONDS
 *	  The transformation has apple/ml-fct's shape: old OLD->HIDDEN (ReLU),
 *	  side SIDE->HIDDEN/8 (ReLU), mixer (HIDDEN+HIDDEN/8)->HIDDEN (ReLU)->NEW.
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include <cblas.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "miscadmin.h"

#include "kernels/variant.h"
#include "upgrade/transform.h"

/* variant.c (the GUC) is not linked: the variable alone. */
int			kernel_variant = KERNEL_VARIANT_AUTO;

/* port.h maps printf to pg_printf, which lives in the server: use libc's. */
#undef printf

/* What transform_apply.c needs from the server, for a standalone binary. */
void *
palloc(Size size)
{
	void	   *p = malloc(size);

	if (p == NULL)
		abort();
	return p;
}

void
pfree(void *pointer)
{
	free(pointer);
}

volatile sig_atomic_t InterruptPending = false;

void
ProcessInterrupts(void)
{
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64 rng = 88172645463325252ULL;

static float
frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float) ((rng >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
}

static float *
random_floats(size_t n, float scale)
{
	float	   *x = palloc(sizeof(float) * (n ? n : 1));

	for (size_t i = 0; i < n; i++)
		x[i] = frand() * scale;
	return x;
}

static void
make_layer(TransformLayer *l, int in, int out, bool relu)
{
	l->in_dim = in;
	l->out_dim = out;
	l->relu = relu;
	l->weight = random_floats((size_t) in * out, 2.0f / sqrtf((float) in));
	l->bias = random_floats(out, 0.1f);
}

/*
 * Single-precision FMA peak of this core in GFLOP/s: ten independent chains
 * of 8-wide FMAs (enough to cover the latency on two FMA pipes); 0 where
 * unavailable.
 */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma")))
static double
fma_peak_chains(double secs)
{
	__m256		a0 = _mm256_set1_ps(0.0f), a1 = _mm256_set1_ps(1.0f),
				a2 = _mm256_set1_ps(2.0f), a3 = _mm256_set1_ps(3.0f),
				a4 = _mm256_set1_ps(4.0f), a5 = _mm256_set1_ps(5.0f),
				a6 = _mm256_set1_ps(6.0f), a7 = _mm256_set1_ps(7.0f),
				a8 = _mm256_set1_ps(8.0f), a9 = _mm256_set1_ps(9.0f);
	__m256		b = _mm256_set1_ps(0.999999f);
	__m256		c = _mm256_set1_ps(1e-7f);
	double		best = 0;
	float		sink[8];

	for (int rep = 0; rep < 3; rep++)
	{
		long		iters = 0;
		double		t0 = now();
		double		t;

		do
		{
			for (int k = 0; k < 100000; k++)
			{
				a0 = _mm256_fmadd_ps(a0, b, c);
				a1 = _mm256_fmadd_ps(a1, b, c);
				a2 = _mm256_fmadd_ps(a2, b, c);
				a3 = _mm256_fmadd_ps(a3, b, c);
				a4 = _mm256_fmadd_ps(a4, b, c);
				a5 = _mm256_fmadd_ps(a5, b, c);
				a6 = _mm256_fmadd_ps(a6, b, c);
				a7 = _mm256_fmadd_ps(a7, b, c);
				a8 = _mm256_fmadd_ps(a8, b, c);
				a9 = _mm256_fmadd_ps(a9, b, c);
				__asm__ volatile("":"+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4),
								 "+x"(a5), "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9));
			}
			iters += 100000;
		} while ((t = now() - t0) < secs / 3);
		best = Max(best, iters * 10.0 * 16 / t / 1e9);
	}
	a0 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
	a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
	a0 = _mm256_add_ps(a0, _mm256_add_ps(a8, a9));
	_mm256_storeu_ps(sink, a0);
	if (sink[0] == 12345.0f)
		printf(" ");
	return best;
}

static double
fma_peak(double secs)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
		return 0;
	return fma_peak_chains(secs);
}

/*
 * The kernel's own ceiling: a multiply then an add (no FMA: -ffp-contract=off
 * and the definition round twice) on sixteen-lane vectors, twelve
 * independent chains; the AVX-512 build's batched form uses these.  On a CPU
 * whose AVX-512 units are full width this is about twice the 256-bit FMA
 * peak above; 0 without AVX-512.
 */
__attribute__((target("avx512f")))
static double
muladd512_peak_chains(double secs)
{
	__m512		a0 = _mm512_set1_ps(0.0f), a1 = _mm512_set1_ps(1.0f),
				a2 = _mm512_set1_ps(2.0f), a3 = _mm512_set1_ps(3.0f),
				a4 = _mm512_set1_ps(4.0f), a5 = _mm512_set1_ps(5.0f),
				a6 = _mm512_set1_ps(6.0f), a7 = _mm512_set1_ps(7.0f),
				a8 = _mm512_set1_ps(8.0f), a9 = _mm512_set1_ps(9.0f),
				a10 = _mm512_set1_ps(10.0f), a11 = _mm512_set1_ps(11.0f);
	__m512		b = _mm512_set1_ps(0.999999f);
	__m512		c = _mm512_set1_ps(1e-7f);
	double		best = 0;
	float		sink[16];

#define MULADD(v) v = _mm512_add_ps(_mm512_mul_ps(v, b), c)
	for (int rep = 0; rep < 3; rep++)
	{
		long		iters = 0;
		double		t0 = now();
		double		t;

		do
		{
			for (int k = 0; k < 100000; k++)
			{
				MULADD(a0); MULADD(a1); MULADD(a2); MULADD(a3);
				MULADD(a4); MULADD(a5); MULADD(a6); MULADD(a7);
				MULADD(a8); MULADD(a9); MULADD(a10); MULADD(a11);
				__asm__ volatile("":"+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4),
								 "+v"(a5), "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9),
								 "+v"(a10), "+v"(a11));
			}
			iters += 100000;
		} while ((t = now() - t0) < secs / 3);
		best = Max(best, iters * 12.0 * 32 / t / 1e9);
	}
#undef MULADD
	a0 = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
	a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
	a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
	_mm512_storeu_ps(sink, a0);
	if (sink[0] == 12345.0f)
		printf(" ");
	return best;
}

static double
muladd_peak(double secs)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512f"))
		return 0;
	return muladd512_peak_chains(secs);
}
#else
static double
fma_peak(double secs)
{
	return 0;
}

static double
muladd_peak(double secs)
{
	return 0;
}
#endif

int
main(int argc, char **argv)
{
	int			old_dim = argc > 1 ? atoi(argv[1]) : 128;
	int			side_dim = argc > 2 ? atoi(argv[2]) : 16;
	int			hidden = argc > 3 ? atoi(argv[3]) : 256;
	int			new_dim = argc > 4 ? atoi(argv[4]) : 128;
	int			rows = argc > 5 ? atoi(argv[5]) : 2048;
	double		secs = argc > 6 ? atof(argv[6]) : 0.5;
	int			side_hidden = hidden / 8 > 0 ? hidden / 8 : 1;
	TransformNet net;
	TransformPath path;
	const TransformNet *hops[1];
	float	   *old;
	float	   *side;
	float	   *out_one;
	float	   *out_batch;
	float	   *out_scalar;
	float	   *scratch;
	float	   *xin;
	float	   *yout;
	double		best_floor = 1e30,
				best_one = 1e30,
				best_batch = 1e30,
				best_sgemm = 1e30;
	double		peak;
	double		peak512;
	float	   *xblock;
	float	   *yblock;
	const int	sgemm_block = 512;
	int			rep;
	int			i;
	long		flops_per_row = 0;

	memset(&net, 0, sizeof(net));
	net.old_dim = old_dim;
	net.side_dim = side_dim;
	net.new_dim = new_dim;
	net.use_side = true;
	net.n_old = 1;
	net.n_side = 1;
	net.n_mixer = 2;
	net.layers = palloc(sizeof(TransformLayer) * 4);
	make_layer(&net.layers[0], old_dim, hidden, true);
	make_layer(&net.layers[1], side_dim, side_hidden, true);
	make_layer(&net.layers[2], hidden + side_hidden, hidden, true);
	make_layer(&net.layers[3], hidden, new_dim, false);
	net.old_out = hidden;
	net.side_out = side_hidden;
	net.max_width = Max(Max(old_dim, hidden + side_hidden), new_dim);
	hops[0] = &net;
	path.nhops = 1;
	path.hops = hops;
	path.max_width = net.max_width;
	for (i = 0; i < 4; i++)
		flops_per_row += 2L * net.layers[i].in_dim * net.layers[i].out_dim;

	old = random_floats((size_t) rows * old_dim, 2.0f);
	side = random_floats((size_t) rows * side_dim, 2.0f);
	out_one = palloc(sizeof(float) * (size_t) rows * new_dim);
	out_batch = palloc(sizeof(float) * (size_t) rows * new_dim);
	out_scalar = palloc(sizeof(float) * (size_t) rows * new_dim);
	scratch = palloc(sizeof(float) * 4 * path.max_width);
	xin = random_floats(path.max_width, 1.0f);
	yout = palloc(sizeof(float) * path.max_width);
	xblock = random_floats((size_t) sgemm_block * path.max_width, 1.0f);
	yblock = palloc(sizeof(float) * (size_t) sgemm_block * path.max_width);

	/* Alternate the four measurements; keep the best time of each. */
	for (rep = 0; rep < 5; rep++)
	{
		double		t0;
		double		t;
		long		n;

		n = 0;
		t0 = now();
		do
		{
			for (i = 0; i < rows; i++)
			{
				for (int l = 0; l < 4; l++)
				{
					const TransformLayer *L = &net.layers[l];

					cblas_sgemv(CblasRowMajor, CblasNoTrans, L->out_dim, L->in_dim,
								1.0f, L->weight, L->in_dim, xin, 1, 0.0f, yout, 1);
				}
			}
			n += rows;
		} while ((t = now() - t0) < secs);
		best_floor = Min(best_floor, t / n);

		n = 0;
		t0 = now();
		do
		{
			for (i = 0; i < rows; i++)
				transform_apply_one(&path, old + (size_t) i * old_dim,
									side + (size_t) i * side_dim,
									out_one + (size_t) i * new_dim, scratch);
			n += rows;
		} while ((t = now() - t0) < secs);
		best_one = Min(best_one, t / n);

		n = 0;
		t0 = now();
		do
		{
			transform_apply_batch(&path, old, side, rows, out_batch);
			n += rows;
		} while ((t = now() - t0) < secs);
		best_batch = Min(best_batch, t / n);

		n = 0;
		t0 = now();
		do
		{
			for (i = 0; i < rows; i += sgemm_block)
			{
				int			m = Min(sgemm_block, rows - i);

				for (int l = 0; l < 4; l++)
				{
					const TransformLayer *L = &net.layers[l];

					cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m,
								L->out_dim, L->in_dim, 1.0f, xblock, L->in_dim,
								L->weight, L->in_dim, 0.0f, yblock, L->out_dim);
				}
			}
			n += rows;
		} while ((t = now() - t0) < secs);
		best_sgemm = Min(best_sgemm, t / n);
	}
	peak = fma_peak(secs);
	peak512 = muladd_peak(secs);
	kernel_variant = KERNEL_VARIANT_SCALAR;
	transform_apply_batch(&path, old, side, rows, out_scalar);
	kernel_variant = KERNEL_VARIANT_AUTO;

	printf("shape: old %d->%d | side %d->%d | mixer %d->%d->%d  (%.2f MFLOP per row, %.1f MB of weights), %d rows\n",
		   old_dim, hidden, side_dim, side_hidden, hidden + side_hidden, hidden, new_dim,
		   flops_per_row / 1e6, flops_per_row * 2.0 / 1e6, rows);
	printf("  per row: old one row (sgemv) %.2f us | one row (transform_apply_one) %.2f us | batched (transform_apply_batch) %.2f us | old batched (bare sgemm) %.2f us\n",
		   best_floor * 1e6, best_one * 1e6, best_batch * 1e6, best_sgemm * 1e6);
	printf("  one row / old one row (sgemv):   %.2f   (target <= 1.5)\n", best_one / best_floor);
	printf("  one row / batched:               %.2f   (target >= 2.5)\n", best_one / best_batch);
	printf("  batched / old batched (sgemm):   %.2f\n", best_batch / best_sgemm);
	printf("  old one row / old batched:       %.2f\n", best_floor / best_sgemm);
	printf("  GFLOP/s: sgemv floor %.1f | one row %.1f | bare sgemm (blocks of %d) %.1f | batched %.1f | FMA peak (256-bit) %.1f | mul+add peak (512-bit) %.1f\n",
		   flops_per_row / best_floor / 1e9, flops_per_row / best_one / 1e9, sgemm_block,
		   flops_per_row / best_sgemm / 1e9, flops_per_row / best_batch / 1e9, peak, peak512);
	printf("  one row / batched at best: %.2f with the bare sgemm, %.2f at the 256-bit FMA peak, %.2f at the 512-bit mul+add peak\n",
		   best_one / best_sgemm, peak > 0 ? best_one * peak * 1e9 / flops_per_row : 0.0,
		   peak512 > 0 ? best_one * peak512 * 1e9 / flops_per_row : 0.0);
	printf("  FLOOR_US=%.4f ONE_US=%.4f BATCH_US=%.4f SGEMM_US=%.4f PEAK_GFLOPS=%.1f PEAK512_GFLOPS=%.1f\n", best_floor * 1e6,
		   best_one * 1e6, best_batch * 1e6, best_sgemm * 1e6, peak, peak512);
	if (memcmp(out_one, out_batch, sizeof(float) * (size_t) rows * new_dim) != 0)
	{
		printf("FAIL: the batched and single forms give different bits\n");
		return 1;
	}
	if (memcmp(out_scalar, out_batch, sizeof(float) * (size_t) rows * new_dim) != 0)
	{
		printf("FAIL: the vectorised kernel and the plain-loop reference give different bits\n");
		return 1;
	}
	printf("  the single, batched and plain-loop forms give the same bits\n");
	return 0;
}
