/* Revocation announcements: LISTEN hsmca_revocation and parse what arrives. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"

enum db_status db_revocations_listen(struct db *db, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	rc = db_exec(db, "LISTEN " DB_REVOCATION_CHANNEL, NULL, &r, err, "listening on %s",
	             DB_REVOCATION_CHANNEL);
	PQclear(r);
	return rc;
}

/* "<authority id> <serial hex> <status>", as the trigger in 0001_initial.sql writes it. */
static int parse_payload(const char *s, struct db_revocation_event *ev)
{
	char hex[2 * DB_SERIAL_MAX + 1], status[16];
	const char *sp1, *sp2;
	char *end;
	long id;
	int st;

	errno = 0;
	id = strtol(s, &end, 10);
	if (errno || end == s || *end != ' ' || id <= 0 || id > INT32_MAX)
		return -1;
	sp1 = end;
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2 || (size_t)(sp2 - sp1 - 1) >= sizeof(hex) || strlen(sp2 + 1) >= sizeof(status))
		return -1;
	memcpy(hex, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	hex[sp2 - sp1 - 1] = '\0';
	strcpy(status, sp2 + 1);
	st = db_cert_status_parse(status);
	if (st != DB_CERT_REVOKED && st != DB_CERT_HOLD && st != DB_CERT_ISSUED)
		return -1;
	if (db_serial_from_hex(hex, ev->serial, &ev->serial_len) != 0)
		return -1;
	ev->authority_id = (int32_t)id;
	ev->status = (enum db_cert_status)st;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum db_status db_revocation_next(struct db *db, int timeout_ms, struct db_revocation_event *ev,
                                  int *got, struct db_err *err)
{
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	enum db_status rc = DB_OK;
	PGnotify *n = NULL;

	*got = 0;
	memset(ev, 0, sizeof(*ev));
	for (;;) {
		struct pollfd pfd;
		int wait, pr;

		if (!PQconsumeInput(db->conn)) {
			char why[400];
			db_one_line(PQerrorMessage(db->conn), why, sizeof(why));
			rc = db_fail(err, DB_ERR_UNAVAILABLE, "waiting for revocations: %s", why);
			goto out;
		}
		/* Other channels this connection may listen on are not ours to report. */
		while ((n = PQnotifies(db->conn)) && strcmp(n->relname, DB_REVOCATION_CHANNEL)) {
			PQfreemem(n);
			n = NULL;
		}
		if (n)
			break;
		if (timeout_ms == 0)
			goto out;
		wait = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());
		if (timeout_ms > 0 && wait <= 0)
			goto out;
		pfd.fd = PQsocket(db->conn);
		pfd.events = POLLIN;
		pr = poll(&pfd, 1, wait);
		if (pr < 0 && errno != EINTR) {
			rc = db_fail(err, DB_ERR_UNAVAILABLE, "waiting for revocations: %s",
			             strerror(errno));
			goto out;
		}
	}
	if (parse_payload(n->extra, ev) != 0) {
		rc = db_fail(err, DB_ERR_INVALID,
		             "revocation announcement \"%.100s\" does not parse", n->extra);
		goto out;
	}
	*got = 1;
out:
	if (n)
		PQfreemem(n);
	return rc;
}
