/* keyd's process hardening and locked secret buffers (keyd_harden.h). */
#include "keyd_harden.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

int keyd_harden_process(char *err, size_t errlen)
{
	struct rlimit none = {0, 0};

	/* Not dumpable: no core file, /proc/PID/{mem,environ,maps} and ptrace closed to keyd's
	 * own user. sandbox_drop_user keeps it so across the user switch. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		snprintf(err, errlen, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
		return -1;
	}
	/* And no core file even if something made it dumpable again. */
	if (setrlimit(RLIMIT_CORE, &none) != 0) {
		snprintf(err, errlen, "setrlimit(RLIMIT_CORE, 0): %s", strerror(errno));
		return -1;
	}
	return 0;
}

static size_t page_round(size_t n)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t p = pg > 0 ? (size_t)pg : 4096;

	return (n + p - 1) / p * p;
}

char *keyd_secret_alloc(size_t n, char *err, size_t errlen)
{
	size_t len = page_round(n);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map memory for the PIN: %s", strerror(errno));
		return NULL;
	}
	/* The system call itself: AddressSanitizer's mlock interceptor does nothing and says 0. */
	if (syscall(SYS_mlock, p, len) != 0) {
		int e = errno;
		munmap(p, len);
		snprintf(err, errlen,
		         "cannot lock %zu bytes of memory for the PIN (mlock: %s); raise keyd's "
		         "RLIMIT_MEMLOCK (LimitMEMLOCK= under systemd)",
		         len, strerror(e));
		return NULL;
	}
	/* Best effort: an old kernel without MADV_DONTDUMP still has RLIMIT_CORE 0. */
	(void)madvise(p, len, MADV_DONTDUMP);
	memset(p, 0, len);
	return p;
}

void keyd_secret_free(char *p, size_t n)
{
	size_t len;

	if (!p)
		return;
	len = page_round(n);
	OPENSSL_cleanse(p, len);
	/* munmap unlocks too (and munlock is not in keyd's seccomp filter). */
	munmap(p, len);
}
