/* ACME (RFC 8555): accounts and the External Account Binding credentials that bind them to a
 * principal, its profiles and identifier patterns. Every change commits with its audit entry. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db_internal.h"

#define EPOCH(col) "floor(extract(epoch FROM " col "))::bigint"
#define EPOCH0(col) "coalesce(floor(extract(epoch FROM " col "))::bigint, 0)"

void db_acme_eab_clear(struct db_acme_eab *e)
{
	free(e->principal);
	free(e->profiles);
	free(e->allow);
	free(e->created_by);
	OPENSSL_cleanse(e, sizeof(*e));
}

void db_acme_account_clear(struct db_acme_account *a)
{
	free(a->jwk);
	free(a->contact);
	free(a->principal);
	free(a->profiles);
	free(a->allow);
	memset(a, 0, sizeof(*a));
}

static int kid_ok(const char *kid)
{
	size_t n = strlen(kid);

	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
		            kid[i]))
			return 0;
	return 1;
}

enum db_status db_acme_eab_add(struct db *db, const char *kid, const uint8_t *hmac_key,
                               size_t key_len, const char *principal, const char *profiles,
                               const char *const *allow, size_t n_allow, int64_t expires_at,
                               const char *created_by, int64_t *id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	char *joined;
	size_t total = 1;

	*id = 0;
	if ((rc = db_check_text("principal", principal, 128, err)) != DB_OK ||
	    (rc = db_check_text("profiles", profiles, 1024, err)) != DB_OK ||
	    (rc = db_check_text("creator", created_by, 128, err)) != DB_OK)
		return rc;
	if (!kid_ok(kid))
		return db_fail(err, DB_ERR_INVALID,
		               "an EAB key identifier is 1..64 base64url characters");
	if (key_len < 32 || key_len > 64)
		return db_fail(err, DB_ERR_INVALID, "an EAB HMAC key has 32..64 bytes");
	if (!principal[0] || !profiles[0])
		return db_fail(err, DB_ERR_INVALID,
		               "an EAB credential needs a principal and a profile");
	if (n_allow > DB_ALLOWLIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "at most %d identifier patterns",
		               DB_ALLOWLIST_MAX);
	for (size_t i = 0; i < n_allow; i++) {
		size_t len = strlen(allow[i]);
		if (len == 0 || len > DB_IDENTITY_MAX)
			return db_fail(err, DB_ERR_INVALID, "pattern %zu: 1..%d characters", i + 1,
			               DB_IDENTITY_MAX);
		for (size_t c = 0; c < len; c++)
			if ((unsigned char)allow[i][c] < 0x21 || (unsigned char)allow[i][c] > 0x7e)
				return db_fail(err, DB_ERR_INVALID,
				               "pattern %zu: printable ASCII without spaces only",
				               i + 1);
		total += len + 1;
	}
	joined = calloc(1, total);
	if (!joined)
		return db_fail(err, DB_ERR_UNAVAILABLE, "adding an EAB credential: out of memory");
	for (size_t i = 0; i < n_allow; i++) {
		if (i)
			strcat(joined, "\n");
		strcat(joined, allow[i]);
	}
	db_param_text(&p, kid);
	db_param_bytes(&p, hmac_key, key_len);
	db_param_text(&p, principal);
	db_param_text(&p, profiles);
	db_param_text(&p, joined);
	db_param_int(&p, expires_at);
	db_param_text(&p, created_by);
	rc = db_exec(db,
	             "INSERT INTO acme_eab_credentials (kid, hmac_key, principal, profiles, allow,"
	             " expires_at, created_by) VALUES ($1, $2, $3, $4,"
	             " coalesce(string_to_array(nullif($5, ''), E'\\n'), '{}'),"
	             " to_timestamp($6::bigint), $7) RETURNING id",
	             &p, &r, err, "adding EAB credential %s", kid);
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, id) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "adding EAB credential %s: no id returned", kid);
	PQclear(r);
	free(joined);
	return rc;
}

enum db_status db_acme_eab_find(struct db *db, const char *kid, struct db_acme_eab *out,
                                struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v[4];
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!kid_ok(kid))
		return db_fail(err, DB_ERR_NOT_FOUND, "no such EAB credential");
	db_param_text(&p, kid);
	rc = db_exec(db,
	             "SELECT id, hmac_key, principal, profiles, array_to_string(allow, "
	             "E'\\n'), " EPOCH("expires_at") ", " EPOCH(
	                 "created_at") ", created_by,"
	                               " coalesce(account_id, 0)"
	                               " FROM acme_eab_credentials WHERE kid = $1"
	                               " AND revoked_at IS NULL AND expires_at > now()",
	             &p, &r, err, "looking up EAB credential");
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no usable EAB credential %s", kid);
		goto out;
	}
	if (db_get_bytes_into(r, 0, 1, out->hmac_key, sizeof(out->hmac_key), 0, &n) ||
	    db_get_int64(r, 0, 0, &v[0]) || db_get_int64(r, 0, 5, &v[1]) ||
	    db_get_int64(r, 0, 6, &v[2]) || db_get_int64(r, 0, 8, &v[3]) ||
	    !(out->principal = db_get_text(r, 0, 2)) || !(out->profiles = db_get_text(r, 0, 3)) ||
	    !(out->allow = db_get_text(r, 0, 4)) || !(out->created_by = db_get_text(r, 0, 7))) {
		rc = db_fail(err, DB_ERR_QUERY, "EAB credential: unreadable row");
		goto out;
	}
	out->id = v[0];
	out->expires_at = v[1];
	out->created_at = v[2];
	out->account_id = v[3];
	out->hmac_key_len = n;
	snprintf(out->kid, sizeof(out->kid), "%s", kid);
out:
	PQclear(r);
	if (rc != DB_OK)
		db_acme_eab_clear(out);
	return rc;
}

enum db_status db_acme_eab_revoke(struct db *db, const char *kid, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t revoked;

	if (!kid_ok(kid))
		return db_fail(err, DB_ERR_NOT_FOUND, "no such EAB credential");
	db_param_text(&p, kid);
	rc = db_exec(db,
	             "SELECT (revoked_at IS NOT NULL)::int FROM acme_eab_credentials WHERE kid = $1"
	             " FOR UPDATE",
	             &p, &r, err, "revoking EAB credential %s", kid);
	if (rc == DB_OK && PQntuples(r) == 0)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no EAB credential %s", kid);
	else if (rc == DB_OK && (db_get_int64(r, 0, 0, &revoked) || revoked))
		rc = db_fail(err, DB_ERR_STATE, "EAB credential %s is revoked already", kid);
	PQclear(r);
	r = NULL;
	if (rc == DB_OK)
		rc =
		    db_exec(db, "UPDATE acme_eab_credentials SET revoked_at = now() WHERE kid = $1",
		            &p, &r, err, "revoking EAB credential %s", kid);
	PQclear(r);
	return rc;
}

enum db_status db_acme_eab_list(struct db *db, struct db_acme_eab **rows, size_t *n,
                                struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	char sql[512];
	int64_t v[5];

	*rows = NULL;
	*n = 0;
	snprintf(
	    sql, sizeof(sql),
	    "SELECT id, kid, principal, profiles, array_to_string(allow, E'\\n'), " EPOCH(
	        "expires_at") ", " EPOCH0("revoked_at") ", " EPOCH("created_at") ","
	                                                                         " created_by, "
	                                                                         "coalesce(account_"
	                                                                         "id, 0)"
	                                                                         " FROM "
	                                                                         "acme_eab_"
	                                                                         "credentials"
	                                                                         " ORDER BY id "
	                                                                         "LIMIT %d",
	    DB_LIST_MAX);
	rc = db_exec(db, sql, NULL, &r, err, "listing EAB credentials");
	if (rc != DB_OK)
		return rc;
	*rows = calloc((size_t)PQntuples(r) + 1, sizeof(**rows));
	if (!*rows) {
		PQclear(r);
		return db_fail(err, DB_ERR_UNAVAILABLE, "listing EAB credentials: out of memory");
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct db_acme_eab *e = &(*rows)[i];
		*n = (size_t)i + 1;
		if (db_get_int64(r, i, 0, &v[0]) || db_get_int64(r, i, 5, &v[1]) ||
		    db_get_int64(r, i, 6, &v[2]) || db_get_int64(r, i, 7, &v[3]) ||
		    db_get_int64(r, i, 9, &v[4]) || !(e->principal = db_get_text(r, i, 2)) ||
		    !(e->profiles = db_get_text(r, i, 3)) || !(e->allow = db_get_text(r, i, 4)) ||
		    !(e->created_by = db_get_text(r, i, 8))) {
			rc = db_fail(err, DB_ERR_QUERY, "EAB credentials: unreadable row");
			break;
		}
		e->id = v[0];
		e->expires_at = v[1];
		e->revoked_at = v[2];
		e->created_at = v[3];
		e->account_id = v[4];
		snprintf(e->kid, sizeof(e->kid), "%s", PQgetvalue(r, i, 1));
	}
	PQclear(r);
	if (rc != DB_OK) {
		db_acme_eab_list_free(*rows, *n);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

void db_acme_eab_list_free(struct db_acme_eab *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		db_acme_eab_clear(&rows[i]);
	free(rows);
}

enum db_status db_acme_incident_add(struct db *db, int32_t authority_id, const char *reason,
                                    const char *created_by, int64_t *id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*id = 0;
	if ((rc = db_check_text("reason", reason, 512, err)) != DB_OK ||
	    (rc = db_check_text("creator", created_by, 128, err)) != DB_OK)
		return rc;
	if (!reason[0])
		return db_fail(err, DB_ERR_INVALID, "a renewal incident needs a reason");
	db_param_int(&p, authority_id);
	db_param_text(&p, reason);
	db_param_text(&p, created_by);
	rc = db_exec(db,
	             "INSERT INTO acme_renewal_incidents (authority_id, reason, created_by)"
	             " VALUES ($1::integer, $2, $3) RETURNING id",
	             &p, &r, err, "recording a renewal incident");
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, id)))
		rc = db_fail(err, DB_ERR_QUERY, "recording a renewal incident: no id returned");
	PQclear(r);
	return rc;
}

enum db_status db_acme_incident_latest(struct db *db, int32_t authority_id, int64_t *issued_before,
                                       struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*issued_before = 0;
	db_param_int(&p, authority_id);
	rc = db_exec(db,
	             "SELECT coalesce(floor(extract(epoch FROM max(issued_before)))::bigint, 0)"
	             " FROM acme_renewal_incidents WHERE authority_id = $1::integer",
	             &p, &r, err, "reading renewal incidents");
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, issued_before)))
		rc = db_fail(err, DB_ERR_QUERY, "reading renewal incidents: unreadable row");
	PQclear(r);
	return rc;
}

#define ACCOUNT_COLS                                                                               \
	"a.id, a.status, a.jwk, a.thumbprint, a.contact, a.tos_agreed, coalesce(e.kid, ''),"       \
	" a.principal, coalesce(e.profiles, ''), coalesce(array_to_string(e.allow, E'\\n'), '')"   \
	" FROM acme_accounts a LEFT JOIN acme_eab_credentials e ON e.id = a.eab_id"

static enum db_status account_get(struct db *db, const char *where, struct db_params *p,
                                  struct db_acme_account *out, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	char sql[512];

	memset(out, 0, sizeof(*out));
	snprintf(sql, sizeof(sql), "SELECT " ACCOUNT_COLS " WHERE %s", where);
	rc = db_exec(db, sql, p, &r, err, "looking up an ACME account");
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no such ACME account");
		goto out;
	}
	if (db_get_int64(r, 0, 0, &out->id) || !(out->jwk = db_get_text(r, 0, 2)) ||
	    !(out->contact = db_get_text(r, 0, 4)) || !(out->principal = db_get_text(r, 0, 7)) ||
	    !(out->profiles = db_get_text(r, 0, 8)) || !(out->allow = db_get_text(r, 0, 9))) {
		rc = db_fail(err, DB_ERR_QUERY, "ACME account: unreadable row");
		goto out;
	}
	snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(r, 0, 1));
	snprintf(out->thumbprint, sizeof(out->thumbprint), "%s", PQgetvalue(r, 0, 3));
	out->tos_agreed = !strcmp(PQgetvalue(r, 0, 5), "t");
	snprintf(out->eab_kid, sizeof(out->eab_kid), "%s", PQgetvalue(r, 0, 6));
out:
	PQclear(r);
	if (rc != DB_OK)
		db_acme_account_clear(out);
	return rc;
}

enum db_status db_acme_account_by_thumbprint(struct db *db, const char *thumbprint,
                                             struct db_acme_account *out, struct db_err *err)
{
	struct db_params p = {0};
	enum db_status rc = db_check_text("thumbprint", thumbprint, 43, err);

	if (rc != DB_OK)
		return rc;
	db_param_text(&p, thumbprint);
	return account_get(db, "a.thumbprint = $1", &p, out, err);
}

enum db_status db_acme_account_by_id(struct db *db, int64_t id, struct db_acme_account *out,
                                     struct db_err *err)
{
	struct db_params p = {0};

	db_param_int(&p, id);
	return account_get(db, "a.id = $1::bigint", &p, out, err);
}

/* Append audit (its object acct/ID) and commit the open transaction. */
static enum db_status audit_commit(struct db *db, int64_t id, const struct db_audit_entry *audit,
                                   struct db_err *err)
{
	struct db_audit_entry e = *audit;
	char object[48];
	int64_t seq;

	snprintf(object, sizeof(object), "acct/%lld", (long long)id);
	e.object = object;
	return db_audit_append_commit(db, &e, &seq, err);
}

enum db_status db_acme_account_create(struct db *db, struct db_acme_account *a, const char *eab_kid,
                                      const struct db_audit_entry *audit, struct db_err *err)
{
	struct db_params p = {0}, q = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("jwk", a->jwk, 2048, err)) != DB_OK ||
	    (rc = db_check_text("contact", a->contact, 4096, err)) != DB_OK ||
	    (rc = db_check_text("thumbprint", a->thumbprint, 43, err)) != DB_OK)
		return rc;
	if ((rc = db_begin(db, err)) != DB_OK)
		return rc;
	db_param_text(&p, a->jwk);
	db_param_text(&p, a->thumbprint);
	db_param_text(&p, a->contact);
	db_param_text(&p, a->tos_agreed ? "true" : "false");
	db_param_text(&p, eab_kid);
	rc = db_exec(db,
	             "INSERT INTO acme_accounts (jwk, thumbprint, contact, tos_agreed, eab_id,"
	             " principal) SELECT $1, $2, $3, $4::boolean, e.id, coalesce(e.principal, '')"
	             " FROM (SELECT 1) one LEFT JOIN acme_eab_credentials e ON e.kid = $5"
	             " AND e.revoked_at IS NULL AND e.expires_at > now()"
	             " AND e.account_id IS NULL"
	             " WHERE $5 = '' OR e.id IS NOT NULL RETURNING id",
	             &p, &r, err, "adding an ACME account");
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_STATE,
		             "the EAB credential is bound to another account, revoked or expired");
	else if (rc == DB_OK && db_get_int64(r, 0, 0, &a->id))
		rc = db_fail(err, DB_ERR_QUERY, "adding an ACME account: no id returned");
	PQclear(r);
	r = NULL;
	if (rc == DB_OK && eab_kid[0]) {
		db_param_int(&q, a->id);
		db_param_text(&q, eab_kid);
		rc = db_exec(db,
		             "UPDATE acme_eab_credentials SET account_id = $1::bigint"
		             " WHERE kid = $2 AND account_id IS NULL RETURNING id",
		             &q, &r, err, "binding EAB credential %s", eab_kid);
		if (rc == DB_OK && PQntuples(r) != 1)
			rc = db_fail(err, DB_ERR_STATE, "the EAB credential is bound already");
		PQclear(r);
	}
	if (rc == DB_OK)
		rc = audit_commit(db, a->id, audit, err);
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}

enum db_status db_acme_account_update(struct db *db, const struct db_acme_account *a,
                                      const struct db_audit_entry *audit, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("contact", a->contact, 4096, err)) != DB_OK ||
	    (rc = db_check_text("status", a->status, 15, err)) != DB_OK)
		return rc;
	if ((rc = db_begin(db, err)) != DB_OK)
		return rc;
	db_param_int(&p, a->id);
	db_param_text(&p, a->status);
	db_param_text(&p, a->contact);
	rc = db_exec(db,
	             "UPDATE acme_accounts SET status = $2, contact = $3, updated_at = now(),"
	             " deactivated_at = CASE WHEN $2 = 'valid' THEN NULL"
	             " ELSE coalesce(deactivated_at, now()) END"
	             " WHERE id = $1::bigint AND status = 'valid' RETURNING id",
	             &p, &r, err, "updating ACME account %lld", (long long)a->id);
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_STATE, "ACME account %lld is not valid", (long long)a->id);
	PQclear(r);
	if (rc == DB_OK)
		rc = audit_commit(db, a->id, audit, err);
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}

enum db_status db_acme_account_rekey(struct db *db, int64_t id, const char *old_thumbprint,
                                     const char *jwk, const char *thumbprint,
                                     const struct db_audit_entry *audit, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("jwk", jwk, 2048, err)) != DB_OK ||
	    (rc = db_check_text("thumbprint", thumbprint, 43, err)) != DB_OK ||
	    (rc = db_check_text("thumbprint", old_thumbprint, 43, err)) != DB_OK)
		return rc;
	if ((rc = db_begin(db, err)) != DB_OK)
		return rc;
	db_param_int(&p, id);
	db_param_text(&p, old_thumbprint);
	db_param_text(&p, jwk);
	db_param_text(&p, thumbprint);
	rc = db_exec(db,
	             "UPDATE acme_accounts SET jwk = $3, thumbprint = $4, updated_at = now()"
	             " WHERE id = $1::bigint AND thumbprint = $2 AND status = 'valid' RETURNING id",
	             &p, &r, err, "changing the key of ACME account %lld", (long long)id);
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_STATE, "ACME account %lld changed meanwhile",
		             (long long)id);
	PQclear(r);
	if (rc == DB_OK)
		rc = audit_commit(db, id, audit, err);
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}
