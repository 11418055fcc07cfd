/* What changes at run time besides certificates and principals: authorities retired by the
 * ca-admin, profiles switched off and on by an admin, and each authority's CRL and OCSP
 * settings kept by officers (stored for crld and ocspd). Every change is audited with it. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cad_approvals.h"
#include "cad_internal.h"
#include "log.h"

static const char *status_name(enum db_authority_status s)
{
	return s == DB_AUTH_RETIRED ? "retired" : "active";
}

void cad_h_authority_list(struct cad_req *r)
{
	struct db_authority *list = NULL;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	json_t *arr;
	size_t n = 0;
	char t[32];

	if (!db)
		return;
	if (db_authority_list(db, &list, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		int configured = 0;
		for (size_t j = 0; j < r->cad->cfg->n_authorities; j++)
			if (!strcmp(r->cad->cfg->authorities[j].name, list[i].name))
				configured = 1;
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s?}", "name", list[i].name,
		                   "subject", list[i].subject, "key_label", list[i].key_label,
		                   "status", status_name(list[i].status), "configured", configured,
		                   "created_at", cad_time_text(list[i].created_at, t, sizeof(t))));
	}
	db_authority_list_free(list, n);
	cad_reply_json(r, 200, json_pack("{s:o}", "authorities", arr));
}

/* The authority named by the path, or -1 after replying (404 unknown-authority). */
static int target(struct cad_req *r, struct db *db, struct db_authority *a)
{
	struct db_err err = {0};

	switch (db_authority_find(db, r->args[0], a, &err)) {
	case DB_OK:
		return 0;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		cad_deny(r, 404, "unknown-authority", r->args[0], "no authority named \"%.64s\"",
		         r->args[0]);
		return -1;
	default:
		cad_reply_db_error(r, &err);
		return -1;
	}
}

void cad_h_authority_retire(struct cad_req *r)
{
	static const char *const fields[] = {"reason", NULL};
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	json_t *body = NULL, *detail;
	struct db_authority a = {0};
	struct db_err err = {0};
	const char *reason = "";
	struct db *db;
	int32_t id;
	char t[32];

	/* The body is optional: {"reason": "..."} goes into the audit entry. */
	if (evbuffer_get_length(in) > 0) {
		if (!(body = cad_body_object(r, fields)))
			return;
		if (json_object_get(body, "reason") &&
		    !(reason = json_string_value(json_object_get(body, "reason")))) {
			cad_reply_error(r, 400, "bad-request", "\"reason\" must be a string");
			goto out;
		}
		if (strlen(reason) > 512) {
			cad_reply_error(r, 400, "bad-request", "\"reason\" has at most 512 bytes");
			goto out;
		}
	}
	if (!(db = cad_db(r)) || target(r, db, &a) != 0)
		goto out;
	if (cad_approval_required(r->cad->cfg, "authority.retire") > 1) {
		/* Under quorum approval: a pending request now, the retirement at the last
		 * approval (cad_authority_retire_execute). */
		if (a.status == DB_AUTH_RETIRED) {
			cad_deny(r, 409, "wrong-state", a.name, "authority %s is retired already",
			         a.name);
			goto out;
		}
		detail = json_pack("{s:s, s:s}", "subject", a.subject, "reason", reason);
		cad_approval_request(r, "authority.retire", a.name, detail);
		json_decref(detail);
		goto out;
	}
	if (db_begin(db, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	switch (db_authority_retire(db, a.name, &id, &err)) {
	case DB_OK:
		break;
	case DB_ERR_STATE:
		db_rollback(db);
		cad_deny(r, 409, "wrong-state", a.name, "authority %s is retired already", a.name);
		goto out;
	case DB_ERR_NOT_FOUND:
		db_rollback(db);
		cad_deny(r, 404, "unknown-authority", a.name, "no authority named \"%.64s\"",
		         a.name);
		goto out;
	default:
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	detail = json_pack("{s:s, s:s}", "subject", a.subject, "reason", reason);
	if (cad_commit_with_audit(r, db, a.name, detail) == 0) {
		log_info("authority %s retired by %s", a.name, r->who.name);
		cad_reply_json(r, 200,
		               json_pack("{s:s, s:s, s:s, s:s, s:s?}", "name", a.name, "subject",
		                         a.subject, "key_label", a.key_label, "status", "retired",
		                         "created_at", cad_time_text(a.created_at, t, sizeof(t))));
	}
	json_decref(detail);
out:
	db_authority_clear(&a);
	json_decref(body);
}

/* authority.retire approved (cad_approvals.c): retire run->request's target inside the open
 * transaction, audited as authority.retire by the last approver with the approval named. */
int cad_authority_retire_execute(struct cad_req *r, struct db *db, struct cad_approval_run *run)
{
	const struct db_approval *q = run->request;
	json_t *params = json_loads(q->parameters, 0, NULL), *detail;
	const char *reason = json_string_value(json_object_get(params, "reason"));
	int32_t id;
	int rc = 0;

	switch (db_authority_retire(db, q->target, &id, &run->err)) {
	case DB_OK:
		break;
	case DB_ERR_STATE:
		snprintf(run->why, sizeof(run->why), "authority %s is retired already", q->target);
		rc = 1;
		goto out;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		snprintf(run->why, sizeof(run->why), "no authority named \"%.64s\"", q->target);
		rc = 1;
		goto out;
	default:
		rc = -1;
		goto out;
	}
	detail =
	    json_pack("{s:s, s:I, s:s, s:O}", "reason", reason ? reason : "", "approval",
	              (json_int_t)q->id, "requester", q->requester, "approvers", run->approvers);
	if (cad_approval_audit(r, db, "authority.retire", q->target, "success", detail, 0,
	                       &run->err) != DB_OK)
		rc = -1;
	json_decref(detail);
	if (rc == 0) {
		json_object_set_new(run->result, "authority", json_string(q->target));
		json_object_set_new(run->result, "status", json_string("retired"));
		log_info("authority %s retired by approval request %lld", q->target,
		         (long long)q->id);
	}
out:
	json_decref(params);
	return rc;
}

/* --- CRL and OCSP settings --- */

static json_t *settings_json(const struct db_authority *a, const struct db_authority_settings *s)
{
	char t[32];

	json_t *ocsp = json_array(), *o;
	const char *u = s->ocsp_urls;

	/* ocsp_urls is stored with one space between URLs (migration 0011). */
	while (ocsp && *u) {
		size_t n = strcspn(u, " ");
		json_array_append_new(ocsp, json_stringn(u, n));
		u += n + (u[n] == ' ');
	}
	o = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:I, s:b, s:s?, s:s?}", "authority", a->name,
	    "crl_next_update_seconds", (json_int_t)s->crl_next_update_seconds, "delta_crl_seconds",
	    (json_int_t)s->delta_crl_seconds, "ocsp_validity_seconds",
	    (json_int_t)s->ocsp_validity_seconds, "ocsp_nonce_rate_limit",
	    (json_int_t)s->ocsp_nonce_rate_limit, "ocsp_signer_key_label", s->ocsp_signer_key_label,
	    "crl_base_url", s->crl_base_url, "crl_shards", (json_int_t)s->crl_shards, "default",
	    s->is_default, "updated_by", s->is_default ? NULL : s->updated_by, "updated_at",
	    s->is_default ? NULL : cad_time_text(s->updated_at, t, sizeof(t)));
	if (o) {
		json_object_set_new(o, "ocsp_urls", ocsp ? ocsp : json_array());
		json_object_set_new(o, "ca_issuers_url", json_string(s->ca_issuers_url));
		/* null: none stored (hsmca-crld's configuration decides, docs/crld.md). */
		json_object_set_new(o, "full_crl_idp",
		                    s->full_crl_idp < 0 ? json_null()
		                                        : json_boolean(s->full_crl_idp));
	} else {
		json_decref(ocsp);
	}
	return o;
}

void cad_h_authority_settings_get(struct cad_req *r)
{
	struct db_authority_settings s;
	struct db_authority a = {0};
	struct db_err err = {0};
	struct db *db = cad_db(r);

	if (!db || target(r, db, &a) != 0)
		goto out;
	if (db_authority_settings_get(db, a.id, &s, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	cad_reply_json(r, 200, settings_json(&a, &s));
out:
	db_authority_clear(&a);
}

/* The bounds the schema checks too (migration 0003). */
static const struct {
	const char *field;
	json_int_t min, max;
	size_t offset;
} bounds[] = {
    {"crl_next_update_seconds", 300, 7776000,
     offsetof(struct db_authority_settings, crl_next_update_seconds)},
    {"delta_crl_seconds", 0, 7776000, offsetof(struct db_authority_settings, delta_crl_seconds)},
    {"ocsp_validity_seconds", 60, 604800,
     offsetof(struct db_authority_settings, ocsp_validity_seconds)},
    {"ocsp_nonce_rate_limit", 0, 100000,
     offsetof(struct db_authority_settings, ocsp_nonce_rate_limit)},
};

static int label_valid(const char *s)
{
	size_t n = strlen(s);

	if (n > DB_KEY_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
		            s[i]))
			return 0;
	return 1;
}

/* crl_base_url: "" or an http(s) URL without spaces, commas, quotes, angle brackets or
 * backslashes (it goes into an X509V3 value), as cad's configuration accepts; a '/' is
 * appended when missing. 0, or -1 after replying. */
static int apply_crl_url(struct cad_req *r, json_t *v, struct db_authority_settings *s)
{
	const char *u = json_is_string(v) ? json_string_value(v) : NULL;
	size_t n = u ? strlen(u) : 0;
	int ok = u && (n == 0 || !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) &&
	         n + (n && u[n - 1] != '/') <= DB_CRL_URL_MAX;

	for (size_t i = 0; ok && i < n; i++)
		if (u[i] <= ' ' || u[i] >= 0x7f || strchr(",\"'<>\\", u[i]))
			ok = 0;
	if (!ok) {
		cad_reply_error(r, 400, "bad-setting",
		                "\"crl_base_url\" must be \"\" or an http(s) URL of up to %d "
		                "printable characters without , \" ' < > or \\",
		                DB_CRL_URL_MAX);
		return -1;
	}
	snprintf(s->crl_base_url, sizeof(s->crl_base_url), "%s%s", u,
	         n && u[n - 1] != '/' ? "/" : "");
	return 0;
}

/* One URL of Authority Information Access: http (BR 7.1.2.7.7 wants http, not https), of
 * printable characters without space , " ' < > or \ (it goes into an X509V3 value), with a
 * host, at most DB_AIA_URL_MAX bytes. */
static int aia_url_ok(const char *u)
{
	size_t n = strlen(u);

	if (n > DB_AIA_URL_MAX || strncmp(u, "http://", 7) || n == 7 || u[7] == '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (u[i] <= ' ' || u[i] >= 0x7f || strchr(",\"'<>\\", u[i]))
			return 0;
	return 1;
}

/* ocsp_urls: a list of 0..DB_OCSP_URLS_MAX distinct URLs; ca_issuers_url: "" or a URL. 0, or
 * -1 after replying. */
static int apply_aia(struct cad_req *r, json_t *body, struct db_authority_settings *s)
{
	json_t *v, *e;
	size_t i;

	if ((v = json_object_get(body, "ocsp_urls"))) {
		char buf[sizeof(s->ocsp_urls)] = "";
		int ok = json_is_array(v) && json_array_size(v) <= DB_OCSP_URLS_MAX;

		json_array_foreach(v, i, e)
		{
			const char *u = json_string_value(e);
			if (!ok || !u || !aia_url_ok(u)) {
				ok = 0;
				break;
			}
			for (size_t j = 0; j < i; j++)
				if (!strcmp(u, json_string_value(json_array_get(v, j))))
					ok = 0;
			if (i)
				strcat(buf, " ");
			strcat(buf, u);
		}
		if (!ok) {
			cad_reply_error(
			    r, 400, "bad-setting",
			    "\"ocsp_urls\" must be a list of up to %d distinct http:// URLs "
			    "(not https: BR 7.1.2.7.7) of up to %d printable characters "
			    "without , \" ' < > or \\",
			    DB_OCSP_URLS_MAX, DB_AIA_URL_MAX);
			return -1;
		}
		memcpy(s->ocsp_urls, buf, sizeof(buf));
	}
	if ((v = json_object_get(body, "ca_issuers_url"))) {
		const char *u = json_string_value(v);
		if (!u || (*u && !aia_url_ok(u))) {
			cad_reply_error(
			    r, 400, "bad-setting",
			    "\"ca_issuers_url\" must be \"\" or an http:// URL (not https: "
			    "BR 7.1.2.7.7) of up to %d printable characters without , \" ' "
			    "< > or \\",
			    DB_AIA_URL_MAX);
			return -1;
		}
		snprintf(s->ca_issuers_url, sizeof(s->ca_issuers_url), "%s", u);
	}
	return 0;
}

/* Fields left out keep their stored (or default) value; each field given is checked. 0, or -1
 * after replying 400 bad-setting naming the field. */
static int apply(struct cad_req *r, json_t *body, struct db_authority_settings *s)
{
	json_t *v;

	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		json_int_t x;
		if (!(v = json_object_get(body, bounds[i].field)))
			continue;
		x = json_is_integer(v) ? json_integer_value(v) : -1;
		if (!json_is_integer(v) || x < bounds[i].min || x > bounds[i].max) {
			cad_reply_error(r, 400, "bad-setting",
			                "\"%s\" must be an integer %lld..%lld", bounds[i].field,
			                (long long)bounds[i].min, (long long)bounds[i].max);
			return -1;
		}
		*(int64_t *)((char *)s + bounds[i].offset) = x;
	}
	if ((v = json_object_get(body, "ocsp_signer_key_label"))) {
		if (!json_is_string(v) || !label_valid(json_string_value(v))) {
			cad_reply_error(r, 400, "bad-setting",
			                "\"ocsp_signer_key_label\" must be a keyd key label (up to "
			                "%d of A-Z a-z 0-9 . _ -), or \"\" for the CA's own key",
			                DB_KEY_LABEL_MAX);
			return -1;
		}
		snprintf(s->ocsp_signer_key_label, sizeof(s->ocsp_signer_key_label), "%s",
		         json_string_value(v));
	}
	if ((v = json_object_get(body, "crl_base_url")) && apply_crl_url(r, v, s) != 0)
		return -1;
	if (apply_aia(r, body, s) != 0)
		return -1;
	if ((v = json_object_get(body, "full_crl_idp"))) {
		if (!json_is_boolean(v)) {
			cad_reply_error(
			    r, 400, "bad-setting",
			    "\"full_crl_idp\" must be true (the full CRL carries an "
			    "Issuing Distribution Point) or false (it does not: what NSS "
			    "accepts)");
			return -1;
		}
		s->full_crl_idp = json_is_true(v);
	}
	if ((v = json_object_get(body, "crl_shards"))) {
		json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
		if (x != 0 && (x < 2 || x > 256)) {
			cad_reply_error(r, 400, "bad-setting",
			                "\"crl_shards\" must be 0 (one CRL) or 2..256");
			return -1;
		}
		s->crl_shards = x;
	}
	if (s->crl_shards && !s->crl_base_url[0]) {
		cad_reply_error(r, 400, "bad-setting", "\"crl_shards\" needs a crl_base_url");
		return -1;
	}
	if (s->delta_crl_seconds != 0 &&
	    (s->delta_crl_seconds < 60 || s->delta_crl_seconds >= s->crl_next_update_seconds)) {
		cad_reply_error(r, 400, "bad-setting",
		                "\"delta_crl_seconds\" must be 0 (no delta CRLs) or 60..%lld (less "
		                "than crl_next_update_seconds)",
		                (long long)s->crl_next_update_seconds - 1);
		return -1;
	}
	return 0;
}

void cad_h_authority_settings_put(struct cad_req *r)
{
	static const char *const fields[] = {"crl_next_update_seconds",
	                                     "delta_crl_seconds",
	                                     "ocsp_validity_seconds",
	                                     "ocsp_nonce_rate_limit",
	                                     "ocsp_signer_key_label",
	                                     "crl_base_url",
	                                     "crl_shards",
	                                     "ocsp_urls",
	                                     "ca_issuers_url",
	                                     "full_crl_idp",
	                                     NULL};
	json_t *body = cad_body_object(r, fields), *detail = NULL;
	struct db_authority_settings s;
	struct db_authority a = {0};
	struct db_err err = {0};
	struct db *db;

	if (!body)
		return;
	if (!(db = cad_db(r)) || target(r, db, &a) != 0)
		goto out;
	if (db_begin(db, &err) != DB_OK || db_authority_settings_get(db, a.id, &s, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	if (apply(r, body, &s) != 0) {
		db_rollback(db);
		goto out;
	}
	if (db_authority_settings_put(db, a.id, &s, r->who.name, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	s.is_default = 0;
	snprintf(s.updated_by, sizeof(s.updated_by), "%s", r->who.name);
	s.updated_at = (int64_t)time(NULL);
	detail = settings_json(&a, &s);
	json_object_del(detail, "updated_at");
	json_object_del(detail, "updated_by");
	json_object_del(detail, "default");
	if (cad_commit_with_audit(r, db, a.name, detail) == 0) {
		/* The next certificate this cad issues carries the new AIA (ca_authorities.c
		 * re-reads it; other cad instances within CA_AIA_REFRESH_SECONDS). */
		ca_authority_settings_changed(&r->cad->ca, a.name);
		cad_reply_json(r, 200, settings_json(&a, &s));
	}
out:
	json_decref(detail);
	db_authority_clear(&a);
	json_decref(body);
}

/* --- profiles switched off and on --- */

static void set_enabled(struct cad_req *r, int enabled)
{
	struct db_profile_version stored = {0};
	struct db_profile_version *p = &stored;
	struct db_err err = {0};
	struct db *db;
	int was;

	if (!(db = cad_db(r)))
		return;
	/* A stored profile (cad_profiles.c), whether or not this instance can use it. */
	switch (db_profile_get(db, r->args[0], 0, &stored, &err)) {
	case DB_OK:
		free(stored.body); /* the name is what matters here */
		stored.body = NULL;
		break;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		cad_deny(r, 404, "unknown-profile", r->args[0], "no profile named \"%.64s\"",
		         r->args[0]);
		return;
	default:
		cad_reply_db_error(r, &err);
		return;
	}
	if (db_begin(db, &err) != DB_OK || db_profile_enabled(db, p->name, &was, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		return;
	}
	if (was == enabled) {
		/* Nothing changes, so nothing to audit. */
		db_rollback(db);
		cad_reply_json(r, 200,
		               json_pack("{s:s, s:b}", "name", p->name, "enabled", enabled));
		return;
	}
	if (db_profile_set_enabled(db, p->name, enabled, r->who.name, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		return;
	}
	if (cad_commit_with_audit(r, db, p->name, NULL) == 0) {
		log_info("profile %s %s by %s", p->name, enabled ? "enabled" : "disabled",
		         r->who.name);
		cad_reply_json(r, 200,
		               json_pack("{s:s, s:b}", "name", p->name, "enabled", enabled));
	}
}

void cad_h_profile_enable(struct cad_req *r)
{
	set_enabled(r, 1);
}

void cad_h_profile_disable(struct cad_req *r)
{
	set_enabled(r, 0);
}
