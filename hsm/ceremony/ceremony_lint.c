/*
 * The ceremony's RFC 5280 checks: the ceremony file turned into the linter's
 * profile (ca-core/lint/lint.h), run on the to-be-signed certificate before
 * keyd signs it and on the signed certificate (decoded again from its DER)
 * after, so a fault anywhere between the file and the bytes is caught; and
 * the issuer's fitness for what the file asks, reported at the file's lines.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ceremony_internal.h"
#include "lint.h"
#include "lint_br.h"

/* The file's key_usage goes to the linter as it is. */
_Static_assert(CER_KU_DIGITAL_SIGNATURE == LINT_KU_DIGITAL_SIGNATURE &&
                   CER_KU_KEY_CERT_SIGN == LINT_KU_KEY_CERT_SIGN &&
                   CER_KU_CRL_SIGN == LINT_KU_CRL_SIGN,
               "keyUsage bits differ between the ceremony and the linter");

/* Findings name the ceremony file, as the transcript always has. */
static const struct lint_words words = {
    .source = "the ceremony file", .source_short = "the file", .asker = "the ceremony"};

static int hash_nid(enum cer_hash h)
{
	return h == CER_HASH_SHA512 ? NID_sha512 : h == CER_HASH_SHA384 ? NID_sha384 : NID_sha256;
}

static enum lint_role role_of(enum cer_type t)
{
	switch (t) {
	case CER_ROOT:
		return LINT_ROOT;
	case CER_INTERMEDIATE:
		return LINT_INTERMEDIATE;
	case CER_CROSS_SIGN:
		return LINT_CROSS_SIGN;
	default:
		return LINT_OCSP_SIGNER;
	}
}

static struct lint_parties parties_of(const struct cer_lint *l)
{
	return (struct lint_parties){.issuer = l->issuer,
	                             .issuer_pub = l->issuer_pub,
	                             .subject_pub = l->subject_pub,
	                             .existing_ca = l->existing_ca,
	                             .warn = l->warn,
	                             .warn_arg = l->warn_arg};
}

int cer_lint_cert(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	const char *eku[CER_MAX_EKUS];
	struct lint_cert_profile p = {
	    .role = role_of(c->type),
	    .not_before = c->cert.not_before,
	    .not_after = c->cert.not_after,
	    .key_usage = c->cert.key_usage,
	    .eku = eku,
	    .n_eku = c->cert.n_eku,
	    .has_path_length = c->cert.has_path_length,
	    .path_length = c->cert.path_length,
	    .name_constraints = c->cert.n_permitted || c->cert.n_excluded,
	    .min_serial_bits = 64,
	    .hash_nid = hash_nid(c->sig.hash),
	    .rsa_pss = c->sig.padding == CER_PAD_PSS,
	    .words = words,
	};
	struct lint_parties w = parties_of(l);

	for (size_t i = 0; i < c->cert.n_eku && i < CER_MAX_EKUS; i++)
		eku[i] = c->cert.eku[i];
	return l->signed_ ? lint_cert_signed(&p, &w, x, err, errsz)
	                  : lint_cert_tbs(&p, &w, x, err, errsz);
}

/* ---- the CA/Browser Forum Baseline Requirements for CA certificates ---- */

struct br_ctx {
	const struct ceremony *c;
	int used[CER_MAX_BR_EXCEPTIONS];
	cer_br_note_fn note;
	void *note_arg;
};

static int br_except(void *arg, const struct lint_br_rule *rule, const char *finding)
{
	struct br_ctx *b = arg;

	for (size_t i = 0; i < b->c->n_br_exceptions; i++)
		if (!strcmp(b->c->br_exceptions[i].rule, rule->name)) {
			b->used[i] = 1;
			if (b->note)
				b->note(b->note_arg, rule->name, rule->section, rule->level,
				        finding, b->c->br_exceptions[i].reason);
			return 1;
		}
	return 0;
}

int cer_lint_br(const struct ceremony *c, X509 *x, cer_br_note_fn note, void *note_arg, char *err,
                size_t errsz)
{
	struct br_ctx b = {.c = c, .note = note, .note_arg = note_arg};
	enum lint_br_kind kind = c->type == CER_ROOT ? LINT_BR_ROOT : LINT_BR_SUBORDINATE;
	char why[CER_ERR_MAX / 2];

	if (c->type != CER_ROOT && c->type != CER_INTERMEDIATE && c->type != CER_CROSS_SIGN)
		return 0;
	if (lint_br_ca(x, kind, br_except, &b, why, sizeof(why)) != 0) {
		const char *sp = strchr(why, ' ');
		return cer_fail_at(err, errsz, c, c->cert.line ? c->cert.line : 1, "certificate",
		                   "breaks the CA/Browser Forum Baseline Requirements for a %s CA "
		                   "certificate: %s. Fix the file, or for a private PKI add "
		                   "br_exceptions: [{rule: %.*s, reason: ...}]",
		                   kind == LINT_BR_ROOT ? "root" : "subordinate", why,
		                   sp ? (int)(sp - why) : (int)strlen(why), why);
	}
	for (size_t i = 0; i < c->n_br_exceptions; i++)
		if (!b.used[i])
			return cer_fail_at(
			    err, errsz, c, c->br_exceptions[i].line, "br_exceptions",
			    "the certificate keeps rule %s: remove the exception, so "
			    "the transcript claims no exception that was not taken",
			    c->br_exceptions[i].rule);
	return 0;
}

int cer_lint_crl(const struct cer_lint *l, X509_CRL *crl, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	struct lint_crl_profile p = {
	    .this_update = c->crl.this_update,
	    .next_update = c->crl.next_update,
	    .number = c->crl.number,
	    .n_revoked = (long)c->crl.n_revoked,
	    .hash_nid = hash_nid(c->sig.hash),
	    .rsa_pss = c->sig.padding == CER_PAD_PSS,
	    .words = words,
	};
	struct lint_parties w = parties_of(l);

	return l->signed_ ? lint_crl_signed(&p, &w, crl, err, errsz)
	                  : lint_crl_tbs(&p, &w, crl, err, errsz);
}

int cer_verify_cert_signature(X509 *x, EVP_PKEY *pub, char *err, size_t errsz)
{
	return lint_verify_cert_signature(x, pub, err, errsz);
}

int cer_verify_crl_signature(X509_CRL *crl, EVP_PKEY *pub, char *err, size_t errsz)
{
	return lint_verify_crl_signature(crl, pub, err, errsz);
}

int cer_lint_path(X509 *x, X509 *issuer, time_t t, char *err, size_t errsz)
{
	return lint_path(x, issuer, t, err, errsz);
}

/* ---- the issuer ---- */

int cer_lint_issuer(const struct ceremony *c, X509 *issuer, cer_warn_fn warnf, void *warn_arg,
                    char *err, size_t errsz)
{
	uint32_t flags = X509_get_extension_flags(issuer);
	uint32_t ku = X509_get_key_usage(issuer);
	long pathlen = X509_get_pathlen(issuer);
	const char *f = "issuer.certificate";
	int line = c->issuer.certificate.line;
	time_t now = c->now;

	if (flags & EXFLAG_INVALID)
		return cer_fail_at(err, errsz, c, line, f,
		                   "%s: OpenSSL finds an extension of it invalid",
		                   c->issuer.certificate.resolved);
	if (!(flags & EXFLAG_CA))
		return cer_fail_at(err, errsz, c, line, f, "%s is not a CA certificate",
		                   c->issuer.certificate.resolved);
	if (c->type == CER_CRL ? !(ku & KU_CRL_SIGN) : !(ku & KU_KEY_CERT_SIGN))
		return cer_fail_at(err, errsz, c, line, f, "%s's key usage does not allow %s",
		                   c->issuer.certificate.resolved,
		                   c->type == CER_CRL ? "cRLSign" : "keyCertSign");
	if (!X509_get0_subject_key_id(issuer))
		return cer_fail_at(err, errsz, c, line, f,
		                   "%s has no subjectKeyIdentifier, so the authorityKeyIdentifier "
		                   "cannot name it",
		                   c->issuer.certificate.resolved);
	if (X509_cmp_time(X509_get0_notAfter(issuer), &now) <= 0)
		return cer_fail_at(err, errsz, c, line, f, "%s has expired",
		                   c->issuer.certificate.resolved);
	if (X509_cmp_time(X509_get0_notBefore(issuer), &now) > 0 && warnf)
		warnf(warn_arg, "the issuer certificate is not valid yet");
	if (c->sig.padding != CER_PAD_DEFAULT && !EVP_PKEY_is_a(X509_get0_pubkey(issuer), "RSA"))
		return cer_fail_at(err, errsz, c, c->sig.line_padding, "signature.padding",
		                   "padding applies to RSA keys only; the issuer's key is not RSA");
	if (c->type == CER_INTERMEDIATE || c->type == CER_CROSS_SIGN) {
		if (pathlen == 0)
			return cer_fail_at(err, errsz, c, line, f,
			                   "%s has path length 0: it may not sign CA certificates",
			                   c->issuer.certificate.resolved);
		if (pathlen > 0 && (!c->cert.has_path_length || c->cert.path_length >= pathlen))
			return cer_fail_at(err, errsz, c,
			                   c->cert.has_path_length ? c->cert.line_path_length
			                                           : c->cert.line,
			                   "certificate.path_length",
			                   "the issuer allows %ld more CA level(s) below it: set "
			                   "path_length to at most %ld",
			                   pathlen - 1, pathlen - 1);
	}
	if (c->type == CER_INTERMEDIATE || c->type == CER_OCSP_SIGNER) {
		time_t nb = c->cert.not_before, na = c->cert.not_after;
		if (X509_cmp_time(X509_get0_notBefore(issuer), &nb) > 0)
			return cer_fail_at(
			    err, errsz, c, c->cert.line_not_before, "certificate.not_before",
			    "is before the issuer's notBefore: a certificate must lie "
			    "inside its issuer's validity");
		if (X509_cmp_time(X509_get0_notAfter(issuer), &na) < 0)
			return cer_fail_at(err, errsz, c, c->cert.line_not_after,
			                   "certificate.not_after",
			                   "is after the issuer's notAfter: a certificate must lie "
			                   "inside its issuer's validity");
	}
	if (c->type == CER_CRL) {
		time_t tu = c->crl.this_update, nu = c->crl.next_update;
		if (X509_cmp_time(X509_get0_notBefore(issuer), &tu) > 0)
			return cer_fail_at(err, errsz, c, c->crl.line_this_update,
			                   "crl.this_update", "is before the issuer's notBefore");
		if (X509_cmp_time(X509_get0_notAfter(issuer), &nu) < 0 && warnf)
			warnf(warn_arg, "crl.next_update is after the issuer certificate expires");
	}
	return 0;
}
