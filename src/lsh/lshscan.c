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
 * while an unread list could beat the next row.  fct.lsh_probes (when not 0)
 * is the least number of lists read before the first row; fct.lsh_margin sets
 * how tight the bounds are (the recall they buy).
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
} LshCandidate;

/*
 * An entry of an index with codes whose code-bound did not beat the nearest
 * rows found: where to read it if the scan ever needs it (lazy re-rank).
 */
typedef struct LshDeferred
{
	float8		lb;				/* the code's bound on its distance */
	BlockNumber blk;
	OffsetNumber off;
	ItemPointerData tid;
} LshDeferred;

/* A list not read yet, keyed by its bound. */
typedef struct LshListBound
{
	float8		lb;
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
	/* an index with codes (lshcode.c) */
	bool		coded;
	const LshState *state;
	float	   *w;				/* per-query weights of the code */
	float8		wconst;			/* <q~, r^> = wconst + lsh_code_dot(w, code) */
	float8		qrscale;		/* bound on the terms of that sum */
	float8		qn2;
	float8		qn;
	float	   *cdots;			/* <q, c> per list (float, as the bounds') */
	LshDeferred *def;			/* entries not re-ranked: an array, a
								 * min-heap once one is needed */
	int			ndef;
	int			defcap;
	bool		defheap;		/* def is a heap */
	float8		defmin;			/* !defheap: the smallest bound in def */
	float8	   *topd;			/* max-heap of the nearest exact distances */
	int			ntop;
	int			topcap;			/* rows the re-rank threshold aims at */
} LshScanOpaqueData;

typedef LshScanOpaqueData *LshScanOpaque;

/* Lists a scan probes first: the GUC, or 0.5% of the lists (at least 2). */
int
lsh_effective_probes(int nlists)
{
	int			probes = lsh_probes > 0 ? lsh_probes : Max(2, (nlists + 199) / 200);

	return Min(probes, nlists);
}

IndexScanDesc
lsh_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	LshScanOpaque so = palloc0(sizeof(LshScanOpaqueData));

	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "lsh scan", ALLOCSET_DEFAULT_SIZES);
	so->keep = CurrentMemoryContext;
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
	/* cands and def are kept: fresh memory per query cost page faults */
	so->ncands = so->pos = 0;
	so->examined = 0;
	so->bounded = false;
	so->nlheap = 0;
	so->coded = false;
	so->ndef = 0;
	so->defheap = false;
	so->defmin = get_float8_infinity();
	so->topd = NULL;
	so->ntop = so->topcap = 0;
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
	return x->lb < y->lb || (x->lb == y->lb && x->list < y->list);
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

/* ----------------------------------------------------------------
 * Indexes with codes (lshcode.c)
 *
 * A list's entries are scored from their codes: a lower bound on each
 * entry's distance.  An entry whose bound beats the topcap-th nearest exact
 * distance found so far is re-ranked at once (its vector is on the page being
 * read); the others wait in a heap keyed by their bounds and are re-ranked
 * only when the scan reaches them: a row is returned only when no unread list
 * and no waiting entry can beat it, so the rows and their order are those of
 * the scan without codes.  topcap starts at 10 (LIMIT 10) and doubles each
 * time a waiting entry had to be read back, so a scan whose filter rejects
 * rows re-ranks more as it goes.
 * ----------------------------------------------------------------
 */

/* Relative allowance for float rounding in a code's bound (lshcode.c). */
#define LSH_CODE_TOL	1e-5
#define LSH_CODE_TOPCAP	10

static void
start_coded(LshScanOpaque so, const LshState *state, float *dots)
{
	int			dim = state->meta.dim;
	float	   *qt = so->q;

	so->coded = true;
	so->state = state;
	so->cdots = dots;			/* lsh_list_bounds left <q, c> in work */
	so->qn2 = kernel_norm_squared(so->q, dim);
	so->qn = sqrt(so->qn2);
	so->w = palloc(sizeof(float) * dim);
	if (so->metric == LSH_METRIC_COSINE)
	{
		/* cosine: the code scores q' = q / |q| */
		qt = palloc(sizeof(float) * dim);
		for (int d = 0; d < dim; d++)
			qt[d] = so->qn > 0 ? (float) (so->q[d] / so->qn) : 0;
	}
	so->wconst = lsh_code_query(state, qt, so->w);
	so->qrscale = 0;
	for (int d = 0; d < dim; d++)
		so->qrscale += fabs((float8) qt[d]) *
			(fabs((float8) state->code_lo[d]) + fabs((float8) state->code_lo[d] + 256.0 * state->code_step[d]));
	so->topcap = LSH_CODE_TOPCAP;
	so->topd = palloc(sizeof(float8) * so->topcap);
	so->ntop = 0;
}

/* An exact distance found: into the max-heap of the topcap nearest. */
static void
top_add(LshScanOpaque so, float8 d)
{
	float8	   *h = so->topd;
	int			i;

	if (so->ntop < so->topcap)
	{
		i = so->ntop++;
		while (i > 0 && h[(i - 1) / 2] < d)
		{
			h[i] = h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h[i] = d;
		return;
	}
	if (d >= h[0])
		return;
	i = 0;
	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= so->ntop)
			break;
		if (c + 1 < so->ntop && h[c + 1] > h[c])
			c++;
		if (h[c] <= d)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = d;
}

static inline bool
def_before(const LshDeferred *x, const LshDeferred *y)
{
	return x->lb < y->lb;
}

/*
 * A LIMIT 10 query rarely re-ranks a waiting entry: until one is needed, def
 * is an array and only its smallest bound is kept up to date.
 */
static void
def_push(LshScanOpaque so, const LshDeferred *e)
{
	LshDeferred *h = so->def;
	int			i = so->ndef++;

	if (!so->defheap)
	{
		h[i] = *e;
		if (e->lb < so->defmin)
			so->defmin = e->lb;
		return;
	}

	while (i > 0 && def_before(e, &h[(i - 1) / 2]))
	{
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = *e;
}

static void
def_sift_down(LshDeferred *h, int n, int i)
{
	LshDeferred x = h[i];

	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && def_before(&h[c + 1], &h[c]))
			c++;
		if (!def_before(&h[c], &x))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

/* The smallest bound of a waiting entry (+infinity: none). */
static inline float8
def_top(LshScanOpaque so)
{
	if (so->ndef == 0)
		return get_float8_infinity();
	return so->defheap ? so->def[0].lb : so->defmin;
}

static void
def_pop(LshScanOpaque so)
{
	int			n = --so->ndef;

	if (n == 0)
		return;
	so->def[0] = so->def[n];
	def_sift_down(so->def, n, 0);
}

/* An exact candidate into the heap of candidates. */
static void
cand_push(LshScanOpaque so, float8 dist, ItemPointer tid)
{
	LshCandidate c;

	if (so->ncands >= so->capacity)
	{
		int			cap = Max(1024, so->capacity * 2);

		if (so->cands == NULL)
			so->cands = MemoryContextAlloc(so->keep, sizeof(LshCandidate) * cap);
		else
			so->cands = repalloc(so->cands, sizeof(LshCandidate) * cap);
		so->capacity = cap;
	}
	c.dist = dist;
	c.tid = *tid;
	sift_up(so->cands, so->ncands++, c);
}

typedef struct CodedPage
{
	IndexScanDesc scan;
	int			list;
	float8		k1;				/* per list: see coded_visit */
	float8		k2;
	float8		tol;
} CodedPage;

/*
 * One page of a list of an index with codes: every live entry's bound from
 * its code (lshcode.c's formulas); re-rank now or defer.
 */
static bool
coded_visit(int list, Buffer buf, void *arg)
{
	CodedPage  *cp = arg;
	LshScanOpaque so = (LshScanOpaque) cp->scan->opaque;
	Page		page = BufferGetPage(buf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	BlockNumber blk = BufferGetBlockNumber(buf);
	int			dim = so->dim;
	float8		tau = so->ntop < so->topcap ? get_float8_infinity() : so->topd[0];

	if (so->ndef + maxoff > so->defcap)
	{
		int			cap = Max(1024, Max(so->defcap * 2, so->ndef + maxoff));

		if (so->def == NULL)
			so->def = MemoryContextAllocHuge(so->keep, sizeof(LshDeferred) * cap);
		else
			so->def = repalloc_huge(so->def, sizeof(LshDeferred) * cap);
		so->defcap = cap;
	}

	/*
	 * The page's codes are apart by a vector each, and the index is larger
	 * than the caches: without asking for all of them first, every entry
	 * waits for its own cache misses in turn (three quarters of the scan's
	 * time, measured with perf).
	 */
	for (OffsetNumber i = FirstOffsetNumber; i <= maxoff; i++)
	{
		ItemId		iid = PageGetItemId(page, i);

		if (ItemIdIsNormal(iid))
		{
			const char *e = (const char *) PageGetItem(page, iid);
			const char *c = (const char *) lsh_entry_code((const LshEntry *) e, dim);

			__builtin_prefetch(e);
			for (Size b = 0; b < offsetof(LshCode, code) + (Size) dim; b += 64)
				__builtin_prefetch(c + b);
		}
	}
	for (OffsetNumber i = FirstOffsetNumber; i <= maxoff; i++)
	{
		ItemId		iid = PageGetItemId(page, i);
		const LshEntry *entry;
		const LshCode *code;
		float8		qr;
		float8		lb;

		if (!ItemIdIsNormal(iid))
			continue;
		entry = (const LshEntry *) PageGetItem(page, iid);
		code = lsh_entry_code(entry, dim);
		qr = so->wconst + lsh_code_dot(so->w, code->code, dim);
		switch (so->metric)
		{
			case LSH_METRIC_L2:
				{
					/* k1 = |q - c|^2, k2: the rounding allowance of est2 */
					float8		est2 = cp->k1 - 2.0 * qr + code->aux - cp->k2;
					float8		e = est2 > 0 ? sqrt(est2) - code->err : 0;

					lb = e > 0 ? e * e : 0;
				}
				break;
			case LSH_METRIC_COSINE:
				/* k1 = <q', c> */
				lb = 1.0 - cp->k1 - qr - code->err - cp->tol;
				break;
			default:
				/* inner product: k1 = <q, c> */
				lb = -(float8) code->aux * (cp->k1 + qr + so->qn * code->err + cp->tol);
				break;
		}
		if (lb < tau)
		{
			float8		d = lsh_distance(so->metric, so->q, entry->x, dim);

			cand_push(so, d, (ItemPointer) &entry->heap_tid);
			top_add(so, d);
			if (so->ntop == so->topcap)
				tau = so->topd[0];
		}
		else
		{
			LshDeferred e;

			e.lb = lb;
			e.blk = blk;
			e.off = i;
			e.tid = entry->heap_tid;
			def_push(so, &e);
		}
		so->examined++;
	}
	return true;
}

/* Read a list of an index with codes. */
static void
probe_list_coded(IndexScanDesc scan, int list)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	const LshState *state = so->state;
	const LshListItem *it = &so->items[list];
	int			dim = so->dim;
	CodedPage	cp;

	cp.scan = scan;
	cp.list = list;
	cp.k1 = cp.k2 = cp.tol = 0;
	switch (so->metric)
	{
		case LSH_METRIC_L2:
			{
				const float *c = state->params + (Size) list * dim;
				float8		cn = sqrt(state->center_norm2[list]);
				float8		rm = (float8) it->rmax;

				cp.k1 = kernel_l2_squared(so->q, c, dim);
				/* every term of est2 is at most this large: allow its rounding */
				cp.k2 = LSH_CODE_TOL * (cp.k1 + 2.0 * so->qrscale + 2.0 * (cn + rm) * rm + rm * rm);
			}
			break;
		case LSH_METRIC_COSINE:
			cp.k1 = so->qn > 0 ? so->cdots[list] / so->qn : 0;
			cp.tol = LSH_CODE_TOL * (1.0 + it->rmax + so->qrscale);
			break;
		case LSH_METRIC_IP:
			cp.k1 = so->cdots[list];
			cp.tol = LSH_CODE_TOL * (so->qn * (1.0 + it->rmax) + so->qrscale);
			break;
	}
	lsh_walk_pages(scan->indexRelation, list, it->head, BUFFER_LOCK_SHARE, NULL,
				   coded_visit, &cp);
}

/*
 * Re-rank the waiting entry of the smallest bound (and the next ones of its
 * page while they lead the heap): read its page again.  An entry VACUUM
 * removed meanwhile belonged to a row no snapshot sees: it is dropped.
 * VACUUM compacts pages, so an entry not at its offset is looked up by TID.
 */
static void
rerank_deferred(IndexScanDesc scan)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	BlockNumber blk;
	Buffer		buf;
	Page		page;
	OffsetNumber maxoff;

	if (!so->defheap)
	{
		for (int i = so->ndef / 2 - 1; i >= 0; i--)
			def_sift_down(so->def, so->ndef, i);
		so->defheap = true;
	}
	blk = so->def[0].blk;
	buf = ReadBuffer(scan->indexRelation, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	maxoff = PageGetMaxOffsetNumber(page);
	while (so->ndef > 0 && so->def[0].blk == blk)
	{
		LshDeferred e = so->def[0];
		const LshEntry *found = NULL;

		def_pop(so);
		if (LshPageGetOpaque(page)->flags == LSH_PAGE_ENTRY)
		{
			/* its own offset first (the page unchanged), then every one */
			for (int k = 0; k <= maxoff && found == NULL; k++)
			{
				OffsetNumber i = k == 0 ? e.off : (OffsetNumber) k;
				ItemId		iid;

				if (i > maxoff || (k > 0 && i == e.off))
					continue;
				iid = PageGetItemId(page, i);
				if (ItemIdIsNormal(iid) &&
					ItemPointerEquals((ItemPointer) &((LshEntry *) PageGetItem(page, iid))->heap_tid, &e.tid))
					found = (const LshEntry *) PageGetItem(page, iid);
			}
		}
		if (found)
		{
			float8		d = lsh_distance(so->metric, so->q, found->x, so->dim);

			cand_push(so, d, &e.tid);
			top_add(so, d);
		}
	}
	UnlockReleaseBuffer(buf);

	/* the caller wants more rows than the threshold aimed at: aim further */
	if (so->topcap < 4096)
	{
		so->topcap *= 2;
		so->topd = repalloc(so->topd, sizeof(float8) * so->topcap);
	}
}

/*
 * Ordered scan: the bound of every list, in a min-heap (building it is
 * linear; a query pops the few lists it reads).
 */
static void
start_bounded(LshScanOpaque so, const LshState *state)
{
	float8	   *lb = palloc(sizeof(float8) * so->nlists);
	float	   *work = palloc(sizeof(float) * so->nlists);

	lsh_list_bounds(state, so->q, so->items, lb, work);
	if (state->meta.code_bits > 0)
		start_coded(so, state, work);
	so->lheap = palloc(sizeof(LshListBound) * so->nlists);
	so->nlheap = 0;
	for (int l = 0; l < so->nlists; l++)
	{
		/* a list nothing was ever added to holds nothing */
		if (!BlockNumberIsValid(so->items[l].head))
			continue;
		so->lheap[so->nlheap].lb = lb[l];
		so->lheap[so->nlheap].list = l;
		so->nlheap++;
	}
	for (int i = so->nlheap / 2 - 1; i >= 0; i--)
		list_sift_down(so->lheap, so->nlheap, i);
	so->bounded = true;
	so->read = 0;
	pfree(lb);
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
		if (so->ncands + maxoff > so->capacity)
		{
			int			cap = Max(1024, Max(so->capacity * 2, so->ncands + maxoff));

			if (so->cands == NULL)
				so->cands = MemoryContextAlloc(so->keep, sizeof(LshCandidate) * cap);
			else
				so->cands = repalloc(so->cands, sizeof(LshCandidate) * cap);
			so->capacity = cap;
		}
		return;
	}
	c.tid = entry->heap_tid;
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

/*
 * Ordered scan: read lists until the nearest candidate is no farther than
 * every unread list's bound, then return it.
 */
static bool
bounded_next(IndexScanDesc scan)
{
	LshScanOpaque so = (LshScanOpaque) scan->opaque;
	int			min_read = lsh_probes;

	for (;;)
	{
		bool		lists = !so->exhausted && so->nlheap > 0;

		/* the nearest candidate, when no unread list nor waiting entry can beat it */
		if (so->ncands > 0 &&
			(!lists || (so->read >= min_read && so->cands[0].dist <= so->lheap[0].lb)) &&
			so->cands[0].dist <= def_top(so))
			break;
		if (so->ndef > 0 &&
			(!lists || (so->read >= min_read && def_top(so) <= so->lheap[0].lb)))
		{
			rerank_deferred(scan);
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
	so->ncands--;
	if (so->ncands > 0)
	{
		so->cands[0] = so->cands[so->ncands];
		sift_down(so->cands, so->ncands, 0);
	}
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
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
	if (so->cands)
		pfree(so->cands);
	if (so->def)
		pfree(so->def);
	pfree(so);
	scan->opaque = NULL;
}
