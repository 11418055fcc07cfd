/*
 * The frames hsmca-cad and hsmca-acmevald exchange over the validator's Unix socket
 * (docs/acmeval.md, "Wire format"). One request and one answer per connection; every field
 * is bounded, and a request is checked into a typed structure (acmeval_req) before anything
 * acts on it.
 *
 *   frame    = magic(4) length(4, big-endian, <= ACMEVAL_FRAME_MAX) payload(length)
 *   request  = "AVQ1": type(1) str8(identifier_type) str16(identifier) str16(token)
 *                      str16(key_authorization)
 *   answer   = "AVA1": valid(1: 0 or 1) str8(problem_type) str16(detail)
 *   metrics  = "AVM1" with an empty payload; answered by "AVT1" whose payload is the
 *              Prometheus text of the validator's counters
 *   str8/16  = a 1- or 2-byte big-endian length, then that many bytes (no NUL)
 */
#ifndef HSMCA_ACMEVAL_WIRE_H
#define HSMCA_ACMEVAL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "acmeval.h"

#define ACMEVAL_FRAME_HDR 8
#define ACMEVAL_FRAME_MAX 2048    /* request and answer payloads */
#define ACMEVAL_METRICS_MAX 16384 /* the metrics text */
#define ACMEVAL_IDENT_MAX 253     /* a DNS name (RFC 1035) or an IP address */
#define ACMEVAL_TOKEN_MAX 128     /* Boulder's are 43 characters */
#define ACMEVAL_KEYAUTH_MAX 256   /* token "." 43-character thumbprint */

#define ACMEVAL_MAGIC_REQUEST "AVQ1"
#define ACMEVAL_MAGIC_ANSWER "AVA1"
#define ACMEVAL_MAGIC_METRICS "AVM1"
#define ACMEVAL_MAGIC_METRICS_TEXT "AVT1"

/* A request as the validator holds it after acmeval_req_decode: every field checked. */
struct acmeval_req {
	enum acmeval_type type;
	int is_ip; /* identifier_type "ip" */
	char identifier[ACMEVAL_IDENT_MAX + 1];
	char token[ACMEVAL_TOKEN_MAX + 1];
	char key_authorization[ACMEVAL_KEYAUTH_MAX + 1];
};

/* The name of a type: "http-01", "dns-01", "tls-alpn-01" (or "unknown"). */
const char *acmeval_type_name(enum acmeval_type t);

/* The checks acmeval_req_decode makes, for the client to refuse what the validator would:
 * 0, or -1 with err naming the field. */
int acmeval_req_check(const struct acmeval_request *r, char *err, size_t errlen);

/* A whole request frame (header included) into buf: its length, or -1 with err. */
int acmeval_req_encode(const struct acmeval_request *r, uint8_t *buf, size_t cap, char *err,
                       size_t errlen);
/* The header of a frame: the magic it carries must be magic; *len its payload length.
 * 0, or -1 with err (wrong magic, too long for max). */
int acmeval_frame_header(const uint8_t hdr[ACMEVAL_FRAME_HDR], const char *magic, size_t max,
                         size_t *len, char *err, size_t errlen);
/* A request payload (after the header) into out: 0, or -1 with err naming the problem. */
int acmeval_req_decode(const uint8_t *p, size_t len, struct acmeval_req *out, char *err,
                       size_t errlen);

/* A whole answer frame: its length, or -1 (cap too small). */
int acmeval_ans_encode(const struct acmeval_result *r, uint8_t *buf, size_t cap);
/* An answer payload: 0, or -1 with err. */
int acmeval_ans_decode(const uint8_t *p, size_t len, struct acmeval_result *out, char *err,
                       size_t errlen);

/* Write 4-byte magic and length into hdr. */
void acmeval_frame_put_header(uint8_t hdr[ACMEVAL_FRAME_HDR], const char *magic, size_t len);

/* base64url(SHA-256(key_authorization)) without padding (43 characters and a NUL): the dns-01
 * TXT value (RFC 8555 §8.4). */
void acmeval_keyauth_digest_b64(const char *key_authorization, char out[44]);
/* SHA-256(key_authorization): the tls-alpn-01 acmeIdentifier value (RFC 8737 §3). */
void acmeval_keyauth_digest(const char *key_authorization, unsigned char out[32]);

#endif
