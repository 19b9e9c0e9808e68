/*
 * lshscan.c
 *	  Ordered scans of an lsh index: ORDER BY col <op> query.
 *
 * With per-list bounds (the learned k-means family, lshbound.c) the scan is
 * ordered: it reads lists in the order of their bounds and returns a row only
 * when its exact distance is at most the smallest bound of the lists not yet
 * read, so no unread list can hold a nearer row.  Rows come back in distance
 * order, and a WHERE filter on other columns (which the index does not see)
 * gets the right rows: the executor keeps asking, and the scan keeps reading
 * while an unread list could beat the next row.  fct.lsh_probes is the least
 * number of lists read before the first row (0: LSH_BOUNDED_FIRST_LISTS);
 * fct.lsh_margin sets how tight the bounds are (the recall they buy).
 *
 * In an index of coded entries (format 4) the scan knows no exact distance:
 * it orders rows by their codes' lower bounds and returns each with its
 * bound for the executor to recheck (below, and lshcode.c).
 *
 * The bounds fct.lsh_margin scales are not certain: a list read late can hold
 * a row nearer than rows already returned.  Such a row (rare) is returned
 * only where it is still in exact order, and dropped where it is not
 * (late_row; a coded row's distance is computed from the heap row,
 * lshlate.c), so the rows always come back in exact distance order and a
 * wrong margin costs recall, never order.
 *
 * Without bounds (the comparison families simple and wta) the scan probes the
 * best fct.lsh_probes lists of the family's ranking, returns their rows in
 * order, and when they run out widens to the next lists, twice as many each
 * time: the order is exact within each step only.
 *
 * fct.lsh_max_candidates stops the reading after that many candidates; the
 * rows already read are then returned in order.
 */
#include "postgres.h"

#include <math.h>

#include "access/relscan.h"
#include "kernels/distance.h"
#include "lsh.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef struct LshCandidate
{
	float8		dist;
	ItemPointerData tid;
	bool		exact;			/* coded: dist is the row's exact distance (late_row) */
} LshCandidate;

/* A list not read yet, keyed by its bound. */
typedef struct LshListBound
{
	float8		lb;
	float8		tie;			/* between equal bounds: the bound at s = 0 */
	int			list;
} LshListBound;

typedef struct LshScanOpaqueData
{
	MemoryContext cxt;			/* per-query memory, reset by rescan */
	MemoryContext keep;			/* the scan's: arrays reused by every query */
	bool		started;
	bool		exhausted;
	bool		unordered;		/* NULL query: every row, in no order */
	bool		bounded;		/* ordered by per-list bounds */
	float	   *q;
	LshMetric	metric;
	int			dim;
	int			nlists;
	LshListItem *items;			/* the directory, read at the start */
	LshListBound *lheap;		/* bounded: min-heap of unread lists */
	int			nlheap;
	int			read;			/* bounded: lists read so far */
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
	/* an index of coded entries (format 4, lshcode.c) */
	bool		coded;
	const LshState *state;
	float	   *cdots;			/* <q, c> per list (float, as the bounds') */
	LshCodeQuery cq;			/* the query's side of the codes' bounds */
	/* coded: rows kept out of the heap until they could be next (below) */
	bool		spilling;
	LshCandidate *spill;
	int			nspill;
	int			spillcap;
	float8		spillmin;		/* the smallest bound in spill */
	float8		topk[64];		/* max-heap of the LSH_SPILL_TOPK smallest bounds */
	int			ntopk;
	/* bounded: rows found late (late_row) */
	float8		maxret;			/* the largest value returned: coded, the ORDER BY value; else dist */
	LshLate    *late;			/* coded: the rows returned, the late rows' distances */
} LshScanOpaqueData;

#define LSH_SPILL_TOPK	64

typedef LshScanOpaqueData *LshScanOpaque;

/* Lists a scan of the comparison families probes first: the GUC, or 0.5% of the lists (at least 2). */
int
lsh_effective_probes(int nlists)
{
	int			probes = lsh_probes > 0 ? lsh_probes : Max(2, (nlists + 199) / 200);

	return Min(probes, nlists);
}

/* Lists an ordered scan reads before its first row. */
int
lsh_bounded_first_lists(void)
{
	return lsh_probes > 0 ? lsh_probes : LSH_BOUNDED_FIRST_LISTS;
}

IndexScanDesc
lsh_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	LshScanOpaque so = palloc0(sizeof(LshScanOpaqueData));

	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "lsh scan", ALLOCSET_DEFAULT_SIZES);
	so->keep = CurrentMemoryContext;
	so->maxret = -get_float8_infinity();
	so->late = lsh_late_create(so->keep, so->cxt);
	scan->opaque = so;
	/* a coded index returns each row's lower bound for the executor to recheck */
	if (norderbys > 0)
	{
		scan->xs_orderbyvals = palloc0(sizeof(Datum) * norderbys);
		scan->xs_orderbynulls = palloc(sizeof(bool) * norderbys);
		memset(scan->xs_orderbynulls, true, sizeof(bool) * norderbys);
	}
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
	lsh_late_reset(so->late);
	MemoryContextReset(so->cxt);
	so->started = false;
	so->exhausted = false;
	/* cands is kept: fresh memory per query cost page faults */
	so->ncands = so->pos = 0;
	so->examined = 0;
	so->bounded = false;
	so->nlheap = 0;
	so->coded = false;
	so->nspill = 0;
	so->ntopk = 0;
	so->maxret = -get_float8_infinity();
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

/* Add c to the candidate heap of n (room for it is there). */
static void
sift_up(LshCandidate *h, int i, LshCandidate c)
{
	while (i > 0)
	{
		int			p = (i - 1) / 2;

		if (!cand_before(&c, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = c;
}

static inline bool
list_before(const LshListBound *x, const LshListBound *y)
{
	if (x->lb != y->lb)
		return x->lb < y->lb;
	if (x->tie != y->tie)
		return x->tie < y->tie;
	return x->list < y->list;
}

static void
list_sift_down(LshListBound *h, int n, int i)
{
	LshListBound x = h[i];

	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && list_before(&h[c + 1], &h[c]))
			c++;
		if (!list_before(&h[c], &x))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

/*
 * Room for need candidates in *arr (capacity *cap), kept in the scan's
 * context: reused by every query of the scan.
 */
static void
cands_grow(LshScanOpaque so, LshCandidate **arr, int *cap, int need)
{
	if (need > *cap)
	{
		int			n = Max(1024, Max(*cap * 2, need));

		if (*arr == NULL)
			*arr = MemoryContextAlloc(so->keep, sizeof(LshCandidate) * n);
		else
			*arr = repalloc(*arr, sizeof(LshCandidate) * n);
		*cap = n;
	}
}

/* Room for n more candidates. */
static void
cand_reserve(LshScanOpaque so, int n)
{
	cands_grow(so, &so->cands, &so->capacity, so->ncands + n);
}

/* ----------------------------------------------------------------
 * Indexes of coded entries (format 4, lshcode.c)
 *
 * An entry holds the row's code and no vector.  Its key in the candidate
 * heap is the code's lower bound on the distance (lsh_code_bounds), and a row
 * is returned with that bound as its ORDER BY value and xs_recheckorderby:
 * the executor computes the operator on the heap row and holds rows in its
 * queue until the index's next value cannot beat them (nodeIndexscan.c,
 * IndexNextWithReorder), so rows reach the query in exact order and only
 * rows whose bound beats the k-th distance are fetched.  The ordered-scan
 * rule is the same as with exact distances: a row is returned only when no
 * unread list's bound can beat its key.
 * ----------------------------------------------------------------
 */

/*
 * Most entries a LIMIT k query reads are never returned, and adding each to
 * the candidate heap was a sixth of a query's CPU time (perf): an entry whose
 * bound is not among the LSH_SPILL_TOPK smallest seen so far goes to an
 * unsorted array instead, whose smallest bound is kept.  The heap's top is
 * returned while it is no larger than that; otherwise the array is merged
 * into the heap (once: from then on every entry goes to the heap).  The
 * rows and their order are the same either way.
 */
static void
topk_add(LshScanOpaque so, float8 d)
{
	float8	   *h = so->topk;
	int			i;

	if (so->ntopk < LSH_SPILL_TOPK)
	{
		for (i = so->ntopk++; i > 0 && h[(i - 1) / 2] < d; i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
		h[i] = d;
		return;
	}
	if (d >= h[0])
		return;
	i = 0;
	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= so->ntopk)
			break;
		if (c + 1 < so->ntopk && h[c + 1] > h[c])
			c++;
		if (h[c] <= d)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = d;
}

/* Every spilled entry into the candidate heap; no more spilling. */
static void
merge_spill(LshScanOpaque so)
{
	cand_reserve(so, so->nspill);
	memcpy(so->cands + so->ncands, so->spill, sizeof(LshCandidate) * so->nspill);
	so->ncands += so->nspill;
	for (int i = so->ncands / 2 - 1; i >= 0; i--)
		sift_down(so->cands, so->ncands, i);
	so->nspill = 0;
	so->spilling = false;
}

/* One page of a list: every live entry's bound into the candidates. */
static bool
coded_visit(int list, Buffer buf, void *arg)
{
	LshScanOpaque so = (LshScanOpaque) arg;
	Page		page = BufferGetPage(buf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	PageHeader	ph = (PageHeader) page;
	float8		tau = so->spilling && so->ntopk == LSH_SPILL_TOPK ? so->topk[0] :
		get_float8_infinity();

	cand_reserve(so, maxoff);
	if (so->spilling)
		cands_grow(so, &so->spill, &so->spillcap, so->nspill + maxoff);

	/*
	 * The page's entries are larger than the caches' lines and the index
	 * larger than the caches: ask for all of them first, so that the entries
	 * do not wait for their cache misses one after the other (perf).
	 */
	for (Size b = ph->pd_upper; b < ph->pd_special; b += 64)
		__builtin_prefetch((const char *) page + b);
	{
		const LshEntry *entries[MaxIndexTuplesPerPage];
		const LshCode *codes[MaxIndexTuplesPerPage];
		float8		bounds[MaxIndexTuplesPerPage];
		int			n = 0;

		for (OffsetNumber i = FirstOffsetNumber; i <= maxoff; i++)
		{
			ItemId		iid = PageGetItemId(page, i);

			if (!ItemIdIsNormal(iid))
				continue;
			entries[n] = (const LshEntry *) PageGetItem(page, iid);
			codes[n] = (const LshCode *) entries[n]->x;
			n++;
		}
		lsh_code_bounds(&so->cq, codes, n, bounds);
		for (int j = 0; j < n; j++)
		{
			float8		d = bounds[j];

			if (d < tau)
			{
				LshCandidate c;

				c.dist = d;
				c.tid = entries[j]->heap_tid;
				c.exact = false;
				sift_up(so->cands, so->ncands++, c);
				if (so->spilling)
				{
					topk_add(so, d);
					if (so->ntopk == LSH_SPILL_TOPK)
						tau = so->topk[0];
				}
			}
			else
			{
				/*
				 * Most entries come here: the fields are written in place (a
				 * struct built on the stack and copied whole stalled on its
				 * parts' stores; perf)
				 */
				LshCandidate *s = &so->spill[so->nspill];

				if (so->nspill == 0 || d < so->spillmin)
					so->spillmin = d;
				s->dist = d;
				s->tid = entries[j]->heap_tid;
				s->exact = false;
				so->nspill++;
			}
		}
		so->examined += n;
	}
	return true;
}

/* Read a list of coded entries. */
static void
probe_list_coded(IndexScanDesc scan, int list)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;

	lsh_code_list(&so->cq, so->state, list, &so->items[list], so->cdots[list]);
	lsh_walk_pages(scan->indexRelation, list, so->items[list].head, BUFFER_LOCK_SHARE, NULL,
				   coded_visit, so);
}

/*
 * The query's own list (lsh_query_own_list) is read first: its bound becomes
 * -infinity (still a bound).  It counts among the lists read before the first
 * row (fct.lsh_probes) only where its bound puts it among them: otherwise it
 * is read in addition, and the scan still reads as many lists in the order of
 * their bounds as before (counted, it took the place of the best one and a
 * query lost rows: TAP 091, 7 of 10 at the default margin).
 */
static void
read_own_list_first(LshScanOpaque so, int own)
{
	int			before = 0;
	int			at = -1;

	for (int i = 0; i < so->nlheap; i++)
	{
		if (so->lheap[i].list == own)
			at = i;
	}
	/* a list nothing was ever added to holds nothing */
	if (at < 0)
		return;
	for (int i = 0; i < so->nlheap; i++)
	{
		if (list_before(&so->lheap[i], &so->lheap[at]))
			before++;
	}
	if (before >= lsh_bounded_first_lists())
		so->read = -1;
	so->lheap[at].lb = -get_float8_infinity();
}

/*
 * Ordered scan: the bound of every list, in a min-heap (building it is
 * linear; a query pops the few lists it reads).
 */
static void
start_bounded(LshScanOpaque so, const LshState *state)
{
	float8	   *lb = palloc(sizeof(float8) * so->nlists);
	float8	   *tie = palloc(sizeof(float8) * so->nlists);
	float	   *work = palloc(sizeof(float) * so->nlists);
	int			own;

	lsh_list_bounds(state, so->q, so->items, lb, tie, work);
	own = lsh_query_own_list(state, so->q);
	if (!lsh_entry_has_vector(&state->meta))
	{
		/* lsh_list_bounds left <q, c> in work */
		so->coded = true;
		so->state = state;
		so->cdots = work;
		lsh_code_bounds_init(&so->cq, state, so->q);
		so->spilling = true;
		so->nspill = 0;
		so->ntopk = 0;
	}
	so->lheap = palloc(sizeof(LshListBound) * so->nlists);
	so->nlheap = 0;
	for (int l = 0; l < so->nlists; l++)
	{
		/* a list nothing was ever added to holds nothing */
		if (!BlockNumberIsValid(so->items[l].head))
			continue;
		so->lheap[so->nlheap].lb = lb[l];
		so->lheap[so->nlheap].tie = tie[l];
		so->lheap[so->nlheap].list = l;
		so->nlheap++;
	}
	so->read = 0;
	if (own >= 0)
		read_own_list_first(so, own);
	for (int i = so->nlheap / 2 - 1; i >= 0; i--)
		list_sift_down(so->lheap, so->nlheap, i);
	so->bounded = true;
	pfree(lb);
	pfree(tie);
	if (!so->coded)
		pfree(work);
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
	so->bounded = false;
	so->metric = (LshMetric) state->meta.metric;
	so->dim = state->meta.dim;
	so->items = palloc(sizeof(LshListItem) * nlists);
	if (state->meta.has_model)
		lsh_read_directory(scan->indexRelation, &state->meta, so->items);
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
		if (lsh_has_bounds(&state->meta))
		{
			start_bounded(so, state);
			MemoryContextSwitchTo(oldcxt);
			return;
		}
		scores = so->scores = palloc(sizeof(float) * nlists);
		lsh_rank_lists(state, so->q, scores);
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

/* Each entry of a list into the candidates (a heap when bounded). */
static void
probe_visit(int list, OffsetNumber maxoff, const LshEntry *entry, void *arg)
{
	IndexScanDesc scan = (IndexScanDesc) arg;
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	LshCandidate c;

	if (entry == NULL)
	{
		/* a new page: room for all its entries */
		cand_reserve(so, maxoff);
		return;
	}
	c.tid = entry->heap_tid;
	c.exact = false;
	c.dist = so->unordered ? 0 : lsh_distance(so->metric, so->q, entry->x, so->dim);
	if (so->bounded)
		sift_up(so->cands, so->ncands++, c);
	else
		so->cands[so->ncands++] = c;
}

/* Read one list's entries into the candidates. */
static void
probe_list(IndexScanDesc scan, int list)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;

	lsh_walk_chain(scan->indexRelation, list, so->items[list].head, probe_visit, scan);
}

/* The next widening step: probe the next batch of lists. */
static void
probe_batch(IndexScanDesc scan)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
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
		probe_list(scan, so->order[so->next++]);
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

/* Remove the candidate heap's minimum. */
static void
cand_pop(LshScanOpaque so)
{
	so->ncands--;
	if (so->ncands > 0)
	{
		so->cands[0] = so->cands[so->ncands];
		sift_down(so->cands, so->ncands, 0);
	}
}

/*
 * A row found late: its bound (coded) or distance is below the largest value
 * the scan has returned.  The lists' bounds are scaled by fct.lsh_margin, not
 * certain, so a list read late can hold a row nearer than rows returned
 * before it; returned as it is, it could reach the query after farther rows
 * (an order inversion: a few per hundred queries on Fashion-MNIST).  A row
 * with its exact distance (no code, or one computed here) is returned only if
 * no row already emitted is farther (the uncoded rows are emitted as
 * returned: none may be nearer than the largest returned); otherwise it
 * cannot be returned in order and is dropped.  A coded row's bound says
 * little about its distance: the scan computes the distance from the heap row
 * (lshlate.c) and puts the row back with it, to be returned in its turn.
 * With certain bounds (a margin that reaches Cauchy-Schwarz) a row's distance
 * is at least its list's bound, which is at least every value returned before
 * the list was read, so no row is dropped and the scan stays exact.
 */
static bool
late_in_order(IndexScanDesc scan, const LshCandidate *c, float8 value)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;

	return so->coded && c->exact &&
		!lsh_late_emitted_beyond(scan, so->late, value, so->maxret);
}

static void
late_row(IndexScanDesc scan, LshCandidate c)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	float8		value;

	if (!so->coded || c.exact ||
		!lsh_late_distance(scan, so->late, &c.tid, &value))
		return;

	/*
	 * In the heap's unit (squared for L2; the square root of a double's
	 * square is the double itself, so the row is returned with exactly the
	 * operator's value)
	 */
	c.dist = so->metric == LSH_METRIC_L2 ? value * value : value;
	c.exact = true;
	cand_reserve(so, 1);
	sift_up(so->cands, so->ncands++, c);
}

/*
 * Ordered scan: read lists until the nearest candidate is no farther than
 * every unread list's bound, then return it (unless it was found late).
 */
static bool
bounded_next(IndexScanDesc scan)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	int			min_read = lsh_bounded_first_lists();
	float8		value;

	for (;;)
	{
		bool		lists = !so->exhausted && so->nlheap > 0;

		/* a spilled row could be next: all of them into the heap */
		if (so->nspill > 0 &&
			(so->ncands == 0 || so->spillmin < so->cands[0].dist) &&
			(!lists || (so->read >= min_read && so->spillmin <= so->lheap[0].lb)))
		{
			merge_spill(so);
			continue;
		}
		/* the nearest candidate, when no unread list nor spilled row can beat it */
		if (so->ncands > 0 &&
			(!lists || (so->read >= min_read && so->cands[0].dist <= so->lheap[0].lb)) &&
			(so->nspill == 0 || so->cands[0].dist <= so->spillmin))
		{
			LshCandidate c = so->cands[0];

			value = so->coded ? lsh_operator_value(so->metric, c.dist) : c.dist;
			if (value >= so->maxret || late_in_order(scan, &c, value))
				break;
			cand_pop(so);
			late_row(scan, c);
			continue;
		}
		if (!lists)
			return false;
		{
			int			list = so->lheap[0].list;

			so->lheap[0] = so->lheap[--so->nlheap];
			if (so->nlheap > 0)
				list_sift_down(so->lheap, so->nlheap, 0);
			if (so->coded)
				probe_list_coded(scan, list);
			else
			{
				int			n0 = so->ncands;

				probe_list(scan, list);
				so->examined += so->ncands - n0;
			}
			so->read++;
			if (lsh_max_candidates > 0 && so->examined >= lsh_max_candidates)
				so->exhausted = true;
		}
	}

	scan->xs_heaptid = so->cands[0].tid;
	scan->xs_recheck = false;
	/* a code's bound: the executor computes the distance and reorders */
	scan->xs_recheckorderby = so->coded;
	if (so->coded)
	{
		scan->xs_orderbyvals[0] = Float8GetDatum(value);
		scan->xs_orderbynulls[0] = false;
		lsh_late_returned(so->late, &so->cands[0].tid, so->cands[0].exact, value);
	}
	so->maxret = Max(so->maxret, value);
	cand_pop(so);
	return true;
}

bool
lsh_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;

	if (!so->started)
		start_scan(scan);

	if (so->bounded)
		return bounded_next(scan);

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
		cand_pop(so);
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

	lsh_late_free(so->late);
	MemoryContextDelete(so->cxt);
	if (so->cands)
		pfree(so->cands);
	if (so->spill)
		pfree(so->spill);
	pfree(so);
	scan->opaque = NULL;
}
