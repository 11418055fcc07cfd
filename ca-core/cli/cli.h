/* hsmca command line: one function per subcommand. */
#ifndef HSMCA_CLI_H
#define HSMCA_CLI_H

int cmd_keyd(int argc, char **argv);
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

#endif
