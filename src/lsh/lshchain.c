/*
 * lshchain.c
 *	  A list's chain of entry pages: walking it (scan, VACUUM, fct_lsh_stats,
 *	  fct_lsh_verify, and an insert looking for room) and appending entries to
 *	  it (the pending rows of lshpending.c).
 *
 * A chain is read one page at a time, each pinned and locked only while its
 * visitor runs; what a walk needs from a page is copied out (or computed)
 * before the lock is released, and no pin is kept (see lsh.h, Locking).
 *
 * Appending: the list's directory item says where to start looking for room
 * (insert_page); an append walks at most LSH_INSERT_WALK pages of the chain
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
#include "commands/vacuum.h"
#include "lsh.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#define LSH_INSERT_WALK 4

/*
 * Call visit for every page of the chain from start (a page of list's chain),
 * each pinned and locked in lockmode during the call, until visit returns
 * false; the number of pages visited.  A visitor may change its page through
 * GenericXLog (under BUFFER_LOCK_EXCLUSIVE) but not its link.  strategy is
 * VACUUM's ring of buffers, and a walk with one waits at VACUUM's cost delay
 * points; every other walk passes NULL.
 */
int64
lsh_walk_pages(Relation index, int list, BlockNumber start, int lockmode,
			   BufferAccessStrategy strategy, lsh_page_visitor visit, void *arg)
{
	int64		pages = 0;
	BlockNumber blk = start;

	while (BlockNumberIsValid(blk))
	{
		Buffer		buf;
		bool		more;

		/* never wait for the cost delay holding a lock */
		if (strategy != NULL)
			vacuum_delay_point();
		else
			CHECK_FOR_INTERRUPTS();
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, lockmode);
		if (LshPageGetOpaque(BufferGetPage(buf))->flags != LSH_PAGE_ENTRY)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("lsh index \"%s\": block %u in the chain of list %d is not an entry page",
							RelationGetRelationName(index), blk, list),
					 errhint("REINDEX the index.")));
		more = visit(list, buf, arg);
		pages++;
		/* after a GenericXLog change the buffer holds the new page */
		blk = LshPageGetOpaque(BufferGetPage(buf))->next;
		UnlockReleaseBuffer(buf);
		if (!more)
			break;
	}
	return pages;
}

typedef struct EntryWalk
{
	lsh_entry_visitor visit;
	void	   *arg;
} EntryWalk;

static bool
entry_walk_page(int list, Buffer buf, void *arg)
{
	EntryWalk  *w = arg;
	Page		page = BufferGetPage(buf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

	w->visit(list, maxoff, NULL, w->arg);
	for (OffsetNumber i = FirstOffsetNumber; i <= maxoff; i++)
	{
		ItemId		iid = PageGetItemId(page, i);

		if (ItemIdIsNormal(iid))
			w->visit(list, maxoff, (const LshEntry *) PageGetItem(page, iid), w->arg);
	}
	return true;
}

/*
 * Call visit for every live entry of the chain that starts at head (list's
 * chain), each page under a share lock; the number of pages read.
 */
int64
lsh_walk_chain(Relation index, int list, BlockNumber head,
			   lsh_entry_visitor visit, void *arg)
{
	EntryWalk	w = {visit, arg};

	return lsh_walk_pages(index, list, head, BUFFER_LOCK_SHARE, NULL,
						  entry_walk_page, &w);
}

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
widen_bounds(Relation index, int list, BlockNumber dirblk, OffsetNumber off,
			 const float *resid, const float *norm, int n)
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
		changed |= lsh_item_widen(&want, resid[i], norm[i]);
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

/* What an append's walk of the pages from insert_page has left to write. */
typedef struct AppendWalk
{
	Relation	index;
	const char *entries;		/* the entries not written yet */
	int			n;
	Size		size;
	int			walked;			/* full pages passed */
	BlockNumber done_at;		/* the page that took the last entry */
} AppendWalk;

static bool
append_page(int list, Buffer buf, void *arg)
{
	AppendWalk *a = arg;
	int			added = add_to_page(a->index, buf, a->entries, a->n, a->size);

	a->entries += (Size) added * a->size;
	a->n -= added;
	if (a->n == 0)
	{
		a->done_at = BufferGetBlockNumber(buf);
		return false;
	}
	/* full */
	a->walked++;
	return a->walked < LSH_INSERT_WALK;
}

/*
 * Append n entries (size bytes each, contiguous) to a list: on the pages from
 * its insert_page on, then on new head pages.  resid and norm: each row's
 * geometry (lsh_member_geometry) when the index has bounds, from the rows'
 * vectors (a coded entry holds none).
 */
void
lsh_add_entries(Relation index, const LshState *state, int list,
				const char *entries, int n, Size size,
				const float *resid, const float *norm)
{
	OffsetNumber off;
	BlockNumber dirblk = lsh_dir_block(&state->meta, list, &off);
	Buffer		dirbuf;
	Buffer		buf;
	LshListItem *item;
	BlockNumber seen_head;
	BlockNumber hint;
	AppendWalk	a = {index, entries, n, size, 0, InvalidBlockNumber};

	if (lsh_has_bounds(&state->meta))
		widen_bounds(index, list, dirblk, off, resid, norm, n);

	/* where to start */
	dirbuf = ReadBuffer(index, dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_SHARE);
	item = (LshListItem *) PageGetItem(BufferGetPage(dirbuf), PageGetItemId(BufferGetPage(dirbuf), off));
	hint = item->insert_page;
	seen_head = item->head;
	UnlockReleaseBuffer(dirbuf);

	lsh_walk_pages(index, list, hint, BUFFER_LOCK_EXCLUSIVE, NULL, append_page, &a);
	if (a.n == 0)
	{
		if (a.done_at != hint)
			advance_hint(index, dirblk, off, hint, a.done_at);
		return;
	}
	entries = a.entries;
	n = a.n;

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
