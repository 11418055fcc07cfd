/* The bodies of the approval API, parsed into bounded typed structures before anything is
 * looked up (invariant 4 of docs/architecture.md); fuzzed by tests/fuzz/fuzz_approval_json.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cad_approvals.h"

/* Text a person wrote: UTF-8 (jansson checked it), no NUL and no control characters. */
static int text_ok(json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!s || n > max || strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static json_t *load_object(const char *buf, size_t len, const char *const *allowed, char *err,
                           size_t errsz)
{
	json_error_t jerr;
	const char *key;
	json_t *o, *v;

	if (len > CAD_APPROVAL_BODY_MAX) {
		snprintf(err, errsz, "the body has %zu bytes; at most %d", len,
		         CAD_APPROVAL_BODY_MAX);
		return NULL;
	}
	if (!(o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr))) {
		snprintf(err, errsz, "the body is not JSON: %s (line %d)", jerr.text, jerr.line);
		return NULL;
	}
	if (!json_is_object(o)) {
		snprintf(err, errsz, "the body must be a JSON object");
		json_decref(o);
		return NULL;
	}
	json_object_foreach(o, key, v)
	{
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (!strcmp(key, allowed[i]))
				break;
		if (!allowed[i]) {
			snprintf(err, errsz, "unknown field \"%.64s\"", key);
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static int reason_of(json_t *o, int required, char *out, size_t outsz, char *err, size_t errsz)
{
	json_t *v = json_object_get(o, "reason");

	if (!v || (json_is_string(v) && json_string_length(v) == 0)) {
		if (required) {
			snprintf(err, errsz, "\"reason\" is required: say why");
			return -1;
		}
		out[0] = '\0';
		return 0;
	}
	if (!text_ok(v, DB_APPROVAL_REASON_MAX)) {
		snprintf(err, errsz,
		         "\"reason\" must be a string of at most %d bytes without control "
		         "characters",
		         DB_APPROVAL_REASON_MAX);
		return -1;
	}
	snprintf(out, outsz, "%s", json_string_value(v));
	return 0;
}

int cad_approval_parse_vote(const char *buf, size_t len, int reject,
                            struct cad_approval_vote_body *out, char *err, size_t errsz)
{
	static const char *const fields[] = {"reason", NULL};
	json_t *o;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		if (!reject)
			return 0;
		snprintf(err, errsz, "a rejection needs a body {\"reason\": \"...\"}");
		return -1;
	}
	if (!(o = load_object(buf, len, fields, err, errsz)))
		return -1;
	rc = reason_of(o, reject, out->reason, sizeof(out->reason), err, errsz);
	json_decref(o);
	return rc;
}

static int is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!strchr("0123456789abcdef", *s))
			return 0;
	return 1;
}

int cad_approval_parse_create(const char *buf, size_t len, struct cad_approval_create_body *out,
                              char *err, size_t errsz)
{
	static const char *const fields[] = {"kind", "target", "reason", "parameters", NULL};
	const struct cad_approval_kind *k;
	json_t *o, *v;
	char *text;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!(o = load_object(buf, len, fields, err, errsz)))
		return -1;
	v = json_object_get(o, "kind");
	if (!text_ok(v, DB_APPROVAL_KIND_MAX) ||
	    !(k = cad_approval_kind_find(json_string_value(v)))) {
		snprintf(err, errsz, "\"kind\" must name a kind of approval (docs/approvals.md)");
		goto out;
	}
	if (!k->requesters) {
		snprintf(err, errsz,
		         "approvals of kind %s are requested by their own endpoint, not here",
		         k->kind);
		goto out;
	}
	snprintf(out->kind, sizeof(out->kind), "%s", k->kind);
	v = json_object_get(o, "target");
	if (!text_ok(v, DB_APPROVAL_TARGET_MAX) || !json_string_length(v)) {
		snprintf(err, errsz, "\"target\" must be a string of 1..%d bytes",
		         DB_APPROVAL_TARGET_MAX);
		goto out;
	}
	if (k->target_form && !strcmp(k->target_form, "sha256") &&
	    !is_hex64(json_string_value(v))) {
		snprintf(err, errsz,
		         "\"target\" of kind %s is the file's SHA-256: 64 lower-case hex digits",
		         k->kind);
		goto out;
	}
	snprintf(out->target, sizeof(out->target), "%s", json_string_value(v));
	if (reason_of(o, 1, out->reason, sizeof(out->reason), err, errsz) != 0)
		goto out;
	v = json_object_get(o, "parameters");
	if (v && !json_is_object(v)) {
		snprintf(err, errsz, "\"parameters\" must be a JSON object");
		goto out;
	}
	out->parameters = v ? json_deep_copy(v) : json_object();
	text = out->parameters ? json_dumps(out->parameters, JSON_COMPACT) : NULL;
	/* PostgreSQL's jsonb takes no NUL character (\u0000) */
	if (!text || strlen(text) > DB_APPROVAL_PARAMETERS_MAX / 2 || strstr(text, "\\u0000")) {
		snprintf(err, errsz,
		         "\"parameters\" must be an object of at most %d bytes without NUL "
		         "characters",
		         DB_APPROVAL_PARAMETERS_MAX / 2);
		free(text);
		cad_approval_create_body_clear(out);
		goto out;
	}
	free(text);
	rc = 0;
out:
	json_decref(o);
	return rc;
}

void cad_approval_create_body_clear(struct cad_approval_create_body *b)
{
	json_decref(b->parameters);
	b->parameters = NULL;
}

int cad_approval_parse_id(const char *s, int64_t *id)
{
	int64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 18 || s[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*id = v;
	return 0;
}
