/*
 * Where hsmca's programs find keyd's OpenSSL provider (keyd.so), so that
 * nobody has to export OPENSSL_MODULES for a whole shell (which makes every
 * other OpenSSL build look for its own providers in hsmca's folder):
 *   1. $HSMCA_PROVIDER_DIR, when set (an explicit choice, as the tests make);
 *   2. the build tree's hsm/provider, when the program runs from the build
 *      tree it was built in (/proc/self/exe below meson's build root);
 *   3. otherwise OpenSSL's own search: $OPENSSL_MODULES or the installed
 *      ossl-modules folder, where `meson install` puts keyd.so.
 */
#ifndef HSMCA_PROVPATH_H
#define HSMCA_PROVPATH_H

#include <stddef.h>

#include <openssl/provider.h>

/* The folder to load keyd.so from, in buf; NULL when OpenSSL's own search applies (3.). */
const char *provpath_keyd_dir(char *buf, size_t bufsz);

/* Load the keyd provider into ctx (NULL: the default library context) from that folder,
 * which becomes ctx's provider search path. NULL on failure, with where it looked in err
 * and OpenSSL's error queue left for the caller. */
OSSL_PROVIDER *provpath_load_keyd(OSSL_LIB_CTX *ctx, char *err, size_t errsz);

/* What every hsmca program that signs through keyd loads: OpenSSL's default provider and
 * keyd's (as above), in the default library context, with ordinary keys (CSRs', TLS key files,
 * verification) kept with the default one; keyd keys come by URI only. 0, or -1 with why in
 * err and OpenSSL's error queue left for the caller. Either way *deflt and *keyd hold what was
 * loaded (NULL otherwise), for the caller to unload. */
int provpath_load_providers(OSSL_PROVIDER **deflt, OSSL_PROVIDER **keyd, char *err, size_t errsz);

#endif
