/* A small, strict HTTP/1.1 request parser: enough of RFC 9112 for OCSP clients (GET and POST
 * with Content-Length, keep-alive), bounded in every dimension, and never allocating. */
#include <string.h>
#include <strings.h>

#include "ocsp_parse.h"

static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value may hold visible characters, spaces and tabs, and obs-text. */
static int is_vchar_or_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

static int name_is(const char *n, size_t len, const char *want)
{
	return strlen(want) == len && !strncasecmp(n, want, len);
}

/* 1 if the comma-separated list v[0..len) holds token (case-insensitive). */
static int list_has(const char *v, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;

	while (i < len) {
		size_t s, e;
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && !strncasecmp(v + s, token, tl))
			return 1;
	}
	return 0;
}

/* The CR of the next CRLF in [p, end), or NULL; a CR not followed by LF is refused (the
 * caller's buffer holds at least one byte past end). */
static const char *find_crlf(const char *p, const char *end)
{
	const char *q = memchr(p, '\r', (size_t)(end - p));

	if (!q || q[1] != '\n')
		return NULL;
	return q;
}

static int parse_one(const char *buf, size_t len, const struct ocsp_http_limits *lim,
                     struct ocsp_http_req *req);

int ocsp_http_parse(const char *buf, size_t len, const struct ocsp_http_limits *lim,
                    struct ocsp_http_req *req)
{
	size_t skip = 0;
	int r;

	/* Tolerate a few empty lines before a request (RFC 9112 2.2). */
	while (skip < 8 && len - skip >= 2 && buf[skip] == '\r' && buf[skip + 1] == '\n')
		skip += 2;
	if (len - skip < 2 && len - skip > 0 && buf[skip] == '\r')
		return 0;
	r = parse_one(buf + skip, len - skip, lim, req);
	return r > 0 ? r + (int)skip : r;
}

static int parse_one(const char *buf, size_t len, const struct ocsp_http_limits *lim,
                     struct ocsp_http_req *req)
{
	size_t scan = len < lim->max_head ? len : lim->max_head;
	const char *head_end = NULL, *p, *end, *eol, *sp1, *sp2;
	int have_cl = 0, conn_close = 0, conn_keep = 0;
	size_t cl = 0, nheaders = 0, head_len;

	memset(req, 0, sizeof(*req));
	for (size_t i = 0; i + 3 < scan; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n') {
			head_end = buf + i + 2; /* after the last header line's CRLF */
			break;
		}
	}
	if (!head_end) {
		/* The request line alone must look like one, so junk is refused early. */
		for (size_t i = 0; i < scan; i++) {
			unsigned char c = (unsigned char)buf[i];
			if (c == '\n' && (i == 0 || buf[i - 1] != '\r'))
				return -400;
			if (c == 0)
				return -400;
		}
		return len >= lim->max_head ? -431 : 0;
	}
	head_len = (size_t)(head_end - buf) + 2;

	/* request-line = method SP request-target SP HTTP-version CRLF */
	end = head_end;
	eol = find_crlf(buf, end);
	if (!eol)
		return -400;
	sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	if (!sp1 || sp1 == buf)
		return -400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -400;
	for (p = buf; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return -400;
	for (p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return -400;
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT */
	if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) || sp2[6] < '0' || sp2[6] > '9' ||
	    sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
		return -400;
	if (sp2[6] != '1')
		return -505;
	req->http10 = sp2[8] == '0';
	if (sp1 - buf == 3 && !memcmp(buf, "GET", 3))
		req->method = OCSP_HTTP_GET;
	else if (sp1 - buf == 4 && !memcmp(buf, "HEAD", 4))
		req->method = OCSP_HTTP_HEAD;
	else if (sp1 - buf == 4 && !memcmp(buf, "POST", 4))
		req->method = OCSP_HTTP_POST;
	else
		return -405;
	req->target = sp1 + 1;
	req->target_len = (size_t)(sp2 - sp1 - 1);

	/* header fields */
	for (p = eol + 2; p < end; p = eol + 2) {
		const char *colon, *v, *ve;

		eol = find_crlf(p, end);
		if (!eol)
			return -400;
		if (++nheaders > lim->max_headers)
			return -431;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return -400; /* also refuses obs-fold, which starts with a space */
		for (const char *q = p; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return -400;
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (const char *q = v; q < ve; q++)
			if (!is_vchar_or_ws((unsigned char)*q))
				return -400;
		if (name_is(p, (size_t)(colon - p), "Content-Length")) {
			size_t n = 0;
			if (v == ve || ve - v > 9)
				return ve - v > 9 ? -413 : -400;
			for (const char *q = v; q < ve; q++) {
				if (*q < '0' || *q > '9')
					return -400;
				n = n * 10 + (size_t)(*q - '0');
			}
			if (have_cl && n != cl)
				return -400;
			have_cl = 1;
			cl = n;
		} else if (name_is(p, (size_t)(colon - p), "Transfer-Encoding")) {
			return -501;
		} else if (name_is(p, (size_t)(colon - p), "Connection")) {
			conn_close |= list_has(v, (size_t)(ve - v), "close");
			conn_keep |= list_has(v, (size_t)(ve - v), "keep-alive");
		} else if (name_is(p, (size_t)(colon - p), "Content-Type")) {
			size_t n = (size_t)(ve - v);
			const char *semi = memchr(v, ';', n);
			if (semi) {
				n = (size_t)(semi - v);
				while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
					n--;
			}
			req->content_type =
			    (n == 24 && !strncasecmp(v, "application/ocsp-request", 24)) ? 1 : -1;
		} else if (name_is(p, (size_t)(colon - p), "If-None-Match")) {
			req->if_none_match = v;
			req->if_none_match_len = (size_t)(ve - v);
		}
	}
	if (req->method == OCSP_HTTP_POST && !have_cl)
		return -411;
	if (cl > lim->max_body)
		return -413;
	if (len - head_len < cl)
		return 0;
	req->body = (const uint8_t *)buf + head_len;
	req->body_len = cl;
	req->keep_alive = req->http10 ? (conn_keep && !conn_close) : !conn_close;
	return (int)(head_len + cl);
}
