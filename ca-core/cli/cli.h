/* hsmca command line: one function per subcommand. */
#ifndef HSMCA_CLI_H
#define HSMCA_CLI_H

int cmd_keyd(int argc, char **argv);

#endif
