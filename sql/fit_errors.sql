-- fit_errors: every error of fct_fit_transformation, with its SQLSTATE.
SELECT test_models('fit_errors', 'old 2 1', 'new 2', 'wide 1000');

CREATE TABLE fit_errors_pairs (id int, e_old embedding, e_new embedding);
INSERT INTO fit_errors_pairs
SELECT i, fct_embedding(ARRAY[sin(i), cos(i)]::real[], ARRAY[sin(2 * i)]::real[], 'fit_errors_old'),
	   fct_embedding(ARRAY[cos(i), sin(3 * i)]::real[], NULL, 'fit_errors_new')
FROM generate_series(1, 50) AS i;

-- run a statement, report its SQLSTATE, message, detail and hint

-- the baseline: the well-formed call works
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear', '{"register": false}')$$);
-- the pairs query must be one read-only SELECT (42601 or 0A000, its first
-- words in the detail), not what SPI says of its read-only cursor
SELECT test_error_detail($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'DELETE FROM fit_errors_pairs RETURNING e_old, e_new', 'linear', '{"register": false}')$$);
SELECT test_error_detail($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'', 'linear', '{"register": false}')$$);
SELECT test_error_detail($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs; SELECT 1', 'linear', '{"register": false}')$$);
SELECT test_error_detail($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'WITH d AS (DELETE FROM fit_errors_pairs RETURNING *) SELECT e_old, e_new FROM d', 'linear', '{"register": false}')$$);
SELECT count(*) AS pairs_left FROM fit_errors_pairs;

-- unknown models, the same model twice
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_nope', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear', '{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_nope',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear', '{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_old',
	'SELECT e_old, e_old FROM fit_errors_pairs', 'linear', '{"register": false}')$$);

-- a target whose side-information dimension is neither the source's nor 0:
-- refused before the query runs (it would divide by zero)
SELECT test_models('fit_errors', 'side3 2 3');
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_side3',
	'SELECT 1 / 0', 'linear')$$);

-- nulls among the arguments
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	NULL, 'linear', '{"register": false}')$$);

-- unknown method; unknown, misplaced and malformed options
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'svd', '{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '{"epochz": 3}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear', '{"epochs": 3}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '{"lambda": 1}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '{"lr": -1}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '{"epochs": 2.5}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '{"use_side": "yes"}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '{"mixer_hidden": 64}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '{"val_fraction": 0.95}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'mlp', '[1, 2]')$$);

-- a query with the wrong columns or types
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old FROM fit_errors_pairs', 'linear', '{"register": false}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new, id FROM fit_errors_pairs', 'linear', '{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, id FROM fit_errors_pairs', 'linear', '{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old::text, e_new FROM fit_errors_pairs', 'linear', '{"register": false}')$$);
-- not a query, a statement that returns no rows, a syntax error
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'CREATE TABLE fit_errors_t (x int)', 'linear', '{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'DELETE FROM fit_errors_pairs RETURNING e_old, e_new', 'linear', '{"register": false}')$$);
SELECT count(*) AS still_50 FROM fit_errors_pairs;
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELEKT e_old, e_new FROM fit_errors_pairs', 'linear', '{"register": false}')$$);

-- embeddings of the wrong model: columns swapped, an embedding of no model,
-- an embedding of another model with other dimensions
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_new, e_old FROM fit_errors_pairs', 'linear', '{"register": false}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, fct_embedding(fct_vector(e_new)) FROM fit_errors_pairs', 'linear',
	'{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, CASE WHEN id = 7 THEN fct_embedding(array_fill(0::real, ARRAY[1000]), NULL, ''fit_errors_wide'') ELSE e_new END FROM fit_errors_pairs ORDER BY id',
	'linear', '{"register": false}')$$);

-- wrong dimensions: an old embedding without its side-information, when the
-- fit uses it
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT fct_embedding(fct_vector(e_old), NULL, ''fit_errors_old''), e_new FROM fit_errors_pairs',
	'linear', '{"register": false}')$$);

-- a null embedding
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, CASE WHEN id = 3 THEN NULL ELSE e_new END FROM fit_errors_pairs ORDER BY id',
	'linear', '{"register": false}')$$, true);

-- NaN cannot reach the fit: the embedding type refuses it where the query builds it
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, fct_embedding(ARRAY[''NaN'', 1]::real[], NULL, ''fit_errors_new'') FROM fit_errors_pairs',
	'linear', '{"register": false}')$$);

-- too few pairs: none, one, and two with a validation split that leaves one
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs WHERE false', 'linear', '{"register": false}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs LIMIT 2', 'mlp', '{"register": false}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs LIMIT 2', 'mlp',
	'{"register": false, "val_fraction": 0, "epochs": 1}')$$);
-- max_pairs reads only the first pairs, which may then be too few
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear',
	'{"register": false, "max_pairs": 1}')$$);
SELECT r->'n_pairs' AS n_pairs, r->'pairs_truncated' AS truncated
FROM fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear',
	'{"register": false, "max_pairs": 20}') AS r;

-- singular normal equations: identical rows and no ridge penalty
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs, generate_series(1, 4) WHERE id = 1', 'linear',
	'{"register": false, "lambda": 0, "val_fraction": 0}')$$, true);

-- the memory bound: the model alone (normal equations of a 1000-wide input),
-- then the pairs as they arrive
SET maintenance_work_mem = '1MB';
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_wide', 'fit_errors_new',
	'SELECT e_new, e_new FROM fit_errors_pairs', 'linear', '{"register": false}')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs, generate_series(1, 2000)', 'linear',
	'{"register": false}')$$, true);
-- within the bound once max_pairs caps the read
SELECT r->'n_pairs' AS n_pairs, r->'pairs_truncated' AS truncated
FROM fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs, generate_series(1, 2000)', 'linear',
	'{"register": false, "max_pairs": 40000}') AS r;
RESET maintenance_work_mem;

-- interruptible: a statement timeout stops a long fit
SET statement_timeout = '300ms';
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs, generate_series(1, 100)', 'mlp',
	'{"register": false, "epochs": 100000}')$$);
RESET statement_timeout;

-- the caller's rights: the pairs query reads only what the caller may read,
-- and registering needs the privilege to register transformations
CREATE ROLE regress_fit_errors_user;
GRANT SELECT ON fit_errors_pairs TO regress_fit_errors_user;
CREATE TABLE fit_errors_secret AS SELECT * FROM fit_errors_pairs;
SET ROLE regress_fit_errors_user;
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_secret', 'linear', '{"register": false}')$$);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear')$$, true);
SELECT test_error($$SELECT fct_fit_transformation('fit_errors_old', 'fit_errors_new',
	'SELECT e_old, e_new FROM fit_errors_pairs', 'linear', '{"register": false}')$$);
RESET ROLE;
DROP TABLE fit_errors_secret;
REVOKE SELECT ON fit_errors_pairs FROM regress_fit_errors_user;
DROP ROLE regress_fit_errors_user;
