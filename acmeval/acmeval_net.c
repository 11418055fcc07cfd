/* The network policy (allow-ranges), the demo hosts mapping and name resolution through
 * c-ares (docs/acmeval.md, "Network policy"; docs/dependencies.md says why c-ares). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>

#include "acmevald.h"
#include "acmeval_dns.h"

void acmeval_fail(struct acmeval_result *res, const char *problem, const char *fmt, ...)
{
	va_list ap;

	res->valid = 0;
	snprintf(res->problem_type, sizeof(res->problem_type), "%s", problem);
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
}

int acmeval_cidr_parse(const char *s, struct acmeval_cidr *out)
{
	char buf[64], *slash, *end;
	long prefix;

	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -1;
	prefix = out->family == AF_INET ? 32 : 128;
	if (slash) {
		errno = 0;
		if (!slash[1] || !isdigit((unsigned char)slash[1]))
			return -1;
		long l = strtol(slash + 1, &end, 10);
		if (errno || *end || l < 0 || l > prefix)
			return -1;
		prefix = l;
	}
	out->prefix = (int)prefix;
	/* The host bits must be zero: "10.1.2.3/8" is more likely a mistake than a range. */
	for (int bit = out->prefix; bit < (out->family == AF_INET ? 32 : 128); bit++)
		if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
			return -1;
	return 0;
}

static int in_range(const struct acmeval_cidr *r, int family, const uint8_t *a)
{
	int full, rest;

	if (r->family != family)
		return 0;
	full = r->prefix / 8;
	rest = r->prefix % 8;
	if (memcmp(r->addr, a, (size_t)full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((r->addr[full] & mask) != (a[full] & mask))
			return 0;
	}
	return 1;
}

int acmeval_addr_allowed(const struct acmeval_cidr *ranges, size_t n, const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *a;
	int family;

	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		family = AF_INET6;
		/* ::ffff:a.b.c.d reaches a.b.c.d: judge it as that address, never as IPv6. */
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			a += 12;
			family = AF_INET;
		}
	} else
		return 0;
	for (size_t i = 0; i < n; i++)
		if (in_range(&ranges[i], family, a))
			return 1;
	return 0;
}

void acmeval_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a =
	    sa->sa_family == AF_INET
	        ? (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr
	        : (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

	if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    !inet_ntop(sa->sa_family, a, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
}

int acmeval_host_match(const char *pattern, const char *name)
{
	size_t pl, nl;

	if (strncmp(pattern, "*.", 2) != 0)
		return strcmp(pattern, name) == 0;
	pl = strlen(pattern + 1); /* ".suffix" */
	nl = strlen(name);
	return nl > pl && strcmp(name + nl - pl, pattern + 1) == 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* An IP literal (with or without brackets) into ss: 1, else 0. */
static int ip_literal(const char *name, struct sockaddr_storage *ss)
{
	char buf[64];
	size_t n = strlen(name);

	memset(ss, 0, sizeof(*ss));
	if (n >= 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, name + 1, n - 2);
		buf[n - 2] = 0;
	} else if (n < sizeof(buf))
		strcpy(buf, name);
	else
		return 0;
	if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 1;
	}
	return 0;
}

struct gai_state {
	int done, status;
	struct sockaddr_storage *out;
	size_t max, n;
};

static void gai_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct gai_state *st = arg;

	(void)timeouts;
	st->done = 1;
	st->status = status;
	if (status == ARES_SUCCESS && ai) {
		for (struct ares_addrinfo_node *n = ai->nodes; n && st->n < st->max;
		     n = n->ai_next) {
			if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
			    (size_t)n->ai_addrlen > sizeof(struct sockaddr_storage))
				continue;
			memset(&st->out[st->n], 0, sizeof(st->out[st->n]));
			memcpy(&st->out[st->n], n->ai_addr, (size_t)n->ai_addrlen);
			st->n++;
		}
	}
	ares_freeaddrinfo(ai);
}

int acmeval_resolve(const struct acmeval_config *cfg, const char *name, int port,
                    struct sockaddr_storage *out, size_t max, size_t *n, long timeout_ms,
                    struct acmeval_result *res)
{
	struct ares_addrinfo_hints hints;
	struct gai_state st = {0};
	char err[128];
	ares_channel ch;

	*n = 0;
	if (max == 0)
		return -1;
	if (ip_literal(name, &out[0])) {
		set_port(&out[0], port);
		*n = 1;
		return 0;
	}
	for (size_t i = 0; i < cfg->nhosts; i++)
		if (acmeval_host_match(cfg->hosts[i].pattern, name)) {
			out[0] = cfg->hosts[i].addr;
			set_port(&out[0], port);
			*n = 1;
			return 0;
		}
	if (acmeval_dns_channel(cfg, timeout_ms, &ch, err, sizeof(err))) {
		acmeval_fail(res, "serverInternal", "resolver: %s", err);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	st.out = out;
	st.max = max;
	ares_getaddrinfo(ch, name, NULL, &hints, gai_cb, &st);
	acmeval_dns_wait(ch, timeout_ms);
	ares_destroy(ch);
	if (!st.done || st.status == ARES_ETIMEOUT || st.status == ARES_ECANCELLED) {
		acmeval_fail(res, "dns", "DNS query for %s timed out", name);
		return -1;
	}
	if (st.status != ARES_SUCCESS || st.n == 0) {
		acmeval_fail(res, "dns", "no valid A or AAAA records for %s (%s)", name,
		             st.status == ARES_SUCCESS ? "no addresses" : ares_strerror(st.status));
		return -1;
	}
	for (size_t i = 0; i < st.n; i++)
		set_port(&out[i], port);
	*n = st.n;
	return 0;
}

int acmeval_body_matches(const char *body, size_t len, const char *key_authorization)
{
	/* Boulder trims trailing white space (unicode.IsSpace; in ASCII: space, \t \n \v \f \r)
	 * and compares the rest exactly. */
	while (len > 0 &&
	       (body[len - 1] == ' ' || (body[len - 1] >= '\t' && body[len - 1] <= '\r')))
		len--;
	return len == strlen(key_authorization) && memcmp(body, key_authorization, len) == 0;
}

/* ---- c-ares plumbing shared with dns-01 ---- */

int acmeval_dns_channel(const struct acmeval_config *cfg, long timeout_ms, ares_channel *ch,
                        char *err, size_t errlen)
{
	struct ares_options o;
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS, rc;
	char lookups[] = "b";

	memset(&o, 0, sizeof(o));
	o.timeout = (int)(timeout_ms / 2 > 0 ? timeout_ms / 2 : 1);
	o.tries = 2;
	o.flags = ARES_FLAG_NOSEARCH;
	if (cfg->resolver[0]) {
		/* A configured resolver answers alone: no /etc/hosts either. */
		o.lookups = lookups;
		mask |= ARES_OPT_LOOKUPS;
	}
	rc = ares_init_options(ch, &o, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "%s", ares_strerror(rc));
		return -1;
	}
	if (cfg->resolver[0] &&
	    (rc = ares_set_servers_ports_csv(*ch, cfg->resolver)) != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver \"%s\": %s", cfg->resolver, ares_strerror(rc));
		ares_destroy(*ch);
		return -1;
	}
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void acmeval_dns_wait(ares_channel ch, long timeout_ms)
{
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval maxtv, tv, *tvp;
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM), nfd = 0, ready;
		long left = deadline - now_ms(), wait;

		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;
			/* c-ares's own macros shift a signed 1 into the sign bit. */
			if ((unsigned)bits & (1u << i))
				ev |= POLLIN;
			if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (!ev)
				continue;
			pfd[nfd].fd = socks[i];
			pfd[nfd].events = ev;
			pfd[nfd].revents = 0;
			nfd++;
		}
		if (nfd == 0)
			return; /* every query answered */
		if (left <= 0) {
			ares_cancel(ch); /* the callbacks run with ARES_ECANCELLED */
			return;
		}
		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(ch, &maxtv, &tv);
		wait = tvp->tv_sec * 1000 + tvp->tv_usec / 1000;
		ready = poll(pfd, (nfds_t)nfd, (int)(wait > 0 ? wait : 1));
		if (ready < 0 && errno != EINTR) {
			ares_cancel(ch);
			return;
		}
		if (ready <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
			continue;
		}
		for (int i = 0; i < nfd; i++)
			ares_process_fd(ch,
			                pfd[i].revents & (POLLIN | POLLERR | POLLHUP)
			                    ? pfd[i].fd
			                    : ARES_SOCKET_BAD,
			                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
	}
}
