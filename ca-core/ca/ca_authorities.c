/* The issuing CAs at run time: each key loaded through keyd and checked against its
 * certificate, each authority registered in the database (and the registration audited). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "log.h"

static int key_ready(struct ca *ca, struct ca_authority *a, char *err, size_t errsz)
{
	if (a->key)
		return 0;
	a->key = ca->load_key(a->key_uri, err, errsz);
	if (!a->key)
		return -1;
	if (X509_check_private_key(a->cert, a->key) != 1) {
		EVP_PKEY_free(a->key);
		a->key = NULL;
		ERR_clear_error();
		snprintf(err, errsz, "authority %s: key %s does not match %s", a->name, a->key_uri,
		         a->cert_path);
		return -1;
	}
	return 0;
}

static void subject_text(X509 *cert, char *out, size_t n)
{
	BIO *m = BIO_new(BIO_s_mem());
	int len = -1;

	if (m && X509_NAME_print_ex(m, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0)
		len = BIO_read(m, out, (int)n - 1);
	out[len > 0 ? len : 0] = '\0';
	BIO_free(m);
}

/* Find or register a in the database: 0, -2 (database), -3 (the database has another
 * certificate under this name). */
static int registered(struct db *db, struct ca_authority *a, char *err, size_t errsz)
{
	struct db_authority row = {0}, found = {0};
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(a->cert);
	unsigned char *subj = NULL, *der = NULL;
	struct db_err derr = {0};
	char text[1024];
	int len = i2d_X509(a->cert, &der), slen, rc = -2;
	int64_t seq;

	if (len <= 0) {
		snprintf(err, errsz, "authority %s: cannot encode its certificate", a->name);
		goto out;
	}
	switch (db_authority_find(db, a->name, &found, &derr)) {
	case DB_OK:
		if ((size_t)len != found.cert_der_len || memcmp(der, found.cert_der, (size_t)len)) {
			snprintf(err, errsz,
			         "authority %s: the database holds another certificate under this "
			         "name than %s",
			         a->name, a->cert_path);
			rc = -3;
			goto out;
		}
		a->db_id = found.id;
		rc = 0;
		goto out;
	case DB_ERR_NOT_FOUND:
		break;
	default:
		snprintf(err, errsz, "%s", derr.msg);
		goto out;
	}
	/* First start with this authority: register it, and say so in the audit log. */
	slen = i2d_X509_NAME(X509_get_subject_name(a->cert), &subj);
	subject_text(a->cert, text, sizeof(text));
	row.name = a->name;
	row.subject = text;
	row.subject_der = subj;
	row.subject_der_len = slen > 0 ? (size_t)slen : 0;
	row.ski = ski ? ski->data : NULL;
	row.ski_len = ski ? (size_t)ski->length : 0;
	row.cert_der = der;
	row.cert_der_len = (size_t)len;
	row.key_label = a->key_label;
	{
		struct db_audit_entry e = {"hsmca-cad", "",        "authority.register",
		                           a->name,     "success", text};
		if (db_begin(db, &derr) != DB_OK ||
		    db_authority_add(db, &row, &a->db_id, &derr) != DB_OK ||
		    db_audit_append(db, &e, &seq, &derr) != DB_OK ||
		    db_commit(db, &derr) != DB_OK) {
			db_rollback(db);
			a->db_id = 0;
			snprintf(err, errsz, "registering authority %s: %s", a->name, derr.msg);
			goto out;
		}
	}
	log_info("registered authority %s (id %d)", a->name, (int)a->db_id);
	rc = 0;
out:
	OPENSSL_free(der);
	OPENSSL_free(subj);
	db_authority_clear(&found);
	return rc;
}

/* The CRL distribution point of a's certificates comes from the database, where crld reads
 * which CRLs to publish: a configuration that names one seeds an empty database and must
 * agree with a stored one. 0, -2 (database), -3 (the configuration disagrees). */
static int crl_distribution(struct db *db, struct ca_authority *a, char *err, size_t errsz)
{
	char url[DB_CRL_URL_MAX + 1];
	struct db_err derr = {0};
	int shards;

	switch (db_crl_distribution_claim(db, a->db_id, a->crl_base_url, a->crl_shards,
	                                  "hsmca-cad configuration", url, &shards, &derr)) {
	case DB_OK:
		break;
	case DB_ERR_INVALID:
		snprintf(err, errsz, "authority %s: crl_base_url: %s", a->name, derr.msg);
		return -3;
	default:
		snprintf(err, errsz, "%s", derr.msg);
		return -2;
	}
	if (a->crl_base_url[0] && (strcmp(url, a->crl_base_url) || shards != a->crl_shards)) {
		snprintf(err, errsz,
		         "authority %s: crl_base_url \"%s\" and crl_shards %d in the configuration "
		         "differ from the database's \"%s\" and %d (its settings, which hsmca-crld "
		         "publishes by): make them agree, or leave them out of the configuration",
		         a->name, a->crl_base_url, a->crl_shards, url, shards);
		return -3;
	}
	if (!a->crl_base_url[0] && url[0])
		log_info("authority %s: CRL distribution point %s%s from the database", a->name,
		         url, shards ? " (partitioned)" : "");
	snprintf(a->crl_base_url, sizeof(a->crl_base_url), "%s", url);
	a->crl_shards = shards;
	return 0;
}

/* a's Authority Information Access from its settings in the database (migration 0011), the
 * one place officers change it. 0, or -2 (database). */
static int aia_read(struct db *db, struct ca_authority *a, int64_t now, char *err, size_t errsz)
{
	struct db_authority_settings s;
	struct db_err derr = {0};

	if (db_authority_settings_get(db, a->db_id, &s, &derr) != DB_OK) {
		snprintf(err, errsz, "authority %s: reading its AIA settings: %s", a->name,
		         derr.msg);
		return -2;
	}
	if (strcmp(a->ocsp_urls, s.ocsp_urls) || strcmp(a->ca_issuers_url, s.ca_issuers_url))
		log_info("authority %s: AIA of issued certificates: OCSP \"%s\", caIssuers \"%s\"",
		         a->name, s.ocsp_urls, s.ca_issuers_url);
	snprintf(a->ocsp_urls, sizeof(a->ocsp_urls), "%s", s.ocsp_urls);
	snprintf(a->ca_issuers_url, sizeof(a->ca_issuers_url), "%s", s.ca_issuers_url);
	a->aia_read = now;
	return 0;
}

int ca_authorities_ready(struct ca *ca, struct db *db, char *err, size_t errsz)
{
	int64_t now = (int64_t)time(NULL);
	int rc = 0;

	/* One worker at a time loads keys and registers authorities; afterwards this is a check
	 * under the lock. */
	pthread_mutex_lock(ca->lock);
	for (size_t i = 0; i < ca->n_authorities && rc == 0; i++) {
		struct ca_authority *a = &ca->authorities[i];

		if (key_ready(ca, a, err, errsz) != 0)
			rc = -1;
		else if (!a->db_id) {
			rc = registered(db, a, err, errsz);
			if (rc == 0)
				rc = crl_distribution(db, a, err, errsz);
			if (rc != 0)
				a->db_id = 0; /* again next time */
		}
		if (rc == 0 && (a->aia_read == 0 || now - a->aia_read >= CA_AIA_REFRESH_SECONDS ||
		                now < a->aia_read))
			rc = aia_read(db, a, now, err, errsz);
	}
	pthread_mutex_unlock(ca->lock);
	return rc;
}

void ca_authority_settings_changed(struct ca *ca, const char *name)
{
	pthread_mutex_lock(ca->lock);
	for (size_t i = 0; i < ca->n_authorities; i++)
		if (!strcmp(ca->authorities[i].name, name))
			ca->authorities[i].aia_read = 0;
	pthread_mutex_unlock(ca->lock);
}

EVP_PKEY *ca_authority_key(struct ca *ca, struct ca_authority *a)
{
	EVP_PKEY *key;

	pthread_mutex_lock(ca->lock);
	key = a->key;
	if (key && EVP_PKEY_up_ref(key) != 1)
		key = NULL;
	pthread_mutex_unlock(ca->lock);
	return key;
}

void ca_authority_key_failed(struct ca *ca, struct ca_authority *a, EVP_PKEY *key)
{
	pthread_mutex_lock(ca->lock);
	if (key && a->key == key) {
		EVP_PKEY_free(a->key);
		a->key = NULL;
	}
	pthread_mutex_unlock(ca->lock);
}
