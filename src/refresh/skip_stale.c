/*
 * skip_stale.c
 *	  The trigger fct_skip_stale: an UPDATE that would only write a stale
 *	  copy of the stored embedding writes nothing (drift.c decides).
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/lsyscache.h"

#include "type/embedding.h"
#include "refresh/refresh.h"

/* ----------------------------------------------------------------
 * fct_skip_stale: BEFORE UPDATE ... FOR EACH ROW trigger
 *
 *	 CREATE TRIGGER t BEFORE UPDATE ON tbl FOR EACH ROW
 *		 EXECUTE FUNCTION fct_skip_stale('0.05' [, 'column']);
 *
 * Watches the named embedding column, or every column of type embedding.
 * The row is not written (the trigger returns NULL) when every other
 * column is unchanged (same bytes, or NULL in both) and every watched
 * column is unchanged or moved by a drift below the threshold (same model
 * dimension and side-information, both non-NULL).  Otherwise the row is written exactly as
 * the UPDATE made it, new embedding included: when other columns change,
 * the writer's whole new row is what it asked for, and a small drift costs
 * nothing extra since the row is rewritten anyway.  Stored generated
 * columns are not compared (they follow from the others).
 * ----------------------------------------------------------------
 */

typedef struct SkipStaleCache
{
	Oid			tgoid;
	Oid			relid;
	int			natts;
	float8		threshold;
	bool	   *watched;		/* per attribute (0-based) */
	bool	   *compared;		/* per attribute: not dropped, not generated */
} SkipStaleCache;

static SkipStaleCache *
skip_stale_cache(FunctionCallInfo fcinfo, TriggerData *td)
{
	SkipStaleCache *cache = (SkipStaleCache *) fcinfo->flinfo->fn_extra;
	Trigger    *tg = td->tg_trigger;
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	MemoryContext oldcxt;
	Oid			embtype;
	char	   *end;
	int			nwatched = 0;

	if (cache != NULL && cache->tgoid == tg->tgoid &&
		cache->relid == RelationGetRelid(td->tg_relation) &&
		cache->natts == desc->natts)
		return cache;

	if (tg->tgnargs < 1 || tg->tgnargs > 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fct_skip_stale takes a threshold and optionally a column name, not %d arguments",
						tg->tgnargs),
				 errhint("EXECUTE FUNCTION fct_skip_stale('0.05') or fct_skip_stale('0.05', 'embedding_column').")));

	oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	cache = palloc0(sizeof(SkipStaleCache));
	cache->tgoid = tg->tgoid;
	cache->relid = RelationGetRelid(td->tg_relation);
	cache->natts = desc->natts;
	cache->watched = palloc0(sizeof(bool) * Max(desc->natts, 1));
	cache->compared = palloc0(sizeof(bool) * Max(desc->natts, 1));
	MemoryContextSwitchTo(oldcxt);

	errno = 0;
	cache->threshold = strtod(tg->tgargs[0], &end);
	if (end == tg->tgargs[0] || *end != '\0' || errno != 0 ||
		isnan(cache->threshold) || cache->threshold < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid threshold \"%s\" for fct_skip_stale on \"%s\"",
						tg->tgargs[0], RelationGetRelationName(td->tg_relation)),
				 errhint("The threshold is a non-negative relative drift, such as '0.05'.")));

	embtype = embedding_type_oid();
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		cache->compared[i] = true;
		if (tg->tgnargs == 2)
			cache->watched[i] = strcmp(NameStr(att->attname), tg->tgargs[1]) == 0;
		else
			cache->watched[i] = getBaseType(att->atttypid) == embtype;
		if (cache->watched[i])
		{
			if (getBaseType(att->atttypid) != embtype)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" of \"%s\" is of type %s, not embedding",
								NameStr(att->attname),
								RelationGetRelationName(td->tg_relation),
								format_type_be(att->atttypid))));
			nwatched++;
		}
	}
	if (tg->tgnargs == 2 && nwatched == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of \"%s\" does not exist",
						tg->tgargs[1], RelationGetRelationName(td->tg_relation))));

	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

PG_FUNCTION_INFO_V1(fct_skip_stale);
Datum
fct_skip_stale(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	SkipStaleCache *cache;
	TupleDesc	desc;
	HeapTuple	oldtup;
	HeapTuple	newtup;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_skip_stale must be called as a trigger")));
	if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fct_skip_stale must be a BEFORE UPDATE ... FOR EACH ROW trigger")));

	cache = skip_stale_cache(fcinfo, td);
	desc = RelationGetDescr(td->tg_relation);
	oldtup = td->tg_trigtuple;
	newtup = td->tg_newtuple;

	for (int i = 0; i < cache->natts; i++)
	{
		Form_pg_attribute att;
		bool		oldnull;
		bool		newnull;
		Datum		o;
		Datum		n;

		if (!cache->compared[i])
			continue;
		att = TupleDescAttr(desc, i);
		o = heap_getattr(oldtup, i + 1, desc, &oldnull);
		n = heap_getattr(newtup, i + 1, desc, &newnull);
		if (oldnull && newnull)
			continue;
		if (oldnull != newnull)
			return PointerGetDatum(newtup);
		if (datum_image_eq(o, n, att->attbyval, att->attlen))
			continue;
		if (!cache->watched[i] ||
			!refresh_is_stale(DatumGetEmbeddingP(o), DatumGetEmbeddingP(n),
								cache->threshold))
			return PointerGetDatum(newtup);
	}
	/* nothing but stale embeddings changed: keep the stored row */
	return PointerGetDatum(NULL);
}

