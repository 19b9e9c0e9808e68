-- The queue: fct_migrate_start (a background worker, once the transaction commits), the view
-- fct_migrations, fct_migrate_cancel, fct_migrate_resume, and their errors.
SELECT test_models('migrate_queue', 'v1 3 1', 'v2 3 1');
SELECT test_linear('migrate_queue', 'v1', 'v2', '[[0,1,0,0], [1,0,0,0], [0,0,1,1]]');

CREATE TABLE migrate_queue_t (id int PRIMARY KEY, e embedding, orig embedding, who text);
INSERT INTO migrate_queue_t (id, e)
SELECT g, fct_embedding(ARRAY[g, 2 * g, 3]::real[], ARRAY[g % 5]::real[], 'migrate_queue_v1')
FROM generate_series(1, 500) g;
UPDATE migrate_queue_t SET orig = e;

-- The worker runs as the role that queued the work: a trigger records current_user.
CREATE ROLE migrate_queue_r LOGIN;
GRANT SELECT, UPDATE ON migrate_queue_t TO migrate_queue_r;
CREATE FUNCTION migrate_queue_who() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.who := current_user;
	RETURN NEW;
END $$;
CREATE TRIGGER migrate_queue_who BEFORE UPDATE ON migrate_queue_t
	FOR EACH ROW EXECUTE FUNCTION migrate_queue_who();

-- Queued inside a transaction (as a migration tool does): nothing starts before the commit.
SET ROLE migrate_queue_r;
BEGIN;
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2', batch_size => 100, pause_ms => 0) AS job
\gset
SELECT "table", "column", target, state, rows_done, role FROM fct_migrations WHERE id = :job;
SELECT pg_sleep(0.5);
SELECT * FROM fct_model_census('migrate_queue_t', 'e');
-- a second migration of the same column is refused
\set VERBOSITY sqlstate
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2');
\set VERBOSITY default
ROLLBACK;
-- rolled back: no job, and the worker that was waiting for the commit leaves without a trace
SELECT count(*) FROM fct_migrations WHERE "table" = 'migrate_queue_t'::regclass;
SELECT pg_sleep(0.5);
SELECT * FROM fct_model_census('migrate_queue_t', 'e');

BEGIN;
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2', batch_size => 100, pause_ms => 0) AS job
\gset
COMMIT;
RESET ROLE;
SELECT * FROM test_migration_wait(:job);
SELECT * FROM fct_model_census('migrate_queue_t', 'e');
SELECT count(*) FILTER (WHERE e = fct_upgrade(orig, 'migrate_queue_v2')) AS upgraded_right,
       count(*) FILTER (WHERE who = 'migrate_queue_r') AS by_the_queuing_role
FROM migrate_queue_t;
SELECT rate > 0 AS has_rate, started_at <= finished_at AS timed FROM fct_migrations WHERE id = :job;

-- Cancel: a slow migration (one row per batch, a minute between batches) stops at once.
UPDATE migrate_queue_t SET e = orig;
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2', batch_size => 1, pause_ms => 60000) AS job
\gset
SELECT fct_migrate_cancel('migrate_queue_t', 'e') AS cancelled;
SELECT state, last_error FROM test_migration_wait(:job);
SELECT fct_migrate_cancel(:job) AS cancelled_again;
SELECT fct_migrate_cancel('migrate_queue_t', 'e') AS nothing_to_cancel;

-- Nothing to resume: no queued or running job is without its worker.
SELECT fct_migrate_resume();

-- Errors.
\set VERBOSITY sqlstate
SELECT fct_migrate_cancel(-1);
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_nosuch');
SELECT fct_migrate_start('migrate_queue_t', 'who', 'migrate_queue_v2');
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2', batch_size => 0);
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2', pause_ms => -1);
-- the queue can only be read directly
SET ROLE migrate_queue_r;
INSERT INTO fct_migration_queue (relid, attname, to_model, batch_size, pause_ms, roleid)
VALUES ('migrate_queue_t'::regclass, 'e', 'migrate_queue_v2', 1, 0, 10);
-- only the queuing role (or a member of it) may cancel
RESET ROLE;
CREATE ROLE migrate_queue_other LOGIN;
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2', batch_size => 1, pause_ms => 60000) AS job
\gset
SET ROLE migrate_queue_other;
SELECT fct_migrate_cancel(:job);
-- privileges: those the worker will need, checked now
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2');
RESET ROLE;
SELECT fct_migrate_cancel(:job);
-- a role that cannot log in cannot be the worker's role
CREATE ROLE migrate_queue_nologin NOLOGIN;
GRANT SELECT, UPDATE ON migrate_queue_t TO migrate_queue_nologin;
SET ROLE migrate_queue_nologin;
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2');
RESET ROLE;
\set VERBOSITY default
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v2', batch_size => 0);
-- a target that no path leads to is refused when the job is queued (the checks a run makes
-- before writing), not accepted to fail later
SELECT test_models('migrate_queue', 'v3 3 1');
-- terse: the DETAIL counts the v1 rows left, which depends on how far the cancelled jobs above got
\set VERBOSITY terse
SELECT fct_migrate_start('migrate_queue_t', 'e', 'migrate_queue_v3');
\set VERBOSITY default
SELECT count(*) AS queued_for_v3 FROM fct_migrations WHERE target = 'migrate_queue_v3';

SELECT state, count(*) FROM fct_migrations WHERE "table" = 'migrate_queue_t'::regclass GROUP BY 1 ORDER BY 1;

DELETE FROM fct_migration_queue WHERE relid = 'migrate_queue_t'::regclass;
DROP TABLE migrate_queue_t;
DROP FUNCTION migrate_queue_who();
DROP ROLE migrate_queue_r, migrate_queue_other, migrate_queue_nologin;
