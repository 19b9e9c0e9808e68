# A table that pg_dump writes before fct_models (here public.embeddings: "e" < "f") names models the
# restore has not loaded yet, and pg_restore -j loads tables concurrently: the README's sequence
# (pre-data, then the extension's tables' data, then the rest in parallel) restores every value.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION fct;
	SELECT fct_register_model('qa-v1', 2, side_dim => 1);
	SELECT fct_register_model('qa-v2', 2, side_dim => 1);
	SELECT fct_register_transformation('qa-v1', 'qa-v2', '{"side": null, "mixer": [{"weight": [[0, 1], [1, 0]]}]}');
	CREATE TABLE embeddings (id int PRIMARY KEY, e embedding(2));
	INSERT INTO embeddings SELECT g, fct_embedding(ARRAY[g, -g]::real[], ARRAY[g]::real[], 'qa-v1')
	  FROM generate_series(1, 500) g;
	CREATE INDEX ON embeddings (fct_upgrade(e, 'qa-v2'));
});
my $before = $node->safe_psql('src', q{SELECT md5(string_agg(e::text, ';' ORDER BY id)) FROM embeddings});
my $file = $node->basedir . '/dump.c';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $file, '-d', $node->connstr('src') ], 'pg_dump -Fc');

my $list = $node->basedir . '/all.list';
my ($out, $err);
IPC::Run::run([ 'pg_restore', '-l', $file ], '>', \$out, '2>', \$err) or die "pg_restore -l: $err";
my @lines = split /\n/, $out;
my $fct_list = $node->basedir . '/fct.list';
my $rest_list = $node->basedir . '/rest.list';
open(my $f, '>', $fct_list) or die;
print $f join("\n", grep { /TABLE DATA \S+ fct_/ } @lines), "\n";
close $f;
open(my $r, '>', $rest_list) or die;
print $r join("\n", grep { !/TABLE DATA \S+ fct_/ } @lines), "\n";
close $r;

$node->safe_psql('postgres', 'CREATE DATABASE dst');
my $dst = $node->connstr('dst');
$node->command_ok([ 'pg_restore', '--exit-on-error', '--section=pre-data', '-d', $dst, $file ], 'pre-data');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-L', $fct_list, '-d', $dst, $file ],
	"the extension's tables first");
$node->command_ok([ 'pg_restore', '--exit-on-error', '-j', '2', '--section=data', '--section=post-data',
		'-L', $rest_list, '-d', $dst, $file ], 'the rest in parallel');
is($node->safe_psql('dst', q{SELECT md5(string_agg(e::text, ';' ORDER BY id)) FROM embeddings}),
	$before, 'every embedding restored identically');
is($node->safe_psql('dst', q{SET enable_seqscan = off; SELECT id FROM embeddings WHERE fct_upgrade(e, 'qa-v2') = 'qa-v2:[-7,7]|[7]'}),
	'7', 'the expression index on fct_upgrade is rebuilt and finds the row');
is($node->safe_psql('dst', q{SELECT fct_upgrade_path('qa-v1', 'qa-v2')}), '{qa-v1,qa-v2}',
	'the transformation is restored');

$node->stop;
done_testing();
