/* hsmca-ocspd's configuration: listener, threads, databases, responder certificates, limits.
 * Strict like every hsmca configuration: unknown fields are errors, each error names file,
 * line and field. Certificates named here are read by ocspd_new, not by the parser. */
#include <stdio.h>
#include <string.h>

#include "ocsp_parse.h"
#include "ocspd.h"
#include "sandbox.h"
#include "yconf.h"

static const char *const top_fields[] = {
    "listen",
    "metrics_listen",
    "path",
    "workers",
    "signers",
    "database",
    "primary_database",
    "share_responses",
    "responder_certificates",
    "limits",
    "user",
    "group",
    "seccomp",
    NULL,
};
static const char *const listen_fields[] = {"address", "port", NULL};
static const char *const limit_fields[] = {
    "max_header_bytes",
    "max_headers",
    "max_body_bytes",
    "max_connections",
    "request_timeout_seconds",
    "idle_timeout_seconds",
    "max_certs_per_request",
    "sign_queue",
    "refresh_percent",
    "unknown_signatures_per_second",
    NULL,
};

void ocspd_config_defaults(struct ocspd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	sandbox_config_init(&cfg->sandbox);
	snprintf(cfg->listen_address, sizeof(cfg->listen_address), "127.0.0.1");
	cfg->listen_port = 8080;
	snprintf(cfg->metrics_address, sizeof(cfg->metrics_address), "127.0.0.1");
	snprintf(cfg->path, sizeof(cfg->path), "/");
	cfg->workers = 2;
	cfg->signers = 2;
	cfg->share_responses = 1;
	cfg->max_header_bytes = 8192;
	cfg->max_headers = 32;
	cfg->max_body_bytes = 4096;
	cfg->max_connections = 4096;
	cfg->request_timeout_seconds = 10;
	cfg->idle_timeout_seconds = 60;
	cfg->max_certs_per_request = 8;
	cfg->sign_queue = 256;
	cfg->refresh_fraction = 40;
	cfg->unknown_per_second = 5;
}

static int opt_int(struct yconf *y, yaml_node_t *map, const char *key, long min, long max, int *out)
{
	long l = *out;

	if (yconf_opt_long(y, map, key, min, max, &l))
		return -1;
	*out = (int)l;
	return 0;
}

static int opt_size(struct yconf *y, yaml_node_t *map, const char *key, long min, long max,
                    size_t *out)
{
	long l = (long)*out;

	if (yconf_opt_long(y, map, key, min, max, &l))
		return -1;
	*out = (size_t)l;
	return 0;
}

static int parse(struct yconf *y, struct ocspd_config *cfg)
{
	yaml_node_t *root = yconf_root(y), *v;
	long l;

	if (!root || !yconf_is_map(root))
		return yconf_fail(y, root, "configuration", "must be a mapping");
	if (yconf_check_map(y, root, "configuration", top_fields) ||
	    sandbox_config_read(y, root, &cfg->sandbox))
		return -1;
	if ((v = yconf_get(y, root, "listen"))) {
		if (yconf_check_map(y, v, "listen", listen_fields) ||
		    yconf_opt_str(y, v, "address", cfg->listen_address,
		                  sizeof(cfg->listen_address)))
			return -1;
		l = cfg->listen_port;
		if (yconf_opt_long(y, v, "port", 1, 65535, &l))
			return -1;
		cfg->listen_port = (int)l;
	}
	if ((v = yconf_get(y, root, "metrics_listen"))) {
		if (yconf_check_map(y, v, "metrics_listen", listen_fields) ||
		    yconf_opt_str(y, v, "address", cfg->metrics_address,
		                  sizeof(cfg->metrics_address)))
			return -1;
		if (!yconf_get(y, v, "port"))
			return yconf_fail(y, v, "metrics_listen",
			                  "needs a port (the listener /metrics is served on)");
		l = 0;
		if (yconf_opt_long(y, v, "port", 1, 65535, &l))
			return -1;
		cfg->metrics_port = (int)l;
		if (cfg->metrics_port == cfg->listen_port &&
		    !strcmp(cfg->metrics_address, cfg->listen_address))
			return yconf_fail(y, v, "metrics_listen",
			                  "must differ from listen (the OCSP listener never serves "
			                  "/metrics)");
	}
	if ((v = yconf_get(y, root, "path"))) {
		size_t n;
		if (yconf_str(y, v, "path", cfg->path, sizeof(cfg->path)))
			return -1;
		n = strlen(cfg->path);
		if (n == 0 || cfg->path[0] != '/' || cfg->path[n - 1] != '/' ||
		    strspn(cfg->path,
		           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		           "-._~/") != n)
			return yconf_fail(
			    y, v, "path",
			    "must start and end with \"/\" and hold only letters, digits "
			    "and - . _ ~ /");
	}
	if (opt_int(y, root, "workers", 1, 64, &cfg->workers) ||
	    opt_int(y, root, "signers", 1, 64, &cfg->signers) ||
	    yconf_opt_str(y, root, "database", cfg->database, sizeof(cfg->database)) ||
	    yconf_opt_str(y, root, "primary_database", cfg->primary_database,
	                  sizeof(cfg->primary_database)) ||
	    yconf_opt_bool(y, root, "share_responses", &cfg->share_responses))
		return -1;
	if ((v = yconf_get(y, root, "responder_certificates"))) {
		size_t n = yconf_seq_len(v);
		if (!yconf_is_seq(v))
			return yconf_fail(y, v, "responder_certificates",
			                  "must be a list of files");
		if (n > OCSPD_MAX_RESPONDERS)
			return yconf_fail(y, v, "responder_certificates", "at most %d",
			                  OCSPD_MAX_RESPONDERS);
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *item = yconf_seq_item(y, v, i);
			if (!item || yconf_str(y, item, "responder_certificates",
			                       cfg->responder_certs[i], OCSPD_PATH_MAX))
				return -1;
			if (!cfg->responder_certs[i][0])
				return yconf_fail(y, item, "responder_certificates",
				                  "empty file name");
		}
		cfg->n_responder_certs = n;
	}
	if ((v = yconf_get(y, root, "limits"))) {
		if (yconf_check_map(y, v, "limits", limit_fields) ||
		    opt_size(y, v, "max_header_bytes", 1024, 65536, &cfg->max_header_bytes) ||
		    opt_size(y, v, "max_headers", 4, 256, &cfg->max_headers) ||
		    opt_size(y, v, "max_body_bytes", 256, OCSP_REQ_MAX_DER, &cfg->max_body_bytes) ||
		    opt_int(y, v, "max_connections", 1, 1000000, &cfg->max_connections) ||
		    opt_int(y, v, "request_timeout_seconds", 1, 300,
		            &cfg->request_timeout_seconds) ||
		    opt_int(y, v, "idle_timeout_seconds", 1, 3600, &cfg->idle_timeout_seconds) ||
		    opt_int(y, v, "max_certs_per_request", 1, OCSP_REQ_MAX_CERTS,
		            &cfg->max_certs_per_request) ||
		    opt_int(y, v, "sign_queue", 1, 100000, &cfg->sign_queue) ||
		    opt_int(y, v, "refresh_percent", 10, 50, &cfg->refresh_fraction) ||
		    opt_int(y, v, "unknown_signatures_per_second", 0, 10000,
		            &cfg->unknown_per_second))
			return -1;
	}
	return 0;
}

int ocspd_config_parse(const char *name, const void *buf, size_t len, struct ocspd_config *cfg,
                       char *err, size_t errsz)
{
	struct yconf y;
	int rc = -1;

	memset(&y, 0, sizeof(y));
	ocspd_config_defaults(cfg);
	err[0] = '\0';
	if (yconf_load_mem(&y, name, buf, len) == 0 && parse(&y, cfg) == 0)
		rc = 0;
	if (rc)
		snprintf(err, errsz, "%s", y.err[0] ? y.err : "configuration error");
	yconf_free(&y);
	return rc;
}

int ocspd_config_load(const char *path, struct ocspd_config *cfg, char *err, size_t errsz)
{
	struct yconf y;
	int rc = -1;

	memset(&y, 0, sizeof(y));
	ocspd_config_defaults(cfg);
	err[0] = '\0';
	if (yconf_load_file(&y, path) == 0 && parse(&y, cfg) == 0)
		rc = 0;
	if (rc)
		snprintf(err, errsz, "%s", y.err[0] ? y.err : "configuration error");
	yconf_free(&y);
	return rc;
}
