/*
 * hsmca-keyd's server. An acceptor loop identifies each peer with SO_PEERCRED
 * and hands the socket to one of the workers. Each worker runs its own libevent
 * loop and owns one PKCS#11 session: it parses frames, checks the ACL, answers
 * cheap requests at once and queues signatures in a bounded queue that it
 * works off itself, so a signature never changes threads. Key generation
 * (seconds long) runs on a generator thread.
 */
#ifndef HSMCA_KEYD_SERVER_H
#define HSMCA_KEYD_SERVER_H

#include "keyd_config.h"
#include "keyd_token.h"

struct event_base;

struct keyd_server;

/* Binds the socket (replacing a stale one) and starts the workers. */
struct keyd_server *keyd_server_new(const struct keyd_config *cfg, struct keyd_token *tok,
                                    char *err, size_t errlen);
/* Runs until keyd_server_stop (the daemon calls it on SIGTERM and SIGINT). */
int keyd_server_run(struct keyd_server *s);
void keyd_server_stop(struct keyd_server *s);
/* The acceptor's event base, on which keyd_server_run runs: where the daemon watches signals. */
struct event_base *keyd_server_base(struct keyd_server *s);
/* Stops workers, closes connections, removes the socket. */
void keyd_server_free(struct keyd_server *s);

#endif
