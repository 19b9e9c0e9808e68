# lsh indexes with a two-level list assignment (coarse cells, then the lists of the nearest
# cells; src/lsh/lshtwolevel.c): the build says it uses cells, recall@10 at the defaults after
# build, inserts, deletes and VACUUM, and fct_lsh_verify finds no entry outside the list its vector
# hashes to after the build, single inserts (hashed alone), a batch (hashed together), REINDEX and
# with the scalar kernel, per norm range too.  The negative control: one list's worth of candidates
# (fct.lsh_max_candidates) loses recall, so the measure can fail.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;
use lsh_common;

my $node = fct_node('lsh_two_level');
$node->safe_psql('postgres', lsh_mixture_sql('items', 30000, 32, 300, 0.5));

# 1,024 lists: the smallest count that is assigned through coarse cells
my ($ret, $out, $err) = $node->psql('postgres',
	'SET client_min_messages = debug1; CREATE INDEX items_lsh ON items USING lsh (e) WITH (lists = 1024); ANALYZE items');
is($ret, 0, 'the index builds');
like($err, qr/"items_lsh": 1024 lists under \d+ coarse cells, 4 candidate cells per vector/,
	'the build assigns through coarse cells');

sub verify_clean
{
	my ($index, $what) = @_;
	is($node->safe_psql('postgres', "SELECT missing, dangling, misplaced FROM fct_lsh_verify('$index')"),
		'0|0|0', "fct_lsh_verify on $index $what: nothing missing, dangling or misplaced");
}

my $recall = lsh_recall($node, 'items', 60);
cmp_ok($recall, '>=', 0.95, "recall after build ($recall)");
verify_clean('items_lsh', 'after the build');

# single inserts, one row per transaction (each hashed alone), then a batch (hashed together)
$node->safe_psql('postgres', join("\n", map {
	"INSERT INTO items SELECT $_ + 100000, e FROM items WHERE id = $_;" } 1 .. 200));
$node->safe_psql('postgres', lsh_mixture_sql('items', 10000, 32, 300, 0.6, 30001));
verify_clean('items_lsh', 'after single and batched inserts');
is($node->safe_psql('postgres', "SET fct.kernel_variant = 'scalar'; SELECT misplaced FROM fct_lsh_verify('items_lsh')"),
	'0', "fct_lsh_verify with fct.kernel_variant = 'scalar': none misplaced");
$recall = lsh_recall($node, 'items', 60);
cmp_ok($recall, '>=', 0.95, "recall after inserts ($recall)");

$node->safe_psql('postgres', 'DELETE FROM items WHERE id % 3 = 0');
$node->safe_psql('postgres', 'VACUUM items');
$recall = lsh_recall($node, 'items', 60);
cmp_ok($recall, '>=', 0.95, "recall after delete and vacuum ($recall)");
verify_clean('items_lsh', 'after delete and vacuum');

$node->safe_psql('postgres', 'REINDEX INDEX items_lsh');
verify_clean('items_lsh', 'after REINDEX');

# two norm ranges of 1,024 lists each: each range has its own cells
($ret, $out, $err) = $node->psql('postgres',
	'SET client_min_messages = debug1; CREATE INDEX items_lsh2 ON items USING lsh (e) WITH (lists = 2048, norm_ranges = 2)');
like($err, qr/"items_lsh2": 2048 lists under \d+ coarse cells/, 'two norm ranges: coarse cells in each');
$node->safe_psql('postgres', lsh_mixture_sql('items', 3000, 32, 300, 0.7, 50001));
verify_clean('items_lsh2', 'with two norm ranges after inserts');
$node->safe_psql('postgres', 'DROP INDEX items_lsh2');

# L2 and cosine
for my $m ('l2', 'cosine')
{
	($ret, $out, $err) = $node->psql('postgres',
		"SET client_min_messages = debug1; CREATE INDEX items_$m ON items USING lsh (e embedding_${m}_ops) WITH (lists = 1024)");
	like($err, qr/"items_$m": 1024 lists under \d+ coarse cells/, "$m: coarse cells");
	$node->safe_psql('postgres', lsh_mixture_sql('items', 2000, 32, 300, 0.8, 60001 + ($m eq 'l2' ? 0 : 5000)));
	verify_clean("items_$m", "($m) after inserts");
	$node->safe_psql('postgres', "DROP INDEX items_$m");
}

# negative control: one list's worth of candidates (about 30 rows a list) misses neighbours
$recall = lsh_recall($node, 'items', 60, 'SET fct.lsh_max_candidates = 30');
cmp_ok($recall, '<', 0.9, "recall with one list's worth of candidates is low ($recall)");

$node->stop;
done_testing();
