/*
 * labels.h
 *	  Label sets, label look-ups and label-prior correction.  Calls go one
 *	  way, top to bottom (README.md says what must stay true):
 *
 *	    lookup.c     fct_top_labels, fct_top_labels_batch, fct_label_search_path
 *	    prior_em.c   fct_estimate_prior_em (EM over the scores)
 *	    adapter.c    fct_fit_prior_adapter, fct_predict_prior (a small MLP)
 *	    score.c      top k, softmax with the prior correction, scoring a query's rows
 *	    labelset.c   the label set catalog and its per-backend cache, the GUCs
 *	    prior.c      a prior as a vector: validation, floor, real[] out
 *
 *	  lookup.c, prior_em.c and adapter.c never call each other.
 *
 * A label set is a table of labels (id, embedding, optional bias) numbered
 * 0..C-1 by fct_label_index (see sql/install/80_labels.sql).  Scores are
 * <label embedding, q> + bias; probabilities are the softmax of the scores
 * over the candidate labels, and the prior correction adds
 * log p_pred(y) - log p_train(y) to each label's score before the softmax:
 * p(y|x) proportional to p_model(y|x) / p_train(y) * p_pred(y).
 */
#ifndef FCT_LABELS_H
#define FCT_LABELS_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/array.h"

#define FCT_LABEL_SET_NAME_MAX	63

/* How fct_top_labels finds its candidates (GUC fct.label_search). */
typedef enum LabelSearch
{
	LABEL_SEARCH_AUTO,			/* the faster of the two, measured: see lookup.c */
	LABEL_SEARCH_EXACT,			/* always score every label */
	LABEL_SEARCH_INDEX			/* always ORDER BY emb <#> q LIMIT candidates */
} LabelSearch;

extern int	fct_label_candidates;
extern int	fct_label_search;
extern bool fct_label_cache;

/*
 * A label set as cached in a backend.  The catalog part (priors, columns) is
 * re-read when fct_label_sets changes; the table part (lsh plan, label ids,
 * label matrix) when the label table changes or the labels were renumbered.
 * Invalidation only clears the valid flags; memory is released by the next
 * labelset_get on an unpinned entry, so that a running call keeps its
 * pointers even when an invalidation arrives in the middle of it.
 */
typedef struct LabelSet
{
	char		name[FCT_LABEL_SET_NAME_MAX + 1];	/* hash key */
	int			pins;			/* calls using the entry right now */
	bool		catalog_valid;
	bool		table_valid;
	MemoryContext catalog_cxt;
	MemoryContext table_cxt;

	/* catalog part */
	Oid			relid;
	char	   *id_col;
	char	   *embedding_col;
	char	   *bias_col;		/* NULL when the set has no bias */
	int			n_labels;		/* C */
	int			dims;			/* from the catalog; 0 when not yet scanned */
	int32		model_id;		/* FCT_NO_MODEL when the labels name none */
	int32		labels_version;
	float8	   *log_train;		/* log p_train, C entries */
	float8	   *log_adjust;		/* log p_pred - log p_train, or NULL */

	/* table part */
	int32		table_version;	/* labels_version the table part was read at */
	bool		use_index;		/* the set has an lsh index the look-ups can use */
	SPIPlanPtr	index_plan;		/* the candidate query, kept */

	/*
	 * fct.label_search = auto: the path measured faster at the first look-up
	 * after the table part was (re)read, with the settings it was measured
	 * under (auto_settings: candidates and lsh probes); LABEL_SEARCH_AUTO
	 * while not measured.
	 */
	int			auto_choice;
	float8		auto_exact_ms;
	float8		auto_index_ms;
	char		auto_settings[64];
	bool		matrix_loaded;
	int			dim;			/* dimension of the loaded label matrix */
	float4	   *matrix;			/* C x dim, row i = label index i */
	float4	   *bias;			/* C biases, or NULL */
	char	  **labels;			/* C label ids as text, by label index */
} LabelSet;

/* labelset.c */
extern void labels_init(void);

/*
 * The label set, its catalog part loaded; errors 42704 when unknown.  With
 * need_matrix, the label matrix and ids are loaded too.  The caller must pin
 * the entry (labelset_pin/labelset_unpin in PG_TRY/PG_FINALLY) if it runs SQL
 * while it uses the entry.  Runs SPI itself (connects a nested level).
 */
extern LabelSet *labelset_get(const char *name, bool need_matrix);
extern void labelset_pin(LabelSet *ls);
extern void labelset_unpin(LabelSet *ls);

/* Errors (22000) unless q may be scored against the set's labels. */
struct Embedding;
extern void labelset_check_query(LabelSet *ls, const struct Embedding *q,
								 const char *query_name);

/* score.c */

/*
 * The answer of score_softmax_topk and its working room, allocated once by
 * score_topk_init for up to n candidates keeping the k most probable, and
 * reused for every query scored with it.
 */
typedef struct ScoreTopk
{
	int			n;				/* most candidates per call */
	int			k;				/* most kept */
	float8	   *work;			/* n: the adjusted scores */
	int32	   *top;			/* min(k, n): positions of the kept candidates */
	float8	   *prob;			/* min(k, n): their probabilities */
} ScoreTopk;

extern void score_topk_init(ScoreTopk *t, int n, int k);

/*
 * Softmax over n (at most t->n) candidate labels with scores scores[] (label
 * index idx[j], or j when idx is NULL), each shifted by log_adjust[label]
 * when log_adjust is not NULL.  Writes the min(t->k, n) most probable
 * candidates (positions j, most probable first, ties by label index) to
 * t->top and their probabilities to t->prob; returns how many.
 */
extern int	score_softmax_topk(const float4 *scores, const int32 *idx, int n,
								const float8 *log_adjust, ScoreTopk *t);

/*
 * Positions of the k largest values of v[0..n-1], largest first, into top[]
 * (ties: smaller key first, the key of position j being idx[j], or j when idx
 * is NULL); returns min(k, n).
 */
extern int	score_topk(const float8 *v, const int32 *idx, int n, int k, int32 *top);

/*
 * Score every row of a query against all labels of ls (matrix loaded), a
 * block at a time: fn(arg, b, ids, S) gets b queries, their ids and their
 * scores S (b x C, row-major, bias included).  With with_ids the query returns
 * (query_id integer type, q embedding); otherwise its first embedding column
 * is used and ids count rows from 1.
 */
typedef void (*ScoreBlockFn) (void *arg, int b, const int64 *ids, const float4 *S);
extern void score_queries(LabelSet *ls, const char *queries, bool with_ids,
								 ScoreBlockFn fn, void *arg);

/* prior.c */

/*
 * Validate a prior of n entries (errors 22004 for nulls, 22023 for a wrong
 * length, a non-finite, negative or zero entry, or a sum off 1 by more than
 * FCT_PRIOR_TOLERANCE) and return it renormalised, as float8.  what names the
 * prior in messages.
 */
#define FCT_PRIOR_TOLERANCE 1e-3
extern float8 *prior_validate(ArrayType *arr, int n, const char *what);

/*
 * Make p (n entries, non-negative) a prior summing to 1 in which no entry is
 * below FCT_PRIOR_FLOOR / n before the final renormalisation: what EM and the
 * adapter return must pass prior_validate.  Unchanged (up to normalisation)
 * when no entry is below the floor.
 */
#define FCT_PRIOR_FLOOR 1e-3
extern void prior_floor(float8 *p, int n);

/* A prior (or any n float8 values) as a real[] of n entries. */
extern ArrayType *prior_array(const float8 *v, int n);

#endif							/* FCT_LABELS_H */
