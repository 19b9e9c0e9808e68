-- Registering transformations: specs, shape checks, the upgrade graph's
-- rules (no duplicate, no cycle, no second path), immutability, privileges.
\set VERBOSITY sqlstate

-- Errors as "SQLSTATE: message | detail | hint", so that each line shows
-- what matters and nothing brittle.
CREATE FUNCTION transform_register_try(f text, t text, spec jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	msg text; det text; hnt text;
BEGIN
	RETURN 'registered: ' || (fct_register_transformation(f, t, spec) > 0);
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || msg
		|| CASE WHEN det <> '' THEN ' | ' || det ELSE '' END
		|| CASE WHEN hnt <> '' THEN ' | hint: ' || hnt ELSE '' END;
END
$$;

SELECT test_models('transform_register', 'v1 2 1', 'v2 3 1', 'v3 2 1', 'v4 2', 'v5 2 4', 'w 2 1', 'z 2');

-- The smallest spec: one linear map over [old, side] (3 x (2 + 1)).
SELECT transform_register_try('transform_register_v1', 'transform_register_v2',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0],[0,0,1]]}]}');
SELECT f.name AS from_model, t.name AS to_model, x.architecture, x.origin,
       x.metrics, x.created_at <= now() AS created_in_past,
       length(x.weights) AS weight_bytes	-- 36 header + 12 layer header + 4 * (9 + 3)
  FROM fct_transformations x
  JOIN fct_models f ON f.id = x.from_model
  JOIN fct_models t ON t.id = x.to_model
 WHERE f.name LIKE 'transform_register%';

-- A branch on the old vector with BatchNorm, a side branch, a two-layer mixer.
SELECT transform_register_try('transform_register_v2', 'transform_register_v3', '{
  "old":  [{"weight": [[1,0,0],[0,1,0],[0,0,1],[1,1,1]], "bias": [0,0,0,1],
            "batchnorm": {"mean": [0,0,0,0], "var": [1,1,1,1]}}],
  "side": [{"weight": [[1],[2]], "activation": "none"}],
  "mixer": [{"weight": [[1,0,0,0,0,0],[0,1,0,0,0,0],[0,0,1,0,0,0],[0,0,0,1,0,0],[0,0,0,0,1,0]]},
            {"weight": [[1,1,1,1,1],[0,0,0,0,1]], "bias": [0,0]}]}');
-- Without the side-information ("side": null), into a model that has none.
SELECT transform_register_try('transform_register_v3', 'transform_register_v4',
	'{"side": null, "mixer": [{"weight": [[1,0],[0,1]], "activation": "none"}]}');
SELECT f.name AS from_model, t.name AS to_model, x.architecture
  FROM fct_transformations x
  JOIN fct_models f ON f.id = x.from_model
  JOIN fct_models t ON t.id = x.to_model
 WHERE f.name LIKE 'transform_register%' ORDER BY x.id;

-- Shape errors name the layer, the expected and the actual shape.
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0],[0,1]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"side": null, "mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0],[0,0,1]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"old": [{"weight": [[1,0,0],[0,1,0]]}], "mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"old": [{"weight": [[1,0],[0,1]]}, {"weight": [[1,0,0]]}], "mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"side": [{"weight": [[1,0]]}], "mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"side": [{"weight": [[1],[1]]}], "mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}, {"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]], "bias": [1,2,3]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]], "batchnorm": {"mean": [0,0], "var": [1]}}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]], "batchnorm": {"mean": [0,0], "var": [1,-1]}}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]], "batchnorm": {"var": [1,1]}}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]], "batchnorm": {"mean": [0,0], "var": [1,1], "momentum": 0.1}}]}');
-- A model without side-information cannot feed a side branch.
SELECT transform_register_try('transform_register_v4', 'transform_register_z',
	'{"side": [{"weight": [[1]]}], "mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');

-- Malformed specs.
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '[]');
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '3');
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '{}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '{"mixer": []}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '{"mixer": {}}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}], "mix": []}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '{"mixer": [{}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '{"mixer": [[1,0,0]]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1', '{"mixer": [{"weight": []}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,"0",0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,1e39]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]], "activation": "tanh"}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]], "dropout": 0.5}]}');

-- Models: unknown (42704), the same twice, side-information that cannot be kept.
SELECT transform_register_try('transform_register_nope', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_nope',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_w',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_w', 'transform_register_v5',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');

-- The upgrade graph: one transformation per pair (42710), no cycle and no
-- second path between two models (42P17): either would change fct_upgrade.
SELECT transform_register_try('transform_register_v1', 'transform_register_v2',
	'{"mixer": [{"weight": [[2,0,0],[0,2,0],[0,0,2]]}]}');
SELECT transform_register_try('transform_register_v3', 'transform_register_v1',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_v1', 'transform_register_v3',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT transform_register_try('transform_register_v1', 'transform_register_v4',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
-- A second old model into the same new one is fine (no two paths between
-- the same two models) ...
SELECT transform_register_try('transform_register_w', 'transform_register_v2',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0],[0,0,1]]}]}');
-- ... but then w reaches v3 and v4 through v2.
SELECT transform_register_try('transform_register_w', 'transform_register_v3',
	'{"mixer": [{"weight": [[1,0,0],[0,1,0]]}]}');
SELECT fct_upgrade_path('transform_register_w', 'transform_register_v4') AS w_to_v4,
       fct_upgrade_path('transform_register_v1', 'transform_register_v4') AS v1_to_v4,
       fct_upgrade_path('transform_register_v1', 'transform_register_v1') AS v1_to_v1,
       fct_upgrade_path('transform_register_v4', 'transform_register_v1') IS NULL AS v4_to_v1_none,
       fct_upgrade_path('transform_register_v1', 'transform_register_w') IS NULL AS v1_to_w_none;
SELECT count(*) AS registered FROM fct_transformations x
  JOIN fct_models f ON f.id = x.from_model WHERE f.name LIKE 'transform_register%';

-- Registered transformations are immutable, even for their owner (0A000).
UPDATE fct_transformations SET metrics = '{}'
 WHERE from_model = (SELECT id FROM fct_models WHERE name = 'transform_register_v1');
DELETE FROM fct_transformations
 WHERE from_model = (SELECT id FROM fct_models WHERE name = 'transform_register_v1');
TRUNCATE fct_transformations;
\set VERBOSITY default
\set SHOW_CONTEXT never
DELETE FROM fct_transformations
 WHERE from_model = (SELECT id FROM fct_models WHERE name = 'transform_register_v1');
\set VERBOSITY sqlstate
SELECT count(*) AS still_registered FROM fct_transformations x
  JOIN fct_models f ON f.id = x.from_model WHERE f.name LIKE 'transform_register%';

-- Nor can the owner insert a row around registration's graph checks (0A000):
-- here the reverse of v1 -> v2, which would close a cycle.
INSERT INTO fct_transformations (from_model, to_model, architecture, weights, origin)
SELECT to_model, from_model, architecture, weights, origin FROM fct_transformations
 WHERE from_model = fct_model_id('transform_register_v1')
   AND to_model = fct_model_id('transform_register_v2');
\set VERBOSITY default
INSERT INTO fct_transformations (from_model, to_model, architecture, weights, origin)
SELECT to_model, from_model, architecture, weights, origin FROM fct_transformations
 WHERE from_model = fct_model_id('transform_register_v1')
   AND to_model = fct_model_id('transform_register_v2');
\set VERBOSITY sqlstate
SELECT fct_upgrade_path('transform_register_v2', 'transform_register_v1') IS NULL AS still_no_cycle;

-- Privileges: like fct_register_model, registering needs EXECUTE, which
-- PUBLIC does not have; a granted role registers through the function, and
-- still cannot write the table directly.
CREATE ROLE transform_register_role;
SELECT test_models('transform_register', 'p1 2', 'p2 2');
SET ROLE transform_register_role;
SELECT fct_register_transformation('transform_register_p1', 'transform_register_p2',
	'{"mixer": [{"weight": [[1,0],[0,1]]}]}');
RESET ROLE;
GRANT EXECUTE ON FUNCTION fct_register_transformation(text, text, jsonb) TO transform_register_role;
SET ROLE transform_register_role;
SELECT fct_register_transformation('transform_register_p1', 'transform_register_p2',
	'{"mixer": [{"weight": [[1,0],[0,1]]}]}') > 0 AS registered;
INSERT INTO fct_transformations (from_model, to_model, architecture, weights, origin)
	SELECT to_model, from_model, architecture, weights, origin FROM fct_transformations LIMIT 1;
SELECT count(*) > 0 AS can_read FROM fct_transformations;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION fct_register_transformation(text, text, jsonb) FROM transform_register_role;
DROP ROLE transform_register_role;

-- Rolled back registrations leave no trace, and the cache forgets them.
SELECT test_models('transform_register', 'q1 2', 'q2 2');
BEGIN;
SELECT fct_register_transformation('transform_register_q1', 'transform_register_q2',
	'{"mixer": [{"weight": [[1,0],[0,1]]}]}') > 0 AS registered;
SELECT fct_upgrade_path('transform_register_q1', 'transform_register_q2') AS in_transaction;
ROLLBACK;
SELECT fct_upgrade_path('transform_register_q1', 'transform_register_q2') IS NULL AS gone;
SELECT fct_register_transformation('transform_register_q1', 'transform_register_q2',
	'{"mixer": [{"weight": [[2,0],[0,2]]}]}') > 0 AS registered_again;
SELECT fct_upgrade_path('transform_register_q1', 'transform_register_q2') AS after_commit;

DROP FUNCTION transform_register_try(text, text, jsonb);
