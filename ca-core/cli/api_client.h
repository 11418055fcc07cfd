/* The hsmca-cad API from the command line: where (HSMCA_API_URL) and who (a client
 * certificate, HSMCA_CLIENT_CERT/KEY, or an API token, HSMCA_API_TOKEN), over HTTPS checked
 * against HSMCA_CA_BUNDLE. Flags override the variables. */
#ifndef HSMCA_API_CLIENT_H
#define HSMCA_API_CLIENT_H

#include <jansson.h>

struct api_client {
	const char *url;        /* e.g. https://127.0.0.1:8443 (no /api/v1) */
	const char *ca_bundle;  /* PEM; NULL: the system's trust store */
	const char *cert, *key; /* client certificate and key files */
	char token[512];        /* bearer token; "" for none */
};

/* The common options, for getopt_long: each command appends these. */
#define API_CLIENT_OPTIONS                                                                         \
	{"url", required_argument, NULL, 1001}, {"ca-bundle", required_argument, NULL, 1002},      \
	    {"cert", required_argument, NULL, 1003}, {"key", required_argument, NULL, 1004},       \
	{                                                                                          \
		"token-file", required_argument, NULL, 1005                                        \
	}
#define API_CLIENT_HELP                                                                            \
	"Connection (flags override the variables):\n"                                             \
	"  --url URL          the API ($HSMCA_API_URL)\n"                                          \
	"  --ca-bundle FILE   CA certificates for the server ($HSMCA_CA_BUNDLE)\n"                 \
	"  --cert FILE        client certificate ($HSMCA_CLIENT_CERT)\n"                           \
	"  --key FILE         its key ($HSMCA_CLIENT_KEY)\n"                                       \
	"  --token-file FILE  an API token, read from FILE ($HSMCA_API_TOKEN)\n"

/* Fill from the environment. */
void api_client_init(struct api_client *c);
/* Handle one of API_CLIENT_OPTIONS; 1 if it was one, 0 if not, -1 on error (printed). */
int api_client_option(struct api_client *c, int opt, const char *arg);

/* method path (under /api/v1) with body (NULL: none); *out gets the JSON reply. Returns the
 * HTTP status, or -1 when there was no answer (message printed). A 4xx/5xx is printed as
 * "hsmca: DETAIL (ERROR, HTTP STATUS)". */
long api_call(const struct api_client *c, const char *method, const char *path, json_t *body,
              json_t **out);

/* A TOTP code (or recovery code) for a step-up (docs/mfa.md): $HSMCA_TOTP, else asked on the
 * terminal (stdin, without echo) after printing why. 0 with the code in out, or -1 when there
 * is none (no variable, no terminal). api_call uses it when the server answers 401 step-up,
 * and repeats the request once with the code in X-HSMCA-TOTP. */
int api_totp_code(const char *why, char *out, size_t n);

/* arg percent-encoded for a query string; free() it. NULL when out of memory. */
char *api_escape(const char *arg);

#endif
