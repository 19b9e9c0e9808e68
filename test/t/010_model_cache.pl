# The per-backend model cache follows the registry across sessions: a model
# registered by another session is usable at once, and when the extension is
# dropped and created again (new table, ids reused for other models) a
# long-lived session sees the new registry, not its cached copy of the old one;
# the same when a model is dropped (fct_drop_model) and its name registered again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('model_cache');

# A long-lived session warms its cache with model m1 (id 1, 2 dimensions).
my $s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_safe("SELECT fct_register_model('m1', 2)");
is($s->query_safe("SELECT 'm1:[1,2]'::embedding"), 'm1:[1,2]',
	'session uses a model it registered');
is($s->query_safe("SELECT fct_model(e) FROM (VALUES ('m1:[1,2]'::embedding)) v(e)"),
	'm1', 'output resolves the cached id');

# Another session registers m2: the first one can use it without reconnecting.
$node->safe_psql('postgres', "SELECT fct_register_model('m2', 3)");
is($s->query_safe("SELECT 'm2:[1,2,3]'::embedding"), 'm2:[1,2,3]',
	'model registered by another session is usable');

# Uncommitted registrations of another session stay invisible.
my $t = $node->background_psql('postgres', on_error_stop => 0);
$t->query_safe("BEGIN");
$t->query_safe("SELECT fct_register_model('m3', 4)");
my ($out, $err) = $s->query("SELECT 'm3:[1,2,3,4]'::embedding");
ok($err, 'uncommitted model of another session is unknown');
like($s->{stderr}, qr/model "m3" does not exist/, '... with the unknown-model error');
$s->{stderr} = '';
$t->query_safe("COMMIT");
is($s->query_safe("SELECT 'm3:[1,2,3,4]'::embedding"), 'm3:[1,2,3,4]',
	'model is usable once the other session commits');
$t->quit;

# Another session drops m3 (fct_drop_model) and registers the name again with
# other dimensions: the long-lived session, which used m3, sees the new row.
$node->safe_psql('postgres', "SELECT fct_drop_model('m3'); SELECT fct_register_model('m3', 2)");
is($s->query_safe("SELECT 'm3:[1,2]'::embedding"), 'm3:[1,2]',
	'model dropped and registered again by another session is seen with its new dimensions');
($out, $err) = $s->query("SELECT 'm3:[1,2,3,4]'::embedding");
ok($err, 'the dropped model\'s dimensions are rejected');
$s->{stderr} = '';

# Another session drops and recreates the extension, then registers m1 again
# with other dimensions (the same id: ids are a hash of the name): the cached m1 must not be used.
$node->safe_psql('postgres', q{
	DROP EXTENSION fct;
	CREATE EXTENSION fct;
	SELECT fct_register_model('other', 7);
	SELECT fct_register_model('m1', 5);
});
is($s->query_safe("SELECT 'm1:[1,2,3,4,5]'::embedding"), 'm1:[1,2,3,4,5]',
	'recreated model is seen with its new dimensions');
($out, $err) = $s->query("SELECT 'm1:[1,2]'::embedding");
ok($err, 'old dimensions of the dropped model are rejected');
like($s->{stderr}, qr/embedding has 2 dimensions, model "m1" has 5/, '... naming the new dimensions');
$s->{stderr} = '';
is($s->query_safe("SELECT id = fct_model_id('m1') FROM fct_models WHERE name = 'm1'"), 't',
	'm1 has the id of its name again');
is($s->query_safe("SELECT fct_model(fct_embedding(ARRAY[1,2,3,4,5], NULL, 'm1'))"), 'm1',
	'id to name goes through the new registry');

# The same inside the long-lived session itself.
$s->query_safe("DROP EXTENSION fct");
$s->query_safe("CREATE EXTENSION fct");
$s->query_safe("SELECT fct_register_model('m1', 1)");
is($s->query_safe("SELECT 'm1:[42]'::embedding"), 'm1:[42]',
	'same session: recreated extension, recreated model');

$s->quit;
$node->stop;
done_testing();
