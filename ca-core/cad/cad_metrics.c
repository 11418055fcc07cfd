/* hsmca-cad's health and metrics: GET /metrics (Prometheus text) and GET /health, both
 * without credentials, like /api/v1/health. Every event loop counts into the same figures,
 * under one mutex. docs/cad.md lists the metrics. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <libpq-fe.h>

#include "cad_internal.h"
#include "log.h"

static const double bucket_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof(bucket_s) / sizeof(bucket_s[0]))
#define MAX_SERIES 512

static struct {
	struct {
		const char *action; /* a route's static action name, or "unrouted" */
		int code;
		unsigned long long n;
	} series[MAX_SERIES];
	size_t nseries;
	unsigned long long hist[NBUCKETS + 1], count;
	double sum;
	unsigned long long groups[2], members[2]; /* group commit: [0] reservations, [1] stores */
} m;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

void cad_metrics_request(const char *action, int code, double seconds)
{
	size_t i, b = 0;

	while (b < NBUCKETS && seconds > bucket_s[b])
		b++;
	pthread_mutex_lock(&mu);
	m.hist[b]++;
	m.count++;
	m.sum += seconds;
	for (i = 0; i < m.nseries; i++)
		if (m.series[i].action == action && m.series[i].code == code)
			break;
	if (i == m.nseries && m.nseries < MAX_SERIES) {
		m.series[i].action = action;
		m.series[i].code = code;
		m.nseries++;
	}
	if (i < m.nseries)
		m.series[i].n++;
	pthread_mutex_unlock(&mu);
}

void cad_metrics_group(int store, size_t n)
{
	pthread_mutex_lock(&mu);
	m.groups[store ? 1 : 0]++;
	m.members[store ? 1 : 0] += n;
	pthread_mutex_unlock(&mu);
}

void cad_h_metrics(struct cad_req *r)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	const struct cad_config *cfg = r->cad->cfg;
	unsigned long long cum = 0;
	struct db_err derr = {0};
	int db_up;

	/* This event loop's connection, made first if it has none (as /health does). */
	if (!r->w->db && db_connect(cfg->database, &r->w->db, &derr) != DB_OK)
		r->w->db = NULL;
	db_up = r->w->db && PQstatus(db_pgconn(r->w->db)) == CONNECTION_OK;
	pthread_mutex_lock(&mu);
	evbuffer_add_printf(out, "# HELP hsmca_cad_requests_total answered API requests by route "
	                         "and HTTP status\n# TYPE hsmca_cad_requests_total counter\n");
	for (size_t i = 0; i < m.nseries; i++)
		evbuffer_add_printf(out,
		                    "hsmca_cad_requests_total{action=\"%s\",code=\"%d\"} %llu\n",
		                    m.series[i].action, m.series[i].code, m.series[i].n);
	evbuffer_add_printf(out, "# HELP hsmca_cad_request_duration_seconds time to answer an API "
	                         "request\n# TYPE hsmca_cad_request_duration_seconds histogram\n");
	for (size_t b = 0; b < NBUCKETS; b++) {
		cum += m.hist[b];
		evbuffer_add_printf(out,
		                    "hsmca_cad_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
		                    bucket_s[b], cum);
	}
	evbuffer_add_printf(out,
	                    "hsmca_cad_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	                    "hsmca_cad_request_duration_seconds_sum %.6f\n"
	                    "hsmca_cad_request_duration_seconds_count %llu\n",
	                    m.count, m.sum, m.count);
	evbuffer_add_printf(
	    out,
	    "# HELP hsmca_cad_commit_groups_total transactions that committed the reservations, or"
	    " the signed certificates, of one or more requests (group commit)\n"
	    "# TYPE hsmca_cad_commit_groups_total counter\n"
	    "hsmca_cad_commit_groups_total{kind=\"reserve\"} %llu\n"
	    "hsmca_cad_commit_groups_total{kind=\"store\"} %llu\n"
	    "# HELP hsmca_cad_commit_group_members_total requests whose reservation, or signed"
	    " certificate, went in those transactions\n"
	    "# TYPE hsmca_cad_commit_group_members_total counter\n"
	    "hsmca_cad_commit_group_members_total{kind=\"reserve\"} %llu\n"
	    "hsmca_cad_commit_group_members_total{kind=\"store\"} %llu\n",
	    m.groups[0], m.groups[1], m.members[0], m.members[1]);
	pthread_mutex_unlock(&mu);
	evbuffer_add_printf(
	    out,
	    "# HELP hsmca_cad_database_up 1 while cad holds a database "
	    "connection (the event loop that answers)\n# TYPE hsmca_cad_database_up gauge\n"
	    "hsmca_cad_database_up %d\n",
	    db_up);
	evbuffer_add_printf(out,
	                    "# HELP hsmca_cad_authority_key_loaded 1 once the CA's key was "
	                    "reached through keyd\n# TYPE hsmca_cad_authority_key_loaded gauge\n");
	pthread_mutex_lock(&r->cad->lock); /* the keys change under it */
	for (size_t i = 0; i < cfg->n_authorities; i++)
		evbuffer_add_printf(out, "hsmca_cad_authority_key_loaded{authority=\"%s\"} %d\n",
		                    cfg->authorities[i].name, cfg->authorities[i].key ? 1 : 0);
	pthread_mutex_unlock(&r->cad->lock);
	evbuffer_add_printf(out,
	                    "# HELP hsmca_cad_audit_checkpoint_seq audit entry covered by the last "
	                    "signed checkpoint\n# TYPE hsmca_cad_audit_checkpoint_seq gauge\n"
	                    "hsmca_cad_audit_checkpoint_seq %lld\n",
	                    (long long)atomic_load(&r->cad->last_checkpoint_seq));
	evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	r->replied = 1;
	r->status = 200;
	evhttp_send_reply(r->req, 200, "OK", NULL);
}
