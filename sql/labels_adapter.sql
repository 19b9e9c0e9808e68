-- The prior adapter: round history, fitting (reproducible), prediction,
-- installing the prediction; errors (empty history, bad rounds, size limit).

SELECT test_label_set('labels_adapter');

-- No history, or a single round: nothing to learn from.
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s')$$);
INSERT INTO fct_label_rounds (label_set, round, accuracies, proportions)
	VALUES ('labels_adapter_s', 1, '{0.9,0.6,0.3}', '{0.3,0.3,0.4}');
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s')$$);
-- and no adapter to predict with
SELECT test_error($$SELECT fct_predict_prior('labels_adapter_s', '{0.5,0.5,0.5}')$$);

-- A performative history: the proportions of round r + 1 are
-- softmax(-accuracies(r) / 0.2) (weak labels grow), and the accuracies of
-- each round move with the proportions.
DELETE FROM fct_label_rounds WHERE label_set = 'labels_adapter_s';
CREATE FUNCTION labels_adapter_next(acc real[]) RETURNS real[] LANGUAGE sql AS $$
	SELECT array_agg((exp(-a / 0.2) / (SELECT sum(exp(-b / 0.2)) FROM unnest(acc) b))::real ORDER BY o)
	  FROM unnest(acc) WITH ORDINALITY u(a, o)
$$;
INSERT INTO fct_label_rounds (label_set, round, accuracies, proportions)
SELECT 'labels_adapter_s', r,
	   ARRAY[0.9 - 0.03 * r, 0.6 + 0.02 * r, 0.3 + 0.04 * r]::real[],
	   CASE WHEN r = 1 THEN '{0.3,0.3,0.4}'::real[]
			ELSE labels_adapter_next(ARRAY[0.9 - 0.03 * (r - 1), 0.6 + 0.02 * (r - 1), 0.3 + 0.04 * (r - 1)]::real[]) END
  FROM generate_series(1, 8) r;
SELECT round, accuracies, proportions FROM fct_label_rounds WHERE label_set = 'labels_adapter_s' ORDER BY round;

-- Fit: 7 pairs (round r, round r + 1); the weighted KL loss is small.
SELECT fct_fit_prior_adapter('labels_adapter_s', epochs => 300, seed => 42) < 0.001 AS small_loss;
SELECT n_labels, hidden, epochs, lr, seed, recency, n_pairs, array_length(weights, 1) AS n_weights,
	   3 * 256 + 256 + 256 * 256 + 256 + 256 * 3 + 3 AS expected_n_weights
  FROM fct_prior_adapters WHERE label_set = 'labels_adapter_s';
-- The prediction for the last round's accuracies is the next round's
-- softmax(-acc / 0.2), within 0.02 per label, and a valid prior.
SELECT bool_and(abs(p[i] - t[i]) < 0.02) AS close, round(sum(p[i])::numeric, 4) AS total, bool_and(p[i] > 0) AS positive
  FROM (SELECT fct_predict_prior('labels_adapter_s', '{0.66,0.76,0.62}') AS p,
			   labels_adapter_next('{0.66,0.76,0.62}') AS t) s, generate_series(1, 3) i;

-- Another session predicts from the stored weights (it used to read them from
-- memory that SPI_finish had freed: signal 11 in a fresh backend).
\c -
SELECT bool_and(abs(p[i] - t[i]) < 0.02) AS close, round(sum(p[i])::numeric, 4) AS total
  FROM (SELECT fct_predict_prior('labels_adapter_s', '{0.66,0.76,0.62}') AS p,
			   labels_adapter_next('{0.66,0.76,0.62}') AS t) s, generate_series(1, 3) i;

-- Reproducible: the same seed gives the same weights, another seed others.
CREATE TABLE labels_adapter_w AS SELECT weights FROM fct_prior_adapters WHERE label_set = 'labels_adapter_s';
SELECT fct_fit_prior_adapter('labels_adapter_s', epochs => 300, seed => 42) IS NOT NULL;
SELECT a.weights = w.weights AS same_weights
  FROM fct_prior_adapters a, labels_adapter_w w WHERE a.label_set = 'labels_adapter_s';
SELECT fct_fit_prior_adapter('labels_adapter_s', epochs => 300, seed => 7) IS NOT NULL;
SELECT a.weights = w.weights AS same_weights
  FROM fct_prior_adapters a, labels_adapter_w w WHERE a.label_set = 'labels_adapter_s';
-- a smaller adapter
SELECT fct_fit_prior_adapter('labels_adapter_s', hidden => 16, epochs => 500, lr => 0.01) < 0.01 AS small_loss;
SELECT hidden, array_length(weights, 1) AS n_weights FROM fct_prior_adapters WHERE label_set = 'labels_adapter_s';

-- Install the prediction as the prior used for correction.
SELECT array_length(fct_set_prior('labels_adapter_s',
	fct_predict_prior('labels_adapter_s', '{0.66,0.76,0.62}'), 'adapter'), 1);
SELECT prior_source FROM fct_label_sets WHERE name = 'labels_adapter_s';

-- Gaps in the history: only consecutive rounds pair up.
DELETE FROM fct_label_rounds WHERE label_set = 'labels_adapter_s' AND round IN (3, 6);
SELECT fct_fit_prior_adapter('labels_adapter_s', epochs => 10) IS NOT NULL;
SELECT n_pairs FROM fct_prior_adapters WHERE label_set = 'labels_adapter_s';

-- Errors.
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_nope')$$);
SELECT test_error($$SELECT fct_predict_prior('labels_adapter_nope', '{0.5}')$$);
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s', hidden => 0)$$);
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s', epochs => 0)$$);
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s', lr => 0)$$);
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s', recency => 0)$$);
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s', recency => 1.5)$$);
SELECT test_error($$SELECT fct_predict_prior('labels_adapter_s', '{0.5,0.5}')$$);
SELECT test_error($$SELECT fct_predict_prior('labels_adapter_s', '{0.5,1.5,0.5}')$$);
SELECT test_error($$SELECT fct_predict_prior('labels_adapter_s', '{0.5,NULL,0.5}')$$);
-- bad rounds are named
INSERT INTO fct_label_rounds VALUES ('labels_adapter_s', 20, '{0.5,0.5}', '{0.3,0.3,0.4}');
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s')$$);
UPDATE fct_label_rounds SET accuracies = '{0.5,0.5,0.5}', proportions = '{0.5,0.5,0.5}'
 WHERE label_set = 'labels_adapter_s' AND round = 20;
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s')$$);
UPDATE fct_label_rounds SET proportions = '{0.5,0.6,-0.1}'
 WHERE label_set = 'labels_adapter_s' AND round = 20;
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s')$$);
DELETE FROM fct_label_rounds WHERE label_set = 'labels_adapter_s' AND round = 20;
-- an adapter fitted before the labels changed no longer applies: the refresh
-- drops it (and keeps the rounds, which the user owns)
INSERT INTO labels_adapter_t VALUES (4, '[2,2]');
SELECT fct_refresh_label_set('labels_adapter_s');
SELECT count(*) FROM fct_prior_adapters WHERE label_set = 'labels_adapter_s';
SELECT test_error($$SELECT fct_predict_prior('labels_adapter_s', '{0.5,0.5,0.5,0.5}')$$);
SELECT test_error($$SELECT fct_fit_prior_adapter('labels_adapter_s')$$);

-- Above 10000 labels the adapter is refused, pointing to EM.
CREATE TABLE labels_adapter_big (id int, e embedding);
INSERT INTO labels_adapter_big SELECT i, ARRAY[i]::real[]::embedding FROM generate_series(1, 10001) i;
SELECT fct_create_label_set('labels_adapter_b', 'labels_adapter_big', 'id', 'e');
\set VERBOSITY default
SELECT fct_fit_prior_adapter('labels_adapter_b');
SELECT test_error($$SELECT fct_predict_prior('labels_adapter_b', array_fill(0.5::real, ARRAY[10001]))$$);

-- dropping a set drops its rounds and adapter
SELECT fct_drop_label_set('labels_adapter_s'), fct_drop_label_set('labels_adapter_b');
SELECT count(*) FROM fct_label_rounds WHERE label_set = 'labels_adapter_s';
