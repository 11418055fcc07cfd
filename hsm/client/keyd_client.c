/* Client library for hsmca-keyd: one connection per calling thread, bounded waits. */
#include "keyd_client.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
	struct keyd_client *c;
	int fd;
	unsigned forks; /* fork_gen when fd was opened: a forked child makes its own */
	int64_t rtt_us; /* moving average of answer times, for recv_all's wait */
	uint32_t next_id;
	struct conn *prev, *next;
	uint8_t *buf; /* one whole frame, in or out */
};

struct keyd_client {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int timeout_ms;
	pthread_key_t key;
	pthread_mutex_t lock; /* guards the list of connections */
	struct conn *conns;
};

/* Bumped in the child of every fork(): a connection opened before belongs to the parent.
 * Counting forks saves a getpid() system call on every request. */
static atomic_uint fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	atomic_fetch_add(&fork_gen, 1);
}

static void fork_watch(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

static void seterr(struct keyd_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void conn_close(struct conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

static void conn_unlink_free(struct conn *k)
{
	struct keyd_client *c = k->c;

	pthread_mutex_lock(&c->lock);
	if (k->prev)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&c->lock);
	conn_close(k);
	free(k->buf);
	free(k);
}

static void conn_thread_exit(void *p)
{
	conn_unlink_free(p);
}

struct keyd_client *keyd_client_new(const char *socket_path, int timeout_ms)
{
	struct keyd_client *c;

	if (!socket_path)
		socket_path = getenv("HSMCA_KEYD_SOCKET");
	if (!socket_path || !*socket_path ||
	    strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return NULL;
	pthread_once(&fork_once, fork_watch);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	snprintf(c->path, sizeof(c->path), "%s", socket_path);
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : KEYD_DEFAULT_TIMEOUT_MS;
	if (pthread_key_create(&c->key, conn_thread_exit) != 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void keyd_client_free(struct keyd_client *c)
{
	if (!c)
		return;
	/* Other threads' connections die with the client; this thread's key
	 * value is cleared so its destructor does not run on freed memory. */
	pthread_setspecific(c->key, NULL);
	pthread_key_delete(c->key);
	while (c->conns) {
		struct conn *k = c->conns;
		c->conns = k->next;
		conn_close(k);
		free(k->buf);
		free(k);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *keyd_client_socket(const struct keyd_client *c)
{
	return c->path;
}

static struct conn *conn_get(struct keyd_client *c)
{
	struct conn *k = pthread_getspecific(c->key);

	if (k) {
		/* After fork() parent and child would read each other's answers. */
		unsigned forks = atomic_load_explicit(&fork_gen, memory_order_relaxed);
		if (k->forks != forks) {
			conn_close(k);
			k->forks = forks;
		}
		return k;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->buf = malloc(4 + KEYD_FRAME_MAX);
	if (!k->buf) {
		free(k);
		return NULL;
	}
	k->c = c;
	k->fd = -1;
	k->forks = atomic_load(&fork_gen);
	k->next_id = 1;
	pthread_mutex_lock(&c->lock);
	k->next = c->conns;
	if (c->conns)
		c->conns->prev = k;
	c->conns = k;
	pthread_mutex_unlock(&c->lock);
	pthread_setspecific(c->key, k);
	return k;
}

/* Wait until fd is ready for events or the deadline passes: 0 ready, -1 timeout/error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {fd, events, 0};
		int r;

		if (left <= 0)
			return -1;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, deadline))
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * An answer usually comes back sooner than it costs to put this thread to
 * sleep and wake it again (tens of microseconds on a VM). So before sleeping,
 * wait about as long as recent answers took on this connection (twice the
 * moving average), yielding the CPU as we go: with other work runnable (keyd,
 * other signers) the yield hands it over; on an idle machine the answer is
 * caught without a wake-up. When recent answers took longer than SPIN_MAX_US
 * the machine is busy (keyd queues, or the CPUs are shared with other work):
 * spinning would only burn CPU that keyd and everything else needs, so the
 * thread sleeps at once.
 *
 * It sleeps in poll(POLLIN), then reads the answer with one recv. Not in recv itself: a thread
 * asleep in recv on a Unix stream socket is woken whenever its own sent data is consumed (the
 * kernel's write-space wake-up on the socket's one wait queue is not filtered by what the
 * sleeper waits for), so keyd's reading the request woke the client once more, only for it to
 * sleep again, a context switch or two on each side per signature; poll's wake-ups are
 * filtered by event, and the extra system call costs far less.
 */
#define SPIN_MAX_US 200

/* Read one whole frame into buf (4 + KEYD_FRAME_MAX bytes), header and body
 * with one recv when they are there together; *body is its body's length.
 * Only one request is ever outstanding on a connection, so a byte beyond the
 * frame is a broken peer. Returns 0, or -1 (EOF, error, timeout, bad frame). */
static int recv_frame(int fd, uint8_t *buf, uint32_t *body, int64_t deadline, int64_t spin_us)
{
	int64_t spin_until = spin_us ? now_us() + spin_us : 0;
	size_t got = 0, want = 4;
	int ready = 0; /* poll said there are bytes: recv without asking poll first */

	for (;;) {
		ssize_t r;

		if (!ready && !(spin_until && now_us() < spin_until)) {
			/* Done spinning (or never started): sleep until bytes come. */
			if (wait_fd(fd, POLLIN, deadline))
				return -1;
			ready = 1;
		}
		r = recv(fd, buf + got, 4 + KEYD_FRAME_MAX - got, MSG_DONTWAIT);
		if (r > 0) {
			got += (size_t)r;
			if (want == 4 && got >= 4) {
				if (keyd_frame_len(buf, body))
					return -1;
				want = 4 + (size_t)*body;
			}
			if (got == want)
				return 0;
			if (got > want)
				return -1;
			ready = 0; /* the rest of a frame keyd sent in parts: wait for it */
		} else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!ready)
				sched_yield();
			ready = 0;
		} else {
			return -1; /* EOF or error */
		}
	}
}

/* One request, one response on an open connection. Returns 0, or -1 when the
 * connection failed (it is then closed). */
static int roundtrip(struct conn *k, struct keyd_req *req, struct keyd_resp *resp, int64_t deadline,
                     struct keyd_err *err)
{
	struct keyd_wbuf w = {k->buf, 0, 4 + KEYD_FRAME_MAX, 0};
	uint32_t body;
	const char *why = "";
	int64_t t0, spin;

	req->id = k->next_id++;
	if (keyd_req_encode(req, &w)) {
		seterr(err, KEYD_E_PROTOCOL, "request does not encode");
		return -2;
	}
	if (send_all(k->fd, w.p, w.len, deadline)) {
		seterr(err, KEYD_E_UNREACHABLE, "keyd at %s: send failed: %s", k->c->path,
		       errno ? strerror(errno) : "timeout");
		conn_close(k);
		return -1;
	}
	t0 = now_us();
	spin = 2 * k->rtt_us <= SPIN_MAX_US ? 2 * k->rtt_us : 0;
	if (recv_frame(k->fd, k->buf, &body, deadline, spin)) {
		seterr(err, KEYD_E_UNREACHABLE,
		       "keyd at %s: no answer (connection closed or timed out)", k->c->path);
		conn_close(k);
		return -1;
	}
	k->rtt_us = (7 * k->rtt_us + (now_us() - t0)) / 8;
	if (keyd_resp_decode(k->buf + 4, body, resp, &why) || resp->id != req->id ||
	    resp->op != req->op) {
		seterr(err, KEYD_E_PROTOCOL, "keyd answer does not parse or match: %s", why);
		conn_close(k);
		return -2;
	}
	return 0;
}

static int conn_open(struct conn *k, int64_t deadline, struct keyd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct keyd_req hello = {.op = KEYD_OP_HELLO, .vmin = 1, .vmax = KEYD_PROTO_VERSION};
	struct keyd_resp resp;
	int r;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", k->c->path);
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->fd < 0) {
		seterr(err, KEYD_E_UNREACHABLE, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(k->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		seterr(err, KEYD_E_UNREACHABLE, "cannot connect to keyd at %s: %s", k->c->path,
		       strerror(errno));
		conn_close(k);
		return -1;
	}
	r = roundtrip(k, &hello, &resp, deadline, err);
	if (r)
		return r;
	if (resp.status != KEYD_OK) {
		seterr(err, resp.status, "keyd refused hello: %s", resp.msg);
		conn_close(k);
		return -2;
	}
	/* A version 2 keyd answers everything but status's capabilities, which it leaves out. */
	if (resp.version < 2 || resp.version > KEYD_PROTO_VERSION) {
		seterr(err, KEYD_E_VERSION, "keyd speaks protocol %u, we speak 2 to %u",
		       resp.version, KEYD_PROTO_VERSION);
		conn_close(k);
		return -2;
	}
	return 0;
}

/* A connection keyd has closed (restart, idle) reads as EOF: find out before
 * sending, so a request that must not be repeated goes out on a live one. */
static int conn_dead(struct conn *k)
{
	struct pollfd p = {k->fd, POLLIN, 0};
	uint8_t b;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	return recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

/*
 * Send req and fill resp. Connection failures are retried on a new connection
 * (with backoff, until the timeout) when the request is idempotent; BUSY is
 * retried the same way. Returns the response status or a client status.
 */
static int call(struct keyd_client *c, struct keyd_req *req, struct keyd_resp *resp,
                struct keyd_err *err)
{
	/* Key generation on a token can take far longer than a signature. */
	int64_t deadline =
	    now_ms() +
	    (req->op == KEYD_OP_GENERATE && c->timeout_ms < 300000 ? 300000 : c->timeout_ms);
	/* A share presented twice is refused as a repeat: unseal is not sent again either. */
	int idempotent = req->op != KEYD_OP_GENERATE && req->op != KEYD_OP_UNSEAL;
	int backoff = 5;
	struct conn *k = conn_get(c);

	if (!k) {
		seterr(err, KEYD_E_INTERNAL, "out of memory");
		return KEYD_E_INTERNAL;
	}
	for (;;) {
		int r = 0, sent = 0;

		/* An idempotent request finds a dead connection by sending on it (EPIPE, or EOF
		 * for the answer) and goes again on a new one: no poll for it first. */
		if (!idempotent && k->fd >= 0 && conn_dead(k))
			conn_close(k);
		if (k->fd < 0)
			r = conn_open(k, deadline, err);
		if (r == 0) {
			sent = 1;
			r = roundtrip(k, req, resp, deadline, err);
		}
		if (r == -2)
			return err ? err->status : KEYD_E_PROTOCOL;
		if (r == 0 && resp->status != KEYD_E_BUSY)
			break;
		if (r == 0)
			seterr(err, KEYD_E_BUSY, "keyd is busy: %s", resp->msg);
		else if (sent && !idempotent)
			return KEYD_E_UNREACHABLE;
		if (now_ms() + backoff >= deadline)
			return err ? err->status : KEYD_E_UNREACHABLE;
		sleep_ms(backoff);
		backoff = backoff * 2 > 200 ? 200 : backoff * 2;
	}
	if (resp->status != KEYD_OK) {
		seterr(err, resp->status, "keyd: %s: %s", keyd_status_name(resp->status),
		       resp->msg);
		return resp->status;
	}
	seterr(err, KEYD_OK, "ok");
	return KEYD_OK;
}

static void copy_key(struct keyd_key *out, const struct keyd_keyinfo *ki)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->label, ki->label, sizeof(out->label));
	out->type = ki->type;
	out->bits = ki->bits;
	out->flags = ki->flags;
	out->spki_len = ki->spki_len;
	memcpy(out->spki, ki->spki, ki->spki_len);
}

static int check_label(const char *label, struct keyd_err *err)
{
	if (!label || !keyd_label_valid(label)) {
		seterr(err, KEYD_E_MALFORMED, "invalid key label (1-%d of A-Z a-z 0-9 . _ -)",
		       KEYD_LABEL_MAX);
		return -1;
	}
	return 0;
}

int keyd_client_hello(struct keyd_client *c, uint16_t *version, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_HELLO, .vmin = 1, .vmax = KEYD_PROTO_VERSION};
	struct keyd_resp resp;
	int r = call(c, &req, &resp, err);

	if (r == KEYD_OK && version)
		*version = resp.version;
	return r;
}

int keyd_client_get_pubkey(struct keyd_client *c, const char *label, struct keyd_key *key,
                           struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_GET_PUBKEY};
	struct keyd_resp resp;
	int r;

	if (check_label(label, err))
		return KEYD_E_MALFORMED;
	snprintf(req.label, sizeof(req.label), "%s", label);
	r = call(c, &req, &resp, err);
	if (r == KEYD_OK)
		copy_key(key, &resp.key);
	return r;
}

int keyd_client_list(struct keyd_client *c, struct keyd_key **keys, size_t *nkeys,
                     struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_LIST_KEYS};
	struct keyd_resp resp;
	struct keyd_rbuf rb;
	struct keyd_keyinfo ki;
	int r;

	*keys = NULL;
	*nkeys = 0;
	r = call(c, &req, &resp, err);
	if (r != KEYD_OK)
		return r;
	*keys = calloc(resp.nkeys ? resp.nkeys : 1, sizeof(**keys));
	if (!*keys) {
		seterr(err, KEYD_E_INTERNAL, "out of memory");
		return KEYD_E_INTERNAL;
	}
	rb = (struct keyd_rbuf){resp.keys, resp.keys_len, 0, 0};
	while (*nkeys < resp.nkeys && keyd_list_next(&rb, &ki) == 1)
		copy_key(&(*keys)[(*nkeys)++], &ki);
	return KEYD_OK;
}

int keyd_client_sign(struct keyd_client *c, const char *label, int alg, int hash, uint16_t salt_len,
                     const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len,
                     struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_SIGN};
	struct keyd_resp resp;
	int r;

	if (check_label(label, err))
		return KEYD_E_MALFORMED;
	if (digest_len != keyd_hash_len(hash) || digest_len > sizeof(req.digest)) {
		seterr(err, KEYD_E_BAD_ALG, "digest of %zu bytes does not fit hash %s", digest_len,
		       keyd_hash_name(hash));
		return KEYD_E_BAD_ALG;
	}
	snprintf(req.label, sizeof(req.label), "%s", label);
	req.alg = (uint8_t)alg;
	req.hash = (uint8_t)hash;
	req.salt_len = salt_len;
	memcpy(req.digest, digest, digest_len);
	req.digest_len = digest_len;
	r = call(c, &req, &resp, err);
	if (r != KEYD_OK)
		return r;
	if (resp.sig_len > *sig_len) {
		seterr(err, KEYD_E_INTERNAL, "signature of %zu bytes does not fit the buffer",
		       resp.sig_len);
		return KEYD_E_INTERNAL;
	}
	memcpy(sig, resp.sig, resp.sig_len);
	*sig_len = resp.sig_len;
	return KEYD_OK;
}

/* Data of several frames: sent one frame after the other on this thread's connection, the
 * answer to each read before the next goes (a lost connection starts the data again). */
static int sign_stream(struct keyd_client *c, struct keyd_req *req, const uint8_t *data,
                       size_t data_len, struct keyd_resp *resp, struct keyd_err *err)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	int backoff = 5;
	struct conn *k = conn_get(c);

	if (!k) {
		seterr(err, KEYD_E_INTERNAL, "out of memory");
		return KEYD_E_INTERNAL;
	}
	for (;;) {
		int r = 0;
		size_t off = 0;

		if (k->fd >= 0 && conn_dead(k))
			conn_close(k);
		if (k->fd < 0)
			r = conn_open(k, deadline, err);
		while (r == 0 && off < data_len) {
			size_t n =
			    data_len - off > KEYD_CHUNK_MAX ? KEYD_CHUNK_MAX : data_len - off;
			req->flags = (uint8_t)((off ? KEYD_SD_CONT : 0) |
			                       (off + n < data_len ? KEYD_SD_MORE : 0));
			req->sdata = data + off;
			req->sdata_len = n;
			/* Each frame's answer is waited for: a long CRL's frames would otherwise
			 * fill keyd's input while it hashes. The deadline grows with the data. */
			deadline += 1 + (int64_t)(n >> 14);
			r = roundtrip(k, req, resp, deadline, err);
			if (r == 0 && resp->status != KEYD_OK)
				break;
			off += n;
		}
		if (r == -2)
			return err ? err->status : KEYD_E_PROTOCOL;
		if (r == 0 && resp->status != KEYD_E_BUSY)
			break;
		if (r == 0) {
			seterr(err, KEYD_E_BUSY, "keyd is busy: %s", resp->msg);
			/* keyd forgets refused data at its last frame only: start afresh. */
			conn_close(k);
		}
		if (now_ms() + backoff >= deadline)
			return err ? err->status : KEYD_E_UNREACHABLE;
		sleep_ms(backoff);
		backoff = backoff * 2 > 200 ? 200 : backoff * 2;
	}
	if (resp->status != KEYD_OK) {
		seterr(err, resp->status, "keyd: %s: %s", keyd_status_name(resp->status),
		       resp->msg);
		/* A refusal of a first frame is repeated for the rest: hang up instead. */
		if (data_len > KEYD_CHUNK_MAX)
			conn_close(k);
		return resp->status;
	}
	seterr(err, KEYD_OK, "ok");
	return KEYD_OK;
}

int keyd_client_sign_data(struct keyd_client *c, const char *label, int alg, int hash,
                          uint16_t salt_len, const uint8_t *data, size_t data_len, uint8_t *sig,
                          size_t *sig_len, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_SIGN_DATA};
	struct keyd_resp resp;
	int r;

	if (check_label(label, err))
		return KEYD_E_MALFORMED;
	if (!data || data_len == 0) {
		seterr(err, KEYD_E_MALFORMED, "no data to sign");
		return KEYD_E_MALFORMED;
	}
	snprintf(req.label, sizeof(req.label), "%s", label);
	req.alg = (uint8_t)alg;
	req.hash = (uint8_t)hash;
	req.salt_len = salt_len;
	if (data_len <= KEYD_CHUNK_MAX) {
		req.sdata = data;
		req.sdata_len = data_len;
		r = call(c, &req, &resp, err);
	} else {
		r = sign_stream(c, &req, data, data_len, &resp, err);
	}
	if (r != KEYD_OK)
		return r;
	if (resp.sig_len == 0 || resp.sig_len > *sig_len) {
		seterr(err, KEYD_E_PROTOCOL, "signature of %zu bytes does not fit the buffer",
		       resp.sig_len);
		return KEYD_E_PROTOCOL;
	}
	memcpy(sig, resp.sig, resp.sig_len);
	*sig_len = resp.sig_len;
	return KEYD_OK;
}

int keyd_client_status(struct keyd_client *c, struct keyd_token_status *st, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_STATUS};
	struct keyd_resp resp;
	int r = call(c, &req, &resp, err);

	if (r == KEYD_OK)
		*st = resp.st;
	return r;
}

int keyd_client_generate(struct keyd_client *c, const char *label, int keytype, uint16_t keyparam,
                         struct keyd_key *key, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_GENERATE};
	struct keyd_resp resp;
	int r;

	if (check_label(label, err))
		return KEYD_E_MALFORMED;
	snprintf(req.label, sizeof(req.label), "%s", label);
	req.keytype = (uint8_t)keytype;
	req.keyparam = keyparam;
	r = call(c, &req, &resp, err);
	if (r == KEYD_OK)
		copy_key(key, &resp.key);
	return r;
}

/* WRAP and UNWRAP: one secret in, one blob out (or the reverse). */
static int wrap_call(struct keyd_client *c, int op, const char *label, const uint8_t *in,
                     size_t inlen, uint8_t *out, size_t *outlen, struct keyd_err *err)
{
	struct keyd_req req = {.op = (uint8_t)op};
	struct keyd_resp resp;
	struct conn *k;
	int r;

	if (check_label(label, err))
		return KEYD_E_MALFORMED;
	if (inlen == 0 || inlen > sizeof(req.data)) {
		seterr(err, KEYD_E_MALFORMED, "%s: %zu bytes is not a fitting size",
		       keyd_op_name(op), inlen);
		return KEYD_E_MALFORMED;
	}
	snprintf(req.label, sizeof(req.label), "%s", label);
	memcpy(req.data, in, inlen);
	req.data_len = inlen;
	r = call(c, &req, &resp, err);
	explicit_bzero(req.data, sizeof(req.data));
	if (r == KEYD_OK && resp.sig_len > *outlen) {
		seterr(err, KEYD_E_INTERNAL, "answer of %zu bytes does not fit the buffer",
		       resp.sig_len);
		r = KEYD_E_INTERNAL;
	} else if (r == KEYD_OK) {
		memcpy(out, resp.sig, resp.sig_len);
		*outlen = resp.sig_len;
	}
	/* The request (a WRAP's secret) and the answer (an UNWRAP's; resp.sig points into it)
	 * were both in this thread's connection buffer. */
	k = pthread_getspecific(c->key);
	if (k)
		explicit_bzero(k->buf, 4 + KEYD_FRAME_MAX);
	return r;
}

int keyd_client_wrap(struct keyd_client *c, const char *label, const uint8_t *secret,
                     size_t secret_len, uint8_t *blob, size_t *blob_len, struct keyd_err *err)
{
	return wrap_call(c, KEYD_OP_WRAP, label, secret, secret_len, blob, blob_len, err);
}

int keyd_client_unwrap(struct keyd_client *c, const char *label, const uint8_t *blob,
                       size_t blob_len, uint8_t *secret, size_t *secret_len, struct keyd_err *err)
{
	return wrap_call(c, KEYD_OP_UNWRAP, label, blob, blob_len, secret, secret_len, err);
}

int keyd_client_metrics(struct keyd_client *c, char *text, size_t cap, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_METRICS};
	struct keyd_resp resp;
	int r = call(c, &req, &resp, err);

	if (r != KEYD_OK)
		return r;
	if (resp.sig_len >= cap) {
		seterr(err, KEYD_E_INTERNAL, "metrics of %zu bytes do not fit the buffer",
		       resp.sig_len);
		return KEYD_E_INTERNAL;
	}
	memcpy(text, resp.sig, resp.sig_len);
	text[resp.sig_len] = 0;
	return KEYD_OK;
}

/* UNSEAL, SEAL, QUORUM: the quorum's state in the answer. */
static int quorum_call(struct keyd_client *c, struct keyd_req *req, struct keyd_quorum_status *q,
                       struct keyd_err *err)
{
	struct keyd_resp resp;
	struct conn *k;
	int r = call(c, req, &resp, err);

	if (r == KEYD_OK && q)
		*q = resp.q;
	/* An UNSEAL's share was in this thread's connection buffer. */
	k = pthread_getspecific(c->key);
	if (k && req->op == KEYD_OP_UNSEAL)
		explicit_bzero(k->buf, 4 + KEYD_FRAME_MAX);
	return r;
}

int keyd_client_unseal(struct keyd_client *c, const uint8_t *share, size_t share_len,
                       struct keyd_quorum_status *q, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_UNSEAL, .share = share, .share_len = share_len};

	if (share_len == 0 || share_len > KEYD_SHARE_MAX) {
		seterr(err, KEYD_E_MALFORMED, "unseal: a share file is 1-%d bytes, not %zu",
		       KEYD_SHARE_MAX, share_len);
		return KEYD_E_MALFORMED;
	}
	return quorum_call(c, &req, q, err);
}

int keyd_client_seal(struct keyd_client *c, struct keyd_quorum_status *q, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_SEAL};

	return quorum_call(c, &req, q, err);
}

int keyd_client_quorum(struct keyd_client *c, struct keyd_quorum_status *q, struct keyd_err *err)
{
	struct keyd_req req = {.op = KEYD_OP_QUORUM};

	return quorum_call(c, &req, q, err);
}
