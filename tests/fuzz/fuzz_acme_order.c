/* Fuzz what an ACME client names in an order: the identifiers of a newOrder payload (JSON),
 * its notBefore/notAfter date-times (RFC 3339), and the CSR of a finalize (DER), matched
 * against an order's identifiers. The first byte picks which; the rest is the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct acme_ident order[] = {
	    {"dns", "www.example.com", 0}, {"dns", "example.com", 1}, {"ip", "127.0.0.1", 0}};
	struct acme_ident ids[ACME_IDENTS_MAX];
	struct acme_problem p;
	json_t *j;
	int n;

	if (size < 1 || size > ACME_BODY_MAX)
		return 0;
	if ((data[0] & 3) == 2) {
		char text[64];
		int64_t t = -1;
		if (size - 1 >= sizeof(text))
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		/* Accepted: years 1970..9999 (with a day of offset either side). */
		if (acme_time_parse(text, &t) == 0 && (t < -86400 || t > 253402387200LL))
			abort();
		return 0;
	}
	if (data[0] & 1) {
		acme_csr_matches(data + 1, size - 1, order, 3, &p);
		return 0;
	}
	j = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
	n = acme_identifiers_parse(j, ids, &p);
	if (n > ACME_IDENTS_MAX || (n < 0 && !p.status))
		abort();
	for (int i = 0; i < n; i++)
		if (strlen(ids[i].value) == 0 || strlen(ids[i].value) > 253)
			abort();
	json_decref(j);
	return 0;
}
