/*
 * refresh.h
 *	  Drift-aware refresh: what its files share.  Calls go one way:
 *
 *	    refresh.c          fct_refresh: reads the source, writes in batches
 *	    skip_stale.c       the trigger fct_skip_stale
 *	    refresh_shards.c   a Citus table distributed on the key: on its shards
 *	    refresh_policy.c   threshold, full pass, fct_refresh_log
 *	    refresh_target.c   resolving and checking the call
 *	    drift.c            fct_drift, refresh_is_stale
 *
 *	  refresh.c calls the four below it; skip_stale.c only drift.c.
 */
#ifndef FCT_REFRESH_H
#define FCT_REFRESH_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "type/embedding.h"

/* What one call resolves once: the target, its types, its queries. */
typedef struct RefreshTarget
{
	Oid			relid;
	char	   *qualname;		/* quoted schema.table */
	char	   *colname;
	char	   *qcol;			/* quoted column */
	char	   *qkey;			/* quoted key column */
	AttrNumber	keynum;
	const char *source;			/* the source query, trailing ';' removed */
	char	   *keyeq;			/* OPERATOR(schema.=) of the key's type */
	char	   *embeq;			/* OPERATOR(schema.=) of embedding */
	Oid			embtype;
	Oid			embarraytype;
	Oid			keytype;
	Oid			keyarraytype;
	int16		keylen;
	bool		keybyval;
	char		keyalign;
	Oid			keyoutput;		/* for messages only */
	bool		citus;			/* a Citus table: its rows live in shard placements */
	bool		on_shards;		/* ... distributed on key: refresh_shards.c runs it */
} RefreshTarget;

typedef struct RefreshCounts
{
	int64		read;			/* source rows */
	int64		updated;
	int64		skipped;
	int64		forced;
	int64		missing;
	int64		conflicts;		/* included in skipped */
} RefreshCounts;

/* drift.c */

/* ||stored - fresh|| / ||stored|| over the vector (the same dimension). */
extern float8 refresh_drift(const Embedding *stored, const Embedding *fresh);

/*
 * Is the fresh value b a stale copy of the stored a, i.e. not worth
 * writing?  Same model, dimension and side-information, and a vector drift
 * below threshold.
 */
extern bool refresh_is_stale(const Embedding *a, const Embedding *b, float8 threshold);

/* refresh_target.c */

/*
 * Resolve (table, column, key) into t once per call: types, equality
 * operators, quoted names; errors unless the caller may SELECT and UPDATE
 * the column and SELECT the key.
 */
extern void refresh_resolve_target(RefreshTarget *t, Oid relid, const char *col,
								   const char *key);

/* Check the source query (one SELECT of (key, embedding)) and keep it in t. */
extern void refresh_check_source(RefreshTarget *t, const char *source);

/* The key's text, for messages. */
extern char *refresh_key_text(RefreshTarget *t, Datum key);

/*
 * Errors unless fresh can replace stored (same model and dimension); key and
 * its type's output function name the row in the message.
 */
extern void refresh_check_pair(Oid keyoutput, Datum key, const Embedding *stored,
							   const Embedding *fresh);

/* refresh_policy.c */

/* Is this refresh of t the full_every-th (every row written)? */
extern bool refresh_is_full_pass(RefreshTarget *t, int32 full_every);

/*
 * The threshold at which a fraction target_skip of the rows is skipped,
 * estimated from a sample of drifts (its size in *sample_size).
 */
extern float8 refresh_estimate_threshold(RefreshTarget *t, float8 target_skip,
										 int64 *sample_size);

/* Append this refresh's row to fct_refresh_log. */
extern void refresh_log_append(RefreshTarget *t, TimestampTz started, RefreshCounts *c,
							   float8 threshold, bool has_target_skip, float8 target_skip,
							   bool full_pass);

/*
 * refresh_shards.c: the whole refresh of a Citus table distributed on the
 * key column (t->on_shards) as two statements that Citus runs on every shard
 * placement at once, in the caller's distributed transaction.  Fills c.
 */
extern void refresh_on_shards(RefreshTarget *t, float8 threshold, bool full_pass,
							  RefreshCounts *c);

#endif							/* FCT_REFRESH_H */
