/* http-01 (RFC 8555 §8.3) with libcurl: every hop's host is resolved here, its addresses checked
 * against the allow-ranges and handed to curl with CURLOPT_RESOLVE, so curl never resolves a
 * name itself; CURLOPT_OPENSOCKETFUNCTION checks the address of every socket curl opens once
 * more, so nothing outside the ranges is ever connected to (no DNS rebinding between check and
 * connect). Redirects are followed here, not by curl, each target checked like the first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "acmevald.h"

#define HTTP_HEADER_MAX 16384
#define HTTP_URL_MAX 2048

struct xfer {
	const struct acmeval_config *cfg;
	char *body;
	size_t len;
	int too_big, headers_too_big;
	size_t header_bytes;
	long start_ms, last_ms;
	curl_off_t last_dl;
	int got_byte, read_timed_out;
	int refused; /* the socket callback refused an address */
	char refused_addr[64];
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	x->last_ms = now_ms();
	x->got_byte = 1;
	if (x->len + n > (size_t)x->cfg->max_response_bytes) {
		x->too_big = 1;
		return 0; /* CURLE_WRITE_ERROR */
	}
	memcpy(x->body + x->len, p, n);
	x->len += n;
	return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	(void)p;
	x->last_ms = now_ms();
	x->got_byte = 1;
	x->header_bytes += n;
	if (x->header_bytes > HTTP_HEADER_MAX) {
		x->headers_too_big = 1;
		return 0;
	}
	return n;
}

/* The read timeout: no byte for read_ms once connected (the connect has its own). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct xfer *x = arg;
	long now = now_ms(), allowed;

	(void)dltotal, (void)ultotal, (void)ulnow;
	if (dlnow != x->last_dl) {
		x->last_dl = dlnow;
		x->last_ms = now;
	}
	allowed = x->cfg->read_timeout_ms + (x->got_byte ? 0 : x->cfg->connect_timeout_ms);
	if (now - x->last_ms > allowed) {
		x->read_timed_out = 1;
		return 1;
	}
	return 0;
}

static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer *x = arg;

	if (purpose != CURLSOCKTYPE_IPCXN ||
	    !acmeval_addr_allowed(x->cfg->allow, x->cfg->nallow, &a->addr)) {
		x->refused = 1;
		if (purpose == CURLSOCKTYPE_IPCXN)
			acmeval_addr_text(&a->addr, x->refused_addr, sizeof(x->refused_addr));
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* One hop's target, taken apart. */
struct target {
	char scheme[8];
	char host[ACMEVAL_IDENT_MAX + 3]; /* IPv6 literals keep their brackets */
	int port;
};

static int parse_target(const char *url, struct target *t, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;

	if (!u) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "not a URL");
		goto out;
	}
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		snprintf(why, whylen, "scheme \"%.8s\" is neither http nor https", scheme);
		goto out;
	}
	if (strlen(host) >= sizeof(t->host)) {
		snprintf(why, whylen, "host name too long");
		goto out;
	}
	snprintf(t->scheme, sizeof(t->scheme), "%s", scheme);
	for (size_t i = 0; host[i]; i++)
		t->host[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
	t->host[strlen(host)] = 0;
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(why, whylen, "no port");
		goto out;
	}
	t->port = atoi(port);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* One GET of url; x filled. The CURLcode, with *status the HTTP status and redirect (when the
 * answer is one) a copy of its Location made absolute. */
static CURLcode get_once(struct xfer *x, const char *url, const struct target *t,
                         const struct sockaddr_storage *addrs, size_t naddrs, long budget_ms,
                         long *status, char *redirect, size_t redirect_len)
{
	struct curl_slist *resolve = NULL;
	char entry[ACMEVAL_IDENT_MAX + 16 + ACMEVAL_MAX_ADDRS * 50], a[64];
	CURL *c = curl_easy_init();
	CURLcode rc;
	char *loc = NULL;
	size_t pos;

	*status = 0;
	redirect[0] = 0;
	if (!c)
		return CURLE_OUT_OF_MEMORY;
	if (t->host[0] != '[') {
		pos = (size_t)snprintf(entry, sizeof(entry), "%s:%d:", t->host, t->port);
		for (size_t i = 0; i < naddrs && pos < sizeof(entry); i++) {
			acmeval_addr_text((const struct sockaddr *)&addrs[i], a, sizeof(a));
			pos += (size_t)snprintf(entry + pos, sizeof(entry) - pos,
			                        addrs[i].ss_family == AF_INET6 ? "%s[%s]" : "%s%s",
			                        i ? "," : "", a);
		}
		resolve = curl_slist_append(NULL, entry);
		if (!resolve) {
			curl_easy_cleanup(c);
			return CURLE_OUT_OF_MEMORY;
		}
	}
	x->len = 0;
	x->too_big = x->headers_too_big = x->read_timed_out = x->got_byte = 0;
	x->header_bytes = 0;
	x->last_dl = 0;
	x->start_ms = x->last_ms = now_ms();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "hsmca-acmevald");
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL);
	/* http-01 redirected to https: the certificate is not what is being checked (Boulder). */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	if (resolve)
		curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                 x->cfg->connect_timeout_ms < budget_ms ? x->cfg->connect_timeout_ms
	                                                        : budget_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, budget_ms);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
			snprintf(redirect, redirect_len, "%s", loc);
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(resolve);
	return rc;
}

static int is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

void acmeval_http01(const struct acmeval_config *cfg, const struct acmeval_req *req,
                    struct acmeval_result *res)
{
	struct xfer x = {.cfg = cfg};
	char url[HTTP_URL_MAX + 1], next[HTTP_URL_MAX + 2], why[128], a[64];
	char(*seen)[HTTP_URL_MAX + 1] = NULL;
	struct sockaddr_storage addrs[ACMEVAL_MAX_ADDRS], ok[ACMEVAL_MAX_ADDRS];
	long deadline = now_ms() + cfg->total_timeout_ms;
	int hops = 0;

	memset(res, 0, sizeof(*res));
	x.body = malloc((size_t)cfg->max_response_bytes + 1);
	seen = calloc((size_t)cfg->max_redirects + 1, sizeof(*seen));
	if (!x.body || !seen) {
		acmeval_fail(res, "serverInternal", "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "http://%s%s%s:%d/.well-known/acme-challenge/%s",
	         strchr(req->identifier, ':') ? "[" : "", req->identifier,
	         strchr(req->identifier, ':') ? "]" : "", cfg->http_port, req->token);
	for (;;) {
		struct target t;
		size_t n = 0, nok = 0;
		long status, budget = deadline - now_ms();
		CURLcode rc;

		if (parse_target(url, &t, why, sizeof(why))) {
			acmeval_fail(res, "connection", "invalid redirect target: %s", why);
			goto out;
		}
		if (hops > 0) {
			int want = strcmp(t.scheme, "http") == 0 ? cfg->http_port : cfg->https_port;
			if (t.port != want) {
				acmeval_fail(res, "connection",
				             "redirect to port %d refused: only %d (http) and %d "
				             "(https) are followed",
				             t.port, cfg->http_port, cfg->https_port);
				goto out;
			}
		}
		if (budget <= 0) {
			acmeval_fail(res, "connection", "timeout after %ld ms",
			             cfg->total_timeout_ms);
			goto out;
		}
		if (acmeval_resolve(cfg, t.host, t.port, addrs, ACMEVAL_MAX_ADDRS, &n, budget, res))
			goto out;
		for (size_t i = 0; i < n; i++)
			if (acmeval_addr_allowed(cfg->allow, cfg->nallow,
			                         (const struct sockaddr *)&addrs[i]))
				ok[nok++] = addrs[i];
		if (nok == 0) {
			acmeval_addr_text((const struct sockaddr *)&addrs[0], a, sizeof(a));
			acmeval_fail(res, "connection",
			             "%s resolves to %s, outside the validator's allowed address "
			             "ranges: not connecting",
			             t.host, a);
			goto out;
		}
		snprintf(seen[hops], sizeof(seen[hops]), "%s", url);
		budget = deadline - now_ms();
		rc = get_once(&x, url, &t, ok, nok, budget > 0 ? budget : 1, &status, next,
		              sizeof(next));
		if (x.refused) {
			acmeval_fail(res, "connection",
			             "connection to %s refused by the validator's network policy",
			             x.refused_addr[0] ? x.refused_addr : t.host);
			goto out;
		}
		if (x.too_big) {
			acmeval_fail(res, "unauthorized",
			             "invalid response from %s: larger than %ld bytes", url,
			             cfg->max_response_bytes);
			goto out;
		}
		if (x.headers_too_big) {
			acmeval_fail(res, "unauthorized",
			             "invalid response from %s: headers larger than %d bytes", url,
			             HTTP_HEADER_MAX);
			goto out;
		}
		if (x.read_timed_out || rc == CURLE_OPERATION_TIMEDOUT) {
			acmeval_fail(res, "connection", "timeout fetching %s", url);
			goto out;
		}
		if (rc == CURLE_SSL_CONNECT_ERROR) {
			acmeval_fail(res, "tls", "TLS error fetching %s: %s", url,
			             curl_easy_strerror(rc));
			goto out;
		}
		if (rc != CURLE_OK) {
			acmeval_fail(res, "connection", "fetching %s: %s", url,
			             curl_easy_strerror(rc));
			goto out;
		}
		if (is_redirect(status)) {
			if (!next[0] || strlen(next) > HTTP_URL_MAX) {
				acmeval_fail(res, "connection",
				             "redirect from %s without a usable Location", url);
				goto out;
			}
			if (hops >= cfg->max_redirects) {
				acmeval_fail(res, "connection", "too many redirects (more than %d)",
				             cfg->max_redirects);
				goto out;
			}
			for (int i = 0; i <= hops; i++)
				if (strcmp(seen[i], next) == 0) {
					acmeval_fail(res, "connection", "redirect loop at %s",
					             next);
					goto out;
				}
			hops++;
			snprintf(url, sizeof(url), "%s", next);
			continue;
		}
		if (status != 200) {
			acmeval_fail(res, "unauthorized", "invalid response from %s: HTTP %ld", url,
			             status);
			goto out;
		}
		if (!acmeval_body_matches(x.body, x.len, req->key_authorization)) {
			acmeval_fail(res, "unauthorized",
			             "the key authorization file from %s does not match this "
			             "challenge",
			             url);
			goto out;
		}
		res->valid = 1;
		goto out;
	}
out:
	free(x.body);
	free(seen);
}
