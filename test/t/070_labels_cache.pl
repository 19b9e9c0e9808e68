# The per-backend label-set cache follows changes made by other sessions: to the
# label table (once committed, never before), to the priors, to the label set
# itself (dropped and created again on another table), and to the extension.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('labels_cache');
$node->safe_psql('postgres', fct_tiny_label_set_sql('ls', 'lt'));

my $top = "SELECT label || ':' || score FROM fct_top_labels('ls', '[1,2]', 1)";

# A long-lived session warms its cache.
my $s = $node->background_psql('postgres', on_error_stop => 0);
is($s->query_safe($top), '3:3', 'top label from the cached matrix');

# Another session changes a label embedding and commits: seen at once.
$node->safe_psql('postgres', "UPDATE lt SET e = '[5,5]' WHERE id = 1");
is($s->query_safe($top), '1:15', 'committed label change of another session is seen');

# An uncommitted change stays invisible, and is seen after the commit.
my $t = $node->background_psql('postgres', on_error_stop => 0);
$t->query_safe("BEGIN");
$t->query_safe("UPDATE lt SET e = '[0,9]' WHERE id = 2");
is($s->query_safe($top), '1:15', 'uncommitted label change is not seen');
$t->query_safe("COMMIT");
is($s->query_safe($top), '2:18', 'label change is seen once committed');
$t->quit;

# Priors set by another session apply to the cached matrix.
my $p = "SELECT round(prob::numeric, 4) FROM fct_top_labels('ls', '[0,0]', 1)";
is($s->query_safe($p), '0.3333', 'uniform probabilities without a prior');
$node->safe_psql('postgres', "SELECT fct_set_prior('ls', '{0.5,0.25,0.25}')");
is($s->query_safe($p), '0.5000', 'predicted prior of another session is used');

# The set is dropped and created again on another table with other labels.
$node->safe_psql('postgres', q{
	SELECT fct_drop_label_set('ls');
	CREATE TABLE lt2 (name text, e embedding);
	INSERT INTO lt2 VALUES ('a', '[1,0,0]'), ('b', '[0,0,1]');
	SELECT fct_create_label_set('ls', 'lt2', 'name', 'e');
});
is($s->query_safe("SELECT label FROM fct_top_labels('ls', '[0,1,2]', 1)"), 'b',
	'label set created again on another table is read afresh');
my ($out, $err) = $s->query("SELECT * FROM fct_top_labels('ls', '[1,2]', 1)");
ok($err, 'the old dimension is rejected');
like($s->{stderr}, qr/the query has 2 dimensions, the labels of label set "ls" have 3/,
	'... naming the new dimension');
$s->{stderr} = '';

# The extension is dropped and created again: the set is gone.
$node->safe_psql('postgres', q{
	SELECT fct_drop_label_set('ls');
	DROP TABLE lt, lt2;
	DROP EXTENSION fct;
	CREATE EXTENSION fct;
});
($out, $err) = $s->query("SELECT * FROM fct_top_labels('ls', '[0,1,2]', 1)");
ok($err, 'label set of a dropped extension is unknown');
like($s->{stderr}, qr/label set "ls" does not exist/, '... with the unknown-set error');
$s->{stderr} = '';
$s->quit;

$node->stop;
done_testing();
