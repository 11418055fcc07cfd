/* Fuzz the quorum share file parser and the checks keyd makes before it combines shares. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quorum.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The quorum of the seed corpus (tests/fuzz/corpus/quorum_share/), so seeds get past the
	 * id check into the signature. */
	static const struct quorum_ref ref = {
	    .id = {0},
	    .vk = {0},
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
	return 0;
}
