-- fit_mlp: the MLP fit learns, is reproducible bit for bit with one seed,
-- uses the side-information when asked, and records its metrics.
SELECT test_models('fit_mlp', 'old 4 2', 'new 3');

-- 400 items: the new embedding is a smooth, partly nonlinear function of the
-- old one and of the side-information (its second coordinate needs the side).
CREATE TABLE fit_mlp_pairs AS
SELECT i,
	   fct_embedding(ARRAY[sin(i), cos(0.7 * i), sin(1.3 * i), cos(0.3 * i)]::real[],
					 ARRAY[sin(2.1 * i), cos(1.7 * i)]::real[], 'fit_mlp_old') AS e_old,
	   fct_embedding(ARRAY[sin(i) + 0.5 * cos(0.7 * i),
						   2 * sin(2.1 * i) + cos(1.7 * i) * sin(i),
						   greatest(sin(1.3 * i) - cos(0.3 * i), 0)]::real[],
					 NULL, 'fit_mlp_new') AS e_new
FROM generate_series(1, 400) AS i;

CREATE TABLE fit_mlp_runs (name text PRIMARY KEY, r jsonb);
INSERT INTO fit_mlp_runs
SELECT 'a', fct_fit_transformation('fit_mlp_old', 'fit_mlp_new',
	'SELECT e_old, e_new FROM fit_mlp_pairs ORDER BY i', 'mlp',
	'{"seed": 7, "epochs": 40, "old_hidden": 16, "side_hidden": 8,
	  "mixer_hidden": [32], "batch_size": 32, "lr": 0.01, "register": false}');
INSERT INTO fit_mlp_runs
SELECT 'b', fct_fit_transformation('fit_mlp_old', 'fit_mlp_new',
	'SELECT e_old, e_new FROM fit_mlp_pairs ORDER BY i', 'mlp',
	'{"seed": 7, "epochs": 40, "old_hidden": 16, "side_hidden": 8,
	  "mixer_hidden": [32], "batch_size": 32, "lr": 0.01, "register": false}');
INSERT INTO fit_mlp_runs
SELECT 'other seed', fct_fit_transformation('fit_mlp_old', 'fit_mlp_new',
	'SELECT e_old, e_new FROM fit_mlp_pairs ORDER BY i', 'mlp',
	'{"seed": 8, "epochs": 40, "old_hidden": 16, "side_hidden": 8,
	  "mixer_hidden": [32], "batch_size": 32, "lr": 0.01, "register": false}');
INSERT INTO fit_mlp_runs
SELECT 'no side', fct_fit_transformation('fit_mlp_old', 'fit_mlp_new',
	'SELECT e_old, e_new FROM fit_mlp_pairs ORDER BY i', 'mlp',
	'{"seed": 7, "epochs": 40, "old_hidden": 16, "side_hidden": 8,
	  "mixer_hidden": [32], "batch_size": 32, "lr": 0.01, "use_side": false,
	  "register": false}');

-- the shape of the result
SELECT r->'method' AS method, r->'n_pairs' AS n_pairs, r->'n_train' AS n_train,
	   r->'n_val' AS n_val, r->'n_params' AS n_params, r->'epochs' AS epochs,
	   jsonb_array_length(r->'val_loss_history') AS history,
	   jsonb_array_length(r->'spec'->'old') AS old_layers,
	   jsonb_array_length(r->'spec'->'side') AS side_layers,
	   jsonb_array_length(r->'spec'->'mixer') AS mixer_layers,
	   r->'spec'->'mixer'->0->'activation' AS act0,
	   r->'spec'->'mixer'->1->'activation' AS act1,
	   (r->>'seconds_per_epoch')::float8 > 0 AS timed,
	   (r->>'pairs_per_second')::float8 > 0 AS rated
FROM fit_mlp_runs WHERE name = 'a';

-- same seed: the same weights and losses, bit for bit
SELECT a.r->'spec' = b.r->'spec' AS same_weights,
	   a.r->'train_loss' = b.r->'train_loss' AS same_train_loss,
	   a.r->'val_loss' = b.r->'val_loss' AS same_val_loss,
	   a.r->'val_loss_history' = b.r->'val_loss_history' AS same_history
FROM fit_mlp_runs a, fit_mlp_runs b WHERE a.name = 'a' AND b.name = 'b';

-- another seed: other weights
SELECT a.r->'spec' <> c.r->'spec' AS other_weights
FROM fit_mlp_runs a, fit_mlp_runs c WHERE a.name = 'a' AND c.name = 'other seed';

-- it learned: the validation loss is far below the mean predictor's (one
-- epoch leaves it at 0.49 of it), and the side-information helps (the targets
-- depend on it): a tenth of the loss without it (0.03 here; on targets that
-- do not depend on the side the same fits give 0.48, and this fails)
SELECT name,
	   (r->>'val_loss')::float8 < 0.2 * (r->>'baseline_val_loss')::float8 AS learned,
	   r->'spec'->'side' = 'null' AS side_null
FROM fit_mlp_runs ORDER BY name;
SELECT (s.r->>'val_loss')::float8 < 0.1 * (n.r->>'val_loss')::float8 AS side_helps
FROM fit_mlp_runs s, fit_mlp_runs n WHERE s.name = 'a' AND n.name = 'no side';

-- registered: fct_upgrade, applying the stored layers to raw embeddings
-- (the input standardisation folded into the first layers), reproduces the
-- loss that the fit reported, over all 400 pairs
SELECT test_models('fit_mlp', 'new2 3');
CREATE TABLE fit_mlp_registered AS
SELECT fct_fit_transformation('fit_mlp_old', 'fit_mlp_new2',
	'SELECT e_old, fct_embedding(fct_vector(e_new), NULL, ''fit_mlp_new2'') FROM fit_mlp_pairs ORDER BY i',
	'mlp', '{"seed": 7, "epochs": 40, "old_hidden": 16, "side_hidden": 8,
	  "mixer_hidden": [32], "batch_size": 32, "lr": 0.01}') AS r;
SELECT r->'transformation_id' IS NOT NULL AS has_id,
	   r->'val_loss' = (SELECT r->'val_loss' FROM fit_mlp_runs WHERE name = 'a') AS same_as_unregistered
FROM fit_mlp_registered;
WITH err AS (
	SELECT avg((u - n) ^ 2) AS mse
	FROM fit_mlp_pairs,
		 unnest(fct_vector(fct_upgrade(e_old, 'fit_mlp_new2')), fct_vector(e_new)) AS x(u, n)
), reported AS (
	SELECT ((r->>'train_loss')::float8 * (r->>'n_train')::int +
			(r->>'val_loss')::float8 * (r->>'n_val')::int) / (r->>'n_pairs')::int AS mse
	FROM fit_mlp_registered
)
SELECT abs(err.mse - reported.mse) < 1e-4 * reported.mse AS upgrade_matches_fit,
	   (SELECT fct_model(fct_upgrade(e_old, 'fit_mlp_new2')) FROM fit_mlp_pairs LIMIT 1) AS model
FROM err, reported;
SELECT t.origin, t.architecture, t.metrics->'val_loss' = r->'val_loss' AS metrics_stored
FROM fct_transformations t, fit_mlp_registered
WHERE t.id = (r->>'transformation_id')::int;

-- a source model without side-information: no side branch, side null
SELECT test_models('fit_mlp', 'plain 4');
SELECT r->'use_side' AS use_side, r->'spec'->'side' AS side,
	   jsonb_array_length(r->'spec'->'old') AS old_layers,
	   (r->>'val_loss')::float8 < (r->>'baseline_val_loss')::float8 AS learned
FROM fct_fit_transformation('fit_mlp_plain', 'fit_mlp_new',
	'SELECT fct_embedding(fct_vector(e_old), NULL, ''fit_mlp_plain''), e_new FROM fit_mlp_pairs ORDER BY i',
	'mlp', '{"epochs": 30, "lr": 0.01, "batch_size": 32, "old_hidden": 16,
	  "mixer_hidden": [], "register": false}') AS r;
