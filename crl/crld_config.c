/* hsmca-crld's configuration (docs/crld.md): database, publish folder and URL, HTTP listener,
 * schedule, and per authority: partitioning, IDP and overrides of the database's settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crld.h"
#include "sandbox.h"
#include "yconf.h"

static const char *const top_fields[] = {"database", "publish",     "listen", "metrics_listen",
                                         "schedule", "authorities", "user",   "group",
                                         "seccomp",  NULL};
static const char *const publish_fields[] = {"folder", "base_url", "pem", NULL};
static const char *const listen_fields[] = {"address", "port", NULL};
static const char *const schedule_fields[] = {
    "debounce_ms", "retry_seconds", "expired_grace_seconds", "prune_margin_seconds", NULL};
static const char *const authority_fields[] = {
    "name", "key", "shards", "idp", "next_update_seconds", "delta_seconds", "refresh_seconds",
    NULL};

static int name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return 0;
	return 1;
}

/* http:// or https://, printable ASCII without spaces, quotes or angle brackets. */
static int url_ok(const char *u)
{
	if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
		return 0;
	for (; *u; u++)
		if (*u <= ' ' || *u >= 0x7f || *u == '"' || *u == '<' || *u == '>' || *u == '\\')
			return 0;
	return 1;
}

static int parse_authority(struct yconf *y, yaml_node_t *m, struct crld_authority_config *a)
{
	long l;

	if (yconf_check_map(y, m, "authorities", authority_fields) ||
	    yconf_req_str(y, m, "name", a->name, sizeof(a->name)) ||
	    yconf_opt_str(y, m, "key", a->key_uri, sizeof(a->key_uri)) ||
	    yconf_opt_bool(y, m, "idp", &a->idp))
		return -1;
	a->idp_given = yconf_get(y, m, "idp") != NULL;
	if (!name_ok(a->name))
		return yconf_fail(y, m, "name", "\"%s\": use 1..%d of a-z 0-9 - _", a->name,
		                  CRLD_NAME_MAX);
	if (a->key_uri[0] && strncmp(a->key_uri, "keyd:", 5))
		return yconf_fail(y, m, "key", "\"%s\" is not a keyd: URI", a->key_uri);
	l = -1; /* not given: the database's crl_shards */
	if (yconf_opt_long(y, m, "shards", 0, CRLD_MAX_SHARDS, &l))
		return -1;
	if (l == 1)
		return yconf_fail(y, m, "shards", "1 shard is no partition: use 0, or 2..%d",
		                  CRLD_MAX_SHARDS);
	a->shards = (int)l;
	l = 0;
	if (yconf_opt_long(y, m, "next_update_seconds", 300, 7776000, &l))
		return -1;
	a->next_update_seconds = l;
	l = 0;
	if (yconf_opt_long(y, m, "delta_seconds", -1, 7776000, &l))
		return -1;
	if (l > 0 && l < 60)
		return yconf_fail(y, m, "delta_seconds",
		                  "at least 60 (or 0: the database's, -1: "
		                  "none)");
	a->delta_seconds = l;
	if (a->next_update_seconds && a->delta_seconds > 0 &&
	    a->delta_seconds >= a->next_update_seconds)
		return yconf_fail(y, m, "delta_seconds",
		                  "must be shorter than next_update_seconds");
	l = 0;
	if (yconf_opt_long(y, m, "refresh_seconds", 60, 7776000, &l))
		return -1;
	a->refresh_seconds = l;
	return 0;
}

static int load(struct yconf *y, struct crld_config *cfg)
{
	yaml_node_t *root, *v, *seq;
	long l;

	root = yconf_root(y);
	if (yconf_check_map(y, root, "configuration", top_fields) ||
	    yconf_opt_str(y, root, "database", cfg->database, sizeof(cfg->database)) ||
	    sandbox_config_read(y, root, &cfg->sandbox))
		return -1;
	if (!(v = yconf_get(y, root, "publish")))
		return yconf_fail(y, root, "publish", "required section is missing");
	if (yconf_check_map(y, v, "publish", publish_fields) ||
	    yconf_req_str(y, v, "folder", cfg->folder, sizeof(cfg->folder)) ||
	    yconf_req_str(y, v, "base_url", cfg->base_url, sizeof(cfg->base_url) - 1) ||
	    yconf_opt_bool(y, v, "pem", &cfg->pem))
		return -1;
	if (cfg->folder[0] != '/')
		return yconf_fail(y, v, "folder", "\"%s\" is not an absolute path", cfg->folder);
	if (!url_ok(cfg->base_url))
		return yconf_fail(y, v, "base_url", "\"%s\" is not an http:// or https:// URL",
		                  cfg->base_url);
	if (cfg->base_url[strlen(cfg->base_url) - 1] != '/')
		strcat(cfg->base_url, "/");
	if ((v = yconf_get(y, root, "listen"))) {
		snprintf(cfg->listen_address, sizeof(cfg->listen_address), "127.0.0.1");
		l = 0;
		if (yconf_check_map(y, v, "listen", listen_fields) ||
		    yconf_opt_str(y, v, "address", cfg->listen_address,
		                  sizeof(cfg->listen_address)) ||
		    yconf_opt_long(y, v, "port", 1, 65535, &l))
			return -1;
		if (!yconf_get(y, v, "port"))
			return yconf_fail(y, v, "port", "required");
		cfg->listen_port = (int)l;
	}
	if ((v = yconf_get(y, root, "metrics_listen"))) {
		snprintf(cfg->metrics_address, sizeof(cfg->metrics_address), "127.0.0.1");
		l = 0;
		if (yconf_check_map(y, v, "metrics_listen", listen_fields) ||
		    yconf_opt_str(y, v, "address", cfg->metrics_address,
		                  sizeof(cfg->metrics_address)) ||
		    yconf_opt_long(y, v, "port", 1, 65535, &l))
			return -1;
		if (!yconf_get(y, v, "port"))
			return yconf_fail(y, v, "port", "required");
		cfg->metrics_port = (int)l;
		if (cfg->metrics_port == cfg->listen_port &&
		    !strcmp(cfg->metrics_address, cfg->listen_address))
			return yconf_fail(y, v, "metrics_listen",
			                  "must differ from listen (the CRL listener never serves "
			                  "/metrics)");
	}
	if ((v = yconf_get(y, root, "schedule"))) {
		if (yconf_check_map(y, v, "schedule", schedule_fields))
			return -1;
		l = (long)cfg->debounce_ms;
		if (yconf_opt_long(y, v, "debounce_ms", 0, 600000, &l))
			return -1;
		cfg->debounce_ms = l;
		l = (long)cfg->retry_seconds;
		if (yconf_opt_long(y, v, "retry_seconds", 1, 86400, &l))
			return -1;
		cfg->retry_seconds = l;
		l = (long)cfg->expired_grace_seconds;
		if (yconf_opt_long(y, v, "expired_grace_seconds", 0, 100L * 366 * 86400, &l))
			return -1;
		cfg->expired_grace_seconds = l;
		l = (long)cfg->prune_margin_seconds;
		if (yconf_opt_long(y, v, "prune_margin_seconds", -1, 7776000, &l))
			return -1;
		cfg->prune_margin_seconds = l;
	}
	if ((seq = yconf_get(y, root, "authorities"))) {
		if (!yconf_is_seq(seq))
			return yconf_fail(y, seq, "authorities", "a list is required");
		if (yconf_seq_len(seq) > CRLD_MAX_AUTHORITIES)
			return yconf_fail(y, seq, "authorities", "more than %d entries",
			                  CRLD_MAX_AUTHORITIES);
		for (size_t i = 0; i < yconf_seq_len(seq); i++) {
			yaml_node_t *item = yconf_seq_item(y, seq, i);
			if (parse_authority(y, item, &cfg->authorities[i]))
				return -1;
			cfg->n_authorities = i + 1;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(cfg->authorities[j].name, cfg->authorities[i].name))
					return yconf_fail(y, item, "authorities",
					                  "\"%s\" is named twice",
					                  cfg->authorities[i].name);
		}
	}
	return 0;
}

static void defaults(struct crld_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	sandbox_config_init(&cfg->sandbox);
	cfg->debounce_ms = 2000;
	cfg->retry_seconds = 30;
	cfg->prune_margin_seconds = -1;
}

int crld_config_load(const char *path, struct crld_config *cfg, char *err, size_t errsz)
{
	struct yconf y = {0};
	int rc;

	defaults(cfg);
	rc = yconf_load_file(&y, path) ? -1 : load(&y, cfg);
	if (rc)
		snprintf(err, errsz, "%s", y.err[0] ? y.err : "configuration error");
	yconf_free(&y);
	return rc;
}

int crld_config_load_mem(const char *name, const void *buf, size_t len, struct crld_config *cfg,
                         char *err, size_t errsz)
{
	struct yconf y = {0};
	int rc;

	defaults(cfg);
	rc = yconf_load_mem(&y, name, buf, len) ? -1 : load(&y, cfg);
	if (rc)
		snprintf(err, errsz, "%s", y.err[0] ? y.err : "configuration error");
	yconf_free(&y);
	return rc;
}
