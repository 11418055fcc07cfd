/*
 * Backup and restore (docs/backup.md): one archive holding a consistent database dump
 * (pg_dump), configuration files, CA certificates and, for SoftHSM, the token store, with a
 * manifest of SHA-256 hashes; encrypted with AES-256-GCM under a fresh data key that keyd
 * wraps with an AES key on the token, so the archive is useless without the HSM.
 *
 * Archive = header | ciphertext | 16-byte GCM tag, where
 *   header    = "HSMCABK1" | u16 label length | label | u16 wrapped length | wrapped data key
 *               | 12-byte nonce                  (all of it the GCM associated data)
 *   plaintext = entries, each u16 name length | name | u64 size | size bytes; the first entry
 *               is "MANIFEST", then exactly the files the manifest lists, in its order.
 * Integers are big-endian. Every parser here is bounded and strict.
 */
#ifndef HSMCA_BACKUP_H
#define HSMCA_BACKUP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keyd_proto.h"

#define BACKUP_MAGIC "HSMCABK1"
#define BACKUP_NAME_MAX 255
#define BACKUP_PATH_MAX 1024
#define BACKUP_MAX_FILES 4096
#define BACKUP_MANIFEST_MAX (1u << 20)
#define BACKUP_MAX_INPUTS 64

struct backup_header {
	char label[KEYD_LABEL_MAX + 1];
	uint8_t wrapped[KEYD_WRAP_BLOB_MAX];
	size_t wrapped_len;
	uint8_t nonce[12];
	size_t len; /* bytes of the header in the file (the associated data) */
};

struct backup_file {
	char name[BACKUP_NAME_MAX + 1]; /* "database.dump", "config/cad.yaml", "token/..." */
	char path[BACKUP_PATH_MAX];     /* where it came from (absolute), "" for the dump */
	uint64_t size;
	unsigned mode; /* permission bits */
	uint8_t sha256[32];
};

struct backup_manifest {
	int format;         /* 1 */
	char created[32];   /* UTC, ISO 8601 */
	int schema_version; /* the database's schema version when it was dumped */
	size_t nfiles;
	struct backup_file *files;
};

/* Parse the header at the start of buf (len bytes available). 0, or -1 with err. */
int backup_header_parse(const uint8_t *buf, size_t len, struct backup_header *h, char *err,
                        size_t errlen);
/* Serialise a header into out (cap bytes); returns its length, or 0 if it does not fit. */
size_t backup_header_write(const struct backup_header *h, uint8_t *out, size_t cap);

/* Parse manifest text strictly (docs/backup.md). 0, or -1 with err naming the line. Free
 * with backup_manifest_free. */
int backup_manifest_parse(const char *text, size_t len, struct backup_manifest *m, char *err,
                          size_t errlen);
/* The manifest's text, malloc'd, NUL-terminated; NULL on failure. */
char *backup_manifest_text(const struct backup_manifest *m, size_t *len);
void backup_manifest_free(struct backup_manifest *m);
/* 1 if name is a relative path of [A-Za-z0-9._-] segments, none of them "." or "..". */
int backup_name_valid(const char *name);

/* An entry header of the container from f: 0 with name and size, 1 at a clean end of file,
 * -1 with err on anything else. */
int backup_entry_read(FILE *f, char *name, size_t namesz, uint64_t *size, char *err, size_t errlen);
int backup_entry_write(FILE *f, const char *name, uint64_t size);

/* Encrypt the container file plain into archive (which must not exist) under a fresh data
 * key wrapped by keyd's AES key `label`; decrypt an archive into plain_out (created, 0600),
 * checking the tag before returning success (plain_out is removed on failure). keyd_socket
 * NULL means $HSMCA_KEYD_SOCKET. */
int backup_seal(const char *plain, const char *archive, const char *label, const char *keyd_socket,
                char *err, size_t errlen);
int backup_unseal(const char *archive, const char *plain_out, const char *keyd_socket,
                  char *label_out, size_t label_sz, char *err, size_t errlen);

struct backup_opts {
	const char *archive;
	const char *key_label;   /* backup: keyd's AES key */
	const char *keyd_socket; /* NULL: $HSMCA_KEYD_SOCKET */
	const char *database;    /* libpq connection string; NULL: libpq's environment */
	const char *pg_bin;      /* folder of pg_dump/pg_restore; NULL: $HSMCA_PG_BIN, else PATH */
	const char *configs[BACKUP_MAX_INPUTS];
	size_t nconfigs;
	const char *certs[BACKUP_MAX_INPUTS];
	size_t ncerts;
	const char *token_dir; /* SoftHSM's token folder; NULL: not included */
	/* restore: write files below this folder (must not exist or be empty) ... */
	const char *into;
	/* ... or back to their original paths, refusing any that exists or does not lie below one
	 * of roots (through the symlinks that exist at restore time) */
	int in_place;
	const char *roots[BACKUP_MAX_INPUTS];
	size_t nroots;
	int skip_database; /* restore: files only */
	/* progress lines go here (NULL: none) */
	FILE *out;
};

/* hsmca backup: dump, collect, hash, write the manifest, seal. 0, or -1 with err. */
int backup_create(const struct backup_opts *o, char *err, size_t errlen);
/* hsmca restore: unseal (tag), check every file against the manifest, then restore the
 * database into an empty one (pg_restore) and write the files. Nothing is written outside
 * a private staging folder until every check passed. 0, or -1 with err. */
int backup_restore(const struct backup_opts *o, char *err, size_t errlen);

#endif
