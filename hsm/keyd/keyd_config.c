#include "keyd_config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yconf.h"

static const char *const top_fields[] = {
    "module", "token",        "pin_file",    "socket",           "socket_mode",        "workers",
    "queue",  "max_inflight", "max_clients", "log_requests",     "health_interval_ms", "clients",
    "user",   "group",        "seccomp",     "key_certificates", "activation",         "quorum",
    NULL,
};
/* Token compatibility switches (docs/hsm-compatibility.md), checked with top_fields. */
static const char *const token_fields[] = {"rsa_sign_by_decrypt", "module_ipc", NULL};
/* The top-level fields: top_fields, then token_fields. */
static int check_top(struct yconf *y, yaml_node_t *root)
{
	const char *all[sizeof(top_fields) / sizeof(*top_fields) +
	                sizeof(token_fields) / sizeof(*token_fields)];
	size_t n = 0;

	for (size_t i = 0; top_fields[i]; i++)
		all[n++] = top_fields[i];
	for (size_t i = 0; token_fields[i]; i++)
		all[n++] = token_fields[i];
	all[n] = NULL;
	return yconf_check_map(y, root, "config", all);
}

static const char *const client_fields[] = {
    "name", "uid", "user", "gid", "group", "keys", "operations", "grants", NULL,
};
static const char *const grant_fields[] = {"keys", "operations", "kinds", NULL};
static const char *const keycert_fields[] = {"key", "certificate", NULL};
static const char *const quorum_fields[] = {
    "id", "verify_key", "threshold", "custodians", "any_custodian", "sealers", NULL,
};
static const char *const person_fields[] = {"name", "uid", "user", NULL};

static int op_from_name(const char *s)
{
	for (int op = KEYD_OP_HELLO; op <= KEYD_OP_MAX_; op++)
		if (strcmp(keyd_op_name(op), s) == 0)
			return op;
	return -1;
}

/* An optional int field within min..max; *out keeps its default when absent. */
static int opt_int(struct yconf *y, yaml_node_t *map, const char *key, long min, long max, int *out)
{
	long l = *out;

	if (yconf_opt_long(y, map, key, min, max, &l))
		return -1;
	*out = (int)l;
	return 0;
}

/* The kinds "*" stands for: everything but DIGEST, which is granted by name only. */
#define KINDS_STAR (((1u << (KEYD_KIND_MAX_ + 1)) - 1) & ~(1u << KEYD_KIND_DIGEST))

static int parse_keys(struct yconf *y, yaml_node_t *keys, struct keyd_grant *g)
{
	char buf[256];

	if (!keys || !yconf_is_seq(keys))
		return yconf_fail(y, keys, "keys", "a list of key labels (or \"*\") is required");
	if (yconf_seq_len(keys) > KEYD_ACL_MAX_KEYS)
		return yconf_fail(y, keys, "keys", "more than %d labels", KEYD_ACL_MAX_KEYS);
	g->keys = calloc(yconf_seq_len(keys) + 1, sizeof(*g->keys));
	if (!g->keys)
		return yconf_fail(y, keys, "keys", "out of memory");
	for (size_t i = 0; i < yconf_seq_len(keys); i++) {
		yaml_node_t *k = yconf_seq_item(y, keys, i);
		if (yconf_str(y, k, "keys", buf, sizeof(buf)))
			return -1;
		if (strcmp(buf, "*") == 0) {
			g->all_keys = 1;
			continue;
		}
		if (!keyd_label_valid(buf))
			return yconf_fail(y, k, "keys",
			                  "\"%s\" is not a valid label (1-%d of A-Z a-z 0-9 . _ -)",
			                  buf, KEYD_LABEL_MAX);
		memcpy(g->keys[g->nkeys++], buf, strlen(buf) + 1);
	}
	return 0;
}

static int parse_ops(struct yconf *y, yaml_node_t *ops, struct keyd_grant *g)
{
	char buf[256];

	if (!ops || !yconf_is_seq(ops) || yconf_seq_len(ops) == 0)
		return yconf_fail(y, ops, "operations",
		                  "a non-empty list of operations is required");
	for (size_t i = 0; i < yconf_seq_len(ops); i++) {
		yaml_node_t *o = yconf_seq_item(y, ops, i);
		int op;
		if (yconf_str(y, o, "operations", buf, sizeof(buf)))
			return -1;
		/* "*" is every signing operation: creating keys on the token and
		 * wrapping or unwrapping secrets (backups) are always granted by name. */
		if (strcmp(buf, "*") == 0) {
			for (op = KEYD_OP_HELLO; op <= KEYD_OP_MAX_; op++)
				if (op != KEYD_OP_GENERATE && op != KEYD_OP_WRAP &&
				    op != KEYD_OP_UNWRAP && op != KEYD_OP_UNSEAL &&
				    op != KEYD_OP_SEAL)
					g->ops |= 1u << op;
			continue;
		}
		if (strcmp(buf, "unseal") == 0 || strcmp(buf, "seal") == 0)
			return yconf_fail(y, o, "operations",
			                  "%s is not granted in clients: the quorum: section names "
			                  "its custodians and sealers",
			                  buf);
		op = strcmp(buf, "sign-data") == 0 ? -1 : op_from_name(buf);
		if (op < 0)
			return yconf_fail(
			    y, o, "operations",
			    "unknown operation \"%s\" (hello, list-keys, get-public-key, sign, "
			    "status, generate, wrap, unwrap, metrics, quorum-status, *)",
			    buf);
		g->ops |= 1u << op;
		if (op == KEYD_OP_SIGN)
			g->ops |= 1u << KEYD_OP_SIGN_DATA;
	}
	return 0;
}

static int parse_kinds(struct yconf *y, yaml_node_t *kinds, struct keyd_grant *g)
{
	char buf[256];

	if (!yconf_is_seq(kinds) || yconf_seq_len(kinds) == 0)
		return yconf_fail(y, kinds, "kinds", "a non-empty list of kinds is required");
	for (size_t i = 0; i < yconf_seq_len(kinds); i++) {
		yaml_node_t *k = yconf_seq_item(y, kinds, i);
		int kind;
		if (yconf_str(y, k, "kinds", buf, sizeof(buf)))
			return -1;
		if (strcmp(buf, "*") == 0) {
			g->kinds |= KINDS_STAR;
			continue;
		}
		kind = keyd_kind_from_name(buf);
		if (kind < 0)
			return yconf_fail(y, k, "kinds",
			                  "unknown kind \"%s\" (certificate, ca-certificate, crl, "
			                  "ocsp-response, csr, audit-checkpoint, digest, or \"*\" "
			                  "for all but digest)",
			                  buf);
		g->kinds |= 1u << kind;
	}
	return 0;
}

static int parse_grant(struct yconf *y, yaml_node_t *m, struct keyd_grant *g)
{
	yaml_node_t *k, *o, *kinds;

	if (yconf_check_map(y, m, "grants", grant_fields))
		return -1;
	k = yconf_get(y, m, "keys");
	o = yconf_get(y, m, "operations");
	if (parse_keys(y, k ? k : m, g) || parse_ops(y, o ? o : m, g))
		return -1;
	kinds = yconf_get(y, m, "kinds");
	if (g->ops & (1u << KEYD_OP_SIGN)) {
		if (!kinds)
			return yconf_fail(y, m, "kinds",
			                  "a grant with sign must name the kinds it may sign "
			                  "(certificate, ca-certificate, crl, ocsp-response, csr, "
			                  "audit-checkpoint, digest, or \"*\" for all but digest)");
		return parse_kinds(y, kinds, g);
	}
	if (kinds)
		return yconf_fail(y, kinds, "kinds",
		                  "kinds are what sign may sign, and this grant has no sign");
	return 0;
}

static int parse_client(struct yconf *y, yaml_node_t *m, struct keyd_acl_entry *e, size_t idx)
{
	yaml_node_t *v, *grants;
	char buf[256];
	long l;

	if (yconf_check_map(y, m, "clients", client_fields))
		return -1;
	snprintf(e->name, sizeof(e->name), "client-%zu", idx + 1);
	if ((v = yconf_get(y, m, "name")) && yconf_str(y, v, "name", e->name, sizeof(e->name)))
		return -1;
	if (yconf_get(y, m, "uid") && yconf_get(y, m, "user"))
		return yconf_fail(y, m, "uid", "give uid or user, not both");
	if ((v = yconf_get(y, m, "uid"))) {
		if (yconf_long(y, v, "uid", 0, 0x7fffffff, &l))
			return -1;
		e->uid = (uid_t)l;
	} else if ((v = yconf_get(y, m, "user"))) {
		struct passwd *pw;
		if (yconf_str(y, v, "user", buf, sizeof(buf)))
			return -1;
		pw = getpwnam(buf);
		if (!pw)
			return yconf_fail(y, v, "user", "no such user \"%s\"", buf);
		e->uid = pw->pw_uid;
	} else {
		return yconf_fail(y, m, "clients", "each client needs uid or user");
	}
	if (yconf_get(y, m, "gid") && yconf_get(y, m, "group"))
		return yconf_fail(y, m, "gid", "give gid or group, not both");
	if ((v = yconf_get(y, m, "gid"))) {
		if (yconf_long(y, v, "gid", 0, 0x7fffffff, &l))
			return -1;
		e->gid = (gid_t)l;
		e->has_gid = 1;
	} else if ((v = yconf_get(y, m, "group"))) {
		struct group *gr;
		if (yconf_str(y, v, "group", buf, sizeof(buf)))
			return -1;
		gr = getgrnam(buf);
		if (!gr)
			return yconf_fail(y, v, "group", "no such group \"%s\"", buf);
		e->gid = gr->gr_gid;
		e->has_gid = 1;
	}

	grants = yconf_get(y, m, "grants");
	if (grants && (yconf_get(y, m, "keys") || yconf_get(y, m, "operations")))
		return yconf_fail(y, m, "grants",
		                  "give grants, or the older keys and operations, not both");
	if (!grants) {
		/* The older form: one grant, which may sign every kind but digest. */
		e->grants = calloc(1, sizeof(*e->grants));
		if (!e->grants)
			return yconf_fail(y, m, "keys", "out of memory");
		e->ngrants = 1;
		v = yconf_get(y, m, "keys");
		if (parse_keys(y, v ? v : m, e->grants) ||
		    parse_ops(y, yconf_get(y, m, "operations") ? yconf_get(y, m, "operations") : m,
		              e->grants))
			return -1;
		if (e->grants->ops & (1u << KEYD_OP_SIGN))
			e->grants->kinds = KINDS_STAR;
	} else {
		if (!yconf_is_seq(grants) || yconf_seq_len(grants) == 0)
			return yconf_fail(
			    y, grants, "grants",
			    "a non-empty list of {keys, operations, kinds} is required");
		if (yconf_seq_len(grants) > KEYD_ACL_MAX_GRANTS)
			return yconf_fail(y, grants, "grants", "more than %d grants",
			                  KEYD_ACL_MAX_GRANTS);
		e->grants = calloc(yconf_seq_len(grants), sizeof(*e->grants));
		if (!e->grants)
			return yconf_fail(y, grants, "grants", "out of memory");
		for (size_t i = 0; i < yconf_seq_len(grants); i++) {
			e->ngrants++;
			if (parse_grant(y, yconf_seq_item(y, grants, i), &e->grants[i]))
				return -1;
		}
	}
	for (size_t i = 0; i < e->ngrants; i++)
		e->ops |= e->grants[i].ops;
	e->ops |= 1u << KEYD_OP_HELLO;
	return 0;
}

static int parse_keycerts(struct yconf *y, yaml_node_t *list, struct keyd_config *cfg)
{
	if (!list)
		return 0;
	if (!yconf_is_seq(list))
		return yconf_fail(y, list, "key_certificates",
		                  "expected a list of {key, certificate}");
	if (yconf_seq_len(list) > KEYD_KEYCERT_MAX)
		return yconf_fail(y, list, "key_certificates", "more than %d entries",
		                  KEYD_KEYCERT_MAX);
	cfg->keycerts = calloc(yconf_seq_len(list) + 1, sizeof(*cfg->keycerts));
	if (!cfg->keycerts)
		return yconf_fail(y, list, "key_certificates", "out of memory");
	for (size_t i = 0; i < yconf_seq_len(list); i++) {
		yaml_node_t *m = yconf_seq_item(y, list, i);
		struct keyd_keycert *kc = &cfg->keycerts[i];
		if (yconf_check_map(y, m, "key_certificates", keycert_fields) ||
		    yconf_req_str(y, m, "key", kc->label, sizeof(kc->label)) ||
		    yconf_req_str(y, m, "certificate", kc->path, sizeof(kc->path)))
			return -1;
		if (!keyd_label_valid(kc->label))
			return yconf_fail(y, m, "key", "\"%s\" is not a valid label", kc->label);
		if (kc->path[0] != '/')
			return yconf_fail(y, m, "certificate", "must be an absolute path");
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->keycerts[j].label, kc->label) == 0)
				return yconf_fail(y, m, "key", "key %s is listed twice", kc->label);
		cfg->nkeycerts++;
	}
	return 0;
}

/* {name, user | uid}: a custodian or a sealer. */
static int parse_person(struct yconf *y, yaml_node_t *m, const char *what, struct keyd_person *p)
{
	yaml_node_t *v;
	char buf[256];
	long l;

	if (yconf_check_map(y, m, what, person_fields) ||
	    yconf_req_str(y, m, "name", p->name, sizeof(p->name)))
		return -1;
	if (!quorum_name_valid(p->name))
		return yconf_fail(y, m, "name", "\"%s\": names are 1-%d of A-Z a-z 0-9 . _ -",
		                  p->name, QUORUM_NAME_MAX);
	if (yconf_get(y, m, "uid") && yconf_get(y, m, "user"))
		return yconf_fail(y, m, "uid", "give uid or user, not both");
	if ((v = yconf_get(y, m, "uid"))) {
		if (yconf_long(y, v, "uid", 0, 0x7fffffff, &l))
			return -1;
		p->uid = (uid_t)l;
	} else if ((v = yconf_get(y, m, "user"))) {
		struct passwd *pw;
		if (yconf_str(y, v, "user", buf, sizeof(buf)))
			return -1;
		pw = getpwnam(buf);
		if (!pw)
			return yconf_fail(y, v, "user", "no such user \"%s\"", buf);
		p->uid = pw->pw_uid;
	} else {
		return yconf_fail(y, m, what, "each of %s needs uid or user", what);
	}
	return 0;
}

static int parse_people(struct yconf *y, yaml_node_t *list, const char *what,
                        struct keyd_person *out, size_t *n)
{
	if (!yconf_is_seq(list) || yconf_seq_len(list) == 0)
		return yconf_fail(y, list, what, "a non-empty list of {name, user or uid}");
	if (yconf_seq_len(list) > QUORUM_MAX_SHARES)
		return yconf_fail(y, list, what, "more than %d entries", QUORUM_MAX_SHARES);
	for (size_t i = 0; i < yconf_seq_len(list); i++) {
		yaml_node_t *m = yconf_seq_item(y, list, i);
		if (parse_person(y, m, what, &out[i]))
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(out[j].name, out[i].name) == 0)
				return yconf_fail(y, m, "name", "%s is listed twice", out[i].name);
		(*n)++;
	}
	return 0;
}

/* activation: file (pin_file: required) or quorum (quorum: required, no pin_file: the PIN is
 * never on disk). */
static int parse_activation(struct yconf *y, yaml_node_t *root, struct keyd_config *cfg)
{
	yaml_node_t *v = yconf_get(y, root, "activation"), *q;
	char buf[2 * QUORUM_VK_LEN + 2];
	long l;

	cfg->activation = KEYD_ACTIVATION_FILE;
	if (v) {
		if (yconf_str(y, v, "activation", buf, sizeof(buf)))
			return -1;
		if (strcmp(buf, "quorum") == 0)
			cfg->activation = KEYD_ACTIVATION_QUORUM;
		else if (strcmp(buf, "file") != 0)
			return yconf_fail(y, v, "activation", "\"%s\": file or quorum", buf);
	}
	q = yconf_get(y, root, "quorum");
	if (cfg->activation == KEYD_ACTIVATION_FILE) {
		if (q)
			return yconf_fail(y, q, "quorum", "needs activation: quorum");
		return yconf_req_str(y, root, "pin_file", cfg->pin_file, sizeof(cfg->pin_file));
	}
	if ((v = yconf_get(y, root, "pin_file")))
		return yconf_fail(y, v, "pin_file",
		                  "with activation: quorum the PIN comes from the custodians' "
		                  "shares and is never on disk: remove pin_file");
	if (!q)
		return yconf_fail(y, root, "quorum",
		                  "activation: quorum needs a quorum: section (hsmca keyd quorum "
		                  "init writes one)");
	if (yconf_check_map(y, q, "quorum", quorum_fields) ||
	    yconf_req_str(y, q, "id", buf, sizeof(buf)))
		return -1;
	if (quorum_unhex(buf, cfg->quorum.id, QUORUM_ID_LEN))
		return yconf_fail(y, yconf_get(y, q, "id"), "id", "not %d lower-case hex digits",
		                  2 * QUORUM_ID_LEN);
	if (yconf_req_str(y, q, "verify_key", buf, sizeof(buf)))
		return -1;
	if (quorum_unhex(buf, cfg->quorum.vk, QUORUM_VK_LEN))
		return yconf_fail(y, yconf_get(y, q, "verify_key"), "verify_key",
		                  "not %d lower-case hex digits", 2 * QUORUM_VK_LEN);
	v = yconf_get(y, q, "custodians");
	if (!v)
		return yconf_fail(y, q, "custodians", "the quorum needs its custodians");
	if (parse_people(y, v, "custodians", cfg->custodians, &cfg->ncustodians))
		return -1;
	if (cfg->ncustodians < 2)
		return yconf_fail(y, v, "custodians", "a quorum has at least 2 custodians");
	v = yconf_get(y, q, "threshold");
	if (!v)
		return yconf_fail(y, q, "threshold", "the quorum needs its threshold");
	if (yconf_long(y, v, "threshold", 2, (long)cfg->ncustodians, &l))
		return -1;
	cfg->quorum.threshold = (unsigned)l;
	cfg->quorum.total = (unsigned)cfg->ncustodians;
	if (yconf_opt_bool(y, q, "any_custodian", &cfg->any_custodian))
		return -1;
	if ((v = yconf_get(y, q, "sealers")) &&
	    parse_people(y, v, "sealers", cfg->sealers, &cfg->nsealers))
		return -1;
	return 0;
}

int keyd_config_parse(const char *name, const void *buf, size_t len, struct keyd_config *cfg,
                      char *err, size_t errlen)
{
	struct yconf y;
	yaml_node_t *root, *v, *clients;
	long l;
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	cfg->socket_mode = 0660;
	cfg->workers = 2;
	cfg->queue = 1024;
	cfg->max_inflight = 256;
	cfg->max_clients = 256;
	cfg->log_requests = 1;
	cfg->health_interval_ms = 5000;

	if (yconf_load_mem(&y, name, buf, len))
		goto out;
	root = yconf_root(&y);
	if (check_top(&y, root))
		goto out;
	if (yconf_req_str(&y, root, "module", cfg->module, sizeof(cfg->module)) ||
	    yconf_req_str(&y, root, "token", cfg->token, sizeof(cfg->token)) ||
	    parse_activation(&y, root, cfg) ||
	    yconf_req_str(&y, root, "socket", cfg->socket, sizeof(cfg->socket)))
		goto out;
	if ((v = yconf_get(&y, root, "socket_mode"))) {
		if (yconf_octal(&y, v, "socket_mode", 0777, &l))
			goto out;
		cfg->socket_mode = (unsigned)l;
	}
	if (opt_int(&y, root, "workers", 1, 64, &cfg->workers) ||
	    opt_int(&y, root, "queue", 1, 1 << 20, &cfg->queue) ||
	    opt_int(&y, root, "max_inflight", 1, 1 << 16, &cfg->max_inflight) ||
	    opt_int(&y, root, "max_clients", 1, 1 << 16, &cfg->max_clients) ||
	    opt_int(&y, root, "health_interval_ms", 100, 3600000, &cfg->health_interval_ms))
		goto out;
	if (yconf_opt_bool(&y, root, "log_requests", &cfg->log_requests) ||
	    yconf_opt_bool(&y, root, "rsa_sign_by_decrypt", &cfg->rsa_sign_by_decrypt))
		goto out;
	if (sandbox_config_read(&y, root, &cfg->sandbox) ||
	    yconf_opt_bool(&y, root, "module_ipc", &cfg->sandbox.module_ipc))
		goto out;
	if (parse_keycerts(&y, yconf_get(&y, root, "key_certificates"), cfg))
		goto out;

	clients = yconf_get(&y, root, "clients");
	if (clients && !yconf_is_seq(clients)) {
		yconf_fail(&y, clients, "clients", "expected a list of clients");
		goto out;
	}
	if (yconf_seq_len(clients) > KEYD_ACL_MAX_CLIENTS) {
		yconf_fail(&y, clients, "clients", "more than %d clients", KEYD_ACL_MAX_CLIENTS);
		goto out;
	}
	cfg->clients = calloc(yconf_seq_len(clients) + 1, sizeof(*cfg->clients));
	if (!cfg->clients) {
		yconf_fail(&y, clients, "clients", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < yconf_seq_len(clients); i++) {
		cfg->nclients++;
		if (parse_client(&y, yconf_seq_item(&y, clients, i), &cfg->clients[i], i))
			goto out;
	}
	rc = 0;
out:
	if (rc) {
		snprintf(err, errlen, "%s", y.err[0] ? y.err : "configuration error");
		keyd_config_free(cfg);
	}
	yconf_free(&y);
	return rc;
}

int keyd_config_load(const char *path, struct keyd_config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(YCONF_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	n = fread(buf, 1, YCONF_MAX_BYTES + 1, f);
	fclose(f);
	rc = keyd_config_parse(path, buf, n, cfg, err, errlen);
	free(buf);
	return rc;
}

void keyd_config_free(struct keyd_config *cfg)
{
	for (size_t i = 0; i < cfg->nclients; i++) {
		for (size_t j = 0; j < cfg->clients[i].ngrants; j++)
			free(cfg->clients[i].grants[j].keys);
		free(cfg->clients[i].grants);
	}
	free(cfg->clients);
	cfg->clients = NULL;
	cfg->nclients = 0;
	free(cfg->keycerts);
	cfg->keycerts = NULL;
	cfg->nkeycerts = 0;
}

const struct keyd_acl_entry *keyd_acl_find(const struct keyd_config *cfg, uid_t uid, gid_t gid)
{
	for (size_t i = 0; i < cfg->nclients; i++) {
		const struct keyd_acl_entry *e = &cfg->clients[i];
		if (e->uid == uid && (!e->has_gid || e->gid == gid))
			return e;
	}
	return NULL;
}

int keyd_acl_op_allowed(const struct keyd_acl_entry *e, int op)
{
	return e && op >= 0 && op < 32 && (e->ops & (1u << op));
}

static int grant_has_key(const struct keyd_grant *g, const char *label)
{
	if (g->all_keys)
		return 1;
	for (size_t i = 0; i < g->nkeys; i++)
		if (strcmp(g->keys[i], label) == 0)
			return 1;
	return 0;
}

int keyd_acl_key_allowed(const struct keyd_acl_entry *e, const char *label)
{
	for (size_t i = 0; e && i < e->ngrants; i++)
		if (grant_has_key(&e->grants[i], label))
			return 1;
	return 0;
}

int keyd_acl_allowed(const struct keyd_acl_entry *e, const char *label, int op)
{
	if (op < 0 || op >= 32)
		return 0;
	for (size_t i = 0; e && i < e->ngrants; i++)
		if ((e->grants[i].ops & (1u << op)) && grant_has_key(&e->grants[i], label))
			return 1;
	return 0;
}

unsigned keyd_acl_kinds(const struct keyd_acl_entry *e, const char *label)
{
	unsigned kinds = 0;

	for (size_t i = 0; e && i < e->ngrants; i++)
		if ((e->grants[i].ops & (1u << KEYD_OP_SIGN)) &&
		    grant_has_key(&e->grants[i], label))
			kinds |= e->grants[i].kinds;
	return kinds;
}

const char *keyd_keycert_path(const struct keyd_config *cfg, const char *label)
{
	for (size_t i = 0; i < cfg->nkeycerts; i++)
		if (strcmp(cfg->keycerts[i].label, label) == 0)
			return cfg->keycerts[i].path;
	return NULL;
}

const struct keyd_person *keyd_custodian_named(const struct keyd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ncustodians; i++)
		if (strcmp(cfg->custodians[i].name, name) == 0)
			return &cfg->custodians[i];
	return NULL;
}

const struct keyd_person *keyd_custodian_of(const struct keyd_config *cfg, uid_t uid)
{
	for (size_t i = 0; i < cfg->ncustodians; i++)
		if (cfg->custodians[i].uid == uid)
			return &cfg->custodians[i];
	return NULL;
}

const struct keyd_person *keyd_sealer_of(const struct keyd_config *cfg, uid_t uid)
{
	for (size_t i = 0; i < cfg->nsealers; i++)
		if (cfg->sealers[i].uid == uid)
			return &cfg->sealers[i];
	return NULL;
}

int keyd_pin_read(const char *path, char *pin, size_t pinsz, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errlen, "PIN file %s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "PIN file %s: not a regular file", path);
		goto fail;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		         "PIN file %s: mode %03o lets group or others read it; "
		         "it must be 0600 or 0400",
		         path, (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "PIN file %s: owned by uid %u, not by keyd's uid %u", path,
		         (unsigned)st.st_uid, (unsigned)geteuid());
		goto fail;
	}
	n = read(fd, pin, pinsz - 1);
	if (n < 0) {
		snprintf(err, errlen, "PIN file %s: read error: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		n--;
	pin[n] = 0;
	if (n == 0 || (size_t)n >= pinsz - 1 || memchr(pin, 0, (size_t)n)) {
		explicit_bzero(pin, pinsz);
		snprintf(err, errlen, "PIN file %s: empty, too long or not text", path);
		return -1;
	}
	return 0;
fail:
	close(fd);
	return -1;
}
