-- The lsh access method: creation, options, statistics, errors.

-- A random vector of dimension d (deterministic after setseed).
CREATE FUNCTION lsh_build_vec(d int) RETURNS embedding
LANGUAGE sql AS $$
	SELECT ('[' || string_agg(round((random() - 0.5)::numeric, 4)::text, ',') || ']')::embedding
	FROM generate_series(1, d)
$$;

SELECT setseed(0.11);
CREATE TABLE lsh_build_t (id int PRIMARY KEY, note text, e embedding);
INSERT INTO lsh_build_t SELECT i, 'row ' || i, lsh_build_vec(8) FROM generate_series(1, 3000) i;
INSERT INTO lsh_build_t VALUES (3001, 'null vector', NULL);

-- the access method and its three operator classes (ip is the default)
SELECT amname, amtype FROM pg_am WHERE amname = 'lsh';
SELECT opcname, opcdefault FROM pg_opclass
WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'lsh') ORDER BY opcname;
SELECT amvalidate(oid) FROM pg_opclass
WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'lsh') ORDER BY opcname;

-- default options: lists from the row count (3000 rows / 500), the norm
-- ranges measured (here one); the NULL is not indexed
CREATE INDEX lsh_build_ip ON lsh_build_t USING lsh (e);
SELECT family, metric, dim, learned, lists, norm_ranges, entries, empty_lists,
       min_list > 0 AS all_lists_used, avg_list
FROM fct_lsh_stats('lsh_build_ip');
SELECT * FROM fct_lsh_verify('lsh_build_ip');

-- explicit options; cosine has one norm range whatever the option says
CREATE INDEX lsh_build_cos ON lsh_build_t USING lsh (e embedding_cosine_ops) WITH (lists = 10, norm_ranges = 4);
CREATE INDEX lsh_build_l2 ON lsh_build_t USING lsh (e embedding_l2_ops) WITH (lists = 12, norm_ranges = 3);
CREATE INDEX lsh_build_ip2 ON lsh_build_t USING lsh (e) WITH (lists = 20, norm_ranges = 2);
SELECT c.relname, s.metric, s.lists, s.norm_ranges, s.entries, s.min_list > 0 AS all_lists_used
FROM (VALUES ('lsh_build_cos'), ('lsh_build_l2'), ('lsh_build_ip2')) v(n)
JOIN pg_class c ON c.relname = v.n, fct_lsh_stats(c.oid) s ORDER BY 1;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_build_cos');

-- the classic families, for comparison
CREATE INDEX lsh_build_simple ON lsh_build_t USING lsh (e) WITH (family = simple, bits = 3, norm_ranges = 2);
CREATE INDEX lsh_build_wta ON lsh_build_t USING lsh (e) WITH (family = wta, bits = 2);
SELECT family, lists, norm_ranges, bits, entries FROM fct_lsh_stats('lsh_build_simple');
SELECT family, lists, norm_ranges, bits, entries FROM fct_lsh_stats('lsh_build_wta');
SELECT entries, missing, dangling FROM fct_lsh_verify('lsh_build_simple');
SELECT entries, missing, dangling FROM fct_lsh_verify('lsh_build_wta');
DROP INDEX lsh_build_simple, lsh_build_wta, lsh_build_cos, lsh_build_l2, lsh_build_ip2;

-- an inner-product index's norm ranges are measured at build (1 or 8), by
-- scans simulated on the sample: rows of 4 broad classes whose norms vary
-- within each class get 8 (the long rows' lists bound the others away);
-- 200 tight clusters with the same norms get 1 (8 ranges would split every
-- cluster); an explicit norm_ranges is used as given
SELECT setseed(0.21);
CREATE TABLE lsh_build_dir (c int PRIMARY KEY, v real[]);
INSERT INTO lsh_build_dir
SELECT c, array(SELECT random() - 0.5 FROM generate_series(1, 16) WHERE c >= 0) FROM generate_series(0, 199) c;
CREATE TABLE lsh_build_norms (id int PRIMARY KEY, broad embedding, tight embedding);
INSERT INTO lsh_build_norms
SELECT i, fct_embedding(array(SELECT s * (x + 0.5 * (random() - 0.5)) FROM unnest(b.v) x)::real[]),
       fct_embedding(array(SELECT s * (x + 0.15 * (random() - 0.5)) FROM unnest(t.v) x)::real[])
FROM generate_series(1, 20000) i
JOIN lsh_build_dir b ON b.c = i % 4
JOIN lsh_build_dir t ON t.c = i % 200
CROSS JOIN LATERAL (SELECT exp(1.5 * random()) + 0 * i AS s) r;
CREATE INDEX lsh_build_broad ON lsh_build_norms USING lsh (broad);
CREATE INDEX lsh_build_tight ON lsh_build_norms USING lsh (tight);
CREATE INDEX lsh_build_broad1 ON lsh_build_norms USING lsh (broad) WITH (norm_ranges = 1);
SELECT c.relname, s.lists, s.norm_ranges
FROM (VALUES ('lsh_build_broad'), ('lsh_build_tight'), ('lsh_build_broad1')) v(n)
JOIN pg_class c ON c.relname = v.n, fct_lsh_stats(c.oid) s ORDER BY 1;
SELECT entries, missing, dangling, misplaced FROM fct_lsh_verify('lsh_build_broad');
DROP TABLE lsh_build_dir, lsh_build_norms;

-- options out of range or unknown: 22023
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (lists = -1)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (lists = 40000)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (norm_ranges = 17)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (bits = 17)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (family = cross_polytope)');
-- a value given is used or refused, never silently replaced: 0 is not "automatic"
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (lists = 0)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (norm_ranges = 0)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (family = simple, bits = 0)');
-- each option belongs to its families, and the lists it implies fit the limit
SELECT test_error_detail('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (bits = 4)');
SELECT test_error_detail('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (family = simple, lists = 8)');
SELECT test_error_detail('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (family = wta, norm_ranges = 2)');
SELECT test_error_detail('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (family = wta, bits = 8)');
SELECT test_error_detail('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (family = simple, bits = 13, norm_ranges = 16)');
CREATE INDEX lsh_build_opt ON lsh_build_t USING lsh (e) WITH (lists = 10);
SELECT test_error('ALTER INDEX lsh_build_opt SET (lists = 0)');
SELECT test_error('ALTER INDEX lsh_build_opt SET (bits = 3)');
DROP INDEX lsh_build_opt;
-- what the rows cannot support is replaced with a NOTICE saying so: 3000 rows
-- give k-means at most 750 lists.  Memory: wta with 7 windows (16384 lists)
-- does not fit in 1MB of maintenance_work_mem, asked for (an error, as an
-- explicit "lists" that does not fit is); 3 windows (64 lists) do
CREATE INDEX lsh_build_many ON lsh_build_t USING lsh (e) WITH (lists = 2000);
SELECT lists FROM fct_lsh_stats('lsh_build_many');
DROP INDEX lsh_build_many;
SET maintenance_work_mem = '1MB';
SELECT test_error_detail('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (family = wta, bits = 7)');
CREATE INDEX lsh_build_wta7 ON lsh_build_t USING lsh (e) WITH (family = wta, bits = 3);
SELECT family, lists, bits FROM fct_lsh_stats('lsh_build_wta7');
DROP INDEX lsh_build_wta7;
RESET maintenance_work_mem;
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (tables = 2)');
-- the access method does not do what it cannot
SELECT test_error('CREATE UNIQUE INDEX ON lsh_build_t USING lsh (e)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e, e)');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (id)');

-- vectors of different dimensions in one index: 22000, at build and at insert
CREATE TABLE lsh_build_mixed (id int, e embedding);
INSERT INTO lsh_build_mixed VALUES (1, '[1,2,3]'), (2, '[1,2]');
SELECT test_error('CREATE INDEX ON lsh_build_mixed USING lsh (e)');
DELETE FROM lsh_build_mixed WHERE id = 2;
CREATE INDEX lsh_build_mixed_idx ON lsh_build_mixed USING lsh (e);
SELECT test_error($$INSERT INTO lsh_build_mixed VALUES (3, '[1,2,3,4]')$$);
-- ... and of different models (a registered model against no model)
SELECT fct_register_model('lsh-build-m', 3) > 0 AS registered;
SELECT test_error($$INSERT INTO lsh_build_mixed VALUES (4, 'lsh-build-m:[1,2,3]')$$);
-- a query of another model is refused; a query naming no model is fine
SET enable_seqscan = off;
SELECT test_error($$SELECT id FROM lsh_build_mixed ORDER BY e <#> 'lsh-build-m:[1,1,1]' LIMIT 1$$);
SELECT id FROM lsh_build_mixed ORDER BY e <#> '[1,1,1]' LIMIT 1;
RESET enable_seqscan;
-- dimension above what an index holds: 54000
CREATE TABLE lsh_build_wide (e embedding);
INSERT INTO lsh_build_wide SELECT ('[' || array_to_string(array_fill(0.5, ARRAY[2001]), ',') || ']')::embedding;
SELECT test_error('CREATE INDEX ON lsh_build_wide USING lsh (e)');
TRUNCATE lsh_build_wide;
CREATE INDEX lsh_build_wide_idx ON lsh_build_wide USING lsh (e);
SELECT test_error($$INSERT INTO lsh_build_wide SELECT ('[' || array_to_string(array_fill(0.5, ARRAY[2001]), ',') || ']')::embedding$$);
INSERT INTO lsh_build_wide SELECT ('[' || array_to_string(array_fill(0.5, ARRAY[2000]), ',') || ']')::embedding;
SELECT dim, entries FROM fct_lsh_stats('lsh_build_wide_idx');

-- the functions check what they are given
SELECT test_error($$SELECT fct_lsh_stats('lsh_build_t_pkey')$$);
SELECT test_error($$SELECT fct_lsh_verify('lsh_build_t')$$);

-- build progress phases are named
SELECT amname, pg_indexam_progress_phasename(oid, 2) AS p2, pg_indexam_progress_phasename(oid, 3) AS p3,
       pg_indexam_progress_phasename(oid, 4) AS p4, pg_indexam_progress_phasename(oid, 5) AS p5
FROM pg_am WHERE amname = 'lsh';

-- memory: a maintenance_work_mem too small for the sample says so (a NOTICE)
-- and the build goes on; too small for the lists asked for is an error
SET maintenance_work_mem = '1MB';
INSERT INTO lsh_build_wide SELECT ('[' || array_to_string(array_fill(i * 0.01, ARRAY[2000]), ',') || ']')::embedding
FROM generate_series(1, 99) i;
REINDEX INDEX lsh_build_wide_idx;
SELECT dim, learned, lists, entries FROM fct_lsh_stats('lsh_build_wide_idx');
SELECT test_error('CREATE INDEX ON lsh_build_t USING lsh (e) WITH (lists = 100)');
RESET maintenance_work_mem;
