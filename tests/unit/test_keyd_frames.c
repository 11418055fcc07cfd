/* keyd's frame splitter (hsm/keyd/keyd_frames.h): a frame of exactly the limit, a frame
 * arriving one byte at a time (split at every offset), two frames in two writes cut anywhere,
 * two frames in one buffer, a header over the limit and a header of zero, each named for what
 * it is. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "keyd_frames.h"
#include "keyd_proto.h"

/* Append a frame of n body bytes (each body byte is fill) to buf at *len. */
static void put_frame(uint8_t *buf, size_t *len, uint32_t n, uint8_t fill)
{
	buf[*len] = (uint8_t)(n >> 24);
	buf[*len + 1] = (uint8_t)(n >> 16);
	buf[*len + 2] = (uint8_t)(n >> 8);
	buf[*len + 3] = (uint8_t)n;
	memset(buf + *len + 4, fill, n);
	*len += 4 + (size_t)n;
}

START_TEST(exact_size_frame)
{
	uint8_t *buf = malloc(4 + KEYD_FRAME_MAX);
	struct keyd_split s;
	size_t len = 0;

	ck_assert_ptr_nonnull(buf);
	put_frame(buf, &len, KEYD_FRAME_MAX, 0x5a);
	keyd_split_init(&s, buf, len, KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_FRAME);
	ck_assert_uint_eq(s.body_off, 4);
	ck_assert_uint_eq(s.body_len, KEYD_FRAME_MAX);
	ck_assert_uint_eq(s.consumed, len);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_MORE);
	ck_assert_uint_eq(s.need, 0);
	ck_assert_uint_eq(s.consumed, len);

	/* one byte short of it is not yet a frame, and says how much it takes */
	keyd_split_init(&s, buf, len - 1, KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_MORE);
	ck_assert_uint_eq(s.need, len);
	ck_assert_uint_eq(s.consumed, 0);
	free(buf);
}
END_TEST

START_TEST(split_at_every_offset)
{
	uint8_t buf[64];
	struct keyd_split s;
	size_t len = 0, cut;

	put_frame(buf, &len, 37, 0x11);
	for (cut = 0; cut < len; cut++) {
		keyd_split_init(&s, buf, cut, KEYD_FRAME_MAX);
		ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_MORE);
		ck_assert_uint_eq(s.consumed, 0);
		/* the size is known once the header is */
		ck_assert_uint_eq(s.need, cut < 4 ? 0 : len);
		ck_assert(s.why[0] == 0);
	}
	keyd_split_init(&s, buf, len, KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_FRAME);
	ck_assert_uint_eq(s.body_len, 37);
	ck_assert_uint_eq(s.consumed, len);
}
END_TEST

/* Two frames arriving in two writes cut at every offset, what is left of a frame kept at the
 * front of the buffer as keyd keeps it: both are found, whole, in order. */
START_TEST(two_writes_cut_at_every_offset)
{
	uint8_t stream[64], buf[64];
	size_t len = 0, cut;

	put_frame(stream, &len, 9, 0x21);
	put_frame(stream, &len, 14, 0x42);
	for (cut = 0; cut <= len; cut++) {
		struct keyd_split s;
		size_t kept = cut, found = 0;
		int step;

		memcpy(buf, stream, cut);
		for (int write = 0; write < 2; write++) {
			keyd_split_init(&s, buf, kept, KEYD_FRAME_MAX);
			while ((step = keyd_split_next(&s)) == KEYD_SPLIT_FRAME) {
				ck_assert_uint_eq(s.body_len, found ? 14 : 9);
				ck_assert_uint_eq(buf[s.body_off], found ? 0x42 : 0x21);
				ck_assert_uint_eq(buf[s.body_off + s.body_len - 1],
				                  found ? 0x42 : 0x21);
				found++;
			}
			ck_assert_int_eq(step, KEYD_SPLIT_MORE);
			memmove(buf, buf + s.consumed, kept - s.consumed);
			kept -= s.consumed;
			if (write == 0) {
				memcpy(buf + kept, stream + cut, len - cut);
				kept += len - cut;
			}
		}
		ck_assert_msg(found == 2 && kept == 0, "cut at %zu: %zu frames, %zu bytes left",
		              cut, found, kept);
	}
}
END_TEST

START_TEST(two_frames_in_one_buffer)
{
	uint8_t buf[64];
	struct keyd_split s;
	size_t len = 0;

	put_frame(buf, &len, 1, 0xaa);
	put_frame(buf, &len, 20, 0xbb);
	put_frame(buf, &len, 9, 0xcc);
	len -= 3; /* the third is cut short */
	keyd_split_init(&s, buf, len, KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_FRAME);
	ck_assert_uint_eq(s.body_off, 4);
	ck_assert_uint_eq(s.body_len, 1);
	ck_assert_uint_eq(buf[s.body_off], 0xaa);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_FRAME);
	ck_assert_uint_eq(s.body_off, 9);
	ck_assert_uint_eq(s.body_len, 20);
	ck_assert_uint_eq(buf[s.body_off], 0xbb);
	ck_assert_uint_eq(buf[s.body_off + 19], 0xbb);
	ck_assert_uint_eq(s.consumed, 29);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_MORE);
	ck_assert_uint_eq(s.consumed, 29);
	ck_assert_uint_eq(s.need, 13);
	/* asked again, the same */
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_MORE);
	ck_assert_uint_eq(s.need, 13);
}
END_TEST

START_TEST(oversized_header)
{
	static const uint8_t over[] = {0x00, 0x01, 0x00, 0x01, 'x'};
	static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
	uint8_t buf[16];
	struct keyd_split s;
	size_t len = 0;

	/* refused from its header alone, without waiting for the body */
	keyd_split_init(&s, over, sizeof(over), KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_BAD);
	ck_assert_str_eq(s.why, "frame length 65537 outside 1..65536 (over the limit)");
	ck_assert_uint_eq(s.consumed, 0);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_BAD);

	keyd_split_init(&s, huge, sizeof(huge), KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_BAD);
	ck_assert_str_eq(s.why, "frame length 4294967295 outside 1..65536 (over the limit)");

	/* the limit is the caller's: a good frame, then one a byte over it */
	put_frame(buf, &len, 3, 1);
	put_frame(buf, &len, 4, 2);
	keyd_split_init(&s, buf, len, 3);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_FRAME);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_BAD);
	ck_assert_uint_eq(s.consumed, 7);
	ck_assert_str_eq(s.why, "frame length 4 outside 1..3 (over the limit)");
}
END_TEST

START_TEST(zero_length)
{
	static const uint8_t zero[] = {0, 0, 0, 0, 0, 0, 0, 5};
	struct keyd_split s;

	keyd_split_init(&s, zero, sizeof(zero), KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_BAD);
	ck_assert_str_eq(s.why, "frame length 0 outside 1..65536 (an empty frame)");
	ck_assert_uint_eq(s.consumed, 0);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_BAD);
	/* an empty buffer is no error, only nothing yet */
	keyd_split_init(&s, zero, 0, KEYD_FRAME_MAX);
	ck_assert_int_eq(keyd_split_next(&s), KEYD_SPLIT_MORE);
	ck_assert_uint_eq(s.need, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-frames");
	TCase *tc = tcase_create("split");

	tcase_add_test(tc, exact_size_frame);
	tcase_add_test(tc, split_at_every_offset);
	tcase_add_test(tc, two_writes_cut_at_every_offset);
	tcase_add_test(tc, two_frames_in_one_buffer);
	tcase_add_test(tc, oversized_header);
	tcase_add_test(tc, zero_length);
	suite_add_tcase(s, tc);
	return harness_run_suite(s);
}
