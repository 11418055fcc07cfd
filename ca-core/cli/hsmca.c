/* hsmca: the operator's command line. Each subcommand has --help. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} commands[] = {
    {"keyd", cmd_keyd, "talk to hsmca-keyd: status, keys, public keys, key generation"},
    {"db", cmd_db, "database schema: migrate, version"},
    {"ceremony", cmd_ceremony, "run a key ceremony: CA keys in the HSM and their certificates"},
    {"issue", cmd_api, "issue a certificate from a CSR"},
    {"show", cmd_api, "show a certificate by serial"},
    {"list", cmd_api, "list certificates (filters, paging)"},
    {"revoke", cmd_api, "revoke a certificate"},
    {"hold", cmd_api, "put a certificate on hold"},
    {"release", cmd_api, "release a certificate from hold"},
    {"principal", cmd_api, "API principals: add, list, show, disable, enable"},
    {"token", cmd_api, "API tokens: create, list, revoke"},
    {"profiles", cmd_api, "certificate profiles: list, disable, enable"},
    {"profile", cmd_api, "certificate profiles: list, show, create, edit, clone, disable, enable"},
    {"authority", cmd_api, "the CAs: list, retire, CRL and OCSP settings"},
    {"audit", cmd_api, "the audit log: verify, export"},
    {"provision", cmd_provision, "device provisioning tokens (EST): create, list, revoke"},
    {"device", cmd_device, "devices enrolled over EST: list, show, decommission"},
    {"acme", cmd_acme, "ACME External Account Binding credentials: eab create"},
    {"mfa", cmd_mfa, "your TOTP second factor: enrol, confirm, status, disable; reset"},
    {"backup", cmd_backup, "write an encrypted backup archive (database, configuration, CAs)"},
    {"restore", cmd_backup, "restore a backup archive into an empty database"},
    {"recover", cmd_recover, "recover an archived key under a key.recovery approval"},
    {"report", cmd_report, "reports: issuance, expiring certificates, principals and tokens"},
    {"approvals", cmd_approvals, "quorum approvals: list, show, approve, reject, request"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hsmca COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
	fprintf(f, "\n'hsmca COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "hsmca: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
