/* Parse, then judge: a PKCS#10 request against a profile (proof of possession, key profile,
 * subject fields, SANs and their patterns), before anything is written or signed. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "ca_csr.h"
#include "db.h"
#include "pkcs10.h"

/*
 * PKCS#10 requests are read with pkcs10.c's templates, whose SubjectPublicKeyInfo is plain
 * data: RSA and named-curve EC keys are made from their parts (EVP_PKEY_fromdata); any other
 * key goes through OpenSSL's decoders.
 */
/* clang-format off */
/* RSAPublicKey (RFC 8017 A.1.1) */
typedef struct ca_rsa_pub {
	ASN1_INTEGER *n;
	ASN1_INTEGER *e;
} CA_RSA_PUB;

ASN1_SEQUENCE(CA_RSA_PUB) = {
	ASN1_SIMPLE(CA_RSA_PUB, n, ASN1_INTEGER),
	ASN1_SIMPLE(CA_RSA_PUB, e, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(CA_RSA_PUB)

/* The named curves the key profiles allow, each made once as a key with parameters only: a
 * request's key is a copy with its point set, a fifth of the cost of building the curve from
 * its name again for every request (EVP_PKEY_fromdata). */
static const int curve_nids[] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
static EVP_PKEY *curve_keys[sizeof(curve_nids) / sizeof(curve_nids[0])];
static pthread_once_t curves_once = PTHREAD_ONCE_INIT;
/* clang-format on */

static void curves_init(void)
{
	for (size_t i = 0; i < sizeof(curve_nids) / sizeof(curve_nids[0]); i++) {
		OSSL_PARAM params[2];
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
		                                             (char *)OBJ_nid2sn(curve_nids[i]), 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, &curve_keys[i], EVP_PKEY_KEY_PARAMETERS, params) != 1)
			curve_keys[i] = NULL; /* that curve goes the long way below */
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error();
}

/* An EC key on a named curve, from the curve's OID and the point's octets. */
static EVP_PKEY *ec_key(const ASN1_OBJECT *curve, const ASN1_BIT_STRING *bits)
{
	int nid = OBJ_obj2nid(curve);
	const char *group = OBJ_nid2sn(nid);
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;
	OSSL_PARAM params[3];

	if (nid == NID_undef || !group || bits->length <= 0)
		return NULL;
	pthread_once(&curves_once, curves_init);
	for (size_t i = 0; i < sizeof(curve_nids) / sizeof(curve_nids[0]); i++)
		if (curve_nids[i] == nid && curve_keys[i]) {
			key = EVP_PKEY_dup(curve_keys[i]);
			if (key && EVP_PKEY_set1_encoded_public_key(key, bits->data,
			                                            (size_t)bits->length) == 1)
				return key;
			EVP_PKEY_free(key);
			return NULL;
		}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, bits->data,
	                                              (size_t)bits->length);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* An RSA key from the RSAPublicKey in the key bits (both numbers positive). */
static EVP_PKEY *rsa_key(const ASN1_BIT_STRING *bits)
{
	const unsigned char *p = bits->data;
	CA_RSA_PUB *rp =
	    (CA_RSA_PUB *)ASN1_item_d2i(NULL, &p, bits->length, ASN1_ITEM_rptr(CA_RSA_PUB));
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (!rp || p != bits->data + bits->length || rp->n->type != V_ASN1_INTEGER ||
	    rp->e->type != V_ASN1_INTEGER || !(n = ASN1_INTEGER_to_BN(rp->n, NULL)) ||
	    !(e = ASN1_INTEGER_to_BN(rp->e, NULL)) || BN_is_zero(n) || BN_is_zero(e) ||
	    !(bld = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	ASN1_item_free((ASN1_VALUE *)rp, ASN1_ITEM_rptr(CA_RSA_PUB));
	return key;
}

/* The request's public key; NULL when it does not parse. */
static EVP_PKEY *spki_key(const HSMCA_PKCS10_SPKI *s, const unsigned char *der, int len)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype;

	X509_ALGOR_get0(&obj, &ptype, &pval, s->algor);
	switch (OBJ_obj2nid(obj)) {
	case NID_X9_62_id_ecPublicKey:
		if (ptype == V_ASN1_OBJECT)
			return ec_key(pval, s->public_key);
		break; /* explicit or implicit curve parameters: the decoders judge them */
	case NID_rsaEncryption:
		if (ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF)
			return rsa_key(s->public_key);
		break;
	default:
		break;
	}
	return d2i_PUBKEY(NULL, &der, len);
}

const X509_NAME *ca_csr_subject(const struct ca_csr *c)
{
	return c->req->info->subject;
}

/* X509_set_pubkey would encode the key again through OpenSSL's encoders and decode the
 * result, the dearest step of building a certificate; the request's own parts are already the
 * exact value. */
int ca_csr_copy_pubkey(const struct ca_csr *c, X509 *cert)
{
	const HSMCA_PKCS10_SPKI *src = c->req->info->spki;
	X509_PUBKEY *dst = X509_get_X509_PUBKEY(cert);
	const ASN1_OBJECT *obj;
	const void *pval;
	ASN1_OBJECT *obj2 = NULL;
	void *pval2 = NULL;
	unsigned char *bits2 = NULL;
	int len = src->public_key->length, ptype;

	if (!dst || len <= 0)
		return 0;
	X509_ALGOR_get0(&obj, &ptype, &pval, src->algor);
	obj2 = OBJ_dup(obj);
	if (ptype == V_ASN1_OBJECT)
		pval2 = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		pval2 = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		goto fail; /* no other key parameters are allowed by the key profiles */
	bits2 = OPENSSL_memdup(src->public_key->data, (size_t)len);
	if (!obj2 || (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF && !pval2) || !bits2 ||
	    !X509_PUBKEY_set0_param(dst, obj2, ptype, pval2, bits2, len))
		goto fail;
	return 1;
fail:
	ASN1_OBJECT_free(obj2);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pval2);
	else
		ASN1_STRING_free(pval2);
	OPENSSL_free(bits2);
	return 0;
}

static int key_allowed(const struct ca_key_profile *kp, EVP_PKEY *key, char *why, size_t n)
{
	char group[32] = "";
	int bits = EVP_PKEY_get_bits(key);

	if (EVP_PKEY_is_a(key, "RSA")) {
		if (!kp->rsa_min_bits) {
			snprintf(why, n, "key profile %s allows no RSA keys", kp->name);
			return 0;
		}
		if (bits < kp->rsa_min_bits || bits > kp->rsa_max_bits) {
			snprintf(why, n, "RSA-%d: key profile %s allows RSA of %d..%d bits", bits,
			         kp->name, kp->rsa_min_bits, kp->rsa_max_bits);
			return 0;
		}
		return 1;
	}
	if (EVP_PKEY_is_a(key, "EC")) {
		size_t glen = 0;
		if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                    sizeof(group), &glen)) {
			snprintf(why, n, "an EC key without a named curve is not allowed");
			return 0;
		}
		if ((!strcmp(group, "prime256v1") && kp->p256) ||
		    (!strcmp(group, "secp384r1") && kp->p384))
			return 1;
		snprintf(why, n, "EC curve %s: key profile %s allows%s%s", group, kp->name,
		         kp->p256 ? " P-256" : "", kp->p384 ? " P-384" : (kp->p256 ? "" : " none"));
		return 0;
	}
	snprintf(why, n, "key type %s is not allowed (RSA or EC only)",
	         EVP_PKEY_get0_type_name(key));
	return 0;
}

/* The subject's fields: each allowed by the profile and present at most once, single-valued
 * RDNs of text, each matching its field's patterns if the profile has any; emailAddress
 * matching the profile's email SAN patterns. The CN (if any) is in *cn for the check against
 * the SANs. */
static int pattern_match(enum ca_san_kind kind, const char *pat, const char *v);

static int subject_allowed(const struct ca_profile *p, const X509_NAME *name, char *cn, size_t cnsz,
                           char *why, size_t n)
{
	int prev_set = -1, seen[CA_MAX_FIELDS] = {0};

	cn[0] = '\0';
	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
		unsigned char *u = NULL;
		int ulen, set = X509_NAME_ENTRY_set(e), ok = 1;
		size_t k, j;

		if (set == prev_set) {
			snprintf(why, n, "multi-valued RDNs are not allowed in the subject");
			return 0;
		}
		prev_set = set;
		for (k = 0; k < p->n_subject_fields; k++)
			if (p->subject_fields[k] == nid)
				break;
		if (k == p->n_subject_fields) {
			snprintf(why, n, "subject field %s is not allowed by profile %s",
			         nid ? OBJ_nid2sn(nid) : "(unknown OID)", p->name);
			return 0;
		}
		if (seen[k]++) {
			snprintf(why, n, "subject field %s appears more than once",
			         OBJ_nid2sn(nid));
			return 0;
		}
		ulen = ASN1_STRING_to_UTF8(&u, d);
		if (ulen <= 0 || memchr(u, '\0', (size_t)ulen)) {
			OPENSSL_free(u);
			snprintf(why, n, "subject field %s is empty or not text", OBJ_nid2sn(nid));
			return 0;
		}
		if (nid == NID_pkcs9_emailAddress) {
			const char *at = strchr((char *)u, '@');
			for (j = 0; j < p->n_san_patterns[CA_SAN_EMAIL]; j++)
				if (pattern_match(CA_SAN_EMAIL, p->san_patterns[CA_SAN_EMAIL][j],
				                  (char *)u))
					break;
			if (!at || at == (char *)u || j == p->n_san_patterns[CA_SAN_EMAIL]) {
				snprintf(why, n,
				         "subject emailAddress \"%.64s\" does not match the email "
				         "patterns of profile %s",
				         (char *)u, p->name);
				ok = 0;
			}
		} else if (p->n_subject_patterns[k]) {
			for (j = 0; j < p->n_subject_patterns[k]; j++)
				if (!fnmatch(p->subject_patterns[k][j], (char *)u, FNM_CASEFOLD))
					break;
			if (j == p->n_subject_patterns[k]) {
				snprintf(
				    why, n,
				    "subject %s \"%.64s\" does not match the patterns of profile "
				    "%s",
				    OBJ_nid2sn(nid), (char *)u, p->name);
				ok = 0;
			}
		}
		if (ok && nid == NID_commonName)
			snprintf(cn, cnsz, "%s", (char *)u);
		OPENSSL_free(u);
		if (!ok)
			return 0;
	}
	if (p->subject_cn_required && !cn[0]) {
		snprintf(why, n, "profile %s requires a subject CN", p->name);
		return 0;
	}
	return 1;
}

/* Where the profile allows DNS or IP SANs (a host's certificate), a CN must be one of the
 * request's SANs: relying parties that still read the CN then see a name the SANs vouch
 * for (CA/Browser Forum BR 7.1.4.3). */
static int cn_among_sans(const struct ca_profile *p, const char *cn, const struct ca_csr *c,
                         char *why, size_t n)
{
	if (!cn[0] || (!p->n_san_patterns[CA_SAN_DNS] && !p->n_san_patterns[CA_SAN_IP]))
		return 1;
	for (size_t i = 0; i < c->n_sans; i++)
		if (!strcasecmp(c->sans[i].value, cn))
			return 1;
	snprintf(why, n, "subject CN \"%.64s\" is not one of the request's SANs (profile %s)", cn,
	         p->name);
	return 0;
}

static int dns_syntax_ok(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)c) || c == '-' || (c == '*' && i == 0 && s[1] == '.')))
			return 0;
		if ((c == '-' && label == 0) || ++label > 63)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

/* "*.example.com" matches one label in front of example.com; other patterns are shell
 * globs (fnmatch), case-insensitive. A wildcard value ("*.x") only matches that pattern
 * spelled out. */
static int pattern_match(enum ca_san_kind kind, const char *pat, const char *v)
{
	if (kind == CA_SAN_DNS) {
		if (strchr(v, '*'))
			return !strcasecmp(pat, v);
		if (!strncmp(pat, "*.", 2)) {
			size_t pl = strlen(pat + 1), vl = strlen(v);
			const char *dot = strchr(v, '.');
			return vl > pl && !strcasecmp(v + vl - pl, pat + 1) && dot == v + vl - pl;
		}
		return !strcasecmp(pat, v);
	}
	return fnmatch(pat, v, FNM_CASEFOLD) == 0;
}

/* The CSR's SANs, each checked against the profile; gens is what goes into the certificate. */
static int sans_allowed(const struct ca_profile *p, const HSMCA_PKCS10 *req,
                        GENERAL_NAMES **gens_out, struct ca_csr *out, char *why, size_t n)
{
	STACK_OF(X509_EXTENSION) *exts = pkcs10_requested_extensions(req);
	GENERAL_NAMES *gens = NULL;
	int ok = 0, idx, crit = 0;

	*gens_out = NULL;
	out->n_sans = 0;
	idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
	if (idx >= 0 && X509v3_get_ext_by_NID(exts, NID_subject_alt_name, idx) >= 0) {
		snprintf(why, n, "the CSR requests subjectAltName twice");
		goto out;
	}
	if (idx >= 0) {
		gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
		if (!gens) {
			snprintf(why, n, "the CSR's subjectAltName does not parse");
			goto out;
		}
	}
	if (sk_GENERAL_NAME_num(gens) > CA_SANS_MAX) {
		snprintf(why, n, "more than %d SANs", CA_SANS_MAX);
		goto out;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		enum ca_san_kind kind;
		const ASN1_STRING *s = NULL;
		char *v = out->text[out->n_sans];
		size_t k, len;

		switch (g->type) {
		case GEN_DNS:
			kind = CA_SAN_DNS;
			s = g->d.dNSName;
			break;
		case GEN_EMAIL:
			kind = CA_SAN_EMAIL;
			s = g->d.rfc822Name;
			break;
		case GEN_URI:
			kind = CA_SAN_URI;
			s = g->d.uniformResourceIdentifier;
			break;
		case GEN_IPADD:
			kind = CA_SAN_IP;
			break;
		default:
			snprintf(why, n, "SAN type %d is not allowed (dns, ip, email, uri only)",
			         g->type);
			goto out;
		}
		if (kind == CA_SAN_IP) {
			const ASN1_OCTET_STRING *ip = g->d.iPAddress;
			int af = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : 0;
			if (!af || !inet_ntop(af, ip->data, v, 256)) {
				snprintf(why, n, "SAN IP address of %d bytes", ip->length);
				goto out;
			}
		} else {
			len = (size_t)ASN1_STRING_length(s);
			/* A NUL inside ("a.example\0.evil") is refused, never cut. */
			if (len == 0 || len > 255 || memchr(ASN1_STRING_get0_data(s), '\0', len)) {
				snprintf(why, n, "a %s SAN is empty, too long or holds a NUL",
				         ca_san_kind_name(kind));
				goto out;
			}
			memcpy(v, ASN1_STRING_get0_data(s), len);
			v[len] = '\0';
			for (size_t c = 0; c < len; c++)
				if ((unsigned char)v[c] < 0x21 || (unsigned char)v[c] > 0x7e) {
					snprintf(why, n, "%s SAN \"%.64s\": not printable ASCII",
					         ca_san_kind_name(kind), v);
					goto out;
				}
			if (kind == CA_SAN_DNS && !dns_syntax_ok(v, len)) {
				snprintf(why, n, "DNS SAN \"%.64s\" is not a host name", v);
				goto out;
			}
			if (kind == CA_SAN_EMAIL && (!strchr(v, '@') || strchr(v, '@') == v)) {
				snprintf(why, n, "email SAN \"%.64s\" is not an address", v);
				goto out;
			}
		}
		for (k = 0; k < p->n_san_patterns[kind]; k++)
			if (pattern_match(kind, p->san_patterns[kind][k], v))
				break;
		if (k == p->n_san_patterns[kind]) {
			snprintf(why, n, "%s SAN \"%.64s\" is not allowed by profile %s",
			         ca_san_kind_name(kind), v, p->name);
			goto out;
		}
		for (size_t d = 0; d < out->n_sans; d++)
			if (out->sans[d].kind == (enum db_san_kind)kind &&
			    (kind == CA_SAN_URI ? !strcmp(out->sans[d].value, v)
			                        : !strcasecmp(out->sans[d].value, v))) {
				snprintf(why, n, "%s SAN \"%.64s\" appears more than once",
				         ca_san_kind_name(kind), v);
				goto out;
			}
		out->sans[out->n_sans].kind = (enum db_san_kind)kind;
		out->sans[out->n_sans].value = v;
		out->sans[out->n_sans].len = strlen(v);
		out->n_sans++;
	}
	if (p->san_required && out->n_sans == 0) {
		snprintf(why, n, "profile %s requires at least one SAN", p->name);
		goto out;
	}
	*gens_out = gens;
	gens = NULL;
	ok = 1;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return ok;
}

void ca_csr_free(struct ca_csr *c)
{
	GENERAL_NAMES_free(c->gens);
	EVP_PKEY_free(c->pub);
	pkcs10_free(c->req);
	OPENSSL_free(c->spki);
	c->spki = NULL;
	c->spki_len = 0;
	c->gens = NULL;
	c->pub = NULL;
	c->req = NULL;
}

/* The PEM request as DER: its one "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST")
 * block, read into *req; 0 or -1. */
static int read_pem(const char *pem, HSMCA_PKCS10 **req)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	unsigned char *der = NULL;
	long len = 0;
	int rc = -1;

	*req = NULL;
	if (bio && PEM_bytes_read_bio(&der, &len, NULL, PEM_STRING_X509_REQ, bio, NULL, NULL) &&
	    len > 0)
		rc = (*req = pkcs10_read(der, (size_t)len)) ? 0 : -1;
	OPENSSL_free(der);
	BIO_free(bio);
	return rc;
}

/* Everything after the reading: out->req is the request. */
static int check_read(const struct ca_profile *p, struct ca_csr *out, const char **error, char *why,
                      size_t n);

int ca_csr_check(const struct ca_profile *p, const char *pem, struct ca_csr *out,
                 const char **error, char *why, size_t n)
{
	if (read_pem(pem, &out->req) != 0) {
		ERR_clear_error();
		*error = "bad-csr";
		snprintf(why, n, "\"csr\" is not a PEM PKCS#10 request");
		return -1;
	}
	return check_read(p, out, error, why, n);
}

int ca_csr_check_der(const struct ca_profile *p, const unsigned char *der, size_t len,
                     struct ca_csr *out, const char **error, char *why, size_t n)
{
	if (!(out->req = pkcs10_read(der, len))) {
		ERR_clear_error();
		*error = "bad-csr";
		snprintf(why, n, "the CSR is not a DER PKCS#10 request");
		return -1;
	}
	return check_read(p, out, error, why, n);
}

static int check_read(const struct ca_profile *p, struct ca_csr *out, const char **error, char *why,
                      size_t n)
{
	unsigned char *spki = NULL;
	BIO *m = NULL;
	char cn[1024], *stext = NULL;
	long slen;
	int len, rc = -1;

	if (pkcs10_extension_requests(out->req) > 1) {
		*error = "bad-csr";
		snprintf(why, n,
		         "the CSR asks for extensions in more than one attribute (extensionRequest "
		         "and Microsoft's, or one twice): one is allowed");
		return -1;
	}

	len = ASN1_item_i2d((ASN1_VALUE *)out->req->info->spki, &spki,
	                    ASN1_ITEM_rptr(HSMCA_PKCS10_SPKI));
	out->pub = len > 0 ? spki_key(out->req->info->spki, spki, len) : NULL;
	if (!out->pub) {
		ERR_clear_error();
		*error = "bad-csr";
		snprintf(why, n, "the CSR's public key does not parse");
		goto out;
	}
	SHA256(spki, (size_t)len, out->spki_sha256);
	out->spki = spki; /* the linter compares the certificate's key with it */
	out->spki_len = (size_t)len;
	spki = NULL;
	/* Proof of possession: the request is signed by the key it names. */
	if (ASN1_item_verify_ex(ASN1_ITEM_rptr(HSMCA_PKCS10_INFO), out->req->sig_alg,
	                        out->req->signature, out->req->info, NULL, out->pub, NULL,
	                        NULL) != 1) {
		ERR_clear_error();
		*error = "csr-signature-invalid";
		snprintf(why, n, "the CSR's signature does not verify with its public key");
		goto out;
	}
	if (!key_allowed(p->key_profile, out->pub, why, n)) {
		*error = "key-not-allowed";
		goto out;
	}
	*error = "name-not-allowed";
	if (!subject_allowed(p, out->req->info->subject, cn, sizeof(cn), why, n) ||
	    !sans_allowed(p, out->req, &out->gens, out, why, n) ||
	    !cn_among_sans(p, cn, out, why, n))
		goto out;
	/* The stored subject is the certificate's, whole: one that does not fit is refused,
	 * never cut. */
	m = BIO_new(BIO_s_mem());
	if (!m || X509_NAME_print_ex(m, out->req->info->subject, 0, XN_FLAG_RFC2253) < 0 ||
	    (slen = BIO_get_mem_data(m, &stext)) < 0) {
		*error = "internal";
		snprintf(why, n, "the subject does not print");
		goto out;
	}
	if ((size_t)slen >= sizeof(out->subject)) {
		snprintf(why, n, "the subject is %ld characters long; at most %zu are allowed",
		         slen, sizeof(out->subject) - 1);
		goto out;
	}
	if (slen > 0) /* an empty subject (ACME clients send one) prints as nothing at all */
		memcpy(out->subject, stext, (size_t)slen);
	out->subject[slen] = '\0';
	ERR_clear_error();
	*error = NULL;
	rc = 0;
out:
	OPENSSL_free(spki);
	BIO_free(m);
	return rc;
}
