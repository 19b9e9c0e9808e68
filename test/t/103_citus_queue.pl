# The migration queue on a Citus distributed table, from the coordinator: fct_migrate_start
# queues one job, run by one background worker on the coordinator whatever the number of shards
# (32 shards here, 16 per node, where one worker per shard would exhaust max_worker_processes =
# 16), visible in fct_migrations as one job whose progress grows placement by placement; a
# restart of the coordinator or of a worker in the middle loses nothing and the job resumes.
# Issue #12 item 2 (the queue).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use citus_cluster;
use fct_fixtures;

citus_skip_unless_available();

my $c = citus_cluster(workers => 2);
my $co = $c->{coordinator};
my @w = @{ $c->{workers} };
my $n = 16000;

$co->safe_psql('postgres', fct_models_sql([ 'm1', 8, 2 ]) . fct_side_mix_sql('m1', 'm2', 8) . q{
CREATE TABLE items (id int PRIMARY KEY, e embedding);
SELECT create_distributed_table('items', 'id', shard_count => 32);
CREATE TABLE expected (id int PRIMARY KEY, e embedding);
});

sub load
{
	$co->safe_psql('postgres', qq{
TRUNCATE items, expected;
INSERT INTO items @{[ fct_side_mix_rows_sql('m1', 1, $n) ]};
INSERT INTO expected SELECT id, fct_upgrade(e, 'm2') FROM items;
});
	return;
}
my $check = "SELECT count(*) FILTER (WHERE fct_model(i.e) = 'm2') || ':' || count(*) FILTER (WHERE i.e = x.e)"
  . " || ':' || count(*) FROM items i JOIN expected x USING (id)";

# poll the job until it is no longer queued or running; returns its last row and what was seen
sub follow
{
	my ($id) = @_;
	my (%seen, $row, $max_workers);
	$max_workers = 0;
	for (1 .. 1200)
	{
		$row = $co->safe_psql('postgres',
			"SELECT state || '|' || rows_done || '|' || coalesce(rows_left::text, '') || '|' || coalesce(last_error, '')"
			  . " FROM fct_migrations WHERE id = $id");
		$seen{ (split /\|/, $row)[1] } = 1 if $row =~ /^running/;
		my $busy = $co->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'fct migrate job%'");
		$max_workers = $busy if $busy > $max_workers;
		last unless $row =~ /^(queued|running)/;
		usleep(200_000);
	}
	return ($row, [ sort { $a <=> $b } keys %seen ], $max_workers);
}

load();
my $id = $co->safe_psql('postgres', "SELECT fct_migrate_start('items', 'e', 'm2', batch_size => 200, pause_ms => 300)");
my ($row, $seen, $max_workers) = follow($id);
is($row, "done|$n|0|", 'the job on the distributed table is done, every row counted');
is($co->safe_psql('postgres', "SELECT count(*) FROM fct_migrations"), '1', 'one job for the 32 shards');
ok(scalar(grep { $_ > 0 && $_ < $n } @$seen) >= 2,
	'its progress was seen growing in between (' . join(',', @$seen) . ')');
is($max_workers, '1', 'one background worker on the coordinator ran it');
is($co->safe_psql('postgres', $check), "$n:$n:$n", 'every row upgraded, the same bits as fct_upgrade');
for my $i (0, 1)
{
	is($w[$i]->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'fct migrate job%'"), '0',
		"no migration worker on worker" . ($i + 1));
}

# The coordinator crashes in the middle: the job's row survives, the resumer (fct is in
# shared_preload_libraries) starts its worker again, and it finishes with nothing lost.
load();
$id = $co->safe_psql('postgres', "SELECT fct_migrate_start('items', 'e', 'm2', batch_size => 200, pause_ms => 300)");
$co->poll_query_until('postgres', "SELECT rows_done > 0 FROM fct_migrations WHERE id = $id")
  or die 'the job made no progress';
my $before = $co->safe_psql('postgres', "SELECT rows_done FROM fct_migrations WHERE id = $id");
ok($before > 0 && $before < $n, "$before rows done when the coordinator crashed");
$co->stop('immediate');
$co->start;
($row) = follow($id);
like($row, qr/^done\|/, 'after the coordinator restarted, the job was resumed and is done');
is($co->safe_psql('postgres', $check), "$n:$n:$n", 'nothing lost: every row upgraded once, the same bits');

# A worker crashes in the middle: the placements on it fail, the job retries them once the node
# is back, and finishes.
load();
$id = $co->safe_psql('postgres', "SELECT fct_migrate_start('items', 'e', 'm2', batch_size => 200, pause_ms => 300)");
$co->poll_query_until('postgres', "SELECT rows_done > 0 FROM fct_migrations WHERE id = $id")
  or die 'the job made no progress';
$w[0]->stop('immediate');
$w[0]->start;
($row) = follow($id);
like($row, qr/^done\|/, 'after worker1 restarted, the job is done');
is($co->safe_psql('postgres', $check), "$n:$n:$n", 'nothing lost: every row upgraded once, the same bits');

# Cancelled between two rounds: it stops, and a new job resumes where it stopped.
load();
$id = $co->safe_psql('postgres', "SELECT fct_migrate_start('items', 'e', 'm2', batch_size => 200, pause_ms => 300)");
$co->poll_query_until('postgres', "SELECT rows_done > 0 FROM fct_migrations WHERE id = $id")
  or die 'the job made no progress';
# its progress on the coordinator, by placements (fct_progress)
is($co->safe_psql('postgres', qq{
	SELECT p.command, p.target, p.done = m.rows_done, p.total = m.rows_done + m.rows_left,
	       (p.detail->>'placements_done')::int BETWEEN 1 AND (p.detail->>'placements')::int - 1,
	       (p.detail->>'nodes')::int
	  FROM fct_progress p JOIN fct_migrations m ON m.id = (p.detail->>'job')::bigint WHERE m.id = $id}),
	'fct_migrate|public.items.e -> m2|t|t|t|2', "the job's progress on the coordinator: rows as fct_migrations has them, placements done of all");
$co->safe_psql('postgres', "SELECT fct_migrate_cancel($id)");
($row) = follow($id);
like($row, qr/^cancelled\|/, 'a cancelled job stops');
ok($co->poll_query_until('postgres', 'SELECT count(*) = 0 FROM fct_progress'), 'no progress left once it stopped');
my $done = $co->safe_psql('postgres', "SELECT count(*) FROM items WHERE fct_model(e) = 'm2'");
ok($done > 0 && $done < $n, "$done rows upgraded when it stopped");
$id = $co->safe_psql('postgres', "SELECT fct_migrate_start('items', 'e', 'm2', batch_size => 2000, pause_ms => 0)");
($row) = follow($id);
like($row, qr/^done\|/, 'a new job finishes the migration');
is($co->safe_psql('postgres', $check), "$n:$n:$n", 'every row upgraded once, the same bits');

citus_stop($c);
done_testing();
