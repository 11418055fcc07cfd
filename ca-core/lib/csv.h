/*
 * csv: tables as RFC 4180 text (the reports' format=csv, `hsmca report --format csv`). A field
 * is quoted when it holds a comma, a double quote, CR or LF (a quote doubled inside), rows end
 * with CRLF. A field that a spreadsheet would take for a formula (its first character one of
 * = + - @, tab or CR) is written quoted behind a single quote, so that a certificate subject
 * taken from a CSR cannot run as a formula when an auditor opens the report (docs/reports.md).
 */
#ifndef HSMCA_CSV_H
#define HSMCA_CSV_H

#include <stddef.h>

struct csv_buf {
	char *data; /* NUL-terminated once anything was written; free() it */
	size_t len, cap;
	int in_row; /* a field was written on the current row */
	int failed; /* out of memory: data is incomplete */
};

/* Append one field (NULL: an empty one) to the current row. */
void csv_field(struct csv_buf *b, const char *s);
/* End the current row (CRLF). */
void csv_row_end(struct csv_buf *b);

#endif
