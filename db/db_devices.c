/* Device enrolment (EST): provisioning tokens, stored hashed, and the devices enrolled with
 * them, each with its certificates. */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define EPOCH(col) "floor(extract(epoch FROM " col "))::bigint"
#define EPOCH0(col) "coalesce(floor(extract(epoch FROM " col "))::bigint, 0)"

void db_prov_token_clear(struct db_prov_token *t)
{
	free(t->name);
	free(t->profile);
	free(t->created_by);
	for (size_t i = 0; i < t->n_allow; i++)
		free(t->allowlist[i]);
	free(t->allowlist);
	memset(t, 0, sizeof(*t));
}

void db_prov_token_list_free(struct db_prov_token *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		db_prov_token_clear(&rows[i]);
	free(rows);
}

void db_device_clear(struct db_device *d)
{
	free(d->identity);
	free(d->profile);
	free(d->decommissioned_by);
	free(d->decommission_reason);
	memset(d, 0, sizeof(*d));
}

void db_device_list_free(struct db_device *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		db_device_clear(&rows[i]);
	free(rows);
}

/* --- provisioning tokens --- */

/* The allowlist travels as one text parameter, entries separated by newlines (entries are
 * printable ASCII, so a newline cannot be inside one). */
#define TOKEN_COLS                                                                                 \
	"id, name, profile, max_uses, uses, array_to_string(allowlist, E'\\n'), "                  \
	"allow_replace, " EPOCH("expires_at") ", " EPOCH0("revoked_at") ", created_by, " EPOCH(    \
	    "created_at") ", " EPOCH0("last_used_at")

static int split_allowlist(const char *text, struct db_prov_token *out)
{
	size_t n = 0;

	if (!*text)
		return 0;
	for (const char *s = text; *s; s++)
		n += *s == '\n';
	out->allowlist = calloc(n + 1, sizeof(char *));
	if (!out->allowlist)
		return -1;
	for (const char *s = text;;) {
		const char *e = strchr(s, '\n');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (!(out->allowlist[out->n_allow] = strndup(s, len)))
			return -1;
		out->n_allow++;
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

static int token_row(const PGresult *r, int row, struct db_prov_token *out)
{
	int64_t v[8];

	memset(out, 0, sizeof(*out));
	if (db_get_int64(r, row, 0, &v[0]) || db_get_int64(r, row, 3, &v[1]) ||
	    db_get_int64(r, row, 4, &v[2]) || db_get_int64(r, row, 7, &v[3]) ||
	    db_get_int64(r, row, 8, &v[4]) || db_get_int64(r, row, 10, &v[5]) ||
	    db_get_int64(r, row, 11, &v[6]))
		return -1;
	out->id = (int32_t)v[0];
	out->max_uses = (int32_t)v[1];
	out->uses = (int32_t)v[2];
	out->expires_at = v[3];
	out->revoked_at = v[4];
	out->created_at = v[5];
	out->last_used_at = v[6];
	out->allow_replace = !strcmp(PQgetvalue(r, row, 6), "t");
	out->name = db_get_text(r, row, 1);
	out->profile = db_get_text(r, row, 2);
	out->created_by = db_get_text(r, row, 9);
	if (!out->name || !out->profile || !out->created_by ||
	    split_allowlist(PQgetvalue(r, row, 5), out) != 0)
		return -1;
	return 0;
}

enum db_status db_prov_token_add(struct db *db, const uint8_t token_sha256[32], const char *name,
                                 const char *profile, int32_t max_uses,
                                 const char *const *allowlist, size_t n_allow, int allow_replace,
                                 int64_t expires_at, const char *created_by, int32_t *id,
                                 struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	char *joined = NULL;
	size_t total = 1;
	int64_t v;

	*id = 0;
	if ((rc = db_check_text("token name", name, 128, err)) != DB_OK ||
	    (rc = db_check_text("profile", profile, 64, err)) != DB_OK ||
	    (rc = db_check_text("creator", created_by, 128, err)) != DB_OK)
		return rc;
	if (!name[0] || !profile[0])
		return db_fail(err, DB_ERR_INVALID,
		               "a provisioning token needs a name and a profile");
	if (max_uses < 1 || max_uses > 1000000)
		return db_fail(err, DB_ERR_INVALID, "uses must be 1..1000000");
	if (n_allow > DB_ALLOWLIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "an allowlist has at most %d entries",
		               DB_ALLOWLIST_MAX);
	for (size_t i = 0; i < n_allow; i++) {
		size_t len = strlen(allowlist[i]);
		if (len == 0 || len > DB_IDENTITY_MAX)
			return db_fail(err, DB_ERR_INVALID, "allowlist entry %zu: 1..%d characters",
			               i + 1, DB_IDENTITY_MAX);
		for (size_t c = 0; c < len; c++)
			if ((unsigned char)allowlist[i][c] < 0x21 ||
			    (unsigned char)allowlist[i][c] > 0x7e)
				return db_fail(
				    err, DB_ERR_INVALID,
				    "allowlist entry %zu: printable ASCII without spaces "
				    "only",
				    i + 1);
		total += len + 1;
	}
	joined = calloc(1, total);
	if (!joined)
		return db_fail(err, DB_ERR_UNAVAILABLE,
		               "adding a provisioning token: out of memory");
	for (size_t i = 0; i < n_allow; i++) {
		if (i)
			strcat(joined, "\n");
		strcat(joined, allowlist[i]);
	}
	db_param_bytes(&p, token_sha256, 32);
	db_param_text(&p, name);
	db_param_text(&p, profile);
	db_param_int(&p, max_uses);
	db_param_text(&p, joined);
	db_param_text(&p, allow_replace ? "true" : "false");
	db_param_int(&p, expires_at);
	db_param_text(&p, created_by);
	rc = db_exec(db,
	             "INSERT INTO provisioning_tokens (token_sha256, name, profile, max_uses,"
	             " allowlist, allow_replace, expires_at, created_by)"
	             " VALUES ($1, $2, $3, $4::integer,"
	             " coalesce(string_to_array(nullif($5, ''), E'\\n'), '{}'), $6::boolean,"
	             " to_timestamp($7::bigint), $8) RETURNING id",
	             &p, &r, err, "adding provisioning token %s", name);
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &v) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "adding provisioning token %s: no id returned",
		             name);
	if (rc == DB_OK)
		*id = (int32_t)v;
	PQclear(r);
	free(joined);
	return rc;
}

enum db_status db_prov_token_find(struct db *db, const uint8_t token_sha256[32],
                                  struct db_prov_token *out, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	db_param_bytes(&p, token_sha256, 32);
	rc = db_exec(db, "SELECT " TOKEN_COLS " FROM provisioning_tokens WHERE token_sha256 = $1",
	             &p, &r, err, "looking up a provisioning token");
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no such provisioning token");
	else if (token_row(r, 0, out) != 0)
		rc = db_fail(err, DB_ERR_QUERY, "provisioning token: unreadable row");
out:
	PQclear(r);
	if (rc != DB_OK)
		db_prov_token_clear(out);
	return rc;
}

enum db_status db_prov_token_consume(struct db *db, int32_t id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	db_param_int(&p, id);
	rc = db_exec(db,
	             "UPDATE provisioning_tokens SET uses = uses + 1, last_used_at = now()"
	             " WHERE id = $1 AND uses < max_uses AND revoked_at IS NULL"
	             " AND expires_at > now() RETURNING id",
	             &p, &r, err, "using provisioning token %d", (int)id);
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_STATE,
		             "provisioning token %d is spent, expired or revoked", (int)id);
	PQclear(r);
	return rc;
}

enum db_status db_prov_token_refund(struct db *db, int32_t id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	db_param_int(&p, id);
	rc =
	    db_exec(db, "UPDATE provisioning_tokens SET uses = uses - 1 WHERE id = $1 AND uses > 0",
	            &p, &r, err, "giving back a use of provisioning token %d", (int)id);
	PQclear(r);
	return rc;
}

enum db_status db_prov_token_list(struct db *db, struct db_prov_token **rows, size_t *n,
                                  struct db_err *err)
{
	PGresult *r = NULL;
	struct db_prov_token *out = NULL;
	enum db_status rc;
	size_t count = 0, i;

	*rows = NULL;
	*n = 0;
	rc = db_exec(db, "SELECT " TOKEN_COLS " FROM provisioning_tokens ORDER BY id", NULL, &r,
	             err, "listing provisioning tokens");
	if (rc != DB_OK)
		goto out;
	count = (size_t)PQntuples(r);
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "listing provisioning tokens: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++)
		if (token_row(r, (int)i, &out[i]) != 0) {
			rc = db_fail(err, DB_ERR_QUERY,
			             "listing provisioning tokens: unreadable row");
			db_prov_token_list_free(out, i + 1);
			out = NULL;
			goto out;
		}
	*rows = out;
	*n = count;
out:
	PQclear(r);
	return rc;
}

enum db_status db_prov_token_revoke(struct db *db, int32_t id, int *changed, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*changed = 0;
	db_param_int(&p, id);
	rc = db_exec(db,
	             "WITH t AS (SELECT id, revoked_at FROM provisioning_tokens WHERE id = $1"
	             "  FOR UPDATE),"
	             " u AS (UPDATE provisioning_tokens k SET revoked_at = now() FROM t"
	             "  WHERE k.id = t.id AND t.revoked_at IS NULL RETURNING k.id)"
	             " SELECT (SELECT count(*) FROM u) FROM t",
	             &p, &r, err, "revoking provisioning token %d", (int)id);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no provisioning token %d", (int)id);
	else
		*changed = !strcmp(PQgetvalue(r, 0, 0), "1");
out:
	PQclear(r);
	return rc;
}

/* --- devices --- */

#define DEVICE_COLS                                                                                \
	"d.id, d.identity, d.profile, coalesce(d.token_id, 0), d.status, " EPOCH(                  \
	    "d.created_at") ", " EPOCH0("d.decommissioned_at") ", d.decommissioned_by, "           \
	                                                       "d.decommission_reason,"            \
	                                                       " (SELECT count(*) FROM "           \
	                                                       "device_certificates x WHERE "      \
	                                                       "x.device_id = d.id),"              \
	                                                       " (SELECT count(*) FROM "           \
	                                                       "device_certificates x JOIN "       \
	                                                       "certificates c"                    \
	                                                       "  ON c.id = x.certificate_id "     \
	                                                       "WHERE x.device_id = d.id"          \
	                                                       "  AND c.status IN ('issued', "     \
	                                                       "'hold') AND c.not_after > now())"

static int device_row(const PGresult *r, int row, struct db_device *out)
{
	int64_t v[6];

	memset(out, 0, sizeof(*out));
	if (db_get_int64(r, row, 0, &v[0]) || db_get_int64(r, row, 3, &v[1]) ||
	    db_get_int64(r, row, 5, &v[2]) || db_get_int64(r, row, 6, &v[3]) ||
	    db_get_int64(r, row, 9, &v[4]) || db_get_int64(r, row, 10, &v[5]))
		return -1;
	out->id = v[0];
	out->token_id = (int32_t)v[1];
	out->created_at = v[2];
	out->decommissioned_at = v[3];
	out->n_certs = v[4];
	out->n_valid = v[5];
	out->decommissioned = !strcmp(PQgetvalue(r, row, 4), "decommissioned");
	out->identity = db_get_text(r, row, 1);
	out->profile = db_get_text(r, row, 2);
	if (!PQgetisnull(r, row, 7))
		out->decommissioned_by = db_get_text(r, row, 7);
	if (!PQgetisnull(r, row, 8))
		out->decommission_reason = db_get_text(r, row, 8);
	return out->identity && out->profile ? 0 : -1;
}

static enum db_status device_one(struct db *db, const char *where, struct db_params *p,
                                 struct db_device *out, struct db_err *err, const char *what)
{
	char sql[1536];
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	snprintf(sql, sizeof(sql), "SELECT " DEVICE_COLS " FROM devices d WHERE %s", where);
	rc = db_exec(db, sql, p, &r, err, "looking up device %s", what);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no device %s", what);
	else if (device_row(r, 0, out) != 0)
		rc = db_fail(err, DB_ERR_QUERY, "device %s: unreadable row", what);
out:
	PQclear(r);
	if (rc != DB_OK)
		db_device_clear(out);
	return rc;
}

enum db_status db_device_find(struct db *db, const char *identity, struct db_device *out,
                              struct db_err *err)
{
	struct db_params p = {0};
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	if ((rc = db_check_text("device identity", identity, DB_IDENTITY_MAX, err)) != DB_OK)
		return rc;
	db_param_text(&p, identity);
	/* Identities are one device whatever their case (EST stores them in lower case; rows
	 * from before are found too). */
	return device_one(db, "lower(d.identity) = lower($1)", &p, out, err, identity);
}

enum db_status db_device_of_cert(struct db *db, int64_t certificate_id, struct db_device *out,
                                 struct db_err *err)
{
	struct db_params p = {0};

	db_param_int(&p, certificate_id);
	return device_one(db,
	                  "d.id = (SELECT device_id FROM device_certificates"
	                  " WHERE certificate_id = $1::bigint)",
	                  &p, out, err, "of the certificate");
}

/* The key of identity's ($1) enrolment lock: the one-bigint form of the advisory lock, a lock
 * space apart from the (class, key) locks of docs/database.md; the seed keeps the hashes to
 * hsmca's own. */
#define DEVICE_LOCK_KEY "hashtextextended(lower($1), 1752395107)"

/* One statement on identity's enrolment lock. A worker's event loop never waits in PostgreSQL
 * for another enrolment, so the lock is only ever tried (cad_est.c waits on a timer instead)
 * and let go. */
static enum db_status device_lock_op(struct db *db, const char *identity, const char *sql,
                                     const char *what, PGresult **r, struct db_err *err)
{
	struct db_params p = {0};
	enum db_status rc;

	*r = NULL;
	if ((rc = db_check_text("device identity", identity, DB_IDENTITY_MAX, err)) != DB_OK)
		return rc;
	db_param_text(&p, identity);
	return db_exec(db, sql, &p, r, err, "%s the enrolment lock of device %s", what, identity);
}

enum db_status db_device_trylock(struct db *db, const char *identity, int *got, struct db_err *err)
{
	PGresult *r;
	enum db_status rc;

	*got = 0;
	rc = device_lock_op(db, identity, "SELECT pg_try_advisory_lock(" DEVICE_LOCK_KEY ")",
	                    "trying", &r, err);
	if (rc == DB_OK)
		*got = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return rc;
}

enum db_status db_device_unlock(struct db *db, const char *identity, struct db_err *err)
{
	PGresult *r;
	enum db_status rc;

	rc = device_lock_op(db, identity, "SELECT pg_advisory_unlock(" DEVICE_LOCK_KEY ")",
	                    "leaving", &r, err);
	PQclear(r);
	return rc;
}

enum db_status db_device_record(struct db *db, const char *identity, const char *profile,
                                int32_t token_id, int64_t certificate_id, const char *how,
                                int64_t *device_id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t id = 0;
	int own = 0;

	if (device_id)
		*device_id = 0;
	if ((rc = db_check_text("device identity", identity, DB_IDENTITY_MAX, err)) != DB_OK)
		return rc;
	if (!identity[0] || (strcmp(how, "enroll") && strcmp(how, "reenroll")))
		return db_fail(err, DB_ERR_INVALID, "recording a device: bad identity or kind");
	db_param_text(&p, identity);
	db_param_text(&p, profile);
	if (token_id)
		db_param_int(&p, token_id);
	else
		db_param_null(&p);
	rc = db_tx_enter(db, &own, err);
	if (rc != DB_OK)
		return rc;
	/* Stored in lower case: a row of the same device in another case (from before identities
	 * were normalised) takes the lower-case spelling first. The no-op update locks an
	 * existing row, so that a decommission cannot slip in. */
	{
		struct db_params q = {0};
		db_param_text(&q, identity);
		rc = db_exec(db,
		             "UPDATE devices SET identity = lower($1)"
		             " WHERE lower(identity) = lower($1) AND identity <> lower($1)",
		             &q, &r, err, "recording device %s", identity);
		PQclear(r);
		r = NULL;
	}
	if (rc == DB_OK)
		rc = db_exec(db,
		             "INSERT INTO devices (identity, profile, token_id)"
		             " VALUES (lower($1), $2, $3::integer) ON CONFLICT (identity)"
		             " DO UPDATE SET identity = excluded.identity RETURNING id, status",
		             &p, &r, err, "recording device %s", identity);
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &id) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "recording device %s: no id returned", identity);
	if (rc == DB_OK && strcmp(PQgetvalue(r, 0, 1), "active"))
		rc = db_fail(err, DB_ERR_STATE, "device %s is decommissioned", identity);
	PQclear(r);
	r = NULL;
	if (rc == DB_OK) {
		struct db_params q = {0};
		db_param_int(&q, id);
		db_param_int(&q, certificate_id);
		db_param_text(&q, how);
		rc = db_exec(db,
		             "INSERT INTO device_certificates (device_id, certificate_id, how)"
		             " VALUES ($1::bigint, $2::bigint, $3)",
		             &q, &r, err, "recording a certificate of device %s", identity);
		PQclear(r);
	}
	if (rc == DB_OK && device_id)
		*device_id = id;
	return db_tx_leave(db, own, rc, err);
}

enum db_status db_device_supersede(struct db *db, int64_t device_id, int64_t keep_id, int *n,
                                   struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*n = 0;
	db_param_int(&p, device_id);
	db_param_int(&p, keep_id);
	db_param_int(&p, DB_REASON_SUPERSEDED);
	rc = db_exec(db,
	             "UPDATE certificates c SET status = 'revoked', revoked_at = now(),"
	             " revocation_reason = $3::smallint FROM device_certificates x"
	             " WHERE x.certificate_id = c.id AND x.device_id = $1::bigint"
	             " AND c.id <> $2::bigint AND c.status IN ('issued', 'hold')"
	             " AND c.not_after > now() RETURNING c.id",
	             &p, &r, err, "superseding the certificates of device %lld",
	             (long long)device_id);
	if (rc == DB_OK)
		*n = PQntuples(r);
	PQclear(r);
	return rc;
}

enum db_status db_device_list(struct db *db, const char *identity_contains, int64_t after_id,
                              size_t limit, struct db_device **rows, size_t *n,
                              int64_t *next_after_id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	struct db_device *out = NULL;
	enum db_status rc;
	size_t count, i;

	*rows = NULL;
	*n = 0;
	*next_after_id = 0;
	if (!limit)
		limit = 100;
	if (limit > DB_LIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "list: at most %d rows a page", DB_LIST_MAX);
	if (identity_contains && (rc = db_check_text("identity filter", identity_contains,
	                                             DB_IDENTITY_MAX, err)) != DB_OK)
		return rc;
	db_param_text(&p, identity_contains);
	db_param_int(&p, after_id);
	db_param_int(&p, (int64_t)limit + 1);
	/* LIKE's wildcards in the filter are taken literally. */
	rc = db_exec(db,
	             "SELECT " DEVICE_COLS " FROM devices d"
	             " WHERE ($1::text IS NULL OR strpos(lower(d.identity), lower($1)) > 0)"
	             " AND d.id > $2::bigint ORDER BY d.id LIMIT $3::bigint",
	             &p, &r, err, "listing devices");
	if (rc != DB_OK)
		goto out;
	count = (size_t)PQntuples(r);
	if (count > limit) {
		count = limit;
		*next_after_id = 1;
	}
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "listing devices: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++)
		if (device_row(r, (int)i, &out[i]) != 0) {
			rc = db_fail(err, DB_ERR_QUERY, "listing devices: unreadable row");
			db_device_list_free(out, i + 1);
			out = NULL;
			*next_after_id = 0;
			goto out;
		}
	if (*next_after_id)
		*next_after_id = out[count - 1].id;
	*rows = out;
	*n = count;
out:
	PQclear(r);
	return rc;
}

enum db_status db_device_certs(struct db *db, int64_t device_id, struct db_cert **rows, size_t *n,
                               struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t next = 0;
	char sql[2048];

	*rows = NULL;
	*n = 0;
	db_param_int(&p, device_id);
	db_param_int(&p, DB_LIST_MAX + 1);
	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM certificates c JOIN device_certificates x"
	         " ON x.certificate_id = c.id WHERE x.device_id = $1::bigint"
	         " ORDER BY c.id LIMIT $2::bigint",
	         db_cert_cols);
	rc = db_exec(db, sql, &p, &r, err, "listing the certificates of device %lld",
	             (long long)device_id);
	if (rc == DB_OK)
		rc = db_cert_page(r, DB_LIST_MAX, "listing a device's certificates", rows, n, &next,
		                  err);
	PQclear(r);
	return rc;
}

enum db_status db_device_decommission(struct db *db, const char *identity, int reason,
                                      const char *why, const char *by, int *revoked, int *changed,
                                      struct db_err *err)
{
	struct db_params p = {0}, q = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t id = 0;
	int own = 0;

	*revoked = 0;
	*changed = 0;
	if (reason < 0 || reason > 10 || reason == 6 || reason == 7 || reason == 8)
		return db_fail(err, DB_ERR_INVALID, "revocation reason %d is not one of 0-5, 9, 10",
		               reason);
	if ((rc = db_check_text("device identity", identity, DB_IDENTITY_MAX, err)) != DB_OK ||
	    (rc = db_check_text("decommission reason", why, 1024, err)) != DB_OK ||
	    (rc = db_check_text("decommissioned by", by, 128, err)) != DB_OK)
		return rc;
	rc = db_tx_enter(db, &own, err);
	if (rc != DB_OK)
		return rc;
	db_param_text(&p, identity);
	db_param_text(&p, by);
	db_param_text(&p, why);
	rc = db_exec(db,
	             "WITH t AS (SELECT id, status FROM devices WHERE lower(identity) = lower($1)"
	             "  FOR UPDATE),"
	             " u AS (UPDATE devices d SET status = 'decommissioned',"
	             "  decommissioned_at = now(), decommissioned_by = $2,"
	             "  decommission_reason = $3 FROM t"
	             "  WHERE d.id = t.id AND t.status = 'active' RETURNING d.id)"
	             " SELECT t.id, (SELECT count(*) FROM u) FROM t",
	             &p, &r, err, "decommissioning device %s", identity);
	if (rc == DB_OK && PQntuples(r) == 0)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no device %s", identity);
	else if (rc == DB_OK && db_get_int64(r, 0, 0, &id) != 0)
		rc = db_fail(err, DB_ERR_QUERY, "decommissioning device %s: unreadable row",
		             identity);
	if (rc == DB_OK)
		*changed = !strcmp(PQgetvalue(r, 0, 1), "1");
	PQclear(r);
	r = NULL;
	if (rc == DB_OK) {
		/* Every certificate of it, held ones and those not yet expired alike. */
		db_param_int(&q, id);
		db_param_int(&q, reason);
		rc = db_exec(db,
		             "UPDATE certificates c SET status = 'revoked', revoked_at = now(),"
		             " revocation_reason = $2::smallint, invalidity_date = NULL"
		             " FROM device_certificates x WHERE x.certificate_id = c.id"
		             " AND x.device_id = $1::bigint AND c.status IN ('issued', 'hold')"
		             " RETURNING c.id",
		             &q, &r, err, "revoking the certificates of device %s", identity);
		if (rc == DB_OK)
			*revoked = PQntuples(r);
		PQclear(r);
	}
	return db_tx_leave(db, own, rc, err);
}
