/* The CA core's state and the small shared pieces: set-up, the database connection, database
 * failures as outcomes, profile lists and SAN kind names. */
#include <stdio.h>
#include <string.h>

#include "ca.h"
#include "ca_group.h"
#include "log.h"

int ca_init(struct ca *ca, struct ca_authority *authorities, size_t n, const char *database,
            pthread_mutex_t *lock, EVP_PKEY *(*load_key)(const char *, char *, size_t),
            void (*count_group)(int store, size_t n))
{
	ca->authorities = authorities;
	ca->n_authorities = n;
	ca->database = database ? database : "";
	ca->lock = lock;
	ca->load_key = load_key;
	ca->count_group = count_group;
	ca_group_init(&ca->reserve_group, CA_RESERVE_LEADERS);
	ca_group_init(&ca->store_group, 1);
	return 0;
}

void ca_fini(struct ca *ca)
{
	ca_group_destroy(&ca->reserve_group);
	ca_group_destroy(&ca->store_group);
}

enum db_status ca_db_open(const struct ca *ca, struct db **db, struct db_err *err)
{
	if (*db)
		return DB_OK;
	if (db_connect(ca->database, db, err) != DB_OK) {
		*db = NULL;
		return err->status;
	}
	return DB_OK;
}

enum ca_outcome ca_db_failure(struct ca_why *why, const struct db_err *err)
{
	why->object[0] = '\0';
	if (err->status == DB_ERR_UNAVAILABLE) {
		log_warn("database unavailable: %s", err->msg);
		snprintf(why->code, sizeof(why->code), "database-unavailable");
		/* libpq's words (host names, socket paths, roles) stay in the log. */
		snprintf(why->reason, sizeof(why->reason),
		         "the database is unavailable (the cause is in the log)");
		return CA_DB_UNAVAILABLE;
	}
	log_error("database error: %s", err->msg);
	snprintf(why->code, sizeof(why->code), "database-error");
	snprintf(why->reason, sizeof(why->reason), "a database error (the cause is in the log)");
	return CA_INTERNAL;
}

int ca_profile_listed(const char *list, const char *profile)
{
	char all[1100], needle[80];

	snprintf(all, sizeof(all), ",%s,", list ? list : "");
	snprintf(needle, sizeof(needle), ",%s,", profile);
	return strstr(all, needle) != NULL;
}

const char *ca_san_kind_name(enum ca_san_kind k)
{
	static const char *const names[] = {"dns", "ip", "email", "uri"};

	return k < CA_SAN_KINDS ? names[k] : "?";
}
