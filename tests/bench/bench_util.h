/* What the benchmark clients share (tests/bench/bench_util.c): a monotonic clock, percentiles
 * and medians. */
#ifndef HSMCA_BENCH_UTIL_H
#define HSMCA_BENCH_UTIL_H

#include <stddef.h>

/* Seconds on the monotonic clock. */
double bench_now(void);
/* Sort v (n doubles) in place, ascending. */
void bench_sort(double *v, size_t n);
/* The p-th quantile (0..1) of sorted (n values; the nearest rank); 0 when n is 0. */
double bench_pct(const double *sorted, size_t n, double p);
/* The median of v (n values; sorted in place); 0 when n is 0. */
double bench_median(double *v, size_t n);

#endif
