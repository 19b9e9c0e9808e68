/*
 * fit.c
 *	  Fitting a transformation inside the database: fct_fit_transformation.
 *
 * The user gives a query returning pairs (old embedding with its
 * side-information, new embedding of the same item).  The pairs are read
 * through SPI with the caller's rights (the SQL function is not SECURITY
 * DEFINER), copied into one float matrix, shuffled with a seeded generator and
 * split into a training and a validation part.  Then one of two methods fits
 * h(old, side) ~ new:
 *
 *	 linear  closed-form ridge regression on [old, side, 1] (fit_linear.c).
 *	 mlp	 the apple/ml-fct shape with small widths, trained with Adam
 *			 (fit_mlp.c, over the layers of nn.c).
 *
 * A fit whose validation loss is not clearly below the loss of predicting the
 * training mean is refused unless the caller insists (options.force).  The
 * layers are registered as they are (transform.h's
 * transform_register_net, no jsonb round trip) with origin 'fitted' and the
 * training metrics, and the metrics are returned; with {"register": false}
 * nothing is registered and the spec is returned with the metrics.
 *
 * Memory: the function holds the pairs matrix (n x (dim + side_dim + new_dim)
 * float4) plus, for linear, the normal equations ((p+1)^2 + new_dim (p+1)
 * floats, p = dim + side_dim), or, for mlp, the weights, the best ones, their
 * gradients and both Adam moments (5 floats per parameter) and the minibatch
 * buffers (fit_options.c computes it).
 * The total must stay within maintenance_work_mem; options.max_pairs caps the
 * number of pairs read (the first ones the query returns).
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "model/model.h"
#include "upgrade/fit.h"
#include "upgrade/transform.h"

/* ------------------------------------------------------------ JSON helpers */

static void
append_floats(StringInfo s, const float4 *x, int n)
{
	int			i;

	appendStringInfoChar(s, '[');
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(s, ',');
		/* 9 significant digits: a float4 reads back bit for bit */
		appendStringInfo(s, "%.9g", (double) x[i]);
	}
	appendStringInfoChar(s, ']');
}

static void
append_layer(StringInfo s, const TransformLayer *L)
{
	int			r;

	appendStringInfoString(s, "{\"weight\":[");
	for (r = 0; r < L->out_dim; r++)
	{
		if (r > 0)
			appendStringInfoChar(s, ',');
		append_floats(s, L->weight + (Size) r * L->in_dim, L->in_dim);
		CHECK_FOR_INTERRUPTS();
	}
	appendStringInfoString(s, "],\"bias\":");
	append_floats(s, L->bias, L->out_dim);
	appendStringInfo(s, ",\"activation\":\"%s\"}", L->relu ? "relu" : "none");
}

/* The spec (the import format of fct_register_transformation) as JSON text. */
static char *
spec_text(const FitResult *res)
{
	StringInfoData s;
	int			k = 0;
	int			i;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	if (res->n_old > 0)
	{
		appendStringInfoString(&s, "\"old\":[");
		for (i = 0; i < res->n_old; i++, k++)
		{
			if (i > 0)
				appendStringInfoChar(&s, ',');
			append_layer(&s, &res->layers[k]);
		}
		appendStringInfoString(&s, "],");
	}
	if (!res->use_side)
		appendStringInfoString(&s, "\"side\":null,");
	else if (res->n_side > 0)
	{
		appendStringInfoString(&s, "\"side\":[");
		for (i = 0; i < res->n_side; i++, k++)
		{
			if (i > 0)
				appendStringInfoChar(&s, ',');
			append_layer(&s, &res->layers[k]);
		}
		appendStringInfoString(&s, "],");
	}
	appendStringInfoString(&s, "\"mixer\":[");
	for (i = 0; i < res->n_mixer; i++, k++)
	{
		if (i > 0)
			appendStringInfoChar(&s, ',');
		append_layer(&s, &res->layers[k]);
	}
	appendStringInfoString(&s, "]}");
	return s.data;
}

/* ------------------------------------------------------------ entry point */

PG_FUNCTION_INFO_V1(fct_fit_transformation);
Datum
fct_fit_transformation(PG_FUNCTION_ARGS)
{
	char	   *from_name,
			   *to_name,
			   *query,
			   *method_name;
	Jsonb	   *options;
	const FctModel *fromp,
			   *top;
	FctModel	from,
				to;
	FitMethod	method;
	FitOptions	o;
	Pairs		P;
	MemoryContext fitcxt,
				oldcxt;
	pg_prng_state rng;
	int64		val_n;
	FitResult	res;
	Size		mbytes;
	char	   *extra;
	StringInfoData metrics;
	Jsonb	   *metrics_jb;
	instr_time	t0,
				t1;
	bool		learned;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("from_model, to_model, pairs_query and method must not be null")));
	from_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	to_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	query = text_to_cstring(PG_GETARG_TEXT_PP(2));
	method_name = text_to_cstring(PG_GETARG_TEXT_PP(3));
	options = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);

	if (strcmp(method_name, "linear") == 0)
		method = FIT_LINEAR;
	else if (strcmp(method_name, "mlp") == 0)
		method = FIT_MLP;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown fitting method \"%s\"", method_name),
				 errhint("The methods are \"linear\" (closed-form ridge) and \"mlp\".")));
	fit_parse_options(options, method, &o);

	/* copies: the cache entries live only until the end of the transaction */
	fromp = model_by_name(from_name);
	from = *fromp;
	top = model_by_name(to_name);
	to = *top;
	if (from.id == to.id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit a transformation from model \"%s\" to itself", from.name)));
	if (o.do_register)
	{
		/* fail before reading and training when the result could not be registered */
		transform_check_registrable(from.id, to.id);
		if (transform_path(from.id, to.id) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("a path from model \"%s\" to model \"%s\" already exists",
							from.name, to.name),
					 errhint("Transformations are immutable: register a new target model, "
							 "or pass options {\"register\": false} to fit without registering.")));
	}

	P.dim = from.dim;
	P.sdim = o.use_side ? from.side_dim : 0;
	P.ndim = to.dim;
	P.stride = P.dim + P.sdim + P.ndim;
	P.row_extra = method == FIT_MLP ? sizeof(int64) : 0;

	mbytes = fit_model_bytes(method, &o, P.dim, P.sdim, P.ndim);
	if (mbytes > fit_limit_bytes())
		fit_memory_error(method, P.dim + P.sdim, 0, P.stride, P.row_extra, mbytes,
					 fit_limit_bytes());

	fitcxt = AllocSetContextCreate(CurrentMemoryContext, "fct fit",
								   ALLOCSET_DEFAULT_SIZES);
	fit_progress_begin(from.name, to.name);
	fit_progress("reading pairs", 0, -1, NULL);
	INSTR_TIME_SET_CURRENT(t0);
	fit_read_pairs(query, &from, &to, method, &o, mbytes, fitcxt, &P);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);

	oldcxt = MemoryContextSwitchTo(fitcxt);

	/* the split: a validation share of the rows, at least one when asked for */
	val_n = 0;
	if (o.val_fraction > 0 && P.n > 0)
		val_n = Max(1, (int64) floor(P.n * o.val_fraction + 0.5));
	if (P.n - val_n < FIT_MIN_TRAIN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("too few pairs to fit a transformation: %lld", (long long) P.n),
				 errdetail("%lld go to validation (val_fraction %g), leaving %lld for "
						   "training; at least %d are needed.",
						   (long long) val_n, o.val_fraction,
						   (long long) (P.n - val_n), FIT_MIN_TRAIN),
				 errhint("Return more pairs from the query, or lower options.val_fraction.")));

	pg_prng_seed(&rng, (uint64) o.seed);
	fit_shuffle_rows(&P, &rng);
	res.baseline_val_loss = fit_baseline_loss(&P, val_n);
	if (method == FIT_LINEAR)
	{
		fit_progress("solving the normal equations", -1, -1, NULL);
		fit_linear(&P, val_n, &o, &res);
	}
	else
		fit_mlp(&P, val_n, &o, &rng, &res);

	/*
	 * A fit no better than predicting the mean is not registered unless the
	 * caller insists (without a validation split there is nothing to compare).
	 */
	learned = val_n == 0 || res.val_loss < o.max_val_ratio * res.baseline_val_loss;
	if (o.do_register && !learned && !o.force)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s fit from model \"%s\" to model \"%s\" learned nothing",
						method_name, from.name, to.name),
				 errdetail("Validation loss %g is not below %g times the loss of predicting "
						   "the training mean (%g); training loss %g, %lld training and %lld "
						   "validation pairs, %d epochs.",
						   res.val_loss, o.max_val_ratio, res.baseline_val_loss,
						   res.train_loss, (long long) (P.n - val_n), (long long) val_n,
						   res.epochs),
				 errhint("Check that each pair holds the same item in both columns; give more "
						 "pairs, try method \"linear\", or more epochs. Options {\"force\": true} "
						 "registers it anyway; {\"register\": false} returns it to inspect.")));

	/* the metrics: stored with the transformation and returned */
	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"method\":\"%s\",\"from_model\":", method_name);
	escape_json(&metrics, from.name);
	appendStringInfoString(&metrics, ",\"to_model\":");
	escape_json(&metrics, to.name);
	appendStringInfo(&metrics, ",\"use_side\":%s,\"n_pairs\":%lld,\"n_train\":%lld,"
					 "\"n_val\":%lld,\"pairs_truncated\":%s,\"n_params\":%lld,",
					 P.sdim > 0 ? "true" : "false", (long long) P.n,
					 (long long) (P.n - val_n), (long long) val_n,
					 P.truncated ? "true" : "false", (long long) res.n_params);
	appendStringInfoString(&metrics, "\"train_loss\":");
	fit_append_double(&metrics, res.train_loss);
	appendStringInfoString(&metrics, ",\"val_loss\":");
	fit_append_double(&metrics, res.val_loss);
	appendStringInfoString(&metrics, ",\"baseline_val_loss\":");
	fit_append_double(&metrics, res.baseline_val_loss);
	appendStringInfoChar(&metrics, ',');
	appendStringInfoString(&metrics, res.history.data);
	appendStringInfo(&metrics, "\"epochs\":%d,\"best_epoch\":%d,\"learned\":%s,\"seconds_loading\":",
					 res.epochs, res.best_epoch, learned ? "true" : "false");
	fit_append_double(&metrics, INSTR_TIME_GET_DOUBLE(t1));
	appendStringInfoString(&metrics, ",\"seconds_training\":");
	fit_append_double(&metrics, res.seconds);
	appendStringInfoString(&metrics, ",\"seconds_per_epoch\":");
	fit_append_double(&metrics, res.seconds_per_epoch);
	appendStringInfoString(&metrics, ",\"pairs_per_second\":");
	fit_append_double(&metrics, res.pairs_per_second);
	appendStringInfoString(&metrics, ",\"options\":{");
	if (method == FIT_LINEAR)
		appendStringInfo(&metrics, "\"lambda\":%.17g,", o.lambda);
	else
	{
		int			i;

		if (o.epochs_auto)
			appendStringInfoString(&metrics, "\"epochs\":null,");
		else
			appendStringInfo(&metrics, "\"epochs\":%d,", o.epochs);
		appendStringInfo(&metrics, "\"patience\":%d,\"lr\":%.17g,\"batch_size\":%d,"
						 "\"old_hidden\":%d,\"side_hidden\":%d,\"mixer_hidden\":[",
						 o.patience, o.lr, o.batch_size, o.old_hidden, o.side_hidden);
		for (i = 0; i < o.n_mixer; i++)
			appendStringInfo(&metrics, "%s%d", i ? "," : "", o.mixer_hidden[i]);
		appendStringInfo(&metrics, "],\"seed\":%lld,", (long long) o.seed);
	}
	appendStringInfo(&metrics, "\"use_side\":%s,\"val_fraction\":%.17g,\"max_pairs\":%lld,"
					 "\"max_val_ratio\":%.15g,\"force\":%s}}",
					 o.use_side ? "true" : "false", o.val_fraction,
					 (long long) o.max_pairs, o.max_val_ratio, o.force ? "true" : "false");

	MemoryContextSwitchTo(oldcxt);
	metrics_jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(metrics.data)));
	if (o.do_register)
	{
		/* the layers go to the catalog as they are: no jsonb round trip */
		TransformNet *net = palloc0(sizeof(TransformNet));

		fit_progress("registering", -1, -1, NULL);
		net->from_model = from.id;
		net->to_model = to.id;
		net->use_side = res.use_side;
		net->n_old = res.n_old;
		net->n_side = res.n_side;
		net->n_mixer = res.n_mixer;
		net->layers = res.layers;
		extra = psprintf("{\"transformation_id\":%d}",
						 transform_register_net(net, "fitted", metrics_jb));
	}
	else
		/* not registered: return the spec with the metrics, for inspection or export */
		extra = psprintf("{\"spec\":%s}", spec_text(&res));
	MemoryContextDelete(fitcxt);
	fit_progress_end();

	PG_RETURN_DATUM(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(metrics_jb),
										DirectFunctionCall1(jsonb_in, CStringGetDatum(extra))));
}
