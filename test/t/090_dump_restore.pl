# pg_dump and restore keep the model registry and every stored embedding: values are dumped as text
# naming their model, the registry's rows (an extension configuration table) are dumped without their
# ids, which the restore computes again from the names (fct_model_id).  091 covers the load order.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('main', extension => 0);
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION fct;
	SELECT fct_register_model('unused-first', 3);
	SELECT fct_register_model('clip-v1', 4, side_dim => 2, note => 'kept');
	CREATE TABLE items (id int PRIMARY KEY, emb embedding(4));
	INSERT INTO items SELECT g, fct_embedding(ARRAY[g, g / 3.0, -g, 0.1]::real[], ARRAY[1, g]::real[], 'clip-v1')
	  FROM generate_series(1, 1000) g;
	INSERT INTO items VALUES (0, '[1,2,3,4]'), (-1, NULL);
});
my $before = $node->safe_psql('src', 'SELECT md5(string_agg(emb::text, \';\' ORDER BY id)) FROM items');

for my $format ('p', 'c')
{
	my $db = "dst_$format";
	my $file = $node->basedir . "/dump.$format";
	$node->command_ok([ 'pg_dump', '-F', $format, '-f', $file, '-d', $node->connstr('src') ],
		"pg_dump -F $format");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	if ($format eq 'p')
	{
		$node->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $node->connstr($db), '-f', $file ],
			'restore the plain dump');
	}
	else
	{
		$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr($db), $file ],
			'restore the custom dump');
	}
	is($node->safe_psql($db, 'SELECT md5(string_agg(emb::text, \';\' ORDER BY id)) FROM items'),
		$before, "every embedding restored identically ($format)");
	is($node->safe_psql($db, "SELECT name || ':' || dim || ':' || side_dim || ':' || coalesce(note, '') || ':' || (id = fct_model_id(name)) FROM fct_models ORDER BY name"),
		"clip-v1:4:2:kept:true\nunused-first:3:0::true", "model registry restored ($format)");
	is($node->safe_psql($db, "SELECT fct_register_model('clip-v2', 8) = fct_model_id('clip-v2')"),
		't', "a model registered after a restore gets the id of its name ($format)");
}

$node->stop;
done_testing();
