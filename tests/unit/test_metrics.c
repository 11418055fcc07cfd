/* The metrics registry: counters, gauges and histograms with and without labels, bound
 * readers, escaping, a full family, bounded output, several threads counting at once, and the
 * exposition's exact text. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static struct metrics *m;
static char err[256];
static char text[8192];
static size_t len;

static void setup(void)
{
	ck_assert_int_eq(metrics_new(&m), 0);
	err[0] = '\0';
}

static void teardown(void)
{
	metrics_free(m);
	m = NULL;
}

static const char *render(void)
{
	ck_assert_int_eq(metrics_write(m, text, sizeof(text), &len), 0);
	ck_assert_uint_eq(len, strlen(text));
	return text;
}

START_TEST(counters_and_labels)
{
	struct metrics_family *f;
	struct metrics_series *a, *b;

	ck_assert_int_eq(metrics_counter(m, "t_requests_total", "requests by op and result",
	                                 "op,result", 8, &f, err, sizeof(err)),
	                 0);
	a = metrics_get(f, "sign", "ok");
	b = metrics_get(f, "sign", "failed");
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	ck_assert_ptr_eq(metrics_get(f, "sign", "ok"), a);
	ck_assert_ptr_eq(metrics_find(f, "sign", "failed"), b);
	ck_assert_ptr_null(metrics_find(f, "sign", "busy")); /* not made by looking */
	metrics_inc(a);
	metrics_add(a, 41);
	metrics_inc(metrics_get(f, "generate", "ok"));
	metrics_set(a, 7);       /* not a gauge: ignored */
	metrics_observe(a, 1.0); /* not a histogram: ignored */
	metrics_inc(NULL);       /* a series that could not be made: ignored */
	ck_assert_int_eq(metrics_value(a), 42);
	ck_assert_int_eq(metrics_value(b), 0);
	ck_assert_str_eq(render(), "# HELP t_requests_total requests by op and result\n"
	                           "# TYPE t_requests_total counter\n"
	                           "t_requests_total{op=\"sign\",result=\"ok\"} 42\n"
	                           "t_requests_total{op=\"sign\",result=\"failed\"} 0\n"
	                           "t_requests_total{op=\"generate\",result=\"ok\"} 1\n");
}
END_TEST

static int64_t read_seven(void *arg)
{
	return *(int64_t *)arg;
}

START_TEST(gauges_plain_and_bound)
{
	struct metrics_family *g, *up, *c;
	int64_t seven = 7;

	ck_assert_int_eq(metrics_gauge(m, "t_depth", "queued", NULL, 1, &g, err, sizeof(err)), 0);
	ck_assert_int_eq(metrics_gauge(m, "t_up", "1 when up", "part", 4, &up, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(
	    metrics_counter(m, "t_reads_total", "read elsewhere", "", 1, &c, err, sizeof(err)), 0);
	metrics_set(metrics_get(g), 5);
	metrics_gauge_add(metrics_get(g), -8);
	metrics_set(metrics_get(up, "database"), 1);
	metrics_set(metrics_get(up, "keyd"), 0);
	metrics_bind(metrics_get(c), read_seven, &seven);
	metrics_add(metrics_get(c), 100); /* a bound series shows its reader's value */
	seven = 9;
	ck_assert_int_eq(metrics_value(metrics_get(g)), -3);
	ck_assert_str_eq(render(), "# HELP t_depth queued\n"
	                           "# TYPE t_depth gauge\n"
	                           "t_depth -3\n"
	                           "# HELP t_up 1 when up\n"
	                           "# TYPE t_up gauge\n"
	                           "t_up{part=\"database\"} 1\n"
	                           "t_up{part=\"keyd\"} 0\n"
	                           "# HELP t_reads_total read elsewhere\n"
	                           "# TYPE t_reads_total counter\n"
	                           "t_reads_total 9\n");
}
END_TEST

START_TEST(histograms_cumulate_with_inf_sum_and_count)
{
	static const double bounds[] = {0.005, 0.25, 1, 2.5};
	struct metrics_family *h, *l;

	ck_assert_int_eq(metrics_histogram(m, "t_seconds", "time to answer", NULL, 1, bounds, 4, &h,
	                                   err, sizeof(err)),
	                 0);
	ck_assert_int_eq(metrics_histogram(m, "t_op_seconds", "per op", "op", 2, bounds, 2, &l, err,
	                                   sizeof(err)),
	                 0);
	metrics_observe(metrics_get(h), 0.001);
	metrics_observe(metrics_get(h), 0.25); /* on a bound: that bucket (le) */
	metrics_observe(metrics_get(h), 2);
	metrics_observe(metrics_get(h), 30);
	metrics_observe(metrics_get(l, "sign"), 0.5);
	ck_assert_str_eq(render(), "# HELP t_seconds time to answer\n"
	                           "# TYPE t_seconds histogram\n"
	                           "t_seconds_bucket{le=\"0.005\"} 1\n"
	                           "t_seconds_bucket{le=\"0.25\"} 2\n"
	                           "t_seconds_bucket{le=\"1\"} 2\n"
	                           "t_seconds_bucket{le=\"2.5\"} 3\n"
	                           "t_seconds_bucket{le=\"+Inf\"} 4\n"
	                           "t_seconds_sum 32.251000\n"
	                           "t_seconds_count 4\n"
	                           "# HELP t_op_seconds per op\n"
	                           "# TYPE t_op_seconds histogram\n"
	                           "t_op_seconds_bucket{op=\"sign\",le=\"0.005\"} 0\n"
	                           "t_op_seconds_bucket{op=\"sign\",le=\"0.25\"} 0\n"
	                           "t_op_seconds_bucket{op=\"sign\",le=\"+Inf\"} 1\n"
	                           "t_op_seconds_sum{op=\"sign\"} 0.500000\n"
	                           "t_op_seconds_count{op=\"sign\"} 1\n");
}
END_TEST

START_TEST(label_values_and_help_are_escaped)
{
	struct metrics_family *f;

	ck_assert_int_eq(metrics_gauge(m, "t_odd", "a \\ in help", "v", 4, &f, err, sizeof(err)),
	                 0);
	metrics_set(metrics_get(f, "quote\"back\\slash\nline"), 1);
	metrics_set(metrics_get(f, ""), 2);
	ck_assert_str_eq(render(), "# HELP t_odd a \\\\ in help\n"
	                           "# TYPE t_odd gauge\n"
	                           "t_odd{v=\"quote\\\"back\\\\slash\\nline\"} 1\n"
	                           "t_odd{v=\"\"} 2\n");
}
END_TEST

START_TEST(bad_names_are_refused)
{
	static const double down[] = {1, 0.5};
	struct metrics_family *f;

	ck_assert_int_eq(metrics_counter(m, "9lives", "h", NULL, 1, &f, err, sizeof(err)), -1);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(metrics_counter(m, "a-b", "h", NULL, 1, &f, err, sizeof(err)), -1);
	ck_assert_int_eq(metrics_counter(m, "ok", "two\nlines", NULL, 1, &f, err, sizeof(err)), -1);
	ck_assert_int_eq(metrics_counter(m, "ok", "h", "a,a", 1, &f, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	ck_assert_int_eq(metrics_counter(m, "ok", "h", "a,", 1, &f, err, sizeof(err)), -1);
	ck_assert_int_eq(metrics_counter(m, "ok", "h", "__a", 1, &f, err, sizeof(err)), -1);
	ck_assert_int_eq(metrics_counter(m, "ok", "h", "a,b,c,d", 1, &f, err, sizeof(err)), -1);
	ck_assert_int_eq(metrics_counter(m, "ok", "h", NULL, 0, &f, err, sizeof(err)), -1);
	ck_assert_int_eq(metrics_histogram(m, "ok", "h", "le", 1, NULL, 0, &f, err, sizeof(err)),
	                 -1);
	ck_assert_int_eq(metrics_histogram(m, "ok", "h", NULL, 1, down, 2, &f, err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(render(), "");
}
END_TEST

START_TEST(a_full_family_counts_no_new_series)
{
	struct metrics_family *f;
	char longv[METRICS_LABEL_TEXT_MAX + 1];

	ck_assert_int_eq(
	    metrics_counter(m, "t_keys_total", "per key", "key", 2, &f, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(metrics_get(f, "a"));
	ck_assert_ptr_nonnull(metrics_get(f, "b"));
	ck_assert_ptr_null(metrics_get(f, "c"));
	ck_assert_ptr_nonnull(metrics_get(f, "a"));
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	ck_assert_int_eq(metrics_counter(m, "t_long_total", "long", "v", 2, &f, err, sizeof(err)),
	                 0);
	ck_assert_ptr_null(metrics_get(f, longv));
}
END_TEST

START_TEST(output_is_bounded_to_whole_lines)
{
	struct metrics_family *f;
	char small[50]; /* room for the first three lines only */

	ck_assert_int_eq(metrics_gauge(m, "t_g", "g", "n", 4, &f, err, sizeof(err)), 0);
	metrics_set(metrics_get(f, "one"), 1);
	metrics_set(metrics_get(f, "two"), 2);
	ck_assert_int_eq(metrics_write(m, small, sizeof(small), &len), -1);
	ck_assert_str_eq(small, "# HELP t_g g\n# TYPE t_g gauge\nt_g{n=\"one\"} 1\n");
	ck_assert_uint_eq(len, strlen(small));
	ck_assert_int_eq(metrics_write(m, small, 0, &len), -1);
	ck_assert_uint_eq(len, 0);
}
END_TEST

#define THREADS 8
#define ROUNDS 20000

static struct metrics_family *tc_f, *tc_h, *tc_g;

static void *count_away(void *arg)
{
	char key[8];

	snprintf(key, sizeof(key), "k%d", (int)(size_t)arg % 3);
	for (int i = 0; i < ROUNDS; i++) {
		metrics_inc(metrics_get(tc_f, key));
		metrics_observe(metrics_get(tc_h), 0.5);
		metrics_gauge_add(metrics_get(tc_g), i % 2 ? -1 : 1);
	}
	return NULL;
}

START_TEST(threads_counting_at_once_lose_nothing)
{
	static const double bounds[] = {1};
	pthread_t th[THREADS];
	int64_t total = 0;

	ck_assert_int_eq(metrics_counter(m, "t_n_total", "n", "key", 4, &tc_f, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(
	    metrics_histogram(m, "t_h", "h", NULL, 1, bounds, 1, &tc_h, err, sizeof(err)), 0);
	ck_assert_int_eq(metrics_gauge(m, "t_level", "l", NULL, 1, &tc_g, err, sizeof(err)), 0);
	for (size_t i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, count_away, (void *)i), 0);
	for (size_t i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	/* Three keys among eight threads: each added once, however the threads raced. */
	for (int k = 0; k < 3; k++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		total += metrics_value(metrics_get(tc_f, key));
	}
	ck_assert_int_eq(total, (int64_t)THREADS * ROUNDS);
	ck_assert_int_eq(metrics_value(metrics_get(tc_g)), 0);
	render();
	ck_assert_ptr_nonnull(strstr(text, "t_h_bucket{le=\"1\"} 160000\n"
	                                   "t_h_bucket{le=\"+Inf\"} 160000\n"
	                                   "t_h_sum 80000.000000\n"
	                                   "t_h_count 160000\n"));
	/* No key twice, however the threads raced to add it. */
	ck_assert_ptr_nonnull(strstr(text, "t_n_total{key=\"k0\"} 60000\n"));
	ck_assert_ptr_nonnull(strstr(text, "t_n_total{key=\"k1\"} 60000\n"));
	ck_assert_ptr_nonnull(strstr(text, "t_n_total{key=\"k2\"} 40000\n"));
	ck_assert_ptr_null(strstr(strstr(text, "{key=\"k0\"}") + 1, "{key=\"k0\"}"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("registry");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, counters_and_labels);
	tcase_add_test(tc, gauges_plain_and_bound);
	tcase_add_test(tc, histograms_cumulate_with_inf_sum_and_count);
	tcase_add_test(tc, label_values_and_help_are_escaped);
	tcase_add_test(tc, bad_names_are_refused);
	tcase_add_test(tc, a_full_family_counts_no_new_series);
	tcase_add_test(tc, output_is_bounded_to_whole_lines);
	tcase_add_test(tc, threads_counting_at_once_lose_nothing);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
