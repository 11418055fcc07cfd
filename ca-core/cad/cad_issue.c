/* Issuance from a PKCS#10 request: parse, check proof of possession, enforce the profile and
 * key profile, then (invariant 2) commit the serial and contents to the database before keyd
 * signs, sign with X509_sign_ctx through the keyd provider, and store the signed DER. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"
#include "log.h"

#define SANS_MAX 100
#define SERIAL_BYTES 20

int cad_authorities_ready(struct cad *cad, struct db *db, char *err, size_t errsz)
{
	for (size_t i = 0; i < cad->cfg->n_authorities; i++) {
		struct cad_authority *a = &cad->cfg->authorities[i];
		struct db_authority row = {0}, found = {0};
		struct db_err derr = {0};
		unsigned char *subj = NULL, *der = NULL;
		const ASN1_OCTET_STRING *ski;
		char text[1024] = "";
		enum db_status rc;
		int len, slen;

		if (!a->key) {
			a->key = cad_load_key(a->key_uri, err, errsz);
			if (!a->key)
				return -1;
			if (X509_check_private_key(a->cert, a->key) != 1) {
				EVP_PKEY_free(a->key);
				a->key = NULL;
				ERR_clear_error();
				snprintf(err, errsz, "authority %s: key %s does not match %s",
				         a->name, a->key_uri, a->cert_path);
				return -1;
			}
		}
		if (a->db_id)
			continue;
		rc = db_authority_find(db, a->name, &found, &derr);
		if (rc == DB_OK) {
			len = i2d_X509(a->cert, &der);
			if (len <= 0 || (size_t)len != found.cert_der_len ||
			    memcmp(der, found.cert_der, found.cert_der_len)) {
				snprintf(err, errsz,
				         "authority %s: the database holds another certificate for "
				         "this name than %s",
				         a->name, a->cert_path);
				OPENSSL_free(der);
				db_authority_clear(&found);
				return -2;
			}
			a->db_id = found.id;
			OPENSSL_free(der);
			db_authority_clear(&found);
			continue;
		}
		if (rc != DB_ERR_NOT_FOUND) {
			snprintf(err, errsz, "%s", derr.msg);
			return -2;
		}
		/* First start with this authority: register it, and say so in the audit log. */
		ski = X509_get0_subject_key_id(a->cert);
		len = i2d_X509(a->cert, &der);
		slen = i2d_X509_NAME(X509_get_subject_name(a->cert), &subj);
		{
			BIO *m = BIO_new(BIO_s_mem());
			int n;
			X509_NAME_print_ex(m, X509_get_subject_name(a->cert), 0, XN_FLAG_RFC2253);
			n = BIO_read(m, text, sizeof(text) - 1);
			text[n > 0 ? n : 0] = '\0';
			BIO_free(m);
		}
		row.name = a->name;
		row.subject = text;
		row.subject_der = subj;
		row.subject_der_len = slen > 0 ? (size_t)slen : 0;
		row.ski = ski ? ski->data : NULL;
		row.ski_len = ski ? (size_t)ski->length : 0;
		row.cert_der = der;
		row.cert_der_len = len > 0 ? (size_t)len : 0;
		row.key_label = a->key_label;
		{
			struct db_audit_entry e = {"hsmca-cad", "",        "authority.register",
			                           a->name,     "success", text};
			int64_t seq;
			rc = db_begin(db, &derr);
			if (rc == DB_OK)
				rc = db_authority_add(db, &row, &a->db_id, &derr);
			if (rc == DB_OK)
				rc = db_audit_append(db, &e, &seq, &derr);
			if (rc == DB_OK)
				rc = db_commit(db, &derr);
			else
				db_rollback(db);
		}
		OPENSSL_free(der);
		OPENSSL_free(subj);
		if (rc != DB_OK) {
			a->db_id = 0;
			snprintf(err, errsz, "registering authority %s: %s", a->name, derr.msg);
			return -2;
		}
		log_info("registered authority %s (id %d)", a->name, (int)a->db_id);
	}
	return 0;
}

/* --- checks --- */

static int key_allowed(const struct cad_key_profile *kp, EVP_PKEY *key, char *why, size_t n)
{
	char group[32] = "";
	int bits = EVP_PKEY_get_bits(key);

	if (EVP_PKEY_is_a(key, "RSA")) {
		if (!kp->rsa_min_bits) {
			snprintf(why, n, "key profile %s allows no RSA keys", kp->name);
			return 0;
		}
		if (bits < kp->rsa_min_bits || bits > kp->rsa_max_bits) {
			snprintf(why, n, "RSA-%d: key profile %s allows RSA of %d..%d bits", bits,
			         kp->name, kp->rsa_min_bits, kp->rsa_max_bits);
			return 0;
		}
		return 1;
	}
	if (EVP_PKEY_is_a(key, "EC")) {
		size_t glen = 0;
		if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                    sizeof(group), &glen)) {
			snprintf(why, n, "an EC key without a named curve is not allowed");
			return 0;
		}
		if ((!strcmp(group, "prime256v1") && kp->p256) ||
		    (!strcmp(group, "secp384r1") && kp->p384))
			return 1;
		snprintf(why, n, "EC curve %s: key profile %s allows%s%s", group, kp->name,
		         kp->p256 ? " P-256" : "", kp->p384 ? " P-384" : (kp->p256 ? "" : " none"));
		return 0;
	}
	snprintf(why, n, "key type %s is not allowed (RSA or EC only)",
	         EVP_PKEY_get0_type_name(key));
	return 0;
}

static int subject_allowed(const struct cad_profile *p, const X509_NAME *name, char *why, size_t n)
{
	int have_cn = 0, prev_set = -1;

	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
		unsigned char *u = NULL;
		int ulen, set = X509_NAME_ENTRY_set(e);
		size_t k;

		if (set == prev_set) {
			snprintf(why, n, "multi-valued RDNs are not allowed in the subject");
			return 0;
		}
		prev_set = set;
		for (k = 0; k < p->n_subject_fields; k++)
			if (p->subject_fields[k] == nid)
				break;
		if (k == p->n_subject_fields) {
			snprintf(why, n, "subject field %s is not allowed by profile %s",
			         nid ? OBJ_nid2sn(nid) : "(unknown OID)", p->name);
			return 0;
		}
		ulen = ASN1_STRING_to_UTF8(&u, d);
		if (ulen <= 0 || memchr(u, '\0', (size_t)ulen)) {
			OPENSSL_free(u);
			snprintf(why, n, "subject field %s is empty or not text", OBJ_nid2sn(nid));
			return 0;
		}
		OPENSSL_free(u);
		if (nid == NID_commonName)
			have_cn = 1;
	}
	if (p->subject_cn_required && !have_cn) {
		snprintf(why, n, "profile %s requires a subject CN", p->name);
		return 0;
	}
	return 1;
}

static int dns_syntax_ok(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)c) || c == '-' || (c == '*' && i == 0 && s[1] == '.')))
			return 0;
		if ((c == '-' && label == 0) || ++label > 63)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

/* "*.example.com" matches one label in front of example.com; other patterns are shell
 * globs (fnmatch), case-insensitive. A wildcard value ("*.x") only matches that pattern
 * spelled out. */
static int pattern_match(enum cad_san_kind kind, const char *pat, const char *v)
{
	if (kind == CAD_SAN_DNS) {
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

struct sans {
	struct db_san db[SANS_MAX];
	char text[SANS_MAX][256];
	size_t n;
};

/* The CSR's SANs, each checked against the profile; gens is what goes into the certificate. */
static int sans_allowed(const struct cad_profile *p, X509_REQ *req, GENERAL_NAMES **gens_out,
                        struct sans *out, char *why, size_t n)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = NULL;
	int ok = 0, idx, crit = 0;

	*gens_out = NULL;
	out->n = 0;
	idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
	if (idx >= 0 && X509v3_get_ext_by_NID(exts, NID_subject_alt_name, idx) >= 0) {
		snprintf(why, n, "the CSR requests subjectAltName twice");
		goto out;
	}
	if (idx >= 0) {
		gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
		if (!gens) {
			snprintf(why, n, "the CSR's subjectAltName does not parse");
			goto out;
		}
	}
	if (sk_GENERAL_NAME_num(gens) > SANS_MAX) {
		snprintf(why, n, "more than %d SANs", SANS_MAX);
		goto out;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		enum cad_san_kind kind;
		const ASN1_STRING *s = NULL;
		char *v = out->text[out->n];
		size_t k, len;

		switch (g->type) {
		case GEN_DNS:
			kind = CAD_SAN_DNS;
			s = g->d.dNSName;
			break;
		case GEN_EMAIL:
			kind = CAD_SAN_EMAIL;
			s = g->d.rfc822Name;
			break;
		case GEN_URI:
			kind = CAD_SAN_URI;
			s = g->d.uniformResourceIdentifier;
			break;
		case GEN_IPADD:
			kind = CAD_SAN_IP;
			break;
		default:
			snprintf(why, n, "SAN type %d is not allowed (dns, ip, email, uri only)",
			         g->type);
			goto out;
		}
		if (kind == CAD_SAN_IP) {
			const ASN1_OCTET_STRING *ip = g->d.iPAddress;
			int af = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : 0;
			if (!af || !inet_ntop(af, ip->data, v, 256)) {
				snprintf(why, n, "SAN IP address of %d bytes", ip->length);
				goto out;
			}
		} else {
			len = (size_t)ASN1_STRING_length(s);
			/* A NUL inside ("a.example\0.evil") is refused, never cut. */
			if (len == 0 || len > 255 || memchr(ASN1_STRING_get0_data(s), '\0', len)) {
				snprintf(why, n, "a %s SAN is empty, too long or holds a NUL",
				         cad_san_kind_name(kind));
				goto out;
			}
			memcpy(v, ASN1_STRING_get0_data(s), len);
			v[len] = '\0';
			for (size_t c = 0; c < len; c++)
				if ((unsigned char)v[c] < 0x21 || (unsigned char)v[c] > 0x7e) {
					snprintf(why, n, "%s SAN \"%.64s\": not printable ASCII",
					         cad_san_kind_name(kind), v);
					goto out;
				}
			if (kind == CAD_SAN_DNS && !dns_syntax_ok(v, len)) {
				snprintf(why, n, "DNS SAN \"%.64s\" is not a host name", v);
				goto out;
			}
			if (kind == CAD_SAN_EMAIL && (!strchr(v, '@') || strchr(v, '@') == v)) {
				snprintf(why, n, "email SAN \"%.64s\" is not an address", v);
				goto out;
			}
		}
		for (k = 0; k < p->n_san_patterns[kind]; k++)
			if (pattern_match(kind, p->san_patterns[kind][k], v))
				break;
		if (k == p->n_san_patterns[kind]) {
			snprintf(why, n, "%s SAN \"%.64s\" is not allowed by profile %s",
			         cad_san_kind_name(kind), v, p->name);
			goto out;
		}
		out->db[out->n].kind = (enum db_san_kind)kind;
		out->db[out->n].value = v;
		out->db[out->n].len = strlen(v);
		out->n++;
	}
	if (p->san_required && out->n == 0) {
		snprintf(why, n, "profile %s requires at least one SAN", p->name);
		goto out;
	}
	*gens_out = gens;
	gens = NULL;
	ok = 1;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return ok;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(cert, ext, -1);

	X509_EXTENSION_free(ext);
	return ok;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *data;
	long len;

	if (b && PEM_write_bio_X509(b, x) && (len = BIO_get_mem_data(b, &data)) > 0 &&
	    (out = malloc((size_t)len + 1))) {
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(b);
	return out;
}

/* Build the to-be-signed certificate. */
static X509 *build(const struct cad_profile *p, X509_REQ *req, EVP_PKEY *pub, GENERAL_NAMES *gens,
                   const uint8_t *serial, int64_t nb, int64_t na)
{
	struct cad_authority *a = p->authority;
	X509 *cert = X509_new();
	BIGNUM *bn = BN_bin2bn(serial, SERIAL_BYTES, NULL);
	ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	char ku[160] = "critical", eku[160] = "";
	X509V3_CTX ctx;
	int ok = 0;
	static const struct {
		unsigned bit;
		const char *name;
	} kus[] = {{KU_DIGITAL_SIGNATURE, "digitalSignature"},
	           {KU_NON_REPUDIATION, "nonRepudiation"},
	           {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
	           {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
	           {KU_KEY_AGREEMENT, "keyAgreement"}};

	if (!cert || !sn || !X509_set_version(cert, X509_VERSION_3) ||
	    !X509_set_serialNumber(cert, sn) ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(a->cert)) ||
	    !X509_set_subject_name(cert, X509_REQ_get_subject_name(req)) ||
	    !ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)nb) ||
	    !ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)na) || !X509_set_pubkey(cert, pub))
		goto out;
	X509V3_set_ctx(&ctx, a->cert, cert, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(kus) / sizeof(kus[0]); i++)
		if (p->key_usage & kus[i].bit) {
			strcat(ku, ",");
			strcat(ku, kus[i].name);
		}
	for (size_t i = 0; i < p->n_eku; i++) {
		if (i)
			strcat(eku, ",");
		strcat(eku, OBJ_nid2sn(p->eku[i]));
	}
	if (!add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(cert, &ctx, NID_key_usage, ku) ||
	    (p->n_eku && !add_ext(cert, &ctx, NID_ext_key_usage, eku)) ||
	    !add_ext(cert, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto out;
	/* RFC 5280 4.2.1.6: critical when the subject is empty. */
	if (gens && sk_GENERAL_NAME_num(gens) > 0 &&
	    !X509_add1_ext_i2d(cert, NID_subject_alt_name, gens,
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

static int sign(struct cad_authority *a, X509 *cert, char *why, size_t n)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	const char *md =
	    EVP_PKEY_is_a(a->key, "EC") && EVP_PKEY_get_bits(a->key) >= 384 ? "SHA384" : "SHA256";
	int ok = mctx && EVP_DigestSignInit_ex(mctx, NULL, md, NULL, NULL, a->key, NULL) == 1 &&
	         X509_sign_ctx(cert, mctx) > 0;

	if (!ok) {
		char buf[256];
		const char *data = NULL;
		int flags = 0;
		/* The first error is keyd's own reason; later ones are OpenSSL's wrapping. */
		unsigned long e = ERR_peek_error_data(&data, &flags);
		ERR_error_string_n(e, buf, sizeof(buf));
		if (!(flags & ERR_TXT_STRING))
			data = NULL;
		snprintf(why, n, "signing through keyd with %s failed: %s%s%s", a->key_uri,
		         e ? buf : "unknown error", data ? ": " : "", data ? data : "");
		ERR_clear_error();
	}
	EVP_MD_CTX_free(mctx);
	return ok;
}

void cad_h_cert_issue(struct cad_req *r)
{
	static const char *const fields[] = {"profile", "csr", "validity_days", NULL};
	json_t *body = cad_body_object(r, fields), *v, *chain;
	const char *pname, *csr;
	struct cad_profile *p;
	struct cad_authority *a;
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	GENERAL_NAMES *gens = NULL;
	struct sans *sans = NULL;
	X509 *cert = NULL;
	BIO *bio = NULL;
	char why[512], subject[1024], hex[2 * DB_SERIAL_MAX + 1], t1[32], t2[32];
	uint8_t serial[SERIAL_BYTES], spki[32];
	unsigned char *spki_der = NULL, *der = NULL;
	struct db_cert_request cr = {0};
	struct db_err err = {0};
	struct db *db;
	char *pem = NULL;
	json_int_t days;
	int64_t now, id;
	int len, attempt, sub_n;
	enum db_status rc;

	if (!body)
		return;
	pname = json_string_value(json_object_get(body, "profile"));
	csr = json_string_value(json_object_get(body, "csr"));
	if (!pname || !csr) {
		cad_reply_error(r, 400, "bad-request",
		                "\"profile\" and \"csr\" (strings) are required");
		goto out;
	}
	if (!(p = cad_profile_find(r->cad->cfg, pname))) {
		cad_reply_error(r, 400, "unknown-profile", "no profile named \"%.64s\"", pname);
		goto out;
	}
	if (!strcmp(r->who.role, "ra")) {
		char list[1100];
		char needle[80];
		snprintf(list, sizeof(list), ",%s,", r->who.profiles);
		snprintf(needle, sizeof(needle), ",%s,", p->name);
		if (!strstr(list, needle)) {
			cad_deny(r, 403, "profile-not-granted", p->name,
			         "principal %s is not granted profile %s", r->who.name, p->name);
			goto out;
		}
	}
	v = json_object_get(body, "validity_days");
	days = v ? (json_is_integer(v) ? json_integer_value(v) : -1) : p->max_validity_days;
	if (days < 1 || days > p->max_validity_days) {
		cad_reply_error(r, 400, "validity-not-allowed",
		                "\"validity_days\" must be 1..%d for profile %s",
		                p->max_validity_days, p->name);
		goto out;
	}
	bio = BIO_new_mem_buf(csr, -1);
	req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	ERR_clear_error();
	if (!req) {
		cad_reply_error(r, 400, "bad-csr", "\"csr\" is not a PEM PKCS#10 request");
		goto out;
	}
	pub = X509_REQ_get_pubkey(req);
	if (!pub) {
		ERR_clear_error();
		cad_reply_error(r, 400, "bad-csr", "the CSR's public key does not parse");
		goto out;
	}
	/* Proof of possession: the request is signed by the key it names. */
	if (X509_REQ_verify(req, pub) != 1) {
		ERR_clear_error();
		cad_reply_error(r, 400, "csr-signature-invalid",
		                "the CSR's signature does not verify with its public key");
		goto out;
	}
	if (!key_allowed(p->key_profile, pub, why, sizeof(why))) {
		cad_reply_error(r, 400, "key-not-allowed", "%s", why);
		goto out;
	}
	if (!subject_allowed(p, X509_REQ_get_subject_name(req), why, sizeof(why))) {
		cad_reply_error(r, 400, "name-not-allowed", "%s", why);
		goto out;
	}
	sans = calloc(1, sizeof(*sans));
	if (!sans) {
		cad_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (!sans_allowed(p, req, &gens, sans, why, sizeof(why))) {
		cad_reply_error(r, 400, "name-not-allowed", "%s", why);
		goto out;
	}
	/* Input is valid; now the database and keyd. */
	if (!(db = cad_db(r)))
		goto out;
	a = p->authority;
	switch (cad_authorities_ready(r->cad, db, why, sizeof(why))) {
	case 0:
		break;
	case -1:
		cad_reply_error(r, 503, "keyd-unavailable", "%s", why);
		goto out;
	default:
		cad_reply_error(r, 503, "database-unavailable", "%s", why);
		goto out;
	}
	{
		BIO *m = BIO_new(BIO_s_mem());
		X509_NAME_print_ex(m, X509_REQ_get_subject_name(req), 0, XN_FLAG_RFC2253);
		sub_n = BIO_read(m, subject, sizeof(subject) - 1);
		subject[sub_n > 0 ? sub_n : 0] = '\0';
		BIO_free(m);
	}
	len = i2d_PUBKEY(pub, &spki_der);
	if (len <= 0) {
		cad_reply_error(r, 500, "internal", "could not encode the public key");
		goto out;
	}
	SHA256(spki_der, (size_t)len, spki);
	now = (int64_t)time(NULL);
	cr.authority_id = a->db_id;
	cr.profile = p->name;
	cr.subject = subject;
	cr.subject_len = strlen(subject);
	cr.sans = sans->db;
	cr.n_sans = sans->n;
	cr.not_before = now;
	cr.not_after = now + (int64_t)days * 86400;
	memcpy(cr.spki_sha256, spki, 32);
	cr.requester = r->who.name;
	/* Invariant 2: serial and contents are committed before keyd signs. 158 random bits:
	 * 20 bytes, the top bit clear (positive) and the next set (minimal, 20 bytes). */
	for (attempt = 0;; attempt++) {
		if (RAND_bytes(serial, sizeof(serial)) != 1) {
			cad_reply_error(r, 500, "internal", "no randomness for a serial");
			goto out;
		}
		serial[0] = (serial[0] & 0x7f) | 0x40;
		cr.serial = serial;
		cr.serial_len = sizeof(serial);
		rc = db_cert_reserve(db, &cr, &id, &err);
		if (rc != DB_ERR_CONFLICT || attempt == 2)
			break;
	}
	if (rc != DB_OK) {
		if (rc == DB_ERR_INVALID)
			cad_reply_error(r, 400, "name-not-allowed", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	db_serial_to_hex(serial, sizeof(serial), hex);
	cert = build(p, req, pub, gens, serial, cr.not_before, cr.not_after);
	if (!cert || !sign(a, cert, why, sizeof(why))) {
		struct db_err e2 = {0};
		if (!cert)
			snprintf(why, sizeof(why), "building the certificate failed");
		/* Nothing was signed: say so in the database. */
		if (db_cert_mark_failed(db, a->db_id, serial, sizeof(serial), &e2) != DB_OK)
			log_error("serial %s: could not mark the reservation failed: %s", hex,
			          e2.msg);
		/* keyd may have restarted or gone: load the key afresh next time. */
		EVP_PKEY_free(a->key);
		a->key = NULL;
		log_error("serial %s: %s", hex, why);
		cad_reply_error(r, 503, "keyd-unavailable", "%s", why);
		goto out;
	}
	len = i2d_X509(cert, &der);
	v = json_pack("{s:s, s:s, s:s}", "profile", p->name, "authority", a->name, "subject",
	              subject);
	{
		char *dtext = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		rc = len > 0 ? db_begin(db, &err) : DB_ERR_INVALID;
		if (rc == DB_OK)
			rc = db_cert_mark_issued(db, a->db_id, serial, sizeof(serial), der,
			                         (size_t)len, &err);
		if (rc == DB_OK)
			rc = cad_audit(r, hex, "success", dtext, &err);
		if (rc == DB_OK)
			rc = db_commit(db, &err);
		else
			db_rollback(db);
		free(dtext);
	}
	json_decref(v);
	if (rc != DB_OK) {
		/* The reservation stands for this certificate (revocable, known to OCSP and
		 * CRL); the client does not get it. */
		log_error("serial %s: signed but not stored: %s", hex, err.msg);
		cad_reply_db_error(r, &err);
		goto out;
	}
	pem = pem_of(cert);
	chain = json_array();
	for (int i = -1; i < sk_X509_num(a->chain); i++) {
		char *c = pem_of(i < 0 ? a->cert : sk_X509_value(a->chain, i));
		json_array_append_new(chain, json_string(c ? c : ""));
		free(c);
	}
	cad_reply_json(r, 201,
	               json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:o}", "serial", hex,
	                         "profile", p->name, "authority", a->name, "subject", subject,
	                         "not_before", cad_time_text(cr.not_before, t1, sizeof(t1)),
	                         "not_after", cad_time_text(cr.not_after, t2, sizeof(t2)),
	                         "certificate", pem ? pem : "", "chain", chain));
out:
	free(pem);
	OPENSSL_free(der);
	OPENSSL_free(spki_der);
	X509_free(cert);
	GENERAL_NAMES_free(gens);
	free(sans);
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	BIO_free(bio);
	json_decref(body);
}
