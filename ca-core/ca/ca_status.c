/* A certificate's status after issuance: revoke, hold and release, each with its audit entry in
 * the same transaction, committed before the caller answers (the data layer's trigger announces
 * the change to OCSP and CRL at commit). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "crlreason.h"

static enum ca_outcome fail(struct ca_why *why, enum ca_outcome o, const char *code,
                            const char *object, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum ca_outcome fail(struct ca_why *why, enum ca_outcome o, const char *code,
                            const char *object, const char *fmt, ...)
{
	va_list ap;

	snprintf(why->code, sizeof(why->code), "%s", code);
	snprintf(why->object, sizeof(why->object), "%s", object ? object : "");
	va_start(ap, fmt);
	vsnprintf(why->reason, sizeof(why->reason), fmt, ap);
	va_end(ap);
	return o;
}

/* The certificate with serial, whoever asks. */
static enum ca_outcome lookup(struct db *db, const char *serial, struct db_cert *c,
                              struct ca_why *why)
{
	uint8_t bin[DB_SERIAL_MAX];
	struct db_err err = {0};
	enum db_status rc;
	size_t len;

	if (db_serial_from_hex(serial, bin, &len) != 0)
		return fail(why, CA_REFUSED, "bad-serial", NULL, "\"%.64s\" is not a serial in hex",
		            serial);
	rc = db_cert_lookup(db, 0, bin, len, c, &err);
	if (rc == DB_ERR_NOT_FOUND)
		return fail(why, CA_NOT_FOUND, "unknown-serial", NULL,
		            "no certificate with serial %.64s", serial);
	if (rc == DB_ERR_CONFLICT)
		return fail(why, CA_AMBIGUOUS, "ambiguous-serial", NULL, "%s", err.msg);
	if (rc != DB_OK)
		return ca_db_failure(why, &err);
	return CA_OK;
}

enum ca_outcome ca_cert_find(struct ca *ca, struct db **db, const struct ca_requester *who,
                             const char *serial, struct db_cert *cert, struct ca_why *why)
{
	struct db_err err = {0};
	enum ca_outcome o;

	if (ca_db_open(ca, db, &err) != DB_OK)
		return ca_db_failure(why, &err);
	if ((o = lookup(*db, serial, cert, why)) != CA_OK)
		return o;
	/* A requester limited to some profiles acts only on their certificates. */
	if (who->profiles && !ca_profile_listed(who->profiles, cert->profile))
		return fail(why, CA_NOT_GRANTED, "profile-not-granted", serial,
		            "principal %s is not granted profile %s", who->name, cert->profile);
	return CA_OK;
}

enum change { REVOKE, HOLD, RELEASE };

static enum ca_outcome change(struct ca *ca, struct db **dbp, const struct ca_status_request *req,
                              struct ca_status_result *res, enum change what)
{
	struct db_cert *c = &res->cert;
	struct db_err err = {0};
	struct db_audit_entry e;
	json_t *detail = NULL;
	char *dtext = NULL;
	int changed = 0;
	int64_t seq;
	enum ca_outcome o;
	enum db_status rc;
	struct db *db;

	memset(res, 0, sizeof(*res));
	if ((o = ca_cert_find(ca, dbp, &req->who, req->serial, c, &res->why)) != CA_OK)
		goto out;
	db = *dbp;
	if ((rc = db_begin(db, &err)) != DB_OK) {
		o = ca_db_failure(&res->why, &err);
		goto out;
	}
	if (what == REVOKE)
		rc = db_cert_revoke(db, c->authority_id, c->serial, c->serial_len, req->reason,
		                    req->invalidity_date, &changed, &err);
	else if (what == HOLD)
		rc = db_cert_hold(db, c->authority_id, c->serial, c->serial_len, &changed, &err);
	else
		rc = db_cert_release(db, c->authority_id, c->serial, c->serial_len, &changed, &err);
	if (rc == DB_OK && changed) {
		detail = what == REVOKE
		             ? json_pack("{s:s, s:s?}", "reason", crlreason_name(req->reason),
		                         "invalidity_date", req->invalidity_text)
		             : NULL;
		dtext = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		e.actor = req->who.name ? req->who.name : "anonymous";
		e.role = req->who.role ? req->who.role : "";
		e.action = req->action ? req->action : "request";
		e.object = req->serial;
		e.outcome = "success";
		e.detail = dtext ? dtext : "";
		rc = db_audit_append(db, &e, &seq, &err);
	}
	if (rc == DB_OK)
		rc = db_commit(db, &err);
	else
		db_rollback(db);
	if (rc == DB_ERR_STATE) {
		o = fail(&res->why, CA_WRONG_STATE, "wrong-state", NULL, "certificate %s is %s: %s",
		         req->serial, db_cert_status_name(c->status), err.msg);
		goto out;
	}
	if (rc != DB_OK) {
		o = ca_db_failure(&res->why, &err);
		goto out;
	}
	/* Committed (synchronous_commit on): durable now, and announced. */
	db_cert_clear(c);
	o = lookup(db, req->serial, c, &res->why);
out:
	free(dtext);
	json_decref(detail);
	return o;
}

enum ca_outcome ca_revoke(struct ca *ca, struct db **db, const struct ca_status_request *req,
                          struct ca_status_result *res)
{
	return change(ca, db, req, res, REVOKE);
}

enum ca_outcome ca_hold(struct ca *ca, struct db **db, const struct ca_status_request *req,
                        struct ca_status_result *res)
{
	return change(ca, db, req, res, HOLD);
}

enum ca_outcome ca_release(struct ca *ca, struct db **db, const struct ca_status_request *req,
                           struct ca_status_result *res)
{
	return change(ca, db, req, res, RELEASE);
}
