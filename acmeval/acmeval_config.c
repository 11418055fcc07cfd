/* hsmca-acmevald's configuration (docs/acmeval.md, "Configuration"). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acmevald.h"
#include "yconf.h"

static const char *const top_fields[] = {"listen",
                                         "allow",
                                         "hosts",
                                         "ports",
                                         "timeouts",
                                         "max_response_bytes",
                                         "max_redirects",
                                         "resolver",
                                         "workers",
                                         "user",
                                         "group",
                                         "seccomp",
                                         NULL};
static const char *const listen_fields[] = {"path", "mode", "group", "peer_user", NULL};
static const char *const ports_fields[] = {"http", "https", "tls_alpn", NULL};
static const char *const timeouts_fields[] = {"connect_ms", "read_ms", "total_ms", NULL};
static const char *const host_fields[] = {"name", "address", NULL};

void acmeval_config_init(struct acmeval_config *c)
{
	memset(c, 0, sizeof(*c));
	c->socket_mode = 0660;
	c->http_port = 80;
	c->https_port = 443;
	c->tls_alpn_port = 443;
	c->connect_timeout_ms = 5000;
	c->read_timeout_ms = 5000;
	c->total_timeout_ms = 20000;
	c->max_response_bytes = 1024;
	c->max_redirects = 10;
	c->workers = 4;
	sandbox_config_init(&c->sandbox);
}

/* "name" or "*.name" of lower-case letters, digits, hyphens and dots. */
static int pattern_ok(const char *p)
{
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	if (!*p || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, ".."))
		return 0;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return 0;
	return 1;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* "127.0.0.1:5353" or "[::1]:53": what c-ares's server list accepts, checked here so a typo is
 * a configuration error. */
static int resolver_ok(const char *s)
{
	char host[64];
	const char *colon;
	unsigned char buf[16];
	long port;
	char *end;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			return 0;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = 0;
		if (inet_pton(AF_INET6, host, buf) != 1)
			return 0;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return 0;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
		if (inet_pton(AF_INET, host, buf) != 1)
			return 0;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return colon[1] && !errno && !*end && port >= 1 && port <= 65535;
}

static int load(struct yconf *y, struct acmeval_config *c)
{
	yaml_node_t *root = yconf_root(y), *v, *seq;
	char buf[256];
	long l;

	if (yconf_check_map(y, root, "configuration", top_fields) ||
	    sandbox_config_read(y, root, &c->sandbox))
		return -1;
	if (!(v = yconf_get(y, root, "listen")))
		return yconf_fail(y, root, "listen", "required section is missing");
	if (yconf_check_map(y, v, "listen", listen_fields) ||
	    yconf_req_str(y, v, "path", c->socket_path, sizeof(c->socket_path)) ||
	    yconf_opt_str(y, v, "group", c->socket_group, sizeof(c->socket_group)))
		return -1;
	if (c->socket_path[0] != '/')
		return yconf_fail(y, v, "path", "\"%s\" is not an absolute path", c->socket_path);
	if (yconf_get(y, v, "mode")) {
		if (yconf_octal(y, yconf_get(y, v, "mode"), "mode", 0777, &l))
			return -1;
		if (l & 0007)
			return yconf_fail(y, v, "mode",
			                  "%04lo gives every user access: use 0660 or "
			                  "0600",
			                  l);
		c->socket_mode = l;
	}
	buf[0] = 0;
	if (yconf_opt_str(y, v, "peer_user", buf, sizeof(buf)))
		return -1;
	if (buf[0]) {
		struct passwd *pw = getpwnam(buf);
		char *end;
		errno = 0;
		l = strtol(buf, &end, 10);
		if (pw)
			c->peer_uid = pw->pw_uid;
		else if (!errno && !*end && l >= 0 && l <= INT_MAX)
			c->peer_uid = (uid_t)l;
		else
			return yconf_fail(y, v, "peer_user", "no such user \"%s\"", buf);
		c->peer_uid_set = 1;
	}

	if ((seq = yconf_get(y, root, "allow"))) {
		if (!yconf_is_seq(seq) || yconf_seq_len(seq) == 0)
			return yconf_fail(y, seq, "allow",
			                  "a non-empty list of CIDR ranges is "
			                  "required");
		if (yconf_seq_len(seq) > ACMEVAL_MAX_RANGES)
			return yconf_fail(y, seq, "allow", "more than %d ranges",
			                  ACMEVAL_MAX_RANGES);
		for (size_t i = 0; i < yconf_seq_len(seq); i++) {
			yaml_node_t *it = yconf_seq_item(y, seq, i);
			if (yconf_str(y, it, "allow", buf, sizeof(buf)))
				return -1;
			if (acmeval_cidr_parse(buf, &c->allow[i]))
				return yconf_fail(
				    y, it, "allow",
				    "\"%s\" is not a CIDR range such as 127.0.0.0/8 or "
				    "::1/128 (host bits zero)",
				    buf);
		}
		c->nallow = yconf_seq_len(seq);
	} else {
		/* Loopback only, unless the operator says otherwise. */
		acmeval_cidr_parse("127.0.0.0/8", &c->allow[0]);
		acmeval_cidr_parse("::1/128", &c->allow[1]);
		c->nallow = 2;
	}

	if ((seq = yconf_get(y, root, "hosts"))) {
		if (!yconf_is_seq(seq))
			return yconf_fail(y, seq, "hosts", "a list is required");
		if (yconf_seq_len(seq) > ACMEVAL_MAX_HOSTS)
			return yconf_fail(y, seq, "hosts", "more than %d entries",
			                  ACMEVAL_MAX_HOSTS);
		for (size_t i = 0; i < yconf_seq_len(seq); i++) {
			yaml_node_t *it = yconf_seq_item(y, seq, i);
			struct acmeval_host *h = &c->hosts[i];
			if (yconf_check_map(y, it, "hosts", host_fields) ||
			    yconf_req_str(y, it, "name", h->pattern, sizeof(h->pattern)) ||
			    yconf_req_str(y, it, "address", buf, sizeof(buf)))
				return -1;
			if (!pattern_ok(h->pattern))
				return yconf_fail(
				    y, it, "name",
				    "\"%s\" is not a lower-case DNS name or \"*.\" and one",
				    h->pattern);
			if (parse_addr(buf, &h->addr))
				return yconf_fail(y, it, "address", "\"%s\" is not an IP address",
				                  buf);
		}
		c->nhosts = yconf_seq_len(seq);
	}

	if ((v = yconf_get(y, root, "ports"))) {
		long h = c->http_port, s = c->https_port, t = c->tls_alpn_port;
		if (yconf_check_map(y, v, "ports", ports_fields) ||
		    yconf_opt_long(y, v, "http", 1, 65535, &h) ||
		    yconf_opt_long(y, v, "https", 1, 65535, &s) ||
		    yconf_opt_long(y, v, "tls_alpn", 1, 65535, &t))
			return -1;
		c->http_port = (int)h;
		c->https_port = (int)s;
		c->tls_alpn_port = (int)t;
	}
	if ((v = yconf_get(y, root, "timeouts"))) {
		if (yconf_check_map(y, v, "timeouts", timeouts_fields) ||
		    yconf_opt_long(y, v, "connect_ms", 10, 60000, &c->connect_timeout_ms) ||
		    yconf_opt_long(y, v, "read_ms", 10, 60000, &c->read_timeout_ms) ||
		    yconf_opt_long(y, v, "total_ms", 10, 120000, &c->total_timeout_ms))
			return -1;
	}
	if (yconf_opt_long(y, root, "max_response_bytes", 128, 65536, &c->max_response_bytes))
		return -1;
	l = c->max_redirects;
	if (yconf_opt_long(y, root, "max_redirects", 0, 20, &l))
		return -1;
	c->max_redirects = (int)l;
	l = c->workers;
	if (yconf_opt_long(y, root, "workers", 1, ACMEVAL_MAX_WORKERS, &l))
		return -1;
	c->workers = (int)l;
	if (yconf_opt_str(y, root, "resolver", c->resolver, sizeof(c->resolver)))
		return -1;
	if (c->resolver[0] && !resolver_ok(c->resolver))
		return yconf_fail(y, yconf_get(y, root, "resolver"), "resolver",
		                  "\"%s\" is not ADDRESS:PORT (e.g. 127.0.0.1:53 or [::1]:53)",
		                  c->resolver);
	return 0;
}

int acmeval_config_load_mem(const char *name, const void *buf, size_t len, struct acmeval_config *c,
                            char *err, size_t errlen)
{
	struct yconf y;
	int rc;

	acmeval_config_init(c);
	memset(&y, 0, sizeof(y));
	if (yconf_load_mem(&y, name, buf, len)) {
		snprintf(err, errlen, "%s", y.err);
		yconf_free(&y);
		return -1;
	}
	rc = load(&y, c);
	if (rc)
		snprintf(err, errlen, "%s", y.err);
	yconf_free(&y);
	return rc;
}

int acmeval_config_load(const char *path, struct acmeval_config *c, char *err, size_t errlen)
{
	struct yconf y;
	int rc;

	acmeval_config_init(c);
	memset(&y, 0, sizeof(y));
	if (yconf_load_file(&y, path)) {
		snprintf(err, errlen, "%s", y.err);
		yconf_free(&y);
		return -1;
	}
	rc = load(&y, c);
	if (rc)
		snprintf(err, errlen, "%s", y.err);
	yconf_free(&y);
	return rc;
}
