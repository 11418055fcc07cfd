/* Signed checkpoints over the audit chain's head (invariant 5 of docs/architecture.md): at a
 * configured interval the head's seq and hash are signed through keyd and stored, so a rewrite of
 * the whole chain by someone without the key is detected, and a cut tail is limited to one
 * interval. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "cad_internal.h"
#include "der.h"
#include "log.h"

/*
 * What is signed: the DER of
 *   Checkpoint ::= SEQUENCE {
 *     type  OBJECT IDENTIFIER,  -- 2.25.144300304881077450529039613241388137057.1
 *     seq   INTEGER,            -- the audit log's head entry
 *     head  OCTET STRING }      -- its hash, 32 bytes
 * which keyd recognises as kind audit-checkpoint (docs/keyd-protocol.md), so the checkpoint
 * key can be granted for that alone.
 */
static const uint8_t checkpoint_oid[] = {0x69, 0x81, 0xd9, 0x8f, 0x9d, 0x94, 0xc3,
                                         0xd4, 0xf2, 0xad, 0xf5, 0x9c, 0x90, 0xd7,
                                         0xe1, 0xe8, 0xe9, 0xed, 0xf4, 0x61, 0x01};
#define DER_MAX CAD_CHECKPOINT_DER_MAX

size_t cad_checkpoint_der(int64_t seq, const uint8_t hash[32], uint8_t *out)
{
	uint8_t body[DER_MAX];
	struct der b, d;

	der_init(&b, body, sizeof(body));
	der_tlv(&b, 0x06, checkpoint_oid, sizeof(checkpoint_oid));
	der_int64(&b, seq);
	der_tlv(&b, 0x04, hash, 32);
	der_init(&d, out, DER_MAX);
	der_hdr(&d, 0x30, b.len);
	der_raw(&d, body, b.len);
	return b.overflow || d.overflow ? 0 : d.len;
}

/* Checkpoints made before the structure above signed a fixed label, the seq (u64
 * big-endian) and the head hash; they still verify. */
static const char label[] = "hsmca-audit-checkpoint-v1";
#define MSG_LEN (sizeof(label) - 1 + 8 + 32)

static void message(int64_t seq, const uint8_t hash[32], uint8_t out[MSG_LEN])
{
	memcpy(out, label, sizeof(label) - 1);
	for (int i = 0; i < 8; i++)
		out[sizeof(label) - 1 + i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
	memcpy(out + sizeof(label) - 1 + 8, hash, 32);
}

/* The audit key with a reference of the caller's own (workers share it). */
static EVP_PKEY *audit_key(struct cad *cad, char *err, size_t errsz)
{
	EVP_PKEY *key;

	pthread_mutex_lock(&cad->lock);
	if (!cad->cfg->audit_key)
		cad->cfg->audit_key = cad_load_key(cad->cfg->audit_key_uri, err, errsz);
	key = cad->cfg->audit_key;
	if (key && EVP_PKEY_up_ref(key) != 1)
		key = NULL;
	pthread_mutex_unlock(&cad->lock);
	return key;
}

int cad_checkpoint_now(struct cad *cad, char *err, size_t errsz)
{
	uint8_t hash[32], msg[DER_MAX], sig[1024];
	size_t sig_len = sizeof(sig), msg_len;
	struct db_err derr = {0};
	EVP_MD_CTX *m = NULL;
	EVP_PKEY *key = NULL;
	int64_t seq;
	int rc = -1;

	if (!cad->cfg->audit_key_uri[0])
		return 0;
	if (!cad->db && db_connect(cad->cfg->database, &cad->db, &derr) != DB_OK) {
		cad->db = NULL;
		snprintf(err, errsz, "%s", derr.msg);
		return -1;
	}
	if (db_audit_head(cad->db, &seq, hash, &derr) != DB_OK) {
		snprintf(err, errsz, "%s", derr.msg);
		return -1;
	}
	if (seq == 0 || seq == cad->last_checkpoint_seq)
		return 0;
	if (!(key = audit_key(cad, err, errsz)))
		return -1;
	msg_len = cad_checkpoint_der(seq, hash, msg);
	m = EVP_MD_CTX_new();
	if (!m || !msg_len ||
	    EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(m, sig, &sig_len, msg, msg_len) != 1) {
		char buf[256];
		ERR_error_string_n(ERR_peek_error(), buf, sizeof(buf));
		snprintf(err, errsz, "signing the audit checkpoint at %lld through keyd: %s",
		         (long long)seq, buf);
		ERR_clear_error();
		/* keyd may have restarted: load the key afresh next time. */
		pthread_mutex_lock(&cad->lock);
		if (cad->cfg->audit_key == key) {
			EVP_PKEY_free(cad->cfg->audit_key);
			cad->cfg->audit_key = NULL;
		}
		pthread_mutex_unlock(&cad->lock);
		goto out;
	}
	if (db_audit_checkpoint_add(cad->db, seq, hash, sig, sig_len, cad->cfg->audit_key_label,
	                            &derr) != DB_OK) {
		snprintf(err, errsz, "%s", derr.msg);
		goto out;
	}
	cad->last_checkpoint_seq = seq;
	log_info("audit checkpoint at entry %lld signed with %s", (long long)seq,
	         cad->cfg->audit_key_uri);
	rc = 0;
out:
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(key);
	return rc;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	char err[600];

	(void)fd;
	(void)what;
	if (cad_checkpoint_now(arg, err, sizeof(err)) != 0)
		log_warn("audit checkpoint not made (will retry): %s", err);
}

int cad_checkpoint_start(struct cad *cad)
{
	struct timeval tv = {cad->cfg->audit_checkpoint_seconds, 0};

	if (!cad->cfg->audit_key_uri[0])
		return 0;
	cad->checkpoint_timer = event_new(cad->base, -1, EV_PERSIST, on_timer, cad);
	return cad->checkpoint_timer && event_add(cad->checkpoint_timer, &tv) == 0 ? 0 : -1;
}

static int verify_sig(EVP_PKEY *key, const uint8_t *sig, size_t sig_len, const uint8_t *msg,
                      size_t msg_len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, key, NULL) == 1 &&
	         EVP_DigestVerify(m, sig, sig_len, msg, msg_len) == 1;

	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return ok;
}

enum db_status cad_checkpoint_verify(struct cad *cad, struct db *db, int64_t *valid,
                                     int64_t *invalid, int64_t *unchecked, int64_t *first_bad,
                                     struct db_err *err)
{
	struct db_audit_checkpoint *rows = NULL;
	char kerr[600];
	EVP_PKEY *key = NULL;
	size_t n = 0;
	enum db_status rc;

	*valid = *invalid = *unchecked = *first_bad = 0;
	rc = db_audit_checkpoints_list(db, &rows, &n, err);
	if (rc != DB_OK)
		return rc;
	if (cad->cfg->audit_key_uri[0])
		key = audit_key(cad, kerr, sizeof(kerr));
	for (size_t i = 0; i < n; i++) {
		uint8_t msg[DER_MAX], old[MSG_LEN];
		size_t msg_len;
		int ok;

		/* Only the configured key can be checked here; others are counted as such. */
		if (!key || strcmp(rows[i].key_label, cad->cfg->audit_key_label)) {
			(*unchecked)++;
			continue;
		}
		msg_len = cad_checkpoint_der(rows[i].seq, rows[i].head_hash, msg);
		message(rows[i].seq, rows[i].head_hash, old);
		ok = (msg_len &&
		      verify_sig(key, rows[i].signature, rows[i].signature_len, msg, msg_len)) ||
		     verify_sig(key, rows[i].signature, rows[i].signature_len, old, sizeof(old));
		if (ok) {
			(*valid)++;
		} else {
			(*invalid)++;
			if (!*first_bad)
				*first_bad = rows[i].seq;
		}
	}
	db_audit_checkpoints_free(rows, n);
	EVP_PKEY_free(key);
	return DB_OK;
}
