/*
 * A keyd quorum: the token PIN split with Shamir's scheme (shamir.h) into one share per
 * custodian, each share a small signed text file (docs/quorum.md, "The share file"):
 *
 *   hsmca-quorum-share v1
 *   quorum: 32 hex digits (16 random bytes naming this quorum)
 *   custodian: NAME (1..64 of A-Z a-z 0-9 . _ -)
 *   index: I (1..total: the share's x coordinate)
 *   threshold: M (2..total)
 *   total: N (M..QUORUM_MAX_SHARES)
 *   share: hex of the share's bytes (QUORUM_BLOCK bytes)
 *   signature: 128 hex digits (Ed25519 over every byte above this line)
 *
 * Lines end in "\n" and come in this order, nothing else; the file is at most
 * QUORUM_FILE_MAX bytes. The signing key is made by `quorum init`, signs the shares and is
 * thrown away; its public half (the verify key) and the quorum id go into keyd's
 * configuration. So keyd tells a corrupted or altered share (signature), a share of another
 * quorum (id) and a duplicate (index) apart before it combines anything, and nothing on the
 * host is derived from the PIN alone.
 *
 * The secret the shares carry is a block of QUORUM_BLOCK bytes: the PIN's length, the PIN,
 * zeros. Combining checks that shape as well.
 */
#ifndef HSMCA_QUORUM_H
#define HSMCA_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#define QUORUM_ID_LEN 16
#define QUORUM_VK_LEN 32
#define QUORUM_SIG_LEN 64
#define QUORUM_NAME_MAX 64
#define QUORUM_MAX_SHARES 16
#define QUORUM_BLOCK 128
#define QUORUM_PIN_MAX (QUORUM_BLOCK - 1)
#define QUORUM_FILE_MAX 1024

struct qshare {
	uint8_t id[QUORUM_ID_LEN];
	char custodian[QUORUM_NAME_MAX + 1];
	unsigned index, threshold, total;
	uint8_t y[QUORUM_BLOCK];
	uint8_t sig[QUORUM_SIG_LEN];
};

/* What keyd's configuration says about its quorum. */
struct quorum_ref {
	uint8_t id[QUORUM_ID_LEN];
	uint8_t vk[QUORUM_VK_LEN];
	unsigned threshold, total;
};

/* Shares presented so far (keyd holds one of these while sealed). */
struct quorum_pool {
	struct qshare s[QUORUM_MAX_SHARES];
	unsigned n;
};

/* 1 if name is 1..QUORUM_NAME_MAX of [A-Za-z0-9._-]. */
int quorum_name_valid(const char *name);
/* Lower-case hex of n bytes into out (2n + 1 bytes); and back (exactly 2n digits): 0 or -1. */
void quorum_hex(const uint8_t *p, size_t n, char *out);
int quorum_unhex(const char *s, uint8_t *out, size_t n);

/* Parse a share file strictly. 0, or -1 with err naming the problem (and the custodian,
 * when the file got that far). Checks the shape only: quorum_accept checks the rest. */
int quorum_share_parse(const char *text, size_t len, struct qshare *s, char *err, size_t errlen);
/* The share as its file; with_sig 0 gives the signed part only. Returns the length, or -1
 * when cap is too small. */
int quorum_share_format(const struct qshare *s, int with_sig, char *out, size_t cap);
/* 1 if the signature verifies under vk. */
int quorum_share_verify(const struct qshare *s, const uint8_t vk[QUORUM_VK_LEN]);

/* Make a quorum: split pin (1..QUORUM_PIN_MAX bytes) into n shares for the n custodians
 * (distinct valid names), any m of which recombine (2 <= m <= n <= QUORUM_MAX_SHARES), sign
 * them with a fresh Ed25519 key that is then thrown away. out[i] is custodian i's share
 * (index i + 1); ref receives id, verify key, m and n. 0, or -1 with err. */
int quorum_make(const char *pin, size_t pinlen, unsigned m, unsigned n,
                const char *const *custodians, struct qshare *out, struct quorum_ref *ref,
                char *err, size_t errlen);

/* Take one share file into the pool: it must parse, belong to ref's quorum (id), verify
 * (signature), agree on threshold and total, and not repeat an index already in the pool.
 * 0 (now in the pool), or -1 with msg saying which check failed, naming the custodian
 * ("share of custodian-2 is corrupted: its signature does not verify"). The pool is
 * unchanged on failure. */
int quorum_accept(const struct quorum_ref *ref, struct quorum_pool *pool, const char *text,
                  size_t len, char *msg, size_t msglen);
/* With at least ref->threshold shares in the pool: the PIN, NUL-terminated, in pin (pinsz
 * bytes, at least QUORUM_PIN_MAX + 1). 0, or -1 with msg. Wipes everything it used. */
int quorum_combine(const struct quorum_ref *ref, const struct quorum_pool *pool, char *pin,
                   size_t pinsz, char *msg, size_t msglen);
/* Forget the shares (OPENSSL_cleanse). */
void quorum_pool_wipe(struct quorum_pool *pool);

#endif
