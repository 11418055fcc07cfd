/* Issuance from a PKCS#10 request: parse, check proof of possession, enforce the profile and
 * key profile, then (invariant 2) commit the serial and contents to the database before keyd
 * signs, sign with X509_sign_ctx through the keyd provider, and store the signed DER. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"
#include "cakey.h"
#include "log.h"

#define SERIAL_BYTES 20

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

/* The CRL shard of a serial (hsmca-crld publishes one CRL per shard), from its last bytes,
 * which are random. */
static int32_t crl_shard(const struct cad_authority *a, const uint8_t *serial)
{
	return a->crl_shards > 1 ? (int32_t)(((unsigned)serial[SERIAL_BYTES - 2] << 8 |
	                                      serial[SERIAL_BYTES - 1]) %
	                                     (unsigned)a->crl_shards)
	                         : 0;
}

/* "URI:<base><name>[-<shard>].crl", the X509V3 value of the distribution point, into buf. */
static const char *crl_dp(const struct cad_authority *a, const uint8_t *serial, char *buf, size_t n)
{
	if (a->crl_shards > 1)
		snprintf(buf, n, "URI:%s%s-%d.crl", a->crl_base_url, a->name,
		         (int)crl_shard(a, serial));
	else
		snprintf(buf, n, "URI:%s%s.crl", a->crl_base_url, a->name);
	return buf;
}

/* Build the to-be-signed certificate. */
static X509 *build(const struct cad_profile *p, const struct cad_csr *csrc, const uint8_t *serial,
                   int64_t nb, int64_t na)
{
	struct cad_authority *a = p->authority;
	X509 *cert = X509_new();
	BIGNUM *bn = BN_bin2bn(serial, SERIAL_BYTES, NULL);
	ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	char ku[160] = "critical", eku[160] = "", dp[CAD_PATH_MAX + 96];
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
	    !X509_set_subject_name(cert, cad_csr_subject(csrc)) ||
	    !ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)nb) ||
	    !ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)na) ||
	    !cad_csr_copy_pubkey(csrc, cert))
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
	if (a->crl_base_url[0] &&
	    !add_ext(cert, &ctx, NID_crl_distribution_points, crl_dp(a, serial, dp, sizeof(dp))))
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

static int sign(struct cad *cad, struct cad_authority *a, X509 *cert, char *why, size_t n)
{
	EVP_PKEY *key = cad_authority_key(cad, a);
	EVP_MD_CTX *mctx = key ? EVP_MD_CTX_new() : NULL;
	int ok = mctx && ca_key_sign_init(mctx, key) == 1 && X509_sign_ctx(cert, mctx) > 0;

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
		/* keyd may have restarted or gone: load the key afresh next time. */
		cad_authority_key_failed(cad, a, key);
	}
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(key);
	return ok;
}

/*
 * Group commit. Every issuance commits twice: its reservation (before keyd signs) and the signed
 * certificate with its audit entry, whose chain lock is held through the COMMIT and its flush to
 * disk, so that one runs one request at a time. So a request queues its database work in a
 * group; if no request is working for that group, it leads: it takes what is queued (its own
 * among it) and does it all in one transaction on its own connection (db_cert_reserve_many,
 * db_cert_store_many: one round trip and one flush for all reservations; two round trips and
 * one flush for all stores; each alone when one of them fails), then hands the lead on.
 * Requests that arrive meanwhile make up the next group. Nothing waits for company: a request
 * alone goes at once. Stores have one leader at a time (the chain lock would serialise more);
 * reservations CAD_RESERVE_LEADERS, so that they also overlap when requests are few. Invariant 2
 * holds for each certificate as before (committed before keyd signs it), and no answer is sent
 * before its certificate's commit.
 */
#define GROUP_MAX 32

struct cad_group_job {
	struct cad_group_job *next;
	int done;
};

void cad_group_init(struct cad_group *g, int max_leading)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->head = NULL;
	g->tail = &g->head;
	g->leading = 0;
	g->max_leading = max_leading;
}

void cad_group_destroy(struct cad_group *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

/* Queue job and return when it is done: by this thread as the leader (run over the group,
 * without the lock, on db), or by another. */
static void group_do(struct cad_group *g, struct db *db, struct cad_group_job *job,
                     void (*run)(struct db *db, struct cad_group_job **jobs, size_t n))
{
	struct cad_group_job *jobs[GROUP_MAX];
	size_t n;

	pthread_mutex_lock(&g->mu);
	job->next = NULL;
	job->done = 0;
	*g->tail = job;
	g->tail = &job->next;
	while (!job->done) {
		if (g->leading >= g->max_leading || !g->head) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		g->leading++;
		for (n = 0; g->head && n < GROUP_MAX; n++) {
			jobs[n] = g->head;
			g->head = g->head->next;
		}
		if (!g->head)
			g->tail = &g->head;
		pthread_mutex_unlock(&g->mu);
		run(db, jobs, n);
		pthread_mutex_lock(&g->mu);
		for (size_t i = 0; i < n; i++)
			jobs[i]->done = 1;
		g->leading--;
		pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
}

struct reserve_job {
	struct cad_group_job g; /* first */
	struct db_cert_reservation item;
};

static void run_reserve(struct db *db, struct cad_group_job **jobs, size_t n)
{
	struct db_cert_reservation *items[GROUP_MAX];

	cad_metrics_group(0, n);
	for (size_t i = 0; i < n; i++)
		items[i] = &((struct reserve_job *)jobs[i])->item;
	db_cert_reserve_many(db, items, n);
}

struct store_job {
	struct cad_group_job g; /* first */
	struct db_cert_store item;
};

static void run_store(struct db *db, struct cad_group_job **jobs, size_t n)
{
	struct db_cert_store *items[GROUP_MAX];

	cad_metrics_group(1, n);
	for (size_t i = 0; i < n; i++)
		items[i] = &((struct store_job *)jobs[i])->item;
	db_cert_store_many(db, items, n);
}

X509 *cad_issue_cert(struct cad_req *r, struct cad_profile *p, struct cad_csr *csrc, int64_t days,
                     const struct cad_issue_extra *extra, struct cad_issued *out)
{
	struct cad_authority *a;
	X509 *cert = NULL;
	char why[512], hex[2 * DB_SERIAL_MAX + 1];
	uint8_t serial[SERIAL_BYTES];
	unsigned char *der = NULL;
	struct db_cert_request cr = {0};
	struct db_err err = {0};
	struct db *db;
	json_t *v;
	int64_t now, id = 0;
	int len, attempt, ok = 0;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
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
	case -3:
		cad_reply_error(r, 500, "configuration-error", "%s", why);
		goto out;
	default:
		cad_reply_error(r, 503, "database-unavailable", "%s", why);
		goto out;
	}
	now = (int64_t)time(NULL);
	cr.authority_id = a->db_id;
	cr.profile = p->name;
	cr.subject = csrc->subject;
	cr.subject_len = strlen(csrc->subject);
	cr.sans = csrc->sans;
	cr.n_sans = csrc->n_sans;
	cr.not_before = now;
	cr.not_after = now + days * 86400;
	memcpy(cr.spki_sha256, csrc->spki_sha256, 32);
	cr.requester = r->who.name;
	if (r->auth_cached) { /* checked again where it counts: in the reservation */
		cr.token_sha256 = r->token_sha256;
		cr.token_role = r->who.role;
	}
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
		cr.crl_shard = crl_shard(a, serial);
		if (attempt == 0) {
			struct reserve_job job = {.item = {.req = &cr}};
			group_do(&r->cad->reserve_group, db, &job.g, run_reserve);
			rc = job.item.rc;
			err = job.item.err;
			id = job.item.id;
		} else { /* the rare retry after a serial was taken: alone */
			rc = db_cert_reserve(db, &cr, &id, &err);
		}
		if (rc != DB_ERR_CONFLICT || attempt == 2)
			break;
	}
	if (rc == DB_ERR_STATE) {
		/* A retired authority issues nothing more; a profile an admin switched off neither.
		 * The reservation itself checks both, in the statement that makes it, so a
		 * retirement that committed first always wins; here we only find which it was. */
		int retired = 0, enabled = 1;
		if (db_issuance_allowed(db, a->db_id, p->name, &retired, &enabled, &err) != DB_OK) {
			cad_reply_db_error(r, &err);
			goto out;
		}
		if (!retired && enabled && r->auth_cached) {
			/* The API token or its principal changed since the worker looked it up. */
			r->stale_credentials = 1;
			goto out;
		}
		if (retired)
			cad_deny(r, 409, "authority-retired", a->name,
			         "authority %s of profile %s is retired: it issues no more "
			         "certificates",
			         a->name, p->name);
		else
			cad_deny(r, 409, "profile-disabled", p->name,
			         "profile %s is disabled by an admin", p->name);
		goto out;
	}
	if (rc != DB_OK) {
		if (rc == DB_ERR_INVALID)
			cad_reply_error(r, 400, "name-not-allowed", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	db_serial_to_hex(serial, sizeof(serial), hex);
	cert = build(p, csrc, serial, cr.not_before, cr.not_after);
	if (!cert || !sign(r->cad, a, cert, why, sizeof(why))) {
		struct db_err e2 = {0};
		if (!cert)
			snprintf(why, sizeof(why), "building the certificate failed");
		/* Nothing was signed: say so in the database. */
		if (db_cert_mark_failed(db, a->db_id, serial, sizeof(serial), &e2) != DB_OK)
			log_error("serial %s: could not mark the reservation failed: %s", hex,
			          e2.msg);
		log_error("serial %s: %s", hex, why);
		cad_reply_error(r, 503, "keyd-unavailable", "%s", why);
		goto out;
	}
	len = i2d_X509(cert, &der);
	v = json_pack("{s:s, s:s, s:s}", "profile", p->name, "authority", a->name, "subject",
	              csrc->subject);
	if (v && extra && extra->audit)
		json_object_update(v, extra->audit);
	{
		char *dtext = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		if (len <= 0) {
			rc = err.status = DB_ERR_INVALID;
			snprintf(err.msg, sizeof(err.msg),
			         "serial %s: the certificate does not encode", hex);
		} else if (!extra || !extra->in_tx) {
			struct store_job job = {.item = {.authority_id = a->db_id,
			                                 .serial = serial,
			                                 .serial_len = sizeof(serial),
			                                 .der = der,
			                                 .der_len = (size_t)len}};
			cad_audit_entry(r, hex, "success", dtext, &job.item.audit);
			group_do(&r->cad->store_group, db, &job.g, run_store);
			rc = job.item.rc;
			err = job.item.err;
		} else {
			/* More work in the same transaction (an EST device record): alone. The
			 * audit entry last: it takes the chain's lock, held until the commit. */
			rc = db_begin(db, &err);
			if (rc == DB_OK)
				rc = db_cert_mark_issued(db, a->db_id, serial, sizeof(serial), der,
				                         (size_t)len, &err);
			if (rc == DB_OK)
				rc = extra->in_tx(r, db, id, extra->arg, &err);
			if (rc == DB_OK)
				rc = cad_audit_commit(r, hex, "success", dtext, &err);
			if (rc != DB_OK)
				db_rollback(db); /* a no-op when the transaction is over */
		}
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
	snprintf(out->serial, sizeof(out->serial), "%s", hex);
	out->id = id;
	out->not_before = cr.not_before;
	out->not_after = cr.not_after;
	ok = 1;
out:
	OPENSSL_free(der);
	if (!ok) {
		X509_free(cert);
		cert = NULL;
	}
	return cert;
}

void cad_h_cert_issue(struct cad_req *r)
{
	static const char *const fields[] = {"profile", "csr", "validity_days", NULL};
	json_t *body = cad_body_object(r, fields), *v, *chain;
	const char *pname, *csr;
	struct cad_profile *p;
	struct cad_authority *a;
	struct cad_csr *csrc = NULL;
	struct cad_issued issued;
	const char *error;
	X509 *cert = NULL;
	char why[512], t1[32], t2[32];
	char *pem = NULL;
	json_int_t days;

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
		if (!strstr(list, needle) && r->auth_cached) {
			r->stale_credentials = 1; /* ask again: the grant may be new */
			goto out;
		}
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
	csrc = calloc(1, sizeof(*csrc));
	if (!csrc) {
		cad_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (cad_csr_check(p, csr, csrc, &error, why, sizeof(why)) != 0) {
		cad_reply_error(r, 400, error, "%s", why);
		goto out;
	}
	if (!(cert = cad_issue_cert(r, p, csrc, (int64_t)days, NULL, &issued)))
		goto out;
	a = p->authority;
	pem = pem_of(cert);
	chain = json_array();
	for (int i = -1; i < sk_X509_num(a->chain); i++) {
		char *c = pem_of(i < 0 ? a->cert : sk_X509_value(a->chain, i));
		json_array_append_new(chain, json_string(c ? c : ""));
		free(c);
	}
	cad_reply_json(r, 201,
	               json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:o}", "serial",
	                         issued.serial, "profile", p->name, "authority", a->name, "subject",
	                         csrc->subject, "not_before",
	                         cad_time_text(issued.not_before, t1, sizeof(t1)), "not_after",
	                         cad_time_text(issued.not_after, t2, sizeof(t2)), "certificate",
	                         pem ? pem : "", "chain", chain));
out:
	free(pem);
	X509_free(cert);
	if (csrc)
		cad_csr_free(csrc);
	free(csrc);
	json_decref(body);
}
