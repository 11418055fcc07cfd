/* Fuzz the bodies of hsmca-cad's approval API (cad_approvals_parse.c): the first byte picks
 * which parser (approve, reject, request, or an id of the path), the rest is the body. What
 * a parser accepts must hold the bounds the database and the handlers rely on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cad_approvals.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 1;
	size_t len = size ? size - 1 : 0;
	char err[256];

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
	case 1: {
		struct cad_approval_vote_body v;
		int reject = data[0] % 4 == 1;
		if (cad_approval_parse_vote(body, len, reject, &v, err, sizeof(err)) == 0) {
			check_text(v.reason, DB_APPROVAL_REASON_MAX);
			if (reject && !v.reason[0])
				abort(); /* a rejection always says why */
		}
		break;
	}
	case 2: {
		struct cad_approval_create_body b;
		if (cad_approval_parse_create(body, len, &b, err, sizeof(err)) == 0) {
			const struct cad_approval_kind *k = cad_approval_kind_find(b.kind);
			char *p = json_dumps(b.parameters, JSON_COMPACT);
			if (!k || !k->requesters || !b.target[0] || !b.reason[0] || !p ||
			    strlen(p) > DB_APPROVAL_PARAMETERS_MAX / 2 || strstr(p, "\\u0000"))
				abort();
			check_text(b.target, DB_APPROVAL_TARGET_MAX);
			check_text(b.reason, DB_APPROVAL_REASON_MAX);
			free(p);
			cad_approval_create_body_clear(&b);
		}
		break;
	}
	default: {
		char id[32];
		int64_t v;
		if (len >= sizeof(id))
			break;
		memcpy(id, body, len);
		id[len] = '\0';
		if (cad_approval_parse_id(id, &v) == 0 && v <= 0)
			abort();
		break;
	}
	}
	return 0;
}
