/*
 * TOTP step-up (RFC 6238) in hsmca-cad, the parts without HTTP or a database
 * (cad_mfa_totp.c), for the handlers (cad_mfa.c), the unit tests and the fuzz target: codes
 * checked through liboath, the otpauth:// URI and its QR code as SVG (libqrencode), recovery
 * codes and their hashes, the X-HSMCA-TOTP header's forms, and the step-up policy's patterns.
 * docs/mfa.md describes the whole.
 */
#ifndef HSMCA_CAD_MFA_H
#define HSMCA_CAD_MFA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cad.h"
#include "yconf.h"

#define CAD_TOTP_SECRET_LEN 20 /* 160 bits: RFC 4226's recommendation for HMAC-SHA-1 */
#define CAD_TOTP_STEP 30       /* seconds (RFC 6238's default X) */
#define CAD_TOTP_DIGITS 6
#define CAD_TOTP_WINDOW 1 /* steps accepted either side of the current one */
/* A recovery code as shown: four groups of four base32 letters, "abcd-efgh-ijkl-mnop" (80
 * random bits); accepted in either case, with or without the dashes. */
#define CAD_RECOVERY_CHARS 16
#define CAD_RECOVERY_SHOWN (CAD_RECOVERY_CHARS + 3)
#define CAD_RECOVERY_ITERATIONS 20000 /* PBKDF2-HMAC-SHA256 */

/* Check code (exactly CAD_TOTP_DIGITS digits) against the secret at time now, within ±window
 * steps. 0 with *step the matching code's time step (now / 30 - 1, + 0 or + 1), or -1 when it
 * does not match or is not a code. The clock is the caller's: tests pass any time. */
int cad_totp_check(const uint8_t *secret, size_t len, const char *code, time_t now, int window,
                   int64_t *step);
/* The code of secret at time now (the tests' and the checks' own use). 0, or -1. */
int cad_totp_code(const uint8_t *secret, size_t len, time_t now, char out[CAD_TOTP_DIGITS + 1]);
/* secret in RFC 4648 base32 without padding (what authenticator apps take) into out. 0, or -1
 * when it does not fit. */
int cad_totp_base32(const uint8_t *secret, size_t len, char *out, size_t n);
/* The Key Uri Format authenticator apps read: otpauth://totp/ISSUER:NAME?secret=B32&
 * issuer=ISSUER&algorithm=SHA1&digits=6&period=30, issuer and name percent-encoded. 0, or -1
 * when it does not fit. */
int cad_totp_uri(const char *issuer, const char *name, const char *b32, char *out, size_t n);
/* text as a QR code (error correction M) in an SVG document, black modules on white with the
 * four-module quiet zone; malloc'd, NULL on failure. */
char *cad_qr_svg(const char *text);

/* A fresh recovery code, as shown, into out. 0, or -1 (no randomness). */
int cad_recovery_new(char out[CAD_RECOVERY_SHOWN + 1]);
/* The stored hash of a normalised recovery code (cad_mfa_code_kind): PBKDF2-HMAC-SHA256 with
 * salt, CAD_RECOVERY_ITERATIONS rounds. 0, or -1. */
int cad_recovery_hash(const char *normalised, const uint8_t salt[16], uint8_t out[32]);

enum cad_mfa_code { CAD_MFA_NOT_A_CODE, CAD_MFA_TOTP, CAD_MFA_RECOVERY };
/* What the value of X-HSMCA-TOTP (or a body's "code") is: six digits (a TOTP code, copied to
 * norm), a recovery code (normalised to CAD_RECOVERY_CHARS lower-case letters and digits in
 * norm), or neither. Bounded: reads at most 64 bytes of v. norm has n >= 17 bytes. */
enum cad_mfa_code cad_mfa_code_kind(const char *v, char *norm, size_t n);

/* 1 when a step-up policy entry matches a route's action: the same name, "PREFIX.*" for every
 * action below PREFIX, or "*". */
int cad_mfa_pattern_matches(const char *pattern, const char *action);
/* 1 when an entry is well formed: "*", or 1..63 of a-z 0-9 . - with an optional ".*" end. */
int cad_mfa_pattern_ok(const char *pattern);

/* hsmca-cad's "mfa:" section (n NULL: MFA off), into cfg. 0, or -1 with y's error. Checks
 * each step-up entry against the route table (cad_routes.c). */
int cad_mfa_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg);

#endif
