#include "harness.h"

#include <check.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
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
	if (log) {
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
