# Fixtures shared by the TAP tests: a started node with fct, and the small data sets that several
# tests use.  (lsh_common.pm holds the lsh test data; test/README.md lists both.)
package fct_fixtures;
use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use Test::More;
our @EXPORT = qw(fct_node fct_tiny_label_set_sql fct_integer_upgrade_sql fct_pgbench_writers
	fct_skip_unless_pgvector);

# A new started node, with CREATE EXTENSION fct in database postgres unless extension => 0.
#   conf      => lines for postgresql.conf (a string), added before the first start
#   streaming => 1 to allow a standby (init(allows_streaming => 1))
sub fct_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init($opt{streaming} ? (allows_streaming => 1) : ());
	$node->append_conf('postgresql.conf', $opt{conf}) if defined $opt{conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION fct') unless defined $opt{extension} && !$opt{extension};
	return $node;
}

# Three labels [1,0], [0,1], [1,1] in TABLE $table (id, e), as label set $set.
sub fct_tiny_label_set_sql
{
	my ($set, $table) = @_;
	return qq{
	CREATE TABLE $table (id int PRIMARY KEY, e embedding);
	INSERT INTO $table VALUES (1, '[1,0]'), (2, '[0,1]'), (3, '[1,1]');
	SELECT fct_create_label_set('$set', '$table', 'id', 'e');
};
}

# Models v1 (4 dimensions, 2 of side-information) and v2 (3, 2) and a linear transformation with
# integer weights: on integer data every path of an upgrade gives exact results, so a test can
# compare a migrated row with the value it expects.
sub fct_integer_upgrade_sql
{
	return q{
	SELECT fct_register_model('v1', 4, 2), fct_register_model('v2', 3, 2);
	SELECT fct_register_transformation('v1', 'v2',
		'{"mixer": [{"weight": [[1,0,0,0,0,0], [0,1,1,0,0,0], [0,0,0,1,1,1]]}]}');
};
}

# Concurrent writers for a test that must not lose their rows: writes each pgbench script of
# %$scripts (name => SQL, weight 1 each) into the node's directory and returns a sub
# start($seconds, \$out, \$err) that starts pgbench with $clients clients on them (IPC::Run
# handle; the caller finishes it).
sub fct_pgbench_writers
{
	my ($node, $scripts, $clients) = @_;
	my @files;
	for my $name (sort keys %$scripts)
	{
		my $f = $node->basedir . "/$name.sql";
		open my $fh, '>', $f or die $!;
		print $fh $scripts->{$name};
		close $fh;
		push @files, '-f', "$f\@1";
	}
	return sub {
		my ($seconds, $out, $err) = @_;
		return IPC::Run::start(
			[ 'pgbench', '-n', '-c', $clients, '-j', '2', '-T', $seconds, @files,
			  $node->connstr('postgres') ],
			'>', $out, '2>', $err);
	};
}

# skip_all unless test/run installed pgvector into the PostgreSQL on PATH (TAP band 130-139: it
# builds it from ../shared/vendor/, test/vendor.sh).  Call before any plan.
sub fct_skip_unless_pgvector
{
	plan skip_all => "pgvector tests: $ENV{FCT_PGVECTOR_SKIP}" if $ENV{FCT_PGVECTOR_SKIP};
	my $share = `pg_config --sharedir`;
	chomp $share;
	plan skip_all => "pgvector tests: pgvector is not installed in this PostgreSQL ($share); run them "
	  . "through test/run, which builds it from ../shared/vendor/ (or PGVECTOR_SRC=/path)"
	  unless $share && -f "$share/extension/vector.control";
	return;
}

1;
