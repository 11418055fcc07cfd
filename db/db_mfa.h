/*
 * TOTP step-up in the database (db_mfa.c, migration 0018): a principal's enrolment (its secret
 * only as keyd's wrapped blob), the last time step whose code was accepted, the failures of the
 * current throttling window, and its ten hashed recovery codes. docs/mfa.md says what is
 * stored and why. Every function follows db.h's conventions (DB_OK or *err filled).
 */
#ifndef HSMCA_DB_MFA_H
#define HSMCA_DB_MFA_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define DB_MFA_WRAPPED_MAX 541 /* keyd's largest wrap blob */
#define DB_MFA_KEY_MAX 64
#define DB_MFA_RECOVERY_CODES 10
#define DB_MFA_SALT_LEN 16
#define DB_MFA_HASH_LEN 32

enum db_mfa_state { DB_MFA_NONE, DB_MFA_PENDING, DB_MFA_ACTIVE, DB_MFA_DISABLED };

struct db_mfa {
	enum db_mfa_state state; /* DB_MFA_NONE: never enrolled (no row) */
	char wrap_key[DB_MFA_KEY_MAX + 1];
	uint8_t wrapped[DB_MFA_WRAPPED_MAX];
	size_t wrapped_len;
	int64_t last_step;   /* -1: no code accepted yet */
	int failures;        /* wrong codes in the window that is still open (0 when it closed) */
	int64_t window_left; /* seconds until that window closes; 0 when none is open */
	int recovery_left;   /* unused recovery codes */
	int64_t enrolled_at, confirmed_at; /* seconds since the epoch; 0: not confirmed */
};

struct db_mfa_recovery {
	int n; /* 0..9 */
	uint8_t salt[DB_MFA_SALT_LEN];
	uint8_t hash[DB_MFA_HASH_LEN];
};

/* principal_id's enrolment; out->state DB_MFA_NONE when it never enrolled. window_seconds is
 * the throttling window failures are counted in. */
enum db_status db_mfa_get(struct db *db, int32_t principal_id, int window_seconds,
                          struct db_mfa *out, struct db_err *err);
/* A new pending enrolment (replacing a pending or disabled one): the wrapped secret, no step
 * used, no failures. DB_ERR_STATE when an active one exists. */
enum db_status db_mfa_enrol(struct db *db, int32_t principal_id, const char *wrap_key,
                            const uint8_t *wrapped, size_t wrapped_len, struct db_err *err);
/* pending -> active, step the confirming code's, and the ten recovery codes (replacing any
 * earlier ones), together. DB_ERR_STATE when not pending. Inside the caller's transaction if
 * one is open. */
enum db_status db_mfa_confirm(struct db *db, int32_t principal_id, int64_t step,
                              const struct db_mfa_recovery codes[DB_MFA_RECOVERY_CODES],
                              struct db_err *err);
/* Accept a code of time step `step` for an active (or, with pending, a pending) enrolment:
 * *ok 1 when step is later than the last step accepted (it becomes the last one, and the
 * failures are forgotten), 0 when it is not (a code used already, or an older one). */
enum db_status db_mfa_use_step(struct db *db, int32_t principal_id, int64_t step, int *ok,
                               struct db_err *err);
/* Count one wrong code: in the open window, or in a new one of window_seconds starting now.
 * *failures is the count in that window afterwards. */
enum db_status db_mfa_fail(struct db *db, int32_t principal_id, int window_seconds, int *failures,
                           struct db_err *err);
/* Disable: the wrapped secret cleared, the recovery codes spent. *changed 0 when there was
 * nothing to disable. Inside the caller's transaction if one is open. */
enum db_status db_mfa_disable(struct db *db, int32_t principal_id, int *changed,
                              struct db_err *err);
/* The unused recovery codes of an active enrolment (at most DB_MFA_RECOVERY_CODES). */
enum db_status db_mfa_recovery_list(struct db *db, int32_t principal_id,
                                    struct db_mfa_recovery out[DB_MFA_RECOVERY_CODES], size_t *n,
                                    struct db_err *err);
/* Spend recovery code n: *ok 1 when it was unused (now used), 0 when it was used already. The
 * failures are forgotten when it was unused. */
enum db_status db_mfa_recovery_use(struct db *db, int32_t principal_id, int n, int *ok,
                                   struct db_err *err);

#endif
