-- fct 0.2.0 install script, assembled by the Makefile from sql/install/*.sql in name order.
-- Every change here needs its counterpart in sql/upgrade/0.1.0--0.2.0/ (see sql/README.md).

\echo Use "CREATE EXTENSION fct" to load this file. \quit
