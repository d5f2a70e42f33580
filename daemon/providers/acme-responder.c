/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

#include "acme-responder.h"
#include "log.h"

#include <glib.h>

#define CHALLENGE_PREFIX "/.well-known/acme-challenge/"
#define TOKEN_MAX 256U
#define REQUEST_MAX 4096U /* request line and headers; a validation request is ~200 bytes */
#define CONNECTIONS_MAX 16U
#define CONNECTION_TIMEOUT_USEC (5U * USEC_PER_SEC)

typedef struct Connection {
        int fd;
        uint64_t deadline;
        size_t len;
        char buf[REQUEST_MAX + 1];
} Connection;

struct AcmeResponder {
        unsigned port;

        /* Serialises opening and closing the listener, so that a new order never
         * tries to bind while the previous listener is still being torn down. */
        pthread_mutex_t lifecycle_lock;
        unsigned refcount;
        int listen_fd;
        int stop_fd;
        pthread_t thread;
        bool running;

        /* The published tokens; the responder thread reads them. */
        pthread_mutex_t tokens_lock;
        GHashTable *tokens; /* token → key authorization */
};

bool acme_token_is_valid(const char *token) {
        size_t n = 0;

        if (!token)
                return false;
        for (const char *p = token; *p; p++, n++)
                if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
                        return false;
        return n > 0 && n <= TOKEN_MAX;
}

AcmeResponder *acme_responder_new(unsigned port) {
        AcmeResponder *r = g_new0(AcmeResponder, 1);

        r->port = port == 0 ? 80 : port;
        r->listen_fd = -EBADF;
        r->stop_fd = -EBADF;
        pthread_mutex_init(&r->lifecycle_lock, NULL);
        pthread_mutex_init(&r->tokens_lock, NULL);
        r->tokens = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        return r;
}

static void responder_stop(AcmeResponder *r) {
        if (!r->running)
                return;

        uint64_t one = 1;
        if (write(r->stop_fd, &one, sizeof one) < 0)
                log_warning_errno(errno, "Failed to signal the http-01 responder to stop, ignoring: %m");
        (void) pthread_join(r->thread, NULL);
        r->running = false;
        closep(&r->listen_fd);
        closep(&r->stop_fd);
        r->listen_fd = r->stop_fd = -EBADF;
}

AcmeResponder *acme_responder_free(AcmeResponder *r) {
        if (!r)
                return NULL;

        responder_stop(r);
        g_hash_table_destroy(r->tokens);
        pthread_mutex_destroy(&r->lifecycle_lock);
        pthread_mutex_destroy(&r->tokens_lock);
        g_free(r);
        return NULL;
}

static int connection_close(Connection *c) {
        closep(&c->fd);
        c->fd = -EBADF;
        c->len = 0;
        return 0;
}

static int send_response(int fd, const char *status, const char *body) {
        char buf[TOKEN_MAX * 2 + 512];
        int n = snprintf(buf, sizeof buf,
                         "HTTP/1.1 %s\r\n"
                         "Content-Type: text/plain\r\n"
                         "Content-Length: %zu\r\n"
                         "Connection: close\r\n"
                         "\r\n"
                         "%s",
                         status, strlen(body), body);
        if (n < 0 || (size_t) n >= sizeof buf)
                return 0;

        /* The response is far smaller than a fresh socket's send buffer; a peer that
         * does not read it is not worth waiting for. */
        (void) send(fd, buf, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
        return 0;
}

static int handle_request(AcmeResponder *r, Connection *c) {
        /* Only the request line matters: "GET /.well-known/acme-challenge/TOKEN HTTP/1.1". */
        char *eol = strstr(c->buf, "\r\n");
        if (!eol)
                return send_response(c->fd, "400 Bad Request", "bad request\n");
        *eol = 0;

        char *sp1 = strchr(c->buf, ' ');
        if (!sp1)
                return send_response(c->fd, "400 Bad Request", "bad request\n");
        *sp1 = 0;
        char *target = sp1 + 1;
        char *sp2 = strchr(target, ' ');
        if (!sp2 || !g_str_has_prefix(sp2 + 1, "HTTP/1."))
                return send_response(c->fd, "400 Bad Request", "bad request\n");
        *sp2 = 0;

        if (!streq(c->buf, "GET"))
                return send_response(c->fd, "405 Method Not Allowed", "method not allowed\n");

        if (!g_str_has_prefix(target, CHALLENGE_PREFIX))
                return send_response(c->fd, "404 Not Found", "not found\n");
        const char *token = target + STRLEN(CHALLENGE_PREFIX);
        if (!acme_token_is_valid(token))
                return send_response(c->fd, "404 Not Found", "not found\n");

        g_autofree char *keyauth = NULL;
        pthread_mutex_lock(&r->tokens_lock);
        keyauth = g_strdup(g_hash_table_lookup(r->tokens, token));
        pthread_mutex_unlock(&r->tokens_lock);

        if (!keyauth)
                return send_response(c->fd, "404 Not Found", "not found\n");

        log_debug("http-01 responder: answering token %s", token);
        return send_response(c->fd, "200 OK", keyauth);
}

static int connection_read(AcmeResponder *r, Connection *c) {
        ssize_t n = recv(c->fd, c->buf + c->len, REQUEST_MAX - c->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0)
                return connection_close(c);

        c->len += (size_t) n;
        c->buf[c->len] = 0;
        if (memchr(c->buf, 0, c->len)) {
                (void) send_response(c->fd, "400 Bad Request", "bad request\n");
                return connection_close(c);
        }
        if (strstr(c->buf, "\r\n\r\n")) {
                (void) handle_request(r, c);
                return connection_close(c);
        }
        if (c->len >= REQUEST_MAX) {
                (void) send_response(c->fd, "431 Request Header Fields Too Large", "request too large\n");
                return connection_close(c);
        }
        return 0;
}

static void accept_connections(int listen_fd, Connection *conns) {
        for (;;) {
                _cleanup_close_ int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == ECONNABORTED || errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_debug_errno(errno, "http-01 responder: accept() failed: %m");
                        return;
                }

                Connection *slot = NULL;
                for (size_t i = 0; i < CONNECTIONS_MAX; i++)
                        if (conns[i].fd < 0) {
                                slot = conns + i;
                                break;
                        }
                if (!slot) {
                        /* Full: refuse rather than let one slow client starve validations. */
                        (void) send_response(fd, "503 Service Unavailable", "busy\n");
                        continue;
                }

                slot->fd = TAKE_FD(fd);
                slot->len = 0;
                slot->deadline = monotonic_usec() + CONNECTION_TIMEOUT_USEC;
        }
}

static void *responder_thread(void *userdata) {
        AcmeResponder *r = userdata;
        Connection *conns = g_new(Connection, CONNECTIONS_MAX);
        struct pollfd pfd[2 + CONNECTIONS_MAX];
        size_t map[CONNECTIONS_MAX];

        for (size_t i = 0; i < CONNECTIONS_MAX; i++) {
                conns[i].fd = -EBADF;
                conns[i].len = 0;
        }

        for (;;) {
                uint64_t now = monotonic_usec(), next = UINT64_MAX;
                size_t n = 2;

                pfd[0] = (struct pollfd){.fd = r->stop_fd, .events = POLLIN};
                pfd[1] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
                for (size_t i = 0; i < CONNECTIONS_MAX; i++) {
                        if (conns[i].fd < 0)
                                continue;
                        if (conns[i].deadline <= now) {
                                (void) connection_close(conns + i);
                                continue;
                        }
                        next = MIN(next, conns[i].deadline);
                        map[n - 2] = i;
                        pfd[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
                }

                int timeout =
                        next == UINT64_MAX ? -1 : (int) ((next - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                if (poll(pfd, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(errno, "http-01 responder: poll() failed: %m");
                        break;
                }

                if (pfd[0].revents)
                        break;
                for (size_t k = 2; k < n; k++)
                        if (pfd[k].revents)
                                (void) connection_read(r, conns + map[k - 2]);
                if (pfd[1].revents & POLLIN)
                        accept_connections(r->listen_fd, conns);
        }

        for (size_t i = 0; i < CONNECTIONS_MAX; i++)
                (void) connection_close(conns + i);
        g_free(conns);
        return NULL;
}

static int open_listener(unsigned port, char **ret_error) {
        _cleanup_close_ int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1, zero = 0;

        if (fd >= 0) {
                /* Dual-stack: validation requests may come over IPv4 or IPv6. */
                struct sockaddr_in6 sa6 = {
                        .sin6_family = AF_INET6,
                        .sin6_port = htons((uint16_t) port),
                        .sin6_addr = IN6ADDR_ANY_INIT,
                };
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (bind(fd, (struct sockaddr *) &sa6, sizeof sa6) < 0) {
                        int e = errno;
                        if (e != EADDRNOTAVAIL && e != EAFNOSUPPORT) {
                                *ret_error = g_strdup_printf("Cannot listen on port %u for http-01: %s",
                                                             port, strerror(e));
                                return -e;
                        }
                        closep(&fd);
                        fd = -EBADF;
                }
        } else if (errno != EAFNOSUPPORT) {
                int e = errno;
                *ret_error = g_strdup_printf("Cannot create a socket for http-01: %s", strerror(e));
                return -e;
        }

        if (fd < 0) {
                /* No IPv6 on this host: IPv4 only. */
                struct sockaddr_in sa = {
                        .sin_family = AF_INET,
                        .sin_port = htons((uint16_t) port),
                        .sin_addr.s_addr = htonl(INADDR_ANY),
                };
                fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        int e = errno;
                        *ret_error = g_strdup_printf("Cannot create a socket for http-01: %s", strerror(e));
                        return -e;
                }
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                        int e = errno;
                        *ret_error = g_strdup_printf("Cannot listen on port %u for http-01: %s", port,
                                                     strerror(e));
                        return -e;
                }
        }

        if (listen(fd, 64) < 0) {
                int e = errno;
                *ret_error = g_strdup_printf("Cannot listen on port %u for http-01: %s", port, strerror(e));
                return -e;
        }
        return TAKE_FD(fd);
}

int acme_responder_acquire(AcmeResponder *r, char **ret_error) {
        int r_err = 0;

        pthread_mutex_lock(&r->lifecycle_lock);
        if (r->refcount == 0) {
                int fd = open_listener(r->port, ret_error);
                if (fd < 0) {
                        r_err = fd;
                        goto finish;
                }
                int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (efd < 0) {
                        r_err = -errno;
                        *ret_error = g_strdup_printf("eventfd() failed: %s", strerror(errno));
                        (void) close(fd);
                        goto finish;
                }
                r->listen_fd = fd;
                r->stop_fd = efd;
                int e = pthread_create(&r->thread, NULL, responder_thread, r);
                if (e != 0) {
                        r_err = -e;
                        *ret_error = g_strdup_printf("Cannot start the http-01 responder: %s", strerror(e));
                        closep(&r->listen_fd);
                        closep(&r->stop_fd);
                        r->listen_fd = r->stop_fd = -EBADF;
                        goto finish;
                }
                r->running = true;
                log_debug("http-01 responder listening on port %u", r->port);
        }
        r->refcount++;
finish:
        pthread_mutex_unlock(&r->lifecycle_lock);
        return r_err;
}

void acme_responder_release(AcmeResponder *r) {
        pthread_mutex_lock(&r->lifecycle_lock);
        if (r->refcount > 0 && --r->refcount == 0) {
                responder_stop(r);
                log_debug("http-01 responder on port %u closed", r->port);
        }
        pthread_mutex_unlock(&r->lifecycle_lock);
}

int acme_responder_add(AcmeResponder *r, const char *token, const char *key_authorization) {
        if (!acme_token_is_valid(token) || strlen(key_authorization) > TOKEN_MAX * 2)
                return -EINVAL;

        pthread_mutex_lock(&r->tokens_lock);
        g_hash_table_replace(r->tokens, g_strdup(token), g_strdup(key_authorization));
        pthread_mutex_unlock(&r->tokens_lock);
        return 0;
}

void acme_responder_remove(AcmeResponder *r, const char *token) {
        pthread_mutex_lock(&r->tokens_lock);
        (void) g_hash_table_remove(r->tokens, token);
        pthread_mutex_unlock(&r->tokens_lock);
}
