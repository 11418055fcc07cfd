/* The audit log: a hash chain appended under a lock, and its verification (invariant 5 of
 * docs/architecture.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "db_internal.h"

/* The chain head is locked with pg_advisory_xact_lock(HSMCA_LOCK_CLASS, 2) by the audit_log
 * table's trigger: an advisory lock because the application role may not lock audit rows (FOR
 * UPDATE needs UPDATE rights), and because an empty log has no row to lock. */
#define CANON_VERSION 1
#define VERIFY_PAGE 1000

static const char *const finding_names[] = {
    [DB_AUDIT_INTACT] = "intact",
    [DB_AUDIT_MODIFIED] = "modified",
    [DB_AUDIT_DELETED] = "deleted",
    [DB_AUDIT_INSERTED] = "inserted",
};

const char *db_audit_finding_name(enum db_audit_finding f)
{
	return (unsigned)f < sizeof(finding_names) / sizeof(finding_names[0]) ? finding_names[f]
	                                                                      : "?";
}

/* The canonical bytes go to a buffer, a digest, or both. */
struct sink {
	uint8_t *out;
	size_t cap, len;
	EVP_MD_CTX *md;
	int md_ok;
};

static void put(struct sink *s, const void *b, size_t n)
{
	if (s->md && !EVP_DigestUpdate(s->md, b, n))
		s->md_ok = 0;
	if (s->out && s->len + n <= s->cap)
		memcpy(s->out + s->len, b, n);
	s->len += n;
}

static void put_u64(struct sink *s, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	put(s, b, 8);
}

static void put_str(struct sink *s, const char *str)
{
	size_t n = strlen(str);
	uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

	put(s, b, 4);
	put(s, str, n);
}

/* Format version 1: 0x01, seq (u64 BE), at in microseconds since the epoch (i64 BE), then
 * actor, role, action, object, outcome, detail, each as u32 BE length and UTF-8 bytes. */
static void canonical(struct sink *s, int64_t seq, int64_t at_us, const struct db_audit_entry *e)
{
	uint8_t v = CANON_VERSION;

	put(s, &v, 1);
	put_u64(s, (uint64_t)seq);
	put_u64(s, (uint64_t)at_us);
	put_str(s, e->actor);
	put_str(s, e->role);
	put_str(s, e->action);
	put_str(s, e->object);
	put_str(s, e->outcome);
	put_str(s, e->detail);
}

size_t db_audit_canonical(int64_t seq, int64_t at_us, const struct db_audit_entry *e, uint8_t *out,
                          size_t cap)
{
	struct sink s = {.out = out, .cap = cap};

	canonical(&s, seq, at_us, e);
	return s.len;
}

/* hash = SHA-256(prev_hash || canonical entry) */
static int entry_hash(const uint8_t prev[32], int64_t seq, int64_t at_us,
                      const struct db_audit_entry *e, uint8_t out[32])
{
	struct sink s = {.md = EVP_MD_CTX_new(), .md_ok = 1};
	unsigned int n = 0;
	int ok;

	ok =
	    s.md && EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) && EVP_DigestUpdate(s.md, prev, 32);
	if (ok)
		canonical(&s, seq, at_us, e);
	ok = ok && s.md_ok && EVP_DigestFinal_ex(s.md, out, &n) && n == 32;
	EVP_MD_CTX_free(s.md);
	return ok ? 0 : -1;
}

static enum db_status check_entry(const struct db_audit_entry *e, struct db_err *err)
{
	enum db_status rc;

	if ((rc = db_check_text("audit actor", e->actor, DB_AUDIT_FIELD_MAX, err)) != DB_OK ||
	    (rc = db_check_text("audit role", e->role, DB_AUDIT_FIELD_MAX, err)) != DB_OK ||
	    (rc = db_check_text("audit action", e->action, DB_AUDIT_FIELD_MAX, err)) != DB_OK ||
	    (rc = db_check_text("audit object", e->object, DB_AUDIT_FIELD_MAX, err)) != DB_OK ||
	    (rc = db_check_text("audit outcome", e->outcome, DB_AUDIT_FIELD_MAX, err)) != DB_OK ||
	    (rc = db_check_text("audit detail", e->detail, DB_AUDIT_DETAIL_MAX, err)) != DB_OK)
		return rc;
	if (!e->actor[0] || !e->action[0])
		return db_fail(err, DB_ERR_INVALID, "an audit entry needs an actor and an action");
	if (strcmp(e->outcome, "success") && strcmp(e->outcome, "denied") &&
	    strcmp(e->outcome, "error"))
		return db_fail(err, DB_ERR_INVALID,
		               "audit outcome \"%s\" is not success, denied or error", e->outcome);
	return DB_OK;
}

/* An append is one INSERT: the table's trigger (migration 0009) takes the chain's lock, reads
 * the head and fills seq, at, prev_hash and hash as entry_hash computes them. */
const char db_audit_insert_sql[] =
    "INSERT INTO audit_log (actor, role, action, object, outcome, detail)"
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq";

enum db_status db_audit_entry_params(const struct db_audit_entry *e, struct db_params *p,
                                     struct db_err *err)
{
	enum db_status rc = check_entry(e, err);

	if (rc != DB_OK)
		return rc;
	db_param_text(p, e->actor);
	db_param_text(p, e->role);
	db_param_text(p, e->action);
	db_param_text(p, e->object);
	db_param_text(p, e->outcome);
	db_param_text(p, e->detail);
	return DB_OK;
}

enum db_status db_audit_seq_of(const PGresult *r, int64_t *seq, struct db_err *err)
{
	if (PQntuples(r) != 1 || db_get_int64(r, 0, 0, seq) != 0 || *seq <= 0) {
		*seq = 0;
		return db_fail(err, DB_ERR_QUERY,
		               "appending an audit entry: no sequence number came back");
	}
	return DB_OK;
}

/* Append e; with commit, the INSERT and the COMMIT of the open transaction travel in one round
 * trip; outside a transaction the INSERT is a transaction of its own. */
static enum db_status append(struct db *db, const struct db_audit_entry *e, int64_t *seq,
                             int commit, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*seq = 0;
	rc = db_audit_entry_params(e, &p, err);
	if (rc != DB_OK)
		return rc;
	if (commit)
		rc = db_exec_commit(db, db_audit_insert_sql, &p, &r, err,
		                    "appending an audit entry (%s %s)", e->action, e->object);
	else
		rc = db_exec(db, db_audit_insert_sql, &p, &r, err,
		             "appending an audit entry (%s %s)", e->action, e->object);
	if (rc == DB_OK)
		rc = db_audit_seq_of(r, seq, err);
	PQclear(r);
	return rc;
}

enum db_status db_audit_append(struct db *db, const struct db_audit_entry *e, int64_t *seq,
                               struct db_err *err)
{
	return append(db, e, seq, 0, err);
}

enum db_status db_audit_append_commit(struct db *db, const struct db_audit_entry *e, int64_t *seq,
                                      struct db_err *err)
{
	if (!db->in_tx)
		return db_fail(err, DB_ERR_STATE,
		               "appending and committing: no transaction is open");
	return append(db, e, seq, 1, err);
}

/* The entries of a group in one statement: each of the six texts as an array, unnested with
 * the entry's ordinal o and inserted in that order, so that the chain's trigger (per row, in
 * insertion order) hashes them in that order and, the transaction holding the chain's lock
 * from the first row on, gives them consecutive seqs: the k-th gets the first + k. */
static const char audit_group_sql[] =
    "WITH e AS (INSERT INTO audit_log (actor, role, action, object, outcome, detail)"
    " SELECT actor, role, action, object, outcome, detail FROM unnest($1::text[], $2::text[],"
    " $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY"
    " AS v (actor, role, action, object, outcome, detail, o) ORDER BY o RETURNING seq)"
    " SELECT min(seq), count(*) FROM e";

#define AUDIT_PARAMS 6

enum db_status db_audit_append_many_commit(struct db *db, const struct db_audit_entry *const *e,
                                           size_t n, int64_t *seqs, struct db_err *err)
{
	static const unsigned oids[AUDIT_PARAMS] = {25, 25, 25, 25, 25, 25};
	const struct db_params *ps[DB_GROUP_MAX];
	struct db_params *each = NULL, *p = NULL;
	uint8_t *arrays[AUDIT_PARAMS] = {0};
	PGresult *res = NULL;
	enum db_status rc = DB_OK;
	int64_t first = 0, count = 0;

	for (size_t i = 0; i < n; i++)
		seqs[i] = 0;
	if (n == 1)
		return db_audit_append_commit(db, e[0], &seqs[0], err);
	if (!db->in_tx)
		return db_fail(err, DB_ERR_STATE,
		               "appending and committing: no transaction is open");
	if (n == 0 || n > DB_GROUP_MAX)
		return db_fail(err, DB_ERR_INVALID, "appending %zu audit entries at once: 1 to %d",
		               n, DB_GROUP_MAX);
	if (!(each = calloc(n, sizeof(*each))) || !(p = calloc(1, sizeof(*p)))) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "appending audit entries: out of memory");
		goto out;
	}
	for (size_t i = 0; rc == DB_OK && i < n; i++) {
		rc = db_audit_entry_params(e[i], &each[i], err);
		ps[i] = &each[i];
	}
	if (rc == DB_OK && (rc = db_column_arrays(ps, n, AUDIT_PARAMS, oids, p, arrays)) != DB_OK)
		db_fail(err, rc, "appending audit entries: out of memory");
	if (rc != DB_OK)
		goto out;
	if (db->begin_pending) {
		/* Nothing of the transaction has gone out yet: the entries open it, one after the
		 * other (the group statement cannot travel with a BEGIN still to send). */
		for (size_t i = 0; rc == DB_OK && i < n; i++)
			rc = append(db, e[i], &seqs[i], 0, err);
		if (rc == DB_OK)
			rc = db_commit(db, err);
		goto out;
	}
	/* Like db_exec_commit: the statement and the COMMIT in one round trip. */
	rc = db_exec_group(db, 0, audit_group_sql, p, &res, err, "appending audit entries");
	if (rc == DB_OK &&
	    (PQntuples(res) != 1 || db_get_int64(res, 0, 0, &first) != 0 ||
	     db_get_int64(res, 0, 1, &count) != 0 || first <= 0 || count != (int64_t)n))
		rc = db_fail(err, DB_ERR_QUERY,
		             "appending %zu audit entries: committed, but %lld sequence numbers "
		             "came back",
		             n, (long long)count);
	for (size_t i = 0; rc == DB_OK && i < n; i++)
		seqs[i] = first + (int64_t)i;
out:
	for (size_t i = 0; rc != DB_OK && i < n; i++)
		seqs[i] = 0;
	PQclear(res);
	for (int j = 0; j < AUDIT_PARAMS; j++)
		free(arrays[j]);
	free(p);
	free(each);
	return rc;
}

enum db_status db_audit_head(struct db *db, int64_t *seq, uint8_t hash[32], struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	*seq = 0;
	memset(hash, 0, 32);
	rc = db_exec(db, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", NULL, &r, err,
	             "reading the audit chain head");
	if (rc != DB_OK || PQntuples(r) == 0)
		goto out;
	if (db_get_int64(r, 0, 0, seq) != 0 || db_get_bytes_into(r, 0, 1, hash, 32, 1, NULL) != 0)
		rc = db_fail(err, DB_ERR_QUERY, "reading the audit chain head: unreadable row");
out:
	PQclear(r);
	return rc;
}

enum db_status db_audit_checkpoint_add(struct db *db, int64_t seq, const uint8_t head_hash[32],
                                       const uint8_t *sig, size_t sig_len, const char *key_label,
                                       struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	rc = db_check_text("checkpoint key label", key_label, 255, err);
	if (rc != DB_OK)
		return rc;
	if (seq <= 0 || !sig || sig_len == 0)
		return db_fail(err, DB_ERR_INVALID, "a checkpoint needs a seq and a signature");
	db_param_int(&p, seq);
	db_param_bytes(&p, head_hash, 32);
	db_param_bytes(&p, sig, sig_len);
	db_param_text(&p, key_label);
	/* Only over the chain as it is: a checkpoint of a hash the log does not have would make
	 * every later verification fail. */
	rc = db_exec(db,
	             "INSERT INTO audit_checkpoints (seq, head_hash, signature, key_label)"
	             " SELECT $1, $2, $3, $4 WHERE EXISTS"
	             " (SELECT 1 FROM audit_log WHERE seq = $1 AND hash = $2)",
	             &p, &r, err, "recording the audit checkpoint at seq %lld", (long long)seq);
	if (rc == DB_OK && strcmp(PQcmdTuples(r), "1") != 0)
		rc = db_fail(err, DB_ERR_INVALID,
		             "audit checkpoint at seq %lld: the log has no entry with that hash",
		             (long long)seq);
	PQclear(r);
	return rc;
}

/* --- verification --- */

struct vrow {
	int64_t seq;
	uint8_t prev[32], hash[32];
	int self_ok; /* hash == SHA-256(prev || canonical(fields)) */
};

struct walk {
	uint8_t last[32];   /* hash of the last entry that verified (zero before the first) */
	uint8_t before[32]; /* and of the one before it */
	int64_t last_seq;
	struct db_audit_report *rep;
};

static int found(struct walk *w, enum db_audit_finding f, int64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int found(struct walk *w, enum db_audit_finding f, int64_t seq, const char *fmt, ...)
{
	va_list ap;

	w->rep->finding = f;
	w->rep->seq = seq;
	va_start(ap, fmt);
	vsnprintf(w->rep->detail, sizeof(w->rep->detail), fmt, ap);
	va_end(ap);
	return 1;
}

/* Judge row cur, knowing the row after it (next, or NULL at the end). Returns 1 when it found
 * the first problem, 0 when cur verified. The rules, in order: a seq gap is a deletion; a row
 * that hashes right and links to the last good row is good; a row the next row links over
 * was inserted; a row that links to the row before the last good one means the last good one
 * was inserted; a row that links right but hashes wrong was modified; a row that the next one
 * links to but that does not link back had its predecessor deleted (and the log renumbered);
 * anything else is a modification. */
static int judge(struct walk *w, const struct vrow *cur, const struct vrow *next)
{
	int link_ok = !memcmp(cur->prev, w->last, 32);

	if (cur->seq != w->last_seq + 1)
		return found(w, DB_AUDIT_DELETED, w->last_seq + 1,
		             "entries %lld to %lld are missing", (long long)(w->last_seq + 1),
		             (long long)(cur->seq - 1));
	if (link_ok && cur->self_ok) {
		memcpy(w->before, w->last, 32);
		memcpy(w->last, cur->hash, 32);
		w->last_seq = cur->seq;
		return 0;
	}
	if (next && next->seq == cur->seq + 1 && !memcmp(next->prev, w->last, 32))
		return found(w, DB_AUDIT_INSERTED, cur->seq,
		             "entry %lld is not part of the chain: entry %lld links past it",
		             (long long)cur->seq, (long long)next->seq);
	if (w->last_seq > 0 && !memcmp(cur->prev, w->before, 32))
		return found(w, DB_AUDIT_INSERTED, w->last_seq,
		             "entry %lld is not part of the chain: entry %lld links past it",
		             (long long)w->last_seq, (long long)cur->seq);
	if (link_ok)
		return found(w, DB_AUDIT_MODIFIED, cur->seq, "entry %lld does not match its hash",
		             (long long)cur->seq);
	if (next && next->seq == cur->seq + 1 && !memcmp(next->prev, cur->hash, 32))
		return found(w, DB_AUDIT_DELETED, cur->seq,
		             "the entry before entry %lld (as numbered now) is missing and later "
		             "entries were renumbered",
		             (long long)cur->seq);
	return found(w, DB_AUDIT_MODIFIED, cur->seq,
	             "entry %lld neither matches its hash nor links to entry %lld",
	             (long long)cur->seq, (long long)w->last_seq);
}

static int read_vrow(const PGresult *r, int i, struct vrow *v)
{
	struct db_audit_entry e;
	uint8_t h[32];
	int64_t at;

	if (db_get_int64(r, i, 0, &v->seq) != 0 || db_get_int64(r, i, 1, &at) != 0 ||
	    db_get_bytes_into(r, i, 8, v->prev, 32, 1, NULL) != 0 ||
	    db_get_bytes_into(r, i, 9, v->hash, 32, 1, NULL) != 0)
		return -1;
	e.actor = PQgetvalue(r, i, 2);
	e.role = PQgetvalue(r, i, 3);
	e.action = PQgetvalue(r, i, 4);
	e.object = PQgetvalue(r, i, 5);
	e.outcome = PQgetvalue(r, i, 6);
	e.detail = PQgetvalue(r, i, 7);
	if (entry_hash(v->prev, v->seq, at, &e, h) != 0)
		return -1;
	v->self_ok = !memcmp(h, v->hash, 32);
	return 0;
}

static enum db_status verify_chain(struct db *db, struct walk *w, struct db_err *err)
{
	struct vrow cur, nxt;
	int have_cur = 0, done = 0;
	int64_t after = 0;
	PGresult *r = NULL;
	enum db_status rc = DB_OK;

	while (!done) {
		struct db_params p = {0};
		int n;

		db_param_int(&p, after);
		db_param_int(&p, VERIFY_PAGE);
		rc = db_exec(db,
		             "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint, actor, role,"
		             " action, object, outcome, detail, prev_hash, hash FROM audit_log"
		             " WHERE seq > $1 ORDER BY seq LIMIT $2",
		             &p, &r, err, "reading the audit log after entry %lld",
		             (long long)after);
		if (rc != DB_OK)
			goto out;
		n = PQntuples(r);
		for (int i = 0; i < n; i++) {
			if (read_vrow(r, i, &nxt) != 0) {
				rc =
				    db_fail(err, DB_ERR_QUERY, "audit entry after %lld: unreadable",
				            (long long)after);
				goto out;
			}
			w->rep->entries++;
			after = nxt.seq;
			/* cur is judged once its successor is known */
			if (have_cur && judge(w, &cur, &nxt))
				goto out;
			cur = nxt;
			have_cur = 1;
		}
		done = n < VERIFY_PAGE;
		PQclear(r);
		r = NULL;
	}
	if (have_cur)
		judge(w, &cur, NULL);
out:
	PQclear(r);
	return rc;
}

/* Each checkpoint must name an entry that exists and still has the hash it had. */
static enum db_status verify_checkpoints(struct db *db, struct walk *w, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	uint8_t cp[32], cur[32];
	int64_t seq;

	rc = db_exec(db,
	             "SELECT c.seq, c.head_hash, l.hash FROM audit_checkpoints c"
	             " LEFT JOIN audit_log l ON l.seq = c.seq ORDER BY c.seq",
	             NULL, &r, err, "reading the audit checkpoints");
	if (rc != DB_OK)
		goto out;
	for (int i = 0; i < PQntuples(r); i++) {
		if (db_get_int64(r, i, 0, &seq) != 0 ||
		    db_get_bytes_into(r, i, 1, cp, 32, 1, NULL) != 0) {
			rc = db_fail(err, DB_ERR_QUERY, "audit checkpoint %d: unreadable", i + 1);
			goto out;
		}
		w->rep->checkpoints++;
		if (PQgetisnull(r, i, 2)) {
			found(w, DB_AUDIT_DELETED, w->last_seq + 1,
			      "entries %lld to %lld are missing: checkpoint %lld covers them",
			      (long long)(w->last_seq + 1), (long long)seq, (long long)seq);
			goto out;
		}
		if (db_get_bytes_into(r, i, 2, cur, 32, 1, NULL) != 0) {
			rc = db_fail(err, DB_ERR_QUERY, "audit entry %lld: unreadable hash",
			             (long long)seq);
			goto out;
		}
		if (memcmp(cp, cur, 32) != 0) {
			found(w, DB_AUDIT_MODIFIED, seq,
			      "the chain up to entry %lld was rewritten: it differs from the "
			      "checkpoint",
			      (long long)seq);
			goto out;
		}
	}
out:
	PQclear(r);
	return rc;
}

enum db_status db_audit_verify(struct db *db, struct db_audit_report *rep, struct db_err *err)
{
	struct walk w = {.rep = rep};
	PGresult *r = NULL;
	enum db_status rc;
	int own = 0;

	memset(rep, 0, sizeof(*rep));
	/* One snapshot for the whole walk: appends during it are simply not seen. */
	if (!db->in_tx) {
		rc = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, &r, err,
		             "starting the audit verification");
		PQclear(r);
		if (rc != DB_OK)
			return rc;
		db->in_tx = 1;
		own = 1;
	}
	rc = verify_chain(db, &w, err);
	if (rc == DB_OK && rep->finding == DB_AUDIT_INTACT)
		rc = verify_checkpoints(db, &w, err);
	if (own)
		db_rollback(db); /* read only: nothing to keep */
	if (rc == DB_OK && rep->finding == DB_AUDIT_INTACT) {
		rep->head_seq = w.last_seq;
		memcpy(rep->head_hash, w.last, 32);
	}
	return rc;
}
