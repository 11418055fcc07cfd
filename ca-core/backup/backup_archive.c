/* The backup archive: header, manifest and container formats, and sealing with AES-256-GCM
 * under a data key wrapped by keyd. */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyd_client.h"

#define CHUNK 65536

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- header ---- */

int backup_header_parse(const uint8_t *buf, size_t len, struct backup_header *h, char *err,
                        size_t errlen)
{
	size_t off = 8, n;

	memset(h, 0, sizeof(*h));
	if (len < 8 || memcmp(buf, BACKUP_MAGIC, 8) != 0)
		return fail(err, errlen, "not an hsmca backup archive (no %s header)",
		            BACKUP_MAGIC);
	if (len - off < 2)
		return fail(err, errlen, "archive header is truncated");
	n = (size_t)buf[off] << 8 | buf[off + 1];
	off += 2;
	if (n == 0 || n > KEYD_LABEL_MAX || len - off < n || memchr(buf + off, 0, n))
		return fail(err, errlen, "archive header: bad key label (length %zu)", n);
	memcpy(h->label, buf + off, n);
	h->label[n] = 0;
	off += n;
	if (!keyd_label_valid(h->label))
		return fail(err, errlen, "archive header: the key label is not a valid label");
	if (len - off < 2)
		return fail(err, errlen, "archive header is truncated");
	n = (size_t)buf[off] << 8 | buf[off + 1];
	off += 2;
	if (n <= KEYD_WRAP_OVERHEAD || n > KEYD_WRAP_BLOB_MAX || len - off < n)
		return fail(err, errlen, "archive header: bad wrapped key length %zu", n);
	memcpy(h->wrapped, buf + off, n);
	h->wrapped_len = n;
	off += n;
	if (len - off < sizeof(h->nonce))
		return fail(err, errlen, "archive header is truncated");
	memcpy(h->nonce, buf + off, sizeof(h->nonce));
	off += sizeof(h->nonce);
	h->len = off;
	return 0;
}

size_t backup_header_write(const struct backup_header *h, uint8_t *out, size_t cap)
{
	size_t ll = strlen(h->label), need = 8 + 2 + ll + 2 + h->wrapped_len + sizeof(h->nonce);
	size_t off = 0;

	if (need > cap || ll == 0 || ll > KEYD_LABEL_MAX || h->wrapped_len > KEYD_WRAP_BLOB_MAX)
		return 0;
	memcpy(out, BACKUP_MAGIC, 8);
	off = 8;
	out[off++] = (uint8_t)(ll >> 8);
	out[off++] = (uint8_t)ll;
	memcpy(out + off, h->label, ll);
	off += ll;
	out[off++] = (uint8_t)(h->wrapped_len >> 8);
	out[off++] = (uint8_t)h->wrapped_len;
	memcpy(out + off, h->wrapped, h->wrapped_len);
	off += h->wrapped_len;
	memcpy(out + off, h->nonce, sizeof(h->nonce));
	return off + sizeof(h->nonce);
}

/* ---- manifest ---- */

int backup_name_valid(const char *name)
{
	size_t n = strlen(name), seg = 0;

	if (n == 0 || n > BACKUP_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
		return 0;
	for (size_t i = 0; i <= n; i++) {
		char c = name[i];
		if (c == '/' || c == 0) {
			if (seg == 0 || (seg == 1 && name[i - 1] == '.') ||
			    (seg == 2 && name[i - 1] == '.' && name[i - 2] == '.'))
				return 0;
			seg = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
		seg++;
	}
	return 1;
}

static int path_valid(const char *p)
{
	size_t n = strlen(p);

	if (strcmp(p, "-") == 0)
		return 1;
	if (n < 2 || n >= BACKUP_PATH_MAX || p[0] != '/' || strstr(p, "/../") || strstr(p, "/./") ||
	    (n >= 3 && strcmp(p + n - 3, "/..") == 0))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void backup_manifest_free(struct backup_manifest *m)
{
	free(m->files);
	memset(m, 0, sizeof(*m));
}

/* One "file" line: "<sha256 hex> <size> <mode> <name> <path>". */
static int parse_file_line(const char *s, struct backup_file *f)
{
	char *end;
	const char *p = s, *sp;
	unsigned long long size;
	unsigned long mode;
	size_t n;

	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 32; i++) {
		int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		f->sha256[i] = (uint8_t)(hi << 4 | lo);
	}
	p += 64;
	if (*p++ != ' ' || *p < '0' || *p > '9')
		return -1;
	errno = 0;
	size = strtoull(p, &end, 10);
	if (errno || *end != ' ' || (end - p > 1 && *p == '0') || size > (1ull << 50))
		return -1;
	f->size = size;
	p = end + 1;
	if (*p < '0' || *p > '7')
		return -1;
	mode = strtoul(p, &end, 8);
	if (*end != ' ' || end - p != 4 || mode > 07777)
		return -1;
	f->mode = (unsigned)mode;
	p = end + 1;
	sp = strchr(p, ' ');
	if (!sp || (n = (size_t)(sp - p)) == 0 || n > BACKUP_NAME_MAX)
		return -1;
	memcpy(f->name, p, n);
	f->name[n] = 0;
	if (!backup_name_valid(f->name))
		return -1;
	p = sp + 1;
	if (strlen(p) >= sizeof(f->path))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s", p);
	if (!path_valid(f->path))
		return -1;
	if (strcmp(f->path, "-") == 0)
		f->path[0] = 0;
	return 0;
}

int backup_manifest_parse(const char *text, size_t len, struct backup_manifest *m, char *err,
                          size_t errlen)
{
	char line[BACKUP_NAME_MAX + BACKUP_PATH_MAX + 128];
	size_t off = 0, cap = 0;
	int lineno = 0, have_created = 0, have_schema = 0;

	memset(m, 0, sizeof(*m));
	if (len > BACKUP_MANIFEST_MAX)
		return fail(err, errlen, "manifest: larger than %u bytes", BACKUP_MANIFEST_MAX);
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n;

		lineno++;
		if (!nl) {
			fail(err, errlen, "manifest line %d: no newline at the end", lineno);
			goto bad;
		}
		n = (size_t)(nl - (text + off));
		if (n >= sizeof(line) || memchr(text + off, 0, n)) {
			fail(err, errlen, "manifest line %d: too long or not text", lineno);
			goto bad;
		}
		memcpy(line, text + off, n);
		line[n] = 0;
		off += n + 1;
		if (lineno == 1) {
			if (strcmp(line, "hsmca-backup 1") != 0) {
				fail(err, errlen, "manifest line 1: not \"hsmca-backup 1\"");
				goto bad;
			}
			m->format = 1;
		} else if (strncmp(line, "created ", 8) == 0 && !have_created) {
			if (n - 8 >= sizeof(m->created) || n - 8 != 20 || line[8 + 19] != 'Z') {
				fail(err, errlen, "manifest line %d: bad creation time", lineno);
				goto bad;
			}
			memcpy(m->created, line + 8, n - 8 + 1);
			have_created = 1;
		} else if (strncmp(line, "schema ", 7) == 0 && !have_schema) {
			char *end;
			long v = strtol(line + 7, &end, 10);
			if (*end || end == line + 7 || v < 0 || v > 100000) {
				fail(err, errlen, "manifest line %d: bad schema version", lineno);
				goto bad;
			}
			m->schema_version = (int)v;
			have_schema = 1;
		} else if (strncmp(line, "file ", 5) == 0) {
			if (m->nfiles == BACKUP_MAX_FILES) {
				fail(err, errlen, "manifest: more than %d files", BACKUP_MAX_FILES);
				goto bad;
			}
			if (m->nfiles == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct backup_file *nf = realloc(m->files, nc * sizeof(*nf));
				if (!nf) {
					fail(err, errlen, "manifest: out of memory");
					goto bad;
				}
				m->files = nf;
				cap = nc;
			}
			if (parse_file_line(line + 5, &m->files[m->nfiles]) != 0) {
				fail(err, errlen,
				     "manifest line %d: not \"file SHA256 SIZE MODE NAME PATH\"",
				     lineno);
				goto bad;
			}
			for (size_t i = 0; i < m->nfiles; i++)
				if (strcmp(m->files[i].name, m->files[m->nfiles].name) == 0) {
					fail(err, errlen, "manifest line %d: %s listed twice",
					     lineno, m->files[i].name);
					goto bad;
				}
			m->nfiles++;
		} else {
			fail(err, errlen, "manifest line %d: unknown or repeated line", lineno);
			goto bad;
		}
	}
	if (!m->format || !have_created || !have_schema) {
		fail(err, errlen, "manifest: the format, created and schema lines are required");
		goto bad;
	}
	return 0;
bad:
	backup_manifest_free(m);
	return -1;
}

char *backup_manifest_text(const struct backup_manifest *m, size_t *len)
{
	size_t cap = 128 + m->nfiles * (BACKUP_NAME_MAX + BACKUP_PATH_MAX + 128), n = 0;
	char *t = malloc(cap);
	int w;

	if (!t)
		return NULL;
	w = snprintf(t, cap, "hsmca-backup 1\ncreated %s\nschema %d\n", m->created,
	             m->schema_version);
	n = (size_t)w;
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct backup_file *f = &m->files[i];
		n += (size_t)snprintf(t + n, cap - n, "file ");
		for (int j = 0; j < 32; j++)
			n += (size_t)snprintf(t + n, cap - n, "%02x", f->sha256[j]);
		n += (size_t)snprintf(t + n, cap - n, " %" PRIu64 " %04o %s %s\n", f->size,
		                      f->mode & 07777, f->name, f->path[0] ? f->path : "-");
	}
	*len = n;
	return t;
}

/* ---- container entries ---- */

int backup_entry_read(FILE *f, char *name, size_t namesz, uint64_t *size, char *err, size_t errlen)
{
	uint8_t b[8];
	size_t n;
	int c = fgetc(f);

	if (c == EOF)
		return 1;
	b[0] = (uint8_t)c;
	if (fread(b + 1, 1, 1, f) != 1)
		return fail(err, errlen, "archive contents: truncated entry header");
	n = (size_t)b[0] << 8 | b[1];
	if (n == 0 || n > BACKUP_NAME_MAX || n >= namesz || fread(name, 1, n, f) != n)
		return fail(err, errlen, "archive contents: bad entry name");
	name[n] = 0;
	if (strcmp(name, "MANIFEST") != 0 && !backup_name_valid(name))
		return fail(err, errlen,
		            "archive contents: entry name is not a safe relative path");
	if (fread(b, 1, 8, f) != 8)
		return fail(err, errlen, "archive contents: truncated entry size");
	*size = 0;
	for (int i = 0; i < 8; i++)
		*size = *size << 8 | b[i];
	if (*size > (1ull << 50))
		return fail(err, errlen, "archive contents: entry %s is impossibly large", name);
	return 0;
}

int backup_entry_write(FILE *f, const char *name, uint64_t size)
{
	size_t n = strlen(name);
	uint8_t b[8];

	if (n == 0 || n > BACKUP_NAME_MAX)
		return -1;
	b[0] = (uint8_t)(n >> 8);
	b[1] = (uint8_t)n;
	if (fwrite(b, 1, 2, f) != 2 || fwrite(name, 1, n, f) != n)
		return -1;
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(size >> (56 - 8 * i));
	return fwrite(b, 1, 8, f) == 8 ? 0 : -1;
}

/* ---- sealing ---- */

static FILE *create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return fd < 0 ? NULL : fdopen(fd, "wb");
}

int backup_seal(const char *plain, const char *archive, const char *label, const char *keyd_socket,
                char *err, size_t errlen)
{
	struct backup_header h;
	uint8_t dk[32], hdr[8 + 2 + KEYD_LABEL_MAX + 2 + KEYD_WRAP_BLOB_MAX + 12], tag[16];
	static uint8_t in[CHUNK], out[CHUNK + 32];
	struct keyd_client *kc = NULL;
	struct keyd_err kerr = {0};
	EVP_CIPHER_CTX *ctx = NULL;
	FILE *src = NULL, *dst = NULL;
	size_t hlen, n;
	int outl, rc = -1;

	memset(&h, 0, sizeof(h));
	if (!keyd_label_valid(label))
		return fail(err, errlen, "\"%s\" is not a valid key label", label);
	snprintf(h.label, sizeof(h.label), "%s", label);
	if (RAND_bytes(dk, sizeof(dk)) != 1 || RAND_bytes(h.nonce, sizeof(h.nonce)) != 1)
		return fail(err, errlen, "no randomness for the data key");
	kc = keyd_client_new(keyd_socket, 10000);
	h.wrapped_len = sizeof(h.wrapped);
	if (!kc || keyd_client_wrap(kc, label, dk, sizeof(dk), h.wrapped, &h.wrapped_len, &kerr) !=
	               KEYD_OK) {
		fail(err, errlen, "keyd would not wrap the data key with %s: %s", label,
		     kc ? kerr.msg : "out of memory");
		goto out;
	}
	hlen = backup_header_write(&h, hdr, sizeof(hdr));
	src = fopen(plain, "rb");
	if (!src) {
		fail(err, errlen, "%s: %s", plain, strerror(errno));
		goto out;
	}
	dst = create_private(archive);
	if (!dst) {
		fail(err, errlen, "%s: cannot create: %s", archive, strerror(errno));
		goto out;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (!hlen || !ctx || fwrite(hdr, 1, hlen, dst) != hlen ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, dk, h.nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, hdr, (int)hlen) != 1) {
		fail(err, errlen, "%s: cannot start encrypting", archive);
		goto out;
	}
	while ((n = fread(in, 1, sizeof(in), src)) > 0) {
		if (EVP_EncryptUpdate(ctx, out, &outl, in, (int)n) != 1 ||
		    fwrite(out, 1, (size_t)outl, dst) != (size_t)outl) {
			fail(err, errlen, "%s: write error", archive);
			goto out;
		}
	}
	if (ferror(src) || EVP_EncryptFinal_ex(ctx, out, &outl) != 1 ||
	    fwrite(out, 1, (size_t)outl, dst) != (size_t)outl ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1 ||
	    fwrite(tag, 1, 16, dst) != 16 || fflush(dst) != 0 || fsync(fileno(dst)) != 0) {
		fail(err, errlen, "%s: cannot finish the archive: %s", archive, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	OPENSSL_cleanse(in, sizeof(in));
	OPENSSL_cleanse(out, sizeof(out));
	EVP_CIPHER_CTX_free(ctx);
	keyd_client_free(kc);
	if (src)
		fclose(src);
	if (dst && fclose(dst) != 0 && rc == 0)
		rc = fail(err, errlen, "%s: %s", archive, strerror(errno));
	if (rc != 0 && dst)
		unlink(archive);
	return rc;
}

int backup_unseal(const char *archive, const char *plain_out, const char *keyd_socket,
                  char *label_out, size_t label_sz, char *err, size_t errlen)
{
	struct backup_header h;
	uint8_t dk[64], hdr[8 + 2 + KEYD_LABEL_MAX + 2 + KEYD_WRAP_BLOB_MAX + 12], tag[16];
	static uint8_t in[CHUNK], out[CHUNK + 32];
	struct keyd_client *kc = NULL;
	struct keyd_err kerr = {0};
	EVP_CIPHER_CTX *ctx = NULL;
	FILE *src = NULL, *dst = NULL;
	struct stat st;
	size_t dklen = sizeof(dk), hn;
	uint64_t left;
	int outl, rc = -1;

	src = fopen(archive, "rb");
	if (!src || fstat(fileno(src), &st) != 0)
		return fail(err, errlen, "%s: %s", archive, strerror(errno));
	hn = fread(hdr, 1, sizeof(hdr), src);
	if (backup_header_parse(hdr, hn, &h, err, errlen) != 0)
		goto out;
	if ((uint64_t)st.st_size < h.len + 16) {
		fail(err, errlen, "%s: truncated (no room for the authentication tag)", archive);
		goto out;
	}
	if (label_out)
		snprintf(label_out, label_sz, "%s", h.label);
	kc = keyd_client_new(keyd_socket, 10000);
	if (!kc || keyd_client_unwrap(kc, h.label, h.wrapped, h.wrapped_len, dk, &dklen, &kerr) !=
	               KEYD_OK) {
		fail(err, errlen, "keyd would not unwrap the data key with %s: %s", h.label,
		     kc ? kerr.msg : "out of memory");
		goto out;
	}
	if (dklen != 32) {
		fail(err, errlen, "the wrapped data key is not an AES-256 key");
		goto out;
	}
	dst = create_private(plain_out);
	if (!dst) {
		fail(err, errlen, "%s: cannot create: %s", plain_out, strerror(errno));
		goto out;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || fseeko(src, (off_t)h.len, SEEK_SET) != 0 ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, dk, h.nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, hdr, (int)h.len) != 1) {
		fail(err, errlen, "%s: cannot start decrypting", archive);
		goto out;
	}
	left = (uint64_t)st.st_size - h.len - 16;
	while (left > 0) {
		size_t want = left < sizeof(in) ? (size_t)left : sizeof(in);
		if (fread(in, 1, want, src) != want ||
		    EVP_DecryptUpdate(ctx, out, &outl, in, (int)want) != 1 ||
		    fwrite(out, 1, (size_t)outl, dst) != (size_t)outl) {
			fail(err, errlen, "%s: read or write error while decrypting", archive);
			goto out;
		}
		left -= want;
	}
	if (fread(tag, 1, 16, src) != 16 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, out, &outl) != 1) {
		fail(err, errlen,
		     "%s: the authentication tag does not check: the archive was changed or "
		     "damaged; nothing restored",
		     archive);
		goto out;
	}
	if (fflush(dst) != 0) {
		fail(err, errlen, "%s: %s", plain_out, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	OPENSSL_cleanse(out, sizeof(out));
	EVP_CIPHER_CTX_free(ctx);
	keyd_client_free(kc);
	fclose(src);
	if (dst)
		fclose(dst);
	if (rc != 0 && dst)
		unlink(plain_out);
	return rc;
}
