# The extension installs in a TAP node (the private install is first in PATH) at the version that the
# Makefile, fct.control and META.json all name, and its objects survive an immediate-mode stop and crash
# recovery.
use strict;
use warnings;
use FindBin;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION fct');
my $src = "$FindBin::Bin/../..";
sub slurp { open my $fh, '<', $_[0] or die "$_[0]: $!"; local $/; return <$fh>; }
my ($makefile) = slurp("$src/Makefile") =~ /^EXTVERSION\s*=\s*(\S+)/m;
my ($control) = slurp("$src/fct.control") =~ /^default_version\s*=\s*'([^']+)'/m;
my $meta = decode_json(slurp("$src/META.json"));
is($control, $makefile, "fct.control's default_version is the Makefile's EXTVERSION ($makefile)");
is($meta->{version}, $makefile, 'META.json names the same version');
is($meta->{provides}{fct}{version}, $makefile, "META.json's provides names the same version");
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'fct'"),
	$makefile, 'extension created at that version');

$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'fct'"),
	'1', 'extension still there after crash recovery');

$node->stop;
done_testing();
