# The progress of a migration is visible from another session in the view fct_progress
# (src/progress/: the running backend's pg_stat_activity entry): a CALL fct_migrate and a queued
# job's background worker show the table, column, target model, rows done and left, batches and
# rate while they run, and nothing once they end, are cancelled or their job is cancelled.
#
# To look at a run mid-way without racing it, a trigger holds the write of one row (id 12000) on
# advisory lock 42 while the test holds that lock: the run has committed the batches before that
# row, and waits inside the next one until the test lets it go.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $rows = 20000;
my $node = fct_node('migrate_progress', conf => "max_worker_processes = 16\n");
$node->safe_psql('postgres', fct_integer_upgrade_sql() . q{
CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = 12000 THEN
		PERFORM pg_advisory_xact_lock_shared(42);
	END IF;
	RETURN NEW;
END $$;
CREATE ROLE stranger LOGIN;
});
for my $t (qw(t_call t_cancel t_job))
{
	$node->safe_psql('postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, e embedding);
INSERT INTO $t SELECT g, fct_embedding(ARRAY[g, g % 13, g % 7, 1]::real[], ARRAY[g % 3, 2]::real[], 'v1')
	FROM generate_series(1, $rows) g;
CREATE TRIGGER gate BEFORE UPDATE ON $t FOR EACH ROW EXECUTE FUNCTION gate();
});
}

# the gate: held by a session of its own until released
my $gate = $node->background_psql('postgres');
sub close_gate { $gate->query_safe('SELECT pg_advisory_lock(42)'); }
sub open_gate { $gate->query_safe('SELECT pg_advisory_unlock(42)'); }

# the migration of table $t is seen waiting at the gate, with its progress
sub wait_at_gate
{
	my ($t, $what) = @_;
	ok( $node->poll_query_until('postgres', qq{
			SELECT count(*) = 1 FROM fct_progress p JOIN pg_stat_activity a USING (pid)
			 WHERE p.detail->>'table' = 'public.$t' AND a.wait_event = 'advisory'}),
		"$what: seen at the gate from another session");
}

sub progress_of
{
	my ($t) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT command, target, phase, total, done BETWEEN 1 AND 11999,
		       done + (detail->>'rows_left')::bigint = total,
		       detail->>'column', detail->>'to_model', (detail->>'batches')::int >= 1,
		       (detail->>'pass')::int, (detail->>'batch_size')::int, (detail->>'rate')::float8 > 0,
		       started <= updated AND updated <= now()
		  FROM fct_progress WHERE detail->>'table' = 'public.$t'});
}

sub no_progress_left
{
	my ($what) = @_;
	ok( $node->poll_query_until('postgres', q{
			SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE '/* fct_progress %'}),
		"$what: no progress left in pg_stat_activity");
}

# 1. CALL fct_migrate, watched from another session, then let go to its end.
close_gate();
my $mig = $node->background_psql('postgres', on_error_stop => 0);
$mig->query_until(qr/started/, q{
\echo started
CALL fct_migrate('t_call', 'e', 'v2', 500);
\echo finished
});
wait_at_gate('t_call', 'CALL');
is(progress_of('t_call'), "fct_migrate|public.t_call.e -> v2|upgrading|$rows|t|t|e|v2|t|1|500|t|t",
	'CALL: target, rows done of total, rows left, column, model, batches, pass, batch size, rate, times');
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM fct_progress WHERE detail->>'table' = 'public.t_call'});
like($node->safe_psql('postgres', "SELECT query FROM pg_stat_activity WHERE pid = $pid"),
	qr{\*/ .*CALL fct_migrate\('t_call'}s, 'pg_stat_activity still shows the CALL after the progress comment');
is($node->safe_psql('postgres', q{SELECT detail ? 'job' FROM fct_progress WHERE detail->>'table' = 'public.t_call'}),
	'f', 'CALL: no job id');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fct_progress}, extra_params => [ '-U', 'stranger' ]),
	'0', 'a role without the rights to see the session sees no progress');

# the count advances once the gate opens, and nothing is left when the CALL is over
open_gate();
ok( $node->poll_query_until('postgres', qq{SELECT count(*) = 0 FROM t_call WHERE fct_model(e) <> 'v2'}),
	'CALL: every row migrated');
$mig->query_until(qr/finished/, '');
no_progress_left('CALL');

# 2. A CALL cancelled mid-way leaves nothing behind.
close_gate();
$mig->query_until(qr/started/, q{
\echo started
CALL fct_migrate('t_cancel', 'e', 'v2', 500);
});
wait_at_gate('t_cancel', 'CALL to be cancelled');
$node->safe_psql('postgres', q{
	SELECT pg_cancel_backend(pid) FROM fct_progress WHERE detail->>'table' = 'public.t_cancel'});
no_progress_left('cancelled CALL');
ok($node->safe_psql('postgres', q{SELECT count(*) FROM t_cancel WHERE fct_model(e) = 'v2'}) > 0,
	'cancelled CALL: its committed batches stay');
# the session carries on, and its next statements show no stale progress
$mig->query('SELECT 1');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fct_progress}), '0', 'cancelled CALL: the session shows none');
open_gate();
$mig->quit;

# 3. A queued job's background worker, between and in its batches, then its job cancelled.
close_gate();
my $job = $node->safe_psql('postgres', q{SELECT fct_migrate_start('t_job', 'e', 'v2', 500, 0)});
wait_at_gate('t_job', 'worker');
is(progress_of('t_job'), "fct_migrate|public.t_job.e -> v2|upgrading|$rows|t|t|e|v2|t|1|500|t|t",
	'worker: the same progress as a CALL');
is($node->safe_psql('postgres', qq{
		SELECT (p.detail->>'job')::bigint = m.id, p.pid = m.worker_pid, p.done = m.rows_done,
		       (p.detail->>'rows_left')::bigint = m.rows_left, p.started >= m.started_at - interval '1 s'
		  FROM fct_progress p JOIN fct_migrations m ON m.id = $job
		 WHERE p.detail->>'table' = 'public.t_job'}),
	't|t|t|t|t', "worker: the job's id, worker, rows done and left as fct_migrations has them, the run's start");
$node->safe_psql('postgres', "SELECT fct_migrate_cancel($job)");
open_gate();
ok( $node->poll_query_until('postgres', qq{
		SELECT state = 'cancelled' AND NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = worker_pid)
		  FROM fct_migrations WHERE id = $job}),
	'worker: gone after the cancel');
no_progress_left('cancelled job');

# 4. A job resumed with pauses between batches shows its progress during the pauses too, and
# none once done.
$node->safe_psql('postgres', 'DROP TRIGGER gate ON t_job');
$job = $node->safe_psql('postgres', q{SELECT fct_migrate_start('t_job', 'e', 'v2', 200, 300)});
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM fct_progress p JOIN pg_stat_activity a USING (pid)
		 WHERE (p.detail->>'job')::bigint = $job AND a.wait_event_type = 'Extension' AND p.done > 0}),
	'worker: visible while it pauses between batches');
$node->safe_psql('postgres', "SELECT fct_migrate_cancel($job)");
ok( $node->poll_query_until('postgres', qq{
		SELECT NOT EXISTS (SELECT FROM pg_stat_activity a JOIN fct_migrations m ON a.pid = m.worker_pid
		                    WHERE m.id = $job)}),
	'paused worker: gone after the cancel');
no_progress_left('paused job');
$job = $node->safe_psql('postgres', q{SELECT fct_migrate_start('t_job', 'e', 'v2', 5000, 0)});
ok( $node->poll_query_until('postgres', qq{SELECT state = 'done' FROM fct_migrations WHERE id = $job}),
	'the job resumed to its end');
no_progress_left('finished job');

$gate->quit;
$node->stop;
done_testing();
