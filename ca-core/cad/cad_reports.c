/* The dashboard, the reports and the backup runs (docs/reports.md, docs/api.md): read-only
 * adapters over db_reports.c, whose answers PostgreSQL builds as JSON; the reports also as
 * RFC 4180 CSV (format=csv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <event2/buffer.h>

#include "cad_internal.h"
#include "csv.h"
#include "httptext.h"

/* Columns of each report's CSV, in order: the keys of its JSON objects. */
static const char *const issuance_cols[] = {"authority", "profile", "issued",
                                            "revoked",   "expired", NULL};
static const char *const issuance_day_cols[] = {"day", "issued", "revoked", "expired", NULL};
static const char *const expiring_cols[] = {"serial",    "authority", "profile",   "subject",
                                            "requester", "not_after", "days_left", NULL};
static const char *const principal_cols[] = {"kind",         "name",  "principal",  "role",
                                             "profile",      "state", "created_at", "expires_at",
                                             "last_used_at", NULL};

/* The JSON text a db_report_* call made, parsed; NULL after replying. */
static json_t *parsed(struct cad_req *r, enum db_status rc, char *text, struct db_err *err)
{
	json_t *o = NULL;

	if (rc != DB_OK) {
		if (err->status == DB_ERR_INVALID)
			cad_reply_error(r, 400, "bad-filter", "%s", err->msg);
		else
			cad_reply_db_error(r, err);
	} else if (!(o = json_loads(text, 0, NULL)) || !json_is_object(o)) {
		json_decref(o);
		o = NULL;
		cad_reply_error(r, 500, "internal", "the database's report does not parse");
	}
	free(text);
	return o;
}

/* One cell of a CSV row: the value of key in o as text (numbers in decimal, null empty). */
static void csv_cell(struct csv_buf *b, json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	char num[32];

	if (json_is_string(v)) {
		csv_field(b, json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		csv_field(b, num);
	} else if (json_is_boolean(v)) {
		csv_field(b, json_is_true(v) ? "true" : "false");
	} else {
		csv_field(b, NULL);
	}
}

/* Answer the arrays of objects (NULL-terminated) as one CSV table with cols, header first. */
static void reply_csv(struct cad_req *r, const char *name, const char *const *cols,
                      json_t *const *arrays)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct csv_buf b = {0};
	char disp[96];
	json_t *row;
	size_t i;

	for (size_t c = 0; cols[c]; c++)
		csv_field(&b, cols[c]);
	csv_row_end(&b);
	for (size_t a = 0; arrays[a]; a++)
		json_array_foreach(arrays[a], i, row)
		{
			for (size_t c = 0; cols[c]; c++)
				csv_cell(&b, row, cols[c]);
			csv_row_end(&b);
		}
	if (b.failed) {
		free(b.data);
		cad_reply_error(r, 500, "internal", "out of memory writing the CSV");
		return;
	}
	r->replied = 1;
	r->status = 200;
	evbuffer_add(out, b.data, b.len);
	free(b.data);
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.csv\"", name);
	evhttp_add_header(h, "Content-Type", "text/csv; charset=utf-8; header=present");
	evhttp_add_header(h, "Content-Disposition", disp);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(r->req, 200, httptext_status(200), NULL);
	cad_log_reply(r, 200);
}

/* format=json (the default) or csv: 1 for csv, 0 for json, -1 after replying 400. */
static int want_csv(struct cad_req *r)
{
	const char *f = cad_query(r, "format");

	if (!f || !strcmp(f, "json"))
		return 0;
	if (!strcmp(f, "csv"))
		return 1;
	cad_reply_error(r, 400, "bad-format", "format \"%.16s\": json or csv", f);
	return -1;
}

/* "2026-01-02T03:04:05Z" or "2026-01-02" (its midnight, UTC) to seconds; -1 if neither, or
 * if it names no real time (2026-02-30 is not read as March 2nd). */
static int64_t parse_when(const char *s)
{
	struct tm tm = {0}, back, read;
	const char *end;
	time_t t;

	if (!((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) && !*end && strlen(s) == 20)) {
		memset(&tm, 0, sizeof(tm));
		if (!(strlen(s) == 10 && (end = strptime(s, "%Y-%m-%d", &tm)) && !*end))
			return -1;
	}
	read = tm; /* timegm normalises tm in place */
	t = timegm(&tm);
	if (t < 0 || !gmtime_r(&t, &back) || back.tm_mday != read.tm_mday ||
	    back.tm_mon != read.tm_mon || back.tm_year != read.tm_year ||
	    back.tm_hour != read.tm_hour || back.tm_min != read.tm_min ||
	    back.tm_sec != read.tm_sec)
		return -1;
	return (int64_t)t;
}

/* A positive whole number of at most max from query parameter name (dflt when absent): 0
 * with *v, or -1 after replying 400. */
static int query_count(struct cad_req *r, const char *name, long dflt, long max, long *v)
{
	const char *q = cad_query(r, name);
	char *end;

	*v = dflt;
	if (!q)
		return 0;
	*v = strtol(q, &end, 10);
	if (!*q || *end || *v < 1 || *v > max) {
		cad_reply_error(r, 400, "bad-filter", "%s \"%.24s\": a whole number from 1 to %ld",
		                name, q, max);
		return -1;
	}
	return 0;
}

/* --- the dashboard --- */

/* The authority's validity from its certificate (hex DER, as the database holds it), which
 * replaces "certificate" in o. */
static void authority_validity(json_t *o)
{
	const char *hex = json_string_value(json_object_get(o, "certificate"));
	long len = 0;
	unsigned char *der = hex ? OPENSSL_hexstr2buf(hex, &len) : NULL;
	const unsigned char *p = der;
	X509 *x = der ? d2i_X509(NULL, &p, len) : NULL;
	struct tm nb, na;
	char t[2][32];

	if (x && ASN1_TIME_to_tm(X509_get0_notBefore(x), &nb) &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &na)) {
		json_object_set_new(o, "not_before",
		                    json_string(cad_time_text(timegm(&nb), t[0], sizeof(t[0]))));
		json_object_set_new(o, "not_after",
		                    json_string(cad_time_text(timegm(&na), t[1], sizeof(t[1]))));
	} else {
		json_object_set_new(o, "not_before", json_null());
		json_object_set_new(o, "not_after", json_null());
	}
	json_object_del(o, "certificate");
	X509_free(x);
	OPENSSL_free(der);
}

void cad_h_dashboard(struct cad_req *r)
{
	enum db_status rc;
	struct db_err err = {0};
	struct db *db = cad_db(r);
	char *text = NULL, why[600], t[32];
	json_t *o, *audit, *a;
	size_t i;
	int keyd;

	if (!db)
		return;
	/* keyd as this hsmca-cad sees it: every authority's key in hand (health's check). */
	keyd = ca_authorities_ready(&r->cad->ca, db, why, sizeof(why));
	rc = db_report_dashboard(db, &text, &err);
	if (!(o = parsed(r, rc, text, &err)))
		return;
	json_array_foreach(json_object_get(o, "authorities"), i, a) authority_validity(a);
	json_object_set_new(o, "keyd", json_pack("{s:b}", "online", keyd == 0));
	/* The chain's head is checkpointed recently when every entry is under a checkpoint, or
	 * the oldest that is not is younger than two checkpoint intervals. */
	audit = json_object_get(o, "audit");
	if (audit) {
		json_t *age = json_object_get(audit, "oldest_unchecked_age_seconds");
		int on = r->cad->cfg->audit_key_uri[0] != '\0';
		json_int_t since =
		    json_integer_value(json_object_get(audit, "entries_since_checkpoint"));
		json_object_set_new(audit, "checkpoints_enabled", json_boolean(on));
		json_object_set_new(audit, "checkpoint_interval_seconds",
		                    on ? json_integer(r->cad->cfg->audit_checkpoint_seconds)
		                       : json_null());
		json_object_set_new(
		    audit, "head_checkpointed_recently",
		    json_boolean(on &&
		                 (since == 0 || (json_is_integer(age) &&
		                                 json_integer_value(age) <=
		                                     2 * r->cad->cfg->audit_checkpoint_seconds))));
	}
	json_object_set_new(o, "generated_at",
	                    json_string(cad_time_text((int64_t)time(NULL), t, sizeof(t))));
	cad_reply_json(r, 200, o);
}

/* --- reports --- */

void cad_h_report_issuance(struct cad_req *r)
{
	enum db_status rc;
	struct db_err err = {0};
	const char *q, *table = cad_query(r, "table");
	int64_t now = (int64_t)time(NULL), from, to = now,
	        max = (int64_t)r->cad->cfg->report_max_days * 86400;
	char *text = NULL, a[32], b[32];
	struct db *db;
	json_t *o;
	int csv;

	if ((csv = want_csv(r)) < 0)
		return;
	if (table && strcmp(table, "rows") && strcmp(table, "days")) {
		cad_reply_error(r, 400, "bad-filter", "table \"%.16s\": rows or days", table);
		return;
	}
	if ((q = cad_query(r, "to")) && (to = parse_when(q)) < 0) {
		cad_reply_error(r, 400, "bad-period",
		                "to \"%.40s\": use 2026-01-02T03:04:05Z or 2026-01-02", q);
		return;
	}
	from = to - 30 * 86400;
	if ((q = cad_query(r, "from")) && (from = parse_when(q)) < 0) {
		cad_reply_error(r, 400, "bad-period",
		                "from \"%.40s\": use 2026-01-02T03:04:05Z or 2026-01-02", q);
		return;
	}
	if (from >= to) {
		cad_reply_error(r, 400, "bad-period", "from (%s) must be before to (%s)",
		                cad_time_text(from, a, sizeof(a)), cad_time_text(to, b, sizeof(b)));
		return;
	}
	if (to - from > max) {
		cad_reply_error(r, 400, "period-too-long",
		                "from %s to %s is longer than %d days (limits.report_max_days)",
		                cad_time_text(from, a, sizeof(a)), cad_time_text(to, b, sizeof(b)),
		                r->cad->cfg->report_max_days);
		return;
	}
	if (!(db = cad_db(r)))
		return;
	rc = db_report_issuance(db, from, to, &text, &err);
	if (!(o = parsed(r, rc, text, &err)))
		return;
	if (csv) {
		int days = table && !strcmp(table, "days");
		json_t *arrays[] = {json_object_get(o, days ? "days" : "rows"), NULL};
		reply_csv(r, days ? "issuance-by-day" : "issuance",
		          days ? issuance_day_cols : issuance_cols, arrays);
		json_decref(o);
		return;
	}
	cad_reply_json(r, 200, o);
}

void cad_h_report_expiring(struct cad_req *r)
{
	enum db_status rc;
	struct db_err err = {0};
	char *text = NULL;
	long days, limit;
	struct db *db;
	json_t *o;
	int csv;

	if ((csv = want_csv(r)) < 0 ||
	    query_count(r, "days", 30, r->cad->cfg->report_max_days, &days) ||
	    query_count(r, "limit", DB_LIST_MAX, DB_LIST_MAX * 10, &limit))
		return;
	if (!(db = cad_db(r)))
		return;
	rc = db_report_expiring(db, (int)days, (size_t)limit, &text, &err);
	if (!(o = parsed(r, rc, text, &err)))
		return;
	if (csv) {
		json_t *arrays[] = {json_object_get(o, "certificates"), NULL};
		reply_csv(r, "expiring", expiring_cols, arrays);
		json_decref(o);
		return;
	}
	cad_reply_json(r, 200, o);
}

void cad_h_report_principals(struct cad_req *r)
{
	enum db_status rc;
	struct db_err err = {0};
	char *text = NULL;
	struct db *db;
	json_t *o;
	int csv;

	if ((csv = want_csv(r)) < 0 || !(db = cad_db(r)))
		return;
	rc = db_report_principals(db, &text, &err);
	if (!(o = parsed(r, rc, text, &err)))
		return;
	if (csv) {
		json_t *arrays[] = {json_object_get(o, "principals"),
		                    json_object_get(o, "api_tokens"),
		                    json_object_get(o, "provisioning_tokens"), NULL};
		reply_csv(r, "principals", principal_cols, arrays);
		json_decref(o);
		return;
	}
	cad_reply_json(r, 200, o);
}

/* --- backup runs --- */

void cad_h_backup_list(struct cad_req *r)
{
	enum db_status rc;
	struct db_err err = {0};
	const char *q = cad_query(r, "before");
	char *text = NULL, *end;
	long long before = 0;
	long limit;
	struct db *db;
	json_t *o;

	if (q && (!*q || (before = strtoll(q, &end, 10)) < 1 || *end)) {
		cad_reply_error(r, 400, "bad-filter", "before: the \"next\" of a previous page");
		return;
	}
	if (query_count(r, "limit", 50, DB_LIST_MAX, &limit) || !(db = cad_db(r)))
		return;
	rc = db_backup_runs_list(db, before, (size_t)limit, &text, &err);
	if (!(o = parsed(r, rc, text, &err)))
		return;
	cad_reply_json(r, 200, o);
}
