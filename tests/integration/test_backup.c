/*
 * hsmca backup / hsmca restore end to end: a private PostgreSQL cluster, a throwaway keyd with
 * the CA keys and an AES wrapping key, and hsmca-cad. The service issues, is backed up, wiped
 * (database and configuration files), restored from the archive, and continues: the old
 * certificate is still known, issuance works, the audit chain verifies. Changed archives (tag)
 * and archives whose contents disagree with their manifest are refused and change nothing.
 * One set-up for the suite; the cases run in order, in this process.
 */
#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "backup.h"
#include "db.h"
#include "harness.h"
#include "keyd_client.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

static struct harness h;
static struct harness_pg pg;
static char dir[256], etc[300]; /* etc: the service's configuration and CA certificates */
static char base_url[128];
static pid_t cad_pid;
static OSSL_PROVIDER *prov_keyd, *prov_default;
static void cleanup(void);

/* The cases run in this process (CK_NOFORK): whatever fails, take the servers down first. */
static _Noreturn void die(const char *where)
{
	harness_setup_phase = 1;
	harness_die(where);
}

/* ---- processes and files ---- */

#define at(folder, name) harness_pathf(folder, "%s", name)

/* The whole file, malloc'd; *len its length. */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	ck_assert_msg(f != NULL, "%s missing", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	b[n] = 0;
	*len = (size_t)n;
	return b;
}

static void spew(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert(f && fwrite(b, 1, n, f) == n && fclose(f) == 0);
}

/* ---- certificates ---- */

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san)
{
	return harness_test_cert(cn, pub, issuer, signer, ca, san, NULL);
}

/* ---- HTTP ---- */

static const struct harness_site site = {.base_url = base_url, .dir = dir};

/* who: a client certificate name in dir (or NULL). Returns the HTTP status; *out the JSON. */
static long api(const char *who, const char *method, const char *path, const char *body,
                json_t **out)
{
	return harness_api(&site, who, method, path, body, out);
}

/* Issue a tls-server certificate as the officer; its serial (hex), malloc'd. */
static char *issue(const char *host)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char san[128], subject[160], *csr, *body, *serial;
	json_t *req, *o = NULL;
	long st;

	snprintf(san, sizeof(san), "DNS:%s", host);
	snprintf(subject, sizeof(subject), "/CN=%s", host);
	csr = harness_make_csr(k, subject, san);
	req = json_pack("{s:s, s:s}", "profile", "tls-server", "csr", csr);
	body = json_dumps(req, JSON_COMPACT);
	st = api("officer", "POST", "/api/v1/certificates", body, &o);
	ck_assert_msg(st == 201, "issue %s: HTTP %ld", host, st);
	serial = strdup(json_string_value(json_object_get(o, "serial")));
	json_decref(o);
	json_decref(req);
	free(body);
	free(csr);
	EVP_PKEY_free(k);
	return serial;
}

/* ---- the database, as its owner ---- */

static struct db *owner_db(void)
{
	return harness_db_connect(pg.owner_ci);
}

static void sql_ok(const char *sql)
{
	harness_pg_exec_on(pg.owner_ci, sql);
}

static long long count(const char *sql)
{
	return harness_pg_count_on(pg.owner_ci, sql);
}

static struct db_audit_report audit(void)
{
	struct db *db = owner_db();
	struct db_audit_report r;
	struct db_err err = {0};

	ck_assert_msg(db_audit_verify(db, &r, &err) == DB_OK, "audit verify: %s", err.msg);
	db_close(db);
	return r;
}

/* ---- the hsmca command line ---- */

static char cli_err[4096];

/* hsmca ARGS... (NULL-terminated); exit status, its stderr in cli_err. */
static int hsmca(const char *first, ...)
{
	char *argv[32], log[600];
	const char *a;
	int n = 0, rc;
	va_list ap;
	size_t len;
	uint8_t *text;

	argv[n++] = (char *)getenv("HSMCA_CLI_BIN");
	argv[n++] = (char *)first;
	va_start(ap, first);
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	snprintf(log, sizeof(log), "%s/cli.log", dir);
	rc = harness_run(argv, log);
	text = slurp(log, &len);
	snprintf(cli_err, sizeof(cli_err), "%s", (char *)text);
	free(text);
	return rc;
}

/* ---- fixture ---- */

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: %d}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem}\n"
    "database: \"%s connect_timeout=3\"\n"
    "audit: {checkpoint_key: \"keyd:label=audit-p256\", checkpoint_interval_seconds: 1}\n"
    "authorities:\n"
    "  - {name: issuing, certificate: %s/issuing.pem, key: \"keyd:label=issuing-p256\"}\n"
    "key_profiles:\n"
    "  - {name: ec-only, ec_curves: [P-256]}\n"
    "profiles:\n"
    "  - name: tls-server\n"
    "    authority: issuing\n"
    "    key_profile: ec-only\n"
    "    max_validity_days: 90\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN]\n"
    "    san: {dns: [\"*.example.com\"]}\n"
    "    san_required: true\n";

static void client_cert(const char *name, X509 *opca, EVP_PKEY *opca_key)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	harness_write_credential(dir, name, make_cert(name, k, opca, opca_key, 0, NULL), k);
}

static void cad_start(void)
{
	cad_pid = harness_cad_start(&site, at(etc, "cad.yaml"), at(dir, "cad.log"), NULL);
}

/* Its exit is checked (status 0, no sanitizer report): harness_bad_exits fails the suite. */
static void cad_stop(void)
{
	harness_cad_stop(&cad_pid, at(dir, "cad.log"), 0);
}

static void setup(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	EVP_PKEY *ik, *opca_key;
	X509 *x, *opca;
	char conf[4096], clients[512], bin[512], cert[600];
	int port;

	harness_setup_phase = 1; /* the harness's helpers clean up too if they fail */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* The operator (this uid) may sign, generate, and wrap and unwrap with backup-2026. */
	snprintf(clients, sizeof(clients),
	         "  - name: operator\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [\"*\", generate, wrap, unwrap]\n",
	         (unsigned)getuid());
	if (harness_start(&h, &(struct harness_opts){.clients_yaml = clients}) != 0)
		die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	snprintf(etc, sizeof(etc), "%s/etc", dir);
	mkdir(etc, 0700);
	c = keyd_client_new(NULL, 0);
	if (!c ||
	    keyd_client_generate(c, "issuing-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "audit-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "backup-2026", KEYD_KEY_AES, 256, &k, &kerr))
		die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);

	ik = harness_keyd_key("issuing-p256");
	x = make_cert("hsmca backup test issuing CA", ik, NULL, ik, 1, NULL);
	harness_write_cert(at(etc, "issuing.pem"), x, 0);
	X509_free(x);
	EVP_PKEY_free(ik);
	opca = harness_opca(etc, "hsmca backup test operator CA", &opca_key);
	harness_write_cert(at(dir, "opca.pem"), opca, 0);
	client_cert("ca-admin", opca, opca_key);
	client_cert("officer", opca, opca_key);
	X509_free(opca);
	EVP_PKEY_free(opca_key);

	db = harness_pg_migrated(&pg, "bak");
	harness_db_principal(db, dir, "officer", "officer", "");
	db_close(db);

	port = harness_free_port();
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	snprintf(conf, sizeof(conf), config_fmt, port, etc, etc, etc, pg.app_ci, etc);
	harness_write_text(at(etc, "cad.yaml"), conf);
	snprintf(bin, sizeof(bin), "%s/ca-core/cad/hsmca-cad", getenv("HSMCA_BUILD"));
	snprintf(cert, sizeof(cert), "%s/ca-admin.pem", dir);
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	{
		char *argv[] = {bin,
		                "--config",
		                (char *)at(etc, "cad.yaml"),
		                "--bootstrap-admin",
		                "ca-admin",
		                "--admin-cert",
		                cert,
		                NULL};
		if (harness_run(argv, NULL) != 0)
			die("bootstrap");
	}
	cad_start();
	harness_setup_phase = 0;
}

static void teardown(void)
{
	cad_stop();
	harness_suite_end(&h, &pg, NULL, NULL, prov_keyd, prov_default);
}

static void cleanup(void)
{
	cad_stop();
	harness_pg_remove(&pg);
	if (h.dir[0])
		harness_stop(&h);
}

/* hsmca backup ARCHIVE of the running service: the database, cad's configuration and TLS
 * credential, the CA certificates, and (with_token) SoftHSM's token folder. */
static int backup_to(const char *archive, int with_token)
{
	return hsmca("backup", archive, "--key", "backup-2026", "--database", pg.owner_ci,
	             "--pg-bin", PG_BIN, "--config", at(etc, "cad.yaml"), "--config",
	             at(etc, "server.key"), "--ca-cert", at(etc, "issuing.pem"), "--ca-cert",
	             at(etc, "opca.pem"), "--ca-cert", at(etc, "server.pem"),
	             with_token ? "--token-dir" : (char *)NULL, h.tokendir, (char *)NULL);
}

START_TEST(backup_wipe_restore_and_the_service_continues)
{
	char archive[600], *before, *after;
	struct db_audit_report r0, r1;
	long long certs0;
	size_t n1, n2;
	uint8_t *a, *b;
	json_t *o = NULL;
	char path[128];
	struct stat st;

	before = issue("before.example.com");
	certs0 = count("SELECT count(*) FROM certificates");
	r0 = audit();
	ck_assert_int_eq(r0.finding, DB_AUDIT_INTACT);
	snprintf(archive, sizeof(archive), "%s/full.hsmcabak", dir);
	ck_assert_msg(backup_to(archive, 0) == 0, "hsmca backup: %s", cli_err);
	ck_assert_int_eq(stat(archive, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* Encrypted: the CA certificate's bytes are not in the archive. */
	a = slurp(archive, &n1);
	b = slurp(at(etc, "issuing.pem"), &n2);
	ck_assert_ptr_null(memmem(a, n1, b + 30, 40));
	free(a);
	free(b);
	/* Never overwrites. */
	ck_assert_int_ne(backup_to(archive, 0), 0);
	ck_assert_msg(strstr(cli_err, "exists already"), "%s", cli_err);

	/* Restoring over a live service is refused before anything changes. */
	ck_assert_int_ne(hsmca("restore", archive, "--in-place", "--root", etc, "--database",
	                       pg.owner_ci, "--pg-bin", PG_BIN, (char *)NULL),
	                 0);
	ck_assert_msg(strstr(cli_err, "exists: restore never overwrites"), "%s", cli_err);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs0);

	/* Disaster: the service stops, the database and the configuration are gone; the HSM
	 * (here keyd's token) survives, as a hardware HSM would. */
	cad_stop();
	sql_ok("DROP OWNED BY hsmca"); /* every table, function and type of hsmca's */
	ck_assert_int_eq(count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 0);
	unlink(at(etc, "cad.yaml"));
	unlink(at(etc, "server.key"));
	unlink(at(etc, "issuing.pem"));
	unlink(at(etc, "opca.pem"));
	unlink(at(etc, "server.pem"));

	ck_assert_msg(hsmca("restore", archive, "--in-place", "--root", etc, "--database",
	                    pg.owner_ci, "--pg-bin", PG_BIN, (char *)NULL) == 0,
	              "hsmca restore: %s", cli_err);
	ck_assert_int_eq(stat(at(etc, "server.key"), &st), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs0);

	/* The service comes back: the old certificate is known, issuance continues, and the
	 * audit chain verifies across the restore. */
	cad_start();
	snprintf(path, sizeof(path), "/api/v1/certificates/%s", before);
	ck_assert_int_eq(api("officer", "GET", path, NULL, &o), 200);
	json_decref(o);
	after = issue("after.example.com");
	ck_assert_str_ne(before, after);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs0 + 1);
	r1 = audit();
	ck_assert_msg(r1.finding == DB_AUDIT_INTACT, "audit after restore: %s", r1.detail);
	ck_assert_int_gt(r1.head_seq, r0.head_seq);
	/* OCSP and CRL numbers across a restore: tests/integration/quickstart_smoke.sh restores a
	 * full archive under the running quickstart (with hsmca-ocspd and hsmca-crld) and checks
	 * them there. */
	free(before);
	free(after);
}
END_TEST

/* Restore into a fresh folder; 0 or the CLI's exit status. */
static int restore_into(const char *archive, const char *name)
{
	return hsmca("restore", archive, "--into", at(dir, name), "--database", pg.owner_ci,
	             "--pg-bin", PG_BIN, (char *)NULL);
}

static int folder_empty(const char *path)
{
	char *argv[] = {"rmdir", (char *)path, NULL};
	return harness_run(argv, NULL) == 0; /* rmdir succeeds only on an empty folder */
}

START_TEST(a_changed_archive_is_refused_and_changes_nothing)
{
	char archive[600], bad[600];
	long long certs = count("SELECT count(*) FROM certificates");
	uint8_t *a;
	size_t n;

	snprintf(archive, sizeof(archive), "%s/tag.hsmcabak", dir);
	snprintf(bad, sizeof(bad), "%s/tag-bad.hsmcabak", dir);
	ck_assert_msg(backup_to(archive, 1) == 0, "hsmca backup: %s", cli_err);
	a = slurp(archive, &n);
	/* One bit of the ciphertext. */
	a[n / 2] ^= 0x04;
	spew(bad, a, n);
	ck_assert_int_ne(restore_into(bad, "r1"), 0);
	ck_assert_msg(strstr(cli_err, "authentication tag does not check"), "%s", cli_err);
	ck_assert(folder_empty(at(dir, "r1")));
	/* The tag itself, and a truncated archive. */
	a[n / 2] ^= 0x04;
	a[n - 1] ^= 0x80;
	unlink(bad);
	spew(bad, a, n);
	ck_assert_int_ne(restore_into(bad, "r2"), 0);
	ck_assert_msg(strstr(cli_err, "authentication tag does not check"), "%s", cli_err);
	unlink(bad);
	spew(bad, a, n - 100);
	ck_assert_int_ne(restore_into(bad, "r3"), 0);
	/* The header (the wrapped data key): keyd refuses to unwrap it. */
	a[n - 1] ^= 0x80;
	a[8 + 2 + strlen("backup-2026") + 2 + 20] ^= 0x01;
	unlink(bad);
	spew(bad, a, n);
	ck_assert_int_ne(restore_into(bad, "r4"), 0);
	ck_assert_msg(strstr(cli_err, "does not authenticate"), "%s", cli_err);
	free(a);
	/* The intact archive still checks, but the database is not empty: refused as well. */
	ck_assert_int_ne(restore_into(archive, "r5"), 0);
	ck_assert_msg(strstr(cli_err, "restore only into an empty database"), "%s", cli_err);
	ck_assert(folder_empty(at(dir, "r5")));
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs);
}
END_TEST

/* Unseal archive, change its contents with edit, seal it again under the same key: the tag
 * then checks, and only the manifest can tell. */
static void reseal(const char *archive, const char *out, void (*edit)(uint8_t *, size_t *))
{
	char plain[600], err[512], label[80];
	uint8_t *p;
	size_t n;

	snprintf(plain, sizeof(plain), "%s/contents-%d", dir, (int)getpid());
	unlink(plain);
	ck_assert_msg(backup_unseal(archive, plain, NULL, label, sizeof(label), err, sizeof(err)) ==
	                  0,
	              "%s", err);
	p = slurp(plain, &n);
	p = realloc(p, n + 64);
	edit(p, &n);
	unlink(plain);
	spew(plain, p, n);
	free(p);
	unlink(out);
	ck_assert_msg(backup_seal(plain, out, label, NULL, err, sizeof(err)) == 0, "%s", err);
	unlink(plain);
}

/* Flip the last byte of the last file that has any (the container's entries are u16 name
 * length | name | u64 size | bytes; a token's lock files are empty, and which file comes last
 * depends on the token folder's order). */
static void flip_last_byte(uint8_t *p, size_t *n)
{
	size_t at = 0, last = 0;

	while (at + 2 <= *n) {
		size_t name = (size_t)p[at] << 8 | p[at + 1], size = 0;
		at += 2 + name;
		ck_assert_uint_le(at + 8, *n);
		for (int i = 0; i < 8; i++)
			size = size << 8 | p[at + (size_t)i];
		at += 8;
		ck_assert_uint_le(at + size, *n);
		if (size)
			last = at + size - 1;
		at += size;
	}
	ck_assert_uint_gt(last, 0);
	p[last] ^= 0x01;
}

static void unchanged(uint8_t *p, size_t *n)
{
	(void)p;
	(void)n;
}

static void drop_last_byte(uint8_t *p, size_t *n)
{
	(void)p;
	(*n)--;
}

static void append_entry(uint8_t *p, size_t *n)
{
	static const uint8_t extra[] = {0, 5, 'e', 'x', 't', 'r', 'a', 0, 0, 0, 0, 0, 0, 0, 1, 'x'};
	memcpy(p + *n, extra, sizeof(extra));
	*n += sizeof(extra);
}

/* Restore --in-place writes only below its --root folders, judged through the symlinks that
 * exist at restore time: a file whose original path lies elsewhere, or whose folder has become
 * a symlink leading out, is refused before anything is written. */
START_TEST(in_place_writes_only_below_the_roots)
{
	char archive[600], cfg[600], sub[600], outside[600], link_to[600];
	struct stat st;

	mkdir(at(dir, "cfgroot"), 0700);
	snprintf(sub, sizeof(sub), "%s", at(at(dir, "cfgroot"), "sub"));
	mkdir(sub, 0700);
	snprintf(cfg, sizeof(cfg), "%s", at(sub, "x.yaml"));
	harness_write_text(cfg, "x: 1\n");
	snprintf(outside, sizeof(outside), "%s", at(dir, "outside"));
	mkdir(outside, 0700);
	snprintf(archive, sizeof(archive), "%s/roots.hsmcabak", dir);
	ck_assert_msg(hsmca("backup", archive, "--key", "backup-2026", "--database", pg.owner_ci,
	                    "--pg-bin", PG_BIN, "--config", cfg, (char *)NULL) == 0,
	              "hsmca backup: %s", cli_err);
	unlink(cfg);
	rmdir(sub);
	/* Without a root, and with a root the path is not below. */
	ck_assert_int_eq(hsmca("restore", archive, "--in-place", "--files-only", (char *)NULL), 1);
	ck_assert_msg(strstr(cli_err, "--in-place needs --root"), "%s", cli_err);
	ck_assert_int_eq(hsmca("restore", archive, "--in-place", "--files-only", "--root", outside,
	                       (char *)NULL),
	                 1);
	ck_assert_msg(strstr(cli_err, "is outside the restore roots"), "%s", cli_err);
	ck_assert_int_ne(stat(cfg, &st), 0);
	/* The folder is now a symlink leading out of the root: refused, nothing written there. */
	snprintf(link_to, sizeof(link_to), "%s", outside);
	ck_assert_int_eq(symlink(link_to, sub), 0);
	ck_assert_int_eq(hsmca("restore", archive, "--in-place", "--files-only", "--root",
	                       at(dir, "cfgroot"), (char *)NULL),
	                 1);
	ck_assert_msg(strstr(cli_err, "is outside the restore roots") && strstr(cli_err, outside),
	              "%s", cli_err);
	ck_assert(folder_empty(outside));
	/* As it was: restored below the root. */
	unlink(sub);
	ck_assert_msg(hsmca("restore", archive, "--in-place", "--files-only", "--root",
	                    at(dir, "cfgroot"), (char *)NULL) == 0,
	              "%s", cli_err);
	ck_assert_int_eq(stat(cfg, &st), 0);
}
END_TEST

START_TEST(an_archive_whose_manifest_does_not_check_is_refused)
{
	char archive[600], bad[600];

	snprintf(archive, sizeof(archive), "%s/manifest.hsmcabak", dir);
	snprintf(bad, sizeof(bad), "%s/manifest-bad.hsmcabak", dir);
	ck_assert_msg(backup_to(archive, 1) == 0, "hsmca backup: %s", cli_err);
	/* The control: resealed unchanged, the archive restores its files fine (skipping the
	 * database), so each refusal below is the edit's doing, not the reseal's. */
	reseal(archive, bad, unchanged);
	ck_assert_msg(
	    hsmca("restore", bad, "--into", at(dir, "m0"), "--files-only", (char *)NULL) == 0, "%s",
	    cli_err);
	ck_assert_int_eq(access(at(at(dir, "m0"), "config/cad.yaml"), F_OK), 0);
	reseal(archive, bad, drop_last_byte);
	ck_assert_int_ne(
	    hsmca("restore", bad, "--into", at(dir, "m1"), "--files-only", (char *)NULL), 0);
	ck_assert_msg(strstr(cli_err, "manifest does not check"), "%s", cli_err);
	ck_assert(folder_empty(at(dir, "m1")));
	reseal(archive, bad, flip_last_byte);
	ck_assert_int_ne(
	    hsmca("restore", bad, "--into", at(dir, "m2"), "--files-only", (char *)NULL), 0);
	ck_assert_msg(strstr(cli_err, "manifest does not check") && strstr(cli_err, "SHA-256"),
	              "%s", cli_err);
	ck_assert(folder_empty(at(dir, "m2")));
	reseal(archive, bad, append_entry);
	ck_assert_int_ne(
	    hsmca("restore", bad, "--into", at(dir, "m3"), "--files-only", (char *)NULL), 0);
	ck_assert_msg(strstr(cli_err, "more than it lists"), "%s", cli_err);
	/* The untouched archive restores its files into a new folder, byte for byte. */
	ck_assert_msg(
	    hsmca("restore", archive, "--into", at(dir, "m4"), "--files-only", (char *)NULL) == 0,
	    "%s", cli_err);
	{
		size_t n1, n2;
		uint8_t *x = slurp(at(etc, "cad.yaml"), &n1);
		uint8_t *y = slurp(at(at(dir, "m4"), "config/cad.yaml"), &n2);
		ck_assert_uint_eq(n1, n2);
		ck_assert_mem_eq(x, y, n1);
		free(x);
		free(y);
	}
	/* The token folder came along. */
	{
		char *argv[] = {"diff", "-r", h.tokendir, (char *)at(at(dir, "m4"), "token"), NULL};
		ck_assert_int_eq(harness_run(argv, NULL), 0);
	}
}
END_TEST

START_TEST(backup_without_the_wrap_grant_is_refused)
{
	char archive[600], clients[512];
	struct stat st;

	/* This uid may sign but not wrap. */
	snprintf(clients, sizeof(clients),
	         "  - name: operator\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [\"*\"]\n",
	         (unsigned)getuid());
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = clients}),
	                 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	snprintf(archive, sizeof(archive), "%s/denied.hsmcabak", dir);
	ck_assert_int_ne(backup_to(archive, 0), 0);
	ck_assert_msg(strstr(cli_err, "would not wrap") && strstr(cli_err, "denied"), "%s",
	              cli_err);
	ck_assert_int_ne(stat(archive, &st), 0);
}
END_TEST

/* The value of a "Name:" line of /proc/PID/status. */
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
		if (!strncmp(line, name, n) && line[n] == ':') {
			char *v = line + n + 1 + strspn(line + n + 1, " \t");
			v[strcspn(v, "\n")] = 0;
			snprintf(out, outsz, "%s", v);
		}
	fclose(f);
}

/* docs/sandbox.md: hsmca-cad started as root with `user:` drops to that user once it
 * listens, confines itself, and still issues, reaching keyd as that user. */
START_TEST(cad_dropped_to_its_user_under_its_filter_still_issues)
{
	char clients[512], v[128], want[64];
	struct passwd *pw = getpwnam("nobody");
	FILE *f;
	char *serial;

	ck_assert_ptr_nonnull(pw);
	/* keyd grants cad's user what cad needs. */
	snprintf(clients, sizeof(clients),
	         "  - {name: operator, uid: %u, keys: [\"*\"], operations: [\"*\", wrap]}\n"
	         "  - {name: cad, uid: %u, keys: [issuing-p256, audit-p256],"
	         " operations: [get-public-key, sign]}\n",
	         (unsigned)getuid(), (unsigned)pw->pw_uid);
	cad_stop();
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	ck_assert_int_eq(harness_write_config(&h, &(struct harness_opts){.clients_yaml = clients}),
	                 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	f = fopen(at(etc, "cad.yaml"), "a");
	ck_assert_ptr_nonnull(f);
	fputs("user: nobody\n", f);
	fclose(f);
	/* As an operator would: cad's user can read its TLS credential (cad reads it after the
	 * switch, when it sets up TLS). */
	ck_assert_int_eq(chmod(etc, 0711), 0);
	/* ... and reach the database's socket (the test cluster admits only its owner and root;
	 * a real server's pg_hba.conf and socket group decide this). */
	ck_assert_int_eq(chmod(pg.dir, 0711), 0);
	ck_assert_int_eq(chmod(at(pg.dir, ".s.PGSQL.5432"), 0777), 0);
	cad_start();
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", (unsigned)pw->pw_uid, (unsigned)pw->pw_uid,
	         (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
	proc_status(cad_pid, "Uid", v, sizeof(v));
	ck_assert_str_eq(v, want);
	proc_status(cad_pid, "Seccomp", v, sizeof(v));
	ck_assert_str_eq(v, "2");
	proc_status(cad_pid, "NoNewPrivs", v, sizeof(v));
	ck_assert_str_eq(v, "1");
	proc_status(cad_pid, "CapEff", v, sizeof(v));
	ck_assert_str_eq(v, "0000000000000000");
	serial = issue("sandboxed.example.com");
	ck_assert_ptr_nonnull(serial);
	free(serial);
	/* cad switched before it connected: keyd saw cad's user, not root. */
	snprintf(want, sizeof(want), "peer_uid=%u", (unsigned)pw->pw_uid);
	ck_assert_msg(harness_log_contains(&h, want), "keyd never saw %s", want);
	snprintf(want, sizeof(want), "peer_uid=0 peer_pid=%d", (int)cad_pid);
	ck_assert_msg(!harness_log_contains(&h, want), "cad reached keyd as root");
}
END_TEST

/* CK_NOFORK: Check's timeout does nothing; each test gets a deadline of its own. */
static void watchdog_arm(void)
{
	harness_watchdog_arm("test_backup", 300);
}

int main(void)
{
	Suite *s = suite_create("backup");
	TCase *tc = tcase_create("backup");
	SRunner *sr;
	int failed;

	harness_die_init("test_backup", cleanup);
	setup();
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, watchdog_arm, harness_watchdog_disarm);
	tcase_add_test(tc, backup_wipe_restore_and_the_service_continues);
	tcase_add_test(tc, a_changed_archive_is_refused_and_changes_nothing);
	tcase_add_test(tc, an_archive_whose_manifest_does_not_check_is_refused);
	tcase_add_test(tc, in_place_writes_only_below_the_roots);
	tcase_add_test(tc, backup_without_the_wrap_grant_is_refused);
	tcase_add_test(tc, cad_dropped_to_its_user_under_its_filter_still_issues);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* One process: the cases restart cad and keyd, whose pids teardown must know. */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	teardown();
	failed += harness_bad_exits;
	return failed ? 1 : 0;
}
