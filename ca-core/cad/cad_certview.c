/* What GET /api/v1/certificates/{serial} adds for people (the console's detail page): the
 * certificate's fields decoded by OpenSSL, and the chain of its authority as configured here. */
#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"

static json_t *hex_of(const unsigned char *b, size_t n)
{
	char out[3 * 64 + 1] = "";

	if (n > 64)
		n = 64;
	for (size_t i = 0; i < n; i++)
		snprintf(out + 3 * i, 4, i + 1 < n ? "%02x:" : "%02x", b[i]);
	return json_string(out);
}

static json_t *name_of(const X509_NAME *nm)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;
	json_t *j = NULL;

	if (b && X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0 &&
	    (len = BIO_get_mem_data(b, &data)) >= 0)
		j = json_stringn(data, (size_t)len);
	BIO_free(b);
	return j ? j : json_string("");
}

static json_t *public_key(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	char group[64], text[96];
	size_t glen = 0;

	if (!k)
		return json_string("unreadable");
	if (EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) == 1) {
		/* "prime256v1" as people say it: "P-256" (the NIST name, when there is one). */
		const char *nist = EC_curve_nid2nist(OBJ_txt2nid(group));
		snprintf(text, sizeof(text), "%s %s", EVP_PKEY_get0_type_name(k),
		         nist ? nist : group);
	} else
		snprintf(text, sizeof(text), "%s %d", EVP_PKEY_get0_type_name(k),
		         EVP_PKEY_get_bits(k));
	return json_string(text);
}

static json_t *key_usage(X509 *x)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} ku[] = {
	    {KU_DIGITAL_SIGNATURE, "digitalSignature"},
	    {KU_NON_REPUDIATION, "nonRepudiation"},
	    {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
	    {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
	    {KU_KEY_AGREEMENT, "keyAgreement"},
	    {KU_KEY_CERT_SIGN, "keyCertSign"},
	    {KU_CRL_SIGN, "cRLSign"},
	    {KU_ENCIPHER_ONLY, "encipherOnly"},
	    {KU_DECIPHER_ONLY, "decipherOnly"},
	};
	uint32_t bits = X509_get_key_usage(x);
	json_t *a = json_array();

	if (bits == UINT32_MAX)
		return a; /* no extension */
	for (size_t i = 0; i < sizeof(ku) / sizeof(ku[0]); i++)
		if (bits & ku[i].bit)
			json_array_append_new(a, json_string(ku[i].name));
	return a;
}

static json_t *ekus(X509 *x)
{
	EXTENDED_KEY_USAGE *e = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	json_t *a = json_array();
	char oid[128];

	for (int i = 0; e && i < sk_ASN1_OBJECT_num(e); i++) {
		ASN1_OBJECT *o = sk_ASN1_OBJECT_value(e, i);
		int nid = OBJ_obj2nid(o);
		if (nid != NID_undef)
			json_array_append_new(a, json_string(OBJ_nid2sn(nid)));
		else if (OBJ_obj2txt(oid, sizeof(oid), o, 1) > 0)
			json_array_append_new(a, json_string(oid));
	}
	EXTENDED_KEY_USAGE_free(e);
	return a;
}

static json_t *uris_of(GENERAL_NAMES *names, json_t *a)
{
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type == GEN_URI)
			json_array_append_new(
			    a,
			    json_stringn(
			        (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
			        (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier)));
	}
	return a;
}

static json_t *crl_dps(X509 *x)
{
	CRL_DIST_POINTS *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	json_t *a = json_array();

	for (int i = 0; dps && i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if (dp->distpoint && dp->distpoint->type == 0)
			uris_of(dp->distpoint->name.fullname, a);
	}
	CRL_DIST_POINTS_free(dps);
	return a;
}

static void aia(X509 *x, json_t *d)
{
	AUTHORITY_INFO_ACCESS *info = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
	json_t *ocsp = json_array(), *issuers = json_array();

	for (int i = 0; info && i < sk_ACCESS_DESCRIPTION_num(info); i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(info, i);
		GENERAL_NAMES *one = sk_GENERAL_NAME_new_null();
		int nid = OBJ_obj2nid(ad->method);
		if (one && sk_GENERAL_NAME_push(one, ad->location))
			uris_of(one, nid == NID_ad_OCSP ? ocsp : issuers);
		sk_GENERAL_NAME_free(one);
	}
	AUTHORITY_INFO_ACCESS_free(info);
	json_object_set_new(d, "ocsp", ocsp);
	json_object_set_new(d, "ca_issuers", issuers);
}

static json_t *policies(X509 *x)
{
	CERTIFICATEPOLICIES *ps = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
	json_t *a = json_array();
	char oid[128];

	for (int i = 0; ps && i < sk_POLICYINFO_num(ps); i++)
		if (OBJ_obj2txt(oid, sizeof(oid), sk_POLICYINFO_value(ps, i)->policyid, 1) > 0)
			json_array_append_new(a, json_string(oid));
	CERTIFICATEPOLICIES_free(ps);
	return a;
}

static json_t *decoded(X509 *x)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);
	int nid = X509_get_signature_nid(x);
	json_t *d = json_object();

	json_object_set_new(d, "version", json_integer(X509_get_version(x) + 1));
	json_object_set_new(d, "issuer", name_of(X509_get_issuer_name(x)));
	json_object_set_new(d, "subject", name_of(X509_get_subject_name(x)));
	json_object_set_new(d, "signature_algorithm",
	                    json_string(nid != NID_undef ? OBJ_nid2ln(nid) : "unknown"));
	json_object_set_new(d, "public_key", public_key(x));
	json_object_set_new(d, "ca", json_boolean(X509_check_ca(x) != 0));
	json_object_set_new(d, "key_usage", key_usage(x));
	json_object_set_new(d, "extended_key_usage", ekus(x));
	json_object_set_new(d, "policies", policies(x));
	json_object_set_new(d, "crl_distribution_points", crl_dps(x));
	aia(x, d);
	if (skid)
		json_object_set_new(
		    d, "subject_key_id",
		    hex_of(ASN1_STRING_get0_data(skid), (size_t)ASN1_STRING_length(skid)));
	if (akid)
		json_object_set_new(
		    d, "authority_key_id",
		    hex_of(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid)));
	if (X509_digest(x, EVP_sha256(), md, &n))
		json_object_set_new(d, "sha256_fingerprint", hex_of(md, n));
	if (X509_digest(x, EVP_sha1(), md, &n))
		json_object_set_new(d, "sha1_fingerprint", hex_of(md, n));
	return d;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (b && PEM_write_bio_X509(b, x) && (len = BIO_get_mem_data(b, &data)) > 0)
		out = strndup(data, (size_t)len);
	BIO_free(b);
	return out;
}

void cad_cert_view(struct cad *cad, const struct db_cert *c, json_t *o)
{
	const struct ca_authority *a = NULL;

	if (!o)
		return;
	if (c->der) {
		const unsigned char *p = c->der;
		X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
		if (x)
			json_object_set_new(o, "decoded", decoded(x));
		X509_free(x);
	}
	for (size_t i = 0; i < cad->cfg->n_authorities; i++)
		if (cad->cfg->authorities[i].db_id == c->authority_id)
			a = &cad->cfg->authorities[i];
	if (a && a->cert) {
		/* The issuing CA's certificate, then the authority's configured chain. */
		json_t *chain = json_array();
		for (int i = -1; i < sk_X509_num(a->chain); i++) {
			char *pem = pem_of(i < 0 ? a->cert : sk_X509_value(a->chain, i));
			if (pem)
				json_array_append_new(chain, json_string(pem));
			free(pem);
		}
		json_object_set_new(o, "chain", chain);
	}
}
