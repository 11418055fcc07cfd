/* How an hsmca daemon starts: daemon_main.h. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/provider.h>

#include "daemon.h"
#include "daemon_main.h"
#include "log.h"
#include "sandbox.h"

#ifndef HSMCA_VERSION
#define HSMCA_VERSION "unknown"
#endif

/* A daemon's own options beyond the common ones; cad has five. */
#define DAEMON_OWN_MAX 16

/* getopt_long's values for the common options that have no one-letter form, and for the
 * daemon's own: DAEMON_OPT_OWN + the index in def->options. */
enum { DAEMON_OPT_VERSION = 0x100, DAEMON_OPT_OWN = 0x200 };

void daemon_usage(const struct daemon_def *def, FILE *f)
{
	fprintf(f,
	        "usage: %s --config FILE [--check] [--verbose]\n"
	        "%s"
	        "  --config FILE  the configuration (%s)\n"
	        "  --check        read and check the configuration, then exit\n"
	        "  --verbose      log debug messages\n"
	        "  --version      print the version, then exit\n"
	        "  --help         print this help, then exit\n"
	        "%s",
	        def->name, def->synopsis ? def->synopsis : "", def->doc,
	        def->help ? def->help : "");
}

/* The own option whose one-letter form is c, or -1. */
static int own_by_short(const struct daemon_def *def, int c)
{
	for (int i = 0; def->options && def->options[i].name; i++)
		if (def->options[i].short_name && def->options[i].short_name == c)
			return i;
	return -1;
}

enum daemon_parse daemon_parse_options(const struct daemon_def *def, void *ctx, int argc,
                                       char **argv, struct daemon_args *args)
{
	struct option opts[6 + DAEMON_OWN_MAX + 1] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"version", no_argument, NULL, DAEMON_OPT_VERSION},
	    {"help", no_argument, NULL, 'h'},
	};
	char shorts[8 + 2 * DAEMON_OWN_MAX + 1] = "c:kvh";
	size_t n = 5, sl = strlen(shorts);
	int c, own;

	memset(args, 0, sizeof(*args));
	if (def->debug_alias) {
		opts[n++] = (struct option){"debug", no_argument, NULL, 'd'};
		shorts[sl++] = 'd';
	}
	for (int i = 0; def->options && def->options[i].name; i++) {
		const struct daemon_option *o = &def->options[i];
		if (i == DAEMON_OWN_MAX) {
			fprintf(stderr, "%s: more than %d options of its own\n", def->name,
			        DAEMON_OWN_MAX);
			return DAEMON_PARSE_USAGE;
		}
		opts[n++] = (struct option){o->name, o->has_arg ? required_argument : no_argument,
		                            NULL, DAEMON_OPT_OWN + i};
		if (o->short_name) {
			shorts[sl++] = (char)o->short_name;
			if (o->has_arg)
				shorts[sl++] = ':';
		}
	}
	shorts[sl] = '\0';
	/* GNU getopt starts over (and forgets a previous argv) when optind is 0. */
	optind = 0;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			args->config = optarg;
			continue;
		case 'k':
			args->check = 1;
			continue;
		case 'v':
			args->verbose = 1;
			continue;
		case 'h':
			daemon_usage(def, stdout);
			return DAEMON_PARSE_HELP;
		case DAEMON_OPT_VERSION:
			printf("%s %s\n", def->name, HSMCA_VERSION);
			return DAEMON_PARSE_VERSION;
		default:
			break;
		}
		if (c == 'd' && def->debug_alias) {
			args->verbose = 1;
			continue;
		}
		own = c >= DAEMON_OPT_OWN ? c - DAEMON_OPT_OWN : own_by_short(def, c);
		if (own < 0) {
			daemon_usage(def, stderr); /* getopt said what it did not understand */
			return DAEMON_PARSE_USAGE;
		}
		/* set said what is wrong with the value. */
		if (def->options[own].set(ctx, optarg) != 0)
			return DAEMON_PARSE_USAGE;
	}
	if (!args->config || optind != argc ||
	    (def->options_check && def->options_check(ctx, args) != 0)) {
		daemon_usage(def, stderr);
		return DAEMON_PARSE_USAGE;
	}
	return DAEMON_PARSE_RUN;
}

/* The signal watch: SIGTERM and SIGINT as events on the daemon's base, or on the scaffold's
 * own base (own) run by a thread of its own for a daemon without one. */
struct daemon_signals {
	const struct daemon_def *def;
	void *ctx;
	struct event *term, *intr;
	struct event_base *own;
	pthread_t thread;
	int thread_started;
	sigset_t mask; /* the signal mask before daemon_main held SIGTERM and SIGINT back */
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_signals *s = arg;

	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	s->def->stop(s->ctx);
}

static void *signal_thread(void *arg)
{
	struct daemon_signals *s = arg;

	if (event_base_loop(s->own, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
		log_error("the signal watch's event loop failed");
	return NULL;
}

static int signals_watch(struct daemon_signals *s, char *err, size_t errlen)
{
	struct event_base *base = s->def->base ? s->def->base(s->ctx) : NULL;

	if (!base) {
		/* Threads: daemon_signals_end breaks this loop from the main thread. */
		if (evthread_use_pthreads() != 0 || !(s->own = event_base_new())) {
			snprintf(err, errlen, "cannot make the signal watch's event loop");
			return -1;
		}
		base = s->own;
	}
	s->term = evsignal_new(base, SIGTERM, on_signal, s);
	s->intr = evsignal_new(base, SIGINT, on_signal, s);
	if (!s->term || !s->intr || evsignal_add(s->term, NULL) != 0 ||
	    evsignal_add(s->intr, NULL) != 0) {
		snprintf(err, errlen, "cannot watch for signals");
		return -1;
	}
	if (s->own) {
		if (pthread_create(&s->thread, NULL, signal_thread, s) != 0) {
			snprintf(err, errlen, "cannot start the signal watch's thread");
			return -1;
		}
		s->thread_started = 1;
	}
	return 0;
}

/* Before the daemon (and with it its base) is freed. */
static void signals_end(struct daemon_signals *s)
{
	if (s->thread_started) {
		/* loopexit, not loopbreak: a break asked for before the thread has entered its
		 * loop is forgotten when the loop starts (a short --once run on a loaded machine
		 * then never joins); an exit is an event the loop runs whenever it starts. */
		event_base_loopexit(s->own, NULL);
		pthread_join(s->thread, NULL);
	}
	if (s->term)
		event_free(s->term);
	if (s->intr)
		event_free(s->intr);
	if (s->own)
		event_base_free(s->own);
	memset(s, 0, sizeof(*s));
}

/* make, then the signal watch: both before the seccomp filter, which the watch's set-up
 * (sigaction, a thread) would otherwise have to be allowed after start-up. SIGTERM and SIGINT
 * are held back meanwhile (daemon_main): once they are watched, one that came during make
 * arrives and stops the daemon cleanly. After a failure they stay held back, and the daemon
 * exits 1 as it would have anyway. */
static int make_and_watch(void *arg, char *err, size_t errlen)
{
	struct daemon_signals *s = arg;

	if (s->def->make(s->ctx, err, errlen) != 0 || signals_watch(s, err, errlen) != 0)
		return -1;
	pthread_sigmask(SIG_SETMASK, &s->mask, NULL);
	return 0;
}

int daemon_main(const struct daemon_def *def, void *ctx, int argc, char **argv)
{
	struct daemon_signals sig = {.def = def, .ctx = ctx};
	OSSL_PROVIDER *deflt = NULL, *keyd = NULL;
	struct daemon_args args;
	sigset_t stops;
	char err[1024], note[128] = "";
	int rc = 1;

	switch (daemon_parse_options(def, ctx, argc, argv, &args)) {
	case DAEMON_PARSE_RUN:
		break;
	case DAEMON_PARSE_HELP:
	case DAEMON_PARSE_VERSION:
		return 0;
	case DAEMON_PARSE_USAGE:
	default:
		return 2;
	}
	log_init(def->name, args.verbose ? LOG_DEBUG : LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (def->config_load(ctx, args.config, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (args.check) {
		if (def->check_note)
			def->check_note(ctx, note, sizeof(note));
		printf("%s: configuration is valid%s%s\n", args.config, note[0] ? " " : "", note);
		rc = 0;
		goto out;
	}
	if (def->providers && daemon_providers_load(&deflt, &keyd) != 0)
		goto out;
	if (def->command && (rc = def->command(ctx)) >= 0)
		goto out;
	rc = 1;
	/* A stop asked for while the daemon is being made (a service manager that stops it as
	 * soon as its socket appears) waits for the watch instead of killing it half made. The
	 * threads make starts keep the mask: the signals come to this thread. */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stops, &sig.mask);
	if (def->user_switch == DAEMON_USER_BEFORE_MAKE) {
		if (sandbox_start(def->sandbox_config(ctx), def->sandbox, make_and_watch, &sig, err,
		                  sizeof(err)) != 0) {
			log_error("%s", err);
			goto out;
		}
	} else {
		if (make_and_watch(&sig, err, sizeof(err)) != 0) {
			log_error("%s", err);
			goto out;
		}
		if (sandbox_apply(def->sandbox_config(ctx), def->sandbox, err, sizeof(err)) != 0) {
			log_error("sandbox: %s", err);
			goto out;
		}
	}
	rc = def->run(ctx) == 0 ? 0 : 1;
	log_info("stopped");
out:
	signals_end(&sig);
	def->cleanup(ctx);
	if (def->providers)
		daemon_providers_unload(deflt, keyd);
	return rc;
}
