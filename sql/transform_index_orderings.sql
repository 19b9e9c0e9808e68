-- A new-model query uses the index built for it (src/upgrade/ordering.c): ORDER BY e <op> 'M:[...]' is
-- planned as ORDER BY fct_upgrade(e, 'M') <op> 'M:[...]' when an index on exactly that expression orders
-- by <op>; the two orderings are equal by definition.  An older-model query against such an index is
-- upgraded to the index's model.
SET client_min_messages = warning;
SELECT test_models('ord', 'v1 3 1', 'v2 4 1', 'other 4 1');
SELECT test_linear('ord', 'v1', 'v2', '[[0,1,0,0], [1,0,0,0], [0,0,1,0.5], [0,0,0,1]]');
-- half the rows migrated, half still in ord_v1, some NULL
CREATE TABLE ord_items (id int PRIMARY KEY, e embedding);
INSERT INTO ord_items
SELECT g, CASE WHEN g % 50 = 0 THEN NULL
               WHEN g % 2 = 0 THEN fct_embedding(ARRAY[sin(g), cos(g), sin(3 * g)]::real[], ARRAY[g % 3]::real[], 'ord_v1')
               ELSE fct_upgrade(fct_embedding(ARRAY[cos(g), sin(g), cos(5 * g)]::real[], ARRAY[1]::real[], 'ord_v1'), 'ord_v2') END
FROM generate_series(1, 3000) g;
CREATE INDEX ord_cos ON ord_items USING lsh (fct_upgrade(e, 'ord_v2') embedding_cosine_ops);
CREATE INDEX ord_ip ON ord_items USING lsh (fct_upgrade(e, 'ord_v2') embedding_ip_ops);
CREATE INDEX ord_l2 ON ord_items USING lsh (fct_upgrade(e, 'ord_v2') embedding_l2_ops);
ANALYZE ord_items;
SET client_min_messages = notice;
SET enable_seqscan = off;

-- the plain form, each operator, either side: the index of that operator
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY e <=> 'ord_v2:[1, 0.5, 0, 0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY e <#> 'ord_v2:[1, 0.5, 0, 0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY e <-> 'ord_v2:[1, 0.5, 0, 0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY 'ord_v2:[1, 0.5, 0, 0]' <=> e LIMIT 5;
-- the distance in the select list, ordered by its alias, in a subquery
EXPLAIN (COSTS OFF)
SELECT * FROM (SELECT id, e <-> 'ord_v2:[1, 0.5, 0, 0]' AS d FROM ord_items ORDER BY d LIMIT 5) s;

-- same answers as the explicit form, and as the exact plain form (no rewrite, no index)
CREATE FUNCTION ord_ids(q text) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE r int[];
BEGIN EXECUTE 'SELECT array_agg(id) FROM (' || q || ') s' INTO r; RETURN r; END $$;
SELECT op,
       ord_ids(format('SELECT id FROM ord_items ORDER BY e %s %L LIMIT 10', op, q))
         = ord_ids(format('SELECT id FROM ord_items ORDER BY fct_upgrade(e, %L) %s %L LIMIT 10', 'ord_v2', op, q))
         AS same_as_explicit
FROM unnest(ARRAY['<=>', '<#>', '<->']) op, (VALUES ('ord_v2:[1, 0.5, 0, 0]')) v(q);
SET enable_indexscan = off;
SET enable_seqscan = on;
-- exact: both forms compute the same distances for every row (NULLs last in both)
SELECT op, count(*) AS rows,
       count(*) FILTER (WHERE d_plain IS NOT DISTINCT FROM d_explicit) AS equal
FROM unnest(ARRAY['<=>', '<#>', '<->']) op,
     LATERAL (SELECT CASE op WHEN '<=>' THEN e <=> 'ord_v2:[1, 0.5, 0, 0]'
                             WHEN '<#>' THEN e <#> 'ord_v2:[1, 0.5, 0, 0]'
                             ELSE e <-> 'ord_v2:[1, 0.5, 0, 0]' END AS d_plain,
                     CASE op WHEN '<=>' THEN fct_upgrade(e, 'ord_v2') <=> 'ord_v2:[1, 0.5, 0, 0]'
                             WHEN '<#>' THEN fct_upgrade(e, 'ord_v2') <#> 'ord_v2:[1, 0.5, 0, 0]'
                             ELSE fct_upgrade(e, 'ord_v2') <-> 'ord_v2:[1, 0.5, 0, 0]' END AS d_explicit
              FROM ord_items) x
GROUP BY op ORDER BY op;
SET fct.upgrade_orderings = off;
SELECT ord_ids($$SELECT id FROM ord_items ORDER BY e <=> 'ord_v2:[1, 0.5, 0, 0]' LIMIT 10$$)
     = ord_ids($$SELECT id FROM ord_items ORDER BY fct_upgrade(e, 'ord_v2') <=> 'ord_v2:[1, 0.5, 0, 0]' LIMIT 10$$)
       AS exact_orders_equal;
RESET enable_indexscan;
SET enable_seqscan = off;
-- off: the query as written (a sequential scan and a sort)
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY e <=> 'ord_v2:[1, 0.5, 0, 0]' LIMIT 5;
RESET fct.upgrade_orderings;

-- an older-model query: the plain form compares each row in the newer of the two models, which is not
-- the index's order, so it is left as written; the explicit form uses the index, the query upgraded
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY e <=> 'ord_v1:[1, 0.5, 0]|[1]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY fct_upgrade(e, 'ord_v2') <=> 'ord_v1:[1, 0.5, 0]|[1]' LIMIT 5;
SELECT ord_ids($$SELECT id FROM ord_items ORDER BY fct_upgrade(e, 'ord_v2') <=> 'ord_v1:[1, 0.5, 0]|[1]' LIMIT 10$$)
     = ord_ids($$SELECT id FROM ord_items ORDER BY fct_upgrade(e, 'ord_v2') <=> fct_upgrade('ord_v1:[1, 0.5, 0]|[1]', 'ord_v2') LIMIT 10$$)
       AS older_query_upgraded;

-- not rewritten: a bare vector (it meets every row in the row's own space), another model, a partial index
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY e <=> '[1, 0.5, 0, 0]' LIMIT 5;
SELECT test_error($$SELECT id FROM ord_items ORDER BY e <=> 'ord_other:[1, 0.5, 0, 0]' LIMIT 5$$);
DROP INDEX ord_cos;
CREATE INDEX ord_cos_partial ON ord_items USING lsh (fct_upgrade(e, 'ord_v2') embedding_cosine_ops) WHERE id > 10;
EXPLAIN (COSTS OFF) SELECT id FROM ord_items ORDER BY e <=> 'ord_v2:[1, 0.5, 0, 0]' LIMIT 5;
DROP INDEX ord_cos_partial;

-- a prepared statement: its custom plans know the parameter's model; a generic plan cannot
PREPARE ord_q(embedding) AS SELECT id FROM ord_items ORDER BY e <-> $1 LIMIT 5;
EXPLAIN (COSTS OFF) EXECUTE ord_q('ord_v2:[1, 0.5, 0, 0]');
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE ord_q('ord_v2:[1, 0.5, 0, 0]');
RESET plan_cache_mode;
DEALLOCATE ord_q;
RESET enable_seqscan;
DROP FUNCTION ord_ids(text);
DROP TABLE ord_items;
