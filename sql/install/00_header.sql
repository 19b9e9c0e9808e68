-- fct 0.1.0 install script, assembled by the Makefile from sql/install/*.sql in name order.

\echo Use "CREATE EXTENSION fct" to load this file. \quit
