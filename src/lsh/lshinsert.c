/*
 * lshinsert.c
 *	  Inserting into an lsh index: lsh_insert checks the value and adds it to
 *	  the transaction's pending rows (lshpending.c); lsh_add_entries appends a
 *	  batch of entries of one list to its pages.
 *
 * The list's directory item says where to start looking for room
 * (insert_page); an insert walks at most LSH_INSERT_WALK pages of the chain
 * from there (a full chain walk per page fill made inserts 5x slower), and
 * moves insert_page forward when it had to skip full pages.  When none of
 * them has room, new pages become the head of the chain: each new page and
 * the directory item change in one WAL record, so a crash leaves either both
 * or neither.  Every page takes as many entries of the batch as fit in one
 * WAL record: GenericXLog compares the whole page once per record, not once
 * per entry.
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "fmgr.h"
#include "lsh.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#define LSH_INSERT_WALK 4

/* Point the list's insert_page at blk, unless someone changed it meanwhile. */
static void
advance_hint(Relation index, BlockNumber dirblk, OffsetNumber off,
			 BlockNumber from, BlockNumber blk)
{
	Buffer		dirbuf = ReadBuffer(index, dirblk);
	LshListItem *item;

	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	item = (LshListItem *) PageGetItem(BufferGetPage(dirbuf), PageGetItemId(BufferGetPage(dirbuf), off));
	if (item->insert_page == from)
	{
		GenericXLogState *xlog = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(xlog, dirbuf, 0);

		item = (LshListItem *) PageGetItem(page, PageGetItemId(page, off));
		item->insert_page = blk;
		GenericXLogFinish(xlog);
	}
	UnlockReleaseBuffer(dirbuf);
}

/*
 * Add as many of the n entries (size bytes each, contiguous) as fit on the
 * page, in one WAL record; how many.  The caller holds the lock.
 */
static int
add_to_page(Relation index, Buffer buf, const char *entries, int n, Size size)
{
	GenericXLogState *xlog;
	Page		page;
	int			added = 0;

	if (PageGetFreeSpace(BufferGetPage(buf)) < MAXALIGN(size))
		return 0;
	xlog = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(xlog, buf, 0);
	while (added < n && PageGetFreeSpace(page) >= MAXALIGN(size))
	{
		if (PageAddItem(page, (Item) (entries + (Size) added * size), size,
						InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "lsh: failed to add entry to block %u of \"%s\"",
				 BufferGetBlockNumber(buf), RelationGetRelationName(index));
		added++;
	}
	GenericXLogFinish(xlog);
	return added;
}

/*
 * Widen the list's bounds (lshbound.c) to cover the n entries, before they
 * are written: a scan that sees an entry must see bounds that hold it.  Most
 * batches fall inside the bounds the build set, and then nothing is written.
 */
static void
widen_bounds(Relation index, const LshState *state, int list,
			 BlockNumber dirblk, OffsetNumber off,
			 const char *entries, int n, Size size)
{
	LshListItem want;
	LshListItem *item;
	Buffer		dirbuf;
	bool		changed = false;

	dirbuf = ReadBuffer(index, dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_SHARE);
	want = *(LshListItem *) PageGetItem(BufferGetPage(dirbuf), PageGetItemId(BufferGetPage(dirbuf), off));
	UnlockReleaseBuffer(dirbuf);
	for (int i = 0; i < n; i++)
	{
		const LshEntry *e = (const LshEntry *) (entries + (Size) i * size);
		float		resid;
		float		norm;

		lsh_member_geometry(state, list, e->x, &resid, &norm);
		changed |= lsh_item_widen(&want, resid, norm);
	}
	if (!changed)
		return;

	dirbuf = ReadBuffer(index, dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	{
		GenericXLogState *xlog = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(xlog, dirbuf, 0);

		item = (LshListItem *) PageGetItem(page, PageGetItemId(page, off));
		/* widen, never narrow: another backend may have widened meanwhile */
		lsh_item_widen(item, want.rmin, want.maxnorm);
		lsh_item_widen(item, want.rmax, want.maxnorm);
		GenericXLogFinish(xlog);
	}
	UnlockReleaseBuffer(dirbuf);
}

/*
 * Append n entries (size bytes each, contiguous) to a list: on the pages from
 * its insert_page on, then on new head pages.
 */
void
lsh_add_entries(Relation index, const LshState *state, int list,
				const char *entries, int n, Size size)
{
	OffsetNumber off;
	BlockNumber dirblk = lsh_dir_block(&state->meta, list, &off);
	Buffer		dirbuf;
	Buffer		buf;
	LshListItem *item;
	BlockNumber blk;
	BlockNumber seen_head;
	BlockNumber hint;
	int			walked = 0;

	if (lsh_has_bounds(&state->meta))
		widen_bounds(index, state, list, dirblk, off, entries, n, size);

	/* where to start */
	dirbuf = ReadBuffer(index, dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_SHARE);
	item = (LshListItem *) PageGetItem(BufferGetPage(dirbuf), PageGetItemId(BufferGetPage(dirbuf), off));
	blk = hint = item->insert_page;
	seen_head = item->head;
	UnlockReleaseBuffer(dirbuf);

	while (BlockNumberIsValid(blk) && walked < LSH_INSERT_WALK)
	{
		BlockNumber next;
		int			added;

		buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		added = add_to_page(index, buf, entries, n, size);
		entries += (Size) added * size;
		n -= added;
		if (n == 0)
		{
			UnlockReleaseBuffer(buf);
			if (blk != hint)
				advance_hint(index, dirblk, off, hint, blk);
			return;
		}
		/* full */
		next = LshPageGetOpaque(BufferGetPage(buf))->next;
		UnlockReleaseBuffer(buf);
		blk = next;
		walked++;
	}

	/* no room: new head pages, unless someone added one meanwhile */
	dirbuf = ReadBuffer(index, dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	item = (LshListItem *) PageGetItem(BufferGetPage(dirbuf), PageGetItemId(BufferGetPage(dirbuf), off));
	if (item->head != seen_head && BlockNumberIsValid(item->head))
	{
		int			added;

		buf = ReadBuffer(index, item->head);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		added = add_to_page(index, buf, entries, n, size);
		entries += (Size) added * size;
		n -= added;
		UnlockReleaseBuffer(buf);
	}

	while (n > 0)
	{
		GenericXLogState *xlog;
		Page		dirpage;
		Page		page;

		buf = lsh_new_buffer(index, MAIN_FORKNUM);
		xlog = GenericXLogStart(index);
		dirpage = GenericXLogRegisterBuffer(xlog, dirbuf, 0);
		page = GenericXLogRegisterBuffer(xlog, buf, GENERIC_XLOG_FULL_IMAGE);
		item = (LshListItem *) PageGetItem(dirpage, PageGetItemId(dirpage, off));
		lsh_init_page(page, LSH_PAGE_ENTRY);
		LshPageGetOpaque(page)->next = item->head;
		if (PageGetFreeSpace(page) < MAXALIGN(size))
			elog(ERROR, "lsh: entry of %zu bytes does not fit on an empty page", size);
		while (n > 0 && PageGetFreeSpace(page) >= MAXALIGN(size))
		{
			if (PageAddItem(page, (Item) entries, size, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
				elog(ERROR, "lsh: failed to add entry to a new page of \"%s\"",
					 RelationGetRelationName(index));
			entries += size;
			n--;
		}
		item->head = BufferGetBlockNumber(buf);
		item->insert_page = item->head;
		GenericXLogFinish(xlog);
		UnlockReleaseBuffer(buf);
	}
	UnlockReleaseBuffer(dirbuf);
}

bool
lsh_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
		   Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
		   IndexInfo *indexInfo)
{
	Embedding  *e;
	LshState   *state;
	Datum		detoasted;

	/* NULLs are not indexed: no distance orders them */
	if (isnull[0])
		return false;

	detoasted = PointerGetDatum(PG_DETOAST_DATUM(values[0]));
	e = (Embedding *) DatumGetPointer(detoasted);
	state = lsh_get_state(index);
	if (!state->meta.has_model)
	{
		lsh_check_value(index, &state->meta, e, false);
		lsh_fix_model(index, e);
		state = lsh_get_state(index);
	}
	/* errors belong to the inserting statement: check now, write later */
	lsh_check_value(index, &state->meta, e, false);
	lsh_pending_add(index, state, heap_tid, EMBEDDING_VEC(e), e->dim);

	if (detoasted != values[0])
		pfree(DatumGetPointer(detoasted));
	return false;
}
