/*
 * variant.h
 *	  Which implementation of the kernels runs: the vectorised one (always,
 *	  in production) or the plain-loop reference of the same definitions
 *	  (fct.kernel_variant = 'scalar', for tests that compare their bits).
 *	  Both give the same bits by construction: the switch exists so that a
 *	  test can prove it.
 */
#ifndef FCT_KERNEL_VARIANT_H
#define FCT_KERNEL_VARIANT_H

typedef enum KernelVariant
{
	KERNEL_VARIANT_AUTO,		/* vectorised, the clone the CPU supports */
	KERNEL_VARIANT_SCALAR		/* plain loops, vectorisation disabled */
} KernelVariant;

/*
 * The GUC's variable, defined in variant.c; a program that links the kernels
 * without the server (the benchmarks) defines it itself.
 */
extern int	kernel_variant;

/* Registers fct.kernel_variant; called once by _PG_init. */
extern void kernel_init(void);

#endif							/* FCT_KERNEL_VARIANT_H */
