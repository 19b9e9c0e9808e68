/*
 * lshinsert.c
 *	  Inserting one vector into an lsh index: hash it, append it to its list.
 *
 * The list's directory item says where to start looking for room
 * (insert_page); the insert walks at most LSH_INSERT_WALK pages of the chain
 * from there (a full chain walk per page fill made inserts 5x slower), and
 * moves insert_page forward when it had to skip full pages.  When none of
 * them has room, a new page becomes the head of the chain: the new page and the
 * directory item change in one WAL record, so a crash leaves either both or
 * neither.
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "lsh.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
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

/* Add entry to page if it fits, WAL-logged; the caller holds the lock. */
static bool
try_add(Relation index, Buffer buf, const LshEntry *entry, Size size)
{
	GenericXLogState *xlog;
	Page		page;

	if (PageGetFreeSpace(BufferGetPage(buf)) < MAXALIGN(size))
		return false;
	xlog = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(xlog, buf, 0);
	if (PageAddItem(page, (Item) entry, size, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
		elog(ERROR, "lsh: failed to add entry to block %u of \"%s\"",
			 BufferGetBlockNumber(buf), RelationGetRelationName(index));
	GenericXLogFinish(xlog);
	return true;
}

void
lsh_add_entry(Relation index, const LshState *state, int list,
			  const LshEntry *entry, Size size)
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
	GenericXLogState *xlog;
	Page		dirpage;
	Page		page;

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

		buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (try_add(index, buf, entry, size))
		{
			UnlockReleaseBuffer(buf);
			if (walked > 0)
				advance_hint(index, dirblk, off, hint, blk);
			return;
		}
		next = LshPageGetOpaque(BufferGetPage(buf))->next;
		UnlockReleaseBuffer(buf);
		blk = next;
		walked++;
	}

	/* no room: a new head page, unless someone added one meanwhile */
	dirbuf = ReadBuffer(index, dirblk);
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	item = (LshListItem *) PageGetItem(BufferGetPage(dirbuf), PageGetItemId(BufferGetPage(dirbuf), off));
	if (item->head != seen_head && BlockNumberIsValid(item->head))
	{
		buf = ReadBuffer(index, item->head);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (try_add(index, buf, entry, size))
		{
			UnlockReleaseBuffer(buf);
			UnlockReleaseBuffer(dirbuf);
			return;
		}
		UnlockReleaseBuffer(buf);
	}

	buf = lsh_new_buffer(index, MAIN_FORKNUM);
	xlog = GenericXLogStart(index);
	dirpage = GenericXLogRegisterBuffer(xlog, dirbuf, 0);
	page = GenericXLogRegisterBuffer(xlog, buf, GENERIC_XLOG_FULL_IMAGE);
	item = (LshListItem *) PageGetItem(dirpage, PageGetItemId(dirpage, off));
	lsh_init_page(page, LSH_PAGE_ENTRY);
	LshPageGetOpaque(page)->next = item->head;
	if (PageAddItem(page, (Item) entry, size, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
		elog(ERROR, "lsh: entry of %zu bytes does not fit on an empty page", size);
	item->head = BufferGetBlockNumber(buf);
	item->insert_page = item->head;
	GenericXLogFinish(xlog);
	UnlockReleaseBuffer(buf);
	UnlockReleaseBuffer(dirbuf);
}

bool
lsh_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
		   Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
		   IndexInfo *indexInfo)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	Embedding  *e;
	LshState   *state;
	LshEntry   *entry;
	float	   *work;
	int			list;

	/* NULLs are not indexed: no distance orders them */
	if (isnull[0])
		return false;

	/* one memory context per statement, reset per row (not created per row) */
	cxt = (MemoryContext) indexInfo->ii_AmCache;
	if (cxt == NULL)
	{
		cxt = AllocSetContextCreate(indexInfo->ii_Context, "lsh insert", ALLOCSET_DEFAULT_SIZES);
		indexInfo->ii_AmCache = cxt;
	}
	oldcxt = MemoryContextSwitchTo(cxt);

	e = DatumGetEmbeddingP(values[0]);
	state = lsh_get_state(index);
	if (!state->meta.has_model)
	{
		lsh_check_value(index, &state->meta, e, false);
		lsh_fix_model(index, e);
		state = lsh_get_state(index);
	}
	lsh_check_value(index, &state->meta, e, false);

	work = palloc(sizeof(float) * (e->dim + state->meta.nlists));
	list = lsh_hash(state, EMBEDDING_VEC(e), work);

	entry = palloc0(LSH_ENTRY_SIZE(e->dim));
	entry->heap_tid = *heap_tid;
	memcpy(entry->x, EMBEDDING_VEC(e), sizeof(float) * e->dim);
	lsh_add_entry(index, state, list, entry, LSH_ENTRY_SIZE(e->dim));

	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(cxt);
	return false;
}
