/* Fuzz the check of a profile sent to the API (cad_profile_from_json): the bounded JSON
 * (jansson, as cad_body_object reads it), then the configuration's own profile parser over
 * it. Every refusal must say why; a profile that passes must name what it holds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cad_config cfg;
	struct ca_profile p;
	char err[700] = "";
	json_t *body;

	if (!cfg.n_authorities) {
		snprintf(cfg.authorities[0].name, sizeof(cfg.authorities[0].name), "issuing");
		cfg.n_authorities = 1;
		snprintf(cfg.key_profiles[0].name, sizeof(cfg.key_profiles[0].name), "standard");
		cfg.key_profiles[0].rsa_min_bits = 2048;
		cfg.key_profiles[0].rsa_max_bits = 4096;
		cfg.key_profiles[0].p256 = 1;
		cfg.n_key_profiles = 1;
	}
	if (size > 65536)
		return 0; /* cad's max_body_bytes is at most 1 MiB; bodies this size say enough */
	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!body)
		return 0;
	if (cad_profile_from_json(&cfg, body, &p, err, sizeof(err)) == 0) {
		if (!p.name[0] || !p.authority || !p.key_profile || !p.key_usage)
			abort();
		cad_profile_clear(&p);
	} else if (!err[0]) {
		abort();
	}
	json_decref(body);
	return 0;
}
