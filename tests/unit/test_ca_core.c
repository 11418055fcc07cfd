/* The CA core without HTTP and without a database: ca_issue's decisions that come before the
 * database (grant, stale cached credentials, validity, the CSR), a database that cannot be
 * reached as CA_DB_UNAVAILABLE, and the small shared pieces (profile lists, reason names). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_csr.h"
#include "ca_group.h"

static struct ca_key_profile kp = {.name = "test", .p256 = 1};
static struct ca_authority authority = {.name = "issuing"};
static struct ca_profile profile = {
    .name = "web",
    .authority = &authority,
    .key_profile = &kp,
    .max_validity_days = 30,
    .subject_fields = {NID_commonName},
    .n_subject_fields = 1,
};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *no_key(const char *uri, char *err, size_t n)
{
	(void)uri;
	snprintf(err, n, "no keyd in this test");
	return NULL;
}

/* A PEM request for CN=host, signed by a fresh P-256 key (the caller frees it). */
static char *csr_pem(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_REQ_get_subject_name(req);
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	ck_assert_ptr_nonnull(k);
	ck_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"host",
	                                     -1, -1, 0));
	ck_assert(X509_REQ_set_pubkey(req, k) && X509_REQ_sign(req, k, EVP_sha256()) > 0);
	ck_assert(PEM_write_bio_X509_REQ(b, req));
	len = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)len);
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return out;
}

/* A self-signed CA certificate valid from now+nb to now+na seconds, as the authority's. */
static void authority_valid(long nb, long na)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *c = X509_new();

	ck_assert_ptr_nonnull(k);
	X509_set_version(c, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"issuing", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	X509_gmtime_adj(X509_getm_notBefore(c), nb);
	X509_gmtime_adj(X509_getm_notAfter(c), na);
	X509_set_pubkey(c, k);
	ck_assert_int_gt(X509_sign(c, k, EVP_sha256()), 0);
	X509_free(authority.cert);
	authority.cert = c;
	EVP_PKEY_free(k);
}

static enum ca_outcome issue(const char *database, struct ca_issue_request *req,
                             struct ca_issue_result *res)
{
	struct ca ca;
	struct db *db = NULL;
	enum ca_outcome o;

	ca_init(&ca, &authority, 1, database, &lock, no_key, NULL);
	o = ca_issue(&ca, &db, req, res);
	ck_assert_ptr_null(res->cert);
	db_close(db);
	ca_fini(&ca);
	return o;
}

START_TEST(test_refusals_before_the_database)
{
	char *pem = csr_pem();
	struct ca_issue_request req = {
	    .who = {.kind = CA_REQUESTER_PRINCIPAL,
	            .name = "alice",
	            .role = "ra",
	            .profiles = "vpn"},
	    .action = "certificate.issue",
	    .profile = &profile,
	    .csr_pem = pem,
	    .validity_days = 30,
	};
	struct ca_issue_result res;
	static const uint8_t token[32] = {1};

	authority_valid(-86400, 365L * 86400);

	/* Not granted: a denial naming the profile. */
	ck_assert_int_eq(issue("", &req, &res), CA_NOT_GRANTED);
	ck_assert_str_eq(res.why.code, "profile-not-granted");
	ck_assert_str_eq(res.why.object, "web");
	ck_assert_str_eq(res.why.reason, "principal alice is not granted profile web");
	/* The same on cached credentials: ask again with fresh ones. */
	req.who.token_sha256 = token;
	ck_assert_int_eq(issue("", &req, &res), CA_STALE_CREDENTIALS);
	req.who.token_sha256 = NULL;
	/* Granted, but too long. */
	req.who.profiles = "vpn,web";
	req.validity_days = 31;
	ck_assert_int_eq(issue("", &req, &res), CA_REFUSED);
	ck_assert_str_eq(res.why.code, "validity-not-allowed");
	ck_assert_str_eq(res.why.reason, "\"validity_days\" must be 1..30 for profile web");
	ck_assert_str_eq(res.why.object, "");
	/* A request that is not one. */
	req.validity_days = 30;
	req.csr_pem = "not a request";
	ck_assert_int_eq(issue("", &req, &res), CA_REFUSED);
	ck_assert(res.why.code[0] && res.why.reason[0]);
	/* All fits: the database is next, and it is not there. */
	req.csr_pem = pem;
	ck_assert_int_eq(
	    issue("host=/nonexistent-hsmca-test dbname=none connect_timeout=1", &req, &res),
	    CA_DB_UNAVAILABLE);
	ck_assert_str_eq(res.why.code, "database-unavailable");
	/* What libpq said (here the socket's path) is logged, never told to the requester. */
	ck_assert_str_eq(res.why.reason, "the database is unavailable (the cause is in the log)");
	ck_assert_ptr_null(strstr(res.why.reason, "nonexistent"));
	ck_assert_str_eq(res.subject, "CN=host");
	free(pem);
}
END_TEST

/* A certificate never outlives its issuer, and a CA outside its own validity issues nothing:
 * decided before the database, on every path (API, EST and offline all issue here). */
START_TEST(test_validity_within_the_issuer)
{
	char *pem = csr_pem();
	struct ca_issue_request req = {
	    .who = {.kind = CA_REQUESTER_LOCAL, .name = "root", .role = "local"},
	    .action = "certificate.issue",
	    .profile = &profile,
	    .csr_pem = pem,
	    .validity_days = 30,
	};
	struct ca_issue_result res;
	const char *nodb = "host=/nonexistent-hsmca-test dbname=none connect_timeout=1";

	/* The CA ends in 10 days: 30 days are refused by default, naming what is left. */
	authority_valid(-86400, 10L * 86400 + 3600);
	ck_assert_int_eq(issue(nodb, &req, &res), CA_REFUSED);
	ck_assert_str_eq(res.why.code, "validity-not-allowed");
	ck_assert_msg(strstr(res.why.reason, "30 days would end after the certificate of "
	                                     "authority issuing (") &&
	                  strstr(res.why.reason, "): at most 10 days are left"),
	              "%s", res.why.reason);
	/* 10 days fit. */
	req.validity_days = 10;
	ck_assert_int_eq(issue(nodb, &req, &res), CA_DB_UNAVAILABLE);
	ck_assert_int_eq(res.not_after - res.not_before, 10 * 86400);
	/* No length asked for (0: the profile's default), or a profile that clamps: notAfter is
	 * the CA's. */
	for (int clamp = 0; clamp < 2; clamp++) {
		req.validity_days = clamp ? 30 : 0;
		profile.clamp_not_after = clamp;
		int64_t ca_na;
		struct tm tm;

		ck_assert_int_eq(issue(nodb, &req, &res), CA_DB_UNAVAILABLE);
		ck_assert(ASN1_TIME_to_tm(X509_get0_notAfter(authority.cert), &tm));
		ca_na = (int64_t)timegm(&tm);
		ck_assert_int_eq(res.not_after, ca_na);
		ck_assert_int_lt(res.not_after - res.not_before, 30 * 86400);
	}
	/* An expired CA and a CA not valid yet issue nothing, clamp or not. */
	authority_valid(-10L * 86400, -60);
	ck_assert_int_eq(issue(nodb, &req, &res), CA_AUTHORITY_RETIRED);
	ck_assert_str_eq(res.why.code, "authority-expired");
	ck_assert_str_eq(res.why.object, "issuing");
	ck_assert_str_eq(
	    res.why.reason,
	    "the certificate of authority issuing has expired: it issues nothing more");
	authority_valid(3600, 365L * 86400);
	ck_assert_int_eq(issue(nodb, &req, &res), CA_AUTHORITY_RETIRED);
	ck_assert_str_eq(res.why.code, "authority-not-yet-valid");
	profile.clamp_not_after = 0;
	free(pem);
}
END_TEST

/* keyUsage by key type: a profile asking for digitalSignature and keyEncipherment gives an RSA
 * key both and an EC key digitalSignature alone; keyAgreement goes to an EC key only when
 * asked, never to an RSA key. */
START_TEST(test_key_usage_by_key_type)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	unsigned tls = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
	unsigned agree = KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT;

	ck_assert(ec && rsa);
	ck_assert_uint_eq(ca_key_usage_for(tls, rsa), tls);
	ck_assert_uint_eq(ca_key_usage_for(tls, ec), KU_DIGITAL_SIGNATURE);
	ck_assert_uint_eq(ca_key_usage_for(tls | KU_DATA_ENCIPHERMENT, ec), KU_DIGITAL_SIGNATURE);
	ck_assert_uint_eq(ca_key_usage_for(agree, ec), agree);
	ck_assert_uint_eq(ca_key_usage_for(agree, rsa), KU_DIGITAL_SIGNATURE);
	ck_assert_uint_eq(ca_key_usage_for(tls | KU_KEY_AGREEMENT, ec), agree);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}
END_TEST

START_TEST(test_shared_pieces)
{
	ck_assert(ca_profile_listed("a,web,b", "web"));
	ck_assert(!ca_profile_listed("a,webs", "web"));
	ck_assert(!ca_profile_listed("", "web"));
	ck_assert_str_eq(ca_san_kind_name(CA_SAN_IP), "ip");
}
END_TEST

/* Group commit (ca_group.c): threads queue jobs; every job is done exactly once, by a group
 * of at most CA_GROUP_MAX, never by more than max_leading leaders at a time, and every
 * thread returns (a lost wake-up hangs the test until its timeout). */
#define GROUP_THREADS 8
#define GROUP_ROUNDS 300

struct group_test {
	struct ca_group g;
	pthread_mutex_t mu;
	int rounds;
	int running, max_running, groups, max_size;
	int done[GROUP_THREADS][GROUP_ROUNDS];
};

struct group_job {
	struct ca_group_job g; /* first */
	int thread, round;
};

static void group_run(struct db *db, struct ca_group_job **jobs, size_t n, void *arg)
{
	struct group_test *t = arg;
	/* as a database round trip: others queue meanwhile (with one round each, all of them
	 * behind the first leader, who must then hand the lead on) */
	struct timespec pause = {0, t->rounds == 1 ? 2000000 : 20000};

	(void)db;
	pthread_mutex_lock(&t->mu);
	if (++t->running > t->max_running)
		t->max_running = t->running;
	t->groups++;
	if ((int)n > t->max_size)
		t->max_size = (int)n;
	pthread_mutex_unlock(&t->mu);
	nanosleep(&pause, NULL);
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < n; i++) {
		struct group_job *j = (struct group_job *)jobs[i];
		t->done[j->thread][j->round]++;
	}
	t->running--;
	pthread_mutex_unlock(&t->mu);
}

struct group_arg {
	struct group_test *t;
	int thread;
};

static void *group_thread(void *arg)
{
	struct group_arg *a = arg;

	for (int r = 0; r < a->t->rounds; r++) {
		struct group_job j = {.thread = a->thread, .round = r};
		ca_group_do(&a->t->g, NULL, &j.g, group_run, a->t);
		pthread_mutex_lock(&a->t->mu);
		ck_assert_int_eq(a->t->done[a->thread][r], 1); /* done when it returns */
		pthread_mutex_unlock(&a->t->mu);
	}
	return NULL;
}

static void group_check(int max_leading, int rounds)
{
	struct group_test *t = calloc(1, sizeof(*t));
	pthread_t th[GROUP_THREADS];
	struct group_arg args[GROUP_THREADS];

	ck_assert_ptr_nonnull(t);
	t->rounds = rounds;
	ca_group_init(&t->g, max_leading);
	pthread_mutex_init(&t->mu, NULL);
	for (int i = 0; i < GROUP_THREADS; i++) {
		args[i] = (struct group_arg){t, i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, group_thread, &args[i]), 0);
	}
	for (int i = 0; i < GROUP_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < GROUP_THREADS; i++)
		for (int r = 0; r < rounds; r++)
			ck_assert_int_eq(t->done[i][r], 1);
	ck_assert_int_le(t->max_running, max_leading);
	ck_assert_int_le(t->max_size, CA_GROUP_MAX);
	/* Jobs that arrive while a leader works go together. */
	ck_assert_int_lt(t->groups, GROUP_THREADS * rounds);
	pthread_mutex_destroy(&t->mu);
	ca_group_destroy(&t->g);
	free(t);
}

START_TEST(test_group_commit)
{
	group_check(1, GROUP_ROUNDS);
	group_check(2, GROUP_ROUNDS);
	group_check(1, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ca-core");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_refusals_before_the_database);
	tcase_add_test(tc, test_validity_within_the_issuer);
	tcase_add_test(tc, test_shared_pieces);
	tcase_add_test(tc, test_key_usage_by_key_type);
	tcase_add_test(tc, test_group_commit);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	X509_free(authority.cert);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
