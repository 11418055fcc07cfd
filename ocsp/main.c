/* hsmca-ocspd: the OCSP responder. Reads its configuration, loads the keyd provider (every
 * signing key stays in the HSM behind keyd) and serves OCSP over HTTP. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "daemon.h"
#include "log.h"
#include "ocspd.h"
#include "sandbox.h"

static const struct sandbox_profile ocspd_sandbox = {"hsmca-ocspd", SANDBOX_NET_INET};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: hsmca-ocspd --config FILE [--check] [--verbose]\n"
	        "  --config FILE  the configuration (docs/ocspd.md)\n"
	        "  --check        read and check the configuration, then exit\n"
	        "  --verbose      log debug messages\n"
	        "The keyd provider finds keyd by $HSMCA_KEYD_SOCKET or its openssl.cnf section;\n"
	        "the database is the configuration's \"database\" or libpq's environment.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"check", no_argument, NULL, 'k'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct ocspd_config *cfg = calloc(1, sizeof(*cfg));
	OSSL_PROVIDER *keyd = NULL, *deflt = NULL;
	const char *config = NULL;
	struct ocspd *d = NULL;
	int check = 0, level = LOG_INFO, c, rc = 1;
	char err[1024];

	while ((c = getopt_long(argc, argv, "c:kvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
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
	if (!config || optind != argc || !cfg) {
		usage(stderr);
		free(cfg);
		return 2;
	}
	log_init("hsmca-ocspd", level);
	signal(SIGPIPE, SIG_IGN);
	if (ocspd_config_load(config, cfg, err, sizeof(err)) != 0) {
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
	/* The configured user before anything connects: keyd and PostgreSQL identify a Unix-socket
	 * peer when it connects, so a connection made as root would keep root's grants after the
	 * switch (docs/sandbox.md). */
	if (sandbox_drop_user(&cfg->sandbox, err, sizeof(err)) != 0) {
		log_error("sandbox: %s", err);
		goto out;
	}
	if (ocspd_new(cfg, &d, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	/* Listening, connected, keys and providers in place: drop to the configured user and
	 * confine the rest of the process's life (docs/sandbox.md). */
	if (sandbox_apply(&cfg->sandbox, &ocspd_sandbox, err, sizeof(err)) != 0) {
		log_error("sandbox: %s", err);
		goto out;
	}
	rc = ocspd_run(d) == 0 ? 0 : 1;
	log_info("stopped");
out:
	ocspd_free(d);
	free(cfg);
	daemon_providers_unload(deflt, keyd);
	return rc;
}
