/*
 * transform_store.c
 *	  The registered transformations as a backend sees them: a cache of the
 *	  catalog fct_transformations, the search for the path from one model to
 *	  another, and the wait for the catalog while a dump is restored.
 *
 * The cache: the list of edges (from, to, id) is read from the table in one
 * scan when first needed; a transformation's weights are read and parsed the
 * first time a path uses it; paths (and their absence) are memoised.  The
 * whole cache is dropped when the table changes, as model.c's is for
 * fct_models (model/catalog_cache.h): a statement trigger sends a relcache
 * invalidation, our callback only marks the cache stale (and bumps a
 * generation counter, which callers that keep a path beyond one call, in
 * fn_extra, compare), and the next look-up hands the stale cache's memory to
 * TopTransactionContext, so that pointers handed out earlier in the
 * transaction stay valid until its end.
 *
 * Why a path, once found, never changes: transformations and models never
 * change, and registration (transform_register.c) keeps the upgrade graph a
 * "multitree" (no cycle, at most one path between two models).  So the first
 * path a breadth-first search finds is the only one, and fct_upgrade may be
 * IMMUTABLE.  See sql/install/40_transform.sql.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/wait_event.h"

#include "model/catalog_cache.h"
#include "model/model.h"
#include "query/query.h"
#include "upgrade/transform_internal.h"

/* Column numbers of fct_transformations, as 40_transform.sql declares them. */
#define Anum_fct_transformations_id			1
#define Anum_fct_transformations_from_model	2
#define Anum_fct_transformations_to_model	3
#define Anum_fct_transformations_weights	5

typedef struct EdgeKey
{
	int32		from_model;
	int32		to_model;
} EdgeKey;

typedef struct EdgeEntry
{
	EdgeKey		key;
	int32		id;
	TransformNet *net;			/* NULL until first used */
} EdgeEntry;

typedef struct PathEntry
{
	EdgeKey		key;
	TransformPath *path;		/* NULL: no path */
} PathEntry;

/* The cache's memory context, the table's OID, staleness, the generation. */
static CatalogCache transform_cache = CATALOG_CACHE_INIT;

static HTAB *edges = NULL;		/* every registered transformation */
static HTAB *paths = NULL;		/* memoised paths */

static Oid	transformations_pair_index = InvalidOid;

/* fct.restore_wait: see transform_restore_wait. */
static int	restore_wait_seconds = 60;

static bool transform_callback_registered = false;

static void
transform_relcache_callback(Datum arg, Oid relid)
{
	catalog_cache_invalidate(&transform_cache, relid);
}

void
transform_init(void)
{
	if (transform_callback_registered)
		return;
	CacheRegisterRelcacheCallback(transform_relcache_callback, (Datum) 0);
	transform_callback_registered = true;

	DefineCustomIntVariable("fct.restore_wait",
							"While a dump is restored, how long fct_upgrade waits for the models and transformations it needs.",
							"Only while check_function_bodies is off (pg_dump and pg_restore set it so): "
							"pg_restore -j may build an index on fct_upgrade before the extension's tables are loaded.",
							&restore_wait_seconds,
							60, 0, 3600,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

uint64
transform_store_generation(void)
{
	return transform_cache.generation;
}

static void
transform_cache_check(void)
{
	if (!catalog_cache_check(&transform_cache))
		return;
	edges = NULL;
	paths = NULL;
	transformations_pair_index = InvalidOid;
}

static void
transform_resolve_catalog(void)
{
	Oid			nsp;
	Oid			relid;
	Oid			pair_index;

	transform_cache_check();
	if (OidIsValid(transform_cache.relid))
		return;
	nsp = fct_extension_schema();
	relid = get_relname_relid("fct_transformations", nsp);
	pair_index = get_relname_relid("fct_transformations_pair_key", nsp);
	if (!OidIsValid(relid) || !OidIsValid(pair_index))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("transformation catalog of extension \"fct\" not found"),
				 errdetail("Table fct_transformations or its index fct_transformations_pair_key is missing in schema \"%s\".",
						   get_namespace_name(nsp))));
	transform_cache.relid = relid;
	transformations_pair_index = pair_index;
}

Oid
transform_catalog_relid(void)
{
	transform_resolve_catalog();
	return transform_cache.relid;
}

/*
 * Read every edge (from, to, id) of the catalog, with a fresh catalog
 * snapshot.  Returns the count; the arrays are palloc'd in
 * CurrentMemoryContext.
 */
int
transform_read_edges(int32 **from_out, int32 **to_out, int32 **id_out)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			n = 0;
	int			cap = 16;
	int32	   *f = palloc(sizeof(int32) * cap);
	int32	   *t = palloc(sizeof(int32) * cap);
	int32	   *ids = palloc(sizeof(int32) * cap);

	transform_resolve_catalog();
	rel = table_open(transform_cache.relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull[3];
		Datum		d_id = heap_getattr(tup, Anum_fct_transformations_id,
										RelationGetDescr(rel), &isnull[0]);
		Datum		d_from = heap_getattr(tup, Anum_fct_transformations_from_model,
										  RelationGetDescr(rel), &isnull[1]);
		Datum		d_to = heap_getattr(tup, Anum_fct_transformations_to_model,
										RelationGetDescr(rel), &isnull[2]);

		if (isnull[0] || isnull[1] || isnull[2])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("fct_transformations holds a row with a null id, from_model or to_model")));
		if (n == cap)
		{
			cap *= 2;
			f = repalloc(f, sizeof(int32) * cap);
			t = repalloc(t, sizeof(int32) * cap);
			ids = repalloc(ids, sizeof(int32) * cap);
		}
		ids[n] = DatumGetInt32(d_id);
		f[n] = DatumGetInt32(d_from);
		t[n] = DatumGetInt32(d_to);
		n++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	*from_out = f;
	*to_out = t;
	*id_out = ids;
	return n;
}

/* A hash table of entries keyed by their first keysize bytes, in cxt. */
static HTAB *
blob_hash_create(const char *name, long nelem, Size keysize, Size entrysize,
				 MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(name, nelem, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
transform_cache_load(void)
{
	int32	   *f;
	int32	   *t;
	int32	   *ids;
	int			n;
	int			i;
	MemoryContext cxt;
	HTAB	   *e;
	HTAB	   *p;

	transform_cache_check();
	if (edges != NULL)
		return;

	n = transform_read_edges(&f, &t, &ids);

	/* Build in a fresh context, install only once complete. */
	cxt = AllocSetContextCreate(CacheMemoryContext, "fct transformation cache",
								ALLOCSET_DEFAULT_SIZES);
	e = blob_hash_create("fct transformations", Max(n, 16), sizeof(EdgeKey),
						 sizeof(EdgeEntry), cxt);
	p = blob_hash_create("fct upgrade paths", 16, sizeof(EdgeKey), sizeof(PathEntry), cxt);
	for (i = 0; i < n; i++)
	{
		EdgeKey		key;
		EdgeEntry  *entry;

		key.from_model = f[i];
		key.to_model = t[i];
		entry = hash_search(e, &key, HASH_ENTER, NULL);
		entry->id = ids[i];
		entry->net = NULL;
	}
	pfree(f);
	pfree(t);
	pfree(ids);

	/* An invalidation during the scan must be seen again: start over. */
	if (transform_cache.stale)
	{
		MemoryContextDelete(cxt);
		transform_cache_load();
		return;
	}
	transform_cache.cxt = cxt;
	edges = e;
	paths = p;
}

/* Read and parse one transformation's weights into the cache. */
static TransformNet *
edge_net(EdgeEntry *entry)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData keys[2];
	HeapTuple	tup;
	TransformNet *net = NULL;
	MemoryContext old;

	if (entry->net != NULL)
		return entry->net;

	ScanKeyInit(&keys[0], Anum_fct_transformations_from_model, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(entry->key.from_model));
	ScanKeyInit(&keys[1], Anum_fct_transformations_to_model, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(entry->key.to_model));
	rel = table_open(transform_cache.relid, AccessShareLock);
	scan = systable_beginscan(rel, transformations_pair_index, true, NULL, 2, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_fct_transformations_weights,
									 RelationGetDescr(rel), &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("transformation %d in fct_transformations has null weights", entry->id)));
		old = MemoryContextSwitchTo(transform_cache.cxt);
		net = net_deserialize(DatumGetByteaPP(d), entry->id,
							  entry->key.from_model, entry->key.to_model);
		MemoryContextSwitchTo(old);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (net == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("transformation %d disappeared from fct_transformations", entry->id)));
	entry->net = net;
	return net;
}

/*
 * The unique path from -> to, by breadth-first search over the edges (the
 * graph is a multitree, so the first path found is the only one).  Returns
 * the list of edges in order, or NIL.
 */
typedef struct ParentEntry
{
	int32		model;			/* hash key */
	EdgeKey		edge;			/* the edge that reached it */
} ParentEntry;

static List *
find_path(int32 from, int32 to)
{
	List	   *frontier = list_make1_int(from);
	List	   *seen = list_make1_int(from);
	HTAB	   *parent = blob_hash_create("fct path search", 16, sizeof(int32),
											  sizeof(ParentEntry), CurrentMemoryContext);
	List	   *result = NIL;

	while (frontier != NIL && !list_member_int(seen, to))
	{
		List	   *next = NIL;
		ListCell   *lc;

		foreach(lc, frontier)
		{
			int32		m = lfirst_int(lc);
			HASH_SEQ_STATUS st;
			EdgeEntry  *e;

			hash_seq_init(&st, edges);
			while ((e = hash_seq_search(&st)) != NULL)
			{
				ParentEntry *pe;

				if (e->key.from_model != m || list_member_int(seen, e->key.to_model))
					continue;
				seen = lappend_int(seen, e->key.to_model);
				next = lappend_int(next, e->key.to_model);
				pe = hash_search(parent, &e->key.to_model, HASH_ENTER, NULL);
				pe->edge = e->key;
			}
		}
		frontier = next;
	}

	if (list_member_int(seen, to))
	{
		int32		m = to;

		while (m != from)
		{
			ParentEntry *pe = hash_search(parent, &m, HASH_FIND, NULL);

			Assert(pe != NULL);
			result = lcons(&pe->edge, result);
			m = pe->edge.from_model;
		}
	}
	return result;
}

const TransformPath *
transform_path(int32 from_model, int32 to_model)
{
	EdgeKey		key;
	PathEntry  *pe;
	bool		found;
	List	   *hops;
	TransformPath *path = NULL;

	transform_cache_load();
	key.from_model = from_model;
	key.to_model = to_model;
	pe = hash_search(paths, &key, HASH_FIND, NULL);
	if (pe != NULL)
		return pe->path;

	if (from_model == to_model)
	{
		path = MemoryContextAllocZero(transform_cache.cxt, sizeof(TransformPath));
		path->from_model = from_model;
		path->to_model = to_model;
		path->max_width = model_by_id(to_model)->dim;
	}
	else if ((hops = find_path(from_model, to_model)) != NIL)
	{
		ListCell   *lc;
		int			i = 0;
		const TransformNet **nets;

		nets = MemoryContextAllocZero(transform_cache.cxt,
									  sizeof(TransformNet *) * list_length(hops));
		path = MemoryContextAllocZero(transform_cache.cxt, sizeof(TransformPath));
		path->from_model = from_model;
		path->to_model = to_model;
		foreach(lc, hops)
		{
			EdgeEntry  *e = hash_search(edges, lfirst(lc), HASH_FIND, NULL);

			nets[i] = edge_net(e);
			path->max_width = Max(path->max_width, nets[i]->max_width);
			i++;
		}
		path->hops = nets;
		path->nhops = i;
	}

	/* Loading weights may have processed an invalidation: start over. */
	if (transform_cache.stale)
		return transform_path(from_model, to_model);

	pe = hash_search(paths, &key, HASH_ENTER, &found);
	pe->path = path;
	return path;
}

/* ---------------------------------------------------------------------
 * No path; the wait while restoring
 * ---------------------------------------------------------------------
 */

void
transform_no_path_error(int32 from_model, int32 to_model)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("no upgrade path from model \"%s\" to model \"%s\"",
					model_display_name(from_model), model_display_name(to_model)),
			 errhint("Register a transformation with fct_register_transformation() or fit one with fct_fit_transformation().")));
}

/*
 * While a dump is restored (check_function_bodies off, see resolve_model in
 * embedding.c), fct_upgrade may run before the models and transformations it
 * needs are loaded: pg_restore -j builds an index on fct_upgrade(col, 'v2')
 * as soon as its table's data is in, in parallel with the data of other
 * tables, and pg_dump records no dependency from that index to the data of
 * the extension's tables (the function belongs to the extension; the data of
 * its configuration tables depends on nothing).  Nor can it: the index's
 * dependencies are computed from pg_depend, and a member table has no entry
 * in the archive to depend on.  So fct_upgrade waits for them then, up to
 * fct.restore_wait seconds, polling every 100 ms (a load commits and sends
 * its invalidation); in normal use (check_function_bodies on) it never waits.
 *
 * Returns false when the caller should stop waiting and report what is
 * missing.  *start is 0 on the first call.
 */
bool
transform_restore_wait(TimestampTz *start)
{
	if (check_function_bodies || restore_wait_seconds <= 0)
		return false;
	if (*start == 0)
		*start = GetCurrentTimestamp();
	else if (TimestampDifferenceExceeds(*start, GetCurrentTimestamp(),
										restore_wait_seconds * 1000))
		return false;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 100L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	AcceptInvalidationMessages();
	return true;
}
