/* Quorum approvals for the operations the command line runs itself (`hsmca ceremony run`,
 * `hsmca restore`; docs/approvals.md): find the approved request for the file about to be
 * used, keep it locked while the operation runs, and mark it executed or failed with its
 * audit entry. */
#ifndef HSMCA_CLI_APPROVAL_H
#define HSMCA_CLI_APPROVAL_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "db_approvals.h"

struct cli_approval {
	struct db *db;
	struct db_approval a;
	int active;      /* a request is locked in db's open transaction */
	char line[1024]; /* "request 7 (ceremony.run) by alice, approved by bob" */
};

/* Before kind runs on the file whose SHA-256 is sha256 (lower-case hex). The database is
 * consulted when one is named (database, or libpq's PGHOST, PGDATABASE or PGSERVICE) or an id
 * is asked for (id > 0): its approval_policies say whether kind needs an approval. Then the
 * approved, unexpired request of kind for sha256 (request id, or the newest) is locked in a
 * transaction until cli_approval_finish. 0: no approval needed (ap->active 0) or one is
 * locked (ap->active 1); -1 with err: none fits, or the database could not tell. */
int cli_approval_claim(const char *database, const char *kind, const char *sha256, int64_t id,
                       struct cli_approval *ap, char *err, size_t errsz);
/* As cli_approval_claim for a target that is no file: what names it in errors ("key
 * ca-2027 (ec-p384)"), ask is the command that requests an approval for it. */
int cli_approval_claim_target(const char *database, const char *kind, const char *sha256,
                              const char *what, const char *ask, int64_t id,
                              struct cli_approval *ap, char *err, size_t errsz);
/* After the operation: record it executed (ok) or failed, with result (text, may be NULL) and
 * an audit entry of the local user, and commit; with dry_run, roll back (the approval stays
 * to be used). Also closes the connection. 0, or -1 with err. Does nothing when !active. */
int cli_approval_finish(struct cli_approval *ap, int ok, const char *result, int dry_run, char *err,
                        size_t errsz);

/* The SHA-256 of the file at path as lower-case hex. 0, or -1 with err. */
int cli_file_sha256(const char *path, char out[65], char *err, size_t errsz);

#endif
