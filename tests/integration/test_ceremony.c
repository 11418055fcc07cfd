/*
 * `hsmca ceremony run` end to end, on a throwaway SoftHSM token behind a real
 * hsmca-keyd: what an operator runs, what it writes, what it refuses, and
 * that the real `openssl` command accepts what it makes. The last test case
 * drives the library's lint and verification directly with software keys,
 * for faults that a working keyd and builder never produce.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ceremony_internal.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static char work[600];

/* ---- helpers ---- */

static void put(const char *name, const char *text)
{
	char path[900];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", work, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static int exists(const char *name)
{
	char path[900];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", work, name);
	return stat(path, &st) == 0;
}

/* Read a file of the work folder (or an absolute path); malloc'd, NUL-terminated. */
static char *slurp(const char *name, size_t *len)
{
	char path[1400];
	FILE *f;
	char *buf = malloc(1 << 20);
	size_t n;

	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", work, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s is missing", name);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

/* Run a shell command in the work folder; output (stdout+stderr) into out. */
static int sh(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int sh(char *out, size_t outsz, const char *fmt, ...)
{
	char cmd[4096], inner[3000];
	va_list ap;
	FILE *p;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(inner, sizeof(inner), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "cd '%s' && { %s ; } 2>&1", work, inner);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, outsz - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `hsmca ceremony ARGS` in the work folder. */
static int ceremony(char *out, size_t outsz, const char *args)
{
	return sh(out, outsz, "'%s' ceremony %s", getenv("HSMCA_CLI_BIN"), args);
}

static void run_ok(const char *file)
{
	static char out[1 << 16];
	char args[256];

	snprintf(args, sizeof(args), "run %s", file);
	ck_assert_msg(ceremony(out, sizeof(out), args) == 0, "%s failed:\n%s", file, out);
}

/* The system's openssl, without our test build's module folder. */
static int openssl(char *out, size_t outsz, const char *args)
{
	return sh(out, outsz, "env -u OPENSSL_MODULES -u OPENSSL_CONF openssl %s", args);
}

/* Names and sizes of the work folder, sorted: equal snapshots mean nothing was written. */
static void snapshot(char *out, size_t outsz)
{
	ck_assert_int_eq(sh(out, outsz, "ls -lA --time-style=+%%s.%%N | tail -n +2 | sort"), 0);
}

/*
 * A failed live run leaves one file: its transcript, named as failed, whose
 * name it prints. Check that file, remove it (so that snapshots before and
 * after compare) and return its text, malloc'd. NULL when the run left none,
 * which is right only when it stopped before the ceremony began (the file did
 * not parse), or when the transcript's own folder is what failed.
 */
static char *take_failed_transcript(const char *out)
{
	const char *tag = "the transcript of this failed run: ";
	const char *at = strstr(out, tag);
	char name[1200], path[1400];
	char *text;

	if (!at) {
		ck_assert_msg(
		    !strstr(out, "hsmca key ceremony transcript") ||
		        strstr(out, "the transcript of this failed run could not be written"),
		    "a failed run left no transcript:\n%s", out);
		return NULL;
	}
	at += strlen(tag);
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(at, "\n"), at);
	ck_assert_msg(strstr(name, "-FAILED-"), "%s is not named as failed", name);
	text = slurp(name, NULL);
	ck_assert_msg(strstr(text, "hsmca key ceremony transcript"), "%s", text);
	ck_assert_msg(strstr(text, "  FAILED  "), "%s", text);
	ck_assert_msg(strstr(text, "\nnext: "), "%s", text);
	ck_assert_msg(strstr(text, "\nresult: FAILED, "), "%s", text);
	ck_assert_msg(strstr(text, "--- ceremony file as run ---"), "%s", text);
	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", work, name);
	ck_assert_int_eq(unlink(path), 0);
	return text;
}

static size_t key_count(void)
{
	struct keyd_client *c = keyd_client_new(h.socket, 0);
	struct keyd_key *keys = NULL;
	struct keyd_err err;
	size_t n = 0;

	ck_assert_ptr_nonnull(c);
	ck_assert_msg(keyd_client_list(c, &keys, &n, &err) == KEYD_OK, "list: %s", err.msg);
	free(keys);
	keyd_client_free(c);
	return n;
}

static int key_exists(const char *label)
{
	struct keyd_client *c = keyd_client_new(h.socket, 0);
	struct keyd_key k;
	struct keyd_err err;
	int st = keyd_client_get_pubkey(c, label, &k, &err);

	keyd_client_free(c);
	return st == KEYD_OK;
}

static X509 *load_cert(const char *name)
{
	char path[900];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", work, name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s is missing", name);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(x);
	return x;
}

/* base with its first find replaced; malloc'd. */
static char *replace(const char *base, const char *find, const char *with)
{
	const char *at = strstr(base, find);
	char *text = malloc(strlen(base) + strlen(with) + 1);

	ck_assert_msg(at != NULL, "\"%s\" is not in the ceremony file", find);
	sprintf(text, "%.*s%s%s", (int)(at - base), base, with, at + strlen(find));
	return text;
}

static void sha256_hex(const void *p, size_t n, char *out)
{
	unsigned char md[32];

	ck_assert_int_eq(EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL), 1);
	cer_hex(md, 32, 0, out, 80);
}

/* ---- ceremony files ---- */

static const char root_yaml[] = "ceremony: root\n"
                                "description: test root\n"
                                "key:\n"
                                "  label: root\n"
                                "  type: ec-p384\n"
                                "signature:\n"
                                "  hash: sha384\n"
                                "certificate:\n"
                                "  subject:\n"
                                "    - C: DE\n"
                                "    - O: Test\n"
                                "    - CN: Test Root CA\n"
                                "  not_before: now\n"
                                "  not_after: +20 years\n"
                                "  key_usage: [key-cert-sign, crl-sign]\n"
                                "  path_length: 1\n"
                                "outputs:\n"
                                "  certificate: root.pem\n"
                                "br_exceptions:\n"
                                "  - rule: br_root_no_path_length\n"
                                "    reason: the tests need an issuer that limits the CAs "
                                "below it\n";

static const char inter_yaml[] = "ceremony: intermediate\n"
                                 "key:\n"
                                 "  label: inter\n"
                                 "  type: ec-p256\n"
                                 "issuer:\n"
                                 "  label: root\n"
                                 "  certificate: root.pem\n"
                                 "signature:\n"
                                 "  hash: sha384\n"
                                 "certificate:\n"
                                 "  subject:\n"
                                 "    - C: DE\n"
                                 "    - O: Test\n"
                                 "    - CN: Test Issuing CA\n"
                                 "  not_before: now\n"
                                 "  not_after: +10 years\n"
                                 "  key_usage: [key-cert-sign, crl-sign, digital-signature]\n"
                                 "  extended_key_usage: [server-auth, client-auth]\n"
                                 "  path_length: 0\n"
                                 "  policies:\n"
                                 "    - oid: 2.23.140.1.2.1\n"
                                 "      cps: https://pki.example.com/cps\n"
                                 "  crl_distribution_points: [http://crl.example.com/root.crl]\n"
                                 "  ocsp_urls: [http://ocsp.example.com]\n"
                                 "  ca_issuers_urls: [http://pki.example.com/root.cer]\n"
                                 "  name_constraints:\n"
                                 "    permitted: [dns:example.com, \"ip:10.0.0.0/8\", {dir: "
                                 "[{O: Test}]}]\n"
                                 "    excluded: [dns:bad.example.com]\n"
                                 "outputs:\n"
                                 "  certificate: inter.pem\n";

static const char ocsp_yaml[] = "ceremony: ocsp-signer\n"
                                "key:\n"
                                "  label: ocsp\n"
                                "  type: ec-p256\n"
                                "issuer:\n"
                                "  label: inter\n"
                                "  certificate: inter.pem\n"
                                "signature:\n"
                                "  hash: sha256\n"
                                "certificate:\n"
                                "  subject:\n"
                                "    - O: Test\n"
                                "    - CN: Test OCSP Signer\n"
                                "  not_before: now\n"
                                "  not_after: +1 year\n"
                                "  key_usage: [digital-signature]\n"
                                "  extended_key_usage: [ocsp-signing]\n"
                                "outputs:\n"
                                "  certificate: ocsp.pem\n";

/* The three above, run in order. */
static void make_hierarchy(void)
{
	put("root.yaml", root_yaml);
	put("inter.yaml", inter_yaml);
	put("ocsp.yaml", ocsp_yaml);
	run_ok("root.yaml");
	run_ok("inter.yaml");
	run_ok("ocsp.yaml");
}

/* ---- fixtures ---- */

static void start(const struct harness_opts *o)
{
	ck_assert_msg(harness_start(&h, o) == 0, "harness did not start");
	snprintf(work, sizeof(work), "%s/work", h.dir);
	ck_assert_int_eq(mkdir(work, 0755), 0);
	/* The CLI loads the provider of the test build. */
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
}

static void setup(void)
{
	start(NULL);
}

static void teardown(void)
{
	ck_assert_msg(harness_stop(&h) == 0, "hsmca-keyd did not exit cleanly: see above");
}

/* ---- the hierarchy ---- */

START_TEST(root_intermediate_ocsp_signer_chain_verifies_with_openssl)
{
	char out[1 << 14];
	X509 *ocsp, *inter;

	make_hierarchy();
	ck_assert_msg(
	    openssl(out, sizeof(out), "verify -CAfile root.pem -untrusted inter.pem ocsp.pem") == 0,
	    "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "ocsp.pem: OK"));

	ocsp = load_cert("ocsp.pem");
	ck_assert(X509_get_extended_key_usage(ocsp) & XKU_OCSP_SIGN);
	ck_assert_int_ge(X509_get_ext_by_NID(ocsp, NID_id_pkix_OCSP_noCheck, -1), 0);
	ck_assert_uint_eq(X509_get_key_usage(ocsp), KU_DIGITAL_SIGNATURE);
	ck_assert_int_eq(X509_check_ca(ocsp), 0);
	inter = load_cert("inter.pem");
	ck_assert_int_eq(X509_get_pathlen(inter), 0);
	ck_assert_int_ge(X509_get_ext_by_NID(inter, NID_name_constraints, -1), 0);
	/* AKI of each is the SKI of its issuer. */
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(ocsp),
	                                       X509_get0_subject_key_id(inter)),
	                 0);
	X509_free(ocsp);
	X509_free(inter);
}
END_TEST

START_TEST(transcript_records_operator_hashes_keys_and_the_file)
{
	char out[1 << 16], hex[80], line[256], fp[120];
	char *yaml, *pem, *tr;
	size_t ylen, plen;
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err err;

	put("root.yaml", root_yaml);
	ck_assert_int_eq(ceremony(out, sizeof(out), "run root.yaml"), 0);
	tr = slurp("root.transcript.txt", NULL);
	/* What was printed is what was kept. */
	ck_assert_ptr_nonnull(strstr(out, "result: success"));
	ck_assert_ptr_nonnull(strstr(tr, "hsmca key ceremony transcript"));
	snprintf(line, sizeof(line), "operator:             uid %u", (unsigned)getuid());
	ck_assert_ptr_nonnull(strstr(tr, line));
	ck_assert_ptr_nonnull(strstr(tr, "host:"));
	ck_assert_ptr_nonnull(strstr(tr, "hsmca version:"));
	ck_assert_ptr_nonnull(strstr(tr, "started (UTC):"));

	yaml = slurp("root.yaml", &ylen);
	sha256_hex(yaml, ylen, hex);
	snprintf(line, sizeof(line), "ceremony file sha256: %s", hex);
	ck_assert_ptr_nonnull(strstr(tr, line));
	pem = slurp("root.pem", &plen);
	sha256_hex(pem, plen, hex);
	snprintf(line, sizeof(line), "sha256 %s", hex);
	ck_assert_ptr_nonnull(strstr(tr, line));

	c = keyd_client_new(h.socket, 0);
	ck_assert_int_eq(keyd_client_get_pubkey(c, "root", &k, &err), KEYD_OK);
	keyd_client_free(c);
	cer_spki_fingerprint(k.spki, k.spki_len, fp, sizeof(fp));
	ck_assert_ptr_nonnull(strstr(tr, fp));
	ck_assert_ptr_nonnull(strstr(tr, "sensitive always-sensitive never-extractable local"));
	ck_assert_ptr_nonnull(strstr(tr, "subject:            C=DE,O=Test,CN=Test Root CA"));
	ck_assert_ptr_nonnull(strstr(tr, "serial:"));
	ck_assert_ptr_nonnull(strstr(tr, "not after:"));
	/* Every step carries a UTC time and its result. */
	ck_assert_ptr_nonnull(strstr(tr, "Z  ok      generated key pair \"root\""));
	/* The ceremony file itself closes the transcript. */
	ck_assert_ptr_nonnull(strstr(tr, yaml));
	free(yaml);
	free(pem);
	free(tr);
}
END_TEST

START_TEST(second_run_refuses_and_changes_nothing)
{
	char out[1 << 16], before[8192], after[8192];
	size_t keys;

	put("root.yaml", root_yaml);
	run_ok("root.yaml");
	snapshot(before, sizeof(before));
	keys = key_count();

	ck_assert_int_eq(ceremony(out, sizeof(out), "run root.yaml"), 1);
	ck_assert_msg(strstr(out, "root.yaml:18: outputs.certificate: ./root.pem already exists"),
	              "%s", out);
	free(take_failed_transcript(out));
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
	ck_assert_uint_eq(key_count(), keys);

	/* With the outputs moved away, the label is what stops it. */
	ck_assert_int_eq(sh(out, sizeof(out), "mkdir old && mv root.pem root.transcript.txt old/"),
	                 0);
	snapshot(before, sizeof(before));
	ck_assert_int_eq(ceremony(out, sizeof(out), "run root.yaml"), 1);
	ck_assert_msg(strstr(out, "root.yaml:4: key.label: a key labelled \"root\" already exists"),
	              "%s", out);
	free(take_failed_transcript(out));
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
	ck_assert_uint_eq(key_count(), keys);
}
END_TEST

START_TEST(rsa_root_with_pss_verifies)
{
	char out[1 << 14];
	X509 *x;

	put("rsa.yaml", "ceremony: root\n"
	                "key: {label: rsa-root, type: rsa-2048}\n"
	                "signature: {hash: sha256, padding: pss}\n"
	                "certificate:\n"
	                "  subject: [{C: DE}, {O: Test}, {CN: RSA Root}]\n"
	                "  not_before: 2026-01-01T00:00:00Z\n"
	                "  not_after: 2051-01-01T00:00:00Z\n"
	                "  key_usage: [key-cert-sign, crl-sign, digital-signature]\n"
	                "outputs: {certificate: rsa-root.pem, transcript: rsa.log}\n");
	run_ok("rsa.yaml");
	ck_assert(exists("rsa.log"));
	ck_assert_msg(openssl(out, sizeof(out), "verify -CAfile rsa-root.pem rsa-root.pem") == 0,
	              "%s", out);
	x = load_cert("rsa-root.pem");
	ck_assert_int_eq(X509_get_signature_nid(x), NID_rsassaPss);
	/* 2051 is a GeneralizedTime, 2026 a UTCTime. */
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
	X509_free(x);
}
END_TEST

START_TEST(cross_sign_verifies_with_openssl)
{
	char out[1 << 14];
	X509 *inter, *cross;

	put("root.yaml", root_yaml);
	put("inter.yaml", inter_yaml);
	run_ok("root.yaml");
	run_ok("inter.yaml");
	put("root2.yaml", "ceremony: root\n"
	                  "key: {label: root2, type: ec-p256}\n"
	                  "signature: {hash: sha256}\n"
	                  "certificate:\n"
	                  "  subject: [{C: DE}, {O: Other}, {CN: Other Root}]\n"
	                  "  not_before: now\n"
	                  "  not_after: +15 years\n"
	                  "  key_usage: [key-cert-sign, crl-sign]\n"
	                  "outputs: {certificate: root2.pem}\n");
	run_ok("root2.yaml");
	put("cross.yaml", "ceremony: cross-sign\n"
	                  "issuer: {label: root2, certificate: root2.pem}\n"
	                  "existing_ca: {certificate: inter.pem, label: inter}\n"
	                  "signature: {hash: sha256}\n"
	                  "certificate:\n"
	                  "  not_before: now\n"
	                  "  not_after: +5 years\n"
	                  "  key_usage: [key-cert-sign, crl-sign]\n"
	                  "  extended_key_usage: [server-auth, client-auth]\n"
	                  "  path_length: 0\n"
	                  "  policies: [{oid: 2.23.140.1.2.1}]\n"
	                  "  crl_distribution_points: [http://crl.example.com/root2.crl]\n"
	                  "  ca_issuers_urls: [http://pki.example.com/root2.der]\n"
	                  "outputs: {certificate: inter-cross.pem}\n");
	run_ok("cross.yaml");
	ck_assert_msg(openssl(out, sizeof(out), "verify -CAfile root2.pem inter-cross.pem") == 0,
	              "%s", out);
	inter = load_cert("inter.pem");
	cross = load_cert("inter-cross.pem");
	ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(inter), X509_get_subject_name(cross)),
	                 0);
	ck_assert_int_eq(
	    ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(inter), X509_get0_subject_key_id(cross)),
	    0);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(inter), X509_get0_pubkey(cross)), 1);
	X509_free(inter);
	X509_free(cross);
}
END_TEST

START_TEST(crl_verifies_with_openssl)
{
	char out[1 << 14], serial[80];
	X509 *inter;
	BIGNUM *bn;
	char *hex;

	put("root.yaml", root_yaml);
	put("inter.yaml", inter_yaml);
	run_ok("root.yaml");
	run_ok("inter.yaml");
	put("crl.yaml", "ceremony: crl\n"
	                "issuer: {label: root, certificate: root.pem}\n"
	                "signature: {hash: sha384}\n"
	                "crl:\n"
	                "  number: 7\n"
	                "  this_update: now\n"
	                "  next_update: +90 days\n"
	                "  revoked:\n"
	                "    - certificate: inter.pem\n"
	                "      revoked_at: now\n"
	                "      reason: key-compromise\n"
	                "    - serial: 1f2e3d4c5b6a\n"
	                "      revoked_at: 2026-01-02T03:04:05Z\n"
	                "      reason: cessation-of-operation\n"
	                "outputs: {crl: root.crl}\n");
	run_ok("crl.yaml");
	ck_assert_msg(
	    openssl(out, sizeof(out), "crl -in root.crl -CAfile root.pem -noout -verify") == 0,
	    "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "verify OK"));
	ck_assert_int_eq(openssl(out, sizeof(out), "crl -in root.crl -noout -text"), 0);
	inter = load_cert("inter.pem");
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(inter), NULL);
	hex = BN_bn2hex(bn);
	snprintf(serial, sizeof(serial), "Serial Number: %s", hex);
	ck_assert_msg(strstr(out, serial), "%s not in\n%s", serial, out);
	ck_assert_ptr_nonnull(strstr(out, "Key Compromise"));
	ck_assert_ptr_nonnull(strstr(out, "1F2E3D4C5B6A"));
	ck_assert_ptr_nonnull(strstr(out, "Cessation Of Operation"));
	ck_assert_ptr_nonnull(strstr(out, "X509v3 CRL Number: \n                7"));
	ck_assert_ptr_nonnull(strstr(out, "X509v3 Authority Key Identifier"));
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(inter);
}
END_TEST

START_TEST(key_ceremony_writes_keyds_public_key)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err err;
	char path[900];
	FILE *f;
	EVP_PKEY *pk;
	unsigned char *der = NULL;
	int n;

	put("key.yaml", "ceremony: key\n"
	                "key: {label: spare, type: ec-p384}\n"
	                "outputs: {public_key: spare.pub.pem}\n");
	run_ok("key.yaml");
	ck_assert(exists("key.transcript.txt"));
	snprintf(path, sizeof(path), "%s/spare.pub.pem", work);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(pk);
	n = i2d_PUBKEY(pk, &der);
	c = keyd_client_new(h.socket, 0);
	ck_assert_int_eq(keyd_client_get_pubkey(c, "spare", &k, &err), KEYD_OK);
	keyd_client_free(c);
	ck_assert_int_eq(n, (int)k.spki_len);
	ck_assert_int_eq(memcmp(der, k.spki, k.spki_len), 0);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
}
END_TEST

START_TEST(intermediate_for_existing_key_is_certified)
{
	struct keyd_client *c = keyd_client_new(h.socket, 0);
	struct keyd_key k;
	struct keyd_err err;
	char out[1 << 14];
	char *yaml;
	X509 *x;
	unsigned char *der = NULL;
	int n;

	ck_assert_int_eq(keyd_client_generate(c, "made-earlier", KEYD_KEY_RSA, 3072, &k, &err),
	                 KEYD_OK);
	keyd_client_free(c);
	put("root.yaml", root_yaml);
	run_ok("root.yaml");
	/* An existing key of any type instead of a new P-256 key. */
	yaml = replace(inter_yaml, "  label: inter\n  type: ec-p256\n",
	               "  label: made-earlier\n  existing: yes\n");
	put("inter.yaml", yaml);
	free(yaml);
	run_ok("inter.yaml");
	ck_assert_msg(openssl(out, sizeof(out), "verify -CAfile root.pem inter.pem") == 0, "%s",
	              out);
	x = load_cert("inter.pem");
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	ck_assert_int_eq(n, (int)k.spki_len);
	ck_assert_int_eq(memcmp(der, k.spki, k.spki_len), 0);
	OPENSSL_free(der);
	X509_free(x);
}
END_TEST

START_TEST(dry_run_checks_but_makes_nothing)
{
	char out[1 << 16], before[8192], after[8192];

	put("root.yaml", root_yaml);
	snapshot(before, sizeof(before));
	ck_assert_int_eq(ceremony(out, sizeof(out), "run root.yaml --dry-run"), 0);
	ck_assert_ptr_nonnull(strstr(out, "dry run"));
	ck_assert_ptr_nonnull(strstr(out, "passes the RFC 5280 checks"));
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
	ck_assert_uint_eq(key_count(), 0);
	ck_assert(!key_exists("root"));
}
END_TEST

START_TEST(issuer_label_naming_another_key_stops_before_anything)
{
	struct keyd_client *c = keyd_client_new(h.socket, 0);
	struct keyd_key k;
	struct keyd_err err;
	char out[1 << 16], before[8192], after[8192];

	put("root.yaml", root_yaml);
	run_ok("root.yaml");
	/* keyd holds another key under the label the file names as the root's. */
	ck_assert_int_eq(
	    keyd_client_generate(c, "imposter", KEYD_KEY_EC, KEYD_CURVE_P384, &k, &err), KEYD_OK);
	keyd_client_free(c);
	put("inter.yaml", "ceremony: intermediate\n"
	                  "key: {label: inter, type: ec-p256}\n"
	                  "issuer: {label: imposter, certificate: root.pem}\n"
	                  "signature: {hash: sha384}\n"
	                  "certificate:\n"
	                  "  subject: [{CN: Inter}]\n"
	                  "  not_before: now\n"
	                  "  not_after: +1 year\n"
	                  "  key_usage: [key-cert-sign]\n"
	                  "  path_length: 0\n"
	                  "outputs: {certificate: inter.pem}\n");
	snapshot(before, sizeof(before));
	ck_assert_int_eq(ceremony(out, sizeof(out), "run inter.yaml"), 1);
	ck_assert_msg(strstr(out, "inter.yaml:3: issuer.label: keyd's key \"imposter\" is not the "
	                          "key of ./root.pem"),
	              "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "no key was generated and no output was written"));
	free(take_failed_transcript(out));
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
	/* Stopped before generating: the new label is still free. */
	ck_assert(!key_exists("inter"));
}
END_TEST

/* The offline-root guide: two tokens, two keyds; only public files move between them. */
START_TEST(offline_root_certifies_online_key_by_csr)
{
	struct harness online;
	char out[1 << 16], args[700], fp[120], line[200];
	char *tr_key, *tr_inter;
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err err;

	ck_assert_msg(harness_start(&online, NULL) == 0, "second harness did not start");
	setenv("HSMCA_KEYD_SOCKET", h.socket, 1); /* the offline keyd stays the default */
	put("online-key.yaml", "ceremony: key\n"
	                       "key: {label: online-issuing, type: ec-p256}\n"
	                       "outputs: {public_key: online-issuing.pub.pem, csr: "
	                       "online-issuing.csr}\n");
	snprintf(args, sizeof(args), "run online-key.yaml --socket %s", online.socket);
	ck_assert_msg(ceremony(out, sizeof(out), args) == 0, "%s", out);
	ck_assert_msg(openssl(out, sizeof(out), "req -in online-issuing.csr -noout -verify") == 0,
	              "%s", out);

	put("root.yaml", root_yaml);
	run_ok("root.yaml");
	put("inter.yaml", "ceremony: intermediate\n"
	                  "key: {csr: online-issuing.csr, type: ec-p256}\n"
	                  "issuer: {label: root, certificate: root.pem}\n"
	                  "signature: {hash: sha384}\n"
	                  "certificate:\n"
	                  "  subject: [{C: DE}, {O: Test}, {CN: Online Issuing CA}]\n"
	                  "  not_before: now\n"
	                  "  not_after: +5 years\n"
	                  "  key_usage: [key-cert-sign, crl-sign]\n"
	                  "  extended_key_usage: [server-auth, client-auth]\n"
	                  "  path_length: 0\n"
	                  "  policies: [{oid: 2.23.140.1.2.1}]\n"
	                  "  crl_distribution_points: [http://crl.example.com/root.crl]\n"
	                  "  ca_issuers_urls: [http://pki.example.com/root.der]\n"
	                  "outputs: {certificate: online-issuing.pem}\n");
	run_ok("inter.yaml");
	ck_assert_msg(openssl(out, sizeof(out), "verify -CAfile root.pem online-issuing.pem") == 0,
	              "%s", out);
	/* The offline keyd never had the online key; both transcripts name its fingerprint. */
	ck_assert(!key_exists("online-issuing"));
	c = keyd_client_new(online.socket, 0);
	ck_assert_int_eq(keyd_client_get_pubkey(c, "online-issuing", &k, &err), KEYD_OK);
	keyd_client_free(c);
	cer_spki_fingerprint(k.spki, k.spki_len, fp, sizeof(fp));
	snprintf(line, sizeof(line), "public key (SPKI) sha256: %s", fp);
	tr_key = slurp("online-key.transcript.txt", NULL);
	tr_inter = slurp("inter.transcript.txt", NULL);
	ck_assert_ptr_nonnull(strstr(tr_key, line));
	ck_assert_ptr_nonnull(strstr(tr_inter, fp));
	free(tr_key);
	free(tr_inter);
	ck_assert_msg(harness_stop(&online) == 0, "hsmca-keyd did not exit cleanly: see above");
}
END_TEST

START_TEST(cli_help_and_usage)
{
	char out[8192];

	ck_assert_int_eq(ceremony(out, sizeof(out), "--help"), 0);
	ck_assert_ptr_nonnull(strstr(out, "hsmca ceremony run FILE"));
	ck_assert_ptr_nonnull(strstr(out, "--dry-run"));
	ck_assert_int_eq(ceremony(out, sizeof(out), "run --help"), 0);
	ck_assert_int_eq(ceremony(out, sizeof(out), ""), 2);
	ck_assert_int_eq(ceremony(out, sizeof(out), "run"), 2);
	ck_assert_ptr_nonnull(strstr(out, "give its FILE"));
	ck_assert_int_eq(ceremony(out, sizeof(out), "frob x.yaml"), 2);
	ck_assert_int_eq(ceremony(out, sizeof(out), "run a.yaml b.yaml"), 2);
	ck_assert_int_eq(ceremony(out, sizeof(out), "run nope.yaml"), 1);
	ck_assert_ptr_nonnull(strstr(out, "nope.yaml: cannot open"));
	ck_assert_int_eq(sh(out, sizeof(out), "'%s' --help", getenv("HSMCA_CLI_BIN")), 0);
	ck_assert_ptr_nonnull(strstr(out, "ceremony"));
}
END_TEST

/* ---- a failure after the key was made ---- */

static char no_sign_acl[512];

/* keyd lets this uid make keys and read public keys, but not sign. */
static void setup_no_sign(void)
{
	struct harness_opts o = {0};

	snprintf(no_sign_acl, sizeof(no_sign_acl),
	         "  - name: ceremony\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [get-public-key, list-keys, status, generate]\n",
	         (unsigned)getuid());
	o.clients_yaml = no_sign_acl;
	start(&o);
}

START_TEST(failure_after_generation_says_the_key_remains)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err err;
	char out[1 << 16], before[8192], after[8192], fp[120], line[300];
	char *text;

	put("root.yaml", root_yaml);
	snapshot(before, sizeof(before));
	ck_assert_int_eq(ceremony(out, sizeof(out), "run root.yaml"), 1);
	ck_assert_msg(strstr(out, "the key pair \"root\" was generated and REMAINS ON THE TOKEN"),
	              "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "denied"));
	ck_assert_msg(strstr(out, "the transcript of this failed run: ./root.transcript-FAILED-"),
	              "%s", out);
	ck_assert(key_exists("root"));

	/* On record: the failure, the key it left (label and public key), what to do. */
	text = take_failed_transcript(out);
	ck_assert_ptr_nonnull(text);
	c = keyd_client_new(h.socket, 0);
	ck_assert_int_eq(keyd_client_get_pubkey(c, "root", &k, &err), KEYD_OK);
	keyd_client_free(c);
	cer_spki_fingerprint(k.spki, k.spki_len, fp, sizeof(fp));
	snprintf(line, sizeof(line),
	         "\nkey left on the token: label \"root\", public key (SPKI) sha256 %s\n", fp);
	ck_assert_msg(strstr(text, line), "no \"%s\" in\n%s", line + 1, text);
	ck_assert_msg(strstr(text, "  FAILED  "), "%s", text);
	ck_assert_ptr_nonnull(strstr(text, "denied"));
	ck_assert_ptr_nonnull(strstr(text, "REMAINS ON THE TOKEN"));
	ck_assert_ptr_nonnull(strstr(text, "key.existing: true"));
	ck_assert_ptr_nonnull(strstr(text, root_yaml));
	free(text);
	/* ... and nothing else: no certificate, no transcript of success, no temporary file. */
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
}
END_TEST

/* A failed transcript goes to the transcript's folder, each failure its own file; the
 * outputs' folder stays empty. */
START_TEST(failed_transcript_goes_to_the_transcript_folder)
{
	static char out1[1 << 16], out2[1 << 16];
	char listing[4096];
	char *yaml, *text;

	ck_assert_int_eq(sh(listing, sizeof(listing), "mkdir out records"), 0);
	yaml = replace(root_yaml, "  certificate: root.pem\n",
	               "  certificate: out/root.pem\n  transcript: records/root-2026.txt\n");
	put("root.yaml", yaml);
	free(yaml);
	ck_assert_int_eq(ceremony(out1, sizeof(out1), "run root.yaml"), 1);
	ck_assert_int_eq(ceremony(out2, sizeof(out2), "run root.yaml"), 1);
	ck_assert_msg(strstr(out2, "a key labelled \"root\" already exists"), "%s", out2);
	ck_assert_int_eq(
	    sh(listing, sizeof(listing), "ls -A records | grep -c '^root-2026-FAILED-'"), 0);
	ck_assert_str_eq(listing, "2\n");

	ck_assert_msg(
	    strstr(out1, "the transcript of this failed run: ./records/root-2026-FAILED-"), "%s",
	    out1);
	text = take_failed_transcript(out1);
	ck_assert_ptr_nonnull(strstr(text, "REMAINS ON THE TOKEN"));
	free(text);
	text = take_failed_transcript(out2);
	ck_assert_ptr_nonnull(strstr(text, "no key was generated and no output was written"));
	ck_assert_ptr_null(strstr(text, "REMAINS"));
	free(text);
	ck_assert_int_eq(sh(listing, sizeof(listing), "ls -A out records"), 0);
	ck_assert_str_eq(listing, "out:\n\nrecords:\n");
}
END_TEST

/* ---- bad ceremony files: one error each, naming file, line and field; nothing written ---- */

static const char root_base[] = "ceremony: root\n"                         /* 1 */
                                "key:\n"                                   /* 2 */
                                "  label: new-root\n"                      /* 3 */
                                "  type: ec-p256\n"                        /* 4 */
                                "signature:\n"                             /* 5 */
                                "  hash: sha256\n"                         /* 6 */
                                "certificate:\n"                           /* 7 */
                                "  subject:\n"                             /* 8 */
                                "    - O: Test\n"                          /* 9 */
                                "    - CN: New Root\n"                     /* 10 */
                                "  not_before: now\n"                      /* 11 */
                                "  not_after: +5 years\n"                  /* 12 */
                                "  key_usage: [key-cert-sign, crl-sign]\n" /* 13 */
                                "outputs:\n"                               /* 14 */
                                "  certificate: new-root.pem\n";           /* 15 */

static const char inter_base[] = "ceremony: intermediate\n"                 /* 1 */
                                 "key:\n"                                   /* 2 */
                                 "  label: new-inter\n"                     /* 3 */
                                 "  type: ec-p256\n"                        /* 4 */
                                 "issuer:\n"                                /* 5 */
                                 "  label: root\n"                          /* 6 */
                                 "  certificate: root.pem\n"                /* 7 */
                                 "signature:\n"                             /* 8 */
                                 "  hash: sha384\n"                         /* 9 */
                                 "certificate:\n"                           /* 10 */
                                 "  subject:\n"                             /* 11 */
                                 "    - O: Test\n"                          /* 12 */
                                 "    - CN: New Inter\n"                    /* 13 */
                                 "  not_before: now\n"                      /* 14 */
                                 "  not_after: +5 years\n"                  /* 15 */
                                 "  key_usage: [key-cert-sign, crl-sign]\n" /* 16 */
                                 "  path_length: 0\n"                       /* 17 */
                                 "outputs:\n"                               /* 18 */
                                 "  certificate: new-inter.pem\n";          /* 19 */

static const char ocsp_base[] = "ceremony: ocsp-signer\n"                /* 1 */
                                "key:\n"                                 /* 2 */
                                "  label: new-ocsp\n"                    /* 3 */
                                "  type: ec-p256\n"                      /* 4 */
                                "issuer:\n"                              /* 5 */
                                "  label: inter\n"                       /* 6 */
                                "  certificate: inter.pem\n"             /* 7 */
                                "signature:\n"                           /* 8 */
                                "  hash: sha256\n"                       /* 9 */
                                "certificate:\n"                         /* 10 */
                                "  subject:\n"                           /* 11 */
                                "    - CN: New OCSP\n"                   /* 12 */
                                "  not_before: now\n"                    /* 13 */
                                "  not_after: +1 year\n"                 /* 14 */
                                "  key_usage: [digital-signature]\n"     /* 15 */
                                "  extended_key_usage: [ocsp-signing]\n" /* 16 */
                                "outputs:\n"                             /* 17 */
                                "  certificate: new-ocsp.pem\n";         /* 18 */

static const char crl_base[] = "ceremony: crl\n"                /* 1 */
                               "issuer:\n"                      /* 2 */
                               "  label: root\n"                /* 3 */
                               "  certificate: root.pem\n"      /* 4 */
                               "signature:\n"                   /* 5 */
                               "  hash: sha384\n"               /* 6 */
                               "crl:\n"                         /* 7 */
                               "  number: 1\n"                  /* 8 */
                               "  this_update: now\n"           /* 9 */
                               "  next_update: +30 days\n"      /* 10 */
                               "  revoked:\n"                   /* 11 */
                               "    - certificate: inter.pem\n" /* 12 */
                               "      revoked_at: now\n"        /* 13 */
                               "      reason: superseded\n"     /* 14 */
                               "outputs:\n"                     /* 15 */
                               "  crl: new.crl\n";              /* 16 */

struct bad_case {
	const char *base;
	const char *find, *replace;
	const char *expect; /* "bad.yaml:LINE: field: start of the message" */
};

static const struct bad_case bad_cases[] = {
    /* unknown fields, at the top and inside a block */
    {root_base, "ceremony: root\n", "ceremony: root\nwokers: 2\n",
     "bad.yaml:2: ceremony file: unknown field \"wokers\""},
    {root_base, "  subject:", "  subjet:", "bad.yaml:8: certificate: unknown field \"subjet\""},
    /* missing fields and blocks */
    {root_base, "  label: new-root\n", "", "bad.yaml:3: key.label: missing"},
    {inter_base, "issuer:\n  label: root\n  certificate: root.pem\n", "",
     "bad.yaml:1: issuer: missing (required for an intermediate ceremony)"},
    {root_base, "signature:", "issuer: {label: root, certificate: root.pem}\nsignature:",
     "bad.yaml:5: issuer: does not apply to a root ceremony"},
    {root_base, "signature:", "key: {label: x, type: ec-p256}\nsignature:",
     "bad.yaml:5: ceremony file: field \"key\" given twice"},
    /* values */
    {root_base, "ceremony: root", "ceremony: subordinate",
     "bad.yaml:1: ceremony: unknown value \"subordinate\""},
    {root_base, "type: ec-p256", "type: rsa-1024",
     "bad.yaml:4: key.type: unknown value \"rsa-1024\""},
    {root_base, "label: new-root", "label: new root",
     "bad.yaml:3: key.label: \"new root\" is not a key label"},
    {root_base, "hash: sha256", "hash: md5", "bad.yaml:6: signature.hash: unknown value \"md5\""},
    {root_base, "  not_before: now\n  not_after: +5 years\n",
     "  not_before: 2030-01-01T00:00:00Z\n  not_after: 2029-12-31T00:00:00Z\n",
     "bad.yaml:12: certificate.not_after: 2029-12-31T00:00:00Z is not after not_before "
     "(2030-01-01T00:00:00Z)"},
    {root_base, "  not_before: now\n  not_after: +5 years\n",
     "  not_before: 2019-01-01T00:00:00Z\n  not_after: 2020-01-01T00:00:00Z\n",
     "bad.yaml:12: certificate.not_after: 2020-01-01T00:00:00Z has passed"},
    {root_base, "not_before: now", "not_before: 2026-01-01",
     "bad.yaml:11: certificate.not_before: \"2026-01-01\" is not a UTC time"},
    {root_base, "not_after: +5 years", "not_after: +5 fortnights",
     "bad.yaml:12: certificate.not_after: \"+5 fortnights\" is not a duration"},
    {inter_base, "  path_length: 0\n",
     "  path_length: 0\n  crl_distribution_points: [ftp://crl.example.com/x.crl]\n",
     "bad.yaml:18: certificate.crl_distribution_points[0]: \"ftp://crl.example.com/x.crl\" is "
     "not a URL this field accepts"},
    {inter_base, "  path_length: 0\n", "  path_length: 0\n  ocsp_urls: [\"http://ocsp x.com\"]\n",
     "bad.yaml:18: certificate.ocsp_urls[0]: \"http://ocsp x.com\" is not a URL"},
    {inter_base, "  path_length: 0\n", "  path_length: 0\n  ca_issuers_urls: [\"http://\"]\n",
     "bad.yaml:18: certificate.ca_issuers_urls[0]: \"http://\" is not a URL: no host"},
    {root_base, "  key_usage: [key-cert-sign, crl-sign]\n",
     "  key_usage: [key-cert-sign, crl-sign]\n  policies:\n    - oid: 2.23.x\n",
     "bad.yaml:15: certificate.policies[0].oid: \"2.23.x\" is not a dotted OID"},
    {inter_base, "  path_length: 0\n",
     "  path_length: 0\n  name_constraints:\n    permitted: [\"ip:10.0.0.1/8\"]\n",
     "bad.yaml:19: certificate.name_constraints.permitted[0]: \"10.0.0.1/8\" has bits set "
     "beyond its prefix length"},
    {inter_base, "  path_length: 0\n",
     "  path_length: 0\n  name_constraints:\n    excluded: [\"uri:example.com\"]\n",
     "bad.yaml:19: certificate.name_constraints.excluded[0]: expected \"dns:NAME\""},
    {crl_base, "number: 1", "number: -1", "bad.yaml:8: crl.number: \"-1\" is not a CRL number"},
    {crl_base, "reason: superseded", "reason: certificate-hold",
     "bad.yaml:14: crl.revoked[0].reason: unknown value \"certificate-hold\""},
    /* subjects */
    {root_base, "  subject:\n    - O: Test\n    - CN: New Root\n", "  subject: CN=New Root\n",
     "bad.yaml:8: certificate.subject: expected a list of attributes"},
    {root_base, "    - O: Test", "    - C: Germany",
     "bad.yaml:9: certificate.subject[0].C: \"Germany\" is not a two-letter"},
    {root_base, "    - O: Test\n", "    - O: Test\n      CN: Two\n",
     "bad.yaml:9: certificate.subject[0]: each attribute is a one-entry mapping"},
    {root_base, "    - O: Test", "    - CM: Test",
     "bad.yaml:9: certificate.subject[0]: unknown attribute \"CM\""},
    /* what a kind of certificate may carry */
    {ocsp_base, "  key_usage: [digital-signature]\n",
     "  key_usage: [digital-signature]\n  path_length: 0\n",
     "bad.yaml:16: certificate.path_length: path length applies to CA certificates only"},
    {ocsp_base, "key_usage: [digital-signature]", "key_usage: [digital-signature, key-cert-sign]",
     "bad.yaml:15: certificate.key_usage: an OCSP signer is not a CA"},
    {ocsp_base, "  extended_key_usage: [ocsp-signing]\n", "",
     "bad.yaml:11: certificate.extended_key_usage: an OCSP signer needs ocsp-signing"},
    {root_base, "key_usage: [key-cert-sign, crl-sign]", "key_usage: [crl-sign]",
     "bad.yaml:13: certificate.key_usage: a CA certificate needs key-cert-sign"},
    {root_base, "key_usage: [key-cert-sign, crl-sign]",
     "key_usage: [key-cert-sign, crl-sign, key-encipherment]",
     "bad.yaml:13: certificate.key_usage: an EC key (ec-p256) cannot encipher"},
    {root_base, "  key_usage: [key-cert-sign, crl-sign]\n",
     "  key_usage: [key-cert-sign, crl-sign]\n  extended_key_usage: [server-auth]\n",
     "bad.yaml:14: certificate.extended_key_usage: a root certificate carries no extended key "
     "usage"},
    {root_base, "  key_usage: [key-cert-sign, crl-sign]\n",
     "  key_usage: [key-cert-sign, crl-sign]\n  name_constraints:\n    permitted: "
     "[dns:example.com]\n",
     "bad.yaml:15: certificate.name_constraints: path validation does not apply a trust "
     "anchor's name constraints"},
    {root_base, "  key_usage: [key-cert-sign, crl-sign]\n",
     "  key_usage: [key-cert-sign, crl-sign]\n  ocsp_urls: [http://ocsp.example.com]\n",
     "bad.yaml:14: certificate.ocsp_urls: a self-signed root has no issuer to point to"},
    /* padding */
    {root_base, "  hash: sha256\n", "  hash: sha256\n  padding: pss\n",
     "bad.yaml:7: signature.padding: padding applies to RSA keys only; ec-p256 is an EC key"},
    {inter_base, "  hash: sha384\n", "  hash: sha384\n  padding: pss\n",
     "bad.yaml:10: signature.padding: padding applies to RSA keys only; the issuer's key is not "
     "RSA"},
    /* syntax and outputs */
    {root_base, "ceremony: root", "ceremony: [root", "YAML syntax"},
    {root_base, "  certificate: new-root.pem\n",
     "  certificate: new-root.pem\n  transcript: new-root.pem\n",
     "bad.yaml:15: outputs: \"new-root.pem\" is named for two outputs"},
    {root_base, "certificate: new-root.pem", "certificate: root.pem",
     "bad.yaml:15: outputs.certificate: ./root.pem already exists"},
    {root_base, "  certificate: new-root.pem\n",
     "  certificate: new-root.pem\n  transcript: root.transcript.txt\n",
     "bad.yaml:16: outputs.transcript: ./root.transcript.txt already exists"},
    {root_base, "certificate: new-root.pem", "certificate: nodir/new-root.pem",
     "bad.yaml:15: outputs.certificate: cannot create a file in ./nodir"},
    /* keys */
    {root_base, "label: new-root", "label: root",
     "bad.yaml:3: key.label: a key labelled \"root\" already exists on the token"},
    {inter_base, "  type: ec-p256\n", "  existing: true\n",
     "bad.yaml:3: key.label: key \"new-inter\": keyd: no-key"},
    {inter_base, "  type: ec-p256\n", "  type: rsa-2048\n  existing: true\n",
     "bad.yaml:3: key.label: key \"new-inter\""},
    /* a key on another token, by its CSR */
    {inter_base, "  label: new-inter\n  type: ec-p256\n", "  csr: tampered.csr\n",
     "bad.yaml:3: key.csr: ./tampered.csr: its signature does not verify with its own public "
     "key"},
    {inter_base, "  label: new-inter\n  type: ec-p256\n", "  csr: root.pem\n",
     "bad.yaml:3: key.csr: ./root.pem: cannot read a certificate request"},
    {inter_base, "  type: ec-p256\n", "  csr: tampered.csr\n",
     "bad.yaml:4: key.csr: a key named by its CSR lives on another token"},
    {root_base, "  label: new-root\n  type: ec-p256\n", "  csr: tampered.csr\n",
     "bad.yaml:3: key.csr: only intermediate and ocsp-signer ceremonies certify a key from a "
     "CSR"},
    /* inputs: the issuer and what the CRL lists */
    {inter_base, "certificate: root.pem", "certificate: nope.pem",
     "bad.yaml:7: issuer.certificate: ./nope.pem: cannot read a certificate"},
    {inter_base, "certificate: root.pem", "certificate: root.yaml",
     "bad.yaml:7: issuer.certificate: ./root.yaml: cannot read a certificate"},
    {inter_base, "not_after: +5 years", "not_after: +50 years",
     "bad.yaml:15: certificate.not_after: is after the issuer's notAfter"},
    {inter_base, "  label: root\n  certificate: root.pem\n",
     "  label: inter\n  certificate: inter.pem\n",
     "bad.yaml:7: issuer.certificate: ./inter.pem has path length 0"},
    {inter_base, "  label: root\n  certificate: root.pem\n",
     "  label: ocsp\n  certificate: ocsp.pem\n",
     "bad.yaml:7: issuer.certificate: ./ocsp.pem is not a CA certificate"},
    {inter_base, "  path_length: 0\n", "",
     "bad.yaml:11: certificate.path_length: the issuer allows 0 more CA level(s) below it"},
    {crl_base, "certificate: inter.pem", "certificate: ocsp.pem",
     "bad.yaml:12: crl.revoked[0].certificate: ./ocsp.pem was not issued by the issuer "
     "certificate"},
    {crl_base, "  label: root\n  certificate: root.pem\n",
     "  label: ocsp\n  certificate: ocsp.pem\n",
     "bad.yaml:4: issuer.certificate: ./ocsp.pem is not a CA certificate"},
};
#define NBAD ((int)(sizeof(bad_cases) / sizeof(bad_cases[0])))

/* A CSR whose signature was altered after signing: it proves nothing. */
static void write_tampered_csr(void)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = X509_REQ_new();
	unsigned char *der = NULL;
	char path[900];
	FILE *f;
	int n;

	if (!pk || !req || !X509_REQ_set_pubkey(req, pk) || !X509_REQ_sign(req, pk, EVP_sha256()))
		abort();
	n = i2d_X509_REQ(req, &der);
	if (n <= 0)
		abort();
	der[n - 1] ^= 0x01;
	snprintf(path, sizeof(path), "%s/tampered.csr", work);
	f = fopen(path, "wb");
	if (!f || fwrite(der, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0)
		abort();
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
}

/* Once for the whole test case, in the parent: a root, an intermediate, an OCSP signer. */
static void setup_hierarchy(void)
{
	char cmd[2048];

	if (harness_start(&h, NULL) != 0)
		abort();
	snprintf(work, sizeof(work), "%s/work", h.dir);
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	if (mkdir(work, 0755) != 0)
		abort();
	const char *files[][2] = {
	    {"root.yaml", root_yaml}, {"inter.yaml", inter_yaml}, {"ocsp.yaml", ocsp_yaml}};
	for (size_t i = 0; i < 3; i++) {
		char path[900];
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s", work, files[i][0]);
		f = fopen(path, "w");
		if (!f || fputs(files[i][1], f) < 0 || fclose(f) != 0)
			abort();
		snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' ceremony run %s >/dev/null", work,
		         getenv("HSMCA_CLI_BIN"), files[i][0]);
		if (system(cmd) != 0)
			abort();
	}
	write_tampered_csr();
}

START_TEST(bad_ceremony_file_gives_its_error_and_writes_nothing)
{
	const struct bad_case *bc = &bad_cases[_i];
	char out[1 << 16], before[8192], after[8192];
	char *text;
	size_t keys;

	text = replace(bc->base, bc->find, bc->replace);
	put("bad.yaml", text);
	free(text);
	snapshot(before, sizeof(before));
	keys = key_count();

	ck_assert_int_eq(ceremony(out, sizeof(out), "run bad.yaml"), 1);
	ck_assert_msg(strstr(out, bc->expect), "case %d: expected\n  %s\ngot\n%s", _i, bc->expect,
	              out);
	free(take_failed_transcript(out));
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
	ck_assert_uint_eq(key_count(), keys);
}
END_TEST

static void teardown_hierarchy(void)
{
	harness_stop(&h);
}

/* ---- the library's checks, with software keys ---- */

static struct ceremony *cer;
static EVP_PKEY *key_a, *key_b;

static void setup_lib(void)
{
	char err[CER_ERR_MAX];
	static const char text[] = "ceremony: root\n"
	                           "key: {label: r, type: ec-p256}\n"
	                           "signature: {hash: sha256}\n"
	                           "certificate:\n"
	                           "  subject: [{CN: Lib Root}]\n"
	                           "  not_before: 2026-01-01T00:00:00Z\n"
	                           "  not_after: 2036-01-01T00:00:00Z\n"
	                           "  key_usage: [key-cert-sign, crl-sign]\n"
	                           "outputs: {certificate: r.pem}\n";

	ck_assert_msg(ceremony_parse_mem("lib.yaml", text, strlen(text), 1790000000, &cer, err,
	                                 sizeof(err)) == 0,
	              "%s", err);
	key_a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	key_b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert_ptr_nonnull(key_a);
	ck_assert_ptr_nonnull(key_b);
}

static void teardown_lib(void)
{
	ceremony_free(cer);
	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
}

/* The root the library would build for cer, signed in software by signer. */
static X509 *lib_root(EVP_PKEY *signer)
{
	struct cer_subject_key sk = {.pub = key_a};
	char err[CER_ERR_MAX];
	X509 *x = NULL;

	ck_assert_msg(cer_cert_build(cer, &sk, NULL, &x, err, sizeof(err)) == 0, "%s", err);
	if (signer)
		ck_assert_int_gt(X509_sign(x, signer, EVP_sha256()), 0);
	return x;
}

static int lint(X509 *x, int signed_, char *err, size_t errsz)
{
	struct cer_lint l = {
	    .c = cer, .issuer_pub = key_a, .subject_pub = key_a, .signed_ = signed_};

	return cer_lint_cert(&l, x, err, errsz);
}

START_TEST(lint_accepts_what_the_builder_makes)
{
	char err[CER_ERR_MAX];
	X509 *x = lib_root(key_a);

	ck_assert_msg(lint(x, 1, err, sizeof(err)) == 0, "%s", err);
	X509_free(x);
}
END_TEST

START_TEST(signature_by_another_key_fails_verification)
{
	char err[CER_ERR_MAX];
	X509 *x = lib_root(key_b); /* keyd "pointed at the wrong key" */

	ck_assert_int_eq(cer_verify_cert_signature(x, key_a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not verify with the public key"));
	ck_assert_int_eq(lint(x, 1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not verify"));
	X509_free(x);
}
END_TEST

START_TEST(lint_refuses_short_serial)
{
	char err[CER_ERR_MAX];
	X509 *x = lib_root(NULL);
	ASN1_INTEGER *s = ASN1_INTEGER_new();

	ASN1_INTEGER_set(s, 0x1234567);
	X509_set_serialNumber(x, s);
	ck_assert_int_eq(lint(x, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at least 64 random bits"));
	ASN1_INTEGER_free(s);
	X509_free(x);
}
END_TEST

START_TEST(lint_refuses_generalized_time_before_2050)
{
	char err[CER_ERR_MAX];
	X509 *x = lib_root(NULL);
	ASN1_GENERALIZEDTIME *t = ASN1_GENERALIZEDTIME_set(NULL, cer->cert.not_after);

	X509_set1_notAfter(x, t);
	ck_assert_int_eq(lint(x, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "must be a UTCTime"));
	ASN1_GENERALIZEDTIME_free(t);
	X509_free(x);
}
END_TEST

START_TEST(lint_refuses_non_critical_basic_constraints)
{
	char err[CER_ERR_MAX];
	X509 *x = lib_root(NULL);
	int i = X509_get_ext_by_NID(x, NID_basic_constraints, -1);

	X509_EXTENSION_set_critical(X509_get_ext(x, i), 0);
	ck_assert_int_eq(lint(x, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "basicConstraints must be critical"));
	X509_free(x);
}
END_TEST

START_TEST(lint_refuses_duplicate_extension)
{
	char err[CER_ERR_MAX];
	X509 *x = lib_root(NULL);
	X509_EXTENSION *dup = X509_EXTENSION_dup(
	    X509_get_ext(x, X509_get_ext_by_NID(x, NID_subject_key_identifier, -1)));

	X509_add_ext(x, dup, -1);
	ck_assert_int_eq(lint(x, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	X509_EXTENSION_free(dup);
	X509_free(x);
}
END_TEST

START_TEST(lint_refuses_wrong_key_identifier)
{
	char err[CER_ERR_MAX];
	X509 *x = lib_root(NULL);
	struct cer_lint l = {.c = cer, .issuer_pub = key_b, .subject_pub = key_b};

	/* The certificate carries key_a; the ceremony checked key_b. */
	ck_assert_int_eq(cer_lint_cert(&l, x, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not the key the ceremony checked"));
	X509_free(x);
}
END_TEST

START_TEST(parse_resolves_relative_times_and_paths)
{
	char err[CER_ERR_MAX], a[32], b[32];
	struct ceremony *c;
	static const char text[] = "ceremony: root\n"
	                           "key: {label: r, type: rsa-4096}\n"
	                           "signature: {hash: sha512, padding: pss}\n"
	                           "certificate:\n"
	                           "  subject: [{CN: R}]\n"
	                           "  not_before: now\n"
	                           "  not_after: +2 years\n"
	                           "  key_usage: [key-cert-sign]\n"
	                           "outputs: {certificate: out/r.pem}\n";

	ck_assert_msg(ceremony_parse_mem("/srv/pki/r.yml", text, strlen(text), 1795000000, &c, err,
	                                 sizeof(err)) == 0,
	              "%s", err);
	ceremony_time_str(c->cert.not_before, a, sizeof(a));
	ceremony_time_str(c->cert.not_after, b, sizeof(b));
	ck_assert_str_eq(a, "2026-11-18T11:06:40Z");
	ck_assert_str_eq(b, "2028-11-18T11:06:40Z");
	ck_assert_str_eq(c->out.certificate.resolved, "/srv/pki/out/r.pem");
	ck_assert_str_eq(c->out.transcript.resolved, "/srv/pki/out/r.transcript.txt");
	ck_assert_int_eq(c->key.type, CER_KT_RSA4096);
	ck_assert_int_eq(c->sig.padding, CER_PAD_PSS);
	ceremony_free(c);
}
END_TEST

/* The CA/Browser Forum Baseline Requirements for CA certificates (ca-core/lint/lint_br.c):
 * an intermediate that misses what the BR require is refused before a key is made, naming the
 * rule and how to except it; a private-PKI exception with a reason lets it through, and the
 * transcript says which rule was excepted and why; an exception the certificate does not need,
 * or for no rule at all, is refused. */
START_TEST(ca_certificates_meet_the_baseline_requirements_or_say_why_not)
{
	static const char inter_fmt[] =
	    "ceremony: intermediate\n"
	    "key: {label: %s, type: ec-p256}\n"
	    "issuer: {label: root, certificate: root.pem}\n"
	    "signature: {hash: sha384}\n"
	    "certificate:\n"
	    "  subject: [{C: DE}, {O: Test}, {CN: Private CA}]\n"
	    "  not_before: now\n"
	    "  not_after: +5 years\n"
	    "  key_usage: [key-cert-sign, crl-sign]\n"
	    "  path_length: 0\n"
	    "  policies: [{oid: 1.3.6.1.4.1.99999.1}]\n"
	    "  crl_distribution_points: [http://crl.example.com/root.crl]\n"
	    "  ca_issuers_urls: [http://pki.example.com/root.der]\n"
	    "%s%s"
	    "outputs: {certificate: %s.pem}\n";
	char out[1 << 16], text[2048], before[8192], after[8192];
	char *tr;

	put("root.yaml", root_yaml);
	run_ok("root.yaml");
	/* No extendedKeyUsage: BR 7.1.2.10.6 wants one; refused, nothing made. */
	snprintf(text, sizeof(text), inter_fmt, "private", "", "", "private");
	put("private.yaml", text);
	snapshot(before, sizeof(before));
	ck_assert_int_eq(ceremony(out, sizeof(out), "run private.yaml"), 1);
	ck_assert_msg(strstr(out, "private.yaml:6: certificate: breaks the CA/Browser Forum "
	                          "Baseline Requirements for a subordinate CA certificate: "
	                          "br_subca_eku (BR 7.1.2.10.6") &&
	                  strstr(out, "br_exceptions: [{rule: br_subca_eku, reason: ...}]"),
	              "%s", out);
	free(take_failed_transcript(out));
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
	ck_assert(!key_exists("private"));

	/* Excepted with a reason: made, and the transcript says so. */
	snprintf(text, sizeof(text), inter_fmt, "private", "",
	         "br_exceptions:\n"
	         "  - rule: br_subca_eku\n"
	         "    reason: one private CA for TLS, S/MIME and code signing alike\n",
	         "private");
	put("private.yaml", text);
	run_ok("private.yaml");
	ck_assert(exists("private.pem"));
	tr = slurp("private.transcript.txt", NULL);
	ck_assert_msg(strstr(tr, "private-PKI exception to br_subca_eku (BR 7.1.2.10.6") &&
	                  strstr(tr, "reason: one private CA for TLS, S/MIME and code signing "
	                             "alike") &&
	                  strstr(tr, "Baseline Requirements for a subordinate CA certificate, but "
	                             "for the exceptions above"),
	              "%s", tr);
	free(tr);

	/* An exception the certificate does not need is refused: no false claims. */
	snprintf(text, sizeof(text), inter_fmt, "private2", "  extended_key_usage: [client-auth]\n",
	         "br_exceptions:\n"
	         "  - {rule: br_subca_eku, reason: \"not needed after all, it has one\"}\n",
	         "private2");
	put("private2.yaml", text);
	ck_assert_int_eq(ceremony(out, sizeof(out), "run private2.yaml"), 1);
	ck_assert_msg(strstr(out, "br_exceptions: the certificate keeps rule br_subca_eku"), "%s",
	              out);
	free(take_failed_transcript(out));
	ck_assert(!key_exists("private2"));

	/* No such rule: refused when the file is read. */
	snprintf(text, sizeof(text), inter_fmt, "private3", "",
	         "br_exceptions: [{rule: br_nosuch, reason: a rule that does not exist}]\n",
	         "private3");
	put("private3.yaml", text);
	ck_assert_int_eq(ceremony(out, sizeof(out), "run private3.yaml"), 1);
	ck_assert_msg(strstr(out, "br_exceptions[0].rule: \"br_nosuch\" is no Baseline "
	                          "Requirements rule"),
	              "%s", out);
}
END_TEST

static Suite *ceremony_suite(void)
{
	Suite *s = suite_create("ceremony");
	TCase *tc;

	tc = tcase_create("hierarchy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, root_intermediate_ocsp_signer_chain_verifies_with_openssl);
	tcase_add_test(tc, transcript_records_operator_hashes_keys_and_the_file);
	tcase_add_test(tc, second_run_refuses_and_changes_nothing);
	tcase_add_test(tc, rsa_root_with_pss_verifies);
	tcase_add_test(tc, cross_sign_verifies_with_openssl);
	tcase_add_test(tc, crl_verifies_with_openssl);
	tcase_add_test(tc, key_ceremony_writes_keyds_public_key);
	tcase_add_test(tc, intermediate_for_existing_key_is_certified);
	tcase_add_test(tc, dry_run_checks_but_makes_nothing);
	tcase_add_test(tc, issuer_label_naming_another_key_stops_before_anything);
	tcase_add_test(tc, offline_root_certifies_online_key_by_csr);
	tcase_add_test(tc, cli_help_and_usage);
	tcase_add_test(tc, ca_certificates_meet_the_baseline_requirements_or_say_why_not);
	suite_add_tcase(s, tc);

	tc = tcase_create("after-generation");
	tcase_add_checked_fixture(tc, setup_no_sign, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, failure_after_generation_says_the_key_remains);
	tcase_add_test(tc, failed_transcript_goes_to_the_transcript_folder);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad-files");
	tcase_add_unchecked_fixture(tc, setup_hierarchy, teardown_hierarchy);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, bad_ceremony_file_gives_its_error_and_writes_nothing, 0, NBAD);
	suite_add_tcase(s, tc);

	tc = tcase_create("library");
	tcase_add_checked_fixture(tc, setup_lib, teardown_lib);
	tcase_add_test(tc, lint_accepts_what_the_builder_makes);
	tcase_add_test(tc, signature_by_another_key_fails_verification);
	tcase_add_test(tc, lint_refuses_short_serial);
	tcase_add_test(tc, lint_refuses_generalized_time_before_2050);
	tcase_add_test(tc, lint_refuses_non_critical_basic_constraints);
	tcase_add_test(tc, lint_refuses_duplicate_extension);
	tcase_add_test(tc, lint_refuses_wrong_key_identifier);
	tcase_add_test(tc, parse_resolves_relative_times_and_paths);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ceremony_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	failed += harness_bad_exits; /* daemons stopped in this process */
	return failed ? 1 : 0;
}
