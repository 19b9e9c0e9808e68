# The README's SQL runs as written: the ```sql blocks of every section are read from README.md (a block
# after a line `<!-- sql: not run (reason) -->` is skipped), a `'model:[...]'` literal is filled with a
# vector of that model's dimension, and each section runs in order, in a database of its own, stopping at
# the first error.  Then what the README's comments claim is checked.  So the README cannot drift from the
# code.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use fct_fixtures;

my $readme = "$FindBin::RealBin/../../README.md";
open(my $fh, '<', $readme) or die "cannot read $readme: $!";
my @lines = <$fh>;
close $fh;

# The sql blocks of section "## $title", in order.
sub sql_blocks
{
	my ($title) = @_;
	my (@blocks, $in_section, $in_fence, $keep, $skip_next, $block);
	for my $line (@lines)
	{
		if ($in_fence)
		{
			if ($line =~ /^```/)
			{
				$in_fence = 0;
				push @blocks, $block if $keep;
			}
			else { $block .= $line; }
			next;
		}
		if ($line =~ /^## /) { $in_section = ($line =~ /^## \Q$title\E\s*$/); next; }
		next unless $in_section;
		if ($line =~ /^<!-- sql: not run/) { $skip_next = 1; next; }
		if ($line =~ /^```(\S*)/)
		{
			($in_fence, $keep, $block) = (1, ($1 eq 'sql' && !$skip_next), '');
			$skip_next = 0;
			next;
		}
		$skip_next = 0 if $line =~ /\S/;
	}
	return @blocks;
}

my $node = fct_node('readme_sql', extension => 0);

# 'model:[...]' -> 'model:[0.5, 0.25, ...]' of the model's dimension (registered by an earlier block).
sub fill
{
	my ($db, $sql) = @_;
	$sql =~ s{'([A-Za-z0-9][A-Za-z0-9_.-]*):\[\.\.\.\]'}{
		my $model = $1;
		my $dim = $node->safe_psql($db, "SELECT dim FROM fct_models WHERE name = '$model'");
		die "README: [...] of model $model, which no earlier block registers" unless $dim;
		"'$model:[" . join(', ', map { (($_ * 7) % 10 + 1) / 10 } 1 .. $dim) . "]'";
	}ge;
	return $sql;
}

sub run_section
{
	my ($title, $db, $create_extension) = @_;
	my @blocks = sql_blocks($title);
	ok(@blocks > 0, "README section \"$title\" has sql blocks");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION fct') if $create_extension;
	my $n = 0;
	for my $block (@blocks)
	{
		$n++;
		my $sql = fill($db, $block);
		my ($rc, $out, $err) = $node->psql($db, $sql, on_error_stop => 1);
		is($rc, 0, "\"$title\" block $n runs as written")
		  or diag("block:\n$sql\nstderr:\n$err");
	}
}

# Getting started: from CREATE EXTENSION on.
run_section('Getting started', 'getting_started', 0);
is($node->safe_psql('getting_started', "SELECT model || ' | ' || rows FROM fct_model_census('items', 'emb')"),
	'clip-v2 | 3', 'Getting started: the census says clip-v2 | 3');
is($node->safe_psql('getting_started', "SELECT updated FROM fct_refresh_log WHERE tbl = 'items'::regclass"),
	'1', 'Getting started: the refresh wrote 1 row');
is($node->safe_psql('getting_started',
		"SELECT string_agg(label, ', ') FROM fct_top_labels('product-types', 'clip-v2:[0.2, 0.9, 0.1, 0, 0]', k => 2)"),
	'shirts, shoes', 'Getting started: the labels are shirts, shoes');
like($node->safe_psql('getting_started', "SET enable_seqscan = off;
		EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY emb <=> 'clip-v2:[0, 1, 0, 0, 0]' LIMIT 2"),
	qr/Index Scan using items_fct_upgrade_idx/, 'Getting started: the new-model query uses the index built for it');
is($node->safe_psql('getting_started', "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = 'items'::regclass AND attname = 'emb'"),
	'embedding', 'Getting started: items.emb has no typmod, and its rows went from 4 to 5 dimensions');

# The upgrade sections, each in its own database (each creates its own items table).
run_section('Upgrades: new models, old rows', 'upgrades', 1);
is($node->safe_psql('upgrades', "SELECT fct_upgrade_path('v1', 'v3')"), '{v1,v2,v3}',
	'Upgrades: the path v1 -> v2 -> v3');

run_section('Migrating stored rows', 'migrating', 1);
is($node->safe_psql('migrating', "SELECT model || ' | ' || rows FROM fct_model_census('items', 'e')"),
	'm-v3 | 1000', 'Migrating: after the recommended sequence twice, every row is in m-v3');
is($node->safe_psql('migrating', "SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY 1)
		FROM pg_index WHERE indrelid = 'items'::regclass AND NOT indisprimary"),
	'items_v3', 'Migrating: the previous model\'s index is gone, the new one is there');

# Every other section with SQL, each in a database of its own with fct created (Installation and Getting
# started create it themselves; sections needing pgvector or Citus mark their blocks as not run).
my %done = map { $_ => 1 } ('Getting started', 'Upgrades: new models, old rows', 'Migrating stored rows');
my $n_db = 0;
for my $title (map { /^## (.*?)\s*$/ ? ($1) : () } @lines)
{
	next if $done{$title} || !sql_blocks($title);
	$n_db++;
	run_section($title, "section_$n_db", $title ne 'Installation');
}
ok($n_db >= 6, "the other sections with SQL ran too ($n_db)");

done_testing();
