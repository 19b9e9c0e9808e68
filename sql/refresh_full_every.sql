-- full_every: every full_every-th refresh of a (table, column) since its last
-- full pass writes every row of the source (the rows that would have been
-- skipped are counted as forced).  The count comes from fct_refresh_log.
CREATE TABLE refresh_full_every_items (id int PRIMARY KEY, a embedding, b embedding);
INSERT INTO refresh_full_every_items SELECT i, '[1,0]', '[1,0]' FROM generate_series(1, 4) i;
-- rows 1 and 2 move a lot, rows 3 and 4 by a drift of 0.001
CREATE VIEW refresh_full_every_src AS
SELECT id, CASE WHEN id <= 2 THEN fct_embedding(ARRAY[1, id]::real[])
                ELSE '[1,0.001]'::embedding END AS emb
FROM generate_series(1, 4) id;

-- (threshold => 0.01 + 0 * n below makes the call depend on n, so that it runs
-- once per n and in order)
-- full_every => 3: refreshes 1 and 2 skip, the 3rd is full, then 4 and 5 skip, the 6th is full
SELECT n, r.* FROM generate_series(1, 6) n,
LATERAL fct_refresh('refresh_full_every_items', 'a', 'id',
	'SELECT id, emb FROM refresh_full_every_src', threshold => 0.01 + 0 * n, full_every => 3) r;

-- each column has its own count: the first refresh of b is not full
SELECT * FROM fct_refresh('refresh_full_every_items', 'b', 'id',
	'SELECT id, emb FROM refresh_full_every_src', threshold => 0.01, full_every => 3);

-- full_every => 1: always full; 0 or NULL: never
SELECT * FROM fct_refresh('refresh_full_every_items', 'b', 'id',
	'SELECT id, emb FROM refresh_full_every_src', threshold => 0.01, full_every => 1);
SELECT n, r.* FROM generate_series(1, 3) n,
LATERAL fct_refresh('refresh_full_every_items', 'b', 'id',
	'SELECT id, emb FROM refresh_full_every_src', threshold => 0.01 + 0 * n, full_every => 0) r;
SELECT * FROM fct_refresh('refresh_full_every_items', 'b', 'id',
	'SELECT id, emb FROM refresh_full_every_src', threshold => 0.01, full_every => NULL);

-- the default is 10, and every refresh since the last full pass counts, whatever
-- its full_every: 4 came after the full pass above, so the 6th of these is full
SELECT n, r.forced FROM generate_series(1, 10) n,
LATERAL fct_refresh('refresh_full_every_items', 'b', 'id',
	'SELECT id, emb FROM refresh_full_every_src', threshold => 0.01 + 0 * n) r;

-- a full pass still writes a stored value that drifted slowly: rows 3 and 4
-- hold the source exactly now
SELECT id, a, b FROM refresh_full_every_items ORDER BY id;

SELECT col, full_pass, count(*) FROM fct_refresh_log
WHERE tbl = 'refresh_full_every_items'::regclass GROUP BY col, full_pass ORDER BY col, full_pass;

DROP VIEW refresh_full_every_src;
DROP TABLE refresh_full_every_items;
