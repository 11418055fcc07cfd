/* The daemon scaffold (ca-core/lib/daemon_main.c): the options every daemon shares and a
 * daemon's own, the exit statuses of --help, --version, --check and usage errors, and a fake
 * daemon started through daemon_main that a SIGTERM stops cleanly, with and without an event
 * base of its own. Check runs each case in a child of its own, so signals and the sandbox's
 * no_new_privs stay there. */
#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon_main.h"

static const struct sandbox_profile test_profile = {"hsmca-test", SANDBOX_NET_INET};

/* The fake daemon's state: what the scaffold asked of it. */
struct fake {
	const char *level; /* --level VALUE */
	int flag;          /* --flag */
	int fail_load;     /* config_load fails */
	int own_base;      /* 1: offer an event base; 0: let the scaffold watch the signals */
	int term_in_make;  /* SIGTERM arrives while the daemon is being made */
	struct sandbox_config sandbox;
	struct event_base *base;
	struct event *raise_ev;
	atomic_int stopped;
	int made, ran, cleaned, loaded;
};

static int set_level(void *ctx, const char *arg)
{
	struct fake *f = ctx;

	if (!strcmp(arg, "bad")) {
		fprintf(stderr, "test: --level cannot be bad\n");
		return -1;
	}
	f->level = arg;
	return 0;
}

static int set_flag(void *ctx, const char *arg)
{
	(void)arg;
	((struct fake *)ctx)->flag = 1;
	return 0;
}

/* --flag and --check exclude each other, as crld's --once and --check do. */
static int options_check(void *ctx, const struct daemon_args *args)
{
	return ((struct fake *)ctx)->flag && args->check ? -1 : 0;
}

static int load(void *ctx, const char *path, char *err, size_t errlen)
{
	struct fake *f = ctx;

	if (f->fail_load) {
		snprintf(err, errlen, "%s: no such configuration", path);
		return -1;
	}
	f->loaded = 1;
	sandbox_config_init(&f->sandbox);
	f->sandbox.seccomp = 0; /* the test process stays unconfined */
	return 0;
}

static void note(void *ctx, char *out, size_t n)
{
	(void)ctx;
	snprintf(out, n, "(test)");
}

static const struct sandbox_config *sandbox_of(void *ctx)
{
	return &((struct fake *)ctx)->sandbox;
}

/* Sends SIGTERM to the process once the loop runs. */
static void on_raise(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	kill(getpid(), SIGTERM);
}

static int make(void *ctx, char *err, size_t errlen)
{
	struct fake *f = ctx;

	f->made = 1;
	if (f->term_in_make)
		kill(getpid(), SIGTERM);
	if (f->own_base) {
		f->base = event_base_new();
		f->raise_ev = f->base ? event_new(f->base, -1, 0, on_raise, f) : NULL;
		if (!f->raise_ev) {
			snprintf(err, errlen, "no event base");
			return -1;
		}
	}
	return 0;
}

static struct event_base *base_of(void *ctx)
{
	return ((struct fake *)ctx)->base;
}

static void stop(void *ctx)
{
	struct fake *f = ctx;

	atomic_store(&f->stopped, 1);
	if (f->base)
		event_base_loopbreak(f->base);
}

static int run(void *ctx)
{
	struct fake *f = ctx;

	f->ran = 1;
	if (f->own_base) {
		struct timeval soon = {0, 1000};
		if (!f->term_in_make)
			event_add(f->raise_ev, &soon);
		return event_base_dispatch(f->base) < 0 ? -1 : 0;
	}
	/* A loop without a base, like crld's: polls its flag. */
	kill(getpid(), SIGTERM);
	for (int i = 0; i < 500 && !atomic_load(&f->stopped); i++)
		usleep(10000);
	return atomic_load(&f->stopped) ? 0 : -1;
}

static void cleanup(void *ctx)
{
	struct fake *f = ctx;

	f->cleaned = 1;
	if (f->raise_ev)
		event_free(f->raise_ev);
	if (f->base)
		event_base_free(f->base);
}

static const struct daemon_option fake_options[] = {
    {"level", 1, 'l', set_level},
    {"flag", 0, 0, set_flag},
    {NULL, 0, 0, NULL},
};

static struct daemon_def fake_def(int debug_alias, int with_base)
{
	struct daemon_def d = {
	    .name = "hsmca-test",
	    .doc = "docs/test.md",
	    .help = "  --level VALUE  a value\n",
	    .options = fake_options,
	    .debug_alias = debug_alias,
	    .sandbox = &test_profile,
	    .user_switch = DAEMON_USER_BEFORE_MAKE,
	    .options_check = options_check,
	    .config_load = load,
	    .check_note = note,
	    .sandbox_config = sandbox_of,
	    .make = make,
	    .base = with_base ? base_of : NULL,
	    .stop = stop,
	    .run = run,
	    .cleanup = cleanup,
	};
	return d;
}

#define ARGV(...)                                                                                  \
	(char *[])                                                                                 \
	{                                                                                          \
		"hsmca-test", __VA_ARGS__, NULL                                                    \
	}
#define ARGC(...) ((int)(sizeof((char *[]){"hsmca-test", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(def, f, args, ...)                                                                   \
	daemon_parse_options(&(def), &(f), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), &(args))

START_TEST(common_options_are_read)
{
	struct daemon_def d = fake_def(0, 1);
	struct daemon_args a;
	struct fake f = {0};

	ck_assert_int_eq(PARSE(d, f, a, "--config", "x.yaml", "--check", "--verbose"),
	                 DAEMON_PARSE_RUN);
	ck_assert_str_eq(a.config, "x.yaml");
	ck_assert_int_eq(a.check, 1);
	ck_assert_int_eq(a.verbose, 1);
	/* The one-letter forms the daemons always accepted, and a second parse in one process. */
	ck_assert_int_eq(PARSE(d, f, a, "-c", "y.yaml"), DAEMON_PARSE_RUN);
	ck_assert_str_eq(a.config, "y.yaml");
	ck_assert_int_eq(a.check, 0);
	ck_assert_int_eq(a.verbose, 0);
	ck_assert_int_eq(PARSE(d, f, a, "-c", "y.yaml", "-k", "-v"), DAEMON_PARSE_RUN);
	ck_assert_int_eq(a.check, 1);
	ck_assert_int_eq(a.verbose, 1);
}
END_TEST

START_TEST(help_and_version_exit_before_anything_else)
{
	struct daemon_def d = fake_def(0, 1);
	struct daemon_args a;
	struct fake f = {0};

	ck_assert_int_eq(PARSE(d, f, a, "--help"), DAEMON_PARSE_HELP);
	ck_assert_int_eq(PARSE(d, f, a, "--version"), DAEMON_PARSE_VERSION);
	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "--version"), DAEMON_PARSE_VERSION);
	ck_assert_int_eq(PARSE(d, f, a, "-h"), DAEMON_PARSE_HELP);
	/* What main returns for them. */
	ck_assert_int_eq(daemon_main(&d, &f, ARGC("--help"), ARGV("--help")), 0);
	ck_assert_int_eq(daemon_main(&d, &f, ARGC("--version"), ARGV("--version")), 0);
	ck_assert_int_eq(f.loaded, 0);
}
END_TEST

START_TEST(usage_errors)
{
	struct daemon_def d = fake_def(0, 1);
	struct daemon_args a;
	struct fake f = {0};

	ck_assert_int_eq(PARSE(d, f, a, "--check"), DAEMON_PARSE_USAGE); /* no --config */
	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "extra"), DAEMON_PARSE_USAGE);
	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "--nonsense"), DAEMON_PARSE_USAGE);
	ck_assert_int_eq(PARSE(d, f, a, "--config"), DAEMON_PARSE_USAGE);
	ck_assert_int_eq(daemon_main(&d, &f, ARGC("--check"), ARGV("--check")), 2);
	ck_assert_int_eq(f.loaded, 0);
}
END_TEST

START_TEST(debug_is_an_alias_only_where_asked)
{
	struct daemon_def keyd_like = fake_def(1, 1), other = fake_def(0, 1);
	struct daemon_args a;
	struct fake f = {0};

	ck_assert_int_eq(PARSE(keyd_like, f, a, "--config", "x", "--debug"), DAEMON_PARSE_RUN);
	ck_assert_int_eq(a.verbose, 1);
	ck_assert_int_eq(PARSE(keyd_like, f, a, "--config", "x", "-d"), DAEMON_PARSE_RUN);
	ck_assert_int_eq(a.verbose, 1);
	ck_assert_int_eq(PARSE(keyd_like, f, a, "--config", "x", "--verbose"), DAEMON_PARSE_RUN);
	ck_assert_int_eq(a.verbose, 1);
	ck_assert_int_eq(PARSE(other, f, a, "--config", "x", "--debug"), DAEMON_PARSE_USAGE);
}
END_TEST

START_TEST(own_options_reach_the_daemon)
{
	struct daemon_def d = fake_def(0, 1);
	struct daemon_args a;
	struct fake f = {0};

	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "--level", "high", "--flag"),
	                 DAEMON_PARSE_RUN);
	ck_assert_str_eq(f.level, "high");
	ck_assert_int_eq(f.flag, 1);
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "-l", "low"), DAEMON_PARSE_RUN);
	ck_assert_str_eq(f.level, "low");
	ck_assert_int_eq(f.flag, 0);
	/* The daemon refuses a value, or a combination. */
	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "--level", "bad"), DAEMON_PARSE_USAGE);
	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "--level"), DAEMON_PARSE_USAGE);
	ck_assert_int_eq(PARSE(d, f, a, "--config", "x", "--flag", "--check"), DAEMON_PARSE_USAGE);
}
END_TEST

START_TEST(check_reads_the_configuration_and_exits)
{
	struct daemon_def d = fake_def(0, 1);
	struct fake f = {0};

	ck_assert_int_eq(
	    daemon_main(&d, &f, ARGC("--config", "x", "--check"), ARGV("--config", "x", "--check")),
	    0);
	ck_assert_int_eq(f.loaded, 1);
	ck_assert_int_eq(f.made, 0);
	ck_assert_int_eq(f.cleaned, 1);
	memset(&f, 0, sizeof(f));
	f.fail_load = 1;
	ck_assert_int_eq(
	    daemon_main(&d, &f, ARGC("--config", "x", "--check"), ARGV("--config", "x", "--check")),
	    1);
	ck_assert_int_eq(f.made, 0);
	ck_assert_int_eq(f.cleaned, 1);
}
END_TEST

START_TEST(sigterm_stops_a_daemon_on_its_base)
{
	struct daemon_def d = fake_def(0, 1);
	struct fake f = {.own_base = 1};

	ck_assert_int_eq(daemon_main(&d, &f, ARGC("--config", "x"), ARGV("--config", "x")), 0);
	ck_assert_int_eq(f.made, 1);
	ck_assert_int_eq(f.ran, 1);
	ck_assert_int_eq(atomic_load(&f.stopped), 1);
	ck_assert_int_eq(f.cleaned, 1);
	ck_assert_int_eq(signal(SIGPIPE, SIG_DFL) == SIG_IGN, 1);
}
END_TEST

START_TEST(sigterm_stops_a_daemon_without_a_base)
{
	struct daemon_def d = fake_def(0, 0);
	struct fake f = {0};

	ck_assert_int_eq(daemon_main(&d, &f, ARGC("--config", "x"), ARGV("--config", "x")), 0);
	ck_assert_int_eq(f.ran, 1);
	ck_assert_int_eq(atomic_load(&f.stopped), 1);
	ck_assert_int_eq(f.cleaned, 1);
}
END_TEST

/* A service manager may stop a daemon as soon as it starts: the signal waits until it is
 * watched, then stops the daemon cleanly instead of killing it half made. */
START_TEST(sigterm_during_make_waits_for_the_watch)
{
	struct daemon_def d = fake_def(0, 1);
	struct fake f = {.own_base = 1, .term_in_make = 1};

	ck_assert_int_eq(daemon_main(&d, &f, ARGC("--config", "x"), ARGV("--config", "x")), 0);
	ck_assert_int_eq(f.ran, 1);
	ck_assert_int_eq(atomic_load(&f.stopped), 1);
	ck_assert_int_eq(f.cleaned, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon-main");
	TCase *tc = tcase_create("daemon-main");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, common_options_are_read);
	tcase_add_test(tc, help_and_version_exit_before_anything_else);
	tcase_add_test(tc, usage_errors);
	tcase_add_test(tc, debug_is_an_alias_only_where_asked);
	tcase_add_test(tc, own_options_reach_the_daemon);
	tcase_add_test(tc, check_reads_the_configuration_and_exits);
	tcase_add_test(tc, sigterm_stops_a_daemon_on_its_base);
	tcase_add_test(tc, sigterm_stops_a_daemon_without_a_base);
	tcase_add_test(tc, sigterm_during_make_waits_for_the_watch);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
