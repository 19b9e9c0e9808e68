# Fixtures shared by the TAP tests: a started node with fct, and the small data sets that several
# tests use.  (lsh_common.pm holds the lsh test data; test/README.md lists both.)
package fct_fixtures;
use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use Test::More;
our @EXPORT = qw(fct_node fct_models_sql fct_linear_sql fct_side_mix_sql fct_side_mix_rows_sql
	fct_tiny_label_set_sql fct_integer_upgrade_sql fct_integer_rows_sql fct_pgbench_writers
	fct_inserts_sql fct_insert_script fct_check_written_rows fct_wait_migration fct_skip_unless_pgvector);

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

# SQL registering each model, given as [NAME, DIM] or [NAME, DIM, SIDE_DIM]:
#   fct_models_sql(['m1', 4, 2], ['m2', 3, 2])
sub fct_models_sql
{
	return join '', map {
		my ($name, $dim, $side) = @$_;
		"SELECT fct_register_model('$name', $dim, side_dim => " . ($side // 0) . ");\n"
	} @_;
}

# SQL registering $from -> $to as one linear map: weight (rows, each over [vector,
# side-information]) and, when given, bias => [...]; side => 0 maps the vector alone
# ("side": null).  fct_linear_sql('v1', 'v2', [[1,0,1], [0,2,0]], bias => [0.5, -1])
sub fct_linear_sql
{
	my ($from, $to, $weight, %opt) = @_;
	my $list = sub { '[' . join(',', @{ $_[0] }) . ']' };
	my $layer = '"weight": [' . join(',', map { $list->($_) } @$weight) . ']';
	$layer .= ', "bias": ' . $list->($opt{bias}) if $opt{bias};
	my $side = defined $opt{side} && !$opt{side} ? '"side": null, ' : '';
	return "SELECT fct_register_transformation('$from', '$to', '{$side\"mixer\": [{$layer}]}');\n";
}

# The upgrade the Citus and postgres_fdw tests migrate and query with: $from ($dim dimensions,
# 2 of side-information, $dim a power of two from 4) -> $to (log2($dim) + 1 dimensions, 2 of
# side-information), one linear map with a bias that reads both side values:
#   new[0] = x[0] + s[0] / 2 + 0.1, new[1] = x[1] + s[1] / 2 + 0.2,
#   new[k] = the sum of the next 2^(k-1) coordinates + 0.1 (k + 1), k >= 2
# (dim 4: x[2] + x[3]; dim 8: also x[4] + ... + x[7]).  Registers $to and the
# transformation; $from must be registered ([$from, $dim, 2]).
sub fct_side_mix_sql
{
	my ($from, $to, $dim) = @_;
	my @rows = ([0], [1]);
	for (my $start = 2; $start < $dim; $start *= 2)
	{
		push @rows, [ $start .. 2 * $start - 1 ];
	}
	die "fct_side_mix_sql: $dim is not a power of two from 4" unless $rows[-1][-1] == $dim - 1;
	my @weight;
	for my $k (0 .. $#rows)
	{
		my @w = (0) x ($dim + 2);
		$w[$_] = 1 for @{ $rows[$k] };
		$w[$dim + $k] = 0.5 if $k < 2;
		push @weight, \@w;
	}
	return fct_models_sql([ $to, scalar @rows, 2 ])
	  . fct_linear_sql($from, $to, \@weight, bias => [ map { sprintf '%.1f', 0.1 * $_ } 1 .. @rows ]);
}

# SELECT i, e: rows $first .. $last of a model of 8 dimensions and 2 of side-information
# (small integers, a few values per coordinate), for fct_side_mix_sql's upgrade.
sub fct_side_mix_rows_sql
{
	my ($model, $first, $last) = @_;
	return "SELECT i, fct_embedding(ARRAY[i % 7, 1, i % 3, -1, 0.5, i % 5, 2, 1]::real[], "
	  . "ARRAY[1, i % 11]::real[], '$model') FROM generate_series($first, $last) i";
}

# Three labels 1 = [1,0], 2 = [0,1], 3 = [1,1] in TABLE $table (id, e), as label set $set.
#   bias => 1         a column b real of zeros, the set's bias
#   train_prior => A  the set's training prior (a real[] literal)
sub fct_tiny_label_set_sql
{
	my ($set, $table, %opt) = @_;
	my ($col, $val, $args) = $opt{bias} ? (', b real', ', 0', ", 'b'") : ('', '', ", NULL");
	$args .= ", '$opt{train_prior}'" if defined $opt{train_prior};
	$args = '' if $args eq ', NULL';
	return qq{
	CREATE TABLE $table (id int PRIMARY KEY, e embedding$col);
	INSERT INTO $table VALUES (1, '[1,0]'$val), (2, '[0,1]'$val), (3, '[1,1]'$val);
	SELECT fct_create_label_set('$set', '$table', 'id', 'e'$args);
};
}

# Models v1 (4 dimensions, 2 of side-information) and v2 (3, 2) and a linear transformation with
# integer weights: on integer data every path of an upgrade gives exact results, so a test can
# compare a migrated row with the value it expects.
sub fct_integer_upgrade_sql
{
	return fct_models_sql([ 'v1', 4, 2 ], [ 'v2', 3, 2 ])
	  . fct_linear_sql('v1', 'v2', [ [ 1, 0, 0, 0, 0, 0 ], [ 0, 1, 1, 0, 0, 0 ], [ 0, 0, 0, 1, 1, 1 ] ]);
}

# TABLE t (id int PRIMARY KEY, e embedding, orig embedding) with ids 1 .. $rows of integer data in
# model v1 (fct_integer_upgrade_sql's), orig a copy of e: a migrated row must equal
# fct_upgrade(orig, 'v2') exactly.
#   columns => SQL   more column definitions (", version int NOT NULL DEFAULT 0")
#   slow => S        a BEFORE UPDATE trigger that sleeps S seconds a row, so that a migration of
#                    a few thousand rows lasts long enough to be stopped in the middle
sub fct_integer_rows_sql
{
	my ($rows, %opt) = @_;
	my $columns = $opt{columns} // '';
	my $sql = qq{
CREATE TABLE t (id int PRIMARY KEY, e embedding, orig embedding$columns);
INSERT INTO t (id, e) SELECT g, fct_embedding(ARRAY[g, g % 13, g % 7, 1]::real[], ARRAY[g % 3, 2]::real[], 'v1')
	FROM generate_series(1, $rows) g;
UPDATE t SET orig = e;
};
	$sql .= qq{CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM pg_sleep($opt{slow});
	RETURN NEW;
END \$\$;
CREATE TRIGGER slow BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION slow();
} if $opt{slow};
	return $sql;
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

# The rows a migration test's writers insert into t while it migrates: fct_inserts_sql creates the
# sequence of their ids (from 1000001, above the table's) and TABLE inserted, which records each id;
# fct_insert_script($model) is the pgbench script of such a writer (one row of $model a
# transaction, orig = e).
sub fct_inserts_sql
{
	return qq{
CREATE SEQUENCE t_new_id START 1000001;
CREATE TABLE inserted (id int PRIMARY KEY);
};
}

sub fct_insert_script
{
	my ($model) = @_;
	return qq{
WITH n AS (SELECT nextval('t_new_id')::int AS id),
     i AS (INSERT INTO inserted SELECT id FROM n RETURNING id)
INSERT INTO t (id, e, orig)
	SELECT id, fct_embedding(ARRAY[id % 1000, 3, 3, 1]::real[], ARRAY[0, 1]::real[], '$model'),
	           fct_embedding(ARRAY[id % 1000, 3, 3, 1]::real[], ARRAY[0, 1]::real[], '$model')
	FROM i;
};
}

# After a migration of t (the $rows rows of fct_integer_rows_sql or the like, orig holding each
# row's last written value) to $model while writers wrote and inserted (fct_insert_script): every
# row holds the upgrade of its last write, every inserted row is there.  Three assertions; returns
# how many rows were inserted.
sub fct_check_written_rows
{
	my ($node, $what, $model, $rows) = @_;
	my $res = $node->safe_psql('postgres', qq{
		SELECT count(*) FILTER (WHERE e = fct_upgrade(orig, '$model') AND fct_model(e) = '$model'),
		       count(*),
		       (SELECT count(*) FROM inserted),
		       (SELECT count(*) FROM inserted i WHERE NOT EXISTS (SELECT FROM t WHERE t.id = i.id))
		FROM t});
	my ($right, $n, $ins, $missing) = split /\|/, $res;
	is($right, $n, "$what: every row holds the upgrade of its last write, in $model ($n rows)");
	is($n, $rows + $ins, "$what: every inserted row is there ($ins inserted)");
	is($missing, '0', "$what: no inserted row lost");
	return $ins;
}

# Waits until the queued migration $job has left the states queued and running (dies saying
# "$what: the queued migration did not finish" when the harness's poll gives up) and returns
# "state:last_error" (last_error empty when there is none).
sub fct_wait_migration
{
	my ($node, $job, $what) = @_;
	$node->poll_query_until('postgres',
		"SELECT state NOT IN ('queued', 'running') FROM fct_migrations WHERE id = $job")
	  or die "$what: the queued migration did not finish";
	return $node->safe_psql('postgres',
		"SELECT state || ':' || coalesce(last_error, '') FROM fct_migrations WHERE id = $job");
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
