/*
 * Key objects and key management for RSA and EC keys held by keyd.
 *
 * The public half is a real EVP_PKEY of OpenSSL's default provider (in the
 * provider's own library context), so parameters, export and comparison are
 * delegated to it. The private half is the label: "has private key" is true
 * for keys that came from keyd, and export of the private half is refused.
 * Keys imported by OpenSSL (to compare against ours, say) are public only.
 */
#include "prov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/x509.h>

const char *prov_key_type_name(int type)
{
	return type == KEYD_KEY_RSA ? "RSA" : "EC";
}

struct prov_key *prov_key_new(struct prov_ctx *pc, int type)
{
	struct prov_key *k = calloc(1, sizeof(*k));

	if (!k) {
		prov_raise(pc, PROV_R_INTERNAL, "out of memory");
		return NULL;
	}
	atomic_init(&k->refs, 1);
	k->pc = pc;
	k->type = type;
	return k;
}

void prov_key_up_ref(struct prov_key *k)
{
	atomic_fetch_add(&k->refs, 1);
}

void prov_key_free(struct prov_key *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	EVP_PKEY_free(k->pub);
	free(k);
}

struct prov_key *prov_key_from_keyd(struct prov_ctx *pc, const struct keyd_key *kk)
{
	const unsigned char *p = kk->spki;
	struct prov_key *k = NULL;
	EVP_PKEY *pub;

	if (kk->type != KEYD_KEY_RSA && kk->type != KEYD_KEY_EC) {
		prov_raise(pc, PROV_R_BAD_KEY, "key '%s': keyd reports key type %u, not RSA or EC",
		           kk->label, kk->type);
		return NULL;
	}
	pub = d2i_PUBKEY_ex(NULL, &p, (long)kk->spki_len, pc->swctx, NULL);
	if (!pub || p != kk->spki + kk->spki_len) {
		prov_raise(pc, PROV_R_BAD_KEY, "key '%s': keyd's public key does not decode",
		           kk->label);
		goto done;
	}
	if (!EVP_PKEY_is_a(pub, prov_key_type_name(kk->type))) {
		prov_raise(pc, PROV_R_BAD_KEY, "key '%s': keyd says %s but the public key is %s",
		           kk->label, prov_key_type_name(kk->type), EVP_PKEY_get0_type_name(pub));
		goto done;
	}
	k = prov_key_new(pc, kk->type);
	if (!k)
		goto done;
	snprintf(k->label, sizeof(k->label), "%s", kk->label);
	k->bits = EVP_PKEY_get_bits(pub);
	k->pub = pub;
	pub = NULL;
done:
	EVP_PKEY_free(pub);
	return k;
}

/* ---- keymgmt ---- */

static void *km_rsa_new(void *provctx)
{
	return prov_key_new(provctx, KEYD_KEY_RSA);
}

static void *km_ec_new(void *provctx)
{
	return prov_key_new(provctx, KEYD_KEY_EC);
}

static void km_free(void *keydata)
{
	prov_key_free(keydata);
}

/* The reference is a pointer to a key object, made by our store's load. */
static void *km_load(const void *reference, size_t reference_sz)
{
	struct prov_key *k;

	if (!reference || reference_sz != sizeof(k))
		return NULL;
	memcpy(&k, reference, sizeof(k));
	prov_key_up_ref(k);
	return k;
}

static int km_has(const void *keydata, int selection)
{
	const struct prov_key *k = keydata;
	int ok = 1;

	if (!k)
		return 0;
	if (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY)
		ok = ok && k->pub;
	/* The private key is the HSM object behind the label. */
	if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY)
		ok = ok && k->label[0];
	if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) && k->type == KEYD_KEY_EC)
		ok = ok && k->pub;
	return ok;
}

static int km_match(const void *keydata1, const void *keydata2, int selection)
{
	const struct prov_key *a = keydata1, *b = keydata2;

	if (!a || !b || a->type != b->type || !a->pub || !b->pub)
		return 0;
	/* A private half cannot be compared; equal public keys mean the same pair. */
	if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
		return EVP_PKEY_eq(a->pub, b->pub) == 1;
	if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) && a->type == KEYD_KEY_EC)
		return EVP_PKEY_parameters_eq(a->pub, b->pub) == 1;
	return 1;
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
	struct prov_key *k = keydata;

	if (!k || !k->pub)
		return 0;
	/* The default provider answers for the public key: bits, security
	 * bits, maximum signature size (DER ECDSA for EC), default digest,
	 * n and e or group and point. */
	return EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM km_rsa_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM km_ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *km_rsa_gettable_params(void *provctx)
{
	(void)provctx;
	return km_rsa_gettable;
}

static const OSSL_PARAM *km_ec_gettable_params(void *provctx)
{
	(void)provctx;
	return km_ec_gettable;
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct prov_key *k = keydata;

	if (!k || !k->pub)
		return 0;
	/*
	 * The private half is the HSM object: there is nothing to export.
	 * OpenSSL 3.0 itself asks for it too, and must be refused for things
	 * to work: signing first tries a full export to the default
	 * provider's keymgmt and only on failure uses our signature (under an
	 * error mark), and EVP_PKEY_eq then exports the other key to us. So
	 * the error below reaches only callers that wanted the private key:
	 * PEM_write_PrivateKey, i2d_PrivateKey, EVP_PKEY_todata.
	 */
	if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) {
		prov_raise(k->pc, PROV_R_PRIVATE_KEY_EXPORT,
		           "key '%s': only the public key can be exported",
		           k->label[0] ? k->label : "(public)");
		return 0;
	}
	return EVP_PKEY_export(k->pub, selection, cb, cbarg);
}

static const OSSL_PARAM km_rsa_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM km_ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM km_no_types[] = {OSSL_PARAM_END};

static const OSSL_PARAM *km_rsa_port_types(int selection)
{
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? km_rsa_types : km_no_types;
}

static const OSSL_PARAM *km_ec_port_types(int selection)
{
	return (selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS))
	           ? km_ec_types
	           : km_no_types;
}

/* Public keys only: OpenSSL moves a default-provider key in to compare it with ours. */
static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
	struct prov_key *k = keydata;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pub = NULL;
	int ok = 0;

	if (!k || k->pub || !(selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY))
		return 0;
	ctx = EVP_PKEY_CTX_new_from_name(k->pc->swctx, prov_key_type_name(k->type), NULL);
	/* EVP_PKEY_PUBLIC_KEY: any private parts in params are left behind. */
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) <= 0)
		goto done;
	/* A key without its public half (say, EC parameters only) is no use to us. */
	if (i2d_PUBKEY(pub, NULL) <= 0)
		goto done;
	k->bits = EVP_PKEY_get_bits(pub);
	k->pub = pub;
	pub = NULL;
	ok = 1;
done:
	EVP_PKEY_free(pub);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* Key objects are immutable, so a copy shares the public key; it keeps
 * the HSM handle only if the private half was asked for. */
static void *km_dup(const void *keydata, int selection)
{
	const struct prov_key *from = keydata;
	struct prov_key *k;

	if (!from || !from->pub)
		return NULL;
	k = prov_key_new(from->pc, from->type);
	if (!k)
		return NULL;
	if (!EVP_PKEY_up_ref(from->pub)) {
		prov_key_free(k);
		return NULL;
	}
	k->pub = from->pub;
	k->bits = from->bits;
	if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY)
		memcpy(k->label, from->label, sizeof(k->label));
	return k;
}

static const char *km_rsa_query_operation_name(int operation_id)
{
	return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static const char *km_ec_query_operation_name(int operation_id)
{
	return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

const OSSL_DISPATCH prov_rsa_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_rsa_new},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_rsa_gettable_params},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_rsa_port_types},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_rsa_port_types},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_rsa_query_operation_name},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},
    {0, NULL},
};

const OSSL_DISPATCH prov_ec_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_ec_new},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_ec_gettable_params},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_ec_port_types},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_ec_port_types},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_ec_query_operation_name},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},
    {0, NULL},
};
