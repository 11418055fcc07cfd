/* Fuzz hsmca-crld's configuration parser (YAML through libyaml, then publish, schedule and
 * authorities). */
#include <stdint.h>
#include <stdlib.h>

#include "crld.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct crld_config cfg;
	char err[512] = "";

	if (crld_config_load_mem("fuzz.yaml", data, size, &cfg, err, sizeof(err)) != 0 && !err[0])
		abort(); /* every refusal says why */
	return 0;
}
