/* The database thread: it loads the authorities and their OCSP settings, starts warm from the
 * shared copy of responses (a page at a time, while the HTTP workers already serve what is
 * placed), pre-signs one response per certificate, follows revocations
 * (LISTEN hsmca_revocation) and new certificates, re-signs answers before refresh_percent of
 * their validity has passed, and after losing the database reads every status again before
 * it signs anything new. Only this thread (and the signers, for SHA-256 variants and freshly
 * found certificates) write the cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "keyd_client.h"
#include "log.h"
#include "ocsp_internal.h"

#define ADOPT_MAX 1024
#define STATUS_PAGE 5000
#define WARM_PAGE 5000
#define REFRESH_BATCH 2000

struct adopt {
	int32_t authority_id;
	uint8_t serial[DB_SERIAL_MAX];
	size_t len;
};

struct ocsp_sync {
	pthread_t th;
	struct db *rdb, *pdb; /* pdb == rdb when no primary_database is configured */
	int listening;        /* LISTEN works on pdb */
	int writable;         /* the shared copy may be written through pdb */
	int64_t max_id;
	int64_t last_poll_ms, last_settings_ms, last_keyd_ms;
	struct keyd_client
	    *keyd; /* for the health probe only; signatures go through the provider */
	/* the warm start: how far the shared copy has been read, and what it brought */
	struct db_ocsp_response_key warm_at;
	int warm_done;
	size_t warm_used;
	pthread_mutex_t mu;
	struct adopt adopts[ADOPT_MAX];
	size_t n_adopts;
};

static const char *variant_hash(int v)
{
	return v ? "sha256" : "sha1";
}

static void ca_hashes(struct ocsp_ca *ca)
{
	const EVP_MD *mds[4] = {EVP_sha1(), EVP_sha256(), EVP_sha384(), EVP_sha512()};
	unsigned char *name = NULL;
	int nlen = i2d_X509_NAME(X509_get_subject_name(ca->cert), &name);
	const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(ca->cert);

	for (int i = 0; i < 4; i++) {
		EVP_Digest(name, (size_t)nlen, ca->name_hash[i], NULL, mds[i], NULL);
		EVP_Digest(key->data, (size_t)key->length, ca->key_hash[i], NULL, mds[i], NULL);
	}
	OPENSSL_free(name);
}

/* Write a freshly signed answer to the shared copy; failures only cost warmth. */
static void share(struct ocspd *d, int ca, int variant, const struct ocsp_entry *st,
                  const struct ocsp_answer *a)
{
	struct ocsp_sync *s = d->sync;
	struct db_ocsp_response r = {0};
	struct db_err err = {0};

	if (!s->writable || !d->cfg.share_responses || !s->pdb)
		return;
	r.authority_id = d->cas[ca].db_id;
	memcpy(r.serial, st->serial, st->serial_len);
	r.serial_len = st->serial_len;
	snprintf(r.cert_id_hash, sizeof(r.cert_id_hash), "%s", variant_hash(variant));
	r.status = st->status;
	r.revoked_at = st->revoked_at;
	r.revocation_reason = st->reason;
	pthread_rwlock_rdlock(&d->cache.lock);
	snprintf(r.signer_key_label, sizeof(r.signer_key_label), "%s", d->cas[ca].signer_label);
	pthread_rwlock_unlock(&d->cache.lock);
	r.this_update = a->this_update;
	r.next_update = a->next_update;
	r.der = (uint8_t *)ocsp_answer_der(a);
	r.der_len = a->der_len;
	if (db_ocsp_response_put(s->pdb, &r, &err) != DB_OK)
		log_debug("shared copy not written: %s", err.msg);
}

/* Many answers signed in a row (start-up, refresh) are stored in one transaction: one commit
 * (one fsync) for the batch instead of one per answer. A failure only costs warmth. */
static int batch_begin(struct ocspd *d)
{
	struct ocsp_sync *s = d->sync;
	struct db_err err = {0};

	if (!s->writable || !d->cfg.share_responses || !s->pdb)
		return 0;
	return db_begin(s->pdb, &err) == DB_OK;
}

static void batch_end(struct ocspd *d, int open)
{
	struct db_err err = {0};

	if (open && d->sync->pdb && db_commit(d->sync->pdb, &err) != DB_OK)
		log_debug("shared copy not written: %s", err.msg);
}

/* Bring a certificate's entry to the state given, re-signing every variant it has (at least
 * SHA-1). force: re-sign even when the state is unchanged (refresh, new signer). When a
 * signature fails on a state change, the stale answers are dropped so that nothing old is
 * served for a revoked certificate: requests then get tryLater until signing works again. */
static void apply(struct ocspd *d, int ca, const uint8_t *serial, size_t len,
                  enum db_cert_status st, int64_t revoked_at, int reason, int force)
{
	struct ocsp_answer *fresh[OCSP_VARIANTS] = {0}, *old[OCSP_VARIANTS] = {0};
	int have[OCSP_VARIANTS] = {1, 0}, placed[OCSP_VARIANTS] = {0}, changed = 1;
	struct ocsp_entry *e, snap = {0};
	int64_t now = ocsp_now();
	char err[512];

	if (st != DB_CERT_ISSUED && st != DB_CERT_REVOKED && st != DB_CERT_HOLD)
		return;
	if (st == DB_CERT_ISSUED)
		revoked_at = 0, reason = -1;
	pthread_rwlock_rdlock(&d->cache.lock);
	e = ocsp_cache_find(&d->cache, ca, serial, len);
	if (e) {
		changed = e->status != st || e->revoked_at != revoked_at || e->reason != reason;
		have[1] = e->ans[1] != NULL;
	}
	pthread_rwlock_unlock(&d->cache.lock);
	if (e && !changed && !force)
		return;
	for (int v = 0; v < OCSP_VARIANTS; v++) {
		if (!have[v])
			continue;
		fresh[v] = ocsp_presign(d, ca, v, serial, len, st, revoked_at, reason, now, err,
		                        sizeof(err));
		if (!fresh[v])
			log_warn("authority %s: cannot sign the response for a certificate: %s",
			         d->cas[ca].name, err);
	}
	if (!changed && !fresh[0] && !fresh[1])
		return; /* a failed refresh keeps the answers until their nextUpdate */
	pthread_rwlock_wrlock(&d->cache.lock);
	e = ocsp_cache_find(&d->cache, ca, serial, len);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (e) {
			e->ca = ca;
			e->serial_len = (uint8_t)len;
			memcpy(e->serial, serial, len);
			if (ocsp_cache_insert(&d->cache, e) != 0) {
				free(e);
				e = NULL;
			}
		}
	}
	if (e) {
		e->status = st;
		e->revoked_at = revoked_at;
		e->reason = reason;
		for (int v = 0; v < OCSP_VARIANTS; v++) {
			if (fresh[v] || changed) {
				old[v] = e->ans[v];
				e->ans[v] = fresh[v];
				placed[v] = fresh[v] != NULL;
				fresh[v] = NULL;
			}
		}
		snap = *e;
	}
	pthread_rwlock_unlock(&d->cache.lock);
	for (int v = 0; v < OCSP_VARIANTS; v++) {
		free(old[v]);
		free(fresh[v]);
		/* only this thread frees answers, so what it placed is still there */
		if (placed[v])
			share(d, ca, v, &snap, snap.ans[v]);
	}
}

static int ca_index(struct ocspd *d, int32_t db_id)
{
	int n = atomic_load(&d->n_cas);

	for (int i = 0; i < n; i++)
		if (d->cas[i].db_id == db_id)
			return i;
	return -1;
}

/* Authorities and their settings: new ones are added, settings of known ones re-read; a
 * changed signer re-signs that authority's answers. DB_OK or the database's failure. */
static enum db_status load_authorities(struct ocspd *d, struct db *db)
{
	struct db_authority *list = NULL;
	struct db_err err = {0};
	enum db_status rc;
	size_t n = 0;
	char e[512];

	rc = db_authority_list(db, &list, &n, &err);
	if (rc != DB_OK) {
		log_warn("reading authorities: %s", err.msg);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		struct db_authority_settings set;
		int idx = ca_index(d, list[i].id), resign = 0;
		struct ocsp_ca *ca;
		const char *label;

		if ((rc = db_authority_settings_get(db, list[i].id, &set, &err)) != DB_OK) {
			log_warn("reading the settings of authority %s: %s", list[i].name, err.msg);
			goto out;
		}
		if (idx < 0) {
			struct db_authority full = {0};
			const unsigned char *p;
			idx = atomic_load(&d->n_cas);
			if (idx >= OCSP_MAX_CAS) {
				log_warn("authority %s not served: at most %d authorities",
				         list[i].name, OCSP_MAX_CAS);
				continue;
			}
			if ((rc = db_authority_find(db, list[i].name, &full, &err)) != DB_OK) {
				log_warn("reading authority %s: %s", list[i].name, err.msg);
				goto out;
			}
			ca = &d->cas[idx];
			memset(ca, 0, sizeof(*ca));
			p = full.cert_der;
			ca->cert = d2i_X509(NULL, &p, (long)full.cert_der_len);
			if (!ca->cert) {
				log_warn("authority %s: its certificate does not parse; not served",
				         list[i].name);
				db_authority_clear(&full);
				ERR_clear_error();
				continue;
			}
			ca->db_id = full.id;
			snprintf(ca->name, sizeof(ca->name), "%s", full.name);
			snprintf(ca->key_label, sizeof(ca->key_label), "%s", full.key_label);
			db_authority_clear(&full);
			ca_hashes(ca);
			pthread_mutex_init(&ca->bucket_mu, NULL);
			ca->validity = set.ocsp_validity_seconds;
			ca->nonce_rate = set.ocsp_nonce_rate_limit;
			ca->tokens = (double)set.ocsp_nonce_rate_limit;
			ca->bucket_ms = ocsp_now_ms();
			atomic_store(&d->n_cas, idx + 1);
			log_info("serving authority %s (id %d)", ca->name, (int)ca->db_id);
		}
		ca = &d->cas[idx];
		pthread_mutex_lock(&ca->bucket_mu);
		ca->nonce_rate = set.ocsp_nonce_rate_limit;
		pthread_mutex_unlock(&ca->bucket_mu);
		if (ca->validity != set.ocsp_validity_seconds) {
			pthread_rwlock_wrlock(&d->cache.lock);
			ca->validity = set.ocsp_validity_seconds;
			pthread_rwlock_unlock(&d->cache.lock);
			resign = 1;
		}
		label = set.ocsp_signer_key_label[0] ? set.ocsp_signer_key_label : ca->key_label;
		snprintf(ca->want_label, sizeof(ca->want_label), "%s", label);
		if (!ca->signer_key || strcmp(label, ca->signer_label)) {
			if (ocsp_ca_load_signer(d, ca, label, e, sizeof(e)) != 0)
				log_warn("authority %s: signer %s not loaded: %s", ca->name, label,
				         e);
			else
				resign = ca->signer_key != NULL;
		}
		if (resign && atomic_load(&d->loaded)) {
			/* re-sign this authority's answers on the next refresh pass */
			pthread_rwlock_wrlock(&d->cache.lock);
			for (size_t k = 0; k < d->cache.cap; k++) {
				struct ocsp_entry *en = d->cache.slots[k];
				for (int v = 0; en && en->ca == idx && v < OCSP_VARIANTS; v++)
					if (en->ans[v])
						en->ans[v]->this_update = 0; /* due at once */
			}
			pthread_rwlock_unlock(&d->cache.lock);
		}
	}
	rc = DB_OK;
out:
	db_authority_list_free(list, n);
	return rc;
}

/* One certificate, as the database has it now. */
static enum db_status follow(struct ocspd *d, struct db *db, int32_t authority_id,
                             const uint8_t *serial, size_t len)
{
	struct db_cert c = {0};
	struct db_err err = {0};
	enum db_status rc;
	int ca = ca_index(d, authority_id);

	if (ca < 0)
		return DB_OK;
	rc = db_cert_lookup(db, authority_id, serial, len, &c, &err);
	if (rc == DB_OK)
		apply(d, ca, serial, len, c.status, c.revoked_at, c.revocation_reason, 0);
	else if (rc != DB_ERR_NOT_FOUND)
		log_warn("%s", err.msg);
	db_cert_clear(&c);
	return rc == DB_ERR_NOT_FOUND ? DB_OK : rc;
}

/* Follow the revocations announced so far, without waiting: between the pages of a long read
 * (a warm start, every status after a restart), so that none waits for the whole read. DB_OK,
 * or DB_ERR_UNAVAILABLE when the database is gone. */
static enum db_status drain(struct ocspd *d)
{
	struct ocsp_sync *s = d->sync;

	while (s->listening) {
		struct db_revocation_event ev;
		struct db_err err = {0};
		int got = 0;
		enum db_status rc = db_revocation_next(s->pdb, 0, &ev, &got, &err);
		if (rc == DB_ERR_UNAVAILABLE) {
			log_warn("%s", err.msg);
			return rc;
		}
		if (rc != DB_OK || !got)
			break;
		if (follow(d, s->pdb, ev.authority_id, ev.serial, ev.serial_len) ==
		    DB_ERR_UNAVAILABLE)
			return DB_ERR_UNAVAILABLE;
	}
	return DB_OK;
}

/* Place one page of the shared copy: the stored responses that still hold, signed by today's
 * signer and not yet due for refresh. An entry already there (a revocation followed
 * meanwhile, a certificate a signer found) only takes an answer that says what it says. */
static size_t warm_place(struct ocspd *d, struct db_ocsp_response *rows, size_t n, int64_t now)
{
	size_t used = 0;

	pthread_rwlock_wrlock(&d->cache.lock);
	for (size_t i = 0; i < n; i++) {
		struct db_ocsp_response *r = &rows[i];
		int ca = ca_index(d, r->authority_id), v = !strcmp(r->cert_id_hash, "sha256");
		struct ocsp_entry *e;
		int64_t due;
		if (ca < 0 || strcmp(r->signer_key_label, d->cas[ca].signer_label) ||
		    r->next_update - r->this_update != d->cas[ca].validity)
			continue;
		due = r->this_update + d->cas[ca].validity * d->cfg.refresh_fraction / 100;
		if (due <= now)
			continue;
		e = ocsp_cache_find(&d->cache, ca, r->serial, r->serial_len);
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e)
				break;
			e->ca = ca;
			e->serial_len = (uint8_t)r->serial_len;
			memcpy(e->serial, r->serial, r->serial_len);
			e->status = r->status;
			e->revoked_at = r->revoked_at;
			e->reason = r->revocation_reason;
			if (ocsp_cache_insert(&d->cache, e) != 0) {
				free(e);
				break;
			}
		} else if (e->status != r->status || e->revoked_at != r->revoked_at ||
		           e->reason != r->revocation_reason) {
			continue;
		}
		if (!e->ans[v]) {
			e->ans[v] =
			    ocsp_answer_new(r->der, r->der_len, r->this_update, r->next_update);
			used += e->ans[v] != NULL;
		}
	}
	pthread_rwlock_unlock(&d->cache.lock);
	return used;
}

/* Start warm from the shared copy, WARM_PAGE rows at a time, each page served as soon as it
 * is placed (one read of the whole copy held every answer back until its end, and its result
 * left the heap fragmented). Where the copy was left off is kept: after losing the database
 * the read goes on from there. DB_OK (also when the copy cannot be used: the start is then
 * only colder) or DB_ERR_UNAVAILABLE. */
static enum db_status warm(struct ocspd *d, struct db *db)
{
	struct ocsp_sync *s = d->sync;

	while (!s->warm_done && !atomic_load(&d->stopping)) {
		struct db_ocsp_response *rows = NULL;
		struct db_err err = {0};
		enum db_status rc;
		size_t n = 0;
		int64_t now = ocsp_now();

		rc = db_ocsp_responses_page(db, now, &s->warm_at, WARM_PAGE, &rows, &n, &err);
		if (rc == DB_ERR_UNAVAILABLE) {
			log_warn("warm start interrupted: %s", err.msg);
			return rc;
		}
		if (rc != DB_OK) {
			log_warn("no warm start: %s", err.msg);
			s->warm_done = 1;
			break;
		}
		s->warm_used += warm_place(d, rows, n, now);
		db_ocsp_responses_free(rows, n);
		if (n < WARM_PAGE)
			s->warm_done = 1;
		/* revocations announced meanwhile are not left waiting for the whole copy */
		if ((rc = drain(d)) != DB_OK)
			return rc;
	}
	if (s->warm_done)
		log_info("warm start: %zu stored responses reused", s->warm_used);
	return DB_OK;
}

/* Every certificate with id > after (0: all of them), brought into the cache. */
static enum db_status read_statuses(struct ocspd *d, struct db *db, int64_t after)
{
	struct db_err err = {0};

	for (;;) {
		struct db_ocsp_status *rows = NULL;
		size_t n = 0;
		enum db_status rc = db_ocsp_status_page(db, after, STATUS_PAGE, &rows, &n, &err);
		int batch;
		if (rc != DB_OK) {
			log_warn("%s", err.msg);
			return rc;
		}
		batch = n > 1 && batch_begin(d);
		for (size_t i = 0; i < n; i++) {
			struct db_ocsp_status *r = &rows[i];
			int ca = ca_index(d, r->authority_id);
			if (ca >= 0)
				apply(d, ca, r->serial, r->serial_len, r->status, r->revoked_at,
				      r->revocation_reason, 0);
			if (r->id > d->sync->max_id)
				d->sync->max_id = r->id;
			after = r->id;
		}
		batch_end(d, batch);
		free(rows);
		if (n < STATUS_PAGE)
			return DB_OK;
		if ((rc = drain(d)) != DB_OK)
			return rc;
	}
}

struct due {
	int ca;
	uint8_t serial[DB_SERIAL_MAX];
	size_t len;
	enum db_cert_status st;
	int64_t revoked_at;
	int reason;
};

/* Re-sign what is due (or has no answer since a failed signature). */
static void refresh(struct ocspd *d)
{
	static struct due due[REFRESH_BATCH];
	int64_t now = ocsp_now();
	size_t n = 0;
	int batch;

	pthread_rwlock_rdlock(&d->cache.lock);
	for (size_t i = 0; i < d->cache.cap && n < REFRESH_BATCH; i++) {
		struct ocsp_entry *e = d->cache.slots[i];
		int64_t window;
		int need = 0;
		if (!e)
			continue;
		window = d->cas[e->ca].validity * d->cfg.refresh_fraction / 100;
		for (int v = 0; v < OCSP_VARIANTS; v++)
			if (e->ans[v] && e->ans[v]->this_update + window <= now)
				need = 1;
		if (!e->ans[0])
			need = 1;
		if (!need)
			continue;
		due[n].ca = e->ca;
		memcpy(due[n].serial, e->serial, e->serial_len);
		due[n].len = e->serial_len;
		due[n].st = e->status;
		due[n].revoked_at = e->revoked_at;
		due[n].reason = e->reason;
		n++;
	}
	pthread_rwlock_unlock(&d->cache.lock);
	batch = n > 1 && batch_begin(d);
	for (size_t i = 0; i < n && !atomic_load(&d->stopping); i++)
		apply(d, due[i].ca, due[i].serial, due[i].len, due[i].st, due[i].revoked_at,
		      due[i].reason, 1);
	batch_end(d, batch);
	if (n)
		log_debug("refreshed %zu responses", n);
}

static void disconnect(struct ocsp_sync *s)
{
	if (s->pdb != s->rdb)
		db_close(s->pdb);
	db_close(s->rdb);
	s->pdb = s->rdb = NULL;
}

static enum db_status connect_all(struct ocspd *d)
{
	struct ocsp_sync *s = d->sync;
	struct db_err err = {0};
	enum db_status rc;
	int standby = 0;

	if ((rc = db_connect(d->cfg.database, &s->rdb, &err)) != DB_OK ||
	    (rc = db_in_recovery(s->rdb, &standby, &err)) != DB_OK)
		goto fail;
	if (d->cfg.primary_database[0]) {
		if ((rc = db_connect(d->cfg.primary_database, &s->pdb, &err)) != DB_OK)
			goto fail;
		s->listening = s->writable = 1;
	} else {
		s->pdb = s->rdb;
		s->listening = s->writable = !standby;
		if (standby)
			log_warn(
			    "the database is a standby and no primary_database is configured: "
			    "revocations are found by reading every status each second, and the "
			    "shared response copy is not written");
	}
	if (s->listening && (rc = db_revocations_listen(s->pdb, &err)) != DB_OK)
		goto fail;
	return DB_OK;
fail:
	log_warn("database: %s", err.msg);
	disconnect(s);
	return rc;
}

static void sleep_ms(struct ocspd *d, int ms)
{
	for (int i = 0; i < ms / 50 && !atomic_load(&d->stopping); i++)
		usleep(50000);
}

static void lost(struct ocspd *d, const char *why)
{
	if (atomic_load(&d->db_up))
		log_warn("lost the database (%s): serving cached responses until their nextUpdate; "
		         "nothing new is signed until every status is read again",
		         why);
	atomic_store(&d->db_up, 0);
	atomic_store(&d->synced, 0);
	atomic_store(&d->resyncing, 0); /* unreachable again: the cached answers are all there is */
	disconnect(d->sync);
}

/* Is keyd there? Signers skip keyd while it is not (tryLater at once instead of waiting for
 * the client's timeout); a failed signature also marks it down until the next probe. */
static void probe_keyd(struct ocspd *d)
{
	struct ocsp_sync *s = d->sync;
	struct keyd_err err;
	uint16_t version;
	int up = s->keyd && keyd_client_hello(s->keyd, &version, &err) == 0;
	int was = atomic_load(&d->keyd_up);

	s->last_keyd_ms = ocsp_now_ms();
	if (up != was)
		log_info("keyd is %s", up ? "reachable" : "unreachable");
	atomic_store(&d->keyd_up, up);
	if (up && !was) {
		/* back: authorities whose signer could not be loaded meanwhile (else the settings
		 * pass every 10 s retries them) */
		int n = atomic_load(&d->n_cas);
		for (int i = 0; i < n; i++) {
			char e[512];
			if (!d->cas[i].signer_key && d->cas[i].want_label[0] &&
			    ocsp_ca_load_signer(d, &d->cas[i], d->cas[i].want_label, e, sizeof(e)))
				log_warn("authority %s: %s", d->cas[i].name, e);
		}
	}
}

static void *sync_main(void *arg)
{
	struct ocspd *d = arg;
	struct ocsp_sync *s = d->sync;

	s->keyd = keyd_client_new(NULL, 1000);
	probe_keyd(d);
	while (!atomic_load(&d->stopping)) {
		struct db_revocation_event ev;
		struct db_err err = {0};
		enum db_status rc;
		int got = 0;
		int64_t now;

		if (!s->rdb) {
			if (connect_all(d) != DB_OK) {
				sleep_ms(d, 1000);
				continue;
			}
			/* (Re)synchronise: authorities, warm start once, then every status. */
			if (atomic_load(&d->loaded))
				atomic_store(&d->resyncing, 1);
			if (load_authorities(d, s->rdb) != DB_OK) {
				lost(d, "reading authorities");
				continue;
			}
			/* Serve from here on: what the warm start brings is current as it is
			 * placed, and the signers look up anything not cached yet in the
			 * database themselves while the shared copy and then every certificate
			 * are read (which takes a while for a large database). /health says
			 * so: the database up, not yet in step. */
			atomic_store(&d->db_up, 1);
			atomic_store(&d->loaded, 1);
			if (warm(d, s->rdb) != DB_OK) {
				lost(d, "reading the shared response copy");
				continue;
			}
			s->max_id = 0;
			if (read_statuses(d, s->rdb, 0) != DB_OK) {
				lost(d, "reading statuses");
				continue;
			}
			atomic_store(&d->loaded, 1);
			atomic_store(&d->db_up, 1);
			atomic_store(&d->synced, 1);
			atomic_store(&d->resyncing, 0);
			s->last_poll_ms = s->last_settings_ms = ocsp_now_ms();
			log_info("in step with the database: %zu certificates cached",
			         d->cache.count);
		}
		if (s->listening) {
			rc = db_revocation_next(s->pdb, 100, &ev, &got, &err);
			if (rc == DB_ERR_UNAVAILABLE) {
				lost(d, err.msg);
				continue;
			}
			if (rc == DB_OK && got &&
			    follow(d, s->pdb, ev.authority_id, ev.serial, ev.serial_len) ==
			        DB_ERR_UNAVAILABLE) {
				lost(d, "following a revocation");
				continue;
			}
			if (got)
				continue; /* drain announcements first */
		} else {
			sleep_ms(d, 100);
		}
		for (;;) {
			struct adopt a;
			int have = 0;
			pthread_mutex_lock(&s->mu);
			if (s->n_adopts) {
				a = s->adopts[--s->n_adopts];
				have = 1;
			}
			pthread_mutex_unlock(&s->mu);
			if (!have)
				break;
			if (follow(d, s->pdb, a.authority_id, a.serial, a.len) ==
			    DB_ERR_UNAVAILABLE)
				break;
		}
		now = ocsp_now_ms();
		if (now - s->last_keyd_ms >= 1000)
			probe_keyd(d);
		if (now - s->last_poll_ms >= 1000) {
			s->last_poll_ms = now;
			/* Without LISTEN every status is read again; else only new rows. */
			if (read_statuses(d, s->rdb, s->listening ? s->max_id : 0) != DB_OK) {
				lost(d, "reading new certificates");
				continue;
			}
			refresh(d);
		}
		if (now - s->last_settings_ms >= 10000) {
			s->last_settings_ms = now;
			if (load_authorities(d, s->rdb) == DB_ERR_UNAVAILABLE)
				lost(d, "reading settings");
		}
	}
	disconnect(s);
	keyd_client_free(s->keyd);
	return NULL;
}

void ocsp_sync_adopt(struct ocspd *d, int32_t authority_id, const uint8_t *serial, size_t len)
{
	struct ocsp_sync *s = d->sync;

	pthread_mutex_lock(&s->mu);
	if (s->n_adopts < ADOPT_MAX) {
		struct adopt *a = &s->adopts[s->n_adopts++];
		a->authority_id = authority_id;
		memcpy(a->serial, serial, len);
		a->len = len;
	}
	pthread_mutex_unlock(&s->mu);
}

int ocsp_sync_start(struct ocspd *d, char *err, size_t errsz)
{
	d->sync = calloc(1, sizeof(*d->sync));
	if (!d->sync) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	pthread_mutex_init(&d->sync->mu, NULL);
	if (pthread_create(&d->sync->th, NULL, sync_main, d) != 0) {
		snprintf(err, errsz, "cannot start the database thread");
		free(d->sync);
		d->sync = NULL;
		return -1;
	}
	return 0;
}

void ocsp_sync_stop(struct ocspd *d)
{
	if (!d->sync)
		return;
	atomic_store(&d->stopping, 1);
	pthread_join(d->sync->th, NULL);
	pthread_mutex_destroy(&d->sync->mu);
	free(d->sync);
	d->sync = NULL;
}
