# fct_refresh never loses a concurrent writer's change.
#
#  1. A writer commits after fct_refresh read a row and before it writes it: the
#     refresh leaves the writer's embedding (and writes a row whose other columns
#     only changed, keeping them).
#  2. A writer comes after fct_refresh wrote a row, before it commits: the writer
#     waits, then its value is the one that stays.
#  3. Stress: a writer commits single-row updates while a refresh of 100,000 rows
#     runs.  Its values are within the threshold of the source, so a refresh that
#     read them would skip them: a row the writer touched that ends with the
#     source's value would be a lost update.  Every such row must end with the
#     writer's last value.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('refresh');
$node->safe_psql('postgres', q{
CREATE TABLE items (id int PRIMARY KEY, emb embedding, note text);
INSERT INTO items SELECT i, '[1,0]', 'n' FROM generate_series(1, 3000) i;
-- every row moves: drift 1 from [1,0] to [1,1]
CREATE TABLE src AS SELECT i AS id, '[1,1]'::embedding AS emb FROM generate_series(1, 100000) i;
-- the source's row 1 waits until advisory lock 4242 is free: the refresh has
-- opened its cursor (taken its snapshot) and not compared anything yet
CREATE FUNCTION gate(id int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
	IF id = 1 THEN
		PERFORM pg_advisory_lock_shared(4242);
		PERFORM pg_advisory_unlock_shared(4242);
	END IF;
	RETURN true;
END $$;
});

# ---- 1. the writer commits between the refresh's read and its write
my $w = $node->background_psql('postgres');
my $r = $node->background_psql('postgres');
# its NOTICE about the rows left to the writer would read as an error to query_safe
$r->query_safe('SET client_min_messages = warning');
$w->query_safe('BEGIN; SELECT pg_advisory_xact_lock(4242);');
$r->query_until(qr/started/, qq{\\echo started
SELECT * FROM fct_refresh('items', 'emb', 'id', 'SELECT id, emb FROM src WHERE gate(id)', threshold => 0.5, full_every => 0);
});
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
  or die "the refresh did not reach the gate";
$w->query_safe(q{
UPDATE items SET emb = '[5,5]' WHERE id % 3 = 0;
UPDATE items SET note = 'writer' WHERE id % 3 = 1;
COMMIT;
});
my $out = $r->query_until(qr/done/, "\\echo done\n");
like($out, qr/^2000\|1000\|0\|97000\|0\.5$/m,
	'refresh wrote 2000 rows and left the 1000 the writer changed (counted as skipped)');
is($node->safe_psql('postgres', q{
SELECT id % 3, emb, note, count(*) FROM items GROUP BY 1, 2, 3 ORDER BY 1}),
	"0|[5,5]|n|1000\n1|[1,1]|writer|1000\n2|[1,1]|n|1000",
	"the writer's embeddings stay; rows whose other columns it changed get the refresh and keep the writer's columns");

# ---- 2. the writer comes after the refresh's write, before its commit
$node->safe_psql('postgres', q{UPDATE items SET emb = '[1,0]', note = 'n'});
$r->query_safe('BEGIN');
like($r->query_safe(q{SELECT * FROM fct_refresh('items', 'emb', 'id', 'SELECT id, emb FROM src', threshold => 0.5, full_every => 0)}),
	qr/^3000\|0\|0\|97000\|0\.5$/, 'refresh wrote every row (not committed yet)');
$w->query_until(qr/writing/, qq{\\echo writing
UPDATE items SET emb = '[7,7]' WHERE id <= 10;
});
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted")
  or die "the writer did not wait for the refresh";
$r->query_safe('COMMIT');
$w->query_until(qr/written/, "\\echo written\n");
is($node->safe_psql('postgres', q{SELECT emb, count(*) FROM items GROUP BY 1 ORDER BY 1}),
	"[1,1]|2990\n[7,7]|10", "the writer that waited for the refresh wrote last");
$w->quit;
$r->quit;

# ---- 3. stress
$node->safe_psql('postgres', q{
TRUNCATE items;
INSERT INTO items SELECT i, '[1,0]', 'n' FROM generate_series(1, 100000) i;
CREATE TABLE writes (seq bigserial PRIMARY KEY, id int, emb embedding, at timestamptz);
CREATE TABLE stop_writer (stop bool);
-- single-row commits, until told to stop (so that it overlaps the refresh however
-- the machine schedules the two); each value is within drift 0.1 of the source's [1,1]
CREATE PROCEDURE writer(n int) LANGUAGE plpgsql AS $$
DECLARE
	k int;
	v embedding;
BEGIN
	FOR i IN 1..n LOOP
		EXIT WHEN EXISTS (SELECT FROM stop_writer);
		k := 1 + floor(random() * 100000)::int;
		v := fct_embedding(ARRAY[1, 1 + (i % 1000) / 10000.0]::real[]);
		UPDATE items SET emb = v WHERE id = k;
		INSERT INTO writes (id, emb, at) VALUES (k, v, clock_timestamp());
		COMMIT;
	END LOOP;
END $$;
});
my $bg = $node->background_psql('postgres');
$bg->query_until(qr/writer started/, "\\echo writer started\nCALL writer(1000000);\n\\echo writer finished\n");
$node->poll_query_until('postgres', 'SELECT count(*) >= 20 FROM writes')
  or die "the writer did not start";
my $res = $node->safe_psql('postgres',
	q{SELECT updated + skipped FROM fct_refresh('items', 'emb', 'id', 'SELECT id, emb FROM src', threshold => 0.5, full_every => 0)});
is($res, '100000', 'the refresh compared every row');
$node->safe_psql('postgres', 'INSERT INTO stop_writer VALUES (true)');
$bg->query_until(qr/writer finished/, '');
$bg->quit;

my $during = $node->safe_psql('postgres', q{
SELECT count(*) FROM writes w, (SELECT started, finished FROM fct_refresh_log ORDER BY id DESC LIMIT 1) l
WHERE w.at BETWEEN l.started AND l.finished});
cmp_ok($during, '>', 0, "the writer committed while the refresh ran ($during writes)");
is($node->safe_psql('postgres', q{
SELECT count(*) FROM items i JOIN (SELECT DISTINCT ON (id) id, emb FROM writes ORDER BY id, seq DESC) l USING (id)
WHERE i.emb <> l.emb}),
	'0', "every row the writer touched holds the writer's last value");
is($node->safe_psql('postgres', q{
SELECT count(*) FROM items WHERE id NOT IN (SELECT id FROM writes) AND emb <> '[1,1]'}),
	'0', 'every other row was refreshed');

$node->stop;
done_testing();
