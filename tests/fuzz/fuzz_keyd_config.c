/* Fuzz keyd's configuration parser (YAML through libyaml, then our checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyd_config cfg;
	char err[512];

	if (keyd_config_parse("fuzz.yaml", data, size, &cfg, err, sizeof(err)) == 0)
		keyd_config_free(&cfg);
	else if (!err[0])
		abort(); /* every refusal says why */
	return 0;
}
