/* Reading the audit log back, for export to auditors. */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

void db_audit_rows_free(struct db_audit_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].actor);
		free(rows[i].role);
		free(rows[i].action);
		free(rows[i].object);
		free(rows[i].outcome);
		free(rows[i].detail);
	}
	free(rows);
}

enum db_status db_audit_list(struct db *db, int64_t after_seq, size_t limit,
                             struct db_audit_row **rows, size_t *n, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	struct db_audit_row *out = NULL;
	size_t i = 0, count, len;

	*rows = NULL;
	*n = 0;
	if (limit == 0 || limit > DB_LIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "audit listing: limit must be 1..%d",
		               DB_LIST_MAX);
	db_param_int(&p, after_seq);
	db_param_int(&p, (int64_t)limit);
	rc = db_exec(db,
	             "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint, actor, role, action,"
	             " object, outcome, detail, hash FROM audit_log WHERE seq > $1"
	             " ORDER BY seq LIMIT $2",
	             &p, &r, err, "reading the audit log after entry %lld", (long long)after_seq);
	if (rc != DB_OK)
		goto out;
	count = (size_t)PQntuples(r);
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "reading the audit log: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		struct db_audit_row *a = &out[i];
		int row = (int)i;

		a->actor = db_get_text(r, row, 2);
		a->role = db_get_text(r, row, 3);
		a->action = db_get_text(r, row, 4);
		a->object = db_get_text(r, row, 5);
		a->outcome = db_get_text(r, row, 6);
		a->detail = db_get_text(r, row, 7);
		if (db_get_int64(r, row, 0, &a->seq) || db_get_int64(r, row, 1, &a->at_us) ||
		    !a->actor || !a->role || !a->action || !a->object || !a->outcome ||
		    !a->detail || db_get_bytes_into(r, row, 8, a->hash, 32, 1, &len)) {
			rc = db_fail(err, DB_ERR_QUERY, "reading the audit log: unreadable row");
			i++;
			goto out;
		}
	}
	*rows = out;
	*n = count;
	out = NULL;
out:
	PQclear(r);
	if (out)
		db_audit_rows_free(out, i);
	return rc;
}

void db_audit_checkpoints_free(struct db_audit_checkpoint *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].signature);
		free(rows[i].key_label);
	}
	free(rows);
}

enum db_status db_audit_checkpoints_list(struct db *db, struct db_audit_checkpoint **rows,
                                         size_t *n, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	struct db_audit_checkpoint *out = NULL;
	size_t i = 0, count, len;

	*rows = NULL;
	*n = 0;
	rc = db_exec(db,
	             "SELECT seq, head_hash, signature, key_label FROM audit_checkpoints"
	             " ORDER BY seq",
	             NULL, &r, err, "reading the audit checkpoints");
	if (rc != DB_OK)
		goto out;
	count = (size_t)PQntuples(r);
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE,
		             "reading the audit checkpoints: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		struct db_audit_checkpoint *c = &out[i];
		int row = (int)i;

		c->key_label = db_get_text(r, row, 3);
		if (db_get_int64(r, row, 0, &c->seq) ||
		    db_get_bytes_into(r, row, 1, c->head_hash, 32, 1, &len) ||
		    db_get_bytes(r, row, 2, &c->signature, &c->signature_len) || !c->key_label) {
			rc = db_fail(err, DB_ERR_QUERY,
			             "reading the audit checkpoints: unreadable row");
			i++;
			goto out;
		}
	}
	*rows = out;
	*n = count;
	out = NULL;
out:
	PQclear(r);
	if (out)
		db_audit_checkpoints_free(out, i);
	return rc;
}
