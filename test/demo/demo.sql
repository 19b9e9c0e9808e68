-- The fct demo: a catalogue of Fashion-MNIST images, embedded by an old model, served by a new one.
-- test/demo/run pipes it into psql from the directory holding the CSV files embed_fashion_mnist.py wrote.
-- Every figure it measures also goes into the table demo_figures, printed at the end.
\set ECHO none
SET client_min_messages = warning;
CREATE EXTENSION fct;
CREATE TEMP TABLE demo_figures (n serial, step text, what text, value text);

-- best wall time of n runs of stmt, in ms (the runs warm the caches)
CREATE FUNCTION pg_temp.best_ms(stmt text, n int DEFAULT 3) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	best float8 := 'Infinity';
BEGIN
	FOR i IN 1..n LOOP
		t0 := clock_timestamp();
		EXECUTE stmt;
		best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
	END LOOP;
	RETURN best;
END $$;

\echo '1. Register the model that embeds the catalogue today: 32 dimensions, with 8 dimensions of side-information.'
SELECT fct_register_model('fmnist-v1', dim => 32, side_dim => 8, note => 'MLP trained on classes 0-4') AS model_id;

CREATE TABLE classes (label int PRIMARY KEY, name text);
\copy classes FROM 'classes.csv' CSV
CREATE TEMP TABLE gallery_csv (id int, label int, old real[], side real[], new real[]);
\copy gallery_csv FROM 'gallery.csv' CSV
CREATE TEMP TABLE queries_csv (id int, label int, old real[], new real[]);
\copy queries_csv FROM 'queries.csv' CSV

\echo '2. Store 5,000 catalogue images with their old-model embedding and side-information.'
CREATE TABLE items (id int PRIMARY KEY, label int REFERENCES classes, emb embedding);
INSERT INTO items SELECT id, label, fct_embedding(old, side, 'fmnist-v1') FROM gallery_csv;
SELECT count(*) AS items, fct_model(emb) AS model, fct_dims(emb) AS dims, fct_side_dims(emb) AS side_dims,
       pg_size_pretty(pg_total_relation_size('items')) AS size
FROM items GROUP BY 2, 3, 4;
\echo '   One stored value, as text (model:[vector]|[side-information]):'
SELECT left(emb::text, 100) || ' ...' AS emb FROM items WHERE id = 0;

\echo
\echo '3. Nearest neighbours of a few query images, by cosine distance (<=>), old model:'
SELECT q.id AS query, c.name AS query_is,
       (SELECT string_agg(cn.name, ', ' ORDER BY d) FROM
          (SELECT i.label, i.emb <=> fct_embedding(q.old, NULL, 'fmnist-v1') AS d
             FROM items i ORDER BY d LIMIT 5) nn JOIN classes cn ON cn.label = nn.label) AS five_nearest
FROM queries_csv q JOIN classes c USING (label) WHERE q.id IN (5000, 5001, 5002, 5005, 5010) ORDER BY q.id;

\echo
\echo '4. A new model arrives: 64 dimensions, trained on all ten classes. Nothing is re-embedded.'
SELECT fct_register_model('fmnist-v2', dim => 64, note => 'MLP trained on all 10 classes') AS model_id;
\echo '   3,000 training images were embedded by both models; fit h(old, side) -> new in the database:'
CREATE TEMP TABLE pairs_csv (old real[], side real[], new real[]);
\copy pairs_csv FROM 'pairs.csv' CSV
CREATE TEMP TABLE fit AS
SELECT fct_fit_transformation('fmnist-v1', 'fmnist-v2',
       $$SELECT fct_embedding(old, side, 'fmnist-v1'), fct_embedding(new, NULL, 'fmnist-v2') FROM pairs_csv$$,
       method => 'mlp') AS r;
SELECT r->>'method' AS method, r->'n_train' AS train_pairs, r->'n_val' AS validation_pairs,
       round((r->>'val_loss')::numeric, 5) AS validation_mse,
       round((r->>'baseline_val_loss')::numeric, 5) AS predict_the_mean_mse
FROM fit;
INSERT INTO demo_figures (step, what, value)
SELECT '4 fit', 'validation MSE of h(old, side) (predicting the mean: ' || round((r->>'baseline_val_loss')::numeric, 5) || ')',
       round((r->>'val_loss')::numeric, 5)::text FROM fit;

\echo
\echo '5. From now on a query embedded by the NEW model runs against the OLD rows: each old row is upgraded'
\echo '   on the fly, h(old, side), before the distance is taken.'
SELECT q.id AS query, c.name AS query_is,
       (SELECT string_agg(cn.name, ', ' ORDER BY d) FROM
          (SELECT i.label, i.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') AS d
             FROM items i ORDER BY d LIMIT 5) nn JOIN classes cn ON cn.label = nn.label) AS five_nearest
FROM queries_csv q JOIN classes c USING (label) WHERE q.id IN (5000, 5001, 5002, 5005, 5010) ORDER BY q.id;
\echo '   Top-1 accuracy over 1,000 queries (the nearest item has the query''s class): old model; new model against'
\echo '   the old rows (no backfill); new model against a full backfill (every item re-embedded, for comparison):'
CREATE TEMP TABLE backfilled AS SELECT id, label, fct_embedding(new, NULL, 'fmnist-v2') AS emb FROM gallery_csv;
CREATE TEMP TABLE acc AS SELECT
  round(avg(((SELECT i.label FROM items i
               ORDER BY i.emb <=> fct_embedding(q.old, NULL, 'fmnist-v1') LIMIT 1) = q.label)::int), 3) AS old_model,
  round(avg(((SELECT i.label FROM items i
               ORDER BY i.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') LIMIT 1) = q.label)::int), 3) AS new_query_old_rows,
  round(avg(((SELECT b.label FROM backfilled b
               ORDER BY b.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') LIMIT 1) = q.label)::int), 3) AS full_backfill
FROM queries_csv q;
SELECT * FROM acc;
INSERT INTO demo_figures (step, what, value)
SELECT '3 query', 'top-1 accuracy, old model', old_model::text FROM acc UNION ALL
SELECT '5 upgrade', 'top-1 accuracy, new queries on old rows (no backfill)', new_query_old_rows::text FROM acc UNION ALL
SELECT '5 upgrade', 'top-1 accuracy, new queries on a full backfill', full_backfill::text FROM acc;

\echo
\echo '6. The stored rows move to the new space lazily: committed batches, resumable, never overwriting a'
\echo '   concurrent write (CALL fct_migrate; fct_migrate_start queues the same for a background worker).'
SELECT * FROM fct_model_census('items', 'emb');
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t;
CALL fct_migrate('items', 'emb', 'fmnist-v2', batch_size => 1000);
INSERT INTO demo_figures (step, what, value)
SELECT '6 migrate', 'rows migrated v1 -> v2 (batches of 1,000)',
       (SELECT rows FROM fct_model_census('items', 'emb') WHERE model = 'fmnist-v2') || ' in '
       || round(extract(epoch FROM clock_timestamp() - t) * 1000) || ' ms' FROM t0;
SELECT * FROM fct_model_census('items', 'emb');
CREATE TEMP TABLE acc_migrated AS
SELECT round(avg(((SELECT i.label FROM items i
                    ORDER BY i.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') LIMIT 1) = q.label)::int), 3)
       AS new_query_migrated_rows
FROM queries_csv q;
\echo '   The same new-model queries against the migrated rows (no upgrade on read any more):'
SELECT * FROM acc_migrated;
INSERT INTO demo_figures (step, what, value)
SELECT '6 migrate', 'top-1 accuracy, new queries on migrated rows', new_query_migrated_rows::text FROM acc_migrated;

\echo
\echo '7. An lsh index on the new embeddings (cosine): the ten nearest items of each query, from the index and'
\echo '   from an exact scan; recall@10 is the share of the exact ten the index finds.'
CREATE TEMP TABLE q AS SELECT id, label, fct_embedding(new, NULL, 'fmnist-v2') AS e FROM queries_csv;
CREATE TEMP TABLE t1 AS SELECT clock_timestamp() AS t;
CREATE INDEX items_lsh ON items USING lsh (emb embedding_cosine_ops);
INSERT INTO demo_figures (step, what, value)
SELECT '7 lsh', 'index build, 5,000 rows', round(extract(epoch FROM clock_timestamp() - t) * 1000) || ' ms' FROM t1;
ANALYZE items;
SET enable_indexscan = off;
CREATE TEMP TABLE exact AS SELECT q.id, ARRAY(SELECT i.id FROM items i ORDER BY i.emb <=> q.e LIMIT 10) AS ids FROM q;
CREATE TEMP TABLE timing AS
SELECT pg_temp.best_ms('SELECT (SELECT count(*) FROM (SELECT i.id FROM items i ORDER BY i.emb <=> q.e LIMIT 10) s) FROM q')
       AS exact_ms;
RESET enable_indexscan;
CREATE TEMP TABLE approx AS SELECT q.id, ARRAY(SELECT i.id FROM items i ORDER BY i.emb <=> q.e LIMIT 10) AS ids FROM q;
ALTER TABLE timing ADD COLUMN lsh_ms float8;
UPDATE timing SET lsh_ms = pg_temp.best_ms('SELECT (SELECT count(*) FROM (SELECT i.id FROM items i ORDER BY i.emb <=> q.e LIMIT 10) s) FROM q');
CREATE TEMP TABLE lsh_figures AS
SELECT round(avg((SELECT count(*) FROM unnest(a.ids) x WHERE x = ANY (e.ids)) / 10.0), 3) AS recall_at_10,
       round((t.exact_ms / 1000)::numeric, 3) AS exact_ms_per_query,
       round((t.lsh_ms / 1000)::numeric, 3) AS lsh_ms_per_query,
       round((t.exact_ms / t.lsh_ms)::numeric, 1) AS speed_vs_exact
FROM approx a JOIN exact e USING (id), timing t GROUP BY t.exact_ms, t.lsh_ms;
SELECT * FROM lsh_figures;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY emb <=> (SELECT e FROM q WHERE id = 5000) LIMIT 10;
INSERT INTO demo_figures (step, what, value)
SELECT '7 lsh', 'recall@10 against an exact scan (1,000 queries)', recall_at_10::text FROM lsh_figures UNION ALL
SELECT '7 lsh', 'ms per query: exact scan / lsh index', exact_ms_per_query || ' / ' || lsh_ms_per_query
       || ' (' || speed_vs_exact || 'x)' FROM lsh_figures;

\echo
\echo '8. The new model is fine-tuned in place (simulated here: the shirts move by about 20%, everything else'
\echo '   by 0.2%). fct_refresh writes only the rows that moved more than the threshold:'
CREATE TEMP TABLE retrained AS
SELECT i.id, fct_embedding(ARRAY(SELECT (x * (1 + CASE WHEN i.label = 6 THEN 0.3 ELSE 0.003 END * sin(i.id + o)))::real
                                 FROM unnest(fct_vector(i.emb)) WITH ORDINALITY u(x, o)), NULL, 'fmnist-v2') AS emb
FROM items i;
CREATE TEMP TABLE refreshed AS
SELECT * FROM fct_refresh('items', 'emb', 'id', 'SELECT id, emb FROM retrained', threshold => 0.05);
SELECT updated AS rows_written, skipped AS rows_skipped, threshold_used FROM refreshed;
INSERT INTO demo_figures (step, what, value)
SELECT '8 refresh', 'rows written / skipped (threshold 0.05)', updated || ' / ' || skipped FROM refreshed;

\echo
\echo '9. Label look-ups: the new model''s classifier is a softmax layer, ten label embeddings with a bias each;'
\echo '   score = <label, q> + bias, prob = softmax of the scores (fct_top_labels; millions of labels work the'
\echo '   same, with an lsh index on the label embeddings).'
CREATE TEMP TABLE labels_csv (label int, weight real[], bias real);
\copy labels_csv FROM 'labels.csv' CSV
CREATE TABLE class_labels (id text PRIMARY KEY, e embedding, b real);
INSERT INTO class_labels SELECT c.name, fct_embedding(l.weight, NULL, 'fmnist-v2'), l.bias
FROM labels_csv l JOIN classes c USING (label);
SELECT fct_create_label_set('fmnist-classes', 'class_labels', 'id', 'e', bias_col => 'b') AS labels;
SELECT q.id AS query, c.name AS query_is,
       (SELECT string_agg(t.label || ' ' || round(t.prob::numeric, 2), ', ' ORDER BY t.prob DESC)
          FROM fct_top_labels('fmnist-classes', q.e, 3) t) AS top_3_labels
FROM q JOIN classes c USING (label) WHERE q.id IN (5000, 5001, 5002, 5005, 5010) ORDER BY q.id;
-- the deployed model's own recommendations shift what users ask for: the classifier was trained on
-- balanced classes, this week's queries are mostly shirts and coats
CREATE TEMP TABLE shifted AS
SELECT q.* FROM q JOIN classes c USING (label)
WHERE c.name IN ('Shirt', 'Coat') OR q.id % 8 = 0;
SELECT format('   This week''s traffic shifts: %s of the %s queries are shirts or coats (a fifth before).',
              count(*) FILTER (WHERE c.name IN ('Shirt', 'Coat')), count(*)) AS shift_line
FROM shifted s JOIN classes c USING (label) \gset
\echo :shift_line
\echo '   EM estimates the new label prior from the queries alone (no labels); the corrected look-up uses it:'
SELECT fct_set_prior('fmnist-classes', fct_estimate_prior_em('fmnist-classes', 'SELECT e FROM shifted'), 'em') IS NOT NULL
       AS prior_installed;
SELECT c.name AS label, round(count(*) FILTER (WHERE s.label = c.label) / (SELECT count(*) FROM shifted)::numeric, 2)
       AS true_share,
       round((SELECT p.prior[x.idx + 1] FROM fct_label_sets p, fct_label_index x
               WHERE p.name = 'fmnist-classes' AND x.label_set = p.name AND x.label = c.name)::numeric, 2) AS em_estimate
FROM classes c CROSS JOIN shifted s GROUP BY c.label, c.name ORDER BY c.label;
CREATE TEMP TABLE label_acc AS
SELECT round(avg(((SELECT t.label FROM fct_top_labels('fmnist-classes', s.e, 1, corrected => false) t) = c.name)::int), 3)
         AS uncorrected,
       round(avg(((SELECT t.label FROM fct_top_labels('fmnist-classes', s.e, 1) t) = c.name)::int), 3) AS em_corrected
FROM shifted s JOIN classes c USING (label);
\echo '   Top-1 label accuracy on the shifted queries, without and with the correction'
\echo '   (p(y|x) divided by the training prior, times the estimated one):'
SELECT * FROM label_acc;
INSERT INTO demo_figures (step, what, value)
SELECT '9 labels', 'top-1 label accuracy, shifted queries: uncorrected / EM-corrected',
       uncorrected || ' / ' || em_corrected FROM label_acc;

\echo
\echo 'What the demo measured:'
SELECT step, what, value FROM demo_figures ORDER BY step, n;
