# A database using fct restores with the two commands users run, no special sequence:
#   pg_dump src | psql dst              (plain format)
#   pg_dump -Fc src; pg_restore -j 4    (custom format, parallel)
# although pg_dump writes the data of tables that sort before fct_models (public.embeddings,
# aaa.docs, public.articles) first, and pg_restore -j loads tables concurrently.  Model ids are a
# function of the name, and the type's input accepts a not-yet-restored model while
# check_function_bodies is off (which both tools set first).  Checked: every row of every table
# (user tables and the extension's catalogs) reads back as the same text, and queries work (on-the-fly
# upgrade, an lsh index on fct_upgrade, an lsh index in another schema, a btree on fct_upgrade,
# a label set look-up); no error, no warning.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('main', extension => 0);
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION fct;
	SELECT fct_register_model('r-v1', 2, side_dim => 1, note => 'first');
	SELECT fct_register_model('r-v2', 2, side_dim => 1);
	SELECT fct_register_model('r-labels', 3);
	SELECT fct_register_transformation('r-v1', 'r-v2', '{"side": null, "mixer": [{"weight": [[0, 1], [1, 0]]}]}');

	-- "embeddings" < "fct_models": its data comes first in the dump
	CREATE TABLE embeddings (id int PRIMARY KEY, e embedding(2));
	INSERT INTO embeddings SELECT g, fct_embedding(ARRAY[g % 17, -(g % 23)]::real[], ARRAY[g % 5]::real[], 'r-v1')
	  FROM generate_series(1, 600) g;
	INSERT INTO embeddings VALUES (-1, NULL), (-2, 'r-v2:[0.5,-0.25]');
	CREATE INDEX embeddings_up ON embeddings (fct_upgrade(e, 'r-v2'));
	CREATE INDEX embeddings_lsh ON embeddings USING lsh (fct_upgrade(e, 'r-v2')) WITH (lists = 8);

	-- another schema, sorting before the extension's
	CREATE SCHEMA aaa;
	CREATE TABLE aaa.docs (id int PRIMARY KEY, e embedding, note text);
	INSERT INTO aaa.docs SELECT g, ('r-v2:[' || (g % 13) || ',' || (g % 7) || ']|[' || g || ']')::embedding, 'doc ' || g
	  FROM generate_series(1, 400) g;
	CREATE INDEX docs_lsh ON aaa.docs USING lsh (e embedding_l2_ops) WITH (lists = 8);
	CREATE TABLE aaa.bare (id int, e embedding);
	INSERT INTO aaa.bare VALUES (1, '[1,2]'), (2, '[3]|[4,5]'), (3, NULL);

	-- a label set whose label table sorts before fct_label_sets
	CREATE TABLE articles (id int PRIMARY KEY, e embedding, b real);
	INSERT INTO articles SELECT g, ('r-labels:[' || g || ',' || (10 - g) || ',' || (g % 3) || ']')::embedding, g / 100.0
	  FROM generate_series(1, 10) g;
	SELECT fct_create_label_set('r-set', 'articles', 'id', 'e', 'b');
	SELECT fct_set_prior('r-set', ARRAY(SELECT (CASE WHEN g = 3 THEN 0.55 ELSE 0.05 END)::real
										FROM generate_series(1, 10) g));
});

# every row of every table, as text
my $tables = $node->safe_psql('src', q{
	SELECT string_agg(format('%I.%I', schemaname, tablename), ' ' ORDER BY schemaname, tablename)
	  FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')});
my @tables = split / /, $tables;
ok(scalar(grep { /^(public\.embeddings|aaa\.docs|public\.articles|public\.fct_models|public\.fct_transformations|public\.fct_label_sets|public\.fct_label_index)$/ } @tables) == 7,
	"the tables to compare: @tables");

sub contents
{
	my ($db) = @_;
	my %c;
	for my $t (@tables)
	{
		$c{$t} = $node->safe_psql($db, "SELECT count(*) || E'\\n' || coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '') FROM $t r");
	}
	return \%c;
}

my %queries = (
	'on-the-fly upgrade (seq scan, v1 rows against a v2 query)' =>
	  q{SELECT string_agg(id::text, ',') FROM (SELECT id FROM embeddings WHERE id > 0 ORDER BY e <-> 'r-v2:[-3,7]', id LIMIT 8) s},
	'btree on fct_upgrade' =>
	  q{SET enable_seqscan = off; SELECT string_agg(id::text, ',' ORDER BY id) FROM embeddings WHERE fct_upgrade(e, 'r-v2') = 'r-v2:[-5,7]|[2]'},
	'lsh on fct_upgrade, ORDER BY' =>
	  q{SET enable_seqscan = off; SET fct.lsh_probes = 8; SELECT string_agg(d::text, ',') FROM (SELECT fct_upgrade(e, 'r-v2') <#> 'r-v2:[1,2]' AS d FROM embeddings ORDER BY fct_upgrade(e, 'r-v2') <#> 'r-v2:[1,2]' LIMIT 10) s},
	'lsh in another schema, ORDER BY' =>
	  q{SET enable_seqscan = off; SET fct.lsh_probes = 8; SELECT string_agg(d::text, ',') FROM (SELECT e <-> 'r-v2:[3.2,4.1]' AS d FROM aaa.docs ORDER BY e <-> 'r-v2:[3.2,4.1]' LIMIT 10) s},
	'label look-up with the prior' =>
	  q{SELECT string_agg(label || ':' || round(prob::numeric, 5), ' ') FROM fct_top_labels('r-set', 'r-labels:[2,3,1]', 4)},
	'upgrade path' => q{SELECT fct_upgrade_path('r-v1', 'r-v2')},
);

sub answers
{
	my ($db) = @_;
	my %a;
	$a{$_} = $node->safe_psql($db, $queries{$_}) for keys %queries;
	return \%a;
}

my $src_contents = contents('src');
my $src_answers = answers('src');
like($node->safe_psql('src', q{SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM embeddings ORDER BY fct_upgrade(e, 'r-v2') <#> 'r-v2:[1,2]' LIMIT 10}),
	qr/embeddings_lsh/, 'the lsh query is served by the index');
like($node->safe_psql('src', q{SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM aaa.docs ORDER BY e <-> 'r-v2:[3.2,4.1]' LIMIT 10}),
	qr/docs_lsh/, 'the lsh query in the other schema is served by the index');
# the exact answers, from a sequential scan (index scans off: the planner serves ORDER BY 1 from the
# lsh index too, and the check compared the index with itself), so that a wrong index after the
# restore cannot agree with itself
is($src_answers->{'lsh on fct_upgrade, ORDER BY'},
	$node->safe_psql('src', q{SET enable_indexscan = off; SET enable_bitmapscan = off;
		SELECT string_agg(d::text, ',') FROM (SELECT fct_upgrade(e, 'r-v2') <#> 'r-v2:[1,2]' AS d FROM embeddings ORDER BY 1 LIMIT 10) s}),
	'lsh answer = exact answer in the source');
is($src_answers->{'lsh in another schema, ORDER BY'},
	$node->safe_psql('src', q{SET enable_indexscan = off; SET enable_bitmapscan = off;
		SELECT string_agg(d::text, ',') FROM (SELECT e <-> 'r-v2:[3.2,4.1]' AS d FROM aaa.docs ORDER BY 1 LIMIT 10) s}),
	'lsh answer in the other schema = exact answer in the source');

# The plain dump writes the user tables' data before the registry's (what broke before).
my ($dump, $err) = ('', '');
IPC::Run::run([ 'pg_dump', '-d', $node->connstr('src') ], '>', \$dump, '2>', \$err) or die "pg_dump: $err";
my $pos_models = index($dump, 'COPY public.fct_models ');
ok($pos_models > 0 && index($dump, 'COPY public.embeddings ') < $pos_models
	  && index($dump, 'COPY aaa.docs ') < $pos_models && index($dump, 'COPY public.articles ') < $pos_models,
	'pg_dump writes embeddings, aaa.docs and articles before fct_models');
like($dump, qr/SET check_function_bodies = false;/, 'the dump turns check_function_bodies off');

sub check_restored
{
	my ($db, $how) = @_;
	my $c = contents($db);
	for my $t (@tables)
	{
		is($c->{$t}, $src_contents->{$t}, "$how: every row of $t identical");
	}
	my $a = answers($db);
	for my $q (sort keys %queries)
	{
		is($a->{$q}, $src_answers->{$q}, "$how: $q");
	}
	like($node->safe_psql($db, q{SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM embeddings ORDER BY fct_upgrade(e, 'r-v2') <#> 'r-v2:[1,2]' LIMIT 10}),
		qr/embeddings_lsh/, "$how: the restored lsh index serves the query");
	is($node->safe_psql($db, q{SELECT count(*) FROM fct_lsh_verify('embeddings_lsh') WHERE missing = 0 AND dangling = 0}),
		'1', "$how: the restored lsh index holds every row");
	is($node->safe_psql($db, q{SELECT count(*) FROM fct_models WHERE id <> fct_model_id(name)}),
		'0', "$how: every model keeps the id of its name");
	is($node->safe_psql($db, q{SELECT fct_register_model('r-v3', 2) = fct_model_id('r-v3')}),
		't', "$how: a model registered after the restore");
	# normal sessions are strict again
	my ($ret, $out, $stderr) = $node->psql($db, q{SELECT 'r-unknown:[1,2]'::embedding});
	like($stderr, qr/model "r-unknown" does not exist/, "$how: an unknown model is an error outside a restore");
}

# 1. pg_dump src | psql dst
$node->safe_psql('postgres', 'CREATE DATABASE dst_plain');
my ($out, $perr) = ('', '');
my $ok = IPC::Run::run([ 'pg_dump', '-d', $node->connstr('src') ], '|',
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('dst_plain') ],
	'>', \$out, '2>', \$perr);
ok($ok, 'pg_dump src | psql dst_plain');
is($perr, '', 'pg_dump | psql: nothing on stderr (no error, no warning)');
check_restored('dst_plain', 'pg_dump | psql');

# 2. pg_dump -Fc, pg_restore -j 4
my $file = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $file, '-d', $node->connstr('src') ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE dst_custom');
my $rerr = '';
$ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-j', '4', '-d', $node->connstr('dst_custom'), $file ],
	'>', \$out, '2>', \$rerr);
ok($ok, 'pg_restore -j 4');
is($rerr, '', 'pg_restore -j 4: nothing on stderr (no error, no warning)');
check_restored('dst_custom', 'pg_restore -j 4');

$node->stop;
done_testing();
