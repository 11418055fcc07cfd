/* Principals and API tokens. ca-admin manages every role; admin manages officer, auditor,
 * operator and ra (after the emCA role model). A token is shown once, at creation, to whoever
 * made it: so a token is only ever made with a role its maker holds itself. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cad_internal.h"
#include "log.h"

static int can_manage(const char *actor_role, const char *target_role)
{
	if (!strcmp(actor_role, "ca-admin"))
		return 1;
	if (!strcmp(actor_role, "admin"))
		return !strcmp(target_role, "officer") || !strcmp(target_role, "auditor") ||
		       !strcmp(target_role, "operator") || !strcmp(target_role, "ra");
	return 0;
}

int cad_role_may(const char *actor_role, const char *actor_name, enum cad_principal_op op,
                 const char *target_role, const char *target_name)
{
	switch (op) {
	case CAD_OP_CREATE:
	case CAD_OP_MANAGE:
		return can_manage(actor_role, target_role);
	case CAD_OP_MINT_TOKEN:
		/* The maker of a token sees it, so it can act with the token's role: an admin who
		 * manages officers must never become one that way (emCA's separation of
		 * duties). Only a role the maker holds: its own tokens, or a ca-admin's for
		 * another ca-admin. */
		if (strcmp(actor_role, target_role))
			return 0;
		return !strcmp(actor_name, target_name) || can_manage(actor_role, target_role);
	}
	return 0;
}

static json_t *principal_json(const struct db_principal *p)
{
	char fp[65] = "", t[32];
	json_t *profiles = json_array();
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", p->profiles);
	for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save))
		json_array_append_new(profiles, json_string(s));
	for (size_t i = 0; p->has_cert && i < 32; i++)
		sprintf(fp + 2 * i, "%02x", p->cert_sha256[i]);
	return json_pack("{s:s, s:s, s:s?, s:b, s:o, s:s?}", "name", p->name, "role", p->role,
	                 "certificate_sha256", p->has_cert ? fp : NULL, "disabled", p->disabled,
	                 "profiles", profiles, "created_at",
	                 cad_time_text(p->created_at, t, sizeof(t)));
}

/* Commit the change that is open in db together with its audit entry. */
int cad_commit_with_audit(struct cad_req *r, struct db *db, const char *object, json_t *detail)
{
	char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	struct db_err err = {0};

	if (cad_audit(r, object, "success", text, &err) != DB_OK || db_commit(db, &err) != DB_OK) {
		db_rollback(db);
		free(text);
		cad_reply_db_error(r, &err);
		return -1;
	}
	free(text);
	return 0;
}

void cad_h_principal_create(struct cad_req *r)
{
	static const char *const fields[] = {"name", "role", "certificate", "profiles", NULL};
	json_t *body = cad_body_object(r, fields), *v;
	const char *name, *role, *pem;
	uint8_t sha[32], *shap = NULL;
	char profiles[1024] = "";
	struct db_err err = {0};
	X509 *cert = NULL;
	BIO *bio = NULL;
	struct db *db;
	int32_t id;
	size_t i;
	enum db_status rc;

	if (!body)
		return;
	name = json_string_value(json_object_get(body, "name"));
	role = json_string_value(json_object_get(body, "role"));
	pem = json_string_value(json_object_get(body, "certificate"));
	if (!name || !role) {
		cad_reply_error(r, 400, "bad-request",
		                "\"name\" and \"role\" (strings) are required");
		goto out;
	}
	if (!cad_name_ok(name)) {
		cad_reply_error(r, 400, "bad-name",
		                "a principal's name is 1..128 of A-Z a-z 0-9 . _ @ + -, starting "
		                "with a letter or digit");
		goto out;
	}
	if (!db_role_valid(role)) {
		cad_reply_error(
		    r, 400, "unknown-role",
		    "role \"%.32s\": one of ca-admin, admin, officer, auditor, operator, ra", role);
		goto out;
	}
	if (!cad_role_may(r->who.role, r->who.name, CAD_OP_CREATE, role, name)) {
		cad_deny(r, 403, "role-not-permitted", name,
		         "role %s may not create a %s principal", r->who.role, role);
		goto out;
	}
	if (json_object_get(body, "certificate") && !pem) {
		cad_reply_error(r, 400, "bad-request", "\"certificate\" must be a PEM string");
		goto out;
	}
	if (pem) {
		unsigned int n = 0;
		bio = BIO_new_mem_buf(pem, -1);
		cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		if (!cert || !X509_digest(cert, EVP_sha256(), sha, &n)) {
			cad_reply_error(r, 400, "bad-certificate",
			                "\"certificate\" is not a PEM X.509 certificate");
			goto out;
		}
		shap = sha;
	}
	if ((v = json_object_get(body, "profiles"))) {
		json_t *p;
		if (!json_is_array(v) || json_array_size(v) > CAD_MAX_PROFILES) {
			cad_reply_error(r, 400, "bad-request",
			                "\"profiles\" must be a list of names");
			goto out;
		}
		if (strcmp(role, "ra") && json_array_size(v)) {
			cad_reply_error(r, 400, "bad-request",
			                "only ra principals are limited to profiles");
			goto out;
		}
		json_array_foreach(v, i, p)
		{
			const char *s = json_string_value(p);
			if (!s || !cad_profile_current(r->cad, r->w->db, s)) {
				cad_reply_error(r, 400, "unknown-profile",
				                "no profile named \"%.64s\"", s ? s : "");
				goto out;
			}
			if (strlen(profiles) + strlen(s) + 2 > sizeof(profiles))
				break;
			if (profiles[0])
				strcat(profiles, ",");
			strcat(profiles, s);
		}
	}
	if (!(db = cad_db(r)))
		goto out;
	if ((rc = db_begin(db, &err)) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	rc = db_principal_add(db, name, role, shap, profiles, &id, &err);
	if (rc != DB_OK) {
		db_rollback(db);
		if (rc == DB_ERR_CONFLICT)
			cad_reply_error(r, 409, "conflict",
			                "a principal with this name or certificate exists");
		else if (rc == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-request", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	v = json_pack("{s:s, s:s}", "role", role, "profiles", profiles);
	if (cad_commit_with_audit(r, db, name, v) == 0) {
		struct db_principal p = {0};
		if (db_principal_find(db, name, &p, &err) == DB_OK)
			cad_reply_json(r, 201, principal_json(&p));
		else
			cad_reply_db_error(r, &err);
		db_principal_clear(&p);
	}
	json_decref(v);
out:
	X509_free(cert);
	BIO_free(bio);
	json_decref(body);
}

void cad_h_principal_list(struct cad_req *r)
{
	struct db_principal *rows = NULL;
	struct db_err err = {0};
	json_t *arr;
	struct db *db;
	size_t n = 0;

	if (!(db = cad_db(r)))
		return;
	if (db_principal_list(db, &rows, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, principal_json(&rows[i]));
	db_principal_list_free(rows, n);
	cad_reply_json(r, 200, json_pack("{s:o}", "principals", arr));
}

/* Look up the principal named by the path; NULL-name after replying. */
static int target(struct cad_req *r, struct db *db, struct db_principal *p)
{
	struct db_err err = {0};
	enum db_status rc = db_principal_find(db, r->args[0], p, &err);

	if (rc == DB_ERR_NOT_FOUND || rc == DB_ERR_INVALID) {
		cad_reply_error(r, 404, "unknown-principal", "no principal named \"%.128s\"",
		                r->args[0]);
		return -1;
	}
	if (rc != DB_OK) {
		cad_reply_db_error(r, &err);
		return -1;
	}
	return 0;
}

void cad_h_principal_show(struct cad_req *r)
{
	struct db_principal p = {0};
	struct db *db = cad_db(r);

	if (db && target(r, db, &p) == 0)
		cad_reply_json(r, 200, principal_json(&p));
	db_principal_clear(&p);
}

static void set_disabled(struct cad_req *r, int disabled)
{
	struct db_principal p = {0};
	struct db_err err = {0};
	struct db *db = cad_db(r);
	int changed = 0;

	if (!db || target(r, db, &p) != 0)
		goto out;
	if (!cad_role_may(r->who.role, r->who.name, CAD_OP_MANAGE, p.role, p.name)) {
		cad_deny(r, 403, "role-not-permitted", p.name,
		         "role %s may not manage a %s principal", r->who.role, p.role);
		goto out;
	}
	if (db_begin(db, &err) != DB_OK ||
	    db_principal_set_disabled(db, p.name, disabled, &changed, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	p.disabled = disabled;
	if (!changed) {
		db_rollback(db);
		cad_reply_json(r, 200, principal_json(&p));
		goto out;
	}
	if (cad_commit_with_audit(r, db, p.name, NULL) == 0)
		cad_reply_json(r, 200, principal_json(&p));
out:
	db_principal_clear(&p);
}

void cad_h_principal_disable(struct cad_req *r)
{
	set_disabled(r, 1);
}

void cad_h_principal_enable(struct cad_req *r)
{
	set_disabled(r, 0);
}

static json_t *token_json(const struct db_token *t)
{
	char a[32], b[32], c[32], d[32];

	return json_pack("{s:i, s:s, s:s?, s:s?, s:s?, s:s?}", "id", (json_int_t)t->id, "name",
	                 t->name, "expires_at", cad_time_text(t->expires_at, a, sizeof(a)),
	                 "revoked_at", cad_time_text(t->revoked_at, b, sizeof(b)), "created_at",
	                 cad_time_text(t->created_at, c, sizeof(c)), "last_used_at",
	                 cad_time_text(t->last_used_at, d, sizeof(d)));
}

void cad_h_token_create(struct cad_req *r)
{
	static const char *const fields[] = {"name", "expires_days", NULL};
	json_t *body = cad_body_object(r, fields), *v;
	struct db_principal p = {0};
	struct db_err err = {0};
	unsigned char sha[32];
	char token[80], when[32], object[300];
	const char *name;
	json_int_t days;
	struct db *db;
	int32_t id;
	int64_t expires;

	if (!body)
		return;
	name = json_string_value(json_object_get(body, "name"));
	v = json_object_get(body, "expires_days");
	days = v ? (json_is_integer(v) ? json_integer_value(v) : -1) : 90;
	if (!name || !*name || days < 1 || days > r->cad->cfg->token_max_days) {
		cad_reply_error(r, 400, "bad-request",
		                "\"name\" (string) is required and \"expires_days\" must be 1..%d",
		                r->cad->cfg->token_max_days);
		goto out;
	}
	if (!cad_label_ok(name)) {
		cad_reply_error(r, 400, "bad-name",
		                "a token's name is 1..128 bytes of UTF-8 text without control "
		                "characters");
		goto out;
	}
	if (!(db = cad_db(r)) || target(r, db, &p) != 0)
		goto out;
	snprintf(object, sizeof(object), "%s/%s", p.name, name);
	if (!cad_role_may(r->who.role, r->who.name, CAD_OP_MINT_TOKEN, p.role, p.name)) {
		cad_deny(
		    r, 403, "role-not-permitted", object,
		    "%s (%s) may not make tokens for %s (%s): a token is only made with a role "
		    "its maker holds (its own, or a ca-admin's for another ca-admin)",
		    r->who.name, r->who.role, p.name, p.role);
		goto out;
	}
	/* Shown once; only its SHA-256 is kept. */
	if (cad_token_new("hsmca_", token, sizeof(token), sha) != 0) {
		cad_reply_error(r, 500, "internal", "no randomness for a token");
		goto out;
	}
	expires = (int64_t)time(NULL) + (int64_t)days * 86400;
	if (db_begin(db, &err) != DB_OK ||
	    db_token_add(db, p.id, sha, name, expires, &id, &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-request", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	v = json_pack("{s:i, s:i}", "token_id", (json_int_t)id, "expires_days", days);
	if (cad_commit_with_audit(r, db, object, v) == 0)
		cad_reply_json(r, 201,
		               json_pack("{s:i, s:s, s:s, s:s, s:s?}", "id", (json_int_t)id, "name",
		                         name, "principal", p.name, "token", token, "expires_at",
		                         cad_time_text(expires, when, sizeof(when))));
	json_decref(v);
	OPENSSL_cleanse(token, sizeof(token));
out:
	db_principal_clear(&p);
	json_decref(body);
}

void cad_h_token_list(struct cad_req *r)
{
	struct db_principal p = {0};
	struct db_token *rows = NULL;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	size_t n = 0;
	json_t *arr;

	if (!db || target(r, db, &p) != 0)
		goto out;
	if (db_token_list(db, p.id, &rows, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, token_json(&rows[i]));
	cad_reply_json(r, 200, json_pack("{s:s, s:o}", "principal", p.name, "tokens", arr));
out:
	db_token_list_free(rows, n);
	db_principal_clear(&p);
}

void cad_h_token_revoke(struct cad_req *r)
{
	struct db_principal *all = NULL, *owner = NULL;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	int32_t pid = 0;
	int changed = 0;
	size_t n = 0;
	char *end;
	long id;

	if (!db)
		return;
	id = strtol(r->args[0], &end, 10);
	if (*end || id < 1 || id > 0x7fffffff) {
		cad_reply_error(r, 404, "unknown-token", "no API token \"%.32s\"", r->args[0]);
		return;
	}
	/* Revoke and check whose it is in one transaction, so a refusal changes nothing. */
	if (db_begin(db, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	if (db_token_revoke(db, (int32_t)id, &pid, &changed, &err) != DB_OK ||
	    db_principal_list(db, &all, &n, &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_NOT_FOUND)
			cad_reply_error(r, 404, "unknown-token", "no API token %ld", id);
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (all[i].id == pid)
			owner = &all[i];
	if (!owner ||
	    !cad_role_may(r->who.role, r->who.name, CAD_OP_MANAGE, owner->role, owner->name)) {
		db_rollback(db);
		cad_deny(r, 403, "role-not-permitted", r->args[0],
		         "role %s may not revoke tokens of a %s principal", r->who.role,
		         owner ? owner->role : "unknown");
		goto out;
	}
	if (!changed) {
		db_rollback(db);
		cad_reply_json(r, 200, json_pack("{s:i, s:b}", "id", (json_int_t)id, "revoked", 1));
		goto out;
	}
	if (cad_commit_with_audit(r, db, r->args[0], NULL) == 0)
		cad_reply_json(r, 200, json_pack("{s:i, s:b}", "id", (json_int_t)id, "revoked", 1));
out:
	db_principal_list_free(all, n);
}

void cad_h_profile_list(struct cad_req *r)
{
	struct db_profile_version *list = NULL;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	json_t *arr;
	size_t n = 0;

	if (!db)
		return;
	/* The stored profiles (docs/profiles.md), each at its current version; "enabled": an
	 * admin's switch (POST .../disable, .../enable). */
	if (db_profile_list(db, &list, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct ca_profile *p = cad_profile_current(r->cad, db, list[i].name);
		json_t *san;
		if (!p || p->version != list[i].version) {
			/* Stored, but this instance cannot use that version (an authority or key
			 * profile it does not have), or has not read it yet. */
			json_array_append_new(arr, json_pack("{s:s, s:i, s:b, s:b}", "name",
			                                     list[i].name, "version",
			                                     (int)list[i].version, "enabled",
			                                     list[i].enabled, "usable", 0));
			continue;
		}
		san = json_object();
		for (int k = 0; k < CA_SAN_KINDS; k++) {
			json_t *pats = json_array();
			for (size_t j = 0; j < p->n_san_patterns[k]; j++)
				json_array_append_new(pats, json_string(p->san_patterns[k][j]));
			json_object_set_new(san, ca_san_kind_name((enum ca_san_kind)k), pats);
		}
		json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:s, s:i, s:o, s:b, s:b}",
		                                     "name", p->name, "version", (int)p->version,
		                                     "authority", p->authority->name, "key_profile",
		                                     p->key_profile->name, "max_validity_days",
		                                     p->max_validity_days, "san", san, "enabled",
		                                     list[i].enabled, "usable", 1));
	}
	db_profile_list_free(list, n);
	cad_reply_json(r, 200, json_pack("{s:o}", "profiles", arr));
}

void cad_h_whoami(struct cad_req *r)
{
	cad_reply_json(r, 200,
	               json_pack("{s:s, s:s, s:s, s:s}", "name", r->who.name, "role", r->who.role,
	                         "via", r->auth_via, "profiles", r->who.profiles));
}
