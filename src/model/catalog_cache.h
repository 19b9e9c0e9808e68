/*
 * catalog_cache.h
 *	  The life of a per-backend cache of one of fct's catalog tables: the model
 *	  registry (model/model.c, fct_models) and the transformation store
 *	  (upgrade/transform_store.c, fct_transformations) both follow it.
 *
 * A statement trigger on the table sends a relcache invalidation of it
 * (fct_relcache_invalidate in model.c); this backend receives it at its next
 * command, the others at commit.  The relcache callback only marks the cache
 * stale (catalog_cache_invalidate): invalidations arrive in the middle of
 * catalog access, even inside the cache's own look-up at table_open, where
 * freeing memory that a caller may hold would be a use-after-free.  The next
 * look-up empties it (catalog_cache_check), handing its memory to
 * TopTransactionContext, so that a pointer handed out earlier stays valid until
 * the end of the transaction.  A caller that keeps a pointer longer (fn_extra)
 * compares the generation, which every invalidation bumps and which is never 0.
 */
#ifndef FCT_CATALOG_CACHE_H
#define FCT_CATALOG_CACHE_H

#include "postgres.h"

#include "utils/memutils.h"

typedef struct CatalogCache
{
	MemoryContext cxt;			/* everything the cache holds; NULL when empty */
	Oid			relid;			/* the table; InvalidOid until resolved */
	bool		stale;			/* an invalidation came since the last check */
	uint64		generation;		/* bumped by each invalidation, never 0 */
} CatalogCache;

#define CATALOG_CACHE_INIT	{NULL, InvalidOid, false, 1}

/*
 * For the relcache callback: an invalidation of relid (InvalidOid: of every
 * relation, after a sinval overflow, or the table dropped with the extension).
 */
static inline void
catalog_cache_invalidate(CatalogCache *cc, Oid relid)
{
	if (relid == InvalidOid || (OidIsValid(cc->relid) && relid == cc->relid))
	{
		cc->stale = true;
		cc->generation++;
	}
}

/*
 * At the start of every look-up, in a transaction: when an invalidation made
 * the cache stale, empty it and return true; the caller then forgets its own
 * pointers into it and the OIDs it resolved (relid is reset here).
 */
static inline bool
catalog_cache_check(CatalogCache *cc)
{
	if (!cc->stale)
		return false;

	/* Cleared first: an invalidation during what follows must be seen again. */
	cc->stale = false;
	if (cc->cxt != NULL)
	{
		/* Freed at the end of the transaction: callers may hold pointers. */
		MemoryContextSetParent(cc->cxt, TopTransactionContext);
		cc->cxt = NULL;
	}
	cc->relid = InvalidOid;
	return true;
}

#endif							/* FCT_CATALOG_CACHE_H */
