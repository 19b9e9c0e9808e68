-- The fct demo: a catalogue of Fashion-MNIST images, embedded by an old model, served by a new one.
-- Run by test/demo/run from the directory holding the CSV files that embed_fashion_mnist.py wrote.
\set ECHO none
CREATE EXTENSION fct;

\echo
\echo '1. Register the model that embeds the catalogue today: 32 dimensions, with 8 dimensions of side-information.'
\echo
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
\echo '   Top-1 retrieval accuracy over 1,000 queries (the nearest item has the query''s class):'
SELECT round(avg(((SELECT i.label FROM items i
                    ORDER BY i.emb <=> fct_embedding(q.old, NULL, 'fmnist-v1') LIMIT 1) = q.label)::int), 3)
       AS old_model_top1
FROM queries_csv q;

\echo
\echo '4. A new model arrives: 64 dimensions, trained on all ten classes. Nothing is re-embedded.'
SELECT fct_register_model('fmnist-v2', dim => 64, note => 'MLP trained on all 10 classes') AS model_id;

\echo '   3,000 training images were embedded by both models; fit h(old, side) -> new in the database:'
CREATE TEMP TABLE pairs_csv (old real[], side real[], new real[]);
\copy pairs_csv FROM 'pairs.csv' CSV
SELECT r->>'method' AS method, r->'n_train' AS train_pairs, r->'n_val' AS validation_pairs,
       round((r->>'val_loss')::numeric, 5) AS validation_mse,
       round((r->>'baseline_val_loss')::numeric, 5) AS predict_the_mean_mse,
       round((r->>'seconds_per_epoch')::numeric, 3) AS seconds_per_epoch
FROM fct_fit_transformation('fmnist-v1', 'fmnist-v2',
       $$SELECT fct_embedding(old, side, 'fmnist-v1'), fct_embedding(new, NULL, 'fmnist-v2') FROM pairs_csv$$,
       method => 'mlp') AS r;
SELECT f.name AS from_model, t.name AS to_model, x.architecture, x.origin
FROM fct_transformations x JOIN fct_models f ON f.id = x.from_model JOIN fct_models t ON t.id = x.to_model;

\echo
\echo '5. From this moment, a query embedded by the NEW model runs against the OLD rows: each old row is'
\echo '   upgraded on the fly, h(old, side), before the distance is taken.'
SELECT q.id AS query, c.name AS query_is,
       (SELECT string_agg(cn.name, ', ' ORDER BY d) FROM
          (SELECT i.label, i.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') AS d
             FROM items i ORDER BY d LIMIT 5) nn JOIN classes cn ON cn.label = nn.label) AS five_nearest
FROM queries_csv q JOIN classes c USING (label) WHERE q.id IN (5000, 5001, 5002, 5005, 5010) ORDER BY q.id;

\echo
\echo '   Top-1 accuracy over the same 1,000 queries: old model, new model against the old rows (no backfill),'
\echo '   and new model against a full backfill (every item re-embedded by the new model, for comparison):'
CREATE TEMP TABLE backfilled AS SELECT id, label, fct_embedding(new, NULL, 'fmnist-v2') AS emb FROM gallery_csv;
SELECT
  round(avg(((SELECT i.label FROM items i
               ORDER BY i.emb <=> fct_embedding(q.old, NULL, 'fmnist-v1') LIMIT 1) = q.label)::int), 3) AS old_model,
  round(avg(((SELECT i.label FROM items i
               ORDER BY i.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') LIMIT 1) = q.label)::int), 3) AS new_query_old_rows,
  round(avg(((SELECT b.label FROM backfilled b
               ORDER BY b.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') LIMIT 1) = q.label)::int), 3) AS full_backfill
FROM queries_csv q;

\echo
\echo '6. The stored rows now move to the new space lazily: committed batches, resumable, never overwriting'
\echo '   a concurrent write (CALL fct_migrate; fct_migrate_start queues the same for a background worker).'
SELECT * FROM fct_model_census('items', 'emb');
CALL fct_migrate('items', 'emb', 'fmnist-v2', batch_size => 1000);
SELECT * FROM fct_model_census('items', 'emb');
\echo '   The same new-model queries, now against migrated rows (no upgrade on read any more):'
SELECT round(avg(((SELECT i.label FROM items i
                    ORDER BY i.emb <=> fct_embedding(q.new, NULL, 'fmnist-v2') LIMIT 1) = q.label)::int), 3)
       AS new_query_migrated_rows
FROM queries_csv q;
