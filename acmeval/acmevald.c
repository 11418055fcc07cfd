/* hsmca-acmevald's serving: a Unix socket (mode and group from the configuration, peers
 * checked by SO_PEERCRED), a fixed pool of workers that each accept one connection, read one
 * bounded request frame, validate and answer; counters by type and result. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>
#include <curl/curl.h>

#include "acmevald.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"

#define IO_TIMEOUT_MS 5000 /* the peer's request must arrive within this */

struct acmevald {
	const struct acmeval_config *cfg;
	int lfd;
	int stop_pipe[2];
	pthread_t workers[ACMEVAL_MAX_WORKERS];
	int nworkers;
	atomic_int stopping;
	struct metrics *m;
	struct metrics_family *validations, *refused_peers, *bad_frames;
	int curl_inited, ares_inited;
};

void acmeval_run(const struct acmeval_config *cfg, const struct acmeval_req *req,
                 struct acmeval_result *res)
{
	switch (req->type) {
	case ACMEVAL_HTTP01:
		acmeval_http01(cfg, req, res);
		return;
	case ACMEVAL_DNS01:
		acmeval_dns01(cfg, req, res);
		return;
	case ACMEVAL_TLSALPN01:
		acmeval_tlsalpn01(cfg, req, res);
		return;
	}
	acmeval_fail(res, "serverInternal", "unknown challenge type");
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exactly n bytes, or -1 (closed, error or the deadline). */
static int read_full(int fd, uint8_t *buf, size_t n, long deadline)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t n, long deadline)
{
	size_t done = 0;

	while (done < n) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		long left = deadline - now_ms();
		ssize_t w;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		w = send(fd, buf + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

static void answer(int fd, const struct acmeval_result *res)
{
	uint8_t buf[ACMEVAL_FRAME_HDR + ACMEVAL_FRAME_MAX];
	int n = acmeval_ans_encode(res, buf, sizeof(buf));

	if (n > 0)
		(void)write_full(fd, buf, (size_t)n, now_ms() + IO_TIMEOUT_MS);
}

static void serve_metrics(struct acmevald *d, int fd)
{
	char *text = malloc(ACMEVAL_METRICS_MAX + ACMEVAL_FRAME_HDR);
	size_t len = 0;

	if (!text)
		return;
	metrics_write(d->m, text + ACMEVAL_FRAME_HDR, ACMEVAL_METRICS_MAX, &len);
	acmeval_frame_put_header((uint8_t *)text, ACMEVAL_MAGIC_METRICS_TEXT, len);
	(void)write_full(fd, (uint8_t *)text, len + ACMEVAL_FRAME_HDR, now_ms() + IO_TIMEOUT_MS);
	free(text);
}

static void serve(struct acmevald *d, int fd)
{
	uint8_t hdr[ACMEVAL_FRAME_HDR], payload[ACMEVAL_FRAME_MAX];
	struct acmeval_result res;
	struct acmeval_req req;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	long deadline = now_ms() + IO_TIMEOUT_MS, started;
	char err[256] = "";
	size_t len;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
		log_warn("acmeval: SO_PEERCRED: %s", strerror(errno));
		return;
	}
	if (d->cfg->peer_uid_set && cred.uid != d->cfg->peer_uid) {
		/* Nothing is answered: the peer learns only that the connection closed. */
		log_warn("acmeval: refused a connection from uid %u (only uid %u may ask)",
		         (unsigned)cred.uid, (unsigned)d->cfg->peer_uid);
		metrics_inc(metrics_get(d->refused_peers));
		return;
	}
	if (read_full(fd, hdr, sizeof(hdr), deadline))
		return;
	if (memcmp(hdr, ACMEVAL_MAGIC_METRICS, 4) == 0) {
		if (acmeval_frame_header(hdr, ACMEVAL_MAGIC_METRICS, 0, &len, err, sizeof(err))) {
			log_warn("acmeval: bad metrics request from uid %u: %s", (unsigned)cred.uid,
			         err);
			return;
		}
		serve_metrics(d, fd);
		return;
	}
	memset(&res, 0, sizeof(res));
	if (acmeval_frame_header(hdr, ACMEVAL_MAGIC_REQUEST, ACMEVAL_FRAME_MAX, &len, err,
	                         sizeof(err)) ||
	    read_full(fd, payload, len, deadline) ||
	    acmeval_req_decode(payload, len, &req, err, sizeof(err))) {
		if (!err[0])
			snprintf(err, sizeof(err), "request truncated or too slow");
		log_warn("acmeval: bad request from uid %u: %s", (unsigned)cred.uid, err);
		metrics_inc(metrics_get(d->bad_frames));
		acmeval_fail(&res, "serverInternal", "the validator refused the request: %s", err);
		answer(fd, &res);
		return;
	}
	started = now_ms();
	acmeval_run(d->cfg, &req, &res);
	/* The token names the challenge; the key authorization and bodies are not logged. */
	log_info("acmeval: %s %s:%s token=%s -> %s%s%s (%ld ms)", acmeval_type_name(req.type),
	         req.is_ip ? "ip" : "dns", req.identifier, req.token,
	         res.valid ? "valid" : "invalid", res.valid ? "" : " ",
	         res.valid ? "" : res.problem_type, now_ms() - started);
	if (!res.valid)
		log_debug("acmeval: token=%s detail: %s", req.token, res.detail);
	metrics_inc(metrics_get(d->validations, acmeval_type_name(req.type),
	                        res.valid ? "valid" : res.problem_type));
	answer(fd, &res);
}

static void *worker(void *arg)
{
	struct acmevald *d = arg;

	while (!atomic_load(&d->stopping)) {
		struct pollfd p[2] = {{.fd = d->lfd, .events = POLLIN},
		                      {.fd = d->stop_pipe[0], .events = POLLIN}};
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("acmeval: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue; /* another worker took it, or the peer went away */
		serve(d, fd);
		close(fd);
	}
	return NULL;
}

static int listen_unix(const struct acmeval_config *cfg, int *out, char *err, size_t errlen)
{
	gid_t gid = (gid_t)-1;

	if (cfg->socket_group[0]) {
		struct group *g = getgrnam(cfg->socket_group);
		if (!g) {
			snprintf(err, errlen, "socket group \"%s\": no such group",
			         cfg->socket_group);
			return -1;
		}
		gid = g->gr_gid;
	}
	*out = daemon_listen_unix(cfg->socket_path, gid, (mode_t)cfg->socket_mode, 64, err, errlen);
	return *out < 0 ? -1 : 0;
}

int acmevald_new(const struct acmeval_config *cfg, struct acmevald **out, char *err, size_t errlen)
{
	struct acmevald *d = calloc(1, sizeof(*d));
	char merr[128];

	*out = NULL;
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->cfg = cfg;
	d->lfd = d->stop_pipe[0] = d->stop_pipe[1] = -1;
	*out = d;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		return -1;
	}
	d->curl_inited = 1;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		snprintf(err, errlen, "ares_library_init failed");
		return -1;
	}
	d->ares_inited = 1;
	if (metrics_new(&d->m) ||
	    metrics_counter(d->m, "hsmca_acmeval_validations_total",
	                    "Challenge validations by type and result (valid or the problem type).",
	                    "type,result", 64, &d->validations, merr, sizeof(merr)) ||
	    metrics_counter(d->m, "hsmca_acmeval_refused_peers_total",
	                    "Connections refused because the peer's uid is not the configured one.",
	                    NULL, 1, &d->refused_peers, merr, sizeof(merr)) ||
	    metrics_counter(d->m, "hsmca_acmeval_bad_requests_total",
	                    "Requests refused as malformed.", NULL, 1, &d->bad_frames, merr,
	                    sizeof(merr))) {
		snprintf(err, errlen, "metrics: %s", merr);
		return -1;
	}
	if (pipe2(d->stop_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if (listen_unix(cfg, &d->lfd, err, errlen))
		return -1;
	for (int i = 0; i < cfg->workers; i++) {
		if (pthread_create(&d->workers[i], NULL, worker, d) != 0) {
			snprintf(err, errlen, "pthread_create failed");
			acmevald_stop(d);
			return -1;
		}
		d->nworkers++;
	}
	log_info("acmeval: listening on %s (mode %04lo%s%s), %d workers, %zu allowed ranges, "
	         "%zu hosts entries, resolver %s",
	         cfg->socket_path, cfg->socket_mode, cfg->socket_group[0] ? ", group " : "",
	         cfg->socket_group, cfg->workers, cfg->nallow, cfg->nhosts,
	         cfg->resolver[0] ? cfg->resolver : "of the system");
	return 0;
}

int acmevald_run(struct acmevald *d)
{
	for (int i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	d->nworkers = 0;
	return 0;
}

void acmevald_stop(struct acmevald *d)
{
	if (!d)
		return;
	atomic_store(&d->stopping, 1);
	if (d->stop_pipe[1] >= 0)
		(void)!write(d->stop_pipe[1], "x", 1);
}

void acmevald_free(struct acmevald *d)
{
	if (!d)
		return;
	acmevald_stop(d);
	for (int i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	if (d->lfd >= 0) {
		close(d->lfd);
		unlink(d->cfg->socket_path);
	}
	if (d->stop_pipe[0] >= 0)
		close(d->stop_pipe[0]);
	if (d->stop_pipe[1] >= 0)
		close(d->stop_pipe[1]);
	metrics_free(d->m);
	if (d->ares_inited)
		ares_library_cleanup();
	if (d->curl_inited)
		curl_global_cleanup();
	free(d);
}
