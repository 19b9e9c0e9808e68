-- A value may name a model with side-information yet carry none (a query embedding usually has none).
-- A transformation that reads the side-information must refuse it (22000) rather than read past the
-- value's end; one that does not read it upgrades it, and the result carries no side-information.
CREATE FUNCTION qa_side_err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT fct_register_model('qa_side_a', 3, 2) > 0 AS a,
       fct_register_model('qa_side_b', 3, 2) > 0 AS b,
       fct_register_model('qa_side_c', 3, 2) > 0 AS c,
       fct_register_model('qa_side_d', 3, 0) > 0 AS d;
-- a -> b reads the side-information: [v1 + s1, v2 + s2, v3]
SELECT fct_register_transformation('qa_side_a', 'qa_side_b',
	'{"mixer": [{"weight": [[1,0,0,1,0],[0,1,0,0,1],[0,0,1,0,0]]}]}') > 0 AS ab;
-- b -> c and a -> d do not: 2 v
SELECT fct_register_transformation('qa_side_b', 'qa_side_c',
	'{"side": null, "mixer": [{"weight": [[2,0,0],[0,2,0],[0,0,2]]}]}') > 0 AS bc;
SELECT fct_register_transformation('qa_side_a', 'qa_side_d',
	'{"side": null, "mixer": [{"weight": [[2,0,0],[0,2,0],[0,0,2]]}]}') > 0 AS ad;
-- with side-information: every path works
SELECT fct_upgrade('qa_side_a:[1,2,3]|[10,20]', 'qa_side_b') AS ab,
       fct_upgrade('qa_side_a:[1,2,3]|[10,20]', 'qa_side_c') AS ac,
       fct_upgrade('qa_side_a:[1,2,3]|[10,20]', 'qa_side_d') AS ad;
-- without: refused where a hop reads it (also the second hop of a chain's first), upgraded otherwise
SELECT qa_side_err($$SELECT fct_upgrade('qa_side_a:[1,2,3]', 'qa_side_b')$$);
SELECT qa_side_err($$SELECT fct_upgrade('qa_side_a:[1,2,3]', 'qa_side_c')$$);
SELECT qa_side_err($$SELECT fct_upgrade_batch(ARRAY['qa_side_a:[1,2,3]|[1,1]', 'qa_side_a:[1,2,3]']::embedding[], 'qa_side_b')$$);
SELECT qa_side_err($$SELECT 'qa_side_a:[1,2,3]'::embedding <-> 'qa_side_b:[1,2,3]'$$);
SELECT qa_side_err($$SELECT 'qa_side_b:[1,2,3]'::embedding <#> 'qa_side_a:[1,2,3]'$$);
SELECT fct_upgrade('qa_side_b:[1,2,3]', 'qa_side_c') AS bc,
       fct_upgrade('qa_side_a:[1,2,3]', 'qa_side_d') AS ad,
       fct_side_dims(fct_upgrade('qa_side_b:[1,2,3]', 'qa_side_c')) AS bc_side;
SELECT fct_upgrade_batch(ARRAY['qa_side_b:[1,2,3]', 'qa_side_b:[1,1,1]|[5,6]', NULL, 'qa_side_b:[0,0,1]']::embedding[],
                         'qa_side_c') AS batch;
-- the on-the-fly operator over rows with and without side-information, in turn: equal to the explicit upgrade
CREATE TABLE qa_side_rows (id int, e embedding(3));
INSERT INTO qa_side_rows VALUES (1, 'qa_side_b:[1,2,3]|[1,1]'), (2, 'qa_side_b:[1,2,3]'),
	(3, 'qa_side_b:[3,2,1]|[7,7]'), (4, 'qa_side_b:[0,1,0]');
SELECT id, e <-> 'qa_side_c:[2,4,6]' AS d, fct_upgrade(e, 'qa_side_c') <-> 'qa_side_c:[2,4,6]' AS d_explicit,
       'qa_side_c:[2,4,6]' <=> e AS cos, fct_upgrade(e, 'qa_side_c') AS up
  FROM qa_side_rows ORDER BY id;
-- an upgraded value without side-information reads and writes back identically
SELECT fct_upgrade('qa_side_b:[1,2,3]', 'qa_side_c')::text::embedding = fct_upgrade('qa_side_b:[1,2,3]', 'qa_side_c') AS round_trip;
DROP TABLE qa_side_rows;
DROP FUNCTION qa_side_err(text);
