/*
 * The CA/Browser Forum Baseline Requirements (BR, version 2.x) for CA certificates: roots
 * (BR 7.1.2.1) and subordinate CAs (BR 7.1.2.10, the common CA fields, with 7.1.2.2-7.1.2.6),
 * as named rules. The RFC 5280 linter (lint.h) says whether a certificate is well formed; these
 * rules say whether a public CA audited against the BR could have made it. A private PKI may
 * except a rule, with a reason (the key ceremony's br_exceptions, docs/ceremony.md); nothing
 * here decides that: the caller's except function does, and records it.
 */
#ifndef HSMCA_LINT_BR_H
#define HSMCA_LINT_BR_H

#include <stddef.h>

#include <openssl/x509.h>

enum lint_br_kind {
	LINT_BR_ROOT = 1,    /* self-signed root CA (BR 7.1.2.1) */
	LINT_BR_SUBORDINATE, /* CA certificate signed by another CA (BR 7.1.2.2-7.1.2.6, 7.1.2.10)
	                      */
};

struct lint_br_rule {
	const char *name;    /* br_... */
	const char *section; /* "BR 7.1.2.10.2" */
	const char *level;   /* the BR's word: "MUST", "MUST NOT", "SHOULD", "NOT RECOMMENDED" */
	const char *summary; /* one line, for the docs and findings */
};

/* Every rule, in the order they are checked. */
extern const struct lint_br_rule lint_br_rules[];
extern const size_t lint_br_n_rules;
/* The rule named name, or NULL. */
const struct lint_br_rule *lint_br_rule_find(const char *name);

/* Asked for each finding: 1 when the caller excepts the rule (a private-PKI exception it
 * records), 0 to refuse the certificate. NULL: nothing is excepted. */
typedef int (*lint_br_except_fn)(void *arg, const struct lint_br_rule *rule, const char *finding);

/* Check CA certificate x (to be signed or signed) as a kind. 0 when every rule holds or each
 * one that does not is excepted; -1 with the first refused finding in err: "<rule> (<section>,
 * <level>): <what is wrong>". */
int lint_br_ca(X509 *x, enum lint_br_kind kind, lint_br_except_fn except, void *arg, char *err,
               size_t errsz);

#endif
