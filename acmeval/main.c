/* hsmca-acmevald: reads its configuration, switches to its user, listens on its Unix socket
 * and starts its workers, then confines itself (seccomp: sockets and connect for the checks,
 * no bind) and validates ACME challenges for hsmca-cad until SIGTERM or SIGINT. Its workers
 * block in their own poll, so the scaffold watches the signals on a thread of its own.
 * daemon_main.h is how every daemon starts; docs/acmeval.md describes the configuration. */
#include <stdio.h>

#include "acmevald.h"
#include "daemon_main.h"

static const struct sandbox_profile acmevald_sandbox = {"hsmca-acmevald", SANDBOX_NET_CLIENT};

struct acmevald_main {
	struct acmeval_config cfg;
	struct acmevald *d;
};

static int load(void *ctx, const char *path, char *err, size_t errlen)
{
	return acmeval_config_load(path, &((struct acmevald_main *)ctx)->cfg, err, errlen);
}

static void note(void *ctx, char *out, size_t outlen)
{
	struct acmevald_main *m = ctx;

	snprintf(out, outlen, "(%zu allowed ranges, %zu hosts entries)", m->cfg.nallow,
	         m->cfg.nhosts);
}

static const struct sandbox_config *sandbox_of(void *ctx)
{
	return &((struct acmevald_main *)ctx)->cfg.sandbox;
}

static int make(void *ctx, char *err, size_t errlen)
{
	struct acmevald_main *m = ctx;

	return acmevald_new(&m->cfg, &m->d, err, errlen);
}

static void stop(void *ctx)
{
	acmevald_stop(((struct acmevald_main *)ctx)->d);
}

static int run(void *ctx)
{
	return acmevald_run(((struct acmevald_main *)ctx)->d);
}

static void cleanup(void *ctx)
{
	struct acmevald_main *m = ctx;

	acmevald_free(m->d);
	m->d = NULL;
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
	    .name = "hsmca-acmevald",
	    .doc = "docs/acmeval.md",
	    .help = "Validates ACME challenges (http-01, dns-01, tls-alpn-01) for hsmca-cad.\n",
	    .sandbox = &acmevald_sandbox,
	    .user_switch = DAEMON_USER_BEFORE_MAKE,
	    .config_load = load,
	    .check_note = note,
	    .sandbox_config = sandbox_of,
	    .make = make,
	    .stop = stop,
	    .run = run,
	    .cleanup = cleanup,
	};
	static struct acmevald_main m;

	return daemon_main(&def, &m, argc, argv);
}
