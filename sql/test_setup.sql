-- Fixtures shared by every pg_regress test; test/run runs this file first
-- (as PostgreSQL's own suite runs its test_setup), so any single test can run alone.
--
-- test_error(stmt): 'ok' when stmt runs, else 'SQLSTATE: message', so that a test
-- shows the error code a user would get and carries on.  With with_detail, the
-- DETAIL and HINT lines follow when the error has them.  test_error_detail(stmt)
-- is the same with with_detail.
CREATE FUNCTION test_error(stmt text, with_detail boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_detail text;
	v_hint text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS OR query_canceled THEN
	GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
	IF with_detail THEN
		RETURN SQLSTATE || ': ' || SQLERRM
			|| coalesce(E'\nDETAIL: ' || nullif(v_detail, ''), '')
			|| coalesce(E'\nHINT: ' || nullif(v_hint, ''), '');
	END IF;
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE FUNCTION test_error_detail(stmt text) RETURNS text
LANGUAGE sql AS $$ SELECT test_error(stmt, true) $$;

-- Models, transformations and label sets for a test, named with the test's own
-- prefix (prefix_NAME), so that the setup of a test reads as one line and the
-- tests do not see each other's objects.
--
-- test_models(prefix, VARIADIC models): registers prefix_NAME for each model
-- written 'NAME DIM' or 'NAME DIM SIDE_DIM', and returns the names registered,
-- in order, after checking that each got an id (fct_register_model's result).
CREATE FUNCTION test_models(prefix text, VARIADIC models text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	m text;
	f text[];
	names text[] := '{}';
BEGIN
	FOREACH m IN ARRAY models LOOP
		f := regexp_split_to_array(btrim(m), '\s+');
		IF array_length(f, 1) NOT IN (2, 3) THEN
			RAISE EXCEPTION 'test_models: "%" is not NAME DIM [SIDE_DIM]', m;
		END IF;
		IF fct_register_model(prefix || '_' || f[1], f[2]::integer, coalesce(f[3]::integer, 0)) <= 0 THEN
			RAISE EXCEPTION 'test_models: model %_% got no id', prefix, f[1];
		END IF;
		names := names || (prefix || '_' || f[1]);
	END LOOP;
	RETURN array_to_string(names, ' ');
END
$$;

-- test_linear(prefix, from, to, weight, bias, side): registers the transformation
-- prefix_FROM -> prefix_TO that is one linear map, {"mixer": [{"weight": weight}]}
-- (with "bias" when given), over [vector, side-information], or over the vector
-- alone ("side": null) when side is false; returns 'prefix_FROM -> prefix_TO'
-- once it got an id.
CREATE FUNCTION test_linear(prefix text, from_model text, to_model text, weight text,
							bias text DEFAULT NULL, side boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	layer jsonb := jsonb_build_object('weight', weight::jsonb);
	spec jsonb;
BEGIN
	IF bias IS NOT NULL THEN
		layer := layer || jsonb_build_object('bias', bias::jsonb);
	END IF;
	spec := jsonb_build_object('mixer', jsonb_build_array(layer));
	IF NOT side THEN
		spec := spec || '{"side": null}';
	END IF;
	IF fct_register_transformation(prefix || '_' || from_model, prefix || '_' || to_model, spec) <= 0 THEN
		RAISE EXCEPTION 'test_linear: %_% -> %_% got no id', prefix, from_model, prefix, to_model;
	END IF;
	RETURN prefix || '_' || from_model || ' -> ' || prefix || '_' || to_model;
END
$$;

-- test_label_set(prefix, with_bias): the three labels 1 = [1,0], 2 = [0,1],
-- 3 = [1,1] in TABLE prefix_t (id int PRIMARY KEY, e embedding), with a column
-- b real of zeros read as the set's bias when with_bias, as label set prefix_s;
-- returns fct_create_label_set's result (the number of labels).  For a query
-- q = [1,2] the scores are 1, 2 and 3.
CREATE FUNCTION test_label_set(prefix text, with_bias boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, e embedding%s)',
				   prefix || '_t', CASE WHEN with_bias THEN ', b real' ELSE '' END);
	EXECUTE format('INSERT INTO %I SELECT id, e::embedding%s FROM (VALUES (1, %L), (2, %L), (3, %L)) v(id, e)',
				   prefix || '_t', CASE WHEN with_bias THEN ', 0' ELSE '' END, '[1,0]', '[0,1]', '[1,1]');
	RETURN fct_create_label_set(prefix || '_s', (prefix || '_t')::regclass, 'id', 'e',
								CASE WHEN with_bias THEN 'b'::name END);
END
$$;

-- test_migration_wait(job): waits (up to 60 s) until the queued migration job
-- has left the states queued and running, and returns how it ended.  Its own
-- search_path, so that a test may call it under a hostile one.
CREATE FUNCTION test_migration_wait(job bigint) RETURNS TABLE (state text, rows_done bigint,
	rows_left bigint, last_error text, role name)
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN (SELECT m.state NOT IN ('queued', 'running') FROM fct_migrations m WHERE m.id = job);
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN QUERY SELECT m.state, m.rows_done, m.rows_left, m.last_error, m.role
		FROM fct_migrations m WHERE m.id = job;
END
$$;
