/* c-ares plumbing shared by name resolution and dns-01 (acmeval_net.c). */
#ifndef HSMCA_ACMEVAL_DNS_H
#define HSMCA_ACMEVAL_DNS_H

#include <stddef.h>

#include <ares.h>

#include "acmevald.h"

/* A channel asking cfg's resolver (or the system's), each try waiting about timeout_ms / 2,
 * no search domains: 0, or -1 with err. */
int acmeval_dns_channel(const struct acmeval_config *cfg, long timeout_ms, ares_channel *ch,
                        char *err, size_t errlen);
/* Drive ch until its queries are answered or timeout_ms passes (then they are cancelled). */
void acmeval_dns_wait(ares_channel ch, long timeout_ms);

#endif
