/* The metrics registry and its Prometheus text exposition (metrics.h). */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

enum type { COUNTER, GAUGE, HISTOGRAM };

/* One series on a cache line of its own: threads that count into different series do not
 * slow each other down. */
struct metrics_series {
	_Alignas(CACHE_LINE) atomic_ullong v; /* a counter's count, a gauge's value (as uint64) */
	atomic_ullong sum_bits;               /* a histogram's sum of observations: a double */
	atomic_ullong *buckets;               /* a histogram's counts per bucket, +Inf last */
	int64_t (*read)(void *arg);           /* bound: the value is read when scraped */
	void *arg;
	struct metrics_family *f;
	uint32_t hash;                     /* of the label values, to skip most comparisons */
	char text[METRICS_LABEL_TEXT_MAX]; /* the label values, a NUL after each */
};

struct metrics_family {
	struct metrics_family *next;
	enum type type;
	char name[METRICS_NAME_MAX + 1];
	char *help;
	char label[METRICS_LABELS_MAX][METRICS_NAME_MAX + 1];
	size_t nlabels;
	double bounds[METRICS_BUCKETS_MAX];
	size_t nbounds;
	/* Taken to add a series, to bind one and to write the family; never to update. */
	pthread_mutex_t mu;
	struct metrics_series *series; /* max_series slots; the first n are in use */
	size_t max_series;
	atomic_size_t n;
	atomic_ullong *buckets; /* (nbounds + 1) per series */
};

struct metrics {
	pthread_mutex_t mu; /* the list of families */
	struct metrics_family *first, *last;
};

int metrics_new(struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -1;
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return 0;
}

void metrics_free(struct metrics *m)
{
	struct metrics_family *f, *next;

	if (!m)
		return;
	for (f = m->first; f; f = next) {
		next = f->next;
		pthread_mutex_destroy(&f->mu);
		free(f->help);
		free(f->series);
		free(f->buckets);
		free(f);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* ---- making families ---- */

static int name_ok(const char *s, int colon)
{
	size_t n = strlen(s);

	if (n == 0 || n > METRICS_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon && c == ':')))
			return 0;
	}
	return 1;
}

/* Split "a,b" into f->label; 0, or -1 with the reason in err. */
static int parse_labels(struct metrics_family *f, const char *labels, char *err, size_t errsz)
{
	const char *p = labels;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char *l;

		if (f->nlabels == METRICS_LABELS_MAX) {
			snprintf(err, errsz, "%s: more than %d labels", f->name,
			         METRICS_LABELS_MAX);
			return -1;
		}
		l = f->label[f->nlabels];
		if (n > METRICS_NAME_MAX)
			n = 0; /* too long: rejected as empty */
		memcpy(l, p, n);
		l[n] = '\0';
		if (!name_ok(l, 0) || !strncmp(l, "__", 2) ||
		    (f->type == HISTOGRAM && !strcmp(l, "le"))) {
			snprintf(err, errsz, "%s: bad label name \"%.*s\"", f->name,
			         (int)(comma ? (size_t)(comma - p) : strlen(p)), p);
			return -1;
		}
		for (size_t i = 0; i < f->nlabels; i++)
			if (!strcmp(f->label[i], l)) {
				snprintf(err, errsz, "%s: label %s twice", f->name, l);
				return -1;
			}
		f->nlabels++;
		p = comma ? comma + 1 : NULL;
		if (comma && !*p) {
			snprintf(err, errsz, "%s: empty label name", f->name);
			return -1;
		}
	}
	return 0;
}

static int family_add(struct metrics *m, enum type type, const char *name, const char *help,
                      const char *labels, size_t max_series, const double *bounds, size_t nbounds,
                      struct metrics_family **out, char *err, size_t errsz)
{
	struct metrics_family *f = NULL;
	size_t ssize = (sizeof(struct metrics_series) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;

	*out = NULL;
	if (!name_ok(name, 1)) {
		snprintf(err, errsz, "bad metric name \"%.*s\"", METRICS_NAME_MAX, name);
		goto fail;
	}
	if (!help || strchr(help, '\n')) {
		snprintf(err, errsz, "%s: the help must be one line", name);
		goto fail;
	}
	if (max_series == 0 || max_series > SIZE_MAX / ssize / (METRICS_BUCKETS_MAX + 1)) {
		snprintf(err, errsz, "%s: cannot hold %zu series", name, max_series);
		goto fail;
	}
	if (type == HISTOGRAM && nbounds > METRICS_BUCKETS_MAX) {
		snprintf(err, errsz, "%s: more than %d buckets", name, METRICS_BUCKETS_MAX);
		goto fail;
	}
	for (size_t i = 0; type == HISTOGRAM && i < nbounds; i++)
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
			snprintf(err, errsz, "%s: bucket bounds must be finite and increase", name);
			goto fail;
		}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto nomem;
	f->type = type;
	snprintf(f->name, sizeof(f->name), "%s", name);
	if (parse_labels(f, labels, err, errsz) != 0)
		goto fail;
	f->help = strdup(help);
	f->series = aligned_alloc(CACHE_LINE, ssize * max_series);
	if (!f->help || !f->series)
		goto nomem;
	memset(f->series, 0, ssize * max_series);
	f->max_series = max_series;
	if (type == HISTOGRAM) {
		memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
		f->nbounds = nbounds;
		f->buckets = calloc(max_series * (nbounds + 1), sizeof(*f->buckets));
		if (!f->buckets)
			goto nomem;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_lock(&m->mu);
	if (m->last)
		m->last->next = f;
	else
		m->first = f;
	m->last = f;
	pthread_mutex_unlock(&m->mu);
	*out = f;
	return 0;
nomem:
	snprintf(err, errsz, "%s: out of memory", name);
fail:
	if (f) {
		free(f->help);
		free(f->series);
		free(f->buckets);
		free(f);
	}
	return -1;
}

int metrics_counter(struct metrics *m, const char *name, const char *help, const char *labels,
                    size_t max_series, struct metrics_family **out, char *err, size_t errsz)
{
	return family_add(m, COUNTER, name, help, labels, max_series, NULL, 0, out, err, errsz);
}

int metrics_gauge(struct metrics *m, const char *name, const char *help, const char *labels,
                  size_t max_series, struct metrics_family **out, char *err, size_t errsz)
{
	return family_add(m, GAUGE, name, help, labels, max_series, NULL, 0, out, err, errsz);
}

int metrics_histogram(struct metrics *m, const char *name, const char *help, const char *labels,
                      size_t max_series, const double *bounds, size_t nbounds,
                      struct metrics_family **out, char *err, size_t errsz)
{
	return family_add(m, HISTOGRAM, name, help, labels, max_series, bounds, nbounds, out, err,
	                  errsz);
}

/* ---- finding a series ---- */

static struct metrics_series *slot(const struct metrics_family *f, size_t i)
{
	size_t ssize = (sizeof(struct metrics_series) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;

	return (struct metrics_series *)((char *)f->series + i * ssize);
}

static int same(const struct metrics_series *s, uint32_t hash, const char *const *v, size_t n)
{
	const char *p = s->text;

	if (s->hash != hash)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(p, v[i]))
			return 0;
		p += strlen(p) + 1;
	}
	return 1;
}

static struct metrics_series *find(struct metrics_family *f, size_t from, size_t to, uint32_t hash,
                                   const char *const *v)
{
	for (size_t i = from; i < to; i++)
		if (same(slot(f, i), hash, v, f->nlabels))
			return slot(f, i);
	return NULL;
}

/* The label values of a metrics_get or metrics_find call, their hash (FNV-1a over the values
 * and their NULs) and their length together, NULs included. */
struct key {
	const char *v[METRICS_LABELS_MAX];
	uint32_t hash;
	size_t len;
};

static void key_of(const struct metrics_family *f, va_list ap, struct key *k)
{
	k->hash = 2166136261u;
	k->len = 0;
	for (size_t i = 0; i < f->nlabels; i++) {
		const char *p = va_arg(ap, const char *);
		k->v[i] = p ? p : "";
		for (p = k->v[i];; p++) {
			k->hash = (k->hash ^ (unsigned char)*p) * 16777619u;
			if (!*p)
				break;
		}
		k->len += (size_t)(p - k->v[i]) + 1;
	}
}

struct metrics_series *metrics_find(struct metrics_family *f, ...)
{
	struct key k;
	va_list ap;

	if (!f)
		return NULL;
	va_start(ap, f);
	key_of(f, ap, &k);
	va_end(ap);
	return find(f, 0, atomic_load_explicit(&f->n, memory_order_acquire), k.hash, k.v);
}

struct metrics_series *metrics_get(struct metrics_family *f, ...)
{
	struct metrics_series *s;
	struct key k;
	size_t n;
	va_list ap;

	if (!f)
		return NULL;
	va_start(ap, f);
	key_of(f, ap, &k);
	va_end(ap);
	n = atomic_load_explicit(&f->n, memory_order_acquire);
	s = find(f, 0, n, k.hash, k.v);
	if (s || k.len > METRICS_LABEL_TEXT_MAX)
		return s;
	pthread_mutex_lock(&f->mu);
	/* Another thread may have added it since. */
	s = find(f, n, atomic_load_explicit(&f->n, memory_order_relaxed), k.hash, k.v);
	if (!s && (n = atomic_load_explicit(&f->n, memory_order_relaxed)) < f->max_series) {
		char *t;
		s = slot(f, n);
		s->f = f;
		s->hash = k.hash;
		t = s->text;
		for (size_t i = 0; i < f->nlabels; i++) {
			size_t l = strlen(k.v[i]) + 1;
			memcpy(t, k.v[i], l);
			t += l;
		}
		if (f->type == HISTOGRAM)
			s->buckets = f->buckets + n * (f->nbounds + 1);
		atomic_store_explicit(&f->n, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&f->mu);
	return s;
}

/* ---- updates: relaxed atomics only ---- */

void metrics_add(struct metrics_series *s, uint64_t n)
{
	if (s && s->f->type == COUNTER)
		atomic_fetch_add_explicit(&s->v, n, memory_order_relaxed);
}

void metrics_inc(struct metrics_series *s)
{
	metrics_add(s, 1);
}

void metrics_set(struct metrics_series *s, int64_t v)
{
	if (s && s->f->type == GAUGE)
		atomic_store_explicit(&s->v, (unsigned long long)v, memory_order_relaxed);
}

void metrics_gauge_add(struct metrics_series *s, int64_t d)
{
	/* Two's complement: adding the unsigned image of d adds d. */
	if (s && s->f->type == GAUGE)
		atomic_fetch_add_explicit(&s->v, (unsigned long long)d, memory_order_relaxed);
}

void metrics_observe(struct metrics_series *s, double v)
{
	const struct metrics_family *f;
	unsigned long long old, new;
	size_t b = 0;
	double sum;

	if (!s || s->f->type != HISTOGRAM || isnan(v))
		return;
	f = s->f;
	while (b < f->nbounds && v > f->bounds[b])
		b++;
	atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
	do {
		memcpy(&sum, &old, sizeof(sum));
		sum += v;
		memcpy(&new, &sum, sizeof(new));
	} while (!atomic_compare_exchange_weak_explicit(
	    &s->sum_bits, &old, new, memory_order_relaxed, memory_order_relaxed));
}

void metrics_bind(struct metrics_series *s, int64_t (*read)(void *arg), void *arg)
{
	if (!s || s->f->type == HISTOGRAM)
		return;
	pthread_mutex_lock(&s->f->mu);
	s->read = read;
	s->arg = arg;
	pthread_mutex_unlock(&s->f->mu);
}

/* Under the family's mutex (a bound reader does not change under it). */
static int64_t value_locked(const struct metrics_series *s)
{
	if (s->read)
		return s->read(s->arg);
	return (int64_t)atomic_load_explicit(&s->v, memory_order_relaxed);
}

int64_t metrics_value(const struct metrics_series *s)
{
	int64_t v;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->f->mu);
	v = value_locked(s);
	pthread_mutex_unlock(&s->f->mu);
	return v;
}

/* ---- the exposition ---- */

struct out {
	char *p;
	size_t cap, len, line; /* line: where the current line began */
	int full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full)
		return;
	if (n >= o->cap - o->len) { /* keep a byte for the NUL */
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* Ends a line; a line that did not fit is taken back whole. */
static void eol(struct out *o)
{
	put(o, "\n", 1);
	if (o->full)
		o->len = o->line;
	o->line = o->len;
}

static void putf(struct out *o, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		o->full = 1;
	else
		put(o, buf, (size_t)n);
}

/* Label values: backslash, double quote and line feed escaped. HELP text: backslash and line
 * feed (the help is one line, but stay safe). */
static void put_escaped(struct out *o, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(o, "\\\\");
		else if (*s == '\n')
			puts_(o, "\\n");
		else if (quote && *s == '"')
			puts_(o, "\\\"");
		else
			put(o, s, 1);
	}
}

/* name{a="x",b="y"} or name{a="x",le="0.5"}, or just name. */
static void put_name(struct out *o, const struct metrics_family *f, const struct metrics_series *s,
                     const char *suffix, const char *le)
{
	const char *v = s->text;

	puts_(o, f->name);
	puts_(o, suffix);
	if (f->nlabels == 0 && !le)
		return;
	puts_(o, "{");
	for (size_t i = 0; i < f->nlabels; i++) {
		if (i)
			puts_(o, ",");
		puts_(o, f->label[i]);
		puts_(o, "=\"");
		put_escaped(o, v, 1);
		puts_(o, "\"");
		v += strlen(v) + 1;
	}
	if (le) {
		puts_(o, f->nlabels ? ",le=\"" : "le=\"");
		puts_(o, le);
		puts_(o, "\"");
	}
	puts_(o, "}");
}

static void write_histogram(struct out *o, const struct metrics_family *f,
                            const struct metrics_series *s)
{
	unsigned long long cum = 0, bits;
	char le[32];
	double sum;

	for (size_t b = 0; b <= f->nbounds; b++) {
		cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
		if (b < f->nbounds)
			snprintf(le, sizeof(le), "%g", f->bounds[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		put_name(o, f, s, "_bucket", le);
		putf(o, " %llu", cum);
		eol(o);
	}
	bits = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
	memcpy(&sum, &bits, sizeof(sum));
	put_name(o, f, s, "_sum", NULL);
	putf(o, " %.6f", sum);
	eol(o);
	put_name(o, f, s, "_count", NULL);
	putf(o, " %llu", cum);
	eol(o);
}

static void write_family(struct out *o, struct metrics_family *f)
{
	static const char *const type_name[] = {"counter", "gauge", "histogram"};
	size_t n;

	pthread_mutex_lock(&f->mu);
	n = atomic_load_explicit(&f->n, memory_order_acquire);
	puts_(o, "# HELP ");
	puts_(o, f->name);
	puts_(o, " ");
	put_escaped(o, f->help, 0);
	eol(o);
	puts_(o, "# TYPE ");
	puts_(o, f->name);
	puts_(o, " ");
	puts_(o, type_name[f->type]);
	eol(o);
	for (size_t i = 0; i < n && !o->full; i++) {
		const struct metrics_series *s = slot(f, i);
		if (f->type == HISTOGRAM) {
			write_histogram(o, f, s);
			continue;
		}
		put_name(o, f, s, "", NULL);
		if (f->type == COUNTER && !s->read)
			putf(o, " %llu",
			     (unsigned long long)atomic_load_explicit(&s->v, memory_order_relaxed));
		else
			putf(o, " %" PRId64, value_locked(s));
		eol(o);
	}
	pthread_mutex_unlock(&f->mu);
}

int metrics_write(struct metrics *m, char *out, size_t cap, size_t *len)
{
	struct out o = {out, cap, 0, 0, cap == 0};

	pthread_mutex_lock(&m->mu);
	for (struct metrics_family *f = m->first; f && !o.full; f = f->next)
		write_family(&o, f);
	pthread_mutex_unlock(&m->mu);
	if (cap > 0)
		out[o.len] = '\0';
	*len = o.len;
	return o.full ? -1 : 0;
}
