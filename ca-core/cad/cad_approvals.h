/*
 * Quorum approvals in hsmca-cad (cad_approvals.c, docs/approvals.md). An operation of a kind
 * whose policy needs M > 1 approvals is not run by its endpoint: the endpoint records a
 * pending request (cad_approval_request, answered 202 with its Location) and M distinct
 * principals of the policy's roles approve it at POST /api/v1/approvals/{id}/approve; the M-th
 * approval runs it, once, in the transaction that records that vote, through the kind's
 * execute function. Kinds run by the command line (ceremony.run, backup.restore, key.recovery) have
 * no execute function: the M-th approval leaves them approved, and `hsmca` marks them executed or
 * failed when it runs them. The database's triggers hold the rules (migration 0017).
 */
#ifndef HSMCA_CAD_APPROVALS_H
#define HSMCA_CAD_APPROVALS_H

#include <stddef.h>

#include <jansson.h>
#include <yaml.h>

#include "cad.h"
#include "db.h"
#include "db_approvals.h"
#include "yconf.h"

struct cad_req;

/* What an execute function gets and gives. */
struct cad_approval_run {
	const struct db_approval *request; /* locked; its votes are those before this one */
	json_t *approvers;                 /* every approver's name, this one last */
	json_t *result;                    /* an object to fill with what the operation did */
	char why[512];                     /* return 1: why the operation failed */
	struct db_err err;                 /* return -1: the database failure */
};
/* Run the approved operation inside the open transaction on db, with its own audit entry
 * (cad_approval_audit). 0 done; 1 the operation failed (why; everything it did is rolled back
 * and the request recorded failed); -1 the database failed (err; nothing is recorded). */
typedef int (*cad_approval_execute)(struct cad_req *r, struct db *db, struct cad_approval_run *run);

struct cad_approval_kind {
	const char *kind; /* e.g. "authority.retire" */
	const char
	    *default_approvers; /* comma-separated roles, when the configuration names none */
	/* Roles that may ask for it at POST /api/v1/approvals (comma-separated); NULL: only its
	 * own endpoint makes requests. */
	const char *requesters;
	/* NULL: run by the command line (the request stays approved until it is). */
	cad_approval_execute execute;
	/* The target as POST /api/v1/approvals takes it: "sha256" (64 hex digits), "serial" (a
	 * certificate serial in hex, looked up by the kind's own handler) or NULL. */
	const char *target_form;
};
/* The kinds hsmca knows, or NULL. */
const struct cad_approval_kind *cad_approval_kind_find(const char *kind);

/* The configuration's approvals: section (cad_config.c calls it with the node or NULL). */
int cad_approvals_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg);
/* kind's policy: the approvals it needs (1: none, it runs at once) and who gives them. */
int cad_approval_required(const struct cad_config *cfg, const char *kind);
const char *cad_approval_approvers(const struct cad_config *cfg, const char *kind);
/* Store every kind's policy in the database (approval_policies), for the command line. 0, or
 * -1 with err. */
int cad_approvals_publish(const struct cad_config *cfg, struct db *db, struct db_err *err);

/* Record a pending request of kind for r's operation on target, with parameters (an object,
 * borrowed; NULL: {}), audited, and answer 202 with it and its Location; or answer the
 * error. */
void cad_approval_request(struct cad_req *r, const char *kind, const char *target,
                          json_t *parameters);
/* Append an audit entry of r's principal with action on object inside the open transaction
 * (commit: and commit it). detail is borrowed; NULL for none. */
enum db_status cad_approval_audit(struct cad_req *r, struct db *db, const char *action,
                                  const char *object, const char *outcome, json_t *detail,
                                  int commit, struct db_err *err);

/* --- request bodies (cad_approvals_parse.c: no I/O, the fuzz target's entry) --- */

#define CAD_APPROVAL_BODY_MAX 16384

struct cad_approval_vote_body {
	char reason[DB_APPROVAL_REASON_MAX + 1];
};
/* The body of approve (may be empty) or reject (a reason is required): {"reason": "..."}.
 * 0, or -1 with err naming the problem. */
int cad_approval_parse_vote(const char *buf, size_t len, int reject,
                            struct cad_approval_vote_body *out, char *err, size_t errsz);

struct cad_approval_create_body {
	char kind[DB_APPROVAL_KIND_MAX + 1];
	char target[DB_APPROVAL_TARGET_MAX + 1];
	char reason[DB_APPROVAL_REASON_MAX + 1];
	json_t *parameters; /* an object (owned; cad_approval_create_body_clear) */
};
/* The body of POST /api/v1/approvals: {"kind", "target", "reason"?, "parameters"?}. The kind
 * must be one hsmca knows that takes requests there, the target of its form. 0, or -1 with
 * err. */
int cad_approval_parse_create(const char *buf, size_t len, struct cad_approval_create_body *out,
                              char *err, size_t errsz);
void cad_approval_create_body_clear(struct cad_approval_create_body *b);
/* An approval id of the path: 1..18 decimal digits. 0, or -1. */
int cad_approval_parse_id(const char *s, int64_t *id);

/* --- handlers --- */

void cad_h_approval_list(struct cad_req *r);
void cad_h_approval_show(struct cad_req *r);
void cad_h_approval_create(struct cad_req *r);
void cad_h_approval_approve(struct cad_req *r);
void cad_h_approval_reject(struct cad_req *r);

/* The kinds' execute functions. */
int cad_authority_retire_execute(struct cad_req *r, struct db *db, struct cad_approval_run *run);
int cad_cert_revoke_ca_execute(struct cad_req *r, struct db *db, struct cad_approval_run *run);

#endif
