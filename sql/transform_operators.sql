-- On-the-fly upgrade on read: when the operands of <->, <#>, <=> (and the
-- distance functions) come from different models and a registered path leads
-- from one to the other, the older operand is upgraded first.  The result is
-- exactly fct_upgrade's followed by the distance.
\set VERBOSITY sqlstate

SELECT test_models('transform_operators', 'old 8 4', 'old2 5 4', 'new 6 4', 'other 6 4');

-- A deterministic rows x cols matrix as a json array of rows.
CREATE FUNCTION transform_operators_matrix(nrows int, ncols int, seed float8) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_agg(r ORDER BY i) FROM (
		SELECT i, jsonb_agg(round((sin(i * 7.3 + j * 1.7 + seed) / 2)::numeric, 4) ORDER BY j) AS r
		  FROM generate_series(1, nrows) i, generate_series(1, ncols) j GROUP BY i) s
$$;
CREATE FUNCTION transform_operators_vector(n int, seed float8) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_agg(round((cos(j * 3.1 + seed) / 4)::numeric, 4) ORDER BY j) FROM generate_series(1, n) j
$$;

-- old -> new: the ml-fct shape (old 8->10, side 4->3, mixer 13->7->6).
SELECT fct_register_transformation('transform_operators_old', 'transform_operators_new',
	jsonb_build_object(
		'old', jsonb_build_array(jsonb_build_object(
			'weight', transform_operators_matrix(10, 8, 0.1),
			'bias', transform_operators_vector(10, 0.2),
			'batchnorm', jsonb_build_object('mean', transform_operators_vector(10, 0.3),
				'var', '[1,2,1,2,1,2,1,2,1,2]'::jsonb))),
		'side', jsonb_build_array(jsonb_build_object(
			'weight', transform_operators_matrix(3, 4, 0.4))),
		'mixer', jsonb_build_array(
			jsonb_build_object('weight', transform_operators_matrix(7, 13, 0.5),
				'bias', transform_operators_vector(7, 0.6)),
			jsonb_build_object('weight', transform_operators_matrix(6, 7, 0.7))))) > 0 AS old_new;
-- old2 -> new: a single linear map over [old, side].
SELECT fct_register_transformation('transform_operators_old2', 'transform_operators_new',
	jsonb_build_object('mixer', jsonb_build_array(jsonb_build_object(
		'weight', transform_operators_matrix(6, 9, 0.8))))) > 0 AS old2_new;

-- 300 old rows, 100 old2 rows and 100 new rows, interleaved.
CREATE TABLE transform_operators_items (id integer PRIMARY KEY, e embedding NOT NULL);
INSERT INTO transform_operators_items
SELECT i, CASE
		WHEN i % 5 = 3 THEN fct_embedding(
			(SELECT array_agg(sin(i * 0.37 + j) ORDER BY j) FROM generate_series(1, 5) j)::real[],
			(SELECT array_agg(cos(i * 0.11 + j) ORDER BY j) FROM generate_series(1, 4) j)::real[],
			'transform_operators_old2')
		WHEN i % 5 = 4 THEN fct_embedding(
			(SELECT array_agg(sin(i * 0.23 + 2 * j) ORDER BY j) FROM generate_series(1, 6) j)::real[],
			(SELECT array_agg(cos(i * 0.11 + j) ORDER BY j) FROM generate_series(1, 4) j)::real[],
			'transform_operators_new')
		ELSE fct_embedding(
			(SELECT array_agg(sin(i * 0.51 + j * j) ORDER BY j) FROM generate_series(1, 8) j)::real[],
			(SELECT array_agg(cos(i * 0.11 + j) ORDER BY j) FROM generate_series(1, 4) j)::real[],
			'transform_operators_old')
	END
  FROM generate_series(1, 500) i;
SELECT fct_model(e) AS model, count(*) FROM transform_operators_items GROUP BY 1 ORDER BY 1;

-- A new-model query against every row: each distance equals the explicit
-- upgrade's, exactly, for every operator and function, in both operand orders.
\set q '''transform_operators_new:[0.3,-0.2,0.5,0.1,-0.4,0.25]|[0,0,0,0]'''
SELECT count(*) AS rows,
       count(*) FILTER (WHERE e <-> :q = fct_upgrade(e, 'transform_operators_new') <-> :q
                          AND :q <-> e = :q <-> fct_upgrade(e, 'transform_operators_new')) AS l2_equal,
       count(*) FILTER (WHERE e <#> :q = fct_upgrade(e, 'transform_operators_new') <#> :q
                          AND :q <#> e = :q <#> fct_upgrade(e, 'transform_operators_new')) AS ip_equal,
       count(*) FILTER (WHERE e <=> :q = fct_upgrade(e, 'transform_operators_new') <=> :q
                          AND :q <=> e = :q <=> fct_upgrade(e, 'transform_operators_new')) AS cos_equal,
       count(*) FILTER (WHERE l2_distance(e, :q) = l2_distance(fct_upgrade(e, 'transform_operators_new'), :q)
                          AND inner_product(:q, e) = inner_product(:q, fct_upgrade(e, 'transform_operators_new'))
                          AND cosine_distance(e, :q) = cosine_distance(fct_upgrade(e, 'transform_operators_new'), :q)) AS functions_equal,
       count(DISTINCT e <-> :q) > 400 AS distances_vary
  FROM transform_operators_items;

-- The top 10 of a sequential scan is the top 10 of the explicit upgrade.
SELECT (SELECT array_agg(id) FROM (SELECT id FROM transform_operators_items
                                    ORDER BY e <-> :q, id LIMIT 10) a)
     = (SELECT array_agg(id) FROM (SELECT id FROM transform_operators_items
                                    ORDER BY fct_upgrade(e, 'transform_operators_new') <-> :q, id LIMIT 10) b)
       AS same_top10,
       (SELECT count(*) FROM (SELECT e FROM transform_operators_items
                                    ORDER BY e <-> :q, id LIMIT 10) c
         WHERE fct_model(e) <> 'transform_operators_new') > 0 AS old_rows_compete;

-- The other way round: an old query against new rows upgrades the query.
\set q_old '''transform_operators_old:[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]|[1,0,0,1]'''
SELECT count(*) AS new_rows,
       count(*) FILTER (WHERE :q_old <-> e = fct_upgrade(:q_old, 'transform_operators_new') <-> e
                          AND e <#> :q_old = e <#> fct_upgrade(:q_old, 'transform_operators_new')) AS equal
  FROM transform_operators_items WHERE fct_model(e) = 'transform_operators_new';

-- Two old models with no path between them, and a model with no path at all:
-- errors (22000) that say how to fix it.
SELECT :q_old <-> e FROM transform_operators_items WHERE fct_model(e) = 'transform_operators_old2' LIMIT 1;
SELECT e <-> 'transform_operators_other:[1,2,3,4,5,6]|[0,0,0,0]' FROM transform_operators_items LIMIT 1;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT 'transform_operators_other:[1,2,3,4,5,6]|[0,0,0,0]'::embedding <=> :q;
\set VERBOSITY sqlstate

-- A bare literal (no model) is still taken to be in the other operand's space.
SELECT 'transform_operators_new:[1,0,0,0,0,0]|[0,0,0,0]'::embedding <-> '[0,0,0,0,0,0]' AS bare;

DROP TABLE transform_operators_items;
DROP FUNCTION transform_operators_matrix(int, int, float8);
DROP FUNCTION transform_operators_vector(int, float8);
