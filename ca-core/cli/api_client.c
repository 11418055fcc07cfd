/* HTTPS requests to hsmca-cad with libcurl. The token never reaches argv or a log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "api_client.h"

void api_client_init(struct api_client *c)
{
	const char *t = getenv("HSMCA_API_TOKEN");

	memset(c, 0, sizeof(*c));
	c->url = getenv("HSMCA_API_URL");
	c->ca_bundle = getenv("HSMCA_CA_BUNDLE");
	c->cert = getenv("HSMCA_CLIENT_CERT");
	c->key = getenv("HSMCA_CLIENT_KEY");
	if (t)
		snprintf(c->token, sizeof(c->token), "%s", t);
}

static int read_token(struct api_client *c, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "hsmca: cannot read the token file %s\n", path);
		return -1;
	}
	n = fread(c->token, 1, sizeof(c->token) - 1, f);
	fclose(f);
	c->token[n] = '\0';
	c->token[strcspn(c->token, "\r\n")] = '\0';
	if (!c->token[0]) {
		fprintf(stderr, "hsmca: the token file %s is empty\n", path);
		return -1;
	}
	return 0;
}

int api_client_option(struct api_client *c, int opt, const char *arg)
{
	switch (opt) {
	case 1001:
		c->url = arg;
		return 1;
	case 1002:
		c->ca_bundle = arg;
		return 1;
	case 1003:
		c->cert = arg;
		return 1;
	case 1004:
		c->key = arg;
		return 1;
	case 1005:
		return read_token(c, arg) ? -1 : 1;
	default:
		return 0;
	}
}

struct buf {
	char *data;
	size_t len;
};

#define REPLY_MAX (64u << 20)

static size_t collect(char *p, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;
	char *d;

	if (b->len + sz * n > REPLY_MAX)
		return 0;
	d = realloc(b->data, b->len + sz * n + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, sz * n);
	b->len += sz * n;
	d[b->len] = '\0';
	b->data = d;
	return sz * n;
}

/* One request; totp (NULL: none) goes in X-HSMCA-TOTP. The status, or -1 after printing why
 * there was no answer; *out the JSON reply. Errors are printed by the caller. */
static long call_once(const struct api_client *c, const char *method, const char *path,
                      json_t *body, const char *totp, json_t **out)
{
	char url[2048], auth[600], th[128], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	struct buf b = {0};
	char *text = NULL;
	long status = -1;
	json_t *reply = NULL;
	CURL *curl;
	CURLcode rc;

	*out = NULL;
	curl = curl_easy_init();
	if (!curl) {
		fprintf(stderr, "hsmca: libcurl failed to start\n");
		return -1;
	}
	snprintf(url, sizeof(url), "%s/api/v1%s", c->url, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->ca_bundle)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_bundle);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (c->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		hdr = curl_slist_append(hdr, auth);
		OPENSSL_cleanse(auth, sizeof(auth));
	} else {
		curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
	}
	if (totp) {
		snprintf(th, sizeof(th), "X-HSMCA-TOTP: %s", totp);
		hdr = curl_slist_append(hdr, th);
		OPENSSL_cleanse(th, sizeof(th));
	}
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text ? text : "");
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		fprintf(stderr, "hsmca: %s: %s\n", url,
		        errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	reply = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	if (!reply) {
		fprintf(stderr, "hsmca: %s: HTTP %ld with a reply that is not JSON\n", url, status);
		status = -1;
		goto out;
	}
	*out = reply;
	reply = NULL;
out:
	json_decref(reply);
	free(text);
	free(b.data);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	return status;
}

static const char *field(json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

int api_totp_code(const char *why, char *out, size_t n)
{
	const char *env = getenv("HSMCA_TOTP");
	struct termios old, quiet;
	int echo_off;

	if (env && *env) {
		if (strlen(env) >= n)
			return -1;
		snprintf(out, n, "%s", env);
		return 0;
	}
	if (!isatty(STDIN_FILENO))
		return -1;
	fprintf(stderr, "%s\nTOTP code (or a recovery code): ", why);
	fflush(stderr);
	echo_off = tcgetattr(STDIN_FILENO, &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	if (!fgets(out, (int)n, stdin))
		out[0] = '\0';
	if (echo_off)
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
	fprintf(stderr, "\n");
	out[strcspn(out, "\r\n")] = '\0';
	return out[0] ? 0 : -1;
}

long api_call(const struct api_client *c, const char *method, const char *path, json_t *body,
              json_t **out)
{
	char code[80];
	long status;

	*out = NULL;
	if (!c->url || !*c->url) {
		fprintf(stderr, "hsmca: no API URL: set HSMCA_API_URL or give --url\n");
		return -1;
	}
	if (!c->token[0] && !(c->cert && c->key)) {
		fprintf(stderr, "hsmca: no credentials: set HSMCA_CLIENT_CERT and HSMCA_CLIENT_KEY "
		                "(or --cert/--key), or HSMCA_API_TOKEN (or --token-file)\n");
		return -1;
	}
	status = call_once(c, method, path, body, NULL, out);
	/* Step-up (docs/mfa.md): the server asks for a fresh TOTP code; give one, once. */
	if (status == 401 && !strcmp(field(*out, "error", ""), "step-up")) {
		if (api_totp_code(field(*out, "detail", "a TOTP code is needed"), code,
		                  sizeof(code)) == 0) {
			json_decref(*out);
			status = call_once(c, method, path, body, code, out);
			OPENSSL_cleanse(code, sizeof(code));
		} else {
			fprintf(stderr,
			        "hsmca: a TOTP code is needed: set HSMCA_TOTP or run from a "
			        "terminal to be asked\n");
		}
	}
	if (status >= 400 && *out)
		fprintf(stderr, "hsmca: %s (%s, HTTP %ld)\n", field(*out, "detail", "no detail"),
		        field(*out, "error", "error"), status);
	return status;
}

char *api_escape(const char *arg)
{
	char *e = curl_easy_escape(NULL, arg, 0);
	char *out = e ? strdup(e) : NULL;

	curl_free(e);
	return out;
}
