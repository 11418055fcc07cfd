/*
 * All or nothing: each output is written to a temporary file in its own
 * folder, and only when everything has been checked are they linked into
 * place. link() refuses an existing name atomically, so an output that
 * appeared meanwhile is never overwritten; if one link fails, the outputs
 * already placed are removed again. The transcript is placed last, so an
 * output without its transcript marks a ceremony that did not finish.
 *
 * A failed run places one file only: its transcript, under a name that says
 * it failed, so that it can never be taken for a finished ceremony's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ceremony_internal.h"

static void folder_of(const char *path, char *dir, size_t n)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, n, ".");
	else if (slash == path)
		snprintf(dir, n, "/");
	else
		snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

int cer_out_reserve(struct cer_output *o, const char *what, const struct cer_path *path,
                    const struct ceremony *c, char *err, size_t errsz)
{
	const char *base = strrchr(path->resolved, '/');
	char dir[CER_PATH_MAX], field[64];
	struct stat st;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	o->what = what;
	o->path = path;
	base = base ? base + 1 : path->resolved;
	snprintf(field, sizeof(field), "outputs.%s", what);
	if (lstat(path->resolved, &st) == 0)
		return cer_fail_at(err, errsz, c, path->line, field,
		                   "%s already exists: a ceremony never overwrites a file "
		                   "(move it away if it is really to be replaced)",
		                   path->resolved);
	if (errno != ENOENT)
		return cer_fail_at(err, errsz, c, path->line, field, "%s: %s", path->resolved,
		                   strerror(errno));
	folder_of(path->resolved, dir, sizeof(dir));
	snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.hsmca-tmp-XXXXXX", dir, base);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int e = errno;
		o->tmp[0] = 0;
		return cer_fail_at(err, errsz, c, path->line, field,
		                   "cannot create a file in %s: %s", dir, strerror(e));
	}
	return 0;
}

int cer_out_write(struct cer_output *o, const void *data, size_t len, char *err, size_t errsz)
{
	const uint8_t *p = data;
	size_t off = 0;

	if (o->fd < 0)
		return cer_fail(err, errsz, "%s: no temporary file", o->path->resolved);
	if (!EVP_Digest(data, len, o->sha256, NULL, EVP_sha256(), NULL))
		return cer_fail(err, errsz, "%s: cannot hash the output", o->path->resolved);
	while (off < len) {
		ssize_t w = write(o->fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return cer_fail(err, errsz, "writing %s: %s", o->tmp, strerror(errno));
		off += (size_t)w;
	}
	/* Outputs are public: certificates, public keys, CRLs and the transcript. */
	if (fchmod(o->fd, 0644) != 0 || fsync(o->fd) != 0)
		return cer_fail(err, errsz, "writing %s: %s", o->tmp, strerror(errno));
	if (close(o->fd) != 0) {
		o->fd = -1;
		return cer_fail(err, errsz, "writing %s: %s", o->tmp, strerror(errno));
	}
	o->fd = -1;
	o->written = 1;
	return 0;
}

static void sync_folder(const char *path)
{
	char dir[CER_PATH_MAX];
	int fd;

	folder_of(path, dir, sizeof(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int cer_out_place(struct cer_output *outs, size_t n, char *err, size_t errsz)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!outs[i].written) {
			cer_fail(err, errsz, "%s: was not written", outs[i].path->resolved);
			break;
		}
		if (link(outs[i].tmp, outs[i].path->resolved) != 0) {
			int e = errno;
			cer_fail(err, errsz, "placing %s: %s%s", outs[i].path->resolved,
			         strerror(e),
			         e == EEXIST ? " (it appeared while the ceremony ran)" : "");
			break;
		}
		outs[i].placed = 1;
	}
	if (i < n) {
		for (size_t j = 0; j < i; j++) {
			unlink(outs[j].path->resolved);
			outs[j].placed = 0;
		}
		cer_out_discard(outs, n);
		return -1;
	}
	cer_out_discard(outs, n);
	for (i = 0; i < n; i++)
		sync_folder(outs[i].path->resolved);
	return 0;
}

void cer_out_discard(struct cer_output *outs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (outs[i].fd >= 0)
			close(outs[i].fd);
		outs[i].fd = -1;
		if (outs[i].tmp[0])
			unlink(outs[i].tmp);
		outs[i].tmp[0] = 0;
	}
}

/* NAME.txt -> NAME-FAILED-<stamp>[-n].txt; a name without .txt gets the suffix at its end. */
static int failed_name(const char *path, const char *stamp, int n, char *out, size_t outsz)
{
	size_t len = strlen(path), stem = len;
	const char *base = strrchr(path, '/');
	char nth[16] = "";
	int w;

	base = base ? base + 1 : path;
	if (strlen(base) > 4 && strcmp(path + len - 4, ".txt") == 0)
		stem = len - 4;
	if (n > 1)
		snprintf(nth, sizeof(nth), "-%d", n);
	w = snprintf(out, outsz, "%.*s-FAILED-%s%s%s", (int)stem, path, stamp, nth, path + stem);
	return w > 0 && (size_t)w < outsz ? 0 : -1;
}

int cer_out_failed_transcript(const struct cer_path *transcript, time_t when, const void *data,
                              size_t len, char *placed, size_t placedsz, char *err, size_t errsz)
{
	const char *base = strrchr(transcript->resolved, '/');
	char dir[CER_PATH_MAX], tmp[CER_PATH_MAX + 32], stamp[32];
	const uint8_t *p = data;
	size_t off = 0;
	struct tm tm;
	int fd, rc = -1;

	placed[0] = 0;
	base = base ? base + 1 : transcript->resolved;
	if (!gmtime_r(&when, &tm) || !strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm))
		return cer_fail(err, errsz, "cannot format the time of the failure");
	folder_of(transcript->resolved, dir, sizeof(dir));
	snprintf(tmp, sizeof(tmp), "%s/.%s.hsmca-tmp-XXXXXX", dir, base);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return cer_fail(err, errsz, "cannot create a file in %s: %s", dir, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cer_fail(err, errsz, "writing %s: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		cer_fail(err, errsz, "writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	/* Two failures within a second each keep their own file. */
	for (int n = 1; n <= 100; n++) {
		if (failed_name(transcript->resolved, stamp, n, placed, placedsz) != 0) {
			cer_fail(err, errsz, "%s: the name of the failed transcript is too long",
			         transcript->resolved);
			break;
		}
		if (link(tmp, placed) == 0) {
			rc = 0;
			break;
		}
		if (errno != EEXIST) {
			cer_fail(err, errsz, "placing %s: %s", placed, strerror(errno));
			break;
		}
		if (n == 100)
			cer_fail(err, errsz,
			         "placing %s: 100 failed transcripts of this second exist", placed);
	}
	if (rc != 0)
		placed[0] = 0;
	else
		sync_folder(placed);
out:
	close(fd);
	unlink(tmp);
	return rc;
}
