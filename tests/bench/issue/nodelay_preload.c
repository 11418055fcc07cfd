/*
 * EXPERIMENT ONLY (tests/bench/issue/run --nodelay): an LD_PRELOAD shim for hsmca-cad that sets
 * TCP_NODELAY on every accepted TCP connection, to measure what Nagle's algorithm costs the API.
 * hsmca-cad writes an answer as two TLS records (headers, then body) without TCP_NODELAY, so
 * the second segment waits for the client's (delayed, ~40 ms) ACK of the first. Not part of
 * hsmca; the run script builds it into its temporary folder.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on non-TCP */
}

int accept(int s, struct sockaddr *a, socklen_t *l)
{
	static int (*real)(int, struct sockaddr *, socklen_t *);
	int fd;

	if (!real)
		real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	fd = real(s, a, l);
	nodelay(fd);
	return fd;
}

int accept4(int s, struct sockaddr *a, socklen_t *l, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	int fd;

	if (!real)
		real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	fd = real(s, a, l, flags);
	nodelay(fd);
	return fd;
}
