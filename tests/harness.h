/*
 * Test harness: a throwaway SoftHSM token and an hsmca-keyd serving it, in a
 * fresh temporary folder per call (never the user's token). Needs the
 * environment meson's test() sets: HSMCA_KEYD_BIN, HSMCA_PROVIDER_DIR, HSMCA_SRC.
 */
#ifndef HSMCA_TEST_HARNESS_H
#define HSMCA_TEST_HARNESS_H

#include <sys/types.h>

struct harness_opts {
	/* The "clients:" list of keyd's config, as YAML text indented by two
	 * spaces per level; NULL grants the test's own uid every key and
	 * every operation (generate included). */
	const char *clients_yaml;
	int workers; /* 0: 2 */
	int queue;   /* 0: 256 */
	/* PKCS#11 module keyd loads; NULL: SoftHSM. The fault shim is
	 * $HSMCA_BUILD/tests/shim/libp11shim.so and wraps SoftHSM. */
	const char *module;
	/* Extra environment for keyd, "NAME=value", NULL-terminated; may be NULL. */
	const char *const *keyd_env;
};

struct harness {
	char dir[256];          /* the temporary folder */
	char socket[512];       /* keyd's socket */
	char conf[512];         /* keyd's config file */
	char softhsm_conf[512]; /* SOFTHSM2_CONF, also set in this process */
	char tokendir[512];
	char log[512]; /* keyd's stderr */
	char pin[64];
	char token_label[32];
	pid_t keyd_pid;
};

/* Make the token, write config and PIN file, start keyd and wait for its
 * socket. Returns 0, or -1 with a message on stderr. Sets HSMCA_KEYD_SOCKET. */
int harness_start(struct harness *h, const struct harness_opts *o);
/* Rewrite keyd's config (e.g. other clients) without restarting. */
int harness_write_config(struct harness *h, const struct harness_opts *o);
int harness_keyd_start(struct harness *h);
/* SIGTERM keyd and wait for it; returns its exit status or -1. */
int harness_keyd_stop(struct harness *h);
/* SIGKILL keyd (a crash) and reap it. */
void harness_keyd_kill(struct harness *h);
/* Stop keyd and remove the folder. */
void harness_stop(struct harness *h);
/* 1 if keyd's log contains s. */
int harness_log_contains(const struct harness *h, const char *s);

#endif
