/*
 * lshvacuum.c
 *	  VACUUM of an lsh index: delete the entries of dead heap rows in place and
 *	  point each list's insert_page at the first page that has room, so that
 *	  inserts reuse the space.  Pages are never unlinked: a chain keeps its
 *	  pages, empty or not, until REINDEX.  The chains are walked through
 *	  lshchain.c, in VACUUM's ring of buffers and at its cost delay points.
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "lsh.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

/* One list's pass: what it deletes, counts and learns of the pages' room. */
typedef struct VacuumWalk
{
	Relation	index;
	IndexBulkDeleteResult *stats;
	IndexBulkDeleteCallback callback;
	void	   *callback_state;
	Size		entry_size;
	BlockNumber first_room;		/* first page with room for an entry */
	BlockNumber last;			/* the chain's last page */
	bool		deleted;
} VacuumWalk;

/*
 * One entry page: with a callback, delete the entries it names (the page is
 * exclusively locked); count what remains.
 */
static bool
vacuum_page(int list, Buffer buf, void *arg)
{
	VacuumWalk *v = arg;
	Page		page = BufferGetPage(buf);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	OffsetNumber deletable[MaxOffsetNumber];
	int			ndel = 0;

	for (OffsetNumber i = FirstOffsetNumber; i <= maxoff; i++)
	{
		ItemId		iid = PageGetItemId(page, i);
		LshEntry   *entry;

		if (!ItemIdIsNormal(iid))
			continue;
		entry = (LshEntry *) PageGetItem(page, iid);
		if (v->callback && v->callback(&entry->heap_tid, v->callback_state))
			deletable[ndel++] = i;
		else
			v->stats->num_index_tuples += 1;
	}
	if (ndel > 0)
	{
		GenericXLogState *xlog = GenericXLogStart(v->index);

		page = GenericXLogRegisterBuffer(xlog, buf, 0);
		PageIndexMultiDelete(page, deletable, ndel);
		GenericXLogFinish(xlog);
		/* the copy GenericXLogRegisterBuffer returned is freed now */
		page = BufferGetPage(buf);
		v->stats->tuples_removed += ndel;
		v->deleted = true;
	}
	if (!BlockNumberIsValid(v->first_room) && PageGetFreeSpace(page) >= v->entry_size)
		v->first_room = BufferGetBlockNumber(buf);
	v->last = BufferGetBlockNumber(buf);
	return true;
}

/*
 * Visit every entry page of every list.  With a callback, delete the entries
 * it names and fix insert_page; always count what remains.
 */
static void
vacuum_lists(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			 IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	LshMetaPageData meta = lsh_get_state(index)->meta;
	Size		entry_size = MAXALIGN(lsh_entry_size(&meta));

	for (int list = 0; list < meta.nlists; list++)
	{
		OffsetNumber off;
		BlockNumber dirblk = lsh_dir_block(&meta, list, &off);
		Buffer		buf;
		Page		page;
		BlockNumber head;
		VacuumWalk	v = {index, stats, callback, callback_state, entry_size,
		InvalidBlockNumber, InvalidBlockNumber, false};

		buf = ReadBufferExtended(index, MAIN_FORKNUM, dirblk, RBM_NORMAL, info->strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		head = ((LshListItem *) PageGetItem(page, PageGetItemId(page, off)))->head;
		UnlockReleaseBuffer(buf);

		lsh_walk_pages(index, list, head,
					   callback ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE,
					   info->strategy, vacuum_page, &v);

		/*
		 * Inserts walk the chain from insert_page: start them at the first
		 * page with room, or at the last page when none has room (they then
		 * add a head page at once instead of walking the chain).
		 */
		if (v.deleted)
		{
			BlockNumber target = BlockNumberIsValid(v.first_room) ? v.first_room : v.last;
			LshListItem *item;

			buf = ReadBufferExtended(index, MAIN_FORKNUM, dirblk, RBM_NORMAL, info->strategy);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			page = BufferGetPage(buf);
			item = (LshListItem *) PageGetItem(page, PageGetItemId(page, off));

			/* a page added at the head meanwhile: start there, it reaches all */
			if (item->head != head)
				target = item->head;
			if (item->insert_page != target)
			{
				GenericXLogState *xlog = GenericXLogStart(index);

				page = GenericXLogRegisterBuffer(xlog, buf, 0);
				item = (LshListItem *) PageGetItem(page, PageGetItemId(page, off));
				item->insert_page = target;
				GenericXLogFinish(xlog);
			}
			UnlockReleaseBuffer(buf);
		}
	}
	stats->num_pages = RelationGetNumberOfBlocks(index);
}

IndexBulkDeleteResult *
lsh_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));
	stats->num_index_tuples = 0;
	vacuum_lists(info, stats, callback, callback_state);
	return stats;
}

IndexBulkDeleteResult *
lsh_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;
	if (stats == NULL)
	{
		/* no bulkdelete pass: count the entries */
		stats = palloc0(sizeof(IndexBulkDeleteResult));
		vacuum_lists(info, stats, NULL, NULL);
	}
	return stats;
}
