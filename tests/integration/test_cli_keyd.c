/* `hsmca keyd ...` against a real keyd: what an operator types, and its errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static struct harness h;

static void setup(void)
{
	ck_assert_msg(harness_start(&h, NULL) == 0, "harness did not start");
}

static void teardown(void)
{
	ck_assert_msg(harness_stop(&h) == 0, "hsmca-keyd did not exit cleanly: see above");
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

	ck_assert_int_eq(cli(out, sizeof(out), "keyd generate --label ca-1 --type ec-p384"), 0);
	ck_assert_ptr_nonnull(strstr(out, "BEGIN PUBLIC KEY"));
	ck_assert_ptr_nonnull(strstr(out, "never-extractable"));
	ck_assert_int_eq(cli(out, sizeof(out), "keyd list"), 0);
	ck_assert_ptr_nonnull(strstr(out, "ca-1\tec-384"));
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
	ck_assert_int_eq(cli(out, sizeof(out), "keyd generate --label 'bad label' --type ec-p256"), 1);
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

int main(void)
{
	Suite *s = suite_create("cli-keyd");
	TCase *tc = tcase_create("cli");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, generate_list_pubkey_status);
	tcase_add_test(tc, errors_name_the_problem);
	tcase_add_test(tc, help_is_available);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
