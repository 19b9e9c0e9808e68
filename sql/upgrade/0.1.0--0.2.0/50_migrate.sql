-- 50_migrate.sql: fct_migrate's helpers renamed _fct_migrate_* (internal), with comments saying why they stay executable.

ALTER FUNCTION fct_migrate_pending(tid, embedding) RENAME TO _fct_migrate_pending;
ALTER FUNCTION fct_migrate_upgraded(tid) RENAME TO _fct_migrate_upgraded;
ALTER FUNCTION fct_migrate_model_id(embedding) RENAME TO _fct_migrate_model_id;
COMMENT ON FUNCTION _fct_migrate_pending(tid, embedding) IS
	'internal to fct_migrate: is this row in the batch being written (executable: fct_migrate runs its statements as the caller)';
COMMENT ON FUNCTION _fct_migrate_model_id(embedding) IS
	'internal to fct_migrate: the id of a value''s model (executable: fct_migrate runs its statements as the caller)';
COMMENT ON FUNCTION _fct_migrate_upgraded(tid) IS
	'internal to fct_migrate: the upgraded value of a batch row (executable: fct_migrate runs its statements as the caller)';
