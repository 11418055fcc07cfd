/*
 * keyd's quorum: GF(256) arithmetic against published values, Shamir split and combine with
 * every subset, and the share file's checks (corrupted, another quorum's, duplicate, too
 * few, malformed).
 *
 * Published vectors:
 *  - HashiCorp Vault, shamir/shamir_test.go (TestField_Add, TestField_Mult,
 *    TestField_Divide): add(16,16)=0, add(3,4)=7, mult(3,7)=9, mult(3,0)=0, mult(0,3)=0,
 *    div(0,7)=0, div(3,3)=1, div(6,3)=2. Vault's field is GF(2^8) modulo 0x11b, as ours.
 *  - FIPS 197 (AES), section 4.2: {57}*{83}={c1}, {57}*{13}={fe}; section 4.2.1 (xtime):
 *    {57}*{02}={ae}, {57}*{04}={47}, {57}*{08}={8e}, {57}*{10}={07}; section 5.1.1: the
 *    inverse of {53} is {ca}. SLIP-0039 names this same field (Rijndael's) for its shares.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "quorum.h"
#include "quorum_box.h"
#include "quorum_cms.h"
#include "shamir.h"

START_TEST(field_matches_vault_vectors)
{
	ck_assert_uint_eq(gf256_add(16, 16), 0);
	ck_assert_uint_eq(gf256_add(3, 4), 7);
	ck_assert_uint_eq(gf256_mul(3, 7), 9);
	ck_assert_uint_eq(gf256_mul(3, 0), 0);
	ck_assert_uint_eq(gf256_mul(0, 3), 0);
	ck_assert_uint_eq(gf256_div(0, 7), 0);
	ck_assert_uint_eq(gf256_div(3, 3), 1);
	ck_assert_uint_eq(gf256_div(6, 3), 2);
}
END_TEST

START_TEST(field_matches_fips197_vectors)
{
	ck_assert_uint_eq(gf256_mul(0x57, 0x83), 0xc1);
	ck_assert_uint_eq(gf256_mul(0x57, 0x13), 0xfe);
	ck_assert_uint_eq(gf256_mul(0x57, 0x02), 0xae);
	ck_assert_uint_eq(gf256_mul(0x57, 0x04), 0x47);
	ck_assert_uint_eq(gf256_mul(0x57, 0x08), 0x8e);
	ck_assert_uint_eq(gf256_mul(0x57, 0x10), 0x07);
	ck_assert_uint_eq(gf256_inv(0x53), 0xca);
	ck_assert_uint_eq(gf256_inv(0xca), 0x53);
}
END_TEST

/* Against a plain shift-and-reduce multiply, every pair; every nonzero element's inverse. */
START_TEST(field_is_a_field)
{
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			unsigned x = a, y = b, r = 0;
			while (y) {
				if (y & 1)
					r ^= x;
				x <<= 1;
				if (x & 0x100)
					x ^= 0x11b;
				y >>= 1;
			}
			ck_assert_uint_eq(gf256_mul((uint8_t)a, (uint8_t)b), r);
			ck_assert_uint_eq(gf256_mul((uint8_t)a, (uint8_t)b),
			                  gf256_mul((uint8_t)b, (uint8_t)a));
		}
		if (a)
			ck_assert_uint_eq(gf256_mul((uint8_t)a, gf256_inv((uint8_t)a)), 1);
	}
	ck_assert_uint_eq(gf256_inv(0), 0);
}
END_TEST

/* A known answer: f(x) = s + c1 x + c2 x^2 per byte with fixed coefficients, the shares at
 * x = 1..5 worked out by hand in the AES field (checked with the FIPS 197 multiply above). */
START_TEST(split_known_answer)
{
	const uint8_t secret[3] = {0x2a, 0x00, 0xff};
	const uint8_t coef[6] = {0x57, 0xc3, 0x13, 0x80, 0x01, 0x00};
	const uint8_t want[5][3] = {{0xbe, 0x93, 0xfe},
	                            {0xa5, 0x10, 0xfd},
	                            {0x31, 0x83, 0xfc},
	                            {0xe9, 0x94, 0xfb},
	                            {0x7d, 0x07, 0xfa}};
	uint8_t sh[5][3], *p[5], out[3];
	uint8_t xs[3] = {5, 2, 4};
	const uint8_t *ys[3];

	for (int i = 0; i < 5; i++)
		p[i] = sh[i];
	ck_assert_int_eq(shamir_split(secret, 3, 3, 5, p, coef), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_mem_eq(sh[i], want[i], 3);
	ys[0] = want[4];
	ys[1] = want[1];
	ys[2] = want[3];
	ck_assert_int_eq(shamir_combine(xs, ys, 3, 3, out), 0);
	ck_assert_mem_eq(out, secret, 3);
}
END_TEST

/* Every M-subset (in every order for 3-of-5, Vault's TestCombine) gives the secret back;
 * every (M-1)-subset gives something else. */
static void every_subset(unsigned m, unsigned n)
{
	const uint8_t secret[] = "correct horse battery staple";
	uint8_t sh[8][sizeof(secret)], *p[8], out[sizeof(secret)];
	unsigned ok = 0, short_wrong = 0, short_sets = 0;

	for (unsigned i = 0; i < n; i++)
		p[i] = sh[i];
	ck_assert_int_eq(shamir_split(secret, sizeof(secret), m, n, p, NULL), 0);
	for (unsigned mask = 1; mask < (1u << n); mask++) {
		uint8_t xs[8];
		const uint8_t *ys[8];
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			if (mask & (1u << i)) {
				xs[k] = (uint8_t)(i + 1);
				ys[k++] = sh[i];
			}
		ck_assert_int_eq(shamir_combine(xs, ys, k, sizeof(secret), out), 0);
		if (k >= m) {
			ck_assert_msg(memcmp(out, secret, sizeof(secret)) == 0,
			              "subset %#x of %u-of-%u", mask, m, n);
			ok++;
		} else if (k == m - 1) {
			short_sets++;
			short_wrong += memcmp(out, secret, sizeof(secret)) != 0;
		}
	}
	ck_assert_uint_gt(ok, 0);
	ck_assert_uint_eq(short_wrong, short_sets);
}

START_TEST(every_subset_of_2_of_3_and_3_of_5)
{
	every_subset(2, 3);
	every_subset(3, 5);
}
END_TEST

START_TEST(split_refuses_bad_arguments)
{
	uint8_t s[1] = {1}, sh[3][1], *p[3] = {sh[0], sh[1], sh[2]}, out[1];
	uint8_t xs[2] = {1, 1};
	const uint8_t *ys[2] = {sh[0], sh[1]};

	ck_assert_int_eq(shamir_split(s, 1, 1, 3, p, NULL), -1);
	ck_assert_int_eq(shamir_split(s, 1, 4, 3, p, NULL), -1);
	ck_assert_int_eq(shamir_split(s, 0, 2, 3, p, NULL), -1);
	ck_assert_int_eq(shamir_split(s, 1, 2, 256, p, NULL), -1);
	ck_assert_int_eq(shamir_combine(xs, ys, 2, 1, out), -1); /* repeated x */
	xs[0] = 0;
	ck_assert_int_eq(shamir_combine(xs, ys, 2, 1, out), -1); /* x = 0 is the secret */
}
END_TEST

static const char *names3[] = {"custodian-1", "custodian-2", "custodian-3"};
static const char *names5[] = {"alice", "bob", "carol", "dave", "erin"};

static int text_of(const struct qshare *s, char *buf, size_t cap)
{
	int n = quorum_share_format(s, 1, buf, cap);
	ck_assert_int_gt(n, 0);
	return n;
}

static int accept(const struct quorum_ref *ref, struct quorum_pool *pool, const struct qshare *s,
                  char *msg, size_t msglen)
{
	char buf[QUORUM_FILE_MAX];
	int n = text_of(s, buf, sizeof(buf));
	return quorum_accept(ref, pool, buf, (size_t)n, msg, msglen);
}

/* The PIN comes back from every M-subset of share files, through the checks keyd makes. */
static void files_every_subset(unsigned m, unsigned n, const char **names)
{
	const char *pin = "0123-secret-PIN";
	struct qshare sh[QUORUM_MAX_SHARES];
	struct quorum_ref ref;
	char err[256], got[QUORUM_PIN_MAX + 1];

	ck_assert_msg(quorum_make(pin, strlen(pin), m, n, names, sh, &ref, err, sizeof(err)) == 0,
	              "%s", err);
	for (unsigned mask = 1; mask < (1u << n); mask++) {
		struct quorum_pool pool = {0};
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			if (mask & (1u << i)) {
				ck_assert_msg(accept(&ref, &pool, &sh[i], err, sizeof(err)) == 0,
				              "%s", err);
				k++;
			}
		if (k >= m) {
			ck_assert_msg(
			    quorum_combine(&ref, &pool, got, sizeof(got), err, sizeof(err)) == 0,
			    "%s", err);
			ck_assert_str_eq(got, pin);
		} else {
			ck_assert_int_eq(
			    quorum_combine(&ref, &pool, got, sizeof(got), err, sizeof(err)), -1);
			ck_assert_ptr_nonnull(strstr(err, "shares presented"));
		}
		quorum_pool_wipe(&pool);
	}
}

START_TEST(share_files_every_subset)
{
	files_every_subset(2, 3, names3);
	files_every_subset(3, 5, names5);
}
END_TEST

START_TEST(share_file_round_trips)
{
	struct qshare sh[3], back;
	struct quorum_ref ref;
	char err[256], buf[QUORUM_FILE_MAX], buf2[QUORUM_FILE_MAX];
	int n;

	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, sh, &ref, err, sizeof(err)), 0);
	n = text_of(&sh[1], buf, sizeof(buf));
	ck_assert_int_lt(n, QUORUM_FILE_MAX);
	ck_assert_ptr_nonnull(strstr(buf, "custodian: custodian-2\nindex: 2\nthreshold: 2\n"));
	ck_assert_int_eq(quorum_share_parse(buf, (size_t)n, &back, err, sizeof(err)), 0);
	ck_assert_int_eq(text_of(&back, buf2, sizeof(buf2)), n);
	ck_assert_mem_eq(buf, buf2, (size_t)n);
	ck_assert(quorum_share_verify(&back, ref.vk));
}
END_TEST

/* A changed byte anywhere is named: the signature (or the parse) fails, never a wrong PIN. */
START_TEST(tampered_share_is_named)
{
	struct qshare sh[3];
	struct quorum_ref ref;
	struct quorum_pool pool = {0};
	char err[256], buf[QUORUM_FILE_MAX], msg[256];
	int n;

	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, sh, &ref, err, sizeof(err)), 0);
	/* One bit of the share's bytes. */
	sh[1].y[7] ^= 0x01;
	ck_assert_int_eq(accept(&ref, &pool, &sh[1], msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "share of custodian-2 is corrupted: its signature does not verify "
	                      "under this quorum's key");
	sh[1].y[7] ^= 0x01;
	/* Another custodian's name on it. */
	snprintf(sh[1].custodian, sizeof(sh[1].custodian), "custodian-3");
	ck_assert_int_eq(accept(&ref, &pool, &sh[1], msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "share of custodian-3 is corrupted"));
	snprintf(sh[1].custodian, sizeof(sh[1].custodian), "custodian-2");
	/* Every hex digit of the share line changed in turn: refused, the pool unchanged. */
	n = text_of(&sh[1], buf, sizeof(buf));
	for (char *p = strstr(buf, "share: ") + 7; *p != '\n'; p++) {
		char was = *p;
		*p = was == '0' ? '1' : '0';
		ck_assert_int_eq(quorum_accept(&ref, &pool, buf, (size_t)n, msg, sizeof(msg)), -1);
		ck_assert_ptr_nonnull(strstr(msg, "custodian-2"));
		*p = was;
	}
	ck_assert_uint_eq(pool.n, 0);
	ck_assert_int_eq(quorum_accept(&ref, &pool, buf, (size_t)n, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(pool.n, 1);
}
END_TEST

START_TEST(share_of_another_quorum_is_named)
{
	struct qshare a[3], b[3];
	struct quorum_ref ra, rb;
	struct quorum_pool pool = {0};
	char err[256], msg[256];

	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, a, &ra, err, sizeof(err)), 0);
	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, b, &rb, err, sizeof(err)), 0);
	ck_assert_int_eq(accept(&ra, &pool, &b[0], msg, sizeof(msg)), -1);
	ck_assert_msg(strstr(msg, "share of custodian-1 belongs to another quorum") != NULL, "%s",
	              msg);
	/* Its id copied onto it: then the signature gives it away. */
	memcpy(b[0].id, ra.id, QUORUM_ID_LEN);
	ck_assert_int_eq(accept(&ra, &pool, &b[0], msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "share of custodian-1 is corrupted"));
	ck_assert_uint_eq(pool.n, 0);
}
END_TEST

START_TEST(duplicate_share_is_refused)
{
	struct qshare sh[3];
	struct quorum_ref ref;
	struct quorum_pool pool = {0};
	char err[256], msg[256], pin[QUORUM_PIN_MAX + 1];

	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, sh, &ref, err, sizeof(err)), 0);
	ck_assert_int_eq(accept(&ref, &pool, &sh[2], msg, sizeof(msg)), 0);
	ck_assert_int_eq(accept(&ref, &pool, &sh[2], msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "share 3 (of custodian-3) has been presented already");
	ck_assert_uint_eq(pool.n, 1);
	ck_assert_int_eq(quorum_combine(&ref, &pool, pin, sizeof(pin), msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "1 of 2 shares presented");
	ck_assert_int_eq(accept(&ref, &pool, &sh[0], msg, sizeof(msg)), 0);
	ck_assert_int_eq(quorum_combine(&ref, &pool, pin, sizeof(pin), msg, sizeof(msg)), 0);
	ck_assert_str_eq(pin, "1234");
}
END_TEST

START_TEST(malformed_share_files_say_why)
{
	struct qshare sh[3], s;
	struct quorum_ref ref;
	char err[256], buf[QUORUM_FILE_MAX], bad[QUORUM_FILE_MAX + 8];
	int n;

	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, sh, &ref, err, sizeof(err)), 0);
	n = text_of(&sh[0], buf, sizeof(buf));
	/* Every truncation. */
	for (int i = 0; i < n; i++) {
		err[0] = 0;
		ck_assert_int_eq(quorum_share_parse(buf, (size_t)i, &s, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "does not parse"));
	}
	/* Trailing bytes, upper-case hex, CRLF, another version, oversize. */
	memcpy(bad, buf, (size_t)n);
	bad[n] = '\n';
	ck_assert_int_eq(quorum_share_parse(bad, (size_t)n + 1, &s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "text after the signature"));
	memcpy(bad, buf, (size_t)n);
	{
		char *q = strstr(bad, "quorum: ") + 8;
		*q = (char)(*q >= 'a' ? *q - 32 : 'A');
	}
	ck_assert_int_eq(quorum_share_parse(bad, (size_t)n, &s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "quorum: not 32 lower-case hex digits"));
	memcpy(bad, buf, (size_t)n);
	bad[strlen("hsmca-quorum-share v")] = '2';
	ck_assert_int_eq(quorum_share_parse(bad, (size_t)n, &s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an hsmca quorum share"));
	memset(bad, 'a', sizeof(bad));
	ck_assert_int_eq(quorum_share_parse(bad, sizeof(bad), &s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most 1024"));
	/* index 0, index above total, threshold 1 */
	{
		struct qshare t = sh[0];
		t.index = 4;
		n = text_of(&t, buf, sizeof(buf));
		ck_assert_int_eq(quorum_share_parse(buf, (size_t)n, &s, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "share of custodian-1 does not parse: total"));
		t.index = 0;
		n = text_of(&t, buf, sizeof(buf));
		ck_assert_int_eq(quorum_share_parse(buf, (size_t)n, &s, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "index: not a number"));
		t.index = 1;
		t.threshold = 1;
		n = text_of(&t, buf, sizeof(buf));
		ck_assert_int_eq(quorum_share_parse(buf, (size_t)n, &s, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "threshold: not a number 2-16"));
	}
}
END_TEST

START_TEST(make_refuses_bad_quorums)
{
	struct qshare sh[QUORUM_MAX_SHARES + 1];
	struct quorum_ref ref;
	char err[256], longpin[QUORUM_PIN_MAX + 2];
	const char *dup[] = {"a", "b", "a"}, *badname[] = {"a", "b c", "d"};

	ck_assert_int_eq(quorum_make("1234", 4, 1, 3, names3, sh, &ref, err, sizeof(err)), -1);
	ck_assert_int_eq(quorum_make("1234", 4, 4, 3, names3, sh, &ref, err, sizeof(err)), -1);
	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, dup, sh, &ref, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "custodian a is named twice");
	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, badname, sh, &ref, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "custodian \"b c\""));
	memset(longpin, 'x', sizeof(longpin));
	ck_assert_int_eq(
	    quorum_make(longpin, QUORUM_PIN_MAX + 1, 2, 3, names3, sh, &ref, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "1-127 bytes"));
	/* The longest PIN works. */
	ck_assert_int_eq(
	    quorum_make(longpin, QUORUM_PIN_MAX, 2, 3, names3, sh, &ref, err, sizeof(err)), 0);
}
END_TEST

/* A share under a passphrase: opens with it, and with nothing else; any change is named. */
START_TEST(encrypted_share_round_trips_and_refuses)
{
	struct qshare sh[3];
	struct quorum_ref ref;
	char err[256], plain[QUORUM_FILE_MAX], box[QUORUM_BOX_MAX], out[QUORUM_FILE_MAX];
	int n, b, o;

	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, sh, &ref, err, sizeof(err)), 0);
	n = text_of(&sh[1], plain, sizeof(plain));
	b = quorum_box_seal(plain, (size_t)n, "custodian-2", "correct horse", box, sizeof(box), err,
	                    sizeof(err));
	ck_assert_msg(b > 0, "%s", err);
	ck_assert(quorum_box_is(box, (size_t)b));
	ck_assert(!quorum_box_is(plain, (size_t)n));
	ck_assert_ptr_null(strstr(box, "share: ")); /* the share is not in the clear */
	o = quorum_box_open(box, (size_t)b, "correct horse", out, sizeof(out), err, sizeof(err));
	ck_assert_msg(o == n, "%s", err);
	ck_assert_mem_eq(out, plain, (size_t)n);
	ck_assert_int_eq(
	    quorum_box_open(box, (size_t)b, "correct horsf", out, sizeof(out), err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "share of custodian-2: wrong passphrase");
	/* One hex digit of the data, and the custodian line (associated data): the passphrase is
	 * right, so the change is what is named. */
	{
		char *d = strstr(box, "data: ") + 10, was = *d;
		*d = *d == '0' ? '1' : '0';
		ck_assert_int_eq(quorum_box_open(box, (size_t)b, "correct horse", out, sizeof(out),
		                                 err, sizeof(err)),
		                 -1);
		ck_assert_ptr_nonnull(strstr(err, "share of custodian-2: the file was changed"));
		*d = was;
		d = strstr(box, "custodian-2");
		d[10] = '3';
		ck_assert_int_eq(quorum_box_open(box, (size_t)b, "correct horse", out, sizeof(out),
		                                 err, sizeof(err)),
		                 -1);
		ck_assert_ptr_nonnull(strstr(err, "share of custodian-3: the file was changed"));
		d[10] = '2';
		/* A changed check value reads as a wrong passphrase (it is what the check is). */
		d = strstr(box, "check: ") + 7;
		was = *d;
		*d = *d == '0' ? '1' : '0';
		ck_assert_int_eq(quorum_box_open(box, (size_t)b, "correct horse", out, sizeof(out),
		                                 err, sizeof(err)),
		                 -1);
		ck_assert_str_eq(err, "share of custodian-2: wrong passphrase");
		*d = was;
		ck_assert_int_eq(quorum_box_open(box, (size_t)b, "correct horse", out, sizeof(out),
		                                 err, sizeof(err)),
		                 n);
	}
	/* Every truncation says it does not parse. */
	for (int i = 0; i < b; i += 7) {
		ck_assert_int_eq(quorum_box_open(box, (size_t)i, "correct horse", out, sizeof(out),
		                                 err, sizeof(err)),
		                 -1);
		ck_assert_ptr_nonnull(strstr(err, "does not parse"));
	}
	ck_assert_int_eq(quorum_box_seal(plain, (size_t)n, "custodian-2", "short", box, sizeof(box),
	                                 err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(err, "a passphrase is 8-1024 bytes");
}
END_TEST

/* Shares encrypted before the check line (v1) still open; their failures stay undivided. */
START_TEST(encrypted_share_v1_still_opens)
{
	static const char v1[] =
	    "hsmca-quorum-share-encrypted v1\n"
	    "custodian: custodian-2\n"
	    "kdf: scrypt-n32768-r8-p1\n"
	    "salt: dd6d0cb1f62a030060a2f2e081d1c26b\n"
	    "nonce: 07892143988f52df6f597938\n"
	    "data: "
	    "7d59b3205afff7e2dde52d8b154ecd7bfd15aeb954b0e0bf821f4a60f168808f951921da78a6625116cb78"
	    "985116c9ac6a9abcc4fe7b532d8c1b347a067d2274ce6349456292fcdad13896737f6de2b4b7fa1cee14c4"
	    "056b16054db4c1119b82842fb4e1eb2f0cdfa95bf08c402ddba8c782ddb1140b44edce550c8a5eba3cc96a"
	    "2cdcc6d474291f8893f6332e4b01eedcb3b89e4c22dcf73ab747bbc3ffd98b9443417b9a26efeff6ce60af"
	    "18346205e2641f7cadec93a7b3f44719a2c39309dc837dc6e92e20dca8f64beca51f9c6e95814d4c99f6e5"
	    "f1667138ac30282a2c77b036e77c0ea0721c8d9b895dcdc508f12f99baa36b1613728f9a6e89a5c8b2c599"
	    "a534c48d727b6e6c2030871c6ff54f016314568e7cb3c903a07a2e6a9d598ce94a07ba6bbda34d47b955ec"
	    "547cf761a08039412aafcc796ded4e5f37f86bc19c4bfb011b560dbf32d894855882d8938f60cdff2c3f70"
	    "45c84e0e9c464a137b6a81417ae559bf63d1571ac7a6b83c05684e3d43cb736b37c3f8c1fc26be603b2caa"
	    "9fc4ddfe38af9eb7eb29d080bed8d8e0e2cc99bca2944a022d28b717f8e09f318317ae4929c1bb8587af9f"
	    "6bf8b99679a4f103b054598f30c31df46d742fa7bf387dca2d598db67cb826587eea9dff4c4e6ece4b6b4e"
	    "026665cb6d9478207732d2316b96280ed58a595d767c9ead98147f54d4f3cba14b0202fc24a62a9c2f4efb"
	    "4cf0f9d519117336f8907b5b0a11f158c279ab8982\n";
	char err[256], out[QUORUM_FILE_MAX], copy[sizeof(v1)];
	int o;

	o = quorum_box_open(v1, sizeof(v1) - 1, "correct horse", out, sizeof(out), err,
	                    sizeof(err));
	ck_assert_msg(o == 521, "%s", err);
	ck_assert(!strncmp(out, "hsmca-quorum-share v1\n", 22));
	ck_assert_int_eq(quorum_box_open(v1, sizeof(v1) - 1, "correct horsf", out, sizeof(out), err,
	                                 sizeof(err)),
	                 -1);
	ck_assert_str_eq(err, "share of custodian-2: wrong passphrase, or the file is corrupted");
	memcpy(copy, v1, sizeof(v1));
	copy[30] = '3'; /* "v3": no such version */
	ck_assert_int_eq(quorum_box_open(copy, sizeof(v1) - 1, "correct horse", out, sizeof(out),
	                                 err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "does not parse"));
}
END_TEST

/* A self-signed certificate for key, as a custodian would hand over. */
static X509 *custodian_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();

	ck_assert_ptr_nonnull(x);
	ck_assert(X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
	          X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
	          X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, key) &&
	          X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                                     (const unsigned char *)"custodian-2", -1, -1, 0) &&
	          X509_set_issuer_name(x, X509_get_subject_name(x)) &&
	          X509_sign(x, key, EVP_sha256()));
	return x;
}

/* A share under a custodian's public key (EC and RSA): opens with that key only; a changed or
 * trailing byte and a foreign structure are named. */
START_TEST(public_key_share_round_trips_and_refuses)
{
	struct qshare sh[3];
	struct quorum_ref ref;
	static char plain[QUORUM_FILE_MAX], cms[QUORUM_CMS_MAX + 64], out[QUORUM_FILE_MAX];
	char err[256];
	EVP_PKEY *keys[2] = {EVP_EC_gen("P-256"), EVP_RSA_gen(2048)};
	EVP_PKEY *other = EVP_EC_gen("P-256");
	int n, c, o;

	ck_assert_int_eq(quorum_make("1234", 4, 2, 3, names3, sh, &ref, err, sizeof(err)), 0);
	n = text_of(&sh[1], plain, sizeof(plain));
	for (int i = 0; i < 2; i++) {
		X509 *x = custodian_cert(keys[i]);
		c = quorum_cms_seal(plain, (size_t)n, x, cms, sizeof(cms), err, sizeof(err));
		ck_assert_msg(c > 0, "%s", err);
		ck_assert(quorum_cms_is(cms, (size_t)c));
		ck_assert(!quorum_cms_is(plain, (size_t)n));
		ck_assert_int_eq(quorum_cms_check(cms, (size_t)c, err, sizeof(err)), 0);
		o = quorum_cms_open(cms, (size_t)c, keys[i], out, sizeof(out), err, sizeof(err));
		ck_assert_msg(o == n, "%s", err);
		ck_assert_mem_eq(out, plain, (size_t)n);
		/* Another key opens nothing. */
		ck_assert_int_eq(quorum_cms_open(cms, (size_t)c, i ? keys[0] : other, out,
		                                 sizeof(out), err, sizeof(err)),
		                 -1);
		ck_assert_ptr_nonnull(strstr(err, "cannot be opened with this key"));
		/* A changed character near the end of the base64 (the ciphertext and tag). */
		{
			char *d = strstr(cms, "-----END CMS-----") - 20, was = *d;
			*d = *d == 'A' ? 'B' : 'A';
			ck_assert_int_eq(quorum_cms_open(cms, (size_t)c, keys[i], out, sizeof(out),
			                                 err, sizeof(err)),
			                 -1);
			*d = was;
		}
		/* Something after it. */
		cms[c] = 'x';
		ck_assert_int_eq(quorum_cms_check(cms, (size_t)c + 1, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "data after the CMS"));
		X509_free(x);
	}
	/* A CMS that is no AuthEnvelopedData (a certs-only SignedData would do; here a PEM of
	 * another name) and an oversized one. */
	{
		static const char other_type[] = "-----BEGIN CMS-----\nMAA=\n-----END CMS-----\n";
		ck_assert_int_eq(
		    quorum_cms_check(other_type, sizeof(other_type) - 1, err, sizeof(err)), -1);
	}
	ck_assert_ptr_nonnull(strstr(err, "does not parse"));
	ck_assert_int_eq(quorum_cms_check(cms, QUORUM_CMS_MAX + 1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most 8192 bytes"));
	EVP_PKEY_free(keys[0]);
	EVP_PKEY_free(keys[1]);
	EVP_PKEY_free(other);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("quorum");
	TCase *tc = tcase_create("quorum");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, field_matches_vault_vectors);
	tcase_add_test(tc, field_matches_fips197_vectors);
	tcase_add_test(tc, field_is_a_field);
	tcase_add_test(tc, split_known_answer);
	tcase_add_test(tc, every_subset_of_2_of_3_and_3_of_5);
	tcase_add_test(tc, split_refuses_bad_arguments);
	tcase_add_test(tc, share_files_every_subset);
	tcase_add_test(tc, share_file_round_trips);
	tcase_add_test(tc, tampered_share_is_named);
	tcase_add_test(tc, share_of_another_quorum_is_named);
	tcase_add_test(tc, duplicate_share_is_refused);
	tcase_add_test(tc, malformed_share_files_say_why);
	tcase_add_test(tc, make_refuses_bad_quorums);
	tcase_add_test(tc, encrypted_share_round_trips_and_refuses);
	tcase_add_test(tc, encrypted_share_v1_still_opens);
	tcase_add_test(tc, public_key_share_round_trips_and_refuses);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
