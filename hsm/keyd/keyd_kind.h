/*
 * keyd_kind: what a SIGN_DATA request asks keyd to sign, read from the first bytes of its
 * DER with the bounded reader of ca-core/lib/der.h. Nothing allocates and nothing is sized
 * by a length in the data; everything read points into the caller's bytes.
 *
 * The kinds are told apart by the tags of the outer SEQUENCE's first elements, which no two
 * of the structures share (docs/keyd-protocol.md): a byte string keyd takes for an OCSP
 * ResponseData can never parse as a TBSCertificate, and so on. Data that is none of them
 * (a TLS handshake's signed content, a damaged structure) is KEYD_KIND_DIGEST.
 */
#ifndef HSMCA_KEYD_KIND_H
#define HSMCA_KEYD_KIND_H

#include <stddef.h>
#include <stdint.h>

#include "keyd_proto.h"

/* The audit checkpoint's OID, 2.25.144300304881077450529039613241388137057.1 (a UUID arc,
 * ITU-T X.667, needs no registration), as the content of its DER OBJECT IDENTIFIER. */
extern const uint8_t keyd_checkpoint_oid[21];

struct keyd_kind_info {
	int kind;        /* enum keyd_kind */
	uint64_t total;  /* the whole structure's length, header included (0 for DIGEST) */
	const char *why; /* DIGEST: why the data is no known structure */
	/* CERTIFICATE, CA_CERTIFICATE, CSR (subject and spki), CRL (issuer): whole DER
	 * elements, tag and length included, pointing into the data. */
	const uint8_t *issuer, *subject, *spki;
	size_t issuer_len, subject_len, spki_len;
};

/* Read the first avail bytes of data to be signed; final says whether they are all of it.
 * Certificates and certificate requests must be whole (final) to be recognised; CRLs, OCSP
 * responses and checkpoints may be a first chunk, which must then hold the fields read
 * (a CRL through its issuer). Always succeeds: the answer is in *ki. */
void keyd_kind_read(const uint8_t *data, size_t avail, int final, struct keyd_kind_info *ki);

#endif
