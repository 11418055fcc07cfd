/* Share files under a custodian's passphrase: scrypt and AES-256-GCM (quorum_box.h). */
#include "quorum_box.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "quorum.h"

#define MAGIC_V1 "hsmca-quorum-share-encrypted v1\n"
#define MAGIC "hsmca-quorum-share-encrypted v2\n"
#define MAGIC_LEN (sizeof(MAGIC) - 1) /* both versions' */
#define KDF "scrypt-n32768-r8-p1"
#define SALT_LEN 16
#define NONCE_LEN 12
#define TAG_LEN 16
#define CHECK_LEN 16
#define CHECK_LABEL "hsmca-quorum-share passphrase check"

/* 1 or 2; 0: not an envelope. */
static int version_of(const char *text, size_t len)
{
	if (len < MAGIC_LEN)
		return 0;
	return !memcmp(text, MAGIC, MAGIC_LEN) ? 2 : !memcmp(text, MAGIC_V1, MAGIC_LEN) ? 1 : 0;
}

int quorum_box_is(const char *text, size_t len)
{
	return version_of(text, len) != 0;
}

/* scrypt: the AES key in key[0..31]; v2 also derives key[32..63], for the check value. */
static int derive(const char *pass, const uint8_t *salt, uint8_t *key, size_t keylen)
{
	/* 32 MiB and about a tenth of a second: dear for someone guessing, once for a custodian. */
	return EVP_PBE_scrypt(pass, strlen(pass), salt, SALT_LEN, 32768, 8, 1, 64u << 20, key,
	                      keylen) == 1
	           ? 0
	           : -1;
}

/* v2's check value: HMAC-SHA256 under the second half of the derived key, cut to CHECK_LEN.
 * It tells a wrong passphrase from a changed file; it gives a guesser nothing the GCM tag
 * does not already (either costs one scrypt per guess). */
static int check_value(const uint8_t key[64], uint8_t out[CHECK_LEN])
{
	uint8_t mac[32];
	unsigned int maclen = 0;
	int ok = HMAC(EVP_sha256(), key + 32, 32, (const uint8_t *)CHECK_LABEL,
	              sizeof(CHECK_LABEL) - 1, mac, &maclen) != NULL &&
	         maclen == sizeof(mac);

	memcpy(out, mac, CHECK_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok ? 0 : -1;
}

/* AES-256-GCM one way or the other; 0 or -1 (for decryption: the tag did not verify). */
static int gcm(int enc, const uint8_t key[32], const uint8_t *nonce, const char *aad, size_t aadlen,
               const uint8_t *in, size_t inlen, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
	     EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1 &&
	     EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)aad, (int)aadlen) == 1 &&
	     EVP_CipherUpdate(c, out, &n, in, (int)inlen) == 1 && (size_t)n == inlen &&
	     (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
	     EVP_CipherFinal_ex(c, out + n, &n) == 1 && n == 0 &&
	     (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

int quorum_box_seal(const char *share, size_t len, const char *custodian, const char *pass,
                    char *out, size_t cap, char *err, size_t errlen)
{
	uint8_t salt[SALT_LEN], nonce[NONCE_LEN], key[64], ct[QUORUM_FILE_MAX + TAG_LEN],
	    check[CHECK_LEN];
	char hs[2 * SALT_LEN + 1], hn[2 * NONCE_LEN + 1], hc[2 * CHECK_LEN + 1];
	static char hd[2 * (QUORUM_FILE_MAX + TAG_LEN) + 1];
	int head, n, rc = -1;

	if (len == 0 || len > QUORUM_FILE_MAX || !quorum_name_valid(custodian)) {
		snprintf(err, errlen, "not a share to encrypt");
		return -1;
	}
	if (strlen(pass) < QUORUM_PASS_MIN || strlen(pass) > QUORUM_PASS_MAX) {
		snprintf(err, errlen, "a passphrase is %d-%d bytes", QUORUM_PASS_MIN,
		         QUORUM_PASS_MAX);
		return -1;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1 ||
	    derive(pass, salt, key, sizeof(key)) != 0 || check_value(key, check) != 0) {
		snprintf(err, errlen, "no randomness or no memory for scrypt");
		goto out;
	}
	quorum_hex(salt, SALT_LEN, hs);
	quorum_hex(nonce, NONCE_LEN, hn);
	quorum_hex(check, CHECK_LEN, hc);
	head = snprintf(out, cap,
	                MAGIC "custodian: %s\nkdf: " KDF "\nsalt: %s\nnonce: %s\ncheck: %s\n",
	                custodian, hs, hn, hc);
	if (head < 0 || (size_t)head >= cap ||
	    gcm(1, key, nonce, out, (size_t)head, (const uint8_t *)share, len, ct, ct + len) != 0) {
		snprintf(err, errlen, "cannot encrypt the share");
		goto out;
	}
	quorum_hex(ct, len + TAG_LEN, hd);
	n = snprintf(out + head, cap - (size_t)head, "data: %s\n", hd);
	if (n < 0 || (size_t)n >= cap - (size_t)head) {
		snprintf(err, errlen, "no room for the encrypted share");
		goto out;
	}
	rc = head + n;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(ct, sizeof(ct));
	return rc;
}

/* "key: value\n" at *p, value into val (valsz), *p past it. */
static int field(const char **p, const char *end, const char *key, char *val, size_t valsz)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t klen = strlen(key), vlen;

	if (!nl || (size_t)(nl - *p) < klen + 2 || memcmp(*p, key, klen) != 0 ||
	    (*p)[klen] != ':' || (*p)[klen + 1] != ' ')
		return -1;
	vlen = (size_t)(nl - *p) - klen - 2;
	if (vlen == 0 || vlen >= valsz || memchr(*p + klen + 2, 0, vlen))
		return -1;
	memcpy(val, *p + klen + 2, vlen);
	val[vlen] = 0;
	*p = nl + 1;
	return 0;
}

int quorum_box_parse(const char *text, size_t len, struct qbox *b, char *err, size_t errlen)
{
	const char *p = text, *end = text + len, *data;
	static _Thread_local char val[2 * (QUORUM_FILE_MAX + TAG_LEN) + 1];
	const char *who = b->custodian;

	memset(b, 0, sizeof(*b));
	if (len > QUORUM_BOX_MAX || !(b->version = version_of(text, len))) {
		snprintf(
		    err, errlen,
		    "encrypted share does not parse: not an hsmca encrypted share of at most %d "
		    "bytes",
		    QUORUM_BOX_MAX);
		return -1;
	}
	p += MAGIC_LEN;
	if (field(&p, end, "custodian", b->custodian, sizeof(b->custodian)) ||
	    !quorum_name_valid(b->custodian)) {
		snprintf(err, errlen, "encrypted share does not parse: custodian");
		return -1;
	}
	if (field(&p, end, "kdf", val, sizeof(val)) || strcmp(val, KDF) != 0) {
		snprintf(err, errlen, "encrypted share of %s does not parse: kdf is not " KDF, who);
		return -1;
	}
	if (field(&p, end, "salt", val, sizeof(val)) || quorum_unhex(val, b->salt, SALT_LEN) ||
	    field(&p, end, "nonce", val, sizeof(val)) || quorum_unhex(val, b->nonce, NONCE_LEN)) {
		snprintf(err, errlen, "encrypted share of %s does not parse: salt or nonce", who);
		return -1;
	}
	if (b->version == 2 &&
	    (field(&p, end, "check", val, sizeof(val)) || quorum_unhex(val, b->check, CHECK_LEN))) {
		snprintf(err, errlen, "encrypted share of %s does not parse: check", who);
		return -1;
	}
	data = p;
	if (field(&p, end, "data", val, sizeof(val)) || p != end || strlen(val) % 2 ||
	    strlen(val) / 2 <= TAG_LEN || strlen(val) / 2 - TAG_LEN > QUORUM_FILE_MAX ||
	    quorum_unhex(val, b->ct, strlen(val) / 2)) {
		snprintf(err, errlen, "encrypted share of %s does not parse: data", who);
		return -1;
	}
	b->ctlen = strlen(val) / 2 - TAG_LEN;
	b->aadlen = (size_t)(data - text);
	return 0;
}

int quorum_box_open(const char *text, size_t len, const char *pass, char *out, size_t cap,
                    char *err, size_t errlen)
{
	static _Thread_local struct qbox b;
	uint8_t key[64], check[CHECK_LEN];
	int rc = -1;

	if (quorum_box_parse(text, len, &b, err, errlen) != 0)
		return -1;
	if (b.ctlen > cap) {
		snprintf(err, errlen, "share of %s: no room for it", b.custodian);
		goto out;
	}
	if (derive(pass, b.salt, key, b.version == 2 ? 64 : 32) != 0 ||
	    (b.version == 2 && check_value(key, check) != 0)) {
		snprintf(err, errlen, "no memory for scrypt");
		goto out;
	}
	if (b.version == 2 && CRYPTO_memcmp(check, b.check, CHECK_LEN) != 0) {
		snprintf(err, errlen, "share of %s: wrong passphrase", b.custodian);
		goto out;
	}
	if (gcm(0, key, b.nonce, text, b.aadlen, b.ct, b.ctlen, (uint8_t *)out, b.ct + b.ctlen) !=
	    0) {
		OPENSSL_cleanse(out, b.ctlen);
		if (b.version == 2)
			snprintf(
			    err, errlen,
			    "share of %s: the file was changed or is corrupted (the passphrase "
			    "is right, the data does not authenticate)",
			    b.custodian);
		else
			snprintf(err, errlen,
			         "share of %s: wrong passphrase, or the file is corrupted",
			         b.custodian);
		goto out;
	}
	rc = (int)b.ctlen;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(check, sizeof(check));
	OPENSSL_cleanse(&b, sizeof(b));
	return rc;
}
