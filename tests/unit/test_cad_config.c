/* hsmca-cad's configuration reader: a good file is read into the profiles it describes, and
 * each kind of mistake is refused with a message that names it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cad.h"

static char dir[] = "/tmp/hsmca-cadconf.XXXXXX";

static void write_ca(const char *name, int ca)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	char path[256];
	FILE *f;

	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	                        ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, k, EVP_sha256());
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void setup(void)
{
	if (!mkdtemp(dir))
		abort();
	write_ca("ca", 1);
	write_ca("leaf", 0);
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf -- %s", dir);
	if (system(cmd) != 0)
		abort();
}

/* A complete configuration; %s slots: the authority's certificate, then extra text
 * replacing the profile's key usages line. */
static const char base[] = "tls: {certificate: /x.pem, key: /x.key, client_ca: /ca.pem}\n"
                           "authorities:\n"
                           "  - {name: issuing, certificate: %s, key: \"%s\"}\n"
                           "key_profiles:\n"
                           "  - {name: kp, rsa_min_bits: %s, ec_curves: [%s]}\n"
                           "profiles:\n"
                           "  - name: web\n"
                           "    authority: %s\n"
                           "    key_profile: kp\n"
                           "    max_validity_days: 90\n"
                           "    key_usage: [%s]\n"
                           "    extended_key_usage: [%s]\n"
                           "    subject_fields: [CN]\n"
                           "    san: {dns: [\"*.example.com\"], ip: [\"10.*\"]}\n"
                           "%s";

struct variant {
	const char *cert, *key, *rsa, *curves, *authority, *ku, *eku, *extra;
};

static int load(const struct variant *v, struct cad_config *cfg, char *err, size_t errsz)
{
	char path[256], cert[256], text[4096];
	FILE *f;
	int rc;

	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, v->cert ? v->cert : "ca");
	snprintf(text, sizeof(text), base, cert, v->key ? v->key : "keyd:label=issuing",
	         v->rsa ? v->rsa : "2048", v->curves ? v->curves : "P-256, P-384",
	         v->authority ? v->authority : "issuing",
	         v->ku ? v->ku : "digitalSignature, keyEncipherment",
	         v->eku ? v->eku : "serverAuth", v->extra ? v->extra : "");
	snprintf(path, sizeof(path), "%s/cad.yaml", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	rc = cad_config_load(path, cfg, err, errsz);
	return rc;
}

static void refused(const struct variant *v, const char *expect)
{
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	char err[1024];

	ck_assert_int_ne(load(v, cfg, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, expect), "expected \"%s\" in \"%s\"", expect, err);
	cad_config_free(cfg);
	free(cfg);
}

START_TEST(good_file_is_read_into_profiles)
{
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	struct variant v = {0};
	struct ca_profile *p;
	char err[1024];

	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg->listen_port, 8443);
	ck_assert_uint_eq(cfg->max_body_bytes, 65536);
	ck_assert_int_eq(cfg->report_max_days, 366);
	p = cad_profile_find(cfg, "web");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->authority->key_label, "issuing");
	ck_assert_uint_eq(p->key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(p->n_eku, 1);
	ck_assert_int_eq(p->eku[0], NID_server_auth);
	ck_assert_int_eq(p->key_profile->rsa_min_bits, 2048);
	ck_assert(p->key_profile->p256 && p->key_profile->p384);
	ck_assert_str_eq(p->san_patterns[CA_SAN_DNS][0], "*.example.com");
	ck_assert_int_eq(p->n_san_patterns[CA_SAN_EMAIL], 0);
	ck_assert_ptr_null(cad_profile_find(cfg, "nope"));
	cad_config_free(cfg);
	free(cfg);
}
END_TEST

START_TEST(mistakes_are_refused_by_name)
{
	refused(&(struct variant){.rsa = "1024"}, "rsa_min_bits");
	refused(&(struct variant){.curves = "P-521"}, "only P-256 and P-384");
	refused(&(struct variant){.curves = "secp256k1"}, "only P-256 and P-384");
	refused(&(struct variant){.ku = "keyCertSign"}, "keyCertSign");
	refused(&(struct variant){.eku = "OCSPSigning"}, "OCSPSigning");
	refused(&(struct variant){.authority = "other"}, "no authority named \"other\"");
	refused(&(struct variant){.cert = "leaf"}, "not a CA certificate");
	refused(&(struct variant){.cert = "missing"}, "cannot read");
	refused(&(struct variant){.key = "/etc/ca.key"}, "not a keyd:label=NAME URI");
	refused(&(struct variant){.extra = "    color: blue\n"}, "unknown field \"color\"");
	refused(&(struct variant){.extra = "    san_required: maybe\n"}, "true or false");
	refused(&(struct variant){.extra = "    max_validity_days: 10\n"}, "given twice");
	refused(&(struct variant){.extra = "  - name: web\n"
	                                   "    authority: issuing\n"
	                                   "    key_profile: kp\n"
	                                   "    max_validity_days: 1\n"
	                                   "    key_usage: [digitalSignature]\n"
	                                   "    extended_key_usage: []\n"
	                                   "    subject_fields: [CN]\n"},
	        "named twice");
	refused(&(struct variant){.extra = "limits: {max_body_bytes: 10}\n"}, "max_body_bytes");
	refused(&(struct variant){.extra = "limits: {report_max_days: 0}\n"}, "report_max_days");
	refused(&(struct variant){.extra = "limits: {report_max_days: 9999}\n"}, "report_max_days");
	refused(&(struct variant){.extra = "audit: {checkpoint_key: /tmp/k.pem}\n"},
	        "checkpoint_key");
}
END_TEST

/* server_keygen and archive_key (docs/key-recovery.md): archival only for a profile whose keys
 * encrypt or agree keys, and only with keyd's archive key named. */
START_TEST(key_archival_is_for_encryption_profiles_only)
{
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	struct variant v = {.extra = "    server_keygen: true\n"
	                             "    archive_key: true\n"
	                             "key_archive: {key: key-archive-2026}\n"};
	struct ca_profile *p;
	char err[1024];

	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	p = cad_profile_find(cfg, "web");
	ck_assert(p->server_keygen && p->archive_key);
	ck_assert_str_eq(cfg->key_archive_label, "key-archive-2026");
	cad_config_free(cfg);
	/* keyAgreement alone, or with digitalSignature, is an encryption key too. */
	memset(cfg, 0, sizeof(*cfg));
	v.ku = "digitalSignature, keyAgreement";
	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	cad_config_free(cfg);
	free(cfg);
	/* A signing-only profile that asks for archival. */
	refused(&(struct variant){.ku = "digitalSignature",
	                          .extra = "    archive_key: true\n"
	                                   "key_archive: {key: key-archive-2026}\n"},
	        "signing-only profile");
	refused(&(struct variant){.ku = "digitalSignature, nonRepudiation",
	                          .extra = "    archive_key: true\n"
	                                   "key_archive: {key: key-archive-2026}\n"},
	        "only encryption keys may be archived");
	refused(&(struct variant){.extra = "    archive_key: true\n"}, "no key_archive");
	refused(&(struct variant){.extra = "    archive_key: yes please\n"}, "true or false");
	refused(&(struct variant){.extra = "key_archive: {key: \"keyd:label=x\"}\n"},
	        "a keyd AES key label");
}
END_TEST

/* Subject value patterns and what a validity beyond the issuer's does, per profile. */
START_TEST(subject_patterns_and_issuer_validity_are_read)
{
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	struct variant v = {.extra = "    subject_patterns: {CN: [\"*.example.com\", host]}\n"
	                             "    not_after_beyond_issuer: clamp\n"};
	struct ca_profile *p;
	char err[1024];

	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	p = cad_profile_find(cfg, "web");
	ck_assert_int_eq(p->n_subject_patterns[0], 2);
	ck_assert_str_eq(p->subject_patterns[0][1], "host");
	ck_assert_int_eq(p->clamp_not_after, 1);
	cad_config_free(cfg);
	memset(cfg, 0, sizeof(*cfg));
	v.extra = "";
	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cad_profile_find(cfg, "web")->clamp_not_after, 0); /* refuse */
	cad_config_free(cfg);
	free(cfg);
	refused(&(struct variant){.extra = "    subject_patterns: {O: [x]}\n"},
	        "O is not in subject_fields");
	refused(&(struct variant){.extra = "    subject_patterns: {title: [x]}\n"},
	        "unknown field \"title\"");
	refused(&(struct variant){.extra = "    subject_patterns: {CN: [\"\"]}\n"},
	        "empty pattern");
	refused(&(struct variant){.extra = "    not_after_beyond_issuer: stretch\n"},
	        "\"stretch\": refuse or clamp");
}
END_TEST

/* The CRL distribution point settings of an authority (hsmca-crld's shards). */
static int load_crl(const char *crl_fields, struct cad_config *cfg, char *err, size_t errsz)
{
	char path[256], text[2048];
	FILE *f;

	snprintf(text, sizeof(text),
	         "tls: {certificate: /x.pem, key: /x.key, client_ca: /ca.pem}\n"
	         "authorities:\n"
	         "  - {name: issuing, certificate: %s/ca.pem, key: \"keyd:label=i\"%s}\n"
	         "key_profiles: [{name: kp, ec_curves: [P-256]}]\n"
	         "profiles:\n"
	         "  - {name: web, authority: issuing, key_profile: kp, max_validity_days: 9,\n"
	         "     key_usage: [digitalSignature], extended_key_usage: [serverAuth],\n"
	         "     subject_fields: [CN]}\n",
	         dir, crl_fields);
	snprintf(path, sizeof(path), "%s/cad-crl.yaml", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return cad_config_load(path, cfg, err, errsz);
}

START_TEST(crl_distribution_settings_are_read_and_checked)
{
	static const struct {
		const char *fields, *expect;
	} bad[] = {
	    {", crl_shards: 4", "needs crl_base_url"},
	    {", crl_base_url: \"http://x/\", crl_shards: 1", "crl_shards"},
	    {", crl_base_url: \"http://x/\", crl_shards: 257", "crl_shards"},
	    {", crl_base_url: \"ldap://x/\"", "crl_base_url"},
	    {", crl_base_url: \"http://x/a,b\"", "crl_base_url"},
	};
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	char err[1024];

	ck_assert_msg(load_crl("", cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg->authorities[0].crl_base_url, "");
	ck_assert_int_eq(cfg->authorities[0].crl_shards, 0);
	cad_config_free(cfg);
	ck_assert_msg(load_crl(", crl_base_url: \"http://crl.example/c\", crl_shards: 16", cfg, err,
	                       sizeof(err)) == 0,
	              "%s", err);
	ck_assert_str_eq(cfg->authorities[0].crl_base_url, "http://crl.example/c/");
	ck_assert_int_eq(cfg->authorities[0].crl_shards, 16);
	cad_config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_ne(load_crl(bad[i].fields, cfg, err, sizeof(err)), 0);
		ck_assert_msg(strstr(err, bad[i].expect), "%zu: %s", i, err);
		cad_config_free(cfg);
	}
	/* alternate_chains (docs/acme.md): an authority that exists, and a file whose first
	 * certificate is the authority's subject and key under another issuer. */
	{
		struct {
			const char *authority, *file, *expect;
		} alt[] = {
		    {"nope", "ca", "no authority named \"nope\""},
		    {"issuing", "missing", "cannot read"},
		    {"issuing", "leaf", "with the authority's subject and key"},
		    {"issuing", "ca", "that is the default chain, not an alternate"},
		};
		for (size_t i = 0; i < sizeof(alt) / sizeof(alt[0]); i++) {
			char extra[600];
			snprintf(extra, sizeof(extra),
			         "acme:\n  url: https://ca.test/acme\n  profiles: [web]\n"
			         "  alternate_chains: [{authority: %s, chain: %s/%s.pem}]\n",
			         alt[i].authority, dir, alt[i].file);
			memset(cfg, 0, sizeof(*cfg));
			ck_assert_int_ne(
			    load(&(struct variant){.extra = extra}, cfg, err, sizeof(err)), 0);
			ck_assert_msg(strstr(err, alt[i].expect) && strstr(err, "alternate_chains"),
			              "%zu: %s", i, err);
			cad_config_free(cfg);
		}
	}
	free(cfg);
}
END_TEST

/* The est: section's limits: defaults, values, and out-of-range values refused by name. EST
 * profiles need an identity: the profile's CN is made required. */
#define CN_REQUIRED "    subject_cn_required: true\n"
START_TEST(est_section_is_read_and_checked)
{
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	char err[1024];

	ck_assert_msg(load(&(struct variant){.extra = CN_REQUIRED "est: {profiles: [web]}\n"}, cfg,
	                   err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(cfg->n_est_profiles, 1);
	ck_assert_int_eq(cfg->est_token_max_days, 365);
	ck_assert_int_eq(cfg->est_lock_wait_seconds, 30);
	cad_config_free(cfg);
	ck_assert_msg(load(&(struct variant){.extra = CN_REQUIRED
	                                     "est: {profiles: [web], token_max_days: 30, "
	                                     "lock_wait_seconds: 5}\n"},
	                   cfg, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(cfg->est_token_max_days, 30);
	ck_assert_int_eq(cfg->est_lock_wait_seconds, 5);
	cad_config_free(cfg);
	free(cfg);
	refused(&(struct variant){.extra =
	                              CN_REQUIRED "est: {profiles: [web], lock_wait_seconds: 0}\n"},
	        "lock_wait_seconds");
	refused(&(struct variant){.extra = CN_REQUIRED
	                          "est: {profiles: [web], lock_wait_seconds: 601}\n"},
	        "lock_wait_seconds");
	refused(&(struct variant){.extra = CN_REQUIRED "est: {profiles: [web], lock_wait: 5}\n"},
	        "unknown field \"lock_wait\"");
}
END_TEST

/* The acme: section (docs/acme.md): read when good, refused by name when not. */
/* The console's section: defaults, values, and out-of-range values refused by name. */
START_TEST(console_section_is_read_and_checked)
{
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	char err[1024];

	ck_assert_msg(load(&(struct variant){0}, cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg->console_enabled, 1);
	ck_assert_int_eq(cfg->session_idle_seconds, 900);
	ck_assert_int_eq(cfg->session_max_seconds, 28800);
	ck_assert_int_eq(cfg->max_sessions, 1000);
	cad_config_free(cfg);
	ck_assert_msg(
	    load(&(struct variant){.extra = "console: {enabled: false, "
	                                    "session_idle_seconds: 60, "
	                                    "session_max_seconds: 120, max_sessions: 3}\n"},
	         cfg, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_int_eq(cfg->console_enabled, 0);
	ck_assert_int_eq(cfg->session_idle_seconds, 60);
	ck_assert_int_eq(cfg->session_max_seconds, 120);
	ck_assert_int_eq(cfg->max_sessions, 3);
	cad_config_free(cfg);
	free(cfg);
	refused(&(struct variant){.extra = "console: {session_idle_seconds: 1}\n"},
	        "session_idle_seconds");
	refused(&(struct variant){.extra = "console: {session_idle_seconds: 600, "
	                                   "session_max_seconds: 300}\n"},
	        "shorter than session_idle_seconds");
	refused(&(struct variant){.extra = "console: {max_sessions: 0}\n"}, "max_sessions");
	refused(&(struct variant){.extra = "console: {theme: dark}\n"}, "unknown field \"theme\"");
}
END_TEST

START_TEST(acme_section_is_read_and_checked)
{
	static const struct {
		const char *section, *expect;
	} bad[] = {
	    {"acme: {profiles: [web]}\n", "url: required"},
	    {"acme: {url: \"http://ca.test/acme\", profiles: [web]}\n", "acme.url"},
	    {"acme: {url: \"https://ca.test/acme/\", profiles: [web]}\n", "acme.url"},
	    {"acme: {url: \"https://ca.test/other\", profiles: [web]}\n", "acme.url"},
	    {"acme: {url: \"https://ca.test/acme\"}\n", "\"profiles\""},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [nope]}\n", "no profile named"},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [web, web]}\n", "named twice"},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [web], nonce_store_size: 1}\n",
	     "nonce_store_size"},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [web], website: \"ftp://x\"}\n",
	     "https://"},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [web], rate: 1}\n",
	     "unknown field \"rate\""},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [web], validator: run/v.sock}\n",
	     "acme.validator"},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [web], orders_per_hour: 0}\n",
	     "orders_per_hour"},
	    {"acme: {url: \"https://ca.test/acme\", profiles: [web], validation_timeout_ms: 10}\n",
	     "validation_timeout_ms"},
	};
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	char err[1024];

	ck_assert_msg(load(&(struct variant){0}, cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg->acme_url, "");
	cad_config_free(cfg);
	memset(cfg, 0, sizeof(*cfg));
	ck_assert_msg(load(&(struct variant){.extra = "acme:\n"
	                                              "  url: https://ca.test:8443/acme\n"
	                                              "  profiles: [web]\n"
	                                              "  terms_of_service: https://ca.test/tos\n"
	                                              "  external_account_required: false\n"
	                                              "  nonce_store_size: 4096\n"
	                                              "  validator: /run/hsmca/acmevald.sock\n"
	                                              "  orders_per_hour: 50\n"
	                                              "  pending_authorizations: 20\n"
	                                              "  authz_reuse_seconds: 3600\n"},
	                   cfg, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_str_eq(cfg->acme_url, "https://ca.test:8443/acme");
	ck_assert_str_eq(cfg->acme_terms_url, "https://ca.test/tos");
	ck_assert_int_eq(cfg->acme_eab_required, 0);
	ck_assert_int_eq(cfg->acme_nonce_store, 4096);
	ck_assert_int_eq(cfg->n_acme_profiles, 1);
	ck_assert_str_eq(cfg->acme_profiles[0]->name, "web");
	ck_assert_str_eq(cfg->acme_validator, "/run/hsmca/acmevald.sock");
	ck_assert_int_eq(cfg->acme_orders_per_hour, 50);
	ck_assert_int_eq(cfg->acme_pending_authz, 20);
	ck_assert_int_eq(cfg->acme_authz_reuse, 3600);
	ck_assert_int_eq(cfg->acme_order_lifetime, 7 * 86400);
	ck_assert_int_eq(cfg->acme_validation_timeout_ms, 30000);
	cad_config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(cfg, 0, sizeof(*cfg));
		ck_assert_int_ne(
		    load(&(struct variant){.extra = bad[i].section}, cfg, err, sizeof(err)), 0);
		ck_assert_msg(strstr(err, bad[i].expect), "%zu: %s", i, err);
		cad_config_free(cfg);
	}
	free(cfg);
}
END_TEST

/* certificatePolicies of a profile: policy OIDs and a CPS URI, each checked at load with the
 * file, line and field named. */
START_TEST(policies_and_cps_uri_are_read_and_checked)
{
	static const struct {
		const char *extra, *expect;
	} bad[] = {
	    {"    policies: [\"2.23.140.1.2.x\"]\n", "is not a dotted OID"},
	    {"    policies: [\"3.1\"]\n", "is not a dotted OID"},
	    {"    policies: [\"1.40.1\"]\n", "is not a dotted OID"},
	    {"    policies: [\"1.3.06.1\"]\n", "is not a dotted OID"},
	    {"    policies: [\"1.3.\"]\n", "is not a dotted OID"},
	    {"    policies: [\".1.3\"]\n", "is not a dotted OID"},
	    {"    policies: [\"1\"]\n", "at least two arcs"},
	    {"    policies: [\"\"]\n", "policies"},
	    {"    policies: [2.5.29.32.0]\n", "anyPolicy"},
	    {"    policies: [1.2.3, 1.2.3]\n", "listed twice"},
	    {"    policies: [1.2.3.1, 1.2.3.2, 1.2.3.3, 1.2.3.4, 1.2.3.5, 1.2.3.6, 1.2.3.7, "
	     "1.2.3.8,"
	     " 1.2.3.9]\n",
	     "more than 8"},
	    {"    policies: \"1.2.3\"\n", "must be a list"},
	    {"    policies: [1.2.3]\n    cps_uri: \"ftp://cps.example/\"\n", "cps_uri"},
	    {"    policies: [1.2.3]\n    cps_uri: \"https://\"\n", "names no host"},
	    {"    policies: [1.2.3]\n    cps_uri: \"https://cps.example/a b\"\n", "not allowed"},
	    {"    policies: [2.23.140.1.2.1]\n    cps_uri: \"https://cps.example/\"\n",
	     "reserved policies"},
	    {"    cps_uri: \"https://cps.example/\"\n", "reserved policies"},
	};
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	struct variant v = {.extra = "    policies: [2.23.140.1.2.1, 1.3.6.1.4.1.99999.1]\n"
	                             "    cps_uri: \"https://cps.example/cps\"\n"};
	struct ca_profile *p;
	char err[1024];

	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	p = cad_profile_find(cfg, "web");
	ck_assert_int_eq(p->n_policies, 2);
	ck_assert_str_eq(p->policies[0], "2.23.140.1.2.1");
	ck_assert_str_eq(p->policies[1], "1.3.6.1.4.1.99999.1");
	ck_assert_str_eq(p->cps_uri, "https://cps.example/cps");
	cad_config_free(cfg);
	/* none: no certificatePolicies */
	v.extra = "";
	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cad_profile_find(cfg, "web")->n_policies, 0);
	cad_config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v.extra = bad[i].extra;
		ck_assert_int_ne(load(&v, cfg, err, sizeof(err)), 0);
		ck_assert_msg(strstr(err, bad[i].expect), "%zu: %s", i, err);
		/* file, line and field */
		ck_assert_msg(strstr(err, "cad.yaml:") && strstr(err, "cad.yaml:")[9] >= '1' &&
		                  strstr(err, "cad.yaml:")[9] <= '9' &&
		                  (strstr(err, "policies") || strstr(err, "cps_uri")),
		              "%zu: %s", i, err);
		cad_config_free(cfg);
	}
	free(cfg);
}
END_TEST

/* A profile sent to the API (JSON) is read by the configuration's own parser: the JSON made of
 * a file's profile reads back into the same profile, and the API's bounds hold first. */
START_TEST(profile_json_reads_as_the_file_does)
{
	struct cad_config *cfg = calloc(1, sizeof(*cfg));
	struct variant v = {.extra = "    policies: [2.23.140.1.2.1]\n"
	                             "    subject_cn_required: yes\n"};
	struct ca_profile q, *p;
	char err[1024];
	json_t *body;

	ck_assert_msg(load(&v, cfg, err, sizeof(err)) == 0, "%s", err);
	p = cad_profile_find(cfg, "web");
	ck_assert_ptr_nonnull(cfg->profile_json[0]);
	/* Plain scalars that read as numbers or booleans become those; the rest strings. */
	body = json_loads(cfg->profile_json[0], 0, NULL);
	ck_assert_ptr_nonnull(body);
	ck_assert(json_is_integer(json_object_get(body, "max_validity_days")));
	ck_assert(json_is_string(json_array_get(json_object_get(body, "policies"), 0)));
	ck_assert(json_is_string(json_object_get(body, "subject_cn_required"))); /* "yes" */
	ck_assert_msg(cad_profile_from_json(cfg, body, &q, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(q.name, p->name);
	ck_assert_ptr_eq(q.authority, p->authority);
	ck_assert_int_eq(q.max_validity_days, p->max_validity_days);
	ck_assert_uint_eq(q.key_usage, p->key_usage);
	ck_assert_int_eq(q.subject_cn_required, 1);
	ck_assert_str_eq(q.policies[0], "2.23.140.1.2.1");
	ck_assert_str_eq(q.san_patterns[CA_SAN_IP][0], "10.*");
	cad_profile_clear(&q);
	/* A mistake is named as the file's would be, without a line number. */
	json_object_set_new(body, "max_validity_days", json_integer(5000));
	ck_assert_int_ne(cad_profile_from_json(cfg, body, &q, err, sizeof(err)), 0);
	ck_assert_msg(!strncmp(err, "max_validity_days:", 18), "%s", err);
	/* Bounds before parsing: null, fractions, nesting. */
	json_object_set_new(body, "max_validity_days", json_null());
	ck_assert_int_ne(cad_profile_from_json(cfg, body, &q, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "null"));
	json_object_set_new(body, "max_validity_days", json_real(1.5));
	ck_assert_int_ne(cad_profile_from_json(cfg, body, &q, err, sizeof(err)), 0);
	json_object_set_new(body, "max_validity_days", json_integer(30));
	json_object_set_new(body, "san", json_pack("{s:[[[s]]]}", "dns", "a"));
	ck_assert_int_ne(cad_profile_from_json(cfg, body, &q, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "nested"));
	/* A string YAML would fold (U+2028) stays what it is: refused as a name, not cut. */
	json_object_set_new(body, "san", json_pack("{s:[s]}", "dns", "a.example.com"));
	json_object_set_new(body, "name",
	                    json_string("we\xe2\x80\xa8"
	                                "b"));
	ck_assert_int_ne(cad_profile_from_json(cfg, body, &q, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "name"), "%s", err);
	json_decref(body);
	cad_config_free(cfg);
	free(cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cad-config");
	TCase *tc = tcase_create("config");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_file_is_read_into_profiles);
	tcase_add_test(tc, mistakes_are_refused_by_name);
	tcase_add_test(tc, subject_patterns_and_issuer_validity_are_read);
	tcase_add_test(tc, crl_distribution_settings_are_read_and_checked);
	tcase_add_test(tc, acme_section_is_read_and_checked);
	tcase_add_test(tc, console_section_is_read_and_checked);
	tcase_add_test(tc, est_section_is_read_and_checked);
	tcase_add_test(tc, policies_and_cps_uri_are_read_and_checked);
	tcase_add_test(tc, profile_json_reads_as_the_file_does);
	tcase_add_test(tc, key_archival_is_for_encryption_profiles_only);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
