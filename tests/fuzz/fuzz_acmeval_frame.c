/* Fuzz hsmca-acmevald's frames (acmeval_wire.h): the input is a whole frame as it arrives on
 * the socket. Its header is read as a request and as an answer; a payload that decodes is
 * encoded again and must decode to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acmeval_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[ACMEVAL_FRAME_HDR + ACMEVAL_FRAME_MAX];
	struct acmeval_req q, q2;
	struct acmeval_result a, a2;
	char err[256] = "";
	size_t len;

	if (size < ACMEVAL_FRAME_HDR)
		return 0;
	if (acmeval_frame_header(data, ACMEVAL_MAGIC_REQUEST, ACMEVAL_FRAME_MAX, &len, err,
	                         sizeof(err)) == 0 &&
	    len <= size - ACMEVAL_FRAME_HDR) {
		if (acmeval_req_decode(data + ACMEVAL_FRAME_HDR, len, &q, err, sizeof(err)) == 0) {
			const char *idtype = q.is_ip ? "ip" : "dns";
			struct acmeval_request r = {q.type, idtype, q.identifier, q.token,
			                            q.key_authorization};
			int n = acmeval_req_encode(&r, buf, sizeof(buf), err, sizeof(err));
			if (n < 0 ||
			    acmeval_req_decode(buf + ACMEVAL_FRAME_HDR,
			                       (size_t)n - ACMEVAL_FRAME_HDR, &q2, err,
			                       sizeof(err)) != 0 ||
			    memcmp(&q, &q2, sizeof(q)) != 0)
				abort(); /* what was accepted must survive a round trip */
		} else if (!err[0])
			abort(); /* every refusal says why */
	}
	if (acmeval_frame_header(data, ACMEVAL_MAGIC_ANSWER, ACMEVAL_FRAME_MAX, &len, err,
	                         sizeof(err)) == 0 &&
	    len <= size - ACMEVAL_FRAME_HDR &&
	    acmeval_ans_decode(data + ACMEVAL_FRAME_HDR, len, &a, err, sizeof(err)) == 0) {
		int n = acmeval_ans_encode(&a, buf, sizeof(buf));
		if (n < 0 ||
		    acmeval_ans_decode(buf + ACMEVAL_FRAME_HDR, (size_t)n - ACMEVAL_FRAME_HDR, &a2,
		                       err, sizeof(err)) != 0 ||
		    a.valid != a2.valid)
			abort();
	}
	return 0;
}
