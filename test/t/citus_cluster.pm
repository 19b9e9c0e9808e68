# A Citus cluster for the TAP tests of bands 100-119: a coordinator and workers on this machine,
# each a PostgreSQL::Test::Cluster of the private install into which test/run built Citus
# (test/vendor.sh).  Without Citus the test plans skip_all, saying why.
#
#   use citus_cluster;
#   citus_skip_unless_available();           # before any plan
#   my $c = citus_cluster(workers => 2);      # { coordinator => $node, workers => [$node, ...] }
#   citus_add_worker($c, $node);              # a worker started later (citus_add_node)
#   $c->{coordinator}->safe_psql('postgres', ...);
#   citus_stop($c);
#
# The nodes listen on 127.0.0.1 as well as on their Unix socket: Citus connects to its nodes by
# host name and port (localhost), the test's own psql uses the socket.
package citus_cluster;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
our @EXPORT = qw(citus_skip_unless_available citus_cluster citus_new_node
  citus_add_worker citus_stop);

# skip_all unless test/run installed Citus into the PostgreSQL on PATH
sub citus_skip_unless_available
{
	if ($ENV{FCT_CITUS_SKIP})
	{
		plan skip_all => "Citus tests: $ENV{FCT_CITUS_SKIP}";
	}
	my $share = `pg_config --sharedir`;
	chomp $share;
	unless ($share && -f "$share/extension/citus.control")
	{
		plan skip_all =>
		  "Citus tests: Citus is not installed in this PostgreSQL ($share); run them through "
		  . "test/run, which builds it from ../shared/vendor/ (or CITUS_SRC=/path)";
	}
	return;
}

# A started node ready to join: citus (first) and fct preloaded, both extensions created.
# %opts: preload => 'citus,fct' (the list, Citus first), conf => [lines], extensions => 1
sub citus_new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my $preload = $opts{preload} // 'citus,fct';
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = '$preload'",
		"listen_addresses = '127.0.0.1'",
		'max_connections = 100',
		'max_worker_processes = 16',
		'max_prepared_transactions = 20',
		'citus.shard_replication_factor = 1',
		# one test machine: keep Citus from fanning out many connections per node
		'citus.max_adaptive_executor_pool_size = 4',
		'citus.enable_statistics_collection = off',
		'fsync = off',
		@{ $opts{conf} // [] }) . "\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus') if $preload =~ /citus/;
	return $node;
}

# A coordinator and $opts{workers} (2) workers; fct is created on the coordinator (Citus creates
# it on the workers) unless $opts{fct} is 0.
sub citus_cluster
{
	my (%opts) = @_;
	my $n = $opts{workers} // 2;
	my $c = { coordinator => citus_new_node('coordinator', %opts), workers => [] };
	$c->{coordinator}->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('localhost', " . $c->{coordinator}->port . ')');
	citus_add_worker($c, citus_new_node("worker$_", %opts)) for 1 .. $n;
	$c->{coordinator}->safe_psql('postgres', 'CREATE EXTENSION fct')
	  if $opts{fct} // 1;
	return $c;
}

sub citus_add_worker
{
	my ($c, $node) = @_;
	$c->{coordinator}->safe_psql('postgres',
		"SELECT citus_add_node('localhost', " . $node->port . ')');
	push @{ $c->{workers} }, $node;
	return $node;
}

sub citus_stop
{
	my ($c) = @_;
	$_->stop('fast') for grep { $_->{_pid} } @{ $c->{workers} };
	$c->{coordinator}->stop('fast') if $c->{coordinator}{_pid};
	return;
}

1;
