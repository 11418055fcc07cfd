/* `hsmca keyd ...` against a real keyd: what an operator types, and its errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "keyd_client.h"
#include "token_caps.h"

static struct harness h;
static int no_ec; /* the token makes no EC keys (token_caps.h) */

static void setup(void)
{
	harness_check_start(&h, NULL);
}

static void teardown(void)
{
	harness_check_stop(&h);
}

/* Run the CLI with args; capture stdout+stderr into out; return the exit status. */
static int cli(char *out, size_t outsz, const char *args)
{
	char cmd[2048];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", getenv("HSMCA_CLI_BIN"), args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, outsz - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(generate_list_pubkey_status)
{
	char out[8192];

	/* A token without EC (openCryptoki's software token): an RSA key. */
	ck_assert_int_eq(cli(out, sizeof(out),
	                     no_ec ? "keyd generate --label ca-1 --type rsa-2048"
	                           : "keyd generate --label ca-1 --type ec-p384"),
	                 0);
	ck_assert_ptr_nonnull(strstr(out, "BEGIN PUBLIC KEY"));
	ck_assert_ptr_nonnull(strstr(out, "never-extractable"));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd list"), 0);
	ck_assert_ptr_nonnull(strstr(out, no_ec ? "ca-1\trsa-2048" : "ca-1\tec-384"));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd pubkey ca-1"), 0);
	ck_assert_ptr_nonnull(strstr(out, "BEGIN PUBLIC KEY"));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd status"), 0);
	ck_assert_ptr_nonnull(strstr(out, "online: yes"));
	ck_assert_ptr_nonnull(strstr(out, "keys: 1"));
}
END_TEST

START_TEST(errors_name_the_problem)
{
	char out[8192];

	ck_assert_int_eq(cli(out, sizeof(out), "keyd generate --label x --type rsa-1024"), 2);
	ck_assert_ptr_nonnull(strstr(out, "unknown --type \"rsa-1024\""));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd generate --label 'bad label' --type ec-p256"),
	                 1);
	ck_assert_ptr_nonnull(strstr(out, "invalid key label"));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd pubkey nosuch"), 1);
	ck_assert_ptr_nonnull(strstr(out, "no key labelled nosuch"));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd frobnicate"), 2);
	ck_assert_ptr_nonnull(strstr(out, "unknown command \"frobnicate\""));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd --socket /nonexistent/keyd.sock status"), 1);
	ck_assert_ptr_nonnull(strstr(out, "/nonexistent/keyd.sock"));
	ck_assert_int_eq(cli(out, sizeof(out), "nosuchcommand"), 2);
}
END_TEST

START_TEST(help_is_available)
{
	char out[8192];

	ck_assert_int_eq(cli(out, sizeof(out), "--help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "keyd"));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd --help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "generate --label"));
}
END_TEST

/* The capabilities section says what keyd's status answer says: for each mechanism keyd uses,
 * the token's key sizes and uses, or "missing" with what keyd then refuses. */
START_TEST(status_shows_the_tokens_capabilities)
{
	char out[8192], line[256];
	struct keyd_client *c = keyd_client_new(h.socket, 5000);
	struct keyd_token_status st;
	struct keyd_err err;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(keyd_client_status(c, &st, &err), KEYD_OK);
	keyd_client_free(c);
	ck_assert_int_eq(cli(out, sizeof(out), "keyd status"), 0);
	ck_assert_ptr_nonnull(strstr(out, "\ncapabilities:\n"));
	ck_assert_ptr_nonnull(strstr(out, "  login required: yes\n"));
	snprintf(line, sizeof(line), "  model: %s\n", st.caps.model);
	ck_assert_ptr_nonnull(strstr(out, line));
	for (size_t j = 0; j < KEYD_NMECHS; j++) {
		uint32_t mech = keyd_mechs[j];
		const struct keyd_mech_cap *m = NULL;

		for (unsigned i = 0; i < st.caps.nmechs; i++)
			if (st.caps.mechs[i].mech == mech)
				m = &st.caps.mechs[i];
		if (m)
			snprintf(line, sizeof(line), "  %s: %u-%u ", keyd_mech_name(mech),
			         m->min_size, m->max_size);
		else
			snprintf(line, sizeof(line), "  %s: missing (keyd refuses %s)\n",
			         keyd_mech_name(mech), keyd_mech_use(mech));
		ck_assert_msg(strstr(out, line), "no \"%s\" in:\n%s", line, out);
	}
	if (harness_token_is_softhsm(&h)) {
		ck_assert_ptr_nonnull(strstr(out, "  CKM_ECDSA: "));
		ck_assert_ptr_nonnull(strstr(out, "  CKM_RSA_PKCS: 512-16384 bits, "));
		ck_assert_ptr_null(strstr(out, "missing"));
	}
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;
	int rc;

	/* before the suite is made: a skip returns with nothing to free */
	rc = harness_token_prologue(&no_ec, NULL);
	if (rc)
		return rc;
	s = suite_create("cli-keyd");
	tc = tcase_create("cli");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, generate_list_pubkey_status);
	tcase_add_test(tc, errors_name_the_problem);
	tcase_add_test(tc, help_is_available);
	tcase_add_test(tc, status_shows_the_tokens_capabilities);
	suite_add_tcase(s, tc);
	return harness_run_suite(s);
}
