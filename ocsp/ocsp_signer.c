/* The signer pool: requests that a pre-signed answer cannot serve (a nonce, several
 * certificates, a certificate not cached yet, a SHA-256 CertID seen for the first time, an
 * answer past its nextUpdate) are signed here, off the HTTP threads, through keyd. The queue
 * is bounded: when it is full the request gets tryLater at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ocsp.h>

#include "log.h"
#include "ocsp_internal.h"

struct ocsp_job {
	struct ocsp_job *next;
	int use_nonce, keep_alive, head_only;
	ocsp_job_done done;
	void *arg;
	size_t len;
	uint8_t der[];
};

struct ocsp_signer {
	pthread_t th[64];
	int n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ocsp_job *head, *tail;
	int queued, stop;
};

#define HTTP_MAX (OCSP_REQ_MAX_DER * 4 + 16384)

static void answer_error(struct ocsp_job *j, enum ocsp_error e)
{
	uint8_t buf[512];
	size_t n = ocsp_http_error(e, j->keep_alive, buf, sizeof(buf));
	uint8_t *out = malloc(n);

	if (out)
		memcpy(out, buf, n);
	j->done(j->arg, out, out ? n : 0);
}

static void run(struct ocspd *d, struct db **db, struct ocsp_job *j)
{
	struct ocsp_single singles[OCSP_REQ_MAX_CERTS];
	struct ocsp_req req;
	int ca = -1, delegated = 0, store = -1;
	int64_t now = ocsp_now(), validity = 0;
	struct ocsp_answer *a = NULL;
	uint8_t *der = NULL, *http = NULL;
	size_t der_len, n;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	enum db_cert_status st0 = DB_CERT_ISSUED;
	int64_t rev0 = 0;
	int reason0 = -1;
	char err[512];

	if (ocsp_req_parse(j->der, j->len, &req) != OCSP_REQ_OK) {
		answer_error(j, OCSP_MALFORMED);
		return;
	}
	for (size_t i = 0; i < req.n_certs; i++) {
		const struct ocsp_certid *id = &req.certs[i];
		struct ocsp_single *s = &singles[i];
		struct ocsp_entry *e;
		int c = ocsp_ca_match(d, id), found = 0, fresh = 0;
		enum db_cert_status st = DB_CERT_FAILED;

		if (c < 0 || (ca >= 0 && c != ca)) {
			answer_error(j, OCSP_UNAUTHORIZED);
			return;
		}
		ca = c;
		memset(s, 0, sizeof(*s));
		s->certid_der = id->der;
		s->certid_len = id->der_len;
		s->reason = -1;
		if (id->serial && id->serial_len <= DB_SERIAL_MAX) {
			pthread_rwlock_rdlock(&d->cache.lock);
			e = ocsp_cache_find(&d->cache, ca, id->serial, id->serial_len);
			if (e) {
				found = 1;
				st = e->status;
				s->revoked_at = e->revoked_at;
				s->reason = e->reason;
				if (req.n_certs == 1 && !j->use_nonce &&
				    id->hash <= OCSP_HASH_SHA256 && !e->ans[id->hash])
					store = (int)id->hash;
			}
			pthread_rwlock_unlock(&d->cache.lock);
			if (!found) {
				/* Not cached: maybe issued a moment ago. Ask the database. */
				struct db_cert c = {0};
				struct db_err derr = {0};
				enum db_status rc = DB_ERR_UNAVAILABLE;
				if (!*db && db_connect(d->cfg.database, db, &derr) != DB_OK)
					*db = NULL;
				/* a connection broken by a server restart is remade by the next
				 * statement: one retry */
				for (int t = 0;
				     t < 2 && *db && (t == 0 || rc == DB_ERR_UNAVAILABLE); t++)
					rc = db_cert_lookup(*db, d->cas[ca].db_id, id->serial,
					                    id->serial_len, &c, &derr);
				if (rc == DB_OK) {
					fresh = 1; /* read from the database just now */
					st = c.status;
					s->revoked_at = c.revoked_at;
					s->reason = c.revocation_reason;
					if (st == DB_CERT_ISSUED || st == DB_CERT_REVOKED ||
					    st == DB_CERT_HOLD)
						ocsp_sync_adopt(d, d->cas[ca].db_id, id->serial,
						                id->serial_len);
				}
				db_cert_clear(&c);
				if (rc != DB_OK && rc != DB_ERR_NOT_FOUND) {
					log_debug("lookup for a request: %s", derr.msg);
					answer_error(j, OCSP_TRY_LATER);
					return;
				}
			}
		}
		s->status = ocsp_cert_status(st);
		if (s->status != V_OCSP_CERTSTATUS_REVOKED) {
			s->revoked_at = 0;
			s->reason = -1;
		}
		/* "good" is only ever signed from the database itself or from a cache that is in
		 * step with it */
		if (s->status == V_OCSP_CERTSTATUS_GOOD && !fresh && !atomic_load(&d->synced)) {
			answer_error(j, OCSP_TRY_LATER);
			return;
		}
		if (i == 0) {
			st0 = st;
			rev0 = s->revoked_at;
			reason0 = s->reason;
		}
	}
	if (!atomic_load(&d->keyd_up)) {
		answer_error(j, OCSP_TRY_LATER);
		return;
	}
	for (size_t i = 0; i < req.n_certs; i++)
		if (singles[i].status == V_OCSP_CERTSTATUS_UNKNOWN) {
			if (ocsp_unknown_allowed(d))
				break;
			/* Beyond the budget for serials nobody issued: the unsigned
			 * "unauthorized" of RFC 5019 2.2.3, which costs keyd nothing. */
			if (atomic_fetch_add(&d->unknown_refused, 1) % 1000 == 0)
				log_warn("unknown serials beyond %d signatures a second "
				         "(limits.unknown_signatures_per_second): answering "
				         "unauthorized (%lld so far)",
				         d->cfg.unknown_per_second,
				         (long long)atomic_load(&d->unknown_refused));
			answer_error(j, OCSP_UNAUTHORIZED);
			return;
		}
	pthread_rwlock_rdlock(&d->cache.lock);
	key = d->cas[ca].signer_key;
	cert = d->cas[ca].signer_cert;
	delegated = d->cas[ca].delegated;
	validity = d->cas[ca].validity;
	if (key) {
		EVP_PKEY_up_ref(key);
		X509_up_ref(cert);
	}
	pthread_rwlock_unlock(&d->cache.lock);
	if (!key ||
	    ocsp_sign(key, cert, delegated, singles, req.n_certs,
	              j->use_nonce && req.has_nonce ? req.nonce_ext : NULL, req.nonce_ext_len, now,
	              now + validity, &der, &der_len, err, sizeof(err)) != 0) {
		if (key) {
			atomic_store(&d->keyd_up, 0);
			log_warn("authority %s: %s", d->cas[ca].name, err);
		}
		answer_error(j, OCSP_TRY_LATER);
		goto out;
	}
	atomic_store(&d->keyd_up, 1);
	atomic_fetch_add(&d->signed_count, 1);
	a = ocsp_answer_new(der, der_len, now, now + validity);
	http = a ? malloc(a->head_len + a->der_len + 256) : NULL;
	n = http ? ocsp_http_answer(a, now, j->use_nonce && req.has_nonce, j->keep_alive,
	                            j->head_only, http, a->head_len + a->der_len + 256)
	         : 0;
	if (!n) {
		free(http);
		answer_error(j, OCSP_INTERNAL);
		goto out;
	}
	j->done(j->arg, http, n);
	if (store >= 0) {
		/* Keep it for the next request with this CertID hash, if nothing changed. */
		const struct ocsp_certid *id = &req.certs[0];
		pthread_rwlock_wrlock(&d->cache.lock);
		struct ocsp_entry *e = ocsp_cache_find(&d->cache, ca, id->serial, id->serial_len);
		if (e && !e->ans[store] && e->status == st0 && e->revoked_at == rev0 &&
		    e->reason == reason0) {
			e->ans[store] = a;
			a = NULL;
		}
		pthread_rwlock_unlock(&d->cache.lock);
	}
out:
	free(a);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	X509_free(cert);
}

static void *signer_main(void *arg)
{
	struct ocspd *d = arg;
	struct ocsp_signer *s = d->signer;
	struct db *db = NULL;

	for (;;) {
		struct ocsp_job *j;
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stop && !s->head) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		j = s->head;
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		pthread_mutex_unlock(&s->mu);
		run(d, &db, j);
		free(j);
	}
	db_close(db);
	return NULL;
}

int ocsp_signer_submit(struct ocspd *d, const uint8_t *der, size_t der_len, int use_nonce,
                       int keep_alive, int head_only, ocsp_job_done done, void *arg)
{
	struct ocsp_signer *s = d->signer;
	struct ocsp_job *j;

	pthread_mutex_lock(&s->mu);
	if (s->queued >= d->cfg.sign_queue || s->stop) {
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	s->queued++;
	pthread_mutex_unlock(&s->mu);
	j = malloc(sizeof(*j) + der_len);
	if (!j) {
		pthread_mutex_lock(&s->mu);
		s->queued--;
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	j->next = NULL;
	j->use_nonce = use_nonce;
	j->keep_alive = keep_alive;
	j->head_only = head_only;
	j->done = done;
	j->arg = arg;
	j->len = der_len;
	memcpy(j->der, der, der_len);
	pthread_mutex_lock(&s->mu);
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int ocsp_signer_start(struct ocspd *d, char *err, size_t errsz)
{
	struct ocsp_signer *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	d->signer = s;
	for (int i = 0; i < d->cfg.signers && i < 64; i++) {
		if (pthread_create(&s->th[i], NULL, signer_main, d) != 0) {
			snprintf(err, errsz, "cannot start signer threads");
			return -1;
		}
		s->n++;
	}
	return 0;
}

void ocsp_signer_stop(struct ocspd *d)
{
	struct ocsp_signer *s = d->signer;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->n; i++)
		pthread_join(s->th[i], NULL);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	d->signer = NULL;
}
