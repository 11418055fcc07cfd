/* hsmca mfa: the caller's own TOTP enrolment in hsmca-cad (docs/mfa.md): enrol (the secret, its
 * otpauth URI and a QR code, once), confirm with a first code (the recovery codes, once),
 * status, disable with a code; and a ca-admin's reset of another principal's. Exit 0 on
 * success, 1 with a message otherwise, 2 for a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <qrencode.h>

#include "api_client.h"
#include "cli.h"

/* The QR code of text on the terminal, two module rows per line with half blocks, light
 * modules drawn (white on black, so that it reads on light and dark terminals alike). */
static int print_qr(const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	int w, tty = isatty(STDOUT_FILENO);

	if (!q)
		return -1;
	w = q->width; /* drawn with a quiet zone of two modules each side */
	for (int y = -2; y < w + 2; y += 2) {
		if (tty)
			fputs("\033[37;40m", stdout);
		for (int x = -2; x < w + 2; x++) {
			int top = y >= 0 && y < w && x >= 0 && x < w && (q->data[y * w + x] & 1);
			int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			          (q->data[(y + 1) * w + x] & 1);
			fputs(top && bot ? " "
			      : top      ? "\u2584"
			      : bot      ? "\u2580"
			                 : "\u2588",
			      stdout);
		}
		if (tty)
			fputs("\033[0m", stdout);
		fputc('\n', stdout);
	}
	QRcode_free(q);
	return 0;
}

static int enrol(struct api_client *c, const char *svg_path)
{
	json_t *out = NULL;
	long st = api_call(c, "POST", "/mfa/totp", NULL, &out);
	const char *secret, *uri, *svg;
	int rc = 1;

	if (st != 201)
		goto out;
	secret = json_string_value(json_object_get(out, "secret"));
	uri = json_string_value(json_object_get(out, "otpauth_uri"));
	svg = json_string_value(json_object_get(out, "qr_svg"));
	if (!secret || !uri || !svg) {
		fprintf(stderr, "hsmca: the enrolment reply lacks the secret or its URI\n");
		goto out;
	}
	if (svg_path) {
		FILE *f = fopen(svg_path, "wx");
		if (!f || fputs(svg, f) == EOF || fclose(f) != 0) {
			fprintf(stderr, "hsmca: cannot write %s (it must not exist yet)\n",
			        svg_path);
			goto out;
		}
		fprintf(stderr, "the QR code is in %s\n", svg_path);
	} else if (print_qr(uri) != 0) {
		fprintf(stderr, "hsmca: could not draw the QR code; use the URI or the secret\n");
	}
	printf("secret: %s\nuri: %s\n", secret, uri);
	fprintf(stderr,
	        "scan the QR code (or type the secret) into an authenticator app (TOTP, SHA-1, 6 "
	        "digits, 30 s); the secret is not shown again. Then: hsmca mfa confirm CODE\n");
	rc = 0;
out:
	json_decref(out);
	return rc;
}

static int with_code(struct api_client *c, const char *path, const char *code, const char *why)
{
	char buf[80];
	json_t *body, *out = NULL;
	long st;

	if (!code) {
		if (api_totp_code(why, buf, sizeof(buf)) != 0) {
			fprintf(stderr,
			        "hsmca: a code is needed: give it, set HSMCA_TOTP, or run from "
			        "a terminal to be asked\n");
			return 1;
		}
		code = buf;
	}
	body = json_pack("{s:s}", "code", code);
	st = api_call(c, "POST", path, body, &out);
	json_decref(body);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (st == 200 && json_is_array(json_object_get(out, "recovery_codes"))) {
		size_t i;
		json_t *v;
		printf(
		    "TOTP is active for %s.\nrecovery codes (each works once, instead of a code; "
		    "keep them offline, they are not shown again):\n",
		    json_string_value(json_object_get(out, "principal")));
		json_array_foreach(json_object_get(out, "recovery_codes"), i, v)
		    printf("  %s\n", json_string_value(v));
	} else if (st == 200) {
		printf("TOTP is %s for %s\n", json_string_value(json_object_get(out, "state")),
		       json_string_value(json_object_get(out, "principal")));
	}
	json_decref(out);
	return st == 200 ? 0 : 1;
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

int cmd_mfa(int argc, char **argv)
{
	static const char usage[] =
	    "usage: hsmca mfa enrol [--svg FILE] | confirm CODE | status\n"
	    "       hsmca mfa disable [--code CODE] | reset PRINCIPAL\n"
	    "  Your own TOTP second factor (RFC 6238) in hsmca-cad; docs/mfa.md.\n"
	    "  enrol: a new secret, shown once: its otpauth:// URI and a QR code on the terminal\n"
	    "    (or, with --svg, written to FILE) for an authenticator app.\n"
	    "  confirm: the app's first code activates it and prints ten recovery codes, once.\n"
	    "  status: your enrolment and which actions your role must confirm with a code.\n"
	    "  disable: give it up, with a code or a recovery code (asked when not given).\n"
	    "  reset (role ca-admin): disable another principal's enrolment (audited).\n"
	    "  Any hsmca command the server answers \"step-up\" asks for a code on the terminal,\n"
	    "  or takes it from $HSMCA_TOTP, and repeats the request once.\n";
	static const struct option opts[] = {API_CLIENT_OPTIONS,
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"svg", required_argument, NULL, 's'},
	                                     {"code", required_argument, NULL, 'c'},
	                                     {NULL, 0, NULL, 0}};
	const char *svg = NULL, *code = NULL, *sub;
	struct api_client c;
	int o, r;

	api_client_init(&c);
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		r = api_client_option(&c, o, optarg);
		if (r < 0)
			return 1;
		if (r)
			continue;
		switch (o) {
		case 'h':
			printf("%s" API_CLIENT_HELP, usage);
			return 0;
		case 's':
			svg = optarg;
			break;
		case 'c':
			code = optarg;
			break;
		default:
			fprintf(stderr, "%s", usage);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s", usage);
		return 2;
	}
	sub = argv[optind++];
	if (!strcmp(sub, "enrol") && optind == argc && !code)
		return enrol(&c, svg);
	if (!strcmp(sub, "confirm") && optind + 1 == argc && !svg && !code)
		return with_code(&c, "/mfa/totp/confirm", argv[optind], NULL);
	if (!strcmp(sub, "status") && optind == argc && !svg && !code)
		return print_call(&c, "GET", "/mfa");
	if (!strcmp(sub, "disable") && optind == argc && !svg)
		return with_code(&c, "/mfa/totp/disable", code,
		                 "disabling TOTP needs a code from your authenticator");
	if (!strcmp(sub, "reset") && optind + 1 == argc && !svg && !code) {
		char path[400];
		char *e = api_escape(argv[optind]);
		if (!e)
			return 1;
		snprintf(path, sizeof(path), "/principals/%s/mfa/reset", e);
		free(e);
		return print_call(&c, "POST", path);
	}
	fprintf(stderr, "%s", usage);
	return 2;
}
