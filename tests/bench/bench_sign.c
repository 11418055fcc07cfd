/*
 * bench_sign: signatures per second for ECDSA P-256 and RSA-2048,
 *   (a) in-process, straight through PKCS#11 (one session per thread, C_SignInit + C_Sign), and
 *   (b) through hsmca-keyd via the keyd OpenSSL provider (one connection per thread),
 * at each requested number of concurrent clients, with the ratio b/a.
 *
 * Each cell runs R rounds of S seconds per path, alternating (a) and (b) (and which of them goes
 * first) so that noise on the shared machine falls on both alike; the table quotes medians.
 * Every thread signs once before the clock starts (session, connection and key set-up are not
 * timed) and that first signature is checked against the token's public key with C_Verify.
 *
 * Environment:
 *   HSMCA_BENCH_MODULE    PKCS#11 module (default /usr/lib/softhsm/libsofthsm2.so)
 *   HSMCA_BENCH_TOKEN     token label (required)
 *   HSMCA_BENCH_PIN_FILE  file holding the user PIN (required)
 *   HSMCA_PROVIDER_DIR    directory holding keyd.so (required for (b))
 *   HSMCA_KEYD_SOCKET     keyd's socket (read by the provider)
 *
 * Exit status: 0 when every signature succeeded and verified, 1 when one failed, 2 on usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <p11-kit/pkcs11.h>

#include "bench_util.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define MAX_THREADS 64
#define MAX_ROUNDS 1000
#define MAX_SIG 1024
#define PIN_MAX 256

enum kind { K_EC, K_RSA, K_N };
enum path { P_A, P_B, P_N };

static const char *const kind_name[K_N] = {"ECDSA P-256", "RSA-2048"};
static const char *const path_name[P_N] = {"(a) PKCS#11", "(b) keyd"};

/* SHA-256 DigestInfo prefix (RFC 8017, 9.2 note 1) for CKM_RSA_PKCS. */
static const uint8_t sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

struct opts {
	double seconds;
	int rounds;
	int threads[MAX_THREADS];
	int nthreads;
	const char *label[K_N];
	int paths[P_N]; /* which paths to run */
	int verbose;
	int floor;    /* also the round-trip floor: two processes, no signing */
	int keyd_pid; /* HSMCA_BENCH_KEYD_PID: keyd's CPU counts in (b)'s CPU per signature */
};

struct p11 {
	void *dl;
	CK_FUNCTION_LIST_PTR fl;
	int initialized;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session; /* keeps the login; also used for C_Verify */
	int have_session;
	CK_OBJECT_HANDLE priv[K_N];
	CK_OBJECT_HANDLE pub[K_N];
};

struct prov {
	OSSL_PROVIDER *keyd;
	OSSL_PROVIDER *deflt;
	EVP_PKEY *pkey[K_N];
};

struct bench {
	struct opts o;
	struct p11 p11;
	struct prov prov;
	uint8_t digest[32];
	uint8_t digest_info[sizeof(sha256_prefix) + 32];
};

/* One timed run: one key, one path, n threads. */
struct run {
	struct bench *b;
	enum kind kind;
	enum path path;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready; /* threads done with set-up */
	int go;
	atomic_int stop;
	atomic_int failed;
};

struct worker {
	struct run *run;
	pthread_t tid;
	int started;
	unsigned long count;
	struct timespec end;
	uint8_t sig[MAX_SIG]; /* the untimed first signature, checked afterwards */
	size_t siglen;
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_sign: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void fail_ossl(const char *what)
{
	fail("%s failed", what);
	ERR_print_errors_fp(stderr);
}

static double ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* ---- options ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: bench_sign [--seconds S] [--rounds R] [--threads 1,2,3,4]\n"
	       "                  [--key-ec LABEL] [--key-rsa LABEL] [--path a|b|ab] [--verbose]\n"
	       "  --seconds S      length of one round (default 1)\n"
	       "  --rounds R       rounds per cell and path; the table quotes medians (default 5)\n"
	       "  --threads LIST   concurrent clients, comma-separated (default 1,2,3,4)\n"
	       "  --key-ec LABEL   P-256 key label (default bench-ec)\n"
	       "  --key-rsa LABEL  RSA-2048 key label (default bench-rsa)\n"
	       "                   (either may be 'none': a token without that key type)\n"
	       "  --path P         a: in-process PKCS#11 only, b: keyd only, ab: both (default)\n"
	       "  --verbose        also print every round's figure\n"
	       "  --floor          also measure the round-trip floor: N client threads, each with\n"
	       "                   an echo process of its own over a Unix socket, keyd's frame\n"
	       "                   sizes and sleeps, nothing signed (CPU per round trip)\n"
	       "environment: HSMCA_BENCH_MODULE, HSMCA_BENCH_TOKEN, HSMCA_BENCH_PIN_FILE,\n"
	       "             HSMCA_PROVIDER_DIR, HSMCA_KEYD_SOCKET, HSMCA_BENCH_KEYD_PID (keyd's\n"
	       "             CPU is then counted in (b)'s CPU per signature)\n");
}

/* Returns 0 to run, 1 after --help, -1 on a usage error. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	const char *ec = "bench-ec", *rsa = "bench-rsa", *path = "ab";
	const struct bench_opt opts[] = {
	    BENCH_OPT_SECONDS(&o->seconds),
	    BENCH_OPT_ROUNDS(&o->rounds, MAX_ROUNDS),
	    BENCH_OPT_LIST("threads", o->threads, o->nthreads, MAX_THREADS),
	    BENCH_OPT_STR("key-ec", &ec),
	    BENCH_OPT_STR("key-rsa", &rsa),
	    BENCH_OPT_STR("path", &path),
	    BENCH_OPT_VERBOSE(&o->verbose),
	    {.name = "floor", .kind = BENCH_FLAG, .dest = &o->floor},
	    {0},
	};
	int rc;

	o->seconds = 1.0;
	o->rounds = 5;
	o->nthreads = 0;
	for (int t = 1; t <= 4; t++)
		o->threads[o->nthreads++] = t;
	o->verbose = 0;
	rc = bench_parse_opts("bench_sign", argc, argv, opts, usage);
	if (rc != 0)
		return rc;
	if (strlen(ec) > 64 || strlen(rsa) > 64) {
		fail("a key label must have 1 to 64 characters");
		return -1;
	}
	/* "none": skip that kind (a token that lacks it) */
	o->label[K_EC] = strcmp(ec, "none") ? ec : NULL;
	o->label[K_RSA] = strcmp(rsa, "none") ? rsa : NULL;
	o->paths[P_A] = strchr(path, 'a') != NULL;
	o->paths[P_B] = strchr(path, 'b') != NULL;
	if (strspn(path, "ab") != strlen(path)) {
		fail("--path wants a, b or ab");
		return -1;
	}
	if (!o->label[K_EC] && !o->label[K_RSA]) {
		fail("--key-ec none and --key-rsa none leave nothing to measure");
		return -1;
	}
	return 0;
}

/* ---- (a) PKCS#11 -------------------------------------------------------------------------- */

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : dflt;
}

/* The length of a blank-padded PKCS#11 string without its padding. */
static int padded_len(const CK_UTF8CHAR *s, size_t n)
{
	while (n > 0 && s[n - 1] == ' ')
		n--;
	return (int)n;
}

static int read_pin(const char *path, char *pin, size_t pinsz)
{
	FILE *f;
	size_t n;
	int ret = -1;

	f = fopen(path, "re");
	if (f == NULL) {
		fail("cannot open PIN file %s: %s", path, strerror(errno));
		goto out;
	}
	n = fread(pin, 1, pinsz - 1, f);
	if (ferror(f)) {
		fail("cannot read PIN file %s", path);
		goto out;
	}
	pin[n] = '\0';
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		pin[--n] = '\0';
	if (n == 0) {
		fail("PIN file %s is empty", path);
		goto out;
	}
	ret = 0;
out:
	if (f != NULL)
		fclose(f);
	return ret;
}

static int p11_find_slot(struct p11 *p, const char *label)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i;
	CK_TOKEN_INFO ti;
	uint8_t padded[sizeof(ti.label)];
	size_t len = strlen(label);
	CK_RV rv;
	int ret = -1;

	if (len > sizeof(ti.label)) {
		fail("token label '%s' is longer than 32 bytes", label);
		goto out;
	}
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, len);
	rv = p->fl->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK) {
		fail("C_GetSlotList: 0x%lx", (unsigned long)rv);
		goto out;
	}
	slots = calloc(n > 0 ? n : 1, sizeof(*slots));
	if (slots == NULL) {
		fail("out of memory");
		goto out;
	}
	rv = p->fl->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		fail("C_GetSlotList: 0x%lx", (unsigned long)rv);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (p->fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    memcmp(ti.label, padded, sizeof(padded)) != 0)
			continue;
		p->slot = slots[i];
		ret = 0;
		goto out;
	}
	fail("no token labelled '%s'", label);
out:
	free(slots);
	return ret;
}

/* The one object of class cls labelled label. */
static int p11_find_key(struct p11 *p, CK_OBJECT_CLASS cls, CK_KEY_TYPE type, const char *label,
                        CK_OBJECT_HANDLE *h)
{
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_KEY_TYPE, &type, sizeof(type)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	CK_RV rv;
	int ret = -1;

	rv = p->fl->C_FindObjectsInit(p->session, t, 3);
	if (rv != CKR_OK) {
		fail("C_FindObjectsInit: 0x%lx", (unsigned long)rv);
		goto out;
	}
	rv = p->fl->C_FindObjects(p->session, found, 2, &n);
	p->fl->C_FindObjectsFinal(p->session);
	if (rv != CKR_OK) {
		fail("C_FindObjects: 0x%lx", (unsigned long)rv);
		goto out;
	}
	if (n != 1) {
		fail("%s %s key labelled '%s' on the token", n == 0 ? "no" : "more than one",
		     type == CKK_EC ? "EC" : "RSA", label);
		goto out;
	}
	*h = found[0];
	ret = 0;
out:
	return ret;
}

static int p11_open(struct bench *b)
{
	struct p11 *p = &b->p11;
	const char *module = env_or("HSMCA_BENCH_MODULE", DEFAULT_MODULE);
	const char *token = getenv("HSMCA_BENCH_TOKEN");
	const char *pin_file = getenv("HSMCA_BENCH_PIN_FILE");
	CK_C_INITIALIZE_ARGS init = {.flags = CKF_OS_LOCKING_OK};
	CK_C_GetFunctionList get_list;
	char pin[PIN_MAX];
	CK_INFO info;
	CK_RV rv;
	int k, ret = -1;

	memset(pin, 0, sizeof(pin));
	if (token == NULL || token[0] == '\0' || pin_file == NULL || pin_file[0] == '\0') {
		fail("set HSMCA_BENCH_TOKEN and HSMCA_BENCH_PIN_FILE");
		goto out;
	}
	if (read_pin(pin_file, pin, sizeof(pin)) != 0)
		goto out;
	p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL) {
		fail("cannot load %s: %s", module, dlerror());
		goto out;
	}
	*(void **)&get_list = dlsym(p->dl, "C_GetFunctionList");
	if (get_list == NULL) {
		fail("%s has no C_GetFunctionList", module);
		goto out;
	}
	rv = get_list(&p->fl);
	if (rv != CKR_OK) {
		fail("C_GetFunctionList: 0x%lx", (unsigned long)rv);
		goto out;
	}
	rv = p->fl->C_Initialize(&init);
	if (rv != CKR_OK) {
		fail("C_Initialize: 0x%lx", (unsigned long)rv);
		goto out;
	}
	p->initialized = 1;
	if (p->fl->C_GetInfo(&info) == CKR_OK)
		printf("module: %s (%.*s %.*s, library version %u.%u)\n", module,
		       padded_len(info.manufacturerID, sizeof(info.manufacturerID)),
		       info.manufacturerID,
		       padded_len(info.libraryDescription, sizeof(info.libraryDescription)),
		       info.libraryDescription, info.libraryVersion.major,
		       info.libraryVersion.minor);
	if (p11_find_slot(p, token) != 0)
		goto out;
	rv = p->fl->C_OpenSession(p->slot, CKF_SERIAL_SESSION, NULL, NULL, &p->session);
	if (rv != CKR_OK) {
		fail("C_OpenSession: 0x%lx", (unsigned long)rv);
		goto out;
	}
	p->have_session = 1;
	rv = p->fl->C_Login(p->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fail("C_Login: 0x%lx", (unsigned long)rv);
		goto out;
	}
	for (k = 0; k < K_N; k++) {
		CK_KEY_TYPE type = k == K_EC ? CKK_EC : CKK_RSA;

		if (b->o.label[k] == NULL)
			continue;
		if (p11_find_key(p, CKO_PRIVATE_KEY, type, b->o.label[k], &p->priv[k]) != 0 ||
		    p11_find_key(p, CKO_PUBLIC_KEY, type, b->o.label[k], &p->pub[k]) != 0)
			goto out;
	}
	ret = 0;
out:
	OPENSSL_cleanse(pin, sizeof(pin));
	return ret;
}

static void p11_close(struct p11 *p)
{
	if (p->have_session) {
		p->fl->C_Logout(p->session);
		p->fl->C_CloseSession(p->session);
	}
	if (p->initialized)
		p->fl->C_Finalize(NULL);
	/* The module stays mapped: SoftHSM registers OpenSSL clean-up that runs at exit. */
}

static void p11_mechanism(const struct bench *b, enum kind k, CK_MECHANISM *m, const uint8_t **tbs,
                          CK_ULONG *tbslen)
{
	m->mechanism = k == K_EC ? CKM_ECDSA : CKM_RSA_PKCS;
	m->pParameter = NULL;
	m->ulParameterLen = 0;
	*tbs = k == K_EC ? b->digest : b->digest_info;
	*tbslen = k == K_EC ? sizeof(b->digest) : sizeof(b->digest_info);
}

static CK_RV p11_sign(const struct bench *b, CK_SESSION_HANDLE s, enum kind k, uint8_t *sig,
                      size_t *siglen)
{
	CK_FUNCTION_LIST_PTR fl = b->p11.fl;
	CK_MECHANISM m;
	const uint8_t *tbs;
	CK_ULONG tbslen, len = MAX_SIG;
	CK_RV rv;

	p11_mechanism(b, k, &m, &tbs, &tbslen);
	rv = fl->C_SignInit(s, &m, b->p11.priv[k]);
	if (rv != CKR_OK)
		return rv;
	rv = fl->C_Sign(s, (CK_BYTE_PTR)tbs, tbslen, sig, &len);
	if (rv == CKR_OK)
		*siglen = len;
	return rv;
}

/* ECDSA-Sig-Value (DER) to r || s, each padded to the field size, as CKM_ECDSA wants. */
static int ecdsa_der_to_raw(const uint8_t *der, size_t derlen, uint8_t *raw, size_t *rawlen)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *es;
	int ret = -1;

	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (es == NULL || p != der + derlen)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32)
		goto out;
	*rawlen = 64;
	ret = 0;
out:
	ECDSA_SIG_free(es);
	return ret;
}

/* Check a signature made by either path against the token's public key. */
static int p11_verify(const struct bench *b, enum kind k, enum path path, const uint8_t *sig,
                      size_t siglen)
{
	CK_FUNCTION_LIST_PTR fl = b->p11.fl;
	CK_SESSION_HANDLE s = b->p11.session;
	uint8_t raw[64];
	CK_MECHANISM m;
	const uint8_t *tbs;
	CK_ULONG tbslen;
	CK_RV rv;
	int ret = -1;

	if (k == K_EC && path == P_B) {
		if (ecdsa_der_to_raw(sig, siglen, raw, &siglen) != 0) {
			fail("%s %s: the signature is not a P-256 ECDSA-Sig-Value", kind_name[k],
			     path_name[path]);
			goto out;
		}
		sig = raw;
	}
	p11_mechanism(b, k, &m, &tbs, &tbslen);
	rv = fl->C_VerifyInit(s, &m, b->p11.pub[k]);
	if (rv == CKR_OK)
		rv = fl->C_Verify(s, (CK_BYTE_PTR)tbs, tbslen, (CK_BYTE_PTR)sig, siglen);
	if (rv != CKR_OK) {
		fail("%s %s: the signature does not verify with the token's public key (0x%lx)",
		     kind_name[k], path_name[path], (unsigned long)rv);
		goto out;
	}
	ret = 0;
out:
	return ret;
}

/* ---- (b) keyd through the provider --------------------------------------------------------- */

static int prov_open(struct bench *b)
{
	struct prov *p = &b->prov;
	const char *dir = getenv("HSMCA_PROVIDER_DIR");
	OSSL_STORE_CTX *store = NULL;
	OSSL_STORE_INFO *info;
	char uri[128];
	int k, ret = -1;

	if (dir == NULL || dir[0] == '\0') {
		fail("set HSMCA_PROVIDER_DIR to the directory holding keyd.so (or use --path a)");
		goto out;
	}
	if (getenv("HSMCA_KEYD_SOCKET") == NULL)
		fail("warning: HSMCA_KEYD_SOCKET is not set");
	if (!OSSL_PROVIDER_set_default_search_path(NULL, dir)) {
		fail_ossl("OSSL_PROVIDER_set_default_search_path");
		goto out;
	}
	p->keyd = OSSL_PROVIDER_load(NULL, "keyd");
	if (p->keyd == NULL) {
		fail_ossl("loading the keyd provider");
		goto out;
	}
	p->deflt = OSSL_PROVIDER_load(NULL, "default");
	if (p->deflt == NULL) {
		fail_ossl("loading the default provider");
		goto out;
	}
	for (k = 0; k < K_N; k++) {
		if (b->o.label[k] == NULL)
			continue;
		snprintf(uri, sizeof(uri), "keyd:label=%s", b->o.label[k]);
		store = OSSL_STORE_open_ex(uri, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
		if (store == NULL) {
			fail_ossl(uri);
			goto out;
		}
		while (p->pkey[k] == NULL && !OSSL_STORE_eof(store)) {
			info = OSSL_STORE_load(store);
			if (info == NULL) {
				if (OSSL_STORE_error(store))
					break;
				continue;
			}
			if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
				p->pkey[k] = OSSL_STORE_INFO_get1_PKEY(info);
			OSSL_STORE_INFO_free(info);
		}
		OSSL_STORE_close(store);
		store = NULL;
		if (p->pkey[k] == NULL) {
			fail("%s: no private key", uri);
			ERR_print_errors_fp(stderr);
			goto out;
		}
	}
	ret = 0;
out:
	OSSL_STORE_close(store);
	return ret;
}

static void prov_close(struct prov *p)
{
	int k;

	for (k = 0; k < K_N; k++)
		EVP_PKEY_free(p->pkey[k]);
	if (p->deflt != NULL)
		OSSL_PROVIDER_unload(p->deflt);
	if (p->keyd != NULL)
		OSSL_PROVIDER_unload(p->keyd);
}

static EVP_PKEY_CTX *prov_sign_ctx(const struct bench *b, enum kind k)
{
	EVP_PKEY_CTX *ctx;

	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, b->prov.pkey[k], NULL);
	if (ctx == NULL) {
		fail_ossl("EVP_PKEY_CTX_new_from_pkey");
		goto err;
	}
	if (EVP_PKEY_sign_init(ctx) <= 0) {
		fail_ossl("EVP_PKEY_sign_init");
		goto err;
	}
	if (EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) {
		fail_ossl("EVP_PKEY_CTX_set_signature_md");
		goto err;
	}
	if (k == K_RSA && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) {
		fail_ossl("EVP_PKEY_CTX_set_rsa_padding");
		goto err;
	}
	return ctx;
err:
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

/* ---- timed runs ------------------------------------------------------------------------------ */

/* Set-up is done (ok or not): report it, then wait for the start. */
static void worker_ready(struct worker *w, int ok)
{
	struct run *r = w->run;

	if (!ok)
		atomic_store(&r->failed, 1);
	pthread_mutex_lock(&r->lock);
	r->ready++;
	pthread_cond_broadcast(&r->cond);
	while (!r->go)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

static int worker_continue(struct run *r)
{
	return !atomic_load_explicit(&r->stop, memory_order_relaxed) &&
	       !atomic_load_explicit(&r->failed, memory_order_relaxed);
}

static void worker_a(struct worker *w)
{
	struct run *r = w->run;
	const struct bench *b = r->b;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	uint8_t sig[MAX_SIG];
	size_t siglen;
	CK_RV rv;
	int ok = 0;

	rv = b->p11.fl->C_OpenSession(b->p11.slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		fail("C_OpenSession: 0x%lx", (unsigned long)rv);
		s = CK_INVALID_HANDLE;
		worker_ready(w, 0);
		goto out;
	}
	rv = p11_sign(b, s, r->kind, w->sig, &w->siglen);
	if (rv != CKR_OK)
		fail("%s %s: C_SignInit/C_Sign: 0x%lx", kind_name[r->kind], path_name[P_A],
		     (unsigned long)rv);
	worker_ready(w, rv == CKR_OK);
	while (worker_continue(r)) {
		rv = p11_sign(b, s, r->kind, sig, &siglen);
		if (rv != CKR_OK) {
			fail("%s %s: C_SignInit/C_Sign: 0x%lx", kind_name[r->kind], path_name[P_A],
			     (unsigned long)rv);
			goto out;
		}
		w->count++;
	}
	ok = 1;
out:
	clock_gettime(CLOCK_MONOTONIC, &w->end);
	if (!ok)
		atomic_store(&r->failed, 1);
	if (s != CK_INVALID_HANDLE)
		b->p11.fl->C_CloseSession(s);
}

static void worker_b(struct worker *w)
{
	struct run *r = w->run;
	const struct bench *b = r->b;
	const uint8_t *dgst = b->digest;
	EVP_PKEY_CTX *ctx;
	uint8_t sig[MAX_SIG];
	size_t siglen;
	int ok = 0;

	ctx = prov_sign_ctx(b, r->kind);
	if (ctx == NULL) {
		worker_ready(w, 0);
		goto out;
	}
	w->siglen = sizeof(w->sig);
	if (EVP_PKEY_sign(ctx, w->sig, &w->siglen, dgst, sizeof(b->digest)) <= 0) {
		fail_ossl("EVP_PKEY_sign");
		worker_ready(w, 0);
		goto out;
	}
	worker_ready(w, 1);
	while (worker_continue(r)) {
		siglen = sizeof(sig);
		if (EVP_PKEY_sign(ctx, sig, &siglen, dgst, sizeof(b->digest)) <= 0) {
			fail_ossl("EVP_PKEY_sign");
			goto out;
		}
		w->count++;
	}
	ok = 1;
out:
	clock_gettime(CLOCK_MONOTONIC, &w->end);
	if (!ok)
		atomic_store(&r->failed, 1);
	EVP_PKEY_CTX_free(ctx);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->run->path == P_A)
		worker_a(w);
	else
		worker_b(w);
	return NULL;
}

/* Sleep for the round while watching for a failed worker. */
static void run_wait(struct run *r, double seconds)
{
	struct timespec start, now, step = {0, 10 * 1000 * 1000};

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ts_diff(&start, &now) >= seconds || atomic_load(&r->failed))
			break;
		if (seconds - ts_diff(&start, &now) < 0.01)
			step.tv_nsec = (long)((seconds - ts_diff(&start, &now)) * 1e9);
		nanosleep(&step, NULL);
	}
}

/* CPU seconds (user and system) of who (RUSAGE_SELF, RUSAGE_CHILDREN). */
static double cpu_used(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds this process has used. */
static double cpu_self(void)
{
	return cpu_used(RUSAGE_SELF);
}

/* CPU seconds process pid has used (/proc/PID/stat, clock ticks); 0 when pid is 0 or gone. */
static double cpu_of(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after the command's ")": state, then fields 4..13, then utime and stime (14, 15) */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One round: nthreads clients on one key and path for o.seconds; *rate in signatures/s, *cpu
 * the CPU microseconds per signature of this process (and of keyd for (b), when its pid is
 * known) while the clients ran. */
static int run_round(struct bench *b, enum kind k, enum path path, int nthreads, double *rate,
                     double *cpu)
{
	double cpu0 = 0, cpu1;
	struct run r = {.b = b, .kind = k, .path = path};
	struct worker *w;
	struct timespec start, end;
	unsigned long total = 0;
	int i, created = 0, ret = -1;

	w = calloc((size_t)nthreads, sizeof(*w));
	if (w == NULL) {
		fail("out of memory");
		return -1;
	}
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	atomic_init(&r.stop, 0);
	atomic_init(&r.failed, 0);

	for (i = 0; i < nthreads; i++) {
		w[i].run = &r;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
			fail("cannot start a thread");
			atomic_store(&r.failed, 1);
			break;
		}
		w[i].started = 1;
		created++;
	}
	pthread_mutex_lock(&r.lock);
	while (r.ready < created)
		pthread_cond_wait(&r.cond, &r.lock);
	clock_gettime(CLOCK_MONOTONIC, &start);
	cpu0 = cpu_self() + (path == P_B ? cpu_of(b->o.keyd_pid) : 0);
	r.go = 1;
	pthread_cond_broadcast(&r.cond);
	pthread_mutex_unlock(&r.lock);

	if (!atomic_load(&r.failed))
		run_wait(&r, b->o.seconds);
	atomic_store(&r.stop, 1);

	end = start;
	for (i = 0; i < nthreads; i++) {
		if (!w[i].started)
			continue;
		pthread_join(w[i].tid, NULL);
		total += w[i].count;
		if (ts_diff(&end, &w[i].end) > 0)
			end = w[i].end;
	}
	cpu1 = cpu_self() + (path == P_B ? cpu_of(b->o.keyd_pid) : 0);
	if (atomic_load(&r.failed) || created != nthreads)
		goto out;
	for (i = 0; i < nthreads; i++)
		if (p11_verify(b, k, path, w[i].sig, w[i].siglen) != 0)
			goto out;
	*rate = (double)total / ts_diff(&start, &end);
	*cpu = total ? (cpu1 - cpu0) * 1e6 / (double)total : 0;
	ret = 0;
out:
	pthread_cond_destroy(&r.cond);
	pthread_mutex_destroy(&r.lock);
	free(w);
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void print_rounds(const char *name, const double *v, int n)
{
	int i;

	printf("          %-12s", name);
	for (i = 0; i < n; i++)
		printf(" %.0f", v[i]);
	printf("\n");
}

/* One table: every thread count for one key, rounds alternating between the paths. */
static int bench_kind(struct bench *b, enum kind k)
{
	static double rates[P_N][MAX_ROUNDS], cpus[P_N][MAX_ROUNDS];
	const struct opts *o = &b->o;
	double med[P_N];
	int t, round, i, p;

	printf("\n%s (key '%s'): signatures/s, median of %d round%s of %g s\n", kind_name[k],
	       o->label[k], o->rounds, o->rounds == 1 ? "" : "s", o->seconds);
	printf("%7s  %14s  %14s  %6s  %10s  %12s\n", "threads",
	       o->paths[P_A] ? path_name[P_A] : "-", o->paths[P_B] ? path_name[P_B] : "-", "b/a",
	       "CPU/sig a", o->keyd_pid ? "b (+keyd)" : "b (no keyd)");
	for (t = 0; t < o->nthreads; t++) {
		for (round = 0; round < o->rounds; round++) {
			for (i = 0; i < P_N; i++) {
				/* a,b then b,a: neither path always runs first */
				p = round % 2 ? P_N - 1 - i : i;
				if (!o->paths[p])
					continue;
				if (run_round(b, k, (enum path)p, o->threads[t], &rates[p][round],
				              &cpus[p][round]) != 0)
					return -1;
			}
		}
		printf("%7d", o->threads[t]);
		for (p = 0; p < P_N; p++) {
			med[p] = o->paths[p] ? median(rates[p], o->rounds) : 0;
			if (o->paths[p])
				printf("  %14.0f", med[p]);
			else
				printf("  %14s", "-");
		}
		if (o->paths[P_A] && o->paths[P_B] && med[P_A] > 0)
			printf("  %6.2f", med[P_B] / med[P_A]);
		else
			printf("  %6s", "-");
		printf("  %8.1f us  %9.1f us\n", o->paths[P_A] ? median(cpus[P_A], o->rounds) : 0.0,
		       o->paths[P_B] ? median(cpus[P_B], o->rounds) : 0.0);
		if (o->verbose)
			for (p = 0; p < P_N; p++)
				if (o->paths[p])
					print_rounds(path_name[p], rates[p], o->rounds);
		fflush(stdout);
	}
	return 0;
}

/* ---- the round-trip floor ------------------------------------------------------------------- */

/* What any design with the key in another process pays per signature beyond the signing: one
 * request and one answer over a Unix stream socket, each side sleeping in poll and reading
 * with recv (as keyd's client library and keyd's workers, in epoll), the answer sent with
 * send. Frame sizes of a P-256 request and answer. Nothing is signed. */
#define FLOOR_REQ 64
#define FLOOR_ANS 84

struct floor_client {
	int fd;
	atomic_int *stop;
	unsigned long count;
	int failed;
};

static int floor_full(int fd, uint8_t *buf, size_t want, int in)
{
	for (size_t got = 0; got < want;) {
		ssize_t r =
		    in ? recv(fd, buf + got, want - got, 0) : send(fd, buf + got, want - got, 0);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void *floor_client_main(void *arg)
{
	struct floor_client *c = arg;
	uint8_t buf[FLOOR_ANS] = {0};

	while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		if (floor_full(c->fd, buf, FLOOR_REQ, 0) || poll(&pf, 1, 5000) != 1 ||
		    floor_full(c->fd, buf, FLOOR_ANS, 1)) {
			c->failed = 1;
			break;
		}
		c->count++;
	}
	return NULL;
}

/* One round of n client threads, each with an echo process of its own: *rate round trips/s,
 * *cpu the CPU microseconds per round trip of the clients and the echo processes together. */
static int floor_round(int n, double seconds, double *rate, double *cpu)
{
	int sv[MAX_THREADS][2], ret = -1, made = 0;
	pid_t kids[MAX_THREADS];
	struct floor_client c[MAX_THREADS] = {0};
	pthread_t tid[MAX_THREADS];
	atomic_int stop = 0;
	double t0, t1, self0, self1, kids0 = cpu_used(RUSAGE_CHILDREN);
	unsigned long total = 0;

	for (; made < n; made++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[made]) != 0)
			break;
		if ((kids[made] = fork()) == 0) {
			uint8_t buf[FLOOR_ANS] = {0};
			for (int j = 0; j <= made; j++)
				if (j != made)
					close(sv[j][0]), close(sv[j][1]);
			close(sv[made][0]);
			/* Sleeps in poll, as keyd's workers sleep in epoll: a thread asleep in
			 * recv is also woken when the client reads the answer (see
			 * keyd_client.c), which no server of ours pays. */
			for (;;) {
				struct pollfd pf = {.fd = sv[made][1], .events = POLLIN};
				if (poll(&pf, 1, -1) != 1 ||
				    floor_full(sv[made][1], buf, FLOOR_REQ, 1) ||
				    floor_full(sv[made][1], buf, FLOOR_ANS, 0))
					_exit(0);
			}
		}
		close(sv[made][1]);
		if (kids[made] < 0) {
			close(sv[made][0]);
			break;
		}
	}
	if (made == n) {
		int started = 0;
		self0 = cpu_self();
		t0 = bench_now();
		for (; started < n; started++) {
			c[started] = (struct floor_client){.fd = sv[started][0], .stop = &stop};
			if (pthread_create(&tid[started], NULL, floor_client_main, &c[started]))
				break;
		}
		if (started == n) {
			struct timespec step = {0, 10 * 1000 * 1000};
			while (bench_now() - t0 < seconds)
				nanosleep(&step, NULL);
		}
		atomic_store(&stop, 1);
		for (int i = 0; i < started; i++) {
			pthread_join(tid[i], NULL);
			total += c[i].count;
			if (c[i].failed)
				started = -1;
		}
		t1 = bench_now();
		self1 = cpu_self();
		ret = started == n ? 0 : -1;
	}
	for (int i = 0; i < made; i++)
		close(sv[i][0]); /* the echo process sees EOF and exits */
	for (int i = 0; i < made; i++)
		waitpid(kids[i], NULL, 0);
	if (ret == 0 && total) {
		double kids_cpu = cpu_used(RUSAGE_CHILDREN) - kids0;
		*rate = (double)total / (t1 - t0);
		*cpu = (self1 - self0 + kids_cpu) * 1e6 / (double)total;
	} else {
		fail("the round-trip floor: %s",
		     made < n ? "socketpair or fork failed" : "a client's exchange failed");
		ret = -1;
	}
	return ret;
}

static int bench_floor(const struct opts *o)
{
	static double rates[MAX_ROUNDS], cpus[MAX_ROUNDS];

	printf(
	    "\nround-trip floor (two processes over a Unix socket, nothing signed), median of %d "
	    "round%s of %g s\n",
	    o->rounds, o->rounds == 1 ? "" : "s", o->seconds);
	printf("%7s  %14s  %22s\n", "threads", "round trips/s", "CPU us/round trip");
	for (int t = 0; t < o->nthreads; t++) {
		for (int round = 0; round < o->rounds; round++)
			if (floor_round(o->threads[t], o->seconds, &rates[round], &cpus[round]) !=
			    0)
				return -1;
		printf("%7d  %14.0f  %22.1f\n", o->threads[t], median(rates, o->rounds),
		       median(cpus, o->rounds));
		if (o->verbose) {
			print_rounds("round trips", rates, o->rounds);
			print_rounds("CPU us", cpus, o->rounds);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	static const char msg[] = "hsmca bench_sign: a fixed message to sign";
	unsigned int mdlen = 0;
	int k, rc, ret = 1;

	rc = parse_opts(argc, argv, &b.o);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (getenv("HSMCA_BENCH_KEYD_PID"))
		b.o.keyd_pid = atoi(getenv("HSMCA_BENCH_KEYD_PID"));
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!EVP_Digest(msg, sizeof(msg) - 1, b.digest, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != sizeof(b.digest)) {
		fail_ossl("EVP_Digest");
		goto out;
	}
	memcpy(b.digest_info, sha256_prefix, sizeof(sha256_prefix));
	memcpy(b.digest_info + sizeof(sha256_prefix), b.digest, sizeof(b.digest));

	printf("bench_sign: OpenSSL %s; clients are threads%s\n",
	       OpenSSL_version(OPENSSL_VERSION_STRING),
	       b.o.paths[P_A] && b.o.paths[P_B] ? "; (a) and (b) rounds alternate" : "");
	/* The module is needed for (a) and to check (b)'s signatures with the public key. */
	if (p11_open(&b) != 0)
		goto out;
	if (b.o.paths[P_B] && prov_open(&b) != 0)
		goto out;
	for (k = 0; k < K_N; k++)
		if (b.o.label[k] != NULL && bench_kind(&b, (enum kind)k) != 0)
			goto out;
	if (b.o.floor && bench_floor(&b.o) != 0)
		goto out;
	ret = 0;
out:
	prov_close(&b.prov);
	p11_close(&b.p11);
	if (ret != 0)
		fail("FAILED");
	return ret;
}
