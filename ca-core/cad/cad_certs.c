/* Certificates after issuance: lookup, listing, revocation, hold and release (adapters over the
 * CA core, which commits a change before it is answered); the audit log's verification and
 * export; health. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <event2/buffer.h>

#include "cad_approvals.h"
#include "cad_internal.h"
#include "crlreason.h"
#include "log.h"

static const char *authority_name(struct cad *cad, int32_t id)
{
	for (size_t i = 0; i < cad->cfg->n_authorities; i++)
		if (cad->cfg->authorities[i].db_id == id)
			return cad->cfg->authorities[i].name;
	return NULL;
}

json_t *cad_cert_json(struct cad *cad, const struct db_cert *c)
{
	char hex[2 * DB_SERIAL_MAX + 1], t[6][32];
	json_t *o, *sans = json_array();

	db_serial_to_hex(c->serial, c->serial_len, hex);
	for (size_t i = 0; i < c->n_sans; i++)
		json_array_append_new(sans, json_pack("{s:s, s:s}", "type",
		                                      db_san_kind_name(c->sans[i].kind), "value",
		                                      c->sans[i].value));
	o = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:o, s:s?, s:s?, s:s, s:s?, s:s?}", "serial", hex,
	              "authority", authority_name(cad, c->authority_id), "status",
	              db_cert_status_name(c->status), "profile", c->profile, "subject", c->subject,
	              "sans", sans, "not_before", cad_time_text(c->not_before, t[0], 32),
	              "not_after", cad_time_text(c->not_after, t[1], 32), "requester", c->requester,
	              "created_at", cad_time_text(c->created_at, t[2], 32), "issued_at",
	              cad_time_text(c->issued_at, t[3], 32));
	if (o && c->revoked_at) {
		json_object_set_new(o, "revoked_at",
		                    json_string(cad_time_text(c->revoked_at, t[4], 32)));
		if (crlreason_name(c->revocation_reason))
			json_object_set_new(o, "revocation_reason",
			                    json_string(crlreason_name(c->revocation_reason)));
		if (c->invalidity_date)
			json_object_set_new(
			    o, "invalidity_date",
			    json_string(cad_time_text(c->invalidity_date, t[5], 32)));
	}
	if (o && c->der) {
		const unsigned char *p = c->der;
		X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
		BIO *b = BIO_new(BIO_s_mem());
		char *data;
		long len;
		if (x && b && PEM_write_bio_X509(b, x) && (len = BIO_get_mem_data(b, &data)) > 0)
			json_object_set_new(o, "certificate", json_stringn(data, (size_t)len));
		X509_free(x);
		BIO_free(b);
	}
	return o;
}

void cad_h_cert_show(struct cad_req *r)
{
	struct ca_requester who = cad_requester(r);
	struct db_cert c = {0};
	struct ca_why why;
	enum ca_outcome o = ca_cert_find(&r->cad->ca, &r->w->db, &who, r->args[0], &c, &why);

	if (o != CA_OK) {
		cad_reply_ca(r, o, &why);
	} else {
		json_t *j = cad_cert_json(r->cad, &c);
		cad_cert_view(r->cad, &c, j); /* decoded fields and chain (cad_certview.c) */
		cad_reply_json(r, 200, j);
	}
	db_cert_clear(&c);
}

/* RFC 3339 UTC ("2026-01-02T03:04:05Z") to seconds; -1 when it is not that. */
static int64_t parse_time(const char *s)
{
	struct tm tm = {0};
	const char *end;

	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *end)
		return -1;
	return (int64_t)timegm(&tm);
}

void cad_h_cert_list(struct cad_req *r)
{
	struct db_cert_search f = {.status = -1};
	struct db_cert *rows = NULL;
	struct db_err err = {0};
	struct db *db;
	const char *q;
	int64_t next = 0;
	size_t n = 0;
	json_t *arr;
	char *end;

	if ((q = cad_query(r, "status")) && (f.status = db_cert_status_parse(q)) < 0) {
		cad_reply_error(r, 400, "bad-filter",
		                "status \"%.32s\": one of reserved, issued, failed, revoked, hold",
		                q);
		return;
	}
	f.subject_contains = cad_query(r, "subject");
	f.san_contains = cad_query(r, "san");
	if ((q = cad_query(r, "profile"))) {
		if (!cad_profile_find(r->cad->cfg, q) &&
		    !cad_profile_current(r->cad, r->w->db, q)) {
			cad_reply_error(r, 400, "bad-filter", "no profile named \"%.64s\"", q);
			return;
		}
		f.profile = q;
	}
	if ((q = cad_query(r, "expires_after")) && (f.expires_after = parse_time(q)) < 0) {
		cad_reply_error(r, 400, "bad-filter", "expires_after: use 2026-01-02T03:04:05Z");
		return;
	}
	if ((q = cad_query(r, "expires_before")) && (f.expires_before = parse_time(q)) < 0) {
		cad_reply_error(r, 400, "bad-filter", "expires_before: use 2026-01-02T03:04:05Z");
		return;
	}
	if ((q = cad_query(r, "after"))) {
		long long v = strtoll(q, &end, 10);
		if (*end || v < 0) {
			cad_reply_error(r, 400, "bad-filter",
			                "after: the \"next\" of a previous page");
			return;
		}
		f.after_id = v;
	}
	if ((q = cad_query(r, "limit"))) {
		long v = strtol(q, &end, 10);
		if (*end || v < 1 || v > DB_LIST_MAX) {
			cad_reply_error(r, 400, "bad-filter", "limit: 1..%d", DB_LIST_MAX);
			return;
		}
		f.limit = (size_t)v;
	}
	if ((q = cad_query(r, "authority"))) {
		for (size_t i = 0; i < r->cad->cfg->n_authorities; i++)
			if (!strcmp(r->cad->cfg->authorities[i].name, q))
				f.authority_id = r->cad->cfg->authorities[i].db_id;
		if (!f.authority_id) {
			cad_reply_error(r, 400, "bad-filter", "no authority named \"%.64s\"", q);
			return;
		}
	}
	if (!(db = cad_db(r)))
		return;
	if (db_cert_search(db, &f, &rows, &n, &next, &err) != DB_OK) {
		if (err.status == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-filter", "%s", err.msg);
		else
			cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, cad_cert_json(r->cad, &rows[i]));
	db_cert_list_free(rows, n);
	if (next)
		cad_reply_json(
		    r, 200, json_pack("{s:o, s:I}", "certificates", arr, "next", (json_int_t)next));
	else
		cad_reply_json(r, 200, json_pack("{s:o, s:n}", "certificates", arr, "next"));
}

enum change { REVOKE, HOLD, RELEASE };

/* The API's adapter over ca_revoke, ca_hold and ca_release: the optional JSON body (a revocation
 * may carry a reason and an invalidity date), then the certificate as it is now. */
/* 1 when the DER is a CA certificate (basicConstraints cA=TRUE). */
static int is_ca_certificate(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = der ? d2i_X509(NULL, &p, (long)len) : NULL;
	BASIC_CONSTRAINTS *bc = x ? X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL) : NULL;
	int ca = bc && bc->ca;

	BASIC_CONSTRAINTS_free(bc);
	X509_free(x);
	return ca;
}

/* Revoking a CA certificate is under quorum approval (certificate.revoke-ca): when the
 * certificate req names is one, record a pending request instead (202). 0 when it is not (the
 * revocation goes on), 1 after answering. */
static int revoke_ca_gate(struct cad_req *r, const struct ca_status_request *req)
{
	struct db_cert c = {0};
	struct ca_why why = {0};
	enum ca_outcome o = ca_cert_find(&r->cad->ca, &r->w->db, &req->who, req->serial, &c, &why);
	char hex[2 * DB_SERIAL_MAX + 1];
	json_t *params;

	if (o != CA_OK) {
		cad_reply_ca(r, o, &why);
		db_cert_clear(&c);
		return 1;
	}
	if (!is_ca_certificate(c.der, c.der_len)) {
		db_cert_clear(&c);
		return 0;
	}
	if (c.status == DB_CERT_REVOKED) {
		cad_deny(r, 409, "wrong-state", req->serial, "certificate %s is revoked already",
		         req->serial);
		db_cert_clear(&c);
		return 1;
	}
	db_serial_to_hex(c.serial, c.serial_len, hex);
	params = json_pack("{s:i, s:s, s:s, s:s?, s:I, s:s}", "authority_id", (int)c.authority_id,
	                   "subject", c.subject, "reason", crlreason_name(req->reason),
	                   "invalidity_date", req->invalidity_text, "invalidity_epoch",
	                   (json_int_t)req->invalidity_date, "ca", "true");
	cad_approval_request(r, "certificate.revoke-ca", hex, params);
	json_decref(params);
	db_cert_clear(&c);
	return 1;
}

int cad_cert_revoke_ca_execute(struct cad_req *r, struct db *db, struct cad_approval_run *run)
{
	const struct db_approval *q = run->request;
	json_t *p = json_loads(q->parameters, 0, NULL), *detail;
	int32_t aid = (int32_t)json_integer_value(json_object_get(p, "authority_id"));
	int reason = crlreason_code(json_string_value(json_object_get(p, "reason")));
	int64_t inv = json_integer_value(json_object_get(p, "invalidity_epoch"));
	const char *inv_text = json_string_value(json_object_get(p, "invalidity_date"));
	uint8_t serial[DB_SERIAL_MAX];
	size_t len;
	int changed = 0, rc = 0;

	if (!p || !aid || !crlreason_revocable(reason) ||
	    db_serial_from_hex(q->target, serial, &len)) {
		snprintf(run->why, sizeof(run->why),
		         "the request's parameters are not a revocation");
		rc = 1;
		goto out;
	}
	switch (db_cert_revoke(db, aid, serial, len, reason, inv, &changed, &run->err)) {
	case DB_OK:
		break;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_STATE:
	case DB_ERR_INVALID:
		snprintf(run->why, sizeof(run->why), "certificate %s cannot be revoked: %s",
		         q->target, run->err.msg);
		rc = 1;
		goto out;
	default:
		rc = -1;
		goto out;
	}
	if (!changed) {
		snprintf(run->why, sizeof(run->why), "certificate %s was revoked already",
		         q->target);
		rc = 1;
		goto out;
	}
	detail = json_pack("{s:s, s:s?, s:I, s:s, s:O}", "reason", crlreason_name(reason),
	                   "invalidity_date", inv_text, "approval", (json_int_t)q->id, "requester",
	                   q->requester, "approvers", run->approvers);
	if (cad_approval_audit(r, db, "certificate.revoke", q->target, "success", detail, 0,
	                       &run->err) != DB_OK)
		rc = -1;
	json_decref(detail);
	if (rc == 0) {
		json_object_set_new(run->result, "serial", json_string(q->target));
		json_object_set_new(run->result, "status", json_string("revoked"));
		json_object_set_new(run->result, "reason", json_string(crlreason_name(reason)));
		log_info("CA certificate %s revoked by approval request %lld", q->target,
		         (long long)q->id);
	}
out:
	json_decref(p);
	return rc;
}

static void change_status(struct cad_req *r, enum change what)
{
	static const char *const revoke_fields[] = {"reason", "invalidity_date", NULL};
	static const char *const no_fields[] = {NULL};
	struct ca_status_request req = {.reason = DB_REASON_UNSPECIFIED};
	struct ca_status_result res = {0};
	json_t *body = NULL;
	const char *rs = NULL, *inv = NULL;
	enum ca_outcome o;
	int reason = DB_REASON_UNSPECIFIED;

	/* An empty body is fine for all three; revoke may carry a reason. */
	if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) > 0 &&
	    !(body = cad_body_object(r, what == REVOKE ? revoke_fields : no_fields)))
		return;
	if (body && (rs = json_string_value(json_object_get(body, "reason")))) {
		reason = crlreason_code(rs);
		if (!crlreason_revocable(reason)) {
			cad_reply_error(r, 400, "bad-reason",
			                "reason \"%.32s\": one of unspecified, keyCompromise, "
			                "cACompromise, affiliationChanged, superseded, "
			                "cessationOfOperation, privilegeWithdrawn, aACompromise "
			                "(hold has its own endpoint)",
			                rs);
			goto out;
		}
	} else if (body && json_object_get(body, "reason")) {
		cad_reply_error(r, 400, "bad-reason", "\"reason\" must be a string");
		goto out;
	}
	if (body && json_object_get(body, "invalidity_date")) {
		inv = json_string_value(json_object_get(body, "invalidity_date"));
		if ((req.invalidity_date = parse_time(inv)) <= 0 ||
		    req.invalidity_date > (int64_t)time(NULL)) {
			cad_reply_error(r, 400, "bad-invalidity-date",
			                "\"invalidity_date\" must be a past time like "
			                "2026-01-02T03:04:05Z");
			goto out;
		}
	}
	req.who = cad_requester(r);
	req.action = r->action;
	req.serial = r->args[0];
	req.reason = reason;
	req.invalidity_text = inv;
	if (what == REVOKE && cad_approval_required(r->cad->cfg, "certificate.revoke-ca") > 1) {
		int gated = revoke_ca_gate(r, &req);
		if (gated != 0)
			goto out; /* a pending request made (202), or an error answered */
	}
	o = what == REVOKE ? ca_revoke(&r->cad->ca, &r->w->db, &req, &res)
	    : what == HOLD ? ca_hold(&r->cad->ca, &r->w->db, &req, &res)
	                   : ca_release(&r->cad->ca, &r->w->db, &req, &res);
	if (o != CA_OK)
		cad_reply_ca(r, o, &res.why);
	else
		cad_reply_json(r, 200, cad_cert_json(r->cad, &res.cert));
out:
	json_decref(body);
	db_cert_clear(&res.cert);
}

void cad_h_cert_revoke(struct cad_req *r)
{
	change_status(r, REVOKE);
}

void cad_h_cert_hold(struct cad_req *r)
{
	change_status(r, HOLD);
}

void cad_h_cert_release(struct cad_req *r)
{
	change_status(r, RELEASE);
}

/* --- audit --- */

void cad_h_audit_verify(struct cad_req *r)
{
	struct db_audit_report rep = {0};
	struct db_err err = {0};
	struct db *db = cad_db(r);
	int64_t valid, invalid, unchecked, first_bad;
	const char *finding;
	char hh[65], detail[400];

	if (!db)
		return;
	if (db_audit_verify(db, &rep, &err) != DB_OK ||
	    cad_checkpoint_verify(r->cad, db, &valid, &invalid, &unchecked, &first_bad, &err) !=
	        DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	for (int i = 0; i < 32; i++)
		sprintf(hh + 2 * i, "%02x", rep.head_hash[i]);
	finding = db_audit_finding_name(rep.finding);
	snprintf(detail, sizeof(detail), "%s", rep.detail);
	/* A chain that hashes right under a forged checkpoint is still a rewritten chain. */
	if (rep.finding == DB_AUDIT_INTACT && invalid) {
		finding = "bad-checkpoint-signature";
		rep.seq = first_bad;
		snprintf(detail, sizeof(detail),
		         "the checkpoint at entry %lld is not signed by the audit key",
		         (long long)first_bad);
	}
	cad_reply_json(r, 200,
	               json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:{s:I, s:I, s:I}}",
	                         "finding", finding, "seq", (json_int_t)rep.seq, "entries",
	                         (json_int_t)rep.entries, "checkpoints",
	                         (json_int_t)rep.checkpoints, "head_seq", (json_int_t)rep.head_seq,
	                         "head_hash", hh, "detail", detail, "checkpoint_signatures",
	                         "valid", (json_int_t)valid, "invalid", (json_int_t)invalid,
	                         "unchecked", (json_int_t)unchecked));
}

void cad_h_audit_export(struct cad_req *r)
{
	struct db_audit_row *rows = NULL;
	struct db_err err = {0};
	struct db *db;
	const char *q;
	long long after = 0;
	long limit = 1000;
	size_t n = 0;
	json_t *arr;
	char *end;

	if ((q = cad_query(r, "after")) && ((after = strtoll(q, &end, 10)) < 0 || *end)) {
		cad_reply_error(r, 400, "bad-filter", "after: a sequence number");
		return;
	}
	if ((q = cad_query(r, "limit")) &&
	    ((limit = strtol(q, &end, 10)) < 1 || limit > DB_LIST_MAX || *end)) {
		cad_reply_error(r, 400, "bad-filter", "limit: 1..%d", DB_LIST_MAX);
		return;
	}
	if (!(db = cad_db(r)))
		return;
	if (db_audit_list(db, after, (size_t)limit, &rows, &n, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char at[40], hh[65];
		time_t s = (time_t)(rows[i].at_us / 1000000);
		struct tm tm;
		gmtime_r(&s, &tm);
		strftime(at, 21, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(at + 19, sizeof(at) - 19, ".%06lldZ",
		         (long long)(rows[i].at_us % 1000000));
		for (int k = 0; k < 32; k++)
			sprintf(hh + 2 * k, "%02x", rows[i].hash[k]);
		json_array_append_new(
		    arr,
		    json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "seq",
		              (json_int_t)rows[i].seq, "at", at, "actor", rows[i].actor, "role",
		              rows[i].role, "action", rows[i].action, "object", rows[i].object,
		              "outcome", rows[i].outcome, "detail", rows[i].detail, "hash", hh));
	}
	if (n == (size_t)limit)
		cad_reply_json(
		    r, 200,
		    json_pack("{s:o, s:I}", "entries", arr, "next", (json_int_t)rows[n - 1].seq));
	else
		cad_reply_json(r, 200, json_pack("{s:o, s:n}", "entries", arr, "next"));
	db_audit_rows_free(rows, n);
}

/* The state /health reports: "ok" (database and every authority's key), "degraded" (the
 * database answers but keyd does not give a key: nothing can be issued, reads and revocation
 * still work), "down" (no database, or a configuration the database contradicts). The cause
 * goes to the log when the state changes, never to the client; *version, *db_up and
 * *keyd_up for the details. */
static const char *health_state(struct cad_req *r, int *version, int *db_up, int *keyd_up)
{
	static _Atomic int last = -1; /* 0 ok, 1 degraded, 2 down: log on change */
	struct db_err err = {0};
	char why[600] = "";
	int state = 0;

	*version = 0;
	*db_up = *keyd_up = 0;
	if (!r->w->db && db_connect(r->cad->cfg->database, &r->w->db, &err) != DB_OK) {
		r->w->db = NULL;
		state = 2;
		snprintf(why, sizeof(why), "database: %s", err.msg);
	} else if (db_schema_version(r->w->db, version, &err) != DB_OK) {
		state = 2;
		snprintf(why, sizeof(why), "database: %s", err.msg);
	} else {
		*db_up = 1;
		switch (ca_authorities_ready(&r->cad->ca, r->w->db, why, sizeof(why))) {
		case 0:
			*keyd_up = 1;
			break;
		case -1:
			state = 1;
			break;
		default:
			state = 2;
			break;
		}
	}
	if (atomic_exchange(&last, state) != state) {
		if (state)
			log_warn("health: %s: %s", state == 1 ? "degraded" : "down", why);
		else
			log_info("health: ok");
	}
	return state == 0 ? "ok" : state == 1 ? "degraded" : "down";
}

/* GET /health without credentials: the state alone. */
void cad_h_health(struct cad_req *r)
{
	int version, db_up, keyd_up;
	const char *state = health_state(r, &version, &db_up, &keyd_up);

	cad_reply_json(r, strcmp(state, "ok") ? 503 : 200, json_pack("{s:s}", "status", state));
}

/* GET /api/v1/health/details (auditor, operator): which part is away, and the versions; the
 * causes are in the log. */
void cad_h_health_details(struct cad_req *r)
{
	int version, db_up, keyd_up;
	const char *state = health_state(r, &version, &db_up, &keyd_up);

	cad_reply_json(r, strcmp(state, "ok") ? 503 : 200,
	               json_pack("{s:s, s:s, s:s, s:i, s:s}", "status", state, "database",
	                         db_up ? "up" : "down", "keyd", keyd_up ? "up" : "down",
	                         "schema_version", version, "version", "0.1.0"));
}
