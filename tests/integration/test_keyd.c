/* hsmca-keyd end to end, on a throwaway SoftHSM token per test case. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "harness.h"
#include "keyd_client.h"
#include "keyd_proto.h"
#include "token_caps.h"

static struct harness h;
static struct keyd_client *cli;
/* Whether the token makes no EC keys (openCryptoki 3.8's software token), asked of keyd once
 * in main(). The tests that need just some key then use RSA 2048 (ANY_*), the EC cases are
 * not registered, and keyd's refusal naming the mechanism is tested instead. */
static int no_ec;
#define ANY_TYPE (no_ec ? KEYD_KEY_RSA : KEYD_KEY_EC)
#define ANY_PARAM (no_ec ? 2048 : KEYD_CURVE_P256)
#define ANY_ALG (no_ec ? KEYD_ALG_RSA_PKCS1 : KEYD_ALG_ECDSA)

/* ---- helpers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void gen(const char *label, int type, uint16_t param, struct keyd_key *k)
{
	struct keyd_err err;
	struct keyd_key tmp;
	int r = keyd_client_generate(cli, label, type, param, k ? k : &tmp, &err);
	ck_assert_msg(r == KEYD_OK, "generate %s: %s", label, err.msg);
}

static EVP_PKEY *pub_of(const struct keyd_key *k)
{
	const unsigned char *p = k->spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)k->spki_len);
	ck_assert_ptr_nonnull(pk);
	return pk;
}

static int verify(const struct keyd_key *k, int alg, int hash, int salt, const uint8_t *dgst,
                  size_t dlen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk = pub_of(k);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
	const EVP_MD *md = hash == KEYD_HASH_SHA256   ? EVP_sha256()
	                   : hash == KEYD_HASH_SHA384 ? EVP_sha384()
	                                              : EVP_sha512();
	int ok = ctx && EVP_PKEY_verify_init(ctx) > 0 && EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;

	if (ok && alg == KEYD_ALG_RSA_PKCS1)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
	if (ok && alg == KEYD_ALG_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) > 0 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
	ok = ok && EVP_PKEY_verify(ctx, sig, siglen, dgst, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

static int raw_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h.socket);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
	ck_assert_int_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read one response frame; returns body length, 0 on EOF, -1 on timeout. */
static ssize_t raw_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	size_t got = 0, want = 4;
	uint32_t len = 0;

	while (got < want) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		r = recv(fd, buf + got, want - got, 0);
		if (r <= 0)
			return 0;
		got += (size_t)r;
		if (got == 4 && want == 4) {
			ck_assert_int_eq(keyd_frame_len(buf, &len), 0);
			ck_assert_uint_le(len + 4, cap);
			want = 4 + len;
		}
	}
	memmove(buf, buf + 4, len);
	return (ssize_t)len;
}

static size_t encode(const struct keyd_req *r, uint8_t *buf, size_t cap)
{
	struct keyd_wbuf w = {buf, 0, cap, 0};
	ck_assert_int_eq(keyd_req_encode(r, &w), 0);
	return w.len;
}

/* Read one answer into buf and decode it into *resp (pointing into buf); the test fails when
 * none comes within timeout_ms or it does not decode. */
static void raw_answer(int fd, uint8_t *buf, size_t cap, int timeout_ms, struct keyd_resp *resp)
{
	const char *why = "";
	ssize_t n = raw_recv(fd, buf, cap, timeout_ms);

	ck_assert_msg(n > 0, "no answer from keyd (%s)", n ? "timeout" : "closed");
	ck_assert_msg(keyd_resp_decode(buf, (size_t)n, resp, &why) == 0, "answer: %s", why);
}

/* Send n bytes of out (a frame, or what a test makes of one) and read keyd's answer as
 * raw_answer does; out and buf may be the same buffer. */
static void raw_exchange(int fd, const void *out, size_t n, uint8_t *buf, size_t cap,
                         struct keyd_resp *resp)
{
	raw_send(fd, out, n);
	raw_answer(fd, buf, cap, 5000, resp);
}

static int hello_ok(int fd)
{
	struct keyd_req r = {.op = KEYD_OP_HELLO, .id = 7, .vmin = 1, .vmax = 1};
	uint8_t buf[4 + KEYD_FRAME_MAX];
	struct keyd_resp resp;

	raw_exchange(fd, buf, encode(&r, buf, sizeof(buf)), buf, sizeof(buf), &resp);
	return resp.status == KEYD_OK;
}

static void start(const struct harness_opts *o)
{
	harness_check_start(&h, o);
	cli = keyd_client_new(h.socket, 3000);
	ck_assert_ptr_nonnull(cli);
}

static void stop(void)
{
	int st, report;

	keyd_client_free(cli);
	cli = NULL;
	/* keyd runs under ASan/UBSan/LSan too. LeakSanitizer reports only at exit: keyd is stopped
	 * (its status checked) before its log is read, and a report from any of its runs in this
	 * test (refused start-ups included) fails the test. */
	st = h.keyd_pid > 0 ? harness_keyd_stop(&h) : 0;
	report = harness_log_has_sanitizer_report(h.log);
	if (report)
		fprintf(stderr, "test_keyd: sanitizer report in keyd's log:\n%s\n",
		        harness_slurp(h.log));
	harness_stop(&h);
	ck_assert_msg(st == 0, "hsmca-keyd did not exit cleanly on SIGTERM (%d)", st);
	ck_assert_msg(!report, "sanitizer report in keyd's log");
}

static void setup_default(void)
{
	start(NULL);
}

/* ---- sign and verify, every algorithm ---- */

static void sign_verify(const char *label, const struct keyd_key *k, int alg, int hash)
{
	uint8_t dgst[64], sig[KEYD_SIG_MAX];
	size_t dlen = keyd_hash_len(hash), siglen = sizeof(sig);
	int salt = alg == KEYD_ALG_RSA_PSS ? (int)dlen : 0;
	struct keyd_err err;

	RAND_bytes(dgst, (int)dlen);
	ck_assert_msg(keyd_client_sign(cli, label, alg, hash, (uint16_t)salt, dgst, dlen, sig,
	                               &siglen, &err) == KEYD_OK,
	              "%s %s-%s: %s", label, keyd_alg_name(alg), keyd_hash_name(hash), err.msg);
	ck_assert_msg(verify(k, alg, hash, salt, dgst, dlen, sig, siglen),
	              "%s %s-%s: bad signature", label, keyd_alg_name(alg), keyd_hash_name(hash));
}

START_TEST(sign_every_algorithm_verifies)
{
	struct keyd_key rsa, p256, p384;
	int hashes[] = {KEYD_HASH_SHA256, KEYD_HASH_SHA384, KEYD_HASH_SHA512};

	gen("rsa", KEYD_KEY_RSA, 2048, &rsa);
	if (!no_ec) {
		gen("p256", KEYD_KEY_EC, KEYD_CURVE_P256, &p256);
		gen("p384", KEYD_KEY_EC, KEYD_CURVE_P384, &p384);
	}
	for (int i = 0; i < 3; i++) {
		sign_verify("rsa", &rsa, KEYD_ALG_RSA_PKCS1, hashes[i]);
		sign_verify("rsa", &rsa, KEYD_ALG_RSA_PSS, hashes[i]);
		if (no_ec)
			continue;
		sign_verify("p256", &p256, KEYD_ALG_ECDSA, hashes[i]);
		sign_verify("p384", &p384, KEYD_ALG_ECDSA, hashes[i]);
	}
}
END_TEST

START_TEST(sign_with_algorithm_of_other_key_type_is_refused)
{
	uint8_t dgst[32] = {1}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;

	gen("p256", ANY_TYPE, ANY_PARAM, NULL);
	ck_assert_int_eq(keyd_client_sign(cli, "p256", no_ec ? KEYD_ALG_ECDSA : KEYD_ALG_RSA_PKCS1,
	                                  KEYD_HASH_SHA256, 0, dgst, 32, sig, &siglen, &err),
	                 KEYD_E_BAD_ALG);
	ck_assert_ptr_nonnull(strstr(err.msg, "p256"));
}
END_TEST

START_TEST(pss_salt_longer_than_key_allows_is_refused)
{
	uint8_t dgst[64] = {1}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;

	gen("rsa", KEYD_KEY_RSA, 2048, NULL);
	ck_assert_int_eq(keyd_client_sign(cli, "rsa", KEYD_ALG_RSA_PSS, KEYD_HASH_SHA512, 200, dgst,
	                                  64, sig, &siglen, &err),
	                 KEYD_E_BAD_ALG);
}
END_TEST

/* A token without EC key generation: keyd refuses by the mechanism's name and makes
 * nothing. */
START_TEST(ec_generate_is_refused_naming_the_mechanism)
{
	struct keyd_key k;
	struct keyd_err err;

	ck_assert_int_eq(keyd_client_generate(cli, "ec", KEYD_KEY_EC, KEYD_CURVE_P384, &k, &err),
	                 KEYD_E_BAD_ALG);
	ck_assert_msg(strstr(err.msg, "not supported by this token") &&
	                  strstr(err.msg, "CKM_EC_KEY_PAIR_GEN"),
	              "error: %s", err.msg);
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "ec", &k, &err), KEYD_E_NO_KEY);
}
END_TEST

START_TEST(sign_unknown_key_is_no_key)
{
	uint8_t dgst[32] = {1}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;

	ck_assert_int_eq(keyd_client_sign(cli, "missing", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dgst,
	                                  32, sig, &siglen, &err),
	                 KEYD_E_NO_KEY);
}
END_TEST

/* ---- generate ---- */

/* Read attributes straight from the token, not through keyd. */
static void token_attrs(const char *label, CK_BBOOL out[5], CK_RV *secret_rv)
{
	void *dl = dlopen(h.module, RTLD_NOW);
	CK_RV (*getlist)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR fl;
	CK_SLOT_ID slots[8];
	CK_ULONG nslots = 8, n = 0;
	CK_SESSION_HANDLE s;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_OBJECT_HANDLE o;
	CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                       {CKA_LABEL, (void *)label, strlen(label)}};
	CK_ATTRIBUTE a[] = {{CKA_SENSITIVE, &out[0], 1},
	                    {CKA_EXTRACTABLE, &out[1], 1},
	                    {CKA_ALWAYS_SENSITIVE, &out[2], 1},
	                    {CKA_NEVER_EXTRACTABLE, &out[3], 1},
	                    {CKA_LOCAL, &out[4], 1}};
	uint8_t secret[1024];
	CK_ATTRIBUTE sa = {CKA_PRIVATE_EXPONENT, secret, sizeof(secret)};

	ck_assert_ptr_nonnull(dl);
	getlist = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(dl, "C_GetFunctionList");
	ck_assert_int_eq(getlist(&fl), CKR_OK);
	ck_assert_int_eq(fl->C_Initialize(NULL), CKR_OK);
	ck_assert_int_eq(fl->C_GetSlotList(CK_TRUE, slots, &nslots), CKR_OK);
	ck_assert_uint_ge(nslots, 1);
	ck_assert_int_eq(fl->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
	ck_assert_int_eq(fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)h.pin, strlen(h.pin)), CKR_OK);
	ck_assert_int_eq(fl->C_FindObjectsInit(s, find, 2), CKR_OK);
	ck_assert_int_eq(fl->C_FindObjects(s, &o, 1, &n), CKR_OK);
	fl->C_FindObjectsFinal(s);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(fl->C_GetAttributeValue(s, o, a, 5), CKR_OK);
	*secret_rv = fl->C_GetAttributeValue(s, o, &sa, 1);
	fl->C_Logout(s);
	fl->C_CloseSession(s);
	/* No C_Finalize: SoftHSM 2.6 may crash in it (docs/platform-facts.md). */
}

START_TEST(generated_keys_are_sensitive_non_extractable_local)
{
	struct keyd_key k;
	CK_BBOOL attrs[5];
	CK_RV secret_rv;
	const unsigned want = KEYD_KF_SENSITIVE | KEYD_KF_ALWAYS_SENSITIVE |
	                      KEYD_KF_NEVER_EXTRACTABLE | KEYD_KF_LOCAL;

	gen("rsa", KEYD_KEY_RSA, 2048, &k);
	ck_assert_uint_eq(k.flags, want); /* and not KEYD_KF_EXTRACTABLE */
	ck_assert_uint_eq(k.bits, 2048);
	gen("ec", no_ec ? KEYD_KEY_RSA : KEYD_KEY_EC, no_ec ? 3072 : KEYD_CURVE_P384, &k);
	ck_assert_uint_eq(k.flags, want);
	ck_assert_uint_eq(k.bits, no_ec ? 3072 : 384);
	/* keyd's report matches what the token itself says. */
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	token_attrs("rsa", attrs, &secret_rv);
	ck_assert(attrs[0] && !attrs[1] && attrs[2] && attrs[3] && attrs[4]);
	/* The private exponent cannot be read: SoftHSM refuses it as sensitive; tpm2-pkcs11
	 * holds no such attribute at all (the secret lives only inside the TPM). */
	if (harness_token_is_softhsm(&h))
		ck_assert_int_eq(secret_rv, CKR_ATTRIBUTE_SENSITIVE);
	else
		ck_assert_msg(
		    secret_rv == CKR_ATTRIBUTE_SENSITIVE || secret_rv == CKR_ATTRIBUTE_TYPE_INVALID,
		    "private exponent readable or odd answer: 0x%lx", (unsigned long)secret_rv);
}
END_TEST

START_TEST(generate_refuses_existing_label)
{
	struct keyd_key k;
	struct keyd_err err;

	gen("dup", ANY_TYPE, ANY_PARAM, NULL);
	ck_assert_int_eq(keyd_client_generate(cli, "dup", KEYD_KEY_RSA, 2048, &k, &err),
	                 KEYD_E_EXISTS);
	ck_assert_ptr_nonnull(strstr(err.msg, "dup"));
}
END_TEST

START_TEST(generated_key_survives_restart)
{
	struct keyd_key a, b;
	struct keyd_err err;

	gen("keep", ANY_TYPE, ANY_PARAM, &a);
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "keep", &b, &err), KEYD_OK);
	ck_assert_uint_eq(a.spki_len, b.spki_len);
	ck_assert_mem_eq(a.spki, b.spki, a.spki_len);
}
END_TEST

START_TEST(list_keys_shows_generated_keys)
{
	struct keyd_key *keys;
	size_t n;
	struct keyd_err err;

	gen("a1", ANY_TYPE, ANY_PARAM, NULL);
	gen("a2", ANY_TYPE, ANY_PARAM, NULL);
	ck_assert_int_eq(keyd_client_list(cli, &keys, &n, &err), KEYD_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert(!strcmp(keys[0].label, "a1") || !strcmp(keys[1].label, "a1"));
	free(keys);
}
END_TEST

/* ---- ACL ---- */

static void setup_stranger(void)
{
	/* The ACL names another uid only: this process is a stranger. */
	struct harness_opts o = {.clients_yaml = "  - name: other\n"
	                                         "    uid: 4242\n"
	                                         "    keys: [\"*\"]\n"
	                                         "    operations: [\"*\", generate]\n"};
	start(&o);
}

START_TEST(uid_not_in_acl_is_refused)
{
	struct keyd_key k;
	struct keyd_err err;
	uint16_t v;

	ck_assert_int_eq(keyd_client_hello(cli, &v, &err), KEYD_E_DENIED);
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "any", &k, &err), KEYD_E_DENIED);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a client"));
	ck_assert(harness_log_contains(&h, "is not in the ACL"));
}
END_TEST

static char limited_yaml[512];

static void setup_limited(void)
{
	struct harness_opts admin = {0};
	struct keyd_err err;
	struct keyd_key k;

	/* Make two keys with full rights, then narrow this uid to one key and
	 * to get-public-key + sign. */
	start(&admin);
	ck_assert_int_eq(keyd_client_generate(cli, "granted", ANY_TYPE, ANY_PARAM, &k, &err),
	                 KEYD_OK);
	ck_assert_int_eq(keyd_client_generate(cli, "secret", ANY_TYPE, ANY_PARAM, &k, &err),
	                 KEYD_OK);
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	snprintf(limited_yaml, sizeof(limited_yaml),
	         "  - name: signer\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [granted]\n"
	         "        operations: [get-public-key, sign]\n"
	         "        kinds: [digest]\n",
	         (unsigned)getuid());
	admin.clients_yaml = limited_yaml;
	ck_assert_int_eq(harness_write_config(&h, &admin), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
}

START_TEST(granted_uid_is_refused_ungranted_key)
{
	uint8_t dgst[32] = {1}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;
	struct keyd_key k;

	ck_assert_int_eq(keyd_client_sign(cli, "granted", ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32,
	                                  sig, &siglen, &err),
	                 KEYD_OK);
	siglen = sizeof(sig);
	ck_assert_int_eq(keyd_client_sign(cli, "secret", ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32,
	                                  sig, &siglen, &err),
	                 KEYD_E_DENIED);
	ck_assert_ptr_nonnull(strstr(err.msg, "secret"));
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "secret", &k, &err), KEYD_E_DENIED);
	/* A key that does not exist is denied, not reported missing. */
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "nosuch", &k, &err), KEYD_E_DENIED);
}
END_TEST

START_TEST(granted_uid_is_refused_ungranted_operation)
{
	struct keyd_err err;
	struct keyd_key k, *keys;
	struct keyd_token_status st;
	size_t n;

	ck_assert_int_eq(keyd_client_generate(cli, "granted2", ANY_TYPE, ANY_PARAM, &k, &err),
	                 KEYD_E_DENIED);
	ck_assert_int_eq(keyd_client_list(cli, &keys, &n, &err), KEYD_E_DENIED);
	ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_E_DENIED);
	ck_assert_ptr_nonnull(strstr(err.msg, "status"));
	ck_assert(harness_log_contains(&h, "result=denied"));
}
END_TEST

START_TEST(star_operations_do_not_grant_generate)
{
	struct harness_opts o = {0};
	struct keyd_err err;
	struct keyd_key k;
	char yaml[256];

	snprintf(yaml, sizeof(yaml),
	         "  - name: all-but-generate\n    uid: %u\n    keys: [\"*\"]\n"
	         "    operations: [\"*\"]\n",
	         (unsigned)getuid());
	o.clients_yaml = yaml;
	start(&o);
	ck_assert_int_eq(keyd_client_generate(cli, "k", ANY_TYPE, ANY_PARAM, &k, &err),
	                 KEYD_E_DENIED);
	stop();
}
END_TEST

/* ---- frames ---- */

START_TEST(oversized_frame_closes_only_that_connection)
{
	int bad = raw_connect(), good = raw_connect();
	uint8_t hdr[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
	uint8_t buf[64];

	ck_assert(hello_ok(good));
	raw_send(bad, hdr, 4);
	ck_assert_int_eq(raw_recv(bad, buf, sizeof(buf), 5000), 0); /* closed */
	ck_assert(hello_ok(good));
	ck_assert(harness_log_contains(&h, "frame length 1048577 outside"));
	close(bad);
	close(good);
}
END_TEST

START_TEST(zero_length_frame_is_malformed)
{
	int fd = raw_connect();
	uint8_t hdr[4] = {0, 0, 0, 0}, buf[64];

	raw_send(fd, hdr, 4);
	ck_assert_int_eq(raw_recv(fd, buf, sizeof(buf), 5000), 0);
	close(fd);
}
END_TEST

START_TEST(trailing_bytes_get_malformed_answer_and_close)
{
	int fd = raw_connect();
	struct keyd_req r = {.op = KEYD_OP_STATUS, .id = 99};
	uint8_t buf[256];
	struct keyd_resp resp;
	size_t n = encode(&r, buf, sizeof(buf));

	/* one extra byte inside the frame */
	buf[3]++;
	buf[n++] = 0xAA;
	raw_exchange(fd, buf, n, buf, sizeof(buf), &resp);
	ck_assert_int_eq(resp.status, KEYD_E_MALFORMED);
	ck_assert_uint_eq(resp.id, 99);
	ck_assert_ptr_nonnull(strstr(resp.msg, "trailing"));
	ck_assert_int_eq(raw_recv(fd, buf, sizeof(buf), 5000), 0);
	close(fd);
	ck_assert(harness_log_contains(&h, "malformed frame"));
}
END_TEST

START_TEST(truncated_frame_then_hangup_leaves_keyd_serving)
{
	int fd = raw_connect(), good;
	uint8_t part[] = {0, 0, 0, 40, KEYD_OP_SIGN, 0, 0, 0, 1};

	raw_send(fd, part, sizeof(part));
	close(fd);
	good = raw_connect();
	ck_assert(hello_ok(good));
	close(good);
}
END_TEST

START_TEST(unknown_operation_is_malformed)
{
	int fd = raw_connect();
	uint8_t frame[] = {0, 0, 0, 5, 0x77, 0, 0, 0, 3}, buf[256];
	struct keyd_resp resp;

	raw_exchange(fd, frame, sizeof(frame), buf, sizeof(buf), &resp);
	ck_assert_int_eq(resp.status, KEYD_E_MALFORMED);
	close(fd);
}
END_TEST

START_TEST(bad_version_is_refused)
{
	int fd = raw_connect();
	struct keyd_req r = {
	    .op = KEYD_OP_HELLO, .id = 1, .vmin = KEYD_PROTO_VERSION + 1, .vmax = 9};
	uint8_t buf[256];
	struct keyd_resp resp;

	raw_exchange(fd, buf, encode(&r, buf, sizeof(buf)), buf, sizeof(buf), &resp);
	ck_assert_int_eq(resp.status, KEYD_E_VERSION);
	close(fd);
}
END_TEST

/* ---- concurrency ---- */

START_TEST(pipelined_requests_are_all_answered_by_id)
{
	enum { N = 40 };
	int fd, seen[N] = {0};
	uint8_t out[N * 128], buf[1024];
	size_t len = 0;

	gen("p", ANY_TYPE, ANY_PARAM, NULL);
	fd = raw_connect();
	for (int i = 0; i < N; i++) {
		struct keyd_req r = {.op = KEYD_OP_SIGN,
		                     .id = 1000 + (uint32_t)i,
		                     .alg = ANY_ALG,
		                     .hash = KEYD_HASH_SHA256,
		                     .digest_len = 32};
		snprintf(r.label, sizeof(r.label), "p");
		memset(r.digest, i, 32);
		len += encode(&r, out + len, sizeof(out) - len);
	}
	raw_send(fd, out, len);
	for (int i = 0; i < N; i++) {
		struct keyd_resp resp;
		raw_answer(fd, buf, sizeof(buf), 10000, &resp);
		ck_assert_int_eq(resp.status, KEYD_OK);
		ck_assert_uint_ge(resp.id, 1000);
		ck_assert_uint_lt(resp.id, 1000 + N);
		ck_assert_int_eq(seen[resp.id - 1000]++, 0);
	}
	close(fd);
}
END_TEST

static void setup_tiny_queue(void)
{
	struct harness_opts o = {.workers = 1, .queue = 1};
	start(&o);
}

START_TEST(full_queue_answers_busy)
{
	enum { N = 60 };
	int fd, busy = 0, ok = 0;
	uint8_t out[N * 128], buf[1024];
	size_t len = 0;

	gen("r", KEYD_KEY_RSA, 2048, NULL);
	fd = raw_connect();
	for (int i = 0; i < N; i++) {
		struct keyd_req r = {.op = KEYD_OP_SIGN,
		                     .id = (uint32_t)i + 1,
		                     .alg = KEYD_ALG_RSA_PKCS1,
		                     .hash = KEYD_HASH_SHA256,
		                     .digest_len = 32};
		snprintf(r.label, sizeof(r.label), "r");
		len += encode(&r, out + len, sizeof(out) - len);
	}
	raw_send(fd, out, len);
	for (int i = 0; i < N; i++) {
		struct keyd_resp resp;
		raw_answer(fd, buf, sizeof(buf), 10000, &resp);
		if (resp.status == KEYD_E_BUSY)
			busy++;
		else if (resp.status == KEYD_OK)
			ok++;
	}
	ck_assert_int_eq(busy + ok, N);
	ck_assert_int_gt(busy, 0);
	ck_assert_int_gt(ok, 0);
	close(fd);
}
END_TEST

/* ---- restarts ---- */

START_TEST(client_reconnects_after_keyd_restart)
{
	uint8_t dgst[32] = {2}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;

	gen("k", ANY_TYPE, ANY_PARAM, NULL);
	ck_assert_int_eq(
	    keyd_client_sign(cli, "k", ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32, sig, &siglen, &err),
	    KEYD_OK);
	harness_keyd_kill(&h); /* a crash, with our connection open */
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	siglen = sizeof(sig);
	ck_assert_msg(keyd_client_sign(cli, "k", ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32, sig,
	                               &siglen, &err) == KEYD_OK,
	              "after restart: %s", err.msg);
}
END_TEST

START_TEST(keyd_down_gives_unreachable_within_timeout)
{
	uint8_t dgst[32] = {2}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;
	struct keyd_client *quick = keyd_client_new(h.socket, 500);
	int64_t t0;

	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	t0 = now_ms();
	ck_assert_int_eq(keyd_client_sign(quick, "k", ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32, sig,
	                                  &siglen, &err),
	                 KEYD_E_UNREACHABLE);
	ck_assert_int_lt(now_ms() - t0, 3000);
	ck_assert(keyd_status_retryable(err.status));
	keyd_client_free(quick);
}
END_TEST

START_TEST(sigterm_stops_cleanly_and_removes_socket)
{
	struct stat st;

	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_ne(stat(h.socket, &st), 0);
}
END_TEST

/* A keyd that died between binding its socket under PATH.new and renaming it into place left
 * PATH.new behind: the next keyd starts all the same, serves at PATH, and leaves no PATH.new. */
START_TEST(leftover_socket_of_a_dead_keyd_does_not_stop_the_next)
{
	uint8_t dgst[32] = {3}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	gen("k", ANY_TYPE, ANY_PARAM, NULL);
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", h.socket),
	                 (int)sizeof(sa.sun_path));
	ck_assert_int_ge(fd = socket(AF_UNIX, SOCK_STREAM, 0), 0);
	/* bound, never listening */
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	ck_assert_msg(keyd_client_sign(cli, "k", ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32, sig,
	                               &siglen, &err) == KEYD_OK,
	              "after a leftover %s: %s", sa.sun_path, err.msg);
	ck_assert_int_eq(stat(h.socket, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg(stat(sa.sun_path, &st) != 0, "%s is still there", sa.sun_path);
}
END_TEST

/* ---- module failure (PKCS#11 fault shim) ---- */

static char fault_file[600], fault_env[700];
static const char *shim_envv[2];

static void setup_shim(void)
{
	static char module[600];
	struct harness_opts o = {0};
	const char *build = getenv("HSMCA_BUILD");

	ck_assert_ptr_nonnull(build);
	snprintf(module, sizeof(module), "%s/tests/shim/libp11shim.so", build);
	snprintf(fault_file, sizeof(fault_file), "/tmp/hsmca-fault-%d", (int)getpid());
	unlink(fault_file);
	snprintf(fault_env, sizeof(fault_env), "HSMCA_SHIM_FAULT_FILE=%s", fault_file);
	/* The harness points the shim (HSMCA_SHIM_MODULE) at the token under test. */
	shim_envv[0] = fault_env;
	shim_envv[1] = NULL;
	o.module = module;
	o.keyd_env = shim_envv;
	start(&o);
}

static void teardown_shim(void)
{
	unlink(fault_file);
	stop();
}

static int sign_once(const char *label, struct keyd_err *err)
{
	uint8_t dgst[32] = {3}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);

	return keyd_client_sign(cli, label, ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32, sig, &siglen,
	                        err);
}

static void inject(const char *kind)
{
	FILE *f = fopen(fault_file, "w");
	ck_assert_ptr_nonnull(f);
	fputs(kind, f);
	fclose(f);
}

static void recovery_after(const char *kind)
{
	struct keyd_err err;
	struct keyd_token_status st;
	int64_t t0;
	int r;

	gen("k", ANY_TYPE, ANY_PARAM, NULL);
	ck_assert_int_eq(sign_once("k", &err), KEYD_OK);
	inject(kind);
	/* The failure is reported as retryable, at once, never a hang. */
	t0 = now_ms();
	r = sign_once("k", &err);
	ck_assert_msg(r == KEYD_E_OFFLINE, "sign during fault: %d %s", r, err.msg);
	ck_assert_int_lt(now_ms() - t0, 2000);
	ck_assert(keyd_status_retryable(r));
	ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
	ck_assert_int_eq(st.online, 0);
	ck_assert_int_eq(sign_once("k", &err), KEYD_E_OFFLINE);
	/* The device comes back: keyd re-initialises by itself. */
	unlink(fault_file);
	t0 = now_ms();
	do {
		usleep(100000);
		ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
	} while (!st.online && now_ms() - t0 < 15000);
	ck_assert_msg(st.online, "token did not come back online");
	ck_assert_uint_ge(st.reinits, 1);
	ck_assert_int_eq(sign_once("k", &err), KEYD_OK);
	ck_assert(harness_log_contains(&h, "token offline"));
	ck_assert(harness_log_contains(&h, "online again"));
}

START_TEST(device_error_takes_token_offline_and_back)
{
	recovery_after("device-error");
}
END_TEST

START_TEST(session_invalid_takes_token_offline_and_back)
{
	recovery_after("session-invalid");
}
END_TEST

START_TEST(token_not_present_takes_token_offline_and_back)
{
	recovery_after("token-not-present");
}
END_TEST

START_TEST(idle_fault_is_found_by_health_check)
{
	struct keyd_err err;
	struct keyd_token_status st;
	int64_t t0;

	inject("device-error");
	t0 = now_ms();
	do {
		usleep(100000);
		ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
	} while (st.online && now_ms() - t0 < 5000);
	ck_assert_int_eq(st.online, 0);
	unlink(fault_file);
}
END_TEST

/* ---- start-up refusals ---- */

START_TEST(group_readable_pin_file_is_refused)
{
	char pin[600];

	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	snprintf(pin, sizeof(pin), "%s/pin", h.dir);
	ck_assert_int_eq(chmod(pin, 0640), 0);
	ck_assert_int_ne(harness_keyd_start(&h), 0);
	ck_assert(harness_log_contains(&h, "lets group or others read it"));
	chmod(pin, 0600);
}
END_TEST

START_TEST(wrong_pin_is_refused_at_start)
{
	char pin[600];
	FILE *f;

	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	snprintf(pin, sizeof(pin), "%s/pin", h.dir);
	f = fopen(pin, "w");
	fputs("wrong-pin", f);
	fclose(f);
	ck_assert_int_ne(harness_keyd_start(&h), 0);
	ck_assert(harness_log_contains(&h, "login failed"));
	ck_assert(!harness_log_contains(&h, "wrong-pin"));
	ck_assert(!harness_log_contains(&h, h.pin));
}
END_TEST

/* Recovery that keeps failing under the filter names module_ipc, unless it is set already
 * (the token scripts of tests/tokens set it). */
START_TEST(failing_recovery_suggests_module_ipc)
{
	const char *hint = "set module_ipc: true";
	int ipc = strstr(h.token_keyd, "module_ipc: true") != NULL;
	struct keyd_err err;
	int64_t t0;

	gen("k", ANY_TYPE, ANY_PARAM, NULL);
	inject("device-error");
	ck_assert_int_eq(sign_once("k", &err), KEYD_E_OFFLINE);
	/* Five failed attempts: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of backoff. */
	t0 = now_ms();
	while (!harness_log_contains(&h, "retrying in 3200 ms") && now_ms() - t0 < 15000)
		usleep(100000);
	ck_assert(harness_log_contains(&h, "retrying in 3200 ms"));
	ck_assert_int_eq(harness_log_contains(&h, hint), !ipc);
	unlink(fault_file);
}
END_TEST

/* ---- the token's capabilities in status (protocol version 3) ---- */

static const struct keyd_mech_cap *cap_of(const struct keyd_token_caps *k, uint32_t mech)
{
	for (unsigned i = 0; i < k->nmechs; i++)
		if (k->mechs[i].mech == mech)
			return &k->mechs[i];
	return NULL;
}

/* A client that speaks only versions 1..vmax: the status record it gets, decoded. */
static void raw_status(uint16_t vmax, struct keyd_resp *resp)
{
	struct keyd_req hello = {.op = KEYD_OP_HELLO, .id = 1, .vmin = 1, .vmax = vmax};
	struct keyd_req st = {.op = KEYD_OP_STATUS, .id = 2};
	static uint8_t buf[4 + KEYD_FRAME_MAX];
	int fd = raw_connect();

	raw_exchange(fd, buf, encode(&hello, buf, sizeof(buf)), buf, sizeof(buf), resp);
	raw_exchange(fd, buf, encode(&st, buf, sizeof(buf)), buf, sizeof(buf), resp);
	ck_assert_int_eq(resp->status, KEYD_OK);
	close(fd);
}

/* The test's uid may also wrap (never granted by "*"). */
static void setup_wrap(void)
{
	static char yaml[256];
	struct harness_opts o = {0};

	snprintf(yaml, sizeof(yaml),
	         "  - name: test\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [\"*\", generate, wrap]\n",
	         (unsigned)getuid());
	o.clients_yaml = yaml;
	start(&o);
}

START_TEST(status_reports_the_tokens_capabilities)
{
	static const uint8_t secret[16] = {1};
	struct keyd_token_status st;
	struct keyd_resp resp;
	struct keyd_err err;
	const struct keyd_mech_cap *m;
	uint8_t blob[KEYD_WRAP_BLOB_MAX];
	size_t bloblen = sizeof(blob);
	int rc;

	ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
	ck_assert(st.caps.present);
	ck_assert_int_eq(st.caps.have, KEYD_CAPS_TOKEN_INFO | KEYD_CAPS_MECHS);
	ck_assert_msg(st.caps.token_flags & CKF_LOGIN_REQUIRED, "flags 0x%x", st.caps.token_flags);
	ck_assert(st.caps.manufacturer[0] && st.caps.model[0]);
	/* Every token here signs RSA PKCS#1 v1.5 and makes RSA keys. */
	m = cap_of(&st.caps, CKM_RSA_PKCS);
	ck_assert_ptr_nonnull(m);
	ck_assert(m->flags & CKF_SIGN);
	ck_assert_uint_le(m->min_size, 2048);
	ck_assert_uint_ge(m->max_size, 3072);
	m = cap_of(&st.caps, CKM_RSA_PKCS_KEY_PAIR_GEN);
	ck_assert(m && (m->flags & CKF_GENERATE_KEY_PAIR));
	/* EC as keyd found it at start (main() asked keyd to make an EC key). */
	m = cap_of(&st.caps, CKM_ECDSA);
	ck_assert_int_eq(m == NULL, no_ec);
	if (harness_token_is_softhsm(&h)) {
		ck_assert(m && (m->flags & CKF_SIGN));
		ck_assert_ptr_nonnull(cap_of(&st.caps, CKM_RSA_PKCS_PSS));
		ck_assert_ptr_nonnull(cap_of(&st.caps, CKM_AES_GCM));
	}
	/* wrap: done where the token has AES-GCM, else refused naming the mechanism. */
	m = cap_of(&st.caps, CKM_AES_GCM);
	if (m) {
		gen("wrap-key", KEYD_KEY_AES, 256, NULL);
		ck_assert_int_eq(
		    keyd_client_wrap(cli, "wrap-key", secret, sizeof(secret), blob, &bloblen, &err),
		    KEYD_OK);
	} else {
		rc =
		    keyd_client_wrap(cli, "wrap-key", secret, sizeof(secret), blob, &bloblen, &err);
		ck_assert_int_eq(rc, KEYD_E_BAD_ALG);
		ck_assert_msg(strstr(err.msg, "not supported by this token") &&
		                  strstr(err.msg, "CKM_AES_GCM"),
		              "%s", err.msg);
	}
	/* The start log says the same. */
	ck_assert(harness_log_contains(&h, "mechanisms; keyd's: CKM_RSA_PKCS_KEY_PAIR_GEN("));
	ck_assert(harness_log_contains(&h, m ? "CKM_AES_GCM(" : "CKM_AES_GCM(missing)"));
	ck_assert(harness_log_contains(&h, ", hardware "));
	/* A client of protocol version 2 gets the status record it knows, nothing after it. */
	raw_status(2, &resp);
	ck_assert(!resp.st.caps.present);
	ck_assert_str_eq(resp.st.token, st.token);
	raw_status(3, &resp);
	ck_assert(resp.st.caps.present);
	ck_assert_int_eq(resp.st.caps.nmechs, st.caps.nmechs);
}
END_TEST

/* ---- how frames arrive: keyd reads each connection into a buffer of its own ---- */

static void pause_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

static size_t sign_frame(uint32_t id, uint8_t *buf, size_t cap)
{
	struct keyd_req r = {.op = KEYD_OP_SIGN,
	                     .id = id,
	                     .alg = ANY_ALG,
	                     .hash = KEYD_HASH_SHA256,
	                     .digest_len = 32};

	snprintf(r.label, sizeof(r.label), "split");
	memset(r.digest, (int)id, 32);
	return encode(&r, buf, cap);
}

/* Read n answers and check that each is ok and that the ids are first..first+n-1. */
static void expect_ok_answers(int fd, uint32_t first, int n)
{
	int seen[16] = {0};
	uint8_t buf[1024];

	ck_assert_int_le(n, 16);
	for (int i = 0; i < n; i++) {
		struct keyd_resp resp;
		raw_answer(fd, buf, sizeof(buf), 10000, &resp);
		ck_assert_msg(resp.status == KEYD_OK, "answer %u: %s", resp.id, resp.msg);
		ck_assert_uint_ge(resp.id, first);
		ck_assert_uint_lt(resp.id, first + (uint32_t)n);
		ck_assert_int_eq(seen[resp.id - first]++, 0);
	}
}

START_TEST(frame_sent_one_byte_at_a_time_is_answered)
{
	uint8_t out[256];
	size_t n;
	int fd;

	gen("split", ANY_TYPE, ANY_PARAM, NULL);
	fd = raw_connect();
	n = sign_frame(5, out, sizeof(out));
	/* a pause after each byte: keyd wakes up for every one and must wait for the rest */
	for (size_t i = 0; i < n; i++) {
		raw_send(fd, out + i, 1);
		pause_ms(2);
	}
	expect_ok_answers(fd, 5, 1);
	close(fd);
}
END_TEST

/*
 * Frames cut anywhere: two whole frames and the first half of a third in one write, a frame
 * larger than keyd's small per-connection buffer arriving in pieces with the start of the next
 * frame behind it, and a last write holding the ends of frames. Every request is answered.
 */
START_TEST(frames_cut_across_writes_are_all_answered)
{
	static uint8_t out[4 * 256 + 4 + KEYD_FRAME_MAX], data[20000];
	struct keyd_req big = {.op = KEYD_OP_SIGN_DATA,
	                       .id = 13,
	                       .alg = ANY_ALG,
	                       .hash = KEYD_HASH_SHA256,
	                       .sdata = data,
	                       .sdata_len = sizeof(data)};
	size_t len = 0, cuts[] = {0, 0, 0, 0, 0};
	int fd;

	gen("split", ANY_TYPE, ANY_PARAM, NULL);
	snprintf(big.label, sizeof(big.label), "split");
	RAND_bytes(data, sizeof(data)); /* no structure: kind digest, which this client holds */
	len += sign_frame(10, out + len, sizeof(out) - len);
	len += sign_frame(11, out + len, sizeof(out) - len);
	cuts[0] = len + 7; /* into frame 12's header and body */
	len += sign_frame(12, out + len, sizeof(out) - len);
	cuts[1] = len + 3000; /* into the large frame */
	cuts[2] = len + 12000;
	len += encode(&big, out + len, sizeof(out) - len);
	cuts[3] = len + 2; /* the large frame's end and the next frame's first bytes */
	len += sign_frame(14, out + len, sizeof(out) - len);
	cuts[4] = len;
	fd = raw_connect();
	for (size_t i = 0, at = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		raw_send(fd, out + at, cuts[i] - at);
		at = cuts[i];
		pause_ms(20);
	}
	expect_ok_answers(fd, 10, 5);
	/* and the connection still serves a small request after the large one */
	len = sign_frame(15, out, sizeof(out));
	raw_send(fd, out, len);
	expect_ok_answers(fd, 15, 1);
	close(fd);
}
END_TEST

/* Signs n digests with the shared client: the number that came back ok and verified. */
static int sign_many(const struct keyd_key *k, int n)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		uint8_t dgst[32], sig[KEYD_SIG_MAX];
		size_t siglen = sizeof(sig);
		struct keyd_err err;
		RAND_bytes(dgst, sizeof(dgst));
		if (keyd_client_sign(cli, "forked", ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32, sig,
		                     &siglen, &err) == KEYD_OK &&
		    verify(k, ANY_ALG, KEYD_HASH_SHA256, 0, dgst, 32, sig, siglen))
			ok++;
	}
	return ok;
}

/* The client notices fork() without asking getpid() on every request: a child signing at the
 * same time as its parent through the same keyd_client gets a connection of its own (sharing
 * the parent's, the two would read each other's answers). */
START_TEST(forked_child_signs_on_its_own_connection)
{
	enum { N = 200 };
	struct keyd_key k;
	pid_t pid;
	int st;

	gen("forked", ANY_TYPE, ANY_PARAM, &k);
	ck_assert_int_eq(sign_many(&k, 1), 1); /* the parent's connection is open */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(sign_many(&k, N) == N ? 0 : 1);
	ck_assert_int_eq(sign_many(&k, N), N);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

static Suite *keyd_suite(void)
{
	Suite *s = suite_create("keyd");
	TCase *tc;

	tc = tcase_create("sign");
	tcase_add_checked_fixture(tc, setup_default, stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, sign_every_algorithm_verifies);
	tcase_add_test(tc, sign_with_algorithm_of_other_key_type_is_refused);
	tcase_add_test(tc, pss_salt_longer_than_key_allows_is_refused);
	tcase_add_test(tc, sign_unknown_key_is_no_key);
	if (no_ec)
		tcase_add_test(tc, ec_generate_is_refused_naming_the_mechanism);
	tcase_add_test(tc, generated_keys_are_sensitive_non_extractable_local);
	tcase_add_test(tc, generate_refuses_existing_label);
	tcase_add_test(tc, generated_key_survives_restart);
	tcase_add_test(tc, list_keys_shows_generated_keys);
	suite_add_tcase(s, tc);

	tc = tcase_create("acl");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_stranger, stop);
	tcase_add_test(tc, uid_not_in_acl_is_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("acl-limited");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_limited, stop);
	tcase_add_test(tc, granted_uid_is_refused_ungranted_key);
	tcase_add_test(tc, granted_uid_is_refused_ungranted_operation);
	suite_add_tcase(s, tc);
	tc = tcase_create("acl-star");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, star_operations_do_not_grant_generate);
	suite_add_tcase(s, tc);

	tc = tcase_create("frames");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_default, stop);
	tcase_add_test(tc, oversized_frame_closes_only_that_connection);
	tcase_add_test(tc, zero_length_frame_is_malformed);
	tcase_add_test(tc, trailing_bytes_get_malformed_answer_and_close);
	tcase_add_test(tc, truncated_frame_then_hangup_leaves_keyd_serving);
	tcase_add_test(tc, unknown_operation_is_malformed);
	tcase_add_test(tc, bad_version_is_refused);
	tcase_add_test(tc, pipelined_requests_are_all_answered_by_id);
	tcase_add_test(tc, frame_sent_one_byte_at_a_time_is_answered);
	tcase_add_test(tc, frames_cut_across_writes_are_all_answered);
	tcase_add_test(tc, forked_child_signs_on_its_own_connection);
	suite_add_tcase(s, tc);

	tc = tcase_create("busy");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_tiny_queue, stop);
	tcase_add_test(tc, full_queue_answers_busy);
	suite_add_tcase(s, tc);

	tc = tcase_create("restart");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_default, stop);
	tcase_add_test(tc, client_reconnects_after_keyd_restart);
	tcase_add_test(tc, keyd_down_gives_unreachable_within_timeout);
	tcase_add_test(tc, sigterm_stops_cleanly_and_removes_socket);
	tcase_add_test(tc, leftover_socket_of_a_dead_keyd_does_not_stop_the_next);
	tcase_add_test(tc, group_readable_pin_file_is_refused);
	tcase_add_test(tc, wrong_pin_is_refused_at_start);
	suite_add_tcase(s, tc);

	tc = tcase_create("module-failure");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_shim, teardown_shim);
	tcase_add_test(tc, device_error_takes_token_offline_and_back);
	tcase_add_test(tc, session_invalid_takes_token_offline_and_back);
	tcase_add_test(tc, token_not_present_takes_token_offline_and_back);
	tcase_add_test(tc, idle_fault_is_found_by_health_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("module-failure-hint");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_shim, teardown_shim);
	tcase_add_test(tc, failing_recovery_suggests_module_ipc);
	suite_add_tcase(s, tc);

	tc = tcase_create("capabilities");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_wrap, stop);
	tcase_add_test(tc, status_reports_the_tokens_capabilities);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int rc;

	rc = harness_token_prologue(&no_ec,
	                            "keyd's EC cases are skipped, its refusal is tested instead");
	if (rc)
		return rc;
	return harness_run_suite(keyd_suite());
}
