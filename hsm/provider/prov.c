/*
 * The keyd OpenSSL 3 provider: entry point, algorithm tables, provider
 * context and error reporting. Keys are reached as keyd:label=NAME through
 * the store; signing sends a digest to hsmca-keyd, which signs in the HSM.
 */
#include "prov.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#ifndef HSMCA_VERSION
#define HSMCA_VERSION "unknown"
#endif

static const OSSL_ALGORITHM prov_keymgmts[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, prov_rsa_keymgmt_functions,
     "RSA key held by hsmca-keyd"},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", PROV_PROPS, prov_ec_keymgmt_functions,
     "EC key held by hsmca-keyd"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_signatures[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROV_PROPS, prov_rsa_signature_functions,
     "RSA PKCS#1 v1.5 and PSS signatures by hsmca-keyd"},
    {"ECDSA", PROV_PROPS, prov_ecdsa_signature_functions, "ECDSA signatures by hsmca-keyd"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_stores[] = {
    {"keyd", PROV_PROPS, prov_store_functions, "keys held by hsmca-keyd: keyd:label=NAME"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ITEM prov_reason_strings[] = {
    {PROV_R_NO_SOCKET, "no keyd socket configured"},
    {PROV_R_KEYD_UNREACHABLE, "keyd unreachable"},
    {PROV_R_KEYD_DENIED, "denied by keyd"},
    {PROV_R_KEYD_NO_KEY, "no such key in keyd"},
    {PROV_R_KEYD_FAILED, "keyd operation failed"},
    {PROV_R_BAD_URI, "bad keyd URI"},
    {PROV_R_BAD_KEY, "key unusable for this operation"},
    {PROV_R_UNSUPPORTED_DIGEST, "unsupported digest"},
    {PROV_R_BAD_PARAMETER, "unsupported parameter value"},
    {PROV_R_PRIVATE_KEY_EXPORT, "private key stays in the HSM"},
    {PROV_R_BUFFER_TOO_SMALL, "output buffer too small"},
    {PROV_R_INTERNAL, "internal error"},
    {0, NULL},
};

static const OSSL_PARAM prov_param_types[] = {
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
    OSSL_PARAM_END,
};

void prov_raise_at(struct prov_ctx *pc, const char *file, int line, const char *func, int reason,
                   const char *fmt, ...)
{
	va_list ap;

	if (!pc || !pc->new_error || !pc->set_error_debug || !pc->vset_error)
		return;
	pc->new_error(pc->handle);
	pc->set_error_debug(pc->handle, file, line, func);
	va_start(ap, fmt);
	pc->vset_error(pc->handle, (uint32_t)reason, fmt, ap);
	va_end(ap);
}

void prov_raise_keyd_at(struct prov_ctx *pc, const char *file, int line, const char *func,
                        const struct keyd_err *err, const char *what, const char *label)
{
	int reason;

	switch (err->status) {
	case KEYD_E_UNREACHABLE:
		reason = PROV_R_KEYD_UNREACHABLE;
		break;
	case KEYD_E_DENIED:
		reason = PROV_R_KEYD_DENIED;
		break;
	case KEYD_E_NO_KEY:
		reason = PROV_R_KEYD_NO_KEY;
		break;
	default:
		reason = PROV_R_KEYD_FAILED;
		break;
	}
	prov_raise_at(pc, file, line, func, reason, "%s, key '%s': %s", what, label, err->msg);
}

struct keyd_client *prov_client(struct prov_ctx *pc)
{
	struct keyd_client *c;
	const char *path;

	pthread_mutex_lock(&pc->lock);
	if (!pc->client) {
		/* Read at first use, not at load, so a program may set the
		 * variable after loading the provider. */
		path = pc->socket ? pc->socket : getenv("HSMCA_KEYD_SOCKET");
		if (!path || !*path)
			prov_raise(pc, PROV_R_NO_SOCKET,
			           "set socket= in the provider's openssl.cnf section or "
			           "HSMCA_KEYD_SOCKET");
		else if (!(pc->client = keyd_client_new(path, pc->timeout_ms)))
			prov_raise(pc, PROV_R_NO_SOCKET,
			           "cannot use keyd socket '%s' (path too long or out of memory)",
			           path);
	}
	c = pc->client;
	pthread_mutex_unlock(&pc->lock);
	return c;
}

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
	(void)provctx;
	return prov_param_types;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
	OSSL_PARAM *p;

	(void)provctx;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
	if (p && !OSSL_PARAM_set_utf8_ptr(p, "hsmca keyd provider"))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
	if (p && !OSSL_PARAM_set_utf8_ptr(p, HSMCA_VERSION))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
	if (p && !OSSL_PARAM_set_utf8_ptr(p, "hsmca " HSMCA_VERSION))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
	if (p && !OSSL_PARAM_set_int(p, 1))
		return 0;
	return 1;
}

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (operation_id) {
	case OSSL_OP_KEYMGMT:
		return prov_keymgmts;
	case OSSL_OP_SIGNATURE:
		return prov_signatures;
	case OSSL_OP_STORE:
		return prov_stores;
	}
	return NULL;
}

static const OSSL_ITEM *prov_get_reason_strings(void *provctx)
{
	(void)provctx;
	return prov_reason_strings;
}

static void prov_ctx_free(struct prov_ctx *pc)
{
	if (!pc)
		return;
	keyd_client_free(pc->client);
	if (pc->swdefault)
		OSSL_PROVIDER_unload(pc->swdefault);
	OSSL_LIB_CTX_free(pc->swctx);
	free(pc->socket);
	pthread_mutex_destroy(&pc->lock);
	free(pc);
}

static void prov_teardown(void *provctx)
{
	prov_ctx_free(provctx);
}

static const OSSL_DISPATCH prov_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_get_reason_strings},
    {0, NULL},
};

/* socket= and timeout_ms= from the provider's section of openssl.cnf. */
static int prov_read_config(struct prov_ctx *pc, OSSL_FUNC_core_get_params_fn *get_params)
{
	const char *sock = NULL, *timeout = NULL;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_utf8_ptr("socket", (char **)&sock, 0),
	    OSSL_PARAM_utf8_ptr("timeout_ms", (char **)&timeout, 0),
	    OSSL_PARAM_END,
	};
	char *end;
	long v;

	pc->timeout_ms = KEYD_DEFAULT_TIMEOUT_MS;
	if (!get_params || !get_params(pc->handle, params))
		return 1; /* no configuration: defaults */
	if (sock && *sock && !(pc->socket = strdup(sock))) {
		prov_raise(pc, PROV_R_INTERNAL, "out of memory");
		return 0;
	}
	if (timeout && *timeout) {
		errno = 0;
		v = strtol(timeout, &end, 10);
		if (errno || *end || v <= 0 || v > 3600000) {
			prov_raise(pc, PROV_R_BAD_PARAMETER,
			           "timeout_ms = '%s': expected milliseconds, 1 to 3600000",
			           timeout);
			return 0;
		}
		pc->timeout_ms = (int)v;
	}
	return 1;
}

__attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                                                              const OSSL_DISPATCH *in,
                                                              const OSSL_DISPATCH **out,
                                                              void **provctx)
{
	OSSL_FUNC_core_get_params_fn *get_params = NULL;
	struct prov_ctx *pc;

	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return 0;
	pthread_mutex_init(&pc->lock, NULL);
	pc->handle = handle;
	for (; in && in->function_id; in++) {
		switch (in->function_id) {
		case OSSL_FUNC_CORE_GET_PARAMS:
			get_params = OSSL_FUNC_core_get_params(in);
			break;
		case OSSL_FUNC_CORE_NEW_ERROR:
			pc->new_error = OSSL_FUNC_core_new_error(in);
			break;
		case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
			pc->set_error_debug = OSSL_FUNC_core_set_error_debug(in);
			break;
		case OSSL_FUNC_CORE_VSET_ERROR:
			pc->vset_error = OSSL_FUNC_core_vset_error(in);
			break;
		}
	}
	if (!prov_read_config(pc, get_params))
		goto fail;
	pc->swctx = OSSL_LIB_CTX_new();
	if (!pc->swctx || !(pc->swdefault = OSSL_PROVIDER_load(pc->swctx, "default"))) {
		prov_raise(pc, PROV_R_INTERNAL,
		           "cannot load OpenSSL's default provider for public keys and digests");
		goto fail;
	}
	*out = prov_functions;
	*provctx = pc;
	return 1;
fail:
	prov_ctx_free(pc);
	return 0;
}
