/* Statement parameters, result parsing, text checks and serial hex. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* Callers size their statements; running past DB_PARAMS_MAX is a programming error that
 * must not turn into a write past the arrays. */
static int param_slot(struct db_params *p)
{
	if (p->n >= DB_PARAMS_MAX)
		abort();
	return p->n++;
}

void db_param_text(struct db_params *p, const char *s)
{
	int i = param_slot(p);

	p->values[i] = s;
	p->lengths[i] = 0;
	p->formats[i] = 0;
}

void db_param_null(struct db_params *p)
{
	db_param_text(p, NULL);
}

/* bytea in binary format: the bytes as they are, no escaping to get wrong. */
void db_param_bytes(struct db_params *p, const uint8_t *b, size_t len)
{
	int i = param_slot(p);
	static const char empty[1];

	p->values[i] = len ? (const char *)b : empty;
	p->lengths[i] = (int)len;
	p->formats[i] = 1;
}

void db_param_textn(struct db_params *p, const char *s, size_t len)
{
	db_param_bytes(p, (const uint8_t *)s, len);
}

void db_param_int(struct db_params *p, int64_t v)
{
	int i = param_slot(p);
	char *buf;

	if (p->n_num >= DB_PARAMS_NUM_MAX)
		abort();
	buf = p->num[p->n_num++];
	snprintf(buf, sizeof(p->num[0]), "%" PRId64, v);
	p->values[i] = buf;
	p->lengths[i] = 0;
	p->formats[i] = 0;
}

static uint8_t *put_u32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
	return b + 4;
}

uint8_t *db_array_binary(unsigned elem_oid, size_t n, const char *const *v, const int *len,
                         size_t *size)
{
	size_t total = 20; /* ndim, has-null flag, element type, then the dimension and its lower
	                    * bound */
	int has_null = 0;
	uint8_t *buf, *b;

	for (size_t i = 0; i < n; i++) {
		if (len[i] < 0 || total > (1u << 30))
			return NULL;
		total += 4 + (v[i] ? (size_t)len[i] : 0);
		has_null |= !v[i];
	}
	if (n > INT32_MAX || total > (1u << 30) || !(buf = malloc(total)))
		return NULL;
	b = put_u32(buf, 1);
	b = put_u32(b, (uint32_t)has_null);
	b = put_u32(b, elem_oid);
	b = put_u32(b, (uint32_t)n);
	b = put_u32(b, 1);
	for (size_t i = 0; i < n; i++) {
		if (!v[i]) {
			b = put_u32(b, 0xffffffffu); /* -1: NULL */
			continue;
		}
		b = put_u32(b, (uint32_t)len[i]);
		if (len[i])
			memcpy(b, v[i], (size_t)len[i]);
		b += len[i];
	}
	*size = total;
	return buf;
}

enum db_status db_array_param(struct db_params *out, uint8_t **array, unsigned oid, size_t n,
                              const char *const *v, const int *len)
{
	size_t size;

	if (!(*array = db_array_binary(oid, n, v, len, &size)))
		return DB_ERR_UNAVAILABLE;
	db_param_bytes(out, *array, size);
	return DB_OK;
}

enum db_status db_column_arrays(const struct db_params *const *p, size_t m, int ncols,
                                const unsigned *oids, struct db_params *out, uint8_t **arrays)
{
	const char *v[DB_GROUP_MAX];
	int len[DB_GROUP_MAX];
	enum db_status rc = DB_OK;

	if (m > DB_GROUP_MAX)
		return DB_ERR_INVALID;
	for (int j = 0; rc == DB_OK && j < ncols; j++) {
		for (size_t k = 0; k < m; k++) {
			v[k] = p[k]->values[j];
			len[k] = p[k]->formats[j] ? p[k]->lengths[j] : v[k] ? (int)strlen(v[k]) : 0;
		}
		rc = db_array_param(out, &arrays[j], oids[j], m, v, len);
	}
	return rc;
}

int db_text_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = u[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i <= n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (u[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

enum db_status db_check_text(const char *what, const char *s, size_t max, struct db_err *err)
{
	size_t len;

	if (!s)
		return db_fail(err, DB_ERR_INVALID, "%s is missing", what);
	len = strnlen(s, max + 1);
	if (len > max)
		return db_fail(err, DB_ERR_INVALID, "%s is longer than %zu bytes", what, max);
	if (!db_text_valid(s, len))
		return db_fail(err, DB_ERR_INVALID, "%s is not valid UTF-8 text", what);
	return DB_OK;
}

int db_get_int64(const PGresult *r, int row, int col, int64_t *v)
{
	const char *s;
	char *end;
	long long x;

	if (PQgetisnull(r, row, col))
		return -1;
	s = PQgetvalue(r, row, col);
	x = strtoll(s, &end, 10);
	if (end == s || *end)
		return -1;
	*v = x;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* bytea_output=hex: "\x" then two hex digits per byte. */
static int parse_bytea(const char *s, size_t slen, uint8_t *out, size_t *len)
{
	size_t n;

	if (slen < 2 || s[0] != '\\' || s[1] != 'x' || (slen - 2) % 2)
		return -1;
	n = (slen - 2) / 2;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n;
	return 0;
}

int db_get_bytes(const PGresult *r, int row, int col, uint8_t **out, size_t *len)
{
	const char *s;
	size_t slen;
	uint8_t *buf;

	*out = NULL;
	*len = 0;
	if (PQgetisnull(r, row, col))
		return 0;
	s = PQgetvalue(r, row, col);
	slen = (size_t)PQgetlength(r, row, col);
	buf = malloc(slen / 2 + 1);
	if (!buf)
		return -1;
	if (parse_bytea(s, slen, buf, len) != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

int db_get_bytes_into(const PGresult *r, int row, int col, uint8_t *buf, size_t want, int exact,
                      size_t *len)
{
	size_t slen, n;

	if (PQgetisnull(r, row, col))
		return -1;
	slen = (size_t)PQgetlength(r, row, col);
	if (slen < 2 || (slen - 2) / 2 > want)
		return -1;
	if (parse_bytea(PQgetvalue(r, row, col), slen, buf, &n) != 0)
		return -1;
	if (exact && n != want)
		return -1;
	if (len)
		*len = n;
	return 0;
}

char *db_get_text(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return strdup(PQgetvalue(r, row, col));
}

void db_serial_to_hex(const uint8_t *serial, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	if (len > DB_SERIAL_MAX)
		len = DB_SERIAL_MAX;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[serial[i] >> 4];
		out[2 * i + 1] = digits[serial[i] & 15];
	}
	out[2 * len] = '\0';
}

int db_serial_from_hex(const char *hex, uint8_t *serial, size_t *len)
{
	size_t n, skip = 0;

	if (!strncmp(hex, "0x", 2) || !strncmp(hex, "0X", 2))
		hex += 2;
	while (hex[skip] == '0')
		skip++;
	hex += skip;
	n = strlen(hex);
	/* zero is not a serial; more than 20 bytes is not one either */
	if (n == 0 || n > 2 * DB_SERIAL_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (hexval(hex[i]) < 0)
			return -1;
	*len = (n + 1) / 2;
	for (size_t i = 0, o = 0; i < n; o++) {
		/* an odd digit count: the first byte has one digit */
		int hi = (n % 2 && i == 0) ? 0 : hexval(hex[i++]);
		int lo = hexval(hex[i++]);
		serial[o] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
