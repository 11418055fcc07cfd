/* metrics: the figures a daemon exports to Prometheus. A registry holds families (one metric
 * name, its help, its type and label names); a family holds series (one value per set of
 * label values). Every daemon keeps its counters, gauges and histograms here and answers a
 * scrape with metrics_write, the one Prometheus text exposition (format 0.0.4) of hsmca.
 *
 * Updates are made from hot paths (OCSP answers, signatures, issuance) by several threads at
 * once: they are relaxed atomic operations on a series the caller already holds, with no
 * lock, allocation or formatting. Finding a series by its label values (metrics_get) scans the
 * family's series without a lock; only the first use of a new set of label values takes the
 * family's mutex to add it, in a slot allocated with the family. A family holds at most the
 * number of series it was made with; further label values are not counted (metrics_get
 * returns NULL, and every update ignores a NULL series), so outside input cannot grow it.
 *
 * Families are written in the order they were made, series in the order of their first use.
 * Registration (metrics_counter, metrics_gauge, metrics_histogram) is safe at any time, but
 * daemons make their families before their threads start. */
#ifndef HSMCA_METRICS_H
#define HSMCA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_NAME_MAX 100       /* a metric's name, without _bucket and the like */
#define METRICS_LABELS_MAX 3       /* label names per family */
#define METRICS_LABEL_TEXT_MAX 160 /* one series' label values together, a NUL after each */
#define METRICS_BUCKETS_MAX 16     /* a histogram's bounds, without +Inf */

struct metrics;        /* the registry */
struct metrics_family; /* one metric name and its series */
struct metrics_series; /* one value (or histogram) of a family */

/* An empty registry; 0, or -1 without memory. */
int metrics_new(struct metrics **out);
/* Frees the registry, its families and their series; NULL is fine. */
void metrics_free(struct metrics *m);

/* Make a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*; help: one line of text; labels: the label
 * names separated by commas ("op,result"), or NULL or "" for none; max_series: how many sets
 * of label values it can hold (1 when it has no labels). The family lives as long as the
 * registry. 0, or -1 with a message in err (a bad name, too many labels, no memory). */
int metrics_counter(struct metrics *m, const char *name, const char *help, const char *labels,
                    size_t max_series, struct metrics_family **out, char *err, size_t errsz);
int metrics_gauge(struct metrics *m, const char *name, const char *help, const char *labels,
                  size_t max_series, struct metrics_family **out, char *err, size_t errsz);
/* bounds: the buckets' upper bounds, increasing, at most METRICS_BUCKETS_MAX; +Inf is added. */
int metrics_histogram(struct metrics *m, const char *name, const char *help, const char *labels,
                      size_t max_series, const double *bounds, size_t nbounds,
                      struct metrics_family **out, char *err, size_t errsz);

/* The series of f with these label values (const char *, as many as f has labels), made on
 * its first use; the same pointer every time after. NULL when f is full or the values exceed
 * METRICS_LABEL_TEXT_MAX; a series is never removed. */
struct metrics_series *metrics_get(struct metrics_family *f, ...);

/* The series of f with these label values if it was made already; never makes one. For
 * figures kept only for names that proved real (keyd counts signatures per existing key). */
struct metrics_series *metrics_find(struct metrics_family *f, ...);

/* Counters: add n (metrics_inc: 1). Gauges: set, or add a signed amount. Histograms: count one
 * observation. Each does nothing for a NULL series or one of another type. */
void metrics_add(struct metrics_series *s, uint64_t n);
void metrics_inc(struct metrics_series *s);
void metrics_set(struct metrics_series *s, int64_t v);
void metrics_gauge_add(struct metrics_series *s, int64_t d);
void metrics_observe(struct metrics_series *s, double v);

/* A counter or gauge whose value is read when scraped: read(arg) is called by metrics_write's
 * thread, for figures another part of the daemon owns (the token's state, open connections).
 * It must be cheap and thread-safe. */
void metrics_bind(struct metrics_series *s, int64_t (*read)(void *arg), void *arg);

/* The value a counter or gauge series holds now (its reader's, if bound); 0 for NULL. */
int64_t metrics_value(const struct metrics_series *s);

/* Prometheus text of every family into out (cap bytes, NUL-terminated when cap > 0); *len is
 * its length. 0, or -1 when it did not all fit: then out holds the whole lines that did. */
int metrics_write(struct metrics *m, char *out, size_t cap, size_t *len);

#endif
