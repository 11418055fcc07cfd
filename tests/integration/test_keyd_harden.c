/* hsmca-keyd's process hardening (hsm/keyd/keyd_harden.c) seen from outside, and what a long
 * key generation must not hold up: keyd is not dumpable and may not write a core file, its
 * PIN lives in locked memory, and while an RSA-4096 key is generated on the control session
 * other clients still sign at their usual latency, new connections are accepted and answered,
 * and SIGTERM closes the socket at once. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct keyd_client *cli;

static void setup(void)
{
	struct harness_opts o = {0};
	o.workers = 2;
	ck_assert_int_eq(harness_start(&h, &o), 0);
	cli = keyd_client_new(h.socket, 30000);
	ck_assert_ptr_nonnull(cli);
}

static void teardown(void)
{
	keyd_client_free(cli);
	cli = NULL;
	harness_stop(&h);
}

/* The value of the /proc/PID/FILE line starting with key, "" if none. */
static const char *proc_line(pid_t pid, const char *file, const char *key)
{
	static char line[256];
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0) {
			fclose(f);
			return line + strlen(key);
		}
	fclose(f);
	line[0] = 0;
	return line;
}

START_TEST(keyd_writes_no_core_and_is_not_dumpable)
{
	unsigned long soft = 1, hard = 1;
	const char *l = proc_line(h.keyd_pid, "limits", "Max core file size");
	struct stat st;
	char path[64];

	ck_assert_msg(sscanf(l, " %lu %lu", &soft, &hard) == 2, "limits line \"%s\"", l);
	ck_assert_uint_eq(soft, 0);
	ck_assert_uint_eq(hard, 0);
	/* A process that is not dumpable has its /proc files owned by root. keyd runs as the
	 * test's uid here; as root that says nothing (sandbox-keyd checks it after the drop). */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)h.keyd_pid);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_msg(st.st_uid == 0, "keyd's /proc files belong to uid %u: dumpable",
		              (unsigned)st.st_uid);
	}
}
END_TEST

START_TEST(pin_is_held_in_locked_memory)
{
	unsigned long kb = 0;
	const char *l = proc_line(h.keyd_pid, "status", "VmLck:");

	ck_assert_msg(sscanf(l, " %lu", &kb) == 1, "VmLck line \"%s\"", l);
	/* One page for the token's copy of the PIN (the start-up copy is already let go). */
	ck_assert_msg(kb >= 4, "keyd has %lu kB locked: the PIN is not in locked memory", kb);
}
END_TEST

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n ? v[n / 2] : 0;
}

static double sign_once(struct keyd_client *c)
{
	uint8_t dg[32] = {1, 2, 3}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keyd_err err;
	double t0 = now_s();
	int r = keyd_client_sign(c, "sig", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dg, sizeof(dg), sig,
	                         &siglen, &err);

	ck_assert_msg(r == KEYD_OK, "sign: %s", err.msg);
	return now_s() - t0;
}

/* A new connection, one STATUS on it, closed: what the acceptor and a fresh client see. */
static double connect_and_status(void)
{
	struct keyd_token_status st;
	struct keyd_err err;
	double t0 = now_s();
	struct keyd_client *c = keyd_client_new(h.socket, 30000);
	int r;

	ck_assert_ptr_nonnull(c);
	r = keyd_client_status(c, &st, &err);
	keyd_client_free(c);
	ck_assert_msg(r == KEYD_OK, "status: %s", err.msg);
	return now_s() - t0;
}

struct gen {
	char label[32];
	atomic_int done;
	int status;
	double seconds;
	char msg[256];
};

static void *generate_main(void *arg)
{
	struct gen *g = arg;
	struct keyd_client *c = keyd_client_new(h.socket, 300000);
	struct keyd_key k;
	struct keyd_err err;
	double t0 = now_s();

	g->status = c ? keyd_client_generate(c, g->label, KEYD_KEY_RSA, 4096, &k, &err) : -1;
	g->seconds = now_s() - t0;
	snprintf(g->msg, sizeof(g->msg), "%s", c ? err.msg : "no client");
	keyd_client_free(c);
	atomic_store(&g->done, 1);
	return NULL;
}

#define SAMPLES 4000

START_TEST(rsa4096_generation_stalls_no_signer_accept_or_sigterm)
{
	static double before[SAMPLES], during[SAMPLES], conn_before[64], conn_during[SAMPLES];
	size_t nb = 0, nd = 0, ncb = 0, ncd = 0;
	struct keyd_key k;
	struct keyd_err err;
	double p50b, p50d, cb, cd, cmax = 0, t0;
	struct gen g = {0};
	pthread_t th;
	int st, rounds = 0;

	ck_assert_int_eq(keyd_client_generate(cli, "sig", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	for (int i = 0; i < 50; i++)
		sign_once(cli); /* warm */
	while (nb < 400)
		before[nb++] = sign_once(cli);
	while (ncb < 20)
		conn_before[ncb++] = connect_and_status();
	p50b = median(before, nb);
	cb = median(conn_before, ncb);

	/* Generate RSA-4096 keys (one takes seconds in SoftHSM, but some come quickly) until
	 * enough signatures and connections were timed while one was in progress. */
	do {
		double last_conn = 0;
		snprintf(g.label, sizeof(g.label), "big-%d", rounds++);
		atomic_store(&g.done, 0);
		ck_assert_int_eq(pthread_create(&th, NULL, generate_main, &g), 0);
		usleep(20000); /* let it reach the token */
		/* A sample counts if the generation was still running when it began: one that
		 * a stall held up until the key was made counts too. */
		while (!atomic_load(&g.done) && nd < SAMPLES && ncd < SAMPLES) {
			during[nd++] = sign_once(cli);
			if (now_s() - last_conn > 0.05 && !atomic_load(&g.done)) {
				last_conn = now_s();
				conn_during[ncd++] = connect_and_status();
			}
		}
		pthread_join(th, NULL);
		ck_assert_msg(g.status == KEYD_OK, "generate RSA-4096: %s", g.msg);
		fprintf(stderr, "RSA-4096 generation %d took %.2f s\n", rounds, g.seconds);
	} while ((nd < 200 || ncd < 10) && rounds < 8);
	ck_assert_msg(nd >= 200 && ncd >= 10,
	              "only %zu signatures and %zu connections timed "
	              "during %d generations",
	              nd, ncd, rounds);
	p50d = median(during, nd);
	cd = median(conn_during, ncd);
	cmax = conn_during[ncd - 1]; /* sorted by median() */
	fprintf(stderr,
	        "sign p50 %.3f ms before, %.3f ms during generation (%zu samples, ratio %.2f); "
	        "connect+status p50 %.3f ms before, %.3f ms during (max %.3f ms, %zu samples)\n",
	        p50b * 1e3, p50d * 1e3, nd, p50d / p50b, cb * 1e3, cd * 1e3, cmax * 1e3, ncd);
	/* Generous bounds for a shared 2-core machine; a stall is whole seconds. */
	ck_assert_msg(p50d <= 10 * p50b + 0.002, "signing p50 went from %.3f to %.3f ms",
	              p50b * 1e3, p50d * 1e3);
	/* A stalled acceptor holds one connection until the key is made (seconds): the
	 * slowest one shows it, the median would not. */
	ck_assert_msg(cmax <= 10 * cb + 0.5,
	              "a connect+status took %.3f ms during generation "
	              "(%.3f ms p50 before)",
	              cmax * 1e3, cb * 1e3);

	/* SIGTERM in the middle of a generation: the socket goes at once (the process itself
	 * waits for the token to finish the key, then exits 0). */
	for (int i = 0;; i++) {
		ck_assert_msg(i < 5, "no RSA-4096 generation lasted 0.6 s: the SIGTERM check needs "
		                     "a slower one");
		snprintf(g.label, sizeof(g.label), "big-last-%d", i);
		atomic_store(&g.done, 0);
		ck_assert_int_eq(pthread_create(&th, NULL, generate_main, &g), 0);
		usleep(600000); /* past a few health checks (every 200 ms in the harness) */
		if (!atomic_load(&g.done))
			break;
		pthread_join(th, NULL);
	}
	t0 = now_s();
	kill(h.keyd_pid, SIGTERM);
	while (access(h.socket, F_OK) == 0 && now_s() - t0 < 5)
		usleep(5000);
	fprintf(stderr, "socket gone %.3f s after SIGTERM during a generation\n", now_s() - t0);
	ck_assert_msg(now_s() - t0 < 1.0, "keyd's socket still there %.2f s after SIGTERM",
	              now_s() - t0);
	ck_assert_int_eq(waitpid(h.keyd_pid, &st, 0), h.keyd_pid);
	h.keyd_pid = 0;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "keyd exit status 0x%x", st);
	pthread_join(th, NULL);
}
END_TEST

/* softhsm2-util --init-token on keyd's token, with SO PIN and the given user PIN, while keyd
 * runs (another process re-initialising it under keyd). */
static void reinit_token(const char *pin)
{
	char label[40], so[40], user[80];
	char *argv[] = {"softhsm2-util", "--init-token", "--token",  label,
	                "--label",       label,          "--so-pin", so,
	                "--pin",         user,           NULL};

	snprintf(label, sizeof(label), "%s", h.token_label);
	snprintf(so, sizeof(so), "%s", h.so_pin);
	snprintf(user, sizeof(user), "%s", pin);
	ck_assert_int_eq(harness_run(argv, NULL), 0);
}

static int count_in(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* The token re-initialised under a running keyd (issue 15): SoftHSM fails every signature with
 * CKR_OBJECT_HANDLE_INVALID while its session still looks logged in, and keyd used to say
 * "online" with keys that no longer exist, failing each signature for ever. Now the first
 * failure takes the token offline, keyd logs in again and reloads its key table: the old key
 * is gone ("no key"), a new one signs. Re-initialised with another PIN, keyd stays offline,
 * says why to every client, and does not try its old PIN again (a token that counts failures
 * would lock it). */
START_TEST(token_reinitialised_under_keyd_recovers_or_says_why)
{
	struct keyd_key k;
	struct keyd_err err;
	struct keyd_token_status st = {0};
	uint8_t dg[32] = {1}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	int r;

	if (!harness_token_is_softhsm(&h))
		return; /* softhsm2-util re-initialises SoftHSM tokens only */
	ck_assert_int_eq(keyd_client_generate(cli, "sig", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	sign_once(cli);

	reinit_token(h.pin);
	r = keyd_client_sign(cli, "sig", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dg, sizeof(dg), sig,
	                     &siglen, &err);
	ck_assert_int_ne(r, KEYD_OK);
	for (int i = 0; i < 200; i++) {
		ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
		if (st.online && st.reinits >= 1)
			break;
		usleep(50 * 1000);
	}
	ck_assert_msg(st.online && st.reinits >= 1, "keyd did not recover: %s",
	              harness_slurp(h.log));
	ck_assert_uint_eq(st.keys, 0);
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "sig", &k, &err), KEYD_E_NO_KEY);
	ck_assert(harness_log_contains(&h, "the token's objects changed under keyd"));
	ck_assert_int_eq(keyd_client_generate(cli, "sig2", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	siglen = sizeof(sig);
	ck_assert_int_eq(keyd_client_sign(cli, "sig2", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dg,
	                                  sizeof(dg), sig, &siglen, &err),
	                 KEYD_OK);

	/* Another user PIN: offline, saying why, one login attempt only. */
	reinit_token("another-pin-1234");
	siglen = sizeof(sig);
	ck_assert_int_ne(keyd_client_sign(cli, "sig2", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dg,
	                                  sizeof(dg), sig, &siglen, &err),
	                 KEYD_OK);
	for (int i = 0; i < 200 && !harness_log_contains(&h, "does not try the PIN again"); i++)
		usleep(50 * 1000);
	ck_assert_msg(harness_log_contains(&h, "does not try the PIN again"), "%s",
	              harness_slurp(h.log));
	usleep(1500 * 1000); /* recovery's back-off would have tried again by now */
	ck_assert_int_eq(count_in(harness_slurp(h.log), "login failed"), 1);
	ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
	ck_assert_int_eq(st.online, 0);
	ck_assert_int_eq(keyd_client_get_pubkey(cli, "sig2", &k, &err), KEYD_E_OFFLINE);
	ck_assert_msg(strstr(err.msg, "no longer accepts keyd's PIN"), "%s", err.msg);
	/* and it still stops cleanly on SIGTERM */
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-harden");
	TCase *tc = tcase_create("keyd-harden");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 280);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, keyd_writes_no_core_and_is_not_dumpable);
	tcase_add_test(tc, pin_is_held_in_locked_memory);
	tcase_add_test(tc, rsa4096_generation_stalls_no_signer_accept_or_sigterm);
	tcase_add_test(tc, token_reinitialised_under_keyd_recovers_or_says_why);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
