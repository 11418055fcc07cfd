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

/* ocspd_new for sandbox_start. */
struct made {
	struct ocspd_config *cfg;
	struct ocspd *d;
};

static int make(void *arg, char *err, size_t errlen)
{
	struct made *m = arg;

	return ocspd_new(m->cfg, &m->d, err, errlen);
}

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
	struct made mk = {0};

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
	mk.cfg = cfg;
	if (sandbox_start(&cfg->sandbox, &ocspd_sandbox, make, &mk, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	d = mk.d;
	rc = ocspd_run(d) == 0 ? 0 : 1;
	log_info("stopped");
out:
	ocspd_free(d);
	free(cfg);
	daemon_providers_unload(deflt, keyd);
	return rc;
}
