/*
 * refresh.h
 *	  Drift-aware refresh: what refresh.c (the single-server path) and
 *	  refresh_shards.c (a Citus distributed table, pushed down to its shards)
 *	  share.
 */
#ifndef FCT_REFRESH_H
#define FCT_REFRESH_H

#include "postgres.h"

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

/*
 * Is the fresh value b a stale copy of the stored a, i.e. not worth
 * writing?  Same model, dimension and side-information, and a vector drift
 * below threshold.
 */
extern bool refresh_is_stale(const Embedding *a, const Embedding *b, float8 threshold);

/*
 * Errors unless fresh can replace stored (same model and dimension); key and
 * its type's output function name the row in the message.
 */
extern void refresh_check_pair(Oid keyoutput, Datum key, const Embedding *stored,
							   const Embedding *fresh);

/*
 * refresh_shards.c: the whole refresh of a Citus table distributed on the
 * key column (t->on_shards) as two statements that Citus runs on every shard
 * placement at once, in the caller's distributed transaction.  Fills c.
 */
extern void refresh_on_shards(RefreshTarget *t, float8 threshold, bool full_pass,
							  RefreshCounts *c);

#endif							/* FCT_REFRESH_H */
