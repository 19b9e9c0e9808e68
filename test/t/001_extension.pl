# The extension installs in a TAP node (the private install is first in PATH) and its
# objects survive an immediate-mode stop and crash recovery.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION fct');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'fct'"),
	'0.2.0', 'extension created at the control file version');

$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'fct'"),
	'1', 'extension still there after crash recovery');

$node->stop;
done_testing();
