#include "harness.h"
#include "db.h"

#include <check.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

static int write_file(const char *path, mode_t mode, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	fchmod(fd, mode);
	return close(fd);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int run(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int harness_write_config(struct harness *h, const struct harness_opts *o)
{
	char text[8192], pinfile[4096], clients[4096];
	const char *module = o && o->module ? o->module : h->module;

	if (o && o->clients_yaml)
		snprintf(clients, sizeof(clients), "%s", o->clients_yaml);
	else
		snprintf(clients, sizeof(clients),
		         "  - name: test\n"
		         "    uid: %u\n"
		         "    grants:\n"
		         "      - keys: [\"*\"]\n"
		         "        operations: [\"*\", generate]\n"
		         "        kinds: [\"*\", digest]\n",
		         (unsigned)getuid());
	if (o && o->activation_yaml)
		snprintf(pinfile, sizeof(pinfile), "%s", o->activation_yaml);
	else
		snprintf(pinfile, sizeof(pinfile), "pin_file: %s/pin\n", h->dir);
	snprintf(text, sizeof(text),
	         "module: %s\n"
	         "token: %s\n"
	         "%s"
	         "socket: %s\n"
	         "socket_mode: \"0666\"\n"
	         "workers: %d\n"
	         "queue: %d\n"
	         "health_interval_ms: 200\n"
	         "%s"
	         "clients:\n%s",
	         module, h->token_label, pinfile, h->socket, o && o->workers ? o->workers : 2,
	         o && o->queue ? o->queue : 256, h->token_keyd, clients);
	return write_file(h->conf, 0600, text);
}

static const char *const *saved_env;

int harness_keyd_start(struct harness *h)
{
	const char *bin = getenv("HSMCA_KEYD_BIN");
	int logfd;

	if (!bin) {
		fprintf(stderr, "harness: HSMCA_KEYD_BIN is not set\n");
		return -1;
	}
	unlink(h->socket);
	logfd = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -1;
	h->keyd_pid = fork();
	if (h->keyd_pid < 0) {
		close(logfd);
		return -1;
	}
	if (h->keyd_pid == 0) {
		dup2(logfd, 2);
		dup2(logfd, 1);
		static char shim[600];
		/* The fault shim wraps the token under test. */
		snprintf(shim, sizeof(shim), "HSMCA_SHIM_MODULE=%s", h->module);
		putenv(shim);
		for (const char *const *e = h->token_env; *e; e++)
			putenv((char *)*e);
		for (const char *const *e = saved_env; e && *e; e++)
			putenv((char *)*e);
		execl(bin, bin, "--config", h->conf, (char *)NULL);
		_exit(127);
	}
	close(logfd);
	/* Ready once the socket exists (keyd binds after logging in). */
	for (int i = 0; i < 600; i++) {
		struct stat st;
		int status;
		if (stat(h->socket, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (waitpid(h->keyd_pid, &status, WNOHANG) == h->keyd_pid) {
			fprintf(stderr, "harness: keyd exited during start-up; log %s\n", h->log);
			h->keyd_pid = 0;
			return -1;
		}
		sleep_ms(50);
	}
	fprintf(stderr, "harness: keyd did not come up; log %s\n", h->log);
	return -1;
}

int harness_bad_exits;

int harness_log_has_sanitizer_report(const char *log)
{
	static const char *const marks[] = {"AddressSanitizer", "LeakSanitizer",
	                                    "UndefinedBehaviorSanitizer", "runtime error:"};
	FILE *f = log ? fopen(log, "r") : NULL;
	char line[4096];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]) && !found; i++)
			found = strstr(line, marks[i]) != NULL;
	fclose(f);
	return found;
}

/* The last 40 lines of log to stderr, after "harness: the end of LOG:". */
static void log_tail(const char *log)
{
	char *argv[] = {"tail", "-n", "40", (char *)log, NULL};
	pid_t t;

	fprintf(stderr, "harness: the end of %s:\n", log);
	fflush(NULL); /* else the child writes what is buffered a second time */
	t = fork();
	if (t == 0) {
		dup2(2, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (t > 0)
		waitpid(t, NULL, 0);
}

int harness_daemon_stop(pid_t *pid, const char *name, const char *log, int flags)
{
	int st = 0, status, timed_out = 0, killed_ok;
	pid_t r = 0;

	if (*pid <= 0)
		return -1;
	kill(*pid, SIGTERM);
	/* A sanitizer build's exit (leak check included) takes seconds on a loaded machine. */
	for (int i = 0; i < 6000; i++) {
		r = waitpid(*pid, &st, WNOHANG);
		if (r != 0)
			break;
		sleep_ms(10);
	}
	if (r == 0) {
		timed_out = 1;
		kill(*pid, SIGKILL);
		r = waitpid(*pid, &st, 0);
	}
	*pid = 0;
	if (r < 0) {
		fprintf(stderr, "harness: %s: waitpid: %s\n", name, strerror(errno));
		harness_bad_exits++;
		return 1;
	}
	status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	killed_ok = (flags & HARNESS_STOP_MAY_BE_KILLED) && WIFSIGNALED(st) &&
	            WTERMSIG(st) == SIGKILL && !timed_out;
	if (timed_out)
		fprintf(stderr, "harness: %s did not exit within 60 s of SIGTERM\n", name);
	else if (status != 0 && !killed_ok)
		fprintf(stderr, "harness: %s did not exit 0 on SIGTERM: %s %d\n", name,
		        WIFEXITED(st) ? "status" : "signal",
		        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	else if (harness_log_has_sanitizer_report(log))
		fprintf(stderr, "harness: %s: sanitizer report in its log\n", name);
	else
		return 0;
	if (log)
		log_tail(log);
	harness_bad_exits++;
	return status != 0 && !killed_ok ? status : 1;
}

int harness_keyd_stop(struct harness *h)
{
	return harness_daemon_stop(&h->keyd_pid, "hsmca-keyd", h->log, 0);
}

void harness_keyd_kill(struct harness *h)
{
	if (h->keyd_pid <= 0)
		return;
	kill(h->keyd_pid, SIGKILL);
	waitpid(h->keyd_pid, NULL, 0);
	h->keyd_pid = 0;
}

static const char *token_script(char *buf, size_t len)
{
	const char *kind = getenv("HSMCA_TEST_TOKEN"), *src = getenv("HSMCA_SRC");

	if (!kind || !*kind || !strcmp(kind, "softhsm"))
		return NULL;
	snprintf(buf, len, "%s/tests/tokens/%s.sh", src ? src : ".", kind);
	return buf;
}

/* Stop the processes of a script's token (nothing for SoftHSM); the folder stays. */
static void token_stop(struct harness *h)
{
	char script[512];
	char *stop[] = {script, "stop", h->token_dir, NULL};

	if (h->token_dir[0] && token_script(script, sizeof(script)))
		harness_run(stop, NULL);
	h->token_dir[0] = '\0';
}

int harness_token_is_softhsm(const struct harness *h)
{
	return !strcmp(h->token_kind, "softhsm");
}

void harness_check_start(struct harness *h, const struct harness_opts *o)
{
	ck_assert_msg(harness_start(h, o) == 0, "harness did not start");
}

void harness_check_stop(struct harness *h)
{
	ck_assert_msg(harness_stop(h) == 0, "hsmca-keyd did not exit cleanly: see above");
}

int harness_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

int harness_token_skip(void)
{
	char script[512], dir[256], log[600], *start[4], *stop[4];
	const char *tmp = getenv("TMPDIR");
	int rc;

	if (!token_script(script, sizeof(script)))
		return 0;
	snprintf(dir, sizeof(dir), "%s/hsmca-token-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("harness: mkdtemp");
		return 1;
	}
	snprintf(log, sizeof(log), "%s.log", dir);
	start[0] = stop[0] = script;
	start[1] = "start";
	stop[1] = "stop";
	start[2] = stop[2] = dir;
	start[3] = stop[3] = NULL;
	rc = harness_run(start, log);
	harness_run(stop, NULL);
	if (rc == 77)
		fprintf(stderr, "SKIP token %s: %s", getenv("HSMCA_TEST_TOKEN"),
		        harness_slurp(log));
	else if (rc != 0)
		fprintf(stderr, "harness: %s start failed (%d): %s", script, rc,
		        harness_slurp(log));
	{
		char *rm[] = {"rm", "-rf", "--", dir, log, NULL};
		harness_run(rm, NULL);
	}
	return rc == 0 ? 0 : rc == 77 ? 77 : 1;
}

/* Make the token with the script and read its description. */
static int token_from_script(struct harness *h, const char *script)
{
	char *argv[] = {(char *)script, "start", h->token_dir, NULL};
	char conf[600], line[700], pinfile[600] = "";
	const char *log = harness_pathf(h->dir, "token.log");
	FILE *f;
	int n = 0;

	snprintf(h->token_kind, sizeof(h->token_kind), "%s", getenv("HSMCA_TEST_TOKEN"));
	if (mkdir(h->token_dir, 0700) != 0)
		return -1;
	if (harness_run(argv, log) != 0) {
		fprintf(stderr, "harness: %s start failed: %s", script, harness_slurp(log));
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/token.conf", h->token_dir);
	if (!(f = fopen(conf, "r")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "module=", 7))
			snprintf(h->module, sizeof(h->module), "%s", line + 7);
		else if (!strncmp(line, "label=", 6))
			snprintf(h->token_label, sizeof(h->token_label), "%s", line + 6);
		else if (!strncmp(line, "pin_file=", 9))
			snprintf(pinfile, sizeof(pinfile), "%s", line + 9);
		else if (!strncmp(line, "keyd=", 5)) {
			size_t used = strlen(h->token_keyd);
			snprintf(h->token_keyd + used, sizeof(h->token_keyd) - used, "%s\n",
			         line + 5);
		} else if (!strncmp(line, "env=", 4) && n < HARNESS_TOKEN_ENV_MAX) {
			snprintf(h->token_env_buf[n], sizeof(h->token_env_buf[n]), "%s", line + 4);
			h->token_env[n] = h->token_env_buf[n];
			putenv(h->token_env_buf[n]);
			n++;
		}
	}
	fclose(f);
	h->token_env[n] = NULL;
	if (!h->module[0] || !h->token_label[0] || !pinfile[0]) {
		fprintf(stderr, "harness: %s lacks module, label or pin_file\n", conf);
		return -1;
	}
	snprintf(h->pin, sizeof(h->pin), "%s", harness_slurp(pinfile));
	return h->pin[0] ? 0 : -1;
}

int harness_start(struct harness *h, const struct harness_opts *o)
{
	char script[512];
	char pinfile[600], sopin[32];
	char conf[1024];
	const char *tmp = getenv("TMPDIR");

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "%s/hsmca-test-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(h->dir)) {
		perror("harness: mkdtemp");
		return -1;
	}
	chmod(h->dir, 0755);
	snprintf(h->tokendir, sizeof(h->tokendir), "%s/tokens", h->dir);
	snprintf(h->softhsm_conf, sizeof(h->softhsm_conf), "%s/softhsm2.conf", h->dir);
	snprintf(h->socket, sizeof(h->socket), "%s/keyd.sock", h->dir);
	snprintf(h->conf, sizeof(h->conf), "%s/keyd.yaml", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/keyd.log", h->dir);
	snprintf(h->token_label, sizeof(h->token_label), "hsmca-test");
	snprintf(h->pin, sizeof(h->pin), "%08x%08x", (unsigned)rand(), (unsigned)getpid());
	snprintf(sopin, sizeof(sopin), "so%08x", (unsigned)rand());
	snprintf(h->so_pin, sizeof(h->so_pin), "%s", sopin);
	snprintf(h->module, sizeof(h->module), "/usr/lib/softhsm/libsofthsm2.so");
	snprintf(h->token_kind, sizeof(h->token_kind), "softhsm");
	h->token_env[0] = NULL;
	if (token_script(script, sizeof(script))) {
		snprintf(h->token_dir, sizeof(h->token_dir), "%s/token", h->dir);
		if (token_from_script(h, script) != 0)
			goto fail;
		goto token_made;
	}
	if (mkdir(h->tokendir, 0700) != 0)
		goto fail;
	snprintf(conf, sizeof(conf),
	         "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
	         h->tokendir);
	if (write_file(h->softhsm_conf, 0644, conf) != 0)
		goto fail;
	setenv("SOFTHSM2_CONF", h->softhsm_conf, 1);
	{
		char *argv[] = {
		    "softhsm2-util", "--init-token", "--free", "--label", h->token_label,
		    "--so-pin",      sopin,          "--pin",  h->pin,    NULL};
		if (run(argv) != 0) {
			fprintf(stderr, "harness: softhsm2-util --init-token failed\n");
			goto fail;
		}
	}
token_made:
	snprintf(pinfile, sizeof(pinfile), "%s/pin", h->dir);
	if (write_file(pinfile, 0600, h->pin) != 0)
		goto fail;
	if (harness_write_config(h, o) != 0)
		goto fail;
	saved_env = o ? o->keyd_env : NULL;
	if (harness_keyd_start(h) != 0)
		goto fail;
	setenv("HSMCA_KEYD_SOCKET", h->socket, 1);
	return 0;
fail:
	fprintf(stderr, "harness: set-up failed in %s: %s\n", h->dir, strerror(errno));
	token_stop(h); /* a script's token runs processes: none may outlive a failed start */
	return -1;
}

int harness_stop(struct harness *h)
{
	char *argv[] = {"rm", "-rf", h->dir, NULL};
	int bad = 0;

	if (h->keyd_pid > 0)
		bad = harness_keyd_stop(h) != 0;
	token_stop(h);
	if (h->dir[0] && !getenv("HSMCA_KEEP_TEST_DIRS"))
		run(argv);
	return bad ? -1 : 0;
}

int harness_log_contains(const struct harness *h, const char *s)
{
	FILE *f = fopen(h->log, "r");
	char line[4096];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, s) != NULL;
	fclose(f);
	return found;
}

/* ---- Shared helpers of the integration tests ---- */

int harness_setup_phase;
static const char *die_prog = "test";
static void (*die_cleanup)(void);

void harness_die_init(const char *prog, void (*cleanup)(void))
{
	die_prog = prog;
	die_cleanup = cleanup;
}

void harness_die(const char *where)
{
	fprintf(stderr, "%s: %s failed\n", die_prog, where);
	if (harness_setup_phase) {
		harness_setup_phase = 0;
		if (die_cleanup)
			die_cleanup();
	}
	abort();
}

static char watchdog_msg[200];

static void watchdog_fire(int sig)
{
	(void)sig;
	if (write(2, watchdog_msg, strlen(watchdog_msg)) < 0) {
		/* nothing more to say */
	}
	/* Not async-signal-safe, but the program ends here either way: stopping its servers
	 * (kill, waitpid, pgtest) matters more than a clean heap. */
	if (die_cleanup)
		die_cleanup();
	_exit(124);
}

void harness_watchdog_arm(const char *name, unsigned seconds)
{
	struct sigaction sa = {.sa_handler = watchdog_fire};

	snprintf(watchdog_msg, sizeof(watchdog_msg), "%s: a test ran past its %u s deadline\n",
	         name, seconds);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
}

void harness_watchdog_disarm(void)
{
	alarm(0);
}

int harness_run(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int out =
		    open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(out, 1);
		dup2(out, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *harness_slurp(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

int harness_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(s, (struct sockaddr *)&a, &len))
		harness_die(__func__);
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

pid_t harness_spawn_daemon(const char *rel, const char *conf, const char *extra, const char *log)
{
	char bin[512];
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/%s", getenv("HSMCA_BUILD"), rel);
	pid = fork();
	if (pid < 0)
		harness_die(__func__);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 2);
		/* stdout too: a daemon a failed test leaves behind must not hold the test runner's
		 * output pipe open (meson waits for its end). */
		dup2(fd, 1);
		setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
		execl(bin, bin, "--config", conf, extra, (char *)NULL);
		_exit(127);
	}
	return pid;
}

int harness_pgtest(const struct harness_pg *pg, const char *cmd, const char *opt)
{
	char script[512];
	const char *src = getenv("HSMCA_SRC");
	char *argv[5];
	int n = 0;

	snprintf(script, sizeof(script), "%s/tests/pg/pgtest", src ? src : ".");
	argv[n++] = script;
	argv[n++] = (char *)cmd;
	if (opt)
		argv[n++] = (char *)opt;
	argv[n++] = (char *)pg->dir;
	argv[n] = NULL;
	return harness_run(argv, NULL);
}

int harness_pg_start(struct harness_pg *pg, const char *name)
{
	snprintf(pg->dir, sizeof(pg->dir), "/tmp/hsmca-%s.XXXXXX", name);
	if (!mkdtemp(pg->dir) || harness_pgtest(pg, "start", "--fast") != 0)
		return -1;
	snprintf(pg->owner_ci, sizeof(pg->owner_ci), "host=%s port=5432 dbname=hsmca user=hsmca",
	         pg->dir);
	snprintf(pg->app_ci, sizeof(pg->app_ci), "host=%s port=5432 dbname=hsmca user=hsmca_app",
	         pg->dir);
	return 0;
}

const char *harness_pg_daemon_ci(const struct harness_pg *pg, PGconn *owner, const char *daemon)
{
	static char ci[3][512];
	char sql[512];
	PGresult *r;
	int i = strcmp(daemon, "cad") == 0 ? 0 : strcmp(daemon, "ocspd") == 0 ? 1 : 2;

	snprintf(sql, sizeof(sql),
	         "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hsmca-%s') "
	         "THEN CREATE ROLE \"hsmca-%s\" LOGIN IN ROLE hsmca_%s; END IF; END $$",
	         daemon, daemon, daemon);
	/* No Check assertion: suites call this from their fixture, outside any test. */
	r = PQexec(owner, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
		harness_die(__func__);
	}
	PQclear(r);
	snprintf(ci[i], sizeof(ci[i]), "host=%s port=5432 dbname=hsmca user=hsmca-%s", pg->dir,
	         daemon);
	return ci[i];
}

void harness_pg_remove(const struct harness_pg *pg)
{
	char *rm[] = {"rm", "-rf", "--", (char *)pg->dir, NULL};

	if (!pg->dir[0])
		return;
	harness_pgtest(pg, "stop", NULL);
	harness_run(rm, NULL);
}

const char *harness_pathf(const char *dir, const char *fmt, ...)
{
	static char bufs[64][600];
	static int i;
	char name[400];
	va_list ap;
	char *p = bufs[i++ % 64];

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	snprintf(p, 600, "%s/%s", dir, name);
	return p;
}

void harness_write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		harness_die(__func__);
}

void harness_write_cert(const char *path, X509 *x, int append)
{
	FILE *f = fopen(path, append ? "a" : "w");

	if (!f || !PEM_write_X509(f, x) || fclose(f) != 0)
		harness_die(__func__);
}

void harness_write_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0)
		harness_die(__func__);
}

void harness_write_credential(const char *dir, const char *name, X509 *x, EVP_PKEY *k)
{
	if (!x)
		harness_die(__func__);
	harness_write_cert(harness_pathf(dir, "%s.pem", name), x, 0);
	harness_write_key(harness_pathf(dir, "%s.key", name), k);
	X509_free(x);
	EVP_PKEY_free(k);
}

void harness_cert_sha256(const char *path, uint8_t sha[32])
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned int n = 0;

	if (f)
		fclose(f);
	if (!x || !X509_digest(x, EVP_sha256(), sha, &n) || n != 32) {
		fprintf(stderr, "%s: no certificate to digest\n", path);
		X509_free(x);
		harness_die(__func__);
	}
	X509_free(x);
}

void harness_db_token(struct db *db, const char *name, const char *token_name, char *token,
                      size_t n)
{
	struct db_principal p = {0};
	struct db_err err = {0};
	unsigned char raw[32];
	char b64[48];
	uint8_t sha[32];
	int32_t id;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		harness_die("randomness");
	EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
	for (char *c = b64; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c == '=' ? '\0' : *c;
	snprintf(token, n, "hsmca_%s", b64);
	SHA256((const unsigned char *)token, strlen(token), sha);
	if (db_principal_find(db, name, &p, &err) != DB_OK ||
	    db_token_add(db, p.id, sha, token_name, (int64_t)time(NULL) + 86400, &id, &err) !=
	        DB_OK) {
		fprintf(stderr, "token of %s: %s\n", name, err.msg);
		db_principal_clear(&p);
		harness_die(__func__);
	}
	db_principal_clear(&p);
}

/* Every migration over a new connection as the schema owner, then LOGIN for hsmca_app: that
 * connection, or NULL with err filled. */
static struct db *migrate_as_owner(const struct harness_pg *pg, struct db_err *err)
{
	struct db *db = NULL;
	PGresult *r;
	int applied;

	if (db_connect(pg->owner_ci, &db, err) != DB_OK ||
	    db_migrate(db, NULL, NULL, &applied, err) != DB_OK) {
		db_close(db);
		return NULL;
	}
	r = PQexec(db_pgconn(db), "ALTER ROLE hsmca_app LOGIN");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err->msg, sizeof(err->msg), "ALTER ROLE hsmca_app LOGIN: %s",
		         PQresultErrorMessage(r));
		PQclear(r);
		db_close(db);
		return NULL;
	}
	PQclear(r);
	return db;
}

struct db *harness_pg_migrated(struct harness_pg *pg, const char *name)
{
	struct db_err err = {0};
	struct db *db;

	if (harness_pg_start(pg, name) != 0)
		harness_die(__func__);
	if (!(db = migrate_as_owner(pg, &err))) {
		fprintf(stderr, "%s: %s\n", name, err.msg);
		harness_die(__func__);
	}
	return db;
}

struct db *harness_pg_migrate(const struct harness_pg *pg)
{
	struct db_err err = {0};
	struct db *db = migrate_as_owner(pg, &err);

	ck_assert_msg(db != NULL, "migrating %s: %s", pg->dir, err.msg);
	return db;
}

void harness_pg_fixture_start(struct harness_pg *pg, const char *name)
{
	if (harness_pg_start(pg, name) != 0)
		ck_abort_msg("could not start a private PostgreSQL in %s", pg->dir);
}

struct db *harness_db_connect(const char *ci)
{
	struct db_err err = {0};
	struct db *db = NULL;

	ck_assert_msg(db_connect(ci, &db, &err) == DB_OK, "connect: %s", err.msg);
	return db;
}

void harness_pg_fails(PGconn *c, const char *sql, const char *state)
{
	PGresult *r = PQexec(c, sql);
	const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "%s succeeded", sql);
	ck_assert_msg(got && !strcmp(got, state), "%s: SQLSTATE %s, expected %s (%s)", sql,
	              got ? got : "none", state, PQresultErrorMessage(r));
	PQclear(r);
}

void harness_db_principal(struct db *db, const char *dir, const char *name, const char *role,
                          const char *profiles)
{
	struct db_err err = {0};
	uint8_t sha[32];
	int32_t id;

	harness_cert_sha256(harness_pathf(dir, "%s.pem", name), sha);
	if (db_principal_add(db, name, role, sha, profiles, &id, &err) != DB_OK) {
		fprintf(stderr, "principal %s: %s\n", name, err.msg);
		harness_die(__func__);
	}
}

void harness_load_providers(OSSL_PROVIDER **keyd, OSSL_PROVIDER **dflt)
{
	if (!OSSL_PROVIDER_set_default_search_path(NULL, getenv("HSMCA_PROVIDER_DIR")))
		harness_die(__func__);
	*keyd = OSSL_PROVIDER_load(NULL, "keyd");
	*dflt = OSSL_PROVIDER_load(NULL, "default");
	if (!*keyd || !*dflt || !EVP_set_default_properties(NULL, "?provider=default"))
		harness_die(__func__);
}

EVP_PKEY *harness_keyd_key(const char *label)
{
	char uri[128];
	OSSL_STORE_CTX *sc;
	OSSL_STORE_INFO *info;
	EVP_PKEY *k;

	snprintf(uri, sizeof(uri), "keyd:label=%s", label);
	sc = OSSL_STORE_open_ex(uri, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	info = sc ? OSSL_STORE_load(sc) : NULL;
	k = info ? OSSL_STORE_INFO_get1_PKEY(info) : NULL;
	OSSL_STORE_INFO_free(info);
	OSSL_STORE_close(sc);
	if (!k) {
		ERR_print_errors_fp(stderr);
		harness_die(__func__);
	}
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e || !X509_add_ext(x, e, -1))
		harness_die(__func__);
	X509_EXTENSION_free(e);
}

X509 *harness_make_cert(const struct harness_cert *c)
{
	X509 *x = X509_new(), *issuer = c->issuer;
	X509_NAME *n = X509_NAME_new();
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	BIGNUM *bn = c->serial_bytes ? BN_bin2bn(c->serial_bytes, (int)c->serial_len, NULL) : NULL;
	char dp[512];

	if (!x || !n || !m || (c->serial_bytes && !bn) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)c->cn, -1,
	                                -1, 0))
		harness_die(__func__);
	X509_set_version(x, X509_VERSION_3);
	if (bn)
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	else
		ASN1_INTEGER_set(X509_get_serialNumber(x), c->serial);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	ASN1_TIME_set(X509_getm_notBefore(x), c->not_before);
	ASN1_TIME_set(X509_getm_notAfter(x), c->not_after);
	X509_set_pubkey(x, c->pub);
	add_ext(x, issuer, NID_basic_constraints, c->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, issuer, NID_key_usage,
	        c->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (c->san)
		add_ext(x, issuer, NID_subject_alt_name, c->san);
	if (c->crldp) {
		snprintf(dp, sizeof(dp), "URI:%s", c->crldp);
		add_ext(x, issuer, NID_crl_distribution_points, dp);
	}
	if (c->ocsp_signer) {
		add_ext(x, issuer, NID_ext_key_usage, "OCSPSigning");
		add_ext(x, issuer, NID_id_pkix_OCSP_noCheck, "ignored");
	}
	if (!EVP_DigestSignInit_ex(m, NULL, c->md, NULL, NULL, c->signer, NULL) ||
	    !X509_sign_ctx(x, m)) {
		ERR_print_errors_fp(stderr);
		harness_die(__func__);
	}
	BN_free(bn);
	EVP_MD_CTX_free(m);
	X509_NAME_free(n);
	return x;
}

size_t harness_curl_collect(char *p, size_t sz, size_t n, void *arg)
{
	struct harness_buf *b = arg;
	size_t add = sz * n;

	if (b->len + add + 1 > b->cap) {
		size_t cap = (b->len + add + 1) * 2;
		char *d = realloc(b->data, cap);

		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

void harness_pg_exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);

	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
	              PQresultErrorMessage(r));
	PQclear(r);
}

long long harness_pg_count(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	long long n;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
	n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

void harness_pg_text(PGconn *c, const char *sql, char *out, size_t n)
{
	PGresult *r = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s (%d rows)",
	              sql, PQresultErrorMessage(r), PQntuples(r));
	snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
}

/* ---- HTTPS clients ---- */

long harness_http(const struct harness_site *s, const struct harness_req *q,
                  struct harness_reply *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct harness_buf b = {0}, hb = {0};
	char url[2048], ca[512], cert[512], key[512], line[600];

	memset(r, 0, sizeof(*r));
	if (!strncmp(q->path, "https://", 8) || !strncmp(q->path, "http://", 7))
		snprintf(url, sizeof(url), "%s", q->path);
	else
		snprintf(url, sizeof(url), "%s%s", s->base_url, q->path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	snprintf(ca, sizeof(ca), "%s/opca.pem", s->dir);
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	if (!strcmp(q->method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, harness_curl_collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
	snprintf(line, sizeof(line), "Content-Type: %s",
	         q->content_type ? q->content_type : "application/json");
	hdr = curl_slist_append(hdr, line);
	if (q->totp) {
		snprintf(line, sizeof(line), "X-HSMCA-TOTP: %s", q->totp);
		hdr = curl_slist_append(hdr, line);
	}
	if (q->who && !strncmp(q->who, "token:", 6)) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", q->who + 6);
		hdr = curl_slist_append(hdr, line);
	} else if (q->who) {
		snprintf(cert, sizeof(cert), "%s/%s.pem", s->dir, q->who);
		snprintf(key, sizeof(key), "%s/%s.key", s->dir, q->who);
		curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	if (q->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
	}
	r->rc = curl_easy_perform(c);
	if (r->rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	r->body = b.data;
	r->headers = hb.data;
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return r->status;
}

void harness_reply_clear(struct harness_reply *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

int harness_reply_header(const struct harness_reply *r, const char *name, int nth, char *out,
                         size_t n)
{
	size_t nl = strlen(name);

	out[0] = '\0';
	for (const char *l = r->headers; l && *l; l += strcspn(l, "\n"), l += *l == '\n') {
		const char *v = l + nl + 1;

		if (strncasecmp(l, name, nl) || l[nl] != ':' || nth-- > 0)
			continue;
		v += strspn(v, " \t");
		snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
		return 1;
	}
	return 0;
}

long harness_api(const struct harness_site *s, const char *who, const char *method,
                 const char *path, const char *body, json_t **out)
{
	struct harness_reply r;
	struct harness_req q = {.who = who, .method = method, .path = path, .body = body};
	json_t *o = NULL;
	long status = harness_http(s, &q, &r);

	if (r.body)
		o = json_loads(r.body, 0, NULL);
	if (r.status >= 400 && o && out)
		ck_assert_msg(json_is_string(json_object_get(o, "error")) &&
		                  json_is_string(json_object_get(o, "detail")),
		              "%s %s: HTTP %ld, an error without {error, detail}: %s", method, path,
		              r.status, r.body);
	if (out)
		*out = o;
	else
		json_decref(o);
	harness_reply_clear(&r);
	return status;
}

const char *harness_jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* ---- the hsmca command line ---- */

void harness_cli_env(const struct harness_site *s, const char *who)
{
	setenv("HSMCA_API_URL", s->base_url, 1);
	setenv("HSMCA_CA_BUNDLE", harness_pathf(s->dir, "opca.pem"), 1);
	unsetenv("HSMCA_API_TOKEN");
	unsetenv("HSMCA_CLIENT_CERT");
	unsetenv("HSMCA_CLIENT_KEY");
	if (who && !strncmp(who, "token:", 6)) {
		setenv("HSMCA_API_TOKEN", who + 6, 1);
	} else if (who) {
		setenv("HSMCA_CLIENT_CERT", harness_pathf(s->dir, "%s.pem", who), 1);
		setenv("HSMCA_CLIENT_KEY", harness_pathf(s->dir, "%s.key", who), 1);
	}
}

int harness_cli(const struct harness_site *s, const char *who, const char *const *args,
                const char *out_path, const char *err_path)
{
	char *argv[40];
	size_t n = 0;
	int st;
	pid_t pid;

	argv[n++] = getenv("HSMCA_CLI_BIN");
	for (size_t i = 0; args[i] && n < 39; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : o;

		dup2(o, 1);
		dup2(e, 2);
		harness_cli_env(s, who);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- hsmca-cad ---- */

pid_t harness_cad_start(const struct harness_site *s, const char *conf, const char *log,
                        const char *who)
{
	int phase = harness_setup_phase;
	char logf[512]; /* log may be a harness_pathf() buffer, reused meanwhile */
	pid_t pid;

	snprintf(logf, sizeof(logf), "%s", log);
	harness_setup_phase = 1;
	pid = harness_spawn_daemon("ca-core/cad/hsmca-cad", conf, NULL, logf);
	for (int i = 0; i < 400; i++) {
		struct harness_reply r;
		struct harness_req q = {.who = who, .method = "GET", .path = "/api/v1/health"};

		long status = harness_http(s, &q, &r);

		harness_reply_clear(&r);
		if (status == 200) {
			harness_setup_phase = phase;
			return pid;
		}
		usleep(50000);
	}
	fprintf(stderr, "hsmca-cad did not become healthy\n");
	log_tail(logf);
	harness_die(__func__);
}

int harness_cad_stop(pid_t *pid, const char *log, int flags)
{
	return harness_daemon_stop(pid, "hsmca-cad", log, flags);
}

X509 *harness_test_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                        const char *san, const char *md)
{
	static long serial = 1000;
	time_t now = time(NULL);
	struct harness_cert c = {.cn = cn,
	                         .pub = pub,
	                         .issuer = issuer,
	                         .signer = signer,
	                         .ca = ca,
	                         .serial = serial++,
	                         .not_before = now - 3600,
	                         .not_after = now + 86400L * 3660,
	                         .san = san,
	                         .md = md ? md : "SHA256"};

	return harness_make_cert(&c);
}

X509 *harness_opca(const char *dir, const char *cn, EVP_PKEY **key)
{
	EVP_PKEY *sk = EVP_EC_gen("P-256");
	X509 *ca;

	*key = EVP_EC_gen("P-256");
	if (!*key || !sk)
		harness_die(__func__);
	ca = harness_test_cert(cn, *key, NULL, *key, 1, NULL, NULL);
	harness_write_cert(harness_pathf(dir, "opca.pem"), ca, 0);
	harness_write_credential(
	    dir, "server",
	    harness_test_cert("localhost", sk, ca, *key, 0, "DNS:localhost,IP:127.0.0.1", NULL),
	    sk);
	return ca;
}

int harness_suite_end(struct harness *h, struct harness_pg *pg, X509 *opca, EVP_PKEY *opca_key,
                      OSSL_PROVIDER *keyd, OSSL_PROVIDER *dflt)
{
	int rc;

	harness_pg_remove(pg);
	X509_free(opca);
	EVP_PKEY_free(opca_key);
	OSSL_PROVIDER_unload(keyd);
	OSSL_PROVIDER_unload(dflt);
	rc = harness_stop(h);
	curl_global_cleanup();
	return rc;
}

/* ---- CSRs ---- */

char *harness_make_csr(EVP_PKEY *k, const char *subject, const char *san)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *copy = strdup(subject), *save = NULL, *out, *data;
	long len;

	for (char *f = strtok_r(copy, "/", &save); f; f = strtok_r(NULL, "/", &save)) {
		char *eq = strchr(f, '=');
		*eq = '\0';
		if (!X509_NAME_add_entry_by_txt(n, f, MBSTRING_UTF8, (unsigned char *)eq + 1, -1,
		                                -1, 0))
			harness_die(__func__);
	}
	X509_REQ_set_version(req, 0);
	X509_REQ_set_subject_name(req, n);
	X509_REQ_set_pubkey(req, k);
	if (san) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		if (!e)
			harness_die(__func__);
		sk_X509_EXTENSION_push(exts, e);
		X509_REQ_add_extensions(req, exts);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	if (!EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, k, NULL) ||
	    !X509_REQ_sign_ctx(req, m))
		harness_die(__func__);
	PEM_write_bio_X509_REQ(b, req);
	len = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)len);
	BIO_free(b);
	EVP_MD_CTX_free(m);
	X509_NAME_free(n);
	X509_REQ_free(req);
	free(copy);
	return out;
}

/* ---- DER test fixtures ---- */

X509_NAME *harness_cn(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
	    1);
	return n;
}

size_t harness_tbs_cert(const struct harness_tbs_cert *c, uint8_t **der)
{
	X509 *x = X509_new();
	X509_NAME *in = harness_cn(c->issuer), *sn = harness_cn(c->subject);
	int n;

	ck_assert_int_eq(X509_set_version(x, c->version - 1), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), c->serial);
	X509_set_issuer_name(x, in);
	X509_set_subject_name(x, sn);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, c->pub);
	if (c->bc) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, c->bc);

		ck_assert_ptr_nonnull(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	ck_assert_int_gt(X509_sign(x, c->signer, EVP_sha256()), 0);
	*der = NULL;
	n = i2d_re_X509_tbs(x, der);
	ck_assert_int_gt(n, 0);
	X509_free(x);
	X509_NAME_free(in);
	X509_NAME_free(sn);
	return (size_t)n;
}

size_t harness_tbs_crl(const struct harness_tbs_crl *c, uint8_t **der)
{
	X509_CRL *crl = X509_CRL_new();
	X509_NAME *in = harness_cn(c->issuer);
	ASN1_TIME *t = X509_gmtime_adj(NULL, 0);
	int n;

	if (c->v2)
		X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, in);
	X509_CRL_set1_lastUpdate(crl, t);
	if (c->next_update)
		X509_CRL_set1_nextUpdate(crl, t);
	for (int i = 0; i < c->entries; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();

		ASN1_INTEGER_set_int64(s, c->first_serial + i);
		X509_REVOKED_set_serialNumber(r, s);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(s);
	}
	ck_assert_int_gt(X509_CRL_sign(crl, c->signer, EVP_sha256()), 0);
	*der = NULL;
	n = i2d_re_X509_CRL_tbs(crl, der);
	ck_assert_int_gt(n, 0);
	X509_CRL_free(crl);
	X509_NAME_free(in);
	ASN1_TIME_free(t);
	return (size_t)n;
}

PGconn *harness_pg_connect(const char *ci)
{
	PGconn *c = PQconnectdb(ci);

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect to %s: %s", ci, PQerrorMessage(c));
	return c;
}

void harness_pg_exec_on(const char *ci, const char *sql)
{
	PGconn *c = harness_pg_connect(ci);

	harness_pg_exec_ok(c, sql);
	PQfinish(c);
}

long long harness_pg_count_on(const char *ci, const char *sql)
{
	PGconn *c = harness_pg_connect(ci);
	long long n = harness_pg_count(c, sql);

	PQfinish(c);
	return n;
}
