/* hsmca command line: one function per subcommand. */
#ifndef HSMCA_CLI_H
#define HSMCA_CLI_H

int cmd_keyd(int argc, char **argv);
/* hsmca keyd quorum init, unseal, seal (cmd_quorum.c); argv: what follows the command. */
struct keyd_client;
struct keyd_quorum_status;
int cmd_keyd_quorum(struct keyd_client *c, const char *cmd, int argc, char **argv,
                    const char *passfile, const char *keyfile);
void cmd_keyd_print_quorum(const struct keyd_quorum_status *q);
int cmd_db(int argc, char **argv);
int cmd_ceremony(int argc, char **argv);
/* issue, show, list, revoke, hold, release, principal, token, profiles, audit: the API of
 * hsmca-cad (cmd_api.c); argv[0] says which. */
int cmd_api(int argc, char **argv);
/* provision, device: device enrolment (cmd_est.c). */
int cmd_provision(int argc, char **argv);
int cmd_device(int argc, char **argv);
/* acme eab create: ACME's External Account Binding credentials (cmd_acme.c). */
int cmd_acme(int argc, char **argv);
/* mfa enrol|confirm|status|disable|reset: TOTP step-up enrolment (cmd_mfa.c). */
int cmd_mfa(int argc, char **argv);
/* backup FILE, restore FILE (cmd_backup.c); argv[0] says which. */
int cmd_backup(int argc, char **argv);
/* recover SERIAL --out FILE.p12 (cmd_recover.c, docs/key-recovery.md). */
int cmd_recover(int argc, char **argv);
/* report issuance|expiring|principals (cmd_report.c). */
int cmd_report(int argc, char **argv);
/* approvals list|show|approve|reject|request: quorum approvals (cmd_approvals.c). */
int cmd_approvals(int argc, char **argv);

#endif
