-- CALL fct_migrate(...) and fct_model_census(...): batches, resumption, chains, every error.
-- Progress NOTICEs are shown without their DETAIL (which carries timings).
\set VERBOSITY terse

SELECT test_models('migrate_procedure', 'v1 3 2', 'v2 2 2', 'v3 2 0', 'lone 2 0');
-- v1 -> v2: new = [x0, x1 + x2 + s1], side kept; v2 -> v3: new = [x0 + x1, x1 + s1], side dropped.
-- Small integers, so that batched (sgemm) and single (sgemv) upgrades agree exactly.
SELECT test_linear('migrate_procedure', 'v1', 'v2', '[[1,0,0,0,0], [0,1,1,0,1]]'),
       test_linear('migrate_procedure', 'v2', 'v3', '[[1,1,0,0], [0,1,0,1]]');

-- orig keeps each row's original embedding, to check the migrated value against.
CREATE TABLE migrate_procedure_t (id int PRIMARY KEY, e embedding, orig embedding, note text);
INSERT INTO migrate_procedure_t (id, e, note)
SELECT g, fct_embedding(ARRAY[g, g % 7, 1]::real[], ARRAY[0.5, g % 3]::real[], 'migrate_procedure_v1'),
       repeat('x', 200)
FROM generate_series(1, 300) g;
INSERT INTO migrate_procedure_t (id, e) VALUES (301, NULL);
UPDATE migrate_procedure_t SET orig = e;
VACUUM migrate_procedure_t;

SELECT * FROM fct_model_census('migrate_procedure_t', 'e');

CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v2', batch_size => 100);

SELECT * FROM fct_model_census('migrate_procedure_t', 'e');
-- every row upgraded exactly once, none lost: each equals the upgrade of its original
SELECT count(*) AS rows,
       count(*) FILTER (WHERE e = fct_upgrade(orig, 'migrate_procedure_v2')) AS upgraded_right,
       count(DISTINCT id) AS ids
FROM migrate_procedure_t WHERE orig IS NOT NULL;
SELECT id, e, orig FROM migrate_procedure_t WHERE id IN (1, 2, 301) ORDER BY id;

-- Again: nothing left, nothing written (rows already in the target are skipped).
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v2');

-- Resumption after a partial run: half the rows back in v1, then one call finishes them.
UPDATE migrate_procedure_t SET e = orig WHERE id % 2 = 0;
SELECT * FROM fct_model_census('migrate_procedure_t', 'e');
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v2', 1000);
SELECT count(*) FILTER (WHERE e = fct_upgrade(orig, 'migrate_procedure_v2')) AS upgraded_right
FROM migrate_procedure_t;

-- A chain, from a mix of models: v2 rows take one hop, v1 rows two.
UPDATE migrate_procedure_t SET e = orig WHERE id <= 50;
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v3', 64);
SELECT * FROM fct_model_census('migrate_procedure_t', 'e');
SELECT count(*) FILTER (WHERE e = fct_upgrade(orig, 'migrate_procedure_v3')) AS upgraded_right
FROM migrate_procedure_t;
SELECT id, e FROM migrate_procedure_t WHERE id IN (1, 2) ORDER BY id;

-- Row triggers fire as for any UPDATE.
CREATE TABLE migrate_procedure_log (id int, old_model text, new_model text);
CREATE FUNCTION migrate_procedure_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO migrate_procedure_log VALUES (NEW.id, fct_model(OLD.e), fct_model(NEW.e));
	RETURN NEW;
END $$;
CREATE TRIGGER migrate_procedure_log_row BEFORE UPDATE ON migrate_procedure_t
	FOR EACH ROW EXECUTE FUNCTION migrate_procedure_log_row();
CREATE TABLE migrate_procedure_small (id int, e embedding);
INSERT INTO migrate_procedure_small
SELECT g, fct_embedding(ARRAY[g, 0, 0]::real[], ARRAY[0, 0]::real[], 'migrate_procedure_v1')
FROM generate_series(1, 3) g;
CREATE TRIGGER migrate_procedure_log_row BEFORE UPDATE ON migrate_procedure_small
	FOR EACH ROW EXECUTE FUNCTION migrate_procedure_log_row();
CALL fct_migrate('migrate_procedure_small', 'e', 'migrate_procedure_v2');
SELECT * FROM migrate_procedure_log ORDER BY id;

-- Errors.
\set VERBOSITY sqlstate
-- inside a transaction block, where it cannot commit
BEGIN;
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v2');
ROLLBACK;
\set VERBOSITY default
BEGIN;
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v2');
ROLLBACK;
\set VERBOSITY sqlstate
-- unknown model
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_nosuch');
-- no path from the rows' models to the target
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_lone');
\set VERBOSITY default
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_lone');
\set VERBOSITY sqlstate
-- wrong column type, missing column, not a table
CALL fct_migrate('migrate_procedure_t', 'note', 'migrate_procedure_v2');
CALL fct_migrate('migrate_procedure_t', 'nosuch', 'migrate_procedure_v2');
SELECT * FROM fct_model_census('migrate_procedure_t', 'id');
CREATE VIEW migrate_procedure_view AS SELECT * FROM migrate_procedure_t;
CALL fct_migrate('migrate_procedure_view', 'e', 'migrate_procedure_v2');
-- batch size out of range, NULL arguments
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v2', 0);
CALL fct_migrate('migrate_procedure_t', 'e', NULL);
-- embeddings that name no model cannot be upgraded
CREATE TABLE migrate_procedure_nomodel (e embedding);
INSERT INTO migrate_procedure_nomodel VALUES ('[1,2]'), (NULL);
SELECT * FROM fct_model_census('migrate_procedure_nomodel', 'e');
CALL fct_migrate('migrate_procedure_nomodel', 'e', 'migrate_procedure_v3');

-- Privileges: those of UPDATE ... SET e = ... WHERE ... (SPI runs as the caller).
CREATE ROLE migrate_procedure_r;
UPDATE migrate_procedure_t SET e = orig WHERE id <= 3;
SET ROLE migrate_procedure_r;
SELECT * FROM fct_model_census('migrate_procedure_t', 'e');
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v3');
RESET ROLE;
GRANT SELECT ON migrate_procedure_t TO migrate_procedure_r;
SET ROLE migrate_procedure_r;
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v3');
RESET ROLE;
GRANT UPDATE ON migrate_procedure_t TO migrate_procedure_r;
GRANT INSERT ON migrate_procedure_log TO migrate_procedure_r;
SET ROLE migrate_procedure_r;
\set VERBOSITY terse
CALL fct_migrate('migrate_procedure_t', 'e', 'migrate_procedure_v3');
RESET ROLE;
SELECT * FROM fct_model_census('migrate_procedure_t', 'e');

-- The internal helpers do nothing outside a batch.
SELECT _fct_migrate_pending('(0,1)', e) FROM migrate_procedure_t WHERE id = 1;
\set VERBOSITY sqlstate
SELECT _fct_migrate_upgraded('(0,1)');
\set VERBOSITY default

DROP VIEW migrate_procedure_view;
DROP TABLE migrate_procedure_t, migrate_procedure_small, migrate_procedure_log, migrate_procedure_nomodel;
DROP FUNCTION migrate_procedure_log_row();
DROP ROLE migrate_procedure_r;
