# Shared helpers for the lsh TAP tests: clustered test data made in SQL.
package lsh_common;
use strict;
use warnings;
use Exporter 'import';
our @EXPORT = qw(lsh_mixture_sql lsh_recall);

# SQL that creates TABLE $t (id int, e embedding) with $n rows of dimension $d
# drawn from $k Gaussian-ish clusters with log-normal norms, ids from $first.
sub lsh_mixture_sql
{
	my ($t, $n, $d, $k, $seed, $first) = @_;
	$first //= 1;
	my $last = $first + $n - 1;
	return qq{
SELECT setseed($seed);
CREATE TABLE IF NOT EXISTS ${t}_centers AS
	SELECT j, ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, $d) WHERE j >= 0) AS v
	FROM generate_series(0, $k - 1) j;
CREATE TABLE IF NOT EXISTS $t (id int PRIMARY KEY, e embedding);
INSERT INTO $t
SELECT i, (SELECT array_agg(((c.v[x] + 0.15 * (random() - 0.5)) * s.scale)::real ORDER BY x)
		   FROM generate_series(1, $d) x)::embedding
FROM generate_series($first, $last) i
CROSS JOIN LATERAL (SELECT v FROM ${t}_centers WHERE j = (i * 7919) % $k) c
CROSS JOIN LATERAL (SELECT exp(0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS scale
					WHERE i > 0) s;
};
}

# recall@10 of ORDER BY e <#> q LIMIT 10 through the index, against a
# sequential scan, over $nq query vectors near the clusters
sub lsh_recall
{
	my ($node, $t, $nq) = @_;
	return $node->safe_psql('postgres', qq{
CREATE OR REPLACE FUNCTION pg_temp.ids(q embedding, exact bool) RETURNS int[] LANGUAGE plpgsql AS \$\$
DECLARE r int[];
BEGIN
	IF exact THEN SET LOCAL enable_indexscan = off; ELSE SET LOCAL enable_seqscan = off; END IF;
	SELECT array_agg(id) INTO r FROM (SELECT id FROM $t ORDER BY e <#> q LIMIT 10) s;
	SET LOCAL enable_indexscan = on; SET LOCAL enable_seqscan = on;
	RETURN r;
END \$\$;
SELECT round(avg((SELECT count(*) FROM unnest(pg_temp.ids(q, true)) x
				  WHERE x = ANY (pg_temp.ids(q, false))) / 10.0), 4)
FROM (SELECT (SELECT array_agg((v[x] + 0.1 * (random() - 0.5))::real ORDER BY x)
			  FROM generate_series(1, array_length(v, 1)) x)::embedding AS q
	  FROM ${t}_centers WHERE j < $nq) qs;
});
}

1;
