# The parallel lsh build (src/lsh/lshparallel.c): workers hash the second pass's rows and the
# leader writes every page.  The same table built serially and with workers gives every row the
# same list (compared TID by TID through _fct_lsh_entries), the same list sizes and the same
# recall@10, and so does a build after a scan that stopped mid-table (the first pass does not
# synchronize with other scans); fct_lsh_verify is clean after it, on the primary and on a
# streaming standby (the leader WAL-logs the pages as a serial build does).  A worker's error fails the CREATE INDEX with
# the worker's message; a cancel of the leader while workers run ends them too.  The negative
# control: the comparison sees the rows move when the second build has another shape (1,023 lists
# instead of 1,024), so it can fail.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use fct_fixtures;
use lsh_common;

my $node = fct_node('lsh_parallel', streaming => 1,
	conf => "max_parallel_maintenance_workers = 2\nmaintenance_work_mem = '128MB'\nshared_buffers = '16MB'");
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('lsh_parallel_standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;

$node->safe_psql('postgres', lsh_mixture_sql('items', 30000, 32, 300, 0.5));
# the table's own setting: the planner would give so small a table no worker
$node->safe_psql('postgres', 'ALTER TABLE items SET (parallel_workers = 2); ANALYZE items');

# Build INDEX $name with OPTIONS, serially ($workers = 0) or with up to $workers workers; the
# workers the build says it used.
sub build
{
	my ($name, $using, $workers) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET max_parallel_maintenance_workers = $workers; SET client_min_messages = debug1;
		 CREATE INDEX $name ON items USING lsh $using");
	is($ret, 0, "$name builds") or diag($err);
	return $err =~ /"$name" hashes its rows with (\d+) parallel workers/ ? $1 : 0;
}

# Rows of $a and $b in different lists, rows in one only, and whether the list sizes agree.
sub compare
{
	my ($a, $b) = @_;
	return $node->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE a.list <> b.list) || ' '
	|| count(*) FILTER (WHERE a.list IS NULL OR b.list IS NULL) || ' '
	|| ((SELECT array_agg(n ORDER BY list) FROM (SELECT list, count(*) n FROM _fct_lsh_entries('$a') GROUP BY 1) x)
		= (SELECT array_agg(n ORDER BY list) FROM (SELECT list, count(*) n FROM _fct_lsh_entries('$b') GROUP BY 1) x))
FROM _fct_lsh_entries('$a') a FULL JOIN _fct_lsh_entries('$b') b USING (heap_tid)});
}

sub verify_clean
{
	my ($n, $index, $what) = @_;
	is($n->safe_psql('postgres', "SELECT entries || ' ' || missing || ' ' || dangling || ' ' || misplaced FROM fct_lsh_verify('$index')"),
		'30000 0 0 0', "fct_lsh_verify on $index $what: every row, nothing missing, dangling or misplaced");
}

# inner product with 1,024 lists (two-level assignment), the default shape (flat), L2 and cosine
for my $case (
	[ 'ip2', '(e) WITH (lists = 1024)' ],
	[ 'ipd', '(e)' ],
	[ 'l2', '(e embedding_l2_ops) WITH (lists = 1024)' ],
	[ 'cos', '(e embedding_cosine_ops)' ])
{
	my ($tag, $using) = @$case;
	is(build("items_${tag}_s", $using, 0), 0, "$tag: the serial build uses no worker");
	is(build("items_${tag}_p", $using, 2), 2, "$tag: the parallel build hashes with 2 workers");
	is(compare("items_${tag}_s", "items_${tag}_p"), '0 0 true',
		"$tag: every row in the same list in both builds, the same list sizes");
	verify_clean($node, "items_${tag}_p", "($tag, parallel)");
	$node->safe_psql('postgres', "DROP INDEX items_${tag}_s") unless $tag eq 'ip2';
	$node->safe_psql('postgres', "DROP INDEX items_${tag}_p") unless $tag eq 'ip2';
}

# The first pass reads the table from its first block whatever other scans did: its reservoir
# sample depends on the order of the rows.  A sequential scan that stopped in the middle of a table
# above shared_buffers / 4 leaves a synchronized-scan hint there, where the next scan would start; a
# build after one must still give the same lists (with the first pass allowed to synchronize, a
# 1,000,000-row build after a cancelled scan had 999,899 rows in other lists than the same code's
# build of the same table before it).
my $pages = $node->safe_psql('postgres', "SELECT pg_relation_size('items') / 8192");
cmp_ok($pages, '>', 512, "items ($pages pages) is above shared_buffers / 4 pages, where scans synchronize");
$node->safe_psql('postgres', q{
SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) FROM (SELECT id FROM items LIMIT 20000) s});
build('items_after_scan', '(e) WITH (lists = 1024)', 0);
is(compare('items_ip2_s', 'items_after_scan'), '0 0 true',
	'a build after a scan that stopped mid-table: every row in the same list');
$node->safe_psql('postgres', 'DROP INDEX items_after_scan');

# the negative control: another shape moves rows, and the comparison sees it
build('items_1023', '(e) WITH (lists = 1023)', 2);
my ($moved) = split / /, compare('items_ip2_s', 'items_1023');
cmp_ok($moved, '>', 1000, "the comparison sees rows in other lists when the shape differs ($moved rows)");
$node->safe_psql('postgres', 'DROP INDEX items_1023');

# the standby replays the leader's pages
$node->wait_for_catchup($standby);
verify_clean($standby, 'items_ip2_p', 'on the standby');
is($standby->safe_psql('postgres', "SELECT count(*) FROM _fct_lsh_entries('items_ip2_p')"),
	'30000', 'the standby reads every entry of the parallel build');

# recall@10: each build alone on the table (the planner takes whichever lsh index there is)
$node->safe_psql('postgres', 'DROP INDEX items_ip2_p');
my $recall_s = lsh_recall($node, 'items', 60);
$node->safe_psql('postgres', 'DROP INDEX items_ip2_s');
build('items_ip2_p', '(e) WITH (lists = 1024)', 2);
my $recall_p = lsh_recall($node, 'items', 60);
cmp_ok($recall_s, '>=', 0.95, "recall@10 of the serial build ($recall_s)");
is($recall_p, $recall_s, "recall@10 of the parallel build is the serial build's ($recall_p)");
my $recall_low = lsh_recall($node, 'items', 60, 'SET fct.lsh_max_candidates = 30');
cmp_ok($recall_low, '<', 0.9, "the measure can fail: one list's worth of candidates ($recall_low)");

# A worker's error fails the build with the worker's message.  The expression raises in a
# parallel worker only (its backend is not the session's), so the serial first pass gets through;
# the leader lingers on the table's first block (2 s), so that a worker gets rows before the
# leader has hashed them all (on a 32-dimension table it did once, and no worker raised).
$node->safe_psql('postgres', q{
CREATE FUNCTION worker_only(id int, e embedding, slow boolean) RETURNS embedding
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
	IF pg_backend_pid() <> current_setting('test051.leader')::int THEN
		IF slow THEN
			PERFORM pg_sleep(0.05);
		ELSE
			RAISE EXCEPTION 'worker_only: raised in a parallel worker' USING ERRCODE = 'P0001';
		END IF;
	ELSIF id <= 20 THEN
		PERFORM pg_sleep(0.1);
	END IF;
	RETURN e;
END $$;
});
my ($ret, $out, $err) = $node->psql('postgres', q{
SET test051.leader = 0; SELECT set_config('test051.leader', pg_backend_pid()::text, false);
SET max_parallel_maintenance_workers = 1;
CREATE INDEX items_err ON items USING lsh (worker_only(id, e, false))});
isnt($ret, 0, 'a worker error fails CREATE INDEX');
like($err, qr/worker_only: raised in a parallel worker/, "the worker's message reaches the client");
like($err, qr/parallel worker/, 'and says it came from a parallel worker');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'items_err'"), '0',
	'no index is left behind');

# A cancel of the leader while a (slow) worker runs: the build fails with 57014 and no worker is left.
my ($stdout, $stderr) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-v', 'VERBOSITY=verbose', '-c', q{
SET test051.leader = 0; SELECT set_config('test051.leader', pg_backend_pid()::text, false);
SET max_parallel_maintenance_workers = 1;
SET application_name = 'test051_build';
CREATE INDEX items_cancel ON items USING lsh (worker_only(id, e, true))}, '-d', $node->connstr('postgres') ],
	'>', \$stdout, '2>', \$stderr);
$node->poll_query_until('postgres', q{
SELECT count(*) > 0 FROM pg_stat_activity w JOIN pg_stat_activity l ON l.pid = w.leader_pid
WHERE w.backend_type = 'parallel worker' AND l.application_name = 'test051_build'})
  or die "no parallel worker started: $stderr";
$node->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'test051_build'");
$h->finish;
like($stderr, qr/57014.*canceling statement due to user request/s, 'the cancelled build fails with 57014');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'parallel worker'"),
	'no parallel worker is left after the cancel');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'items_cancel'"), '0',
	'no index is left behind');

$standby->stop;
$node->stop;
done_testing();
