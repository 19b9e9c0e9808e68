# Upgrades and lsh hashing are deterministic: every path that computes an upgraded value or an lsh
# list gives the same bits.
#
#   - fct_upgrade (one row) = fct_upgrade_batch (shuffled batches of 1 to 1000 rows, any position)
#     = CALL fct_migrate = the queue's background worker = the operators' on-the-fly upgrade
#     = the same with fct.kernel_variant = 'scalar' (plain loops, no vectorisation), compared
#     byte for byte (embedding_send) or as exact float8;
#   - a UNIQUE index on fct_upgrade(e, 'dv2') built before a migration finds every migrated row by
#     equality, and refuses an old value whose upgrade equals a migrated one;
#   - fct_lsh_verify finds no entry outside the list its vector hashes to, after single inserts and
#     after a batched insert (the pending-insert batch), on points that sit on the boundary between
#     two lists, where any difference in rounding between the paths moves a point.
#
# The transformation has real-valued weights and odd widths (tails past a multiple of 8): with
# integer data every summation order would give exact results and nothing could differ.
# Seen failing before the fix (sgemv for one row, sgemm for a batch): every comparison below.
use strict;
use warnings;
use List::Util qw(shuffle);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('determinism', conf => "max_worker_processes = 16\n");
my $rows = 3000;

# ---- an ml-fct-shaped transformation with odd widths, random real weights (seeded)
srand(20261203);
sub mat
{
	my ($out, $in, $scale) = @_;
	return '[' . join(',', map { '[' . join(',', map { sprintf('%.7g', (rand() - 0.5) * $scale) } 1 .. $in) . ']' } 1 .. $out) . ']';
}
sub rvec
{
	my ($n, $scale) = @_;
	return '[' . join(',', map { sprintf('%.7g', (rand() - 0.5) * $scale) } 1 .. $n) . ']';
}
my $spec = '{"old": [{"weight": ' . mat(152, 100, 0.3) . ', "bias": ' . rvec(152, 0.2) . ', "activation": "relu"}],'
  . ' "side": [{"weight": ' . mat(19, 13, 0.5) . ', "bias": ' . rvec(19, 0.2) . ', "activation": "relu"}],'
  . ' "mixer": [{"weight": ' . mat(130, 171, 0.3) . ', "bias": ' . rvec(130, 0.2) . ', "activation": "relu"},'
  . ' {"weight": ' . mat(120, 130, 0.3) . ', "bias": ' . rvec(120, 0.2) . '}]}';

$node->safe_psql('postgres', qq{
SELECT fct_register_model('dv1', 100, 13), fct_register_model('dv2', 120, 13);
SELECT fct_register_transformation('dv1', 'dv2', '$spec');
SELECT setseed(0.25);
CREATE TABLE t (id int PRIMARY KEY, e embedding);
INSERT INTO t SELECT g, fct_embedding(
		ARRAY(SELECT (random() * 4 - 2)::real FROM generate_series(1, 100 + 0 * g)),
		ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, 13 + 0 * g)), 'dv1')
	FROM generate_series(1, $rows) g;
-- the reference: one row at a time
CREATE TABLE one AS SELECT id, fct_upgrade(e, 'dv2') AS u FROM t;
});

# ---- fct_upgrade_batch: shuffled rows in batches of varied sizes
my @ids = shuffle(1 .. $rows);
my @sizes = (1, 1000, 2, 3, 17, 250, 999, 7, 64, 333, 5, 128);
my @values;
my ($batch, $at) = (0, 0);
while (@ids)
{
	my $size = $sizes[$batch % @sizes];
	my @chunk = splice(@ids, 0, $size);
	my $pos = 0;
	push @values, map { '(' . $_ . ',' . $batch . ',' . $pos++ . ')' } @chunk;
	$batch++;
}
$node->safe_psql('postgres', 'CREATE TABLE batches (id int, batch int, pos int); INSERT INTO batches VALUES '
	  . join(',', @values) . ';');
$node->safe_psql('postgres', q{
CREATE TABLE batched AS
	SELECT s.ids[k] AS id, s.res[k] AS u
	FROM (SELECT b.batch, array_agg(t.id ORDER BY b.pos) AS ids,
				 fct_upgrade_batch(array_agg(t.e ORDER BY b.pos), 'dv2') AS res
		  FROM t JOIN batches b USING (id) GROUP BY b.batch) s,
		 generate_subscripts(s.ids, 1) k;
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM one JOIN batched b USING (id) WHERE embedding_send(one.u) = embedding_send(b.u)}),
	$rows, "fct_upgrade_batch (batches of 1 to 1000, shuffled) = fct_upgrade, byte for byte, all $rows rows");

# a row's result does not depend on its batch: the whole table as one batch, in reverse order
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM one JOIN (
		SELECT s.ids[k] AS id, s.res[k] AS u
		FROM (SELECT array_agg(id ORDER BY id DESC) AS ids,
					 fct_upgrade_batch(array_agg(e ORDER BY id DESC), 'dv2') AS res FROM t) s,
			 generate_subscripts(s.ids, 1) k) b USING (id)
	WHERE embedding_send(one.u) = embedding_send(b.u)}),
	$rows, 'fct_upgrade_batch over the whole table in reverse order = fct_upgrade');

# ---- the plain-loop reference (vectorisation off) gives the same bits
is($node->safe_psql('postgres', q{
	SET fct.kernel_variant = 'scalar';
	SELECT count(*) FROM one JOIN t USING (id)
	WHERE embedding_send(one.u) = embedding_send(fct_upgrade(t.e, 'dv2'))}),
	$rows, "fct.kernel_variant = 'scalar': fct_upgrade gives the same bits, all $rows rows");
is($node->safe_psql('postgres', q{
	SET fct.kernel_variant = 'scalar';
	SELECT count(*) FROM batched b JOIN (
		SELECT s.ids[k] AS id, s.res[k] AS u
		FROM (SELECT array_agg(id ORDER BY id) AS ids,
					 fct_upgrade_batch(array_agg(e ORDER BY id), 'dv2') AS res FROM t) s,
			 generate_subscripts(s.ids, 1) k) c USING (id)
	WHERE embedding_send(b.u) = embedding_send(c.u)}),
	$rows, "fct.kernel_variant = 'scalar': fct_upgrade_batch gives the same bits");

# the distance kernels: every operator, auto against scalar, exact float8
$node->safe_psql('postgres', q{
CREATE TABLE q AS SELECT fct_upgrade(e, 'dv2') AS q FROM t WHERE id = 1;
CREATE TABLE dist AS SELECT one.id, one.u <-> q.q AS l2, one.u <#> q.q AS ip, one.u <=> q.q AS cos,
	t.e <-> q.q AS l2_fly, t.e <#> q.q AS ip_fly, t.e <=> q.q AS cos_fly
	FROM one JOIN t USING (id), q;
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM dist WHERE l2 = l2_fly AND ip = ip_fly AND cos = cos_fly}),
	$rows, 'the operators\' on-the-fly upgrade = the distance to fct_upgrade\'s value, exactly');
is($node->safe_psql('postgres', q{
	SET fct.kernel_variant = 'scalar';
	SELECT count(*) FROM dist JOIN one USING (id), q
	WHERE dist.l2 = one.u <-> q.q AND dist.ip = one.u <#> q.q AND dist.cos = one.u <=> q.q}),
	$rows, "fct.kernel_variant = 'scalar': the distance kernels give the same float8");

# ---- migration: CALL fct_migrate, and the queue's worker
$node->safe_psql('postgres', q{
CREATE TABLE m (id int PRIMARY KEY, e embedding, orig embedding);
INSERT INTO m SELECT id, e, e FROM t;
CREATE UNIQUE INDEX m_up ON m ((fct_upgrade(e, 'dv2')));
CALL fct_migrate('m', 'e', 'dv2', 300);
CREATE TABLE w (id int PRIMARY KEY, e embedding);
INSERT INTO w SELECT id, e FROM t;
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM m JOIN one USING (id) WHERE embedding_send(m.e) = embedding_send(one.u)}),
	$rows, 'CALL fct_migrate: every migrated value = fct_upgrade of the original, byte for byte');

my $plan = $node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	EXPLAIN (COSTS OFF) SELECT count(*) FROM m a
	WHERE NOT EXISTS (SELECT 1 FROM m b WHERE fct_upgrade(b.e, 'dv2') = fct_upgrade(a.orig, 'dv2'))});
like($plan, qr/Index (Only )?Scan using m_up/, 'the look-up below uses the unique expression index');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*) FROM m a
	WHERE NOT EXISTS (SELECT 1 FROM m b WHERE fct_upgrade(b.e, 'dv2') = fct_upgrade(a.orig, 'dv2'))}),
	0, 'the unique index on fct_upgrade(e, \'dv2\') finds every migrated row by its original\'s upgrade');

my $refused = 0;
for my $id (1, 2, 3, 500, 1234, 2999)
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"INSERT INTO m SELECT 100000 + id, orig, orig FROM m WHERE id = $id");
	$refused++ if $ret != 0 && $err =~ /duplicate key value violates unique constraint "m_up"/;
}
is($refused, 6, 're-inserting an old value whose upgrade equals a migrated row is a duplicate (6 of 6)');

my $job = $node->safe_psql('postgres',
	"SELECT fct_migrate_start('w', 'e', 'dv2', batch_size => 777, pause_ms => 0)");
like(fct_wait_migration($node, $job, 'determinism'), qr/^done:/, 'the queued migration finished');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM w JOIN one USING (id) WHERE embedding_send(w.e) = embedding_send(one.u)}),
	$rows, 'the queue\'s worker: every migrated value = fct_upgrade of the original, byte for byte');

# ---- lsh: points on the boundary between two lists
# Two clusters of identical points A and B = A with its halves swapped, with values in eighths so
# that |A|^2 = |B|^2 exactly: k-means with two lists puts the centres exactly on A and B.  A point
# whose two halves are equal is then exactly as near to A as to B, and only the rounding of
# <x, A> and <x, B> decides its list: any path that rounds differently puts it elsewhere.
my @a = map { (int(rand(17)) - 8) / 8 } 1 .. 32;
my @b = (@a[16 .. 31], @a[0 .. 15]);
my $a_lit = '[' . join(',', @a) . ']';
my $b_lit = '[' . join(',', @b) . ']';
$node->safe_psql('postgres', qq{
CREATE TABLE l (id int PRIMARY KEY, e embedding);
INSERT INTO l SELECT g, CASE WHEN g % 2 = 0 THEN '$a_lit' ELSE '$b_lit' END::embedding
	FROM generate_series(1, 1000) g;
CREATE INDEX l_idx ON l USING lsh (e embedding_l2_ops) WITH (lists = 2, norm_ranges = 1);
CREATE FUNCTION boundary_point(seed int) RETURNS embedding LANGUAGE sql AS \$\$
	SELECT ('[' || string_agg(v::text, ',') || ',' || string_agg(v::text, ',') || ']')::embedding
	FROM (SELECT (sin(seed * 12.9898 + d * 78.233) * 3)::real AS v FROM generate_series(1, 16) d) s
\$\$;
});
# single inserts: one row per transaction, hashed alone
$node->safe_psql('postgres', join("\n",
	map { "INSERT INTO l VALUES (" . (10000 + $_) . ", boundary_point($_));" } 1 .. 300));
# the pending-insert batch: many rows in one transaction, hashed together
$node->safe_psql('postgres', 'INSERT INTO l SELECT 20000 + g, boundary_point(1000 + g) FROM generate_series(1, 2000) g');
my $lists = $node->safe_psql('postgres', 'SELECT min_list > 500 FROM fct_lsh_stats(\'l_idx\')');
is($lists, 't', 'the boundary points are spread over both lists (the test can see a misplaced point)');
is($node->safe_psql('postgres', "SELECT entries, missing, dangling, misplaced FROM fct_lsh_verify('l_idx')"),
	'3300|0|0|0', 'fct_lsh_verify: no entry misplaced after single and batched inserts');
is($node->safe_psql('postgres', "SET fct.kernel_variant = 'scalar'; SELECT misplaced FROM fct_lsh_verify('l_idx')"),
	'0', "fct_lsh_verify with fct.kernel_variant = 'scalar': none misplaced either");

# a rebuilt index (the build hashes in batches) agrees with verify's one-at-a-time hash
$node->safe_psql('postgres', 'REINDEX INDEX l_idx');
is($node->safe_psql('postgres', "SELECT misplaced FROM fct_lsh_verify('l_idx')"), '0',
	'fct_lsh_verify after REINDEX: none misplaced');

# the scan hashes the query like an insert: with one probe, every boundary point finds itself
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET fct.lsh_probes = 1;
	BEGIN;
	SELECT count(*) FROM (SELECT id, e FROM l WHERE id BETWEEN 20001 AND 20200) p
	WHERE (SELECT min(l.e <-> p.e) FROM (SELECT e FROM l ORDER BY e <-> p.e LIMIT 1) l) = 0;
	SELECT pg_stat_get_xact_numscans('l_idx'::regclass) >= 200;  -- through the index (an exact plan finds 0 too)
	COMMIT}),
	"200\nt", 'an lsh scan with one probe finds each boundary point at distance 0 (the query hashes to its list)');

$node->stop;
done_testing();
