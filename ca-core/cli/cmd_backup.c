/* hsmca backup FILE / hsmca restore FILE (docs/backup.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "cli.h"
#include "cli_approval.h"

static void usage(FILE *f, int restore)
{
	if (!restore)
		fprintf(
		    f,
		    "usage: hsmca backup FILE --key LABEL [--config F]... [--ca-cert F]...\n"
		    "                   [--token-dir DIR] [--database CONNSTR] [--socket PATH]\n"
		    "                   [--pg-bin DIR]\n"
		    "Writes one encrypted archive: a pg_dump of the database (one consistent\n"
		    "snapshot), the files named, SoftHSM's token folder if given, and a manifest "
		    "of\n"
		    "SHA-256 hashes. AES-256-GCM under a fresh data key that keyd wraps with its\n"
		    "AES key LABEL (hsmca keyd generate --type aes-256); this client needs the\n"
		    "\"wrap\" operation on LABEL in keyd's ACL. FILE must not exist.\n"
		    "  --config F     a configuration file (stored as config/NAME); repeatable\n"
		    "  --ca-cert F    a CA certificate file (stored as certs/NAME); repeatable\n"
		    "  --token-dir D  SoftHSM's token folder (stored as token/...)\n"
		    "  --database C   libpq connection string; default: libpq's environment\n"
		    "  --socket P     keyd's socket; default $HSMCA_KEYD_SOCKET\n"
		    "  --pg-bin DIR   where pg_dump is; default $HSMCA_PG_BIN, else PATH\n");
	else
		fprintf(
		    f,
		    "usage: hsmca restore FILE (--into DIR | --in-place --root DIR...)\n"
		    "                    [--database CONNSTR]\n"
		    "                    [--socket PATH] [--pg-bin DIR] [--files-only]\n"
		    "Checks the archive's authentication tag (keyd unwraps the data key: this\n"
		    "client needs \"unwrap\" on the archive's key) and every file against the\n"
		    "manifest before changing anything; then restores the database into an EMPTY\n"
		    "database with pg_restore in one transaction, and writes the files:\n"
		    "  --into DIR     below DIR (new or empty): config/, certs/, token/\n"
		    "  --in-place     back to the paths they were saved from; refuses any that\n"
		    "                 exists, and any not below a --root\n"
		    "  --root DIR     with --in-place, repeatable: a folder restore may write "
		    "below\n"
		    "                 (the state and configuration folders); a path outside them,\n"
		    "                 or reached through a symlink that leads out, is refused\n"
		    "                 before anything is written\n"
		    "  --files-only   do not touch the database\n"
		    "  --approval-database C  the live database whose approvals govern restores\n"
		    "                 ($HSMCA_APPROVALS_DATABASE): when its policy puts\n"
		    "                 backup.restore under quorum approval, nothing is unwrapped\n"
		    "                 without an approved request for this archive's SHA-256,\n"
		    "                 used once (docs/approvals.md)\n"
		    "  --approval ID  that request (default: the one approved for the archive)\n");
}

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"config", required_argument, NULL, 'c'},
	    {"ca-cert", required_argument, NULL, 'a'},
	    {"token-dir", required_argument, NULL, 't'},
	    {"database", required_argument, NULL, 'd'},
	    {"socket", required_argument, NULL, 's'},
	    {"pg-bin", required_argument, NULL, 'p'},
	    {"into", required_argument, NULL, 'i'},
	    {"in-place", no_argument, NULL, 'P'},
	    {"files-only", no_argument, NULL, 'F'},
	    {"root", required_argument, NULL, 'R'},
	    {"approval-database", required_argument, NULL, 'A'},
	    {"approval", required_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int restore = strcmp(argv[0], "restore") == 0, o, rc;
	struct backup_opts bo = {.out = stderr};
	const char *approval_db = getenv("HSMCA_APPROVALS_DATABASE");
	long long approval = 0;
	int approval_opt = 0;
	struct cli_approval ap;
	char err[1024] = "", sha[65], *end;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'k':
			bo.key_label = optarg;
			break;
		case 'c':
		case 'a':
			if ((o == 'c' ? bo.nconfigs : bo.ncerts) == BACKUP_MAX_INPUTS) {
				fprintf(stderr, "hsmca %s: at most %d --config and %d --ca-cert\n",
				        argv[0], BACKUP_MAX_INPUTS, BACKUP_MAX_INPUTS);
				return 2;
			}
			if (o == 'c')
				bo.configs[bo.nconfigs++] = optarg;
			else
				bo.certs[bo.ncerts++] = optarg;
			break;
		case 't':
			bo.token_dir = optarg;
			break;
		case 'd':
			bo.database = optarg;
			break;
		case 's':
			bo.keyd_socket = optarg;
			break;
		case 'p':
			bo.pg_bin = optarg;
			break;
		case 'i':
			bo.into = optarg;
			break;
		case 'P':
			bo.in_place = 1;
			break;
		case 'R':
			if (bo.nroots == BACKUP_MAX_INPUTS) {
				fprintf(stderr, "hsmca %s: at most %d --root\n", argv[0],
				        BACKUP_MAX_INPUTS);
				return 2;
			}
			bo.roots[bo.nroots++] = optarg;
			break;
		case 'F':
			bo.skip_database = 1;
			break;
		case 'A':
			approval_db = optarg;
			approval_opt = 1;
			break;
		case 'I':
			approval = strtoll(optarg, &end, 10);
			if (*end || approval <= 0) {
				fprintf(stderr, "hsmca %s: --approval takes a request's id\n",
				        argv[0]);
				return 2;
			}
			approval_opt = 1;
			break;
		case 'h':
			usage(stdout, restore);
			return 0;
		default:
			usage(stderr, restore);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr, restore);
		return 2;
	}
	bo.archive = argv[optind];
	if (!restore && (!bo.key_label || bo.into || bo.in_place || bo.skip_database)) {
		usage(stderr, 0);
		return 2;
	}
	if (restore && (bo.key_label || bo.nconfigs || bo.ncerts || bo.token_dir ||
	                !bo.into == !bo.in_place || (bo.nroots && !bo.in_place))) {
		usage(stderr, 1);
		return 2;
	}
	if (!restore && approval_opt) {
		usage(stderr, 0);
		return 2;
	}
	memset(&ap, 0, sizeof(ap));
	/* Quorum approval (docs/approvals.md), checked in the live database before keyd unwraps
	 * anything; the request stays locked until the restore is recorded. */
	if (restore && (approval_db && *approval_db ? 1 : approval > 0) &&
	    (cli_file_sha256(bo.archive, sha, err, sizeof(err)) != 0 ||
	     cli_approval_claim(approval_db && *approval_db ? approval_db : NULL, "backup.restore",
	                        sha, approval, &ap, err, sizeof(err)) != 0)) {
		fprintf(stderr, "hsmca restore: %s\n", err);
		return 1;
	}
	if (ap.active)
		fprintf(stderr, "hsmca restore: under approval %s\n", ap.line);
	rc = restore ? backup_restore(&bo, err, sizeof(err)) : backup_create(&bo, err, sizeof(err));
	if (ap.active) {
		char aerr[512];
		if (cli_approval_finish(&ap, rc == 0, rc == 0 ? "restored" : err, 0, aerr,
		                        sizeof(aerr)) != 0) {
			fprintf(stderr, "hsmca restore: %s\n", aerr);
			rc = -1;
			if (!err[0])
				snprintf(err, sizeof(err), "%s", aerr);
		}
	}
	if (rc != 0) {
		fprintf(stderr, "hsmca %s: %s\n", argv[0], err);
		return 1;
	}
	return 0;
}
