/*
 * transform_apply.c
 *	  The arithmetic of a transformation path: one vector through the layers
 *	  or a batch of rows (each layer over a whole block of rows at once).
 *	  No catalog, no models: transform.c resolves the path and its weights,
 *	  and the benchmark in test/bench/transform compiles this file alone.
 *
 * Every layer, in both forms, is one kernel_matmul (src/kernels/matmul.c),
 * which sums each output in one fixed order whether it computes one row or
 * a block of them, and rounds alike on every CPU: a row upgraded alone
 * (fct_upgrade, the operators), in a batch at any position
 * (fct_upgrade_batch), or by a migration gets the same bits, which is what
 * lets an index on the IMMUTABLE fct_upgrade find migrated rows.  The bias
 * and the ReLU are part of that kernel's definition too.  (The concatenation
 * and the hops are copies and carry nothing numeric.)
 */
#include "postgres.h"

#include "miscadmin.h"

#include "kernels/matmul.h"
#include "upgrade/transform.h"

/*
 * Rows per block of the batched form.  A block goes through every layer
 * before the next one starts, so that its activations stay in the core's
 * caches (kernel_matmul tiles each layer's product for L1 itself).  On the
 * ml-fct shape (0.56 MB of weights) 64 to 512 rows ran within 3% of each
 * other; more rows per block mean fewer passes over the weights when they
 * do not fit in the caches.  The scratch memory is 4 x block x the widest
 * layer, capped by TRANSFORM_BATCH_BYTES (wide transformations get smaller
 * blocks, never under TRANSFORM_BATCH_MIN_ROWS).  The block size changes no
 * bit of the result.
 */
#define TRANSFORM_BATCH_ROWS		512
#define TRANSFORM_BATCH_MIN_ROWS	128
#define TRANSFORM_BATCH_BYTES		(16 * 1024 * 1024)

/*
 * One vector through a stack of layers, into dst; p and q are scratch
 * buffers of the stack's widest layer.  No layers: a copy of width floats.
 */
static void
stack_one(const TransformLayer *layers, int n, const float4 *x, int width,
		  float4 *dst, float4 *p, float4 *q)
{
	const float4 *in = x;
	int			i;

	if (n == 0)
	{
		memcpy(dst, x, sizeof(float4) * width);
		return;
	}
	for (i = 0; i < n; i++)
	{
		const TransformLayer *l = &layers[i];
		float4	   *o = (i == n - 1) ? dst : ((i % 2 == 0) ? p : q);

		kernel_matmul(l->weight, l->bias, l->out_dim, l->in_dim, in, l->in_dim,
					  1, o, l->out_dim, l->relu);
		in = o;
	}
}

/*
 * Scratch layout for transform_apply_one: P, Q (ping-pong inside a stack),
 * CAT (the mixer's input), and the carry H between hops.  The hop's output
 * goes to H (or to out for the last hop): H is read only by the old branch,
 * which is done before the mixer writes it.
 */
void
transform_apply_one(const TransformPath *path, const float4 *old,
					const float4 *side, float4 *out, float4 *scratch)
{
	int32		w = path->max_width;
	float4	   *p = scratch;
	float4	   *q = scratch + w;
	float4	   *cat = scratch + 2 * w;
	float4	   *h = scratch + 3 * w;
	const float4 *x = old;
	int			k;

	if (path->nhops == 0)
	{
		memcpy(out, old, sizeof(float4) * path->max_width);
		return;
	}
	for (k = 0; k < path->nhops; k++)
	{
		const TransformNet *net = path->hops[k];
		float4	   *dst = (k == path->nhops - 1) ? out : h;

		stack_one(net->layers, net->n_old, x, net->old_dim, cat, p, q);
		if (net->use_side)
			stack_one(net->layers + net->n_old, net->n_side, side,
					  net->side_dim, cat + net->old_out, p, q);
		stack_one(net->layers + net->n_old + net->n_side, net->n_mixer, cat,
				  net->old_out + net->side_out, dst, p, q);
		x = dst;
	}
}

/*
 * A block of rows through a stack: X is rows x width with leading dimension
 * ldx; the result goes to dst with leading dimension ldd (a column offset of
 * the concatenation for the branches).  One kernel_matmul per layer.
 */
static void
stack_batch(const TransformLayer *layers, int n, const float4 *x, int ldx,
			int width, int rows, float4 *dst, int ldd, float4 *p, float4 *q)
{
	const float4 *in = x;
	int			ldin = ldx;
	int			i;
	int			r;

	if (n == 0)
	{
		for (r = 0; r < rows; r++)
			memcpy(dst + (Size) r * ldd, x + (Size) r * ldx, sizeof(float4) * width);
		return;
	}
	for (i = 0; i < n; i++)
	{
		const TransformLayer *l = &layers[i];
		bool		last = (i == n - 1);
		float4	   *o = last ? dst : ((i % 2 == 0) ? p : q);
		int			ldo = last ? ldd : l->out_dim;

		/* O (rows x out) = act(X (rows x in) * W^T + bias) */
		kernel_matmul(l->weight, l->bias, l->out_dim, l->in_dim, in, ldin,
					  rows, o, ldo, l->relu);
		in = o;
		ldin = ldo;
	}
}

void
transform_apply_batch(const TransformPath *path, const float4 *old,
					  const float4 *side, int n, float4 *out)
{
	int32		w = path->max_width;
	int			block;
	float4	   *buf;
	float4	   *p;
	float4	   *q;
	float4	   *cat;
	float4	   *h;
	int			start;
	int32		from_dim;
	int32		side_dim;
	int32		to_dim;

	if (n <= 0)
		return;
	if (path->nhops == 0)
	{
		memcpy(out, old, sizeof(float4) * (Size) n * path->max_width);
		return;
	}
	from_dim = path->hops[0]->old_dim;
	side_dim = path->hops[0]->side_dim;
	to_dim = path->hops[path->nhops - 1]->new_dim;
	block = TRANSFORM_BATCH_BYTES / ((int) sizeof(float4) * 4 * w);
	block = Max(Min(block, TRANSFORM_BATCH_ROWS), TRANSFORM_BATCH_MIN_ROWS);
	block = Min(block, n);

	buf = palloc(sizeof(float4) * (Size) 4 * block * w);
	p = buf;
	q = buf + (Size) block * w;
	cat = buf + (Size) 2 * block * w;
	h = buf + (Size) 3 * block * w;

	for (start = 0; start < n; start += block)
	{
		int			rows = Min(block, n - start);
		const float4 *x = old + (Size) start * from_dim;
		int			ldx = from_dim;
		const float4 *s = side + (Size) start * side_dim;
		int			k;

		CHECK_FOR_INTERRUPTS();
		for (k = 0; k < path->nhops; k++)
		{
			const TransformNet *net = path->hops[k];
			int			catw = net->old_out + net->side_out;
			bool		last = (k == path->nhops - 1);
			float4	   *dst = last ? out + (Size) start * to_dim : h;

			stack_batch(net->layers, net->n_old, x, ldx, net->old_dim, rows,
						cat, catw, p, q);
			if (net->use_side && net->side_out > 0)
				stack_batch(net->layers + net->n_old, net->n_side, s,
							net->side_dim, net->side_dim, rows,
							cat + net->old_out, catw, p, q);
			stack_batch(net->layers + net->n_old + net->n_side, net->n_mixer,
						cat, catw, catw, rows, dst, net->new_dim, p, q);
			x = dst;
			ldx = net->new_dim;
		}
	}
	pfree(buf);
}

