-- A value may name a model with side-information yet carry none (a query embedding usually has none).
-- A transformation that reads the side-information must refuse it (22000) rather than read past the
-- value's end; one that does not read it upgrades it, and the result carries no side-information.
SELECT test_models('side_info', 'a 3 2', 'b 3 2', 'c 3 2', 'd 3 0');
-- a -> b reads the side-information: [v1 + s1, v2 + s2, v3]
SELECT test_linear('side_info', 'a', 'b', '[[1,0,0,1,0],[0,1,0,0,1],[0,0,1,0,0]]');
-- b -> c and a -> d do not: 2 v
SELECT test_linear('side_info', 'b', 'c', '[[2,0,0],[0,2,0],[0,0,2]]', side => false),
       test_linear('side_info', 'a', 'd', '[[2,0,0],[0,2,0],[0,0,2]]', side => false);
-- with side-information: every path works
SELECT fct_upgrade('side_info_a:[1,2,3]|[10,20]', 'side_info_b') AS ab,
       fct_upgrade('side_info_a:[1,2,3]|[10,20]', 'side_info_c') AS ac,
       fct_upgrade('side_info_a:[1,2,3]|[10,20]', 'side_info_d') AS ad;
-- without: refused where a hop reads it (also the second hop of a chain's first), upgraded otherwise
SELECT test_error($$SELECT fct_upgrade('side_info_a:[1,2,3]', 'side_info_b')$$);
SELECT test_error($$SELECT fct_upgrade('side_info_a:[1,2,3]', 'side_info_c')$$);
SELECT test_error($$SELECT fct_upgrade_batch(ARRAY['side_info_a:[1,2,3]|[1,1]', 'side_info_a:[1,2,3]']::embedding[], 'side_info_b')$$);
SELECT test_error($$SELECT 'side_info_a:[1,2,3]'::embedding <-> 'side_info_b:[1,2,3]'$$);
SELECT test_error($$SELECT 'side_info_b:[1,2,3]'::embedding <#> 'side_info_a:[1,2,3]'$$);
SELECT fct_upgrade('side_info_b:[1,2,3]', 'side_info_c') AS bc,
       fct_upgrade('side_info_a:[1,2,3]', 'side_info_d') AS ad,
       fct_side_dims(fct_upgrade('side_info_b:[1,2,3]', 'side_info_c')) AS bc_side;
SELECT fct_upgrade_batch(ARRAY['side_info_b:[1,2,3]', 'side_info_b:[1,1,1]|[5,6]', NULL, 'side_info_b:[0,0,1]']::embedding[],
                         'side_info_c') AS batch;
-- the on-the-fly operator over rows with and without side-information, in turn: equal to the explicit upgrade
CREATE TABLE side_info_rows (id int, e embedding(3));
INSERT INTO side_info_rows VALUES (1, 'side_info_b:[1,2,3]|[1,1]'), (2, 'side_info_b:[1,2,3]'),
	(3, 'side_info_b:[3,2,1]|[7,7]'), (4, 'side_info_b:[0,1,0]');
SELECT id, e <-> 'side_info_c:[2,4,6]' AS d, fct_upgrade(e, 'side_info_c') <-> 'side_info_c:[2,4,6]' AS d_explicit,
       'side_info_c:[2,4,6]' <=> e AS cos, fct_upgrade(e, 'side_info_c') AS up
  FROM side_info_rows ORDER BY id;
-- an upgraded value without side-information reads and writes back identically
SELECT fct_upgrade('side_info_b:[1,2,3]', 'side_info_c')::text::embedding = fct_upgrade('side_info_b:[1,2,3]', 'side_info_c') AS round_trip;
DROP TABLE side_info_rows;
