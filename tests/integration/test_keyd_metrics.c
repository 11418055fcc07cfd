/* keyd's metrics (op "metrics", `hsmca keyd metrics`): Prometheus text with the token's state,
 * requests by operation and result, the signature latency histogram and signatures per key,
 * each counting what the test did. */
#include <check.h>
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
static char text[KEYD_METRICS_MAX + 1];

static void setup(void)
{
	ck_assert_int_eq(harness_start(&h, NULL), 0);
	cli = keyd_client_new(h.socket, 5000);
	ck_assert_ptr_nonnull(cli);
}

static void teardown(void)
{
	keyd_client_free(cli);
	ck_assert_msg(harness_stop(&h) == 0, "hsmca-keyd did not exit cleanly: see above");
}

/* The value of the sample whose name and labels are exactly `series`, or -1. */
static long long sample(const char *t, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = t; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return atoll(p + n + 1);
	return -1;
}

static void fetch(void)
{
	struct keyd_err err;
	ck_assert_int_eq(keyd_client_metrics(cli, text, sizeof(text), &err), KEYD_OK);
}

static int sign(const char *label, int hash)
{
	uint8_t d[64] = {1}, sig[KEYD_SIG_MAX];
	size_t sl = sizeof(sig);
	struct keyd_err err;
	return keyd_client_sign(cli, label, KEYD_ALG_ECDSA, hash, 0, d, keyd_hash_len(hash), sig,
	                        &sl, &err);
}

START_TEST(metrics_count_signatures_per_key_and_their_latency)
{
	struct keyd_key k;
	struct keyd_err err;

	ck_assert_int_eq(keyd_client_generate(cli, "m-a", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	ck_assert_int_eq(keyd_client_generate(cli, "m-b", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(sign("m-a", KEYD_HASH_SHA256), KEYD_OK);
	ck_assert_int_eq(sign("m-b", KEYD_HASH_SHA256), KEYD_OK);
	ck_assert_int_eq(sign("m-b", KEYD_HASH_SHA384), KEYD_OK);
	ck_assert_int_eq(sign("missing", KEYD_HASH_SHA256), KEYD_E_NO_KEY);
	fetch();
	ck_assert_int_eq(sample(text, "hsmca_keyd_signatures_total{key=\"m-a\",result=\"ok\"}"), 5);
	ck_assert_int_eq(sample(text, "hsmca_keyd_signatures_total{key=\"m-b\",result=\"ok\"}"), 2);
	ck_assert_int_eq(sample(text, "hsmca_keyd_signatures_total{key=\"m-a\",result=\"failed\"}"),
	                 0);
	ck_assert_int_eq(sample(text, "hsmca_keyd_requests_total{op=\"sign\",result=\"ok\"}"), 7);
	ck_assert_int_eq(sample(text, "hsmca_keyd_requests_total{op=\"sign\",result=\"no-key\"}"),
	                 1);
	ck_assert_int_eq(sample(text, "hsmca_keyd_requests_total{op=\"generate\",result=\"ok\"}"),
	                 2);
	/* Every signature request that reached the token is in the histogram. */
	ck_assert_int_eq(sample(text, "hsmca_keyd_sign_duration_seconds_count"), 8);
	ck_assert_int_eq(sample(text, "hsmca_keyd_sign_duration_seconds_bucket{le=\"+Inf\"}"), 8);
	ck_assert_int_eq(sample(text, "hsmca_keyd_token_online{token=\"hsmca-test\"}"), 1);
	ck_assert_int_eq(sample(text, "hsmca_keyd_keys"), 2);
	ck_assert_int_eq(sample(text, "hsmca_keyd_queue_depth"), 0);
}
END_TEST

START_TEST(metrics_are_well_formed_prometheus_text)
{
	char *save = NULL, *copy;
	long long last = -1;

	ck_assert_int_eq(sign("none", KEYD_HASH_SHA256), KEYD_E_NO_KEY);
	fetch();
	copy = strdup(text);
	/* Each line a comment or "name{labels} value"; histogram buckets never decrease. */
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char name[128];
		double v;
		if (l[0] == '#') {
			ck_assert(!strncmp(l, "# HELP hsmca_keyd_", 18) ||
			          !strncmp(l, "# TYPE hsmca_keyd_", 18));
			continue;
		}
		ck_assert_msg(sscanf(l, "%127[a-z_]", name) == 1 &&
		                  !strncmp(name, "hsmca_keyd_", 11),
		              "bad line: %s", l);
		ck_assert_msg(sscanf(strrchr(l, ' ') + 1, "%lf", &v) == 1, "no value: %s", l);
		if (strstr(l, "_bucket{")) {
			ck_assert_int_ge((long long)v, last);
			last = (long long)v;
		}
	}
	free(copy);
}
END_TEST

START_TEST(hsmca_keyd_metrics_prints_them)
{
	char cmd[1024], line[512];
	int found = 0;
	FILE *p;

	ck_assert_int_eq(sign("nothing", KEYD_HASH_SHA256), KEYD_E_NO_KEY);
	snprintf(cmd, sizeof(cmd), "'%s' keyd --socket '%s' metrics", getenv("HSMCA_CLI_BIN"),
	         h.socket);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (fgets(line, sizeof(line), p))
		if (!strcmp(line, "hsmca_keyd_requests_total{op=\"sign\",result=\"no-key\"} 1\n"))
			found = 1;
	ck_assert_int_eq(WEXITSTATUS(pclose(p)), 0);
	ck_assert(found);
}
END_TEST

START_TEST(metrics_are_granted_like_status)
{
	char yaml[256];
	struct keyd_err err;

	/* A client with only "sign" may not read the metrics; "*" may. */
	snprintf(yaml, sizeof(yaml),
	         "  - {name: signer, uid: %u, keys: [\"*\"], operations: [sign]}\n",
	         (unsigned)getuid());
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = yaml}), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	ck_assert_int_eq(keyd_client_metrics(cli, text, sizeof(text), &err), KEYD_E_DENIED);
	snprintf(yaml, sizeof(yaml),
	         "  - {name: monitor, uid: %u, keys: [\"*\"], operations: [\"*\"]}\n",
	         (unsigned)getuid());
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = yaml}), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	ck_assert_int_eq(keyd_client_metrics(cli, text, sizeof(text), &err), KEYD_OK);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-metrics");
	TCase *tc = tcase_create("metrics");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, metrics_count_signatures_per_key_and_their_latency);
	tcase_add_test(tc, metrics_are_well_formed_prometheus_text);
	tcase_add_test(tc, hsmca_keyd_metrics_prints_them);
	tcase_add_test(tc, metrics_are_granted_like_status);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
