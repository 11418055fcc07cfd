#include "keyd_server.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "daemon.h"
#include "keyd_frames.h"
#include "keyd_harden.h"
#include "keyd_kind.h"
#include "keyd_metrics.h"
#include "log.h"

/* Stop reading from a peer whose unread answers pile up beyond this. */
#define OUTPUT_HIGH (1u << 20)

/* A connection reads into a buffer of its own this big; a frame that does not fit (streamed
 * data, large requests) moves it to one of 4 + KEYD_FRAME_MAX bytes, made once. */
#define IN_SMALL 8192

struct worker;

/* SIGN_DATA data arriving in several frames on one connection (docs/keyd-protocol.md). */
struct kstream {
	int open;
	int status; /* KEYD_OK, or the refusal every further frame is answered with */
	char msg[KEYD_MSG_MAX + 1];
	char label[KEYD_LABEL_MAX + 1];
	uint8_t alg, hash;
	uint16_t salt_len;
	int kind;
	uint64_t total, got; /* total 0: DIGEST, no length to hold it to */
	EVP_MD_CTX *md;
};

/*
 * A connection's input is read by keyd itself, one recv per readable wake-up straight into
 * in[] (libevent's bufferevent would ask FIONREAD and then readv each time); its output goes
 * through the bufferevent, which is used for writing only: an answer is sent at once when
 * nothing is queued (send_frame), and only what the socket does not take waits there.
 */
struct kconn {
	struct worker *w;
	struct bufferevent *bev; /* output only: EV_READ is never enabled on it */
	struct event *ev_read;
	int read_paused; /* a peer that does not read its answers is not read either */
	uint8_t *in;     /* in_small, or in_big once a frame needed it */
	size_t in_len, in_cap;
	uint8_t *in_big;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const struct keyd_acl_entry *acl;
	/* activation: quorum: the custodian and the sealer this uid is, if any */
	const struct keyd_person *custodian, *sealer;
	int version; /* the protocol version hello agreed (the newest until then) */
	unsigned inflight;
	int refs;    /* the connection itself plus its queued jobs */
	int closed;  /* the socket is gone; finished jobs are dropped */
	int closing; /* hang up once the pending output is written */
	struct kstream st;
	/* The time from a signature's answer to this peer's next request (moving average),
	 * and when the last answer went: see wait_next. */
	int64_t gap_us;
	int64_t answered_us;
	struct kconn *prev, *next;
	uint8_t in_small[IN_SMALL];
};

struct job {
	struct kconn *conn;
	struct keyd_req req;
	struct timespec t0;
	int status;
	char msg[KEYD_MSG_MAX + 1];
	uint8_t sig[KEYD_SIG_MAX];
	size_t sig_len;
	struct keyd_key_copy key;
	struct job *next;
};

struct jobq {
	struct job *head, *tail;
	unsigned n;
};

/* A new connection on its way from the acceptor to a worker. */
struct handoff {
	evutil_socket_t fd;
	struct ucred cred;
	struct handoff *next;
};

/*
 * A worker owns its connections, its event loop and one PKCS#11 session:
 * a request is read, signed and answered on the same thread, so a signature
 * costs the client one wake-up of keyd and keyd one of the client.
 * Everything in here but the handoff and done lists is touched by the
 * worker's thread only.
 */
struct worker {
	struct keyd_server *s;
	int index;
	pthread_t thread;
	int started;
	struct event_base *base;
	struct event *ev_handoff, *ev_process, *ev_done, *ev_stop;
	pthread_mutex_t lock; /* guards handoff and done */
	struct handoff *handoff;
	struct jobq done;    /* generate results from the generator thread */
	struct jobq pending; /* signatures parsed but not made yet */
	unsigned queue_max;  /* this worker's share of cfg->queue */
	atomic_uint depth;
	struct kconn *conns;
	struct jobq spare; /* finished sign jobs kept for the next ones: no malloc per signature */
	uint8_t out[4 + KEYD_FRAME_MAX];
};

struct keyd_server {
	const struct keyd_config *cfg;
	struct keyd_token *tok;
	struct event_base *base; /* acceptor, health (and the daemon's signal events) */
	struct evconnlistener *lis;
	struct event *ev_health;
	int fd;

	struct worker *workers;
	int nworkers;
	unsigned next_worker;
	atomic_uint nconns;

	/* Key generation takes seconds: one thread, off the workers' loops. */
	pthread_t generator;
	int generator_started;
	pthread_mutex_t glock;
	pthread_cond_t gcond;
	struct jobq gen;
	int stopping;

	atomic_ullong signs_ok, signs_failed, denied;
	struct keyd_metrics *metrics;
	/* Workers inside the token's signing call now, and the CPUs this process may run on:
	 * wait_next does not spin while the others' signing already takes every CPU. */
	atomic_int signing;
	int ncpu;

	/* The subjects of the keys' certificates (key_certificates:), read when first needed
	 * and again whenever the file changes. */
	pthread_mutex_t certlock;
	struct keycert_cache *certs;

	/* activation: quorum: the shares presented while sealed, in locked memory, wiped once
	 * combined, on seal and at exit (docs/quorum.md). */
	pthread_mutex_t qlock;
	struct quorum_pool *pool;
	char *pin; /* the combined PIN, for as long as the login takes (KEYD_PIN_MAX, locked) */
};

struct keycert_cache {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int valid;
	uint8_t subject[4096];
	size_t subject_len;
};

static void q_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static struct job *q_pop(struct jobq *q)
{
	struct job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
	}
	return j;
}

/* A job for a signature: taken from the worker's spares when there is one. */
static struct job *job_get(struct worker *w)
{
	struct job *j = q_pop(&w->spare);

	if (j) {
		memset(j, 0, sizeof(*j));
		return j;
	}
	return calloc(1, sizeof(*j));
}

#define SPARE_MAX 16

static void job_put(struct worker *w, struct job *j)
{
	if (w->spare.n < SPARE_MAX)
		q_push(&w->spare, j);
	else
		free(j);
}

static long elapsed_us(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* The CPUs this process may run on (its affinity mask; the online count if that fails). */
static int cpus_available(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n < 4096 ? (int)n : 1;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- connections ---- */

static void conn_unref(struct kconn *c)
{
	if (--c->refs > 0)
		return;
	EVP_MD_CTX_free(c->st.md);
	/* What was read and not yet taken may be part of a secret (wrap, unwrap, unseal). */
	explicit_bzero(c->in, c->in_len);
	free(c->in_big);
	free(c);
}

static void conn_close(struct kconn *c, const char *why)
{
	struct worker *w = c->w;

	if (c->closed)
		return;
	c->closed = 1;
	if (why)
		log_info("connection closed: peer uid=%u pid=%d: %s", (unsigned)c->uid, (int)c->pid,
		         why);
	event_free(c->ev_read);
	c->ev_read = NULL;
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub(&w->s->nconns, 1);
	conn_unref(c);
}

static void read_pause(struct kconn *c)
{
	if (!c->read_paused && c->ev_read) {
		event_del(c->ev_read);
		c->read_paused = 1;
	}
}

static void read_resume(struct kconn *c)
{
	if (c->read_paused && c->ev_read && event_add(c->ev_read, NULL) == 0)
		c->read_paused = 0;
}

static void send_frame(struct kconn *c, const struct keyd_wbuf *wb)
{
	struct evbuffer *out;

	if (c->closed || c->closing || wb->err)
		return;
	out = bufferevent_get_output(c->bev);
	/* Nothing queued: write now rather than on the next loop turn, which
	 * would cost four more system calls per answer. The worker owns the
	 * socket, so this cannot interleave with libevent's own writes. */
	if (evbuffer_get_length(out) == 0) {
		ssize_t n =
		    send(bufferevent_getfd(c->bev), wb->p, wb->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == (ssize_t)wb->len)
			return;
		if (n > 0) {
			evbuffer_add(out, wb->p + n, wb->len - (size_t)n);
			return;
		}
	}
	evbuffer_add(out, wb->p, wb->len);
	/* A peer that does not read its answers stops being read. */
	if (evbuffer_get_length(out) > OUTPUT_HIGH)
		read_pause(c);
}

static void log_request(struct keyd_server *s, struct kconn *c, const struct keyd_req *r,
                        int status, const struct timespec *t0, const char *msg)
{
	keyd_metrics_request(s->metrics, r->op, status, r->label, elapsed_us(t0));
	if (!s->cfg->log_requests && status == KEYD_OK)
		return;
	if (r->op == KEYD_OP_SIGN || r->op == KEYD_OP_SIGN_DATA)
		log_info("request peer_uid=%u peer_pid=%d client=%s op=%s key=%s alg=%s-%s "
		         "result=%s latency_us=%ld%s%s",
		         (unsigned)c->uid, (int)c->pid, c->acl ? c->acl->name : "-",
		         keyd_op_name(r->op), r->label, keyd_alg_name(r->alg),
		         keyd_hash_name(r->hash), keyd_status_name(status), elapsed_us(t0),
		         status ? " reason=" : "", status ? msg : "");
	else
		log_info("request peer_uid=%u peer_pid=%d client=%s op=%s key=%s result=%s "
		         "latency_us=%ld%s%s",
		         (unsigned)c->uid, (int)c->pid, c->acl ? c->acl->name : "-",
		         keyd_op_name(r->op), r->label[0] ? r->label : "-",
		         keyd_status_name(status), elapsed_us(t0), status ? " reason=" : "",
		         status ? msg : "");
}

static void reply_error(struct kconn *c, const struct keyd_req *r, int status, const char *msg,
                        const struct timespec *t0)
{
	struct worker *w = c->w;
	struct keyd_wbuf wb = {w->out, 0, sizeof(w->out), 0};

	if (status == KEYD_E_DENIED)
		atomic_fetch_add(&w->s->denied, 1);
	keyd_resp_error(&wb, r->op, r->id, (uint8_t)status, msg);
	/* Logged before the client can see the answer: whoever is told "denied" finds it in the
	 * log already. */
	log_request(w->s, c, r, status, t0, msg);
	send_frame(c, &wb);
}

static void put_key(struct keyd_wbuf *wb, const struct keyd_key_copy *k)
{
	struct keyd_keyinfo ki = {.type = k->type,
	                          .bits = k->bits,
	                          .flags = k->flags,
	                          .spki = k->spki,
	                          .spki_len = k->spki_len};

	memcpy(ki.label, k->label, sizeof(ki.label));
	keyd_put_keyinfo(wb, &ki);
}

static unsigned queue_depth(struct keyd_server *s)
{
	unsigned n = 0;

	for (int i = 0; i < s->nworkers; i++)
		n += atomic_load(&s->workers[i].depth);
	pthread_mutex_lock(&s->glock);
	n += s->gen.n;
	pthread_mutex_unlock(&s->glock);
	return n;
}

/* Read by the metrics when asked. */
static int64_t metrics_queue_depth(void *s)
{
	return queue_depth(s);
}

static int64_t metrics_connections(void *arg)
{
	struct keyd_server *s = arg;

	return atomic_load(&s->nconns);
}

static void reply_inline(struct kconn *c, const struct keyd_req *r, const struct timespec *t0)
{
	struct worker *w = c->w;
	struct keyd_server *s = w->s;
	struct keyd_wbuf wb = {w->out, 0, sizeof(w->out), 0};
	struct keyd_key_copy k;
	char msg[KEYD_MSG_MAX];
	int krc;

	switch (r->op) {
	case KEYD_OP_HELLO:
		if (r->vmin > KEYD_PROTO_VERSION || r->vmax < KEYD_PROTO_VERSION_MIN) {
			snprintf(msg, sizeof(msg), "this keyd speaks protocols %d to %d only",
			         KEYD_PROTO_VERSION_MIN, KEYD_PROTO_VERSION);
			reply_error(c, r, KEYD_E_VERSION, msg, t0);
			return;
		}
		c->version = r->vmax < KEYD_PROTO_VERSION ? r->vmax : KEYD_PROTO_VERSION;
		keyd_resp_begin(&wb, r->op, r->id, KEYD_OK);
		keyd_put_u16(&wb, (uint16_t)c->version);
		keyd_put_str(&wb, "hsmca-keyd");
		break;
	case KEYD_OP_LIST_KEYS: {
		size_t n = keyd_token_nkeys(s->tok);
		size_t at;
		uint16_t count = 0;
		keyd_resp_begin(&wb, r->op, r->id, KEYD_OK);
		at = wb.len;
		keyd_put_u16(&wb, 0);
		for (size_t i = 0; i < n && count < UINT16_MAX; i++) {
			size_t before = wb.len;
			if (keyd_token_key_at(s->tok, i, &k) != KEYD_OK ||
			    !keyd_acl_key_allowed(c->acl, k.label))
				continue;
			put_key(&wb, &k);
			if (wb.err) { /* the frame is full: list what fits */
				wb.err = 0;
				wb.len = before;
				break;
			}
			count++;
		}
		wb.p[at] = (uint8_t)(count >> 8);
		wb.p[at + 1] = (uint8_t)count;
		break;
	}
	case KEYD_OP_GET_PUBKEY:
		if ((krc = keyd_token_key(s->tok, r->label, &k)) != KEYD_OK) {
			if (krc == KEYD_E_OFFLINE)
				snprintf(msg, sizeof(msg), "%s", keyd_token_offline_why(s->tok));
			else
				snprintf(msg, sizeof(msg), "no key labelled %s", r->label);
			reply_error(c, r, krc, msg, t0);
			return;
		}
		keyd_resp_begin(&wb, r->op, r->id, KEYD_OK);
		put_key(&wb, &k);
		break;
	case KEYD_OP_STATUS: {
		struct keyd_token_status st = {0};
		st.queue_depth = queue_depth(s);
		st.online = (uint8_t)keyd_token_online(s->tok);
		snprintf(st.token, sizeof(st.token), "%s", keyd_token_label(s->tok));
		st.keys = (uint32_t)keyd_token_nkeys(s->tok);
		st.workers = (uint32_t)s->nworkers;
		st.queue_max = (uint32_t)s->cfg->queue;
		st.reinits = keyd_token_reinits(s->tok);
		st.signs_ok = atomic_load(&s->signs_ok);
		st.signs_failed = atomic_load(&s->signs_failed);
		st.requests_denied = atomic_load(&s->denied);
		keyd_resp_begin(&wb, r->op, r->id, KEYD_OK);
		keyd_put_status(&wb, &st);
		if (c->version >= 3) { /* versions 1 and 2 end the record here */
			keyd_token_caps(s->tok, &st.caps);
			keyd_put_caps(&wb, &st.caps);
		}
		break;
	}
	case KEYD_OP_METRICS: {
		static _Thread_local char text[KEYD_METRICS_MAX];
		size_t n = keyd_metrics_text(s->metrics, text, sizeof(text));
		keyd_resp_begin(&wb, r->op, r->id, KEYD_OK);
		keyd_put_blob(&wb, text, n);
		break;
	}
	}
	if (keyd_resp_end(&wb) != 0) {
		reply_error(c, r, KEYD_E_INTERNAL, "answer does not fit a frame", t0);
		return;
	}
	send_frame(c, &wb);
	log_request(s, c, r, KEYD_OK, t0, "");
}

static int sign_data_ack(struct kconn *c, const struct keyd_req *r);

static void enqueue(struct kconn *c, const struct keyd_req *r, const struct timespec *t0)
{
	struct worker *w = c->w;
	struct keyd_server *s = w->s;
	struct job *j;
	int full;

	if (c->inflight >= (unsigned)s->cfg->max_inflight) {
		reply_error(c, r, KEYD_E_BUSY, "too many requests in flight on this connection",
		            t0);
		return;
	}
	if (!keyd_token_online(s->tok)) {
		reply_error(c, r, KEYD_E_OFFLINE, keyd_token_offline_why(s->tok), t0);
		return;
	}
	if ((r->op == KEYD_OP_SIGN || r->op == KEYD_OP_SIGN_DATA) && w->pending.n >= w->queue_max) {
		reply_error(c, r, KEYD_E_BUSY, "signing queue full", t0);
		return;
	}
	j = job_get(w);
	if (!j) {
		reply_error(c, r, KEYD_E_INTERNAL, "out of memory", t0);
		return;
	}
	j->conn = c;
	j->req = *r;
	j->t0 = *t0;
	j->req.sdata = NULL; /* it pointed into the frame; the digest is what is signed */
	j->req.sdata_len = 0;
	if (r->op == KEYD_OP_SIGN || r->op == KEYD_OP_SIGN_DATA) {
		q_push(&w->pending, j);
		atomic_store(&w->depth, w->pending.n);
		event_active(w->ev_process, EV_READ, 0);
	} else {
		pthread_mutex_lock(&s->glock);
		full = s->gen.n >= (unsigned)s->cfg->queue;
		if (!full) {
			q_push(&s->gen, j);
			pthread_cond_signal(&s->gcond);
		}
		pthread_mutex_unlock(&s->glock);
		if (full) {
			job_put(w, j);
			reply_error(c, r, KEYD_E_BUSY, "generation queue full", t0);
			return;
		}
	}
	c->refs++;
	c->inflight++;
}

/* ---- SIGN_DATA: what is signed, and whether this client may have it signed ---- */

/* The subject of the key's configured certificate: 1 with it in subj, 0 when the key has no
 * certificate (none configured, or the file does not exist yet: before the root ceremony),
 * -1 with msg when the file is there but unusable. */
static int key_cert_subject(struct keyd_server *s, const char *label, uint8_t *subj, size_t *len,
                            char *msg, size_t msglen)
{
	const struct keyd_config *cfg = s->cfg;
	struct keycert_cache *kc = NULL;
	const char *path = NULL;
	struct stat st;
	int rc = -1;

	for (size_t i = 0; i < cfg->nkeycerts; i++)
		if (strcmp(cfg->keycerts[i].label, label) == 0) {
			kc = &s->certs[i];
			path = cfg->keycerts[i].path;
		}
	if (!path)
		return 0;
	pthread_mutex_lock(&s->certlock);
	if (stat(path, &st) != 0) {
		if (errno == ENOENT) {
			kc->valid = 0;
			rc = 0;
		} else {
			snprintf(msg, msglen, "key %s: certificate %s: %s", label, path,
			         strerror(errno));
		}
		goto out;
	}
	if (!kc->valid || kc->dev != st.st_dev || kc->ino != st.st_ino || kc->size != st.st_size ||
	    kc->mtime.tv_sec != st.st_mtim.tv_sec || kc->mtime.tv_nsec != st.st_mtim.tv_nsec) {
		BIO *b = st.st_size <= 65536 ? BIO_new_file(path, "rb") : NULL;
		X509 *x = NULL;
		int n;
		kc->valid = 0;
		if (b) {
			x = PEM_read_bio_X509(b, NULL, NULL, NULL);
			if (!x && BIO_reset(b) == 0)
				x = d2i_X509_bio(b, NULL);
			BIO_free(b);
		}
		n = x ? i2d_X509_NAME(X509_get_subject_name(x), NULL) : -1;
		if (n <= 0 || (size_t)n > sizeof(kc->subject)) {
			X509_free(x);
			snprintf(msg, msglen,
			         "key %s: certificate %s is not a readable certificate", label,
			         path);
			goto out;
		}
		{
			uint8_t *p = kc->subject;
			i2d_X509_NAME(X509_get_subject_name(x), &p);
		}
		X509_free(x);
		kc->subject_len = (size_t)n;
		kc->dev = st.st_dev;
		kc->ino = st.st_ino;
		kc->size = st.st_size;
		kc->mtime = st.st_mtim;
		kc->valid = 1;
	}
	memcpy(subj, kc->subject, kc->subject_len);
	*len = kc->subject_len;
	rc = 1;
out:
	pthread_mutex_unlock(&s->certlock);
	return rc;
}

/* Whether this client may have data of kind ki signed with key label: KEYD_OK, or a status
 * with the reason in msg and *reason for the metrics. */
static int check_kind(struct keyd_server *s, struct kconn *c, const char *label,
                      const struct keyd_kind_info *ki, int *reason, char *msg, size_t msglen)
{
	unsigned kinds = keyd_acl_kinds(c->acl, label);
	static _Thread_local uint8_t subj[4096];
	size_t subj_len = 0;
	int have;

	*reason = KEYD_REFUSE_KIND;
	/* digest signs any hash, so it is every kind, unchecked: a client holding it could send
	 * the data's digest through SIGN anyway. */
	if (kinds & (1u << KEYD_KIND_DIGEST))
		return KEYD_OK;
	if (!(kinds & (1u << ki->kind))) {
		if (ki->kind == KEYD_KIND_DIGEST)
			snprintf(msg, msglen,
			         "kind digest not granted to client %s for key %s: the data is no "
			         "structure keyd knows (%s)",
			         c->acl->name, label, ki->why);
		else
			snprintf(msg, msglen, "kind %s not granted to client %s for key %s",
			         keyd_kind_name(ki->kind), c->acl->name, label);
		return KEYD_E_DENIED;
	}
	if (ki->kind != KEYD_KIND_CERTIFICATE && ki->kind != KEYD_KIND_CA_CERTIFICATE &&
	    ki->kind != KEYD_KIND_CRL)
		return KEYD_OK;
	have = key_cert_subject(s, label, subj, &subj_len, msg, msglen);
	if (have < 0) {
		*reason = KEYD_REFUSE_KEY_CERT;
		return KEYD_E_DENIED;
	}
	if (ki->kind != KEYD_KIND_CRL && ki->issuer_len == ki->subject_len &&
	    memcmp(ki->issuer, ki->subject, ki->issuer_len) == 0) {
		/* Self-signed: only a CA's own root, made before the key has a certificate. */
		struct keyd_key_copy k;
		*reason = KEYD_REFUSE_SELF_SIGNED;
		if (ki->kind != KEYD_KIND_CA_CERTIFICATE) {
			snprintf(msg, msglen,
			         "a self-signed certificate must be a CA certificate (cA TRUE)");
			return KEYD_E_DENIED;
		}
		if (have) {
			snprintf(msg, msglen,
			         "key %s already has its certificate: keyd signs no second "
			         "self-signed certificate with it",
			         label);
			return KEYD_E_DENIED;
		}
		if (keyd_token_key(s->tok, label, &k) != KEYD_OK) {
			snprintf(msg, msglen, "no key labelled %s", label);
			return KEYD_E_NO_KEY;
		}
		if (k.spki_len != ki->spki_len || memcmp(k.spki, ki->spki, k.spki_len) != 0) {
			snprintf(msg, msglen,
			         "a self-signed certificate must carry key %s's own public key",
			         label);
			return KEYD_E_DENIED;
		}
		return KEYD_OK;
	}
	if (have && (ki->issuer_len != subj_len || memcmp(ki->issuer, subj, subj_len) != 0)) {
		*reason = KEYD_REFUSE_ISSUER;
		snprintf(msg, msglen, "the %s's issuer is not the subject of key %s's certificate",
		         ki->kind == KEYD_KIND_CRL ? "CRL" : "certificate", label);
		return KEYD_E_DENIED;
	}
	return KEYD_OK;
}

static void stream_reset(struct kconn *c)
{
	EVP_MD_CTX *md = c->st.md;

	memset(&c->st, 0, sizeof(c->st));
	c->st.md = md;
}

/* A refused first frame: answered now; if more frames follow, each is answered alike. */
static int sign_data_refuse(struct kconn *c, const struct keyd_req *r, int status, const char *msg,
                            const struct timespec *t0)
{
	reply_error(c, r, status, msg, t0);
	if (r->op == KEYD_OP_SIGN_DATA && (r->flags & KEYD_SD_MORE)) {
		stream_reset(c);
		c->st.open = 1;
		c->st.status = status;
		snprintf(c->st.msg, sizeof(c->st.msg), "%s", msg);
		snprintf(c->st.label, sizeof(c->st.label), "%s", r->label);
		c->st.alg = r->alg;
		c->st.hash = r->hash;
		c->st.salt_len = r->salt_len;
	}
	return 0;
}

static const EVP_MD *stream_md(int hash)
{
	return hash == KEYD_HASH_SHA256   ? EVP_sha256()
	       : hash == KEYD_HASH_SHA384 ? EVP_sha384()
	                                  : EVP_sha512();
}

/* The last frame is in: the digest goes to the signers' queue as a SIGN would. */
static int sign_data_finish(struct kconn *c, struct keyd_req *r, const struct timespec *t0)
{
	unsigned int dlen = 0;

	if (c->st.total && c->st.got != c->st.total) {
		char msg[KEYD_MSG_MAX];
		snprintf(msg, sizeof(msg), "sign-data: %llu bytes of a %llu-byte structure",
		         (unsigned long long)c->st.got, (unsigned long long)c->st.total);
		stream_reset(c);
		reply_error(c, r, KEYD_E_MALFORMED, msg, t0);
		return -1;
	}
	if (!EVP_DigestFinal_ex(c->st.md, r->digest, &dlen)) {
		stream_reset(c);
		reply_error(c, r, KEYD_E_INTERNAL, "cannot finish the digest", t0);
		return 0;
	}
	r->digest_len = dlen;
	stream_reset(c);
	enqueue(c, r, t0);
	return 0;
}

static int sign_data_first(struct kconn *c, struct keyd_req *r, const struct timespec *t0)
{
	struct keyd_server *s = c->w->s;
	struct keyd_kind_info ki;
	char msg[KEYD_MSG_MAX];
	int status, reason;

	keyd_kind_read(r->sdata, r->sdata_len, !(r->flags & KEYD_SD_MORE), &ki);
	status = check_kind(s, c, r->label, &ki, &reason, msg, sizeof(msg));
	if (status != KEYD_OK) {
		keyd_metrics_refusal(s->metrics, ki.kind, reason);
		return sign_data_refuse(c, r, status, msg, t0);
	}
	if (!c->st.md && !(c->st.md = EVP_MD_CTX_new()))
		return sign_data_refuse(c, r, KEYD_E_INTERNAL, "out of memory", t0);
	stream_reset(c);
	if (!EVP_DigestInit_ex(c->st.md, stream_md(r->hash), NULL) ||
	    !EVP_DigestUpdate(c->st.md, r->sdata, r->sdata_len))
		return sign_data_refuse(c, r, KEYD_E_INTERNAL, "cannot hash the data", t0);
	c->st.kind = ki.kind;
	c->st.total = ki.total;
	c->st.got = r->sdata_len;
	if (!(r->flags & KEYD_SD_MORE))
		return sign_data_finish(c, r, t0);
	c->st.open = 1;
	snprintf(c->st.label, sizeof(c->st.label), "%s", r->label);
	c->st.alg = r->alg;
	c->st.hash = r->hash;
	c->st.salt_len = r->salt_len;
	return sign_data_ack(c, r);
}

/* A frame taken in, more to come: an empty answer. */
static int sign_data_ack(struct kconn *c, const struct keyd_req *r)
{
	struct worker *w = c->w;
	struct keyd_wbuf wb = {w->out, 0, sizeof(w->out), 0};

	keyd_resp_begin(&wb, r->op, r->id, KEYD_OK);
	keyd_put_blob(&wb, "", 0);
	keyd_resp_end(&wb);
	send_frame(c, &wb);
	return 0;
}

/* A frame that continues open data. */
static int sign_data_more(struct kconn *c, struct keyd_req *r, const struct timespec *t0)
{
	const char *bad = NULL;

	if (!c->st.open)
		bad = "a continuation with no data open";
	else if (strcmp(c->st.label, r->label) != 0 || c->st.alg != r->alg ||
	         c->st.hash != r->hash || c->st.salt_len != r->salt_len)
		bad = "a continuation for another key or algorithm";
	else if (c->st.status == KEYD_OK && c->st.total && r->sdata_len > c->st.total - c->st.got)
		bad = "more data than the structure's length";
	if (bad) {
		char msg[KEYD_MSG_MAX];
		snprintf(msg, sizeof(msg), "sign-data: %s", bad);
		stream_reset(c);
		reply_error(c, r, KEYD_E_MALFORMED, msg, t0);
		return -1;
	}
	if (c->st.status != KEYD_OK) {
		/* Refused data: its first frame was logged and counted; the rest only answered. */
		struct keyd_wbuf wb = {c->w->out, 0, sizeof(c->w->out), 0};
		keyd_resp_error(&wb, r->op, r->id, (uint8_t)c->st.status, c->st.msg);
		if (!(r->flags & KEYD_SD_MORE))
			stream_reset(c);
		send_frame(c, &wb);
		return 0;
	}
	if (!EVP_DigestUpdate(c->st.md, r->sdata, r->sdata_len)) {
		stream_reset(c);
		reply_error(c, r, KEYD_E_INTERNAL, "cannot hash the data", t0);
		return 0;
	}
	c->st.got += r->sdata_len;
	if (!(r->flags & KEYD_SD_MORE))
		return sign_data_finish(c, r, t0);
	return sign_data_ack(c, r);
}

static int op_carries_secret(int op)
{
	return op == KEYD_OP_WRAP || op == KEYD_OP_UNWRAP || op == KEYD_OP_UNSEAL;
}

/* Leaving handle_frame: a WRAP's secret does not stay on the stack. */
static void wipe_req(struct keyd_req *r)
{
	if (op_carries_secret(r->op))
		explicit_bzero(r->data, sizeof(r->data));
}

static void free_secret_copy(const void *data, size_t len, void *arg)
{
	(void)arg;
	explicit_bzero((void *)data, len);
	free((void *)data);
}

/* send_frame for an answer that carries a secret (UNWRAP): what the socket does not take at
 * once is queued by reference to a copy that is wiped when libevent is done with it. */
static void send_secret_frame(struct kconn *c, const struct keyd_wbuf *wb)
{
	struct evbuffer *out;
	ssize_t n = 0;
	uint8_t *copy;

	if (c->closed || c->closing || wb->err)
		return;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) == 0) {
		n = send(bufferevent_getfd(c->bev), wb->p, wb->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == (ssize_t)wb->len)
			return;
		if (n < 0)
			n = 0;
	}
	copy = malloc(wb->len - (size_t)n);
	if (!copy || evbuffer_add_reference(out, memcpy(copy, wb->p + n, wb->len - (size_t)n),
	                                    wb->len - (size_t)n, free_secret_copy, NULL) != 0) {
		if (copy)
			explicit_bzero(copy, wb->len - (size_t)n);
		free(copy);
		conn_close(c, "out of memory for an answer");
	}
}

/* ---- activation: quorum (docs/quorum.md) ---- */

/* What keyd answers a request for the token while it is sealed: `sealed`, retryable, or
 * `offline` to a client that speaks protocol 1 and does not know `sealed`. */
static int sealed_status(const struct kconn *c, char *msg, size_t msglen)
{
	struct keyd_server *s = c->w->s;
	unsigned n;

	pthread_mutex_lock(&s->qlock);
	n = s->pool ? s->pool->n : 0;
	pthread_mutex_unlock(&s->qlock);
	snprintf(msg, msglen,
	         "keyd is sealed: %u of %u custodian shares presented (hsmca keyd unseal)", n,
	         s->cfg->quorum.threshold);
	return c->version >= 2 ? KEYD_E_SEALED : KEYD_E_OFFLINE;
}

/* The quorum's state as the answer carries it. Caller holds qlock. */
static void quorum_state(struct keyd_server *s, struct keyd_quorum_status *q)
{
	const struct keyd_config *cfg = s->cfg;
	size_t at = 0;

	memset(q, 0, sizeof(*q));
	q->activation = (uint8_t)cfg->activation;
	if (cfg->activation != KEYD_ACTIVATION_QUORUM)
		return;
	q->sealed = (uint8_t)keyd_token_sealed(s->tok);
	q->presented = (uint8_t)(q->sealed ? s->pool->n : 0);
	q->threshold = (uint8_t)cfg->quorum.threshold;
	q->total = (uint8_t)cfg->quorum.total;
	for (size_t i = 0; q->sealed && i < cfg->ncustodians; i++) {
		int seen = 0;
		for (unsigned j = 0; j < s->pool->n; j++)
			seen |= strcmp(s->pool->s[j].custodian, cfg->custodians[i].name) == 0;
		if (!seen)
			at += (size_t)snprintf(q->expected + at, sizeof(q->expected) - at, "%s%s",
			                       at ? ", " : "", cfg->custodians[i].name);
		if (at >= sizeof(q->expected))
			at = sizeof(q->expected) - 1;
	}
}

static void reply_quorum(struct kconn *c, const struct keyd_req *r,
                         const struct keyd_quorum_status *q, const struct timespec *t0)
{
	struct worker *w = c->w;
	struct keyd_wbuf wb = {w->out, 0, sizeof(w->out), 0};

	keyd_resp_begin(&wb, r->op, r->id, KEYD_OK);
	keyd_put_quorum(&wb, q);
	if (keyd_resp_end(&wb) != 0) {
		reply_error(c, r, KEYD_E_INTERNAL, "answer does not fit a frame", t0);
		return;
	}
	send_frame(c, &wb);
	log_request(w->s, c, r, KEYD_OK, t0, "");
}

/* A presented share: checked, kept, and with the threshold reached, combined into the PIN
 * that logs in; shares and PIN are then wiped. Caller holds qlock. */
static int unseal_share(struct kconn *c, const struct keyd_req *r, char *msg, size_t msglen)
{
	struct keyd_server *s = c->w->s;
	const struct keyd_config *cfg = s->cfg;
	const struct keyd_person *owner;
	struct qshare sh;
	char names[KEYD_EXPECTED_MAX], e[256];
	char *pin = s->pin;
	size_t at = 0;
	int rc;

	if (quorum_share_parse((const char *)r->share, r->share_len, &sh, msg, msglen) != 0)
		goto refuse;
	owner = keyd_custodian_named(cfg, sh.custodian);
	if (!owner) {
		snprintf(msg, msglen, "share of %s: %s is no custodian of this keyd", sh.custodian,
		         sh.custodian);
		goto refuse;
	}
	if (!cfg->any_custodian && owner->uid != c->uid) {
		snprintf(msg, msglen,
		         "share of %s may be presented by %s's user (uid %u) only, not by uid %u",
		         sh.custodian, sh.custodian, (unsigned)owner->uid, (unsigned)c->uid);
		OPENSSL_cleanse(&sh, sizeof(sh));
		return KEYD_E_DENIED;
	}
	OPENSSL_cleanse(&sh, sizeof(sh));
	if (quorum_accept(&cfg->quorum, s->pool, (const char *)r->share, r->share_len, msg,
	                  msglen) != 0)
		return KEYD_E_SHARE;
	log_info("unseal: share of %s accepted from peer uid=%u pid=%d: %u of %u",
	         s->pool->s[s->pool->n - 1].custodian, (unsigned)c->uid, (int)c->pid, s->pool->n,
	         cfg->quorum.threshold);
	if (s->pool->n < cfg->quorum.threshold)
		return KEYD_OK;
	for (unsigned i = 0; i < s->pool->n; i++)
		at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s", i ? ", " : "",
		                       s->pool->s[i].custodian);
	rc = quorum_combine(&cfg->quorum, s->pool, pin, KEYD_PIN_MAX, msg, msglen);
	quorum_pool_wipe(s->pool); /* whatever happens next, the shares are gone */
	if (rc == 0)
		rc = keyd_token_unseal(s->tok, pin, e, sizeof(e));
	else
		e[0] = 0;
	OPENSSL_cleanse(pin, KEYD_PIN_MAX);
	if (rc != 0) {
		if (e[0])
			snprintf(msg, msglen, "the quorum's PIN did not log in: %s", e);
		log_error("unseal failed with the shares of %s: %s; keyd stays sealed", names, msg);
		return KEYD_E_HSM;
	}
	log_info("unsealed: token \"%s\" logged in with the shares of %s (%u of %u); shares "
	         "and PIN wiped from memory, %zu keys",
	         cfg->token, names, cfg->quorum.threshold, cfg->quorum.total,
	         keyd_token_nkeys(s->tok));
	return KEYD_OK;
refuse:
	OPENSSL_cleanse(&sh, sizeof(sh));
	return KEYD_E_SHARE;
}

/* UNSEAL, SEAL and QUORUM: for custodians and sealers, whom the quorum: section names, not
 * the ACL (quorum-status also to clients granted it). */
static void quorum_request(struct kconn *c, const struct keyd_req *r, const struct timespec *t0)
{
	struct keyd_server *s = c->w->s;
	const struct keyd_config *cfg = s->cfg;
	struct keyd_quorum_status q;
	char msg[KEYD_MSG_MAX];
	int status = KEYD_OK;

	if (r->op == KEYD_OP_QUORUM && !c->custodian && !c->sealer &&
	    !keyd_acl_op_allowed(c->acl, KEYD_OP_QUORUM)) {
		snprintf(msg, sizeof(msg), "operation quorum-status not granted to uid %u",
		         (unsigned)c->uid);
		reply_error(c, r, KEYD_E_DENIED, msg, t0);
		return;
	}
	if (r->op != KEYD_OP_QUORUM && cfg->activation != KEYD_ACTIVATION_QUORUM) {
		snprintf(msg, sizeof(msg),
		         "keyd's activation is file: it has no quorum, and %s does nothing",
		         keyd_op_name(r->op));
		reply_error(c, r, KEYD_E_DENIED, msg, t0);
		return;
	}
	if (r->op == KEYD_OP_UNSEAL && !c->custodian) {
		snprintf(msg, sizeof(msg), "uid %u is not a custodian of this keyd",
		         (unsigned)c->uid);
		reply_error(c, r, KEYD_E_DENIED, msg, t0);
		return;
	}
	if (r->op == KEYD_OP_SEAL && !c->sealer) {
		snprintf(msg, sizeof(msg), "uid %u may not seal this keyd", (unsigned)c->uid);
		reply_error(c, r, KEYD_E_DENIED, msg, t0);
		return;
	}
	pthread_mutex_lock(&s->qlock);
	if (r->op == KEYD_OP_UNSEAL && keyd_token_sealed(s->tok)) {
		status = unseal_share(c, r, msg, sizeof(msg));
	} else if (r->op == KEYD_OP_UNSEAL) {
		log_info("unseal: keyd is not sealed; the share from peer uid=%u was not used",
		         (unsigned)c->uid);
	} else if (r->op == KEYD_OP_SEAL) {
		keyd_token_seal(s->tok);
		quorum_pool_wipe(s->pool);
		log_info("sealed by %s (peer uid=%u pid=%d): login dropped, PIN and shares wiped",
		         c->sealer->name, (unsigned)c->uid, (int)c->pid);
	}
	if (status == KEYD_OK)
		quorum_state(s, &q);
	pthread_mutex_unlock(&s->qlock);
	if (status != KEYD_OK)
		reply_error(c, r, status, msg, t0);
	else
		reply_quorum(c, r, &q, t0);
}

/* Parse one frame body and act on it. Returns -1 to close the connection. */
static int handle_frame(struct kconn *c, const uint8_t *body, size_t len)
{
	struct worker *w = c->w;
	struct keyd_req r __attribute__((cleanup(wipe_req)));
	struct timespec t0;
	const char *why = "";
	char msg[KEYD_MSG_MAX];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (keyd_req_decode(body, len, &r, &why) != 0) {
		/* Answer if we can tell what was asked, then hang up. */
		if (len >= 5) {
			struct keyd_wbuf wb = {w->out, 0, sizeof(w->out), 0};
			uint32_t id = (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 |
			              (uint32_t)body[3] << 8 | body[4];
			keyd_resp_error(&wb, body[0] >= 1 && body[0] <= KEYD_OP_MAX_ ? body[0] : 1,
			                id, KEYD_E_MALFORMED, why);
			send_frame(c, &wb);
		}
		log_warn("malformed frame from peer uid=%u pid=%d: %s", (unsigned)c->uid,
		         (int)c->pid, why);
		return -1;
	}
	if (c->answered_us && (r.op == KEYD_OP_SIGN || r.op == KEYD_OP_SIGN_DATA)) {
		int64_t gap = mono_us() - c->answered_us;
		c->gap_us = c->gap_us ? (7 * c->gap_us + gap) / 8 : gap;
		c->answered_us = 0;
	}
	if (r.op == KEYD_OP_UNSEAL || r.op == KEYD_OP_SEAL || r.op == KEYD_OP_QUORUM) {
		quorum_request(c, &r, &t0);
		return 0;
	}
	if (!c->acl && !(r.op == KEYD_OP_HELLO && (c->custodian || c->sealer))) {
		snprintf(msg, sizeof(msg), "uid %u is not a client of this keyd", (unsigned)c->uid);
		reply_error(c, &r, KEYD_E_DENIED, msg, &t0);
		return 0;
	}
	if ((r.op == KEYD_OP_SIGN || r.op == KEYD_OP_GET_PUBKEY || r.op == KEYD_OP_GENERATE ||
	     r.op == KEYD_OP_WRAP || r.op == KEYD_OP_UNWRAP || r.op == KEYD_OP_SIGN_DATA)) {
		if (r.op == KEYD_OP_SIGN_DATA && (r.flags & KEYD_SD_CONT))
			return sign_data_more(c, &r, &t0);
		if (r.op == KEYD_OP_SIGN_DATA && c->st.open) {
			stream_reset(c);
			reply_error(c, &r, KEYD_E_MALFORMED,
			            "sign-data: new data while earlier data is still open", &t0);
			return -1;
		}
		if (!keyd_acl_key_allowed(c->acl, r.label)) {
			snprintf(msg, sizeof(msg), "key %s not granted to client %s", r.label,
			         c->acl->name);
			return sign_data_refuse(c, &r, KEYD_E_DENIED, msg, &t0);
		}
		if (!keyd_acl_allowed(c->acl, r.label, r.op)) {
			snprintf(msg, sizeof(msg),
			         "operation %s not granted to client %s for key %s",
			         keyd_op_name(r.op == KEYD_OP_SIGN_DATA ? KEYD_OP_SIGN : r.op),
			         c->acl->name, r.label);
			return sign_data_refuse(c, &r, KEYD_E_DENIED, msg, &t0);
		}
		if (r.op == KEYD_OP_SIGN &&
		    !(keyd_acl_kinds(c->acl, r.label) & (1u << KEYD_KIND_DIGEST))) {
			snprintf(msg, sizeof(msg),
			         "kind digest (a precomputed digest) not granted to client %s for "
			         "key %s",
			         c->acl->name, r.label);
			keyd_metrics_refusal(w->s->metrics, KEYD_KIND_DIGEST, KEYD_REFUSE_KIND);
			reply_error(c, &r, KEYD_E_DENIED, msg, &t0);
			return 0;
		}
		if (keyd_token_sealed(w->s->tok)) {
			int st = sealed_status(c, msg, sizeof(msg));
			return sign_data_refuse(c, &r, st, msg, &t0);
		}
		if (r.op == KEYD_OP_SIGN_DATA)
			return sign_data_first(c, &r, &t0);
	} else if (r.op != KEYD_OP_HELLO && !keyd_acl_op_allowed(c->acl, r.op)) {
		snprintf(msg, sizeof(msg), "operation %s not granted to client %s",
		         keyd_op_name(r.op), c->acl->name);
		reply_error(c, &r, KEYD_E_DENIED, msg, &t0);
		return 0;
	} else if (r.op == KEYD_OP_LIST_KEYS && keyd_token_sealed(w->s->tok)) {
		int st = sealed_status(c, msg, sizeof(msg));
		reply_error(c, &r, st, msg, &t0);
		return 0;
	}
	if (r.op == KEYD_OP_SIGN || r.op == KEYD_OP_GENERATE || r.op == KEYD_OP_WRAP ||
	    r.op == KEYD_OP_UNWRAP)
		enqueue(c, &r, &t0);
	else
		reply_inline(c, &r, &t0);
	return 0;
}

/* Take every whole frame in c->in (keyd_frames.h), then keep what is left of the next one at
 * its front. */
static void take_frames(struct kconn *c)
{
	struct keyd_split sp;
	size_t rest;
	int step;

	keyd_split_init(&sp, c->in, c->in_len, KEYD_FRAME_MAX);
	while (!c->closed && !c->closing && (step = keyd_split_next(&sp)) != KEYD_SPLIT_MORE) {
		uint8_t *body = c->in + sp.body_off;
		int secret, rc;

		if (step == KEYD_SPLIT_BAD) {
			log_warn("malformed frame from peer uid=%u pid=%d: %s", (unsigned)c->uid,
			         (int)c->pid, sp.why);
			conn_close(c, sp.why);
			return;
		}
		secret = op_carries_secret(body[0]);
		rc = handle_frame(c, body, sp.body_len);
		if (secret)
			explicit_bzero(body, sp.body_len);
		if (rc != 0) {
			/* Let the error answer go out, then hang up (on_write). */
			c->closing = 1;
			read_pause(c);
			bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
			if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
				conn_close(c, "malformed frame");
			return;
		}
	}
	if (c->closed || c->closing)
		return;
	rest = c->in_len - sp.consumed;
	if (sp.consumed && rest) {
		memmove(c->in, c->in + sp.consumed, rest);
		/* the bytes moved may be a secret's: none stays behind twice */
		explicit_bzero(c->in + rest, c->in_len - rest);
	}
	c->in_len = rest;
	/* The frame begun does not fit the small buffer: move to the large one. */
	if (c->in == c->in_small && sp.need > c->in_cap) {
		if (!c->in_big && !(c->in_big = malloc(4 + KEYD_FRAME_MAX))) {
			conn_close(c, "out of memory");
			return;
		}
		memcpy(c->in_big, c->in_small, rest);
		explicit_bzero(c->in_small, rest);
		c->in = c->in_big;
		c->in_cap = 4 + KEYD_FRAME_MAX;
	}
}

/*
 * Read what the peer sent with one recv into c->in and act on every whole frame in it.
 * Returns 1 when bytes were read, 0 when there were none yet, -1 when the connection is gone.
 */
static int read_frames(struct kconn *c)
{
	ssize_t n;

	if (c->closed || c->closing)
		return -1;
	n = recv(bufferevent_getfd(c->bev), c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n == 0) {
		conn_close(c, NULL);
		return -1;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		conn_close(c, strerror(errno));
		return -1;
	}
	c->in_len += (size_t)n;
	c->refs++; /* take_frames may close it; the buffer lives until the last reference */
	take_frames(c);
	n = c->closed ? -1 : 1;
	conn_unref(c);
	return (int)n;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_frames(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct kconn *c = arg;
	size_t pending = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->closing) {
		if (pending == 0)
			conn_close(c, "malformed frame");
		return;
	}
	if (pending < OUTPUT_HIGH / 2)
		read_resume(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct kconn *c = arg;

	/* Reading is ours (read_frames): what comes here is the bufferevent's write failing. */
	(void)bev;
	if (what & BEV_EVENT_EOF)
		conn_close(c, NULL);
	else if (what & BEV_EVENT_ERROR)
		conn_close(c, strerror(EVUTIL_SOCKET_ERROR()));
}

/* Acceptor thread: identify the peer, then give the socket to a worker. */
static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct keyd_server *s = arg;
	struct handoff *h;
	struct worker *w;
	socklen_t clen;

	(void)lis;
	(void)sa;
	(void)salen;
	h = calloc(1, sizeof(*h));
	if (!h) {
		evutil_closesocket(fd);
		return;
	}
	clen = sizeof(h->cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &h->cred, &clen) != 0) {
		log_warn("connection refused: SO_PEERCRED: %s", strerror(errno));
		evutil_closesocket(fd);
		free(h);
		return;
	}
	if (atomic_load(&s->nconns) >= (unsigned)s->cfg->max_clients) {
		log_warn("connection refused: peer uid=%u pid=%d: %u connections already open",
		         (unsigned)h->cred.uid, (int)h->cred.pid, atomic_load(&s->nconns));
		evutil_closesocket(fd);
		free(h);
		return;
	}
	atomic_fetch_add(&s->nconns, 1);
	h->fd = fd;
	w = &s->workers[s->next_worker++ % (unsigned)s->nworkers];
	pthread_mutex_lock(&w->lock);
	h->next = w->handoff;
	w->handoff = h;
	pthread_mutex_unlock(&w->lock);
	event_active(w->ev_handoff, EV_READ, 0);
}

/* Worker thread: adopt sockets handed over by the acceptor. */
static void on_handoff(evutil_socket_t unused, short what, void *arg)
{
	struct worker *w = arg;
	struct keyd_server *s = w->s;
	struct handoff *list;

	(void)unused;
	(void)what;
	pthread_mutex_lock(&w->lock);
	list = w->handoff;
	w->handoff = NULL;
	pthread_mutex_unlock(&w->lock);
	while (list) {
		struct handoff *h = list;
		struct kconn *c = calloc(1, sizeof(*c));

		list = h->next;
		if (!c ||
		    !(c->ev_read =
		          event_new(w->base, h->fd, EV_READ | EV_PERSIST, on_readable, c)) ||
		    !(c->bev = bufferevent_socket_new(w->base, h->fd, BEV_OPT_CLOSE_ON_FREE))) {
			if (c && c->ev_read)
				event_free(c->ev_read);
			evutil_closesocket(h->fd);
			atomic_fetch_sub(&s->nconns, 1);
			free(c);
			free(h);
			continue;
		}
		c->in = c->in_small;
		c->in_cap = sizeof(c->in_small);
		c->w = w;
		c->uid = h->cred.uid;
		c->gid = h->cred.gid;
		c->pid = h->cred.pid;
		c->refs = 1;
		c->acl = keyd_acl_find(s->cfg, h->cred.uid, h->cred.gid);
		c->custodian = keyd_custodian_of(s->cfg, h->cred.uid);
		c->sealer = keyd_sealer_of(s->cfg, h->cred.uid);
		c->version = KEYD_PROTO_VERSION;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		if (!c->acl && !c->custodian && !c->sealer)
			log_warn(
			    "peer uid=%u gid=%u pid=%d is not in the ACL: its requests will be "
			    "denied",
			    (unsigned)h->cred.uid, (unsigned)h->cred.gid, (int)h->cred.pid);
		bufferevent_setcb(c->bev, NULL, on_write, on_event, c);
		bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_HIGH / 2, 0);
		bufferevent_enable(c->bev, EV_WRITE);
		if (event_add(c->ev_read, NULL) != 0)
			conn_close(c, "cannot watch the socket");
		free(h);
	}
}

static void answer_job(struct worker *w, struct job *j)
{
	struct keyd_server *s = w->s;
	struct kconn *c = j->conn;

	c->inflight--;
	if (c->closed || c->closing) {
		log_request(s, c, &j->req, j->status, &j->t0,
		            j->status ? j->msg : "peer gone before the answer");
	} else if (j->status != KEYD_OK) {
		reply_error(c, &j->req, j->status, j->msg, &j->t0);
	} else {
		struct keyd_wbuf wb = {w->out, 0, sizeof(w->out), 0};
		keyd_resp_begin(&wb, j->req.op, j->req.id, KEYD_OK);
		if (j->req.op == KEYD_OP_SIGN || j->req.op == KEYD_OP_SIGN_DATA ||
		    j->req.op == KEYD_OP_WRAP || j->req.op == KEYD_OP_UNWRAP)
			keyd_put_blob(&wb, j->sig, j->sig_len);
		else
			put_key(&wb, &j->key);
		keyd_resp_end(&wb);
		/* Logged before it is sent: a signature a client holds is always in the log,
		 * even when keyd dies between the two (the fault-injection run counts them). */
		log_request(s, c, &j->req, KEYD_OK, &j->t0, "");
		if (op_carries_secret(j->req.op))
			send_secret_frame(c, &wb);
		else
			send_frame(c, &wb);
		if (j->req.op == KEYD_OP_UNWRAP || j->req.op == KEYD_OP_WRAP)
			explicit_bzero(w->out, wb.len); /* the secret does not linger */
		if (j->req.op == KEYD_OP_GENERATE)
			log_info("generated key %s (%s %u bits) for client %s", j->req.label,
			         j->key.type == KEYD_KEY_RSA  ? "RSA"
			         : j->key.type == KEYD_KEY_EC ? "EC"
			                                      : "AES",
			         j->key.bits, c->acl ? c->acl->name : "-");
	}
	conn_unref(c);
	if (j->req.op == KEYD_OP_UNWRAP || j->req.op == KEYD_OP_WRAP)
		explicit_bzero(j, sizeof(*j));
	job_put(w, j);
}

/* Worker thread: make one pending signature, answer it, and come back for
 * the next after the loop has had a look at the sockets. */
/*
 * A client that signs one thing after another sends its next request a few microseconds after
 * our answer; going to sleep in epoll and being woken for it costs more than that on a
 * virtual machine. So when this was the only work, and this peer's recent requests followed
 * our answers within WAIT_MAX_US, wait about twice that long for the next one, yielding the
 * CPU (any runnable thread gets it), and read it here when it comes: no epoll_wait for it. A
 * peer that pauses longer (most do: a CA between issuances) costs nothing here. The client
 * library does the same on its side. Not while other workers' signatures take every CPU (more
 * clients than CPUs): there the spin only takes a CPU from a signature, and the client this
 * worker waits for needs one too, so the worker sleeps in epoll at once.
 */
#define WAIT_MAX_US 100

static void wait_next(struct kconn *c)
{
	struct keyd_server *s = c->w->s;
	int64_t until;

	if (c->closed || c->closing || c->read_paused || !c->gap_us || c->gap_us > WAIT_MAX_US)
		return;
	until = mono_us() + 2 * c->gap_us;
	while (atomic_load_explicit(&s->signing, memory_order_relaxed) < s->ncpu &&
	       mono_us() < until) {
		if (read_frames(c) != 0)
			return;
		sched_yield();
	}
}

static void on_process(evutil_socket_t unused, short what, void *arg)
{
	struct worker *w = arg;
	struct keyd_server *s = w->s;
	struct job *j = q_pop(&w->pending);
	const struct keyd_req *r;
	struct kconn *c;

	(void)unused;
	(void)what;
	if (!j)
		return;
	atomic_store(&w->depth, w->pending.n);
	r = &j->req;
	if (j->conn->closed) {
		j->status = KEYD_E_INTERNAL;
		snprintf(j->msg, sizeof(j->msg), "peer gone before the signature");
	} else {
		j->sig_len = sizeof(j->sig);
		atomic_fetch_add_explicit(&s->signing, 1, memory_order_relaxed);
		j->status = keyd_token_sign(s->tok, w->index, r->label, r->alg, r->hash,
		                            r->salt_len, r->digest, r->digest_len, j->sig,
		                            &j->sig_len, j->msg, sizeof(j->msg));
		atomic_fetch_sub_explicit(&s->signing, 1, memory_order_relaxed);
		atomic_fetch_add(j->status == KEYD_OK ? &s->signs_ok : &s->signs_failed, 1);
	}
	c = j->conn;
	c->refs++;
	answer_job(w, j);
	c->answered_us = mono_us();
	if (w->pending.head)
		event_active(w->ev_process, EV_READ, 0);
	else
		wait_next(c);
	conn_unref(c);
}

/* Worker thread: answer generations finished by the generator thread. */
static void on_done(evutil_socket_t unused, short what, void *arg)
{
	struct worker *w = arg;
	struct jobq done;

	(void)unused;
	(void)what;
	pthread_mutex_lock(&w->lock);
	done = w->done;
	w->done = (struct jobq){0};
	pthread_mutex_unlock(&w->lock);
	for (struct job *j; (j = q_pop(&done));)
		answer_job(w, j);
}

/* Worker thread: keyd_server_free asked this worker to stop. */
static void on_stop(evutil_socket_t unused, short what, void *arg)
{
	struct worker *w = arg;

	(void)unused;
	(void)what;
	event_base_loopbreak(w->base);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void *generator_main(void *arg)
{
	struct keyd_server *s = arg;

	pthread_mutex_lock(&s->glock);
	for (;;) {
		struct job *j;
		struct worker *w;
		while (!s->stopping && !s->gen.head)
			pthread_cond_wait(&s->gcond, &s->glock);
		if (s->stopping)
			break;
		j = q_pop(&s->gen);
		pthread_mutex_unlock(&s->glock);
		if (j->req.op == KEYD_OP_GENERATE) {
			j->status =
			    keyd_token_generate(s->tok, j->req.label, j->req.keytype,
			                        j->req.keyparam, &j->key, j->msg, sizeof(j->msg));
		} else {
			/* wrap/unwrap: rare (backups), serialised on the control session */
			j->sig_len = sizeof(j->sig);
			j->status = keyd_token_wrap(s->tok, j->req.op == KEYD_OP_UNWRAP,
			                            j->req.label, j->req.data, j->req.data_len,
			                            j->sig, &j->sig_len, j->msg, sizeof(j->msg));
		}
		w = j->conn->w;
		pthread_mutex_lock(&w->lock);
		q_push(&w->done, j);
		pthread_mutex_unlock(&w->lock);
		event_active(w->ev_done, EV_READ, 0);
		pthread_mutex_lock(&s->glock);
	}
	pthread_mutex_unlock(&s->glock);
	return NULL;
}

static void on_health(evutil_socket_t fd, short what, void *arg)
{
	struct keyd_server *s = arg;

	(void)fd;
	(void)what;
	keyd_token_health(s->tok);
}

/* ---- lifecycle ---- */

static int bind_socket(const struct keyd_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(cfg->socket) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", cfg->socket);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->socket);
	/* Replace a stale socket, never another kind of file. */
	if (lstat(cfg->socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", cfg->socket);
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			snprintf(err, errlen, "another keyd is serving %s", cfg->socket);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		unlink(cfg->socket);
	}
	/* Made under PATH.new and renamed into place once it listens (found by a test that
	 * connected in the moment between bind and listen). */
	return daemon_listen_unix(cfg->socket, (gid_t)-1, cfg->socket_mode, 128, err, errlen);
}

static int worker_init(struct keyd_server *s, struct worker *w, int index)
{
	w->s = s;
	w->index = index;
	w->queue_max = (unsigned)((s->cfg->queue + s->nworkers - 1) / s->nworkers);
	pthread_mutex_init(&w->lock, NULL);
	w->base = event_base_new();
	if (!w->base)
		return -1;
	w->ev_handoff = event_new(w->base, -1, 0, on_handoff, w);
	w->ev_process = event_new(w->base, -1, 0, on_process, w);
	w->ev_done = event_new(w->base, -1, 0, on_done, w);
	w->ev_stop = event_new(w->base, -1, 0, on_stop, w);
	if (!w->ev_handoff || !w->ev_process || !w->ev_done || !w->ev_stop)
		return -1;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->started = 1;
	return 0;
}

static void worker_stop(struct worker *w)
{
	if (w->started) {
		/* An active event waits for the loop; a loopbreak made before the worker entered
		 * its loop would be lost (event_base_loop clears it), and the join would hang. */
		event_active(w->ev_stop, EV_READ, 0);
		pthread_join(w->thread, NULL);
		w->started = 0;
	}
}

/* After every thread has stopped. */
static void worker_free(struct worker *w)
{
	struct job *j;

	while ((j = q_pop(&w->pending)) || (j = q_pop(&w->done))) {
		conn_unref(j->conn);
		free(j);
	}
	while ((j = q_pop(&w->spare)))
		free(j);
	while (w->conns)
		conn_close(w->conns, NULL);
	while (w->handoff) {
		struct handoff *h = w->handoff;
		w->handoff = h->next;
		evutil_closesocket(h->fd);
		free(h);
	}
	if (w->ev_handoff)
		event_free(w->ev_handoff);
	if (w->ev_process)
		event_free(w->ev_process);
	if (w->ev_done)
		event_free(w->ev_done);
	if (w->ev_stop)
		event_free(w->ev_stop);
	if (w->base)
		event_base_free(w->base);
	pthread_mutex_destroy(&w->lock);
}

struct keyd_server *keyd_server_new(const struct keyd_config *cfg, struct keyd_token *tok,
                                    char *err, size_t errlen)
{
	struct keyd_server *s;
	struct timeval hi = {cfg->health_interval_ms / 1000,
	                     (cfg->health_interval_ms % 1000) * 1000};

	if (evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "libevent has no pthreads support");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = cfg;
	s->tok = tok;
	s->fd = -1;
	pthread_mutex_init(&s->glock, NULL);
	pthread_cond_init(&s->gcond, NULL);
	pthread_mutex_init(&s->certlock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	/* Locked now: once confined, keyd may not lock memory (its filter has no mlock). */
	if (cfg->activation == KEYD_ACTIVATION_QUORUM &&
	    (!(s->pool = (struct quorum_pool *)keyd_secret_alloc(sizeof(*s->pool), err, errlen)) ||
	     !(s->pin = keyd_secret_alloc(KEYD_PIN_MAX, err, errlen))))
		goto fail;
	s->certs = calloc(cfg->nkeycerts + 1, sizeof(*s->certs));
	if (!s->certs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (keyd_metrics_new(
	        tok, cfg->queue,
	        &(struct keyd_metrics_readers){metrics_queue_depth, metrics_connections, s},
	        &s->metrics, err, errlen) != 0)
		goto fail;
	s->base = event_base_new();
	if (!s->base) {
		snprintf(err, errlen, "event_base_new failed");
		goto fail;
	}
	s->workers = calloc((size_t)cfg->workers, sizeof(*s->workers));
	if (!s->workers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->nworkers = cfg->workers;
	s->ncpu = cpus_available();
	for (int i = 0; i < cfg->workers; i++)
		if (worker_init(s, &s->workers[i], i) != 0) {
			snprintf(err, errlen, "cannot start worker %d", i);
			goto fail;
		}
	if (pthread_create(&s->generator, NULL, generator_main, s) != 0) {
		snprintf(err, errlen, "cannot start the generator thread");
		goto fail;
	}
	s->generator_started = 1;
	s->fd = bind_socket(cfg, err, errlen);
	if (s->fd < 0)
		goto fail;
	s->lis = evconnlistener_new(s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, -1, s->fd);
	if (!s->lis) {
		snprintf(err, errlen, "cannot listen on %s", cfg->socket);
		close(s->fd);
		unlink(cfg->socket);
		s->fd = -1;
		goto fail;
	}
	s->ev_health = event_new(s->base, -1, EV_PERSIST, on_health, s);
	if (!s->ev_health || event_add(s->ev_health, &hi)) {
		snprintf(err, errlen, "cannot set up events");
		goto fail;
	}
	return s;
fail:
	keyd_server_free(s);
	return NULL;
}

int keyd_server_run(struct keyd_server *s)
{
	if (keyd_token_sealed(s->tok))
		log_info("sealed: serving status and unseal only on %s until %u of the %u "
		         "custodians present their shares (hsmca keyd unseal SHARE_FILE)",
		         s->cfg->socket, s->cfg->quorum.threshold, s->cfg->quorum.total);
	else
		log_info("serving token \"%s\" on %s with %d workers, queue %d, %zu keys",
		         keyd_token_label(s->tok), s->cfg->socket, s->nworkers, s->cfg->queue,
		         keyd_token_nkeys(s->tok));
	return event_base_dispatch(s->base) < 0 ? -1 : 0;
}

void keyd_server_stop(struct keyd_server *s)
{
	event_base_loopbreak(s->base);
}

struct event_base *keyd_server_base(struct keyd_server *s)
{
	return s->base;
}

void keyd_server_free(struct keyd_server *s)
{
	struct job *j;

	if (!s)
		return;
	/* No new connections, then no generation, then the workers. */
	if (s->lis) {
		evconnlistener_free(s->lis);
		unlink(s->cfg->socket);
	}
	pthread_mutex_lock(&s->glock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->gcond);
	pthread_mutex_unlock(&s->glock);
	if (s->generator_started)
		pthread_join(s->generator, NULL);
	for (int i = 0; s->workers && i < s->nworkers; i++)
		worker_stop(&s->workers[i]);
	while ((j = q_pop(&s->gen))) {
		conn_unref(j->conn);
		explicit_bzero(j, sizeof(*j)); /* may be a WRAP's secret */
		free(j);
	}
	for (int i = 0; s->workers && i < s->nworkers; i++)
		worker_free(&s->workers[i]);
	free(s->workers);
	if (s->ev_health)
		event_free(s->ev_health);
	if (s->base)
		event_base_free(s->base);
	pthread_mutex_destroy(&s->glock);
	pthread_cond_destroy(&s->gcond);
	pthread_mutex_destroy(&s->certlock);
	pthread_mutex_destroy(&s->qlock);
	keyd_secret_free((char *)s->pool, sizeof(*s->pool));
	keyd_secret_free(s->pin, KEYD_PIN_MAX);
	free(s->certs);
	keyd_metrics_free(s->metrics);
	free(s);
}
