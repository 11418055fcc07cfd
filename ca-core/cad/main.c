/* hsmca-cad: the CA service. Reads its configuration, loads the keyd provider (every CA key
 * is used through it; none is ever in this process), and serves the HTTPS API. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "cad.h"
#include "log.h"
#include "sandbox.h"

static const struct sandbox_profile cad_sandbox = {"hsmca-cad", SANDBOX_NET_INET};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: hsmca-cad --config FILE [--check] [--verbose]\n"
	        "       hsmca-cad --config FILE --bootstrap-admin NAME --admin-cert FILE\n"
	        "  --config FILE  the configuration (docs/cad.md)\n"
	        "  --check        read and check the configuration, then exit\n"
	        "  --bootstrap-admin NAME --admin-cert FILE\n"
	        "                 register the first ca-admin (by its client certificate) in a\n"
	        "                 database that has none, then exit\n"
	        "  --verbose      log debug messages\n"
	        "The keyd provider finds keyd by $HSMCA_KEYD_SOCKET or its openssl.cnf section;\n"
	        "the database is the configuration's \"database\" or libpq's environment.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"check", no_argument, NULL, 'k'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"bootstrap-admin", required_argument, NULL, 'b'},
	                                     {"admin-cert", required_argument, NULL, 'a'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	OSSL_PROVIDER *keyd = NULL, *deflt = NULL;
	const char *config = NULL, *admin = NULL, *admin_cert = NULL;
	struct cad *cad = NULL;
	int check = 0, level = LOG_INFO, c, rc = 1;
	char err[1024];

	while ((c = getopt_long(argc, argv, "c:kvhb:a:", opts, NULL)) != -1) {
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
		case 'b':
			admin = optarg;
			break;
		case 'a':
			admin_cert = optarg;
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
	if (!config || optind != argc || !cfg || !admin != !admin_cert) {
		usage(stderr);
		free(cfg);
		return 2;
	}
	log_init("hsmca-cad", level);
	signal(SIGPIPE, SIG_IGN);
	deflt = OSSL_PROVIDER_load(NULL, "default");
	keyd = OSSL_PROVIDER_load(NULL, "keyd");
	if (!deflt || !keyd) {
		log_error(
		    "cannot load the OpenSSL providers (default and keyd); set OPENSSL_MODULES "
		    "to the folder of keyd.so if it is not installed");
		ERR_print_errors_fp(stderr);
		goto out;
	}
	/* Ordinary keys (the CSRs', a file TLS key) stay with the default provider. */
	EVP_set_default_properties(NULL, "?provider=default");
	if (cad_config_load(config, cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (admin) {
		rc = cad_bootstrap_admin(cfg, admin, admin_cert, err, sizeof(err)) == 0 ? 0 : 1;
		if (rc)
			log_error("bootstrap: %s", err);
		else
			printf("principal %s registered as ca-admin\n", admin);
		goto out;
	}
	if (check) {
		printf("%s: configuration is valid\n", config);
		rc = 0;
		goto out;
	}
	/* The configured user before anything connects: keyd and PostgreSQL identify a Unix-socket
	 * peer when it connects, so a connection made as root would keep root's grants after the
	 * switch. (The listener therefore binds as that user too: a port below 1024 needs
	 * systemd's socket or a port redirect, docs/sandbox.md.) */
	if (sandbox_drop_user(&cfg->sandbox, err, sizeof(err)) != 0) {
		log_error("sandbox: %s", err);
		goto out;
	}
	if (cad_new(cfg, &cad, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	/* Listening, TLS credential read, database and keyd reached: confine the rest of the
	 * process's life. */
	if (sandbox_apply(&cfg->sandbox, &cad_sandbox, err, sizeof(err)) != 0) {
		log_error("sandbox: %s", err);
		goto out;
	}
	rc = cad_run(cad) == 0 ? 0 : 1;
	log_info("stopped");
out:
	cad_free(cad);
	cad_config_free(cfg);
	free(cfg);
	OSSL_PROVIDER_unload(keyd);
	OSSL_PROVIDER_unload(deflt);
	return rc;
}
