/*
 * fit_mlp.c
 *	  The mlp fit: the apple/ml-fct shape with small widths (an old branch
 *	  Linear+ReLU, a side branch Linear+ReLU, their outputs concatenated, then
 *	  a mixer MLP), trained with Adam on the mean squared error in minibatches.
 *	  The layers and the optimiser are nn.c's; with the serial OpenBLAS and a
 *	  fixed seed the result is the same bit for bit on one machine.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"

#include "upgrade/fit.h"
#include "upgrade/nn.h"

typedef struct Net
{
	int			nlayers;
	NnLayer		layers[FIT_MAX_MIXER + 3];
	int			n_branch;		/* layers before the mixer (1 or 2) */
	int			side_layer;		/* index of the side layer, -1 when unused */
	Size		nparams;
	float4	   *params;
	float4	   *grads;
	float4	   *m;
	float4	   *v;
	float4	   *z;				/* concatenated branch outputs, B x zc */
	float4	   *dz;
	int			zc;
	int			batch;			/* rows the buffers hold */
} Net;

/* Lay out the layers, their parameters and buffers; initialise like torch's nn.Linear. */
static void
net_build(Net *N, const Pairs *P, const FitOptions *o, pg_prng_state *rng)
{
	int			widths[FIT_MAX_MIXER + 1];
	int			nw = 0;
	int			i,
				in;
	Size		off;
	int			B = o->batch_size;

	memset(N, 0, sizeof(Net));
	N->batch = B;
	N->zc = o->old_hidden + (P->sdim > 0 ? o->side_hidden : 0);
	N->z = palloc_extended(sizeof(float4) * (Size) B * N->zc, MCXT_ALLOC_HUGE);
	N->dz = palloc_extended(sizeof(float4) * (Size) B * N->zc, MCXT_ALLOC_HUGE);

	/* old branch: writes the first old_hidden columns of z */
	N->layers[0] = (NnLayer)
	{
		.in = P->dim,.out = o->old_hidden,.relu = true,.ldx = P->stride,
			.y = N->z,.dy = N->dz,.ldy = N->zc
	};
	N->nlayers = 1;
	N->side_layer = -1;
	if (P->sdim > 0)
	{
		N->side_layer = 1;
		N->layers[1] = (NnLayer)
		{
			.in = P->sdim,.out = o->side_hidden,.relu = true,.ldx = P->stride,
				.y = N->z + o->old_hidden,.dy = N->dz + o->old_hidden,.ldy = N->zc
		};
		N->nlayers = 2;
	}
	N->n_branch = N->nlayers;

	/* the mixer */
	for (i = 0; i < o->n_mixer; i++)
		widths[nw++] = o->mixer_hidden[i];
	widths[nw++] = P->ndim;
	in = N->zc;
	for (i = 0; i < nw; i++)
	{
		NnLayer	   *L = &N->layers[N->nlayers];
		NnLayer	   *prev = i > 0 ? &N->layers[N->nlayers - 1] : NULL;

		L->in = in;
		L->out = widths[i];
		L->relu = i < nw - 1;
		L->in_relu = true;
		L->x = prev ? prev->y : N->z;
		L->ldx = in;
		L->dx = prev ? prev->dy : N->dz;
		L->y = palloc_extended(sizeof(float4) * (Size) B * L->out, MCXT_ALLOC_HUGE);
		L->dy = palloc_extended(sizeof(float4) * (Size) B * L->out, MCXT_ALLOC_HUGE);
		L->ldy = L->out;
		in = L->out;
		N->nlayers++;
	}

	/* one block each for parameters, gradients and the Adam moments */
	N->nparams = 0;
	for (i = 0; i < N->nlayers; i++)
		N->nparams += (Size) N->layers[i].out * (N->layers[i].in + 1);
	N->params = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE);
	N->grads = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	N->m = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	N->v = palloc_extended(sizeof(float4) * N->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	off = 0;
	for (i = 0; i < N->nlayers; i++)
	{
		NnLayer	   *L = &N->layers[i];
		Size		nw_l = (Size) L->out * L->in;
		double		bound = 1.0 / sqrt((double) L->in);
		Size		k;

		L->w = N->params + off;
		L->gw = N->grads + off;
		L->b = L->w + nw_l;
		L->gb = L->gw + nw_l;
		for (k = 0; k < nw_l + L->out; k++)
			L->w[k] = (float4) ((2.0 * pg_prng_double(rng) - 1.0) * bound);
		off += nw_l + L->out;
	}
}

/* Forward B rows starting at rows (leading dimension P->stride); returns the prediction. */
static float4 *
net_forward(Net *N, const Pairs *P, const float4 *rows, int B)
{
	int			i;

	N->layers[0].x = rows;
	if (N->side_layer >= 0)
		N->layers[N->side_layer].x = rows + P->dim;
	for (i = 0; i < N->nlayers; i++)
		nn_layer_forward(&N->layers[i], B);
	return N->layers[N->nlayers - 1].y;
}

/* Sum of squared errors of the prediction for B rows; optionally the loss gradient. */
static double
net_sse(Net *N, const Pairs *P, const float4 *rows, int B, float4 *grad, float4 scale)
{
	NnLayer	   *last = &N->layers[N->nlayers - 1];
	const float4 *pred = last->y;
	int			off = P->dim + P->sdim;
	double		sse = 0;
	int			r,
				j;

	for (r = 0; r < B; r++)
	{
		const float4 *t = rows + (Size) r * P->stride + off;
		const float4 *y = pred + (Size) r * P->ndim;

		for (j = 0; j < P->ndim; j++)
		{
			float4		d = y[j] - t[j];

			sse += (double) d * d;
			if (grad)
				grad[(Size) r * P->ndim + j] = scale * d;
		}
	}
	return sse;
}

/* Mean squared error over rows [lo, hi), in batches. */
static double
net_loss(Net *N, const Pairs *P, int64 lo, int64 hi)
{
	double		sse = 0;
	int64		r;

	if (hi <= lo)
		return NAN;
	for (r = lo; r < hi; r += N->batch)
	{
		int			B = (int) Min(N->batch, hi - r);

		net_forward(N, P, PAIR_ROW(P, r), B);
		sse += net_sse(N, P, PAIR_ROW(P, r), B, NULL, 0);
		CHECK_FOR_INTERRUPTS();
	}
	return sse / ((double) (hi - lo) * P->ndim);
}

static void
divergence_error(double loss, int epoch, const FitOptions *o)
{
	ereport(ERROR,
			(errcode(ERRCODE_FLOATING_POINT_EXCEPTION),
			 errmsg("the mlp fit diverged at epoch %d (loss %g)", epoch, loss),
			 errhint("Lower options.lr (now %g).", o->lr)));
}

/*
 * The mlp's training loop.  What makes the defaults learn (issue #14: a
 * default fit on 300 pairs of new = [old, 2 old] ended at the mean
 * predictor's loss):
 *
 *	 - inputs standardised per coordinate and targets centred per coordinate
 *	   and scaled by one common factor (so the loss is still the plain mean
 *	   squared error, up to that factor), both with the training rows'
 *	   statistics and folded into the first and last layers at the end, so the
 *	   registered spec takes and gives raw embeddings;
 *	 - with epochs not given, enough epochs for FIT_MIN_STEPS steps;
 *	 - the learning rate decays along a cosine from lr to lr / 100 over the
 *	   planned steps;
 *	 - early stopping on the validation split: the weights of the epoch with
 *	   the lowest validation loss are kept, and training stops after
 *	   `patience` epochs without a better one.
 */
void
fit_mlp(Pairs *P, int64 val_n, const FitOptions *o, pg_prng_state *rng,
		FitResult *res)
{
	int			p = P->dim + P->sdim;
	int			off = p;
	int64		ntr = P->n - val_n;
	double	   *mu = palloc0(sizeof(double) * p);
	double	   *sd = palloc0(sizeof(double) * p);
	double	   *ymu = palloc0(sizeof(double) * P->ndim);
	double		yscale = 0;
	double		yscale2;
	int64	   *order = palloc_extended(sizeof(int64) * ntr, MCXT_ALLOC_HUGE);
	float4	   *batch;
	float4	   *best;
	Net			N;
	int64		r;
	int			j,
				epoch,
				epochs,
				patience,
				best_epoch = 0;
	int64		step = 0,
				steps_per_epoch,
				total_steps;
	double		best_val = INFINITY;
	double		train_seconds = 0;
	StringInfoData thist,
				vhist;

	/*
	 * Standardise the inputs with the training rows' statistics (in place;
	 * folded back into the first layers at the end).
	 */
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < p; j++)
			mu[j] += PAIR_ROW(P, r)[j];
	for (j = 0; j < p; j++)
		mu[j] /= (double) ntr;
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < p; j++)
		{
			double		d = PAIR_ROW(P, r)[j] - mu[j];

			sd[j] += d * d;
		}
	for (j = 0; j < p; j++)
	{
		sd[j] = sqrt(sd[j] / (double) ntr);
		if (!(sd[j] > 1e-12))
			sd[j] = 1.0;		/* a constant coordinate: centre it only */
	}

	/* the targets: centred per coordinate, one scale for all (the rms deviation) */
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < P->ndim; j++)
			ymu[j] += PAIR_ROW(P, r)[off + j];
	for (j = 0; j < P->ndim; j++)
		ymu[j] /= (double) ntr;
	for (r = val_n; r < P->n; r++)
		for (j = 0; j < P->ndim; j++)
		{
			double		d = PAIR_ROW(P, r)[off + j] - ymu[j];

			yscale += d * d;
		}
	yscale = sqrt(yscale / ((double) ntr * P->ndim));
	if (!(yscale > 1e-12))
		yscale = 1.0;
	yscale2 = yscale * yscale;

	for (r = 0; r < P->n; r++)
	{
		float4	   *row = PAIR_ROW(P, r);

		for (j = 0; j < p; j++)
			row[j] = (float4) ((row[j] - mu[j]) / sd[j]);
		for (j = 0; j < P->ndim; j++)
			row[off + j] = (float4) ((row[off + j] - ymu[j]) / yscale);
	}

	net_build(&N, P, o, rng);
	batch = palloc_extended(sizeof(float4) * (Size) o->batch_size * P->stride, MCXT_ALLOC_HUGE);
	best = palloc_extended(sizeof(float4) * N.nparams, MCXT_ALLOC_HUGE);
	for (r = 0; r < ntr; r++)
		order[r] = val_n + r;

	steps_per_epoch = (ntr + o->batch_size - 1) / o->batch_size;
	epochs = o->epochs;
	if (o->epochs_auto)
		epochs = (int) Min(FIT_MAX_AUTO_EPOCHS,
						   Max(FIT_DEFAULT_EPOCHS,
							   (FIT_MIN_STEPS + steps_per_epoch - 1) / steps_per_epoch));
	total_steps = steps_per_epoch * epochs;
	patience = o->patience > 0 ? o->patience : Max(10, epochs / 10);

	initStringInfo(&thist);
	initStringInfo(&vhist);
	for (epoch = 1; epoch <= epochs; epoch++)
	{
		instr_time	start,
					dur;
		double		sse = 0,
					val;

		INSTR_TIME_SET_CURRENT(start);
		/* a fresh order of the training rows each epoch */
		for (r = ntr - 1; r > 0; r--)
		{
			int64		k = (int64) pg_prng_uint64_range(rng, 0, (uint64) r);
			int64		t = order[r];

			order[r] = order[k];
			order[k] = t;
		}
		for (r = 0; r < ntr; r += o->batch_size)
		{
			int			B = (int) Min(o->batch_size, ntr - r);
			int			k;
			NnLayer	   *last = &N.layers[N.nlayers - 1];
			double		lr;

			CHECK_FOR_INTERRUPTS();
			for (k = 0; k < B; k++)
				memcpy(batch + (Size) k * P->stride, PAIR_ROW(P, order[r + k]),
					   sizeof(float4) * P->stride);
			net_forward(&N, P, batch, B);
			sse += net_sse(&N, P, batch, B, last->dy,
						   2.0f / ((float4) B * (float4) P->ndim));
			/* the branches' layers have dx NULL: no input gradient needed */
			for (k = N.nlayers - 1; k >= 0; k--)
				nn_layer_backward(&N.layers[k], B);

			/* cosine decay from lr to lr / 100 over the planned steps */
			lr = o->lr * (0.01 + 0.99 * 0.5 * (1.0 + cos(M_PI * (double) step / (double) total_steps)));
			nn_adam_step(N.params, N.grads, N.m, N.v, N.nparams, (float) lr, ++step);
		}
		INSTR_TIME_SET_CURRENT(dur);
		INSTR_TIME_SUBTRACT(dur, start);
		train_seconds += INSTR_TIME_GET_DOUBLE(dur);

		sse /= (double) ntr * P->ndim;
		if (!isfinite(sse))
			divergence_error(sse * yscale2, epoch, o);
		val = net_loss(&N, P, 0, val_n);
		appendStringInfoString(&thist, epoch > 1 ? "," : "[");
		fit_append_double(&thist, sse * yscale2);
		appendStringInfoString(&vhist, epoch > 1 ? "," : "[");
		fit_append_double(&vhist, val * yscale2);
		{
			char		extra[160];

			if (val_n > 0)
				snprintf(extra, sizeof(extra), "\"train_loss\":%.6g,\"val_loss\":%.6g,\"best_epoch\":%d",
						 sse * yscale2, val * yscale2, val < best_val ? epoch : best_epoch);
			else
				snprintf(extra, sizeof(extra), "\"train_loss\":%.6g", sse * yscale2);
			fit_progress("training", epoch, epochs, extra);
		}

		/* early stopping: keep the best weights, stop when they stay best */
		if (val_n > 0)
		{
			if (val < best_val)
			{
				best_val = val;
				best_epoch = epoch;
				memcpy(best, N.params, sizeof(float4) * N.nparams);
			}
			else if (epoch - best_epoch >= patience)
			{
				epoch++;
				break;
			}
		}
	}
	epochs = epoch - 1;
	appendStringInfoChar(&thist, ']');
	appendStringInfoChar(&vhist, ']');
	if (best_epoch > 0)
		memcpy(N.params, best, sizeof(float4) * N.nparams);

	res->train_loss = net_loss(&N, P, val_n, P->n) * yscale2;
	res->val_loss = net_loss(&N, P, 0, val_n) * yscale2;
	if (!isfinite(res->train_loss))
		divergence_error(res->train_loss, epochs, o);
	res->epochs = epochs;
	res->best_epoch = best_epoch;
	res->seconds = train_seconds;
	res->seconds_per_epoch = train_seconds / epochs;
	res->pairs_per_second = train_seconds > 0 ? (double) ntr * epochs / train_seconds : NAN;
	res->n_params = (int64) N.nparams;
	initStringInfo(&res->history);
	appendStringInfo(&res->history, "\"train_loss_history\":%s,\"val_loss_history\":%s,",
					 thist.data, vhist.data);

	/* fold the standardisation into the branches' first layers: W' = W / sd, b' = b - W' mu */
	for (j = 0; j < N.n_branch; j++)
	{
		NnLayer	   *L = &N.layers[j];
		int			base = (j == 0) ? 0 : P->dim;
		int			o_,
					i;

		for (o_ = 0; o_ < L->out; o_++)
		{
			float4	   *w = L->w + (Size) o_ * L->in;
			double		shift = 0;

			for (i = 0; i < L->in; i++)
			{
				w[i] = (float4) (w[i] / sd[base + i]);
				shift += (double) w[i] * mu[base + i];
			}
			L->b[o_] = (float4) (L->b[o_] - shift);
		}
	}
	/* and the targets' into the last layer: W' = s W, b' = s b + mean */
	{
		NnLayer	   *L = &N.layers[N.nlayers - 1];
		int			o_,
					i;

		for (o_ = 0; o_ < L->out; o_++)
		{
			float4	   *w = L->w + (Size) o_ * L->in;

			for (i = 0; i < L->in; i++)
				w[i] = (float4) (w[i] * yscale);
			L->b[o_] = (float4) (L->b[o_] * yscale + ymu[o_]);
		}
	}

	res->use_side = N.side_layer >= 0;
	res->n_old = 1;
	res->n_side = N.side_layer >= 0 ? 1 : 0;
	res->n_mixer = N.nlayers - N.n_branch;
	for (j = 0; j < N.nlayers; j++)
		res->layers[j] = (TransformLayer)
	{
		.in_dim = N.layers[j].in,.out_dim = N.layers[j].out,
			.relu = N.layers[j].relu,.weight = N.layers[j].w,.bias = N.layers[j].b
	};
}
