#include "yconf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int yconf_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

int yconf_fail(struct yconf *y, const yaml_node_t *n, const char *what, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n)
		snprintf(y->err, sizeof(y->err), "%s:%d: %s: %s", y->name, yconf_line(n), what,
		         msg);
	else
		snprintf(y->err, sizeof(y->err), "%s: %s: %s", y->name, what, msg);
	return -1;
}

int yconf_load_mem(struct yconf *y, const char *name, const void *buf, size_t len)
{
	yaml_parser_t p;
	yaml_document_t extra;
	int rc = -1;

	memset(y, 0, sizeof(*y));
	snprintf(y->name, sizeof(y->name), "%s", name);
	if (len > YCONF_MAX_BYTES) {
		snprintf(y->err, sizeof(y->err), "%s: larger than %u bytes", name, YCONF_MAX_BYTES);
		return -1;
	}
	if (!yaml_parser_initialize(&p)) {
		snprintf(y->err, sizeof(y->err), "%s: out of memory", name);
		return -1;
	}
	yaml_parser_set_input_string(&p, buf, len);
	if (!yaml_parser_load(&p, &y->doc)) {
		snprintf(y->err, sizeof(y->err), "%s:%d: YAML syntax: %s", name,
		         (int)p.problem_mark.line + 1, p.problem ? p.problem : "error");
		goto out;
	}
	y->loaded = 1;
	if (!yaml_document_get_root_node(&y->doc)) {
		snprintf(y->err, sizeof(y->err), "%s: empty document", name);
		goto out;
	}
	/* One document per file: anything after it is a mistake. */
	if (!yaml_parser_load(&p, &extra)) {
		snprintf(y->err, sizeof(y->err), "%s:%d: YAML syntax: %s", name,
		         (int)p.problem_mark.line + 1, p.problem ? p.problem : "error");
		goto out;
	}
	if (yaml_document_get_root_node(&extra)) {
		yaml_document_delete(&extra);
		snprintf(y->err, sizeof(y->err), "%s: more than one YAML document", name);
		goto out;
	}
	yaml_document_delete(&extra);
	rc = 0;
out:
	yaml_parser_delete(&p);
	return rc;
}

int yconf_load_file(struct yconf *y, const char *path)
{
	FILE *f;
	char *buf = NULL;
	size_t n;
	int rc;

	memset(y, 0, sizeof(*y));
	snprintf(y->name, sizeof(y->name), "%s", path);
	f = fopen(path, "rb");
	if (!f) {
		snprintf(y->err, sizeof(y->err), "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(YCONF_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(y->err, sizeof(y->err), "%s: out of memory", path);
		return -1;
	}
	n = fread(buf, 1, YCONF_MAX_BYTES + 1, f);
	if (ferror(f)) {
		snprintf(y->err, sizeof(y->err), "%s: read error", path);
		rc = -1;
	} else {
		rc = yconf_load_mem(y, path, buf, n);
	}
	fclose(f);
	free(buf);
	return rc;
}

void yconf_free(struct yconf *y)
{
	if (y->loaded)
		yaml_document_delete(&y->doc);
	y->loaded = 0;
}

yaml_node_t *yconf_root(struct yconf *y)
{
	return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

int yconf_is_seq(yaml_node_t *n)
{
	return n && n->type == YAML_SEQUENCE_NODE;
}

int yconf_is_map(yaml_node_t *n)
{
	return n && n->type == YAML_MAPPING_NODE;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int yconf_check_map(struct yconf *y, yaml_node_t *map, const char *what, const char *const *allowed)
{
	yaml_node_pair_t *a, *b;

	if (!yconf_is_map(map))
		return yconf_fail(y, map, what, "expected a mapping of fields");
	for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top; a++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, a->key);
		const char *ks = scalar(k);
		size_t i;

		if (!ks)
			return yconf_fail(y, k, what, "field names must be plain strings");
		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], ks) == 0)
				break;
		if (!allowed[i])
			return yconf_fail(y, k, what, "unknown field \"%s\"", ks);
		for (b = map->data.mapping.pairs.start; b < a; b++) {
			const char *bs = scalar(yaml_document_get_node(&y->doc, b->key));
			if (bs && strcmp(bs, ks) == 0)
				return yconf_fail(y, k, what, "field \"%s\" given twice", ks);
		}
	}
	return 0;
}

yaml_node_t *yconf_get(struct yconf *y, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *a;

	if (!yconf_is_map(map))
		return NULL;
	for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top; a++) {
		const char *ks = scalar(yaml_document_get_node(&y->doc, a->key));
		if (ks && strcmp(ks, key) == 0)
			return yaml_document_get_node(&y->doc, a->value);
	}
	return NULL;
}

int yconf_str(struct yconf *y, yaml_node_t *n, const char *what, char *out, size_t outsz)
{
	const char *s = scalar(n);

	if (!s)
		return yconf_fail(y, n, what, "expected a string");
	if (n->data.scalar.length != strlen(s))
		return yconf_fail(y, n, what, "contains a NUL byte");
	if (strlen(s) >= outsz)
		return yconf_fail(y, n, what, "longer than %zu characters", outsz - 1);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int parse_long(struct yconf *y, yaml_node_t *n, const char *what, int base, long min,
                      long max, long *out)
{
	const char *s = scalar(n);
	char *end;
	long v;

	if (!s || !*s)
		return yconf_fail(y, n, what, "expected a number");
	errno = 0;
	v = strtol(s, &end, base);
	if (errno || *end || end == s)
		return yconf_fail(y, n, what, "\"%s\" is not a number", s);
	if (v < min || v > max)
		return yconf_fail(y, n, what, "%ld is outside %ld..%ld", v, min, max);
	*out = v;
	return 0;
}

int yconf_long(struct yconf *y, yaml_node_t *n, const char *what, long min, long max, long *out)
{
	return parse_long(y, n, what, 10, min, max, out);
}

int yconf_octal(struct yconf *y, yaml_node_t *n, const char *what, long max, long *out)
{
	return parse_long(y, n, what, 8, 0, max, out);
}

int yconf_bool(struct yconf *y, yaml_node_t *n, const char *what, int *out)
{
	const char *s = scalar(n);

	if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))) {
		*out = 1;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))) {
		*out = 0;
		return 0;
	}
	return yconf_fail(y, n, what, "expected true or false");
}

int yconf_req_str(struct yconf *y, yaml_node_t *map, const char *key, char *out, size_t outsz)
{
	yaml_node_t *v = yconf_get(y, map, key);

	if (!v)
		return yconf_fail(y, map, key, "required field is missing");
	if (yconf_str(y, v, key, out, outsz))
		return -1;
	if (!*out)
		return yconf_fail(y, v, key, "must not be empty");
	return 0;
}

int yconf_opt_str(struct yconf *y, yaml_node_t *map, const char *key, char *out, size_t outsz)
{
	yaml_node_t *v = yconf_get(y, map, key);

	return v ? yconf_str(y, v, key, out, outsz) : 0;
}

int yconf_opt_long(struct yconf *y, yaml_node_t *map, const char *key, long min, long max,
		   long *out)
{
	yaml_node_t *v = yconf_get(y, map, key);

	return v ? yconf_long(y, v, key, min, max, out) : 0;
}

int yconf_opt_bool(struct yconf *y, yaml_node_t *map, const char *key, int *out)
{
	yaml_node_t *v = yconf_get(y, map, key);

	return v ? yconf_bool(y, v, key, out) : 0;
}

size_t yconf_seq_len(yaml_node_t *n)
{
	if (!yconf_is_seq(n))
		return 0;
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *yconf_seq_item(struct yconf *y, yaml_node_t *n, size_t i)
{
	if (i >= yconf_seq_len(n))
		return NULL;
	return yaml_document_get_node(&y->doc, n->data.sequence.items.start[i]);
}

/* --- a node as JSON text --- */

struct jbuf {
	char *p;
	size_t len, cap;
	int full;
};

static void jput(struct jbuf *b, const char *s, size_t n)
{
	if (b->full || b->len + n >= b->cap) {
		b->full = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void jstring(struct jbuf *b, const char *s, size_t n)
{
	jput(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jput(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			jput(b, esc, 6);
		} else {
			jput(b, (const char *)&s[i], 1);
		}
	}
	jput(b, "\"", 1);
}

/* A plain scalar that reads as a number, a boolean or null in JSON; 0: a string. */
static int plain_is_json_literal(const char *s, size_t n)
{
	size_t i = s[0] == '-';

	if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)) ||
	    (n == 4 && !memcmp(s, "null", 4)))
		return 1;
	if (i == n || n - i > 15 || (s[i] == '0' && n - i > 1))
		return 0;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int to_json(struct yconf *y, yaml_node_t *n, struct jbuf *b, int depth)
{
	if (!n || depth > 8)
		return yconf_fail(y, n, "document", "nested more than 8 levels deep");
	switch (n->type) {
	case YAML_SCALAR_NODE: {
		const char *s = (const char *)n->data.scalar.value;
		size_t len = n->data.scalar.length;
		if (memchr(s, '\0', len))
			return yconf_fail(y, n, "document", "a value holds a NUL character");
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && len == 1 && s[0] == '~')
			jput(b, "null", 4);
		else if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && len &&
		         plain_is_json_literal(s, len))
			jput(b, s, len);
		else
			jstring(b, s, len);
		return 0;
	}
	case YAML_SEQUENCE_NODE:
		jput(b, "[", 1);
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			if (i != n->data.sequence.items.start)
				jput(b, ", ", 2);
			if (to_json(y, yaml_document_get_node(&y->doc, *i), b, depth + 1))
				return -1;
		}
		jput(b, "]", 1);
		return 0;
	case YAML_MAPPING_NODE:
		jput(b, "{", 1);
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE)
				return yconf_fail(y, n, "document", "a key is not a scalar");
			if (p != n->data.mapping.pairs.start)
				jput(b, ", ", 2);
			jstring(b, (const char *)k->data.scalar.value, k->data.scalar.length);
			jput(b, ": ", 2);
			if (to_json(y, yaml_document_get_node(&y->doc, p->value), b, depth + 1))
				return -1;
		}
		jput(b, "}", 1);
		return 0;
	default:
		return yconf_fail(y, n, "document", "an empty node");
	}
}

int yconf_to_json(struct yconf *y, yaml_node_t *n, char *out, size_t cap)
{
	struct jbuf b = {out, 0, cap, 0};

	if (cap == 0)
		return -1;
	out[0] = '\0';
	if (to_json(y, n, &b, 0))
		return -1;
	if (b.full)
		return yconf_fail(y, n, "document", "longer than %zu bytes as JSON", cap - 1);
	return (int)b.len;
}
