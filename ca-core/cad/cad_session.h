/* The console's sign-in sessions (cad_session.c): a server-side store in memory, shared by the
 * workers. A session is made from a credential that authenticated (an API token or a client
 * certificate) and keeps only that credential's SHA-256, so that every request made with the
 * session is authenticated again by the same look-up (a revoked token or a disabled principal
 * ends it at once). The cookie value is 256 random bits; only its SHA-256 is kept. Each session
 * has a CSRF token that state-changing requests must echo (docs/console.md). Times are
 * CLOCK_MONOTONIC seconds passed in, so that tests can move the clock. */
#ifndef HSMCA_CAD_SESSION_H
#define HSMCA_CAD_SESSION_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The cookie: its name (the __Host- prefix makes browsers insist on Secure, Path=/ and no
 * Domain) and value: 43 base64url characters. */
#define CAD_SESSION_COOKIE "__Host-hsmca_session"
#define CAD_SESSION_VALUE_LEN 43
#define CAD_SESSION_TEXT_MAX 64 /* a cookie value or CSRF token with its NUL */

enum cad_session_via { CAD_SESSION_VIA_TOKEN = 1, CAD_SESSION_VIA_CERTIFICATE = 2 };

struct cad_session {
	uint8_t id_sha256[32];   /* SHA-256 of the cookie value */
	uint8_t cred_sha256[32]; /* SHA-256 of the token, or of the client certificate's DER */
	enum cad_session_via via;
	char csrf[CAD_SESSION_TEXT_MAX];
	char principal[129]; /* for the log and the audit: who made it */
	int64_t created, last;
};

struct cad_sessions {
	pthread_mutex_t lock;
	struct cad_session *s; /* cap slots; via 0: free */
	size_t cap;
	int idle_seconds, max_seconds;
};

/* 0, or -1 (out of memory). cap sessions at most. */
int cad_sessions_init(struct cad_sessions *ss, size_t cap, int idle_seconds, int max_seconds);
void cad_sessions_fini(struct cad_sessions *ss);

/* A new session for principal, authenticated by via with cred_sha256, at now: its cookie value
 * and CSRF token into cookie and csrf (CAD_SESSION_TEXT_MAX each). 0; -1 when every slot holds
 * a live session (expired ones are reused first); -2 without randomness. */
int cad_session_new(struct cad_sessions *ss, int64_t now, enum cad_session_via via,
                    const uint8_t cred_sha256[32], const char *principal, char *cookie, char *csrf);

enum cad_session_found {
	CAD_SESSION_FOUND = 0,
	CAD_SESSION_UNKNOWN,
	CAD_SESSION_IDLE,
	CAD_SESSION_EXPIRED
};
/* Look the session of cookie up at now: FOUND (copied to out, its idle time restarted),
 * UNKNOWN (never made, or ended), IDLE (unused longer than idle_seconds) or EXPIRED (older
 * than max_seconds); an idle or expired session is ended. */
enum cad_session_found cad_session_find(struct cad_sessions *ss, const char *cookie, int64_t now,
                                        struct cad_session *out);
/* End the session of cookie: 1 if there was one, else 0. */
int cad_session_end(struct cad_sessions *ss, const char *cookie);
/* Live sessions at now (for /metrics and the tests). */
size_t cad_session_count(struct cad_sessions *ss, int64_t now);

/* The value of cookie name in a Cookie header (RFC 6265 "a=b; c=d"), bounded: at most n - 1
 * bytes into out. 0 if found, -1 if absent, malformed or too long. */
int cad_cookie_get(const char *header, const char *name, char *out, size_t n);

#endif
