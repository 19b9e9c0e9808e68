-- Label sets: creation, the catalog, label numbering, training priors,
-- refresh after the label table changed, drop; and each error with its SQLSTATE.

-- Integer ids are numbered in numeric order (1, 2, 10), not as text.
CREATE TABLE labels_catalog_t (id int PRIMARY KEY, e embedding, b real);
INSERT INTO labels_catalog_t VALUES (10, '[1,0]', 0.5), (2, '[0,1]', 0), (1, '[1,1]', -0.5);
SELECT fct_create_label_set('labels_catalog_a', 'labels_catalog_t', 'id', 'e', 'b');
SELECT name, label_table, id_col, embedding_col, bias_col, n_labels, dims, model,
	   train_prior, train_prior_source, prior, prior_source, labels_version
  FROM fct_label_sets WHERE name = 'labels_catalog_a';
SELECT idx, label FROM fct_label_index WHERE label_set = 'labels_catalog_a' ORDER BY idx;
-- the label table now carries the invalidation trigger
SELECT tgname FROM pg_trigger WHERE tgrelid = 'labels_catalog_t'::regclass;

-- Text ids, no bias, embeddings that name a model; a given training prior.
SELECT test_models('labels_catalog', 'm 2');
CREATE TABLE labels_catalog_txt (name text, vec embedding);
INSERT INTO labels_catalog_txt VALUES
	('shirt', 'labels_catalog_m:[1,0]'), ('coat', 'labels_catalog_m:[0,1]'), ('bag', 'labels_catalog_m:[1,1]');
SELECT fct_create_label_set('labels_catalog_b', 'labels_catalog_txt', 'name', 'vec',
							train_prior => '{0.2,0.3,0.5}');
SELECT name, bias_col, n_labels, dims, model, train_prior, train_prior_source
  FROM fct_label_sets WHERE name = 'labels_catalog_b';
SELECT idx, label FROM fct_label_index WHERE label_set = 'labels_catalog_b' ORDER BY idx;

-- Training prior counted from training labels, with additive smoothing:
-- counts (bag 3, coat 1, shirt 0), N = 4, C = 3.
CREATE TABLE labels_catalog_train (y text);
INSERT INTO labels_catalog_train VALUES ('bag'), ('bag'), ('coat'), ('bag');
-- alpha 1: (3+1)/7, (1+1)/7, (0+1)/7
SELECT fct_set_train_prior_from('labels_catalog_b', 'SELECT y FROM labels_catalog_train');
SELECT round(4/7.0, 7) AS bag, round(2/7.0, 7) AS coat, round(1/7.0, 7) AS shirt;
SELECT train_prior_source FROM fct_label_sets WHERE name = 'labels_catalog_b';
-- alpha 0.5: (3.5, 1.5, 0.5) / 5.5
SELECT fct_set_train_prior_from('labels_catalog_b', 'SELECT y FROM labels_catalog_train', 0.5);
-- alpha 0 leaves shirt at 0, which a training prior must not be (the
-- correction divides by it): an error, and the prior stays as it was
SELECT test_error($$SELECT fct_set_train_prior_from('labels_catalog_b', 'SELECT y FROM labels_catalog_train', 0)$$);
SELECT train_prior FROM fct_label_sets WHERE name = 'labels_catalog_b';
-- a training label that is not a label of the set
SELECT test_error($$SELECT fct_set_train_prior_from('labels_catalog_b', 'SELECT ''hat''')$$);
SELECT test_error($$SELECT fct_set_train_prior_from('labels_catalog_b', 'SELECT y FROM labels_catalog_train', -1)$$);
-- one column, the label: a second column was ignored silently before
SELECT test_error_detail($$SELECT fct_set_train_prior_from('labels_catalog_b', 'SELECT y, 1 FROM labels_catalog_train')$$);
-- one read-only SELECT
SELECT test_error_detail($$SELECT fct_set_train_prior_from('labels_catalog_b', 'DELETE FROM labels_catalog_train RETURNING y')$$);
SELECT test_error_detail($$SELECT fct_set_train_prior_from('labels_catalog_b', 'SELECT y FROM labels_catalog_train; SELECT 1')$$);
SELECT count(*) AS training_rows FROM labels_catalog_train;
-- integer training labels match integer ids
SELECT fct_set_train_prior_from('labels_catalog_a', 'SELECT unnest(ARRAY[1, 1, 2, 10, 10, 10])', 0);

-- Errors when creating a label set.
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_a', 'labels_catalog_t', 'id', 'e')$$);
SELECT test_error($$SELECT fct_create_label_set('bad name', 'labels_catalog_t', 'id', 'e')$$);
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_t', 'nope', 'e')$$);
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_t', 'id', 'b')$$);
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_t', 'id', 'e', 'id')$$);
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_t', 'id', 'e', NULL, '{0.5,0.5}')$$);
CREATE TABLE labels_catalog_bad (id int, e embedding, b real);
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_bad', 'id', 'e')$$);
INSERT INTO labels_catalog_bad VALUES (1, '[1,0]', 0), (1, '[0,1]', 0);
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_bad', 'id', 'e')$$);
UPDATE labels_catalog_bad SET id = 2, e = NULL WHERE e = '[0,1]';
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_bad', 'id', 'e')$$);
UPDATE labels_catalog_bad SET e = '[0,1,2]' WHERE id = 2;
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_bad', 'id', 'e')$$);
UPDATE labels_catalog_bad SET e = 'labels_catalog_m:[0,1]' WHERE id = 2;
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_bad', 'id', 'e')$$);
UPDATE labels_catalog_bad SET e = '[0,1]', b = NULL WHERE id = 2;
SELECT test_error($$SELECT fct_create_label_set('labels_catalog_x', 'labels_catalog_bad', 'id', 'e', 'b')$$);
-- none of the failed attempts left anything behind
SELECT count(*) FROM fct_label_sets WHERE name = 'labels_catalog_x';
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'labels_catalog_bad'::regclass;
-- unknown label sets
SELECT test_error($$SELECT fct_refresh_label_set('labels_catalog_nope')$$);
SELECT test_error($$SELECT fct_drop_label_set('labels_catalog_nope')$$);
SELECT test_error($$SELECT fct_set_train_prior_from('labels_catalog_nope', 'SELECT 1')$$);

-- Refresh.  With the same ids, the priors stay.
UPDATE labels_catalog_t SET e = '[2,0]' WHERE id = 10;
SELECT fct_refresh_label_set('labels_catalog_a');
SELECT n_labels, train_prior, train_prior_source, labels_version FROM fct_label_sets WHERE name = 'labels_catalog_a';
-- A new label makes the set out of date until it is refreshed; the refresh
-- numbers the labels again (3 comes between 2 and 10) and resets the priors.
INSERT INTO labels_catalog_t VALUES (3, '[3,3]', 0);
SELECT test_error($$SELECT * FROM fct_top_labels('labels_catalog_a', '[1,1]')$$);
SELECT fct_refresh_label_set('labels_catalog_a');
SELECT n_labels, train_prior, train_prior_source, labels_version FROM fct_label_sets WHERE name = 'labels_catalog_a';
SELECT idx, label FROM fct_label_index WHERE label_set = 'labels_catalog_a' ORDER BY idx;

-- A second set on the same table shares its trigger; dropping one set keeps
-- the trigger, dropping the last removes it.
SELECT fct_create_label_set('labels_catalog_c', 'labels_catalog_t', 'id', 'e');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'labels_catalog_t'::regclass;
SELECT fct_drop_label_set('labels_catalog_c');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'labels_catalog_t'::regclass;
SELECT fct_drop_label_set('labels_catalog_a');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'labels_catalog_t'::regclass;
SELECT count(*) FROM fct_label_index WHERE label_set = 'labels_catalog_a';

-- A set whose table was dropped says so.
DROP TABLE labels_catalog_txt;
SELECT test_error($$SELECT * FROM fct_top_labels('labels_catalog_b', '[1,1]')$$);
SELECT fct_drop_label_set('labels_catalog_b');
SELECT count(*) FROM fct_label_sets WHERE name LIKE 'labels_catalog%';
