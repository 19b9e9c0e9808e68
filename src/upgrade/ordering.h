/*
 * ordering.h
 *	  The planner's view of a new-model ordering: ORDER BY col <op> 'M:[...]'
 *	  is served by an index on fct_upgrade(col, 'M') (ordering.c).
 */
#ifndef FCT_ORDERING_H
#define FCT_ORDERING_H

/* Install the planner hook (chained after any earlier one) and its setting. */
extern void ordering_init(void);

#endif							/* FCT_ORDERING_H */
