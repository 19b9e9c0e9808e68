# pg_restore -j may build an index on fct_upgrade(col, 'v2') while another worker is still loading
# fct_transformations (or has not started yet): while restoring (check_function_bodies off),
# fct_upgrade waits for what it needs, up to fct.restore_wait seconds; in normal use it never waits.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;
use Time::HiRes qw(time);

my $node = fct_node('main');
$node->safe_psql('postgres', fct_models_sql([ 'w-v1', 2 ], [ 'w-v2', 2 ], [ 'w-v3', 2 ]) . q{
	CREATE TABLE t (id int, e embedding);
	INSERT INTO t SELECT g, ('w-v1:[' || g || ',1]')::embedding FROM generate_series(1, 100) g;
});

# Normal use: no path is an error at once.
my $t0 = time;
my ($ret, $out, $err) = $node->psql('postgres', q{CREATE INDEX t_v2 ON t (fct_upgrade(e, 'w-v2'))});
like($err, qr/no upgrade path from model "w-v1" to model "w-v2"/, 'normal use: no path is an error');
cmp_ok(time - $t0, '<', 5, '... without waiting');

# Restoring: the transformation is being loaded by another session (uncommitted); the index build waits
# for it and then succeeds.
my $loader = $node->background_psql('postgres');
$loader->query_safe(q{BEGIN; SELECT fct_register_transformation('w-v1', 'w-v2', '{"mixer": [{"weight": [[0,1],[1,0]]}]}')});
my $restorer = $node->background_psql('postgres', on_error_stop => 0);
$restorer->query_safe('SET check_function_bodies = false');
$t0 = time;
$restorer->query_until(qr/building/, q{\echo building
CREATE INDEX t_v2 ON t (fct_upgrade(e, 'w-v2'));
});
sleep 2;
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_indexes WHERE indexname = 't_v2'}), '0',
	'restoring: the index build waits while the transformation is not committed');
$loader->query_safe('COMMIT');
$restorer->query_safe('SELECT 1');
my $waited = time - $t0;
is($restorer->{stderr}, '', 'restoring: no error once the transformation is committed');
cmp_ok($waited, '>=', 2, "... after waiting for it (${waited}s)");
is($node->safe_psql('postgres', q{SET enable_seqscan = off; SELECT id FROM t WHERE fct_upgrade(e, 'w-v2') = 'w-v2:[1,7]'}),
	'7', 'the index built after the wait holds the upgraded values');
$loader->quit;

# Restoring, but the path never comes: an error after fct.restore_wait.
$restorer->query_safe('SET fct.restore_wait = 1');
$t0 = time;
$restorer->query(q{CREATE INDEX t_v3 ON t (fct_upgrade(e, 'w-v3'))});
$waited = time - $t0;
like($restorer->{stderr}, qr/no upgrade path from model "w-v1" to model "w-v3"/,
	'restoring: a path that never comes is still an error');
cmp_ok($waited, '>=', 1, "... after fct.restore_wait (${waited}s)");
$restorer->quit;

$node->stop;
done_testing();
