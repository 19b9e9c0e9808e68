-- 90_citus.sql (0.1.0 -> 0.2.0): fct's catalogs on every node of a Citus cluster (new in 0.2.0; the same as the install file).
--
-- On a Citus coordinator, every change to a catalog table (a model
-- registered or its note edited, a transformation imported or fitted) is
-- applied on every worker in the same distributed transaction, or refused
-- everywhere: see src/citus/README.md.  Without the citus extension in the
-- database these triggers do nothing.  A catalog table that a C cache reads
-- gets the same triggers.

-- Sends the rows a statement changed to the workers (coordinator), refuses a
-- change made on a worker, does nothing without Citus.
CREATE FUNCTION _fct_catalog_propagate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_catalog_propagate'
	LANGUAGE C;
COMMENT ON FUNCTION _fct_catalog_propagate() IS
	'internal: trigger sending catalog changes to the Citus workers';
REVOKE ALL ON FUNCTION _fct_catalog_propagate() FROM PUBLIC;

-- Applies on a worker what the coordinator sent; only the coordinator's Citus
-- connection (the Citus extension's owner) calls it.
CREATE FUNCTION _fct_catalog_apply(tbl regclass, op text, rows jsonb) RETURNS void
	AS 'MODULE_PATHNAME', 'fct_catalog_apply'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION _fct_catalog_apply(regclass, text, jsonb) IS
	'internal: applies on a Citus worker a catalog change the coordinator sent';
REVOKE ALL ON FUNCTION _fct_catalog_apply(regclass, text, jsonb) FROM PUBLIC;

CREATE FUNCTION _fct_catalog_send(tbl regclass, op text, rows text) RETURNS void
	AS 'MODULE_PATHNAME', 'fct_catalog_send'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION _fct_catalog_send(regclass, text, text) IS
	'internal: sends a catalog change to the Citus workers';
REVOKE ALL ON FUNCTION _fct_catalog_send(regclass, text, text) FROM PUBLIC;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['fct_models', 'fct_transformations']
	LOOP
		EXECUTE format('CREATE TRIGGER fct_catalog_propagate_insert AFTER INSERT ON %I'
					   ' REFERENCING NEW TABLE AS fct_catalog_rows'
					   ' FOR EACH STATEMENT EXECUTE FUNCTION _fct_catalog_propagate()', t);
		EXECUTE format('CREATE TRIGGER fct_catalog_propagate_update AFTER UPDATE ON %I'
					   ' REFERENCING NEW TABLE AS fct_catalog_rows'
					   ' FOR EACH STATEMENT EXECUTE FUNCTION _fct_catalog_propagate()', t);
		EXECUTE format('CREATE TRIGGER fct_catalog_propagate_delete AFTER DELETE ON %I'
					   ' REFERENCING OLD TABLE AS fct_catalog_rows'
					   ' FOR EACH STATEMENT EXECUTE FUNCTION _fct_catalog_propagate()', t);
		EXECUTE format('CREATE TRIGGER fct_catalog_propagate_truncate AFTER TRUNCATE ON %I'
					   ' FOR EACH STATEMENT EXECUTE FUNCTION _fct_catalog_propagate()', t);
	END LOOP;
END
$$;

-- fct_citus_sync: bring every worker's copy of fct's catalogs to the
-- coordinator's state, in one distributed transaction.  Run it on the
-- coordinator after citus_add_node (Citus creates the extension on a new
-- node but copies no rows of an extension's tables), before moving shards
-- there.  Returns the number of workers.
CREATE FUNCTION fct_citus_sync() RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t		regclass;
	v_rows	text;
	v_nodes	integer;
BEGIN
	FOR t IN
		SELECT DISTINCT tg.tgrelid::regclass
		FROM pg_trigger tg
		WHERE tg.tgfoid = '@extschema@._fct_catalog_propagate()'::regprocedure
		ORDER BY 1
	LOOP
		EXECUTE format('SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r))::text FROM %s r', t)
			INTO v_rows;
		PERFORM @extschema@._fct_catalog_send(t, 'sync', coalesce(v_rows, '[]'));
	END LOOP;
	EXECUTE 'SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_node'
			' WHERE groupid OPERATOR(pg_catalog.<>) 0 AND isactive AND noderole OPERATOR(pg_catalog.=) ''primary'''
		INTO v_nodes;
	RETURN v_nodes;
END
$$;

REVOKE ALL ON FUNCTION fct_citus_sync() FROM PUBLIC;

COMMENT ON FUNCTION fct_citus_sync() IS
	'Citus coordinator: copy fct''s catalogs (models, transformations, label sets) to every worker, e.g. after citus_add_node; returns the number of workers';
