/*
 * Test harness: a throwaway SoftHSM token and an hsmca-keyd serving it, in a
 * fresh temporary folder per call (never the user's token). Needs the
 * environment meson's test() sets: HSMCA_KEYD_BIN, HSMCA_PROVIDER_DIR, HSMCA_SRC.
 * Below it, the helpers the integration tests share (processes, files, a private
 * PostgreSQL cluster, test certificates, libcurl and SQL helpers).
 */
#ifndef HSMCA_TEST_HARNESS_H
#define HSMCA_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

struct harness_opts {
	/* The "clients:" list of keyd's config, as YAML text indented by two
	 * spaces per level; NULL grants the test's own uid every key and
	 * every operation (generate included). */
	const char *clients_yaml;
	int workers; /* 0: 2 */
	int queue;   /* 0: 256 */
	/* PKCS#11 module keyd loads; NULL: SoftHSM. The fault shim is
	 * $HSMCA_BUILD/tests/shim/libp11shim.so and wraps SoftHSM. */
	const char *module;
	/* Extra environment for keyd, "NAME=value", NULL-terminated; may be NULL. */
	const char *const *keyd_env;
	/* Top-level lines of keyd's config in place of "pin_file:" (e.g. "activation: quorum"
	 * and its "quorum:" section); NULL: the harness's PIN file. */
	const char *activation_yaml;
};

/* The token under test: SoftHSM made by the harness, or, when HSMCA_TEST_TOKEN names a
 * script of tests/tokens (e.g. "tpm2"), a token that script makes fresh in DIR/token and
 * describes in DIR/token/token.conf (tests/tokens/README.md). */
#define HARNESS_TOKEN_ENV_MAX 8
struct harness {
	char dir[256];       /* the temporary folder */
	char module[512];    /* the token's PKCS#11 module */
	char token_kind[32]; /* "softhsm" or the tests/tokens script's name */
	char token_dir[512]; /* DIR/token when a script made the token */
	/* "NAME=value" the module needs (also set in this process), NULL-terminated. */
	char token_env_buf[HARNESS_TOKEN_ENV_MAX][600];
	const char *token_env[HARNESS_TOKEN_ENV_MAX + 1];
	char token_keyd[512];   /* lines for keyd's config the token asks for ("keyd=" lines) */
	char socket[512];       /* keyd's socket */
	char conf[512];         /* keyd's config file */
	char softhsm_conf[512]; /* SOFTHSM2_CONF, also set in this process */
	char tokendir[512];
	char log[512]; /* keyd's stderr */
	char pin[64];
	char so_pin[32]; /* the SO PIN of a SoftHSM token the harness made ("" otherwise) */
	char token_label[32];
	pid_t keyd_pid;
};

/* Make the token, write config and PIN file, start keyd and wait for its
 * socket. Returns 0, or -1 with a message on stderr. Sets HSMCA_KEYD_SOCKET. */
int harness_start(struct harness *h, const struct harness_opts *o);
/* For a test program's main(): when HSMCA_TEST_TOKEN names a token script that cannot
 * make its token on this machine, print a "SKIP" line with its reason and return 77 (meson's
 * skip); else 0. */
int harness_token_skip(void);
/* 1 when the token is SoftHSM (the harness's own). */
int harness_token_is_softhsm(const struct harness *h);

/* Rewrite keyd's config (e.g. other clients) without restarting. */
int harness_write_config(struct harness *h, const struct harness_opts *o);
int harness_keyd_start(struct harness *h);
/* SIGTERM keyd and check its exit through harness_daemon_stop(): 0 when it exited 0 with no
 * sanitizer report in its log, else its exit status (128 + signal when killed), or 1 for a
 * report after a clean exit, or -1 when it was not running. */
int harness_keyd_stop(struct harness *h);
/* SIGKILL keyd (a crash) and reap it. */
void harness_keyd_kill(struct harness *h);
/* Stop keyd (harness_keyd_stop) and remove the folder. Returns 0, or -1 when keyd did not exit
 * cleanly (also counted in harness_bad_exits); a test fixture asserts it. */
int harness_stop(struct harness *h);
/* 1 if keyd's log contains s. */
int harness_log_contains(const struct harness *h, const char *s);

/* ---- Stopping a daemon and checking its exit ----
 * The one path every suite stops keyd, cad, ocspd and crld through. LeakSanitizer reports
 * only at exit, so a daemon's log is read after it has exited, never before. */

/* 1 if the file at log holds a sanitizer report: AddressSanitizer, LeakSanitizer,
 * UndefinedBehaviorSanitizer or UBSan's "runtime error:"; 0 if not or unreadable. */
int harness_log_has_sanitizer_report(const char *log);

/* The daemon may already have died of SIGKILL (a test crashed it on purpose). */
#define HARNESS_STOP_MAY_BE_KILLED 1

/* SIGTERM *pid, wait for it under a deadline (60 s, then SIGKILL), set *pid to 0 and check
 * it: it must exit with status 0 (or have died of SIGKILL, with HARNESS_STOP_MAY_BE_KILLED)
 * and its log (NULL: none) must hold no sanitizer report. Returns 0 if so; else prints NAME,
 * the reason and the end of the log to stderr, adds one to harness_bad_exits and returns the
 * exit status (128 + signal when killed, 1 for a report or a timeout after status 0). *pid
 * <= 0: nothing to stop, returns -1 without counting. */
int harness_daemon_stop(pid_t *pid, const char *name, const char *log, int flags);

/* Unclean exits harness_daemon_stop() saw in this process. A suite whose daemons are
 * stopped in its parent process (unchecked fixtures, CK_NOFORK) adds it to its failures;
 * a forked test asserts the return value instead (the child's count is lost). */
extern int harness_bad_exits;

/* ---- Shared helpers of the integration tests ---- */

/* Failure plumbing for suites that build their fixture in the parent process.
 * harness_die() prints "PROG: WHERE failed" and aborts; while harness_setup_phase is set
 * it first clears it and runs the cleanup given to harness_die_init(), so that no server
 * outlives the test program. The helpers below call it when they fail. */
extern int harness_setup_phase;
void harness_die_init(const char *prog, void (*cleanup)(void));
_Noreturn void harness_die(const char *where);

/* A per-test deadline for suites run in one process (CK_NOFORK, where Check's own timeouts do
 * nothing): harness_watchdog_arm(SECONDS) from a checked fixture's setup (name: what the
 * message calls the suite), harness_watchdog_disarm() from its teardown. A test still running
 * at the deadline gets "NAME: a test ran past its N s deadline" on stderr, the cleanup given
 * to harness_die_init() (so that no server outlives it) and exit status 124. */
void harness_watchdog_arm(const char *name, unsigned seconds);
void harness_watchdog_disarm(void);

/* Fork and exec argv (PATH searched), stdout and stderr to out_path (created or
 * truncated; NULL: /dev/null). Returns the exit status, -1 if it did not exit normally. */
int harness_run(char *const argv[], const char *out_path);
/* The text of a file (at most 64 KiB - 1), "" if unreadable. A static buffer: the next call
 * overwrites it. */
char *harness_slurp(const char *path);
/* A TCP port on 127.0.0.1 free right now (bound, read and closed). */
int harness_free_port(void);

/* Start a daemon of the build tree, $HSMCA_BUILD/REL --config CONF [EXTRA], its stderr
 * appended to log and OPENSSL_MODULES set to $HSMCA_PROVIDER_DIR in the child (for keyd:
 * keys). Returns its pid at once (waiting until it serves is the caller's); harness_die()
 * if it cannot fork. */
pid_t harness_spawn_daemon(const char *rel, const char *conf, const char *extra, const char *log);

/* A private PostgreSQL cluster (tests/pg/pgtest) in a fresh folder under /tmp (not
 * $TMPDIR: the socket path must stay short). Run as root, pgtest runs it as postgres. */
struct harness_pg {
	char dir[128];
	char owner_ci[512]; /* conninfo as the schema owner, hsmca */
	char app_ci[512];   /* conninfo as the application role, hsmca_app */
};
/* Make /tmp/hsmca-NAME.XXXXXX, start the cluster there (pgtest start --fast) and fill the
 * connection strings. Returns 0, or -1 (harness_pg_remove still cleans up). */
int harness_pg_start(struct harness_pg *pg, const char *name);
/* tests/pg/pgtest CMD [OPT] DIR, its output discarded; returns its exit status. */
int harness_pgtest(const struct harness_pg *pg, const char *cmd, const char *opt);
/* Stop the cluster and remove its folder; nothing if it was never made. */
void harness_pg_remove(const struct harness_pg *pg);
/* The login role a daemon connects as: "hsmca-DAEMON" (cad, ocspd, crld), LOGIN and a member
 * of the group role hsmca_DAEMON that the migrations make, created over owner (the migrated
 * schema owner's connection) if missing. Returns its conninfo (a static buffer per daemon). */
const char *harness_pg_daemon_ci(const struct harness_pg *pg, PGconn *owner, const char *daemon);

/* DIR/NAME, NAME formatted (at most 399 characters), in one of 64 static buffers used in
 * turn: valid until 63 more calls. */
const char *harness_pathf(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Write text, a certificate in PEM (append: after what the file holds) or a private key in
 * unencrypted PEM to path; harness_die() on failure. */
void harness_write_text(const char *path, const char *text);
void harness_write_cert(const char *path, X509 *x, int append);
void harness_write_key(const char *path, EVP_PKEY *k);

/* Load the keyd provider (from $HSMCA_PROVIDER_DIR) and the default one, the default
 * preferred ("?provider=default") wherever keyd is not asked for; harness_die() on failure. */
void harness_load_providers(OSSL_PROVIDER **keyd, OSSL_PROVIDER **dflt);

/* A private key held by keyd, through the keyd provider (loaded by the caller):
 * keyd:label=LABEL. harness_die() on failure. */
EVP_PKEY *harness_keyd_key(const char *label);

/* A test certificate: subject CN=cn, version 3, basicConstraints and keyUsage (critical;
 * CA: CA:TRUE, keyCertSign and cRLSign; else CA:FALSE, digitalSignature), a subject key
 * identifier, an authority key identifier when issued, then the optional extensions. */
struct harness_cert {
	const char *cn;
	EVP_PKEY *pub;
	X509 *issuer; /* NULL: self-signed */
	EVP_PKEY *signer;
	int ca;
	long serial;                 /* used when serial_bytes is NULL */
	const uint8_t *serial_bytes; /* big-endian */
	size_t serial_len;
	time_t not_before, not_after; /* absolute */
	const char *san;              /* subjectAltName in OpenSSL's config form, or NULL */
	const char *crldp;            /* a CRL distribution point URI, or NULL */
	int ocsp_signer;              /* extendedKeyUsage OCSPSigning and id-pkix-ocsp-nocheck */
	const char *md;               /* digest name for EVP_DigestSignInit_ex (NULL: none) */
};
/* Make and sign it; harness_die() on failure. */
X509 *harness_make_cert(const struct harness_cert *c);

/* A growing buffer, always NUL-terminated once written, for libcurl: CURLOPT_WRITEFUNCTION
 * (or HEADERFUNCTION) harness_curl_collect, its DATA a struct harness_buf zeroed first;
 * free(data) afterwards. Setting len to 0 reuses it (load generators do, per request). */
struct harness_buf {
	char *data;
	size_t len, cap;
};
size_t harness_curl_collect(char *p, size_t sz, size_t n, void *arg);

/* One SQL command on connection c, checked with Check: harness_pg_exec_ok asserts it
 * succeeds (command or rows); harness_pg_count asserts it returns rows and gives the first
 * column of the first as a number (e.g. SELECT count(*) ...). */
void harness_pg_exec_ok(PGconn *c, const char *sql);
long long harness_pg_count(PGconn *c, const char *sql);

#endif
