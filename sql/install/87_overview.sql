-- 87_overview.sql: what is going on, from psql.
--
--   fct_transformation_list  the transformations by model name, with the fit's losses
--   fct_columns              per column holding embeddings: its models with
--                            (estimated) row counts and the indexes upgrading it
--   fct_progress             the running CALL fct_migrate (and the queue's workers'
--                            migrations) and fct_fit_transformation of every
--                            session the caller may see (src/progress/)

CREATE VIEW fct_transformation_list AS
	SELECT x.id,
		   f.name AS from_model,
		   t.name AS to_model,
		   x.origin,
		   x.architecture,
		   (x.metrics OPERATOR(pg_catalog.->>) 'method') AS method,
		   (x.metrics OPERATOR(pg_catalog.->>) 'val_loss')::pg_catalog.float8 AS val_loss,
		   (x.metrics OPERATOR(pg_catalog.->>) 'baseline_val_loss')::pg_catalog.float8 AS baseline_val_loss,
		   x.created_at
	  FROM @extschema@.fct_transformations x
	  LEFT JOIN @extschema@.fct_models f ON f.id OPERATOR(pg_catalog.=) x.from_model
	  LEFT JOIN @extschema@.fct_models t ON t.id OPERATOR(pg_catalog.=) x.to_model;

COMMENT ON VIEW fct_transformation_list IS
	'the registered transformations by model name (from_model, to_model), with the fit''s validation and mean-predictor losses';

GRANT SELECT ON fct_transformation_list TO PUBLIC;

-- fct_column_models: the models of one column's values with their row
-- counts, estimated from a sample when the table is large: a table of at
-- most sample_rows rows is counted, a larger one read through TABLESAMPLE
-- SYSTEM (whole pages, each with the same probability, about sample_rows
-- rows) and each count divided by that probability.  The table's rows are
-- judged as the planner does (estimate_rel_size): the density of its last
-- statistics (reltuples / relpages) times its size now, so a table that grew
-- since its last ANALYZE is not sampled as if it had not; and the counts do
-- not depend on that judgement (it sets the sample's size, not the scale).
-- Whole pages make the estimate coarser when a model's rows are contiguous
-- (a migration under way leaves the first pages in the new model).  Rows
-- whose column is NULL are not counted.  Runs with the caller's rights: a
-- column the caller may not read gives no row.
CREATE FUNCTION fct_column_models(tbl regclass, col name, sample_rows integer DEFAULT 10000)
RETURNS TABLE (model text, rows bigint, estimated boolean)
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_tuples	float8;
	v_pages		float8;
	v_pct		float8;
	v_is_array	boolean;
	v_sample	text := '';
	v_scale		float8 := 1;
	v_n			bigint;
BEGIN
	IF NOT has_column_privilege(tbl, col, 'SELECT') THEN
		RETURN;
	END IF;
	SELECT c.is_array INTO v_is_array FROM @extschema@.fct_embedding_columns() c
	 WHERE c.relid OPERATOR(pg_catalog.=) tbl AND c.attname OPERATOR(pg_catalog.=) col;
	IF v_is_array IS NULL THEN
		RAISE EXCEPTION 'column "%" of % does not hold embeddings', col, tbl
			USING ERRCODE = 'datatype_mismatch';
	END IF;
	SELECT c.reltuples, c.relpages INTO v_tuples, v_pages FROM pg_catalog.pg_class c
	 WHERE c.oid OPERATOR(pg_catalog.=) tbl;
	IF v_tuples OPERATOR(pg_catalog.<=) 0 THEN
		-- never analyzed or vacuumed (-1), or a partitioned table (0): sum the partitions' estimates
		SELECT sum(greatest(c.reltuples, 0)) INTO v_tuples FROM pg_catalog.pg_inherits i
		  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
		 WHERE i.inhparent OPERATOR(pg_catalog.=) tbl;
	ELSIF v_pages OPERATOR(pg_catalog.>) 0 THEN
		-- the density of the last statistics times the table's pages now
		v_tuples := v_tuples OPERATOR(pg_catalog./) v_pages OPERATOR(pg_catalog.*)
			greatest(pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./)
					 pg_catalog.current_setting('block_size')::pg_catalog.float8, 1);
	END IF;
	IF v_tuples OPERATOR(pg_catalog.>) sample_rows THEN
		-- REPEATABLE: the count of the rows sampled and the counts per model read the same pages
		v_pct := 100.0 * sample_rows / v_tuples;
		v_sample := format(' TABLESAMPLE SYSTEM (%s) REPEATABLE (0)', v_pct);
	END IF;
	IF v_sample OPERATOR(pg_catalog.<>) '' THEN
		EXECUTE format('SELECT pg_catalog.count(*) FROM %s t%s', tbl, v_sample) INTO v_n;
		-- each page is drawn with probability v_pct / 100: a count scales by its inverse
		-- (Horvitz-Thompson), unbiased whether the statistics are right or not
		v_scale := 100.0 / v_pct;
		-- no page drawn (a tiny sample_rows, or statistics far above the truth): count
		IF v_n OPERATOR(pg_catalog.=) 0 THEN
			v_sample := '';
			v_scale := 1;
		END IF;
	END IF;
	RETURN QUERY EXECUTE format(
		'SELECT coalesce(m.name, CASE WHEN s.id OPERATOR(pg_catalog.=) 0 THEN %L ELSE %L OPERATOR(pg_catalog.||) s.id END),'
		'       pg_catalog.round(s.n * $1)::bigint, $2'
		'  FROM (SELECT @extschema@._fct_migrate_model_id(v) AS id, pg_catalog.count(*) AS n'
		'          FROM %s t%s%s'
		'         GROUP BY 1) s'
		'  LEFT JOIN @extschema@.fct_models m ON m.id OPERATOR(pg_catalog.=) s.id'
		' ORDER BY 2 DESC, 1',
		'(no model)', '(unknown model) ',
		tbl, v_sample,
		CASE WHEN v_is_array THEN format(', pg_catalog.unnest(t.%I) v', col)
			 ELSE format(', LATERAL (SELECT t.%I) u(v) WHERE u.v IS NOT NULL', col) END)
		USING v_scale, v_sample OPERATOR(pg_catalog.<>) '';
END
$$;

COMMENT ON FUNCTION fct_column_models(regclass, name, integer) IS
	'the models of tbl.col''s values with row counts, estimated from a TABLESAMPLE of about sample_rows rows when the table is larger';

CREATE VIEW fct_columns AS
	SELECT c.relid AS "table",
		   c.attname AS "column",
		   CASE WHEN c.is_array THEN 'embedding[]' ELSE 'embedding' END AS type,
		   m.models,
		   m.estimated,
		   (SELECT pg_catalog.array_agg(i.indexrelid::pg_catalog.regclass::pg_catalog.text ORDER BY i.indexrelid)
			  FROM pg_catalog.pg_index i
			 WHERE i.indrelid OPERATOR(pg_catalog.=) c.relid
			   AND pg_catalog.strpos(pg_catalog.pg_get_indexdef(i.indexrelid), 'fct_upgrade(') OPERATOR(pg_catalog.>) 0
			   AND pg_catalog.strpos(pg_catalog.pg_get_indexdef(i.indexrelid),
									 pg_catalog.quote_ident(c.attname)) OPERATOR(pg_catalog.>) 0) AS upgrade_indexes
	  FROM @extschema@.fct_embedding_columns() c
	  LEFT JOIN LATERAL (SELECT pg_catalog.jsonb_object_agg(cm.model, cm.rows) AS models,
								pg_catalog.bool_or(cm.estimated) AS estimated
						   FROM @extschema@.fct_column_models(c.relid, c.attname) cm) m ON true;

COMMENT ON VIEW fct_columns IS
	'per column holding embeddings: its models with row counts (estimated from a sample on large tables) and the fct_upgrade indexes on it';

GRANT SELECT ON fct_columns TO PUBLIC;

-- The progress src/progress/ writes into each running command's query text.
CREATE VIEW fct_progress AS
	SELECT a.pid,
		   a.usename AS role,
		   a.datname AS database,
		   p.j OPERATOR(pg_catalog.->>) 'command' AS command,
		   p.j OPERATOR(pg_catalog.->>) 'target' AS target,
		   p.j OPERATOR(pg_catalog.->>) 'phase' AS phase,
		   nullif((p.j OPERATOR(pg_catalog.->>) 'done')::bigint, -1) AS done,
		   nullif((p.j OPERATOR(pg_catalog.->>) 'total')::bigint, -1) AS total,
		   -- a queue's worker runs each batch as a statement of its own: the run says when it began
		   coalesce((p.j OPERATOR(pg_catalog.->>) 'started')::timestamptz, a.query_start) AS started,
		   (p.j OPERATOR(pg_catalog.->>) 'updated')::timestamptz AS updated,
		   p.j OPERATOR(pg_catalog.-) ARRAY['command', 'target', 'phase', 'done', 'total', 'started', 'updated'] AS detail
	  FROM pg_catalog.pg_stat_activity a,
		   LATERAL (SELECT pg_catalog.substring(a.query, '^/\* fct_progress (\{.*?\}) \*/')::jsonb AS j) p
	 -- active: an idle session shows its last query, progress of a command that ended with an error
	 WHERE a.state OPERATOR(pg_catalog.=) 'active'
	   AND pg_catalog.starts_with(a.query, '/* fct_progress {') AND p.j IS NOT NULL;

COMMENT ON VIEW fct_progress IS
	'the running CALL fct_migrate, queued migrations and fct_fit_transformation of the sessions whose queries the caller may see (pg_stat_activity''s rule): phase, done of total, details';

GRANT SELECT ON fct_progress TO PUBLIC;
