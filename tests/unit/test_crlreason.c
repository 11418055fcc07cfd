/* The CRLReason table (crlreason.h): RFC 5280 5.3.1's codes and names both ways, the unused
 * code 7, and which reasons a revocation may give. */
#include <check.h>
#include <string.h>

#include "crlreason.h"

START_TEST(names_and_codes_both_ways)
{
	static const char *const want[] = {
	    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
	    "superseded",    "cessationOfOperation", "certificateHold", NULL,
	    "removeFromCRL", "privilegeWithdrawn",   "aACompromise"};

	for (int i = 0; i <= CRLREASON_MAX; i++) {
		if (!want[i]) {
			ck_assert_ptr_null(crlreason_name(i));
			continue;
		}
		ck_assert_str_eq(crlreason_name(i), want[i]);
		ck_assert_int_eq(crlreason_code(want[i]), i);
	}
	ck_assert_ptr_null(crlreason_name(-1));
	ck_assert_ptr_null(crlreason_name(CRLREASON_MAX + 1));
	ck_assert_int_eq(crlreason_code("KeyCompromise"), -1);
	ck_assert_int_eq(crlreason_code("key-compromise"), -1);
	ck_assert_int_eq(crlreason_code(""), -1);
	ck_assert_int_eq(crlreason_code(NULL), -1);
}
END_TEST

START_TEST(what_a_revocation_may_give)
{
	ck_assert(crlreason_revocable(CRLREASON_UNSPECIFIED));
	ck_assert(crlreason_revocable(crlreason_code("keyCompromise")));
	ck_assert(crlreason_revocable(crlreason_code("aACompromise")));
	ck_assert(!crlreason_revocable(CRLREASON_CERTIFICATE_HOLD));
	ck_assert(!crlreason_revocable(CRLREASON_REMOVE_FROM_CRL));
	ck_assert(!crlreason_revocable(7));
	ck_assert(!crlreason_revocable(-1));
	ck_assert(!crlreason_revocable(11));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crlreason");
	TCase *tc = tcase_create("crlreason");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, names_and_codes_both_ways);
	tcase_add_test(tc, what_a_revocation_may_give);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
