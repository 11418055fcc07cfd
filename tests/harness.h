/*
 * Test harness: a throwaway SoftHSM token and an hsmca-keyd serving it, in a
 * fresh temporary folder per call (never the user's token). Needs the
 * environment meson's test() sets: HSMCA_KEYD_BIN, HSMCA_PROVIDER_DIR, HSMCA_SRC.
 * Below it, the helpers the integration tests share (processes, files, a private
 * PostgreSQL cluster, test certificates and CSRs, SQL helpers, an HTTPS client of the API,
 * hsmca-cad's start and stop, and the DER fixtures of keyd's kind reader).
 */
#ifndef HSMCA_TEST_HARNESS_H
#define HSMCA_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

struct db;

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
/* For a Check fixture: harness_start, failing the test when keyd did not start, and
 * harness_stop, failing it when keyd did not exit cleanly (its log says why). */
void harness_check_start(struct harness *h, const struct harness_opts *o);
void harness_check_stop(struct harness *h);
/* For a test program's main(): run every test of s with Check's normal output and free it;
 * returns main's status, 0 when every test passed, else 1. */
int harness_run_suite(Suite *s);

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
/* harness_pg_start(pg, name), then every migration over a connection as the schema owner, and
 * LOGIN for the application role hsmca_app. Returns that owner connection (db_close() it);
 * harness_die() on failure, naming the problem on stderr. */
struct db *harness_pg_migrated(struct harness_pg *pg, const char *name);
/* Register the principal NAME with role (and profiles, NULL: none) over db, identified by the
 * certificate DIR/NAME.pem; harness_die() on failure. */
void harness_db_principal(struct db *db, const char *dir, const char *name, const char *role,
                          const char *profiles);

/* An API token for the principal NAME over db, as hsmca-cad makes them ("hsmca_" and 256
 * random bits in base64url), stored as its SHA-256 under token_name, valid for a day; the
 * token into token (n >= 50). harness_die() on failure. */
void harness_db_token(struct db *db, const char *name, const char *token_name, char *token,
                      size_t n);

/* For a test's checked fixture (Check asserts): start the cluster (harness_pg_start; the
 * fixture's teardown calls harness_pg_remove), or migrate it as its owner and let hsmca_app
 * log in, returning the owner's connection (db_close() it). */
void harness_pg_fixture_start(struct harness_pg *pg, const char *name);
struct db *harness_pg_migrate(const struct harness_pg *pg);
/* A connection to ci, asserted. */
struct db *harness_db_connect(const char *ci);
/* sql must fail on c with SQLSTATE state (asserted, naming both). */
void harness_pg_fails(PGconn *c, const char *sql, const char *state);

/* DIR/NAME, NAME formatted (at most 399 characters), in one of 64 static buffers used in
 * turn: valid until 63 more calls. */
const char *harness_pathf(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Write text, a certificate in PEM (append: after what the file holds) or a private key in
 * unencrypted PEM to path; harness_die() on failure. */
void harness_write_text(const char *path, const char *text);
void harness_write_cert(const char *path, X509 *x, int append);
void harness_write_key(const char *path, EVP_PKEY *k);
/* A credential NAME in dir: the certificate x to DIR/NAME.pem and its key k to DIR/NAME.key,
 * both freed; harness_die() on failure (x NULL included). */
void harness_write_credential(const char *dir, const char *name, X509 *x, EVP_PKEY *k);
/* The SHA-256 of the DER of the first certificate in the PEM file at path (how cad names a
 * principal's certificate); harness_die() when there is none. */
void harness_cert_sha256(const char *path, uint8_t sha[32]);

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
/* The usual one: valid from an hour ago for 3660 days (so that a certificate of the longest
 * profile, 3650 days, lies inside its issuer's validity), serials from 1000 up (one counter
 * per process), signed with md (NULL: SHA256). */
X509 *harness_test_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                        const char *san, const char *md);

/* The operator-auth CA CN=cn (a fresh P-256 key into *key) in DIR/opca.pem, and the
 * server's credential for localhost and 127.0.0.1 that it issues, DIR/server.pem and
 * DIR/server.key (harness_test_cert() both). Returns the CA (X509_free() it, EVP_PKEY_free()
 * *key). */
X509 *harness_opca(const char *dir, const char *cn, EVP_PKEY **key);
/* The end of a cad suite's environment, in order: the cluster removed, the operator CA freed
 * (NULL: none), the providers unloaded, keyd stopped and its folder removed, libcurl's globals
 * freed. Returns harness_stop()'s result. */
int harness_suite_end(struct harness *h, struct harness_pg *pg, X509 *opca, EVP_PKEY *opca_key,
                      OSSL_PROVIDER *keyd, OSSL_PROVIDER *dflt);

/* A PKCS#10 request in PEM (malloc'd) for key k, signed with SHA-256: subject "/CN=x/O=y"
 * style, san in OpenSSL's config form ("DNS:a,IP:1.2.3.4") or NULL; harness_die() on
 * failure. */
char *harness_make_csr(EVP_PKEY *k, const char *subject, const char *san);

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
 * column of the first as a number (e.g. SELECT count(*) ...); harness_pg_text asserts it
 * returns exactly one row and copies its first column as text into out (n bytes). */
void harness_pg_exec_ok(PGconn *c, const char *sql);
long long harness_pg_count(PGconn *c, const char *sql);
void harness_pg_text(PGconn *c, const char *sql, char *out, size_t n);
/* A connection to ci, asserted; and the two above over a fresh one, closed after. */
PGconn *harness_pg_connect(const char *ci);
void harness_pg_exec_on(const char *ci, const char *sql);
long long harness_pg_count_on(const char *ci, const char *sql);

/* ---- HTTPS clients of a daemon under test (libcurl) ---- */

/* The server a test talks to and the folder of its test credentials: DIR/opca.pem is the
 * trust anchor of the server's certificate, DIR/NAME.pem and DIR/NAME.key a client's. Both
 * strings may be filled after the struct is made (a test's static buffers). */
struct harness_site {
	const char *base_url; /* "https://127.0.0.1:PORT", put before a request's path */
	const char *dir;
};

/* One request. who: NULL (no credentials), "token:SECRET" (a bearer token) or NAME (the
 * client certificate DIR/NAME.pem with its key DIR/NAME.key). */
struct harness_req {
	const char *who;
	const char *method;       /* "HEAD" asks for no body */
	const char *path;         /* after base_url; an absolute URL ("https://...") as it is */
	const char *body;         /* NULL: none */
	const char *content_type; /* NULL: application/json */
	const char *totp;         /* X-HSMCA-TOTP's value, or NULL */
};

/* The answer: status 0 when there was none (rc says why); body and headers (the header
 * lines as received) NUL-terminated or NULL; harness_reply_clear() frees them. */
struct harness_reply {
	long status;
	CURLcode rc;
	char *body;
	char *headers;
};

/* Send q to s (60 s timeout) into *r (overwritten); returns r->status. Needs
 * curl_global_init() done. */
long harness_http(const struct harness_site *s, const struct harness_req *q,
                  struct harness_reply *r);
void harness_reply_clear(struct harness_reply *r);
/* The value of the nth (0: first) header NAME of r (case-insensitive), into out (cut to n);
 * 1 if there is one, else 0 and out "". */
int harness_reply_header(const struct harness_reply *r, const char *name, int nth, char *out,
                         size_t n);

/* The JSON API: METHOD PATH as who with body (NULL: none) as application/json. Returns the
 * status (0: no answer); *out (may be NULL) gets the body parsed (NULL if none or not JSON).
 * When out is given, asserts (Check) that an error answer (>= 400) with a JSON body carries
 * {error, detail}, naming the request and the status. */
long harness_api(const struct harness_site *s, const char *who, const char *method,
                 const char *path, const char *body, json_t **out);
/* The string member k of o, "" when absent or not a string. */
const char *harness_jstr(json_t *o, const char *k);

/* ---- the hsmca command line as an API client ---- */

/* Set, in this process, the environment hsmca reads to reach the API at s as who (NULL, "token:
 * SECRET" or a client certificate's NAME, as for struct harness_req): HSMCA_API_URL,
 * HSMCA_CA_BUNDLE (DIR/opca.pem), and HSMCA_API_TOKEN or HSMCA_CLIENT_CERT and
 * HSMCA_CLIENT_KEY, the others unset. */
void harness_cli_env(const struct harness_site *s, const char *who);
/* Run $HSMCA_CLI_BIN ARGS... (args NULL-terminated) as who at s, in a child with that
 * environment; stdout to out_path and stderr to err_path (created or truncated; err_path
 * NULL: with stdout). Returns the exit status, -1 if it did not exit normally. */
int harness_cli(const struct harness_site *s, const char *who, const char *const *args,
                const char *out_path, const char *err_path);

/* ---- hsmca-cad under test ---- */

/* Spawn $HSMCA_BUILD/ca-core/cad/hsmca-cad --config conf, its stderr appended to log, and
 * wait (20 s) until GET /api/v1/health answers 200 to who (NULL: no credentials) at s.
 * harness_setup_phase is set meanwhile (restored after), so that a cad that does not come up
 * ends the program through harness_die(), after "hsmca-cad did not become healthy" and the end
 * of its log on stderr. */
pid_t harness_cad_start(const struct harness_site *s, const char *conf, const char *log,
                        const char *who);
/* harness_daemon_stop(pid, "hsmca-cad", log, flags). */
int harness_cad_stop(pid_t *pid, const char *log, int flags);

/* ---- DER test fixtures: the to-be-signed parts keyd reads the kind of ---- */

/* The name CN=cn (X509_NAME_free() it). */
X509_NAME *harness_cn(const char *cn);

/* A TBSCertificate valid from now for a day, its DER in *der (OPENSSL_free() it); returns its
 * length. Asserts (Check) each step. */
struct harness_tbs_cert {
	int version; /* 1, 2 or 3 */
	long serial;
	const char *issuer, *subject; /* CNs */
	const char *bc;               /* basicConstraints in OpenSSL's config form; NULL: none */
	EVP_PKEY *pub;                /* its SubjectPublicKeyInfo */
	EVP_PKEY *signer;             /* fills the signature algorithm (SHA-256) */
};
size_t harness_tbs_cert(const struct harness_tbs_cert *c, uint8_t **der);

/* A TBSCertList issued by CN=issuer this second, listing entries serials from first_serial up
 * (revoked this second); its DER in *der (OPENSSL_free() it); returns its length. */
struct harness_tbs_crl {
	int v2; /* the version field (v2); 0: none (v1) */
	const char *issuer;
	int entries;
	int64_t first_serial;
	int next_update;  /* nextUpdate (this second) too */
	EVP_PKEY *signer; /* fills the signature algorithm (SHA-256) */
};
size_t harness_tbs_crl(const struct harness_tbs_crl *c, uint8_t **der);

#endif
