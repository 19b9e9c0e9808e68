-- Every function that reads a label set checks, on every call, that the
-- current role may read the label table: a cache warmed by a role that may
-- must not answer one that may not (SET ROLE, SECURITY DEFINER, REVOKE).
CREATE ROLE regress_labels_privileges_r;
CREATE TABLE labels_privileges_t (id int PRIMARY KEY, e embedding, b real, secret text);
INSERT INTO labels_privileges_t VALUES (1, '[1,0]', 0, 'x'), (2, '[0,1]', 0, 'y'), (3, '[1,1]', 0.5, 'z');
SELECT fct_create_label_set('labels_privileges_s', 'labels_privileges_t', 'id', 'e', bias_col => 'b');
CREATE TABLE labels_privileges_q (id int, q embedding);
INSERT INTO labels_privileges_q VALUES (1, '[1,2]'), (2, '[2,1]');
GRANT SELECT ON labels_privileges_q TO regress_labels_privileges_r;

-- The superuser warms this session's cache (matrix and catalog part).
SELECT label FROM fct_top_labels('labels_privileges_s', '[1,2]', 1);
SELECT count(*) FROM fct_top_labels_batch('labels_privileges_s', 'SELECT id, q FROM labels_privileges_q', 1);
SELECT array_length(fct_estimate_prior_em('labels_privileges_s', 'SELECT q FROM labels_privileges_q'), 1);

-- A role that cannot read the label table gets 42501 from each of them,
-- from the warm cache as a fresh session would.
SET ROLE regress_labels_privileges_r;
SELECT test_error($$SELECT * FROM fct_top_labels('labels_privileges_s', '[1,2]', 1)$$);
SELECT test_error($$SELECT * FROM fct_top_labels_batch('labels_privileges_s', 'SELECT id, q FROM labels_privileges_q', 1)$$);
SELECT test_error($$SELECT fct_estimate_prior_em('labels_privileges_s', 'SELECT q FROM labels_privileges_q')$$);
SELECT test_error($$SELECT * FROM _fct_label_set_scan('labels_privileges_s')$$);
SELECT test_error($$SELECT fct_predict_prior('labels_privileges_s', '{0.5,0.5,0.5}')$$);
RESET ROLE;

-- SELECT on the columns the set reads (id, embedding, bias) is enough;
-- missing any one of them is not.
GRANT SELECT (id, e) ON labels_privileges_t TO regress_labels_privileges_r;
SET ROLE regress_labels_privileges_r;
SELECT test_error($$SELECT * FROM fct_top_labels('labels_privileges_s', '[1,2]', 1)$$);
RESET ROLE;
GRANT SELECT (b) ON labels_privileges_t TO regress_labels_privileges_r;
SET ROLE regress_labels_privileges_r;
SELECT label FROM fct_top_labels('labels_privileges_s', '[1,2]', 1);
SELECT count(*) FROM fct_top_labels_batch('labels_privileges_s', 'SELECT id, q FROM labels_privileges_q', 1);
SELECT array_length(fct_estimate_prior_em('labels_privileges_s', 'SELECT q FROM labels_privileges_q'), 1);
RESET ROLE;

-- A REVOKE is seen by the next call of the same session.
REVOKE SELECT (b) ON labels_privileges_t FROM regress_labels_privileges_r;
SET ROLE regress_labels_privileges_r;
SELECT test_error($$SELECT * FROM fct_top_labels('labels_privileges_s', '[1,2]', 1)$$);
RESET ROLE;

-- The index path (an lsh index on the labels) checks the same way.
CREATE INDEX ON labels_privileges_t USING lsh (e embedding_ip_ops);
SET fct.label_search = index;
SELECT label FROM fct_top_labels('labels_privileges_s', '[1,2]', 1);
SET ROLE regress_labels_privileges_r;
SELECT test_error($$SELECT * FROM fct_top_labels('labels_privileges_s', '[1,2]', 1)$$);
RESET ROLE;
RESET fct.label_search;

-- A SECURITY DEFINER function of a role that may read the table answers for
-- its callers: the check is on the current user, as SQL's own.
CREATE FUNCTION labels_privileges_definer(q embedding) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = public
AS $$ SELECT label FROM fct_top_labels('labels_privileges_s', q, 1) $$;
GRANT EXECUTE ON FUNCTION labels_privileges_definer(embedding) TO regress_labels_privileges_r;
SET ROLE regress_labels_privileges_r;
SELECT labels_privileges_definer('[1,2]');
RESET ROLE;

SELECT fct_drop_label_set('labels_privileges_s');
DROP FUNCTION labels_privileges_definer(embedding);
DROP TABLE labels_privileges_t, labels_privileges_q;
DROP ROLE regress_labels_privileges_r;
