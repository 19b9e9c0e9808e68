# lsh index under concurrency and crashes: pgbench clients insert, delete,
# query and VACUUM at once, then fct_lsh_verify; an immediate-mode stop in
# the middle of inserts, crash recovery, then fct_lsh_verify again; a prepared
# transaction's rows (buffered inserts are written before PREPARE) survive a
# crash before COMMIT PREPARED.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;
use IPC::Run;
use lsh_common;

my $node = fct_node('lsh_conc', conf => 'max_prepared_transactions = 2');
$node->safe_psql('postgres', lsh_mixture_sql('items', 5000, 16, 50, 0.3));
$node->safe_psql('postgres', 'CREATE INDEX items_lsh ON items USING lsh (e) WITH (lists = 20)');
$node->safe_psql('postgres', 'CREATE SEQUENCE items_ids START 100000');

$node->pgbench(
	'--no-vacuum --client=6 --jobs=2 --transactions=150',
	0,
	[qr{actually processed}],
	[qr{^$}],
	'concurrent inserts, deletes, queries and vacuum',
	{
		'lsh_insert@6' => q{
\set id random(1, 5000)
INSERT INTO items SELECT nextval('items_ids'), e FROM items WHERE id = :id;
},
		'lsh_delete@2' => q{
\set id random(1, 5000)
DELETE FROM items WHERE id = :id;
},
		'lsh_query@6' => q{
\set id random(1, 5000)
SELECT count(*) FROM (SELECT id FROM items ORDER BY e <#> (SELECT e FROM items WHERE id = :id) LIMIT 10) s;
},
		'lsh_vacuum@1' => q{
VACUUM items;
}
	});

is($node->safe_psql('postgres', "SELECT missing || ' ' || dangling FROM fct_lsh_verify('items_lsh')"),
	'0 0', 'index consistent after concurrent work');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off; SET fct.lsh_probes = 1000;
BEGIN;
SELECT count(*) = (SELECT count(*) FROM items WHERE e IS NOT NULL)
FROM (SELECT id FROM items ORDER BY e <#> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 1000000) s;
SELECT pg_stat_get_xact_numscans('items_lsh'::regclass) = 1;
COMMIT}),
	"t\nt", 'a full ordered scan returns every row once');

# a crash during inserts (some into pages added at list heads)
my ($stdout, $stderr);
my $script = $node->basedir . '/lsh_crash_insert.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set id random(1, 5000)
INSERT INTO items SELECT nextval('items_ids'), e FROM items WHERE id = :id;
});
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
my $h = IPC::Run::start(
	[ 'pgbench', '--no-vacuum', '--client=3', '--time=60', '-f', $script, $node->connstr('postgres') ],
	'>', \$stdout, '2>', \$stderr);
# wait until inserts are under way
$node->poll_query_until('postgres', "SELECT count(*) > $before + 1000 FROM items")
  or die "inserts did not start: $stderr";
$node->stop('immediate');
$h->finish;
$node->start;

my ($entries, $heap_rows, $missing, $dangling) = split /\|/, $node->safe_psql('postgres',
	"SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('items_lsh')");
is("$missing $dangling", '0 0', "index consistent after crash recovery ($entries entries, $heap_rows rows)");
cmp_ok($entries, '>=', $heap_rows, 'every visible row has its entry');

# and it still takes inserts and VACUUM
$node->safe_psql('postgres', "INSERT INTO items SELECT nextval('items_ids'), e FROM items WHERE id <= 500; DELETE FROM items WHERE id % 5 = 0; VACUUM items");
is($node->safe_psql('postgres', "SELECT missing || ' ' || dangling FROM fct_lsh_verify('items_lsh')"),
	'0 0', 'index consistent after recovery, inserts and vacuum');

# inserts of a prepared transaction: written at PREPARE (the backend that
# commits it later has none of the first one's buffered rows), so they
# survive a crash between PREPARE and COMMIT PREPARED
my $rows_before = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
$node->safe_psql('postgres', "BEGIN; INSERT INTO items SELECT nextval('items_ids'), e FROM items WHERE id <= 300; PREPARE TRANSACTION 'lsh_prepared'");
$node->stop('immediate');
$node->start;
$node->safe_psql('postgres', "COMMIT PREPARED 'lsh_prepared'");
($entries, $heap_rows, $missing, $dangling) = split /\|/, $node->safe_psql('postgres',
	"SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('items_lsh')");
cmp_ok($heap_rows, '>', $rows_before, 'the prepared rows are committed');
is("$missing $dangling", '0 0', 'the prepared rows have their entries after a crash before COMMIT PREPARED');

$node->stop;
done_testing();
