/*
 * lshpage.c
 *	  Pages of an lsh index: initialising them, adding one, finding a list's
 *	  directory item and reading the directory.  A list's chain of entry
 *	  pages is walked and appended to in lshchain.c.
 */
#include "postgres.h"

#include "lsh.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/rel.h"

void
lsh_init_page(Page page, uint16 flags)
{
	LshPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(LshPageOpaqueData));
	opaque = LshPageGetOpaque(page);
	opaque->next = InvalidBlockNumber;
	opaque->flags = flags;
	opaque->page_id = LSH_PAGE_ID;
}

/*
 * A new page at the end of the fork, pinned and exclusively locked.  The
 * caller initialises it inside its GenericXLog record.
 */
Buffer
lsh_new_buffer(Relation index, ForkNumber fork)
{
	Buffer		buf;
	bool		needLock = !RELATION_IS_LOCAL(index);

	if (needLock)
		LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	if (needLock)
		UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
}

BlockNumber
lsh_dir_block(const LshMetaPageData *meta, int list, OffsetNumber *off)
{
	*off = (OffsetNumber) (list % meta->lists_per_dirpage) + FirstOffsetNumber;
	return meta->dir_start + list / meta->lists_per_dirpage;
}

/* Copy the directory items of every list into items (meta->nlists of them). */
void
lsh_read_directory(Relation index, const LshMetaPageData *meta, LshListItem *items)
{
	int			done = 0;

	for (int d = 0; d < meta->ndirpages; d++)
	{
		Buffer		buf = ReadBuffer(index, meta->dir_start + d);
		Page		page;
		int			n = Min(meta->lists_per_dirpage, meta->nlists - done);

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (LshPageGetOpaque(page)->flags != LSH_PAGE_DIR || PageGetMaxOffsetNumber(page) < n)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("lsh index \"%s\": block %u is not the directory page it should be",
							RelationGetRelationName(index), meta->dir_start + d),
					 errhint("REINDEX the index.")));
		for (int i = 0; i < n; i++)
			items[done + i] = *(LshListItem *) PageGetItem(page, PageGetItemId(page, FirstOffsetNumber + i));
		UnlockReleaseBuffer(buf);
		done += n;
	}
}

/* The directory item of one list. */
void
lsh_read_list_item(Relation index, const LshMetaPageData *meta, int list, LshListItem *item)
{
	OffsetNumber off;
	BlockNumber blk = lsh_dir_block(meta, list, &off);
	Buffer		buf = ReadBuffer(index, blk);
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	*item = *(LshListItem *) PageGetItem(page, PageGetItemId(page, off));
	UnlockReleaseBuffer(buf);
}
