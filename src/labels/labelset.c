/*
 * labelset.c
 *	  Label sets: the per-backend cache of their catalog rows and label
 *	  matrices, its invalidation, and the GUCs of label look-ups.
 *
 * Why a cache: scoring one query against C labels is C * dim multiply-adds,
 * but reading the labels from their table costs a heap scan and a detoast per
 * label.  So the label matrix (C x dim float4, row i = label index i) is read
 * once per backend and kept until the label table changes.  A statement
 * trigger on the label table (installed by fct_create_label_set) and on
 * fct_label_sets sends a relcache invalidation of its table; the callback
 * below marks the affected entries stale, in this backend at the next command
 * and in the others when the change commits.  fct.label_cache = off re-reads
 * everything on every call (to measure what the cache saves).
 *
 * An entry has two parts with their own memory contexts: the catalog part
 * (columns, priors) and the table part (label ids and matrix, the candidate
 * query).  Changing a prior re-reads only the catalog part.
 *
 * What the cache holds was read with the rights of whoever filled it, so
 * every labelset_get checks the current user's SELECT right on the label
 * table again (labelset_check_privilege: one ACL check), cached or not.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "type/embedding.h"
#include "fmgr.h"
#include "funcapi.h"
#include "labels/labels.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "model/model.h"
#include "query/query.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

int			fct_label_candidates = 256;
int			fct_label_search = LABEL_SEARCH_AUTO;
bool		fct_label_cache = true;

static const struct config_enum_entry label_search_options[] = {
	{"auto", LABEL_SEARCH_AUTO, false},
	{"exact", LABEL_SEARCH_EXACT, false},
	{"index", LABEL_SEARCH_INDEX, false},
	{NULL, 0, false}
};

static HTAB *labelset_cache = NULL;
static Oid	label_sets_relid = InvalidOid;

/* Rows fetched at a time when reading a label table. */
#define LABEL_FETCH_ROWS 4096

static void
labelset_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	LabelSet   *ls;

	if (labelset_cache == NULL)
		return;
	hash_seq_init(&status, labelset_cache);
	while ((ls = (LabelSet *) hash_seq_search(&status)) != NULL)
	{
		if (relid == InvalidOid || relid == label_sets_relid)
			ls->catalog_valid = false;
		if (relid == InvalidOid || relid == ls->relid)
			ls->table_valid = false;
	}
}

void
labels_init(void)
{
	DefineCustomIntVariable("fct.label_candidates",
							"Candidate labels fetched per query through the label index, "
							"and labels kept per query by EM.",
							"When a label set has at most this many labels, every label is a candidate.",
							&fct_label_candidates,
							256, 1, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("fct.label_search",
							 "How fct_top_labels finds candidate labels: auto, exact (score every label) "
							 "or index (ORDER BY embedding <#> q LIMIT fct.label_candidates).",
							 "auto takes the index only when the label set has a usable lsh index, more "
							 "labels than fct.label_candidates, and the index path was measured faster "
							 "than the exact one (once per session and label set: fct_label_search_path).",
							 &fct_label_search,
							 LABEL_SEARCH_AUTO, label_search_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("fct.label_cache",
							 "Keep label matrices and priors cached per backend.",
							 "Off re-reads the label set on every call.",
							 &fct_label_cache,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	CacheRegisterRelcacheCallback(labelset_relcache_callback, (Datum) 0);
}

void
labelset_pin(LabelSet *ls)
{
	ls->pins++;
}

void
labelset_unpin(LabelSet *ls)
{
	Assert(ls->pins > 0);
	ls->pins--;
}

static char *
catalog_name(const char *relname)
{
	return query_ext_name(relname);
}

static float8 *
read_prior(Datum d, int n, const char *what, const char *set)
{
	char	   *label = psprintf("%s of label set \"%s\"", what, set);

	return prior_validate(DatumGetArrayTypeP(d), n, label);
}

static void
labelset_table_dropped(LabelSet *ls)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("the label table of label set \"%s\" no longer exists", ls->name),
			 errhint("Drop the label set with fct_drop_label_set.")));
}

static void
labelset_load_catalog(LabelSet *ls)
{
	Datum		arg = CStringGetTextDatum(ls->name);
	Oid			argtype = TEXTOID;
	char	   *sql;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	MemoryContext old;
	float8	   *train;
	char	   *model;

	MemoryContextReset(ls->catalog_cxt);
	sql = psprintf("SELECT label_table::pg_catalog.oid, id_col::pg_catalog.text, "
				   "embedding_col::pg_catalog.text, bias_col::pg_catalog.text, "
				   "n_labels, dims, model, labels_version, train_prior, prior "
				   "FROM %s WHERE name " SQL_EQ " $1", catalog_name("fct_label_sets"));
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fct_label_sets");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("label set \"%s\" does not exist", ls->name),
				 errhint("SELECT name FROM fct_label_sets lists the label sets.")));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	label_sets_relid = get_relname_relid("fct_label_sets", fct_extension_schema());

	old = MemoryContextSwitchTo(ls->catalog_cxt);
	ls->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
	ls->id_col = SPI_getvalue(tup, desc, 2);
	ls->embedding_col = SPI_getvalue(tup, desc, 3);
	ls->bias_col = SPI_getvalue(tup, desc, 4);	/* NULL when null */
	ls->n_labels = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	ls->dims = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
	if (isnull)
		ls->dims = 0;
	model = SPI_getvalue(tup, desc, 7);
	ls->model_id = model ? model_by_name(model)->id : FCT_NO_MODEL;
	ls->labels_version = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));

	train = read_prior(SPI_getbinval(tup, desc, 9, &isnull), ls->n_labels,
					   "training prior", ls->name);
	ls->log_train = palloc(sizeof(float8) * ls->n_labels);
	for (int i = 0; i < ls->n_labels; i++)
		ls->log_train[i] = log(train[i]);
	ls->log_adjust = NULL;
	{
		Datum		d = SPI_getbinval(tup, desc, 10, &isnull);

		if (!isnull)
		{
			float8	   *pred = read_prior(d, ls->n_labels, "prior", ls->name);

			ls->log_adjust = palloc(sizeof(float8) * ls->n_labels);
			for (int i = 0; i < ls->n_labels; i++)
				ls->log_adjust[i] = log(pred[i]) - ls->log_train[i];
		}
	}
	MemoryContextSwitchTo(old);

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(ls->relid)))
		labelset_table_dropped(ls);
	ls->catalog_valid = true;
}

/*
 * Does the label table have a valid lsh index on the embedding column whose
 * operator class orders by <#> (maximum inner product)?
 */
static bool
labelset_has_lsh_index(LabelSet *ls)
{
	Datum		args[2];
	Oid			argtypes[2] = {OIDOID, TEXTOID};

	args[0] = ObjectIdGetDatum(ls->relid);
	args[1] = CStringGetTextDatum(ls->embedding_col);
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_index i "
							  "JOIN pg_catalog.pg_class c ON c.oid " SQL_EQ " i.indexrelid "
							  "JOIN pg_catalog.pg_am a ON a.oid " SQL_EQ " c.relam "
							  "JOIN pg_catalog.pg_attribute t ON t.attrelid " SQL_EQ " i.indrelid "
							  "  AND t.attnum " SQL_EQ " i.indkey[0] "
							  "JOIN pg_catalog.pg_opclass oc ON oc.oid " SQL_EQ " i.indclass[0] "
							  "JOIN pg_catalog.pg_amop ao ON ao.amopfamily " SQL_EQ " oc.opcfamily "
							  "  AND ao.amoppurpose " SQL_EQ " 'o' "
							  "JOIN pg_catalog.pg_operator o ON o.oid " SQL_EQ " ao.amopopr "
							  "  AND o.oprname " SQL_EQ " '<#>' "
							  "WHERE i.indrelid " SQL_EQ " $1 AND t.attname " SQL_EQ " $2 "
							  "  AND a.amname " SQL_EQ " 'lsh' "
							  "  AND i.indisvalid AND i.indpred IS NULL",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the indexes of the label table");
	return SPI_processed > 0;
}

static int	cmp_labels_arg(const void *a, const void *b, void *arg);

static int
cmp_labels_arg(const void *a, const void *b, void *arg)
{
	char	  **labels = (char **) arg;

	return strcmp(labels[*(const int32 *) a], labels[*(const int32 *) b]);
}

static void
out_of_date(LabelSet *ls, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("label set \"%s\" is out of date with its table", ls->name),
			 errdetail_internal("%s", detail),
			 errhint("SELECT fct_refresh_label_set('%s') numbers the labels again.", ls->name)));
}

/* Read the label ids (by label index) and the label matrix. */
static void
labelset_load_matrix(LabelSet *ls)
{
	int			C = ls->n_labels;
	Datum		arg = CStringGetTextDatum(ls->name);
	Oid			argtype = TEXTOID;
	int32	   *sorted;
	bool	   *seen;
	int			nseen = 0;
	char	   *sql;
	Portal		portal;
	MemoryContext old;
	int			dim = 0;
	int32		model_id = FCT_NO_MODEL;

	sql = psprintf("SELECT label FROM %s WHERE label_set " SQL_EQ " $1 ORDER BY idx",
				   catalog_name("fct_label_index"));
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read fct_label_index");
	if ((int) SPI_processed != C)
		out_of_date(ls, psprintf("fct_label_index holds %d labels, fct_label_sets says %d.",
								 (int) SPI_processed, C));

	old = MemoryContextSwitchTo(ls->table_cxt);
	ls->labels = palloc(sizeof(char *) * C);
	for (int i = 0; i < C; i++)
		ls->labels[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	ls->bias = ls->bias_col ? palloc0(sizeof(float4) * C) : NULL;
	MemoryContextSwitchTo(old);
	SPI_freetuptable(SPI_tuptable);

	/* label id -> label index, by binary search over the sorted ids */
	sorted = palloc(sizeof(int32) * C);
	for (int i = 0; i < C; i++)
		sorted[i] = i;
	qsort_arg(sorted, C, sizeof(int32), cmp_labels_arg, ls->labels);
	seen = palloc0(sizeof(bool) * C);

	sql = psprintf("SELECT %s::pg_catalog.text, %s, %s FROM %s",
				   quote_identifier(ls->id_col), quote_identifier(ls->embedding_col),
				   ls->bias_col ? psprintf("%s::pg_catalog.float4", quote_identifier(ls->bias_col)) :
				   "NULL::pg_catalog.float4",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(ls->relid)),
											  get_rel_name(ls->relid)));
	portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, LABEL_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char	   *id = SPI_getvalue(tup, desc, 1);
			bool		isnull;
			Datum		d;
			Embedding  *e;
			int			lo = 0,
						hi = C - 1,
						idx = -1;

			while (lo <= hi)
			{
				int			mid = lo + (hi - lo) / 2;
				int			c = strcmp(id, ls->labels[sorted[mid]]);

				if (c == 0)
				{
					idx = sorted[mid];
					break;
				}
				if (c < 0)
					hi = mid - 1;
				else
					lo = mid + 1;
			}
			if (idx < 0 || seen[idx])
				out_of_date(ls, psprintf("Label %s is not numbered in fct_label_index.", id));
			seen[idx] = true;
			nseen++;

			d = SPI_getbinval(tup, desc, 2, &isnull);
			if (isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("label %s of label set \"%s\" has a null embedding", id, ls->name)));
			e = DatumGetEmbeddingP(d);
			if (dim == 0)
			{
				dim = e->dim;
				model_id = e->model_id;
				old = MemoryContextSwitchTo(ls->table_cxt);
				ls->matrix = palloc(sizeof(float4) * (Size) C * dim);
				MemoryContextSwitchTo(old);
			}
			if (e->dim != dim)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("labels of label set \"%s\" have different dimensions", ls->name),
						 errdetail("Label %s has %d dimensions, others have %d.", id, e->dim, dim)));
			if (e->model_id != model_id)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("labels of label set \"%s\" come from different models", ls->name),
						 errdetail("Label %s comes from model %s, others from model %s.", id,
								   model_display_name(e->model_id), model_display_name(model_id))));
			memcpy(ls->matrix + (Size) idx * dim, EMBEDDING_VEC(e), sizeof(float4) * dim);
			if (ls->bias)
			{
				float4		b = DatumGetFloat4(SPI_getbinval(tup, desc, 3, &isnull));

				if (isnull)
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("label %s of label set \"%s\" has a null bias", id, ls->name),
							 errhint("Use a bias of 0 for no bias.")));
				if (!isfinite(b))
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("label %s of label set \"%s\" has a bias that is not finite",
									id, ls->name)));
				ls->bias[idx] = b;
			}
			if ((Pointer) e != DatumGetPointer(d))
				pfree(e);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);

	if (nseen != C)
		out_of_date(ls, psprintf("The table holds %d of the %d numbered labels.", nseen, C));
	if (ls->dims > 0 && (dim != ls->dims || model_id != ls->model_id))
		out_of_date(ls, psprintf("The labels have %d dimensions (model %s), fct_label_sets says %d (model %s).",
								 dim, model_display_name(model_id),
								 ls->dims, model_display_name(ls->model_id)));
	ls->dim = dim;
	ls->model_id = model_id;
	ls->matrix_loaded = true;
	pfree(sorted);
	pfree(seen);
}

/*
 * The index path reads only the candidates, so it would not notice labels
 * deleted from the table since the set was numbered.  Count the table once
 * each time its cached state is rebuilt (after any change to it), not per
 * call.  SPI must be connected.
 */
static void
labelset_check_count(LabelSet *ls)
{
	char	   *sql;
	bool		isnull;
	int64		rows;

	sql = psprintf("SELECT pg_catalog.count(*) FROM %s",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(ls->relid)),
											  get_rel_name(ls->relid)));
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count the labels of label set \"%s\"", ls->name);
	rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (rows != ls->n_labels)
		out_of_date(ls, psprintf("The table holds " INT64_FORMAT " rows, the set numbered %d labels.",
								 rows, ls->n_labels));
}

/*
 * Errors (42501) unless the current user may read the label table's id,
 * embedding and bias columns: what reading the labels in SQL would need.
 * Called on every use of a label set, cached or not, since the cache must
 * not answer a role that could not read the table itself (after SET ROLE, a
 * SECURITY DEFINER function, or a REVOKE).  The usual case costs one ACL
 * check on the table (a syscache hit); columns are looked at only when the
 * table-level check fails, for roles granted SELECT on columns.
 */
static void
labelset_check_privilege(LabelSet *ls)
{
	Oid			user = GetUserId();
	const char *cols[3] = {ls->id_col, ls->embedding_col, ls->bias_col};
	bool		missing = false;

	if (pg_class_aclcheck_ext(ls->relid, user, ACL_SELECT, &missing) == ACLCHECK_OK)
		return;
	if (missing)
		labelset_table_dropped(ls);
	for (int i = 0; i < lengthof(cols); i++)
	{
		AttrNumber	attnum;

		if (cols[i] == NULL)
			continue;
		attnum = get_attnum(ls->relid, cols[i]);
		if (attnum == InvalidAttrNumber ||
			pg_attribute_aclcheck(ls->relid, attnum, user, ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV,
						   get_relkind_objtype(get_rel_relkind(ls->relid)),
						   get_rel_name(ls->relid));
	}
}

LabelSet *
labelset_get(const char *name, bool need_matrix)
{
	LabelSet   *ls;
	bool		found;
	char		key[FCT_LABEL_SET_NAME_MAX + 1];

	if (labelset_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(LabelSet);
		ctl.hcxt = CacheMemoryContext;
		labelset_cache = hash_create("fct label sets", 16, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	if (strlen(name) > FCT_LABEL_SET_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("label set \"%s\" does not exist", name)));
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));

	/* pick up changes committed by others (and the label table's lock) */
	AcceptInvalidationMessages();

	ls = (LabelSet *) hash_search(labelset_cache, key, HASH_ENTER, &found);
	if (!found)
	{
		memset((char *) ls + sizeof(ls->name), 0, sizeof(LabelSet) - sizeof(ls->name));
		ls->pins = 0;
		ls->catalog_valid = false;
		ls->table_valid = false;
		ls->catalog_cxt = AllocSetContextCreate(CacheMemoryContext, "fct label set catalog",
												ALLOCSET_SMALL_SIZES);
		ls->table_cxt = AllocSetContextCreate(CacheMemoryContext, "fct label set table",
											  ALLOCSET_DEFAULT_SIZES);
		ls->relid = InvalidOid;
		ls->index_plan = NULL;
		ls->matrix_loaded = false;
	}
	/* a running call keeps using what it started with */
	if (ls->pins > 0)
	{
		if (need_matrix && !ls->matrix_loaded)
			elog(ERROR, "label set \"%s\" is in use", name);
		labelset_check_privilege(ls);
		return ls;
	}
	if (!fct_label_cache)
		ls->catalog_valid = ls->table_valid = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!ls->catalog_valid)
	{
		Oid			relid = ls->relid;
		char	   *cols = ls->id_col ? psprintf("%s|%s|%s", ls->id_col, ls->embedding_col,
												 ls->bias_col ? ls->bias_col : "") : NULL;
		char	   *now;

		ls->catalog_valid = false;
		PG_TRY();
		{
			labelset_load_catalog(ls);
		}
		PG_CATCH();
		{
			/* an unknown name leaves no entry behind */
			hash_search(labelset_cache, key, HASH_REMOVE, NULL);
			MemoryContextDelete(ls->catalog_cxt);
			if (ls->index_plan)
				SPI_freeplan(ls->index_plan);
			MemoryContextDelete(ls->table_cxt);
			PG_RE_THROW();
		}
		PG_END_TRY();
		now = psprintf("%s|%s|%s", ls->id_col, ls->embedding_col, ls->bias_col ? ls->bias_col : "");
		if (relid != ls->relid || cols == NULL || strcmp(cols, now) != 0 ||
			ls->table_version != ls->labels_version)
			ls->table_valid = false;
	}
	labelset_check_privilege(ls);
	if (!ls->table_valid)
	{
		if (ls->index_plan)
			SPI_freeplan(ls->index_plan);
		ls->index_plan = NULL;
		MemoryContextReset(ls->table_cxt);
		ls->matrix_loaded = false;
		ls->matrix = NULL;
		ls->bias = NULL;
		ls->labels = NULL;
		ls->use_index = labelset_has_lsh_index(ls);
		ls->auto_choice = LABEL_SEARCH_AUTO;
		if (ls->use_index && !need_matrix)
			labelset_check_count(ls);
		ls->table_version = ls->labels_version;
		ls->table_valid = true;
	}
	if (need_matrix && !ls->matrix_loaded)
	{
		PG_TRY();
		{
			labelset_load_matrix(ls);
		}
		PG_CATCH();
		{
			MemoryContextReset(ls->table_cxt);
			ls->matrix = NULL;
			ls->bias = NULL;
			ls->labels = NULL;
			ls->matrix_loaded = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	SPI_finish();
	return ls;
}

void
labelset_check_query(LabelSet *ls, const Embedding *q, const char *query_name)
{
	int			dim = ls->matrix_loaded ? ls->dim : ls->dims;

	if (q->dim != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s has %d dimensions, the labels of label set \"%s\" have %d",
						query_name, q->dim, ls->name, dim)));
	if (q->model_id != FCT_NO_MODEL && ls->model_id != FCT_NO_MODEL &&
		q->model_id != ls->model_id)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s comes from model \"%s\", the labels of label set \"%s\" from model \"%s\"",
						query_name, model_display_name(q->model_id), ls->name,
						model_display_name(ls->model_id)),
				 errhint("Embed the query with model \"%s\".", model_display_name(ls->model_id))));
}

/*
 * fct_label_set_scan(label_set) -> (dims, model): read every label once
 * (fct_create_label_set and fct_refresh_label_set call it to check the
 * labels and fill in the catalog).
 */
PG_FUNCTION_INFO_V1(fct_label_set_scan);
Datum
fct_label_set_scan(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	LabelSet   *ls;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	ls = labelset_get(name, true);
	values[0] = Int32GetDatum(ls->dim);
	if (ls->model_id == FCT_NO_MODEL)
		nulls[1] = true;
	else
		values[1] = CStringGetTextDatum(model_display_name(ls->model_id));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
