/* Fuzz what a device sends hsmca-cad over EST: the simpleenroll body (base64 of a DER PKCS#10
 * request, the DER itself, or PEM) and the Authorization header (Basic with the provisioning
 * token as password, or Bearer). The first byte picks which; the rest is the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cad_est.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256], token[CAD_EST_TOKEN_MAX + 1], user[64];

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		/* A header is a C string: cut at the first NUL as evhttp would. */
		char *h = malloc(size);
		if (!h)
			return 0;
		memcpy(h, data + 1, size - 1);
		h[size - 1] = '\0';
		switch (cad_est_parse_auth(h, token, user, sizeof(user), why, sizeof(why))) {
		case CAD_EST_AUTH_BASIC:
		case CAD_EST_AUTH_BEARER:
			if (strlen(token) == 0 || strlen(token) > CAD_EST_TOKEN_MAX)
				abort();
			break;
		default:
			break;
		}
		free(h);
	} else {
		X509_REQ *req = cad_est_parse_csr(data + 1, size - 1, why, sizeof(why));
		X509_REQ_free(req);
	}
	return 0;
}
