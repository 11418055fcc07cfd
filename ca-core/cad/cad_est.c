/*
 * EST (RFC 7030) for devices, under /.well-known/est/ and /.well-known/est/<profile>/:
 * cacerts and csrattrs for anyone; simpleenroll with a provisioning token (HTTP Basic, the
 * password being the token, or Bearer); simplereenroll with the device's current certificate
 * over mutual TLS, for the same identity only; serverkeygen (RFC 7030 4.4) as simpleenroll, but
 * with a key pair hsmca-cad makes (cad_keygen.c, as the API's serverkeygen) for profiles with
 * server_keygen, returned with the certificate as multipart/mixed. Issuance is the CA core's
 * (ca_issue), so profiles, reserve-before-sign and the audit trail are the API's. Errors are
 * text/plain with the status RFC 7030 names (401 for failed authentication, 403 for refused
 * authorisation, 400 for a bad request); every refused enrolment is audited and issues nothing.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cad_est.h"
#include "cad_internal.h"
#include "cad_keygen.h"
#include "der.h"
#include "log.h"

#define PREFIX "/.well-known/est/"

/* --- replies --- */

/* EST's error: text/plain, the reason alone (RFC 7030); the code, and the object of a refusal
 * (the request's path when NULL), are kept for the audit of a denial. */
static void est_vfail(struct cad_req *r, int status, const char *error, const char *object,
                      const char *fmt, va_list ap)
{
	if (object)
		snprintf(r->object, sizeof(r->object), "%s", object);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	snprintf(r->error, sizeof(r->error), "%s", error);
	cad_reply_plain(r, status, r->detail);
}

static void est_error(struct cad_req *r, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void est_deny(struct cad_req *r, int status, const char *error, const char *object,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void est_error(struct cad_req *r, int status, const char *error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	est_vfail(r, status, error, NULL, fmt, ap);
	va_end(ap);
}

static void est_deny(struct cad_req *r, int status, const char *error, const char *object,
                     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	est_vfail(r, status, error, object, fmt, ap);
	va_end(ap);
}

/* A core outcome other than CA_OK as EST's answer. */
static void est_reply_ca(struct cad_req *r, enum ca_outcome o, const struct ca_why *why)
{
	est_deny(r, cad_outcome_status(o), why->code, why->object[0] ? why->object : NULL, "%s",
	         why->reason);
}

static void est_db_error(struct cad_req *r, const struct db_err *err)
{
	struct ca_why why;
	enum ca_outcome o = ca_db_failure(&why, err);

	est_reply_ca(r, o, &why);
}

/* The worker's database connection; NULL after answering 503. */
static struct db *est_db(struct cad_req *r)
{
	struct db_err err = {0};

	if (ca_db_open(&r->cad->ca, &r->w->db, &err) != DB_OK) {
		est_db_error(r, &err);
		return NULL;
	}
	return r->w->db;
}

/* der as base64 in lines of 64 characters (RFC 2045 allows up to 76) added to out; 0, or -1
 * when out of memory. The base64 text is wiped (it may be a private key). */
static int add_base64(struct evbuffer *out, const uint8_t *der, size_t len)
{
	size_t blen = 4 * ((len + 2) / 3) + 1;
	char *b64 = malloc(blen);
	int n, rc = 0;

	if (!b64)
		return -1;
	n = EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
	for (int i = 0; i < n; i += 64)
		if (evbuffer_add(out, b64 + i, (size_t)(n - i < 64 ? n - i : 64)) ||
		    evbuffer_add(out, "\r\n", 2))
			rc = -1;
	OPENSSL_clear_free(b64, blen);
	return rc;
}

/* 200 with the body already in the output buffer. */
static void reply_200(struct cad_req *r, const char *ctype, int base64)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

	r->replied = 1;
	r->status = 200;
	evhttp_add_header(h, "Content-Type", ctype);
	if (base64)
		evhttp_add_header(h, "Content-Transfer-Encoding", "base64");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(r->req, 200, "OK", NULL);
	cad_log_reply(r, 200);
}

/* 200 with der as base64 (RFC 7030 4.1.3, 4.2.3, 4.5.2). */
static void reply_base64(struct cad_req *r, const char *ctype, const uint8_t *der, size_t len)
{
	if (add_base64(evhttp_request_get_output_buffer(r->req), der, len)) {
		est_error(r, 500, "internal", "out of memory");
		return;
	}
	reply_200(r, ctype, 1);
}

#define CERTS_ONLY "application/pkcs7-mime; smime-type=certs-only"

/* A certs-only PKCS#7 (SignedData without signers or content) holding certs, as DER (the
 * caller frees it with OPENSSL_free); its length, or -1. */
static int certs_der(STACK_OF(X509) * certs, unsigned char **der)
{
	PKCS7 *p7 = PKCS7_new();
	int len = -1;

	*der = NULL;
	if (p7 && PKCS7_set_type(p7, NID_pkcs7_signed) && PKCS7_content_new(p7, NID_pkcs7_data) &&
	    PKCS7_set_detached(p7, 1)) {
		int ok = 1;
		for (int i = 0; ok && i < sk_X509_num(certs); i++)
			ok = PKCS7_add_certificate(p7, sk_X509_value(certs, i));
		if (ok)
			len = i2d_PKCS7(p7, der);
	}
	PKCS7_free(p7);
	ERR_clear_error();
	return len;
}

static void reply_certs(struct cad_req *r, STACK_OF(X509) * certs)
{
	unsigned char *der = NULL;
	int len = certs_der(certs, &der);

	if (len <= 0)
		est_error(r, 500, "internal", "could not encode the PKCS#7 reply");
	else
		reply_base64(r, CERTS_ONLY, der, (size_t)len);
	OPENSSL_free(der);
}

/* --- cacerts and csrattrs --- */

static void cacerts(struct cad_req *r, struct ca_profile *p)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct ca_authority *a = p->authority;

	/* The issuing CA, then the certificates above it (RFC 7030 4.1.3: the current CA
	 * certificates, for the client's explicit trust anchor database). */
	if (!certs || !sk_X509_push(certs, a->cert)) {
		sk_X509_free(certs);
		est_error(r, 500, "internal", "out of memory");
		return;
	}
	for (int i = 0; i < sk_X509_num(a->chain); i++)
		sk_X509_push(certs, sk_X509_value(a->chain, i));
	reply_certs(r, certs);
	sk_X509_free(certs);
}

/* An OBJECT IDENTIFIER element for nid, written with the shared DER writer. */
static void put_oid(struct der *d, int nid)
{
	unsigned char *p = NULL;
	int len = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &p);

	if (len <= 0)
		d->overflow = 1;
	else
		der_raw(d, p, (size_t)len);
	OPENSSL_free(p);
}

/* RFC 7030 4.5.2: what the CA wants in a CSR: for EC, the key type with its curve (as an
 * Attribute) and the signature algorithm; for RSA-only profiles, RSA with SHA-256. */
static void csrattrs(struct cad_req *r, struct ca_profile *p)
{
	const struct ca_key_profile *kp = p->key_profile;
	uint8_t sb[256], ob[260];
	struct der seq, out;

	der_init(&seq, sb, sizeof(sb));
	der_init(&out, ob, sizeof(ob));
	if (kp->p256 || kp->p384) {
		uint8_t cb[32], ab[64];
		struct der curve, attr;
		der_init(&curve, cb, sizeof(cb));
		der_init(&attr, ab, sizeof(ab));
		put_oid(&curve, kp->p256 ? NID_X9_62_prime256v1 : NID_secp384r1);
		put_oid(&attr, NID_X9_62_id_ecPublicKey);
		der_tlv(&attr, 0x31, curve.p, curve.len);
		der_tlv(&seq, 0x30, attr.p, attr.len);
		seq.overflow |= curve.overflow | attr.overflow;
		put_oid(&seq, kp->p256 ? NID_ecdsa_with_SHA256 : NID_ecdsa_with_SHA384);
	} else {
		put_oid(&seq, NID_rsaEncryption);
		put_oid(&seq, NID_sha256WithRSAEncryption);
	}
	der_tlv(&out, 0x30, seq.p, seq.len);
	if (out.overflow || seq.overflow)
		est_error(r, 500, "internal", "could not encode the CSR attributes");
	else
		reply_base64(r, "application/csrattrs", out.p, out.len);
}

/* --- enrolment --- */

/* RFC 7030 4.4.1.2: a client asks for its server-generated key encrypted by naming the key
 * to encrypt it to in these CSR attributes. */
static int asks_encrypted_key(const X509_REQ *req)
{
	static const char *const oids[] = {
	    "1.2.840.113549.1.9.16.2.37", /* id-aa-decryptKeyID (symmetric, 4.4.1.1) */
	    "1.2.840.113549.1.9.16.2.54", /* id-aa-asymmDecryptKeyID (4.4.1.2) */
	};
	int found = 0;

	for (size_t i = 0; !found && i < sizeof(oids) / sizeof(oids[0]); i++) {
		ASN1_OBJECT *o = OBJ_txt2obj(oids[i], 1);
		found = o && X509_REQ_get_attr_by_OBJ(req, o, -1) >= 0;
		ASN1_OBJECT_free(o);
	}
	return found;
}

/* The request body as a CSR judged against p; 0, or -1 after replying 400/413. With key
 * (serverkeygen), the client's CSR gives the subject, SANs and other requested contents only:
 * it is re-keyed to key and signed with it before the profile's checks. */
static int body_csr(struct cad_req *r, struct ca_profile *p, struct ca_csr *csrc, EVP_PKEY *key)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	size_t max = r->cad->cfg->max_body_bytes < CAD_EST_BODY_MAX ? r->cad->cfg->max_body_bytes
	                                                            : CAD_EST_BODY_MAX;
	const char *error = NULL;
	char why[512], *pem = NULL, *data;
	X509_REQ *req;
	BIO *b = NULL;
	long plen;
	int rc = -1;

	if (len > max) {
		est_error(r, 413, "body-too-large", "the request body has %zu bytes; at most %zu",
		          len, max);
		return -1;
	}
	req = cad_est_parse_csr(evbuffer_pullup(in, -1), len, why, sizeof(why));
	if (!req) {
		est_error(r, 400, "bad-csr", "%s", why);
		return -1;
	}
	if (key && asks_encrypted_key(req)) {
		est_error(
		    r, 400, "encrypted-key-not-supported",
		    "the CSR asks for the server-generated key encrypted to a key it names "
		    "(RFC 7030 4.4.1.1/4.4.1.2 DecryptKeyIdentifier or "
		    "AsymmetricDecryptKeyIdentifier attribute): not supported here; without "
		    "that attribute the key is returned as unencrypted PKCS#8 inside this TLS "
		    "connection (4.4.2)");
		goto out;
	}
	/* ca_csr_check reads PEM: the API's checks, word for word. */
	if (key) {
		if (!(pem = cad_keygen_csr_pem(req, key))) {
			est_error(r, 500, "internal", "could not re-key the request");
			goto out;
		}
	} else {
		b = BIO_new(BIO_s_mem());
		if (!b || !PEM_write_bio_X509_REQ(b, req) ||
		    (plen = BIO_get_mem_data(b, &data)) <= 0 ||
		    !(pem = strndup(data, (size_t)plen))) {
			est_error(r, 500, "internal", "out of memory");
			goto out;
		}
	}
	if (ca_csr_check(p, pem, csrc, &error, why, sizeof(why)) != 0) {
		est_error(r, 400, error, "the CSR does not fit profile %s: %s", p->name, why);
		goto out;
	}
	rc = 0;
out:
	free(pem);
	BIO_free(b);
	X509_REQ_free(req);
	ERR_clear_error();
	return rc;
}

/* A device's identity: its subject CN, or its first SAN when it has no CN; in lower case, so
 * that GW-0042 and gw-0042 are one device wherever identities are compared or stored. */
static int identity_of(struct cad_req *r, const struct ca_csr *c, char *out, size_t n)
{
	const X509_NAME *name = ca_csr_subject(c);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);

	out[0] = '\0';
	if (i >= 0) {
		unsigned char *u = NULL;
		int len =
		    ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
		if (len > 0 && (size_t)len < n)
			snprintf(out, n, "%.*s", len, (const char *)u);
		OPENSSL_free(u);
	} else if (c->n_sans > 0 && c->sans[0].len < n) {
		snprintf(out, n, "%s", c->sans[0].value);
	}
	for (char *s = out; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	if (!out[0]) {
		est_error(r, 400, "no-identity",
		          "the CSR names no device identity (a subject CN or a SAN of at most "
		          "%d characters)",
		          DB_IDENTITY_MAX);
		return -1;
	}
	return 0;
}

static int on_allowlist(const struct db_prov_token *t, const char *name)
{
	for (size_t i = 0; i < t->n_allow; i++)
		if (!fnmatch(t->allowlist[i], name, FNM_CASEFOLD))
			return 1;
	return 0;
}

/* A token with an allowlist vouches for every name the certificate will carry: the identity
 * and each SAN must be on it (a listed CN must not bring an unlisted SAN along, nor a listed
 * SAN an unlisted CN). NULL when all are, else the first name that is not. */
static const char *not_allowlisted(const struct db_prov_token *t, const struct ca_csr *c,
                                   const char *identity)
{
	if (t->n_allow == 0)
		return NULL;
	if (!on_allowlist(t, identity))
		return identity;
	for (size_t k = 0; k < c->n_sans; k++)
		if (!on_allowlist(t, c->sans[k].value))
			return c->sans[k].value;
	return NULL;
}

/* An EST profile of the configuration, as its current stored version (cad_profiles.c). */
static struct ca_profile *est_profile(struct cad_req *r, const char *name)
{
	for (size_t i = 0; i < r->cad->cfg->n_est_profiles; i++)
		if (!strcmp(r->cad->cfg->est_profiles[i]->name, name))
			return cad_profile_current(r->cad, r->w->db, name);
	return NULL;
}

/* The profile at /.well-known/est/ itself: the first EST profile's current version. */
static struct ca_profile *est_default(struct cad_req *r)
{
	struct ca_profile *p = est_profile(r, r->cad->cfg->est_profiles[0]->name);

	return p ? p : r->cad->cfg->est_profiles[0];
}

static void set_actor(struct cad_req *r, const char *fmt, const char *arg)
{
	char buf[300];

	free(r->who.name);
	free(r->who.role);
	snprintf(buf, sizeof(buf), fmt, arg);
	r->who.name = strdup(buf);
	r->who.role = strdup("device");
}

struct enrol_tx {
	const char *identity, *profile, *how;
	int32_t token_id;
	int replace;
	int superseded;
	struct cad_key_archive *archive; /* serverkeygen with archive_key; else NULL */
};

static enum db_status enrol_in_tx(struct db *db, int64_t cert_id, void *arg, struct db_err *err)
{
	struct enrol_tx *t = arg;
	int64_t device_id;
	enum db_status rc;

	rc = db_device_record(db, t->identity, t->profile, t->token_id, cert_id, t->how, &device_id,
	                      err);
	if (rc == DB_OK && t->replace)
		rc = db_device_supersede(db, device_id, cert_id, &t->superseded, err);
	if (rc == DB_OK && t->archive)
		rc = cad_key_archive_in_tx(db, cert_id, t->archive, err);
	return rc;
}

/* Issue for the device r->who from csrc (judged against p already), its device record written in
 * the same transaction: the certificate (the caller frees it), or NULL after answering. */
static X509 *est_issue(struct cad_req *r, struct ca_profile *p, const struct ca_csr *csrc,
                       struct enrol_tx *tx, json_t *audit, struct ca_issue_result *res)
{
	struct ca_issue_request req = {
	    .who = {.kind = CA_REQUESTER_DEVICE, .name = r->who.name, .role = r->who.role},
	    .action = r->action,
	    .profile = p,
	    .csr = csrc,
	    .validity_days = 0, /* the profile's default, ending no later than the CA */
	    .audit_detail = audit,
	    .in_tx = enrol_in_tx,
	    .in_tx_arg = tx,
	    .in_tx_serial = tx->archive ? tx->archive->serial : NULL,
	};
	enum ca_outcome o = ca_issue(&r->cad->ca, &r->w->db, &req, res);
	X509 *cert = res->cert;

	if (o != CA_OK && tx->archive && tx->archive->why[0]) {
		log_error("est: serverkeygen: nothing issued: key archival failed: %s",
		          tx->archive->why);
		est_error(r, 503, "archival-failed",
		          "the key could not be archived, so nothing was issued (the cause is in "
		          "the log)");
		return NULL;
	}
	if (o != CA_OK) {
		est_reply_ca(r, o, &res->why);
		return NULL;
	}
	res->cert = NULL;
	return cert;
}

static void reply_issued(struct cad_req *r, X509 *cert)
{
	STACK_OF(X509) *one = sk_X509_new_null();

	if (one && sk_X509_push(one, cert))
		reply_certs(r, one);
	else
		est_error(r, 500, "internal", "out of memory");
	sk_X509_free(one);
}

/* RFC 7030 4.4.2: the private key (PKCS#8, unencrypted: inside TLS only) then the
 * certificate (certs-only PKCS#7), each base64, as multipart/mixed. */
static void reply_serverkeygen(struct cad_req *r, X509 *cert, EVP_PKEY *key)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
	STACK_OF(X509) *one = sk_X509_new_null();
	PKCS8_PRIV_KEY_INFO *p8i = EVP_PKEY2PKCS8(key);
	unsigned char *p8 = NULL, *p7 = NULL, rnd[12];
	int p8len = p8i ? i2d_PKCS8_PRIV_KEY_INFO(p8i, &p8) : -1, p7len = -1;
	char boundary[40], ctype[80];

	PKCS8_PRIV_KEY_INFO_free(p8i);
	if (one && sk_X509_push(one, cert))
		p7len = certs_der(one, &p7);
	/* A boundary that cannot occur in base64 text ('-' and '.' are not base64). */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		p7len = -1;
	snprintf(boundary, sizeof(boundary), "hsmca-est.");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(boundary + strlen(boundary), sizeof(boundary) - strlen(boundary), "%02x",
		         rnd[i]);
	if (p8len <= 0 || p7len <= 0 ||
	    evbuffer_add_printf(out,
	                        "--%s\r\nContent-Type: application/pkcs8\r\n"
	                        "Content-Transfer-Encoding: base64\r\n\r\n",
	                        boundary) < 0 ||
	    add_base64(out, p8, (size_t)p8len) ||
	    evbuffer_add_printf(out,
	                        "--%s\r\nContent-Type: " CERTS_ONLY "\r\n"
	                        "Content-Transfer-Encoding: base64\r\n\r\n",
	                        boundary) < 0 ||
	    add_base64(out, p7, (size_t)p7len) ||
	    evbuffer_add_printf(out, "--%s--\r\n", boundary) < 0) {
		evbuffer_drain(out, evbuffer_get_length(out));
		est_error(r, 500, "internal", "could not encode the serverkeygen reply");
	} else {
		snprintf(ctype, sizeof(ctype), "multipart/mixed; boundary=%s", boundary);
		reply_200(r, ctype, 0);
	}
	if (p8)
		OPENSSL_clear_free(p8, (size_t)p8len);
	OPENSSL_free(p7);
	sk_X509_free(one);
	ERR_clear_error();
}

/* --- enrolments that wait for their identity's lock ---
 * Two enrolments of one device identity run one after the other (db_device_trylock). The second
 * must not wait for the first inside PostgreSQL: its worker's event loop would stop with it,
 * and every other connection on that loop with it. It tries the lock instead and, when another
 * enrolment holds it, waits on a timer of the worker's loop (2 ms, doubling to 50 ms) and is
 * served again from the start (token, CSR and allowlist checked again: they may have changed),
 * until it has the lock or est.lock_wait_seconds have passed (then 503 and Retry-After). */
#define WAIT_FIRST_MS 2
#define WAIT_MAX_MS 50

struct est_wait {
	struct cad_held h; /* first: the held request, its timer and its place in waits */
	struct ca_profile *label;
	int skg;
	EVP_PKEY *key; /* serverkeygen: the key made by the first try, used by the next */
	struct timespec since;
	int delay_ms;
};

static struct cad_held_list waits = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void simpleenroll(struct cad_req *r, struct ca_profile *label, int skg, struct est_wait *wt);
static void est_finish(struct cad_req *r, int enrol);

static void wait_unlink(struct est_wait *wt)
{
	cad_held_unlink(&waits, &wt->h);
	atomic_fetch_sub(&wt->h.r.cad->est_lock_waits, 1);
}

static void wait_free(struct est_wait *wt)
{
	if (wt->h.ev)
		event_free(wt->h.ev);
	EVP_PKEY_free(wt->key);
	free(wt);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Wait wt->delay_ms on the worker's loop, then serve the enrolment again. 0, or -1. */
static int wait_arm(struct est_wait *wt)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = wt->delay_ms * 1000};

	return event_add(wt->h.ev, &tv);
}

/* On the worker's loop: try the enrolment again. */
static void wait_again(evutil_socket_t fd, short what, void *arg)
{
	struct est_wait *wt = arg;
	struct cad_req r;

	(void)fd;
	(void)what;
	cad_held_request(&wt->h, &r);
	if (!evhttp_request_get_connection(r.req)) {
		/* The device hung up while it waited: nothing is enrolled; answering frees the
		 * request libevent left to us. */
		wait_unlink(wt);
		log_info("est: an enrolment waiting for its device's lock was abandoned by the "
		         "client");
		evhttp_send_reply(r.req, 503, "Service Unavailable", NULL);
		cad_metrics_request("unrouted", 503, seconds_since(&wt->since));
		wait_free(wt);
		return;
	}
	simpleenroll(&r, wt->label, wt->skg, wt);
	if (r.deferred) {
		db_principal_clear(&r.who);
		if (wait_arm(wt) == 0)
			return;
		r.deferred = 0;
		est_error(&r, 500, "internal",
		          "the enrolment could not wait for its device's lock");
	}
	wait_unlink(wt);
	est_finish(&r, 1);
	db_principal_clear(&r.who);
	cad_metrics_request("unrouted", r.status, seconds_since(&wt->since));
	wait_free(wt);
}

/* r found identity's lock held by another enrolment: wait (r->deferred set, r's key kept in
 * the wait), or answer 503 once est.lock_wait_seconds have passed. *key: the serverkeygen key
 * (taken when r waits). */
static void wait_for_lock(struct cad_req *r, struct ca_profile *label, int skg, struct est_wait *wt,
                          EVP_PKEY **key, const char *identity)
{
	int limit = r->cad->cfg->est_lock_wait_seconds;

	if (wt) {
		if (seconds_since(&wt->since) >= limit) {
			evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After",
			                  "5");
			est_error(
			    r, 503, "enrolment-busy",
			    "another enrolment of device %.64s has held its enrolment lock for "
			    "over %d s (est.lock_wait_seconds); try again later",
			    identity, limit);
			return;
		}
		wt->key = *key;
		*key = NULL;
		wt->delay_ms = wt->delay_ms * 2 > WAIT_MAX_MS ? WAIT_MAX_MS : wt->delay_ms * 2;
		r->deferred = 1;
		return;
	}
	if (!(wt = calloc(1, sizeof(*wt))) || cad_held_init(&wt->h, r, wait_again, wt)) {
		free(wt);
		est_error(r, 500, "internal", "out of memory");
		return;
	}
	wt->label = label;
	wt->skg = skg;
	wt->delay_ms = WAIT_FIRST_MS;
	clock_gettime(CLOCK_MONOTONIC, &wt->since);
	if (wait_arm(wt) != 0) {
		wait_free(wt);
		est_error(r, 500, "internal", "the enrolment could not wait for its device's lock");
		return;
	}
	wt->key = *key;
	*key = NULL;
	cad_held_add(&waits, &wt->h);
	atomic_fetch_add(&r->cad->est_lock_waits, 1);
	log_info("est: device %s: another enrolment of it is in progress; waiting for it",
	         identity);
	r->deferred = 1;
}

void cad_est_stop_waits(struct cad *cad)
{
	struct cad_held *h, *mine = cad_held_take(&waits, cad);

	while ((h = mine)) {
		mine = h->next;
		atomic_fetch_sub(&cad->est_lock_waits, 1);
		evhttp_add_header(evhttp_request_get_output_headers(h->r.req), "Retry-After", "5");
		est_error(&h->r, 503, "stopping", "hsmca-cad is stopping; try again shortly");
		wait_free((struct est_wait *)h);
	}
}

/* simpleenroll, and serverkeygen when skg: the same authentication and device rules. wt: the
 * wait of an enrolment served again after waiting for its identity's lock (NULL the first
 * time). */
static void simpleenroll(struct cad_req *r, struct ca_profile *label, int skg, struct est_wait *wt)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	struct db_prov_token t = {0};
	struct db_device dev = {0};
	struct db_err err = {0};
	struct ca_csr *csrc = NULL;
	struct ca_issue_result issued = {0};
	struct ca_profile *p;
	struct enrol_tx tx = {0};
	struct cad_key_archive arch = {0};
	EVP_PKEY *key = NULL;
	json_t *audit;
	char token[CAD_EST_TOKEN_MAX + 1], user[64], why[256], identity[DB_IDENTITY_MAX + 1];
	const char *unlisted;
	char object[64];
	uint8_t sha[32];
	X509 *cert = NULL;
	struct db *db, *locked = NULL;
	int64_t now = (int64_t)time(NULL);
	enum db_status rc;
	int got;

	identity[0] = '\0';
	switch (cad_est_parse_auth(evhttp_find_header(h, "Authorization"), token, user,
	                           sizeof(user), why, sizeof(why))) {
	case CAD_EST_AUTH_NONE:
		est_error(r, 401, "unauthenticated",
		          "enrolment needs a provisioning token: HTTP Basic with the token as "
		          "password, or Authorization: Bearer");
		return;
	case CAD_EST_AUTH_BAD:
		r->auth_via = "provisioning-token";
		est_error(r, 401, "unauthenticated", "%s", why);
		return;
	default:
		r->auth_via = "provisioning-token";
		break;
	}
	SHA256((const unsigned char *)token, strlen(token), sha);
	OPENSSL_cleanse(token, sizeof(token));
	if (!(db = est_db(r)))
		return;
	rc = db_prov_token_find(db, sha, &t, &err);
	if (rc == DB_ERR_NOT_FOUND) {
		est_error(r, 401, "unauthenticated", "unknown provisioning token");
		return;
	}
	if (rc != DB_OK) {
		est_db_error(r, &err);
		return;
	}
	snprintf(object, sizeof(object), "provisioning-token/%d", (int)t.id);
	set_actor(r, "%s", object);
	if (t.revoked_at) {
		est_deny(r, 401, "unauthenticated", object, "provisioning token %d is revoked",
		         (int)t.id);
		goto out;
	}
	if (t.expires_at <= now) {
		est_deny(r, 401, "unauthenticated", object, "provisioning token %d has expired",
		         (int)t.id);
		goto out;
	}
	if (t.uses >= t.max_uses) {
		est_deny(r, 401, "unauthenticated", object,
		         "provisioning token %d is spent (used %d of %d times)", (int)t.id,
		         (int)t.uses, (int)t.max_uses);
		goto out;
	}
	if (!(p = est_profile(r, t.profile))) {
		est_deny(r, 403, "profile-not-served", object,
		         "provisioning token %d is for profile %s, which EST does not serve",
		         (int)t.id, t.profile);
		goto out;
	}
	if (label && label != p) {
		est_deny(r, 403, "wrong-profile", object,
		         "provisioning token %d is for profile %s, not %s", (int)t.id, p->name,
		         label->name);
		goto out;
	}
	if (skg && !p->server_keygen) {
		est_deny(r, 403, "serverkeygen-not-allowed", object,
		         "profile %s does not allow server-side key generation (server_keygen: "
		         "true): enrol with simpleenroll and a key of the device's own",
		         p->name);
		goto out;
	}
	if (skg && wt && wt->key) { /* made by the first try; the wait keeps it if we wait */
		key = wt->key;
		wt->key = NULL;
	}
	if (skg && !key && !(key = cad_keygen_profile_key(p->key_profile))) {
		est_error(r, 500, "internal", "the key pair could not be generated");
		goto out;
	}
	if (skg && p->archive_key) {
		if (cad_key_archive_init(&arch, r->cad->cfg->key_archive_label, p->authority->name,
		                         key)) {
			est_error(r, 500, "internal", "the key could not be encoded for archival");
			goto out;
		}
		tx.archive = &arch;
	}
	if (!(csrc = calloc(1, sizeof(*csrc)))) {
		est_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (body_csr(r, p, csrc, key) != 0 || identity_of(r, csrc, identity, sizeof(identity)) != 0)
		goto out;
	if ((unlisted = not_allowlisted(&t, csrc, identity))) {
		est_deny(r, 403, "not-on-allowlist", identity,
		         "%s \"%.64s\" of device %.64s is not on the allowlist of provisioning "
		         "token %d: the identity and every SAN must be",
		         unlisted == identity ? "identity" : "SAN", unlisted, identity, (int)t.id);
		goto out;
	}
	/* One enrolment of an identity at a time, from this check to the commit of its
	 * certificate: two tokens enrolling one device at once must not both get a certificate.
	 * Held by another: wait for it without stopping the loop (above). */
	if (db_device_trylock(db, identity, &got, &err) != DB_OK) {
		est_db_error(r, &err);
		goto out;
	}
	if (!got) {
		wait_for_lock(r, label, skg, wt, &key, identity);
		goto out;
	}
	locked = db;
	rc = db_device_find(db, identity, &dev, &err);
	if (rc != DB_OK && rc != DB_ERR_NOT_FOUND) {
		est_db_error(r, &err);
		goto out;
	}
	if (rc == DB_OK) {
		if (dev.decommissioned) {
			est_deny(r, 403, "device-decommissioned", identity,
			         "device %.64s is decommissioned", identity);
			goto out;
		}
		if (strcmp(dev.profile, p->name)) {
			est_deny(r, 403, "wrong-profile", identity,
			         "device %.64s is enrolled in profile %s, not %s", identity,
			         dev.profile, p->name);
			goto out;
		}
		if (dev.n_valid > 0 && !t.allow_replace) {
			est_deny(r, 403, "identity-has-certificate", identity,
			         "device %.64s already has a valid certificate; provisioning token "
			         "%d does not allow replacing it (re-enrol with that certificate "
			         "instead)",
			         identity, (int)t.id);
			goto out;
		}
	}
	/* Take the use first, atomically: two enrolments racing for a token's last use cannot
	 * both get it. It is given back when nothing is issued. */
	rc = db_prov_token_consume(db, t.id, &err);
	if (rc == DB_ERR_STATE) {
		est_deny(r, 401, "unauthenticated", object,
		         "provisioning token %d is spent, expired or revoked", (int)t.id);
		goto out;
	}
	if (rc != DB_OK) {
		est_db_error(r, &err);
		goto out;
	}
	tx.identity = identity;
	tx.profile = p->name;
	tx.how = "enroll";
	tx.token_id = t.id;
	tx.replace = t.allow_replace;
	audit = json_pack("{s:s, s:i, s:s}", "device", identity, "provisioning_token",
	                  (json_int_t)t.id, "est_user", user);
	if (skg)
		json_object_update_new(
		    audit, json_pack("{s:b, s:b}", "server_keygen", 1, "archived", p->archive_key));
	cert = est_issue(r, p, csrc, &tx, audit, &issued);
	json_decref(audit);
	if (!cert) {
		struct db_err e2 = {0};
		if (db_prov_token_refund(db, t.id, &e2) != DB_OK)
			log_error("provisioning token %d: could not give back a use: %s", (int)t.id,
			          e2.msg);
		goto out;
	}
	log_info("est: device %s enrolled, serial %s, token %d%s%s", identity, issued.serial,
	         (int)t.id,
	         skg ? (p->archive_key ? ", key made here and archived" : ", key made here") : "",
	         tx.superseded ? " (replacing its certificate)" : "");
	if (skg)
		reply_serverkeygen(r, cert, key);
	else
		reply_issued(r, cert);
out:
	cad_key_archive_clear(&arch);
	EVP_PKEY_free(key);
	if (locked) {
		struct db_err e2 = {0};
		if (db_device_unlock(locked, identity, &e2) != DB_OK)
			log_error("est: device %s: %s", identity, e2.msg); /* closing lets go */
	}
	X509_free(cert);
	if (csrc)
		ca_csr_free(csrc);
	free(csrc);
	db_device_clear(&dev);
	db_prov_token_clear(&t);
}

static SSL *ssl_of(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;

	return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

/* Every name of a is in b. */
static int names_within(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(a); i++) {
		int found = 0;
		for (int k = 0; !found && k < sk_GENERAL_NAME_num(b); k++)
			found = !GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i),
			                          sk_GENERAL_NAME_value(b, k));
		if (!found)
			return 0;
	}
	return 1;
}

int cad_est_same_sans(X509 *cert, const GENERAL_NAMES *gens)
{
	GENERAL_NAMES *have = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	/* As sets, both ways: equal counts alone let {A, A} stand for {A, B}. */
	int ok = names_within(have, gens) && names_within(gens, have);

	GENERAL_NAMES_free(have);
	return ok;
}

static void simplereenroll(struct cad_req *r, struct ca_profile *label)
{
	SSL *ssl = ssl_of(r->req);
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	long vr = ssl ? SSL_get_verify_result(ssl) : -1;
	struct ca_authority *a = NULL;
	struct db_cert c = {0};
	struct db_device dev = {0};
	struct db_err err = {0};
	struct ca_csr *csrc = NULL;
	struct ca_issue_result issued = {0};
	struct ca_profile *p;
	struct enrol_tx tx = {0};
	json_t *audit;
	char why[512], hex[2 * DB_SERIAL_MAX + 1], identity[DB_IDENTITY_MAX + 1];
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len = 0;
	unsigned char *der = NULL;
	X509 *cert = NULL;
	struct db *db;
	int der_len;
	enum db_status rc;

	if (!peer ||
	    (vr != X509_V_OK && vr != X509_V_ERR_CERT_HAS_EXPIRED &&
	     vr != X509_V_ERR_CERT_NOT_YET_VALID) ||
	    !cad_est_peer_is_device(ssl)) {
		est_error(r, 401, "unauthenticated",
		          "re-enrolment needs the device's current certificate, issued over "
		          "EST, presented as the TLS client certificate");
		return;
	}
	r->auth_via = "certificate";
	for (size_t i = 0; !a && i < r->cad->cfg->n_est_profiles; i++)
		if (X509_check_issued(r->cad->cfg->est_profiles[i]->authority->cert, peer) ==
		    X509_V_OK)
			a = r->cad->cfg->est_profiles[i]->authority;
	{
		const ASN1_INTEGER *sn = X509_get0_serialNumber(peer);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		int len = bn ? BN_num_bytes(bn) : 0;
		if (bn && len > 0 && len <= DB_SERIAL_MAX && !BN_is_negative(bn))
			serial_len = (size_t)BN_bn2bin(bn, serial);
		BN_free(bn);
	}
	if (!a || !serial_len) {
		est_error(r, 401, "unauthenticated",
		          "the client certificate is not one this CA issued to a device");
		return;
	}
	db_serial_to_hex(serial, serial_len, hex);
	set_actor(r, "device-certificate/%s", hex);
	if (!(db = est_db(r)))
		return;
	switch (ca_authorities_ready(&r->cad->ca, db, why, sizeof(why))) {
	case 0:
		break;
	case -1:
		log_warn("est: %s", why); /* keyd's words stay in the log */
		est_error(r, 503, "keyd-unavailable",
		          "keyd is unavailable (the cause is in the log)");
		return;
	default:
		log_warn("est: %s", why);
		est_error(r, 503, "database-unavailable",
		          "the database is unavailable (the cause is in the log)");
		return;
	}
	rc = db_cert_lookup(db, a->db_id, serial, serial_len, &c, &err);
	der_len = i2d_X509(peer, &der);
	if (rc == DB_ERR_NOT_FOUND ||
	    (rc == DB_OK && (der_len <= 0 || (size_t)der_len != c.der_len || !c.der ||
	                     memcmp(der, c.der, c.der_len)))) {
		est_deny(r, 401, "unauthenticated", hex, "certificate %s is not known to this CA",
		         hex);
		goto out;
	}
	if (rc != DB_OK) {
		est_db_error(r, &err);
		goto out;
	}
	if (c.status != DB_CERT_ISSUED) {
		est_deny(r, 401, "unauthenticated", hex, "certificate %s is %s", hex,
		         c.status == DB_CERT_HOLD ? "on hold" : db_cert_status_name(c.status));
		goto out;
	}
	if (vr != X509_V_OK || c.not_after <= (int64_t)time(NULL)) {
		char t[32];
		est_deny(r, 401, "unauthenticated", hex,
		         "certificate %s is not valid now (valid until %s): enrol again with a "
		         "provisioning token",
		         hex, cad_time_text(c.not_after, t, sizeof(t)));
		goto out;
	}
	rc = db_device_of_cert(db, c.id, &dev, &err);
	if (rc == DB_ERR_NOT_FOUND) {
		est_deny(r, 403, "not-a-device", hex,
		         "certificate %s was not issued to a device over EST", hex);
		goto out;
	}
	if (rc != DB_OK) {
		est_db_error(r, &err);
		goto out;
	}
	set_actor(r, "device/%s", dev.identity);
	if (dev.decommissioned) {
		est_deny(r, 403, "device-decommissioned", dev.identity,
		         "device %.64s is decommissioned", dev.identity);
		goto out;
	}
	if (!(p = est_profile(r, dev.profile))) {
		est_deny(r, 403, "profile-not-served", dev.identity,
		         "device %.64s is in profile %s, which EST does not serve", dev.identity,
		         dev.profile);
		goto out;
	}
	if (label && label != p) {
		est_deny(r, 403, "wrong-profile", dev.identity,
		         "device %.64s is enrolled in profile %s, not %s", dev.identity, p->name,
		         label->name);
		goto out;
	}
	if (!(csrc = calloc(1, sizeof(*csrc)))) {
		est_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (body_csr(r, p, csrc, NULL) != 0)
		goto out;
	/* RFC 7030 4.2.2: the same subject and subjectAltName as the current certificate. */
	if (X509_NAME_cmp(ca_csr_subject(csrc), X509_get_subject_name(peer)) ||
	    !cad_est_same_sans(peer, csrc->gens)) {
		est_deny(r, 403, "other-identity", dev.identity,
		         "re-enrolment renews the same identity only: the CSR's subject or SANs "
		         "(%.200s) differ from certificate %s of device %.64s",
		         csrc->subject, hex, dev.identity);
		goto out;
	}
	snprintf(identity, sizeof(identity), "%s", dev.identity);
	tx.identity = identity;
	tx.profile = p->name;
	tx.how = "reenroll";
	audit = json_pack("{s:s, s:s}", "device", identity, "previous_serial", hex);
	cert = est_issue(r, p, csrc, &tx, audit, &issued);
	json_decref(audit);
	if (!cert)
		goto out;
	log_info("est: device %s re-enrolled, serial %s (was %s)", identity, issued.serial, hex);
	reply_issued(r, cert);
out:
	X509_free(cert);
	OPENSSL_free(der);
	if (csrc)
		ca_csr_free(csrc);
	free(csrc);
	db_device_clear(&dev);
	db_cert_clear(&c);
}

/* --- routing --- */

void cad_est_serve(struct cad_req *r)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(r->req);
	const char *rest = r->path + strlen(PREFIX), *slash = strchr(rest, '/'), *op = rest;
	struct ca_profile *p = NULL;
	int enrol = 0;

	r->action = "est.request";
	if (r->cad->cfg->n_est_profiles == 0) {
		est_error(r, 404, "not-found", "EST is not enabled on this server");
		return;
	}
	if (slash) {
		char label[CAD_NAME_MAX + 1];
		size_t n = (size_t)(slash - rest);
		if (n == 0 || n > CAD_NAME_MAX) {
			est_error(r, 404, "not-found", "no such EST path: %.200s", r->path);
			return;
		}
		memcpy(label, rest, n);
		label[n] = '\0';
		if (!(p = est_profile(r, label))) {
			est_error(r, 404, "not-found", "no EST label \"%.64s\"", label);
			return;
		}
		op = slash + 1;
	}
	if (!strcmp(op, "cacerts") || !strcmp(op, "csrattrs")) {
		r->action = !strcmp(op, "cacerts") ? "est.cacerts" : "est.csrattrs";
		if (m != EVHTTP_REQ_GET) {
			est_error(r, 405, "method-not-allowed", "%s takes GET", op);
			return;
		}
		if (!strcmp(op, "cacerts"))
			cacerts(r, p ? p : r->cad->cfg->est_profiles[0]);
		else
			csrattrs(r, p ? p : est_default(r));
		return;
	}
	if (!strcmp(op, "simpleenroll") || !strcmp(op, "simplereenroll") ||
	    !strcmp(op, "serverkeygen")) {
		enrol = 1;
		r->action = !strcmp(op, "simpleenroll")   ? "est.simpleenroll"
		            : !strcmp(op, "serverkeygen") ? "est.serverkeygen"
		                                          : "est.simplereenroll";
		if (m != EVHTTP_REQ_POST)
			est_error(r, 405, "method-not-allowed", "%s takes POST", op);
		else if (!strcmp(op, "simplereenroll"))
			simplereenroll(r, p);
		else
			simpleenroll(r, p, !strcmp(op, "serverkeygen"), NULL);
	} else if (!strcmp(op, "fullcmc")) {
		est_error(r, 404, "not-supported", "EST %s is not offered", op);
	} else {
		est_error(r, 404, "not-found", "no such EST operation: %.200s", op);
	}
	if (!r->deferred)
		est_finish(r, enrol);
}

/* What every EST request ends with once it is answered (or should have been). */
static void est_finish(struct cad_req *r, int enrol)
{
	if (!r->replied)
		est_error(r, 500, "internal", "the handler gave no answer");
	/* Every refused enrolment is in the audit log. */
	if (enrol && r->status >= 400 && r->status < 500)
		cad_audit_denial(r);
}
