/* Fuzz the body of POST /api/v1/certificates/serverkeygen (cad_keygen_parse.c). Whatever the
 * parser accepts must hold the bounds the handler relies on: a known key type, a password of
 * CAD_SKG_PASSWORD_MIN..MAX bytes without NUL, at most the fixed number of subject fields and
 * names, each 1..CAD_SKG_VALUE_MAX bytes without control characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cad_keygen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CAD_SKG_VALUE_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct cad_skg_request q;
	char err[512];

	if (!body)
		return 0;
	if (cad_skg_parse(body, &q, err, sizeof(err)) == 0) {
		size_t pw = strlen(q.password);
		check_value(q.profile);
		if (!q.key_type || !q.algorithm || (!q.curve && q.rsa_bits < 2048))
			abort();
		if (pw < CAD_SKG_PASSWORD_MIN || pw > CAD_SKG_PASSWORD_MAX)
			abort();
		if (q.n_subject > CAD_SKG_MAX_SUBJECT)
			abort();
		for (size_t i = 0; i < q.n_subject; i++)
			check_value(q.subject_value[i]);
		for (int k = 0; k < CA_SAN_KINDS; k++) {
			if (q.n_san[k] > CAD_SKG_MAX_SANS)
				abort();
			for (size_t i = 0; i < q.n_san[k]; i++)
				check_value(q.san[k][i]);
		}
		if (q.validity_days < -1)
			abort();
	} else if (!err[0])
		abort(); /* a refusal always says why */
	json_decref(body);
	return 0;
}
