/*
 * crlreason: the CRLReason codes of RFC 5280 5.3.1 and their names as the API, the CLI and the
 * audit log spell them (the ASN.1 identifiers: "keyCompromise", "cessationOfOperation", ...).
 * Code 7 is unused in the standard and has no name.
 */
#ifndef HSMCA_CRLREASON_H
#define HSMCA_CRLREASON_H

#define CRLREASON_UNSPECIFIED 0
#define CRLREASON_CERTIFICATE_HOLD 6
#define CRLREASON_REMOVE_FROM_CRL 8
#define CRLREASON_MAX 10 /* aACompromise, the highest code */

/* The name of code, or NULL for 7 and anything outside 0..CRLREASON_MAX. */
const char *crlreason_name(int code);
/* The code named name (exact, case-sensitive), or -1. */
int crlreason_code(const char *name);
/* 1 when a revocation may give code as its reason: every named code except certificateHold
 * (a hold is its own operation) and removeFromCRL (only a delta CRL says it, of a release). */
int crlreason_revocable(int code);

#endif
