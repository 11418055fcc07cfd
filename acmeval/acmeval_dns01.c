/* dns-01 (RFC 8555 §8.4): the TXT records at _acme-challenge.<name>, asked of the configured
 * resolver (or the system's) through c-ares, must include base64url(SHA-256(key
 * authorization)). No connection is made to the name's own addresses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "acmeval_dns.h"
#include "acmevald.h"

#define TXT_RECORDS_MAX 32 /* records looked at; Boulder's limit is of the same order */

struct txt_state {
	int done, status;
	const char *want;
	int found, records;
	char first[64]; /* the first record that did not match, shortened, for the detail */
};

static void txt_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct txt_state *st = arg;
	struct ares_txt_ext *txt = NULL;
	char rec[512];
	size_t len = 0;
	int overflow = 0;

	(void)timeouts;
	st->done = 1;
	st->status = status;
	if (status != ARES_SUCCESS)
		return;
	st->status = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (st->status != ARES_SUCCESS)
		return;
	/* A record may be split in several strings (record_start marks the first of each): they
	 * are joined, as RFC 7208 and Boulder do. */
	for (struct ares_txt_ext *t = txt;; t = t->next) {
		if (!t || t->record_start) {
			if (t != txt) {
				rec[len] = 0;
				st->records++;
				if (!overflow && strcmp(rec, st->want) == 0)
					st->found = 1;
				else if (!st->first[0])
					snprintf(st->first, sizeof(st->first), "%.60s", rec);
			}
			if (!t || st->records >= TXT_RECORDS_MAX)
				break;
			len = 0;
			overflow = 0;
		}
		if (len + t->length >= sizeof(rec))
			overflow = 1;
		else {
			memcpy(rec + len, t->txt, t->length);
			len += t->length;
		}
	}
	ares_free_data(txt);
}

/* Printable ASCII only in a detail the ACME client reads. */
static void printable(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

void acmeval_dns01(const struct acmeval_config *cfg, const struct acmeval_req *req,
                   struct acmeval_result *res)
{
	struct txt_state st = {0};
	char want[44], name[ACMEVAL_IDENT_MAX + 20], err[128];
	ares_channel ch;

	memset(res, 0, sizeof(*res));
	acmeval_keyauth_digest_b64(req->key_authorization, want);
	st.want = want;
	snprintf(name, sizeof(name), "_acme-challenge.%s", req->identifier);
	if (acmeval_dns_channel(cfg, cfg->total_timeout_ms, &ch, err, sizeof(err))) {
		acmeval_fail(res, "serverInternal", "resolver: %s", err);
		return;
	}
	ares_query(ch, name, 1 /* C_IN */, 16 /* T_TXT */, txt_cb, &st);
	acmeval_dns_wait(ch, cfg->total_timeout_ms);
	ares_destroy(ch);
	if (!st.done || st.status == ARES_ETIMEOUT || st.status == ARES_ECANCELLED) {
		acmeval_fail(res, "dns", "DNS query for TXT %s timed out", name);
		return;
	}
	if (st.status == ARES_ENOTFOUND || st.status == ARES_ENODATA ||
	    (st.status == ARES_SUCCESS && st.records == 0)) {
		acmeval_fail(res, "unauthorized", "no TXT record found at %s", name);
		return;
	}
	if (st.status != ARES_SUCCESS) {
		acmeval_fail(res, "dns", "DNS problem: TXT %s: %s", name, ares_strerror(st.status));
		return;
	}
	if (!st.found) {
		printable(st.first);
		acmeval_fail(res, "unauthorized", "incorrect TXT record \"%s\" found at %s%s",
		             st.first, name, st.records > 1 ? " (and others)" : "");
		return;
	}
	res->valid = 1;
}
