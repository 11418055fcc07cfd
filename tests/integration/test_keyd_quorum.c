/*
 * keyd sealed until its quorum unseals it (activation: quorum, docs/quorum.md), against a real
 * hsmca-keyd and SoftHSM: keyd starts sealed and answers a signing client `sealed`
 * (retryable; `offline` to a protocol-1 client); every 2-of-3 subset of the shares unseals
 * it and the same client object then signs, without being made again; a restart and a seal
 * leave it sealed; a corrupted share, another quorum's share and a repeated share are named
 * and change nothing; a user who is not the share's custodian, and one who is no custodian
 * at all (the unprivileged "nobody", identified by SO_PEERCRED), are refused, as is a seal by
 * a user who is not a sealer; the PIN is in no file and no log.
 */
#include <check.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "harness.h"
#include "keyd_client.h"
#include "quorum.h"

static struct harness h;
static struct keyd_client *cli;
static struct qshare shares[3];
static struct quorum_ref ref;
static char share_text[3][QUORUM_FILE_MAX];
static size_t share_len[3];
static uid_t nobody_uid = 65534;
static gid_t nobody_gid = 65534;

/* The quorum: section: custodian-1 and -2 are this test's uid, custodian-3 another uid; the
 * test's uid may seal. */
static const char *quorum_yaml(int any_custodian)
{
	static char y[2048];
	char id[2 * QUORUM_ID_LEN + 1], vk[2 * QUORUM_VK_LEN + 1];

	quorum_hex(ref.id, QUORUM_ID_LEN, id);
	quorum_hex(ref.vk, QUORUM_VK_LEN, vk);
	snprintf(y, sizeof(y),
	         "activation: quorum\n"
	         "quorum:\n"
	         "  id: \"%s\"\n"
	         "  verify_key: \"%s\"\n"
	         "  threshold: 2\n"
	         "  any_custodian: %s\n"
	         "  custodians:\n"
	         "    - {name: custodian-1, uid: %u}\n"
	         "    - {name: custodian-2, uid: %u}\n"
	         "    - {name: custodian-3, uid: 65533}\n"
	         "  sealers:\n"
	         "    - {name: operator, uid: %u}\n",
	         id, vk, any_custodian ? "true" : "false", (unsigned)getuid(), (unsigned)getuid(),
	         (unsigned)getuid());
	return y;
}

/* Make the token and a key with the PIN file, then split that PIN and restart keyd sealed:
 * the PIN file is removed, so nothing but the quorum can log in. */
static char fault_file[600], fault_env[700], shim_module[600];
static const char *shim_envv[2];

/* shim: through the fault shim (tests/shim), which fails calls while fault_file exists. */
static void start_quorum_on(int any_custodian, int shim)
{
	const char *names[] = {"custodian-1", "custodian-2", "custodian-3"};
	struct harness_opts o = {0};
	struct keyd_key k;
	struct keyd_err err;
	char e[256];
	static char clients[1024];
	struct passwd *pw = getpwnam("nobody");

	if (pw) {
		nobody_uid = pw->pw_uid;
		nobody_gid = pw->pw_gid;
	}
	if (shim) {
		snprintf(shim_module, sizeof(shim_module), "%s/tests/shim/libp11shim.so",
		         getenv("HSMCA_BUILD"));
		snprintf(fault_file, sizeof(fault_file), "/tmp/hsmca-qfault-%d", (int)getpid());
		unlink(fault_file);
		snprintf(fault_env, sizeof(fault_env), "HSMCA_SHIM_FAULT_FILE=%s", fault_file);
		shim_envv[0] = fault_env;
		o.module = shim_module;
		o.keyd_env = shim_envv;
	}
	ck_assert_int_eq(harness_start(&h, &o), 0);
	cli = keyd_client_new(h.socket, 3000);
	ck_assert_ptr_nonnull(cli);
	ck_assert_msg(keyd_client_generate(cli, "q-ec", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err) ==
	                  KEYD_OK,
	              "generate: %s", err.msg);
	ck_assert_msg(quorum_make(h.pin, strlen(h.pin), 2, 3, names, shares, &ref, e, sizeof(e)) ==
	                  0,
	              "%s", e);
	for (int i = 0; i < 3; i++) {
		int n = quorum_share_format(&shares[i], 1, share_text[i], sizeof(share_text[i]));
		ck_assert_int_gt(n, 0);
		share_len[i] = (size_t)n;
	}
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	unlink(harness_pathf(h.dir, "pin"));
	/* The test may do anything; the unprivileged user is a client (status only), so that
	 * its unseal reaches the custodian check rather than stopping at hello. */
	snprintf(clients, sizeof(clients),
	         "  - name: test\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [\"*\"]\n"
	         "        operations: [\"*\", generate]\n"
	         "        kinds: [\"*\", digest]\n"
	         "  - name: stranger\n"
	         "    uid: %u\n"
	         "    operations: [status]\n"
	         "    keys: [\"*\"]\n",
	         (unsigned)getuid(), (unsigned)nobody_uid);
	o.clients_yaml = clients;
	o.activation_yaml = quorum_yaml(any_custodian);
	ck_assert_int_eq(harness_write_config(&h, &o), 0);
	ck_assert_msg(harness_keyd_start(&h) == 0, "keyd did not start sealed: %s",
	              harness_slurp(h.log));
}

static void start_quorum(int any_custodian)
{
	start_quorum_on(any_custodian, 0);
}

static void teardown(void)
{
	if (fault_file[0])
		unlink(fault_file);
	keyd_client_free(cli);
	cli = NULL;
	ck_assert_msg(harness_stop(&h) == 0, "hsmca-keyd did not exit cleanly: see above");
}

static int sign_once(struct keyd_err *err)
{
	uint8_t d[32], sig[KEYD_SIG_MAX];
	size_t sl = sizeof(sig);

	memset(d, 0x5a, sizeof(d));
	return keyd_client_sign(cli, "q-ec", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, d, sizeof(d), sig,
	                        &sl, err);
}

static int unseal(int i, struct keyd_quorum_status *q, struct keyd_err *err)
{
	return keyd_client_unseal(cli, (const uint8_t *)share_text[i], share_len[i], q, err);
}

static void assert_sealed(unsigned presented)
{
	struct keyd_quorum_status q;
	struct keyd_err err;
	int r = sign_once(&err);

	ck_assert_msg(r == KEYD_E_SEALED, "sign while sealed: %d %s", r, err.msg);
	ck_assert(keyd_status_retryable(r));
	ck_assert_ptr_nonnull(strstr(err.msg, "keyd is sealed"));
	ck_assert_int_eq(keyd_client_quorum(cli, &q, &err), KEYD_OK);
	ck_assert_uint_eq(q.activation, 2);
	ck_assert_uint_eq(q.sealed, 1);
	ck_assert_uint_eq(q.presented, presented);
	ck_assert_uint_eq(q.threshold, 2);
	ck_assert_uint_eq(q.total, 3);
}

static void restart(void)
{
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
}

/* Every pair of the three shares unseals keyd, in either order; before the second, keyd is
 * sealed and says which custodians it still expects. The client is made once: it waits out
 * `sealed` as it waits out `offline`, and signs once keyd is unsealed. */
START_TEST(every_two_of_three_unseals_and_the_same_client_then_signs)
{
	static const int pairs[6][2] = {{0, 1}, {1, 0}, {0, 2}, {2, 0}, {1, 2}, {2, 1}};
	struct keyd_quorum_status q;
	struct keyd_err err;

	start_quorum(1);
	for (int p = 0; p < 6; p++) {
		int a = pairs[p][0], b = pairs[p][1];
		char want[64];
		if (p)
			restart(); /* a restart leaves keyd sealed: the PIN was never on disk */
		assert_sealed(0);
		ck_assert_msg(unseal(a, &q, &err) == KEYD_OK, "share %d: %s", a + 1, err.msg);
		ck_assert_uint_eq(q.sealed, 1);
		ck_assert_uint_eq(q.presented, 1);
		ck_assert_ptr_null(strstr(q.expected, shares[a].custodian));
		ck_assert_ptr_nonnull(strstr(q.expected, shares[b].custodian));
		assert_sealed(1);
		ck_assert_msg(unseal(b, &q, &err) == KEYD_OK, "share %d: %s", b + 1, err.msg);
		ck_assert_uint_eq(q.sealed, 0);
		ck_assert_msg(sign_once(&err) == KEYD_OK, "sign after unseal: %s", err.msg);
		snprintf(want, sizeof(want), "unsealed: token \"%s\" logged in", h.token_label);
		ck_assert(harness_log_contains(&h, want));
	}
	/* One share alone after a restart: still sealed. */
	restart();
	ck_assert_int_eq(unseal(2, &q, &err), KEYD_OK);
	assert_sealed(1);
	ck_assert(!harness_log_contains(&h, h.pin));
}
END_TEST

/* A corrupted share, another quorum's, a repeat: each named, none counted. */
START_TEST(bad_shares_are_named_and_change_nothing)
{
	const char *names[] = {"custodian-1", "custodian-2", "custodian-3"};
	struct qshare other[3];
	struct quorum_ref oref;
	struct keyd_quorum_status q;
	struct keyd_err err;
	char text[QUORUM_FILE_MAX], e[256];
	int n;

	start_quorum(1);
	/* One hex digit of custodian-2's share changed. */
	memcpy(text, share_text[1], share_len[1]);
	{
		char *d = strstr(text, "share: ") + 20;
		*d = *d == '0' ? '1' : '0';
	}
	ck_assert_int_eq(keyd_client_unseal(cli, (uint8_t *)text, share_len[1], &q, &err),
	                 KEYD_E_SHARE);
	ck_assert_msg(strstr(err.msg, "share of custodian-2 is corrupted") != NULL, "%s", err.msg);
	assert_sealed(0);
	/* A share of another quorum (same PIN, same custodians). */
	ck_assert_int_eq(quorum_make(h.pin, strlen(h.pin), 2, 3, names, other, &oref, e, sizeof(e)),
	                 0);
	n = quorum_share_format(&other[0], 1, text, sizeof(text));
	ck_assert_int_eq(keyd_client_unseal(cli, (uint8_t *)text, (size_t)n, &q, &err),
	                 KEYD_E_SHARE);
	ck_assert_msg(strstr(err.msg, "share of custodian-1 belongs to another quorum") != NULL,
	              "%s", err.msg);
	assert_sealed(0);
	/* Not a share at all. */
	ck_assert_int_eq(keyd_client_unseal(cli, (const uint8_t *)"hello\n", 6, &q, &err),
	                 KEYD_E_SHARE);
	ck_assert_ptr_nonnull(strstr(err.msg, "not an hsmca quorum share"));
	/* The same share twice. */
	ck_assert_int_eq(unseal(0, &q, &err), KEYD_OK);
	ck_assert_int_eq(unseal(0, &q, &err), KEYD_E_SHARE);
	ck_assert_str_eq(err.msg,
	                 "keyd: share: share 1 (of custodian-1) has been presented already");
	assert_sealed(1);
	ck_assert(harness_log_contains(&h, "share of custodian-2 is corrupted"));
	/* And the right second share still unseals. */
	ck_assert_int_eq(unseal(2, &q, &err), KEYD_OK);
	ck_assert_uint_eq(q.sealed, 0);
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
}
END_TEST

/* In a child as the unprivileged user: present share i (or seal, i < 0). Exit status: the
 * keyd status. */
static int as_nobody(int i)
{
	pid_t pid;
	int st;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct keyd_client *c;
		struct keyd_quorum_status q;
		struct keyd_err err;
		int r;
		if (setgroups(0, NULL) != 0 || setgid(nobody_gid) != 0 || setuid(nobody_uid) != 0)
			_exit(120);
		c = keyd_client_new(h.socket, 3000);
		r = i >= 0 ? keyd_client_unseal(c, (const uint8_t *)share_text[i], share_len[i], &q,
		                                &err)
		           : keyd_client_seal(c, &q, &err);
		fprintf(stderr, "as nobody: %s\n", err.msg);
		keyd_client_free(c);
		_exit(r > 119 ? 119 : r);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Who may present and seal: each share only by its custodian's user; nobody at all by a user
 * who is no custodian (SO_PEERCRED); seal only by a sealer. */
START_TEST(only_custodians_unseal_and_only_sealers_seal)
{
	struct keyd_quorum_status q;
	struct keyd_err err;

	start_quorum(0);
	/* custodian-3's share is uid 65533's to present, not ours. */
	ck_assert_int_eq(unseal(2, &q, &err), KEYD_E_DENIED);
	ck_assert_msg(strstr(err.msg, "share of custodian-3 may be presented by custodian-3's "
	                              "user (uid 65533) only") != NULL,
	              "%s", err.msg);
	assert_sealed(0);
	if (geteuid() == 0) {
		/* The unprivileged user is no custodian: refused whatever it presents. */
		ck_assert_int_eq(as_nobody(0), KEYD_E_DENIED);
		ck_assert(harness_log_contains(&h, "is not a custodian of this keyd"));
		assert_sealed(0);
	}
	ck_assert_int_eq(unseal(0, &q, &err), KEYD_OK);
	ck_assert_int_eq(unseal(1, &q, &err), KEYD_OK);
	ck_assert_uint_eq(q.sealed, 0);
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
	if (geteuid() == 0) {
		ck_assert_int_eq(as_nobody(-1), KEYD_E_DENIED); /* not a sealer */
		ck_assert_int_eq(sign_once(&err), KEYD_OK);
	}
	/* The sealer seals: login dropped, keyd sealed, and the quorum unseals it again. */
	ck_assert_int_eq(keyd_client_seal(cli, &q, &err), KEYD_OK);
	ck_assert_uint_eq(q.sealed, 1);
	assert_sealed(0);
	ck_assert(harness_log_contains(&h, "sealed by operator"));
	ck_assert_int_eq(unseal(1, &q, &err), KEYD_OK);
	ck_assert_int_eq(unseal(0, &q, &err), KEYD_OK);
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
}
END_TEST

/* A token loss drops the login, and the PIN is gone: keyd does not log in again by itself
 * (as it does with a PIN file) but is sealed until the quorum returns. */
START_TEST(token_loss_seals_keyd_again)
{
	struct keyd_quorum_status q;
	struct keyd_err err;
	FILE *f;
	int r, waited = 0;

	start_quorum_on(1, 1);
	ck_assert_int_eq(unseal(0, &q, &err), KEYD_OK);
	ck_assert_int_eq(unseal(1, &q, &err), KEYD_OK);
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
	f = fopen(fault_file, "w");
	ck_assert_ptr_nonnull(f);
	fputs("device-error", f);
	fclose(f);
	r = sign_once(&err);
	ck_assert_msg(keyd_status_retryable(r), "sign during the loss: %d %s", r, err.msg);
	do {
		usleep(100000);
		ck_assert_int_eq(keyd_client_quorum(cli, &q, &err), KEYD_OK);
	} while (!q.sealed && ++waited < 100);
	ck_assert_msg(q.sealed, "keyd did not seal itself after the token loss");
	unlink(fault_file); /* the device is back, but nothing can log in */
	sleep(1);
	assert_sealed(0);
	ck_assert(harness_log_contains(&h, "keyd is sealed again until its quorum"));
	ck_assert_int_eq(unseal(2, &q, &err), KEYD_OK);
	ck_assert_int_eq(unseal(1, &q, &err), KEYD_OK);
	ck_assert_msg(sign_once(&err) == KEYD_OK, "sign after the quorum returned: %s", err.msg);
}
END_TEST

/* How often keyd's writable memory holds the bytes of s (read through /proc/PID/mem, which
 * root may read although keyd is not dumpable). Mappings over 256 MiB (the sanitizers'
 * shadow) are skipped. */
static int memory_holds(pid_t pid, const char *s)
{
	char path[64], line[512];
	FILE *maps;
	int fd, hits = 0;
	size_t n = strlen(s);
	static char buf[1 << 20];

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "r");
	ck_assert_ptr_nonnull(maps);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    perms[1] != 'w' || hi - lo > (256ul << 20))
			continue;
		for (unsigned long at = lo; at < hi;) {
			size_t want = hi - at > sizeof(buf) ? sizeof(buf) : hi - at;
			ssize_t got = pread(fd, buf, want, (off_t)at);
			if (got <= 0)
				break;
			for (ssize_t i = 0; i + (ssize_t)n <= got; i++)
				hits += memcmp(buf + i, s, n) == 0;
			/* overlap so a match across chunks is found */
			at += (size_t)got > n ? (size_t)got - n : (size_t)got;
		}
	}
	close(fd);
	fclose(maps);
	return hits;
}

/* Once unsealed, the PIN is nowhere in keyd's memory: shares, the combined block and every
 * copy were wiped, and libp11 was never given it. */
START_TEST(pin_is_wiped_from_keyd_memory_after_unseal)
{
	struct keyd_quorum_status q;
	struct keyd_err err;

	if (geteuid() != 0)
		return; /* reading a non-dumpable process's memory needs root */
	start_quorum(1);
	ck_assert_int_eq(unseal(0, &q, &err), KEYD_OK);
	ck_assert_int_eq(unseal(2, &q, &err), KEYD_OK);
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
	ck_assert_int_eq(memory_holds(h.keyd_pid, h.pin), 0);
	/* The scan does find what is there: the token label, for one. */
	ck_assert_int_gt(memory_holds(h.keyd_pid, h.token_label), 0);
}
END_TEST

/* hsmca keyd CMD ARGS..., its output (stdout and stderr) in out; the exit status. */
static int run_cli(const char *out, const char *const *args)
{
	char *argv[32];
	int n = 0;

	argv[n++] = getenv("HSMCA_CLI_BIN");
	argv[n++] = "keyd";
	while (*args && n < 31)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	return harness_run(argv, out);
}

/* `hsmca keyd quorum init` for the three custodians, threshold 2, the token's PIN and the
 * shares folder, then extra (NULL-terminated): its exit status, its output in out. */
static int quorum_init(const char *out, const char *shares, const char *const *extra)
{
	const char *a[32] = {
	    "quorum",      "init", "--custodians", "custodian-1,custodian-2,custodian-3",
	    "--threshold", "2",    "--pin-file",   harness_pathf(h.dir, "pin"),
	    "--out",       shares};
	int n = 10;

	while (*extra && n < 31)
		a[n++] = *extra++;
	a[n] = NULL;
	return run_cli(out, a);
}

/* The operator's way, with shares under the custodians' passphrases: quorum init writes them
 * and quorum.yaml; status shows the quorum; unseal asks for the passphrase (here from a file),
 * names a wrong one, and sends keyd the opened share; seal seals. */
START_TEST(cli_init_unseal_seal_and_status_with_passphrases)
{
	struct harness_opts o = {0};
	struct keyd_key k;
	struct keyd_err err;
	struct passwd *me = getpwuid(getuid());
	char users[256], pf[3][600], files[2048], out[600];
	const char *shares;

	ck_assert_ptr_nonnull(me);
	ck_assert_int_eq(harness_start(&h, &o), 0);
	cli = keyd_client_new(h.socket, 3000);
	ck_assert_int_eq(keyd_client_generate(cli, "q-ec", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	for (int i = 0; i < 3; i++) {
		char pass[64];
		snprintf(pf[i], sizeof(pf[i]), "%s/pass-%d", h.dir, i + 1);
		snprintf(pass, sizeof(pass), "passphrase of custodian %d\n", i + 1);
		harness_write_text(pf[i], pass);
	}
	snprintf(files, sizeof(files), "%s,%s,%s", pf[0], pf[1], pf[2]);
	snprintf(users, sizeof(users), "%s,%s,%s", me->pw_name, me->pw_name, me->pw_name);
	snprintf(out, sizeof(out), "%s/cli.out", h.dir);
	shares = harness_pathf(h.dir, "shares");
	{
		const char *a[] = {"--users", users, "--sealers", me->pw_name, "--passphrase-files",
		                   files,     NULL};
		ck_assert_msg(quorum_init(out, shares, a) == 0, "quorum init: %s",
		              harness_slurp(out));
	}
	{
		const char *text = harness_slurp(harness_pathf(shares, "custodian-2.share"));
		ck_assert_msg(strncmp(text, "hsmca-quorum-share-encrypted v2\n", 32) == 0, "%s",
		              text);
		ck_assert_ptr_null(strstr(text, "share: "));
	}
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	unlink(harness_pathf(h.dir, "pin"));
	o.activation_yaml = strdup(harness_slurp(harness_pathf(shares, "quorum.yaml")));
	ck_assert_int_eq(harness_write_config(&h, &o), 0);
	free((char *)o.activation_yaml);
	ck_assert_msg(harness_keyd_start(&h) == 0, "%s", harness_slurp(h.log));
	{
		const char *a[] = {"status", NULL};
		ck_assert_int_eq(run_cli(out, a), 1); /* the token is not logged in */
		ck_assert_msg(strstr(harness_slurp(out), "sealed: yes\nshares: 0 of 2 presented\n"
		                                         "expected: custodian-1, custodian-2, "
		                                         "custodian-3\n") != NULL,
		              "%s", harness_slurp(out));
	}
	{
		const char *a[] = {"unseal", "--passphrase-file", pf[1],
		                   harness_pathf(shares, "custodian-1.share"), NULL};
		ck_assert_int_eq(run_cli(out, a), 1);
		ck_assert_msg(
		    strstr(harness_slurp(out), "share of custodian-1: wrong passphrase\n") != NULL,
		    "%s", harness_slurp(out));
	}
	{
		const char *a[] = {"unseal", "--passphrase-file", pf[0],
		                   harness_pathf(shares, "custodian-1.share"), NULL};
		ck_assert_int_eq(run_cli(out, a), 0);
		ck_assert_str_eq(
		    harness_slurp(out),
		    "1 of 2 shares presented; still expected: custodian-2, custodian-3\n");
	}
	{
		const char *a[] = {"unseal", "--passphrase-file", pf[2],
		                   harness_pathf(shares, "custodian-3.share"), NULL};
		ck_assert_int_eq(run_cli(out, a), 0);
		ck_assert_str_eq(harness_slurp(out), "unsealed\n");
	}
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
	{
		const char *a[] = {"seal", NULL};
		ck_assert_int_eq(run_cli(out, a), 0);
		ck_assert_str_eq(harness_slurp(out), "sealed\n");
	}
	ck_assert_int_eq(sign_once(&err), KEYD_E_SEALED);
}
END_TEST

/* A client of protocol 1 does not know `sealed`: it is told `offline`, which it retries. */
START_TEST(protocol_1_client_is_told_offline)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct keyd_req hello = {.op = KEYD_OP_HELLO, .id = 1, .vmin = 1, .vmax = 1};
	struct keyd_req sign = {.op = KEYD_OP_SIGN,
	                        .id = 2,
	                        .alg = KEYD_ALG_ECDSA,
	                        .hash = KEYD_HASH_SHA256,
	                        .digest_len = 32};
	uint8_t buf[4096];
	struct keyd_resp resp;
	const char *why;
	int fd;

	start_quorum(1);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h.socket);
	snprintf(sign.label, sizeof(sign.label), "q-ec");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	for (int i = 0; i < 2; i++) {
		struct keyd_wbuf w = {buf, 0, sizeof(buf), 0};
		uint32_t len;
		ck_assert_int_eq(keyd_req_encode(i ? &sign : &hello, &w), 0);
		ck_assert_int_eq(send(fd, buf, w.len, 0), (ssize_t)w.len);
		ck_assert_int_eq(recv(fd, buf, 4, MSG_WAITALL), 4);
		ck_assert_int_eq(keyd_frame_len(buf, &len), 0);
		ck_assert_int_eq(recv(fd, buf, len, MSG_WAITALL), (ssize_t)len);
		ck_assert_int_eq(keyd_resp_decode(buf, len, &resp, &why), 0);
		if (i == 0) {
			ck_assert_int_eq(resp.status, KEYD_OK);
			ck_assert_uint_eq(resp.version, 1);
		} else {
			ck_assert_int_eq(resp.status, KEYD_E_OFFLINE);
			ck_assert_ptr_nonnull(strstr(resp.msg, "keyd is sealed"));
		}
	}
	close(fd);
}
END_TEST

/* --passphrase-file NAME=FILE puts only that custodian's share under a passphrase; unseal reads
 * it from $HSMCA_SHARE_PASSPHRASE_FILE; a wrong passphrase and a changed ciphertext are named
 * apart and send keyd nothing; the clear share and the encrypted one unseal together. */
START_TEST(per_custodian_passphrase_file_and_environment)
{
	struct harness_opts o = {0};
	struct keyd_key k;
	struct keyd_err err;
	struct passwd *me = getpwuid(getuid());
	char users[256], pf[600], bad[600], arg[700], out[600], *text;
	const char *shares, *c1, *changed;
	FILE *f;

	ck_assert_ptr_nonnull(me);
	ck_assert_int_eq(harness_start(&h, &o), 0);
	cli = keyd_client_new(h.socket, 3000);
	ck_assert_int_eq(keyd_client_generate(cli, "q-ec", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	snprintf(pf, sizeof(pf), "%s/pass-1", h.dir);
	harness_write_text(pf, "custodian one's long passphrase\n");
	snprintf(bad, sizeof(bad), "%s/pass-bad", h.dir);
	harness_write_text(bad, "not custodian one's passphrase\n");
	snprintf(arg, sizeof(arg), "custodian-1=%s", pf);
	snprintf(users, sizeof(users), "%s,%s,%s", me->pw_name, me->pw_name, me->pw_name);
	snprintf(out, sizeof(out), "%s/cli.out", h.dir);
	shares = harness_pathf(h.dir, "shares");
	{
		/* A name that is no custodian is refused before anything is written. */
		char wrong[700];
		const char *a[] = {"--passphrase-file", wrong, NULL};
		snprintf(wrong, sizeof(wrong), "custodian-9=%s", pf);
		ck_assert_int_eq(quorum_init(out, shares, a), 2);
		ck_assert_msg(strstr(harness_slurp(out), "\"custodian-9\" is not one of the "
		                                         "--custodians"),
		              "%s", harness_slurp(out));
		ck_assert_int_eq(access(harness_pathf(shares, "quorum.yaml"), F_OK), -1);
	}
	{
		const char *a[] = {"--users", users, "--passphrase-file", arg, NULL};
		ck_assert_msg(quorum_init(out, shares, a) == 0, "quorum init: %s",
		              harness_slurp(out));
	}
	c1 = harness_pathf(shares, "custodian-1.share");
	text = strdup(harness_slurp(c1));
	ck_assert_msg(strstr(text, "hsmca-quorum-share-encrypted v2\ncustodian: custodian-1\n") ==
	                  text,
	              "%s", text);
	ck_assert_ptr_nonnull(strstr(text, "\ncheck: "));
	ck_assert_ptr_null(strstr(text, "share: "));
	/* The others are in the clear. */
	ck_assert_ptr_null(
	    strstr(harness_slurp(harness_pathf(shares, "custodian-2.share")), "encrypted"));
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	unlink(harness_pathf(h.dir, "pin"));
	o.activation_yaml = strdup(harness_slurp(harness_pathf(shares, "quorum.yaml")));
	ck_assert_int_eq(harness_write_config(&h, &o), 0);
	free((char *)o.activation_yaml);
	ck_assert_msg(harness_keyd_start(&h) == 0, "%s", harness_slurp(h.log));

	/* A wrong passphrase from the environment: named, nothing presented. */
	setenv("HSMCA_SHARE_PASSPHRASE_FILE", bad, 1);
	{
		const char *a[] = {"unseal", c1, NULL};
		ck_assert_int_eq(run_cli(out, a), 1);
		ck_assert_msg(
		    strstr(harness_slurp(out), "share of custodian-1: wrong passphrase\n"), "%s",
		    harness_slurp(out));
	}
	/* One hex digit of the ciphertext changed: the right passphrase, the change named. */
	setenv("HSMCA_SHARE_PASSPHRASE_FILE", pf, 1);
	changed = harness_pathf(h.dir, "changed.share");
	{
		char *d = strstr(text, "data: ") + 20;
		*d = *d == '0' ? '1' : '0';
		ck_assert_ptr_nonnull(f = fopen(changed, "w"));
		fputs(text, f);
		fclose(f);
		*d = *d == '0' ? '1' : '0';
	}
	{
		const char *a[] = {"unseal", changed, NULL};
		ck_assert_int_eq(run_cli(out, a), 1);
		ck_assert_msg(
		    strstr(harness_slurp(out), "share of custodian-1: the file was changed"), "%s",
		    harness_slurp(out));
	}
	{
		const char *a[] = {"status", NULL};
		run_cli(out, a);
		ck_assert_msg(strstr(harness_slurp(out), "shares: 0 of 2 presented"), "%s",
		              harness_slurp(out));
	}
	/* The right passphrase from the environment, then a clear share: unsealed. */
	{
		const char *a[] = {"unseal", c1, NULL};
		ck_assert_int_eq(run_cli(out, a), 0);
		ck_assert_str_eq(
		    harness_slurp(out),
		    "1 of 2 shares presented; still expected: custodian-2, custodian-3\n");
	}
	unsetenv("HSMCA_SHARE_PASSPHRASE_FILE");
	{
		const char *a[] = {"unseal", harness_pathf(shares, "custodian-2.share"), NULL};
		ck_assert_int_eq(run_cli(out, a), 0);
		ck_assert_str_eq(harness_slurp(out), "unsealed\n");
	}
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
	free(text);
}
END_TEST

/* --recipient-cert NAME=CERT puts that custodian's share under the certificate's public key
 * (CMS): `openssl cms -decrypt` opens it as well as unseal; unseal without a key, or with
 * another key, is refused by name and presents nothing; with the custodian's key (from
 * $HSMCA_SHARE_KEY_FILE) it counts, and a clear share completes the quorum. */
START_TEST(custodian_share_under_a_certificate_key)
{
	struct harness_opts o = {0};
	struct keyd_key k;
	struct keyd_err err;
	struct passwd *me = getpwuid(getuid());
	EVP_PKEY *ck = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	time_t now = time(NULL);
	struct harness_cert hc = {.cn = "custodian-2",
	                          .pub = ck,
	                          .signer = ck,
	                          .serial = 7,
	                          .not_before = now - 60,
	                          .not_after = now + 86400,
	                          .md = "SHA256"};
	X509 *x = harness_make_cert(&hc);
	char users[256], arg[700], out[600], cmd[2048];
	const char *shares, *c2, *keyf, *otherf;

	ck_assert_ptr_nonnull(me);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(harness_start(&h, &o), 0);
	cli = keyd_client_new(h.socket, 3000);
	ck_assert_int_eq(keyd_client_generate(cli, "q-ec", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err),
	                 KEYD_OK);
	harness_write_cert(harness_pathf(h.dir, "custodian-2.pem"), x, 0);
	keyf = harness_pathf(h.dir, "custodian-2.key");
	harness_write_key(keyf, ck);
	otherf = harness_pathf(h.dir, "other.key");
	harness_write_key(otherf, other);
	snprintf(arg, sizeof(arg), "custodian-2=%s", harness_pathf(h.dir, "custodian-2.pem"));
	snprintf(users, sizeof(users), "%s,%s,%s", me->pw_name, me->pw_name, me->pw_name);
	snprintf(out, sizeof(out), "%s/cli.out", h.dir);
	shares = harness_pathf(h.dir, "shares");
	{
		/* A share under a passphrase and a certificate at once is refused. */
		const char *a[] = {"--encrypt", "--recipient-cert", arg, NULL};
		ck_assert_int_eq(quorum_init(out, shares, a), 2);
		ck_assert_msg(strstr(harness_slurp(out),
		                     "custodian-2: a share goes under a "
		                     "passphrase or a certificate's key, not both"),
		              "%s", harness_slurp(out));
	}
	{
		const char *a[] = {"--users", users, "--recipient-cert", arg, NULL};
		ck_assert_msg(quorum_init(out, shares, a) == 0, "quorum init: %s",
		              harness_slurp(out));
	}
	c2 = harness_pathf(shares, "custodian-2.share");
	ck_assert_ptr_nonnull(strstr(harness_slurp(c2), "-----BEGIN CMS-----\n"));
	ck_assert_ptr_null(strstr(harness_slurp(c2), "share: "));
	/* Any CMS tool opens it with the custodian's key: a share file comes out. */
	snprintf(cmd, sizeof(cmd), "openssl cms -decrypt -inform PEM -in '%s' -inkey '%s'", c2,
	         keyf);
	{
		char *a[] = {"sh", "-c", cmd, NULL};
		ck_assert_int_eq(harness_run(a, out), 0);
		ck_assert_msg(!strncmp(harness_slurp(out), "hsmca-quorum-share v1\n", 22), "%s",
		              harness_slurp(out));
	}
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	unlink(harness_pathf(h.dir, "pin"));
	o.activation_yaml = strdup(harness_slurp(harness_pathf(shares, "quorum.yaml")));
	ck_assert_int_eq(harness_write_config(&h, &o), 0);
	free((char *)o.activation_yaml);
	ck_assert_msg(harness_keyd_start(&h) == 0, "%s", harness_slurp(h.log));
	{
		const char *a[] = {"unseal", c2, NULL};
		ck_assert_int_eq(run_cli(out, a), 1);
		ck_assert_msg(strstr(harness_slurp(out), "give the custodian's private key"), "%s",
		              harness_slurp(out));
	}
	{
		const char *a[] = {"unseal", "--key", otherf, c2, NULL};
		ck_assert_int_eq(run_cli(out, a), 1);
		ck_assert_msg(strstr(harness_slurp(out), "cannot be opened with this key"), "%s",
		              harness_slurp(out));
	}
	{
		const char *a[] = {"status", NULL};
		run_cli(out, a);
		ck_assert_msg(strstr(harness_slurp(out), "shares: 0 of 2 presented"), "%s",
		              harness_slurp(out));
	}
	setenv("HSMCA_SHARE_KEY_FILE", keyf, 1);
	{
		const char *a[] = {"unseal", c2, NULL};
		ck_assert_int_eq(run_cli(out, a), 0);
		ck_assert_str_eq(
		    harness_slurp(out),
		    "1 of 2 shares presented; still expected: custodian-1, custodian-3\n");
	}
	unsetenv("HSMCA_SHARE_KEY_FILE");
	{
		const char *a[] = {"unseal", harness_pathf(shares, "custodian-1.share"), NULL};
		ck_assert_int_eq(run_cli(out, a), 0);
		ck_assert_str_eq(harness_slurp(out), "unsealed\n");
	}
	ck_assert_int_eq(sign_once(&err), KEYD_OK);
	X509_free(x);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(other);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-quorum");
	TCase *tc = tcase_create("quorum");
	SRunner *sr;
	int failed;

	if (harness_token_skip())
		return 77;
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, every_two_of_three_unseals_and_the_same_client_then_signs);
	tcase_add_test(tc, bad_shares_are_named_and_change_nothing);
	tcase_add_test(tc, only_custodians_unseal_and_only_sealers_seal);
	tcase_add_test(tc, protocol_1_client_is_told_offline);
	tcase_add_test(tc, token_loss_seals_keyd_again);
	tcase_add_test(tc, pin_is_wiped_from_keyd_memory_after_unseal);
	tcase_add_test(tc, cli_init_unseal_seal_and_status_with_passphrases);
	tcase_add_test(tc, per_custodian_passphrase_file_and_environment);
	tcase_add_test(tc, custodian_share_under_a_certificate_key);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
