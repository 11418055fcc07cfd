#include "keyd_server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

#include "log.h"

/* Stop reading from a peer whose unread answers pile up beyond this. */
#define OUTPUT_HIGH (1u << 20)

struct kconn {
	struct keyd_server *s;
	struct bufferevent *bev;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const struct keyd_acl_entry *acl;
	unsigned inflight;
	int refs;   /* the connection itself plus queued jobs */
	int closed;  /* the socket is gone; finished jobs are dropped */
	int closing; /* hang up once the pending output is written */
	struct kconn *prev, *next;
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

struct keyd_server {
	const struct keyd_config *cfg;
	struct keyd_token *tok;
	struct event_base *base;
	struct evconnlistener *lis;
	struct event *ev_done, *ev_int, *ev_term, *ev_health;
	int fd;

	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct jobq todo, done;
	int stopping;
	pthread_t *workers;
	int nworkers;

	struct kconn *conns;
	unsigned nconns;
	uint8_t frame[4 + KEYD_FRAME_MAX];
	uint8_t out[4 + KEYD_FRAME_MAX];

	atomic_ullong signs_ok, signs_failed, denied;
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

static long elapsed_us(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* ---- connections ---- */

static void conn_unref(struct kconn *c)
{
	if (--c->refs > 0)
		return;
	free(c);
}

static void conn_close(struct kconn *c, const char *why)
{
	struct keyd_server *s = c->s;

	if (c->closed)
		return;
	c->closed = 1;
	if (why)
		log_info("connection closed: peer uid=%u pid=%d: %s", (unsigned)c->uid, (int)c->pid,
			 why);
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	conn_unref(c);
}

static void send_frame(struct kconn *c, const struct keyd_wbuf *w)
{
	struct evbuffer *out;

	if (c->closed || c->closing || w->err)
		return;
	out = bufferevent_get_output(c->bev);
	evbuffer_add(out, w->p, w->len);
	/* A peer that does not read its answers stops being read. */
	if (evbuffer_get_length(out) > OUTPUT_HIGH)
		bufferevent_disable(c->bev, EV_READ);
}

static void log_request(struct keyd_server *s, struct kconn *c, const struct keyd_req *r,
			int status, const struct timespec *t0, const char *msg)
{
	if (!s->cfg->log_requests && status == KEYD_OK)
		return;
	if (r->op == KEYD_OP_SIGN)
		log_info("request peer_uid=%u peer_pid=%d client=%s op=sign key=%s alg=%s-%s "
			 "result=%s latency_us=%ld%s%s",
			 (unsigned)c->uid, (int)c->pid, c->acl ? c->acl->name : "-", r->label,
			 keyd_alg_name(r->alg), keyd_hash_name(r->hash), keyd_status_name(status),
			 elapsed_us(t0), status ? " reason=" : "", status ? msg : "");
	else
		log_info("request peer_uid=%u peer_pid=%d client=%s op=%s key=%s result=%s "
			 "latency_us=%ld%s%s",
			 (unsigned)c->uid, (int)c->pid, c->acl ? c->acl->name : "-",
			 keyd_op_name(r->op), r->label[0] ? r->label : "-", keyd_status_name(status),
			 elapsed_us(t0), status ? " reason=" : "", status ? msg : "");
}

static void reply_error(struct kconn *c, const struct keyd_req *r, int status, const char *msg,
			const struct timespec *t0)
{
	struct keyd_server *s = c->s;
	struct keyd_wbuf w = {s->out, 0, sizeof(s->out), 0};

	if (status == KEYD_E_DENIED)
		atomic_fetch_add(&s->denied, 1);
	keyd_resp_error(&w, r->op, r->id, (uint8_t)status, msg);
	send_frame(c, &w);
	log_request(s, c, r, status, t0, msg);
}

static void put_key(struct keyd_wbuf *w, const struct keyd_key_copy *k)
{
	struct keyd_keyinfo ki = {.type = k->type, .bits = k->bits, .flags = k->flags,
				  .spki = k->spki, .spki_len = k->spki_len};

	memcpy(ki.label, k->label, sizeof(ki.label));
	keyd_put_keyinfo(w, &ki);
}

static void reply_inline(struct kconn *c, const struct keyd_req *r, const struct timespec *t0)
{
	struct keyd_server *s = c->s;
	struct keyd_wbuf w = {s->out, 0, sizeof(s->out), 0};
	struct keyd_key_copy k;
	char msg[KEYD_MSG_MAX];

	switch (r->op) {
	case KEYD_OP_HELLO:
		if (r->vmin > KEYD_PROTO_VERSION || r->vmax < KEYD_PROTO_VERSION) {
			snprintf(msg, sizeof(msg), "this keyd speaks protocol %d only",
				 KEYD_PROTO_VERSION);
			reply_error(c, r, KEYD_E_VERSION, msg, t0);
			return;
		}
		keyd_resp_begin(&w, r->op, r->id, KEYD_OK);
		keyd_put_u16(&w, KEYD_PROTO_VERSION);
		keyd_put_str(&w, "hsmca-keyd");
		break;
	case KEYD_OP_LIST_KEYS: {
		size_t n = keyd_token_nkeys(s->tok);
		size_t at;
		uint16_t count = 0;
		keyd_resp_begin(&w, r->op, r->id, KEYD_OK);
		at = w.len;
		keyd_put_u16(&w, 0);
		for (size_t i = 0; i < n && count < UINT16_MAX; i++) {
			size_t before = w.len;
			if (keyd_token_key_at(s->tok, i, &k) != KEYD_OK ||
			    !keyd_acl_key_allowed(c->acl, k.label))
				continue;
			put_key(&w, &k);
			if (w.err) { /* the frame is full: list what fits */
				w.err = 0;
				w.len = before;
				break;
			}
			count++;
		}
		w.p[at] = (uint8_t)(count >> 8);
		w.p[at + 1] = (uint8_t)count;
		break;
	}
	case KEYD_OP_GET_PUBKEY:
		if (keyd_token_key(s->tok, r->label, &k) != KEYD_OK) {
			snprintf(msg, sizeof(msg), "no key labelled %s", r->label);
			reply_error(c, r, KEYD_E_NO_KEY, msg, t0);
			return;
		}
		keyd_resp_begin(&w, r->op, r->id, KEYD_OK);
		put_key(&w, &k);
		break;
	case KEYD_OP_STATUS: {
		struct keyd_token_status st = {0};
		pthread_mutex_lock(&s->qlock);
		st.queue_depth = s->todo.n;
		pthread_mutex_unlock(&s->qlock);
		st.online = (uint8_t)keyd_token_online(s->tok);
		snprintf(st.token, sizeof(st.token), "%s", keyd_token_label(s->tok));
		st.keys = (uint32_t)keyd_token_nkeys(s->tok);
		st.workers = (uint32_t)s->nworkers;
		st.queue_max = (uint32_t)s->cfg->queue;
		st.reinits = keyd_token_reinits(s->tok);
		st.signs_ok = atomic_load(&s->signs_ok);
		st.signs_failed = atomic_load(&s->signs_failed);
		st.requests_denied = atomic_load(&s->denied);
		keyd_resp_begin(&w, r->op, r->id, KEYD_OK);
		keyd_put_status(&w, &st);
		break;
	}
	}
	if (keyd_resp_end(&w) != 0) {
		reply_error(c, r, KEYD_E_INTERNAL, "answer does not fit a frame", t0);
		return;
	}
	send_frame(c, &w);
	log_request(s, c, r, KEYD_OK, t0, "");
}

static void enqueue(struct kconn *c, const struct keyd_req *r, const struct timespec *t0)
{
	struct keyd_server *s = c->s;
	struct job *j;
	int full;

	if (c->inflight >= (unsigned)s->cfg->max_inflight) {
		reply_error(c, r, KEYD_E_BUSY, "too many requests in flight on this connection",
			    t0);
		return;
	}
	if (!keyd_token_online(s->tok)) {
		reply_error(c, r, KEYD_E_OFFLINE, "token offline, recovering", t0);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		reply_error(c, r, KEYD_E_INTERNAL, "out of memory", t0);
		return;
	}
	j->conn = c;
	j->req = *r;
	j->t0 = *t0;
	pthread_mutex_lock(&s->qlock);
	full = s->todo.n >= (unsigned)s->cfg->queue;
	if (!full) {
		q_push(&s->todo, j);
		pthread_cond_signal(&s->qcond);
	}
	pthread_mutex_unlock(&s->qlock);
	if (full) {
		free(j);
		reply_error(c, r, KEYD_E_BUSY, "signing queue full", t0);
		return;
	}
	c->refs++;
	c->inflight++;
}

/* Parse one frame body and act on it. Returns -1 to close the connection. */
static int handle_frame(struct kconn *c, const uint8_t *body, size_t len)
{
	struct keyd_server *s = c->s;
	struct keyd_req r;
	struct timespec t0;
	const char *why = "";
	char msg[KEYD_MSG_MAX];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (keyd_req_decode(body, len, &r, &why) != 0) {
		/* Answer if we can tell what was asked, then hang up. */
		if (len >= 5) {
			struct keyd_wbuf w = {s->out, 0, sizeof(s->out), 0};
			uint32_t id = (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 |
				      (uint32_t)body[3] << 8 | body[4];
			keyd_resp_error(&w, body[0] >= 1 && body[0] <= KEYD_OP_MAX_ ? body[0] : 1,
					id, KEYD_E_MALFORMED, why);
			send_frame(c, &w);
		}
		log_warn("malformed frame from peer uid=%u pid=%d: %s", (unsigned)c->uid,
			 (int)c->pid, why);
		return -1;
	}
	if (!c->acl) {
		snprintf(msg, sizeof(msg), "uid %u is not a client of this keyd", (unsigned)c->uid);
		reply_error(c, &r, KEYD_E_DENIED, msg, &t0);
		return 0;
	}
	if (!keyd_acl_op_allowed(c->acl, r.op)) {
		snprintf(msg, sizeof(msg), "operation %s not granted to client %s",
			 keyd_op_name(r.op), c->acl->name);
		reply_error(c, &r, KEYD_E_DENIED, msg, &t0);
		return 0;
	}
	if ((r.op == KEYD_OP_SIGN || r.op == KEYD_OP_GET_PUBKEY || r.op == KEYD_OP_GENERATE) &&
	    !keyd_acl_key_allowed(c->acl, r.label)) {
		snprintf(msg, sizeof(msg), "key %s not granted to client %s", r.label,
			 c->acl->name);
		reply_error(c, &r, KEYD_E_DENIED, msg, &t0);
		return 0;
	}
	if (r.op == KEYD_OP_SIGN || r.op == KEYD_OP_GENERATE)
		enqueue(c, &r, &t0);
	else
		reply_inline(c, &r, &t0);
	return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct kconn *c = arg;
	struct keyd_server *s = c->s;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!c->closed && !c->closing && evbuffer_get_length(in) >= 4) {
		uint8_t hdr[4];
		uint32_t len;

		evbuffer_copyout(in, hdr, 4);
		if (keyd_frame_len(hdr, &len) != 0) {
			uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
				     (uint32_t)hdr[2] << 8 | hdr[3];
			char why[96];
			snprintf(why, sizeof(why), "frame length %u outside 1..%u", n,
				 KEYD_FRAME_MAX);
			log_warn("malformed frame from peer uid=%u pid=%d: %s", (unsigned)c->uid,
				 (int)c->pid, why);
			conn_close(c, why);
			return;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)len)
			return;
		evbuffer_drain(in, 4);
		evbuffer_remove(in, s->frame, len);
		if (handle_frame(c, s->frame, len) != 0) {
			/* Let the error answer go out, then hang up (on_write). */
			c->closing = 1;
			bufferevent_disable(bev, EV_READ);
			bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
			if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
				conn_close(c, "malformed frame");
			return;
		}
	}
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
		bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct kconn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF)
		conn_close(c, NULL);
	else if (what & BEV_EVENT_ERROR)
		conn_close(c, strerror(EVUTIL_SOCKET_ERROR()));
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct keyd_server *s = arg;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct kconn *c;

	(void)lis;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
		log_warn("connection refused: SO_PEERCRED: %s", strerror(errno));
		evutil_closesocket(fd);
		return;
	}
	if (s->nconns >= (unsigned)s->cfg->max_clients) {
		log_warn("connection refused: peer uid=%u pid=%d: %u connections already open",
			 (unsigned)cred.uid, (int)cred.pid, s->nconns);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->s = s;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->refs = 1;
	c->acl = keyd_acl_find(s->cfg, cred.uid, cred.gid);
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	if (!c->acl)
		log_warn("peer uid=%u gid=%u pid=%d is not in the ACL: its requests will be denied",
			 (unsigned)cred.uid, (unsigned)cred.gid, (int)cred.pid);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_HIGH / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- workers ---- */

struct worker_arg {
	struct keyd_server *s;
	int index;
};

static void run_job(struct keyd_server *s, int index, struct job *j)
{
	const struct keyd_req *r = &j->req;

	if (r->op == KEYD_OP_SIGN) {
		j->sig_len = sizeof(j->sig);
		j->status = keyd_token_sign(s->tok, index, r->label, r->alg, r->hash, r->salt_len,
					    r->digest, r->digest_len, j->sig, &j->sig_len, j->msg,
					    sizeof(j->msg));
		atomic_fetch_add(j->status == KEYD_OK ? &s->signs_ok : &s->signs_failed, 1);
	} else {
		j->status = keyd_token_generate(s->tok, r->label, r->keytype, r->keyparam, &j->key,
						j->msg, sizeof(j->msg));
	}
}

static void *worker_main(void *p)
{
	struct worker_arg *a = p;
	struct keyd_server *s = a->s;
	int index = a->index;

	free(a);
	pthread_mutex_lock(&s->qlock);
	for (;;) {
		struct job *j;
		while (!s->stopping && !s->todo.head)
			pthread_cond_wait(&s->qcond, &s->qlock);
		if (s->stopping)
			break;
		j = q_pop(&s->todo);
		pthread_mutex_unlock(&s->qlock);
		run_job(s, index, j);
		pthread_mutex_lock(&s->qlock);
		q_push(&s->done, j);
		event_active(s->ev_done, EV_READ, 0);
	}
	pthread_mutex_unlock(&s->qlock);
	return NULL;
}

/* On the loop thread: send the answers of finished jobs. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct keyd_server *s = arg;
	struct jobq done;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->qlock);
	done = s->done;
	s->done = (struct jobq){0};
	pthread_mutex_unlock(&s->qlock);
	for (struct job *j; (j = q_pop(&done));) {
		struct kconn *c = j->conn;
		c->inflight--;
		if (c->closed) {
			log_request(s, c, &j->req, j->status, &j->t0,
				    j->status ? j->msg : "peer gone before the answer");
		} else if (j->status != KEYD_OK) {
			reply_error(c, &j->req, j->status, j->msg, &j->t0);
		} else {
			struct keyd_wbuf w = {s->out, 0, sizeof(s->out), 0};
			keyd_resp_begin(&w, j->req.op, j->req.id, KEYD_OK);
			if (j->req.op == KEYD_OP_SIGN)
				keyd_put_blob(&w, j->sig, j->sig_len);
			else
				put_key(&w, &j->key);
			keyd_resp_end(&w);
			send_frame(c, &w);
			log_request(s, c, &j->req, KEYD_OK, &j->t0, "");
			if (j->req.op == KEYD_OP_GENERATE)
				log_info("generated key %s (%s %u bits) for client %s",
					 j->req.label, j->key.type == KEYD_KEY_RSA ? "RSA" : "EC",
					 j->key.bits, c->acl ? c->acl->name : "-");
		}
		conn_unref(c);
		free(j);
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct keyd_server *s = arg;

	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(s->base);
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
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	{
		/* Nobody but the configured mode may ever connect, even briefly. */
		mode_t old = umask(0777 & ~cfg->socket_mode);
		int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
		if (r != 0) {
			snprintf(err, errlen, "bind %s: %s", cfg->socket, strerror(errno));
			close(fd);
			return -1;
		}
	}
	if (chmod(cfg->socket, cfg->socket_mode) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "socket %s: %s", cfg->socket, strerror(errno));
		close(fd);
		unlink(cfg->socket);
		return -1;
	}
	return fd;
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
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	s->base = event_base_new();
	if (!s->base) {
		snprintf(err, errlen, "event_base_new failed");
		goto fail;
	}
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
	s->ev_done = event_new(s->base, -1, 0, on_done, s);
	s->ev_int = evsignal_new(s->base, SIGINT, on_signal, s);
	s->ev_term = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->ev_health = event_new(s->base, -1, EV_PERSIST, on_health, s);
	if (!s->ev_done || !s->ev_int || !s->ev_term || !s->ev_health ||
	    event_add(s->ev_int, NULL) || event_add(s->ev_term, NULL) ||
	    event_add(s->ev_health, &hi)) {
		snprintf(err, errlen, "cannot set up events");
		goto fail;
	}
	s->workers = calloc((size_t)cfg->workers, sizeof(*s->workers));
	if (!s->workers)
		goto fail;
	for (int i = 0; i < cfg->workers; i++) {
		struct worker_arg *a = malloc(sizeof(*a));
		if (!a || pthread_create(&s->workers[i], NULL, worker_main,
					 (*a = (struct worker_arg){s, i}, a)) != 0) {
			free(a);
			snprintf(err, errlen, "cannot start worker threads");
			goto fail;
		}
		s->nworkers++;
	}
	return s;
fail:
	keyd_server_free(s);
	return NULL;
}

int keyd_server_run(struct keyd_server *s)
{
	log_info("serving token \"%s\" on %s with %d workers, queue %d, %zu keys",
		 keyd_token_label(s->tok), s->cfg->socket, s->nworkers, s->cfg->queue,
		 keyd_token_nkeys(s->tok));
	return event_base_dispatch(s->base) < 0 ? -1 : 0;
}

void keyd_server_stop(struct keyd_server *s)
{
	event_base_loopbreak(s->base);
}

void keyd_server_free(struct keyd_server *s)
{
	struct job *j;

	if (!s)
		return;
	pthread_mutex_lock(&s->qlock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->qcond);
	pthread_mutex_unlock(&s->qlock);
	for (int i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	free(s->workers);
	/* Jobs never run or never answered: drop them with their connections. */
	while ((j = q_pop(&s->todo)) || (j = q_pop(&s->done))) {
		conn_unref(j->conn);
		free(j);
	}
	while (s->conns)
		conn_close(s->conns, NULL);
	if (s->lis) {
		evconnlistener_free(s->lis);
		unlink(s->cfg->socket);
	}
	if (s->ev_done)
		event_free(s->ev_done);
	if (s->ev_int)
		event_free(s->ev_int);
	if (s->ev_term)
		event_free(s->ev_term);
	if (s->ev_health)
		event_free(s->ev_health);
	if (s->base)
		event_base_free(s->base);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->qcond);
	free(s);
}
