/*
 * TOTP step-up (RFC 6238) in the API (docs/mfa.md): the "mfa:" configuration and the per-role
 * policy, enrolment (the secret wrapped by keyd, shown once), confirmation with a first code
 * (and ten recovery codes, shown once, stored hashed), disabling by the principal (with a
 * code) or a ca-admin, and the check before a state-changing request: a fresh code in
 * X-HSMCA-TOTP, each used once, ±1 step, throttled after failures, every outcome audited.
 * Codes and secrets are never logged or audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cad_internal.h"
#include "cad_mfa.h"
#include "db_mfa.h"
#include "keyd_client.h"
#include "log.h"

#define HEADER "X-HSMCA-TOTP"

static const char *const mfa_fields[] = {
    "wrap_key", "issuer", "max_failures", "failure_window_seconds", "step_up", NULL,
};
static const char *const role_names[CAD_MFA_ROLES + 1] = {
    "ca-admin", "admin", "officer", "auditor", "operator", "ra", NULL,
};
/* Issue 18's defaults: revocation, hold and release, principal and token changes, retiring an
 * authority, profile changes and EAB credentials. */
static const char *const default_rules[] = {
    "certificate.revoke", "certificate.hold", "certificate.release", "principal.*", "token.*",
    "authority.retire",   "profile.*",        "acme.eab.create",     NULL,
};

/* --- configuration --- */

static int label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > KEYD_LABEL_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int parse_policy(struct yconf *y, yaml_node_t *n, struct cad_config *cfg)
{
	if (yconf_check_map(y, n, "mfa.step_up", role_names))
		return -1;
	for (int i = 0; i < CAD_MFA_ROLES; i++) {
		yaml_node_t *seq = yconf_get(y, n, role_names[i]);
		struct cad_mfa_policy *p = &cfg->mfa_step_up[i];
		if (!seq)
			continue;
		if (!yconf_is_seq(seq))
			return yconf_fail(y, seq, "mfa.step_up",
			                  "%s: a list of actions (e.g. [certificate.revoke, "
			                  "principal.*]; [] for none)",
			                  role_names[i]);
		if (yconf_seq_len(seq) > CAD_MFA_MAX_RULES)
			return yconf_fail(y, seq, "mfa.step_up", "%s: more than %d entries",
			                  role_names[i], CAD_MFA_MAX_RULES);
		p->set = 1;
		for (size_t k = 0; k < yconf_seq_len(seq); k++) {
			yaml_node_t *item = yconf_seq_item(y, seq, k);
			char *rule = p->rules[p->n];
			if (yconf_str(y, item, "mfa.step_up", rule, sizeof(p->rules[0])))
				return -1;
			if (!cad_mfa_pattern_ok(rule))
				return yconf_fail(y, item, "mfa.step_up",
				                  "%s: \"%s\" is not an action name, NAME.* or *",
				                  role_names[i], rule);
			if (!cad_route_action_known(rule))
				return yconf_fail(y, item, "mfa.step_up",
				                  "%s: \"%s\" matches no action that changes state "
				                  "(docs/api.md lists them)",
				                  role_names[i], rule);
			p->n++;
		}
	}
	return 0;
}

int cad_mfa_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg)
{
	long l;

	cfg->mfa_wrap_key[0] = '\0';
	snprintf(cfg->mfa_issuer, sizeof(cfg->mfa_issuer), "hsmca");
	cfg->mfa_max_failures = 5;
	cfg->mfa_window_seconds = 300;
	memset(cfg->mfa_step_up, 0, sizeof(cfg->mfa_step_up));
	if (!n)
		return 0;
	if (yconf_check_map(y, n, "mfa", mfa_fields) ||
	    yconf_req_str(y, n, "wrap_key", cfg->mfa_wrap_key, sizeof(cfg->mfa_wrap_key)) ||
	    yconf_opt_str(y, n, "issuer", cfg->mfa_issuer, sizeof(cfg->mfa_issuer)))
		return -1;
	if (!label_ok(cfg->mfa_wrap_key))
		return yconf_fail(y, n, "mfa.wrap_key",
		                  "\"%s\" is not a keyd key label (1..64 of A-Z a-z 0-9 . _ -)",
		                  cfg->mfa_wrap_key);
	if (!cfg->mfa_issuer[0] || strchr(cfg->mfa_issuer, ':'))
		return yconf_fail(y, n, "mfa.issuer", "must be non-empty text without \":\"");
	l = cfg->mfa_max_failures;
	if (yconf_opt_long(y, n, "max_failures", 1, 100, &l))
		return -1;
	cfg->mfa_max_failures = (int)l;
	l = cfg->mfa_window_seconds;
	if (yconf_opt_long(y, n, "failure_window_seconds", 30, 86400, &l))
		return -1;
	cfg->mfa_window_seconds = (int)l;
	if ((n = yconf_get(y, n, "step_up")) && parse_policy(y, n, cfg))
		return -1;
	return 0;
}

int cad_mfa_new(struct cad *cad, char *err, size_t errsz)
{
	if (!cad->cfg->mfa_wrap_key[0])
		return 0;
	/* keyd's socket as for every keyd: URI ($HSMCA_KEYD_SOCKET); connections are made on
	 * first use, per worker thread. */
	if (!(cad->keyd = keyd_client_new(NULL, 0))) {
		snprintf(err, errsz, "mfa: cannot set up the keyd client");
		return -1;
	}
	return 0;
}

void cad_mfa_free(struct cad *cad)
{
	keyd_client_free(cad->keyd);
	cad->keyd = NULL;
}

static int role_index(const char *role)
{
	int bit = cad_role_bit(role);

	for (int i = 0; i < CAD_MFA_ROLES; i++)
		if (bit == 1 << i)
			return i;
	return -1;
}

int cad_mfa_required(const struct cad_config *cfg, const char *role, const char *action)
{
	int i = role_index(role);

	if (!cfg->mfa_wrap_key[0] || i < 0 || !action)
		return 0;
	/* Enrolment, confirmation and disabling check their own codes. */
	if (!strncmp(action, "mfa.", 4))
		return 0;
	if (cfg->mfa_step_up[i].set) {
		for (size_t k = 0; k < cfg->mfa_step_up[i].n; k++)
			if (cad_mfa_pattern_matches(cfg->mfa_step_up[i].rules[k], action))
				return 1;
		return 0;
	}
	for (size_t k = 0; default_rules[k]; k++)
		if (cad_mfa_pattern_matches(default_rules[k], action))
			return 1;
	return 0;
}

/* The policy of role as a JSON list. */
static json_t *policy_json(const struct cad_config *cfg, const char *role)
{
	json_t *a = json_array();
	int i = role_index(role);

	if (!cfg->mfa_wrap_key[0] || i < 0)
		return a;
	if (cfg->mfa_step_up[i].set)
		for (size_t k = 0; k < cfg->mfa_step_up[i].n; k++)
			json_array_append_new(a, json_string(cfg->mfa_step_up[i].rules[k]));
	else
		for (size_t k = 0; default_rules[k]; k++)
			json_array_append_new(a, json_string(default_rules[k]));
	return a;
}

/* --- the secret, wrapped by keyd --- */

/* keyd wraps "hsmca-totp-v1" ‖ the principal's id (4 bytes, big-endian) ‖ the secret: keyd's
 * associated data is fixed to its key label (docs/keyd-protocol.md), so the id is bound inside
 * the authenticated plaintext, and an unwrapped blob whose id is not the principal's is
 * refused like one that does not authenticate. */
#define SEAL_TAG "hsmca-totp-v1"
#define SEAL_TAG_LEN 13
#define SEAL_LEN (SEAL_TAG_LEN + 4 + CAD_TOTP_SECRET_LEN)

static void reply_keyd(struct cad_req *r, const struct keyd_err *ke, const char *what)
{
	if (keyd_status_retryable(ke->status) || ke->status == KEYD_E_UNREACHABLE)
		cad_reply_error(r, 503, "keyd-unavailable", "%s: keyd is unavailable (%s)", what,
		                ke->msg);
	else
		cad_reply_error(r, 500, "keyd-error", "%s: keyd refused (%s: %s)", what,
		                keyd_status_name(ke->status), ke->msg);
	log_error("mfa: %s for principal %s: keyd %s: %s", what, r->who.name,
	          keyd_status_name(ke->status), ke->msg);
}

static int seal(struct cad_req *r, const uint8_t secret[CAD_TOTP_SECRET_LEN], uint8_t *blob,
                size_t *blob_len)
{
	uint8_t plain[SEAL_LEN];
	uint32_t id = (uint32_t)r->who.id;
	struct keyd_err ke = {0};
	int rc;

	memcpy(plain, SEAL_TAG, SEAL_TAG_LEN);
	plain[SEAL_TAG_LEN] = (uint8_t)(id >> 24);
	plain[SEAL_TAG_LEN + 1] = (uint8_t)(id >> 16);
	plain[SEAL_TAG_LEN + 2] = (uint8_t)(id >> 8);
	plain[SEAL_TAG_LEN + 3] = (uint8_t)id;
	memcpy(plain + SEAL_TAG_LEN + 4, secret, CAD_TOTP_SECRET_LEN);
	rc = keyd_client_wrap(r->cad->keyd, r->cad->cfg->mfa_wrap_key, plain, sizeof(plain), blob,
	                      blob_len, &ke);
	OPENSSL_cleanse(plain, sizeof(plain));
	if (rc != KEYD_OK) {
		reply_keyd(r, &ke, "wrapping the TOTP secret");
		return -1;
	}
	return 0;
}

/* The secret of enrolment m, which is principal_id's. 0, or -1 after replying. */
static int unseal(struct cad_req *r, int32_t principal_id, const struct db_mfa *m,
                  uint8_t secret[CAD_TOTP_SECRET_LEN])
{
	uint8_t plain[KEYD_WRAP_DATA_MAX];
	size_t len = sizeof(plain);
	uint32_t id = (uint32_t)principal_id;
	struct keyd_err ke = {0};
	int ok;

	if (keyd_client_unwrap(r->cad->keyd, m->wrap_key, m->wrapped, m->wrapped_len, plain, &len,
	                       &ke) != KEYD_OK) {
		reply_keyd(r, &ke, "unwrapping the TOTP secret");
		return -1;
	}
	ok = len == SEAL_LEN && !memcmp(plain, SEAL_TAG, SEAL_TAG_LEN) &&
	     plain[SEAL_TAG_LEN] == (uint8_t)(id >> 24) &&
	     plain[SEAL_TAG_LEN + 1] == (uint8_t)(id >> 16) &&
	     plain[SEAL_TAG_LEN + 2] == (uint8_t)(id >> 8) &&
	     plain[SEAL_TAG_LEN + 3] == (uint8_t)id;
	if (ok)
		memcpy(secret, plain + SEAL_TAG_LEN + 4, CAD_TOTP_SECRET_LEN);
	OPENSSL_cleanse(plain, sizeof(plain));
	if (!ok) {
		log_error("mfa: the wrapped TOTP secret of principal %s is not its own",
		          r->who.name);
		cad_reply_error(r, 500, "mfa-secret-mismatch",
		                "the stored TOTP secret is not bound to this principal; a ca-admin "
		                "must reset its enrolment");
		return -1;
	}
	return 0;
}

/* --- checking a code --- */

enum verdict { V_REPLIED = -1, V_WRONG = 0, V_OK = 1 };

/* Check value for principal_id's enrolment m: a TOTP code (its step must be later than the
 * last one used; it becomes the last), or, when recovery, one of the unused recovery codes
 * (spent). *step receives a TOTP code's step; *via how it passed. */
static enum verdict check_code(struct cad_req *r, struct db *db, int32_t principal_id,
                               const struct db_mfa *m, const char *value, int recovery, int use,
                               int64_t *step, const char **via)
{
	char norm[CAD_RECOVERY_CHARS + 1];
	uint8_t secret[CAD_TOTP_SECRET_LEN];
	struct db_err err = {0};
	enum verdict v = V_WRONG;
	int ok = 0;

	*step = -1;
	switch (cad_mfa_code_kind(value, norm, sizeof(norm))) {
	case CAD_MFA_TOTP:
		*via = "totp";
		if (unseal(r, principal_id, m, secret) != 0)
			return V_REPLIED;
		if (cad_totp_check(secret, sizeof(secret), norm, time(NULL), CAD_TOTP_WINDOW,
		                   step) == 0 &&
		    *step > m->last_step)
			v = V_OK;
		OPENSSL_cleanse(secret, sizeof(secret));
		if (v == V_OK && use) {
			/* The one statement that decides a replay: only a later step passes. */
			if (db_mfa_use_step(db, principal_id, *step, &ok, &err) != DB_OK) {
				cad_reply_db_error(r, &err);
				v = V_REPLIED;
			} else if (!ok) {
				v = V_WRONG;
			}
		}
		break;
	case CAD_MFA_RECOVERY: {
		struct db_mfa_recovery codes[DB_MFA_RECOVERY_CODES];
		size_t n = 0;
		*via = "recovery-code";
		if (!recovery)
			break;
		if (db_mfa_recovery_list(db, principal_id, codes, &n, &err) != DB_OK) {
			cad_reply_db_error(r, &err);
			v = V_REPLIED;
			break;
		}
		for (size_t i = 0; i < n && v == V_WRONG; i++) {
			uint8_t h[DB_MFA_HASH_LEN];
			if (cad_recovery_hash(norm, codes[i].salt, h) != 0)
				continue;
			if (CRYPTO_memcmp(h, codes[i].hash, sizeof(h)) != 0)
				continue;
			if (db_mfa_recovery_use(db, principal_id, codes[i].n, &ok, &err) != DB_OK) {
				cad_reply_db_error(r, &err);
				v = V_REPLIED;
			} else if (ok) {
				v = V_OK;
			}
		}
		break;
	}
	default:
		*via = "malformed";
		break;
	}
	OPENSSL_cleanse(norm, sizeof(norm));
	return v;
}

/* Answer 429 with Retry-After when m's failures reached the limit. 1 after replying. */
static int throttled(struct cad_req *r, const struct db_mfa *m)
{
	char secs[24];

	if (m->failures < r->cad->cfg->mfa_max_failures || m->window_left <= 0)
		return 0;
	snprintf(secs, sizeof(secs), "%lld", (long long)m->window_left);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", secs);
	cad_deny(r, 429, "step-up-throttled", r->who.name,
	         "%d wrong TOTP codes within %d seconds: try again in %lld seconds", m->failures,
	         r->cad->cfg->mfa_window_seconds, (long long)m->window_left);
	return 1;
}

/* Count a wrong code; the number of tries left in the window, or -1 after replying. */
static int count_failure(struct cad_req *r, struct db *db)
{
	struct db_err err = {0};
	int failures = 0;

	if (db_mfa_fail(db, r->who.id, r->cad->cfg->mfa_window_seconds, &failures, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return -1;
	}
	return failures >= r->cad->cfg->mfa_max_failures ? 0
	                                                 : r->cad->cfg->mfa_max_failures - failures;
}

/* The enrolment of r's principal; 0, or -1 after replying. */
static int load(struct cad_req *r, struct db **db, struct db_mfa *m)
{
	struct db_err err = {0};

	if (!(*db = cad_db(r)))
		return -1;
	if (db_mfa_get(*db, r->who.id, r->cad->cfg->mfa_window_seconds, m, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return -1;
	}
	return 0;
}

/* An audit entry of r's principal for action (not r's route action), committed on its own. */
static int audit_as(struct cad_req *r, const char *action, const char *object, json_t *detail)
{
	const char *route_action = r->action;
	char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	struct db_err err = {0};
	enum db_status rc;

	r->action = action;
	rc = cad_audit(r, object, "success", text, &err);
	r->action = route_action;
	free(text);
	json_decref(detail);
	if (rc != DB_OK) {
		cad_reply_db_error(r, &err);
		return -1;
	}
	return 0;
}

int cad_mfa_step_up(struct cad_req *r)
{
	const char *code, *via = "none";
	struct db_mfa m;
	struct db *db;
	int64_t step;
	int left;

	if (!cad_mfa_required(r->cad->cfg, r->who.role, r->action))
		return 0;
	if (!r->cad->keyd) {
		cad_reply_error(r, 503, "keyd-unavailable", "no keyd client for TOTP secrets");
		return -1;
	}
	if (load(r, &db, &m) != 0)
		return -1;
	if (m.state != DB_MFA_ACTIVE) {
		cad_deny(r, 403, "step-up-not-enrolled", r->who.name,
		         "role %s must confirm %s with a TOTP code, and principal %s has no active "
		         "TOTP enrolment: enrol first (POST /api/v1/mfa/totp, or hsmca mfa enrol)",
		         r->who.role, r->action, r->who.name);
		return -1;
	}
	if (throttled(r, &m))
		return -1;
	code = evhttp_find_header(evhttp_request_get_input_headers(r->req), HEADER);
	if (!code) {
		cad_deny(r, 401, "step-up", r->who.name,
		         "%s needs a fresh TOTP code from principal %s's authenticator: send it in "
		         "the " HEADER " header",
		         r->action, r->who.name);
		return -1;
	}
	switch (check_code(r, db, r->who.id, &m, code, 1, 1, &step, &via)) {
	case V_REPLIED:
		return -1;
	case V_OK:
		r->stepped_up = 1;
		/* Audited before the change it allows; a failed audit refuses the change. */
		return audit_as(
		    r, "mfa.step-up", r->who.name,
		    json_pack("{s:s, s:s, s:s}", "for", r->action, "via", via, "path", r->path));
	case V_WRONG:
		break;
	}
	if ((left = count_failure(r, db)) < 0)
		return -1;
	cad_deny(r, 401, "step-up", r->who.name,
	         "the code in " HEADER " is not valid for %s (%s): wrong, used already, or outside "
	         "the ±1 time step window; %d tries left before a pause",
	         r->action, via, left);
	return -1;
}

/* --- the endpoints --- */

static int mfa_on(struct cad_req *r)
{
	if (r->cad->cfg->mfa_wrap_key[0] && r->cad->keyd)
		return 1;
	cad_reply_error(r, 404, "mfa-off",
	                "TOTP is not configured on this server (the mfa: section of hsmca-cad's "
	                "configuration)");
	return 0;
}

static const char *state_name(enum db_mfa_state s)
{
	switch (s) {
	case DB_MFA_PENDING:
		return "pending";
	case DB_MFA_ACTIVE:
		return "active";
	case DB_MFA_DISABLED:
		return "disabled";
	default:
		return "none";
	}
}

void cad_h_mfa_status(struct cad_req *r)
{
	char a[32], b[32];
	struct db_mfa m;
	struct db *db;

	if (!r->cad->cfg->mfa_wrap_key[0]) {
		cad_reply_json(r, 200,
		               json_pack("{s:s, s:b, s:s, s:o}", "principal", r->who.name, "mfa", 0,
		                         "state", "none", "step_up", json_array()));
		return;
	}
	if (load(r, &db, &m) != 0)
		return;
	cad_reply_json(
	    r, 200,
	    json_pack("{s:s, s:b, s:s, s:s?, s:s?, s:i, s:o, s:i, s:i}", "principal", r->who.name,
	              "mfa", 1, "state", state_name(m.state), "enrolled_at",
	              m.state == DB_MFA_NONE ? NULL : cad_time_text(m.enrolled_at, a, sizeof(a)),
	              "confirmed_at", cad_time_text(m.confirmed_at, b, sizeof(b)),
	              "recovery_codes_left", m.recovery_left, "step_up",
	              policy_json(r->cad->cfg, r->who.role), "max_failures",
	              r->cad->cfg->mfa_max_failures, "failure_window_seconds",
	              r->cad->cfg->mfa_window_seconds));
}

/* The body {"code": "..."}, or none at all when allow_empty. The code into out; 0, or -1 after
 * replying. */
static int body_code(struct cad_req *r, char *out, size_t n)
{
	static const char *const fields[] = {"code", NULL};
	json_t *body = cad_body_object(r, fields);
	const char *c;

	if (!body)
		return -1;
	c = json_string_value(json_object_get(body, "code"));
	if (!c || strlen(c) >= n) {
		json_decref(body);
		cad_reply_error(r, 400, "bad-request",
		                "\"code\" (a six-digit TOTP code or a recovery code) is required");
		return -1;
	}
	snprintf(out, n, "%s", c);
	json_decref(body);
	return 0;
}

void cad_h_mfa_enrol(struct cad_req *r)
{
	uint8_t secret[CAD_TOTP_SECRET_LEN], blob[KEYD_WRAP_BLOB_MAX];
	char b32[64], uri[700];
	size_t blob_len = sizeof(blob);
	struct db_err err = {0};
	struct db_mfa m;
	struct db *db;
	char *svg = NULL;
	json_t *reply;

	if (!mfa_on(r))
		return;
	/* No body, or an empty object: nothing to choose. */
	if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) > 0) {
		static const char *const none[] = {NULL};
		json_t *body = cad_body_object(r, none);
		if (!body)
			return;
		json_decref(body);
	}
	if (load(r, &db, &m) != 0)
		return;
	if (m.state == DB_MFA_ACTIVE) {
		cad_deny(r, 409, "mfa-active", r->who.name,
		         "principal %s has an active TOTP enrolment: disable it first (POST "
		         "/api/v1/mfa/totp/disable with a code), or ask a ca-admin to reset it",
		         r->who.name);
		return;
	}
	if (RAND_priv_bytes(secret, sizeof(secret)) != 1) {
		cad_reply_error(r, 500, "internal", "no randomness for a TOTP secret");
		return;
	}
	if (cad_totp_base32(secret, sizeof(secret), b32, sizeof(b32)) != 0 ||
	    cad_totp_uri(r->cad->cfg->mfa_issuer, r->who.name, b32, uri, sizeof(uri)) != 0 ||
	    !(svg = cad_qr_svg(uri))) {
		cad_reply_error(r, 500, "internal", "could not encode the TOTP secret");
		goto out;
	}
	if (seal(r, secret, blob, &blob_len) != 0)
		goto out;
	if (db_begin(db, &err) != DB_OK ||
	    db_mfa_enrol(db, r->who.id, r->cad->cfg->mfa_wrap_key, blob, blob_len, &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_STATE)
			cad_deny(r, 409, "mfa-active", r->who.name,
			         "principal %s has an active TOTP enrolment", r->who.name);
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	{
		json_t *d = json_pack("{s:s}", "wrap_key", r->cad->cfg->mfa_wrap_key);
		int rc = cad_commit_with_audit(r, db, r->who.name, d);
		json_decref(d);
		if (rc != 0)
			goto out;
	}
	/* The secret is shown here once; only keyd's wrapped blob is kept. */
	reply = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "principal", r->who.name, "state",
	    "pending", "secret", b32, "otpauth_uri", uri, "qr_svg", svg, "algorithm", "SHA1",
	    "digits", CAD_TOTP_DIGITS, "period", CAD_TOTP_STEP, "next",
	    "confirm with a first code: POST /api/v1/mfa/totp/confirm {\"code\": ...}");
	cad_reply_json(r, 201, reply);
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(b32, sizeof(b32));
	OPENSSL_cleanse(uri, sizeof(uri));
	free(svg);
}

void cad_h_mfa_confirm(struct cad_req *r)
{
	struct db_mfa_recovery codes[DB_MFA_RECOVERY_CODES];
	char code[80], shown[DB_MFA_RECOVERY_CODES][CAD_RECOVERY_SHOWN + 1];
	const char *via = "none";
	struct db_err err = {0};
	struct db_mfa m;
	struct db *db;
	json_t *list;
	int64_t step;
	int left;

	if (!mfa_on(r) || body_code(r, code, sizeof(code)) != 0)
		return;
	if (load(r, &db, &m) != 0)
		goto out;
	if (m.state != DB_MFA_PENDING) {
		cad_deny(r, 409, "mfa-not-pending", r->who.name,
		         "principal %s has no TOTP enrolment waiting for confirmation (state %s): "
		         "enrol first (POST /api/v1/mfa/totp)",
		         r->who.name, state_name(m.state));
		goto out;
	}
	if (throttled(r, &m))
		goto out;
	switch (check_code(r, db, r->who.id, &m, code, 0, 0, &step, &via)) {
	case V_REPLIED:
		goto out;
	case V_WRONG:
		if ((left = count_failure(r, db)) >= 0)
			cad_deny(r, 400, "invalid-code", r->who.name,
			         "the code does not confirm the enrolment (%s): check the "
			         "authenticator's clock; %d tries left before a pause",
			         via, left);
		goto out;
	case V_OK:
		break;
	}
	/* Ten recovery codes, shown once; each stored as a salted PBKDF2 hash. */
	for (int i = 0; i < DB_MFA_RECOVERY_CODES; i++) {
		char norm[CAD_RECOVERY_CHARS + 1];
		codes[i].n = i;
		if (cad_recovery_new(shown[i]) != 0 ||
		    RAND_bytes(codes[i].salt, DB_MFA_SALT_LEN) != 1 ||
		    cad_mfa_code_kind(shown[i], norm, sizeof(norm)) != CAD_MFA_RECOVERY ||
		    cad_recovery_hash(norm, codes[i].salt, codes[i].hash) != 0) {
			cad_reply_error(r, 500, "internal", "could not make recovery codes");
			goto out;
		}
		OPENSSL_cleanse(norm, sizeof(norm));
	}
	if (db_begin(db, &err) != DB_OK ||
	    db_mfa_confirm(db, r->who.id, step, codes, &err) != DB_OK) {
		db_rollback(db);
		if (err.status == DB_ERR_STATE)
			cad_deny(r, 409, "mfa-not-pending", r->who.name,
			         "the enrolment changed meanwhile, or the code was used already");
		else
			cad_reply_db_error(r, &err);
		goto out;
	}
	{
		json_t *d = json_pack("{s:i}", "recovery_codes", DB_MFA_RECOVERY_CODES);
		int rc = cad_commit_with_audit(r, db, r->who.name, d);
		json_decref(d);
		if (rc != 0)
			goto out;
	}
	list = json_array();
	for (int i = 0; i < DB_MFA_RECOVERY_CODES; i++)
		json_array_append_new(list, json_string(shown[i]));
	cad_reply_json(r, 200,
	               json_pack("{s:s, s:s, s:o}", "principal", r->who.name, "state", "active",
	                         "recovery_codes", list));
out:
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(shown, sizeof(shown));
}

void cad_h_mfa_disable(struct cad_req *r)
{
	const char *via = "none";
	struct db_err err = {0};
	struct db_mfa m;
	struct db *db;
	char code[80] = "";
	int64_t step;
	int changed = 0, left;

	if (!mfa_on(r))
		return;
	if (load(r, &db, &m) != 0)
		return;
	if (m.state == DB_MFA_NONE || m.state == DB_MFA_DISABLED) {
		cad_reply_json(r, 200,
		               json_pack("{s:s, s:s, s:b}", "principal", r->who.name, "state",
		                         state_name(m.state), "changed", 0));
		return;
	}
	if (m.state == DB_MFA_ACTIVE) {
		/* An active enrolment is given up only with a code (or a recovery code). */
		if (throttled(r, &m) || body_code(r, code, sizeof(code)) != 0)
			goto out;
		switch (check_code(r, db, r->who.id, &m, code, 1, 1, &step, &via)) {
		case V_REPLIED:
			goto out;
		case V_WRONG:
			if ((left = count_failure(r, db)) >= 0)
				cad_deny(
				    r, 401, "invalid-code", r->who.name,
				    "disabling TOTP needs a valid code or recovery code (%s); %d "
				    "tries left before a pause",
				    via, left);
			goto out;
		case V_OK:
			break;
		}
	}
	if (db_begin(db, &err) != DB_OK || db_mfa_disable(db, r->who.id, &changed, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	{
		json_t *d = json_pack("{s:s}", "via", m.state == DB_MFA_ACTIVE ? via : "pending");
		int rc = cad_commit_with_audit(r, db, r->who.name, d);
		json_decref(d);
		if (rc != 0)
			goto out;
	}
	cad_reply_json(r, 200,
	               json_pack("{s:s, s:s, s:b}", "principal", r->who.name, "state", "disabled",
	                         "changed", changed));
out:
	OPENSSL_cleanse(code, sizeof(code));
}

void cad_h_mfa_reset(struct cad_req *r)
{
	struct db_principal p = {0};
	struct db_err err = {0};
	struct db_mfa m;
	struct db *db;
	int changed = 0;
	enum db_status rc;

	if (!mfa_on(r) || !(db = cad_db(r)))
		return;
	rc = db_principal_find(db, r->args[0], &p, &err);
	if (rc == DB_ERR_NOT_FOUND || rc == DB_ERR_INVALID) {
		cad_reply_error(r, 404, "unknown-principal", "no principal named \"%.128s\"",
		                r->args[0]);
		return;
	}
	if (rc != DB_OK ||
	    db_mfa_get(db, p.id, r->cad->cfg->mfa_window_seconds, &m, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	if (db_begin(db, &err) != DB_OK || db_mfa_disable(db, p.id, &changed, &err) != DB_OK) {
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	if (!changed) {
		db_rollback(db);
	} else {
		json_t *d = json_pack("{s:s, s:s}", "role", p.role, "was", state_name(m.state));
		int c = cad_commit_with_audit(r, db, p.name, d);
		json_decref(d);
		if (c != 0)
			goto out;
	}
	cad_reply_json(r, 200,
	               json_pack("{s:s, s:s, s:b}", "principal", p.name, "state",
	                         changed ? "disabled" : state_name(m.state), "changed", changed));
out:
	db_principal_clear(&p);
}
