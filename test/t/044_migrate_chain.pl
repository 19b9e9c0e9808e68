# A chain of upgrades, v1 -> v2 -> v3 -> v4, following the README's recommended sequence each time
# (register the model and its transformation, CREATE INDEX CONCURRENTLY on fct_upgrade(e, 'new'), drop
# the previous model's index, migrate), while writers keep updating and inserting rows in the oldest
# model.  Each migration first refuses while the previous model's index is still there (an lsh index
# on e holds one model; an index on fct_upgrade(e, 'v2') cannot hold a v3 row), naming it in a hint
# with the statements to run, before writing anything and without queuing a job.  The migrations
# alternate between CALL fct_migrate and the queue's background worker.  After each step every row
# holds the upgrade of its last write, in the new model, and the plain new-model query uses the new
# index.  Integer data and weights, so that every path gives the same floats exactly.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $rows = 5000;
my $node = fct_node('migrate_chain', conf => "max_worker_processes = 16\nmax_connections = 40\n");

# c1, c2: 4 dimensions; c3, c4: 6 (a typmod-free column changes dimension on the way); side 2 each.
my %dim = (c1 => 4, c2 => 4, c3 => 6, c4 => 6);
# An integer weight matrix out x (in + 2): a cyclic shift of the vector, plus the side-information.
sub shift_weights
{
	my ($in, $out) = @_;
	my @w;
	for my $i (0 .. $out - 1)
	{
		my @row = (0) x ($in + 2);
		$row[ ($i + 1) % $in ] = 1;
		$row[ $in + ($i % 2) ] = 1 if $i >= $in - 2;
		push @w, '[' . join(',', @row) . ']';
	}
	return '{"mixer": [{"weight": [' . join(', ', @w) . ']}]}';
}

$node->safe_psql('postgres', qq{
SELECT fct_register_model('c1', $dim{c1}, 2);
CREATE TABLE t (id int PRIMARY KEY, e embedding, orig embedding, version int NOT NULL DEFAULT 0);
INSERT INTO t (id, e) SELECT g, fct_embedding(ARRAY[g % 97, g % 13, g % 7, 1]::real[], ARRAY[g % 3, 2]::real[], 'c1')
	FROM generate_series(1, $rows) g;
UPDATE t SET orig = e;
} . fct_inserts_sql() . q{
-- the index of the first model's space
CREATE INDEX t_c1 ON t USING lsh (e embedding_cosine_ops);
});

# Writers on the oldest model all along: orig holds each row's last written (c1) value.
my %scripts = (
	'update_old' => q{
\set id random(1, 5000)
UPDATE t SET version = version + 1,
	orig = fct_embedding(ARRAY[:id % 89, version + 1, 5, 1]::real[], ARRAY[1, version % 5]::real[], 'c1'),
	e = fct_embedding(ARRAY[:id % 89, version + 1, 5, 1]::real[], ARRAY[1, version % 5]::real[], 'c1')
	WHERE id = :id;
},
	'insert' => fct_insert_script('c1'));
my $start_writers = fct_pgbench_writers($node, \%scripts, 3);

my @models = qw(c1 c2 c3 c4);
for my $k (1 .. 3)
{
	my ($from, $to) = ($models[ $k - 1 ], $models[$k]);
	my $what = "$from -> $to";

	# 1, 2: the new model and its transformation
	$node->safe_psql('postgres', qq{
		SELECT fct_register_model('$to', $dim{$to}, 2);
		SELECT fct_register_transformation('$from', '$to', '} . shift_weights($dim{$from}, $dim{$to}) . q{');});

	my ($wout, $werr) = ('', '');
	my $writers = $start_writers->(12, \$wout, \$werr);
	sleep 1;

	# 3: the new model's index, built while the writers write
	$node->safe_psql('postgres',
		"CREATE INDEX CONCURRENTLY t_$to ON t USING lsh (fct_upgrade(e, '$to') embedding_cosine_ops)");

	# Skipping step 4: refused before anything is written, naming the previous model's index.
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nCALL fct_migrate('t', 'e', '$to')");
	isnt($rc, 0, "$what: CALL fct_migrate refuses while the previous model's index t_$from is there");
	like($err, qr/ERROR:  55000: (lsh )?index "t_$from" of public\.t /, "$what: the refusal names index t_$from (55000)");
	like($err, qr/HINT:  .*DROP INDEX CONCURRENTLY public\.t_$from;/, "$what: the hint says which index to drop");
	($rc, $out, $err) = $node->psql('postgres', "SELECT fct_migrate_start('t', 'e', '$to')");
	like($err, qr/index "t_$from"/, "$what: fct_migrate_start refuses too");
	is($node->safe_psql('postgres', "SELECT count(*) FROM fct_migrations WHERE target = '$to'"), '0',
		"$what: no job was queued");
	is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE fct_model(e) = '$to'"), '0',
		"$what: no row was written");

	# 4: drop the previous model's index; 5: migrate, with the writers still writing
	$node->safe_psql('postgres', "DROP INDEX CONCURRENTLY t_$from");
	if ($k == 2)
	{
		my $job = $node->safe_psql('postgres',
			"SELECT fct_migrate_start('t', 'e', '$to', batch_size => 500, pause_ms => 5)");
		like(fct_wait_migration($node, $job, $what),
			qr/^(done:|failed:.*concurrent transactions kept writing rows of older models)/,
			"$what: the queued migration finished");
	}
	else
	{
		($rc, $out, $err) = $node->psql('postgres', "CALL fct_migrate('t', 'e', '$to', batch_size => 500)");
		is($rc, 0, "$what: CALL fct_migrate succeeded while the writers wrote") or diag($err);
	}
	$writers->finish;
	is($writers->result(0), 0, "$what: the writers never failed") or diag($werr);
	like($wout, qr/number of failed transactions: 0/, "$what: no writer transaction failed");
	# the writers kept writing c1 rows after the last pass: a last run takes them (a chain c1 -> ... -> $to)
	$node->safe_psql('postgres', "CALL fct_migrate('t', 'e', '$to')");
	fct_check_written_rows($node, $what, $to, $rows);

	# the plain new-model query uses the new index, with the explicit form's answer
	my $q = "'$to:[" . join(', ', map { $_ % 3 } 1 .. $dim{$to}) . "]'";
	like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY e <=> $q LIMIT 10"),
		qr/Index Scan using t_$to/, "$what: the plain $to query uses index t_$to");
	is($node->safe_psql('postgres', "SELECT array_agg(id) FROM (SELECT id FROM t ORDER BY e <=> $q LIMIT 10) s"),
		$node->safe_psql('postgres', "SELECT array_agg(id) FROM (SELECT id FROM t ORDER BY fct_upgrade(e, '$to') <=> $q LIMIT 10) s"),
		"$what: plain and explicit forms give the same rows");
	is($node->safe_psql('postgres', "SELECT missing || ',' || dangling || ',' || misplaced FROM fct_lsh_verify('t_$to')"),
		'0,0,0', "$what: index t_$to is consistent");
}

is($node->safe_psql('postgres', "SELECT fct_upgrade_path('c1', 'c4')"), '{c1,c2,c3,c4}', 'the chain c1 -> c4');
$node->stop;
done_testing();
