/* The shared HTTP texts (httptext.h): IMF-fixdate both ways, the strictness of its reading,
 * and the status phrases the daemons send. */
#include <check.h>
#include <string.h>

#include "httptext.h"

START_TEST(dates_format_and_parse_back)
{
	char s[HTTPTEXT_DATE_LEN + 1];
	int64_t t;

	httptext_date(784111777, s, sizeof(s));
	ck_assert_str_eq(s, "Sun, 06 Nov 1994 08:49:37 GMT");
	ck_assert_int_eq(httptext_date_parse(s, &t), 0);
	ck_assert_int_eq(t, 784111777);
	httptext_date(0, s, sizeof(s));
	ck_assert_str_eq(s, "Thu, 01 Jan 1970 00:00:00 GMT");
	httptext_date(2524608000LL, s, sizeof(s));
	ck_assert_str_eq(s, "Sat, 01 Jan 2050 00:00:00 GMT");
	ck_assert_int_eq(httptext_date_parse(s, &t), 0);
	ck_assert_int_eq(t, 2524608000LL);
}
END_TEST

START_TEST(only_the_fixdate_form_is_read)
{
	int64_t t = 42;

	ck_assert_int_ne(httptext_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun Nov  6 08:49:37 1994", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun, 06 Nov 1994 08:49:37 GMT ", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun, 06 Nov 1994 24:49:37 GMT", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun, 06 Nov 1969 08:49:37 GMT", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun, 0x Nov 1994 08:49:37 GMT", &t), 0);
	ck_assert_int_ne(httptext_date_parse("", &t), 0);
	ck_assert_int_eq(t, 42);
}
END_TEST

START_TEST(status_phrases)
{
	ck_assert_str_eq(httptext_status(200), "OK");
	ck_assert_str_eq(httptext_status(304), "Not Modified");
	ck_assert_str_eq(httptext_status(404), "Not Found");
	ck_assert_str_eq(httptext_status(413), "Content Too Large");
	ck_assert_str_eq(httptext_status(422), "Unprocessable Content");
	ck_assert_str_eq(httptext_status(431), "Request Header Fields Too Large");
	ck_assert_str_eq(httptext_status(500), "Internal Server Error");
	ck_assert_str_eq(httptext_status(503), "Service Unavailable");
	ck_assert_str_eq(httptext_status(299), "Error");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("httptext");
	TCase *tc = tcase_create("httptext");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, dates_format_and_parse_back);
	tcase_add_test(tc, only_the_fixdate_form_is_read);
	tcase_add_test(tc, status_phrases);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
