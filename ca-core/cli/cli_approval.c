/* The command line's side of quorum approvals (cli_approval.h). */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cli_approval.h"

int cli_file_sha256(const char *path, char out[65], char *err, size_t errsz)
{
	unsigned char buf[65536], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	FILE *f = fopen(path, "rb");
	size_t n;
	int ok;

	if (!f) {
		snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(ctx, buf, n);
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
	fclose(f);
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		snprintf(err, errsz, "cannot read %s", path);
		return -1;
	}
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return 0;
}

static int fail(struct cli_approval *ap, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct cli_approval *ap, char *err, size_t errsz, const char *fmt, ...)
{
	va_list va;

	va_start(va, fmt);
	vsnprintf(err, errsz, fmt, va);
	va_end(va);
	if (ap->db) {
		db_rollback(ap->db);
		db_close(ap->db);
	}
	db_approval_clear(&ap->a);
	memset(ap, 0, sizeof(*ap));
	return -1;
}

int cli_approval_claim(const char *database, const char *kind, const char *sha256, int64_t id,
                       struct cli_approval *ap, char *err, size_t errsz)
{
	char ask[160];

	snprintf(ask, sizeof(ask), "hsmca approvals request %s --file FILE --reason TEXT", kind);
	return cli_approval_claim_target(database, kind, sha256, "this file", ask, id, ap, err,
	                                 errsz);
}

int cli_approval_claim_target(const char *database, const char *kind, const char *sha256,
                              const char *what, const char *ask, int64_t id,
                              struct cli_approval *ap, char *err, size_t errsz)
{
	struct db_err derr = {0};
	int required = 1;
	char roles[128];
	size_t n;
	int k = 0;

	memset(ap, 0, sizeof(*ap));
	if (!database && !getenv("PGHOST") && !getenv("PGDATABASE") && !getenv("PGSERVICE") &&
	    id <= 0)
		return 0; /* no database named: an offline run (docs/approvals.md) */
	if (db_connect(database, &ap->db, &derr) != DB_OK) {
		ap->db = NULL;
		return fail(ap, err, errsz, "cannot check the approvals of %s: %s", kind, derr.msg);
	}
	if (db_approval_policy_get(ap->db, kind, &required, roles, sizeof(roles), &derr) != DB_OK)
		return fail(ap, err, errsz, "cannot read the approval policy of %s: %s", kind,
		            derr.msg);
	if (required < 2 && id <= 0) {
		db_close(ap->db);
		ap->db = NULL;
		return 0;
	}
	if (db_begin(ap->db, &derr) != DB_OK)
		return fail(ap, err, errsz, "%s", derr.msg);
	if (id <= 0) {
		struct db_approval_filter f = {
		    .state = DB_APPROVAL_APPROVED, .kind = kind, .target = sha256, .limit = 1};
		struct db_approval *rows = NULL;
		size_t nrows = 0;
		if (db_approval_list(ap->db, &f, &rows, &nrows, &derr) != DB_OK)
			return fail(ap, err, errsz, "%s", derr.msg);
		id = nrows ? rows[0].id : 0;
		db_approval_list_free(rows, nrows);
		if (!id)
			return fail(
			    ap, err, errsz,
			    "%s needs %d people's approval (the configuration's policy) and "
			    "no approved request is for %s (SHA-256 %s): ask with "
			    "'%s', have it approved, then run this again",
			    kind, required, what, sha256, ask);
	}
	switch (db_approval_get(ap->db, id, 1, &ap->a, &derr)) {
	case DB_OK:
		break;
	case DB_ERR_NOT_FOUND:
		return fail(ap, err, errsz, "no approval request %lld", (long long)id);
	default:
		return fail(ap, err, errsz, "%s", derr.msg);
	}
	if (strcmp(ap->a.kind, kind) != 0 || strcmp(ap->a.target, sha256) != 0)
		return fail(ap, err, errsz,
		            "approval request %lld is for %s of %s, not %s of %s (SHA-256 %s)",
		            (long long)id, ap->a.kind, ap->a.target, kind, what, sha256);
	if (ap->a.state != DB_APPROVAL_APPROVED)
		return fail(ap, err, errsz, "approval request %lld is %s, not approved",
		            (long long)id, db_approval_state_name(ap->a.state));
	if (ap->a.expires_at <= (int64_t)time(NULL))
		return fail(ap, err, errsz, "approval request %lld expired; ask again",
		            (long long)id);
	n = (size_t)snprintf(ap->line, sizeof(ap->line), "request %lld (%s) by %s, approved by",
	                     (long long)id, kind, ap->a.requester);
	for (size_t i = 0; i < ap->a.n_votes && n < sizeof(ap->line); i++)
		if (ap->a.votes[i].approve)
			n += (size_t)snprintf(ap->line + n, sizeof(ap->line) - n, "%s %s",
			                      k++ ? "," : "", ap->a.votes[i].approver);
	ap->active = 1;
	return 0;
}

int cli_approval_finish(struct cli_approval *ap, int ok, const char *result, int dry_run, char *err,
                        size_t errsz)
{
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096], obj[40], *rtext = NULL, *dtext = NULL;
	struct db_audit_entry e;
	struct db_err derr = {0};
	json_t *r = NULL, *d = NULL;
	int64_t seq;
	int rc = -1;

	if (!ap->active)
		return 0;
	if (dry_run) {
		db_rollback(ap->db);
		rc = 0;
		goto out;
	}
	if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) != 0)
		pwp = NULL;
	r = ok ? json_pack("{s:s?}", "result", result)
	       : json_pack("{s:s}", "error", result ? result : "failed");
	rtext = r ? json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	d = json_pack("{s:s, s:s, s:O?}", "kind", ap->a.kind, "target", ap->a.target, "result", r);
	dtext = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	snprintf(obj, sizeof(obj), "approval/%lld", (long long)ap->a.id);
	e.actor = pwp ? pwp->pw_name : "local";
	e.role = "local";
	e.action = "approval.execute";
	e.object = obj;
	e.outcome = ok ? "success" : "error";
	e.detail = dtext ? dtext : "";
	if (!rtext || !dtext ||
	    db_approval_set_state(ap->db, ap->a.id, ok ? DB_APPROVAL_EXECUTED : DB_APPROVAL_FAILED,
	                          rtext, &derr) != DB_OK ||
	    db_audit_append(ap->db, &e, &seq, &derr) != DB_OK ||
	    db_commit(ap->db, &derr) != DB_OK) {
		db_rollback(ap->db);
		snprintf(err, errsz, "recording approval request %lld as %s: %s",
		         (long long)ap->a.id, ok ? "executed" : "failed",
		         derr.msg[0] ? derr.msg : "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(rtext);
	free(dtext);
	json_decref(r);
	json_decref(d);
	db_close(ap->db);
	db_approval_clear(&ap->a);
	memset(ap, 0, sizeof(*ap));
	return rc;
}
