-- Measurement functions of test/bench/lsh/compare, created in each benchmark database.
-- The same loop measures every method (lsh, pgvector HNSW and IVFFlat, the exact scan): only the table,
-- the column, the operator and the query table differ, so that its overhead (about 10 us a query) is
-- the same for all of them.

CREATE OR REPLACE FUNCTION cpu_ns() RETURNS bigint LANGUAGE sql AS $$
	-- the backend's CPU time in nanoseconds (first field of /proc/PID/schedstat): robust to the
	-- other load of a shared machine, unlike wall time
	SELECT pg_catalog.split_part(pg_catalog.pg_read_file('/proc/' || pg_catalog.pg_backend_pid() || '/schedstat'),
		' ', 1)::bigint
$$;

-- knn_TAG(lim, nq): runs the first nq queries of QTAB in qid order, ORDER BY COL OP q LIMIT 10 on TAB,
-- with WHERE cat < lim when lim is not null; returns the backend CPU time spent and the ids found,
-- ten per query (0 where fewer rows came back), in the order the scan returned them.
CREATE OR REPLACE FUNCTION bench_make_knn(tag text, tab text, col text, op text, qtab text)
RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE pg_catalog.format($body$
		CREATE OR REPLACE FUNCTION %1$I(lim int, nq int, OUT cpu bigint, OUT ids int[])
		LANGUAGE plpgsql AS $$
		DECLARE
			r record;
			got int[];
			t0 bigint;
		BEGIN
			ids := '{}';
			t0 := cpu_ns();
			FOR r IN SELECT qid, q FROM %5$I WHERE qid <= nq ORDER BY qid LOOP
				IF lim IS NULL THEN
					SELECT array_agg(id) INTO got FROM (SELECT id FROM %2$I ORDER BY %3$I %4$s r.q LIMIT 10) s;
				ELSE
					SELECT array_agg(id) INTO got FROM (SELECT id FROM %2$I WHERE cat < lim
						ORDER BY %3$I %4$s r.q LIMIT 10) s;
				END IF;
				got := coalesce(got, '{}');
				ids := ids || got || array_fill(0, ARRAY[10 - cardinality(got)]);
			END LOOP;
			cpu := cpu_ns() - t0;
		END $$
	$body$, 'knn_' || tag, tab, col, op, qtab);
END $f$;

-- bench_eval(tag, truth_table, truth_column, lim, nq): runs knn_TAG and scores it against the exact
-- top 10 in truth_table.truth_column: CPU ms per query, recall@10, adjacent order inversions (a row
-- farther than the row after it, by the exact distance of the column's operator, summed over the
-- queries) and the number of queries that got fewer than 10 rows.
CREATE OR REPLACE FUNCTION bench_eval(tag text, tab text, col text, op text, qtab text,
	truth text, truth_col text, lim int, nq int,
	OUT cpu_ms float8, OUT recall float8, OUT inversions int, OUT short int)
LANGUAGE plpgsql AS $f$
DECLARE
	res record;
BEGIN
	EXECUTE pg_catalog.format('SELECT * FROM %I($1, $2)', 'knn_' || tag) INTO res USING lim, nq;
	cpu_ms := res.cpu / 1e6 / nq;
	EXECUTE pg_catalog.format($q$
		WITH got AS (
			SELECT (i - 1) / 10 + 1 AS qid, (i - 1) %% 10 AS pos, $1[i] AS id
			FROM generate_series(1, cardinality($1)) i
		), scored AS (
			SELECT g.qid, g.pos, g.id, t.%5$I AS want, (SELECT x.%2$I %3$s q.q FROM %1$I x WHERE x.id = g.id) AS d
			FROM got g JOIN %4$I t USING (qid) JOIN %6$I q USING (qid)
		), ordered AS (
			SELECT *, lead(d) OVER (PARTITION BY qid ORDER BY pos) AS next_d FROM scored
		)
		SELECT avg(hits) / 10, sum(inv)::int, count(*) FILTER (WHERE n < 10)::int FROM (
			SELECT qid, count(*) FILTER (WHERE id = ANY (want)) AS hits,
				count(*) FILTER (WHERE next_d < d - 1e-6 * abs(d)) AS inv,
				count(*) FILTER (WHERE id <> 0) AS n
			FROM ordered GROUP BY qid) per_query
	$q$, tab, col, op, truth, truth_col, qtab) INTO recall, inversions, short USING res.ids;
END $f$;
