/*
 * variant.c
 *	  The test-only setting fct.kernel_variant (see variant.h).  Kept apart
 *	  from the arithmetic so that the kernels link into the benchmarks without
 *	  the server's GUC machinery.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "kernels/variant.h"

int			kernel_variant = KERNEL_VARIANT_AUTO;

static const struct config_enum_entry kernel_variant_options[] = {
	{"auto", KERNEL_VARIANT_AUTO, false},
	{"scalar", KERNEL_VARIANT_SCALAR, false},
	{NULL, 0, false}
};

void
kernel_init(void)
{
	/*
	 * USERSET: both variants give the same bits (that is what the tests
	 * check), so a session that picks the slow one only hurts itself.
	 */
	DefineCustomEnumVariable("fct.kernel_variant",
							 "For tests: run the kernels' plain-loop reference instead of the vectorised code.",
							 "Both compute the same bits; 'scalar' is several times slower.",
							 &kernel_variant,
							 KERNEL_VARIANT_AUTO,
							 kernel_variant_options,
							 PGC_USERSET,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
}
