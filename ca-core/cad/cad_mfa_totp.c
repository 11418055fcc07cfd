/* TOTP codes through liboath (RFC 6238 with HMAC-SHA-1, 30 s steps, six digits), the otpauth
 * URI, its QR code as SVG through libqrencode, recovery codes and their PBKDF2 hashes, and the
 * step-up policy's patterns (cad_mfa.h). No HTTP, no database, no keyd. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <qrencode.h>

#include "cad_mfa.h"

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_ready;

static void oath_start(void)
{
	oath_ready = oath_init() == OATH_OK;
}

static int digits_only(const char *s, size_t want)
{
	size_t i;

	for (i = 0; i < want; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return s[i] == '\0';
}

int cad_totp_check(const uint8_t *secret, size_t len, const char *code, time_t now, int window,
                   int64_t *step)
{
	uint64_t counter = 0;
	int pos = 0, rc;

	*step = -1;
	if (!code || !digits_only(code, CAD_TOTP_DIGITS) || window < 0 || now < 0)
		return -1;
	pthread_once(&oath_once, oath_start);
	if (!oath_ready)
		return -1;
	/* liboath compares every code of the window (now - window .. now + window steps) and
	 * answers the position and the time step of the one that matched. */
	rc = oath_totp_validate4((const char *)secret, len, now, CAD_TOTP_STEP, 0, (size_t)window,
	                         &pos, &counter, 0, code);
	if (rc < 0)
		return -1;
	*step = (int64_t)counter;
	return 0;
}

int cad_totp_code(const uint8_t *secret, size_t len, time_t now, char out[CAD_TOTP_DIGITS + 1])
{
	pthread_once(&oath_once, oath_start);
	if (!oath_ready)
		return -1;
	return oath_totp_generate((const char *)secret, len, now, CAD_TOTP_STEP, 0, CAD_TOTP_DIGITS,
	                          out) == OATH_OK
	           ? 0
	           : -1;
}

int cad_totp_base32(const uint8_t *secret, size_t len, char *out, size_t n)
{
	char *b = NULL;
	size_t blen = 0;

	pthread_once(&oath_once, oath_start);
	if (!oath_ready || oath_base32_encode((const char *)secret, len, &b, &blen) != OATH_OK)
		return -1;
	while (blen > 0 && b[blen - 1] == '=')
		blen--;
	if (blen + 1 > n) {
		OPENSSL_cleanse(b, blen);
		free(b);
		return -1;
	}
	memcpy(out, b, blen);
	out[blen] = '\0';
	OPENSSL_cleanse(b, blen);
	free(b);
	return 0;
}

/* RFC 3986 unreserved characters stay; every other byte is %XX. */
static int pct(const char *s, char *out, size_t n, size_t *off)
{
	static const char hexd[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (*off + (plain ? 1 : 3) >= n)
			return -1;
		if (plain) {
			out[(*off)++] = (char)c;
		} else {
			out[(*off)++] = '%';
			out[(*off)++] = hexd[c >> 4];
			out[(*off)++] = hexd[c & 15];
		}
	}
	out[*off] = '\0';
	return 0;
}

static int put(const char *s, char *out, size_t n, size_t *off)
{
	size_t l = strlen(s);

	if (*off + l >= n)
		return -1;
	memcpy(out + *off, s, l + 1);
	*off += l;
	return 0;
}

int cad_totp_uri(const char *issuer, const char *name, const char *b32, char *out, size_t n)
{
	size_t off = 0;

	if (put("otpauth://totp/", out, n, &off) || pct(issuer, out, n, &off) ||
	    put(":", out, n, &off) || pct(name, out, n, &off) || put("?secret=", out, n, &off) ||
	    put(b32, out, n, &off) || put("&issuer=", out, n, &off) || pct(issuer, out, n, &off) ||
	    put("&algorithm=SHA1&digits=6&period=30", out, n, &off))
		return -1;
	return 0;
}

char *cad_qr_svg(const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	char *svg = NULL;
	size_t cap, off = 0;
	int w, size;

	if (!q)
		return NULL;
	w = q->width;
	size = w + 8;
	/* Each dark run is "M x y h len v1 h -len z"; at most w * w / 2 runs of ~24 bytes. */
	cap = 512 + (size_t)w * (size_t)w * 14;
	if (!(svg = malloc(cap)))
		goto out;
	off += (size_t)snprintf(svg + off, cap - off,
	                        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
	                        "width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\" "
	                        "role=\"img\" aria-label=\"TOTP enrolment QR code\">"
	                        "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
	                        "<path fill=\"#000\" d=\"",
	                        size, size, size * 6, size * 6, size, size);
	for (int y = 0; y < w; y++)
		for (int x = 0; x < w;) {
			int run = 0;
			while (x + run < w && (q->data[y * w + x + run] & 1))
				run++;
			if (run) {
				if (off + 48 >= cap) {
					free(svg);
					svg = NULL;
					goto out;
				}
				off += (size_t)snprintf(svg + off, cap - off, "M%d %dh%dv1h-%dz",
				                        x + 4, y + 4, run, run);
				x += run;
			} else {
				x++;
			}
		}
	if (off + 16 >= cap) {
		free(svg);
		svg = NULL;
		goto out;
	}
	snprintf(svg + off, cap - off, "\"/></svg>");
out:
	QRcode_free(q);
	return svg;
}

static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

int cad_recovery_new(char out[CAD_RECOVERY_SHOWN + 1])
{
	unsigned char raw[CAD_RECOVERY_CHARS];
	size_t o = 0;

	/* 16 letters of 5 bits each: the low five bits of 16 random bytes. */
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	for (int i = 0; i < CAD_RECOVERY_CHARS; i++) {
		if (i && i % 4 == 0)
			out[o++] = '-';
		out[o++] = b32_alphabet[raw[i] & 31];
	}
	out[o] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int cad_recovery_hash(const char *normalised, const uint8_t salt[16], uint8_t out[32])
{
	return PKCS5_PBKDF2_HMAC(normalised, (int)strlen(normalised), salt, 16,
	                         CAD_RECOVERY_ITERATIONS, EVP_sha256(), 32, out) == 1
	           ? 0
	           : -1;
}

enum cad_mfa_code cad_mfa_code_kind(const char *v, char *norm, size_t n)
{
	size_t len, k = 0;

	if (!v || n < CAD_RECOVERY_CHARS + 1)
		return CAD_MFA_NOT_A_CODE;
	len = strnlen(v, 65);
	if (len > 64)
		return CAD_MFA_NOT_A_CODE;
	if (len == CAD_TOTP_DIGITS && digits_only(v, CAD_TOTP_DIGITS)) {
		memcpy(norm, v, CAD_TOTP_DIGITS + 1);
		return CAD_MFA_TOTP;
	}
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == '-' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) || k >= CAD_RECOVERY_CHARS)
			return CAD_MFA_NOT_A_CODE;
		norm[k++] = c;
	}
	if (k != CAD_RECOVERY_CHARS)
		return CAD_MFA_NOT_A_CODE;
	norm[k] = '\0';
	return CAD_MFA_RECOVERY;
}

int cad_mfa_pattern_matches(const char *pattern, const char *action)
{
	size_t pl = strlen(pattern);

	if (!strcmp(pattern, "*"))
		return 1;
	if (pl > 2 && !strcmp(pattern + pl - 2, ".*"))
		return !strncmp(pattern, action, pl - 1); /* "profile." is a prefix of the action */
	return !strcmp(pattern, action);
}

int cad_mfa_pattern_ok(const char *pattern)
{
	size_t pl = strlen(pattern);

	if (!strcmp(pattern, "*"))
		return 1;
	if (pl == 0 || pl > 63)
		return 0;
	if (pl > 2 && !strcmp(pattern + pl - 2, ".*"))
		pl -= 2;
	if (pattern[0] == '.' || pattern[pl - 1] == '.')
		return 0;
	for (size_t i = 0; i < pl; i++)
		if (!((pattern[i] >= 'a' && pattern[i] <= 'z') ||
		      (pattern[i] >= '0' && pattern[i] <= '9') || pattern[i] == '.' ||
		      pattern[i] == '-'))
			return 0;
	return 1;
}
