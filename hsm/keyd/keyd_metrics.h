/* keyd's figures for the "metrics" operation (`hsmca keyd metrics`; docs/keyd.md lists them):
 * the token's state, the queue and connections, requests by operation and result, the
 * signature latency histogram and signatures per key, kept in a metrics registry. Workers
 * count into it from their own threads without a lock. */
#ifndef HSMCA_KEYD_METRICS_H
#define HSMCA_KEYD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "keyd_token.h"

struct keyd_metrics;

/* What the server owns and the metrics read when asked: requests waiting, open connections. */
struct keyd_metrics_readers {
	int64_t (*queue_depth)(void *arg);
	int64_t (*connections)(void *arg);
	void *arg;
};

/* The registry with every family made; queue_max is the configured queue. 0, or -1 with a
 * message in err. */
int keyd_metrics_new(struct keyd_token *tok, int queue_max, const struct keyd_metrics_readers *rd,
                     struct keyd_metrics **out, char *err, size_t errsz);
void keyd_metrics_free(struct keyd_metrics *km);

/* One answered request: op and status as on the wire, label the key it named, us the time from
 * request to answer. Signatures that reached the token go into the histogram and, for keys
 * that exist, into the per-key count. */
void keyd_metrics_request(struct keyd_metrics *km, int op, int status, const char *label, long us);

/* Why keyd refused to sign data of some kind (docs/keyd.md). */
enum keyd_refusal {
	KEYD_REFUSE_KIND = 0,        /* the kind is not granted to the client for the key */
	KEYD_REFUSE_ISSUER = 1,      /* the issuer is not the subject of the key's certificate */
	KEYD_REFUSE_SELF_SIGNED = 2, /* a self-signed certificate that is not the key's own root */
	KEYD_REFUSE_KEY_CERT = 3,    /* the key's configured certificate cannot be read */
	KEYD_REFUSE_MAX_ = 3,
};
const char *keyd_refusal_name(int reason);
/* One refusal to sign data of this kind (enum keyd_kind) for this reason. */
void keyd_metrics_refusal(struct keyd_metrics *km, int kind, int reason);

/* The Prometheus text into out; its length (whole lines, as many as fit in cap). */
size_t keyd_metrics_text(struct keyd_metrics *km, char *out, size_t cap);

#endif
