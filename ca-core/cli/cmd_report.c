/* hsmca report issuance|expiring|principals: the reports of GET /api/v1/reports/...
 * (docs/reports.md) as JSON, RFC 4180 CSV (the same bytes as the API's format=csv) or an
 * aligned table. Exit 0 on success, 1 with a message otherwise, 2 for a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli.h"
#include "csv.h"

/* The columns of each report (as the API's CSV has them). */
static const char *const issuance_cols[] = {"authority", "profile", "issued",
                                            "revoked",   "expired", NULL};
static const char *const issuance_day_cols[] = {"day", "issued", "revoked", "expired", NULL};
static const char *const expiring_cols[] = {"serial",    "authority", "profile",   "subject",
                                            "requester", "not_after", "days_left", NULL};
static const char *const principal_cols[] = {"kind",         "name",  "principal",  "role",
                                             "profile",      "state", "created_at", "expires_at",
                                             "last_used_at", NULL};

static const char usage_text[] =
    "usage: hsmca report issuance [--from T] [--to T] [--by-day] [--format F]\n"
    "       hsmca report expiring [--days N] [--limit N] [--format F]\n"
    "       hsmca report principals [--format F]\n"
    "  issuance    certificates issued, revoked and expired per authority and profile in\n"
    "              [from, to) (default: the last 30 days); --by-day: per UTC day instead\n"
    "  expiring    valid certificates expiring within N days (default 30), soonest first\n"
    "  principals  principals, API tokens and provisioning tokens with their last use\n"
    "  T is 2026-01-02 or 2026-01-02T03:04:05Z (UTC); F is json (default), csv or table.\n"
    "  Roles auditor and ca-admin; docs/reports.md says what each figure counts.\n";

/* One cell as text into buf (numbers in decimal, null empty). */
static const char *cell(json_t *row, const char *key, char *buf, size_t n)
{
	json_t *v = json_object_get(row, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
	else
		buf[0] = '\0';
	return buf;
}

static void print_csv(const char *const *cols, json_t *const *arrays)
{
	struct csv_buf b = {0};
	char num[32];
	json_t *row;
	size_t i;

	for (size_t c = 0; cols[c]; c++)
		csv_field(&b, cols[c]);
	csv_row_end(&b);
	for (size_t a = 0; arrays[a]; a++)
		json_array_foreach(arrays[a], i, row)
		{
			for (size_t c = 0; cols[c]; c++)
				csv_field(&b, cell(row, cols[c], num, sizeof(num)));
			csv_row_end(&b);
		}
	if (b.data)
		fwrite(b.data, 1, b.len, stdout);
	free(b.data);
}

/* Columns padded to their widest cell; control characters shown as '?'. */
static void print_table(const char *const *cols, json_t *const *arrays)
{
	size_t w[16] = {0}, nc = 0, i;
	char num[32];
	json_t *row;

	for (; cols[nc] && nc < 16; nc++)
		w[nc] = strlen(cols[nc]);
	for (size_t a = 0; arrays[a]; a++)
		json_array_foreach(arrays[a], i, row) for (size_t c = 0; c < nc; c++)
		{
			size_t l = strlen(cell(row, cols[c], num, sizeof(num)));
			if (l > w[c])
				w[c] = l;
		}
	for (size_t c = 0; c < nc; c++)
		printf("%-*s%s", (int)w[c], cols[c], c + 1 < nc ? "  " : "\n");
	for (size_t a = 0; arrays[a]; a++)
		json_array_foreach(arrays[a], i, row) for (size_t c = 0; c < nc; c++)
		{
			const char *s = cell(row, cols[c], num, sizeof(num));
			size_t l = strlen(s);
			for (const char *p = s; *p; p++)
				putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
			if (c + 1 < nc)
				printf("%*s", (int)(w[c] - l + 2), "");
			else
				putchar('\n');
		}
}

/* Append "&name=value" (value percent-encoded) to path. 0, or -1. */
static int add_param(char *path, size_t n, const char *name, const char *value)
{
	char *e = api_escape(value);
	size_t len = strlen(path);
	int w;

	if (!e)
		return -1;
	w = snprintf(path + len, n - len, "%s%s=%s", strchr(path, '?') ? "&" : "?", name, e);
	free(e);
	return w < 0 || (size_t)w >= n - len ? -1 : 0;
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {API_CLIENT_OPTIONS,
	                                     {"from", required_argument, NULL, 'f'},
	                                     {"to", required_argument, NULL, 't'},
	                                     {"days", required_argument, NULL, 'd'},
	                                     {"limit", required_argument, NULL, 'l'},
	                                     {"by-day", no_argument, NULL, 'D'},
	                                     {"format", required_argument, NULL, 'F'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *kind = argc > 1 ? argv[1] : NULL, *format = "json", *from = NULL, *to = NULL,
	           *days = NULL, *limit = NULL;
	const char *const *cols;
	struct api_client c;
	char path[1024];
	json_t *out = NULL, *arrays[4] = {NULL};
	int by_day = 0, o, r;
	long st;

	if (kind && (!strcmp(kind, "--help") || !strcmp(kind, "-h"))) {
		printf("%s\n%s", usage_text, API_CLIENT_HELP);
		return 0;
	}
	if (!kind ||
	    (strcmp(kind, "issuance") && strcmp(kind, "expiring") && strcmp(kind, "principals"))) {
		fprintf(stderr, "%s", usage_text);
		return 2;
	}
	api_client_init(&c);
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((r = api_client_option(&c, o, optarg)) < 0)
			return 1;
		if (r == 1)
			continue;
		switch (o) {
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'd':
			days = optarg;
			break;
		case 'l':
			limit = optarg;
			break;
		case 'D':
			by_day = 1;
			break;
		case 'F':
			format = optarg;
			break;
		case 'h':
			printf("%s\n%s", usage_text, API_CLIENT_HELP);
			return 0;
		default:
			fprintf(stderr, "%s", usage_text);
			return 2;
		}
	}
	if (optind != argc ||
	    (strcmp(format, "json") && strcmp(format, "csv") && strcmp(format, "table"))) {
		fprintf(stderr, "hsmca report: %s\n%s",
		        optind != argc ? "unexpected arguments" : "--format: json, csv or table",
		        usage_text);
		return 2;
	}
	if ((!strcmp(kind, "issuance") && (days || limit)) ||
	    (strcmp(kind, "issuance") && (from || to || by_day)) ||
	    (!strcmp(kind, "principals") && (days || limit))) {
		fprintf(stderr, "hsmca report %s: an option of another report\n%s", kind,
		        usage_text);
		return 2;
	}
	snprintf(path, sizeof(path), "/reports/%s", kind);
	if ((from && add_param(path, sizeof(path), "from", from)) ||
	    (to && add_param(path, sizeof(path), "to", to)) ||
	    (days && add_param(path, sizeof(path), "days", days)) ||
	    (limit && add_param(path, sizeof(path), "limit", limit))) {
		fprintf(stderr, "hsmca report: an option is too long\n");
		return 2;
	}
	st = api_call(&c, "GET", path, NULL, &out);
	if (st < 200 || st >= 300) {
		json_decref(out);
		return 1;
	}
	if (!strcmp(format, "json")) {
		char *s = json_dumps(out, JSON_INDENT(2));
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(out);
		return s ? 0 : 1;
	}
	if (!strcmp(kind, "issuance")) {
		cols = by_day ? issuance_day_cols : issuance_cols;
		arrays[0] = json_object_get(out, by_day ? "days" : "rows");
	} else if (!strcmp(kind, "expiring")) {
		cols = expiring_cols;
		arrays[0] = json_object_get(out, "certificates");
		if (json_integer_value(json_object_get(out, "total")) >
		    (json_int_t)json_array_size(arrays[0]))
			fprintf(stderr, "hsmca report: %zu of %lld certificates shown (--limit)\n",
			        json_array_size(arrays[0]),
			        (long long)json_integer_value(json_object_get(out, "total")));
	} else {
		cols = principal_cols;
		arrays[0] = json_object_get(out, "principals");
		arrays[1] = json_object_get(out, "api_tokens");
		arrays[2] = json_object_get(out, "provisioning_tokens");
	}
	if (!strcmp(format, "csv"))
		print_csv(cols, arrays);
	else
		print_table(cols, arrays);
	json_decref(out);
	return 0;
}
