# The migration queue survives a crash-restart cycle: a backend killed with -9 (what the OOM
# killer does) makes the postmaster terminate every backend and reinitialise shared memory,
# without a shutdown.  With fct in shared_preload_libraries the launcher resumes the running job
# afterwards, whichever backend was killed (the job's own worker, or an unrelated one), and the
# job ends with every row upgraded exactly once.  Without it, fct_migrate_start on the same
# column takes the orphaned job over instead of refusing it.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;
use Time::HiRes qw(time usleep);

my $rows = 3000;
my $node = fct_node('migrate_crash_restart',
	conf => "max_worker_processes = 16\nshared_preload_libraries = 'fct'\nrestart_after_crash = on\n");

# orig keeps each row's original value; a trigger slows every row down, so that the migration is
# still running when a backend is killed.  Integer data and weights: every upgrade path agrees.
$node->safe_psql('postgres', fct_integer_upgrade_sql() . fct_models_sql([ 'v3', 3, 2 ])
	  . fct_integer_rows_sql($rows, slow => 0.002));

my $migrated = "SELECT count(*) FROM t WHERE fct_model(e) = 'v2'";

sub check_rows
{
	my ($what) = @_;
	my $res = $node->safe_psql('postgres', q{
		SELECT count(*), count(DISTINCT id),
		       count(*) FILTER (WHERE fct_model(e) = 'v2' AND e = fct_upgrade(orig, 'v2'))
		FROM t});
	is($res, "$rows|$rows|$rows", "$what: every row there once and upgraded exactly once");
}

# Poll with a limit of our own (the harness's default is minutes): a job that is never resumed
# must fail the test, not stall the suite.
sub wait_for
{
	my ($query, $secs) = @_;
	my $end = time() + $secs;
	while (time() < $end)
	{
		my ($ret, $out) = (1, '');
		$ret = $node->psql('postgres', $query, stdout => \$out);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

# Start a job, wait until it has made some progress, kill the backend that $victim returns with
# SIGKILL, and wait for the postmaster to reinitialise and accept connections again.
sub crash_restart
{
	my ($what, $victim) = @_;
	$node->safe_psql('postgres', 'UPDATE t SET e = orig');
	my $job = $node->safe_psql('postgres',
		"SELECT fct_migrate_start('t', 'e', 'v2', batch_size => 50, pause_ms => 20)");
	ok(wait_for("SELECT ($migrated) >= 200", 120), "$what: the job makes progress")
	  or die "$what: no progress";
	my $old_pid = $node->safe_psql('postgres', "SELECT worker_pid FROM fct_migrations WHERE id = $job");
	my $pid = $victim->($old_pid);
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid or die "kill $pid: $!";
	ok(wait_for("SELECT pg_postmaster_start_time() IS NOT NULL", 60), "$what: the server is back");
	ok($node->log_contains(qr/terminating any other active server processes|all server processes terminated; reinitializing/, $log_offset),
		"$what: the postmaster went through a crash-restart cycle");
	return ($job, $old_pid);
}

# 1. The job's own worker is killed.
my ($job, $old_pid) = crash_restart('worker killed', sub { return $_[0]; });
ok(wait_for("SELECT state = 'done' FROM fct_migrations WHERE id = $job", 120),
	'worker killed: the launcher resumed the job and it finished')
  or diag($node->safe_psql('postgres', "SELECT state, worker_pid, rows_done, rows_left, last_error FROM fct_migrations WHERE id = $job"));
check_rows('worker killed');
isnt($node->safe_psql('postgres', "SELECT worker_pid FROM fct_migrations WHERE id = $job"),
	$old_pid, 'worker killed: the view names the new worker, not the dead one');
is($node->safe_psql('postgres', "SELECT rows_done, rows_left FROM fct_migrations WHERE id = $job"),
	"$rows|0", 'worker killed: rows_done counts every row once across the crash');

# 2. An unrelated backend is killed (an idle session): the job's worker dies with the others.
my ($in, $out, $err) = ('', '', '');
my $idle = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-d', $node->connstr('postgres'), '-f', '-' ],
	'<', \$in, '>', \$out, '2>', \$err);
$in .= "SELECT pg_backend_pid();\n";
$idle->pump until $out =~ /^(\d+)$/m;
my $idle_pid = $1;
($job, $old_pid) = crash_restart('other backend killed', sub { return $idle_pid; });
$idle->kill_kill;
ok(wait_for("SELECT state = 'done' FROM fct_migrations WHERE id = $job", 120),
	'other backend killed: the launcher resumed the job and it finished')
  or diag($node->safe_psql('postgres', "SELECT state, worker_pid, rows_done, rows_left, last_error FROM fct_migrations WHERE id = $job"));
check_rows('other backend killed');

# 3. Without shared_preload_libraries nothing resumes the job at startup: fct_migrate_start on
# the same column and target takes the orphan over (it does not refuse it); another target is
# refused with a hint that says how to resume or cancel it.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
($job, $old_pid) = crash_restart('without the launcher', sub { return $_[0]; });
usleep(500_000);
is($node->safe_psql('postgres', "SELECT state FROM fct_migrations WHERE id = $job"), 'running',
	'without the launcher: the job is still marked running');
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"SELECT fct_migrate_start('t', 'e', 'v3')", on_error_stop => 1);
like($stderr, qr/ERROR:  a migration of public\.t\.e is already queued or running.*HINT:  .*fct_migrate_resume\(\).*fct_migrate_cancel\($job\)/s,
	'without the launcher: another target is refused, the hint says how to resume or cancel the orphan');
($ret, $stdout, $stderr) = $node->psql('postgres',
	"SELECT fct_migrate_start('t', 'e', 'v2', batch_size => 500, pause_ms => 0)", on_error_stop => 1);
is($stdout, $job, 'without the launcher: fct_migrate_start on the same target returns the orphaned job');
like($stderr, qr/NOTICE:  .*migration $job of public\.t\.e had no worker/, 'and says it resumed it');
ok(wait_for("SELECT state = 'done' FROM fct_migrations WHERE id = $job", 120),
	'without the launcher: the job taken over finished');
check_rows('without the launcher');

$node->stop;
done_testing();
