/* IMF-fixdate dates and status reason phrases (httptext.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "httptext.h"

static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void httptext_date(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
		snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
	         months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int num(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int httptext_date_parse(const char *s, int64_t *t)
{
	/* "Sun, 06 Nov 1994 08:49:37 GMT": exactly 29 bytes. */
	struct tm tm = {0};
	int d, y, h, mi, se, mo = -1, wd = -1;

	if (strnlen(s, HTTPTEXT_DATE_LEN + 1) != HTTPTEXT_DATE_LEN || s[3] != ',' || s[4] != ' ' ||
	    s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
	    s[25] != ' ' || strcmp(s + 26, "GMT"))
		return -1;
	for (int i = 0; i < 7; i++)
		if (!strncmp(s, days[i], 3))
			wd = i;
	for (int i = 0; i < 12; i++)
		if (!strncmp(s + 8, months[i], 3))
			mo = i;
	if (wd < 0 || mo < 0 || num(s + 5, 2, &d) || num(s + 12, 4, &y) || num(s + 17, 2, &h) ||
	    num(s + 20, 2, &mi) || num(s + 23, 2, &se) || d < 1 || d > 31 || y < 1970 || h > 23 ||
	    mi > 59 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*t = (int64_t)timegm(&tm);
	return 0;
}

const char *httptext_status(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}
