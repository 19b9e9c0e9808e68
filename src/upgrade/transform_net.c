/*
 * transform_net.c
 *	  A transformation's shape: the checks that its layers chain up and fit
 *	  its two models, and the one-line summary of its architecture.
 *
 * Every net goes through net_validate whatever its origin (a jsonb spec, a
 * fit built in C, weights read back from the catalog), so that one set of
 * messages names the layer and both shapes, and the arithmetic
 * (transform_apply.c) can trust old_out, side_out and max_width.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "model/model.h"
#include "upgrade/transform_internal.h"

static const char *
layer_name(const TransformNet *net, int i)
{
	if (i < net->n_old)
		return psprintf("old[%d]", i);
	i -= net->n_old;
	if (i < net->n_side)
		return psprintf("side[%d]", i);
	return psprintf("mixer[%d]", i - net->n_side);
}

/*
 * Check that a net's layers chain up and fit both models; fill old_out,
 * side_out and max_width.  Errors name the layer and both shapes.  Used for
 * parsed specs, for nets built in C (fit.c) and for weights read back from
 * the catalog (where a mismatch means corruption, but the message is the
 * same).
 */
void
net_validate(TransformNet *net)
{
	const FctModel *from = model_by_id(net->from_model);
	const FctModel *to = model_by_id(net->to_model);
	int			total;
	int			i;
	int			max_width;

	if (net->old_dim != from->dim || net->side_dim != from->side_dim ||
		net->new_dim != to->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("transformation from \"%s\" to \"%s\" does not match the models' dimensions",
						from->name, to->name),
				 errdetail("It maps %d + %d side dimensions to %d; the models have %d + %d and %d.",
						   net->old_dim, net->side_dim, net->new_dim,
						   from->dim, from->side_dim, to->dim)));
	if (net->n_mixer < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transformation spec needs at least one mixer layer"),
				 errhint("The smallest spec is {\"mixer\": [{\"weight\": W}]}, W of shape %d x %d.",
						 to->dim, from->dim + (net->use_side ? from->side_dim : 0))));
	if (net->n_side > 0 && !net->use_side)
		elog(ERROR, "transformation has side layers but does not use the side-information");
	if (net->n_side > 0 && from->side_dim == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transformation spec has a side branch, but model \"%s\" has no side-information",
						from->name),
				 errhint("Leave \"side\" out, or set it to null.")));

	/* The widths entering the mixer. */
	net->old_out = net->n_old > 0 ? net->layers[net->n_old - 1].out_dim : from->dim;
	if (!net->use_side)
		net->side_out = 0;
	else if (net->n_side > 0)
		net->side_out = net->layers[net->n_old + net->n_side - 1].out_dim;
	else
		net->side_out = from->side_dim;

	max_width = Max(Max(from->dim, from->side_dim), to->dim);
	max_width = Max(max_width, net->old_out + net->side_out);
	total = net->n_old + net->n_side + net->n_mixer;
	for (i = 0; i < total; i++)
	{
		TransformLayer *l = &net->layers[i];
		int			expected_in;
		const char *why;

		if (i == 0 && net->n_old > 0)
		{
			expected_in = from->dim;
			why = psprintf("the old branch starts from model \"%s\"'s vector of dimension %d",
						   from->name, from->dim);
		}
		else if (i == net->n_old && net->n_side > 0)
		{
			expected_in = from->side_dim;
			why = psprintf("the side branch starts from model \"%s\"'s side-information of dimension %d",
						   from->name, from->side_dim);
		}
		else if (i == net->n_old + net->n_side)
		{
			expected_in = net->old_out + net->side_out;
			if (net->use_side)
				why = psprintf("the mixer's input is the old branch's %d outputs and the side branch's %d",
							   net->old_out, net->side_out);
			else
				why = psprintf("the mixer's input is the old branch's %d outputs (the side-information is not used)",
							   net->old_out);
		}
		else
		{
			expected_in = net->layers[i - 1].out_dim;
			why = psprintf("it follows layer %s with %d outputs",
						   layer_name(net, i - 1), net->layers[i - 1].out_dim);
		}

		if (l->in_dim != expected_in)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("layer %s of the transformation spec has %d inputs, expected %d",
							layer_name(net, i), l->in_dim, expected_in),
					 errdetail("Its weight is %d x %d (out x in); %s.",
							   l->out_dim, l->in_dim, why)));
		if (l->out_dim < 1 || l->out_dim > TRANSFORM_MAX_WIDTH)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("layer %s of the transformation spec has %d outputs, the limit is %d",
							layer_name(net, i), l->out_dim, TRANSFORM_MAX_WIDTH)));
		max_width = Max(max_width, Max(l->in_dim, l->out_dim));
	}

	if (net->layers[total - 1].out_dim != to->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("layer %s of the transformation spec has %d outputs, expected %d",
						layer_name(net, total - 1), net->layers[total - 1].out_dim, to->dim),
				 errdetail("Its weight is %d x %d (out x in); the mixer's last layer produces model \"%s\"'s vector of dimension %d.",
						   net->layers[total - 1].out_dim, net->layers[total - 1].in_dim,
						   to->name, to->dim)));
	net->max_width = max_width;
}

char *
net_architecture(const TransformNet *net)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	appendStringInfo(&s, "old %d", net->old_dim);
	for (i = 0; i < net->n_old; i++)
		appendStringInfo(&s, "->%d", net->layers[i].out_dim);
	if (!net->use_side)
		appendStringInfoString(&s, " | side unused");
	else
	{
		appendStringInfo(&s, " | side %d", net->side_dim);
		for (i = net->n_old; i < net->n_old + net->n_side; i++)
			appendStringInfo(&s, "->%d", net->layers[i].out_dim);
	}
	appendStringInfo(&s, " | mixer %d", net->old_out + net->side_out);
	for (i = net->n_old + net->n_side; i < net->n_old + net->n_side + net->n_mixer; i++)
		appendStringInfo(&s, "->%d", net->layers[i].out_dim);
	return s.data;
}
