/* POST /api/v1/certificates: the API's adapter over ca_issue. It reads the JSON body, resolves
 * the profile, and turns the core's outcome into the JSON answer (the certificate and its
 * chain) or the API's error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cad_internal.h"

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *data;
	long len;

	if (b && PEM_write_bio_X509(b, x) && (len = BIO_get_mem_data(b, &data)) > 0 &&
	    (out = malloc((size_t)len + 1))) {
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(b);
	return out;
}

void cad_h_cert_issue(struct cad_req *r)
{
	static const char *const fields[] = {"profile", "csr", "validity_days", NULL};
	json_t *body = cad_body_object(r, fields), *v, *chain;
	struct ca_issue_request req = {0};
	struct ca_issue_result res = {0};
	const struct ca_authority *a;
	const char *pname, *csr;
	struct ca_profile *p;
	enum ca_outcome o;
	char t1[32], t2[32];
	char *pem = NULL;

	if (!body)
		return;
	pname = json_string_value(json_object_get(body, "profile"));
	csr = json_string_value(json_object_get(body, "csr"));
	if (!pname || !csr) {
		cad_reply_error(r, 400, "bad-request",
		                "\"profile\" and \"csr\" (strings) are required");
		goto out;
	}
	/* The profile's current stored version (cad_profiles.c): the certificate records it.
	 * The profiles come from the database: without it, 503 rather than "unknown". */
	if (!cad_db(r))
		goto out;
	if (!(p = cad_profile_current(r->cad, r->w->db, pname))) {
		cad_reply_error(r, 400, "unknown-profile", "no profile named \"%.64s\"", pname);
		goto out;
	}
	v = json_object_get(body, "validity_days");
	req.who = cad_requester(r);
	req.action = r->action;
	req.profile = p;
	req.csr_pem = csr;
	/* Absent: 0, the profile's default (ending no later than the CA). */
	req.validity_days =
	    v ? (json_is_integer(v) && json_integer_value(v) >= 1 ? (int64_t)json_integer_value(v)
	                                                          : -1)
	      : 0;
	if ((o = ca_issue(&r->cad->ca, &r->w->db, &req, &res)) != CA_OK) {
		cad_reply_ca(r, o, &res.why);
		goto out;
	}
	a = res.authority;
	pem = pem_of(res.cert);
	chain = json_array();
	for (int i = -1; i < sk_X509_num(a->chain); i++) {
		char *c = pem_of(i < 0 ? a->cert : sk_X509_value(a->chain, i));
		json_array_append_new(chain, json_string(c ? c : ""));
		free(c);
	}
	cad_reply_json(r, 201,
	               json_pack("{s:s, s:s, s:i, s:s, s:s, s:s?, s:s?, s:s, s:o}", "serial",
	                         res.serial, "profile", p->name, "profile_version", (int)p->version,
	                         "authority", a->name, "subject", res.subject, "not_before",
	                         cad_time_text(res.not_before, t1, sizeof(t1)), "not_after",
	                         cad_time_text(res.not_after, t2, sizeof(t2)), "certificate",
	                         pem ? pem : "", "chain", chain));
out:
	free(pem);
	ca_issue_result_clear(&res);
	json_decref(body);
}
