/* Fuzz hsmca-ocspd's request parsing as a request reaches it: HTTP/1.1 framing, then the GET
 * path's URL and base64 decoding or the POST body, then the DER OCSPRequest. The input is also
 * parsed as DER directly, so the DER reader gets coverage without the HTTP wrapping. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ocsp_internal.h"
#include "ocsp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_req(const uint8_t *der, size_t len)
{
	struct ocsp_req r;

	if (ocsp_req_parse(der, len, &r) != OCSP_REQ_OK)
		return;
	/* what the parser hands out must lie inside the input */
	if (r.n_certs == 0 || r.n_certs > OCSP_REQ_MAX_CERTS)
		abort();
	for (size_t i = 0; i < r.n_certs; i++) {
		const struct ocsp_certid *c = &r.certs[i];
		if (c->der < der || c->der + c->der_len > der + len ||
		    c->name_hash + c->hash_len > der + len ||
		    c->key_hash + c->hash_len > der + len ||
		    (c->serial && (c->serial_len == 0 || c->serial + c->serial_len > der + len)))
			abort();
	}
	if (r.has_nonce && (r.nonce_len < 1 || r.nonce_len > OCSP_NONCE_MAX ||
	                    r.nonce_ext + r.nonce_ext_len > der + len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ocsp_http_limits lim = {8192, 32, 4096};
	struct ocsp_http_req req;
	uint8_t der[OCSP_REQ_MAX_DER];
	int n;

	check_req(data, size);
	n = ocsp_http_parse((const char *)data, size, &lim, &req);
	if (n < 0 || n == 0)
		return 0;
	if ((size_t)n > size)
		abort();
	if (req.if_none_match) {
		/* the conditional GET's entity-tag list against an answer's ETag */
		static struct ocsp_answer *a;
		uint8_t out[2048];
		if (!a)
			a = ocsp_answer_new((const uint8_t *)"\x30\x03\x0a\x01\x00", 5, 1000, 5000);
		if (a && ocsp_http_not_modified(a, req.if_none_match, req.if_none_match_len, 2000,
		                                1, out, sizeof(out)) > sizeof(out))
			abort();
	}
	if (req.method == OCSP_HTTP_POST) {
		if (req.body + req.body_len > data + size)
			abort();
		check_req(req.body, req.body_len);
	} else if (req.target_len > 1) {
		long len = ocsp_get_decode(req.target + 1, req.target_len - 1, der, sizeof(der));
		if (len > (long)sizeof(der))
			abort();
		if (len > 0)
			check_req(der, (size_t)len);
	}
	return 0;
}
