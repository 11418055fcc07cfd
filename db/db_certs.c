/* The certificate lifecycle: reserve before signing (invariant 2 of docs/architecture.md),
 * issued or failed, revoke, hold and release (invariant 3), lookup and list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "db_internal.h"

#define PROFILE_MAX 128
#define SUBJECT_MAX 4096
#define SAN_MAX 1024
#define REQUESTER_MAX 255
/* 9999-12-31T23:59:59Z, the last time X.509 can express */
#define TIME_MAX 253402300799LL

static const char *const status_names[] = {
    [DB_CERT_RESERVED] = "reserved", [DB_CERT_ISSUED] = "issued", [DB_CERT_FAILED] = "failed",
    [DB_CERT_REVOKED] = "revoked",   [DB_CERT_HOLD] = "hold",
};

static const char *const san_names[] = {
    [DB_SAN_DNS] = "dns",
    [DB_SAN_IP] = "ip",
    [DB_SAN_EMAIL] = "email",
    [DB_SAN_URI] = "uri",
};

const char *db_cert_status_name(enum db_cert_status s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

int db_cert_status_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (!strcmp(name, status_names[i]))
			return (int)i;
	return -1;
}

const char *db_san_kind_name(enum db_san_kind k)
{
	return (unsigned)k < sizeof(san_names) / sizeof(san_names[0]) ? san_names[k] : "?";
}

static int san_kind_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(san_names) / sizeof(san_names[0]); i++)
		if (!strcmp(name, san_names[i]))
			return (int)i;
	return -1;
}

static enum db_status check_serial(const uint8_t *serial, size_t len, struct db_err *err)
{
	if (!serial || len == 0 || len > DB_SERIAL_MAX)
		return db_fail(err, DB_ERR_INVALID, "a serial is 1 to %d bytes", DB_SERIAL_MAX);
	if (serial[0] == 0)
		return db_fail(err, DB_ERR_INVALID,
		               "a serial is given without leading zero bytes (and is not zero)");
	return DB_OK;
}

static enum db_status check_request(const struct db_cert_request *q, struct db_err *err)
{
	enum db_status rc;

	if (q->authority_id <= 0)
		return db_fail(err, DB_ERR_INVALID, "reserve: no authority");
	if ((rc = check_serial(q->serial, q->serial_len, err)) != DB_OK ||
	    (rc = db_check_text("profile", q->profile, PROFILE_MAX, err)) != DB_OK ||
	    (rc = db_check_text("requester", q->requester, REQUESTER_MAX, err)) != DB_OK)
		return rc;
	if (!q->profile[0] || !q->requester[0])
		return db_fail(err, DB_ERR_INVALID, "reserve: profile and requester are required");
	if (!q->subject || q->subject_len > SUBJECT_MAX)
		return db_fail(err, DB_ERR_INVALID, "subject missing or longer than %d bytes",
		               SUBJECT_MAX);
	if (!db_text_valid(q->subject, q->subject_len))
		return db_fail(err, DB_ERR_INVALID,
		               "subject is not valid UTF-8 text or contains a NUL byte");
	if (q->n_sans > DB_SANS_MAX || (q->n_sans && !q->sans))
		return db_fail(err, DB_ERR_INVALID, "at most %d SANs", DB_SANS_MAX);
	for (size_t i = 0; i < q->n_sans; i++) {
		const struct db_san *s = &q->sans[i];
		if ((unsigned)s->kind >= sizeof(san_names) / sizeof(san_names[0]))
			return db_fail(err, DB_ERR_INVALID, "SAN %zu: unknown kind", i + 1);
		if (!s->value || s->len == 0 || s->len > SAN_MAX)
			return db_fail(err, DB_ERR_INVALID, "SAN %zu (%s): empty or over %d bytes",
			               i + 1, san_names[s->kind], SAN_MAX);
		if (!db_text_valid(s->value, s->len))
			return db_fail(err, DB_ERR_INVALID,
			               "SAN %zu (%s): not valid UTF-8 text or contains a NUL byte",
			               i + 1, san_names[s->kind]);
	}
	if (q->not_before < 0 || q->not_after > TIME_MAX || q->not_before >= q->not_after)
		return db_fail(err, DB_ERR_INVALID,
		               "validity: not_before must precede not_after, within 1970..9999");
	if (q->profile_version < 0)
		return db_fail(err, DB_ERR_INVALID, "profile version must not be negative");
	if (q->crl_shard < 0)
		return db_fail(err, DB_ERR_INVALID, "CRL shard must not be negative");
	return DB_OK;
}

/* Reserving one certificate: its parameters (RESERVE_PARAMS, then a kind and a value per SAN),
 * and, for a statement of its own, its SQL (a placeholder pair per SAN). */
struct reserve_stmt {
	struct db_params p;
	char *sql;
	char hex[2 * DB_SERIAL_MAX + 1];
	const struct db_cert_request *req;
};

#define RESERVE_PARAMS 12 /* reserve_params' before the SANs' */

static enum db_status reserve_params(struct reserve_stmt *s, const struct db_cert_request *req,
                                     struct db_err *err)
{
	struct db_params *p = &s->p;
	enum db_status rc;

	s->req = req;
	rc = check_request(req, err);
	if (rc != DB_OK)
		return rc;
	db_serial_to_hex(req->serial, req->serial_len, s->hex);
	db_param_int(p, req->authority_id);
	db_param_bytes(p, req->serial, req->serial_len);
	db_param_text(p, req->profile);
	db_param_textn(p, req->subject, req->subject_len);
	db_param_int(p, req->not_before);
	db_param_int(p, req->not_after);
	db_param_bytes(p, req->spki_sha256, 32);
	db_param_text(p, req->requester);
	db_param_int(p, req->crl_shard);
	if (req->token_sha256) {
		db_param_bytes(p, req->token_sha256, 32);
		db_param_text(p, req->token_role ? req->token_role : "");
	} else {
		db_param_null(p);
		db_param_null(p);
	}
	db_param_int(p, req->profile_version); /* $12 */
	for (size_t i = 0; i < req->n_sans; i++) {
		db_param_text(p, san_names[req->sans[i].kind]);
		db_param_textn(p, req->sans[i].value, req->sans[i].len);
	}
	return DB_OK;
}

static enum db_status reserve_prepare(struct reserve_stmt *s, const struct db_cert_request *req,
                                      struct db_err *err)
{
	enum db_status rc = reserve_params(s, req, err);
	size_t cap, len;
	char *sql;

	if (rc != DB_OK)
		return rc;
	cap = 1536 + req->n_sans * 64;
	if (!(sql = s->sql = malloc(cap)))
		return db_fail(err, DB_ERR_UNAVAILABLE, "reserving serial %s: out of memory",
		               s->hex);
	/* One statement, so the certificate and its SANs are committed together (it is its own
	 * transaction unless the caller has one open). Only placeholders are generated here. */
	/* Only for an authority that is not retired, in a profile an admin has not switched off:
	 * checked by the statement that reserves, so nothing slips between check and insert.
	 * The API token's clause is written only for a request that brings one: one text for
	 * both would be planned again at every execution for the requests without a token
	 * (their custom plan drops the clause, so PostgreSQL's plan cache judges the generic
	 * plan dearer and never keeps it; docs/database.md "The certificate lifecycle"). */
	len = (size_t)snprintf(sql, cap,
	                       "WITH c AS (INSERT INTO certificates (authority_id, serial, status,"
	                       " profile, subject, not_before, not_after, spki_sha256, requester,"
	                       " crl_shard, profile_version)"
	                       " SELECT $1, $2, 'reserved', $3, $4::text,"
	                       " to_timestamp($5::bigint), to_timestamp($6::bigint), $7, $8, $9,"
	                       " nullif($12::integer, 0)"
	                       " WHERE EXISTS (SELECT 1 FROM authorities a WHERE a.id = $1"
	                       " AND a.status <> 'retired') AND coalesce((SELECT enabled FROM"
	                       " profile_settings WHERE profile = $3), true)%s RETURNING id)",
	                       req->token_sha256
	                           ? " AND EXISTS (SELECT 1 FROM api_tokens t"
	                             " JOIN principals p ON p.id = t.principal_id"
	                             " WHERE t.token_sha256 = $10::bytea AND t.revoked_at IS NULL"
	                             " AND t.expires_at > now() AND NOT p.disabled"
	                             " AND p.role = $11::text AND (p.role <> 'ra' OR EXISTS"
	                             " (SELECT 1 FROM principal_profiles g"
	                             " WHERE g.principal_id = p.id AND g.profile = $3)))"
	                           : " AND $10::bytea IS NULL AND $11::text IS NULL");
	if (req->n_sans) {
		len += (size_t)snprintf(sql + len, cap - len,
		                        ", s AS (INSERT INTO certificate_sans (certificate_id,"
		                        " ordinal, kind, value) SELECT c.id, v.o, v.k, v.v FROM c,"
		                        " (VALUES ");
		for (size_t i = 0; i < req->n_sans; i++) {
			int kind = RESERVE_PARAMS + 1 + 2 * (int)i;
			len +=
			    (size_t)snprintf(sql + len, cap - len, "%s(%zu, $%d::text, $%d::text)",
			                     i ? ", " : "", i, kind, kind + 1);
		}
		len += (size_t)snprintf(sql + len, cap - len, ") AS v (o, k, v))");
	}
	snprintf(sql + len, cap - len, " SELECT id FROM c");
	return DB_OK;
}

/* Why a reservation was refused without a row: retired, disabled, or the token. */
static enum db_status reserve_refused(const struct reserve_stmt *s, struct db_err *err)
{
	return db_fail(err, DB_ERR_STATE,
	               "reserving serial %s: authority %d is retired, profile %s is disabled%s",
	               s->hex, s->req->authority_id, s->req->profile,
	               s->req->token_sha256 ? ", or the API token no longer allows it" : "");
}

static enum db_status reserve_taken(const struct reserve_stmt *s, struct db_err *err)
{
	return db_fail(err, DB_ERR_CONFLICT, "serial %s exists already for authority %d", s->hex,
	               s->req->authority_id);
}

/* What the statement returned: the new row's id, or none (retired or disabled). */
static enum db_status reserve_judge(const struct reserve_stmt *s, const PGresult *r, int64_t *id,
                                    struct db_err *err)
{
	int64_t v;

	if (PQntuples(r) == 0)
		return reserve_refused(s, err);
	if (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &v) != 0)
		return db_fail(err, DB_ERR_QUERY, "reserving serial %s: no id returned", s->hex);
	*id = v;
	return DB_OK;
}

/* db_cert_reserve (w NULL: the statement alone, in the caller's transaction if one is open)
 * and db_cert_reserve_with (w: BEGIN, the statement, w's, COMMIT in one round trip). */
static enum db_status reserve_run(struct db *db, const struct db_cert_request *req, int64_t *id,
                                  struct db_with *w, struct db_err *err)
{
	struct reserve_stmt *s = calloc(1, sizeof(*s));
	PGresult *res[2] = {NULL, NULL};
	enum db_status rc;

	*id = 0;
	if (w)
		w->rc = db_fail(&w->err, DB_ERR_UNAVAILABLE,
		                "not made: the reservation did not commit");
	if (!s)
		return db_fail(err, DB_ERR_UNAVAILABLE, "reserving a serial: out of memory");
	rc = w && db->in_tx
	         ? db_fail(err, DB_ERR_STATE, "reserving a serial: a transaction is open")
	         : reserve_prepare(s, req, err);
	if (rc == DB_OK && !w) {
		rc = db_exec(db, s->sql, &s->p, &res[0], err,
		             "reserving serial %s for authority %d", s->hex, req->authority_id);
	} else if (rc == DB_OK) {
		const char *sql[2] = {s->sql, w->sql};
		struct db_params *ps[2] = {&s->p, &w->p};
		char what[96];
		snprintf(what, sizeof(what), "reserving serial %s with a change of its own",
		         s->hex);
		rc = db_exec_many(db, 1, 2, sql, ps, res, 1, err, what);
		if (rc != DB_OK && db->in_tx)
			db_rollback(db); /* a statement failed: nothing is committed */
		if (rc != DB_OK && !strcmp(err->sqlstate, "22012")) { /* w refused: see db_with */
			w->rc = db_fail(&w->err, DB_ERR_STATE, "%s", w->refused);
			rc = db_fail(err, DB_ERR_STATE, "%s", w->refused);
		}
	}
	if (rc == DB_ERR_CONFLICT) {
		rc = reserve_taken(s, err);
	} else if (rc == DB_OK) {
		if (w)
			w->rc = w->judge(res[1], &w->err);
		rc = reserve_judge(s, res[0], id, err);
	}
	PQclear(res[0]);
	PQclear(res[1]);
	free(s->sql);
	free(s);
	return rc;
}

enum db_status db_cert_reserve(struct db *db, const struct db_cert_request *req, int64_t *id,
                               struct db_err *err)
{
	return reserve_run(db, req, id, NULL, err);
}

enum db_status db_cert_reserve_with(struct db *db, const struct db_cert_request *req, int64_t *id,
                                    struct db_with *w, struct db_err *err)
{
	return reserve_run(db, req, id, w, err);
}

/* The reservations of a group in one statement: each of reserve_params' first twelve
 * parameters as an array ($1..$12) of that parameter for every item, unnested with the item's
 * ordinal o; the SANs of all items as four arrays ($13..$16: the item's ordinal, the SAN's
 * ordinal, kind, value). Each item is judged as db_cert_reserve's statement judges one
 * (`allowed`: authority not retired, profile enabled, the API token still good), once, and
 * the allowed ones are inserted in the items' order; a serial taken already (by a committed
 * row, or one committed meanwhile) inserts nothing for that item and the others go on (ON
 * CONFLICT DO NOTHING), so one bad item never takes the group down. One result row per item,
 * in the items' order: allowed, and the new row's id (NULL: refused or taken). */
static const char reserve_group_sql[] =
    "WITH v AS (SELECT * FROM unnest($1::text[]::integer[], $2::bytea[], $3::text[],"
    "  $4::text[], $5::text[]::bigint[], $6::text[]::bigint[], $7::bytea[], $8::text[],"
    "  $9::text[]::integer[], $10::bytea[], $11::text[], $12::text[]::integer[])"
    "  WITH ORDINALITY AS v (authority_id, serial, profile, subject, not_before, not_after,"
    "  spki, requester, crl_shard, token, token_role, profile_version, o)),"
    " ok AS MATERIALIZED (SELECT v.*, EXISTS (SELECT 1 FROM authorities a"
    "  WHERE a.id = v.authority_id AND a.status <> 'retired') AND coalesce((SELECT enabled"
    "  FROM profile_settings ps WHERE ps.profile = v.profile), true)"
    "  AND (v.token IS NULL OR EXISTS (SELECT 1 FROM api_tokens t"
    "  JOIN principals p ON p.id = t.principal_id"
    "  WHERE t.token_sha256 = v.token AND t.revoked_at IS NULL"
    "  AND t.expires_at > now() AND NOT p.disabled AND p.role = v.token_role"
    "  AND (p.role <> 'ra' OR EXISTS (SELECT 1 FROM principal_profiles g"
    "  WHERE g.principal_id = p.id AND g.profile = v.profile)))) AS allowed FROM v),"
    " c AS (INSERT INTO certificates (authority_id, serial, status, profile, subject,"
    "  not_before, not_after, spki_sha256, requester, crl_shard, profile_version)"
    "  SELECT authority_id, serial, 'reserved', profile, subject, to_timestamp(not_before),"
    "  to_timestamp(not_after), spki, requester, crl_shard, nullif(profile_version, 0)"
    "  FROM ok WHERE allowed ORDER BY o"
    "  ON CONFLICT ON CONSTRAINT certificates_serial_unique DO NOTHING"
    "  RETURNING id, authority_id, serial),"
    " s AS (INSERT INTO certificate_sans (certificate_id, ordinal, kind, value)"
    "  SELECT c.id, n.ordinal, n.kind, n.value FROM unnest($13::text[]::integer[],"
    "  $14::text[]::smallint[], $15::text[], $16::text[]) AS n (o, ordinal, kind, value)"
    "  JOIN ok ON ok.o = n.o JOIN c ON c.authority_id = ok.authority_id"
    "  AND c.serial = ok.serial)"
    " SELECT ok.allowed, c.id FROM ok LEFT JOIN c ON c.authority_id = ok.authority_id"
    "  AND c.serial = ok.serial ORDER BY ok.o";

/* The group statement's parameters for st[0..m) (prepared): arrays gets the buffers (free
 * them), *nums the SANs' ordinals as text (free it). */
static enum db_status reserve_group_params(struct reserve_stmt *const *st, size_t m,
                                           struct db_params *p, uint8_t *arrays[RESERVE_PARAMS + 4],
                                           char **nums)
{
	static const unsigned item_oids[RESERVE_PARAMS] = {25, 17, 25, 25, 25, 25,
	                                                   17, 25, 25, 17, 25, 25};
	const struct db_params *ps[DB_GROUP_MAX];
	const char **v = NULL;
	int *len = NULL;
	size_t total = 0, t = 0;
	enum db_status rc;

	for (size_t k = 0; k < m; k++) {
		ps[k] = &st[k]->p;
		total += st[k]->req->n_sans;
	}
	rc = db_column_arrays(ps, m, RESERVE_PARAMS, item_oids, p, arrays);
	/* One row per SAN, four columns: the item's ordinal (1-based, as WITH ORDINALITY), the
	 * SAN's own, its kind and its value (the item's parameters as they are). */
	if (rc == DB_OK && (!(*nums = malloc(2 * 12 * (total + 1))) ||
	                    !(v = malloc(4 * (total + 1) * sizeof(*v))) ||
	                    !(len = malloc(4 * (total + 1) * sizeof(*len)))))
		rc = DB_ERR_UNAVAILABLE;
	for (size_t k = 0; rc == DB_OK && k < m; k++)
		for (size_t i = 0; i < st[k]->req->n_sans; i++, t++) {
			const struct db_params *q = &st[k]->p;
			int j = RESERVE_PARAMS + 2 * (int)i;

			v[t] = *nums + 24 * t;
			v[total + t] = *nums + 24 * t + 12;
			len[t] = snprintf(*nums + 24 * t, 12, "%zu", k + 1);
			len[total + t] = snprintf(*nums + 24 * t + 12, 12, "%zu", i);
			v[2 * total + t] = q->values[j]; /* kind: text */
			len[2 * total + t] = (int)strlen(q->values[j]);
			v[3 * total + t] = q->values[j + 1]; /* value: its bytes, binary */
			len[3 * total + t] = q->lengths[j + 1];
		}
	for (size_t c = 0; rc == DB_OK && c < 4; c++)
		rc = db_array_param(p, &arrays[RESERVE_PARAMS + c], 25, total, v + c * total,
		                    len + c * total);
	free(v);
	free(len);
	return rc;
}

/* 1 when the group was done together (each item's rc set), 0 when its items must go alone:
 * the statement failed and nothing was committed. An item that does not prepare (refused by
 * its checks) is judged alone without the database, and the others go on. */
static int reserve_together(struct db *db, struct db_cert_reservation *const *items, size_t n)
{
	struct reserve_stmt *all = calloc(n, sizeof(*all)), *st[DB_GROUP_MAX];
	struct db_cert_reservation *in[DB_GROUP_MAX];
	uint8_t *arrays[RESERVE_PARAMS + 4] = {0};
	struct db_params p = {0};
	struct db_err err = {0};
	char *nums = NULL, what[64];
	PGresult *r = NULL;
	enum db_status rc;
	size_t m = 0;
	int done = 0;

	if (!all || db->in_tx || n > DB_GROUP_MAX)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct db_cert_reservation *it = items[i];

		it->id = 0;
		it->rc = reserve_params(&all[i], it->req, &it->err);
		if (it->rc == DB_OK) {
			st[m] = &all[i];
			in[m++] = it;
		}
	}
	/* The same serial twice would be matched twice: such a group goes one by one. */
	for (size_t a = 0; a < m; a++)
		for (size_t b = a + 1; b < m; b++)
			if (in[a]->req->authority_id == in[b]->req->authority_id &&
			    in[a]->req->serial_len == in[b]->req->serial_len &&
			    !memcmp(in[a]->req->serial, in[b]->req->serial, in[a]->req->serial_len))
				goto out;
	done = 1;
	if (m == 0)
		goto out;
	snprintf(what, sizeof(what), "reserving %zu serials", m);
	if (reserve_group_params(st, m, &p, arrays, &nums) != DB_OK) {
		done = 0;
		goto out;
	}
	rc = db_exec_group(db, 1, reserve_group_sql, &p, &r, &err, what);
	if (rc != DB_OK && db->in_tx) {
		db_rollback(db); /* the statement failed: nothing is committed */
		done = 0;
		goto out;
	}
	if (rc == DB_OK && PQntuples(r) != (int)m)
		rc = db_fail(&err, DB_ERR_QUERY, "%s: %d rows came back", what, PQntuples(r));
	for (size_t k = 0; k < m; k++) {
		if (rc != DB_OK) { /* the commit failed (its outcome is unknown), or the rows */
			in[k]->rc = rc;
			in[k]->err = err;
		} else if (strcmp(PQgetvalue(r, (int)k, 0), "t") != 0) {
			in[k]->rc = reserve_refused(st[k], &in[k]->err);
		} else if (PQgetisnull(r, (int)k, 1)) {
			in[k]->rc = reserve_taken(st[k], &in[k]->err);
		} else if (db_get_int64(r, (int)k, 1, &in[k]->id) != 0) {
			in[k]->rc = db_fail(&in[k]->err, DB_ERR_QUERY,
			                    "reserving serial %s: no id returned", st[k]->hex);
		}
	}
out:
	PQclear(r);
	for (size_t j = 0; j < sizeof(arrays) / sizeof(arrays[0]); j++)
		free(arrays[j]);
	free(nums);
	free(all);
	return done;
}

void db_cert_reserve_many(struct db *db, struct db_cert_reservation *const *items, size_t n)
{
	for (size_t i = 0, k; i < n; i += k) {
		k = n - i < DB_GROUP_MAX ? n - i : DB_GROUP_MAX;
		if (k > 1 && reserve_together(db, items + i, k))
			continue;
		for (size_t j = i; j < i + k; j++)
			items[j]->rc =
			    db_cert_reserve(db, items[j]->req, &items[j]->id, &items[j]->err);
	}
}

/* One DER element at *pp (bounded by end): its tag must be `tag` (universal, or context class
 * when ctx), constructed as asked. On success *pp is past the element, and the element's whole
 * encoding and its contents are returned. */
static int der_next(const unsigned char **pp, const unsigned char *end, int tag, int ctx,
                    int constructed, const unsigned char **elem, size_t *elem_len,
                    const unsigned char **content, long *content_len)
{
	const unsigned char *start = *pp, *c = *pp;
	int t, cls, ret;
	long len;

	if (end <= start)
		return -1;
	ret = ASN1_get_object(&c, &len, &t, &cls, (long)(end - start));
	if (ret & 0x80 || ret == 0x21 || t != tag ||
	    cls != (ctx ? V_ASN1_CONTEXT_SPECIFIC : V_ASN1_UNIVERSAL) ||
	    !!(ret & V_ASN1_CONSTRUCTED) != !!constructed || len > end - c)
		return -1;
	*pp = c + len;
	if (elem) {
		*elem = start;
		*elem_len = (size_t)(*pp - start);
	}
	if (content) {
		*content = c;
		*content_len = len;
	}
	return 0;
}

/* What a signed certificate says about itself, to hold it against its reservation: its serial,
 * the SHA-256 of its SubjectPublicKeyInfo and its issuer's DER. Read straight off the DER (the
 * elements are copied as they are, which is what re-encoding them would give for DER): a full
 * d2i_X509 would decode the public key through OpenSSL's decoders, the most expensive part of
 * storing a certificate. */
static enum db_status der_facts(const uint8_t *der, size_t der_len, uint8_t *serial,
                                size_t *serial_len, uint8_t spki_sha256[32], uint8_t **issuer,
                                int *issuer_len, struct db_err *err)
{
	const unsigned char *p = der, *end = der + der_len, *tbs, *tend, *c;
	const unsigned char *sn, *iss, *spki;
	size_t iss_len, spki_len;
	long clen, sn_len;
	unsigned int mdlen;

	*issuer = NULL;
	/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } */
	if (der_next(&p, end, V_ASN1_SEQUENCE, 0, 1, NULL, NULL, &c, &clen) != 0 || p != end)
		goto bad;
	p = c;
	end = c + clen;
	if (der_next(&p, end, V_ASN1_SEQUENCE, 0, 1, NULL, NULL, &tbs, &clen) != 0 ||
	    der_next(&p, end, V_ASN1_SEQUENCE, 0, 1, NULL, NULL, NULL, NULL) != 0 ||
	    der_next(&p, end, V_ASN1_BIT_STRING, 0, 0, NULL, NULL, NULL, NULL) != 0 || p != end)
		goto bad;
	p = tbs;
	tend = tbs + clen;
	/* version [0] EXPLICIT (optional), serialNumber, signature, issuer, validity, subject,
	 * subjectPublicKeyInfo, ... */
	if (p < tend && *p == 0xa0 && der_next(&p, tend, 0, 1, 1, NULL, NULL, NULL, NULL) != 0)
		goto bad;
	if (der_next(&p, tend, V_ASN1_INTEGER, 0, 0, NULL, NULL, &sn, &sn_len) != 0 ||
	    der_next(&p, tend, V_ASN1_SEQUENCE, 0, 1, NULL, NULL, NULL, NULL) != 0 ||
	    der_next(&p, tend, V_ASN1_SEQUENCE, 0, 1, &iss, &iss_len, NULL, NULL) != 0 ||
	    der_next(&p, tend, V_ASN1_SEQUENCE, 0, 1, NULL, NULL, NULL, NULL) != 0 ||
	    der_next(&p, tend, V_ASN1_SEQUENCE, 0, 1, NULL, NULL, NULL, NULL) != 0 ||
	    der_next(&p, tend, V_ASN1_SEQUENCE, 0, 1, &spki, &spki_len, NULL, NULL) != 0)
		goto bad;
	/* A positive serial of at most 20 bytes, minimally encoded. */
	if (sn_len < 1 || sn[0] & 0x80 || (sn_len > 1 && sn[0] == 0 && !(sn[1] & 0x80)))
		return db_fail(err, DB_ERR_INVALID,
		               "the signed certificate's serial is not a positive 20-byte number");
	if (sn[0] == 0) {
		sn++;
		sn_len--;
	}
	if (sn_len == 0 || sn_len > DB_SERIAL_MAX)
		return db_fail(err, DB_ERR_INVALID,
		               "the signed certificate's serial is not a positive 20-byte number");
	memcpy(serial, sn, (size_t)sn_len);
	*serial_len = (size_t)sn_len;
	if (!EVP_Digest(spki, spki_len, spki_sha256, &mdlen, EVP_sha256(), NULL))
		return db_fail(err, DB_ERR_INVALID,
		               "hashing the signed certificate's public key failed");
	*issuer = OPENSSL_memdup(iss, iss_len);
	if (!*issuer)
		return db_fail(err, DB_ERR_UNAVAILABLE, "out of memory");
	*issuer_len = (int)iss_len;
	return DB_OK;
bad:
	return db_fail(err, DB_ERR_INVALID,
	               "the signed certificate is not one DER X.509 certificate");
}

/* Storing one signed certificate: the statement's parameters and what they point to. */
struct issued_stmt {
	struct db_params p;
	uint8_t der_serial[DB_SERIAL_MAX], spki[32], *issuer;
	char hex[2 * DB_SERIAL_MAX + 1];
	int32_t authority_id;
};

/* Lock the row, then store only if it is reserved and the certificate is the one that was
 * reserved (same public key, issued by this authority). */
static const char issued_sql[] =
    "WITH t AS (SELECT c.id, c.status, c.spki_sha256 = $4 AS key_ok,"
    "  a.subject_der = $5 AS issuer_ok"
    "  FROM certificates c JOIN authorities a ON a.id = c.authority_id"
    "  WHERE c.authority_id = $1 AND c.serial = $2 FOR UPDATE OF c),"
    " u AS (UPDATE certificates c SET status = 'issued', der = $3,"
    "  issued_at = now() FROM t WHERE c.id = t.id AND t.status = 'reserved'"
    "  AND t.key_ok AND t.issuer_ok RETURNING c.id)"
    " SELECT t.status, t.key_ok, t.issuer_ok, (SELECT count(*) FROM u) FROM t";

static enum db_status issued_prepare(struct issued_stmt *s, int32_t authority_id,
                                     const uint8_t *serial, size_t serial_len, const uint8_t *der,
                                     size_t der_len, struct db_err *err)
{
	size_t der_serial_len = 0;
	int issuer_len = 0;
	enum db_status rc;

	s->authority_id = authority_id;
	rc = check_serial(serial, serial_len, err);
	if (rc != DB_OK)
		return rc;
	db_serial_to_hex(serial, serial_len, s->hex);
	if (!der || der_len == 0)
		return db_fail(err, DB_ERR_INVALID, "serial %s: no signed certificate", s->hex);
	rc = der_facts(der, der_len, s->der_serial, &der_serial_len, s->spki, &s->issuer,
	               &issuer_len, err);
	if (rc != DB_OK)
		return rc;
	if (der_serial_len != serial_len || memcmp(s->der_serial, serial, serial_len) != 0)
		return db_fail(err, DB_ERR_INVALID,
		               "serial %s: the signed certificate carries another serial", s->hex);
	db_param_int(&s->p, authority_id);
	db_param_bytes(&s->p, serial, serial_len);
	db_param_bytes(&s->p, der, der_len);
	db_param_bytes(&s->p, s->spki, 32);
	db_param_bytes(&s->p, s->issuer, (size_t)issuer_len);
	return DB_OK;
}

/* What the statement found, in row `row` (none, or a NULL status: no such certificate). */
static enum db_status issued_judge(const struct issued_stmt *s, const PGresult *r, int row,
                                   struct db_err *err)
{
	const char *st;

	if (row >= PQntuples(r) || PQgetisnull(r, row, 0))
		return db_fail(err, DB_ERR_NOT_FOUND,
		               "no certificate with serial %s for authority %d", s->hex,
		               s->authority_id);
	st = PQgetvalue(r, row, 0);
	if (strcmp(st, "reserved") != 0)
		return db_fail(err, DB_ERR_STATE,
		               "serial %s is %s, not reserved: the certificate is not stored",
		               s->hex, st);
	if (strcmp(PQgetvalue(r, row, 1), "t") != 0)
		return db_fail(
		    err, DB_ERR_INVALID,
		    "serial %s: the signed certificate's public key is not the reserved one",
		    s->hex);
	if (strcmp(PQgetvalue(r, row, 2), "t") != 0)
		return db_fail(err, DB_ERR_INVALID,
		               "serial %s: the signed certificate's issuer is not authority %d",
		               s->hex, s->authority_id);
	if (strcmp(PQgetvalue(r, row, 3), "1") != 0)
		return db_fail(err, DB_ERR_QUERY, "serial %s: the certificate was not stored",
		               s->hex);
	return DB_OK;
}

enum db_status db_cert_mark_issued(struct db *db, int32_t authority_id, const uint8_t *serial,
                                   size_t serial_len, const uint8_t *der, size_t der_len,
                                   struct db_err *err)
{
	struct issued_stmt s = {0};
	PGresult *r = NULL;
	enum db_status rc;

	rc = issued_prepare(&s, authority_id, serial, serial_len, der, der_len, err);
	if (rc == DB_OK)
		rc = db_exec(db, issued_sql, &s.p, &r, err,
		             "storing the certificate with serial %s", s.hex);
	if (rc == DB_OK)
		rc = issued_judge(&s, r, 0, err);
	PQclear(r);
	OPENSSL_free(s.issuer);
	return rc;
}

/* Storing a certificate and appending its audit entry in one statement: the entry is
 * inserted only when the certificate was stored ($6..$11 are the entry's fields). */
static const char issued_audit_sql[] =
    "WITH t AS (SELECT c.id, c.status, c.spki_sha256 = $4 AS key_ok,"
    "  a.subject_der = $5 AS issuer_ok"
    "  FROM certificates c JOIN authorities a ON a.id = c.authority_id"
    "  WHERE c.authority_id = $1 AND c.serial = $2 FOR UPDATE OF c),"
    " u AS (UPDATE certificates c SET status = 'issued', der = $3,"
    "  issued_at = now() FROM t WHERE c.id = t.id AND t.status = 'reserved'"
    "  AND t.key_ok AND t.issuer_ok RETURNING c.id),"
    " e AS (INSERT INTO audit_log (actor, role, action, object, outcome, detail)"
    "  SELECT $6, $7, $8, $9, $10, $11 WHERE EXISTS (SELECT 1 FROM u) RETURNING seq)"
    " SELECT t.status, t.key_ok, t.issuer_ok, (SELECT count(*) FROM u),"
    "  (SELECT seq FROM e) FROM t";

/* The statement for item: the certificate's parameters, then the audit entry's. */
static enum db_status store_prepare(struct issued_stmt *s, const struct db_cert_store *it,
                                    struct db_err *err)
{
	enum db_status rc = issued_prepare(s, it->authority_id, it->serial, it->serial_len, it->der,
	                                   it->der_len, err);

	return rc != DB_OK ? rc : db_audit_entry_params(&it->audit, &s->p, err);
}

/* What the statement did for item, in row `row`. */
static void store_judge(const struct issued_stmt *s, const PGresult *r, int row,
                        struct db_cert_store *it)
{
	it->audit_seq = 0;
	it->rc = issued_judge(s, r, row, &it->err);
	if (it->rc == DB_OK && (PQgetisnull(r, row, 4) ||
	                        db_get_int64(r, row, 4, &it->audit_seq) != 0 || it->audit_seq <= 0))
		it->rc = db_fail(&it->err, DB_ERR_QUERY,
		                 "serial %s: stored, but no audit entry came back", s->hex);
}

/* One certificate: a statement that is its own transaction. */
/* Item it ready to be stored alone, in a transaction of its own: its statement in s, or
 * its rc and err say why not. */
static void store_alone_prepare(struct db *db, struct db_cert_store *it, struct issued_stmt *s)
{
	it->audit_seq = 0;
	it->rc = db->in_tx ? db_fail(&it->err, DB_ERR_STATE,
	                             "storing a certificate: a transaction is open already")
	                   : store_prepare(s, it, &it->err);
}

static void store_one(struct db *db, struct db_cert_store *it)
{
	struct issued_stmt s = {0};
	PGresult *r = NULL;

	store_alone_prepare(db, it, &s);
	if (it->rc == DB_OK)
		it->rc = db_exec(db, issued_audit_sql, &s.p, &r, &it->err,
		                 "storing the certificate with serial %s", s.hex);
	if (it->rc == DB_OK)
		store_judge(&s, r, 0, it);
	PQclear(r);
	OPENSSL_free(s.issuer);
}

/* The stores of a group in one statement: each of store_prepare's eleven parameters becomes an
 * array ($1..$11) of that parameter for every item, unnested with the item's ordinal o. Each
 * certificate is found and locked by a subquery of its own (a row-locking subquery is not
 * merged into a join), so by an index on the serial whatever the statistics say: as a
 * join, a table the statistics still think small (a fresh one) was scanned whole and hashed
 * for every group. Each is stored when it is reserved and is the one that
 * was reserved (as issued_audit_sql decides for one), and the audit entries of those stored
 * are inserted in the items' order, so that the chain's trigger (per row, in insertion order)
 * hashes them in that order and gives them consecutive seqs (the transaction holds the
 * chain's lock): the k-th stored item gets the first seq + k. One result row per item, in the
 * items' order, with issued_audit_sql's columns but the first seq in the last (a NULL
 * status: no such certificate). One statement instead of one per certificate: the executor is
 * set up and the table's CHECK constraints are read once per group. */
static const char store_group_sql[] =
    "WITH v AS (SELECT * FROM unnest($1::text[]::integer[], $2::bytea[], $3::bytea[],"
    "  $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
    "  $11::text[]) WITH ORDINALITY AS v (authority_id, serial, der, spki, issuer, actor,"
    "  role, action, object, outcome, detail, o)),"
    " t AS (SELECT v.o, c.id, c.status, c.spki_sha256 = v.spki AS key_ok,"
    "  a.subject_der = v.issuer AS issuer_ok"
    "  FROM v CROSS JOIN LATERAL (SELECT x.id, x.status, x.spki_sha256, x.authority_id"
    "  FROM certificates x WHERE x.authority_id = v.authority_id AND x.serial = v.serial"
    "  FOR UPDATE) c JOIN authorities a ON a.id = c.authority_id),"
    " u AS (UPDATE certificates c SET status = 'issued', der = v.der, issued_at = now()"
    "  FROM t JOIN v ON v.o = t.o WHERE c.id = t.id AND t.status = 'reserved'"
    "  AND t.key_ok AND t.issuer_ok RETURNING t.o),"
    " e AS (INSERT INTO audit_log (actor, role, action, object, outcome, detail)"
    "  SELECT v.actor, v.role, v.action, v.object, v.outcome, v.detail"
    "  FROM v JOIN u ON u.o = v.o ORDER BY v.o RETURNING seq)"
    " SELECT t.status, t.key_ok, t.issuer_ok, CASE WHEN u.o IS NULL THEN 0 ELSE 1 END,"
    "  (SELECT min(seq) FROM e) FROM v LEFT JOIN t ON t.o = v.o LEFT JOIN u ON u.o = v.o"
    "  ORDER BY v.o";

#define STORE_PARAMS 11 /* store_prepare's: 5 of the certificate, 6 of its audit entry */
/* Items 0..m) (their statement state in st, prepared) as the group statement's parameters in
 * p; arrays holds the buffers (free them). */
static enum db_status store_group_params(const struct issued_stmt *st, size_t m,
                                         struct db_params *p, uint8_t *arrays[STORE_PARAMS])
{
	/* the certificate's integer and four byteas, the audit entry's six texts */
	static const unsigned oids[STORE_PARAMS] = {25, 17, 17, 17, 17, 25, 25, 25, 25, 25, 25};
	const struct db_params *ps[DB_GROUP_MAX];

	for (size_t k = 0; k < m; k++)
		ps[k] = &st[k].p;
	return db_column_arrays(ps, m, STORE_PARAMS, oids, p, arrays);
}

/* 1 when the group was done together (each item's rc set), 0 when its items must go alone:
 * the statement failed and nothing was committed. An item that does not prepare (its DER or
 * audit entry refused) is judged alone without the database, and the others go on. */
static int store_together(struct db *db, struct db_cert_store *const *items, size_t n)
{
	struct issued_stmt st[DB_GROUP_MAX];
	struct db_cert_store *in[DB_GROUP_MAX];
	uint8_t *arrays[STORE_PARAMS] = {0};
	struct db_params p = {0};
	struct db_err err = {0};
	PGresult *r = NULL;
	enum db_status rc;
	char what[64];
	int64_t first, stored = 0;
	size_t m = 0;
	int done = 0;

	if (db->in_tx || n > DB_GROUP_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct db_cert_store *it = items[i];

		memset(&st[m], 0, sizeof(st[m]));
		it->audit_seq = 0;
		it->rc = store_prepare(&st[m], it, &it->err);
		if (it->rc == DB_OK && st[m].p.n == STORE_PARAMS) {
			in[m++] = it;
			continue;
		}
		if (it->rc == DB_OK)
			it->rc = db_fail(&it->err, DB_ERR_QUERY, "storing: unexpected parameters");
		OPENSSL_free(st[m].issuer);
	}
	/* The same certificate twice would be matched twice: such a group goes one by one. */
	for (size_t a = 0; a < m; a++)
		for (size_t b = a + 1; b < m; b++)
			if (in[a]->authority_id == in[b]->authority_id &&
			    in[a]->serial_len == in[b]->serial_len &&
			    !memcmp(in[a]->serial, in[b]->serial, in[a]->serial_len))
				goto out;
	done = 1;
	if (m == 0)
		goto out;
	snprintf(what, sizeof(what), "storing %zu certificates", m);
	rc = store_group_params(st, m, &p, arrays);
	if (rc != DB_OK) {
		done = 0;
		goto out;
	}
	rc = db_exec_group(db, 1, store_group_sql, &p, &r, &err, what);
	if (rc != DB_OK && db->in_tx) {
		db_rollback(db); /* a statement failed: nothing is committed */
		done = 0;
		goto out;
	}
	if (rc == DB_OK && PQntuples(r) != (int)m)
		rc = db_fail(&err, DB_ERR_QUERY, "%s: %d rows came back", what, PQntuples(r));
	for (size_t k = 0; k < m; k++) {
		if (rc == DB_OK) {
			in[k]->audit_seq = 0;
			in[k]->rc = issued_judge(&st[k], r, (int)k, &in[k]->err);
			if (in[k]->rc != DB_OK)
				continue;
			if (PQgetisnull(r, (int)k, 4) || db_get_int64(r, (int)k, 4, &first) != 0 ||
			    first <= 0)
				in[k]->rc = db_fail(
				    &in[k]->err, DB_ERR_QUERY,
				    "serial %s: stored, but no audit entry came back", st[k].hex);
			else
				in[k]->audit_seq = first + stored++;
		} else { /* the commit failed (its outcome is unknown), or the rows are wrong */
			in[k]->rc = rc;
			in[k]->err = err;
		}
	}
out:
	PQclear(r);
	for (int j = 0; j < STORE_PARAMS; j++)
		free(arrays[j]);
	for (size_t k = 0; k < m; k++)
		OPENSSL_free(st[k].issuer);
	return done;
}

void db_cert_store_many(struct db *db, struct db_cert_store *const *items, size_t n)
{
	/* A certificate that does not store changes nothing (its entry is not appended either),
	 * so the others commit. */
	for (size_t i = 0, k; i < n; i += k) {
		k = n - i < DB_GROUP_MAX ? n - i : DB_GROUP_MAX;
		if (k > 1 && store_together(db, items + i, k))
			continue;
		for (size_t j = i; j < i + k; j++)
			store_one(db, items[j]);
	}
}

void db_cert_store_with(struct db *db, struct db_cert_store *it, struct db_with *w)
{
	struct issued_stmt s = {0};
	struct db_params wp = w->p, *ps[2] = {&s.p, &wp};
	const char *sql[2] = {issued_audit_sql, w->sql};
	PGresult *res[2] = {NULL, NULL};

	memset(&w->err, 0, sizeof(w->err));
	store_alone_prepare(db, it, &s);
	if (it->rc == DB_OK) {
		/* w's statement finds the certificate by these (and changes nothing unless the
		 * store before it in the transaction has stored it). */
		db_param_int(&wp, it->authority_id);
		db_param_bytes(&wp, it->serial, it->serial_len);
		db_param_text(&wp, s.hex);
		it->rc = db_exec_many(db, 1, 2, sql, ps, res, 1, &it->err,
		                      "storing a certificate with a change of its own");
		if (it->rc != DB_OK && db->in_tx)
			db_rollback(db); /* a statement failed: nothing is committed */
	}
	if (it->rc == DB_OK) {
		store_judge(&s, res[0], 0, it);
		w->rc = w->judge(res[1], &w->err);
	} else {
		w->rc = it->rc;
		w->err = it->err;
	}
	PQclear(res[0]);
	PQclear(res[1]);
	OPENSSL_free(s.issuer);
}

enum db_status db_with_outcome(const struct db_with *w, struct db_err *err)
{
	if (w->rc != DB_OK && err)
		*err = w->err;
	return w->rc;
}

void db_with_free(struct db_with *w)
{
	free(w);
}

/*
 * One status transition on (authority, serial), atomically: lock the row, change it when its
 * status is one of from_sql's, report what it was. *changed is 1 when it changed; 0 when it was
 * in status "same" already; any other status is DB_ERR_STATE. set_sql may use $3... for the
 * n_extra numbers in extra; both SQL fragments are fixed text of the callers below.
 */
static enum db_status transition(struct db *db, const char *op, int32_t authority_id,
                                 const uint8_t *serial, size_t serial_len, const char *set_sql,
                                 const char *from_sql, const char *same, const int64_t *extra,
                                 int n_extra, int *changed, struct db_err *err)
{
	char hex[2 * DB_SERIAL_MAX + 1], sql[1024];
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	const char *st;

	if (changed)
		*changed = 0;
	rc = check_serial(serial, serial_len, err);
	if (rc != DB_OK)
		return rc;
	db_serial_to_hex(serial, serial_len, hex);
	snprintf(sql, sizeof(sql),
	         "WITH t AS (SELECT id, status FROM certificates"
	         "  WHERE authority_id = $1 AND serial = $2 FOR UPDATE),"
	         " u AS (UPDATE certificates c SET %s FROM t"
	         "  WHERE c.id = t.id AND t.status IN (%s) RETURNING c.id)"
	         " SELECT t.status, (SELECT count(*) FROM u) FROM t",
	         set_sql, from_sql);
	db_param_int(&p, authority_id);
	db_param_bytes(&p, serial, serial_len);
	for (int i = 0; i < n_extra; i++)
		db_param_int(&p, extra[i]);
	rc = db_exec(db, sql, &p, &r, err, "%s serial %s", op, hex);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND,
		             "%s: no certificate with serial %s for authority %d", op, hex,
		             authority_id);
		goto out;
	}
	st = PQgetvalue(r, 0, 0);
	if (!strcmp(PQgetvalue(r, 0, 1), "1")) {
		if (changed)
			*changed = 1;
	} else if (!same || strcmp(st, same) != 0) {
		rc = db_fail(err, DB_ERR_STATE, "%s: serial %s is %s", op, hex, st);
	}
out:
	PQclear(r);
	return rc;
}

enum db_status db_cert_mark_failed(struct db *db, int32_t authority_id, const uint8_t *serial,
                                   size_t serial_len, struct db_err *err)
{
	return transition(db, "marking failed", authority_id, serial, serial_len,
	                  "status = 'failed'", "'reserved'", NULL, NULL, 0, NULL, err);
}

enum db_status db_cert_revoke(struct db *db, int32_t authority_id, const uint8_t *serial,
                              size_t serial_len, int reason, int64_t invalidity_date, int *changed,
                              struct db_err *err)
{
	int64_t extra[2] = {reason, invalidity_date};

	*changed = 0;
	if (reason < 0 || reason > 10 || reason == 6 || reason == 7 || reason == 8)
		return db_fail(err, DB_ERR_INVALID,
		               "revocation reason %d is not one of 0-5, 9, 10 (6 is hold)", reason);
	if (invalidity_date < 0 || invalidity_date > (int64_t)time(NULL))
		return db_fail(err, DB_ERR_INVALID, "the invalidity date is in the future");
	return transition(
	    db, "revoking", authority_id, serial, serial_len,
	    "status = 'revoked', revoked_at = now(), revocation_reason = $3::smallint,"
	    " invalidity_date = to_timestamp(nullif($4::bigint, 0))",
	    "'reserved', 'issued', 'hold'", "revoked", extra, 2, changed, err);
}

enum db_status db_cert_hold(struct db *db, int32_t authority_id, const uint8_t *serial,
                            size_t serial_len, int *changed, struct db_err *err)
{
	*changed = 0;
	return transition(db, "holding", authority_id, serial, serial_len,
	                  "status = 'hold', revoked_at = now(), revocation_reason = 6", "'issued'",
	                  "hold", NULL, 0, changed, err);
}

enum db_status db_cert_release(struct db *db, int32_t authority_id, const uint8_t *serial,
                               size_t serial_len, int *changed, struct db_err *err)
{
	*changed = 0;
	return transition(db, "releasing", authority_id, serial, serial_len,
	                  "status = 'issued', revoked_at = NULL, revocation_reason = NULL,"
	                  " invalidity_date = NULL",
	                  "'hold'", "issued", NULL, 0, changed, err);
}

#define EPOCH(col) "floor(extract(epoch FROM " col "))::bigint"
/* The columns parse_cert reads, in order; der last so that list can leave it out. */
#define CERT_COLS_1 "c.id, c.authority_id, c.serial, c.status, c.profile, c.subject, "
#define CERT_COLS_2 EPOCH("c.not_before") ", " EPOCH("c.not_after") ", "
#define CERT_COLS_3 "c.spki_sha256, c.requester, c.crl_shard, " EPOCH("c.created_at") ", "
#define CERT_COLS_4 EPOCH("c.issued_at") ", " EPOCH("c.revoked_at") ", c.revocation_reason, "
#define CERT_COLS_5 EPOCH("c.invalidity_date") ", coalesce(c.profile_version, 0)"
#define CERT_COLS CERT_COLS_1 CERT_COLS_2 CERT_COLS_3 CERT_COLS_4 CERT_COLS_5
enum { COL_DER = 17 };

static int64_t int_or_zero(const PGresult *r, int row, int col)
{
	int64_t v = 0;

	if (db_get_int64(r, row, col, &v) != 0)
		return 0;
	return v;
}

/* One row of CERT_COLS (and der when with_der) into out. -1 if unreadable or no memory. */
static int parse_cert(const PGresult *r, int row, int with_der, struct db_cert *out)
{
	int64_t v;
	int st;

	memset(out, 0, sizeof(*out));
	out->revocation_reason = -1;
	if (db_get_int64(r, row, 0, &out->id) != 0 || db_get_int64(r, row, 1, &v) != 0)
		return -1;
	out->authority_id = (int32_t)v;
	if (db_get_bytes_into(r, row, 2, out->serial, DB_SERIAL_MAX, 0, &out->serial_len) != 0)
		return -1;
	st = db_cert_status_parse(PQgetvalue(r, row, 3));
	if (st < 0)
		return -1;
	out->status = (enum db_cert_status)st;
	out->profile = db_get_text(r, row, 4);
	out->subject = db_get_text(r, row, 5);
	out->requester = db_get_text(r, row, 9);
	if (!out->profile || !out->subject || !out->requester)
		return -1;
	if (db_get_int64(r, row, 6, &out->not_before) != 0 ||
	    db_get_int64(r, row, 7, &out->not_after) != 0 ||
	    db_get_bytes_into(r, row, 8, out->spki_sha256, 32, 1, NULL) != 0 ||
	    db_get_int64(r, row, 10, &v) != 0 || db_get_int64(r, row, 11, &out->created_at) != 0)
		return -1;
	out->crl_shard = (int32_t)v;
	out->issued_at = int_or_zero(r, row, 12);
	out->revoked_at = int_or_zero(r, row, 13);
	if (!PQgetisnull(r, row, 14))
		out->revocation_reason = (int)int_or_zero(r, row, 14);
	out->invalidity_date = int_or_zero(r, row, 15);
	out->profile_version = (int32_t)int_or_zero(r, row, 16);
	if (with_der && db_get_bytes(r, row, COL_DER, &out->der, &out->der_len) != 0)
		return -1;
	return 0;
}

void db_cert_clear(struct db_cert *c)
{
	free(c->profile);
	free(c->subject);
	free(c->requester);
	free(c->der);
	for (size_t i = 0; i < c->n_sans; i++)
		free(c->sans[i].value);
	free(c->sans);
	memset(c, 0, sizeof(*c));
	c->revocation_reason = -1;
}

static enum db_status load_sans(struct db *db, struct db_cert *c, const char *hex,
                                struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int n;

	db_param_int(&p, c->id);
	rc = db_exec(db,
	             "SELECT kind, value FROM certificate_sans WHERE certificate_id = $1"
	             " ORDER BY ordinal",
	             &p, &r, err, "reading the SANs of serial %s", hex);
	if (rc != DB_OK)
		goto out;
	n = PQntuples(r);
	if (n == 0)
		goto out;
	c->sans = calloc((size_t)n, sizeof(*c->sans));
	if (!c->sans) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE,
		             "reading the SANs of serial %s: out of memory", hex);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		int kind = san_kind_parse(PQgetvalue(r, i, 0));
		c->sans[i].value = db_get_text(r, i, 1);
		c->n_sans = (size_t)i + 1;
		if (kind < 0 || !c->sans[i].value) {
			rc = db_fail(err, DB_ERR_QUERY, "serial %s: unreadable SAN %d", hex, i + 1);
			goto out;
		}
		c->sans[i].kind = (enum db_san_kind)kind;
	}
out:
	PQclear(r);
	return rc;
}

enum db_status db_cert_lookup(struct db *db, int32_t authority_id, const uint8_t *serial,
                              size_t serial_len, struct db_cert *out, struct db_err *err)
{
	char hex[2 * DB_SERIAL_MAX + 1];
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int own = 0;

	memset(out, 0, sizeof(*out));
	out->revocation_reason = -1;
	rc = check_serial(serial, serial_len, err);
	if (rc != DB_OK)
		return rc;
	db_serial_to_hex(serial, serial_len, hex);
	/* One snapshot for the row and its SANs. */
	rc = db_tx_enter(db, &own, err);
	if (rc != DB_OK)
		return rc;
	db_param_int(&p, authority_id);
	db_param_bytes(&p, serial, serial_len);
	rc = db_exec(db,
	             "SELECT " CERT_COLS ", c.der FROM certificates c WHERE c.serial = $2"
	             " AND ($1::integer = 0 OR c.authority_id = $1) ORDER BY c.id LIMIT 2",
	             &p, &r, err, "looking up serial %s", hex);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no certificate with serial %s", hex);
		goto out;
	}
	if (PQntuples(r) > 1) {
		rc = db_fail(err, DB_ERR_CONFLICT,
		             "serial %s exists under more than one authority: name the authority",
		             hex);
		goto out;
	}
	if (parse_cert(r, 0, 1, out) != 0) {
		rc =
		    db_fail(err, DB_ERR_QUERY, "serial %s: unreadable row (or out of memory)", hex);
		goto out;
	}
	rc = load_sans(db, out, hex, err);
out:
	PQclear(r);
	rc = db_tx_leave(db, own, rc, err);
	if (rc != DB_OK)
		db_cert_clear(out);
	return rc;
}

enum db_status db_cert_list(struct db *db, const struct db_cert_filter *f, struct db_cert **rows,
                            size_t *n, int64_t *next_after_id, struct db_err *err)
{
	size_t limit = f->limit ? f->limit : 100;
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*rows = NULL;
	*n = 0;
	*next_after_id = 0;
	if (limit > DB_LIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "list: at most %d rows a page", DB_LIST_MAX);
	if (f->status < -1 || f->status > DB_CERT_HOLD)
		return db_fail(err, DB_ERR_INVALID, "list: unknown status filter");
	if ((f->subject &&
	     (rc = db_check_text("subject filter", f->subject, SUBJECT_MAX, err)) != DB_OK) ||
	    (f->san && (rc = db_check_text("SAN filter", f->san, SAN_MAX, err)) != DB_OK))
		return rc;
	if (f->authority_id)
		db_param_int(&p, f->authority_id);
	else
		db_param_null(&p);
	db_param_text(&p, f->status >= 0 ? status_names[f->status] : NULL);
	db_param_text(&p, f->subject);
	db_param_text(&p, f->san);
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
	/* Fixed text; an absent filter is a NULL parameter, which the planner folds away. */
	rc = db_exec(db,
	             "SELECT " CERT_COLS " FROM certificates c"
	             " WHERE ($1::integer IS NULL OR c.authority_id = $1)"
	             " AND ($2::text IS NULL OR c.status = $2)"
	             " AND ($3::text IS NULL OR c.subject = $3)"
	             " AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM certificate_sans s"
	             "  WHERE s.certificate_id = c.id AND s.value = $4))"
	             " AND ($5::bigint IS NULL OR c.not_after >= to_timestamp($5))"
	             " AND ($6::bigint IS NULL OR c.not_after < to_timestamp($6))"
	             " AND c.id > $7 ORDER BY c.id LIMIT $8",
	             &p, &r, err, "listing certificates");
	if (rc != DB_OK)
		goto out;
	rc = db_cert_page(r, limit, "listing certificates", rows, n, next_after_id, err);
out:
	PQclear(r);
	return rc;
}

void db_cert_list_free(struct db_cert *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		db_cert_clear(&rows[i]);
	free(rows);
}

/* For the search in db_certs_search.c: the same columns, parsed the same way. */
const char db_cert_cols[] = CERT_COLS;

enum db_status db_cert_page(const PGresult *r, size_t limit, const char *what,
                            struct db_cert **rows, size_t *n, int64_t *next_after_id,
                            struct db_err *err)
{
	int nt = PQntuples(r);
	size_t got = 0;
	struct db_cert *out;

	if (nt == 0)
		return DB_OK;
	out = calloc((size_t)nt, sizeof(*out));
	if (!out)
		return db_fail(err, DB_ERR_UNAVAILABLE, "%s: out of memory", what);
	for (int i = 0; i < nt && (size_t)i < limit; i++) {
		got = (size_t)i + 1;
		if (parse_cert(r, i, 0, &out[i]) != 0) {
			db_cert_list_free(out, got);
			return db_fail(err, DB_ERR_QUERY, "%s: unreadable row %d", what, i + 1);
		}
	}
	if ((size_t)nt > limit)
		*next_after_id = out[got - 1].id;
	*rows = out;
	*n = got;
	return DB_OK;
}
