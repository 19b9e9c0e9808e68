-- fct_top_labels: scores, softmax and the prior correction against values
-- computed by hand; the exact and index paths; the cache; errors.

-- Three labels; for q = [1,2] the scores <label, q> + bias are 1, 2 and 3.
SELECT test_label_set('labels_top', with_bias => true);

-- Softmax of (1, 2, 3): e^s / (e^1 + e^2 + e^3) = 0.0900, 0.2447, 0.6652.
SELECT label, score, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]');
SELECT round(exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0)), 4) AS p3,
	   round(exp(2.0) / (exp(1.0) + exp(2.0) + exp(3.0)), 4) AS p2,
	   round(exp(1.0) / (exp(1.0) + exp(2.0) + exp(3.0)), 4) AS p1;
-- No predicted prior yet: corrected or not, the same.
SELECT label, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]', 3, false);
-- The bias adds to the score: bias 1 on label 1 makes its score 2.
UPDATE labels_top_t SET b = 1 WHERE id = 1;
SELECT label, score, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]');
UPDATE labels_top_t SET b = 0 WHERE id = 1;

-- The Bayes correction on a 3-class example.  p_train = (0.5, 0.25, 0.25),
-- p_pred = (0.2, 0.3, 0.5): weights p_pred / p_train = (0.4, 1.2, 2.0);
-- 0.0900 * 0.4 = 0.0360, 0.2447 * 1.2 = 0.2936, 0.6652 * 2.0 = 1.3305, sum 1.6601:
-- corrected probabilities 0.0217, 0.1769, 0.8014.
SELECT fct_set_train_prior('labels_top_s', '{0.5,0.25,0.25}');
SELECT fct_set_prior('labels_top_s', '{0.2,0.3,0.5}');
SELECT prior, prior_source FROM fct_label_sets WHERE name = 'labels_top_s';
SELECT label, score, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]');
SELECT round(w1 / (w1 + w2 + w3), 4) AS p1, round(w2 / (w1 + w2 + w3), 4) AS p2,
	   round(w3 / (w1 + w2 + w3), 4) AS p3
  FROM (SELECT exp(1.0) * 0.4 AS w1, exp(2.0) * 1.2 AS w2, exp(3.0) * 2.0 AS w3) w;
-- corrected => false ignores the predicted prior
SELECT label, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]', 3, false);
-- the correction can change the top label: p_pred favouring label 1
SELECT fct_set_prior('labels_top_s', '{0.98,0.01,0.01}', 'test');
SELECT label, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]', 1);
-- removing the prior
SELECT fct_set_prior('labels_top_s', NULL);
SELECT prior, prior_source FROM fct_label_sets WHERE name = 'labels_top_s';
SELECT label, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]', 1);

-- k: fewer rows, or all of them; ties keep the label order.
SELECT label, score FROM fct_top_labels('labels_top_s', '[1,2]', 1);
SELECT count(*) FROM fct_top_labels('labels_top_s', '[1,2]', 100);
SELECT label, score, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,1]');
SELECT test_error($$SELECT * FROM fct_top_labels('labels_top_s', '[1,2]', 0)$$);

-- The index path: ORDER BY e <#> q LIMIT max(k, fct.label_candidates), then
-- the softmax over those candidates only (the sampled softmax).  With 2
-- candidates for q = [1,2]: labels 3 and 2, e^3 / (e^2 + e^3) = 0.7311.
SET fct.label_search = index;
SET fct.label_candidates = 2;
SELECT label, score, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]', 2);
SELECT round(exp(3.0) / (exp(2.0) + exp(3.0)), 4) AS p3, round(exp(2.0) / (exp(2.0) + exp(3.0)), 4) AS p2;
-- k above the candidate count fetches k candidates: the full softmax again
SELECT label, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]', 3);
-- with the correction (p_pred of labels 2 and 3: 0.3 and 0.5, p_train 0.25 each):
-- e^2 * 1.2 : e^3 * 2.0 = 8.867 : 40.171, i.e. 0.1808 : 0.8192
SELECT fct_set_prior('labels_top_s', '{0.2,0.3,0.5}');
SELECT label, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]', 2);
SELECT round(exp(2.0) * 1.2 / (exp(2.0) * 1.2 + exp(3.0) * 2.0), 4) AS p2;
-- the index path and the exact path agree when every label is a candidate
SET fct.label_candidates = 100;
SELECT count(*) AS differences FROM (
	(SELECT label, round(prob::numeric, 6) FROM fct_top_labels('labels_top_s', '[0.3,-1.5]'))
	EXCEPT
	(SELECT label, round(prob::numeric, 6) FROM (SELECT set_config('fct.label_search', 'exact', true)) s,
		 LATERAL fct_top_labels('labels_top_s', '[0.3,-1.5]'))) d;
RESET fct.label_search;
RESET fct.label_candidates;

-- The cache follows the label table, in the same transaction and after a rollback.
BEGIN;
UPDATE labels_top_t SET e = '[5,5]' WHERE id = 1;
SELECT label, score FROM fct_top_labels('labels_top_s', '[1,2]', 1, false);
ROLLBACK;
SELECT label, score FROM fct_top_labels('labels_top_s', '[1,2]', 1, false);
-- fct.label_cache = off reads the set on every call, with the same results
SET fct.label_cache = off;
SELECT label, score, round(prob::numeric, 4) AS prob FROM fct_top_labels('labels_top_s', '[1,2]');
RESET fct.label_cache;

-- Errors: unknown set, dimension mismatch, model mismatch.
SELECT test_error($$SELECT * FROM fct_top_labels('labels_top_nope', '[1,2]')$$);
SELECT test_error($$SELECT * FROM fct_top_labels('labels_top_s', '[1,2,3]')$$);
SELECT test_models('labels_top', 'm1 2', 'm2 2');
CREATE TABLE labels_top_m (id int, e embedding);
INSERT INTO labels_top_m VALUES (1, 'labels_top_m1:[1,0]'), (2, 'labels_top_m1:[0,1]');
SELECT fct_create_label_set('labels_top_ms', 'labels_top_m', 'id', 'e');
SELECT test_error($$SELECT * FROM fct_top_labels('labels_top_ms', 'labels_top_m2:[1,2]')$$);
SELECT test_error($$SELECT * FROM fct_top_labels('labels_top_ms', 'labels_top_m1:[1,2,3]')$$);
-- a query of the labels' model, or one that names no model, is scored
SELECT label, score FROM fct_top_labels('labels_top_ms', 'labels_top_m1:[1,2]', 1);
SELECT label, score FROM fct_top_labels('labels_top_ms', '[1,2]', 1);
SET fct.label_search = index;
SELECT test_error($$SELECT * FROM fct_top_labels('labels_top_ms', 'labels_top_m2:[1,2]')$$);
RESET fct.label_search;
-- a bias that became null
UPDATE labels_top_t SET b = NULL WHERE id = 2;
SELECT test_error($$SELECT * FROM fct_top_labels('labels_top_s', '[1,2]')$$);

SELECT fct_drop_label_set('labels_top_s'), fct_drop_label_set('labels_top_ms');
