/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The ACME provider against a real pebble (and pebble-challtestsrv for real
 * http-01 validation). Pebble's ports are fixed, so the test moves itself into
 * a private network namespace first; without root or pebble it is skipped. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "log.h"
#include "provider-acme.h"

#include <glib.h>
#include <glib/gstdio.h>

#define DIRECTORY_URL "https://127.0.0.1:14000/dir"
#define MANAGEMENT_URL "https://127.0.0.1:15000"
#define EAB_KID "kid-1"
#define EAB_KEY "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"

static char *tmpdir;
static char *tls_cert, *tls_key;
static char *config_plain, *config_eab;
static MasterKey master_key;

typedef struct Services {
        GPid pebble;
        GPid challtestsrv;
} Services;

/* ---- small HTTPS client for pebble's management API ---- */

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
        g_string_append_len(userdata, ptr, (gssize) (size * nmemb));
        return size * nmemb;
}

static long https_get(const char *url, GString **ret_body) {
        CURL *h = curl_easy_init();
        GString *body = g_string_new(NULL);
        long status = 0;

        g_assert_nonnull(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CAINFO, tls_cert);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
        if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (ret_body)
                *ret_body = body;
        else
                g_string_free(body, TRUE);
        return status;
}

/* ---- services ---- */

static void child_setup(gpointer userdata) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GPid spawn_logged(char **argv, char **envp, const char *log_name) {
        g_autofree char *log_path = g_build_filename(tmpdir, log_name, NULL);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        g_autoptr(GError) error = NULL;
        GPid pid = 0;

        g_assert_cmpint(fd, >=, 0);
        gboolean ok =
                g_spawn_async_with_fds(NULL, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                                       child_setup, NULL, &pid, -1, fd, fd, &error);
        g_assert_no_error(error);
        g_assert_true(ok);
        close(fd);
        return pid;
}

static void wait_for_port(uint16_t port, int type) {
        uint64_t deadline = monotonic_usec() + 10 * USEC_PER_SEC;

        /* challtestsrv's DNS is UDP: there is nothing to connect to, so wait for the
         * management port it opens after the DNS server instead. */
        for (;;) {
                int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
                struct sockaddr_in sa = {.sin_family = AF_INET,
                                         .sin_port = htons(port),
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                int r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
                close(fd);
                if (r == 0)
                        return;
                g_assert_cmpuint(monotonic_usec(), <, deadline);
                g_usleep(20 * 1000); /* polling interval, bounded by the deadline above */
        }
}

static void services_start(Services *s, const char *config, bool always_valid, unsigned nonce_reject,
                           bool real_dns) {
        *s = (Services){0};

        if (real_dns) {
                char *argv[] = {(char *) "pebble-challtestsrv",
                                (char *) "-dns01",
                                (char *) "127.0.0.1:8053",
                                (char *) "-http01",
                                (char *) "",
                                (char *) "-https01",
                                (char *) "",
                                (char *) "-tlsalpn01",
                                (char *) "",
                                (char *) "-management",
                                (char *) "127.0.0.1:8055",
                                (char *) "-defaultIPv4",
                                (char *) "127.0.0.1",
                                (char *) "-defaultIPv6",
                                (char *) "",
                                NULL};
                s->challtestsrv = spawn_logged(argv, NULL, "challtestsrv.log");
                wait_for_port(8055, SOCK_STREAM);
        }

        g_auto(GStrv) env = g_get_environ();
        env = g_environ_setenv(env, "PEBBLE_VA_NOSLEEP", "1", TRUE);
        env = g_environ_setenv(env, "PEBBLE_AUTHZREUSE", "0", TRUE);
        g_autofree char *nr = g_strdup_printf("%u", nonce_reject);
        env = g_environ_setenv(env, "PEBBLE_WFE_NONCEREJECT", nr, TRUE);
        if (always_valid)
                env = g_environ_setenv(env, "PEBBLE_VA_ALWAYS_VALID", "1", TRUE);
        else
                env = g_environ_unsetenv(env, "PEBBLE_VA_ALWAYS_VALID");

        char *argv_dns[] = {(char *) "pebble",     (char *) "-config",        (char *) config,
                            (char *) "-dnsserver", (char *) "127.0.0.1:8053", NULL};
        char *argv_plain[] = {(char *) "pebble", (char *) "-config", (char *) config, NULL};
        s->pebble = spawn_logged(real_dns ? argv_dns : argv_plain, env, "pebble.log");

        /* Ready when the directory answers over TLS. */
        uint64_t deadline = monotonic_usec() + 15 * USEC_PER_SEC;
        while (https_get(DIRECTORY_URL, NULL) != 200) {
                g_assert_cmpuint(monotonic_usec(), <, deadline);
                g_usleep(20 * 1000);
        }
}

static void stop_pid(GPid pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        g_spawn_close_pid(pid);
}

static void services_stop(Services *s) {
        stop_pid(s->pebble);
        stop_pid(s->challtestsrv);
        *s = (Services){0};
}

/* ---- requests ---- */

static X509_REQ *make_csr(const char *cn, char *const *names, EVP_PKEY **ret_key) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509_REQ *req = X509_REQ_new();
        X509_NAME *subject = X509_NAME_new();

        g_assert_nonnull(key);
        g_assert_true(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *) cn,
                                                 -1, -1, 0));
        g_assert_true(X509_REQ_set_subject_name(req, subject));
        X509_NAME_free(subject);
        g_assert_true(X509_REQ_set_pubkey(req, key));

        g_autoptr(GString) san = g_string_new(NULL);
        for (char *const *i = names; *i; i++)
                g_string_append_printf(san, "%sDNS:%s", san->len ? "," : "", *i);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san->str);
        g_assert_nonnull(ext);
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, ext);
        g_assert_true(X509_REQ_add_extensions(req, exts));
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        g_assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);

        *ret_key = key;
        return req;
}

static Provider *make_provider(const char *key_path, unsigned http_port, const char *webroot, bool eab) {
        AcmeSettings s = {
                .directory_url = DIRECTORY_URL,
                .email = "admin@example.org",
                .ca_bundle = tls_cert,
                .webroot_path = webroot,
                .eab_key_id = eab ? EAB_KID : NULL,
                .eab_hmac_key = eab ? EAB_KEY : NULL,
                .http_port = http_port,
                .account_key_path = key_path,
                .master_key = &master_key,
                .timeout_sec = 60,
        };
        Provider *p = NULL;
        g_autofree char *error = NULL;

        int r = provider_acme_new(&s, &p, &error);
        if (r < 0)
                g_error("provider_acme_new: %s", error);
        g_assert_nonnull(p);
        g_assert_cmpstr(p->ops->order_type, ==, "acme");
        g_assert_true(p->ops->needs_csr);
        return p;
}

static void result_clear(ProviderResult *r) {
        g_free(r->certificate_pem);
        g_free(r->chain_pem);
        g_free(r->cookie);
        g_free(r->error);
        *r = (ProviderResult){0};
}

static void issue(Provider *p, const char *cn, char *const *names, ProviderResult *ret, X509_REQ **ret_csr) {
        EVP_PKEY *key = NULL;
        X509_REQ *csr = make_csr(cn, names, &key);
        ProviderRequest req = {
                .order_id = 1,
                .common_name = cn,
                .dns_names = names,
                .csr = csr,
        };

        g_assert_cmpint(p->ops->issue(p, &req, ret), ==, 0);
        EVP_PKEY_free(key);
        if (ret_csr)
                *ret_csr = csr;
        else
                X509_REQ_free(csr);
}

static X509 *pem_to_x509(const char *pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        g_assert_nonnull(x);
        return x;
}

static X509 *management_cert(const char *path) {
        g_autofree char *url = g_strconcat(MANAGEMENT_URL, path, NULL);
        GString *body = NULL;
        g_assert_cmpint(https_get(url, &body), ==, 200);
        X509 *x = pem_to_x509(body->str);
        g_string_free(body, TRUE);
        return x;
}

/* The leaf verifies against pebble's current root through its intermediate,
 * and carries exactly the requested names. */
static void assert_issued(const ProviderResult *res, X509_REQ *csr, char *const *names) {
        if (res->outcome != PROVIDER_ISSUED)
                g_error("expected ISSUED, got %d: %s", res->outcome, strempty(res->error));
        g_assert_nonnull(res->certificate_pem);
        g_assert_nonnull(res->chain_pem);

        _cleanup_(X509_freep) X509 *leaf = pem_to_x509(res->certificate_pem);
        _cleanup_(X509_freep) X509 *chain0 = pem_to_x509(res->chain_pem);
        _cleanup_(X509_freep) X509 *root = management_cert("/roots/0");
        _cleanup_(X509_freep) X509 *inter = management_cert("/intermediates/0");

        g_assert_cmpint(X509_cmp(chain0, inter), ==, 0);
        g_assert_cmpint(EVP_PKEY_eq(X509_get0_pubkey(leaf), X509_REQ_get0_pubkey(csr)), ==, 1);

        _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
        g_assert_true(X509_STORE_add_cert(store, root));
        STACK_OF(X509) *untrusted = sk_X509_new_null();
        sk_X509_push(untrusted, inter);
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        g_assert_true(X509_STORE_CTX_init(ctx, store, leaf, untrusted));
        int ok = X509_verify_cert(ctx);
        if (ok != 1)
                g_error("leaf does not verify: %s",
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        sk_X509_free(untrusted);

        for (char *const *i = names; *i; i++)
                g_assert_cmpint(X509_check_host(leaf, *i, 0, 0, NULL), ==, 1);
}

/* ---- cases ---- */

static void test_issue_and_revoke(void) {
        Services s;
        services_start(&s, config_plain, true, 0, false);

        g_autofree char *key_path = g_build_filename(tmpdir, "account-1.key", NULL);
        (void) g_unlink(key_path);
        Provider *p = make_provider(key_path, 5002, NULL, false);
        g_assert_true(g_file_test(key_path, G_FILE_TEST_IS_REGULAR));

        g_autofree char *ident = p->ops->identify(p);
        g_assert_cmpstr(ident, ==, "ACME " DIRECTORY_URL);

        /* The CN is also a SAN: the order must name it once. */
        char *names[] = {(char *) "host1.example.org", (char *) "www.host1.example.org", NULL};
        ProviderResult res = {0};
        X509_REQ *csr = NULL;
        issue(p, "host1.example.org", names, &res, &csr);
        assert_issued(&res, csr, names);
        X509_REQ_free(csr);

        g_autofree char *kid = provider_acme_account_url(p);
        g_assert_nonnull(kid);
        p->ops->free(p);

        /* A "restarted" provider unseals the same key and finds the same account;
         * it revokes what the first one ordered. */
        Provider *p2 = make_provider(key_path, 5002, NULL, false);
        _cleanup_(X509_freep) X509 *leaf = pem_to_x509(res.certificate_pem);
        g_autofree char *error = NULL;
        int r = p2->ops->revoke(p2, leaf, 1 /* keyCompromise */, &error);
        if (r < 0)
                g_error("revoke failed: %s", error);
        g_autofree char *kid2 = provider_acme_account_url(p2);
        g_assert_cmpstr(kid, ==, kid2);

        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
        char *hex = BN_bn2hex(bn);
        g_autofree char *serial = g_ascii_strdown(hex, -1);
        OPENSSL_free(hex);
        BN_free(bn);
        g_autofree char *url = g_strconcat(MANAGEMENT_URL, "/cert-status-by-serial/", serial, NULL);
        GString *body = NULL;
        g_assert_cmpint(https_get(url, &body), ==, 200);
        g_assert_nonnull(strstr(body->str, "\"Revoked\""));
        g_string_free(body, TRUE);

        /* Twice is an error the caller can recognise. */
        g_clear_pointer(&error, g_free);
        r = p2->ops->revoke(p2, leaf, 1, &error);
        g_assert_cmpint(r, ==, -EALREADY);
        g_assert_nonnull(strstr(error, "alreadyRevoked"));

        result_clear(&res);
        p2->ops->free(p2);
        services_stop(&s);
}

/* A CA that forgot everything (pebble restarted: new accounts, new nonces, new
 * roots) is met with a fresh account, not a failed order. */
static void test_server_reset(void) {
        Services s;
        services_start(&s, config_plain, true, 0, false);
        Provider *p = make_provider(NULL, 5002, NULL, false);
        char *names[] = {(char *) "reset.example.org", NULL};

        for (unsigned round = 0; round < 2; round++) {
                ProviderResult res = {0};
                X509_REQ *csr = NULL;
                issue(p, "reset.example.org", names, &res, &csr);
                assert_issued(&res, csr, names);
                X509_REQ_free(csr);
                result_clear(&res);
                if (round == 0) {
                        services_stop(&s);
                        services_start(&s, config_plain, true, 0, false);
                }
        }
        p->ops->free(p);
        services_stop(&s);
}

typedef struct Job {
        Provider *p;
        const char *cn;
        char **names;
        ProviderResult res;
        X509_REQ *csr;
} Job;

static gpointer issue_thread(gpointer userdata) {
        Job *j = userdata;
        issue(j->p, j->cn, j->names, &j->res, &j->csr);
        return NULL;
}

static bool port_is_closed(uint16_t port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {
                .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
        int e = errno;
        close(fd);
        return r < 0 && e == ECONNREFUSED;
}

static void test_http01_responder(void) {
        Services s;
        services_start(&s, config_plain, false, 0, true);

        Provider *p = make_provider(NULL, 5002, NULL, false);
        g_assert_true(port_is_closed(5002));

        /* Two orders at once share the one listener on port 5002; pebble really
         * fetches every token from it (no ALWAYS_VALID). */
        char *names_a[] = {(char *) "a.responder.test", (char *) "a2.responder.test", NULL};
        char *names_b[] = {(char *) "b.responder.test", NULL};
        Job ja = {.p = p, .cn = "a.responder.test", .names = names_a};
        Job jb = {.p = p, .cn = "b.responder.test", .names = names_b};
        GThread *ta = g_thread_new("issue-a", issue_thread, &ja);
        GThread *tb = g_thread_new("issue-b", issue_thread, &jb);
        g_thread_join(ta);
        g_thread_join(tb);

        assert_issued(&ja.res, ja.csr, names_a);
        assert_issued(&jb.res, jb.csr, names_b);
        /* The listener exists only while challenges are pending. */
        g_assert_true(port_is_closed(5002));

        result_clear(&ja.res);
        result_clear(&jb.res);
        X509_REQ_free(ja.csr);
        X509_REQ_free(jb.csr);
        p->ops->free(p);

        /* With a webroot and no web server behind it, validation fails: the
         * order is rejected with the challenge's problem, and the token files
         * are cleaned up. */
        g_autofree char *webroot = g_build_filename(tmpdir, "webroot", NULL);
        g_assert_cmpint(g_mkdir_with_parents(webroot, 0755), ==, 0);
        p = make_provider(NULL, 5002, webroot, false);
        char *names_c[] = {(char *) "c.responder.test", NULL};
        ProviderResult res = {0};
        issue(p, "c.responder.test", names_c, &res, NULL);
        g_test_message("webroot without server: %s", strempty(res.error));
        g_assert_cmpint(res.outcome, ==, PROVIDER_REJECTED);
        g_assert_true(g_str_has_prefix(res.error, "urn:ietf:params:acme:error:"));
        g_assert_nonnull(strstr(res.error, "c.responder.test"));
        g_autofree char *chaldir = g_build_filename(webroot, ".well-known", "acme-challenge", NULL);
        GDir *d = g_dir_open(chaldir, 0, NULL);
        g_assert_nonnull(d); /* it was used */
        g_assert_null(g_dir_read_name(d));
        g_dir_close(d);
        result_clear(&res);
        p->ops->free(p);

        services_stop(&s);
}

static void test_bad_nonce(void) {
        Services s;
        services_start(&s, config_plain, true, 50, false);

        Provider *p = make_provider(NULL, 5002, NULL, false);
        for (unsigned i = 0; i < 2; i++) {
                char *names[] = {(char *) "nonce.example.org", NULL};
                ProviderResult res = {0};
                X509_REQ *csr = NULL;
                issue(p, "nonce.example.org", names, &res, &csr);
                assert_issued(&res, csr, names);
                X509_REQ_free(csr);
                result_clear(&res);
        }
        /* Half of all good nonces were refused, yet every order went through. */
        g_test_message("badNonce retries: %u", provider_acme_bad_nonce_retries(p));
        g_assert_cmpuint(provider_acme_bad_nonce_retries(p), >, 0);
        p->ops->free(p);
        services_stop(&s);
}

static unsigned count_in_log(const char *name, const char *needle) {
        g_autofree char *path = g_build_filename(tmpdir, name, NULL), *text = NULL;
        unsigned n = 0;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        for (const char *p = text; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* An order that outlives the deadline comes back as WAIT with its URL; polling
 * with that cookie finishes the same order instead of placing another. */
static void test_wait_and_resume(void) {
        Services s;
        /* Without PEBBLE_VA_NOSLEEP pebble waits a random few seconds before validating. */
        services_start(&s, config_plain, true, 0, false);
        stop_pid(s.pebble);
        g_autofree char *log_path = g_build_filename(tmpdir, "pebble.log", NULL);
        (void) g_unlink(log_path);
        {
                g_auto(GStrv) env = g_get_environ();
                env = g_environ_unsetenv(env, "PEBBLE_VA_NOSLEEP");
                env = g_environ_setenv(env, "PEBBLE_VA_ALWAYS_VALID", "1", TRUE);
                env = g_environ_setenv(env, "PEBBLE_WFE_NONCEREJECT", "0", TRUE);
                char *argv[] = {(char *) "pebble", (char *) "-config", config_plain, NULL};
                s.pebble = spawn_logged(argv, env, "pebble.log");
                uint64_t deadline = monotonic_usec() + 15 * USEC_PER_SEC;
                while (https_get(DIRECTORY_URL, NULL) != 200) {
                        g_assert_cmpuint(monotonic_usec(), <, deadline);
                        g_usleep(20 * 1000);
                }
        }

        AcmeSettings settings = {
                .directory_url = DIRECTORY_URL,
                .ca_bundle = tls_cert,
                .http_port = 5002,
                .timeout_sec = 1,
        };
        Provider *p = NULL;
        g_autofree char *error = NULL;
        g_assert_cmpint(provider_acme_new(&settings, &p, &error), ==, 0);

        bool waited = false;
        /* The sleep is random and may be zero: try a few names until one waits. */
        for (unsigned attempt = 0; attempt < 8 && !waited; attempt++) {
                g_autofree char *name = g_strdup_printf("slow%u.example.org", attempt);
                char *names[] = {name, NULL};
                EVP_PKEY *key = NULL;
                X509_REQ *csr = make_csr(name, names, &key);
                ProviderRequest req = {.order_id = 7, .common_name = name, .dns_names = names, .csr = csr};
                ProviderResult res = {0};

                g_assert_cmpint(p->ops->issue(p, &req, &res), ==, 0);
                if (res.outcome == PROVIDER_WAIT) {
                        waited = true;
                        g_assert_true(g_str_has_prefix(res.cookie, "https://127.0.0.1:14000/"));
                        g_assert_cmpuint(res.retry_after_usec, >, 0);
                        g_assert_nonnull(res.error);
                        unsigned orders = count_in_log("pebble.log", "POST /order-plz");
                        g_assert_cmpuint(orders, >, 0);

                        /* Poll as the daemon would, each call again bounded by the 1 s deadline. */
                        g_autofree char *cookie = g_strdup(res.cookie);
                        ProviderRequest poll_req = req;
                        poll_req.cookie = cookie;
                        uint64_t deadline = monotonic_usec() + 30 * USEC_PER_SEC;
                        do {
                                g_assert_cmpuint(monotonic_usec(), <, deadline);
                                result_clear(&res);
                                poll_req.attempt++;
                                g_assert_cmpint(p->ops->issue(p, &poll_req, &res), ==, 0);
                        } while (res.outcome == PROVIDER_WAIT);
                        assert_issued(&res, csr, names);
                        g_assert_cmpuint(count_in_log("pebble.log", "POST /order-plz"), ==, orders);
                } else
                        g_assert_cmpint(res.outcome, ==, PROVIDER_ISSUED);
                result_clear(&res);
                X509_REQ_free(csr);
                EVP_PKEY_free(key);
        }
        g_assert_true(waited);
        p->ops->free(p);
        services_stop(&s);
}

static void test_unreachable(void) {
        AcmeSettings settings = {
                .directory_url = "https://127.0.0.1:1/dir", /* nothing listens in our namespace */
                .timeout_sec = 60,
        };
        Provider *p = NULL;
        g_autofree char *error = NULL;
        g_assert_cmpint(provider_acme_new(&settings, &p, &error), ==, 0);

        char *names[] = {(char *) "down.example.org", NULL};
        ProviderResult res = {0};
        uint64_t start = monotonic_usec();
        issue(p, "down.example.org", names, &res, NULL);
        g_test_message("unreachable after %" PRIu64 " ms: %s", (monotonic_usec() - start) / USEC_PER_MSEC,
                       strempty(res.error));
        g_assert_cmpuint(monotonic_usec() - start, <, 10 * USEC_PER_SEC);
        g_assert_cmpint(res.outcome, ==, PROVIDER_UNREACHABLE);
        g_assert_nonnull(res.error);
        g_assert_null(res.certificate_pem);
        result_clear(&res);

        /* A server that accepts connections and then says nothing is bounded by
         * the order deadline, not waited for. */
        {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_in sa = {.sin_family = AF_INET,
                                         .sin_port = htons(14999),
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
                g_assert_cmpint(listen(fd, 16), ==, 0);
                AcmeSettings silent = {.directory_url = "https://127.0.0.1:14999/dir", .timeout_sec = 2};
                Provider *ps = NULL;
                g_autofree char *e2 = NULL;
                g_assert_cmpint(provider_acme_new(&silent, &ps, &e2), ==, 0);
                ProviderResult rs = {0};
                start = monotonic_usec();
                issue(ps, "down.example.org", names, &rs, NULL);
                g_test_message("silent server gave up after %" PRIu64 " ms: %s",
                               (monotonic_usec() - start) / USEC_PER_MSEC, strempty(rs.error));
                g_assert_cmpuint(monotonic_usec() - start, <, 5 * USEC_PER_SEC);
                g_assert_cmpint(rs.outcome, ==, PROVIDER_UNREACHABLE);
                result_clear(&rs);
                ps->ops->free(ps);
                close(fd);
        }

        /* A URI is no ACME identifier: refused for good before any connection (the server here
         * is unreachable, so anything else would be PROVIDER_UNREACHABLE). */
        {
                char *uri[] = {(char *) "spiffe://example.org/ns/prod/sa/web", NULL};
                ProviderResult ru = {0};
                issue(p, "down.example.org", uri, &ru, NULL);
                g_assert_cmpint(ru.outcome, ==, PROVIDER_REJECTED);
                g_assert_nonnull(strstr(ru.error, "'spiffe://example.org/ns/prod/sa/web'"));
                result_clear(&ru);
        }

        /* Revocation fails the same way, with a reason. */
        EVP_PKEY *key = NULL;
        X509_REQ *csr = make_csr("down.example.org", names, &key);
        X509 *self = X509_new();
        X509_set_pubkey(self, key);
        X509_set_subject_name(self, X509_REQ_get_subject_name(csr));
        X509_set_issuer_name(self, X509_REQ_get_subject_name(csr));
        X509_gmtime_adj(X509_getm_notBefore(self), 0);
        X509_gmtime_adj(X509_getm_notAfter(self), 3600);
        g_assert_true(X509_sign(self, key, EVP_sha256()) > 0);
        g_assert_cmpint(p->ops->revoke(p, self, 0, &error), <, 0);
        g_assert_nonnull(error);
        X509_free(self);
        X509_REQ_free(csr);
        EVP_PKEY_free(key);
        p->ops->free(p);
}

static void test_rejected_identifier(void) {
        Services s;
        services_start(&s, config_plain, true, 0, false);

        Provider *p = make_provider(NULL, 5002, NULL, false);
        char *names[] = {(char *) "www.blocked.example", NULL};
        ProviderResult res = {0};
        issue(p, "www.blocked.example", names, &res, NULL);
        g_assert_cmpint(res.outcome, ==, PROVIDER_REJECTED);
        g_assert_nonnull(res.error);
        g_test_message("blocked: %s", res.error);
        if (!g_str_has_prefix(res.error, "urn:ietf:params:acme:error:rejectedIdentifier: "))
                g_error("unexpected error: %s", res.error);
        g_assert_nonnull(strstr(res.error, "www.blocked.example"));
        g_assert_null(res.certificate_pem);
        result_clear(&res);
        p->ops->free(p);
        services_stop(&s);
}

static void test_external_account_binding(void) {
        Services s;
        services_start(&s, config_eab, true, 0, false);

        char *names[] = {(char *) "eab.example.org", NULL};
        ProviderResult res = {0};

        Provider *p = make_provider(NULL, 5002, NULL, false);
        issue(p, "eab.example.org", names, &res, NULL);
        g_assert_cmpint(res.outcome, ==, PROVIDER_REJECTED);
        g_assert_nonnull(strstr(res.error, "externalAccountRequired"));
        result_clear(&res);
        p->ops->free(p);

        p = make_provider(NULL, 5002, NULL, true);
        X509_REQ *csr = NULL;
        issue(p, "eab.example.org", names, &res, &csr);
        assert_issued(&res, csr, names);
        X509_REQ_free(csr);
        result_clear(&res);
        p->ops->free(p);

        services_stop(&s);
}

static void test_bad_settings(void) {
        Provider *p = NULL;
        g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL;

        AcmeSettings plain_http = {.directory_url = "http://127.0.0.1:14000/dir"};
        g_assert_cmpint(provider_acme_new(&plain_http, &p, &e1), ==, -EINVAL);
        g_assert_nonnull(strstr(e1, "https://"));

        AcmeSettings half_eab = {.directory_url = DIRECTORY_URL, .eab_key_id = "kid-1"};
        g_assert_cmpint(provider_acme_new(&half_eab, &p, &e2), ==, -EINVAL);
        g_assert_nonnull(e2);

        AcmeSettings bad_eab = {
                .directory_url = DIRECTORY_URL, .eab_key_id = "kid-1", .eab_hmac_key = "*!*"};
        g_assert_cmpint(provider_acme_new(&bad_eab, &p, &e3), ==, -EINVAL);
        g_assert_nonnull(e3);
        g_assert_null(p);
}

/* ---- setup ---- */

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

static void write_config(const char *path, bool eab) {
        g_autofree char *json = g_strdup_printf(
                "{\"pebble\":{\"listenAddress\":\"127.0.0.1:14000\",\"managementListenAddress\":\"127.0.0.1:"
                "15000\","
                "\"certificate\":\"%s\",\"privateKey\":\"%s\",\"httpPort\":5002,\"tlsPort\":5001,"
                "\"ocspResponderURL\":\"\",\"externalAccountBindingRequired\":%s,"
                "\"externalAccountMACKeys\":{\"" EAB_KID "\":\"" EAB_KEY "\"},"
                "\"domainBlocklist\":[\"blocked.example\"]}}",
                tls_cert, tls_key, eab ? "true" : "false");
        g_assert_true(g_file_set_contents(path, json, -1, NULL));
}

static void make_tls_certificate(void) {
        g_autofree char *key_arg = g_strdup(tls_key), *cert_arg = g_strdup(tls_cert);
        char *argv[] = {(char *) "openssl",
                        (char *) "req",
                        (char *) "-x509",
                        (char *) "-newkey",
                        (char *) "ec",
                        (char *) "-pkeyopt",
                        (char *) "ec_paramgen_curve:P-256",
                        (char *) "-nodes",
                        (char *) "-keyout",
                        key_arg,
                        (char *) "-out",
                        cert_arg,
                        (char *) "-days",
                        (char *) "2",
                        (char *) "-subj",
                        (char *) "/CN=localhost",
                        (char *) "-addext",
                        (char *) "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        NULL};
        g_autoptr(GError) error = NULL;
        gint status = 0;
        g_assert_true(
                g_spawn_sync(NULL, argv, NULL,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                             NULL, NULL, NULL, NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
}

static int rm_rf(const char *path) {
        char *argv[] = {(char *) "rm", (char *) "-rf", (char *) path, NULL};
        return g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL) ? 0
                                                                                                       : -1;
}

/* Exit code 77 means "skipped" to plain runners; under TAP (as meson runs us)
 * a non-zero exit is an error, and an empty plan with SKIP is the way to say it. */
static int skip_all(bool tap, const char *why) {
        if (tap) {
                printf("1..0 # SKIP %s\n", why);
                return 0;
        }
        fprintf(stderr, "SKIP: %s\n", why);
        return 77;
}

int main(int argc, char *argv[]) {
        bool tap = false;
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--tap"))
                        tap = true;

        g_test_init(&argc, &argv, NULL);

        g_autofree char *pebble = g_find_program_in_path("pebble");
        g_autofree char *challtestsrv = g_find_program_in_path("pebble-challtestsrv");
        if (!pebble || !challtestsrv)
                return skip_all(tap, "pebble is not installed");
        int r = enter_network_namespace();
        if (r < 0) {
                g_autofree char *why =
                        g_strdup_printf("cannot enter a private network namespace: %s", g_strerror(-r));
                return skip_all(tap, why);
        }
        if (g_getenv("CERTKEEPER_TEST_DEBUG"))
                log_set_max_level(LOG_DEBUG);

        curl_global_init(CURL_GLOBAL_DEFAULT);
        g_assert_cmpint(RAND_bytes(master_key.key, sizeof master_key.key), ==, 1);

        tmpdir = g_dir_make_tmp("test-provider-acme-XXXXXX", NULL);
        g_assert_nonnull(tmpdir);
        tls_cert = g_build_filename(tmpdir, "tls.pem", NULL);
        tls_key = g_build_filename(tmpdir, "tls.key", NULL);
        config_plain = g_build_filename(tmpdir, "pebble.json", NULL);
        config_eab = g_build_filename(tmpdir, "pebble-eab.json", NULL);
        make_tls_certificate();
        write_config(config_plain, false);
        write_config(config_eab, true);

        g_test_add_func("/provider-acme/issue-and-revoke", test_issue_and_revoke);
        g_test_add_func("/provider-acme/http01-responder", test_http01_responder);
        g_test_add_func("/provider-acme/bad-nonce", test_bad_nonce);
        g_test_add_func("/provider-acme/server-reset", test_server_reset);
        g_test_add_func("/provider-acme/wait-and-resume", test_wait_and_resume);
        g_test_add_func("/provider-acme/unreachable", test_unreachable);
        g_test_add_func("/provider-acme/rejected-identifier", test_rejected_identifier);
        g_test_add_func("/provider-acme/external-account-binding", test_external_account_binding);
        g_test_add_func("/provider-acme/bad-settings", test_bad_settings);

        r = g_test_run();

        if (!g_getenv("CERTKEEPER_TEST_KEEP"))
                (void) rm_rf(tmpdir);
        OPENSSL_cleanse(&master_key, sizeof master_key);
        g_free(tmpdir);
        g_free(tls_cert);
        g_free(tls_key);
        g_free(config_plain);
        g_free(config_eab);
        curl_global_cleanup();
        return r;
}
