# Transformations across sessions: the per-backend cache follows the catalog
# (a transformation registered elsewhere is followed at once; an uncommitted
# one is not), and concurrent registrations are serialised so that two of them
# cannot together open a second path between two models.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('transform_cache');
$node->safe_psql('postgres', q{
	SELECT fct_register_model(m, 2) FROM unnest(ARRAY['a', 'b', 'c', 'd']) m;
} . fct_linear_sql('a', 'b', [ [ 2, 0 ], [ 0, 2 ] ], side => 0));

# A long-lived session warms its cache with the path a -> b.
my $s = $node->background_psql('postgres', on_error_stop => 0);
is($s->query_safe("SELECT fct_upgrade('a:[1,2]', 'b')"), 'b:[2,4]', 'a -> b');
my ($out, $err) = $s->query("SELECT fct_upgrade('a:[1,2]', 'c')");
like($s->{stderr}, qr/no upgrade path from model "a" to model "c"/, 'no path a -> c yet');
$s->{stderr} = '';

# Another session registers b -> c: the first follows the chain at once.
$node->safe_psql('postgres',
	q{SELECT fct_register_transformation('b', 'c', '{"side": null, "mixer": [{"weight": [[0,1],[1,0]]}]}')});
is($s->query_safe("SELECT fct_upgrade('a:[1,2]', 'c')"), 'c:[4,2]',
	'chain through a transformation registered by another session');
is($s->query_safe("SELECT 'a:[1,2]'::embedding <-> 'c:[4,2]'"), '0',
	'operators upgrade through it too');

# An uncommitted registration holds the catalog's registration lock and stays
# invisible; a competing registration that would open a second path waits for
# it, then sees it and is refused.
my $t = $node->background_psql('postgres', on_error_stop => 0);
$t->query_safe('BEGIN');
$t->query_safe(
	q{SELECT fct_register_transformation('c', 'd', '{"side": null, "mixer": [{"weight": [[1,0],[0,1]]}]}')});
is($s->query_safe("SELECT fct_upgrade_path('c', 'd') IS NULL"), 't',
	'uncommitted transformation is not followed');

my $u = $node->background_psql('postgres', on_error_stop => 0);
$u->query_until(qr/started/, q{
\echo started
SELECT fct_register_transformation('a', 'd', '{"side": null, "mixer": [{"weight": [[1,0],[0,1]]}]}');
});
ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(*) > 0 FROM pg_locks
		 WHERE NOT granted AND relation = 'fct_transformations'::regclass}),
	'the competing registration waits for the lock');
$t->query_safe('COMMIT');
$u->query("SELECT 1");
like($u->{stderr}, qr/would open a second upgrade path from "a" to "d"/,
	'then it is refused: a already reaches d through c');
$u->quit;
$t->quit;

is($s->query_safe("SELECT fct_upgrade_path('a', 'd')"), '{a,b,c,d}',
	'the committed transformation is followed by the long-lived session');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fct_transformations'), '3',
	'three transformations registered');

$s->quit;
$node->stop;
done_testing();
