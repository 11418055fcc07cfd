/* TOTP step-up without a server (ca-core/cad/cad_mfa.h): RFC 6238's SHA-1 test vectors through
 * liboath, the ±1 step window at chosen times (the clock is the caller's), codes made by the
 * oathtool command accepted, base32 (RFC 4648's vectors), the otpauth URI, the QR code's SVG,
 * recovery codes and their hashes, the X-HSMCA-TOTP forms, and the step-up policy: the
 * defaults, per-role lists and the "mfa:" configuration's refusals. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>

#include "cad_internal.h"
#include "cad_mfa.h"

/* RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890". */
static const uint8_t rfc_seed[] = "12345678901234567890";
static const struct {
	time_t t;
	const char *totp8;
} rfc_vectors[] = {
    {59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
    {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
};
#define NVEC (sizeof(rfc_vectors) / sizeof(rfc_vectors[0]))

START_TEST(rfc6238_sha1_vectors_through_liboath)
{
	for (size_t i = 0; i < NVEC; i++) {
		char eight[9], six[CAD_TOTP_DIGITS + 1];
		int64_t step = -1;
		/* liboath itself, at RFC 6238's eight digits. */
		ck_assert_int_eq(oath_totp_generate((const char *)rfc_seed, 20, rfc_vectors[i].t,
		                                    30, 0, 8, eight),
		                 OATH_OK);
		ck_assert_str_eq(eight, rfc_vectors[i].totp8);
		/* hsmca's six digits are the same HOTP value mod 10^6: the last six. */
		ck_assert_int_eq(cad_totp_code(rfc_seed, 20, rfc_vectors[i].t, six), 0);
		ck_assert_str_eq(six, rfc_vectors[i].totp8 + 2);
		ck_assert_int_eq(cad_totp_check(rfc_seed, 20, six, rfc_vectors[i].t, 1, &step), 0);
		ck_assert_int_eq(step, (int64_t)(rfc_vectors[i].t / 30));
	}
}
END_TEST

START_TEST(one_step_either_side_is_accepted_two_are_not)
{
	const time_t t = 1234567890; /* step 41152263, 0 s into it... */
	char code[CAD_TOTP_DIGITS + 1];
	int64_t step;

	ck_assert_int_eq(cad_totp_code(rfc_seed, 20, t, code), 0);
	/* The server's clock one step behind, at, and one step ahead of the code's. */
	for (int d = -1; d <= 1; d++) {
		ck_assert_int_eq(cad_totp_check(rfc_seed, 20, code, t + d * 30, 1, &step), 0);
		ck_assert_int_eq(step, (int64_t)(t / 30)); /* the code's step, whatever the clock */
	}
	ck_assert_int_eq(cad_totp_check(rfc_seed, 20, code, t - 60, 1, &step), -1);
	ck_assert_int_eq(cad_totp_check(rfc_seed, 20, code, t + 60, 1, &step), -1);
	ck_assert_int_eq(step, -1);
	/* Window 0: only the current step. */
	ck_assert_int_eq(cad_totp_check(rfc_seed, 20, code, t + 30, 0, &step), -1);
	/* Another secret's code is not this one's. */
	ck_assert_int_eq(
	    cad_totp_check((const uint8_t *)"abcdefghijabcdefghij", 20, code, t, 1, &step), -1);
}
END_TEST

START_TEST(malformed_codes_are_refused)
{
	static const char *const bad[] = {"",        "12345",  "1234567",      "12345a", " 123456",
	                                  "123456 ", "-12345", "１２３４５６", NULL};
	int64_t step;

	for (size_t i = 0; bad[i]; i++)
		ck_assert_msg(cad_totp_check(rfc_seed, 20, bad[i], 59, 1, &step) == -1, "\"%s\"",
		              bad[i]);
	ck_assert_int_eq(cad_totp_check(rfc_seed, 20, NULL, 59, 1, &step), -1);
}
END_TEST

/* The oathtool command (another implementation's front end) makes codes hsmca accepts. */
START_TEST(oathtool_codes_are_accepted)
{
	char b32[64], cmd[256], code[32] = "";
	const time_t t = 1765000000;
	int64_t step;
	FILE *p;

	ck_assert_int_eq(cad_totp_base32(rfc_seed, 20, b32, sizeof(b32)), 0);
	ck_assert_str_eq(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	snprintf(cmd, sizeof(cmd), "oathtool --totp -b %s --now @%lld", b32, (long long)t);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(code, sizeof(code), p));
	ck_assert_int_eq(pclose(p), 0);
	code[strcspn(code, "\n")] = '\0';
	ck_assert_int_eq(cad_totp_check(rfc_seed, 20, code, t, 1, &step), 0);
	ck_assert_int_eq(step, (int64_t)(t / 30));
}
END_TEST

START_TEST(base32_follows_rfc4648_without_padding)
{
	static const struct {
		const char *in, *out;
	} v[] = {{"f", "MY"},         {"fo", "MZXQ"},        {"foo", "MZXW6"},
	         {"foob", "MZXW6YQ"}, {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"}};
	char out[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_int_eq(
		    cad_totp_base32((const uint8_t *)v[i].in, strlen(v[i].in), out, sizeof(out)),
		    0);
		ck_assert_str_eq(out, v[i].out);
	}
	ck_assert_int_eq(cad_totp_base32((const uint8_t *)"foobar", 6, out, 10), -1);
}
END_TEST

START_TEST(otpauth_uri_and_qr_svg)
{
	char uri[512];
	char *svg;

	ck_assert_int_eq(
	    cad_totp_uri("hsmca demo", "ops@example.com", "GEZDGNBV", uri, sizeof(uri)), 0);
	ck_assert_str_eq(uri, "otpauth://totp/hsmca%20demo:ops%40example.com?secret=GEZDGNBV&"
	                      "issuer=hsmca%20demo&algorithm=SHA1&digits=6&period=30");
	ck_assert_int_eq(cad_totp_uri("hsmca", "x", "GEZDGNBV", uri, 20), -1);
	svg = cad_qr_svg(uri);
	ck_assert_ptr_nonnull(svg);
	ck_assert_int_eq(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39), 0);
	ck_assert_ptr_nonnull(strstr(svg, "<path fill=\"#000\" d=\"M"));
	ck_assert_ptr_nonnull(strstr(svg, "</svg>"));
	/* A QR code's finder pattern: the top-left module row starts with a run of seven. */
	ck_assert_ptr_nonnull(strstr(svg, "M4 4h7v1h-7z"));
	free(svg);
}
END_TEST

START_TEST(recovery_codes_normalise_and_hash)
{
	char a[CAD_RECOVERY_SHOWN + 1], b[CAD_RECOVERY_SHOWN + 1], norm[32], upper[32];
	uint8_t salt[16] = {1, 2, 3}, salt2[16] = {4}, h1[32], h2[32], h3[32];

	ck_assert_int_eq(cad_recovery_new(a), 0);
	ck_assert_int_eq(cad_recovery_new(b), 0);
	ck_assert_str_ne(a, b);
	ck_assert_uint_eq(strlen(a), CAD_RECOVERY_SHOWN);
	ck_assert(a[4] == '-' && a[9] == '-' && a[14] == '-');
	ck_assert_int_eq(cad_mfa_code_kind(a, norm, sizeof(norm)), CAD_MFA_RECOVERY);
	ck_assert_uint_eq(strlen(norm), CAD_RECOVERY_CHARS);
	ck_assert_int_eq(cad_recovery_hash(norm, salt, h1), 0);
	/* Upper case, without dashes: the same code. */
	for (size_t i = 0, k = 0; i <= strlen(a); i++)
		if (a[i] != '-')
			upper[k++] = (char)(a[i] >= 'a' && a[i] <= 'z' ? a[i] - 32 : a[i]);
	ck_assert_int_eq(cad_mfa_code_kind(upper, norm, sizeof(norm)), CAD_MFA_RECOVERY);
	ck_assert_int_eq(cad_recovery_hash(norm, salt, h2), 0);
	ck_assert_mem_eq(h1, h2, 32);
	ck_assert_int_eq(cad_recovery_hash(norm, salt2, h3), 0);
	ck_assert_int_ne(memcmp(h1, h3, 32), 0);
	ck_assert_int_eq(cad_mfa_code_kind("123456", norm, sizeof(norm)), CAD_MFA_TOTP);
	ck_assert_str_eq(norm, "123456");
	ck_assert_int_eq(cad_mfa_code_kind("abcd-efgh-ijkl-mno1", norm, sizeof(norm)),
	                 CAD_MFA_NOT_A_CODE); /* 1 is not base32 */
	ck_assert_int_eq(cad_mfa_code_kind("abcd-efgh-ijkl", norm, sizeof(norm)),
	                 CAD_MFA_NOT_A_CODE);
	ck_assert_int_eq(cad_mfa_code_kind("abcd-efgh-ijkl-mnop-q", norm, sizeof(norm)),
	                 CAD_MFA_NOT_A_CODE);
	ck_assert_int_eq(cad_mfa_code_kind("12345", norm, sizeof(norm)), CAD_MFA_NOT_A_CODE);
}
END_TEST

START_TEST(policy_patterns)
{
	ck_assert(cad_mfa_pattern_matches("profile.*", "profile.enable"));
	ck_assert(cad_mfa_pattern_matches("principal.*", "principal.mfa.reset"));
	ck_assert(!cad_mfa_pattern_matches("profile.*", "profiles.enable"));
	ck_assert(!cad_mfa_pattern_matches("profile.*", "profile"));
	ck_assert(cad_mfa_pattern_matches("*", "certificate.issue"));
	ck_assert(cad_mfa_pattern_matches("certificate.revoke", "certificate.revoke"));
	ck_assert(!cad_mfa_pattern_matches("certificate.revoke", "certificate.revoked"));
	ck_assert(cad_mfa_pattern_ok("acme.eab.create") && cad_mfa_pattern_ok("token.*") &&
	          cad_mfa_pattern_ok("*"));
	ck_assert(!cad_mfa_pattern_ok("") && !cad_mfa_pattern_ok(".x") &&
	          !cad_mfa_pattern_ok("x.") && !cad_mfa_pattern_ok("Cert") &&
	          !cad_mfa_pattern_ok("a b") && !cad_mfa_pattern_ok("*.revoke"));
}
END_TEST

/* Parse text as a whole cad "mfa:" section into cfg; 0 or -1 with the error in err. */
static int parse(const char *text, struct cad_config *cfg, char *err, size_t n)
{
	struct yconf y = {0};
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	if (yconf_load_mem(&y, "mfa.yaml", text, strlen(text)) == 0)
		rc = cad_mfa_config_parse(&y, yconf_get(&y, yconf_root(&y), "mfa"), cfg);
	snprintf(err, n, "%s", y.err);
	yconf_free(&y);
	return rc;
}

START_TEST(policy_defaults_and_per_role_lists)
{
	static struct cad_config cfg;
	char err[512];

	/* No mfa: section: MFA is off and nothing asks for a code. */
	ck_assert_int_eq(parse("other: 1\n", &cfg, err, sizeof(err)), 0);
	ck_assert(!cad_mfa_required(&cfg, "officer", "certificate.revoke"));
	/* The defaults, for every role not named. */
	ck_assert_int_eq(parse("mfa: {wrap_key: mfa-wrap, step_up: {ra: [], auditor: "
	                       "[certificate.issue]}}\n",
	                       &cfg, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(cfg.mfa_max_failures, 5);
	ck_assert_int_eq(cfg.mfa_window_seconds, 300);
	ck_assert_str_eq(cfg.mfa_issuer, "hsmca");
	static const char *const needs[] = {"certificate.revoke",  "certificate.hold",
	                                    "certificate.release", "principal.create",
	                                    "principal.disable",   "principal.enable",
	                                    "principal.mfa.reset", "token.create",
	                                    "token.revoke",        "authority.retire",
	                                    "profile.enable",      "profile.disable",
	                                    "acme.eab.create",     NULL};
	static const char *const free_[] = {"certificate.issue",
	                                    "acme.eab.revoke",
	                                    "authority.settings.update",
	                                    "provisioning-token.create",
	                                    "mfa.enrol",
	                                    "mfa.disable",
	                                    NULL};
	for (size_t i = 0; needs[i]; i++) {
		ck_assert_msg(cad_mfa_required(&cfg, "officer", needs[i]), "%s", needs[i]);
		ck_assert_msg(cad_mfa_required(&cfg, "ca-admin", needs[i]), "%s", needs[i]);
		ck_assert_msg(!cad_mfa_required(&cfg, "ra", needs[i]), "ra: %s", needs[i]);
	}
	for (size_t i = 0; free_[i]; i++)
		ck_assert_msg(!cad_mfa_required(&cfg, "officer", free_[i]), "%s", free_[i]);
	/* A role's own list replaces the defaults. */
	ck_assert(cad_mfa_required(&cfg, "auditor", "certificate.issue"));
	ck_assert(!cad_mfa_required(&cfg, "auditor", "certificate.revoke"));
	ck_assert(!cad_mfa_required(&cfg, "nobody", "certificate.revoke"));
}
END_TEST

START_TEST(bad_mfa_sections_are_refused_by_name)
{
	static const struct {
		const char *text, *says;
	} bad[] = {
	    {"mfa: {issuer: x}\n", "wrap_key"},
	    {"mfa: {wrap_key: \"a b\"}\n", "not a keyd key label"},
	    {"mfa: {wrap_key: k, colour: red}\n", "colour"},
	    {"mfa: {wrap_key: k, issuer: \"a:b\"}\n", "mfa.issuer"},
	    {"mfa: {wrap_key: k, max_failures: 0}\n", "max_failures"},
	    {"mfa: {wrap_key: k, failure_window_seconds: 5}\n", "failure_window_seconds"},
	    {"mfa: {wrap_key: k, step_up: {wizard: []}}\n", "wizard"},
	    {"mfa: {wrap_key: k, step_up: {officer: certificate.revoke}}\n", "a list of actions"},
	    {"mfa: {wrap_key: k, step_up: {officer: [certificate.frobnicate]}}\n",
	     "matches no action that changes state"},
	    {"mfa: {wrap_key: k, step_up: {officer: [certificate.list]}}\n",
	     "matches no action that changes state"},
	    {"mfa: {wrap_key: k, step_up: {officer: [\"*.revoke\"]}}\n", "not an action name"},
	};
	static struct cad_config cfg;
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i].text, &cfg, err, sizeof(err)) == -1, "accepted: %s",
		              bad[i].text);
		ck_assert_msg(strstr(err, bad[i].says), "%s: error \"%s\" does not say \"%s\"",
		              bad[i].text, err, bad[i].says);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mfa-totp");
	TCase *tc = tcase_create("totp");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, rfc6238_sha1_vectors_through_liboath);
	tcase_add_test(tc, one_step_either_side_is_accepted_two_are_not);
	tcase_add_test(tc, malformed_codes_are_refused);
	tcase_add_test(tc, oathtool_codes_are_accepted);
	tcase_add_test(tc, base32_follows_rfc4648_without_padding);
	tcase_add_test(tc, otpauth_uri_and_qr_svg);
	tcase_add_test(tc, recovery_codes_normalise_and_hash);
	tcase_add_test(tc, policy_patterns);
	tcase_add_test(tc, policy_defaults_and_per_role_lists);
	tcase_add_test(tc, bad_mfa_sections_are_refused_by_name);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
