-- Describes every object of the fct extension in the current database, one fact per line, sorted, with
-- no OIDs and nothing that depends on the session's settings: two databases hold the same extension
-- exactly when this prints the same lines.  test/t/095_version_catalog.pl compares a fresh
-- CREATE EXTENSION fct with each older version followed by ALTER EXTENSION fct UPDATE.
--
--   psql -X -At -f test/extension_objects.sql DBNAME
--
-- Covered: the extension's members (functions and aggregates with their whole definition, types, casts,
-- operators, operator classes and families with their operators and support functions, access methods,
-- tables, views, sequences, schemas, event triggers), the columns, defaults, constraints, indexes,
-- triggers, policies and rules of its tables, every comment on any of these, privileges (current and
-- initial, pg_init_privs), owners, and the extension's configuration tables (pg_extension_config_dump).

-- Fixed settings, so that the text below does not depend on the caller's: every name comes out
-- schema-qualified, every number and date in one form.
SET search_path = pg_catalog;
SET extra_float_digits = 3;
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = postgres;
SET bytea_output = hex;
SET lc_messages = 'C';
SET standard_conforming_strings = on;
SET quote_all_identifiers = off;

WITH ext AS (
	SELECT oid, extname, extversion, extrelocatable, extnamespace, extconfig, extcondition
	FROM pg_extension WHERE extname = 'fct'
),
member AS (
	SELECT d.classid, d.objid, d.objsubid
	FROM pg_depend d, ext
	WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
member_rel AS (
	SELECT c.* FROM pg_class c JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
),
-- Objects that belong to a member table without being members themselves: its indexes, constraints,
-- triggers, policies and rules (and the table itself), for comments and privileges below.
owned AS (
	SELECT classid, objid, objsubid FROM member
	UNION SELECT 'pg_class'::regclass, i.indexrelid, 0 FROM pg_index i JOIN member_rel r ON i.indrelid = r.oid
	UNION SELECT 'pg_constraint'::regclass, k.oid, 0 FROM pg_constraint k JOIN member_rel r ON k.conrelid = r.oid
	UNION SELECT 'pg_trigger'::regclass, t.oid, 0 FROM pg_trigger t JOIN member_rel r ON t.tgrelid = r.oid
	UNION SELECT 'pg_policy'::regclass, p.oid, 0 FROM pg_policy p JOIN member_rel r ON p.polrelid = r.oid
	UNION SELECT 'pg_rewrite'::regclass, w.oid, 0 FROM pg_rewrite w JOIN member_rel r ON w.ev_class = r.oid
	UNION SELECT 'pg_constraint'::regclass, k.oid, 0
		FROM pg_constraint k JOIN member m ON m.classid = 'pg_type'::regclass AND k.contypid = m.objid
),
fact(line) AS (
	-- the extension itself
	SELECT format('extension fct: version %s, relocatable %s, schema %s',
				  extversion, extrelocatable, extnamespace::regnamespace) FROM ext
	UNION ALL
	SELECT format('extension fct: configuration table %s, condition %L', c.tbl::regclass, c.cond)
	FROM ext, unnest(ext.extconfig, ext.extcondition) AS c(tbl, cond)

	-- every member, by its description
	UNION ALL
	SELECT 'member: ' || pg_describe_object(classid, objid, objsubid) FROM member

	-- functions, procedures, aggregates: the whole definition (body, volatility, strictness,
	-- parallel safety, cost, rows, SET, SECURITY DEFINER, support function, defaults)
	UNION ALL
	SELECT format('function %s: %s', p.oid::regprocedure,
				  replace(pg_get_functiondef(p.oid), E'\n', '\n'))
	FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
	WHERE p.prokind <> 'a'
	UNION ALL
	SELECT format('aggregate %s: kind %s, direct args %s, transfn %s, finalfn %s, combinefn %s, '
				  'serialfn %s, deserialfn %s, mtransfn %s, minvtransfn %s, mfinalfn %s, finalextra %s, '
				  'mfinalextra %s, finalmodify %s, mfinalmodify %s, sortop %s, transtype %s, '
				  'transspace %s, mtranstype %s, mtransspace %s, initval %L, minitval %L, '
				  'strict %s, parallel %s, returns %s',
				  p.oid::regprocedure, a.aggkind, a.aggnumdirectargs, a.aggtransfn::regprocedure,
				  a.aggfinalfn::regprocedure, a.aggcombinefn::regprocedure,
				  a.aggserialfn::regprocedure, a.aggdeserialfn::regprocedure,
				  a.aggmtransfn::regprocedure, a.aggminvtransfn::regprocedure,
				  a.aggmfinalfn::regprocedure, a.aggfinalextra, a.aggmfinalextra, a.aggfinalmodify,
				  a.aggmfinalmodify, a.aggsortop::regoperator, a.aggtranstype::regtype,
				  a.aggtransspace, a.aggmtranstype::regtype, a.aggmtransspace, a.agginitval,
				  a.aggminitval, p.proisstrict, p.proparallel, p.prorettype::regtype)
	FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
	JOIN pg_aggregate a ON a.aggfnoid = p.oid
	UNION ALL
	SELECT format('function %s: owner %s, acl %s', p.oid::regprocedure,
				  pg_get_userbyid(p.proowner), p.proacl)
	FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid

	-- types (base, domain, enum, composite, range) and their array types
	UNION ALL
	SELECT format('type %s: type %s, category %s, preferred %s, len %s, byval %s, align %s, storage %s, '
				  'delim %L, input %s, output %s, receive %s, send %s, typmod_in %s, typmod_out %s, '
				  'analyze %s, subscript %s, element %s, array %s, base %s, typmod %s, ndims %s, '
				  'notnull %s, collation %s, default %L, relation %s, owner %s, acl %s',
				  t.oid::regtype, t.typtype, t.typcategory, t.typispreferred, t.typlen, t.typbyval,
				  t.typalign, t.typstorage, t.typdelim, t.typinput::regprocedure,
				  t.typoutput::regprocedure, t.typreceive::regprocedure, t.typsend::regprocedure,
				  t.typmodin::regprocedure, t.typmodout::regprocedure, t.typanalyze::regprocedure,
				  t.typsubscript::regprocedure, t.typelem::regtype, t.typarray::regtype,
				  t.typbasetype::regtype, t.typtypmod, t.typndims, t.typnotnull,
				  (SELECT collname FROM pg_collation WHERE oid = t.typcollation), t.typdefault,
				  t.typrelid::regclass, pg_get_userbyid(t.typowner), t.typacl)
	FROM pg_type t JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
	UNION ALL
	SELECT format('type %s: enum label %s = %L', e.enumtypid::regtype, e.enumsortorder, e.enumlabel)
	FROM pg_enum e JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = e.enumtypid
	UNION ALL
	SELECT format('type %s: constraint %s %s', k.contypid::regtype, k.conname, pg_get_constraintdef(k.oid))
	FROM pg_constraint k JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = k.contypid
	UNION ALL
	SELECT format('type %s: range subtype %s, opclass %s, canonical %s, diff %s',
				  r.rngtypid::regtype, r.rngsubtype::regtype,
				  (SELECT opcname FROM pg_opclass WHERE oid = r.rngsubopc),
				  r.rngcanonical::regprocedure, r.rngsubdiff::regprocedure)
	FROM pg_range r JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = r.rngtypid

	-- casts
	UNION ALL
	SELECT format('cast (%s AS %s): function %s, context %s, method %s',
				  c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure,
				  c.castcontext, c.castmethod)
	FROM pg_cast c JOIN member m ON m.classid = 'pg_cast'::regclass AND m.objid = c.oid

	-- operators
	UNION ALL
	SELECT format('operator %s: kind %s, result %s, function %s, commutator %s, negator %s, '
				  'restrict %s, join %s, merges %s, hashes %s, owner %s',
				  o.oid::regoperator, o.oprkind, o.oprresult::regtype, o.oprcode::regprocedure,
				  o.oprcom::regoperator, o.oprnegate::regoperator, o.oprrest::regprocedure,
				  o.oprjoin::regprocedure, o.oprcanmerge, o.oprcanhash, pg_get_userbyid(o.oprowner))
	FROM pg_operator o JOIN member m ON m.classid = 'pg_operator'::regclass AND m.objid = o.oid

	-- operator families with every operator and support function in them, and operator classes
	UNION ALL
	SELECT format('operator family %s using %s: owner %s', f.opfname, am.amname, pg_get_userbyid(f.opfowner))
	FROM pg_opfamily f JOIN pg_am am ON am.oid = f.opfmethod
	JOIN member m ON m.classid = 'pg_opfamily'::regclass AND m.objid = f.oid
	UNION ALL
	SELECT format('operator family %s using %s: operator %s (%s, %s) %s, purpose %s, sort family %s',
				  f.opfname, am.amname, o.amopstrategy, o.amoplefttype::regtype, o.amoprighttype::regtype,
				  o.amopopr::regoperator, o.amoppurpose,
				  (SELECT opfname FROM pg_opfamily WHERE oid = o.amopsortfamily))
	FROM pg_amop o JOIN pg_opfamily f ON f.oid = o.amopfamily JOIN pg_am am ON am.oid = f.opfmethod
	JOIN member m ON m.classid = 'pg_opfamily'::regclass AND m.objid = f.oid
	UNION ALL
	SELECT format('operator family %s using %s: function %s (%s, %s) %s',
				  f.opfname, am.amname, p.amprocnum, p.amproclefttype::regtype,
				  p.amprocrighttype::regtype, p.amproc::regprocedure)
	FROM pg_amproc p JOIN pg_opfamily f ON f.oid = p.amprocfamily JOIN pg_am am ON am.oid = f.opfmethod
	JOIN member m ON m.classid = 'pg_opfamily'::regclass AND m.objid = f.oid
	UNION ALL
	SELECT format('operator class %s using %s: family %s, for type %s, default %s, storage %s, owner %s',
				  c.opcname, am.amname, f.opfname, c.opcintype::regtype, c.opcdefault,
				  c.opckeytype::regtype, pg_get_userbyid(c.opcowner))
	FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod JOIN pg_opfamily f ON f.oid = c.opcfamily
	JOIN member m ON m.classid = 'pg_opclass'::regclass AND m.objid = c.oid

	-- access methods
	UNION ALL
	SELECT format('access method %s: type %s, handler %s', a.amname, a.amtype, a.amhandler::regprocedure)
	FROM pg_am a JOIN member m ON m.classid = 'pg_am'::regclass AND m.objid = a.oid

	-- schemas
	UNION ALL
	SELECT format('schema %s: owner %s, acl %s', n.nspname, pg_get_userbyid(n.nspowner), n.nspacl)
	FROM pg_namespace n JOIN member m ON m.classid = 'pg_namespace'::regclass AND m.objid = n.oid

	-- event triggers
	UNION ALL
	SELECT format('event trigger %s: event %s, function %s, tags %s, enabled %s',
				  e.evtname, e.evtevent, e.evtfoid::regprocedure, e.evttags, e.evtenabled)
	FROM pg_event_trigger e JOIN member m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid

	-- tables, views, sequences: the relation, its columns in order, defaults, constraints, indexes,
	-- triggers, policies, rules
	UNION ALL
	SELECT format('relation %s: kind %s, persistence %s, options %s, row security %s/%s, '
				  'replica identity %s, partitioned by %s, owner %s, acl %s',
				  r.oid::regclass, r.relkind, r.relpersistence, r.reloptions, r.relrowsecurity,
				  r.relforcerowsecurity, r.relreplident, pg_get_partkeydef(r.oid),
				  pg_get_userbyid(r.relowner), r.relacl)
	FROM member_rel r
	UNION ALL
	SELECT format('relation %s: column %s %s %s, not null %s, default %s, generated %L, identity %L, '
				  'collation %s, storage %s, compression %L, statistics %s, options %s, acl %s',
				  r.oid::regclass,
				  row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum),
				  quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
				  pg_get_expr(d.adbin, d.adrelid), a.attgenerated, a.attidentity,
				  (SELECT collname FROM pg_collation WHERE oid = a.attcollation), a.attstorage,
				  a.attcompression, a.attstattarget,
				  -- pg_attver=N: a per-database counter this server build keeps among the options
				  (SELECT array_agg(o ORDER BY o) FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'),
				  a.attacl)
	FROM member_rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
	UNION ALL
	SELECT format('relation %s: constraint %s %s, deferrable %s/%s, validated %s',
				  r.oid::regclass, quote_ident(k.conname), pg_get_constraintdef(k.oid),
				  k.condeferrable, k.condeferred, k.convalidated)
	FROM member_rel r JOIN pg_constraint k ON k.conrelid = r.oid
	UNION ALL
	SELECT format('relation %s: index %s, options %s%s', r.oid::regclass, pg_get_indexdef(i.indexrelid),
				  c.reloptions, CASE WHEN i.indisclustered THEN ', clustered' ELSE '' END)
	FROM member_rel r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class c ON c.oid = i.indexrelid
	UNION ALL
	SELECT format('relation %s: trigger %s, enabled %s', r.oid::regclass,
				  pg_get_triggerdef(t.oid), t.tgenabled)
	FROM member_rel r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
	UNION ALL
	SELECT format('relation %s: policy %s, command %s, permissive %s, roles %s, using %s, check %s',
				  r.oid::regclass, quote_ident(p.polname), p.polcmd, p.polpermissive,
				  (SELECT array_agg(CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END
									ORDER BY 1) FROM unnest(p.polroles) x),
				  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
	FROM member_rel r JOIN pg_policy p ON p.polrelid = r.oid
	UNION ALL
	SELECT format('relation %s: view %s', r.oid::regclass,
				  replace(pg_get_viewdef(r.oid), E'\n', '\n'))
	FROM member_rel r WHERE r.relkind IN ('v', 'm')
	UNION ALL
	SELECT format('relation %s: rule %s', r.oid::regclass, replace(pg_get_ruledef(w.oid), E'\n', '\n'))
	FROM member_rel r JOIN pg_rewrite w ON w.ev_class = r.oid AND w.rulename <> '_RETURN'
	UNION ALL
	SELECT format('relation %s: sequence of %s, start %s, increment %s, min %s, max %s, cache %s, cycle %s',
				  r.oid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
				  s.seqcache, s.seqcycle)
	FROM member_rel r JOIN pg_sequence s ON s.seqrelid = r.oid

	-- comments on every object above, columns included
	UNION ALL
	SELECT format('comment on %s: %L', pg_describe_object(o.classid, o.objid, d.objsubid), d.description)
	FROM owned o JOIN pg_description d ON d.classoid = o.classid AND d.objoid = o.objid
	WHERE o.objsubid = 0 OR d.objsubid = o.objsubid

	-- the initial privileges recorded for the extension's objects (what pg_dump compares against)
	UNION ALL
	SELECT format('initial privileges of %s: %s %s', pg_describe_object(i.classoid, i.objoid, i.objsubid),
				  i.privtype, i.initprivs)
	FROM pg_init_privs i JOIN owned o ON o.classid = i.classoid AND o.objid = i.objoid
	WHERE o.objsubid = 0 OR i.objsubid = o.objsubid
)
SELECT line FROM fact ORDER BY line COLLATE "C";
