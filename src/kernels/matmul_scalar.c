/*
 * matmul_scalar.c
 *	  The definition of matmul.h as plain loops: the reference that
 *	  fct.kernel_variant = 'scalar' runs, so that a test can check that the
 *	  vectorised kernel_matmul gives the same bits.  The Makefile compiles
 *	  this file with vectorisation disabled (-fno-tree-vectorize), so that it
 *	  really is one float operation at a time, in the written order.
 */
#include "postgres.h"

#include "kernels/matmul.h"

void
kernel_matmul_scalar(const float4 *w, const float4 *bias, int out_dim,
					 int in_dim, const float4 *x, int ldx, int rows,
					 float4 *y, int ldy, bool relu)
{
	int			n8 = in_dim & ~7;

	for (int r = 0; r < rows; r++)
	{
		const float4 *xr = x + (Size) r * ldx;

		for (int o = 0; o < out_dim; o++)
		{
			const float4 *wo = w + (Size) o * in_dim;
			float4		lane[8] = {0};
			float4		t[4];
			float4		u[2];
			float4		s;

			for (int k = 0; k < n8; k += 8)
				for (int l = 0; l < 8; l++)
					lane[l] += wo[k + l] * xr[k + l];
			for (int j = 0; j < 4; j++)
				t[j] = lane[j] + lane[j + 4];
			for (int j = 0; j < 2; j++)
				u[j] = t[j] + t[j + 2];
			s = u[0] + u[1];
			for (int i = n8; i < in_dim; i++)
				s += wo[i] * xr[i];
			if (bias != NULL)
				s += bias[o];
			if (relu && !(s > 0.0f))
				s = 0.0f;
			y[(Size) r * ldy + o] = s;
		}
	}
}
