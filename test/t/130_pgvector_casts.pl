# fct beside pgvector 0.8.6 in one database (issue #15 item 3): the extension fct_pgvector holds the casts
# between vector and embedding (sql/install/95_pgvector.sql says why it is an extension of its own).
#   - it appears by itself when pgvector is created in a database with fct; with pgvector first,
#     CREATE EXTENSION fct says how to add it; CREATE EXTENSION fct_pgvector CASCADE installs all three;
#   - the casts copy every float bit for bit (checked against pgvector's own text output), drop model
#     and side-information towards vector, honour typmods, and refuse what does not fit;
#   - ALTER TABLE ... TYPE embedding USING v::embedding converts a pgvector column in one statement
#     (after its pgvector index is dropped), and a vector-typed parameter meets the lsh index;
#   - DROP EXTENSION vector refuses while the casts exist and CASCADE drops only them; pg_dump and a
#     restore keep all three; ALTER EXTENSION fct UPDATE from 0.1.0 adds the trigger;
#   - which names are ambiguous with both installed (as with pgvector alone), and what resolves them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

fct_skip_unless_pgvector();

my $node = fct_node('main', extension => 0);

sub psql_err	# (db, sql) -> (stdout, stderr, rc)
{
	my ($db, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql($db, $sql, stdout => \$out, stderr => \$err,
		extra_params => ['-v', 'VERBOSITY=verbose']);
	return ($out, $err, $rc);
}

sub has_casts
{
	my ($db) = @_;
	return $node->safe_psql($db, q{SELECT count(*) FROM pg_cast
		WHERE (castsource, casttarget) IN (('vector'::regtype, 'embedding'::regtype),
										   ('embedding'::regtype, 'vector'::regtype))});
}

# ---- order 1: fct, then pgvector: the event trigger creates fct_pgvector
my (undef, $err) = psql_err('postgres', 'CREATE EXTENSION fct; CREATE EXTENSION vector;');
like($err, qr/created extension fct_pgvector/, 'CREATE EXTENSION vector after fct creates fct_pgvector');
is(has_casts('postgres'), 2, 'both casts exist (fct first)');
is($node->safe_psql('postgres', q{SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'fct_pgvector'}),
	'public', "fct_pgvector lives in fct's schema");

# ---- order 2: pgvector, then fct: a NOTICE says what to run
$node->safe_psql('postgres', 'CREATE DATABASE vfirst');
(undef, $err) = psql_err('vfirst', 'CREATE EXTENSION vector; CREATE EXTENSION fct;');
like($err, qr/WARNING:  (?:01000: )?pgvector is installed in this database, the casts between vector and embedding are not.*HINT:  CREATE EXTENSION fct_pgvector adds them/s,
	'CREATE EXTENSION fct after vector says how to add the casts');
my ($out, $err2, $rc) = psql_err('vfirst', q{SELECT '[1,2]'::vector::embedding});
like($err2, qr/42846/, 'without fct_pgvector there is no cast (42846)');
$node->safe_psql('vfirst', 'CREATE EXTENSION fct_pgvector');
is(has_casts('vfirst'), 2, 'CREATE EXTENSION fct_pgvector adds both casts (pgvector first)');

# ---- order 3: one command in an empty database
$node->safe_psql('postgres', 'CREATE DATABASE cascade_db');
$node->safe_psql('cascade_db', 'CREATE EXTENSION fct_pgvector CASCADE');
is($node->safe_psql('cascade_db', q{SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension
	WHERE extname <> 'plpgsql'}), 'fct,fct_pgvector,vector', 'CREATE EXTENSION fct_pgvector CASCADE installs all three');

# ---- values: bit for bit, against pgvector's own text output
# 300 vectors of 1 to 3000 dimensions: normal, tiny, huge and negative floats (pgvector writes the
# shortest text that reads back to the same float4, as fct does, so equal text means equal bits)
$node->safe_psql('postgres', q{
	CREATE TABLE sample AS
	SELECT i, ARRAY(SELECT (CASE (i * 7 + j) % 5
			WHEN 0 THEN (random() - 0.5)
			WHEN 1 THEN (random() - 0.5) * 1e-37
			WHEN 2 THEN (random() - 0.5) * 1e37
			WHEN 3 THEN round((random() * 200 - 100)::numeric, 2)
			ELSE j END)::real FROM generate_series(1, 1 + (i * 37) % 3000) j)::vector AS v
	  FROM generate_series(1, 300) i;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM sample WHERE v::embedding::text <> v::text}),
	'0', 'vector -> embedding: the same text as pgvector writes, for 300 vectors of 1..3000 dimensions');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sample
	WHERE v::embedding::vector::text <> v::text OR v::embedding <> v::text::embedding}),
	'0', 'vector -> embedding -> vector is the identity; the C cast equals the cast through text');
is($node->safe_psql('postgres', q{SELECT '[-0,1]'::vector::embedding, '[-0,1]'::vector::embedding = '[0,1]'::embedding}),
	'[0,1]|t', '-0 becomes +0 in an embedding (byte equality, btree and hash agree)');

$node->safe_psql('postgres', q{SELECT fct_register_model('pgv-m', 3, 2)});
is($node->safe_psql('postgres', q{SELECT 'pgv-m:[1,2,3]|[7,8]'::embedding::vector}),
	'[1,2,3]', 'embedding -> vector keeps the vector part only (model and side-information dropped)');
is($node->safe_psql('postgres', q{SELECT fct_model('[1,2,3]'::vector::embedding) IS NULL,
	fct_side_dims('[1,2,3]'::vector::embedding)}), 't|0', 'vector -> embedding: no model, no side-information');
($out, $err, $rc) = psql_err('postgres', q{SELECT '[1,2]'::vector::embedding(3)});
like($err, qr/22000.*expected 3 dimensions, not 2/s, 'the typmod embedding(3) applies after the cast (22000)');
($out, $err, $rc) = psql_err('postgres', q{SELECT '[1,2]'::embedding::vector(3)});
like($err, qr/expected 3 dimensions, not 2/, "pgvector's typmod vector(3) applies after the cast");
is($node->safe_psql('postgres', q{SELECT '[1,2,3]'::embedding::vector(3), '[1,2,3]'::vector(3)::embedding(3)}),
	'[1,2,3]|[1,2,3]', 'typmods that fit pass');

# ---- a pgvector table converted in one statement; vector-typed parameters
$node->safe_psql('postgres', q{
	CREATE TABLE docs (id int PRIMARY KEY, v vector(16));
	INSERT INTO docs SELECT i, ARRAY(SELECT sin(i * 0.37 + j * (1 + i % 13)) FROM generate_series(1, 16) j)::vector(16)
	  FROM generate_series(1, 3000) i;
	CREATE INDEX docs_hnsw ON docs USING hnsw (v vector_l2_ops);
	CREATE TABLE docs_before AS SELECT id, v::text AS t FROM docs;
});
($out, $err, $rc) = psql_err('postgres', q{ALTER TABLE docs ALTER COLUMN v TYPE embedding(16) USING v::embedding(16)});
like($err, qr/42704|does not accept data type embedding/,
	"ALTER ... TYPE embedding refuses while a pgvector index is on the column (its operator class is pgvector's)");
$node->safe_psql('postgres', q{
	DROP INDEX docs_hnsw;
	ALTER TABLE docs ALTER COLUMN v TYPE embedding(16) USING v::embedding(16);
	CREATE INDEX docs_lsh ON docs USING lsh (v embedding_l2_ops);
	ANALYZE docs;
});
is($node->safe_psql('postgres', q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute
	WHERE attrelid = 'docs'::regclass AND attname = 'v'}), 'embedding(16)', 'the column is embedding(16)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM docs d JOIN docs_before b USING (id) WHERE d.v::text <> b.t}),
	'0', 'every converted value has the text it had as a vector');
# a prepared statement whose parameter is typed vector (what a pgvector client sends)
my $plan = $node->safe_psql('postgres', q{
	PREPARE near(vector) AS SELECT id FROM docs ORDER BY v <-> $1 LIMIT 5;
	EXPLAIN (COSTS OFF) EXECUTE near('[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]');
});
like($plan, qr/Index Scan using docs_lsh/, 'ORDER BY v <-> $1::vector uses the lsh index');
my $q = "'" . $node->safe_psql('postgres', q{SELECT v::text FROM docs WHERE id = 77}) . "'::vector";
like($node->safe_psql('postgres', qq{
	PREPARE near2(vector) AS SELECT id FROM docs ORDER BY v <-> \$1 LIMIT 1;
	EXPLAIN (COSTS OFF) EXECUTE near2($q);
	EXECUTE near2($q);}), qr/Index Scan using docs_lsh.*\n77\z/s,
	'a vector-typed parameter finds its own row through the lsh index');
is($node->safe_psql('postgres', qq{INSERT INTO docs VALUES (5000, $q) RETURNING id}), '5000',
	'INSERT of a vector into an embedding column (assignment cast)');
$node->safe_psql('postgres', q{CREATE TABLE back_to_pgv (v vector(16));
	INSERT INTO back_to_pgv SELECT v FROM docs});
is($node->safe_psql('postgres', q{SELECT count(*) FROM back_to_pgv}), '3001', 'and back into a vector column');

# ---- what coexists, what is ambiguous
($out, $err, $rc) = psql_err('postgres', q{SELECT l2_distance('[1,2]', '[1,3]')});
like($err, qr/42725/, 'l2_distance with two untyped literals is ambiguous with both installed (42725)');
is($node->safe_psql('postgres', q{SELECT l2_distance('[1,2]'::vector, '[1,3]'), l2_distance('[1,2]'::embedding, '[1,3]'),
	'[1,2]'::vector <-> '[1,3]', vector_dims('[1,2,3]'::embedding), vector_dims('[1,2,3]'::vector)}),
	'1|1|1|3|3', 'one typed argument resolves it, for functions and operators');
is($node->safe_psql('postgres', q{SELECT pg_typeof(v <-> '[1,2]'::vector)::text || ',' || pg_typeof(v + v)::text
	FROM (SELECT '[3,4]'::vector AS v) s}), 'double precision,vector', "pgvector's own expressions keep pgvector's operators");
$node->safe_psql('postgres', q{CREATE DATABASE schemas;});
$node->safe_psql('schemas', q{CREATE SCHEMA pgv; CREATE EXTENSION vector SCHEMA pgv; CREATE EXTENSION fct;});
($out, $err, $rc) = psql_err('schemas', q{SET search_path = public, pgv; SELECT l2_distance('[1,2]', '[1,3]')});
like($err, qr/42725/, 'in separate schemas, both on the search_path, still ambiguous');
is($node->safe_psql('schemas', q{SET search_path = public, pgv; SELECT public.l2_distance('[1,2]', '[1,3]')}),
	'1', "fct's schema as a prefix picks fct's function");
($out, $err, $rc) = psql_err('schemas', q{SET search_path = public, pgv; SELECT pgv.l2_distance('[1,2]', '[1,3]')});
like($err, qr/42725/, "pgvector's schema as a prefix does not: pgvector's own overloads (vector, halfvec, sparsevec) are ambiguous");
$node->safe_psql('postgres', q{CREATE DATABASE only_pgvector});
($out, $err, $rc) = psql_err('only_pgvector', q{CREATE EXTENSION vector; SELECT l2_distance('[1,2]', '[1,3]')});
like($err, qr/42725/, 'as they are in a database with pgvector alone (so this is no new ambiguity)');
is($node->safe_psql('schemas', q{SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'fct_pgvector'}),
	'', 'pgvector in its own schema before fct: no fct_pgvector until asked');

# ---- DROP, dump and restore, update
$node->safe_psql('postgres', q{CREATE VIEW docs_as_vector AS SELECT id, v::vector(16) AS v FROM docs});
($out, $err, $rc) = psql_err('postgres', 'DROP EXTENSION vector');
like($err, qr/2BP01.*extension fct_pgvector depends on extension vector/s,
	'DROP EXTENSION vector refuses while fct_pgvector exists (2BP01)');
my $dump = "${PostgreSQL::Test::Utils::tmp_check}/pgv.sql";
$node->command_ok(['pg_dump', '-d', $node->connstr('postgres'), '-f', $dump], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'), '-f', $dump],
	'the dump restores without an error');
is($node->safe_psql('restored', q{SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'}),
	'fct,fct_pgvector,vector', 'the restore has the three extensions');
is($node->safe_psql('restored', q{SELECT count(*) FROM docs_as_vector a JOIN docs_before b USING (id) WHERE a.v::text = b.t}),
	'3000', 'the view through the cast answers after the restore');

($out, $err, $rc) = psql_err('postgres', 'DROP EXTENSION vector CASCADE');
like($err, qr/drop cascades to.*extension fct_pgvector/s, 'DROP EXTENSION vector CASCADE drops fct_pgvector');
is($node->safe_psql('postgres', q{SELECT count(*) FROM docs}), '3001', 'and leaves fct and the embedding table');
$node->safe_psql('postgres', 'CREATE EXTENSION vector');
is(has_casts('postgres'), 2, 'creating vector again brings the casts back');
$node->safe_psql('postgres', 'DROP EXTENSION fct_pgvector CASCADE');
is($node->safe_psql('postgres', q{SELECT count(*) FROM docs}), '3001', 'DROP EXTENSION fct_pgvector drops only the casts (and the view)');

# a non-superuser's CREATE EXTENSION of a trusted extension is not disturbed by the event trigger
$node->safe_psql('postgres', q{CREATE ROLE pgv_user LOGIN; GRANT CREATE ON DATABASE postgres TO pgv_user});
($out, $err, $rc) = psql_err('postgres', q{SET ROLE pgv_user; CREATE EXTENSION IF NOT EXISTS pgcrypto; RESET ROLE});
is($rc, 0, 'a non-superuser creates a trusted extension (pgcrypto) with the event trigger present');

# ALTER EXTENSION fct UPDATE from 0.1.0, then pgvector: the trigger came with the update
$node->safe_psql('postgres', 'CREATE DATABASE upd');
$node->safe_psql('upd', q{CREATE EXTENSION fct VERSION '0.1.0'; ALTER EXTENSION fct UPDATE});
(undef, $err) = psql_err('upd', 'CREATE EXTENSION vector');
like($err, qr/created extension fct_pgvector/, 'after ALTER EXTENSION fct UPDATE from 0.1.0, pgvector brings the casts');

$node->stop;
done_testing();
