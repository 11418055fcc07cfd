/* Fuzz the shared DER reader (der.h) on its own: walk every element of the input, descending
 * into constructed ones, and check that each read stays inside the bytes it was given and that
 * a refused read leaves its cursor where it was. Times and integers are read where they may be. */
#include <stdint.h>
#include <stdlib.h>

#include "der.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(struct der_in in, int depth)
{
	const uint8_t *end = in.p + in.len;

	while (in.len && depth < 32) {
		struct der_in c, before = in, t = in;
		uint8_t tag = in.p[0];
		int64_t v;

		if (!der_peek(&in, tag))
			abort();
		if (tag == 0x02)
			der_get_int64(&t, &v);
		else if (tag == 0x17 || tag == 0x18)
			der_get_time(&t, &v);
		if (der_get(&in, tag, &c) != 0) {
			if (in.p != before.p || in.len != before.len)
				abort();
			return;
		}
		if (c.p < before.p || c.p + c.len > end || in.p != c.p + c.len ||
		    in.p + in.len != end)
			abort();
		if (tag & 0x20)
			walk(c, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	walk((struct der_in){data, size}, 0);
	return 0;
}
