/* keyd's wrap and unwrap operations (backups' data keys) against a real keyd and SoftHSM: AES
 * key generation, round trips, authentication failures, label binding, and the ACL. */
#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct keyd_client *cli;

/* The test's uid may generate and wrap/unwrap with "backup" and "other", sign with "*". */
static void start_with(const char *clients)
{
	struct harness_opts o = {0};
	o.clients_yaml = clients;
	ck_assert_int_eq(harness_start(&h, &o), 0);
	cli = keyd_client_new(h.socket, 5000);
	ck_assert_ptr_nonnull(cli);
}

static char full_yaml[512];

static void setup(void)
{
	snprintf(full_yaml, sizeof(full_yaml),
	         "  - name: backup-test\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [\"*\", generate, wrap, unwrap]\n",
	         (unsigned)getuid());
	start_with(full_yaml);
}

static void teardown(void)
{
	keyd_client_free(cli);
	cli = NULL;
	ck_assert_msg(harness_stop(&h) == 0, "hsmca-keyd did not exit cleanly: see above");
}

static void gen_aes(const char *label, struct keyd_key *k)
{
	struct keyd_err err;
	int r = keyd_client_generate(cli, label, KEYD_KEY_AES, 256, k, &err);
	ck_assert_msg(r == KEYD_OK, "generate %s: %s", label, err.msg);
}

START_TEST(aes_key_is_generated_sensitive_and_unexportable)
{
	struct keyd_key k, pub;
	struct keyd_key *keys;
	struct keyd_err err;
	size_t n;

	gen_aes("backup", &k);
	ck_assert_int_eq(k.type, KEYD_KEY_AES);
	ck_assert_int_eq(k.bits, 256);
	ck_assert_int_eq(k.spki_len, 0);
	ck_assert(k.flags & KEYD_KF_SENSITIVE);
	ck_assert(!(k.flags & KEYD_KF_EXTRACTABLE));
	ck_assert(k.flags & KEYD_KF_NEVER_EXTRACTABLE);
	ck_assert(k.flags & KEYD_KF_LOCAL);
	/* Not a signing key: no public key, not in the signing list. */
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "backup", &pub, &err), KEYD_E_NO_KEY);
	ck_assert_int_eq(keyd_client_list(cli, &keys, &n, &err), KEYD_OK);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_ne(keys[i].label, "backup");
	free(keys);
	/* The label is taken now. */
	ck_assert_int_eq(keyd_client_generate(cli, "backup", KEYD_KEY_AES, 256, &k, &err),
	                 KEYD_E_EXISTS);
}
END_TEST

START_TEST(wrap_then_unwrap_returns_the_secret)
{
	struct keyd_key k;
	struct keyd_err err;
	uint8_t secret[32], blob[KEYD_WRAP_BLOB_MAX], blob2[KEYD_WRAP_BLOB_MAX],
	    back[KEYD_WRAP_BLOB_MAX];
	size_t blen = sizeof(blob), blen2 = sizeof(blob2), backlen = sizeof(back);

	for (size_t i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(i * 7 + 1);
	gen_aes("backup", &k);
	ck_assert_int_eq(keyd_client_wrap(cli, "backup", secret, 32, blob, &blen, &err), KEYD_OK);
	ck_assert_uint_eq(blen, 32 + KEYD_WRAP_OVERHEAD);
	ck_assert_int_eq(blob[0], 1);
	ck_assert_msg(memmem(blob, blen, secret, 32) == NULL, "the secret shows in the blob");
	/* A fresh nonce each time: the same secret never wraps the same way twice. */
	ck_assert_int_eq(keyd_client_wrap(cli, "backup", secret, 32, blob2, &blen2, &err), KEYD_OK);
	ck_assert(memcmp(blob, blob2, blen) != 0);
	ck_assert_int_eq(keyd_client_unwrap(cli, "backup", blob, blen, back, &backlen, &err),
	                 KEYD_OK);
	ck_assert_uint_eq(backlen, 32);
	ck_assert_mem_eq(back, secret, 32);
	backlen = sizeof(back);
	ck_assert_int_eq(keyd_client_unwrap(cli, "backup", blob2, blen2, back, &backlen, &err),
	                 KEYD_OK);
	ck_assert_mem_eq(back, secret, 32);
}
END_TEST

START_TEST(a_changed_blob_does_not_unwrap_and_the_token_stays_online)
{
	struct keyd_key k;
	struct keyd_err err;
	struct keyd_token_status st;
	uint8_t secret[32] = {9}, blob[KEYD_WRAP_BLOB_MAX], bad[KEYD_WRAP_BLOB_MAX],
	        back[KEYD_WRAP_BLOB_MAX];
	size_t blen = sizeof(blob), backlen;
	/* a byte of the nonce, of the ciphertext, of the tag */
	const size_t at[] = {1, 13, 32 + KEYD_WRAP_OVERHEAD - 1};

	gen_aes("backup", &k);
	ck_assert_int_eq(keyd_client_wrap(cli, "backup", secret, 32, blob, &blen, &err), KEYD_OK);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		memcpy(bad, blob, blen);
		bad[at[i]] ^= 0x01;
		backlen = sizeof(back);
		ck_assert_int_eq(keyd_client_unwrap(cli, "backup", bad, blen, back, &backlen, &err),
		                 KEYD_E_BAD_ALG);
		ck_assert_msg(strstr(err.msg, "does not authenticate"), "%s", err.msg);
	}
	/* Truncated, and an unknown format byte. */
	backlen = sizeof(back);
	ck_assert_int_eq(keyd_client_unwrap(cli, "backup", blob, blen - 1, back, &backlen, &err),
	                 KEYD_E_BAD_ALG);
	memcpy(bad, blob, blen);
	bad[0] = 2;
	ck_assert_int_eq(keyd_client_unwrap(cli, "backup", bad, blen, back, &backlen, &err),
	                 KEYD_E_BAD_ALG);
	ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
	ck_assert_int_eq(st.online, 1);
	ck_assert_uint_eq(st.reinits, 0);
	backlen = sizeof(back);
	ck_assert_int_eq(keyd_client_unwrap(cli, "backup", blob, blen, back, &backlen, &err),
	                 KEYD_OK);
}
END_TEST

START_TEST(a_blob_is_bound_to_its_key_label)
{
	struct keyd_key k;
	struct keyd_err err;
	uint8_t secret[16] = {1, 2, 3}, blob[KEYD_WRAP_BLOB_MAX], back[KEYD_WRAP_BLOB_MAX];
	size_t blen = sizeof(blob), backlen = sizeof(back);

	gen_aes("backup", &k);
	gen_aes("other", &k);
	ck_assert_int_eq(keyd_client_wrap(cli, "backup", secret, 16, blob, &blen, &err), KEYD_OK);
	ck_assert_int_eq(keyd_client_unwrap(cli, "other", blob, blen, back, &backlen, &err),
	                 KEYD_E_BAD_ALG);
	/* No AES key by that label; an EC key is not an AES key. */
	ck_assert_int_eq(keyd_client_generate(cli, "ec", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	blen = sizeof(blob);
	ck_assert_int_eq(keyd_client_wrap(cli, "ec", secret, 16, blob, &blen, &err), KEYD_E_NO_KEY);
	ck_assert_int_eq(keyd_client_wrap(cli, "missing", secret, 16, blob, &blen, &err),
	                 KEYD_E_NO_KEY);
}
END_TEST

START_TEST(wrap_and_unwrap_are_granted_by_name_per_key)
{
	struct keyd_key k;
	struct keyd_err err;
	uint8_t secret[32] = {5}, blob[KEYD_WRAP_BLOB_MAX], back[KEYD_WRAP_BLOB_MAX];
	size_t blen = sizeof(blob), backlen = sizeof(back);
	char yaml[512];

	gen_aes("backup", &k);
	gen_aes("other", &k);
	/* The backup client: wrap on "backup" only; "*" grants neither wrap nor unwrap. */
	snprintf(yaml, sizeof(yaml),
	         "  - name: backup-writer\n"
	         "    uid: %u\n"
	         "    keys: [backup]\n"
	         "    operations: [\"*\", wrap]\n",
	         (unsigned)getuid());
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = yaml}), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	ck_assert_int_eq(keyd_client_wrap(cli, "backup", secret, 32, blob, &blen, &err), KEYD_OK);
	ck_assert_int_eq(keyd_client_unwrap(cli, "backup", blob, blen, back, &backlen, &err),
	                 KEYD_E_DENIED);
	ck_assert_msg(strstr(err.msg, "unwrap"), "%s", err.msg);
	blen = sizeof(blob);
	ck_assert_int_eq(keyd_client_wrap(cli, "other", secret, 32, blob, &blen, &err),
	                 KEYD_E_DENIED);

	snprintf(yaml, sizeof(yaml),
	         "  - name: signer\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [\"*\"]\n",
	         (unsigned)getuid());
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = yaml}), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	blen = sizeof(blob);
	ck_assert_int_eq(keyd_client_wrap(cli, "backup", secret, 32, blob, &blen, &err),
	                 KEYD_E_DENIED);
	ck_assert(harness_log_contains(&h, "operation wrap not granted to client signer"));
}
END_TEST

START_TEST(secrets_outside_1_to_512_bytes_are_refused)
{
	struct keyd_key k;
	struct keyd_err err;
	uint8_t big[KEYD_WRAP_DATA_MAX + 1] = {0}, blob[KEYD_WRAP_BLOB_MAX + 64];
	size_t blen = sizeof(blob);

	gen_aes("backup", &k);
	ck_assert_int_eq(
	    keyd_client_wrap(cli, "backup", big, KEYD_WRAP_DATA_MAX, blob, &blen, &err), KEYD_OK);
	ck_assert_uint_eq(blen, KEYD_WRAP_BLOB_MAX);
	blen = sizeof(blob);
	ck_assert_int_ne(
	    keyd_client_wrap(cli, "backup", big, KEYD_WRAP_DATA_MAX + 1, blob, &blen, &err),
	    KEYD_OK);
	ck_assert_int_ne(keyd_client_wrap(cli, "backup", big, 0, blob, &blen, &err), KEYD_OK);
}
END_TEST

/* What the recovery officer's uid (the unprivileged "nobody" here) may do with the archive key,
 * in a child process: unwrap blob and compare it with want, then try to wrap and to sign. The
 * exit status: 0 when unwrap gave want back and wrap and sign were refused; 10 + the unwrap's
 * keyd status when it failed; 20 / 30 when wrap / sign were not refused. */
static int as_recovery_officer(const uint8_t *blob, size_t blen, const uint8_t *want, size_t wlen)
{
	struct passwd *pw = getpwnam("nobody");
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(pw);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct keyd_client *c;
		struct keyd_err err;
		uint8_t back[KEYD_WRAP_BLOB_MAX], b2[KEYD_WRAP_BLOB_MAX], sig[512];
		size_t backlen = sizeof(back), b2len = sizeof(b2), siglen = sizeof(sig);
		int r;
		if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(120);
		c = keyd_client_new(h.socket, 3000);
		if (!c)
			_exit(121);
		r = keyd_client_unwrap(c, "key-archive-2026", blob, blen, back, &backlen, &err);
		if (r != KEYD_OK || backlen != wlen || memcmp(back, want, wlen))
			_exit(10 + (r > 9 ? 9 : r));
		if (keyd_client_wrap(c, "key-archive-2026", want, wlen, b2, &b2len, &err) !=
		    KEYD_E_DENIED)
			_exit(20);
		if (keyd_client_sign(c, "issuing", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, want, 32,
		                     sig, &siglen, &err) != KEYD_E_DENIED)
			_exit(30);
		keyd_client_free(c);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* The archive key's grants as deploy/keyd.example.yaml gives them (docs/key-recovery.md):
 * hsmca-cad may wrap with key-archive-2026 and not unwrap (nor sign with the CA key it has
 * no grant on); the recovery officer's uid may unwrap and nothing else; a uid with no grant
 * (the recovery officer while the example leaves that grant out) can do neither. The approval
 * that gates `hsmca recover` itself is the approvals suite's. */
START_TEST(archive_key_is_wrap_only_for_cad_and_unwrap_only_for_recovery)
{
	struct keyd_key k;
	struct keyd_err err;
	struct passwd *pw = getpwnam("nobody");
	uint8_t dk[32], blob[KEYD_WRAP_BLOB_MAX], back[KEYD_WRAP_BLOB_MAX];
	size_t blen = sizeof(blob), backlen = sizeof(back);
	char yaml[1024];

	ck_assert_ptr_nonnull(pw);
	for (size_t i = 0; i < sizeof(dk); i++)
		dk[i] = (uint8_t)(0xa5 ^ i);
	gen_aes("key-archive-2026", &k);
	ck_assert_int_eq(
	    keyd_client_generate(cli, "issuing", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err), KEYD_OK);
	snprintf(yaml, sizeof(yaml),
	         "  - name: cad\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [issuing]\n"
	         "        operations: [get-public-key, sign]\n"
	         "        kinds: [certificate]\n"
	         "      - keys: [key-archive-2026]\n"
	         "        operations: [wrap]\n"
	         "      - keys: [\"*\"]\n"
	         "        operations: [status]\n"
	         "  - name: recovery-officer\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [key-archive-2026]\n"
	         "        operations: [unwrap]\n",
	         (unsigned)getuid(), (unsigned)pw->pw_uid);
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = yaml}), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);

	/* cad: wrap, as archival does; its unwrap is refused by keyd, by name. */
	ck_assert_int_eq(
	    keyd_client_wrap(cli, "key-archive-2026", dk, sizeof(dk), blob, &blen, &err), KEYD_OK);
	ck_assert_int_eq(
	    keyd_client_unwrap(cli, "key-archive-2026", blob, blen, back, &backlen, &err),
	    KEYD_E_DENIED);
	ck_assert(harness_log_contains(&h, "operation unwrap not granted to client cad"));
	ck_assert_int_eq(keyd_client_generate(cli, "cad-made", KEYD_KEY_AES, 256, &k, &err),
	                 KEYD_E_DENIED);

	/* The recovery officer: unwraps what cad wrapped, and may not wrap or sign. */
	ck_assert_int_eq(as_recovery_officer(blob, blen, dk, sizeof(dk)), 0);

	/* Without the recovery grant (the example's default), nobody but cad is a client: the
	 * officer's uid unwraps nothing. */
	snprintf(yaml, sizeof(yaml),
	         "  - name: cad\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [key-archive-2026]\n"
	         "        operations: [wrap]\n",
	         (unsigned)getuid());
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = yaml}), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	ck_assert_int_eq(as_recovery_officer(blob, blen, dk, sizeof(dk)), 10 + KEYD_E_DENIED);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-wrap");
	TCase *tc = tcase_create("wrap");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, aes_key_is_generated_sensitive_and_unexportable);
	tcase_add_test(tc, wrap_then_unwrap_returns_the_secret);
	tcase_add_test(tc, a_changed_blob_does_not_unwrap_and_the_token_stays_online);
	tcase_add_test(tc, a_blob_is_bound_to_its_key_label);
	tcase_add_test(tc, wrap_and_unwrap_are_granted_by_name_per_key);
	tcase_add_test(tc, secrets_outside_1_to_512_bytes_are_refused);
	tcase_add_test(tc, archive_key_is_wrap_only_for_cad_and_unwrap_only_for_recovery);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
