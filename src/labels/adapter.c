/*
 * adapter.c
 *	  The prior adapter (Demirel et al., "Adjusting Pretrained Backbones for
 *	  Performativity", 2024): a small MLP that predicts the next round's label
 *	  proportions from the deployed model's per-label accuracies.
 *
 * Architecture C -> H -> H -> C, ReLU hidden layers, softmax output, trained
 * full-batch with Adam on the KL divergence KL(p_next || q) between the
 * observed proportions of round r + 1 and the prediction from the accuracies
 * of round r, each pair weighted by recency^(last round - (r + 1)) so that
 * recent rounds count more.  Every product is a cblas_sgemm over the whole
 * batch of pairs; the initial weights come from pg_prng seeded with the
 * user's seed, and the serial OpenBLAS is deterministic, so a fit is
 * reproducible.  The output bias starts at the log of the weighted mean
 * target, so an untrained adapter already predicts the recent average prior.
 *
 * Size: 2 C H + H^2 + 2 H + C weights, four copies while training (weights,
 * gradient, two Adam moments).  C is limited to ADAPTER_MAX_LABELS (with
 * H = 256: 5.2 million weights, 83 MB while training); larger label sets get
 * a clear error that points to EM, whose cost is linear in C.
 *
 * Weights are stored flat in fct_prior_adapters.weights:
 *	 W1 (C x H), b1 (H), W2 (H x H), b2 (H), W3 (H x C), b3 (C), row-major.
 *
 * The row steps (bias, ReLU, the ReLU's gradient mask, a bias's gradient) are
 * upgrade/nn.c's.  Its dense layers are not used (they store W as out x in,
 * this format in x out), nor its Adam: this one takes its bias corrections in
 * double, nn_adam_step in float, and stored adapters keep the bits they had.
 */
#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "labels/labels.h"
#include "miscadmin.h"
#include "model/model.h"
#include "query/query.h"
#include "upgrade/nn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#define ADAPTER_MAX_LABELS	10000
#define ADAPTER_MAX_HIDDEN	4096
#define ADAM_BETA1			0.9
#define ADAM_BETA2			0.999
#define ADAM_EPS			1e-8

typedef struct Mlp
{
	int			C;
	int			H;
	Size		n;				/* number of parameters */
	float4	   *p;				/* all parameters, flat */
	float4	   *W1,
			   *b1,
			   *W2,
			   *b2,
			   *W3,
			   *b3;
} Mlp;

static Size
mlp_size(int C, int H)
{
	return (Size) C * H + H + (Size) H * H + H + (Size) H * C + C;
}

/* Point the named pieces into a flat buffer. */
static void
mlp_bind(Mlp *m, float4 *p)
{
	m->p = p;
	m->W1 = p;
	m->b1 = m->W1 + (Size) m->C * m->H;
	m->W2 = m->b1 + m->H;
	m->b2 = m->W2 + (Size) m->H * m->H;
	m->W3 = m->b2 + m->H;
	m->b3 = m->W3 + (Size) m->H * m->C;
}

/* Activations of a forward pass over N rows. */
typedef struct MlpActs
{
	float4	   *H1;				/* N x H, after ReLU */
	float4	   *H2;				/* N x H, after ReLU */
	float8	   *Q;				/* N x C, softmax output */
	float4	   *Z;				/* N x C, logits */
} MlpActs;

/* Each of the N rows of A (N x H) plus b, through a ReLU when relu. */
static void
add_bias_relu(float4 *A, const float4 *b, int N, int H, bool relu)
{
	for (int i = 0; i < N; i++)
	{
		if (relu)
			nn_add_bias_relu(A + (Size) i * H, b, H);
		else
			nn_add_bias(A + (Size) i * H, b, H);
	}
}

/* gb = the column sums of the N x H gradient D: the gradient of a bias */
static void
bias_gradient(float4 *gb, const float4 *D, int N, int H)
{
	memset(gb, 0, sizeof(float4) * H);
	for (int i = 0; i < N; i++)
		nn_add_bias(gb, D + (Size) i * H, H);
}

/* D = 0 where the ReLU output A (N x H) was off */
static void
mask_relu(float4 *D, const float4 *A, int N, int H)
{
	for (int i = 0; i < N; i++)
		nn_mask_relu(D + (Size) i * H, A + (Size) i * H, H);
}

static void
mlp_forward(const Mlp *m, const float4 *X, int N, MlpActs *a)
{
	int			C = m->C,
				H = m->H;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, H, C,
				1.0f, X, C, m->W1, H, 0.0f, a->H1, H);
	add_bias_relu(a->H1, m->b1, N, H, true);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, H, H,
				1.0f, a->H1, H, m->W2, H, 0.0f, a->H2, H);
	add_bias_relu(a->H2, m->b2, N, H, true);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, H,
				1.0f, a->H2, H, m->W3, C, 0.0f, a->Z, C);
	add_bias_relu(a->Z, m->b3, N, C, false);
	for (int i = 0; i < N; i++)
	{
		const float4 *z = a->Z + (Size) i * C;
		float8	   *q = a->Q + (Size) i * C;
		float8		mx = -INFINITY,
					s = 0.0;

		for (int c = 0; c < C; c++)
			mx = Max(mx, (float8) z[c]);
		for (int c = 0; c < C; c++)
		{
			q[c] = exp(z[c] - mx);
			s += q[c];
		}
		for (int c = 0; c < C; c++)
			q[c] /= s;
	}
}

static MlpActs
mlp_acts_alloc(int N, int C, int H)
{
	MlpActs		a;

	a.H1 = palloc(sizeof(float4) * (Size) N * H);
	a.H2 = palloc(sizeof(float4) * (Size) N * H);
	a.Z = palloc(sizeof(float4) * (Size) N * C);
	a.Q = palloc(sizeof(float8) * (Size) N * C);
	return a;
}

static void
check_adapter_size(const char *name, int C, int H)
{
	if (C > ADAPTER_MAX_LABELS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("label set \"%s\" has %d labels, the prior adapter supports at most %d",
						name, C, ADAPTER_MAX_LABELS),
				 errdetail("The adapter has 2 x C x hidden + hidden^2 weights: %.0f for this set.",
						   (double) mlp_size(C, H)),
				 errhint("Estimate the prior with fct_estimate_prior_em instead: its cost grows "
						 "linearly with the number of labels and it needs no round history.")));
}

/*
 * Check a vector of per-label values from fct_label_rounds or a caller:
 * C finite entries in [0, 1] without nulls; with is_prior, also summing to 1
 * (within FCT_PRIOR_TOLERANCE; renormalised).  Zeros are allowed.
 */
static void
read_round_vector(ArrayType *arr, int C, bool is_prior, const char *what, float4 *out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	float8		sum = 0.0;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT, &elems, &nulls, &n);
	if (n != C)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has %d entries, the label set has %d labels", what, n, C)));
	for (int i = 0; i < C; i++)
	{
		float4		v;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what)));
		v = DatumGetFloat4(elems[i]);
		if (!isfinite(v) || v < 0 || v > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must lie between 0 and 1", what),
					 errdetail("Entry %d is %g.", i + 1, v)));
		out[i] = v;
		sum += v;
	}
	if (is_prior)
	{
		if (fabs(sum - 1.0) > FCT_PRIOR_TOLERANCE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must sum to 1", what),
					 errdetail("It sums to %g; the tolerance is %g.", sum, FCT_PRIOR_TOLERANCE)));
		for (int i = 0; i < C; i++)
			out[i] = (float4) (out[i] / sum);
	}
}

static float4
uniform(pg_prng_state *rng, float8 limit)
{
	return (float4) ((2.0 * pg_prng_double(rng) - 1.0) * limit);
}

/*
 * fct_fit_prior_adapter(label_set, hidden, epochs, lr, seed, recency) ->
 * the final weighted KL loss.
 */
PG_FUNCTION_INFO_V1(fct_fit_prior_adapter);
Datum
fct_fit_prior_adapter(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			H = PG_GETARG_INT32(1);
	int			epochs = PG_GETARG_INT32(2);
	float4		lr = PG_GETARG_FLOAT4(3);
	int64		seed = PG_GETARG_INT64(4);
	float4		recency = PG_GETARG_FLOAT4(5);
	LabelSet   *ls;
	int			C;
	int			R;
	int32	   *rounds;
	float4	   *acc;
	float4	   *prop;
	int			N = 0;
	float4	   *X;
	float4	   *P;
	float8	   *wt;
	float8		wsum = 0.0;
	int32		last;
	Mlp			m,
				g;
	float4	   *mom1,
			   *mom2;
	MlpActs		a;
	float4	   *G,
			   *dH;
	pg_prng_state rng;
	float8		loss = 0.0;
	char	   *sql;

	if (H < 1 || H > ADAPTER_MAX_HIDDEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hidden must be between 1 and %d, not %d", ADAPTER_MAX_HIDDEN, H)));
	if (epochs < 1 || epochs > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epochs must be between 1 and 1000000, not %d", epochs)));
	if (!(lr > 0) || !isfinite(lr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lr must be positive")));
	if (!(recency > 0 && recency <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recency must be in (0, 1], not %g", recency)));

	ls = labelset_get(name, false);
	C = ls->n_labels;
	check_adapter_size(ls->name, C, H);

	/* the round history */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Datum		arg = CStringGetTextDatum(ls->name);
		Oid			argtype = TEXTOID;

		sql = psprintf("SELECT round, accuracies, proportions FROM %s "
					   "WHERE label_set " SQL_EQ " $1 ORDER BY round",
					   query_ext_name("fct_label_rounds"));
		if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read fct_label_rounds");
	}
	R = (int) SPI_processed;
	rounds = palloc(sizeof(int32) * Max(R, 1));
	acc = palloc(sizeof(float4) * (Size) Max(R, 1) * C);
	prop = palloc(sizeof(float4) * (Size) Max(R, 1) * C);
	for (int r = 0; r < R; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		rounds[r] = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		read_round_vector(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 2, &isnull)), C, false,
						  psprintf("accuracies of round %d", rounds[r]), acc + (Size) r * C);
		read_round_vector(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull)), C, true,
						  psprintf("proportions of round %d", rounds[r]), prop + (Size) r * C);
	}

	/* pairs (accuracies of round r, proportions of round r + 1) */
	X = palloc(sizeof(float4) * (Size) Max(R, 1) * C);
	P = palloc(sizeof(float4) * (Size) Max(R, 1) * C);
	wt = palloc(sizeof(float8) * Max(R, 1));
	last = R > 0 ? rounds[R - 1] : 0;
	for (int r = 0; r + 1 < R; r++)
	{
		if (rounds[r + 1] != rounds[r] + 1)
			continue;
		memcpy(X + (Size) N * C, acc + (Size) r * C, sizeof(float4) * C);
		memcpy(P + (Size) N * C, prop + (Size) (r + 1) * C, sizeof(float4) * C);
		wt[N] = pow(recency, last - rounds[r + 1]);
		wsum += wt[N];
		N++;
	}
	if (N == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("label set \"%s\" has no round history to fit the prior adapter on", ls->name),
				 errdetail("%d rounds recorded; the adapter learns from pairs of consecutive rounds "
						   "(accuracies of round r, proportions of round r + 1).", R),
				 errhint("Record each deployment round in fct_label_rounds.")));
	for (int i = 0; i < N; i++)
		wt[i] /= wsum;

	/* seeded initialisation */
	m.C = g.C = C;
	m.H = g.H = H;
	m.n = g.n = mlp_size(C, H);
	mlp_bind(&m, palloc0(sizeof(float4) * m.n));
	mlp_bind(&g, palloc0(sizeof(float4) * g.n));
	mom1 = palloc0(sizeof(float4) * m.n);
	mom2 = palloc0(sizeof(float4) * m.n);
	pg_prng_seed(&rng, (uint64) seed);
	for (Size i = 0; i < (Size) C * H; i++)
		m.W1[i] = uniform(&rng, sqrt(6.0 / C));
	for (Size i = 0; i < (Size) H * H; i++)
		m.W2[i] = uniform(&rng, sqrt(6.0 / H));
	for (Size i = 0; i < (Size) H * C; i++)
		m.W3[i] = uniform(&rng, 0.1 * sqrt(6.0 / (H + C)));
	for (int c = 0; c < C; c++)
	{
		float8		mean = 0.0;

		for (int i = 0; i < N; i++)
			mean += wt[i] * P[(Size) i * C + c];
		m.b3[c] = (float4) log(Max(mean, 1e-6));
	}

	a = mlp_acts_alloc(N, C, H);
	G = palloc(sizeof(float4) * (Size) N * C);
	dH = palloc(sizeof(float4) * (Size) N * H);
	for (int ep = 1; ep <= epochs; ep++)
	{
		float8		b1c = 1.0 - pow(ADAM_BETA1, ep);
		float8		b2c = 1.0 - pow(ADAM_BETA2, ep);

		mlp_forward(&m, X, N, &a);
		loss = 0.0;
		for (int i = 0; i < N; i++)
			for (int c = 0; c < C; c++)
			{
				Size		o = (Size) i * C + c;
				float8		p = P[o];
				float8		q = Max(a.Q[o], 1e-30);

				if (p > 0)
					loss += wt[i] * p * log(p / q);
				/* d loss / d logit = w (q - p) */
				G[o] = (float4) (wt[i] * (a.Q[o] - p));
			}

		/* output layer */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, C, N,
					1.0f, a.H2, H, G, C, 0.0f, g.W3, C);
		bias_gradient(g.b3, G, N, C);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, H, C,
					1.0f, G, C, m.W3, C, 0.0f, dH, H);
		mask_relu(dH, a.H2, N, H);
		/* second hidden layer */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, N,
					1.0f, a.H1, H, dH, H, 0.0f, g.W2, H);
		bias_gradient(g.b2, dH, N, H);
		{
			float4	   *dH1 = a.H2;	/* H2 is no longer needed: reuse it */

			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, H, H,
						1.0f, dH, H, m.W2, H, 0.0f, dH1, H);
			mask_relu(dH1, a.H1, N, H);
			/* first hidden layer */
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, H, N,
						1.0f, X, C, dH1, H, 0.0f, g.W1, H);
			bias_gradient(g.b1, dH1, N, H);
		}

		/* Adam */
		for (Size i = 0; i < m.n; i++)
		{
			float4		gi = g.p[i];

			mom1[i] = (float4) (ADAM_BETA1 * mom1[i] + (1 - ADAM_BETA1) * gi);
			mom2[i] = (float4) (ADAM_BETA2 * mom2[i] + (1 - ADAM_BETA2) * gi * gi);
			m.p[i] -= (float4) (lr * (mom1[i] / b1c) / (sqrt(mom2[i] / b2c) + ADAM_EPS));
		}
		CHECK_FOR_INTERRUPTS();
	}
	/* the loss of the final weights */
	mlp_forward(&m, X, N, &a);
	loss = 0.0;
	for (int i = 0; i < N; i++)
		for (int c = 0; c < C; c++)
		{
			Size		o = (Size) i * C + c;

			if (P[o] > 0)
				loss += wt[i] * P[o] * log(P[o] / Max(a.Q[o], 1e-30));
		}

	/* store */
	{
		Datum	   *d = palloc(sizeof(Datum) * m.n);
		Datum		args[10];
		Oid			argtypes[10] = {TEXTOID, INT4OID, INT4OID, INT4OID, FLOAT4OID,
		INT8OID, FLOAT4OID, INT4OID, FLOAT8OID, FLOAT4ARRAYOID};

		for (Size i = 0; i < m.n; i++)
			d[i] = Float4GetDatum(m.p[i]);
		args[0] = CStringGetTextDatum(ls->name);
		args[1] = Int32GetDatum(C);
		args[2] = Int32GetDatum(H);
		args[3] = Int32GetDatum(epochs);
		args[4] = Float4GetDatum(lr);
		args[5] = Int64GetDatum(seed);
		args[6] = Float4GetDatum(recency);
		args[7] = Int32GetDatum(N);
		args[8] = Float8GetDatum(loss);
		args[9] = PointerGetDatum(construct_array(d, (int) m.n, FLOAT4OID, sizeof(float4),
												  true, TYPALIGN_INT));
		sql = psprintf("INSERT INTO %s AS a "
					   "(label_set, n_labels, hidden, epochs, lr, seed, recency, n_pairs, loss, weights) "
					   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
					   "ON CONFLICT (label_set) DO UPDATE SET n_labels = $2, hidden = $3, epochs = $4, "
					   "lr = $5, seed = $6, recency = $7, n_pairs = $8, loss = $9, weights = $10, "
					   "trained_at = pg_catalog.now()", query_ext_name("fct_prior_adapters"));
		if (SPI_execute_with_args(sql, 10, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not store the prior adapter");
	}
	SPI_finish();
	PG_RETURN_FLOAT8(loss);
}

/* fct_predict_prior(label_set, accuracies real[]) -> real[] */
PG_FUNCTION_INFO_V1(fct_predict_prior);
Datum
fct_predict_prior(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *accs = PG_GETARG_ARRAYTYPE_P(1);
	LabelSet   *ls;
	int			C;
	int			H;
	int			nstored;
	Mlp			m;
	MlpActs		a;
	float4	   *x;
	float4	   *w;
	float8	   *p;
	char	   *sql;
	Datum		arg;
	Oid			argtype = TEXTOID;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	ArrayType  *warr;

	ls = labelset_get(name, false);
	C = ls->n_labels;
	check_adapter_size(ls->name, C, 256);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg = CStringGetTextDatum(ls->name);
	sql = psprintf("SELECT n_labels, hidden, weights FROM %s WHERE label_set " SQL_EQ " $1",
				   query_ext_name("fct_prior_adapters"));
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fct_prior_adapters");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("label set \"%s\" has no fitted prior adapter", ls->name),
				 errhint("SELECT fct_fit_prior_adapter('%s') fits one on fct_label_rounds.", ls->name)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	nstored = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	H = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	if (nstored != C)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the prior adapter of label set \"%s\" was fitted for %d labels, the set has %d",
						ls->name, nstored, C),
				 errhint("Fit it again with fct_fit_prior_adapter.")));
	warr = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull));
	if (ARR_NDIM(warr) != 1 || ARR_HASNULL(warr) ||
		(Size) ArrayGetNItems(ARR_NDIM(warr), ARR_DIMS(warr)) != mlp_size(C, H))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the prior adapter of label set \"%s\" has the wrong number of weights", ls->name),
				 errhint("Fit it again with fct_fit_prior_adapter.")));
	/*
	 * The weights outlive SPI_finish, which frees everything allocated since
	 * SPI_connect (warr itself may point into the tuple table or a detoasted
	 * copy there): copy them into the caller's context.
	 */
	w = SPI_palloc(sizeof(float4) * mlp_size(C, H));
	memcpy(w, ARR_DATA_PTR(warr), sizeof(float4) * mlp_size(C, H));
	SPI_finish();

	x = palloc(sizeof(float4) * C);
	read_round_vector(accs, C, false, "accuracies", x);
	m.C = C;
	m.H = H;
	m.n = mlp_size(C, H);
	mlp_bind(&m, w);
	a = mlp_acts_alloc(1, C, H);
	mlp_forward(&m, x, 1, &a);
	p = a.Q;
	prior_floor(p, C);
	PG_RETURN_ARRAYTYPE_P(prior_array(p, C));
}
