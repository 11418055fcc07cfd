/* RFC 4180 fields as the reports write them (csv.h): plain fields stay plain, commas, quotes
 * and line breaks are quoted with quotes doubled, formula-like fields are defused, and every
 * table reads back field for field with a strict RFC 4180 reader. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

/* A strict RFC 4180 reader of one field at *p (advanced past it and its separator); the
 * field into out. Returns ',' or '\n' (end of row: CRLF) or 0 at the end, -1 on bad text. */
static int read_field(const char **p, char *out, size_t n)
{
	const char *s = *p;
	size_t k = 0;

	if (*s == '"') {
		for (s++;; s++) {
			if (!*s)
				return -1;
			if (*s == '"') {
				if (s[1] != '"')
					break;
				s++;
			}
			if (k + 1 < n)
				out[k++] = *s;
		}
		s++;
	} else {
		for (; *s && *s != ',' && *s != '\r' && *s != '\n'; s++) {
			if (*s == '"')
				return -1;
			if (k + 1 < n)
				out[k++] = *s;
		}
	}
	out[k] = '\0';
	if (*s == ',') {
		*p = s + 1;
		return ',';
	}
	if (s[0] == '\r' && s[1] == '\n') {
		*p = s + 2;
		return '\n';
	}
	*p = s;
	return *s ? -1 : 0;
}

static char *one(const char *s)
{
	struct csv_buf b = {0};

	csv_field(&b, s);
	csv_row_end(&b);
	ck_assert(!b.failed);
	return b.data;
}

START_TEST(plain_fields_stay_plain)
{
	char *t = one("CN=device-1");

	ck_assert_str_eq(t, "CN=device-1\r\n");
	free(t);
	t = one("");
	ck_assert_str_eq(t, "\r\n");
	free(t);
	t = one(NULL);
	ck_assert_str_eq(t, "\r\n");
	free(t);
	t = one("42");
	ck_assert_str_eq(t, "42\r\n");
	free(t);
}
END_TEST

START_TEST(commas_quotes_and_line_breaks_are_quoted)
{
	char *t = one("CN=a,O=b");

	ck_assert_str_eq(t, "\"CN=a,O=b\"\r\n");
	free(t);
	t = one("say \"hi\"");
	ck_assert_str_eq(t, "\"say \"\"hi\"\"\"\r\n");
	free(t);
	t = one("\"");
	ck_assert_str_eq(t, "\"\"\"\"\r\n");
	free(t);
	t = one("two\nlines\r\n");
	ck_assert_str_eq(t, "\"two\nlines\r\n\"\r\n");
	free(t);
}
END_TEST

START_TEST(formula_like_fields_are_defused)
{
	const char *const bad[] = {"=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = one(bad[i]), want[64];
		snprintf(want, sizeof(want), "\"'%s\"\r\n", bad[i]);
		ck_assert_str_eq(t, want);
		free(t);
	}
}
END_TEST

START_TEST(a_table_reads_back_field_for_field)
{
	const char *const cells[3][4] = {
	    {"serial", "subject", "requester", "days_left"},
	    {"0a1b", "CN=a,O=\"x\"", "officer", "3"},
	    {"", "multi\r\nline", "=cmd", "ü,é"},
	};
	struct csv_buf b = {0};
	const char *p;
	char f[64];

	for (int r = 0; r < 3; r++) {
		for (int c = 0; c < 4; c++)
			csv_field(&b, cells[r][c]);
		csv_row_end(&b);
	}
	ck_assert(!b.failed);
	p = b.data;
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 4; c++) {
			int end = read_field(&p, f, sizeof(f));
			ck_assert_int_eq(end, c == 3 ? '\n' : ',');
			if (!strcmp(cells[r][c], "=cmd"))
				ck_assert_str_eq(f, "'=cmd");
			else
				ck_assert_str_eq(f, cells[r][c]);
		}
	ck_assert_int_eq(*p, '\0');
	free(b.data);
}
END_TEST

START_TEST(large_tables_grow_the_buffer)
{
	struct csv_buf b = {0};

	for (int i = 0; i < 20000; i++) {
		csv_field(&b, "a,b");
		csv_field(&b, "c");
		csv_row_end(&b);
	}
	ck_assert(!b.failed);
	ck_assert_uint_eq(b.len, 20000 * strlen("\"a,b\",c\r\n"));
	ck_assert_uint_eq(strlen(b.data), b.len);
	free(b.data);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("fields");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, plain_fields_stay_plain);
	tcase_add_test(tc, commas_quotes_and_line_breaks_are_quoted);
	tcase_add_test(tc, formula_like_fields_are_defused);
	tcase_add_test(tc, a_table_reads_back_field_for_field);
	tcase_add_test(tc, large_tables_grow_the_buffer);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
