/* What the benchmark clients share: a monotonic clock, percentiles and medians, and the
 * parsing of their options. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
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

/* A whole number from min to max, the whole of s. */
static int whole(const char *s, double min, double max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || (double)v < min || (double)v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int set_value(const char *prog, const struct bench_opt *o, const char *val)
{
	double d;
	char *end;
	int v, list[256], n = 0;

	switch (o->kind) {
	case BENCH_STR:
		if (val[0] == '\0')
			break;
		*(const char **)o->dest = val;
		return 0;
	case BENCH_INT:
		if (whole(val, o->min, o->max, &v) != 0)
			break;
		*(int *)o->dest = v;
		return 0;
	case BENCH_NUM:
		errno = 0;
		d = strtod(val, &end);
		if (errno != 0 || end == val || *end != '\0' || !isfinite(d) || d < o->min ||
		    d > o->max)
			break;
		*(double *)o->dest = d;
		return 0;
	case BENCH_LIST: {
		char copy[1024], *save = NULL, *tok;

		if (strlen(val) >= sizeof(copy) || val[0] == ',' || val[strlen(val) - 1] == ',' ||
		    strstr(val, ",,"))
			break;
		strcpy(copy, val);
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (n == o->cap || n == (int)(sizeof(list) / sizeof(list[0])) ||
			    whole(tok, o->min, o->max, &list[n]) != 0)
				break;
			n++;
		}
		if (tok || n == 0)
			break;
		memcpy(o->dest, list, (size_t)n * sizeof(int));
		*o->n = n;
		return 0;
	}
	case BENCH_FLAG:
		break;
	}
	switch (o->kind) {
	case BENCH_INT:
		fprintf(stderr, "%s: --%s wants a whole number from %.0f to %.0f\n", prog, o->name,
		        o->min, o->max);
		break;
	case BENCH_NUM:
		fprintf(stderr, "%s: --%s wants a number from %g to %g\n", prog, o->name, o->min,
		        o->max);
		break;
	case BENCH_LIST:
		fprintf(stderr,
		        "%s: --%s wants a comma-separated list of 1 to %d whole numbers from %.0f "
		        "to %.0f\n",
		        prog, o->name, o->cap, o->min, o->max);
		break;
	default:
		fprintf(stderr, "%s: --%s wants a value\n", prog, o->name);
	}
	return -1;
}

int bench_parse_opts(const char *prog, int argc, char **argv, const struct bench_opt *opts,
                     void (*usage)(FILE *))
{
	int seen[64] = {0};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val;
		const struct bench_opt *o;
		size_t len;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
			goto bad;
		}
		a += 2;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		for (o = opts; o->name; o++)
			if (strlen(o->name) == len && !strncmp(o->name, a, len))
				break;
		if (!o->name || o - opts >= 64) {
			fprintf(stderr, "%s: unknown option --%.*s\n", prog, (int)len, a);
			goto bad;
		}
		seen[o - opts] = 1;
		if (o->kind == BENCH_FLAG) {
			if (eq) {
				fprintf(stderr, "%s: --%s takes no value\n", prog, o->name);
				goto bad;
			}
			*(int *)o->dest = 1;
			continue;
		}
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(stderr, "%s: --%s needs a value\n", prog, o->name);
			goto bad;
		}
		if (set_value(prog, o, val) != 0)
			goto bad;
	}
	for (const struct bench_opt *o = opts; o->name && o - opts < 64; o++)
		if (o->required && !seen[o - opts]) {
			fprintf(stderr, "%s: --%s is required\n", prog, o->name);
			goto bad;
		}
	return 0;
bad:
	usage(stderr);
	return -1;
}
