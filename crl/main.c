/* hsmca-crld: reads its configuration, loads the keyd provider (CA keys are used through it
 * only), switches to its user, then builds, publishes and serves CRLs under its sandbox until
 * SIGTERM or SIGINT, or publishes every CRL once and exits (--once). crld's loop waits on
 * PostgreSQL's announcements, not on an event base, so the scaffold watches the signals on a
 * thread of its own. daemon_main.h is how every daemon starts. */
#include "crld.h"
#include "daemon_main.h"

static const struct sandbox_profile crld_sandbox = {"hsmca-crld", SANDBOX_NET_INET};

struct crld_main {
	struct crld_config cfg;
	struct crld *c;
	int once; /* --once */
};

static int set_once(void *ctx, const char *arg)
{
	(void)arg;
	((struct crld_main *)ctx)->once = 1;
	return 0;
}

/* --once publishes; --check only reads the configuration. */
static int options_check(void *ctx, const struct daemon_args *args)
{
	return ((struct crld_main *)ctx)->once && args->check ? -1 : 0;
}

static int load(void *ctx, const char *path, char *err, size_t errlen)
{
	return crld_config_load(path, &((struct crld_main *)ctx)->cfg, err, errlen);
}

static const struct sandbox_config *sandbox_of(void *ctx)
{
	return &((struct crld_main *)ctx)->cfg.sandbox;
}

static int make(void *ctx, char *err, size_t errlen)
{
	struct crld_main *m = ctx;

	return crld_new(&m->cfg, &m->c, err, errlen);
}

static void stop(void *ctx)
{
	crld_stop(((struct crld_main *)ctx)->c);
}

static int run(void *ctx)
{
	struct crld_main *m = ctx;

	return m->once ? crld_publish_all(m->c) : crld_run(m->c);
}

static void cleanup(void *ctx)
{
	crld_free(((struct crld_main *)ctx)->c);
}

int main(int argc, char **argv)
{
	static const struct daemon_option options[] = {
	    {"once", 0, 'o', set_once},
	    {NULL, 0, 0, NULL},
	};
	static const struct daemon_def def = {
	    .name = "hsmca-crld",
	    .doc = "docs/crld.md",
	    .synopsis = "       hsmca-crld --config FILE --once [--verbose]\n",
	    .help =
	        "  --once         build and publish every CRL once, then exit (0: all published)\n"
	        "The keyd provider finds keyd by $HSMCA_KEYD_SOCKET or its openssl.cnf section;\n"
	        "the database is the configuration's \"database\" or libpq's environment.\n",
	    .options = options,
	    .providers = 1,
	    .sandbox = &crld_sandbox,
	    .user_switch = DAEMON_USER_BEFORE_MAKE,
	    .options_check = options_check,
	    .config_load = load,
	    .sandbox_config = sandbox_of,
	    .make = make,
	    .stop = stop,
	    .run = run,
	    .cleanup = cleanup,
	};
	static struct crld_main m;

	return daemon_main(&def, &m, argc, argv);
}
