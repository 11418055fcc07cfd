/* HTTP: one event loop per worker thread, each with its own SO_REUSEPORT listening socket, so
 * the kernel spreads connections and the threads share nothing but the cache lock. Requests
 * are framed by ocsp_http.c on the bufferevent's input; a pre-signed answer is written from
 * the cache without allocating per request; anything else goes to the signer pool and the
 * connection waits (reading paused) until its answer comes back. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "daemon.h"
#include "httptext.h"
#include "log.h"
#include "metrics.h"
#include "ocsp_internal.h"

#define OUT_HIGH (256 * 1024) /* stop reading requests while this much waits to be sent */
#define WRITE_TIMEOUT_S 10

struct worker;

struct conn {
	struct worker *w;
	struct bufferevent *bev;
	int busy;    /* a signer is working on its request */
	int dead;    /* the socket is gone; free when the signer is done */
	int closing; /* close once the output is sent */
	int metrics; /* accepted on the metrics listener: /metrics and /health, nothing else */
	int64_t req_start_ms;
	struct conn *next_done;
	struct conn *prev, *next; /* the worker's open connections */
	uint8_t *resp;
	size_t resp_len;
};

/* How requests were answered, for /metrics (hsmca_ocspd_requests_total{answer}). */
enum { M_CACHED, M_SIGNER, M_MALFORMED, M_UNAUTHORIZED, M_TRYLATER, M_HTTP_ERROR, M_N };
static const char *const m_names[M_N] = {"cached",       "signer",   "malformedRequest",
                                         "unauthorized", "tryLater", "http_error"};

struct worker {
	struct ocspd *d;
	pthread_t th;
	struct event_base *base;
	struct evconnlistener *lis;
	struct evconnlistener *mlis; /* worker 0 only, with metrics_listen: the metrics listener */
	struct event *done_ev;
	pthread_mutex_t done_mu;
	struct conn *done;
	struct conn *open; /* connections with a socket */
	struct ocsp_http_limits lim;
};

struct ocsp_server {
	struct worker *workers;
	int n;
	struct event_base *main_base;
	/* /metrics: the workers count answers; the cache's figures are set when scraped */
	struct metrics *metrics;
	struct metrics_series *answers[M_N];
	struct metrics_series *cached_certs, *cached_answers, *soonest;
};

static void count(struct conn *c, int what)
{
	metrics_inc(c->w->d->server->answers[what]);
}

static void conn_free(struct conn *c)
{
	struct ocspd *d = c->w->d;

	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		atomic_fetch_sub(&d->conns, 1);
		if (c->prev)
			c->prev->next = c->next;
		else
			c->w->open = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->prev = c->next = NULL;
	}
	if (c->busy) {
		c->dead = 1;
		return;
	}
	free(c->resp);
	free(c);
}

static void conn_send(struct conn *c, const void *p, size_t n)
{
	evbuffer_add(bufferevent_get_output(c->bev), p, n);
}

static void close_after_send(struct conn *c)
{
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

static void http_fail(struct conn *c, int status)
{
	char buf[160];

	count(c, M_HTTP_ERROR);
	const char *why = httptext_status(status);
	int n = snprintf(buf, sizeof(buf),
	                 "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status,
	                 why);

	conn_send(c, buf, (size_t)n);
	close_after_send(c);
}

static void ocsp_fail(struct conn *c, enum ocsp_error e, int keep)
{
	uint8_t buf[256];

	count(c, e == OCSP_MALFORMED      ? M_MALFORMED
	         : e == OCSP_UNAUTHORIZED ? M_UNAUTHORIZED
	                                  : M_TRYLATER);
	size_t n = ocsp_http_error(e, keep, buf, sizeof(buf));

	conn_send(c, buf, n);
}

/* GET /health: the state alone, "ok", "degraded" (answering, but the database, keyd, the
 * revocation feed or an authority's signer is away) or "down" (not ready to answer yet). Which
 * part is away is in /metrics (hsmca_ocspd_up{part}) and the log, not here: /health answers
 * anyone. */
static void health(struct conn *c, int keep, int head_only)
{
	struct ocspd *d = c->w->d;
	char body[64], head[256];
	int loaded = atomic_load(&d->loaded), db = atomic_load(&d->db_up);
	int keyd = atomic_load(&d->keyd_up), synced = atomic_load(&d->synced);
	int n_cas = atomic_load(&d->n_cas), unsigned_cas = 0;
	const char *status;
	int bn, hn;

	/* authorities whose signing key could not be loaded (keyd away, or a wrong label) */
	pthread_rwlock_rdlock(&d->cache.lock);
	for (int i = 0; i < n_cas; i++)
		unsigned_cas += d->cas[i].signer_key == NULL;
	pthread_rwlock_unlock(&d->cache.lock);
	status = !loaded ? "down" : (db && keyd && synced && !unsigned_cas) ? "ok" : "degraded";
	bn = snprintf(body, sizeof(body), "{\"status\": \"%s\"}\n", status);
	hn = snprintf(head, sizeof(head),
	              "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
	              "Cache-Control: no-store\r\n%s\r\n",
	              loaded ? "200 OK" : "503 Service Unavailable", bn,
	              keep ? "" : "Connection: close\r\n");
	conn_send(c, head, (size_t)hn);
	if (!head_only)
		conn_send(c, body, (size_t)bn);
}

static int64_t read_signed(void *d)
{
	return atomic_load(&((struct ocspd *)d)->signed_count);
}

static int64_t read_unknown_refused(void *d)
{
	return atomic_load(&((struct ocspd *)d)->unknown_refused);
}

static int64_t read_conns(void *d)
{
	return atomic_load(&((struct ocspd *)d)->conns);
}

static int64_t read_flag(void *flag)
{
	return atomic_load((atomic_int *)flag);
}

/* The figures /metrics shows: answers by how they were given, the cache and its freshness (the
 * soonest nextUpdate of any pre-signed answer), signatures, connections, and the state of the
 * database, keyd and the revocation feed. 0, or -1 with a message in err. */
static int metrics_setup(struct ocsp_server *s, struct ocspd *d, char *err, size_t errsz)
{
	struct metrics_family *f;
	struct metrics *m;

	if (metrics_new(&s->metrics) != 0) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	m = s->metrics;
	if (metrics_counter(m, "hsmca_ocspd_requests_total",
	                    "OCSP requests by how they were answered.", "answer", M_N, &f, err,
	                    errsz))
		return -1;
	for (int k = 0; k < M_N; k++)
		s->answers[k] = metrics_get(f, m_names[k]);
	if (metrics_gauge(m, "hsmca_ocspd_cached_certificates",
	                  "Certificates with pre-signed answers.", NULL, 1, &f, err, errsz))
		return -1;
	s->cached_certs = metrics_get(f);
	if (metrics_gauge(m, "hsmca_ocspd_cached_answers",
	                  "Pre-signed answers (one per CertID hash).", NULL, 1, &f, err, errsz))
		return -1;
	s->cached_answers = metrics_get(f);
	if (metrics_gauge(
	        m, "hsmca_ocspd_soonest_next_update_seconds",
	        "Seconds until the first pre-signed answer's nextUpdate (negative: one is "
	        "stale).",
	        NULL, 1, &f, err, errsz))
		return -1;
	s->soonest = metrics_get(f);
	if (metrics_counter(m, "hsmca_ocspd_signed_total", "Responses signed through keyd.", NULL,
	                    1, &f, err, errsz))
		return -1;
	metrics_bind(metrics_get(f), read_signed, d);
	if (metrics_counter(
	        m, "hsmca_ocspd_unknown_refused_total",
	        "Requests for serials no authority issued answered unauthorized, beyond "
	        "limits.unknown_signatures_per_second.",
	        NULL, 1, &f, err, errsz))
		return -1;
	metrics_bind(metrics_get(f), read_unknown_refused, d);
	if (metrics_gauge(m, "hsmca_ocspd_connections", "Open client connections.", NULL, 1, &f,
	                  err, errsz))
		return -1;
	metrics_bind(metrics_get(f), read_conns, d);
	if (metrics_gauge(m, "hsmca_ocspd_up", "1 when the part named is reachable or in step.",
	                  "part", 3, &f, err, errsz))
		return -1;
	metrics_bind(metrics_get(f, "database"), read_flag, &d->db_up);
	metrics_bind(metrics_get(f, "keyd"), read_flag, &d->keyd_up);
	metrics_bind(metrics_get(f, "revocations"), read_flag, &d->synced);
	return 0;
}

/* GET /metrics: the cache's figures are read first, in one pass under its lock. */
static void scrape(struct conn *c, int keep, int head_only)
{
	struct ocspd *d = c->w->d;
	struct ocsp_server *srv = d->server;
	static char body[4096];
	static pthread_mutex_t body_lock = PTHREAD_MUTEX_INITIALIZER;
	int64_t soonest = 0, now = ocsp_now();
	size_t entries, answers = 0, len;
	char head[256];
	int hn;

	pthread_rwlock_rdlock(&d->cache.lock);
	entries = d->cache.count;
	for (size_t i = 0; i < d->cache.cap; i++) {
		const struct ocsp_entry *e = d->cache.slots[i];
		for (int v = 0; e && v < OCSP_VARIANTS; v++)
			if (e->ans[v]) {
				answers++;
				if (!soonest || e->ans[v]->next_update < soonest)
					soonest = e->ans[v]->next_update;
			}
	}
	pthread_rwlock_unlock(&d->cache.lock);
	/* One scrape at a time: the body is shared, and the gauges are this scrape's. */
	pthread_mutex_lock(&body_lock);
	metrics_set(srv->cached_certs, (int64_t)entries);
	metrics_set(srv->cached_answers, (int64_t)answers);
	metrics_set(srv->soonest, soonest ? soonest - now : 0);
	metrics_write(srv->metrics, body, sizeof(body), &len); /* cut at a whole line if need be */
	hn = snprintf(head, sizeof(head),
	              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	              "Content-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
	              len, keep ? "" : "Connection: close\r\n");
	conn_send(c, head, (size_t)hn);
	if (!head_only)
		conn_send(c, body, len);
	pthread_mutex_unlock(&body_lock);
}

static void job_done(void *arg, uint8_t *http, size_t len)
{
	struct conn *c = arg;
	struct worker *w = c->w;

	c->resp = http;
	c->resp_len = http ? len : 0;
	pthread_mutex_lock(&w->done_mu);
	c->next_done = w->done;
	w->done = c;
	pthread_mutex_unlock(&w->done_mu);
	event_active(w->done_ev, EV_READ, 0);
}

/* Answer one complete request. */
static void handle(struct conn *c, const struct ocsp_http_req *hr)
{
	struct ocspd *d = c->w->d;
	uint8_t derbuf[OCSP_REQ_MAX_DER];
	uint8_t out[8192];
	const uint8_t *der;
	size_t der_len, plen = strlen(d->cfg.path);
	int keep = hr->keep_alive, head_only = hr->method == OCSP_HTTP_HEAD, ca = -1, use_nonce;
	struct ocsp_req r;
	enum ocsp_req_status st;

	if (hr->method != OCSP_HTTP_POST && hr->target_len == 7 &&
	    !memcmp(hr->target, "/health", 7)) {
		health(c, keep, head_only);
		goto sent;
	}
	/* /metrics only on the metrics listener (metrics_listen), which serves nothing else but
	 * /health: the OCSP listener faces the network and answers 404 for it. */
	if (hr->method != OCSP_HTTP_POST && hr->target_len == 8 &&
	    !memcmp(hr->target, "/metrics", 8)) {
		if (!c->metrics) {
			http_fail(c, 404);
			return;
		}
		scrape(c, keep, head_only);
		goto sent;
	}
	if (c->metrics) {
		http_fail(c, 404);
		return;
	}
	if (hr->method == OCSP_HTTP_POST) {
		if (hr->content_type < 0) {
			ocsp_fail(c, OCSP_MALFORMED, keep);
			goto sent;
		}
		der = hr->body;
		der_len = hr->body_len;
	} else {
		long n;
		if (hr->target_len <= plen || memcmp(hr->target, d->cfg.path, plen)) {
			http_fail(c, 404);
			return;
		}
		n = ocsp_get_decode(hr->target + plen, hr->target_len - plen, derbuf,
		                    sizeof(derbuf));
		if (n < 0) {
			ocsp_fail(c, OCSP_MALFORMED, keep);
			goto sent;
		}
		der = derbuf;
		der_len = (size_t)n;
	}
	st = ocsp_req_parse(der, der_len, &r);
	if (st == OCSP_REQ_OK && r.n_certs > (size_t)d->cfg.max_certs_per_request)
		st = OCSP_REQ_TOO_MANY;
	if (st == OCSP_REQ_MALFORMED || st == OCSP_REQ_TOO_MANY) {
		ocsp_fail(c, OCSP_MALFORMED, keep);
		goto sent;
	}
	if (!atomic_load(&d->loaded)) {
		/* the authorities are not known yet: no answer can be right */
		ocsp_fail(c, OCSP_TRY_LATER, keep);
		goto sent;
	}
	if (st == OCSP_REQ_UNSUPPORTED_HASH) {
		ocsp_fail(c, OCSP_UNAUTHORIZED, keep);
		goto sent;
	}
	for (size_t i = 0; i < r.n_certs; i++) {
		int m = ocsp_ca_match(d, &r.certs[i]);
		if (m < 0 || (ca >= 0 && m != ca)) {
			ocsp_fail(c, OCSP_UNAUTHORIZED, keep);
			goto sent;
		}
		ca = m;
	}
	use_nonce = r.has_nonce && ocsp_ca_nonce_allowed(&d->cas[ca]);
	if (r.has_nonce && !use_nonce)
		log_debug(
		    "authority %s: nonce rate limit reached (%.2f, %lld/s); answering without "
		    "the nonce",
		    d->cas[ca].name, d->cas[ca].tokens, (long long)d->cas[ca].nonce_rate);
	if (r.n_certs == 1 && !use_nonce && r.certs[0].hash <= OCSP_HASH_SHA256 &&
	    r.certs[0].serial && r.certs[0].serial_len <= DB_SERIAL_MAX) {
		/* the fast path: a pre-signed answer */
		const struct ocsp_certid *id = &r.certs[0];
		int64_t now = ocsp_now();
		size_t n = 0;
		pthread_rwlock_rdlock(&d->cache.lock);
		struct ocsp_entry *e = ocsp_cache_find(&d->cache, ca, id->serial, id->serial_len);
		struct ocsp_answer *a = e ? e->ans[id->hash] : NULL;
		if (a && e->status == DB_CERT_ISSUED && atomic_load(&d->resyncing))
			a = NULL; /* the signer path answers tryLater */
		if (a && now < a->next_update) {
			if (hr->if_none_match && hr->method != OCSP_HTTP_POST)
				n = ocsp_http_not_modified(a, hr->if_none_match,
				                           hr->if_none_match_len, now, keep, out,
				                           sizeof(out));
			if (!n)
				n = ocsp_http_answer(a, now, 0, keep, head_only, out, sizeof(out));
		}
		pthread_rwlock_unlock(&d->cache.lock);
		if (n) {
			count(c, M_CACHED);
			conn_send(c, out, n);
			goto sent;
		}
	}
	if (ocsp_signer_submit(d, der, der_len, use_nonce, keep, head_only, job_done, c) != 0) {
		ocsp_fail(c, OCSP_TRY_LATER, keep);
		goto sent;
	}
	count(c, M_SIGNER);
	c->busy = 1;
	if (!keep)
		c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	return;
sent:
	if (!keep)
		close_after_send(c);
}

static void process(struct conn *c)
{
	struct worker *w = c->w;
	struct ocspd *d = w->d;
	size_t cap = w->lim.max_head + w->lim.max_body;

	while (!c->busy && !c->closing && c->bev) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t len = evbuffer_get_length(in), n = len < cap ? len : cap;
		struct ocsp_http_req req;
		const char *p;
		int r;

		if (len == 0) {
			struct timeval idle = {d->cfg.idle_timeout_seconds, 0},
			               wr = {WRITE_TIMEOUT_S, 0};
			c->req_start_ms = 0;
			bufferevent_set_timeouts(c->bev, &idle, &wr);
			return;
		}
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUT_HIGH)
			return; /* the write callback resumes */
		p = (const char *)evbuffer_pullup(in, (ssize_t)n);
		r = ocsp_http_parse(p, n, &w->lim, &req);
		if (r == 0) {
			int64_t now = ocsp_now_ms();
			if (!c->req_start_ms) {
				struct timeval rt = {d->cfg.request_timeout_seconds, 0},
				               wr = {WRITE_TIMEOUT_S, 0};
				c->req_start_ms = now;
				bufferevent_set_timeouts(c->bev, &rt, &wr);
			} else if (now - c->req_start_ms > d->cfg.request_timeout_seconds * 1000L) {
				http_fail(c, 408);
			}
			return;
		}
		if (r < 0) {
			if (log_get_level() >= LOG_DEBUG) {
				char shown[81];
				size_t k = 0;
				for (; k < n && k < 80; k++)
					shown[k] = (p[k] >= 0x20 && p[k] < 0x7f) ? p[k] : '.';
				shown[k] = '\0';
				log_debug("HTTP %d for a request of %zu bytes: \"%s\"", -r, n,
				          shown);
			}
			evbuffer_drain(in, len);
			http_fail(c, -r);
			return;
		}
		c->req_start_ms = 0;
		handle(c, &req);
		/* handle may have closed the connection */
		if (!c->bev)
			return;
		evbuffer_drain(bufferevent_get_input(c->bev), (size_t)r);
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->closing && !c->busy) {
		conn_free(c);
		return;
	}
	if (!c->busy)
		process(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what; /* EOF, error or timeout: the connection ends */
	conn_free(arg);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct conn *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->done_mu);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->done_mu);
	while (list) {
		struct conn *c = list;
		list = c->next_done;
		c->busy = 0;
		if (c->dead) {
			free(c->resp);
			free(c);
			continue;
		}
		if (c->resp)
			conn_send(c, c->resp, c->resp_len);
		else
			ocsp_fail(c, OCSP_INTERNAL, !c->closing);
		free(c->resp);
		c->resp = NULL;
		if (c->closing) {
			close_after_send(c);
			continue;
		}
		bufferevent_enable(c->bev, EV_READ);
		process(c);
	}
}

static void accept_conn(struct worker *w, evutil_socket_t fd, int metrics)
{
	struct ocspd *d = w->d;
	struct conn *c;
	int one = 1;

	if (atomic_fetch_add(&d->conns, 1) >= d->cfg.max_connections) {
		atomic_fetch_sub(&d->conns, 1);
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	if (c)
		c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c || !c->bev) {
		free(c);
		evutil_closesocket(fd);
		atomic_fetch_sub(&d->conns, 1);
		return;
	}
	c->w = w;
	c->metrics = metrics;
	c->next = w->open;
	if (w->open)
		w->open->prev = c;
	w->open = c;
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	{
		struct timeval idle = {d->cfg.idle_timeout_seconds, 0}, wr = {WRITE_TIMEOUT_S, 0};
		bufferevent_set_timeouts(c->bev, &idle, &wr);
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
	(void)l;
	(void)sa;
	(void)len;
	accept_conn(arg, fd, 0);
}

static void accept_metrics_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int len, void *arg)
{
	(void)l;
	(void)sa;
	(void)len;
	accept_conn(arg, fd, 1);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

static int listen_socket(const char *address, int listen_port, char *err, size_t errsz)
{
	struct addrinfo hints = {0}, *ai = NULL;
	char port[8];
	int fd = -1, one = 1, rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", listen_port);
	rc = getaddrinfo(address, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errsz, "listen address %s: %s", address, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
		snprintf(err, errsz, "listening on %s:%d: %s", address, listen_port,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* A port anything listens on already is refused (daemon_port_taken says why it matters). */
static int port_taken(const char *address, int listen_port, char *err, size_t errsz)
{
	struct addrinfo hints = {0}, *ai = NULL;
	char port[8];
	int e;

	if (listen_port == 0)
		return 0;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", listen_port);
	if (getaddrinfo(address, port, &hints, &ai) != 0)
		return 0; /* listen_socket says why */
	e = daemon_port_taken(ai);
	freeaddrinfo(ai);
	if (e)
		snprintf(err, errsz, "listening on %s:%d: %s", address, listen_port, strerror(e));
	return e != 0;
}

int ocsp_server_start(struct ocspd *d, char *err, size_t errsz)
{
	struct ocsp_server *s;

	if (port_taken(d->cfg.listen_address, d->cfg.listen_port, err, errsz) ||
	    port_taken(d->cfg.metrics_address, d->cfg.metrics_port, err, errsz))
		return -1;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	d->server = s;
	if (metrics_setup(s, d, err, errsz) != 0)
		return -1;
	s->workers = calloc((size_t)d->cfg.workers, sizeof(*s->workers));
	s->main_base = event_base_new();
	if (!s->workers || !s->main_base) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (int i = 0; i < d->cfg.workers; i++) {
		struct worker *w = &s->workers[i];
		int fd;
		w->d = d;
		w->lim.max_head = d->cfg.max_header_bytes;
		w->lim.max_headers = d->cfg.max_headers;
		w->lim.max_body = d->cfg.max_body_bytes;
		pthread_mutex_init(&w->done_mu, NULL);
		w->base = event_base_new();
		if (!w->base) {
			snprintf(err, errsz, "cannot make an event loop");
			return -1;
		}
		w->done_ev = event_new(w->base, -1, EV_PERSIST, done_cb, w);
		fd = listen_socket(d->cfg.listen_address, d->cfg.listen_port, err, errsz);
		if (fd < 0)
			return -1;
		w->lis = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		if (!w->lis || !w->done_ev) {
			close(fd);
			snprintf(err, errsz, "cannot make the listener");
			return -1;
		}
		s->n++;
		if (i == 0 && d->cfg.metrics_port) {
			fd = listen_socket(d->cfg.metrics_address, d->cfg.metrics_port, err, errsz);
			if (fd < 0)
				return -1;
			w->mlis = evconnlistener_new(w->base, accept_metrics_cb, w,
			                             LEV_OPT_CLOSE_ON_FREE, -1, fd);
			if (!w->mlis) {
				close(fd);
				snprintf(err, errsz, "cannot make the metrics listener");
				return -1;
			}
		}
	}
	return 0;
}

void ocspd_stop(struct ocspd *d)
{
	event_base_loopexit(d->server->main_base, NULL);
}

struct event_base *ocspd_base(struct ocspd *d)
{
	return d->server->main_base;
}

int ocsp_server_run(struct ocspd *d)
{
	struct ocsp_server *s = d->server;
	int started = 0;

	for (int i = 0; i < s->n; i++) {
		if (pthread_create(&s->workers[i].th, NULL, worker_main, &s->workers[i]) != 0) {
			log_error("cannot start worker threads");
			break;
		}
		started++;
	}
	if (started == s->n) {
		log_info("serving OCSP on %s:%d%s with %d workers", d->cfg.listen_address,
		         d->cfg.listen_port, d->cfg.path, s->n);
		if (d->cfg.metrics_port)
			log_info("serving /metrics on %s:%d", d->cfg.metrics_address,
			         d->cfg.metrics_port);
		else
			log_info("no metrics_listen: /metrics is not served");
		event_base_dispatch(s->main_base);
	}
	/* Stop accepting, let the signers finish, then stop the loops. */
	atomic_store(&d->stopping, 1);
	for (int i = 0; i < s->n; i++) {
		evconnlistener_disable(s->workers[i].lis);
		if (s->workers[i].mlis)
			evconnlistener_disable(s->workers[i].mlis);
	}
	ocsp_signer_stop(d);
	for (int i = 0; i < started; i++) {
		event_base_loopexit(s->workers[i].base, NULL);
		pthread_join(s->workers[i].th, NULL);
	}
	return started == s->n ? 0 : -1;
}

void ocsp_server_free(struct ocspd *d)
{
	struct ocsp_server *s = d->server;

	if (!s)
		return;
	for (int i = 0; s->workers && i < d->cfg.workers; i++) {
		struct worker *w = &s->workers[i];
		if (w->done_ev)
			done_cb(-1, 0, w); /* answers that came back during the stop */
		while (w->open)
			conn_free(w->open);
		if (w->lis)
			evconnlistener_free(w->lis);
		if (w->mlis)
			evconnlistener_free(w->mlis);
		if (w->done_ev)
			event_free(w->done_ev);
		if (w->base)
			event_base_free(w->base);
		pthread_mutex_destroy(&w->done_mu);
	}
	free(s->workers);
	if (s->main_base)
		event_base_free(s->main_base);
	metrics_free(s->metrics);
	free(s);
	d->server = NULL;
}
