/*
 * lshcost.c
 *	  Cost estimation for lsh index scans.
 *
 * An lsh index only serves ORDER BY col <op> query: without an ordering
 * operator it is never chosen.  Reading every list is the total cost.  The
 * startup cost is what the scan reads before the rows the query needs have
 * come out:
 *	 - the ordered scan (k-means, lshscan.c) must return k / s rows for a
 *	   LIMIT k under a WHERE filter that keeps a fraction s of the rows (the
 *	   executor drops the others), and returns a row only once no unread list
 *	   can beat it, so it reads several times those rows: LSH_ORDERED_READ
 *	   entries per row returned, plus its first lists.  A selective filter makes
 *	   the scan read much of the index; then an exact plan through another
 *	   index on the filtered columns (a bitmap scan and a sort) costs less,
 *	   and the planner takes it;
 *	 - the comparison families read their first step (fct.lsh_probes lists).
 * The planner then prefers the index under a small LIMIT, and the sequential
 * scan plus sort without one.
 *
 * Planning writes nothing: this transaction's pending rows are written when
 * the scan starts (lshscan.c) or before a parallel plan starts (lshpending.c).
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "lsh.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/float.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"

/*
 * Entries an ordered scan reads per row it returns, beyond its first list: a
 * row comes out only once the bounds of the unread lists are past it.
 */
#define LSH_ORDERED_READ	8.0

void
lsh_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *indexStartupCost, Cost *indexTotalCost,
				 Selectivity *indexSelectivity, double *indexCorrelation,
				 double *indexPages)
{
	GenericCosts costs;
	Relation	index;
	IndexOptInfo *info = path->indexinfo;
	int			nlists;
	int			dim;
	bool		bounded;
	double		tuples = Max(info->tuples, 1.0);
	double		startup_tuples;
	Cost		rank_cost;
	Cost		per_entry;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	index = index_open(info->indexoid, NoLock);
	{
		LshState   *state = lsh_get_state(index);

		nlists = Max(state->meta.nlists, 1);
		dim = Max(state->meta.dim, 1);
		bounded = lsh_has_bounds(&state->meta);
	}
	index_close(index, NoLock);

	if (bounded)
	{
		double		k = root->limit_tuples > 0 ? root->limit_tuples : tuples;
		Selectivity s = clauselist_selectivity(root, info->rel->baserestrictinfo,
											   info->rel->relid, JOIN_INNER, NULL);
		double		rows = Min(tuples, k / Max(s, 1.0 / tuples));

		startup_tuples = (double) lsh_bounded_first_lists() * tuples / nlists + LSH_ORDERED_READ * rows;
	}
	else
		startup_tuples = (double) lsh_effective_probes(nlists) * tuples / nlists;
	startup_tuples = Min(startup_tuples, tuples);

	/* reading all of it: the pages and an exact distance per entry */
	MemSet(&costs, 0, sizeof(costs));
	costs.numIndexTuples = tuples;
	genericcostestimate(root, path, loop_count, &costs);
	per_entry = cpu_operator_cost * Max(1.0, dim / 16.0);

	/* ranking the lists: one inner product with each list's centre */
	rank_cost = cpu_operator_cost * nlists * Max(1.0, dim / 16.0);

	*indexTotalCost = rank_cost + costs.indexTotalCost + per_entry * tuples;
	*indexStartupCost = rank_cost + (costs.indexTotalCost + per_entry * tuples) * startup_tuples / tuples;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = costs.numIndexPages;
}
