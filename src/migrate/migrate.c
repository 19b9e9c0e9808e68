/*
 * migrate.c
 *	  Lazy, batched, resumable migration of stored rows into a newer model's
 *	  space: the batch engine (see migrate.h for its invariants), which the
 *	  procedure (migrate_procedure.c) and the queue's workers
 *	  (migrate_worker.c) run.
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "type/embedding.h"
#include "model/model.h"
#include "migrate/migrate.h"
#include "progress/progress.h"
#include "query/query.h"
#include "upgrade/transform.h"

/* ---------------------------------------------------------------------
 * The batch engine
 * ---------------------------------------------------------------------
 */

/*
 * Rows per call of transform_upgrade_batch: its scratch matrices (and the
 * upgraded values) then stay small enough to be reused by malloc from one
 * call to the next, instead of being mapped and faulted in again.
 */
#define MIGRATE_UPGRADE_CHUNK	1024

/*
 * Write phases of a batch.  The rows of each block are written in this many
 * steps, each committed before the next: the rows of the first phase go to
 * other pages (a full page has no room for their new versions), but once that
 * commit is past, the next write prunes their old versions and the rows of
 * the next phase fit on their own page, as HOT updates that insert nothing
 * into the table's indexes; and so on.  A concurrent snapshot older than the
 * commit keeps the space from being pruned, and then the rows simply go to
 * other pages as in the first phase.
 *
 * The phases are pipelined: the step that reads batch k writes its first
 * phase together with the second phase of batch k - 1, the third of batch
 * k - 2 and so on, in one UPDATE over their blocks (consecutive ranges), so a
 * run commits once per batch, not once per phase.
 */
#define MIGRATE_WRITE_PHASES	4

/*
 * Rows sorted by ctid, with their old and upgraded values; the rows being
 * written are the ones fct_migrate_pending and fct_migrate_upgraded see.
 */
typedef struct Batch
{
	int			n;
	int			cap;
	ItemPointerData *tids;
	Embedding **old;
	Embedding **new;
	int			last;			/* the row pending() matched last */
} Batch;

/*
 * The batch of a run.  The arrays are allocated once per run and grown when
 * needed; the values live in the run's batch context, reset at every batch.
 */
typedef struct MigrateBatch
{
	Batch		all;			/* the rows read by this step */
	uint8	   *phase;			/* their write phases */
	Batch		pend;			/* rows read by earlier steps, not yet written */
	int64	   *due;			/* the step that writes each of them */
	Batch		cur;			/* the rows this step writes */
	int64		step;			/* steps so far */
	MemoryContext cxt;			/* parent of the slots */
	MemoryContext slot[MIGRATE_WRITE_PHASES];	/* the values of the batch
												 * read by step s live in
												 * slot[s % phases] */
	List	   *results;		/* the reads' SPI results, which old[] points into */
} MigrateBatch;

/* The rows being written (NULL outside the write). */
static Batch *writing = NULL;

static void
batch_alloc(Batch *b, int cap)
{
	b->n = 0;
	b->cap = cap;
	b->tids = palloc(sizeof(ItemPointerData) * cap);
	b->old = palloc(sizeof(Embedding *) * cap);
	b->new = palloc(sizeof(Embedding *) * cap);
}

static void
batch_grow(Batch *b, int cap)
{
	b->cap = cap;
	b->tids = repalloc_huge(b->tids, sizeof(ItemPointerData) * cap);
	b->old = repalloc_huge(b->old, sizeof(Embedding *) * cap);
	b->new = repalloc_huge(b->new, sizeof(Embedding *) * cap);
}

static void
batch_free(Batch *b)
{
	pfree(b->tids);
	pfree(b->old);
	pfree(b->new);
}

static BlockNumber
table_blocks(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	BlockNumber n = RelationGetNumberOfBlocks(rel);

	table_close(rel, AccessShareLock);
	return n;
}

/*
 * Prepare and keep a plan.  Always the generic plan: a custom plan for the
 * write would see 10000-element arrays and could pick a hash join over a
 * sequential scan of the whole table, once per batch.
 */
static SPIPlanPtr
prepare_saved(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
										  CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* The census, and rows_per_block for the first reads. */
static int64
census_left(MigrateRun *run)
{
	int64		total;
	List	   *models = NIL;
	int64		left = migrate_census(&run->target, &total, &models);
	BlockNumber blocks = table_blocks(run->target.relid);

	/* before the first write of a run: will the table take the new values? */
	if (left > 0 && run->pass == 0)
		migrate_check_writes(&run->target, models);
	list_free(models);

	run->rows_per_block = blocks > 0 ? Max((double) total / blocks, 1.0) : 1.0;
	return left;
}

/*
 * The number of rows not in the target model, as of a fresh snapshot: what
 * a pass has left (rows changed concurrently, or written by others behind
 * the sweep).  A filtered count, cheaper than a census; the models of rows
 * written meanwhile are checked by the upgrade itself.
 */
static int64
count_left(MigrateRun *run)
{
	Datum		arg = Int32GetDatum(run->target.to_model);
	int			ret;
	bool		isnull;
	int64		left;

	ret = SPI_execute_plan(run->count_plan, &arg, NULL, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "counting the rows left in %s failed: %s",
			 run->target.display, SPI_result_code_string(ret));
	left = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return left;
}

static void
start_pass(MigrateRun *run, int64 left)
{
	run->pass++;
	run->next_block = 0;
	run->pass_end = table_blocks(run->target.relid);
	run->rows_left_at_start = left;
	run->rows_left = left;
	run->rows_done_pass = 0;
	run->cands_seen = 0;
	run->blocks_seen = 0;
	run->last_range = 0;
}

MigrateRun *
migrate_run_begin(const MigrateTarget *target, int batch_size)
{
	MigrateRun *run = palloc0(sizeof(MigrateRun));
	MigrateTarget *t = &run->target;
	Oid			argtypes[3];
	MigrateBatch *mb;
	int64		left;

	*t = *target;
	run->batch_size = batch_size;

	mb = run->batch = palloc0(sizeof(MigrateBatch));

	/*
	 * The values of a batch (the upgraded ones, and the old ones of its later
	 * write phases) in a context whose first block is kept across resets and
	 * is large enough for them (chunks are rounded up to a power of two): a
	 * reset then gives nothing back to malloc, which would otherwise return it
	 * to the kernel and fault it in again.  One such context per batch in
	 * flight (MIGRATE_WRITE_PHASES).
	 */
	{
		const FctModel *to = model_by_id(t->to_model);
		Size		chunk = pg_nextpower2_size_t(EMBEDDING_SIZE(to->dim, to->side_dim)) + 16;
		Size		keep = Min(Max((Size) batch_size * 2 * chunk + (Size) 64 * 1024,
								   (Size) ALLOCSET_DEFAULT_INITSIZE),
							   (Size) 16 * 1024 * 1024);
		int			p;

		keep = MAXALIGN(keep);
		mb->cxt = AllocSetContextCreate(CurrentMemoryContext, "fct migrate",
										ALLOCSET_SMALL_SIZES);
		for (p = 0; p < MIGRATE_WRITE_PHASES; p++)
			mb->slot[p] = AllocSetContextCreate(mb->cxt, "fct migrate batch",
												keep, keep,
												Max(keep, (Size) ALLOCSET_DEFAULT_MAXSIZE));
		run->batch_cxt = mb->slot[0];
	}
	batch_alloc(&mb->all, batch_size + 64);
	mb->phase = palloc(sizeof(uint8) * mb->all.cap);
	batch_alloc(&mb->pend, MIGRATE_WRITE_PHASES * (batch_size + 64));
	mb->due = palloc(sizeof(int64) * mb->pend.cap);
	batch_alloc(&mb->cur, MIGRATE_WRITE_PHASES * (batch_size + 64));
	get_typlenbyvalalign(t->typid, &run->typlen, &run->typbyval,
						 &run->typalign);

	/*
	 * A TID range scan over whole blocks, [($1,0), ($2,0)), returning only
	 * the rows not yet in the target ($3): rows already upgraded are not
	 * copied out of the table at all.
	 */
	argtypes[0] = TIDOID;
	argtypes[1] = TIDOID;
	argtypes[2] = INT4OID;
	run->read_plan = prepare_saved(psprintf("SELECT ctid, %s FROM %s WHERE ctid " SQL_GE " $1 AND ctid " SQL_LT " $2 "
											"AND %s(%s) " SQL_NE " $3",
											t->colname, t->relname,
											query_ext_name("_fct_migrate_model_id"), t->colname),
								   3, argtypes);

	/*
	 * The write: the same kind of TID range scan, over the blocks the batch
	 * came from, so that it costs what UPDATE t SET col = ... costs.  The
	 * upgraded values come from the batch in this backend's memory
	 * (fct_migrate_pending matches a row by ctid and by its old value, byte
	 * for byte; fct_migrate_upgraded returns its new value).  A row updated
	 * since the read has a new ctid, and the UPDATE re-checks its quals on
	 * the newest version (EvalPlanQual), so it is skipped; rows of the range
	 * that the batch did not read are skipped too.
	 */
	run->write_plan = prepare_saved(psprintf("UPDATE %s AS t SET %s = %s(t.ctid) "
											 "WHERE t.ctid " SQL_GE " $1 AND t.ctid " SQL_LT " $2 "
											 "AND %s(t.ctid, t.%s)",
											 t->relname, t->colname,
											 query_ext_name("_fct_migrate_upgraded"),
											 query_ext_name("_fct_migrate_pending"), t->colname),
									2, argtypes);

	argtypes[0] = INT4OID;
	run->count_plan = prepare_saved(psprintf("SELECT pg_catalog.count(*) FROM %s WHERE %s(%s) " SQL_NE " $1",
											 t->relname, query_ext_name("_fct_migrate_model_id"),
											 t->colname),
									1, argtypes);

	run->started = GetCurrentTimestamp();
	left = census_left(run);
	start_pass(run, left);
	if (left == 0)
		run->finished = true;
	return run;
}

/*
 * Read the rows of blocks [from, to) that are not yet in the target, into
 * the batch.  Returns the block where the next read starts: to, or the
 * block where the batch went past batch_size (its rows are dropped, to be
 * read again by the next batch), so that a batch exceeds batch_size only
 * when its first block alone does.
 */
static BlockNumber
read_range(MigrateRun *run, MigrateBatch *mb, BlockNumber from, BlockNumber to)
{
	Batch	   *b = &mb->all;
	Datum		args[3];
	ItemPointerData lo;
	ItemPointerData hi;
	int			ret;
	uint64		i;
	TupleDesc	desc;

	ItemPointerSet(&lo, from, 0);
	ItemPointerSet(&hi, to, 0);
	args[0] = PointerGetDatum(&lo);
	args[1] = PointerGetDatum(&hi);
	args[2] = Int32GetDatum(run->target.to_model);

	/* read_only: the read uses the snapshot the batch holds */
	ret = SPI_execute_plan(run->read_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading %s failed: %s", run->target.display,
			 SPI_result_code_string(ret));

	/*
	 * SPI returns in its procedure context, which lives as long as the CALL:
	 * what the batch allocates goes to the batch context, reset at every
	 * batch.
	 */
	MemoryContextSwitchTo(run->batch_cxt);
	desc = SPI_tuptable->tupdesc;
	if (b->n + SPI_processed > (uint64) b->cap)
	{
		/* a read bigger than planned (rows per block above the estimate) */
		batch_grow(b, b->n + SPI_processed + 64);
		mb->phase = repalloc_huge(mb->phase, sizeof(uint8) * b->cap);
	}
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		Datum		d = SPI_getbinval(tup, desc, 2, &isnull);
		Embedding  *e;

		if (isnull)
			continue;
		/* no copy: the SPI result is kept until the batch is written */
		e = (Embedding *) PG_DETOAST_DATUM(d);
		if (e->model_id == run->target.to_model)
			continue;
		b->tids[b->n] = *(ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 1, &isnull));
		b->old[b->n] = e;
		b->n++;
	}
	run->cands_seen += SPI_processed;
	run->blocks_seen += to - from;
	if (SPI_processed > 0)
		mb->results = lappend(mb->results, SPI_tuptable);
	else
		SPI_freetuptable(SPI_tuptable);

	if (b->n > run->batch_size)
	{
		BlockNumber cut = ItemPointerGetBlockNumber(&b->tids[run->batch_size]);

		if (cut > ItemPointerGetBlockNumber(&b->tids[0]))
		{
			while (b->n > 0 && ItemPointerGetBlockNumber(&b->tids[b->n - 1]) >= cut)
				b->n--;
			return cut;
		}
	}
	return to;
}

static int
tid_cmp(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

/*
 * Give each row read by this step its write phase: the rows of a block are
 * split into MIGRATE_WRITE_PHASES parts in ctid order, so that each phase
 * frees on the page about the room the next one needs.
 */
static void
assign_phases(MigrateBatch *mb)
{
	Batch	   *all = &mb->all;
	int			start = 0;

	while (start < all->n)
	{
		BlockNumber blk = ItemPointerGetBlockNumber(&all->tids[start]);
		int			end = start + 1;
		int			j;

		while (end < all->n && ItemPointerGetBlockNumber(&all->tids[end]) == blk)
			end++;
		for (j = start; j < end; j++)
			mb->phase[j] = (uint8) ((j - start) * MIGRATE_WRITE_PHASES / (end - start));
		start = end;
	}
}

static void
batch_push(Batch *b, ItemPointer tid, Embedding *old, Embedding *new)
{
	if (b->n == b->cap)
		batch_grow(b, 2 * b->cap);
	b->tids[b->n] = *tid;
	b->old[b->n] = old;
	b->new[b->n] = new;
	b->n++;
}

/*
 * The rows this step writes (the pending rows due now, then the first phase
 * of the rows just read: ctid order, since batches are consecutive ranges of
 * blocks), and the rows left pending (the others, with their old values
 * copied out of the SPI results into the batch's context).
 */
static void
plan_step(MigrateBatch *mb, int64 step)
{
	Batch	   *pend = &mb->pend;
	Batch	   *all = &mb->all;
	int			keep = 0;
	int			i;

	mb->cur.n = 0;
	for (i = 0; i < pend->n; i++)
	{
		if (mb->due[i] == step)
			batch_push(&mb->cur, &pend->tids[i], pend->old[i], pend->new[i]);
		else
		{
			pend->tids[keep] = pend->tids[i];
			pend->old[keep] = pend->old[i];
			pend->new[keep] = pend->new[i];
			mb->due[keep] = mb->due[i];
			keep++;
		}
	}
	pend->n = keep;
	for (i = 0; i < all->n; i++)
	{
		if (mb->phase[i] == 0)
			batch_push(&mb->cur, &all->tids[i], all->old[i], all->new[i]);
		else
		{
			Embedding  *copy = palloc(VARSIZE(all->old[i]));

			memcpy(copy, all->old[i], VARSIZE(all->old[i]));
			if (pend->n == pend->cap)
			{
				batch_grow(pend, 2 * pend->cap);
				mb->due = repalloc_huge(mb->due, sizeof(int64) * pend->cap);
			}
			mb->due[pend->n] = step + mb->phase[i];
			batch_push(pend, &all->tids[i], copy, all->new[i]);
		}
	}
}

/* Write the rows of this step in one statement; returns the rows written. */
static int64
write_rows(MigrateRun *run, Batch *b)
{
	ItemPointerData lo;
	ItemPointerData hi;
	Datum		args[2];
	int			ret;
	int			i;

	if (b->n == 0)
		return 0;
	/* fct_migrate_pending relies on ctid order */
	for (i = 1; i < b->n; i++)
		if (ItemPointerCompare(&b->tids[i - 1], &b->tids[i]) >= 0)
			elog(ERROR, "fct_migrate: batch is not in ctid order");
	ItemPointerSet(&lo, ItemPointerGetBlockNumber(&b->tids[0]), 0);
	ItemPointerSet(&hi, ItemPointerGetBlockNumber(&b->tids[b->n - 1]) + 1, 0);
	args[0] = PointerGetDatum(&lo);
	args[1] = PointerGetDatum(&hi);

	/* not read_only: a fresh snapshot, so that the UPDATE sees every commit */
	b->last = -1;
	writing = b;
	PG_TRY();
	{
		ret = SPI_execute_plan(run->write_plan, args, NULL, false, 0);
	}
	PG_FINALLY();
	{
		writing = NULL;
	}
	PG_END_TRY();
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "writing %s failed: %s", run->target.display,
			 SPI_result_code_string(ret));
	MemoryContextSwitchTo(run->batch_cxt);
	return (int64) SPI_processed;
}

/* The batch row with this ctid, or -1. */
static int
batch_find(const Batch *b, ItemPointer tid)
{
	ItemPointerData *hit = bsearch(tid, b->tids, b->n, sizeof(ItemPointerData),
								   tid_cmp);

	return hit ? (int) (hit - b->tids) : -1;
}

PG_FUNCTION_INFO_V1(fct_migrate_pending);
PG_FUNCTION_INFO_V1(fct_migrate_upgraded);

/*
 * fct_migrate_pending(tid, embedding) -> boolean: is this row, with this
 * very value, in the batch being written?  Internal to fct_migrate.
 */
Datum
fct_migrate_pending(PG_FUNCTION_ARGS)
{
	ItemPointer tid = (ItemPointer) PG_GETARG_POINTER(0);
	Embedding  *e;
	Embedding  *old;
	int			i;

	if (writing == NULL)
		PG_RETURN_BOOL(false);
	if (writing->last >= 0 && writing->last + 1 < writing->n &&
		ItemPointerEquals(&writing->tids[writing->last + 1], tid))
		i = writing->last + 1;	/* the usual case: the next row in order */
	else if ((i = batch_find(writing, tid)) < 0)
		PG_RETURN_BOOL(false);
	e = PG_GETARG_EMBEDDING_P(1);
	old = writing->old[i];
	if (VARSIZE(e) != VARSIZE(old) || memcmp(e, old, VARSIZE(e)) != 0)
		PG_RETURN_BOOL(false);
	writing->last = i;
	PG_RETURN_BOOL(true);
}

/*
 * fct_migrate_upgraded(tid) -> embedding: the upgraded value of the batch
 * row that fct_migrate_pending just matched.  Internal to fct_migrate.
 */
Datum
fct_migrate_upgraded(PG_FUNCTION_ARGS)
{
	ItemPointer tid = (ItemPointer) PG_GETARG_POINTER(0);
	int			i;

	if (writing == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("fct_migrate_upgraded is internal to fct_migrate")));
	if (writing->last >= 0 && ItemPointerEquals(&writing->tids[writing->last], tid))
		i = writing->last;
	else if ((i = batch_find(writing, tid)) < 0)
		elog(ERROR, "fct_migrate: row (%u,%u) is not in the batch",
			 ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid));
	PG_RETURN_EMBEDDING_P(writing->new[i]);
}

PG_FUNCTION_INFO_V1(fct_migrate_model_id);

/*
 * fct_migrate_model_id(embedding) -> integer: the id of the value's model
 * (0 when it names none), read from its header without looking the model
 * up.  Internal to fct_migrate: its census and its reads filter on it.
 */
Datum
fct_migrate_model_id(PG_FUNCTION_ARGS)
{
	Datum		d = PG_GETARG_DATUM(0);
	Embedding  *e;

	/* only the header is needed: a compressed or out-of-line value is sliced */
	if (VARATT_IS_EXTENDED(DatumGetPointer(d)) && !VARATT_IS_SHORT(DatumGetPointer(d)))
		e = (Embedding *) PG_DETOAST_DATUM_SLICE(d, 0, offsetof(Embedding, x));
	else
		e = (Embedding *) PG_DETOAST_DATUM(d);
	PG_RETURN_INT32(e->model_id);
}

/*
 * How many blocks the next read covers: enough for the rows the batch still
 * needs, judging by the rows to upgrade found per block so far in this pass
 * (all rows of a block, by the census, before any read), wider while none
 * is found, but never more blocks than hold a few batches' worth of rows
 * (the read's result is held in memory).
 */
static BlockNumber
range_blocks(MigrateRun *run, int needed)
{
	double		n;

	if (run->blocks_seen == 0)
		n = needed / run->rows_per_block;
	else if (run->cands_seen == 0)
		n = 2.0 * run->last_range;	/* nothing to upgrade yet: probe wider */
	else
		n = needed / ((double) run->cands_seen / run->blocks_seen);
	n = Min(n, 4.0 * run->batch_size / run->rows_per_block);
	n = Min(Max(ceil(n), 1.0), (double) (run->pass_end - run->next_block));
	run->last_range = (BlockNumber) n;
	return run->last_range;
}

bool
migrate_run_step(MigrateRun *run)
{
	MemoryContext oldcxt;
	MigrateBatch *mb = run->batch;
	Batch	   *all = &mb->all;
	int64		step;
	ListCell   *lc;
	TimestampTz t0 = GetCurrentTimestamp();
	long		secs;
	int			usecs;
	int64		written;

	if (run->finished && mb->pend.n == 0)
		return false;

	/* the rows read MIGRATE_WRITE_PHASES steps ago have all been written */
	step = mb->step++;
	run->batch_cxt = mb->slot[step % MIGRATE_WRITE_PHASES];
	MemoryContextReset(run->batch_cxt);
	oldcxt = MemoryContextSwitchTo(run->batch_cxt);
	all->n = 0;
	mb->results = NIL;

	/*
	 * Hold one snapshot from the read to the write: it keeps this backend's
	 * xmin, so no tuple this step has read can be pruned and its line pointer
	 * reused before the write looks at it.  (Rows read by earlier steps come
	 * after a commit; they rely on the comparison of the old value, byte for
	 * byte: a row that holds it now is a row whose upgrade is the value
	 * written.)
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	while (!run->finished && all->n < run->batch_size)
	{
		BlockNumber nblocks;
		BlockNumber from;

		CHECK_FOR_INTERRUPTS();
		if (run->next_block >= run->pass_end)
		{
			int64		left;

			/* write what we have and the rows pending; the count comes next */
			if (all->n > 0 || mb->pend.n > 0)
				break;
			left = count_left(run);
			MemoryContextSwitchTo(run->batch_cxt);
			if (left == 0 || run->pass >= MIGRATE_MAX_PASSES)
			{
				run->rows_left = left;
				run->finished = true;

				/*
				 * The steps committed asynchronously (below): make them all
				 * durable before the run says it is done.
				 */
				if (!XLogRecPtrIsInvalid(XactLastCommitEnd))
					XLogFlush(XactLastCommitEnd);
				break;
			}
			start_pass(run, left);
			continue;
		}
		nblocks = range_blocks(run, run->batch_size - all->n);
		from = run->next_block;
		run->next_block = read_range(run, mb, from, from + nblocks);
		if (run->next_block < from + nblocks)
			break;				/* the batch is full, up to whole blocks */
	}

	if (all->n > 0)
	{
		int			i;

		for (i = 0; i < all->n; i += MIGRATE_UPGRADE_CHUNK)
			transform_upgrade_batch(all->old + i, Min(MIGRATE_UPGRADE_CHUNK, all->n - i),
									run->target.to_model, all->new + i);
		assign_phases(mb);
	}
	plan_step(mb, step);

	/*
	 * A step lost in a crash is redone by the next run (its rows are still
	 * not in the target model, which is what a run looks for), so its commit
	 * need not wait for the WAL to reach the disk: with one commit per batch,
	 * those waits would otherwise stall the migration between batches.  The
	 * end of the run flushes them all (above).
	 */
	if (mb->cur.n > 0)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
								 false);
	written = write_rows(run, &mb->cur);
	if (all->n > 0 || mb->cur.n > 0)
		run->batches++;
	run->batch_rows = written;
	run->rows_done += written;
	run->rows_done_pass += written;
	run->rows_skipped += mb->cur.n - written;
	run->rows_left = Max(0, run->rows_left_at_start - run->rows_done_pass);

	foreach(lc, mb->results)
		SPI_freetuptable((SPITupleTable *) lfirst(lc));
	mb->results = NIL;
	PopActiveSnapshot();
	MemoryContextSwitchTo(oldcxt);

	TimestampDifference(t0, GetCurrentTimestamp(), &secs, &usecs);
	run->batch_secs = secs + usecs / 1e6;
	return mb->cur.n > 0 || mb->pend.n > 0 || !run->finished;
}

void
migrate_run_end(MigrateRun *run)
{
	SPI_freeplan(run->read_plan);
	SPI_freeplan(run->write_plan);
	SPI_freeplan(run->count_plan);
	MemoryContextDelete(run->batch->cxt);
	batch_free(&run->batch->all);
	batch_free(&run->batch->pend);
	batch_free(&run->batch->cur);
	pfree(run->batch->phase);
	pfree(run->batch->due);
	pfree(run->batch);
	pfree(run);
}

double
migrate_run_rate(const MigrateRun *run)
{
	return progress_rate(run->started, run->rows_done);
}

void
migrate_progress(const MigrateTarget *target, const MigrateRun *run, int64 job_id)
{
	StringInfoData m;
	char	   *what = psprintf("%s -> %s", target->display, target->to_model_name);

	initStringInfo(&m);
	progress_append_member(&m, "table", target->relname);
	progress_append_member(&m, "column", target->attname);
	progress_append_member(&m, "to_model", target->to_model_name);
	if (job_id > 0)
		appendStringInfo(&m, ",\"job\":" INT64_FORMAT, job_id);
	if (run == NULL)
	{
		progress_report("fct_migrate", what, "census and checks", 0, -1, m.data);
		pfree(m.data);
		pfree(what);
		return;
	}
	/* the view's started: the run's start (a worker's statements are its batches) */
	progress_append_member(&m, "started", timestamptz_to_str(run->started));
	appendStringInfo(&m, ",\"rows_left\":" INT64_FORMAT ",\"batches\":" INT64_FORMAT
					 ",\"pass\":%d,\"batch_size\":%d,\"skipped\":" INT64_FORMAT
					 ",\"rate\":%.1f",
					 run->rows_left, run->batches, run->pass, run->batch_size,
					 run->rows_skipped, migrate_run_rate(run));
	progress_report("fct_migrate", what, "upgrading", run->rows_done,
					run->rows_done + run->rows_left, m.data);
	pfree(m.data);
	pfree(what);
}

/* ---------------------------------------------------------------------
 * Shared by the procedure, the queue and the workers
 * ---------------------------------------------------------------------
 */

/* "1 row", "2 rows": a count of rows in a message, in the number it needs. */
char *
migrate_rows_text(int64 n)
{
	return n == 1 ? pstrdup("1 row") : psprintf("%lld rows", (long long) n);
}

void
migrate_check_batch_size(int batch_size)
{
	if (batch_size < 1 || batch_size > MIGRATE_MAX_BATCH_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and %d", MIGRATE_MAX_BATCH_SIZE),
				 errdetail("batch_size was %d.", batch_size)));
}
