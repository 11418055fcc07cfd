/* HTTPS requests to hsmca-cad with libcurl. The token never reaches argv or a log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

long api_call(const struct api_client *c, const char *method, const char *path, json_t *body,
              json_t **out)
{
	char url[2048], auth[600], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	struct buf b = {0};
	char *text = NULL;
	long status = -1;
	json_t *reply = NULL;
	CURL *curl;
	CURLcode rc;

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
	if (status >= 400)
		fprintf(stderr, "hsmca: %s (%s, HTTP %ld)\n",
		        json_string_value(json_object_get(reply, "detail"))
		            ? json_string_value(json_object_get(reply, "detail"))
		            : "no detail",
		        json_string_value(json_object_get(reply, "error"))
		            ? json_string_value(json_object_get(reply, "error"))
		            : "error",
		        status);
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

char *api_escape(const char *arg)
{
	char *e = curl_easy_escape(NULL, arg, 0);
	char *out = e ? strdup(e) : NULL;

	curl_free(e);
	return out;
}
