/*
 * model.c
 *	  The model registry's per-backend cache.
 *
 * The type's input and output functions resolve model names and ids for every
 * value (COPY, large scans), so look-ups must cost a hash probe, not a query.
 * Entries are loaded lazily, one key at a time, by an index scan of
 * fct_models (no SPI: the output function may run where SPI is unwelcome, e.g.
 * in the middle of COPY TO), and the whole cache is dropped whenever the
 * table changes:
 *
 *	 - the statement trigger fct_models_invalidate sends a relcache invalidation
 *	   of fct_models; this backend receives it at the next command (so a model
 *	   registered earlier in the transaction is visible, and a rolled-back one
 *	   disappears), the others at commit;
 *	 - model_relcache_callback, registered once by model_init, marks the cache
 *	   stale on that invalidation, on InvalidOid (sinval overflow: everything
 *	   must go), and when the table is dropped with the extension;
 *	 - the next look-up throws the stale cache away and starts afresh.
 *
 * The callback only flips a flag: invalidations arrive in the middle of
 * catalog access (even inside our own look-up, at table_open), where freeing
 * memory that a caller may hold would be a use-after-free.  A stale cache's
 * memory is handed to TopTransactionContext, so that a FctModel pointer
 * returned to a caller stays valid until the end of the transaction.  That
 * life is catalog_cache.h's, which the transformation store follows too.
 *
 * Rows are read with a catalog snapshot (fresh for each scan), as catalogs
 * are: models are immutable, so whatever row a backend has seen stays right.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/regproc.h"

#include "model/catalog_cache.h"
#include "model/model.h"

/* Column numbers of fct_models, as sql/install/20_model.sql declares them. */
#define Anum_fct_models_id			1
#define Anum_fct_models_name		2
#define Anum_fct_models_dim			3
#define Anum_fct_models_side_dim	4

typedef struct ModelNameEntry
{
	char		name[FCT_MODEL_NAME_MAX + 1];	/* hash key */
	FctModel	model;
} ModelNameEntry;

/* The cache's memory context, fct_models' OID, staleness (catalog_cache.h). */
static CatalogCache model_cache = CATALOG_CACHE_INIT;

/* The cache proper; all of it lives in model_cache.cxt. */
static HTAB *models_by_id = NULL;
static HTAB *models_by_name = NULL;

/* Where the registry lives (beside model_cache.relid); InvalidOid until resolved. */
static Oid	ext_schema_oid = InvalidOid;
static Oid	models_id_index = InvalidOid;
static Oid	models_name_index = InvalidOid;

static bool model_callback_registered = false;

static void
model_relcache_callback(Datum arg, Oid relid)
{
	catalog_cache_invalidate(&model_cache, relid);
}

/*
 * fct.catalog_drop: on only inside fct_drop_model and fct_drop_transformation
 * (sql/install/85_drop.sql), around their DELETE, and while a Citus worker
 * applies a drop sent by the coordinator; the catalogs' guard triggers let a
 * DELETE through only then.  Declared here so that the name exists whatever
 * the "fct" prefix allows; it is a guard against mistakes, not a privilege
 * (only the catalogs' owner may DELETE from them at all).
 */
static bool model_catalog_drop = false;

void
model_init(void)
{
	if (model_callback_registered)
		return;
	DefineCustomBoolVariable("fct.catalog_drop",
							 "Internal: set by fct_drop_model and fct_drop_transformation around their delete.",
							 NULL, &model_catalog_drop, false, PGC_USERSET,
							 GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL,
							 NULL, NULL, NULL);
	CacheRegisterRelcacheCallback(model_relcache_callback, (Datum) 0);
	model_callback_registered = true;
}

/*
 * Throw the cache away if an invalidation made it stale.  Always called in a
 * transaction (every entry point reads the catalogs when the cache is cold).
 */
static void
model_cache_check(void)
{
	if (!catalog_cache_check(&model_cache))
		return;
	models_by_id = NULL;
	models_by_name = NULL;
	ext_schema_oid = InvalidOid;
	models_id_index = InvalidOid;
	models_name_index = InvalidOid;
}

static void
model_cache_create(void)
{
	HASHCTL		ctl;

	if (model_cache.cxt != NULL)
		return;

	model_cache.cxt = AllocSetContextCreate(CacheMemoryContext, "fct model cache",
									  ALLOCSET_SMALL_SIZES);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(FctModel);
	ctl.hcxt = model_cache.cxt;
	models_by_id = hash_create("fct models by id", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = FCT_MODEL_NAME_MAX + 1;
	ctl.entrysize = sizeof(ModelNameEntry);
	ctl.hcxt = model_cache.cxt;
	models_by_name = hash_create("fct models by name", 16, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/*
 * Schema of an extension (extension.c keeps its own version static in
 * PostgreSQL 15), read from pg_extension through its oid index.
 */
static Oid
extension_schema(Oid ext_oid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext_oid));
	rel = table_open(ExtensionRelationId, AccessShareLock);
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

/*
 * Resolve the extension's schema, the table and its two indexes.  The results
 * are cached only once all of them are known, so that a half-created
 * extension (during its own install script) is looked up again.
 */
static void
model_resolve_catalog(void)
{
	Oid			ext_oid;
	Oid			nsp;
	Oid			relid;
	Oid			id_index;
	Oid			name_index;

	model_cache_check();
	if (OidIsValid(model_cache.relid))
		return;

	ext_oid = get_extension_oid("fct", true);
	if (!OidIsValid(ext_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"fct\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION fct.")));
	nsp = extension_schema(ext_oid);
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema of extension \"fct\" not found")));

	relid = get_relname_relid("fct_models", nsp);
	id_index = get_relname_relid("fct_models_pkey", nsp);
	name_index = get_relname_relid("fct_models_name_key", nsp);
	if (!OidIsValid(relid) || !OidIsValid(id_index) || !OidIsValid(name_index))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("model registry of extension \"fct\" not found"),
				 errdetail("Table fct_models or one of its indexes is missing in schema \"%s\".",
						   get_namespace_name(nsp))));

	/*
	 * An invalidation may have arrived during these look-ups; it concerned an
	 * older state, and what we just read is newer, so keep it either way.
	 */
	ext_schema_oid = nsp;
	model_cache.relid = relid;
	models_id_index = id_index;
	models_name_index = name_index;
}

Oid
fct_extension_schema(void)
{
	model_resolve_catalog();
	return ext_schema_oid;
}

/*
 * Scan fct_models through one of its unique indexes; on a hit, fill *out and
 * return true.
 */
static bool
model_scan(bool by_id, int32 id, const char *name, FctModel *out)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		found = false;
	Oid			relid;
	Oid			indexid;

	model_resolve_catalog();
	relid = model_cache.relid;
	indexid = by_id ? models_id_index : models_name_index;

	if (by_id)
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ,
					Int32GetDatum(id));
	else
		ScanKeyEntryInitialize(&key, 0, Anum_fct_models_name, BTEqualStrategyNumber, InvalidOid,
							   C_COLLATION_OID, F_TEXTEQ,
							   CStringGetTextDatum(name));

	rel = table_open(relid, AccessShareLock);
	/* snapshot NULL: a fresh catalog snapshot, registered for the scan */
	scan = systable_beginscan(rel, indexid, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull[4];
		Datum		d_id,
					d_name,
					d_dim,
					d_side;
		char	   *s;

		d_id = heap_getattr(tup, Anum_fct_models_id, desc, &isnull[0]);
		d_name = heap_getattr(tup, Anum_fct_models_name, desc, &isnull[1]);
		d_dim = heap_getattr(tup, Anum_fct_models_dim, desc, &isnull[2]);
		d_side = heap_getattr(tup, Anum_fct_models_side_dim, desc, &isnull[3]);
		if (isnull[0] || isnull[1] || isnull[2] || isnull[3])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("fct_models holds a row with a null id, name, dim or side_dim")));

		s = TextDatumGetCString(d_name);
		if (strlen(s) > FCT_MODEL_NAME_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("fct_models holds a model name longer than %d bytes",
							FCT_MODEL_NAME_MAX)));
		memset(out, 0, sizeof(*out));
		out->id = DatumGetInt32(d_id);
		out->dim = DatumGetInt32(d_dim);
		out->side_dim = DatumGetInt32(d_side);
		strlcpy(out->name, s, sizeof(out->name));
		pfree(s);
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	return found;
}

/* Add a model read from the table to both maps; returns the by-id entry. */
static const FctModel *
model_cache_add(const FctModel *m)
{
	FctModel   *entry;
	ModelNameEntry *nentry;
	bool		found;

	model_cache_check();
	model_cache_create();

	entry = hash_search(models_by_id, &m->id, HASH_ENTER, &found);
	*entry = *m;
	nentry = hash_search(models_by_name, m->name, HASH_ENTER, &found);
	nentry->model = *m;
	return entry;
}

const FctModel *
model_lookup_id(int32 id)
{
	FctModel	m;

	model_cache_check();
	if (models_by_id != NULL)
	{
		FctModel   *entry = hash_search(models_by_id, &id, HASH_FIND, NULL);

		if (entry != NULL)
			return entry;
	}
	if (id <= 0)
		return NULL;
	if (!model_scan(true, id, NULL, &m))
		return NULL;
	return model_cache_add(&m);
}

const FctModel *
model_lookup_name(const char *name)
{
	FctModel	m;

	model_cache_check();
	/* Longer names cannot be registered (and would not fit the hash key). */
	if (name == NULL || name[0] == '\0' || strlen(name) > FCT_MODEL_NAME_MAX)
		return NULL;
	if (models_by_name != NULL)
	{
		ModelNameEntry *entry = hash_search(models_by_name, name, HASH_FIND,
											NULL);

		if (entry != NULL)
			return &entry->model;
	}
	if (!model_scan(false, 0, name, &m))
		return NULL;
	return model_cache_add(&m);
}

const FctModel *
model_by_id(int32 id)
{
	const FctModel *m = model_lookup_id(id);

	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model with id %d does not exist", id),
				 errhint("Models are listed in table fct_models.")));
	return m;
}

const FctModel *
model_by_name(const char *name)
{
	const FctModel *m = model_lookup_name(name);

	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name),
				 errhint("Register it with fct_register_model(name, dim, side_dim).")));
	return m;
}

/*
 * A model's id is a function of its name, so that a value read back from a
 * dump gets the right id whether or not fct_models has been restored yet
 * (embedding input accepts an unknown model during a restore: embedding.c).
 *
 * Not hash_bytes_extended: PostgreSQL's hash reads aligned keys as native
 * 32-bit words, so it gives other results on a big-endian host, and it is no
 * promise across major versions.  The id is on disk in every value and in the
 * dumped rows of fct_transformations, so it is defined here, byte by byte:
 * 64-bit FNV-1a, then the splitmix64 finaliser (FNV alone mixes its last
 * bytes poorly into the low bits), reduced to 1 .. 2^31 - 1 (0 means "no
 * model").  Changing this function changes the meaning of stored values.
 * Two names collide with probability about 2^-31; registration refuses the
 * second one (sql/install/20_model.sql).
 */
int32
model_id_for_name(const char *name, int len)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);

	for (int i = 0; i < len; i++)
	{
		h ^= (unsigned char) name[i];
		h *= UINT64CONST(0x100000001b3);
	}
	h ^= h >> 30;
	h *= UINT64CONST(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64CONST(0x94d049bb133111eb);
	h ^= h >> 31;
	return (int32) (h % UINT64CONST(2147483647)) + 1;
}

/* fct_model_id(name text) -> integer: the id a model of that name has. */
PG_FUNCTION_INFO_V1(fct_model_id);
Datum
fct_model_id(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);

	PG_RETURN_INT32(model_id_for_name(VARDATA_ANY(name),
									  VARSIZE_ANY_EXHDR(name)));
}

void
model_check_dims(const FctModel *model, int dim, int side_dim)
{
	if (dim != model->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg_plural("embedding has %d dimension, model \"%s\" has %d",
							   "embedding has %d dimensions, model \"%s\" has %d",
							   dim, dim, model->name, model->dim)));
	/*
	 * No side-information at all is allowed: a query embedding, or a row whose
	 * side-information is unknown, names its model but carries none.  Such a
	 * value can be compared, but not upgraded by a transformation that reads
	 * side-information.
	 */
	if (side_dim != 0 && side_dim != model->side_dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg_plural("embedding has %d side-information dimension, model \"%s\" has %d",
							   "embedding has %d side-information dimensions, model \"%s\" has %d",
							   side_dim, side_dim, model->name, model->side_dim),
				 errhint("Give all %d side-information values, or none.", model->side_dim)));
}

const char *
model_display_name(int32 id)
{
	const FctModel *m;

	if (id == FCT_NO_MODEL)
		return "(no model)";
	m = model_lookup_id(id);
	if (m == NULL)
		return psprintf("(unknown model id %d)", id);
	return m->name;
}

/*
 * Statement trigger of every table whose rows a per-backend cache holds
 * (fct_models, fct_transformations, fct_label_sets and the label tables): a
 * relcache invalidation of the table that fired it, which every backend
 * receives (this one at the next command, the others at commit) and whose
 * callback drops the cache built from that table.
 *
 * With an argument, the qualified name of a table, that table is invalidated
 * too: a label table that is a Citus reference table gets the trigger on
 * every shard placement (Citus copies a table's triggers, with their
 * arguments, to its shards), where it fires for the shard; the caches hold
 * the logical table's oid, which differs on every node, hence the name.
 */
PG_FUNCTION_INFO_V1(fct_relcache_invalidate);
Datum
fct_relcache_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_relcache_invalidate: not called by trigger manager")));

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	if (trigdata->tg_trigger->tgnargs > 0)
	{
		Oid			logical;

		logical = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(trigdata->tg_trigger->tgargs[0])),
								   NoLock, true);
		if (OidIsValid(logical))
			CacheInvalidateRelcacheByRelid(logical);
	}

	return PointerGetDatum(NULL);
}
