/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The built-in http-01 responder, spoken to over real sockets. It binds the
 * wildcard address of a fixed port, so the test runs in a private network
 * namespace (root only; skipped otherwise). */

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "acme-responder.h"

#include <glib.h>

#define PORT 5002
#define TOKEN "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
#define KEYAUTH TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

static int connect_port(int family) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        struct timeval tv = {.tv_sec = 10};
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

        int r;
        if (family == AF_INET6) {
                struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
                                          .sin6_port = htons(PORT),
                                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
                r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
        } else {
                struct sockaddr_in sa = {.sin_family = AF_INET,
                                         .sin_port = htons(PORT),
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
        }
        if (r < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static bool listening(void) {
        int fd = connect_port(AF_INET);
        if (fd < 0) {
                g_assert_cmpint(fd, ==, -ECONNREFUSED);
                return false;
        }
        close(fd);
        return true;
}

/* Send raw bytes, read the whole answer until the server closes. */
static char *exchange_on(int fd, const char *request, size_t len) {
        g_assert_cmpint(send(fd, request, len, MSG_NOSIGNAL), ==, (ssize_t) len);
        GString *s = g_string_new(NULL);
        char buf[1024];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
                g_string_append_len(s, buf, n);
        close(fd);
        return g_string_free(s, FALSE);
}

static char *exchange(const char *request) {
        int fd = connect_port(AF_INET);
        g_assert_cmpint(fd, >=, 0);
        return exchange_on(fd, request, strlen(request));
}

static void test_serves_published_tokens(void) {
        AcmeResponder *r = acme_responder_new(PORT);
        g_autofree char *err = NULL;

        g_assert_false(listening());
        g_assert_cmpint(acme_responder_acquire(r, &err), ==, 0);
        g_assert_true(listening());
        g_assert_cmpint(acme_responder_add(r, TOKEN, KEYAUTH), ==, 0);

        g_autofree char *ok = exchange("GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n"
                                       "Host: a.example\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n");
        g_assert_true(g_str_has_prefix(ok, "HTTP/1.1 200 "));
        g_assert_true(g_str_has_suffix(ok, "\r\n\r\n" KEYAUTH));
        g_autofree char *length = g_strdup_printf("Content-Length: %zu\r\n", strlen(KEYAUTH));
        g_assert_nonnull(strstr(ok, length));

        /* Over IPv6 too, when the namespace has it. */
        int fd6 = connect_port(AF_INET6);
        if (fd6 >= 0) {
                const char *req = "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.0\r\n\r\n";
                g_autofree char *ok6 = exchange_on(fd6, req, strlen(req));
                g_assert_true(g_str_has_prefix(ok6, "HTTP/1.1 200 "));
        }

        g_autofree char *unknown = exchange("GET /.well-known/acme-challenge/other HTTP/1.1\r\n\r\n");
        g_assert_true(g_str_has_prefix(unknown, "HTTP/1.1 404 "));
        g_assert_null(strstr(unknown, KEYAUTH));

        g_autofree char *outside = exchange("GET /" TOKEN " HTTP/1.1\r\n\r\n");
        g_assert_true(g_str_has_prefix(outside, "HTTP/1.1 404 "));

        g_autofree char *traversal =
                exchange("GET /.well-known/acme-challenge/../acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n");
        g_assert_true(g_str_has_prefix(traversal, "HTTP/1.1 404 "));

        g_autofree char *post = exchange("POST /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n"
                                         "Content-Length: 0\r\n\r\n");
        g_assert_true(g_str_has_prefix(post, "HTTP/1.1 405 "));

        g_autofree char *garbage = exchange("hello\r\n\r\n");
        g_assert_true(g_str_has_prefix(garbage, "HTTP/1.1 400 "));

        /* Withdrawn tokens are no longer served. */
        acme_responder_remove(r, TOKEN);
        g_autofree char *gone = exchange("GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n");
        g_assert_true(g_str_has_prefix(gone, "HTTP/1.1 404 "));

        acme_responder_release(r);
        g_assert_false(listening());
        acme_responder_free(r);
}

static void test_bounded_requests(void) {
        AcmeResponder *r = acme_responder_new(PORT);
        g_autofree char *err = NULL;
        g_assert_cmpint(acme_responder_acquire(r, &err), ==, 0);
        g_assert_cmpint(acme_responder_add(r, TOKEN, KEYAUTH), ==, 0);

        /* Headers that never end are cut off at the limit. */
        GString *big = g_string_new("GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n");
        while (big->len < 16 * 1024)
                g_string_append(big, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        int fd = connect_port(AF_INET);
        g_assert_cmpint(fd, >=, 0);
        /* Exactly the limit: more unread data would make the server's close a reset. */
        g_assert_cmpint(send(fd, big->str, 4096, MSG_NOSIGNAL), ==, 4096);
        GString *s = g_string_new(NULL);
        char buf[1024];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
                g_string_append_len(s, buf, n);
        close(fd);
        g_assert_true(g_str_has_prefix(s->str, "HTTP/1.1 431 "));
        g_string_free(s, TRUE);
        g_string_free(big, TRUE);

        /* A client that connects and says nothing does not block the others. */
        int idle = connect_port(AF_INET);
        g_assert_cmpint(idle, >=, 0);
        g_autofree char *ok = exchange("GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n");
        g_assert_true(g_str_has_prefix(ok, "HTTP/1.1 200 "));
        close(idle);

        /* A NUL byte in the request is refused. */
        const char nul[] = "GET /.well-known/acme-challenge/" TOKEN "\0x HTTP/1.1\r\n\r\n";
        int fd2 = connect_port(AF_INET);
        g_autofree char *refused = exchange_on(fd2, nul, sizeof nul - 1);
        g_assert_true(g_str_has_prefix(refused, "HTTP/1.1 400 "));

        acme_responder_release(r);
        acme_responder_free(r);
}

static void test_refcount(void) {
        AcmeResponder *r = acme_responder_new(PORT);
        g_autofree char *e1 = NULL, *e2 = NULL;

        /* Two orders share one listener; it closes with the last one. */
        g_assert_cmpint(acme_responder_acquire(r, &e1), ==, 0);
        g_assert_cmpint(acme_responder_acquire(r, &e2), ==, 0);
        g_assert_cmpint(acme_responder_add(r, "tok-a", "tok-a.x"), ==, 0);
        g_assert_cmpint(acme_responder_add(r, "tok_b", "tok_b.y"), ==, 0);
        acme_responder_release(r);
        g_assert_true(listening());
        g_autofree char *b = exchange("GET /.well-known/acme-challenge/tok_b HTTP/1.1\r\n\r\n");
        g_assert_true(g_str_has_suffix(b, "\r\n\r\ntok_b.y"));
        acme_responder_release(r);
        g_assert_false(listening());

        /* And opens again for the next order. */
        g_autofree char *e3 = NULL;
        g_assert_cmpint(acme_responder_acquire(r, &e3), ==, 0);
        g_assert_true(listening());
        acme_responder_release(r);
        g_assert_false(listening());

        /* A busy port is reported, not ignored. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        struct sockaddr_in sa = {
                .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(INADDR_ANY)};
        /* Earlier connections left TIME_WAIT entries on the port. */
        g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), ==, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(listen(fd, 1), ==, 0);
        g_autofree char *e4 = NULL;
        g_assert_cmpint(acme_responder_acquire(r, &e4), ==, -EADDRINUSE);
        g_assert_nonnull(strstr(e4, "5002"));
        close(fd);

        acme_responder_free(r);
}

static void test_token_validation(void) {
        AcmeResponder *r = acme_responder_new(PORT);
        g_assert_false(acme_token_is_valid(NULL));
        g_assert_false(acme_token_is_valid(""));
        g_assert_false(acme_token_is_valid("../etc/passwd"));
        g_assert_false(acme_token_is_valid("a/b"));
        g_assert_false(acme_token_is_valid("a b"));
        g_assert_false(acme_token_is_valid("a=="));
        g_assert_true(acme_token_is_valid(TOKEN));
        g_autofree char *long_token = g_strnfill(257, 'a');
        g_assert_false(acme_token_is_valid(long_token));
        g_assert_cmpint(acme_responder_add(r, "../x", "y"), ==, -EINVAL);
        acme_responder_free(r);
}

static int enter_network_namespace(void) {
        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct ifreq ifr = {0};
        strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
        int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
        if (r >= 0) {
                ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
                r = ioctl(fd, SIOCSIFFLAGS, &ifr);
        }
        int e = errno;
        close(fd);
        return r < 0 ? -e : 0;
}

int main(int argc, char *argv[]) {
        bool tap = false;
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--tap"))
                        tap = true;

        g_test_init(&argc, &argv, NULL);

        int r = enter_network_namespace();
        if (r < 0) {
                /* Under TAP a non-zero exit is an error; an empty plan with SKIP says it. */
                if (tap) {
                        printf("1..0 # SKIP cannot enter a private network namespace: %s\n", g_strerror(-r));
                        return 0;
                }
                fprintf(stderr, "SKIP: cannot enter a private network namespace: %s\n", g_strerror(-r));
                return 77;
        }

        g_test_add_func("/acme-responder/serves-published-tokens", test_serves_published_tokens);
        g_test_add_func("/acme-responder/bounded-requests", test_bounded_requests);
        g_test_add_func("/acme-responder/refcount", test_refcount);
        g_test_add_func("/acme-responder/token-validation", test_token_validation);

        return g_test_run();
}
