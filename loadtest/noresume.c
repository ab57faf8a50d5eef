/*
 * LD_PRELOAD shim for wrk: every new TLS connection does a FULL handshake.
 *
 * Why: wrk reconnects (e.g. after a `Connection: close` response) by calling SSL_shutdown() and
 * SSL_clear() on the same SSL object (wrk src/ssl.c, ssl_close). SSL_clear() keeps the session of
 * a cleanly shut down connection, so the next SSL_connect() offers it (a TLS 1.3 PSK from the
 * server's ticket, or a TLS 1.2 session ID / ticket) and a server with resumption enabled resumes:
 * observed as `$ssl_session_reused = r` on every connection but the first in nginx's access log.
 * loadtest/tls.sh measures the cost of FULL handshakes on servers that keep resumption enabled as
 * deployed, so the client must not offer a session: this shim drops the session before wrk's
 * SSL_clear(), and the next handshake starts from scratch on either server.
 *
 * It also counts, over the connections wrk closed, how many handshakes completed and how many of
 * those were resumptions, and writes `full=N resumed=M` to $NORESUME_REPORT when wrk exits (only a
 * process that used TLS writes it: preload it on wrk itself, not on a wrapper like timeout), so
 * that tls.sh can check (on both servers, from the client side) that no handshake was resumed.
 * With NORESUME_COUNT_ONLY=1 it only counts and leaves wrk's own behaviour (resumption) alone:
 * tls.sh uses that once to show that plain wrk does resume.
 *
 * Built by tls.sh with `cc -shared -fPIC`; needs no OpenSSL headers (the SSL type is opaque here
 * and the functions resolve to the libssl that wrk itself loads).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
int SSL_set_session(SSL *s, SSL_SESSION *session);
int SSL_session_reused(const SSL *s);
int SSL_is_init_finished(const SSL *s);

static int count_only; /* set once at load time, before wrk starts threads */
static int used; /* SSL_clear was called here: only such a process writes the report */
static unsigned long full_handshakes;
static unsigned long resumed_handshakes;

__attribute__((constructor)) static void init(void) {
    const char *v = getenv("NORESUME_COUNT_ONLY");
    count_only = v && v[0] == '1';
}

int SSL_clear(SSL *s) {
    static int (*real_clear)(SSL *);
    if (!real_clear) {
        real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
        if (!real_clear) abort();
    }
    __atomic_store_n(&used, 1, __ATOMIC_RELAXED);
    /* OpenSSL itself calls SSL_clear() when a handshake starts: only a connection whose handshake
     * finished counts */
    if (SSL_is_init_finished(s)) {
        if (SSL_session_reused(s))
            __atomic_fetch_add(&resumed_handshakes, 1, __ATOMIC_RELAXED);
        else
            __atomic_fetch_add(&full_handshakes, 1, __ATOMIC_RELAXED);
    }
    if (!count_only) SSL_set_session(s, NULL); /* the next SSL_connect offers no session */
    return real_clear(s);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("NORESUME_REPORT");
    if (!path || !*path || !__atomic_load_n(&used, __ATOMIC_RELAXED)) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "full=%lu resumed=%lu\n", __atomic_load_n(&full_handshakes, __ATOMIC_RELAXED),
            __atomic_load_n(&resumed_handshakes, __ATOMIC_RELAXED));
    fclose(f);
}
