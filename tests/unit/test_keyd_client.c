/*
 * The keyd client library's wait for an answer, against a scripted keyd on a Unix socket:
 * it sleeps once per slow answer (not again when keyd reads the request), puts together an
 * answer that comes in parts, and gives up at its deadline when no answer comes.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keyd_client.h"
#include "keyd_proto.h"

/* How the scripted keyd answers the request after hello. */
enum script {
	SLOW_READ, /* reads the request 30 ms after it came, answers 30 ms later */
	IN_PARTS,  /* answers at once, but the header and the body 30 ms apart */
	NO_ANSWER, /* reads the request and never answers */
};

struct fake {
	char dir[64], path[128];
	int lfd;
	enum script script;
	pthread_t thread;
};

static void sleep_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};

	nanosleep(&ts, NULL);
}

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One request: its id and op, or -1 at EOF. */
static int read_req(int fd, struct keyd_req *req)
{
	static uint8_t buf[4 + KEYD_FRAME_MAX];
	uint32_t len;
	const char *why;

	if (read_full(fd, buf, 4) || keyd_frame_len(buf, &len) || read_full(fd, buf + 4, len))
		return -1;
	return keyd_req_decode(buf + 4, len, req, &why);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	static uint8_t out[4 + KEYD_FRAME_MAX];
	struct keyd_wbuf wb = {out, 0, sizeof(out), 0};
	struct keyd_req req;
	int fd = accept(f->lfd, NULL, NULL);

	/* Hellos are answered at once; the first other request as the script says. */
	for (;;) {
		if (fd < 0)
			goto out;
		if (f->script == SLOW_READ && wb.len)
			sleep_ms(30); /* the client is asleep by now */
		if (read_req(fd, &req) != 0)
			goto out;
		if (req.op != KEYD_OP_HELLO)
			break;
		wb = (struct keyd_wbuf){out, 0, sizeof(out), 0};
		keyd_resp_begin(&wb, req.op, req.id, KEYD_OK);
		keyd_put_u16(&wb, KEYD_PROTO_VERSION);
		keyd_put_str(&wb, "scripted");
		keyd_resp_end(&wb);
		if (send(fd, out, wb.len, MSG_NOSIGNAL) != (ssize_t)wb.len)
			goto out;
	}
	if (f->script == NO_ANSWER) {
		sleep_ms(2000);
		goto out;
	}
	wb = (struct keyd_wbuf){out, 0, sizeof(out), 0};
	keyd_resp_begin(&wb, req.op, req.id, KEYD_OK);
	keyd_put_blob(&wb, "keyd_up 1\n", 10);
	keyd_resp_end(&wb);
	if (f->script == SLOW_READ) {
		sleep_ms(30);
		send(fd, out, wb.len, MSG_NOSIGNAL);
	} else {
		send(fd, out, 4, MSG_NOSIGNAL);
		sleep_ms(30);
		send(fd, out + 4, wb.len - 4, MSG_NOSIGNAL);
	}
	sleep_ms(100); /* let the client read before the hang-up */
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void fake_start(struct fake *f, enum script s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(f->dir, sizeof(f->dir), "/tmp/hsmca-client.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/keyd.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(f->lfd, 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	f->script = s;
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

static long voluntary_switches(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_THREAD, &ru), 0);
	return ru.ru_nvcsw;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* keyd reading the request frees the client's sent bytes, which wakes a thread asleep in
 * recv on that socket; the client sleeps in poll(POLLIN), which that does not wake. */
START_TEST(a_slow_answer_costs_the_client_one_sleep)
{
	struct fake f;
	struct keyd_client *c;
	struct keyd_err err = {0};
	char text[64];
	long before;

	fake_start(&f, SLOW_READ);
	c = keyd_client_new(f.path, 2000);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(keyd_client_hello(c, NULL, &err), KEYD_OK);
	before = voluntary_switches();
	ck_assert_int_eq(keyd_client_metrics(c, text, sizeof(text), &err), KEYD_OK);
	ck_assert_str_eq(text, "keyd_up 1\n");
	ck_assert_msg(voluntary_switches() - before <= 1,
	              "the client slept %ld times for one answer, woken again when keyd read "
	              "its request",
	              voluntary_switches() - before);
	keyd_client_free(c);
	fake_stop(&f);
}
END_TEST

START_TEST(an_answer_in_two_parts_is_put_together)
{
	struct fake f;
	struct keyd_client *c;
	struct keyd_err err = {0};
	char text[64];

	fake_start(&f, IN_PARTS);
	c = keyd_client_new(f.path, 2000);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(keyd_client_metrics(c, text, sizeof(text), &err), KEYD_OK);
	ck_assert_str_eq(text, "keyd_up 1\n");
	keyd_client_free(c);
	fake_stop(&f);
}
END_TEST

START_TEST(no_answer_gives_up_at_the_deadline)
{
	struct fake f;
	struct keyd_client *c;
	struct keyd_err err = {0};
	char text[64];
	double t0, took;

	fake_start(&f, NO_ANSWER);
	c = keyd_client_new(f.path, 300);
	ck_assert_ptr_nonnull(c);
	t0 = now_s();
	/* metrics is idempotent: the client tries again on a new connection until the
	 * deadline, which the scripted keyd never accepts. */
	ck_assert_int_eq(keyd_client_metrics(c, text, sizeof(text), &err), KEYD_E_UNREACHABLE);
	took = now_s() - t0;
	ck_assert_msg(took >= 0.25 && took < 1.5, "gave up after %.3f s, not at 0.3 s", took);
	keyd_client_free(c);
	fake_stop(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-client");
	TCase *tc = tcase_create("wait");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, a_slow_answer_costs_the_client_one_sleep);
	tcase_add_test(tc, an_answer_in_two_parts_is_put_together);
	tcase_add_test(tc, no_answer_gives_up_at_the_deadline);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
