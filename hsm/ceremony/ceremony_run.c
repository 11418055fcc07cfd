/*
 * A ceremony from start to end. The order is the point:
 *   1. parse the file completely;
 *   2. read and check every input (issuer, existing CA, revoked certificates);
 *   3. refuse existing outputs and reserve temporary files next to them;
 *   4. check with keyd that the issuer's key is the issuer certificate's key
 *      (and signs), that a new label is free or an existing key is sound;
 *   5. lint the certificate with a stand-in key, so a profile error stops
 *      the ceremony before the HSM has changed;
 *   --dry-run stops here --
 *   6. generate the key and check its attributes and public key three ways;
 *   7. build, lint, sign, decode, lint again, verify, validate the path;
 *   8. write every output and the transcript, then link them into place.
 * Any failure after step 6 says plainly that the new key stays on the token.
 * A live run that fails after the file parsed leaves its transcript, and
 * nothing else, in a file named as failed (record_failure).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ceremony_internal.h"

/* The main output, the key ceremony's optional CSR, and the transcript, placed last. */
#define MAX_OUTS 3

struct run {
	struct ceremony *c;
	const struct ceremony_opts *o;
	struct cer_transcript tr;
	struct cer_keys keys;
	char *err;
	size_t errsz;

	X509 *issuer;         /* issuer certificate */
	EVP_PKEY *issuer_key; /* the issuer's key through the provider */
	X509 *existing_ca;    /* cross-sign */
	ASN1_INTEGER *revoked[CER_MAX_REVOKED];

	struct keyd_key subject;
	int have_subject;
	EVP_PKEY *subject_pub; /* from keyd's SPKI, a software public key */
	EVP_PKEY *subject_key; /* through the provider */
	int generated;

	X509 *cert;
	X509_CRL *crl;
	BIO *pem;
	BIO *csr_pem; /* key ceremony: the CSR */

	struct cer_output outs[MAX_OUTS];
	size_t nouts;
	/* Where the transcript's success summary starts: a failure while placing
	 * drops it from the failed transcript. 0: not reached. */
	size_t summary_at;
	int br_noted; /* the BR exceptions are in the transcript */
};

/* ---- small helpers ---- */

static void on_warning(void *arg, const char *msg)
{
	struct run *r = arg;

	cer_tr_step(&r->tr, "WARNING", "%s", msg);
}

static int read_cert(struct run *r, const struct cer_path *p, const char *field, X509 **out)
{
	BIO *b = BIO_new_file(p->resolved, "rb");
	X509 *x = NULL;

	if (b) {
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		if (!x && BIO_reset(b) == 0)
			x = d2i_X509_bio(b, NULL);
	}
	BIO_free(b);
	ERR_clear_error();
	if (!x)
		return cer_fail_at(r->err, r->errsz, r->c, p->line, field,
		                   "%s: cannot read a certificate (PEM or DER) from it",
		                   p->resolved);
	*out = x;
	return 0;
}

/* In the file's order ("O=Example,CN=Root"), not RFC 2253's reversed one. */
static void name_text(const X509_NAME *n, char *out, size_t outsz)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;

	out[0] = 0;
	if (!b)
		return;
	if (X509_NAME_print_ex(b, n, 0,
	                       XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &data);
		snprintf(out, outsz, "%.*s", (int)len, data);
	}
	BIO_free(b);
}

static void serial_text(const ASN1_INTEGER *s, char *out, size_t outsz)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, outsz, "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

static void asn1_time_text(const ASN1_TIME *t, char *out, size_t outsz)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm) || !strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outsz, "?");
}

static void cert_fingerprint(X509 *x, char *out, size_t outsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (X509_digest(x, EVP_sha256(), md, &n))
		cer_hex(md, n, 1, out, outsz);
	else
		snprintf(out, outsz, "?");
}

static void describe_cert(struct run *r, const char *what, X509 *x)
{
	char subject[512], issuer[512], serial[80], nb[32], na[32], fp[120];
	int sig_nid = X509_get_signature_nid(x);

	name_text(X509_get_subject_name(x), subject, sizeof(subject));
	name_text(X509_get_issuer_name(x), issuer, sizeof(issuer));
	serial_text(X509_get0_serialNumber(x), serial, sizeof(serial));
	asn1_time_text(X509_get0_notBefore(x), nb, sizeof(nb));
	asn1_time_text(X509_get0_notAfter(x), na, sizeof(na));
	cert_fingerprint(x, fp, sizeof(fp));
	cer_tr_line(&r->tr, "%s:", what);
	cer_tr_line(&r->tr, "    subject:            %s", subject);
	cer_tr_line(&r->tr, "    issuer:             %s", issuer);
	cer_tr_line(&r->tr, "    serial:             %s", serial);
	cer_tr_line(&r->tr, "    not before:         %s", nb);
	cer_tr_line(&r->tr, "    not after:          %s", na);
	if (sig_nid != NID_undef)
		cer_tr_line(&r->tr, "    signature:          %s", OBJ_nid2ln(sig_nid));
	cer_tr_line(&r->tr, "    sha256 fingerprint: %s", fp);
}

static void describe_key(struct run *r, const char *role, const struct keyd_key *k)
{
	char fp[120];

	cer_spki_fingerprint(k->spki, k->spki_len, fp, sizeof(fp));
	cer_tr_line(&r->tr, "%s key \"%s\": %s-%s%u, attributes:%s%s%s%s%s", role, k->label,
	            k->type == KEYD_KEY_RSA ? "rsa" : "ec", k->type == KEYD_KEY_RSA ? "" : "p",
	            k->bits, k->flags & KEYD_KF_SENSITIVE ? " sensitive" : "",
	            k->flags & KEYD_KF_EXTRACTABLE ? " EXTRACTABLE" : "",
	            k->flags & KEYD_KF_ALWAYS_SENSITIVE ? " always-sensitive" : "",
	            k->flags & KEYD_KF_NEVER_EXTRACTABLE ? " never-extractable" : "",
	            k->flags & KEYD_KF_LOCAL ? " local" : "");
	cer_tr_line(&r->tr, "    public key (SPKI) sha256: %s", fp);
}

static int spki_of_cert(X509 *x, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &p);

	if (n <= 0)
		return -1;
	*der = p;
	*len = (size_t)n;
	return 0;
}

/* ---- 2. inputs ---- */

static int check_revoked_inputs(struct run *r)
{
	struct ceremony *c = r->c;
	EVP_PKEY *ipub = X509_get0_pubkey(r->issuer);

	for (size_t i = 0; i < c->crl.n_revoked; i++) {
		struct cer_revoked *rv = &c->crl.revoked[i];
		char field[64], serial[80];
		BIGNUM *bn = NULL;

		snprintf(field, sizeof(field), "crl.revoked[%zu].certificate", i);
		if (rv->certificate.resolved[0]) {
			X509 *x = NULL;
			int ok;
			if (read_cert(r, &rv->certificate, field, &x) != 0)
				return -1;
			/* Only what this issuer signed may be on its CRL. */
			ok = X509_NAME_cmp(X509_get_issuer_name(x),
			                   X509_get_subject_name(r->issuer)) == 0 &&
			     X509_verify(x, ipub) == 1;
			ERR_clear_error();
			if (ok)
				r->revoked[i] = ASN1_INTEGER_dup(X509_get0_serialNumber(x));
			X509_free(x);
			if (!ok)
				return cer_fail_at(r->err, r->errsz, c, rv->certificate.line, field,
				                   "%s was not issued by the issuer certificate",
				                   rv->certificate.resolved);
		} else {
			if (BN_hex2bn(&bn, rv->serial_hex))
				r->revoked[i] = BN_to_ASN1_INTEGER(bn, NULL);
			BN_free(bn);
		}
		if (!r->revoked[i])
			return cer_fail(r->err, r->errsz, "out of memory");
		for (size_t j = 0; j < i; j++)
			if (ASN1_INTEGER_cmp(r->revoked[i], r->revoked[j]) == 0)
				return cer_fail_at(r->err, r->errsz, c, rv->line, field,
				                   "revokes the same serial number as entry %zu",
				                   j);
		serial_text(r->revoked[i], serial, sizeof(serial));
		cer_tr_step(&r->tr, "ok", "revoked entry %zu: serial %s, %s", i, serial,
		            ceremony_reason_name(rv->reason));
	}
	return 0;
}

/* A key on another token, named by the CSR its key ceremony wrote. */
static int read_csr(struct run *r)
{
	struct ceremony *c = r->c;
	BIO *b = BIO_new_file(c->key.csr.resolved, "rb");
	X509_REQ *req = NULL;
	EVP_PKEY *pk;
	uint8_t *der = NULL;
	size_t len = 0;
	char fp[120];
	int ok, rc = -1, bits;

	if (b) {
		req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		if (!req && BIO_reset(b) == 0)
			req = d2i_X509_REQ_bio(b, NULL);
	}
	BIO_free(b);
	ERR_clear_error();
	if (!req)
		return cer_fail_at(r->err, r->errsz, c, c->key.csr.line, "key.csr",
		                   "%s: cannot read a certificate request (PEM or DER) from it",
		                   c->key.csr.resolved);
	pk = X509_REQ_get0_pubkey(req);
	/* Proof of possession: the holder of the key signed the request. */
	ok = pk && X509_REQ_verify(req, pk) == 1;
	ERR_clear_error();
	if (!ok) {
		cer_fail_at(r->err, r->errsz, c, c->key.csr.line, "key.csr",
		            "%s: its signature does not verify with its own public key, so it does "
		            "not prove possession of the key",
		            c->key.csr.resolved);
		goto out;
	}
	bits = EVP_PKEY_get_bits(pk);
	if (EVP_PKEY_is_a(pk, "RSA")  ? bits != 2048 && bits != 3072 && bits != 4096
	    : EVP_PKEY_is_a(pk, "EC") ? bits != 256 && bits != 384
	                              : 1) {
		cer_fail_at(r->err, r->errsz, c, c->key.csr.line, "key.csr",
		            "%s: the key is not one of rsa-2048, rsa-3072, rsa-4096, ec-p256, "
		            "ec-p384",
		            c->key.csr.resolved);
		goto out;
	}
	if (c->key.type != CER_KT_NONE) {
		struct keyd_key k = {.type = EVP_PKEY_is_a(pk, "RSA") ? KEYD_KEY_RSA : KEYD_KEY_EC,
		                     .bits = (uint16_t)bits};
		if (!cer_key_is_type(&k, c->key.type)) {
			cer_fail_at(r->err, r->errsz, c, c->key.line_type, "key.type",
			            "the key in %s is not %s", c->key.csr.resolved,
			            ceremony_keytype_name(c->key.type));
			goto out;
		}
	}
	if (!EVP_PKEY_is_a(pk, "RSA") &&
	    (c->cert.key_usage & (CER_KU_KEY_ENCIPHERMENT | CER_KU_DATA_ENCIPHERMENT))) {
		cer_fail_at(r->err, r->errsz, c, c->cert.line_key_usage, "certificate.key_usage",
		            "an EC key cannot encipher: remove key-encipherment and "
		            "data-encipherment");
		goto out;
	}
	if (cer_pkey_spki(pk, &der, &len) != 0 || !EVP_PKEY_up_ref(pk)) {
		cer_fail(r->err, r->errsz, "%s: cannot encode its public key", c->key.csr.resolved);
		goto out;
	}
	r->subject_pub = pk;
	cer_spki_fingerprint(der, len, fp, sizeof(fp));
	cer_tr_step(&r->tr, "ok",
	            "read CSR %s: its signature proves possession of the key; public key (SPKI) "
	            "sha256 %s",
	            c->key.csr.as_written, fp);
	cer_tr_line(&r->tr,
	            "    the key is on another token: compare this fingerprint with the transcript "
	            "of the key ceremony that made it, which recorded its attributes");
	rc = 0;
out:
	OPENSSL_free(der);
	X509_REQ_free(req);
	return rc;
}

static int read_inputs(struct run *r)
{
	struct ceremony *c = r->c;
	char fp[120];
	uint8_t *der;
	size_t len;

	if (c->has_issuer) {
		if (read_cert(r, &c->issuer.certificate, "issuer.certificate", &r->issuer) != 0)
			return -1;
		cert_fingerprint(r->issuer, fp, sizeof(fp));
		cer_tr_step(&r->tr, "ok", "read issuer certificate %s (sha256 %s)",
		            c->issuer.certificate.as_written, fp);
		if (cer_lint_issuer(c, r->issuer, on_warning, r, r->err, r->errsz) != 0)
			return -1;
		cer_tr_step(&r->tr, "ok", "the issuer certificate is a CA fit to sign this");
	}
	if (c->has_existing_ca) {
		const char *f = "existing_ca.certificate";
		if (read_cert(r, &c->existing_ca.certificate, f, &r->existing_ca) != 0)
			return -1;
		if (!(X509_get_extension_flags(r->existing_ca) & EXFLAG_CA))
			return cer_fail_at(r->err, r->errsz, c, c->existing_ca.certificate.line, f,
			                   "%s is not a CA certificate: only CAs are cross-signed",
			                   c->existing_ca.certificate.resolved);
		if (X509_NAME_cmp(X509_get_subject_name(r->existing_ca),
		                  X509_get_subject_name(r->issuer)) == 0)
			return cer_fail_at(r->err, r->errsz, c, c->existing_ca.certificate.line, f,
			                   "has the issuer's own subject: a CA does not cross-sign "
			                   "itself");
		cert_fingerprint(r->existing_ca, fp, sizeof(fp));
		cer_tr_step(&r->tr, "ok", "read the existing CA certificate %s (sha256 %s)",
		            c->existing_ca.certificate.as_written, fp);
		if (spki_of_cert(r->existing_ca, &der, &len) == 0) {
			cer_spki_fingerprint(der, len, fp, sizeof(fp));
			OPENSSL_free(der);
			cer_tr_line(&r->tr, "    its public key (SPKI) sha256: %s", fp);
		}
		if (c->cert.n_permitted + c->cert.n_excluded == 0 &&
		    X509_get_ext_by_NID(r->existing_ca, NID_name_constraints, -1) >= 0)
			on_warning(r, "the existing CA certificate has name constraints; this "
			              "cross-certificate has none");
		if (X509_get_pathlen(r->existing_ca) >= 0 &&
		    (!c->cert.has_path_length ||
		     c->cert.path_length > X509_get_pathlen(r->existing_ca)))
			on_warning(r,
			           "this cross-certificate allows a longer path than the existing "
			           "CA certificate's path length");
	}
	if (c->has_crl && check_revoked_inputs(r) != 0)
		return -1;
	if (c->key.has_csr && read_csr(r) != 0)
		return -1;
	return 0;
}

/* ---- 3. outputs ---- */

static int reserve_outputs(struct run *r)
{
	struct ceremony *c = r->c;
	const struct cer_path *main_out = c->type == CER_KEY   ? &c->out.public_key
	                                  : c->type == CER_CRL ? &c->out.crl
	                                                       : &c->out.certificate;
	const char *what = c->type == CER_KEY   ? "public_key"
	                   : c->type == CER_CRL ? "crl"
	                                        : "certificate";

	if (cer_out_reserve(&r->outs[r->nouts++], what, main_out, c, r->err, r->errsz) != 0)
		return -1;
	if (c->out.csr.resolved[0] &&
	    cer_out_reserve(&r->outs[r->nouts++], "csr", &c->out.csr, c, r->err, r->errsz) != 0)
		return -1;
	if (cer_out_reserve(&r->outs[r->nouts++], "transcript", &c->out.transcript, c, r->err,
	                    r->errsz) != 0)
		return -1;
	for (size_t i = 0; i < r->nouts; i++)
		cer_tr_step(&r->tr, "ok", "output %s does not exist yet: %s", r->outs[i].what,
		            r->outs[i].path->resolved);
	return 0;
}

/* ---- 4. keys ---- */

/* keyd's key label is the key in cert: same SPKI from keyd and from the provider. */
static int check_key_is_cert_key(struct run *r, const char *label, int line, const char *field,
                                 X509 *cert, const char *cert_path, struct keyd_key *k)
{
	struct ceremony *c = r->c;
	uint8_t *der = NULL;
	size_t len = 0;
	char e[CER_ERR_MAX], have[120], want[120];
	int same;

	if (cer_key_get(&r->keys, label, k, e, sizeof(e)) != 0)
		return cer_fail_at(r->err, r->errsz, c, line, field, "%s", e);
	if (spki_of_cert(cert, &der, &len) != 0)
		return cer_fail(r->err, r->errsz, "%s: cannot encode its public key", cert_path);
	same = len == k->spki_len && memcmp(der, k->spki, len) == 0;
	cer_spki_fingerprint(k->spki, k->spki_len, have, sizeof(have));
	cer_spki_fingerprint(der, len, want, sizeof(want));
	OPENSSL_free(der);
	if (!same)
		return cer_fail_at(
		    r->err, r->errsz, c, line, field,
		    "keyd's key \"%s\" is not the key of %s (keyd's public key sha256 "
		    "%s, the certificate's %s): is keyd serving the wrong token, or "
		    "does the file name the wrong label?",
		    label, cert_path, have, want);
	return 0;
}

static int check_issuer_key(struct run *r)
{
	struct ceremony *c = r->c;
	struct keyd_key k;
	EVP_PKEY *ipub = X509_get0_pubkey(r->issuer);

	if (check_key_is_cert_key(r, c->issuer.label, c->issuer.line_label, "issuer.label",
	                          r->issuer, c->issuer.certificate.resolved, &k) != 0)
		return -1;
	describe_key(r, "issuer", &k);
	if (cer_key_check_flags(&k, r->err, r->errsz) != 0)
		return -1;
	if (cer_key_load(&r->keys, c->issuer.label, &r->issuer_key, r->err, r->errsz) != 0)
		return -1;
	if (!cer_pubkey_equal_der(r->issuer_key, k.spki, k.spki_len))
		return cer_fail(r->err, r->errsz,
		                "the keyd provider loads a different public key for \"%s\" than "
		                "keyd reports",
		                c->issuer.label);
	if (cer_key_test_signature(r->issuer_key, ipub, c->sig.hash, c->sig.padding, r->err,
	                           r->errsz) != 0)
		return -1;
	cer_tr_step(&r->tr, "ok",
	            "issuer key \"%s\" is the issuer certificate's key (keyd, provider and a test "
	            "signature agree) and is sensitive, never extractable, made on the token",
	            c->issuer.label);
	return 0;
}

/* A key keyd holds: sound attributes, one public key three ways, and it signs. */
static int check_subject_key(struct run *r, const struct keyd_key *k)
{
	struct ceremony *c = r->c;
	struct keyd_key again;
	const unsigned char *p = k->spki;

	describe_key(r, "subject", k);
	if (cer_key_check_flags(k, r->err, r->errsz) != 0)
		return -1;
	cer_tr_step(&r->tr, "ok",
	            "key \"%s\" is sensitive, always sensitive, never extractable, not "
	            "extractable and was generated on the token",
	            k->label);
	if (cer_key_get(&r->keys, c->key.label, &again, r->err, r->errsz) != 0)
		return -1;
	if (again.spki_len != k->spki_len || memcmp(again.spki, k->spki, k->spki_len) != 0)
		return cer_fail(r->err, r->errsz,
		                "keyd reports a different public key for \"%s\" than it returned "
		                "when the key was made",
		                c->key.label);
	r->subject_pub = d2i_PUBKEY(NULL, &p, (long)k->spki_len);
	if (!r->subject_pub)
		return cer_fail(r->err, r->errsz, "keyd's public key for \"%s\" does not parse",
		                c->key.label);
	if (cer_key_load(&r->keys, c->key.label, &r->subject_key, r->err, r->errsz) != 0)
		return -1;
	if (!cer_pubkey_equal_der(r->subject_key, k->spki, k->spki_len))
		return cer_fail(r->err, r->errsz,
		                "the keyd provider loads a different public key for \"%s\" than "
		                "keyd reports",
		                c->key.label);
	/* Proof of possession: the key we certify signs, and verifies with its public key. */
	if (cer_key_test_signature(
	        r->subject_key, r->subject_pub, c->type == CER_ROOT ? c->sig.hash : CER_HASH_SHA256,
	        c->type == CER_ROOT ? c->sig.padding : CER_PAD_DEFAULT, r->err, r->errsz) != 0)
		return -1;
	cer_tr_step(&r->tr, "ok",
	            "public key of \"%s\" is the same from generate/get-public-key and the "
	            "provider; a test signature verifies",
	            c->key.label);
	return 0;
}

static int check_existing_key(struct run *r)
{
	struct ceremony *c = r->c;
	char e[CER_ERR_MAX];

	if (cer_key_get(&r->keys, c->key.label, &r->subject, e, sizeof(e)) != 0)
		return cer_fail_at(r->err, r->errsz, c, c->key.line_label, "key.label", "%s", e);
	r->have_subject = 1;
	if (c->key.type != CER_KT_NONE && !cer_key_is_type(&r->subject, c->key.type))
		return cer_fail_at(r->err, r->errsz, c, c->key.line_type, "key.type",
		                   "the existing key \"%s\" is %s-%s%u, not %s", c->key.label,
		                   r->subject.type == KEYD_KEY_RSA ? "rsa" : "ec",
		                   r->subject.type == KEYD_KEY_RSA ? "" : "p", r->subject.bits,
		                   ceremony_keytype_name(c->key.type));
	if (c->type == CER_ROOT && c->sig.padding != CER_PAD_DEFAULT &&
	    r->subject.type != KEYD_KEY_RSA)
		return cer_fail_at(r->err, r->errsz, c, c->sig.line_padding, "signature.padding",
		                   "padding applies to RSA keys only; \"%s\" is an EC key",
		                   c->key.label);
	if (r->subject.type != KEYD_KEY_RSA &&
	    (c->cert.key_usage & (CER_KU_KEY_ENCIPHERMENT | CER_KU_DATA_ENCIPHERMENT)))
		return cer_fail_at(r->err, r->errsz, c, c->cert.line_key_usage,
		                   "certificate.key_usage",
		                   "an EC key cannot encipher: remove key-encipherment and "
		                   "data-encipherment");
	return check_subject_key(r, &r->subject);
}

static int check_keys(struct run *r)
{
	struct ceremony *c = r->c;
	uint16_t version = 0;
	struct keyd_token_status st;
	struct keyd_err ke;
	char e[CER_ERR_MAX];

	if (cer_keys_open(&r->keys, r->o->socket, r->o->timeout_ms, &version, r->err, r->errsz))
		return -1;
	if (keyd_client_status(r->keys.client, &st, &ke) == KEYD_OK)
		cer_tr_step(&r->tr, "ok", "keyd protocol %u, token \"%s\" %s, %u keys", version,
		            st.token, st.online ? "online" : "OFFLINE", st.keys);
	else
		cer_tr_step(&r->tr, "ok", "keyd protocol %u (token status not available: %s)",
		            version, ke.msg);
	if (c->has_issuer && check_issuer_key(r) != 0)
		return -1;
	if (c->has_existing_ca && c->existing_ca.label[0]) {
		struct keyd_key k;
		if (check_key_is_cert_key(r, c->existing_ca.label, c->existing_ca.line_label,
		                          "existing_ca.label", r->existing_ca,
		                          c->existing_ca.certificate.resolved, &k) != 0)
			return -1;
		cer_tr_step(&r->tr, "ok", "keyd's key \"%s\" is the existing CA certificate's key",
		            c->existing_ca.label);
	}
	if (!c->has_key || c->key.has_csr)
		return 0;
	if (c->key.existing)
		return check_existing_key(r);
	if (cer_key_absent(&r->keys, c->key.label, e, sizeof(e)) != 0)
		return cer_fail_at(r->err, r->errsz, c, c->key.line_label, "key.label", "%s", e);
	cer_tr_step(&r->tr, "ok", "no key labelled \"%s\" exists yet", c->key.label);
	return 0;
}

/* ---- 5. and 7. certificates and CRLs ---- */

static void br_note(void *arg, const char *rule, const char *section, const char *level,
                    const char *finding, const char *reason)
{
	struct run *r = arg;

	cer_tr_step(&r->tr, "EXCEPTION",
	            "private-PKI exception to %s (%s, %s): %s; the ceremony file's reason: %s",
	            rule, section, level, finding, reason);
}

/* The Baseline Requirements for CA certificates, with the exceptions the file grants written
 * into the transcript once (the first check reports them; later ones only check). */
static int lint_br(struct run *r, X509 *x)
{
	const struct ceremony *c = r->c;

	if (c->type != CER_ROOT && c->type != CER_INTERMEDIATE && c->type != CER_CROSS_SIGN)
		return 0;
	if (cer_lint_br(c, x, r->br_noted ? NULL : br_note, r, r->err, r->errsz) != 0)
		return -1;
	if (!r->br_noted)
		cer_tr_step(
		    &r->tr, "ok",
		    "the certificate meets the CA/Browser Forum Baseline Requirements for a "
		    "%s CA certificate%s",
		    c->type == CER_ROOT ? "root" : "subordinate",
		    c->n_br_exceptions ? ", but for the exceptions above" : "");
	r->br_noted = 1;
	return 0;
}

static int lint_tbs(struct run *r, X509 *x, EVP_PKEY *subject_pub)
{
	struct cer_lint l = {
	    .c = r->c,
	    .issuer = r->issuer,
	    .issuer_pub = r->issuer ? X509_get0_pubkey(r->issuer) : subject_pub,
	    .subject_pub = subject_pub,
	    .existing_ca = r->existing_ca,
	    .warn = on_warning,
	    .warn_arg = r,
	};

	return cer_lint_cert(&l, x, r->err, r->errsz) != 0 ? -1 : lint_br(r, x);
}

static EVP_PKEY *stand_in_key(enum cer_keytype t)
{
	switch (t) {
	case CER_KT_RSA2048:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	case CER_KT_RSA3072:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	case CER_KT_RSA4096:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
	case CER_KT_EC_P256:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	default:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	}
}

/* Before the key exists: the whole certificate, with a throwaway key of the same type. */
static int lint_with_stand_in(struct run *r)
{
	struct ceremony *c = r->c;
	EVP_PKEY *pk = stand_in_key(c->key.type);
	struct cer_subject_key sk = {.pub = pk};
	X509 *x = NULL;
	int rc = -1;

	if (!pk) {
		cer_fail(r->err, r->errsz, "cannot make a stand-in %s key for the checks",
		         ceremony_keytype_name(c->key.type));
		cer_append_ossl(r->err, r->errsz);
		goto out;
	}
	if (cer_cert_build(c, &sk, r->issuer, &x, r->err, r->errsz) != 0 || lint_tbs(r, x, pk) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok",
	            "the certificate profile passes the RFC 5280 checks (with a stand-in key, "
	            "before the HSM key is made)");
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

static int make_cert(struct run *r, int sign)
{
	struct ceremony *c = r->c;
	EVP_PKEY *subject_pub =
	    c->type == CER_CROSS_SIGN ? X509_get0_pubkey(r->existing_ca) : r->subject_pub;
	struct cer_subject_key sk = {.pub = subject_pub, .existing_ca = r->existing_ca};
	EVP_PKEY *signer = c->type == CER_ROOT ? r->subject_key : r->issuer_key;
	EVP_PKEY *issuer_pub = c->type == CER_ROOT ? r->subject_pub : X509_get0_pubkey(r->issuer);
	X509 *tbs = NULL, *x = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len, rc = -1;
	time_t t;
	struct cer_lint l = {
	    .c = c,
	    .issuer = r->issuer,
	    .issuer_pub = issuer_pub,
	    .subject_pub = subject_pub,
	    .existing_ca = r->existing_ca,
	    .signed_ = 1,
	    .warn = on_warning,
	    .warn_arg = r,
	};

	if (cer_cert_build(c, &sk, r->issuer, &tbs, r->err, r->errsz) != 0 ||
	    lint_tbs(r, tbs, subject_pub) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok", "the to-be-signed certificate passes the RFC 5280 checks");
	if (!sign) {
		rc = 0;
		goto out;
	}
	if (cer_cert_sign(c, tbs, signer, r->err, r->errsz) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok", "keyd signed the certificate with key \"%s\" (%s%s)",
	            c->type == CER_ROOT ? c->key.label : c->issuer.label,
	            ceremony_hash_name(c->sig.hash),
	            c->sig.padding == CER_PAD_PSS ? ", RSA-PSS" : "");
	/* Check what will be written: the DER, decoded afresh. */
	len = i2d_X509(tbs, &der);
	p = der;
	if (len <= 0 || !(x = d2i_X509(NULL, &p, len)) || p != der + len) {
		cer_fail(r->err, r->errsz, "the signed certificate does not decode again");
		cer_append_ossl(r->err, r->errsz);
		goto out;
	}
	if (cer_lint_cert(&l, x, r->err, r->errsz) != 0 || lint_br(r, x) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok",
	            "the signed certificate passes the RFC 5280 checks and its signature verifies "
	            "with the %s public key",
	            c->type == CER_ROOT ? "root's own (keyd's)" : "issuer certificate's");
	/* Validate when both certificates are valid: the later of the two notBefores. */
	t = c->cert.not_before;
	if (r->issuer) {
		struct tm tm;
		if (ASN1_TIME_to_tm(X509_get0_notBefore(r->issuer), &tm)) {
			time_t inb = timegm(&tm);
			if (inb > t)
				t = inb;
		}
	}
	if (cer_lint_path(x, r->issuer ? r->issuer : x, t, r->err, r->errsz) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok", "path validation to the %s succeeds",
	            r->issuer ? "issuer certificate" : "root itself");
	if (!PEM_write_bio_X509(r->pem, x)) {
		cer_fail(r->err, r->errsz, "encoding the certificate failed");
		cer_append_ossl(r->err, r->errsz);
		goto out;
	}
	r->cert = x;
	x = NULL;
	rc = 0;
out:
	OPENSSL_free(der);
	X509_free(tbs);
	X509_free(x);
	return rc;
}

static int make_crl(struct run *r, int sign)
{
	struct ceremony *c = r->c;
	X509_CRL *tbs = NULL, *crl = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len, rc = -1;
	struct cer_lint l = {
	    .c = c,
	    .issuer = r->issuer,
	    .issuer_pub = X509_get0_pubkey(r->issuer),
	    .warn = on_warning,
	    .warn_arg = r,
	};

	if (cer_crl_build(c, r->issuer, r->revoked, &tbs, r->err, r->errsz) != 0 ||
	    cer_lint_crl(&l, tbs, r->err, r->errsz) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok", "the to-be-signed CRL passes the RFC 5280 checks");
	if (!sign) {
		rc = 0;
		goto out;
	}
	if (cer_crl_sign(c, tbs, r->issuer_key, r->err, r->errsz) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok", "keyd signed the CRL with key \"%s\"", c->issuer.label);
	len = i2d_X509_CRL(tbs, &der);
	p = der;
	if (len <= 0 || !(crl = d2i_X509_CRL(NULL, &p, len)) || p != der + len) {
		cer_fail(r->err, r->errsz, "the signed CRL does not decode again");
		cer_append_ossl(r->err, r->errsz);
		goto out;
	}
	l.signed_ = 1;
	if (cer_lint_crl(&l, crl, r->err, r->errsz) != 0)
		goto out;
	cer_tr_step(&r->tr, "ok",
	            "the signed CRL passes the RFC 5280 checks and its signature verifies with "
	            "the issuer certificate's public key");
	if (!PEM_write_bio_X509_CRL(r->pem, crl)) {
		cer_fail(r->err, r->errsz, "encoding the CRL failed");
		cer_append_ossl(r->err, r->errsz);
		goto out;
	}
	r->crl = crl;
	crl = NULL;
	rc = 0;
out:
	OPENSSL_free(der);
	X509_CRL_free(tbs);
	X509_CRL_free(crl);
	return rc;
}

/* The checks that need the real subject key but sign nothing (existing keys, dry runs). */
static int build_and_lint(struct run *r, int sign)
{
	switch (r->c->type) {
	case CER_KEY:
		return 0;
	case CER_CRL:
		return make_crl(r, sign);
	default:
		return make_cert(r, sign);
	}
}

/* ---- 6. the new key ---- */

static int generate_key(struct run *r)
{
	struct ceremony *c = r->c;

	cer_tr_step(&r->tr, "...", "generating key pair \"%s\" (%s) on the token", c->key.label,
	            ceremony_keytype_name(c->key.type));
	if (cer_key_generate(&r->keys, c->key.label, c->key.type, &r->subject, r->err, r->errsz) !=
	    0)
		return -1;
	r->generated = 1;
	r->have_subject = 1;
	cer_tr_step(&r->tr, "ok", "generated key pair \"%s\"", c->key.label);
	return check_subject_key(r, &r->subject);
}

/* The key ceremony's CSR: proof of possession for a ceremony on another host. */
static int make_csr(struct run *r)
{
	struct ceremony *c = r->c;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	enum cer_hash hash = r->subject.type == KEYD_KEY_EC && r->subject.bits == 384
	                         ? CER_HASH_SHA384
	                         : CER_HASH_SHA256;
	int rc = -1, ok;

	/* The subject is only a reminder: the ceremony that certifies the key sets its own. */
	ok = req && name && mctx && X509_REQ_set_version(req, X509_REQ_VERSION_1) &&
	     X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	                                (const unsigned char *)c->key.label, -1, -1, 0) &&
	     X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, r->subject_pub);
	if (!ok) {
		cer_fail(r->err, r->errsz, "building the CSR failed");
		cer_append_ossl(r->err, r->errsz);
		goto out;
	}
	if (cer_sign_init(mctx, hash, CER_PAD_DEFAULT, r->subject_key, r->err, r->errsz) != 0)
		goto out;
	if (X509_REQ_sign_ctx(req, mctx) <= 0) {
		cer_fail(r->err, r->errsz, "signing the CSR through keyd failed");
		cer_append_ossl(r->err, r->errsz);
		goto out;
	}
	if (X509_REQ_verify(req, r->subject_pub) != 1) {
		ERR_clear_error();
		cer_fail(r->err, r->errsz,
		         "the CSR keyd signed does not verify with the key's "
		         "public key");
		goto out;
	}
	if (!(r->csr_pem = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509_REQ(r->csr_pem, req)) {
		cer_fail(r->err, r->errsz, "encoding the CSR failed");
		goto out;
	}
	cer_tr_step(&r->tr, "ok", "keyd signed a CSR with key \"%s\"; it verifies", c->key.label);
	rc = 0;
out:
	EVP_MD_CTX_free(mctx);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

/* ---- 8. outputs ---- */

/* A transcript file ends with the ceremony file itself. */
static void append_ceremony_file(struct run *r)
{
	struct ceremony *c = r->c;

	cer_tr_file_only(&r->tr, "\n--- ceremony file as run ---\n", 30);
	cer_tr_file_only(&r->tr, c->text, c->text_len);
	if (c->text_len && c->text[c->text_len - 1] != '\n')
		cer_tr_file_only(&r->tr, "\n", 1);
	cer_tr_file_only(&r->tr, "--- end of ceremony file ---\n", 29);
}

static int write_outputs(struct run *r)
{
	struct ceremony *c = r->c;
	char *data, hex[80], now[32];
	long len;

	if (c->type == CER_KEY && !PEM_write_bio_PUBKEY(r->pem, r->subject_pub)) {
		cer_fail(r->err, r->errsz, "encoding the public key failed");
		cer_append_ossl(r->err, r->errsz);
		return -1;
	}
	len = BIO_get_mem_data(r->pem, &data);
	if (len <= 0 || cer_out_write(&r->outs[0], data, (size_t)len, r->err, r->errsz) != 0)
		return -1;
	if (r->csr_pem) {
		len = BIO_get_mem_data(r->csr_pem, &data);
		if (len <= 0 || cer_out_write(&r->outs[1], data, (size_t)len, r->err, r->errsz))
			return -1;
	}

	cer_tr_line(&r->tr, "%s", "");
	if (r->have_subject)
		describe_key(r, r->generated ? "new" : "certified", &r->subject);
	if (r->cert)
		describe_cert(r, "certificate", r->cert);
	if (r->crl) {
		char tu[32], nu[32];
		ceremony_time_str(c->crl.this_update, tu, sizeof(tu));
		ceremony_time_str(c->crl.next_update, nu, sizeof(nu));
		cer_tr_line(&r->tr, "crl:");
		cer_tr_line(&r->tr, "    number:             %s", c->crl.number);
		cer_tr_line(&r->tr, "    this update:        %s", tu);
		cer_tr_line(&r->tr, "    next update:        %s", nu);
		cer_tr_line(&r->tr, "    revoked entries:    %zu", c->crl.n_revoked);
	}
	r->summary_at = r->tr.len;
	cer_tr_line(&r->tr, "outputs:");
	for (size_t i = 0; i + 1 < r->nouts; i++) {
		cer_hex(r->outs[i].sha256, 32, 0, hex, sizeof(hex));
		cer_tr_line(&r->tr, "    sha256 %s  %s", hex, r->outs[i].path->resolved);
	}
	cer_tr_line(&r->tr, "%s", "");
	cer_tr_step(&r->tr, "ok", "placing the outputs and this transcript (all or nothing)");
	ceremony_time_str(time(NULL), now, sizeof(now));
	cer_tr_line(&r->tr, "result: success, %s", now);

	append_ceremony_file(r);
	if (r->tr.oom)
		return cer_fail(r->err, r->errsz, "out of memory for the transcript");
	if (cer_out_write(&r->outs[r->nouts - 1], r->tr.buf, r->tr.len, r->err, r->errsz) != 0)
		return -1;
	return cer_out_place(r->outs, r->nouts, r->err, r->errsz);
}

/* ---- a failure: what it left behind and what to do, on record ---- */

static void append_err(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append_err(struct run *r, const char *fmt, ...)
{
	size_t len = strlen(r->err);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err + len, r->errsz - len, fmt, ap);
	va_end(ap);
}

/* The end of a failed run's transcript, and (live runs) its file. The
 * outputs' temporary files go first, so that the failed transcript is the
 * only file the run leaves. */
static void record_failure(struct run *r)
{
	char fp[120], now[32], placed[CER_PATH_MAX + 64], e[CER_ERR_MAX];
	const char *label = r->c->key.label;
	time_t when = time(NULL);

	cer_out_discard(r->outs, r->nouts);
	/* The success summary of a run that failed while placing its files is not true. */
	if (r->summary_at)
		cer_tr_rewind(&r->tr, r->summary_at);
	cer_tr_step(&r->tr, "FAILED", "%s", r->err);
	if (r->generated) {
		cer_spki_fingerprint(r->subject.spki, r->subject.spki_len, fp, sizeof(fp));
		cer_tr_line(&r->tr,
		            "the key pair \"%s\" was generated and REMAINS ON THE TOKEN; no output "
		            "was written",
		            label);
		cer_tr_line(&r->tr,
		            "key left on the token: label \"%s\", public key (SPKI) sha256 %s",
		            label, fp);
		cer_tr_line(
		    &r->tr,
		    "next: find and correct the cause in the FAILED line above; then either "
		    "run the ceremony again with key.existing: true, which certifies this "
		    "key, or destroy the key \"%s\" with the token's own tools and run the "
		    "ceremony again as it is",
		    label);
		append_err(r,
		           "\nthe key pair \"%s\" was generated and REMAINS ON THE TOKEN; no "
		           "output was written. Find the cause, then either run the ceremony "
		           "again with key.existing: true or destroy the key with the token's "
		           "own tools.",
		           label);
	} else {
		cer_tr_line(&r->tr, "no key was generated and no output was written; the token "
		                    "holds the keys it held before");
		cer_tr_line(&r->tr, "next: correct the cause in the FAILED line above and run the "
		                    "ceremony again");
	}
	ceremony_time_str(when, now, sizeof(now));
	cer_tr_line(&r->tr, "result: FAILED, %s", now);
	if (r->o->dry_run)
		return; /* a dry run writes nothing, not even this */
	append_ceremony_file(r);
	if (r->tr.oom)
		snprintf(e, sizeof(e), "out of memory for the transcript");
	else if (cer_out_failed_transcript(&r->c->out.transcript, when, r->tr.buf, r->tr.len,
	                                   placed, sizeof(placed), e, sizeof(e)) == 0) {
		fprintf(r->tr.out, "the transcript of this failed run: %s\n", placed);
		fflush(r->tr.out);
		append_err(r, "\nthe transcript of this failed run: %s", placed);
		return;
	}
	fprintf(r->tr.out,
	        "the transcript of this failed run could not be written (%s): it "
	        "is only here\n",
	        e);
	fflush(r->tr.out);
	append_err(r,
	           "\nthe transcript of this failed run could not be written (%s): it is "
	           "only on stdout",
	           e);
}

/* ---- the whole ---- */

static int run_steps(struct run *r)
{
	struct ceremony *c = r->c;
	int new_key = c->has_key && !c->key.existing && !c->key.has_csr;

	if (read_inputs(r) != 0 || reserve_outputs(r) != 0 || check_keys(r) != 0)
		return -1;
	if (!(r->pem = BIO_new(BIO_s_mem())))
		return cer_fail(r->err, r->errsz, "out of memory");
	if (new_key && c->type != CER_KEY && lint_with_stand_in(r) != 0)
		return -1;
	if (!new_key && build_and_lint(r, 0) != 0)
		return -1;
	if (r->o->dry_run) {
		cer_tr_step(&r->tr, "ok",
		            "dry run: every check passed; stopping before anything is generated, "
		            "signed or written");
		return 0;
	}
	if (new_key && generate_key(r) != 0)
		return -1;
	if (c->out.csr.resolved[0] && make_csr(r) != 0)
		return -1;
	if (build_and_lint(r, 1) != 0)
		return -1;
	return write_outputs(r);
}

int ceremony_run(const char *path, const struct ceremony_opts *o, char *err, size_t errsz)
{
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.err = err;
	r.errsz = errsz;
	err[0] = 0;
	for (int i = 0; i < MAX_OUTS; i++)
		r.outs[i].fd = -1;
	if (ceremony_parse_file(path, time(NULL), &r.c, err, errsz) != 0)
		return -1;
	cer_tr_init(&r.tr, o->out);
	cer_tr_header(&r.tr, r.c, o->socket ? o->socket : getenv("HSMCA_KEYD_SOCKET"), o->dry_run);
	if (o->approval)
		cer_tr_line(&r.tr, "approval:             %s", o->approval);
	cer_tr_step(&r.tr, "ok", "parsed the ceremony file: every field is known and valid");
	if (o->approved_sha256) {
		char hex[80];
		cer_hex(r.c->sha256, sizeof(r.c->sha256), 0, hex, sizeof(hex));
		if (strcmp(hex, o->approved_sha256) != 0) {
			snprintf(
			    err, errsz,
			    "%s: its SHA-256 is %s, not the approved %s: the file changed after "
			    "it was approved; nothing was done",
			    path, hex, o->approved_sha256);
			cer_tr_step(&r.tr, "FAILED", "%s", err);
			cer_tr_free(&r.tr);
			ceremony_free(r.c);
			return -1;
		}
		cer_tr_step(&r.tr, "ok", "the ceremony file is the one approved (SHA-256 %s)", hex);
	}

	/* CA/B Forum BR 7.1.2.4: no backdating beyond 48 hours; often a typo in the year. */
	if (r.c->has_cert && r.c->cert.not_before < r.c->now - 48 * 3600)
		on_warning(&r, "certificate.not_before is more than 48 hours in the past");
	rc = run_steps(&r);
	if (rc != 0) {
		record_failure(&r);
	} else if (o->dry_run) {
		cer_tr_line(&r.tr,
		            "result: dry run passed; nothing was generated, signed or written");
	}

	cer_out_discard(r.outs, r.nouts);
	for (size_t i = 0; i < CER_MAX_REVOKED; i++)
		ASN1_INTEGER_free(r.revoked[i]);
	X509_free(r.issuer);
	X509_free(r.existing_ca);
	X509_free(r.cert);
	X509_CRL_free(r.crl);
	BIO_free(r.pem);
	BIO_free(r.csr_pem);
	EVP_PKEY_free(r.issuer_key);
	EVP_PKEY_free(r.subject_key);
	EVP_PKEY_free(r.subject_pub);
	cer_keys_close(&r.keys);
	cer_tr_free(&r.tr);
	ceremony_free(r.c);
	return rc;
}
