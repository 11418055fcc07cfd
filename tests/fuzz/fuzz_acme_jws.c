/* Fuzz what an ACME client sends hsmca-cad: the flattened JWS of a request body (its JSON, the
 * base64url protected header and payload, the JWK in it and the signature), the inner JWS of a
 * keyChange (no nonce), and in the payload the contact list and the External Account Binding.
 * The first byte picks outer or inner; the rest is the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int eab_lookup(void *ctx, const char *kid, struct acme_eab *out)
{
	(void)ctx;
	if (strcmp(kid, "kid-1"))
		return 0;
	memset(out, 0, sizeof(*out));
	strcpy(out->kid, "kid-1");
	memset(out->hmac_key, 0x42, 32);
	out->hmac_key_len = 32;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_jws jws;
	struct acme_problem p;
	struct acme_eab eab;
	const json_t *v;

	if (size < 1)
		return 0;
	if (acme_jws_parse(data + 1, size - 1, data[0] & 1, &jws, &p) == 0) {
		if (!jws.url || !(jws.jwk || jws.kid))
			abort();
		if (jws.key)
			acme_jws_verify(&jws, NULL, &p);
		if (jws.payload && (v = json_object_get(jws.payload, "contact")))
			acme_contacts_check(v, &p);
		if (jws.payload && jws.jwk &&
		    (v = json_object_get(jws.payload, "externalAccountBinding")))
			acme_eab_verify(v, jws.jwk, jws.url, eab_lookup, NULL, &eab, &p);
	} else if (p.status < 400 || p.status > 599 || !p.type[0]) {
		abort();
	}
	acme_jws_clear(&jws);
	return 0;
}
