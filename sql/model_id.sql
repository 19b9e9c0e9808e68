-- A model's id is a function of its name (fct_model_id); two names whose ids
-- collide cannot both be registered; while a dump is restored
-- (check_function_bodies off) the type's input accepts a model that is not
-- registered yet, and only then.

-- The function is fixed by its definition in src/model/model.c (FNV-1a 64 and the
-- splitmix64 finaliser over the name's bytes, reduced to 1 .. 2^31-1), on
-- every platform: these constants are part of the on-disk format.
SELECT fct_model_id('v1') AS v1, fct_model_id('clip-v1') AS clip_v1,
       fct_model_id('a') AS a, fct_model_id('') AS empty;
-- Registration returns it, and fct_models.id is generated from the name.
SELECT fct_register_model('model_id_a', 3, 1) = fct_model_id('model_id_a') AS same_id;
SELECT count(*) AS models_off_their_id FROM fct_models WHERE id <> fct_model_id(name);
\set VERBOSITY sqlstate
INSERT INTO fct_models (id, name, dim) VALUES (1, 'model_id_direct', 3);
\set VERBOSITY default

-- Two names with the same id (found by brute force over model_id_c<N>
-- with a copy of the C function): the second is refused with 22023, naming
-- the model that holds the id; the first one keeps it.
SELECT fct_model_id('model_id_c57078') AS first_id,
       fct_model_id('model_id_c57676') AS second_id;
SELECT fct_register_model('model_id_c57078', 2) = fct_model_id('model_id_c57078') AS first_ok;
SELECT test_error_detail($$SELECT fct_register_model('model_id_c57676', 2)$$);
SELECT name FROM fct_models WHERE id = fct_model_id('model_id_c57676');
-- A name taken is still "already exists" (42710), not a collision.
SELECT test_error_detail($$SELECT fct_register_model('model_id_c57078', 2)$$);

-- Normal use: an unknown model is an error in text input, binary input and
-- fct_embedding().
SHOW check_function_bodies;
SELECT test_error_detail($$SELECT 'model_id_later:[1,2,3]|[4]'::embedding$$);
SELECT test_error_detail($$SELECT fct_embedding('{1,2,3}', NULL, 'model_id_later')$$);

-- A binary COPY file whose value names a model that is not registered: write
-- one for model_id_bin_a, then put model_id_bin_z (same length) in its place.
CREATE TABLE model_id_bin (e embedding);
SELECT fct_register_model('model_id_bin_a', 2) > 0 AS registered;
INSERT INTO model_id_bin VALUES ('model_id_bin_a:[1.5,-2]');
SELECT current_setting('data_directory') || '/model_id_a.bin' AS bin_a,
       current_setting('data_directory') || '/model_id_z.bin' AS bin_z \gset
COPY model_id_bin TO :'bin_a' (FORMAT binary);
SELECT lo_from_bytea(0, overlay(f PLACING 'model_id_bin_z'::bytea
                                FROM position('model_id_bin_a'::bytea IN f))) AS lo
  FROM pg_read_binary_file(:'bin_a') AS f \gset
SELECT lo_export(:lo, :'bin_z') = 1 AS exported;
SELECT lo_unlink(:lo) = 1 AS unlinked;
TRUNCATE model_id_bin;
SELECT test_error_detail(format('COPY model_id_bin FROM %L (FORMAT binary)', :'bin_z'));

-- Restore mode: what pg_dump and pg_restore set first.
SET check_function_bodies = false;
CREATE TABLE model_id_restored (id int, e embedding);
INSERT INTO model_id_restored VALUES
  (1, 'model_id_later:[1,2,3]|[4]'), (2, 'model_id_later:[0.5,0,-1]'), (3, '[7,8]');
COPY model_id_bin FROM :'bin_z' (FORMAT binary);
-- The values carry the id the name will have; nothing can print them yet.
SELECT id, fct_dims(e), fct_side_dims(e) FROM model_id_restored ORDER BY id;
SELECT test_error_detail($$SELECT e::text FROM model_id_restored WHERE id = 1$$);
-- A registered model is still checked (its dimensions are known).
SELECT test_error_detail($$SELECT 'model_id_a:[1,2]'::embedding$$);
-- fct_embedding() is no input function: still an error.
SELECT test_error_detail($$SELECT fct_embedding('{1,2,3}', NULL, 'model_id_later')$$);
RESET check_function_bodies;

-- The restore then loads fct_models: the values name their models.
SELECT fct_register_model('model_id_later', 3, 1) > 0 AS registered,
       fct_register_model('model_id_bin_z', 2) > 0 AS registered;
SELECT id, e, fct_model(e) FROM model_id_restored ORDER BY id;
SELECT e, fct_model(e) FROM model_id_bin;
SELECT e <-> 'model_id_later:[1,2,4]' AS dist FROM model_id_restored WHERE id = 1;

DROP TABLE model_id_bin, model_id_restored;
