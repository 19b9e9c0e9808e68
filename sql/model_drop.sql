-- Undoing a registration: fct_drop_transformation and fct_drop_model succeed
-- when nothing stored, indexed or queued depends on what they remove, and
-- otherwise fail with 2BP01 listing what depends (sql/install/85_drop.sql).
\set VERBOSITY sqlstate

SELECT fct_register_model('model_drop_a', 3) > 0 AS a,
       fct_register_model('model_drop_b', 4) > 0 AS b,
       fct_register_model('model_drop_c', 4) > 0 AS c,
       fct_register_model('model_drop_mistake', 7) > 0 AS mistake;
SELECT fct_register_transformation('model_drop_a', 'model_drop_b',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0],[0,0,1],[1,1,1]]}]}') > 0 AS a_to_b;

-- A model nothing uses goes, and its name can be registered again with
-- other dimensions (the cache forgot the old row).
SELECT fct_drop_model('model_drop_mistake');
SELECT count(*) FROM fct_models WHERE name = 'model_drop_mistake';
SELECT test_error($$SELECT 'model_drop_mistake:[1,2,3]'::embedding$$);
SELECT fct_register_model('model_drop_mistake', 2) > 0 AS again;
SELECT 'model_drop_mistake:[1,2]'::embedding;

-- Stored values, a transformation and an index that upgrades into b.
CREATE TABLE model_drop_items (id int, e embedding);
INSERT INTO model_drop_items VALUES (1, 'model_drop_a:[1,2,3]'), (2, 'model_drop_a:[0,1,0]');
CREATE TABLE model_drop_arrays (id int, es embedding[]);
INSERT INTO model_drop_arrays VALUES (1, ARRAY['model_drop_c:[1,2,3,4]'::embedding]);
CREATE INDEX model_drop_items_up ON model_drop_items ((fct_upgrade(e, 'model_drop_b')));

-- Each refusal lists every dependent, and the hint says what to run.
SELECT test_error_detail($$SELECT fct_drop_model('model_drop_a')$$);
SELECT test_error_detail($$SELECT fct_drop_model('model_drop_b')$$);
SELECT test_error_detail($$SELECT fct_drop_model('model_drop_c')$$);
SELECT test_error_detail($$SELECT fct_drop_transformation('model_drop_a', 'model_drop_b')$$);
-- The same index by model id (the form postgres_fdw ships) is found too.
DROP INDEX model_drop_items_up;
CREATE INDEX model_drop_items_up_id ON model_drop_items ((fct_upgrade(e, fct_model_id('model_drop_b'))));
SELECT test_error_detail($$SELECT fct_drop_transformation('model_drop_a', 'model_drop_b')$$);
-- A queued migration into b depends on the transformation (rolled back: no worker starts).
DROP INDEX model_drop_items_up_id;
BEGIN;
SELECT fct_migrate_start('model_drop_items', 'e', 'model_drop_b') > 0 AS queued;
SELECT regexp_replace(test_error_detail($$SELECT fct_drop_transformation('model_drop_a', 'model_drop_b')$$),
                      '(migration |cancel\()[0-9]+', '\1N', 'g') AS test_error_detail;
ROLLBACK;

-- Nothing was removed by the refusals.
SELECT count(*) FROM fct_models WHERE name LIKE 'model_drop_%';
SELECT fct_upgrade('model_drop_a:[1,2,3]', 'model_drop_b');

-- Without the index the transformation goes, and every path forgets it.
SELECT fct_drop_transformation('model_drop_a', 'model_drop_b');
SELECT test_error($$SELECT fct_upgrade('model_drop_a:[1,2,3]', 'model_drop_b')$$);
SELECT fct_upgrade_path('model_drop_a', 'model_drop_b');
-- A transformation with no index at all: an index on a table holding only
-- the target's values computed nothing through it.
SELECT fct_register_transformation('model_drop_a', 'model_drop_b',
	'{"mixer": [{"weight": [[2,0,0],[0,2,0],[0,0,2],[1,1,1]]}]}') > 0 AS registered_again;
SELECT fct_upgrade('model_drop_a:[1,2,3]', 'model_drop_b');
CREATE TABLE model_drop_new (e embedding);
INSERT INTO model_drop_new VALUES ('model_drop_b:[1,2,3,4]');
CREATE INDEX model_drop_new_up ON model_drop_new ((fct_upgrade(e, 'model_drop_b')));
SELECT fct_drop_transformation('model_drop_a', 'model_drop_b');
DROP TABLE model_drop_new;

-- Once its values are gone, the model goes.
DELETE FROM model_drop_items;
SELECT fct_drop_model('model_drop_a');
UPDATE model_drop_arrays SET es = NULL;
SELECT fct_drop_model('model_drop_c');
SELECT name FROM fct_models WHERE name LIKE 'model_drop_%' ORDER BY name;

-- Errors: unknown names (42704), nulls (22004).
SELECT test_error($$SELECT fct_drop_model('model_drop_nonesuch')$$);
SELECT test_error($$SELECT fct_drop_transformation('model_drop_b', 'model_drop_mistake')$$);
SELECT test_error($$SELECT fct_drop_model(NULL)$$);

-- The catalogs still refuse a DELETE or TRUNCATE of their own (0A000), even by their owner.
SELECT test_error($$DELETE FROM fct_models WHERE name = 'model_drop_b'$$);
SELECT test_error($$TRUNCATE fct_models$$);
SELECT test_error($$TRUNCATE fct_transformations$$);

-- Dropping is registration's privilege: EXECUTE is not granted to PUBLIC (42501).
CREATE ROLE model_drop_user;
SET ROLE model_drop_user;
SELECT test_error($$SELECT fct_drop_model('model_drop_b')$$);
SELECT test_error($$SELECT fct_drop_transformation('model_drop_b', 'model_drop_mistake')$$);
RESET ROLE;
DROP ROLE model_drop_user;
SELECT fct_drop_model('model_drop_b');
DROP TABLE model_drop_items, model_drop_arrays;
