-- 50_migrate.sql: lazy migration of stored rows into a newer model's space
-- (src/migrate/migrate.c, src/migrate/migrate_queue.c, src/migrate/migrate_worker.c).
--
-- CALL fct_migrate(...) rewrites the rows not yet in the target model in
-- committed batches; fct_migrate_start(...) queues the same work for a
-- background worker.  Both run every statement with the rights of the role
-- that asked (no SECURITY DEFINER): they need what
-- UPDATE tbl SET col = fct_upgrade(col, ...) WHERE ... needs.

CREATE PROCEDURE fct_migrate(tbl regclass, col name, to_model text,
							 batch_size integer DEFAULT 10000)
	AS 'MODULE_PATHNAME', 'fct_migrate'
	LANGUAGE C;

COMMENT ON PROCEDURE fct_migrate(regclass, name, text, integer) IS
	'upgrade the rows of tbl.col not yet in to_model, one committed batch at a time; resumable';

CREATE FUNCTION fct_model_census(tbl regclass, col name)
	RETURNS TABLE (model text, rows bigint)
	AS 'MODULE_PATHNAME', 'fct_model_census'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_model_census(regclass, name) IS
	'rows of tbl.col per model (NULL: rows whose column is NULL; (no model): embeddings naming none), most rows first';

-- The queue.  A table, so that queued and running work survives a restart.
-- Written only by the functions below (which write it as the table's owner,
-- recording the calling role, never a role a caller names); everyone may read.
CREATE TABLE fct_migration_queue (
	id			bigserial PRIMARY KEY,
	relid		oid NOT NULL,
	attname		name NOT NULL,
	to_model	text NOT NULL,
	batch_size	integer NOT NULL,
	pause_ms	integer NOT NULL,
	-- the role that queued the work; the worker runs as this role
	roleid		oid NOT NULL,
	state		text NOT NULL DEFAULT 'queued',
	rows_done	bigint NOT NULL DEFAULT 0,
	rows_left	bigint,
	-- rows per second written since the worker started
	rate		double precision,
	last_error	text,
	worker_pid	integer,
	queued_at	timestamptz NOT NULL DEFAULT now(),
	started_at	timestamptz,
	updated_at	timestamptz,
	finished_at	timestamptz,
	CONSTRAINT fct_migration_queue_state_check
		CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled'))
);

-- One live migration per column.
CREATE UNIQUE INDEX fct_migration_queue_live_key ON fct_migration_queue (relid, attname)
	WHERE state IN ('queued', 'running');

COMMENT ON TABLE fct_migration_queue IS
	'migrations queued by fct_migrate_start; see the view fct_migrations';

REVOKE ALL ON fct_migration_queue FROM PUBLIC;
GRANT SELECT ON fct_migration_queue TO PUBLIC;

CREATE VIEW fct_migrations AS
	SELECT q.id,
		   q.relid::regclass AS "table",
		   q.attname AS "column",
		   q.to_model AS target,
		   q.state,
		   q.rows_done,
		   q.rows_left,
		   round(q.rate::numeric, 1) AS rate,
		   q.last_error,
		   pg_catalog.pg_get_userbyid(q.roleid) AS role,
		   q.worker_pid,
		   q.queued_at,
		   q.started_at,
		   q.updated_at,
		   q.finished_at
	  FROM fct_migration_queue q;

COMMENT ON VIEW fct_migrations IS
	'queued, running and finished migrations: progress (rows done and left, rows/s) and the last error';

GRANT SELECT ON fct_migrations TO PUBLIC;

CREATE FUNCTION fct_migrate_start(tbl regclass, col name, to_model text,
								  batch_size integer DEFAULT 10000,
								  pause_ms integer DEFAULT 10)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'fct_migrate_start'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_migrate_start(regclass, name, text, integer, integer) IS
	'queue a migration for a background worker that starts once this transaction commits; returns its id';

CREATE FUNCTION fct_migrate_cancel(id bigint) RETURNS boolean
	AS 'MODULE_PATHNAME', 'fct_migrate_cancel'
	LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION fct_migrate_cancel(tbl regclass, col name) RETURNS boolean
	AS 'MODULE_PATHNAME', 'fct_migrate_cancel_column'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_migrate_cancel(bigint) IS
	'cancel a queued or running migration; its worker stops after the current batch';
COMMENT ON FUNCTION fct_migrate_cancel(regclass, name) IS
	'cancel the queued or running migration of tbl.col';

CREATE FUNCTION fct_migrate_resume() RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_migrate_resume'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_migrate_resume() IS
	'start a worker for every queued or running migration that has none (after a restart); returns how many';

-- Internal to fct_migrate (and its workers): the write of a batch matches
-- each row by ctid and old value against the batch held in the backend's
-- memory, and takes the upgraded value from there.  Outside a batch,
-- _fct_migrate_pending is false and _fct_migrate_upgraded an error.  They stay
-- executable by PUBLIC: fct_migrate runs its statements as the caller, who
-- would otherwise need a grant on them.
CREATE FUNCTION _fct_migrate_pending(tid, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME', 'fct_migrate_pending'
	LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION _fct_migrate_upgraded(tid) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_migrate_upgraded'
	LANGUAGE C STRICT VOLATILE;

-- Internal to fct_migrate: the id of a value's model, read from its header
-- (0 when it names none); the census and the reads filter on it.
CREATE FUNCTION _fct_migrate_model_id(embedding) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_migrate_model_id'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION _fct_migrate_pending(tid, embedding) IS
	'internal to fct_migrate: is this row in the batch being written (executable: fct_migrate runs its statements as the caller)';
COMMENT ON FUNCTION _fct_migrate_model_id(embedding) IS
	'internal to fct_migrate: the id of a value''s model (executable: fct_migrate runs its statements as the caller)';
COMMENT ON FUNCTION _fct_migrate_upgraded(tid) IS
	'internal to fct_migrate: the upgraded value of a batch row (executable: fct_migrate runs its statements as the caller)';
