/* What the benchmark clients share (tests/bench/bench_util.c): a monotonic clock, percentiles
 * and medians, and the parsing of their options. */
#ifndef HSMCA_BENCH_UTIL_H
#define HSMCA_BENCH_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Seconds on the monotonic clock. */
double bench_now(void);
/* Sort v (n doubles) in place, ascending. */
void bench_sort(double *v, size_t n);
/* The p-th quantile (0..1) of sorted (n values; the nearest rank); 0 when n is 0. */
double bench_pct(const double *sorted, size_t n, double p);
/* The median of v (n values; sorted in place); 0 when n is 0. */
double bench_median(double *v, size_t n);

/* ---- options ---- */

enum bench_opt_kind {
	BENCH_STR,  /* dest: const char **, a non-empty string (argv's own) */
	BENCH_INT,  /* dest: int *, a whole number from min to max */
	BENCH_NUM,  /* dest: double *, a number from min to max */
	BENCH_LIST, /* dest: int[cap], comma-separated whole numbers from min to max; *n: how many
	             */
	BENCH_FLAG  /* dest: int *, set to 1; takes no value */
};

/* One option, --NAME VALUE or --NAME=VALUE; a table of them ends with {0}. */
struct bench_opt {
	const char *name; /* without the "--" */
	enum bench_opt_kind kind;
	void *dest;
	double min, max; /* INT, NUM, LIST: the values allowed */
	int *n, cap;     /* LIST: the count and the array's size */
	int required;    /* the client cannot run without it */
};

/* A string option; one the client cannot run without; a list into the array arr, count its
 * length, each from 1 to most. */
#define BENCH_OPT_STR(nm, p)                                                                       \
	{                                                                                          \
		.name = (nm), .kind = BENCH_STR, .dest = (p)                                       \
	}
#define BENCH_OPT_NEEDED(nm, p)                                                                    \
	{                                                                                          \
		.name = (nm), .kind = BENCH_STR, .dest = (p), .required = 1                        \
	}
#define BENCH_OPT_LIST(nm, arr, count, most)                                                       \
	{                                                                                          \
		.name = (nm), .kind = BENCH_LIST, .dest = (arr), .min = 1, .max = (most),          \
		.n = &(count), .cap = (int)(sizeof(arr) / sizeof((arr)[0]))                        \
	}

/* The options the clients share, under the same names and bounds. */
#define BENCH_OPT_SECONDS(p)                                                                       \
	{                                                                                          \
		.name = "seconds", .kind = BENCH_NUM, .dest = (p), .min = 0.01, .max = 3600        \
	}
#define BENCH_OPT_ROUNDS(p, most)                                                                  \
	{                                                                                          \
		.name = "rounds", .kind = BENCH_INT, .dest = (p), .min = 1, .max = (most)          \
	}
#define BENCH_OPT_VERBOSE(p)                                                                       \
	{                                                                                          \
		.name = "verbose", .kind = BENCH_FLAG, .dest = (p)                                 \
	}
/* the number of CSRs made before the clock starts */
#define BENCH_OPT_POOL(p)                                                                          \
	{                                                                                          \
		.name = "pool", .kind = BENCH_INT, .dest = (p), .min = 1, .max = 1 << 20           \
	}

/* Parse argv[1..] against opts (at most 64); -h and --help print usage to stdout. Returns 0 to
 * run, 1 after the help, -1 on a usage error, which is named on stderr ("prog: --rounds wants a
 * whole number from 1 to 32", "prog: --url is required") before the usage. A value that is
 * refused leaves its dest unchanged. */
int bench_parse_opts(const char *prog, int argc, char **argv, const struct bench_opt *opts,
                     void (*usage)(FILE *));

#endif
