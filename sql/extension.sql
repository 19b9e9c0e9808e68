-- The extension installs at the version the control file names, and its library loads.
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'fct';
LOAD 'fct';
