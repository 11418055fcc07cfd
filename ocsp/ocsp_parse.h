/*
 * hsmca-ocspd's parsers of outside input, free of state so they can be fuzzed alone: the
 * HTTP/1.1 request framing (ocsp_http.c) and the DER OCSPRequest with the GET path's
 * URL-and-base64 wrapping (ocsp_req.c). Both are bounded and never allocate.
 */
#ifndef HSMCA_OCSP_PARSE_H
#define HSMCA_OCSP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* ---- HTTP/1.1 requests (ocsp_http.c) ---- */

enum ocsp_http_method { OCSP_HTTP_GET, OCSP_HTTP_HEAD, OCSP_HTTP_POST };

struct ocsp_http_limits {
	size_t max_head;    /* request line and headers, bytes */
	size_t max_headers; /* header fields */
	size_t max_body;    /* Content-Length */
};

struct ocsp_http_req {
	enum ocsp_http_method method;
	const char *target; /* request-target as sent (points into the buffer) */
	size_t target_len;
	const uint8_t *body; /* POST body (Content-Length bytes) */
	size_t body_len;
	int keep_alive;   /* the connection stays open after the answer */
	int content_type; /* 1: application/ocsp-request, 0: absent, -1: something else */
	int http10;
	const char *if_none_match; /* the If-None-Match value, or NULL */
	size_t if_none_match_len;
};

/* Parse one request at the start of buf[0..len). Returns the number of bytes it spans when
 * it is complete (head and body), 0 when more bytes are needed (and the limits still allow
 * them), or the negative HTTP status to answer with before closing: -400 malformed, -405
 * method, -411 POST without Content-Length, -413 body too large, -431 head too large or
 * too many headers, -501 Transfer-Encoding, -505 version. */
int ocsp_http_parse(const char *buf, size_t len, const struct ocsp_http_limits *lim,
                    struct ocsp_http_req *req);

/* ---- OCSP requests (ocsp_req.c) ---- */

#define OCSP_REQ_MAX_CERTS 16 /* a hard ceiling; the configured bound is at most this */
#define OCSP_NONCE_MAX 32     /* RFC 8954 */
#define OCSP_REQ_MAX_DER 8192

enum ocsp_hash { OCSP_HASH_SHA1, OCSP_HASH_SHA256, OCSP_HASH_SHA384, OCSP_HASH_SHA512 };

struct ocsp_certid {
	enum ocsp_hash hash;
	const uint8_t *name_hash, *key_hash;
	size_t hash_len;       /* both hashes have the hash's length */
	const uint8_t *serial; /* the INTEGER's magnitude, minimal; NULL when not positive */
	size_t serial_len;
	const uint8_t *der; /* the whole CertID, for echoing it in a response */
	size_t der_len;
};

struct ocsp_req {
	size_t n_certs;
	struct ocsp_certid certs[OCSP_REQ_MAX_CERTS];
	int has_nonce;
	const uint8_t *nonce_ext; /* the nonce Extension's extnValue contents, echoed as they are */
	size_t nonce_ext_len;
	size_t nonce_len; /* the nonce's own length (inside its OCTET STRING) */
};

enum ocsp_req_status {
	OCSP_REQ_OK = 0,
	OCSP_REQ_MALFORMED, /* not a DER OCSPRequest, or a nonce outside 1..32 octets */
	OCSP_REQ_TOO_MANY,  /* more CertIDs than OCSP_REQ_MAX_CERTS */
	OCSP_REQ_UNSUPPORTED_HASH,
};

/* Parse DER; the struct points into der, which must outlive it. A signed request is accepted
 * and its signature ignored (RFC 5019 responders need not check it). Unknown non-critical
 * extensions are ignored; a critical one the responder does not know is malformed. */
enum ocsp_req_status ocsp_req_parse(const uint8_t *der, size_t len, struct ocsp_req *req);

/* The GET form: the request-target after the path prefix, URL-decoded then base64-decoded
 * (standard alphabet, padding optional, '-' '_' accepted too) into out (cap bytes).
 * Returns the DER length or -1. */
long ocsp_get_decode(const char *path, size_t len, uint8_t *out, size_t cap);

#endif
