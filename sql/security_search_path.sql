-- Every statement fct builds names its operators, functions and types with
-- their schema (src/query/README.md).  A role that can put a schema ahead of
-- the others on someone's search_path fills it with an =, <, <#>, ... for
-- every type that matters, same-named copies of the built-in and fct
-- functions those statements call, and domains named like the types they
-- cast to; each records who ran it.  Then every function of fct that builds
-- SQL runs with that schema first (ahead of pg_catalog too), as a superuser,
-- as the unprivileged role itself (whose statements on the migration queue and
-- the refresh log run as their owner), and in a migration's background
-- worker.  The record must stay empty.
CREATE ROLE regress_security_mallory LOGIN;
CREATE SCHEMA security_hostile AUTHORIZATION regress_security_mallory;

SET ROLE regress_security_mallory;
SET search_path = pg_catalog, public;
GRANT USAGE ON SCHEMA security_hostile TO PUBLIC;
CREATE TABLE security_hostile.calls (who name, what text);
GRANT INSERT, SELECT ON security_hostile.calls TO PUBLIC;
CREATE FUNCTION security_hostile.hijacked(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO security_hostile.calls VALUES (current_user, what);
	RAISE WARNING 'hijacked: %', what;
END $$;
CREATE FUNCTION security_hostile.hijacked_check(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM security_hostile.hijacked(what);
	RETURN true;
END $$;

-- An operator of the same name and argument types for every built-in or fct
-- operator on the types fct's statements compare; each records, then does
-- what the real one does.
DO $gen$
DECLARE
	o	record;
	n	integer := 0;
BEGIN
	FOR o IN
		SELECT op.oprname, format_type(op.oprleft, NULL) AS l, format_type(op.oprright, NULL) AS r,
			   format_type(op.oprresult, NULL) AS res, pn.nspname AS fnsp, p.proname AS fname
		  FROM pg_operator op
		  JOIN pg_proc p ON p.oid = op.oprcode
		  JOIN pg_namespace pn ON pn.oid = p.pronamespace
		  JOIN pg_namespace opn ON opn.oid = op.oprnamespace
		 WHERE opn.nspname IN ('pg_catalog', 'public') AND op.oprkind = 'b'
		   AND op.oprname IN ('=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||',
							  '<#>', '<->', '<=>')
		   AND op.oprleft IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'float4'::regtype,
							  'float8'::regtype, 'numeric'::regtype, 'text'::regtype, 'name'::regtype,
							  'oid'::regtype, 'tid'::regtype, 'bool'::regtype, '"char"'::regtype,
							  'timestamptz'::regtype, 'embedding'::regtype)
		   AND op.oprright IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'float4'::regtype,
							   'float8'::regtype, 'numeric'::regtype, 'text'::regtype, 'name'::regtype,
							   'oid'::regtype, 'tid'::regtype, 'bool'::regtype, '"char"'::regtype,
							   'timestamptz'::regtype, 'embedding'::regtype)
	LOOP
		n := n + 1;
		EXECUTE format('CREATE FUNCTION security_hostile.op%s(a %s, b %s) RETURNS %s '
					   'LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$ '
					   'BEGIN PERFORM security_hostile.hijacked(%L); RETURN %I.%I(a, b); END $b$',
					   n, o.l, o.r, o.res, format('operator %s (%s, %s)', o.oprname, o.l, o.r),
					   o.fnsp, o.fname);
		EXECUTE format('CREATE OPERATOR security_hostile.%s (LEFTARG = %s, RIGHTARG = %s, '
					   'FUNCTION = security_hostile.op%s)', o.oprname, o.l, o.r, n);
	END LOOP;
	-- regclass has no = of its own (the built-in one is oid's): a better match
	CREATE FUNCTION security_hostile.regclass_eq(a regclass, b regclass) RETURNS boolean
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
	BEGIN PERFORM security_hostile.hijacked('operator = (regclass, regclass)'); RETURN a::oid = b::oid; END $b$;
	CREATE OPERATOR security_hostile.= (LEFTARG = regclass, RIGHTARG = regclass,
										FUNCTION = security_hostile.regclass_eq);
END
$gen$;

-- Same-named functions: every scalar function of fct, and the built-ins
-- that fct's statements call.
DO $gen$
DECLARE
	f		record;
	args	text;
BEGIN
	FOR f IN
		SELECT p.oid, p.proname, n.nspname, p.pronargs, p.prokind,
			   pg_get_function_identity_arguments(p.oid) AS sig,
			   format_type(p.prorettype, NULL) AS ret
		  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		 WHERE ((n.nspname = 'public' AND EXISTS (
					SELECT 1 FROM pg_depend d
					 WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'))
				OR (n.nspname = 'pg_catalog' AND p.proname IN (
					'now', 'random', 'pg_backend_pid', 'pg_blocking_pids', 'pg_try_advisory_xact_lock',
					'pg_advisory_lock', 'array_fill', 'nextval', 'set_config', 'current_setting',
					'array_length', 'cardinality', 'round', 'pg_get_userbyid', 'lower', 'length',
					'quote_ident', 'array_append', 'abs', 'sqrt', 'exp', 'ln', 'greatest_', 'jsonb_build_object',
					'to_jsonb', 'array_position', 'pg_relation_size', 'has_table_privilege')))
		   AND p.prokind IN ('f', 'p') AND NOT p.proretset
		   AND p.prorettype NOT IN ('record'::regtype, 'trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype,
									'cstring'::regtype, 'index_am_handler'::regtype)
		   AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) a
							WHERE a IN ('internal'::regtype, 'cstring'::regtype, '"any"'::regtype))
		   AND p.proargmodes IS NULL AND p.provariadic = 0
	LOOP
		SELECT string_agg('$' || i, ', ') INTO args FROM generate_series(1, f.pronargs) i;
		IF f.prokind = 'p' THEN
			EXECUTE format('CREATE PROCEDURE security_hostile.%I(%s) LANGUAGE plpgsql '
						   'AS $b$ BEGIN PERFORM security_hostile.hijacked(%L); END $b$',
						   f.proname, f.sig, f.proname || '(' || f.sig || ')');
		ELSIF f.ret = 'void' THEN
			EXECUTE format('CREATE FUNCTION security_hostile.%I(%s) RETURNS void LANGUAGE plpgsql '
						   'SET search_path = pg_catalog, pg_temp '
						   'AS $b$ BEGIN PERFORM security_hostile.hijacked(%L); PERFORM %I.%I(%s); END $b$',
						   f.proname, f.sig, f.proname || '(' || f.sig || ')', f.nspname, f.proname,
						   coalesce(args, ''));
		ELSE
			EXECUTE format('CREATE FUNCTION security_hostile.%I(%s) RETURNS %s LANGUAGE plpgsql '
						   'SET search_path = pg_catalog, pg_temp '
						   'AS $b$ BEGIN PERFORM security_hostile.hijacked(%L); RETURN %I.%I(%s); END $b$',
						   f.proname, f.sig, f.ret, f.proname || '(' || f.sig || ')', f.nspname, f.proname,
						   coalesce(args, ''));
		END IF;
	END LOOP;
END
$gen$;

-- set-returning functions, format and the aggregates, by hand
CREATE FUNCTION security_hostile.unnest(anyarray) RETURNS SETOF anyelement
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('unnest(anyarray)'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION security_hostile.generate_series(integer, integer) RETURNS SETOF integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('generate_series(integer, integer)');
RETURN QUERY SELECT pg_catalog.generate_series($1, $2); END $$;
CREATE FUNCTION security_hostile.format(text, VARIADIC text[]) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('format(text, VARIADIC text[])');
RETURN pg_catalog.format($1, VARIADIC $2); END $$;
CREATE FUNCTION security_hostile.count_step(bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('count(*)'); RETURN $1 + 1; END $$;
CREATE AGGREGATE security_hostile.count(*) (SFUNC = security_hostile.count_step, STYPE = bigint,
											INITCOND = '0');
CREATE FUNCTION security_hostile.count_any_step(bigint, anyelement) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('count(anyelement)'); RETURN $1 + 1; END $$;
CREATE AGGREGATE security_hostile.count(anyelement) (SFUNC = security_hostile.count_any_step,
													 STYPE = bigint, INITCOND = '0');
CREATE FUNCTION security_hostile.max_step(anyelement, anyelement) RETURNS anyelement
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('max/min(anyelement)'); RETURN coalesce($1, $2); END $$;
CREATE AGGREGATE security_hostile.max(anyelement) (SFUNC = security_hostile.max_step, STYPE = anyelement);
CREATE AGGREGATE security_hostile.min(anyelement) (SFUNC = security_hostile.max_step, STYPE = anyelement);
CREATE FUNCTION security_hostile.array_agg_step(anyarray, anyelement) RETURNS anyarray
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('array_agg(anyelement)'); RETURN pg_catalog.array_append($1, $2); END $$;
CREATE AGGREGATE security_hostile.array_agg(anyelement) (SFUNC = security_hostile.array_agg_step,
														 STYPE = anyarray);
CREATE FUNCTION security_hostile.sum_step(anyelement, anyelement) RETURNS anyelement
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM security_hostile.hijacked('sum(anyelement)'); RETURN $2; END $$;
CREATE AGGREGATE security_hostile.sum(anyelement) (SFUNC = security_hostile.sum_step, STYPE = anyelement);

-- Domains named like the types that statements cast to: a cast to one runs its check.
DO $gen$
DECLARE
	t	text;
BEGIN
	FOREACH t IN ARRAY ARRAY['text', 'float4', 'float8', 'int4', 'int8', 'int2', 'oid', 'tid', 'name',
							 'bool', 'regclass', 'numeric', 'jsonb', 'bytea', 'timestamptz', 'embedding']
	LOOP
		EXECUTE format('CREATE DOMAIN security_hostile.%I AS %s CHECK (security_hostile.hijacked_check(%L))',
					   t, CASE t WHEN 'embedding' THEN 'public.embedding' ELSE 'pg_catalog.' || t END,
					   'cast to ' || t);
	END LOOP;
END
$gen$;
RESET ROLE;
RESET search_path;

SELECT count(*) > 400 AS many_operators FROM pg_operator
 WHERE oprnamespace = 'security_hostile'::regnamespace;
SELECT count(*) > 100 AS many_functions FROM pg_proc
 WHERE pronamespace = 'security_hostile'::regnamespace;

-- The data the functions work on, made with the normal search_path.
SELECT test_models('security', 'v1 4 2', 'v2 4 2');
SELECT test_linear('security', 'v1', 'v2', '[[1,0,0,0,0,0],[0,1,0,0,0,0],[0,0,1,0,0,0],[0,0,0,1,0,1]]',
				   bias => '[0,0,0,0.5]');
SELECT setseed(0.25);
CREATE TABLE security_items (id integer PRIMARY KEY, e embedding);
INSERT INTO security_items
SELECT i, fct_embedding(ARRAY[i, 1, 0, 0]::real[], ARRAY[0, 0]::real[], 'security_v1')
  FROM generate_series(1, 50) i;
CREATE TABLE security_src (k bigint, e embedding);
INSERT INTO security_src
SELECT i, fct_embedding(ARRAY[i, 1, CASE WHEN i % 2 = 0 THEN i ELSE 0 END, 0]::real[], ARRAY[0, 0]::real[],
						'security_v1')
  FROM generate_series(1, 60) i;
-- a partitioned table: refreshed without ctids, by key only
CREATE TABLE security_parts (id integer PRIMARY KEY, e embedding) PARTITION BY RANGE (id);
CREATE TABLE security_parts_1 PARTITION OF security_parts FOR VALUES FROM (1) TO (26);
CREATE TABLE security_parts_2 PARTITION OF security_parts FOR VALUES FROM (26) TO (100);
INSERT INTO security_parts SELECT * FROM security_items;
-- big enough (by its statistics) that a small source is sampled by ORDER BY random()
CREATE TABLE security_big (id integer PRIMARY KEY, e embedding);
INSERT INTO security_big
SELECT i, fct_embedding(ARRAY[i, 1, 0, 0]::real[], NULL, 'security_v1') FROM generate_series(1, 20500) i;
ANALYZE security_big;
CREATE TABLE security_mig (id integer PRIMARY KEY, e embedding);
INSERT INTO security_mig SELECT * FROM security_items;
CREATE TABLE security_queued (id integer PRIMARY KEY, e embedding);
INSERT INTO security_queued SELECT * FROM security_items;
CREATE TABLE security_mallory_items (id integer PRIMARY KEY, e embedding);
INSERT INTO security_mallory_items SELECT * FROM security_items;
ALTER TABLE security_mallory_items OWNER TO regress_security_mallory;
-- labels: more than fct.label_candidates, with an inner-product lsh index
CREATE TABLE security_labels (id integer PRIMARY KEY, e embedding, b real);
INSERT INTO security_labels
SELECT i, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 8) WHERE i > 0)::real[]::embedding, 0
  FROM generate_series(1, 300) i;
CREATE INDEX security_labels_lsh ON security_labels USING lsh (e);
ANALYZE security_labels;
CREATE TABLE security_queries AS SELECT id::bigint AS qid, e AS q FROM security_labels WHERE id <= 20;
SELECT fct_create_label_set('security_warm', 'security_labels', 'id', 'e', 'b');
SET fct.label_candidates = 100;
-- the index path always (auto could measure it slower and stop taking it)
SET fct.label_search = index;
-- the cached plans of a label set, prepared under the normal search_path,
-- are planned again under the hostile one
SELECT count(*) FROM fct_top_labels('security_warm', (SELECT q FROM security_queries WHERE qid = 1), 5);
SELECT test_models('security', 'fit_old 2 1', 'fit_new 2');
CREATE TABLE security_pairs (id integer, e_old embedding, e_new embedding);
INSERT INTO security_pairs
SELECT i, fct_embedding(ARRAY[i, -i]::real[], ARRAY[1]::real[], 'security_fit_old'),
	   fct_embedding(ARRAY[2 * i, 1]::real[], NULL, 'security_fit_new')
  FROM generate_series(1, 40) i;
GRANT SELECT ON security_src TO regress_security_mallory;
CREATE FUNCTION security_wait(job bigint) RETURNS text
LANGUAGE sql SET search_path = pg_catalog, public AS $$
	SELECT w.state || coalesce(': ' || w.last_error, '') FROM public.test_migration_wait(job) w
$$;

-- The trap works: an unqualified = on embedding, with the hostile schema first, is hijacked.
SET search_path = security_hostile, pg_catalog, public;
SELECT e = e AS control FROM public.security_items WHERE id OPERATOR(pg_catalog.=) 1;
RESET search_path;
SELECT who = session_user AS as_the_caller, what FROM security_hostile.calls;
TRUNCATE security_hostile.calls;

-- Now every function of fct that builds SQL, with the hostile schema first.
-- (The statements below name every function and operator with its schema
-- themselves, and the queries given to fct use none.)
SET search_path = security_hostile, pg_catalog, public;

-- fct_refresh: threshold; estimated threshold (a Bernoulli sample; a sample
-- by ORDER BY random()); full passes (which read fct_refresh_log); a
-- partitioned table (by key, no ctid); the log is written as its owner
SELECT updated, skipped, forced, missing FROM public.fct_refresh('security_items', 'e', 'id',
	'SELECT k, e FROM security_src', threshold => 0.05);
SELECT updated OPERATOR(pg_catalog.+) skipped AS compared FROM public.fct_refresh('security_items', 'e', 'id',
	'SELECT k, e FROM security_src', target_skip => 0.5);
SELECT updated OPERATOR(pg_catalog.+) skipped AS compared FROM public.fct_refresh('security_big', 'e', 'id',
	'SELECT k, e FROM security_src', target_skip => 0.5);
SELECT forced FROM public.fct_refresh('security_items', 'e', 'id',
	'SELECT k, e FROM security_src', threshold => 0.05, full_every => 2);
SELECT updated, skipped, forced, missing FROM public.fct_refresh('security_parts', 'e', 'id',
	'SELECT k, e FROM security_src', threshold => 0.05);

-- migration, census
SET client_min_messages = warning;
CALL public.fct_migrate('security_mig', 'e', 'security_v2', 10);
RESET client_min_messages;
SELECT * FROM public.fct_model_census('security_mig', 'e');

-- fitting (the registration inserts as the catalog's owner), registering
SELECT (r OPERATOR(pg_catalog.->>) 'n_pairs') AS n_pairs
  FROM public.fct_fit_transformation('security_fit_old', 'security_fit_new',
	'SELECT e_old, e_new FROM security_pairs', 'linear', '{"lambda": 0.001}') AS r;
SELECT (r OPERATOR(pg_catalog.->>) 'epochs') AS epochs
  FROM public.fct_fit_transformation('security_fit_old', 'security_fit_new',
	'SELECT e_old, e_new FROM security_pairs', 'mlp',
	'{"epochs": 2, "old_hidden": 4, "side_hidden": 2, "mixer_hidden": [4], "register": false}') AS r;
SELECT public.fct_register_model('security_v3', 4) IS NOT NULL AS v3;
SELECT public.fct_register_transformation('security_v2', 'security_v3',
	'{"mixer": [{"weight": [[1,0,0,0,0,0],[0,1,0,0,0,0],[0,0,1,0,0,0],[0,0,0,1,0,0]]}]}') IS NOT NULL AS v2_v3;

-- label sets, look-ups (by the index and exactly), batches, priors, EM, the adapter
SELECT public.fct_create_label_set('security_s', 'security_labels', 'id', 'e', 'b');
SELECT pg_catalog.count(*) FROM public.fct_top_labels('security_warm',
	(SELECT q FROM public.security_queries LIMIT 1), 5);
SELECT pg_catalog.count(*) FROM public.fct_top_labels('security_s',
	(SELECT q FROM public.security_queries LIMIT 1), 5);
SET fct.label_search = exact;
SELECT pg_catalog.count(*) FROM public.fct_top_labels('security_s',
	(SELECT q FROM public.security_queries LIMIT 1), 5);
SET fct.label_search = index;
SELECT pg_catalog.count(*) FROM public.fct_top_labels_batch('security_s', 'SELECT qid, q FROM security_queries', 3);
SELECT pg_catalog.cardinality(public.fct_estimate_prior_em('security_s', 'SELECT q FROM security_queries', 5));
SELECT pg_catalog.cardinality(public.fct_set_train_prior_from('security_s', 'SELECT id FROM security_labels'));
SELECT pg_catalog.cardinality(public.fct_set_prior('security_s', NULL));
SELECT pg_catalog.cardinality(public.fct_set_train_prior('security_s',
	(SELECT public.fct_set_train_prior_from('security_s', 'SELECT id FROM security_labels'))));
INSERT INTO public.fct_label_rounds (label_set, round, accuracies, proportions)
SELECT 'security_s', v.r, (SELECT pg_catalog.array_agg(0.5::real) FROM public.security_labels),
	   public.fct_set_train_prior_from('security_s', 'SELECT id FROM security_labels')
  FROM (VALUES (1), (2)) v(r);
SELECT public.fct_fit_prior_adapter('security_s', hidden => 4, epochs => 2) IS NOT NULL AS fitted;
SELECT pg_catalog.cardinality(public.fct_predict_prior('security_s',
	(SELECT pg_catalog.array_agg(0.5::real) FROM public.security_labels)));
SELECT public.fct_refresh_label_set('security_s');
SELECT public.fct_drop_label_set('security_s');

-- the migration queue, as a superuser
SELECT public.fct_migrate_start('security_queued', 'e', 'security_v2', batch_size => 10, pause_ms => 0) AS job
\gset
SELECT public.security_wait(:job);
SELECT public.fct_migrate_cancel(:job);
SELECT public.fct_migrate_cancel('security_queued', 'e');
SELECT public.fct_migrate_resume();

-- The unprivileged role, with its own schema first: fct writes the refresh
-- log and the migration queue for it as their owner.
SET ROLE regress_security_mallory;
SELECT updated OPERATOR(pg_catalog.+) skipped AS compared FROM public.fct_refresh('security_mallory_items',
	'e', 'id', 'SELECT k, e FROM security_src', threshold => 0.05);
SELECT public.fct_migrate_start('security_mallory_items', 'e', 'security_v2', batch_size => 10,
								pause_ms => 1000) AS mjob
\gset
SELECT public.fct_migrate_cancel(:mjob);
SELECT public.fct_migrate_cancel('security_mallory_items', 'e');
SELECT public.fct_migrate_resume();
RESET ROLE;
RESET search_path;
SELECT security_wait(:mjob);

-- A migration's background worker, in a database whose sessions start with
-- the hostile schema first (a trigger shows the worker's search_path).
CREATE TABLE security_paths (path text);
CREATE FUNCTION security_seen_path() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.security_paths VALUES (pg_catalog.current_setting('search_path'));
	RETURN NULL;
END $$;
CREATE TRIGGER security_seen_path BEFORE UPDATE ON security_mallory_items
	FOR EACH STATEMENT EXECUTE FUNCTION security_seen_path();
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I SET search_path = security_hostile, pg_catalog, public',
				   current_database());
END $$;
SELECT fct_migrate_start('security_mallory_items', 'e', 'security_v2', batch_size => 10, pause_ms => 0) AS job
\gset
SELECT security_wait(:job);
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END $$;
SELECT * FROM fct_model_census('security_mallory_items', 'e');
SELECT DISTINCT path FROM security_paths;

-- Nothing of the hostile schema ran.
SELECT who, what FROM security_hostile.calls;

RESET fct.label_search;
RESET fct.label_candidates;
SELECT fct_drop_label_set('security_warm');
DROP TABLE security_items, security_src, security_parts, security_big, security_mig, security_queued,
	security_mallory_items, security_labels, security_queries, security_pairs, security_paths;
DROP FUNCTION security_wait(bigint), security_seen_path();
SET client_min_messages = warning;
DROP SCHEMA security_hostile CASCADE;
RESET client_min_messages;
DROP ROLE regress_security_mallory;
