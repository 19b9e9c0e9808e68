/*
 * progress.c
 *	  The progress of a long fct command in pg_stat_activity (progress.h).
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "progress/progress.h"

/*
 * The query text of the command being reported (TopMemoryContext), or NULL,
 * and the start of the statement it belongs to: an error skips progress_end,
 * so a later statement must not reuse a text kept for an earlier one.
 */
static char *progress_query = NULL;
static TimestampTz progress_statement = 0;

/* JSON inside a comment: "* /" would end it, so '/' is written "\/" */
static void
append_json_string(StringInfo s, const char *str)
{
	StringInfoData t;

	initStringInfo(&t);
	escape_json(&t, str);
	for (const char *c = t.data; *c; c++)
	{
		if (*c == '/')
			appendStringInfoChar(s, '\\');
		appendStringInfoChar(s, *c);
	}
	pfree(t.data);
}

void
progress_report(const char *command, const char *target, const char *phase,
				int64 done, int64 total, const char *extra)
{
	StringInfoData s;

	if (!pgstat_track_activities || MyBEEntry == NULL)
		return;
	if (progress_query != NULL && progress_statement != GetCurrentStatementStartTimestamp())
	{
		pfree(progress_query);
		progress_query = NULL;
	}
	if (progress_query == NULL)
	{
		progress_query = MemoryContextStrdup(TopMemoryContext,
											 debug_query_string ? debug_query_string : "");
		progress_statement = GetCurrentStatementStartTimestamp();
	}

	initStringInfo(&s);
	appendStringInfoString(&s, "/* fct_progress {\"command\":");
	append_json_string(&s, command);
	appendStringInfoString(&s, ",\"target\":");
	append_json_string(&s, target ? target : "");
	appendStringInfoString(&s, ",\"phase\":");
	append_json_string(&s, phase ? phase : "");
	appendStringInfo(&s, ",\"done\":" INT64_FORMAT ",\"total\":" INT64_FORMAT ",\"updated\":",
					 done, total);
	append_json_string(&s, timestamptz_to_str(GetCurrentTimestamp()));
	if (extra && extra[0])
	{
		/* the caller's members: numbers and fixed keys, but escape '/' all the same */
		appendStringInfoChar(&s, ',');
		for (const char *c = extra; *c; c++)
		{
			if (*c == '/')
				appendStringInfoChar(&s, '\\');
			appendStringInfoChar(&s, *c);
		}
	}
	appendStringInfoString(&s, "} */ ");
	appendStringInfoString(&s, progress_query);
	pgstat_report_activity(STATE_RUNNING, s.data);
	pfree(s.data);
}

void
progress_end(void)
{
	if (progress_query == NULL)
		return;
	if (pgstat_track_activities && MyBEEntry != NULL)
		pgstat_report_activity(STATE_RUNNING, progress_query);
	pfree(progress_query);
	progress_query = NULL;
}

void
progress_append_member(StringInfo s, const char *key, const char *value)
{
	if (s->len > 0)
		appendStringInfoChar(s, ',');
	escape_json(s, key);
	appendStringInfoChar(s, ':');
	escape_json(s, value ? value : "");
}

double
progress_rate(TimestampTz started, int64 count)
{
	long		secs;
	int			usecs;
	double		elapsed;

	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	elapsed = secs + usecs / 1e6;
	return elapsed > 0 ? count / elapsed : 0;
}
