/* hsmca-cad: the CA service. Reads its configuration, loads the keyd provider (every CA key
 * is used through it; none is ever in this process), switches to its user, then serves the
 * HTTPS API (and EST) under its sandbox until SIGTERM or SIGINT. Two commands use the same
 * configuration without serving: --bootstrap-admin registers the first ca-admin, --issue
 * issues one certificate by the API's own path. daemon_main.h is how every daemon starts. */
#include <stdio.h>
#include <stdlib.h>

#include "cad.h"
#include "daemon_main.h"
#include "log.h"

static const struct sandbox_profile cad_sandbox = {"hsmca-cad", SANDBOX_NET_INET};

struct cad_main {
	struct cad_config cfg;
	struct cad *cad;
	const char *admin, *admin_cert; /* --bootstrap-admin NAME --admin-cert FILE */
	const char *issue, *csr;        /* --issue PROFILE --csr FILE */
	long days;                      /* --days N, 0: the profile's longest */
};

static int set_admin(void *ctx, const char *arg)
{
	((struct cad_main *)ctx)->admin = arg;
	return 0;
}

static int set_admin_cert(void *ctx, const char *arg)
{
	((struct cad_main *)ctx)->admin_cert = arg;
	return 0;
}

static int set_issue(void *ctx, const char *arg)
{
	((struct cad_main *)ctx)->issue = arg;
	return 0;
}

static int set_csr(void *ctx, const char *arg)
{
	((struct cad_main *)ctx)->csr = arg;
	return 0;
}

static int set_days(void *ctx, const char *arg)
{
	struct cad_main *m = ctx;
	char *end;

	m->days = strtol(arg, &end, 10);
	if (*end || end == arg || m->days < 1 || m->days > 36500) {
		fprintf(stderr, "hsmca-cad: --days needs a whole number 1..36500\n");
		return -1;
	}
	return 0;
}

/* Each command's options come in pairs, and the two commands exclude each other. */
static int options_check(void *ctx, const struct daemon_args *args)
{
	struct cad_main *m = ctx;

	(void)args;
	return !m->admin != !m->admin_cert || !m->issue != !m->csr || (m->days && !m->issue) ||
	               (m->admin && m->issue)
	           ? -1
	           : 0;
}

static int load(void *ctx, const char *path, char *err, size_t errlen)
{
	return cad_config_load(path, &((struct cad_main *)ctx)->cfg, err, errlen);
}

static int bootstrap(struct cad_main *m)
{
	char err[1024];

	if (cad_bootstrap_admin(&m->cfg, m->admin, m->admin_cert, err, sizeof(err)) != 0) {
		log_error("bootstrap: %s", err);
		return 1;
	}
	printf("principal %s registered as ca-admin\n", m->admin);
	return 0;
}

/* The CSR (at most 64 KiB) from its file, the certificate as PEM on stdout. */
static int issue(struct cad_main *m)
{
	FILE *f = fopen(m->csr, "r");
	char *pem = NULL, err[1024];
	long n = -1;
	int rc = 1;

	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= 65536 &&
	    fseek(f, 0, SEEK_SET) == 0 && (pem = calloc(1, (size_t)n + 1)) &&
	    fread(pem, 1, (size_t)n, f) == (size_t)n) {
		rc = cad_issue_offline(&m->cfg, m->issue, pem, m->days ? (int)m->days : 0, stdout,
		                       err, sizeof(err)) == 0
		         ? 0
		         : 1;
		if (rc)
			log_error("--issue: %s", err);
	} else {
		log_error("--issue: cannot read the CSR %s (at most 64 KiB)", m->csr);
	}
	if (f)
		fclose(f);
	free(pem);
	return rc;
}

static int command(void *ctx)
{
	struct cad_main *m = ctx;

	if (m->admin)
		return bootstrap(m);
	if (m->issue)
		return issue(m);
	return -1;
}

static const struct sandbox_config *sandbox_of(void *ctx)
{
	return &((struct cad_main *)ctx)->cfg.sandbox;
}

static int make(void *ctx, char *err, size_t errlen)
{
	struct cad_main *m = ctx;

	return cad_new(&m->cfg, &m->cad, err, errlen);
}

static struct event_base *base(void *ctx)
{
	return cad_base(((struct cad_main *)ctx)->cad);
}

static void stop(void *ctx)
{
	cad_stop(((struct cad_main *)ctx)->cad);
}

static int run(void *ctx)
{
	return cad_run(((struct cad_main *)ctx)->cad);
}

static void cleanup(void *ctx)
{
	struct cad_main *m = ctx;

	cad_free(m->cad);
	cad_config_free(&m->cfg);
}

int main(int argc, char **argv)
{
	static const struct daemon_option options[] = {
	    {"bootstrap-admin", 1, 'b', set_admin},
	    {"admin-cert", 1, 'a', set_admin_cert},
	    {"issue", 1, 'i', set_issue},
	    {"csr", 1, 'r', set_csr},
	    {"days", 1, 'd', set_days},
	    {NULL, 0, 0, NULL},
	};
	static const struct daemon_def def = {
	    .name = "hsmca-cad",
	    .doc = "docs/cad.md",
	    .synopsis = "       hsmca-cad --config FILE --bootstrap-admin NAME --admin-cert FILE\n"
	                "       hsmca-cad --config FILE --issue PROFILE --csr FILE [--days N]\n",
	    .help =
	        "  --bootstrap-admin NAME --admin-cert FILE\n"
	        "                 register the first ca-admin (by its client certificate) in a\n"
	        "                 database that has none, then exit\n"
	        "  --issue PROFILE --csr FILE [--days N]\n"
	        "                 issue one certificate by the API's own path (checked, reserved,\n"
	        "                 signed through keyd, stored, audited as the local user) without\n"
	        "                 serving, e.g. hsmca-cad's own TLS certificate; PEM on stdout\n"
	        "The keyd provider finds keyd by $HSMCA_KEYD_SOCKET or its openssl.cnf section;\n"
	        "the database is the configuration's \"database\" or libpq's environment.\n",
	    .options = options,
	    .providers = 1,
	    .sandbox = &cad_sandbox,
	    .user_switch = DAEMON_USER_BEFORE_MAKE,
	    .options_check = options_check,
	    .config_load = load,
	    .command = command,
	    .sandbox_config = sandbox_of,
	    .make = make,
	    .base = base,
	    .stop = stop,
	    .run = run,
	    .cleanup = cleanup,
	};
	static struct cad_main m;

	return daemon_main(&def, &m, argc, argv);
}
