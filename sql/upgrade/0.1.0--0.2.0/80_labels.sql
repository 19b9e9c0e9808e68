-- 80_labels.sql: fct_set_train_prior_from runs only a schema-qualified count; the rest moved to
-- fct_set_train_prior_counted, whose search_path is pinned.

-- labels: internal helpers renamed _fct_*, comments, trigger functions not executable by PUBLIC (release, issue #15 item 4)
ALTER FUNCTION fct_label_sets_children_check() RENAME TO _fct_label_sets_children_check;
ALTER FUNCTION fct_label_sets_children_cascade() RENAME TO _fct_label_sets_children_cascade;
ALTER FUNCTION fct_label_set_invalidate() RENAME TO _fct_label_set_invalidate;
ALTER FUNCTION fct_label_set_row(text) RENAME TO _fct_label_set_row;
ALTER FUNCTION fct_label_set_index_labels(text) RENAME TO _fct_label_set_index_labels;
ALTER FUNCTION fct_label_set_scan(text) RENAME TO _fct_label_set_scan;
COMMENT ON FUNCTION _fct_label_sets_children_check() IS
	'internal: trigger checking that rows name an existing label set';
REVOKE ALL ON FUNCTION _fct_label_sets_children_check() FROM PUBLIC;
COMMENT ON FUNCTION _fct_label_sets_children_cascade() IS
	'internal: trigger deleting a label set''s rows with it';
REVOKE ALL ON FUNCTION _fct_label_sets_children_cascade() FROM PUBLIC;
COMMENT ON FUNCTION _fct_label_set_invalidate() IS
	'internal: trigger dropping cached label matrices on a change (executable: fct_create_label_set creates it on the caller''s label table)';
COMMENT ON FUNCTION fct_check_prior(real[], integer, text) IS
	'validates a prior for n labels (finite, > 0, n entries) and returns it normalised';
COMMENT ON FUNCTION _fct_label_set_row(text) IS
	'internal: the catalog row of a label set, or 42704 (executable: the label functions call it as the caller)';
COMMENT ON FUNCTION _fct_label_set_index_labels(text) IS
	'internal: numbers the labels of a label set (executable: the label functions call it as the caller)';
COMMENT ON FUNCTION fct_refresh_label_set(text) IS
	'numbers the labels of a label set again after labels were added or removed; returns the number of labels';
COMMENT ON FUNCTION fct_drop_label_set(text) IS
	'drops a label set (its catalog rows and the trigger on its label table; the label table stays)';
COMMENT ON FUNCTION fct_set_train_prior_from(text, text, real) IS
	'sets the training prior from the labels a query returns (add-alpha smoothing)';
COMMENT ON FUNCTION fct_set_prior(text, real[], text) IS
	'sets the current (deployment) prior of a label set; NULL removes it';
COMMENT ON FUNCTION fct_set_train_prior(text, real[]) IS
	'sets the training prior of a label set';
COMMENT ON FUNCTION _fct_label_set_scan(text) IS
	'internal: reads every label once and reports dimension and model (executable: the label functions call it as the caller)';

-- A caller's query text is one read-only SELECT (src/query/user_query.c: 42601 or 0A000 with the
-- query's first words); returns how many columns it returns.  fct_set_train_prior_from calls it as
-- its caller (it runs the caller's query with the caller's rights), so it stays executable.
CREATE FUNCTION _fct_check_select(query text, what text)
RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_check_select'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION _fct_check_select(text, text) IS
	'internal: checks that a query text is one read-only SELECT and returns its column count (called by fct_set_train_prior_from as the caller)';

CREATE OR REPLACE FUNCTION fct_set_train_prior_from(label_set text, query text, alpha real DEFAULT 1)
RETURNS real[]
LANGUAGE plpgsql
AS $$
DECLARE
	counts	bigint[];
	total	bigint;
	unknown	bigint;
	ncols	integer;
BEGIN
	IF alpha IS NULL OR alpha OPERATOR(pg_catalog.<) 0
	   OR alpha OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float4 THEN
		RAISE EXCEPTION 'smoothing alpha must be >= 0, not %', alpha
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	ncols := @extschema@._fct_check_select(query, 'fct_set_train_prior_from');
	IF ncols OPERATOR(pg_catalog.<>) 1 THEN
		RAISE EXCEPTION 'the query of fct_set_train_prior_from must return one column, the label of each training example'
			USING ERRCODE = 'syntax_error',
				  DETAIL = pg_catalog.format('It returns %s columns.', ncols),
				  HINT = 'Select only the label column: SELECT label FROM training_rows.';
	END IF;
	EXECUTE pg_catalog.format(
		E'WITH y AS (SELECT q.label::pg_catalog.text AS label FROM (%s\n) AS q(label)) '
		'SELECT (SELECT pg_catalog.array_agg(coalesce(c.n, 0) ORDER BY i.idx) '
		'          FROM @extschema@.fct_label_index i '
		'          LEFT JOIN (SELECT y.label, pg_catalog.count(*) AS n FROM y GROUP BY y.label) c '
		'                 ON c.label OPERATOR(pg_catalog.=) i.label '
		'         WHERE i.label_set OPERATOR(pg_catalog.=) $1), '
		'       (SELECT pg_catalog.count(*) FROM y), '
		'       (SELECT pg_catalog.count(*) FROM y WHERE NOT EXISTS (SELECT 1 FROM @extschema@.fct_label_index i '
		'                     WHERE i.label_set OPERATOR(pg_catalog.=) $1 '
		'                       AND i.label OPERATOR(pg_catalog.=) y.label))',
		query)
		INTO counts, total, unknown USING (@extschema@._fct_label_set_row(label_set)).name;
	RETURN @extschema@.fct_set_train_prior_counted(label_set, counts, total, unknown, alpha);
END
$$;

-- The rest of fct_set_train_prior_from, once the labels are counted; internal.
CREATE FUNCTION fct_set_train_prior_counted(label_set text, counts bigint[], total bigint,
											unknown bigint, alpha real)
RETURNS real[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r		@extschema@.fct_label_sets := @extschema@._fct_label_set_row(label_set);
	p		real[];
BEGIN
	IF unknown > 0 THEN
		RAISE EXCEPTION 'training labels include % values that are not labels of label set "%"',
			unknown, r.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The query must return one label id of the set per training example.';
	END IF;
	SELECT array_agg(((c + alpha) / (total + r.n_labels * alpha))::real ORDER BY o) INTO p
	  FROM unnest(counts) WITH ORDINALITY AS u(c, o);
	p := @extschema@.fct_check_prior(p, r.n_labels, 'training prior');
	UPDATE @extschema@.fct_label_sets s
	   SET train_prior = p,
		   train_prior_source = format('counted: %s examples, alpha %s', total, alpha),
		   updated_at = now()
	 WHERE s.name = r.name;
	RETURN p;
END
$$;

COMMENT ON FUNCTION fct_set_train_prior_counted(text, bigint[], bigint, bigint, real) IS
	'internal to fct_set_train_prior_from';

CREATE OR REPLACE FUNCTION fct_create_label_set(name text, label_table regclass, id_col name,
									 embedding_col name, bias_col name DEFAULT NULL,
									 train_prior real[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name		text := $1;
	v_table		regclass := $2;
	n			integer;
	col			name;
	col_type	regtype;
	st			record;
BEGIN
	IF v_name IS NULL OR v_table IS NULL OR id_col IS NULL OR embedding_col IS NULL THEN
		RAISE EXCEPTION 'label set name, table, id column and embedding column must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF v_name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' THEN
		RAISE EXCEPTION 'invalid label set name "%"', v_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A label set name has 1 to 63 characters among letters, digits, "_", "." and "-", and starts with a letter or a digit.';
	END IF;
	IF EXISTS (SELECT 1 FROM @extschema@.fct_label_sets s WHERE s.name = v_name) THEN
		RAISE EXCEPTION 'label set "%" already exists', v_name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Drop it with fct_drop_label_set first, or choose another name.';
	END IF;
	FOREACH col IN ARRAY ARRAY[id_col, embedding_col, bias_col] LOOP
		CONTINUE WHEN col IS NULL;
		SELECT a.atttypid::regtype INTO col_type FROM pg_attribute a
		 WHERE a.attrelid = v_table AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'column "%" of % does not exist', col, v_table
				USING ERRCODE = 'undefined_column';
		END IF;
		IF col = embedding_col AND col_type <> '@extschema@.embedding'::regtype THEN
			RAISE EXCEPTION 'column "%" of % has type %, not embedding', col, v_table, col_type
				USING ERRCODE = 'datatype_mismatch';
		END IF;
		IF col = bias_col AND col_type NOT IN ('real'::regtype, 'double precision'::regtype) THEN
			RAISE EXCEPTION 'bias column "%" of % has type %, not real or double precision',
				col, v_table, col_type
				USING ERRCODE = 'datatype_mismatch';
		END IF;
	END LOOP;

	INSERT INTO @extschema@.fct_label_sets
		(name, label_table, id_col, embedding_col, bias_col, n_labels, train_prior, train_prior_source)
		VALUES (v_name, v_table, id_col, embedding_col, bias_col, 0, '{}', 'uniform');
	n := @extschema@._fct_label_set_index_labels(v_name);
	UPDATE @extschema@.fct_label_sets s
	   SET n_labels = n,
		   train_prior = CASE WHEN $6 IS NULL
						 THEN array_fill((1.0 / n)::real, ARRAY[n])
						 ELSE @extschema@.fct_check_prior($6, n, 'training prior') END,
		   train_prior_source = CASE WHEN $6 IS NULL THEN 'uniform' ELSE 'given' END
	 WHERE s.name = v_name;
	-- Reads every label once: checks embeddings (not null, one dimension, one
	-- model) and biases, and reports the dimension and model.
	SELECT * INTO st FROM @extschema@._fct_label_set_scan(v_name);
	UPDATE @extschema@.fct_label_sets s SET dims = st.dims, model = st.model
	 WHERE s.name = v_name;

	-- Changes to the label table invalidate the cached label matrices.  The
	-- trigger belongs to the extension (DEPENDS ON EXTENSION: dropped with
	-- it, kept by pg_dump), so that it alone does not make a plain DROP
	-- EXTENSION fct fail once no user object needs fct.
	IF NOT EXISTS (SELECT 1 FROM pg_trigger t
					WHERE t.tgrelid = v_table AND t.tgname = 'fct_label_set_invalidate') THEN
		EXECUTE format('CREATE TRIGGER fct_label_set_invalidate '
					   'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._fct_label_set_invalidate()',
					   v_table);
		EXECUTE format('ALTER TRIGGER fct_label_set_invalidate ON %s DEPENDS ON EXTENSION fct',
					   v_table);
	END IF;
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION fct_refresh_label_set(label_set text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r		@extschema@.fct_label_sets := @extschema@._fct_label_set_row(label_set);
	before	text[];
	after	text[];
	n		integer;
	st		record;
BEGIN
	SELECT array_agg(i.label ORDER BY i.idx) INTO before
	  FROM @extschema@.fct_label_index i WHERE i.label_set = r.name;
	n := @extschema@._fct_label_set_index_labels(r.name);
	SELECT array_agg(i.label ORDER BY i.idx) INTO after
	  FROM @extschema@.fct_label_index i WHERE i.label_set = r.name;
	IF before IS DISTINCT FROM after THEN
		RAISE NOTICE 'labels of label set "%" changed (% -> % labels): priors reset',
			r.name, r.n_labels, n;
		UPDATE @extschema@.fct_label_sets s
		   SET n_labels = n, labels_version = s.labels_version + 1, updated_at = now(),
			   train_prior = array_fill((1.0 / n)::real, ARRAY[n]),
			   train_prior_source = 'uniform', prior = NULL, prior_source = NULL
		 WHERE s.name = r.name;
		DELETE FROM @extschema@.fct_prior_adapters a WHERE a.label_set = r.name;
	END IF;
	SELECT * INTO st FROM @extschema@._fct_label_set_scan(r.name);
	UPDATE @extschema@.fct_label_sets s SET dims = st.dims, model = st.model, updated_at = now()
	 WHERE s.name = r.name;
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION fct_drop_label_set(label_set text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets := @extschema@._fct_label_set_row(label_set);
BEGIN
	DELETE FROM @extschema@.fct_label_sets s WHERE s.name = r.name;
	IF NOT EXISTS (SELECT 1 FROM @extschema@.fct_label_sets s WHERE s.label_table = r.label_table)
	   AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = r.label_table) THEN
		EXECUTE format('DROP TRIGGER IF EXISTS fct_label_set_invalidate ON %s', r.label_table);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION fct_set_prior(label_set text, prior real[], source text DEFAULT 'manual')
RETURNS real[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets := @extschema@._fct_label_set_row(label_set);
	p	real[];
BEGIN
	IF prior IS NOT NULL THEN
		p := @extschema@.fct_check_prior(prior, r.n_labels, 'prior');
	END IF;
	UPDATE @extschema@.fct_label_sets s
	   SET prior = p, prior_source = CASE WHEN p IS NULL THEN NULL ELSE coalesce(source, 'manual') END,
		   updated_at = now()
	 WHERE s.name = r.name;
	RETURN p;
END
$$;

CREATE OR REPLACE FUNCTION fct_set_train_prior(label_set text, train_prior real[])
RETURNS real[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets := @extschema@._fct_label_set_row(label_set);
	p	real[] := @extschema@.fct_check_prior(train_prior, r.n_labels, 'training prior');
BEGIN
	UPDATE @extschema@.fct_label_sets s
	   SET train_prior = p, train_prior_source = 'given', updated_at = now()
	 WHERE s.name = r.name;
	RETURN p;
END
$$;

CREATE OR REPLACE FUNCTION _fct_label_set_index_labels(label_set text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r			@extschema@.fct_label_sets := @extschema@._fct_label_set_row(label_set);
	n_rows		bigint;
	n_distinct	bigint;
	n_null		bigint;
BEGIN
	EXECUTE format('SELECT count(*), count(DISTINCT %1$I), count(*) - count(%1$I) FROM %2$s',
				   r.id_col, r.label_table)
		INTO n_rows, n_distinct, n_null;
	IF n_null > 0 OR n_rows <> n_distinct THEN
		RAISE EXCEPTION 'label ids of % must be unique and not null', r.label_table
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('%s rows, %s distinct ids, %s null ids.', n_rows, n_distinct, n_null),
				  HINT = format('Add a primary key on column %I.', r.id_col);
	END IF;
	IF n_rows = 0 THEN
		RAISE EXCEPTION 'label table % is empty', r.label_table
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Insert the labels before creating the label set.';
	END IF;
	DELETE FROM @extschema@.fct_label_index i WHERE i.label_set = r.name;
	EXECUTE format('INSERT INTO @extschema@.fct_label_index (label_set, idx, label) '
				   'SELECT $1, (row_number() OVER (ORDER BY %1$I))::integer - 1, %1$I::text FROM %2$s',
				   r.id_col, r.label_table)
		USING r.name;
	RETURN n_rows::integer;
END
$$;

-- The path fct_top_labels takes for a label set in this session (src/labels/lookup.c): under
-- fct.label_search = auto, the faster of the exact and the index path, measured at the first look-up.
CREATE FUNCTION fct_label_search_path(label_set text, OUT path text, OUT exact_ms double precision,
									  OUT index_ms double precision)
	AS 'MODULE_PATHNAME', 'fct_label_search_path'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_label_search_path(text) IS
	'the look-up path (exact or index) fct_top_labels takes for a label set in this session, with the times fct.label_search = auto measured';
