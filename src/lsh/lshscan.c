/*
 * lshscan.c
 *	  Ordered scans of an lsh index: ORDER BY col <op> query.
 *
 * The hash family ranks the lists for the query; the scan probes the best
 * fct.lsh_probes lists, computes the exact distance of every vector it finds
 * there (the vectors are in the index), sorts them and returns them in that
 * order.  When they run out (a WHERE filter on other columns rejected them, or
 * the query wants more rows than they hold), the scan widens: it probes the
 * next lists, twice as many each time, until the executor stops asking or
 * every list has been read.  So a filtered query still gets its k rows when k
 * rows qualify; the order is exact within each widening step, and a later
 * step only adds rows that hashed farther from the query.
 */
#include "postgres.h"

#include <math.h>

#include "access/relscan.h"
#include "lsh.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef struct LshCandidate
{
	float8		dist;
	ItemPointerData tid;
} LshCandidate;

typedef struct LshScanOpaqueData
{
	MemoryContext cxt;			/* per-query memory, reset by rescan */
	bool		started;
	bool		exhausted;
	bool		unordered;		/* NULL query: every row, in no order */
	float	   *q;
	int			nlists;
	int		   *order;			/* lists, most promising first */
	float	   *scores;			/* per list, smaller is more promising */
	int			sorted;			/* order[0 .. sorted) is in score order */
	int			next;			/* position in order of the next list to probe */
	int			batch;			/* lists in the next widening step */
	int64		examined;
	LshCandidate *cands;
	int			ncands;
	int			capacity;
	int			pos;
} LshScanOpaqueData;

typedef LshScanOpaqueData *LshScanOpaque;

/* Lists a scan probes first: the GUC, or 0.5% of the lists (at least 2). */
int
lsh_effective_probes(int nlists)
{
	int			probes = lsh_probes > 0 ? lsh_probes : Max(2, (nlists + 199) / 200);

	return Min(probes, nlists);
}

/* Most lists the adaptive first step probes. */
static inline int
adaptive_max_probes(int nlists)
{
	return Min(nlists, Max(8, nlists / 25));
}

IndexScanDesc
lsh_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	LshScanOpaque so = palloc0(sizeof(LshScanOpaqueData));

	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "lsh scan", ALLOCSET_DEFAULT_SIZES);
	scan->opaque = so;
	return scan;
}

void
lsh_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
	MemoryContextReset(so->cxt);
	so->started = false;
	so->exhausted = false;
	so->cands = NULL;
	so->ncands = so->pos = so->capacity = 0;
	so->examined = 0;
}

static const float *sort_scores;

static int
cmp_lists(const void *a, const void *b)
{
	float		x = sort_scores[*(const int *) a];
	float		y = sort_scores[*(const int *) b];

	return x < y ? -1 : x > y ? 1 : 0;
}

/* x before y: nearer first, then by TID (a total order: deterministic results) */
static inline bool
cand_before(const LshCandidate *x, const LshCandidate *y)
{
	if (x->dist != y->dist)
		return x->dist < y->dist;
	return ItemPointerCompare((ItemPointer) &x->tid, (ItemPointer) &y->tid) < 0;
}

/*
 * The candidates of a step form a binary min-heap: building it is linear and
 * each row returned costs log(n), so a LIMIT 10 query does not pay for
 * sorting every candidate (a full qsort was a third of a query's CPU time).
 */
static void
sift_down(LshCandidate *h, int n, int i)
{
	LshCandidate x = h[i];

	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && cand_before(&h[c + 1], &h[c]))
			c++;
		if (!cand_before(&h[c], &x))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

static void
start_scan(IndexScanDesc scan)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	LshState   *state;
	MemoryContext oldcxt;
	int			nlists;

	/* this transaction's own rows first (inserts are buffered) */
	lsh_pending_flush(scan->indexRelation);
	state = lsh_get_state(scan->indexRelation);
	oldcxt = MemoryContextSwitchTo(so->cxt);
	nlists = state->meta.nlists;

	so->started = true;
	pgstat_count_index_scan(scan->indexRelation);
	so->nlists = nlists;
	so->next = 0;
	so->order = palloc(sizeof(int) * nlists);
	for (int l = 0; l < nlists; l++)
		so->order[l] = l;
	so->sorted = nlists;			/* no query: any order */

	if (!state->meta.has_model)
	{
		/* nothing was ever inserted */
		so->exhausted = true;
	}
	else if (scan->numberOfOrderBys == 0 ||
			 (scan->orderByData[0].sk_flags & SK_ISNULL))
	{
		/* ORDER BY col <op> NULL: all distances are NULL, any order is right */
		so->unordered = true;
		so->batch = nlists;
	}
	else
	{
		Embedding  *q = DatumGetEmbeddingP(scan->orderByData[0].sk_argument);
		float	   *scores;

		lsh_check_value(scan->indexRelation, &state->meta, q, true);
		so->q = palloc(sizeof(float) * q->dim);
		memcpy(so->q, EMBEDDING_VEC(q), sizeof(float) * q->dim);
		scores = so->scores = palloc(sizeof(float) * nlists);
		lsh_rank_lists(state, so->q, scores);
		if (lsh_probes == 0 && state->meta.learned &&
			state->meta.family == LSH_FAMILY_KMEANS &&
			state->meta.metric != LSH_METRIC_L2)
		{
			/*
			 * Adaptive first step: the lists whose estimated score (inner
			 * product: mean norm x cosine; cosine: cosine) is at least
			 * fct.lsh_probe_ratio of the best one's.  Where the query sits
			 * well inside one list (separated clusters) that is one list;
			 * where lists score alike it is several.  Measured: 0.9994
			 * recall@10 at about one list's candidates on the mixture set,
			 * 0.97 on Fashion-MNIST where a fixed 2 probes gave 0.77.
			 * Only those lists are sorted now; the rest when the scan widens.
			 */
			int			best = 0;
			int			m = 0;
			int			cap = adaptive_max_probes(nlists);
			float		bound;

			for (int l = 1; l < nlists; l++)
				if (scores[l] < scores[best])
					best = l;
			/* scores are negated similarities: keep -s <= -ratio * s_best */
			bound = scores[best] < 0 ? (float) (scores[best] * lsh_probe_ratio) : scores[best];
			for (int l = 0; l < nlists; l++)
				if (scores[l] <= bound)
				{
					so->order[l] = so->order[m];
					so->order[m++] = l;
				}
			sort_scores = scores;
			qsort(so->order, m, sizeof(int), cmp_lists);
			sort_scores = NULL;
			so->sorted = m;
			so->batch = Min(m, cap);
		}
		else
		{
			int			probes = lsh_effective_probes(nlists);

			if (probes <= 16)
			{
				/*
				 * A few probes: select those lists (sorting all 2,000 scores
				 * of a million-row index cost more than probing one list)
				 */
				for (int i = 0; i < probes; i++)
				{
					int			m = i;
					int			t;

					for (int l = i + 1; l < nlists; l++)
						if (scores[so->order[l]] < scores[so->order[m]])
							m = l;
					t = so->order[i];
					so->order[i] = so->order[m];
					so->order[m] = t;
				}
				so->sorted = probes;
			}
			else
			{
				sort_scores = scores;
				qsort(so->order, nlists, sizeof(int), cmp_lists);
				sort_scores = NULL;
				so->sorted = nlists;
			}
			so->batch = probes;
		}
	}
	MemoryContextSwitchTo(oldcxt);
}

/* Read one list's entries into the candidate array. */
static void
probe_list(IndexScanDesc scan, const LshState *state, int list)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	int			dim = state->meta.dim;
	LshMetric	metric = state->meta.metric;
	OffsetNumber off;
	BlockNumber blk = lsh_dir_block(&state->meta, list, &off);
	Buffer		buf;
	Page		page;

	buf = ReadBuffer(index, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	blk = ((LshListItem *) PageGetItem(page, PageGetItemId(page, off)))->head;
	UnlockReleaseBuffer(buf);

	while (BlockNumberIsValid(blk))
	{
		OffsetNumber maxoff;

		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);
		if (so->ncands + maxoff > so->capacity)
		{
			int			cap = Max(1024, Max(so->capacity * 2, so->ncands + maxoff));

			if (so->cands == NULL)
				so->cands = MemoryContextAlloc(so->cxt, sizeof(LshCandidate) * cap);
			else
				so->cands = repalloc(so->cands, sizeof(LshCandidate) * cap);
			so->capacity = cap;
		}
		for (OffsetNumber i = FirstOffsetNumber; i <= maxoff; i++)
		{
			ItemId		iid = PageGetItemId(page, i);
			LshEntry   *entry;
			LshCandidate *c;

			if (!ItemIdIsNormal(iid))
				continue;
			entry = (LshEntry *) PageGetItem(page, iid);
			c = &so->cands[so->ncands++];
			c->tid = entry->heap_tid;
			c->dist = so->unordered ? 0 : lsh_distance(metric, so->q, entry->x, dim);
		}
		blk = LshPageGetOpaque(page)->next;
		UnlockReleaseBuffer(buf);
	}
}

/* The next widening step: probe the next batch of lists. */
static void
probe_batch(IndexScanDesc scan)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	LshState   *state = lsh_get_state(scan->indexRelation);
	int			end = Min(so->nlists, so->next + so->batch);
	int64		before;

	so->ncands = 0;
	so->pos = 0;
	if (end > so->sorted)
	{
		/* widening past the lists the first step sorted: sort the rest */
		sort_scores = so->scores;
		qsort(so->order + so->sorted, so->nlists - so->sorted, sizeof(int), cmp_lists);
		sort_scores = NULL;
		so->sorted = so->nlists;
	}
	while (so->next < end)
	{
		before = so->ncands;
		probe_list(scan, state, so->order[so->next++]);
		so->examined += so->ncands - before;
		if (lsh_max_candidates > 0 && so->examined >= lsh_max_candidates)
		{
			so->exhausted = true;
			break;
		}
	}
	if (so->next >= so->nlists)
		so->exhausted = true;
	so->batch *= 2;
	if (!so->unordered)
		for (int i = so->ncands / 2 - 1; i >= 0; i--)
			sift_down(so->cands, so->ncands, i);
}

bool
lsh_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;

	if (!so->started)
		start_scan(scan);

	while (so->pos >= so->ncands)
	{
		if (so->exhausted)
			return false;
		probe_batch(scan);
	}

	if (so->unordered)
		scan->xs_heaptid = so->cands[so->pos++].tid;
	else
	{
		/* pop the heap's minimum; pos counts the rows returned */
		scan->xs_heaptid = so->cands[0].tid;
		so->ncands--;
		if (so->ncands > 0)
		{
			so->cands[0] = so->cands[so->ncands];
			sift_down(so->cands, so->ncands, 0);
		}
		so->pos = 0;
	}
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	return true;
}

void
lsh_endscan(IndexScanDesc scan)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;

	MemoryContextDelete(so->cxt);
	pfree(so);
	scan->opaque = NULL;
}
