/* hsmca approvals list|show|approve|reject|request: quorum approvals over hsmca-cad's API
 * (docs/approvals.md). Exit 0 on success, 1 with a message otherwise, 2 for a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli.h"
#include "cli_approval.h"

static const char usage_text[] =
    "usage: hsmca approvals list [--state STATE] [--kind KIND] [--target TARGET] [--limit N]\n"
    "       hsmca approvals show ID\n"
    "       hsmca approvals approve ID [--reason TEXT]\n"
    "       hsmca approvals reject ID --reason TEXT\n"
    "       hsmca approvals request KIND (--file FILE | --target SHA256) --reason TEXT\n"
    "\n"
    "Operations under quorum approval (retiring an authority, revoking a CA certificate,\n"
    "a key ceremony, a restore) wait as requests until enough distinct approvers of the\n"
    "roles the configuration names approve them; the requester counts as the first and may\n"
    "not approve their own. 'request' asks for a ceremony.run or backup.restore approval of\n"
    "FILE (its SHA-256); the others are requested by their own command (hsmca authority\n"
    "retire, hsmca revoke). STATE: pending, approved, rejected, expired, executed, failed.\n";

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		printf("%s\n", s);
	free(s);
}

static void print_list(json_t *o)
{
	json_t *arr = json_object_get(o, "approvals"), *a;
	size_t i;

	printf("%-6s %-9s %-22s %-8s %-16s %s\n", "ID", "STATE", "KIND", "PEOPLE", "REQUESTER",
	       "TARGET");
	json_array_foreach(arr, i, a)
	{
		char people[16];
		snprintf(people, sizeof(people), "%lld/%lld",
		         (long long)json_integer_value(json_object_get(a, "approvals")) + 1,
		         (long long)json_integer_value(json_object_get(a, "required_approvals")));
		printf("%-6lld %-9s %-22s %-8s %-16s %s\n",
		       (long long)json_integer_value(json_object_get(a, "id")),
		       json_string_value(json_object_get(a, "state")),
		       json_string_value(json_object_get(a, "kind")), people,
		       json_string_value(json_object_get(a, "requester")),
		       json_string_value(json_object_get(a, "target")));
	}
}

int cmd_approvals(int argc, char **argv)
{
	static const struct option own[] = {
	    API_CLIENT_OPTIONS,
	    {"state", required_argument, NULL, 's'},
	    {"kind", required_argument, NULL, 'k'},
	    {"target", required_argument, NULL, 't'},
	    {"limit", required_argument, NULL, 'l'},
	    {"reason", required_argument, NULL, 'r'},
	    {"file", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *state = NULL, *kind = NULL, *target = NULL, *limit = NULL, *reason = NULL,
	           *file = NULL, *args[2] = {NULL, NULL};
	struct api_client c;
	char path[512], hash[65], msg[256];
	json_t *body = NULL, *out = NULL;
	int nargs = 0, o, r, rc = 1;
	long st;

	api_client_init(&c);
	optind = 1;
	while (optind < argc) {
		if ((o = getopt_long(argc, argv, "+h", own, NULL)) == -1) {
			if (nargs == 2) {
				fprintf(stderr, "hsmca approvals: unexpected argument \"%s\"\n",
				        argv[optind]);
				return 2;
			}
			args[nargs++] = argv[optind++];
			continue;
		}
		if ((r = api_client_option(&c, o, optarg)) < 0)
			return 1;
		if (r == 1)
			continue;
		switch (o) {
		case 's':
			state = optarg;
			break;
		case 'k':
			kind = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'l':
			limit = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			printf("%s\n%s", usage_text, API_CLIENT_HELP);
			return 0;
		default:
			fprintf(stderr, "%s", usage_text);
			return 2;
		}
	}
	if (!nargs) {
		fprintf(stderr, "%s", usage_text);
		return 2;
	}
	if (!strcmp(args[0], "list") && nargs == 1) {
		const char *names[] = {"state", "kind", "target", "limit"};
		const char *vals[] = {state, kind, target, limit};
		size_t n = (size_t)snprintf(path, sizeof(path), "/approvals");
		for (int i = 0; i < 4; i++) {
			char *e;
			if (!vals[i])
				continue;
			if (!(e = api_escape(vals[i])))
				return 1;
			n +=
			    (size_t)snprintf(path + n, n < sizeof(path) ? sizeof(path) - n : 0,
			                     "%c%s=%s", strchr(path, '?') ? '&' : '?', names[i], e);
			free(e);
		}
		if (n >= sizeof(path)) {
			fprintf(stderr, "hsmca approvals list: filters too long\n");
			return 2;
		}
		st = api_call(&c, "GET", path, NULL, &out);
		if (st == 200) {
			print_list(out);
			rc = 0;
		}
		goto out;
	}
	if ((!strcmp(args[0], "show") || !strcmp(args[0], "approve") ||
	     !strcmp(args[0], "reject")) &&
	    nargs == 2) {
		if (strspn(args[1], "0123456789") != strlen(args[1]) || strlen(args[1]) > 18) {
			fprintf(stderr, "hsmca approvals %s: \"%s\" is not an approval id\n",
			        args[0], args[1]);
			return 2;
		}
		if (!strcmp(args[0], "show")) {
			snprintf(path, sizeof(path), "/approvals/%s", args[1]);
			st = api_call(&c, "GET", path, NULL, &out);
		} else {
			if (!strcmp(args[0], "reject") && !reason) {
				fprintf(stderr, "hsmca approvals reject: say why with --reason\n");
				return 2;
			}
			snprintf(path, sizeof(path), "/approvals/%s/%s", args[1], args[0]);
			body = reason ? json_pack("{s:s}", "reason", reason) : NULL;
			st = api_call(&c, "POST", path, body, &out);
		}
		if (st == 200) {
			print_json(json_object_get(out, "approval"));
			rc = 0;
		}
		goto out;
	}
	if (!strcmp(args[0], "request") && nargs == 2) {
		if (!file == !target || !reason) {
			fprintf(stderr, "hsmca approvals request: give --file or --target, and "
			                "--reason\n");
			return 2;
		}
		if (file) {
			if (cli_file_sha256(file, hash, msg, sizeof(msg)) != 0) {
				fprintf(stderr, "hsmca approvals: %s\n", msg);
				return 1;
			}
			target = hash;
		}
		body = json_pack("{s:s, s:s, s:s}", "kind", args[1], "target", target, "reason",
		                 reason);
		if (file && body)
			json_object_set_new(body, "parameters", json_pack("{s:s}", "file", file));
		st = api_call(&c, "POST", "/approvals", body, &out);
		if (st == 202) {
			print_json(json_object_get(out, "approval"));
			rc = 0;
		}
		goto out;
	}
	fprintf(stderr, "%s", usage_text);
	return 2;
out:
	json_decref(body);
	json_decref(out);
	return rc;
}
