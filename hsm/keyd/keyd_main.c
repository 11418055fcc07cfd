/*
 * hsmca-keyd: the only process that loads the PKCS#11 module and knows the
 * token PIN. Makes itself undumpable (no core files, no ptrace), reads its
 * configuration and PIN file (into locked memory), logs in to the token as the
 * user it starts as, listens on its Unix socket, and only then drops to its
 * configured user under a filter that allows Unix sockets alone; it serves
 * signing requests to the clients its ACL names until SIGTERM or SIGINT.
 * daemon_main.h is how every hsmca daemon starts.
 */
#include <stdio.h>
#include <string.h>

#include "daemon_main.h"
#include "keyd_config.h"
#include "keyd_harden.h"
#include "keyd_server.h"
#include "keyd_token.h"

/* keyd has no network: Unix sockets only, and it connects to nothing (unless its module talks
 * to a local service: module_ipc, docs/hsm-compatibility.md). */
static const struct sandbox_profile keyd_sandbox = {"hsmca-keyd", SANDBOX_NET_UNIX_SERVER};

struct keyd_main {
	struct keyd_config cfg;
	char *pin; /* from the PIN file until the token is open; locked memory */
	struct keyd_token *tok;
	struct keyd_server *srv;
};

/* The configuration, and the PIN file too, so that --check validates both. */
static int load(void *ctx, const char *path, char *err, size_t errlen)
{
	struct keyd_main *k = ctx;
	char e[512];

	if (keyd_config_load(path, &k->cfg, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "configuration: %s", e);
		return -1;
	}
	if (k->cfg.activation == KEYD_ACTIVATION_QUORUM)
		return 0; /* no PIN on disk: the quorum brings it (docs/quorum.md) */
	if (!k->pin && !(k->pin = keyd_secret_alloc(KEYD_PIN_MAX, err, errlen)))
		return -1;
	return keyd_pin_read(k->cfg.pin_file, k->pin, KEYD_PIN_MAX, err, errlen);
}

static void note(void *ctx, char *out, size_t n)
{
	struct keyd_main *k = ctx;

	if (k->cfg.activation == KEYD_ACTIVATION_QUORUM)
		snprintf(out, n, "(%zu clients; activation: quorum, %u of %u custodians)",
		         k->cfg.nclients, k->cfg.quorum.threshold, k->cfg.quorum.total);
	else
		snprintf(out, n, "(%zu clients)", k->cfg.nclients);
}

static const struct sandbox_config *sandbox_of(void *ctx)
{
	return &((struct keyd_main *)ctx)->cfg.sandbox;
}

/* Log in (the PIN is forgotten right after) and listen; with activation: quorum, listen
 * sealed, and log in when the custodians have presented their shares (keyd_server.c). */
static int make(void *ctx, char *err, size_t errlen)
{
	struct keyd_main *k = ctx;
	char e[512];

	k->tok = keyd_token_open(&k->cfg, k->pin, k->cfg.workers, e, sizeof(e));
	keyd_secret_free(k->pin, KEYD_PIN_MAX); /* the token keeps its own locked copy */
	k->pin = NULL;
	if (!k->tok) {
		snprintf(err, errlen, "token: %s", e);
		return -1;
	}
	k->srv = keyd_server_new(&k->cfg, k->tok, e, sizeof(e));
	if (!k->srv) {
		snprintf(err, errlen, "server: %s", e);
		return -1;
	}
	return 0;
}

static struct event_base *base(void *ctx)
{
	return keyd_server_base(((struct keyd_main *)ctx)->srv);
}

static void stop(void *ctx)
{
	keyd_server_stop(((struct keyd_main *)ctx)->srv);
}

static int run(void *ctx)
{
	return keyd_server_run(((struct keyd_main *)ctx)->srv);
}

static void cleanup(void *ctx)
{
	struct keyd_main *k = ctx;

	keyd_secret_free(k->pin, KEYD_PIN_MAX);
	k->pin = NULL;
	keyd_server_free(k->srv);
	keyd_token_close(k->tok);
	keyd_config_free(&k->cfg);
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
	    .name = "hsmca-keyd",
	    .doc = "docs/keyd.md",
	    .help = "--check also reads the PIN file.\n",
	    .debug_alias = 1, /* keyd's name for --verbose before the daemons agreed on one */
	    .sandbox = &keyd_sandbox,
	    /* Module loaded, logged in, socket listening: from then on keyd needs only its
	     * token folder (recovery re-initialises the module) and the connections it accepts. */
	    .user_switch = DAEMON_USER_AFTER_MAKE,
	    .config_load = load,
	    .check_note = note,
	    .sandbox_config = sandbox_of,
	    .make = make,
	    .base = base,
	    .stop = stop,
	    .run = run,
	    .cleanup = cleanup,
	};
	static struct keyd_main k;
	char err[256];

	/* Before anything is read: no core dumps, not ptrace-able (keyd_harden.h). */
	if (keyd_harden_process(err, sizeof(err)) != 0) {
		fprintf(stderr, "hsmca-keyd: %s\n", err);
		return 1;
	}
	return daemon_main(&def, &k, argc, argv);
}
