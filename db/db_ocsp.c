/* hsmca-ocspd's reads of certificate statuses and its shared copy of pre-signed responses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define STATUS_PAGE_MAX (DB_LIST_MAX * 10)

static int parse_status(const char *s, enum db_cert_status *out)
{
	int st = db_cert_status_parse(s);

	if (st < 0)
		return -1;
	*out = (enum db_cert_status)st;
	return 0;
}

enum db_status db_ocsp_status_page(struct db *db, int64_t after_id, size_t limit,
                                   struct db_ocsp_status **rows, size_t *n, struct db_err *err)
{
	struct db_params p = {0};
	struct db_ocsp_status *out = NULL;
	PGresult *r = NULL;
	enum db_status rc;
	int nr;

	*rows = NULL;
	*n = 0;
	if (limit < 1 || limit > STATUS_PAGE_MAX)
		return db_fail(err, DB_ERR_INVALID, "status page: limit must be 1..%d",
		               STATUS_PAGE_MAX);
	db_param_int(&p, after_id);
	db_param_int(&p, (int64_t)limit);
	rc =
	    db_exec(db,
	            "SELECT id, authority_id, serial, status,"
	            " floor(extract(epoch FROM revoked_at))::bigint, revocation_reason"
	            " FROM certificates WHERE id > $1 ORDER BY id LIMIT $2",
	            &p, &r, err, "reading certificate statuses after id %lld", (long long)after_id);
	if (rc != DB_OK)
		return rc;
	nr = PQntuples(r);
	out = calloc(nr ? (size_t)nr : 1, sizeof(*out));
	if (!out) {
		rc =
		    db_fail(err, DB_ERR_UNAVAILABLE, "reading certificate statuses: out of memory");
		goto out;
	}
	for (int i = 0; i < nr; i++) {
		struct db_ocsp_status *s = &out[i];
		int64_t v, reason = -1;
		if (db_get_int64(r, i, 0, &s->id) != 0 || db_get_int64(r, i, 1, &v) != 0 ||
		    db_get_bytes_into(r, i, 2, s->serial, DB_SERIAL_MAX, 0, &s->serial_len) != 0 ||
		    parse_status(PQgetvalue(r, i, 3), &s->status) != 0 ||
		    (!PQgetisnull(r, i, 4) && db_get_int64(r, i, 4, &s->revoked_at) != 0) ||
		    (!PQgetisnull(r, i, 5) && db_get_int64(r, i, 5, &reason) != 0)) {
			rc = db_fail(err, DB_ERR_QUERY,
			             "reading certificate statuses: unreadable row");
			free(out);
			out = NULL;
			goto out;
		}
		s->authority_id = (int32_t)v;
		s->revocation_reason = (int)reason;
	}
	*rows = out;
	*n = (size_t)nr;
out:
	PQclear(r);
	return rc;
}

enum db_status db_ocsp_response_put(struct db *db, const struct db_ocsp_response *o,
                                    struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if (strcmp(o->cert_id_hash, "sha1") && strcmp(o->cert_id_hash, "sha256"))
		return db_fail(err, DB_ERR_INVALID, "OCSP response: unknown CertID hash");
	if ((rc = db_check_text("OCSP signer key label", o->signer_key_label, DB_KEY_LABEL_MAX,
	                        err)) != DB_OK)
		return rc;
	db_param_int(&p, o->authority_id);
	db_param_bytes(&p, o->serial, o->serial_len);
	db_param_text(&p, o->cert_id_hash);
	db_param_text(&p, db_cert_status_name(o->status));
	if (o->revoked_at)
		db_param_int(&p, o->revoked_at);
	else
		db_param_null(&p);
	if (o->revocation_reason >= 0)
		db_param_int(&p, o->revocation_reason);
	else
		db_param_null(&p);
	db_param_text(&p, o->signer_key_label);
	db_param_int(&p, o->this_update);
	db_param_int(&p, o->next_update);
	db_param_bytes(&p, o->der, o->der_len);
	rc =
	    db_exec(db,
	            "INSERT INTO ocsp_responses (authority_id, serial, cert_id_hash, cert_status,"
	            " revoked_epoch, revocation_reason, signer_key_label, this_update, next_update,"
	            " der) VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8), to_timestamp($9),"
	            " $10) ON CONFLICT (authority_id, serial, cert_id_hash) DO UPDATE SET"
	            " cert_status = excluded.cert_status, revoked_epoch = excluded.revoked_epoch,"
	            " revocation_reason = excluded.revocation_reason,"
	            " signer_key_label = excluded.signer_key_label,"
	            " this_update = excluded.this_update, next_update = excluded.next_update,"
	            " der = excluded.der",
	            &p, &r, err, "storing an OCSP response of authority %d", (int)o->authority_id);
	PQclear(r);
	return rc;
}

/* One row of the shared copy as the page query selects it; 0 or -1 (unreadable). */
static int response_row(const PGresult *r, int i, struct db_ocsp_response *o)
{
	int64_t v, reason = -1;
	const char *hash = PQgetvalue(r, i, 2), *label = PQgetvalue(r, i, 6);

	o->revocation_reason = -1;
	if (db_get_int64(r, i, 0, &v) != 0 ||
	    db_get_bytes_into(r, i, 1, o->serial, DB_SERIAL_MAX, 0, &o->serial_len) != 0 ||
	    strlen(hash) >= sizeof(o->cert_id_hash) ||
	    parse_status(PQgetvalue(r, i, 3), &o->status) != 0 ||
	    (!PQgetisnull(r, i, 4) && db_get_int64(r, i, 4, &o->revoked_at) != 0) ||
	    (!PQgetisnull(r, i, 5) && db_get_int64(r, i, 5, &reason) != 0) ||
	    strlen(label) > DB_KEY_LABEL_MAX || db_get_int64(r, i, 7, &o->this_update) != 0 ||
	    db_get_int64(r, i, 8, &o->next_update) != 0 ||
	    db_get_bytes(r, i, 9, &o->der, &o->der_len) != 0 || !o->der)
		return -1;
	o->authority_id = (int32_t)v;
	o->revocation_reason = (int)reason;
	strcpy(o->cert_id_hash, hash);
	strcpy(o->signer_key_label, label);
	return 0;
}

enum db_status db_ocsp_responses_page(struct db *db, int64_t valid_after,
                                      struct db_ocsp_response_key *after, size_t limit,
                                      struct db_ocsp_response **rows, size_t *n, struct db_err *err)
{
	struct db_params p = {0};
	struct db_ocsp_response *out = NULL, *last;
	PGresult *r = NULL;
	enum db_status rc;
	int nr;

	*rows = NULL;
	*n = 0;
	if (limit < 1 || limit > STATUS_PAGE_MAX)
		return db_fail(err, DB_ERR_INVALID, "stored OCSP responses: limit must be 1..%d",
		               STATUS_PAGE_MAX);
	if (after->serial_len > DB_SERIAL_MAX ||
	    memchr(after->cert_id_hash, 0, sizeof(after->cert_id_hash)) == NULL)
		return db_fail(err, DB_ERR_INVALID, "stored OCSP responses: bad position");
	db_param_int(&p, valid_after);
	/* A zeroed position lies before every row: serials are never empty and authority ids
	 * are positive, but the smallest integer keeps that from mattering. */
	db_param_int(&p, after->serial_len ? after->authority_id : INT32_MIN);
	db_param_bytes(&p, after->serial, after->serial_len);
	db_param_text(&p, after->cert_id_hash);
	db_param_int(&p, (int64_t)limit);
	/* Keyset pagination along the primary key: each page is one short index range scan,
	 * whatever the table's size, and a page read after a lost connection goes on where the
	 * last one ended. */
	rc = db_exec(db,
	             "SELECT o.authority_id, o.serial, o.cert_id_hash, o.cert_status,"
	             " o.revoked_epoch, o.revocation_reason, o.signer_key_label,"
	             " floor(extract(epoch FROM o.this_update))::bigint,"
	             " floor(extract(epoch FROM o.next_update))::bigint, o.der"
	             " FROM ocsp_responses o JOIN certificates c"
	             "  ON c.authority_id = o.authority_id AND c.serial = o.serial"
	             " WHERE (o.authority_id, o.serial, o.cert_id_hash) > ($2, $3, $4)"
	             " AND o.next_update > to_timestamp($1) AND c.status = o.cert_status"
	             " AND o.revoked_epoch IS NOT DISTINCT FROM"
	             "  floor(extract(epoch FROM c.revoked_at))::bigint"
	             " AND o.revocation_reason IS NOT DISTINCT FROM c.revocation_reason"
	             " ORDER BY o.authority_id, o.serial, o.cert_id_hash LIMIT $5",
	             &p, &r, err, "reading stored OCSP responses");
	if (rc != DB_OK)
		return rc;
	nr = PQntuples(r);
	out = calloc(nr ? (size_t)nr : 1, sizeof(*out));
	if (!out) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE,
		             "reading stored OCSP responses: out of memory");
		goto out;
	}
	for (int i = 0; i < nr; i++) {
		if (response_row(r, i, &out[i]) != 0) {
			rc = db_fail(err, DB_ERR_QUERY,
			             "reading stored OCSP responses: unreadable row");
			db_ocsp_responses_free(out, (size_t)i + 1);
			out = NULL;
			goto out;
		}
	}
	if (nr) {
		last = &out[nr - 1];
		after->authority_id = last->authority_id;
		memcpy(after->serial, last->serial, last->serial_len);
		after->serial_len = last->serial_len;
		memcpy(after->cert_id_hash, last->cert_id_hash, sizeof(after->cert_id_hash));
	}
	*rows = out;
	*n = (size_t)nr;
out:
	PQclear(r);
	return rc;
}

void db_ocsp_responses_free(struct db_ocsp_response *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		free(rows[i].der);
	free(rows);
}

enum db_status db_in_recovery(struct db *db, int *standby, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	*standby = 0;
	rc = db_exec(db, "SELECT pg_is_in_recovery()", NULL, &r, err, "asking for recovery");
	if (rc == DB_OK && PQntuples(r) == 1)
		*standby = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return rc;
}
