/* What the benchmark clients share: a monotonic clock, percentiles and medians. */
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"

double bench_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void bench_sort(double *v, size_t n)
{
	if (n)
		qsort(v, n, sizeof(*v), cmp_double);
}

double bench_pct(const double *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	return sorted[(size_t)(p * (double)(n - 1) + 0.5)];
}

double bench_median(double *v, size_t n)
{
	bench_sort(v, n);
	return bench_pct(v, n, 0.5);
}
