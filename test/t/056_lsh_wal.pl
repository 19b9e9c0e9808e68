# lsh index pages are WAL-logged: a streaming standby answers every ordered
# scan exactly as the primary does, after the build and after rounds of
# DELETE / VACUUM / INSERT (the shape of contrib/bloom's t/001_wal.pl).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lsh_common;

my $primary = PostgreSQL::Test::Cluster->new('lsh_primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('lsh_standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

# every row of the index, in scan order, for a few queries, probing all lists
# (so the whole index is compared) and with the default probes
my $queries = q{
SET enable_seqscan = off;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM tst ORDER BY e <#> '[1,0,0,0,0,0,0,1]' LIMIT 20) s;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM tst ORDER BY e <#> '[0,-1,0,0.5,0,0,0,0]' LIMIT 20) s;
SET fct.lsh_probes = 10000;
SELECT md5(string_agg(id::text, ',')) FROM (SELECT id FROM tst ORDER BY e <#> '[0,0,1,0,0,0,0,0]' LIMIT 100000) s;
SELECT entries || ' ' || pages FROM fct_lsh_stats('tst_lsh');
};

sub test_index_replay
{
	my ($name) = @_;
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	my $on_primary = $primary->safe_psql('postgres', $queries);
	my $on_standby = $standby->safe_psql('postgres', $queries);
	is($on_standby, $on_primary, "standby answers as the primary: $name");
	return;
}

$primary->safe_psql('postgres', 'CREATE EXTENSION fct');
$primary->safe_psql('postgres', lsh_mixture_sql('tst', 3000, 8, 20, 0.7));
$primary->safe_psql('postgres', 'CREATE INDEX tst_lsh ON tst USING lsh (e) WITH (lists = 16)');
test_index_replay('build');

my $next = 3001;
for my $round (1 .. 8)
{
	$primary->safe_psql('postgres', "DELETE FROM tst WHERE id % 9 = $round % 9 OR (id > 3000 AND id % 4 = $round % 4)");
	$primary->safe_psql('postgres', 'VACUUM tst');
	test_index_replay("vacuum $round");
	$primary->safe_psql('postgres', lsh_mixture_sql('tst', 500, 8, 20, 0.1 * $round, $next));
	$next += 500;
	test_index_replay("insert $round");
}

# an index built empty on the primary learns its shape from the first insert
$primary->safe_psql('postgres', 'CREATE TABLE tst2 (id int, e embedding); CREATE INDEX tst2_lsh ON tst2 USING lsh (e)');
$primary->safe_psql('postgres', "INSERT INTO tst2 SELECT i, '[1,2,3]' FROM generate_series(1, 1000) i");
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($standby->safe_psql('postgres', "SELECT dim, entries FROM fct_lsh_stats('tst2_lsh')"),
	'3|1000', 'standby has the first insert into an empty index');

# the standby's copy passes the consistency check too
is($standby->safe_psql('postgres', "SELECT missing || ' ' || dangling FROM fct_lsh_verify('tst_lsh')"),
	'0 0', 'standby index consistent');

$standby->stop;
$primary->stop;
done_testing();
