-- 83_columns.sql: the columns of the database that hold embeddings.
--
-- What a model's drop checks (85_drop.sql) and what the overview lists
-- (87_overview.sql): every column of type embedding, of a domain over it, or
-- an array of either, in an ordinary table, a partitioned table (its
-- partitions are read through it, not listed again) or a populated
-- materialized view.  Other sessions' temporary tables cannot be read and are
-- left out; foreign tables are left out (their values name the models of the
-- server that stores them).
CREATE FUNCTION fct_embedding_columns()
RETURNS TABLE (relid regclass, attname name, is_array boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE emb(oid) AS (
		SELECT '@extschema@.embedding'::pg_catalog.regtype::pg_catalog.oid
		UNION
		SELECT ty.oid FROM pg_catalog.pg_type ty JOIN emb ON ty.typbasetype OPERATOR(pg_catalog.=) emb.oid
		 WHERE ty.typtype OPERATOR(pg_catalog.=) 'd'
	)
	SELECT c.oid::pg_catalog.regclass, a.attname,
		   a.atttypid OPERATOR(pg_catalog.<>) ALL (SELECT emb.oid FROM emb)
	  FROM pg_catalog.pg_attribute a
	  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
	 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}'::"char"[])
	   AND NOT c.relispartition
	   AND (c.relkind OPERATOR(pg_catalog.<>) 'm' OR c.relispopulated)
	   AND (c.relpersistence OPERATOR(pg_catalog.<>) 't'
			OR c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
	   AND (a.atttypid OPERATOR(pg_catalog.=) ANY (SELECT emb.oid FROM emb)
			OR a.atttypid OPERATOR(pg_catalog.=) ANY (SELECT ty.typarray FROM pg_catalog.pg_type ty
													   WHERE ty.oid OPERATOR(pg_catalog.=) ANY (SELECT emb.oid FROM emb)))
	 ORDER BY c.oid::pg_catalog.regclass::pg_catalog.text, a.attnum
$$;

COMMENT ON FUNCTION fct_embedding_columns() IS
	'the table columns of the database that hold embeddings (embedding, a domain over it, or an array of them)';
