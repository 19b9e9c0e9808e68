-- The extension installs at the version the control file names, and its library loads.
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'fct';
-- settings set before the library loads are placeholders: one that names a
-- setting takes effect when it loads, one that names none is dropped with a
-- warning
SET fct.lsh_probes = 3;
SET fct.lsh_probe = 3;
LOAD 'fct';
SHOW fct.lsh_probes;
SELECT test_error($$SHOW fct.lsh_probe$$);
-- the fct. prefix is reserved once the library is loaded: a misspelt setting
-- is an error (42602), not a placeholder that changes nothing
SELECT test_error($$SET fct.lsh_probe = 4$$);
SELECT test_error($$SET fct.lsh_probes = 4$$);
RESET fct.lsh_probes;
