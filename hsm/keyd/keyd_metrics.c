/* keyd's figures in a metrics registry (keyd_metrics.h). */
#include "keyd_metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "keyd_proto.h"
#include "metrics.h"

/* Signature latency buckets (seconds). */
static const double sign_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,   0.025,   0.05,   0.1,   0.25,   1};
/* Two series (ok, failed) for each of this many keys. */
#define KEYS_MAX 256

struct keyd_metrics {
	struct metrics *m;
	struct metrics_family *requests, *signatures;
	struct metrics_series *sign_seconds;
	struct metrics_family *refusals;
	/* requests_total's series by op and status, made on first use: only answers that were
	 * given appear. */
	_Atomic(struct metrics_series *) req[KEYD_OP_MAX_ + 1][KEYD_E_MAX_ + 1];
};

static int64_t token_online(void *tok)
{
	return keyd_token_online(tok);
}

static int64_t token_reinits(void *tok)
{
	return keyd_token_reinits(tok);
}

static int64_t token_keys(void *tok)
{
	return (int64_t)keyd_token_nkeys(tok);
}

int keyd_metrics_new(struct keyd_token *tok, int queue_max, const struct keyd_metrics_readers *rd,
                     struct keyd_metrics **out, char *err, size_t errsz)
{
	struct keyd_metrics *km = calloc(1, sizeof(*km));
	struct metrics_family *f;
	struct metrics *m;

	*out = NULL;
	if (!km || metrics_new(&km->m) != 0) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	m = km->m;
	if (metrics_gauge(m, "hsmca_keyd_token_online",
	                  "1 while the token is usable, 0 while keyd recovers it", "token", 1, &f,
	                  err, errsz))
		goto fail;
	metrics_bind(metrics_get(f, keyd_token_label(tok)), token_online, tok);
	if (metrics_counter(m, "hsmca_keyd_token_reinitialisations_total",
	                    "module re-initialisations after device failures", NULL, 1, &f, err,
	                    errsz))
		goto fail;
	metrics_bind(metrics_get(f), token_reinits, tok);
	if (metrics_gauge(m, "hsmca_keyd_keys", "signing keys on the token", NULL, 1, &f, err,
	                  errsz))
		goto fail;
	metrics_bind(metrics_get(f), token_keys, tok);
	if (metrics_gauge(m, "hsmca_keyd_queue_depth",
	                  "requests waiting for a signer or the generator", NULL, 1, &f, err,
	                  errsz))
		goto fail;
	metrics_bind(metrics_get(f), rd->queue_depth, rd->arg);
	if (metrics_gauge(m, "hsmca_keyd_queue_max", "queued requests before busy", NULL, 1, &f,
	                  err, errsz))
		goto fail;
	metrics_set(metrics_get(f), queue_max);
	if (metrics_gauge(m, "hsmca_keyd_connections", "open client connections", NULL, 1, &f, err,
	                  errsz))
		goto fail;
	metrics_bind(metrics_get(f), rd->connections, rd->arg);
	if (metrics_counter(m, "hsmca_keyd_requests_total",
	                    "answered requests by operation and result", "op,result",
	                    (KEYD_OP_MAX_ + 1) * (KEYD_E_MAX_ + 1), &km->requests, err, errsz))
		goto fail;
	if (metrics_histogram(m, "hsmca_keyd_sign_duration_seconds",
	                      "time from request to answer of signatures", NULL, 1, sign_bounds,
	                      sizeof(sign_bounds) / sizeof(sign_bounds[0]), &f, err, errsz))
		goto fail;
	km->sign_seconds = metrics_get(f);
	if (metrics_counter(m, "hsmca_keyd_signatures_total", "signatures per key and result",
	                    "key,result", 2 * KEYS_MAX, &km->signatures, err, errsz))
		goto fail;
	if (metrics_counter(m, "hsmca_keyd_sign_refusals_total",
	                    "data keyd refused to sign, by kind and reason", "kind,reason",
	                    (KEYD_KIND_MAX_ + 1) * (KEYD_REFUSE_MAX_ + 1), &km->refusals, err,
	                    errsz))
		goto fail;
	*out = km;
	return 0;
fail:
	keyd_metrics_free(km);
	return -1;
}

void keyd_metrics_free(struct keyd_metrics *km)
{
	if (!km)
		return;
	metrics_free(km->m);
	free(km);
}

void keyd_metrics_request(struct keyd_metrics *km, int op, int status, const char *label, long us)
{
	struct metrics_series *ok, *failed;

	if (op >= 1 && op <= KEYD_OP_MAX_ && status >= 0 && status <= KEYD_E_MAX_) {
		struct metrics_series *s =
		    atomic_load_explicit(&km->req[op][status], memory_order_relaxed);
		if (!s) {
			s = metrics_get(km->requests, keyd_op_name(op), keyd_status_name(status));
			atomic_store_explicit(&km->req[op][status], s, memory_order_relaxed);
		}
		metrics_inc(s);
	}
	if ((op != KEYD_OP_SIGN && op != KEYD_OP_SIGN_DATA) || status == KEYD_E_DENIED ||
	    status == KEYD_E_MALFORMED)
		return;
	metrics_observe(km->sign_seconds, (double)us / 1e6);
	/* Both results appear once a key signed or failed; a label that names no key gets no
	 * series of its own, unless it was a key before. */
	if (status == KEYD_E_NO_KEY) {
		metrics_inc(metrics_find(km->signatures, label, "failed"));
		return;
	}
	ok = metrics_get(km->signatures, label, "ok");
	failed = metrics_get(km->signatures, label, "failed");
	metrics_inc(status == KEYD_OK ? ok : failed);
}

const char *keyd_refusal_name(int reason)
{
	static const char *const names[] = {"kind-not-granted", "wrong-issuer",
	                                    "self-signed-not-allowed", "key-certificate-unusable"};
	return reason >= 0 && reason <= KEYD_REFUSE_MAX_ ? names[reason] : "unknown";
}

void keyd_metrics_refusal(struct keyd_metrics *km, int kind, int reason)
{
	metrics_inc(metrics_get(km->refusals, keyd_kind_name(kind), keyd_refusal_name(reason)));
}

size_t keyd_metrics_text(struct keyd_metrics *km, char *out, size_t cap)
{
	size_t len;

	metrics_write(km->m, out, cap, &len); /* a cut text still holds whole lines */
	return len;
}
