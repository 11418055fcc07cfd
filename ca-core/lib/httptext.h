/*
 * httptext: the fixed texts of HTTP/1.1 that every hsmca daemon writes: dates in the
 * IMF-fixdate form (RFC 9110 5.6.7, "Sun, 06 Nov 1994 08:49:37 GMT") for Date, Last-Modified
 * and Expires, the strict reading of that form for If-Modified-Since, and the reason phrases
 * of status lines (RFC 9110 15).
 */
#ifndef HSMCA_HTTPTEXT_H
#define HSMCA_HTTPTEXT_H

#include <stddef.h>
#include <stdint.h>

#define HTTPTEXT_DATE_LEN 29 /* an IMF-fixdate's bytes, without the terminating NUL */

/* The IMF-fixdate of t (seconds since the epoch) into out, which holds at least
 * HTTPTEXT_DATE_LEN + 1 bytes when n allows (the epoch for a time gmtime cannot express). */
void httptext_date(int64_t t, char *out, size_t n);

/* An IMF-fixdate (exactly that form, nothing around it; years from 1970) to seconds since the
 * epoch. 0, or -1. The obsolete RFC 850 and asctime forms are not read: a cache that sends
 * them gets the full answer instead of 304. */
int httptext_date_parse(const char *s, int64_t *t);

/* The reason phrase for an HTTP status code; "Error" for one hsmca does not send. */
const char *httptext_status(int status);

#endif
