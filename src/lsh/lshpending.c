/*
 * lshpending.c
 *	  Inserts are buffered per transaction and written in batches.
 *
 * Writing one entry costs far more than the entry: GenericXLog copies the
 * page, compares every used byte of it with the copy to find the change, and
 * the hash function compares the vector with every centre.  Measured on the
 * 200,000-row benchmark, a row inserted with the index cost 4x one inserted
 * without, half of it in those two steps.  So lsh_insert only checks the value
 * (errors belong to the statement that inserts) and appends it to this
 * backend's pending set for the index; the pending rows are hashed together
 * (one matrix product, as the build does) and written list by list, many
 * entries per page and WAL record.
 *
 * When the pending rows are written:
 *	 - when they fill work_mem (lsh_insert);
 *	 - before this backend reads the index: a scan, fct_lsh_stats,
 *	   fct_lsh_verify (so a transaction sees its own rows);
 *	 - before a parallel plan starts (an ExecutorStart hook): parallel
 *	   workers see this transaction's rows in the table but cannot see this
 *	   backend's pending rows.  Not when the planner costs a scan: planning
 *	   writes nothing (and a cached plan is not planned again);
 *	 - before the transaction commits or prepares (XACT_EVENT_PRE_COMMIT /
 *	   PRE_PREPARE): the entries are WAL-logged before the commit record, so a
 *	   committed row always has its entry, after a crash and on a standby.
 * Other backends cannot see the rows before the commit, so they miss nothing.
 *
 * When they are dropped:
 *	 - the transaction aborts: its rows are dead, they need no entries;
 *	 - a subtransaction aborts: the rows it inserted are dropped.  This is
 *	   required, not a saving: those rows are dead at once, a concurrent
 *	   VACUUM may remove them and let their line pointers be reused before we
 *	   commit, and an entry written then would point at someone else's row.
 *	   (Entries written before the abort are in the index when VACUUM looks,
 *	   so VACUUM removes them with the rows.)  Each pending row records the
 *	   nesting level that inserted it; a committed subtransaction hands its
 *	   rows to its parent;
 *	 - the index got a new relfilenode in this transaction (REINDEX,
 *	   TRUNCATE, a table rewrite): the new index was built from the table,
 *	   which includes these rows, or the rows are gone.
 *
 * A write that fails half-way (an I/O error) marks what it wrote, so a later
 * write does not add those entries twice.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "lsh.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* level of a pending row already written */
#define LSH_PENDING_WRITTEN (-1)

typedef struct LshPending
{
	Oid			indexoid;
	RelFileNode node;			/* the relfilenode the rows were inserted into */
	int			dim;
	int			n;				/* rows */
	int			capacity;
	ItemPointerData *tids;
	float	   *x;				/* n x dim */
	int		   *level;			/* nesting level, or LSH_PENDING_WRITTEN */
	struct LshPending *next;
} LshPending;

/* This transaction's pending sets, in TopTransactionContext; NULL outside. */
static LshPending *pending_sets = NULL;
static bool callbacks_registered = false;

static void
drop_all(void)
{
	/* the memory goes with TopTransactionContext */
	pending_sets = NULL;
}

/* Write the pending rows of p into index (p->node is index's relfilenode). */
static void
write_pending(Relation index, LshPending *p)
{
	LshState   *state = lsh_get_state(index);
	int			dim = p->dim;
	/* an unlearned index has no codes, and its dim is this batch's */
	Size		size = state->meta.code_bits > 0 ? lsh_entry_size(&state->meta) : LSH_ENTRY_SIZE(dim);
	bool		bounds = lsh_has_bounds(&state->meta);
	float	   *resid = NULL;
	float	   *norm = NULL;
	int			nlists = state->meta.nlists;
	MemoryContext cxt;
	MemoryContext oldcxt;
	int		   *lists;
	int		   *start;
	int		   *order;
	char	   *entries;
	int			n = p->n;

	if (n == 0)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "lsh pending write", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	/* the lists of all rows not yet written, in chunks of one matrix product */
	lists = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i += LSH_HASH_CHUNK)
	{
		CHECK_FOR_INTERRUPTS();
		lsh_hash_batch(state, p->x + (Size) i * dim, Min(LSH_HASH_CHUNK, n - i), lists + i);
	}

	/* group by list (counting sort), written rows left out */
	start = palloc0(sizeof(int) * (nlists + 1));
	for (int i = 0; i < n; i++)
		if (p->level[i] != LSH_PENDING_WRITTEN)
			start[lists[i] + 1]++;
	for (int l = 0; l < nlists; l++)
		start[l + 1] += start[l];
	order = palloc(sizeof(int) * n);
	{
		int		   *fill = palloc(sizeof(int) * nlists);

		memcpy(fill, start, sizeof(int) * nlists);
		for (int i = 0; i < n; i++)
			if (p->level[i] != LSH_PENDING_WRITTEN)
				order[fill[lists[i]]++] = i;
		pfree(fill);
	}

	/* one list at a time: its entries contiguous, then onto its pages */
	entries = palloc0(size * (Size) Max(1, start[nlists]));
	if (bounds)
	{
		/* each row's geometry for its list's bounds (the entries may hold no vector) */
		resid = palloc(sizeof(float) * Max(1, start[nlists]));
		norm = palloc(sizeof(float) * Max(1, start[nlists]));
	}
	for (int l = 0; l < nlists; l++)
	{
		int			m = start[l + 1] - start[l];

		if (m == 0)
			continue;
		for (int j = 0; j < m; j++)
		{
			int			i = order[start[l] + j];
			const float *x = p->x + (Size) i * dim;

			if (state->meta.code_bits > 0)
				lsh_make_entry(state, l, &p->tids[i], x, (LshEntry *) (entries + (Size) j * size));
			else
			{
				/* an unlearned index's dim may be only now fixed: this batch's */
				LshEntry   *e = (LshEntry *) (entries + (Size) j * size);

				e->heap_tid = p->tids[i];
				memcpy(e->x, x, sizeof(float) * dim);
			}
			if (bounds)
				lsh_member_geometry(state, l, x, &resid[j], &norm[j]);
		}
		lsh_add_entries(index, state, l, entries, m, size, resid, norm);
		for (int j = 0; j < m; j++)
			p->level[order[start[l] + j]] = LSH_PENDING_WRITTEN;
	}
	p->n = 0;

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

static LshPending *
find_set(Oid indexoid)
{
	for (LshPending *p = pending_sets; p != NULL; p = p->next)
		if (p->indexoid == indexoid)
			return p;
	return NULL;
}

/* Write this backend's pending rows of index (an open lsh index). */
void
lsh_pending_flush(Relation index)
{
	LshPending *p = find_set(RelationGetRelid(index));

	if (p == NULL || p->n == 0)
		return;
	if (!RelFileNodeEquals(p->node, index->rd_node))
	{
		p->n = 0;
		return;
	}
	write_pending(index, p);
}

/* Write every pending row of this transaction (before it commits). */
static void
flush_all(void)
{
	for (LshPending *p = pending_sets; p != NULL; p = p->next)
	{
		Relation	index;

		if (p->n == 0)
			continue;
		/* dropped in this transaction: nothing to write */
		index = try_relation_open(p->indexoid, RowExclusiveLock);
		if (index == NULL)
		{
			p->n = 0;
			continue;
		}
		if (index->rd_rel->relkind == RELKIND_INDEX &&
			RelFileNodeEquals(p->node, index->rd_node))
			write_pending(index, p);
		p->n = 0;
		relation_close(index, RowExclusiveLock);
	}
}

static ExecutorStart_hook_type prev_executor_start = NULL;

/* A parallel plan: its workers must find this transaction's rows indexed. */
static void
lsh_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (pending_sets != NULL && queryDesc->plannedstmt->parallelModeNeeded &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && !IsInParallelMode())
		flush_all();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* At load time. */
void
lsh_pending_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = lsh_executor_start;
}

static void
lsh_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			flush_all();
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			/* parallel workers do not insert into indexes */
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			drop_all();
			break;
	}
}

static void
lsh_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	/* the callbacks run while the ending subtransaction is still current */
	level = GetCurrentTransactionNestLevel();
	for (LshPending *p = pending_sets; p != NULL; p = p->next)
	{
		/*
		 * Rows are appended in time order, so the rows of this subtransaction
		 * (and of its committed children) are a suffix of the rows not
		 * written; written rows may sit among them and are passed over.
		 */
		int			i = p->n;

		while (i > 0 && (p->level[i - 1] >= level || p->level[i - 1] == LSH_PENDING_WRITTEN))
		{
			i--;
			if (event == SUBXACT_EVENT_COMMIT_SUB && p->level[i] != LSH_PENDING_WRITTEN)
				p->level[i] = level - 1;
		}
		if (event == SUBXACT_EVENT_ABORT_SUB)
			p->n = i;
	}
}

/*
 * Buffer one row for index (checked by the caller).  Writes the index's
 * pending rows when they fill work_mem.
 */
void
lsh_pending_add(Relation index, const LshState *state, ItemPointer tid,
				const float *x, int dim)
{
	LshPending *p;

	if (!callbacks_registered)
	{
		RegisterXactCallback(lsh_xact_callback, NULL);
		RegisterSubXactCallback(lsh_subxact_callback, NULL);
		callbacks_registered = true;
	}

	p = find_set(RelationGetRelid(index));
	if (p == NULL)
	{
		p = MemoryContextAllocZero(TopTransactionContext, sizeof(LshPending));
		p->indexoid = RelationGetRelid(index);
		p->node = index->rd_node;
		p->dim = dim;
		p->next = pending_sets;
		pending_sets = p;
	}
	else if (!RelFileNodeEquals(p->node, index->rd_node) || p->dim != dim)
	{
		/* rebuilt in this transaction: the older rows are in the new index */
		p->n = 0;
		p->node = index->rd_node;
		p->dim = dim;
	}

	if (p->n == p->capacity)
	{
		int			cap = Max(64, p->capacity * 2);

		if (p->capacity == 0)
		{
			p->tids = MemoryContextAlloc(TopTransactionContext, sizeof(ItemPointerData) * cap);
			p->level = MemoryContextAlloc(TopTransactionContext, sizeof(int) * cap);
			p->x = MemoryContextAllocHuge(TopTransactionContext, sizeof(float) * (Size) cap * dim);
		}
		else
		{
			p->tids = repalloc(p->tids, sizeof(ItemPointerData) * cap);
			p->level = repalloc(p->level, sizeof(int) * cap);
			p->x = repalloc_huge(p->x, sizeof(float) * (Size) cap * dim);
		}
		p->capacity = cap;
	}
	p->tids[p->n] = *tid;
	p->level[p->n] = GetCurrentTransactionNestLevel();
	memcpy(p->x + (Size) p->n * dim, x, sizeof(float) * dim);
	p->n++;

	if ((Size) p->n * LSH_ENTRY_SIZE(dim) >= (Size) work_mem * 1024)
		write_pending(index, p);
}
