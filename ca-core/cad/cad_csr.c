/* Parse, then judge: a PKCS#10 request against a profile (proof of possession, key profile,
 * subject fields, SANs and their patterns), before anything is written or signed. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"

static int key_allowed(const struct cad_key_profile *kp, EVP_PKEY *key, char *why, size_t n)
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

static int subject_allowed(const struct cad_profile *p, const X509_NAME *name, char *why, size_t n)
{
	int have_cn = 0, prev_set = -1;

	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
		unsigned char *u = NULL;
		int ulen, set = X509_NAME_ENTRY_set(e);
		size_t k;

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
		ulen = ASN1_STRING_to_UTF8(&u, d);
		if (ulen <= 0 || memchr(u, '\0', (size_t)ulen)) {
			OPENSSL_free(u);
			snprintf(why, n, "subject field %s is empty or not text", OBJ_nid2sn(nid));
			return 0;
		}
		OPENSSL_free(u);
		if (nid == NID_commonName)
			have_cn = 1;
	}
	if (p->subject_cn_required && !have_cn) {
		snprintf(why, n, "profile %s requires a subject CN", p->name);
		return 0;
	}
	return 1;
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
static int pattern_match(enum cad_san_kind kind, const char *pat, const char *v)
{
	if (kind == CAD_SAN_DNS) {
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
static int sans_allowed(const struct cad_profile *p, X509_REQ *req, GENERAL_NAMES **gens_out,
                        struct cad_csr *out, char *why, size_t n)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
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
	if (sk_GENERAL_NAME_num(gens) > CAD_SANS_MAX) {
		snprintf(why, n, "more than %d SANs", CAD_SANS_MAX);
		goto out;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		enum cad_san_kind kind;
		const ASN1_STRING *s = NULL;
		char *v = out->text[out->n_sans];
		size_t k, len;

		switch (g->type) {
		case GEN_DNS:
			kind = CAD_SAN_DNS;
			s = g->d.dNSName;
			break;
		case GEN_EMAIL:
			kind = CAD_SAN_EMAIL;
			s = g->d.rfc822Name;
			break;
		case GEN_URI:
			kind = CAD_SAN_URI;
			s = g->d.uniformResourceIdentifier;
			break;
		case GEN_IPADD:
			kind = CAD_SAN_IP;
			break;
		default:
			snprintf(why, n, "SAN type %d is not allowed (dns, ip, email, uri only)",
			         g->type);
			goto out;
		}
		if (kind == CAD_SAN_IP) {
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
				         cad_san_kind_name(kind));
				goto out;
			}
			memcpy(v, ASN1_STRING_get0_data(s), len);
			v[len] = '\0';
			for (size_t c = 0; c < len; c++)
				if ((unsigned char)v[c] < 0x21 || (unsigned char)v[c] > 0x7e) {
					snprintf(why, n, "%s SAN \"%.64s\": not printable ASCII",
					         cad_san_kind_name(kind), v);
					goto out;
				}
			if (kind == CAD_SAN_DNS && !dns_syntax_ok(v, len)) {
				snprintf(why, n, "DNS SAN \"%.64s\" is not a host name", v);
				goto out;
			}
			if (kind == CAD_SAN_EMAIL && (!strchr(v, '@') || strchr(v, '@') == v)) {
				snprintf(why, n, "email SAN \"%.64s\" is not an address", v);
				goto out;
			}
		}
		for (k = 0; k < p->n_san_patterns[kind]; k++)
			if (pattern_match(kind, p->san_patterns[kind][k], v))
				break;
		if (k == p->n_san_patterns[kind]) {
			snprintf(why, n, "%s SAN \"%.64s\" is not allowed by profile %s",
			         cad_san_kind_name(kind), v, p->name);
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

void cad_csr_free(struct cad_csr *c)
{
	GENERAL_NAMES_free(c->gens);
	EVP_PKEY_free(c->pub);
	X509_REQ_free(c->req);
	c->gens = NULL;
	c->pub = NULL;
	c->req = NULL;
}

int cad_csr_check(const struct cad_profile *p, const char *pem, struct cad_csr *out,
                  const char **error, char *why, size_t n)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	BIO *m = NULL;
	int len, rc = -1;

	out->req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	ERR_clear_error();
	if (!out->req) {
		*error = "bad-csr";
		snprintf(why, n, "\"csr\" is not a PEM PKCS#10 request");
		goto out;
	}
	out->pub = X509_REQ_get_pubkey(out->req);
	if (!out->pub) {
		ERR_clear_error();
		*error = "bad-csr";
		snprintf(why, n, "the CSR's public key does not parse");
		goto out;
	}
	/* Proof of possession: the request is signed by the key it names. */
	if (X509_REQ_verify(out->req, out->pub) != 1) {
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
	if (!subject_allowed(p, X509_REQ_get_subject_name(out->req), why, n) ||
	    !sans_allowed(p, out->req, &out->gens, out, why, n))
		goto out;
	m = BIO_new(BIO_s_mem());
	if (!m ||
	    X509_NAME_print_ex(m, X509_REQ_get_subject_name(out->req), 0, XN_FLAG_RFC2253) < 0 ||
	    (len = BIO_read(m, out->subject, sizeof(out->subject) - 1)) < 0)
		len = 0;
	out->subject[len] = '\0';
	ERR_clear_error();
	*error = NULL;
	rc = 0;
out:
	BIO_free(m);
	BIO_free(bio);
	return rc;
}
