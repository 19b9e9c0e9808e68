/*
 * lshbound.c
 *	  Per-list bounds of the k-means family: how far a list's members lie
 *	  from its centre (kept in the list's directory item), and from that a
 *	  lower bound on the distance between a query and any member of the list.
 *
 * The ordered scan (lshscan.c) returns a row only when no list it has not
 * read can hold a nearer one, that is when the row's distance is at most the
 * smallest bound of the unread lists.  So rows come back in distance order,
 * and a WHERE filter on other columns, which the index does not see, gets
 * correct rows: the executor keeps asking, the scan keeps reading lists while
 * an unread list could still hold a better row, however many rows the filter
 * rejected.
 *
 * A member x of list l is c + r: c the list's centre, r its residual (for
 * inner product and cosine, of x's direction x / |x|, since their centres
 * are directions).  The directory item keeps, over the members ever added,
 * the smallest and largest |r| (rmin, rmax) and the largest |x| (maxnorm).
 * The bounds need <q, r>, which only Cauchy-Schwarz bounds for certain
 * (|<q, r>| <= |q| |r|); in D dimensions a residual that is not aligned with
 * the query gives |<q, r>| of about |q| |r| / sqrt(D), so the bound uses
 *	   <q, r> <= s |q| |r|,   s = min(1, fct.lsh_margin / sqrt(D)):
 * fct.lsh_margin standard deviations of a random direction (3 by default;
 * measured in test/bench/lsh/prototypes.py, "ordered": recall 0.98-1.0 at
 * 1%, 10%, 50% selectivity and unfiltered).  A margin of sqrt(D) or more is
 * Cauchy-Schwarz itself: the scan is then exact, in exact order.
 *
 *	 l2 (squared):  |q - x|^2 = |q - c|^2 + |r|^2 - 2 <q - c, r>
 *					>= min over |r| in [rmin, rmax] of dc^2 + |r|^2 - 2 s dc |r|
 *	 cosine:		1 - cos(q, x) >= 1 - <q', c> - s rmax		(q' = q / |q|)
 *	 inner product: -<q, x> = -|x| <q, x'> >= -maxnorm u when u > 0, else 0,
 *					u = min(|q|, <q, c> + s |q| rmax)
 *
 * The directory items only widen: an insert widens them before it writes its
 * entries (lshchain.c), VACUUM leaves them (a bound that is too wide is
 * still a bound), and fct_lsh_verify checks every entry against them.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "kernels/distance.h"
#include "lsh.h"
#include "utils/float.h"

double		lsh_margin = 3.0;

/* Whether the index keeps per-list bounds (the learned k-means family). */
bool
lsh_has_bounds(const LshMetaPageData *meta)
{
	return meta->learned && meta->family == LSH_FAMILY_KMEANS;
}

/* The directory item of a list no member was ever added to. */
void
lsh_item_init(LshListItem *item, BlockNumber head)
{
	item->head = head;
	item->insert_page = head;
	item->rmin = FLT_MAX;
	item->rmax = 0;
	item->maxnorm = 0;
}

/*
 * A member's residual norm and norm (see the file header).  Computed by one
 * function for the build, inserts and fct_lsh_verify, so they agree bit for
 * bit.
 */
void
lsh_member_geometry(const LshState *state, int list, const float *x,
					float *resid, float *norm)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	const float *c = state->params + (Size) list * dim;
	float8		n = sqrt(kernel_norm_squared(x, dim));

	*norm = (float) n;
	if (meta->metric == LSH_METRIC_L2)
		*resid = (float) sqrt(kernel_l2_squared(x, c, dim));
	else
	{
		/* |x/n - c|^2 = 1 - 2 <x, c> / n + |c|^2, without a copy of x */
		float8		r2;

		if (n > 0)
			r2 = 1.0 - 2.0 * kernel_inner_product(x, c, dim) / n + state->center_norm2[list];
		else
			r2 = state->center_norm2[list];
		*resid = (float) sqrt(Max(r2, 0.0));
	}
}

/* Widen item to hold a member of this geometry; whether it changed. */
bool
lsh_item_widen(LshListItem *item, float resid, float norm)
{
	bool		changed = false;

	if (resid < item->rmin)
	{
		item->rmin = resid;
		changed = true;
	}
	if (resid > item->rmax)
	{
		item->rmax = resid;
		changed = true;
	}
	if (norm > item->maxnorm)
	{
		item->maxnorm = norm;
		changed = true;
	}
	return changed;
}

/* Whether item's bounds hold a member of this geometry. */
bool
lsh_item_covers(const LshListItem *item, float resid, float norm)
{
	return resid >= item->rmin && resid <= item->rmax && norm <= item->maxnorm;
}

/*
 * lb[l]: no member of list l is nearer to q than lb[l], in the scan's
 * distance (lsh_distance: squared L2, cosine distance, negative inner
 * product).  A list with no member gets +infinity.  work: nlists floats.
 */
void
lsh_list_bounds(const LshState *state, const float *q, const LshListItem *items,
				float8 *lb, float *work)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	int			nlists = meta->nlists;
	float8		s = Min(1.0, lsh_margin / sqrt((double) Max(dim, 1)));
	float8		qn2 = kernel_norm_squared(q, dim);
	float8		qn = sqrt(qn2);
	float	   *dots = work;

	kernel_inner_product_batch(q, state->params, nlists, dim, dots);
	for (int l = 0; l < nlists; l++)
	{
		const LshListItem *it = &items[l];

		if (it->rmax < it->rmin)
		{
			lb[l] = get_float8_infinity();
			continue;
		}
		switch ((LshMetric) meta->metric)
		{
			case LSH_METRIC_L2:
				{
					float8		dc = sqrt(Max(qn2 - 2.0 * dots[l] + state->center_norm2[l], 0.0));
					float8		r = Min(Max(s * dc, (float8) it->rmin), (float8) it->rmax);

					lb[l] = Max(dc * dc + r * r - 2.0 * s * dc * r, 0.0);
				}
				break;
			case LSH_METRIC_COSINE:
				{
					float8		cosc = qn > 0 ? dots[l] / qn : 0;

					lb[l] = Max(1.0 - cosc - s * it->rmax, 0.0);
				}
				break;
			case LSH_METRIC_IP:
				{
					float8		u = Min(qn, dots[l] + s * qn * it->rmax);

					lb[l] = u > 0 ? -(float8) it->maxnorm * u : 0.0;
				}
				break;
		}
	}
}
