/*
 * Quorum approvals (migration 0017, docs/approvals.md): requests for operations under dual
 * control, the votes on them, and the per-kind policy hsmca-cad publishes. The rules (no
 * self-approval, one vote per approver, approver roles, expiry, states only moving forward
 * and only as the votes allow) are held by the database's triggers; these calls name the
 * refusal a trigger gave (enum db_approval_refusal).
 *
 * Like the rest of db.h: DB_OK or *err filled; inside the caller's transaction when one is
 * open.
 */
#ifndef HSMCA_DB_APPROVALS_H
#define HSMCA_DB_APPROVALS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define DB_APPROVAL_KIND_MAX 64
#define DB_APPROVAL_TARGET_MAX 256
#define DB_APPROVAL_PARAMETERS_MAX 8192
#define DB_APPROVAL_REASON_MAX 512
#define DB_APPROVAL_RESULT_MAX 4096
#define DB_APPROVAL_MAX_REQUIRED 16

enum db_approval_state {
	DB_APPROVAL_PENDING,
	DB_APPROVAL_APPROVED, /* enough approvals; waiting for the command line to run it */
	DB_APPROVAL_REJECTED,
	DB_APPROVAL_EXPIRED,
	DB_APPROVAL_EXECUTED,
	DB_APPROVAL_FAILED,
};
const char *db_approval_state_name(enum db_approval_state s);
/* -1 for an unknown name. */
int db_approval_state_parse(const char *name);

/* A request to make. approver_roles: comma-separated role names ("ca-admin,officer"). */
struct db_approval_new {
	const char *kind;       /* e.g. "authority.retire" */
	const char *target;     /* what it acts on */
	const char *parameters; /* a JSON object's text; NULL or "" for {} */
	const char *requester;
	const char *requester_role;
	int required; /* 1..DB_APPROVAL_MAX_REQUIRED */
	const char *approver_roles;
	int64_t expiry_seconds; /* > 0 */
};

struct db_approval_vote {
	char *approver, *approver_role;
	int approve; /* 1 approve, 0 reject */
	char *reason;
	int64_t voted_at;
};

struct db_approval {
	int64_t id;
	char *kind, *target, *parameters, *requester, *requester_role;
	int required;
	char *approver_roles; /* comma-separated */
	enum db_approval_state state;
	int64_t created_at, expires_at, executed_at; /* executed_at 0: not yet */
	char *result;                                /* NULL: none yet */
	int approvals, rejections;
	struct db_approval_vote *votes; /* db_approval_get only, in the order cast */
	size_t n_votes;
};
void db_approval_clear(struct db_approval *a);

enum db_status db_approval_create(struct db *db, const struct db_approval_new *req, int64_t *id,
                                  struct db_err *err);
/* One request with its votes; for_update locks its row until the transaction ends.
 * DB_ERR_NOT_FOUND. */
enum db_status db_approval_get(struct db *db, int64_t id, int for_update, struct db_approval *out,
                               struct db_err *err);

/* Filters of db_approval_list; NULL / -1 do not filter. */
struct db_approval_filter {
	int state; /* enum db_approval_state or -1 */
	const char *kind;
	const char *target;
	size_t limit; /* 1..DB_LIST_MAX; 0: 100 */
};
/* Pending first, then the newest first; without votes (their counts are filled). */
enum db_status db_approval_list(struct db *db, const struct db_approval_filter *f,
                                struct db_approval **rows, size_t *n, struct db_err *err);
void db_approval_list_free(struct db_approval *rows, size_t n);

/* Why the database refused a vote or a change of state. */
enum db_approval_refusal {
	DB_APPROVAL_OK,
	DB_APPROVAL_NO_SUCH_REQUEST,
	DB_APPROVAL_NOT_PENDING,
	DB_APPROVAL_HAS_EXPIRED,
	DB_APPROVAL_NOT_A_PRINCIPAL, /* unknown or disabled */
	DB_APPROVAL_SELF,            /* the requester approving their own request */
	DB_APPROVAL_WRONG_ROLE,
	DB_APPROVAL_DUPLICATE_VOTE,
	DB_APPROVAL_BAD_TRANSITION, /* a state change the votes do not allow */
};
/* The refusal err describes (DB_APPROVAL_OK when it is not one of them). */
enum db_approval_refusal db_approval_refusal_of(const struct db_err *err);

/* Record approver's vote (approve 1, reject 0) on request id. The database checks every rule
 * and refuses with DB_ERR_STATE (or DB_ERR_CONFLICT for a second vote): see
 * db_approval_refusal_of. After a refusal the open transaction is failed: roll it back. */
enum db_status db_approval_vote(struct db *db, int64_t id, const char *approver, int approve,
                                const char *reason, struct db_err *err);
/* Move request id to state (approved, rejected, expired, executed or failed) with result text
 * (NULL: none). DB_ERR_STATE when the database's rules do not allow it. */
enum db_status db_approval_set_state(struct db *db, int64_t id, enum db_approval_state state,
                                     const char *result, struct db_err *err);
/* Mark every pending or approved request whose time is up expired; their ids, kinds and
 * targets into *rows (db_approval_list_free them). */
enum db_status db_approval_expire_due(struct db *db, struct db_approval **rows, size_t *n,
                                      struct db_err *err);

/* A savepoint in the open transaction before an approved operation runs, and the way back to
 * it when the operation fails (its request is then recorded failed in the same transaction). */
enum db_status db_approval_savepoint(struct db *db, struct db_err *err);
enum db_status db_approval_rollback_to_savepoint(struct db *db, struct db_err *err);

/* --- policy: what each kind needs, as hsmca-cad's configuration says --- */

/* Store (insert or replace) kind's policy. */
enum db_status db_approval_policy_put(struct db *db, const char *kind, int required,
                                      const char *approver_roles, int64_t expiry_seconds,
                                      struct db_err *err);
/* kind's policy: *required 1 and roles "" when none is stored (no approval needed). */
enum db_status db_approval_policy_get(struct db *db, const char *kind, int *required,
                                      char *approver_roles, size_t roles_size, struct db_err *err);

#endif
