/* hsmca recover SERIAL --out FILE.p12 (docs/key-recovery.md): open an archived subscriber key
 * under an approved key.recovery request, on the keyd host, with this user's own keyd grant
 * (unwrap on the archive key), and write it as a fresh PKCS#12. The approval is used once. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "cli.h"
#include "cli_approval.h"
#include "keyd_client.h"

#define AD_PREFIX "hsmca-key-archive-v1:" /* as hsmca-cad archives (cad_keygen.c) */
#define PASSWORD_MAX 1024

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: hsmca recover SERIAL --out FILE.p12 [--password-file F] [--database CI]\n"
	        "                     [--socket P]\n"
	        "Recover the archived key of certificate SERIAL under an approved key.recovery\n"
	        "request (asked at POST /api/v1/certificates/SERIAL/recover, approved by a second\n"
	        "officer), on the keyd host: keyd unwraps the archive's data key with this user's\n"
	        "grant, the key is checked against the certificate and written with the\n"
	        "certificate as a new PKCS#12 (mode 0600) under the password. The request is then\n"
	        "executed: a second recovery needs a new one.\n"
	        "  --out F            the PKCS#12 to write (must not exist)\n"
	        "  --password-file F  its password (first line, 8..1024 bytes); default: asked\n"
	        "  --database CI      the database (libpq); default $HSMCA_APPROVALS_DATABASE or\n"
	        "                     libpq's PG* variables\n"
	        "  --socket P         keyd's socket; default $HSMCA_KEYD_SOCKET\n");
}

static int read_password(const char *file, char *pw, size_t sz, char *err, size_t errsz)
{
	FILE *f;
	size_t n;

	if (!file) {
		if (EVP_read_pw_string_min(pw, 8, (int)sz - 1, "PKCS#12 password: ", 1) != 0) {
			snprintf(err, errsz, "no password given");
			return -1;
		}
	} else {
		if (!(f = fopen(file, "r"))) {
			snprintf(err, errsz, "%s: %s", file, strerror(errno));
			return -1;
		}
		if (!fgets(pw, (int)sz, f))
			pw[0] = '\0';
		fclose(f);
		pw[strcspn(pw, "\r\n")] = '\0';
	}
	n = strlen(pw);
	if (n < 8 || n > PASSWORD_MAX) {
		snprintf(err, errsz, "the password must have 8..%d bytes", PASSWORD_MAX);
		return -1;
	}
	return 0;
}

/* Why no approved request fits, from the newest key.recovery request for hex. */
static void explain(struct db *db, const char *hex, char *err, size_t errsz)
{
	struct db_approval_filter f = {
	    .state = -1, .kind = "key.recovery", .target = hex, .limit = 1};
	struct db_approval *rows = NULL;
	struct db_err derr = {0};
	size_t n = 0;

	if (db_approval_list(db, &f, &rows, &n, &derr) != DB_OK || !n)
		snprintf(err, errsz,
		         "no key.recovery request for certificate %s: an officer asks at "
		         "POST /api/v1/certificates/%s/recover, another officer approves",
		         hex, hex);
	else if (rows[0].state == DB_APPROVAL_PENDING)
		snprintf(err, errsz,
		         "key.recovery request %lld for certificate %s is pending (%d of %d "
		         "approvals): not approved yet",
		         (long long)rows[0].id, hex, rows[0].approvals, rows[0].required);
	else
		snprintf(err, errsz,
		         "key.recovery request %lld for certificate %s is %s: a recovery needs a "
		         "new approved request",
		         (long long)rows[0].id, hex, db_approval_state_name(rows[0].state));
	db_approval_list_free(rows, n);
}

/* Open the archive row into a key matching the certificate. NULL with err. */
static EVP_PKEY *open_archive(const struct db_key_archive *k, const char *hex, X509 *cert,
                              const char *socket_path, char *err, size_t errsz)
{
	struct keyd_client *kc = keyd_client_new(socket_path, 10000);
	struct keyd_err kerr = {0};
	uint8_t dk[64], *pt = NULL;
	size_t dklen = sizeof(dk);
	char ad[sizeof(AD_PREFIX) + 256 + 2 * DB_SERIAL_MAX + 2];
	EVP_CIPHER_CTX *cx = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	EVP_PKEY *key = NULL;
	const uint8_t *p;
	int n = 0, fin = 0;

	if (!kc || keyd_client_unwrap(kc, k->key_label, k->wrapped, k->wrapped_len, dk, &dklen,
	                              &kerr) != KEYD_OK) {
		snprintf(err, errsz, "keyd would not unwrap the archive's data key with %s: %s",
		         k->key_label, kc ? kerr.msg : "out of memory");
		goto out;
	}
	snprintf(ad, sizeof(ad), "%s%s:%s", AD_PREFIX, k->authority, hex);
	if (dklen != 32 || k->ct_len < 17 || !(pt = malloc(k->ct_len)) ||
	    !(cx = EVP_CIPHER_CTX_new()) ||
	    !EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, dk, k->nonce) ||
	    !EVP_DecryptUpdate(cx, NULL, &n, (const uint8_t *)ad, (int)strlen(ad)) ||
	    !EVP_DecryptUpdate(cx, pt, &n, k->ct, (int)k->ct_len - 16) ||
	    !EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, 16, k->ct + k->ct_len - 16) ||
	    EVP_DecryptFinal_ex(cx, pt + n, &fin) <= 0) {
		snprintf(err, errsz,
		         "the archived key of certificate %s does not decrypt (not this "
		         "certificate's archive, or changed)",
		         hex);
		goto out;
	}
	p = pt;
	if (!(p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, n + fin)) || !(key = EVP_PKCS82PKEY(p8))) {
		snprintf(err, errsz, "the archived key of certificate %s is no PKCS#8 key", hex);
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(err, errsz,
		         "the archived key does not match certificate %s's public key: wrong key",
		         hex);
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	if (pt)
		OPENSSL_clear_free(pt, k->ct_len);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_CIPHER_CTX_free(cx);
	keyd_client_free(kc);
	return key;
}

static int write_p12(const char *path, EVP_PKEY *key, X509 *cert, const char *pw, char *err,
                     size_t errsz)
{
	PKCS12 *p12 = PKCS12_create(pw, NULL, key, cert, NULL, 0, 0, 0, 0, 0);
	int fd = -1, rc = -1;
	FILE *f = NULL;

	if (!p12) {
		snprintf(err, errsz, "the PKCS#12 could not be made");
		goto out;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 ||
	    !(f = fdopen(fd, "wb"))) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (i2d_PKCS12_fp(f, p12) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errsz, "%s: could not be written", path);
		unlink(path);
		goto out;
	}
	rc = 0;
out:
	if (f && fclose(f) != 0 && rc == 0) {
		snprintf(err, errsz, "%s: could not be written", path);
		unlink(path);
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	PKCS12_free(p12);
	return rc;
}

int cmd_recover(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"database", required_argument, NULL, 'd'},
	    {"socket", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *out = NULL, *pwfile = NULL, *database = getenv("HSMCA_APPROVALS_DATABASE");
	const char *socket_path = getenv("HSMCA_KEYD_SOCKET");
	char err[1024] = "", hex[2 * DB_SERIAL_MAX + 1], pw[PASSWORD_MAX + 2], result[256];
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len = sizeof(serial);
	struct db_key_archive k = {0};
	struct db_err derr = {0};
	struct cli_approval ap = {0};
	json_t *params = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	const uint8_t *p;
	int o, ok = 0;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'o':
			out = optarg;
			break;
		case 'p':
			pwfile = optarg;
			break;
		case 'd':
			database = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || !out) {
		usage(stderr);
		return 2;
	}
	if (strlen(argv[optind]) > 2 * DB_SERIAL_MAX ||
	    db_serial_from_hex(argv[optind], serial, &serial_len) != 0) {
		fprintf(stderr, "hsmca recover: \"%.80s\" is no certificate serial (hex)\n",
		        argv[optind]);
		return 2;
	}
	if (!socket_path || !*socket_path) {
		fprintf(stderr,
		        "hsmca recover: name keyd's socket (--socket or $HSMCA_KEYD_SOCKET)\n");
		return 2;
	}
	if (database && !*database)
		database = NULL;
	db_serial_to_hex(serial, serial_len, hex);
	if (read_password(pwfile, pw, sizeof(pw), err, sizeof(err)) != 0) {
		fprintf(stderr, "hsmca recover: %s\n", err);
		return 2;
	}

	/* The approved, unused request for this serial, locked until the end. Recovery never
	 * runs without one, whatever the policy says. */
	if (cli_approval_claim(database, "key.recovery", hex, 0, &ap, err, sizeof(err)) != 0 ||
	    !ap.active) {
		struct db *db = NULL;
		if (ap.active || db_connect(database, &db, &derr) != DB_OK)
			snprintf(err + strlen(err), sizeof(err) - strlen(err), "%s",
			         err[0] ? "" : "no database to check the approval in");
		else
			explain(db, hex, err, sizeof(err));
		if (!ap.active && !err[0])
			snprintf(err, sizeof(err),
			         "key recovery needs an approved key.recovery request");
		db_close(db);
		fprintf(stderr, "hsmca recover: %s\n", err);
		OPENSSL_cleanse(pw, sizeof(pw));
		return 1;
	}
	fprintf(stderr, "hsmca recover: under approval %s\n", ap.line);
	params = json_loads(ap.a.parameters ? ap.a.parameters : "{}", 0, NULL);
	switch (db_key_archive_get(
	    ap.db, (int32_t)json_integer_value(json_object_get(params, "authority_id")), serial,
	    serial_len, &k, &derr)) {
	case DB_OK:
		break;
	case DB_ERR_NOT_FOUND:
		snprintf(err, sizeof(err), "no certificate %s", hex);
		goto done;
	default:
		snprintf(err, sizeof(err), "%s", derr.msg);
		goto done;
	}
	p = k.der;
	if (!k.archived) {
		snprintf(err, sizeof(err), "certificate %s has no archived key", hex);
		goto done;
	}
	if (!k.der || !(cert = d2i_X509(NULL, &p, (long)k.der_len))) {
		snprintf(err, sizeof(err), "certificate %s is not signed", hex);
		goto done;
	}
	if (!(key = open_archive(&k, hex, cert, socket_path, err, sizeof(err))))
		goto done;
	if (write_p12(out, key, cert, pw, err, sizeof(err)) != 0)
		goto done;
	ok = 1;
done:
	OPENSSL_cleanse(pw, sizeof(pw));
	snprintf(result, sizeof(result), "recovered the key of certificate %s", hex);
	{
		char aerr[512];
		if (cli_approval_finish(&ap, ok, ok ? result : err, 0, aerr, sizeof(aerr)) != 0) {
			if (ok)
				unlink(out);
			ok = 0;
			snprintf(err, sizeof(err), "%s", aerr);
		}
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	json_decref(params);
	db_key_archive_clear(&k);
	if (!ok) {
		fprintf(stderr, "hsmca recover: %s\n", err);
		return 1;
	}
	printf("hsmca recover: wrote %s (the key and certificate %s)\n", out, hex);
	return 0;
}
