-- A label set read through its lsh index notices labels deleted from its table
-- (the index path reads only candidates, so the table is counted whenever its
-- cached state is rebuilt): 55000 until fct_refresh_label_set, as on the exact path.
SELECT setseed(0.5);
CREATE TABLE labels_deleted_t (id int PRIMARY KEY, e embedding);
INSERT INTO labels_deleted_t
SELECT i, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 8) WHERE i > 0)::real[]::embedding
  FROM generate_series(1, 500) i;
CREATE INDEX labels_deleted_ip ON labels_deleted_t USING lsh (e embedding_ip_ops);
SELECT fct_create_label_set('labels_deleted_s', 'labels_deleted_t', 'id', 'e');
SET fct.label_candidates = 50;
SET fct.label_search = index;
SELECT count(*) AS before_delete FROM fct_top_labels('labels_deleted_s', (SELECT e FROM labels_deleted_t WHERE id = 7), 5);
DELETE FROM labels_deleted_t WHERE id > 401;
\set VERBOSITY sqlstate
SELECT count(*) FROM fct_top_labels('labels_deleted_s', (SELECT e FROM labels_deleted_t WHERE id = 7), 5);
\set VERBOSITY default
SELECT count(*) FROM fct_top_labels('labels_deleted_s', (SELECT e FROM labels_deleted_t WHERE id = 7), 5);
SELECT fct_refresh_label_set('labels_deleted_s') IS NOT NULL AS refreshed;
SELECT count(*) AS after_refresh FROM fct_top_labels('labels_deleted_s', (SELECT e FROM labels_deleted_t WHERE id = 7), 5);
RESET fct.label_search;
RESET fct.label_candidates;
