/* The publish folder over HTTP (libevent, its own thread): GET and HEAD of <name>.crl and
 * <name>.pem with ETag, Last-Modified and If-None-Match / If-Modified-Since (304), each
 * authority's certificate at /ca/<name>.der (its caIssuers URL) likewise, and /health. Files are
 * opened per request, so an atomic rename is seen at once and a reader never sees a half-written
 * CRL. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/sha.h>

#include "crld.h"
#include "httptext.h"
#include "log.h"

struct crld_http {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp *mhttp; /* the metrics listener, or NULL */
	pthread_t thread;
	int running;
	char folder[CRLD_PATH_MAX];
	crld_health_fn health;
	crld_metrics_fn metrics;
	crld_issuer_fn issuer;
	void *arg;
};

int crld_issuer_path(const char *path, char *name)
{
	size_t n;

	if (strncmp(path, "/ca/", 4))
		return 0;
	path += 4;
	n = strnlen(path, CRLD_NAME_MAX + 5);
	if (n < 5 || n > CRLD_NAME_MAX + 4 || strcmp(path + n - 4, ".der"))
		return 0;
	for (size_t i = 0; i < n - 4; i++)
		if (!((path[i] >= 'a' && path[i] <= 'z') || (path[i] >= '0' && path[i] <= '9') ||
		      path[i] == '-' || path[i] == '_'))
			return 0;
	memcpy(name, path, n - 4);
	name[n - 4] = '\0';
	return 1;
}

int crld_file_name_ok(const char *name)
{
	size_t n = strnlen(name, 201), i;

	if (n < 5 || n > 200)
		return 0;
	if (strcmp(name + n - 4, ".crl") && strcmp(name + n - 4, ".pem"))
		return 0;
	for (i = 0; i < n - 4; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static void reply_text(struct evhttp_request *req, int code, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; charset=utf-8");
	if (b && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add_printf(b, "%s\n", text);
	evhttp_send_reply(req, code, httptext_status(code), b);
	if (b)
		evbuffer_free(b);
}

/* ETag, Last-Modified and Cache-Control as for every published file; 1 when the request's
 * If-None-Match or If-Modified-Since says the client has this version (reply 304). */
static int cache_headers(struct evhttp_request *req, const char *etag, int64_t modified)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const char *inm = evhttp_find_header(in, "If-None-Match");
	const char *ims = evhttp_find_header(in, "If-Modified-Since");
	char date[40];
	int64_t t;

	httptext_date(modified, date, sizeof(date));
	evhttp_add_header(out, "ETag", etag);
	evhttp_add_header(out, "Last-Modified", date);
	evhttp_add_header(out, "Cache-Control", "public, no-cache");
	if (inm)
		return strstr(inm, etag) != NULL || !strcmp(inm, "*");
	return ims && httptext_date_parse(ims, &t) == 0 && modified <= t;
}

/* The file rel of the publish folder (a name checked already) as type. */
static void serve_file(struct crld_http *h, struct evhttp_request *req, const char *rel,
                       const char *type)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char file[CRLD_PATH_MAX + 256], etag[80];
	struct evbuffer *b = NULL;
	struct stat st;
	int fd;

	snprintf(file, sizeof(file), "%s/%s", h->folder, rel);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		reply_text(req, 404, "no such file");
		return;
	}
	/* A rename gives a new inode: inode, size and mtime name one published version. */
	snprintf(etag, sizeof(etag), "\"%llx-%llx-%llx\"", (unsigned long long)st.st_ino,
	         (unsigned long long)st.st_size,
	         (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
	             (unsigned long long)st.st_mtim.tv_nsec);
	if (cache_headers(req, etag, (int64_t)st.st_mtim.tv_sec)) {
		close(fd);
		evhttp_send_reply(req, 304, httptext_status(304), NULL);
		return;
	}
	evhttp_add_header(out, "Content-Type", type);
	b = evbuffer_new();
	if (!b) {
		close(fd);
		reply_text(req, 500, "out of memory");
		return;
	}
	if (cmd == EVHTTP_REQ_HEAD) {
		char len[32];
		snprintf(len, sizeof(len), "%lld", (long long)st.st_size);
		evhttp_add_header(out, "Content-Length", len);
		close(fd);
	} else if (st.st_size > 0 && evbuffer_add_file(b, fd, 0, st.st_size) != 0) {
		/* evbuffer_add_file closed fd */
		evbuffer_free(b);
		reply_text(req, 500, "cannot read the file");
		return;
	} else if (st.st_size == 0) {
		close(fd);
	}
	evhttp_send_reply(req, 200, httptext_status(200), b);
	evbuffer_free(b);
}

/* /ca/<name>.der: the authority's certificate from the database, as crld loaded it; for a CA
 * crld does not load (an offline root), the file ca/<name>.der the operator put into the publish
 * folder. */
static void serve_issuer(struct crld_http *h, struct evhttp_request *req, const char *name)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	unsigned char der[CRLD_ISSUER_DER_MAX], md[32];
	char etag[40], len_text[32];
	struct evbuffer *b;
	int64_t since = 0;
	size_t len = h->issuer ? h->issuer(h->arg, name, der, sizeof(der), &since) : 0;

	if (!len) {
		char rel[CRLD_NAME_MAX + 16];
		snprintf(rel, sizeof(rel), "ca/%s.der", name);
		serve_file(h, req, rel, "application/pkix-cert");
		return;
	}
	/* The certificate's own hash names the version: the same bytes, the same ETag. */
	SHA256(der, len, md);
	snprintf(etag, sizeof(etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", md[0], md[1], md[2],
	         md[3], md[4], md[5], md[6], md[7]);
	if (cache_headers(req, etag, since)) {
		evhttp_send_reply(req, 304, httptext_status(304), NULL);
		return;
	}
	evhttp_add_header(out, "Content-Type", "application/pkix-cert");
	if (!(b = evbuffer_new())) {
		reply_text(req, 500, "out of memory");
		return;
	}
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(len_text, sizeof(len_text), "%zu", len);
		evhttp_add_header(out, "Content-Length", len_text);
	} else {
		evbuffer_add(b, der, len);
	}
	evhttp_send_reply(req, 200, httptext_status(200), b);
	evbuffer_free(b);
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct crld_http *h = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char name[CRLD_NAME_MAX + 1];

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(out, "Allow", "GET, HEAD");
		reply_text(req, 405, "only GET and HEAD");
		return;
	}
	if (!path || path[0] != '/') {
		reply_text(req, 404, "no such file");
		return;
	}
	if (!strcmp(path, "/health")) {
		char text[2048];
		int ok = h->health ? h->health(h->arg, text, sizeof(text)) : 1;
		if (!h->health)
			snprintf(text, sizeof(text), "ok");
		evhttp_add_header(out, "Cache-Control", "no-store");
		reply_text(req, ok ? 200 : 503, text);
		return;
	}
	/* /metrics only on the metrics listener (handle_metrics): this one faces the network. */
	if (crld_issuer_path(path, name)) {
		serve_issuer(h, req, name);
		return;
	}
	if (!crld_file_name_ok(path + 1)) {
		reply_text(req, 404, "no such file");
		return;
	}
	serve_file(h, req, path + 1,
	           strcmp(path + strlen(path) - 4, ".crl") ? "application/x-pem-file"
	                                                   : "application/pkix-crl");
}

/* The metrics listener: /metrics and /health, nothing else. */
static void handle_metrics(struct evhttp_request *req, void *arg)
{
	struct crld_http *h = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(out, "Allow", "GET, HEAD");
		reply_text(req, 405, "only GET and HEAD");
		return;
	}
	if (path && !strcmp(path, "/health")) {
		handle(req, arg);
		return;
	}
	if (path && !strcmp(path, "/metrics") && h->metrics) {
		static char text[65536];
		static pthread_mutex_t text_lock = PTHREAD_MUTEX_INITIALIZER;
		struct evbuffer *b = evhttp_request_get_output_buffer(req);
		size_t len;
		pthread_mutex_lock(&text_lock);
		len = h->metrics(h->arg, text, sizeof(text));
		evbuffer_add(b, text, len < sizeof(text) ? len : sizeof(text) - 1);
		pthread_mutex_unlock(&text_lock);
		evhttp_add_header(out, "Content-Type", "text/plain; version=0.0.4");
		evhttp_add_header(out, "Cache-Control", "no-store");
		evhttp_send_reply(req, 200, httptext_status(200), NULL);
		return;
	}
	reply_text(req, 404, "only /metrics and /health here");
}

static void *loop(void *arg)
{
	struct crld_http *h = arg;

	event_base_dispatch(h->base);
	return NULL;
}

/* An evhttp on base for address:port with the limits both listeners share, or NULL. */
static struct evhttp *http_on(struct event_base *base, const char *address, int port,
                              void (*cb)(struct evhttp_request *, void *), void *arg, char *err,
                              size_t errsz)
{
	struct evhttp *http = evhttp_new(base);

	if (!http) {
		snprintf(err, errsz, "cannot make the HTTP server");
		return NULL;
	}
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_headers_size(http, 16384);
	evhttp_set_max_body_size(http, 0);
	evhttp_set_timeout(http, 30);
	evhttp_set_gencb(http, cb, arg);
	if (evhttp_bind_socket(http, address, (ev_uint16_t)port) != 0) {
		snprintf(err, errsz, "cannot listen on %s port %d: %s", address, port,
		         strerror(errno));
		evhttp_free(http);
		return NULL;
	}
	return http;
}

int crld_http_start(const char *address, int port, const char *metrics_address, int metrics_port,
                    const char *folder, crld_health_fn health, crld_metrics_fn metrics,
                    crld_issuer_fn issuer, void *arg, struct crld_http **out, char *err,
                    size_t errsz)
{
	struct crld_http *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	evthread_use_pthreads();
	snprintf(h->folder, sizeof(h->folder), "%s", folder);
	h->health = health;
	h->metrics = metrics;
	h->issuer = issuer;
	h->arg = arg;
	h->base = event_base_new();
	if (!h->base) {
		snprintf(err, errsz, "cannot make the HTTP server");
		goto fail;
	}
	if (address[0] && !(h->http = http_on(h->base, address, port, handle, h, err, errsz)))
		goto fail;
	if (metrics_port && !(h->mhttp = http_on(h->base, metrics_address, metrics_port,
	                                         handle_metrics, h, err, errsz)))
		goto fail;
	if (pthread_create(&h->thread, NULL, loop, h) != 0) {
		snprintf(err, errsz, "cannot start the HTTP thread");
		goto fail;
	}
	h->running = 1;
	*out = h;
	return 0;
fail:
	if (h->http)
		evhttp_free(h->http);
	if (h->mhttp)
		evhttp_free(h->mhttp);
	if (h->base)
		event_base_free(h->base);
	free(h);
	return -1;
}

void crld_http_stop(struct crld_http *h)
{
	if (!h)
		return;
	if (h->running) {
		event_base_loopbreak(h->base);
		pthread_join(h->thread, NULL);
	}
	if (h->http)
		evhttp_free(h->http);
	if (h->mhttp)
		evhttp_free(h->mhttp);
	event_base_free(h->base);
	free(h);
}
