-- 80_labels.sql: label sets, label look-ups and label-prior correction.
--
-- A label set names a table of labels (an id column, an embedding column and
-- an optional bias column).  Its labels are numbered 0..C-1 once, when the set
-- is created or refreshed, in the order of the id column's default sort order
-- (numeric for integer ids, the column's collation for text): label index i is
-- the i-th smallest id.  fct_label_index keeps that numbering, and every prior
-- (real[] of length C) and every round of fct_label_rounds is indexed by it:
-- prior[i + 1] is the probability of the label with index i.
--
-- Priors are validated by fct_check_prior: C finite entries, each > 0 (a zero
-- in p_train would divide by zero; a zero in a predicted prior would make a
-- label impossible for ever, and EM could never bring it back), summing to 1
-- within 0.001 (then renormalised exactly).

CREATE TABLE fct_label_sets (
	name			text COLLATE "C" NOT NULL,
	label_table		regclass NOT NULL,
	id_col			name NOT NULL,
	embedding_col	name NOT NULL,
	bias_col		name,
	n_labels		integer NOT NULL,
	dims			integer,
	model			text,
	train_prior		real[] NOT NULL,
	train_prior_source text NOT NULL,
	prior			real[],
	prior_source	text,
	-- bumped whenever fct_label_index is rebuilt, so that caches of the
	-- label matrix know when the numbering changed
	labels_version	integer NOT NULL DEFAULT 1,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fct_label_sets_pkey PRIMARY KEY (name),
	CONSTRAINT fct_label_sets_name_check
		CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	CONSTRAINT fct_label_sets_prior_check
		CHECK (prior IS NULL OR prior_source IS NOT NULL)
);

COMMENT ON TABLE fct_label_sets IS
	'fct label sets: a table of labels (id, embedding, bias), its training prior and the predicted prior used for correction';

CREATE TABLE fct_label_index (
	-- a label set's name (fct_label_sets_children_check, no foreign key)
	label_set	text COLLATE "C" NOT NULL,
	idx			integer NOT NULL,
	label		text NOT NULL,
	CONSTRAINT fct_label_index_pkey PRIMARY KEY (label_set, idx),
	CONSTRAINT fct_label_index_label_key UNIQUE (label_set, label)
);

COMMENT ON TABLE fct_label_index IS
	'fct label numbering: label index idx (0..C-1) of each label id (as text); priors are indexed by it';

CREATE TABLE fct_label_rounds (
	-- a label set's name (fct_label_sets_children_check, no foreign key)
	label_set	text COLLATE "C" NOT NULL,
	round		integer NOT NULL,
	accuracies	real[] NOT NULL,
	proportions	real[] NOT NULL,
	recorded_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fct_label_rounds_pkey PRIMARY KEY (label_set, round)
);

COMMENT ON TABLE fct_label_rounds IS
	'deployment rounds: per-label accuracy of the deployed model and observed label proportions in each round';

CREATE TABLE fct_prior_adapters (
	-- a label set's name (fct_label_sets_children_check, no foreign key)
	label_set	text COLLATE "C" NOT NULL,
	n_labels	integer NOT NULL,
	hidden		integer NOT NULL,
	epochs		integer NOT NULL,
	lr			real NOT NULL,
	seed		bigint NOT NULL,
	recency		real NOT NULL,
	n_pairs		integer NOT NULL,
	loss		double precision NOT NULL,
	weights		real[] NOT NULL,
	trained_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fct_prior_adapters_pkey PRIMARY KEY (label_set)
);

COMMENT ON TABLE fct_prior_adapters IS
	'prior adapters (MLP C -> hidden -> hidden -> C, softmax output) fitted by fct_fit_prior_adapter';

-- The label set of a row of fct_label_index, fct_label_rounds or
-- fct_prior_adapters must exist, and deleting a label set deletes its rows.
-- Triggers keep that link instead of foreign keys, because pg_restore -j
-- loads the data of an extension's tables in any order (pg_dump records no
-- dependency between them), so a foreign key fails at random in a parallel
-- restore.  While a dump is restored (check_function_bodies off, as pg_dump
-- and pg_restore set it) the rows were consistent when dumped and the check
-- is skipped; otherwise the label sets named are locked FOR KEY SHARE, as a
-- foreign key would, so a concurrent delete cannot leave orphans.  One check
-- per statement over its new rows (a transition table): a label set numbers
-- millions of labels in one INSERT.
CREATE FUNCTION _fct_label_sets_children_check() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_missing	text;
BEGIN
	IF current_setting('check_function_bodies')::boolean THEN
		PERFORM FROM @extschema@.fct_label_sets s
		 WHERE s.name IN (SELECT n.label_set FROM new_rows n)
		   FOR KEY SHARE;
		SELECT n.label_set INTO v_missing FROM new_rows n
		 WHERE NOT EXISTS (SELECT FROM @extschema@.fct_label_sets s WHERE s.name = n.label_set)
		 LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'label set "%" does not exist', v_missing
				USING ERRCODE = 'foreign_key_violation',
					  DETAIL = format('%s.label_set must name a row of fct_label_sets.', TG_TABLE_NAME),
					  HINT = 'SELECT name FROM fct_label_sets lists the label sets.';
		END IF;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION _fct_label_sets_children_check() IS
	'internal: trigger checking that rows name an existing label set';
REVOKE ALL ON FUNCTION _fct_label_sets_children_check() FROM PUBLIC;

CREATE TRIGGER fct_label_index_label_set_insert
	AFTER INSERT ON fct_label_index REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_sets_children_check();
CREATE TRIGGER fct_label_index_label_set_update
	AFTER UPDATE ON fct_label_index REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_sets_children_check();
CREATE TRIGGER fct_label_rounds_label_set_insert
	AFTER INSERT ON fct_label_rounds REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_sets_children_check();
CREATE TRIGGER fct_label_rounds_label_set_update
	AFTER UPDATE ON fct_label_rounds REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_sets_children_check();
CREATE TRIGGER fct_prior_adapters_label_set_insert
	AFTER INSERT ON fct_prior_adapters REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_sets_children_check();
CREATE TRIGGER fct_prior_adapters_label_set_update
	AFTER UPDATE ON fct_prior_adapters REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_sets_children_check();

-- Deleting a label set deletes its rows (what ON DELETE CASCADE did); its
-- name cannot change while rows name it; TRUNCATE empties the three tables.
CREATE FUNCTION _fct_label_sets_children_cascade() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		TRUNCATE @extschema@.fct_label_index, @extschema@.fct_label_rounds,
				 @extschema@.fct_prior_adapters;
		RETURN NULL;
	END IF;
	IF TG_OP = 'UPDATE' THEN
		IF NEW.name IS DISTINCT FROM OLD.name AND
		   (EXISTS (SELECT FROM @extschema@.fct_label_index c WHERE c.label_set = OLD.name) OR
			EXISTS (SELECT FROM @extschema@.fct_label_rounds c WHERE c.label_set = OLD.name) OR
			EXISTS (SELECT FROM @extschema@.fct_prior_adapters c WHERE c.label_set = OLD.name)) THEN
			RAISE EXCEPTION 'cannot rename label set "%"', OLD.name
				USING ERRCODE = 'foreign_key_violation',
					  DETAIL = 'Its labels, rounds or adapter refer to it by name.';
		END IF;
		RETURN NEW;
	END IF;
	DELETE FROM @extschema@.fct_label_index c WHERE c.label_set = OLD.name;
	DELETE FROM @extschema@.fct_label_rounds c WHERE c.label_set = OLD.name;
	DELETE FROM @extschema@.fct_prior_adapters c WHERE c.label_set = OLD.name;
	RETURN OLD;
END
$$;
COMMENT ON FUNCTION _fct_label_sets_children_cascade() IS
	'internal: trigger deleting a label set''s rows with it';
REVOKE ALL ON FUNCTION _fct_label_sets_children_cascade() FROM PUBLIC;

CREATE TRIGGER fct_label_sets_children_cascade
	AFTER UPDATE OF name OR DELETE ON fct_label_sets
	FOR EACH ROW EXECUTE FUNCTION _fct_label_sets_children_cascade();
CREATE TRIGGER fct_label_sets_children_truncate
	AFTER TRUNCATE ON fct_label_sets
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_sets_children_cascade();

SELECT pg_catalog.pg_extension_config_dump('fct_label_sets', '');
SELECT pg_catalog.pg_extension_config_dump('fct_label_index', '');
SELECT pg_catalog.pg_extension_config_dump('fct_label_rounds', '');
SELECT pg_catalog.pg_extension_config_dump('fct_prior_adapters', '');

GRANT SELECT ON fct_label_sets, fct_label_index, fct_label_rounds, fct_prior_adapters TO PUBLIC;

-- Cache invalidation (src/labels/labelset.c): a change to the catalog, or to a label
-- table, sends a relcache invalidation of that table, which drops the cached
-- priors or label matrices in every backend.
CREATE FUNCTION _fct_label_set_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_relcache_invalidate'
	LANGUAGE C;
COMMENT ON FUNCTION _fct_label_set_invalidate() IS
	'internal: trigger dropping cached label matrices on a change (executable: fct_create_label_set creates it on the caller''s label table)';

CREATE TRIGGER fct_label_sets_invalidate
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fct_label_sets
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_label_set_invalidate();

-- fct_check_prior: validate a prior for a set of n labels and return it
-- renormalised to sum to exactly 1 (errors: 22004 null, 22023 otherwise).
CREATE FUNCTION fct_check_prior(prior real[], n_labels integer, what text DEFAULT 'prior')
RETURNS real[]
	AS 'MODULE_PATHNAME', 'fct_check_prior'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION fct_check_prior(real[], integer, text) IS
	'validates a prior for n labels (finite, > 0, n entries) and returns it normalised';

CREATE FUNCTION _fct_label_set_row(label_set text)
RETURNS @extschema@.fct_label_sets
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets;
BEGIN
	SELECT * INTO r FROM @extschema@.fct_label_sets s WHERE s.name = label_set;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'label set "%" does not exist', label_set
			USING ERRCODE = 'undefined_object',
				  HINT = 'SELECT name FROM fct_label_sets lists the label sets.';
	END IF;
	RETURN r;
END
$$;
COMMENT ON FUNCTION _fct_label_set_row(text) IS
	'internal: the catalog row of a label set, or 42704 (executable: the label functions call it as the caller)';

-- (Re)number the labels of a set from its table; returns C.  Internal to
-- fct_create_label_set and fct_refresh_label_set.
CREATE FUNCTION _fct_label_set_index_labels(label_set text)
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
COMMENT ON FUNCTION _fct_label_set_index_labels(text) IS
	'internal: numbers the labels of a label set (executable: the label functions call it as the caller)';

CREATE FUNCTION fct_create_label_set(name text, label_table regclass, id_col name,
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
	-- A Citus reference table gets it on every shard placement instead
	-- (_fct_citus_label_trigger, 90_citus.sql).
	IF NOT EXISTS (SELECT 1 FROM pg_trigger t
					WHERE t.tgrelid = v_table AND t.tgname = 'fct_label_set_invalidate')
	   AND NOT @extschema@._fct_citus_label_trigger(v_table, true) THEN
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

COMMENT ON FUNCTION fct_create_label_set(text, regclass, name, name, name, real[]) IS
	'declare a table of labels (id, embedding, optional bias) as a label set; returns the number of labels';

-- Re-number the labels after the label table gained or lost labels.  When the
-- ids are unchanged the priors are kept; otherwise the training prior goes
-- back to uniform, the predicted prior and the adapter are dropped (their
-- entries no longer mean the same labels) and a notice says so.
CREATE FUNCTION fct_refresh_label_set(label_set text)
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
COMMENT ON FUNCTION fct_refresh_label_set(text) IS
	'numbers the labels of a label set again after labels were added or removed; returns the number of labels';

CREATE FUNCTION fct_drop_label_set(label_set text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets := @extschema@._fct_label_set_row(label_set);
BEGIN
	DELETE FROM @extschema@.fct_label_sets s WHERE s.name = r.name;
	IF NOT EXISTS (SELECT 1 FROM @extschema@.fct_label_sets s WHERE s.label_table = r.label_table)
	   AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = r.label_table)
	   AND NOT @extschema@._fct_citus_label_trigger(r.label_table, false) THEN
		EXECUTE format('DROP TRIGGER IF EXISTS fct_label_set_invalidate ON %s', r.label_table);
	END IF;
END
$$;
COMMENT ON FUNCTION fct_drop_label_set(text) IS
	'drops a label set (its catalog rows and the trigger on its label table; the label table stays)';

-- Training prior counted from a query returning one label id per training
-- example (any type; compared as text with the label ids), with additive
-- smoothing alpha: p_train(y) = (count(y) + alpha) / (N + C * alpha).  No
-- pinned search_path: the query is the caller's and runs with the caller's.
-- So this function only runs the count, in which every operator, function
-- and type is schema-qualified (src/query/README.md: a schema first on the
-- caller's search_path must not get its own = or count run here), and leaves
-- the rest to fct_set_train_prior_counted, whose search_path is pinned.
-- A caller's query text is one read-only SELECT (src/query/user_query.c: 42601 or 0A000 with the
-- query's first words); returns how many columns it returns.  fct_set_train_prior_from calls it as
-- its caller (it runs the caller's query with the caller's rights), so it stays executable.
CREATE FUNCTION _fct_check_select(query text, what text)
RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_check_select'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION _fct_check_select(text, text) IS
	'internal: checks that a query text is one read-only SELECT and returns its column count (called by fct_set_train_prior_from as the caller)';

CREATE FUNCTION fct_set_train_prior_from(label_set text, query text, alpha real DEFAULT 1)
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
COMMENT ON FUNCTION fct_set_train_prior_from(text, text, real) IS
	'sets the training prior from the labels a query returns (add-alpha smoothing)';

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

-- Install the predicted prior used for correction (NULL removes it).
CREATE FUNCTION fct_set_prior(label_set text, prior real[], source text DEFAULT 'manual')
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
COMMENT ON FUNCTION fct_set_prior(text, real[], text) IS
	'sets the current (deployment) prior of a label set; NULL removes it';

CREATE FUNCTION fct_set_train_prior(label_set text, train_prior real[])
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
COMMENT ON FUNCTION fct_set_train_prior(text, real[]) IS
	'sets the training prior of a label set';

-- Reads every label of a set (checks, dimension, model); internal.
CREATE FUNCTION _fct_label_set_scan(label_set text, OUT dims integer, OUT model text)
	AS 'MODULE_PATHNAME', 'fct_label_set_scan'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION _fct_label_set_scan(text) IS
	'internal: reads every label once and reports dimension and model (executable: the label functions call it as the caller)';

CREATE FUNCTION fct_top_labels(label_set text, q embedding, k integer DEFAULT 10,
							   corrected boolean DEFAULT true)
RETURNS TABLE (label text, score real, prob real)
	AS 'MODULE_PATHNAME', 'fct_top_labels'
	LANGUAGE C STABLE STRICT ROWS 10;

COMMENT ON FUNCTION fct_top_labels(text, embedding, integer, boolean) IS
	'the k labels of a label set with the highest probability for query q (score = <label, q> + bias; softmax over the candidates; prior correction)';

CREATE FUNCTION fct_top_labels_batch(label_set text, queries text, k integer DEFAULT 10,
									 corrected boolean DEFAULT true)
RETURNS TABLE (query_id bigint, label text, score real, prob real)
	AS 'MODULE_PATHNAME', 'fct_top_labels_batch'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_top_labels_batch(text, text, integer, boolean) IS
	'fct_top_labels for every (query_id, q) row of a query, scored with matrix products';

-- The path fct_top_labels takes for a label set in this session (src/labels/lookup.c): under
-- fct.label_search = auto, the faster of the exact and the index path, measured at the first look-up.
CREATE FUNCTION fct_label_search_path(label_set text, OUT path text, OUT exact_ms double precision,
									  OUT index_ms double precision)
	AS 'MODULE_PATHNAME', 'fct_label_search_path'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_label_search_path(text) IS
	'the look-up path (exact or index) fct_top_labels takes for a label set in this session, with the times fct.label_search = auto measured';

CREATE FUNCTION fct_estimate_prior_em(label_set text, queries text,
									  max_iter integer DEFAULT 100,
									  tol double precision DEFAULT 1e-6)
RETURNS real[]
	AS 'MODULE_PATHNAME', 'fct_estimate_prior_em'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_estimate_prior_em(text, text, integer, double precision) IS
	'label prior of a window of unlabelled queries, by EM (Saerens, Latinne and Decaestecker 2002)';

CREATE FUNCTION fct_fit_prior_adapter(label_set text, hidden integer DEFAULT 256,
									  epochs integer DEFAULT 500, lr real DEFAULT 0.001,
									  seed bigint DEFAULT 0, recency real DEFAULT 0.9)
RETURNS double precision
	AS 'MODULE_PATHNAME', 'fct_fit_prior_adapter'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_fit_prior_adapter(text, integer, integer, real, bigint, real) IS
	'fit the prior adapter (MLP C -> hidden -> hidden -> C, KL loss) on fct_label_rounds; returns the final loss';

CREATE FUNCTION fct_predict_prior(label_set text, accuracies real[])
RETURNS real[]
	AS 'MODULE_PATHNAME', 'fct_predict_prior'
	LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION fct_predict_prior(text, real[]) IS
	'next round''s label prior predicted by the fitted adapter from the deployed model''s per-label accuracies';
