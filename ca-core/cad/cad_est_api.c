/* The API side of device enrolment: provisioning tokens (made by officers, shown once, kept
 * as SHA-256), and devices (listed by identity, shown with their certificates,
 * decommissioned with a reason, which revokes every certificate of the device). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cad_internal.h"
#include "crlreason.h"

/* --- provisioning tokens --- */

static const char *token_state(const struct db_prov_token *t, int64_t now)
{
	if (t->revoked_at)
		return "revoked";
	if (t->expires_at <= now)
		return "expired";
	if (t->uses >= t->max_uses)
		return "spent";
	return "active";
}

static json_t *token_json(const struct db_prov_token *t)
{
	char t1[32], t2[32], t3[32], t4[32];
	json_t *allow = json_array();

	for (size_t i = 0; i < t->n_allow; i++)
		json_array_append_new(allow, json_string(t->allowlist[i]));
	return json_pack(
	    "{s:i, s:s, s:s, s:i, s:i, s:o, s:b, s:s, s:s?, s:s, s:s?, s:s?, s:s}", "id",
	    (json_int_t)t->id, "name", t->name, "profile", t->profile, "max_uses",
	    (json_int_t)t->max_uses, "uses", (json_int_t)t->uses, "allowlist", allow, "replace",
	    t->allow_replace, "expires_at", cad_time_text(t->expires_at, t1, sizeof(t1)),
	    "revoked_at", t->revoked_at ? cad_time_text(t->revoked_at, t2, sizeof(t2)) : NULL,
	    "created_by", t->created_by, "created_at", cad_time_text(t->created_at, t3, sizeof(t3)),
	    "last_used_at", t->last_used_at ? cad_time_text(t->last_used_at, t4, sizeof(t4)) : NULL,
	    "state", token_state(t, (int64_t)time(NULL)));
}

static int est_profile_named(struct cad *cad, const char *name)
{
	for (size_t i = 0; i < cad->cfg->n_est_profiles; i++)
		if (!strcmp(cad->cfg->est_profiles[i]->name, name))
			return 1;
	return 0;
}

void cad_h_prov_token_create(struct cad_req *r)
{
	static const char *const fields[] = {
	    "name", "profile", "expires_days", "uses", "allowlist", "replace", NULL};
	json_t *body = cad_body_object(r, fields), *v, *detail;
	const char *name, *profile;
	const char *allow[DB_ALLOWLIST_MAX];
	size_t n_allow = 0;
	json_int_t days, uses;
	int replace = 0;
	unsigned char sha[32];
	char token[80], when[32], object[160];
	struct db_err err = {0};
	struct db *db;
	int32_t id;
	int64_t expires;

	if (!body)
		return;
	name = json_string_value(json_object_get(body, "name"));
	profile = json_string_value(json_object_get(body, "profile"));
	if (!name || !*name || !profile) {
		cad_reply_error(r, 400, "bad-request",
		                "\"name\" and \"profile\" (strings) are required");
		goto out;
	}
	if (!cad_label_ok(name)) {
		cad_reply_error(r, 400, "bad-name",
		                "a provisioning token's name is 1..128 bytes of UTF-8 text without "
		                "control characters");
		goto out;
	}
	if (!est_profile_named(r->cad, profile)) {
		cad_reply_error(r, 400, "unknown-profile",
		                "profile \"%.64s\" is not served over EST (est.profiles)", profile);
		goto out;
	}
	v = json_object_get(body, "expires_days");
	days = v ? (json_is_integer(v) ? json_integer_value(v) : -1) : 7;
	if (days < 1 || days > r->cad->cfg->est_token_max_days) {
		cad_reply_error(r, 400, "bad-request", "\"expires_days\" must be 1..%d",
		                r->cad->cfg->est_token_max_days);
		goto out;
	}
	v = json_object_get(body, "uses");
	uses = v ? (json_is_integer(v) ? json_integer_value(v) : -1) : 1;
	if (uses < 1 || uses > 1000000) {
		cad_reply_error(r, 400, "bad-request", "\"uses\" must be 1..1000000 (default 1)");
		goto out;
	}
	v = json_object_get(body, "replace");
	if (v && !json_is_boolean(v)) {
		cad_reply_error(r, 400, "bad-request", "\"replace\" must be true or false");
		goto out;
	}
	replace = v && json_is_true(v);
	if (cad_body_string_list(r, body, "allowlist", "device identifiers or patterns", allow,
	                         DB_ALLOWLIST_MAX, &n_allow))
		goto out;
	if (!(db = cad_db(r)))
		goto out;
	/* Shown once; only its SHA-256 is kept. */
	if (cad_token_new("hsmcaprov_", token, sizeof(token), sha) != 0) {
		cad_reply_error(r, 500, "internal", "no randomness for a token");
		goto out;
	}
	expires = (int64_t)time(NULL) + (int64_t)days * 86400;
	if (db_begin(db, &err) != DB_OK ||
	    db_prov_token_add(db, sha, name, profile, (int32_t)uses, allow, n_allow, replace,
	                      expires, r->who.name, &id, &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-request", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		goto wipe;
	}
	snprintf(object, sizeof(object), "provisioning-token/%d", (int)id);
	detail = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "name", name, "profile", profile,
	                   "expires_days", (json_int_t)days, "uses", (json_int_t)uses,
	                   "allowlist_entries", (json_int_t)n_allow, "replace", replace);
	if (cad_commit_with_audit(r, db, object, detail) == 0)
		cad_reply_json(r, 201,
		               json_pack("{s:i, s:s, s:s, s:s, s:I, s:O?, s:b, s:s}", "id",
		                         (json_int_t)id, "name", name, "profile", profile, "token",
		                         token, "uses", (json_int_t)uses, "allowlist",
		                         json_object_get(body, "allowlist"), "replace", replace,
		                         "expires_at", cad_time_text(expires, when, sizeof(when))));
	json_decref(detail);
wipe:
	OPENSSL_cleanse(token, sizeof(token));
out:
	json_decref(body);
}

void cad_h_prov_token_list(struct cad_req *r)
{
	struct db_prov_token *rows = NULL;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	size_t n = 0;
	json_t *arr;

	if (!db)
		return;
	if (db_prov_token_list(db, &rows, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, token_json(&rows[i]));
	db_prov_token_list_free(rows, n);
	cad_reply_json(r, 200, json_pack("{s:o}", "tokens", arr));
}

void cad_h_prov_token_revoke(struct cad_req *r)
{
	struct db_err err = {0};
	struct db *db;
	char *end, object[64];
	long id = strtol(r->args[0], &end, 10);
	int changed = 0;

	if (*end || id < 1 || id > 0x7fffffff) {
		cad_reply_error(r, 404, "unknown-token", "no provisioning token %.32s", r->args[0]);
		return;
	}
	if (!(db = cad_db(r)))
		return;
	snprintf(object, sizeof(object), "provisioning-token/%ld", id);
	if (db_begin(db, &err) != DB_OK ||
	    db_prov_token_revoke(db, (int32_t)id, &changed, &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_NOT_FOUND)
			cad_deny(r, 404, "unknown-token", object, "no provisioning token %ld", id);
		else
			cad_reply_db_error(r, &err);
		return;
	}
	if (!changed) {
		db_rollback(db);
		cad_reply_json(r, 200, json_pack("{s:i, s:b}", "id", (json_int_t)id, "changed", 0));
		return;
	}
	if (cad_commit_with_audit(r, db, object, NULL) == 0)
		cad_reply_json(r, 200, json_pack("{s:i, s:b}", "id", (json_int_t)id, "changed", 1));
}

/* --- devices --- */

static json_t *device_json(const struct db_device *d)
{
	char t1[32], t2[32];

	return json_pack(
	    "{s:s, s:s, s:s, s:o?, s:s, s:s?, s:s?, s:s?, s:I, s:I}", "identity", d->identity,
	    "profile", d->profile, "status", d->decommissioned ? "decommissioned" : "active",
	    "provisioning_token", d->token_id ? json_integer(d->token_id) : NULL, "created_at",
	    cad_time_text(d->created_at, t1, sizeof(t1)), "decommissioned_at",
	    d->decommissioned_at ? cad_time_text(d->decommissioned_at, t2, sizeof(t2)) : NULL,
	    "decommissioned_by", d->decommissioned_by, "decommission_reason",
	    d->decommission_reason, "certificates_issued", (json_int_t)d->n_certs,
	    "certificates_valid", (json_int_t)d->n_valid);
}

void cad_h_device_list(struct cad_req *r)
{
	struct db_device *rows = NULL;
	struct db_err err = {0};
	const char *q;
	struct db *db;
	size_t n = 0, limit = 100;
	int64_t after = 0, next = 0;
	char *end;
	json_t *arr;

	if ((q = cad_query(r, "after")) && ((after = strtoll(q, &end, 10)) < 0 || *end)) {
		cad_reply_error(r, 400, "bad-filter", "after: the \"next\" of a previous page");
		return;
	}
	if ((q = cad_query(r, "limit"))) {
		long l = strtol(q, &end, 10);
		if (*end || l < 1 || l > DB_LIST_MAX) {
			cad_reply_error(r, 400, "bad-filter", "limit: 1..%d", DB_LIST_MAX);
			return;
		}
		limit = (size_t)l;
	}
	if (!(db = cad_db(r)))
		return;
	if (db_device_list(db, cad_query(r, "identity"), after, limit, &rows, &n, &next, &err) !=
	    DB_OK) {
		if (err.status == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-filter", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, device_json(&rows[i]));
	db_device_list_free(rows, n);
	if (next)
		cad_reply_json(r, 200,
		               json_pack("{s:o, s:I}", "devices", arr, "next", (json_int_t)next));
	else
		cad_reply_json(r, 200, json_pack("{s:o, s:n}", "devices", arr, "next"));
}

/* The device named by the path; 0, or -1 after replying. */
static int target(struct cad_req *r, struct db *db, struct db_device *d)
{
	struct db_err err = {0};
	enum db_status rc = db_device_find(db, r->args[0], d, &err);

	if (rc == DB_ERR_NOT_FOUND || rc == DB_ERR_INVALID) {
		cad_deny(r, 404, "unknown-device", r->args[0], "no device \"%.64s\"", r->args[0]);
		return -1;
	}
	if (rc != DB_OK) {
		cad_reply_db_error(r, &err);
		return -1;
	}
	return 0;
}

void cad_h_device_show(struct cad_req *r)
{
	struct db_device d = {0};
	struct db_cert *rows = NULL;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	size_t n = 0;
	json_t *o, *arr;

	if (!db || target(r, db, &d) != 0)
		goto out;
	if (db_device_certs(db, d.id, &rows, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, cad_cert_json(r->cad, &rows[i]));
	db_cert_list_free(rows, n);
	o = device_json(&d);
	json_object_set_new(o, "certificates", arr);
	cad_reply_json(r, 200, o);
out:
	db_device_clear(&d);
}

void cad_h_device_decommission(struct cad_req *r)
{
	static const char *const fields[] = {"reason", "comment", NULL};
	json_t *body = cad_body_object(r, fields), *detail;
	const char *rs, *comment;
	struct db_device d = {0};
	struct db_err err = {0};
	struct db *db;
	char why[1100];
	int reason, revoked = 0, changed = 0;

	if (!body)
		return;
	rs = json_string_value(json_object_get(body, "reason"));
	comment = json_string_value(json_object_get(body, "comment"));
	if (json_object_get(body, "comment") && !comment) {
		cad_reply_error(r, 400, "bad-request", "\"comment\" must be a string");
		goto out;
	}
	reason = crlreason_code(rs);
	if (!rs || !crlreason_revocable(reason)) {
		cad_reply_error(
		    r, 400, "bad-reason",
		    "\"reason\" is required: one of unspecified, keyCompromise, "
		    "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
		    "privilegeWithdrawn, aACompromise");
		goto out;
	}
	if (comment && strlen(comment) > 512) {
		cad_reply_error(r, 400, "bad-request", "\"comment\" has at most 512 characters");
		goto out;
	}
	snprintf(why, sizeof(why), "%s%s%s", rs, comment ? ": " : "", comment ? comment : "");
	if (!(db = cad_db(r)) || target(r, db, &d) != 0)
		goto out;
	if (db_begin(db, &err) != DB_OK ||
	    db_device_decommission(db, d.identity, reason, why, r->who.name, &revoked, &changed,
	                           &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-request", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	if (!changed) {
		db_rollback(db);
		cad_deny(r, 409, "wrong-state", d.identity,
		         "device %.64s is decommissioned already", d.identity);
		goto out;
	}
	detail = json_pack("{s:s, s:s?, s:i}", "reason", rs, "comment", comment, "revoked",
	                   (json_int_t)revoked);
	if (cad_commit_with_audit(r, db, d.identity, detail) == 0)
		cad_reply_json(r, 200,
		               json_pack("{s:s, s:s, s:s, s:i}", "identity", d.identity, "status",
		                         "decommissioned", "reason", rs, "revoked",
		                         (json_int_t)revoked));
	json_decref(detail);
out:
	db_device_clear(&d);
	json_decref(body);
}
