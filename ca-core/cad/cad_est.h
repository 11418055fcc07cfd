/* EST (RFC 7030) in hsmca-cad: the configuration section and the parsers of what a device
 * sends (request bodies, the Authorization header), kept free of the server so that they can
 * be fuzzed alone. */
#ifndef HSMCA_CAD_EST_H
#define HSMCA_CAD_EST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cad.h"
#include "yconf.h"

/* The "est:" section (n may be NULL: EST is off), its profile names resolved with find (the
 * caller's lookup, so that this section needs nothing else of the configuration's reader).
 * 0, or -1 after yconf_fail. */
typedef struct ca_profile *(*cad_profile_lookup)(struct cad_config *cfg, const char *name);
int cad_est_config_parse(struct yconf *y, yaml_node_t *n, struct cad_config *cfg,
                         cad_profile_lookup find);

#define CAD_EST_BODY_MAX (64 * 1024)
#define CAD_EST_TOKEN_MAX 256

/* A PKCS#10 request as RFC 7030 sends it: base64 of the DER (line breaks and other white
 * space allowed, as in its examples), or the DER itself (what some clients send, per the
 * errata's discussion of Content-Transfer-Encoding), or PEM. Bounded by CAD_EST_BODY_MAX; the
 * whole body must be one request with nothing after it. The request, or NULL with why. */
X509_REQ *cad_est_parse_csr(const uint8_t *body, size_t len, char *why, size_t n);

enum cad_est_auth { CAD_EST_AUTH_NONE, CAD_EST_AUTH_BASIC, CAD_EST_AUTH_BEARER, CAD_EST_AUTH_BAD };
/* The credential in an Authorization header (NULL: none): "Basic base64(user:password)" whose
 * password is the provisioning token (user is the device's choice, copied to user), or
 * "Bearer token". The token must be 1..CAD_EST_TOKEN_MAX printable ASCII characters. BAD with
 * why for anything else. token holds CAD_EST_TOKEN_MAX + 1, user n_user bytes. */
enum cad_est_auth cad_est_parse_auth(const char *header, char *token, char *user, size_t n_user,
                                     char *why, size_t n);

/* Re-enrolment (RFC 7030 4.2.2): 1 when the SANs gens of the new request are, as a set, those
 * of the current certificate cert (each in the other, both ways); 0 otherwise. */
int cad_est_same_sans(X509 *cert, const GENERAL_NAMES *gens);

#endif
