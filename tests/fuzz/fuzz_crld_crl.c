/* Fuzz hsmca-crld's streaming CRL reader (crl_verify_file), which also reads the CRLs that are
 * found published at start-up. Each input is handed over as a memfd. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	key = EVP_EC_gen("P-256");
	return key ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct crl_info info;
	char path[64], why[512] = "";

	if (fd < 0)
		fd = memfd_create("fuzz-crld-crl", 0);
	if (!key || fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* A random key: nothing verifies, but everything before the signature is parsed. */
	if (crl_verify_file(path, key, &info, why, sizeof(why)) != 0 && !why[0])
		abort();
	return 0;
}
