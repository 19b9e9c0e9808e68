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
#include "kernels/matmul.h"
#include "kernels/variant.h"
#include "bench.h"

/* variant.c (the GUC) is not linked: the variable alone. */
int			kernel_variant = KERNEL_VARIANT_AUTO;

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

static double
blas_sgemv_batch(const float *q, const float *rows, int nrows, int n, float *out)
{
	cblas_sgemv(CblasRowMajor, CblasNoTrans, nrows, n, 1.0f, rows, n, q, 1, 0.0f, out, 1);
	return out[0];
}

static double
measure_sgemv(const float *q, const float *pool, int nrows, int n,
			  float *out, double secs)
{
	long		pairs = 0;
	double		t0 = now_sec(),
				t;

	do
	{
		blas_sgemv_batch(q, pool, nrows, n, out);
		pairs += nrows;
		t = now_sec() - t0;
	} while (t < secs);
	sink = out[0];
	return pairs / t;
}

/* FNV-1a over bytes, to compare the bits of two builds' results. */
static uint64
fnv(uint64 h, const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

/*
 * The bits of every kernel on fixed inputs of awkward widths (tails, one
 * lane, many blocks), hashed: run's two builds (the clone the CPU picks and
 * the baseline x86-64 one) must print the same digest.  Also fails unless
 * the plain-loop reference (kernel_variant = scalar) gives the same bits.
 */
static int
bits_digest(uint64 *digest)
{
	/* 1000: past the AVX-512 build's packing buffer, its unpacked 8 x 4 path */
	static const int widths[] = {1, 7, 8, 31, 33, 64, 100, 128, 300, 768, 1000};
	uint64		h[2] = {1469598103934665603ULL, 1469598103934665603ULL};

	for (int v = 0; v < 2; v++)
	{
		kernel_variant = v == 0 ? KERNEL_VARIANT_AUTO : KERNEL_VARIANT_SCALAR;
		srandom(7);
		for (int w = 0; w < (int) (sizeof(widths) / sizeof(widths[0])); w++)
		{
			int			n = widths[w];
			int			nrows = 37;
			float	   *q = malloc(sizeof(float) * n);
			float	   *rows = malloc(sizeof(float) * (size_t) n * nrows);
			float	   *out = malloc(sizeof(float) * nrows);

			for (int i = 0; i < n; i++)
				q[i] = (float) random() / RAND_MAX - 0.5f;
			for (int i = 0; i < n * nrows; i++)
				rows[i] = (float) random() / RAND_MAX - 0.5f;
			for (int r = 0; r < nrows; r++)
			{
				const float *x = rows + (size_t) r * n;
				double		d[4] = {kernel_inner_product(q, x, n), kernel_l2_squared(q, x, n),
				kernel_norm_squared(x, n), kernel_cosine_distance(q, x, n)};

				h[v] = fnv(h[v], d, sizeof(d));
			}
			kernel_inner_product_batch(q, rows, nrows, n, out);
			h[v] = fnv(h[v], out, sizeof(float) * nrows);
			/* a layer of 13 outputs (a partial block) over all 37 rows, bias and ReLU */
			{
				float	   *y = malloc(sizeof(float) * 13 * nrows);

				kernel_matmul(rows, rows + (size_t) n * nrows - 13, 13, n, rows + n, n, nrows - 1, y, 13, true);
				h[v] = fnv(h[v], y, sizeof(float) * 13 * (nrows - 1));
				kernel_matmul(rows, NULL, 13, n, rows, n, nrows, y, 13, false);
				h[v] = fnv(h[v], y, sizeof(float) * 13 * nrows);
				free(y);
			}
			free(q);
			free(rows);
			free(out);
		}
	}
	kernel_variant = KERNEL_VARIANT_AUTO;
	*digest = h[0];
	if (h[0] != h[1])
	{
		fprintf(stderr, "MISMATCH: the vectorised kernels and the plain-loop reference give different bits\n");
		return 1;
	}
	return 0;
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
	uint64		digest;

	bad += bits_digest(&digest);
	printf("BITS %016llx (a digest of every kernel's results on fixed inputs; the same for every build)\n",
		   (unsigned long long) digest);

	srandom(42);
	printf("pairs/s as ratio to the scalar loop (-O2 -fno-tree-vectorize); best of %d rounds\n",
		   ROUNDS);
	printf("%5s %12s | %8s %8s %8s %8s | %8s %8s | %8s %8s\n",
		   "dim", "scalar ip/s", "fct ip", "sdot", "fct batch", "sgemv", "fct l2", "", "fct cos", "");
	printf("%5s %12s | %8s %8s %8s %8s | %8s %8s | %8s %8s\n",
		   "", "", "/scalar", "/scalar", "/scalar", "/scalar", "/scalar", "l2/s", "/scalar", "cos/s");

	for (d = 0; d < (int) (sizeof(dims) / sizeof(dims[0])); d++)
	{
		int			n = dims[d];
		int			nrows = POOL_BYTES / (n * (int) sizeof(float));
		float	   *q = malloc(sizeof(float) * n);
		float	   *pool = malloc(sizeof(float) * (size_t) n * nrows);
		float	   *out = malloc(sizeof(float) * nrows);
		double		best[9] = {0};
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
		bad += check("cblas_sgemv", blas_sgemv_batch(q, pool, nrows, n, out), ip);
		bad += check("kernel_l2_squared", kernel_l2_squared(q, pool, n), l2);
		bad += check("kernel_norm_squared", kernel_norm_squared(q, n), aa);
		bad += check("kernel_cosine_distance", kernel_cosine_distance(q, pool, n),
					 1.0 - ip / sqrt(aa * bb));
		bad += check("cblas_sdot", blas_sdot(q, pool, n), ip);
		bad += check("scalar_inner_product", scalar_inner_product(q, pool, n), ip);

		for (r = 0; r < ROUNDS; r++)
		{
			double		v[9];

			v[0] = measure(scalar_inner_product, q, pool, nrows, n, secs);
			v[1] = measure(fct_ip, q, pool, nrows, n, secs);
			v[2] = measure(blas_sdot, q, pool, nrows, n, secs);
			v[3] = measure_batch(q, pool, nrows, n, out, secs);
			v[4] = measure(scalar_l2_squared, q, pool, nrows, n, secs);
			v[5] = measure(fct_l2, q, pool, nrows, n, secs);
			v[6] = measure(scalar_cosine_distance, q, pool, nrows, n, secs);
			v[7] = measure(fct_cos, q, pool, nrows, n, secs);
			v[8] = measure_sgemv(q, pool, nrows, n, out, secs);
			for (i = 0; i < 9; i++)
				if (v[i] > best[i])
					best[i] = v[i];
		}
		printf("%5d %12.3g | %8.2f %8.2f %8.2f %8.2f | %8.2f %8.3g | %8.2f %8.3g\n",
			   n, best[0], best[1] / best[0], best[2] / best[0], best[3] / best[0], best[8] / best[0],
			   best[5] / best[4], best[5], best[7] / best[6], best[7]);
		fflush(stdout);
		free(q);
		free(pool);
		free(out);
	}
	printf("(fct l2 and fct cos are against the scalar l2 and cosine loops)\n");
	return bad ? 1 : 0;
}
