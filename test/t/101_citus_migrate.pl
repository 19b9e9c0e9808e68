# CALL fct_migrate on a Citus distributed table, from the coordinator: every shard placement is
# migrated, the values are those of fct_upgrade on a local copy, and a worker that crashes in the
# middle loses nothing: the call fails naming its placements, and calling again resumes.
# Issue #12 item 2 (migration) and the crash test of item 4.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use citus_cluster;
use fct_fixtures;

citus_skip_unless_available();

my $c = citus_cluster(workers => 2);
my $co = $c->{coordinator};
my @w = @{ $c->{workers} };
my $n = 24000;

$co->safe_psql('postgres', fct_models_sql([ 'm1', 8, 2 ]) . fct_side_mix_sql('m1', 'm2', 8) . qq{
CREATE TABLE items (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('items', 'id', shard_count => 8);
INSERT INTO items @{[ fct_side_mix_rows_sql('m1', 1, $n) ]};
CREATE TABLE expected AS SELECT id, fct_upgrade(e, 'm2') AS e FROM items;
CREATE TABLE items_local AS SELECT * FROM items;
CREATE TABLE expected_coordinator AS SELECT id, fct_upgrade(e, 'm2') AS e FROM items_local;
});

# The workers compute the same bits as the coordinator: expected was upgraded on the shards (Citus
# pushes the projection down), expected_coordinator on the coordinator from a local copy.
like($co->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) SELECT id, fct_upgrade(e, 'm2') FROM items"),
	qr/Task Count: 8.*fct_upgrade/s, 'fct_upgrade of the distributed table runs on the shards');
is($co->safe_psql('postgres', "SELECT count(*) FILTER (WHERE w.e::text = c.e::text AND fct_vector(w.e) = fct_vector(c.e))"
	  . " || ':' || count(*) FROM expected w JOIN expected_coordinator c USING (id)"),
	"$n:$n", 'fct_upgrade computed on the workers is byte for byte the coordinator\'s');
my $check = "SELECT count(*) FILTER (WHERE fct_model(i.e) = 'm2') || ':' || count(*) FILTER (WHERE i.e = x.e)"
  . " FROM items i JOIN expected x USING (id)";

# Refused before anything is written, as on a local table (the census of the placements is checked on
# the coordinator): a model with no path to the target (42704), a caller who may read but not update (42501).
$co->safe_psql('postgres', q{
SELECT fct_register_model('m3', 8);
INSERT INTO items VALUES (0, fct_embedding(ARRAY[1, 2, 3, 4, 5, 6, 7, 8]::real[], NULL, 'm3'));
CREATE ROLE reader;
GRANT SELECT ON items TO reader;
});
my ($rc, $out, $err) = $co->psql('postgres', "CALL fct_migrate('items', 'e', 'm2', 2000)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+42704: no upgrade path from model "m3" to model "m2"/, 'a model without a path: the local error');
like($err, qr/1 row of public\.items\.e is in model "m3"/, '... naming its rows');
($rc, $out, $err) = $co->psql('postgres', "SET ROLE reader;\nCALL fct_migrate('items', 'e', 'm2', 2000)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+42501: permission denied for table items/, 'a caller who may not update the table is refused');
is($co->safe_psql('postgres', "SELECT count(*) FROM items WHERE fct_model(e) <> 'm1'"), '1', 'nothing written');
$co->safe_psql('postgres', 'DELETE FROM items WHERE id = 0');

# A clean run over the eight placements of two workers.
($rc, $out, $err) = $co->psql('postgres', "CALL fct_migrate('items', 'e', 'm2', 2000)");
is($rc, 0, 'CALL fct_migrate on a distributed table succeeds');
like($err, qr/$n rows of public\.items\.e to upgrade into model "m2", in 8 shard placements on 2 nodes/,
	'one census for the distributed table');
like($err, qr/done, every row of public\.items\.e is in model "m2"/, 'one closing census');
is($co->safe_psql('postgres', $check), "$n:$n", 'every row upgraded, the same bits as fct_upgrade on the coordinator');

# Again from m1, with small batches, and a worker crashing in the middle.
$co->safe_psql('postgres', q{
TRUNCATE items;
INSERT INTO items SELECT i, fct_embedding(ARRAY[i % 7, 1, i % 3, -1, 0.5, i % 5, 2, 1]::real[],
	ARRAY[1, i % 11]::real[], 'm1') FROM generate_series(1, 24000) i;
});
my ($o, $e) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $co->connstr('postgres'), '-c', "CALL fct_migrate('items', 'e', 'm2', 50)" ],
	'>', \$o, '2>', \$e);
my $seen = 0;
for (1 .. 600)
{
	$seen = $co->safe_psql('postgres', "SELECT count(*) FROM items WHERE fct_model(e) = 'm2'");
	last if $seen > 0;
	usleep(50_000);
}
ok($seen > 0 && $seen < $n, "$seen rows upgraded when worker1 crashed");
$w[0]->stop('immediate');
$h->finish;
like($e, qr/shard placements of public\.items failed/, 'the call fails, naming what failed');
like($e, qr/migrate again once the nodes are back/, '... and says how to resume');
$w[0]->start;
($rc, $out, $err) = $co->psql('postgres', "CALL fct_migrate('items', 'e', 'm2', 2000)");
is($rc, 0, 'calling again after the restart succeeds') or diag($err);
is($co->safe_psql('postgres', $check), "$n:$n", 'nothing lost: every row upgraded once, the same bits');
is($co->safe_psql('postgres', 'SELECT count(*) FROM items'), $n, 'no row gained or lost');

citus_stop($c);
done_testing();
