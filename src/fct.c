/*
 * fct.c
 *	  Module initialisation: the one place where the library meets the server
 *	  at load time.  Each component registers its own GUCs, caches and workers
 *	  through the *_init function its header declares; this file only calls them.
 */
#include "postgres.h"

#include "fmgr.h"

#include "kernels/variant.h"
#include "labels/labels.h"
#include "lsh/lsh.h"
#include "migrate/migrate.h"
#include "model/model.h"
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
	migrate_init();
}
