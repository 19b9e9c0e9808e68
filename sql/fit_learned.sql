-- fit_learned: a fit that learned nothing is not registered silently, and the
-- default mlp learns the issue's map (new = [old, 2 old], 300 pairs).
SELECT test_models('fit_learned', 'old 128 16', 'new 256', 'new30 256', 'noise 4', 'small 4');

-- 300 items, 128 dimensions and 16 of side-information, pseudo-random in
-- [-0.5, 0.5]; the new embedding is [old, 2 x old] (linear, side unused).
CREATE TABLE fit_learned_pairs AS
SELECT i, fct_embedding(o, s, 'fit_learned_old') AS e_old,
       fct_embedding(o || (SELECT array_agg((2 * x)::real ORDER BY k) FROM unnest(o) WITH ORDINALITY u(x, k)),
                     NULL, 'fit_learned_new') AS e_new,
       fct_embedding(ARRAY[sin(i * 91.7), cos(i * 13.1), sin(i * 7.3 + 1), cos(i * 3.9 + 2)]::real[],
                     NULL, 'fit_learned_noise') AS e_noise
FROM (SELECT i,
             (SELECT array_agg((0.5 * sin(i * 12.9898 + j * 78.233))::real ORDER BY j) FROM generate_series(1, 128) j) AS o,
             (SELECT array_agg((0.5 * cos(i * 4.1414 + j * 9.71))::real ORDER BY j) FROM generate_series(1, 16) j) AS s
      FROM generate_series(1, 300) i) t;

-- The default mlp learns the map: well below the mean predictor, registered.
SELECT (r->>'val_loss')::float8 < 0.9 * (r->>'baseline_val_loss')::float8 AS below_baseline,
       (r->>'learned')::boolean AS learned, r ? 'transformation_id' AS registered,
       (r->>'epochs')::int > 30 AS more_than_30_epochs,	-- enough steps for 270 training pairs
       (r->>'best_epoch')::int BETWEEN 1 AND (r->>'epochs')::int AS best_epoch_kept,
       jsonb_array_length(r->'val_loss_history') = (r->>'epochs')::int AS history
  FROM (SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_new',
               'SELECT e_old, e_new FROM fit_learned_pairs ORDER BY i') AS r) x;
SELECT (metrics->>'learned')::boolean AS learned_stored FROM fct_transformations
 WHERE to_model = fct_model_id('fit_learned_new');

-- Targets unrelated to the inputs: refused by either method ...
SELECT test_error($$SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_noise',
           'SELECT e_old, e_noise FROM fit_learned_pairs ORDER BY i', 'linear')$$) AS linear;
SELECT test_error($$SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_noise',
           'SELECT e_old, e_noise FROM fit_learned_pairs ORDER BY i', 'mlp', '{"epochs": 5}')$$) AS mlp;
-- The detail gives both losses, the hint the ways out.
\set VERBOSITY default
SELECT left(e, 6) || regexp_replace(substr(e, 7), '[0-9][0-9.e+-]*', 'N', 'g') AS refused
  FROM test_error_detail($$SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_noise',
           'SELECT e_old, e_noise FROM fit_learned_pairs ORDER BY i', 'mlp', '{"epochs": 5}')$$) e;
SELECT count(*) AS not_registered FROM fct_transformations WHERE to_model = fct_model_id('fit_learned_noise');
-- The threshold is options.max_val_ratio (0.9): the same fit is within 1.1
-- times the mean predictor's loss, so a threshold of 1.1 lets it through (the
-- refusal above fails under that setting).
SELECT (r->>'learned')::boolean AS learned_at_ratio_1_1
  FROM (SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_noise',
               'SELECT e_old, e_noise FROM fit_learned_pairs ORDER BY i', 'mlp',
               '{"epochs": 5, "max_val_ratio": 1.1, "register": false}') AS r) x;
-- ... returned for inspection with {"register": false} (learned false) ...
SELECT (r->>'learned')::boolean AS learned, r ? 'spec' AS has_spec
  FROM (SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_noise',
               'SELECT e_old, e_noise FROM fit_learned_pairs ORDER BY i', 'linear', '{"register": false}') AS r) x;
-- ... and registered when the caller insists ({"force": true}), which the metrics record.
SELECT (r->>'learned')::boolean AS learned, r ? 'transformation_id' AS registered,
       r->'options'->'force' AS forced
  FROM (SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_noise',
               'SELECT e_old, e_noise FROM fit_learned_pairs ORDER BY i', 'linear', '{"force": true}') AS r) x;

-- Without a validation split there is nothing to compare: not refused.
SELECT (r->>'learned')::boolean AS learned, r->'val_loss' AS val_loss
  FROM (SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_small',
               'SELECT e_old, fct_embedding(fct_vector(e_noise), NULL, ''fit_learned_small'') FROM fit_learned_pairs ORDER BY i',
               'linear', '{"val_fraction": 0, "register": false}') AS r) x;

-- Bad values of the new options (22023).
SELECT test_error($$SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_small', 'SELECT 1', 'mlp', '{"max_val_ratio": 0}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_small', 'SELECT 1', 'mlp', '{"force": 1}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_learned_old', 'fit_learned_small', 'SELECT 1', 'linear', '{"patience": 3}')$$);
