-- Equality, ordering and hashing of embeddings: DISTINCT, GROUP BY, UNIQUE,
-- btree and hash indexes, merge and hash joins.
SELECT '[1,2]'::embedding = '[1,2]'::embedding AS eq,
       '[1,2]'::embedding = '[1,2]|[]'::embedding AS eq_empty_side,
       '[1,2]'::embedding <> '[1,2]|[0]'::embedding AS ne_side,
       '[0]'::embedding = '[-0]'::embedding AS eq_zero,
       '[1,2]'::embedding < '[1,3]'::embedding AS lt,
       '[1,2]'::embedding <= '[1,2]'::embedding AS le,
       '[2]'::embedding < '[1,1]'::embedding AS dim_first,
       '[9,9]'::embedding < '[1,1]|[1]'::embedding AS side_dim_before_values,
       '[1,2]|[5]'::embedding > '[1,2]|[4]'::embedding AS gt_side,
       '[-1]'::embedding < '[1e-45]'::embedding AS neg,
       '[1]'::embedding >= '[1]'::embedding AS ge;
-- hashes agree for equal values, -0 included
SELECT embedding_hash('[0,1]'::embedding) = embedding_hash('[-0,1]'::embedding) AS h,
       embedding_hash_extended('[0,1]|[-0]'::embedding, 42) = embedding_hash_extended('[-0,1]|[0]'::embedding, 42) AS hx,
       embedding_hash('[1,2]'::embedding) <> embedding_hash('[2,1]'::embedding) AS differ;

CREATE TABLE embedding_ops_t (id int, e embedding);
INSERT INTO embedding_ops_t
SELECT g, format('[%s,%s]|[%s]', g % 3, -(g % 2), g % 2)::embedding FROM generate_series(1, 60) g;
INSERT INTO embedding_ops_t VALUES (100, '[-0,-0]|[0]'), (101, '[5]'), (102, '[5]|[]');
-- ordering
SELECT DISTINCT e FROM embedding_ops_t ORDER BY e;
SELECT e, count(*) FROM embedding_ops_t GROUP BY e ORDER BY e;
-- hashed grouping and distinct
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT e, count(*) FROM embedding_ops_t GROUP BY e;
SELECT e, count(*) FROM embedding_ops_t GROUP BY e ORDER BY count(*), e::text;
EXPLAIN (COSTS OFF) SELECT DISTINCT e FROM embedding_ops_t;
SELECT count(*) FROM (SELECT DISTINCT e FROM embedding_ops_t) d;
RESET enable_sort;
-- sorted grouping
SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT e, count(*) FROM embedding_ops_t GROUP BY e;
SELECT e, count(*) FROM embedding_ops_t GROUP BY e;
RESET enable_hashagg;

-- UNIQUE through the default btree opclass
CREATE TABLE embedding_ops_u (e embedding UNIQUE);
INSERT INTO embedding_ops_u VALUES ('[1,2]'), ('[1,2]|[3]'), ('[2,1]');
\set VERBOSITY sqlstate
INSERT INTO embedding_ops_u VALUES ('[1,2]|[]');
INSERT INTO embedding_ops_u VALUES ('[-0]'), ('[0]');
\set VERBOSITY default
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM embedding_ops_u WHERE e = '[1,2]|[3]';
SELECT * FROM embedding_ops_u WHERE e = '[1,2]|[3]';
SELECT * FROM embedding_ops_u WHERE e > '[1,2]' ORDER BY e;
RESET enable_seqscan;
-- a hash index through the default hash opclass
CREATE INDEX embedding_ops_u_hash ON embedding_ops_u USING hash (e);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
ALTER TABLE embedding_ops_u DROP CONSTRAINT embedding_ops_u_e_key;
EXPLAIN (COSTS OFF) SELECT * FROM embedding_ops_u WHERE e = '[2,1]';
SELECT * FROM embedding_ops_u WHERE e = '[2,1]';
RESET enable_seqscan;
RESET enable_bitmapscan;

-- joins on equality: hash join, merge join
CREATE TABLE embedding_ops_j (e embedding, tag text);
INSERT INTO embedding_ops_j VALUES ('[0,0]|[0]', 'zero'), ('[1,-1]|[1]', 'one'), ('[5]', 'five'), ('[9]', 'none');
ANALYZE embedding_ops_t, embedding_ops_j;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT j.tag, count(*) FROM embedding_ops_t t JOIN embedding_ops_j j ON t.e = j.e GROUP BY j.tag;
SELECT j.tag, count(*) FROM embedding_ops_t t JOIN embedding_ops_j j ON t.e = j.e GROUP BY j.tag ORDER BY j.tag;
RESET enable_mergejoin;
SET enable_hashjoin = off;
EXPLAIN (COSTS OFF) SELECT j.tag, count(*) FROM embedding_ops_t t JOIN embedding_ops_j j ON t.e = j.e GROUP BY j.tag;
SELECT j.tag, count(*) FROM embedding_ops_t t JOIN embedding_ops_j j ON t.e = j.e GROUP BY j.tag ORDER BY j.tag;
RESET enable_hashjoin;
RESET enable_nestloop;
-- IN (subquery) hashed
SELECT count(*) FROM embedding_ops_t WHERE e IN (SELECT e FROM embedding_ops_j);

-- the opclasses are the defaults
SELECT am.amname, opc.opcname, opc.opcdefault
FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod
WHERE opc.opcintype = 'embedding'::regtype AND am.amname IN ('btree', 'hash') ORDER BY 1;

DROP TABLE embedding_ops_t, embedding_ops_u, embedding_ops_j;
