/*
 * The quickstart's demo ceremonies (deploy/ceremonies/NAME.yaml, in deploy/quickstart's order) run
 * with `hsmca ceremony run` against keyd on the token under test (SoftHSM, or the token of
 * tests/tokens that HSMCA_TEST_TOKEN names), and the openssl command verifies what they made:
 * the chain root -> issuing CA -> OCSP signer, the operator-auth CA, and the root's CRL.
 *
 * A token without EC keys (openCryptoki 3.8's software token) refuses the files as they are,
 * naming the mechanism and writing nothing; the same files with RSA keys (P-384 -> RSA-3072,
 * P-256 -> RSA-2048) then run through.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "token_caps.h"

static struct harness h;
static char work[600];
static int no_ec;

static const char *const demo[] = {"demo-root", "demo-issuing", "demo-ocsp", "demo-operator-ca",
                                   "demo-root-crl"};

/* Run a shell command in the work folder; stdout and stderr into out; the exit status. */
static int sh(char *out, size_t outsz, const char *cmd)
{
	char full[4096];
	FILE *p;
	size_t n;
	int st;

	snprintf(full, sizeof(full), "cd '%s' && { %s ; } 2>&1", work, cmd);
	p = popen(full, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, outsz - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* deploy/ceremonies/NAME.yaml into the work folder, with the CRL server's URL as the quickstart
 * writes it, and with RSA keys in place of EC ones when rsa is set. */
static void copy_ceremony(const char *name, int rsa)
{
	char cmd[2048], out[4096];

	snprintf(cmd, sizeof(cmd),
	         "sed -e 's|@CRL_URL@|http://127.0.0.1:8480/|g' %s '%s/deploy/ceremonies/%s.yaml' "
	         "> %s.yaml",
	         rsa ? "-e 's/type: ec-p384/type: rsa-3072/' -e 's/type: ec-p256/type: rsa-2048/'"
	             : "",
	         getenv("HSMCA_SRC"), name, name);
	ck_assert_msg(sh(out, sizeof(out), cmd) == 0, "%s", out);
}

static int run_ceremony(const char *name, char *out, size_t outsz)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s' ceremony run %s.yaml", getenv("HSMCA_CLI_BIN"), name);
	return sh(out, outsz, cmd);
}

static void setup(void)
{
	harness_check_start(&h, NULL);
	snprintf(work, sizeof(work), "%s/work", h.dir);
	ck_assert_int_eq(mkdir(work, 0755), 0);
	/* The CLI loads the provider of the test build. */
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
}

static void teardown(void)
{
	harness_check_stop(&h);
}

START_TEST(demo_ceremonies_run_and_the_chain_verifies)
{
	static char out[1 << 16];

	if (no_ec) {
		/* As shipped: refused before anything is made, naming what the token lacks. */
		copy_ceremony("demo-root", 0);
		ck_assert_int_ne(run_ceremony("demo-root", out, sizeof(out)), 0);
		ck_assert_msg(strstr(out, "CKM_EC_KEY_PAIR_GEN"), "%s", out);
		ck_assert_int_eq(sh(out, sizeof(out), "ls *.pem 2>/dev/null | wc -l"), 0);
		ck_assert_str_eq(out, "0\n");
		ck_assert_int_eq(sh(out, sizeof(out), "rm -f demo-root*"), 0);
	}
	for (size_t i = 0; i < sizeof(demo) / sizeof(demo[0]); i++) {
		copy_ceremony(demo[i], no_ec);
		ck_assert_msg(run_ceremony(demo[i], out, sizeof(out)) == 0,
		              "%s failed on token %s:\n%s", demo[i], h.token_kind, out);
	}
	/* The system's openssl, without the test build's module folder. */
	ck_assert_msg(sh(out, sizeof(out),
	                 "env -u OPENSSL_MODULES openssl verify -CAfile demo-root.pem -untrusted "
	                 "demo-issuing.pem demo-issuing.pem demo-ocsp.pem") == 0,
	              "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "demo-issuing.pem: OK"));
	ck_assert_ptr_nonnull(strstr(out, "demo-ocsp.pem: OK"));
	ck_assert_msg(sh(out, sizeof(out),
	                 "env -u OPENSSL_MODULES openssl verify -CAfile demo-root.pem "
	                 "demo-operator-ca.pem") == 0,
	              "%s", out);
	ck_assert_msg(sh(out, sizeof(out),
	                 "env -u OPENSSL_MODULES openssl crl -in demo-root.crl -CAfile "
	                 "demo-root.pem -noout") == 0,
	              "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "verify OK"));
	/* The keys are what the files asked for. */
	ck_assert_int_eq(sh(out, sizeof(out),
	                    "env -u OPENSSL_MODULES openssl x509 -in demo-root.pem -noout -text"),
	                 0);
	ck_assert_ptr_nonnull(strstr(out, no_ec ? "Public-Key: (3072 bit)" : "NIST CURVE: P-384"));
	ck_assert_int_eq(
	    sh(out, sizeof(out),
	       "env -u OPENSSL_MODULES openssl x509 -in demo-issuing.pem -noout -text"),
	    0);
	ck_assert_ptr_nonnull(strstr(out, no_ec ? "Public-Key: (2048 bit)" : "NIST CURVE: P-256"));
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;
	int rc;

	/* before the suite is made: a skip returns with nothing to free */
	rc = harness_token_prologue(
	    &no_ec,
	    "the demo ceremonies run with RSA keys, after checking the EC files are refused");
	if (rc)
		return rc;
	s = suite_create("ceremony-demo");
	tc = tcase_create("demo");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, demo_ceremonies_run_and_the_chain_verifies);
	suite_add_tcase(s, tc);
	return harness_run_suite(s);
}
