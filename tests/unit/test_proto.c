/* keyd wire protocol: round trips and every way a frame can be malformed. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "keyd_proto.h"

static uint8_t buf[4 + KEYD_FRAME_MAX];

static size_t enc(const struct keyd_req *r)
{
	struct keyd_wbuf w = {buf, 0, sizeof(buf), 0};
	ck_assert_int_eq(keyd_req_encode(r, &w), 0);
	return w.len;
}

static int dec(const uint8_t *body, size_t len, const char **why)
{
	struct keyd_req r;
	return keyd_req_decode(body, len, &r, why);
}

START_TEST(sign_request_round_trips)
{
	struct keyd_req r = {.op = KEYD_OP_SIGN,
	                     .id = 0xdeadbeef,
	                     .alg = KEYD_ALG_RSA_PSS,
	                     .hash = KEYD_HASH_SHA384,
	                     .salt_len = 48,
	                     .digest_len = 48};
	struct keyd_req out;
	const char *why = NULL;
	uint32_t len;
	size_t n;

	strcpy(r.label, "issuing-ca_2026.v1");
	memset(r.digest, 0x5a, 48);
	n = enc(&r);
	ck_assert_int_eq(keyd_frame_len(buf, &len), 0);
	ck_assert_uint_eq(len + 4, n);
	ck_assert_int_eq(keyd_req_decode(buf + 4, len, &out, &why), 0);
	ck_assert_uint_eq(out.id, 0xdeadbeef);
	ck_assert_str_eq(out.label, r.label);
	ck_assert_uint_eq(out.alg, KEYD_ALG_RSA_PSS);
	ck_assert_uint_eq(out.hash, KEYD_HASH_SHA384);
	ck_assert_uint_eq(out.salt_len, 48);
	ck_assert_mem_eq(out.digest, r.digest, 48);
}
END_TEST

START_TEST(sign_data_round_trips_within_bounds)
{
	static uint8_t data[KEYD_CHUNK_MAX + 1];
	struct keyd_req r = {.op = KEYD_OP_SIGN_DATA,
	                     .id = 7,
	                     .alg = KEYD_ALG_ECDSA,
	                     .hash = KEYD_HASH_SHA256,
	                     .flags = KEYD_SD_MORE | KEYD_SD_CONT,
	                     .sdata = data,
	                     .sdata_len = KEYD_CHUNK_MAX};
	struct keyd_req out;
	struct keyd_wbuf w = {buf, 0, sizeof(buf), 0};
	const char *why = NULL;
	uint32_t len;
	size_t n;

	memset(data, 0x30, sizeof(data));
	strcpy(r.label, "ca");
	n = enc(&r);
	ck_assert_int_eq(keyd_frame_len(buf, &len), 0);
	ck_assert_uint_eq(len + 4, n);
	ck_assert_int_eq(keyd_req_decode(buf + 4, len, &out, &why), 0);
	ck_assert_uint_eq(out.flags, KEYD_SD_MORE | KEYD_SD_CONT);
	ck_assert_uint_eq(out.sdata_len, KEYD_CHUNK_MAX);
	ck_assert_ptr_eq(out.sdata, buf + n - KEYD_CHUNK_MAX);
	/* every truncation is malformed */
	for (size_t i = 5; i < len; i += 997)
		ck_assert_int_eq(dec(buf + 4, i, &why), -1);
	/* unknown flags, and a salt without PSS */
	buf[4 + 1 + 4 + (2 + 2) + 1 + 1 + 2] =
	    0x04; /* frame, op, id, label "ca", alg, hash, salt */
	ck_assert_int_eq(dec(buf + 4, len, &why), -1);
	ck_assert_str_eq(why, "sign-data: unknown flags");
	r.flags = 0;
	r.salt_len = 32;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	r.salt_len = 0;
	/* no data, and more than a chunk, do not encode or decode */
	r.sdata_len = 0;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	r.sdata_len = KEYD_CHUNK_MAX + 1;
	ck_assert_int_eq(keyd_req_encode(&r, &w), -1);
}
END_TEST

START_TEST(every_truncation_of_a_request_is_malformed)
{
	struct keyd_req r = {.op = KEYD_OP_SIGN,
	                     .id = 1,
	                     .alg = KEYD_ALG_ECDSA,
	                     .hash = KEYD_HASH_SHA256,
	                     .digest_len = 32};
	const char *why;
	size_t n;

	strcpy(r.label, "k");
	n = enc(&r);
	for (size_t cut = 0; cut < n - 4; cut++)
		ck_assert_int_eq(dec(buf + 4, cut, &why), -1);
}
END_TEST

START_TEST(trailing_byte_is_malformed)
{
	struct keyd_req r = {.op = KEYD_OP_STATUS, .id = 1};
	const char *why = NULL;
	size_t n = enc(&r);

	buf[n] = 0;
	ck_assert_int_eq(dec(buf + 4, n - 4 + 1, &why), -1);
	ck_assert_str_eq(why, "trailing bytes after the request");
}
END_TEST

START_TEST(digest_length_must_match_hash)
{
	struct keyd_req r = {.op = KEYD_OP_SIGN,
	                     .id = 1,
	                     .alg = KEYD_ALG_ECDSA,
	                     .hash = KEYD_HASH_SHA512,
	                     .digest_len = 32};
	const char *why = NULL;
	size_t n;

	strcpy(r.label, "k");
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	ck_assert_str_eq(why, "sign: digest length does not match the hash");
}
END_TEST

START_TEST(salt_on_non_pss_is_malformed)
{
	struct keyd_req r = {.op = KEYD_OP_SIGN,
	                     .id = 1,
	                     .alg = KEYD_ALG_RSA_PKCS1,
	                     .hash = KEYD_HASH_SHA256,
	                     .salt_len = 5,
	                     .digest_len = 32};
	const char *why = NULL;
	size_t n;

	strcpy(r.label, "k");
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
}
END_TEST

START_TEST(labels_are_restricted)
{
	ck_assert(keyd_label_valid("root-ca.2026_a"));
	ck_assert(!keyd_label_valid(""));
	ck_assert(!keyd_label_valid("has space"));
	ck_assert(!keyd_label_valid("slash/no"));
	ck_assert(!keyd_label_valid("nul\x01"));
	char long_label[KEYD_LABEL_MAX + 2];
	memset(long_label, 'a', sizeof(long_label) - 1);
	long_label[KEYD_LABEL_MAX + 1] = 0;
	ck_assert(!keyd_label_valid(long_label));
	long_label[KEYD_LABEL_MAX] = 0;
	ck_assert(keyd_label_valid(long_label));
}
END_TEST

START_TEST(label_with_nul_on_the_wire_is_malformed)
{
	uint8_t body[] = {KEYD_OP_GET_PUBKEY, 0, 0, 0, 1, 0, 3, 'a', 0, 'b'};
	const char *why;

	ck_assert_int_eq(dec(body, sizeof(body), &why), -1);
}
END_TEST

START_TEST(generate_parameters_are_checked)
{
	struct keyd_req r = {
	    .op = KEYD_OP_GENERATE, .id = 1, .keytype = KEYD_KEY_RSA, .keyparam = 1024};
	const char *why = NULL;
	size_t n;

	strcpy(r.label, "k");
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	ck_assert_str_eq(why, "generate: RSA size must be 2048, 3072 or 4096");
	r.keytype = KEYD_KEY_EC;
	r.keyparam = 9;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	r.keyparam = KEYD_CURVE_P384;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), 0);
}
END_TEST

START_TEST(wrap_and_unwrap_requests_round_trip_within_bounds)
{
	struct keyd_req r = {.op = KEYD_OP_WRAP, .id = 7}, d;
	const char *why = NULL;
	size_t n;

	strcpy(r.label, "backup-2026");
	memset(r.data, 0xab, 32);
	r.data_len = 32;
	n = enc(&r);
	ck_assert_int_eq(keyd_req_decode(buf + 4, n - 4, &d, &why), 0);
	ck_assert_int_eq(d.op, KEYD_OP_WRAP);
	ck_assert_str_eq(d.label, "backup-2026");
	ck_assert_uint_eq(d.data_len, 32);
	ck_assert_mem_eq(d.data, r.data, 32);
	/* A secret over 512 bytes is refused; so is an empty one. */
	r.data_len = KEYD_WRAP_DATA_MAX + 1;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	ck_assert_str_eq(why, "wrap: the secret must be 1..512 bytes");
	r.data_len = 0;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	/* An unwrap blob needs room for format, nonce and tag. */
	r.op = KEYD_OP_UNWRAP;
	r.data_len = KEYD_WRAP_OVERHEAD;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	ck_assert_str_eq(why, "unwrap: the wrapped blob has an impossible length");
	r.data_len = KEYD_WRAP_OVERHEAD + 1;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), 0);
}
END_TEST

START_TEST(aes_keys_have_no_public_key_and_others_must)
{
	uint8_t out[256];
	struct keyd_wbuf w = {out, 0, sizeof(out), 0};
	struct keyd_keyinfo ki = {.type = KEYD_KEY_AES, .bits = 256};
	struct keyd_resp resp;
	const char *why;

	strcpy(ki.label, "backup");
	keyd_resp_begin(&w, KEYD_OP_GENERATE, 1, KEYD_OK);
	keyd_put_keyinfo(&w, &ki);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(out + 4, w.len - 4, &resp, &why), 0);
	ck_assert_int_eq(resp.key.type, KEYD_KEY_AES);
	/* An EC key without its public key is malformed. */
	w = (struct keyd_wbuf){out, 0, sizeof(out), 0};
	ki.type = KEYD_KEY_EC;
	keyd_resp_begin(&w, KEYD_OP_GENERATE, 1, KEYD_OK);
	keyd_put_keyinfo(&w, &ki);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(out + 4, w.len - 4, &resp, &why), -1);
	/* generate accepts AES-256 only. */
	struct keyd_req r = {
	    .op = KEYD_OP_GENERATE, .id = 1, .keytype = KEYD_KEY_AES, .keyparam = 128};
	strcpy(r.label, "k");
	size_t n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), -1);
	r.keyparam = 256;
	n = enc(&r);
	ck_assert_int_eq(dec(buf + 4, n - 4, &why), 0);
}
END_TEST

START_TEST(metrics_answer_must_be_text)
{
	uint8_t out[128];
	struct keyd_wbuf w = {out, 0, sizeof(out), 0};
	struct keyd_resp resp;
	const char *why;

	keyd_resp_begin(&w, KEYD_OP_METRICS, 3, KEYD_OK);
	keyd_put_blob(&w, "a_metric 1\n", 11);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(out + 4, w.len - 4, &resp, &why), 0);
	ck_assert_uint_eq(resp.sig_len, 11);
	w = (struct keyd_wbuf){out, 0, sizeof(out), 0};
	keyd_resp_begin(&w, KEYD_OP_METRICS, 3, KEYD_OK);
	keyd_put_blob(&w, "a\033[2J 1\n", 8);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(out + 4, w.len - 4, &resp, &why), -1);
}
END_TEST

/* v2: unseal carries 1..KEYD_SHARE_MAX bytes; the quorum state is checked on the way in. */
START_TEST(unseal_and_quorum_state_round_trip_within_bounds)
{
	static uint8_t share[KEYD_SHARE_MAX + 1];
	struct keyd_req r = {.op = KEYD_OP_UNSEAL, .id = 9, .share = share, .share_len = 600};
	struct keyd_req out;
	struct keyd_wbuf w = {buf, 0, sizeof(buf), 0};
	struct keyd_quorum_status q = {.activation = 2,
	                               .sealed = 1,
	                               .presented = 1,
	                               .threshold = 2,
	                               .total = 3,
	                               .expected = "custodian-2, custodian-3"};
	uint8_t resp_buf[2048];
	struct keyd_resp resp;
	const char *why;
	size_t n;

	memset(share, 'x', sizeof(share));
	n = enc(&r);
	ck_assert_int_eq(keyd_req_decode(buf + 4, n - 4, &out, &why), 0);
	ck_assert_uint_eq(out.share_len, 600);
	ck_assert_mem_eq(out.share, share, 600);
	r.share_len = KEYD_SHARE_MAX + 1;
	ck_assert_int_eq(keyd_req_encode(&r, &w), -1);
	/* On the wire: an empty and an oversized share are malformed. */
	{
		uint8_t body[5 + 2 + KEYD_SHARE_MAX + 1] = {KEYD_OP_UNSEAL, 0, 0, 0, 1, 0, 0};
		ck_assert_int_eq(keyd_req_decode(body, 7, &out, &why), -1);
		body[5] = (KEYD_SHARE_MAX + 1) >> 8;
		body[6] = (KEYD_SHARE_MAX + 1) & 0xff;
		ck_assert_int_eq(keyd_req_decode(body, sizeof(body), &out, &why), -1);
		ck_assert_str_eq(why, "unseal: the share must be 1..1024 bytes");
	}
	w = (struct keyd_wbuf){resp_buf, 0, sizeof(resp_buf), 0};
	keyd_resp_begin(&w, KEYD_OP_QUORUM, 4, KEYD_OK);
	keyd_put_quorum(&w, &q);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(resp_buf + 4, w.len - 4, &resp, &why), 0);
	ck_assert_uint_eq(resp.q.presented, 1);
	ck_assert_str_eq(resp.q.expected, "custodian-2, custodian-3");
	/* A name with a terminal escape, or more presented than there are custodians: refused. */
	snprintf(q.expected, sizeof(q.expected), "a\033[2J");
	w = (struct keyd_wbuf){resp_buf, 0, sizeof(resp_buf), 0};
	keyd_resp_begin(&w, KEYD_OP_QUORUM, 4, KEYD_OK);
	keyd_put_quorum(&w, &q);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(resp_buf + 4, w.len - 4, &resp, &why), -1);
	snprintf(q.expected, sizeof(q.expected), "b");
	q.presented = 4;
	w = (struct keyd_wbuf){resp_buf, 0, sizeof(resp_buf), 0};
	keyd_resp_begin(&w, KEYD_OP_SEAL, 4, KEYD_OK);
	keyd_put_quorum(&w, &q);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(resp_buf + 4, w.len - 4, &resp, &why), -1);
	/* sealed is a status clients retry; share is not. */
	ck_assert(keyd_status_retryable(KEYD_E_SEALED));
	ck_assert(!keyd_status_retryable(KEYD_E_SHARE));
	ck_assert_str_eq(keyd_status_name(KEYD_E_SEALED), "sealed");
	ck_assert_str_eq(keyd_op_name(KEYD_OP_QUORUM), "quorum-status");
}
END_TEST

START_TEST(frame_length_bounds)
{
	uint8_t zero[4] = {0, 0, 0, 0}, max[4] = {0, 1, 0, 0}, over[4] = {0, 1, 0, 1};
	uint32_t len;

	ck_assert_int_eq(keyd_frame_len(zero, &len), -1);
	ck_assert_int_eq(keyd_frame_len(max, &len), 0);
	ck_assert_uint_eq(len, KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_frame_len(over, &len), -1);
}
END_TEST

START_TEST(list_response_round_trips)
{
	struct keyd_wbuf w = {buf, 0, sizeof(buf), 0};
	struct keyd_keyinfo a = {.label = "a",
	                         .type = KEYD_KEY_EC,
	                         .bits = 256,
	                         .flags = 0x1d,
	                         .spki = (const uint8_t *)"xyz",
	                         .spki_len = 3};
	struct keyd_keyinfo b = {.label = "b",
	                         .type = KEYD_KEY_RSA,
	                         .bits = 2048,
	                         .flags = 1,
	                         .spki = (const uint8_t *)"q",
	                         .spki_len = 1};
	struct keyd_resp resp;
	struct keyd_rbuf rb;
	struct keyd_keyinfo ki;
	const char *why;

	keyd_resp_begin(&w, KEYD_OP_LIST_KEYS, 9, KEYD_OK);
	keyd_put_u16(&w, 2);
	keyd_put_keyinfo(&w, &a);
	keyd_put_keyinfo(&w, &b);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(buf + 4, w.len - 4, &resp, &why), 0);
	ck_assert_uint_eq(resp.nkeys, 2);
	rb = (struct keyd_rbuf){resp.keys, resp.keys_len, 0, 0};
	ck_assert_int_eq(keyd_list_next(&rb, &ki), 1);
	ck_assert_str_eq(ki.label, "a");
	ck_assert_uint_eq(ki.flags, 0x1d);
	ck_assert_int_eq(keyd_list_next(&rb, &ki), 1);
	ck_assert_str_eq(ki.label, "b");
	ck_assert_int_eq(keyd_list_next(&rb, &ki), 0);
}
END_TEST

START_TEST(list_response_with_fewer_keys_than_counted_is_malformed)
{
	struct keyd_wbuf w = {buf, 0, sizeof(buf), 0};
	struct keyd_keyinfo a = {.label = "a",
	                         .type = KEYD_KEY_EC,
	                         .bits = 256,
	                         .spki = (const uint8_t *)"x",
	                         .spki_len = 1};
	struct keyd_resp resp;
	const char *why;

	keyd_resp_begin(&w, KEYD_OP_LIST_KEYS, 9, KEYD_OK);
	keyd_put_u16(&w, 3);
	keyd_put_keyinfo(&w, &a);
	ck_assert_int_eq(keyd_resp_end(&w), 0);
	ck_assert_int_eq(keyd_resp_decode(buf + 4, w.len - 4, &resp, &why), -1);
}
END_TEST

START_TEST(error_response_message_is_sanitised)
{
	struct keyd_wbuf w = {buf, 0, sizeof(buf), 0};
	struct keyd_resp resp;
	const char *why;

	ck_assert_int_eq(keyd_resp_error(&w, KEYD_OP_SIGN, 3, KEYD_E_DENIED, "bad\nline\x01"), 0);
	ck_assert_int_eq(keyd_resp_decode(buf + 4, w.len - 4, &resp, &why), 0);
	ck_assert_int_eq(resp.status, KEYD_E_DENIED);
	ck_assert_str_eq(resp.msg, "bad?line?");
}
END_TEST

START_TEST(writer_overflow_is_sticky)
{
	uint8_t small[6];
	struct keyd_wbuf w = {small, 0, sizeof(small), 0};

	keyd_put_u32(&w, 1);
	keyd_put_u32(&w, 2);
	ck_assert_int_eq(w.err, 1);
	keyd_put_u8(&w, 3);
	ck_assert_uint_eq(w.len, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-proto");
	TCase *tc = tcase_create("proto");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, sign_request_round_trips);
	tcase_add_test(tc, sign_data_round_trips_within_bounds);
	tcase_add_test(tc, every_truncation_of_a_request_is_malformed);
	tcase_add_test(tc, trailing_byte_is_malformed);
	tcase_add_test(tc, digest_length_must_match_hash);
	tcase_add_test(tc, salt_on_non_pss_is_malformed);
	tcase_add_test(tc, labels_are_restricted);
	tcase_add_test(tc, label_with_nul_on_the_wire_is_malformed);
	tcase_add_test(tc, generate_parameters_are_checked);
	tcase_add_test(tc, frame_length_bounds);
	tcase_add_test(tc, list_response_round_trips);
	tcase_add_test(tc, list_response_with_fewer_keys_than_counted_is_malformed);
	tcase_add_test(tc, error_response_message_is_sanitised);
	tcase_add_test(tc, writer_overflow_is_sticky);
	tcase_add_test(tc, wrap_and_unwrap_requests_round_trip_within_bounds);
	tcase_add_test(tc, aes_keys_have_no_public_key_and_others_must);
	tcase_add_test(tc, metrics_answer_must_be_text);
	tcase_add_test(tc, unseal_and_quorum_state_round_trip_within_bounds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
