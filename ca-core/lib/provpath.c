/* Finding keyd.so: an explicit folder, the build tree's, or OpenSSL's own search. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "provpath.h"

/* meson compiles both in (ca-core/lib/meson.build). */
#ifndef HSMCA_BUILD_ROOT
#define HSMCA_BUILD_ROOT ""
#endif
#ifndef HSMCA_BUILD_PROVIDER_DIR
#define HSMCA_BUILD_PROVIDER_DIR ""
#endif

/* Does the running program live below the build root? Installed copies do not. */
static int running_from_build_tree(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t root = strlen(HSMCA_BUILD_ROOT);

	if (n <= 0 || root == 0)
		return 0;
	exe[n] = '\0';
	return strncmp(exe, HSMCA_BUILD_ROOT, root) == 0 && exe[root] == '/';
}

const char *provpath_keyd_dir(char *buf, size_t bufsz)
{
	const char *env = getenv("HSMCA_PROVIDER_DIR");
	char so[PATH_MAX];

	if (env && *env) {
		snprintf(buf, bufsz, "%s", env);
		return buf;
	}
	snprintf(so, sizeof(so), "%s/keyd.so", HSMCA_BUILD_PROVIDER_DIR);
	if (running_from_build_tree() && access(so, R_OK) == 0) {
		snprintf(buf, bufsz, "%s", HSMCA_BUILD_PROVIDER_DIR);
		return buf;
	}
	return NULL;
}

OSSL_PROVIDER *provpath_load_keyd(OSSL_LIB_CTX *ctx, char *err, size_t errsz)
{
	char dir[PATH_MAX];
	const char *d = provpath_keyd_dir(dir, sizeof(dir));
	const char *modules = getenv("OPENSSL_MODULES");
	OSSL_PROVIDER *p;

	/* The provider must be loaded under its name, "keyd", not by file name: callers
	 * select its keys with the property query "provider=keyd". */
	if (d && !OSSL_PROVIDER_set_default_search_path(ctx, d)) {
		snprintf(err, errsz, "cannot make %s OpenSSL's provider folder", d);
		return NULL;
	}
	p = OSSL_PROVIDER_load(ctx, "keyd");
	if (!p)
		snprintf(
		    err, errsz,
		    "cannot load the keyd OpenSSL provider (keyd.so) from %s%s: install it with "
		    "'meson install', or set HSMCA_PROVIDER_DIR to the folder that holds it "
		    "(build/hsm/provider in a build tree)",
		    d                     ? d
		    : modules && *modules ? modules
		                          : "OpenSSL's modules folder",
		    d                     ? ""
		    : modules && *modules ? " (OPENSSL_MODULES)"
		                          : "");
	return p;
}

int provpath_load_providers(OSSL_PROVIDER **deflt, OSSL_PROVIDER **keyd, char *err, size_t errsz)
{
	*keyd = NULL;
	if (!(*deflt = OSSL_PROVIDER_load(NULL, "default"))) {
		snprintf(err, errsz, "cannot load OpenSSL's default provider");
		return -1;
	}
	if (!(*keyd = provpath_load_keyd(NULL, err, errsz)))
		return -1;
	if (!EVP_set_default_properties(NULL, "?provider=default")) {
		snprintf(err, errsz, "cannot set OpenSSL's default properties");
		return -1;
	}
	return 0;
}
