/* hsmca acme: the ACME half of the hsmca-cad API an officer uses: External Account Binding
 * credentials (RFC 8555 §7.3.4), made, listed and revoked. Exit 0 on success, 1 with a message
 * otherwise, 2 for a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli.h"

#define LIST_MAX 1000

static void print_eab(json_t *o)
{
	/* Shown once: an ACME client needs both (certbot --eab-kid, --eab-hmac-key). */
	printf("kid=%s\nhmac_key=%s\n", json_string_value(json_object_get(o, "kid")),
	       json_string_value(json_object_get(o, "hmac_key")));
	fprintf(stderr,
	        "EAB credential %s binds one ACME account to principal %s; expires %s; the HMAC "
	        "key is not shown again\n",
	        json_string_value(json_object_get(o, "kid")),
	        json_string_value(json_object_get(o, "principal")),
	        json_string_value(json_object_get(o, "expires_at")));
}

static int print_call(struct api_client *c, const char *method, const char *path)
{
	json_t *out = NULL;
	long st = api_call(c, method, path, NULL, &out);
	char *s =
	    out && st >= 200 && st < 300 ? json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(out);
	return st >= 200 && st < 300 ? 0 : 1;
}

int cmd_acme(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca acme eab create --profile P [--profile P2]... [--allow PATTERN]...\n"
	    "                             [--principal NAME] [--days N]\n"
	    "       hsmca acme eab list | revoke KID\n"
	    "       hsmca acme incident --authority NAME --reason TEXT\n"
	    "  (role officer) makes an External Account Binding credential and prints its key\n"
	    "  identifier and base64url HMAC key, once (kid=..., hmac_key=...). The one ACME\n"
	    "  account registered with it is bound to the principal (default acme-KID), may use\n"
	    "  the profiles named (the acme.profiles of hsmca-cad) and, with --allow, only\n"
	    "  identifiers matching one of the patterns (exact, or '*.corp.example.com').\n"
	    "  --days: how long it may be used to register (default 7). list shows every\n"
	    "  credential without its key; revoke (role officer) stops a credential from\n"
	    "  registering (an account it bound already keeps working). incident (role officer)\n"
	    "  tells ACME clients, through renewal information, to renew every certificate of\n"
	    "  the authority issued until now at once.";
	static const struct option opts[] = {API_CLIENT_OPTIONS,
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"profile", required_argument, NULL, 'p'},
	                                     {"allow", required_argument, NULL, 'a'},
	                                     {"principal", required_argument, NULL, 'P'},
	                                     {"days", required_argument, NULL, 'd'},
	                                     {"authority", required_argument, NULL, 'A'},
	                                     {"reason", required_argument, NULL, 'r'},
	                                     {NULL, 0, NULL, 0}};
	const char *profiles[LIST_MAX], *allow[LIST_MAX], *principal = NULL, *authority = NULL,
	                                                  *reason = NULL;
	size_t n_profiles = 0, n_allow = 0;
	long days = 0;
	struct api_client c;
	json_t *body, *out = NULL, *a;
	char *end;
	long st;
	int o, r;

	api_client_init(&c);
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		r = api_client_option(&c, o, optarg);
		if (r < 0)
			return 1;
		if (r == 1)
			continue;
		switch (o) {
		case 'h':
			printf("%s\n%s", usage, API_CLIENT_HELP);
			return 0;
		case 'p':
			if (n_profiles == LIST_MAX)
				goto bad;
			profiles[n_profiles++] = optarg;
			break;
		case 'a':
			if (n_allow == LIST_MAX)
				goto bad;
			allow[n_allow++] = optarg;
			break;
		case 'P':
			principal = optarg;
			break;
		case 'A':
			authority = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		case 'd':
			days = strtol(optarg, &end, 10);
			if (*end || days < 1)
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (optind == argc - 1 && !strcmp(argv[optind], "incident") && authority && reason) {
		body = json_pack("{s:s, s:s}", "authority", authority, "reason", reason);
		st = api_call(&c, "POST", "/acme/incidents", body, &out);
		json_decref(body);
		json_decref(out);
		if (st >= 200 && st < 300)
			fprintf(stderr,
			        "renewal incident recorded: %s's certificates issued until now "
			        "should be renewed\n",
			        authority);
		return st >= 200 && st < 300 ? 0 : 1;
	}
	if (optind == argc - 2 && !strcmp(argv[optind], "eab") && !strcmp(argv[optind + 1], "list"))
		return print_call(&c, "GET", "/acme/eab");
	if (optind == argc - 3 && !strcmp(argv[optind], "eab") &&
	    !strcmp(argv[optind + 1], "revoke")) {
		char path[128];
		const char *kid = argv[optind + 2];
		if (!*kid || strlen(kid) > 64 ||
		    strspn(kid,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
		        strlen(kid))
			goto bad;
		snprintf(path, sizeof(path), "/acme/eab/%s/revoke", kid);
		return print_call(&c, "POST", path);
	}
	if (optind != argc - 2 || strcmp(argv[optind], "eab") ||
	    strcmp(argv[optind + 1], "create") || !n_profiles)
		goto bad;
	body = json_object();
	a = json_array();
	for (size_t i = 0; i < n_profiles; i++)
		json_array_append_new(a, json_string(profiles[i]));
	json_object_set_new(body, "profiles", a);
	if (n_allow) {
		a = json_array();
		for (size_t i = 0; i < n_allow; i++)
			json_array_append_new(a, json_string(allow[i]));
		json_object_set_new(body, "allow", a);
	}
	if (principal)
		json_object_set_new(body, "principal", json_string(principal));
	if (days)
		json_object_set_new(body, "expires_days", json_integer(days));
	st = api_call(&c, "POST", "/acme/eab", body, &out);
	if (st >= 200 && st < 300)
		print_eab(out);
	json_decref(out);
	json_decref(body);
	return st >= 200 && st < 300 ? 0 : 1;
bad:
	fprintf(stderr, "%s\n", usage);
	return 2;
}
