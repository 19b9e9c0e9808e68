# A migration stopped in the middle by an immediate-mode shutdown (a crash) resumes after the
# restart and ends with every row upgraded exactly once and none lost: for the procedure
# (CALL fct_migrate again), for the background worker without shared_preload_libraries
# (fct_migrate_resume()) and with fct in shared_preload_libraries (the launcher resumes it).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $rows = 4000;
my $node = fct_node('migrate_crash', conf => "max_worker_processes = 16\n");

# A table whose every row keeps its original embedding in orig, and a BEFORE UPDATE trigger that
# sleeps a little per row, so that a migration of a few thousand rows lasts long enough to be
# stopped in the middle.  Integer data and weights: batched and single upgrades agree exactly.
$node->safe_psql('postgres', fct_integer_upgrade_sql() . fct_integer_rows_sql($rows, slow => 0.001));

my $migrated = "SELECT count(*) FROM t WHERE fct_model(e) = 'v2'";

# every row there once, each either untouched (v1, equal to orig) or upgraded once (= fct_upgrade(orig))
sub check_rows
{
	my ($what, $all_done) = @_;
	my $res = $node->safe_psql('postgres', q{
		SELECT count(*), count(DISTINCT id),
		       count(*) FILTER (WHERE fct_model(e) = 'v1' AND e = orig),
		       count(*) FILTER (WHERE fct_model(e) = 'v2' AND e = fct_upgrade(orig, 'v2'))
		FROM t});
	my ($n, $ids, $old, $new) = split /\|/, $res;
	is($n, $rows, "$what: no row lost");
	is($ids, $rows, "$what: no row duplicated");
	is($old + $new, $rows, "$what: every row either untouched or upgraded exactly once");
	is($new, $rows, "$what: every row upgraded") if $all_done;
	return $new;
}

# Wait until some rows, but not all, are migrated; then crash.
sub crash_midway
{
	my ($what) = @_;
	$node->poll_query_until('postgres', "SELECT ($migrated) >= 300")
	  or die "$what: the migration made no progress";
	# The migration's steps commit asynchronously (a step lost in a crash is redone by the next
	# run): wait until what was counted is on disk, so that the crash comes after some progress.
	my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	$node->poll_query_until('postgres', "SELECT pg_current_wal_flush_lsn() >= '$lsn'")
	  or die "$what: the WAL was not flushed";
	$node->stop('immediate');
	$node->start;
	my $n = check_rows("$what, after the crash", 0);
	ok($n > 0 && $n < $rows, "$what: stopped in the middle ($n of $rows rows upgraded)");
}

# 1. The procedure.
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
	  "CALL fct_migrate('t', 'e', 'v2', batch_size => 100)" ],
	'>', \$out, '2>', \$err);
crash_midway('procedure');
$h->finish;
like($err, qr/rows? upgraded/, 'procedure: progress was reported before the crash');
$node->safe_psql('postgres', "CALL fct_migrate('t', 'e', 'v2', batch_size => 500)");
check_rows('procedure, resumed', 1);

# 2. The background worker, without shared_preload_libraries: fct_migrate_resume() resumes it.
$node->safe_psql('postgres', 'UPDATE t SET e = orig');
my $job = $node->safe_psql('postgres',
	"SELECT fct_migrate_start('t', 'e', 'v2', batch_size => 100, pause_ms => 20)");
crash_midway('worker');
is($node->safe_psql('postgres', "SELECT state FROM fct_migrations WHERE id = $job"),
	'running', 'worker: the job is still marked running after the crash');
sleep 1;
is($node->safe_psql('postgres', "SELECT fct_migrate_resume()"), '1', 'worker: fct_migrate_resume() starts one worker');
is($node->safe_psql('postgres', "SELECT fct_migrate_resume()"), '0', 'worker: and not a second one for the same job');
$node->poll_query_until('postgres', "SELECT state = 'done' FROM fct_migrations WHERE id = $job")
  or die 'worker: the resumed migration did not finish';
check_rows('worker, resumed', 1);
is($node->safe_psql('postgres', "SELECT rows_done, rows_left FROM fct_migrations WHERE id = $job"),
	"$rows|0", 'worker: rows_done counts every row once across the crash');

# 3. With fct in shared_preload_libraries, the launcher resumes queued work at startup.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'fct'\n");
$node->restart;
$node->safe_psql('postgres', 'UPDATE t SET e = orig');
$job = $node->safe_psql('postgres',
	"SELECT fct_migrate_start('t', 'e', 'v2', batch_size => 100, pause_ms => 20)");
crash_midway('launcher');
$node->poll_query_until('postgres', "SELECT state = 'done' FROM fct_migrations WHERE id = $job")
  or die 'launcher: the migration was not resumed';
check_rows('launcher, resumed', 1);
ok($node->log_contains(qr/fct: resumed 1 queued migration in database/), 'launcher: the server log says it resumed the job');

is($node->safe_psql('postgres', "SELECT count(*) FROM fct_migrations WHERE state IN ('queued', 'running')"),
	'0', 'nothing left queued or running');

$node->stop;
done_testing();
