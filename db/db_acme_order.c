/* ACME (RFC 8555) orders, their authorizations and the challenges of each: every state change
 * commits with its audit entry. Expiry is read, not written: a pending or ready order whose
 * time is up reads as invalid, an authorization as expired. */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define EPOCH0(col) "coalesce(floor(extract(epoch FROM " col "))::bigint, 0)"

/* Statements of the hot path are prepared, and PostgreSQL keeps the generic plan it makes
 * after a few runs until the table's statistics change. On a new database that plan is made
 * while the tables hold a handful of rows, and a join planned then (a hash join over a
 * sequential scan, an anti join over one) stayed so while the tables grew: every challenge's
 * statements read every order and challenge ever made, until autovacuum's first ANALYZE
 * (up to a minute later). So these statements reach rows by key: the ids are found first by
 * an index (an InitPlan, or a sorted list looked up row by row), then the rows by primary
 * key, shapes that the planner does not turn into a scan of a whole table on a small one.
 * The acme-db test "plans" runs orders and challenges with generic plans made on empty
 * tables and fails on any sequential scan of the ACME tables. */
/* The ids of the orders of authorization `authz` (an SQL expression; an array for
 * "id = ANY (...)"). */
#define ORDERS_OF(authz)                                                                           \
	"ARRAY(SELECT order_id FROM acme_order_authorizations WHERE authz_id = " authz ")"
#define ORDERS_OF_AUTHZ ORDERS_OF("$1::bigint")
/* Those of them still pending or ready (the only ones a challenge's result or a deactivation
 * changes) locked one by one by primary key, in id order (two challenges of one order
 * finishing at once; a lateral lookup runs once per row of the sorted list, in its order). An
 * order processing is not locked: the transaction that stores its certificate locks it after
 * the audit chain's lock (db_cert_store_with), the opposite order of these transactions. */
#define ORDERS_LOCK(authz)                                                                         \
	"SELECT o.id FROM (SELECT order_id FROM acme_order_authorizations"                         \
	" WHERE authz_id = " authz " ORDER BY order_id OFFSET 0) oa,"                              \
	" LATERAL (SELECT id FROM acme_orders WHERE id = oa.order_id"                              \
	" AND status IN ('pending', 'ready') FOR UPDATE) o"
#define ORDERS_OF_AUTHZ_LOCK ORDERS_LOCK("$1::bigint")
/* The authorization of challenge $1. */
#define AUTHZ_OF_CHALL "SELECT authz_id FROM acme_challenges WHERE id = $1::bigint"
/* The authorization of challenge $1 if this transaction changed the challenge (its row's
 * version is this transaction's; no savepoints here), else NULL: the statements sent in one
 * round trip after the challenge's own change act only when that change was made. */
#define AUTHZ_OF_CHALL_CHANGED                                                                     \
	"(SELECT authz_id FROM acme_challenges WHERE id = $1::bigint"                              \
	" AND xmin = pg_current_xact_id()::xid)"
/* Order `order` (an SQL expression) has an authorization that is not valid: its links by the
 * primary key's first column, each authorization by its primary key. */
#define SOME_AUTHZ_NOT_VALID(order)                                                                \
	"EXISTS (SELECT 1 FROM acme_order_authorizations oa WHERE oa.order_id = " order            \
	" AND (SELECT a.status FROM acme_authorizations a WHERE a.id = oa.authz_id) <> 'valid')"

void db_acme_order_clear(struct db_acme_order *o)
{
	free(o->identifiers);
	memset(o, 0, sizeof(*o));
}

static enum db_status audit_commit(struct db *db, const char *kind, int64_t id,
                                   const struct db_audit_entry *audit, struct db_err *err)
{
	struct db_audit_entry e = *audit;
	char object[48];
	int64_t seq;

	snprintf(object, sizeof(object), "%s/%lld", kind, (long long)id);
	e.object = object;
	return db_audit_append_commit(db, &e, &seq, err);
}

static void copy(char *dst, size_t n, const PGresult *r, int row, int col)
{
	snprintf(dst, n, "%s", PQgetvalue(r, row, col));
}

/* The rows sql gives for id ($1): DB_OK with *r holding at least one row (the caller's to
 * PQclear), DB_ERR_NOT_FOUND ("no such WHAT"), or the error. */
static enum db_status rows_of(struct db *db, const char *sql, int64_t id, const char *what,
                              PGresult **r, struct db_err *err)
{
	struct db_params p = {0};
	enum db_status rc;

	*r = NULL;
	db_param_int(&p, id);
	rc = db_exec(db, sql, &p, r, err, "reading %s %lld", what, (long long)id);
	if (rc == DB_OK && PQntuples(*r) == 0)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no such %s", what);
	if (rc != DB_OK) {
		PQclear(*r);
		*r = NULL;
	}
	return rc;
}

enum db_status db_acme_order_get(struct db *db, int64_t id, struct db_acme_order *out,
                                 struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	/* clang-format off */
	rc = rows_of(
	    db,
	    "SELECT o.id, o.account_id,"
	    " CASE WHEN o.status IN ('pending', 'ready') AND o.expires_at <= now()"
	    " THEN 'invalid' ELSE o.status END, " EPOCH0("o.expires_at") ","
	    " o.identifiers, o.profile, coalesce(o.cert_serial, ''), o.error_type,"
	    " o.error_detail, CASE WHEN o.status IN ('pending', 'ready')"
	    " AND o.expires_at <= now() AND o.error_type = '' THEN 'the order expired'"
	    " ELSE '' END, oa.authz_id, " EPOCH0("o.not_before") ", " EPOCH0("o.not_after") ","
	    " ac.status, ac.thumbprint"
	    " FROM acme_orders o JOIN acme_order_authorizations oa ON oa.order_id = o.id"
	    " JOIN acme_accounts ac ON ac.id = o.account_id"
	    " WHERE o.id = $1::bigint ORDER BY oa.authz_id",
	    id, "ACME order", &r, err);
	/* clang-format on */
	if (rc != DB_OK)
		goto out;
	if (db_get_int64(r, 0, 0, &out->id) || db_get_int64(r, 0, 1, &out->account_id) ||
	    db_get_int64(r, 0, 3, &out->expires_at) || db_get_int64(r, 0, 11, &out->not_before) ||
	    db_get_int64(r, 0, 12, &out->not_after) || !(out->identifiers = db_get_text(r, 0, 4))) {
		rc = db_fail(err, DB_ERR_QUERY, "ACME order: unreadable row");
		goto out;
	}
	copy(out->status, sizeof(out->status), r, 0, 2);
	copy(out->profile, sizeof(out->profile), r, 0, 5);
	copy(out->cert_serial, sizeof(out->cert_serial), r, 0, 6);
	copy(out->error_type, sizeof(out->error_type), r, 0, 7);
	copy(out->error_detail, sizeof(out->error_detail), r, 0, 8);
	copy(out->account_status, sizeof(out->account_status), r, 0, 13);
	copy(out->account_thumbprint, sizeof(out->account_thumbprint), r, 0, 14);
	if (PQgetvalue(r, 0, 9)[0]) {
		snprintf(out->error_type, sizeof(out->error_type), "malformed");
		copy(out->error_detail, sizeof(out->error_detail), r, 0, 9);
	}
	for (int i = 0; i < PQntuples(r) && i < DB_ACME_IDENTS_MAX; i++)
		if (db_get_int64(r, i, 10, &out->authz[out->n_authz++])) {
			rc = db_fail(err, DB_ERR_QUERY, "ACME order: unreadable row");
			goto out;
		}
out:
	PQclear(r);
	if (rc != DB_OK)
		db_acme_order_clear(out);
	return rc;
}

void db_acme_cert_clear(struct db_acme_cert *c)
{
	free(c->der);
	memset(c, 0, sizeof(*c));
}

enum db_status db_acme_cert_read(struct db *db, const uint8_t *serial, size_t serial_len,
                                 int64_t account_id, const char *requester,
                                 struct db_acme_cert *out, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t authority = 0;

	memset(out, 0, sizeof(*out));
	if (serial_len == 0 || serial_len > DB_SERIAL_MAX)
		return db_fail(err, DB_ERR_INVALID, "a serial is 1 to %d bytes", DB_SERIAL_MAX);
	if ((rc = db_check_text("requester", requester, 64, err)) != DB_OK)
		return rc;
	db_param_bytes(&p, serial, serial_len);
	db_param_int(&p, account_id);
	db_param_text(&p, requester);
	/* One row, or two when the serial is under two authorities (then it is none). */
	rc = db_exec(db,
	             "SELECT coalesce(a.status, ''), coalesce(a.thumbprint, ''), c.authority_id,"
	             " c.der, c.requester = $3 AND c.der IS NOT NULL"
	             " FROM (SELECT 1) one LEFT JOIN acme_accounts a ON a.id = $2::bigint"
	             " LEFT JOIN LATERAL (SELECT authority_id, der, requester FROM certificates"
	             " WHERE serial = $1 ORDER BY id LIMIT 2) c ON true",
	             &p, &r, err, "reading the certificate of ACME account %lld",
	             (long long)account_id);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) < 1) {
		rc = db_fail(err, DB_ERR_QUERY, "ACME certificate: no row came back");
		goto out;
	}
	copy(out->account_status, sizeof(out->account_status), r, 0, 0);
	copy(out->account_thumbprint, sizeof(out->account_thumbprint), r, 0, 1);
	if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 4), "t"))
		goto out; /* none, ambiguous, another's, or not issued */
	if (db_get_int64(r, 0, 2, &authority) || authority <= 0 || authority > INT32_MAX ||
	    db_get_bytes(r, 0, 3, &out->der, &out->der_len) || !out->der) {
		rc = db_fail(err, DB_ERR_QUERY, "ACME certificate: unreadable row");
		goto out;
	}
	out->authority_id = (int32_t)authority;
	out->found = 1;
out:
	PQclear(r);
	if (rc != DB_OK)
		db_acme_cert_clear(out);
	return rc;
}

/* The authorization whose id ($1) the WHERE clause where names, with its challenges. */
static enum db_status authz_read(struct db *db, const char *where, int64_t id,
                                 struct db_acme_authz *out, struct db_err *err)
{
	char sql[1024];
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	/* clang-format off */
	snprintf(sql, sizeof(sql),
	         "SELECT a.id, a.account_id, a.identifier_type, a.identifier, a.wildcard,"
	         " CASE WHEN a.status IN ('pending', 'valid') AND a.expires_at <= now()"
	         " THEN 'expired' ELSE a.status END, " EPOCH0("a.expires_at") ","
	         " c.id, c.type, c.token, c.status, " EPOCH0("c.validated_at") ","
	         " c.error_type, c.error_detail, ac.status, ac.thumbprint"
	         " FROM acme_authorizations a JOIN acme_challenges c ON c.authz_id = a.id"
	         " JOIN acme_accounts ac ON ac.id = a.account_id WHERE %s ORDER BY c.id",
	         where);
	/* clang-format on */
	rc = rows_of(db, sql, id, "ACME authorization", &r, err);
	if (rc != DB_OK)
		goto out;
	if (db_get_int64(r, 0, 0, &out->id) || db_get_int64(r, 0, 1, &out->account_id) ||
	    db_get_int64(r, 0, 6, &out->expires_at)) {
		rc = db_fail(err, DB_ERR_QUERY, "ACME authorization: unreadable row");
		goto out;
	}
	copy(out->ident.type, sizeof(out->ident.type), r, 0, 2);
	copy(out->ident.value, sizeof(out->ident.value), r, 0, 3);
	out->ident.wildcard = !strcmp(PQgetvalue(r, 0, 4), "t");
	copy(out->status, sizeof(out->status), r, 0, 5);
	copy(out->account_status, sizeof(out->account_status), r, 0, 14);
	copy(out->account_thumbprint, sizeof(out->account_thumbprint), r, 0, 15);
	for (int i = 0; i < PQntuples(r) && i < DB_ACME_CHALLS; i++) {
		struct db_acme_challenge *c = &out->ch[out->n_ch++];
		if (db_get_int64(r, i, 7, &c->id) || db_get_int64(r, i, 11, &c->validated_at)) {
			rc = db_fail(err, DB_ERR_QUERY, "ACME authorization: unreadable row");
			goto out;
		}
		copy(c->type, sizeof(c->type), r, i, 8);
		copy(c->token, sizeof(c->token), r, i, 9);
		copy(c->status, sizeof(c->status), r, i, 10);
		copy(c->error_type, sizeof(c->error_type), r, i, 12);
		copy(c->error_detail, sizeof(c->error_detail), r, i, 13);
	}
out:
	PQclear(r);
	return rc;
}

enum db_status db_acme_authz_get(struct db *db, int64_t id, struct db_acme_authz *out,
                                 struct db_err *err)
{
	return authz_read(db, "a.id = $1::bigint", id, out, err);
}

enum db_status db_acme_authz_of_challenge(struct db *db, int64_t chall_id,
                                          struct db_acme_authz *out, struct db_err *err)
{
	/* One statement: the challenge's authorization found through the challenge's own row. */
	return authz_read(db, "a.id = (" AUTHZ_OF_CHALL ")", chall_id, out, err);
}

static const char *const chall_types[DB_ACME_CHALLS] = {"http-01", "dns-01", "tls-alpn-01"};

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The order this transaction's newOrder statement just added (order_create_sql sets it), or
 * NULL when that statement added none: the statements sent after it in the same round trip
 * act only on an order it added. A transaction-local setting, read in the same session. */
#define NEW_ORDER "nullif(current_setting('hsmca.new_order', true), '')::bigint"

/* Identifier i of an order, its statement (order_authz_sql) and its parameters into q: the
 * account's valid authorization for it when one has not expired, else a new pending one with
 * its challenges, linked to the order just added (NEW_ORDER; nothing when none was). Its
 * rows: the authorization's id and 1 when it was reused. types and toks hold the challenges
 * as two text arrays (types and tokens are of [A-Za-z0-9_-] only), kept by the caller. */
static const char order_authz_sql[] =
    "WITH reuse AS (SELECT id FROM acme_authorizations WHERE account_id = $1::bigint"
    " AND identifier_type = $2 AND identifier = $3 AND wildcard = $4::boolean"
    " AND status = 'valid' AND expires_at > now()"
    " ORDER BY expires_at DESC LIMIT 1),"
    " made AS (INSERT INTO acme_authorizations (account_id, identifier_type,"
    " identifier, wildcard, expires_at) SELECT $1::bigint, $2, $3, $4::boolean,"
    " now() + make_interval(secs => $5::bigint)"
    " WHERE NOT EXISTS (SELECT 1 FROM reuse) AND " NEW_ORDER " IS NOT NULL RETURNING id),"
    " ch AS (INSERT INTO acme_challenges (authz_id, type, token)"
    " SELECT made.id, t.type, t.token FROM made,"
    " unnest($6::text[], $7::text[]) WITH ORDINALITY AS t(type, token, n)"
    " ORDER BY t.n),"
    " az AS (SELECT id, 1 AS reused FROM reuse UNION ALL"
    " SELECT id, 0 FROM made),"
    " link AS (INSERT INTO acme_order_authorizations (order_id, authz_id)"
    " SELECT " NEW_ORDER ", id FROM az WHERE " NEW_ORDER " IS NOT NULL"
    " ON CONFLICT DO NOTHING)"
    " SELECT id, reused FROM az";

static void order_authz_params(int64_t account_id, const struct db_acme_ident *id,
                               int64_t authz_ttl, const char (*tokens)[44], char *types, char *toks,
                               struct db_params *q)
{
	strcpy(types, "{");
	strcpy(toks, "{");
	for (int t = 0; t < DB_ACME_CHALLS; t++) {
		int dns01 = !strcmp(chall_types[t], "dns-01");
		if (id->wildcard ? !dns01 : (dns01 && !strcmp(id->type, "ip")))
			continue;
		if (types[1]) {
			strcat(types, ",");
			strcat(toks, ",");
		}
		strcat(types, chall_types[t]);
		strncat(toks, tokens[t], 43);
	}
	strcat(types, "}");
	strcat(toks, "}");
	db_param_int(q, account_id);
	db_param_text(q, id->type);
	db_param_text(q, id->value);
	db_param_text(q, id->wildcard ? "true" : "false");
	db_param_int(q, authz_ttl);
	db_param_text(q, types);
	db_param_text(q, toks);
}

/* An order's arguments checked, before anything is done; out cleared and given the
 * identifiers' text. */
static enum db_status order_create_check(struct db_acme_order_new *a, struct db_err *err)
{
	enum db_status rc;

	memset(a->out, 0, sizeof(*a->out));
	a->opts->limited = 0;
	if (a->n == 0 || a->n > DB_ACME_IDENTS_MAX)
		return db_fail(err, DB_ERR_INVALID, "an order names 1..%d identifiers",
		               DB_ACME_IDENTS_MAX);
	if ((rc = db_check_text("identifiers", a->identifiers, 65536, err)) != DB_OK ||
	    (rc = db_check_text("profile", a->profile, 64, err)) != DB_OK)
		return rc;
	if (!(a->out->identifiers = strdup(a->identifiers)))
		return db_fail(err, DB_ERR_INVALID, "out of memory");
	return DB_OK;
}

/* The statements of db_acme_order_create, in the open transaction, without its audit: the
 * account's row locked; its counts judged and the order added in one statement; one per
 * identifier (authorization, challenges, link). a->out gets the order as a read would give
 * it (answered from what was written, not read again). A refusal by the rate limits
 * (DB_ERR_STATE, a->opts->limited) changes nothing. */
static enum db_status order_create(struct db *db, struct db_acme_order_new *a, struct db_err *err)
{
	struct db_acme_order_opts *o = a->opts;
	struct db_acme_order *out = a->out;
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t order_id = 0, expires = 0, orders = 0, pending = 0, oldest = 0;
	int all_reused = 1;

	/* The statements in one round trip. The account's row locked first: a parallel newOrder
	 * of the same account waits there until this one commits, then counts this order too
	 * (rate limits under concurrency: the second statement's snapshot is taken after the
	 * lock is granted). Then the counts and the order in one statement: the order is added
	 * only when the account is there (and, with o->account_thumbprint, valid with that key:
	 * judged again there, so that a refusal has changed nothing) and the limits allow it (a
	 * limit <= 0: none). Each count stops at its limit (all a refusal needs to know; no
	 * limit: nothing counted), so its cost does not grow with the account's history; the
	 * pending authorizations are counted on their partial index (0023). It leaves the new
	 * order's id for the statements after it (NEW_ORDER, '' when it added none): one per
	 * identifier (order_authz_sql), which do nothing when no order was added. */
	/* clang-format off */
	static const char *const head[] = {
	    "SELECT status, thumbprint FROM acme_accounts WHERE id = $1::bigint FOR UPDATE",
	    "WITH c AS (SELECT (SELECT count(*) FROM (SELECT 1 FROM acme_orders"
	    " WHERE account_id = $1::bigint"
	    " AND created_at > now() - make_interval(secs => $2::bigint)"
	    " LIMIT greatest($8::bigint, 0)) w) AS orders,"
	    " (SELECT count(*) FROM (SELECT 1 FROM acme_authorizations"
	    " WHERE account_id = $1::bigint AND status = 'pending' AND expires_at > now()"
	    " LIMIT greatest($9::bigint, 0)) w) AS pending,"
	    " (SELECT " EPOCH0("min(created_at)") " FROM acme_orders"
	    " WHERE account_id = $1::bigint"
	    " AND created_at > now() - make_interval(secs => $2::bigint)) AS oldest),"
	    " o AS (INSERT INTO acme_orders (account_id, identifiers, profile, expires_at,"
	    " not_before, not_after) SELECT $1::bigint, $3, $4,"
	    " now() + make_interval(secs => $5::bigint),"
	    " to_timestamp(nullif($6::bigint, 0)), to_timestamp(nullif($7::bigint, 0))"
	    " FROM c WHERE ($8::bigint <= 0 OR c.orders < $8::bigint)"
	    " AND ($9::bigint <= 0 OR c.pending + $10::bigint <= $9::bigint)"
	    " AND EXISTS (SELECT 1 FROM acme_accounts WHERE id = $1::bigint"
	    " AND ($11::text IS NULL OR (status = 'valid' AND thumbprint = $11::text)))"
	    " RETURNING id, " EPOCH0("expires_at") " AS expires)"
	    " SELECT c.orders, c.pending, c.oldest, coalesce(o.id, 0), coalesce(o.expires, 0),"
	    " set_config('hsmca.new_order', coalesce(o.id::text, ''), true)"
	    " FROM c LEFT JOIN o ON true",
	};
	/* clang-format on */
	enum { HEAD = 2, N = HEAD + DB_ACME_IDENTS_MAX };
	/* Each identifier's parameters (a statement's are 9 KB: on the heap) */
	struct authz_args {
		struct db_params p;
		char types[64], toks[3 * 48];
	} *az = calloc(a->n, sizeof(*az));
	struct db_params q = {0}, *ps[N] = {&q, &p};
	const char *sql[N] = {head[0], head[1]};
	PGresult *res[N] = {NULL};
	char what[64];

	db_param_int(&q, a->account_id);
	db_param_int(&p, a->account_id);
	db_param_int(&p, o->window_seconds);
	db_param_text(&p, a->identifiers);
	db_param_text(&p, a->profile);
	db_param_int(&p, a->order_ttl);
	db_param_int(&p, o->not_before);
	db_param_int(&p, o->not_after);
	db_param_int(&p, o->orders_max);
	db_param_int(&p, o->pending_max);
	db_param_int(&p, (int64_t)a->n);
	if (o->account_thumbprint)
		db_param_text(&p, o->account_thumbprint);
	else
		db_param_null(&p);
	if (!az)
		return db_fail(err, DB_ERR_UNAVAILABLE, "adding an ACME order: out of memory");
	for (size_t i = 0; i < a->n; i++) {
		order_authz_params(a->account_id, &a->idents[i], a->authz_ttl,
		                   a->tokens + i * DB_ACME_CHALLS, az[i].types, az[i].toks,
		                   &az[i].p);
		sql[HEAD + i] = order_authz_sql;
		ps[HEAD + i] = &az[i].p;
	}
	snprintf(what, sizeof(what), "adding an order of ACME account %lld",
	         (long long)a->account_id);
	rc = db_exec_many(db, 0, HEAD + a->n, sql, ps, res, 0, err, what);
	r = res[1];
	if (rc == DB_OK && PQntuples(res[0]) != 1)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no such ACME account");
	/* The account judged as it is now, under its lock (the request was verified with a key
	 * its server had cached): valid, with that key. */
	if (rc == DB_OK && o->account_thumbprint &&
	    (strcmp(PQgetvalue(res[0], 0, 0), "valid") ||
	     strcmp(PQgetvalue(res[0], 0, 1), o->account_thumbprint))) {
		o->limited = 3;
		rc = db_fail(err, DB_ERR_STATE, "ACME account %lld is not valid with this key",
		             (long long)a->account_id);
	}
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &orders) ||
	                    db_get_int64(r, 0, 1, &pending) || db_get_int64(r, 0, 2, &oldest) ||
	                    db_get_int64(r, 0, 3, &order_id) || db_get_int64(r, 0, 4, &expires)))
		rc = db_fail(err, DB_ERR_QUERY, "adding an ACME order: unreadable row");
	if (rc == DB_OK && !order_id) {
		if (o->orders_max > 0 && orders >= o->orders_max) {
			o->limited = 1;
			o->count = orders;
			o->oldest = oldest;
		} else {
			o->limited = 2;
			o->count = pending;
		}
		rc = db_fail(err, DB_ERR_STATE, "the account's rate limit refuses the order");
	}
	/* Each identifier's authorization: its id, and 1 when it was reused. */
	for (size_t i = 0; rc == DB_OK && i < a->n; i++) {
		PGresult *x = res[HEAD + i];
		if (PQntuples(x) != 1 || db_get_int64(x, 0, 0, &out->authz[out->n_authz]))
			rc = db_fail(err, DB_ERR_QUERY,
			             "adding an ACME authorization: no id returned");
		else
			all_reused &= !strcmp(PQgetvalue(x, 0, 1), "1");
		if (rc == DB_OK)
			out->n_authz++;
	}
	for (size_t i = 0; i < HEAD + a->n; i++)
		PQclear(res[i]);
	free(az);
	r = NULL;
	/* Every authorization reused and valid: the order is ready at once. */
	if (rc == DB_OK && all_reused) {
		struct db_params u = {0};
		db_param_int(&u, order_id);
		rc = db_exec(db,
		             "UPDATE acme_orders SET status = 'ready' WHERE id = $1::bigint"
		             " AND NOT " SOME_AUTHZ_NOT_VALID("$1::bigint") " RETURNING id",
		             &u, &r, err, "ACME order %lld", (long long)order_id);
		all_reused = rc == DB_OK && PQntuples(r) == 1;
		PQclear(r);
		r = NULL;
	}
	if (rc != DB_OK)
		return rc;
	/* What db_acme_order_get would read once committed: authorizations in the order of
	 * their ids, each once. */
	qsort(out->authz, out->n_authz, sizeof(out->authz[0]), cmp_id);
	{
		size_t k = 0;
		for (size_t i = 0; i < out->n_authz; i++)
			if (!k || out->authz[k - 1] != out->authz[i])
				out->authz[k++] = out->authz[i];
		out->n_authz = k;
	}
	out->id = order_id;
	out->account_id = a->account_id;
	snprintf(out->status, sizeof(out->status), "%s", all_reused ? "ready" : "pending");
	out->expires_at = expires;
	snprintf(out->profile, sizeof(out->profile), "%s", a->profile);
	out->not_before = o->not_before;
	out->not_after = o->not_after;
	return DB_OK;
}

enum db_status db_acme_order_create(struct db *db, int64_t account_id,
                                    const struct db_acme_ident *idents, size_t n,
                                    const char *identifiers, const char *profile, int64_t order_ttl,
                                    int64_t authz_ttl, const char (*tokens)[44],
                                    struct db_acme_order_opts *o,
                                    const struct db_audit_entry *audit, struct db_acme_order *out,
                                    struct db_err *err)
{
	struct db_acme_order_new a = {.account_id = account_id,
	                              .idents = idents,
	                              .n = n,
	                              .identifiers = identifiers,
	                              .profile = profile,
	                              .order_ttl = order_ttl,
	                              .authz_ttl = authz_ttl,
	                              .tokens = tokens,
	                              .opts = o,
	                              .out = out};
	enum db_status rc = order_create_check(&a, err);

	if (rc == DB_OK && (rc = db_begin(db, err)) == DB_OK) {
		rc = order_create(db, &a, err);
		if (rc == DB_OK)
			rc = audit_commit(db, "order", out->id, audit, err);
		if (rc != DB_OK)
			db_rollback(db);
	}
	if (rc != DB_OK)
		db_acme_order_clear(out);
	return rc;
}

/* The statement of a challenge's start (change c, CHALL_START), in the open transaction,
 * without its audit: the challenge of account c->account_id from pending to processing (its
 * authorization pending, unexpired, no other challenge of it processing; with
 * c->account_thumbprint, the account valid with that key, judged in the same statement), and
 * what c->started wants to know of it. */
static enum db_status challenge_start(struct db *db, struct db_acme_change *c, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	db_param_int(&p, c->id);
	db_param_int(&p, c->account_id);
	if (c->account_thumbprint)
		db_param_text(&p, c->account_thumbprint);
	else
		db_param_null(&p);
	rc = db_exec(
	    db,
	    "UPDATE acme_challenges c SET status = 'processing', started_at = now()"
	    " FROM acme_authorizations a"
	    " WHERE c.id = $1::bigint AND a.id = (" AUTHZ_OF_CHALL ")"
	    " AND a.account_id = $2::bigint"
	    " AND c.status = 'pending' AND a.status = 'pending' AND a.expires_at > now()"
	    " AND NOT EXISTS (SELECT 1 FROM acme_challenges o WHERE o.authz_id = (" AUTHZ_OF_CHALL
	    ") AND o.status = 'processing') AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM"
	    " acme_accounts ac WHERE ac.id = $2::bigint AND ac.status = 'valid'"
	    " AND ac.thumbprint = $3::text))"
	    " RETURNING c.id, c.type, c.token, a.id, a.identifier_type, a.identifier",
	    &p, &r, err, "starting ACME challenge %lld", (long long)c->id);
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_STATE, "the challenge is not pending");
	if (rc == DB_OK && c->started) {
		struct db_acme_started *st = c->started;
		memset(st, 0, sizeof(*st));
		copy(st->type, sizeof(st->type), r, 0, 1);
		copy(st->token, sizeof(st->token), r, 0, 2);
		copy(st->ident_type, sizeof(st->ident_type), r, 0, 4);
		copy(st->ident, sizeof(st->ident), r, 0, 5);
		if (db_get_int64(r, 0, 3, &st->authz_id))
			rc = db_fail(err, DB_ERR_QUERY, "ACME challenge: unreadable row");
	}
	PQclear(r);
	return rc;
}

/* Change c (CHALL_START) alone, with its audit entry, committed together. */
static enum db_status challenge_start_alone(struct db *db, struct db_acme_change *c,
                                            struct db_err *err)
{
	enum db_status rc;

	if ((rc = db_begin(db, err)) != DB_OK)
		return rc;
	rc = challenge_start(db, c, err);
	if (rc == DB_OK)
		rc = audit_commit(db, "chall", c->id, c->audit, err);
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}

enum db_status db_acme_challenge_start(struct db *db, int64_t chall_id, int64_t account_id,
                                       const struct db_audit_entry *audit, struct db_err *err)
{
	struct db_acme_change c = {
	    .kind = DB_ACME_CHALL_START, .id = chall_id, .account_id = account_id, .audit = audit};

	return challenge_start_alone(db, &c, err);
}

/* The statements of db_acme_challenge_done, in the open transaction, without its audit. */
static enum db_status challenge_done(struct db *db, int64_t chall_id, int valid,
                                     const char *error_type, const char *error_detail,
                                     int64_t reuse, struct db_err *err)
{
	/* Three statements in one round trip, each still a statement of its own, in this order,
	 * seeing what the ones before did. The challenge from processing to its result; then,
	 * only if that was done (AUTHZ_OF_CHALL_CHANGED: else they change nothing), the
	 * authorization's orders locked and the authorization (valid for reuse seconds from now,
	 * or invalid) in one statement: the lock is a condition of no row (a one-time filter,
	 * run before the authorization is read or changed, so the orders are locked before the
	 * authorization, in the order a deactivation locks them). Two challenges of one order
	 * finishing at once are recorded one after the other, so the second, whose next
	 * statement takes its snapshot after the lock, sees the first's authorization valid and
	 * makes the order ready. Then the orders (ready once every authorization is valid;
	 * invalid with it). Neither of the last two refuses anything. */
	/* clang-format off */
	static const char *const sql[] = {
	    "UPDATE acme_challenges SET status = $2::text, error_type = $3, error_detail = $4,"
	    " validated_at = CASE WHEN $2::text = 'valid' THEN now() END"
	    " WHERE id = $1::bigint AND status = 'processing' RETURNING id",
	    "WITH l AS (" ORDERS_LOCK(AUTHZ_OF_CHALL_CHANGED) ")"
	    " UPDATE acme_authorizations SET status = $2::text, expires_at = CASE WHEN $2::text ="
	    " 'valid' THEN now() + make_interval(secs => $3::bigint) ELSE expires_at END"
	    " WHERE (SELECT count(*) FROM l) >= 0 AND id = " AUTHZ_OF_CHALL_CHANGED
	    " AND status = 'pending'",
	    "UPDATE acme_orders o SET status = CASE WHEN $2 = 'valid' THEN 'ready'"
	    " ELSE 'invalid' END, error_type = CASE WHEN $2 = 'valid' THEN ''"
	    " ELSE 'unauthorized' END, error_detail = CASE WHEN $2 = 'valid' THEN ''"
	    " ELSE 'an authorization of the order failed' END"
	    " WHERE $3::bigint >= 0 AND o.status = 'pending' AND o.expires_at > now()"
	    " AND o.id = ANY (" ORDERS_OF(AUTHZ_OF_CHALL_CHANGED) ") AND ($2 = 'invalid'"
	    " OR NOT " SOME_AUTHZ_NOT_VALID("o.id") ")",
	};
	/* clang-format on */
	struct db_params p = {0}, q = {0};
	struct db_params *ps[3] = {&p, &q, &q};
	PGresult *res[3] = {NULL, NULL, NULL};
	enum db_status rc;
	char what[64];

	if ((rc = db_check_text("problem", error_type, 32, err)) != DB_OK ||
	    (rc = db_check_text("detail", error_detail, 512, err)) != DB_OK)
		return rc;
	db_param_int(&p, chall_id);
	db_param_text(&p, valid ? "valid" : "invalid");
	db_param_text(&p, valid ? "" : error_type);
	db_param_text(&p, valid ? "" : error_detail);
	db_param_int(&q, chall_id);
	db_param_text(&q, valid ? "valid" : "invalid");
	db_param_int(&q, reuse);
	snprintf(what, sizeof(what), "finishing ACME challenge %lld", (long long)chall_id);
	rc = db_exec_many(db, 0, 3, sql, ps, res, 0, err, what);
	if (rc == DB_OK && PQntuples(res[0]) != 1)
		rc = db_fail(err, DB_ERR_STATE, "the challenge is not processing");
	for (size_t i = 0; i < 3; i++)
		PQclear(res[i]);
	return rc;
}

enum db_status db_acme_challenge_done(struct db *db, int64_t chall_id, int valid,
                                      const char *error_type, const char *error_detail,
                                      int64_t reuse, const struct db_audit_entry *audit,
                                      struct db_err *err)
{
	enum db_status rc;

	if ((rc = db_begin(db, err)) != DB_OK)
		return rc;
	rc = challenge_done(db, chall_id, valid, error_type, error_detail, reuse, err);
	if (rc == DB_OK)
		rc = audit_commit(db, "chall", chall_id, audit, err);
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}

/* The tail of a statement whose CTE m moves an order: the audit entry (its six texts, the
 * parameters `entry`) appended only when m moved it, and one row saying `moved` (an
 * expression of how many m moved) and the entry's seq (order_moved_judge reads it). */
#define ORDER_MOVED_TAIL(entry, moved)                                                             \
	" e AS (INSERT INTO audit_log (actor, role, action, object, outcome, detail)"              \
	" SELECT " entry " FROM m RETURNING seq)"                                                  \
	" SELECT " moved ", (SELECT seq FROM e)"
#define ORDER_MOVED_AUDIT(entry) ORDER_MOVED_TAIL(entry, "(SELECT count(*) FROM m)")

/* An order's move with its audit entry, in one statement ($1 the order, $2 from, $3 to, $4 the
 * serial, $5 $6 the problem, $7..$12 the entry): outside a transaction, its own commit. */
static const char order_move_audit_sql[] =
    "WITH m AS (UPDATE acme_orders SET status = $3, cert_serial = $4, error_type = $5,"
    " error_detail = $6 WHERE id = $1::bigint AND status = $2::text"
    " AND ($2::text <> 'ready' OR expires_at > now()) RETURNING id)," ORDER_MOVED_AUDIT(
        "$7, $8, $9, $10, $11, $12");

/* What an order's move with its audit entry did: DB_OK, or DB_ERR_STATE when it moved nothing
 * (said as for the move to valid with its certificate; db_acme_order_move says its own). */
static enum db_status order_moved_judge(const PGresult *r, struct db_err *err)
{
	int64_t moved = 0, seq = 0;

	if (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &moved) != 0)
		return db_fail(err, DB_ERR_QUERY, "ACME order: unreadable row");
	if (moved != 1)
		return db_fail(err, DB_ERR_STATE,
		               "the order is not processing, or its certificate was not stored");
	if (PQgetisnull(r, 0, 1) || db_get_int64(r, 0, 1, &seq) != 0 || seq <= 0)
		return db_fail(err, DB_ERR_QUERY, "ACME order: no audit entry came back");
	return DB_OK;
}

enum db_status db_acme_order_move(struct db *db, int64_t id, const char *from, const char *to,
                                  const char *cert_serial, const char *error_type,
                                  const char *error_detail, const struct db_audit_entry *audit,
                                  struct db_err *err)
{
	struct db_audit_entry e = *audit;
	struct db_params p = {0};
	PGresult *r = NULL;
	char object[48];
	enum db_status rc;

	if (db->in_tx)
		return db_fail(err, DB_ERR_STATE, "ACME order %lld: a transaction is open already",
		               (long long)id);
	if ((rc = db_check_text("problem", error_type, 32, err)) != DB_OK ||
	    (rc = db_check_text("detail", error_detail, 1024, err)) != DB_OK)
		return rc;
	snprintf(object, sizeof(object), "order/%lld", (long long)id);
	e.object = object;
	db_param_int(&p, id);
	db_param_text(&p, from);
	db_param_text(&p, to);
	if (cert_serial)
		db_param_text(&p, cert_serial);
	else
		db_param_null(&p);
	db_param_text(&p, error_type);
	db_param_text(&p, error_detail);
	if ((rc = db_audit_entry_params(&e, &p, err)) != DB_OK)
		return rc;
	rc = db_exec(db, order_move_audit_sql, &p, &r, err, "ACME order %lld", (long long)id);
	if (rc == DB_OK && (rc = order_moved_judge(r, err)) == DB_ERR_STATE)
		db_fail(err, DB_ERR_STATE, "the order is not %s", from);
	PQclear(r);
	return rc;
}

/* The order's move to valid in the transaction that stores its certificate ($1 the order,
 * $2..$7 the audit entry, then db_cert_store_with's $8 authority, $9 serial, $10 its hex):
 * only once the certificate is stored, as db_acme_order_move's would be. */
static const char order_valid_sql[] =
    "WITH m AS (UPDATE acme_orders SET status = 'valid', cert_serial = $10, error_type = '',"
    " error_detail = '' WHERE id = $1::bigint AND status = 'processing' AND EXISTS (SELECT 1"
    " FROM certificates WHERE authority_id = $8 AND serial = $9 AND status = 'issued')"
    " RETURNING id)," ORDER_MOVED_AUDIT("$2, $3, $4, $5, $6, $7");

/* The order's move to processing in the transaction that reserves its certificate's serial
 * ($1 the order, $2..$7 the audit entry): as db_acme_order_move's from ready, but one that
 * finds the order not ready fails (a division by the rows it moved), so that nothing of the
 * transaction commits, the reservation neither (db_cert_reserve_with). */
static const char order_processing_sql[] =
    "WITH m AS (UPDATE acme_orders SET status = 'processing' WHERE id = $1::bigint"
    " AND status = 'ready' AND expires_at > now() RETURNING id)," ORDER_MOVED_TAIL(
        "$2, $3, $4, $5, $6, $7", "1 / (SELECT count(*)::integer FROM m)");

/* A db_with of order id's move (statement sql) with its audit entry (its object set here). */
static struct db_with *order_with(int64_t id, const struct db_audit_entry *audit, const char *sql,
                                  struct db_err *err)
{
	struct db_with *w = calloc(1, sizeof(*w));
	struct db_audit_entry e = *audit;

	if (!w) {
		db_fail(err, DB_ERR_UNAVAILABLE, "ACME order %lld: out of memory", (long long)id);
		return NULL;
	}
	snprintf(w->object, sizeof(w->object), "order/%lld", (long long)id);
	e.object = w->object;
	w->sql = sql;
	w->judge = order_moved_judge;
	db_param_int(&w->p, id);
	if (db_audit_entry_params(&e, &w->p, err) != DB_OK) {
		free(w);
		return NULL;
	}
	return w;
}

struct db_with *db_acme_order_processing_with_reserve(int64_t id,
                                                      const struct db_audit_entry *audit,
                                                      struct db_err *err)
{
	struct db_with *w = order_with(id, audit, order_processing_sql, err);

	if (w)
		w->refused = "the order is not ready";
	return w;
}

struct db_with *db_acme_order_valid_with_store(int64_t id, const struct db_audit_entry *audit,
                                               struct db_err *err)
{
	struct db_with *w = order_with(id, audit, order_valid_sql, err);

	if (w)
		w->rc = db_fail(&w->err, DB_ERR_STATE, "the certificate was not stored");
	return w;
}

/* One change of a group, in the open transaction. No savepoint is needed: a change is refused
 * (DB_ERR_STATE, DB_ERR_INVALID) only before it has changed anything (its text checked first,
 * its first statement an UPDATE that finds no row in the state it needs), and any other
 * failure is an SQL error that breaks the whole transaction, after which every change is done
 * again alone (db_acme_changes). */
static enum db_status change_one(struct db *db, struct db_acme_change *c)
{
	enum db_status rc;

	switch (c->kind) {
	case DB_ACME_ORDER_CREATE:
		if ((rc = order_create_check(c->order, &c->err)) == DB_OK &&
		    (rc = order_create(db, c->order, &c->err)) == DB_OK)
			c->id = c->order->out->id;
		return rc;
	case DB_ACME_CHALL_START:
		return challenge_start(db, c, &c->err);
	default:
		return challenge_done(db, c->id, c->valid, c->error_type, c->error_detail, c->reuse,
		                      &c->err);
	}
}

/* A group's changes in the order their rows are locked in: new orders (their account's row)
 * before challenges' results (their orders) before challenges' starts, each kind by id, so that
 * two groups committed at once (hsmca-cad lets two lead) take the rows they share in the same
 * order. (Two results of one group whose orders interleave with another group's could still
 * deadlock; PostgreSQL then fails one group, and its changes are done again alone.) */
static int change_rank(const struct db_acme_change *c)
{
	return c->kind == DB_ACME_ORDER_CREATE ? 0 : c->kind == DB_ACME_CHALL_DONE ? 1 : 2;
}

static int change_cmp(const void *a, const void *b)
{
	const struct db_acme_change *x = *(struct db_acme_change *const *)a,
	                            *y = *(struct db_acme_change *const *)b;
	int64_t ix = x->kind == DB_ACME_ORDER_CREATE ? x->order->account_id : x->id,
	        iy = y->kind == DB_ACME_ORDER_CREATE ? y->order->account_id : y->id;

	if (change_rank(x) != change_rank(y))
		return change_rank(x) - change_rank(y);
	return ix < iy ? -1 : ix > iy;
}

void db_acme_changes(struct db *db, struct db_acme_change **in, size_t n)
{
	struct db_acme_change *sorted[DB_GROUP_MAX], **c = in;
	struct db_err err = {0};
	enum db_status rc;
	size_t ok = 0;

	for (size_t i = 0; i < n; i++) {
		memset(&c[i]->err, 0, sizeof(c[i]->err));
		c[i]->rc = DB_OK;
		if (c[i]->kind == DB_ACME_ORDER_CREATE)
			memset(c[i]->order->out, 0, sizeof(*c[i]->order->out));
	}
	if (n == 1 || n > DB_GROUP_MAX) /* a group of more: each alone (cad's are 32 at most) */
		goto alone;
	memcpy(sorted, in, n * sizeof(*in));
	qsort(sorted, n, sizeof(*sorted), change_cmp);
	c = sorted;
	if ((rc = db_begin(db, &err)) != DB_OK)
		goto alone;
	for (size_t i = 0; i < n; i++) {
		c[i]->rc = change_one(db, c[i]);
		if (c[i]->rc == DB_OK)
			ok++;
		else if (c[i]->err.status != DB_ERR_STATE && c[i]->err.status != DB_ERR_INVALID)
			break; /* the transaction itself may be broken: each alone */
	}
	for (size_t i = 0; i < n; i++)
		if (c[i]->rc != DB_OK && c[i]->err.status != DB_ERR_STATE &&
		    c[i]->err.status != DB_ERR_INVALID)
			goto again;
	/* The audit entries last, in one statement that travels with the COMMIT: the chain's
	 * lock is held from the first of them until the COMMIT, once for the whole group. */
	if (ok) {
		struct db_audit_entry e[DB_GROUP_MAX];
		const struct db_audit_entry *ep[DB_GROUP_MAX];
		char object[DB_GROUP_MAX][48];
		int64_t seq[DB_GROUP_MAX];
		size_t m = 0;
		for (size_t i = 0; i < n; i++) {
			if (c[i]->rc != DB_OK)
				continue;
			e[m] = *c[i]->audit;
			snprintf(object[m], sizeof(object[m]), "%s/%lld",
			         c[i]->kind == DB_ACME_ORDER_CREATE ? "order" : "chall",
			         (long long)c[i]->id);
			e[m].object = object[m];
			ep[m] = &e[m];
			m++;
		}
		if (db_audit_append_many_commit(db, ep, m, seq, &err) != DB_OK)
			goto again;
	} else if (db_commit(db, &err) != DB_OK) {
		goto again;
	}
	for (size_t i = 0; i < n; i++) /* refused orders: nothing to answer with */
		if (c[i]->kind == DB_ACME_ORDER_CREATE && c[i]->rc != DB_OK)
			db_acme_order_clear(c[i]->order->out);
	return;
again:
	/* Something other than a change's own refusal failed: nothing of the group is
	 * committed; each change is done again alone, in a transaction of its own. */
	db_rollback(db);
alone:
	for (size_t i = 0; i < n; i++) {
		struct db_acme_change *x = c[i];
		memset(&x->err, 0, sizeof(x->err));
		switch (x->kind) {
		case DB_ACME_ORDER_CREATE: {
			struct db_acme_order_new *a = x->order;
			db_acme_order_clear(a->out); /* what the group's attempt filled */
			x->rc =
			    db_acme_order_create(db, a->account_id, a->idents, a->n, a->identifiers,
			                         a->profile, a->order_ttl, a->authz_ttl, a->tokens,
			                         a->opts, x->audit, a->out, &x->err);
			x->id = x->rc == DB_OK ? a->out->id : 0;
			break;
		}
		case DB_ACME_CHALL_START:
			x->rc = challenge_start_alone(db, x, &x->err);
			break;
		default:
			x->rc =
			    db_acme_challenge_done(db, x->id, x->valid, x->error_type,
			                           x->error_detail, x->reuse, x->audit, &x->err);
			break;
		}
	}
}

enum db_status db_acme_authz_deactivate(struct db *db, int64_t id, int64_t account_id,
                                        const struct db_audit_entry *audit, struct db_err *err)
{
	struct db_params p = {0}, q = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_begin(db, err)) != DB_OK)
		return rc;
	db_param_int(&q, id);
	rc = db_exec(db, ORDERS_OF_AUTHZ_LOCK, &q, &r, err,
	             "locking the orders of ACME authorization %lld", (long long)id);
	PQclear(r);
	r = NULL;
	db_param_int(&p, id);
	db_param_int(&p, account_id);
	if (rc == DB_OK)
		rc = db_exec(
		    db,
		    "UPDATE acme_authorizations SET status = 'deactivated' WHERE id = $1::bigint"
		    " AND account_id = $2::bigint AND status IN ('pending', 'valid')"
		    " AND expires_at > now() RETURNING id",
		    &p, &r, err, "deactivating ACME authorization %lld", (long long)id);
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_STATE, "the authorization is neither pending nor valid");
	PQclear(r);
	r = NULL;
	if (rc == DB_OK) {
		rc = db_exec(
		    db,
		    "UPDATE acme_orders SET status = 'invalid', error_type = 'unauthorized',"
		    " error_detail = 'an authorization of the order was deactivated'"
		    " WHERE status IN ('pending', 'ready') AND id = ANY (" ORDERS_OF_AUTHZ ")",
		    &q, &r, err, "ACME authorization %lld", (long long)id);
		PQclear(r);
	}
	if (rc == DB_OK)
		rc = audit_commit(db, "authz", id, audit, err);
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}

enum db_status db_acme_challenges_processing(struct db *db, int64_t older_than,
                                             struct db_acme_stuck *out, size_t max, size_t *n,
                                             struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*n = 0;
	db_param_int(&p, older_than);
	db_param_int(&p, (int64_t)max);
	rc = db_exec(
	    db,
	    "SELECT c.id, c.type, c.token, a.identifier_type, a.identifier,"
	    " acct.thumbprint, acct.principal, " EPOCH0(
	        "c.started_at") " FROM"
	                        " acme_challenges c JOIN acme_authorizations a ON a.id = c.authz_id"
	                        " JOIN acme_accounts acct ON acct.id = a.account_id"
	                        " WHERE c.status = 'processing' AND (c.started_at IS NULL OR"
	                        " c.started_at <= now() - make_interval(secs => $1::bigint))"
	                        " ORDER BY c.started_at NULLS FIRST, c.id LIMIT $2::bigint",
	    &p, &r, err, "listing ACME challenges left processing");
	for (int i = 0; rc == DB_OK && i < PQntuples(r) && (size_t)i < max; i++) {
		struct db_acme_stuck *s = &out[*n];
		memset(s, 0, sizeof(*s));
		if (db_get_int64(r, i, 0, &s->chall_id) || db_get_int64(r, i, 7, &s->started_at)) {
			rc = db_fail(err, DB_ERR_QUERY, "ACME challenge: unreadable row");
			break;
		}
		copy(s->type, sizeof(s->type), r, i, 1);
		copy(s->token, sizeof(s->token), r, i, 2);
		copy(s->ident_type, sizeof(s->ident_type), r, i, 3);
		copy(s->ident, sizeof(s->ident), r, i, 4);
		copy(s->thumbprint, sizeof(s->thumbprint), r, i, 5);
		copy(s->principal, sizeof(s->principal), r, i, 6);
		(*n)++;
	}
	PQclear(r);
	return rc;
}
