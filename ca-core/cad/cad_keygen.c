/* POST /api/v1/certificates/serverkeygen (docs/api.md, docs/key-recovery.md): hsmca-cad makes
 * the subscriber's key pair in its own memory with OpenSSL's default provider (a subscriber
 * key, never a CA key and never in keyd), builds a CSR for the requested subject and SANs,
 * signed with that key, and hands it to ca_issue exactly as a client's CSR: the profile's
 * checks, the reservation before signing, lint and audit. The key goes back encrypted under
 * the requester's password (PKCS#12 or encrypted PKCS#8). When the profile says archive_key,
 * the key is also archived (encrypted under a data key that keyd wraps) in the transaction
 * that stores the certificate; if archival fails, nothing is issued. Plaintext key bytes are
 * wiped after use. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"
#include "cad_keygen.h"
#include "keyd_client.h"
#include "log.h"

/* The associated data of an archived key's AES-GCM layer (docs/key-recovery.md). */
#define ARCHIVE_AD_PREFIX "hsmca-key-archive-v1:"

static pthread_mutex_t keyd_mu = PTHREAD_MUTEX_INITIALIZER;
static struct keyd_client *keyd; /* made on first archival; thread-safe */

static struct keyd_client *archive_client(void)
{
	struct keyd_client *c;

	pthread_mutex_lock(&keyd_mu);
	if (!keyd)
		keyd = keyd_client_new(NULL, 0); /* $HSMCA_KEYD_SOCKET, as the provider */
	c = keyd;
	pthread_mutex_unlock(&keyd_mu);
	return c;
}

static char *bio_text(BIO *b)
{
	char *data, *out = NULL;
	long len = BIO_get_mem_data(b, &data);

	if (len > 0 && (out = malloc((size_t)len + 1))) {
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	return out;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = b && PEM_write_bio_X509(b, x) ? bio_text(b) : NULL;

	BIO_free(b);
	return out;
}

static int add_san(GENERAL_NAMES *gens, enum ca_san_kind k, const char *v)
{
	GENERAL_NAME *g = NULL;

	if (k == CA_SAN_IP) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);
		if (!ip || !(g = GENERAL_NAME_new())) {
			ASN1_OCTET_STRING_free(ip);
			return -1;
		}
		GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
	} else {
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		int type = k == CA_SAN_DNS ? GEN_DNS : k == CA_SAN_EMAIL ? GEN_EMAIL : GEN_URI;
		if (!s || !ASN1_STRING_set(s, v, (int)strlen(v)) || !(g = GENERAL_NAME_new())) {
			ASN1_IA5STRING_free(s);
			return -1;
		}
		GENERAL_NAME_set0_value(g, type, s);
	}
	if (!sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		return -1;
	}
	return 0;
}

EVP_PKEY *cad_keygen_key(const char *curve, int rsa_bits)
{
	return curve ? EVP_PKEY_Q_keygen(NULL, "provider=default", "EC", curve)
	             : EVP_PKEY_Q_keygen(NULL, "provider=default", "RSA", (size_t)rsa_bits);
}

EVP_PKEY *cad_keygen_profile_key(const struct ca_key_profile *kp)
{
	if (kp->p256 || kp->p384)
		return cad_keygen_key(kp->p256 ? "P-256" : "P-384", 0);
	return cad_keygen_key(NULL, kp->rsa_min_bits > 2048 ? kp->rsa_min_bits : 2048);
}

char *cad_keygen_csr_pem(X509_REQ *req, EVP_PKEY *key)
{
	BIO *b = NULL;
	char *out = NULL;

	if (X509_REQ_set_pubkey(req, key) && X509_REQ_sign(req, key, EVP_sha256()) &&
	    (b = BIO_new(BIO_s_mem())) && PEM_write_bio_X509_REQ(b, req))
		out = bio_text(b);
	BIO_free(b);
	return out;
}

/* The CSR a client would have sent for q, signed with key, in PEM; NULL with err. */
static char *build_csr(const struct cad_skg_request *q, EVP_PKEY *key, char *err, size_t errsz)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext = NULL;
	char *out = NULL;
	int n_sans = 0;

	if (!req || !name || !gens || !exts)
		goto fail;
	for (size_t i = 0; i < q->n_subject; i++)
		if (!X509_NAME_add_entry_by_txt(name, q->subject_field[i], MBSTRING_UTF8,
		                                (const unsigned char *)q->subject_value[i], -1, -1,
		                                0)) {
			snprintf(err, errsz, "\"subject\": %s \"%.64s\" is not a valid value",
			         q->subject_field[i], q->subject_value[i]);
			goto out;
		}
	for (int k = 0; k < CA_SAN_KINDS; k++)
		for (size_t i = 0; i < q->n_san[k]; i++, n_sans++)
			if (add_san(gens, (enum ca_san_kind)k, q->san[k][i])) {
				snprintf(err, errsz, "\"san\": %s \"%.64s\" is not a valid name",
				         ca_san_kind_name((enum ca_san_kind)k), q->san[k][i]);
				goto out;
			}
	if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name))
		goto fail;
	if (n_sans) {
		if (!(ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) ||
		    !sk_X509_EXTENSION_push(exts, ext))
			goto fail;
		ext = NULL;
		if (!X509_REQ_add_extensions(req, exts))
			goto fail;
	}
	if (!(out = cad_keygen_csr_pem(req, key)))
		goto fail;
	goto out;
fail:
	snprintf(err, errsz, "the request could not be built");
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return out;
}

int cad_key_archive_init(struct cad_key_archive *a, const char *label, const char *authority,
                         EVP_PKEY *key)
{
	PKCS8_PRIV_KEY_INFO *p8i = EVP_PKEY2PKCS8(key);
	unsigned char *p8 = NULL;
	int len = p8i ? i2d_PKCS8_PRIV_KEY_INFO(p8i, &p8) : 0;

	PKCS8_PRIV_KEY_INFO_free(p8i);
	memset(a, 0, sizeof(*a));
	if (len <= 0)
		return -1;
	a->label = label;
	a->authority = authority;
	a->pkcs8 = p8;
	a->pkcs8_len = (size_t)len;
	return 0;
}

void cad_key_archive_clear(struct cad_key_archive *a)
{
	if (a->pkcs8)
		OPENSSL_clear_free(a->pkcs8, a->pkcs8_len);
	a->pkcs8 = NULL;
	a->pkcs8_len = 0;
}

/* Inside the transaction that stores the certificate: encrypt the key under a fresh data key
 * with AES-256-GCM (associated data: prefix, authority, ':', serial), have keyd wrap the data
 * key, and insert the row. Any failure rolls the certificate back. */
enum db_status cad_key_archive_in_tx(struct db *db, int64_t cert_id, void *varg, struct db_err *err)
{
	struct cad_key_archive *a = varg;
	uint8_t dk[32], nonce[12], wrapped[KEYD_WRAP_DATA_MAX + 64], *ct = NULL;
	size_t wlen = sizeof(wrapped);
	char ad[sizeof(ARCHIVE_AD_PREFIX) + CA_NAME_MAX + 2 * DB_SERIAL_MAX + 2];
	EVP_CIPHER_CTX *cx = NULL;
	struct keyd_client *kc = archive_client();
	struct keyd_err kerr = {0};
	enum db_status rc = DB_OK;
	int failed = 1;
	int n = 0, fin = 0;

	snprintf(ad, sizeof(ad), "%s%s:%s", ARCHIVE_AD_PREFIX, a->authority, a->serial);
	if (RAND_bytes(dk, sizeof(dk)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1 ||
	    !(ct = malloc(a->pkcs8_len + 16)) || !(cx = EVP_CIPHER_CTX_new()) ||
	    !EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, dk, nonce) ||
	    !EVP_EncryptUpdate(cx, NULL, &n, (const uint8_t *)ad, (int)strlen(ad)) ||
	    !EVP_EncryptUpdate(cx, ct, &n, a->pkcs8, (int)a->pkcs8_len) ||
	    !EVP_EncryptFinal_ex(cx, ct + n, &fin) ||
	    !EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, 16, ct + n + fin)) {
		snprintf(a->why, sizeof(a->why), "the key could not be encrypted for archival");
	} else if (!kc ||
	           keyd_client_wrap(kc, a->label, dk, sizeof(dk), wrapped, &wlen, &kerr) != 0) {
		snprintf(a->why, sizeof(a->why),
		         "keyd did not wrap the archive data key under %s: %s", a->label,
		         kc ? kerr.msg : "no keyd client");
	} else {
		failed = 0;
		rc = db_key_archive_put(db, cert_id, a->label, wrapped, wlen, nonce, sizeof(nonce),
		                        ct, (size_t)(n + fin) + 16, err);
		if (rc != DB_OK)
			snprintf(a->why, sizeof(a->why), "the archive row was not stored: %s",
			         err->msg);
	}
	OPENSSL_cleanse(dk, sizeof(dk));
	EVP_CIPHER_CTX_free(cx);
	free(ct);
	if (failed) {
		rc = err->status = DB_ERR_INVALID;
		snprintf(err->msg, sizeof(err->msg), "key archival failed: %s", a->why);
	}
	return rc;
}

/* The key under the requester's password: a PKCS#12 (base64 of its DER) or an encrypted
 * PKCS#8 PEM. NULL on failure. */
static char *protected_key(const struct cad_skg_request *q, EVP_PKEY *key, X509 *cert,
                           const struct ca_authority *a)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;

	if (!b)
		return NULL;
	if (q->format == CAD_SKG_PKCS8) {
		if (PEM_write_bio_PKCS8PrivateKey(b, key, EVP_aes_256_cbc(), q->password,
		                                  (int)strlen(q->password), NULL, NULL))
			out = bio_text(b);
	} else {
		STACK_OF(X509) *ca = sk_X509_new_null();
		PKCS12 *p12 = NULL;
		/* A fresh decoding of the certificate: the one ca_issue built carries no decoded
		 * public key for PKCS12_create's key check. */
		X509 *own = X509_dup(cert);
		unsigned char *der = NULL;
		int len;
		BIO *b64 = BIO_new(BIO_f_base64());
		int ok = ca && b64 && sk_X509_push(ca, a->cert);
		for (int i = 0; ok && i < sk_X509_num(a->chain); i++)
			ok = sk_X509_push(ca, sk_X509_value(a->chain, i)) > 0;
		/* nid 0: OpenSSL 3's defaults, AES-256-CBC with PBKDF2 and an HMAC-SHA256 MAC. */
		if (ok && own &&
		    (p12 = PKCS12_create(q->password, NULL, key, own, ca, 0, 0, 0, 0, 0)) &&
		    (len = i2d_PKCS12(p12, &der)) > 0) {
			BIO_set_flags(b64, BIO_FLAGS_BASE64_NO_NL);
			BIO_push(b64, b);
			if (BIO_write(b64, der, len) == len && BIO_flush(b64) == 1)
				out = bio_text(b);
			BIO_pop(b64);
		}
		OPENSSL_free(der);
		PKCS12_free(p12);
		X509_free(own);
		sk_X509_free(ca);
		BIO_free(b64);
	}
	BIO_free(b);
	return out;
}

void cad_h_cert_serverkeygen(struct cad_req *r)
{
	json_t *body = cad_body_object(r, cad_skg_fields), *chain;
	struct cad_skg_request q;
	struct ca_issue_request req = {0};
	struct ca_issue_result res = {0};
	struct cad_key_archive arch = {0};
	const struct ca_authority *a;
	struct ca_profile *p;
	EVP_PKEY *key = NULL;
	enum ca_outcome o;
	char err[512], t1[32], t2[32];
	char *csr = NULL, *pem = NULL, *kout = NULL;
	json_t *detail = NULL;

	if (!body)
		return;
	if (cad_skg_parse(body, &q, err, sizeof(err))) {
		cad_reply_error(r, 400, "bad-request", "%s", err);
		goto out;
	}
	/* The profile's current stored version (cad_profiles.c), as every issuance path uses:
	 * the certificate records it. Without the database, 503 rather than "unknown". */
	if (!cad_db(r))
		goto out;
	if (!(p = cad_profile_current(r->cad, r->w->db, q.profile))) {
		cad_reply_error(r, 400, "unknown-profile", "no profile named \"%.64s\"", q.profile);
		goto out;
	}
	if (!p->server_keygen) {
		cad_reply_error(r, 400, "serverkeygen-not-allowed",
		                "profile \"%s\" does not allow server-side key generation "
		                "(server_keygen: true)",
		                p->name);
		goto out;
	}
	if (!(key = cad_keygen_key(q.curve, q.rsa_bits))) {
		cad_reply_error(r, 500, "internal", "the key pair could not be generated");
		goto out;
	}
	if (!(csr = build_csr(&q, key, err, sizeof(err)))) {
		cad_reply_error(r, 400, "bad-request", "%s", err);
		goto out;
	}
	detail = json_pack("{s:b, s:s, s:b}", "server_keygen", 1, "key_type", q.key_type,
	                   "archived", p->archive_key);
	req.who = cad_requester(r);
	req.action = r->action;
	req.profile = p;
	req.csr_pem = csr;
	req.validity_days = q.validity_days;
	req.audit_detail = detail;
	if (p->archive_key) {
		if (cad_key_archive_init(&arch, r->cad->cfg->key_archive_label, p->authority->name,
		                         key)) {
			cad_reply_error(r, 500, "internal",
			                "the key could not be encoded for archival");
			goto out;
		}
		req.in_tx = cad_key_archive_in_tx;
		req.in_tx_arg = &arch;
		req.in_tx_serial = arch.serial;
	}
	if ((o = ca_issue(&r->cad->ca, &r->w->db, &req, &res)) != CA_OK) {
		if (arch.why[0]) {
			log_error("serverkeygen: nothing issued: key archival failed: %s",
			          arch.why);
			cad_reply_error(r, 503, "archival-failed",
			                "the key could not be archived, so nothing was issued: %s",
			                arch.why);
		} else
			cad_reply_ca(r, o, &res.why);
		goto out;
	}
	a = res.authority;
	if (!(pem = pem_of(res.cert)) || !(kout = protected_key(&q, key, res.cert, a))) {
		unsigned long e = ERR_peek_last_error();
		log_error(
		    "serverkeygen: serial %s: issued, but the key could not be encoded for the "
		    "requester: %s",
		    res.serial, e ? ERR_reason_error_string(e) : "out of memory");
		ERR_clear_error();
		cad_reply_error(r, 500, "internal", "the certificate or key could not be encoded");
		goto out;
	}
	chain = json_array();
	for (int i = -1; i < sk_X509_num(a->chain); i++) {
		char *c = pem_of(i < 0 ? a->cert : sk_X509_value(a->chain, i));
		json_array_append_new(chain, json_string(c ? c : ""));
		free(c);
	}
	cad_reply_json(
	    r, 201,
	    json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:o, s:s, s:s, s:b}", "serial",
	              res.serial, "profile", p->name, "authority", a->name, "subject", res.subject,
	              "not_before", cad_time_text(res.not_before, t1, sizeof(t1)), "not_after",
	              cad_time_text(res.not_after, t2, sizeof(t2)), "certificate", pem, "chain",
	              chain, "format", q.format == CAD_SKG_PKCS8 ? "pkcs8" : "pkcs12",
	              q.format == CAD_SKG_PKCS8 ? "pkcs8" : "pkcs12", kout, "archived",
	              p->archive_key));
out:
	cad_key_archive_clear(&arch);
	free(csr);
	free(pem);
	free(kout);
	EVP_PKEY_free(key); /* OpenSSL clears the private key's numbers as it frees them */
	json_decref(detail);
	ca_issue_result_clear(&res);
	json_decref(body);
}
