/* hsmca-ocspd: the OCSP responder. Reads its configuration, loads the keyd provider (every
 * signing key stays in the HSM behind keyd), switches to its user, then serves OCSP over HTTP
 * under its sandbox until SIGTERM or SIGINT. daemon_main.h is how every daemon starts. */
#include <stdlib.h>

#include "daemon_main.h"
#include "ocspd.h"

static const struct sandbox_profile ocspd_sandbox = {"hsmca-ocspd", SANDBOX_NET_INET};

struct ocspd_main {
	struct ocspd_config cfg;
	struct ocspd *d;
};

static int load(void *ctx, const char *path, char *err, size_t errlen)
{
	return ocspd_config_load(path, &((struct ocspd_main *)ctx)->cfg, err, errlen);
}

static const struct sandbox_config *sandbox_of(void *ctx)
{
	return &((struct ocspd_main *)ctx)->cfg.sandbox;
}

static int make(void *ctx, char *err, size_t errlen)
{
	struct ocspd_main *m = ctx;

	return ocspd_new(&m->cfg, &m->d, err, errlen);
}

static struct event_base *base(void *ctx)
{
	return ocspd_base(((struct ocspd_main *)ctx)->d);
}

static void stop(void *ctx)
{
	ocspd_stop(((struct ocspd_main *)ctx)->d);
}

static int run(void *ctx)
{
	return ocspd_run(((struct ocspd_main *)ctx)->d);
}

static void cleanup(void *ctx)
{
	ocspd_free(((struct ocspd_main *)ctx)->d);
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
	    .name = "hsmca-ocspd",
	    .doc = "docs/ocspd.md",
	    .help =
	        "The keyd provider finds keyd by $HSMCA_KEYD_SOCKET or its openssl.cnf section;\n"
	        "the database is the configuration's \"database\" or libpq's environment.\n",
	    .providers = 1,
	    .sandbox = &ocspd_sandbox,
	    .user_switch = DAEMON_USER_BEFORE_MAKE,
	    .config_load = load,
	    .sandbox_config = sandbox_of,
	    .make = make,
	    .base = base,
	    .stop = stop,
	    .run = run,
	    .cleanup = cleanup,
	};
	static struct ocspd_main m;

	return daemon_main(&def, &m, argc, argv);
}
