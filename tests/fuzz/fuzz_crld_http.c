/* Fuzz what hsmca-crld's HTTP server parses itself (libevent parses the request): the
 * If-Modified-Since date, the requested file name and the /ca/<name>.der path of an authority's
 * certificate (a name it takes has only [a-z0-9_-]). A date that parses must print back as
 * the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crld.h"
#include "httptext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[256], back[64], name[CRLD_NAME_MAX + 1];
	int64_t t;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	crld_file_name_ok(s);
	if (crld_issuer_path(s, name) &&
	    (!name[0] || strlen(name) > CRLD_NAME_MAX ||
	     strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name)))
		abort();
	if (httptext_date_parse(s, &t) == 0) {
		httptext_date(t, back, sizeof(back));
		/* the weekday is not checked against the date, nor day-of-month overflow */
		if (strlen(back) != 29)
			abort();
	}
	return 0;
}
