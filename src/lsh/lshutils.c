/*
 * lshutils.c
 *	  The lsh access method's options and GUCs, and the per-backend image
 *	  of an index (metapage and parameters); the checks of a value against
 *	  the index's dimension and model.  The bottom of src/lsh: it calls no
 *	  other lsh file (the handler, which names every callback, is
 *	  lshhandler.c, at the top).
 */
#include "postgres.h"

#include <math.h>

#include "access/amapi.h"
#include "access/reloptions.h"
#include "kernels/distance.h"
#include "lsh.h"
#include "miscadmin.h"
#include "model/model.h"
#include "storage/bufmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

int			lsh_probes = 0;
int			lsh_max_candidates = 0;

static relopt_kind lsh_relopt_kind;

/* ----------------------------------------------------------------
 * Options and GUCs
 * ----------------------------------------------------------------
 */

static LshFamily
family_from_name(const char *name)
{
	if (name == NULL || pg_strcasecmp(name, "kmeans") == 0)
		return LSH_FAMILY_KMEANS;
	if (pg_strcasecmp(name, "simple") == 0)
		return LSH_FAMILY_SIMPLE;
	if (pg_strcasecmp(name, "wta") == 0)
		return LSH_FAMILY_WTA;
	return 0;
}

static void
validate_family(const char *value)
{
	if (value != NULL && family_from_name(value) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for lsh option \"family\": \"%s\"", value),
				 errhint("Valid values are \"kmeans\" (learned, the default), \"simple\" (sign projections) and \"wta\" (winner-take-all).")));
}

const char *
lsh_family_name(LshFamily family)
{
	switch (family)
	{
		case LSH_FAMILY_KMEANS:
			return "kmeans";
		case LSH_FAMILY_SIMPLE:
			return "simple";
		case LSH_FAMILY_WTA:
			return "wta";
	}
	return "unknown";
}

const char *
lsh_metric_name(LshMetric metric)
{
	switch (metric)
	{
		case LSH_METRIC_IP:
			return "inner_product";
		case LSH_METRIC_COSINE:
			return "cosine";
		case LSH_METRIC_L2:
			return "l2";
	}
	return "unknown";
}

void
lsh_options_init(void)
{
	lsh_relopt_kind = add_reloption_kind();
	/*
	 * The default 0 (below each minimum) means "not given": the build then
	 * chooses from the row count.  A value given is at least 1, so that
	 * "lists = 0" is an error rather than a silent automatic choice.
	 */
	add_int_reloption(lsh_relopt_kind, "lists",
					  "Number of buckets (lists) of the kmeans family; by default from the row count",
					  0, 1, LSH_MAX_LISTS, AccessExclusiveLock);
	add_int_reloption(lsh_relopt_kind, "norm_ranges",
					  "Norm ranges (inner product and l2); by default 1, for inner product 1 or 8 as the build measures",
					  0, 1, LSH_MAX_NORM_RANGES, AccessExclusiveLock);
	add_int_reloption(lsh_relopt_kind, "bits",
					  "Hash bits (simple) or windows (wta); by default from the row count",
					  0, 1, LSH_MAX_BITS, AccessExclusiveLock);
	add_string_reloption(lsh_relopt_kind, "family",
						 "Hash family: kmeans, simple or wta",
						 "kmeans", validate_family, AccessExclusiveLock);

	DefineCustomIntVariable("fct.lsh_probes",
							"Lists an lsh index scan reads before it returns its first row.",
							"k-means (the default family): the least lists read, 0 meaning 2; then lists until their bounds say no "
							"unread list can beat the next row (see fct.lsh_margin); more adds recall. Families simple and wta: "
							"the lists probed before widening, 0 meaning 0.5% of the lists, at least 2.",
							&lsh_probes, 0, 0, LSH_MAX_LISTS,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("fct.lsh_margin",
							 "How far an lsh scan's per-list bounds allow a member to point towards the query, in units the index measured at build.",
							 "A row is returned once no unread list's bound can beat it. 3 lets through 95% of the nearest "
							 "neighbours of the build's sample queries; higher: more lists read, better recall; 1000: exact results.",
							 &lsh_margin, 3.0, 0.0, 1000.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("fct.lsh_max_candidates",
							"Stop an lsh index scan after this many candidates (0: no limit).",
							"With a selective WHERE filter an lsh scan keeps widening its probes "
							"until the query has its rows; this bounds the work instead.",
							&lsh_max_candidates, 0, 0, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
}

/*
 * The options that hold together, whatever the table holds: each option
 * applies to the family named, and the lists it implies fit the index's
 * limit.  (What depends on the rows or the metric, the build checks.)
 */
static void
check_options(const LshOptions *opts)
{
	LshFamily	family = opts->family_offset == 0 ? LSH_FAMILY_KMEANS :
		family_from_name((const char *) opts + opts->family_offset);

	switch (family)
	{
		case LSH_FAMILY_KMEANS:
			if (opts->bits > 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lsh option \"bits\" does not apply to family \"kmeans\""),
						 errdetail("bits sets the hash bits of family simple and the windows of family wta."),
						 errhint("Set the number of k-means lists with the option \"lists\".")));
			break;
		case LSH_FAMILY_SIMPLE:
			if (opts->lists > 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lsh option \"lists\" does not apply to family \"simple\""),
						 errdetail("Family simple has norm_ranges x 2^bits lists."),
						 errhint("Set \"bits\" instead.")));
			if (opts->bits > 0 &&
				((int64) Max(opts->norm_ranges, 1) << opts->bits) > LSH_MAX_LISTS)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lsh family \"simple\" with bits = %d and norm_ranges = %d would have %lld lists, more than %d",
								opts->bits, Max(opts->norm_ranges, 1),
								(long long) ((int64) Max(opts->norm_ranges, 1) << opts->bits),
								LSH_MAX_LISTS),
						 errdetail("Family simple has norm_ranges x 2^bits lists."),
						 errhint("Lower bits or norm_ranges.")));
			break;
		case LSH_FAMILY_WTA:
			if (opts->lists > 0 || opts->norm_ranges > 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lsh option \"%s\" does not apply to family \"wta\"",
								opts->lists > 0 ? "lists" : "norm_ranges"),
						 errdetail("Family wta has %d^bits lists and no norm ranges.", LSH_WTA_K),
						 errhint("Set \"bits\" (the windows) instead.")));
			if (opts->bits > LSH_MAX_WTA_WINDOWS)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("lsh family \"wta\" takes bits (windows) from 1 to %d, not %d",
								LSH_MAX_WTA_WINDOWS, opts->bits),
						 errdetail("Family wta has %d^bits lists, at most %d.", LSH_WTA_K, LSH_MAX_LISTS),
						 errhint("Lower bits.")));
			break;
	}
}

bytea *
lsh_options(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"lists", RELOPT_TYPE_INT, offsetof(LshOptions, lists)},
		{"norm_ranges", RELOPT_TYPE_INT, offsetof(LshOptions, norm_ranges)},
		{"bits", RELOPT_TYPE_INT, offsetof(LshOptions, bits)},
		{"family", RELOPT_TYPE_STRING, offsetof(LshOptions, family_offset)},
	};

	LshOptions *opts;

	opts = (LshOptions *) build_reloptions(reloptions, validate, lsh_relopt_kind,
										   sizeof(LshOptions), tab, lengthof(tab));
	if (validate && opts != NULL)
		check_options(opts);
	return (bytea *) opts;
}

LshFamily
lsh_options_family(Relation index)
{
	LshOptions *opts = (LshOptions *) index->rd_options;

	if (opts == NULL || opts->family_offset == 0)
		return LSH_FAMILY_KMEANS;
	return family_from_name((char *) opts + opts->family_offset);
}

/* The metric of the index's opclass (support function 1). */
LshMetric
lsh_index_metric(Relation index)
{
	FmgrInfo   *proc = index_getprocinfo(index, 1, LSH_METRIC_PROC);
	int32		metric = DatumGetInt32(FunctionCall1(proc, PointerGetDatum(NULL)));

	if (metric < LSH_METRIC_IP || metric > LSH_METRIC_L2)
		elog(ERROR, "lsh opclass support function returned unknown metric %d", metric);
	return (LshMetric) metric;
}

/* ----------------------------------------------------------------
 * The per-backend image of an index
 * ----------------------------------------------------------------
 */

static void
read_meta(Relation index, LshMetaPageData *meta)
{
	Buffer		buf;
	Page		page;

	buf = ReadBuffer(index, LSH_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (LshPageGetOpaque(page)->flags != LSH_PAGE_META ||
		LshPageGetMeta(page)->magic != LSH_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not an lsh index", RelationGetRelationName(index))));
	/* format 2 differs only by having no codes: its code_bits reads 0 */
	if (LshPageGetMeta(page)->version < LSH_PAGE_VERSION_MIN ||
		LshPageGetMeta(page)->version > LSH_PAGE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("lsh index \"%s\" has page format %u, this build reads %u to %u",
						RelationGetRelationName(index),
						LshPageGetMeta(page)->version, LSH_PAGE_VERSION_MIN, LSH_PAGE_VERSION),
				 errhint("REINDEX the index.")));
	memcpy(meta, LshPageGetMeta(page), sizeof(LshMetaPageData));
	UnlockReleaseBuffer(buf);
}

LshState *
lsh_get_state(Relation index)
{
	LshState   *state = (LshState *) index->rd_amcache;
	MemoryContext oldcxt;

	if (state != NULL && state->meta.has_model)
		return state;

	if (state == NULL)
	{
		state = MemoryContextAllocZero(index->rd_indexcxt, sizeof(LshState));
		read_meta(index, &state->meta);
		oldcxt = MemoryContextSwitchTo(index->rd_indexcxt);
		if (state->meta.nparams > 0)
		{
			int			done = 0;
			BlockNumber blk = state->meta.param_start;

			state->params = palloc(sizeof(float) * state->meta.nparams);
			while (done < state->meta.nparams)
			{
				Buffer		buf = ReadBuffer(index, blk);
				int			n = Min(LSH_PARAM_FLOATS_PER_PAGE, state->meta.nparams - done);

				LockBuffer(buf, BUFFER_LOCK_SHARE);
				memcpy(state->params + done, PageGetContents(BufferGetPage(buf)),
					   sizeof(float) * n);
				UnlockReleaseBuffer(buf);
				done += n;
				blk++;
			}
		}
		if (state->meta.learned && state->meta.family == LSH_FAMILY_KMEANS)
		{
			lsh_kmeans_state_init(state);
			lsh_code_state_init(state);
		}
		MemoryContextSwitchTo(oldcxt);
		index->rd_amcache = state;
	}
	else
	{
		/* unlearned and still without a model: the first insert may set it */
		read_meta(index, &state->meta);
	}
	return state;
}

/*
 * The model for messages: its name (looked up only when an error is being
 * raised, never per row), or "no model".
 */
static const char *
model_desc(int32 model_id)
{
	const FctModel *m;

	if (model_id == FCT_NO_MODEL)
		return "no model";
	m = model_lookup_id(model_id);
	if (m == NULL)
		return psprintf("model id %d (not in fct_models)", model_id);
	return psprintf("model \"%s\"", m->name);
}

/*
 * Errors unless e may go into (or query) the index: dimension within the
 * limit, same dimension and model as the index's vectors.
 */
void
lsh_check_value(Relation index, const LshMetaPageData *meta,
				const Embedding *e, bool is_query)
{
	if (e->dim > LSH_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("lsh index cannot hold embeddings of more than %d dimensions", LSH_MAX_DIM),
				 errdetail("The %s has %d dimensions.", is_query ? "query" : "value", e->dim),
				 errhint("Reduce the dimension (for example with a transformation) or use a sequential scan.")));
	if (!meta->has_model)
		return;
	/* a query that names no model may query any index, as the operators allow */
	if (e->model_id != meta->model_id && !(is_query && e->model_id == FCT_NO_MODEL))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("lsh index \"%s\" holds embeddings of %s, not of %s",
						RelationGetRelationName(index), model_desc(meta->model_id),
						model_desc(e->model_id)),
				 is_query ? errhint("Embed the query with the index's model, or index fct_upgrade(column, model) for the query's model.")
				 : errhint("Every vector of an lsh index must come from the same model; index fct_upgrade(column, model) to mix models.")));
	if (e->dim != meta->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("lsh index \"%s\" expects %d dimensions, not %d",
						RelationGetRelationName(index), meta->dim, e->dim),
				 errdetail(is_query ? "The query embedding has %d dimensions."
						   : "The value being indexed has %d dimensions.", e->dim),
				 errhint("Every vector of an lsh index must have the same dimension and model.")));
}

/*
 * Fix the index's dimension and model from its first vector (unlearned index
 * built empty); a no-op when they are fixed already.
 */
void
lsh_fix_model(Relation index, const Embedding *e)
{
	Buffer		buf;
	Page		page;
	GenericXLogState *xlog;
	LshMetaPage meta;

	buf = ReadBuffer(index, LSH_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	meta = LshPageGetMeta(BufferGetPage(buf));
	if (meta->has_model)
	{
		LshMetaPageData copy = *meta;

		UnlockReleaseBuffer(buf);
		lsh_check_value(index, &copy, e, false);
		return;
	}
	xlog = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(xlog, buf, 0);
	meta = LshPageGetMeta(page);
	meta->dim = e->dim;
	meta->model_id = e->model_id;
	meta->has_model = true;
	GenericXLogFinish(xlog);
	UnlockReleaseBuffer(buf);
}

/*
 * A standard normal draw (Box-Muller) from the build's seeded generator: the
 * simple family's projections and the calibration's synthetic queries.  Two
 * draws of rng per call, in this order, so a build is reproducible.
 */
double
lsh_gaussian(pg_prng_state *rng)
{
	double		u = pg_prng_double(rng);
	double		v = pg_prng_double(rng);

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* qsort's comparison of floats, ascending. */
int
lsh_cmp_float(const void *a, const void *b)
{
	float		x = *(const float *) a;
	float		y = *(const float *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}
