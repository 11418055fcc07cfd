/* hsmca-cad's health and metrics: GET /metrics (Prometheus text) and GET /health, both
 * without credentials, like /api/v1/health. Every event loop counts into one metrics registry,
 * made on first use; docs/cad.md lists the metrics. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <libpq-fe.h>

#include "cad_internal.h"
#include "log.h"
#include "metrics.h"

static const double bucket_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define MAX_SERIES 512  /* route and status pairs */
#define TEXT_MAX 131072 /* the exposition: 512 request series and every authority fit */

static struct {
	struct metrics *m;
	struct metrics_family *requests, *key_loaded;
	struct metrics_series *duration, *database_up, *checkpoint_seq, *connections, *refused;
	struct metrics_series *est_lock_waits;
	struct metrics_series *groups[2], *members[2]; /* group commit: [0] reserve, [1] store */
} reg;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* The registry and its families, once per process; without them nothing is counted. */
static void reg_make(void)
{
	struct metrics_family *f;
	struct metrics *m;
	char err[160];

	if (metrics_new(&m) != 0) {
		log_error("metrics: out of memory");
		return;
	}
	if (metrics_counter(m, "hsmca_cad_requests_total",
	                    "answered API requests by route and HTTP status", "action,code",
	                    MAX_SERIES, &reg.requests, err, sizeof(err)) ||
	    metrics_histogram(m, "hsmca_cad_request_duration_seconds",
	                      "time to answer an API request", NULL, 1, bucket_s,
	                      sizeof(bucket_s) / sizeof(bucket_s[0]), &f, err, sizeof(err)))
		goto fail;
	reg.duration = metrics_get(f);
	if (metrics_counter(m, "hsmca_cad_commit_groups_total",
	                    "transactions that committed the reservations, or the signed "
	                    "certificates, of one or more requests (group commit)",
	                    "kind", 2, &f, err, sizeof(err)))
		goto fail;
	reg.groups[0] = metrics_get(f, "reserve");
	reg.groups[1] = metrics_get(f, "store");
	if (metrics_counter(m, "hsmca_cad_commit_group_members_total",
	                    "requests whose reservation, or signed certificate, went in those "
	                    "transactions",
	                    "kind", 2, &f, err, sizeof(err)))
		goto fail;
	reg.members[0] = metrics_get(f, "reserve");
	reg.members[1] = metrics_get(f, "store");
	if (metrics_gauge(m, "hsmca_cad_database_up",
	                  "1 while cad holds a database connection (the event loop that answers)",
	                  NULL, 1, &f, err, sizeof(err)))
		goto fail;
	reg.database_up = metrics_get(f);
	if (metrics_gauge(m, "hsmca_cad_authority_key_loaded",
	                  "1 once the CA's key was reached through keyd", "authority",
	                  CAD_MAX_AUTHORITIES, &reg.key_loaded, err, sizeof(err)) ||
	    metrics_gauge(m, "hsmca_cad_audit_checkpoint_seq",
	                  "audit entry covered by the last signed checkpoint", NULL, 1, &f, err,
	                  sizeof(err)))
		goto fail;
	reg.checkpoint_seq = metrics_get(f);
	if (metrics_gauge(m, "hsmca_cad_connections", "TLS connections open now", NULL, 1, &f, err,
	                  sizeof(err)))
		goto fail;
	reg.connections = metrics_get(f);
	if (metrics_counter(m, "hsmca_cad_connections_refused_total",
	                    "requests answered 503 for arriving on a connection beyond "
	                    "limits.max_connections",
	                    NULL, 1, &f, err, sizeof(err)))
		goto fail;
	reg.refused = metrics_get(f);
	if (metrics_gauge(m, "hsmca_cad_est_lock_waits",
	                  "EST enrolments waiting now for another enrolment of their device "
	                  "identity to finish",
	                  NULL, 1, &f, err, sizeof(err)))
		goto fail;
	reg.est_lock_waits = metrics_get(f);
	reg.m = m;
	return;
fail:
	log_error("metrics: %s", err);
	metrics_free(m);
	memset(&reg, 0, sizeof(reg));
}

void cad_metrics_request(const char *action, int code, double seconds)
{
	char num[12], *p = num + sizeof(num);
	unsigned v = code < 0 ? 0 : (unsigned)code;

	pthread_once(&reg_once, reg_make);
	/* The status as a label value, without the cost of printf. */
	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) && p > num);
	metrics_inc(metrics_get(reg.requests, action, p));
	metrics_observe(reg.duration, seconds);
}

void cad_metrics_group(int store, size_t n)
{
	pthread_once(&reg_once, reg_make);
	metrics_inc(reg.groups[store ? 1 : 0]);
	metrics_add(reg.members[store ? 1 : 0], n);
}

void cad_h_metrics(struct cad_req *r)
{
	static char text[TEXT_MAX];
	static pthread_mutex_t text_lock = PTHREAD_MUTEX_INITIALIZER;
	struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	const struct cad_config *cfg = r->cad->cfg;
	struct db_err derr = {0};
	size_t len = 0;
	int db_up;

	pthread_once(&reg_once, reg_make);
	/* This event loop's connection, made first if it has none (as /health does). */
	if (!r->w->db && db_connect(cfg->database, &r->w->db, &derr) != DB_OK)
		r->w->db = NULL;
	db_up = r->w->db && PQstatus(db_pgconn(r->w->db)) == CONNECTION_OK;
	/* One scrape at a time: the text is shared, and database_up is this loop's. */
	pthread_mutex_lock(&text_lock);
	metrics_set(reg.database_up, db_up);
	pthread_mutex_lock(&r->cad->lock); /* the keys change under it */
	for (size_t i = 0; i < cfg->n_authorities; i++)
		metrics_set(metrics_get(reg.key_loaded, cfg->authorities[i].name),
		            cfg->authorities[i].key ? 1 : 0);
	pthread_mutex_unlock(&r->cad->lock);
	metrics_set(reg.checkpoint_seq, (int64_t)atomic_load(&r->cad->last_checkpoint_seq));
	metrics_set(reg.connections, (int64_t)atomic_load(&r->cad->connections));
	metrics_set(reg.est_lock_waits, (int64_t)atomic_load(&r->cad->est_lock_waits));
	metrics_add(reg.refused, atomic_load(&r->cad->connections_refused) -
	                             (uint64_t)metrics_value(reg.refused));
	if (reg.m)
		metrics_write(reg.m, text, sizeof(text), &len); /* cut at a whole line if need be */
	evbuffer_add(out, text, len);
	pthread_mutex_unlock(&text_lock);
	evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	r->replied = 1;
	r->status = 200;
	evhttp_send_reply(r->req, 200, "OK", NULL);
}
