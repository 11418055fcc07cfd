/*
 * ACME's tables on a private PostgreSQL cluster (tests/pg/pgtest): External Account Binding
 * credentials (usable only while neither revoked nor expired, bound once), accounts (one per
 * key, created with their binding and audit entry in one commit or not at all), update,
 * deactivation and key change, what the application role may not do to them, and the group
 * commit of order and challenge changes.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "db.h"
#include "harness.h"

static struct harness_pg pg;

static void cluster_start(void)
{
	harness_pg_fixture_start(&pg, "acmedb");
}

static void cluster_stop(void)
{
	harness_pg_remove(&pg);
}

static struct db *connect_as(const char *ci)
{
	return harness_db_connect(ci);
}

/* Migrate as the owner, let hsmca_app log in, and connect as it. */
static struct db *app_ready(void)
{
	db_close(harness_pg_migrate(&pg));
	return connect_as(pg.app_ci);
}

static void sql_fails(struct db *db, const char *sql, const char *state)
{
	harness_pg_fails(db_pgconn(db), sql, state);
}

static const uint8_t key32[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const struct db_audit_entry audit = {.actor = "team-a",
                                            .role = "acme-account",
                                            .action = "acme.account.create",
                                            .object = "",
                                            .outcome = "success",
                                            .detail = ""};

static void add_eab(struct db *db, const char *kid, int64_t expires_at)
{
	const char *allow[] = {"*.corp.example.com", "www.example.com"};
	struct db_err err = {0};
	int64_t id;

	ck_assert_msg(db_acme_eab_add(db, kid, key32, 32, "team-a", "web,web-short", allow, 2,
	                              expires_at, "demo-officer", &id, &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_int_gt(id, 0);
}

static struct db_acme_account account(const char *thumb)
{
	struct db_acme_account a = {0};

	a.jwk = (char *)"{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"AAAA\"}";
	snprintf(a.thumbprint, sizeof(a.thumbprint), "%s", thumb);
	a.contact = (char *)"[\"mailto:ops@corp.example.com\"]";
	a.tos_agreed = 1;
	return a;
}

#define T1 "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define T2 "AzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define T3 "BzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

START_TEST(eab_credentials_bind_accounts_once)
{
	struct db *db = app_ready();
	struct db_err err = {0};
	struct db_acme_eab e;
	struct db_acme_account a = account(T1), b = account(T2), got;
	int64_t id;

	add_eab(db, "kid-good", time(NULL) + 3600);
	add_eab(db, "kid-expired", time(NULL) - 1);
	add_eab(db, "kid-revoked", time(NULL) + 3600);
	harness_pg_exec_ok(db_pgconn(db), "UPDATE acme_eab_credentials SET revoked_at = now()"
	                                  " WHERE kid = 'kid-revoked'");
	/* Bad input is refused before the database. */
	ck_assert_int_eq(db_acme_eab_add(db, "bad kid", key32, 32, "team-a", "web", NULL, 0,
	                                 time(NULL) + 60, "o", &id, &err),
	                 DB_ERR_INVALID);
	ck_assert_int_eq(db_acme_eab_add(db, "k", key32, 16, "team-a", "web", NULL, 0,
	                                 time(NULL) + 60, "o", &id, &err),
	                 DB_ERR_INVALID);
	/* Found while usable, with its key, principal, profiles and patterns. */
	ck_assert_msg(db_acme_eab_find(db, "kid-good", &e, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_eq(e.hmac_key_len, 32);
	ck_assert_mem_eq(e.hmac_key, key32, 32);
	ck_assert_str_eq(e.principal, "team-a");
	ck_assert_str_eq(e.profiles, "web,web-short");
	ck_assert_str_eq(e.allow, "*.corp.example.com\nwww.example.com");
	ck_assert_int_eq(e.account_id, 0);
	db_acme_eab_clear(&e);
	ck_assert_int_eq(db_acme_eab_find(db, "kid-expired", &e, &err), DB_ERR_NOT_FOUND);
	ck_assert_int_eq(db_acme_eab_find(db, "kid-revoked", &e, &err), DB_ERR_NOT_FOUND);
	ck_assert_int_eq(db_acme_eab_find(db, "kid-none", &e, &err), DB_ERR_NOT_FOUND);
	/* An account bound to it, with its audit entry. */
	ck_assert_msg(db_acme_account_create(db, &a, "kid-good", &audit, &err) == DB_OK, "%s",
	              err.msg);
	ck_assert_int_gt(a.id, 0);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db),
	                                  "SELECT count(*) FROM audit_log WHERE action ="
	                                  " 'acme.account.create' AND object = 'acct/1'"),
	                 1);
	ck_assert_int_eq(db_acme_account_by_thumbprint(db, T1, &got, &err), DB_OK);
	ck_assert_int_eq(got.id, a.id);
	ck_assert_str_eq(got.eab_kid, "kid-good");
	ck_assert_str_eq(got.principal, "team-a");
	ck_assert_str_eq(got.profiles, "web,web-short");
	ck_assert_str_eq(got.status, "valid");
	db_acme_account_clear(&got);
	/* The credential binds no second account; expired and revoked ones none; nothing is
	 * left behind by a refusal. */
	ck_assert_int_eq(db_acme_account_create(db, &b, "kid-good", &audit, &err), DB_ERR_STATE);
	ck_assert_int_eq(db_acme_account_create(db, &b, "kid-expired", &audit, &err), DB_ERR_STATE);
	ck_assert_int_eq(db_acme_account_create(db, &b, "kid-revoked", &audit, &err), DB_ERR_STATE);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM acme_accounts"), 1);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM audit_log WHERE"
	                                                 " action = 'acme.account.create'"),
	                 1);
	/* Revocation: once, of a credential that exists; the list shows all, without keys. */
	ck_assert_int_eq(db_acme_eab_revoke(db, "kid-revoked", &err), DB_ERR_STATE);
	ck_assert_int_eq(db_acme_eab_revoke(db, "kid-none", &err), DB_ERR_NOT_FOUND);
	ck_assert_int_eq(db_acme_eab_revoke(db, "kid-good", &err), DB_OK);
	ck_assert_int_eq(db_acme_eab_find(db, "kid-good", &e, &err), DB_ERR_NOT_FOUND);
	struct db_acme_eab *rows;
	size_t n;
	ck_assert_int_eq(db_acme_eab_list(db, &rows, &n, &err), DB_OK);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(rows[0].kid, "kid-good");
	ck_assert_int_eq(rows[0].account_id, a.id);
	ck_assert_int_gt(rows[0].revoked_at, 0);
	ck_assert_int_eq(rows[0].hmac_key_len, 0);
	ck_assert_int_eq(rows[1].revoked_at, 0);
	db_acme_eab_list_free(rows, n);
	/* One account per key. */
	struct db_acme_account c = account(T1);
	ck_assert_int_eq(db_acme_account_create(db, &c, "", &audit, &err), DB_ERR_CONFLICT);
	/* The application role cannot rebind, change or delete. */
	sql_fails(db, "UPDATE acme_eab_credentials SET account_id = NULL WHERE kid = 'kid-good'",
	          "23514");
	sql_fails(db, "UPDATE acme_eab_credentials SET principal = 'x' WHERE kid = 'kid-good'",
	          "23514");
	sql_fails(db, "DELETE FROM acme_accounts", "42501");
	sql_fails(db, "DELETE FROM acme_eab_credentials", "42501");
	/* Orders, authorizations and challenges end in a status, never removed; a challenge's
	 * type is one of the three, a valid order names its certificate. */
	sql_fails(db, "DELETE FROM acme_orders", "42501");
	sql_fails(db, "DELETE FROM acme_authorizations", "42501");
	sql_fails(db, "DELETE FROM acme_challenges", "42501");
	sql_fails(db, "DELETE FROM acme_order_authorizations", "42501");
	sql_fails(db, "UPDATE acme_order_authorizations SET authz_id = 1", "42501");
	sql_fails(db,
	          "INSERT INTO acme_orders (account_id, status, identifiers, profile, expires_at)"
	          " SELECT id, 'valid', '[]', 'web', now() FROM acme_accounts LIMIT 1",
	          "23514");
	db_close(db);
}
END_TEST

START_TEST(accounts_update_deactivate_and_change_key)
{
	struct db *db = app_ready();
	struct db_err err = {0};
	struct db_acme_account a = account(T1), b = account(T2), got;
	struct db_audit_entry up = audit;

	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	ck_assert_int_eq(db_acme_account_create(db, &b, "", &audit, &err), DB_OK);
	ck_assert_int_eq(db_acme_account_by_id(db, a.id, &got, &err), DB_OK);
	ck_assert_str_eq(got.eab_kid, "");
	db_acme_account_clear(&got);
	ck_assert_int_eq(db_acme_account_by_id(db, 99, &got, &err), DB_ERR_NOT_FOUND);
	/* A new key: refused when another account has it or the old key is stale. */
	up.action = "acme.account.key-change";
	ck_assert_int_eq(db_acme_account_rekey(db, a.id, T1, "{}", T2, &up, &err), DB_ERR_CONFLICT);
	ck_assert_int_eq(db_acme_account_rekey(db, a.id, T3, "{}", T3, &up, &err), DB_ERR_STATE);
	ck_assert_msg(db_acme_account_rekey(db, a.id, T1, "{\"k\":1}", T3, &up, &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_int_eq(db_acme_account_by_thumbprint(db, T3, &got, &err), DB_OK);
	ck_assert_int_eq(got.id, a.id);
	ck_assert_str_eq(got.jwk, "{\"k\":1}");
	db_acme_account_clear(&got);
	ck_assert_int_eq(db_acme_account_by_thumbprint(db, T1, &got, &err), DB_ERR_NOT_FOUND);
	/* Contact, then deactivation, each audited; a deactivated account changes no more. */
	up.action = "acme.account.update";
	a.contact = (char *)"[]";
	snprintf(a.status, sizeof(a.status), "valid");
	ck_assert_int_eq(db_acme_account_update(db, &a, &up, &err), DB_OK);
	up.action = "acme.account.deactivate";
	snprintf(a.status, sizeof(a.status), "deactivated");
	ck_assert_int_eq(db_acme_account_update(db, &a, &up, &err), DB_OK);
	ck_assert_int_eq(db_acme_account_by_id(db, a.id, &got, &err), DB_OK);
	ck_assert_str_eq(got.status, "deactivated");
	ck_assert_str_eq(got.contact, "[]");
	db_acme_account_clear(&got);
	ck_assert_int_eq(db_acme_account_update(db, &a, &up, &err), DB_ERR_STATE);
	ck_assert_int_eq(db_acme_account_rekey(db, a.id, T3, "{}", T1, &up, &err), DB_ERR_STATE);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db),
	                                  "SELECT count(*) FROM audit_log WHERE action IN"
	                                  " ('acme.account.key-change', 'acme.account.update',"
	                                  " 'acme.account.deactivate') AND object = 'acct/1'"),
	                 3);
	sql_fails(db, "UPDATE acme_accounts SET status = 'valid' WHERE id = 1", "23514");
	db_close(db);
}
END_TEST

/* An order of account acct for name with one authorization; its id, and its authorization's
 * first challenge into *chall. */
static int64_t order_for(struct db *db, int64_t acct, const char *name, int64_t *chall)
{
	struct db_acme_ident id = {.type = "dns"};
	struct db_acme_order_opts opts = {0};
	struct db_acme_order o;
	struct db_acme_authz az;
	struct db_err err = {0};
	char tokens[3][44], ids[300];
	struct db_audit_entry e = audit;
	int64_t oid;

	snprintf(id.value, sizeof(id.value), "%s", name);
	snprintf(ids, sizeof(ids), "[{\"type\":\"dns\",\"value\":\"%s\"}]", name);
	for (int i = 0; i < 3; i++)
		snprintf(tokens[i], sizeof(tokens[i]), "%.*s%c", 42, T1, 'a' + i);
	e.action = "acme.order.create";
	ck_assert_msg(db_acme_order_create(db, acct, &id, 1, ids, "web", 3600, 3600,
	                                   (const char(*)[44])tokens, &opts, &e, &o, &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_uint_eq(o.n_authz, 1);
	oid = o.id;
	ck_assert_int_eq(db_acme_authz_get(db, o.authz[0], &az, &err), DB_OK);
	*chall = az.ch[0].id;
	db_acme_order_clear(&o);
	return oid;
}

static long long audited(struct db *db, const char *action, const char *kind, int64_t id)
{
	char sql[300];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE action = '%s' AND object = '%s/%lld'",
	         action, kind, (long long)id);
	return harness_pg_count(db_pgconn(db), sql);
}

/* Group commit of ACME state changes: the changes of a group are committed together with
 * their audit entries; one that is refused is undone alone (no change, no audit entry) and
 * does not take the others with it. */
START_TEST(changes_grouped_refusals_alone)
{
	struct db *db = app_ready();
	struct db_err err = {0};
	struct db_acme_account a = account(T1);
	struct db_audit_entry start = audit, done = audit, move = audit;
	int64_t c1, c2, o1, o2;

	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	o1 = order_for(db, a.id, "a.example.com", &c1);
	o2 = order_for(db, a.id, "b.example.com", &c2);
	start.action = "acme.challenge.start";
	done.action = "acme.challenge.valid";
	move.action = "acme.order.finalize";
	{
		struct db_acme_change x = {.kind = DB_ACME_CHALL_START,
		                           .id = c1,
		                           .account_id = a.id,
		                           .audit = &start},
		                      y = x, z = x, *g[] = {&x, &z, &y};
		y.id = c2;
		db_acme_changes(db, g, 3);
		ck_assert_msg(x.rc == DB_OK && y.rc == DB_OK, "%s %s", x.err.msg, y.err.msg);
		ck_assert_int_eq(z.rc, DB_ERR_STATE); /* started a moment ago, in the group */
	}
	ck_assert_int_eq(audited(db, "acme.challenge.start", "chall", c1), 1);
	ck_assert_int_eq(audited(db, "acme.challenge.start", "chall", c2), 1);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM acme_challenges"
	                                                 " WHERE status = 'processing'"),
	                 2);
	{
		struct db_acme_change x = {.kind = DB_ACME_CHALL_DONE,
		                           .id = c1,
		                           .valid = 1,
		                           .error_type = "",
		                           .error_detail = "",
		                           .reuse = 60,
		                           .audit = &done},
		                      y = x, again = x, *g[] = {&x, &y, &again};
		y.id = c2;
		y.valid = 0;
		y.error_type = "unauthorized";
		y.error_detail = "wrong key authorization";
		db_acme_changes(db, g, 3);
		ck_assert_msg(x.rc == DB_OK && y.rc == DB_OK, "%s %s", x.err.msg, y.err.msg);
		ck_assert_int_eq(again.rc, DB_ERR_STATE); /* settled a moment ago, in the group */
	}
	ck_assert_int_eq(audited(db, "acme.challenge.valid", "chall", c1), 1);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM acme_orders"
	                                                 " WHERE status = 'ready'"),
	                 1);
	/* A result for a challenge that was never started is refused and changes nothing: not
	 * its authorization, not its order (the statements sent with the challenge's own act
	 * only when that one did), alone or in a group (whose transaction a refusal does not
	 * roll back). */
	{
		int64_t c3, o3 = order_for(db, a.id, "c.example.com", &c3);
		char sql[256];
		struct db_acme_change x = {.kind = DB_ACME_CHALL_DONE,
		                           .id = c3,
		                           .valid = 1,
		                           .error_type = "",
		                           .error_detail = "",
		                           .reuse = 60,
		                           .audit = &done},
		                      y = x, *g[] = {&x, &y};
		y.valid = 0;
		y.error_type = "unauthorized";
		db_acme_changes(db, g, 2);
		ck_assert_int_eq(x.rc, DB_ERR_STATE);
		ck_assert_int_eq(y.rc, DB_ERR_STATE);
		ck_assert_int_eq(db_acme_challenge_done(db, c3, 1, "", "", 60, &done, &err),
		                 DB_ERR_STATE);
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM acme_orders o JOIN acme_order_authorizations oa"
		         " ON oa.order_id = o.id JOIN acme_authorizations z ON z.id = oa.authz_id"
		         " WHERE o.id = %lld AND o.status = 'pending' AND z.status = 'pending'",
		         (long long)o3);
		ck_assert_int_eq(harness_pg_count(db_pgconn(db), sql), 1);
		ck_assert_int_eq(audited(db, "acme.challenge.valid", "chall", c3), 0);
	}
	/* finalize's moves are not grouped: each is one statement with its entry */
	ck_assert_int_eq(
	    db_acme_order_move(db, o1, "ready", "processing", NULL, "", "", &move, &err), DB_OK);
	ck_assert_int_eq(
	    db_acme_order_move(db, o1, "ready", "processing", NULL, "", "", &move, &err),
	    DB_ERR_STATE);
	ck_assert_int_eq(
	    db_acme_order_move(db, o2, "ready", "processing", NULL, "", "", &move, &err),
	    DB_ERR_STATE); /* invalid since its challenge failed */
	ck_assert_ptr_nonnull(strstr(err.msg, "not ready"));
	ck_assert_int_eq(audited(db, "acme.order.finalize", "order", o1), 1);
	ck_assert_int_eq(audited(db, "acme.order.finalize", "order", o2), 0);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM acme_orders"
	                                                 " WHERE status = 'processing'"),
	                 1);
	/* A processing order is not locked by a deactivation of its authorization (which changes
	 * only pending and ready orders): the transaction storing its certificate holds the
	 * audit chain's lock when it locks the order, the other way round. */
	{
		PGconn *store = harness_pg_connect(pg.app_ci);
		struct db_acme_order o;
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT id FROM acme_orders WHERE id = %lld FOR UPDATE",
		         (long long)o1);
		harness_pg_exec_ok(store, "BEGIN");
		harness_pg_exec_ok(store, sql);
		ck_assert_int_eq(db_acme_order_get(db, o1, &o, &err), DB_OK);
		harness_pg_exec_ok(db_pgconn(db), "SET lock_timeout = '3s'");
		ck_assert_msg(db_acme_authz_deactivate(db, o.authz[0], a.id, &start, &err) == DB_OK,
		              "%s", err.msg);
		harness_pg_exec_ok(store, "ROLLBACK");
		PQfinish(store);
		db_acme_order_clear(&o);
	}
	db_close(db);
}
END_TEST

/* Two groups committed at once (hsmca-cad lets two lead) lock the rows they share in the same
 * order: a group given [a challenge's result, a new order of the account] and another given
 * [a new order of that account, the result of the other challenge of the same order] would
 * deadlock if each locked in its given order (the first holding the order's row and waiting
 * for the account's, the second the other way round; PostgreSQL would then fail one group and
 * its changes would be done alone). Here the second group waits for the account first, then
 * the first does; neither is broken up: each group's changes commit in one transaction. */
struct group_run {
	struct db *db;
	struct db_acme_change **g;
	size_t n;
};

static void *group_thread(void *arg)
{
	struct group_run *r = arg;

	db_acme_changes(r->db, r->g, r->n);
	return NULL;
}

/* Wait until the backend of db waits for a lock (at most 10 s). */
static void waits_for_a_lock(PGconn *watch, struct db *db)
{
	char sql[160];

	snprintf(
	    sql, sizeof(sql),
	    "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
	    PQbackendPID(db_pgconn(db)));
	for (int i = 0; i < 1000 && harness_pg_count(watch, sql) == 0; i++)
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	ck_assert_int_eq(harness_pg_count(watch, sql), 1);
}

START_TEST(groups_at_once_lock_shared_rows_alike)
{
	struct db *db = app_ready(), *d1 = connect_as(pg.app_ci), *d2 = connect_as(pg.app_ci);
	PGconn *holder = harness_pg_connect(pg.app_ci);
	struct db_err err = {0};
	struct db_acme_account a = account(T1);
	struct db_acme_ident ids[2] = {{.type = "dns", .value = "a.example.com"},
	                               {.type = "dns", .value = "b.example.com"}};
	const char *text = "[{\"type\":\"dns\",\"value\":\"a.example.com\"},"
	                   "{\"type\":\"dns\",\"value\":\"b.example.com\"}]";
	struct db_acme_order_opts opts = {0}, o1 = {0}, o2 = {0};
	struct db_acme_order o, got1, got2;
	struct db_acme_authz az;
	struct db_audit_entry e = audit;
	char tokens[3][3][44], sql[512];
	int64_t ch[2];

	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 3; i++)
			snprintf(tokens[k][i], sizeof(tokens[k][i]), "%.*s%c%c", 41, T1, 'a' + k,
			         'a' + i);
	e.action = "acme.order.create";
	ck_assert_msg(db_acme_order_create(db, a.id, ids, 2, text, "web", 3600, 3600,
	                                   (const char(*)[44])tokens[0], &opts, &e, &o,
	                                   &err) == DB_OK,
	              "%s", err.msg);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(db_acme_authz_get(db, o.authz[i], &az, &err), DB_OK);
		ch[i] = az.ch[0].id;
		ck_assert_int_eq(db_acme_challenge_start(db, ch[i], a.id, &audit, &err), DB_OK);
	}
	{
		struct db_acme_order_new n1 = {.account_id = a.id,
		                               .idents = ids,
		                               .n = 1,
		                               .identifiers = "[{\"type\":\"dns\",\"value\":"
		                                              "\"a.example.com\"}]",
		                               .profile = "web",
		                               .order_ttl = 3600,
		                               .authz_ttl = 3600,
		                               .tokens = (const char(*)[44])tokens[1],
		                               .opts = &o1,
		                               .out = &got1},
		                         n2 = n1;
		struct db_audit_entry done = audit;
		struct db_acme_change r1 = {.kind = DB_ACME_CHALL_DONE,
		                            .id = ch[0],
		                            .valid = 1,
		                            .error_type = "",
		                            .error_detail = "",
		                            .reuse = 60,
		                            .audit = &done},
		                      r2 = r1,
		                      c1 = {.kind = DB_ACME_ORDER_CREATE,
		                            .order = &n1,
		                            .audit = &e},
		                      c2 = c1, *g1[] = {&r1, &c1}, *g2[] = {&c2, &r2};
		struct group_run run1 = {d1, g1, 2}, run2 = {d2, g2, 2};
		pthread_t t1, t2;
		done.action = "acme.challenge.valid";
		n2.tokens = (const char(*)[44])tokens[2];
		n2.opts = &o2;
		n2.out = &got2;
		c2.order = &n2;
		r2.id = ch[1];
		/* the account's row held elsewhere: the second group waits for it first */
		snprintf(sql, sizeof(sql),
		         "SELECT id FROM acme_accounts WHERE id = %lld FOR UPDATE",
		         (long long)a.id);
		harness_pg_exec_ok(holder, "BEGIN");
		harness_pg_exec_ok(holder, sql);
		ck_assert_int_eq(pthread_create(&t2, NULL, group_thread, &run2), 0);
		waits_for_a_lock(holder, d2);
		ck_assert_int_eq(pthread_create(&t1, NULL, group_thread, &run1), 0);
		waits_for_a_lock(holder, d1);
		harness_pg_exec_ok(holder, "ROLLBACK");
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		ck_assert_msg(r1.rc == DB_OK && c1.rc == DB_OK && r2.rc == DB_OK && c2.rc == DB_OK,
		              "%s | %s | %s | %s", r1.err.msg, c1.err.msg, r2.err.msg, c2.err.msg);
		/* each group committed whole: its order and its challenge in one transaction */
		for (int k = 0; k < 2; k++) {
			snprintf(sql, sizeof(sql),
			         "SELECT count(*) FROM acme_orders o, acme_challenges c WHERE o.id "
			         "= %lld"
			         " AND c.id = %lld AND o.xmin::text = c.xmin::text",
			         (long long)(k ? got2.id : got1.id), (long long)ch[k]);
			ck_assert_int_eq(harness_pg_count(holder, sql), 1);
		}
		db_acme_order_clear(&got1);
		db_acme_order_clear(&got2);
	}
	ck_assert_int_eq(harness_pg_count(holder, "SELECT count(*) FROM acme_orders WHERE"
	                                          " status = 'ready'"),
	                 1);
	db_acme_order_clear(&o);
	PQfinish(holder);
	db_close(d1);
	db_close(d2);
	db_close(db);
}
END_TEST

/* Two challenges of one order finishing at once, each in its own transaction: the second
 * waits for the order's lock, which the first took with its authorization, before it judges
 * the order, so it sees the first's authorization valid and makes the order ready. (Without
 * the lock each judges the order before the other commits and the order stays pending.) */
struct done_run {
	struct db *db;
	int64_t chall;
	enum db_status rc;
};

static void *done_thread(void *arg)
{
	struct done_run *r = arg;
	struct db_audit_entry done = audit;
	struct db_err err = {0};

	done.action = "acme.challenge.valid";
	r->rc = db_acme_challenge_done(r->db, r->chall, 1, "", "", 60, &done, &err);
	return NULL;
}

START_TEST(results_at_once_make_the_order_ready)
{
	struct db *db = app_ready();
	PGconn *holder = harness_pg_connect(pg.app_ci);
	struct db_err err = {0};
	struct db_acme_account a = account(T1);
	struct db_acme_ident ids[2] = {{.type = "dns", .value = "a.example.com"},
	                               {.type = "dns", .value = "b.example.com"}};
	struct db_acme_order_opts opts = {0};
	struct db_acme_order o;
	struct db_acme_authz az;
	struct db_audit_entry e = audit;
	struct done_run run[2];
	pthread_t t[2];
	char tokens[2][3][44], sql[160];

	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 3; i++)
			snprintf(tokens[k][i], sizeof(tokens[k][i]), "%.*s%c%c", 41, T1, 'a' + k,
			         'a' + i);
	e.action = "acme.order.create";
	ck_assert_msg(db_acme_order_create(db, a.id, ids, 2,
	                                   "[{\"type\":\"dns\",\"value\":\"a.example.com\"},"
	                                   "{\"type\":\"dns\",\"value\":\"b.example.com\"}]",
	                                   "web", 3600, 3600, (const char(*)[44])tokens[0], &opts,
	                                   &e, &o, &err) == DB_OK,
	              "%s", err.msg);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(db_acme_authz_get(db, o.authz[i], &az, &err), DB_OK);
		run[i] = (struct done_run){.db = connect_as(pg.app_ci), .chall = az.ch[0].id};
		ck_assert_int_eq(db_acme_challenge_start(db, run[i].chall, a.id, &audit, &err),
		                 DB_OK);
	}
	/* the order held elsewhere: both results wait for it, then go one after the other */
	snprintf(sql, sizeof(sql), "SELECT id FROM acme_orders WHERE id = %lld FOR UPDATE",
	         (long long)o.id);
	harness_pg_exec_ok(holder, "BEGIN");
	harness_pg_exec_ok(holder, sql);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_create(&t[i], NULL, done_thread, &run[i]), 0);
		waits_for_a_lock(holder, run[i].db);
	}
	harness_pg_exec_ok(holder, "ROLLBACK");
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(run[i].rc, DB_OK);
		db_close(run[i].db);
	}
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM acme_orders WHERE id = %lld AND status = 'ready'",
	         (long long)o.id);
	ck_assert_int_eq(harness_pg_count(holder, sql), 1);
	db_acme_order_clear(&o);
	PQfinish(holder);
	db_close(db);
}
END_TEST

/* A challenge's result and its authorization's deactivation at once take the order's lock
 * before the authorization, both: the deactivation, queued first for the order held
 * elsewhere, goes first, then the result, and neither is broken by a deadlock (a result that
 * took the authorization first would wait for the order the deactivation holds, which would
 * wait for the authorization). The result then finds the authorization deactivated and the
 * order invalid (as the deactivation left it), and changes neither. */
struct deact_run {
	struct db *db;
	int64_t authz, account;
	enum db_status rc;
};

static void *deact_thread(void *arg)
{
	struct deact_run *r = arg;
	struct db_err err = {0};

	r->rc = db_acme_authz_deactivate(r->db, r->authz, r->account, &audit, &err);
	return NULL;
}

START_TEST(result_and_deactivation_lock_alike)
{
	struct db *db = app_ready();
	PGconn *holder = harness_pg_connect(pg.app_ci);
	struct db_err err = {0};
	struct db_acme_account a = account(T1);
	struct done_run done = {0};
	struct deact_run deact = {0};
	pthread_t t1, t2;
	char sql[160];
	int64_t chall, order;

	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	order = order_for(db, a.id, "a.example.com", &chall);
	ck_assert_int_eq(db_acme_challenge_start(db, chall, a.id, &audit, &err), DB_OK);
	snprintf(sql, sizeof(sql), "SELECT authz_id FROM acme_challenges WHERE id = %lld",
	         (long long)chall);
	deact = (struct deact_run){
	    .db = connect_as(pg.app_ci), .authz = harness_pg_count(holder, sql), .account = a.id};
	done = (struct done_run){.db = connect_as(pg.app_ci), .chall = chall};
	snprintf(sql, sizeof(sql), "SELECT id FROM acme_orders WHERE id = %lld FOR UPDATE",
	         (long long)order);
	harness_pg_exec_ok(holder, "BEGIN");
	harness_pg_exec_ok(holder, sql);
	ck_assert_int_eq(pthread_create(&t2, NULL, deact_thread, &deact), 0);
	waits_for_a_lock(holder, deact.db);
	ck_assert_int_eq(pthread_create(&t1, NULL, done_thread, &done), 0);
	waits_for_a_lock(holder, done.db);
	harness_pg_exec_ok(holder, "ROLLBACK");
	pthread_join(t2, NULL);
	pthread_join(t1, NULL);
	ck_assert_int_eq(deact.rc, DB_OK);
	ck_assert_int_eq(done.rc, DB_OK);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM acme_orders o, acme_authorizations z WHERE o.id = %lld"
	         " AND o.status = 'invalid' AND z.id = %lld AND z.status = 'deactivated'",
	         (long long)order, (long long)deact.authz);
	ck_assert_int_eq(harness_pg_count(holder, sql), 1);
	db_close(done.db);
	db_close(deact.db);
	PQfinish(holder);
	db_close(db);
}
END_TEST

/* newOrder answers from what it wrote (no read after its commit): the answer is what a read
 * gives, for new authorizations (a name's three challenges in their order, a wildcard's dns-01
 * alone) and for reused ones (the order ready at once); a challenge's authorization is found in
 * one read. */
static void same_order(struct db *db, struct db_acme_order *o)
{
	struct db_acme_order got;
	struct db_err err = {0};

	ck_assert_msg(db_acme_order_get(db, o->id, &got, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_eq(got.account_id, o->account_id);
	ck_assert_str_eq(got.status, o->status);
	ck_assert_int_eq(got.expires_at, o->expires_at);
	ck_assert_str_eq(got.identifiers, o->identifiers);
	ck_assert_str_eq(got.profile, o->profile);
	ck_assert_str_eq(got.cert_serial, o->cert_serial);
	ck_assert_int_eq(got.not_before, o->not_before);
	ck_assert_int_eq(got.not_after, o->not_after);
	ck_assert_uint_eq(got.n_authz, o->n_authz);
	for (size_t i = 0; i < got.n_authz; i++)
		ck_assert_int_eq(got.authz[i], o->authz[i]);
	db_acme_order_clear(&got);
}

START_TEST(order_answer_is_what_is_stored)
{
	struct db *db = app_ready();
	struct db_err err = {0};
	struct db_acme_account a = account(T1);
	struct db_acme_ident ids[2] = {{.type = "dns", .value = "www.example.com"},
	                               {.type = "dns", .value = "example.com", .wildcard = 1}};
	struct db_acme_order_opts opts = {.not_before = 4102444800, .not_after = 4105036800};
	struct db_acme_order o, again;
	struct db_acme_authz az, of;
	struct db_audit_entry e = audit;
	char tokens[6][44];
	const char *text = "[{\"type\":\"dns\",\"value\":\"www.example.com\"},"
	                   "{\"type\":\"dns\",\"value\":\"*.example.com\"}]";

	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	for (int i = 0; i < 6; i++)
		snprintf(tokens[i], sizeof(tokens[i]), "%.*s%c", 42, T1, 'a' + i);
	e.action = "acme.order.create";
	ck_assert_msg(db_acme_order_create(db, a.id, ids, 2, text, "web", 3600, 3600,
	                                   (const char(*)[44])tokens, &opts, &e, &o, &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_str_eq(o.status, "pending");
	ck_assert_uint_eq(o.n_authz, 2);
	same_order(db, &o);
	ck_assert_int_eq(audited(db, "acme.order.create", "order", o.id), 1);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(db_acme_authz_get(db, o.authz[i], &az, &err), DB_OK);
		if (az.ident.wildcard) {
			ck_assert_uint_eq(az.n_ch, 1);
			ck_assert_str_eq(az.ch[0].type, "dns-01");
			ck_assert_str_eq(az.ch[0].token, tokens[3 + 1]);
		} else {
			ck_assert_uint_eq(az.n_ch, 3);
			ck_assert_str_eq(az.ch[0].type, "http-01");
			ck_assert_str_eq(az.ch[1].type, "dns-01");
			ck_assert_str_eq(az.ch[2].type, "tls-alpn-01");
			ck_assert_str_eq(az.ch[2].token, tokens[2]);
		}
		ck_assert_str_eq(az.status, "pending");
		ck_assert_int_eq(db_acme_authz_of_challenge(db, az.ch[az.n_ch - 1].id, &of, &err),
		                 DB_OK);
		ck_assert_int_eq(of.id, az.id);
		ck_assert_uint_eq(of.n_ch, az.n_ch);
		/* validated: reused by the next order */
		ck_assert_int_eq(db_acme_challenge_start(db, az.ch[0].id, a.id, &audit, &err),
		                 DB_OK);
		ck_assert_int_eq(
		    db_acme_challenge_done(db, az.ch[0].id, 1, "", "", 600, &audit, &err), DB_OK);
	}
	ck_assert_int_eq(db_acme_authz_of_challenge(db, 999999, &of, &err), DB_ERR_NOT_FOUND);
	opts = (struct db_acme_order_opts){0};
	ck_assert_msg(db_acme_order_create(db, a.id, ids, 2, text, "web", 3600, 3600,
	                                   (const char(*)[44])tokens, &opts, &e, &again,
	                                   &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_str_eq(again.status, "ready");
	ck_assert_int_eq(again.authz[0], o.authz[0]);
	ck_assert_int_eq(again.authz[1], o.authz[1]);
	same_order(db, &again);
	db_acme_order_clear(&again);
	/* Judged under the account's lock: another key, or an account no longer valid, is
	 * refused (limited 3) before anything changes; its own key is not. */
	{
		long long orders =
		    harness_pg_count(db_pgconn(db), "SELECT count(*) FROM acme_orders");
		opts = (struct db_acme_order_opts){.account_thumbprint = T2};
		ck_assert_int_eq(db_acme_order_create(db, a.id, ids, 2, text, "web", 3600, 3600,
		                                      (const char(*)[44])tokens, &opts, &e, &again,
		                                      &err),
		                 DB_ERR_STATE);
		ck_assert_int_eq(opts.limited, 3);
		opts = (struct db_acme_order_opts){.account_thumbprint = T1};
		ck_assert_msg(db_acme_order_create(db, a.id, ids, 2, text, "web", 3600, 3600,
		                                   (const char(*)[44])tokens, &opts, &e, &again,
		                                   &err) == DB_OK,
		              "%s", err.msg);
		db_acme_order_clear(&again);
		/* The same in a group beside a good order of the account: the refused one adds
		 * nothing to the group's transaction (its statement judges the key too), not the
		 * authorization and challenges of its identifier never seen either (the statements
		 * sent with the order's act only on an order it added; a refusal does not roll the
		 * group's transaction back). */
		{
			struct db_acme_ident fresh = {.type = "dns", .value = "fresh.example.com"};
			struct db_acme_order_opts bad = {.account_thumbprint = T2},
			                          good = {.account_thumbprint = T1};
			struct db_acme_order got_bad, got_good;
			struct db_acme_order_new nb = {.account_id = a.id,
			                               .idents = &fresh,
			                               .n = 1,
			                               .identifiers =
			                                   "[{\"type\":\"dns\",\"value\":"
			                                   "\"fresh.example.com\"}]",
			                               .profile = "web",
			                               .order_ttl = 3600,
			                               .authz_ttl = 3600,
			                               .tokens = (const char(*)[44])tokens,
			                               .opts = &bad,
			                               .out = &got_bad},
			                         ng = nb;
			struct db_acme_change x = {.kind = DB_ACME_ORDER_CREATE,
			                           .order = &nb,
			                           .audit = &e},
			                      y = x, *g[] = {&x, &y};
			ng.idents = ids;
			ng.n = 2;
			ng.identifiers = text;
			ng.opts = &good;
			ng.out = &got_good;
			y.order = &ng;
			db_acme_changes(db, g, 2);
			ck_assert_int_eq(x.rc, DB_ERR_STATE);
			ck_assert_int_eq(bad.limited, 3);
			ck_assert_msg(y.rc == DB_OK, "%s", y.err.msg);
			db_acme_order_clear(&got_good);
			ck_assert_int_eq(
			    harness_pg_count(db_pgconn(db), "SELECT count(*) FROM acme_orders"),
			    orders + 2);
			ck_assert_int_eq(
			    harness_pg_count(db_pgconn(db),
			                     "SELECT count(*) FROM acme_authorizations"
			                     " WHERE identifier = 'fresh.example.com'"),
			    0);
		}
		harness_pg_exec_ok(db_pgconn(db), "UPDATE acme_accounts SET status = 'deactivated',"
		                                  " deactivated_at = now()");
		opts = (struct db_acme_order_opts){.account_thumbprint = T1};
		ck_assert_int_eq(db_acme_order_create(db, a.id, ids, 2, text, "web", 3600, 3600,
		                                      (const char(*)[44])tokens, &opts, &e, &again,
		                                      &err),
		                 DB_ERR_STATE);
		ck_assert_int_eq(opts.limited, 3);
		ck_assert_int_eq(
		    harness_pg_count(db_pgconn(db), "SELECT count(*) FROM acme_orders"),
		    orders + 2);
	}
	db_acme_order_clear(&o);
	db_close(db);
}
END_TEST

/* Sequential scans of the ACME tables that grow with every order, as PostgreSQL counts them
 * (pg_stat_user_tables; this connection's counts flushed first). */
static long long acme_seq_scans(struct db *db, char *which, size_t n)
{
	PGconn *c = db_pgconn(db);
	PGresult *r;
	long long sum = 0;

	harness_pg_exec_ok(c, "SELECT pg_stat_force_next_flush()");
	r = PQexec(c, "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname IN"
	              " ('acme_orders', 'acme_authorizations', 'acme_challenges',"
	              " 'acme_order_authorizations') ORDER BY relname");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_int_eq(PQntuples(r), 4);
	which[0] = '\0';
	for (int i = 0; i < PQntuples(r); i++) {
		size_t used = strlen(which);
		sum += atoll(PQgetvalue(r, i, 1));
		snprintf(which + used, n - used, "%s %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (i + 1 < PQntuples(r))
			snprintf(which + strlen(which), n - strlen(which), ", ");
	}
	PQclear(r);
	return sum;
}

/* The statements of orders and challenges reach rows by key, whatever plan PostgreSQL made
 * for them while the tables were empty: here every statement runs with its generic plan
 * (made on the first run, on empty tables, and kept), and orders go through newOrder with
 * rate limits, two challenges started and finished in one group, finalize's moves and the
 * reads, without one sequential scan of the tables that grow with every order. (Before, a
 * challenge's result locked its orders with a hash join over all orders, and its start looked
 * for a challenge processing with a scan of all challenges.) */
START_TEST(order_statements_reach_rows_by_key)
{
	struct db *db = app_ready();
	struct db_err err = {0};
	struct db_acme_account a = account(T1);
	struct db_audit_entry e = audit;
	char before[256], after[256];
	long long scans;

	harness_pg_exec_ok(db_pgconn(db), "SET plan_cache_mode = force_generic_plan");
	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	scans = acme_seq_scans(db, before, sizeof(before));
	for (int round = 0; round < 8; round++) {
		int64_t order[2], chall[2];
		for (int k = 0; k < 2; k++) {
			struct db_acme_ident id = {.type = "dns"};
			struct db_acme_order_opts opts = {
			    .orders_max = 1000, .window_seconds = 3600, .pending_max = 1000};
			struct db_acme_order o;
			struct db_acme_authz az;
			char tokens[3][44], ids[300];
			snprintf(id.value, sizeof(id.value), "h%d-%d.example.com", round, k);
			snprintf(ids, sizeof(ids), "[{\"type\":\"dns\",\"value\":\"%s\"}]",
			         id.value);
			for (int i = 0; i < 3; i++)
				snprintf(tokens[i], sizeof(tokens[i]), "%.*s%c%c", 41, T1,
				         'a' + round, 'a' + 3 * k + i);
			e.action = "acme.order.create";
			ck_assert_msg(db_acme_order_create(db, a.id, &id, 1, ids, "web", 3600, 3600,
			                                   (const char(*)[44])tokens, &opts, &e, &o,
			                                   &err) == DB_OK,
			              "%s", err.msg);
			order[k] = o.id;
			db_acme_order_clear(&o);
			ck_assert_int_eq(db_acme_order_get(db, order[k], &o, &err), DB_OK);
			ck_assert_int_eq(db_acme_authz_get(db, o.authz[0], &az, &err), DB_OK);
			chall[k] = az.ch[0].id;
			db_acme_order_clear(&o);
			ck_assert_int_eq(db_acme_authz_of_challenge(db, chall[k], &az, &err),
			                 DB_OK);
		}
		struct db_audit_entry start = audit, done = audit, move = audit;
		start.action = "acme.challenge.start";
		done.action = "acme.challenge.valid";
		move.action = "acme.order.finalize";
		struct db_acme_change s0 = {.kind = DB_ACME_CHALL_START,
		                            .id = chall[0],
		                            .account_id = a.id,
		                            .audit = &start},
		                      s1 = s0, *starts[] = {&s0, &s1};
		s1.id = chall[1];
		db_acme_changes(db, starts, 2);
		ck_assert_msg(s0.rc == DB_OK && s1.rc == DB_OK, "%s %s", s0.err.msg, s1.err.msg);
		struct db_acme_change d0 = {.kind = DB_ACME_CHALL_DONE,
		                            .id = chall[0],
		                            .valid = 1,
		                            .error_type = "",
		                            .error_detail = "",
		                            .reuse = 60,
		                            .audit = &done},
		                      d1 = d0, *dones[] = {&d0, &d1};
		d1.id = chall[1];
		db_acme_changes(db, dones, 2);
		ck_assert_msg(d0.rc == DB_OK && d1.rc == DB_OK, "%s %s", d0.err.msg, d1.err.msg);
		for (int k = 0; k < 2; k++) {
			ck_assert_int_eq(db_acme_order_move(db, order[k], "ready", "processing",
			                                    NULL, "", "", &move, &err),
			                 DB_OK);
			ck_assert_int_eq(db_acme_order_move(db, order[k], "processing", "valid",
			                                    "4A01", "", "", &move, &err),
			                 DB_OK);
		}
	}
	ck_assert_msg(acme_seq_scans(db, after, sizeof(after)) == scans,
	              "sequential scans of the ACME tables: before %s; after %s", before, after);
	db_close(db);
}
END_TEST

/* The rules of one column of orders, authorizations and challenges are domains (0024): a value
 * outside them is refused as before, by the rule's name, and changes nothing; the tables keep
 * CHECK constraints only for the rules that read two columns, so that a statement changing an
 * order's status does not read back and plan every rule of the table. */
START_TEST(column_rules_refuse_as_domains)
{
	struct db *db = app_ready();
	struct db_err err = {0};
	struct db_acme_account a = account(T1);
	int64_t c;
	char sql[160];
	static const char *const bad[][2] = {
	    {"acme_orders SET status = 'bogus'", "acme_order_status_check"},
	    {"acme_orders SET error_type = repeat('x', 33)", "acme_problem_type_check"},
	    {"acme_orders SET profile = ''", "acme_profile_name_check"},
	    {"acme_orders SET cert_serial = 'xyz'", "acme_cert_serial_check"},
	    {"acme_orders SET status = 'valid'", "acme_orders_cert"}, /* two columns: the table's */
	    {"acme_authorizations SET identifier_type = 'email'", "acme_identifier_type_check"},
	    {"acme_authorizations SET status = 'ready'", "acme_authz_status_check"},
	    {"acme_challenges SET token = 'short'", "acme_challenge_token_check"},
	    {"acme_challenges SET type = 'http-02'", "acme_challenge_type_check"},
	    {"acme_challenges SET error_detail = repeat('x', 513)",
	     "acme_challenge_problem_detail_check"},
	};

	ck_assert_int_eq(db_acme_account_create(db, &a, "", &audit, &err), DB_OK);
	(void)order_for(db, a.id, "a.example.com", &c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		PGresult *r;
		snprintf(sql, sizeof(sql), "UPDATE %s WHERE true", bad[i][0]);
		r = PQexec(db_pgconn(db), sql);
		ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "%s succeeded", sql);
		ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514");
		ck_assert_msg(strstr(PQresultErrorMessage(r), bad[i][1]), "%s: %s", sql,
		              PQresultErrorMessage(r));
		PQclear(r);
	}
	ck_assert_int_eq(harness_pg_count(db_pgconn(db),
	                                  "SELECT count(*) FROM acme_orders"
	                                  " WHERE status = 'pending' AND error_type = ''"),
	                 1);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db),
	                                  "SELECT count(*) FROM pg_constraint WHERE contype = 'c'"
	                                  " AND conrelid IN ('acme_orders'::regclass,"
	                                  " 'acme_authorizations'::regclass,"
	                                  " 'acme_challenges'::regclass)"),
	                 2);
	db_close(db);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("acme-db");
	SRunner *sr;
	int failed;

	add(s, "eab", eab_credentials_bind_accounts_once);
	add(s, "accounts", accounts_update_deactivate_and_change_key);
	add(s, "changes", changes_grouped_refusals_alone);
	add(s, "groups-at-once", groups_at_once_lock_shared_rows_alike);
	add(s, "results-at-once", results_at_once_make_the_order_ready);
	add(s, "result-and-deactivation", result_and_deactivation_lock_alike);
	add(s, "orders", order_answer_is_what_is_stored);
	add(s, "plans", order_statements_reach_rows_by_key);
	add(s, "column-rules", column_rules_refuse_as_domains);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
