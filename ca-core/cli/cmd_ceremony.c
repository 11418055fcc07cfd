/* hsmca ceremony run FILE: one key ceremony, described by FILE (docs/ceremony.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ceremony.h"
#include "cli.h"
#include "cli_approval.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: hsmca ceremony run FILE [--socket PATH] [--dry-run] [--approval ID]\n"
	        "                               [--database CONNSTR]\n"
	        "\n"
	        "Runs the key ceremony FILE describes: a root, intermediate, key, cross-sign,\n"
	        "ocsp-signer or crl ceremony (docs/ceremony.md). Keys are made and used only\n"
	        "through hsmca-keyd. Every input and key is checked before anything changes; the\n"
	        "outputs and the transcript are written all together or not at all, and no\n"
	        "existing file or key label is ever reused. The transcript is also printed here;\n"
	        "a failed run writes it alone, as NAME-FAILED-<time>.txt beside NAME.txt.\n"
	        "\n"
	        "  --socket PATH  keyd's socket (default: $HSMCA_KEYD_SOCKET)\n"
	        "  --dry-run      check everything, then stop before generating, signing or\n"
	        "                 writing anything\n"
	        "  --approval ID  the approved request (hsmca approvals) to run it under;\n"
	        "                 default: the one approved for FILE's SHA-256\n"
	        "  --database C   where the approvals are (libpq connection string); default:\n"
	        "                 libpq's environment. When a database is named and its policy\n"
	        "                 puts ceremony.run under quorum approval (docs/approvals.md),\n"
	        "                 the ceremony runs only under an approved request for exactly\n"
	        "                 this file, used once, and the transcript names its approvers\n"
	        "  -h, --help     this text\n"
	        "\n"
	        "The keyd OpenSSL provider (keyd.so) is loaded from OpenSSL's module folder or\n"
	        "$OPENSSL_MODULES. Exit status: 0 success, 1 the ceremony failed, 2 usage.\n");
}

int cmd_ceremony(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},   {"dry-run", no_argument, NULL, 'n'},
	    {"approval", required_argument, NULL, 'a'}, {"database", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	struct ceremony_opts co = {0};
	const char *args[2] = {NULL, NULL}, *database = NULL;
	struct cli_approval ap;
	long long approval = 0;
	int nargs = 0, o, rc;
	char err[CER_ERR_MAX * 2], sha[65], *end;

	optind = 1;
	/* Options may come before or after "run FILE". */
	while (optind < argc) {
		if ((o = getopt_long(argc, argv, "+s:na:d:h", opts, NULL)) != -1) {
			switch (o) {
			case 's':
				co.socket = optarg;
				break;
			case 'n':
				co.dry_run = 1;
				break;
			case 'a':
				approval = strtoll(optarg, &end, 10);
				if (*end || approval <= 0) {
					fprintf(
					    stderr,
					    "hsmca ceremony: --approval takes a request's id\n");
					return 2;
				}
				break;
			case 'd':
				database = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
			}
			continue;
		}
		if (nargs == 2) {
			fprintf(stderr, "hsmca ceremony: unexpected argument \"%s\"\n",
			        argv[optind]);
			return 2;
		}
		args[nargs++] = argv[optind++];
	}
	if (nargs == 0 || strcmp(args[0], "run") != 0) {
		if (nargs)
			fprintf(stderr, "hsmca ceremony: unknown command \"%s\"\n", args[0]);
		usage(stderr);
		return 2;
	}
	if (nargs < 2) {
		fprintf(stderr, "hsmca ceremony run: which ceremony? give its FILE\n");
		return 2;
	}
	co.out = stdout;
	/* Quorum approval (docs/approvals.md): the request stays locked while the ceremony runs,
	 * and the ceremony checks that the file it reads is the one approved. */
	if (cli_file_sha256(args[1], sha, err, sizeof(err)) != 0 ||
	    cli_approval_claim(database, "ceremony.run", sha, approval, &ap, err, sizeof(err)) !=
	        0) {
		fprintf(stderr, "hsmca ceremony: %s\n", err);
		return 1;
	}
	if (ap.active) {
		co.approved_sha256 = sha;
		co.approval = ap.line;
	}
	rc = ceremony_run(args[1], &co, err, sizeof(err));
	if (rc != 0) {
		fflush(stdout);
		fprintf(stderr, "hsmca ceremony: %s\n", err);
	}
	{
		char aerr[512];
		if (cli_approval_finish(&ap, rc == 0, rc == 0 ? "the ceremony ran" : err,
		                        co.dry_run, aerr, sizeof(aerr)) != 0) {
			fprintf(stderr, "hsmca ceremony: %s\n", aerr);
			return 1;
		}
	}
	return rc == 0 ? 0 : 1;
}
