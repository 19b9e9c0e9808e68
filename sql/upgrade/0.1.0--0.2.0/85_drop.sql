-- 85_drop.sql (0.1.0 -> 0.2.0), new: undoing a registration made by mistake.
--
-- fct_drop_transformation(from_model, to_model) and fct_drop_model(name)
-- remove a catalog row when nothing depends on it, and otherwise fail with
-- 2BP01 (dependent_objects_still_exist), listing in the detail what depends:
--
--   a model           stored values of the model (every column that
--                     fct_embedding_columns lists is read, see below), indexes
--                     and stored generated columns whose expression names it,
--                     queued or running migrations into it, label sets of it,
--                     transformations from or to it (drop those first);
--   a transformation  indexes and stored generated columns whose expression
--                     upgrades into its target model or a model downstream of
--                     it, on a table holding values of its source model or a
--                     model upstream of it (their stored results were
--                     computed through it: fct_upgrade is IMMUTABLE, and a
--                     transformation registered later in its place would give
--                     other bits), and queued or running migrations into such
--                     a model.  Values already migrated do not depend on it:
--                     they are values of the target model.
--
-- The check of stored values is exact, so it reads: for each column, one
-- query that stops at the first value of the model (a full scan of a table
-- that holds none).  Each table is locked in SHARE mode first, until the end
-- of the transaction, so that no value of the model is written between the
-- check and the commit (writers wait for the drop to commit, then see that
-- the model is gone).  A table the check cannot read (row-level security,
-- privileges of the extension's owner) is listed as depending: a drop succeeds
-- only when it was verified.
--
-- The rows are removed as the extension's owner (SECURITY DEFINER, EXECUTE
-- revoked from PUBLIC, the same rule as registration); the catalogs' guards
-- let a DELETE through only while fct.catalog_drop is on, which these
-- functions set for their own statement.  The statement triggers of the
-- catalogs then drop every backend's model and transformation caches
-- (20_model.sql, 40_transform.sql) and, on a Citus coordinator, apply the
-- delete on every worker in the same distributed transaction (90_citus.sql).
-- Statements prepared before the drop keep what they folded (a constant
-- embedding of a dropped model, an upgraded constant): re-prepare them.

-- Internal: the columns holding values of any of the models, with the model,
-- and the columns the check could not read (checked false, the reason in error).
CREATE FUNCTION _fct_stored_models(model_ids integer[])
RETURNS TABLE (relid regclass, attname name, model_id integer, checked boolean, error text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- off: a policy that would hide rows makes the read fail (reported), never pass
SET row_security = off
AS $$
DECLARE
	c		record;
	v_id	integer;
	v_sql	text;
	v_has	integer;
	v_found	integer[];
BEGIN
	FOR c IN SELECT * FROM @extschema@.fct_embedding_columns() LOOP
		BEGIN
			-- kept until commit when the block succeeds (released with it when not)
			EXECUTE format('LOCK TABLE %s IN SHARE MODE', c.relid);
			IF c.is_array THEN
				v_sql := format('SELECT 1 FROM %s t, pg_catalog.unnest(t.%I) u'
								' WHERE @extschema@._fct_migrate_model_id(u) OPERATOR(pg_catalog.=) $1 LIMIT 1',
								c.relid, c.attname);
			ELSE
				v_sql := format('SELECT 1 FROM %s t'
								' WHERE @extschema@._fct_migrate_model_id(t.%I) OPERATOR(pg_catalog.=) $1 LIMIT 1',
								c.relid, c.attname);
			END IF;
			-- one query per model: each stops at the first value it finds (a
			-- LIMIT rather than EXISTS: Citus pushes it down to every shard of a
			-- distributed table, where an EXISTS subquery is not planned)
			v_found := '{}';
			FOREACH v_id IN ARRAY model_ids LOOP
				v_has := NULL;
				EXECUTE v_sql INTO v_has USING v_id;
				IF v_has IS NOT NULL THEN
					v_found := v_found || v_id;
				END IF;
			END LOOP;
		EXCEPTION WHEN OTHERS THEN
			relid := c.relid; attname := c.attname; model_id := NULL;
			checked := false; error := SQLERRM;
			RETURN NEXT;
			CONTINUE;
		END;
		FOREACH v_id IN ARRAY v_found LOOP
			relid := c.relid; attname := c.attname; model_id := v_id;
			checked := true; error := NULL;
			RETURN NEXT;
		END LOOP;
	END LOOP;
END
$$;

REVOKE ALL ON FUNCTION _fct_stored_models(integer[]) FROM PUBLIC;

COMMENT ON FUNCTION _fct_stored_models(integer[]) IS
	'internal to fct_drop_model and fct_drop_transformation: the columns holding values of the models (reads and locks every embedding column)';

-- Internal: indexes and stored generated columns whose expression upgrades
-- into one of the models (fct_upgrade(e, 'name') or fct_upgrade(e, id)),
-- as lines of a detail, with the table they are on.
CREATE FUNCTION _fct_upgrade_expressions(model_ids integer[])
RETURNS TABLE (relid regclass, what text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH m AS (
		SELECT id, name FROM @extschema@.fct_models WHERE id OPERATOR(pg_catalog.=) ANY (model_ids)
	), expr AS (
		SELECT i.indrelid AS relid,
			   format('index %s on table %s', i.indexrelid::pg_catalog.regclass, i.indrelid::pg_catalog.regclass) AS what,
			   pg_catalog.pg_get_indexdef(i.indexrelid) AS def
		  FROM pg_catalog.pg_index i
		 WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
		UNION ALL
		SELECT d.adrelid,
			   format('generated column %I of table %s', a.attname, d.adrelid::pg_catalog.regclass),
			   pg_catalog.pg_get_expr(d.adbin, d.adrelid)
		  FROM pg_catalog.pg_attrdef d
		  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid
										AND a.attnum OPERATOR(pg_catalog.=) d.adnum
		 WHERE a.attgenerated OPERATOR(pg_catalog.=) 's'
	)
	SELECT DISTINCT e.relid::pg_catalog.regclass, e.what
	  FROM expr e, m
	 WHERE pg_catalog.strpos(e.def, 'fct_upgrade(') OPERATOR(pg_catalog.>) 0
	   AND (pg_catalog.strpos(e.def, pg_catalog.quote_literal(m.name)) OPERATOR(pg_catalog.>) 0
			OR e.def OPERATOR(pg_catalog.~) ('fct_upgrade\([^)]*, ' OPERATOR(pg_catalog.||) m.id OPERATOR(pg_catalog.||) '\)'))
	 ORDER BY 2
$$;

REVOKE ALL ON FUNCTION _fct_upgrade_expressions(integer[]) FROM PUBLIC;

COMMENT ON FUNCTION _fct_upgrade_expressions(integer[]) IS
	'internal to fct_drop_model and fct_drop_transformation: indexes and generated columns that upgrade into the models';

CREATE FUNCTION fct_drop_model(name text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name		text := $1;
	v_id		integer;
	v_deps		text[] := '{}';
	v_hints		text[] := '{}';
	r			record;
BEGIN
	IF v_name IS NULL THEN
		RAISE EXCEPTION 'model name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- the registry row, locked: a concurrent drop or registration waits
	SELECT m.id INTO v_id FROM @extschema@.fct_models m
	 WHERE m.name OPERATOR(pg_catalog.=) v_name FOR UPDATE;
	IF v_id IS NULL THEN
		RAISE EXCEPTION 'model "%" does not exist', v_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'The registered models are the rows of fct_models.';
	END IF;

	FOR r IN SELECT f.name AS src, t.name AS dst
			   FROM @extschema@.fct_transformations x
			   JOIN @extschema@.fct_models f ON f.id OPERATOR(pg_catalog.=) x.from_model
			   JOIN @extschema@.fct_models t ON t.id OPERATOR(pg_catalog.=) x.to_model
			  WHERE x.from_model OPERATOR(pg_catalog.=) v_id OR x.to_model OPERATOR(pg_catalog.=) v_id
			  ORDER BY x.id LOOP
		v_deps := v_deps || format('transformation %s -> %s', r.src, r.dst);
		v_hints := v_hints || format('SELECT fct_drop_transformation(%L, %L);', r.src, r.dst);
	END LOOP;
	FOR r IN SELECT s.name FROM @extschema@.fct_label_sets s
			  WHERE s.model OPERATOR(pg_catalog.=) v_name ORDER BY s.name LOOP
		v_deps := v_deps || format('label set %s', r.name);
		v_hints := v_hints || format('SELECT fct_drop_label_set(%L);', r.name);
	END LOOP;
	FOR r IN SELECT q.id, q.relid, q.attname FROM @extschema@.fct_migration_queue q
			  WHERE q.to_model OPERATOR(pg_catalog.=) v_name
				AND q.state OPERATOR(pg_catalog.=) ANY ('{queued,running}') ORDER BY q.id LOOP
		v_deps := v_deps || format('migration %s of %s.%I into the model', r.id, r.relid::regclass, r.attname);
		v_hints := v_hints || format('SELECT fct_migrate_cancel(%s);', r.id);
	END LOOP;
	FOR r IN SELECT * FROM @extschema@._fct_upgrade_expressions(ARRAY[v_id]) LOOP
		v_deps := v_deps || r.what;
	END LOOP;
	FOR r IN SELECT * FROM @extschema@._fct_stored_models(ARRAY[v_id]) LOOP
		IF r.checked THEN
			v_deps := v_deps || format('column %I of table %s holds values of the model', r.attname, r.relid);
		ELSE
			v_deps := v_deps || format('column %I of table %s could not be checked: %s', r.attname, r.relid, r.error);
		END IF;
	END LOOP;

	IF cardinality(v_deps) OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'cannot drop model "%" because other objects depend on it', v_name
			USING ERRCODE = 'dependent_objects_still_exist',
				  DETAIL = array_to_string(v_deps, E'\n'),
				  HINT = array_to_string(v_hints || 'Migrate, update or delete the stored values of the model, '
											 'and drop the indexes that upgrade into it, first.'::text, E'\n');
	END IF;

	PERFORM set_config('fct.catalog_drop', 'on', true);
	DELETE FROM @extschema@.fct_models m WHERE m.id OPERATOR(pg_catalog.=) v_id;
	PERFORM set_config('fct.catalog_drop', 'off', true);
END
$$;

REVOKE ALL ON FUNCTION fct_drop_model(text) FROM PUBLIC;

COMMENT ON FUNCTION fct_drop_model(text) IS
	'remove a registered model when nothing depends on it (stored values, indexes, migrations, label sets, transformations); 2BP01 listing them otherwise';

CREATE FUNCTION fct_drop_transformation(from_model text, to_model text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_from		text := $1;
	v_to		text := $2;
	v_xid		integer;
	v_from_id	integer;
	v_to_id		integer;
	v_up		integer[];
	v_down		integer[];
	v_down_names text[];
	v_tables	regclass[];
	v_deps		text[] := '{}';
	v_hints		text[] := '{}';
	r			record;
BEGIN
	IF v_from IS NULL OR v_to IS NULL THEN
		RAISE EXCEPTION 'from_model and to_model must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	v_from_id := @extschema@.fct_model_id(v_from);
	v_to_id := @extschema@.fct_model_id(v_to);
	SELECT x.id INTO v_xid FROM @extschema@.fct_transformations x
	 WHERE x.from_model OPERATOR(pg_catalog.=) v_from_id AND x.to_model OPERATOR(pg_catalog.=) v_to_id
	   FOR UPDATE;
	IF v_xid IS NULL THEN
		RAISE EXCEPTION 'transformation from model "%" to model "%" does not exist', v_from, v_to
			USING ERRCODE = 'undefined_object',
				  HINT = 'The registered transformations are the rows of the view fct_transformation_list.';
	END IF;

	-- the models upstream of the edge (with it: their values go through it) and downstream
	WITH RECURSIVE up(id) AS (
		SELECT v_from_id
		UNION
		SELECT x.from_model FROM @extschema@.fct_transformations x JOIN up ON x.to_model OPERATOR(pg_catalog.=) up.id
	) SELECT array_agg(id) INTO v_up FROM up;
	WITH RECURSIVE down(id) AS (
		SELECT v_to_id
		UNION
		SELECT x.to_model FROM @extschema@.fct_transformations x JOIN down ON x.from_model OPERATOR(pg_catalog.=) down.id
	) SELECT array_agg(id) INTO v_down FROM down;
	SELECT array_agg(m.name) INTO v_down_names FROM @extschema@.fct_models m
	 WHERE m.id OPERATOR(pg_catalog.=) ANY (v_down);

	FOR r IN SELECT q.id, q.relid, q.attname, q.to_model FROM @extschema@.fct_migration_queue q
			  WHERE q.to_model OPERATOR(pg_catalog.=) ANY (v_down_names)
				AND q.state OPERATOR(pg_catalog.=) ANY ('{queued,running}') ORDER BY q.id LOOP
		v_deps := v_deps || format('migration %s of %s.%I into model %s', r.id, r.relid::regclass, r.attname, r.to_model);
		v_hints := v_hints || format('SELECT fct_migrate_cancel(%s);', r.id);
	END LOOP;
	-- expressions into a downstream model, on tables that hold upstream values
	SELECT array_agg(DISTINCT e.relid) INTO v_tables FROM @extschema@._fct_upgrade_expressions(v_down) e;
	IF v_tables IS NOT NULL THEN
		SELECT array_agg(DISTINCT s.relid) INTO v_tables
		  FROM @extschema@._fct_stored_models(v_up) s WHERE s.relid OPERATOR(pg_catalog.=) ANY (v_tables);
		FOR r IN SELECT * FROM @extschema@._fct_upgrade_expressions(v_down) e
				  WHERE e.relid OPERATOR(pg_catalog.=) ANY (v_tables) LOOP
			v_deps := v_deps || format('%s (its table holds values upgraded through the transformation)', r.what);
		END LOOP;
	END IF;

	IF cardinality(v_deps) OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'cannot drop transformation from model "%" to model "%" because other objects depend on it',
			v_from, v_to
			USING ERRCODE = 'dependent_objects_still_exist',
				  DETAIL = array_to_string(v_deps, E'\n'),
				  HINT = array_to_string(v_hints || 'Drop the indexes and generated columns listed (fct_upgrade is IMMUTABLE: '
											 'their stored results were computed through this transformation), first.'::text, E'\n');
	END IF;

	PERFORM set_config('fct.catalog_drop', 'on', true);
	DELETE FROM @extschema@.fct_transformations x WHERE x.id OPERATOR(pg_catalog.=) v_xid;
	PERFORM set_config('fct.catalog_drop', 'off', true);
END
$$;

REVOKE ALL ON FUNCTION fct_drop_transformation(text, text) FROM PUBLIC;

COMMENT ON FUNCTION fct_drop_transformation(text, text) IS
	'remove a registered transformation when no index, generated column or migration depends on it; 2BP01 listing them otherwise';
