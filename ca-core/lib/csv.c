/* RFC 4180 fields and rows (csv.h). */
#include <stdlib.h>
#include <string.h>

#include "csv.h"

static void put(struct csv_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *d;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(d = realloc(b->data, cap))) {
			b->failed = 1;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void csv_field(struct csv_buf *b, const char *s)
{
	int formula, quote;

	if (!s)
		s = "";
	formula = s[0] && strchr("=+-@\t\r", s[0]);
	quote = formula || s[strcspn(s, ",\"\r\n")];
	if (b->in_row)
		put(b, ",", 1);
	b->in_row = 1;
	if (!quote) {
		put(b, s, strlen(s));
		return;
	}
	put(b, "\"", 1);
	if (formula)
		put(b, "'", 1);
	for (const char *q; (q = strchr(s, '"')); s = q + 1) {
		put(b, s, (size_t)(q - s) + 1);
		put(b, "\"", 1);
	}
	put(b, s, strlen(s));
	put(b, "\"", 1);
}

void csv_row_end(struct csv_buf *b)
{
	put(b, "\r\n", 2);
	b->in_row = 0;
}
