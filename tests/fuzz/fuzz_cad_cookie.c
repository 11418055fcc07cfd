/* Fuzz the Cookie header as hsmca-cad reads it for the console's session (cad_cookie_get), and
 * the session look-up of whatever value it yields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cad_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cad_sessions ss;
	static int ready;
	char v[CAD_SESSION_TEXT_MAX], *h = malloc(size + 1);
	struct cad_session s;

	if (!h)
		return 0;
	if (!ready) {
		uint8_t cred[32] = {0};
		char c[CAD_SESSION_TEXT_MAX], x[CAD_SESSION_TEXT_MAX];
		if (cad_sessions_init(&ss, 4, 60, 600) != 0 ||
		    cad_session_new(&ss, 0, CAD_SESSION_VIA_TOKEN, cred, "fuzz", c, x) != 0)
			abort();
		ready = 1;
	}
	/* A header is a C string: cut at the first NUL as evhttp would. */
	memcpy(h, data, size);
	h[size] = '\0';
	if (cad_cookie_get(h, CAD_SESSION_COOKIE, v, sizeof(v)) == 0) {
		if (strlen(v) == 0 || strlen(v) >= sizeof(v))
			abort();
		if (cad_session_find(&ss, v, 1, &s) == CAD_SESSION_FOUND &&
		    strcmp(s.principal, "fuzz"))
			abort();
	}
	free(h);
	return 0;
}
