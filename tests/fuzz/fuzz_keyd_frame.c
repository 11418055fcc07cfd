/* Fuzz keyd's frame parsing: the length prefix, requests (what keyd parses
 * from clients) and responses (what clients parse from keyd). A request that
 * parses must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[4 + KEYD_FRAME_MAX];
	struct keyd_req req;
	struct keyd_resp resp;
	const char *why;
	uint32_t len;

	if (size >= 4 && keyd_frame_len(data, &len) == 0 && len <= size - 4) {
		if (keyd_req_decode(data + 4, len, &req, &why) == 0) {
			struct keyd_wbuf w = {out, 0, sizeof(out), 0};
			if (keyd_req_encode(&req, &w) != 0 || w.len != len + 4 ||
			    memcmp(out, data, w.len) != 0)
				abort();
		}
	}
	if (size > KEYD_FRAME_MAX)
		return 0;
	if (keyd_resp_decode(data, size, &resp, &why) == 0 && resp.op == KEYD_OP_LIST_KEYS &&
	    resp.status == KEYD_OK) {
		struct keyd_rbuf rb = {resp.keys, resp.keys_len, 0, 0};
		struct keyd_keyinfo ki;
		unsigned n = 0;
		while (keyd_list_next(&rb, &ki) == 1)
			n++;
		if (n != resp.nkeys)
			abort();
	}
	return 0;
}
