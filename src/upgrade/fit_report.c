/*
 * fit_report.c
 *	  What a fit reports: its progress while it runs, for other sessions
 *	  (src/progress/, the view fct_progress), and its numbers as JSON in the
 *	  metrics.  Apart from fit.c so that the files fit.c calls (reading
 *	  pairs, training) report through it without calling fit.c back.
 */
#include "postgres.h"

#include <math.h>

#include "model/model.h"
#include "progress/progress.h"
#include "upgrade/fit.h"

/* "from -> to" of the fit under way, for its progress reports */
static char fit_target[2 * FCT_MODEL_NAME_MAX + 8];

void
fit_progress_begin(const char *from_name, const char *to_name)
{
	snprintf(fit_target, sizeof(fit_target), "%s -> %s", from_name, to_name);
}

void
fit_progress(const char *phase, int64 done, int64 total, const char *extra)
{
	progress_report("fct_fit_transformation", fit_target, phase, done, total, extra);
}

void
fit_progress_end(void)
{
	progress_end();
}

void
fit_append_double(StringInfo s, double d)
{
	if (isnan(d) || isinf(d))
		appendStringInfoString(s, "null");
	else
		appendStringInfo(s, "%.17g", d);
}
