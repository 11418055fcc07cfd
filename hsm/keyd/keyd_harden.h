/*
 * What keyd does to its own process so that the token PIN and the secrets it wraps do not
 * leak through the operating system: no core dumps, not ptrace-able or readable through
 * /proc by its own user, and the PIN kept in locked memory that is wiped when let go.
 */
#ifndef HSMCA_KEYD_HARDEN_H
#define HSMCA_KEYD_HARDEN_H

#include <stddef.h>

/* PR_SET_DUMPABLE 0 and RLIMIT_CORE 0 (soft and hard). Called first thing in main, before
 * the configuration or the PIN is read. 0, or -1 with err filled. */
int keyd_harden_process(char *err, size_t errlen);

/* A buffer of n bytes (at most one page) for a secret: its own anonymous mapping, locked
 * into RAM (mlock: never written to swap), left out of core dumps (MADV_DONTDUMP) and
 * zeroed. NULL with err filled (e.g. RLIMIT_MEMLOCK too small). */
char *keyd_secret_alloc(size_t n, char *err, size_t errlen);
/* Wipe (OPENSSL_cleanse), unlock and unmap a buffer from keyd_secret_alloc; NULL is fine. */
void keyd_secret_free(char *p, size_t n);

#endif
