-- fct upgrade script from 0.1.0 to 0.2.0, assembled by the Makefile from sql/upgrade/0.1.0--0.2.0/*.sql
-- in name order.  Each file NN_name.sql carries the changes to the objects of sql/install/NN_name.sql, so
-- that ALTER EXTENSION fct UPDATE from 0.1.0 yields exactly what CREATE EXTENSION fct creates
-- (test/t/095_version_catalog.pl compares the two).

\echo Use "ALTER EXTENSION fct UPDATE TO '0.2.0'" to load this file. \quit
