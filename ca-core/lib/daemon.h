/* Start-up steps every hsmca daemon that signs through keyd shares. */
#ifndef HSMCA_DAEMON_H
#define HSMCA_DAEMON_H

#include <netdb.h>
#include <sys/types.h>

#include <openssl/provider.h>

/* provpath_load_providers (provpath.h), logging what is missing. 0, or -1; unload with
 * daemon_providers_unload either way. */
int daemon_providers_load(OSSL_PROVIDER **deflt, OSSL_PROVIDER **keyd);
void daemon_providers_unload(OSSL_PROVIDER *deflt, OSSL_PROVIDER *keyd);

/* 0 when nothing listens on ai's address and port, else the errno of binding it (EADDRINUSE).
 * Daemons whose workers share a port with SO_REUSEPORT ask this first: that option would
 * otherwise let a second daemon of the same user join a taken port silently. */
int daemon_port_taken(const struct addrinfo *ai);

/* A listening Unix stream socket (non-blocking, close-on-exec) that appears at path only once
 * it listens: bound under PATH.new (owner-only while it is made), given group gid (unless
 * (gid_t)-1) and mode, made to listen, then renamed onto path, replacing whatever socket is
 * there. A client that finds the path (a supervisor, a test, a daemon starting beside this
 * one) never meets a bound socket that does not listen yet, which refuses connections. A
 * PATH.new left by a daemon that died while making it is replaced; a path too long for the
 * suffix is bound as is. The descriptor, or -1 with err. */
int daemon_listen_unix(const char *path, gid_t gid, mode_t mode, int backlog, char *err,
                       size_t errlen);

#endif
