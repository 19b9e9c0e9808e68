-- 80_labels.sql: fct_set_train_prior_from runs only a schema-qualified count; the rest moved to
-- fct_set_train_prior_counted, whose search_path is pinned.

CREATE OR REPLACE FUNCTION fct_set_train_prior_from(label_set text, query text, alpha real DEFAULT 1)
RETURNS real[]
LANGUAGE plpgsql
AS $$
DECLARE
	counts	bigint[];
	total	bigint;
	unknown	bigint;
BEGIN
	IF alpha IS NULL OR alpha OPERATOR(pg_catalog.<) 0
	   OR alpha OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float4 THEN
		RAISE EXCEPTION 'smoothing alpha must be >= 0, not %', alpha
			USING ERRCODE = 'invalid_parameter_value';
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
		INTO counts, total, unknown USING (@extschema@.fct_label_set_row(label_set)).name;
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
	r		@extschema@.fct_label_sets := @extschema@.fct_label_set_row(label_set);
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
