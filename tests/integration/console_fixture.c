/*
 * The web console's test fixture (tests/integration/console_browser.py drives it): a
 * throwaway keyd with an issuing CA and an audit key, a private PostgreSQL, and hsmca-cad with
 * the console and short session timeouts; one principal per role, each with a client
 * certificate (ROLE.pem/.key, issued by the operator-auth CA opca.pem, which also issued the
 * server's certificate) and an API token. keyd is set up with a broad grant (keys made, one real
 * `hsmca backup` run so that the Backups page lists it) and then restarted with exactly
 * hsmca-cad's grant. It prints one JSON line -- the URL, the folder, the tokens -- and serves
 * until its stdin closes; then it stops hsmca-cad, checks its exit (no
 * sanitizer report) and removes everything. Exit status 0 when all stopped cleanly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "db.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static pid_t cad_pid;
static char dir[256];

/* One principal per role, named after it, and a second ca-admin to approve what the first asks
 * for (docs/approvals.md). */
static const char *const names[] = {"ca-admin", "admin", "officer",   "auditor",
                                    "operator", "ra",    "ca-admin-2"};
static const char *const roles[] = {"ca-admin", "admin", "officer", "auditor",
                                    "operator", "ra",    "ca-admin"};
#define NROLES 7

#define PG_BIN "/usr/lib/postgresql/15/bin"

/* hsmca-cad's grant (deploy/keyd.example.yaml): the CA key for certificates, the audit key for
 * checkpoints, the mfa-wrap key for wrap and unwrap only. */
static const char cad_grant_fmt[] = "  - name: cad\n"
                                    "    uid: %u\n"
                                    "    grants:\n"
                                    "      - keys: [issuing-p256]\n"
                                    "        operations: [get-public-key, sign]\n"
                                    "        kinds: [certificate]\n"
                                    "      - keys: [audit-p256]\n"
                                    "        operations: [get-public-key, sign]\n"
                                    "        kinds: [audit-checkpoint]\n"
                                    "      - keys: [mfa-wrap]\n"
                                    "        operations: [wrap, unwrap]\n"
                                    "      - keys: [\"*\"]\n"
                                    "        operations: [status]\n";

static void cleanup(void)
{
	harness_cad_stop(&cad_pid, harness_pathf(dir, "cad.log"), 0);
	harness_pg_remove(&pg);
	if (h.dir[0])
		harness_stop(&h);
}

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san)
{
	return harness_test_cert(cn, pub, issuer, signer, ca, san, NULL);
}

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: %d, workers: 2}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem}\n"
    "database: \"%s connect_timeout=3\"\n"
    "limits: {timeout_seconds: 30}\n"
    "audit: {checkpoint_key: \"keyd:label=audit-p256\", checkpoint_interval_seconds: 5}\n"
    "console: {session_idle_seconds: %d, session_max_seconds: 900, max_sessions: 50}\n"
    "authorities:\n"
    "  - {name: issuing, certificate: %s/issuing.pem, key: \"keyd:label=issuing-p256\"}\n"
    "key_profiles:\n"
    "  - {name: standard, rsa_min_bits: 2048, rsa_max_bits: 4096, ec_curves: [P-256, P-384]}\n"
    "profiles:\n"
    "  - name: tls-server\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 397\n"
    "    key_usage: [digitalSignature, encipherment]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN, O]\n"
    "    san: {dns: [\"*.example.com\", example.com]}\n"
    "    san_required: true\n"
    "  - name: tls-client\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 365\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [clientAuth]\n"
    "    subject_fields: [CN, O, OU]\n"
    "    subject_cn_required: true\n"
    /* TOTP step-up (docs/mfa.md): the officer's revocations need a code; the other roles'
     * policies are empty so that the rest of the walk-through is not asked. */
    /* Retiring an authority waits for a second ca-admin. */
    "approvals:\n"
    "  kinds: [{kind: authority.retire, required: 2, approvers: [ca-admin]}]\n"
    "mfa:\n"
    "  wrap_key: mfa-wrap\n"
    "  issuer: hsmca console test\n"
    "  step_up: {officer: [certificate.revoke], ca-admin: [], admin: [], auditor: [],\n"
    "            operator: [], ra: []}\n";

int main(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	OSSL_PROVIDER *prov_keyd, *prov_default;
	EVP_PKEY *ik, *opca_key;
	X509 *x, *opca;
	char conf[8192], url[128], line[4096], tokens[2048] = "";
	const char *cad_ci, *idle = getenv("HSMCA_CONSOLE_IDLE_SECONDS");
	struct harness_opts o = {0};
	char clients[1024];
	int port, rc;

	harness_die_init("console_fixture", cleanup);
	harness_setup_phase = 1;
	/* Set-up: keys made and the backup run with a broad grant ... */
	snprintf(clients, sizeof(clients),
	         "  - name: setup\n    uid: %u\n    grants:\n"
	         "      - keys: [\"*\"]\n"
	         "        operations: [\"*\", generate, wrap, unwrap]\n"
	         "        kinds: [\"*\", digest]\n",
	         (unsigned)getuid());
	o.clients_yaml = clients;
	if (harness_start(&h, &o) != 0)
		harness_die("keyd");
	snprintf(dir, sizeof(dir), "%s", h.dir);
	c = keyd_client_new(NULL, 0);
	if (!c ||
	    keyd_client_generate(c, "issuing-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "audit-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "mfa-wrap", KEYD_KEY_AES, 256, &k, &kerr) ||
	    keyd_client_generate(c, "backup-key", KEYD_KEY_AES, 256, &k, &kerr))
		harness_die("keyd keys");
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);
	ik = harness_keyd_key("issuing-p256");
	x = make_cert("hsmca console test issuing CA", ik, NULL, ik, 1, NULL);
	harness_write_cert(harness_pathf(dir, "issuing.pem"), x, 0);
	X509_free(x);
	EVP_PKEY_free(ik);

	opca = harness_opca(dir, "hsmca console test operator CA", &opca_key);

	db = harness_pg_migrated(&pg, "console");
	cad_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "cad");
	for (int i = 0; i < NROLES; i++) {
		EVP_PKEY *key = EVP_EC_gen("P-256");
		char token[80];

		harness_write_credential(dir, names[i],
		                         make_cert(names[i], key, opca, opca_key, 0, NULL), key);
		harness_db_principal(db, dir, names[i], roles[i],
		                     !strcmp(roles[i], "ra") ? "tls-server" : "");
		/* An API token per role, made as hsmca-cad makes them (256 random bits). */
		harness_db_token(db, names[i], "console-test", token, sizeof(token));
		snprintf(tokens + strlen(tokens), sizeof(tokens) - strlen(tokens),
		         "%s\"%s\": \"%s\"", i ? ", " : "", names[i], token);
		OPENSSL_cleanse(token, sizeof(token));
	}
	db_close(db);

	/* One real backup, recorded in backup_runs (docs/backup.md) ... */
	{
		char *argv[] = {(char *)getenv("HSMCA_CLI_BIN"),
		                "backup",
		                (char *)harness_pathf(dir, "console.hsmcabk"),
		                "--key",
		                "backup-key",
		                "--database",
		                pg.owner_ci,
		                "--pg-bin",
		                PG_BIN,
		                "--ca-cert",
		                (char *)harness_pathf(dir, "issuing.pem"),
		                NULL};
		if (harness_run(argv, harness_pathf(dir, "backup.log")) != 0) {
			fprintf(stderr, "console_fixture: hsmca backup failed: %s\n",
			        harness_slurp(harness_pathf(dir, "backup.log")));
			harness_die("backup");
		}
	}
	/* ... then keyd restarted with exactly hsmca-cad's grant. */
	snprintf(clients, sizeof(clients), cad_grant_fmt, (unsigned)getuid());
	if (harness_keyd_stop(&h) != 0 || harness_write_config(&h, &o) != 0 ||
	    harness_keyd_start(&h) != 0)
		harness_die("keyd restart");

	port = harness_free_port();
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
	snprintf(conf, sizeof(conf), config_fmt, port, dir, dir, dir, cad_ci,
	         idle ? atoi(idle) : 20, dir);
	harness_write_text(harness_pathf(dir, "cad.yaml"), conf);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cad_pid =
	    harness_cad_start(&(struct harness_site){.base_url = url, .dir = dir},
	                      harness_pathf(dir, "cad.yaml"), harness_pathf(dir, "cad.log"), NULL);
	harness_setup_phase = 0;
	printf("{\"url\": \"%s\", \"dir\": \"%s\", \"tokens\": {%s}}\n", url, dir, tokens);
	fflush(stdout);
	OPENSSL_cleanse(tokens, sizeof(tokens));
	while (fgets(line, sizeof(line), stdin))
		;
	rc = harness_cad_stop(&cad_pid, harness_pathf(dir, "cad.log"), 0);
	if (harness_suite_end(&h, &pg, opca, opca_key, prov_keyd, prov_default) != 0)
		rc = 1;
	return rc ? 1 : 0;
}
