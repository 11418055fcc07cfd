/*
 * The pieces the certificate checks (lint_cert.c) and the CRL checks
 * (lint_crl.c) share, in lint_common.c: findings, times, extension lists,
 * key identifiers, serial numbers and signature algorithms.
 */
#ifndef HSMCA_LINT_INTERNAL_H
#define HSMCA_LINT_INTERNAL_H

#include <openssl/x509v3.h>

#include "lint.h"

/* Formats the finding into err and returns -1, so that "return lint_fail(...)" reads well. */
int lint_fail(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same, the finding named by its rule ("rule: what is wrong"); docs/lint.md lists the
 * rules. */
int lint_finding(char *err, size_t errsz, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The words of a profile, defaults filled in. */
const char *lint_source(const struct lint_words *w);
const char *lint_source_short(const struct lint_words *w);
const char *lint_asker(const struct lint_words *w);

/* UTCTime through 2049, GeneralizedTime from 2050, in UTC; equal to want unless want is 0. */
int lint_check_time(const ASN1_TIME *t, time_t want, const char *what,
                    const struct lint_words *words, char *err, size_t errsz);
int lint_year_of(const ASN1_TIME *t);

/* No extension twice (RFC 5280 4.2); every extension in nids or extra (both 0-terminated,
 * extra may be NULL). */
int lint_ext_duplicates(const STACK_OF(X509_EXTENSION) * exts, const char *what, char *err,
                        size_t errsz);
int lint_ext_allowed(const STACK_OF(X509_EXTENSION) * exts, const int *nids, const int *extra,
                     const char *what, char *err, size_t errsz);

int lint_octets_equal(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b);
/* authorityKeyIdentifier: present, not critical, keyIdentifier only, equal to issuer_ski. */
int lint_check_aki(AUTHORITY_KEYID *aki, int crit, const ASN1_OCTET_STRING *issuer_ski,
                   const char *what, char *err, size_t errsz);

/* Octets of an INTEGER's DER contents. */
int lint_der_int_len(const ASN1_INTEGER *a);
/* Positive, at most 20 octets, at least min_bits significant bits. */
int lint_check_serial(const ASN1_INTEGER *s, int min_bits, char *err, size_t errsz);

/* The inner and outer algorithms agree and are what hash_nid and rsa_pss ask of issuer_pub. */
int lint_check_sig_alg(int hash_nid, int rsa_pss, const struct lint_words *words,
                       const X509_ALGOR *inner, const X509_ALGOR *outer, EVP_PKEY *issuer_pub,
                       const char *what, char *err, size_t errsz);

/* The sig_verifies finding of a certificate's signature; -1. */
int lint_sig_not_verified(char *err, size_t errsz);

#endif
