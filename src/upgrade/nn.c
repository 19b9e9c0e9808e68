/*
 * nn.c
 *	  Dense layers and Adam (nn.h): the forward and backward steps of a layer
 *	  over a minibatch, and the optimiser's update.
 */
#include "postgres.h"

#include <math.h>

#include <cblas.h>

#include "upgrade/nn.h"

/*
 * The elementwise loops are small functions of restrict parameters, one simple
 * statement each, so that the compiler vectorises them without alias checks
 * (and without branches on the ReLU's sign, which the data make
 * unpredictable); the Makefile adds -fno-math-errno and the dynamic vector
 * cost model for this file.
 */

/* row = max(row + b, 0) */
void
nn_add_bias_relu(float4 *restrict row, const float4 *restrict b, int n)
{
	for (int j = 0; j < n; j++)
	{
		float4		t = row[j] + b[j];

		row[j] = t > 0.0f ? t : 0.0f;
	}
}

/* row += b */
void
nn_add_bias(float4 *restrict row, const float4 *restrict b, int n)
{
	for (int j = 0; j < n; j++)
		row[j] += b[j];
}

/* dx = 0 where the ReLU was off (x <= 0) */
void
nn_mask_relu(float4 *restrict dx, const float4 *restrict x, int n)
{
	for (int j = 0; j < n; j++)
		dx[j] = x[j] > 0.0f ? dx[j] : 0.0f;
}

void
nn_layer_forward(NnLayer *L, int B)
{
	int			r;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, L->out, L->in,
				1.0f, L->x, L->ldx, L->w, L->in, 0.0f, L->y, L->ldy);
	for (r = 0; r < B; r++)
	{
		if (L->relu)
			nn_add_bias_relu(L->y + (Size) r * L->ldy, L->b, L->out);
		else
			nn_add_bias(L->y + (Size) r * L->ldy, L->b, L->out);
	}
}

void
nn_layer_backward(NnLayer *L, int B)
{
	int			r;

	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->out, L->in, B,
				1.0f, L->dy, L->ldy, L->x, L->ldx, 0.0f, L->gw, L->in);
	memset(L->gb, 0, sizeof(float4) * L->out);
	for (r = 0; r < B; r++)
		nn_add_bias(L->gb, L->dy + (Size) r * L->ldy, L->out);
	if (L->dx == NULL)
		return;
	/* dx has the layout of x when x is a buffer of ours (ld = ldx) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, L->in, L->out,
				1.0f, L->dy, L->ldy, L->w, L->in, 0.0f, L->dx, L->ldx);
	if (L->in_relu)
		for (r = 0; r < B; r++)
			nn_mask_relu(L->dx + (Size) r * L->ldx, L->x + (Size) r * L->ldx, L->in);
}

/* One step of Adam over every parameter, as torch.optim.Adam computes it. */
static void
nn_adam_update(float4 *restrict p, const float4 *restrict g, float4 *restrict m,
			float4 *restrict v, Size n, float step_size, float sbc2)
{
	const float b1 = 0.9f,
				b2 = 0.999f,
				eps = 1e-8f;

	for (Size i = 0; i < n; i++)
	{
		float		mi = b1 * m[i] + (1.0f - b1) * g[i];
		float		vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];

		m[i] = mi;
		v[i] = vi;
		p[i] -= step_size * mi / (sqrtf(vi) / sbc2 + eps);
	}
}

void
nn_adam_step(float4 *p, const float4 *g, float4 *m, float4 *v, Size n,
			 float lr, int64 step)
{
	const float b1 = 0.9f,
				b2 = 0.999f;
	float		bc1 = 1.0f - powf(b1, (float) step);
	float		sbc2 = sqrtf(1.0f - powf(b2, (float) step));
	float		step_size = lr / bc1;

	nn_adam_update(p, g, m, v, n, step_size, sbc2);
}
