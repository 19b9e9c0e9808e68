-- fct_skip_stale: a BEFORE UPDATE row trigger that drops updates whose only
-- change is an embedding drift below the threshold.
CREATE TABLE refresh_trigger_items (id int PRIMARY KEY, emb embedding, emb2 embedding, note text);
INSERT INTO refresh_trigger_items VALUES (1, '[1,0]', '[1,0]', 'a'), (2, '[1,0]', NULL, 'b');
CREATE TRIGGER refresh_trigger_skip BEFORE UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('0.05');
-- how many rows an UPDATE wrote
CREATE FUNCTION refresh_trigger_rows(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE q;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- a drift of 1% in a watched column only: not written (0 rows), row unchanged
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = '[1,0.01]' WHERE id = 1$$);
SELECT * FROM refresh_trigger_items ORDER BY id;
-- every embedding column is watched: both drift a little, still not written
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = '[1,0.01]', emb2 = '[1,0.02]' WHERE id = 1$$);
-- a drift at or above the threshold: written
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = '[1,0.1]' WHERE id = 1$$);
SELECT * FROM refresh_trigger_items ORDER BY id;
-- another column changed with a stale embedding: the row is written as the
-- UPDATE made it, new embedding included
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = '[1,0.101]', note = 'a2' WHERE id = 1$$);
SELECT * FROM refresh_trigger_items ORDER BY id;
-- no change at all: not written
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET note = note$$);
-- NULL to a value and a value to NULL are changes
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb2 = '[1,0]' WHERE id = 2$$);
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb2 = NULL WHERE id = 2$$);
-- another dimension, another model or other side-information: changes
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = '[1,0.101,0]' WHERE id = 1$$);
SELECT test_models('refresh_trigger', 'm 3');
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = 'refresh_trigger_m:[1,0.101,0]' WHERE id = 1$$);
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = '[1,0]|[5]' WHERE id = 2$$);
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = '[1,0]|[6]' WHERE id = 2$$);
SELECT * FROM refresh_trigger_items ORDER BY id;

-- with a column argument only that column is watched: a small drift of emb2 is a change
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip BEFORE UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('0.05', 'emb');
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb = 'refresh_trigger_m:[1,0.102,0]' WHERE id = 1$$);
SELECT refresh_trigger_rows($$UPDATE refresh_trigger_items SET emb2 = '[1,0.001]' WHERE id = 1$$);
SELECT * FROM refresh_trigger_items ORDER BY id;

-- fct_refresh through the trigger: the trigger does not skip what fct_refresh
-- writes unless its own threshold is higher; rows it skips count as skipped
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip BEFORE UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('0.5', 'emb');
SELECT * FROM fct_refresh('refresh_trigger_items', 'emb', 'id',
	$$VALUES (2, '[1,0.1]|[6]'::embedding)$$, threshold => 0.05);
SELECT * FROM refresh_trigger_items ORDER BY id;

-- misuse
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip BEFORE UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('abc');
SELECT test_error($$UPDATE refresh_trigger_items SET note = 'x'$$);
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip BEFORE UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('0.1', 'note');
SELECT test_error($$UPDATE refresh_trigger_items SET note = 'x'$$);
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip BEFORE UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('0.1', 'nope');
SELECT test_error($$UPDATE refresh_trigger_items SET note = 'x'$$);
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip BEFORE UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale();
SELECT test_error($$UPDATE refresh_trigger_items SET note = 'x'$$);
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip AFTER UPDATE ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('0.1');
SELECT test_error($$UPDATE refresh_trigger_items SET note = 'x'$$);
DROP TRIGGER refresh_trigger_skip ON refresh_trigger_items;
CREATE TRIGGER refresh_trigger_skip BEFORE INSERT ON refresh_trigger_items
	FOR EACH ROW EXECUTE FUNCTION fct_skip_stale('0.1');
SELECT test_error($$INSERT INTO refresh_trigger_items VALUES (3, NULL, NULL, 'c')$$);
SELECT test_error($$SELECT fct_skip_stale()$$);
DROP FUNCTION refresh_trigger_rows(text);
DROP TABLE refresh_trigger_items;
