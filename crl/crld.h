/*
 * hsmca-crld: builds full, delta and partitioned CRLs for the authorities in the database,
 * signs them through keyd, verifies and publishes them into a folder (atomically), serves
 * that folder over HTTP, and rebuilds on a schedule and shortly after a revocation (LISTEN
 * hsmca_revocation, debounced). docs/crld.md describes configuration and file names.
 */
#ifndef HSMCA_CRLD_H
#define HSMCA_CRLD_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox.h"

#define CRLD_NAME_MAX 64
#define CRLD_PATH_MAX 512
#define CRLD_URL_MAX 400
#define CRLD_MAX_AUTHORITIES 16
#define CRLD_MAX_SHARDS 256

struct crld_authority_config {
	char name[CRLD_NAME_MAX + 1];
	char key_uri[CRLD_PATH_MAX]; /* "": keyd:label=<the database's key label> */
	/* 0: unpartitioned; else 2..CRLD_MAX_SHARDS; -1 (not configured): the database's
	 * crl_shards. A value the database contradicts is refused at start. */
	int shards;
	/* Unpartitioned: carry an Issuing Distribution Point. The database's choice
	 * (authority_settings.full_crl_idp, set through the API) is the one used; the
	 * configuration's, when given (idp_given), is stored where the database has none and
	 * must agree with it otherwise. */
	int idp, idp_given;
	/* Overrides of the database's authority settings; 0: use those. */
	int64_t next_update_seconds;
	int64_t delta_seconds;   /* -1: no deltas whatever the database says */
	int64_t refresh_seconds; /* a new full CRL this often; 0: half of next_update */
};

struct crld_config {
	char database[1024]; /* libpq conninfo; "" uses the environment */
	char folder[CRLD_PATH_MAX];
	char base_url[CRLD_URL_MAX + 1]; /* ends with '/'; where the folder is served */
	int pem;                         /* also write <name>.pem */
	char listen_address[64];         /* "" : no HTTP server */
	int listen_port;
	/* metrics_listen: where /metrics is served (with /health), on a listener of its own;
	 * port 0 (the default) serves it nowhere. The public listener answers 404 for it. */
	char metrics_address[64];
	int metrics_port;
	int64_t debounce_ms;
	int64_t retry_seconds;
	int64_t expired_grace_seconds; /* expired certificates stay this long after notAfter */
	/* The change log keeps entries this much longer than the bases crld holds need them, for
	 * other instances' bases; -1: each authority's nextUpdate period. */
	int64_t prune_margin_seconds;
	struct crld_authority_config authorities[CRLD_MAX_AUTHORITIES];
	size_t n_authorities;          /* 0: every authority in the database, unpartitioned */
	struct sandbox_config sandbox; /* user, group, seccomp (docs/sandbox.md) */
};

/* Read and check a configuration. 0, or -1 with err naming file, line and field. */
int crld_config_load(const char *path, struct crld_config *cfg, char *err, size_t errsz);
int crld_config_load_mem(const char *name, const void *buf, size_t len, struct crld_config *cfg,
                         char *err, size_t errsz);

/* 1 if name is a file name crld publishes and serves: [a-z0-9_-]+ then .crl or .pem. */
int crld_file_name_ok(const char *name);

struct crld;

/* Connect, load the authorities and keys. 0, or -1 with err for a configuration that cannot
 * work (an authority the database does not know, CRL distribution settings the database
 * contradicts). A database that cannot be reached is no error: crld starts degraded and
 * crld_run connects later; crld_publish_all fails until it has. */
int crld_new(const struct crld_config *cfg, struct crld **out, char *err, size_t errsz);
/* Build and publish every CRL once (full, and delta where enabled); 0 if all succeeded. */
int crld_publish_all(struct crld *c);
/* Serve and publish until crld_stop (the daemon calls it on SIGTERM and SIGINT). 0 on a clean
 * stop. */
int crld_run(struct crld *c);
/* Ask crld_run to return within a second; from any thread. */
void crld_stop(struct crld *c);
void crld_free(struct crld *c);

/* The HTTP server alone, serving folder (crld_http.c); runs in its own thread. */
struct crld_http;
/* health: called for /health with a buffer for the text; returns 1 when healthy. */
typedef int (*crld_health_fn)(void *arg, char *text, size_t n);
/* metrics: called for /metrics with a buffer for Prometheus text; returns its length. */
typedef size_t (*crld_metrics_fn)(void *arg, char *text, size_t n);
/* issuer: called for /ca/<name>.der (the caIssuers URL of authority name's certificates) with
 * a buffer of n bytes: copies the authority's certificate (DER) there and returns its length,
 * with *since (its notBefore, for Last-Modified); 0 when crld knows no such authority. */
#define CRLD_ISSUER_DER_MAX 16384
typedef size_t (*crld_issuer_fn)(void *arg, const char *name, unsigned char *der, size_t n,
                                 int64_t *since);
/* address "" : no public listener; metrics_port 0: no metrics listener (/metrics, /health
 * and nothing else on metrics_address:metrics_port). */
int crld_http_start(const char *address, int port, const char *metrics_address, int metrics_port,
                    const char *folder, crld_health_fn health, crld_metrics_fn metrics,
                    crld_issuer_fn issuer, void *arg, struct crld_http **out, char *err,
                    size_t errsz);
/* 1 if path is /ca/<name>.der with name an authority name ([a-z0-9_-], 1..CRLD_NAME_MAX),
 * which then goes to name (CRLD_NAME_MAX + 1 bytes). */
int crld_issuer_path(const char *path, char *name);
void crld_http_stop(struct crld_http *h);

#endif
