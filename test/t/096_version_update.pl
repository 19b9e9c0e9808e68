# ALTER EXTENSION fct UPDATE from 0.1.0 keeps what 0.1.0 stored: a database created at 0.1.0 (from the
# frozen script sql/fct--0.1.0.sql) with models, embeddings, a registered transformation, an lsh index and
# an index on fct_upgrade(...), updated to the current version after a restart (as after installing the
# new library), answers the same queries with the same rows and distances, its lsh index verifies and
# keeps answering, and new rows, models and transformations work beside the old ones.  A stored value is
# also checked byte for byte against the 0.1.0 on-disk layout (format version 1): a change of the
# layout must keep reading version 1 and shows here first.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION fct VERSION '0.1.0';
	SELECT fct_register_model('upd-v1', dim => 8, side_dim => 2, note => 'made by 0.1.0');
	SELECT fct_register_model('upd-v2', dim => 8, side_dim => 2);
	-- 4,000 rows in 20 clusters: deterministic values, no random()
	CREATE TABLE items (id int PRIMARY KEY, e embedding(8));
	INSERT INTO items
	SELECT i, fct_embedding(
		ARRAY(SELECT (sin(x * (i % 20 + 1)) + 0.05 * cos(i * x * 0.37))::real FROM generate_series(1, 8) x),
		ARRAY[(i % 7)::real, (i % 3)::real], 'upd-v1')
	FROM generate_series(1, 4000) i;
	CREATE INDEX items_lsh ON items USING lsh (e embedding_l2_ops);
	-- a transformation v1 -> v2: the vector reversed plus a tenth of the side-information
	SELECT fct_register_transformation('upd-v1', 'upd-v2', jsonb_build_object('mixer', jsonb_build_array(
		jsonb_build_object('weight', (SELECT jsonb_agg(r ORDER BY o) FROM (
			SELECT o, (SELECT jsonb_agg(CASE WHEN c = 9 - o THEN 1 WHEN c > 8 THEN 0.1 ELSE 0 END ORDER BY c)
					   FROM generate_series(1, 10) c) AS r
			FROM generate_series(1, 8) o) w)))));
	CREATE INDEX items_v2 ON items (fct_upgrade(e, 'upd-v2'));
	ANALYZE items;
	CREATE TABLE queries (qid int PRIMARY KEY, q1 embedding, q2 embedding);
	INSERT INTO queries
	SELECT j, fct_embedding(ARRAY(SELECT sin(x * j + 0.1)::real FROM generate_series(1, 8) x), NULL, 'upd-v1'),
		   fct_embedding(ARRAY(SELECT sin((9 - x) * j + 0.1)::real FROM generate_series(1, 8) x), NULL, 'upd-v2')
	FROM generate_series(1, 20) j;
});

# The answers: exact top-10 in v1, through the lsh index, across models (v2 queries against v1 rows,
# each row upgraded on the fly), the upgraded values, and the catalog rows.
my %answers = (
	exact => q{SET enable_indexscan = off;
		SELECT string_agg(qid || ':' || ids, ' ' ORDER BY qid) FROM queries, LATERAL (
			SELECT string_agg(id::text, ',' ORDER BY d, id) AS ids FROM (
				SELECT id, e <-> q1 AS d FROM items ORDER BY e <-> q1, id LIMIT 10) t) s},
	index => q{SET enable_seqscan = off;
		SELECT string_agg(qid || ':' || ids, ' ' ORDER BY qid) FROM queries, LATERAL (
			SELECT string_agg(id::text, ',') AS ids FROM (
				SELECT id FROM items ORDER BY e <-> q1 LIMIT 10) t) s},
	cross_model => q{SELECT string_agg(qid || ':' || ids, ' ' ORDER BY qid) FROM queries, LATERAL (
			SELECT string_agg(id || '=' || round(d::numeric, 5), ',' ORDER BY d, id) AS ids FROM (
				SELECT id, e <=> q2 AS d FROM items ORDER BY e <=> q2, id LIMIT 5) t) s},
	upgraded => q{SELECT md5(string_agg(fct_upgrade(e, 'upd-v2')::text, ';' ORDER BY id)) FROM items},
	equality => q{SET enable_seqscan = off;
		SELECT count(*) FROM items i WHERE fct_upgrade(i.e, 'upd-v2') = (
			SELECT fct_upgrade(e, 'upd-v2') FROM items WHERE id = 77)},
	stored => q{SELECT md5(string_agg(e::text, ';' ORDER BY id)) FROM items},
	catalog => q{SELECT string_agg(name || '/' || dim || '/' || side_dim || '/' || coalesce(note, ''), ' ' ORDER BY name)
		|| ' ' || (SELECT string_agg(architecture || '/' || origin, ' ') FROM fct_transformations)
		FROM fct_models},
);
my %before = map { $_ => $node->safe_psql('postgres', $answers{$_}) } keys %answers;
is($node->safe_psql('postgres', q{SELECT missing || '/' || dangling FROM fct_lsh_verify('items_lsh')}),
	'0/0', 'the lsh index built at 0.1.0 verifies');
my $recall_before = $node->safe_psql('postgres', $answers{index});

# The on-disk bytes of a stored value (pageinspect): format version 1 of 0.1.0, a short varlena header
# (0x2b: 21 bytes), version 1, flags 0, dim 2, side_dim 0, 0, model id 0, then 1.0f and 2.0f.
$node->safe_psql('postgres', q{
	CREATE EXTENSION pageinspect;
	CREATE TABLE raw (e embedding);
	INSERT INTO raw VALUES ('[1,2]');
});
is($node->safe_psql('postgres', q{SELECT t_data FROM heap_page_items(get_raw_page('raw', 0))}),
	'\x2b0100020000000000000000000000803f00000040', 'a stored value has the 0.1.0 on-disk layout');

# Update as a user would: the new library is installed, the server restarts, then ALTER EXTENSION.
$node->restart;
$node->safe_psql('postgres', 'ALTER EXTENSION fct UPDATE');
my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'fct'");
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'fct'"),
	$current, "updated to $current");

for my $k (sort keys %answers)
{
	is($node->safe_psql('postgres', $answers{$k}), $before{$k}, "after the update: same answer ($k)");
}
is($node->safe_psql('postgres', q{SELECT missing || '/' || dangling FROM fct_lsh_verify('items_lsh')}),
	'0/0', 'the lsh index verifies after the update');
is($node->safe_psql('postgres', 'SELECT e::text FROM raw'), '[1,2]', 'the raw value reads back');

# Life goes on: new rows through the old index, a new model and a transformation registered by the
# current version, a chain v1 -> v2 -> v3 from rows stored at 0.1.0, a REINDEX.
$node->safe_psql('postgres', q{
	INSERT INTO items
	SELECT i, fct_embedding(
		ARRAY(SELECT (sin(x * (i % 20 + 1)) + 0.05 * cos(i * x * 0.37))::real FROM generate_series(1, 8) x),
		ARRAY[(i % 7)::real, (i % 3)::real], 'upd-v1')
	FROM generate_series(4001, 5000) i;
	SELECT fct_register_model('upd-v3', dim => 8, side_dim => 2);
	SELECT fct_register_transformation('upd-v2', 'upd-v3', '{"side": null, "mixer": [{"weight":
		[[1,0,0,0,0,0,0,0],[0,1,0,0,0,0,0,0],[0,0,1,0,0,0,0,0],[0,0,0,1,0,0,0,0],
		 [0,0,0,0,1,0,0,0],[0,0,0,0,0,1,0,0],[0,0,0,0,0,0,1,0],[0,0,0,0,0,0,0,2]]}]}');
});
is($node->safe_psql('postgres', q{SELECT missing || '/' || dangling FROM fct_lsh_verify('items_lsh')}),
	'0/0', 'the lsh index verifies after inserts');
is($node->safe_psql('postgres', q{SELECT array_to_string(fct_upgrade_path('upd-v1', 'upd-v3'), ',')}),
	'upd-v1,upd-v2,upd-v3', 'a chain from a 0.1.0 transformation to a new one');
is($node->safe_psql('postgres', q{
	SELECT fct_vector(fct_upgrade(e, 'upd-v3'))::text = fct_vector(fct_upgrade(fct_upgrade(e, 'upd-v2'), 'upd-v3'))::text
	FROM items WHERE id = 5}), 't', 'old rows upgrade through the chain');
$node->safe_psql('postgres', 'REINDEX INDEX items_lsh');
is($node->safe_psql('postgres', q{SELECT missing || '/' || dangling FROM fct_lsh_verify('items_lsh')}),
	'0/0', 'the lsh index verifies after REINDEX');
# recall@10 against the exact scan, for queries between two clusters (queries at a cluster are too easy)
$node->safe_psql('postgres', q{
	CREATE TABLE hard (qid int PRIMARY KEY, q embedding);
	INSERT INTO hard SELECT j, fct_embedding(ARRAY(SELECT (0.5 * sin(x * j) + 0.5 * sin(x * (j % 20 + 1)) + 0.02 * x)::real
		FROM generate_series(1, 8) x), NULL, 'upd-v1') FROM generate_series(1, 20) j;
});
my $top10 = q{SELECT string_agg(qid || ':' || ids, ' ' ORDER BY qid) FROM hard, LATERAL (
	SELECT string_agg(id::text, ',') AS ids FROM (SELECT id FROM items ORDER BY e <-> q LIMIT 10) t) s};
my %exact = map { split /:/ } split / /, $node->safe_psql('postgres', "SET enable_indexscan = off; $top10");
my ($hit, $all) = (0, 0);
for (split / /, $node->safe_psql('postgres', "SET enable_seqscan = off; $top10"))
{
	my ($q, $ids) = split /:/;
	my %want = map { $_ => 1 } split /,/, $exact{$q};
	$all += 10;
	$hit += grep { $want{$_} } split /,/, $ids;
}
cmp_ok($hit / $all, '>=', 0.9, "recall\@10 of the reindexed lsh index ($hit of $all)");

$node->stop;
done_testing();
