/* Fuzz the quorum share file parser and the checks keyd makes before it combines shares. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quorum.h"
#include "quorum_box.h"
#include "quorum_cms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The quorum of the seed corpus (tests/fuzz/corpus/quorum_share/: shares of the test PIN
	 * "1234" made by hsmca keyd quorum init), so that inputs get past the id check into the
	 * signature and the pool. */
	static const struct quorum_ref ref = {
	    .id = {0xd1, 0x96, 0x3f, 0x72, 0x34, 0xf6, 0xe8, 0xdb, 0x02, 0xa9, 0xe9, 0x98, 0x6b,
	           0xe7, 0x2a, 0x12},
	    .vk = {0x84, 0x1d, 0x20, 0x55, 0xb0, 0x99, 0xcb, 0x56, 0xfb, 0xcb, 0xc5,
	           0xc5, 0x8d, 0x9d, 0xa0, 0x83, 0x0f, 0xfc, 0x7b, 0x1b, 0x17, 0xb6,
	           0xe2, 0xc5, 0x45, 0x31, 0x3e, 0xa5, 0x07, 0xcf, 0xd7, 0xac},
	    .threshold = 2,
	    .total = 3,
	};
	struct quorum_pool pool = {0};
	struct qshare s;
	char err[256], out[QUORUM_FILE_MAX];
	int n;

	err[0] = 0;
	if (quorum_share_parse((const char *)data, size, &s, err, sizeof(err)) == 0) {
		/* What parses formats back to the same bytes: one spelling per share. */
		n = quorum_share_format(&s, 1, out, sizeof(out));
		if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
			abort();
	} else if (!err[0]) {
		abort(); /* every refusal says why */
	}
	err[0] = 0;
	if (quorum_accept(&ref, &pool, (const char *)data, size, err, sizeof(err)) != 0 && !err[0])
		abort();
	quorum_pool_wipe(&pool);
	/* A share under a passphrase, read as hsmca keyd unseal reads it (before scrypt). */
	{
		static struct qbox b;
		err[0] = 0;
		if (quorum_box_parse((const char *)data, size, &b, err, sizeof(err)) == 0) {
			if (b.ctlen == 0 || b.ctlen > QUORUM_FILE_MAX || b.aadlen >= size)
				abort();
		} else if (!err[0]) {
			abort();
		}
	}
	/* A share under a custodian's public key (CMS), read as unseal reads it before any key. */
	err[0] = 0;
	if (quorum_cms_check((const char *)data, size, err, sizeof(err)) != 0 && !err[0])
		abort();
	return 0;
}
