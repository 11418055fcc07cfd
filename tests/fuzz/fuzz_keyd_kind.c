/* Fuzz keyd's reader of what SIGN_DATA signs (hsm/keyd/keyd_kind.h): the input is read as
 * final data and as a first chunk of more, copied to a buffer of exactly its size so that any
 * read past the end is caught. Whatever is recognised must point inside the data and, when
 * final, be exactly as long as it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_kind.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *d, size_t n, const uint8_t *p, size_t len)
{
	if (p && (p < d || len > n || (size_t)(p - d) > n - len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *d;
	struct keyd_kind_info ki;

	if (size == 0 || size > KEYD_CHUNK_MAX)
		return 0;
	d = malloc(size);
	if (!d)
		return 0;
	memcpy(d, data, size);
	for (int final = 0; final <= 1; final++) {
		keyd_kind_read(d, size, final, &ki);
		if (ki.kind < 0 || ki.kind > KEYD_KIND_MAX_)
			abort();
		if (ki.kind == KEYD_KIND_DIGEST) {
			if (!ki.why || ki.issuer || ki.subject || ki.spki)
				abort();
			continue;
		}
		if (final && ki.total != size)
			abort();
		if (!final && ki.total <= size)
			abort();
		if (!final && (ki.kind == KEYD_KIND_CERTIFICATE ||
		               ki.kind == KEYD_KIND_CA_CERTIFICATE || ki.kind == KEYD_KIND_CSR))
			abort(); /* these come whole */
		inside(d, size, ki.issuer, ki.issuer_len);
		inside(d, size, ki.subject, ki.subject_len);
		inside(d, size, ki.spki, ki.spki_len);
	}
	free(d);
	return 0;
}
