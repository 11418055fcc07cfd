/* Quorum approvals (migration 0017): requests, votes, states and the per-kind policy. The
 * rules live in the database's triggers; this file turns their refusals into names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_approvals.h"
#include "db_internal.h"

static const char *const state_names[] = {"pending", "approved", "rejected",
                                          "expired", "executed", "failed"};

const char *db_approval_state_name(enum db_approval_state s)
{
	return (unsigned)s < 6 ? state_names[s] : "?";
}

int db_approval_state_parse(const char *name)
{
	for (int i = 0; name && i < 6; i++)
		if (!strcmp(name, state_names[i]))
			return i;
	return -1;
}

void db_approval_clear(struct db_approval *a)
{
	free(a->kind);
	free(a->target);
	free(a->parameters);
	free(a->requester);
	free(a->requester_role);
	free(a->approver_roles);
	free(a->result);
	for (size_t i = 0; i < a->n_votes; i++) {
		free(a->votes[i].approver);
		free(a->votes[i].approver_role);
		free(a->votes[i].reason);
	}
	free(a->votes);
	memset(a, 0, sizeof(*a));
}

void db_approval_list_free(struct db_approval *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		db_approval_clear(&rows[i]);
	free(rows);
}

enum db_approval_refusal db_approval_refusal_of(const struct db_err *err)
{
	static const struct {
		const char *sqlstate;
		enum db_approval_refusal r;
	} map[] = {
	    {"HA000", DB_APPROVAL_NO_SUCH_REQUEST},
	    {"HA001", DB_APPROVAL_NOT_PENDING},
	    {"HA002", DB_APPROVAL_HAS_EXPIRED},
	    {"HA003", DB_APPROVAL_NOT_A_PRINCIPAL},
	    {"HA004", DB_APPROVAL_SELF},
	    {"HA005", DB_APPROVAL_WRONG_ROLE},
	    {"HA006", DB_APPROVAL_BAD_TRANSITION},
	    {"HA007", DB_APPROVAL_BAD_TRANSITION},
	};

	if (!strcmp(err->sqlstate, "23505"))
		return DB_APPROVAL_DUPLICATE_VOTE;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(err->sqlstate, map[i].sqlstate))
			return map[i].r;
	return DB_APPROVAL_OK;
}

/* A refusal of the triggers as DB_ERR_STATE (a second vote stays DB_ERR_CONFLICT). */
static enum db_status refusal_status(enum db_status rc, struct db_err *err)
{
	if (rc == DB_ERR_QUERY && db_approval_refusal_of(err) != DB_APPROVAL_OK)
		err->status = rc = DB_ERR_STATE;
	return rc;
}

static enum db_status check_roles(const char *roles, struct db_err *err)
{
	static const char *const known[] = {"ca-admin", "admin",    "officer",
	                                    "auditor",  "operator", "ra"};
	const char *p = roles;

	if (!roles || !*roles)
		return db_fail(err, DB_ERR_INVALID, "approver roles: none given");
	while (*p) {
		size_t n = strcspn(p, ","), ok = 0;
		for (size_t i = 0; i < 6; i++)
			if (strlen(known[i]) == n && !strncmp(p, known[i], n))
				ok = 1;
		if (!ok)
			return db_fail(err, DB_ERR_INVALID, "approver roles: \"%.*s\" is no role",
			               (int)(n > 32 ? 32 : n), p);
		p += n + (p[n] == ',');
	}
	return DB_OK;
}

enum db_status db_approval_create(struct db *db, const struct db_approval_new *req, int64_t *id,
                                  struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	const char *params = req->parameters && *req->parameters ? req->parameters : "{}";

	*id = 0;
	if ((rc = db_check_text("approval kind", req->kind, DB_APPROVAL_KIND_MAX, err)) != DB_OK ||
	    (rc = db_check_text("approval target", req->target, DB_APPROVAL_TARGET_MAX, err)) !=
	        DB_OK ||
	    (rc = db_check_text("approval parameters", params, DB_APPROVAL_PARAMETERS_MAX, err)) !=
	        DB_OK ||
	    (rc = db_check_text("requester", req->requester, 128, err)) != DB_OK ||
	    (rc = db_check_text("requester role", req->requester_role, 32, err)) != DB_OK ||
	    (rc = check_roles(req->approver_roles, err)) != DB_OK)
		return rc;
	if (req->required < 1 || req->required > DB_APPROVAL_MAX_REQUIRED ||
	    req->expiry_seconds <= 0 || !*req->target)
		return db_fail(err, DB_ERR_INVALID,
		               "approval request: 1..%d approvals, a target and an expiry are "
		               "required",
		               DB_APPROVAL_MAX_REQUIRED);
	db_param_text(&p, req->kind);
	db_param_text(&p, req->target);
	db_param_text(&p, params);
	db_param_text(&p, req->requester);
	db_param_text(&p, req->requester_role);
	db_param_int(&p, req->required);
	db_param_text(&p, req->approver_roles);
	db_param_int(&p, req->expiry_seconds);
	rc = db_exec(db,
	             "INSERT INTO approval_requests (kind, target, parameters, requester,"
	             " requester_role, required_approvals, approver_roles, expires_at)"
	             " VALUES ($1, $2, $3::jsonb, $4, $5, $6::integer, string_to_array($7, ','),"
	             " now() + make_interval(secs => $8::bigint)) RETURNING id",
	             &p, &r, err, "making an approval request of kind %s", req->kind);
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, id) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "making an approval request: no id returned");
	PQclear(r);
	return rc;
}

#define REQUEST_COLS                                                                               \
	"a.id, a.kind, a.target, a.parameters::text, a.requester, a.requester_role,"               \
	" a.required_approvals, array_to_string(a.approver_roles, ','), a.state,"                  \
	" floor(extract(epoch FROM a.created_at))::bigint,"                                        \
	" floor(extract(epoch FROM a.expires_at))::bigint,"                                        \
	" coalesce(floor(extract(epoch FROM a.executed_at))::bigint, 0), a.result,"                \
	" (SELECT count(*) FROM approval_votes v WHERE v.request_id = a.id"                        \
	" AND v.vote = 'approve'),"                                                                \
	" (SELECT count(*) FROM approval_votes v WHERE v.request_id = a.id"                        \
	" AND v.vote = 'reject')"

static int parse_row(const PGresult *r, int row, struct db_approval *a)
{
	int64_t v[7];
	int st;

	memset(a, 0, sizeof(*a));
	a->kind = db_get_text(r, row, 1);
	a->target = db_get_text(r, row, 2);
	a->parameters = db_get_text(r, row, 3);
	a->requester = db_get_text(r, row, 4);
	a->requester_role = db_get_text(r, row, 5);
	a->approver_roles = db_get_text(r, row, 7);
	a->result = db_get_text(r, row, 12);
	st = db_approval_state_parse(PQgetvalue(r, row, 8));
	if (!a->kind || !a->target || !a->parameters || !a->requester || !a->requester_role ||
	    !a->approver_roles || st < 0 || db_get_int64(r, row, 0, &v[0]) ||
	    db_get_int64(r, row, 6, &v[1]) || db_get_int64(r, row, 9, &v[2]) ||
	    db_get_int64(r, row, 10, &v[3]) || db_get_int64(r, row, 11, &v[4]) ||
	    db_get_int64(r, row, 13, &v[5]) || db_get_int64(r, row, 14, &v[6]))
		return -1;
	a->id = v[0];
	a->required = (int)v[1];
	a->state = (enum db_approval_state)st;
	a->created_at = v[2];
	a->expires_at = v[3];
	a->executed_at = v[4];
	a->approvals = (int)v[5];
	a->rejections = (int)v[6];
	return 0;
}

static enum db_status get_votes(struct db *db, struct db_approval *a, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int rows;

	db_param_int(&p, a->id);
	rc = db_exec(db,
	             "SELECT approver, approver_role, vote, reason,"
	             " floor(extract(epoch FROM voted_at))::bigint"
	             " FROM approval_votes WHERE request_id = $1::bigint ORDER BY id",
	             &p, &r, err, "reading the votes of approval request %lld", (long long)a->id);
	if (rc != DB_OK)
		return rc;
	rows = PQntuples(r);
	if (rows && !(a->votes = calloc((size_t)rows, sizeof(*a->votes)))) {
		PQclear(r);
		return db_fail(err, DB_ERR_QUERY, "reading votes: out of memory");
	}
	for (int i = 0; i < rows; i++) {
		struct db_approval_vote *v = &a->votes[i];
		v->approver = db_get_text(r, i, 0);
		v->approver_role = db_get_text(r, i, 1);
		v->reason = db_get_text(r, i, 3);
		v->approve = !strcmp(PQgetvalue(r, i, 2), "approve");
		a->n_votes++;
		if (!v->approver || !v->approver_role || !v->reason ||
		    db_get_int64(r, i, 4, &v->voted_at)) {
			PQclear(r);
			return db_fail(err, DB_ERR_QUERY, "reading votes: unreadable row");
		}
	}
	PQclear(r);
	return DB_OK;
}

enum db_status db_approval_get(struct db *db, int64_t id, int for_update, struct db_approval *out,
                               struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	db_param_int(&p, id);
	rc = db_exec(db,
	             for_update ? "SELECT " REQUEST_COLS " FROM approval_requests a"
	                          " WHERE a.id = $1::bigint FOR UPDATE OF a"
	                        : "SELECT " REQUEST_COLS " FROM approval_requests a"
	                          " WHERE a.id = $1::bigint",
	             &p, &r, err, "reading approval request %lld", (long long)id);
	if (rc != DB_OK)
		return rc;
	if (PQntuples(r) == 0)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no approval request %lld", (long long)id);
	else if (parse_row(r, 0, out) != 0)
		rc = db_fail(err, DB_ERR_QUERY, "approval request %lld: unreadable row",
		             (long long)id);
	PQclear(r);
	if (rc == DB_OK)
		rc = get_votes(db, out, err);
	if (rc != DB_OK)
		db_approval_clear(out);
	return rc;
}

static enum db_status parse_rows(PGresult *r, struct db_approval **rows, size_t *n,
                                 struct db_err *err)
{
	int count = PQntuples(r);
	struct db_approval *list = calloc(count ? (size_t)count : 1, sizeof(*list));

	if (!list)
		return db_fail(err, DB_ERR_QUERY, "approval requests: out of memory");
	for (int i = 0; i < count; i++)
		if (parse_row(r, i, &list[i]) != 0) {
			db_approval_list_free(list, (size_t)i + 1);
			return db_fail(err, DB_ERR_QUERY, "approval requests: unreadable row");
		}
	*rows = list;
	*n = (size_t)count;
	return DB_OK;
}

enum db_status db_approval_list(struct db *db, const struct db_approval_filter *f,
                                struct db_approval **rows, size_t *n, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	size_t limit = f->limit ? f->limit : 100;

	*rows = NULL;
	*n = 0;
	if (limit > DB_LIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "at most %d approval requests a page",
		               DB_LIST_MAX);
	if ((f->kind &&
	     (rc = db_check_text("approval kind", f->kind, DB_APPROVAL_KIND_MAX, err)) != DB_OK) ||
	    (f->target && (rc = db_check_text("approval target", f->target, DB_APPROVAL_TARGET_MAX,
	                                      err)) != DB_OK))
		return rc;
	if (f->state >= 0)
		db_param_text(&p, db_approval_state_name((enum db_approval_state)f->state));
	else
		db_param_null(&p);
	if (f->kind)
		db_param_text(&p, f->kind);
	else
		db_param_null(&p);
	if (f->target)
		db_param_text(&p, f->target);
	else
		db_param_null(&p);
	db_param_int(&p, (int64_t)limit);
	rc = db_exec(
	    db,
	    "SELECT " REQUEST_COLS " FROM approval_requests a"
	    " WHERE ($1::text IS NULL OR a.state = $1) AND ($2::text IS NULL OR a.kind = $2)"
	    " AND ($3::text IS NULL OR a.target = $3)"
	    " ORDER BY (a.state = 'pending') DESC, a.id DESC LIMIT $4::bigint",
	    &p, &r, err, "listing approval requests");
	if (rc == DB_OK)
		rc = parse_rows(r, rows, n, err);
	PQclear(r);
	return rc;
}

enum db_status db_approval_vote(struct db *db, int64_t id, const char *approver, int approve,
                                const char *reason, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if (!reason)
		reason = "";
	if ((rc = db_check_text("approver", approver, 128, err)) != DB_OK ||
	    (rc = db_check_text("reason", reason, DB_APPROVAL_REASON_MAX, err)) != DB_OK)
		return rc;
	db_param_int(&p, id);
	db_param_text(&p, approver);
	db_param_text(&p, approve ? "approve" : "reject");
	db_param_text(&p, reason);
	/* The trigger approval_votes_check locks the request and judges the vote. */
	rc = db_exec(db,
	             "INSERT INTO approval_votes (request_id, approver, vote, reason)"
	             " VALUES ($1::bigint, $2, $3, $4)",
	             &p, &r, err, "recording %s's vote on approval request %lld", approver,
	             (long long)id);
	PQclear(r);
	return refusal_status(rc, err);
}

enum db_status db_approval_set_state(struct db *db, int64_t id, enum db_approval_state state,
                                     const char *result, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if (result &&
	    (rc = db_check_text("approval result", result, DB_APPROVAL_RESULT_MAX, err)) != DB_OK)
		return rc;
	db_param_int(&p, id);
	db_param_text(&p, db_approval_state_name(state));
	if (result)
		db_param_text(&p, result);
	else
		db_param_null(&p);
	rc = db_exec(db,
	             "UPDATE approval_requests SET state = $2, result = $3"
	             " WHERE id = $1::bigint RETURNING id",
	             &p, &r, err, "approval request %lld -> %s", (long long)id,
	             db_approval_state_name(state));
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no approval request %lld", (long long)id);
	PQclear(r);
	return refusal_status(rc, err);
}

enum db_status db_approval_expire_due(struct db *db, struct db_approval **rows, size_t *n,
                                      struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	*rows = NULL;
	*n = 0;
	rc = db_exec(db,
	             "UPDATE approval_requests a SET state = 'expired'"
	             " WHERE a.state IN ('pending', 'approved') AND a.expires_at <= now()"
	             " RETURNING " REQUEST_COLS,
	             NULL, &r, err, "expiring approval requests");
	if (rc == DB_OK)
		rc = parse_rows(r, rows, n, err);
	PQclear(r);
	return rc;
}

enum db_status db_approval_savepoint(struct db *db, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc = db_exec(db, "SAVEPOINT approval_operation", NULL, &r, err,
	                            "setting a savepoint before an approved operation");

	PQclear(r);
	return rc;
}

enum db_status db_approval_rollback_to_savepoint(struct db *db, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc = db_exec(db, "ROLLBACK TO SAVEPOINT approval_operation", NULL, &r, err,
	                            "undoing a failed approved operation");

	PQclear(r);
	return rc;
}

enum db_status db_approval_policy_put(struct db *db, const char *kind, int required,
                                      const char *approver_roles, int64_t expiry_seconds,
                                      struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("approval kind", kind, DB_APPROVAL_KIND_MAX, err)) != DB_OK ||
	    (rc = check_roles(approver_roles, err)) != DB_OK)
		return rc;
	db_param_text(&p, kind);
	db_param_int(&p, required);
	db_param_text(&p, approver_roles);
	db_param_int(&p, expiry_seconds);
	rc = db_exec(
	    db,
	    "INSERT INTO approval_policies (kind, required_approvals, approver_roles,"
	    " expiry_seconds) VALUES ($1, $2::integer, string_to_array($3, ','),"
	    " $4::integer) ON CONFLICT (kind) DO UPDATE SET"
	    " required_approvals = EXCLUDED.required_approvals,"
	    " approver_roles = EXCLUDED.approver_roles,"
	    " expiry_seconds = EXCLUDED.expiry_seconds, updated_at = now()"
	    " WHERE (approval_policies.required_approvals, approval_policies.approver_roles,"
	    " approval_policies.expiry_seconds) IS DISTINCT FROM"
	    " (EXCLUDED.required_approvals, EXCLUDED.approver_roles,"
	    " EXCLUDED.expiry_seconds)",
	    &p, &r, err, "storing the approval policy of %s", kind);
	PQclear(r);
	return rc;
}

enum db_status db_approval_policy_get(struct db *db, const char *kind, int *required,
                                      char *approver_roles, size_t roles_size, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	*required = 1;
	if (roles_size)
		approver_roles[0] = '\0';
	if ((rc = db_check_text("approval kind", kind, DB_APPROVAL_KIND_MAX, err)) != DB_OK)
		return rc;
	db_param_text(&p, kind);
	rc = db_exec(db,
	             "SELECT required_approvals, array_to_string(approver_roles, ',')"
	             " FROM approval_policies WHERE kind = $1",
	             &p, &r, err, "reading the approval policy of %s", kind);
	if (rc == DB_OK && PQntuples(r) == 1) {
		if (db_get_int64(r, 0, 0, &v) != 0)
			rc = db_fail(err, DB_ERR_QUERY, "approval policy of %s: unreadable", kind);
		else
			*required = (int)v;
		if (roles_size)
			snprintf(approver_roles, roles_size, "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return rc;
}
