# The progress of fct_fit_transformation is visible from another session in
# the view fct_progress (src/progress/: the backend's pg_stat_activity entry),
# epoch by epoch with its losses, and gone when the fit is over; a role sees
# only its own sessions' progress, as pg_stat_activity shows only their query
# text.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('fit_progress');
$node->safe_psql('postgres', q{
SELECT fct_register_model('p-old', 16), fct_register_model('p-new', 16);
CREATE TABLE pairs AS
SELECT i, fct_embedding(o, NULL, 'p-old') AS e_old,
       fct_embedding((SELECT array_agg((sin(x * 3) + x)::real ORDER BY k) FROM unnest(o) WITH ORDINALITY u(x, k)),
                     NULL, 'p-new') AS e_new
  FROM (SELECT i, (SELECT array_agg(sin(i * 1.7 + j * 0.31)::real ORDER BY j) FROM generate_series(1, 16) j) AS o
          FROM generate_series(1, 3000) i) t;
CREATE ROLE other LOGIN;
GRANT pg_read_all_stats TO other;
CREATE ROLE stranger LOGIN;
});

# A fit long enough to be watched (thousands of epochs of small batches).
my $fit = $node->background_psql('postgres', on_error_stop => 0);
$fit->query_until(qr/started/, q{
\echo started
SELECT fct_fit_transformation('p-old', 'p-new', 'SELECT e_old, e_new FROM pairs ORDER BY i', 'mlp',
	'{"epochs": 3000, "patience": 3000, "batch_size": 16, "register": false}') IS NOT NULL AS fitted;
});

ok( $node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM fct_progress
		 WHERE command = 'fct_fit_transformation' AND phase = 'training' AND done >= 2}),
	'the fit is seen training from another session');
my $row = $node->safe_psql('postgres', q{
	SELECT target, total, done BETWEEN 1 AND total, (detail->>'train_loss')::float8 > 0,
	       (detail->>'val_loss')::float8 > 0, (detail->>'best_epoch')::int >= 1, updated >= started
	  FROM fct_progress WHERE command = 'fct_fit_transformation'});
is($row, 'p-old -> p-new|3000|t|t|t|t|t', 'target, epoch of epochs, losses, best epoch, times');
my $q = $node->safe_psql('postgres', q{
	SELECT query FROM pg_stat_activity WHERE query LIKE '/* fct_progress %'});
like($q, qr/\*\/ \s*\\echo started\s*SELECT fct_fit_transformation\('p-old'|\*\/ .*SELECT fct_fit_transformation\('p-old'/s,
	'pg_stat_activity still shows the query after the progress comment');

# Progress moves on.
my $first = $node->safe_psql('postgres', q{SELECT done FROM fct_progress WHERE command = 'fct_fit_transformation'});
ok( $node->poll_query_until('postgres', qq{
		SELECT done > $first FROM fct_progress WHERE command = 'fct_fit_transformation'}),
	'the epoch count advances');

# pg_stat_activity's rule: pg_read_all_stats sees it, a stranger does not.
is($node->safe_psql('postgres', q{SELECT count(*) FROM fct_progress}, extra_params => [ '-U', 'other' ]),
	'1', 'a role with pg_read_all_stats sees the fit');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fct_progress}, extra_params => [ '-U', 'stranger' ]),
	'0', 'another role does not');

# Cancelled, the fit leaves no progress behind.
$node->safe_psql('postgres', q{
	SELECT pg_cancel_backend(pid) FROM fct_progress WHERE command = 'fct_fit_transformation'});
ok( $node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM fct_progress}),
	'no progress once the fit is cancelled');
$fit->quit;

# A fit that finishes restores its query text: nothing left in the view.
$node->safe_psql('postgres', q{
	SELECT fct_fit_transformation('p-old', 'p-new', 'SELECT e_old, e_new FROM pairs ORDER BY i', 'linear',
		'{"register": false}') IS NOT NULL});
is($node->safe_psql('postgres', q{SELECT count(*) FROM fct_progress}), '0', 'nothing left after a fit');

$node->stop;
done_testing();
