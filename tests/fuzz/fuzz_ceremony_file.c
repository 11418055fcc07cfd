/* Fuzz the ceremony file parser (YAML through libyaml, then every field's checks). Parse
 * only: no file the ceremony names is opened and keyd is never asked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ceremony.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ceremony *c = NULL;
	char err[CER_ERR_MAX];
	/* A fixed "now" keeps runs reproducible. */
	const time_t now = 1795000000;

	if (ceremony_parse_mem("fuzz/ceremony.yaml", data, size, now, &c, err, sizeof(err)) == 0) {
		if (!c || c->type < CER_ROOT || c->type > CER_CRL)
			abort();
		ceremony_free(c);
	} else if (!err[0] || c) {
		abort(); /* every refusal says why, and leaves nothing allocated */
	}
	return 0;
}
