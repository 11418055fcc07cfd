/* The console's session store and cookie parser (cad_session.c): sessions found while fresh,
 * ended when idle or too old, by logout, or never made; the table's bound; only the cookie's
 * hash kept; the Cookie header read strictly. The clock is passed in, so expiry is exact. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cad_session.h"

static const uint8_t cred[32] = {1, 2, 3};

START_TEST(found_while_fresh_with_its_csrf_token)
{
	struct cad_sessions ss;
	struct cad_session s;
	char c1[CAD_SESSION_TEXT_MAX], x1[CAD_SESSION_TEXT_MAX];
	char c2[CAD_SESSION_TEXT_MAX], x2[CAD_SESSION_TEXT_MAX];

	ck_assert_int_eq(cad_sessions_init(&ss, 4, 60, 600), 0);
	ck_assert_int_eq(cad_session_new(&ss, 1000, CAD_SESSION_VIA_TOKEN, cred, "alice", c1, x1),
	                 0);
	ck_assert_int_eq(
	    cad_session_new(&ss, 1000, CAD_SESSION_VIA_CERTIFICATE, cred, "bob", c2, x2), 0);
	ck_assert_uint_eq(strlen(c1), CAD_SESSION_VALUE_LEN);
	ck_assert_uint_eq(strlen(x1), CAD_SESSION_VALUE_LEN);
	ck_assert_str_ne(c1, c2);
	ck_assert_str_ne(x1, x2);
	ck_assert_str_ne(c1, x1);
	ck_assert_int_eq(cad_session_find(&ss, c1, 1030, &s), CAD_SESSION_FOUND);
	ck_assert_str_eq(s.principal, "alice");
	ck_assert_str_eq(s.csrf, x1);
	ck_assert_int_eq(s.via, CAD_SESSION_VIA_TOKEN);
	ck_assert_int_eq(memcmp(s.cred_sha256, cred, 32), 0);
	ck_assert_int_eq(cad_session_find(&ss, c2, 1030, &s), CAD_SESSION_FOUND);
	ck_assert_str_eq(s.principal, "bob");
	ck_assert_int_eq(s.via, CAD_SESSION_VIA_CERTIFICATE);
	/* Another value of the right shape is no session. */
	c1[0] = c1[0] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(cad_session_find(&ss, c1, 1030, &s), CAD_SESSION_UNKNOWN);
	ck_assert_int_eq(cad_session_find(&ss, "", 1030, &s), CAD_SESSION_UNKNOWN);
	cad_sessions_fini(&ss);
}
END_TEST

START_TEST(idle_and_absolute_timeouts)
{
	struct cad_sessions ss;
	struct cad_session s;
	char c[CAD_SESSION_TEXT_MAX], x[CAD_SESSION_TEXT_MAX];
	char d[CAD_SESSION_TEXT_MAX], y[CAD_SESSION_TEXT_MAX];

	ck_assert_int_eq(cad_sessions_init(&ss, 4, 60, 150), 0);
	ck_assert_int_eq(cad_session_new(&ss, 0, CAD_SESSION_VIA_TOKEN, cred, "a", c, x), 0);
	ck_assert_int_eq(cad_session_new(&ss, 0, CAD_SESSION_VIA_TOKEN, cred, "b", d, y), 0);
	/* Use restarts the idle time: 60 s after each use is still fine... */
	ck_assert_int_eq(cad_session_find(&ss, c, 60, &s), CAD_SESSION_FOUND);
	ck_assert_int_eq(cad_session_find(&ss, c, 120, &s), CAD_SESSION_FOUND);
	/* ...but not past the absolute limit, whatever the use. */
	ck_assert_int_eq(cad_session_find(&ss, c, 151, &s), CAD_SESSION_EXPIRED);
	ck_assert_int_eq(cad_session_find(&ss, c, 151, &s), CAD_SESSION_UNKNOWN);
	/* Unused for longer than 60 s: idle, and ended. */
	ck_assert_int_eq(cad_session_find(&ss, d, 61, &s), CAD_SESSION_IDLE);
	ck_assert_int_eq(cad_session_find(&ss, d, 61, &s), CAD_SESSION_UNKNOWN);
	ck_assert_uint_eq(cad_session_count(&ss, 61), 0);
	cad_sessions_fini(&ss);
}
END_TEST

START_TEST(logout_ends_it)
{
	struct cad_sessions ss;
	struct cad_session s;
	char c[CAD_SESSION_TEXT_MAX], x[CAD_SESSION_TEXT_MAX];

	ck_assert_int_eq(cad_sessions_init(&ss, 2, 60, 600), 0);
	ck_assert_int_eq(cad_session_new(&ss, 5, CAD_SESSION_VIA_TOKEN, cred, "a", c, x), 0);
	ck_assert_int_eq(cad_session_end(&ss, c), 1);
	ck_assert_int_eq(cad_session_end(&ss, c), 0);
	ck_assert_int_eq(cad_session_find(&ss, c, 6, &s), CAD_SESSION_UNKNOWN);
	cad_sessions_fini(&ss);
}
END_TEST

START_TEST(bounded_table_reuses_only_dead_slots)
{
	struct cad_sessions ss;
	struct cad_session s;
	char c[3][CAD_SESSION_TEXT_MAX], x[CAD_SESSION_TEXT_MAX];

	ck_assert_int_eq(cad_sessions_init(&ss, 2, 60, 600), 0);
	ck_assert_int_eq(cad_session_new(&ss, 0, CAD_SESSION_VIA_TOKEN, cred, "a", c[0], x), 0);
	ck_assert_int_eq(cad_session_new(&ss, 30, CAD_SESSION_VIA_TOKEN, cred, "b", c[1], x), 0);
	ck_assert_int_eq(cad_session_new(&ss, 40, CAD_SESSION_VIA_TOKEN, cred, "c", c[2], x), -1);
	ck_assert_uint_eq(cad_session_count(&ss, 40), 2);
	/* At 61 the first is idle: its slot is taken, the second lives on. */
	ck_assert_int_eq(cad_session_new(&ss, 61, CAD_SESSION_VIA_TOKEN, cred, "c", c[2], x), 0);
	ck_assert_int_eq(cad_session_find(&ss, c[0], 61, &s), CAD_SESSION_UNKNOWN);
	ck_assert_int_eq(cad_session_find(&ss, c[1], 61, &s), CAD_SESSION_FOUND);
	ck_assert_int_eq(cad_session_find(&ss, c[2], 61, &s), CAD_SESSION_FOUND);
	cad_sessions_fini(&ss);
}
END_TEST

START_TEST(only_the_cookie_hash_is_kept)
{
	struct cad_sessions ss;
	char c[CAD_SESSION_TEXT_MAX], x[CAD_SESSION_TEXT_MAX];

	ck_assert_int_eq(cad_sessions_init(&ss, 1, 60, 600), 0);
	ck_assert_int_eq(cad_session_new(&ss, 0, CAD_SESSION_VIA_TOKEN, cred, "a", c, x), 0);
	ck_assert_ptr_null(memmem(ss.s, sizeof(*ss.s), c, strlen(c)));
	cad_sessions_fini(&ss);
}
END_TEST

START_TEST(cookie_header_read_strictly)
{
	char v[CAD_SESSION_TEXT_MAX];

	ck_assert_int_eq(cad_cookie_get("a=b; __Host-hsmca_session=XyZ_-09; c=d",
	                                CAD_SESSION_COOKIE, v, sizeof(v)),
	                 0);
	ck_assert_str_eq(v, "XyZ_-09");
	ck_assert_int_eq(
	    cad_cookie_get("__Host-hsmca_session=abc", CAD_SESSION_COOKIE, v, sizeof(v)), 0);
	ck_assert_str_eq(v, "abc");
	/* Absent, only a longer name, empty, too long, or with characters no cookie has. */
	ck_assert_int_eq(cad_cookie_get("a=b", CAD_SESSION_COOKIE, v, sizeof(v)), -1);
	ck_assert_int_eq(
	    cad_cookie_get("x__Host-hsmca_session=abc", CAD_SESSION_COOKIE, v, sizeof(v)), -1);
	ck_assert_int_eq(
	    cad_cookie_get("__Host-hsmca_sessionx=abc", CAD_SESSION_COOKIE, v, sizeof(v)), -1);
	ck_assert_int_eq(cad_cookie_get("__Host-hsmca_session=", CAD_SESSION_COOKIE, v, sizeof(v)),
	                 -1);
	ck_assert_int_eq(
	    cad_cookie_get("__Host-hsmca_session=\"abc\"", CAD_SESSION_COOKIE, v, sizeof(v)), -1);
	ck_assert_int_eq(
	    cad_cookie_get("__Host-hsmca_session=a b", CAD_SESSION_COOKIE, v, sizeof(v)), -1);
	ck_assert_int_eq(
	    cad_cookie_get("__Host-hsmca_session=0123456789", CAD_SESSION_COOKIE, v, 8), -1);
	ck_assert_int_eq(cad_cookie_get(NULL, CAD_SESSION_COOKIE, v, sizeof(v)), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cad-session");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, found_while_fresh_with_its_csrf_token);
	tcase_add_test(tc, idle_and_absolute_timeouts);
	tcase_add_test(tc, logout_ends_it);
	tcase_add_test(tc, bounded_table_reuses_only_dead_slots);
	tcase_add_test(tc, only_the_cookie_hash_is_kept);
	tcase_add_test(tc, cookie_header_read_strictly);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
