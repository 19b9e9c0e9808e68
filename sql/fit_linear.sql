-- fit_linear: the closed-form ridge fit reproduces a hand-computed case exactly.
--
-- Four pairs whose features [old1, old2, side, 1] are orthogonal columns of
-- squared norm 4, so X'X = 4 I (and + lambda on the weights): the Cholesky
-- factor is diagonal (2, or 4 on the weights for lambda 12) and every step is exact
-- in float4.  The targets are new = W [old; side] + b with
--   W = [[1, 2, 3], [-1, 0, 2]],  b = [0.5, -1]
-- so with lambda 0 the fit must return W and b bit for bit, with lambda 12 it
-- must return W * 4 / (4 + 12) = W / 4 and the same (unpenalised) bias, and
-- without the side-information the best fit on [old1, old2, 1] is W's first
-- two columns and b, leaving the side's term as the error: squared errors
-- 3^2 and 2^2 on every row, a mean of (9 + 4) / 2 = 6.5 over the 8 values.
SELECT test_models('fit_linear', 'old 2 1', 'new 2');

CREATE TABLE fit_linear_pairs (id int, e_old embedding, e_new embedding);
INSERT INTO fit_linear_pairs VALUES
	(1, 'fit_linear_old:[1,1]|[1]',    'fit_linear_new:[6.5,0]'),
	(2, 'fit_linear_old:[1,-1]|[-1]',  'fit_linear_new:[-3.5,-4]'),
	(3, 'fit_linear_old:[-1,1]|[-1]',  'fit_linear_new:[-1.5,-2]'),
	(4, 'fit_linear_old:[-1,-1]|[1]',  'fit_linear_new:[0.5,2]');

-- lambda 0: the exact W and b, zero loss, no validation split
SELECT r->'spec' AS spec, r->'train_loss' AS train_loss, r->'val_loss' AS val_loss,
	   r->'n_train' AS n_train, r->'n_val' AS n_val, r->'n_params' AS n_params
FROM fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT e_old, e_new FROM fit_linear_pairs', 'linear',
	'{"lambda": 0, "val_fraction": 0, "register": false}') AS r;

-- lambda 12: the weights shrink to W / 4, the bias does not
SELECT r->'spec' AS spec
FROM fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT e_old, e_new FROM fit_linear_pairs', 'linear',
	'{"lambda": 12, "val_fraction": 0, "register": false}') AS r;

-- without the side-information: side null, W's old columns, loss 6.5
SELECT r->'spec' AS spec, r->'train_loss' AS train_loss, r->'use_side' AS use_side
FROM fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT e_old, e_new FROM fit_linear_pairs', 'linear',
	'{"lambda": 0, "val_fraction": 0, "use_side": false, "register": false}') AS r;

-- without the side-information, old embeddings that carry none are accepted
SELECT r->'spec' AS spec, r->'train_loss' AS train_loss
FROM fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT fct_embedding(fct_vector(e_old), NULL, ''fit_linear_old''), e_new FROM fit_linear_pairs',
	'linear', '{"lambda": 0, "val_fraction": 0, "use_side": false, "register": false}') AS r;

-- the same rows ten times over (the solution does not change) with a
-- validation split of 20%: the held-out loss is reported, and is zero but for
-- float4 rounding (the training rows are no longer balanced, so the normal
-- equations are no longer diagonal), far below the mean predictor's
SELECT r->'n_train' AS n_train, r->'n_val' AS n_val,
	   (r->>'train_loss')::float8 < 1e-9 AS train_exact,
	   (r->>'val_loss')::float8 < 1e-9 AS val_exact,
	   (r->>'baseline_val_loss')::float8 > 1 AS baseline_worse
FROM fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT e_old, e_new FROM fit_linear_pairs, generate_series(1, 10)', 'linear',
	'{"lambda": 0, "val_fraction": 0.2, "register": false}') AS r;

-- registered: fct_upgrade maps every old embedding onto its new one exactly,
-- and the catalog records the origin and the metrics
SELECT r->'transformation_id' IS NOT NULL AS has_id, r->'train_loss' AS train_loss
FROM fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT e_old, e_new FROM fit_linear_pairs', 'linear',
	'{"lambda": 0, "val_fraction": 0}') AS r;
SELECT id, fct_upgrade(e_old, 'fit_linear_new') AS upgraded,
	   fct_upgrade(e_old, 'fit_linear_new') = e_new AS exact
FROM fit_linear_pairs ORDER BY id;
SELECT t.origin, t.architecture, t.metrics->>'method' AS method,
	   t.metrics->>'n_pairs' AS n_pairs, t.metrics->'options' AS options
FROM fct_transformations t
JOIN fct_models f ON f.id = t.from_model
JOIN fct_models n ON n.id = t.to_model
WHERE f.name = 'fit_linear_old' AND n.name = 'fit_linear_new';

-- a transformation is immutable: fitting the same pair again is refused
-- before any work
\set VERBOSITY sqlstate
SELECT fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT e_old, e_new FROM fit_linear_pairs', 'linear', '{"val_fraction": 0}');
\set VERBOSITY default
SELECT fct_fit_transformation('fit_linear_old', 'fit_linear_new',
	'SELECT e_old, e_new FROM fit_linear_pairs', 'linear', '{"val_fraction": 0}');
