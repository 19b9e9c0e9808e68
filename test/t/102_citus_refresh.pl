# fct_refresh on a Citus distributed table, from the coordinator: it runs on the shard placements
# (one statement Citus pushes down to every shard) and writes, skips, forces and misses exactly the
# rows a refresh of a local copy does, in the caller's transaction.  Issue #12 item 2 (refresh).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use citus_cluster;

citus_skip_unless_available();

my $c = citus_cluster(workers => 2);
my $co = $c->{coordinator};
my $n = 20000;

# items: the stored values; fresh: a retrain in place where 30% of the rows moved by 20%, the
# rest by 1%; rows 1..100 are NULL in the table, the source has 50 keys the table does not.
$co->safe_psql('postgres', qq{
SELECT fct_register_model('r1', 16);
SELECT fct_register_model('r2', 16);
CREATE TABLE base AS SELECT i AS id, fct_embedding((SELECT array_agg(sin(i * j)::real) FROM generate_series(1, 16) j),
	NULL, 'r1') AS e FROM generate_series(1, $n) i;
CREATE TABLE fresh_local AS SELECT id, fct_embedding((SELECT array_agg(x * CASE WHEN id % 10 < 3 THEN 1.2 ELSE 1.01 END)::real[]
	FROM unnest(fct_vector(e)) x), NULL, 'r1') AS e FROM base
	UNION ALL SELECT $n + i, fct_embedding(array_fill(1::real, ARRAY[16]), NULL, 'r1') FROM generate_series(1, 50) i;
CREATE TABLE items_local (id int PRIMARY KEY, e embedding);
CREATE TABLE items (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('items', 'id', shard_count => 8);
CREATE TABLE fresh (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('fresh', 'id', colocate_with => 'items');
INSERT INTO fresh SELECT * FROM fresh_local;
});

sub reset_tables
{
	$co->safe_psql('postgres', q{
TRUNCATE items, items_local;
INSERT INTO items SELECT id, CASE WHEN id > 100 THEN e END FROM base;
INSERT INTO items_local SELECT id, CASE WHEN id > 100 THEN e END FROM base;
ANALYZE items_local;
});
	return;
}

my $cols = 'updated || \',\' || skipped || \',\' || forced || \',\' || missing';
my $same = "SELECT count(*) FROM items d FULL JOIN items_local l USING (id)"
  . " WHERE d.e IS DISTINCT FROM l.e OR d.id IS NULL OR l.id IS NULL";

sub refresh_both
{
	my ($args, $source_dist, $source_local) = @_;
	reset_tables();
	my $t0 = time;
	my $d = $co->safe_psql('postgres',
		"SELECT $cols FROM fct_refresh('items', 'e', 'id', '$source_dist', $args)");
	my $td = time - $t0;
	$t0 = time;
	my $l = $co->safe_psql('postgres',
		"SELECT $cols FROM fct_refresh('items_local', 'e', 'id', '$source_local', $args)");
	my $tl = time - $t0;
	return ($d, $l, $td, $tl);
}

# A threshold, the source a co-located table.
my ($d, $l, $td, $tl) = refresh_both('threshold => 0.05, full_every => 0',
	'SELECT id, e FROM fresh', 'SELECT id, e FROM fresh_local');
is($l, '6070,13930,0,50', 'local table: 30% of the rows (and the 100 NULLs) written, 50 missing');
is($d, $l, 'distributed table: the same rows written, skipped and missing');
is($co->safe_psql('postgres', $same), '0', 'the same values stored, row for row');
# At least as fast per row as the local table: the best of two runs each (the machine is shared).
# Seen failing (4.2 s against 2.1 s on a loaded machine) when the refresh of a distributed table ran through the
# coordinator's row batches.
my (undef, undef, $td2, $tl2) = refresh_both('threshold => 0.05, full_every => 0',
	'SELECT id, e FROM fresh', 'SELECT id, e FROM fresh_local');
$td = $td2 if $td2 < $td;
$tl = $tl2 if $tl2 < $tl;
note(sprintf('refresh of %d rows: distributed %.2f s, local %.2f s', $n, $td, $tl));
ok($td < 1.5 * $tl + 0.3,
	sprintf('the distributed refresh is about as fast as the local one (%.2f s, %.2f s)', $td, $tl));

# The source a local table of the coordinator (Citus sends it to the shards).
($d, $l) = refresh_both('threshold => 0.05, full_every => 0',
	'SELECT id, e FROM fresh_local', 'SELECT id, e FROM fresh_local');
is($d, $l, 'a source on the coordinator: the same counts');
is($co->safe_psql('postgres', $same), '0', '... and the same values');

# A full pass: every row written, the stale ones counted as forced.
($d, $l) = refresh_both('threshold => 0.05, full_every => 1',
	'SELECT id, e FROM fresh', 'SELECT id, e FROM fresh_local');
is($l, '6070,0,13930,50', 'full pass on the local table: the stale rows forced');
is($d, $l, 'full pass on the distributed table: the same');
is($co->safe_psql('postgres', $same), '0', '... and the same values');

# target_skip: a threshold estimated from a sample of the shards' drifts.
reset_tables();
my $ts = $co->safe_psql('postgres',
	"SELECT skipped::float8 / (updated + skipped) > 0.6 AND threshold_used BETWEEN 0.01 AND 0.2"
	  . " FROM fct_refresh('items', 'e', 'id', 'SELECT id, e FROM fresh', target_skip => 0.65, full_every => 0)");
is($ts, 't', 'target_skip on a distributed table: a threshold between the two drifts, the target skipped');

# The log on the coordinator counts every refresh of the distributed table.
is($co->safe_psql('postgres', "SELECT count(*) FROM fct_refresh_log WHERE tbl = 'items'::regclass"), '5',
	'one fct_refresh_log row per refresh of the distributed table');

# Errors come from the shards with the key, and nothing is written.
reset_tables();
$co->safe_psql('postgres', q{
CREATE TABLE wrong (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('wrong', 'id', colocate_with => 'items');
INSERT INTO wrong SELECT id, CASE WHEN id = 7777 THEN fct_embedding(fct_vector(e), NULL, 'r2') ELSE e END FROM fresh_local;
});
my ($rc, $out, $err) = $co->psql('postgres',
	"SELECT * FROM fct_refresh('items', 'e', 'id', 'SELECT id, e FROM wrong', threshold => 0.05)");
isnt($rc, 0, 'a source value of another model fails the refresh');
like($err, qr/source embedding for key 7777 is of model "r2", the stored one of model "r1"/,
	'... naming the key, from the shard where it is');
is($co->safe_psql('postgres', "SELECT count(*) FROM items i JOIN base b USING (id) WHERE i.e <> b.e"), '0',
	'... and nothing is written on any shard');

# In the caller's transaction: a rollback undoes every shard's writes.
$co->safe_psql('postgres', q{
BEGIN;
SELECT fct_refresh('items', 'e', 'id', 'SELECT id, e FROM fresh', threshold => 0.05);
ROLLBACK;
});
is($co->safe_psql('postgres', "SELECT count(*) FROM items i JOIN base b USING (id) WHERE i.e <> b.e"), '0',
	'a rolled back refresh leaves every shard as it was');

# A table distributed on another column than the key: the coordinator's row batches, same result.
$co->safe_psql('postgres', q{
CREATE TABLE items_other (k int, id int, e embedding);
SELECT create_distributed_table('items_other', 'k', shard_count => 4);
INSERT INTO items_other SELECT id % 97, id, CASE WHEN id > 100 THEN e END FROM base;
});
reset_tables();
($rc, $out, $err) = $co->psql('postgres',
	"SELECT $cols FROM fct_refresh('items_other', 'e', 'id', 'SELECT id, e FROM fresh_local', threshold => 0.05, full_every => 0)");
is($out, '6070,13930,0,50', 'a table distributed on another column: the same counts');
like($err, qr/is not distributed on "id": the refresh runs through the coordinator/, '... with a notice saying why it is slower');

citus_stop($c);
done_testing();
