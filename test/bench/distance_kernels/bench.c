/*
 * bench.c
 *	  Throughput of fct's distance kernels (src/kernels/distance.c, linked as built
 *	  for the extension) against a plain scalar loop (scalar.c) and OpenBLAS's
 *	  cblas_sdot, for a few dimensions.
 *
 *	  bench [seconds_per_measurement]
 *
 * For each dimension, a query is scored against a pool of rows that fits in
 * the L2 cache (as the rows of a heap page would be); the methods are measured
 * in turn, ROUNDS times interleaved, and each keeps its best round, so that a
 * noisy neighbour on a shared machine hurts all of them alike.  Figures are
 * ratios to the scalar loop of the same run.  The program also checks every
 * method against a float8 reference and exits 1 on a mismatch.
 */
#include "postgres.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

#include "kernels/distance.h"
#include "bench.h"

/* port.h maps these to libpgport's versions, which a standalone program lacks. */
#undef printf
#undef fprintf

#define ROUNDS 5
#define POOL_BYTES (256 * 1024)

typedef double (*pair_fn) (const float *a, const float *b, int n);

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
blas_sdot(const float *a, const float *b, int n)
{
	return cblas_sdot(n, a, 1, b, 1);
}

static double
fct_ip(const float *a, const float *b, int n)
{
	return kernel_inner_product(a, b, n);
}

static double
fct_l2(const float *a, const float *b, int n)
{
	return kernel_l2_squared(a, b, n);
}

static double
fct_cos(const float *a, const float *b, int n)
{
	return kernel_cosine_distance(a, b, n);
}

static volatile double sink;

/* Pairs per second of fn over the pool, for about `secs` seconds. */
static double
measure(pair_fn fn, const float *q, const float *pool, int nrows, int n,
		double secs)
{
	long		pairs = 0;
	double		t0 = now_sec(),
				t;
	double		acc = 0;

	do
	{
		int			r;

		for (r = 0; r < nrows; r++)
			acc += fn(q, pool + (size_t) r * n, n);
		pairs += nrows;
		t = now_sec() - t0;
	} while (t < secs);
	sink = acc;
	return pairs / t;
}

static double
measure_batch(const float *q, const float *pool, int nrows, int n,
			  float *out, double secs)
{
	long		pairs = 0;
	double		t0 = now_sec(),
				t;

	do
	{
		kernel_inner_product_batch(q, pool, nrows, n, out);
		pairs += nrows;
		t = now_sec() - t0;
	} while (t < secs);
	sink = out[0];
	return pairs / t;
}

static int
check(const char *what, double got, double want)
{
	double		tol = 1e-4 * (fabs(want) + 1.0);

	if (isnan(got) || fabs(got - want) > tol)
	{
		fprintf(stderr, "MISMATCH %s: got %.9g, expected %.9g\n", what, got, want);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const int dims[] = {64, 128, 768};
	double		secs = argc > 1 ? atof(argv[1]) : 0.2;
	int			bad = 0;
	int			d;

	srandom(42);
	printf("pairs/s as ratio to the scalar loop (-O2 -fno-tree-vectorize); best of %d rounds\n",
		   ROUNDS);
	printf("%5s %12s | %8s %8s %8s | %8s %8s | %8s %8s\n",
		   "dim", "scalar ip/s", "fct ip", "sdot", "sgemv", "fct l2", "", "fct cos", "");
	printf("%5s %12s | %8s %8s %8s | %8s %8s | %8s %8s\n",
		   "", "", "/scalar", "/scalar", "/scalar", "/scalar", "l2/s", "/scalar", "cos/s");

	for (d = 0; d < (int) (sizeof(dims) / sizeof(dims[0])); d++)
	{
		int			n = dims[d];
		int			nrows = POOL_BYTES / (n * (int) sizeof(float));
		float	   *q = malloc(sizeof(float) * n);
		float	   *pool = malloc(sizeof(float) * (size_t) n * nrows);
		float	   *out = malloc(sizeof(float) * nrows);
		double		best[8] = {0};
		int			i,
					r;
		double		ip = 0,
					aa = 0,
					bb = 0,
					l2 = 0;

		for (i = 0; i < n; i++)
			q[i] = (float) random() / RAND_MAX - 0.5f;
		for (i = 0; i < n * nrows; i++)
			pool[i] = (float) random() / RAND_MAX - 0.5f;

		/* correctness against a float8 reference, on row 0 */
		for (i = 0; i < n; i++)
		{
			ip += (double) q[i] * pool[i];
			aa += (double) q[i] * q[i];
			bb += (double) pool[i] * pool[i];
			l2 += ((double) q[i] - pool[i]) * ((double) q[i] - pool[i]);
		}
		kernel_inner_product_batch(q, pool, nrows, n, out);
		bad += check("kernel_inner_product", kernel_inner_product(q, pool, n), ip);
		bad += check("kernel_inner_product_batch", out[0], ip);
		bad += check("kernel_l2_squared", kernel_l2_squared(q, pool, n), l2);
		bad += check("kernel_norm_squared", kernel_norm_squared(q, n), aa);
		bad += check("kernel_cosine_distance", kernel_cosine_distance(q, pool, n),
					 1.0 - ip / sqrt(aa * bb));
		bad += check("cblas_sdot", blas_sdot(q, pool, n), ip);
		bad += check("scalar_inner_product", scalar_inner_product(q, pool, n), ip);

		for (r = 0; r < ROUNDS; r++)
		{
			double		v[8];

			v[0] = measure(scalar_inner_product, q, pool, nrows, n, secs);
			v[1] = measure(fct_ip, q, pool, nrows, n, secs);
			v[2] = measure(blas_sdot, q, pool, nrows, n, secs);
			v[3] = measure_batch(q, pool, nrows, n, out, secs);
			v[4] = measure(scalar_l2_squared, q, pool, nrows, n, secs);
			v[5] = measure(fct_l2, q, pool, nrows, n, secs);
			v[6] = measure(scalar_cosine_distance, q, pool, nrows, n, secs);
			v[7] = measure(fct_cos, q, pool, nrows, n, secs);
			for (i = 0; i < 8; i++)
				if (v[i] > best[i])
					best[i] = v[i];
		}
		printf("%5d %12.3g | %8.2f %8.2f %8.2f | %8.2f %8.3g | %8.2f %8.3g\n",
			   n, best[0], best[1] / best[0], best[2] / best[0], best[3] / best[0],
			   best[5] / best[4], best[5], best[7] / best[6], best[7]);
		fflush(stdout);
		free(q);
		free(pool);
		free(out);
	}
	printf("(fct l2 and fct cos are against the scalar l2 and cosine loops)\n");
	return bad ? 1 : 0;
}
