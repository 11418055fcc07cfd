/* hsmca backup and hsmca restore: collecting, dumping, checking and putting back. */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "db.h"

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

static void say(const struct backup_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct backup_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->out)
		return;
	va_start(ap, fmt);
	vfprintf(o->out, fmt, ap);
	va_end(ap);
	fputc('\n', o->out);
	fflush(o->out);
}

/* ---- a private staging folder, removed with everything in it ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(path);
}

static void staging_remove(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir = "<base>/.hsmca-staging-XXXXXX", mode 0700, on the same file system as base. */
static int staging_make(const char *base, char *dir, size_t dirsz, char *err, size_t errlen)
{
	snprintf(dir, dirsz, "%s/.hsmca-staging-XXXXXX", base);
	if (!mkdtemp(dir)) {
		int e = errno;
		dir[0] = 0;
		return fail(err, errlen, "cannot make a staging folder in %s: %s", base,
		            strerror(e));
	}
	return 0;
}

static void dir_of(const char *path, char *out, size_t n)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(out, n, "%s", dirname(tmp));
}

/* ---- pg_dump and pg_restore ---- */

static void pg_tool(const struct backup_opts *o, const char *tool, char *out, size_t n)
{
	const char *bin = o->pg_bin ? o->pg_bin : getenv("HSMCA_PG_BIN");

	if (bin && bin[0])
		snprintf(out, n, "%s/%s", bin, tool);
	else
		snprintf(out, n, "%s", tool);
}

/* Run argv with stdout and stderr into log; 0 if it exited 0. */
static int run_logged(char *const argv[], const char *log)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The last line of what a tool said, for the error message. */
static void tool_said(const char *log, char *out, size_t n)
{
	char buf[4096];
	FILE *f = fopen(log, "r");
	size_t len = 0;
	char *p;

	out[0] = 0;
	if (!f)
		return;
	if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) != 0)
		rewind(f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = 0;
	p = strrchr(buf, '\n');
	snprintf(out, n, "%s", p ? p + 1 : buf);
}

/* ---- hashing and copying ---- */

static int hash_file(const char *path, uint8_t sha[32], uint64_t *size, char *err, size_t errlen)
{
	static uint8_t buf[CHUNK];
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = -1;

	*size = 0;
	if (!f || !m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1) {
		fail(err, errlen, "%s: %s", path, f ? "cannot hash" : strerror(errno));
		goto out;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		EVP_DigestUpdate(m, buf, n);
		*size += n;
	}
	if (ferror(f) || EVP_DigestFinal_ex(m, sha, NULL) != 1) {
		fail(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	if (f)
		fclose(f);
	EVP_MD_CTX_free(m);
	return rc;
}

/* Copy exactly size bytes from src to dst (either may be a stream position), hashing them. */
static int copy_hashed(FILE *src, FILE *dst, uint64_t size, uint8_t sha[32])
{
	static uint8_t buf[CHUNK];
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int rc = -1;

	if (!m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1)
		goto out;
	while (size > 0) {
		size_t want = size < sizeof(buf) ? (size_t)size : sizeof(buf);
		if (fread(buf, 1, want, src) != want || (dst && fwrite(buf, 1, want, dst) != want))
			goto out;
		EVP_DigestUpdate(m, buf, want);
		size -= want;
	}
	rc = EVP_DigestFinal_ex(m, sha, NULL) == 1 ? 0 : -1;
out:
	EVP_MD_CTX_free(m);
	return rc;
}

/* ---- backup ---- */

struct collect {
	struct backup_manifest *m;
	size_t cap;
	char (*src)[BACKUP_PATH_MAX]; /* where to read each file now */
	char *err;
	size_t errlen;
	const char *token_root;
};

static int add_file(struct collect *c, const char *name, const char *path, const char *src)
{
	struct backup_manifest *m = c->m;
	struct backup_file *f;
	struct stat st;

	if (!backup_name_valid(name))
		return fail(c->err, c->errlen,
		            "%s: cannot be stored as \"%s\" (file names may use "
		            "A-Z a-z 0-9 . _ - only)",
		            src, name);
	for (size_t i = 0; i < m->nfiles; i++)
		if (strcmp(m->files[i].name, name) == 0)
			return fail(c->err, c->errlen, "two files would be stored as %s", name);
	if (m->nfiles == BACKUP_MAX_FILES)
		return fail(c->err, c->errlen, "more than %d files", BACKUP_MAX_FILES);
	if (m->nfiles == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		void *nf = realloc(m->files, nc * sizeof(*m->files));
		void *ns = nf ? realloc(c->src, nc * sizeof(*c->src)) : NULL;
		if (nf)
			m->files = nf;
		if (!nf || !ns)
			return fail(c->err, c->errlen, "out of memory");
		c->src = ns;
		c->cap = nc;
	}
	if (stat(src, &st) != 0 || !S_ISREG(st.st_mode))
		return fail(c->err, c->errlen, "%s: not a regular file", src);
	f = &m->files[m->nfiles];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	if (path && strlen(path) >= sizeof(f->path))
		return fail(c->err, c->errlen, "%s: path too long", path);
	snprintf(f->path, sizeof(f->path), "%s", path ? path : "");
	f->mode = st.st_mode & 0777;
	snprintf(c->src[m->nfiles], BACKUP_PATH_MAX, "%s", src);
	if (hash_file(src, f->sha256, &f->size, c->err, c->errlen) != 0)
		return -1;
	m->nfiles++;
	return 0;
}

static int add_input(struct collect *c, const char *prefix, const char *path)
{
	char abs[PATH_MAX], tmp[PATH_MAX], name[BACKUP_NAME_MAX + 1];

	if (!realpath(path, abs))
		return fail(c->err, c->errlen, "%s: %s", path, strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s", abs);
	snprintf(name, sizeof(name), "%s/%s", prefix, basename(tmp));
	return add_file(c, name, abs, abs);
}

static struct collect *walk_ctx;

static int walk_token(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	char name[BACKUP_NAME_MAX + 1];
	size_t rl = strlen(walk_ctx->token_root);

	(void)st, (void)f;
	if (flag == FTW_D || flag == FTW_DP)
		return 0;
	if (flag != FTW_F)
		return fail(walk_ctx->err, walk_ctx->errlen, "%s: not a regular file", path);
	if (snprintf(name, sizeof(name), "token%s", path + rl) >= (int)sizeof(name))
		return fail(walk_ctx->err, walk_ctx->errlen, "%s: name too long", path);
	return add_file(walk_ctx, name, path, path);
}

/* The archive's size and SHA-256, read back from the file as it was written. 0, or -1. */
static int archive_digest(const char *path, int64_t *size, uint8_t sha[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	unsigned char buf[CHUNK];
	unsigned int n = 0;
	size_t got;
	int rc = -1;

	*size = 0;
	if (!md || !f || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (!EVP_DigestUpdate(md, buf, got))
			goto out;
		*size += (int64_t)got;
	}
	if (!ferror(f) && EVP_DigestFinal_ex(md, sha, &n) && n == 32)
		rc = 0;
out:
	if (f)
		fclose(f);
	EVP_MD_CTX_free(md);
	return rc;
}

int backup_create(const struct backup_opts *o, char *err, size_t errlen)
{
	struct backup_manifest m = {0};
	struct collect c = {.m = &m, .err = err, .errlen = errlen};
	char stage[PATH_MAX] = "", base[PATH_MAX], dump[PATH_MAX + 32], log[PATH_MAX + 32],
	     plain[PATH_MAX + 32], tool[PATH_MAX], said[512], dbarg[2048], root[PATH_MAX],
	     absname[PATH_MAX + BACKUP_PATH_MAX];
	int64_t run = 0;
	struct db *db = NULL;
	struct db_err derr = {0};
	struct stat st;
	char *text = NULL;
	size_t tlen;
	FILE *out = NULL;
	time_t now = time(NULL);
	struct tm tm;
	int rc = -1;

	if (!o->archive || !o->key_label)
		return fail(err, errlen, "an archive file and --key are required");
	if (stat(o->archive, &st) == 0)
		return fail(err, errlen, "%s exists already: hsmca backup never overwrites",
		            o->archive);
	if (db_connect(o->database, &db, &derr) != DB_OK ||
	    db_schema_version(db, &m.schema_version, &derr) != DB_OK) {
		fail(err, errlen, "database: %s", derr.msg);
		goto out;
	}
	/* The run is recorded (committed) before the dump, finished below however it ends
	 * (GET /api/v1/backups, docs/backup.md). */
	if (o->archive[0] == '/' || !getcwd(root, sizeof(root)))
		snprintf(absname, sizeof(absname), "%s", o->archive);
	else
		snprintf(absname, sizeof(absname), "%s/%s", root, o->archive);
	if (db_backup_run_start(db, absname, &run, &derr) != DB_OK) {
		fail(err, errlen, "database: %s (is the schema migrated? hsmca db migrate)",
		     derr.msg);
		goto out;
	}
	gmtime_r(&now, &tm);
	strftime(m.created, sizeof(m.created), "%Y-%m-%dT%H:%M:%SZ", &tm);

	dir_of(o->archive, base, sizeof(base));
	if (staging_make(base, stage, sizeof(stage), err, errlen) != 0)
		goto out;
	snprintf(dump, sizeof(dump), "%s/database.dump", stage);
	snprintf(log, sizeof(log), "%s/pg_dump.log", stage);
	pg_tool(o, "pg_dump", tool, sizeof(tool));
	/* One snapshot of the whole database (pg_dump's own transaction), in the custom
	 * format pg_restore reads; owners and privileges included. */
	snprintf(dbarg, sizeof(dbarg), "--dbname=%s", o->database ? o->database : "");
	{
		char *argv[] = {tool, "--format=custom", "--no-password", "--file", dump, dbarg,
		                NULL};
		say(o, "dumping the database (pg_dump, schema version %d)", m.schema_version);
		if (run_logged(argv, log) != 0) {
			tool_said(log, said, sizeof(said));
			fail(err, errlen, "pg_dump failed: %s", said[0] ? said : "(no message)");
			goto out;
		}
	}
	if (add_file(&c, "database.dump", NULL, dump) != 0)
		goto out;
	for (size_t i = 0; i < o->nconfigs; i++)
		if (add_input(&c, "config", o->configs[i]) != 0)
			goto out;
	for (size_t i = 0; i < o->ncerts; i++)
		if (add_input(&c, "certs", o->certs[i]) != 0)
			goto out;
	if (o->token_dir) {
		if (!realpath(o->token_dir, root)) {
			fail(err, errlen, "%s: %s", o->token_dir, strerror(errno));
			goto out;
		}
		c.token_root = root;
		walk_ctx = &c;
		if (nftw(root, walk_token, 16, FTW_PHYS) != 0) {
			if (!err[0])
				fail(err, errlen, "%s: cannot read the token folder", root);
			goto out;
		}
	}

	text = backup_manifest_text(&m, &tlen);
	snprintf(plain, sizeof(plain), "%s/contents", stage);
	out = fopen(plain, "wb");
	if (!text || !out || backup_entry_write(out, "MANIFEST", tlen) != 0 ||
	    fwrite(text, 1, tlen, out) != tlen) {
		fail(err, errlen, "%s: cannot write", plain);
		goto out;
	}
	for (size_t i = 0; i < m.nfiles; i++) {
		uint8_t sha[32];
		FILE *f = fopen(c.src[i], "rb");
		int bad = !f || backup_entry_write(out, m.files[i].name, m.files[i].size) != 0 ||
		          copy_hashed(f, out, m.files[i].size, sha) != 0 || fgetc(f) != EOF;
		if (f)
			fclose(f);
		/* What goes in is what the manifest says, or the backup fails. */
		if (bad || memcmp(sha, m.files[i].sha256, 32) != 0) {
			fail(err, errlen, "%s changed while it was being backed up; try again",
			     c.src[i]);
			goto out;
		}
	}
	if (fclose(out) != 0) {
		out = NULL;
		fail(err, errlen, "%s: %s", plain, strerror(errno));
		goto out;
	}
	out = NULL;
	say(o, "sealing %zu files with a data key wrapped by keyd key %s", m.nfiles, o->key_label);
	if (backup_seal(plain, o->archive, o->key_label, o->keyd_socket, err, errlen) != 0)
		goto out;
	say(o, "wrote %s", o->archive);
	rc = 0;
out:
	if (out)
		fclose(out);
	if (run) {
		int64_t size = 0;
		uint8_t sha[32] = {0};
		if (rc == 0 && archive_digest(o->archive, &size, sha) != 0)
			rc = fail(err, errlen, "%s: cannot read the archive back", o->archive);
		if (db_backup_run_finish(db, run, rc == 0, size, sha, err, &derr) != DB_OK) {
			if (rc == 0)
				rc = fail(err, errlen,
				          "%s written, but its run was not recorded: %s",
				          o->archive, derr.msg);
		} else if (rc == 0) {
			char hex[65];
			for (int i = 0; i < 32; i++)
				snprintf(hex + 2 * i, 3, "%02x", sha[i]);
			say(o, "recorded backup run %lld: %lld bytes, SHA-256 %s", (long long)run,
			    (long long)size, hex);
		}
	}
	db_close(db);
	staging_remove(stage);
	free(text);
	free(c.src);
	backup_manifest_free(&m);
	return rc;
}

/* ---- restore ---- */

static int mkdirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, mode) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(tmp, mode) != 0 && errno != EEXIST ? -1 : 0;
}

static int dir_empty_or_missing(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return errno == ENOENT;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/* Where path would be written, through the links that exist today: the real path of its
 * deepest existing ancestor followed by the components that do not exist yet (no symlink can
 * be among those). 0, or -1 with why. */
static int resolved_target(const char *path, char *out, size_t n, char *why, size_t whyn)
{
	char head[PATH_MAX], real[PATH_MAX];
	size_t len;

	if (path[0] != '/') {
		snprintf(why, whyn, "is not an absolute path");
		return -1;
	}
	for (const char *c = path; *c;) {
		size_t k = strcspn(c, "/");
		if ((k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.')) {
			snprintf(why, whyn, "has a \".\" or \"..\" component");
			return -1;
		}
		c += k;
		while (*c == '/')
			c++;
	}
	if (snprintf(head, sizeof(head), "%s", path) >= (int)sizeof(head)) {
		snprintf(why, whyn, "is too long");
		return -1;
	}
	/* Strip components until what is left exists (at worst "/"). */
	for (;;) {
		char *slash = strrchr(head, '/');
		if (!slash || slash == head) {
			snprintf(head, sizeof(head), "/");
			break;
		}
		*slash = '\0';
		if (realpath(head, real))
			break;
		if (errno != ENOENT) {
			snprintf(why, whyn, "%s: %s", head, strerror(errno));
			return -1;
		}
	}
	if (!realpath(head, real)) {
		snprintf(why, whyn, "%s: %s", head, strerror(errno));
		return -1;
	}
	/* The components below head, from its "/" on. */
	len = strcmp(head, "/") ? strlen(head) : 0;
	if (snprintf(out, n, "%s%s", strcmp(real, "/") ? real : "", path + len) >= (int)n) {
		snprintf(why, whyn, "is too long");
		return -1;
	}
	return 0;
}

/* 1 when path, as it would be written today, lies strictly below one of the roots (each
 * through its own real path); else 0 with why. */
static int within_roots(const char *path, const char *const *roots, size_t nroots, char *why,
                        size_t whyn)
{
	char target[PATH_MAX], root[PATH_MAX];

	if (resolved_target(path, target, sizeof(target), why, whyn) != 0)
		return 0;
	for (size_t i = 0; i < nroots; i++) {
		size_t k;
		if (!realpath(roots[i], root))
			continue;
		k = strlen(root);
		if (!strcmp(root, "/"))
			return 1;
		if (!strncmp(target, root, k) && target[k] == '/' && target[k + 1])
			return 1;
	}
	snprintf(why, whyn, "is outside the restore roots (written as %s)", target);
	return 0;
}

/* Place a checked staging file at dest, never replacing anything. */
static int place(const char *staged, const char *dest, unsigned mode, char *err, size_t errlen)
{
	char parent[PATH_MAX];

	dir_of(dest, parent, sizeof(parent));
	if (mkdirs(parent, 0700) != 0)
		return fail(err, errlen, "%s: cannot make the folder: %s", parent, strerror(errno));
	if (link(staged, dest) != 0) {
		/* another file system: copy */
		int in, outfd;
		FILE *fi, *fo;
		uint8_t sha[32];
		struct stat st;
		int rc;

		if (errno == EEXIST)
			return fail(err, errlen, "%s exists: restore never overwrites", dest);
		in = open(staged, O_RDONLY | O_CLOEXEC);
		outfd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (in < 0 || outfd < 0 || fstat(in, &st) != 0) {
			int e = errno;
			if (in >= 0)
				close(in);
			if (outfd >= 0)
				close(outfd);
			return fail(err, errlen, "%s: %s", dest, strerror(e));
		}
		fi = fdopen(in, "rb");
		fo = fdopen(outfd, "wb");
		rc = copy_hashed(fi, fo, (uint64_t)st.st_size, sha);
		fclose(fi);
		if (fclose(fo) != 0 || rc != 0)
			return fail(err, errlen, "%s: write error", dest);
	}
	if (chmod(dest, mode & 0777) != 0)
		return fail(err, errlen, "%s: chmod: %s", dest, strerror(errno));
	return 0;
}

/* The restore target: nothing of hsmca's yet (no relations in schema public). */
static int database_empty(const char *conninfo, char *err, size_t errlen)
{
	struct db *db = NULL;
	struct db_err derr = {0};
	int version = -1, rc;

	if (db_connect(conninfo, &db, &derr) != DB_OK)
		return fail(err, errlen, "database: %s", derr.msg);
	rc = db_schema_version(db, &version, &derr);
	db_close(db);
	if (rc != DB_OK)
		return fail(err, errlen, "database: %s", derr.msg);
	if (version != 0)
		return fail(err, errlen,
		            "the database holds hsmca schema version %d already: restore only into "
		            "an empty database (create a new one, or drop this one)",
		            version);
	return 0;
}

int backup_restore(const struct backup_opts *o, char *err, size_t errlen)
{
	struct backup_manifest m = {0};
	char stage[PATH_MAX] = "", base[PATH_MAX], plain[PATH_MAX + 32], staged[PATH_MAX + 64],
	     log[PATH_MAX + 32], tool[PATH_MAX], said[512], dbarg[2048], name[BACKUP_NAME_MAX + 1],
	     label[KEYD_LABEL_MAX + 1], dest[PATH_MAX + BACKUP_NAME_MAX + 2];
	char *text = NULL;
	FILE *in = NULL;
	uint64_t size;
	int rc = -1, r;
	const char *tmp = getenv("TMPDIR");

	if (!o->archive || (!o->into && !o->in_place) || (o->into && o->in_place))
		return fail(err, errlen, "give an archive and one of --into DIR or --in-place");
	if (o->in_place && !o->nroots)
		return fail(
		    err, errlen,
		    "--in-place needs --root DIR for each folder it may write below (the state "
		    "and configuration folders)");
	for (size_t i = 0; i < o->nroots; i++) {
		char real[PATH_MAX];
		if (!realpath(o->roots[i], real))
			return fail(err, errlen, "--root %s: %s", o->roots[i], strerror(errno));
	}
	if (o->into && !dir_empty_or_missing(o->into))
		return fail(err, errlen, "%s is not empty: restore writes only into a new folder",
		            o->into);
	if (o->into) {
		if (mkdirs(o->into, 0700) != 0)
			return fail(err, errlen, "%s: %s", o->into, strerror(errno));
		snprintf(base, sizeof(base), "%s", o->into);
	} else {
		snprintf(base, sizeof(base), "%s", tmp && tmp[0] ? tmp : "/tmp");
	}
	if (staging_make(base, stage, sizeof(stage), err, errlen) != 0)
		goto out;

	/* 1. The tag: nothing is looked at before the whole archive authenticates. */
	snprintf(plain, sizeof(plain), "%s/contents", stage);
	if (backup_unseal(o->archive, plain, o->keyd_socket, label, sizeof(label), err, errlen) !=
	    0)
		goto out;
	say(o, "%s: authentication tag checks (data key unwrapped by keyd key %s)", o->archive,
	    label);

	/* 2. The manifest, and every file against it, into the staging folder. */
	in = fopen(plain, "rb");
	if (!in) {
		fail(err, errlen, "%s: %s", plain, strerror(errno));
		goto out;
	}
	r = backup_entry_read(in, name, sizeof(name), &size, err, errlen);
	if (r != 0 || strcmp(name, "MANIFEST") != 0 || size > BACKUP_MANIFEST_MAX) {
		if (r == 0 || r == 1)
			fail(err, errlen, "the archive does not start with its manifest");
		goto out;
	}
	text = malloc((size_t)size + 1);
	if (!text || fread(text, 1, (size_t)size, in) != size) {
		fail(err, errlen, "the manifest is truncated");
		goto out;
	}
	if (backup_manifest_parse(text, (size_t)size, &m, err, errlen) != 0)
		goto out;
	if (m.schema_version > db_schema_latest()) {
		fail(err, errlen,
		     "the archive's database has schema version %d, newer than this hsmca's %d: "
		     "restore with the hsmca that made it",
		     m.schema_version, db_schema_latest());
		goto out;
	}
	for (size_t i = 0; i < m.nfiles; i++) {
		uint8_t sha[32];
		FILE *f;
		int bad;

		r = backup_entry_read(in, name, sizeof(name), &size, err, errlen);
		if (r != 0 || strcmp(name, m.files[i].name) != 0 || size != m.files[i].size) {
			fail(err, errlen, "the manifest does not check: %s is %s", m.files[i].name,
			     r == 1 ? "missing" : "not where or as large as the manifest says");
			goto out;
		}
		snprintf(staged, sizeof(staged), "%s/f%zu", stage, i);
		f = fopen(staged, "wb");
		bad = !f || copy_hashed(in, f, size, sha) != 0;
		if (f && fclose(f) != 0)
			bad = 1;
		if (bad && feof(in)) {
			fail(err, errlen, "the manifest does not check: %s is truncated",
			     m.files[i].name);
			goto out;
		}
		if (bad) {
			fail(err, errlen, "%s: cannot stage %s", staged, name);
			goto out;
		}
		if (memcmp(sha, m.files[i].sha256, 32) != 0) {
			fail(err, errlen, "the manifest does not check: %s has another SHA-256",
			     m.files[i].name);
			goto out;
		}
	}
	if (backup_entry_read(in, name, sizeof(name), &size, err, errlen) != 1) {
		fail(err, errlen,
		     "the manifest does not check: the archive holds more than it lists");
		goto out;
	}
	if (strcmp(m.files[0].name, "database.dump") != 0) {
		fail(err, errlen, "the manifest does not check: no database dump");
		goto out;
	}
	if (o->in_place)
		for (size_t i = 1; i < m.nfiles; i++) {
			struct stat st;
			char why[PATH_MAX + 64];
			if (!m.files[i].path[0]) {
				fail(err, errlen, "%s has no original path", m.files[i].name);
				goto out;
			}
			/* Only below the configured roots (the state and configuration folders),
			 * judged through the symlinks that exist now: anything else is refused
			 * before a byte is written. */
			if (!within_roots(m.files[i].path, o->roots, o->nroots, why, sizeof(why))) {
				fail(err, errlen,
				     "%s: its original path %s %s: nothing was restored",
				     m.files[i].name, m.files[i].path, why);
				goto out;
			}
			if (lstat(m.files[i].path, &st) == 0) {
				fail(err, errlen,
				     "%s exists: restore never overwrites (move it away)",
				     m.files[i].path);
				goto out;
			}
		}
	say(o, "manifest checks: %zu files, made %s, schema version %d", m.nfiles, m.created,
	    m.schema_version);

	/* 3. The database, into an empty one, in one transaction. */
	if (!o->skip_database) {
		if (database_empty(o->database, err, errlen) != 0)
			goto out;
		snprintf(log, sizeof(log), "%s/pg_restore.log", stage);
		snprintf(staged, sizeof(staged), "%s/f0", stage);
		snprintf(dbarg, sizeof(dbarg), "--dbname=%s", o->database ? o->database : "");
		pg_tool(o, "pg_restore", tool, sizeof(tool));
		{
			char *argv[] = {tool,
			                "--exit-on-error",
			                "--single-transaction",
			                "--no-password",
			                dbarg,
			                staged,
			                NULL};
			say(o, "restoring the database (pg_restore)");
			if (run_logged(argv, log) != 0) {
				tool_said(log, said, sizeof(said));
				fail(err, errlen, "pg_restore failed (nothing was restored): %s",
				     said[0] ? said : "(no message)");
				goto out;
			}
		}
	}

	/* 4. The files. */
	for (size_t i = 1; i < m.nfiles; i++) {
		snprintf(staged, sizeof(staged), "%s/f%zu", stage, i);
		if (o->in_place)
			snprintf(dest, sizeof(dest), "%s", m.files[i].path);
		else
			snprintf(dest, sizeof(dest), "%s/%s", o->into, m.files[i].name);
		if (place(staged, dest, m.files[i].mode, err, errlen) != 0)
			goto out;
		say(o, "restored %s", dest);
	}
	rc = 0;
out:
	if (in)
		fclose(in);
	staging_remove(stage);
	free(text);
	backup_manifest_free(&m);
	return rc;
}
