/* Error messages of the ceremony: the first failure, with what, which and why. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "ceremony_internal.h"

int cer_fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

int cer_fail_at(char *err, size_t errsz, const struct ceremony *c, int line, const char *field,
                const char *fmt, ...)
{
	char msg[CER_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errsz, "%s:%d: %s: %s", c->name, line, field, msg);
	return -1;
}

void cer_append_ossl(char *err, size_t errsz)
{
	unsigned long e;
	const char *data;
	int flags, n = 0;
	size_t len;

	/* The first two queued errors say what failed; the rest is drained. */
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		char buf[256];
		int has = (flags & ERR_TXT_STRING) && data && *data;

		if (n++ >= 2)
			continue;
		ERR_error_string_n(e, buf, sizeof(buf));
		len = strlen(err);
		snprintf(err + len, errsz - len, "%s%s%s%s", n == 1 ? " (OpenSSL: " : "; ", buf,
		         has ? ": " : "", has ? data : "");
	}
	if (n) {
		len = strlen(err);
		snprintf(err + len, errsz - len, ")");
	}
}

void cer_hex(const uint8_t *p, size_t n, int colons, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz)
		out[0] = 0;
	for (size_t i = 0; i < n && o + 4 < outsz; i++)
		o += (size_t)snprintf(out + o, outsz - o, "%s%02x", colons && i ? ":" : "", p[i]);
}
