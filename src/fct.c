/*
 * fct.c
 *	  Module initialisation: the one place where the library meets the server
 *	  at load time.  Each component registers its own GUCs, caches and workers
 *	  through the *_init function its header declares; this file only calls them.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "kernels/variant.h"
#include "labels/labels.h"
#include "lsh/lsh.h"
#include "migrate/migrate.h"
#include "model/model.h"
#include "upgrade/ordering.h"
#include "upgrade/transform.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	kernel_init();
	model_init();
	lsh_init();
	labels_init();
	transform_init();
	ordering_init();
	migrate_init();

	/*
	 * Every fct.* setting is defined above: reserve the prefix, so that a
	 * misspelt one (SET fct.lsh_probe = 4) is an error instead of a silent
	 * placeholder that changes nothing.  A placeholder set before the library
	 * loaded (postgresql.conf, ALTER DATABASE/ROLE SET, a SET in the session,
	 * or one that Citus propagates) that names no setting is dropped here
	 * with a warning; one that names a setting took effect in its Define*.
	 */
	MarkGUCPrefixReserved("fct");
}
