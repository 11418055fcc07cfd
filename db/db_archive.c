/* Key archival (migration 0020, docs/key-recovery.md): an archived subscriber key, stored
 * encrypted beside its certificate. */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

enum db_status db_key_archive_put(struct db *db, int64_t certificate_id, const char *key_label,
                                  const uint8_t *wrapped_key, size_t wrapped_len,
                                  const uint8_t *nonce, size_t nonce_len, const uint8_t *ct,
                                  size_t ct_len, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if (!key_label[0] || strlen(key_label) > 64 || !wrapped_len || nonce_len != 12 || !ct_len)
		return db_fail(err, DB_ERR_INVALID,
		               "archiving the key of certificate %lld: bad input",
		               (long long)certificate_id);
	db_param_int(&p, certificate_id);
	db_param_text(&p, key_label);
	db_param_bytes(&p, wrapped_key, wrapped_len);
	db_param_bytes(&p, nonce, nonce_len);
	db_param_bytes(&p, ct, ct_len);
	rc = db_exec(db,
	             "INSERT INTO key_archive (certificate_id, key_label, wrapped_key, nonce,"
	             " ciphertext) VALUES ($1::bigint, $2, $3, $4, $5)",
	             &p, &r, err, "archiving the key of certificate %lld",
	             (long long)certificate_id);
	PQclear(r);
	return rc;
}

enum db_status db_key_archive_exists(struct db *db, int64_t certificate_id, int *exists,
                                     struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	db_param_int(&p, certificate_id);
	rc = db_exec(db, "SELECT certificate_id FROM key_archive WHERE certificate_id = $1::bigint",
	             &p, &r, err, "looking for the archived key of certificate %lld",
	             (long long)certificate_id);
	if (rc == DB_OK)
		*exists = PQntuples(r) > 0;
	PQclear(r);
	return rc;
}

enum db_status db_key_archive_get(struct db *db, int32_t authority_id, const uint8_t *serial,
                                  size_t serial_len, struct db_key_archive *out, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	db_param_int(&p, authority_id);
	db_param_bytes(&p, serial, serial_len);
	rc = db_exec(db,
	             "SELECT c.id, a.name, c.der, k.key_label, k.wrapped_key, k.nonce, k.ciphertext"
	             " FROM certificates c JOIN authorities a ON a.id = c.authority_id"
	             " LEFT JOIN key_archive k ON k.certificate_id = c.id"
	             " WHERE c.authority_id = $1::int4 AND c.serial = $2",
	             &p, &r, err, "reading the archived key");
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) != 1) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no such certificate");
		goto out;
	}
	if (db_get_int64(r, 0, 0, &out->certificate_id) != 0 ||
	    !(out->authority = db_get_text(r, 0, 1)) ||
	    db_get_bytes(r, 0, 2, &out->der, &out->der_len) != 0) {
		rc = db_fail(err, DB_ERR_QUERY, "reading the archived key: bad row");
		goto out;
	}
	if (!PQgetisnull(r, 0, 3)) {
		out->archived = 1;
		if (!(out->key_label = db_get_text(r, 0, 3)) ||
		    db_get_bytes(r, 0, 4, &out->wrapped, &out->wrapped_len) != 0 ||
		    db_get_bytes_into(r, 0, 5, out->nonce, sizeof(out->nonce), 1, NULL) != 0 ||
		    db_get_bytes(r, 0, 6, &out->ct, &out->ct_len) != 0)
			rc = db_fail(err, DB_ERR_QUERY, "reading the archived key: bad row");
	}
out:
	PQclear(r);
	if (rc != DB_OK)
		db_key_archive_clear(out);
	return rc;
}

void db_key_archive_clear(struct db_key_archive *a)
{
	free(a->authority);
	free(a->der);
	free(a->key_label);
	free(a->wrapped);
	free(a->ct);
	memset(a, 0, sizeof(*a));
}
