/* Key recovery requests (docs/key-recovery.md): an officer asks for the archived key of a
 * certificate to be recovered; the request is a key.recovery approval whose target is the
 * serial. hsmca-cad only records it: it holds no unwrap grant, so the recovery itself is
 * `hsmca recover` on the keyd host, under the approval. */
#include <stdio.h>
#include <string.h>

#include "cad_approvals.h"
#include "cad_internal.h"
#include "db_approvals.h"

void cad_key_recovery_request(struct cad_req *r, const char *serial, const char *reason)
{
	struct ca_requester who = cad_requester(r);
	struct db_cert c = {0};
	struct ca_why why = {0};
	struct db_err err = {0};
	char hex[2 * DB_SERIAL_MAX + 1];
	int required = cad_approval_required(r->cad->cfg, "key.recovery"), exists = 0;
	enum ca_outcome o;
	json_t *params;
	struct db *db;

	/* One officer's word never opens an archive: without a quorum, nothing is recorded. */
	if (required < 2) {
		cad_deny(r, 409, "quorum-required", "key.recovery",
		         "key recovery needs at least 2 approvals and the configuration gives "
		         "key.recovery %d: set approvals: kinds: {kind: key.recovery, required: 2}",
		         required);
		return;
	}
	if ((o = ca_cert_find(&r->cad->ca, &r->w->db, &who, serial, &c, &why)) != CA_OK) {
		cad_reply_ca(r, o, &why);
		goto out;
	}
	if (!(db = cad_db(r)))
		goto out;
	if (db_key_archive_exists(db, c.id, &exists, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	db_serial_to_hex(c.serial, c.serial_len, hex);
	if (!exists) {
		cad_deny(r, 409, "no-archived-key", hex,
		         "certificate %s has no archived key: only keys hsmca-cad made for a "
		         "profile with archive_key can be recovered",
		         hex);
		goto out;
	}
	params = json_pack("{s:i, s:s, s:s}", "authority_id", (int)c.authority_id, "subject",
	                   c.subject ? c.subject : "", "reason", reason);
	cad_approval_request(r, "key.recovery", hex, params);
	json_decref(params);
out:
	db_cert_clear(&c);
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

void cad_h_cert_recover(struct cad_req *r)
{
	static const char *const fields[] = {"reason", NULL};
	json_t *body = cad_body_object(r, fields), *v;
	const char *reason;

	if (!body)
		return;
	v = json_object_get(body, "reason");
	reason = json_string_value(v);
	if (!reason || !reason[0] || strlen(reason) > DB_APPROVAL_REASON_MAX ||
	    strlen(reason) != json_string_length(v) || has_control(reason)) {
		cad_reply_error(r, 400, "bad-request",
		                "\"reason\" is required: a string of 1..%d bytes without control "
		                "characters saying why the key is recovered",
		                DB_APPROVAL_REASON_MAX);
		goto out;
	}
	cad_key_recovery_request(r, r->args[0], reason);
out:
	json_decref(body);
}
