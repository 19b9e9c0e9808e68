-- fct_refresh: mismatches, bad arguments, bad sources, privileges.

SELECT test_models('refresh_errors', 'm 2', 'm2 2');
CREATE TABLE refresh_errors_items (id int PRIMARY KEY, emb embedding, note text);
INSERT INTO refresh_errors_items VALUES (1, 'refresh_errors_m:[1,0]', 'a'), (2, 'refresh_errors_m:[0,1]', 'b'),
	(3, NULL, 'c');

-- the source must be one read-only SELECT: 42601 or 0A000, its first words in the detail
SELECT test_error_detail($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id',
	'INSERT INTO refresh_errors_items VALUES (9, NULL, ''x'') RETURNING id, emb', threshold => 0.1)$$);
SELECT test_error_detail($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', ' ', threshold => 0.1)$$);
SELECT count(*) AS rows_unchanged FROM refresh_errors_items;
-- model or dimension mismatch between source and table: 22000, nothing written
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id',
	'VALUES (1, ''refresh_errors_m2:[1,0]''::embedding)', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id',
	'VALUES (2, ''[5,5]''::embedding)', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id',
	'VALUES (2, ''refresh_errors_m:[0,1]''::embedding), (1, ''[1,0,0]''::embedding)', threshold => 0.1)$$);
-- even with target_skip (the sample sees it first) and in a full pass
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id',
	'VALUES (1, ''[1,0]''::embedding)', target_skip => 0.5)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id',
	'VALUES (1, ''[1,0]''::embedding)', threshold => 0.1, full_every => 1)$$);
SELECT * FROM refresh_errors_items ORDER BY id;
-- a NULL stored value takes whatever the source gives (the column's typmod, if any, applies)
SELECT * FROM fct_refresh('refresh_errors_items', 'emb', 'id',
	$$VALUES (3, '[7,7,7]'::embedding)$$, threshold => 0.1);
-- a NULL source embedding is an error (leave such keys out of the source)
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id',
	'VALUES (1, NULL::embedding)', threshold => 0.1)$$);

-- arguments
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)')$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)', 0.1, 0.5)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)', threshold => -1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)', threshold => 'NaN')$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)', target_skip => 1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)', target_skip => -0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)', threshold => 0.1, full_every => -1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', NULL, threshold => 0.1)$$);
-- the target
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'nope', 'id', 'VALUES (1, ''[1]''::embedding)', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'nope', 'VALUES (1, ''[1]''::embedding)', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'note', 'id', 'VALUES (1, ''[1]''::embedding)', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'emb', 'VALUES (1, ''[1]''::embedding)', threshold => 0.1)$$);
CREATE VIEW refresh_errors_view AS SELECT * FROM refresh_errors_items;
SELECT test_error($$SELECT fct_refresh('refresh_errors_view', 'emb', 'id', 'VALUES (1, ''[1]''::embedding)', threshold => 0.1)$$);
-- the source: one query returning (key, embedding)
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ''[1]''::embedding, 3)', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'SELECT 1', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (1, ARRAY[1,0]::real[])', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'SELECT 1, ''[1]''::embedding; SELECT 2, ''[2]''::embedding', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'DELETE FROM refresh_errors_items RETURNING id, emb', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (''x'', ''[1]''::embedding)', threshold => 0.1)$$);
SELECT count(*) AS rows_still_there FROM refresh_errors_items;

-- privileges: exactly those of UPDATE refresh_errors_items SET emb = ... WHERE id = ... AND emb = ...
CREATE ROLE regress_refresh_errors_writer;
CREATE ROLE regress_refresh_errors_reader;
GRANT SELECT (id, emb), UPDATE (emb) ON refresh_errors_items TO regress_refresh_errors_writer;
GRANT SELECT ON refresh_errors_items TO regress_refresh_errors_reader;
SET ROLE regress_refresh_errors_writer;
SELECT * FROM fct_refresh('refresh_errors_items', 'emb', 'id',
	$$VALUES (1, 'refresh_errors_m:[1,1]'::embedding), (2, 'refresh_errors_m:[0,1]'::embedding)$$, threshold => 0.1);
-- the writer cannot write the log itself, but reads it
SELECT test_error($$INSERT INTO fct_refresh_log (tbl, col, started, finished, updated, skipped, forced, missing, threshold, full_pass, refreshed_by) VALUES ('refresh_errors_items', 'emb', now(), now(), 0, 0, 0, 0, 0, false, 'x')$$);
SELECT updated, skipped, refreshed_by FROM fct_refresh_log
WHERE tbl = 'refresh_errors_items'::regclass ORDER BY id DESC LIMIT 1;
RESET ROLE;
-- no UPDATE privilege: 42501 even when nothing would be written, and no log row
SET ROLE regress_refresh_errors_reader;
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (99, ''[1]''::embedding)', threshold => 0.1)$$);
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'note', 'id', 'VALUES (99, ''[1]''::embedding)', threshold => 0.1)$$);
RESET ROLE;
-- no SELECT on the key column
REVOKE SELECT (id) ON refresh_errors_items FROM regress_refresh_errors_writer;
SET ROLE regress_refresh_errors_writer;
SELECT test_error($$SELECT fct_refresh('refresh_errors_items', 'emb', 'id', 'VALUES (99, ''[1]''::embedding)', threshold => 0.1)$$);
RESET ROLE;
SELECT refreshed_by, count(*) FROM fct_refresh_log
WHERE tbl = 'refresh_errors_items'::regclass GROUP BY refreshed_by ORDER BY 1;

DROP VIEW refresh_errors_view;
DROP TABLE refresh_errors_items;
DROP ROLE regress_refresh_errors_writer, regress_refresh_errors_reader;
