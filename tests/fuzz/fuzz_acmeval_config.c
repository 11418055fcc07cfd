/* Fuzz hsmca-acmevald's configuration parser (YAML through libyaml, then listen, allow-ranges,
 * hosts, ports, timeouts and resolver). */
#include <stdint.h>
#include <stdlib.h>

#include "acmevald.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct acmeval_config cfg;
	char err[512] = "";

	if (acmeval_config_load_mem("fuzz.yaml", data, size, &cfg, err, sizeof(err)) != 0 &&
	    !err[0])
		abort(); /* every refusal says why */
	return 0;
}
