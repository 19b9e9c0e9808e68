/*
 * bench.c
 *	  The arithmetic of an upgrade (src/transform_apply.c, compiled alone)
 *	  against its floor, in one process:
 *
 *	  - floor: one cblas_sgemv per layer, same shapes, buffers ready, nothing
 *		else (no bias, no activation, no concatenation);
 *	  - one:   transform_apply_one, the per-row path of fct_upgrade and of
 *		the on-the-fly upgrade in the distance operators;
 *	  - batch: transform_apply_batch (one cblas_sgemm per layer per block of
 *		rows), per row.
 *
 *	  Prints the times per row and the ratios one/floor (target <= 2) and
 *	  one/batch (target >= 5); fails when the batched and single forms
 *	  disagree.  Times are this thread's CPU time (the machines are shared:
 *	  time spent descheduled is not the arithmetic's).
 *	  Usage: bench OLD SIDE HIDDEN NEW ROWS SECONDS
 *	  The transformation has apple/ml-fct's shape: old OLD->HIDDEN (ReLU),
 *	  side SIDE->HIDDEN/8 (ReLU), mixer (HIDDEN+HIDDEN/8)->HIDDEN (ReLU)->NEW.
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include <cblas.h>

#include "miscadmin.h"

#include "transform.h"

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
	float	   *scratch;
	float	   *xin;
	float	   *yout;
	double		best_floor = 1e30,
				best_one = 1e30,
				best_batch = 1e30;
	double		max_err = 0,
				max_abs = 0;
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
	scratch = palloc(sizeof(float) * 4 * path.max_width);
	xin = random_floats(path.max_width, 1.0f);
	yout = palloc(sizeof(float) * path.max_width);

	/* Alternate the three measurements; keep the best time of each. */
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
	}

	for (i = 0; i < rows * new_dim; i++)
	{
		max_err = Max(max_err, fabs((double) out_one[i] - out_batch[i]));
		max_abs = Max(max_abs, fabs((double) out_one[i]));
	}

	printf("shape: old %d->%d | side %d->%d | mixer %d->%d->%d  (%.2f MFLOP per row, %.1f MB of weights), %d rows\n",
		   old_dim, hidden, side_dim, side_hidden, hidden + side_hidden, hidden, new_dim,
		   flops_per_row / 1e6, flops_per_row * 2.0 / 1e6, rows);
	printf("  per row: sgemv floor %.2f us | one row (transform_apply_one) %.2f us | batched (sgemm) %.2f us\n",
		   best_floor * 1e6, best_one * 1e6, best_batch * 1e6);
	printf("  one row / sgemv floor: %.2f   (target <= 2)\n", best_one / best_floor);
	printf("  one row / batched:     %.2f   (target >= 5)\n", best_one / best_batch);
	printf("  FLOOR_US=%.4f ONE_US=%.4f BATCH_US=%.4f\n", best_floor * 1e6, best_one * 1e6, best_batch * 1e6);
	if (!(max_err <= 1e-4 * Max(max_abs, 1.0)))
	{
		printf("FAIL: batched and single forms differ by %g (largest value %g)\n", max_err, max_abs);
		return 1;
	}
	return 0;
}
