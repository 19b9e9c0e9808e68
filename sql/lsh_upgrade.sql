-- An lsh index on fct_upgrade(col, model): the new model's space is indexed
-- while the rows keep their old values; a query of another model is refused.

SELECT test_models('lsh_upgrade', 'v1 3 1', 'v2 2');
-- h(x, s) = [x1 + x2 + s, x3 - x1]
SELECT test_linear('lsh_upgrade', 'v1', 'v2', '[[1,1,0,1],[-1,0,1,0]]');

CREATE TABLE lsh_upgrade_t (id int, e embedding);
INSERT INTO lsh_upgrade_t
SELECT i, ('lsh_upgrade_v1:[' || (i % 7) || ',' || (i % 11) || ',' || (i % 13) || ']|[' || (i % 3) || ']')::embedding
FROM generate_series(1, 2000) i;
CREATE INDEX lsh_upgrade_idx ON lsh_upgrade_t USING lsh (fct_upgrade(e, 'lsh_upgrade_v2')) WITH (lists = 8);
SELECT dim, learned, lists, entries FROM fct_lsh_stats('lsh_upgrade_idx');
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_upgrade_idx');

EXPLAIN (COSTS OFF)
SELECT id FROM lsh_upgrade_t ORDER BY fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' LIMIT 5;

-- all lists probed: the index answers exactly as the sequential scan (each
-- side forced to its plan, the index side's shown)
SET fct.lsh_probes = 8;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id, fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' AS d
FROM lsh_upgrade_t ORDER BY fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' LIMIT 5;
CREATE TEMP TABLE lsh_upgrade_idx_ans AS
SELECT id, fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' AS d
FROM lsh_upgrade_t ORDER BY fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' LIMIT 5;
RESET enable_seqscan;
SET enable_indexscan = off;
CREATE TEMP TABLE lsh_upgrade_seq_ans AS
SELECT id, fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' AS d
FROM lsh_upgrade_t ORDER BY fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' LIMIT 5;
RESET enable_indexscan;
RESET fct.lsh_probes;
SELECT (SELECT array_agg(d ORDER BY d) FROM lsh_upgrade_idx_ans) = (SELECT array_agg(d ORDER BY d) FROM lsh_upgrade_seq_ans) AS same_distances,
       (SELECT min(d) FROM lsh_upgrade_idx_ans) AS best;

-- new rows written in the new model's space are indexed through fct_upgrade too
INSERT INTO lsh_upgrade_t VALUES (2001, 'lsh_upgrade_v2:[100,100]');
SELECT id FROM lsh_upgrade_t ORDER BY fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v2:[1,2]' LIMIT 1;

-- a query embedded by the old model is upgraded to the index's model by the planner
-- (src/upgrade/ordering.c), as the operator would upgrade it, and uses the new-space index
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM lsh_upgrade_t ORDER BY fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v1:[1,2,3]|[1]' LIMIT 1;
SELECT test_error($$SELECT id FROM lsh_upgrade_t ORDER BY fct_upgrade(e, 'lsh_upgrade_v2') <#> 'lsh_upgrade_v1:[1,2,3]|[1]' LIMIT 1$$);
RESET enable_seqscan;
