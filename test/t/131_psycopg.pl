# psycopg 3 against fct (issue #15 item 3): the adapter the README's "Beside pgvector" section shows, taken
# from the README as written, sends numpy arrays (text and binary) and lists, and reads embeddings back as
# numpy float32 arrays (embedding[] as lists of them), bit for bit, in UTF8 and SQL_ASCII databases
# (test/t/131_psycopg.py holds the checks).  Needs Debian's python3-psycopg and python3-numpy
# (test/install-deps); no pgvector.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename;
use fct_fixtures;

my $src = dirname(__FILE__) . '/../..';
my $readme = slurp_file("$src/README.md");
my @blocks = grep { /def register_embedding/ } ($readme =~ /^```python\n(.*?)^```/msg);
is(scalar @blocks, 1, "the README shows the psycopg adapter in one python block");
my $module = "${PostgreSQL::Test::Utils::tmp_check}/fct_psycopg.py";
open(my $fh, '>', $module) or die "$module: $!";
print $fh $blocks[0];
close $fh;

# Once in a UTF8 database and once in a SQL_ASCII one (initdb's choice on a machine without a locale, as in
# minimal Debian images), where psycopg returns text, the type's catalog row included, as bytes.
my $node = fct_node('main', extension => 0);
for my $encoding ('UTF8', 'SQL_ASCII')
{
	my $db = lc "py_$encoding";
	$node->safe_psql('postgres',
		"CREATE DATABASE $db ENCODING '$encoding' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
	$node->safe_psql($db, 'CREATE EXTENSION fct');
	my ($out, $err) = ('', '');
	my $rc = IPC::Run::run(['/usr/bin/python3', "$src/test/t/131_psycopg.py", $module, $node->connstr($db)],
		'>', \$out, '2>', \$err);
	note $out;
	ok($rc, "$encoding: the Python checks pass") or diag "$out\n$err";
	unlike($out, qr/^not ok/m, "$encoding: no check failed");
	like($out, qr/avg\(embedding\) reads as a numpy array/, "$encoding: every check ran");
}

$node->stop;
done_testing();
