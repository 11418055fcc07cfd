/*
 * Finding keyd.so: an explicit HSMCA_PROVIDER_DIR wins; unset, a program of
 * the build tree (this test) finds the build tree's hsm/provider; a folder
 * without keyd.so fails with a message naming it.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "provpath.h"

START_TEST(explicit_folder_wins)
{
	char buf[PATH_MAX];

	setenv("HSMCA_PROVIDER_DIR", "/opt/elsewhere", 1);
	ck_assert_str_eq(provpath_keyd_dir(buf, sizeof(buf)), "/opt/elsewhere");
}
END_TEST

START_TEST(build_tree_program_finds_the_build_tree_provider)
{
	char buf[PATH_MAX], so[PATH_MAX + 16], err[1024] = "";
	const char *d;
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *p;

	unsetenv("HSMCA_PROVIDER_DIR");
	d = provpath_keyd_dir(buf, sizeof(buf));
	ck_assert_ptr_nonnull(d);
	ck_assert_msg(strlen(d) > 13 && !strcmp(d + strlen(d) - 13, "/hsm/provider"), "%s", d);
	snprintf(so, sizeof(so), "%s/keyd.so", d);
	ck_assert_int_eq(access(so, R_OK), 0);
	/* Loaded under its name, so that "provider=keyd" selects it. */
	p = provpath_load_keyd(ctx, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_str_eq(OSSL_PROVIDER_get0_name(p), "keyd");
	OSSL_PROVIDER_unload(p);
	OSSL_LIB_CTX_free(ctx);
}
END_TEST

START_TEST(missing_provider_is_named)
{
	char err[1024] = "";
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

	setenv("HSMCA_PROVIDER_DIR", "/nonexistent/hsmca", 1);
	ck_assert_ptr_null(provpath_load_keyd(ctx, err, sizeof(err)));
	ck_assert_msg(strstr(err, "from /nonexistent/hsmca") && strstr(err, "HSMCA_PROVIDER_DIR"),
	              "%s", err);
	OSSL_LIB_CTX_free(ctx);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("provpath");
	TCase *tc = tcase_create("provpath");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, explicit_folder_wins);
	tcase_add_test(tc, build_tree_program_finds_the_build_tree_provider);
	tcase_add_test(tc, missing_provider_is_named);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
