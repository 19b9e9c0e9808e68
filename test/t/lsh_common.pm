# Shared helpers for the lsh TAP tests: clustered test data made in SQL.
package lsh_common;
use strict;
use warnings;
use Exporter 'import';
use Test::More ();
our @EXPORT = qw(lsh_mixture_sql lsh_uniform_sql lsh_recall);

# SQL that creates TABLE $t (id int, e embedding) with $n rows of dimension $d
# drawn from $k Gaussian-ish clusters with log-normal norms, ids from $first, in
# model $model when given (registered before; otherwise no model).
sub lsh_mixture_sql
{
	my ($t, $n, $d, $k, $seed, $first, $model) = @_;
	$first //= 1;
	my $last = $first + $n - 1;
	my ($open, $close) = defined $model ? ('fct_embedding(', ", NULL, '$model')") : ('', '::embedding');
	return qq{
SELECT setseed($seed);
CREATE TABLE IF NOT EXISTS ${t}_centers AS
	SELECT j, ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, $d) WHERE j >= 0) AS v
	FROM generate_series(0, $k - 1) j;
CREATE TABLE IF NOT EXISTS $t (id int PRIMARY KEY, e embedding);
INSERT INTO $t
SELECT i, ${open}(SELECT array_agg(((c.v[x] + 0.15 * (random() - 0.5)) * s.scale)::real ORDER BY x)
		   FROM generate_series(1, $d) x)$close
FROM generate_series($first, $last) i
CROSS JOIN LATERAL (SELECT v FROM ${t}_centers WHERE j = (i * 7919) % $k) c
CROSS JOIN LATERAL (SELECT exp(0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS scale
					WHERE i > 0) s;
};
}

# SQL that creates TABLE $t (id int, e embedding) with $n rows of dimension $d drawn uniformly from
# [-0.5, 0.5)^d, and ${t}_centers with $k more such points to start queries from: data with no
# clusters, where probing a few lists must miss true neighbours (the recall measure's negative control).
sub lsh_uniform_sql
{
	my ($t, $n, $d, $k, $seed) = @_;
	return qq{
SELECT setseed($seed);
CREATE TABLE ${t}_centers AS
	SELECT j, ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, $d) WHERE j >= 0) AS v
	FROM generate_series(0, $k - 1) j;
CREATE TABLE $t (id int PRIMARY KEY, e embedding);
INSERT INTO $t
SELECT i, ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, $d) WHERE i > 0)::embedding
FROM generate_series(1, $n) i;
};
}

# recall@10 of ORDER BY e <#> q LIMIT 10 through the lsh index, against the exact answer of a
# sequential scan, over $nq query vectors near ${t}_centers' first points.  $settings is SQL run
# first in the session (e.g. 'SET fct.lsh_probes = 1').
#
# Each side is its own statement under its own planner settings, and EXPLAIN checks each side's plan
# (two assertions: a Seq Scan and no index for the exact side, an Index Scan on the lsh index for the
# other).  The two sides must never share a plan: in a plpgsql function with static SQL, plpgsql's
# cached generic plan took the index for the "exact" side too after five calls, and this measure read
# 0.985 on uniform data with fct.lsh_probes = 1 where the true recall was 0.235.
sub lsh_recall
{
	my ($node, $t, $nq, $settings) = @_;
	$settings //= '';
	my $side = "SELECT qid, ARRAY(SELECT id FROM $t ORDER BY e <#> qs.q LIMIT 10) AS ids "
	  . "FROM pg_temp.recall_queries qs";
	my $out = $node->safe_psql('postgres', qq{
$settings;
SELECT setseed(0.25);
CREATE TEMP TABLE recall_queries AS
	SELECT j AS qid, (SELECT array_agg((v[x] + 0.1 * (random() - 0.5))::real ORDER BY x)
					  FROM generate_series(1, array_length(v, 1)) x)::embedding AS q
	FROM ${t}_centers WHERE j < $nq;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT '#exact';
EXPLAIN (COSTS OFF) $side;
CREATE TEMP TABLE recall_exact AS $side;
RESET enable_indexscan;
RESET enable_bitmapscan;
SET enable_seqscan = off;
SELECT '#index';
EXPLAIN (COSTS OFF) $side;
CREATE TEMP TABLE recall_index AS $side;
RESET enable_seqscan;
SELECT '#recall';
SELECT round(avg((SELECT count(*) FROM unnest(x.ids) i WHERE i = ANY (l.ids)) / 10.0), 4)
FROM recall_exact x JOIN recall_index l USING (qid);
});
	my ($exact_plan, $index_plan, $recall) =
	  $out =~ /^#exact\n(.*)^#index\n(.*)^#recall\n(.*)\z/ms
	  or die "lsh_recall: unexpected output:\n$out";
	Test::More::ok($exact_plan =~ /Seq Scan on $t\b/ && $exact_plan !~ /Index/,
		"exact side of the recall of $t is a sequential scan")
	  or Test::More::diag($exact_plan);
	Test::More::like($index_plan, qr/Index Scan using \S+ on $t\b/,
		"measured side of the recall of $t is an index scan");
	chomp $recall;
	return $recall;
}

1;
