# The invalidation trigger that fct_create_label_set puts on a label table depends on the extension
# (DEPENDS ON EXTENSION): it no longer makes a plain DROP EXTENSION fct fail once no user object needs
# fct, it goes with the extension, and pg_dump keeps it with that dependency.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use fct_fixtures;

my $node = fct_node('main');
$node->safe_psql('postgres', fct_tiny_label_set_sql('s', 'lt'));
is($node->safe_psql('postgres', q{
	SELECT d.deptype FROM pg_depend d JOIN pg_trigger t ON d.classid = 'pg_trigger'::regclass AND d.objid = t.oid
	 WHERE t.tgname = 'fct_label_set_invalidate' AND d.refclassid = 'pg_extension'::regclass}),
	'x', 'the label table trigger depends on the extension');

# pg_dump keeps the trigger and its dependency.
my ($dump, $err) = ('', '');
IPC::Run::run([ 'pg_dump', '-d', $node->connstr('postgres') ], '>', \$dump, '2>', \$err) or die $err;
like($dump, qr/ALTER TRIGGER fct_label_set_invalidate ON public\.lt DEPENDS ON EXTENSION fct;/,
	'pg_dump writes the dependency');

# A user column of type embedding still depends on fct: DROP EXTENSION refuses, naming the column only.
my ($ret, $out);
($ret, $out, $err) = $node->psql('postgres', 'DROP EXTENSION fct');
isnt($ret, 0, 'DROP EXTENSION refused while a user column has type embedding');
like($err, qr/column e of table lt depends on type embedding/, '... naming the column');
unlike($err, qr/trigger/, '... and not the label table trigger');

# Once the label table no longer uses fct, a plain DROP EXTENSION works and takes the trigger along.
$node->safe_psql('postgres', q{ALTER TABLE lt ALTER COLUMN e TYPE real[] USING fct_vector(e)});
($ret, $out, $err) = $node->psql('postgres', 'DROP EXTENSION fct');
is($ret, 0, 'plain DROP EXTENSION fct works') or diag($err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgname = 'fct_label_set_invalidate'}),
	'0', 'the label table trigger went with the extension');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lt'), '3', 'the label table itself is kept');
$node->safe_psql('postgres', 'INSERT INTO lt VALUES (4, ARRAY[2,2])');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lt'), '4', 'and writable without the extension');

$node->stop;
done_testing();
