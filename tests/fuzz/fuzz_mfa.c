/* Fuzz what TOTP step-up reads from outside (docs/mfa.md): the X-HSMCA-TOTP header's value (a
 * six-digit code or a recovery code, cad_mfa_code_kind) checked against a secret, and the
 * "mfa:" section of hsmca-cad's configuration (its per-role step-up lists checked against the
 * route table). The first byte chooses which; the rest is the input. The enrolment bodies
 * ({"code": ...}) reach their handlers through fuzz_cad_api. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cad_mfa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[CAD_TOTP_SECRET_LEN] = "12345678901234567890";

static void header(const uint8_t *data, size_t size)
{
	char v[80], norm[CAD_RECOVERY_CHARS + 1];
	int64_t step;
	size_t n = size < sizeof(v) - 1 ? size : sizeof(v) - 1;

	memcpy(v, data, n);
	v[n] = '\0';
	switch (cad_mfa_code_kind(v, norm, sizeof(norm))) {
	case CAD_MFA_TOTP:
		if (strlen(norm) != CAD_TOTP_DIGITS)
			abort();
		(void)cad_totp_check(secret, sizeof(secret), norm, 1234567890, CAD_TOTP_WINDOW,
		                     &step);
		break;
	case CAD_MFA_RECOVERY: {
		uint8_t salt[16] = {0}, h[32];
		if (strlen(norm) != CAD_RECOVERY_CHARS || cad_recovery_hash(norm, salt, h) != 0)
			abort();
		break;
	}
	default:
		break;
	}
	/* The policy's patterns, on the same bytes. */
	if (cad_mfa_pattern_ok(v))
		(void)cad_mfa_pattern_matches(v, "certificate.revoke");
}

static void config(const uint8_t *data, size_t size)
{
	static struct cad_config cfg;
	struct yconf y = {0};

	memset(&cfg, 0, sizeof(cfg));
	if (yconf_load_mem(&y, "fuzz.yaml", data, size) == 0 &&
	    cad_mfa_config_parse(&y, yconf_get(&y, yconf_root(&y), "mfa"), &cfg) != 0 && !y.err[0])
		abort(); /* every refusal says why */
	yconf_free(&y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		config(data + 1, size - 1);
	else
		header(data + 1, size - 1);
	return 0;
}
