/* hsmca keyd: status, list, pubkey, generate, through the keyd client library; quorum init,
 * unseal and seal in cmd_quorum.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "cli_approval.h"
#include "keyd_client.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hsmca keyd [--socket PATH] COMMAND\n"
	           "  status                      token status and counters; sealed or not; what\n"
	           "                              the token can do (capabilities)\n"
	           "  list                        keys this client may use\n"
	           "  pubkey LABEL                public key as PEM on stdout\n"
	           "  metrics                     keyd's metrics, Prometheus text format\n"
	           "  generate --label L --type T create a key pair in the HSM; T is one of\n"
	           "                              rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384,\n"
	           "                              or aes-256 (a wrapping key for backups)\n"
	           "    [--approval ID] [--database C]\n"
	           "                              when the configuration puts key.generate under\n"
	           "                              quorum approval (docs/approvals.md), only under\n"
	           "                              an approved request for this label and type\n"
	           "                              (the newest, or ID); C: where the approvals are\n"
	           "                              (libpq; default PGHOST/PGDATABASE)\n"
	           "  quorum init ...             split the PIN into custodians' shares (--help)\n"
	           "  unseal [--passphrase-file F | --key KEY] SHARE_FILE\n"
	           "                              present a custodian's share to a sealed keyd\n"
	           "                              (a share under a passphrase: F, else the file\n"
	           "                              $HSMCA_SHARE_PASSPHRASE_FILE names, else typed;\n"
	           "                              a share under a certificate's key: the\n"
	           "                              private KEY, or $HSMCA_SHARE_KEY_FILE)\n"
	           "  seal                        drop keyd's login and forget the PIN\n"
	           "The socket defaults to $HSMCA_KEYD_SOCKET.\n");
}

static const char *flags_text(unsigned f, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s%s%s", f & KEYD_KF_SENSITIVE ? "sensitive " : "",
	         f & KEYD_KF_EXTRACTABLE ? "EXTRACTABLE " : "",
	         f & KEYD_KF_ALWAYS_SENSITIVE ? "always-sensitive " : "",
	         f & KEYD_KF_NEVER_EXTRACTABLE ? "never-extractable " : "",
	         f & KEYD_KF_LOCAL ? "local" : "");
	return buf;
}

/* The capabilities section of `hsmca keyd status` (a version 3 keyd): what the token said it
 * can do, and for each mechanism keyd uses, its key sizes and uses or "missing". */
static void print_caps(const struct keyd_token_caps *k)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} mflags[] = {
	    {0x1, "hw"},
	    {0x100, "encrypt"},
	    {0x200, "decrypt"},
	    {0x800, "sign"},
	    {0x2000, "verify"},
	    {0x8000, "generate"},
	    {0x10000, "generate-key-pair"},
	    {0x20000, "wrap"},
	    {0x40000, "unwrap"},
	    {0x800000, "named-curves"},
	};

	if (!k->present)
		return; /* a keyd older than protocol version 3 */
	printf("capabilities:\n");
	if (!k->have) {
		printf("  unknown: the token is sealed or being re-initialised\n");
		return;
	}
	if (k->have & KEYD_CAPS_TOKEN_INFO) {
		printf("  manufacturer: %s\n  model: %s\n  hardware version: %u.%u\n"
		       "  firmware version: %u.%u\n  login required: %s\n"
		       "  protected authentication path: %s\n",
		       k->manufacturer, k->model, k->hw_major, k->hw_minor, k->fw_major,
		       k->fw_minor, k->token_flags & 0x4 ? "yes" : "no", /* CKF_LOGIN_REQUIRED */
		       k->token_flags & 0x100 ? "yes"
		                              : "no"); /* CKF_PROTECTED_AUTHENTICATION_PATH */
		if (k->max_sessions)
			printf("  sessions at most: %u\n", k->max_sessions);
		else
			printf("  sessions at most: no limit stated\n");
	}
	if (!(k->have & KEYD_CAPS_MECHS)) {
		printf("  mechanisms: not listed by the token (keyd lets the module refuse)\n");
		return;
	}
	for (size_t j = 0; j < KEYD_NMECHS; j++) {
		const struct keyd_mech_cap *m = NULL;
		uint32_t mech = keyd_mechs[j];

		for (unsigned i = 0; i < k->nmechs; i++)
			if (k->mechs[i].mech == mech)
				m = &k->mechs[i];
		printf("  %s: ", keyd_mech_name(mech));
		if (!m) {
			printf("missing (keyd refuses %s)\n", keyd_mech_use(mech));
			continue;
		}
		/* AES key sizes are in bytes, the others in bits (PKCS#11 3.0, 2.x). */
		printf("%u-%u %s,", m->min_size, m->max_size,
		       mech == 0x1080 || mech == 0x1087 ? "bytes" : "bits");
		for (size_t f = 0; f < sizeof(mflags) / sizeof(mflags[0]); f++)
			if (m->flags & mflags[f].bit)
				printf(" %s", mflags[f].name);
		printf("\n");
	}
}

static int print_pem(const struct keyd_key *k)
{
	const unsigned char *p = k->spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)k->spki_len);
	int ok;

	if (!pk) {
		fprintf(stderr, "hsmca: keyd returned a public key that does not parse\n");
		return 1;
	}
	ok = PEM_write_PUBKEY(stdout, pk);
	EVP_PKEY_free(pk);
	return ok ? 0 : 1;
}

static int parse_type(const char *t, int *keytype, uint16_t *param)
{
	static const struct {
		const char *name;
		int type;
		uint16_t param;
	} types[] = {
	    {"rsa-2048", KEYD_KEY_RSA, 2048},          {"rsa-3072", KEYD_KEY_RSA, 3072},
	    {"rsa-4096", KEYD_KEY_RSA, 4096},          {"ec-p256", KEYD_KEY_EC, KEYD_CURVE_P256},
	    {"ec-p384", KEYD_KEY_EC, KEYD_CURVE_P384}, {"aes-256", KEYD_KEY_AES, 256},
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(t, types[i].name)) {
			*keytype = types[i].type;
			*param = types[i].param;
			return 0;
		}
	return -1;
}

/* The target of a key.generate approval: the SHA-256 (hex) of "key.generate\nLABEL\nTYPE\n",
 * so an approval is for one key (docs/approvals.md). */
static int generate_target(const char *label, const char *type, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	         EVP_DigestUpdate(ctx, "key.generate\n", 13) &&
	         EVP_DigestUpdate(ctx, label, strlen(label)) && EVP_DigestUpdate(ctx, "\n", 1) &&
	         EVP_DigestUpdate(ctx, type, strlen(type)) && EVP_DigestUpdate(ctx, "\n", 1) &&
	         EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;

	EVP_MD_CTX_free(ctx);
	for (int i = 0; ok && i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return ok ? 0 : -1;
}

/* hsmca keyd generate: under an approved key.generate request for exactly this label and type
 * when the configuration's threshold is above 1 (as hsmca ceremony run claims ceremony.run),
 * the request marked executed or failed with its audit entry. */
static int generate(struct keyd_client *c, const char *label, const char *type,
                    const char *approval, const char *database)
{
	struct cli_approval ap;
	struct keyd_key k;
	struct keyd_err err = {0};
	char sha[65], what[200], ask[200], msg[1024], result[200], fl[128];
	long long id = 0;
	int kt, rc = 1;
	uint16_t param;

	if (!label || !type) {
		fprintf(stderr, "hsmca keyd generate: --label and --type are required\n");
		return 2;
	}
	if (parse_type(type, &kt, &param) != 0) {
		fprintf(stderr,
		        "hsmca keyd generate: unknown --type \"%s\" (rsa-2048, rsa-3072, "
		        "rsa-4096, ec-p256, ec-p384, aes-256)\n",
		        type);
		return 2;
	}
	if (strcspn(label, "\n\r") != strlen(label) || strlen(label) > 64) {
		fprintf(stderr, "hsmca keyd generate: the --label is one line of at most 64 "
		                "characters\n");
		return 2;
	}
	if (approval) {
		char *end;
		id = strtoll(approval, &end, 10);
		if (*end || id <= 0) {
			fprintf(stderr, "hsmca keyd generate: --approval takes a request's id\n");
			return 2;
		}
	}
	if (generate_target(label, type, sha) != 0) {
		fprintf(stderr, "hsmca keyd generate: cannot hash the request\n");
		return 1;
	}
	snprintf(what, sizeof(what), "key %s (%s)", label, type);
	snprintf(ask, sizeof(ask), "hsmca approvals request key.generate --target %s --reason TEXT",
	         sha);
	if (cli_approval_claim_target(database, "key.generate", sha, what, ask, id, &ap, msg,
	                              sizeof(msg)) != 0) {
		fprintf(stderr, "hsmca keyd generate: %s\n", msg);
		return 1;
	}
	if (ap.active)
		fprintf(stderr, "under approval %s\n", ap.line);
	if (keyd_client_generate(c, label, kt, param, &k, &err) == KEYD_OK) {
		fprintf(stderr, "generated %s: %s-%u, %s\n", k.label,
		        kt == KEYD_KEY_RSA  ? "rsa"
		        : kt == KEYD_KEY_EC ? "ec"
		                            : "aes",
		        k.bits, flags_text(k.flags, fl, sizeof(fl)));
		/* A secret key has no public half to print. */
		rc = kt == KEYD_KEY_AES ? 0 : print_pem(&k);
	} else {
		fprintf(stderr, "hsmca keyd generate: %s\n", err.msg);
	}
	if (rc == 0)
		snprintf(result, sizeof(result), "generated key %s (%s)", label, type);
	else
		snprintf(result, sizeof(result), "key %s (%s): %s", label, type,
		         err.msg[0] ? err.msg : "failed");
	if (cli_approval_finish(&ap, rc == 0, result, 0, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "hsmca keyd generate: %s\n", msg);
		rc = 1;
	}
	return rc;
}

int cmd_keyd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"label", required_argument, NULL, 'l'},
	    {"type", required_argument, NULL, 't'},
	    {"passphrase-file", required_argument, NULL, 'P'},
	    {"approval", required_argument, NULL, 'a'},
	    {"key", required_argument, NULL, 'k'},
	    {"database", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *label = NULL, *type = NULL, *cmd, *passfile = NULL;
	const char *database = NULL, *approval = NULL, *keyfile = NULL;
	struct keyd_client *c;
	struct keyd_err err = {0};
	char fl[128];
	int o, rc = 1;

	optind = 1;
	while ((o = getopt_long(argc, argv, "+s:l:t:h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			sock = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 't':
			type = optarg;
			break;
		case 'P':
			passfile = optarg;
			break;
		case 'a':
			approval = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'd':
			database = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	/* quorum init has options of its own and needs no keyd. */
	if (!strcmp(cmd, "quorum"))
		return cmd_keyd_quorum(NULL, cmd, argc - optind, argv + optind, NULL, NULL);
	/* Options may also follow the command. */
	while ((o = getopt_long(argc, argv, "s:l:t:h", opts, NULL)) != -1) {
		if (o == 's')
			sock = optarg;
		else if (o == 'l')
			label = optarg;
		else if (o == 't')
			type = optarg;
		else if (o == 'P')
			passfile = optarg;
		else if (o == 'a')
			approval = optarg;
		else if (o == 'k')
			keyfile = optarg;
		else if (o == 'd')
			database = optarg;
		else {
			usage(o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 2;
		}
	}
	c = keyd_client_new(sock, 0);
	if (!c) {
		fprintf(stderr, "hsmca: no keyd socket: use --socket or set HSMCA_KEYD_SOCKET\n");
		return 2;
	}
	if (!strcmp(cmd, "unseal") || !strcmp(cmd, "seal")) {
		rc = cmd_keyd_quorum(c, cmd, argc - optind, argv + optind, passfile, keyfile);
		keyd_client_free(c);
		return rc;
	}
	if (!strcmp(cmd, "status")) {
		struct keyd_token_status st;
		struct keyd_quorum_status q;
		struct keyd_err qerr;
		if (keyd_client_status(c, &st, &err) == KEYD_OK) {
			printf("token: %s\nonline: %s\nkeys: %u\nworkers: %u\nqueue: %u/%u\n"
			       "reinitialisations: %u\nsignatures: %llu ok, %llu failed\n"
			       "denied requests: %llu\n",
			       st.token, st.online ? "yes" : "no", st.keys, st.workers,
			       st.queue_depth, st.queue_max, st.reinits,
			       (unsigned long long)st.signs_ok, (unsigned long long)st.signs_failed,
			       (unsigned long long)st.requests_denied);
			/* A client not granted quorum-status sees the token's lines only. */
			if (keyd_client_quorum(c, &q, &qerr) == KEYD_OK)
				cmd_keyd_print_quorum(&q);
			print_caps(&st.caps);
			rc = st.online ? 0 : 1;
		}
	} else if (!strcmp(cmd, "list")) {
		struct keyd_key *keys;
		size_t n;
		if (keyd_client_list(c, &keys, &n, &err) == KEYD_OK) {
			for (size_t i = 0; i < n; i++)
				printf("%s\t%s-%u\t%s\n", keys[i].label,
				       keys[i].type == KEYD_KEY_RSA ? "rsa" : "ec", keys[i].bits,
				       flags_text(keys[i].flags, fl, sizeof(fl)));
			free(keys);
			rc = 0;
		}
	} else if (!strcmp(cmd, "pubkey")) {
		struct keyd_key k;
		if (optind < argc)
			label = argv[optind++];
		if (!label) {
			fprintf(stderr, "hsmca keyd pubkey: which key? give its LABEL\n");
			rc = 2;
		} else if (keyd_client_get_pubkey(c, label, &k, &err) == KEYD_OK) {
			rc = print_pem(&k);
		}
	} else if (!strcmp(cmd, "metrics")) {
		static char text[KEYD_METRICS_MAX + 1];
		if (keyd_client_metrics(c, text, sizeof(text), &err) == KEYD_OK) {
			fputs(text, stdout);
			rc = 0;
		}
	} else if (!strcmp(cmd, "generate")) {
		rc = generate(c, label, type, approval, database);
	} else {
		fprintf(stderr, "hsmca keyd: unknown command \"%s\"\n", cmd);
		usage(stderr);
		rc = 2;
	}
	if (rc == 1 && err.status != KEYD_OK)
		fprintf(stderr, "hsmca keyd %s: %s\n", cmd, err.msg);
	if (optind < argc && rc == 0) {
		fprintf(stderr, "hsmca keyd %s: unexpected argument \"%s\"\n", cmd, argv[optind]);
		rc = 2;
	}
	keyd_client_free(c);
	return rc;
}
