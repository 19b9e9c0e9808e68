/*
 * fit.h
 *	  Fitting a transformation inside the database (fct_fit_transformation):
 *	  the pieces' interface, internal to src/upgrade/fit*.c.
 *
 *	  fit.c			the SQL function: checks, the split, the metrics, registration
 *	  fit_options.c	the options jsonb, and the memory bound they imply
 *	  fit_pairs.c	reading the pairs query into one float matrix; the shuffle;
 *					the mean predictor's loss
 *	  fit_linear.c	closed-form ridge regression (LAPACK)
 *	  fit_mlp.c		the mlp and its training loop (layers and Adam: nn.c)
 *	  fit_report.c	what a fit reports: its progress, numbers as JSON
 *
 *	  fit.c calls the others; they call fit_report.c and nothing else here
 *	  (fit_pairs.c reads fit_options.c's memory bound), so no two call each
 *	  other.
 */
#ifndef FCT_FIT_H
#define FCT_FIT_H

#include "postgres.h"

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "model/model.h"
#include "upgrade/transform.h"

#define FIT_MIN_TRAIN		2		/* fewest training pairs accepted */
#define FIT_MAX_MIXER		8		/* most hidden layers in the mixer */
#define FIT_MAX_WIDTH		16384	/* widest hidden layer accepted */
#define FIT_FETCH			1000	/* rows per SPI fetch */

/*
 * A fit is registered only when its validation loss is below this share of
 * the loss of predicting the training mean (options.max_val_ratio), unless
 * options.force: a transformation that learned nothing would upgrade every
 * value to about the same point, silently.
 */
#define FIT_MAX_VAL_RATIO	0.9

/*
 * mlp with epochs not given: at least FIT_MIN_STEPS optimiser steps (a few
 * hundred pairs make three minibatches an epoch: 30 epochs would be 90 steps,
 * too few to move from the initial weights), at least FIT_DEFAULT_EPOCHS
 * epochs and at most FIT_MAX_AUTO_EPOCHS.
 */
#define FIT_DEFAULT_EPOCHS	30
#define FIT_MIN_STEPS		3000
#define FIT_MAX_AUTO_EPOCHS	2000

typedef enum FitMethod
{
	FIT_LINEAR,
	FIT_MLP
} FitMethod;

typedef struct FitOptions
{
	bool		use_side;
	int			epochs;
	double		lr;
	int			batch_size;
	int			old_hidden;
	int			side_hidden;
	int			n_mixer;		/* hidden layers of the mixer */
	int			mixer_hidden[FIT_MAX_MIXER];
	double		lambda;
	double		val_fraction;
	int64		seed;
	int64		max_pairs;
	bool		do_register;
	bool		epochs_auto;	/* epochs not given: chosen from the number of steps */
	int			patience;		/* mlp: epochs without a better validation loss; 0 = auto */
	double		max_val_ratio;	/* refuse unless val_loss < max_val_ratio * baseline */
	bool		force;			/* register even so */
} FitOptions;

/* The pairs, one row each: [old (dim) | side (sdim) | new (ndim)]. */
typedef struct Pairs
{
	float4	   *data;
	int64		n;
	int64		cap;
	int			dim;
	int			sdim;			/* 0 when the side-information is not used */
	int			ndim;
	int			stride;
	int			row_extra;		/* bytes held per pair besides the row (mlp's order) */
	bool		truncated;		/* max_pairs stopped the read */
} Pairs;

#define PAIR_ROW(P, i)	((P)->data + (Size) (i) * (P)->stride)

/* What fitting produced, for the spec and the metrics. */
typedef struct FitResult
{
	/* the fitted layers, in transform.h's terms (branches absent = identity) */
	bool		use_side;
	int			n_old;
	int			n_side;
	int			n_mixer;
	TransformLayer layers[FIT_MAX_MIXER + 3];
	double		train_loss;
	double		val_loss;		/* NaN when there is no validation split */
	double		baseline_val_loss;	/* predicting the training mean */
	double		seconds;		/* training time (excluding loading) */
	double		pairs_per_second;	/* training pairs through one epoch */
	double		seconds_per_epoch;
	int			epochs;
	int			best_epoch;		/* mlp: the epoch whose weights were kept (0: the last) */
	int64		n_params;
	StringInfoData history;		/* JSON arrays of per-epoch losses, or empty */
} FitResult;

/* fit_options.c */
extern void fit_parse_options(Jsonb *jb, FitMethod method, FitOptions *o);
extern Size fit_model_bytes(FitMethod method, const FitOptions *o, int dim, int sdim, int ndim);
extern Size fit_limit_bytes(void);
extern void fit_memory_error(FitMethod method, int stride_in, int64 npairs, int stride,
							 int row_extra, Size mbytes, Size limit) pg_attribute_noreturn();

/* fit_pairs.c */
extern void fit_read_pairs(const char *query, const FctModel *from, const FctModel *to,
						   FitMethod method, const FitOptions *o, Size mbytes,
						   MemoryContext fitcxt, Pairs *P);
extern void fit_shuffle_rows(Pairs *P, pg_prng_state *rng);
extern double fit_baseline_loss(const Pairs *P, int64 val_n);

/* fit_linear.c, fit_mlp.c */
extern void fit_linear(Pairs *P, int64 val_n, const FitOptions *o, FitResult *res);
extern void fit_mlp(Pairs *P, int64 val_n, const FitOptions *o, pg_prng_state *rng,
					FitResult *res);

/* fit_report.c: a double as JSON (null when not finite) */
extern void fit_append_double(StringInfo s, double d);

/*
 * fit_report.c: this fit's progress, for other sessions (src/progress/, the
 * view fct_progress); fit_progress_begin names the fit ("from -> to") first.
 */
extern void fit_progress_begin(const char *from_name, const char *to_name);
extern void fit_progress(const char *phase, int64 done, int64 total, const char *extra);
extern void fit_progress_end(void);

#endif							/* FCT_FIT_H */
