/* hsmca-crld's work: per authority and scope (the whole CA, and each shard of a partitioned
 * one) a full CRL on a schedule, a delta CRL on a shorter one, both again shortly after a
 * revocation; each one streamed from a database cursor, signed through keyd, verified with the
 * CA's public key, and renamed into the publish folder only then. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cakey.h"
#include "crl.h"
#include "crld.h"
#include "db.h"
#include "lint.h"
#include "log.h"
#include "metrics.h"

#define MAX_SCOPES (1 + CRLD_MAX_SHARDS)
/* CRLs up to this size are decoded whole and linted entry by entry; larger ones without
 * their entries (lint_check), so that memory does not grow with the number of entries. */
#define LINT_WHOLE_MAX (8u << 20)
#define STALE_LOG_SECONDS 60
/* The change log is pruned in statements of at most this many rows, between CRL builds. */
#define PRUNE_BATCH 2000
/* Connecting at start: the first retry after this, doubling up to the ceiling. */
#define CONNECT_RETRY_MS 500
#define CONNECT_RETRY_MAX_MS 30000

struct scope {
	char name[CRLD_NAME_MAX + 16]; /* file name stem: <ca> or <ca>-<shard> */
	int shard;                     /* -1: the whole CA */
	int idp;                       /* carries an IDP naming its own URL */
	int64_t base_number;           /* the full CRL deltas refer to; 0: none yet */
	char *base_snapshot;           /* its database snapshot */
	int64_t next_full_at, next_delta_at;
	int64_t full_next_update, delta_next_update; /* of what is published; 0: nothing */
	int failing;
	/* for /metrics (under the lock): the last published CRL numbers and times, failures */
	int64_t full_number, delta_number, full_published_at, delta_published_at;
	int64_t failures;
	int64_t lint_failures; /* of those, CRLs the linter refused */
};

struct ca {
	struct crld_authority_config cfg;
	int32_t id;
	X509 *cert;
	struct ca_key key;   /* opened on first use and after a failed signature */
	int64_t dirty_at;    /* a revocation wants a new CRL at this time (ms); 0: none */
	int64_t next_update; /* the full CRLs' period at the last build: the pruning margin */
	int prune_due;       /* a new base was taken: older changes may go */
	struct scope scopes[MAX_SCOPES];
	int n_scopes;
};

struct crld {
	struct crld_config cfg;
	struct db *db, *listen_db;
	int listening;
	struct ca *cas;
	size_t n_cas;
	struct crld_http *http;
	atomic_int stop;         /* crld_stop, from the daemon's signal thread */
	pthread_mutex_t lock;    /* scope state that /health reads, and the three below */
	int ready;               /* connected and the authorities loaded; else degraded */
	char db_error[400];      /* while not ready: why */
	int64_t change_log_rows; /* -1: not counted yet */
	int64_t last_stale_log;
	size_t prune_next; /* the authority pruned next */
	int count_due;     /* pruned since the change log was last counted */
	int prune_more;    /* prune_step has more to do */
	/* The loaded authorities' certificates (DER, from the database) for /ca/<name>.der, their
	 * caIssuers URL, with their notBefore for Last-Modified; under the lock. */
	struct issuer {
		char name[CRLD_NAME_MAX + 1];
		unsigned char *der;
		size_t len;
		int64_t since;
	} issuers[CRLD_MAX_AUTHORITIES];
	size_t n_issuers;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- settings ---- */

struct eff {
	int64_t next_update, delta, refresh;
};

static int effective(struct crld *c, struct ca *a, struct eff *e, char *why, size_t n)
{
	struct db_authority_settings s;
	struct db_err err = {0};

	if (db_authority_settings_get(c->db, a->id, &s, &err) != DB_OK) {
		snprintf(why, n, "reading the settings of %s: %s", a->cfg.name, err.msg);
		return -1;
	}
	/* The full CRL's IDP as the database has it now (an officer may change it through the
	 * API): read before each CRL. Partitioned authorities' full CRLs have none. */
	if (a->cfg.shards == 0 && s.full_crl_idp >= 0)
		a->scopes[0].idp = s.full_crl_idp;
	e->next_update =
	    a->cfg.next_update_seconds ? a->cfg.next_update_seconds : s.crl_next_update_seconds;
	e->delta = a->cfg.delta_seconds < 0 ? 0
	           : a->cfg.delta_seconds   ? a->cfg.delta_seconds
	                                    : s.delta_crl_seconds;
	if (e->delta >= e->next_update)
		e->delta = 0;
	a->next_update = e->next_update;
	e->refresh = a->cfg.refresh_seconds ? a->cfg.refresh_seconds : e->next_update / 2;
	if (e->refresh > e->next_update)
		e->refresh = e->next_update / 2;
	return 0;
}

/* ---- one CRL ---- */

struct feed {
	struct db_crl_scan *scan;
	int delta;
};

static int feed_next(void *arg, struct crl_entry *e, int *got, char *why, size_t n)
{
	struct feed *f = arg;
	struct db_crl_entry d;
	struct db_err err = {0};

	if (db_crl_scan_next(f->scan, &d, got, &err) != DB_OK) {
		snprintf(why, n, "%s", err.msg);
		return -1;
	}
	if (!*got)
		return 0;
	memset(e, 0, sizeof(*e));
	memcpy(e->serial, d.serial, d.serial_len);
	e->serial_len = d.serial_len;
	e->revoked_at = d.revoked_at;
	e->invalidity_date = d.invalidity_date;
	switch (d.status) {
	case DB_CERT_HOLD:
		e->reason = DB_REASON_CERTIFICATE_HOLD;
		break;
	case DB_CERT_ISSUED: /* released since the base */
		e->reason = CRL_REASON_REMOVE_FROM_CRL;
		e->invalidity_date = 0;
		break;
	default:
		e->reason = d.reason;
	}
	return 0;
}

static void file_of(struct crld *c, char *out, size_t n, const char *stem, int delta,
                    const char *ext)
{
	snprintf(out, n, "%s/%s%s.%s", c->cfg.folder, stem, delta ? "-delta" : "", ext);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Lint before publishing (invariant 7): the signed CRL, decoded by OpenSSL's own parser, against
 * what was asked of it (issuer, times, number, entry count, scope: IDP or none, delta base),
 * RFC 5280's rules and its signature with the issuer certificate's key (ca-core/lint,
 * docs/lint.md). 0, or -1 with the finding, which names its rule, in why. */
static int lint_check(const char *path, X509 *issuer, const struct crl_params *p, uint64_t entries,
                      uint64_t size, char *why, size_t n)
{
	FILE *f;
	X509_CRL *crl = NULL;
	const char *md = ca_key_digest(X509_get0_pubkey(issuer));
	char number[32], finding[512];
	struct lint_crl_profile lp = {
	    .this_update = (time_t)p->this_update,
	    .next_update = (time_t)p->next_update,
	    .number = number,
	    .n_revoked = (long)entries,
	    .hash_nid = md ? OBJ_sn2nid(md) : 0,
	    .idp_uri = p->idp_uri,
	    .delta_base = (long long)p->delta_base,
	    .words = {.source = "crld's request", .asker = "crld"},
	};
	struct lint_parties w = {.issuer = issuer};
	int rc = -1;

	snprintf(number, sizeof(number), "%lld", (long long)p->number);
	if (size > LINT_WHOLE_MAX) {
		/* Too large to decode whole (memory would grow with the entries): the CRL
		 * without its entries, the entries counted as a stream; the signature was
		 * verified as a stream by crl_verify_file. */
		uint8_t *der = NULL;
		const unsigned char *q;
		size_t len = 0;
		uint64_t streamed = 0;
		if (crl_read_header(path, &der, &len, &streamed, why, n) != 0)
			goto out;
		q = der;
		crl = d2i_X509_CRL(NULL, &q, (long)len);
		free(der);
		if (!crl)
			snprintf(why, n, "%s: OpenSSL does not parse the CRL's header", path);
		else if (streamed != entries)
			snprintf(why, n,
			         "lint: crl_entry_count: the CRL lists %llu certificates, crld "
			         "streamed %llu",
			         (unsigned long long)streamed, (unsigned long long)entries);
		else if (lint_crl_header(&lp, &w, crl, finding, sizeof(finding)) != 0)
			snprintf(why, n, "lint: %s", finding);
		else
			rc = 0;
		goto out;
	}
	f = fopen(path, "rb");
	crl = f ? d2i_X509_CRL_fp(f, NULL) : NULL;
	if (f)
		fclose(f);
	if (!crl)
		snprintf(why, n, "%s: OpenSSL does not parse the CRL", path);
	else if (lint_crl_signed(&lp, &w, crl, finding, sizeof(finding)) != 0)
		snprintf(why, n, "lint: %s", finding);
	else
		rc = 0;
out:
	X509_CRL_free(crl);
	ERR_clear_error();
	return rc;
}

static int build_one(struct crld *c, struct ca *a, struct scope *s, const struct eff *eff,
                     int delta, char *why, size_t n)
{
	char final[CRLD_PATH_MAX + 128], tmp[CRLD_PATH_MAX + 160], pem[CRLD_PATH_MAX + 128],
	    pemtmp[CRLD_PATH_MAX + 160], idp[CRLD_URL_MAX + 160], fresh[CRLD_URL_MAX + 160];
	struct db_crl_scan_opts o = {0};
	struct db_err err = {0};
	struct crl_params p = {0};
	struct crl_result res;
	struct crl_info info, old;
	struct feed f = {0};
	char *snapshot = NULL;
	int64_t number, t0 = now_ms(), now = t0 / 1000, t_built = 0, t_verified = 0;
	struct stat st;
	EVP_PKEY *key = ca_key_get(&a->key, why, n);
	int rc = -1;

	if (!key)
		return -1;
	if (db_crl_number_next(c->db, a->id, &number, &err) != DB_OK) {
		snprintf(why, n, "%s", err.msg);
		EVP_PKEY_free(key);
		return -1;
	}
	file_of(c, final, sizeof(final), s->name, delta, "crl");
	snprintf(tmp, sizeof(tmp), "%s/.%s%s.crl.tmp", c->cfg.folder, s->name,
	         delta ? "-delta" : "");
	/* A leftover of a run that died (or anything planted there): unlink removes the name,
	 * a symlink itself and never its target; crl_build then creates the file with
	 * O_EXCL|O_NOFOLLOW, so a name made again in between fails the run instead. */
	unlink(tmp);
	snprintf(idp, sizeof(idp), "%s%s.crl", c->cfg.base_url, s->name);
	snprintf(fresh, sizeof(fresh), "%s%s-delta.crl", c->cfg.base_url, s->name);
	p.ca_cert = a->cert;
	p.key = key;
	p.number = number;
	p.this_update = now;
	p.next_update = now + (delta ? 2 * eff->delta : eff->next_update);
	p.delta_base = delta ? s->base_number : 0;
	p.idp_uri = s->idp ? idp : NULL;
	/* Freshest CRL in full CRLs only (RFC 5280 5.2.6). */
	p.freshest_uri = eff->delta && !delta ? fresh : NULL;
	p.tmp_dir = c->cfg.folder;
	o.authority_id = a->id;
	o.shard = s->shard;
	o.not_after_from = now - c->cfg.expired_grace_seconds;
	o.since_snapshot = delta ? s->base_snapshot : NULL;
	if (db_crl_scan_open(c->db, &o, &f.scan, &snapshot, &err) != DB_OK) {
		snprintf(why, n, "%s", err.msg);
		goto out;
	}
	f.delta = delta;
	rc = crl_build(&p, feed_next, &f, tmp, &res, why, n);
	db_crl_scan_close(f.scan);
	t_built = now_ms();
	if (rc != 0) {
		/* keyd may have restarted: open the key afresh next time */
		ca_key_failed(&a->key, key);
		goto out;
	}
	rc = -1;
	if (crl_verify_file(tmp, X509_get0_pubkey(a->cert), &info, why, n) != 0)
		goto out;
	if (info.number != number || info.delta_base != p.delta_base) {
		snprintf(why, n, "%s: CRL number or base differ from what was built", tmp);
		goto out;
	}
	if (lint_check(tmp, a->cert, &p, res.entries, res.bytes, why, n) != 0) {
		pthread_mutex_lock(&c->lock);
		s->lint_failures++;
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	t_verified = now_ms();
	/* Never replace a newer CRL (another instance's, say) with an older one. */
	if (stat(final, &st) == 0 &&
	    crl_verify_file(final, X509_get0_pubkey(a->cert), &old, why, n) == 0 &&
	    old.number >= number) {
		snprintf(why, n, "%s holds CRL number %lld, not older than %lld: kept", final,
		         (long long)old.number, (long long)number);
		goto out;
	}
	if (c->cfg.pem) {
		file_of(c, pem, sizeof(pem), s->name, delta, "pem");
		snprintf(pemtmp, sizeof(pemtmp), "%s/.%s%s.pem.tmp", c->cfg.folder, s->name,
		         delta ? "-delta" : "");
		unlink(pemtmp); /* as tmp above */
		if (crl_write_pem(tmp, pemtmp, why, n) != 0)
			goto out;
	}
	if (rename(tmp, final) != 0) {
		snprintf(why, n, "renaming %s to %s: %s", tmp, final, strerror(errno));
		goto out;
	}
	if (c->cfg.pem && rename(pemtmp, pem) != 0) {
		snprintf(why, n, "renaming %s to %s: %s", pemtmp, pem, strerror(errno));
		goto out;
	}
	fsync_dir(c->cfg.folder);
	pthread_mutex_lock(&c->lock);
	if (delta) {
		s->delta_next_update = p.next_update;
		s->delta_number = number;
		s->delta_published_at = (int64_t)time(NULL);
	} else {
		s->full_next_update = p.next_update;
		s->full_number = number;
		s->full_published_at = (int64_t)time(NULL);
		s->base_number = number;
		free(s->base_snapshot);
		s->base_snapshot = snapshot;
		snapshot = NULL;
		a->prune_due = 1;
	}
	pthread_mutex_unlock(&c->lock);
	/* The dashboard's CRL freshness (docs/reports.md). The CRL is out either way: a failure
	 * here is only logged. */
	if (db_crl_publication_add(c->db, a->id, s->name, delta, number, p.this_update,
	                           p.next_update, &err) != DB_OK)
		log_warn("published %s, but could not record it in the database: %s", final,
		         err.msg);
	log_info("published %s: CRL number %lld%s%s, %llu entries, %llu bytes, %lld ms (entries "
	         "%lld, sign %lld, write %lld, verify %lld)",
	         final, (long long)number, delta ? ", delta of " : "",
	         delta ? (snprintf(idp, sizeof(idp), "%lld", (long long)p.delta_base), idp) : "",
	         (unsigned long long)res.entries, (unsigned long long)res.bytes,
	         (long long)(now_ms() - t0), (long long)res.ms_entries, (long long)res.ms_sign,
	         (long long)res.ms_write, (long long)(t_verified - t_built));
	rc = 0;
out:
	if (rc != 0) {
		unlink(tmp);
		if (c->cfg.pem)
			unlink(pemtmp);
	}
	free(snapshot);
	EVP_PKEY_free(key);
	return rc;
}

/* A full CRL for the scope, then (deltas on) a delta on that base right away, so that the
 * published delta always refers to the published base. */
static int publish_scope(struct crld *c, struct ca *a, struct scope *s, int full)
{
	char why[1024];
	struct eff eff;
	int64_t now = time(NULL);

	if (effective(c, a, &eff, why, sizeof(why)) != 0)
		goto fail;
	if (full || !s->base_number || !eff.delta) {
		if (build_one(c, a, s, &eff, 0, why, sizeof(why)) != 0)
			goto fail;
		s->next_full_at = now + eff.refresh;
	}
	if (eff.delta) {
		if (build_one(c, a, s, &eff, 1, why, sizeof(why)) != 0)
			goto fail;
		s->next_delta_at = now + eff.delta;
	} else {
		s->next_delta_at = 0;
	}
	s->failing = 0;
	return 0;
fail:
	log_error("authority %s: %s%s CRL not published: %s (the published one stays; retry in "
	          "%lld s)",
	          a->cfg.name, s->name, full ? "" : " delta", why, (long long)c->cfg.retry_seconds);
	s->failing = 1;
	pthread_mutex_lock(&c->lock);
	s->failures++;
	pthread_mutex_unlock(&c->lock);
	if (full || !s->base_number)
		s->next_full_at = now + c->cfg.retry_seconds;
	s->next_delta_at = now + c->cfg.retry_seconds;
	return -1;
}

static int publish_every(struct crld *c)
{
	int rc = 0;

	for (size_t i = 0; i < c->n_cas; i++)
		for (int j = 0; j < c->cas[i].n_scopes; j++)
			if (publish_scope(c, &c->cas[i], &c->cas[i].scopes[j], 1) != 0)
				rc = -1;
	return rc;
}

/* ---- set-up ---- */

/* The partitioning of a: the database's CRL distribution (what cad names in certificates) when
 * one is stored, else the configuration's. 0; -2 when the configuration contradicts the
 * database (err names both values); -1 when the database fails. */
static int distribution(struct crld *c, const struct crld_authority_config *cfg, int32_t id,
                        int *shards, char *err, size_t errsz)
{
	struct db_authority_settings s;
	struct db_err e = {0};

	if (db_authority_settings_get(c->db, id, &s, &e) != DB_OK) {
		snprintf(err, errsz, "authority %s: %s", cfg->name, e.msg);
		return -1;
	}
	if (!s.crl_base_url[0]) {
		*shards = cfg->shards < 0 ? 0 : cfg->shards;
		return 0;
	}
	if (strcmp(s.crl_base_url, c->cfg.base_url)) {
		snprintf(
		    err, errsz,
		    "authority %s: the database's crl_base_url \"%s\" (where its certificates' "
		    "CRL distribution point points) differs from publish.base_url \"%s\": make "
		    "them agree",
		    cfg->name, s.crl_base_url, c->cfg.base_url);
		return -2;
	}
	if (cfg->shards >= 0 && cfg->shards != (int)s.crl_shards) {
		snprintf(
		    err, errsz,
		    "authority %s: the database's crl_shards %d differs from shards %d in the "
		    "configuration: leave shards out (the database's is used) or make them agree",
		    cfg->name, (int)s.crl_shards, cfg->shards);
		return -2;
	}
	*shards = (int)s.crl_shards;
	return 0;
}

/* 0; -2 for a configuration that cannot work; -1 when the database fails. */
static int add_ca(struct crld *c, const struct crld_authority_config *cfg, char *err, size_t errsz)
{
	struct ca *a = &c->cas[c->n_cas];
	struct db_authority da;
	struct db_err e = {0};
	char uri[CA_KEY_URI_MAX];
	const unsigned char *p;
	struct stat st;
	int shards, rc;

	switch (db_authority_find(c->db, cfg->name, &da, &e)) {
	case DB_OK:
		break;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		snprintf(err, errsz, "authority %s: %s", cfg->name, e.msg);
		return -2;
	default:
		snprintf(err, errsz, "authority %s: %s", cfg->name, e.msg);
		return -1;
	}
	if ((rc = distribution(c, cfg, da.id, &shards, err, errsz)) != 0) {
		db_authority_clear(&da);
		return rc;
	}
	/* The full CRL's IDP: the configuration seeds an empty setting and must agree with a
	 * stored one (the database's is what the API shows and changes). */
	if (cfg->idp_given) {
		int stored = 0;
		if (db_full_crl_idp_claim(c->db, da.id, cfg->idp, &stored, &e) != DB_OK) {
			snprintf(err, errsz, "authority %s: %s", cfg->name, e.msg);
			db_authority_clear(&da);
			return -1;
		}
		if (stored != cfg->idp) {
			snprintf(err, errsz,
			         "authority %s: the database's full_crl_idp %s differs from idp %s "
			         "in the configuration: leave idp out (the database's is used) or "
			         "make them agree",
			         cfg->name, stored ? "true" : "false", cfg->idp ? "true" : "false");
			db_authority_clear(&da);
			return -2;
		}
	}
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	a->cfg.shards = shards;
	a->id = da.id;
	p = da.cert_der;
	a->cert = d2i_X509(NULL, &p, (long)da.cert_der_len);
	if (cfg->key_uri[0])
		snprintf(uri, sizeof(uri), "%s", cfg->key_uri);
	else
		snprintf(uri, sizeof(uri), "keyd:label=%s", da.key_label);
	db_authority_clear(&da);
	if (!a->cert) {
		snprintf(err, errsz, "authority %s: its certificate in the database does not parse",
		         cfg->name);
		return -2;
	}
	if (ca_key_init(&a->key, uri) != 0) {
		snprintf(err, errsz, "authority %s: its key URI is too long", cfg->name);
		X509_free(a->cert);
		a->cert = NULL;
		return -2;
	}
	c->n_cas++;
	a->scopes[0].shard = -1;
	a->scopes[0].idp = !shards && cfg->idp;
	snprintf(a->scopes[0].name, sizeof(a->scopes[0].name), "%s", cfg->name);
	a->n_scopes = 1;
	for (int i = 0; i < shards; i++) {
		struct scope *s = &a->scopes[a->n_scopes++];
		s->shard = i;
		s->idp = 1;
		snprintf(s->name, sizeof(s->name), "%s-%d", cfg->name, i);
	}
	/* What is published already: for the never-older check and staleness. */
	for (int i = 0; i < a->n_scopes; i++) {
		struct scope *s = &a->scopes[i];
		char path[CRLD_PATH_MAX + 128], why[512];
		struct crl_info info;
		file_of(c, path, sizeof(path), s->name, 0, "crl");
		if (stat(path, &st) == 0 &&
		    crl_verify_file(path, X509_get0_pubkey(a->cert), &info, why, sizeof(why)) == 0)
			s->full_next_update = info.next_update;
	}
	return 0;
}

static void drop_cas(struct crld *c)
{
	for (size_t i = 0; c->cas && i < c->n_cas; i++) {
		X509_free(c->cas[i].cert);
		ca_key_clear(&c->cas[i].key);
		for (int j = 0; j < c->cas[i].n_scopes; j++)
			free(c->cas[i].scopes[j].base_snapshot);
	}
	c->n_cas = 0;
}

static void drop_issuers(struct crld *c)
{
	for (size_t i = 0; i < c->n_issuers; i++)
		OPENSSL_free(c->issuers[i].der);
	c->n_issuers = 0;
}

/* What /ca/<name>.der serves: each loaded authority's certificate. Under the lock. */
static void set_issuers(struct crld *c)
{
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);

	drop_issuers(c);
	for (size_t i = 0; i < c->n_cas && i < CRLD_MAX_AUTHORITIES; i++) {
		struct issuer *is = &c->issuers[c->n_issuers];
		unsigned char *der = NULL;
		int len = i2d_X509(c->cas[i].cert, &der), days = 0, secs = 0;

		if (len <= 0 || (size_t)len > CRLD_ISSUER_DER_MAX) {
			OPENSSL_free(der);
			log_error("authority %s: its certificate cannot be served at /ca/%s.der",
			          c->cas[i].cfg.name, c->cas[i].cfg.name);
			continue;
		}
		if (epoch)
			ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notBefore(c->cas[i].cert));
		snprintf(is->name, sizeof(is->name), "%s", c->cas[i].cfg.name);
		is->der = der;
		is->len = (size_t)len;
		is->since = (int64_t)days * 86400 + secs;
		c->n_issuers++;
	}
	ASN1_TIME_free(epoch);
}

static size_t issuer(void *arg, const char *name, unsigned char *der, size_t n, int64_t *since)
{
	struct crld *c = arg;
	size_t len = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_issuers; i++)
		if (!strcmp(c->issuers[i].name, name) && c->issuers[i].len <= n) {
			memcpy(der, c->issuers[i].der, c->issuers[i].len);
			len = c->issuers[i].len;
			*since = c->issuers[i].since;
		}
	pthread_mutex_unlock(&c->lock);
	return len;
}

/* Connect and load the authorities. 0 (c->ready); -1 when the database cannot be reached or
 * fails (retry later); -2 for a configuration that cannot work. */
static int connect_and_load(struct crld *c, char *err, size_t errsz)
{
	const struct crld_config *cfg = &c->cfg;
	struct db_authority *list = NULL;
	struct db_err e = {0};
	size_t n = 0;
	int rc = 0;

	if (!c->db && db_connect(cfg->database, &c->db, &e) != DB_OK) {
		snprintf(err, errsz, "database: %s", e.msg);
		return -1;
	}
	if (cfg->n_authorities) {
		for (size_t i = 0; i < cfg->n_authorities && rc == 0; i++)
			rc = add_ca(c, &cfg->authorities[i], err, errsz);
	} else if (db_authority_list(c->db, &list, &n, &e) != DB_OK) {
		snprintf(err, errsz, "listing authorities: %s", e.msg);
		rc = -1;
	} else {
		for (size_t i = 0; i < n && c->n_cas < CRLD_MAX_AUTHORITIES && rc == 0; i++) {
			struct crld_authority_config ac = {0};
			snprintf(ac.name, sizeof(ac.name), "%s", list[i].name);
			ac.shards = -1;
			rc = add_ca(c, &ac, err, errsz);
		}
		db_authority_list_free(list, n);
		if (rc == 0 && !c->n_cas) {
			snprintf(err, errsz, "the database has no authorities");
			rc = -2;
		}
	}
	if (rc != 0) {
		drop_cas(c);
		if (rc == -1) { /* the connection may be what failed: a new one next time */
			db_close(c->db);
			c->db = NULL;
		}
		return rc;
	}
	pthread_mutex_lock(&c->lock);
	c->ready = 1;
	c->db_error[0] = '\0';
	set_issuers(c);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void degraded(struct crld *c, const char *why)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->db_error, sizeof(c->db_error), "%s", why);
	pthread_mutex_unlock(&c->lock);
}

int crld_new(const struct crld_config *cfg, struct crld **out, char *err, size_t errsz)
{
	struct crld *c = calloc(1, sizeof(*c));
	struct stat st;
	char why[400];

	*out = NULL;
	if (!c) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	c->cfg = *cfg;
	c->change_log_rows = -1;
	pthread_mutex_init(&c->lock, NULL);
	c->cas = calloc(CRLD_MAX_AUTHORITIES, sizeof(*c->cas));
	if (!c->cas) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (stat(cfg->folder, &st) != 0 || !S_ISDIR(st.st_mode) || access(cfg->folder, W_OK) != 0) {
		snprintf(err, errsz, "publish folder %s: not a writable folder", cfg->folder);
		goto fail;
	}
	switch (connect_and_load(c, why, sizeof(why))) {
	case 0:
		break;
	case -1:
		/* Not fatal: serve what is published, report degraded, connect later. */
		log_warn("degraded: %s; serving the CRLs already published and retrying", why);
		degraded(c, why);
		break;
	default:
		snprintf(err, errsz, "%s", why);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	crld_free(c);
	return -1;
}

/* ---- pruning the change log ---- */

/* The oldest xmin of a's base snapshots ("xmin:xmax:xip,..."): changes of transactions below
 * it are visible to every base, so no delta on them lists those. 0 when a scope has no base
 * yet (nothing may go). */
static uint64_t oldest_base_xmin(const struct ca *a)
{
	uint64_t oldest = UINT64_MAX;

	for (int i = 0; i < a->n_scopes; i++) {
		const char *snap = a->scopes[i].base_snapshot;
		char *end;
		unsigned long long x;
		if (!snap)
			return 0;
		errno = 0;
		x = strtoull(snap, &end, 10);
		if (errno || end == snap || *end != ':')
			return 0;
		if (x < oldest)
			oldest = x;
	}
	return oldest == UINT64_MAX ? 0 : oldest;
}

/* One bounded DELETE for the next authority with a new base, so that a CRL build waits for one
 * batch at most; then, once no authority needs more, the change log's size for /metrics.
 * 1 while more is to be done. */
static int prune_step(struct crld *c)
{
	struct db_err e = {0};
	int64_t deleted = 0, rows;

	if (!c->ready)
		return 0;
	for (size_t k = 0; k < c->n_cas; k++) {
		struct ca *a = &c->cas[(c->prune_next + k) % c->n_cas];
		uint64_t xmin;
		int64_t margin;
		if (!a->prune_due)
			continue;
		c->prune_next = (c->prune_next + k) % c->n_cas;
		c->count_due = 1;
		xmin = oldest_base_xmin(a);
		margin =
		    c->cfg.prune_margin_seconds >= 0 ? c->cfg.prune_margin_seconds : a->next_update;
		if (!xmin) {
			a->prune_due = 0;
			return 1;
		}
		if (db_crl_changes_prune(c->db, a->id, xmin, margin, PRUNE_BATCH, &deleted, &e) !=
		    DB_OK) {
			log_warn(
			    "authority %s: pruning the CRL change log: %s (again after the next "
			    "full CRL)",
			    a->cfg.name, e.msg);
			a->prune_due = 0;
			return 1;
		}
		if (deleted)
			log_debug("authority %s: %lld old CRL changes pruned", a->cfg.name,
			          (long long)deleted);
		if (deleted < PRUNE_BATCH) {
			a->prune_due = 0;
			c->prune_next = (c->prune_next + 1) % c->n_cas;
		}
		return 1;
	}
	/* Nothing due: count once after each round of pruning. */
	if (c->change_log_rows >= 0 && !c->count_due)
		return 0;
	c->count_due = 0;
	if (db_crl_changes_count(c->db, &rows, &e) != DB_OK) {
		log_warn("%s", e.msg);
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	c->change_log_rows = rows;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int crld_publish_all(struct crld *c)
{
	char why[400];
	int rc;

	if (!c->ready && connect_and_load(c, why, sizeof(why)) != 0) {
		log_error("%s", why);
		return -1;
	}
	rc = publish_every(c);
	while (prune_step(c))
		;
	return rc;
}

void crld_free(struct crld *c)
{
	if (!c)
		return;
	crld_http_stop(c->http);
	drop_cas(c);
	drop_issuers(c);
	free(c->cas);
	db_close(c->db);
	db_close(c->listen_db);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void crld_stop(struct crld *c)
{
	c->stop = 1;
}

/* ---- health and staleness ---- */

static int stale_list(struct crld *c, int64_t now, char *text, size_t n)
{
	size_t len = 0;
	int stale = 0;

	text[0] = '\0';
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_cas; i++)
		for (int j = 0; j < c->cas[i].n_scopes; j++) {
			struct scope *s = &c->cas[i].scopes[j];
			const char *what = NULL;
			if (!s->full_next_update)
				what = "never published";
			else if (s->full_next_update < now)
				what = "past its nextUpdate";
			else if (s->delta_next_update && s->delta_next_update < now)
				what = "delta past its nextUpdate";
			if (!what)
				continue;
			stale++;
			if (len < n)
				len += (size_t)snprintf(text + len, n - len, "%s%s.crl: %s",
				                        len ? "; " : "", s->name, what);
		}
	pthread_mutex_unlock(&c->lock);
	return stale;
}

static int health(void *arg, char *text, size_t n)
{
	struct crld *c = arg;
	char list[1800];
	int ready;

	/* /health answers anyone: the state alone. The database's words and which CRL is
	 * stale are in the log and in /metrics (hsmca_crld_database_up, hsmca_crld_stale). */
	static _Atomic int last = -1;
	int state;

	pthread_mutex_lock(&c->lock);
	ready = c->ready;
	pthread_mutex_unlock(&c->lock);
	state = !ready ? 1 : stale_list(c, time(NULL), list, sizeof(list)) ? 2 : 0;
	if (atomic_exchange(&last, state) != state && state)
		log_warn("health: degraded: %s", state == 1 ? "no database; serving the CRLs "
		                                              "already published"
		                                            : list);
	snprintf(text, n, "%s", state ? "degraded" : "ok");
	return state == 0;
}

/* The metrics registry's families for /metrics, made for each scrape: crld's figures live in
 * its scope table under c->lock, and /metrics is rare. */
struct crld_families {
	struct metrics_family *number, *published, *next_update, *stale, *failures, *listening,
	    *database, *change_log, *lint_failures;
};

static int families(struct metrics *m, size_t crls, struct crld_families *f, char *err,
                    size_t errsz)
{
	size_t n = crls * 2; /* full and delta */

	if (metrics_gauge(m, "hsmca_crld_crl_number", "The number of the CRL last published.",
	                  "crl,kind", n, &f->number, err, errsz) ||
	    metrics_gauge(m, "hsmca_crld_last_publish_timestamp_seconds", "When it was published.",
	                  "crl,kind", n, &f->published, err, errsz) ||
	    metrics_gauge(m, "hsmca_crld_next_update_timestamp_seconds", "Its nextUpdate.",
	                  "crl,kind", n, &f->next_update, err, errsz) ||
	    metrics_gauge(m, "hsmca_crld_stale",
	                  "1 when the published CRL is past its nextUpdate or missing.", "crl,kind",
	                  n, &f->stale, err, errsz) ||
	    metrics_counter(m, "hsmca_crld_build_failures_total",
	                    "CRL builds that failed (the old CRL stayed).", "crl", crls,
	                    &f->failures, err, errsz) ||
	    metrics_counter(m, "hsmca_crld_lint_failures_total",
	                    "CRLs the linter refused to publish (counted in build failures too).",
	                    "crl", crls, &f->lint_failures, err, errsz) ||
	    metrics_gauge(m, "hsmca_crld_revocations_listening",
	                  "1 while LISTEN hsmca_revocation is up.", NULL, 1, &f->listening, err,
	                  errsz) ||
	    metrics_gauge(m, "hsmca_crld_database_up",
	                  "1 once the database was reached and the authorities loaded; 0 while "
	                  "degraded.",
	                  NULL, 1, &f->database, err, errsz) ||
	    metrics_gauge(m, "hsmca_crld_change_log_rows",
	                  "Entries in the CRL change log (crl_changes) after the last pruning.",
	                  NULL, 1, &f->change_log, err, errsz))
		return -1;
	return 0;
}

/* Prometheus text: per published CRL its number, when it was published, its nextUpdate,
 * whether it is stale and how many builds failed. */
static size_t metrics(void *arg, char *text, size_t n)
{
	struct crld *c = arg;
	int64_t now = (int64_t)time(NULL);
	struct crld_families f;
	struct metrics *m = NULL;
	size_t crls = 0, len = 0;
	char err[160];

	for (size_t i = 0; i < c->n_cas; i++)
		crls += (size_t)c->cas[i].n_scopes;
	if (metrics_new(&m) != 0 || families(m, crls ? crls : 1, &f, err, sizeof(err)) != 0) {
		log_warn("metrics: %s", m ? err : "out of memory");
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_cas; i++)
		for (int j = 0; j < c->cas[i].n_scopes; j++) {
			const struct scope *s = &c->cas[i].scopes[j];
			const char *kinds[2] = {"full", "delta"};
			for (int k = 0; k < 2; k++) {
				int64_t nu = k ? s->delta_next_update : s->full_next_update;
				if (k && !nu)
					continue; /* no deltas for this CRL */
				metrics_set(metrics_get(f.number, s->name, kinds[k]),
				            k ? s->delta_number : s->full_number);
				metrics_set(metrics_get(f.published, s->name, kinds[k]),
				            k ? s->delta_published_at : s->full_published_at);
				metrics_set(metrics_get(f.next_update, s->name, kinds[k]), nu);
				metrics_set(metrics_get(f.stale, s->name, kinds[k]),
				            !nu || nu < now);
			}
			metrics_add(metrics_get(f.failures, s->name), (uint64_t)s->failures);
			metrics_add(metrics_get(f.lint_failures, s->name),
			            (uint64_t)s->lint_failures);
		}
	pthread_mutex_unlock(&c->lock);
	metrics_set(metrics_get(f.listening), c->listening);
	pthread_mutex_lock(&c->lock);
	metrics_set(metrics_get(f.database), c->ready);
	if (c->change_log_rows >= 0)
		metrics_set(metrics_get(f.change_log), c->change_log_rows);
	pthread_mutex_unlock(&c->lock);
	metrics_write(m, text, n, &len); /* cut at a whole line if need be */
out:
	metrics_free(m);
	return len;
}

/* ---- the loop ---- */

static void listen_again(struct crld *c, int missed)
{
	struct db_err e = {0};

	if (!c->listen_db && db_connect(c->cfg.database, &c->listen_db, &e) != DB_OK) {
		log_warn("revocation announcements: %s", e.msg);
		return;
	}
	if (db_revocations_listen(c->listen_db, &e) != DB_OK) {
		log_warn("revocation announcements: %s", e.msg);
		return;
	}
	c->listening = 1;
	/* Announcements may have been missed meanwhile: rebuild everything soon. */
	for (size_t i = 0; missed && i < c->n_cas; i++)
		c->cas[i].dirty_at = now_ms();
}

static void take_announcements(struct crld *c, int wait_ms)
{
	struct db_revocation_event ev;
	struct db_err e = {0};
	int got;

	for (;;) {
		enum db_status rc = db_revocation_next(c->listen_db, wait_ms, &ev, &got, &e);
		if (rc == DB_ERR_INVALID) {
			log_warn("%s", e.msg);
			continue;
		}
		if (rc != DB_OK) {
			log_warn("revocation announcements: %s; listening again", e.msg);
			c->listening = 0;
			return;
		}
		if (!got)
			return;
		for (size_t i = 0; i < c->n_cas; i++)
			if (c->cas[i].id == ev.authority_id && !c->cas[i].dirty_at)
				c->cas[i].dirty_at = now_ms() + c->cfg.debounce_ms;
		wait_ms = 0; /* take what is queued, then go on */
	}
}

static void due_work(struct crld *c)
{
	int64_t ms = now_ms(), now = ms / 1000;

	for (size_t i = 0; i < c->n_cas && !c->stop; i++) {
		struct ca *a = &c->cas[i];
		int dirty = a->dirty_at && a->dirty_at <= ms;
		if (dirty)
			a->dirty_at = 0;
		for (int j = 0; j < a->n_scopes && !c->stop; j++) {
			struct scope *s = &a->scopes[j];
			int full = now >= s->next_full_at;
			int delta = s->next_delta_at && now >= s->next_delta_at;
			/* After a revocation: a delta where deltas are on (cheap at any size),
			 * else a full CRL. */
			if (dirty && !s->next_delta_at)
				full = 1;
			if (full || delta || dirty)
				publish_scope(c, a, s, full);
		}
	}
}

static int64_t next_wake_ms(struct crld *c)
{
	int64_t ms = now_ms(), wake = ms + 1000;

	for (size_t i = 0; i < c->n_cas; i++) {
		if (c->cas[i].dirty_at && c->cas[i].dirty_at < wake)
			wake = c->cas[i].dirty_at;
	}
	return wake < ms ? 0 : wake - ms;
}

/* Degraded start: retry the database with backoff until it answers (0), crld is stopped (0),
 * or the configuration turns out not to work with it (-1). */
static int wait_for_database(struct crld *c)
{
	int64_t delay = CONNECT_RETRY_MS;
	char why[400];

	while (!c->ready && !c->stop) {
		for (int64_t t = 0; t < delay && !c->stop; t += 100)
			usleep(100000);
		if (c->stop)
			break;
		switch (connect_and_load(c, why, sizeof(why))) {
		case 0:
			log_info("database reached: publishing");
			break;
		case -1:
			delay = delay * 2 > CONNECT_RETRY_MAX_MS ? CONNECT_RETRY_MAX_MS : delay * 2;
			log_warn("degraded: %s; retrying in %lld ms", why, (long long)delay);
			degraded(c, why);
			break;
		default:
			log_error("%s", why);
			return -1;
		}
	}
	return 0;
}

int crld_run(struct crld *c)
{
	char err[512];

	if ((c->cfg.listen_address[0] || c->cfg.metrics_port) &&
	    crld_http_start(c->cfg.listen_address, c->cfg.listen_port, c->cfg.metrics_address,
	                    c->cfg.metrics_port, c->cfg.folder, health, metrics, issuer, c,
	                    &c->http, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	if (c->cfg.listen_address[0])
		log_info("serving %s on http://%s:%d/", c->cfg.folder, c->cfg.listen_address,
		         c->cfg.listen_port);
	if (c->cfg.metrics_port)
		log_info("serving /metrics on http://%s:%d/", c->cfg.metrics_address,
		         c->cfg.metrics_port);
	else
		log_info("no metrics_listen: /metrics is not served");
	if (wait_for_database(c) != 0)
		return -1;
	if (c->stop)
		return 0;
	/* Listen first: a revocation during the first publication is not missed. */
	listen_again(c, 0);
	publish_every(c);
	while (!c->stop) {
		int64_t now = time(NULL);
		int wait = (int)next_wake_ms(c);
		if (c->prune_more)
			wait = 0; /* more to prune: between builds, not instead of them */
		if (!c->listening) {
			usleep(200000);
			listen_again(c, 1);
		} else {
			take_announcements(c, wait);
		}
		due_work(c);
		c->prune_more = prune_step(c);
		if (now - c->last_stale_log >= STALE_LOG_SECONDS) {
			char list[1800];
			if (stale_list(c, now, list, sizeof(list))) {
				log_error("STALE CRL: %s; relying parties will reject it", list);
				c->last_stale_log = now;
			}
		}
	}
	return 0;
}
