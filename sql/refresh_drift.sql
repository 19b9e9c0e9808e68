-- fct_drift(a, b) = ||a - b|| / ||a|| on the vector part.
SELECT fct_drift('[3,4]', '[3,4]') AS same,
       fct_drift('[3,4]', '[0,0]') AS to_zero,
       fct_drift('[3,4]', '[6,8]') AS doubled,
       fct_drift('[1,0]', '[1,0.25]') AS quarter;
-- relative to the first argument: not symmetric
SELECT fct_drift('[3,4]', '[6,8]') AS from_small, fct_drift('[6,8]', '[3,4]') AS from_large;
-- a zero first argument: 0 if the second is zero too, +infinity otherwise
SELECT fct_drift('[0,0]', '[0,0]') AS zero_zero,
       fct_drift('[0,0]', '[0,0.001]') AS zero_moved;
-- side-information is not part of the drift
SELECT fct_drift('[1,0]|[5]', '[1,0]|[7]') AS side_only;
-- strict
SELECT fct_drift(NULL, '[1]') IS NULL AS null_in_null_out;


-- different dimensions or models: 22000
SELECT test_error($$SELECT fct_drift('[1,2]', '[1,2,3]')$$);
SELECT test_models('refresh_drift', 'm 2');
SELECT test_error($$SELECT fct_drift('refresh_drift_m:[1,2]', '[1,2]')$$);
SELECT fct_drift('refresh_drift_m:[1,2]', 'refresh_drift_m:[1,2.5]') AS same_model;
