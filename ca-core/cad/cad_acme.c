/* ACME (RFC 8555) in hsmca-cad: the "acme:" configuration section, the server of ca-core/acme
 * served under /acme/ on the HTTPS listener (ACME clients present no client certificate; the
 * listener asks for one but does not require it, and nothing under /acme/ looks at it), its
 * accounts kept in the database with an audit entry for every change, and the officer's API
 * for External Account Binding credentials (POST /api/v1/acme/eab). docs/acme.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fnmatch.h>
#include <stdatomic.h>
#include <strings.h>

#include <event2/buffer.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acmeval.h"
#include "ca_group.h"
#include "cad_acme.h"
#include "cad_internal.h"
#include "httptext.h"
#include "log.h"

/* --- configuration --- */

static const char *const acme_fields[] = {"url",
                                          "profiles",
                                          "terms_of_service",
                                          "website",
                                          "external_account_required",
                                          "nonce_store_size",
                                          "eab_max_days",
                                          "validator",
                                          "validation_timeout_ms",
                                          "authz_reuse_seconds",
                                          "order_lifetime_seconds",
                                          "orders_per_hour",
                                          "pending_authorizations",
                                          "alternate_chains",
                                          NULL};
static const char *const chain_fields[] = {"authority", "chain", NULL};

/* The most certificates an alternate chain file may hold. */
#define ALT_CHAIN_CERTS_MAX 8

void cad_acme_config_free(struct cad_config *cfg)
{
	for (size_t i = 0; i < cfg->n_acme_alt_chains; i++)
		free(cfg->acme_alt_chains[i].pem);
	cfg->n_acme_alt_chains = 0;
}

/* The alternate chain in file path for authority ca: PEM certificates, the first one ca's own
 * subject and key certified by another issuer (a cross-certificate), each issued by the next;
 * into *pem as PEM text. 0, or -1 with err filled. */
static int alt_chain_load(const char *path, X509 *ca, char **pem, char *err, size_t errsz)
{
	X509 *certs[ALT_CHAIN_CERTS_MAX + 1] = {0}, *x;
	FILE *f = fopen(path, "r");
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int n = 0, rc = -1;

	if (!f || !b) {
		snprintf(err, errsz, "%s: cannot read", path);
		goto out;
	}
	while (n <= ALT_CHAIN_CERTS_MAX && (x = PEM_read_X509(f, NULL, NULL, NULL)))
		certs[n++] = x;
	ERR_clear_error();
	if (n == 0 || n > ALT_CHAIN_CERTS_MAX) {
		snprintf(err, errsz, "%s: must hold 1 to %d PEM certificates", path,
		         ALT_CHAIN_CERTS_MAX);
		goto out;
	}
	if (X509_NAME_cmp(X509_get_subject_name(certs[0]), X509_get_subject_name(ca)) ||
	    EVP_PKEY_eq(X509_get0_pubkey(certs[0]), X509_get0_pubkey(ca)) != 1 ||
	    !(X509_get_extension_flags(certs[0]) & EXFLAG_CA)) {
		snprintf(err, errsz,
		         "%s: its first certificate must be a CA certificate with the authority's "
		         "subject and key",
		         path);
		goto out;
	}
	if (!X509_NAME_cmp(X509_get_issuer_name(certs[0]), X509_get_issuer_name(ca))) {
		snprintf(err, errsz,
		         "%s: its first certificate has the issuer of the authority's own "
		         "certificate: that is the default chain, not an alternate",
		         path);
		goto out;
	}
	for (int i = 0; i + 1 < n; i++)
		if (X509_check_issued(certs[i + 1], certs[i]) != X509_V_OK) {
			snprintf(err, errsz, "%s: certificate %d is not issued by certificate %d",
			         path, i + 1, i + 2);
			goto out;
		}
	for (int i = 0; i < n; i++)
		if (!PEM_write_bio_X509(b, certs[i])) {
			snprintf(err, errsz, "out of memory");
			goto out;
		}
	if ((len = BIO_get_mem_data(b, &data)) <= 0 || !(*pem = strndup(data, (size_t)len))) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	rc = 0;
out:
	for (int i = 0; i < n; i++)
		X509_free(certs[i]);
	BIO_free(b);
	if (f)
		fclose(f);
	return rc;
}

static int alt_chains_parse(struct yconf *y, yaml_node_t *seq, struct cad_config *cfg)
{
	char name[CAD_NAME_MAX + 1], path[CAD_PATH_MAX], err[600];

	if (!yconf_is_seq(seq))
		return yconf_fail(y, seq, "acme.alternate_chains",
		                  "must be a list of {authority, chain}");
	if (yconf_seq_len(seq) > CAD_ACME_ALT_CHAINS_MAX)
		return yconf_fail(y, seq, "acme.alternate_chains", "more than %d entries",
		                  CAD_ACME_ALT_CHAINS_MAX);
	for (size_t i = 0; i < yconf_seq_len(seq); i++) {
		yaml_node_t *m = yconf_seq_item(y, seq, i);
		struct cad_acme_chain *c = &cfg->acme_alt_chains[cfg->n_acme_alt_chains];
		size_t k;
		if (yconf_check_map(y, m, "acme.alternate_chains", chain_fields) ||
		    yconf_req_str(y, m, "authority", name, sizeof(name)) ||
		    yconf_req_str(y, m, "chain", path, sizeof(path)))
			return -1;
		for (k = 0; k < cfg->n_authorities; k++)
			if (!strcmp(cfg->authorities[k].name, name))
				break;
		if (k == cfg->n_authorities)
			return yconf_fail(y, m, "acme.alternate_chains.authority",
			                  "no authority named \"%s\"", name);
		if (alt_chain_load(path, cfg->authorities[k].cert, &c->pem, err, sizeof(err)))
			return yconf_fail(y, m, "acme.alternate_chains.chain", "%s", err);
		c->authority = k;
		cfg->n_acme_alt_chains++;
	}
	return 0;
}

static int https_url(const char *s)
{
	return !strncmp(s, "https://", 8) && strlen(s) > 8 && !strpbrk(s, " \t\r\n\"<>");
}

int cad_acme_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg,
                          cad_profile_lookup find)
{
	yaml_node_t *seq;
	long nonces = 65536, days = 30;
	char name[CAD_NAME_MAX + 1];
	size_t len;

	cfg->acme_url[0] = cfg->acme_terms_url[0] = cfg->acme_website[0] = '\0';
	cfg->acme_eab_required = 1;
	cfg->n_acme_profiles = 0;
	cfg->acme_nonce_store = nonces;
	cfg->acme_eab_max_days = (int)days;
	cfg->acme_validator[0] = '\0';
	cfg->acme_validation_timeout_ms = 30000;
	cfg->acme_authz_reuse = 30 * 86400;
	cfg->acme_order_lifetime = 7 * 86400;
	cfg->acme_orders_per_hour = 300;
	cfg->acme_pending_authz = 300;
	cad_acme_config_free(cfg);
	if (!n)
		return 0;
	if (yconf_check_map(y, n, "acme", acme_fields) ||
	    yconf_req_str(y, n, "url", cfg->acme_url, sizeof(cfg->acme_url)) ||
	    yconf_opt_str(y, n, "terms_of_service", cfg->acme_terms_url,
	                  sizeof(cfg->acme_terms_url)) ||
	    yconf_opt_str(y, n, "website", cfg->acme_website, sizeof(cfg->acme_website)) ||
	    yconf_opt_bool(y, n, "external_account_required", &cfg->acme_eab_required) ||
	    yconf_opt_long(y, n, "nonce_store_size", ACME_NONCES_MIN, ACME_NONCES_MAX, &nonces) ||
	    yconf_opt_long(y, n, "eab_max_days", 1, 3660, &days) ||
	    yconf_opt_str(y, n, "validator", cfg->acme_validator, sizeof(cfg->acme_validator)) ||
	    yconf_opt_long(y, n, "validation_timeout_ms", 1000, 120000,
	                   &cfg->acme_validation_timeout_ms) ||
	    yconf_opt_long(y, n, "authz_reuse_seconds", 0, 90 * 86400, &cfg->acme_authz_reuse) ||
	    yconf_opt_long(y, n, "order_lifetime_seconds", 60, 30 * 86400,
	                   &cfg->acme_order_lifetime) ||
	    yconf_opt_long(y, n, "orders_per_hour", 1, 1000000, &cfg->acme_orders_per_hour) ||
	    yconf_opt_long(y, n, "pending_authorizations", 1, 1000000, &cfg->acme_pending_authz))
		return -1;
	if (cfg->acme_validator[0] && cfg->acme_validator[0] != '/')
		return yconf_fail(y, n, "acme.validator",
		                  "must be the absolute path of hsmca-acmevald's socket");
	cfg->acme_nonce_store = nonces;
	cfg->acme_eab_max_days = (int)days;
	len = strlen(cfg->acme_url);
	if (!https_url(cfg->acme_url) || cfg->acme_url[len - 1] == '/' || len < 6 ||
	    strcmp(cfg->acme_url + len - 5, "/acme") || len >= ACME_URL_MAX - 64)
		return yconf_fail(y, n, "acme.url",
		                  "must be the https:// URL of /acme as clients reach it, without "
		                  "a trailing slash (e.g. https://ca.example.com:8443/acme)");
	if ((cfg->acme_terms_url[0] && !https_url(cfg->acme_terms_url)) ||
	    (cfg->acme_website[0] && !https_url(cfg->acme_website)))
		return yconf_fail(y, n, "acme",
		                  "terms_of_service and website must be https:// URLs");
	if (!(seq = yconf_get(y, n, "profiles")))
		return yconf_fail(y, n, "acme",
		                  "\"profiles\" (the profiles ACME accounts may use; the first is "
		                  "the default) is required");
	if (!yconf_is_seq(seq) || yconf_seq_len(seq) == 0)
		return yconf_fail(y, seq, "acme.profiles", "must be a list of profile names");
	if (yconf_seq_len(seq) > CAD_MAX_PROFILES)
		return yconf_fail(y, seq, "acme.profiles", "more than %d entries",
		                  CAD_MAX_PROFILES);
	for (size_t i = 0; i < yconf_seq_len(seq); i++) {
		yaml_node_t *item = yconf_seq_item(y, seq, i);
		struct ca_profile *p;
		if (yconf_str(y, item, "acme.profiles", name, sizeof(name)))
			return -1;
		if (!(p = find(cfg, name)))
			return yconf_fail(y, item, "acme.profiles", "no profile named \"%s\"",
			                  name);
		for (size_t j = 0; j < cfg->n_acme_profiles; j++)
			if (cfg->acme_profiles[j] == p)
				return yconf_fail(y, item, "acme.profiles", "\"%s\" is named twice",
				                  name);
		cfg->acme_profiles[cfg->n_acme_profiles++] = p;
	}
	if ((seq = yconf_get(y, n, "alternate_chains")) && alt_chains_parse(y, seq, cfg))
		return -1;
	return 0;
}

static int acme_profile_named(const struct cad_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_acme_profiles; i++)
		if (!strcmp(cfg->acme_profiles[i]->name, name))
			return 1;
	return 0;
}

/* --- the store: accounts in the database --- */

struct store_ctx {
	struct cad_req *r;
	struct db *db;
};

/* The audit actor of an account: the principal its binding names, else acme-account/ID. */
static void audit_for(const struct acme_account *a, const char *action, struct db_audit_entry *e,
                      char *actor, size_t n)
{
	if (a->principal[0])
		snprintf(actor, n, "%s", a->principal);
	else
		snprintf(actor, n, "acme-account");
	e->actor = actor;
	e->role = "acme-account";
	e->action = action;
	e->object = "";
	e->outcome = "success";
	e->detail = "";
}

static int from_db(struct db_acme_account *d, struct acme_account *out)
{
	memset(out, 0, sizeof(*out));
	out->id = d->id;
	out->status = !strcmp(d->status, "valid")         ? ACME_ACCOUNT_VALID
	              : !strcmp(d->status, "deactivated") ? ACME_ACCOUNT_DEACTIVATED
	                                                  : ACME_ACCOUNT_REVOKED;
	out->jwk = d->jwk;
	out->contact = d->contact;
	out->profiles = d->profiles;
	out->allow = d->allow;
	d->jwk = d->contact = d->profiles = d->allow = NULL;
	snprintf(out->thumbprint, sizeof(out->thumbprint), "%s", d->thumbprint);
	snprintf(out->eab_kid, sizeof(out->eab_kid), "%s", d->eab_kid);
	snprintf(out->principal, sizeof(out->principal), "%s", d->principal ? d->principal : "");
	db_acme_account_clear(d);
	return 1;
}

static int found_or_not(enum db_status rc, const struct db_err *err)
{
	if (rc == DB_ERR_NOT_FOUND)
		return 0;
	log_error("acme: %s", err->msg);
	return -1;
}

static int st_by_thumbprint(void *ctx, const char *thumbprint, struct acme_account *out)
{
	struct store_ctx *c = ctx;
	struct db_acme_account d;
	struct db_err err = {0};
	enum db_status rc = db_acme_account_by_thumbprint(c->db, thumbprint, &d, &err);

	return rc == DB_OK ? from_db(&d, out) : found_or_not(rc, &err);
}

static int st_by_id(void *ctx, int64_t id, struct acme_account *out)
{
	struct store_ctx *c = ctx;
	struct db_acme_account d;
	struct db_err err = {0};
	enum db_status rc = db_acme_account_by_id(c->db, id, &d, &err);

	return rc == DB_OK ? from_db(&d, out) : found_or_not(rc, &err);
}

static int st_eab(void *ctx, const char *kid, struct acme_eab *out)
{
	struct store_ctx *c = ctx;
	struct db_acme_eab e;
	struct db_err err = {0};
	enum db_status rc = db_acme_eab_find(c->db, kid, &e, &err);

	if (rc != DB_OK)
		return found_or_not(rc, &err);
	memset(out, 0, sizeof(*out));
	snprintf(out->kid, sizeof(out->kid), "%s", e.kid);
	memcpy(out->hmac_key, e.hmac_key, e.hmac_key_len);
	out->hmac_key_len = e.hmac_key_len;
	snprintf(out->principal, sizeof(out->principal), "%s", e.principal);
	out->account_id = e.account_id;
	db_acme_eab_clear(&e);
	return 1;
}

static int st_create(void *ctx, struct acme_account *a)
{
	struct store_ctx *c = ctx;
	struct db_acme_account d = {0};
	struct db_audit_entry e;
	struct db_err err = {0};
	char actor[160];
	enum db_status rc;

	d.jwk = a->jwk;
	d.contact = a->contact;
	d.tos_agreed = a->tos_agreed;
	snprintf(d.thumbprint, sizeof(d.thumbprint), "%s", a->thumbprint);
	audit_for(a, "acme.account.create", &e, actor, sizeof(actor));
	rc = db_acme_account_create(c->db, &d, a->eab_kid, &e, &err);
	if (rc == DB_OK) {
		a->id = d.id;
		return 1;
	}
	if (rc == DB_ERR_STATE || rc == DB_ERR_CONFLICT)
		return 0;
	log_error("acme: %s", err.msg);
	return -1;
}

static int st_update(void *ctx, const struct acme_account *a)
{
	struct store_ctx *c = ctx;
	struct db_acme_account d = {0};
	struct db_audit_entry e;
	struct db_err err = {0};
	char actor[160];

	d.id = a->id;
	d.contact = a->contact;
	snprintf(d.status, sizeof(d.status), "%s", acme_account_status_name(a->status));
	audit_for(
	    a, a->status == ACME_ACCOUNT_VALID ? "acme.account.update" : "acme.account.deactivate",
	    &e, actor, sizeof(actor));
	if (db_acme_account_update(c->db, &d, &e, &err) == DB_OK)
		return 1;
	log_error("acme: %s", err.msg);
	return err.status == DB_ERR_STATE ? 0 : -1;
}

static int st_rekey(void *ctx, const struct acme_account *a, const char *jwk,
                    const char *thumbprint)
{
	struct store_ctx *c = ctx;
	struct db_audit_entry e;
	struct db_err err = {0};
	char actor[160];
	enum db_status rc;

	audit_for(a, "acme.account.key-change", &e, actor, sizeof(actor));
	rc = db_acme_account_rekey(c->db, a->id, a->thumbprint, jwk, thumbprint, &e, &err);
	if (rc == DB_OK)
		return 1;
	if (rc == DB_ERR_CONFLICT)
		return 0;
	log_error("acme: %s", err.msg);
	return -1;
}

/* The requester name of certificates an ACME account orders: revokeCert by an account's key
 * may revoke exactly those. */
static void account_requester(int64_t id, char *out, size_t n)
{
	snprintf(out, n, "acme/acct/%lld", (long long)id); /* no principal has a "/" */
}

static int st_revoke_cert(void *ctx, const struct acme_account *by, const uint8_t *der, size_t len,
                          int reason, struct acme_problem *p)
{
	struct store_ctx *c = ctx;
	struct cad_req *r = c->r;
	const uint8_t *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)len);
	const ASN1_INTEGER *sn = x ? X509_get0_serialNumber(x) : NULL;
	BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
	uint8_t bin[DB_SERIAL_MAX];
	char serial[2 * DB_SERIAL_MAX + 1] = "", actor[160], mine[48];
	struct ca_requester who = {.kind = CA_REQUESTER_ACCOUNT, .role = "acme-account"};
	struct ca_status_request req = {.action = "acme.certificate.revoke", .reason = reason};
	struct ca_status_result res = {0};
	struct db_cert cert = {0};
	struct ca_why why = {0};
	enum ca_outcome o;
	int n, rc = -1;

	if (by) {
		snprintf(actor, sizeof(actor), "%s",
		         by->principal[0] ? by->principal : "acme-account");
	} else {
		snprintf(actor, sizeof(actor), "acme-certificate-key");
	}
	who.name = actor;
	n = bn ? BN_bn2binpad(bn, bin, BN_num_bytes(bn) ? BN_num_bytes(bn) : 1) : -1;
	if (n <= 0 || (size_t)n > sizeof(bin)) {
		acme_problem_set(p, 404, "malformed", "the certificate is not one this CA issued");
		goto out;
	}
	db_serial_to_hex(bin, (size_t)n, serial);
	o = ca_cert_find(&r->cad->ca, &r->w->db, &who, serial, &cert, &why);
	if (o == CA_NOT_FOUND || (o == CA_OK && (cert.der_len != len || !cert.der ||
	                                         CRYPTO_memcmp(cert.der, der, len)))) {
		acme_problem_set(p, 404, "malformed", "the certificate is not one this CA issued");
		goto out;
	}
	if (o != CA_OK) {
		acme_problem_set(p, 500, "serverInternal",
		                 "the certificate could not be looked up");
		goto out;
	}
	if (by) {
		account_requester(by->id, mine, sizeof(mine));
		if (!cert.requester || strcmp(cert.requester, mine)) {
			acme_problem_set(
			    p, 403, "unauthorized",
			    "this account did not order the certificate; sign with the "
			    "certificate's key instead");
			goto out;
		}
	}
	if (cert.status == DB_CERT_REVOKED) {
		acme_problem_set(p, 400, "alreadyRevoked", "the certificate is revoked already");
		goto out;
	}
	req.who = who;
	req.serial = serial;
	o = ca_revoke(&r->cad->ca, &r->w->db, &req, &res);
	if (o == CA_WRONG_STATE)
		acme_problem_set(p, 400, "alreadyRevoked", "%s", res.why.reason);
	else if (o != CA_OK)
		acme_problem_set(p, 500, "serverInternal", "the revocation was not recorded");
	else
		rc = 0;
out:
	db_cert_clear(&res.cert);
	db_cert_clear(&cert);
	BN_free(bn);
	X509_free(x);
	return rc;
}

static int st_cert_validity(void *ctx, const uint8_t *aki, size_t aki_len, const uint8_t *serial,
                            size_t serial_len, int64_t *not_before, int64_t *not_after,
                            int64_t *revoked_at)
{
	struct store_ctx *c = ctx;
	struct ca_requester who = {.kind = CA_REQUESTER_ACCOUNT, .name = "acme", .role = ""};
	struct db_cert cert = {0};
	struct ca_why why = {0};
	char hex[2 * DB_SERIAL_MAX + 1];
	const ASN1_OCTET_STRING *kid;
	const uint8_t *q;
	X509 *x = NULL;
	enum ca_outcome o;
	int rc = 0;

	while (serial_len > 1 && serial[0] == 0) {
		serial++;
		serial_len--;
	}
	if (serial_len > DB_SERIAL_MAX || (serial[0] & 0x80))
		return 0;
	db_serial_to_hex(serial, serial_len, hex);
	o = ca_cert_find(&c->r->cad->ca, &c->r->w->db, &who, hex, &cert, &why);
	if (o == CA_NOT_FOUND || o == CA_REFUSED)
		goto out;
	if (o != CA_OK) {
		rc = -1;
		goto out;
	}
	/* The serial names a certificate of this issuer: its authority key identifier says so. */
	q = cert.der;
	x = cert.der ? d2i_X509(NULL, &q, (long)cert.der_len) : NULL;
	kid = x ? X509_get0_authority_key_id(x) : NULL;
	if (!kid || (size_t)ASN1_STRING_length(kid) != aki_len ||
	    memcmp(ASN1_STRING_get0_data(kid), aki, aki_len))
		goto out;
	*not_before = cert.not_before;
	*not_after = cert.not_after;
	*revoked_at = cert.status == DB_CERT_REVOKED ? (cert.revoked_at ? cert.revoked_at : 1) : 0;
	/* An officer's renewal incident on its authority after it was issued: renew at once. */
	if (!*revoked_at) {
		struct db_err err = {0};
		int64_t since;
		if (db_acme_incident_latest(c->r->w->db, cert.authority_id, &since, &err) !=
		    DB_OK) {
			log_error("acme: %s", err.msg);
			rc = -1;
			goto out;
		}
		if (since && cert.issued_at && cert.issued_at <= since)
			*revoked_at = since;
	}
	rc = 1;
out:
	X509_free(x);
	db_cert_clear(&cert);
	return rc;
}

/* --- orders: the account's policy, rate limits, validation off the event loop, issuance --- */

/* "*.example.com" matches one label in front of example.com, and a wildcard value only the
 * pattern spelled out (as the CA core judges a CSR's SANs); other patterns are shell globs. */
static int pattern_match(int dns, const char *pat, const char *v)
{
	if (dns) {
		if (strchr(v, '*'))
			return !strcasecmp(pat, v);
		if (!strncmp(pat, "*.", 2)) {
			size_t pl = strlen(pat + 1), vl = strlen(v);
			const char *dot = strchr(v, '.');
			return vl > pl && !strcasecmp(v + vl - pl, pat + 1) && dot == v + vl - pl;
		}
		return !strcasecmp(pat, v);
	}
	return fnmatch(pat, v, FNM_CASEFOLD) == 0;
}

/* The account's profile: the first of its credential's profiles that ACME serves (the
 * configuration's first for an account without a credential). */
static struct ca_profile *account_profile(const struct cad_config *cfg, const char *profiles)
{
	char name[CAD_NAME_MAX + 1];

	if (!profiles[0])
		return cfg->n_acme_profiles ? cfg->acme_profiles[0] : NULL;
	while (*profiles) {
		size_t len = strcspn(profiles, ",");
		snprintf(name, sizeof(name), "%.*s", (int)len, profiles);
		for (size_t i = 0; i < cfg->n_acme_profiles; i++)
			if (!strcmp(cfg->acme_profiles[i]->name, name))
				return cfg->acme_profiles[i];
		profiles += len + (profiles[len] == ',');
	}
	return NULL;
}

/* Whether the account (its credential's patterns, newline-separated, "" any) and its profile
 * allow id; else p says which refuses it. */
static int ident_allowed(const struct ca_profile *prof, const char *allow,
                         const struct acme_ident *id, struct acme_problem *p)
{
	int dns = !strcmp(id->type, "dns");
	enum ca_san_kind kind = dns ? CA_SAN_DNS : CA_SAN_IP;
	char text[260], pat[DB_IDENTITY_MAX + 1];
	size_t k;
	int ok = 0;

	snprintf(text, sizeof(text), "%s%s", id->wildcard ? "*." : "", id->value);
	for (k = 0; k < prof->n_san_patterns[kind]; k++)
		if (pattern_match(dns, prof->san_patterns[kind][k], text))
			break;
	if (k == prof->n_san_patterns[kind])
		return acme_problem_set(p, 400, "rejectedIdentifier",
		                        id->wildcard
		                            ? "%s: profile %s allows no such wildcard name"
		                            : "%s: profile %s does not allow this identifier",
		                        text, prof->name);
	if (!*allow)
		return 0;
	while (*allow && !ok) {
		size_t len = strcspn(allow, "\n");
		snprintf(pat, sizeof(pat), "%.*s", (int)len, allow);
		ok = pattern_match(dns, pat, text);
		allow += len + (allow[len] == '\n');
	}
	if (!ok)
		return acme_problem_set(p, 400, "rejectedIdentifier",
		                        "%s is outside the identifiers this account's External "
		                        "Account Binding credential allows",
		                        text);
	return 0;
}

/* The account as a read brought it along with its resource (acme_server.c judges it). */
static void seen_of(struct acme_account_seen *seen, const char *status, const char *thumbprint)
{
	snprintf(seen->status, sizeof(seen->status), "%s", status);
	snprintf(seen->thumbprint, sizeof(seen->thumbprint), "%s", thumbprint);
}

static void order_from_db(struct db_acme_order *d, struct acme_order *o)
{
	memset(o, 0, sizeof(*o));
	o->id = d->id;
	o->account_id = d->account_id;
	snprintf(o->status, sizeof(o->status), "%s", d->status);
	o->expires_at = d->expires_at;
	o->identifiers = d->identifiers;
	d->identifiers = NULL;
	snprintf(o->profile, sizeof(o->profile), "%s", d->profile);
	snprintf(o->cert_serial, sizeof(o->cert_serial), "%s", d->cert_serial);
	snprintf(o->error_type, sizeof(o->error_type), "%s", d->error_type);
	snprintf(o->error_detail, sizeof(o->error_detail), "%s", d->error_detail);
	o->not_before = d->not_before;
	o->not_after = d->not_after;
	memcpy(o->authz, d->authz, sizeof(o->authz[0]) * d->n_authz);
	o->n_authz = d->n_authz;
	seen_of(&o->account, d->account_status, d->account_thumbprint);
	db_acme_order_clear(d);
}

/* A newOrder's notBefore/notAfter (0: absent) against profile prof: notBefore not in the past
 * (a few minutes of clock skew aside) and at most the order's lifetime ahead, notAfter after
 * now, and the span at most the profile's longest validity. 0, or -1 with p naming the field. */
#define ACME_CLOCK_SKEW 300
static int validity_allowed(const struct cad_config *cfg, const struct ca_profile *prof, int64_t nb,
                            int64_t na, int64_t now, struct acme_problem *p)
{
	int64_t max = (int64_t)prof->max_validity_days * 86400;

	if (nb && nb < now - ACME_CLOCK_SKEW)
		return acme_problem_set(p, 400, "malformed",
		                        "notBefore is in the past: a certificate is not backdated");
	if (nb && nb > now + cfg->acme_order_lifetime)
		return acme_problem_set(p, 400, "malformed",
		                        "notBefore is more than %ld seconds (the order's lifetime) "
		                        "ahead",
		                        cfg->acme_order_lifetime);
	if (na && na <= now)
		return acme_problem_set(p, 400, "malformed", "notAfter is not in the future");
	if (na && na - (nb ? nb : now) > max)
		return acme_problem_set(p, 400, "malformed",
		                        "notAfter is more than the %d days profile %s allows after "
		                        "%s",
		                        prof->max_validity_days, prof->name,
		                        nb ? "notBefore" : "now");
	return 0;
}

static enum db_status change_do(struct db *db, struct db_acme_change *c, struct db_err *err);

static int st_order_new(void *ctx, const struct acme_account *a, const struct acme_ident *ids,
                        size_t n, const char *identifiers, int64_t not_before, int64_t not_after,
                        struct acme_order *out, struct acme_problem *p)
{
	struct store_ctx *c = ctx;
	const struct cad_config *cfg = c->r->cad->cfg;
	struct db_acme_ident *dids = NULL;
	struct db_acme_order d;
	struct db_audit_entry e;
	struct db_err err = {0};
	struct ca_profile *prof;
	struct db_acme_order_opts opts = {0};
	char(*tokens)[44] = NULL, actor[160];
	int64_t now = (int64_t)time(NULL);
	uint8_t raw[32];
	int rc = -1;

	/* The account as this request read it (acme_server.c's post_open): its credential's
	 * profiles and patterns. The profile's current stored version (cad_profiles.c): its
	 * patterns judge the names. */
	if ((prof = account_profile(cfg, a->profiles ? a->profiles : "")))
		prof = cad_profile_current(c->r->cad, c->db, prof->name);
	if (!prof) {
		acme_problem_set(p, 403, "unauthorized",
		                 "none of this account's profiles is served over ACME");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (ident_allowed(prof, a->allow ? a->allow : "", &ids[i], p) < 0)
			goto out;
	if (validity_allowed(cfg, prof, not_before, not_after, now, p) < 0)
		goto out;
	if (!(dids = calloc(n, sizeof(*dids))) || !(tokens = calloc(n * 3, sizeof(*tokens)))) {
		acme_problem_set(p, 500, "serverInternal", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(dids[i].type, sizeof(dids[i].type), "%s", ids[i].type);
		snprintf(dids[i].value, sizeof(dids[i].value), "%s", ids[i].value);
		dids[i].wildcard = ids[i].wildcard;
	}
	for (size_t i = 0; i < n * 3; i++)
		if (RAND_bytes(raw, sizeof(raw)) != 1 ||
		    acme_b64url_encode(raw, sizeof(raw), tokens[i], sizeof(tokens[i])) !=
		        ACME_TOKEN_LEN) {
			acme_problem_set(p, 500, "serverInternal", "no randomness for a token");
			goto out;
		}
	audit_for(a, "acme.order.create", &e, actor, sizeof(actor));
	e.detail = identifiers;
	/* The rate limits are judged in the order's own transaction, under a lock on the
	 * account's row: parallel newOrders of one account cannot together pass them. */
	opts.not_before = not_before;
	opts.not_after = not_after;
	opts.orders_max = cfg->acme_orders_per_hour;
	opts.window_seconds = 3600;
	opts.pending_max = cfg->acme_pending_authz;
	/* The account as the request was verified (its server's key cache, acme_server.c):
	 * judged under the account's lock in the order's first statement. */
	opts.account_thumbprint = a->thumbprint;
	/* Through the group commit of ACME changes (change_do): one COMMIT, and one hold of the
	 * audit chain's lock, with the orders and challenges of other requests. */
	struct db_acme_order_new on = {.account_id = a->id,
	                               .idents = dids,
	                               .n = n,
	                               .identifiers = identifiers,
	                               .profile = prof->name,
	                               .order_ttl = cfg->acme_order_lifetime,
	                               .authz_ttl = cfg->acme_order_lifetime,
	                               .tokens = (const char(*)[44])tokens,
	                               .opts = &opts,
	                               .out = &d};
	if (change_do(
	        c->db,
	        &(struct db_acme_change){.kind = DB_ACME_ORDER_CREATE, .order = &on, .audit = &e},
	        &err) != DB_OK) {
		if (opts.limited == 3) {
			rc = 1; /* not valid with this key: the server reads the account */
			goto out;
		}
		if (opts.limited == 1) {
			acme_problem_set(
			    p, 429, "rateLimited",
			    "this account made %lld orders in the last hour (at most %ld)",
			    (long long)opts.count, cfg->acme_orders_per_hour);
			p->retry_after =
			    (int)(opts.oldest + 3600 - now > 0 ? opts.oldest + 3600 - now : 1);
		} else if (opts.limited == 2) {
			acme_problem_set(
			    p, 429, "rateLimited",
			    "this account has %lld pending authorizations (at most %ld): "
			    "complete or let them expire first",
			    (long long)opts.count, cfg->acme_pending_authz);
			p->retry_after = 60;
		} else {
			log_error("acme: %s", err.msg);
			acme_problem_set(p, 500, "serverInternal", "the order was not recorded");
		}
		goto out;
	}
	order_from_db(&d, out);
	rc = 0;
out:
	free(tokens);
	free(dids);
	return rc;
}

static int st_order_get(void *ctx, int64_t id, struct acme_order *out)
{
	struct store_ctx *c = ctx;
	struct db_acme_order d;
	struct db_err err = {0};
	enum db_status rc = db_acme_order_get(c->db, id, &d, &err);

	if (rc != DB_OK)
		return found_or_not(rc, &err);
	order_from_db(&d, out);
	return 1;
}

static void authz_from_db(const struct db_acme_authz *d, struct acme_authz *out)
{
	memset(out, 0, sizeof(*out));
	out->id = d->id;
	out->account_id = d->account_id;
	snprintf(out->ident.type, sizeof(out->ident.type), "%s", d->ident.type);
	snprintf(out->ident.value, sizeof(out->ident.value), "%s", d->ident.value);
	out->ident.wildcard = d->ident.wildcard;
	snprintf(out->status, sizeof(out->status), "%s", d->status);
	out->expires_at = d->expires_at;
	seen_of(&out->account, d->account_status, d->account_thumbprint);
	for (size_t i = 0; i < d->n_ch && i < ACME_CHALLS; i++) {
		struct acme_chall *ch = &out->ch[out->n_ch++];
		ch->id = d->ch[i].id;
		snprintf(ch->type, sizeof(ch->type), "%s", d->ch[i].type);
		snprintf(ch->token, sizeof(ch->token), "%s", d->ch[i].token);
		snprintf(ch->status, sizeof(ch->status), "%s", d->ch[i].status);
		ch->validated_at = d->ch[i].validated_at;
		snprintf(ch->error_type, sizeof(ch->error_type), "%s", d->ch[i].error_type);
		snprintf(ch->error_detail, sizeof(ch->error_detail), "%s", d->ch[i].error_detail);
	}
}

static int st_authz_get(void *ctx, int64_t id, struct acme_authz *out)
{
	struct store_ctx *c = ctx;
	struct db_acme_authz d;
	struct db_err err = {0};
	enum db_status rc = db_acme_authz_get(c->db, id, &d, &err);

	if (rc != DB_OK)
		return found_or_not(rc, &err);
	authz_from_db(&d, out);
	return 1;
}

static int st_chall_authz_get(void *ctx, int64_t chall_id, struct acme_authz *out)
{
	struct store_ctx *c = ctx;
	struct db_acme_authz d;
	struct db_err err = {0};
	enum db_status rc = db_acme_authz_of_challenge(c->db, chall_id, &d, &err);

	if (rc != DB_OK)
		return found_or_not(rc, &err);
	authz_from_db(&d, out);
	return 1;
}

static int st_authz_deactivate(void *ctx, const struct acme_account *a, const struct acme_authz *az,
                               struct acme_problem *p)
{
	struct store_ctx *c = ctx;
	struct db_audit_entry e;
	struct db_err err = {0};
	char actor[160];

	audit_for(a, "acme.authz.deactivate", &e, actor, sizeof(actor));
	if (db_acme_authz_deactivate(c->db, az->id, a->id, &e, &err) == DB_OK)
		return 0;
	if (err.status == DB_ERR_STATE)
		return acme_problem_set(p, 400, "malformed",
		                        "the authorization is neither pending nor valid");
	log_error("acme: %s", err.msg);
	return acme_problem_set(p, 500, "serverInternal", "the authorization was not changed");
}

/* --- group commit of ACME state changes ---
 * Every state change of an order's life is committed with its audit entry, and the audit
 * chain's lock is held through each COMMIT's flush to disk: one at a time for the whole CA.
 * Changes that requests and validations make at the same moment (an order made, a challenge
 * started or settled) are therefore queued and done by a leader in one transaction
 * (db_acme_changes, through the CA core's group commit, ca_group.c): one flush and one hold
 * of the chain's lock for the group. Each request still gets its answer only after its own
 * change is committed. Finalize's moves of its order are not queued: each is one statement
 * with its audit entry, the move to valid in the round trip that stores the certificate
 * (db_cert_store_with), without a wait for the group before them. */
static struct ca_group acme_changes;
/* Two groups at a time: one group's statements overlap the other's COMMIT (the chain's lock
 * still lets one COMMIT through at a time). db_acme_changes orders each group's changes so
 * that two groups lock the rows they share in the same order. */
#define ACME_CHANGES_LEADERS 2

struct change_job {
	struct ca_group_job g; /* first: ca_group hands back this pointer */
	struct db_acme_change c;
};

static void changes_run(struct db *db, struct ca_group_job **jobs, size_t n, void *arg)
{
	struct db_acme_change *c[CA_GROUP_MAX];

	(void)arg;
	for (size_t i = 0; i < n; i++)
		c[i] = &((struct change_job *)jobs[i])->c;
	db_acme_changes(db, c, n);
}

/* Do change c (on db if this thread leads the group) and give its outcome. */
static enum db_status change_do(struct db *db, struct db_acme_change *c, struct db_err *err)
{
	struct change_job job = {.c = *c};

	ca_group_do(&acme_changes, db, &job.g, changes_run, NULL);
	*err = job.c.err;
	return job.c.rc;
}

/* Validations in flight (threads of their own, each with its own database connection). */
#define VALIDATIONS_MAX 64
static _Atomic int validations;

struct validation {
	const struct cad_config *cfg;
	int64_t chall_id;
	int64_t authz_id, account_id; /* of a validation a request started (flight_add) */
	struct acmeval_request req;
	char ident_type[4], ident[254], token[ACME_TOKEN_LEN + 1], keyauth[128];
	char actor[ACME_NAME_MAX + 1];
};

/* Validations in flight that requests of this hsmca-cad started: a read of their
 * authorization by their account is held at once (cad_acme_serve), without a read first; the
 * read after the wait judges everything. A validation that does not fit is only not found
 * here (its authorization's reads then read first, as always). */
static pthread_mutex_t flight_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int64_t chall_id, authz_id, account_id;
} flight[VALIDATIONS_MAX];
static size_t n_flight;

static void flight_add(const struct validation *v)
{
	pthread_mutex_lock(&flight_mu);
	if (v->authz_id && n_flight < VALIDATIONS_MAX) {
		flight[n_flight].chall_id = v->chall_id;
		flight[n_flight].authz_id = v->authz_id;
		flight[n_flight++].account_id = v->account_id;
	}
	pthread_mutex_unlock(&flight_mu);
}

static void flight_remove(int64_t chall_id)
{
	pthread_mutex_lock(&flight_mu);
	for (size_t i = 0; i < n_flight; i++)
		if (flight[i].chall_id == chall_id) {
			flight[i] = flight[--n_flight];
			break;
		}
	pthread_mutex_unlock(&flight_mu);
}

/* The challenge of authorization authz_id of account account_id being validated here: 1
 * with *chall_id, or 0. */
static int st_authz_validating(void *ctx, int64_t authz_id, int64_t account_id, int64_t *chall_id)
{
	int found = 0;

	(void)ctx;
	pthread_mutex_lock(&flight_mu);
	for (size_t i = 0; i < n_flight && !found; i++)
		if (flight[i].authz_id == authz_id && flight[i].account_id == account_id) {
			*chall_id = flight[i].chall_id;
			found = 1;
		}
	pthread_mutex_unlock(&flight_mu);
	return found;
}

/* Database connections for validations' results, kept between validations: a validation
 * finishes on a thread of its own, and connecting anew for each result cost a backend's start
 * per challenge. A connection goes back only when its last use succeeded and libpq still
 * calls it good; at most RESULT_CONNS are kept (as many as validations finish at once under
 * load: with four, 16 clients' validations still started a backend eight times a second),
 * the rest are closed, and one left unused for RESULT_IDLE seconds is closed by the recovery
 * thread's next round. The last one given back is the first taken again. */
#define RESULT_CONNS 16
#define RESULT_IDLE 60
static pthread_mutex_t result_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct db *db;
	time_t since; /* given back then */
} result_conns[RESULT_CONNS];
static size_t n_result_conns;

static struct db *result_db(const struct cad_config *cfg, struct db_err *err)
{
	struct db *db = NULL;

	pthread_mutex_lock(&result_mu);
	if (n_result_conns)
		db = result_conns[--n_result_conns].db;
	pthread_mutex_unlock(&result_mu);
	if (db && PQstatus(db_pgconn(db)) != CONNECTION_OK) {
		db_close(db);
		db = NULL;
	}
	if (!db && db_connect(cfg->database, &db, err) != DB_OK)
		return NULL;
	return db;
}

static void result_db_put(struct db *db, int good)
{
	pthread_mutex_lock(&result_mu);
	if (good && n_result_conns < RESULT_CONNS) {
		result_conns[n_result_conns].db = db;
		result_conns[n_result_conns++].since = time(NULL);
		db = NULL;
	}
	pthread_mutex_unlock(&result_mu);
	if (db)
		db_close(db);
}

/* Close the kept connections unused for idle seconds or more (idle 0: all of them). Each
 * taken is the top one and each given back goes on top, so the stack is in the order they
 * were given back and the unused ones are at the bottom. */
static void result_dbs_close_idle(time_t idle)
{
	struct db *old[RESULT_CONNS];
	size_t n = 0;
	time_t now = time(NULL);

	pthread_mutex_lock(&result_mu);
	while (n < n_result_conns && now - result_conns[n].since >= idle) {
		old[n] = result_conns[n].db;
		n++;
	}
	memmove(result_conns, result_conns + n, (n_result_conns - n) * sizeof(result_conns[0]));
	n_result_conns -= n;
	pthread_mutex_unlock(&result_mu);
	for (size_t i = 0; i < n; i++)
		db_close(old[i]);
}

static void waits_wake(int64_t chall_id);

static _Atomic int recover_stop;

/* A validation's result that could not be recorded (the database away, its connections used
 * up) is tried again after these pauses before it is left to the recovery thread (which takes
 * it up only a minute or two later): about six seconds in all, less than a client's patience. */
static const int record_retry_ms[] = {100, 200, 400, 800, 1600, 3200};

/* Record a validation's result, with its audit entry (on db, or on a kept connection when
 * db is NULL; then tried again while the database is unavailable, record_retry_ms). */
static void validation_record(const struct validation *v, struct db *db,
                              const struct acmeval_result *res)
{
	struct db_audit_entry e = {.actor = v->actor,
	                           .role = "acme-account",
	                           .action = res->valid ? "acme.challenge.valid"
	                                                : "acme.challenge.invalid",
	                           .outcome = "success",
	                           .detail = res->valid ? "" : res->detail};
	struct db_acme_change c = {.kind = DB_ACME_CHALL_DONE,
	                           .id = v->chall_id,
	                           .valid = res->valid,
	                           .error_type =
	                               res->problem_type[0] ? res->problem_type : "serverInternal",
	                           .error_detail = res->detail,
	                           .reuse = v->cfg->acme_authz_reuse,
	                           .audit = &e};
	const size_t tries = sizeof(record_retry_ms) / sizeof(record_retry_ms[0]);
	struct db_err err = {0};
	int own = !db, good = 0;

	for (size_t i = 0;; i++) {
		memset(&err, 0, sizeof(err));
		if (own && !(db = result_db(v->cfg, &err)))
			err.status = DB_ERR_UNAVAILABLE;
		else
			good = change_do(db, &c, &err) == DB_OK;
		if (own && db)
			result_db_put(db, good);
		/* A refusal (the challenge settled by another cad meanwhile) is not retried. */
		if (good || !own || i == tries || recover_stop || err.status == DB_ERR_STATE ||
		    err.status == DB_ERR_INVALID)
			break;
		log_warn("acme: challenge %lld: its result was not recorded (%s); trying again in "
		         "%d ms",
		         (long long)v->chall_id, err.msg, record_retry_ms[i]);
		db = NULL;
		nanosleep(&(struct timespec){record_retry_ms[i] / 1000,
		                             (long)(record_retry_ms[i] % 1000) * 1000000L},
		          NULL);
	}
	if (!good)
		log_error("acme: challenge %lld: %s%s", (long long)v->chall_id, err.msg,
		          own ? " (left to the recovery of challenges left processing)" : "");
	flight_remove(v->chall_id);
	waits_wake(v->chall_id);
}

static void *validation_run(void *arg)
{
	struct validation *v = arg;
	struct acmeval_result res = {0};

	if (acmeval_validate(v->cfg->acme_validator, &v->req,
	                     (int)v->cfg->acme_validation_timeout_ms, &res) != 0) {
		log_error("acme: challenge %lld: the validator did not answer: %s",
		          (long long)v->chall_id, res.detail);
		res.valid = 0;
		snprintf(res.problem_type, sizeof(res.problem_type), "serverInternal");
	}
	log_info("acme: challenge %lld (%s %s): %s%s%s", (long long)v->chall_id, v->ident_type,
	         v->ident, res.valid ? "valid" : "invalid: ", res.valid ? "" : res.problem_type,
	         "");
	validation_record(v, NULL, &res);
	free(v);
	validations--;
	return NULL;
}

static void validation_fill(struct validation *v, const struct cad_config *cfg, int64_t chall_id,
                            const char *type, const char *ident_type, const char *ident,
                            const char *token, const char *keyauth, const char *principal)
{
	v->cfg = cfg;
	v->chall_id = chall_id;
	snprintf(v->ident_type, sizeof(v->ident_type), "%s", ident_type);
	snprintf(v->ident, sizeof(v->ident), "%s", ident);
	snprintf(v->token, sizeof(v->token), "%s", token);
	snprintf(v->keyauth, sizeof(v->keyauth), "%s", keyauth);
	snprintf(v->actor, sizeof(v->actor), "%s", principal[0] ? principal : "acme-account");
	v->req.type = !strcmp(type, "http-01")  ? ACMEVAL_HTTP01
	              : !strcmp(type, "dns-01") ? ACMEVAL_DNS01
	                                        : ACMEVAL_TLSALPN01;
	v->req.identifier_type = v->ident_type;
	v->req.identifier = v->ident;
	v->req.token = v->token;
	v->req.key_authorization = v->keyauth;
}

/* A validation's slot (at most VALIDATIONS_MAX at once) and memory, or NULL with p set. */
static struct validation *validation_new(struct acme_problem *p)
{
	struct validation *v;

	if (++validations > VALIDATIONS_MAX) {
		validations--;
		acme_problem_set(p, 503, "rateLimited",
		                 "too many validations at once; answer the challenge again later");
		p->retry_after = ACME_POLL_RETRY_AFTER;
		return NULL;
	}
	if (!(v = calloc(1, sizeof(*v)))) {
		validations--;
		acme_problem_set(p, 500, "serverInternal", "out of memory");
	}
	return v;
}

/* A validation from validation_new that was not started. */
static void validation_drop(struct validation *v)
{
	free(v);
	validations--;
}

/* Validate v (its challenge's start committed, by a request of account_id, for authorization
 * authz_id) on a thread of its own; v is taken. */
static void validation_launch(struct validation *v, struct db *db, int64_t authz_id,
                              int64_t account_id)
{
	pthread_attr_t attr;
	pthread_t t;
	int started;

	v->authz_id = authz_id;
	v->account_id = account_id;
	flight_add(v);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	started = pthread_create(&t, &attr, validation_run, v) == 0;
	pthread_attr_destroy(&attr);
	if (!started) {
		/* No thread: the challenge fails now rather than stay processing for ever. */
		struct acmeval_result res = {.valid = 0,
		                             .problem_type = "serverInternal",
		                             .detail = "the validation could not be started"};
		validation_record(v, db, &res);
		validation_drop(v);
	}
}

static int st_chall_start(void *ctx, const struct acme_account *a, const struct acme_authz *az,
                          const struct acme_chall *ch, const char *key_authorization,
                          struct acme_problem *p)
{
	struct store_ctx *c = ctx;
	struct validation *v;
	struct db_audit_entry e;
	struct db_err err = {0};
	char actor[160];

	if (!(v = validation_new(p)))
		return -1;
	validation_fill(v, c->r->cad->cfg, ch->id, ch->type, az->ident.type, az->ident.value,
	                ch->token, key_authorization, a->principal);
	audit_for(a, "acme.challenge.start", &e, actor, sizeof(actor));
	if (change_do(
	        c->db,
	        &(struct db_acme_change){
	            .kind = DB_ACME_CHALL_START, .id = ch->id, .account_id = a->id, .audit = &e},
	        &err) != DB_OK) {
		validation_drop(v);
		if (err.status == DB_ERR_STATE)
			return acme_problem_set(p, 400, "malformed",
			                        "the challenge is not pending any more");
		log_error("acme: %s", err.msg);
		return acme_problem_set(p, 500, "serverInternal", "the challenge was not started");
	}
	validation_launch(v, c->db, az->id, a->id);
	return 0;
}

/* A challenge answered ({}) without reading it first: the statement that starts it judges
 * everything a read would have (the challenge and its authorization a's and pending, a valid
 * with this key) and gives back what the validation and the answer need. */
static int st_chall_answer(void *ctx, const struct acme_account *a, int64_t chall_id,
                           struct acme_chall *ch, int64_t *authz_id, struct acme_problem *p)
{
	struct store_ctx *c = ctx;
	struct db_acme_started st;
	struct validation *v;
	struct db_audit_entry e;
	struct db_err err = {0};
	char actor[160], keyauth[ACME_TOKEN_LEN + ACME_THUMBPRINT_LEN + 2];

	if (!a->thumbprint[0])
		return 1;
	if (!(v = validation_new(p)))
		return -1;
	audit_for(a, "acme.challenge.start", &e, actor, sizeof(actor));
	if (change_do(c->db,
	              &(struct db_acme_change){.kind = DB_ACME_CHALL_START,
	                                       .id = chall_id,
	                                       .account_id = a->id,
	                                       .account_thumbprint = a->thumbprint,
	                                       .started = &st,
	                                       .audit = &e},
	              &err) != DB_OK) {
		validation_drop(v);
		if (err.status == DB_ERR_STATE)
			return 1; /* the server reads, judges and answers as for a read */
		log_error("acme: %s", err.msg);
		return acme_problem_set(p, 500, "serverInternal", "the challenge was not started");
	}
	snprintf(keyauth, sizeof(keyauth), "%s.%s", st.token, a->thumbprint);
	validation_fill(v, c->r->cad->cfg, chall_id, st.type, st.ident_type, st.ident, st.token,
	                keyauth, a->principal);
	memset(ch, 0, sizeof(*ch));
	ch->id = chall_id;
	snprintf(ch->type, sizeof(ch->type), "%s", st.type);
	snprintf(ch->token, sizeof(ch->token), "%s", st.token);
	snprintf(ch->status, sizeof(ch->status), "processing");
	*authz_id = st.authz_id;
	validation_launch(v, c->db, st.authz_id, a->id);
	return 0;
}

/* --- challenges left processing: retried, never stuck --- */

/* A validation runs in a thread of cad; when cad stops it waits for them (cad_acme_free), but
 * a cad that is killed (or a machine that fails) leaves its challenges "processing" in the
 * database with nobody validating them. The recovery thread retries them: at start every
 * challenge left processing, then every RECOVER_PERIOD seconds those processing longer than
 * the validation timeout and RECOVER_GRACE (left by another hsmca-cad over the same database
 * that died). A retried validation records its result as any other; if the original one
 * still finishes first (another live cad), the second finds the challenge settled and changes
 * nothing. */
#define RECOVER_PERIOD 60
#define RECOVER_GRACE 60
#define RECOVER_BATCH 64

/* Retry the challenges processing for older_than seconds (0: all). The number retried. */
static size_t recover_once(const struct cad_config *cfg, struct db *db, int64_t older_than)
{
	struct db_acme_stuck *st = calloc(RECOVER_BATCH, sizeof(*st));
	struct db_err err = {0};
	size_t n = 0;

	if (!st)
		return 0;
	if (db_acme_challenges_processing(db, older_than, st, RECOVER_BATCH, &n, &err) != DB_OK) {
		log_warn("acme: challenges left processing could not be listed: %s", err.msg);
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct validation *v = calloc(1, sizeof(*v));
		char keyauth[128];
		pthread_attr_t attr;
		pthread_t t;
		int started = 0;
		if (!v)
			break;
		snprintf(keyauth, sizeof(keyauth), "%s.%s", st[i].token, st[i].thumbprint);
		validation_fill(v, cfg, st[i].chall_id, st[i].type, st[i].ident_type, st[i].ident,
		                st[i].token, keyauth, st[i].principal);
		log_info("acme: challenge %lld (%s %s) was left processing: validating it again",
		         (long long)st[i].chall_id, st[i].ident_type, st[i].ident);
		if (++validations <= VALIDATIONS_MAX) {
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			started = pthread_create(&t, &attr, validation_run, v) == 0;
			pthread_attr_destroy(&attr);
		}
		if (!started) {
			/* No room for a thread: validated here, one after the other. */
			validation_run(v);
		}
	}
	free(st);
	return n;
}

static void *recover_run(void *arg)
{
	const struct cad_config *cfg = arg;
	struct db_err err = {0};
	struct db *db = NULL;
	int64_t older_than = 0; /* at start: everything left processing */
	long waited = 0;

	while (!recover_stop) {
		if (waited <= 0) {
			if (!db && db_connect(cfg->database, &db, &err) != DB_OK) {
				log_warn(
				    "acme: no database to retry challenges left processing: %s",
				    err.msg);
				db = NULL;
				waited = 5000; /* try again soon */
				continue;
			}
			recover_once(cfg, db, older_than);
			result_dbs_close_idle(RESULT_IDLE);
			older_than = cfg->acme_validation_timeout_ms / 1000 + RECOVER_GRACE;
			waited = RECOVER_PERIOD * 1000L;
		}
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
		waited -= 100;
	}
	if (db)
		db_close(db);
	validations--;
	return NULL;
}

static int st_order_finalize(void *ctx, const struct acme_account *a, struct acme_order *o,
                             const uint8_t *csr, size_t csr_len, struct acme_problem *p)
{
	struct store_ctx *c = ctx;
	struct cad_req *r = c->r;
	const struct cad_config *cfg = r->cad->cfg;
	struct ca_profile *prof = NULL;
	struct ca_csr checked = {0};
	struct ca_issue_result res = {0};
	struct db_audit_entry e, e_valid;
	struct db_err err = {0};
	struct db_with *valid = NULL, *moving = NULL;
	char actor[160], requester[48], why[512];
	const char *code = NULL;
	int rc = -1;
	enum ca_outcome out;
	enum db_status moved; /* the order's move to processing, with the reservation */
	struct ca_issue_request req = {.action = "acme.certificate.issue"};

	for (size_t i = 0; i < cfg->n_acme_profiles; i++)
		if (!strcmp(cfg->acme_profiles[i]->name, o->profile))
			prof = cfg->acme_profiles[i];
	/* Issued under the profile's current stored version, which the certificate records. */
	if (prof)
		prof = cad_profile_current(r->cad, c->db, prof->name);
	if (!prof)
		return acme_problem_set(p, 403, "unauthorized",
		                        "the order's profile %s is no longer served over ACME",
		                        o->profile);
	/* The CSR judged against the profile before anything changes. */
	if (ca_csr_check_der(prof, csr, csr_len, &checked, &code, why, sizeof(why)) != 0) {
		acme_problem_set(p, 400, "badCSR", "%s", why);
		goto out;
	}
	/* The order becomes processing in the transaction and round trip that reserve its
	 * certificate's serial (nothing is reserved unless it was still ready), and valid in
	 * those that store the certificate: both changes are prepared here, before anything
	 * changes. */
	audit_for(a, "acme.order.valid", &e_valid, actor, sizeof(actor));
	audit_for(a, "acme.order.finalize", &e, actor, sizeof(actor));
	if (!(valid = db_acme_order_valid_with_store(o->id, &e_valid, &err)) ||
	    !(moving = db_acme_order_processing_with_reserve(o->id, &e, &err))) {
		log_error("acme: order %lld: %s", (long long)o->id, err.msg);
		acme_problem_set(p, 500, "serverInternal", "the order could not be changed");
		goto out;
	}
	account_requester(a->id, requester, sizeof(requester));
	req.who = (struct ca_requester){.kind = CA_REQUESTER_ACCOUNT,
	                                .name = requester,
	                                .role = "acme-account",
	                                .profiles = NULL};
	req.profile = prof;
	req.csr = &checked;
	req.validity_days = prof->max_validity_days;
	/* What newOrder asked for (judged against the profile then; the CA core judges it
	 * again now: e.g. a notAfter that has passed since is refused). */
	req.not_before = o->not_before;
	req.not_after = o->not_after;
	req.with_store = valid;
	req.with_reserve = moving;
	out = ca_issue(&r->cad->ca, &r->w->db, &req, &res);
	if (out == CA_OK) {
		if (db_with_outcome(valid, &err) != DB_OK) {
			log_error("acme: order %lld: certificate %s issued but not recorded: %s",
			          (long long)o->id, res.serial, err.msg);
			acme_problem_set(p, 500, "serverInternal",
			                 "the order could not be changed");
			goto out;
		}
		snprintf(o->status, sizeof(o->status), "valid");
		snprintf(o->cert_serial, sizeof(o->cert_serial), "%s", res.serial);
		rc = 0;
		goto out;
	}
	moved = db_with_outcome(moving, NULL);
	if (moved == DB_ERR_STATE) {
		acme_problem_set(p, 403, "orderNotReady", "the order is not ready any more");
		goto out;
	}
	if (out == CA_REFUSED)
		acme_problem_set(p, 400, "badCSR", "%s", res.why.reason);
	else
		acme_problem_set(p, 500, "serverInternal", "the certificate was not issued: %s",
		                 res.why.reason);
	/* Refused before the reservation (the order was not moved): it stays ready, and the
	 * client may finalize it again. Refused or failed once processing: the order is invalid
	 * with the reason (RFC 8555 §7.4). */
	if (moved != DB_OK)
		goto out;
	audit_for(a, "acme.order.invalid", &e, actor, sizeof(actor));
	if (db_acme_order_move(c->db, o->id, "processing", "invalid", NULL, p->type, p->detail, &e,
	                       &err) != DB_OK)
		log_error("acme: order %lld: %s", (long long)o->id, err.msg);
out:
	db_with_free(valid);
	db_with_free(moving);
	ca_issue_result_clear(&res);
	ca_csr_free(&checked);
	return rc;
}

static int append_pem(BIO *b, const uint8_t *der, size_t len)
{
	return PEM_write_bio(b, "CERTIFICATE", "", der, (long)len) > 0;
}

/* The chain of the certificate with serial that account a ordered: alt 0 the authority's own
 * (the leaf, the authority's certificate and its configured chain), alt k the k-th alternate
 * chain configured for that authority (acme.alternate_chains); *n_alt how many alternates
 * the authority has. */
static int st_cert_chain(void *ctx, const struct acme_account *a, const char *serial, int alt,
                         char **pem, int *n_alt, struct acme_account_seen *seen)
{
	struct store_ctx *c = ctx;
	struct cad_req *r = c->r;
	const struct cad_config *cfg = r->cad->cfg;
	struct db_acme_cert cert = {0};
	struct db_err err = {0};
	uint8_t bin[DB_SERIAL_MAX];
	size_t bin_len;
	char mine[48], *data, name[CA_NAME_MAX + 1] = "";
	const char *alt_pem = NULL;
	X509 *issuer = NULL;
	STACK_OF(X509) *above = NULL;
	BIO *b = NULL;
	long len;
	int rc = 0;

	/* The certificate and the account in one statement (the account judged with it, as
	 * with the reads of orders and authorizations). */
	*n_alt = 0;
	account_requester(a->id, mine, sizeof(mine));
	if (db_serial_from_hex(serial, bin, &bin_len) != 0)
		return 0;
	if (db_acme_cert_read(c->db, bin, bin_len, a->id, mine, &cert, &err) != DB_OK) {
		log_error("acme: %s", err.msg);
		return -1;
	}
	seen_of(seen, cert.account_status, cert.account_thumbprint);
	if (!cert.found)
		goto out;
	rc = -1;
	pthread_mutex_lock(&r->cad->lock);
	for (size_t i = 0; i < r->cad->ca.n_authorities; i++)
		if (r->cad->ca.authorities[i].db_id == cert.authority_id &&
		    r->cad->ca.authorities[i].cert && X509_up_ref(r->cad->ca.authorities[i].cert)) {
			issuer = r->cad->ca.authorities[i].cert;
			above = r->cad->ca.authorities[i].chain;
			snprintf(name, sizeof(name), "%s", r->cad->ca.authorities[i].name);
		}
	pthread_mutex_unlock(&r->cad->lock);
	for (size_t i = 0; i < cfg->n_acme_alt_chains; i++)
		if (!strcmp(cfg->authorities[cfg->acme_alt_chains[i].authority].name, name) &&
		    ++*n_alt == alt)
			alt_pem = cfg->acme_alt_chains[i].pem;
	if (alt > 0 && !alt_pem) {
		rc = 0; /* no such alternate */
		goto out;
	}
	if (!issuer || !(b = BIO_new(BIO_s_mem())) || !append_pem(b, cert.der, cert.der_len))
		goto out;
	if (alt_pem) {
		if (BIO_puts(b, alt_pem) <= 0)
			goto out;
	} else {
		if (!PEM_write_bio_X509(b, issuer))
			goto out;
		/* The configured chain above the authority (set at start, never changed). */
		for (int i = 0; above && i < sk_X509_num(above); i++)
			if (!PEM_write_bio_X509(b, sk_X509_value(above, i)))
				goto out;
	}
	if ((len = BIO_get_mem_data(b, &data)) <= 0 || !(*pem = strndup(data, (size_t)len)))
		goto out;
	rc = 1;
out:
	BIO_free(b);
	X509_free(issuer);
	db_acme_cert_clear(&cert);
	return rc;
}

int cad_acme_new(struct cad *cad, char *err, size_t errsz)
{
	const struct cad_config *cfg = cad->cfg;
	struct acme_config ac = {0};
	struct acme_store st = {.account_by_thumbprint = st_by_thumbprint,
	                        .account_by_id = st_by_id,
	                        .eab_lookup = st_eab,
	                        .account_create = st_create,
	                        .account_update = st_update,
	                        .account_rekey = st_rekey,
	                        .revoke_cert = st_revoke_cert,
	                        .cert_validity = st_cert_validity};

	/* Orders only with a validator to check their challenges. */
	if (cfg->acme_validator[0]) {
		st.order_new = st_order_new;
		st.order_get = st_order_get;
		st.authz_get = st_authz_get;
		st.chall_authz_get = st_chall_authz_get;
		st.authz_deactivate = st_authz_deactivate;
		st.chall_start = st_chall_start;
		st.chall_answer = st_chall_answer;
		st.authz_validating = st_authz_validating;
		st.order_finalize = st_order_finalize;
		st.cert_chain = st_cert_chain;
	}
	if (!cfg->acme_url[0])
		return 0;
	snprintf(ac.base_url, sizeof(ac.base_url), "%s", cfg->acme_url);
	snprintf(ac.terms_url, sizeof(ac.terms_url), "%s", cfg->acme_terms_url);
	snprintf(ac.website, sizeof(ac.website), "%s", cfg->acme_website);
	ac.eab_required = cfg->acme_eab_required;
	ac.nonce_capacity = (size_t)cfg->acme_nonce_store;
	ca_group_init(&acme_changes, ACME_CHANGES_LEADERS);
	cad->acme = calloc(1, sizeof(*cad->acme));
	if (!cad->acme || acme_server_init(cad->acme, &ac, &st) != 0) {
		free(cad->acme);
		cad->acme = NULL;
		snprintf(err, errsz, "setting up ACME failed (no memory or randomness)");
		return -1;
	}
	if (cfg->acme_validator[0]) {
		pthread_attr_t attr;
		pthread_t t;
		int started;
		recover_stop = 0;
		validations++; /* cad_acme_free waits for the recovery thread as for a validation */
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&t, &attr, recover_run, (void *)cfg) == 0;
		pthread_attr_destroy(&attr);
		if (!started) {
			validations--;
			acme_server_fini(cad->acme);
			free(cad->acme);
			cad->acme = NULL;
			snprintf(err, errsz,
			         "setting up ACME failed (no thread for the recovery of "
			         "challenges left processing)");
			return -1;
		}
	}
	return 0;
}

void cad_acme_free(struct cad *cad)
{
	if (!cad->acme)
		return;
	/* Validations still running record their results first (each is bounded by the
	 * validation timeout); the recovery thread stops within 100 ms. */
	recover_stop = 1;
	for (long waited = 0;
	     validations > 0 && waited < cad->cfg->acme_validation_timeout_ms + 5000; waited += 10)
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	result_dbs_close_idle(0);
	ca_group_destroy(&acme_changes);
	acme_server_fini(cad->acme);
	free(cad->acme);
	cad->acme = NULL;
}

/* --- reads that wait for a validation (RFC 8555 §7.5.1) ---
 * A client that answered a challenge polls its authorization (or the challenge) until the
 * validation settles; hsmca-acmevald takes a few milliseconds, so a read that finds the
 * challenge processing is held (never blocking the event loop: an event on the worker's loop,
 * made active by the validation's thread once its result is committed, or a timer of
 * WAIT_MS) and then answered with the resource as it is then. A client that honours
 * Retry-After then polls once instead of many times. */
#define WAIT_MS 2000
/* Challenges settled lately, so that a read that found one processing just before it
 * settled, and registers its wait just after, does not wait for nothing. */
#define SETTLED_RECENT 1024

struct acme_wait {
	struct cad_held h;     /* first: the held request, its event and its place in waits */
	struct acme_reply rep; /* the answer as read, sent if nothing better comes */
	int64_t chall_id;
};

static struct cad_held_list waits = {.mu = PTHREAD_MUTEX_INITIALIZER};
static int64_t settled[SETTLED_RECENT];
static size_t settled_next;

/* Challenge chall_id settled (its result is committed): wake the reads waiting for it. */
static void waits_wake(int64_t chall_id)
{
	pthread_mutex_lock(&waits.mu);
	settled[settled_next++ % SETTLED_RECENT] = chall_id;
	for (struct cad_held *h = waits.head; h; h = h->next)
		if (((struct acme_wait *)h)->chall_id == chall_id)
			event_active(h->ev, EV_TIMEOUT, 0);
	pthread_mutex_unlock(&waits.mu);
}

static void acme_send(struct cad_req *r, struct acme_reply *rep)
{
	struct evhttp_request *req = r->req;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char retry[16];

	if (rep->content_type)
		evhttp_add_header(out, "Content-Type", rep->content_type);
	if (rep->replay_nonce[0])
		evhttp_add_header(out, "Replay-Nonce", rep->replay_nonce);
	if (rep->location[0])
		evhttp_add_header(out, "Location", rep->location);
	for (int i = 0; i < rep->n_links; i++)
		evhttp_add_header(out, "Link", rep->links[i]);
	if (rep->retry_after > 0) {
		snprintf(retry, sizeof(retry), "%d", rep->retry_after);
		evhttp_add_header(out, "Retry-After", retry);
	}
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (rep->body)
		evbuffer_add(evhttp_request_get_output_buffer(req), rep->body, rep->body_len);
	r->replied = 1;
	r->status = rep->status;
	evhttp_send_reply(req, rep->status, httptext_status(rep->status), NULL);
	cad_log_reply(r, rep->status);
	acme_reply_clear(rep);
}

/* On the worker's loop: the validation settled, or the wait is over. Read the resource again
 * (on the worker's own connection) and answer; if that read fails, the answer as first read. */
static void wait_done(evutil_socket_t fd, short what, void *arg)
{
	struct acme_wait *w = arg;
	struct cad_req *r = &w->h.r;
	struct store_ctx sc = {.r = r, .db = r->w->db};

	(void)fd;
	(void)what;
	cad_held_unlink(&waits, &w->h);
	if (sc.db && r->cad->acme)
		acme_reread(r->cad->acme, r->path + 5, w->rep.wait_account, &sc, &w->rep);
	else if (w->rep.wait_unread && r->cad->acme)
		acme_reply_unavailable(r->cad->acme, &w->rep);
	acme_send(r, &w->rep);
	event_free(w->h.ev);
	free(w);
}

/* Hold r's answer rep (a read of a processing challenge) until the validation settles or
 * WAIT_MS pass. 0 (rep is taken), or -1 (answer now). */
static int wait_start(struct cad_req *r, struct acme_reply *rep)
{
	struct timeval tv = {.tv_sec = WAIT_MS / 1000, .tv_usec = (WAIT_MS % 1000) * 1000};
	struct acme_wait *w = calloc(1, sizeof(*w));
	int now = 0;

	if (!w || cad_held_init(&w->h, r, wait_done, w) || event_add(w->h.ev, &tv)) {
		if (w && w->h.ev)
			event_free(w->h.ev);
		free(w);
		return -1;
	}
	w->rep = *rep;
	memset(rep, 0, sizeof(*rep));
	w->chall_id = w->rep.wait_chall;
	pthread_mutex_lock(&waits.mu);
	for (size_t i = 0; i < SETTLED_RECENT && !now; i++)
		now = settled[i] == w->chall_id;
	cad_held_push(&waits, &w->h);
	if (now) /* settled between the read and now */
		event_active(w->h.ev, EV_TIMEOUT, 0);
	pthread_mutex_unlock(&waits.mu);
	return 0;
}

/* cad stops: every held read is answered as it was read (the loops no longer run, so the
 * answers go nowhere, but libevent frees each request with its connection). */
void cad_acme_stop_waits(struct cad *cad)
{
	struct cad_held *h, *mine = cad_held_take(&waits, cad);

	while ((h = mine)) {
		struct acme_wait *w = (struct acme_wait *)h;

		mine = h->next;
		event_free(h->ev);
		if (w->rep.wait_unread && cad->acme) /* nothing was read to answer with */
			acme_reply_unavailable(cad->acme, &w->rep);
		acme_send(&h->r, &w->rep);
		free(w);
	}
}

/* --- serving --- */

void cad_acme_serve(struct cad_req *r)
{
	struct evhttp_request *req = r->req;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct acme_request areq = {0};
	struct acme_reply rep = {0};
	struct store_ctx sc = {.r = r};

	r->action = "acme";
	if (!r->cad->acme) {
		cad_reply_error(r, 404, "not-found", "ACME is not enabled on this server");
		return;
	}
	areq.method = m == EVHTTP_REQ_GET    ? "GET"
	              : m == EVHTTP_REQ_HEAD ? "HEAD"
	              : m == EVHTTP_REQ_POST ? "POST"
	                                     : "OTHER";
	areq.path = r->path + 5; /* after "/acme" */
	areq.content_type = evhttp_find_header(in, "Content-Type");
	areq.body_len = evbuffer_get_length(body);
	areq.body = areq.body_len ? evbuffer_pullup(body, -1) : (const uint8_t *)"";
	areq.store_ctx = &sc;
	if (m == EVHTTP_REQ_POST || !strncmp(areq.path, "/renewal-info/", 14)) {
		/* Accounts and certificates are in the database: no connection, no answer but
		 * 503. */
		if (!(sc.db = cad_db(r)))
			return;
	}
	acme_handle(r->cad->acme, &areq, &rep);
	if (rep.wait_chall && (rep.status == 200 || rep.wait_unread) && wait_start(r, &rep) == 0) {
		/* Answered later: 200 with the resource as it is then or as read now (or, for a
		 * read not made yet, whatever that read says); the request's metrics count the
		 * time until here. */
		r->replied = 1;
		r->status = 200;
		return;
	}
	if (rep.wait_unread) /* it cannot wait: the read now */
		acme_reread(r->cad->acme, areq.path, rep.wait_account, &sc, &rep);
	acme_send(r, &rep);
}

/* --- External Account Binding credentials: POST /api/v1/acme/eab (officers) --- */

void cad_h_acme_eab_create(struct cad_req *r)
{
	static const char *const fields[] = {"principal", "profiles", "allow", "expires_days",
	                                     NULL};
	json_t *body = cad_body_object(r, fields), *v, *e, *detail;
	const char *principal, *allow[DB_ALLOWLIST_MAX];
	char profiles[1025] = "", kid[24], default_principal[40], key_text[48], when[32],
	     object[96];
	uint8_t raw_kid[12], key[32];
	size_t n_allow = 0, i;
	struct db_err err = {0};
	struct db *db;
	json_int_t days;
	int64_t id, expires;

	if (!body)
		return;
	if (!r->cad->cfg->acme_url[0]) {
		cad_reply_error(r, 409, "acme-disabled", "ACME is not enabled on this server");
		goto out;
	}
	v = json_object_get(body, "principal");
	principal = json_string_value(v);
	if ((v && (!principal || !cad_name_ok(principal))) ||
	    !json_is_array(json_object_get(body, "profiles")) ||
	    !json_array_size(json_object_get(body, "profiles"))) {
		cad_reply_error(r, 400, "bad-request",
		                "\"profiles\" (a non-empty list) is required; \"principal\", when "
		                "given, is a name (1..128 of A-Z a-z 0-9 . _ @ + -)");
		goto out;
	}
	v = json_object_get(body, "profiles");
	json_array_foreach(v, i, e)
	{
		const char *p = json_string_value(e);
		if (!p || !acme_profile_named(r->cad->cfg, p)) {
			cad_reply_error(r, 400, "unknown-profile",
			                "profile \"%.64s\" is not served over ACME (acme.profiles)",
			                p ? p : "(not a string)");
			goto out;
		}
		if (strlen(profiles) + strlen(p) + 2 > sizeof(profiles)) {
			cad_reply_error(r, 400, "bad-request", "too many profiles");
			goto out;
		}
		if (i)
			strcat(profiles, ",");
		strcat(profiles, p);
	}
	v = json_object_get(body, "expires_days");
	days = v ? (json_is_integer(v) ? json_integer_value(v) : -1) : 7;
	if (days < 1 || days > r->cad->cfg->acme_eab_max_days) {
		cad_reply_error(r, 400, "bad-request", "\"expires_days\" must be 1..%d",
		                r->cad->cfg->acme_eab_max_days);
		goto out;
	}
	if (cad_body_string_list(r, body, "allow", "identifier patterns", allow, DB_ALLOWLIST_MAX,
	                         &n_allow))
		goto out;
	if (!(db = cad_db(r)))
		goto out;
	/* The HMAC key is shown once, here; the database keeps it to check MACs with. */
	if (RAND_bytes(raw_kid, sizeof(raw_kid)) != 1 || RAND_priv_bytes(key, sizeof(key)) != 1 ||
	    acme_b64url_encode(raw_kid, sizeof(raw_kid), kid, sizeof(kid)) < 0 ||
	    acme_b64url_encode(key, sizeof(key), key_text, sizeof(key_text)) < 0) {
		cad_reply_error(r, 500, "internal", "no randomness for a credential");
		goto wipe;
	}
	if (!principal) {
		/* Unnamed: its own principal, named after the credential. */
		snprintf(default_principal, sizeof(default_principal), "acme-%s", kid);
		principal = default_principal;
	}
	expires = (int64_t)time(NULL) + (int64_t)days * 86400;
	if (db_begin(db, &err) != DB_OK ||
	    db_acme_eab_add(db, kid, key, sizeof(key), principal, profiles, allow, n_allow, expires,
	                    r->who.name, &id, &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-request", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		goto wipe;
	}
	snprintf(object, sizeof(object), "acme-eab/%s", kid);
	detail = json_pack("{s:s, s:s, s:I, s:I}", "principal", principal, "profiles", profiles,
	                   "expires_days", (json_int_t)days, "allow_entries", (json_int_t)n_allow);
	if (cad_commit_with_audit(r, db, object, detail) == 0)
		cad_reply_json(r, 201,
		               json_pack("{s:s, s:s, s:s, s:O, s:O?, s:s}", "kid", kid, "hmac_key",
		                         key_text, "principal", principal, "profiles",
		                         json_object_get(body, "profiles"), "allow",
		                         json_object_get(body, "allow"), "expires_at",
		                         cad_time_text(expires, when, sizeof(when))));
	json_decref(detail);
wipe:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(key_text, sizeof(key_text));
out:
	json_decref(body);
}

/* GET /api/v1/acme/eab: every credential, without its key. */
void cad_h_acme_eab_list(struct cad_req *r)
{
	struct db_acme_eab *rows = NULL;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	size_t n = 0;
	json_t *arr;
	char t[3][32];

	if (!db)
		return;
	if (db_acme_eab_list(db, &rows, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *allow = json_array();
		const char *s = rows[i].allow;
		while (s && *s) {
			size_t len = strcspn(s, "\n");
			json_array_append_new(allow, json_stringn(s, len));
			s += len + (s[len] == '\n');
		}
		json_t *o = json_pack(
		    "{s:s, s:s, s:s, s:o, s:s, s:s?, s:s, s:s}", "kid", rows[i].kid, "principal",
		    rows[i].principal, "profiles", rows[i].profiles, "allow", allow, "expires_at",
		    cad_time_text(rows[i].expires_at, t[0], sizeof(t[0])), "revoked_at",
		    cad_time_text(rows[i].revoked_at, t[1], sizeof(t[1])), "created_at",
		    cad_time_text(rows[i].created_at, t[2], sizeof(t[2])), "created_by",
		    rows[i].created_by);
		if (o && rows[i].account_id)
			json_object_set_new(o, "account_id", json_integer(rows[i].account_id));
		if (!o || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			db_acme_eab_list_free(rows, n);
			cad_reply_error(r, 500, "internal", "out of memory");
			return;
		}
	}
	db_acme_eab_list_free(rows, n);
	cad_reply_json(r, 200, json_pack("{s:o}", "credentials", arr));
}

/* POST /api/v1/acme/eab/{kid}/revoke: no more registrations with it. */
void cad_h_acme_eab_revoke(struct cad_req *r)
{
	struct db_err err = {0};
	struct db *db = cad_db(r);
	char object[96];

	if (!db)
		return;
	snprintf(object, sizeof(object), "acme-eab/%s", r->args[0]);
	if (db_begin(db, &err) != DB_OK || db_acme_eab_revoke(db, r->args[0], &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_NOT_FOUND)
			cad_deny(r, 404, "not-found", object, "no EAB credential %.64s",
			         r->args[0]);
		else if (err.status == DB_ERR_STATE)
			cad_deny(r, 409, "already-revoked", object,
			         "EAB credential %.64s is revoked already", r->args[0]);
		else
			cad_reply_db_error(r, &err);
		return;
	}
	if (cad_commit_with_audit(r, db, object, NULL) == 0)
		cad_reply_json(r, 200, json_pack("{s:s, s:b}", "kid", r->args[0], "revoked", 1));
}

/* POST /api/v1/acme/incidents {"authority", "reason"}: the authority's certificates issued
 * until now should be renewed at once (renewal information says so). */
void cad_h_acme_incident_create(struct cad_req *r)
{
	static const char *const fields[] = {"authority", "reason", NULL};
	json_t *body = cad_body_object(r, fields), *detail;
	const char *name, *reason;
	struct db_err err = {0};
	struct db *db;
	int32_t aid = 0;
	int64_t id;
	char object[96];
	size_t i;

	if (!body)
		return;
	if (!r->cad->cfg->acme_url[0]) {
		cad_reply_error(r, 409, "acme-disabled", "ACME is not enabled on this server");
		goto out;
	}
	name = json_string_value(json_object_get(body, "authority"));
	reason = json_string_value(json_object_get(body, "reason"));
	if (!name || !reason || !cad_label_ok(reason)) {
		cad_reply_error(r, 400, "bad-request",
		                "\"authority\" and \"reason\" (1..128 bytes of text) are required");
		goto out;
	}
	for (i = 0; i < r->cad->cfg->n_authorities; i++)
		if (!strcmp(r->cad->cfg->authorities[i].name, name))
			break;
	if (i == r->cad->cfg->n_authorities) {
		cad_deny(r, 404, "unknown-authority", name, "no authority %.64s", name);
		goto out;
	}
	if (!(db = cad_db(r)))
		goto out;
	pthread_mutex_lock(&r->cad->lock);
	aid = r->cad->cfg->authorities[i].db_id;
	pthread_mutex_unlock(&r->cad->lock);
	if (!aid) {
		cad_reply_error(r, 503, "authority-not-ready",
		                "authority %.64s is not registered in the database yet", name);
		goto out;
	}
	if (db_begin(db, &err) != DB_OK ||
	    db_acme_incident_add(db, aid, reason, r->who.name, &id, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	snprintf(object, sizeof(object), "authority/%s", name);
	detail = json_pack("{s:s, s:I}", "reason", reason, "incident", (json_int_t)id);
	if (cad_commit_with_audit(r, db, object, detail) == 0)
		cad_reply_json(r, 201,
		               json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "authority", name,
		                         "reason", reason));
	json_decref(detail);
out:
	json_decref(body);
}
