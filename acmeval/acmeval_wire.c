/* The validator's frames (acmeval_wire.h) and the key-authorization digests. */
#include "acmeval_wire.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

const char *acmeval_type_name(enum acmeval_type t)
{
	switch (t) {
	case ACMEVAL_HTTP01:
		return "http-01";
	case ACMEVAL_DNS01:
		return "dns-01";
	case ACMEVAL_TLSALPN01:
		return "tls-alpn-01";
	}
	return "unknown";
}

static int b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* A lower-case DNS name of letters, digits and hyphens, labels of 1..63, no trailing dot. */
static int dns_name_ok(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > ACMEVAL_IDENT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

static int ip_ok(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The checks shared by both ends, on NUL-terminated fields of known lengths. */
static int check_fields(int type, const char *idtype, const char *ident, size_t identlen,
                        const char *token, size_t toklen, const char *ka, size_t kalen, int *is_ip,
                        char *err, size_t errlen)
{
	if (type != ACMEVAL_HTTP01 && type != ACMEVAL_DNS01 && type != ACMEVAL_TLSALPN01) {
		snprintf(err, errlen, "type: %d is not http-01 (1), dns-01 (2) or tls-alpn-01 (3)",
		         type);
		return -1;
	}
	if (strcmp(idtype, "dns") == 0)
		*is_ip = 0;
	else if (strcmp(idtype, "ip") == 0)
		*is_ip = 1;
	else {
		snprintf(err, errlen, "identifier_type: must be \"dns\" or \"ip\"");
		return -1;
	}
	if (*is_ip ? (identlen > 45 || !ip_ok(ident)) : !dns_name_ok(ident, identlen)) {
		snprintf(err, errlen,
		         *is_ip
		             ? "identifier: not an IPv4 or IPv6 address"
		             : "identifier: not a lower-case DNS name (letters, digits, hyphens; "
		               "at most 253 bytes, labels of 1..63)");
		return -1;
	}
	if (*is_ip && type == ACMEVAL_DNS01) {
		snprintf(err, errlen, "type: dns-01 cannot validate an ip identifier (RFC 8738)");
		return -1;
	}
	if (toklen == 0 || toklen > ACMEVAL_TOKEN_MAX) {
		snprintf(err, errlen, "token: 1..%d characters", ACMEVAL_TOKEN_MAX);
		return -1;
	}
	for (size_t i = 0; i < toklen; i++)
		if (!b64url_char((unsigned char)token[i])) {
			snprintf(err, errlen, "token: not base64url");
			return -1;
		}
	if (kalen > ACMEVAL_KEYAUTH_MAX || kalen < toklen + 2 || memcmp(ka, token, toklen) != 0 ||
	    ka[toklen] != '.') {
		snprintf(err, errlen,
		         "key_authorization: must be the token, \".\" and the account key's "
		         "thumbprint (at most %d characters)",
		         ACMEVAL_KEYAUTH_MAX);
		return -1;
	}
	for (size_t i = toklen + 1; i < kalen; i++)
		if (!b64url_char((unsigned char)ka[i])) {
			snprintf(err, errlen, "key_authorization: the thumbprint is not base64url");
			return -1;
		}
	return 0;
}

int acmeval_req_check(const struct acmeval_request *r, char *err, size_t errlen)
{
	int is_ip;

	if (!r->identifier_type || !r->identifier || !r->token || !r->key_authorization) {
		snprintf(err, errlen, "request: a field is missing");
		return -1;
	}
	return check_fields((int)r->type, r->identifier_type, r->identifier, strlen(r->identifier),
	                    r->token, strlen(r->token), r->key_authorization,
	                    strlen(r->key_authorization), &is_ip, err, errlen);
}

void acmeval_frame_put_header(uint8_t hdr[ACMEVAL_FRAME_HDR], const char *magic, size_t len)
{
	memcpy(hdr, magic, 4);
	hdr[4] = (uint8_t)(len >> 24);
	hdr[5] = (uint8_t)(len >> 16);
	hdr[6] = (uint8_t)(len >> 8);
	hdr[7] = (uint8_t)len;
}

int acmeval_frame_header(const uint8_t hdr[ACMEVAL_FRAME_HDR], const char *magic, size_t max,
                         size_t *len, char *err, size_t errlen)
{
	size_t n = ((size_t)hdr[4] << 24) | ((size_t)hdr[5] << 16) | ((size_t)hdr[6] << 8) | hdr[7];

	if (memcmp(hdr, magic, 4) != 0) {
		snprintf(err, errlen, "frame: not a %s frame", magic);
		return -1;
	}
	if (n > max) {
		snprintf(err, errlen, "frame: payload of %zu bytes exceeds %zu", n, max);
		return -1;
	}
	*len = n;
	return 0;
}

static int put_str(uint8_t *buf, size_t cap, size_t *pos, const char *s, int wide)
{
	size_t n = strlen(s), hl = wide ? 2 : 1;

	if (n > (wide ? 0xffffu : 0xffu) || *pos + hl + n > cap)
		return -1;
	if (wide)
		buf[(*pos)++] = (uint8_t)(n >> 8);
	buf[(*pos)++] = (uint8_t)n;
	memcpy(buf + *pos, s, n);
	*pos += n;
	return 0;
}

int acmeval_req_encode(const struct acmeval_request *r, uint8_t *buf, size_t cap, char *err,
                       size_t errlen)
{
	size_t pos = ACMEVAL_FRAME_HDR;

	if (acmeval_req_check(r, err, errlen))
		return -1;
	if (cap < ACMEVAL_FRAME_HDR + 1) {
		snprintf(err, errlen, "request: buffer too small");
		return -1;
	}
	buf[pos++] = (uint8_t)r->type;
	if (put_str(buf, cap, &pos, r->identifier_type, 0) ||
	    put_str(buf, cap, &pos, r->identifier, 1) || put_str(buf, cap, &pos, r->token, 1) ||
	    put_str(buf, cap, &pos, r->key_authorization, 1) ||
	    pos - ACMEVAL_FRAME_HDR > ACMEVAL_FRAME_MAX) {
		snprintf(err, errlen, "request: larger than a frame");
		return -1;
	}
	acmeval_frame_put_header(buf, ACMEVAL_MAGIC_REQUEST, pos - ACMEVAL_FRAME_HDR);
	return (int)pos;
}

/* A length-prefixed string into out (outsz including the NUL); no NUL bytes inside. */
static int get_str(const uint8_t *p, size_t len, size_t *pos, int wide, char *out, size_t outsz,
                   size_t *n_out)
{
	size_t n, hl = wide ? 2 : 1;

	if (*pos + hl > len)
		return -1;
	n = wide ? ((size_t)p[*pos] << 8) | p[*pos + 1] : p[*pos];
	*pos += hl;
	if (n >= outsz || *pos + n > len || memchr(p + *pos, 0, n))
		return -1;
	memcpy(out, p + *pos, n);
	out[n] = 0;
	*pos += n;
	*n_out = n;
	return 0;
}

int acmeval_req_decode(const uint8_t *p, size_t len, struct acmeval_req *out, char *err,
                       size_t errlen)
{
	char idtype[8];
	size_t pos = 0, n, identlen, toklen, kalen;
	int type;

	memset(out, 0, sizeof(*out));
	if (len < 1) {
		snprintf(err, errlen, "request: empty");
		return -1;
	}
	type = p[pos++];
	if (get_str(p, len, &pos, 0, idtype, sizeof(idtype), &n)) {
		snprintf(err, errlen, "request: identifier_type is truncated or too long");
		return -1;
	}
	if (get_str(p, len, &pos, 1, out->identifier, sizeof(out->identifier), &identlen)) {
		snprintf(err, errlen, "request: identifier is truncated or longer than %d bytes",
		         ACMEVAL_IDENT_MAX);
		return -1;
	}
	if (get_str(p, len, &pos, 1, out->token, sizeof(out->token), &toklen)) {
		snprintf(err, errlen, "request: token is truncated or longer than %d bytes",
		         ACMEVAL_TOKEN_MAX);
		return -1;
	}
	if (get_str(p, len, &pos, 1, out->key_authorization, sizeof(out->key_authorization),
	            &kalen)) {
		snprintf(err, errlen,
		         "request: key_authorization is truncated or longer than %d bytes",
		         ACMEVAL_KEYAUTH_MAX);
		return -1;
	}
	if (pos != len) {
		snprintf(err, errlen, "request: %zu bytes after the last field", len - pos);
		return -1;
	}
	if (check_fields(type, idtype, out->identifier, identlen, out->token, toklen,
	                 out->key_authorization, kalen, &out->is_ip, err, errlen))
		return -1;
	out->type = (enum acmeval_type)type;
	return 0;
}

int acmeval_ans_encode(const struct acmeval_result *r, uint8_t *buf, size_t cap)
{
	size_t pos = ACMEVAL_FRAME_HDR;
	char pt[sizeof(r->problem_type)], detail[sizeof(r->detail)];

	/* Copies bounded by the answer's own arrays, whatever the caller left in them. */
	snprintf(pt, sizeof(pt), "%s", r->valid ? "" : r->problem_type);
	snprintf(detail, sizeof(detail), "%s", r->valid ? "" : r->detail);
	if (cap < ACMEVAL_FRAME_HDR + 1)
		return -1;
	buf[pos++] = r->valid ? 1 : 0;
	if (put_str(buf, cap, &pos, pt, 0) || put_str(buf, cap, &pos, detail, 1))
		return -1;
	acmeval_frame_put_header(buf, ACMEVAL_MAGIC_ANSWER, pos - ACMEVAL_FRAME_HDR);
	return (int)pos;
}

int acmeval_ans_decode(const uint8_t *p, size_t len, struct acmeval_result *out, char *err,
                       size_t errlen)
{
	size_t pos = 0, n;

	memset(out, 0, sizeof(*out));
	if (len < 1 || p[0] > 1) {
		snprintf(err, errlen, "answer: the verdict is missing or not 0/1");
		return -1;
	}
	out->valid = p[pos++];
	if (get_str(p, len, &pos, 0, out->problem_type, sizeof(out->problem_type), &n) ||
	    get_str(p, len, &pos, 1, out->detail, sizeof(out->detail), &n) || pos != len) {
		memset(out, 0, sizeof(*out));
		snprintf(err, errlen, "answer: malformed problem type or detail");
		return -1;
	}
	if (!out->valid && !out->problem_type[0]) {
		snprintf(err, errlen, "answer: invalid without a problem type");
		return -1;
	}
	return 0;
}

void acmeval_keyauth_digest(const char *key_authorization, unsigned char out[32])
{
	SHA256((const unsigned char *)key_authorization, strlen(key_authorization), out);
}

void acmeval_keyauth_digest_b64(const char *key_authorization, char out[44])
{
	unsigned char d[32], b[48];
	int n;

	acmeval_keyauth_digest(key_authorization, d);
	n = EVP_EncodeBlock(b, d, 32); /* 44 characters, one '=' */
	while (n > 0 && b[n - 1] == '=')
		n--;
	for (int i = 0; i < n; i++)
		out[i] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : (char)b[i];
	out[n] = 0;
}
