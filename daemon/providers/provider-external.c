/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The external-CA provider ([ExternalCA "NAME"]): SUBMIT and POLL through the helper
 * (external-helper.c), and what its answers become: an issued chain checked and completed from
 * the CA's roots, a wait with its cookie, a refusal. */

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "external-helper.h"
#include "log.h"

/* After ours: GLib redefines MIN() and MAX() the same way. */
#include <glib.h>

/* A cookie goes back to the helper in its environment and into the store. */
#define COOKIE_MAX (16U * 1024U)
/* Exit 1 carries no delay: poll again after 30 s, doubling per attempt up to 6 h. */
#define POLL_DELAY_MIN_USEC (30 * USEC_PER_SEC)
#define POLL_DELAY_MAX_USEC (6 * 3600 * USEC_PER_SEC)
/* Exit 5's delay is the helper's wish, within reason. */
#define WAIT_DELAY_MAX_SEC (30U * 86400U)
#define ROOTS_CACHE_USEC (24 * 3600 * USEC_PER_SEC)
#define ROOTS_RETRY_USEC (5 * 60 * USEC_PER_SEC)
#define CHAIN_DEPTH_MAX 10

static int result_set(ProviderResult *ret, ProviderOutcome outcome, const char *format, ...) _printf_(3, 4);
static int result_set(ProviderResult *ret, ProviderOutcome outcome, const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;

        free(ret->error);
        ret->error = s;
        ret->outcome = outcome;
        return 0;
}

/* ---- certificates ------------------------------------------------------------------------------- */

static int parse_certificates(const char *data, size_t len, STACK_OF(X509) **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_x509_stack_ STACK_OF(X509) *certs = NULL;

        bio = BIO_new_mem_buf(data, (int) len);
        certs = sk_X509_new_null();
        if (!bio || !certs)
                return -ENOMEM;
        for (;;) {
                X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

                if (!x)
                        break;
                if (sk_X509_push(certs, x) <= 0) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }
        ERR_clear_error(); /* the end of the input reads as an error */
        *ret = TAKE_PTR(certs);
        return 0;
}

static int certs_to_pem(STACK_OF(X509) *certs, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
        char *data;
        long n;

        if (!bio)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(certs); i++)
                if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1)
                        return -ENOMEM;
        n = BIO_get_mem_data(bio, &data);
        if (n <= 0) {
                *ret = NULL;
                return 0;
        }
        *ret = strndup(data, (size_t) n);
        return *ret ? 0 : -ENOMEM;
}

static int cert_to_pem(X509 *x, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
        char *data;
        long n;

        if (!bio || PEM_write_bio_X509(bio, x) != 1)
                return -ENOMEM;
        n = BIO_get_mem_data(bio, &data);
        *ret = strndup(data, (size_t) n);
        return *ret ? 0 : -ENOMEM;
}

static bool issued_by(X509 *subject, X509 *issuer) {
        EVP_PKEY *k = X509_get0_pubkey(issuer);
        bool ok = X509_check_issued(issuer, subject) == X509_V_OK && k && X509_verify(subject, k) == 1;

        ERR_clear_error();
        return ok;
}

static bool self_signed(X509 *x) {
        return issued_by(x, x);
}

static int stack_push_copy(STACK_OF(X509) *to, X509 *x) {
        if (X509_up_ref(x) != 1)
                return -ENOMEM;
        if (sk_X509_push(to, x) <= 0) {
                X509_free(x);
                return -ENOMEM;
        }
        return 0;
}

/* Orders candidates into the chain above leaf, as far as they reach. */
static int build_chain(X509 *leaf, STACK_OF(X509) *candidates, STACK_OF(X509) **ret) {
        _cleanup_x509_stack_ STACK_OF(X509) *chain = sk_X509_new_null();
        X509 *current = leaf;

        if (!chain)
                return -ENOMEM;
        for (int depth = 0; depth < CHAIN_DEPTH_MAX && !self_signed(current); depth++) {
                X509 *next = NULL;

                for (int i = 0; candidates && i < sk_X509_num(candidates) && !next; i++) {
                        X509 *c = sk_X509_value(candidates, i);

                        if (c != leaf && sk_X509_find(chain, c) < 0 && issued_by(current, c))
                                next = c;
                }
                if (!next)
                        break;
                if (stack_push_copy(chain, next) < 0)
                        return -ENOMEM;
                current = next;
        }
        *ret = TAKE_PTR(chain);
        return 0;
}

static int stack_append_copies(STACK_OF(X509) *to, STACK_OF(X509) *from) {
        for (int i = 0; from && i < sk_X509_num(from); i++) {
                int r = stack_push_copy(to, sk_X509_value(from, i));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* FETCH-ROOTS prints "nickname\nPEM\n", repeated, with blank lines between
 * groups; the PEM blocks are what we want and the nicknames are skipped. A
 * helper that cannot (exit 6) or fails is remembered for a while so that
 * every issuance does not pay for it. Returns copies the caller owns. */
static int fetch_roots(ExternalProvider *p, STACK_OF(X509) **ret) {
        _cleanup_x509_stack_ STACK_OF(X509) *roots = NULL, *copy = NULL;
        _cleanup_free_ char *error = NULL, *failure = NULL;
        HelperEnv env;
        HelperRun h = { .exit_code = -1 };
        uint64_t valid_for = ROOTS_RETRY_USEC;
        int r;

        pthread_mutex_lock(&p->roots_lock);
        if (p->roots_valid_until > monotonic_usec()) {
                copy = sk_X509_new_null();
                r = copy ? stack_append_copies(copy, p->roots) : -ENOMEM;
                pthread_mutex_unlock(&p->roots_lock);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(copy);
                return 0;
        }
        pthread_mutex_unlock(&p->roots_lock);

        r = helper_env_init(&env, p, "FETCH-ROOTS");
        if (r >= 0)
                r = external_run_helper(p, env.v, &h, &error);
        helper_env_done(&env);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_debug("%s", strempty(error));
        else {
                failure = external_helper_failure(p, &h, "FETCH-ROOTS");
                if (failure)
                        log_warning("%s, ignoring.", failure);
                else if (h.exit_code == HELPER_UNSUPPORTED) {
                        log_debug("External CA \"%s\": helper does not support FETCH-ROOTS.", p->provider.name);
                        valid_for = UINT64_MAX / 2;
                } else if (h.exit_code != 0)
                        log_warning("External CA \"%s\": FETCH-ROOTS exited with status %i, ignoring.",
                                    p->provider.name, h.exit_code);
                else {
                        r = parse_certificates(h.out, h.out_len, &roots);
                        if (r < 0) {
                                helper_run_done(&h);
                                return r;
                        }
                        valid_for = ROOTS_CACHE_USEC;
                }
        }
        helper_run_done(&h);

        copy = sk_X509_new_null();
        if (!copy || stack_append_copies(copy, roots) < 0)
                return -ENOMEM;

        pthread_mutex_lock(&p->roots_lock);
        sk_X509_pop_free(p->roots, X509_free);
        p->roots = TAKE_PTR(roots);
        p->roots_valid_until = monotonic_usec() + valid_for;
        pthread_mutex_unlock(&p->roots_lock);

        *ret = TAKE_PTR(copy);
        return 0;
}

static int issued(ExternalProvider *p, const ProviderRequest *req, const HelperRun *h, ProviderResult *ret) {
        _cleanup_x509_stack_ STACK_OF(X509) *certs = NULL, *given = NULL, *chain = NULL, *candidates = NULL,
                                            *roots = NULL;
        _cleanup_free_ char *leaf_pem = NULL, *chain_pem = NULL;
        int leaf_idx = 0, r;
        X509 *leaf;

        r = parse_certificates(h->out, h->out_len, &certs);
        if (r < 0)
                return r;
        if (sk_X509_num(certs) == 0)
                return result_set(ret, PROVIDER_REJECTED,
                                  "External CA \"%s\": helper %s reported success but printed no PEM certificate",
                                  p->provider.name, p->argv[0]);

        /* The leaf comes first by protocol; accept it anywhere (some print a
         * full chain root first), but it must certify the request's key. */
        if (req->csr) {
                leaf_idx = -1;
                for (int i = 0; i < sk_X509_num(certs) && leaf_idx < 0; i++)
                        if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)),
                                        X509_REQ_get0_pubkey(req->csr)) == 1)
                                leaf_idx = i;
                ERR_clear_error();
                if (leaf_idx < 0)
                        return result_set(ret, PROVIDER_REJECTED,
                                          "External CA \"%s\": helper %s returned no certificate for the "
                                          "request's key",
                                          p->provider.name, p->argv[0]);
        }
        leaf = sk_X509_value(certs, leaf_idx);

        /* The chain as the helper gave it, completed from FETCH-ROOTS when it
         * does not reach a root. */
        given = sk_X509_new_null();
        candidates = sk_X509_new_null();
        if (!given || !candidates)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(certs); i++)
                if (i != leaf_idx && stack_push_copy(given, sk_X509_value(certs, i)) < 0)
                        return -ENOMEM;
        r = stack_append_copies(candidates, given);
        if (r < 0)
                return r;
        r = build_chain(leaf, candidates, &chain);
        if (r < 0)
                return r;
        if (sk_X509_num(chain) == 0 || !self_signed(sk_X509_value(chain, sk_X509_num(chain) - 1))) {
                r = fetch_roots(p, &roots);
                if (r < 0)
                        return r;
                r = stack_append_copies(candidates, roots);
                if (r < 0)
                        return r;
                sk_X509_pop_free(chain, X509_free);
                chain = NULL;
                r = build_chain(leaf, candidates, &chain);
                if (r < 0)
                        return r;
        }

        r = cert_to_pem(leaf, &leaf_pem);
        if (r < 0)
                return r;
        /* A chain that links wins; otherwise pass on what the helper printed. */
        r = certs_to_pem(sk_X509_num(chain) > 0 ? chain : given, &chain_pem);
        if (r < 0)
                return r;

        free(ret->certificate_pem);
        free(ret->chain_pem);
        ret->certificate_pem = TAKE_PTR(leaf_pem);
        ret->chain_pem = TAKE_PTR(chain_pem);
        ret->outcome = PROVIDER_ISSUED;
        return 0;
}

static int wait_result(ExternalProvider *p, const ProviderRequest *req, const HelperRun *h, ProviderResult *ret) {
        const char *cookie = h->out, *end;
        uint64_t delay;

        if (h->exit_code == HELPER_WAIT_WITH_DELAY) {
                char *e = NULL;
                unsigned long sec;

                while (*cookie == ' ' || *cookie == '\t')
                        cookie++;
                errno = 0;
                sec = strtoul(cookie, &e, 10);
                if (errno != 0 || e == cookie || (*e != '\n' && *e != '\r' && *e != 0 && *e != ' ') ||
                    *cookie == '-')
                        return result_set(ret, PROVIDER_REJECTED,
                                          "External CA \"%s\": helper %s asked to wait (status 5) but its "
                                          "first line is not a number of seconds",
                                          p->provider.name, p->argv[0]);
                delay = (uint64_t) MIN(sec, (unsigned long) WAIT_DELAY_MAX_SEC) * USEC_PER_SEC;
                cookie = strchr(e, '\n');
                cookie = cookie ? cookie + 1 : e + strlen(e);
        } else {
                unsigned shift = MIN(req->attempt, 20U);

                delay = MIN(POLL_DELAY_MIN_USEC << shift, POLL_DELAY_MAX_USEC);
        }

        /* The cookie is opaque but goes back through the environment: trim the
         * line ends certmonger's helpers print, refuse what cannot be passed on. */
        end = h->out + h->out_len;
        while (end > cookie && (end[-1] == '\n' || end[-1] == '\r'))
                end--;
        if ((size_t) (end - cookie) > COOKIE_MAX || memchr(cookie, 0, (size_t) (end - cookie)))
                return result_set(ret, PROVIDER_REJECTED,
                                  "External CA \"%s\": helper %s returned an unusable cookie (binary or longer "
                                  "than %u bytes)",
                                  p->provider.name, p->argv[0], COOKIE_MAX);

        free(ret->cookie);
        if (end > cookie)
                ret->cookie = strndup(cookie, (size_t) (end - cookie));
        else
                /* No new cookie: keep polling with the one we had. */
                ret->cookie = strdup(strempty(req->cookie));
        if (!ret->cookie)
                return -ENOMEM;
        ret->retry_after_usec = delay;
        return result_set(ret, PROVIDER_WAIT, "Waiting for external CA \"%s\" to issue the certificate",
                          p->provider.name);
}

static int external_issue(Provider *base, const ProviderRequest *req, ProviderResult *ret) {
        ExternalProvider *p = external_provider(base);
        _cleanup_free_ char *error = NULL, *failure = NULL, *msg = NULL;
        const char *operation = req->cookie ? "POLL" : "SUBMIT";
        HelperEnv env;
        HelperRun h = { .exit_code = -1 };
        int r;

        *ret = (ProviderResult) { .outcome = 0 };

        if (!req->csr)
                return result_set(ret, PROVIDER_REJECTED,
                                  "External CA \"%s\" needs a certificate signing request", base->name);

        r = helper_env_init(&env, p, operation);
        if (r >= 0)
                r = helper_env_add_request(&env, req);
        if (r >= 0)
                r = external_run_helper(p, env.v, &h, &error);
        helper_env_done(&env);
        if (r == -ENOMEM || r == -E2BIG)
                return r;
        if (r < 0) {
                /* Not there or not executable: a configuration error that retrying will not fix. */
                ret->outcome = PROVIDER_REJECTED;
                ret->error = TAKE_PTR(error);
                return ret->error ? 0 : -ENOMEM;
        }

        failure = external_helper_failure(p, &h, operation);
        if (failure) {
                ret->outcome = h.flooded ? PROVIDER_REJECTED : PROVIDER_UNREACHABLE;
                ret->error = TAKE_PTR(failure);
                helper_run_done(&h);
                return 0;
        }

        log_debug("External CA \"%s\": helper %s exited with status %i after %s.", base->name, p->argv[0],
                  h.exit_code, operation);

        if (h.exit_code == HELPER_ISSUED)
                r = issued(p, req, &h, ret);
        else if (h.exit_code == HELPER_WAIT || h.exit_code == HELPER_WAIT_WITH_DELAY)
                r = wait_result(p, req, &h, ret);
        else {
                msg = external_helper_message(&h);
                if (!msg)
                        r = -ENOMEM;
                else if (h.exit_code == HELPER_REJECTED)
                        r = result_set(ret, PROVIDER_REJECTED, "External CA \"%s\" rejected the request: %s",
                                       base->name, msg);
                else if (h.exit_code == HELPER_UNREACHABLE)
                        r = result_set(ret, PROVIDER_UNREACHABLE,
                                       "External CA \"%s\" could not be reached by helper %s: %s", base->name,
                                       p->argv[0], msg);
                else if (h.exit_code == HELPER_UNDERCONFIGURED)
                        r = result_set(ret, PROVIDER_REJECTED,
                                       "External CA \"%s\": helper %s is under-configured (status 4): %s",
                                       base->name, p->argv[0], msg);
                else if (h.exit_code == HELPER_UNSUPPORTED)
                        r = result_set(ret, PROVIDER_REJECTED,
                                       "External CA \"%s\": helper %s does not support the %s operation "
                                       "(status 6)",
                                       base->name, p->argv[0], operation);
                else
                        r = result_set(ret, PROVIDER_REJECTED,
                                       "External CA \"%s\": helper %s exited with unexpected status %i: %s",
                                       base->name, p->argv[0], h.exit_code, msg);
        }
        helper_run_done(&h);
        if (r < 0)
                provider_result_done(ret);
        return r;
}

static char *external_identify(Provider *base) {
        ExternalProvider *p = external_provider(base);
        _cleanup_free_ char *error = NULL, *failure = NULL, *text = NULL;
        HelperEnv env;
        HelperRun h = { .exit_code = -1 };
        char *s;
        int r;

        r = helper_env_init(&env, p, "IDENTIFY");
        if (r >= 0)
                r = external_run_helper(p, env.v, &h, &error);
        helper_env_done(&env);
        if (r == -ENOMEM || r == -E2BIG)
                return NULL;
        if (r < 0)
                return TAKE_PTR(error);

        failure = external_helper_failure(p, &h, "IDENTIFY");
        if (failure)
                s = TAKE_PTR(failure);
        else if (h.exit_code == 0 && (text = external_text_sanitize(h.out, h.out_len, HELPER_MESSAGE_MAX)) &&
                 !isempty(text))
                s = TAKE_PTR(text);
        else if (h.exit_code == 0 || h.exit_code == HELPER_UNSUPPORTED)
                s = external_strdup_printf("helper %s (identification not supported)", p->argv[0]);
        else {
                _cleanup_free_ char *msg = external_helper_message(&h);
                s = external_strdup_printf("helper %s: IDENTIFY exited with status %i: %s", p->argv[0], h.exit_code,
                                  strempty(msg));
        }
        helper_run_done(&h);
        return s;
}

static void external_free(Provider *base) {
        ExternalProvider *p = external_provider(base);

        if (!p)
                return;
        free(p->provider.name);
        strv_freep(&p->argv);
        sk_X509_pop_free(p->roots, X509_free);
        pthread_mutex_destroy(&p->roots_lock);
        free(p);
}

static const ProviderOps external_ops = {
        .order_type = "external-ca",
        .needs_csr = true,
        .issue = external_issue,
        .revoke = NULL, /* certmonger's helper protocol has no revocation */
        .identify = external_identify,
        .free = external_free,
};

int provider_external_new(const ExternalCaConfig *c, Provider **ret, char **ret_error) {
        ExternalProvider *p;
        size_t n = 0;

        if (!c || isempty(c->name) || !c->helper_argv || isempty(c->helper_argv[0])) {
                *ret_error = external_strdup_printf("[ExternalCA \"%s\"]: Helper= is not set: expected a program and its "
                                           "arguments", c ? strempty(c->name) : "");
                return -EINVAL;
        }

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->provider.ops = &external_ops;
        if (pthread_mutex_init(&p->roots_lock, NULL) != 0) {
                free(p);
                return -ENOMEM;
        }
        p->timeout_sec = c->timeout_sec > 0 ? c->timeout_sec : HELPER_DEFAULT_TIMEOUT_SEC;
        p->provider.name = strdup(c->name);

        while (c->helper_argv[n])
                n++;
        p->argv = calloc(n + 1, sizeof(char *));
        if (!p->provider.name || !p->argv) {
                external_free(&p->provider);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                p->argv[i] = strdup(c->helper_argv[i]);
                if (!p->argv[i]) {
                        external_free(&p->provider);
                        return -ENOMEM;
                }
        }

        *ret = &p->provider;
        return 0;
}
