-- The extension's public surface stays documented and its internals stay closed (issue #15 item 4).
--
-- Rules (sql/README.md): every function of the extension has a COMMENT; a function whose name starts
-- with _fct_ is internal (its COMMENT starts with "internal") and PUBLIC may not execute it, except the
-- few that fct's own SQL calls with the caller's rights (listed below: each COMMENT says why); trigger
-- functions are internal, except fct_skip_stale, which users attach to their tables.  A new function
-- without a COMMENT, or a new internal one left executable, shows up here as a difference.
CREATE TEMP VIEW extension_surface_f AS
SELECT p.oid, p.oid::regprocedure::text AS sig, p.proname, p.prorettype,
	   obj_description(p.oid, 'pg_proc') AS comment
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid
 WHERE e.extname IN ('fct', 'fct_pgvector');

SELECT sig AS "function without a COMMENT"
  FROM extension_surface_f WHERE comment IS NULL ORDER BY 1;

SELECT sig AS "internal function whose COMMENT does not say so"
  FROM extension_surface_f WHERE proname LIKE '\_fct\_%' AND comment NOT LIKE 'internal%' ORDER BY 1;

-- the internal functions PUBLIC may execute, each for the reason its COMMENT gives
SELECT sig AS "internal, executable by PUBLIC"
  FROM extension_surface_f
 WHERE proname LIKE '\_fct\_%' AND has_function_privilege('public', oid, 'EXECUTE') ORDER BY 1;

SELECT sig AS "trigger function not named _fct_*"
  FROM extension_surface_f
 WHERE prorettype IN ('trigger'::regtype, 'event_trigger'::regtype) AND proname NOT LIKE '\_fct\_%'
 ORDER BY 1;

-- the public functions only the extension's owner (and whom it grants) may execute
SELECT sig AS "public, not executable by PUBLIC"
  FROM extension_surface_f
 WHERE proname NOT LIKE '\_fct\_%' AND NOT has_function_privilege('public', oid, 'EXECUTE') ORDER BY 1;

DROP VIEW extension_surface_f;
