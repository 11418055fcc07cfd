/* hsmca-crld: reads its configuration, loads the keyd provider (CA keys are used through it
 * only), then builds, publishes and serves CRLs until SIGTERM or SIGINT (or once, --once). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "crld.h"
#include "daemon.h"
#include "log.h"
#include "sandbox.h"

static const struct sandbox_profile crld_sandbox = {"hsmca-crld", SANDBOX_NET_INET};

static struct crld *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		crld_stop(running);
}

/* crld_new for sandbox_start. */
struct made {
	struct crld_config *cfg;
	struct crld *c;
};

static int make(void *arg, char *err, size_t errlen)
{
	struct made *m = arg;

	return crld_new(m->cfg, &m->c, err, errlen);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: hsmca-crld --config FILE [--once | --check] [--verbose]\n"
	        "  --config FILE  the configuration (docs/crld.md)\n"
	        "  --once         build and publish every CRL once, then exit (0: all published)\n"
	        "  --check        read and check the configuration, then exit\n"
	        "  --verbose      log debug messages\n"
	        "The keyd provider finds keyd by $HSMCA_KEYD_SOCKET or its openssl.cnf section;\n"
	        "the database is the configuration's \"database\" or libpq's environment.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"once", no_argument, NULL, 'o'},
	    {"check", no_argument, NULL, 'k'},        {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	struct crld_config *cfg = calloc(1, sizeof(*cfg));
	OSSL_PROVIDER *keyd = NULL, *deflt = NULL;
	const char *config = NULL;
	struct crld *c = NULL;
	int once = 0, check = 0, level = LOG_INFO, opt, rc = 1;
	char err[1024];
	struct made mk = {0};
	struct sigaction sa;

	while ((opt = getopt_long(argc, argv, "c:okvh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'o':
			once = 1;
			break;
		case 'k':
			check = 1;
			break;
		case 'v':
			level = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			free(cfg);
			return 0;
		default:
			usage(stderr);
			free(cfg);
			return 2;
		}
	}
	if (!config || optind != argc || !cfg || (once && check)) {
		usage(stderr);
		free(cfg);
		return 2;
	}
	log_init("hsmca-crld", level);
	signal(SIGPIPE, SIG_IGN);
	if (crld_config_load(config, cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (check) {
		printf("%s: configuration is valid\n", config);
		rc = 0;
		goto out;
	}
	if (daemon_providers_load(&deflt, &keyd) != 0)
		goto out;
	mk.cfg = cfg;
	if (sandbox_start(&cfg->sandbox, &crld_sandbox, make, &mk, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	c = mk.c;
	if (once) {
		rc = crld_publish_all(c) == 0 ? 0 : 1;
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	running = c;
	rc = crld_run(c) == 0 ? 0 : 1;
	running = NULL;
	log_info("stopped");
out:
	crld_free(c);
	free(cfg);
	daemon_providers_unload(deflt, keyd);
	return rc;
}
