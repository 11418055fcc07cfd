/* ACME (RFC 8555) in hsmca-cad: the configuration section; the server itself is
 * ca-core/acme, served under /acme/ by cad_acme.c over a store of accounts in the database. */
#ifndef HSMCA_CAD_ACME_H
#define HSMCA_CAD_ACME_H

#include "cad.h"
#include "cad_est.h" /* cad_profile_lookup */
#include "yconf.h"

/* The "acme:" section (n may be NULL: ACME is off), its profile names resolved with find.
 * 0, or -1 after yconf_fail. */
int cad_acme_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg,
                          cad_profile_lookup find);
/* What the section holds besides plain values (the alternate chains). */
void cad_acme_config_free(struct cad_config *cfg);

#endif
