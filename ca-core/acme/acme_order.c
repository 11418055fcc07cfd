/* ACME orders' identifiers (RFC 8555 §7.1.4, §9.7.7; ip: RFC 8738) and the CSR a finalize
 * brings (§7.4): what the client names is parsed strictly, and a CSR must name exactly what
 * the order does. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "pkcs10.h"

void acme_order_clear(struct acme_order *o)
{
	free(o->identifiers);
	memset(o, 0, sizeof(*o));
}

/* A host name: labels of [a-z0-9-] (1..63, no hyphen at either end), at least two, at most
 * 253 characters, lower-cased into out. */
static int dns_name(const char *v, char *out, size_t n)
{
	size_t len = strlen(v), label = 0, labels = 1;

	if (len == 0 || len > 253 || len >= n)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = (char)tolower((unsigned char)v[i]);
		if (c == '.') {
			if (label == 0 || out[i - 1] == '-')
				return 0;
			label = 0;
			labels++;
		} else if (isalnum((unsigned char)c) || c == '-') {
			if ((c == '-' && label == 0) || ++label > 63)
				return 0;
		} else {
			return 0;
		}
		out[i] = c;
	}
	out[len] = '\0';
	return label > 0 && out[len - 1] != '-' && labels >= 2;
}

/* An address in its canonical text (inet_ntop), or 0. */
static int ip_text(const char *v, char *out, size_t n)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, v, a) == 1)
		return inet_ntop(AF_INET, a, out, (socklen_t)n) != NULL;
	if (inet_pton(AF_INET6, v, a) == 1)
		return inet_ntop(AF_INET6, a, out, (socklen_t)n) != NULL;
	return 0;
}

int acme_time_parse(const char *s, int64_t *out)
{
	struct tm tm = {0};
	size_t len = strlen(s), i = 19;
	int y, mo, d, h, mi, sec, off = 0;
	char rest[24];

	if (len < 20 || len > 40)
		return -1;
	/* YYYY-MM-DDTHH:MM:SS, digits exactly where they belong */
	for (size_t k = 0; k < 19; k++) {
		int digit = s[k] >= '0' && s[k] <= '9';
		if ((k == 4 || k == 7)     ? s[k] != '-'
		    : k == 10              ? (s[k] != 'T' && s[k] != 't')
		    : (k == 13 || k == 16) ? s[k] != ':'
		                           : !digit)
			return -1;
	}
	if (sscanf(s, "%4d-%2d-%2d%*c%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
		return -1;
	if (s[i] == '.') {
		size_t f = strspn(s + i + 1, "0123456789");
		if (f == 0 || f > 9)
			return -1;
		i += 1 + f;
	}
	snprintf(rest, sizeof(rest), "%s", s + i);
	if (!strcmp(rest, "Z") || !strcmp(rest, "z")) {
		off = 0;
	} else if ((rest[0] == '+' || rest[0] == '-') && strlen(rest) == 6 && rest[3] == ':' &&
	           strspn(rest + 1, "0123456789") == 2 && strspn(rest + 4, "0123456789") == 2) {
		int oh = (rest[1] - '0') * 10 + (rest[2] - '0'),
		    om = (rest[4] - '0') * 10 + (rest[5] - '0');
		if (oh > 23 || om > 59)
			return -1;
		off = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec; /* a leap second: its last whole second */
	{
		time_t t = timegm(&tm);
		struct tm back;
		/* 31 February and the like: timegm would move on to March */
		if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d)
			return -1;
		*out = (int64_t)t - off;
	}
	return 0;
}

int acme_identifiers_parse(const json_t *arr, struct acme_ident *out, struct acme_problem *p)
{
	size_t i, k, n = 0;
	const json_t *e;

	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > ACME_IDENTS_MAX)
		return acme_problem_set(p, 400, "malformed",
		                        "identifiers must be a list of 1..%d identifiers",
		                        ACME_IDENTS_MAX);
	json_array_foreach(arr, i, e)
	{
		const char *type = json_string_value(json_object_get(e, "type")),
		           *value = json_string_value(json_object_get(e, "value"));
		struct acme_ident id = {0};

		if (!json_is_object(e) || json_object_size(e) != 2 || !type || !value)
			return acme_problem_set(
			    p, 400, "malformed",
			    "identifier %zu: an object with \"type\" and \"value\" only", i + 1);
		if (!strcmp(type, "dns")) {
			const char *name = value;
			if (!strncmp(name, "*.", 2)) {
				id.wildcard = 1;
				name += 2;
			}
			if (!dns_name(name, id.value, sizeof(id.value)))
				return acme_problem_set(
				    p, 400, "rejectedIdentifier",
				    "identifier %zu: \"%.64s\" is not a host name"
				    " (or \"*.\" and one)",
				    i + 1, value);
		} else if (!strcmp(type, "ip")) {
			if (!ip_text(value, id.value, sizeof(id.value)))
				return acme_problem_set(
				    p, 400, "rejectedIdentifier",
				    "identifier %zu: \"%.64s\" is not an IP address", i + 1, value);
		} else {
			return acme_problem_set(p, 400, "unsupportedIdentifier",
			                        "identifier %zu: type \"%.16s\" (only dns and ip)",
			                        i + 1, type);
		}
		snprintf(id.type, sizeof(id.type), "%s", type);
		for (k = 0; k < n; k++)
			if (!strcmp(out[k].type, id.type) && !strcmp(out[k].value, id.value) &&
			    out[k].wildcard == id.wildcard)
				break;
		if (k == n)
			out[n++] = id;
	}
	return (int)n;
}

/* The identifier a SAN or CN text names: its index in ids, or -1. */
static int ident_index(const char *type, const char *text, const struct acme_ident *ids, size_t n)
{
	char buf[260];

	for (size_t i = 0; i < n; i++) {
		if (strcmp(ids[i].type, type))
			continue;
		snprintf(buf, sizeof(buf), "%s%s", ids[i].wildcard ? "*." : "", ids[i].value);
		if (!strcasecmp(buf, text))
			return (int)i;
	}
	return -1;
}

/* The request is read with pkcs10.c, the CA core's own reader (its public key left undecoded:
 * the CA core reads and judges the key when the order is issued), so that the names matched
 * here are read exactly as the names it issues. */
int acme_csr_matches(const uint8_t *der, size_t len, const struct acme_ident *ids, size_t n,
                     struct acme_problem *p)
{
	HSMCA_PKCS10 *req = pkcs10_read(der, len);
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	const X509_NAME *subj;
	unsigned char seen[ACME_IDENTS_MAX] = {0};
	int rc = -1, idx;

	if (!req) {
		acme_problem_set(p, 400, "badCSR", "the CSR is not a DER PKCS#10 request");
		goto out;
	}
	if (pkcs10_extension_requests(req) > 1) { /* as the CA core refuses it */
		acme_problem_set(p, 400, "badCSR",
		                 "the CSR asks for extensions in more than one attribute");
		goto out;
	}
	exts = pkcs10_requested_extensions(req);
	gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char text[260];
		const char *type;
		if (g->type == GEN_DNS) {
			const ASN1_IA5STRING *s = g->d.dNSName;
			if (ASN1_STRING_length(s) <= 0 || ASN1_STRING_length(s) > 253 ||
			    memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s))) {
				acme_problem_set(p, 400, "badCSR",
				                 "a dNSName of the CSR is unreadable");
				goto out;
			}
			snprintf(text, sizeof(text), "%.*s", ASN1_STRING_length(s),
			         (const char *)ASN1_STRING_get0_data(s));
			type = "dns";
		} else if (g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);
			if ((l != 4 && l != 16) ||
			    !inet_ntop(l == 4 ? AF_INET : AF_INET6,
			               ASN1_STRING_get0_data(g->d.iPAddress), text, sizeof(text))) {
				acme_problem_set(p, 400, "badCSR",
				                 "an iPAddress of the CSR is unreadable");
				goto out;
			}
			type = "ip";
		} else {
			acme_problem_set(
			    p, 400, "badCSR",
			    "the CSR names a subjectAltName that is neither dNSName nor "
			    "iPAddress");
			goto out;
		}
		if ((idx = ident_index(type, text, ids, n)) < 0) {
			acme_problem_set(p, 400, "badCSR",
			                 "the CSR names %s \"%.64s\", which the order does not",
			                 type, text);
			goto out;
		}
		seen[idx] = 1;
	}
	for (size_t i = 0; i < n; i++)
		if (!seen[i]) {
			acme_problem_set(p, 400, "badCSR",
			                 "the CSR does not name %s%s, which the order does",
			                 ids[i].wildcard ? "*." : "", ids[i].value);
			goto out;
		}
	subj = req->info->subject;
	for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
		const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		unsigned char *utf8 = NULL;
		int l = ASN1_STRING_to_UTF8(&utf8, cn);
		char text[260];
		int ok = l > 0 && l < (int)sizeof(text) && !memchr(utf8, 0, (size_t)l);
		if (ok) {
			snprintf(text, sizeof(text), "%.*s", l, (const char *)utf8);
			ok = ident_index("dns", text, ids, n) >= 0 ||
			     ident_index("ip", text, ids, n) >= 0;
		}
		OPENSSL_free(utf8);
		if (!ok) {
			acme_problem_set(
			    p, 400, "badCSR",
			    "the CSR's common name is not one of the order's identifiers");
			goto out;
		}
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	pkcs10_free(req);
	return rc;
}
