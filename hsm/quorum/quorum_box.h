/*
 * A share file encrypted to its custodian's passphrase (docs/quorum.md, "Shares under a
 * passphrase"): the share file's text under AES-256-GCM with a key from scrypt. It is opened
 * by hsmca on the custodian's side (hsmca keyd unseal asks for the passphrase); keyd only ever
 * sees the share itself.
 *
 *   hsmca-quorum-share-encrypted v2
 *   custodian: NAME
 *   kdf: scrypt-n32768-r8-p1
 *   salt: 32 hex digits
 *   nonce: 24 hex digits
 *   check: 32 hex digits
 *   data: hex of the ciphertext and the 16-byte tag
 *
 * Every line above "data:" is the associated data. scrypt derives 64 bytes: the AES key, and
 * a key whose HMAC-SHA256 of a fixed label (cut to 16 bytes) is "check", so that a wrong
 * passphrase is told from a changed file. v1 (written before; no check line, 32 derived
 * bytes) is still opened. At most QUORUM_BOX_MAX bytes.
 */
#ifndef HSMCA_QUORUM_BOX_H
#define HSMCA_QUORUM_BOX_H

#include <stddef.h>

#define QUORUM_BOX_MAX 2600
#define QUORUM_PASS_MIN 8
#define QUORUM_PASS_MAX 1024

#include <stdint.h>

#include "quorum.h"

/* An envelope as read, before any key is derived. */
struct qbox {
	int version; /* 1 or 2 */
	char custodian[QUORUM_NAME_MAX + 1];
	uint8_t check[16]; /* v2 */
	uint8_t salt[16], nonce[12];
	uint8_t ct[QUORUM_FILE_MAX + 16]; /* ciphertext, then the tag */
	size_t ctlen;                     /* without the tag */
	size_t aadlen;                    /* the text before "data:" */
};

/* Read an envelope strictly (no scrypt yet): 0, or -1 with err naming the problem. */
int quorum_box_parse(const char *text, size_t len, struct qbox *b, char *err, size_t errlen);

/* 1 if text starts like an encrypted share. */
int quorum_box_is(const char *text, size_t len);
/* Encrypt a share file's text (1..QUORUM_FILE_MAX bytes) for custodian under pass (8..1024
 * bytes). Returns the envelope's length in out, or -1 with err. */
int quorum_box_seal(const char *share, size_t len, const char *custodian, const char *pass,
                    char *out, size_t cap, char *err, size_t errlen);
/* Open an envelope: the share file's text in out (cap at least QUORUM_FILE_MAX), its length
 * returned; -1 with err ("... does not parse: ...", "share of NAME: wrong passphrase", "share
 * of NAME: the file was changed or is corrupted ..."; v1: "share of NAME: wrong passphrase, or
 * the file is corrupted"). */
int quorum_box_open(const char *text, size_t len, const char *pass, char *out, size_t cap,
                    char *err, size_t errlen);

#endif
