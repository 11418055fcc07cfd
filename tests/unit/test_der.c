/* The shared DER reader and writer (der.h): what the strict reader refuses (indefinite and
 * non-minimal lengths, high tag numbers, elements running past their bytes), that a refusal
 * leaves the cursor where it was, and that what the writer writes reads back. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "der.h"

static int hdr(const uint8_t *b, size_t n, uint8_t *tag, size_t *h, uint64_t *len)
{
	return der_parse_hdr(b, n, tag, h, len);
}

START_TEST(short_and_long_lengths_parse)
{
	static const uint8_t s[] = {0x30, 0x7f};
	static const uint8_t l1[] = {0x04, 0x81, 0x80};
	static const uint8_t l2[] = {0x04, 0x82, 0x01, 0x00};
	static const uint8_t l4[] = {0x04, 0x84, 0x01, 0x00, 0x00, 0x00};
	uint8_t tag;
	size_t h;
	uint64_t len;

	ck_assert_int_eq(hdr(s, sizeof(s), &tag, &h, &len), 0);
	ck_assert_int_eq(tag, 0x30);
	ck_assert_uint_eq(h, 2);
	ck_assert_uint_eq(len, 0x7f);
	ck_assert_int_eq(hdr(l1, sizeof(l1), &tag, &h, &len), 0);
	ck_assert_uint_eq(h, 3);
	ck_assert_uint_eq(len, 0x80);
	ck_assert_int_eq(hdr(l2, sizeof(l2), &tag, &h, &len), 0);
	ck_assert_uint_eq(h, 4);
	ck_assert_uint_eq(len, 0x100);
	/* The header alone is read: a stream's content follows later. */
	ck_assert_int_eq(hdr(l4, sizeof(l4), &tag, &h, &len), 0);
	ck_assert_uint_eq(h, 6);
	ck_assert_uint_eq(len, 0x1000000);
}
END_TEST

START_TEST(non_strict_headers_are_refused)
{
	static const uint8_t indefinite[] = {0x30, 0x80, 0x00, 0x00};
	static const uint8_t long_small[] = {0x04, 0x81, 0x05, 0, 0, 0, 0, 0};
	static const uint8_t leading_zero[] = {0x04, 0x82, 0x00, 0x90};
	static const uint8_t five[] = {0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00};
	static const uint8_t high_tag[] = {0x1f, 0x01, 0x00};
	static const uint8_t cut[] = {0x04, 0x82, 0x01};
	uint8_t tag;
	size_t h;
	uint64_t len;

	ck_assert_int_eq(hdr(indefinite, sizeof(indefinite), &tag, &h, &len), -1);
	ck_assert_int_eq(hdr(long_small, sizeof(long_small), &tag, &h, &len), -1);
	ck_assert_int_eq(hdr(leading_zero, sizeof(leading_zero), &tag, &h, &len), -1);
	ck_assert_int_eq(hdr(five, sizeof(five), &tag, &h, &len), -1);
	ck_assert_int_eq(hdr(high_tag, sizeof(high_tag), &tag, &h, &len), -1);
	ck_assert_int_eq(hdr(cut, sizeof(cut), &tag, &h, &len), -1);
	ck_assert_int_eq(hdr(cut, 1, &tag, &h, &len), -1);
	ck_assert_int_eq(hdr(cut, 0, &tag, &h, &len), -1);
}
END_TEST

START_TEST(get_stays_inside_its_bytes)
{
	/* SEQUENCE { OCTET STRING "ab", NULL } then a trailing INTEGER 5 */
	static const uint8_t b[] = {0x30, 0x06, 0x04, 0x02, 'a', 'b', 0x05, 0x00, 0x02, 0x01, 0x05};
	struct der_in in = {b, sizeof(b)}, seq, os, nul, saved;
	int64_t v;

	ck_assert(der_peek(&in, 0x30));
	ck_assert(!der_peek(&in, 0x31));
	/* the wrong tag: refused, cursor unchanged */
	saved = in;
	ck_assert_int_eq(der_get(&in, 0x31, &seq), -1);
	ck_assert(in.p == saved.p && in.len == saved.len);
	ck_assert_int_eq(der_get(&in, 0x30, &seq), 0);
	ck_assert_uint_eq(seq.len, 6);
	ck_assert_int_eq(der_get(&seq, 0x04, &os), 0);
	ck_assert_uint_eq(os.len, 2);
	ck_assert(!memcmp(os.p, "ab", 2));
	ck_assert_int_eq(der_get(&seq, 0x05, &nul), 0);
	ck_assert_uint_eq(nul.len, 0);
	ck_assert_uint_eq(seq.len, 0);
	ck_assert(!der_peek(&seq, 0x05));
	ck_assert_int_eq(der_get(&seq, 0x05, &nul), -1);
	ck_assert_int_eq(der_get_int64(&in, &v), 0);
	ck_assert_int_eq(v, 5);
	ck_assert_uint_eq(in.len, 0);

	/* content running one byte past the cursor, and past an enclosing element */
	{
		static const uint8_t over[] = {0x04, 0x03, 'a', 'b'};
		static const uint8_t nested[] = {0x30, 0x03, 0x04, 0x02, 'a', 'b'};
		struct der_in o = {over, sizeof(over)}, n = {nested, sizeof(nested)}, c, d;
		ck_assert_int_eq(der_get(&o, 0x04, &c), -1);
		ck_assert_uint_eq(o.len, sizeof(over));
		/* the outer SEQUENCE claims 3 bytes; its OCTET STRING wants 4 */
		n.len = 5;
		ck_assert_int_eq(der_get(&n, 0x30, &c), 0);
		ck_assert_int_eq(der_get(&c, 0x04, &d), -1);
	}
}
END_TEST

START_TEST(integers_and_times)
{
	static const uint8_t neg[] = {0x02, 0x01, 0x80};
	static const uint8_t empty[] = {0x02, 0x00};
	static const uint8_t big[] = {0x02, 0x09, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t utc[] = {0x17, 0x0d, '4', '9', '1', '2', '3', '1',
	                              '2',  '3',  '5', '9', '5', '9', 'Z'};
	static const uint8_t gen[] = {0x18, 0x0f, '2', '0', '5', '0', '0', '1', '0',
	                              '1',  '0',  '0', '0', '0', '0', '0', 'Z'};
	static const uint8_t local[] = {0x17, 0x0d, '4', '9', '1', '2', '3', '1',
	                                '2',  '3',  '5', '9', '5', '9', '+'};
	struct der_in in;
	int64_t v;

	in = (struct der_in){neg, sizeof(neg)};
	ck_assert_int_eq(der_get_int64(&in, &v), -1);
	in = (struct der_in){empty, sizeof(empty)};
	ck_assert_int_eq(der_get_int64(&in, &v), -1);
	in = (struct der_in){big, sizeof(big)};
	ck_assert_int_eq(der_get_int64(&in, &v), -1);
	in = (struct der_in){utc, sizeof(utc)};
	ck_assert_int_eq(der_get_time(&in, &v), 0);
	ck_assert_int_eq(v, 2524607999LL);
	in = (struct der_in){gen, sizeof(gen)};
	ck_assert_int_eq(der_get_time(&in, &v), 0);
	ck_assert_int_eq(v, 2524608000LL);
	in = (struct der_in){local, sizeof(local)};
	ck_assert_int_eq(der_get_time(&in, &v), -1);
}
END_TEST

START_TEST(what_is_written_reads_back)
{
	uint8_t buf[400], content[300];
	struct der d;
	struct der_in in, c;
	int64_t v, t;
	static const uint8_t mag[] = {0x00, 0x00, 0x80, 0x01};

	memset(content, 'x', sizeof(content));
	der_init(&d, buf, sizeof(buf));
	der_tlv(&d, 0x04, content, 5);
	der_tlv(&d, 0x04, content, 200);
	der_int64(&d, 1234567);
	der_uint_bytes(&d, mag, sizeof(mag));
	der_time(&d, 2524607999LL, 0);
	der_time(&d, 2524608000LL, 0);
	ck_assert(!d.overflow);
	ck_assert_uint_eq(der_hdr_size(5), 2);
	ck_assert_uint_eq(der_hdr_size(200), 3);
	ck_assert_uint_eq(der_hdr_size(300), 4);

	in = (struct der_in){d.p, d.len};
	ck_assert_int_eq(der_get(&in, 0x04, &c), 0);
	ck_assert_uint_eq(c.len, 5);
	ck_assert_int_eq(der_get(&in, 0x04, &c), 0);
	ck_assert_uint_eq(c.len, 200);
	ck_assert_int_eq(der_get_int64(&in, &v), 0);
	ck_assert_int_eq(v, 1234567);
	/* leading zeros dropped, one added for the top bit */
	ck_assert_int_eq(der_get(&in, 0x02, &c), 0);
	ck_assert_uint_eq(c.len, 3);
	ck_assert(c.p[0] == 0 && c.p[1] == 0x80 && c.p[2] == 0x01);
	ck_assert(der_peek(&in, 0x17)); /* 2049: UTCTime */
	ck_assert_int_eq(der_get_time(&in, &t), 0);
	ck_assert_int_eq(t, 2524607999LL);
	ck_assert(der_peek(&in, 0x18)); /* 2050: GeneralizedTime */
	ck_assert_int_eq(der_get_time(&in, &t), 0);
	ck_assert_int_eq(t, 2524608000LL);
	ck_assert_uint_eq(in.len, 0);

	/* What does not fit is not written, and nothing after it is. */
	der_init(&d, buf, 10);
	der_tlv(&d, 0x04, content, 20);
	der_tlv(&d, 0x04, content, 1);
	ck_assert(d.overflow);
	ck_assert_uint_le(d.len, 10);
	der_init(&d, buf, sizeof(buf));
	der_time(&d, -1, 0);
	ck_assert(d.overflow);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("der");
	TCase *tc = tcase_create("der");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, short_and_long_lengths_parse);
	tcase_add_test(tc, non_strict_headers_are_refused);
	tcase_add_test(tc, get_stays_inside_its_bytes);
	tcase_add_test(tc, integers_and_times);
	tcase_add_test(tc, what_is_written_reads_back);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
