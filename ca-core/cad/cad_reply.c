/* Replies and request bodies, for every handler: JSON answers and errors, EST's text/plain
 * ones, the JSON body and the query string read with their limits, the checks of names and
 * labels, and the worker's database connection. A leaf: it calls no handler and no router. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>

#include "cad_internal.h"
#include "httptext.h"
#include "log.h"

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	default:
		return "OTHER";
	}
}

void cad_log_reply(const struct cad_req *r, int status)
{
	log_info("request method=%s path=%s status=%d principal=%s via=%s",
	         method_name(evhttp_request_get_command(r->req)), r->path, status,
	         r->who.name ? r->who.name : "-", r->auth_via ? r->auth_via : "-");
}

void cad_reply_json(struct cad_req *r, int status, json_t *obj)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	if (r->replied) {
		json_decref(obj);
		free(text);
		return;
	}
	r->replied = 1;
	r->status = status;
	if (!text) {
		status = 500;
		evbuffer_add_printf(out, "{\"error\":\"internal\",\"detail\":\"out of memory\"}");
	} else {
		evbuffer_add(out, text, strlen(text));
	}
	evbuffer_add(out, "\n", 1);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (status == 401)
		evhttp_add_header(h, "WWW-Authenticate", "Bearer");
	evhttp_send_reply(r->req, status, httptext_status(status), NULL);
	cad_log_reply(r, status);
	json_decref(obj);
	free(text);
}

void cad_reply_error(struct cad_req *r, int status, const char *error, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(r->error, sizeof(r->error), "%s", error);
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
	cad_reply_json(r, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

void cad_reply_db_error(struct cad_req *r, const struct db_err *err)
{
	struct ca_why why;
	enum ca_outcome o = ca_db_failure(&why, err);

	cad_reply_ca(r, o, &why);
}

struct db *cad_db(struct cad_req *r)
{
	struct db_err err = {0};

	if (ca_db_open(&r->cad->ca, &r->w->db, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		return NULL;
	}
	return r->w->db;
}

int cad_outcome_status(enum ca_outcome o)
{
	switch (o) {
	case CA_OK:
		return 200;
	case CA_REFUSED:
		return 400;
	case CA_NOT_GRANTED:
		return 403;
	case CA_NOT_FOUND:
		return 404;
	case CA_AMBIGUOUS:
	case CA_WRONG_STATE:
	case CA_AUTHORITY_RETIRED:
	case CA_PROFILE_DISABLED:
		return 409;
	case CA_STALE_CREDENTIALS:
		return 0;
	case CA_KEYD_UNAVAILABLE:
	case CA_DB_UNAVAILABLE:
		return 503;
	case CA_CONFIG_ERROR:
	case CA_INTERNAL:
	default:
		return 500;
	}
}

void cad_reply_ca(struct cad_req *r, enum ca_outcome o, const struct ca_why *why)
{
	int status = cad_outcome_status(o);

	if (o == CA_STALE_CREDENTIALS) {
		r->stale_credentials = 1;
		return;
	}
	if (why->object[0])
		cad_deny(r, status, why->code, why->object, "%s", why->reason);
	else
		cad_reply_error(r, status, why->code, "%s", why->reason);
}

struct ca_requester cad_requester(const struct cad_req *r)
{
	struct ca_requester who = {
	    .kind = CA_REQUESTER_PRINCIPAL,
	    .name = r->who.name,
	    .role = r->who.role,
	    /* An ra principal acts only within its granted profiles. */
	    .profiles = r->who.role && !strcmp(r->who.role, "ra")
	                    ? (r->who.profiles ? r->who.profiles : "")
	                    : NULL,
	    .token_sha256 = r->auth_cached ? r->token_sha256 : NULL,
	};
	return who;
}

json_t *cad_body_object(struct cad_req *r, const char *const *allowed)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	const char *key;
	json_t *obj, *v;

	if (len > r->cad->cfg->max_body_bytes) {
		cad_reply_error(r, 413, "body-too-large",
		                "the request body has %zu bytes; at most %zu", len,
		                r->cad->cfg->max_body_bytes);
		return NULL;
	}
	obj = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		cad_reply_error(r, 400, "malformed-json", "the body is not JSON: %s (line %d)",
		                jerr.text, jerr.line);
		return NULL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		cad_reply_error(r, 400, "malformed-json", "the body must be a JSON object");
		return NULL;
	}
	json_object_foreach(obj, key, v)
	{
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (!strcmp(key, allowed[i]))
				break;
		if (!allowed[i]) {
			cad_reply_error(r, 400, "unknown-field", "unknown field \"%.64s\"", key);
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

int cad_body_string_list(struct cad_req *r, const json_t *body, const char *name, const char *what,
                         const char **out, size_t max, size_t *n)
{
	const json_t *v = json_object_get(body, name), *e;
	size_t i;

	*n = 0;
	if (!v)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > max) {
		cad_reply_error(r, 400, "bad-request", "\"%s\" must be a list of at most %zu %s",
		                name, max, what);
		return -1;
	}
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e)) {
			cad_reply_error(r, 400, "bad-request", "\"%s\" entries must be strings",
			                name);
			*n = 0;
			return -1;
		}
		out[(*n)++] = json_string_value(e);
	}
	return 0;
}

/* Parse the query string once: 0, or -1 when it does not parse or a name or value is not UTF-8
 * text once decoded (nothing that is not text reaches a query). */
int cad_query_parse(struct cad_req *r)
{
	const struct evhttp_uri *u;
	const struct evkeyval *kv;
	const char *q;

	if (r->query_parsed)
		return 0;
	u = r->req ? evhttp_request_get_evhttp_uri(r->req) : NULL;
	q = u ? evhttp_uri_get_query(u) : NULL;
	if (q && evhttp_parse_query_str(q, &r->query) != 0)
		return -1;
	r->query_parsed = 1;
	TAILQ_FOREACH(kv, &r->query, next)
	if (!db_text_valid(kv->key, strlen(kv->key)) ||
	    !db_text_valid(kv->value, strlen(kv->value)))
		return -1;
	return 0;
}

const char *cad_query(struct cad_req *r, const char *name)
{
	if (cad_query_parse(r) != 0)
		return NULL;
	return evhttp_find_header(&r->query, name);
}

/* --- names --- */

int cad_name_ok(const char *s)
{
	size_t n = 0;

	if (!s ||
	    !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return 0;
	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._@+-", *s)))
			return 0;
	return n <= 128;
}

int cad_label_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 128 || !db_text_valid(s, n))
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

void cad_reply_plain(struct cad_req *r, int status, const char *text)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

	if (r->replied)
		return;
	r->replied = 1;
	r->status = status;
	evbuffer_add_printf(out, "%s\n", text);
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (status == 401)
		evhttp_add_header(h, "WWW-Authenticate", "Basic realm=\"hsmca EST\"");
	evhttp_send_reply(r->req, status, httptext_status(status), NULL);
	cad_log_reply(r, status);
}

void cad_deny(struct cad_req *r, int status, const char *error, const char *object, const char *fmt,
              ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(r->object, sizeof(r->object), "%s", object ? object : r->path);
	cad_reply_error(r, status, error, "%s", detail);
}

const char *cad_time_text(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || !gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return buf;
}
