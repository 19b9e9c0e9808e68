/*
 * lshbuildwrite.c
 *	  The build's pages: the metapage, the parameter pages, each list's chain
 *	  of entry pages, the directory; and the init fork of an unlogged index.
 *
 * The build writes its pages straight to the main fork, not through shared
 * buffers (as nbtree's sorted build does): each page is written once, with
 * one WAL record holding its image, and the fork is synced at the end
 * (lsh_build_finish_pages).  Extending through shared buffers wrote every page
 * twice (zeros, then the image) and took a quarter of the build.
 */
#include "postgres.h"

#include "access/xloginsert.h"
#include "commands/progress.h"
#include "lshbuild.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/rel.h"

void
lsh_build_put_page(LshBuildState *bs, BlockNumber blkno, Page image)
{
	if (bs->use_wal)
		log_newpage(&bs->index->rd_node, MAIN_FORKNUM, blkno, image, true);
	PageSetChecksumInplace(image, blkno);
	if (blkno == bs->nblocks)
	{
		smgrextend(RelationGetSmgr(bs->index), MAIN_FORKNUM, blkno, (char *) image, true);
		bs->nblocks++;
	}
	else
		smgrwrite(RelationGetSmgr(bs->index), MAIN_FORKNUM, blkno, (char *) image, true);
}

/* Append a page image at the end of the main fork; its block. */
BlockNumber
lsh_build_new_page(LshBuildState *bs, Page image)
{
	BlockNumber blkno = bs->nblocks;

	lsh_build_put_page(bs, blkno, image);
	return blkno;
}

/*
 * The pages bypassed shared buffers, so a checkpoint during the build did not
 * flush them: sync them before the index can be used (a crash after that
 * checkpoint would not replay their WAL).
 */
void
lsh_build_finish_pages(LshBuildState *bs)
{
	if (bs->use_wal)
		smgrimmedsync(RelationGetSmgr(bs->index), MAIN_FORKNUM);
}

void
lsh_fill_meta_page(Page page, const LshMetaPageData *meta)
{
	lsh_init_page(page, LSH_PAGE_META);
	memcpy(PageGetContents(page), meta, sizeof(LshMetaPageData));
	((PageHeader) page)->pd_lower = (char *) PageGetContents(page) + sizeof(LshMetaPageData) - (char *) page;
}

/* Directory page images for lists [first, first + n), from items. */
static void
fill_dir_page(Page page, const LshListItem *items, int first, int n)
{
	lsh_init_page(page, LSH_PAGE_DIR);
	for (int l = first; l < first + n; l++)
	{
		LshListItem item;

		if (items)
		{
			item = items[l];
			item.insert_page = item.head;
		}
		else
			lsh_item_init(&item, InvalidBlockNumber);
		if (PageAddItem(page, (Item) &item, sizeof(item), InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
			elog(ERROR, "lsh: directory page overflow");
	}
}

static int
lists_per_dirpage(void)
{
	return (int) ((BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(LshPageOpaqueData))) /
				  (MAXALIGN(sizeof(LshListItem)) + sizeof(ItemIdData)));
}

/* The metapage of an unlearned index with no rows: one list, nothing fixed. */
void
lsh_empty_meta(LshMetaPageData *meta, LshMetric metric, LshFamily family)
{
	memset(meta, 0, sizeof(LshMetaPageData));
	meta->magic = LSH_MAGIC;
	meta->version = LSH_PAGE_VERSION;
	meta->metric = metric;
	meta->family = family;
	meta->nlists = 1;
	meta->nranges = 1;
	meta->param_start = InvalidBlockNumber;
	meta->dir_start = 1;
	meta->ndirpages = 1;
	meta->lists_per_dirpage = lists_per_dirpage();
	meta->bound_rms = 1;
}

/*
 * The init fork of an unlogged index: an empty unlearned index.  Written
 * through smgr and log_newpage, as contrib/bloom does: GenericXLog does not
 * log unlogged relations, but the init fork must reach the standby.
 */
void
lsh_buildempty(Relation index)
{
	LshMetaPageData meta;
	Page		page = (Page) palloc(BLCKSZ);

	lsh_empty_meta(&meta, lsh_index_metric(index), lsh_options_family(index));

	lsh_fill_meta_page(page, &meta);
	PageSetChecksumInplace(page, LSH_METAPAGE_BLKNO);
	smgrwrite(RelationGetSmgr(index), INIT_FORKNUM, LSH_METAPAGE_BLKNO, (char *) page, true);
	log_newpage(&(RelationGetSmgr(index))->smgr_rnode.node, INIT_FORKNUM,
				LSH_METAPAGE_BLKNO, page, true);

	fill_dir_page(page, NULL, 0, 1);
	PageSetChecksumInplace(page, 1);
	smgrwrite(RelationGetSmgr(index), INIT_FORKNUM, 1, (char *) page, true);
	log_newpage(&(RelationGetSmgr(index))->smgr_rnode.node, INIT_FORKNUM, 1, page, true);

	smgrimmedsync(RelationGetSmgr(index), INIT_FORKNUM);
	pfree(page);
}

/* The parameter pages, one float array spread over pages, after the metapage. */
void
lsh_build_write_params(LshBuildState *bs, Page page)
{
	LshMetaPageData *meta = &bs->state.meta;
	int			done = 0;

	while (done < meta->nparams)
	{
		int			n = Min(LSH_PARAM_FLOATS_PER_PAGE, meta->nparams - done);
		BlockNumber blk;

		lsh_init_page(page, LSH_PAGE_PARAM);
		memcpy(PageGetContents(page), bs->state.params + done, sizeof(float) * n);
		((PageHeader) page)->pd_lower += sizeof(float) * n;
		blk = lsh_build_new_page(bs, page);
		if (done == 0)
			meta->param_start = blk;
		done += n;
	}
}

/*
 * Append an entry to its list's page image; a full image is written out and
 * becomes the head of the list's chain.
 */
void
lsh_build_add_entry(LshBuildState *bs, int list, const LshEntry *entry, Size size)
{
	Page		page = bs->pages[list];

	if (page == NULL)
	{
		page = bs->pages[list] = palloc(BLCKSZ);
		lsh_init_page(page, LSH_PAGE_ENTRY);
	}
	if (PageAddItem(page, (Item) entry, size, InvalidOffsetNumber, false, false) != InvalidOffsetNumber)
		return;

	/* full: write it out as the new head of the list's chain */
	LshPageGetOpaque(page)->next = bs->items[list].head;
	bs->items[list].head = lsh_build_new_page(bs, page);
	lsh_init_page(page, LSH_PAGE_ENTRY);
	if (PageAddItem(page, (Item) entry, size, InvalidOffsetNumber, false, false) == InvalidOffsetNumber)
		elog(ERROR, "lsh: entry of %zu bytes does not fit on an empty page", size);
}

/*
 * Add n hashed rows to their lists: widen each list's bounds, append each
 * entry (entry_size bytes each, made by lsh_build_flush_chunk) to its list's
 * page image.  The rows come from this backend's chunk or, in a
 * parallel build, from a worker's message (lshparallel.c).
 */
void
lsh_build_add_rows(LshBuildState *bs, int n, const int *lists, const float *resid,
				   const float *norm, const char *entries)
{
	bool		bounds = lsh_has_bounds(&bs->state.meta);

	for (int i = 0; i < n; i++)
	{
		if (bounds)
		{
			lsh_item_widen(&bs->items[lists[i]], resid[i], norm[i]);
			bs->sum_r2[lists[i]] += (float8) resid[i] * resid[i];
			bs->members[lists[i]]++;
		}
		lsh_build_add_entry(bs, lists[i], (const LshEntry *) (entries + bs->entry_size * i),
							bs->entry_size);
	}
	bs->indtuples += n;
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) bs->indtuples);
}

/* bs->emit of a serial build: the chunk's rows into the page images. */
void
lsh_build_add_chunk(LshBuildState *bs)
{
	lsh_build_add_rows(bs, bs->nchunk, bs->chunk_lists, bs->chunk_resid, bs->chunk_norm,
					   bs->chunk_entries);
}

/* The partial page of each list becomes its head. */
void
lsh_build_write_heads(LshBuildState *bs)
{
	for (int l = 0; l < bs->state.meta.nlists; l++)
	{
		if (bs->pages[l] == NULL)
			continue;
		LshPageGetOpaque(bs->pages[l])->next = bs->items[l].head;
		bs->items[l].head = lsh_build_new_page(bs, bs->pages[l]);
		pfree(bs->pages[l]);
	}
}

/* The directory pages, from the lists' final heads and bounds. */
void
lsh_build_write_directory(LshBuildState *bs, Page page)
{
	LshMetaPageData *meta = &bs->state.meta;
	int			lpp = lists_per_dirpage();

	meta->lists_per_dirpage = lpp;
	meta->ndirpages = (meta->nlists + lpp - 1) / lpp;
	for (int d = 0; d < meta->ndirpages; d++)
	{
		int			first = d * lpp;
		BlockNumber blk;

		fill_dir_page(page, bs->items, first, Min(lpp, meta->nlists - first));
		blk = lsh_build_new_page(bs, page);
		if (d == 0)
			meta->dir_start = blk;
	}
}
