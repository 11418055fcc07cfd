/* hsmca-cad's "est:" section: which profiles devices enrol in over EST, how long a
 * provisioning token may live, and how long an enrolment waits for another of its identity. */
#include <stdio.h>
#include <string.h>

#include "cad_est.h"

static const char *const est_fields[] = {"profiles", "token_max_days", "lock_wait_seconds", NULL};

int cad_est_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg,
                         cad_profile_lookup find)
{
	yaml_node_t *seq;
	long l = 365;
	char name[CAD_NAME_MAX + 1];

	cfg->n_est_profiles = 0;
	cfg->est_token_max_days = 365;
	cfg->est_lock_wait_seconds = 30;
	if (!n)
		return 0;
	if (yconf_check_map(y, n, "est", est_fields) ||
	    yconf_opt_long(y, n, "token_max_days", 1, 3660, &l))
		return -1;
	cfg->est_token_max_days = (int)l;
	l = cfg->est_lock_wait_seconds;
	if (yconf_opt_long(y, n, "lock_wait_seconds", 1, 600, &l))
		return -1;
	cfg->est_lock_wait_seconds = (int)l;
	if (!(seq = yconf_get(y, n, "profiles")))
		return yconf_fail(y, n, "est",
		                  "\"profiles\" (the profiles devices enrol in) is "
		                  "required");
	if (!yconf_is_seq(seq) || yconf_seq_len(seq) == 0)
		return yconf_fail(y, seq, "est.profiles", "must be a list of profile names");
	if (yconf_seq_len(seq) > CAD_MAX_PROFILES)
		return yconf_fail(y, seq, "est.profiles", "more than %d entries", CAD_MAX_PROFILES);
	for (size_t i = 0; i < yconf_seq_len(seq); i++) {
		yaml_node_t *item = yconf_seq_item(y, seq, i);
		struct ca_profile *p;
		if (yconf_str(y, item, "est.profiles", name, sizeof(name)))
			return -1;
		if (!(p = find(cfg, name)))
			return yconf_fail(y, item, "est.profiles", "no profile named \"%s\"", name);
		for (size_t j = 0; j < cfg->n_est_profiles; j++)
			if (cfg->est_profiles[j] == p)
				return yconf_fail(y, item, "est.profiles", "\"%s\" is named twice",
				                  name);
		/* A device's identity is its CN, or its first SAN: the profile must demand one. */
		if (!p->subject_cn_required && !p->san_required)
			return yconf_fail(
			    y, item, "est.profiles",
			    "profile %s requires neither a subject CN nor a SAN, so a "
			    "device would have no identity",
			    name);
		cfg->est_profiles[cfg->n_est_profiles++] = p;
	}
	return 0;
}
