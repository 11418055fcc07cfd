/*
 * hsmca-acmevald client interface: how hsmca-cad's ACME adapter asks the validation
 * process to check one ACME challenge (RFC 8555 §8.3 http-01, §8.4 dns-01, RFC 8737
 * tls-alpn-01).
 *
 * Challenge validation makes outbound connections to addresses an ACME client names, so
 * it runs in its own small process (no database, no keyd grant, its own seccomp filter)
 * that cad reaches over a Unix socket. This header is the whole contract between the two:
 * cad links the client half (acmeval_validate), the daemon implements the other end.
 */
#ifndef HSMCA_ACMEVAL_H
#define HSMCA_ACMEVAL_H

#include <stddef.h>

enum acmeval_type {
	ACMEVAL_HTTP01 = 1,
	ACMEVAL_DNS01 = 2,
	ACMEVAL_TLSALPN01 = 3,
};

struct acmeval_request {
	enum acmeval_type type;
	/* "dns" or "ip" (RFC 8555 §9.7.7, RFC 8738). */
	const char *identifier_type;
	/* The identifier as the order names it, without a "*." prefix (dns-01 on a wildcard
	 * order validates the base name). Lower case for dns. */
	const char *identifier;
	/* The challenge token (base64url, RFC 8555 §8.1). */
	const char *token;
	/* token "." base64url(SHA-256 JWK thumbprint of the account key) (RFC 8555 §8.1). */
	const char *key_authorization;
};

struct acmeval_result {
	/* 1: the challenge is satisfied; 0: it is not (problem_type and detail say why). */
	int valid;
	/* When valid == 0: the RFC 8555 §6.7 error type without its
	 * "urn:ietf:params:acme:error:" prefix: "connection", "dns", "incorrectResponse",
	 * "unauthorized", "tls", "rejectedIdentifier" or "serverInternal". */
	char problem_type[32];
	/* Human-readable, safe to show the ACME client (no secrets). */
	char detail[256];
};

/*
 * Ask the validator listening on socket_path to validate req, waiting at most timeout_ms.
 * Blocking; call it off the event loop. Returns 0 when the validator answered (out->valid
 * says how), -1 when it could not be asked or did not answer in time (out->detail says why,
 * out->problem_type is "serverInternal").
 */
int acmeval_validate(const char *socket_path, const struct acmeval_request *req, int timeout_ms,
                     struct acmeval_result *out);

#endif
