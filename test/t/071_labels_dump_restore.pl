# pg_dump / pg_restore keep label sets: the catalog rows, the label numbering,
# the priors, the round history, the fitted adapter, and the invalidation
# trigger on the label table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = PostgreSQL::Test::Cluster->new('labels_dump');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE d1');
$node->safe_psql('postgres', 'CREATE DATABASE d2');
$node->safe_psql('d1', 'CREATE EXTENSION fct;'
	  . fct_tiny_label_set_sql('s', 'lt', bias => 1, train_prior => '{0.5,0.25,0.25}') . q{
	SELECT fct_set_prior('s', '{0.2,0.3,0.5}');
	INSERT INTO fct_label_rounds VALUES
		('s', 1, '{0.5,0.5,0.5}', '{0.2,0.3,0.5}'), ('s', 2, '{0.6,0.5,0.4}', '{0.3,0.3,0.4}');
	SELECT fct_fit_prior_adapter('s', 8, 10);
});

my $top = "SELECT string_agg(label || ':' || round(prob::numeric, 4), ' ') FROM fct_top_labels('s', '[1,2]')";
my $pred = "SELECT fct_predict_prior('s', '{0.5,0.5,0.5}')";
my $before_top = $node->safe_psql('d1', $top);
my $before_pred = $node->safe_psql('d1', $pred);
is($before_top, '3:0.8014 2:0.1769 1:0.0217', 'corrected look-up before the dump');

my $dump = $node->basedir . '/d1.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('d1') ], 'pg_dump');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('d2'), $dump ], 'pg_restore');

is($node->safe_psql('d2', $top), $before_top, 'same corrected look-up after the restore');
is($node->safe_psql('d2', $pred), $before_pred, 'same adapter prediction after the restore');
is($node->safe_psql('d2',
	"SELECT name || ' ' || n_labels || ' ' || train_prior::text || ' ' || prior_source FROM fct_label_sets"),
	's 3 {0.5,0.25,0.25} manual', 'catalog row restored');
is($node->safe_psql('d2', "SELECT string_agg(label, ',' ORDER BY idx) FROM fct_label_index"),
	'1,2,3', 'label numbering restored');
is($node->safe_psql('d2', "SELECT count(*) FROM fct_label_rounds"), '2', 'rounds restored');

# the restored label table still carries the trigger that invalidates the
# cache: one session warms its cache, changes a label, and sees the change
is($node->safe_psql('d2', "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'lt'::regclass "
	. "AND tgname = 'fct_label_set_invalidate'"), '1', 'invalidation trigger restored');
is($node->safe_psql('d2', "SELECT label FROM fct_top_labels('s', '[1,2]', 1); "
	. "UPDATE lt SET e = '[5,5]' WHERE id = 1; "
	. "SELECT label FROM fct_top_labels('s', '[1,2]', 1);"),
	"3\n1", 'restored trigger keeps the cache in step with the table');

$node->stop;
done_testing();
