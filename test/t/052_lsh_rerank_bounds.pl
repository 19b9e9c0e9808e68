# The codes' lower bounds against the operators, through the executor's own check.
#
# A coded lsh index (page format 4) returns each row with its code's lower bound on the distance and
# lets the executor recompute the operator on the heap row (xs_recheckorderby).  PostgreSQL stops the
# query with "index returned tuples in wrong order" if the value it computes is below the index's, so
# every bound must be at most the operator's float8 result bit for bit (src/lsh/lshcodebound.c, the
# allowances for rounding).  Here every row of each table is returned through the index for queries
# where rounding matters most: a query equal to a stored row (distance 0), exact and near duplicates,
# rows negated (cosine near 2), norms 1e6 and 1e-18 (products that underflow), a zero row and a zero
# query; inner product, cosine and L2, rows added by the build and by inserts.  With
# fct.lsh_margin = 1000 the scan is exact: the distances must be those of the exact plan, in order.
#
# Seen failing: with the allowances removed (rel = abs = 0 in lsh_code_bounds_init) the first query
# equal to a stored row stops with "index returned tuples in wrong order".
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;
use lsh_common;

my $node = fct_node('lsh_rerank_bounds');
$node->safe_psql('postgres', lsh_mixture_sql('base', 4000, 24, 40, 0.3));

# the rows where rounding matters: id 100000 + ...
my $special = q{
SELECT 100000 + id, e FROM base WHERE id <= 20                       -- exact duplicates
UNION ALL SELECT 100100 + id, (SELECT array_agg((x * (1 + 1e-6))::real ORDER BY o)
	FROM unnest(fct_vector(e)) WITH ORDINALITY u(x, o))::embedding FROM base WHERE id BETWEEN 21 AND 40
UNION ALL SELECT 100200 + id, (SELECT array_agg((x * 1e6)::real ORDER BY o)
	FROM unnest(fct_vector(e)) WITH ORDINALITY u(x, o))::embedding FROM base WHERE id BETWEEN 41 AND 50
UNION ALL SELECT 100300 + id, (SELECT array_agg((x * 1e-18)::real ORDER BY o)
	FROM unnest(fct_vector(e)) WITH ORDINALITY u(x, o))::embedding FROM base WHERE id BETWEEN 51 AND 55
UNION ALL SELECT 100400 + id, (SELECT array_agg((-x)::real ORDER BY o)
	FROM unnest(fct_vector(e)) WITH ORDINALITY u(x, o))::embedding FROM base WHERE id BETWEEN 61 AND 80
UNION ALL SELECT 100500, array_fill(0::real, ARRAY[24])::embedding
};

my %ops = (ip => [ 'embedding_ip_ops', '<#>' ], cosine => [ 'embedding_cosine_ops', '<=>' ],
	l2 => [ 'embedding_l2_ops', '<->' ]);

# queries: the special rows themselves and a few ordinary ones, a zero query, and perturbed copies
$node->safe_psql('postgres', qq{
CREATE TABLE queries AS
	SELECT row_number() OVER (ORDER BY id) AS qid, e AS q FROM ($special UNION ALL
		SELECT id, e FROM base WHERE id BETWEEN 1000 AND 1010) s(id, e);
INSERT INTO queries SELECT 1000 + qid, (SELECT array_agg((x * (1 - 1e-7))::real ORDER BY o)
	FROM unnest(fct_vector(q)) WITH ORDINALITY u(x, o))::embedding FROM queries WHERE qid <= 40;
});

for my $m (qw(l2 ip cosine))
{
	my ($opclass, $op) = @{ $ops{$m} };
	my $t = "t_$m";
	# half the special rows before the build (their codes learned with them), half inserted after
	$node->safe_psql('postgres', qq{
CREATE TABLE $t AS SELECT * FROM base;
INSERT INTO $t SELECT * FROM ($special) s(id, e) WHERE id % 2 = 0;
CREATE INDEX ${t}_lsh ON $t USING lsh (e $opclass);
INSERT INTO $t SELECT * FROM ($special) s(id, e) WHERE id % 2 = 1;
ANALYZE $t;
});
	my $sql = qq{
CREATE TEMP TABLE res AS
SELECT qid, ARRAY(SELECT e $op qs.q FROM $t ORDER BY e $op qs.q) AS d FROM queries qs;
};
	my $out = $node->safe_psql('postgres', qq{
SET enable_seqscan = off; SET fct.lsh_margin = 1000;
EXPLAIN (COSTS OFF) SELECT qid, ARRAY(SELECT e $op qs.q FROM $t ORDER BY e $op qs.q) FROM queries qs;
$sql
ALTER TABLE res RENAME TO got;
SET enable_seqscan = on; SET enable_indexscan = off; SET enable_bitmapscan = off;
$sql
SELECT '#rows', sum(cardinality(d)) FROM got;
SELECT '#differ', count(*) FROM got JOIN res USING (qid) WHERE got.d IS DISTINCT FROM res.d;
SELECT '#inv', count(*) FROM got, LATERAL generate_subscripts(d, 1) i WHERE i > 1 AND d[i - 1] > d[i];
});
	like($out, qr/Index Scan using ${t}_lsh/, "$m: the queries use the lsh index");
	my ($rows) = $out =~ /#rows\|(\d+)/;
	my ($differ) = $out =~ /#differ\|(\d+)/;
	my ($inv) = $out =~ /#inv\|(\d+)/;
	my ($n) = $node->safe_psql('postgres', "SELECT count(*) * (SELECT count(*) FROM queries) FROM $t");
	is($rows, $n, "$m: every row of every query returned through the index (no bound above the operator)");
	is($differ, 0, "$m: the distances those of the exact plan");
	is($inv, 0, "$m: in order");
	is($node->safe_psql('postgres', "SELECT missing || '|' || dangling || '|' || misplaced FROM fct_lsh_verify('${t}_lsh')"),
		'0|0|0', "$m: fct_lsh_verify");

	# the AVX2 bounds against the plain ones (fct.kernel_variant = 'scalar'): the same bits, so the
	# same rows at the default margin and the same number of rows the index returned before each
	# LIMIT was met (a looser bound lets more rows through, a tighter one stops the query)
	my %work;
	for my $v (qw(auto scalar))
	{
		$work{$v} = $node->safe_psql('postgres', qq{
BEGIN;
SET LOCAL enable_seqscan = off; SET LOCAL fct.kernel_variant = '$v';
CREATE TABLE k_${m}_$v AS SELECT qid, ARRAY(SELECT id FROM $t ORDER BY e $op qs.q LIMIT 10) AS ids FROM queries qs;
SELECT pg_stat_get_xact_tuples_returned('${t}_lsh'::regclass);
COMMIT;});
	}
	cmp_ok($work{auto}, '>=', 10 * $node->safe_psql('postgres', 'SELECT count(*) FROM queries'),
		"$m: the LIMIT 10 queries read the index");
	is($work{auto}, $work{scalar}, "$m: the AVX2 bounds let as many rows through as the plain ones");
	is($node->safe_psql('postgres', "SELECT count(*) FROM k_${m}_auto a JOIN k_${m}_scalar s USING (qid) WHERE a.ids IS DISTINCT FROM s.ids"),
		'0', "$m: and the same rows");
}

# the planner: ORDER BY ... LIMIT, with a filter, in a PL/pgSQL loop (a cached plan); never an
# index-only scan (the entries hold no vector)
my $plan = $node->safe_psql('postgres', "EXPLAIN (COSTS OFF) SELECT id FROM t_l2 ORDER BY e <-> '[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]'::embedding LIMIT 10");
like($plan, qr/Index Scan using t_l2_lsh/, 'ORDER BY LIMIT: the lsh index');
unlike($plan, qr/Index Only Scan/, 'not an index-only scan');
like($node->safe_psql('postgres', "EXPLAIN (COSTS OFF) SELECT id FROM t_l2 WHERE id > 100 ORDER BY e <-> '[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]'::embedding LIMIT 10"),
	qr/Index Scan using t_l2_lsh/, 'with a filter: the lsh index');
is($node->safe_psql('postgres', qq{
CREATE FUNCTION loop_dists() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE r record; s text := '';
BEGIN
	-- between two queries, not a row of the table (a row finds itself and its copies in its own list)
	FOR r IN SELECT a.q + b.q AS q FROM queries a JOIN queries b ON b.qid = a.qid + 7 WHERE a.qid <= 60 ORDER BY a.qid LOOP
		s := s || array_to_string(ARRAY(SELECT e <=> r.q FROM t_cosine ORDER BY e <=> r.q LIMIT 5), ',') || ';';
	END LOOP;
	RETURN s;
END \$\$;
SET enable_seqscan = off; SET fct.lsh_margin = 1000;
BEGIN;
CREATE TABLE loop_res AS SELECT loop_dists() AS s;
SELECT pg_stat_get_xact_numscans('t_cosine_lsh'::regclass) >= 60;
COMMIT;
}), "t", 'a PL/pgSQL loop (cached plan): one lsh scan per query');
# the exact side in a new session: in the same one the loop kept its generic plan, the index scan,
# whatever the settings, and compared the index with itself
is($node->safe_psql('postgres', qq{
SET enable_indexscan = off; SET enable_bitmapscan = off;
BEGIN;
SELECT s = loop_dists() FROM loop_res;
SELECT pg_stat_get_xact_numscans('t_cosine_lsh'::regclass) = 0;
COMMIT;
}), "t\nt", 'the same loop with index scans off (no lsh scan) gives the same distances');

# the index is smaller than the table at 128 dimensions (issue #13 item 3)
$node->safe_psql('postgres', lsh_mixture_sql('wide', 3000, 128, 30, 0.4));
$node->safe_psql('postgres', 'CREATE INDEX wide_lsh ON wide USING lsh (e)');
my ($isize, $tsize) = split /\|/, $node->safe_psql('postgres',
	"SELECT pg_relation_size('wide_lsh'), pg_relation_size('wide')");
note("128 dimensions, 3,000 rows: index $isize bytes, table $tsize");
cmp_ok($isize, '<', $tsize, 'the index is smaller than the table');

$node->stop;
done_testing();
