/*
 * hsmca-acmevald: the ACME challenge validator (docs/acmeval.md). Its configuration, the
 * network policy (the allow-ranges every address is checked against before a connection),
 * name resolution (the demo `hosts:` mapping, then DNS), the three validations, and the
 * daemon that serves them on a Unix socket.
 */
#ifndef HSMCA_ACMEVALD_H
#define HSMCA_ACMEVALD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "acmeval.h"
#include "acmeval_wire.h"
#include "sandbox.h"

#define ACMEVAL_MAX_RANGES 32
#define ACMEVAL_MAX_HOSTS 32
#define ACMEVAL_MAX_ADDRS 8 /* addresses of one name tried */
#define ACMEVAL_MAX_WORKERS 64

/* One CIDR range: family AF_INET or AF_INET6, the address and the prefix length. */
struct acmeval_cidr {
	int family;
	uint8_t addr[16];
	int prefix;
};

/* A demo/test name mapping: "name" or "*.suffix" (any name below suffix) -> address. */
struct acmeval_host {
	char pattern[ACMEVAL_IDENT_MAX + 3];
	struct sockaddr_storage addr;
};

struct acmeval_config {
	char socket_path[108];
	long socket_mode;      /* default 0660 */
	char socket_group[64]; /* "" keeps the user's group */
	int peer_uid_set;      /* peer_user: given */
	uid_t peer_uid;        /* the only uid allowed to connect when set */
	struct acmeval_cidr allow[ACMEVAL_MAX_RANGES];
	size_t nallow;
	struct acmeval_host hosts[ACMEVAL_MAX_HOSTS];
	size_t nhosts;
	int http_port;           /* http-01 and redirects to http (default 80) */
	int https_port;          /* redirects to https (default 443) */
	int tls_alpn_port;       /* tls-alpn-01 (default 443) */
	long connect_timeout_ms; /* default 5000 */
	long read_timeout_ms;    /* no byte for this long fails (default 5000) */
	long total_timeout_ms;   /* one whole validation (default 20000) */
	long max_response_bytes; /* http-01 body (default 1024) */
	int max_redirects;       /* default 10 (Boulder) */
	char resolver[64];       /* "address:port" or "" for the system's */
	int workers;             /* validations at once (default 4) */
	struct sandbox_config sandbox;
};

void acmeval_config_init(struct acmeval_config *c);
int acmeval_config_load(const char *path, struct acmeval_config *c, char *err, size_t errlen);
int acmeval_config_load_mem(const char *name, const void *buf, size_t len, struct acmeval_config *c,
                            char *err, size_t errlen);

/* "10.0.0.0/8", "::1/128", "127.0.0.1" (a single address): 0, or -1. */
int acmeval_cidr_parse(const char *s, struct acmeval_cidr *out);
/* 1 when sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address is judged as its IPv4 address)
 * is inside one of the ranges, else 0. */
int acmeval_addr_allowed(const struct acmeval_cidr *ranges, size_t n, const struct sockaddr *sa);
/* The address of sa as text (no port). */
void acmeval_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

/* 1 when pattern ("name" or "*.suffix") matches name. */
int acmeval_host_match(const char *pattern, const char *name);

/* Resolve name (a DNS name or an IP literal) to at most max addresses with port: an IP literal
 * as it is, then the hosts mapping, then DNS (A and AAAA). 0 with *n set, or -1 with res
 * filled ("dns" problem). */
int acmeval_resolve(const struct acmeval_config *cfg, const char *name, int port,
                    struct sockaddr_storage *out, size_t max, size_t *n, long timeout_ms,
                    struct acmeval_result *res);

/* The validations: res filled either way. */
void acmeval_http01(const struct acmeval_config *cfg, const struct acmeval_req *req,
                    struct acmeval_result *res);
void acmeval_dns01(const struct acmeval_config *cfg, const struct acmeval_req *req,
                   struct acmeval_result *res);
void acmeval_tlsalpn01(const struct acmeval_config *cfg, const struct acmeval_req *req,
                       struct acmeval_result *res);
/* Dispatch on req->type. */
void acmeval_run(const struct acmeval_config *cfg, const struct acmeval_req *req,
                 struct acmeval_result *res);

/* Set res to invalid with problem and a formatted detail. */
void acmeval_fail(struct acmeval_result *res, const char *problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when the trimmed-right body equals the key authorization (Boulder's rule). */
int acmeval_body_matches(const char *body, size_t len, const char *key_authorization);

/* The daemon. */
struct acmevald;
int acmevald_new(const struct acmeval_config *cfg, struct acmevald **out, char *err, size_t errlen);
int acmevald_run(struct acmevald *d);
void acmevald_stop(struct acmevald *d);
void acmevald_free(struct acmevald *d);

#endif
