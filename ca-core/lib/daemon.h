/* Start-up steps every hsmca daemon that signs through keyd shares. */
#ifndef HSMCA_DAEMON_H
#define HSMCA_DAEMON_H

#include <netdb.h>

#include <openssl/provider.h>

/* Load OpenSSL's default provider and keyd's (keyd.so, found as provpath.h says:
 * HSMCA_PROVIDER_DIR, the build tree, or OpenSSL's modules folder), and keep ordinary keys (CSRs',
 * TLS files) with the default one. 0, or -1 after logging what is missing; unload with
 * daemon_providers_unload either way. */
int daemon_providers_load(OSSL_PROVIDER **deflt, OSSL_PROVIDER **keyd);
void daemon_providers_unload(OSSL_PROVIDER *deflt, OSSL_PROVIDER *keyd);

/* 0 when nothing listens on ai's address and port, else the errno of binding it (EADDRINUSE).
 * Daemons whose workers share a port with SO_REUSEPORT ask this first: that option would
 * otherwise let a second daemon of the same user join a taken port silently. */
int daemon_port_taken(const struct addrinfo *ai);

#endif
