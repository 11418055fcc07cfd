/*
 * The transcript: every line goes to the operator's terminal as it happens
 * and into a buffer that becomes the transcript file, which is placed with
 * the other outputs (all or nothing).
 */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ceremony_internal.h"

#ifndef HSMCA_VERSION
#define HSMCA_VERSION "unknown"
#endif

void cer_tr_init(struct cer_transcript *t, FILE *out)
{
	memset(t, 0, sizeof(*t));
	t->out = out ? out : stdout;
}

void cer_tr_free(struct cer_transcript *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

static void append(struct cer_transcript *t, const char *s, size_t n)
{
	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8192;
		char *nb;
		while (cap < t->len + n + 1)
			cap *= 2;
		nb = realloc(t->buf, cap);
		if (!nb) {
			t->oom = 1; /* the run checks this before writing the file */
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = 0;
}

static void vline(struct cer_transcript *t, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s", prefix);

	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One line per call: a newline inside a value must not forge a transcript line. */
	for (char *q = line; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
	fprintf(t->out, "%s\n", line);
	fflush(t->out);
	append(t, line, strlen(line));
	append(t, "\n", 1);
}

void cer_tr_line(struct cer_transcript *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(t, "", fmt, ap);
	va_end(ap);
}

void cer_tr_step(struct cer_transcript *t, const char *result, const char *fmt, ...)
{
	char prefix[64], now[32];
	va_list ap;

	ceremony_time_str(time(NULL), now, sizeof(now));
	snprintf(prefix, sizeof(prefix), "%s  %-7s ", now, result);
	va_start(ap, fmt);
	vline(t, prefix, fmt, ap);
	va_end(ap);
}

void cer_tr_file_only(struct cer_transcript *t, const char *text, size_t len)
{
	append(t, text, len);
}

void cer_tr_rewind(struct cer_transcript *t, size_t len)
{
	if (len < t->len) {
		t->len = len;
		t->buf[len] = 0;
	}
}

void cer_tr_header(struct cer_transcript *t, const struct ceremony *c, const char *socket,
                   int dry_run)
{
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096], host[256] = "", hex[80], now[32];
	const char *sudo = getenv("SUDO_USER");
	uid_t uid = getuid(), euid = geteuid();

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0)
		pwp = NULL;
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "(unknown)");
	ceremony_time_str(c->now, now, sizeof(now));
	cer_hex(c->sha256, sizeof(c->sha256), 0, hex, sizeof(hex));

	cer_tr_line(t, "hsmca key ceremony transcript");
	cer_tr_line(t, "ceremony:             %s", ceremony_type_name(c->type));
	if (c->description[0])
		cer_tr_line(t, "description:          %s", c->description);
	cer_tr_line(t, "ceremony file:        %s", c->name);
	cer_tr_line(t, "ceremony file sha256: %s", hex);
	cer_tr_line(t, "mode:                 %s",
	            dry_run ? "dry run (nothing is generated, signed or written)" : "live");
	cer_tr_line(t, "operator:             uid %u (%s)%s%s", (unsigned)uid,
	            pwp ? pwp->pw_name : "no passwd entry", sudo ? ", SUDO_USER " : "",
	            sudo ? sudo : "");
	if (euid != uid)
		cer_tr_line(t, "effective uid:        %u", (unsigned)euid);
	cer_tr_line(t, "host:                 %s", host);
	cer_tr_line(t, "hsmca version:        %s", HSMCA_VERSION);
	cer_tr_line(t, "started (UTC):        %s", now);
	cer_tr_line(t, "keyd socket:          %s", socket ? socket : "(none)");
	cer_tr_line(t, "%s", "");
}
