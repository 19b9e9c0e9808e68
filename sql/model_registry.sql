-- The model registry: registration, validation, immutability, permissions.
\set VERBOSITY sqlstate

-- Registration returns the new id: positive, fct_model_id(name) (the model_id
-- test checks that function itself).
SELECT fct_register_model('model_registry-a.1', 3) AS a_id \gset
SELECT fct_register_model('model_registry_b', 4, 2, 'second model') AS b_id \gset
SELECT :a_id >= 1 AS a_positive, :b_id >= 1 AS b_positive,
       :a_id = fct_model_id('model_registry-a.1') AS a_by_name,
       :b_id = fct_model_id('model_registry_b') AS b_by_name;
SELECT name, dim, side_dim, note, created_at <= now() AS created_in_past
  FROM fct_models WHERE id IN (:a_id, :b_id) ORDER BY name;

-- The largest allowed dimensions, and the longest allowed name (63 characters).
SELECT fct_register_model('model_registry_max', 16000, 4096) > 0 AS ok;
SELECT fct_register_model('model_registry_' || repeat('x', 48), 1) > 0 AS ok_63;

-- Duplicate name: 42710 duplicate_object (names are case-sensitive).
SELECT fct_register_model('model_registry_b', 4, 2);
SELECT fct_register_model('MODEL_REGISTRY_B', 4, 2) > 0 AS other_case_ok;

-- Bad values: 22023 invalid_parameter_value, nulls 22004.
SELECT fct_register_model('model_registry_' || repeat('x', 49), 1);	-- 64 characters
SELECT fct_register_model('', 3);
SELECT fct_register_model('_model_registry', 3);
SELECT fct_register_model('model registry', 3);
SELECT fct_register_model('model_registry:c', 3);
SELECT fct_register_model('model_registry[c]', 3);
SELECT fct_register_model('model_registry_c', 0);
SELECT fct_register_model('model_registry_c', 16001);
SELECT fct_register_model('model_registry_c', -1);
SELECT fct_register_model('model_registry_c', 3, -1);
SELECT fct_register_model('model_registry_c', 3, 4097);
SELECT fct_register_model(NULL, 3);
SELECT fct_register_model('model_registry_c', NULL);
SELECT fct_register_model('model_registry_c', 3, NULL);
-- None of those was registered.
SELECT count(*) FROM fct_models WHERE lower(name) LIKE '%model_registry_c%';

-- The limits are in the error detail.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT fct_register_model('model_registry_c', 16001);
SELECT fct_register_model('model_registry_c', 3, 4097);
SELECT fct_register_model('model registry', 3);
SELECT fct_register_model('model_registry_b', 4, 2);
\set VERBOSITY sqlstate

-- The table's own checks hold for direct inserts by the owner too.
INSERT INTO fct_models (name, dim) VALUES ('model registry', 3);
INSERT INTO fct_models (name, dim) VALUES ('model_registry_d', 16001);
INSERT INTO fct_models (name, dim, side_dim) VALUES ('model_registry_d', 3, 4097);

-- Models are immutable: only the note may change.
UPDATE fct_models SET note = 'first model' WHERE id = :a_id;
SELECT name, note FROM fct_models WHERE id = :a_id;
UPDATE fct_models SET dim = 5 WHERE id = :a_id;
UPDATE fct_models SET side_dim = 1 WHERE id = :a_id;
UPDATE fct_models SET name = 'model_registry_z' WHERE id = :a_id;
-- (the id is generated from the name: 428C9 before the guard is reached)
UPDATE fct_models SET id = id + 1000 WHERE id = :a_id;
DELETE FROM fct_models WHERE id = :a_id;
TRUNCATE fct_models;
SELECT name, dim, side_dim FROM fct_models WHERE id = :a_id;

-- The extension's catalog is dumped with the database.
SELECT c.relname
  FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'fct' AND c.relname LIKE 'fct_models%'
 ORDER BY 1;

-- Permissions: everyone reads, only the owner and roles granted EXECUTE register.
CREATE ROLE model_registry_user;
SET ROLE model_registry_user;
SELECT name, dim FROM fct_models WHERE id = :a_id;
SELECT fct_register_model('model_registry_e', 3);
INSERT INTO fct_models (name, dim) VALUES ('model_registry_e', 3);
RESET ROLE;
GRANT EXECUTE ON FUNCTION fct_register_model(text, integer, integer, text)
  TO model_registry_user;
SET ROLE model_registry_user;
SELECT fct_register_model('model_registry_e', 3) > 0 AS granted_ok;
-- Still no direct write to the table.
UPDATE fct_models SET note = 'mine' WHERE name = 'model_registry_e';
RESET ROLE;
SELECT name, dim, note FROM fct_models WHERE name = 'model_registry_e';
REVOKE EXECUTE ON FUNCTION fct_register_model(text, integer, integer, text)
  FROM model_registry_user;
DROP ROLE model_registry_user;

-- The invalidation trigger is a trigger function only.
SELECT _fct_models_invalidate();
\set VERBOSITY default
