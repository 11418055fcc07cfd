/*
 * In-process sandboxing shared by every daemon, so the confinement holds without systemd too:
 * after start-up a daemon drops to its configured user and group, sets no_new_privs, and
 * installs a seccomp filter (libseccomp) that allows only the system calls its profile names.
 * docs/sandbox.md lists what each profile allows and why.
 *
 * Denied calls fail with EPERM, so a library that probes for a feature gets a clean error and
 * the daemon logs it; calls that only an attacker wants (exec, ptrace, module loading, mount,
 * namespaces, changing identity again, ...) kill the whole process instead.
 */
#ifndef HSMCA_SANDBOX_H
#define HSMCA_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "yconf.h"

/* The configuration keys `user:`, `group:` and `seccomp:` of a daemon's YAML, resolved. */
struct sandbox_config {
	char user[64];  /* "" when no user is configured */
	char group[64]; /* "" means the user's primary group */
	uid_t uid;
	gid_t gid;
	int seccomp; /* default 1 */
	/* Not read from YAML here: set by the daemon from its own configuration (keyd's
	 * `module_ipc: true`). The filter then also allows connect() (on the sockets the profile
	 * lets the process make: Unix sockets only for keyd) and shared memory (System V's shmget,
	 * shmat, shmdt, and msync), for a PKCS#11 module that reaches its token through a local
	 * service and connects again when keyd re-initialises it (openCryptoki's pkcsslotd,
	 * tpm2-abrmd over D-Bus). Default 0. */
	int module_ipc;
};

/* What a daemon's filter allows beyond the common base (files, memory, threads, time, event
 * loops, Unix-socket servers). */
enum sandbox_net {
	/* Only AF_UNIX sockets; no connect(). hsmca-keyd: it has no network at all. */
	SANDBOX_NET_UNIX_SERVER,
	/* AF_UNIX, AF_INET and AF_INET6 sockets (and AF_NETLINK, which getaddrinfo uses to see
	 * the host's addresses), connect, bind and listen: cad, ocspd and crld, which talk to
	 * PostgreSQL and keyd and serve HTTP. */
	SANDBOX_NET_INET,
	/* AF_UNIX, AF_INET and AF_INET6 sockets and connect, but no bind and no AF_NETLINK: a
	 * daemon that serves a Unix socket bound before the filter and only makes outbound
	 * connections afterwards (hsmca-acmevald's challenge checks and DNS queries). */
	SANDBOX_NET_CLIENT,
};

struct sandbox_profile {
	const char *name; /* for logs: "hsmca-keyd" */
	enum sandbox_net net;
};

/* Read the optional `user`, `group` and `seccomp` keys (add the three to the daemon's list of
 * allowed top-level fields) of a configuration's top-level map,
 * resolving names through the user database. 0, or -1 with y->err naming the field. */
int sandbox_config_read(struct yconf *y, yaml_node_t *root, struct sandbox_config *out);
/* Defaults: no user, seccomp on. */
void sandbox_config_init(struct sandbox_config *c);

/* Drop to the configured user and group: setgroups (the user's supplementary groups),
 * setgid, setuid, then check that root cannot be regained. With no user configured this
 * changes nothing (and the caller should warn if it runs as root). If a user is configured
 * and the process is that user already, nothing needs to change; if it is another user
 * without the privilege to switch, or any step fails, returns -1 with err filled, and the
 * daemon must exit rather than keep running with more privilege than configured. */
int sandbox_drop_user(const struct sandbox_config *c, char *err, size_t errlen);

/* Set PR_SET_NO_NEW_PRIVS and, if c->seccomp, install the profile's filter on every thread
 * of the process (seccomp's TSYNC). 0, or -1 with err filled. */
int sandbox_seccomp(const struct sandbox_config *c, const struct sandbox_profile *p, char *err,
                    size_t errlen);

/* Both, in that order, with a log line saying what was done: what a daemon calls once its
 * start-up (configuration, keys, listening sockets, PKCS#11 login) is over. */
int sandbox_apply(const struct sandbox_config *c, const struct sandbox_profile *p, char *err,
                  size_t errlen);

/* A daemon made under its sandbox, in the one order that works: the configured user first,
 * before anything connects (keyd and PostgreSQL identify a Unix-socket peer when it connects,
 * so a connection made as root would keep root's grants after the switch; the listener binds
 * as that user too: a port below 1024 needs systemd's socket or a port redirect), then make
 * (listening, connecting, loading keys), then sandbox_apply for the rest of the process's
 * life (docs/sandbox.md). 0, or -1 with err filled (make's own text, or "sandbox: ..."). */
int sandbox_start(const struct sandbox_config *c, const struct sandbox_profile *p,
                  int (*make)(void *arg, char *err, size_t errlen), void *arg, char *err,
                  size_t errlen);

/* 1 when this build's filter lets the sanitizers' runtime do what it needs at exit (LeakSanitizer
 * stops the world with ptrace from a cloned tracer), which a production build forbids. */
int sandbox_sanitizer_build(void);

#endif
