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
#include "daemon.h"
#include "log.h"
#include "sandbox.h"

static const struct sandbox_profile cad_sandbox = {"hsmca-cad", SANDBOX_NET_INET};

/* cad_new for sandbox_start. */
struct made {
	struct cad_config *cfg;
	struct cad *cad;
};

static int make(void *arg, char *err, size_t errlen)
{
	struct made *m = arg;

	return cad_new(m->cfg, &m->cad, err, errlen);
}

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
	        "  --issue PROFILE --csr FILE [--days N]\n"
	        "                 issue one certificate by the API's own path (checked, reserved,\n"
	        "                 signed through keyd, stored, audited as the local user) without\n"
	        "                 serving, e.g. hsmca-cad's own TLS certificate; PEM on stdout\n"
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
	                                     {"issue", required_argument, NULL, 'i'},
	                                     {"csr", required_argument, NULL, 'r'},
	                                     {"days", required_argument, NULL, 'd'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	OSSL_PROVIDER *keyd = NULL, *deflt = NULL;
	const char *config = NULL, *admin = NULL, *admin_cert = NULL, *issue = NULL, *csr = NULL;
	long days = 0;
	struct cad *cad = NULL;
	int check = 0, level = LOG_INFO, c, rc = 1;
	char err[1024];
	struct made mk = {0};

	while ((c = getopt_long(argc, argv, "c:kvhb:a:i:r:d:", opts, NULL)) != -1) {
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
		case 'i':
			issue = optarg;
			break;
		case 'r':
			csr = optarg;
			break;
		case 'd': {
			char *end;
			days = strtol(optarg, &end, 10);
			if (*end || end == optarg || days < 1 || days > 36500) {
				fprintf(stderr,
				        "hsmca-cad: --days needs a whole number 1..36500\n");
				free(cfg);
				return 2;
			}
			break;
		}
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
	if (!config || optind != argc || !cfg || !admin != !admin_cert || !issue != !csr ||
	    (days && !issue) || (admin && issue)) {
		usage(stderr);
		free(cfg);
		return 2;
	}
	log_init("hsmca-cad", level);
	signal(SIGPIPE, SIG_IGN);
	if (daemon_providers_load(&deflt, &keyd) != 0)
		goto out;
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
	if (issue) {
		char *pem = NULL;
		FILE *f = fopen(csr, "r");
		long n = -1;
		struct ca_profile *p = cad_profile_find(cfg, issue);
		if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= 65536 &&
		    fseek(f, 0, SEEK_SET) == 0 && (pem = calloc(1, (size_t)n + 1)) &&
		    fread(pem, 1, (size_t)n, f) == (size_t)n) {
			rc = cad_issue_offline(cfg, issue, pem,
			                       days ? (int)days : (p ? p->max_validity_days : 1),
			                       stdout, err, sizeof(err)) == 0
			         ? 0
			         : 1;
			if (rc)
				log_error("--issue: %s", err);
		} else {
			log_error("--issue: cannot read the CSR %s (at most 64 KiB)", csr);
		}
		if (f)
			fclose(f);
		free(pem);
		goto out;
	}
	if (check) {
		printf("%s: configuration is valid\n", config);
		rc = 0;
		goto out;
	}
	mk.cfg = cfg;
	if (sandbox_start(&cfg->sandbox, &cad_sandbox, make, &mk, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	cad = mk.cad;
	rc = cad_run(cad) == 0 ? 0 : 1;
	log_info("stopped");
out:
	cad_free(cad);
	cad_config_free(cfg);
	free(cfg);
	daemon_providers_unload(deflt, keyd);
	return rc;
}
