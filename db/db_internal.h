/* Shared inside db/ only: the connection, statement helpers, input checks. */
#ifndef HSMCA_DB_INTERNAL_H
#define HSMCA_DB_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "db.h"

/* Statements with parameters are prepared once per connection and executed by name after
 * that: PostgreSQL then parses and plans them once instead of on every call. */
#define DB_STMT_CACHE 96

struct db_stmt {
	uint64_t hash;
	char *sql;
};

struct db {
	PGconn *conn;
	int in_tx; /* a transaction is open (the caller's or a function's own) */
	/* BEGIN not sent yet: it goes with the transaction's first statement, in the same round
	 * trip when that statement has no parameters. */
	int begin_pending;
	struct db_stmt stmts[DB_STMT_CACHE]; /* prepared as "hsmca_<index>" */
	int n_stmts;
};

struct db_migration {
	int version;
	const char *name;
	const char *checksum; /* SHA-256 hex of the file */
	const char *sql;
};

/* Generated from db/migrations/ at build time. */
extern const struct db_migration db_migrations[];
extern const size_t db_migrations_count;

/* libpq's message (multi-line, newline-terminated) as one line in out. */
void db_one_line(const char *in, char *out, size_t cap);

/* Set *err and return status. */
enum db_status db_fail(struct db_err *err, enum db_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Statement parameters: text, or bytes sent in binary format. Up to DB_PARAMS_MAX, of which
 * up to DB_PARAMS_NUM_MAX numbers. Big enough for a reservation with DB_SANS_MAX SANs. */
#define DB_PARAMS_MAX (16 + 2 * DB_SANS_MAX)
#define DB_PARAMS_NUM_MAX 16
struct db_params {
	int n;
	const char *values[DB_PARAMS_MAX];
	int lengths[DB_PARAMS_MAX];
	int formats[DB_PARAMS_MAX];
	int n_num;
	char num[DB_PARAMS_NUM_MAX][24]; /* storage for numbers */
};
void db_param_text(struct db_params *p, const char *s);
void db_param_null(struct db_params *p);
/* bytea, or text of explicit length (binary format: the server checks its encoding and
 * refuses NUL). */
void db_param_bytes(struct db_params *p, const uint8_t *b, size_t len);
void db_param_textn(struct db_params *p, const char *s, size_t len);
void db_param_int(struct db_params *p, int64_t v);
/* A one-dimensional SQL array in binary format (array_send's layout) of the n elements v[i]
 * of len[i] bytes (SQL NULL where v[i] is NULL), whose type has the OID elem_oid (bytea 17,
 * text 25): one parameter carries a whole group's column. malloc'ed, *size bytes; NULL when
 * out of memory or over 1 GiB. */
uint8_t *db_array_binary(unsigned elem_oid, size_t n, const char *const *v, const int *len,
                         size_t *size);
/* Items in one group statement (a column of them as one array parameter); more go in
 * several. */
#define DB_GROUP_MAX 32
/* One array parameter of out: the n elements v[i] of len[i] bytes (NULL: SQL NULL) of the
 * type with OID oid (bytea 17, text 25; numbers go as text); *array gets the buffer (free it). */
enum db_status db_array_param(struct db_params *out, uint8_t **array, unsigned oid, size_t n,
                              const char *const *v, const int *len);
/* A group statement's column arrays: parameter j of p[k] for every k < m, for j < ncols, as
 * the next parameters of out, the j-th an array of elements of type oids[j]; arrays[j] gets
 * the buffers (free them). m <= DB_GROUP_MAX. */
enum db_status db_column_arrays(const struct db_params *const *p, size_t m, int ncols,
                                const unsigned *oids, struct db_params *out, uint8_t **arrays);

/* Run sql with p (may be NULL); on success *res holds a result the caller PQclears. On
 * failure *res is NULL and err says what failed ("what" names the operation and object),
 * mapping SQLSTATE to a status (unique violation: DB_ERR_CONFLICT; connection:
 * DB_ERR_UNAVAILABLE). */
enum db_status db_exec(struct db *db, const char *sql, const struct db_params *p, PGresult **res,
                       struct db_err *err, const char *what, ...)
    __attribute__((format(printf, 6, 7)));

/* Run in the caller's transaction if one is open, else in an own one: tx_enter tells which in
 * *own; tx_leave commits (ok) or rolls back an own transaction, and does nothing otherwise. */
enum db_status db_tx_enter(struct db *db, int *own, struct db_err *err);
enum db_status db_tx_leave(struct db *db, int own, enum db_status rc, struct db_err *err);

/* 1 if s[0..len) is valid UTF-8 without NUL, control characters other than tab and newline
 * are allowed (they are data); 0 otherwise. */
/* Check a NUL-terminated text field: valid as above and at most max bytes. */
enum db_status db_check_text(const char *what, const char *s, size_t max, struct db_err *err);

/* Parse libpq's text forms. */
int db_get_int64(const PGresult *r, int row, int col, int64_t *v);
/* bytea in hex output ("\x..."); *out malloc'ed (NULL for SQL NULL). */
int db_get_bytes(const PGresult *r, int row, int col, uint8_t **out, size_t *len);
/* bytea into a fixed buffer of exactly want bytes (or up to want when exact is 0). */
int db_get_bytes_into(const PGresult *r, int row, int col, uint8_t *buf, size_t want, int exact,
                      size_t *len);
/* strdup of a text column; NULL for SQL NULL or no memory (check with PQgetisnull). */
char *db_get_text(const PGresult *r, int row, int col);

/* Certificate rows: the column list (table alias c), and one page of a query selecting
 * it with LIMIT limit + 1 parsed into *rows (without the DER), *next_after_id set when
 * a further page exists (db_certs.c). what names the caller in errors. */
extern const char db_cert_cols[];
enum db_status db_cert_page(const PGresult *r, size_t limit, const char *what,
                            struct db_cert **rows, size_t *n, int64_t *next_after_id,
                            struct db_err *err);

/* Run sql with p as the last statement of the open transaction and COMMIT it, both in one
 * round trip (libpq's pipeline mode); with out, the statement's result goes there when
 * everything succeeded (PQclear it). On failure of the statement the transaction stays open
 * and failed (roll it back); a failed COMMIT ends it. Outside a transaction it runs sql alone
 * after nothing else: use db_exec then. (db_conn.c) */
enum db_status db_exec_commit(struct db *db, const char *sql, const struct db_params *p,
                              PGresult **out, struct db_err *err, const char *what, ...)
    __attribute__((format(printf, 6, 7)));

/* Run the n prepared statements sql[i] with p[i] in one round trip (libpq's pipeline mode),
 * after a BEGIN when begin (no transaction may be open) and with the COMMIT after them when
 * commit (then a transaction must be open). Without begin, in a transaction db_begin opened
 * whose BEGIN is not sent yet, that BEGIN leads the pipeline. res[i] gets statement i's result
 * when all succeeded (PQclear them), else NULL. When a statement fails the transaction stays
 * open and failed: roll it back; a failed COMMIT ends it. what names the work in errors.
 * (db_conn.c) */
enum db_status db_exec_many(struct db *db, int begin, size_t n, const char *const *sql,
                            struct db_params *const *p, PGresult **res, int commit,
                            struct db_err *err, const char *what);
/* A group's statement (sql with p, its arrays of any length) as the last statement of a
 * transaction, after a BEGIN when begin (else in the caller's open transaction), and its
 * COMMIT, in one round trip (db_exec_many); *r its result (NULL on failure).
 * Its plan is the generic one, made once per connection: left to itself PostgreSQL plans such
 * a statement again for every execution (a plan for the arrays' actual lengths looks cheaper
 * than the generic plan's guess), and planning a statement of several CTEs cost more than
 * executing it for a group of two. SET LOCAL: the setting ends with the transaction.
 * (db_conn.c) */
enum db_status db_exec_group(struct db *db, int begin, const char *sql, struct db_params *p,
                             PGresult **r, struct db_err *err, const char *what);

/* The audit log's append statement and its parameters for e (checked first), and the seq an
 * append's result carries. (db_audit.c) */
extern const char db_audit_insert_sql[];
enum db_status db_audit_entry_params(const struct db_audit_entry *e, struct db_params *p,
                                     struct db_err *err);
enum db_status db_audit_seq_of(const PGresult *r, int64_t *seq, struct db_err *err);

/* A change committed with a certificate's reservation (db_cert_reserve_with) or its store
 * (db_cert_store_with). Its statement takes its own parameters p ($1..$p.n), and for a store
 * then the certificate's authority id, serial (bytea) and serial in hex; judge reads its rows.
 * With a reservation it refuses by failing (SQLSTATE 22012, a division by the number of rows
 * it changed), so that the reservation does not commit either; refused is then what is said.
 * Its texts stay the caller's until the reservation or store is done. */
struct db_with {
	const char *sql;
	struct db_params p;
	enum db_status (*judge)(const PGresult *r, struct db_err *err);
	const char *refused;
	char object[48]; /* the audit entry's object, kept here */
	enum db_status rc;
	struct db_err err;
};

#endif
