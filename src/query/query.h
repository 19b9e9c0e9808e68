/*
 * query.h
 *	  The statements fct builds.
 *
 * Every statement the extension builds (through SPI, in C or in plpgsql)
 * names each operator, function and type with its schema, so that nothing a
 * caller's search_path puts first is ever looked up in its place: built-ins
 * as pg_catalog.name and OPERATOR(pg_catalog.op) (the SQL_* macros below),
 * fct's own objects through query_ext_name and query_ext_operator (the
 * extension's schema is looked up, never assumed), and the equality operator
 * of a column of any type through query_eq_operator.  Identifiers go through
 * quote_identifier / quote_qualified_identifier.  Constructs that look an
 * operator up by name with no way to qualify it (IS [NOT] DISTINCT FROM, IN
 * (...), CASE x WHEN, NULLIF, BETWEEN, LIKE) are not used; write them with a
 * qualified operator.  README.md beside this file has the rule with
 * examples; the regress test security_search_path checks it for every
 * function that builds SQL.
 */
#ifndef FCT_QUERY_H
#define FCT_QUERY_H

#include "postgres.h"

/* Built-in operators, for the statements fct builds. */
#define SQL_EQ	"OPERATOR(pg_catalog.=)"
#define SQL_NE	"OPERATOR(pg_catalog.<>)"
#define SQL_LT	"OPERATOR(pg_catalog.<)"
#define SQL_LE	"OPERATOR(pg_catalog.<=)"
#define SQL_GT	"OPERATOR(pg_catalog.>)"
#define SQL_GE	"OPERATOR(pg_catalog.>=)"
#define SQL_PLUS "OPERATOR(pg_catalog.+)"

/* "schema".name of an object of the extension (table, function, type). */
extern char *query_ext_name(const char *name);

/* OPERATOR("schema".op) for an operator of the extension (=, <#>, ...). */
extern char *query_ext_operator(const char *op);

/*
 * OPERATOR(schema.=) with the schema of the default equality operator of
 * type (the one its default btree or hash operator class uses), for a match
 * on a column of any type; 42883 when the type has none.
 */
extern char *query_eq_operator(Oid type);

/*
 * Run one of fct's own fixed statements on one of its own tables (relid) as
 * the table's owner, for tables that only fct's functions may write: in a
 * restricted security context and with search_path = pg_catalog, pg_temp,
 * as a SECURITY DEFINER function with a SET clause would.  The caller's
 * privilege to do what the statement does must have been checked before.
 * Returns SPI's result code (errors on a negative one).
 */
extern int	query_execute_as_owner(Oid relid, const char *sql, int nargs,
								   Oid *argtypes, Datum *values,
								   const char *nulls, bool read_only);

/*
 * A query text a caller gives one of fct's functions (what: its name, for the
 * message) must be exactly one read-only SELECT (VALUES and TABLE included):
 * 42601 when it is empty, holds several statements or is another statement,
 * 0A000 when it would write or lock (data-modifying WITH, SELECT INTO, FOR
 * UPDATE); the detail quotes the query's first words.  Parses only (no
 * catalog access); returns the parsed statement.  user_query.c.
 */
struct RawStmt;
extern struct RawStmt *query_check_select(const char *query, const char *what);

/*
 * query_check_select, then parse analysis: the number of columns the query
 * returns (its relations must exist).
 */
extern int	query_select_columns(const char *query, const char *what);

#endif							/* FCT_QUERY_H */
