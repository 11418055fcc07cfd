/* hsmca-keyd confined in-process (ca-core/lib/sandbox.c) as it runs in production: started as root
 * with `user:` in its configuration, it drops to that user after logging in, installs its
 * seccomp filter, and still generates, signs and re-initialises the token after a fault.
 * The PKCS#11 fault shim (tests/shim) provides the fault. Needs root (tests/run is). */
#include <check.h>
#include <ftw.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct keyd_client *cli;
static char fault_file[600], fault_env[700], shim_env[64];
static const char *envv[3];
static uid_t user_uid;
static gid_t user_gid;

static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return lchown(path, user_uid, user_gid);
}

/* A keyd whose configuration ends with extra (e.g. "user: nobody\n"), its token folder
 * handed to that user as an operator would. */
static void start_with(const char *extra, const char *wait_for)
{
	static char module[600];
	struct harness_opts o = {0};
	const char *build = getenv("HSMCA_BUILD");
	struct passwd *pw = getpwnam("nobody");
	FILE *f;

	ck_assert_ptr_nonnull(build);
	ck_assert_ptr_nonnull(pw);
	ck_assert_msg(geteuid() == 0, "this test drops privileges and needs root");
	user_uid = pw->pw_uid;
	user_gid = pw->pw_gid;
	snprintf(module, sizeof(module), "%s/tests/shim/libp11shim.so", build);
	snprintf(fault_file, sizeof(fault_file), "/tmp/hsmca-sbx-fault-%d", (int)getpid());
	unlink(fault_file);
	snprintf(fault_env, sizeof(fault_env), "HSMCA_SHIM_FAULT_FILE=%s", fault_file);
	snprintf(shim_env, sizeof(shim_env), "HSMCA_SHIM_MODULE=/usr/lib/softhsm/libsofthsm2.so");
	envv[0] = fault_env;
	envv[1] = shim_env;
	envv[2] = NULL;
	o.module = module;
	o.keyd_env = envv;
	ck_assert_int_eq(harness_start(&h, &o), 0);
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	f = fopen(h.conf, "a");
	ck_assert_ptr_nonnull(f);
	fputs(extra, f);
	fclose(f);
	ck_assert_int_eq(nftw(h.tokendir, chown_entry, 16, FTW_PHYS), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	/* The socket exists before keyd confines itself (it binds first): wait for the log line
	 * of this keyd (the first one, as root, wrote "sandbox: uid 0 ..." to the same log). */
	for (int i = 0; i < 200 && !harness_log_contains(&h, wait_for); i++)
		usleep(50000);
	ck_assert_msg(harness_log_contains(&h, wait_for), "no \"%s\" in keyd's log", wait_for);
	cli = keyd_client_new(h.socket, 5000);
	ck_assert_ptr_nonnull(cli);
}

static void setup(void)
{
	char line[64];

	snprintf(line, sizeof(line), "sandbox: uid %u ", (unsigned)getpwnam("nobody")->pw_uid);
	start_with("user: nobody\n", line);
}

static void teardown(void)
{
	keyd_client_free(cli);
	cli = NULL;
	unlink(fault_file);
	ck_assert_msg(harness_stop(&h) == 0, "hsmca-keyd did not exit cleanly: see above");
}

/* The value of a "Name:" line of /proc/PID/status, or "" */
static void proc_status(pid_t pid, const char *name, char *out, size_t outsz)
{
	char path[64], line[256];
	size_t n = strlen(name);
	FILE *f;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			char *v = line + n + 1;
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = 0;
			snprintf(out, outsz, "%s", v);
		}
	fclose(f);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sign_once(const char *label, struct keyd_err *err)
{
	uint8_t dgst[32] = {7}, sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);

	return keyd_client_sign(cli, label, KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dgst, 32, sig,
	                        &siglen, err);
}

START_TEST(keyd_runs_as_the_configured_user_under_its_filter)
{
	char v[256], want[128];

	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", (unsigned)user_uid, (unsigned)user_uid,
	         (unsigned)user_uid, (unsigned)user_uid);
	proc_status(h.keyd_pid, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, want);
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", (unsigned)user_gid, (unsigned)user_gid,
	         (unsigned)user_gid, (unsigned)user_gid);
	proc_status(h.keyd_pid, "Gid", v, sizeof(v));
	ck_assert_str_eq(v, want);
	proc_status(h.keyd_pid, "CapEff", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	proc_status(h.keyd_pid, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	proc_status(h.keyd_pid, "Seccomp", v, sizeof(v));
	ck_assert_str_eq(v, "2"); /* filter mode */
	ck_assert(harness_log_contains(&h, "sandbox: uid"));
	/* Still not dumpable after the switch (the kernel would reset the flag to
	 * fs.suid_dumpable): its /proc files stay root's, closed to its own user. */
	{
		struct stat st;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/status", (int)h.keyd_pid);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_msg(st.st_uid == 0, "keyd's /proc files belong to uid %u: dumpable",
		              (unsigned)st.st_uid);
	}
}
END_TEST

START_TEST(confined_keyd_generates_and_signs)
{
	struct keyd_key k;
	struct keyd_err err;

	ck_assert_int_eq(keyd_client_generate(cli, "sbx", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	ck_assert_int_eq(sign_once("sbx", &err), KEYD_OK);
}
END_TEST

START_TEST(confined_keyd_reinitialises_the_module_after_a_fault)
{
	struct keyd_key k;
	struct keyd_err err;
	struct keyd_token_status st;
	FILE *f;
	int64_t t0;

	ck_assert_int_eq(keyd_client_generate(cli, "sbx", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	f = fopen(fault_file, "w");
	ck_assert_ptr_nonnull(f);
	fputs("device-error", f);
	fclose(f);
	ck_assert_int_eq(sign_once("sbx", &err), KEYD_E_OFFLINE);
	unlink(fault_file);
	/* Recovery unloads and reloads the module and reads the token folder: as the
	 * unprivileged user, under the filter. */
	t0 = now_ms();
	do {
		usleep(100000);
		ck_assert_int_eq(keyd_client_status(cli, &st, &err), KEYD_OK);
	} while (!st.online && now_ms() - t0 < 15000);
	ck_assert_msg(st.online, "token did not come back online");
	ck_assert_uint_ge(st.reinits, 1);
	ck_assert_int_eq(sign_once("sbx", &err), KEYD_OK);
	ck_assert(harness_log_contains(&h, "online again"));
}
END_TEST

START_TEST(confined_keyd_stops_cleanly)
{
	/* Exit paths (worker joins, module teardown, the sanitizer's leak check in test
	 * builds) run under the filter too. */
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
}
END_TEST

static void setup_unfiltered(void)
{
	start_with("seccomp: false\n", "seccomp off");
}

START_TEST(seccomp_false_leaves_only_no_new_privs)
{
	char v[64];
	struct keyd_err err;

	proc_status(h.keyd_pid, "Seccomp", v, sizeof(v));
	ck_assert_str_eq(v, "0");
	proc_status(h.keyd_pid, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	ck_assert_int_eq(keyd_client_status(cli, &(struct keyd_token_status){0}, &err), KEYD_OK);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox-keyd");
	TCase *tc = tcase_create("dropped");
	TCase *off = tcase_create("seccomp-off");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, keyd_runs_as_the_configured_user_under_its_filter);
	tcase_add_test(tc, confined_keyd_generates_and_signs);
	tcase_add_test(tc, confined_keyd_reinitialises_the_module_after_a_fault);
	tcase_add_test(tc, confined_keyd_stops_cleanly);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(off, setup_unfiltered, teardown);
	tcase_add_test(off, seccomp_false_leaves_only_no_new_privs);
	suite_add_tcase(s, off);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
