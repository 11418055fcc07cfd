/*
 * How an hsmca daemon starts, in one place (OpenBSD's proc.c idea): hsmca-keyd, hsmca-cad,
 * hsmca-ocspd and hsmca-crld each describe themselves in a struct daemon_def and hand it to
 * daemon_main, which walks the one sequence:
 *
 *   1. options: --config FILE, --check, --verbose, --version, --help, the same everywhere,
 *      plus the daemon's own from its table (usage errors exit 2, --help and --version 0);
 *   2. logging (debug with --verbose) and SIGPIPE ignored (a peer that goes away is an
 *      error on that connection, not the end of the process);
 *   3. the configuration (exit 1 on an error), then --check prints "FILE: configuration is
 *      valid" and exits 0;
 *   4. the OpenSSL providers (default and keyd) for daemons that sign through keyd;
 *   5. a command that does its job without serving (cad's --issue), if the options asked;
 *   6. the daemon made under its sandbox (sandbox.h: the user switch, then make, then
 *      no_new_privs and seccomp; keyd makes first, as root, and then drops), with SIGTERM
 *      and SIGINT watched as libevent signal events on the daemon's main event base, so a
 *      signal becomes an ordinary event that calls the daemon's stop function (one sent
 *      while the daemon is being made waits, blocked, until it is watched);
 *   7. run until stopped (exit 0 on a clean stop, else 1), then everything freed.
 *
 * A daemon without an event loop of its own (crld) gets one from the scaffold: a small loop
 * on a thread of its own that does nothing but watch the signals.
 */
#ifndef HSMCA_DAEMON_MAIN_H
#define HSMCA_DAEMON_MAIN_H

#include <stddef.h>
#include <stdio.h>

#include "sandbox.h"

struct event_base;

/* One option of a daemon's own (cad's --issue PROFILE). set returns 0, or -1 after saying on
 * stderr what is wrong with arg: a usage error (exit 2, without the whole usage again). */
struct daemon_option {
	const char *name; /* without the dashes: "issue" */
	int has_arg;      /* 1: takes a value (--issue PROFILE) */
	int short_name;   /* the one-letter form the daemon has always accepted ('i'), or 0 */
	int (*set)(void *ctx, const char *arg);
};

/* What daemon_parse_options found. */
struct daemon_args {
	const char *config; /* --config */
	int check;          /* --check */
	int verbose;        /* --verbose (or keyd's --debug) */
};

/* When the user switch happens relative to make (sandbox.h explains the order). */
enum daemon_user_switch {
	/* sandbox_start: the configured user first, then make, then the filter. Daemons that
	 * connect to keyd or PostgreSQL, which identify a peer when it connects. */
	DAEMON_USER_BEFORE_MAKE,
	/* make as the starting user, then sandbox_apply: keyd, which connects to nothing and
	 * logs in to the token before it gives up root. */
	DAEMON_USER_AFTER_MAKE,
};

/* A daemon, described. ctx is the daemon's own state (its configuration, the running daemon,
 * its options' values); every callback gets it. Callbacks not marked optional are required. */
struct daemon_def {
	const char *name;     /* "hsmca-cad": logs, --help, --version */
	const char *doc;      /* the configuration's documentation: "docs/cad.md" */
	const char *synopsis; /* optional: further usage lines, e.g. the --issue form */
	const char *help;     /* optional: lines describing the daemon's own options, and notes */
	const struct daemon_option *options; /* optional: the daemon's own, ended by {NULL} */
	int debug_alias; /* 1: also accept --debug as a hidden alias of --verbose (keyd's old name)
	                  */
	int providers;   /* 1: load OpenSSL's default and keyd providers before making the daemon */
	const struct sandbox_profile *sandbox;
	enum daemon_user_switch user_switch;

	/* optional: after every option is read, whether their combination (the daemon's own
	 * and the common ones in args) makes sense: 0, or -1 (a usage error). */
	int (*options_check)(void *ctx, const struct daemon_args *args);
	/* Read and check the configuration at path: 0, or -1 with err filled. */
	int (*config_load)(void *ctx, const char *path, char *err, size_t errlen);
	/* optional: a few words --check adds after "configuration is valid", e.g. "(3 clients)". */
	void (*check_note)(void *ctx, char *note, size_t notelen);
	/* optional: a command the options asked for that runs instead of serving, after the
	 * configuration and the providers: its exit status, or -1 to start the daemon. */
	int (*command)(void *ctx);
	/* The sandbox keys of the loaded configuration. */
	const struct sandbox_config *(*sandbox_config)(void *ctx);
	/* Make the daemon (listen, connect, load keys): 0, or -1 with err filled. */
	int (*make)(void *ctx, char *err, size_t errlen);
	/* optional: the made daemon's main event base, which runs while run does: the signals
	 * are watched there. Without it the scaffold watches them on a thread of its own. */
	struct event_base *(*base)(void *ctx);
	/* Ask run to return soon; called from the signal event (on the base's own thread, or on
	 * the scaffold's signal thread when there is no base). */
	void (*stop)(void *ctx);
	/* Serve until stop: 0 on a clean stop. */
	int (*run)(void *ctx);
	/* Free what config_load and make made (either may have failed half way). */
	void (*cleanup)(void *ctx);
};

/* daemon_parse_options' verdicts. */
enum daemon_parse {
	DAEMON_PARSE_RUN,     /* go on with args */
	DAEMON_PARSE_HELP,    /* --help: the usage is printed on stdout; exit 0 */
	DAEMON_PARSE_VERSION, /* --version: "NAME VERSION" is printed on stdout; exit 0 */
	DAEMON_PARSE_USAGE,   /* a usage error: the usage is printed on stderr; exit 2 */
};

/* Read argv with the common options and def's own (whose set callbacks get ctx). Restarts
 * getopt, so it may be called more than once in a process (the unit test does). */
enum daemon_parse daemon_parse_options(const struct daemon_def *def, void *ctx, int argc,
                                       char **argv, struct daemon_args *args);

/* The usage of def on f: the common options, then def's synopsis and help. */
void daemon_usage(const struct daemon_def *def, FILE *f);

/* The whole life of the daemon def describes, as the file's top comment says: what main
 * returns. */
int daemon_main(const struct daemon_def *def, void *ctx, int argc, char **argv);

#endif
