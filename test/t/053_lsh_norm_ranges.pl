# An inner-product index's norm ranges are chosen at build (src/lsh/lshranges.c): the build learns
# one range and eight, simulates the default scan of each on the sample, and keeps the ranges
# where they read fewer rows without losing recall.  Two tables with the same log-normal row norms (sigma 0.3): 4 broad classes
# whose norms vary within each class (a model's own outputs), and 200 tight clusters (TAP 055's
# mixture: 8 ranges would split every cluster).  On each, the index built with the defaults is
# checked against the other shape, built with an explicit norm_ranges: recall@10 >= 0.95 at the
# defaults, and fewer index pages read per query than the other shape (broad: 6.7 against 26.8,
# tight: 13.8 against 20.5 when written).  A choice made the wrong way round fails the page
# comparison (seen with the rule inverted in lsh_learn_measuring_ranges).  fct_lsh_verify is clean
# on every index.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;
use lsh_common;

my $node = fct_node('lsh_norm_ranges');

# TABLE $t (id, e) of $n rows of 32 dimensions in $k broad classes (noise 0.5 around their
# directions), each row scaled by its own log-normal norm as lsh_mixture_sql's; ${t}_centers: 60
# rows' vectors, where lsh_recall's queries start from (queries like the data).
sub broad_sql
{
	my ($t, $n, $k, $seed) = @_;
	return qq{
SELECT setseed($seed);
CREATE TABLE ${t}_dirs (c int PRIMARY KEY, v real[]);
INSERT INTO ${t}_dirs
SELECT c, array(SELECT random() - 0.5 FROM generate_series(1, 32) WHERE c >= 0) FROM generate_series(0, $k - 1) c;
CREATE TABLE $t (id int PRIMARY KEY, e embedding);
INSERT INTO $t
SELECT i, fct_embedding(array(SELECT r.s * (x + 0.5 * (random() - 0.5)) FROM unnest(d.v) x)::real[])
FROM generate_series(1, $n) i
JOIN ${t}_dirs d ON d.c = i % $k
CROSS JOIN LATERAL (SELECT exp(0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS s
					WHERE i > 0) r;
CREATE TABLE ${t}_centers AS SELECT id / 331 - 1 AS j, e::real[] AS v FROM $t WHERE id % 331 = 0;
ANALYZE $t;
};
}

# Index pages read per query by index scans of $nq queries near ${t}_centers, in one session
# (its statistics flushed before each reading).
sub pages_per_query
{
	my ($t, $index, $nq) = @_;
	my $read = qq{SELECT pg_stat_force_next_flush();
SELECT 1;
SELECT pg_stat_clear_snapshot();
SELECT 'blocks', idx_blks_hit + idx_blks_read FROM pg_statio_user_indexes WHERE indexrelname = '$index'};
	my $out = $node->safe_psql('postgres', qq{
SET enable_seqscan = off;
$read;
SELECT setseed(0.25);
DO \$\$ DECLARE q record; x int; BEGIN
	FOR q IN SELECT (SELECT array_agg((v[d] + 0.1 * (random() - 0.5))::real ORDER BY d)
					 FROM generate_series(1, array_length(v, 1)) d)::embedding AS q
			 FROM ${t}_centers WHERE j < $nq LOOP
		FOR x IN SELECT id FROM $t ORDER BY e <#> q.q LIMIT 10 LOOP END LOOP;
	END LOOP;
END \$\$;
$read;
});
	my @blocks = $out =~ /^blocks\|(\d+)$/mg;
	die "pages_per_query: unexpected output:\n$out" unless @blocks == 2;
	return ($blocks[1] - $blocks[0]) / $nq;
}

my %expect = (broad => 8, tight => 1);
$node->safe_psql('postgres', broad_sql('broad', 20000, 4, 0.21));
$node->safe_psql('postgres', lsh_mixture_sql('tight', 20000, 32, 200, 0.5) . 'ANALYZE tight;');
for my $t ('broad', 'tight')
{
	my %pages;
	my $other = $expect{$t} == 8 ? 1 : 8;
	for my $shape ('chosen', 'other')
	{
		my $with = $shape eq 'other' ? " WITH (norm_ranges = $other)" : '';
		$node->safe_psql('postgres', "CREATE INDEX ${t}_lsh ON $t USING lsh (e)$with");
		my $ranges = $node->safe_psql('postgres', "SELECT norm_ranges FROM fct_lsh_stats('${t}_lsh')");
		is($ranges, $shape eq 'chosen' ? $expect{$t} : $other, "$t, $shape shape: $ranges norm ranges");
		my $recall = lsh_recall($node, $t, 60);
		$pages{$shape} = pages_per_query($t, "${t}_lsh", 60);
		note("$t, $ranges norm ranges: recall\@10 $recall, $pages{$shape} index pages a query");
		cmp_ok($recall, '>=', 0.95, "$t, $shape shape ($ranges norm ranges): recall\@10 $recall")
		  if $shape eq 'chosen';
		is($node->safe_psql('postgres',
				"SELECT missing + dangling + misplaced FROM fct_lsh_verify('${t}_lsh')"),
			'0', "$t, $shape shape: fct_lsh_verify clean");
		$node->safe_psql('postgres', "DROP INDEX ${t}_lsh");
	}
	cmp_ok($pages{chosen}, '<', $pages{other},
		"$t: the chosen shape reads fewer index pages a query ($pages{chosen}) than the other ($pages{other})");
}

$node->stop;
done_testing();
