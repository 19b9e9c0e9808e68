# Every earlier version of fct, installed from its frozen script and brought to the current version with
# ALTER EXTENSION fct UPDATE, has exactly the objects a fresh CREATE EXTENSION fct creates: functions
# with their bodies and attributes, types, casts, operators, operator classes, tables with their columns,
# defaults, constraints, indexes and triggers, views, comments and privileges (test/extension_objects.sql
# lists them).  A change to sql/install/ without its counterpart in sql/upgrade/ fails here, with the
# differing lines; sql/README.md says how to write the counterpart.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $describe = "$FindBin::Bin/../extension_objects.sql";

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

sub objects
{
	my ($db) = @_;
	my ($stdout, $stderr);
	$node->psql($db, undef, extra_params => [ '-f', $describe ],
		stdout => \$stdout, stderr => \$stderr, on_error_die => 1);
	return [ split /\n/, $stdout ];
}

# The lines of $got that $want lacks (+) and the lines of $want that $got lacks (-).
sub difference
{
	my ($want, $got) = @_;
	my %w = map { $_ => 1 } @$want;
	my %g = map { $_ => 1 } @$got;
	return join "\n", (map { "- $_" } grep { !$g{$_} } @$want), (map { "+ $_" } grep { !$w{$_} } @$got);
}

my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'fct'");
my @older = split /\n/, $node->safe_psql('postgres', qq{
	SELECT version FROM pg_available_extension_versions
	WHERE name = 'fct' AND version <> '$current' ORDER BY string_to_array(version, '.')::int[]});
ok(scalar(@older) >= 1, "older versions installable: @older (current $current)");

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION fct');
my $fresh = objects('fresh');
ok(scalar(@$fresh) > 100, scalar(@$fresh) . " facts describe a fresh install of $current");

for my $old (@older)
{
	(my $db = "from_$old") =~ s/\W/_/g;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	like($node->safe_psql($db, qq{
		SELECT path FROM pg_extension_update_paths('fct') WHERE source = '$old' AND target = '$current'}),
		qr/^\Q$old\E--.*\Q$current\E$/, "an update path leads from $old to $current");
	$node->safe_psql($db, "CREATE EXTENSION fct VERSION '$old'");
	$node->safe_psql($db, 'ALTER EXTENSION fct UPDATE');
	my $updated = objects($db);
	my $diff = difference($fresh, $updated);
	ok($diff eq '', "$old updated to $current has the objects of a fresh $current install")
	  or diag("- only in a fresh install, + only after the update (write the difference into "
		  . "sql/upgrade/, see sql/README.md):\n$diff");
}

$node->stop;
done_testing();
