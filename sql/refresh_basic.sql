-- fct_refresh with a threshold: what is written, skipped, missing; NULLs; the log.
CREATE TABLE refresh_basic_items (id int PRIMARY KEY, emb embedding(2), note text);
-- row i holds [i,0]
INSERT INTO refresh_basic_items SELECT i, fct_embedding(ARRAY[i, 0]::real[]), 'n' || i
FROM generate_series(1, 10) i;
INSERT INTO refresh_basic_items VALUES (11, NULL, 'stored NULL'), (12, '[0,0]', 'zero'),
	(13, '[13,0]', 'absent from the source');
-- the source: even rows move by 10% (drift 0.1), odd rows by 1% (drift 0.01),
-- row 11 (NULL) and row 12 (zero) get values, keys 20 and NULL have no row
CREATE TABLE refresh_basic_src (k bigint, e embedding);
INSERT INTO refresh_basic_src
SELECT i, fct_embedding(ARRAY[i, i * CASE WHEN i % 2 = 0 THEN 0.1 ELSE 0.01 END]::real[])
FROM generate_series(1, 10) i;
INSERT INTO refresh_basic_src VALUES (11, '[11,1]'), (12, '[0,0.5]'), (20, '[1,1]'), (NULL, '[2,2]');

SELECT s.k, round(fct_drift(t.emb, s.e)::numeric, 6) AS drift
FROM refresh_basic_src s JOIN refresh_basic_items t ON t.id = s.k ORDER BY s.k;

-- threshold 0.05: the five even rows, the NULL row and the zero row are written,
-- the five odd rows are skipped, keys 20 and NULL are missing
SELECT * FROM fct_refresh('refresh_basic_items', 'emb', 'id',
	'SELECT k, e FROM refresh_basic_src', threshold => 0.05);
-- written rows hold the source's value, skipped ones the old one, 13 is untouched
SELECT t.id, t.emb, t.note, t.emb = s.e AS from_source
FROM refresh_basic_items t LEFT JOIN refresh_basic_src s ON s.k = t.id ORDER BY t.id;

-- again with the same source: the odd rows still drift 1% from what is stored
-- (drift is measured against the stored value), everything else is equal now
SELECT * FROM fct_refresh('refresh_basic_items', 'emb', 'id',
	'SELECT k, e FROM refresh_basic_src', threshold => 0.05);

-- threshold 0: every row that has a key is written (a drift is never below 0)
SELECT * FROM fct_refresh('refresh_basic_items', 'emb', 'id',
	'SELECT k, e FROM refresh_basic_src WHERE k <= 3', threshold => 0);
SELECT count(*) AS equal_to_source FROM refresh_basic_items t JOIN refresh_basic_src s ON s.k = t.id
WHERE t.emb = s.e;

-- the threshold is exclusive: a drift equal to it is written
UPDATE refresh_basic_items SET emb = '[1,0]' WHERE id = 1;
SELECT fct_drift('[1,0]', '[1,0.5]');
SELECT * FROM fct_refresh('refresh_basic_items', 'emb', 'id',
	$$SELECT 1, '[1,0.5]'::embedding$$, threshold => 0.5);
SELECT * FROM fct_refresh('refresh_basic_items', 'emb', 'id',
	$$SELECT 1, '[1,0.75]'::embedding$$, threshold => 0.3);
SELECT emb FROM refresh_basic_items WHERE id = 1;

-- an empty source writes nothing and is logged too
SELECT * FROM fct_refresh('refresh_basic_items', 'emb', 'id',
	'SELECT k, e FROM refresh_basic_src WHERE false', threshold => 0.05);

-- a key of another type is compared with the table's key (bigint source, int key);
-- a text key works as well
CREATE TABLE refresh_basic_text (name text PRIMARY KEY, emb embedding);
INSERT INTO refresh_basic_text VALUES ('a', '[1,1]'), ('b', '[1,1]');
SELECT * FROM fct_refresh('refresh_basic_text', 'emb', 'name',
	$$VALUES ('a', '[1,2]'::embedding), ('b', '[1,1.01]'), ('c', '[0,0]')$$, threshold => 0.1);
SELECT * FROM refresh_basic_text ORDER BY name;

-- the log: one row per refresh, in order, with what each did
SELECT tbl, col, updated, skipped, forced, missing, threshold, target_skip, full_pass,
       refreshed_by = current_user AS by_me, finished >= started AS ordered
FROM fct_refresh_log WHERE tbl IN ('refresh_basic_items'::regclass, 'refresh_basic_text'::regclass)
ORDER BY id;

-- a refresh that fails leaves no log row (it is one transaction)
SELECT count(*) AS log_rows_before FROM fct_refresh_log WHERE tbl = 'refresh_basic_items'::regclass;
SELECT * FROM fct_refresh('refresh_basic_items', 'emb', 'id',
	$$SELECT 2, '[1,2,3]'::embedding$$, threshold => 0.05);
SELECT count(*) AS log_rows_after FROM fct_refresh_log WHERE tbl = 'refresh_basic_items'::regclass;

-- a source that ends with a comment (it is spliced into a larger query)
SELECT updated, skipped, missing FROM fct_refresh('refresh_basic_text', 'emb', 'name',
	$$VALUES ('a', '[5,5]'::embedding) -- the new value of a$$, threshold => 0.1);

-- a partitioned table (rows are found by key, not by ctid, across partitions)
CREATE TABLE refresh_basic_parted (id int PRIMARY KEY, emb embedding) PARTITION BY RANGE (id);
CREATE TABLE refresh_basic_parted_1 PARTITION OF refresh_basic_parted FOR VALUES FROM (0) TO (10);
CREATE TABLE refresh_basic_parted_2 PARTITION OF refresh_basic_parted FOR VALUES FROM (10) TO (20);
INSERT INTO refresh_basic_parted VALUES (1, '[1,0]'), (2, '[1,0]'), (11, '[1,0]'), (12, '[1,0]');
SELECT * FROM fct_refresh('refresh_basic_parted', 'emb', 'id',
	$$VALUES (1, '[1,1]'::embedding), (2, '[1,0.01]'), (11, '[1,1]'), (12, '[1,0]'), (13, '[1,1]')$$,
	threshold => 0.05);
SELECT tableoid::regclass, * FROM refresh_basic_parted ORDER BY id;

DROP TABLE refresh_basic_items, refresh_basic_src, refresh_basic_text, refresh_basic_parted;
