# postgres_fdw: a partitioned table whose two partitions are foreign tables on two other servers
# running fct.  With the foreign server option extensions 'fct', the distance operators, embedding
# constants and fct_upgrade(e, fct_model_id('m2')) (folded into fct_upgrade(e, <id>)) are shipped to
# the remote side, so a new-model query uses the remote expression index, and the answers equal a
# local table's.  The plain form users write, ORDER BY e <#> 'm2:[...]', is shipped as it is and
# each remote planner serves it from its index on fct_upgrade(e, 'm2').  fct_upgrade(e, 'm2') itself
# is not shipped: postgres_fdw ships no function whose text argument is a constant (its collation
# does not come from a remote column).  Issue #12 item 3.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $main = PostgreSQL::Test::Cluster->new('main');
my @remote = map { PostgreSQL::Test::Cluster->new("remote$_") } 1 .. 2;
for my $node ($main, @remote)
{
	$node->init;
	$node->start;
	$node->safe_psql('postgres',
		"CREATE EXTENSION fct;\n" . fct_models_sql([ 'm1', 4, 2 ]) . fct_side_mix_sql('m1', 'm2', 4));
}

# The rows: ids 1..2000 on remote1, 2001..4000 on remote2, the same rows in a local table.
my $rows = q{SELECT i, fct_embedding(ARRAY[sin(i), cos(i), sin(2 * i), cos(3 * i)]::real[],
	ARRAY[1, (i % 7) / 7.0]::real[], 'm1') FROM generate_series(%d, %d) i};
for my $k (0, 1)
{
	$remote[$k]->safe_psql('postgres', sprintf(q{
CREATE TABLE items_part (id int PRIMARY KEY, e embedding);
INSERT INTO items_part %s;
CREATE INDEX items_part_lsh ON items_part USING lsh (fct_upgrade(e, fct_model_id('m2')));
CREATE INDEX items_part_lsh_name ON items_part USING lsh (fct_upgrade(e, 'm2'));
ANALYZE items_part;
}, sprintf($rows, 2000 * $k + 1, 2000 * $k + 2000)));
}
$main->safe_psql('postgres', 'CREATE EXTENSION postgres_fdw');
$main->safe_psql('postgres', sprintf(q{
CREATE TABLE items_local (id int PRIMARY KEY, e embedding);
INSERT INTO items_local %s;
CREATE TABLE items (id int, e embedding) PARTITION BY RANGE (id);
}, sprintf($rows, 1, 4000)));
for my $k (0, 1)
{
	my $r = $remote[$k];
	my $lo = 2000 * $k + 1;
	my $hi = 2000 * $k + 2001;
	$main->safe_psql('postgres', qq{
CREATE SERVER remote$k FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '@{[ $r->host ]}', port '@{[ $r->port ]}', dbname 'postgres', extensions 'fct');
CREATE USER MAPPING FOR CURRENT_USER SERVER remote$k;
CREATE FOREIGN TABLE items_$k PARTITION OF items FOR VALUES FROM ($lo) TO ($hi)
	SERVER remote$k OPTIONS (table_name 'items_part');
});
}

my $q = "'m2:[0.3,0.7,-0.2]'::embedding";
my $id = $main->safe_psql('postgres', "SELECT fct_model_id('m2')");
my $up = "fct_upgrade(e, fct_model_id('m2'))";
my $explain = $main->safe_psql('postgres',
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items ORDER BY $up <#> $q LIMIT 10");
like($explain, qr/Remote SQL: SELECT id, .*ORDER BY \(public\.fct_upgrade\(e, $id\) OPERATOR\(public\.<#>\) 'm2:/,
	'fct_upgrade(e, fct_model_id(model)) and the ORDER BY on its distance are shipped to the remote servers');
unlike($main->safe_psql('postgres',
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items ORDER BY fct_upgrade(e, 'm2') <#> $q LIMIT 10"),
	qr/Remote SQL: .*fct_upgrade/, "fct_upgrade(e, 'm2') is not shipped (a text constant; documented)");

# (no second key on the foreign side: the remote index serves the ordering alone, the one the
# EXPLAIN above shows shipped; with ', id' each remote sorted a sequential scan)
is($main->safe_psql('postgres',
	"SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY $up <#> $q LIMIT 10) s"),
	$main->safe_psql('postgres',
	"SELECT array_agg(id) FROM (SELECT id FROM items_local ORDER BY fct_upgrade(e, 'm2') <#> $q, id LIMIT 10) s"),
	'top-10 in the new model over the foreign partitions equals the local table');

# On the remote side, the shipped query uses the expression index.
my $remote_sql = "SELECT id FROM items_part ORDER BY public.fct_upgrade(e, $id) OPERATOR(public.<#>) $q LIMIT 10";
like($remote[0]->safe_psql('postgres', "EXPLAIN (COSTS OFF) $remote_sql"),
	qr/Index Scan using items_part_lsh/, 'the remote server answers the shipped query from its lsh index on fct_upgrade');

# The query users write, ORDER BY e <#> 'm2:[...]' over old-model rows: the operator and the constant
# are shipped as they are, and each remote planner serves the shipped ordering from its index on
# fct_upgrade(e, 'm2') or fct_upgrade(e, <id of m2>) (upgrade/ordering.c matches either), in the
# cursor postgres_fdw reads it through.
$explain = $main->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items ORDER BY e <#> $q LIMIT 10");
my @shipped = $explain =~ /Remote SQL: (SELECT id, e FROM public\.items_part ORDER BY \(e OPERATOR\(public\.<#>\) 'm2:[^\n]*)/g;
is(scalar(@shipped), 2, 'the plain new-model ordering is shipped to both servers as written')
  or diag($explain);
for my $k (0, 1)
{
	like($remote[$k]->safe_psql('postgres', "BEGIN; EXPLAIN (COSTS OFF) DECLARE c CURSOR FOR " . ($shipped[$k] // 'SELECT') . "; COMMIT"),
		qr/Index Scan using items_part_lsh(_name)? on items_part/, "remote$k answers it from an lsh index on fct_upgrade(e, m2)");
}
is($main->safe_psql('postgres', "SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY e <#> $q LIMIT 10) s"),
	$main->safe_psql('postgres',
	"SELECT array_agg(id) FROM (SELECT id FROM items_local ORDER BY fct_upgrade(e, 'm2') <#> $q LIMIT 10) s"),
	'... with the local table\'s top-10');
for my $op ('<->', '<=>')
{
	like($main->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items ORDER BY e $op $q LIMIT 10"),
		qr/Remote SQL: SELECT id, e FROM public\.items_part ORDER BY \(e OPERATOR\(public\.\Q$op\E\) 'm2:/,
		"ORDER BY e $op is shipped too");
}

# An on-the-fly comparison of old rows with a new-model query: the operator is shipped too.
like($main->safe_psql('postgres',
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items WHERE (e <#> $q) < -0.5"),
	qr/Remote SQL: .*WHERE \(\(\(e OPERATOR\(public\.<#>\) 'm2:\[/, 'a distance filter is shipped');
is($main->safe_psql('postgres', "SELECT count(*) FROM items WHERE (e <#> $q) < -0.5"),
	$main->safe_psql('postgres', "SELECT count(*) FROM items_local WHERE (e <#> $q) < -0.5"),
	'... and gives the local table\'s answer');

$_->stop for ($main, @remote);
done_testing();
