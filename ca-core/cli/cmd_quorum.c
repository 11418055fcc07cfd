/*
 * hsmca keyd quorum init, unseal, seal, and the quorum's lines of status (docs/quorum.md).
 * init splits the token PIN (read from a file or the terminal, never the command line) into
 * one signed share file per custodian and writes the quorum: section keyd's configuration
 * needs; unseal and seal talk to a running keyd.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cli.h"
#include "keyd_client.h"
#include "quorum.h"
#include "quorum_box.h"
#include "quorum_cms.h"

/* A comma-separated list into at most max entries of buf (names point into buf). */
static int split_list(char *buf, const char **out, unsigned max, unsigned *n)
{
	*n = 0;
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		if (*n >= max)
			return -1;
		out[(*n)++] = tok;
	}
	return *n ? 0 : -1;
}

/* A secret typed at the terminal without echo (twice, when asked to: both must match), its
 * line end removed. 0, or -1 with a message on stderr naming what (e.g. "PIN"). */
static int tty_secret(const char *cmd, const char *what, int twice, char *out, size_t sz)
{
	static char again[QUORUM_PASS_MAX + 2];
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	FILE *tty = fd >= 0 ? fdopen(fd, "r+") : NULL;
	int ok;

	if (!tty || tcgetattr(fd, &old) != 0) {
		fprintf(stderr, "%s: no terminal to read the %s from: give it in a file\n", cmd,
		        what);
		if (tty)
			fclose(tty);
		else if (fd >= 0)
			close(fd);
		return -1;
	}
	quiet = old;
	quiet.c_lflag &= (tcflag_t)~ECHO;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	fprintf(tty, "%s: ", what);
	fflush(tty);
	ok = fgets(out, (int)sz, tty) != NULL;
	if (ok && twice) {
		fprintf(tty, "\n%s again: ", what);
		fflush(tty);
		ok = fgets(again, sizeof(again), tty) != NULL && strcmp(out, again) == 0;
	}
	fputs("\n", tty);
	tcsetattr(fd, TCSAFLUSH, &old);
	fclose(tty);
	OPENSSL_cleanse(again, sizeof(again));
	if (!ok) {
		OPENSSL_cleanse(out, sz);
		fprintf(stderr, "%s: no %s, or the two differ\n", cmd, what);
		return -1;
	}
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

/* The first line of a file that holds a secret. 0, or -1 with a message on stderr. */
static int file_secret(const char *cmd, const char *what, const char *path, char *out, size_t sz)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s file %s: %s\n", cmd, what, path, strerror(errno));
		return -1;
	}
	n = fread(out, 1, sz - 1, f);
	fclose(f);
	out[n] = 0;
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

/* The PIN from a file (first line) or, with path NULL, typed twice at the terminal without
 * echo. 0 with pin NUL-terminated, or -1 with a message on stderr. */
static int read_pin(const char *path, char *pin, size_t pinsz)
{
	size_t n;

	if (path ? file_secret("hsmca keyd quorum init", "PIN", path, pin, pinsz)
	         : tty_secret("hsmca keyd quorum init", "token PIN", 1, pin, pinsz))
		return -1;
	n = strlen(pin);
	if (n == 0 || n > QUORUM_PIN_MAX) {
		OPENSSL_cleanse(pin, pinsz);
		fprintf(stderr, "hsmca keyd quorum init: the PIN must be 1-%d bytes\n",
		        QUORUM_PIN_MAX);
		return -1;
	}
	return 0;
}

/* Write a new file (never over an existing one) with mode. */
static int write_new(const char *path, mode_t mode, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	ssize_t w;

	if (fd < 0) {
		fprintf(stderr, "hsmca keyd quorum init: %s: %s\n", path, strerror(errno));
		return -1;
	}
	w = write(fd, text, len);
	if (w != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0) {
		fprintf(stderr, "hsmca keyd quorum init: writing %s failed\n", path);
		unlink(path);
		return -1;
	}
	return 0;
}

/* NAME=FILE options given once per custodian (--passphrase-file, --recipient-cert). */
struct pairs {
	char buf[QUORUM_MAX_SHARES][4096];
	const char *name[QUORUM_MAX_SHARES], *file[QUORUM_MAX_SHARES];
	unsigned n;
};

/* Add optarg of option opt to ps; 0, or -1 with a message on stderr. */
static int pair_add(struct pairs *ps, const char *opt, const char *arg)
{
	char *eq;

	if (ps->n >= QUORUM_MAX_SHARES) {
		fprintf(stderr, "hsmca keyd quorum init: --%s: at most %d\n", opt,
		        QUORUM_MAX_SHARES);
		return -1;
	}
	snprintf(ps->buf[ps->n], sizeof(ps->buf[ps->n]), "%s", arg);
	eq = strchr(ps->buf[ps->n], '=');
	if (!eq || eq == ps->buf[ps->n] || !eq[1]) {
		fprintf(stderr, "hsmca keyd quorum init: --%s takes CUSTODIAN=FILE, not \"%s\"\n",
		        opt, arg);
		return -1;
	}
	*eq = 0;
	ps->name[ps->n] = ps->buf[ps->n];
	ps->file[ps->n++] = eq + 1;
	return 0;
}

/* Every name of ps is one of the n custodians, once. 0, or -1 with a message on stderr. */
static int pairs_check(const struct pairs *ps, const char *opt, const char *const *names,
                       unsigned n)
{
	for (unsigned i = 0; i < ps->n; i++) {
		unsigned k = 0;
		while (k < n && strcmp(names[k], ps->name[i]) != 0)
			k++;
		if (k == n) {
			fprintf(stderr,
			        "hsmca keyd quorum init: --%s %s=...: \"%s\" is not one of the "
			        "--custodians\n",
			        opt, ps->name[i], ps->name[i]);
			return -1;
		}
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(ps->name[j], ps->name[i])) {
				fprintf(stderr, "hsmca keyd quorum init: --%s names %s twice\n",
				        opt, ps->name[i]);
				return -1;
			}
	}
	return 0;
}

/* The FILE ps gives custodian name, or NULL. */
static const char *pair_of(const struct pairs *ps, const char *name)
{
	for (unsigned i = 0; i < ps->n; i++)
		if (!strcmp(ps->name[i], name))
			return ps->file[i];
	return NULL;
}

/* Encrypt share text (len bytes) for custodian name to the certificate in path, into out. Its
 * length, or -1 with a message on stderr. */
static int seal_to_cert(const char *name, const char *path, const char *text, int len, char *out,
                        size_t cap)
{
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	char err[256];
	int n = -1;

	if (f)
		fclose(f);
	if (!x)
		fprintf(stderr,
		        "hsmca keyd quorum init: --recipient-cert %s: %s is not a PEM "
		        "certificate\n",
		        name, path);
	else if ((n = quorum_cms_seal(text, (size_t)len, x, out, cap, err, sizeof(err))) < 0)
		fprintf(stderr, "hsmca keyd quorum init: %s: %s\n", name, err);
	X509_free(x);
	return n;
}

static void usage_init(FILE *f)
{
	fprintf(f, "usage: hsmca keyd quorum init --custodians A,B,C --threshold M --out DIR\n"
	           "         [--pin-file FILE] [--users U1,U2,U3] [--sealers S1,...]\n"
	           "         [--encrypt [--passphrase-files F1,F2,F3]]\n"
	           "         [--passphrase-file NAME=FILE]... [--recipient-cert NAME=CERT]...\n"
	           "Splits the token PIN (from --pin-file, else typed at the terminal) into one\n"
	           "share per custodian, any M of which unseal keyd, and writes DIR/NAME.share\n"
	           "(mode 0600) for each and DIR/quorum.yaml, the lines keyd's configuration\n"
	           "takes in place of pin_file. --users names each custodian's local user (by\n"
	           "default the custodian's name); --sealers the users who may seal keyd.\n"
	           "--encrypt puts each share under its custodian's passphrase (scrypt and\n"
	           "AES-256-GCM), typed at the terminal or read from --passphrase-files.\n"
	           "--passphrase-file NAME=FILE (once per custodian, optional) puts only that\n"
	           "custodian's share under the passphrase in FILE; the others stay in the clear\n"
	           "unless --encrypt is also given.\n"
	           "--recipient-cert NAME=CERT puts that custodian's share under the public key\n"
	           "of the PEM certificate CERT (EC or RSA; CMS AuthEnvelopedData, AES-256-GCM);\n"
	           "the custodian unseals it with hsmca keyd unseal --key KEY.\n"
	           "See docs/quorum.md.\n");
}

static int quorum_init(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"custodians", required_argument, NULL, 'c'},
	    {"threshold", required_argument, NULL, 'm'},
	    {"pin-file", required_argument, NULL, 'p'},
	    {"out", required_argument, NULL, 'o'},
	    {"users", required_argument, NULL, 'u'},
	    {"sealers", required_argument, NULL, 's'},
	    {"encrypt", no_argument, NULL, 'e'},
	    {"passphrase-files", required_argument, NULL, 'f'},
	    {"passphrase-file", required_argument, NULL, 'F'},
	    {"recipient-cert", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char cbuf[2048] = "", ubuf[2048] = "", sbuf[2048] = "", fbuf[8192] = "";
	const char *passfiles[QUORUM_MAX_SHARES + 1];
	static struct pairs pf, rc_; /* --passphrase-file, --recipient-cert */
	unsigned nf = 0;
	int encrypt = 0;
	static char pass[QUORUM_PASS_MAX + 2], box[QUORUM_BOX_MAX], cms[QUORUM_CMS_MAX];
	const char *names[QUORUM_MAX_SHARES + 1], *users[QUORUM_MAX_SHARES + 1],
	    *sealers[QUORUM_MAX_SHARES + 1];
	unsigned n = 0, nu = 0, ns = 0;
	const char *pinfile = NULL, *out = NULL;
	long m = 0;
	char pin[QUORUM_PIN_MAX + 2], err[256], path[4096], text[QUORUM_FILE_MAX];
	static struct qshare sh[QUORUM_MAX_SHARES];
	struct quorum_ref ref;
	char id[2 * QUORUM_ID_LEN + 1], vk[2 * QUORUM_VK_LEN + 1], yaml[8192];
	size_t at;
	int o, rc = 1;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'c':
			snprintf(cbuf, sizeof(cbuf), "%s", optarg);
			break;
		case 'm':
			errno = 0;
			m = strtol(optarg, &end, 10);
			if (errno || *end || m < 2 || m > QUORUM_MAX_SHARES) {
				fprintf(stderr,
				        "hsmca keyd quorum init: --threshold must be 2-%d\n",
				        QUORUM_MAX_SHARES);
				return 2;
			}
			break;
		case 'p':
			pinfile = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'u':
			snprintf(ubuf, sizeof(ubuf), "%s", optarg);
			break;
		case 's':
			snprintf(sbuf, sizeof(sbuf), "%s", optarg);
			break;
		case 'e':
			encrypt = 1;
			break;
		case 'f':
			encrypt = 1;
			snprintf(fbuf, sizeof(fbuf), "%s", optarg);
			break;
		case 'F':
			if (pair_add(&pf, "passphrase-file", optarg))
				return 2;
			break;
		case 'R':
			if (pair_add(&rc_, "recipient-cert", optarg))
				return 2;
			break;
		case 'h':
			usage_init(stdout);
			return 0;
		default:
			usage_init(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
		        "hsmca keyd quorum init: unexpected argument \"%s\" (the PIN is never an "
		        "argument: --pin-file or the terminal)\n",
		        argv[optind]);
		return 2;
	}
	if (!cbuf[0] || !m || !out) {
		usage_init(stderr);
		return 2;
	}
	if (split_list(cbuf, names, QUORUM_MAX_SHARES, &n) != 0 || n < 2) {
		fprintf(stderr, "hsmca keyd quorum init: --custodians names 2-%d custodians\n",
		        QUORUM_MAX_SHARES);
		return 2;
	}
	if (m > (long)n) {
		fprintf(stderr,
		        "hsmca keyd quorum init: a threshold of %ld needs at least %ld custodians, "
		        "not %u\n",
		        m, m, n);
		return 2;
	}
	if (ubuf[0] && (split_list(ubuf, users, QUORUM_MAX_SHARES, &nu) != 0 || nu != n)) {
		fprintf(stderr, "hsmca keyd quorum init: --users names one user per custodian\n");
		return 2;
	}
	if (fbuf[0] && (split_list(fbuf, passfiles, QUORUM_MAX_SHARES, &nf) != 0 || nf != n)) {
		fprintf(
		    stderr,
		    "hsmca keyd quorum init: --passphrase-files names one file per custodian\n");
		return 2;
	}
	if (fbuf[0] && pf.n) {
		fprintf(stderr, "hsmca keyd quorum init: give --passphrase-files or "
		                "--passphrase-file NAME=FILE, not both\n");
		return 2;
	}
	if (pairs_check(&pf, "passphrase-file", names, n) ||
	    pairs_check(&rc_, "recipient-cert", names, n))
		return 2;
	for (unsigned i = 0; i < rc_.n; i++)
		if (encrypt || pair_of(&pf, rc_.name[i])) {
			fprintf(stderr,
			        "hsmca keyd quorum init: %s: a share goes under a passphrase or a "
			        "certificate's key, not both\n",
			        rc_.name[i]);
			return 2;
		}
	if (sbuf[0] && split_list(sbuf, sealers, QUORUM_MAX_SHARES, &ns) != 0) {
		fprintf(stderr, "hsmca keyd quorum init: --sealers: a list of users\n");
		return 2;
	}
	for (unsigned i = 0; i < nu; i++)
		if (!quorum_name_valid(users[i])) {
			fprintf(stderr, "hsmca keyd quorum init: user \"%s\": not a user name\n",
			        users[i]);
			return 2;
		}
	for (unsigned i = 0; i < ns; i++)
		if (!quorum_name_valid(sealers[i])) {
			fprintf(stderr, "hsmca keyd quorum init: sealer \"%s\": not a user name\n",
			        sealers[i]);
			return 2;
		}
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "hsmca keyd quorum init: %s: %s\n", out, strerror(errno));
		return 1;
	}
	if (read_pin(pinfile, pin, sizeof(pin)) != 0)
		return 1;
	if (quorum_make(pin, strlen(pin), (unsigned)m, n, names, sh, &ref, err, sizeof(err)) != 0) {
		OPENSSL_cleanse(pin, sizeof(pin));
		fprintf(stderr, "hsmca keyd quorum init: %s\n", err);
		return 1;
	}
	OPENSSL_cleanse(pin, sizeof(pin));
	/* Nothing is written until every name is checked; a share file never replaces one. */
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s.share", out, names[i]);
		if (access(path, F_OK) == 0) {
			fprintf(stderr,
			        "hsmca keyd quorum init: %s exists: shares of an older "
			        "quorum are not overwritten\n",
			        path);
			goto out;
		}
	}
	quorum_hex(ref.id, QUORUM_ID_LEN, id);
	quorum_hex(ref.vk, QUORUM_VK_LEN, vk);
	at = (size_t)snprintf(yaml, sizeof(yaml),
	                      "# keyd's activation by a quorum of %ld of %u custodians, made by "
	                      "hsmca keyd quorum init\n"
	                      "# (docs/quorum.md): these lines replace pin_file: in keyd's "
	                      "configuration.\n"
	                      "activation: quorum\n"
	                      "quorum:\n"
	                      "  id: \"%s\"\n"
	                      "  verify_key: \"%s\"\n"
	                      "  threshold: %ld\n"
	                      "  custodians:\n",
	                      m, n, id, vk, m);
	for (unsigned i = 0; i < n; i++)
		at += (size_t)snprintf(yaml + at, sizeof(yaml) - at,
		                       "    - name: %s\n      user: %s\n", names[i],
		                       nu ? users[i] : names[i]);
	if (ns)
		at += (size_t)snprintf(yaml + at, sizeof(yaml) - at, "  sealers:\n");
	for (unsigned i = 0; i < ns; i++)
		at += (size_t)snprintf(yaml + at, sizeof(yaml) - at,
		                       "    - name: %s\n      user: %s\n", sealers[i], sealers[i]);
	if (at >= sizeof(yaml)) {
		fprintf(stderr, "hsmca keyd quorum init: configuration too long\n");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/quorum.yaml", out);
	if (write_new(path, 0644, yaml, at) != 0)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		int len = quorum_share_format(&sh[i], 1, text, sizeof(text));
		const char *body = text, *own = nf ? passfiles[i] : pair_of(&pf, names[i]),
		           *cert = pair_of(&rc_, names[i]);
		snprintf(path, sizeof(path), "%s/%s.share", out, names[i]);
		if (len > 0 && cert) {
			if ((len = seal_to_cert(names[i], cert, text, len, cms, sizeof(cms))) < 0)
				goto out;
			body = cms;
		} else if (len > 0 && (encrypt || own)) {
			char what[QUORUM_NAME_MAX + 32];
			snprintf(what, sizeof(what), "passphrase for %s", names[i]);
			if (own ? file_secret("hsmca keyd quorum init", what, own, pass,
			                      sizeof(pass))
			        : tty_secret("hsmca keyd quorum init", what, 1, pass, sizeof(pass)))
				goto out;
			len = quorum_box_seal(text, (size_t)len, names[i], pass, box, sizeof(box),
			                      err, sizeof(err));
			OPENSSL_cleanse(pass, sizeof(pass));
			if (len < 0) {
				fprintf(stderr, "hsmca keyd quorum init: %s: %s\n", names[i], err);
				goto out;
			}
			body = box;
		}
		if (len < 0 || write_new(path, 0600, body, (size_t)len) != 0)
			goto out;
		printf("%s\n", path);
	}
	printf("%s/quorum.yaml\n", out);
	fprintf(stderr,
	        "quorum %s: %ld of %u custodians; give each custodian their share file, keep no "
	        "copy, and put quorum.yaml's lines in keyd's configuration in place of "
	        "pin_file:\n",
	        id, m, n);
	rc = 0;
out:
	OPENSSL_cleanse(text, sizeof(text));
	OPENSSL_cleanse(sh, sizeof(sh));
	return rc;
}

void cmd_keyd_print_quorum(const struct keyd_quorum_status *q)
{
	if (q->activation != 2) {
		printf("activation: file\n");
		return;
	}
	printf("activation: quorum (%u of %u custodians)\nsealed: %s\n", q->threshold, q->total,
	       q->sealed ? "yes" : "no");
	if (q->sealed)
		printf("shares: %u of %u presented\nexpected: %s\n", q->presented, q->threshold,
		       q->expected[0] ? q->expected : "-");
}

/* unseal SHARE_FILE, seal: argv[0] is the command. */
/* A share under a certificate's key (quorum_cms.h) in path, opened with the private key in
 * keyfile into text (cap bytes). Its length, or -1 with a message on stderr. */
static int open_cms_share(const char *path, const char *keyfile, char *text, size_t cap)
{
	static char pem[QUORUM_CMS_MAX + 1];
	char e[256];
	FILE *f;
	EVP_PKEY *key = NULL;
	size_t n;
	int m = -1;

	if (!keyfile) {
		fprintf(stderr,
		        "hsmca keyd unseal: %s is under a certificate's key: give the custodian's "
		        "private key with --key KEY (or $HSMCA_SHARE_KEY_FILE)\n",
		        path);
		return -1;
	}
	f = fopen(path, "re");
	n = f ? fread(pem, 1, sizeof(pem), f) : 0;
	if (f)
		fclose(f);
	if ((f = fopen(keyfile, "re"))) {
		key = PEM_read_PrivateKey(f, NULL, NULL, NULL); /* asks for its passphrase if any */
		fclose(f);
	}
	if (!key)
		fprintf(stderr,
		        "hsmca keyd unseal: %s: not a PEM private key (or its passphrase "
		        "is wrong)\n",
		        keyfile);
	else if ((m = quorum_cms_open(pem, n, key, text, cap, e, sizeof(e))) < 0)
		fprintf(stderr, "hsmca keyd unseal: %s: %s\n", path, e);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return m;
}

int cmd_keyd_quorum(struct keyd_client *c, const char *cmd, int argc, char **argv,
                    const char *passfile, const char *keyfile)
{
	struct keyd_quorum_status q;
	struct keyd_err err = {0};
	int r;

	if (!strcmp(cmd, "quorum")) {
		if (argc < 1 || strcmp(argv[0], "init") != 0) {
			fprintf(stderr, "usage: hsmca keyd quorum init ... (--help)\n");
			return 2;
		}
		return quorum_init(argc, argv);
	}
	if (!strcmp(cmd, "unseal")) {
		char text[KEYD_SHARE_MAX + 1];
		size_t n;
		FILE *f;
		if (argc != 1) {
			fprintf(stderr, "usage: hsmca keyd unseal SHARE_FILE\n");
			return 2;
		}
		/* For scripts: the passphrase's file in the environment, as --passphrase-file. */
		if (!passfile)
			passfile = getenv("HSMCA_SHARE_PASSPHRASE_FILE");
		if (!keyfile)
			keyfile = getenv("HSMCA_SHARE_KEY_FILE");
		f = fopen(argv[0], "re");
		if (!f) {
			fprintf(stderr, "hsmca keyd unseal: %s: %s\n", argv[0], strerror(errno));
			return 1;
		}
		n = fread(text, 1, sizeof(text), f);
		fclose(f);
		if (n > 0 && quorum_cms_is(text, n)) {
			int m = open_cms_share(argv[0], keyfile, text, sizeof(text));
			if (m < 0) {
				OPENSSL_cleanse(text, sizeof(text));
				return 1;
			}
			n = (size_t)m;
		} else if (n > 0 && quorum_box_is(text, n)) {
			/* Under the custodian's passphrase: opened here, keyd sees the share only.
			 */
			static char boxed[QUORUM_BOX_MAX + 1], pass[QUORUM_PASS_MAX + 2];
			char e[256];
			int m;
			f = fopen(argv[0], "re");
			n = f ? fread(boxed, 1, sizeof(boxed), f) : 0;
			if (f)
				fclose(f);
			if (passfile ? file_secret("hsmca keyd unseal", "passphrase", passfile,
			                           pass, sizeof(pass))
			             : tty_secret("hsmca keyd unseal", "passphrase", 0, pass,
			                          sizeof(pass))) {
				OPENSSL_cleanse(text, sizeof(text));
				return 1;
			}
			m = quorum_box_open(boxed, n, pass, text, sizeof(text), e, sizeof(e));
			OPENSSL_cleanse(pass, sizeof(pass));
			if (m < 0) {
				OPENSSL_cleanse(text, sizeof(text));
				fprintf(stderr, "hsmca keyd unseal: %s: %s\n", argv[0], e);
				return 1;
			}
			n = (size_t)m;
		}
		if (n == 0 || n > KEYD_SHARE_MAX) {
			OPENSSL_cleanse(text, sizeof(text));
			fprintf(stderr, "hsmca keyd unseal: %s: not a share file (%s)\n", argv[0],
			        n ? "over 1024 bytes" : "empty");
			return 1;
		}
		r = keyd_client_unseal(c, (const uint8_t *)text, n, &q, &err);
		OPENSSL_cleanse(text, sizeof(text));
		if (r != KEYD_OK) {
			fprintf(stderr, "hsmca keyd unseal: %s\n", err.msg);
			return 1;
		}
		if (q.sealed)
			printf("%u of %u shares presented; still expected: %s\n", q.presented,
			       q.threshold, q.expected);
		else
			printf("unsealed\n");
		return 0;
	}
	/* seal */
	if (argc != 0) {
		fprintf(stderr, "usage: hsmca keyd seal\n");
		return 2;
	}
	r = keyd_client_seal(c, &q, &err);
	if (r != KEYD_OK) {
		fprintf(stderr, "hsmca keyd seal: %s\n", err.msg);
		return 1;
	}
	printf("sealed\n");
	return 0;
}
