-- What is going on, from psql (sql/install/87_overview.sql): transformations
-- by model name, the columns holding embeddings with their models and the
-- indexes upgrading them, and the progress view (its TAP test runs a fit).
SELECT test_models('model_overview', 'a 3', 'b 4');
SELECT test_linear('model_overview', 'a', 'b', '[[1,0,0],[0,1,0],[0,0,1],[1,1,1]]');

-- fct_transformation_list: names, not ids.
SELECT from_model, to_model, origin, architecture, method, val_loss
  FROM fct_transformation_list WHERE from_model = 'model_overview_a';

-- A small table is counted exactly, a larger one estimated from a sample.
CREATE TABLE model_overview_small (id int, e embedding, es embedding[]);
INSERT INTO model_overview_small VALUES
	(1, 'model_overview_a:[1,2,3]', ARRAY['model_overview_b:[1,2,3,4]'::embedding, '[5,6]']),
	(2, 'model_overview_b:[1,2,3,4]', NULL), (3, NULL, NULL);
CREATE INDEX model_overview_small_up ON model_overview_small ((fct_upgrade(e, 'model_overview_b')));
CREATE TABLE model_overview_big (id int, e embedding);
INSERT INTO model_overview_big
SELECT g, CASE WHEN g % 4 = 0 THEN 'model_overview_b:[1,2,3,4]'::embedding
               ELSE 'model_overview_a:[1,2,3]'::embedding END
  FROM generate_series(1, 40000) g;
ANALYZE model_overview_big;

SELECT "column", type, models, estimated, upgrade_indexes
  FROM fct_columns WHERE "table" = 'model_overview_small'::regclass ORDER BY 1;
-- the estimate: the right models, each within 15% of its true count (30,000 and 10,000)
SELECT m.model, m.rows BETWEEN 0.85 * t.n AND 1.15 * t.n AS close, m.estimated
  FROM fct_column_models('model_overview_big', 'e') m
  JOIN (VALUES ('model_overview_a', 30000), ('model_overview_b', 10000)) t(model, n) USING (model)
 ORDER BY 1;
-- counted exactly when the sample would be the whole table
SELECT * FROM fct_column_models('model_overview_big', 'e', 100000);
-- A table that grew by half since its last ANALYZE (autovacuum kept off it): the estimate follows
-- its size now (scaled to the stale reltuples, it said 30,000 and 10,000: a third too low).
ALTER TABLE model_overview_big SET (autovacuum_enabled = false);
INSERT INTO model_overview_big
SELECT g, CASE WHEN g % 4 = 0 THEN 'model_overview_b:[1,2,3,4]'::embedding
               ELSE 'model_overview_a:[1,2,3]'::embedding END
  FROM generate_series(40001, 60000) g;
SELECT m.model, m.rows BETWEEN 0.85 * t.n AND 1.15 * t.n AS close, m.estimated
  FROM fct_column_models('model_overview_big', 'e') m
  JOIN (VALUES ('model_overview_a', 45000), ('model_overview_b', 15000)) t(model, n) USING (model)
 ORDER BY 1;
-- the same check fails on a sample of a few pages (500 rows): the whole pages drawn are too few
SELECT m.model, m.rows BETWEEN 0.85 * t.n AND 1.15 * t.n AS close, m.estimated
  FROM fct_column_models('model_overview_big', 'e', 500) m
  JOIN (VALUES ('model_overview_a', 45000), ('model_overview_b', 15000)) t(model, n) USING (model)
 ORDER BY 1;
SELECT test_error($$SELECT * FROM fct_column_models('model_overview_big', 'id')$$);

-- A role that may not read a table sees its columns, without counts.
CREATE ROLE model_overview_user;
SET ROLE model_overview_user;
SELECT "column", models FROM fct_columns WHERE "table" = 'model_overview_small'::regclass ORDER BY 1;
RESET ROLE;
DROP ROLE model_overview_user;

-- fct_progress: nothing runs in this session's view of itself but this query.
SELECT count(*) FROM fct_progress WHERE pid = pg_backend_pid();

DROP TABLE model_overview_small, model_overview_big;
