/* hsmca commands that talk to hsmca-cad: issue, show, list, revoke, hold, release, principal,
 * token, profiles, authority, audit. Serials are hex. Exit 0 on success, 1 with a message
 * otherwise, 2 for a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli.h"
#include "yconf.h"

#define CSR_MAX (64 * 1024)

/* Parse the common options and the command's own; own_fn handles the latter. */
typedef int (*own_opt_fn)(int opt, const char *arg, void *ctx);

static int parse(int argc, char **argv, const struct option *own, size_t n_own,
                 const char *shortopts, own_opt_fn fn, void *ctx, struct api_client *c,
                 const char *usage)
{
	struct option opts[32] = {API_CLIENT_OPTIONS, {"help", no_argument, NULL, 'h'}};
	size_t base = 6;
	int o, r;

	for (size_t i = 0; i < n_own && base + i < 31; i++)
		opts[base + i] = own[i];
	api_client_init(c);
	optind = 1;
	while ((o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		if (o == 'h') {
			printf("%s\n%s", usage, API_CLIENT_HELP);
			return 1;
		}
		r = api_client_option(c, o, optarg);
		if (r < 0)
			return -1;
		if (r == 1)
			continue;
		if (o == '?' || !fn || fn(o, optarg, ctx) != 0) {
			fprintf(stderr, "%s\n", usage);
			return -2;
		}
	}
	return 0;
}

/* 0 ok; the exit status otherwise. */
static int parse_status(int r)
{
	return r == 1 ? 0 : r == -2 ? 2 : 1;
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		printf("%s\n", s);
	free(s);
}

static char *read_file(const char *path, size_t max)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *buf = malloc(max + 1);
	size_t n;

	if (!f || !buf) {
		fprintf(stderr, "hsmca: cannot read %s\n", path);
		free(buf);
		if (f && f != stdin)
			fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (f != stdin)
		fclose(f);
	if (n > max) {
		fprintf(stderr, "hsmca: %s is larger than %zu bytes\n", path, max);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* Run one call; print the reply with show (or as JSON); return the exit status. */
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

/* --- issue --- */

struct issue_opts {
	const char *profile, *csr;
	long days;
	int chain;
};

static int issue_opt(int o, const char *arg, void *ctx)
{
	struct issue_opts *io = ctx;
	char *end;

	switch (o) {
	case 'p':
		io->profile = arg;
		return 0;
	case 'c':
		io->csr = arg;
		return 0;
	case 'd':
		io->days = strtol(arg, &end, 10);
		return *end || io->days < 1 ? -1 : 0;
	case 'C':
		io->chain = 1;
		return 0;
	default:
		return -1;
	}
}

static int show_chain;

static void print_cert(json_t *o)
{
	json_t *c;
	size_t i;

	fputs(json_string_value(json_object_get(o, "certificate")), stdout);
	if (show_chain)
		json_array_foreach(json_object_get(o, "chain"), i, c)
		    fputs(json_string_value(c), stdout);
	fprintf(stderr, "issued serial %s\n", json_string_value(json_object_get(o, "serial")));
}

static int do_issue(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca issue --profile P --csr FILE [--days N] [--chain]\n"
	    "  Issue a certificate from a PKCS#10 request (PEM; FILE - is stdin). The certificate\n"
	    "  (PEM) goes to stdout, with the chain after it when --chain is given; its serial to\n"
	    "  stderr.";
	static const struct option own[] = {{"profile", required_argument, NULL, 'p'},
	                                    {"csr", required_argument, NULL, 'c'},
	                                    {"days", required_argument, NULL, 'd'},
	                                    {"chain", no_argument, NULL, 'C'},
	                                    {NULL, 0, NULL, 0}};
	struct issue_opts io = {0};
	struct api_client c;
	json_t *body;
	char *csr;
	int r = parse(argc, argv, own, 5, "h", issue_opt, &io, &c, usage);

	if (r)
		return parse_status(r);
	if (!io.profile || !io.csr || optind != argc) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	csr = read_file(io.csr, CSR_MAX);
	if (!csr)
		return 1;
	body = json_pack("{s:s, s:s}", "profile", io.profile, "csr", csr);
	if (io.days)
		json_object_set_new(body, "validity_days", json_integer(io.days));
	free(csr);
	show_chain = io.chain;
	return call(&c, "POST", "/certificates", body, print_cert);
}

/* --- show, revoke, hold, release --- */

static int serial_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 42)
		return 0;
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEFx:", *s))
			return 0;
	return 1;
}

/* A mistyped serial deserves its own answer, not the usage: 1 when s is a serial, else 0
 * after saying what serials look like. */
static int serial_checked(const char *cmd, const char *s)
{
	if (serial_ok(s))
		return 1;
	fprintf(stderr,
	        "hsmca %s: \"%s\" is not a serial: serials are hex, as `hsmca list` prints them "
	        "(at most 20 octets, colons allowed)\n",
	        cmd, s);
	return 0;
}

static int pem_only;

static void print_show(json_t *o)
{
	if (pem_only && json_is_string(json_object_get(o, "certificate")))
		fputs(json_string_value(json_object_get(o, "certificate")), stdout);
	else
		print_json(o);
}

static int show_opt(int o, const char *arg, void *ctx)
{
	(void)arg;
	(void)ctx;
	if (o != 'P')
		return -1;
	pem_only = 1;
	return 0;
}

static int do_show(int argc, char **argv)
{
	static const char usage[] = "usage: hsmca show SERIAL [--pem]\n"
	                            "  The certificate's record as JSON, or its PEM with --pem.";
	static const struct option own[] = {{"pem", no_argument, NULL, 'P'}, {NULL, 0, NULL, 0}};
	struct api_client c;
	char path[128];
	int r = parse(argc, argv, own, 2, "h", show_opt, NULL, &c, usage);

	if (r)
		return parse_status(r);
	if (optind != argc - 1) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	if (!serial_checked("show", argv[optind]))
		return 2;
	snprintf(path, sizeof(path), "/certificates/%s", argv[optind]);
	return call(&c, "GET", path, NULL, print_show);
}

struct revoke_opts {
	const char *reason, *invalidity;
};

static int revoke_opt(int o, const char *arg, void *ctx)
{
	struct revoke_opts *ro = ctx;

	if (o == 'r')
		ro->reason = arg;
	else if (o == 'i')
		ro->invalidity = arg;
	else
		return -1;
	return 0;
}

static void print_status(json_t *o)
{
	printf("%s %s\n", json_string_value(json_object_get(o, "serial")),
	       json_string_value(json_object_get(o, "status")));
}

static int do_change(int argc, char **argv, const char *what)
{
	static const char revoke_usage[] =
	    "usage: hsmca revoke SERIAL --reason R [--invalidity-date 2026-01-02T03:04:05Z]\n"
	    "  R: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,\n"
	    "  cessationOfOperation, privilegeWithdrawn, aACompromise. Durable once it returns.";
	static const char hold_usage[] = "usage: hsmca hold SERIAL\n"
	                                 "  Put a certificate on hold (certificateHold).";
	static const char release_usage[] = "usage: hsmca release SERIAL\n"
	                                    "  Release a certificate from hold.";
	static const struct option own[] = {{"reason", required_argument, NULL, 'r'},
	                                    {"invalidity-date", required_argument, NULL, 'i'},
	                                    {NULL, 0, NULL, 0}};
	int revoke = !strcmp(what, "revoke");
	const char *usage = revoke                  ? revoke_usage
	                    : !strcmp(what, "hold") ? hold_usage
	                                            : release_usage;
	struct revoke_opts ro = {0};
	struct api_client c;
	json_t *body = NULL;
	char path[128];
	int r =
	    parse(argc, argv, own, revoke ? 3 : 0, "h", revoke ? revoke_opt : NULL, &ro, &c, usage);

	if (r)
		return parse_status(r);
	if (optind != argc - 1 || (revoke && !ro.reason)) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	if (!serial_checked(what, argv[optind]))
		return 2;
	if (revoke) {
		body = json_pack("{s:s}", "reason", ro.reason);
		if (ro.invalidity)
			json_object_set_new(body, "invalidity_date", json_string(ro.invalidity));
	}
	snprintf(path, sizeof(path), "/certificates/%s/%s", argv[optind], what);
	return call(&c, "POST", path, body, print_status);
}

/* --- list --- */

struct list_opts {
	char query[2048];
};

static int list_opt(int o, const char *arg, void *ctx)
{
	static const struct {
		int opt;
		const char *name;
	} names[] = {{'s', "status"},        {'S', "subject"},        {'n', "san"},
	             {'a', "expires_after"}, {'b', "expires_before"}, {'l', "limit"},
	             {'A', "after"},         {'u', "authority"}};
	struct list_opts *lo = ctx;
	char *enc;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].opt != o)
			continue;
		enc = api_escape(arg);
		if (!enc)
			return -1;
		snprintf(lo->query + strlen(lo->query), sizeof(lo->query) - strlen(lo->query),
		         "%c%s=%s", lo->query[0] ? '&' : '?', names[i].name, enc);
		free(enc);
		return 0;
	}
	return -1;
}

static void print_list(json_t *o)
{
	json_t *c, *next = json_object_get(o, "next");
	size_t i;

	json_array_foreach(json_object_get(o, "certificates"), i, c)
	{
		printf("%s\t%s\t%s\t%s\t%s\n", json_string_value(json_object_get(c, "serial")),
		       json_string_value(json_object_get(c, "status")),
		       json_string_value(json_object_get(c, "profile")),
		       json_string_value(json_object_get(c, "not_after"))
		           ? json_string_value(json_object_get(c, "not_after"))
		           : "-",
		       json_string_value(json_object_get(c, "subject")));
	}
	if (json_is_integer(next))
		fprintf(stderr, "more: --after %lld\n", (long long)json_integer_value(next));
}

static int do_list(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca list [--status S] [--subject TEXT] [--san TEXT] [--profile P]\n"
	    "                  [--authority NAME]\n"
	    "                  [--expires-after T] [--expires-before T] [--limit N] [--after N]\n"
	    "  One certificate per line: serial, status, profile, notAfter, subject "
	    "(tab-separated).\n"
	    "  S: reserved, issued, failed, revoked, hold. T: 2026-01-02T03:04:05Z. When there "
	    "are\n"
	    "  more, stderr says which --after gives the next page.";
	static const struct option own[] = {{"status", required_argument, NULL, 's'},
	                                    {"subject", required_argument, NULL, 'S'},
	                                    {"san", required_argument, NULL, 'n'},
	                                    {"expires-after", required_argument, NULL, 'a'},
	                                    {"expires-before", required_argument, NULL, 'b'},
	                                    {"limit", required_argument, NULL, 'l'},
	                                    {"after", required_argument, NULL, 'A'},
	                                    {"authority", required_argument, NULL, 'u'},
	                                    {"profile", required_argument, NULL, 'P'},
	                                    {NULL, 0, NULL, 0}};
	struct list_opts lo = {{0}};
	struct api_client c;
	char path[2200];
	int r = parse(argc, argv, own, 10, "h", list_opt, &lo, &c, usage);

	if (r)
		return parse_status(r);
	if (optind != argc) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	snprintf(path, sizeof(path), "/certificates%s", lo.query);
	return call(&c, "GET", path, NULL, print_list);
}

/* --- principal, token, profiles --- */

struct principal_opts {
	const char *role, *cert, *profiles, *name;
	long days;
};

static int principal_opt(int o, const char *arg, void *ctx)
{
	struct principal_opts *po = ctx;
	char *end;

	switch (o) {
	case 'r':
		po->role = arg;
		return 0;
	case 'c':
		po->cert = arg;
		return 0;
	case 'p':
		po->profiles = arg;
		return 0;
	case 'n':
		po->name = arg;
		return 0;
	case 'd':
		po->days = strtol(arg, &end, 10);
		return *end || po->days < 1 ? -1 : 0;
	default:
		return -1;
	}
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 128 && !strpbrk(s, "/?#%");
}

static int do_principal(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca principal add NAME --role ROLE [--cert-file FILE] [--profiles P1,P2]\n"
	    "       hsmca principal list | show NAME | disable NAME | enable NAME\n"
	    "  ROLE: ca-admin, admin, officer, auditor, operator, ra. --cert-file: the "
	    "principal's\n"
	    "  client certificate (PEM); --profiles: what an ra principal may issue and revoke.";
	static const struct option own[] = {{"role", required_argument, NULL, 'r'},
	                                    {"cert-file", required_argument, NULL, 'c'},
	                                    {"profiles", required_argument, NULL, 'p'},
	                                    {NULL, 0, NULL, 0}};
	struct principal_opts po = {0};
	struct api_client c;
	const char *sub;
	char path[300];
	json_t *body;
	int r;

	r = parse(argc, argv, own, 4, "h", principal_opt, &po, &c, usage);
	if (r)
		return parse_status(r);
	if (optind >= argc) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	sub = argv[optind];
	if (!strcmp(sub, "list") && optind == argc - 1)
		return call(&c, "GET", "/principals", NULL, NULL);
	if (optind != argc - 2 || !name_ok(argv[optind + 1])) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	if (!strcmp(sub, "add")) {
		json_t *profiles = json_array();
		if (!po.role) {
			json_decref(profiles);
			fprintf(stderr, "%s\n", usage);
			return 2;
		}
		body = json_pack("{s:s, s:s}", "name", argv[optind + 1], "role", po.role);
		if (po.cert) {
			char *pem = read_file(po.cert, CSR_MAX);
			if (!pem) {
				json_decref(profiles);
				json_decref(body);
				return 1;
			}
			json_object_set_new(body, "certificate", json_string(pem));
			free(pem);
		}
		if (po.profiles) {
			char *copy = strdup(po.profiles), *save = NULL;
			for (char *p = strtok_r(copy, ",", &save); p;
			     p = strtok_r(NULL, ",", &save))
				json_array_append_new(profiles, json_string(p));
			free(copy);
		}
		json_object_set_new(body, "profiles", profiles);
		return call(&c, "POST", "/principals", body, NULL);
	}
	snprintf(path, sizeof(path), "/principals/%s", argv[optind + 1]);
	if (!strcmp(sub, "show"))
		return call(&c, "GET", path, NULL, NULL);
	if (!strcmp(sub, "disable") || !strcmp(sub, "enable")) {
		snprintf(path, sizeof(path), "/principals/%s/%s", argv[optind + 1], sub);
		return call(&c, "POST", path, NULL, NULL);
	}
	fprintf(stderr, "%s\n", usage);
	return 2;
}

static void print_token(json_t *o)
{
	/* Shown once: the server keeps only its hash. */
	printf("%s\n", json_string_value(json_object_get(o, "token")));
	fprintf(stderr, "token %lld for %s expires %s; it is not shown again\n",
	        (long long)json_integer_value(json_object_get(o, "id")),
	        json_string_value(json_object_get(o, "principal")),
	        json_string_value(json_object_get(o, "expires_at")));
}

static int do_token(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca token create PRINCIPAL --name NAME [--days N]\n"
	    "       hsmca token list PRINCIPAL | revoke ID\n"
	    "  create prints the token on stdout, once; pass it to clients as HSMCA_API_TOKEN.";
	static const struct option own[] = {{"name", required_argument, NULL, 'n'},
	                                    {"days", required_argument, NULL, 'd'},
	                                    {NULL, 0, NULL, 0}};
	struct principal_opts po = {0};
	struct api_client c;
	char path[300];
	const char *sub;
	int r = parse(argc, argv, own, 3, "h", principal_opt, &po, &c, usage);

	if (r)
		return parse_status(r);
	if (optind != argc - 2 || !name_ok(argv[optind + 1])) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	sub = argv[optind];
	if (!strcmp(sub, "create") && po.name) {
		json_t *body = json_pack("{s:s}", "name", po.name);
		if (po.days)
			json_object_set_new(body, "expires_days", json_integer(po.days));
		snprintf(path, sizeof(path), "/principals/%s/tokens", argv[optind + 1]);
		return call(&c, "POST", path, body, print_token);
	}
	if (!strcmp(sub, "list")) {
		snprintf(path, sizeof(path), "/principals/%s/tokens", argv[optind + 1]);
		return call(&c, "GET", path, NULL, NULL);
	}
	if (!strcmp(sub, "revoke")) {
		snprintf(path, sizeof(path), "/tokens/%s/revoke", argv[optind + 1]);
		return call(&c, "POST", path, NULL, NULL);
	}
	fprintf(stderr, "%s\n", usage);
	return 2;
}

static int do_profiles(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca profiles [list]\n"
	    "       hsmca profiles disable NAME | enable NAME\n"
	    "  list: the certificate profiles hsmca-cad offers, as JSON (\"enabled\" says whether\n"
	    "  each issues now). disable, enable (role admin): switch a profile off or on at run\n"
	    "  time; a disabled profile issues nothing, its certificates stay valid.";
	struct api_client c;
	char path[300];
	int r = parse(argc, argv, NULL, 0, "h", NULL, NULL, &c, usage);

	if (r)
		return parse_status(r);
	if (optind == argc || (optind == argc - 1 && !strcmp(argv[optind], "list")))
		return call(&c, "GET", "/profiles", NULL, NULL);
	if (optind == argc - 2 && name_ok(argv[optind + 1]) &&
	    (!strcmp(argv[optind], "disable") || !strcmp(argv[optind], "enable"))) {
		snprintf(path, sizeof(path), "/profiles/%s/%s", argv[optind + 1], argv[optind]);
		return call(&c, "POST", path, NULL, NULL);
	}
	fprintf(stderr, "%s\n", usage);
	return 2;
}

/* A profile from a file ("-": stdin) as JSON or YAML, with the configuration file's field
 * names; NULL after saying why. */
static json_t *read_profile(const char *path)
{
	char *text = read_file(path, 64 * 1024), *json = NULL;
	json_error_t jerr;
	struct yconf y = {0};
	json_t *o = NULL;

	if (!text)
		return NULL;
	if ((o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)))
		goto out;
	/* Not JSON: YAML, as in hsmca-cad's configuration (one profile, a mapping). */
	if (!(json = malloc(64 * 1024)) || yconf_load_mem(&y, path, text, strlen(text)) != 0 ||
	    !yconf_is_map(yconf_root(&y)) ||
	    yconf_to_json(&y, yconf_root(&y), json, 64 * 1024) < 0 ||
	    !(o = json_loads(json, JSON_REJECT_DUPLICATES, &jerr))) {
		fprintf(stderr, "hsmca: %s: %s\n", path,
		        y.err[0] ? y.err : "not a profile (a JSON object or a YAML mapping)");
		o = NULL;
	}
	yconf_free(&y);
out:
	if (o && !json_is_object(o)) {
		fprintf(stderr, "hsmca: %s: a profile is a JSON object or a YAML mapping\n", path);
		json_decref(o);
		o = NULL;
	}
	free(json);
	free(text);
	return o;
}

static int version_opt(int opt, const char *arg, void *ctx)
{
	long *v = ctx;
	char *end;

	if (opt != 'V')
		return -1;
	*v = strtol(arg, &end, 10);
	return *end || *v < 1 || *v > 2147483647L ? -1 : 0;
}

static int do_profile(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca profile list\n"
	    "       hsmca profile show NAME [--version N]\n"
	    "       hsmca profile create FILE\n"
	    "       hsmca profile edit NAME FILE\n"
	    "       hsmca profile clone NAME NEW-NAME [--version N]\n"
	    "       hsmca profile disable NAME | enable NAME\n"
	    "  Certificate profiles, stored and versioned by hsmca-cad (docs/profiles.md). FILE\n"
	    "  (\"-\": stdin) holds one profile as JSON or YAML with the configuration file's\n"
	    "  field names; edit makes a new version (the name comes from NAME), clone copies a\n"
	    "  version (default the current one) under a new name. Changes need role admin.";
	static const struct option own[] = {{"version", required_argument, NULL, 'V'}};
	struct api_client c;
	char path[300];
	const char *sub;
	long version = 0;
	int n, r = parse(argc, argv, own, 1, "h", version_opt, &version, &c, usage);
	json_t *body;

	if (r)
		return parse_status(r);
	n = argc - optind;
	sub = n ? argv[optind] : "list";
	if (n <= 1 && !strcmp(sub, "list") && !version)
		return call(&c, "GET", "/profiles", NULL, NULL);
	if (n == 2 && !strcmp(sub, "show") && name_ok(argv[optind + 1])) {
		if (version)
			snprintf(path, sizeof(path), "/profiles/%s?version=%ld", argv[optind + 1],
			         version);
		else
			snprintf(path, sizeof(path), "/profiles/%s", argv[optind + 1]);
		return call(&c, "GET", path, NULL, NULL);
	}
	if (n == 2 && !strcmp(sub, "create") && !version) {
		if (!(body = read_profile(argv[optind + 1])))
			return 1;
		return call(&c, "POST", "/profiles", body, NULL);
	}
	if (n == 3 && !strcmp(sub, "edit") && name_ok(argv[optind + 1]) && !version) {
		if (!(body = read_profile(argv[optind + 2])))
			return 1;
		snprintf(path, sizeof(path), "/profiles/%s", argv[optind + 1]);
		return call(&c, "PUT", path, body, NULL);
	}
	if (n == 3 && !strcmp(sub, "clone") && name_ok(argv[optind + 1])) {
		body = json_pack("{s:s}", "name", argv[optind + 2]);
		if (version)
			json_object_set_new(body, "version", json_integer(version));
		snprintf(path, sizeof(path), "/profiles/%s/clone", argv[optind + 1]);
		return call(&c, "POST", path, body, NULL);
	}
	if (n == 2 && name_ok(argv[optind + 1]) && !version &&
	    (!strcmp(sub, "disable") || !strcmp(sub, "enable"))) {
		snprintf(path, sizeof(path), "/profiles/%s/%s", argv[optind + 1], sub);
		return call(&c, "POST", path, NULL, NULL);
	}
	fprintf(stderr, "%s\n", usage);
	return 2;
}

/* --- authority --- */

/* The settings options, in the order of the API's fields; -1: not given. */
static const char *const setting_fields[] = {"crl_next_update_seconds", "delta_crl_seconds",
                                             "ocsp_validity_seconds", "ocsp_nonce_rate_limit"};

struct authority_opts {
	long setting[4];
	const char *signer, *reason, *ca_issuers;
	const char *ocsp[4]; /* one more than the API takes, for the API to refuse */
	size_t n_ocsp;
	int ocsp_given;
	int full_crl_idp; /* -1: not given */
};

static int authority_opt(int o, const char *arg, void *ctx)
{
	struct authority_opts *ao = ctx;
	char *end;

	switch (o) {
	case '0':
	case '1':
	case '2':
	case '3':
		ao->setting[o - '0'] = strtol(arg, &end, 10);
		return *end || !*arg || ao->setting[o - '0'] < 0 ? -1 : 0;
	case 'k':
		ao->signer = arg;
		return 0;
	case 'r':
		ao->reason = arg;
		return 0;
	case 'o': /* "" alone: no OCSP URL */
		ao->ocsp_given = 1;
		if (!*arg)
			return 0;
		if (ao->n_ocsp == sizeof(ao->ocsp) / sizeof(ao->ocsp[0]))
			return -1;
		ao->ocsp[ao->n_ocsp++] = arg;
		return 0;
	case 'i':
		ao->ca_issuers = arg;
		return 0;
	case 'D':
		ao->full_crl_idp = !strcmp(arg, "true") ? 1 : !strcmp(arg, "false") ? 0 : -2;
		return ao->full_crl_idp < 0 ? -1 : 0;
	default:
		return -1;
	}
}

static int do_authority(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca authority list\n"
	    "       hsmca authority retire NAME [--reason TEXT]\n"
	    "       hsmca authority settings NAME [--crl-next-update SECONDS] [--delta-crl "
	    "SECONDS]\n"
	    "                                     [--ocsp-validity SECONDS] [--ocsp-nonce-rate N]\n"
	    "                                     [--ocsp-signer-key LABEL]\n"
	    "                                     [--ocsp-url URL]... [--ca-issuers-url URL]\n"
	    "                                     [--full-crl-idp true|false]\n"
	    "  list: the CAs registered, active or retired. retire (role ca-admin): the CA issues\n"
	    "  nothing more, for good; its certificates can still be revoked. settings: show the\n"
	    "  CA's CRL and OCSP settings, or with options (role officer) change those given:\n"
	    "  --crl-next-update 300..7776000, --delta-crl 0 (none) or 60..less than the CRL's,\n"
	    "  --ocsp-validity 60..604800, --ocsp-nonce-rate 0 (no limit)..100000 per second,\n"
	    "  --ocsp-signer-key a keyd key label for delegated OCSP signing (\"\": the CA's "
	    "key),\n"
	    "  --ocsp-url (up to 3; \"\" alone: none) and --ca-issuers-url (\"\": none): the http\n"
	    "  URLs written into the Authority Information Access of the certificates it issues;\n"
	    "  --full-crl-idp: whether its full CRL carries an Issuing Distribution Point\n"
	    "  (hsmca-crld reads it before each CRL; false is what every client accepts).";
	static const struct option own[] = {{"crl-next-update", required_argument, NULL, '0'},
	                                    {"delta-crl", required_argument, NULL, '1'},
	                                    {"ocsp-validity", required_argument, NULL, '2'},
	                                    {"ocsp-nonce-rate", required_argument, NULL, '3'},
	                                    {"ocsp-signer-key", required_argument, NULL, 'k'},
	                                    {"reason", required_argument, NULL, 'r'},
	                                    {"ocsp-url", required_argument, NULL, 'o'},
	                                    {"ca-issuers-url", required_argument, NULL, 'i'},
	                                    {"full-crl-idp", required_argument, NULL, 'D'},
	                                    {NULL, 0, NULL, 0}};
	struct authority_opts ao = {{-1, -1, -1, -1}, NULL, NULL, NULL, {NULL}, 0, 0, -1};
	struct api_client c;
	const char *sub;
	char path[300];
	json_t *body;
	int r = parse(argc, argv, own, 10, "h", authority_opt, &ao, &c, usage), changes = 0;

	if (r)
		return parse_status(r);
	if (optind >= argc) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	sub = argv[optind];
	for (int i = 0; i < 4; i++)
		changes |= ao.setting[i] >= 0;
	changes |=
	    ao.signer != NULL || ao.ocsp_given || ao.ca_issuers != NULL || ao.full_crl_idp >= 0;
	if (!strcmp(sub, "list") && optind == argc - 1 && !changes && !ao.reason)
		return call(&c, "GET", "/authorities", NULL, NULL);
	if (optind != argc - 2 || !name_ok(argv[optind + 1])) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	if (!strcmp(sub, "retire") && !changes) {
		body = ao.reason ? json_pack("{s:s}", "reason", ao.reason) : NULL;
		snprintf(path, sizeof(path), "/authorities/%s/retire", argv[optind + 1]);
		return call(&c, "POST", path, body, NULL);
	}
	if (!strcmp(sub, "settings") && !ao.reason) {
		snprintf(path, sizeof(path), "/authorities/%s/settings", argv[optind + 1]);
		if (!changes)
			return call(&c, "GET", path, NULL, NULL);
		body = json_object();
		for (int i = 0; i < 4; i++)
			if (ao.setting[i] >= 0)
				json_object_set_new(body, setting_fields[i],
				                    json_integer(ao.setting[i]));
		if (ao.signer)
			json_object_set_new(body, "ocsp_signer_key_label", json_string(ao.signer));
		if (ao.ocsp_given) {
			json_t *urls = json_array();
			for (size_t i = 0; i < ao.n_ocsp; i++)
				json_array_append_new(urls, json_string(ao.ocsp[i]));
			json_object_set_new(body, "ocsp_urls", urls);
		}
		if (ao.ca_issuers)
			json_object_set_new(body, "ca_issuers_url", json_string(ao.ca_issuers));
		if (ao.full_crl_idp >= 0)
			json_object_set_new(body, "full_crl_idp", json_boolean(ao.full_crl_idp));
		return call(&c, "PUT", path, body, NULL);
	}
	fprintf(stderr, "%s\n", usage);
	return 2;
}

/* --- audit --- */

static int verify_failed;

static void print_verify(json_t *o)
{
	const char *finding = json_string_value(json_object_get(o, "finding"));

	if (finding && !strcmp(finding, "intact")) {
		printf("audit log intact: %lld entries, %lld checkpoints, head %lld %s\n",
		       (long long)json_integer_value(json_object_get(o, "entries")),
		       (long long)json_integer_value(json_object_get(o, "checkpoints")),
		       (long long)json_integer_value(json_object_get(o, "head_seq")),
		       json_string_value(json_object_get(o, "head_hash")));
		return;
	}
	verify_failed = 1;
	printf("audit log %s at entry %lld: %s\n", finding ? finding : "unreadable",
	       (long long)json_integer_value(json_object_get(o, "seq")),
	       json_string_value(json_object_get(o, "detail")));
}

static int do_audit(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca audit verify | export\n"
	    "  verify: walk the hash chain; exit 1 and name the first modified, deleted or\n"
	    "  inserted entry. export: every entry, one JSON object per line, on stdout.";
	struct api_client c;
	char path[128];
	long long after = 0;
	int r = parse(argc, argv, NULL, 0, "h", NULL, NULL, &c, usage);

	if (r)
		return parse_status(r);
	if (optind != argc - 1) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	if (!strcmp(argv[optind], "verify")) {
		verify_failed = 0;
		r = call(&c, "GET", "/audit/verify", NULL, print_verify);
		return r ? r : verify_failed;
	}
	if (strcmp(argv[optind], "export")) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	for (;;) {
		json_t *out = NULL, *e, *next;
		size_t i;
		long st;

		snprintf(path, sizeof(path), "/audit?after=%lld&limit=1000", after);
		st = api_call(&c, "GET", path, NULL, &out);
		if (st != 200) {
			json_decref(out);
			return 1;
		}
		json_array_foreach(json_object_get(out, "entries"), i, e)
		{
			char *line = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (line)
				printf("%s\n", line);
			free(line);
		}
		next = json_object_get(out, "next");
		after = json_is_integer(next) ? json_integer_value(next) : -1;
		json_decref(out);
		if (after < 0)
			return 0;
	}
}

int cmd_api(int argc, char **argv)
{
	if (!strcmp(argv[0], "issue"))
		return do_issue(argc, argv);
	if (!strcmp(argv[0], "show"))
		return do_show(argc, argv);
	if (!strcmp(argv[0], "list"))
		return do_list(argc, argv);
	if (!strcmp(argv[0], "revoke") || !strcmp(argv[0], "hold") || !strcmp(argv[0], "release"))
		return do_change(argc, argv, argv[0]);
	if (!strcmp(argv[0], "principal"))
		return do_principal(argc, argv);
	if (!strcmp(argv[0], "token"))
		return do_token(argc, argv);
	if (!strcmp(argv[0], "profiles"))
		return do_profiles(argc, argv);
	if (!strcmp(argv[0], "profile"))
		return do_profile(argc, argv);
	if (!strcmp(argv[0], "audit"))
		return do_audit(argc, argv);
	if (!strcmp(argv[0], "authority"))
		return do_authority(argc, argv);
	fprintf(stderr, "hsmca: unknown command %s\n", argv[0]);
	return 2;
}
