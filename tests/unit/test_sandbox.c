/* The shared sandbox (ca-core/lib/sandbox.c): each case forks, confines the child with a daemon's
 * profile, and checks from inside what is still possible and what is refused. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>

#include "sandbox.h"

static const struct sandbox_profile keyd_profile = {"keyd", SANDBOX_NET_UNIX_SERVER};
static const struct sandbox_profile inet_profile = {"cad", SANDBOX_NET_INET};
static const struct sandbox_profile client_profile = {"acmevald", SANDBOX_NET_CLIENT};

/* Child exit codes: 0 all as expected, other values name the first check that failed. */
typedef int (*child_fn)(void);

static int run_child(child_fn fn)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static int confine_ipc(const struct sandbox_profile *p, int seccomp, int module_ipc)
{
	struct sandbox_config c;
	char err[256];

	sandbox_config_init(&c);
	c.seccomp = seccomp;
	c.module_ipc = module_ipc;
	if (sandbox_seccomp(&c, p, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_seccomp: %s\n", err);
		return -1;
	}
	return 0;
}

static int confine(const struct sandbox_profile *p, int seccomp)
{
	return confine_ipc(p, seccomp, 0);
}

/* A listening Unix socket in a fresh temporary path. */
static int unix_listener(struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/tmp/hsmca-sbx-%d.sock", (int)getpid());
	unlink(sa->sun_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) != 0 || listen(fd, 4) != 0)
		return -1;
	return fd;
}

static int keyd_cannot_open_network_sockets(void)
{
	if (confine(&keyd_profile, 1))
		return 1;
	errno = 0;
	if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM)
		return 2;
	errno = 0;
	if (socket(AF_INET6, SOCK_DGRAM, 0) != -1 || errno != EPERM)
		return 3;
	errno = 0;
	if (socket(AF_NETLINK, SOCK_RAW, 0) != -1 || errno != EPERM)
		return 4;
	errno = 0;
	if (socket(AF_PACKET, SOCK_RAW, 0) != -1 || errno != EPERM)
		return 5;
	return 0;
}

START_TEST(keyd_profile_refuses_af_inet_sockets_with_eperm)
{
	int st = run_child(keyd_cannot_open_network_sockets);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

static int keyd_serves_unix_but_connects_nowhere(void)
{
	struct sockaddr_un sa;
	int l = unix_listener(&sa), c, s;

	if (l < 0)
		return 1;
	if (confine(&keyd_profile, 1))
		return 2;
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0)
		return 3; /* AF_UNIX sockets stay possible */
	errno = 0;
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) != -1 || errno != EPERM)
		return 4;
	/* ... and a listener accepts and talks as before (a pair stands in for a client). */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 5;
	if (write(sv[0], "x", 1) != 1 || read(sv[1], &s, 1) != 1)
		return 6;
	unlink(sa.sun_path);
	return 0;
}

/* HSMCA_SECCOMP_DEBUG=log would turn every denial into "allow and log": in a build without
 * the development switch (meson -Dseccomp_debug) it must change nothing. */
static int debug_env_is_ignored(void)
{
	setenv("HSMCA_SECCOMP_DEBUG", "log", 1);
	if (confine(&keyd_profile, 1))
		return 1;
	errno = 0;
	if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM)
		return 2;
	return 0;
}

START_TEST(debug_env_cannot_weaken_the_filter)
{
	int st = run_child(debug_env_is_ignored);
#ifdef HSMCA_SECCOMP_DEBUG_SWITCH
	/* A development build honours it: the socket is allowed and logged. */
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "child status 0x%x", st);
#else
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
#endif
}
END_TEST

START_TEST(keyd_profile_keeps_unix_sockets_and_refuses_connect)
{
	int st = run_child(keyd_serves_unix_but_connects_nowhere);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

static int inet_reaches_loopback(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), c;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) != 0)
		return 1;
	if (confine(&inet_profile, 1))
		return 2;
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0)
		return 3;
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return 4;
	if (accept(l, NULL, NULL) < 0)
		return 5;
	errno = 0;
	if (socket(AF_PACKET, SOCK_RAW, 0) != -1 || errno != EPERM)
		return 6;
	return 0;
}

START_TEST(inet_profile_connects_but_refuses_raw_packet_sockets)
{
	int st = run_child(inet_reaches_loopback);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

/* hsmca-acmevald's profile: outbound IPv4/IPv6 connections, but no bind (no new listener, no
 * chosen source port), no netlink and no packet sockets. */
static int client_connects_but_cannot_bind(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), c, b;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) != 0)
		return 1;
	if (confine(&client_profile, 1))
		return 2;
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return 3;
	if (accept(l, NULL, NULL) < 0)
		return 4;
	if (socket(AF_INET6, SOCK_DGRAM, 0) < 0)
		return 5;
	b = socket(AF_INET, SOCK_STREAM, 0);
	errno = 0;
	if (b < 0 || bind(b, (struct sockaddr *)&any, sizeof(any)) != -1 || errno != EPERM)
		return 6;
	errno = 0;
	if (socket(AF_NETLINK, SOCK_RAW, 0) != -1 || errno != EPERM)
		return 7;
	errno = 0;
	if (socket(AF_PACKET, SOCK_RAW, 0) != -1 || errno != EPERM)
		return 8;
	return 0;
}

START_TEST(client_profile_connects_but_cannot_bind)
{
	int st = run_child(client_connects_but_cannot_bind);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

static int try_exec(void)
{
	char *const argv[] = {"/bin/true", NULL};

	if (confine(&inet_profile, 1))
		return 1;
	execv(argv[0], argv);
	return errno == EPERM ? 42 : 2;
}

START_TEST(exec_is_impossible_and_kills_the_process)
{
	int st = run_child(try_exec);

	if (sandbox_sanitizer_build()) /* the sanitizer's symbolizer gets EPERM, not death */
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 42, "child status 0x%x", st);
	else
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "child status 0x%x", st);
}
END_TEST

static void *thread_main(void *arg)
{
	return arg;
}

static int threads_yes_processes_no(void)
{
	static int token;
	pthread_t t;
	void *ret = NULL;
	pid_t pid;

	if (confine(&keyd_profile, 1))
		return 1;
	if (pthread_create(&t, NULL, thread_main, &token) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != &token)
		return 2;
	if (!sandbox_sanitizer_build()) {
		errno = 0;
		pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid != -1 || errno != EPERM)
			return 3;
	}
	return 0;
}

START_TEST(threads_start_but_new_processes_do_not)
{
	int st = run_child(threads_yes_processes_no);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

static int seccomp_off_sets_only_no_new_privs(void)
{
	int fd;

	if (confine(&keyd_profile, 0))
		return 1;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 3;
	close(fd);
	return 0;
}

START_TEST(seccomp_false_still_sets_no_new_privs)
{
	int st = run_child(seccomp_off_sets_only_no_new_privs);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

static int drop_to_nobody(void)
{
	struct sandbox_config c;
	struct passwd *pw = getpwnam("nobody");
	gid_t groups[64];
	char err[256];
	int n;

	if (!pw)
		return 1;
	sandbox_config_init(&c);
	snprintf(c.user, sizeof(c.user), "nobody");
	c.uid = pw->pw_uid;
	c.gid = pw->pw_gid;
	if (sandbox_drop_user(&c, err, sizeof(err)) != 0) {
		fprintf(stderr, "drop: %s\n", err);
		return 2;
	}
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid || getgid() != pw->pw_gid)
		return 3;
	if (setuid(0) == 0 || seteuid(0) == 0)
		return 4;
	n = getgroups(64, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == 0)
			return 5;
	return 0;
}

START_TEST(user_drop_switches_for_good)
{
	int st;

	ck_assert_msg(geteuid() == 0, "registered without root: main() should have skipped it");
	st = run_child(drop_to_nobody);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

static int drop_refused_without_privilege(void)
{
	struct sandbox_config c;
	struct passwd *pw = getpwnam("nobody"), *daemon_pw;
	uid_t nobody_uid;
	gid_t nobody_gid;
	char err[256] = "";

	if (!pw)
		return 1;
	nobody_uid = pw->pw_uid; /* getpwnam's result is overwritten by the next call */
	nobody_gid = pw->pw_gid;
	sandbox_config_init(&c);
	daemon_pw = getpwnam("daemon");
	if (!daemon_pw)
		return 1;
	snprintf(c.user, sizeof(c.user), "daemon");
	c.uid = daemon_pw->pw_uid;
	c.gid = daemon_pw->pw_gid;
	if (setgid(nobody_gid) != 0 || setuid(nobody_uid) != 0)
		return 2;
	if (sandbox_drop_user(&c, err, sizeof(err)) != -1)
		return 3;
	if (!strstr(err, "\"daemon\""))
		return 4;
	return 0;
}

START_TEST(user_drop_fails_loudly_when_it_cannot_switch)
{
	int st;

	ck_assert_msg(geteuid() == 0, "registered without root: main() should have skipped it");
	st = run_child(drop_refused_without_privilege);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

static int read_conf(const char *text, struct sandbox_config *c, char *err, size_t errlen)
{
	struct yconf y = {0};
	int rc = -1;

	if (yconf_load_mem(&y, "test.yaml", text, strlen(text)) == 0)
		rc = sandbox_config_read(&y, yconf_root(&y), c);
	snprintf(err, errlen, "%s", y.err);
	yconf_free(&y);
	return rc;
}

START_TEST(config_defaults_to_seccomp_on_and_no_user)
{
	struct sandbox_config c;
	char err[512];

	ck_assert_int_eq(read_conf("other: 1\n", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.seccomp, 1);
	ck_assert_str_eq(c.user, "");
	ck_assert_int_eq(read_conf("seccomp: false\nuser: nobody\n", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.seccomp, 0);
	ck_assert_int_eq(c.uid, getpwnam("nobody")->pw_uid);
	ck_assert_int_eq(c.gid, getpwnam("nobody")->pw_gid);
}
END_TEST

START_TEST(config_names_unknown_users_and_groups)
{
	struct sandbox_config c;
	char err[512];

	ck_assert_int_eq(read_conf("user: no-such-user-hsmca\n", &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "test.yaml:1") && strstr(err, "no-such-user-hsmca"), "%s", err);
	ck_assert_int_eq(
	    read_conf("user: nobody\ngroup: no-such-group-hsmca\n", &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "test.yaml:2") && strstr(err, "no-such-group-hsmca"), "%s", err);
	ck_assert_int_eq(read_conf("group: nogroup\n", &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "needs a user"), "%s", err);
	ck_assert_int_eq(read_conf("seccomp: perhaps\n", &c, err, sizeof(err)), -1);
}
END_TEST

/* The exit status meson (and the automake convention it follows) reads as "skipped". */
#define SKIP_STATUS 77

/*
 * Two meson tests run this program: "sandbox" (no argument) for what any user can check, and
 * "sandbox-user-drop" (argument "user-drop") for the user switch, which only root can make.
 * Without root the second one is reported as skipped, with its reason, instead of passing
 * checks that did nothing.
 */
/* A System V key of this test process's own; shmctl is not in the filter, so the unconfined
 * parent removes the segment. */
static key_t shm_key(void)
{
	return (key_t)(0x48530000 | (getppid() & 0xffff));
}

/* keyd with module_ipc (a PKCS#11 module that talks to a local daemon, docs/hsm-compatibility.md):
 * it connects to a Unix socket and attaches System V shared memory, and still opens no network
 * socket; without module_ipc the same shared memory is refused. */
static int keyd_module_ipc_reaches_local_services_only(void)
{
	struct sockaddr_un sa;
	int l = unix_listener(&sa), c, id;
	void *m;

	if (l < 0)
		return 1;
	if (confine_ipc(&keyd_profile, 1, 1))
		return 2;
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return 3;
	unlink(sa.sun_path);
	id = shmget(shm_key(), 4096, IPC_CREAT | 0600); /* removed by the parent */
	if (id < 0)
		return 4;
	m = shmat(id, NULL, 0);
	if (m == (void *)-1 || msync(m, 4096, MS_SYNC) != 0 || shmdt(m) != 0)
		return 5;
	errno = 0;
	if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM)
		return 6;
	errno = 0;
	if (socket(AF_INET6, SOCK_STREAM, 0) != -1 || errno != EPERM)
		return 7;
	return 0;
}

static int keyd_without_module_ipc_has_no_shared_memory(void)
{
	if (confine(&keyd_profile, 1))
		return 1;
	errno = 0;
	if (shmget(shm_key(), 4096, IPC_CREAT | 0600) != -1 || errno != EPERM)
		return 2;
	return 0;
}

START_TEST(keyd_module_ipc_allows_unix_connect_and_shm_but_no_network)
{
	int st = run_child(keyd_module_ipc_reaches_local_services_only);
	int id = shmget((key_t)(0x48530000 | (getpid() & 0xffff)), 0, 0);

	if (id >= 0)
		shmctl(id, IPC_RMID, NULL);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	st = run_child(keyd_without_module_ipc_has_no_shared_memory);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}
END_TEST

int main(int argc, char **argv)
{
	int user_drop = argc > 1 && strcmp(argv[1], "user-drop") == 0;
	Suite *s;
	TCase *tc;
	SRunner *sr;
	int failed;

	if (argc > 2 || (argc == 2 && !user_drop)) {
		fprintf(stderr, "usage: %s [user-drop]\n", argv[0]);
		return 2;
	}
	if (user_drop && geteuid() != 0) {
		printf("SKIP user_drop_switches_for_good, "
		       "user_drop_fails_loudly_when_it_cannot_switch: "
		       "switching users needs root, and this runs as uid %d\n",
		       (int)geteuid());
		return SKIP_STATUS;
	}
	s = suite_create("sandbox");
	tc = tcase_create(user_drop ? "user-drop" : "sandbox");
	if (user_drop) {
		tcase_add_test(tc, user_drop_switches_for_good);
		tcase_add_test(tc, user_drop_fails_loudly_when_it_cannot_switch);
	} else {
		tcase_add_test(tc, keyd_profile_refuses_af_inet_sockets_with_eperm);
		tcase_add_test(tc, keyd_profile_keeps_unix_sockets_and_refuses_connect);
		tcase_add_test(tc, debug_env_cannot_weaken_the_filter);
		tcase_add_test(tc, inet_profile_connects_but_refuses_raw_packet_sockets);
		tcase_add_test(tc, client_profile_connects_but_cannot_bind);
		tcase_add_test(tc, exec_is_impossible_and_kills_the_process);
		tcase_add_test(tc, threads_start_but_new_processes_do_not);
		tcase_add_test(tc, seccomp_false_still_sets_no_new_privs);
		tcase_add_test(tc, config_defaults_to_seccomp_on_and_no_user);
		tcase_add_test(tc, config_names_unknown_users_and_groups);
		tcase_add_test(tc, keyd_module_ipc_allows_unix_connect_and_shm_but_no_network);
	}
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
