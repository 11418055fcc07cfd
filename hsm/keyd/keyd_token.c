/*
 * The token. libp11 loads the module, finds the token by label and logs in;
 * the signing path then uses the module's own function list with one session
 * per signer thread (docs/platform-facts.md: explicit per-thread sessions scale and keep
 * clear of libp11's session pool), and key generation uses C_GenerateKeyPair
 * directly because libp11 0.4.12 cannot make EC keys.
 */
/* libp11.h declares RSA_METHOD and EC_KEY_METHOD, deprecated in OpenSSL 3. */
#undef OPENSSL_NO_DEPRECATED

#include "keyd_token.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libp11.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "der.h"
#include "keyd_harden.h"
#include "log.h"

#define MAX_KEYS 1024

struct tkey {
	struct keyd_key_copy pub;
	CK_OBJECT_HANDLE priv;
	int ambiguous; /* two private keys share the label: refuse to guess */
};

struct keyd_token {
	const struct keyd_config *cfg;
	char *pin; /* KEYD_PIN_MAX bytes of locked memory (keyd_secret_alloc), for re-login */
	int nsessions;

	/* Held shared by every operation and exclusively by (re)initialisation
	 * and by changes to the key table. */
	pthread_rwlock_t lock;
	PKCS11_CTX *p11;
	PKCS11_SLOT *slots;
	unsigned nslots;
	void *dl;
	CK_FUNCTION_LIST_PTR fl;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE *sessions; /* nsessions signer sessions */
	CK_SESSION_HANDLE control;   /* key table, generate and health checks */
	pthread_mutex_t control_lock;
	struct tkey *keys;
	size_t nkeys;
	/* What the token says it can do, asked at bring-up (docs/hsm-compatibility.md):
	 * nmechs 0 means it did not say, and nothing is refused on that account. */
	CK_MECHANISM_TYPE *mechs;
	CK_MECHANISM_INFO *minfo;
	CK_ULONG nmechs;
	/* The same for status (keyd_token_caps), copied at bring-up and cleared at teardown
	 * under its own lock, so that status never waits for a recovery. */
	pthread_mutex_t caps_lock;
	struct keyd_token_caps caps;

	atomic_int online;
	atomic_int pin_refused; /* recovery's login failed: offline until restarted */
	atomic_int sealed; /* activation: quorum, before the quorum unsealed it or after a loss */
	atomic_uint reinits;

	/* Recovery thread */
	pthread_t recovery;
	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	int fault, stopping, recovery_started;
};

static const char *ckr_name(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return "CKR_OK";
	case CKR_GENERAL_ERROR:
		return "CKR_GENERAL_ERROR";
	case CKR_DEVICE_ERROR:
		return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_REMOVED:
		return "CKR_DEVICE_REMOVED";
	case CKR_DEVICE_MEMORY:
		return "CKR_DEVICE_MEMORY";
	case CKR_SESSION_HANDLE_INVALID:
		return "CKR_SESSION_HANDLE_INVALID";
	case CKR_SESSION_CLOSED:
		return "CKR_SESSION_CLOSED";
	case CKR_TOKEN_NOT_PRESENT:
		return "CKR_TOKEN_NOT_PRESENT";
	case CKR_TOKEN_NOT_RECOGNIZED:
		return "CKR_TOKEN_NOT_RECOGNIZED";
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return "CKR_CRYPTOKI_NOT_INITIALIZED";
	case CKR_USER_NOT_LOGGED_IN:
		return "CKR_USER_NOT_LOGGED_IN";
	case CKR_KEY_HANDLE_INVALID:
		return "CKR_KEY_HANDLE_INVALID";
	case CKR_OBJECT_HANDLE_INVALID:
		return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_MECHANISM_INVALID:
		return "CKR_MECHANISM_INVALID";
	case CKR_MECHANISM_PARAM_INVALID:
		return "CKR_MECHANISM_PARAM_INVALID";
	case CKR_DATA_LEN_RANGE:
		return "CKR_DATA_LEN_RANGE";
	case CKR_KEY_TYPE_INCONSISTENT:
		return "CKR_KEY_TYPE_INCONSISTENT";
	case CKR_PIN_INCORRECT:
		return "CKR_PIN_INCORRECT";
	case CKR_PIN_LOCKED:
		return "CKR_PIN_LOCKED";
	case CKR_TEMPLATE_INCONSISTENT:
		return "CKR_TEMPLATE_INCONSISTENT";
	case CKR_ATTRIBUTE_VALUE_INVALID:
		return "CKR_ATTRIBUTE_VALUE_INVALID";
	}
	return "CKR_other";
}

/* Failures that mean the module, token or session is gone, not this request. */
static int rv_is_device_failure(CK_RV rv)
{
	switch (rv) {
	case CKR_GENERAL_ERROR:
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_USER_NOT_LOGGED_IN:
	/* A handle from keyd's key table that the module no longer knows: the token's objects
	 * changed under keyd (re-initialised by another program, as softhsm2-util
	 * --init-token does, or a key deleted). SoftHSM then fails every signature with
	 * CKR_OBJECT_HANDLE_INVALID while its session still looks logged in, so only a fresh
	 * login and key table bring keyd back in step. */
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
		return 1;
	}
	return 0;
}

static int rv_is_handle_gone(CK_RV rv)
{
	return rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

static void token_fault(struct keyd_token *t, const char *what, CK_RV rv)
{
	int was = atomic_exchange(&t->online, 0);

	if (was)
		log_error("token offline: %s failed with %s (0x%lx)%s; recovering", what,
		          ckr_name(rv), (unsigned long)rv,
		          rv_is_handle_gone(rv) ? " (the token's objects changed under keyd: "
		                                  "re-initialised, or a key deleted by another "
		                                  "program)"
		                                : "");
	pthread_mutex_lock(&t->rlock);
	t->fault = 1;
	pthread_cond_signal(&t->rcond);
	pthread_mutex_unlock(&t->rlock);
}

/* ---- public keys from token attributes ---- */

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static int spki_from_params(const char *type, OSSL_PARAM_BLD *bld, struct keyd_key_copy *k)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, "provider=default");
	EVP_PKEY *pk = NULL;
	unsigned char *p;
	int len, rc = -1;

	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	len = i2d_PUBKEY(pk, NULL);
	if (len <= 0 || (size_t)len > sizeof(k->spki))
		goto out;
	p = k->spki;
	i2d_PUBKEY(pk, &p);
	k->spki_len = (size_t)len;
	k->bits = (uint16_t)EVP_PKEY_get_bits(pk);
	rc = 0;
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return rc;
}

static int spki_rsa(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
                    struct keyd_key_copy *k)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
	int rc = -1;

	if (bld && bn && be && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		rc = spki_from_params("RSA", bld, k);
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(bld);
	return rc;
}

static int spki_ec(const uint8_t *params, size_t plen, const uint8_t *point, size_t ptlen,
                   struct keyd_key_copy *k)
{
	OSSL_PARAM_BLD *bld;
	const char *group;
	size_t raw; /* uncompressed point length for the curve */
	int rc = -1;

	if (plen == sizeof(oid_p256) && !memcmp(params, oid_p256, plen)) {
		group = "P-256";
		raw = 65;
	} else if (plen == sizeof(oid_p384) && !memcmp(params, oid_p384, plen)) {
		group = "P-384";
		raw = 97;
	} else {
		return -1;
	}
	/* CKA_EC_POINT is a DER OCTET STRING around the point (some modules
	 * give the bare point; the length tells them apart). */
	if (ptlen == raw + 2 && point[0] == 0x04 && point[1] == raw) {
		point += 2;
		ptlen -= 2;
	}
	if (ptlen != raw || point[0] != 0x04)
		return -1;
	bld = OSSL_PARAM_BLD_new();
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, ptlen))
		rc = spki_from_params("EC", bld, k);
	OSSL_PARAM_BLD_free(bld);
	return rc;
}

/* Read one variable-length attribute into buf. */
static CK_RV get_attr(struct keyd_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                      CK_ATTRIBUTE_TYPE type, void *buf, size_t *len)
{
	CK_ATTRIBUTE a = {type, buf, *len};
	CK_RV rv = t->fl->C_GetAttributeValue(s, o, &a, 1);

	if (rv == CKR_OK)
		*len = a.ulValueLen;
	return rv;
}

static CK_RV find_objects(struct keyd_token *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
	CK_RV rv = t->fl->C_FindObjectsInit(s, tmpl, n);

	*count = 0;
	if (rv != CKR_OK)
		return rv;
	rv = t->fl->C_FindObjects(s, out, max, count);
	t->fl->C_FindObjectsFinal(s);
	return rv;
}

/* Fill k from the private key object and its public twin. Returns CKR_OK, or
 * a failure; a key we cannot describe gets k->spki_len == 0. */
static CK_RV describe_key(struct keyd_token *t, CK_OBJECT_HANDLE priv, struct keyd_key_copy *k)
{
	CK_SESSION_HANDLE s = t->control;
	CK_OBJECT_CLASS pubclass = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt;
	CK_BBOOL b[5];
	CK_ATTRIBUTE a[] = {
	    {CKA_KEY_TYPE, &kt, sizeof(kt)},   {CKA_SENSITIVE, &b[0], 1},
	    {CKA_EXTRACTABLE, &b[1], 1},       {CKA_ALWAYS_SENSITIVE, &b[2], 1},
	    {CKA_NEVER_EXTRACTABLE, &b[3], 1}, {CKA_LOCAL, &b[4], 1},
	};
	uint8_t id[256], v1[1024], v2[1024];
	size_t idlen = sizeof(id), l1, l2;
	CK_OBJECT_HANDLE pub;
	CK_ULONG npub = 0;
	CK_RV rv;

	rv = t->fl->C_GetAttributeValue(s, priv, a, 6);
	if (rv != CKR_OK)
		return rv;
	k->flags = (b[0] ? KEYD_KF_SENSITIVE : 0) | (b[1] ? KEYD_KF_EXTRACTABLE : 0) |
	           (b[2] ? KEYD_KF_ALWAYS_SENSITIVE : 0) | (b[3] ? KEYD_KF_NEVER_EXTRACTABLE : 0) |
	           (b[4] ? KEYD_KF_LOCAL : 0);
	if (get_attr(t, s, priv, CKA_ID, id, &idlen) != CKR_OK)
		idlen = 0;
	{
		CK_ATTRIBUTE tmpl[] = {
		    {CKA_CLASS, &pubclass, sizeof(pubclass)},
		    {CKA_KEY_TYPE, &kt, sizeof(kt)},
		    {idlen ? CKA_ID : CKA_LABEL, idlen ? (void *)id : (void *)k->label,
		     idlen ? idlen : strlen(k->label)},
		};
		rv = find_objects(t, s, tmpl, 3, &pub, 1, &npub);
		if (rv != CKR_OK)
			return rv;
	}
	if (kt == CKK_RSA) {
		CK_OBJECT_HANDLE o = npub ? pub : priv; /* RSA private keys carry n and e */
		k->type = KEYD_KEY_RSA;
		l1 = sizeof(v1);
		l2 = sizeof(v2);
		rv = get_attr(t, s, o, CKA_MODULUS, v1, &l1);
		if (rv == CKR_OK)
			rv = get_attr(t, s, o, CKA_PUBLIC_EXPONENT, v2, &l2);
		if (rv == CKR_OK && spki_rsa(v1, l1, v2, l2, k) != 0)
			k->spki_len = 0;
	} else if (kt == CKK_EC) {
		k->type = KEYD_KEY_EC;
		if (!npub)
			return CKR_OK; /* no public half on the token: cannot serve it */
		l1 = sizeof(v1);
		l2 = sizeof(v2);
		rv = get_attr(t, s, pub, CKA_EC_PARAMS, v1, &l1);
		if (rv == CKR_OK)
			rv = get_attr(t, s, pub, CKA_EC_POINT, v2, &l2);
		if (rv == CKR_OK && spki_ec(v1, l1, v2, l2, k) != 0)
			k->spki_len = 0;
	}
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
		rv = CKR_OK;
	return rv;
}

static int key_index(struct keyd_token *t, const char *label)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (strcmp(t->keys[i].pub.label, label) == 0)
			return (int)i;
	return -1;
}

/* Build the key table from the token's private keys (control session). */
static CK_RV load_keys(struct keyd_token *t)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE *h = calloc(MAX_KEYS, sizeof(*h));
	CK_ULONG n = 0;
	CK_RV rv;

	if (!h)
		return CKR_HOST_MEMORY;
	free(t->keys);
	t->keys = calloc(MAX_KEYS, sizeof(*t->keys));
	t->nkeys = 0;
	if (!t->keys) {
		free(h);
		return CKR_HOST_MEMORY;
	}
	rv = find_objects(t, t->control, tmpl, 1, h, MAX_KEYS, &n);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
		struct tkey *k = &t->keys[t->nkeys];
		char label[KEYD_LABEL_MAX + 2];
		size_t len = sizeof(label) - 1;
		int dup;

		memset(k, 0, sizeof(*k));
		rv = get_attr(t, t->control, h[i], CKA_LABEL, label, &len);
		if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
			rv = CKR_OK;
			continue;
		}
		if (rv != CKR_OK)
			break;
		label[len] = 0;
		if (!keyd_label_valid(label)) {
			log_warn("token key with label \"%s\" ignored: labels are 1-%d of "
			         "A-Z a-z 0-9 . _ -",
			         label, KEYD_LABEL_MAX);
			continue;
		}
		dup = key_index(t, label);
		if (dup >= 0) {
			log_warn("two private keys carry the label \"%s\": refusing to use it",
			         label);
			t->keys[dup].ambiguous = 1;
			continue;
		}
		memcpy(k->pub.label, label, len + 1);
		k->priv = h[i];
		rv = describe_key(t, h[i], &k->pub);
		if (rv != CKR_OK)
			break;
		if (k->pub.spki_len == 0) {
			log_warn("token key \"%s\" ignored: no usable public key", label);
			continue;
		}
		t->nkeys++;
	}
	free(h);
	return rv;
}

/* ---- module lifecycle ---- */

static void teardown(struct keyd_token *t)
{
	if (t->fl) {
		for (int i = 0; i < t->nsessions; i++)
			if (t->sessions[i] != CK_INVALID_HANDLE)
				t->fl->C_CloseSession(t->sessions[i]);
		if (t->control != CK_INVALID_HANDLE)
			t->fl->C_CloseSession(t->control);
	}
	for (int i = 0; i < t->nsessions; i++)
		t->sessions[i] = CK_INVALID_HANDLE;
	t->control = CK_INVALID_HANDLE;
	t->fl = NULL;
	if (t->p11) {
		if (t->slots)
			PKCS11_release_all_slots(t->p11, t->slots, t->nslots);
		PKCS11_CTX_unload(t->p11);
		PKCS11_CTX_free(t->p11);
	}
	t->slots = NULL;
	t->nslots = 0;
	t->p11 = NULL;
	if (t->dl)
		dlclose(t->dl);
	t->dl = NULL;
	free(t->keys);
	t->keys = NULL;
	t->nkeys = 0;
	free(t->mechs);
	free(t->minfo);
	t->mechs = NULL;
	t->minfo = NULL;
	t->nmechs = 0;
	pthread_mutex_lock(&t->caps_lock);
	memset(&t->caps, 0, sizeof(t->caps));
	pthread_mutex_unlock(&t->caps_lock);
}

/* ---- capabilities ---- */

/* A blank-padded PKCS#11 text field as printable ASCII, trimmed. Some modules pad with NUL
 * bytes instead (tpm2-pkcs11's model): those count as blanks. */
static void token_text(char *out, size_t outlen, const CK_UTF8CHAR *in, size_t inlen)
{
	size_t n = 0;

	for (size_t i = 0; i < inlen && n + 1 < outlen; i++)
		out[n++] = in[i] == 0 ? ' ' : in[i] >= 0x20 && in[i] <= 0x7e ? (char)in[i] : '?';
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = 0;
}

static uint32_t clamp_u32(CK_ULONG v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Ask the token what it is (C_GetTokenInfo) and for its mechanisms (C_GetMechanismList,
 * C_GetMechanismInfo); log the token's flags, session limit and versions and the mechanisms
 * keyd uses with their key sizes, and keep a copy for status. A token that does not list its
 * mechanisms leaves the table empty: keyd then assumes, as before, and lets the module
 * refuse. */
static void probe_caps(struct keyd_token *t)
{
	struct keyd_token_caps caps = {0};
	CK_TOKEN_INFO ti;
	CK_ULONG n = 0;
	char line[512];
	size_t used = 0;

	if (t->fl->C_GetTokenInfo(t->slot, &ti) == CKR_OK) {
		caps.have |= KEYD_CAPS_TOKEN_INFO;
		caps.token_flags = clamp_u32(ti.flags);
		/* openCryptoki 3.8 answers (CK_ULONG)-2: any value beyond 32 bits is no limit. */
		caps.max_sessions = ti.ulMaxSessionCount == CK_EFFECTIVELY_INFINITE ||
		                            ti.ulMaxSessionCount > UINT32_MAX
		                        ? 0
		                        : (uint32_t)ti.ulMaxSessionCount;
		caps.hw_major = ti.hardwareVersion.major;
		caps.hw_minor = ti.hardwareVersion.minor;
		caps.fw_major = ti.firmwareVersion.major;
		caps.fw_minor = ti.firmwareVersion.minor;
		token_text(caps.manufacturer, sizeof(caps.manufacturer), ti.manufacturerID,
		           sizeof(ti.manufacturerID));
		token_text(caps.model, sizeof(caps.model), ti.model, sizeof(ti.model));
		log_info("token \"%s\": %s %s, hardware %u.%u, firmware %u.%u, flags 0x%lx%s%s, "
		         "sessions at most %lu (0: no limit stated), PIN %lu-%lu characters",
		         t->cfg->token, caps.manufacturer, caps.model, caps.hw_major, caps.hw_minor,
		         caps.fw_major, caps.fw_minor, (unsigned long)ti.flags,
		         (ti.flags & CKF_LOGIN_REQUIRED) ? " login-required" : "",
		         (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) ? " protected-auth-path"
		                                                        : "",
		         (unsigned long)caps.max_sessions, (unsigned long)ti.ulMinPinLen,
		         (unsigned long)ti.ulMaxPinLen);
	}
	if (t->fl->C_GetMechanismList(t->slot, NULL, &n) != CKR_OK || n == 0 || n > 4096)
		goto unknown;
	t->mechs = calloc(n, sizeof(*t->mechs));
	t->minfo = calloc(n, sizeof(*t->minfo));
	if (!t->mechs || !t->minfo || t->fl->C_GetMechanismList(t->slot, t->mechs, &n) != CKR_OK)
		goto unknown;
	for (CK_ULONG i = 0; i < n; i++)
		if (t->fl->C_GetMechanismInfo(t->slot, t->mechs[i], &t->minfo[i]) != CKR_OK)
			memset(&t->minfo[i], 0, sizeof(t->minfo[i]));
	t->nmechs = n;
	caps.have |= KEYD_CAPS_MECHS;
	for (size_t j = 0; j < KEYD_NMECHS; j++) {
		const char *name = keyd_mech_name(keyd_mechs[j]);
		CK_ULONG i;
		int w;

		for (i = 0; i < n && t->mechs[i] != keyd_mechs[j]; i++)
			;
		if (i < n) {
			struct keyd_mech_cap *m = &caps.mechs[caps.nmechs++];
			m->mech = keyd_mechs[j];
			m->min_size = clamp_u32(t->minfo[i].ulMinKeySize);
			m->max_size = clamp_u32(t->minfo[i].ulMaxKeySize);
			m->flags = clamp_u32(t->minfo[i].flags);
		}
		w = i < n ? snprintf(line + used, sizeof(line) - used, " %s(%lu-%lu,0x%lx)", name,
		                     (unsigned long)t->minfo[i].ulMinKeySize,
		                     (unsigned long)t->minfo[i].ulMaxKeySize,
		                     (unsigned long)t->minfo[i].flags)
		          : snprintf(line + used, sizeof(line) - used, " %s(missing)", name);
		if (w > 0 && (size_t)w < sizeof(line) - used)
			used += (size_t)w;
	}
	log_info("token \"%s\": %lu mechanisms; keyd's:%s", t->cfg->token, (unsigned long)n, line);
	goto keep;
unknown:
	free(t->mechs);
	free(t->minfo);
	t->mechs = NULL;
	t->minfo = NULL;
	t->nmechs = 0;
	log_warn("token \"%s\" did not list its mechanisms: keyd assumes it has what it needs",
	         t->cfg->token);
keep:
	pthread_mutex_lock(&t->caps_lock);
	t->caps = caps;
	pthread_mutex_unlock(&t->caps_lock);
}

void keyd_token_caps(struct keyd_token *t, struct keyd_token_caps *out)
{
	pthread_mutex_lock(&t->caps_lock);
	*out = t->caps;
	pthread_mutex_unlock(&t->caps_lock);
}

/* KEYD_OK when the token offers mechanism m for the use `flag` (CKF_SIGN, ...) and, for
 * bits > 0, keys of that size; else KEYD_E_BAD_ALG with msg naming what is missing.
 * Caller holds the read lock. */
static int need_mech(const struct keyd_token *t, CK_MECHANISM_TYPE m, CK_FLAGS flag, CK_ULONG bits,
                     char *msg, size_t msglen)
{
	const char *name = keyd_mech_name((uint32_t)m);

	if (!t->nmechs)
		return KEYD_OK;
	for (CK_ULONG i = 0; i < t->nmechs; i++) {
		const CK_MECHANISM_INFO *mi = &t->minfo[i];

		if (t->mechs[i] != m)
			continue;
		if (flag && !(mi->flags & flag)) {
			snprintf(msg, msglen, "not supported by this token: %s lacks the use 0x%lx",
			         name, (unsigned long)flag);
			return KEYD_E_BAD_ALG;
		}
		if (bits && mi->ulMaxKeySize &&
		    (bits < mi->ulMinKeySize || bits > mi->ulMaxKeySize)) {
			snprintf(
			    msg, msglen,
			    "not supported by this token: %s with %lu-bit keys (it takes %lu-%lu)",
			    name, (unsigned long)bits, (unsigned long)mi->ulMinKeySize,
			    (unsigned long)mi->ulMaxKeySize);
			return KEYD_E_BAD_ALG;
		}
		return KEYD_OK;
	}
	snprintf(msg, msglen, "not supported by this token: it has no %s", name);
	return KEYD_E_BAD_ALG;
}

/* Load, find, log in, open sessions, read keys. Caller holds the write lock. */
static int bringup(struct keyd_token *t, char *err, size_t errlen)
{
	const struct keyd_config *cfg = t->cfg;
	PKCS11_SLOT *slot = NULL;
	CK_RV (*getlist)(CK_FUNCTION_LIST_PTR_PTR);
	CK_RV rv;

	t->p11 = PKCS11_CTX_new();
	if (!t->p11) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (PKCS11_CTX_load(t->p11, cfg->module) != 0) {
		snprintf(err, errlen, "cannot load PKCS#11 module %s", cfg->module);
		/* A failed load has unloaded the module already (e.g. its C_Initialize
		 * failed, as tpm2-pkcs11's does while its TPM is unreachable): unloading
		 * again would call into freed code. */
		PKCS11_CTX_free(t->p11);
		t->p11 = NULL;
		goto fail;
	}
	if (PKCS11_enumerate_slots(t->p11, &t->slots, &t->nslots) != 0) {
		snprintf(err, errlen, "module %s: cannot list slots", cfg->module);
		goto fail;
	}
	for (unsigned i = 0; i < t->nslots; i++)
		if (t->slots[i].token && t->slots[i].token->initialized &&
		    strcmp(t->slots[i].token->label, cfg->token) == 0) {
			slot = &t->slots[i];
			break;
		}
	if (!slot) {
		snprintf(err, errlen, "no initialised token labelled \"%s\" in module %s",
		         cfg->token, cfg->module);
		goto fail;
	}
	t->slot = PKCS11_get_slotid_from_slot(slot);
	if (PKCS11_open_session(slot, 1) != 0) {
		snprintf(err, errlen, "token \"%s\": cannot open a session", cfg->token);
		goto fail;
	}
	/* libp11 keeps a heap copy of the PIN it logs in with (to log in again after a fork). A
	 * quorum's PIN must be wiped once used: keyd logs in through the module itself below. */
	if (t->cfg->activation != KEYD_ACTIVATION_QUORUM && PKCS11_login(slot, 0, t->pin) != 0) {
		snprintf(err, errlen, "token \"%s\": login failed (wrong PIN or PIN locked)",
		         cfg->token);
		teardown(t);
		return -2;
	}
	/* The module is loaded already; this only borrows its function list. */
	t->dl = dlopen(cfg->module, RTLD_NOW | RTLD_NOLOAD);
	getlist =
	    t->dl ? (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(t->dl, "C_GetFunctionList") : NULL;
	if (!getlist || getlist(&t->fl) != CKR_OK || !t->fl) {
		snprintf(err, errlen, "module %s: no C_GetFunctionList", cfg->module);
		goto fail;
	}
	rv = t->fl->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                          &t->control);
	if (rv == CKR_OK && t->cfg->activation == KEYD_ACTIVATION_QUORUM) {
		/* The login is the token's, for every session of this process. */
		rv = t->fl->C_Login(t->control, CKU_USER, (CK_UTF8CHAR_PTR)t->pin,
		                    (CK_ULONG)strlen(t->pin));
		if (rv == CKR_USER_ALREADY_LOGGED_IN)
			rv = CKR_OK;
		if (rv != CKR_OK) {
			snprintf(err, errlen, "token \"%s\": login failed: %s", cfg->token,
			         ckr_name(rv));
			goto fail;
		}
	}
	for (int i = 0; rv == CKR_OK && i < t->nsessions; i++)
		rv = t->fl->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &t->sessions[i]);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "token \"%s\": C_OpenSession: %s", cfg->token, ckr_name(rv));
		goto fail;
	}
	probe_caps(t);
	rv = load_keys(t);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "token \"%s\": reading keys: %s", cfg->token, ckr_name(rv));
		goto fail;
	}
	return 0;
fail:
	teardown(t);
	return -1;
}

static void *recovery_main(void *arg)
{
	struct keyd_token *t = arg;
	int backoff_ms = 100;

	pthread_mutex_lock(&t->rlock);
	for (;;) {
		while (!t->fault && !t->stopping)
			pthread_cond_wait(&t->rcond, &t->rlock);
		if (t->stopping)
			break;
		pthread_mutex_unlock(&t->rlock);

		char err[256];
		int rc;
		if (t->cfg->activation == KEYD_ACTIVATION_QUORUM) {
			/* The PIN was wiped after the quorum's login: letting go of the module
			 * drops the login, and only the quorum can give it back. */
			pthread_rwlock_wrlock(&t->lock);
			teardown(t);
			atomic_store(&t->sealed, 1);
			pthread_rwlock_unlock(&t->lock);
			log_error("token \"%s\" lost: keyd is sealed again until its quorum "
			          "presents the shares (hsmca keyd unseal)",
			          t->cfg->token);
			pthread_mutex_lock(&t->rlock);
			t->fault = 0;
			continue;
		}
		pthread_rwlock_wrlock(&t->lock);
		teardown(t);
		rc = bringup(t, err, sizeof(err));
		pthread_rwlock_unlock(&t->lock);

		pthread_mutex_lock(&t->rlock);
		if (rc == -2) {
			/* The PIN keyd holds no longer logs in: the token was re-initialised with
			 * another PIN, or the PIN changed. Trying it again and again would lock the
			 * PIN of a token that counts failures, so keyd stays offline, says why to
			 * every client and in the log, and waits to be restarted with the new PIN.
			 */
			atomic_store(&t->pin_refused, 1);
			log_error(
			    "%s: the token no longer accepts keyd's PIN (re-initialised with "
			    "another PIN?); keyd stays offline and does not try the PIN again: "
			    "restart it with the token's current PIN in its PIN file",
			    err);
			while (!t->stopping)
				pthread_cond_wait(&t->rcond, &t->rlock);
			break;
		}
		if (rc == 0) {
			t->fault = 0;
			backoff_ms = 100;
			atomic_fetch_add(&t->reinits, 1);
			atomic_store(&t->online, 1);
			log_info("token \"%s\" online again after re-initialisation (%zu keys)",
			         t->cfg->token, t->nkeys);
			continue;
		}
		log_warn("token recovery failed: %s; retrying in %d ms", err, backoff_ms);
		if (backoff_ms == 1600 && t->cfg->sandbox.seccomp && !t->cfg->sandbox.module_ipc)
			log_warn(
			    "token recovery: if module %s reaches its token through a local "
			    "service (a slot daemon, a resource manager, an HSM client), keyd's "
			    "seccomp filter refuses it the connect and shared memory that needs: "
			    "set module_ipc: true (docs/hsm-compatibility.md)",
			    t->cfg->module);
		{
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += backoff_ms / 1000;
			ts.tv_nsec += (long)(backoff_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			while (!t->stopping &&
			       pthread_cond_timedwait(&t->rcond, &t->rlock, &ts) != ETIMEDOUT)
				;
		}
		backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
	}
	pthread_mutex_unlock(&t->rlock);
	return NULL;
}

struct keyd_token *keyd_token_open(const struct keyd_config *cfg, const char *pin, int nsessions,
                                   char *err, size_t errlen)
{
	struct keyd_token *t = calloc(1, sizeof(*t));

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->cfg = cfg;
	t->nsessions = nsessions;
	t->pin = keyd_secret_alloc(KEYD_PIN_MAX, err, errlen);
	if (!t->pin) {
		free(t);
		return NULL;
	}
	if (pin)
		snprintf(t->pin, KEYD_PIN_MAX, "%s", pin);
	t->sessions = calloc((size_t)nsessions, sizeof(*t->sessions));
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->control_lock, NULL);
	pthread_mutex_init(&t->rlock, NULL);
	pthread_mutex_init(&t->caps_lock, NULL);
	pthread_cond_init(&t->rcond, NULL);
	for (int i = 0; t->sessions && i < nsessions; i++)
		t->sessions[i] = CK_INVALID_HANDLE;
	t->control = CK_INVALID_HANDLE;
	if (!t->sessions || (pin && bringup(t, err, errlen) != 0)) {
		if (!t->sessions)
			snprintf(err, errlen, "out of memory");
		keyd_token_close(t);
		return NULL;
	}
	atomic_store(&t->online, pin != NULL);
	atomic_store(&t->sealed, pin == NULL);
	if (pthread_create(&t->recovery, NULL, recovery_main, t) != 0) {
		snprintf(err, errlen, "cannot start the recovery thread");
		keyd_token_close(t);
		return NULL;
	}
	t->recovery_started = 1;
	return t;
}

void keyd_token_close(struct keyd_token *t)
{
	if (!t)
		return;
	if (t->recovery_started) {
		pthread_mutex_lock(&t->rlock);
		t->stopping = 1;
		pthread_cond_broadcast(&t->rcond);
		pthread_mutex_unlock(&t->rlock);
		pthread_join(t->recovery, NULL);
	}
	pthread_rwlock_wrlock(&t->lock);
	teardown(t);
	pthread_rwlock_unlock(&t->lock);
	keyd_secret_free(t->pin, KEYD_PIN_MAX);
	free(t->sessions);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->control_lock);
	pthread_mutex_destroy(&t->rlock);
	pthread_mutex_destroy(&t->caps_lock);
	pthread_cond_destroy(&t->rcond);
	free(t);
}

int keyd_token_online(struct keyd_token *t)
{
	return atomic_load(&t->online);
}

const char *keyd_token_offline_why(struct keyd_token *t)
{
	return atomic_load(&t->pin_refused)
	           ? "token offline: it no longer accepts keyd's PIN (re-initialised?); keyd must "
	             "be restarted with the current PIN"
	           : "token offline, recovering";
}

int keyd_token_sealed(struct keyd_token *t)
{
	return atomic_load(&t->sealed);
}

int keyd_token_unseal(struct keyd_token *t, const char *pin, char *err, size_t errlen)
{
	int rc = 0;

	pthread_rwlock_wrlock(&t->lock);
	if (!atomic_load(&t->sealed)) {
		pthread_rwlock_unlock(&t->lock);
		return 0;
	}
	snprintf(t->pin, KEYD_PIN_MAX, "%s", pin);
	teardown(t);
	if (bringup(t, err, errlen) != 0)
		rc = -1;
	/* Not kept: a recovery cannot log in again, the quorum must (docs/quorum.md). */
	OPENSSL_cleanse(t->pin, KEYD_PIN_MAX);
	if (rc == 0) {
		atomic_store(&t->sealed, 0);
		atomic_store(&t->online, 1);
	}
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

void keyd_token_seal(struct keyd_token *t)
{
	pthread_rwlock_wrlock(&t->lock);
	atomic_store(&t->online, 0);
	atomic_store(&t->sealed, 1);
	teardown(t);
	OPENSSL_cleanse(t->pin, KEYD_PIN_MAX);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_lock(&t->rlock);
	t->fault = 0;
	pthread_mutex_unlock(&t->rlock);
}

unsigned keyd_token_reinits(struct keyd_token *t)
{
	return atomic_load(&t->reinits);
}

const char *keyd_token_label(struct keyd_token *t)
{
	return t->cfg->token;
}

/* The shared lock for an operation that must not wait out a re-initialisation (which holds
 * the lock exclusively for as long as the module takes to load and log in): 0 with the lock
 * held, or -1 without it while the token is offline. A writer while online is a key-table
 * update, which takes microseconds: that one is waited for. */
static int read_lock_online(struct keyd_token *t)
{
	if (pthread_rwlock_tryrdlock(&t->lock) != 0) {
		if (!atomic_load(&t->online))
			return -1;
		pthread_rwlock_rdlock(&t->lock);
	}
	/* Offline with the lock free: recovery gave up (the PIN no longer logs in) or is
	 * between attempts; the key table is empty then, and "no such key" would mislead. */
	if (!atomic_load(&t->online)) {
		pthread_rwlock_unlock(&t->lock);
		return -1;
	}
	return 0;
}

size_t keyd_token_nkeys(struct keyd_token *t)
{
	size_t n;

	if (read_lock_online(t) != 0)
		return 0;
	n = t->nkeys;
	pthread_rwlock_unlock(&t->lock);
	return n;
}

int keyd_token_key_at(struct keyd_token *t, size_t i, struct keyd_key_copy *out)
{
	int rc = KEYD_E_NO_KEY;

	if (read_lock_online(t) != 0)
		return KEYD_E_OFFLINE;
	if (i < t->nkeys && !t->keys[i].ambiguous) {
		*out = t->keys[i].pub;
		rc = KEYD_OK;
	}
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

int keyd_token_key(struct keyd_token *t, const char *label, struct keyd_key_copy *out)
{
	int rc = KEYD_E_NO_KEY, i;

	if (read_lock_online(t) != 0)
		return KEYD_E_OFFLINE;
	i = key_index(t, label);
	if (i >= 0 && !t->keys[i].ambiguous) {
		*out = t->keys[i].pub;
		rc = KEYD_OK;
	}
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

/* ---- signing ---- */

static const uint8_t digestinfo_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t digestinfo_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t digestinfo_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x03, 0x05, 0x00, 0x04, 0x40};

/* Raw r||s to a DER ECDSA-Sig-Value, written with der.h into the caller's buffer: no BIGNUM
 * and no allocation per signature. */
static int ecdsa_raw_to_der(const uint8_t *raw, size_t rawlen, uint8_t *out, size_t *outlen)
{
	uint8_t ints[2 * (KEYD_SIG_MAX / 2 + 8)];
	struct der in, seq;

	if (rawlen == 0 || rawlen % 2 || rawlen > KEYD_SIG_MAX)
		return -1;
	der_init(&in, ints, sizeof(ints));
	der_uint_bytes(&in, raw, rawlen / 2);
	der_uint_bytes(&in, raw + rawlen / 2, rawlen / 2);
	der_init(&seq, out, *outlen);
	der_tlv(&seq, 0x30, ints, in.len);
	if (in.overflow || seq.overflow)
		return -1;
	*outlen = seq.len;
	return 0;
}

int keyd_token_sign(struct keyd_token *t, int session, const char *label, int alg, int hash,
                    unsigned salt_len, const uint8_t *digest, size_t digest_len, uint8_t *sig,
                    size_t *sig_len, char *msg, size_t msglen)
{
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM mech = {0, NULL, 0};
	uint8_t data[19 + KEYD_DIGEST_MAX], raw[KEYD_SIG_MAX];
	CK_ULONG datalen = 0, rawlen = sizeof(raw);
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	const uint8_t *prefix;
	struct tkey *k;
	int i, rc = KEYD_E_HSM;
	CK_RV rv;

	if (!atomic_load(&t->online)) {
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		return KEYD_E_OFFLINE;
	}
	if (read_lock_online(t) != 0) {
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		return KEYD_E_OFFLINE;
	}
	if (!atomic_load(&t->online) || !t->fl) {
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		rc = KEYD_E_OFFLINE;
		goto out;
	}
	i = key_index(t, label);
	if (i < 0 || t->keys[i].ambiguous) {
		snprintf(msg, msglen, i < 0 ? "no key labelled %s" : "label %s is ambiguous",
		         label);
		rc = KEYD_E_NO_KEY;
		goto out;
	}
	k = &t->keys[i];
	key = k->priv;
	switch (alg) {
	case KEYD_ALG_RSA_PKCS1:
		if (k->pub.type != KEYD_KEY_RSA)
			goto badalg;
		prefix = hash == KEYD_HASH_SHA256   ? digestinfo_sha256
		         : hash == KEYD_HASH_SHA384 ? digestinfo_sha384
		                                    : digestinfo_sha512;
		memcpy(data, prefix, 19);
		memcpy(data + 19, digest, digest_len);
		datalen = 19 + digest_len;
		mech.mechanism = CKM_RSA_PKCS;
		break;
	case KEYD_ALG_RSA_PSS: {
		size_t emlen = ((size_t)k->pub.bits - 1 + 7) / 8;
		if (k->pub.type != KEYD_KEY_RSA)
			goto badalg;
		if (salt_len + digest_len + 2 > emlen) {
			snprintf(msg, msglen, "PSS salt of %u bytes too long for a %u-bit key",
			         salt_len, k->pub.bits);
			rc = KEYD_E_BAD_ALG;
			goto out;
		}
		pss.hashAlg = hash == KEYD_HASH_SHA256   ? CKM_SHA256
		              : hash == KEYD_HASH_SHA384 ? CKM_SHA384
		                                         : CKM_SHA512;
		pss.mgf = hash == KEYD_HASH_SHA256   ? CKG_MGF1_SHA256
		          : hash == KEYD_HASH_SHA384 ? CKG_MGF1_SHA384
		                                     : CKG_MGF1_SHA512;
		pss.sLen = salt_len;
		mech = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
		memcpy(data, digest, digest_len);
		datalen = digest_len;
		break;
	}
	case KEYD_ALG_ECDSA:
		if (k->pub.type != KEYD_KEY_EC)
			goto badalg;
		mech.mechanism = CKM_ECDSA;
		memcpy(data, digest, digest_len);
		datalen = digest_len;
		break;
	default:
		goto badalg;
	}
	if ((rc = need_mech(t, mech.mechanism, CKF_SIGN, 0, msg, msglen)) != KEYD_OK)
		goto out;
	rc = KEYD_E_HSM;
	s = t->sessions[session];
	rv = t->fl->C_SignInit(s, &mech, key);
	if (rv == CKR_OK)
		rv = t->fl->C_Sign(s, data, datalen, raw, &rawlen);
	if (rv != CKR_OK) {
		snprintf(msg, msglen, "C_Sign: %s (0x%lx)", ckr_name(rv), (unsigned long)rv);
		if (rv_is_device_failure(rv)) {
			pthread_rwlock_unlock(&t->lock);
			token_fault(t, "C_Sign", rv);
			return KEYD_E_OFFLINE;
		}
		goto out;
	}
	if (alg == KEYD_ALG_ECDSA) {
		if (ecdsa_raw_to_der(raw, rawlen, sig, sig_len) != 0) {
			snprintf(msg, msglen, "ECDSA signature of %lu bytes is not r||s",
			         (unsigned long)rawlen);
			goto out;
		}
	} else {
		if (rawlen > *sig_len)
			goto out;
		memcpy(sig, raw, rawlen);
		*sig_len = rawlen;
	}
	rc = KEYD_OK;
	goto out;
badalg:
	snprintf(msg, msglen, "%s with %s does not fit %s key %s", keyd_alg_name(alg),
	         keyd_hash_name(hash), k->pub.type == KEYD_KEY_RSA ? "RSA" : "EC", label);
	rc = KEYD_E_BAD_ALG;
out:
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

/* ---- generation ---- */

/* ---- AES keys: wrapping short secrets (backup data keys) ---- */

/* Take the locks for one control-session operation; KEYD_OK or KEYD_E_OFFLINE (unlocked). */
static int control_begin(struct keyd_token *t, char *msg, size_t msglen)
{
	if (!atomic_load(&t->online)) {
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		return KEYD_E_OFFLINE;
	}
	if (read_lock_online(t) != 0) {
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		return KEYD_E_OFFLINE;
	}
	pthread_mutex_lock(&t->control_lock);
	if (!t->fl) {
		pthread_mutex_unlock(&t->control_lock);
		pthread_rwlock_unlock(&t->lock);
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		return KEYD_E_OFFLINE;
	}
	return KEYD_OK;
}

/* Release the locks; a device-level failure takes the token offline. Returns status. */
static int control_end(struct keyd_token *t, int status, const char *what, CK_RV rv)
{
	pthread_mutex_unlock(&t->control_lock);
	pthread_rwlock_unlock(&t->lock);
	if (rv != CKR_OK && rv_is_device_failure(rv)) {
		token_fault(t, what, rv);
		return KEYD_E_OFFLINE;
	}
	return status;
}

static int generate_aes(struct keyd_token *t, const char *label, struct keyd_key_copy *out,
                        char *msg, size_t msglen)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 32;
	uint8_t id[16];
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_TOKEN, &yes, 1},
	    {CKA_PRIVATE, &yes, 1},
	    {CKA_SENSITIVE, &yes, 1},
	    {CKA_EXTRACTABLE, &no, 1},
	    {CKA_ENCRYPT, &yes, 1},
	    {CKA_DECRYPT, &yes, 1},
	    {CKA_WRAP, &no, 1},
	    {CKA_UNWRAP, &no, 1},
	    {CKA_SIGN, &no, 1},
	    {CKA_VERIFY, &no, 1},
	    {CKA_DERIVE, &no, 1},
	    {CKA_VALUE_LEN, &len, sizeof(len)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, id, sizeof(id)},
	};
	CK_ATTRIBUTE bylabel[] = {{CKA_LABEL, (void *)label, strlen(label)}};
	CK_BBOOL b[5];
	CK_ATTRIBUTE flags[] = {
	    {CKA_SENSITIVE, &b[0], 1},
	    {CKA_EXTRACTABLE, &b[1], 1},
	    {CKA_ALWAYS_SENSITIVE, &b[2], 1},
	    {CKA_NEVER_EXTRACTABLE, &b[3], 1},
	    {CKA_LOCAL, &b[4], 1},
	};
	CK_OBJECT_HANDLE h, found;
	CK_ULONG nfound = 0;
	int rc;
	CK_RV rv;

	if (RAND_bytes(id, sizeof(id)) != 1) {
		snprintf(msg, msglen, "no randomness for the key id");
		return KEYD_E_INTERNAL;
	}
	if ((rc = control_begin(t, msg, msglen)) != KEYD_OK)
		return rc;
	/* A wrap key is only of use where the token can wrap with it. */
	if ((rc = need_mech(t, CKM_AES_KEY_GEN, CKF_GENERATE, 0, msg, msglen)) != KEYD_OK ||
	    (rc = need_mech(t, CKM_AES_GCM, CKF_ENCRYPT, 0, msg, msglen)) != KEYD_OK)
		return control_end(t, rc, "C_GenerateKey", CKR_OK);
	rv = find_objects(t, t->control, bylabel, 1, &found, 1, &nfound);
	if (rv == CKR_OK && (nfound || key_index(t, label) >= 0)) {
		snprintf(msg, msglen, "an object labelled %s exists on the token already", label);
		return control_end(t, KEYD_E_EXISTS, "C_FindObjects", CKR_OK);
	}
	if (rv == CKR_OK)
		rv = t->fl->C_GenerateKey(t->control, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]),
		                          &h);
	if (rv == CKR_OK)
		rv = t->fl->C_GetAttributeValue(t->control, h, flags, 5);
	if (rv != CKR_OK) {
		snprintf(msg, msglen, "C_GenerateKey (AES-256): %s", ckr_name(rv));
		return control_end(t, KEYD_E_HSM, "C_GenerateKey", rv);
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->label, sizeof(out->label), "%s", label);
	out->type = KEYD_KEY_AES;
	out->bits = 256;
	out->flags = (b[0] ? KEYD_KF_SENSITIVE : 0) | (b[1] ? KEYD_KF_EXTRACTABLE : 0) |
	             (b[2] ? KEYD_KF_ALWAYS_SENSITIVE : 0) |
	             (b[3] ? KEYD_KF_NEVER_EXTRACTABLE : 0) | (b[4] ? KEYD_KF_LOCAL : 0);
	return control_end(t, KEYD_OK, "C_GenerateKey", CKR_OK);
}

/* The GCM parameters of a wrapped blob: the nonce, and the label as associated data, so a
 * blob made under one label does not unwrap under another. */
static void wrap_params(CK_GCM_PARAMS *gp, uint8_t *nonce, const char *label, char *aad,
                        size_t aadsz)
{
	int n = snprintf(aad, aadsz, "hsmca-keyd-wrap-v1:%s", label);

	memset(gp, 0, sizeof(*gp));
	gp->iv_ptr = nonce;
	gp->iv_len = 12;
	gp->iv_bits = 96;
	gp->aad_ptr = (unsigned char *)aad;
	gp->aad_len = (unsigned long)n;
	gp->tag_bits = 128;
}

static CK_RV find_aes(struct keyd_token *t, const char *label, CK_OBJECT_HANDLE *h, CK_ULONG *n)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &kt, sizeof(kt)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	};
	return find_objects(t, t->control, tmpl, 3, h, 1, n);
}

int keyd_token_wrap(struct keyd_token *t, int unwrap, const char *label, const uint8_t *in,
                    size_t inlen, uint8_t *out, size_t *outlen, char *msg, size_t msglen)
{
	uint8_t nonce[12];
	char aad[KEYD_LABEL_MAX + 32];
	CK_GCM_PARAMS gp;
	CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 0, olen;
	const char *what;
	int rc;
	CK_RV rv;

	if (!unwrap &&
	    (inlen == 0 || inlen > KEYD_WRAP_DATA_MAX || *outlen < inlen + KEYD_WRAP_OVERHEAD)) {
		snprintf(msg, msglen, "wrap: secret of %zu bytes does not fit", inlen);
		return KEYD_E_INTERNAL;
	}
	if (unwrap && (inlen <= KEYD_WRAP_OVERHEAD || inlen > KEYD_WRAP_BLOB_MAX || in[0] != 1 ||
	               *outlen < inlen - KEYD_WRAP_OVERHEAD)) {
		snprintf(msg, msglen, "unwrap: not a wrapped blob of format 1");
		return KEYD_E_BAD_ALG;
	}
	if (!unwrap && RAND_bytes(nonce, sizeof(nonce)) != 1) {
		snprintf(msg, msglen, "no randomness for the nonce");
		return KEYD_E_INTERNAL;
	}
	if (unwrap)
		memcpy(nonce, in + 1, sizeof(nonce));
	wrap_params(&gp, nonce, label, aad, sizeof(aad));
	if ((rc = control_begin(t, msg, msglen)) != KEYD_OK)
		return rc;
	if ((rc = need_mech(t, CKM_AES_GCM, unwrap ? CKF_DECRYPT : CKF_ENCRYPT, 0, msg, msglen)) !=
	    KEYD_OK)
		return control_end(t, rc, "C_EncryptInit", CKR_OK);
	what = "C_FindObjects";
	rv = find_aes(t, label, &h, &n);
	if (rv == CKR_OK && n == 0) {
		snprintf(msg, msglen, "no AES key labelled %s", label);
		return control_end(t, KEYD_E_NO_KEY, what, CKR_OK);
	}
	if (rv == CKR_OK && !unwrap) {
		what = "C_EncryptInit";
		rv = t->fl->C_EncryptInit(t->control, &mech, h);
		olen = (CK_ULONG)(*outlen - 13);
		if (rv == CKR_OK) {
			what = "C_Encrypt";
			rv = t->fl->C_Encrypt(t->control, (CK_BYTE_PTR)in, (CK_ULONG)inlen,
			                      out + 13, &olen);
		}
		if (rv == CKR_OK) {
			out[0] = 1;
			memcpy(out + 1, nonce, sizeof(nonce));
			*outlen = 13 + (size_t)olen;
		}
	} else if (rv == CKR_OK) {
		what = "C_DecryptInit";
		rv = t->fl->C_DecryptInit(t->control, &mech, h);
		olen = (CK_ULONG)*outlen;
		if (rv == CKR_OK) {
			what = "C_Decrypt";
			rv = t->fl->C_Decrypt(t->control, (CK_BYTE_PTR)in + 13,
			                      (CK_ULONG)(inlen - 13), out, &olen);
		}
		if (rv == CKR_OK)
			*outlen = (size_t)olen;
	}
	if (rv != CKR_OK) {
		if (unwrap && (rv == CKR_ENCRYPTED_DATA_INVALID ||
		               rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR)) {
			/* SoftHSM answers a failed GCM tag check with CKR_GENERAL_ERROR; the
			 * module is fine, so this must not take the token offline. */
			snprintf(msg, msglen,
			         "unwrap: the blob does not authenticate under key %s (%s)", label,
			         ckr_name(rv));
			return control_end(t, KEYD_E_BAD_ALG, what, CKR_OK);
		}
		snprintf(msg, msglen, "%s: %s", what, ckr_name(rv));
		return control_end(t, KEYD_E_HSM, what, rv);
	}
	return control_end(t, KEYD_OK, what, CKR_OK);
}

/* CKA_DECRYPT of a new key pair's private half: false, unless the configuration says the
 * token signs RSA PKCS#1 v1.5 through a raw decryption and so needs it (tpm2-pkcs11). */
static CK_BBOOL *rsa_decrypt(const struct keyd_token *t, int keytype)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

	return keytype == KEYD_KEY_RSA && t->cfg->rsa_sign_by_decrypt ? &yes : &no;
}

int keyd_token_generate(struct keyd_token *t, const char *label, int keytype, unsigned keyparam,
                        struct keyd_key_copy *out, char *msg, size_t msglen)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = keyparam;
	uint8_t e[] = {0x01, 0x00, 0x01}, id[16];
	const uint8_t *curve = keyparam == KEYD_CURVE_P384 ? oid_p384 : oid_p256;
	size_t curvelen = keyparam == KEYD_CURVE_P384 ? sizeof(oid_p384) : sizeof(oid_p256);
	CK_MECHANISM mech = {
	    keytype == KEYD_KEY_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pubt[8], privt[] = {
	                          {CKA_TOKEN, &yes, 1},
	                          {CKA_PRIVATE, &yes, 1},
	                          {CKA_SENSITIVE, &yes, 1},
	                          {CKA_EXTRACTABLE, &no, 1},
	                          {CKA_SIGN, &yes, 1},
	                          {CKA_DECRYPT, rsa_decrypt(t, keytype), 1},
	                          {CKA_UNWRAP, &no, 1},
	                          {CKA_DERIVE, &no, 1},
	                          {CKA_LABEL, (void *)label, strlen(label)},
	                          {CKA_ID, id, sizeof(id)},
	                      };
	CK_ULONG npub = 0;
	CK_OBJECT_HANDLE hpub, hpriv, found;
	CK_ULONG nfound = 0;
	CK_ATTRIBUTE bylabel[] = {{CKA_LABEL, (void *)label, strlen(label)}};
	struct tkey nk;
	int rc = KEYD_E_HSM;
	CK_RV rv;

	if (keytype == KEYD_KEY_AES)
		return generate_aes(t, label, out, msg, msglen);
	if (!atomic_load(&t->online)) {
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		return KEYD_E_OFFLINE;
	}
	if (RAND_bytes(id, sizeof(id)) != 1) {
		snprintf(msg, msglen, "no randomness for the key id");
		return KEYD_E_INTERNAL;
	}
	pubt[npub++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, 1};
	pubt[npub++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, 1};
	/* No CKA_VERIFY or CKA_ENCRYPT on the public half: tpm2-pkcs11 derives them from the TPM
	 * key and fails the generation (CKR_GENERAL_ERROR) when a template states them
	 * differently; a public key's uses need no guarding (docs/hsm-compatibility.md). */
	pubt[npub++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	pubt[npub++] = (CK_ATTRIBUTE){CKA_ID, id, sizeof(id)};
	if (keytype == KEYD_KEY_RSA) {
		pubt[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
		pubt[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e, sizeof(e)};
	} else {
		pubt[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)curve, curvelen};
	}

	/* One generation at a time (SoftHSM 2.6 races on concurrent object
	 * creation); the read lock keeps the module from being swapped under us. */
	pthread_rwlock_rdlock(&t->lock);
	pthread_mutex_lock(&t->control_lock);
	if (!t->fl) {
		snprintf(msg, msglen, "%s", keyd_token_offline_why(t));
		rc = KEYD_E_OFFLINE;
		goto out;
	}
	rc = need_mech(t, mech.mechanism, CKF_GENERATE_KEY_PAIR, keytype == KEYD_KEY_RSA ? bits : 0,
	               msg, msglen);
	if (rc != KEYD_OK)
		goto out;
	rc = KEYD_E_HSM;
	rv = find_objects(t, t->control, bylabel, 1, &found, 1, &nfound);
	if (rv == CKR_OK && (nfound || key_index(t, label) >= 0)) {
		snprintf(msg, msglen, "an object labelled %s exists on the token already", label);
		rc = KEYD_E_EXISTS;
		goto out;
	}
	if (rv == CKR_OK)
		rv = t->fl->C_GenerateKeyPair(t->control, &mech, pubt, npub, privt,
		                              sizeof(privt) / sizeof(privt[0]), &hpub, &hpriv);
	if (rv != CKR_OK) {
		snprintf(msg, msglen, "C_GenerateKeyPair: %s", ckr_name(rv));
		pthread_mutex_unlock(&t->control_lock);
		pthread_rwlock_unlock(&t->lock);
		if (rv_is_device_failure(rv)) {
			token_fault(t, "C_GenerateKeyPair", rv);
			return KEYD_E_OFFLINE;
		}
		return KEYD_E_HSM;
	}
	memset(&nk, 0, sizeof(nk));
	snprintf(nk.pub.label, sizeof(nk.pub.label), "%s", label);
	nk.priv = hpriv;
	rv = describe_key(t, hpriv, &nk.pub);
	if (rv != CKR_OK || nk.pub.spki_len == 0) {
		snprintf(msg, msglen, "new key %s: cannot read its public key: %s", label,
		         ckr_name(rv));
		goto out;
	}
	*out = nk.pub;
	rc = KEYD_OK;
out:
	pthread_mutex_unlock(&t->control_lock);
	pthread_rwlock_unlock(&t->lock);
	if (rc == KEYD_OK) {
		/* The table changes only under the write lock. */
		pthread_rwlock_wrlock(&t->lock);
		if (t->keys && t->nkeys < MAX_KEYS && key_index(t, label) < 0)
			t->keys[t->nkeys++] = nk;
		pthread_rwlock_unlock(&t->lock);
	}
	return rc;
}

void keyd_token_health(struct keyd_token *t)
{
	CK_SESSION_INFO info = {0};
	CK_RV rv = CKR_OK;

	if (!atomic_load(&t->online))
		return;
	/* Runs on the thread that accepts connections and handles SIGTERM: it must never wait.
	 * A re-initialisation in progress is its own check; a control session busy with a key
	 * generation (RSA-4096 takes seconds) or a wrap is in use, so this turn is skipped. */
	if (read_lock_online(t) != 0)
		return;
	if (pthread_mutex_trylock(&t->control_lock) != 0) {
		pthread_rwlock_unlock(&t->lock);
		return;
	}
	if (!t->fl) {
		pthread_mutex_unlock(&t->control_lock);
		pthread_rwlock_unlock(&t->lock);
		return;
	}
	rv = t->fl->C_GetSessionInfo(t->control, &info);
	pthread_mutex_unlock(&t->control_lock);
	pthread_rwlock_unlock(&t->lock);
	if (rv == CKR_OK && info.state != CKS_RW_USER_FUNCTIONS &&
	    info.state != CKS_RO_USER_FUNCTIONS)
		rv = CKR_USER_NOT_LOGGED_IN;
	if (rv != CKR_OK && rv_is_device_failure(rv))
		token_fault(t, "C_GetSessionInfo", rv);
}
