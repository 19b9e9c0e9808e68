/*
 * progress.h
 *	  The progress of a long fct command, visible from other sessions.
 *
 * CALL fct_migrate and fct_fit_transformation run for minutes in one
 * backend; their NOTICEs reach only their caller.  progress_report publishes
 * where such a command is in this backend's pg_stat_activity entry: the
 * query text becomes
 *
 *	   / * fct_progress {"command": ..., "target": ..., "phase": ...,
 *	                    "done": N, "total": N, "updated": "...", ...} * / <the query>
 *
 * (a comment first, so that track_activity_query_size cuts the query, not the
 * progress), and the view fct_progress (sql/install/87_overview.sql) reads it
 * back.  Why there: it needs no shared_preload_libraries (fct works without
 * it), it is gone with the backend (nothing stale to clean), and it follows
 * pg_stat_activity's privileges (a role sees the query text of its own
 * sessions; pg_read_all_stats sees all).  It writes this backend's status
 * entry only (a few hundred bytes): cheap enough for every batch or epoch.
 * Nothing is shown when track_activities is off.
 */
#ifndef FCT_PROGRESS_H
#define FCT_PROGRESS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/*
 * Publish the progress of command (e.g. "fct_migrate") on target (e.g. the
 * column "public.items.emb -> clip-v2"): phase (a few words), done of total
 * (-1: unknown), and extra, JSON object members without braces (e.g.
 * "\"epoch\":3,\"val_loss\":0.01") or NULL.  The first call of a command
 * remembers the query text, which progress_end restores.
 */
extern void progress_report(const char *command, const char *target,
							const char *phase, int64 done, int64 total,
							const char *extra);

/* The command is over: the query text is the caller's again. */
extern void progress_end(void);

/*
 * Helpers for the extra members: ,"key":"value" (value JSON-escaped) appended
 * to s, and the rate of a count since a start (per second; 0 before any time
 * has passed), which long commands report and print alike.
 */
extern void progress_append_member(StringInfo s, const char *key, const char *value);
extern double progress_rate(TimestampTz started, int64 count);

#endif							/* FCT_PROGRESS_H */
