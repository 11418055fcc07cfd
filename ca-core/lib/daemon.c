/* Start-up steps every hsmca daemon that signs through keyd shares. */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
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
