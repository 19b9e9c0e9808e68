# psycopg 3 against fct (issue #15 item 3): the adapter the README's "Beside pgvector" section shows, taken
# from the README as written, sends numpy arrays (text and binary) and lists, and reads embeddings back as
# numpy float32 arrays, bit for bit (test/t/131_psycopg.py holds the checks).  Needs Debian's python3-psycopg
# and python3-numpy (test/install-deps); no pgvector.
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

my $node = fct_node('main');
my ($out, $err) = ('', '');
my $rc = IPC::Run::run(['/usr/bin/python3', "$src/test/t/131_psycopg.py", $module, $node->connstr('postgres')],
	'>', \$out, '2>', \$err);
note $out;
ok($rc, 'the Python checks pass') or diag "$out\n$err";
unlike($out, qr/^not ok/m, 'no check failed');
like($out, qr/avg\(embedding\) reads as a numpy array/, 'every check ran');

$node->stop;
done_testing();
