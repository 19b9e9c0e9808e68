# fct's catalogs on a Citus cluster (a coordinator and two workers): what is registered on the
# coordinator reaches every worker in the same transaction, or nowhere; the type, upgrades and
# fitted weights then work the same on every node.  Issue #12 item 1 and the first rows of its
# table.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use citus_cluster;
use fct_fixtures;

citus_skip_unless_available();

my $c = citus_cluster(workers => 2);
my $co = $c->{coordinator};
my @w = @{ $c->{workers} };

sub on_all
{
	my ($sql) = @_;
	return join('|', map { $_->safe_psql('postgres', $sql) } ($co, @w));
}

is(on_all("SELECT count(*) FROM pg_extension WHERE extname = 'fct'"), '1|1|1',
	'CREATE EXTENSION fct on the coordinator reaches the workers');

# A model registered on the coordinator is on every node.
$co->safe_psql('postgres', fct_models_sql([ 'm1', 4, 2 ]));
is(on_all("SELECT id || ':' || name || ':' || dim || ':' || side_dim || ':' || created_at FROM fct_models"),
	join('|', ($co->safe_psql('postgres',
		"SELECT id || ':' || name || ':' || dim || ':' || side_dim || ':' || created_at FROM fct_models")) x 3),
	'fct_register_model: the same row on every node');

# Literal INSERT, fct_embedding() and COPY into a distributed table.
$co->safe_psql('postgres', q{
CREATE TABLE items (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('items', 'id', shard_count => 4);
INSERT INTO items VALUES (1, 'm1:[1,0,0,0]|[1,1]'), (2, 'm1:[0,1,0,0]|[1,2]');
INSERT INTO items SELECT i, fct_embedding(ARRAY[i, 1, 0, -i]::real[], ARRAY[0, i]::real[], 'm1')
	FROM generate_series(3, 40) i;
});
my $copy_file = PostgreSQL::Test::Utils::tempdir() . '/items.tsv';
PostgreSQL::Test::Utils::append_to_file($copy_file, join('', map { "$_\tm1:[$_,2,3,4]|[0,1]\n" } 41 .. 60));
$co->safe_psql('postgres', "COPY items FROM '$copy_file'");
is($co->safe_psql('postgres', 'SELECT count(*) FROM items'), '60',
	'literal INSERT, fct_embedding() and COPY into a distributed table');
is($w[0]->safe_psql('postgres', 'SELECT count(*) > 0 FROM items'), 't',
	'rows reached the workers');

# Top-10 by <#> with an lsh index on the distributed table: pushed down, same answer as a
# local copy of the table (exact: no index there).  The shards are small, so their planners are
# told to prefer the index (SET LOCAL, propagated to the workers' sessions), and the ORDER BY has
# no second key (an lsh index serves one: with ', id' every shard sorted a sequential scan and the
# check compared exact answers with each other).
$co->safe_psql('postgres', q{
CREATE TABLE items_local AS SELECT * FROM items;
CREATE INDEX items_lsh ON items USING lsh (e);
});
sub on_shards_with_index
{
	my ($sql) = @_;
	return $co->safe_psql('postgres', "SET citus.propagate_set_commands = 'local'; BEGIN; SET LOCAL enable_seqscan = off; $sql; COMMIT");
}
my $q = "'m1:[1,0.5,0,-1]'";
like(on_shards_with_index("EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY e <#> $q LIMIT 10"),
	qr/Index Scan using items_lsh_\d+/, 'the shards answer the top-10 from their lsh indexes');
is(on_shards_with_index("SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY e <#> $q LIMIT 10) s"),
	$co->safe_psql('postgres', "SELECT array_agg(id) FROM (SELECT id FROM items_local ORDER BY e <#> $q, id LIMIT 10) s"),
	'top-10 by <#> on the distributed table equals the local table');

# An imported transformation reaches every node, byte for byte: on-the-fly new-model queries and
# an index on fct_upgrade(e, 'm2') work on the distributed table.
$co->safe_psql('postgres', fct_side_mix_sql('m1', 'm2', 4));
my $tr = "SELECT from_model || ':' || to_model || ':' || md5(weights) || ':' || origin FROM fct_transformations ORDER BY id";
my $tr_co = $co->safe_psql('postgres', $tr);
is(on_all($tr), join('|', ($tr_co) x 3), 'fct_register_transformation: the same weights on every node');
is($co->safe_psql('postgres', "SELECT count(*) FROM items WHERE fct_upgrade(e, 'm2') IS NOT NULL"), '60',
	'fct_upgrade on the distributed table (runs on the workers)');
$co->safe_psql('postgres', "CREATE INDEX items_up ON items USING lsh (fct_upgrade(e, 'm2'))");
my $q2 = "'m2:[1,0.5,0]'";
like(on_shards_with_index("EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY e <#> $q2 LIMIT 5"),
	qr/Index Scan using items_up_\d+/, 'the shards answer the new-model query from their index on fct_upgrade');
is(on_shards_with_index("SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY e <#> $q2 LIMIT 5) s"),
	$co->safe_psql('postgres', "SELECT array_agg(id) FROM (SELECT id FROM items_local ORDER BY e <#> $q2, id LIMIT 5) s"),
	'a new-model query on the distributed table equals the local table');

# Fitting from a distributed pairs table: fitted once on the coordinator, the one spec reaches
# the workers (no refit there).
$co->safe_psql('postgres', q{
SELECT fct_register_model('m3', 3, side_dim => 2);
CREATE TABLE pairs (id int PRIMARY KEY, old embedding, new embedding);
SELECT create_distributed_table('pairs', 'id', shard_count => 4);
INSERT INTO pairs SELECT id, e, fct_embedding(ARRAY[(fct_vector(e))[1] + (fct_vector(e))[2], (fct_vector(e))[3], (fct_vector(e))[4] * 2]::real[], NULL, 'm3') FROM items;
SELECT fct_fit_transformation('m1', 'm3', 'SELECT old, new FROM pairs', 'linear');
});
$tr_co = $co->safe_psql('postgres', $tr);
like($tr_co, qr/:fitted$/m, 'a fitted transformation is registered');
is(on_all($tr), join('|', ($tr_co) x 3), 'the fitted weights are the same bits on every node');

# Editing a model's note propagates too.
$co->safe_psql('postgres', "UPDATE fct_models SET note = 'first model' WHERE name = 'm1'");
is(on_all("SELECT note FROM fct_models WHERE name = 'm1'"), 'first model|first model|first model',
	'a note edited on the coordinator is edited on every worker');

# A change made on a worker is refused (it would exist there only).
my ($rc, $out, $err) = $w[0]->psql('postgres', "SELECT fct_register_model('w1', 2)");
isnt($rc, 0, 'registering on a worker fails');
like($err, qr/can only be changed on the Citus coordinator/, '... saying where to do it');

# A worker that is down: the registration fails, and nothing is registered anywhere.
$w[1]->stop('fast');
($rc, $out, $err) = $co->psql('postgres', "SELECT fct_register_model('m4', 2)");
isnt($rc, 0, 'registering while a worker is down fails');
note($err);
$w[1]->start;
is(on_all("SELECT count(*) FROM fct_models WHERE name = 'm4'"), '0|0|0',
	'nothing half-registered: m4 is on no node');
is($co->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'no prepared transaction left on the coordinator');
$co->safe_psql('postgres', "SELECT fct_register_model('m4', 2)");
is(on_all("SELECT count(*) FROM fct_models WHERE name = 'm4'"), '1|1|1',
	'once the worker is back, registration reaches every node');

# A worker that stops during a registration: the model and a transformation have reached both
# workers inside the coordinator's open transaction when worker2 goes down; the commit fails
# (Citus cannot prepare worker2's part) and no node keeps any of it.
my $s = $co->background_psql('postgres', on_error_stop => 0);
$s->query_safe('BEGIN');
$s->query_safe(fct_models_sql([ 'm5', 2 ]));
$s->query_safe(fct_linear_sql('m4', 'm5', [ [ 1, 0 ], [ 0, 1 ] ]));
is($w[0]->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%fct_catalog_apply%' AND state = 'idle in transaction'"),
	'1', 'the registration is open on worker1 (applied, not committed)');
$w[1]->stop('immediate');
$s->query('COMMIT');
my $w2port = $w[1]->port;
like($s->{stderr}, qr/ERROR:.*(?:\n.*)*on localhost:$w2port/, 'the commit fails, naming worker2');
$s->quit;
$w[1]->start;
$co->safe_psql('postgres', 'SELECT recover_prepared_transactions()');
is(on_all("SELECT count(*) FROM fct_models WHERE name = 'm5'"), '0|0|0',
	'nothing half-registered: m5 is on no node');
is(on_all("SELECT count(*) FROM fct_transformations t JOIN fct_models m ON m.id = t.to_model WHERE m.name = 'm5'"),
	'0|0|0', '... nor its transformation');
is(on_all('SELECT count(*) FROM pg_prepared_xacts'), '0|0|0', 'no prepared transaction left on any node');
$co->safe_psql('postgres', "SELECT fct_register_model('m5', 2)");
is(on_all("SELECT count(*) FROM fct_models WHERE name = 'm5'"), '1|1|1', 'registering again succeeds everywhere');

# Undoing a registration propagates like the registration: fct_drop_transformation and
# fct_drop_model remove the rows from every node in the same transaction.
$co->safe_psql('postgres', fct_models_sql([ 'm9', 2 ]) . fct_linear_sql('m5', 'm9', [ [ 1, 0 ], [ 0, 1 ] ]));
is(on_all("SELECT count(*) FROM fct_models WHERE name = 'm9'") . '/'
	  . on_all("SELECT count(*) FROM fct_transformations t JOIN fct_models m ON m.id = t.to_model WHERE m.name = 'm9'"),
	'1|1|1/1|1|1', 'm9 and m5 -> m9 are on every node');
$co->safe_psql('postgres', "SELECT fct_drop_transformation('m5', 'm9')");
is(on_all("SELECT count(*) FROM fct_transformations t JOIN fct_models m ON m.id = t.to_model WHERE m.name = 'm9'"),
	'0|0|0', 'fct_drop_transformation on the coordinator removes it from every node');
$co->safe_psql('postgres', "SELECT fct_drop_model('m9')");
is(on_all("SELECT count(*) FROM fct_models WHERE name = 'm9'"), '0|0|0',
	'fct_drop_model on the coordinator removes it from every node');

# Making a catalog a Citus table by hand is refused: it is not needed, and the C code reads the
# local table (a model registered afterwards would be invisible to the type's input).
($rc, $out, $err) = $co->psql('postgres', "SELECT create_reference_table('fct_models')");
isnt($rc, 0, 'create_reference_table(fct_models) is refused');
like($err, qr/cannot distribute relation "fct_models"/, '... by Citus (the catalog has triggers)');

# A node added later: fct_citus_sync() gives it the current state, and shards can live there.
my $w3 = citus_new_node('worker3');
citus_add_worker($c, $w3);
is($w3->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'fct'"), '1',
	'Citus creates fct on a node added later');
is($co->safe_psql('postgres', 'SELECT fct_citus_sync()'), '3', 'fct_citus_sync() reaches the three workers');
is($w3->safe_psql('postgres', "SELECT string_agg(name, ',' ORDER BY name) FROM fct_models"), 'm1,m2,m3,m4,m5',
	'the new node has every model');
is($w3->safe_psql('postgres', $tr), $co->safe_psql('postgres', $tr), '... and every transformation, byte for byte');
$co->safe_psql('postgres', q{
CREATE TABLE items2 (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('items2', 'id', shard_count => 6);
INSERT INTO items2 SELECT id, e FROM items_local;
});
is($w3->safe_psql('postgres',
	"SELECT count(*) > 0 FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = " . $w3->port),
	't', 'shards of a new table are placed on the new node');
is($co->safe_psql('postgres', "SELECT count(*) FROM items2 WHERE fct_upgrade(e, 'm2') IS NOT NULL"), '60',
	'rows and upgrades work on the new node');
is($co->safe_psql('postgres', 'SELECT fct_citus_sync()'), '3', 'a second fct_citus_sync() changes nothing and succeeds');

citus_stop($c);
done_testing();
