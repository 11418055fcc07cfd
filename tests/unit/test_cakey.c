/* The CA key module (cakey.h) without keyd: opening a key from a file path and a file: URI,
 * the refusal of a missing one, the digest rule for each key type, and the held key that is
 * dropped after a failure and opened afresh. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "cakey.h"

static char dir[] = "/tmp/hsmca-cakey.XXXXXX";
static char path[256];

static void setup(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	FILE *f;

	if (!mkdtemp(dir) || !k)
		abort();
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	f = fopen(path, "w");
	if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
		abort();
	fclose(f);
	EVP_PKEY_free(k);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

START_TEST(opens_by_path_and_uri)
{
	char err[600] = "", uri[300];
	EVP_PKEY *k = ca_key_open(path, err, sizeof(err));

	ck_assert_ptr_nonnull(k);
	ck_assert(EVP_PKEY_is_a(k, "EC"));
	EVP_PKEY_free(k);
	snprintf(uri, sizeof(uri), "file:%s", path);
	k = ca_key_open(uri, err, sizeof(err));
	ck_assert_ptr_nonnull(k);
	EVP_PKEY_free(k);
	snprintf(uri, sizeof(uri), "%s/absent.key", dir);
	ck_assert_ptr_null(ca_key_open(uri, err, sizeof(err)));
	ck_assert_msg(strstr(err, "cannot load the key") && strstr(err, "absent.key"), "%s", err);
}
END_TEST

static void digest_is(EVP_PKEY *k, const char *want)
{
	const char *md;

	ck_assert_ptr_nonnull(k);
	md = ca_key_digest(k);
	if (!want)
		ck_assert_ptr_null(md);
	else
		ck_assert_str_eq(md, want);
	EVP_PKEY_free(k);
}

START_TEST(one_digest_rule)
{
	digest_is(EVP_RSA_gen(2048), "SHA256");
	digest_is(EVP_EC_gen("P-256"), "SHA256");
	digest_is(EVP_EC_gen("P-384"), "SHA384");
	digest_is(EVP_EC_gen("P-521"), "SHA512");
	digest_is(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), NULL);
	digest_is(EVP_PKEY_Q_keygen(NULL, NULL, "ED448"), NULL);
}
END_TEST

START_TEST(sign_init_uses_the_rule)
{
	EVP_PKEY *k = EVP_EC_gen("P-384");
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char sig[128];
	size_t n = sizeof(sig);

	ck_assert_int_eq(ca_key_sign_init(ctx, k), 1);
	ck_assert(EVP_MD_is_a(EVP_MD_CTX_get0_md(ctx), "SHA384"));
	ck_assert_int_eq(EVP_DigestSign(ctx, sig, &n, (const unsigned char *)"x", 1), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(held_key_is_reopened_after_a_failure)
{
	struct ca_key h;
	char err[600] = "", long_uri[CA_KEY_URI_MAX + 8];
	EVP_PKEY *a, *b, *c;

	memset(long_uri, 'a', sizeof(long_uri) - 1);
	long_uri[sizeof(long_uri) - 1] = '\0';
	ck_assert_int_eq(ca_key_init(&h, long_uri), -1);

	ck_assert_int_eq(ca_key_init(&h, path), 0);
	ck_assert(!ca_key_held(&h));
	a = ca_key_get(&h, err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	ck_assert(ca_key_held(&h));
	b = ca_key_get(&h, err, sizeof(err));
	ck_assert_ptr_eq(a, b); /* held: the same key, not a second open */
	EVP_PKEY_free(b);
	ca_key_failed(&h, a);
	ck_assert(!ca_key_held(&h));
	c = ca_key_get(&h, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(c, a);
	/* A failure reported for a key no longer held leaves the fresh one alone. */
	ca_key_failed(&h, a);
	ck_assert(ca_key_held(&h));
	EVP_PKEY_free(a);
	EVP_PKEY_free(c);
	ca_key_clear(&h);

	/* A key that cannot be opened: NULL with why, and nothing held. */
	ck_assert_int_eq(ca_key_init(&h, "/nonexistent/ca.key"), 0);
	ck_assert_ptr_null(ca_key_get(&h, err, sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent/ca.key"), "%s", err);
	ck_assert(!ca_key_held(&h));
	ca_key_clear(&h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cakey");
	TCase *tc = tcase_create("cakey");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, opens_by_path_and_uri);
	tcase_add_test(tc, one_digest_rule);
	tcase_add_test(tc, sign_init_uses_the_rule);
	tcase_add_test(tc, held_key_is_reopened_after_a_failure);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
