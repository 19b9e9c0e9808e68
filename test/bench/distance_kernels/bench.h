/* bench.h: the scalar baseline's prototypes (scalar.c). */
#ifndef FCT_BENCH_H
#define FCT_BENCH_H

extern double scalar_inner_product(const float *a, const float *b, int n);
extern double scalar_l2_squared(const float *a, const float *b, int n);
extern double scalar_cosine_distance(const float *a, const float *b, int n);

#endif
