/* Fuzz what hsmca-crld's HTTP server parses itself (libevent parses the request): the
 * If-Modified-Since date and the requested file name. A date that parses must print back as
 * the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crld.h"
#include "httptext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[256], back[64];
	int64_t t;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	crld_file_name_ok(s);
	if (httptext_date_parse(s, &t) == 0) {
		httptext_date(t, back, sizeof(back));
		/* the weekday is not checked against the date, nor day-of-month overflow */
		if (strlen(back) != 29)
			abort();
	}
	return 0;
}
