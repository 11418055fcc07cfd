/* hsmca db: database schema management. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "db.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: hsmca db [--database CONNSTR] COMMAND\n"
	    "  migrate                     apply the pending schema migrations, each in its own\n"
	    "                              transaction, and print what was applied\n"
	    "  version                     print the database's schema version and this hsmca's\n"
	    "The database is CONNSTR (a libpq connection string or postgresql:// URI), else\n"
	    "libpq's variables: PGHOST, PGPORT, PGDATABASE, PGUSER, ...\n"
	    "Migrate as the schema owner role; hsmca-cad connects as hsmca_app.\n");
}

static void print_applied(void *arg, int version, const char *name)
{
	(void)arg;
	printf("applied %04d_%s\n", version, name);
	fflush(stdout);
}

int cmd_db(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"database", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conninfo = NULL, *cmd;
	struct db_err err = {0};
	struct db *db = NULL;
	int o, rc = 1, applied, version;

	optind = 1;
	/* Options may come before or after the command. */
	while ((o = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (o) {
		case 'd':
			conninfo = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "version") != 0) {
		fprintf(stderr, "hsmca db: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	if (db_connect(conninfo, &db, &err) != DB_OK)
		goto out;
	if (!strcmp(cmd, "migrate")) {
		if (db_migrate(db, print_applied, NULL, &applied, &err) != DB_OK)
			goto out;
		if (applied == 0)
			printf("schema is up to date at version %d\n", db_schema_latest());
		else
			printf("schema is at version %d\n", db_schema_latest());
	} else {
		if (db_schema_version(db, &version, &err) != DB_OK)
			goto out;
		printf("database schema version %d; this hsmca knows up to %d\n", version,
		       db_schema_latest());
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "hsmca db %s: %s\n", cmd, err.msg);
	db_close(db);
	return rc;
}
