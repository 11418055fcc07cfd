/* The HTTPS server: libevent's evhttp over OpenSSL bufferevents, one event loop per worker,
 * each handing its requests to cad_dispatch (cad_routes.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "cad_approvals.h"
#include "cad_internal.h"
#include "daemon.h"
#include "log.h"

/* Each connection's place in the count of open connections, kept with its SSL: freed (and
 * uncounted) when libevent frees the connection, however it ends. */
struct conn_slot {
	struct cad *cad;
	int over; /* accepted beyond max_connections: its requests are answered 503 */
};
static int slot_index = -1;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void slot_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct conn_slot *s = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (s) {
		atomic_fetch_sub(&s->cad->connections, 1);
		free(s);
	}
}

static void slot_index_make(void)
{
	slot_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, slot_free);
}

int cad_conn_over_cap(struct evhttp_request *req)
{
	SSL *ssl = cad_request_ssl(req);
	struct conn_slot *s = ssl && slot_index >= 0 ? SSL_get_ex_data(ssl, slot_index) : NULL;

	return s && s->over;
}

/* A reply reaches the connection's output as separate chains (evhttp's status line and
 * headers, then the body), and bufferevent_openssl makes one TLS record and one write() of
 * each chain. A reply that fits one record (16 KiB) is made contiguous as it is added, so that
 * it leaves in one record and one system call: two fewer per reply, six per ACME order. The
 * SSL object accepts a moved buffer when a write is retried (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER),
 * as the bytes not yet written may be moved by this. */
#define REPLY_ONE_RECORD 16384

static void reply_in_one_record(struct evbuffer *out, const struct evbuffer_cb_info *info,
                                void *arg)
{
	size_t len = evbuffer_get_length(out);

	(void)arg;
	if (info->n_added && len <= REPLY_ONE_RECORD && evbuffer_get_contiguous_space(out) < len)
		evbuffer_pullup(out, -1);
}

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
	struct cad *cad = arg;
	SSL *ssl = SSL_new(cad->ssl);
	struct conn_slot *slot = malloc(sizeof(*slot));
	struct bufferevent *bev;

	pthread_once(&slot_once, slot_index_make);
	if (!ssl || !slot || slot_index < 0 || !SSL_set_ex_data(ssl, slot_index, slot)) {
		free(slot);
		SSL_free(ssl);
		return NULL;
	}
	slot->cad = cad;
	slot->over = atomic_fetch_add(&cad->connections, 1) + 1 > cad->cfg->max_connections;
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (bev) {
		/* Clients often close without close_notify after the reply; that is not an
		 * attack on a request/response protocol with explicit lengths. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		if (!evbuffer_add_cb(bufferevent_get_output(bev), reply_in_one_record, NULL)) {
			bufferevent_free(bev);
			return NULL;
		}
	}
	return bev;
}

void cad_stop(struct cad *cad)
{
	for (int i = 0; i < cad->n_workers; i++)
		if (cad->workers[i].base)
			event_base_loopexit(cad->workers[i].base, NULL);
}

/* A listening socket on ai (its port set to port), shared with the other workers. */
static evutil_socket_t listen_socket(const struct addrinfo *ai, int port)
{
	struct sockaddr_storage ss;
	int fd, one = 1;

	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bound_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
	                               : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int worker_init(struct cad *cad, struct cad_worker *w, evutil_socket_t fd)
{
	const struct cad_config *cfg = cad->cfg;

	w->cad = cad;
	w->base = event_base_new();
	w->http = w->base ? evhttp_new(w->base) : NULL;
	if (!w->http)
		return -1;
	evhttp_set_bevcb(w->http, make_tls_bev, cad);
	/* libevent's own limit answers with an HTML 413; ours (cad_body_object) answers in
	 * JSON, so libevent's is a memory backstop above it. */
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes * 2);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_header_bytes);
	evhttp_set_timeout(w->http, cfg->timeout_seconds);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_HEAD);
	evhttp_set_gencb(w->http, cad_dispatch, w);
	/* evhttp owns fd from here (closed when w->http is freed). */
	if (!evhttp_accept_socket_with_handle(w->http, fd)) {
		close(fd);
		return -1;
	}
	return 0;
}

int cad_new(struct cad_config *cfg, struct cad **out, char *err, size_t errsz)
{
	struct cad *cad = calloc(1, sizeof(*cad));
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	struct db_err derr = {0};
	char portbuf[8];
	int rc = -1, e;

	*out = NULL;
	if (!cad) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	cad->cfg = cfg;
	pthread_mutex_init(&cad->lock, NULL);
	pthread_mutex_init(&cad->profiles.mu, NULL);
	ca_init(&cad->ca, cfg->authorities, cfg->n_authorities, cfg->database, &cad->lock,
	        cad_load_key, cad_metrics_group);
	if (evthread_use_pthreads() != 0) {
		snprintf(err, errsz, "setting up libevent's threads failed");
		goto out;
	}
	cad->ssl = cad_tls_new(cfg, err, errsz);
	if (!cad->ssl)
		goto out;
	if (cad_client_crl_init(cad, err, errsz) != 0)
		goto out;
	if (cad_mfa_new(cad, err, errsz) != 0)
		goto out;
	if (cad_acme_new(cad, err, errsz) != 0)
		goto out;
	if (cad_sessions_init(&cad->sessions, (size_t)cfg->max_sessions, cfg->session_idle_seconds,
	                      cfg->session_max_seconds) != 0) {
		snprintf(err, errsz, "out of memory for %d console sessions", cfg->max_sessions);
		goto out;
	}
	snprintf(portbuf, sizeof(portbuf), "%d", cfg->listen_port);
	if (getaddrinfo(cfg->listen_address, portbuf, &hints, &ai) != 0 || !ai) {
		snprintf(err, errsz, "cannot listen on %s port %d: no such address",
		         cfg->listen_address, cfg->listen_port);
		goto out;
	}
	if (cfg->listen_port && (e = daemon_port_taken(ai)) != 0) {
		snprintf(err, errsz, "cannot listen on %s port %d: %s", cfg->listen_address,
		         cfg->listen_port, strerror(e));
		goto out;
	}
	cad->port = cfg->listen_port;
	for (int i = 0; i < cfg->workers && i < CAD_MAX_WORKERS; i++) {
		evutil_socket_t fd = listen_socket(ai, cad->port);
		if (fd < 0) {
			snprintf(err, errsz, "cannot listen on %s port %d: %s", cfg->listen_address,
			         cad->port, strerror(errno));
			goto out;
		}
		if (i == 0)
			cad->port = bound_port(fd); /* port 0: the kernel's choice, for all */
		cad->workers[i].index = i;
		cad->n_workers = i + 1;
		if (worker_init(cad, &cad->workers[i], fd) != 0) {
			snprintf(err, errsz, "setting up event loop %d failed", i);
			goto out;
		}
	}
	cad->base = cad->workers[0].base;
	if (cad_checkpoint_start(cad) != 0) {
		snprintf(err, errsz, "setting up the audit checkpoint timer failed");
		goto out;
	}
	/* The database may be down at start; requests retry it and answer 503 meanwhile. */
	if (db_connect(cfg->database, &cad->workers[0].db, &derr) != DB_OK) {
		log_warn("database unavailable at start (will retry per request): %s", derr.msg);
		cad->workers[0].db = NULL;
	} else {
		switch (ca_authorities_ready(&cad->ca, cad->workers[0].db, err, errsz)) {
		case -3:
			goto out; /* a configuration error: refuse to start */
		case -2:
			log_warn("authorities not registered yet (will retry per request): %s",
			         err);
			break;
		case -1:
			log_warn("authority keys not loaded yet (will retry per request): %s", err);
			break;
		default:
			break;
		}
		/* The thresholds of the kinds the command line runs (docs/approvals.md). */
		if (cad_approvals_publish(cfg, cad->workers[0].db, &derr) != 0)
			log_warn("approval policy not stored yet (will retry): %s", derr.msg);
	}
	/* The profiles in use come from the database (seeded from the configuration once). */
	if (cad_profiles_start(cad, err, errsz) != 0)
		goto out;
	*out = cad;
	cad = NULL;
	rc = 0;
out:
	if (ai)
		freeaddrinfo(ai);
	cad_free(cad);
	return rc;
}

static void *worker_main(void *arg)
{
	struct cad_worker *w = arg;

	if (event_base_dispatch(w->base) < 0)
		log_error("event loop %d failed", w->index);
	return NULL;
}

int cad_run(struct cad *cad)
{
	int rc;

	for (int i = 1; i < cad->n_workers; i++) {
		struct cad_worker *w = &cad->workers[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_error("cannot start event loop %d", i);
			cad_stop(cad);
			break;
		}
		w->started = 1;
	}
	log_info("listening on %s port %d with %d event loops", cad->cfg->listen_address, cad->port,
	         cad->n_workers);
	rc = event_base_dispatch(cad->base) < 0 ? -1 : 0;
	/* Worker 0 stopped (cad_stop, or its loop failed): stop the others too. */
	cad_stop(cad);
	for (int i = 1; i < cad->n_workers; i++)
		if (cad->workers[i].started) {
			pthread_join(cad->workers[i].thread, NULL);
			cad->workers[i].started = 0;
		}
	return rc;
}

struct event_base *cad_base(struct cad *cad)
{
	return cad->base;
}

void cad_free(struct cad *cad)
{
	if (!cad)
		return;
	if (cad->checkpoint_timer)
		event_free(cad->checkpoint_timer);
	cad_profiles_stop(cad);
	cad_acme_stop_waits(cad);
	cad_est_stop_waits(cad);
	for (int i = 0; i < cad->n_workers; i++) {
		struct cad_worker *w = &cad->workers[i];
		if (w->http)
			evhttp_free(w->http);
		if (w->base)
			event_base_free(w->base);
		db_close(w->db);
		cad_token_cache_clear(w);
	}
	SSL_CTX_free(cad->ssl);
	X509_CRL_free(cad->client_crl);
	db_close(cad->db);
	pthread_mutex_destroy(&cad->lock);
	pthread_mutex_destroy(&cad->profiles.mu);
	ca_fini(&cad->ca);
	cad_acme_free(cad);
	cad_sessions_fini(&cad->sessions);
	cad_mfa_free(cad);
	free(cad);
}
