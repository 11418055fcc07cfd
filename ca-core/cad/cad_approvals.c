/* Quorum approvals: the kinds, their policy from the configuration, and the API that lists,
 * shows, requests, approves and rejects (docs/approvals.md). Every step is audited in the
 * transaction that makes it; the database's triggers judge every vote and change of state
 * (migration 0017), and this file names their refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cad_approvals.h"
#include "cad_internal.h"
#include "log.h"

/* Kinds run by hsmca-cad have an execute function; the others are run by `hsmca` (which
 * marks the approved request executed or failed). A new kind is one line here. */
static const struct cad_approval_kind kinds[] = {
    {"authority.retire", "ca-admin", NULL, cad_authority_retire_execute, NULL},
    {"certificate.revoke-ca", "ca-admin,officer", NULL, cad_cert_revoke_ca_execute, NULL},
    {"ceremony.run", "ca-admin", "ca-admin", NULL, "sha256"},
    {"backup.restore", "ca-admin", "ca-admin", NULL, "sha256"},
    {"key.recovery", "officer", "officer", NULL, "serial"},
    /* hsmca keyd generate: the target is the SHA-256 of the key's label and type. */
    {"key.generate", "ca-admin", "ca-admin", NULL, "sha256"},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const struct cad_approval_kind *cad_approval_kind_find(const char *kind)
{
	for (size_t i = 0; kind && i < N_KINDS; i++)
		if (!strcmp(kinds[i].kind, kind))
			return &kinds[i];
	return NULL;
}

/* --- configuration --- */

static const struct cad_approval_policy *policy_of(const struct cad_config *cfg, const char *kind)
{
	for (size_t i = 0; i < cfg->n_approvals; i++)
		if (!strcmp(cfg->approvals[i].kind, kind))
			return &cfg->approvals[i];
	return NULL;
}

int cad_approval_required(const struct cad_config *cfg, const char *kind)
{
	const struct cad_approval_policy *p = policy_of(cfg, kind);
	return p ? p->required : 1;
}

const char *cad_approval_approvers(const struct cad_config *cfg, const char *kind)
{
	const struct cad_approval_policy *p = policy_of(cfg, kind);
	const struct cad_approval_kind *k = cad_approval_kind_find(kind);

	if (p && p->approvers[0])
		return p->approvers;
	return k ? k->default_approvers : "ca-admin";
}

static const char *const approvals_fields[] = {"expiry_seconds", "kinds", NULL};
static const char *const kind_fields[] = {"kind", "required", "approvers", NULL};

static int parse_kind(struct yconf *y, yaml_node_t *m, struct cad_config *cfg,
                      struct cad_approval_policy *p)
{
	yaml_node_t *roles;
	long l = 1;

	if (yconf_check_map(y, m, "approvals.kinds", kind_fields) ||
	    yconf_req_str(y, m, "kind", p->kind, sizeof(p->kind)) ||
	    yconf_opt_long(y, m, "required", 1, DB_APPROVAL_MAX_REQUIRED, &l))
		return -1;
	if (!cad_approval_kind_find(p->kind))
		return yconf_fail(
		    y, m, "kind",
		    "\"%s\" is no kind of approval (authority.retire, "
		    "certificate.revoke-ca, ceremony.run, backup.restore, key.recovery, "
		    "key.generate; "
		    "docs/approvals.md)",
		    p->kind);
	for (size_t i = 0; i < cfg->n_approvals; i++)
		if (!strcmp(cfg->approvals[i].kind, p->kind))
			return yconf_fail(y, m, "kind", "\"%s\" is listed twice", p->kind);
	p->required = (int)l;
	if ((roles = yconf_get(y, m, "approvers"))) {
		if (!yconf_is_seq(roles) || yconf_seq_len(roles) < 1 || yconf_seq_len(roles) > 6)
			return yconf_fail(y, roles, "approvers", "must be a list of 1..6 roles");
		for (size_t i = 0; i < yconf_seq_len(roles); i++) {
			char role[32];
			if (yconf_str(y, yconf_seq_item(y, roles, i), "approvers", role,
			              sizeof(role)))
				return -1;
			if (!cad_role_bit(role))
				return yconf_fail(y, roles, "approvers",
				                  "\"%s\" is no role (ca-admin, admin, officer, "
				                  "auditor, operator, ra)",
				                  role);
			{
				char with[40], all[80];
				snprintf(with, sizeof(with), ",%s,", role);
				snprintf(all, sizeof(all), ",%s,", p->approvers);
				if (strstr(all, with))
					return yconf_fail(y, roles, "approvers",
					                  "\"%s\" is listed twice", role);
			}
			if (strlen(p->approvers) + strlen(role) + 2 > sizeof(p->approvers))
				return yconf_fail(y, roles, "approvers", "too long");
			if (p->approvers[0])
				strcat(p->approvers, ",");
			strcat(p->approvers, role);
		}
	} else {
		snprintf(p->approvers, sizeof(p->approvers), "%s",
		         cad_approval_kind_find(p->kind)->default_approvers);
	}
	return 0;
}

int cad_approvals_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg)
{
	yaml_node_t *seq;
	long l = 86400;

	cfg->approval_expiry_seconds = 86400;
	cfg->n_approvals = 0;
	if (!n)
		return 0;
	if (yconf_check_map(y, n, "approvals", approvals_fields) ||
	    yconf_opt_long(y, n, "expiry_seconds", 1, 2592000, &l))
		return -1;
	cfg->approval_expiry_seconds = (int)l;
	if (!(seq = yconf_get(y, n, "kinds")))
		return 0;
	if (!yconf_is_seq(seq))
		return yconf_fail(y, seq, "approvals.kinds", "must be a list");
	if (yconf_seq_len(seq) > CAD_MAX_APPROVAL_KINDS)
		return yconf_fail(y, seq, "approvals.kinds", "more than %d entries",
		                  CAD_MAX_APPROVAL_KINDS);
	for (size_t i = 0; i < yconf_seq_len(seq); i++) {
		struct cad_approval_policy p = {0};
		if (parse_kind(y, yconf_seq_item(y, seq, i), cfg, &p))
			return -1;
		cfg->approvals[cfg->n_approvals++] = p;
	}
	return 0;
}

int cad_approvals_publish(const struct cad_config *cfg, struct db *db, struct db_err *err)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (db_approval_policy_put(db, kinds[i].kind,
		                           cad_approval_required(cfg, kinds[i].kind),
		                           cad_approval_approvers(cfg, kinds[i].kind),
		                           cfg->approval_expiry_seconds, err) != DB_OK)
			return -1;
	return 0;
}

/* Publish once per process, when the database is first reached for approvals. */
static _Atomic int published;

static void publish_once(struct cad_req *r, struct db *db)
{
	struct db_err err = {0};

	if (published)
		return;
	if (cad_approvals_publish(r->cad->cfg, db, &err) == 0)
		published = 1;
	else
		log_warn("could not store the approval policy for the command line: %s", err.msg);
}

/* --- audit --- */

enum db_status cad_approval_audit(struct cad_req *r, struct db *db, const char *action,
                                  const char *object, const char *outcome, json_t *detail,
                                  int commit, struct db_err *err)
{
	char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	struct db_audit_entry e;
	enum db_status rc;
	int64_t seq;

	cad_audit_entry(r, object, outcome, text, &e);
	e.action = action;
	rc =
	    commit ? db_audit_append_commit(db, &e, &seq, err) : db_audit_append(db, &e, &seq, err);
	free(text);
	return rc;
}

/* --- JSON --- */

static json_t *roles_json(const char *roles)
{
	json_t *a = json_array();

	while (a && *roles) {
		size_t n = strcspn(roles, ",");
		json_array_append_new(a, json_stringn(roles, n));
		roles += n + (roles[n] == ',');
	}
	return a;
}

static json_t *approval_json(const struct db_approval *a, int with_votes)
{
	char t1[32], t2[32], t3[32];
	json_t *params = json_loads(a->parameters, 0, NULL), *result = NULL, *o;

	if (a->result && !(result = json_loads(a->result, 0, NULL)))
		result = json_string(a->result);
	o = json_pack("{s:I, s:s, s:s, s:o, s:s, s:s, s:i, s:i, s:i, s:o, s:s, s:s?, s:s?, s:s?, "
	              "s:o?}",
	              "id", (json_int_t)a->id, "kind", a->kind, "target", a->target, "parameters",
	              params ? params : json_object(), "requester", a->requester, "requester_role",
	              a->requester_role, "required_approvals", a->required, "approvals",
	              a->approvals, "rejections", a->rejections, "approver_roles",
	              roles_json(a->approver_roles), "state", db_approval_state_name(a->state),
	              "created_at", cad_time_text(a->created_at, t1, sizeof(t1)), "expires_at",
	              cad_time_text(a->expires_at, t2, sizeof(t2)), "executed_at",
	              cad_time_text(a->executed_at, t3, sizeof(t3)), "result", result);
	if (o && with_votes) {
		json_t *votes = json_array();
		for (size_t i = 0; votes && i < a->n_votes; i++)
			json_array_append_new(
			    votes,
			    json_pack("{s:s, s:s, s:s, s:s, s:s?}", "approver",
			              a->votes[i].approver, "role", a->votes[i].approver_role,
			              "vote", a->votes[i].approve ? "approve" : "reject", "reason",
			              a->votes[i].reason, "at",
			              cad_time_text(a->votes[i].voted_at, t1, sizeof(t1))));
		json_object_set_new(o, "votes", votes ? votes : json_array());
	}
	return o;
}

static void object_name(int64_t id, char *out, size_t n)
{
	snprintf(out, n, "approval/%lld", (long long)id);
}

/* Mark the requests whose time is up expired, each audited (actor: the principal whose
 * request noticed it). 0, or -1 after replying with the database error. */
static int expire_due(struct cad_req *r, struct db *db)
{
	struct db_approval *rows = NULL;
	struct db_err err = {0};
	size_t n = 0;
	char obj[40];

	if (db_begin(db, &err) != DB_OK || db_approval_expire_due(db, &rows, &n, &err) != DB_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_pack("{s:s, s:s, s:i, s:i}", "kind", rows[i].kind, "target",
		                      rows[i].target, "approvals", rows[i].approvals,
		                      "required_approvals", rows[i].required);
		object_name(rows[i].id, obj, sizeof(obj));
		if (cad_approval_audit(r, db, "approval.expire", obj, "success", d, 0, &err) !=
		    DB_OK) {
			json_decref(d);
			goto fail;
		}
		json_decref(d);
		log_info("approval request %lld (%s %s) expired", (long long)rows[i].id,
		         rows[i].kind, rows[i].target);
	}
	db_approval_list_free(rows, n);
	if (db_commit(db, &err) != DB_OK)
		goto fail_rows_freed;
	return 0;
fail:
	db_approval_list_free(rows, n);
fail_rows_freed:
	db_rollback(db);
	cad_reply_db_error(r, &err);
	return -1;
}

/* --- making a request --- */

void cad_approval_request(struct cad_req *r, const char *kind, const char *target,
                          json_t *parameters)
{
	const struct cad_config *cfg = r->cad->cfg;
	struct db_approval_new req = {
	    .kind = kind,
	    .target = target,
	    .requester = r->who.name,
	    .requester_role = r->who.role,
	    .required = cad_approval_required(cfg, kind),
	    .approver_roles = cad_approval_approvers(cfg, kind),
	    .expiry_seconds = cfg->approval_expiry_seconds,
	};
	struct db_approval_filter f = {
	    .state = DB_APPROVAL_PENDING, .kind = kind, .target = target, .limit = 1};
	struct db_approval *open = NULL, a = {0};
	struct db_err err = {0};
	json_t *detail = NULL;
	char *ptext = NULL, obj[40], loc[64];
	size_t n = 0;
	int64_t id;
	struct db *db;

	if (!(db = cad_db(r)))
		return;
	publish_once(r, db);
	if (expire_due(r, db) != 0)
		return;
	ptext = json_dumps(parameters ? parameters : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
	req.parameters = ptext;
	if (!ptext || db_begin(db, &err) != DB_OK ||
	    db_approval_list(db, &f, &open, &n, &err) != DB_OK)
		goto db_fail;
	if (n) {
		/* One open request per operation: approve that one, or reject it first. */
		db_rollback(db);
		cad_deny(r, 409, "approval-pending", target,
		         "%s of %s waits for approval already: request %lld", kind, target,
		         (long long)open[0].id);
		goto out;
	}
	if (db_approval_create(db, &req, &id, &err) != DB_OK)
		goto db_fail;
	object_name(id, obj, sizeof(obj));
	detail = json_pack("{s:s, s:s, s:O, s:i, s:s, s:i}", "kind", kind, "target", target,
	                   "parameters", parameters ? parameters : json_null(),
	                   "required_approvals", req.required, "approver_roles", req.approver_roles,
	                   "expiry_seconds", cfg->approval_expiry_seconds);
	if (cad_approval_audit(r, db, "approval.request", obj, "success", detail, 1, &err) != DB_OK)
		goto db_fail;
	log_info("approval request %lld: %s of %s by %s, %d approvals of %s needed", (long long)id,
	         kind, target, r->who.name, req.required, req.approver_roles);
	if (db_approval_get(db, id, 0, &a, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	snprintf(loc, sizeof(loc), "/api/v1/approvals/%lld", (long long)id);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Location", loc);
	cad_reply_json(r, 202, json_pack("{s:o}", "approval", approval_json(&a, 1)));
	goto out;
db_fail:
	db_rollback(db);
	cad_reply_db_error(r, &err);
out:
	db_approval_clear(&a);
	db_approval_list_free(open, n);
	json_decref(detail);
	free(ptext);
}

void cad_h_approval_create(struct cad_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	struct cad_approval_create_body b;
	const struct cad_approval_kind *k;
	char err[256], roles[80];
	json_t *params;

	if (len > r->cad->cfg->max_body_bytes) {
		cad_reply_error(r, 413, "body-too-large",
		                "the request body has %zu bytes; at most %zu", len,
		                r->cad->cfg->max_body_bytes);
		return;
	}
	if (cad_approval_parse_create((const char *)evbuffer_pullup(in, -1), len, &b, err,
	                              sizeof(err)) != 0) {
		cad_reply_error(r, 400, "bad-request", "%s", err);
		return;
	}
	k = cad_approval_kind_find(b.kind);
	snprintf(roles, sizeof(roles), ",%s,", k->requesters);
	{
		char me[40];
		snprintf(me, sizeof(me), ",%s,", r->who.role);
		if (!strstr(roles, me)) {
			cad_deny(r, 403, "role-not-permitted", b.kind,
			         "role %s may not request %s (requesters: %s)", r->who.role, b.kind,
			         k->requesters);
			goto out;
		}
	}
	if (cad_approval_required(r->cad->cfg, b.kind) < 2) {
		cad_deny(r, 409, "approval-not-required", b.kind,
		         "the configuration needs no approval for %s (threshold 1)", b.kind);
		goto out;
	}
	if (!strcmp(b.kind, "key.recovery")) {
		/* As POST /api/v1/certificates/{serial}/recover: only an archived key. */
		cad_key_recovery_request(r, b.target, b.reason);
		goto out;
	}
	params = b.parameters;
	json_object_set_new(params, "reason", json_string(b.reason));
	cad_approval_request(r, b.kind, b.target, params);
out:
	cad_approval_create_body_clear(&b);
}

/* --- reading --- */

void cad_h_approval_list(struct cad_req *r)
{
	struct db_approval_filter f = {.state = -1};
	const char *state = cad_query(r, "state"), *limit = cad_query(r, "limit");
	struct db_approval *rows = NULL;
	struct db_err err = {0};
	size_t n = 0;
	struct db *db;
	json_t *arr;

	if (state && (f.state = db_approval_state_parse(state)) < 0) {
		cad_reply_error(r, 400, "bad-query",
		                "state must be pending, approved, rejected, expired, executed or "
		                "failed");
		return;
	}
	if ((f.kind = cad_query(r, "kind")) && !cad_approval_kind_find(f.kind)) {
		cad_reply_error(r, 400, "bad-query", "kind \"%.64s\" is no kind of approval",
		                f.kind);
		return;
	}
	f.target = cad_query(r, "target");
	if (f.target && strlen(f.target) > DB_APPROVAL_TARGET_MAX) {
		cad_reply_error(r, 400, "bad-query", "target has at most %d bytes",
		                DB_APPROVAL_TARGET_MAX);
		return;
	}
	if (limit) {
		char *end;
		long l = strtol(limit, &end, 10);
		if (*end || l < 1 || l > DB_LIST_MAX) {
			cad_reply_error(r, 400, "bad-query", "limit must be 1..%d", DB_LIST_MAX);
			return;
		}
		f.limit = (size_t)l;
	}
	if (!(db = cad_db(r)))
		return;
	publish_once(r, db);
	if (expire_due(r, db) != 0)
		return;
	if (db_approval_list(db, &f, &rows, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, approval_json(&rows[i], 0));
	db_approval_list_free(rows, n);
	cad_reply_json(r, 200, json_pack("{s:o}", "approvals", arr));
}

/* The request named by the path, into a; -1 after replying. */
static int find(struct cad_req *r, struct db *db, int for_update, struct db_approval *a)
{
	struct db_err err = {0};
	int64_t id;

	if (cad_approval_parse_id(r->args[0], &id) != 0) {
		cad_deny(r, 404, "unknown-approval", r->args[0], "no approval request \"%.32s\"",
		         r->args[0]);
		return -1;
	}
	switch (db_approval_get(db, id, for_update, a, &err)) {
	case DB_OK:
		return 0;
	case DB_ERR_NOT_FOUND:
		cad_deny(r, 404, "unknown-approval", r->args[0], "no approval request %lld",
		         (long long)id);
		return -1;
	default:
		cad_reply_db_error(r, &err);
		return -1;
	}
}

void cad_h_approval_show(struct cad_req *r)
{
	struct db_approval a = {0};
	struct db *db;

	if (!(db = cad_db(r)) || expire_due(r, db) != 0 || find(r, db, 0, &a) != 0)
		return;
	cad_reply_json(r, 200, json_pack("{s:o}", "approval", approval_json(&a, 1)));
	db_approval_clear(&a);
}

/* --- voting --- */

/* Answer the database's refusal of r's vote on a. */
static void refused(struct cad_req *r, const struct db_approval *a, const struct db_err *err)
{
	char obj[40];

	object_name(a->id, obj, sizeof(obj));
	switch (db_approval_refusal_of(err)) {
	case DB_APPROVAL_SELF:
		cad_deny(r, 403, "self-approval", obj,
		         "%s requested approval request %lld and may not approve it: another "
		         "approver must",
		         r->who.name, (long long)a->id);
		break;
	case DB_APPROVAL_WRONG_ROLE:
		cad_deny(r, 403, "role-not-permitted", obj,
		         "role %s may not vote on approval request %lld (approvers: %s)",
		         r->who.role, (long long)a->id, a->approver_roles);
		break;
	case DB_APPROVAL_NOT_A_PRINCIPAL:
		cad_deny(r, 403, "not-permitted", obj, "%s is not an enabled principal",
		         r->who.name);
		break;
	case DB_APPROVAL_DUPLICATE_VOTE:
		cad_deny(r, 409, "duplicate-vote", obj,
		         "%s has voted on approval request %lld already; each approver counts once",
		         r->who.name, (long long)a->id);
		break;
	case DB_APPROVAL_NOT_PENDING:
		if (a->state != DB_APPROVAL_EXPIRED) {
			cad_deny(r, 409, "wrong-state", obj,
			         "approval request %lld is %s, not pending", (long long)a->id,
			         db_approval_state_name(a->state));
			break;
		}
		/* fall through */
	case DB_APPROVAL_HAS_EXPIRED:
		cad_deny(r, 409, "approval-expired", obj,
		         "approval request %lld has expired; ask for the operation again",
		         (long long)a->id);
		break;
	case DB_APPROVAL_NO_SUCH_REQUEST:
		cad_deny(r, 404, "unknown-approval", obj, "no approval request %lld",
		         (long long)a->id);
		break;
	default:
		cad_reply_db_error(r, err);
	}
}

/* Run the approved operation of a (in the open transaction) and record how it went. 0, or
 * -1 with err (the caller rolls back). */
static int run(struct cad_req *r, struct db *db, const struct db_approval *a, json_t *approvers,
               const char *obj, struct db_err *err)
{
	const struct cad_approval_kind *k = cad_approval_kind_find(a->kind);
	struct cad_approval_run ctx = {.request = a, .approvers = approvers};
	enum db_approval_state to;
	json_t *detail;
	char *text;
	int rc;

	if (!k || !k->execute) {
		/* Run by the command line, which marks it executed or failed. */
		detail = json_pack("{s:s, s:s, s:O}", "kind", a->kind, "target", a->target,
		                   "approvers", approvers);
		if (db_approval_set_state(db, a->id, DB_APPROVAL_APPROVED, NULL, err) != DB_OK ||
		    cad_approval_audit(r, db, "approval.approved", obj, "success", detail, 0,
		                       err) != DB_OK) {
			json_decref(detail);
			return -1;
		}
		json_decref(detail);
		return 0;
	}
	ctx.result = json_object();
	if (db_approval_savepoint(db, err) != DB_OK) {
		json_decref(ctx.result);
		return -1;
	}
	rc = k->execute(r, db, &ctx);
	if (rc < 0) {
		*err = ctx.err;
		json_decref(ctx.result);
		return -1;
	}
	if (rc > 0) {
		if (db_approval_rollback_to_savepoint(db, err) != DB_OK) {
			json_decref(ctx.result);
			return -1;
		}
		json_decref(ctx.result);
		ctx.result = json_pack("{s:s}", "error", ctx.why);
		to = DB_APPROVAL_FAILED;
	} else {
		to = DB_APPROVAL_EXECUTED;
	}
	text = json_dumps(ctx.result, JSON_COMPACT | JSON_SORT_KEYS);
	detail = json_pack("{s:s, s:s, s:O, s:O}", "kind", a->kind, "target", a->target,
	                   "approvers", approvers, "result", ctx.result);
	rc = db_approval_set_state(db, a->id, to, text, err) != DB_OK ||
	     cad_approval_audit(r, db, "approval.execute", obj,
	                        to == DB_APPROVAL_EXECUTED ? "success" : "error", detail, 0,
	                        err) != DB_OK;
	if (!rc)
		log_info("approval request %lld: %s of %s %s", (long long)a->id, a->kind, a->target,
		         to == DB_APPROVAL_EXECUTED ? "executed" : "failed");
	free(text);
	json_decref(detail);
	json_decref(ctx.result);
	return rc ? -1 : 0;
}

static void vote(struct cad_req *r, int approve)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	struct cad_approval_vote_body b;
	struct db_approval a = {0}, now = {0};
	struct db_err err = {0};
	json_t *approvers = NULL, *detail = NULL;
	char msg[256], obj[40];
	struct db *db;

	if (len > r->cad->cfg->max_body_bytes) {
		cad_reply_error(r, 413, "body-too-large",
		                "the request body has %zu bytes; at most %zu", len,
		                r->cad->cfg->max_body_bytes);
		return;
	}
	if (cad_approval_parse_vote((const char *)evbuffer_pullup(in, -1), len, !approve, &b, msg,
	                            sizeof(msg)) != 0) {
		cad_reply_error(r, 400, "bad-request", "%s", msg);
		return;
	}
	if (!(db = cad_db(r)))
		return;
	publish_once(r, db);
	if (expire_due(r, db) != 0)
		return;
	if (db_begin(db, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	if (find(r, db, 1, &a) != 0) {
		db_rollback(db);
		return;
	}
	object_name(a.id, obj, sizeof(obj));
	if (db_approval_vote(db, a.id, r->who.name, approve, b.reason, &err) != DB_OK) {
		db_rollback(db);
		if (db_approval_refusal_of(&err) == DB_APPROVAL_HAS_EXPIRED)
			(void)expire_due(r,
			                 db); /* record the expiry now; replies only on failure */
		refused(r, &a, &err);
		goto out;
	}
	approvers = json_array();
	for (size_t i = 0; i < a.n_votes; i++)
		if (a.votes[i].approve)
			json_array_append_new(approvers, json_string(a.votes[i].approver));
	if (approve)
		json_array_append_new(approvers, json_string(r->who.name));
	detail = json_pack("{s:s, s:s, s:s, s:i, s:i}", "kind", a.kind, "target", a.target,
	                   "reason", b.reason, "approvals", a.approvals + approve,
	                   "required_approvals", a.required);
	if (cad_approval_audit(r, db, approve ? "approval.approve" : "approval.reject", obj,
	                       "success", detail, 0, &err) != DB_OK)
		goto db_fail;
	if (!approve) {
		if (db_approval_set_state(db, a.id, DB_APPROVAL_REJECTED, NULL, &err) != DB_OK)
			goto db_fail;
		log_info("approval request %lld (%s %s) rejected by %s", (long long)a.id, a.kind,
		         a.target, r->who.name);
	} else if (1 + a.approvals + 1 >= a.required) {
		/* The requester, the approvals before and this one: enough people. */
		if (run(r, db, &a, approvers, obj, &err) != 0)
			goto db_fail;
	}
	if (db_commit(db, &err) != DB_OK)
		goto db_fail;
	if (db_approval_get(db, a.id, 0, &now, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	cad_reply_json(r, 200, json_pack("{s:o}", "approval", approval_json(&now, 1)));
	goto out;
db_fail:
	db_rollback(db);
	cad_reply_db_error(r, &err);
out:
	json_decref(approvers);
	json_decref(detail);
	db_approval_clear(&a);
	db_approval_clear(&now);
}

void cad_h_approval_approve(struct cad_req *r)
{
	vote(r, 1);
}

void cad_h_approval_reject(struct cad_req *r)
{
	vote(r, 0);
}
