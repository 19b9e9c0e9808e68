-- Inserts into an lsh index are buffered per transaction and written in
-- batches (lshpending.c): the transaction sees its own rows, a committed row
-- always has its entry, rows of aborted (sub)transactions get none, and an
-- index rebuilt or dropped in the transaction gets no stale entries.
CREATE FUNCTION lsh_insert_vec(seed int) RETURNS embedding
LANGUAGE sql AS $$
	SELECT ('[' || string_agg(round(sin(seed * 7.1 + d * 1.3)::numeric, 4)::text, ',') || ']')::embedding
	FROM generate_series(1, 8) d
$$;
CREATE TABLE lsh_insert_t (id int PRIMARY KEY, e embedding);
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(1, 2000) i;
CREATE INDEX lsh_insert_idx ON lsh_insert_t USING lsh (e) WITH (lists = 20);
SET enable_seqscan = off;

-- the transaction's own rows are found by its next query (and by the same
-- query's next scan), before the commit wrote them
BEGIN;
INSERT INTO lsh_insert_t VALUES (10001, '[9,9,9,9,9,9,9,9]');
SELECT id FROM lsh_insert_t ORDER BY e <#> '[1,1,1,1,1,1,1,1]' LIMIT 1;
INSERT INTO lsh_insert_t VALUES (10002, '[10,10,10,10,10,10,10,10]');
SELECT id FROM lsh_insert_t ORDER BY e <#> '[1,1,1,1,1,1,1,1]' LIMIT 2;
COMMIT;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_insert_idx');

-- planning a query writes nothing, pending rows or not (a read-only query's
-- plan must not write WAL); a parallel plan writes the pending rows before
-- its workers start (they cannot see this backend's buffer)
BEGIN;
INSERT INTO lsh_insert_t VALUES (10003, '[11,11,11,11,11,11,11,11]');
SELECT pg_current_wal_insert_lsn() AS lsn_before \gset
EXPLAIN (COSTS OFF) SELECT id FROM lsh_insert_t ORDER BY e <#> '[1,1,1,1,1,1,1,1]' LIMIT 1;
SELECT pg_current_wal_insert_lsn() = :'lsn_before' AS planning_wrote_nothing;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
EXPLAIN (COSTS OFF) SELECT id FROM lsh_insert_t ORDER BY e <#> '[1,1,1,1,1,1,1,1]' LIMIT 1;
SELECT id FROM lsh_insert_t ORDER BY e <#> '[1,1,1,1,1,1,1,1]' LIMIT 1;
COMMIT;
DELETE FROM lsh_insert_t WHERE id = 10003;
VACUUM lsh_insert_t;

-- rolled back: no entries
BEGIN;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(20001, 20100) i;
ROLLBACK;
-- a rolled-back subtransaction's rows get no entries (VACUUM could free their
-- line pointers before the commit); a released one's rows do
BEGIN;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(30001, 30010) i;
SAVEPOINT a;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(30011, 30030) i;
SAVEPOINT b;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(30031, 30040) i;
RELEASE b;
ROLLBACK TO a;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(30041, 30045) i;
SAVEPOINT c;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(30046, 30050) i;
RELEASE c;
SAVEPOINT d;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(30051, 30060) i;
ROLLBACK TO d;
COMMIT;
-- 2002 + 10 + 5 + 5 rows, as many entries (an entry for a dead row would count)
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_insert_idx');
SELECT count(*) FROM lsh_insert_t WHERE id > 30000;

-- a plpgsql exception block is a subtransaction too
DO $$
BEGIN
	FOR i IN 40001..40005 LOOP
		BEGIN
			INSERT INTO lsh_insert_t VALUES (i, lsh_insert_vec(i));
			IF i % 2 = 0 THEN
				RAISE EXCEPTION 'undo %', i;
			END IF;
		EXCEPTION WHEN raise_exception THEN
			NULL;
		END;
	END LOOP;
END $$;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_insert_idx');

-- more rows than work_mem holds: written in several batches within the statement
SET work_mem = '64kB';
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(50001, 53000) i;
RESET work_mem;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_insert_idx');

-- rebuilt in the transaction after inserts: the new index has the rows once
BEGIN;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(60001, 60050) i;
REINDEX INDEX lsh_insert_idx;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(60051, 60060) i;
COMMIT;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_insert_idx');

-- truncated after inserts: only the rows inserted after the truncation
BEGIN;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(70001, 70050) i;
TRUNCATE lsh_insert_t;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(1, 30) i;
COMMIT;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_insert_idx');

-- dropped after inserts: the commit has nothing to write
BEGIN;
INSERT INTO lsh_insert_t SELECT i, lsh_insert_vec(i) FROM generate_series(80001, 80050) i;
DROP INDEX lsh_insert_idx;
COMMIT;
SELECT count(*) FROM lsh_insert_t;

RESET enable_seqscan;
DROP TABLE lsh_insert_t;
DROP FUNCTION lsh_insert_vec(int);
