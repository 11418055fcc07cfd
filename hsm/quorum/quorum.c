/* Quorum shares: the file format, signing, and checks before combining (quorum.h). */
#include "quorum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "shamir.h"

#define MAGIC "hsmca-quorum-share v1\n"

int quorum_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > QUORUM_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

void quorum_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* lower case only: one spelling per file */
}

int quorum_unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* The next line of text (without its "\n") as "key: value": value into val (valsz). */
static int next_field(const char **p, const char *end, const char *key, char *val, size_t valsz,
                      char *err, size_t errlen, const char *who)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t klen = strlen(key), vlen;

	if (!nl) {
		snprintf(err, errlen, "%s does not parse: \"%s:\" line missing or not ended", who,
		         key);
		return -1;
	}
	if ((size_t)(nl - *p) < klen + 2 || memcmp(*p, key, klen) != 0 || (*p)[klen] != ':' ||
	    (*p)[klen + 1] != ' ') {
		snprintf(err, errlen, "%s does not parse: expected a \"%s: \" line", who, key);
		return -1;
	}
	vlen = (size_t)(nl - *p) - klen - 2;
	if (vlen == 0 || vlen >= valsz || memchr(*p + klen + 2, 0, vlen)) {
		snprintf(err, errlen, "%s does not parse: %s: empty or too long", who, key);
		return -1;
	}
	memcpy(val, *p + klen + 2, vlen);
	val[vlen] = 0;
	*p = nl + 1;
	return 0;
}

/* A decimal 1..max with no sign, no leading zero, no spaces. */
static int small_uint(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (!*s || (s[0] == '0') || strlen(s) > 3)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int quorum_share_parse(const char *text, size_t len, struct qshare *s, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	char val[2 * QUORUM_BLOCK + 1], who[QUORUM_NAME_MAX + 32] = "share";

	memset(s, 0, sizeof(*s));
	if (len > QUORUM_FILE_MAX) {
		snprintf(err, errlen, "share does not parse: %zu bytes, at most %d", len,
		         QUORUM_FILE_MAX);
		return -1;
	}
	if (len < sizeof(MAGIC) - 1 || memcmp(text, MAGIC, sizeof(MAGIC) - 1) != 0) {
		snprintf(err, errlen,
		         "share does not parse: not an hsmca quorum share (no \"hsmca-quorum-share "
		         "v1\" first line)");
		return -1;
	}
	p += sizeof(MAGIC) - 1;
	if (next_field(&p, end, "quorum", val, sizeof(val), err, errlen, who))
		return -1;
	if (quorum_unhex(val, s->id, QUORUM_ID_LEN)) {
		snprintf(err, errlen, "share does not parse: quorum: not %d lower-case hex digits",
		         2 * QUORUM_ID_LEN);
		return -1;
	}
	if (next_field(&p, end, "custodian", val, QUORUM_NAME_MAX + 1, err, errlen, who))
		return -1;
	if (!quorum_name_valid(val)) {
		snprintf(err, errlen,
		         "share does not parse: custodian: not 1-%d of A-Z a-z 0-9 . _ -",
		         QUORUM_NAME_MAX);
		return -1;
	}
	memcpy(s->custodian, val, strlen(val) + 1);
	snprintf(who, sizeof(who), "share of %s", s->custodian);
	if (next_field(&p, end, "index", val, sizeof(val), err, errlen, who))
		return -1;
	if (small_uint(val, QUORUM_MAX_SHARES, &s->index)) {
		snprintf(err, errlen, "%s does not parse: index: not a number 1-%d", who,
		         QUORUM_MAX_SHARES);
		return -1;
	}
	if (next_field(&p, end, "threshold", val, sizeof(val), err, errlen, who) ||
	    small_uint(val, QUORUM_MAX_SHARES, &s->threshold) || s->threshold < 2) {
		snprintf(err, errlen, "%s does not parse: threshold: not a number 2-%d", who,
		         QUORUM_MAX_SHARES);
		return -1;
	}
	if (next_field(&p, end, "total", val, sizeof(val), err, errlen, who) ||
	    small_uint(val, QUORUM_MAX_SHARES, &s->total) || s->total < s->threshold ||
	    s->index > s->total) {
		snprintf(err, errlen,
		         "%s does not parse: total: not a number from the threshold to %d, or "
		         "below the index",
		         who, QUORUM_MAX_SHARES);
		return -1;
	}
	if (next_field(&p, end, "share", val, sizeof(val), err, errlen, who) ||
	    quorum_unhex(val, s->y, QUORUM_BLOCK)) {
		snprintf(err, errlen, "%s does not parse: share: not %d lower-case hex digits", who,
		         2 * QUORUM_BLOCK);
		OPENSSL_cleanse(val, sizeof(val));
		return -1;
	}
	OPENSSL_cleanse(val, sizeof(val));
	if (next_field(&p, end, "signature", val, sizeof(val), err, errlen, who) ||
	    quorum_unhex(val, s->sig, QUORUM_SIG_LEN)) {
		snprintf(err, errlen, "%s does not parse: signature: not %d lower-case hex digits",
		         who, 2 * QUORUM_SIG_LEN);
		return -1;
	}
	if (p != end) {
		snprintf(err, errlen, "%s does not parse: text after the signature line", who);
		return -1;
	}
	return 0;
}

int quorum_share_format(const struct qshare *s, int with_sig, char *out, size_t cap)
{
	char id[2 * QUORUM_ID_LEN + 1], y[2 * QUORUM_BLOCK + 1], sig[2 * QUORUM_SIG_LEN + 1];
	int n;

	quorum_hex(s->id, QUORUM_ID_LEN, id);
	quorum_hex(s->y, QUORUM_BLOCK, y);
	quorum_hex(s->sig, QUORUM_SIG_LEN, sig);
	n = snprintf(out, cap,
	             MAGIC "quorum: %s\ncustodian: %s\nindex: %u\nthreshold: %u\ntotal: %u\n"
	                   "share: %s\n%s%s%s",
	             id, s->custodian, s->index, s->threshold, s->total, y,
	             with_sig ? "signature: " : "", with_sig ? sig : "", with_sig ? "\n" : "");
	OPENSSL_cleanse(y, sizeof(y));
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int quorum_share_verify(const struct qshare *s, const uint8_t vk[QUORUM_VK_LEN])
{
	char text[QUORUM_FILE_MAX];
	int n = quorum_share_format(s, 0, text, sizeof(text)), ok = 0;
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, vk, QUORUM_VK_LEN);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (n > 0 && pk && md && EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, pk, NULL) == 1)
		ok = EVP_DigestVerify(md, s->sig, QUORUM_SIG_LEN, (const uint8_t *)text,
		                      (size_t)n) == 1;
	OPENSSL_cleanse(text, sizeof(text));
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return ok;
}

static int sign_share(struct qshare *s, EVP_PKEY *sk)
{
	char text[QUORUM_FILE_MAX];
	int n = quorum_share_format(s, 0, text, sizeof(text)), ok = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t siglen = QUORUM_SIG_LEN;

	if (n > 0 && md && EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, sk, NULL) == 1)
		ok = EVP_DigestSign(md, s->sig, &siglen, (const uint8_t *)text, (size_t)n) == 1 &&
		     siglen == QUORUM_SIG_LEN;
	OPENSSL_cleanse(text, sizeof(text));
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

int quorum_make(const char *pin, size_t pinlen, unsigned m, unsigned n,
                const char *const *custodians, struct qshare *out, struct quorum_ref *ref,
                char *err, size_t errlen)
{
	uint8_t block[QUORUM_BLOCK], *ys[QUORUM_MAX_SHARES];
	EVP_PKEY *sk = NULL;
	size_t vklen = QUORUM_VK_LEN;
	int rc = -1;

	if (pinlen == 0 || pinlen > QUORUM_PIN_MAX || memchr(pin, 0, pinlen)) {
		snprintf(err, errlen, "the PIN must be 1-%d bytes of text", QUORUM_PIN_MAX);
		return -1;
	}
	if (n < 2 || n > QUORUM_MAX_SHARES || m < 2 || m > n) {
		snprintf(err, errlen,
		         "a quorum needs 2-%d custodians and a threshold from 2 to their number "
		         "(got %u of %u)",
		         QUORUM_MAX_SHARES, m, n);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!quorum_name_valid(custodians[i])) {
			snprintf(err, errlen,
			         "custodian \"%s\": names are 1-%d of A-Z a-z 0-9 . _ -",
			         custodians[i], QUORUM_NAME_MAX);
			return -1;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcmp(custodians[i], custodians[j]) == 0) {
				snprintf(err, errlen, "custodian %s is named twice", custodians[i]);
				return -1;
			}
	}
	memset(ref, 0, sizeof(*ref));
	memset(out, 0, n * sizeof(*out));
	memset(block, 0, sizeof(block));
	block[0] = (uint8_t)pinlen;
	memcpy(block + 1, pin, pinlen);
	for (unsigned i = 0; i < n; i++)
		ys[i] = out[i].y;
	if (RAND_bytes(ref->id, QUORUM_ID_LEN) != 1 ||
	    shamir_split(block, QUORUM_BLOCK, m, n, ys, NULL) != 0) {
		snprintf(err, errlen, "no randomness for the quorum");
		goto out;
	}
	sk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!sk || EVP_PKEY_get_raw_public_key(sk, ref->vk, &vklen) != 1 ||
	    vklen != QUORUM_VK_LEN) {
		snprintf(err, errlen, "cannot make the quorum's signing key");
		goto out;
	}
	ref->threshold = m;
	ref->total = n;
	for (unsigned i = 0; i < n; i++) {
		memcpy(out[i].id, ref->id, QUORUM_ID_LEN);
		snprintf(out[i].custodian, sizeof(out[i].custodian), "%s", custodians[i]);
		out[i].index = i + 1;
		out[i].threshold = m;
		out[i].total = n;
		if (sign_share(&out[i], sk) != 0) {
			snprintf(err, errlen, "cannot sign the share of %s", custodians[i]);
			goto out;
		}
	}
	rc = 0;
out:
	OPENSSL_cleanse(block, sizeof(block));
	EVP_PKEY_free(sk); /* the signing key is never kept: nobody can sign a share later */
	if (rc)
		OPENSSL_cleanse(out, n * sizeof(*out));
	return rc;
}

int quorum_accept(const struct quorum_ref *ref, struct quorum_pool *pool, const char *text,
                  size_t len, char *msg, size_t msglen)
{
	struct qshare s;
	char a[2 * QUORUM_ID_LEN + 1], b[2 * QUORUM_ID_LEN + 1];
	int rc = -1;

	if (quorum_share_parse(text, len, &s, msg, msglen) != 0)
		goto out;
	if (CRYPTO_memcmp(s.id, ref->id, QUORUM_ID_LEN) != 0) {
		quorum_hex(s.id, QUORUM_ID_LEN, a);
		quorum_hex(ref->id, QUORUM_ID_LEN, b);
		snprintf(msg, msglen,
		         "share of %s belongs to another quorum (%s), not this keyd's (%s)",
		         s.custodian, a, b);
		goto out;
	}
	if (!quorum_share_verify(&s, ref->vk)) {
		snprintf(msg, msglen,
		         "share of %s is corrupted: its signature does not verify under this "
		         "quorum's key",
		         s.custodian);
		goto out;
	}
	if (s.threshold != ref->threshold || s.total != ref->total) {
		snprintf(msg, msglen, "share of %s is %u of %u, but this keyd's quorum is %u of %u",
		         s.custodian, s.threshold, s.total, ref->threshold, ref->total);
		goto out;
	}
	for (unsigned i = 0; i < pool->n; i++)
		if (pool->s[i].index == s.index) {
			snprintf(msg, msglen, "share %u (of %s) has been presented already",
			         s.index, s.custodian);
			goto out;
		}
	if (pool->n >= QUORUM_MAX_SHARES) {
		snprintf(msg, msglen, "share of %s: no room for more shares", s.custodian);
		goto out;
	}
	pool->s[pool->n++] = s;
	rc = 0;
out:
	OPENSSL_cleanse(&s, sizeof(s));
	return rc;
}

int quorum_combine(const struct quorum_ref *ref, const struct quorum_pool *pool, char *pin,
                   size_t pinsz, char *msg, size_t msglen)
{
	uint8_t block[QUORUM_BLOCK], xs[QUORUM_MAX_SHARES];
	const uint8_t *ys[QUORUM_MAX_SHARES];
	unsigned k = pool->n;
	uint8_t pad = 0;
	int rc = -1;

	if (k < ref->threshold) {
		snprintf(msg, msglen, "%u of %u shares presented", k, ref->threshold);
		return -1;
	}
	if (pinsz < QUORUM_PIN_MAX + 1) {
		snprintf(msg, msglen, "no room for the PIN");
		return -1;
	}
	for (unsigned i = 0; i < k; i++) {
		xs[i] = (uint8_t)pool->s[i].index;
		ys[i] = pool->s[i].y;
	}
	if (shamir_combine(xs, ys, k, QUORUM_BLOCK, block) != 0) {
		snprintf(msg, msglen, "the shares do not combine (repeated index)");
		goto out;
	}
	/* Shape: length 1..QUORUM_PIN_MAX, no NUL inside, zeros after (checked without
	 * branching on the PIN's bytes beyond its length). */
	for (size_t i = 1; i < QUORUM_BLOCK; i++) {
		uint8_t in = (uint8_t)(0u - (unsigned)(i <= block[0])); /* 0xff inside the PIN */
		pad |= (uint8_t)(~in & block[i]);
	}
	if (block[0] == 0 || block[0] > QUORUM_PIN_MAX || pad != 0 ||
	    memchr(block + 1, 0, block[0])) {
		snprintf(msg, msglen, "the shares combine to no valid secret");
		goto out;
	}
	memcpy(pin, block + 1, block[0]);
	pin[block[0]] = 0;
	rc = 0;
out:
	OPENSSL_cleanse(block, sizeof(block));
	return rc;
}

void quorum_pool_wipe(struct quorum_pool *pool)
{
	OPENSSL_cleanse(pool, sizeof(*pool));
}
