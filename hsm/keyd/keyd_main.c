/*
 * hsmca-keyd: the only process that loads the PKCS#11 module and knows the
 * token PIN. Reads its configuration, logs in, and serves signing requests
 * on a Unix socket to the clients its ACL names.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_config.h"
#include "keyd_server.h"
#include "keyd_token.h"
#include "log.h"
#include "sandbox.h"

/* keyd has no network: Unix sockets only, and it connects to nothing. */
static const struct sandbox_profile keyd_sandbox = {"hsmca-keyd", SANDBOX_NET_UNIX_SERVER};

static void usage(FILE *f)
{
	fprintf(f, "usage: hsmca-keyd --config FILE [--check] [--debug]\n"
	           "  --config FILE  keyd configuration (see docs/keyd.md)\n"
	           "  --check        validate the configuration and PIN file, then exit\n"
	           "  --debug        log debug messages\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct keyd_config cfg;
	struct keyd_token *tok = NULL;
	struct keyd_server *srv = NULL;
	const char *path = NULL;
	char err[512], pin[KEYD_PIN_MAX];
	int check = 0, o, rc = 1;

	log_init("hsmca-keyd", LOG_INFO);
	while ((o = getopt_long(argc, argv, "c:kdh", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'd':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (keyd_config_load(path, &cfg, err, sizeof(err)) != 0) {
		log_error("configuration: %s", err);
		return 1;
	}
	if (keyd_pin_read(cfg.pin_file, pin, sizeof(pin), err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (check) {
		printf("%s: configuration OK (%zu clients)\n", path, cfg.nclients);
		rc = 0;
		goto out;
	}
	tok = keyd_token_open(&cfg, pin, cfg.workers, err, sizeof(err));
	explicit_bzero(pin, sizeof(pin));
	if (!tok) {
		log_error("token: %s", err);
		goto out;
	}
	srv = keyd_server_new(&cfg, tok, err, sizeof(err));
	if (!srv) {
		log_error("server: %s", err);
		goto out;
	}
	/* Module loaded, logged in, socket listening: from here on keyd needs only its token
	 * folder (recovery re-initialises the module) and the connections it accepts. */
	if (sandbox_apply(&cfg.sandbox, &keyd_sandbox, err, sizeof(err)) != 0) {
		log_error("sandbox: %s", err);
		goto out;
	}
	rc = keyd_server_run(srv) == 0 ? 0 : 1;
	log_info("stopped");
out:
	explicit_bzero(pin, sizeof(pin));
	keyd_server_free(srv);
	keyd_token_close(tok);
	keyd_config_free(&cfg);
	return rc;
}
