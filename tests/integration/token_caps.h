/*
 * What the token under test can do, asked of keyd (which probes the token's mechanisms at
 * start), for the keyd and provider suites that run on every token of tests/tokens.
 */
#ifndef HSMCA_TEST_TOKEN_CAPS_H
#define HSMCA_TEST_TOKEN_CAPS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "keyd_client.h"

/* 1 when keyd refuses EC key generation on this token naming CKM_EC_KEY_PAIR_GEN as
 * missing, 0 when it generates an EC key, -1 on any other answer. Starts and stops a keyd
 * and token of its own. SoftHSM makes EC keys: asked only of other tokens. */
static inline int harness_token_lacks_ec(void)
{
	/* Static: the harness putenv()s the token's environment from buffers inside it. */
	static struct harness ph;
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err err = {0};
	int rc = -1, lacks;
	const char *kind = getenv("HSMCA_TEST_TOKEN");

	if (!kind || !*kind || !strcmp(kind, "softhsm"))
		return 0;
	if (harness_start(&ph, NULL) != 0)
		return -1;
	if ((c = keyd_client_new(NULL, 0)) != NULL) {
		rc = keyd_client_generate(c, "probe-ec", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err);
		keyd_client_free(c);
	}
	harness_stop(&ph);
	lacks = rc == KEYD_E_BAD_ALG && strstr(err.msg, "not supported by this token") &&
	        strstr(err.msg, "CKM_EC_KEY_PAIR_GEN");
	if (rc != KEYD_OK && !lacks) {
		fprintf(stderr, "harness: probing EC on token %s: %d %s\n", kind, rc, err.msg);
		return -1;
	}
	return lacks;
}

/* The start of main() in a suite that runs on the token under test: the token is made once
 * (harness_token_skip) and asked for EC keys. Returns 0 to run, with *no_ec set (and, when the
 * token lacks EC, instead printed: what the suite does in its place), or what main returns:
 * 77 when the token cannot be made on this machine (meson's skip), 1 when it could not be
 * asked. */
static inline int harness_token_prologue(int *no_ec, const char *instead)
{
	int rc = harness_token_skip();

	if (rc)
		return rc;
	if ((*no_ec = harness_token_lacks_ec()) < 0)
		return 1;
	if (*no_ec && instead)
		fprintf(stderr, "token %s makes no EC keys (no CKM_EC_KEY_PAIR_GEN): %s\n",
		        getenv("HSMCA_TEST_TOKEN"), instead);
	return 0;
}

#endif
