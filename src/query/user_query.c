/*
 * user_query.c
 *	  A query text a caller gives fct (the pairs of fct_fit_transformation, the
 *	  queries of fct_top_labels_batch and fct_estimate_prior_em, the labels of
 *	  fct_set_train_prior_from, the source of fct_refresh) is one read-only
 *	  SELECT.
 *
 * fct runs such a text through SPI as a read-only cursor.  Without a check of
 * its own, a DELETE, an empty string or two statements fail deep inside SPI
 * with messages about its machinery ("DELETE is not allowed in a non-volatile
 * function", "cannot open multi-query plan as cursor") that do not say what
 * the caller did wrong.  So the text is parsed first (the raw grammar only:
 * no catalog look-up, no lock) and refused with the rule and the query's first
 * words: 42601 when it is not exactly one SELECT (VALUES and TABLE are
 * SELECTs), 0A000 when it is a SELECT that would write or lock (a
 * data-modifying WITH, SELECT INTO, FOR UPDATE / SHARE).
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/builtins.h"

#include "query/query.h"

/* The first words of a statement, for an error's detail. */
#define FIRST_WORDS_CHARS	60

/*
 * The statement of query that starts at location (a RawStmt's), with runs of
 * white space made one space, cut after FIRST_WORDS_CHARS characters.
 */
static char *
first_words(const char *query, int location, int len)
{
	const char *p = query + Max(location, 0);
	const char *end = len > 0 ? p + len : query + strlen(query);
	StringInfoData buf;
	bool		space = false;

	initStringInfo(&buf);
	while (p < end && isspace((unsigned char) *p))
		p++;
	for (; p < end && *p; p++)
	{
		if (isspace((unsigned char) *p))
		{
			space = true;
			continue;
		}
		if (buf.len >= FIRST_WORDS_CHARS)
		{
			appendStringInfoString(&buf, " ...");
			break;
		}
		if (space)
			appendStringInfoChar(&buf, ' ');
		space = false;
		appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

/* "a DELETE", "an INSERT": the kind of a raw statement, for a message. */
static char *
statement_kind(Node *stmt)
{
	const char *name = CreateCommandName(stmt);

	return psprintf("%s %s", strchr("AEIOU", name[0]) ? "an" : "a", name);
}

/* What makes a SELECT write or lock, or NULL when it does neither. */
static const char *
select_writes(SelectStmt *s)
{
	if (s->intoClause != NULL)
		return "SELECT INTO creates a table";
	if (s->lockingClause != NIL)
		return "FOR UPDATE / FOR SHARE locks rows";
	if (s->withClause != NULL)
	{
		ListCell   *lc;

		foreach(lc, s->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!IsA(cte->ctequery, SelectStmt))
				return psprintf("its WITH query \"%s\" is %s", cte->ctename,
								statement_kind(cte->ctequery));
		}
	}
	/* the branches of UNION / INTERSECT / EXCEPT */
	if (s->op != SETOP_NONE)
	{
		const char *w = select_writes(s->larg);

		return w ? w : select_writes(s->rarg);
	}
	return NULL;
}

RawStmt *
query_check_select(const char *query, const char *what)
{
	List	   *stmts = raw_parser(query, RAW_PARSE_DEFAULT);
	RawStmt    *raw;
	const char *writes;

	if (stmts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("the query of %s must be one read-only SELECT", what),
				 errdetail("The query is empty."),
				 errhint("Pass the SELECT (or VALUES) that returns the rows.")));
	raw = linitial_node(RawStmt, stmts);
	if (list_length(stmts) > 1)
	{
		RawStmt    *second = lsecond_node(RawStmt, stmts);

		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("the query of %s must be one read-only SELECT", what),
				 errdetail("The query holds %d statements: \"%s\", then \"%s\".",
						   list_length(stmts),
						   first_words(query, raw->stmt_location, raw->stmt_len),
						   first_words(query, second->stmt_location, second->stmt_len)),
				 errhint("Pass one statement; run any other on its own.")));
	}
	if (!IsA(raw->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("the query of %s must be one read-only SELECT", what),
				 errdetail("The query is %s: \"%s\".", statement_kind(raw->stmt),
						   first_words(query, raw->stmt_location, raw->stmt_len)),
				 errhint("Pass the SELECT (or VALUES) that returns the rows; run a statement that "
						 "writes on its own.")));
	writes = select_writes((SelectStmt *) raw->stmt);
	if (writes != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the query of %s must be one read-only SELECT", what),
				 errdetail("The query writes (%s): \"%s\".", writes,
						   first_words(query, raw->stmt_location, raw->stmt_len)),
				 errhint("Run the statement that writes on its own, then pass a SELECT of its result.")));
	return raw;
}

int
query_select_columns(const char *query, const char *what)
{
	RawStmt    *raw = query_check_select(query, what);
	Query	   *q = parse_analyze_fixedparams(raw, query, NULL, 0, NULL);
	int			n = 0;
	ListCell   *lc;

	foreach(lc, q->targetList)
	{
		if (!lfirst_node(TargetEntry, lc)->resjunk)
			n++;
	}
	return n;
}

/*
 * _fct_check_select(query text, what text) returns integer: for the install
 * script's plpgsql functions that run a caller's query
 * (fct_set_train_prior_from): refuses what query_check_select refuses and
 * returns the number of columns the query returns.
 */
PG_FUNCTION_INFO_V1(fct_check_select);
Datum
fct_check_select(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_INT32(query_select_columns(query, what));
}
