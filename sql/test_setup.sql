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
