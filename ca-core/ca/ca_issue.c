/* Issuance: judge the request against its profile, then commit the serial and contents to the
 * database before keyd signs (so that OCSP and CRL know every certificate that exists), build
 * the certificate, sign it through the keyd provider, and store the signed DER with its audit
 * entry. Reservations and stores of concurrent requests share transactions (ca_group.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_csr.h"
#include "ca_group.h"
#include "cakey.h"
#include "lint.h"
#include "log.h"

#define SERIAL_BYTES 20

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(cert, ext, -1);

	X509_EXTENSION_free(ext);
	return ok;
}

/* The extensions every leaf has, from their structures rather than from configuration text
 * (X509V3_EXT_conf_nid parses the text again for every certificate): basicConstraints
 * critical CA:FALSE, keyUsage (critical, the KU_* bits in key_usage, none: absent),
 * extendedKeyUsage of p, the subjectKeyIdentifier (SHA-1 of the subject's public key bits,
 * RFC 5280 4.2.1.2 method 1, as OpenSSL's "hash") and the authorityKeyIdentifier (the issuer's
 * subjectKeyIdentifier; none is an error, as OpenSSL's "keyid:always"). The same DER as the
 * text "critical,CA:FALSE", "critical,digitalSignature,...", the EKU names, "hash" and
 * "keyid:always" give. 1, or 0 when one does not encode. */
static int add_leaf_exts(X509 *cert, const struct ca_profile *p, X509 *issuer, unsigned key_usage)
{
	static const struct {
		unsigned ku;
		int bit; /* KeyUsage's named bits, RFC 5280 4.2.1.3 */
	} kus[] = {{KU_DIGITAL_SIGNATURE, 0},
	           {KU_NON_REPUDIATION, 1},
	           {KU_KEY_ENCIPHERMENT, 2},
	           {KU_DATA_ENCIPHERMENT, 3},
	           {KU_KEY_AGREEMENT, 4}};
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
	const ASN1_OCTET_STRING *issuer_ski = X509_get0_subject_key_id(issuer);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	int ok = bc && ku && eku && ski && aki && issuer_ski;

	for (size_t i = 0; ok && i < sizeof(kus) / sizeof(kus[0]); i++)
		if (key_usage & kus[i].ku)
			ok = ASN1_BIT_STRING_set_bit(ku, kus[i].bit, 1);
	for (size_t i = 0; ok && i < p->n_eku; i++)
		ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(p->eku[i])) > 0;
	ok = ok && X509_pubkey_digest(cert, EVP_sha1(), md, &md_len) &&
	     ASN1_OCTET_STRING_set(ski, md, (int)md_len) &&
	     (aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski)) != NULL;
	ok = ok && X509_add1_ext_i2d(cert, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1 &&
	     (!key_usage ||
	      X509_add1_ext_i2d(cert, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1) &&
	     (!p->n_eku ||
	      X509_add1_ext_i2d(cert, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1) &&
	     X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) == 1 &&
	     X509_add1_ext_i2d(cert, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT) == 1;
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(aki);
	return ok;
}

/* The CRL shard of a serial (hsmca-crld publishes one CRL per shard), from its last bytes,
 * which are random. */
static int32_t crl_shard(const struct ca_authority *a, const uint8_t *serial)
{
	return a->crl_shards > 1 ? (int32_t)(((unsigned)serial[SERIAL_BYTES - 2] << 8 |
	                                      serial[SERIAL_BYTES - 1]) %
	                                     (unsigned)a->crl_shards)
	                         : 0;
}

/* "URI:<base><name>[-<shard>].crl", the X509V3 value of the distribution point, into buf. */
static const char *crl_dp(const struct ca_authority *a, const uint8_t *serial, char *buf, size_t n)
{
	if (a->crl_shards > 1)
		snprintf(buf, n, "URI:%s%s-%d.crl", a->crl_base_url, a->name,
		         (int)crl_shard(a, serial));
	else
		snprintf(buf, n, "URI:%s%s.crl", a->crl_base_url, a->name);
	return buf;
}

/* The X509V3 value of a's Authority Information Access as it is now (read under the owner's
 * lock: an officer's change may replace it), into buf; "" when a has none. */
static void aia_value(struct ca *ca, const struct ca_authority *a, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	pthread_mutex_lock(ca->lock);
	for (const char *u = a->ocsp_urls; *u;) {
		size_t k = strcspn(u, " ");
		len += (size_t)snprintf(buf + len, n - len, "%sOCSP;URI:%.*s", len ? "," : "",
		                        (int)k, u);
		u += k + (u[k] == ' ');
	}
	if (a->ca_issuers_url[0])
		snprintf(buf + len, n - len, "%scaIssuers;URI:%s", len ? "," : "",
		         a->ca_issuers_url);
	pthread_mutex_unlock(ca->lock);
}

/* 1 for a policy the CA/Browser Forum reserved (2.23.140.1.*): BR 7.1.2.7.9 allows it no
 * qualifiers. */
static int policy_reserved(const char *oid)
{
	return !strncmp(oid, "2.23.140.1.", 11);
}

/* certificatePolicies of profile p: its policies, each of the CA's own qualified with the CPS
 * URI when p has one. 1, or 0 when it does not encode. */
static int add_policies(X509 *cert, const struct ca_profile *p)
{
	CERTIFICATEPOLICIES *cp = sk_POLICYINFO_new_null();
	int ok = cp != NULL;

	for (size_t i = 0; ok && i < p->n_policies; i++) {
		POLICYINFO *pi = POLICYINFO_new();
		POLICYQUALINFO *q = NULL;

		ok = pi && (pi->policyid = OBJ_txt2obj(p->policies[i], 1)) &&
		     sk_POLICYINFO_push(cp, pi);
		if (!ok) {
			POLICYINFO_free(pi);
			break;
		}
		if (!p->cps_uri[0] || policy_reserved(p->policies[i]))
			continue;
		ok = (pi->qualifiers = sk_POLICYQUALINFO_new_null()) &&
		     (q = POLICYQUALINFO_new()) && (q->pqualid = OBJ_nid2obj(NID_id_qt_cps)) &&
		     (q->d.cpsuri = ASN1_IA5STRING_new()) &&
		     ASN1_STRING_set(q->d.cpsuri, p->cps_uri, (int)strlen(p->cps_uri)) &&
		     sk_POLICYQUALINFO_push(pi->qualifiers, q);
		if (!ok)
			POLICYQUALINFO_free(q);
	}
	ok =
	    ok && X509_add1_ext_i2d(cert, NID_certificate_policies, cp, 0, X509V3_ADD_DEFAULT) == 1;
	CERTIFICATEPOLICIES_free(cp);
	return ok;
}

unsigned ca_key_usage_for(unsigned key_usage, EVP_PKEY *key)
{
	if (key && EVP_PKEY_is_a(key, "EC"))
		return key_usage & ~(unsigned)(KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT);
	if (key && EVP_PKEY_is_a(key, "RSA"))
		return key_usage & ~(unsigned)KU_KEY_AGREEMENT;
	return key_usage;
}

/* Build the to-be-signed certificate; aia: the X509V3 value of its Authority Information
 * Access ("": none). */
static X509 *build(const struct ca_profile *p, const struct ca_csr *csrc, const uint8_t *serial,
                   int64_t nb, int64_t na, const char *aia)
{
	struct ca_authority *a = p->authority;
	X509 *cert = X509_new();
	BIGNUM *bn = BN_bin2bn(serial, SERIAL_BYTES, NULL);
	ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	char dp[CA_PATH_MAX + 96];
	X509V3_CTX ctx;
	int ok = 0;

	if (!cert || !sn || !X509_set_version(cert, X509_VERSION_3) ||
	    !X509_set_serialNumber(cert, sn) ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(a->cert)) ||
	    !X509_set_subject_name(cert, ca_csr_subject(csrc)) ||
	    !ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)nb) ||
	    !ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)na) || !ca_csr_copy_pubkey(csrc, cert))
		goto out;
	X509V3_set_ctx(&ctx, a->cert, cert, NULL, NULL, 0);
	if (!add_leaf_exts(cert, p, a->cert, ca_key_usage_for(p->key_usage, csrc->pub)))
		goto out;
	if (a->crl_base_url[0] &&
	    !add_ext(cert, &ctx, NID_crl_distribution_points, crl_dp(a, serial, dp, sizeof(dp))))
		goto out;
	if (aia[0] && !add_ext(cert, &ctx, NID_info_access, aia))
		goto out;
	if (p->n_policies && !add_policies(cert, p))
		goto out;
	/* RFC 5280 4.2.1.6: critical when the subject is empty. */
	if (csrc->gens && sk_GENERAL_NAME_num(csrc->gens) > 0 &&
	    !X509_add1_ext_i2d(cert, NID_subject_alt_name, csrc->gens,
	                       X509_NAME_entry_count(X509_get_subject_name(cert)) == 0,
	                       X509V3_ADD_DEFAULT))
		goto out;
	ok = 1;
out:
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	if (!ok) {
		X509_free(cert);
		cert = NULL;
	}
	return cert;
}

/* What the linter holds the certificate to: the profile, the validity reserved, keyUsage by
 * the request's key type, the issuer's digest (docs/lint.md). */
struct lint_of {
	struct lint_cert_profile p;
	struct lint_parties w;
	char eku[CA_MAX_EKUS][64];
	const char *ekus[CA_MAX_EKUS];
};

static void lint_of(const struct ca_profile *p, const struct ca_csr *csrc, int64_t nb, int64_t na,
                    struct lint_of *l)
{
	static const struct {
		unsigned ku, lint;
	} bits[] = {{KU_DIGITAL_SIGNATURE, LINT_KU_DIGITAL_SIGNATURE},
	            {KU_NON_REPUDIATION, LINT_KU_CONTENT_COMMITMENT},
	            {KU_KEY_ENCIPHERMENT, LINT_KU_KEY_ENCIPHERMENT},
	            {KU_DATA_ENCIPHERMENT, LINT_KU_DATA_ENCIPHERMENT},
	            {KU_KEY_AGREEMENT, LINT_KU_KEY_AGREEMENT}};
	unsigned ku = ca_key_usage_for(p->key_usage, csrc->pub);
	const char *md = ca_key_digest(X509_get0_pubkey(p->authority->cert));

	memset(l, 0, sizeof(*l));
	l->p.role = LINT_LEAF;
	l->p.not_before = (time_t)nb;
	l->p.not_after = (time_t)na;
	l->p.max_validity = (time_t)p->max_validity_days * 86400;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (ku & bits[i].ku)
			l->p.key_usage |= bits[i].lint;
	for (size_t i = 0; i < p->n_eku && i < CA_MAX_EKUS; i++) {
		OBJ_obj2txt(l->eku[i], sizeof(l->eku[i]), OBJ_nid2obj(p->eku[i]), 1);
		l->ekus[i] = l->eku[i];
	}
	l->p.eku = l->ekus;
	l->p.n_eku = p->n_eku;
	l->p.hash_nid = md ? OBJ_sn2nid(md) : 0;
	l->p.words = (struct lint_words){.source = "the profile", .asker = "the CA core"};
	l->w.issuer = p->authority->cert;
	l->w.subject_pub = csrc->pub;
	l->w.subject_spki = csrc->spki;
	l->w.subject_spki_len = csrc->spki_len;
}

/* After signing: the certificate's DER, as it is stored and sent, into *der (*len bytes;
 * OPENSSL_free it), checked for what signing added (docs/lint.md): one DER Certificate, its
 * extensions decoding, its signature algorithm the one asked for, its signature verified over
 * the TBSCertificate's bytes with the issuer certificate's key. The TBSCertificate itself
 * passed lint_cert_tbs before signing, and signing adds only the algorithm and the
 * signature, so nothing is decoded again. 0, or -1 with the finding in why. */
static int lint_signed(const struct lint_of *l, X509 *cert, unsigned char **der, int *len,
                       char *why, size_t n)
{
	*der = NULL;
	if ((*len = i2d_X509(cert, der)) <= 0) {
		snprintf(why, n, "ext_decodes: the signed certificate does not encode");
		return -1;
	}
	return lint_cert_signature_der(&l->p, &l->w, cert, *der, (size_t)*len, why, n);
}

static int sign(struct ca *ca, struct ca_authority *a, X509 *cert, char *why, size_t n)
{
	EVP_PKEY *key = ca_authority_key(ca, a);
	EVP_MD_CTX *mctx = key ? EVP_MD_CTX_new() : NULL;
	int ok = mctx && ca_key_sign_init(mctx, key) == 1 && X509_sign_ctx(cert, mctx) > 0;

	if (!ok) {
		char reason[400];

		ca_key_why(reason, sizeof(reason));
		snprintf(why, n, "signing through keyd with %s failed: %s", a->key_uri, reason);
		/* keyd may have restarted or gone: load the key afresh next time. */
		ca_authority_key_failed(ca, a, key);
	}
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(key);
	return ok;
}

struct reserve_job {
	struct ca_group_job g; /* first */
	struct db_cert_reservation item;
};

static void run_reserve(struct db *db, struct ca_group_job **jobs, size_t n, void *arg)
{
	struct db_cert_reservation *items[CA_GROUP_MAX];
	struct ca *ca = arg;

	if (ca->count_group)
		ca->count_group(0, n);
	for (size_t i = 0; i < n; i++)
		items[i] = &((struct reserve_job *)jobs[i])->item;
	db_cert_reserve_many(db, items, n);
}

struct store_job {
	struct ca_group_job g; /* first */
	struct db_cert_store item;
};

static void run_store(struct db *db, struct ca_group_job **jobs, size_t n, void *arg)
{
	struct db_cert_store *items[CA_GROUP_MAX];
	struct ca *ca = arg;

	if (ca->count_group)
		ca->count_group(1, n);
	for (size_t i = 0; i < n; i++)
		items[i] = &((struct store_job *)jobs[i])->item;
	db_cert_store_many(db, items, n);
}

static enum ca_outcome fail(struct ca_issue_result *res, enum ca_outcome o, const char *code,
                            const char *object, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum ca_outcome fail(struct ca_issue_result *res, enum ca_outcome o, const char *code,
                            const char *object, const char *fmt, ...)
{
	va_list ap;

	snprintf(res->why.code, sizeof(res->why.code), "%s", code);
	snprintf(res->why.object, sizeof(res->why.object), "%s", object ? object : "");
	va_start(ap, fmt);
	vsnprintf(res->why.reason, sizeof(res->why.reason), fmt, ap);
	va_end(ap);
	return o;
}

static void audit_entry(const struct ca_issue_request *req, const char *object, const char *detail,
                        struct db_audit_entry *e)
{
	e->actor = req->who.name ? req->who.name : "anonymous";
	e->role = req->who.role ? req->who.role : "";
	e->action = req->action ? req->action : "request";
	e->object = object;
	e->outcome = "success";
	e->detail = detail ? detail : "";
}

/* t as seconds since the epoch; 0 or -1. */
static int epoch_of(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* The certificate's notAfter from now and the requested days, within the issuing CA's own
 * validity: a CA that is not valid now issues nothing, and a certificate never outlives its
 * issuer (RFC 5280 6.1.3 would fail it when the CA expires first): the profile either refuses
 * such a request (the default) or clamps notAfter to the CA's. */
static enum ca_outcome within_issuer(const struct ca_issue_request *req, int64_t now, int64_t *nb,
                                     int64_t *na, struct ca_issue_result *res)
{
	const struct ca_profile *p = req->profile;
	const struct ca_authority *a = p->authority;
	int64_t ca_nb, ca_na;
	char when[32];
	struct tm tm;

	if (!a->cert || epoch_of(X509_get0_notBefore(a->cert), &ca_nb) ||
	    epoch_of(X509_get0_notAfter(a->cert), &ca_na))
		return fail(res, CA_CONFIG_ERROR, "configuration-error", NULL,
		            "authority %s has no readable certificate validity", a->name);
	if (now < ca_nb)
		return fail(res, CA_AUTHORITY_RETIRED, "authority-not-yet-valid", a->name,
		            "the certificate of authority %s is not valid yet: it issues nothing "
		            "before then",
		            a->name);
	if (now >= ca_na)
		return fail(res, CA_AUTHORITY_RETIRED, "authority-expired", a->name,
		            "the certificate of authority %s has expired: it issues nothing more",
		            a->name);
	*nb = req->not_before ? req->not_before : now;
	if (req->not_after) {
		if (req->not_after <= now || req->not_after <= *nb)
			return fail(res, CA_REFUSED, "validity-not-allowed", NULL,
			            "the requested notAfter is not after now and after notBefore");
		if (req->not_after - *nb > (int64_t)p->max_validity_days * 86400)
			return fail(res, CA_REFUSED, "validity-not-allowed", NULL,
			            "the requested validity is longer than the %d days profile %s "
			            "allows",
			            p->max_validity_days, p->name);
		if (*nb < ca_nb || req->not_after > ca_na)
			return fail(res, CA_REFUSED, "validity-not-allowed", NULL,
			            "the requested validity is not inside the validity of the "
			            "certificate of authority %s",
			            a->name);
		*na = req->not_after;
		return CA_OK;
	}
	if (*nb < ca_nb)
		return fail(res, CA_REFUSED, "validity-not-allowed", NULL,
		            "the requested notBefore is before the certificate of authority %s",
		            a->name);
	*na = *nb + (req->validity_days ? req->validity_days : p->max_validity_days) * 86400;
	if (*na <= ca_na)
		return CA_OK;
	if (p->clamp_not_after || !req->validity_days) {
		*na = ca_na;
		return CA_OK;
	}
	time_t t = (time_t)ca_na;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return fail(res, CA_REFUSED, "validity-not-allowed", NULL,
	            "%lld days would end after the certificate of authority %s (%s): at most "
	            "%lld days are left",
	            (long long)req->validity_days, a->name, when,
	            (long long)((ca_na - now) / 86400));
}

/* A serial of 158 random bits from the CSPRNG: 20 bytes, the top bit clear (positive) and the
 * next set (minimal, 20 bytes). 0, or -1 without randomness. */
static int new_serial(uint8_t *serial)
{
	if (RAND_bytes(serial, SERIAL_BYTES) != 1)
		return -1;
	serial[0] = (serial[0] & 0x7f) | 0x40;
	return 0;
}

/* Reserve serial (made by new_serial) for cr, before anything is signed; a serial taken
 * already is replaced by a new one. */
static enum ca_outcome reserve(struct ca *ca, struct db *db, const struct ca_issue_request *req,
                               struct db_cert_request *cr, uint8_t *serial, int64_t *id,
                               struct ca_issue_result *res)
{
	struct ca_profile *p = req->profile;
	struct ca_authority *a = p->authority;
	struct db_err err = {0};
	enum db_status rc;

	for (int attempt = 0;; attempt++) {
		/* The first serial is the caller's (the one the certificate was linted with). */
		if (attempt > 0 && new_serial(serial) != 0)
			return fail(res, CA_INTERNAL, "internal", NULL,
			            "no randomness for a serial");
		cr->serial = serial;
		cr->serial_len = SERIAL_BYTES;
		cr->crl_shard = crl_shard(a, serial);
		if (req->with_reserve) { /* alone, with the caller's change */
			rc = db_cert_reserve_with(db, cr, id, req->with_reserve, &err);
			if (rc == DB_ERR_STATE &&
			    db_with_outcome(req->with_reserve, NULL) == DB_ERR_STATE)
				return fail(res, CA_WRONG_STATE, "refused-by-caller", NULL, "%s",
				            err.msg);
		} else if (attempt == 0) {
			struct reserve_job job = {.item = {.req = cr}};
			ca_group_do(&ca->reserve_group, db, &job.g, run_reserve, ca);
			rc = job.item.rc;
			err = job.item.err;
			*id = job.item.id;
		} else { /* the rare retry after a serial was taken: alone */
			rc = db_cert_reserve(db, cr, id, &err);
		}
		if (rc != DB_ERR_CONFLICT || attempt == 2)
			break;
	}
	if (rc == DB_ERR_STATE) {
		/* A retired authority issues nothing more; a profile an admin switched off neither.
		 * The reservation itself checks both, in the statement that makes it, so a
		 * retirement that committed first always wins; here we only find which it was. */
		int retired = 0, enabled = 1;
		if (db_issuance_allowed(db, a->db_id, p->name, &retired, &enabled, &err) != DB_OK)
			return ca_db_failure(&res->why, &err);
		if (!retired && enabled && req->who.token_sha256)
			/* The API token or its principal changed since it was looked up. */
			return CA_STALE_CREDENTIALS;
		if (retired)
			return fail(res, CA_AUTHORITY_RETIRED, "authority-retired", a->name,
			            "authority %s of profile %s is retired: it issues no more "
			            "certificates",
			            a->name, p->name);
		return fail(res, CA_PROFILE_DISABLED, "profile-disabled", p->name,
		            "profile %s is disabled by an admin", p->name);
	}
	if (rc == DB_ERR_INVALID)
		return fail(res, CA_REFUSED, "name-not-allowed", NULL, "%s", err.msg);
	if (rc != DB_OK)
		return ca_db_failure(&res->why, &err);
	return CA_OK;
}

/* Build the to-be-signed certificate with serial into *cert and lint it. A finding refuses
 * the request with the rule's name (CA_REFUSED, "lint-failed"); nothing is signed. */
static enum ca_outcome build_linted(const struct ca_profile *p, const struct ca_csr *csrc,
                                    const uint8_t *serial, const struct db_cert_request *cr,
                                    const char *aia, const struct lint_of *lint, X509 **cert,
                                    struct ca_issue_result *res)
{
	char finding[512], rule[64];

	*cert = build(p, csrc, serial, cr->not_before, cr->not_after, aia);
	if (!*cert)
		return fail(res, CA_INTERNAL, "internal", NULL, "building the certificate failed");
	if (lint_cert_tbs(&lint->p, &lint->w, *cert, finding, sizeof(finding)) == 0)
		return CA_OK;
	X509_free(*cert);
	*cert = NULL;
	lint_rule(finding, rule, sizeof(rule));
	log_warn("profile %s, subject \"%s\": refused by lint rule %s before signing: %s", p->name,
	         csrc->subject, rule, finding);
	return fail(res, CA_REFUSED, "lint-failed", NULL,
	            "the certificate would fail lint rule %s, so nothing was signed: %s", rule,
	            finding);
}

/* Store the signed certificate with its audit entry (and the caller's step), committed. */
static enum db_status store(struct ca *ca, struct db *db, const struct ca_issue_request *req,
                            const uint8_t *serial, int64_t id, const char *hex,
                            const unsigned char *der, int len, struct db_err *err)
{
	struct ca_profile *p = req->profile;
	struct ca_authority *a = p->authority;
	json_t *v = json_pack("{s:s, s:i, s:s, s:s}", "profile", p->name, "profile_version",
	                      (int)p->version, "authority", a->name, "subject",
	                      req->csr ? req->csr->subject : "");
	char *dtext;
	enum db_status rc;

	if (v && req->audit_detail)
		json_object_update(v, req->audit_detail);
	dtext = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (len <= 0) {
		rc = err->status = DB_ERR_INVALID;
		snprintf(err->msg, sizeof(err->msg), "serial %s: the certificate does not encode",
		         hex);
	} else if (req->with_store) {
		/* Alone: the caller's change goes in the same transaction and round trip. */
		struct db_cert_store item = {.authority_id = a->db_id,
		                             .serial = serial,
		                             .serial_len = SERIAL_BYTES,
		                             .der = der,
		                             .der_len = (size_t)len};
		audit_entry(req, hex, dtext, &item.audit);
		db_cert_store_with(db, &item, req->with_store);
		rc = item.rc;
		*err = item.err;
	} else if (!req->in_tx) {
		struct store_job job = {.item = {.authority_id = a->db_id,
		                                 .serial = serial,
		                                 .serial_len = SERIAL_BYTES,
		                                 .der = der,
		                                 .der_len = (size_t)len}};
		audit_entry(req, hex, dtext, &job.item.audit);
		ca_group_do(&ca->store_group, db, &job.g, run_store, ca);
		rc = job.item.rc;
		*err = job.item.err;
	} else {
		/* More work in the same transaction (an EST device record): alone. The audit entry
		 * last: it takes the chain's lock, held until the commit. */
		struct db_audit_entry e;
		int64_t seq;
		audit_entry(req, hex, dtext, &e);
		if (req->in_tx_serial)
			snprintf(req->in_tx_serial, 2 * DB_SERIAL_MAX + 1, "%s", hex);
		rc = db_begin(db, err);
		if (rc == DB_OK)
			rc = db_cert_mark_issued(db, a->db_id, serial, SERIAL_BYTES, der,
			                         (size_t)len, err);
		if (rc == DB_OK)
			rc = req->in_tx(db, id, req->in_tx_arg, err);
		if (rc == DB_OK)
			rc = db_audit_append_commit(db, &e, &seq, err);
		if (rc != DB_OK)
			db_rollback(db); /* a no-op when the transaction is over */
	}
	free(dtext);
	json_decref(v);
	return rc;
}

enum ca_outcome ca_issue(struct ca *ca, struct db **dbp, const struct ca_issue_request *req,
                         struct ca_issue_result *res)
{
	struct ca_profile *p = req->profile;
	struct ca_authority *a = p->authority;
	struct ca_issue_request judged = *req;
	struct ca_csr *own = NULL;
	const struct ca_csr *csrc = req->csr;
	struct db_cert_request cr = {0};
	struct db_err err = {0};
	uint8_t serial[SERIAL_BYTES], linted[SERIAL_BYTES];
	char why[512], hex[2 * DB_SERIAL_MAX + 1], finding[512];
	char aia[DB_OCSP_URLS_MAX * (DB_AIA_URL_MAX + 16) + DB_AIA_URL_MAX + 32];
	struct lint_of lint;
	X509 *cert = NULL;
	unsigned char *der = NULL;
	int der_len = 0;
	int64_t now, not_before = 0, not_after = 0, id = 0;
	enum ca_outcome o;
	enum db_status rc;
	struct db *db;

	memset(res, 0, sizeof(*res));
	if (req->who.profiles && !ca_profile_listed(req->who.profiles, p->name)) {
		if (req->who.token_sha256) {
			o = CA_STALE_CREDENTIALS; /* ask again: the grant may be new */
			goto out;
		}
		o = fail(res, CA_NOT_GRANTED, "profile-not-granted", p->name,
		         "principal %s is not granted profile %s", req->who.name, p->name);
		goto out;
	}
	if (req->validity_days < 0 || req->validity_days > p->max_validity_days) {
		o = fail(res, CA_REFUSED, "validity-not-allowed", NULL,
		         "\"validity_days\" must be 1..%d for profile %s", p->max_validity_days,
		         p->name);
		goto out;
	}
	if (!csrc) {
		const char *error = NULL;
		if (!(own = calloc(1, sizeof(*own)))) {
			o = fail(res, CA_INTERNAL, "internal", NULL, "out of memory");
			goto out;
		}
		if (ca_csr_check(p, req->csr_pem ? req->csr_pem : "", own, &error, why,
		                 sizeof(why)) != 0) {
			o = fail(res, CA_REFUSED, error, NULL, "%s", why);
			goto out;
		}
		csrc = own;
	}
	judged.csr = csrc;
	snprintf(res->subject, sizeof(res->subject), "%s", csrc->subject);
	now = (int64_t)time(NULL);
	if ((o = within_issuer(req, now, &not_before, &not_after, res)) != CA_OK)
		goto out;
	res->not_before = not_before;
	res->not_after = not_after;
	/* Input is valid; now the database and keyd. */
	if (ca_db_open(ca, dbp, &err) != DB_OK) {
		o = ca_db_failure(&res->why, &err);
		goto out;
	}
	db = *dbp;
	/* What keyd or the database said stays in the log; the requester learns which. */
	switch (ca_authorities_ready(ca, db, why, sizeof(why))) {
	case 0:
		break;
	case -1:
		log_warn("authority %s: %s", a->name, why);
		o = fail(res, CA_KEYD_UNAVAILABLE, "keyd-unavailable", NULL,
		         "keyd did not give the key of authority %s (the cause is in the log)",
		         a->name);
		goto out;
	case -3:
		log_error("%s", why);
		o = fail(res, CA_CONFIG_ERROR, "configuration-error", NULL,
		         "the configuration does not match the database (the cause is in the log)");
		goto out;
	default:
		log_warn("%s", why);
		o = fail(res, CA_DB_UNAVAILABLE, "database-unavailable", NULL,
		         "the database is unavailable (the cause is in the log)");
		goto out;
	}
	cr.authority_id = a->db_id;
	cr.profile = p->name;
	cr.profile_version = p->version;
	cr.subject = csrc->subject;
	cr.subject_len = strlen(csrc->subject);
	cr.sans = csrc->sans;
	cr.n_sans = csrc->n_sans;
	cr.not_before = not_before;
	cr.not_after = not_after;
	memcpy(cr.spki_sha256, csrc->spki_sha256, 32);
	cr.requester = req->who.name;
	if (req->who.token_sha256) { /* checked again where it counts: in the reservation */
		cr.token_sha256 = req->who.token_sha256;
		cr.token_role = req->who.role;
	}
	/* The certificate is built and linted before anything reaches the database: a request
	 * that would make a certificate failing a rule is refused by the rule's name and
	 * changes nothing. */
	if (new_serial(serial) != 0) {
		o = fail(res, CA_INTERNAL, "internal", NULL, "no randomness for a serial");
		goto out;
	}
	memcpy(linted, serial, sizeof(serial));
	aia_value(ca, a, aia, sizeof(aia));
	lint_of(p, csrc, cr.not_before, cr.not_after, &lint);
	if ((o = build_linted(p, csrc, serial, &cr, aia, &lint, &cert, res)) != CA_OK)
		goto out;
	if ((o = reserve(ca, db, req, &cr, serial, &id, res)) != CA_OK)
		goto out;
	db_serial_to_hex(serial, sizeof(serial), hex);
	if (memcmp(linted, serial, sizeof(serial)) != 0) {
		/* The serial was taken (rarely): the certificate again, with the new one. */
		X509_free(cert);
		cert = NULL;
		if ((o = build_linted(p, csrc, serial, &cr, aia, &lint, &cert, res)) != CA_OK) {
			struct db_err e2 = {0};
			if (db_cert_mark_failed(db, a->db_id, serial, sizeof(serial), &e2) != DB_OK)
				log_error("serial %s: could not mark the reservation failed: %s",
				          hex, e2.msg);
			goto out;
		}
	}
	if (!cert || !sign(ca, a, cert, why, sizeof(why))) {
		struct db_err e2 = {0};
		if (!cert)
			snprintf(why, sizeof(why), "building the certificate failed");
		/* Nothing was signed: say so in the database. */
		if (db_cert_mark_failed(db, a->db_id, serial, sizeof(serial), &e2) != DB_OK)
			log_error("serial %s: could not mark the reservation failed: %s", hex,
			          e2.msg);
		log_error("serial %s: %s", hex, why);
		o = fail(res, CA_KEYD_UNAVAILABLE, "keyd-unavailable", NULL,
		         "signing with the key of authority %s failed (the cause is in the log)",
		         a->name);
		goto out;
	}
	if (lint_signed(&lint, cert, &der, &der_len, finding, sizeof(finding)) != 0) {
		/* A signature or encoding that does not hold is never stored or returned. */
		char rule[64];
		struct db_err e2 = {0};
		if (db_cert_mark_failed(db, a->db_id, serial, sizeof(serial), &e2) != DB_OK)
			log_error("serial %s: could not mark the reservation failed: %s", hex,
			          e2.msg);
		log_error("serial %s: signed certificate refused by lint rule %s: %s", hex,
		          lint_rule(finding, rule, sizeof(rule)), finding);
		o = fail(res, CA_INTERNAL, "lint-failed-after-signing", NULL,
		         "the signed certificate fails lint rule %s and was discarded: %s",
		         lint_rule(finding, rule, sizeof(rule)), finding);
		goto out;
	}
	if ((rc = store(ca, db, &judged, serial, id, hex, der, der_len, &err)) != DB_OK) {
		/* The reservation stands for this certificate (revocable, known to OCSP and
		 * CRL); the requester does not get it. */
		log_error("serial %s: signed but not stored: %s", hex, err.msg);
		o = ca_db_failure(&res->why, &err);
		goto out;
	}
	snprintf(res->serial, sizeof(res->serial), "%s", hex);
	res->id = id;
	res->not_before = cr.not_before;
	res->not_after = cr.not_after;
	res->authority = a;
	res->cert = cert;
	cert = NULL;
	o = CA_OK;
out:
	X509_free(cert);
	OPENSSL_free(der);
	if (own)
		ca_csr_free(own);
	free(own);
	return o;
}

void ca_issue_result_clear(struct ca_issue_result *res)
{
	X509_free(res->cert);
	res->cert = NULL;
}

/* --- a profile linted on sample certificates (before an admin's change is stored) --- */

/* A name pattern made concrete: each '*' becomes "sample" (a dns wildcard label too), each
 * '?' an 'a'; brackets are left as they are (the CSR check then refuses the sample). */
static void sample_of(const char *pat, const char *star, char *out, size_t n)
{
	size_t len = 0;

	out[0] = '\0';
	for (const char *c = pat; *c && len + 8 < n; c++) {
		if (*c == '*')
			len += (size_t)snprintf(out + len, n - len, "%s", star);
		else if (*c == '?')
			out[len++] = 'a';
		else
			out[len++] = *c;
		out[len] = '\0';
	}
}

/* "10.*" -> "10.1.1.1": a glob over an address's text made into an address. */
static int sample_ip(const char *pat, char *out, size_t n)
{
	unsigned char buf[16];
	int dots = 0;

	sample_of(pat, "1", out, n);
	for (const char *c = out; *c; c++)
		dots += *c == '.';
	if (!strchr(out, ':'))
		while (dots < 3 && strlen(out) + 3 < n) {
			strcat(out, ".1");
			dots++;
		}
	return inet_pton(strchr(out, ':') ? AF_INET6 : AF_INET, out, buf) == 1 ? 0 : -1;
}

/* A PEM request for key with a subject and SANs that p accepts: one name of each SAN kind it
 * allows, the CN (when allowed) the first of them that may be a CN. NULL without memory. */
static char *sample_csr(const struct ca_profile *p, EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	char cn[256] = "", v[256];
	BIO *b = BIO_new(BIO_s_mem());
	int has_cn = 0;
	char *pem = NULL, *data;
	long len;
	int ok = req && name && gens && b;

	for (int k = 0; ok && k < CA_SAN_KINDS; k++) {
		GENERAL_NAME *g;
		if (!p->n_san_patterns[k])
			continue;
		if (k == CA_SAN_IP ? sample_ip(p->san_patterns[k][0], v, sizeof(v)) != 0 : 0)
			continue;
		if (k != CA_SAN_IP)
			sample_of(p->san_patterns[k][0], "sample", v, sizeof(v));
		ok = (g = a2i_GENERAL_NAME(NULL, NULL, NULL,
		                           k == CA_SAN_DNS     ? GEN_DNS
		                           : k == CA_SAN_IP    ? GEN_IPADD
		                           : k == CA_SAN_EMAIL ? GEN_EMAIL
		                                               : GEN_URI,
		                           v, 0)) != NULL &&
		     sk_GENERAL_NAME_push(gens, g);
		if ((k == CA_SAN_DNS || k == CA_SAN_IP) && !cn[0])
			snprintf(cn, sizeof(cn), "%s", v);
	}
	for (size_t i = 0; i < p->n_subject_fields; i++)
		has_cn |= p->subject_fields[i] == NID_commonName;
	for (size_t i = 0; ok && i < p->n_subject_fields; i++) {
		int nid = p->subject_fields[i];
		const char *val = nid == NID_commonName           ? (cn[0] ? cn : "sample")
		                  : nid == NID_countryName        ? "DE"
		                  : nid == NID_organizationName   ? "Sample Org"
		                  : nid == NID_pkcs9_emailAddress ? "sample@example.com"
		                  : nid == NID_serialNumber       ? "0001"
		                                                  : "Sample";
		/* A minimal request: the CN when the profile allows one, else its first field. */
		if (nid != NID_commonName && (i > 0 || has_cn))
			continue;
		if (p->n_subject_patterns[i]) {
			sample_of(p->subject_patterns[i][0], "sample", v, sizeof(v));
			val = v;
		}
		if (nid == NID_pkcs9_emailAddress && p->n_san_patterns[CA_SAN_EMAIL]) {
			sample_of(p->san_patterns[CA_SAN_EMAIL][0], "sample", v, sizeof(v));
			val = v;
		}
		ok = X509_NAME_add_entry_by_NID(
		    name, nid, nid == NID_pkcs9_emailAddress ? MBSTRING_ASC : MBSTRING_UTF8,
		    (const unsigned char *)val, -1, -1, 0);
	}
	ok = ok && X509_REQ_set_version(req, 0) && X509_REQ_set_subject_name(req, name) &&
	     X509_REQ_set_pubkey(req, key);
	if (ok && sk_GENERAL_NAME_num(gens) > 0) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *e = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
		ok = exts && e && sk_X509_EXTENSION_push(exts, e) &&
		     X509_REQ_add_extensions(req, exts);
		if (!ok)
			X509_EXTENSION_free(e);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	ok = ok && X509_REQ_sign(req, key, EVP_sha256()) > 0 && PEM_write_bio_X509_REQ(b, req) &&
	     (len = BIO_get_mem_data(b, &data)) > 0 && (pem = strndup(data, (size_t)len));
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	BIO_free(b);
	return ok ? pem : NULL;
}

int ca_profile_lint(struct ca *ca, const struct ca_profile *p, char *rule, size_t rn, char *why,
                    size_t n)
{
	struct ca_authority *a = p->authority;
	char aia[DB_OCSP_URLS_MAX * (DB_AIA_URL_MAX + 16) + DB_AIA_URL_MAX + 32];
	const char *kinds[3] = {NULL, NULL, NULL};
	int bits[3] = {0, 0, 0};
	int64_t now = (int64_t)time(NULL), ca_na = 0, na;
	uint8_t serial[SERIAL_BYTES];
	size_t nk = 0;
	int rc = 0;

	rule[0] = why[0] = '\0';
	if (!a || !a->cert || epoch_of(X509_get0_notAfter(a->cert), &ca_na)) {
		snprintf(why, n, "authority %s has no readable certificate", a ? a->name : "?");
		return -1;
	}
	/* A throwaway software key of each type the profile's key profile allows. */
	if (p->key_profile->rsa_min_bits) {
		kinds[nk] = "RSA";
		bits[nk++] = p->key_profile->rsa_min_bits;
	}
	if (p->key_profile->p256)
		kinds[nk++] = "P-256";
	if (p->key_profile->p384)
		kinds[nk++] = "P-384";
	na = now + (int64_t)p->max_validity_days * 86400;
	if (na > ca_na)
		na = ca_na; /* as a request without a validity of its own is issued */
	aia_value(ca, a, aia, sizeof(aia));
	for (size_t i = 0; i < nk && rc == 0; i++) {
		EVP_PKEY *key = bits[i] ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits[i])
		                        : EVP_PKEY_Q_keygen(NULL, NULL, "EC", kinds[i]);
		struct ca_csr csr;
		const char *error = NULL;
		char *pem = key ? sample_csr(p, key) : NULL, finding[512], w[512];
		struct lint_of lint;
		X509 *cert = NULL;

		memset(&csr, 0, sizeof(csr));
		if (!pem) {
			snprintf(why, n, "making a sample %s request failed", kinds[i]);
			rc = -1;
		} else if (ca_csr_check(p, pem, &csr, &error, w, sizeof(w)) != 0) {
			snprintf(why, n,
			         "a sample request with a %s key and the names the profile's "
			         "patterns suggest is refused by the profile itself (%s): %s",
			         kinds[i], error ? error : "refused", w);
			rc = -1;
		} else if (new_serial(serial) != 0 ||
		           !(cert = build(p, &csr, serial, now, na, aia))) {
			snprintf(why, n, "building a sample certificate failed");
			rc = -1;
		} else {
			lint_of(p, &csr, now, na, &lint);
			if (lint_cert_tbs(&lint.p, &lint.w, cert, finding, sizeof(finding)) != 0) {
				lint_rule(finding, rule, rn);
				snprintf(why, n,
				         "a sample certificate with a %s key (subject \"%s\") "
				         "fails lint rule %s: %s",
				         kinds[i], csr.subject, rule, finding);
				rc = 1;
			}
		}
		X509_free(cert);
		ca_csr_free(&csr);
		free(pem);
		EVP_PKEY_free(key);
	}
	return rc;
}
