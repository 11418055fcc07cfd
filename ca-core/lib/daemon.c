/* Start-up steps every hsmca daemon that signs through keyd shares. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>

#include "daemon.h"
#include "log.h"
#include "provpath.h"

int daemon_providers_load(OSSL_PROVIDER **deflt, OSSL_PROVIDER **keyd)
{
	char err[1024];

	if (provpath_load_providers(deflt, keyd, err, sizeof(err)) != 0) {
		log_error("%s", err);
		ERR_print_errors_fp(stderr);
		return -1;
	}
	return 0;
}

void daemon_providers_unload(OSSL_PROVIDER *deflt, OSSL_PROVIDER *keyd)
{
	OSSL_PROVIDER_unload(keyd);
	OSSL_PROVIDER_unload(deflt);
}

int daemon_port_taken(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol), one = 1;
	int e = 0;

	if (fd < 0)
		return errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		e = errno;
	close(fd);
	return e;
}

int daemon_listen_unix(const char *path, gid_t gid, mode_t mode, int backlog, char *err,
                       size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", path);
		return -1;
	}
	if (strlen(path) + sizeof(".new") <= sizeof(sa.sun_path))
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", path);
	else
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	unlink(sa.sun_path);
	old = umask(0177); /* nobody else may connect while it is made, even briefly */
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r != 0) {
		snprintf(err, errlen, "bind %s: %s", sa.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	if (gid != (gid_t)-1 && chown(sa.sun_path, (uid_t)-1, gid) != 0) {
		snprintf(err, errlen, "socket %s: group %u: %s", path, (unsigned)gid,
		         strerror(errno));
		close(fd);
		unlink(sa.sun_path);
		return -1;
	}
	if (chmod(sa.sun_path, mode) != 0 || listen(fd, backlog) != 0 ||
	    (strcmp(sa.sun_path, path) && rename(sa.sun_path, path) != 0)) {
		snprintf(err, errlen, "socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(sa.sun_path);
		return -1;
	}
	return fd;
}
