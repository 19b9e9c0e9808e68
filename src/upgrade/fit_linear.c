/*
 * fit_linear.c
 *	  The linear fit: closed-form ridge regression on [old, side, 1], the
 *	  normal equations solved by LAPACK (Cholesky, sposv_, with an LU
 *	  fallback, sgesv_); the bias is not penalised.
 */
#include "postgres.h"

#include <math.h>

#include <cblas.h>

#include "miscadmin.h"
#include "portability/instr_time.h"

#include "upgrade/fit.h"

/*
 * LAPACK, from the same OpenBLAS library.  It is Fortran compiled by
 * gfortran: character arguments carry a hidden length after the others.
 */
extern void sposv_(const char *uplo, const int *n, const int *nrhs, float *a,
				   const int *lda, float *b, const int *ldb, int *info,
				   size_t uplo_len);
extern void sgesv_(const int *n, const int *nrhs, float *a, const int *lda,
				   int *ipiv, float *b, const int *ldb, int *info);

/* ------------------------------------------------------------ linear */

/*
 * Ridge regression: minimise |X W' + 1 b' - Y|^2 + lambda |W|^2 over the
 * training rows, X = [old, side].  With G = [X 1]'[X 1] + lambda diag(1..1, 0)
 * and R = [X 1]'Y, the solution solves G [W b]' = R.  G is symmetric, so its
 * row-major and column-major layouts agree; R is built transposed (new_dim x
 * (p+1), row-major), which is the column-major (p+1) x new_dim that LAPACK
 * wants, and the solution comes back in that layout: row j = [W_j, b_j].
 */
void
fit_linear(Pairs *P, int64 val_n, const FitOptions *o, FitResult *res)
{
	int			p = P->dim + P->sdim;
	int			p1 = p + 1;
	int			nd = P->ndim;
	int64		ntr = P->n - val_n;
	const float4 *X = PAIR_ROW(P, val_n);
	const float4 *Y = X + p;
	float4	   *G = palloc_extended(sizeof(float4) * (Size) p1 * p1, MCXT_ALLOC_HUGE);
	float4	   *Gcopy;
	float4	   *R = palloc_extended(sizeof(float4) * (Size) nd * p1, MCXT_ALLOC_HUGE);
	float4	   *Rcopy;
	double	   *colsum = palloc0(sizeof(double) * (p1 + nd));
	int			info = 0;
	int			i,
				j;
	int64		r;
	instr_time	start,
				dur;
	float4	   *pred;
	float4	   *W,
			   *bias;
	const int	chunk = 1024;
	double		sse;

	INSTR_TIME_SET_CURRENT(start);

	/* G = X'X in the top-left p x p block (ldc = p1), R = Y'X (ldc = p1) */
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, p, (int) ntr,
				1.0f, X, P->stride, X, P->stride, 0.0f, G, p1);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nd, p, (int) ntr,
				1.0f, Y, P->stride, X, P->stride, 0.0f, R, p1);
	for (r = 0; r < ntr; r++)
	{
		const float4 *row = X + (Size) r * P->stride;

		for (j = 0; j < p + nd; j++)
			colsum[j] += row[j];
		if ((r & 65535) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	for (i = 0; i < p; i++)
	{
		G[(Size) i * p1 + p] = (float4) colsum[i];
		G[(Size) p * p1 + i] = (float4) colsum[i];
		G[(Size) i * p1 + i] += (float4) o->lambda;
	}
	G[(Size) p * p1 + p] = (float4) ntr;
	for (j = 0; j < nd; j++)
		R[(Size) j * p1 + p] = (float4) colsum[p + j];

	/* Cholesky first; when G is not positive definite (lambda 0, rank-deficient X), LU */
	Gcopy = palloc_extended(sizeof(float4) * (Size) p1 * p1, MCXT_ALLOC_HUGE);
	Rcopy = palloc_extended(sizeof(float4) * (Size) nd * p1, MCXT_ALLOC_HUGE);
	memcpy(Gcopy, G, sizeof(float4) * (Size) p1 * p1);
	memcpy(Rcopy, R, sizeof(float4) * (Size) nd * p1);
	sposv_("U", &p1, &nd, G, &p1, R, &p1, &info, 1);
	if (info > 0)
	{
		int		   *ipiv = palloc(sizeof(int) * p1);

		memcpy(G, Gcopy, sizeof(float4) * (Size) p1 * p1);
		memcpy(R, Rcopy, sizeof(float4) * (Size) nd * p1);
		sgesv_(&p1, &nd, G, &p1, ipiv, R, &p1, &info);
		if (info > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the normal equations of the linear fit are singular"),
					 errdetail("%lld training pairs for %d coefficients per output, ridge lambda %g.",
							   (long long) ntr, p1, o->lambda),
					 errhint("Set options.lambda > 0, or give more (and more varied) pairs.")));
		pfree(ipiv);
	}
	if (info < 0)
		elog(ERROR, "LAPACK argument %d was invalid", -info);
	pfree(Gcopy);
	pfree(Rcopy);

	/* W (nd x p) and bias (nd) out of R's rows [W_j, b_j] */
	W = palloc_extended(sizeof(float4) * (Size) nd * p, MCXT_ALLOC_HUGE);
	bias = palloc(sizeof(float4) * nd);
	for (j = 0; j < nd; j++)
	{
		memcpy(W + (Size) j * p, R + (Size) j * p1, sizeof(float4) * p);
		bias[j] = R[(Size) j * p1 + p];
	}
	for (i = 0; i < nd * p; i++)
		if (!isfinite(W[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FLOATING_POINT_EXCEPTION),
					 errmsg("the linear fit produced non-finite weights"),
					 errhint("Set options.lambda > 0.")));

	INSTR_TIME_SET_CURRENT(dur);
	INSTR_TIME_SUBTRACT(dur, start);
	res->seconds = INSTR_TIME_GET_DOUBLE(dur);
	res->epochs = 0;
	res->best_epoch = 0;
	res->seconds_per_epoch = NAN;
	res->pairs_per_second = res->seconds > 0 ? ntr / res->seconds : NAN;
	res->n_params = (int64) nd * p1;

	/* losses, in chunks so that the prediction buffer stays small */
	pred = palloc(sizeof(float4) * chunk * nd);
	for (i = 0; i < 2; i++)
	{
		int64		lo = i == 0 ? val_n : 0;
		int64		hi = i == 0 ? P->n : val_n;

		sse = 0;
		for (r = lo; r < hi; r += chunk)
		{
			int			m = (int) Min(chunk, hi - r);
			int			k,
						c;

			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nd, p,
						1.0f, PAIR_ROW(P, r), P->stride, W, p, 0.0f, pred, nd);
			for (k = 0; k < m; k++)
				for (c = 0; c < nd; c++)
				{
					double		d = (double) pred[k * nd + c] + bias[c] -
						PAIR_ROW(P, r + k)[p + c];

					sse += d * d;
				}
			CHECK_FOR_INTERRUPTS();
		}
		if (i == 0)
			res->train_loss = sse / ((double) ntr * nd);
		else
			res->val_loss = hi > 0 ? sse / ((double) hi * nd) : NAN;
	}

	/* identity branches (side absent or null), one linear mixer layer */
	res->use_side = P->sdim > 0;
	res->n_old = 0;
	res->n_side = 0;
	res->n_mixer = 1;
	res->layers[0] = (TransformLayer)
	{
		.in_dim = p,.out_dim = nd,.relu = false,.weight = W,.bias = bias
	};
	initStringInfo(&res->history);
}
