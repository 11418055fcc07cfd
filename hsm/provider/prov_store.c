/*
 * Store loader for keyd:label=NAME (or keyd:NAME): asks keyd for the public
 * key and hands OpenSSL a key object by reference, so that our keymgmt's
 * load() turns it into the EVP_PKEY and nothing private crosses over.
 */
#include "prov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>

#define URI_SCHEME "keyd:"
#define URI_LABEL "label="

struct store_ctx {
	struct prov_ctx *pc;
	char label[KEYD_LABEL_MAX + 1];
	int expect; /* OSSL_STORE_INFO_*, 0: anything */
	int done;
};

/* Parse the URI into label: keyd:label=NAME or keyd:NAME, nothing else. */
static int store_parse_uri(struct prov_ctx *pc, const char *uri, char *label, size_t size)
{
	const char *rest;

	if (strncasecmp(uri, URI_SCHEME, strlen(URI_SCHEME)) != 0) {
		prov_raise(pc, PROV_R_BAD_URI, "'%.200s': not a keyd: URI", uri);
		return 0;
	}
	rest = uri + strlen(URI_SCHEME);
	if (strncmp(rest, URI_LABEL, strlen(URI_LABEL)) == 0)
		rest += strlen(URI_LABEL);
	else if (strchr(rest, '=') || strchr(rest, ';') || strchr(rest, '/')) {
		prov_raise(pc, PROV_R_BAD_URI,
		           "'%.200s': expected keyd:label=NAME or keyd:NAME (the only "
		           "attribute is label)",
		           uri);
		return 0;
	}
	if (!keyd_label_valid(rest)) {
		prov_raise(pc, PROV_R_BAD_URI,
		           "'%.200s': key label must be 1 to %d of A-Z a-z 0-9 . _ -", uri,
		           KEYD_LABEL_MAX);
		return 0;
	}
	snprintf(label, size, "%s", rest);
	return 1;
}

static void *store_open(void *provctx, const char *uri)
{
	struct prov_ctx *pc = provctx;
	struct store_ctx *sc;

	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		prov_raise(pc, PROV_R_INTERNAL, "out of memory");
		return NULL;
	}
	sc->pc = pc;
	if (!store_parse_uri(pc, uri, sc->label, sizeof(sc->label))) {
		free(sc);
		return NULL;
	}
	return sc;
}

static const OSSL_PARAM store_settable[] = {
    OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
	(void)provctx;
	return store_settable;
}

/* Only "expect" matters; other criteria are not settable, so OpenSSL does
 * not offer them to us. */
static int store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
	struct store_ctx *sc = loaderctx;
	const OSSL_PARAM *p;

	p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
	if (p && !OSSL_PARAM_get_int(p, &sc->expect)) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "store parameter expect is not an integer");
		return 0;
	}
	return 1;
}

static int store_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	struct store_ctx *sc = loaderctx;
	struct prov_ctx *pc = sc->pc;
	struct keyd_client *client;
	struct keyd_key *kk = NULL;
	struct keyd_err err = {0};
	struct prov_key *key = NULL;
	int type = OSSL_OBJECT_PKEY;
	OSSL_PARAM params[6];
	size_t n = 0;
	char desc[KEYD_LABEL_MAX + 32];
	int ok = 0;

	(void)pw_cb;
	(void)pw_cbarg;
	/* One object per URI; and after a failure, eof so callers stop asking. */
	if (sc->done)
		return 0;
	sc->done = 1;
	if (sc->expect != 0 && sc->expect != OSSL_STORE_INFO_PKEY &&
	    sc->expect != OSSL_STORE_INFO_PUBKEY)
		return 1; /* a keyd: URI holds a key only: nothing of the kind asked for */
	client = prov_client(pc);
	if (!client)
		return 0;
	kk = malloc(sizeof(*kk)); /* about 1 kB: keep it off small thread stacks */
	if (!kk) {
		prov_raise(pc, PROV_R_INTERNAL, "out of memory");
		return 0;
	}
	if (keyd_client_get_pubkey(client, sc->label, kk, &err) != KEYD_OK) {
		prov_raise_keyd(pc, &err, "loading keyd URI", sc->label);
		goto done;
	}
	key = prov_key_from_keyd(pc, kk);
	if (!key)
		goto done;
	snprintf(desc, sizeof(desc), "keyd key %s", key->label);
	params[n++] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
	                                               (char *)prov_key_type_name(key->type), 0);
	if (sc->expect == OSSL_STORE_INFO_PUBKEY) {
		/*
		 * OpenSSL makes an OSSL_STORE_INFO_PUBKEY only from a key it
		 * decodes itself; a key by reference always becomes a PKEY,
		 * which it then drops as not what was expected. So a caller
		 * that asks for the public key only (openssl -pubin) gets the
		 * SubjectPublicKeyInfo by value.
		 */
		params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
		                                               "SubjectPublicKeyInfo", 0);
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, kk->spki,
		                                                kk->spki_len);
	} else {
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &key,
		                                                sizeof(key));
	}
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC, desc, 0);
	params[n] = OSSL_PARAM_construct_end();
	/* Our keymgmt's load() takes its own reference; ours is dropped below. */
	ok = object_cb(params, object_cbarg);
done:
	prov_key_free(key);
	free(kk);
	return ok;
}

static int store_eof(void *loaderctx)
{
	return ((struct store_ctx *)loaderctx)->done;
}

static int store_close(void *loaderctx)
{
	free(loaderctx);
	return 1;
}

const OSSL_DISPATCH prov_store_functions[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable_ctx_params},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close},
    {0, NULL},
};
