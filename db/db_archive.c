/* Key archival (migration 0020, docs/key-recovery.md): an archived subscriber key, stored
 * encrypted beside its certificate. */
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
