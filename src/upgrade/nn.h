/*
 * nn.h
 *	  Dense layers and Adam, for the networks fct trains in a backend.
 *
 * A layer is a linear map with a bias, optionally followed by a ReLU, over a
 * minibatch of rows held in row-major buffers with their own leading
 * dimensions (a layer may write a slice of a wider buffer, as the fit's two
 * branches write their concatenation).  Every matrix product is one
 * cblas_sgemm of the serial OpenBLAS; the elementwise loops are written so
 * that the compiler vectorises them (the Makefile gives nn.c the flags), and
 * nothing here draws random numbers: with the same inputs, the same bits.
 *
 * Used by the transformation fit (fit_mlp.c); the row steps (nn_add_bias_relu,
 * nn_add_bias, nn_mask_relu) are what any network over float rows needs, and
 * the labels' prior adapter (labels/adapter.c) trains with them.
 */
#ifndef FCT_NN_H
#define FCT_NN_H

#include "postgres.h"

typedef struct NnLayer
{
	int			in;
	int			out;
	bool		relu;			/* ReLU on the output */
	bool		in_relu;		/* the input is a ReLU output (mask its gradient) */
	float4	   *w;				/* out x in, row-major, in the parameter block */
	float4	   *b;
	float4	   *gw;				/* gradients, in the gradient block */
	float4	   *gb;
	const float4 *x;			/* input rows, leading dimension ldx */
	int			ldx;
	float4	   *y;				/* output rows, leading dimension ldy */
	int			ldy;
	float4	   *dy;				/* gradient of the output, same layout as y */
	float4	   *dx;				/* gradient of the input (NULL: not needed) */
} NnLayer;

/* row = max(row + b, 0), row += b; dx = 0 where x <= 0 (the ReLU was off) */
extern void nn_add_bias_relu(float4 *restrict row, const float4 *restrict b, int n);
extern void nn_add_bias(float4 *restrict row, const float4 *restrict b, int n);
extern void nn_mask_relu(float4 *restrict dx, const float4 *restrict x, int n);

/* y = act(x W' + b) for B rows; the gradients of W, b (and x when dx is set) from dy */
extern void nn_layer_forward(NnLayer *L, int B);
extern void nn_layer_backward(NnLayer *L, int B);

/*
 * One step of Adam (step counts from 1) over n parameters p with gradients g
 * and moments m, v, as torch.optim.Adam computes it (betas 0.9, 0.999, eps 1e-8).
 */
extern void nn_adam_step(float4 *p, const float4 *g, float4 *m, float4 *v, Size n,
						 float lr, int64 step);

#endif							/* FCT_NN_H */
