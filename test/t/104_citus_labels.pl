# Label sets over Citus reference tables, from the coordinator: created without the trigger Citus
# refuses on reference tables (the invalidation trigger goes on every shard placement instead,
# with citus.enable_unsafe_triggers on for that statement only), answers equal to the same label
# set over a local table, and a change to the reference table made by another session reaches a
# session's cached label matrix.  A distributed label table is refused, saying why.
# Issue #12 item 2 (label sets).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use citus_cluster;

citus_skip_unless_available();

my $c = citus_cluster(workers => 2);
my $co = $c->{coordinator};

$co->safe_psql('postgres', q{
SELECT fct_register_model('lm', 4);
CREATE TABLE labs_local (id int PRIMARY KEY, e embedding);
INSERT INTO labs_local SELECT i, fct_embedding(ARRAY[sin(i), cos(i), sin(2 * i), cos(3 * i)]::real[], NULL, 'lm')
	FROM generate_series(1, 200) i;
CREATE TABLE labs (id int PRIMARY KEY, e embedding);
SELECT create_reference_table('labs');
INSERT INTO labs SELECT * FROM labs_local;
SELECT fct_create_label_set('local', 'labs_local', 'id', 'e');
});

my ($rc, $out, $err) = $co->psql('postgres', "SELECT fct_create_label_set('ref', 'labs', 'id', 'e')");
is($rc, 0, 'a label set over a reference table is created') or diag($err);
is($out, '200', '... with its 200 labels');
is($co->safe_psql('postgres', 'SHOW citus.enable_unsafe_triggers'), 'off',
	'citus.enable_unsafe_triggers is left as it was');
is($c->{workers}[0]->safe_psql('postgres',
	"SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'fct_label_set_invalidate_1%' AND tgrelid::regclass::text LIKE 'labs_%'"),
	'1', 'the invalidation trigger is on the shard placement of worker1');

my $q = "'lm:[0.3,0.9,-0.2,0.5]'";
my $top = sub {
	my ($set) = @_;
	return "SELECT string_agg(label || ':' || round(score::numeric, 5), ',') FROM fct_top_labels('$set', $q, 5)";
};
is($co->safe_psql('postgres', $top->('ref')), $co->safe_psql('postgres', $top->('local')),
	'top-5 labels equal those of the same labels in a local table');

# A long-lived session caches the label matrix; another changes the reference table.
my $s = $co->background_psql('postgres', on_error_stop => 0);
my $before = $s->query_safe($top->('ref'));
$co->safe_psql('postgres', "UPDATE labs SET e = fct_embedding(ARRAY[3, 9, -2, 5]::real[], NULL, 'lm') WHERE id = 77");
my $after = $s->query_safe($top->('ref'));
like($after, qr/^77:/, 'a change to the reference table by another session reaches the cached matrix')
  or diag("before: $before; after: $after");
$co->safe_psql('postgres', "UPDATE labs_local SET e = fct_embedding(ARRAY[3, 9, -2, 5]::real[], NULL, 'lm') WHERE id = 77");
is($after, $co->safe_psql('postgres', $top->('local')), '... and equals the local label set after the same change');
# A TRUNCATE and a reload of the original labels: label 77 is back where it was.
$co->safe_psql('postgres', 'TRUNCATE labs');
$co->safe_psql('postgres', 'INSERT INTO labs SELECT i, fct_embedding(ARRAY[sin(i), cos(i), sin(2 * i), cos(3 * i)]::real[], NULL, \'lm\') FROM generate_series(1, 200) i');
is($s->query_safe($top->('ref')), $before, 'a TRUNCATE and a reload are seen too');
$s->quit;

# Dropping the label set removes the trigger from every placement.
$co->safe_psql('postgres', "SELECT fct_drop_label_set('ref')");
is($c->{workers}[0]->safe_psql('postgres',
	"SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'fct_label_set_invalidate%'"), '0',
	'fct_drop_label_set removes the trigger from the placements');

# A distributed label table is refused with the reason.
$co->safe_psql('postgres', q{
CREATE TABLE labs_dist (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('labs_dist', 'id', shard_count => 4);
INSERT INTO labs_dist SELECT * FROM labs_local;
});
($rc, $out, $err) = $co->psql('postgres', "SELECT fct_create_label_set('dist', 'labs_dist', 'id', 'e')");
isnt($rc, 0, 'a label set over a distributed table is refused');
like($err, qr/label table public\.labs_dist is a Citus distributed table/, '... saying why');
like($err, qr/create_reference_table/, '... and what to do');
is($co->safe_psql('postgres', "SELECT count(*) FROM fct_label_sets WHERE name = 'dist'"), '0', '... and leaves nothing');

citus_stop($c);
done_testing();
