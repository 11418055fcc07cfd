/* hsmca-cad's configuration: listener, TLS, database, limits, authorities and profiles. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cad.h"
#include "cad_acme.h"
#include "cad_approvals.h"
#include "cad_est.h"
#include "cad_mfa.h"
#include "yconf.h"

static const char *const top_fields[] = {
    "listen", "tls",  "database", "limits",  "authorities", "key_profiles", "profiles", "audit",
    "est",    "user", "group",    "seccomp", "acme",        "approvals",    "console",
    "mfa",    NULL,
};
static const char *const console_fields[] = {"enabled", "session_idle_seconds",
                                             "session_max_seconds", "max_sessions", NULL};
static const char *const audit_fields[] = {"checkpoint_key", "checkpoint_interval_seconds", NULL};
static const char *const listen_fields[] = {"address", "port", "workers", NULL};
static const char *const tls_fields[] = {"certificate", "key", "client_ca", "client_crl", NULL};
static const char *const limit_fields[] = {
    "max_body_bytes",
    "max_header_bytes",
    "timeout_seconds",
    "token_max_days",
    "max_connections",
    "report_max_days",
    NULL,
};
static const char *const authority_fields[] = {"name",         "certificate", "chain", "key",
                                               "crl_base_url", "crl_shards",  NULL};
static const char *const key_profile_fields[] = {"name", "rsa_min_bits", "rsa_max_bits",
                                                 "ec_curves", NULL};
/* One field a line (profiles gain fields often). */
/* clang-format off */
static const char *const profile_fields[] = {
    "name",      "authority",          "key_profile",    "max_validity_days",
    "key_usage", "extended_key_usage", "subject_fields", "subject_cn_required",
    "san",       "san_required",       "policies",       "cps_uri",
    "subject_patterns", "not_after_beyond_issuer",
    NULL,
};
/* clang-format on */
static const char *const san_fields[] = {"dns", "ip", "email", "uri", NULL};
static const char *const subject_pattern_fields[] = {
    "CN", "O", "OU", "C", "ST", "L", "emailAddress", "serialNumber", NULL};

static const struct {
	const char *name;
	unsigned bit;
} key_usages[] = {
    {"digitalSignature", KU_DIGITAL_SIGNATURE},
    {"nonRepudiation", KU_NON_REPUDIATION},
    {"keyEncipherment", KU_KEY_ENCIPHERMENT},
    {"dataEncipherment", KU_DATA_ENCIPHERMENT},
    {"keyAgreement", KU_KEY_AGREEMENT},
    /* By key type (ca_key_usage_for): keyEncipherment for RSA keys, nothing for EC keys. */
    {"encipherment", KU_KEY_ENCIPHERMENT},
};

/* End-entity EKUs only: a profile cannot make an OCSP signer or a timestamping authority. */
static const struct {
	const char *name;
	int nid;
} ekus[] = {
    {"serverAuth", NID_server_auth},
    {"clientAuth", NID_client_auth},
    {"codeSigning", NID_code_sign},
    {"emailProtection", NID_email_protect},
};

static const struct {
	const char *name;
	int nid;
} subject_names[] = {
    {"CN", NID_commonName},
    {"O", NID_organizationName},
    {"OU", NID_organizationalUnitName},
    {"C", NID_countryName},
    {"ST", NID_stateOrProvinceName},
    {"L", NID_localityName},
    {"emailAddress", NID_pkcs9_emailAddress},
    {"serialNumber", NID_serialNumber},
};

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

/* A sequence of at most max scalars; each goes to fn. */
typedef int (*item_fn)(struct yconf *y, yaml_node_t *n, const char *s, void *arg);
static int each_str(struct yconf *y, yaml_node_t *seq, const char *what, size_t max, item_fn fn,
                    void *arg)
{
	char buf[256];

	if (!yconf_is_seq(seq))
		return yconf_fail(y, seq, what, "must be a list");
	if (yconf_seq_len(seq) > max)
		return yconf_fail(y, seq, what, "more than %zu entries", max);
	for (size_t i = 0; i < yconf_seq_len(seq); i++) {
		yaml_node_t *n = yconf_seq_item(y, seq, i);
		if (yconf_str(y, n, what, buf, sizeof(buf)) || fn(y, n, buf, arg))
			return -1;
	}
	return 0;
}

static int load_certs(const char *path, STACK_OF(X509) * *out, char *err, size_t errsz)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	FILE *f = fopen(path, "r");
	X509 *x;
	int rc = -1;

	if (!sk || !f) {
		snprintf(err, errsz, "%s: cannot read", path);
		goto out;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			snprintf(err, errsz, "%s: out of memory", path);
			goto out;
		}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		snprintf(err, errsz, "%s: no PEM certificate in it", path);
		goto out;
	}
	*out = sk;
	sk = NULL;
	rc = 0;
out:
	if (f)
		fclose(f);
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

/* keyd:label=NAME or keyd:NAME */
static int label_of(const char *uri, char *label, size_t n)
{
	const char *l;

	if (strncmp(uri, "keyd:", 5))
		return -1;
	l = uri + 5;
	if (!strncmp(l, "label=", 6))
		l += 6;
	if (!*l || strlen(l) >= n)
		return -1;
	for (const char *s = l; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return -1;
	snprintf(label, n, "%s", l);
	return 0;
}

/* crl_base_url (http(s), no spaces, commas or quotes: it goes into an X509V3 value) and
 * crl_shards (0: unpartitioned, else 2..256), as hsmca-crld publishes them. */
static int parse_crl(struct yconf *y, yaml_node_t *m, struct ca_authority *a)
{
	size_t n;
	long l = 0;

	if (yconf_opt_str(y, m, "crl_base_url", a->crl_base_url, sizeof(a->crl_base_url) - 1) ||
	    yconf_opt_long(y, m, "crl_shards", 0, 256, &l))
		return -1;
	if (l == 1)
		return yconf_fail(y, m, "crl_shards", "1 shard is no partition: use 0, or 2..256");
	a->crl_shards = (int)l;
	if (l && !a->crl_base_url[0])
		return yconf_fail(y, m, "crl_shards", "needs crl_base_url");
	if (!a->crl_base_url[0])
		return 0;
	if (strncmp(a->crl_base_url, "http://", 7) && strncmp(a->crl_base_url, "https://", 8))
		return yconf_fail(y, m, "crl_base_url", "\"%s\" is not an http(s) URL",
		                  a->crl_base_url);
	for (const char *c = a->crl_base_url; *c; c++)
		if (*c <= ' ' || *c >= 0x7f || strchr(",\"'<>\\", *c))
			return yconf_fail(y, m, "crl_base_url",
			                  "\"%s\" has a character not allowed", a->crl_base_url);
	n = strlen(a->crl_base_url);
	if (a->crl_base_url[n - 1] != '/')
		strcat(a->crl_base_url, "/");
	return 0;
}

static int parse_authority(struct yconf *y, yaml_node_t *m, struct ca_authority *a)
{
	STACK_OF(X509) *sk = NULL;
	char err[600];
	int rc = -1;

	if (yconf_check_map(y, m, "authorities", authority_fields) ||
	    yconf_req_str(y, m, "name", a->name, sizeof(a->name)) ||
	    yconf_req_str(y, m, "certificate", a->cert_path, sizeof(a->cert_path)) ||
	    yconf_opt_str(y, m, "chain", a->chain_path, sizeof(a->chain_path)) ||
	    yconf_req_str(y, m, "key", a->key_uri, sizeof(a->key_uri)))
		return -1;
	if (!name_ok(a->name))
		return yconf_fail(y, m, "name", "\"%s\": use 1..%d of a-z 0-9 - _", a->name,
		                  CAD_NAME_MAX);
	if (label_of(a->key_uri, a->key_label, sizeof(a->key_label)))
		return yconf_fail(y, m, "key", "\"%s\" is not a keyd:label=NAME URI", a->key_uri);
	if (parse_crl(y, m, a))
		return -1;
	if (load_certs(a->cert_path, &sk, err, sizeof(err))) {
		yconf_fail(y, m, "certificate", "%s", err);
		goto out;
	}
	a->cert = sk_X509_shift(sk);
	if (sk_X509_num(sk) > 0) {
		yconf_fail(y, m, "certificate", "%s: holds more than one certificate",
		           a->cert_path);
		goto out;
	}
	if (!(X509_get_extension_flags(a->cert) & EXFLAG_CA)) {
		yconf_fail(y, m, "certificate", "%s: not a CA certificate", a->cert_path);
		goto out;
	}
	if (a->chain_path[0]) {
		if (load_certs(a->chain_path, &a->chain, err, sizeof(err))) {
			yconf_fail(y, m, "chain", "%s", err);
			goto out;
		}
	} else if (!(a->chain = sk_X509_new_null())) {
		yconf_fail(y, m, "chain", "out of memory");
		goto out;
	}
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

static int curve_item(struct yconf *y, yaml_node_t *n, const char *s, void *arg)
{
	struct ca_key_profile *k = arg;

	if (!strcmp(s, "P-256"))
		k->p256 = 1;
	else if (!strcmp(s, "P-384"))
		k->p384 = 1;
	else
		return yconf_fail(y, n, "ec_curves", "\"%s\": only P-256 and P-384 are allowed", s);
	return 0;
}

static int parse_key_profile(struct yconf *y, yaml_node_t *m, struct ca_key_profile *k)
{
	yaml_node_t *v;
	long l;

	if (yconf_check_map(y, m, "key_profiles", key_profile_fields) ||
	    yconf_req_str(y, m, "name", k->name, sizeof(k->name)))
		return -1;
	if (!name_ok(k->name))
		return yconf_fail(y, m, "name", "\"%s\": use a-z 0-9 - _", k->name);
	if (yconf_get(y, m, "rsa_min_bits")) {
		/* No RSA below 2048, whatever the file says. */
		if (yconf_opt_long(y, m, "rsa_min_bits", 2048, 16384, &l))
			return -1;
		k->rsa_min_bits = (int)l;
		k->rsa_max_bits = 4096;
		if (yconf_opt_long(y, m, "rsa_max_bits", l, 16384, &l))
			return -1;
		k->rsa_max_bits = (int)l;
	} else if (yconf_get(y, m, "rsa_max_bits")) {
		return yconf_fail(y, m, "rsa_max_bits", "needs rsa_min_bits");
	}
	if ((v = yconf_get(y, m, "ec_curves")) && each_str(y, v, "ec_curves", 2, curve_item, k))
		return -1;
	if (!k->rsa_min_bits && !k->p256 && !k->p384)
		return yconf_fail(y, m, "key_profiles", "%s allows no key at all", k->name);
	return 0;
}

struct profile_ctx {
	struct ca_profile *p;
	enum ca_san_kind kind;
};

static int ku_item(struct yconf *y, yaml_node_t *n, const char *s, void *arg)
{
	struct ca_profile *p = arg;

	for (size_t i = 0; i < sizeof(key_usages) / sizeof(key_usages[0]); i++)
		if (!strcmp(s, key_usages[i].name)) {
			p->key_usage |= key_usages[i].bit;
			return 0;
		}
	return yconf_fail(y, n, "key_usage",
	                  "\"%s\": one of digitalSignature, nonRepudiation, keyEncipherment, "
	                  "encipherment, dataEncipherment, keyAgreement",
	                  s);
}

static int eku_item(struct yconf *y, yaml_node_t *n, const char *s, void *arg)
{
	struct ca_profile *p = arg;

	for (size_t i = 0; i < sizeof(ekus) / sizeof(ekus[0]); i++)
		if (!strcmp(s, ekus[i].name)) {
			p->eku[p->n_eku++] = ekus[i].nid;
			return 0;
		}
	return yconf_fail(y, n, "extended_key_usage",
	                  "\"%s\": one of serverAuth, clientAuth, codeSigning, emailProtection", s);
}

static int field_item(struct yconf *y, yaml_node_t *n, const char *s, void *arg)
{
	struct ca_profile *p = arg;

	for (size_t i = 0; i < sizeof(subject_names) / sizeof(subject_names[0]); i++)
		if (!strcmp(s, subject_names[i].name)) {
			p->subject_fields[p->n_subject_fields++] = subject_names[i].nid;
			return 0;
		}
	return yconf_fail(y, n, "subject_fields",
	                  "\"%s\": one of CN O OU C ST L emailAddress serialNumber", s);
}

static int pattern_item(struct yconf *y, yaml_node_t *n, const char *s, void *arg)
{
	struct profile_ctx *c = arg;
	char *dup;

	if (!*s)
		return yconf_fail(y, n, "san", "empty pattern");
	dup = strdup(s);
	if (!dup)
		return yconf_fail(y, n, "san", "out of memory");
	c->p->san_patterns[c->kind][c->p->n_san_patterns[c->kind]++] = dup;
	return 0;
}

/* A dotted policy OID as RFC 5280 4.2.1.4 wants it: at least two arcs, the first 0..2 (and
 * the second below 40 unless the first is 2), decimal arcs without leading zeros. anyPolicy
 * (2.5.29.32.0) is for CA certificates only (BR 7.1.2.7.9), never a profile's. */
static int policy_item(struct yconf *y, yaml_node_t *n, const char *s, void *arg)
{
	struct ca_profile *p = arg;
	size_t len = strlen(s), arcs = 0;
	const char *c = s;
	ASN1_OBJECT *o;

	if (len == 0 || len > CA_OID_MAX)
		return yconf_fail(y, n, "policies", "\"%s\": a policy OID has 1..%d characters", s,
		                  CA_OID_MAX);
	while (*c) {
		const char *start = c;
		unsigned long v = 0;
		while (*c >= '0' && *c <= '9') {
			if (v > 100000000UL)
				break;
			v = v * 10 + (unsigned long)(*c++ - '0');
		}
		if (c == start || (*c && *c != '.') || (c - start > 1 && *start == '0') ||
		    (*c == '.' && !c[1]) || (arcs == 0 && v > 2) ||
		    (arcs == 1 && s[0] != '2' && v >= 40))
			return yconf_fail(y, n, "policies",
			                  "\"%s\" is not a dotted OID such as 2.23.140.1.2.1", s);
		arcs++;
		if (*c == '.')
			c++;
	}
	if (arcs < 2)
		return yconf_fail(y, n, "policies", "\"%s\": an OID has at least two arcs", s);
	if (!strcmp(s, "2.5.29.32.0"))
		return yconf_fail(y, n, "policies",
		                  "anyPolicy is for CA certificates only (BR 7.1.2.7.9)");
	if (!(o = OBJ_txt2obj(s, 1)))
		return yconf_fail(y, n, "policies", "\"%s\" does not encode as an OID", s);
	ASN1_OBJECT_free(o);
	for (size_t i = 0; i < p->n_policies; i++)
		if (!strcmp(p->policies[i], s))
			return yconf_fail(y, n, "policies", "\"%s\" is listed twice", s);
	snprintf(p->policies[p->n_policies++], sizeof(p->policies[0]), "%s", s);
	return 0;
}

/* policies (certificatePolicies) and cps_uri (its CPS qualifier, on the profile's own
 * policies: BR 7.1.2.7.9 allows no qualifier on the CA/Browser Forum's reserved ones). */
static int parse_policies(struct yconf *y, yaml_node_t *m, struct ca_profile *p)
{
	yaml_node_t *v = yconf_get(y, m, "policies");
	int own = 0;

	if (v && each_str(y, v, "policies", CA_MAX_POLICIES, policy_item, p))
		return -1;
	if (yconf_opt_str(y, m, "cps_uri", p->cps_uri, sizeof(p->cps_uri)))
		return -1;
	if (!p->cps_uri[0])
		return 0;
	if (strncmp(p->cps_uri, "http://", 7) && strncmp(p->cps_uri, "https://", 8))
		return yconf_fail(y, m, "cps_uri",
		                  "\"%s\" is not an http(s) URL (BR 7.1.2.7.9: the CPS URI is HTTP "
		                  "or HTTPS)",
		                  p->cps_uri);
	if (strlen(p->cps_uri) <= (size_t)(p->cps_uri[4] == 's' ? 8 : 7))
		return yconf_fail(y, m, "cps_uri", "\"%s\" names no host", p->cps_uri);
	for (const char *c = p->cps_uri; *c; c++)
		if (*c <= ' ' || *c >= 0x7f || strchr("\"'<>\\", *c))
			return yconf_fail(y, m, "cps_uri",
			                  "\"%s\" has a character not allowed in a URI",
			                  p->cps_uri);
	for (size_t i = 0; i < p->n_policies; i++)
		own |= strncmp(p->policies[i], "2.23.140.1.", 11) != 0;
	if (!own)
		return yconf_fail(
		    y, m, "cps_uri",
		    "needs a policy of the CA's own in policies: the CA/Browser Forum's "
		    "reserved policies (2.23.140.1.*) take no qualifier (BR 7.1.2.7.9)");
	return 0;
}

struct subject_ctx {
	struct ca_profile *p;
	size_t field; /* index into p->subject_fields */
};

static int subject_pattern_item(struct yconf *y, yaml_node_t *n, const char *s, void *arg)
{
	struct subject_ctx *c = arg;
	char *dup;

	if (!*s)
		return yconf_fail(y, n, "subject_patterns", "empty pattern");
	if (!(dup = strdup(s)))
		return yconf_fail(y, n, "subject_patterns", "out of memory");
	c->p->subject_patterns[c->field][c->p->n_subject_patterns[c->field]++] = dup;
	return 0;
}

/* subject_patterns: {FIELD: [pattern...]} for fields of subject_fields; emailAddress is
 * judged by the email SAN patterns instead. */
static int parse_subject_patterns(struct yconf *y, yaml_node_t *v, struct ca_profile *p)
{
	if (yconf_check_map(y, v, "subject_patterns", subject_pattern_fields))
		return -1;
	for (size_t i = 0; i < sizeof(subject_names) / sizeof(subject_names[0]); i++) {
		yaml_node_t *s = yconf_get(y, v, subject_names[i].name);
		struct subject_ctx c = {p, 0};

		if (!s)
			continue;
		if (subject_names[i].nid == NID_pkcs9_emailAddress)
			return yconf_fail(y, s, "subject_patterns",
			                  "emailAddress is judged by the san.email patterns");
		while (c.field < p->n_subject_fields &&
		       p->subject_fields[c.field] != subject_names[i].nid)
			c.field++;
		if (c.field == p->n_subject_fields)
			return yconf_fail(y, s, "subject_patterns", "%s is not in subject_fields",
			                  subject_names[i].name);
		if (each_str(y, s, "subject_patterns", CA_MAX_PATTERNS, subject_pattern_item, &c))
			return -1;
	}
	return 0;
}

int cad_profile_parse(struct yconf *y, yaml_node_t *m, struct cad_config *cfg, struct ca_profile *p)
{
	char buf[CAD_NAME_MAX + 1];
	yaml_node_t *v;
	long l;

	if (yconf_check_map(y, m, "profiles", profile_fields) ||
	    yconf_req_str(y, m, "name", p->name, sizeof(p->name)))
		return -1;
	if (!name_ok(p->name))
		return yconf_fail(y, m, "name", "\"%s\": use a-z 0-9 - _", p->name);
	if (yconf_req_str(y, m, "authority", buf, sizeof(buf)))
		return -1;
	for (size_t i = 0; i < cfg->n_authorities; i++)
		if (!strcmp(cfg->authorities[i].name, buf))
			p->authority = &cfg->authorities[i];
	if (!p->authority)
		return yconf_fail(y, m, "authority", "no authority named \"%s\"", buf);
	if (yconf_req_str(y, m, "key_profile", buf, sizeof(buf)))
		return -1;
	for (size_t i = 0; i < cfg->n_key_profiles; i++)
		if (!strcmp(cfg->key_profiles[i].name, buf))
			p->key_profile = &cfg->key_profiles[i];
	if (!p->key_profile)
		return yconf_fail(y, m, "key_profile", "no key profile named \"%s\"", buf);
	if (!yconf_get(y, m, "max_validity_days"))
		return yconf_fail(y, m, "max_validity_days", "required field is missing");
	if (yconf_opt_long(y, m, "max_validity_days", 1, 3650, &l))
		return -1;
	p->max_validity_days = (int)l;
	if (!(v = yconf_get(y, m, "key_usage")))
		return yconf_fail(y, m, "key_usage", "required field is missing");
	if (each_str(y, v, "key_usage", 5, ku_item, p))
		return -1;
	if (!p->key_usage)
		return yconf_fail(y, v, "key_usage", "must not be empty");
	if (!(v = yconf_get(y, m, "extended_key_usage")))
		return yconf_fail(y, m, "extended_key_usage", "required field is missing");
	if (each_str(y, v, "extended_key_usage", CA_MAX_EKUS, eku_item, p))
		return -1;
	if (!(v = yconf_get(y, m, "subject_fields")))
		return yconf_fail(y, m, "subject_fields", "required field is missing");
	if (each_str(y, v, "subject_fields", CA_MAX_FIELDS, field_item, p))
		return -1;
	if (yconf_opt_bool(y, m, "subject_cn_required", &p->subject_cn_required) ||
	    yconf_opt_bool(y, m, "san_required", &p->san_required) || parse_policies(y, m, p))
		return -1;
	for (size_t i = 0; i < p->n_subject_fields; i++)
		for (size_t j = 0; j < i; j++)
			if (p->subject_fields[i] == p->subject_fields[j])
				return yconf_fail(y, m, "subject_fields", "%s is listed twice",
				                  OBJ_nid2sn(p->subject_fields[i]));
	if ((v = yconf_get(y, m, "subject_patterns")) && parse_subject_patterns(y, v, p))
		return -1;
	buf[0] = '\0';
	if (yconf_opt_str(y, m, "not_after_beyond_issuer", buf, sizeof(buf)))
		return -1;
	if (buf[0] && strcmp(buf, "refuse") && strcmp(buf, "clamp"))
		return yconf_fail(y, m, "not_after_beyond_issuer", "\"%s\": refuse or clamp", buf);
	p->clamp_not_after = !strcmp(buf, "clamp");
	if ((v = yconf_get(y, m, "san"))) {
		if (yconf_check_map(y, v, "san", san_fields))
			return -1;
		for (int k = 0; k < CA_SAN_KINDS; k++) {
			struct profile_ctx c = {p, (enum ca_san_kind)k};
			yaml_node_t *s = yconf_get(y, v, ca_san_kind_name((enum ca_san_kind)k));
			if (s && each_str(y, s, "san", CA_MAX_PATTERNS, pattern_item, &c))
				return -1;
		}
	}
	return 0;
}

/* console: {enabled, session_idle_seconds, session_max_seconds, max_sessions}. */
static int parse_console(struct yconf *y, yaml_node_t *v, struct cad_config *cfg)
{
	long l;

	cfg->console_enabled = 1;
	cfg->session_idle_seconds = 900;
	cfg->session_max_seconds = 28800;
	cfg->max_sessions = 1000;
	if (!v)
		return 0;
	if (yconf_check_map(y, v, "console", console_fields) ||
	    yconf_opt_bool(y, v, "enabled", &cfg->console_enabled))
		return -1;
	l = cfg->session_idle_seconds;
	if (yconf_opt_long(y, v, "session_idle_seconds", 5, 86400, &l))
		return -1;
	cfg->session_idle_seconds = (int)l;
	l = cfg->session_max_seconds;
	if (yconf_opt_long(y, v, "session_max_seconds", 5, 604800, &l))
		return -1;
	cfg->session_max_seconds = (int)l;
	if (cfg->session_max_seconds < cfg->session_idle_seconds)
		return yconf_fail(y, v, "session_max_seconds",
		                  "%d is shorter than session_idle_seconds (%d)",
		                  cfg->session_max_seconds, cfg->session_idle_seconds);
	l = cfg->max_sessions;
	if (yconf_opt_long(y, v, "max_sessions", 1, 100000, &l))
		return -1;
	cfg->max_sessions = (int)l;
	return 0;
}

/* Each item of a required sequence, with bounds. */
#define EACH_MAP(seqnode, what, max, countvar, body)                                               \
	do {                                                                                       \
		if (!(seqnode) || !yconf_is_seq(seqnode) || yconf_seq_len(seqnode) == 0) {         \
			yconf_fail(&y, (seqnode) ? (seqnode) : root, what,                         \
			           "a non-empty list is required");                                \
			goto out;                                                                  \
		}                                                                                  \
		if (yconf_seq_len(seqnode) > (max)) {                                              \
			yconf_fail(&y, seqnode, what, "more than %d entries", (int)(max));         \
			goto out;                                                                  \
		}                                                                                  \
		for (size_t i_ = 0; i_ < yconf_seq_len(seqnode); i_++) {                           \
			yaml_node_t *item = yconf_seq_item(&y, seqnode, i_);                       \
			countvar = i_ + 1;                                                         \
			body;                                                                      \
		}                                                                                  \
	} while (0)

int cad_config_load(const char *path, struct cad_config *cfg, char *err, size_t errsz)
{
	struct yconf y = {0};
	yaml_node_t *root, *v, *seq;
	long l;
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_address, sizeof(cfg->listen_address), "127.0.0.1");
	cfg->listen_port = 8443;
	cfg->workers = 16;
	cfg->max_body_bytes = 65536;
	cfg->max_header_bytes = 16384;
	cfg->timeout_seconds = 30;
	cfg->token_max_days = 366;
	cfg->max_connections = 1000;
	cfg->report_max_days = 366;
	if (yconf_load_file(&y, path))
		goto out;
	root = yconf_root(&y);
	if (yconf_check_map(&y, root, "configuration", top_fields))
		goto out;
	if ((v = yconf_get(&y, root, "listen"))) {
		if (yconf_check_map(&y, v, "listen", listen_fields) ||
		    yconf_opt_str(&y, v, "address", cfg->listen_address,
		                  sizeof(cfg->listen_address)) ||
		    yconf_opt_long(&y, v, "port", 0, 65535, &l))
			goto out;
		if (yconf_get(&y, v, "port"))
			cfg->listen_port = (int)l;
		l = cfg->workers;
		if (yconf_opt_long(&y, v, "workers", 1, 64, &l))
			goto out;
		cfg->workers = (int)l;
	}
	if (!(v = yconf_get(&y, root, "tls"))) {
		yconf_fail(&y, root, "tls", "required section is missing");
		goto out;
	}
	if (yconf_check_map(&y, v, "tls", tls_fields) ||
	    yconf_req_str(&y, v, "certificate", cfg->tls_cert, sizeof(cfg->tls_cert)) ||
	    yconf_req_str(&y, v, "key", cfg->tls_key, sizeof(cfg->tls_key)) ||
	    yconf_req_str(&y, v, "client_ca", cfg->tls_client_ca, sizeof(cfg->tls_client_ca)) ||
	    yconf_opt_str(&y, v, "client_crl", cfg->tls_client_crl, sizeof(cfg->tls_client_crl)))
		goto out;
	if (yconf_opt_str(&y, root, "database", cfg->database, sizeof(cfg->database)))
		goto out;
	if (sandbox_config_read(&y, root, &cfg->sandbox))
		goto out;
	if ((v = yconf_get(&y, root, "limits"))) {
		if (yconf_check_map(&y, v, "limits", limit_fields))
			goto out;
		l = (long)cfg->max_body_bytes;
		if (yconf_opt_long(&y, v, "max_body_bytes", 1024, 1 << 20, &l))
			goto out;
		cfg->max_body_bytes = (size_t)l;
		l = (long)cfg->max_header_bytes;
		if (yconf_opt_long(&y, v, "max_header_bytes", 1024, 1 << 20, &l))
			goto out;
		cfg->max_header_bytes = (size_t)l;
		l = cfg->timeout_seconds;
		if (yconf_opt_long(&y, v, "timeout_seconds", 1, 3600, &l))
			goto out;
		cfg->timeout_seconds = (int)l;
		l = cfg->token_max_days;
		if (yconf_opt_long(&y, v, "token_max_days", 1, 3660, &l))
			goto out;
		cfg->token_max_days = (int)l;
		l = cfg->max_connections;
		if (yconf_opt_long(&y, v, "max_connections", 1, 100000, &l))
			goto out;
		cfg->max_connections = (int)l;
		l = cfg->report_max_days;
		if (yconf_opt_long(&y, v, "report_max_days", 1, 3660, &l))
			goto out;
		cfg->report_max_days = (int)l;
	}
	cfg->audit_checkpoint_seconds = 300;
	if ((v = yconf_get(&y, root, "audit"))) {
		if (yconf_check_map(&y, v, "audit", audit_fields) ||
		    yconf_req_str(&y, v, "checkpoint_key", cfg->audit_key_uri,
		                  sizeof(cfg->audit_key_uri)))
			goto out;
		if (label_of(cfg->audit_key_uri, cfg->audit_key_label,
		             sizeof(cfg->audit_key_label))) {
			yconf_fail(&y, v, "checkpoint_key", "\"%s\" is not a keyd:label=NAME URI",
			           cfg->audit_key_uri);
			goto out;
		}
		l = cfg->audit_checkpoint_seconds;
		if (yconf_opt_long(&y, v, "checkpoint_interval_seconds", 1, 86400, &l))
			goto out;
		cfg->audit_checkpoint_seconds = (int)l;
	}
	seq = yconf_get(&y, root, "authorities");
	EACH_MAP(seq, "authorities", CAD_MAX_AUTHORITIES, cfg->n_authorities, {
		if (parse_authority(&y, item, &cfg->authorities[i_]))
			goto out;
		for (size_t j = 0; j < i_; j++)
			if (!strcmp(cfg->authorities[j].name, cfg->authorities[i_].name)) {
				yconf_fail(&y, item, "authorities", "\"%s\" is named twice",
				           cfg->authorities[i_].name);
				goto out;
			}
	});
	seq = yconf_get(&y, root, "key_profiles");
	EACH_MAP(seq, "key_profiles", CAD_MAX_PROFILES, cfg->n_key_profiles, {
		if (parse_key_profile(&y, item, &cfg->key_profiles[i_]))
			goto out;
	});
	seq = yconf_get(&y, root, "profiles");
	EACH_MAP(seq, "profiles", CAD_MAX_PROFILES, cfg->n_profiles, {
		if (cad_profile_parse(&y, item, cfg, &cfg->profiles[i_]))
			goto out;
		if (!(cfg->profile_json[i_] = malloc(DB_PROFILE_BODY_MAX + 1)) ||
		    yconf_to_json(&y, item, cfg->profile_json[i_], DB_PROFILE_BODY_MAX + 1) < 0) {
			if (!cfg->profile_json[i_])
				yconf_fail(&y, item, "profiles", "out of memory");
			goto out;
		}
		for (size_t j = 0; j < i_; j++)
			if (!strcmp(cfg->profiles[j].name, cfg->profiles[i_].name)) {
				yconf_fail(&y, item, "profiles", "\"%s\" is named twice",
				           cfg->profiles[i_].name);
				goto out;
			}
	});
	if (parse_console(&y, yconf_get(&y, root, "console"), cfg))
		goto out;
	if (cad_est_config_parse(&y, yconf_get(&y, root, "est"), cfg, cad_profile_find))
		goto out;
	if (cad_acme_config_parse(&y, yconf_get(&y, root, "acme"), cfg, cad_profile_find))
		goto out;
	if (cad_approvals_config_parse(&y, yconf_get(&y, root, "approvals"), cfg))
		goto out;
	if (cad_mfa_config_parse(&y, yconf_get(&y, root, "mfa"), cfg))
		goto out;
	rc = 0;
out:
	if (rc)
		snprintf(err, errsz, "%s", y.err[0] ? y.err : "configuration error");
	yconf_free(&y);
	return rc;
}

void cad_config_free(struct cad_config *cfg)
{
	EVP_PKEY_free(cfg->audit_key);
	for (size_t i = 0; i < CAD_MAX_AUTHORITIES; i++) {
		X509_free(cfg->authorities[i].cert);
		sk_X509_pop_free(cfg->authorities[i].chain, X509_free);
		EVP_PKEY_free(cfg->authorities[i].key);
	}
	for (size_t i = 0; i < CAD_MAX_PROFILES; i++) {
		cad_profile_clear(&cfg->profiles[i]);
		free(cfg->profile_json[i]);
	}
	cad_acme_config_free(cfg);
	memset(cfg, 0, sizeof(*cfg));
}

void cad_profile_clear(struct ca_profile *p)
{
	for (int k = 0; k < CA_SAN_KINDS; k++)
		for (size_t j = 0; j < p->n_san_patterns[k]; j++)
			free(p->san_patterns[k][j]);
	for (size_t k = 0; k < CA_MAX_FIELDS; k++)
		for (size_t j = 0; j < p->n_subject_patterns[k]; j++)
			free(p->subject_patterns[k][j]);
	memset(p, 0, sizeof(*p));
}

struct ca_profile *cad_profile_find(struct cad_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_profiles; i++)
		if (!strcmp(cfg->profiles[i].name, name))
			return &cfg->profiles[i];
	return NULL;
}
