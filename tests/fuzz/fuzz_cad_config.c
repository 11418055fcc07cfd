/* Fuzz hsmca-cad's configuration parser (YAML through libyaml, then profiles and limits).
 * cad_config_load reads a path, so each input is handed over as a memfd. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct cad_config cfg;
	char path[64], err[512] = "";

	if (fd < 0)
		fd = memfd_create("fuzz-cad-config", 0);
	if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (cad_config_load(path, &cfg, err, sizeof(err)) == 0)
		cad_config_free(&cfg);
	else if (!err[0])
		abort(); /* every refusal says why */
	return 0;
}
