# An lsh index on fct_upgrade(e, 'v2') finds the new model's neighbours as
# well as an lsh index on the stored v2 values of the same rows (issue #13
# item 4): 20,000 rows of a 200-cluster mixture in model u1 (32 dimensions),
# a linear map u1 -> u2 (a near-rotation that also rescales), both indexes
# with their defaults, recall@10 of u2 queries against the exact top 10 of
# the upgraded values, inner product.  The issue measured 0.80 against 1.0
# before the ordered scan (lists then were ranked by their mean norm, which
# the map changes); the bound is that the upgraded index is within 0.02 of
# the stored one and at least 0.95.  The recall with fct.lsh_margin = 0 (the
# bounds ignoring how members point) is printed beside it.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;
use lsh_common;

my $node = fct_node('lsh_upgrade_recall');
$node->safe_psql('postgres', lsh_mixture_sql('raw', 20000, 32, 200, 0.5));
$node->safe_psql('postgres', q{
SELECT fct_register_model('u1', 32), fct_register_model('u2', 32);
-- w[o][c] = 1.5 (o = c) + 0.4 sin(7o + 3c): mixes every coordinate, changes norms
SELECT fct_register_transformation('u1', 'u2', jsonb_build_object('mixer', jsonb_build_array(
	jsonb_build_object('weight', (SELECT jsonb_agg(r ORDER BY o) FROM (
		SELECT o, (SELECT jsonb_agg(round((CASE WHEN c = o THEN 1.5 ELSE 0 END + 0.4 * sin(7 * o + 3 * c))::numeric, 4) ORDER BY c)
				   FROM generate_series(1, 32) c) AS r
		FROM generate_series(1, 32) o) w)))));
CREATE TABLE items AS SELECT id, fct_embedding(fct_vector(e), NULL, 'u1') AS e FROM raw;
CREATE TABLE items_v2 AS SELECT id, fct_upgrade(e, 'u2') AS e FROM items;
CREATE INDEX items_up ON items USING lsh (fct_upgrade(e, 'u2'));
CREATE INDEX items_v2_lsh ON items_v2 USING lsh (e);
ANALYZE items; ANALYZE items_v2;
SELECT setseed(0.75);
CREATE TABLE queries AS
	SELECT j, fct_upgrade(fct_embedding((SELECT array_agg((v[x] + 0.1 * (random() - 0.5))::real ORDER BY x)
			   FROM generate_series(1, array_length(v, 1)) x), NULL, 'u1'), 'u2') AS q
	FROM raw_centers WHERE j < 40;
});

sub ids
{
	my ($sql, $settings) = @_;
	my %r;
	for my $line (split /\n/, $node->safe_psql('postgres', "$settings\n$sql"))
	{
		my ($j, $ids) = split /\|/, $line;
		$r{$j} = [ split /,/, $ids ];
	}
	return \%r;
}

sub recall
{
	my ($exact, $got) = @_;
	my ($hits, $n) = (0, 0);
	for my $j (keys %$exact)
	{
		my %t = map { $_ => 1 } @{ $exact->{$j} };
		$hits += grep { $t{$_} } @{ $got->{$j} };
		$n += 10;
	}
	return $hits / $n;
}

my $up_sql = q{SELECT j, array_to_string(array(SELECT id FROM items
	ORDER BY fct_upgrade(e, 'u2') <#> q LIMIT 10), ',') FROM queries};
my $v2_sql = q{SELECT j, array_to_string(array(SELECT id FROM items_v2
	ORDER BY e <#> q LIMIT 10), ',') FROM queries};
like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) "
	. "SELECT id FROM items ORDER BY fct_upgrade(e, 'u2') <#> (SELECT q FROM queries LIMIT 1) LIMIT 10"),
	qr/Index Scan using items_up/, 'the query uses the index on fct_upgrade');

my $exact = ids($v2_sql, 'SET enable_indexscan = off; SET enable_bitmapscan = off;');
my $stored = recall($exact, ids($v2_sql, 'SET enable_seqscan = off;'));
my $upgraded = recall($exact, ids($up_sql, 'SET enable_seqscan = off;'));
my $loose = recall($exact, ids($up_sql, 'SET enable_seqscan = off; SET fct.lsh_margin = 0;'));
diag("recall\@10: index on stored v2 values $stored, index on fct_upgrade(e, 'u2') $upgraded"
	. " (with fct.lsh_margin = 0: $loose)");
cmp_ok($upgraded, '>=', 0.95, "index on fct_upgrade: recall\@10 $upgraded");
cmp_ok($upgraded, '>=', $stored - 0.02, "as good as the index on stored values ($stored)");

# same rows in both (the upgrade in the index expression is the stored one)
is($node->safe_psql('postgres', q{SELECT count(*) FROM items i JOIN items_v2 v USING (id)
	WHERE fct_upgrade(i.e, 'u2') <> v.e}), '0', 'the indexed values equal the stored v2 values');
is($node->safe_psql('postgres', q{SELECT missing || '|' || dangling FROM fct_lsh_verify('items_up')}),
	'0|0', 'fct_lsh_verify');

# The entries of a coded index hold no vector: the executor computes the ORDER BY expression on
# each row the scan returns, fct_upgrade included.  What that costs per query (wall clock, printed
# only): the index on fct_upgrade against the one on stored values.
my $per_query = q{CREATE FUNCTION pg_temp.per_query(sql text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
	EXECUTE sql;
	t0 := clock_timestamp();
	FOR i IN 1..5 LOOP EXECUTE sql; END LOOP;
	RETURN round((extract(epoch FROM clock_timestamp() - t0) * 1000 / (5 * 40))::numeric, 3);
END $$;};
my ($ms_up, $ms_v2) = split /\|/, $node->safe_psql('postgres', qq{SET enable_seqscan = off;
$per_query
SELECT pg_temp.per_query(\$q\$$up_sql\$q\$) || '|' || pg_temp.per_query(\$q\$$v2_sql\$q\$);});
diag("ms per query: index on fct_upgrade(e, 'u2') $ms_up, index on stored v2 values $ms_v2");

$node->stop;
done_testing();
