-- 90_citus.sql: fct's catalogs on every node of a Citus cluster.
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

-- CALL fct_migrate on a Citus table runs this on the nodes
-- (src/migrate/migrate_distributed.c): the same migration of each of a node's
-- placements in a round, in turn, in one session (one connection and one
-- warm-up for several placements), returning as a row what each run's
-- closing count left, so that the coordinator need not read the table again
-- to say so.  Executable by PUBLIC: the coordinator connects to the node as
-- the caller, whose rights on the placements are what the migration needs.
CREATE PROCEDURE _fct_migrate_placements(shards regclass[], col name, to_model text, batch_size integer,
										 OUT rows_left bigint[])
	AS 'MODULE_PATHNAME', 'fct_migrate_placements'
	LANGUAGE C;
COMMENT ON PROCEDURE _fct_migrate_placements(regclass[], name, text, integer, bigint[]) IS
	'internal to fct_migrate on a Citus table: migrates shard placements in turn, returning the rows each left (executable: the coordinator runs it on the node as the caller)';

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

-- _fct_citus_label_trigger(tbl, install): the cache-invalidation trigger of a
-- label table that is a Citus table (fct_create_label_set installs it,
-- fct_drop_label_set removes it).  Returns false, doing nothing, when tbl is
-- not a Citus table.  Citus refuses triggers on reference tables unless
-- citus.enable_unsafe_triggers is on (a trigger that wrote other tables
-- could break on shards) and refuses DEPENDS ON EXTENSION on any of its
-- tables; this one only sends a relcache invalidation, so it is created with
-- the setting on for the statement, on every shard placement, its argument
-- naming the logical table (fct_relcache_invalidate, src/model/model.c).  The
-- label set is read on the coordinator, so the table needs a placement there
-- (a reference table, once the coordinator is in the metadata, or a Citus
-- local table); a distributed table has none and is refused: its shards
-- change on the workers, where no trigger can reach the coordinator's cache.
CREATE FUNCTION _fct_citus_label_trigger(tbl regclass, install boolean) RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_method	text;
	v_here		boolean;
	v_unsafe	text;
BEGIN
	IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT partmethod::text FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1'
		INTO v_method USING tbl;
	IF v_method IS NULL THEN
		RETURN false;
	END IF;
	v_unsafe := current_setting('citus.enable_unsafe_triggers');
	IF install THEN
		IF v_method <> 'n' THEN
			RAISE EXCEPTION 'label table % is a Citus distributed table', tbl
				USING ERRCODE = 'feature_not_supported',
					  DETAIL = 'Its shards change on the workers, where no trigger can invalidate the label matrix the coordinator caches.',
					  HINT = 'Labels are a few thousand rows: make the label table a reference table (create_reference_table).';
		END IF;
		EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p'
				' ON p.shardid OPERATOR(pg_catalog.=) s.shardid'
				' WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1 AND p.groupid OPERATOR(pg_catalog.=) 0)'
			INTO v_here USING tbl;
		IF NOT v_here THEN
			RAISE EXCEPTION 'label table % has no placement on the Citus coordinator', tbl
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'Add the coordinator to the metadata (SELECT citus_set_coordinator_host(host, port)): Citus then places reference tables there.';
		END IF;
		PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
		EXECUTE format('CREATE TRIGGER fct_label_set_invalidate '
					   'AFTER INSERT OR UPDATE OR DELETE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._fct_label_set_invalidate(%L)',
					   tbl, tbl::text);
		-- Citus gives shards no TRUNCATE trigger; a TRUNCATE also truncates the
		-- coordinator's (empty) table, whose trigger fires then
		EXECUTE format('CREATE TRIGGER fct_label_set_invalidate_truncate '
					   'AFTER TRUNCATE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._fct_label_set_invalidate()',
					   tbl);
	ELSE
		PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
		EXECUTE format('DROP TRIGGER IF EXISTS fct_label_set_invalidate ON %s', tbl);
		EXECUTE format('DROP TRIGGER IF EXISTS fct_label_set_invalidate_truncate ON %s', tbl);
	END IF;
	PERFORM set_config('citus.enable_unsafe_triggers', v_unsafe, true);
	RETURN true;
END
$$;

COMMENT ON FUNCTION _fct_citus_label_trigger(regclass, boolean) IS
	'internal to fct_create_label_set and fct_drop_label_set: the invalidation trigger of a label table that is a Citus reference table; executable by PUBLIC because they run as the caller, who needs the rights on the table that CREATE TRIGGER needs';
