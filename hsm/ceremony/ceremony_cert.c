/*
 * The to-be-signed certificate and CRL, built with OpenSSL from the typed
 * ceremony, and their signatures through the keyd provider. Every extension
 * is added with X509V3_ADD_DEFAULT, which refuses a second copy.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ceremony_internal.h"

const char *cer_md_name(enum cer_hash h)
{
	return h == CER_HASH_SHA512 ? "SHA512" : h == CER_HASH_SHA384 ? "SHA384" : "SHA256";
}

int cer_sign_init(EVP_MD_CTX *mctx, enum cer_hash hash, enum cer_padding padding, EVP_PKEY *key,
                  char *err, size_t errsz)
{
	EVP_PKEY_CTX *pctx = NULL;
	int rsa = EVP_PKEY_is_a(key, "RSA");

	if (padding != CER_PAD_DEFAULT && !rsa)
		return cer_fail(err, errsz, "signature.padding applies to RSA keys only");
	/* RFC 4055 / CA/B Forum: a PSS salt is as long as the digest. */
	if (EVP_DigestSignInit_ex(mctx, &pctx, cer_md_name(hash), NULL, NULL, key, NULL) != 1 ||
	    (rsa &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, padding == CER_PAD_PSS ? RSA_PKCS1_PSS_PADDING
	                                                               : RSA_PKCS1_PADDING) != 1) ||
	    (rsa && padding == CER_PAD_PSS &&
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
		cer_fail(err, errsz, "cannot set up a %s signature", cer_md_name(hash));
		cer_append_ossl(err, errsz);
		return -1;
	}
	return 0;
}

/* ---- pieces ---- */

static GENERAL_NAME *gn_string(int type, const char *s)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *v = ASN1_IA5STRING_new();

	if (!gn || !v || !ASN1_STRING_set(v, s, -1)) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(v);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, type, v);
	return gn;
}

static X509_NAME *make_name(const struct cer_name *n)
{
	X509_NAME *name = X509_NAME_new();

	if (!name)
		return NULL;
	for (size_t i = 0; i < n->n; i++)
		/* set 0 with loc -1: each attribute is its own RDN, in the file's order. */
		if (!X509_NAME_add_entry_by_NID(name, n->rdn[i].nid, MBSTRING_UTF8,
		                                (const unsigned char *)n->rdn[i].value, -1, -1,
		                                0)) {
			X509_NAME_free(name);
			return NULL;
		}
	return name;
}

static GENERAL_NAME *subtree_name(const struct cer_subtree *st)
{
	GENERAL_NAME *gn = NULL;

	switch (st->kind) {
	case CER_GN_DNS:
		return gn_string(GEN_DNS, st->text + 4);
	case CER_GN_EMAIL:
		return gn_string(GEN_EMAIL, st->text + 6);
	case CER_GN_IP: {
		ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
		gn = GENERAL_NAME_new();
		if (!gn || !ip || !ASN1_OCTET_STRING_set(ip, st->ip, (int)st->ip_len)) {
			GENERAL_NAME_free(gn);
			ASN1_OCTET_STRING_free(ip);
			return NULL;
		}
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
		return gn;
	}
	case CER_GN_DIR: {
		X509_NAME *dn = make_name(&st->dir);
		gn = GENERAL_NAME_new();
		if (!gn || !dn) {
			GENERAL_NAME_free(gn);
			X509_NAME_free(dn);
			return NULL;
		}
		GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);
		return gn;
	}
	}
	return NULL;
}

static STACK_OF(GENERAL_SUBTREE) * make_subtrees(const struct cer_subtree *st, size_t n)
{
	STACK_OF(GENERAL_SUBTREE) *sk = sk_GENERAL_SUBTREE_new_null();

	if (!sk)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		GENERAL_SUBTREE *t = GENERAL_SUBTREE_new();
		GENERAL_NAME *gn = subtree_name(&st[i]);
		if (!t || !gn || !sk_GENERAL_SUBTREE_push(sk, t)) {
			GENERAL_SUBTREE_free(t);
			GENERAL_NAME_free(gn);
			sk_GENERAL_SUBTREE_pop_free(sk, GENERAL_SUBTREE_free);
			return NULL;
		}
		GENERAL_NAME_free(t->base);
		t->base = gn;
	}
	return sk;
}

static int add_ext(X509 *x, int nid, void *value, int crit)
{
	return value && X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) == 1;
}

static int add_basic_constraints(const struct ceremony *c, X509 *x)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	int ok = bc != NULL;

	if (ok && c->type != CER_OCSP_SIGNER) {
		bc->ca = 0xff;
		if (c->cert.has_path_length) {
			bc->pathlen = ASN1_INTEGER_new();
			ok = bc->pathlen && ASN1_INTEGER_set(bc->pathlen, c->cert.path_length);
		}
	}
	/* Critical on CAs (RFC 5280 4.2.1.9); on the OCSP signer it says "not a CA". */
	ok = ok && add_ext(x, NID_basic_constraints, bc, 1);
	BASIC_CONSTRAINTS_free(bc);
	return ok;
}

static int add_key_usage(const struct ceremony *c, X509 *x)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	int ok = ku != NULL;

	for (int bit = 0; ok && bit < 9; bit++)
		if (c->cert.key_usage & (1u << bit))
			ok = ASN1_BIT_STRING_set_bit(ku, bit, 1);
	ok = ok && add_ext(x, NID_key_usage, ku, 1);
	ASN1_BIT_STRING_free(ku);
	return ok;
}

static int add_eku(const struct ceremony *c, X509 *x)
{
	EXTENDED_KEY_USAGE *eku;
	int ok;

	if (!c->cert.n_eku)
		return 1;
	eku = sk_ASN1_OBJECT_new_null();
	ok = eku != NULL;
	for (size_t i = 0; ok && i < c->cert.n_eku; i++) {
		ASN1_OBJECT *o = OBJ_txt2obj(c->cert.eku[i], 1);
		ok = o && sk_ASN1_OBJECT_push(eku, o);
		if (!ok)
			ASN1_OBJECT_free(o);
	}
	ok = ok && add_ext(x, NID_ext_key_usage, eku, 0);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return ok;
}

static int add_key_ids(X509 *x, X509 *issuer, X509 *existing_ca)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const ASN1_OCTET_STRING *keep = existing_ca ? X509_get0_subject_key_id(existing_ca) : NULL;
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
	const ASN1_OCTET_STRING *aki_id;
	int ok = ski && aki;

	/* A cross-certificate keeps the CA's own key identifier, so that chains built
	 * from either certificate agree; otherwise RFC 5280 4.2.1.2 method 1. */
	if (ok && keep)
		ok = ASN1_OCTET_STRING_set(ski, keep->data, keep->length);
	else if (ok)
		ok = X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) &&
		     ASN1_OCTET_STRING_set(ski, md, (int)mdlen);
	ok = ok && add_ext(x, NID_subject_key_identifier, ski, 0);
	aki_id = issuer ? X509_get0_subject_key_id(issuer) : ski;
	ok = ok && aki_id && (aki->keyid = ASN1_OCTET_STRING_dup(aki_id)) != NULL;
	ok = ok && add_ext(x, NID_authority_key_identifier, aki, 0);
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(aki);
	return ok;
}

static int add_policies(const struct ceremony *c, X509 *x)
{
	CERTIFICATEPOLICIES *pols;
	int ok;

	if (!c->cert.n_policies)
		return 1;
	pols = sk_POLICYINFO_new_null();
	ok = pols != NULL;
	for (size_t i = 0; ok && i < c->cert.n_policies; i++) {
		const struct cer_policy *p = &c->cert.policies[i];
		POLICYINFO *pi = POLICYINFO_new();
		ok = pi && sk_POLICYINFO_push(pols, pi);
		if (!ok) {
			POLICYINFO_free(pi);
			break;
		}
		ASN1_OBJECT_free(pi->policyid);
		ok = (pi->policyid = OBJ_txt2obj(p->oid, 1)) != NULL;
		if (ok && p->cps[0]) {
			POLICYQUALINFO *q = POLICYQUALINFO_new();
			pi->qualifiers = sk_POLICYQUALINFO_new_null();
			ok = q && pi->qualifiers && sk_POLICYQUALINFO_push(pi->qualifiers, q);
			if (!ok) {
				POLICYQUALINFO_free(q);
				break;
			}
			q->pqualid = OBJ_nid2obj(NID_id_qt_cps);
			q->d.cpsuri = ASN1_IA5STRING_new();
			ok = q->d.cpsuri && ASN1_STRING_set(q->d.cpsuri, p->cps, -1);
		}
	}
	ok = ok && add_ext(x, NID_certificate_policies, pols, 0);
	sk_POLICYINFO_pop_free(pols, POLICYINFO_free);
	return ok;
}

static int add_crl_dp(const struct ceremony *c, X509 *x)
{
	CRL_DIST_POINTS *cdp;
	DIST_POINT *dp;
	int ok;

	if (!c->cert.n_crl_dp)
		return 1;
	/* One distribution point whose full name lists every URL: the same CRL at
	 * each of them (RFC 5280 4.2.1.13). */
	cdp = sk_DIST_POINT_new_null();
	dp = DIST_POINT_new();
	ok = cdp && dp && sk_DIST_POINT_push(cdp, dp);
	if (!ok)
		DIST_POINT_free(dp);
	ok = ok && (dp->distpoint = DIST_POINT_NAME_new()) != NULL;
	if (ok) {
		dp->distpoint->type = 0;
		ok = (dp->distpoint->name.fullname = GENERAL_NAMES_new()) != NULL;
	}
	for (size_t i = 0; ok && i < c->cert.n_crl_dp; i++) {
		GENERAL_NAME *gn = gn_string(GEN_URI, c->cert.crl_dp[i].url);
		ok = gn && sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn);
		if (!ok)
			GENERAL_NAME_free(gn);
	}
	ok = ok && add_ext(x, NID_crl_distribution_points, cdp, 0);
	sk_DIST_POINT_pop_free(cdp, DIST_POINT_free);
	return ok;
}

static int push_access(AUTHORITY_INFO_ACCESS *aia, int nid, const struct cer_url *urls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
		GENERAL_NAME *gn = gn_string(GEN_URI, urls[i].url);
		if (!ad || !gn || !sk_ACCESS_DESCRIPTION_push(aia, ad)) {
			ACCESS_DESCRIPTION_free(ad);
			GENERAL_NAME_free(gn);
			return 0;
		}
		ASN1_OBJECT_free(ad->method);
		ad->method = OBJ_nid2obj(nid);
		GENERAL_NAME_free(ad->location);
		ad->location = gn;
	}
	return 1;
}

static int add_aia(const struct ceremony *c, X509 *x)
{
	AUTHORITY_INFO_ACCESS *aia;
	int ok;

	if (!c->cert.n_ocsp && !c->cert.n_ca_issuers)
		return 1;
	aia = sk_ACCESS_DESCRIPTION_new_null();
	ok = aia && push_access(aia, NID_ad_OCSP, c->cert.ocsp, c->cert.n_ocsp) &&
	     push_access(aia, NID_ad_ca_issuers, c->cert.ca_issuers, c->cert.n_ca_issuers) &&
	     add_ext(x, NID_info_access, aia, 0);
	sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
	return ok;
}

static int add_name_constraints(const struct ceremony *c, X509 *x)
{
	NAME_CONSTRAINTS *nc;
	int ok;

	if (!c->cert.n_permitted && !c->cert.n_excluded)
		return 1;
	nc = NAME_CONSTRAINTS_new();
	ok = nc != NULL;
	if (ok && c->cert.n_permitted)
		ok = (nc->permittedSubtrees =
		          make_subtrees(c->cert.permitted, c->cert.n_permitted)) != NULL;
	if (ok && c->cert.n_excluded)
		ok = (nc->excludedSubtrees = make_subtrees(c->cert.excluded, c->cert.n_excluded)) !=
		     NULL;
	/* RFC 5280 4.2.1.10: conforming CAs MUST mark this extension critical. */
	ok = ok && add_ext(x, NID_name_constraints, nc, 1);
	NAME_CONSTRAINTS_free(nc);
	return ok;
}

static int add_ocsp_nocheck(const struct ceremony *c, X509 *x)
{
	ASN1_NULL *null;
	int ok;

	if (c->type != CER_OCSP_SIGNER)
		return 1;
	/* RFC 6960 4.2.2.2.1: relying parties need not check this signer's status. */
	null = ASN1_NULL_new();
	ok = add_ext(x, NID_id_pkix_OCSP_noCheck, null, 0);
	ASN1_NULL_free(null);
	return ok;
}

/* 16 random octets with the top bit cleared: a positive serial of 127 random bits. */
static ASN1_INTEGER *random_serial(void)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;

	do {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return NULL;
		b[0] &= 0x7f;
		BN_free(bn);
		bn = BN_bin2bn(b, sizeof(b), NULL);
	} while (bn && BN_num_bits(bn) < 64);
	if (bn)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

/* ---- certificate ---- */

int cer_cert_build(const struct ceremony *c, const struct cer_subject_key *sk, X509 *issuer,
                   X509 **out, char *err, size_t errsz)
{
	X509 *x = X509_new();
	X509_NAME *subject = NULL;
	ASN1_INTEGER *serial = random_serial();
	int rc = -1;

	*out = NULL;
	if (!x || !serial) {
		cer_fail(err, errsz,
		         "building the certificate failed: out of memory or randomness");
		goto out;
	}
	if (sk->existing_ca)
		subject = X509_NAME_dup(X509_get_subject_name(sk->existing_ca));
	else
		subject = make_name(&c->cert.subject);
	if (!subject) {
		cer_fail(err, errsz, "certificate.subject: OpenSSL refused the name");
		cer_append_ossl(err, errsz);
		goto out;
	}
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, subject) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) ||
	    /* ASN1_TIME_set picks UTCTime up to 2049 and GeneralizedTime from 2050. */
	    !ASN1_TIME_set(X509_getm_notBefore(x), c->cert.not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), c->cert.not_after) ||
	    !X509_set_pubkey(x, sk->pub)) {
		cer_fail(err, errsz, "building the certificate failed");
		cer_append_ossl(err, errsz);
		goto out;
	}
	if (!add_basic_constraints(c, x) || !add_key_usage(c, x) || !add_eku(c, x) ||
	    !add_key_ids(x, issuer, sk->existing_ca) || !add_policies(c, x) || !add_crl_dp(c, x) ||
	    !add_aia(c, x) || !add_name_constraints(c, x) || !add_ocsp_nocheck(c, x)) {
		cer_fail(err, errsz, "building the certificate's extensions failed");
		cer_append_ossl(err, errsz);
		goto out;
	}
	*out = x;
	x = NULL;
	rc = 0;
out:
	X509_free(x);
	X509_NAME_free(subject);
	ASN1_INTEGER_free(serial);
	return rc;
}

int cer_cert_sign(const struct ceremony *c, X509 *x, EVP_PKEY *signer, char *err, size_t errsz)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int rc = -1;

	if (!mctx)
		return cer_fail(err, errsz, "out of memory");
	if (cer_sign_init(mctx, c->sig.hash, c->sig.padding, signer, err, errsz) != 0)
		goto out;
	if (X509_sign_ctx(x, mctx) <= 0) {
		cer_fail(err, errsz, "signing the certificate through keyd failed");
		cer_append_ossl(err, errsz);
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(mctx);
	return rc;
}

/* ---- CRL ---- */

static int add_revoked(X509_CRL *crl, const struct cer_revoked *r, ASN1_INTEGER *serial)
{
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, r->revoked_at);
	ASN1_ENUMERATED *reason = NULL;
	int ok = rev && t && X509_REVOKED_set_serialNumber(rev, serial) &&
	         X509_REVOKED_set_revocationDate(rev, t);

	/* RFC 5280 5.3.1: the reason code unspecified SHOULD be absent. */
	if (ok && r->reason != CER_REASON_UNSPECIFIED) {
		reason = ASN1_ENUMERATED_new();
		ok = reason && ASN1_ENUMERATED_set(reason, r->reason) &&
		     X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, X509V3_ADD_DEFAULT);
	}
	ok = ok && X509_CRL_add0_revoked(crl, rev);
	if (!ok)
		X509_REVOKED_free(rev);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(reason);
	return ok;
}

int cer_crl_build(const struct ceremony *c, X509 *issuer, ASN1_INTEGER **revoked_serials,
                  X509_CRL **out, char *err, size_t errsz)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *this_update = ASN1_TIME_set(NULL, c->crl.this_update);
	ASN1_TIME *next_update = ASN1_TIME_set(NULL, c->crl.next_update);
	AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
	BIGNUM *bn = NULL;
	ASN1_INTEGER *number = NULL;
	int ok;

	*out = NULL;
	ok = crl && this_update && next_update && aki && ski &&
	     X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
	     X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) &&
	     X509_CRL_set1_lastUpdate(crl, this_update) &&
	     X509_CRL_set1_nextUpdate(crl, next_update);
	for (size_t i = 0; ok && i < c->crl.n_revoked; i++)
		ok = add_revoked(crl, &c->crl.revoked[i], revoked_serials[i]);
	ok = ok && X509_CRL_sort(crl);
	ok = ok && (aki->keyid = ASN1_OCTET_STRING_dup(ski)) != NULL &&
	     X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT) ==
	         1;
	ok = ok && BN_dec2bn(&bn, c->crl.number) && (number = BN_to_ASN1_INTEGER(bn, NULL)) &&
	     X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT) == 1;
	if (ok) {
		*out = crl;
		crl = NULL;
	} else {
		cer_fail(err, errsz, "building the CRL failed");
		cer_append_ossl(err, errsz);
	}
	X509_CRL_free(crl);
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	AUTHORITY_KEYID_free(aki);
	BN_free(bn);
	ASN1_INTEGER_free(number);
	return ok ? 0 : -1;
}

int cer_crl_sign(const struct ceremony *c, X509_CRL *crl, EVP_PKEY *signer, char *err, size_t errsz)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int rc = -1;

	if (!mctx)
		return cer_fail(err, errsz, "out of memory");
	if (cer_sign_init(mctx, c->sig.hash, c->sig.padding, signer, err, errsz) != 0)
		goto out;
	if (X509_CRL_sign_ctx(crl, mctx) <= 0) {
		cer_fail(err, errsz, "signing the CRL through keyd failed");
		cer_append_ossl(err, errsz);
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(mctx);
	return rc;
}
