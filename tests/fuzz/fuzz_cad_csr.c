/* Fuzz hsmca-cad's judgement of a certificate request: PKCS#10 DER (wrapped in PEM as the API
 * receives it) checked against a profile allowing every SAN type with patterns; the same DER
 * as ACME's finalize hands it over (ca_csr_check_der) must be judged alike. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ca_key_profile kp = {
    .name = "fuzz", .rsa_min_bits = 2048, .rsa_max_bits = 4096, .p256 = 1, .p384 = 1};
static char dns1[] = "*.example.com", dns2[] = "example.com", ip[] = "10.*",
            email[] = "*@example.com", uri[] = "urn:dev:*";
static struct ca_profile profile = {
    .name = "fuzz",
    .key_profile = &kp,
    .max_validity_days = 365,
    .subject_fields = {NID_commonName, NID_organizationName, NID_pkcs9_emailAddress},
    .n_subject_fields = 3,
    .san_patterns = {{dns1, dns2}, {ip}, {email}, {uri}},
    .n_san_patterns = {2, 1, 1, 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
	static const char tail[] = "-----END CERTIFICATE REQUEST-----\n";
	struct ca_csr *c;
	const char *error = NULL, *error_der = NULL;
	char why[512] = "", *pem;
	int rc;
	size_t b64 = 4 * ((size + 2) / 3), off;

	if (size > 16384)
		return 0;
	pem = malloc(sizeof(head) + b64 + b64 / 64 + 2 + sizeof(tail));
	c = calloc(1, sizeof(*c));
	if (!pem || !c)
		abort();
	memcpy(pem, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	/* 48 input bytes per 64-character line, as PEM writers do. */
	for (size_t i = 0; i < size; i += 48) {
		size_t n = size - i < 48 ? size - i : 48;
		off += (size_t)EVP_EncodeBlock((unsigned char *)pem + off, data + i, (int)n);
		pem[off++] = '\n';
	}
	memcpy(pem + off, tail, sizeof(tail));
	rc = ca_csr_check(&profile, pem, c, &error, why, sizeof(why));
	if (rc != 0 && (!error || !why[0]))
		abort(); /* every refusal names the problem */
	if (error == NULL && c->n_sans > CA_SANS_MAX)
		abort();
	ca_csr_free(c);
	memset(c, 0, sizeof(*c));
	if (ca_csr_check_der(&profile, data, size, c, &error_der, why, sizeof(why)) != rc ||
	    (rc != 0 && (!error_der || strcmp(error_der, error) || !why[0])) ||
	    (rc == 0 && error_der))
		abort();
	ca_csr_free(c);
	free(c);
	free(pem);
	return 0;
}
