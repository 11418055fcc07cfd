/*
 * hsmca-ocspd: the OCSP responder (RFC 6960, RFC 5019 profile, RFC 8954 nonces). It answers
 * from pre-signed responses kept in memory (ocsp_cache.c), which a database thread keeps
 * fresh and in step with revocations (ocsp_sync.c); requests that need a fresh signature go
 * to a pool of signer threads (ocsp_signer.c); HTTP is served by worker threads, each with
 * its own event loop and listening socket (ocsp_server.c). docs/ocspd.md describes it.
 */
#ifndef HSMCA_OCSPD_H
#define HSMCA_OCSPD_H

#include <stddef.h>

#include "sandbox.h"

#define OCSPD_PATH_MAX 512
#define OCSPD_MAX_RESPONDERS 16

struct ocspd_config {
	struct sandbox_config sandbox; /* user, group, seccomp (docs/sandbox.md) */
	char listen_address[64];
	int listen_port;
	/* metrics_listen: where /metrics is served (with /health), on a listener of its own;
	 * port 0 (the default) serves it nowhere. The OCSP listener answers 404 for it. */
	char metrics_address[64];
	int metrics_port;
	char path[128]; /* URL path prefix of OCSP requests, starts and ends with "/" */
	int workers;    /* HTTP threads */
	int signers;    /* threads signing fresh responses */
	/* Reads (may be a streaming replica) and the primary (LISTEN, the shared response copy);
	 * "" for primary means the same server as database. */
	char database[1024];
	char primary_database[1024];
	int share_responses; /* write the shared copy (only ever to the primary) */
	char responder_certs[OCSPD_MAX_RESPONDERS][OCSPD_PATH_MAX];
	size_t n_responder_certs;
	/* limits */
	size_t max_header_bytes;
	size_t max_headers;
	size_t max_body_bytes;
	int max_connections;
	int request_timeout_seconds; /* to receive a whole request once it began */
	int idle_timeout_seconds;    /* keep-alive connection without a request */
	int max_certs_per_request;
	int sign_queue;       /* requests waiting for a signer; beyond: tryLater */
	int refresh_fraction; /* re-sign when this percentage of the validity has passed */
	/* Fresh signatures for serials no authority issued ("unknown"), all authorities
	 * together: a token bucket of this many a second (a burst of one second's worth);
	 * beyond it such requests get the unsigned "unauthorized". 0: never signed. */
	int unknown_per_second;
};

/* Defaults, then the file. 0, or -1 with err ("file:line: field: problem"). */
int ocspd_config_load(const char *path, struct ocspd_config *cfg, char *err, size_t errsz);
int ocspd_config_parse(const char *name, const void *buf, size_t len, struct ocspd_config *cfg,
                       char *err, size_t errsz);
void ocspd_config_defaults(struct ocspd_config *cfg);

struct ocspd;

/* Load the responder certificates, bind the listeners, start the database thread (which
 * may find the database down: it keeps trying). 0, or -1 with err. */
int ocspd_new(const struct ocspd_config *cfg, struct ocspd **out, char *err, size_t errsz);
/* Serve until ocspd_stop (the daemon calls it on SIGTERM and SIGINT). */
int ocspd_run(struct ocspd *d);
/* Ask ocspd_run to stop accepting, let the signers finish and return; on ocspd_base's thread. */
void ocspd_stop(struct ocspd *d);
/* The main event base, on which ocspd_run runs: where the daemon watches signals. */
struct event_base *ocspd_base(struct ocspd *d);
void ocspd_free(struct ocspd *d);

#endif
