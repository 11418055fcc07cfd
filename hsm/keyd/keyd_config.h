/* hsmca-keyd configuration: module, token, PIN file, socket, limits and the ACL. */
#ifndef HSMCA_KEYD_CONFIG_H
#define HSMCA_KEYD_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "keyd_proto.h"
#include "quorum.h"
#include "sandbox.h"

#define KEYD_ACL_MAX_KEYS 256
#define KEYD_ACL_MAX_CLIENTS 256
#define KEYD_PIN_MAX 256

#define KEYD_ACL_MAX_GRANTS 64
#define KEYD_KEYCERT_MAX 256

/* One grant: these keys, these operations and, for sign, these kinds of data. Operation bits
 * are 1 << enum keyd_op ("sign" sets SIGN and SIGN_DATA); kind bits 1 << enum keyd_kind. */
struct keyd_grant {
	int all_keys;
	size_t nkeys;
	char (*keys)[KEYD_LABEL_MAX + 1];
	unsigned ops;
	unsigned kinds;
};

/* One client identity and its grants. */
struct keyd_acl_entry {
	char name[64];
	uid_t uid;
	gid_t gid;
	int has_gid;
	size_t ngrants;
	struct keyd_grant *grants;
	unsigned ops; /* every grant's operations, and hello */
};

/* The certificate keyd checks issuer names against for a key (key_certificates:). */
struct keyd_keycert {
	char label[KEYD_LABEL_MAX + 1];
	char path[PATH_MAX];
};

/* How keyd gets its PIN (activation:): from pin_file at start, or from a quorum of custodians
 * presenting Shamir shares while keyd runs sealed (docs/quorum.md). */
enum keyd_activation { KEYD_ACTIVATION_FILE = 1, KEYD_ACTIVATION_QUORUM = 2 };

/* A custodian or a sealer: a name and the local user it is. */
struct keyd_person {
	char name[QUORUM_NAME_MAX + 1];
	uid_t uid;
};

struct keyd_config {
	char path[PATH_MAX];
	char module[PATH_MAX];
	char token[33]; /* PKCS#11 token labels are at most 32 bytes */
	char pin_file[PATH_MAX];
	char socket[108];
	unsigned socket_mode;
	int workers;      /* PKCS#11 sessions, one per signer thread */
	int queue;        /* queued sign/generate requests before BUSY */
	int max_inflight; /* per connection */
	int max_clients;  /* connections at once */
	int log_requests;
	int health_interval_ms;
	/* RSA keys get CKA_DECRYPT: for tokens that sign CKM_RSA_PKCS with a raw RSA
	 * decryption (tpm2-pkcs11); docs/hsm-compatibility.md. */
	int rsa_sign_by_decrypt;
	struct sandbox_config sandbox; /* user:, group:, seccomp:, module_ipc: */
	size_t nclients;
	struct keyd_acl_entry *clients;
	size_t nkeycerts;
	struct keyd_keycert *keycerts;
	/* activation: and, for quorum, the quorum: section */
	int activation;
	struct quorum_ref quorum;
	size_t ncustodians;
	struct keyd_person custodians[QUORUM_MAX_SHARES];
	int any_custodian; /* any custodian's user may present any custodian's share */
	size_t nsealers;
	struct keyd_person sealers[QUORUM_MAX_SHARES];
};

/* Parse a config file; errors name file, line and field. */
int keyd_config_load(const char *path, struct keyd_config *cfg, char *err, size_t errlen);
int keyd_config_parse(const char *name, const void *buf, size_t len, struct keyd_config *cfg,
                      char *err, size_t errlen);
void keyd_config_free(struct keyd_config *cfg);

/* The ACL entry for a peer: the first entry whose uid (and gid, if given) match. */
const struct keyd_acl_entry *keyd_acl_find(const struct keyd_config *cfg, uid_t uid, gid_t gid);
/* Whether any grant has the operation; any grant the key; one grant both. */
int keyd_acl_op_allowed(const struct keyd_acl_entry *e, int op);
int keyd_acl_key_allowed(const struct keyd_acl_entry *e, const char *label);
int keyd_acl_allowed(const struct keyd_acl_entry *e, const char *label, int op);
/* The kinds (bits 1 << enum keyd_kind) the grants that give sign on this key allow. */
unsigned keyd_acl_kinds(const struct keyd_acl_entry *e, const char *label);
/* The configured certificate file of a key, or NULL. */
const char *keyd_keycert_path(const struct keyd_config *cfg, const char *label);

/* The custodian of that name / the first custodian or sealer that is this uid, or NULL. */
const struct keyd_person *keyd_custodian_named(const struct keyd_config *cfg, const char *name);
const struct keyd_person *keyd_custodian_of(const struct keyd_config *cfg, uid_t uid);
const struct keyd_person *keyd_sealer_of(const struct keyd_config *cfg, uid_t uid);

/* Read the PIN file, refusing one that is not a regular file owned by us with
 * no group or other permissions. The PIN is never logged. */
int keyd_pin_read(const char *path, char *pin, size_t pinsz, char *err, size_t errlen);

#endif
