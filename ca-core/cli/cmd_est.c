/* hsmca provision (device provisioning tokens) and hsmca device (enrolled devices): the
 * device-enrolment half of the hsmca-cad API. Exit 0 on success, 1 with a message otherwise,
 * 2 for a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli.h"

#define ALLOW_MAX 1000

struct est_opts {
	const char *profile, *name, *reason, *comment, *identity;
	long days, uses;
	int replace;
	const char *allow[ALLOW_MAX];
	size_t n_allow;
};

static int parse_est(int argc, char **argv, struct est_opts *eo, struct api_client *c,
                     const char *usage)
{
	static const struct option opts[] = {API_CLIENT_OPTIONS,
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"profile", required_argument, NULL, 'p'},
	                                     {"name", required_argument, NULL, 'n'},
	                                     {"days", required_argument, NULL, 'd'},
	                                     {"uses", required_argument, NULL, 'u'},
	                                     {"allow", required_argument, NULL, 'a'},
	                                     {"replace", no_argument, NULL, 'R'},
	                                     {"reason", required_argument, NULL, 'r'},
	                                     {"comment", required_argument, NULL, 'C'},
	                                     {"identity", required_argument, NULL, 'i'},
	                                     {NULL, 0, NULL, 0}};
	char *end;
	int o, r;

	api_client_init(c);
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		r = api_client_option(c, o, optarg);
		if (r < 0)
			return 1;
		if (r == 1)
			continue;
		switch (o) {
		case 'h':
			printf("%s\n%s", usage, API_CLIENT_HELP);
			return -1;
		case 'p':
			eo->profile = optarg;
			break;
		case 'n':
			eo->name = optarg;
			break;
		case 'd':
			eo->days = strtol(optarg, &end, 10);
			if (*end || eo->days < 1)
				goto bad;
			break;
		case 'u':
			eo->uses = strtol(optarg, &end, 10);
			if (*end || eo->uses < 1)
				goto bad;
			break;
		case 'a':
			if (eo->n_allow == ALLOW_MAX)
				goto bad;
			eo->allow[eo->n_allow++] = optarg;
			break;
		case 'R':
			eo->replace = 1;
			break;
		case 'r':
			eo->reason = optarg;
			break;
		case 'C':
			eo->comment = optarg;
			break;
		case 'i':
			eo->identity = optarg;
			break;
		default:
			goto bad;
		}
	}
	return 0;
bad:
	fprintf(stderr, "%s\n", usage);
	return 2;
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		printf("%s\n", s);
	free(s);
}

static int call(struct api_client *c, const char *method, const char *path, json_t *body,
                void (*show)(json_t *))
{
	json_t *out = NULL;
	long st = api_call(c, method, path, body, &out);
	int rc = st >= 200 && st < 300 ? 0 : 1;

	if (rc == 0)
		(show ? show : print_json)(out);
	json_decref(out);
	json_decref(body);
	return rc;
}

static void print_prov_token(json_t *o)
{
	/* Shown once: the server keeps only its hash. */
	printf("%s\n", json_string_value(json_object_get(o, "token")));
	fprintf(stderr,
	        "provisioning token %lld (%s) for profile %s: %lld use(s), expires %s; it is not "
	        "shown again\n",
	        (long long)json_integer_value(json_object_get(o, "id")),
	        json_string_value(json_object_get(o, "name")),
	        json_string_value(json_object_get(o, "profile")),
	        (long long)json_integer_value(json_object_get(o, "uses")),
	        json_string_value(json_object_get(o, "expires_at")));
}

static int segment_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 255 && !strpbrk(s, "/?#%");
}

int cmd_provision(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca provision create --profile P --name NAME [--days N] [--uses N]\n"
	    "                              [--allow ID_OR_PATTERN]... [--replace]\n"
	    "       hsmca provision list | revoke ID\n"
	    "  create (role officer) prints a device provisioning token on stdout, once. A device\n"
	    "  enrols with it over EST ($HSMCA_EST_URL): HTTP Basic with the token as password, "
	    "or\n"
	    "  Bearer. --days: validity (default 7); --uses: enrolments it allows (default 1);\n"
	    "  --allow: names it may enrol, exact or shell patterns such as 'sensor-*',\n"
	    "  repeatable: the device identity (subject CN) and every SAN of the CSR must each\n"
	    "  match one (default: any the profile allows);\n"
	    "  --replace: it may enrol an identity that has a valid certificate (which is then\n"
	    "  revoked as superseded).";
	struct est_opts eo = {0};
	struct api_client c;
	char path[300];
	const char *sub;
	int r = parse_est(argc, argv, &eo, &c, usage);

	if (r)
		return r < 0 ? 0 : r;
	if (optind >= argc) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	sub = argv[optind];
	if (!strcmp(sub, "create") && optind == argc - 1 && eo.profile && eo.name) {
		json_t *body = json_pack("{s:s, s:s, s:b}", "name", eo.name, "profile", eo.profile,
		                         "replace", eo.replace);
		if (eo.days)
			json_object_set_new(body, "expires_days", json_integer(eo.days));
		if (eo.uses)
			json_object_set_new(body, "uses", json_integer(eo.uses));
		if (eo.n_allow) {
			json_t *a = json_array();
			for (size_t i = 0; i < eo.n_allow; i++)
				json_array_append_new(a, json_string(eo.allow[i]));
			json_object_set_new(body, "allowlist", a);
		}
		return call(&c, "POST", "/provisioning-tokens", body, print_prov_token);
	}
	if (!strcmp(sub, "list") && optind == argc - 1)
		return call(&c, "GET", "/provisioning-tokens", NULL, NULL);
	if (!strcmp(sub, "revoke") && optind == argc - 2 && segment_ok(argv[optind + 1])) {
		snprintf(path, sizeof(path), "/provisioning-tokens/%s/revoke", argv[optind + 1]);
		return call(&c, "POST", path, NULL, NULL);
	}
	fprintf(stderr, "%s\n", usage);
	return 2;
}

int cmd_device(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca device list [--identity SUBSTRING]\n"
	    "       hsmca device show IDENTITY\n"
	    "       hsmca device decommission IDENTITY --reason R [--comment TEXT]\n"
	    "  Devices enrolled over EST, by identity (subject CN, or first SAN). show lists the\n"
	    "  device's certificates. decommission (role officer) revokes every certificate of "
	    "the\n"
	    "  device with reason R (keyCompromise, cessationOfOperation, ...); it cannot\n"
	    "  re-enrol or enrol again.";
	struct est_opts eo = {0};
	struct api_client c;
	char path[400];
	const char *sub;
	int r = parse_est(argc, argv, &eo, &c, usage);

	if (r)
		return r < 0 ? 0 : r;
	if (optind >= argc) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	sub = argv[optind];
	if (!strcmp(sub, "list") && optind == argc - 1) {
		if (eo.identity) {
			char *q = api_escape(eo.identity);
			if (!q)
				return 1;
			snprintf(path, sizeof(path), "/devices?identity=%s", q);
			free(q);
		} else {
			snprintf(path, sizeof(path), "/devices");
		}
		return call(&c, "GET", path, NULL, NULL);
	}
	if (optind != argc - 2 || !segment_ok(argv[optind + 1])) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	{
		char *id = api_escape(argv[optind + 1]);
		if (!id)
			return 1;
		snprintf(path, sizeof(path), "/devices/%s", id);
		free(id);
	}
	if (!strcmp(sub, "show"))
		return call(&c, "GET", path, NULL, NULL);
	if (!strcmp(sub, "decommission") && eo.reason) {
		json_t *body = json_pack("{s:s}", "reason", eo.reason);
		if (eo.comment)
			json_object_set_new(body, "comment", json_string(eo.comment));
		strncat(path, "/decommission", sizeof(path) - strlen(path) - 1);
		return call(&c, "POST", path, body, NULL);
	}
	fprintf(stderr, "%s\n", usage);
	return 2;
}
