-- The rows of fct_label_index, fct_label_rounds and fct_prior_adapters belong
-- to a label set: triggers keep the link (no foreign keys, so that
-- pg_restore -j may load these tables in any order), and skip the check only
-- while a dump is restored (check_function_bodies off).

CREATE TABLE labels_links_t (id int PRIMARY KEY, e embedding);
INSERT INTO labels_links_t VALUES (1, '[1,0]'), (2, '[0,1]');
SELECT fct_create_label_set('labels_links_s', 'labels_links_t', 'id', 'e');
INSERT INTO fct_label_rounds (label_set, round, accuracies, proportions)
	VALUES ('labels_links_s', 1, '{0.5,0.5}', '{0.5,0.5}');

-- A row naming no label set: 23503, as a foreign key would say.
SELECT test_error($$INSERT INTO fct_label_rounds (label_set, round, accuracies, proportions)
	VALUES ('labels_links_nope', 1, '{0.5,0.5}', '{0.5,0.5}')$$);
SELECT test_error($$INSERT INTO fct_label_index VALUES ('labels_links_nope', 0, '1')$$);
SELECT test_error($$UPDATE fct_label_rounds SET label_set = 'labels_links_nope'
	WHERE label_set = 'labels_links_s'$$);
-- A label set whose rows refer to it keeps its name.
SELECT test_error($$UPDATE fct_label_sets SET name = 'labels_links_renamed'
	WHERE name = 'labels_links_s'$$);

-- Restore mode: the rows of a dump come in any order.
SET check_function_bodies = off;
INSERT INTO fct_label_rounds (label_set, round, accuracies, proportions)
	VALUES ('labels_links_later', 1, '{0.5,0.5}', '{0.5,0.5}');
RESET check_function_bodies;
SELECT label_set, round FROM fct_label_rounds WHERE label_set LIKE 'labels_links%' ORDER BY 1, 2;
DELETE FROM fct_label_rounds WHERE label_set = 'labels_links_later';

-- Dropping a label set deletes its rows (what ON DELETE CASCADE did).
SELECT (SELECT count(*) FROM fct_label_index WHERE label_set = 'labels_links_s') AS labels,
	   (SELECT count(*) FROM fct_label_rounds WHERE label_set = 'labels_links_s') AS rounds;
SELECT fct_drop_label_set('labels_links_s');
SELECT (SELECT count(*) FROM fct_label_index WHERE label_set = 'labels_links_s') AS labels,
	   (SELECT count(*) FROM fct_label_rounds WHERE label_set = 'labels_links_s') AS rounds;

DROP TABLE labels_links_t;
