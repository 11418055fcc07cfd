/* The body of POST /api/v1/certificates/serverkeygen (docs/api.md): bounded, and every
 * problem named. The request's strings stay in the JSON object. */
#include <stdio.h>
#include <string.h>

#include "cad_keygen.h"

const char *const cad_skg_fields[] = {"profile",  "subject", "san",           "key_type",
                                      "password", "format",  "validity_days", NULL};
/* The subject fields a profile may allow (subject_fields in docs/profiles.md). */
static const char *const subject_fields[] = {
    "CN", "O", "OU", "C", "ST", "L", "emailAddress", "serialNumber", NULL};
static const struct {
	const char *name, *algorithm, *curve;
	int bits;
} key_types[] = {
    {"ec-p256", "EC", "P-256", 0},   {"ec-p384", "EC", "P-384", 0},
    {"rsa-2048", "RSA", NULL, 2048}, {"rsa-3072", "RSA", NULL, 3072},
    {"rsa-4096", "RSA", NULL, 4096},
};

static int listed(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

/* A string of 1..CAD_SKG_VALUE_MAX bytes without control characters. */
static int value_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CAD_SKG_VALUE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int cad_skg_parse(json_t *body, struct cad_skg_request *out, char *err, size_t errsz)
{
	const char *k, *s;
	json_t *v, *sub, *san;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(body)) {
		snprintf(err, errsz, "the body must be a JSON object");
		return -1;
	}
	json_object_foreach(body, k, v) if (!listed(cad_skg_fields, k))
	{
		snprintf(err, errsz, "unknown field \"%.64s\"", k);
		return -1;
	}
	out->profile = json_string_value(json_object_get(body, "profile"));
	if (!out->profile || !value_ok(out->profile) || strlen(out->profile) > CA_NAME_MAX) {
		snprintf(err, errsz, "\"profile\" (a profile's name) is required");
		return -1;
	}
	sub = json_object_get(body, "subject");
	if (sub && !json_is_object(sub)) {
		snprintf(err, errsz,
		         "\"subject\" must be an object of field: value, e.g. "
		         "{\"CN\": \"name\"}");
		return -1;
	}
	json_object_foreach(sub, k, v)
	{
		if (!listed(subject_fields, k)) {
			snprintf(err, errsz,
			         "\"subject\": \"%.64s\" is no subject field (CN, O, OU, C, "
			         "ST, L, emailAddress, serialNumber)",
			         k);
			return -1;
		}
		if (!(s = json_string_value(v)) || !value_ok(s) ||
		    strlen(s) != json_string_length(v)) {
			snprintf(err, errsz,
			         "\"subject\": %s must be a string of 1..%d bytes without control "
			         "characters",
			         k, CAD_SKG_VALUE_MAX);
			return -1;
		}
		if (out->n_subject == CAD_SKG_MAX_SUBJECT) {
			snprintf(err, errsz, "\"subject\": more than %d fields",
			         CAD_SKG_MAX_SUBJECT);
			return -1;
		}
		out->subject_field[out->n_subject] = k;
		out->subject_value[out->n_subject++] = s;
	}
	san = json_object_get(body, "san");
	if (san && !json_is_object(san)) {
		snprintf(err, errsz,
		         "\"san\" must be an object such as {\"dns\": [\"a.example\"]}");
		return -1;
	}
	json_object_foreach(san, k, v)
	{
		int kind = -1;
		json_t *e;
		size_t i;
		for (int j = 0; j < CA_SAN_KINDS; j++)
			if (!strcmp(ca_san_kind_name((enum ca_san_kind)j), k))
				kind = j;
		if (kind < 0) {
			snprintf(err, errsz,
			         "\"san\": \"%.64s\" is no name kind (dns, ip, email, uri)", k);
			return -1;
		}
		if (!json_is_array(v) || json_array_size(v) > CAD_SKG_MAX_SANS) {
			snprintf(err, errsz, "\"san\": %s must be a list of at most %d strings", k,
			         CAD_SKG_MAX_SANS);
			return -1;
		}
		json_array_foreach(v, i, e)
		{
			if (!(s = json_string_value(e)) || !value_ok(s) ||
			    strlen(s) != json_string_length(e)) {
				snprintf(err, errsz,
				         "\"san\": each %s name must be a string of 1..%d bytes "
				         "without control characters",
				         k, CAD_SKG_VALUE_MAX);
				return -1;
			}
			out->san[kind][out->n_san[kind]++] = s;
		}
	}
	s = json_string_value(json_object_get(body, "key_type"));
	for (size_t i = 0; s && i < sizeof(key_types) / sizeof(key_types[0]); i++)
		if (!strcmp(key_types[i].name, s)) {
			out->key_type = key_types[i].name;
			out->algorithm = key_types[i].algorithm;
			out->curve = key_types[i].curve;
			out->rsa_bits = key_types[i].bits;
		}
	if (!out->key_type) {
		snprintf(err, errsz,
		         "\"key_type\" is required: ec-p256, ec-p384, rsa-2048, rsa-3072 "
		         "or rsa-4096");
		return -1;
	}
	v = json_object_get(body, "password");
	out->password = json_string_value(v);
	len = out->password ? json_string_length(v) : 0;
	if (!out->password || len < CAD_SKG_PASSWORD_MIN || len > CAD_SKG_PASSWORD_MAX ||
	    strlen(out->password) != len) {
		snprintf(err, errsz,
		         "\"password\" is required: %d..%d bytes, no NUL; the key is returned "
		         "encrypted under it",
		         CAD_SKG_PASSWORD_MIN, CAD_SKG_PASSWORD_MAX);
		return -1;
	}
	s = json_string_value(v = json_object_get(body, "format"));
	if (!v || (s && !strcmp(s, "pkcs12")))
		out->format = CAD_SKG_PKCS12;
	else if (s && !strcmp(s, "pkcs8"))
		out->format = CAD_SKG_PKCS8;
	else {
		snprintf(err, errsz, "\"format\" must be pkcs12 (the default) or pkcs8");
		return -1;
	}
	v = json_object_get(body, "validity_days");
	out->validity_days =
	    v ? (json_is_integer(v) && json_integer_value(v) >= 1 ? (long long)json_integer_value(v)
	                                                          : -1)
	      : 0;
	return 0;
}
