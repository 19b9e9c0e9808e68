-- target_skip: the threshold is estimated from a sample of drifts so that at
-- least that fraction of the sample is skipped.  Tables this small are
-- sampled whole, so the result is exact.
CREATE TABLE refresh_target_skip_items (id int PRIMARY KEY, emb embedding(2));
INSERT INTO refresh_target_skip_items SELECT i, '[1,0]' FROM generate_series(1, 100) i;
-- row i drifts by i/1000
CREATE TABLE refresh_target_skip_src AS
SELECT i AS id, fct_embedding(ARRAY[1, i / 1000.0]::real[]) AS emb FROM generate_series(1, 100) i;

-- skip 30%: the 30 smallest drifts (rows 1..30) are skipped, the threshold lies
-- halfway between the 30th and the 31st drift
SELECT updated, skipped, forced, missing, round(threshold_used::numeric, 6) AS threshold_used
FROM fct_refresh('refresh_target_skip_items', 'emb', 'id',
	'SELECT id, emb FROM refresh_target_skip_src', target_skip => 0.3);
SELECT min(id) AS first_written, count(*) AS written
FROM refresh_target_skip_items WHERE emb <> '[1,0]';

-- ties: now 70 rows hold their source value exactly (drift 0); target_skip 0.1
-- skips all 70 zeros rather than writing them, and writes the 30 others
SELECT updated, skipped, forced, missing, threshold_used > 0 AND threshold_used < 0.001 AS small_positive
FROM fct_refresh('refresh_target_skip_items', 'emb', 'id',
	'SELECT id, emb FROM refresh_target_skip_src', target_skip => 0.1);
SELECT count(*) AS equal_to_source FROM refresh_target_skip_items t
JOIN refresh_target_skip_src s USING (id) WHERE t.emb = s.emb;

-- target_skip 0 skips nothing (threshold 0)
SELECT * FROM fct_refresh('refresh_target_skip_items', 'emb', 'id',
	'SELECT id, emb FROM refresh_target_skip_src WHERE id <= 5', target_skip => 0);

-- nothing to sample (only NULL stored values, or no matching rows): threshold 0,
-- everything is written
CREATE TABLE refresh_target_skip_nulls (id int, emb embedding);
INSERT INTO refresh_target_skip_nulls VALUES (1, NULL), (2, NULL);
SELECT * FROM fct_refresh('refresh_target_skip_nulls', 'emb', 'id',
	$$VALUES (1, '[1]'::embedding), (2, '[2]'), (3, '[3]')$$, target_skip => 0.5);

-- the log records the target and the threshold it gave
SELECT updated, skipped, target_skip, round(threshold::numeric, 6) AS threshold
FROM fct_refresh_log WHERE tbl = 'refresh_target_skip_items'::regclass ORDER BY id;

DROP TABLE refresh_target_skip_items, refresh_target_skip_src, refresh_target_skip_nulls;
