/* Fuzz hsmca-ocspd's configuration parser (YAML through libyaml, then our checks). */
#include <stdint.h>
#include <stdlib.h>

#include "ocspd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ocspd_config cfg;
	char err[512];

	if (ocspd_config_parse("fuzz.yaml", data, size, &cfg, err, sizeof(err)) != 0 && !err[0])
		abort(); /* every refusal says why */
	return 0;
}
