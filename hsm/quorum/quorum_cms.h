/*
 * A share file encrypted to its custodian's public key (docs/quorum.md, "Shares under a public
 * key"): the share file's text as CMS AuthEnvelopedData (RFC 5083; AES-256-GCM content key),
 * in PEM ("-----BEGIN CMS-----"), to the key of the custodian's certificate (EC: ECDH key
 * agreement; RSA: RSA-OAEP key transport). The custodian opens it with their private key,
 * with `hsmca keyd unseal --key KEY.pem` or with any CMS tool (`openssl cms -decrypt`); keyd
 * only ever sees the share itself, whose own signature still binds it to its custodian and
 * quorum. At most QUORUM_CMS_MAX bytes.
 */
#ifndef HSMCA_QUORUM_CMS_H
#define HSMCA_QUORUM_CMS_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define QUORUM_CMS_MAX 8192

/* 1 if text starts like a PEM CMS (an encrypted share to a public key). */
int quorum_cms_is(const char *text, size_t len);
/* Encrypt a share file's text (1..QUORUM_FILE_MAX bytes) to cert's public key (EC or RSA).
 * The PEM's length in out, or -1 with err. */
int quorum_cms_seal(const char *share, size_t len, X509 *cert, char *out, size_t cap, char *err,
                    size_t errlen);
/* Read text as such a PEM strictly (bounded, one object, nothing after it, AuthEnvelopedData):
 * 0, or -1 with err naming the problem. No key is used. */
int quorum_cms_check(const char *text, size_t len, char *err, size_t errlen);
/* Open it with key: the share file's text in out (cap at least QUORUM_FILE_MAX), its length
 * returned; -1 with err ("... does not parse: ...", or "... cannot be opened with this key:
 * ..."). */
int quorum_cms_open(const char *text, size_t len, EVP_PKEY *key, char *out, size_t cap, char *err,
                    size_t errlen);

#endif
