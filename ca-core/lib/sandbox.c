#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include <seccomp.h>

#include "log.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif
#ifndef SANDBOX_SANITIZER
#define SANDBOX_SANITIZER 0
#endif

int sandbox_sanitizer_build(void)
{
	return SANDBOX_SANITIZER;
}

void sandbox_config_init(struct sandbox_config *c)
{
	memset(c, 0, sizeof(*c));
	c->seccomp = 1;
}

/* A name from the user database, or a number. */
static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(name);
	char *end;
	long l;

	if (!pw) {
		errno = 0;
		l = strtol(name, &end, 10);
		if (errno || *end || end == name || l < 0 || l > INT_MAX)
			return -1;
		pw = getpwuid((uid_t)l);
		if (!pw)
			return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int lookup_group(const char *name, gid_t *gid)
{
	struct group *gr = getgrnam(name);
	char *end;
	long l;

	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	errno = 0;
	l = strtol(name, &end, 10);
	if (errno || *end || end == name || l < 0 || l > INT_MAX)
		return -1;
	*gid = (gid_t)l;
	return 0;
}

int sandbox_config_read(struct yconf *y, yaml_node_t *root, struct sandbox_config *out)
{
	yaml_node_t *v;

	sandbox_config_init(out);
	if (yconf_opt_str(y, root, "user", out->user, sizeof(out->user)) ||
	    yconf_opt_str(y, root, "group", out->group, sizeof(out->group)) ||
	    yconf_opt_bool(y, root, "seccomp", &out->seccomp))
		return -1;
	if (out->user[0] && lookup_user(out->user, &out->uid, &out->gid))
		return yconf_fail(y, yconf_get(y, root, "user"), "user", "no such user \"%s\"",
		                  out->user);
	if (out->group[0] && !out->user[0])
		return yconf_fail(y, yconf_get(y, root, "group"), "group",
		                  "a group needs a user (the user: key)");
	if (out->group[0] && lookup_group(out->group, &out->gid))
		return yconf_fail(y, (v = yconf_get(y, root, "group")), "group",
		                  "no such group \"%s\"", out->group);
	return 0;
}

int sandbox_drop_user(const struct sandbox_config *c, char *err, size_t errlen)
{
	struct passwd *pw;
	int dumpable;

	if (!c->user[0])
		return 0;
	if (getuid() == c->uid && geteuid() == c->uid && getgid() == c->gid && getegid() == c->gid)
		return 0; /* started as that user already (systemd's User=, su) */
	if (geteuid() != 0) {
		snprintf(err, errlen,
		         "configured to run as user \"%s\" (uid %u) but running as uid %u, "
		         "which cannot switch: start as root or as that user",
		         c->user, (unsigned)c->uid, (unsigned)geteuid());
		return -1;
	}
	/* The user's own supplementary groups (e.g. one that owns the token folder), and no
	 * group that root happened to be in. */
	pw = getpwuid(c->uid);
	dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (initgroups(pw ? pw->pw_name : c->user, c->gid) != 0 && setgroups(1, &c->gid) != 0) {
		snprintf(err, errlen, "setgroups for user \"%s\": %s", c->user, strerror(errno));
		return -1;
	}
	if (setresgid(c->gid, c->gid, c->gid) != 0) {
		snprintf(err, errlen, "setresgid(%u): %s", (unsigned)c->gid, strerror(errno));
		return -1;
	}
	if (setresuid(c->uid, c->uid, c->uid) != 0) {
		snprintf(err, errlen, "setresuid(%u): %s", (unsigned)c->uid, strerror(errno));
		return -1;
	}
	/* Belt and braces: the drop is real only if it cannot be undone. */
	if (c->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "privileges could be regained after switching to uid %u",
		         (unsigned)c->uid);
		return -1;
	}
	if (getuid() != c->uid || geteuid() != c->uid || getgid() != c->gid ||
	    getegid() != c->gid) {
		snprintf(err, errlen, "identity is not uid %u gid %u after the switch",
		         (unsigned)c->uid, (unsigned)c->gid);
		return -1;
	}
	/* The kernel resets the dumpable flag to fs.suid_dumpable when the credentials change:
	 * a process that made itself undumpable (keyd) stays so. */
	if (dumpable == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		snprintf(err, errlen, "prctl(PR_SET_DUMPABLE, 0) after the switch: %s",
		         strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the seccomp filter ---- */

/* Every daemon: files (configuration, SoftHSM's token store, dlopen of the PKCS#11 module on
 * recovery), memory, threads, time, signals, event loops, and serving an accepted socket. */
static const char *const base_calls[] = {
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "close",
    "close_range",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "statx",
    "statfs",
    "fstatfs",
    "lseek",
    "open",
    "openat",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "getdents",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "flock",
    "fsync",
    "fdatasync",
    "ftruncate",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "fchmod",
    "chmod",
    "fchmodat",
    "umask",
    "getcwd",
    "fadvise64",
    /* memory */
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "brk",
    "mincore",
    "membarrier",
    /* threads and time */
    "futex",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "sched_yield",
    "sched_getaffinity",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getresuid",
    "getresgid",
    "getrandom",
    "uname",
    "sysinfo",
    "getrusage",
    "times",
    /* signals and exit */
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "sigaltstack",
    "tgkill",
    "exit",
    "exit_group",
    "restart_syscall",
    /* event loops */
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "eventfd",
    "eventfd2",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    /* an accepted or connected socket, whatever its family */
    "accept",
    "accept4",
    "shutdown",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    NULL,
};

/* Only what an attacker who took over the process would want: the process dies. */
static const char *const kill_calls[] = {
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "perf_event_open",
    "userfaultfd",
    "reboot",
    "swapon",
    "swapoff",
    "iopl",
    "ioperm",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    "fanotify_init",
    "move_mount",
    "fsopen",
    "fsmount",
    "fspick",
    "open_tree",
    "mount_setattr",
    "quotactl",
    "acct",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "sethostname",
    "setdomainname",
    "lookup_dcookie",
    "vhangup",
    "syslog",
    "personality",
    "uselib",
    NULL,
};

/* The sanitizer runtime (ASan, LSan, UBSan): LeakSanitizer's StopTheWorld clones a tracer
 * without CLONE_THREAD that ptrace-attaches to every thread and waits for them; the
 * symbolizer may try to start llvm-symbolizer (left to fail with EPERM). */
static const char *const sanitizer_calls[] = {
    "ptrace",  "wait4",  "waitid",    "prctl",     "sched_setaffinity", "kill", "getpgid",
    "setpgid", "getsid", "prlimit64", "getrlimit", "setrlimit",         NULL,
};

static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a system call on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

static int allow(scmp_filter_ctx ctx, const char *name)
{
	return rule(ctx, SCMP_ACT_ALLOW, name, 0, NULL);
}

static int allow_if(scmp_filter_ctx ctx, const char *name, struct scmp_arg_cmp cmp)
{
	return rule(ctx, SCMP_ACT_ALLOW, name, 1, &cmp);
}

/* Development builds only (meson -Dseccomp_debug=true defines HSMCA_SECCOMP_DEBUG_SWITCH;
 * without it the variable is ignored with a warning, so no environment can weaken the filter
 * of a release build), HSMCA_SECCOMP_DEBUG in the environment:
 *  "log":  denied calls are allowed and logged by the kernel (dmesg: "audit: type=1326 ...
 *          syscall=N"), so one test run lists every call a profile is missing, the
 *          sanitizer's tracer included;
 *  "trap": denied calls are reported on stderr with their number and then fail with EPERM
 *          as they would have (x86_64), for hosts whose kernel log is not readable.
 * Resolve the numbers with scmp_sys_resolver. */
static void trap_handler(int sig, siginfo_t *si, void *uc_)
{
	char line[96];
	int n;

	(void)sig;
	n = snprintf(line, sizeof(line), "seccomp: denied system call %d (arch 0x%x)\n",
	             si->si_syscall, si->si_arch);
	if (n > 0)
		(void)!write(STDERR_FILENO, line, (size_t)n);
#if defined(__x86_64__)
	((ucontext_t *)uc_)->uc_mcontext.gregs[REG_RAX] = -EPERM;
#else
	(void)uc_;
	_exit(159);
#endif
}

static int build_filter(scmp_filter_ctx ctx, const struct sandbox_config *c,
                        const struct sandbox_profile *p, int sanitizer)
{
	int rc = 0;

	for (size_t i = 0; base_calls[i]; i++)
		rc |= allow(ctx, base_calls[i]);
	if (sanitizer)
		for (size_t i = 0; sanitizer_calls[i]; i++)
			rc |= allow(ctx, sanitizer_calls[i]);
	for (size_t i = 0; kill_calls[i]; i++) {
		if (sanitizer &&
		    (strcmp(kill_calls[i], "ptrace") == 0 || strcmp(kill_calls[i], "execve") == 0))
			continue; /* allowed, resp. left to fail with EPERM, above */
		rc |= rule(ctx, SCMP_ACT_KILL_PROCESS, kill_calls[i], 0, NULL);
	}

	/* Threads only: a clone without CLONE_THREAD would be a new process. clone3 hides its
	 * flags behind a pointer, so it answers ENOSYS and glibc falls back to clone. */
	if (sanitizer)
		rc |= allow(ctx, "clone");
	else
		rc |=
		    allow_if(ctx, "clone", SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	rc |= rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	/* Thread names, and reading the process's own settings; nothing else of prctl. */
	if (!sanitizer) {
		rc |= allow_if(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
		rc |= allow_if(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
		rc |= allow_if(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_GET_DUMPABLE));
		/* getrlimit (glibc: prlimit64 with no new limit) */
		rc |= allow_if(ctx, "prlimit64", SCMP_A2(SCMP_CMP_EQ, 0));
		rc |= allow(ctx, "getrlimit");
	}
	/* ioctl: stdio's isatty and libevent's byte counts only. */
	rc |= allow_if(ctx, "ioctl", SCMP_A1(SCMP_CMP_EQ, TCGETS));
	rc |= allow_if(ctx, "ioctl", SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	rc |= allow_if(ctx, "ioctl", SCMP_A1(SCMP_CMP_EQ, FIONBIO));

	/* Sockets: AF_UNIX for every daemon (libevent's signal socketpair, keyd's listener and its
	 * clients' connections to keyd); network families only for SANDBOX_NET_INET. */
	rc |= allow_if(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	rc |= allow_if(ctx, "socketpair", SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	rc |= allow(ctx, "listen");
	if (p->net == SANDBOX_NET_INET) {
		rc |= allow_if(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_INET));
		rc |= allow_if(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_INET6));
		rc |= allow_if(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_NETLINK));
		rc |= allow(ctx, "connect");
		rc |= allow(ctx, "bind");
	}
	if (c->module_ipc) {
		if (p->net == SANDBOX_NET_UNIX_SERVER)
			rc |= allow(ctx, "connect"); /* the other profiles allow it already */
		rc |= allow(ctx, "shmget");
		rc |= allow(ctx, "shmat");
		rc |= allow(ctx, "shmdt");
		rc |= allow(ctx, "msync"); /* openCryptoki flushes its token's shared memory */
	}
	if (p->net == SANDBOX_NET_CLIENT) {
		rc |= allow_if(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_INET));
		rc |= allow_if(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_INET6));
		rc |= allow(ctx, "connect");
	}
	return rc;
}

int sandbox_seccomp(const struct sandbox_config *c, const struct sandbox_profile *p, char *err,
                    size_t errlen)
{
#ifdef HSMCA_SECCOMP_DEBUG_SWITCH
	const char *mode = getenv("HSMCA_SECCOMP_DEBUG");
#else
	const char *mode = NULL;
#endif
	int trap = mode && strcmp(mode, "trap") == 0, logged = mode && strcmp(mode, "log") == 0;
	scmp_filter_ctx ctx;
	int rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -1;
	}
	if (!c->seccomp)
		return 0;
#ifndef HSMCA_SECCOMP_DEBUG_SWITCH
	if (getenv("HSMCA_SECCOMP_DEBUG"))
		log_warn("HSMCA_SECCOMP_DEBUG ignored: this build has no seccomp debug switch "
		         "(meson -Dseccomp_debug=true); the filter is enforced");
#endif
	if (trap) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = trap_handler;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSYS, &sa, NULL);
	}
	if (trap || logged)
		log_warn("seccomp debug mode \"%s\": denied calls are %s", mode,
		         trap ? "reported" : "allowed and logged");
	ctx = seccomp_init(trap ? SCMP_ACT_TRAP : logged ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(EPERM));
	if (!ctx) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = build_filter(ctx, c, p, SANDBOX_SANITIZER);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp filter for %s: %s", p->name, strerror(-rc));
		return -1;
	}
	return 0;
}

int sandbox_apply(const struct sandbox_config *c, const struct sandbox_profile *p, char *err,
                  size_t errlen)
{
	if (sandbox_drop_user(c, err, errlen) != 0)
		return -1;
	if (!c->user[0] && geteuid() == 0)
		log_warn("running as root: set \"user:\" in the configuration (or User= in the "
		         "systemd unit) to run as an unprivileged user");
	if (sandbox_seccomp(c, p, err, errlen) != 0)
		return -1;
	log_info(
	    "sandbox: uid %u gid %u, no_new_privs, seccomp %s%s%s", (unsigned)geteuid(),
	    (unsigned)getegid(), c->seccomp ? "on" : "off",
	    c->seccomp && c->module_ipc ? " (module_ipc: connect and shared memory allowed)" : "",
	    c->seccomp && SANDBOX_SANITIZER ? " (sanitizer build: ptrace and clone allowed)" : "");
	return 0;
}

int sandbox_start(const struct sandbox_config *c, const struct sandbox_profile *p,
                  int (*make)(void *arg, char *err, size_t errlen), void *arg, char *err,
                  size_t errlen)
{
	char why[512];

	if (sandbox_drop_user(c, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "sandbox: %s", why);
		return -1;
	}
	if (make(arg, err, errlen) != 0)
		return -1;
	if (sandbox_apply(c, p, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "sandbox: %s", why);
		return -1;
	}
	return 0;
}
