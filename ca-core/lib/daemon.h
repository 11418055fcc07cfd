/* Start-up steps every hsmca daemon that signs through keyd shares. */
#ifndef HSMCA_DAEMON_H
#define HSMCA_DAEMON_H

#include <netdb.h>

#include <openssl/provider.h>

/* provpath_load_providers (provpath.h), logging what is missing. 0, or -1; unload with
 * daemon_providers_unload either way. */
int daemon_providers_load(OSSL_PROVIDER **deflt, OSSL_PROVIDER **keyd);
void daemon_providers_unload(OSSL_PROVIDER *deflt, OSSL_PROVIDER *keyd);

/* 0 when nothing listens on ai's address and port, else the errno of binding it (EADDRINUSE).
 * Daemons whose workers share a port with SO_REUSEPORT ask this first: that option would
 * otherwise let a second daemon of the same user join a taken port silently. */
int daemon_port_taken(const struct addrinfo *ai);

#endif
