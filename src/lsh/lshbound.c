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
 * the smallest and largest |r| (rmin, rmax) and the largest |x| (maxnorm),
 * and the root mean square of the |r| the build added (rrms).  The bounds
 * need <q^, r> (q^ the unit vector of the direction that matters: q, q - c),
 * which only Cauchy-Schwarz bounds for certain (<q^, r> <= |r|), so they
 * allow
 *	   <q^, r> <= a = min(|r|, rrms s / (1 - s)),   s = min(1, fct.lsh_margin x unit),
 * with the index's unit measured at build (lshcalibrate.c): the default
 * margin 3 lets through 95% of sample queries' nearest neighbours.  s = 1 is
 * Cauchy-Schwarz itself: the scan is then exact, in exact order
 * (fct.lsh_margin = 1000 always gets there).
 *
 * Why rrms: a near neighbour of q in the list is a member whose residual
 * points towards q, and how far it reaches that way follows the list's
 * typical spread, not its one farthest member.  An allowance s rmax, which
 * indexes built before meta.bound_rms keep (a = s |r|), made a list with a
 * few outlying members look near every query: in the numpy prototype
 * (test/bench/lsh/README.md) rrms read 26-43% fewer rows at recall 0.95-0.99
 * on the MLP embeddings (cosine), 15-27% on Fashion-MNIST (L2), 5-12% on the
 * embeddings (inner product); the built indexes 16-23% fewer pages on the
 * first, up to 37% on the second.  (Indexes built before the unit was
 * measured take unit = 1 / sqrt(D).)
 *
 *	 l2 (squared):  |q - x|^2 = dc^2 + |r|^2 - 2 <q - c, r>,  dc = |q - c|
 *					>= min over |r| in [rmin, rmax] of dc^2 + |r|^2 - 2 dc a
 *	 cosine:		1 - cos(q, x) >= 1 - <q', c> - a			(q' = q / |q|)
 *	 inner product: -<q, x> = -|x| <q, x'> >= -maxnorm u when u > 0, else 0,
 *					u = min(|q|, <q, c> + |q| a)
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

/* rrms sits in the alignment padding of the items of older indexes: same layout */
StaticAssertDecl(MAXALIGN(sizeof(LshListItem)) == MAXALIGN(offsetof(LshListItem, rrms)),
				 "LshListItem grew past its old aligned size");

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
	item->rrms = 0;
}

/*
 * Each list's rrms from its members' residual norms (the build's pass, or
 * the sample's when a shape is simulated: lshranges.c): sum_r2[l] is the sum
 * of their squares, count[l] how many.
 */
void
lsh_items_set_rms(LshListItem *items, int nlists, const float8 *sum_r2, const int64 *count)
{
	for (int l = 0; l < nlists; l++)
		items[l].rrms = count[l] > 0 ? (float) sqrt(sum_r2[l] / (float8) count[l]) : 0;
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
 * s, the bounds' allowance for <q, r> per |q| |r| (see the file header):
 * fct.lsh_margin times the index's unit, at most 1 (Cauchy-Schwarz, exact).
 * The unit is measured at build (lshcalibrate.c: the margin 3 covers 95% of
 * sample queries' nearest neighbours); an index built before the measurement
 * uses 1 / sqrt(D), the spread of a random direction.
 */
double
lsh_bound_scale(const LshMetaPageData *meta)
{
	double		unit = meta->bound_unit > 0 ? meta->bound_unit
		: 1.0 / sqrt((double) Max(meta->dim, 1));

	return Min(1.0, lsh_margin * unit);
}

/*
 * The allowance for <q^, r> of a list's largest member for s (file header):
 * rrms s / (1 - s), at most rmax; for s < 0 (lsh_needed_scale's bisection),
 * rrms s.  Non-decreasing in s, rmax at s = 1.
 */
static inline float8
rms_allowance(float8 s, const LshListItem *it)
{
	if (s >= 1.0)
		return it->rmax;
	if (s < 0)
		return (float8) it->rrms * s;
	return Min((float8) it->rrms * s / (1.0 - s), (float8) it->rmax);
}

/*
 * The bound of one list (see the file header) for the allowance s: dot is
 * <q, c>, qn2 |q|^2, cn2 |c|^2; rms: the index's bounds use rrms
 * (meta.bound_rms), else the allowance is s |r|.  Non-increasing in s.
 */
static inline float8
list_bound(LshMetric metric, bool rms, float8 s, float8 qn2, float8 qn, float8 dot,
		   float8 cn2, const LshListItem *it)
{
	if (it->rmax < it->rmin)
		return get_float8_infinity();
	switch (metric)
	{
		case LSH_METRIC_L2:
			{
				float8		dc = sqrt(Max(qn2 - 2.0 * dot + cn2, 0.0));

				if (rms)
				{
					/*
					 * dc^2 + |r|^2 - 2 dc min(|r|, a): (dc - |r|)^2 up to
					 * |r| = a, rising beyond; below rmin, at rmin
					 */
					float8		a = rms_allowance(s, it);
					float8		r;

					if (a < it->rmin)
						return Max(dc * dc + (float8) it->rmin * it->rmin -
								   2.0 * dc * a, 0.0);
					r = Min(Max(dc, (float8) it->rmin), a);
					return (dc - r) * (dc - r);
				}
				else
				{
					float8		r = Min(Max(s * dc, (float8) it->rmin), (float8) it->rmax);

					return Max(dc * dc + r * r - 2.0 * s * dc * r, 0.0);
				}
			}
		case LSH_METRIC_COSINE:
			{
				float8		cosc = qn > 0 ? dot / qn : 0;
				float8		a = rms ? rms_allowance(s, it) : s * it->rmax;

				return Max(1.0 - cosc - a, 0.0);
			}
		case LSH_METRIC_IP:
			{
				float8		a = rms ? rms_allowance(s, it) : s * it->rmax;
				float8		u = Min(qn, dot + qn * a);

				return u > 0 ? -(float8) it->maxnorm * u : 0.0;
			}
	}
	return 0.0;
}

/*
 * lb[l]: no member of list l is nearer to q than lb[l], in the scan's
 * distance (lsh_distance: squared L2, cosine distance, negative inner
 * product).  A list with no member gets +infinity.  tie (NULL: not wanted):
 * each list's bound with no allowance (s = 0), the order among lists of
 * equal bounds (a query inside several lists' allowance has bound 0 for all
 * of them, and the list it hashes to, the nearest, should come first).
 * work: nlists floats, left holding <q, c> per list.
 */
void
lsh_list_bounds(const LshState *state, const float *q, const LshListItem *items,
				float8 *lb, float8 *tie, float *work)
{
	lsh_list_bounds_at(state, q, items, lsh_bound_scale(&state->meta), lb, tie, work);
}

/* lsh_list_bounds for the allowance s (the build's simulated scans: lshcalibrate.c). */
void
lsh_list_bounds_at(const LshState *state, const float *q, const LshListItem *items,
				   float8 s, float8 *lb, float8 *tie, float *work)
{
	const LshMetaPageData *meta = &state->meta;
	LshMetric	metric = (LshMetric) meta->metric;
	int			dim = meta->dim;
	int			nlists = meta->nlists;
	float8		qn2 = kernel_norm_squared(q, dim);
	float8		qn = sqrt(qn2);
	float	   *dots = work;
	bool		rms = meta->bound_rms != 0;

	kernel_inner_product_batch(q, state->params, nlists, dim, dots);
	for (int l = 0; l < nlists; l++)
	{
		lb[l] = list_bound(metric, rms, s, qn2, qn, dots[l], state->center_norm2[l], &items[l]);
		if (tie)
			tie[l] = list_bound(metric, rms, 0, qn2, qn, dots[l], state->center_norm2[l], &items[l]);
	}
}

/*
 * The list q hashes to (lsh_hash_batch, as an insert of q would), which the
 * scan reads first (lshscan.c, start_bounded): a query that is a row of the
 * table then finds itself before any other row, however far that row lies
 * from its list's centre.  An outlying member's own list can have a bound
 * above a row of another list (the allowance follows the list's typical
 * spread, lsh_bound_scale), and the scan would return that row first (TAP
 * 020's points on the boundary between two lists).  Only for distances (L2,
 * cosine): under the inner product a row is not its own nearest, and the
 * list q would be inserted into says nothing about where its answers lie.
 * -1 under the inner product.
 */
int
lsh_query_own_list(const LshState *state, const float *q)
{
	int			own;

	if ((LshMetric) state->meta.metric == LSH_METRIC_IP)
		return -1;
	lsh_hash_batch(state, q, 1, &own);
	return own;
}

/*
 * The least allowance s in [-1, 1] for which list's bound lets a member at
 * distance dist from q through (bound <= dist): what the scan needs to find
 * that member before any farther row.  Bisection, since the bound is
 * monotone in s; 1 when even Cauchy-Schwarz does not (rounding).
 */
double
lsh_needed_scale(const LshState *state, const float *q, int list,
				 const LshListItem *item, float8 dist)
{
	const LshMetaPageData *meta = &state->meta;
	int			dim = meta->dim;
	float8		qn2 = kernel_norm_squared(q, dim);
	float8		qn = sqrt(qn2);
	float8		dot = kernel_inner_product(q, state->params + (Size) list * dim, dim);
	float8		cn2 = state->center_norm2[list];
	float8		lo = -1.0;
	float8		hi = 1.0;
	bool		rms = meta->bound_rms != 0;

	if (list_bound((LshMetric) meta->metric, rms, lo, qn2, qn, dot, cn2, item) <= dist)
		return lo;
	for (int i = 0; i < 30; i++)
	{
		float8		mid = (lo + hi) / 2;

		if (list_bound((LshMetric) meta->metric, rms, mid, qn2, qn, dot, cn2, item) <= dist)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}
