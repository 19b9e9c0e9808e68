# Concurrent writers during a migration: pgbench clients update rows (writing old-model and
# new-model values) and insert rows while CALL fct_migrate(...) and then a background worker
# migrate the table.  None of their changes may be lost: every row's value must be the upgrade of
# the value its last writer wrote (kept in orig), and every inserted row must be there.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $rows = 20000;
my $node = fct_node('migrate_concurrent', conf => "max_worker_processes = 16\nmax_connections = 40\n");

# Integer data and weights, so that batched and single upgrades agree exactly.
$node->safe_psql('postgres', fct_integer_upgrade_sql()
	  . fct_integer_rows_sql($rows, columns => ', version int NOT NULL DEFAULT 0') . fct_inserts_sql());

# The writers' scripts.  orig always holds the old-model value of the row's last write.
my %scripts = (
	# an application still writing the old model
	'update_old' => q{
\set id random(1, 20000)
UPDATE t SET version = version + 1,
	orig = fct_embedding(ARRAY[:id, version + 1, 5, 1]::real[], ARRAY[1, version + 1]::real[], 'v1'),
	e = fct_embedding(ARRAY[:id, version + 1, 5, 1]::real[], ARRAY[1, version + 1]::real[], 'v1')
	WHERE id = :id;
},
	# an application already writing the new model
	'update_new' => q{
\set id random(1, 20000)
UPDATE t SET version = version + 1,
	orig = fct_embedding(ARRAY[:id, version + 1, 7, 2]::real[], ARRAY[2, version]::real[], 'v1'),
	e = fct_upgrade(fct_embedding(ARRAY[:id, version + 1, 7, 2]::real[], ARRAY[2, version]::real[], 'v1'), 'v2')
	WHERE id = :id;
},
	'insert' => fct_insert_script('v1'));
my $start_writers = fct_pgbench_writers($node, \%scripts, 4);

# the writers' changes are all there: every row is the upgrade of its last write, or that write itself
sub check_rows
{
	my ($what) = @_;
	my $ins = fct_check_written_rows($node, $what, 'v2', $rows);
	my $versions = $node->safe_psql('postgres', 'SELECT sum(version) FROM t');
	ok($versions > 0 && $ins > 0, "$what: the writers did write ($versions updates, $ins inserts)");
}

# 1. The procedure, with writers all along.
my ($wout, $werr, $mout, $merr) = ('', '', '', '');
my $writers = $start_writers->(20, \$wout, \$werr);
sleep 1;
my $mig = IPC::Run::start(
	[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c',
	  "CALL fct_migrate('t', 'e', 'v2', batch_size => 500)" ],
	'>', \$mout, '2>', \$merr);
$mig->finish;
is($mig->result(0), 0, 'procedure: the migration succeeded while the writers ran') or diag($merr);
like($merr, qr/fct_migrate: (done|\d+ rows? of .* (are|is) still not in model)/, 'procedure: the migration reported its end');
my @skips = $merr =~ /(\d+) rows? changed concurrently (?:were|was) left for a later pass/g;
diag('procedure: rows changed concurrently during the read-write window, left for a later pass: '
	  . ($skips[-1] // 0));
$writers->finish;
is($writers->result(0), 0, 'procedure: the writers never failed') or diag($werr);
like($wout, qr/number of failed transactions: 0/, 'procedure: no writer transaction failed');
# The writers kept writing old-model rows after the migration: a last run takes them.
$node->safe_psql('postgres', "CALL fct_migrate('t', 'e', 'v2')");
check_rows('procedure');

# 2. The background worker, with writers all along.
$node->safe_psql('postgres', "UPDATE t SET e = orig");
$writers = $start_writers->(15, \$wout, \$werr);
sleep 1;
my $job = $node->safe_psql('postgres',
	"SELECT fct_migrate_start('t', 'e', 'v2', batch_size => 500, pause_ms => 5)");
$writers->finish;
is($writers->result(0), 0, 'worker: the writers never failed') or diag($werr);
# Done, or (when the writers kept writing old-model rows through all its passes) stopped saying so.
like(fct_wait_migration($node, $job, 'worker'),
	qr/^(done:|failed:.*concurrent transactions kept writing rows of older models)/,
	'worker: the migration finished');
$node->safe_psql('postgres', "CALL fct_migrate('t', 'e', 'v2')");
check_rows('worker');

$node->stop;
done_testing();
