/*
 * Ceremony files: YAML into struct ceremony, completely, before anything is
 * done. Every refusal names the file, the line and the field
 * ("root.yaml:12: certificate.not_after: ..."); unknown and duplicate fields
 * are errors. Only the text is read here: files the ceremony names are
 * opened later, by ceremony_run.
 */
#include "ceremony.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "lint_br.h"
#include "yconf.h"

struct pctx {
	struct yconf y;
	struct ceremony *c;
};

/* ---- names of things ---- */

static const struct {
	const char *name;
	enum cer_type type;
} types[] = {
    {"root", CER_ROOT},
    {"intermediate", CER_INTERMEDIATE},
    {"key", CER_KEY},
    {"cross-sign", CER_CROSS_SIGN},
    {"ocsp-signer", CER_OCSP_SIGNER},
    {"crl", CER_CRL},
};

static const struct {
	const char *name;
	enum cer_keytype type;
} keytypes[] = {
    {"rsa-2048", CER_KT_RSA2048}, {"rsa-3072", CER_KT_RSA3072}, {"rsa-4096", CER_KT_RSA4096},
    {"ec-p256", CER_KT_EC_P256},  {"ec-p384", CER_KT_EC_P384},
};

static const struct {
	const char *name;
	enum cer_hash hash;
} hashes[] = {
    {"sha256", CER_HASH_SHA256},
    {"sha384", CER_HASH_SHA384},
    {"sha512", CER_HASH_SHA512},
};

static const struct {
	const char *name;
	unsigned bit;
} key_usages[] = {
    {"digital-signature", CER_KU_DIGITAL_SIGNATURE},
    {"content-commitment", CER_KU_CONTENT_COMMITMENT},
    {"non-repudiation", CER_KU_CONTENT_COMMITMENT},
    {"key-encipherment", CER_KU_KEY_ENCIPHERMENT},
    {"data-encipherment", CER_KU_DATA_ENCIPHERMENT},
    {"key-agreement", CER_KU_KEY_AGREEMENT},
    {"key-cert-sign", CER_KU_KEY_CERT_SIGN},
    {"crl-sign", CER_KU_CRL_SIGN},
};

static const struct {
	const char *name;
	const char *oid;
} ekus[] = {
    {"server-auth", "1.3.6.1.5.5.7.3.1"},   {"client-auth", "1.3.6.1.5.5.7.3.2"},
    {"code-signing", "1.3.6.1.5.5.7.3.3"},  {"email-protection", "1.3.6.1.5.5.7.3.4"},
    {"time-stamping", "1.3.6.1.5.5.7.3.8"}, {"ocsp-signing", "1.3.6.1.5.5.7.3.9"},
};

static const struct {
	const char *name;
	enum cer_reason reason;
} reasons[] = {
    {"unspecified", CER_REASON_UNSPECIFIED},
    {"key-compromise", CER_REASON_KEY_COMPROMISE},
    {"ca-compromise", CER_REASON_CA_COMPROMISE},
    {"affiliation-changed", CER_REASON_AFFILIATION_CHANGED},
    {"superseded", CER_REASON_SUPERSEDED},
    {"cessation-of-operation", CER_REASON_CESSATION_OF_OPERATION},
    {"privilege-withdrawn", CER_REASON_PRIVILEGE_WITHDRAWN},
    {"aa-compromise", CER_REASON_AA_COMPROMISE},
};

/* Subject attributes: short name, NID, maximum length (RFC 5280 upper bounds). */
static const struct {
	const char *name;
	int nid;
	size_t max;
} attrs[] = {
    {"C", NID_countryName, 2},
    {"ST", NID_stateOrProvinceName, 128},
    {"L", NID_localityName, 128},
    {"O", NID_organizationName, 64},
    {"OU", NID_organizationalUnitName, 64},
    {"CN", NID_commonName, 64},
    {"serialNumber", NID_serialNumber, 64},
    {"DC", NID_domainComponent, 63},
    {"organizationIdentifier", NID_organizationIdentifier, 64},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *ceremony_type_name(enum cer_type t)
{
	for (size_t i = 0; i < N(types); i++)
		if (types[i].type == t)
			return types[i].name;
	return "?";
}

const char *ceremony_keytype_name(enum cer_keytype t)
{
	for (size_t i = 0; i < N(keytypes); i++)
		if (keytypes[i].type == t)
			return keytypes[i].name;
	return "?";
}

const char *ceremony_hash_name(enum cer_hash h)
{
	for (size_t i = 0; i < N(hashes); i++)
		if (hashes[i].hash == h)
			return hashes[i].name;
	return "?";
}

const char *ceremony_reason_name(enum cer_reason r)
{
	for (size_t i = 0; i < N(reasons); i++)
		if (reasons[i].reason == r)
			return reasons[i].name;
	return "?";
}

/* "a root", "an intermediate": for messages. */
static const char *a_type(enum cer_type t)
{
	switch (t) {
	case CER_ROOT:
		return "a root";
	case CER_INTERMEDIATE:
		return "an intermediate";
	case CER_KEY:
		return "a key";
	case CER_CROSS_SIGN:
		return "a cross-sign";
	case CER_OCSP_SIGNER:
		return "an ocsp-signer";
	case CER_CRL:
		return "a crl";
	}
	return "this";
}

void ceremony_time_str(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, n, "(time %lld)", (long long)t);
}

/* ---- scalar helpers ---- */

static int fail(struct pctx *p, yaml_node_t *n, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct pctx *p, yaml_node_t *n, const char *what, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return yconf_fail(&p->y, n, what, "%s", msg);
}

/* The value of a field that must be there. */
static yaml_node_t *need(struct pctx *p, yaml_node_t *map, const char *prefix, const char *key)
{
	yaml_node_t *n = yconf_get(&p->y, map, key);
	char what[128];

	if (!n) {
		snprintf(what, sizeof(what), "%s%s%s", prefix, *prefix ? "." : "", key);
		fail(p, map, what, "missing (required for %s ceremony)", a_type(p->c->type));
	}
	return n;
}

/* Printable text only: names and values end up in certificates and the transcript. */
static int printable_utf8(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		int extra;
		if (*u < 0x20 || *u == 0x7f)
			return 0;
		if (*u < 0x80) {
			u++;
			continue;
		}
		if ((*u & 0xe0) == 0xc0 && *u >= 0xc2)
			extra = 1;
		else if ((*u & 0xf0) == 0xe0)
			extra = 2;
		else if ((*u & 0xf8) == 0xf0 && *u <= 0xf4)
			extra = 3;
		else
			return 0;
		u++;
		for (int i = 0; i < extra; i++, u++)
			if ((*u & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static int text(struct pctx *p, yaml_node_t *n, const char *what, char *out, size_t outsz)
{
	if (yconf_str(&p->y, n, what, out, outsz) != 0)
		return -1;
	if (!out[0])
		return fail(p, n, what, "must not be empty");
	if (!printable_utf8(out))
		return fail(p, n, what, "must be printable UTF-8 text (no control characters)");
	return 0;
}

static int lookup(struct pctx *p, yaml_node_t *n, const char *what, const char *const *names,
                  size_t count, size_t *idx)
{
	char s[64], list[512] = "";

	if (yconf_str(&p->y, n, what, s, sizeof(s)) != 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (!strcmp(s, names[i])) {
			*idx = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
		         names[i]);
	}
	return fail(p, n, what, "unknown value \"%s\" (one of: %s)", s, list);
}

static int label(struct pctx *p, yaml_node_t *n, const char *what, char *out)
{
	if (yconf_str(&p->y, n, what, out, KEYD_LABEL_MAX + 1) != 0)
		return -1;
	if (!keyd_label_valid(out))
		return fail(p, n, what, "\"%s\" is not a key label (1..%d of A-Z a-z 0-9 . _ -)",
		            out, KEYD_LABEL_MAX);
	return 0;
}

static int path(struct pctx *p, yaml_node_t *n, const char *what, struct cer_path *out)
{
	size_t len;

	if (text(p, n, what, out->as_written, sizeof(out->as_written)) != 0)
		return -1;
	len = strlen(out->as_written);
	if (out->as_written[len - 1] == '/')
		return fail(p, n, what, "\"%s\" names a folder, not a file", out->as_written);
	if (out->as_written[0] == '/')
		snprintf(out->resolved, sizeof(out->resolved), "%s", out->as_written);
	else if ((size_t)snprintf(out->resolved, sizeof(out->resolved), "%s/%s", p->c->dir,
	                          out->as_written) >= sizeof(out->resolved))
		return fail(p, n, what, "path too long");
	out->line = yconf_line(n);
	return 0;
}

/* ---- times ---- */

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : d[m - 1];
}

/* Exactly YYYY-MM-DDTHH:MM:SSZ: certificates carry whole seconds in UTC. */
static int rfc3339_utc(const char *s, time_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, se;

	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return -1;
	for (int i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 &&
		    !isdigit((unsigned char)s[i]))
			return -1;
	y = atoi(s);
	mo = atoi(s + 5);
	d = atoi(s + 8);
	h = atoi(s + 11);
	mi = atoi(s + 14);
	se = atoi(s + 17);
	if (y < 1950 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || se > 59)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = timegm(&tm);
	return 0;
}

/* "+N years", "+N days", "+N hours" after base. */
static int relative(const char *s, time_t base, time_t *out)
{
	char unit[16];
	long v;
	int used = 0;
	struct tm tm;

	if (s[0] != '+' || !isdigit((unsigned char)s[1]))
		return -1;
	if (sscanf(s + 1, "%6ld %15s%n", &v, unit, &used) != 2 || s[1 + used] || v < 1)
		return -1;
	if (!gmtime_r(&base, &tm))
		return -1;
	if ((!strcmp(unit, "years") || !strcmp(unit, "year")) && v <= 100)
		tm.tm_year += (int)v;
	else if ((!strcmp(unit, "days") || !strcmp(unit, "day")) && v <= 36600)
		tm.tm_mday += (int)v;
	else if ((!strcmp(unit, "hours") || !strcmp(unit, "hour")) && v <= 24 * 36600)
		tm.tm_hour += (int)v;
	else
		return -1;
	*out = timegm(&tm);
	return 0;
}

#define T_NOW 1 /* "now" allowed */
#define T_REL 2 /* "+N years|days|hours" after base allowed */

static int when(struct pctx *p, yaml_node_t *n, const char *what, int allow, time_t base,
                time_t *out, int *line)
{
	char s[64];
	struct tm tm;

	if (yconf_str(&p->y, n, what, s, sizeof(s)) != 0)
		return -1;
	if ((allow & T_NOW) && !strcmp(s, "now"))
		*out = p->c->now;
	else if ((allow & T_REL) && s[0] == '+') {
		if (relative(s, base, out) != 0)
			return fail(p, n, what,
			            "\"%s\" is not a duration (\"+N years\", \"+N days\" or "
			            "\"+N hours\", at most 100 years)",
			            s);
	} else if (rfc3339_utc(s, out) != 0) {
		return fail(p, n, what,
		            "\"%s\" is not a UTC time as YYYY-MM-DDTHH:MM:SSZ (RFC 3339, whole "
		            "seconds, 'Z')%s%s",
		            s, allow & T_NOW ? ", or \"now\"" : "",
		            allow & T_REL ? ", or a duration such as \"+10 years\"" : "");
	}
	if (!gmtime_r(out, &tm) || tm.tm_year + 1900 > 9999)
		return fail(p, n, what, "\"%s\" is after the year 9999", s);
	if (line)
		*line = yconf_line(n);
	return 0;
}

/* ---- structured values ---- */

static int valid_oid(const char *s)
{
	const char *q = s;
	int arcs = 0;

	if (!(s[0] >= '0' && s[0] <= '2') || s[1] != '.')
		return 0;
	while (*q) {
		const char *start = q;
		while (isdigit((unsigned char)*q))
			q++;
		if (q == start || q - start > 18 || (*start == '0' && q - start > 1))
			return 0;
		arcs++;
		if (*q == '.')
			q++;
		else if (*q)
			return 0;
		if (*q == 0 && q[-1] == '.')
			return 0;
	}
	return arcs >= 2;
}

static int dns_name(const char *s, int allow_dot)
{
	size_t len, start = 0;

	if (allow_dot && s[0] == '.')
		s++;
	len = strlen(s);
	if (len == 0 || len > 253)
		return 0;
	/* LDH labels of 1..63 characters, no hyphen at either end. */
	for (size_t i = 0; i <= len; i++) {
		if (s[i] == '.' || s[i] == 0) {
			size_t lab = i - start;
			if (lab == 0 || lab > 63 || s[start] == '-' || s[i - 1] == '-')
				return 0;
			start = i + 1;
		} else if (!isalnum((unsigned char)s[i]) && s[i] != '-') {
			return 0;
		}
	}
	return 1;
}

static int url(struct pctx *p, yaml_node_t *n, const char *what, int allow_https,
               struct cer_url *out)
{
	const char *rest, *end;
	char host[256];
	size_t hl;

	if (yconf_str(&p->y, n, what, out->url, sizeof(out->url)) != 0)
		return -1;
	out->line = yconf_line(n);
	if (!strncmp(out->url, "http://", 7))
		rest = out->url + 7;
	else if (allow_https && !strncmp(out->url, "https://", 8))
		rest = out->url + 8;
	else
		return fail(p, n, what,
		            "\"%s\" is not a URL this field accepts: it must begin with %s",
		            out->url,
		            allow_https ? "http:// or https://"
		                        : "http:// (RFC 5280: relying parties fetch CRLs, OCSP and "
		                          "CA certificates over plain HTTP)");
	for (const char *q = out->url; *q; q++)
		if (*q <= 0x20 || *q >= 0x7f || *q == '"' || *q == '<' || *q == '>' || *q == '\\')
			return fail(p, n, what, "\"%s\" is not a URL: character %s at position %d",
			            out->url, *q == ' ' ? "' '" : "not allowed",
			            (int)(q - out->url) + 1);
	end = rest + strcspn(rest, "/?#");
	hl = (size_t)(end - rest);
	if (hl == 0 || hl >= sizeof(host))
		return fail(p, n, what, "\"%s\" is not a URL: no host", out->url);
	memcpy(host, rest, hl);
	host[hl] = 0;
	if (host[0] == '[') {
		char *close = strchr(host, ']');
		struct in6_addr a6;
		if (!close)
			return fail(p, n, what, "\"%s\" is not a URL: bad IPv6 host", out->url);
		*close = 0;
		if (inet_pton(AF_INET6, host + 1, &a6) != 1 || (close[1] && close[1] != ':'))
			return fail(p, n, what, "\"%s\" is not a URL: bad IPv6 host", out->url);
	} else {
		char *colon = strchr(host, ':');
		if (colon) {
			char *e;
			long port = strtol(colon + 1, &e, 10);
			if (!colon[1] || *e || port < 1 || port > 65535)
				return fail(p, n, what, "\"%s\" is not a URL: bad port", out->url);
			*colon = 0;
		}
		if (!dns_name(host, 0))
			return fail(p, n, what, "\"%s\" is not a URL: bad host name \"%s\"",
			            out->url, host);
	}
	return 0;
}

static int url_list(struct pctx *p, yaml_node_t *n, const char *what, int allow_https,
                    struct cer_url *out, size_t max, size_t *count)
{
	size_t len = yconf_seq_len(n);
	char iw[160];

	if (!yconf_is_seq(n) || len == 0)
		return fail(p, n, what, "expected a list of URLs");
	if (len > max)
		return fail(p, n, what, "at most %zu URLs", max);
	for (size_t i = 0; i < len; i++) {
		snprintf(iw, sizeof(iw), "%s[%zu]", what, i);
		if (url(p, yconf_seq_item(&p->y, n, i), iw, allow_https, &out[i]) != 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(out[i].url, out[j].url))
				return fail(p, yconf_seq_item(&p->y, n, i), iw,
				            "\"%s\" is listed twice", out[i].url);
	}
	*count = len;
	return 0;
}

/* A distinguished name: a list of one-attribute maps, in order ("- CN: Example"). */
static int dname(struct pctx *p, yaml_node_t *n, const char *what, struct cer_name *out)
{
	size_t len = yconf_seq_len(n);
	char iw[160];

	out->line = yconf_line(n);
	if (!yconf_is_seq(n) || len == 0)
		return fail(p, n, what,
		            "expected a list of attributes in order, e.g. \"- O: Example\" then "
		            "\"- CN: Example Root CA\"");
	if (len > CER_MAX_RDNS)
		return fail(p, n, what, "at most %d attributes", CER_MAX_RDNS);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = yconf_seq_item(&p->y, n, i);
		yaml_node_pair_t *pair;
		yaml_node_t *k, *v;
		struct cer_rdn *r = &out->rdn[i];
		const char *ks;
		size_t a, vl;

		snprintf(iw, sizeof(iw), "%s[%zu]", what, i);
		if (!yconf_is_map(item) ||
		    item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
			return fail(
			    p, item, iw,
			    "each attribute is a one-entry mapping such as \"- CN: Example\"");
		pair = item->data.mapping.pairs.start;
		k = yaml_document_get_node(&p->y.doc, pair->key);
		v = yaml_document_get_node(&p->y.doc, pair->value);
		ks = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
		for (a = 0; a < N(attrs); a++)
			if (!strcmp(ks, attrs[a].name))
				break;
		if (a == N(attrs))
			return fail(p, item, iw,
			            "unknown attribute \"%s\" (one of: C, ST, L, O, OU, CN, "
			            "serialNumber, DC, organizationIdentifier)",
			            ks);
		snprintf(iw, sizeof(iw), "%s[%zu].%s", what, i, attrs[a].name);
		if (text(p, v, iw, r->value, sizeof(r->value)) != 0)
			return -1;
		vl = strlen(r->value);
		if (attrs[a].nid == NID_countryName &&
		    (vl != 2 || !isupper((unsigned char)r->value[0]) ||
		     !isupper((unsigned char)r->value[1])))
			return fail(p, v, iw, "\"%s\" is not a two-letter ISO 3166 country code",
			            r->value);
		if (vl > attrs[a].max)
			return fail(p, v, iw, "longer than %zu characters (RFC 5280 upper bound)",
			            attrs[a].max);
		if (attrs[a].nid == NID_domainComponent && !dns_name(r->value, 0))
			return fail(p, v, iw, "\"%s\" is not a domain label", r->value);
		if (attrs[a].nid == NID_serialNumber)
			for (const char *q = r->value; *q; q++)
				if (!isalnum((unsigned char)*q) && !strchr(" '()+,-./:=?", *q))
					return fail(p, v, iw,
					            "must be PrintableString characters "
					            "(A-Z a-z 0-9 space ' ( ) + , - . / : = ?)");
		r->nid = attrs[a].nid;
		r->line = yconf_line(v);
	}
	out->n = len;
	return 0;
}

static int cidr(const char *s, uint8_t *out, size_t *out_len)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	char *e;
	long prefix;
	int v6, bytes;

	if (!slash || (size_t)(slash - s) >= sizeof(addr) || !slash[1])
		return -1;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = 0;
	v6 = strchr(addr, ':') != NULL;
	bytes = v6 ? 16 : 4;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, out) != 1)
		return -1;
	errno = 0;
	prefix = strtol(slash + 1, &e, 10);
	if (errno || *e || !isdigit((unsigned char)slash[1]) || prefix < 0 || prefix > bytes * 8)
		return -1;
	for (int i = 0; i < bytes; i++) {
		int bits = (int)prefix - i * 8;
		uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
		if (out[i] & ~m)
			return -2; /* host bits set: almost certainly a typo */
		out[bytes + i] = m;
	}
	*out_len = (size_t)bytes * 2;
	return 0;
}

static int subtree(struct pctx *p, yaml_node_t *n, const char *what, struct cer_subtree *out)
{
	const char *help = "expected \"dns:NAME\", \"email:NAME\", \"ip:ADDRESS/PREFIX\" or a "
	                   "mapping \"dir:\" with a distinguished name";

	out->line = yconf_line(n);
	if (yconf_is_map(n)) {
		static const char *const allowed[] = {"dir", NULL};
		char dw[200];
		if (yconf_check_map(&p->y, n, what, allowed) != 0)
			return -1;
		snprintf(dw, sizeof(dw), "%s.dir", what);
		out->kind = CER_GN_DIR;
		snprintf(out->text, sizeof(out->text), "dir");
		return dname(p, need(p, n, what, "dir"), dw, &out->dir);
	}
	if (n->type != YAML_SCALAR_NODE)
		return fail(p, n, what, "%s", help);
	if (text(p, n, what, out->text, sizeof(out->text)) != 0)
		return -1;
	if (!strncmp(out->text, "dns:", 4)) {
		out->kind = CER_GN_DNS;
		if (!dns_name(out->text + 4, 0))
			return fail(p, n, what, "\"%s\" is not a DNS name", out->text + 4);
	} else if (!strncmp(out->text, "email:", 6)) {
		const char *v = out->text + 6, *at = strchr(v, '@');
		out->kind = CER_GN_EMAIL;
		if (at ? at == v || strchr(at + 1, '@') || !dns_name(at + 1, 0) : !dns_name(v, 1))
			return fail(
			    p, n, what,
			    "\"%s\" is not a mailbox, host or domain (.example.com) for email "
			    "constraints",
			    v);
	} else if (!strncmp(out->text, "ip:", 3)) {
		int r = cidr(out->text + 3, out->ip, &out->ip_len);
		out->kind = CER_GN_IP;
		if (r == -2)
			return fail(p, n, what, "\"%s\" has bits set beyond its prefix length",
			            out->text + 3);
		if (r != 0)
			return fail(p, n, what,
			            "\"%s\" is not an address range as ADDRESS/PREFIX (e.g. "
			            "10.0.0.0/8 or 2001:db8::/32)",
			            out->text + 3);
	} else {
		return fail(p, n, what, "%s", help);
	}
	return 0;
}

static int subtrees(struct pctx *p, yaml_node_t *n, const char *what, struct cer_subtree *out,
                    size_t *count)
{
	size_t len = yconf_seq_len(n);
	char iw[160];

	if (!yconf_is_seq(n) || len == 0)
		return fail(p, n, what, "expected a list of names");
	if (len > CER_MAX_SUBTREES)
		return fail(p, n, what, "at most %d names", CER_MAX_SUBTREES);
	for (size_t i = 0; i < len; i++) {
		snprintf(iw, sizeof(iw), "%s[%zu]", what, i);
		if (subtree(p, yconf_seq_item(&p->y, n, i), iw, &out[i]) != 0)
			return -1;
	}
	*count = len;
	return 0;
}

/* ---- blocks ---- */

static int is_ca(enum cer_type t)
{
	return t == CER_ROOT || t == CER_INTERMEDIATE || t == CER_CROSS_SIGN;
}

static int keytype_is_ec(enum cer_keytype t)
{
	return t == CER_KT_EC_P256 || t == CER_KT_EC_P384;
}

static int keytype(struct pctx *p, yaml_node_t *n)
{
	const char *names[N(keytypes)];
	size_t i;

	for (i = 0; i < N(keytypes); i++)
		names[i] = keytypes[i].name;
	if (lookup(p, n, "key.type", names, N(keytypes), &i) != 0)
		return -1;
	p->c->key.type = keytypes[i].type;
	p->c->key.line_type = yconf_line(n);
	return 0;
}

static int parse_key(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"label", "type", "existing", "csr", NULL};
	struct ceremony *c = p->c;
	yaml_node_t *n;

	if (yconf_check_map(&p->y, m, "key", allowed) != 0)
		return -1;
	c->key.line = yconf_line(m);
	if ((n = yconf_get(&p->y, m, "csr"))) {
		if (c->type != CER_INTERMEDIATE && c->type != CER_OCSP_SIGNER)
			return fail(p, n, "key.csr",
			            "only intermediate and ocsp-signer ceremonies certify a key "
			            "from a CSR");
		if (yconf_get(&p->y, m, "label") || yconf_get(&p->y, m, "existing"))
			return fail(p, n, "key.csr",
			            "a key named by its CSR lives on another token: give csr or "
			            "label (with existing), not both");
		if (path(p, n, "key.csr", &c->key.csr) != 0)
			return -1;
		c->key.has_csr = 1;
		if ((n = yconf_get(&p->y, m, "type")) && keytype(p, n) != 0)
			return -1;
		return 0;
	}
	if ((n = yconf_get(&p->y, m, "existing"))) {
		if (yconf_bool(&p->y, n, "key.existing", &c->key.existing) != 0)
			return -1;
		if (c->key.existing && c->type == CER_KEY)
			return fail(
			    p, n, "key.existing",
			    "a key ceremony makes a new key; an existing key's public half is "
			    "what 'hsmca keyd pubkey' prints");
	}
	if (!(n = need(p, m, "key", "label")) || label(p, n, "key.label", c->key.label) != 0)
		return -1;
	c->key.line_label = yconf_line(n);
	n = yconf_get(&p->y, m, "type");
	if (!n && !c->key.existing)
		return fail(p, m, "key.type", "missing (required unless the key is existing)");
	if (n && keytype(p, n) != 0)
		return -1;
	return 0;
}

static int parse_issuer(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"label", "certificate", NULL};
	struct ceremony *c = p->c;
	yaml_node_t *n;

	if (yconf_check_map(&p->y, m, "issuer", allowed) != 0)
		return -1;
	c->issuer.line = yconf_line(m);
	if (!(n = need(p, m, "issuer", "label")) || label(p, n, "issuer.label", c->issuer.label))
		return -1;
	c->issuer.line_label = yconf_line(n);
	if (!(n = need(p, m, "issuer", "certificate")) ||
	    path(p, n, "issuer.certificate", &c->issuer.certificate) != 0)
		return -1;
	return 0;
}

static int parse_existing_ca(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"certificate", "label", NULL};
	struct ceremony *c = p->c;
	yaml_node_t *n;

	if (yconf_check_map(&p->y, m, "existing_ca", allowed) != 0)
		return -1;
	c->existing_ca.line = yconf_line(m);
	if (!(n = need(p, m, "existing_ca", "certificate")) ||
	    path(p, n, "existing_ca.certificate", &c->existing_ca.certificate) != 0)
		return -1;
	if ((n = yconf_get(&p->y, m, "label"))) {
		if (label(p, n, "existing_ca.label", c->existing_ca.label) != 0)
			return -1;
		c->existing_ca.line_label = yconf_line(n);
	}
	return 0;
}

static int parse_signature(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"hash", "padding", NULL};
	static const char *const pads[] = {"pkcs1", "pss"};
	struct ceremony *c = p->c;
	const char *names[N(hashes)];
	yaml_node_t *n;
	size_t i;

	if (yconf_check_map(&p->y, m, "signature", allowed) != 0)
		return -1;
	c->sig.line = yconf_line(m);
	for (i = 0; i < N(hashes); i++)
		names[i] = hashes[i].name;
	if (!(n = need(p, m, "signature", "hash")) ||
	    lookup(p, n, "signature.hash", names, N(hashes), &i) != 0)
		return -1;
	c->sig.hash = hashes[i].hash;
	c->sig.line_hash = yconf_line(n);
	if ((n = yconf_get(&p->y, m, "padding"))) {
		if (lookup(p, n, "signature.padding", pads, 2, &i) != 0)
			return -1;
		c->sig.padding = i == 0 ? CER_PAD_PKCS1 : CER_PAD_PSS;
		c->sig.line_padding = yconf_line(n);
		/* A root signs itself: its key type is known now. */
		if (c->type == CER_ROOT && keytype_is_ec(c->key.type))
			return fail(p, n, "signature.padding",
			            "padding applies to RSA keys only; %s is an EC key",
			            ceremony_keytype_name(c->key.type));
	}
	return 0;
}

static int parse_key_usage(struct pctx *p, yaml_node_t *n)
{
	struct cer_cert_fields *f = &p->c->cert;
	size_t len = yconf_seq_len(n);
	const char *names[N(key_usages)];
	char iw[64];

	if (!yconf_is_seq(n) || len == 0)
		return fail(p, n, "certificate.key_usage",
		            "expected a list such as [key-cert-sign, crl-sign]");
	for (size_t i = 0; i < N(key_usages); i++)
		names[i] = key_usages[i].name;
	f->line_key_usage = yconf_line(n);
	for (size_t i = 0; i < len; i++) {
		size_t k;
		snprintf(iw, sizeof(iw), "certificate.key_usage[%zu]", i);
		if (lookup(p, yconf_seq_item(&p->y, n, i), iw, names, N(key_usages), &k) != 0)
			return -1;
		if (f->key_usage & key_usages[k].bit)
			return fail(p, yconf_seq_item(&p->y, n, i), iw, "\"%s\" is listed twice",
			            key_usages[k].name);
		f->key_usage |= key_usages[k].bit;
	}
	return 0;
}

static int parse_eku(struct pctx *p, yaml_node_t *n)
{
	struct cer_cert_fields *f = &p->c->cert;
	size_t len = yconf_seq_len(n);
	char iw[64], s[CER_OID_MAX];

	if (!yconf_is_seq(n) || len == 0)
		return fail(p, n, "certificate.extended_key_usage",
		            "expected a list such as [ocsp-signing]");
	if (len > CER_MAX_EKUS)
		return fail(p, n, "certificate.extended_key_usage", "at most %d entries",
		            CER_MAX_EKUS);
	f->line_eku = yconf_line(n);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *it = yconf_seq_item(&p->y, n, i);
		const char *oid = NULL;
		snprintf(iw, sizeof(iw), "certificate.extended_key_usage[%zu]", i);
		if (yconf_str(&p->y, it, iw, s, sizeof(s)) != 0)
			return -1;
		for (size_t k = 0; k < N(ekus); k++)
			if (!strcmp(s, ekus[k].name))
				oid = ekus[k].oid;
		if (!oid && valid_oid(s))
			oid = s;
		if (!oid)
			return fail(
			    p, it, iw,
			    "unknown value \"%s\" (server-auth, client-auth, code-signing, "
			    "email-protection, time-stamping, ocsp-signing, or a dotted OID)",
			    s);
		if (!strcmp(oid, "2.5.29.37.0"))
			return fail(p, it, iw,
			            "anyExtendedKeyUsage would let this certificate be used for "
			            "anything; list the purposes");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(f->eku[j], oid))
				return fail(p, it, iw, "\"%s\" is listed twice", s);
		snprintf(f->eku[i], sizeof(f->eku[i]), "%s", oid);
	}
	f->n_eku = len;
	return 0;
}

static int parse_policies(struct pctx *p, yaml_node_t *n)
{
	static const char *const allowed[] = {"oid", "cps", NULL};
	struct cer_cert_fields *f = &p->c->cert;
	size_t len = yconf_seq_len(n);
	char iw[64], fw[80];

	if (!yconf_is_seq(n) || len == 0)
		return fail(p, n, "certificate.policies",
		            "expected a list of policies, each \"- oid: 1.2.3\" with an optional "
		            "\"cps: URL\"");
	if (len > CER_MAX_POLICIES)
		return fail(p, n, "certificate.policies", "at most %d policies", CER_MAX_POLICIES);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *it = yconf_seq_item(&p->y, n, i), *v;
		struct cer_policy *pol = &f->policies[i];
		snprintf(iw, sizeof(iw), "certificate.policies[%zu]", i);
		if (yconf_check_map(&p->y, it, iw, allowed) != 0)
			return -1;
		pol->line = yconf_line(it);
		snprintf(fw, sizeof(fw), "%s.oid", iw);
		if (!(v = yconf_get(&p->y, it, "oid")))
			return fail(p, it, fw, "missing");
		if (yconf_str(&p->y, v, fw, pol->oid, sizeof(pol->oid)) != 0)
			return -1;
		if (!valid_oid(pol->oid))
			return fail(p, v, fw, "\"%s\" is not a dotted OID such as 2.23.140.1.2.1",
			            pol->oid);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(f->policies[j].oid, pol->oid))
				return fail(p, v, fw, "policy %s is listed twice", pol->oid);
		if ((v = yconf_get(&p->y, it, "cps"))) {
			struct cer_url u;
			snprintf(fw, sizeof(fw), "%s.cps", iw);
			if (url(p, v, fw, 1, &u) != 0)
				return -1;
			snprintf(pol->cps, sizeof(pol->cps), "%s", u.url);
		}
	}
	f->n_policies = len;
	return 0;
}

static int parse_name_constraints(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"permitted", "excluded", NULL};
	struct cer_cert_fields *f = &p->c->cert;
	yaml_node_t *n;

	if (yconf_check_map(&p->y, m, "certificate.name_constraints", allowed) != 0)
		return -1;
	f->line_name_constraints = yconf_line(m);
	if ((n = yconf_get(&p->y, m, "permitted")) &&
	    subtrees(p, n, "certificate.name_constraints.permitted", f->permitted,
	             &f->n_permitted) != 0)
		return -1;
	if ((n = yconf_get(&p->y, m, "excluded")) &&
	    subtrees(p, n, "certificate.name_constraints.excluded", f->excluded, &f->n_excluded) !=
	        0)
		return -1;
	if (!f->n_permitted && !f->n_excluded)
		return fail(p, m, "certificate.name_constraints",
		            "give \"permitted\", \"excluded\" or both");
	return 0;
}

/* A field of the certificate block that this kind of certificate must not carry. */
static int refuse(struct pctx *p, yaml_node_t *m, const char *key, const char *why)
{
	yaml_node_t *n = yconf_get(&p->y, m, key);
	char what[80];

	if (!n)
		return 0;
	snprintf(what, sizeof(what), "certificate.%s", key);
	return fail(p, n, what, "%s", why);
}

static int parse_certificate(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"subject",
	                                      "not_before",
	                                      "not_after",
	                                      "key_usage",
	                                      "extended_key_usage",
	                                      "path_length",
	                                      "policies",
	                                      "crl_distribution_points",
	                                      "ocsp_urls",
	                                      "ca_issuers_urls",
	                                      "name_constraints",
	                                      NULL};
	struct ceremony *c = p->c;
	struct cer_cert_fields *f = &c->cert;
	yaml_node_t *n;
	long v;

	if (yconf_check_map(&p->y, m, "certificate", allowed) != 0)
		return -1;
	f->line = yconf_line(m);

	if (c->type == CER_CROSS_SIGN) {
		if (refuse(p, m, "subject",
		           "a cross-certificate carries the existing CA's subject unchanged; "
		           "remove this field") != 0)
			return -1;
	} else {
		if (!(n = need(p, m, "certificate", "subject")) ||
		    dname(p, n, "certificate.subject", &f->subject) != 0)
			return -1;
	}

	if (!(n = need(p, m, "certificate", "not_before")) ||
	    when(p, n, "certificate.not_before", T_NOW, 0, &f->not_before, &f->line_not_before))
		return -1;
	if (!(n = need(p, m, "certificate", "not_after")) ||
	    when(p, n, "certificate.not_after", T_REL, f->not_before, &f->not_after,
	         &f->line_not_after))
		return -1;
	if (f->not_after <= f->not_before) {
		char a[32], b[32];
		ceremony_time_str(f->not_after, a, sizeof(a));
		ceremony_time_str(f->not_before, b, sizeof(b));
		return fail(p, n, "certificate.not_after", "%s is not after not_before (%s)", a, b);
	}
	if (f->not_after <= c->now) {
		char a[32];
		ceremony_time_str(f->not_after, a, sizeof(a));
		return fail(p, n, "certificate.not_after",
		            "%s has passed: the certificate would be expired", a);
	}

	if (!(n = need(p, m, "certificate", "key_usage")) || parse_key_usage(p, n) != 0)
		return -1;
	if (is_ca(c->type) && !(f->key_usage & CER_KU_KEY_CERT_SIGN))
		return fail(p, n, "certificate.key_usage",
		            "a CA certificate needs key-cert-sign (RFC 5280 4.2.1.3)");
	if (c->type == CER_OCSP_SIGNER) {
		if (!(f->key_usage & CER_KU_DIGITAL_SIGNATURE))
			return fail(p, n, "certificate.key_usage",
			            "an OCSP signer needs digital-signature");
		if (f->key_usage & (CER_KU_KEY_CERT_SIGN | CER_KU_CRL_SIGN))
			return fail(p, n, "certificate.key_usage",
			            "an OCSP signer is not a CA: no key-cert-sign or crl-sign");
	}
	if (c->has_key && keytype_is_ec(c->key.type) &&
	    (f->key_usage & (CER_KU_KEY_ENCIPHERMENT | CER_KU_DATA_ENCIPHERMENT)))
		return fail(p, n, "certificate.key_usage",
		            "an EC key (%s) cannot encipher: remove key-encipherment and "
		            "data-encipherment",
		            ceremony_keytype_name(c->key.type));

	if ((n = yconf_get(&p->y, m, "extended_key_usage"))) {
		if (c->type == CER_ROOT)
			return fail(p, n, "certificate.extended_key_usage",
			            "a root certificate carries no extended key usage (CA/Browser "
			            "Forum BR 7.1.2.1); constrain the intermediates instead");
		if (parse_eku(p, n) != 0)
			return -1;
	}
	if (c->type == CER_OCSP_SIGNER) {
		int found = 0;
		for (size_t i = 0; i < f->n_eku; i++)
			found |= !strcmp(f->eku[i], "1.3.6.1.5.5.7.3.9");
		if (!found)
			return fail(p, n ? n : m, "certificate.extended_key_usage",
			            "an OCSP signer needs ocsp-signing (RFC 6960 4.2.2.2)");
	}

	if ((n = yconf_get(&p->y, m, "path_length"))) {
		if (!is_ca(c->type))
			return fail(p, n, "certificate.path_length",
			            "path length applies to CA certificates only; an OCSP signer "
			            "is not a CA");
		if (yconf_long(&p->y, n, "certificate.path_length", 0, 32, &v) != 0)
			return -1;
		f->has_path_length = 1;
		f->path_length = v;
		f->line_path_length = yconf_line(n);
	}
	if ((n = yconf_get(&p->y, m, "policies")) && parse_policies(p, n) != 0)
		return -1;
	if (c->type == CER_ROOT) {
		const char *why = "a self-signed root has no issuer to point to; put revocation "
		                  "and issuer URLs on the certificates it signs";
		if (refuse(p, m, "crl_distribution_points", why) ||
		    refuse(p, m, "ocsp_urls", why) || refuse(p, m, "ca_issuers_urls", why))
			return -1;
	}
	if ((n = yconf_get(&p->y, m, "crl_distribution_points")) &&
	    url_list(p, n, "certificate.crl_distribution_points", 0, f->crl_dp, CER_MAX_URLS,
	             &f->n_crl_dp) != 0)
		return -1;
	if ((n = yconf_get(&p->y, m, "ocsp_urls")) &&
	    url_list(p, n, "certificate.ocsp_urls", 0, f->ocsp, CER_MAX_URLS, &f->n_ocsp) != 0)
		return -1;
	if ((n = yconf_get(&p->y, m, "ca_issuers_urls")) &&
	    url_list(p, n, "certificate.ca_issuers_urls", 0, f->ca_issuers, CER_MAX_URLS,
	             &f->n_ca_issuers) != 0)
		return -1;
	if ((n = yconf_get(&p->y, m, "name_constraints"))) {
		if (c->type == CER_ROOT)
			return fail(p, n, "certificate.name_constraints",
			            "path validation does not apply a trust anchor's name "
			            "constraints (RFC 5280 6.1); put them on an intermediate");
		if (!is_ca(c->type))
			return fail(p, n, "certificate.name_constraints",
			            "name constraints apply to CA certificates only");
		if (parse_name_constraints(p, n) != 0)
			return -1;
	}
	return 0;
}

static int parse_revoked(struct pctx *p, yaml_node_t *n)
{
	static const char *const allowed[] = {"certificate", "serial", "revoked_at", "reason",
	                                      NULL};
	struct cer_crl_fields *f = &p->c->crl;
	size_t len = yconf_seq_len(n);
	const char *names[N(reasons)];
	char iw[64], fw[96];

	if (!yconf_is_seq(n))
		return fail(p, n, "crl.revoked", "expected a list of revoked certificates");
	if (len > CER_MAX_REVOKED)
		return fail(p, n, "crl.revoked", "at most %d entries", CER_MAX_REVOKED);
	for (size_t i = 0; i < N(reasons); i++)
		names[i] = reasons[i].name;
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *it = yconf_seq_item(&p->y, n, i), *cert, *serial, *v;
		struct cer_revoked *r = &f->revoked[i];
		size_t k;

		snprintf(iw, sizeof(iw), "crl.revoked[%zu]", i);
		if (yconf_check_map(&p->y, it, iw, allowed) != 0)
			return -1;
		r->line = yconf_line(it);
		cert = yconf_get(&p->y, it, "certificate");
		serial = yconf_get(&p->y, it, "serial");
		if (!cert == !serial)
			return fail(p, it, iw,
			            "give either \"certificate: FILE\" (preferred: it is checked "
			            "against the issuer) or \"serial: HEX\"");
		if (cert) {
			snprintf(fw, sizeof(fw), "%s.certificate", iw);
			if (path(p, cert, fw, &r->certificate) != 0)
				return -1;
		} else {
			BIGNUM *bn = NULL;
			int bad;
			snprintf(fw, sizeof(fw), "%s.serial", iw);
			if (yconf_str(&p->y, serial, fw, r->serial_hex, sizeof(r->serial_hex)) != 0)
				return -1;
			bad = strspn(r->serial_hex, "0123456789abcdefABCDEF") !=
			          strlen(r->serial_hex) ||
			      !r->serial_hex[0] || !BN_hex2bn(&bn, r->serial_hex) ||
			      BN_is_zero(bn) || BN_num_bits(bn) > 159;
			BN_free(bn);
			if (bad)
				return fail(
				    p, serial, fw,
				    "\"%s\" is not a certificate serial: positive hex, at most "
				    "20 octets, no colons",
				    r->serial_hex);
		}
		snprintf(fw, sizeof(fw), "%s.revoked_at", iw);
		if (!(v = yconf_get(&p->y, it, "revoked_at")))
			return fail(p, it, fw, "missing");
		if (when(p, v, fw, T_NOW, 0, &r->revoked_at, NULL) != 0)
			return -1;
		if (r->revoked_at > f->this_update)
			return fail(p, v, fw, "is after the CRL's this_update");
		snprintf(fw, sizeof(fw), "%s.reason", iw);
		if (!(v = yconf_get(&p->y, it, "reason")))
			return fail(p, it, fw,
			            "missing (e.g. key-compromise, superseded, "
			            "cessation-of-operation)");
		if (lookup(p, v, fw, names, N(reasons), &k) != 0)
			return -1;
		r->reason = reasons[k].reason;
		for (size_t j = 0; j < i; j++) {
			struct cer_revoked *o = &f->revoked[j];
			if ((r->serial_hex[0] && !strcasecmp(o->serial_hex, r->serial_hex)) ||
			    (r->certificate.resolved[0] &&
			     !strcmp(o->certificate.resolved, r->certificate.resolved)))
				return fail(p, it, iw, "revokes the same certificate as entry %zu",
				            j);
		}
	}
	f->n_revoked = len;
	return 0;
}

static int parse_crl(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"number", "this_update", "next_update", "revoked",
	                                      NULL};
	struct cer_crl_fields *f = &p->c->crl;
	yaml_node_t *n;
	BIGNUM *bn = NULL;
	int bad;

	if (yconf_check_map(&p->y, m, "crl", allowed) != 0)
		return -1;
	f->line = yconf_line(m);
	if (!(n = need(p, m, "crl", "number")) ||
	    yconf_str(&p->y, n, "crl.number", f->number, sizeof(f->number)) != 0)
		return -1;
	bad = !f->number[0] || strspn(f->number, "0123456789") != strlen(f->number) ||
	      (f->number[0] == '0' && f->number[1]) || !BN_dec2bn(&bn, f->number) ||
	      BN_num_bits(bn) > 159;
	BN_free(bn);
	if (bad)
		return fail(p, n, "crl.number",
		            "\"%s\" is not a CRL number: a decimal integer of at most 20 octets "
		            "(RFC 5280 5.2.3), one more than the last CRL's",
		            f->number);
	if (!(n = need(p, m, "crl", "this_update")) ||
	    when(p, n, "crl.this_update", T_NOW, 0, &f->this_update, &f->line_this_update))
		return -1;
	if (!(n = need(p, m, "crl", "next_update")) ||
	    when(p, n, "crl.next_update", T_REL, f->this_update, &f->next_update,
	         &f->line_next_update))
		return -1;
	if (f->next_update <= f->this_update)
		return fail(p, n, "crl.next_update", "is not after this_update");
	if (f->next_update <= p->c->now)
		return fail(p, n, "crl.next_update", "has passed: the CRL would be stale at once");
	if ((n = yconf_get(&p->y, m, "revoked")) && parse_revoked(p, n) != 0)
		return -1;
	return 0;
}

static int parse_outputs(struct pctx *p, yaml_node_t *m)
{
	static const char *const allowed[] = {"certificate", "public_key", "csr",
	                                      "crl",         "transcript", NULL};
	struct ceremony *c = p->c;
	/* wanted: 1 required, 2 optional, 0 refused */
	struct {
		const char *key;
		struct cer_path *dst;
		int wanted;
	} outs[] = {
	    {"certificate", &c->out.certificate, c->type != CER_KEY && c->type != CER_CRL},
	    {"public_key", &c->out.public_key, c->type == CER_KEY},
	    {"csr", &c->out.csr, c->type == CER_KEY ? 2 : 0},
	    {"crl", &c->out.crl, c->type == CER_CRL},
	};
	struct cer_path *all[5] = {&c->out.certificate, &c->out.public_key, &c->out.csr,
	                           &c->out.crl, &c->out.transcript};
	yaml_node_t *n;
	char what[64];

	if (yconf_check_map(&p->y, m, "outputs", allowed) != 0)
		return -1;
	c->out.line = yconf_line(m);
	for (size_t i = 0; i < N(outs); i++) {
		snprintf(what, sizeof(what), "outputs.%s", outs[i].key);
		n = yconf_get(&p->y, m, outs[i].key);
		if (!n && outs[i].wanted == 1)
			return fail(p, m, what, "missing (required for %s ceremony)",
			            a_type(c->type));
		if (n && !outs[i].wanted)
			return fail(p, n, what, "%s ceremony does not make this output",
			            a_type(c->type));
		if (n && path(p, n, what, outs[i].dst) != 0)
			return -1;
	}
	if ((n = yconf_get(&p->y, m, "transcript"))) {
		if (path(p, n, "outputs.transcript", &c->out.transcript) != 0)
			return -1;
	} else {
		/* Next to the first output, named for the ceremony file. */
		const char *first = c->out.certificate.resolved[0]  ? c->out.certificate.resolved
		                    : c->out.public_key.resolved[0] ? c->out.public_key.resolved
		                                                    : c->out.crl.resolved;
		const char *slash = strrchr(first, '/');
		int dl = slash ? (int)(slash - first) : 1;
		snprintf(c->out.transcript.resolved, sizeof(c->out.transcript.resolved),
		         "%.*s/%s.transcript.txt", dl, slash ? first : ".", c->stem);
		snprintf(c->out.transcript.as_written, sizeof(c->out.transcript.as_written),
		         "%s.transcript.txt (default)", c->stem);
		c->out.transcript.line = c->out.line;
	}
	for (size_t i = 0; i < 5; i++)
		for (size_t j = 0; j < i; j++)
			if (all[i]->resolved[0] && !strcmp(all[i]->resolved, all[j]->resolved))
				return fail(p, m, "outputs", "\"%s\" is named for two outputs",
				            all[i]->as_written);
	return 0;
}

/* ---- the file ---- */

/* Which top-level blocks each kind of ceremony has: 1 required, 0 refused. */
struct shape {
	enum cer_type type;
	int key, issuer, existing_ca, signature, certificate, crl;
};

static const struct shape shapes[] = {
    {CER_ROOT, 1, 0, 0, 1, 1, 0},        {CER_INTERMEDIATE, 1, 1, 0, 1, 1, 0},
    {CER_KEY, 1, 0, 0, 0, 0, 0},         {CER_CROSS_SIGN, 0, 1, 1, 1, 1, 0},
    {CER_OCSP_SIGNER, 1, 1, 0, 1, 1, 0}, {CER_CRL, 0, 1, 0, 1, 0, 1},
};

static int block(struct pctx *p, yaml_node_t *root, const char *key, int wanted,
                 int (*parse)(struct pctx *, yaml_node_t *), int *has)
{
	yaml_node_t *n = yconf_get(&p->y, root, key);

	if (!n && wanted)
		return fail(p, root, key, "missing (required for %s ceremony)", a_type(p->c->type));
	if (n && !wanted)
		return fail(p, n, key, "does not apply to %s ceremony", a_type(p->c->type));
	if (!n)
		return 0;
	*has = 1;
	return parse(p, n);
}

/* br_exceptions: [{rule: br_..., reason: TEXT}, ...]: the BR rules (lint_br.h) a private
 * PKI's CA certificate may break, each once, each with a reason for the transcript. */
static int parse_br_exceptions(struct pctx *p, yaml_node_t *n)
{
	static const char *const allowed[] = {"rule", "reason", NULL};
	struct ceremony *c = p->c;
	size_t len = yconf_seq_len(n);
	char iw[64], fw[80];

	if (!is_ca(c->type))
		return fail(p, n, "br_exceptions",
		            "the Baseline Requirements rules checked here are for CA certificates "
		            "(root, intermediate, cross-sign); remove this field");
	if (!yconf_is_seq(n) || len == 0)
		return fail(p, n, "br_exceptions",
		            "expected a list, each \"- {rule: br_..., reason: why this private PKI "
		            "needs it}\"");
	if (len > CER_MAX_BR_EXCEPTIONS)
		return fail(p, n, "br_exceptions", "at most %d exceptions", CER_MAX_BR_EXCEPTIONS);
	c->line_br_exceptions = yconf_line(n);
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *it = yconf_seq_item(&p->y, n, i), *v;
		struct cer_br_exception *e = &c->br_exceptions[i];
		snprintf(iw, sizeof(iw), "br_exceptions[%zu]", i);
		if (yconf_check_map(&p->y, it, iw, allowed) != 0)
			return -1;
		e->line = yconf_line(it);
		snprintf(fw, sizeof(fw), "%s.rule", iw);
		if (!(v = yconf_get(&p->y, it, "rule")))
			return fail(p, it, fw, "missing");
		if (yconf_str(&p->y, v, fw, e->rule, sizeof(e->rule)) != 0)
			return -1;
		if (!lint_br_rule_find(e->rule))
			return fail(
			    p, v, fw,
			    "\"%s\" is no Baseline Requirements rule (docs/ceremony.md lists "
			    "them)",
			    e->rule);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->br_exceptions[j].rule, e->rule))
				return fail(p, v, fw, "%s is excepted twice", e->rule);
		snprintf(fw, sizeof(fw), "%s.reason", iw);
		if (!(v = yconf_get(&p->y, it, "reason")))
			return fail(p, it, fw,
			            "missing: an exception needs the reason it is acceptable, for "
			            "the transcript");
		if (text(p, v, fw, e->reason, sizeof(e->reason)) != 0)
			return -1;
		if (strlen(e->reason) < 10)
			return fail(p, v, fw, "say why in at least 10 characters");
	}
	c->n_br_exceptions = len;
	return 0;
}

static int parse_doc(struct pctx *p)
{
	static const char *const allowed[] = {
	    "ceremony",    "description", "key",     "issuer",        "existing_ca", "signature",
	    "certificate", "crl",         "outputs", "br_exceptions", NULL};
	struct ceremony *c = p->c;
	yaml_node_t *root = yconf_root(&p->y), *n;
	const char *names[N(types)];
	const struct shape *s = NULL;
	int has_out = 0;
	size_t i;

	if (yconf_check_map(&p->y, root, "ceremony file", allowed) != 0)
		return -1;
	for (i = 0; i < N(types); i++)
		names[i] = types[i].name;
	if (!(n = yconf_get(&p->y, root, "ceremony")))
		return fail(p, root, "ceremony",
		            "missing: say which ceremony this is (root, intermediate, key, "
		            "cross-sign, ocsp-signer, crl)");
	if (lookup(p, n, "ceremony", names, N(types), &i) != 0)
		return -1;
	c->type = types[i].type;
	c->line_type = yconf_line(n);
	for (i = 0; i < N(shapes); i++)
		if (shapes[i].type == c->type)
			s = &shapes[i];
	if ((n = yconf_get(&p->y, root, "description")) &&
	    text(p, n, "description", c->description, sizeof(c->description)) != 0)
		return -1;
	/* Order matters: the key's type is known before signature and certificate. */
	if (block(p, root, "key", s->key, parse_key, &c->has_key) ||
	    block(p, root, "issuer", s->issuer, parse_issuer, &c->has_issuer) ||
	    block(p, root, "existing_ca", s->existing_ca, parse_existing_ca, &c->has_existing_ca) ||
	    block(p, root, "signature", s->signature, parse_signature, &c->has_sig) ||
	    block(p, root, "certificate", s->certificate, parse_certificate, &c->has_cert) ||
	    block(p, root, "crl", s->crl, parse_crl, &c->has_crl) ||
	    block(p, root, "outputs", 1, parse_outputs, &has_out))
		return -1;
	if ((n = yconf_get(&p->y, root, "br_exceptions")) && parse_br_exceptions(p, n) != 0)
		return -1;
	return 0;
}

static void set_names(struct ceremony *c, const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	size_t bl = strlen(base);

	snprintf(c->name, sizeof(c->name), "%s", name);
	if (!slash)
		snprintf(c->dir, sizeof(c->dir), ".");
	else if (slash == name)
		snprintf(c->dir, sizeof(c->dir), "/");
	else
		snprintf(c->dir, sizeof(c->dir), "%.*s", (int)(slash - name), name);
	if (bl > 5 && !strcmp(base + bl - 5, ".yaml"))
		bl -= 5;
	else if (bl > 4 && !strcmp(base + bl - 4, ".yml"))
		bl -= 4;
	snprintf(c->stem, sizeof(c->stem), "%.*s", (int)bl, base);
}

int ceremony_parse_mem(const char *name, const void *buf, size_t len, time_t now,
                       struct ceremony **out, char *err, size_t errsz)
{
	struct pctx p;
	int rc = -1;

	*out = NULL;
	err[0] = 0;
	memset(&p, 0, sizeof(p));
	p.c = calloc(1, sizeof(*p.c));
	if (!p.c) {
		snprintf(err, errsz, "%s: out of memory", name);
		return -1;
	}
	set_names(p.c, name);
	p.c->now = now;
	p.c->text = malloc(len + 1);
	if (!p.c->text) {
		snprintf(err, errsz, "%s: out of memory", name);
		goto out;
	}
	memcpy(p.c->text, buf, len);
	p.c->text[len] = 0;
	p.c->text_len = len;
	if (!EVP_Digest(buf, len, p.c->sha256, NULL, EVP_sha256(), NULL)) {
		snprintf(err, errsz, "%s: cannot hash the file", name);
		goto out;
	}
	if (memchr(buf, 0, len)) {
		snprintf(err, errsz, "%s: contains a NUL byte: not a text file", name);
		goto out;
	}
	if (yconf_load_mem(&p.y, name, buf, len) != 0 || parse_doc(&p) != 0) {
		snprintf(err, errsz, "%s", p.y.err);
		goto out;
	}
	*out = p.c;
	p.c = NULL;
	rc = 0;
out:
	yconf_free(&p.y);
	ceremony_free(p.c);
	return rc;
}

int ceremony_parse_file(const char *path, time_t now, struct ceremony **out, char *err,
                        size_t errsz)
{
	FILE *f;
	char *buf = NULL;
	size_t n;
	int rc = -1;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(YCONF_MAX_BYTES + 1);
	if (!buf) {
		snprintf(err, errsz, "%s: out of memory", path);
		goto out;
	}
	n = fread(buf, 1, YCONF_MAX_BYTES + 1, f);
	if (ferror(f)) {
		snprintf(err, errsz, "%s: read error", path);
		goto out;
	}
	if (n > YCONF_MAX_BYTES) {
		snprintf(err, errsz, "%s: larger than %u bytes", path, YCONF_MAX_BYTES);
		goto out;
	}
	rc = ceremony_parse_mem(path, buf, n, now, out, err, errsz);
out:
	free(buf);
	fclose(f);
	return rc;
}

void ceremony_free(struct ceremony *c)
{
	if (!c)
		return;
	free(c->text);
	free(c);
}
