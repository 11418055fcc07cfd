/* A CRL built as a stream: entries into a temporary file, the TBSCertList digested and signed
 * in one pass over header, entries and extensions, then the CertificateList written from the
 * same pieces. Nothing here grows with the number of entries. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "cakey.h"
#include "crl.h"
#include "der.h"

#define IOBUF (64 * 1024)
#define HEAD_MAX 8192
#define EXTS_MAX 8192
#define SIG_MAX 1024
#define URI_MAX 1024

static const uint8_t oid_aki[] = {0x55, 0x1d, 0x23}, oid_number[] = {0x55, 0x1d, 0x14},
                     oid_delta[] = {0x55, 0x1d, 0x1b}, oid_idp[] = {0x55, 0x1d, 0x1c},
                     oid_freshest[] = {0x55, 0x1d, 0x2e}, oid_reason[] = {0x55, 0x1d, 0x15},
                     oid_invalidity[] = {0x55, 0x1d, 0x18};

static const uint8_t alg_ecdsa_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t alg_ecdsa_sha384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t alg_ecdsa_sha512[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};
static const uint8_t alg_rsa_sha256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                         0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};

static const struct sigalg {
	const uint8_t *der;
	size_t len;
	const char *md;
	const char *key_type;
} sigalgs[] = {{alg_ecdsa_sha256, sizeof(alg_ecdsa_sha256), "SHA256", "EC"},
               {alg_ecdsa_sha384, sizeof(alg_ecdsa_sha384), "SHA384", "EC"},
               {alg_ecdsa_sha512, sizeof(alg_ecdsa_sha512), "SHA512", "EC"},
               {alg_rsa_sha256, sizeof(alg_rsa_sha256), "SHA256", "RSA"}};

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* The signature algorithm for a CA key: ECDSA or RSA PKCS#1 v1.5 with the digest every
 * signer of hsmca uses for the key (ca_key_digest). EdDSA cannot sign a stream (it has no
 * digest to feed piecewise) and is refused. */
static const struct sigalg *sigalg_for(EVP_PKEY *k)
{
	const char *md = ca_key_digest(k);

	for (size_t i = 0; md && i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++)
		if (EVP_PKEY_is_a(k, sigalgs[i].key_type) && !strcmp(md, sigalgs[i].md))
			return &sigalgs[i];
	return NULL;
}

/* ---- buffered file output ---- */

struct wfile {
	int fd;
	int err;
	size_t len;
	uint64_t total;
	uint8_t buf[IOBUF];
};

static int w_flush(struct wfile *w)
{
	size_t off = 0;

	while (!w->err && off < w->len) {
		ssize_t k = write(w->fd, w->buf + off, w->len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			w->err = k < 0 ? errno : EIO;
		else
			off += (size_t)k;
	}
	w->len = 0;
	return w->err ? -1 : 0;
}

static void w_put(struct wfile *w, const void *b, size_t n)
{
	const uint8_t *p = b;

	w->total += n;
	while (n && !w->err) {
		size_t k = IOBUF - w->len < n ? IOBUF - w->len : n;
		memcpy(w->buf + w->len, p, k);
		w->len += k;
		p += k;
		n -= k;
		if (w->len == IOBUF)
			w_flush(w);
	}
}

/* Read fd from the start to its end, handing each chunk to fn. */
static int each_chunk(int fd, uint8_t *buf, int (*fn)(void *, const uint8_t *, size_t), void *arg)
{
	if (lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	for (;;) {
		ssize_t k = read(fd, buf, IOBUF);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			return 0;
		if (fn(arg, buf, (size_t)k) != 0)
			return -1;
	}
}

static int chunk_digest(void *arg, const uint8_t *b, size_t n)
{
	return EVP_DigestSignUpdate(arg, b, n) == 1 ? 0 : -1;
}

static int chunk_write(void *arg, const uint8_t *b, size_t n)
{
	struct wfile *w = arg;

	w_put(w, b, n);
	return w->err ? -1 : 0;
}

/* ---- encodings ---- */

static void ext(struct der *d, const uint8_t *oid, size_t oid_len, int critical, const uint8_t *val,
                size_t val_len)
{
	size_t inner = 2 + oid_len + (critical ? 3 : 0) + der_hdr_size(val_len) + val_len;
	static const uint8_t crit[] = {0x01, 0x01, 0xff};

	der_hdr(d, 0x30, inner);
	der_tlv(d, 0x06, oid, oid_len);
	if (critical)
		der_raw(d, crit, sizeof(crit));
	der_tlv(d, 0x04, val, val_len);
}

/* DistributionPointName fullName with one URI: [0] { [0] { [6] uri } }. */
static void dp_name(struct der *d, const char *uri)
{
	size_t u = strlen(uri), g = der_hdr_size(u) + u, f = der_hdr_size(g) + g;

	der_hdr(d, 0xa0, f);
	der_hdr(d, 0xa0, g);
	der_tlv(d, 0x86, uri, u);
}

static size_t dp_name_size(const char *uri)
{
	size_t u = strlen(uri), g = der_hdr_size(u) + u, f = der_hdr_size(g) + g;

	return der_hdr_size(f) + f;
}

/* One revokedCertificates element. */
static int encode_entry(struct der *d, const struct crl_entry *e)
{
	uint8_t eb[128], xb[96], vb[32];
	struct der body, exts, v;

	der_init(&body, eb, sizeof(eb));
	der_uint_bytes(&body, e->serial, e->serial_len);
	der_time(&body, e->revoked_at, 0);
	der_init(&exts, xb, sizeof(xb));
	if (e->reason > 0) {
		uint8_t r[3] = {0x0a, 0x01, (uint8_t)e->reason};
		ext(&exts, oid_reason, sizeof(oid_reason), 0, r, sizeof(r));
	}
	if (e->invalidity_date > 0) {
		der_init(&v, vb, sizeof(vb));
		der_time(&v, e->invalidity_date, 1);
		if (v.overflow)
			return -1;
		ext(&exts, oid_invalidity, sizeof(oid_invalidity), 0, v.p, v.len);
	}
	if (exts.len)
		der_tlv(&body, 0x30, exts.p, exts.len);
	der_tlv(d, 0x30, body.p, body.len);
	return body.overflow || exts.overflow || d->overflow ? -1 : 0;
}

static int check_entry(const struct crl_entry *e, char *why, size_t n)
{
	if (e->serial_len < 1 || e->serial_len > CRL_SERIAL_MAX || e->serial[0] == 0)
		return fail(why, n, "an entry's serial is not 1..%d minimal bytes", CRL_SERIAL_MAX);
	if (e->reason < -1 || e->reason > 10 || e->reason == 7)
		return fail(why, n, "an entry has reason code %d", e->reason);
	return 0;
}

static int encode_exts(const struct crl_params *p, X509 *ca, struct der *d, char *why, size_t n)
{
	uint8_t vb[URI_MAX + 64], xb[EXTS_MAX], kid[EVP_MAX_MD_SIZE];
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
	const uint8_t *kp;
	unsigned int klen;
	struct der v, x;

	der_init(&x, xb, sizeof(xb));
	/* AKI: the CA's subject key identifier (or its RFC 5280 method 1 value). */
	if (ski) {
		kp = ASN1_STRING_get0_data(ski);
		klen = (unsigned)ASN1_STRING_length(ski);
	} else {
		if (!X509_pubkey_digest(ca, EVP_sha1(), kid, &klen))
			return fail(why, n, "cannot compute the CA's key identifier");
		kp = kid;
	}
	der_init(&v, vb, sizeof(vb));
	der_hdr(&v, 0x30, der_hdr_size(klen) + klen);
	der_tlv(&v, 0x80, kp, klen);
	ext(&x, oid_aki, sizeof(oid_aki), 0, v.p, v.len);
	der_init(&v, vb, sizeof(vb));
	der_int64(&v, p->number);
	ext(&x, oid_number, sizeof(oid_number), 0, v.p, v.len);
	if (p->delta_base > 0) {
		der_init(&v, vb, sizeof(vb));
		der_int64(&v, p->delta_base);
		ext(&x, oid_delta, sizeof(oid_delta), 1, v.p, v.len);
	}
	if (p->idp_uri) {
		der_init(&v, vb, sizeof(vb));
		der_hdr(&v, 0x30, dp_name_size(p->idp_uri));
		dp_name(&v, p->idp_uri);
		if (v.overflow)
			return fail(why, n, "the IDP URI is too long");
		ext(&x, oid_idp, sizeof(oid_idp), 1, v.p, v.len);
	}
	if (p->freshest_uri) {
		size_t dp = dp_name_size(p->freshest_uri);
		der_init(&v, vb, sizeof(vb));
		der_hdr(&v, 0x30, der_hdr_size(dp) + dp);
		der_hdr(&v, 0x30, dp);
		dp_name(&v, p->freshest_uri);
		if (v.overflow)
			return fail(why, n, "the Freshest CRL URI is too long");
		ext(&x, oid_freshest, sizeof(oid_freshest), 0, v.p, v.len);
	}
	der_hdr(d, 0xa0, der_hdr_size(x.len) + x.len);
	der_tlv(d, 0x30, x.p, x.len);
	return x.overflow || d->overflow ? fail(why, n, "the CRL extensions do not fit") : 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *ossl_why(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_peek_last_error();
	const char *data = NULL;
	int flags = 0;

	ERR_peek_last_error_data(&data, &flags);
	ERR_error_string_n(e, buf, sizeof(buf));
	if ((flags & ERR_TXT_STRING) && data && *data) {
		size_t l = strlen(buf);
		snprintf(buf + l, sizeof(buf) - l, ": %s", data);
	}
	ERR_clear_error();
	return e ? buf : "unknown error";
}

int crl_build(const struct crl_params *p, crl_next_fn next, void *arg, const char *out_path,
              struct crl_result *res, char *why, size_t n)
{
	static const uint8_t version[] = {0x02, 0x01, 0x01};
	const struct sigalg *alg = sigalg_for(p->key);
	struct wfile *w = NULL, *out = NULL;
	uint8_t *head = NULL, *exts_b = NULL, *iobuf = NULL, sig[SIG_MAX];
	unsigned char *issuer = NULL;
	struct der head_d, exts_d, times;
	uint8_t tb[64];
	char tmpl[1024];
	EVP_MD_CTX *m = NULL;
	size_t siglen = sizeof(sig), tbs_len, total, bits_len;
	int issuer_len, rc = -1;
	uint64_t entries = 0;
	int64_t t0 = mono_ms(), t1 = 0, t2 = 0;

	memset(res, 0, sizeof(*res));
	if (!alg)
		return fail(why, n,
		            "the CA key's algorithm cannot sign a CRL as a stream (RSA or "
		            "ECDSA only)");
	if (p->number <= 0 || p->this_update <= 0 || p->next_update <= p->this_update)
		return fail(why, n,
		            "CRL number and times must be positive, nextUpdate after "
		            "thisUpdate");
	w = calloc(1, sizeof(*w));
	out = calloc(1, sizeof(*out));
	head = malloc(HEAD_MAX);
	exts_b = malloc(EXTS_MAX + 64);
	iobuf = malloc(IOBUF);
	if (!w || !out || !head || !exts_b || !iobuf) {
		fail(why, n, "out of memory");
		goto done;
	}
	w->fd = out->fd = -1;
	snprintf(tmpl, sizeof(tmpl), "%s/.crl-entries.XXXXXX", p->tmp_dir ? p->tmp_dir : "/tmp");
	w->fd = mkstemp(tmpl);
	if (w->fd < 0) {
		fail(why, n, "cannot make a temporary file in %s: %s",
		     p->tmp_dir ? p->tmp_dir : "/tmp", strerror(errno));
		goto done;
	}
	unlink(tmpl);

	/* 1. The entries, DER-encoded, into the temporary file. */
	for (;;) {
		struct crl_entry e;
		uint8_t eb[256];
		struct der d;
		int got = 0;
		if (next(arg, &e, &got, why, n) != 0)
			goto done;
		if (!got)
			break;
		if (check_entry(&e, why, n) != 0)
			goto done;
		der_init(&d, eb, sizeof(eb));
		if (encode_entry(&d, &e) != 0) {
			fail(why, n, "an entry does not encode (a time X.509 cannot express?)");
			goto done;
		}
		w_put(w, d.p, d.len);
		entries++;
	}
	if (w_flush(w) != 0) {
		fail(why, n, "writing the entries: %s", strerror(w->err));
		goto done;
	}

	t1 = mono_ms();

	/* 2. Header and extensions, now that the entries' length is known. */
	der_init(&exts_d, exts_b, EXTS_MAX + 64);
	if (encode_exts(p, p->ca_cert, &exts_d, why, n) != 0)
		goto done;
	issuer_len = i2d_X509_NAME(X509_get_subject_name(p->ca_cert), &issuer);
	der_init(&times, tb, sizeof(tb));
	der_time(&times, p->this_update, 0);
	der_time(&times, p->next_update, 0);
	if (issuer_len <= 0 || times.overflow) {
		fail(why, n, "cannot encode the issuer name or the update times");
		goto done;
	}
	tbs_len = sizeof(version) + alg->len + (size_t)issuer_len + times.len +
	          (entries ? der_hdr_size(w->total) + w->total : 0) + exts_d.len;
	der_init(&head_d, head, HEAD_MAX);
	der_hdr(&head_d, 0x30, tbs_len);
	der_raw(&head_d, version, sizeof(version));
	der_raw(&head_d, alg->der, alg->len);
	der_raw(&head_d, issuer, (size_t)issuer_len);
	der_raw(&head_d, times.p, times.len);
	if (entries)
		der_hdr(&head_d, 0x30, w->total);
	if (head_d.overflow) {
		fail(why, n, "the CRL header does not fit (issuer name too long?)");
		goto done;
	}

	/* 3. Sign: header, entries, extensions through one digest. */
	m = EVP_MD_CTX_new();
	if (!m || EVP_DigestSignInit_ex(m, NULL, alg->md, NULL, NULL, p->key, NULL) != 1 ||
	    EVP_DigestSignUpdate(m, head_d.p, head_d.len) != 1 ||
	    each_chunk(w->fd, iobuf, chunk_digest, m) != 0 ||
	    EVP_DigestSignUpdate(m, exts_d.p, exts_d.len) != 1 ||
	    EVP_DigestSignFinal(m, NULL, &siglen) != 1 || siglen > sizeof(sig) ||
	    EVP_DigestSignFinal(m, sig, &siglen) != 1) {
		fail(why, n, "signing the CRL failed: %s", ossl_why());
		goto done;
	}

	t2 = mono_ms();

	/* 4. The CertificateList: { tbs, algorithm, BIT STRING signature }. */
	bits_len = siglen + 1;
	total = head_d.len + w->total + exts_d.len + alg->len + der_hdr_size(bits_len) + bits_len;
	/* A new file of our own: never one that is there already, nor through a symlink (a
	 * planted link in the publish folder must not make crld write elsewhere). */
	out->fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out->fd < 0) {
		fail(why, n, "cannot create %s: %s", out_path, strerror(errno));
		goto done;
	}
	{
		uint8_t hb[16], zero = 0;
		struct der h;
		der_init(&h, hb, sizeof(hb));
		der_hdr(&h, 0x30, total);
		w_put(out, h.p, h.len);
		w_put(out, head_d.p, head_d.len);
		if (each_chunk(w->fd, iobuf, chunk_write, out) != 0) {
			fail(why, n, "copying the entries into %s failed", out_path);
			goto done;
		}
		w_put(out, exts_d.p, exts_d.len);
		w_put(out, alg->der, alg->len);
		der_init(&h, hb, sizeof(hb));
		der_hdr(&h, 0x03, bits_len);
		w_put(out, h.p, h.len);
		w_put(out, &zero, 1);
		w_put(out, sig, siglen);
	}
	if (w_flush(out) != 0 || fsync(out->fd) != 0) {
		fail(why, n, "writing %s: %s", out_path, strerror(out->err ? out->err : errno));
		goto done;
	}
	res->entries = entries;
	res->bytes = out->total;
	res->ms_entries = t1 - t0;
	res->ms_sign = t2 - t1;
	res->ms_write = mono_ms() - t2;
	rc = 0;
done:
	EVP_MD_CTX_free(m);
	OPENSSL_free(issuer);
	if (w && w->fd >= 0)
		close(w->fd);
	if (out && out->fd >= 0)
		close(out->fd);
	free(w);
	free(out);
	free(head);
	free(exts_b);
	free(iobuf);
	return rc;
}

/* ---- verification, streaming ---- */

struct rfile {
	int fd;
	size_t pos, len; /* buffered bytes [pos, len) */
	uint64_t offset; /* file offset of buf[pos] */
	EVP_MD_CTX *md;  /* digests what is consumed while digesting is set */
	int digesting;
	int seqs; /* crl_read_header: SEQUENCEs of the TBSCertList seen so far */
	uint8_t buf[IOBUF];
};

static int r_fill(struct rfile *r, size_t want)
{
	if (r->len - r->pos >= want)
		return 0;
	memmove(r->buf, r->buf + r->pos, r->len - r->pos);
	r->len -= r->pos;
	r->pos = 0;
	while (r->len < want) {
		ssize_t k = read(r->fd, r->buf + r->len, IOBUF - r->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		r->len += (size_t)k;
	}
	return 0;
}

static int r_consume(struct rfile *r, uint8_t *out, uint64_t n)
{
	while (n) {
		size_t k;
		if (r_fill(r, 1) != 0)
			return -1;
		k = r->len - r->pos < n ? r->len - r->pos : (size_t)n;
		if (r->digesting && EVP_DigestVerifyUpdate(r->md, r->buf + r->pos, k) != 1)
			return -1;
		if (out) {
			memcpy(out, r->buf + r->pos, k);
			out += k;
		}
		r->pos += k;
		r->offset += k;
		n -= k;
	}
	return 0;
}

/* The next element's header: consumed, with its tag and content length. */
static int r_hdr(struct rfile *r, uint8_t *tag, uint64_t *len)
{
	size_t h;

	r_fill(r, 6); /* near the end of the file fewer bytes are fine */
	if (der_parse_hdr(r->buf + r->pos, r->len - r->pos, tag, &h, len) != 0)
		return -1;
	return r_consume(r, NULL, h);
}

static int parse_exts(struct der_in x, struct crl_info *info)
{
	struct der_in seq, e, oid, val, tmp;

	if (der_get(&x, 0x30, &seq) || x.len)
		return -1;
	while (seq.len) {
		if (der_get(&seq, 0x30, &e) || der_get(&e, 0x06, &oid))
			return -1;
		if (e.len && e.p[0] == 0x01 && der_get(&e, 0x01, &tmp))
			return -1;
		if (der_get(&e, 0x04, &val) || e.len)
			return -1;
		if (oid.len == 3 && !memcmp(oid.p, oid_number, 3) &&
		    (der_get_int64(&val, &info->number) || val.len))
			return -1;
		if (oid.len == 3 && !memcmp(oid.p, oid_delta, 3) &&
		    (der_get_int64(&val, &info->delta_base) || val.len))
			return -1;
	}
	return 0;
}

int crl_verify_file(const char *path, EVP_PKEY *pub, struct crl_info *info_out, char *why, size_t n)
{
	struct rfile *r = calloc(1, sizeof(*r));
	uint8_t tag, small[EXTS_MAX], alg_b[64], sig[SIG_MAX + 1];
	uint64_t len, tbs_end;
	struct crl_info info = {0};
	const struct sigalg *alg = NULL;
	struct stat st;
	struct der_in in;
	int rc = -1, seen_next = 0;

	if (!r)
		return fail(why, n, "out of memory");
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &st) != 0) {
		fail(why, n, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (r_hdr(r, &tag, &len) || tag != 0x30 || r->offset + len != (uint64_t)st.st_size) {
		fail(why, n, "%s: not one DER CertificateList", path);
		goto out;
	}
	/* The TBSCertList, header included, goes through the digest. */
	r->md = EVP_MD_CTX_new();
	if (!r->md || r_fill(r, 2) != 0) {
		fail(why, n, "%s: truncated", path);
		goto out;
	}
	{
		size_t h;
		if (der_parse_hdr(r->buf + r->pos, r->len - r->pos, &tag, &h, &len) ||
		    tag != 0x30) {
			fail(why, n, "%s: no TBSCertList", path);
			goto out;
		}
		/* The algorithm is in the TBS; digest after knowing it: peek it first. */
		if (r_fill(r, h + 3 + 2) != 0) {
			fail(why, n, "%s: truncated", path);
			goto out;
		}
		tbs_end = r->offset + h + len;
		{
			/* version INTEGER 1, then the AlgorithmIdentifier */
			const uint8_t *q = r->buf + r->pos + h;
			size_t ah, avail;
			uint64_t al;
			uint8_t at;
			if (q[0] != 0x02 || q[1] != 0x01 || q[2] != 0x01) {
				fail(why, n, "%s: not a v2 CRL", path);
				goto out;
			}
			if (r_fill(r, h + 3 + 64) != 0 && r->len - r->pos < h + 3 + 16) {
				fail(why, n, "%s: truncated", path);
				goto out;
			}
			q = r->buf + r->pos + h + 3;
			avail = r->len - r->pos - h - 3;
			if (der_parse_hdr(q, avail, &at, &ah, &al) || at != 0x30 || ah + al > 64 ||
			    ah + al > avail) {
				fail(why, n, "%s: bad signature algorithm", path);
				goto out;
			}
			for (size_t i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++)
				if (sigalgs[i].len == ah + al &&
				    !memcmp(sigalgs[i].der, q, ah + al))
					alg = &sigalgs[i];
			if (!alg) {
				fail(why, n, "%s: a signature algorithm hsmca does not use", path);
				goto out;
			}
		}
		if (EVP_DigestVerifyInit_ex(r->md, NULL, alg->md, NULL, NULL, pub, NULL) != 1) {
			fail(why, n, "%s: cannot verify with this key: %s", path, ossl_why());
			goto out;
		}
		r->digesting = 1;
		if (r_consume(r, NULL, h) != 0)
			goto trunc;
	}
	/* version, signature, issuer: small */
	for (int i = 0; i < 3; i++)
		if (r_hdr(r, &tag, &len) || len > sizeof(small) || r_consume(r, NULL, len))
			goto trunc;
	while (r->offset < tbs_end) {
		if (r_hdr(r, &tag, &len) || r->offset + len > tbs_end)
			goto trunc;
		if (tag == 0x17 || tag == 0x18) {
			uint8_t tbuf[40];
			int64_t t;
			if (len > 20 || r_consume(r, tbuf + 2, len))
				goto trunc;
			tbuf[0] = tag;
			tbuf[1] = (uint8_t)len;
			in.p = tbuf;
			in.len = len + 2;
			if (der_get_time(&in, &t))
				goto trunc;
			if (!info.this_update)
				info.this_update = t;
			else if (!seen_next++)
				info.next_update = t;
			else
				goto trunc;
		} else if (tag == 0x30) {
			/* the entries: only digested */
			if (r_consume(r, NULL, len))
				goto trunc;
		} else if (tag == 0xa0) {
			uint8_t eb[EXTS_MAX];
			if (len > EXTS_MAX || r_consume(r, eb, len))
				goto trunc;
			in.p = eb;
			in.len = (size_t)len;
			if (parse_exts(in, &info))
				goto trunc;
		} else {
			goto trunc;
		}
	}
	r->digesting = 0;
	if (r_hdr(r, &tag, &len) || tag != 0x30 || len + 2 > sizeof(alg_b) ||
	    r_consume(r, alg_b, len))
		goto trunc;
	if (len + 2 != alg->len || memcmp(alg_b, alg->der + 2, len)) {
		fail(why, n, "%s: the outer signature algorithm differs from the inner one", path);
		goto out;
	}
	if (r_hdr(r, &tag, &len) || tag != 0x03 || len < 2 || len > sizeof(sig) ||
	    r_consume(r, sig, len) || sig[0] != 0 || r->offset != (uint64_t)st.st_size)
		goto trunc;
	if (EVP_DigestVerifyFinal(r->md, sig + 1, (size_t)len - 1) != 1) {
		fail(why, n, "%s: the signature does not verify with the CA's public key", path);
		ERR_clear_error();
		goto out;
	}
	if (!info.number || !info.this_update || !info.next_update) {
		fail(why, n, "%s: lacks a CRL number, thisUpdate or nextUpdate", path);
		goto out;
	}
	if (info_out)
		*info_out = info;
	rc = 0;
	goto out;
trunc:
	fail(why, n, "%s: malformed or truncated CRL", path);
out:
	if (r->fd >= 0)
		close(r->fd);
	EVP_MD_CTX_free(r->md);
	free(r);
	return rc;
}

/* Append the TLV tag/len header to d. */
static size_t put_hdr(uint8_t *d, uint8_t tag, uint64_t len)
{
	size_t k = 0;

	d[k++] = tag;
	if (len < 0x80) {
		d[k++] = (uint8_t)len;
	} else {
		int bytes = 0;
		for (uint64_t v = len; v; v >>= 8)
			bytes++;
		d[k++] = (uint8_t)(0x80 | bytes);
		for (int i = bytes - 1; i >= 0; i--)
			d[k++] = (uint8_t)(len >> (8 * i));
	}
	return k;
}

int crl_read_header(const char *path, uint8_t **der_out, size_t *der_len, uint64_t *entries,
                    char *why, size_t n)
{
	struct rfile *r = calloc(1, sizeof(*r));
	uint8_t *tbs = malloc(2 * EXTS_MAX + 1024), *tail = malloc(SIG_MAX + 128), *out = NULL;
	size_t tl = 0, ql = 0, cap = 2 * EXTS_MAX + 1024;
	uint64_t len, tbs_end, count = 0;
	uint8_t tag;
	int rc = -1;

	if (!r || !tbs || !tail) {
		fail(why, n, "out of memory");
		goto out;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		fail(why, n, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (r_hdr(r, &tag, &len) || tag != 0x30 || r_hdr(r, &tag, &len) || tag != 0x30)
		goto trunc;
	tbs_end = r->offset + len;
	while (r->offset < tbs_end) {
		if (r_hdr(r, &tag, &len) || r->offset + len > tbs_end)
			goto trunc;
		/* The entries: the third SEQUENCE after the version (algorithm, issuer,
		 * entries). */
		if (tag == 0x30 && r->seqs == 2) {
			uint64_t end = r->offset + len;
			while (r->offset < end) {
				uint64_t el;
				uint8_t et;
				if (r_hdr(r, &et, &el) || et != 0x30 || r_consume(r, NULL, el))
					goto trunc;
				count++;
			}
			if (r->offset != end)
				goto trunc;
			continue;
		}
		if (tag == 0x30)
			r->seqs++;
		if (len + 8 > cap - tl)
			goto trunc;
		tl += put_hdr(tbs + tl, tag, len);
		if (r_consume(r, tbs + tl, len))
			goto trunc;
		tl += (size_t)len;
	}
	/* signatureAlgorithm and signatureValue */
	while (r_fill(r, 1) == 0) {
		if (r_hdr(r, &tag, &len) || len + 8 > SIG_MAX + 128 - ql)
			goto trunc;
		ql += put_hdr(tail + ql, tag, len);
		if (r_consume(r, tail + ql, len))
			goto trunc;
		ql += (size_t)len;
	}
	if (!(out = malloc(tl + ql + 16)))
		goto trunc;
	{
		uint8_t h[10];
		size_t hl = put_hdr(h, 0x30, tl), k;
		k = put_hdr(out, 0x30, hl + tl + ql);
		memcpy(out + k, h, hl);
		memcpy(out + k + hl, tbs, tl);
		memcpy(out + k + hl + tl, tail, ql);
		*der_len = k + hl + tl + ql;
	}
	*der_out = out;
	out = NULL;
	*entries = count;
	rc = 0;
	goto out;
trunc:
	fail(why, n, "%s: malformed or truncated CRL", path);
out:
	if (r && r->fd > 0)
		close(r->fd);
	free(r);
	free(tbs);
	free(tail);
	free(out);
	return rc;
}

int crl_write_pem(const char *der_path, const char *pem_path, char *why, size_t n)
{
	/* Created new, never through a symlink, as crl_build's output. */
	int pfd = open(pem_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	BIO *file = pfd >= 0 ? BIO_new_fd(pfd, BIO_CLOSE) : NULL, *b64 = BIO_new(BIO_f_base64());
	uint8_t *buf = malloc(IOBUF);
	int fd = open(der_path, O_RDONLY | O_CLOEXEC), rc = -1;
	BIO *chain = NULL;

	if (pfd < 0) {
		fail(why, n, "cannot create %s: %s", pem_path, strerror(errno));
		goto out;
	}
	if (!file) {
		close(pfd);
		fail(why, n, "cannot write %s: out of memory", pem_path);
		goto out;
	}
	if (!b64 || !buf || fd < 0) {
		fail(why, n, "cannot write %s from %s", pem_path, der_path);
		goto out;
	}
	if (BIO_puts(file, "-----BEGIN X509 CRL-----\n") <= 0)
		goto werr;
	chain = BIO_push(b64, file);
	for (;;) {
		ssize_t k = read(fd, buf, IOBUF);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			goto werr;
		if (k == 0)
			break;
		if (BIO_write(chain, buf, (int)k) != (int)k)
			goto werr;
	}
	if (BIO_flush(chain) != 1)
		goto werr;
	BIO_pop(b64);
	if (BIO_puts(file, "-----END X509 CRL-----\n") <= 0 || BIO_flush(file) != 1)
		goto werr;
	rc = 0;
	goto out;
werr:
	fail(why, n, "writing %s failed", pem_path);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (chain)
		BIO_pop(b64);
	BIO_free(b64);
	BIO_free(file);
	return rc;
}
