/*
 * The token: the PKCS#11 module (loaded through libp11), one logged-in token,
 * one session per signer thread plus a control session, and the table of
 * keys by label. Only this file's implementation touches PKCS#11.
 *
 * When the module reports a device-level failure (device error, session
 * handle invalid, token not present, not initialised, ...) the token goes
 * offline: requests fail at once with KEYD_E_OFFLINE while a recovery thread
 * finalises the module, loads it again and logs in, with backoff.
 */
#ifndef HSMCA_KEYD_TOKEN_H
#define HSMCA_KEYD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "keyd_config.h"
#include "keyd_proto.h"

struct keyd_token;

/* A copy of a key's public facts, safe to use without any lock. */
struct keyd_key_copy {
	char label[KEYD_LABEL_MAX + 1];
	uint8_t type;
	uint16_t bits;
	uint8_t flags;
	uint8_t spki[KEYD_SPKI_MAX];
	size_t spki_len;
};

/* Load the module, find the token by label, log in with pin and open
 * nsessions signer sessions. Returns NULL with err set. pin is copied (and kept, in locked
 * memory, for logging in again after a recovery).
 * pin NULL (activation: quorum): the token starts sealed, with no module loaded and no login,
 * until keyd_token_unseal. */
struct keyd_token *keyd_token_open(const struct keyd_config *cfg, const char *pin, int nsessions,
                                   char *err, size_t errlen);
/* Stop the recovery thread and let go of the module. */
void keyd_token_close(struct keyd_token *t);

int keyd_token_online(struct keyd_token *t);
/* Why requests are answered "offline" now: recovering, or (the token no longer accepts the
 * PIN, e.g. re-initialised with another one) waiting to be restarted with the current PIN. */
const char *keyd_token_offline_why(struct keyd_token *t);
/* Sealed (activation: quorum): no login until the quorum's PIN is given. */
int keyd_token_sealed(struct keyd_token *t);
/* Log in with pin (the quorum's), which is not kept: the token's copy is wiped once logged
 * in, so a token loss that drops the login leaves keyd sealed again. 0, or -1 with err (the
 * token stays sealed). */
int keyd_token_unseal(struct keyd_token *t, const char *pin, char *err, size_t errlen);
/* Close the sessions, let go of the module (which drops the login) and wipe the PIN. */
void keyd_token_seal(struct keyd_token *t);
unsigned keyd_token_reinits(struct keyd_token *t);
size_t keyd_token_nkeys(struct keyd_token *t);
const char *keyd_token_label(struct keyd_token *t);

/* Copy out key i (0-based) / the key with this label; 0 or KEYD_E_NO_KEY. */
int keyd_token_key_at(struct keyd_token *t, size_t i, struct keyd_key_copy *out);
int keyd_token_key(struct keyd_token *t, const char *label, struct keyd_key_copy *out);

/* Sign a digest on signer session `session`. Returns a keyd status; msg
 * explains a failure. */
int keyd_token_sign(struct keyd_token *t, int session, const char *label, int alg, int hash,
                    unsigned salt_len, const uint8_t *digest, size_t digest_len, uint8_t *sig,
                    size_t *sig_len, char *msg, size_t msglen);

/* Generate a key pair: sensitive, non-extractable, on the token. */
int keyd_token_generate(struct keyd_token *t, const char *label, int keytype, unsigned keyparam,
                        struct keyd_key_copy *out, char *msg, size_t msglen);

/* WRAP (unwrap 0): encrypt in (1..KEYD_WRAP_DATA_MAX bytes) under the AES key `label` with
 * AES-256-GCM on the token, out = u8 1 | 12-byte nonce | ciphertext | 16-byte tag, the label
 * bound as associated data. UNWRAP (unwrap 1): the reverse; a blob that does not authenticate
 * is KEYD_E_BAD_ALG. *outlen is the room in out, then the length written. */
int keyd_token_wrap(struct keyd_token *t, int unwrap, const char *label, const uint8_t *in,
                    size_t inlen, uint8_t *out, size_t *outlen, char *msg, size_t msglen);

/* What the token said it can do at its last bring-up (C_GetTokenInfo, C_GetMechanismInfo of
 * keyd's mechanisms); have 0 while sealed or being re-initialised. Never waits on the token. */
void keyd_token_caps(struct keyd_token *t, struct keyd_token_caps *out);

/* Check the control session; a device-level failure takes the token offline. */
void keyd_token_health(struct keyd_token *t);

#endif
