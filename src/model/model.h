/*
 * model.h
 *	  The model registry (table fct_models) and its per-backend cache.
 *
 * Look-ups never query the catalog per row: entries are cached per backend and
 * the whole cache is dropped when fct_models changes (a trigger on the table
 * sends a relcache invalidation, which every backend receives at commit).
 */
#ifndef FCT_MODEL_H
#define FCT_MODEL_H

#include "postgres.h"

#define FCT_MODEL_NAME_MAX 63

/* The model id of a value that names no model (a bare '[1,2,3]' literal). */
#define FCT_NO_MODEL 0

typedef struct FctModel
{
	int32		id;
	int32		dim;
	int32		side_dim;
	char		name[FCT_MODEL_NAME_MAX + 1];
} FctModel;

/*
 * The id of the model named name (len bytes): a positive int32 that depends on
 * the name's bytes only, the same on every platform and release (it is stored
 * in every embedding and in the dumped catalogs).  fct_models.id is generated
 * from it, and the type's input uses it for a model not yet restored.
 */
extern int32 model_id_for_name(const char *name, int len);

/* Registers the cache's invalidation callback; called once by _PG_init. */
extern void model_init(void);

/*
 * By id or name; errors (ERRCODE_UNDEFINED_OBJECT) when the model is unknown.
 * The returned entry stays valid until the end of the current transaction.
 */
extern const FctModel *model_by_id(int32 id);
extern const FctModel *model_by_name(const char *name);

/* The same, but NULL instead of an error. */
extern const FctModel *model_lookup_id(int32 id);
extern const FctModel *model_lookup_name(const char *name);

/*
 * Errors (ERRCODE_DATA_EXCEPTION, naming the model and both dimensions) unless
 * dim is the model's and side_dim is either the model's or 0 (a value that
 * carries no side-information, such as a query embedding).
 */
extern void model_check_dims(const FctModel *model, int dim, int side_dim);

/* Name for messages: the model's name, or "(no model)" for FCT_NO_MODEL. */
extern const char *model_display_name(int32 id);

/* Oid of the extension's schema (where its catalogs live); errors if absent. */
extern Oid	fct_extension_schema(void);

#endif							/* FCT_MODEL_H */
