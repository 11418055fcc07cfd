/* Certificate search for the API: substring matches on subject and SANs, exact profile. */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define FILTER_MAX 1024

/* The user's text as a LIKE pattern matching it anywhere, its own wildcards escaped. */
static char *contains_pattern(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(2 * n + 3), *o = out;

	if (!out)
		return NULL;
	*o++ = '%';
	for (; *s; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '%';
	*o = '\0';
	return out;
}

enum db_status db_cert_search(struct db *db, const struct db_cert_search *f, struct db_cert **rows,
                              size_t *n, int64_t *next_after_id, struct db_err *err)
{
	size_t limit = f->limit ? f->limit : 100;
	char *subj = NULL, *san = NULL, sql[2048];
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc = DB_OK;

	*rows = NULL;
	*n = 0;
	*next_after_id = 0;
	if (limit > DB_LIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "search: at most %d rows a page", DB_LIST_MAX);
	if (f->status < -1 || f->status > DB_CERT_HOLD)
		return db_fail(err, DB_ERR_INVALID, "search: unknown status filter");
	if ((f->profile && (rc = db_check_text("profile filter", f->profile, 64, err))) ||
	    (f->subject_contains &&
	     (rc = db_check_text("subject filter", f->subject_contains, FILTER_MAX, err))) ||
	    (f->san_contains &&
	     (rc = db_check_text("SAN filter", f->san_contains, FILTER_MAX, err))))
		return rc;
	if ((f->subject_contains && !(subj = contains_pattern(f->subject_contains))) ||
	    (f->san_contains && !(san = contains_pattern(f->san_contains)))) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "search: out of memory");
		goto out;
	}
	if (f->authority_id)
		db_param_int(&p, f->authority_id);
	else
		db_param_null(&p);
	db_param_text(&p, f->status >= 0 ? db_cert_status_name(f->status) : NULL);
	db_param_text(&p, f->profile);
	db_param_text(&p, subj);
	db_param_text(&p, san);
	if (f->expires_after)
		db_param_int(&p, f->expires_after);
	else
		db_param_null(&p);
	if (f->expires_before)
		db_param_int(&p, f->expires_before);
	else
		db_param_null(&p);
	db_param_int(&p, f->after_id);
	db_param_int(&p, (int64_t)limit + 1); /* one more tells whether a next page exists */
	/* Fixed text (the column list is a constant); every value is a parameter. */
	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM certificates c"
	         " WHERE ($1::integer IS NULL OR c.authority_id = $1)"
	         " AND ($2::text IS NULL OR c.status = $2)"
	         " AND ($3::text IS NULL OR c.profile = $3)"
	         " AND ($4::text IS NULL OR c.subject ILIKE $4)"
	         " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM certificate_sans s"
	         "  WHERE s.certificate_id = c.id AND s.value ILIKE $5))"
	         " AND ($6::bigint IS NULL OR c.not_after >= to_timestamp($6))"
	         " AND ($7::bigint IS NULL OR c.not_after < to_timestamp($7))"
	         " AND c.id > $8 ORDER BY c.id LIMIT $9",
	         db_cert_cols);
	rc = db_exec(db, sql, &p, &r, err, "searching certificates");
	if (rc != DB_OK)
		goto out;
	rc = db_cert_page(r, limit, "searching certificates", rows, n, next_after_id, err);
out:
	PQclear(r);
	free(subj);
	free(san);
	return rc;
}
