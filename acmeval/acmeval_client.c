/* The client half of acmeval.h: what hsmca-cad links to ask hsmca-acmevald. One connection per
 * validation, one request frame, one answer frame, all within the caller's timeout. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "acmeval.h"
#include "acmeval_wire.h"

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, long deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -1;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0 || errno != EINTR)
			return -1;
	}
}

static int recv_full(int fd, uint8_t *buf, size_t n, long deadline)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r;
		if (wait_fd(fd, POLLIN, deadline))
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

static int fail(struct acmeval_result *out, const char *fmt, const char *arg)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->problem_type, sizeof(out->problem_type), "serverInternal");
	snprintf(out->detail, sizeof(out->detail), fmt, arg);
	return -1;
}

int acmeval_validate(const char *socket_path, const struct acmeval_request *req, int timeout_ms,
                     struct acmeval_result *out)
{
	uint8_t buf[ACMEVAL_FRAME_HDR + ACMEVAL_FRAME_MAX];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	char err[256] = "";
	size_t len, done = 0;
	int fd, n;

	if (!socket_path || strlen(socket_path) >= sizeof(sa.sun_path))
		return fail(out, "validator socket path %s", "is missing or too long");
	if (!req)
		return fail(out, "%s", "no request");
	n = acmeval_req_encode(req, buf, sizeof(buf), err, sizeof(err));
	if (n < 0)
		return fail(out, "bad validation request: %s", err);
	strcpy(sa.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(out, "validator: socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS &&
	    errno != EAGAIN) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		close(fd);
		return fail(out, "cannot reach the validator: %s", err);
	}
	while (done < (size_t)n) {
		ssize_t w;
		if (wait_fd(fd, POLLOUT, deadline)) {
			close(fd);
			return fail(out, "%s", "the validator did not take the request in time");
		}
		w = send(fd, buf + done, (size_t)n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0) {
			snprintf(err, sizeof(err), "%s", strerror(errno));
			close(fd);
			return fail(out, "sending to the validator: %s", err);
		}
		done += (size_t)w;
	}
	if (recv_full(fd, buf, ACMEVAL_FRAME_HDR, deadline)) {
		close(fd);
		return fail(out, "%s",
		            "the validator did not answer in time (or closed the connection)");
	}
	if (acmeval_frame_header(buf, ACMEVAL_MAGIC_ANSWER, ACMEVAL_FRAME_MAX, &len, err,
	                         sizeof(err)) ||
	    recv_full(fd, buf + ACMEVAL_FRAME_HDR, len, deadline)) {
		close(fd);
		return fail(out, "the validator's answer: %s", err[0] ? err : "truncated");
	}
	close(fd);
	if (acmeval_ans_decode(buf + ACMEVAL_FRAME_HDR, len, out, err, sizeof(err)))
		return fail(out, "the validator's answer: %s", err);
	return 0;
}
