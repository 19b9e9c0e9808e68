/*
 * lshcost.c
 *	  Cost estimation for lsh index scans.
 *
 * An lsh index only serves ORDER BY col <op> query: without an ordering
 * operator it is never chosen.  With one, the first row costs the first
 * widening step (the probed lists, read in full, plus ranking the lists), so
 * that is the startup cost; reading every list is the total cost.  The
 * planner then prefers the index under a small LIMIT, where it pays little
 * more than the startup cost, and the sequential scan plus sort without one.
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

void
lsh_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *indexStartupCost, Cost *indexTotalCost,
				 Selectivity *indexSelectivity, double *indexCorrelation,
				 double *indexPages)
{
	GenericCosts costs;
	Relation	index;
	int			nlists;
	int			dim;
	double		ratio;
	Cost		rank_cost;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	index = index_open(path->indexinfo->indexoid, NoLock);

	/*
	 * This transaction's buffered rows go in now: a parallel worker running
	 * the plan cannot see this backend's pending rows (lshpending.c).
	 */
	lsh_pending_flush(index);
	{
		LshState   *state = lsh_get_state(index);

		nlists = state->meta.nlists;
		dim = Max(state->meta.dim, 1);
	}
	index_close(index, NoLock);

	ratio = (double) lsh_effective_probes(nlists) / nlists;

	MemSet(&costs, 0, sizeof(costs));
	costs.numIndexTuples = Max(1.0, ratio * path->indexinfo->tuples);
	genericcostestimate(root, path, loop_count, &costs);

	/* ranking the lists: one inner product with each list's centre */
	rank_cost = cpu_operator_cost * nlists * Max(1.0, dim / 64.0);

	*indexStartupCost = costs.indexTotalCost + rank_cost;
	*indexTotalCost = rank_cost + costs.indexTotalCost / ratio;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = costs.numIndexPages;
}
