-- 45_fit.sql: fitting a transformation inside the database.
--
-- fct_fit_transformation(from_model, to_model, pairs_query, method, options)
-- reads the pairs (old embedding with its side-information, new embedding of
-- the same item) that pairs_query returns, fits h(old, side) ~ new, registers
-- the result as a transformation with origin 'fitted' and its training
-- metrics (see 40_transform.sql), and returns the metrics as jsonb.
--
-- Not SECURITY DEFINER: pairs_query runs with the caller's rights, so it can
-- read exactly what the caller can read.  Registering needs the privilege to
-- execute fct_register_transformation, which is checked before any work;
-- anyone may fit with {"register": false}, which registers nothing and
-- returns the spec (so EXECUTE stays granted to PUBLIC).
--
-- Methods: 'linear' (closed-form ridge regression on [old, side], LAPACK) and
-- 'mlp' (old branch and side branch Linear+ReLU, concatenated, mixer MLP;
-- Adam on mean squared error, seeded).  Options (jsonb, all optional):
--   use_side      true        false leaves the side-information out
--   val_fraction  0.1         share of the pairs held out for validation
--   max_pairs     1000000     read at most this many pairs (the first ones)
--   register      true        false: fit, return the spec, register nothing
--   max_val_ratio 0.9         refuse (22023) unless val_loss < max_val_ratio x the
--                             loss of predicting the training mean
--   force         false       true: register even a fit that learned nothing
--   lambda        0.001       linear: ridge penalty (the bias is not penalised)
--   epochs        auto        mlp: 30, or more for 3000 optimiser steps
--   patience      auto        mlp: early stopping, max(10, epochs / 10)
--   lr            0.001       mlp: Adam's learning rate
--   batch_size    128         mlp
--   old_hidden    128         mlp: width of the old branch
--   side_hidden   32          mlp: width of the side branch
--   mixer_hidden  [128]       mlp: widths of the mixer's hidden layers
--   seed          42          mlp and the split: same seed, same result
-- Memory: everything it holds (pairs, model, buffers) stays within
-- maintenance_work_mem; the error names the numbers and the way out.
CREATE FUNCTION fct_fit_transformation(from_model text, to_model text,
									   pairs_query text,
									   method text DEFAULT 'mlp',
									   options jsonb DEFAULT '{}')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'fct_fit_transformation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION fct_fit_transformation(text, text, text, text, jsonb) IS
	'fit a transformation from_model -> to_model on the pairs a query returns (linear ridge or mlp), register it, return the training metrics';
