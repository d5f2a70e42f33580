/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The ACME provider: an RFC 8555 client. issue() runs on a worker thread and
 * walks one order from newOrder to the downloaded chain (authorizations by
 * http-01, from a webroot or the built-in responder), blocking on the network
 * with bounded timeouts. The protocol session underneath (transport, nonces,
 * account) is acme-client.c; several issue() calls may run at once. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "acme-client.h"
#include "acme-jws.h"
#include "acme-responder.h"
#include "fileio.h"
#include "log.h"
#include "provider-acme.h"

#define ACCOUNT_KEY_FILE_MAX (64U * 1024U)
#define DEFAULT_TIMEOUT_SEC 300U
#define REVOKE_TIMEOUT_SEC 120U
#define POLL_MIN_USEC (100U * USEC_PER_MSEC)
#define POLL_MAX_USEC (10U * USEC_PER_SEC)
#define WAIT_RETRY_USEC (60U * USEC_PER_SEC)
#define IDENTIFIERS_MAX 100U

typedef struct AcmeProvider {
        Provider parent;

        AcmeClient *client;
        char *webroot_path;
        unsigned timeout_sec;
        AcmeResponder *responder;
} AcmeProvider;

/* ---- http-01 ---- */

typedef struct Published {
        char *token;
        char *path; /* webroot file, or NULL when served by the responder */
} Published;

typedef struct Challenges {
        AcmeProvider *a;
        GArray *published; /* Published */
        bool responder_acquired;
} Challenges;

static void challenges_done(Challenges *ch) {
        if (!ch->published)
                return;
        for (guint i = 0; i < ch->published->len; i++) {
                Published *p = &g_array_index(ch->published, Published, i);
                if (p->path) {
                        if (unlink(p->path) < 0 && errno != ENOENT)
                                log_warning_errno(errno, "Cannot remove %s, ignoring: %m", p->path);
                } else
                        acme_responder_remove(ch->a->responder, p->token);
                g_free(p->token);
                g_free(p->path);
        }
        g_array_free(ch->published, TRUE);
        ch->published = NULL;
        if (ch->responder_acquired)
                acme_responder_release(ch->a->responder);
        ch->responder_acquired = false;
}

static int mkdir_p(const char *path, mode_t mode) {
        if (mkdir(path, mode) >= 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        g_autofree char *parent = g_path_get_dirname(path);
        if (streq(parent, path))
                return -ENOENT;
        int r = mkdir_p(parent, mode);
        if (r < 0)
                return r;
        return mkdir(path, mode) >= 0 || errno == EEXIST ? 0 : -errno;
}

static int challenge_publish(AcmeCall *c, Challenges *ch, const char *token) {
        AcmeProvider *a = ch->a;

        if (!acme_token_is_valid(token))
                return acme_call_fail(c, PROVIDER_REJECTED, "The ACME server sent an invalid http-01 token");

        g_autofree char *keyauth = g_strconcat(token, ".", acme_client_thumbprint(a->client), NULL);
        Published pub = {.token = g_strdup(token)};

        if (a->webroot_path) {
                g_autofree char *dir =
                        g_build_filename(a->webroot_path, ".well-known", "acme-challenge", NULL);
                int r = mkdir_p(dir, 0755);
                if (r < 0) {
                        g_free(pub.token);
                        return acme_call_fail(c, PROVIDER_UNREACHABLE, "Cannot create %s: %s", dir,
                                              strerror(-r));
                }
                pub.path = g_build_filename(dir, token, NULL);
                r = write_file_atomic(pub.path, keyauth, strlen(keyauth), 0644);
                if (r < 0) {
                        int e = acme_call_fail(c, PROVIDER_UNREACHABLE, "Cannot write %s: %s", pub.path,
                                               strerror(-r));
                        g_free(pub.token);
                        g_free(pub.path);
                        return e;
                }
        } else {
                if (!ch->responder_acquired) {
                        g_autofree char *err = NULL;
                        int r = acme_responder_acquire(a->responder, &err);
                        if (r < 0) {
                                g_free(pub.token);
                                return acme_call_fail(c, PROVIDER_UNREACHABLE, "%s", err);
                        }
                        ch->responder_acquired = true;
                }
                if (acme_responder_add(a->responder, token, keyauth) < 0) {
                        g_free(pub.token);
                        return acme_call_fail(c, PROVIDER_REJECTED,
                                              "The ACME server sent an invalid http-01 token");
                }
        }
        g_array_append_val(ch->published, pub);
        return 0;
}

static const char *authz_identifier(JsonObject *authz) {
        JsonNode *n = json_object_get_member(authz, "identifier");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return "?";
        const char *v = acme_object_string(json_node_get_object(n), "value");
        return v ? v : "?";
}

/* The http-01 challenge object of an authorization, or NULL. */
static JsonObject *authz_http01(JsonObject *authz) {
        JsonNode *n = json_object_get_member(authz, "challenges");
        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return NULL;
        JsonArray *arr = json_node_get_array(n);
        for (guint i = 0; i < json_array_get_length(arr); i++) {
                JsonNode *e = json_array_get_element(arr, i);
                if (JSON_NODE_HOLDS_OBJECT(e) &&
                    streq_ptr(acme_object_string(json_node_get_object(e), "type"), "http-01"))
                        return json_node_get_object(e);
        }
        return NULL;
}

/* Fail with the problem that made an authorization invalid. */
static int fail_authz(AcmeCall *c, JsonObject *authz, const char *status) {
        JsonObject *ch = authz_http01(authz);
        JsonNode *e = ch ? json_object_get_member(ch, "error") : NULL;
        if (e && JSON_NODE_HOLDS_OBJECT(e)) {
                JsonObject *p = json_node_get_object(e);
                const char *type = acme_object_string(p, "type"), *detail = acme_object_string(p, "detail");
                return acme_call_fail(c, PROVIDER_REJECTED, "%s: %s (authorization for %s)",
                                      type ? type : ACME_PROBLEM_PREFIX "unauthorized",
                                      detail ? detail : "validation failed", authz_identifier(authz));
        }
        return acme_call_fail(c, PROVIDER_REJECTED,
                              ACME_PROBLEM_PREFIX "unauthorized: authorization for %s is %s",
                              authz_identifier(authz), status);
}

/* Bring every authorization of the order to "valid": answer the pending http-01
 * challenges, then poll. */
static int do_authorizations(AcmeProvider *a, AcmeCall *c, JsonObject *order, bool *ret_timed_out) {
        JsonNode *n = json_object_get_member(order, "authorizations");
        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return acme_call_fail(c, PROVIDER_REJECTED, "ACME order without authorizations");
        JsonArray *urls = json_node_get_array(n);
        guint n_authz = json_array_get_length(urls);
        if (n_authz > IDENTIFIERS_MAX)
                return acme_call_fail(c, PROVIDER_REJECTED, "ACME order with %u authorizations", n_authz);

        _cleanup_(challenges_done)
                Challenges ch = {.a = a, .published = g_array_new(FALSE, TRUE, sizeof(Published))};
        g_autoptr(GPtrArray) waiting = g_ptr_array_new_with_free_func(g_free);

        for (guint i = 0; i < n_authz; i++) {
                const char *url = json_array_get_string_element(urls, i);
                if (!url)
                        return acme_call_fail(c, PROVIDER_REJECTED,
                                              "ACME order with a malformed authorization URL");

                _cleanup_(acme_response_done) AcmeResponse resp = {0};
                g_autoptr(JsonParser) parser = NULL;
                JsonObject *authz;
                int r = acme_post_object(c, url, NULL, "ACME authorization", &resp, &parser, &authz);
                if (r < 0)
                        return r;

                const char *status = strempty(acme_object_string(authz, "status"));
                if (streq(status, "valid"))
                        continue;
                if (!streq(status, "pending"))
                        return fail_authz(c, authz, status);

                JsonObject *chal = authz_http01(authz);
                if (!chal)
                        return acme_call_fail(c, PROVIDER_REJECTED,
                                              ACME_PROBLEM_PREFIX
                                              "unsupportedIdentifier: the ACME "
                                              "server offers no http-01 challenge for %s",
                                              authz_identifier(authz));
                const char *token = acme_object_string(chal, "token"),
                           *chal_url = acme_object_string(chal, "url"),
                           *chal_status = strempty(acme_object_string(chal, "status"));
                if (!token || !chal_url)
                        return acme_call_fail(c, PROVIDER_REJECTED,
                                              "ACME http-01 challenge without token or url");

                if (streq(chal_status, "pending")) {
                        r = challenge_publish(c, &ch, token);
                        if (r < 0)
                                return r;
                        _cleanup_(acme_response_done) AcmeResponse cresp = {0};
                        g_autoptr(JsonParser) cparser = NULL;
                        JsonObject *co;
                        r = acme_post_object(c, chal_url, "{}", "ACME challenge response", &cresp, &cparser,
                                             &co);
                        if (r < 0)
                                return r;
                        log_debug("ACME: answered http-01 for %s", authz_identifier(authz));
                } else if (streq(chal_status, "processing")) {
                        /* Answered before (a resumed order): the token must be served again. */
                        r = challenge_publish(c, &ch, token);
                        if (r < 0)
                                return r;
                }
                g_ptr_array_add(waiting, g_strdup(url));
        }

        for (guint i = 0; i < waiting->len; i++) {
                const char *url = waiting->pdata[i];
                uint64_t interval = POLL_MIN_USEC;
                for (;;) {
                        _cleanup_(acme_response_done) AcmeResponse resp = {0};
                        g_autoptr(JsonParser) parser = NULL;
                        JsonObject *authz;
                        int r = acme_post_object(c, url, NULL, "ACME authorization", &resp, &parser, &authz);
                        if (r < 0)
                                return r;
                        const char *status = strempty(acme_object_string(authz, "status"));
                        if (streq(status, "valid"))
                                break;
                        if (!streq(status, "pending"))
                                return fail_authz(c, authz, status);
                        if (acme_call_wait(c, MAX(acme_retry_after_usec(&resp, interval), POLL_MIN_USEC)) <
                            0) {
                                *ret_timed_out = true;
                                return -ETIMEDOUT;
                        }
                        interval = MIN(interval * 2, POLL_MAX_USEC);
                }
        }
        return 0;
}

/* ---- order ---- */

static bool is_ip_address(const char *s) {
        uint8_t buf[16];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static char *new_order_payload(const ProviderRequest *req) {
        g_autoptr(GPtrArray) names = g_ptr_array_new();

        if (!isempty(req->common_name))
                g_ptr_array_add(names, (char *) req->common_name);
        for (char *const *i = req->dns_names; i && *i; i++) {
                bool dup = false;
                for (guint k = 0; k < names->len; k++)
                        if (g_ascii_strcasecmp(names->pdata[k], *i) == 0)
                                dup = true;
                if (!dup && !isempty(*i))
                        g_ptr_array_add(names, *i);
        }
        if (names->len == 0 || names->len > IDENTIFIERS_MAX)
                return NULL;

        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "identifiers");
        json_builder_begin_array(b);
        for (guint k = 0; k < names->len; k++) {
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, is_ip_address(names->pdata[k]) ? "ip" : "dns");
                json_builder_set_member_name(b, "value");
                json_builder_add_string_value(b, names->pdata[k]);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        g_autoptr(JsonNode) node = json_builder_get_root(b);
        return acme_json_compact(node);
}

static int split_chain(AcmeCall *c, const GString *pem, X509_REQ *csr, ProviderResult *ret) {
        _cleanup_(BIO_free_allp) BIO *in = BIO_new_mem_buf(pem->str, (int) pem->len);
        _cleanup_(BIO_free_allp) BIO *leaf = BIO_new(BIO_s_mem());
        _cleanup_(BIO_free_allp) BIO *chain = BIO_new(BIO_s_mem());
        unsigned n = 0;

        if (!in || !leaf || !chain)
                return acme_call_fail(c, PROVIDER_UNREACHABLE, "Out of memory");

        for (;;) {
                _cleanup_(X509_freep) X509 *x = PEM_read_bio_X509(in, NULL, NULL, NULL);
                if (!x)
                        break;
                if (n == 0 && csr && EVP_PKEY_eq(X509_get0_pubkey(x), X509_REQ_get0_pubkey(csr)) != 1)
                        return acme_call_fail(c, PROVIDER_REJECTED,
                                              "The ACME server issued a certificate for "
                                              "another key than the request's");
                if (PEM_write_bio_X509(n == 0 ? leaf : chain, x) != 1)
                        return acme_call_fail(c, PROVIDER_UNREACHABLE, "Cannot encode the certificate");
                n++;
        }
        (void) openssl_last_error(); /* the loop ends on "no start line" */
        if (n == 0)
                return acme_call_fail(c, PROVIDER_REJECTED,
                                      "The ACME server's certificate download holds no "
                                      "PEM certificate");

        char *data;
        long len = BIO_get_mem_data(leaf, &data);
        ret->certificate_pem = g_strndup(data, (gsize) len);
        if (n > 1) {
                len = BIO_get_mem_data(chain, &data);
                ret->chain_pem = g_strndup(data, (gsize) len);
        }
        return 0;
}

/* Drive the order at order_url (whose current state is in resp/order) to a
 * downloaded certificate. */
static int run_order(AcmeProvider *a, AcmeCall *c, const ProviderRequest *req, const char *order_url,
                     ProviderResult *ret, bool *ret_timed_out) {
        bool authorized = false, finalized = false;
        uint64_t interval = POLL_MIN_USEC;

        for (;;) {
                _cleanup_(acme_response_done) AcmeResponse resp = {0};
                g_autoptr(JsonParser) parser = NULL;
                JsonObject *order;
                int r = acme_post_object(c, order_url, NULL, "ACME order", &resp, &parser, &order);
                if (r < 0)
                        return r;

                const char *status = strempty(acme_object_string(order, "status"));
                bool wait = false;

                if (streq(status, "pending") && !authorized) {
                        r = do_authorizations(a, c, order, ret_timed_out);
                        if (r < 0)
                                return r;
                        authorized = true;
                        continue;
                } else if (streq(status, "ready") && !finalized) {
                        const char *finalize = acme_object_string(order, "finalize");
                        if (!finalize)
                                return acme_call_fail(c, PROVIDER_REJECTED,
                                                      "ACME order without finalize URL");
                        if (!req->csr)
                                return acme_call_fail(c, PROVIDER_REJECTED, "The ACME provider needs a CSR");

                        uint8_t *der = NULL;
                        int len = i2d_X509_REQ(req->csr, &der);
                        if (len <= 0)
                                return acme_call_fail(c, PROVIDER_REJECTED, "Cannot encode the CSR");
                        g_autofree char *csr64 = base64url_encode(der, (size_t) len);
                        OPENSSL_free(der);
                        g_autofree char *payload = g_strdup_printf("{\"csr\":\"%s\"}", csr64);

                        _cleanup_(acme_response_done) AcmeResponse fresp = {0};
                        g_autoptr(JsonParser) fparser = NULL;
                        JsonObject *fo;
                        r = acme_post_object(c, finalize, payload, "ACME finalize", &fresp, &fparser, &fo);
                        if (r < 0)
                                return r;
                        finalized = true;
                        continue;
                } else if (streq(status, "valid")) {
                        const char *cert_url = acme_object_string(order, "certificate");
                        if (!cert_url)
                                return acme_call_fail(c, PROVIDER_REJECTED,
                                                      "Valid ACME order without certificate URL");

                        _cleanup_(acme_response_done) AcmeResponse cresp = {0};
                        r = acme_post(c, cert_url, true, NULL, "application/pem-certificate-chain", &cresp);
                        if (r < 0)
                                return r;
                        if (cresp.status != 200)
                                return acme_call_fail_response(c, &cresp, "ACME certificate download");
                        return split_chain(c, cresp.body, req->csr, ret);
                } else if (streq(status, "invalid")) {
                        JsonNode *e = json_object_get_member(order, "error");
                        if (e && JSON_NODE_HOLDS_OBJECT(e)) {
                                JsonObject *p = json_node_get_object(e);
                                const char *type = acme_object_string(p, "type"),
                                           *detail = acme_object_string(p, "detail");
                                if (type)
                                        return acme_call_fail(c, PROVIDER_REJECTED, "%s: %s", type,
                                                              strempty(detail));
                        }
                        return acme_call_fail(c, PROVIDER_REJECTED, "The ACME order became invalid");
                } else if (streq(status, "pending") || streq(status, "ready") || streq(status, "processing"))
                        wait = true;
                else
                        return acme_call_fail(c, PROVIDER_REJECTED, "ACME order in unknown state '%s'",
                                              status);

                if (wait) {
                        if (acme_call_wait(c, MAX(acme_retry_after_usec(&resp, interval), POLL_MIN_USEC)) <
                            0) {
                                *ret_timed_out = true;
                                return -ETIMEDOUT;
                        }
                        interval = MIN(interval * 2, POLL_MAX_USEC);
                }
        }
}

static int acme_issue(Provider *p, const ProviderRequest *req, ProviderResult *ret) {
        AcmeProvider *a = (AcmeProvider *) p;
        _cleanup_(acme_call_done) AcmeCall c = {0};
        g_autofree char *order_url = NULL;
        bool timed_out = false;
        int r;

        *ret = (ProviderResult){0};
        /* ACME identifiers are DNS names and IP addresses (RFC 8555, RFC 8738): a URI cannot be
         * ordered, and the server would only refuse the CSR after the challenges. */
        for (ssize_t i = -1; i < 0 || (req->dns_names && req->dns_names[i]); i++) {
                const char *name = i < 0 ? req->common_name : req->dns_names[i];
                if (!isempty(name) && san_type(name) == SAN_URI) {
                        ret->outcome = PROVIDER_REJECTED;
                        ret->error = g_strdup_printf("ACME certifies DNS names and IP addresses only, not the "
                                                     "URI '%s': use the Local PKI or an external CA for it",
                                                     name);
                        return 0;
                }
        }
        if (acme_call_init(&c, a->client, (uint64_t) a->timeout_sec * USEC_PER_SEC) < 0) {
                ret->outcome = PROVIDER_UNREACHABLE;
                ret->error = g_strdup("Cannot initialise libcurl");
                return 0;
        }

        r = acme_directory_ensure(&c);
        if (r >= 0)
                r = acme_account_ensure(&c);
        if (r >= 0 && req->cookie && g_str_has_prefix(req->cookie, "https://")) {
                /* Resume the order we left waiting rather than place a second one. */
                order_url = g_strdup(req->cookie);
        } else if (r >= 0) {
                g_autofree char *payload = new_order_payload(req);
                if (!payload)
                        r = acme_call_fail(&c, PROVIDER_REJECTED,
                                           ACME_PROBLEM_PREFIX "malformed: between 1 and %u "
                                                               "identifiers are needed",
                                           IDENTIFIERS_MAX);
                else {
                        _cleanup_(acme_response_done) AcmeResponse resp = {0};
                        r = acme_post(&c, acme_client_new_order_url(a->client), true, payload, NULL, &resp);
                        if (r >= 0 && resp.status != 201 && resp.status != 200)
                                r = acme_call_fail_response(&c, &resp, "ACME newOrder");
                        else if (r >= 0 && isempty(resp.location))
                                r = acme_call_fail(&c, PROVIDER_REJECTED,
                                                   "ACME newOrder answered without order URL");
                        else if (r >= 0)
                                order_url = g_strdup(resp.location);
                }
        }
        if (r >= 0) {
                log_debug("ACME: order %" PRIu64 " is %s", req->order_id, order_url);
                r = run_order(a, &c, req, order_url, ret, &timed_out);
        }

        if (r >= 0) {
                ret->outcome = PROVIDER_ISSUED;
                return 0;
        }

        g_clear_pointer(&ret->certificate_pem, g_free);
        g_clear_pointer(&ret->chain_pem, g_free);
        /* Once the order exists, come back to it rather than place another one:
         * both a deadline and a server gone away mid-order are worth a poll later. */
        if (order_url && (timed_out || (c.error && c.outcome == PROVIDER_UNREACHABLE))) {
                ret->outcome = PROVIDER_WAIT;
                ret->cookie = TAKE_PTR(order_url);
                ret->retry_after_usec = WAIT_RETRY_USEC;
                ret->error =
                        c.error ? TAKE_PTR(c.error)
                                : g_strdup_printf("ACME order not finished within %u s, will poll again",
                                                  a->timeout_sec);
                return 0;
        }
        ret->outcome = c.error ? c.outcome : PROVIDER_UNREACHABLE;
        ret->error = c.error ? TAKE_PTR(c.error) : g_strdup("ACME order timed out");
        return 0;
}

static int acme_revoke(Provider *p, X509 *cert, int reason, char **ret_error) {
        AcmeProvider *a = (AcmeProvider *) p;
        _cleanup_(acme_call_done) AcmeCall c = {0};
        int r;

        /* A revocation needs no polling: one request with its retries. */
        if (acme_call_init(&c, a->client,
                           (uint64_t) MIN(a->timeout_sec, REVOKE_TIMEOUT_SEC) * USEC_PER_SEC) < 0) {
                *ret_error = g_strdup("Cannot initialise libcurl");
                return -ENOMEM;
        }

        r = acme_directory_ensure(&c);
        if (r >= 0 && !acme_client_revoke_cert_url(a->client))
                r = acme_call_fail(&c, PROVIDER_REJECTED, "The ACME server does not support revocation");
        if (r >= 0)
                r = acme_account_ensure(&c);
        if (r >= 0) {
                uint8_t *der = NULL;
                int len = i2d_X509(cert, &der);
                if (len <= 0)
                        r = acme_call_fail(&c, PROVIDER_REJECTED, "Cannot encode the certificate");
                else {
                        g_autofree char *cert64 = base64url_encode(der, (size_t) len);
                        OPENSSL_free(der);
                        g_autofree char *payload =
                                g_strdup_printf("{\"certificate\":\"%s\",\"reason\":%d}", cert64, reason);
                        _cleanup_(acme_response_done) AcmeResponse resp = {0};
                        r = acme_post(&c, acme_client_revoke_cert_url(a->client), true, payload, NULL,
                                      &resp);
                        if (r >= 0 && resp.status != 200) {
                                g_autofree char *type = acme_problem_type(&resp);
                                r = acme_call_fail_response(&c, &resp, "ACME revokeCert");
                                if (streq_ptr(type, ACME_PROBLEM_PREFIX "alreadyRevoked"))
                                        r = -EALREADY;
                        }
                }
        }
        if (r < 0) {
                *ret_error = c.error ? TAKE_PTR(c.error) : g_strdup("ACME revocation failed");
                return r;
        }
        return 0;
}

static char *acme_identify(Provider *p) {
        AcmeProvider *a = (AcmeProvider *) p;
        return g_strdup_printf("ACME %s", acme_client_directory_url(a->client));
}

static void acme_free(Provider *p) {
        AcmeProvider *a = (AcmeProvider *) p;
        if (!a)
                return;

        acme_responder_free(a->responder);
        acme_client_free(a->client);
        g_free(a->webroot_path);
        g_free(a->parent.name);
        g_free(a);
}

static const ProviderOps acme_ops = {
        .order_type = "acme",
        .needs_csr = true,
        .issue = acme_issue,
        .revoke = acme_revoke,
        .identify = acme_identify,
        .free = acme_free,
};

unsigned provider_acme_bad_nonce_retries(Provider *p) {
        return acme_client_bad_nonce_retries(((AcmeProvider *) p)->client);
}

char *provider_acme_account_url(Provider *p) {
        return acme_client_account_url(((AcmeProvider *) p)->client);
}

/* ---- account key ---- */

static bool key_is_p256(EVP_PKEY *k) {
        char group[64];
        size_t len = 0;
        return EVP_PKEY_is_a(k, "EC") &&
               EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) ==
                       1 &&
               streq(group, "prime256v1");
}

static int account_key_generate(const char *path, const MasterKey *mk, EVP_PKEY **ret, char **ret_error) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        int r = key_generate(KEY_ALGORITHM_EC_256, &k);
        if (r < 0) {
                *ret_error = g_strdup_printf("Cannot generate the ACME account key: %s", strerror(-r));
                return r;
        }
        if (path) {
                uint8_t *sealed = NULL;
                size_t len = 0;
                r = key_seal(mk, k, &sealed, &len);
                if (r < 0) {
                        *ret_error = g_strdup_printf("Cannot seal the ACME account key: %s", strerror(-r));
                        return r;
                }
                r = write_file_atomic(path, sealed, len, 0600);
                OPENSSL_cleanse(sealed, len);
                free(sealed);
                if (r < 0) {
                        *ret_error = g_strdup_printf("Cannot write the ACME account key %s: %s", path,
                                                     strerror(-r));
                        return r;
                }
                log_info("ACME: generated a new account key in %s", path);
        }
        *ret = TAKE_PTR(k);
        return 0;
}

static int account_key_load(const char *path, const MasterKey *mk, EVP_PKEY **ret, char **ret_error) {
        if (!path)
                return account_key_generate(NULL, mk, ret, ret_error);

        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        return account_key_generate(path, mk, ret, ret_error);
                int e = errno;
                *ret_error = g_strdup_printf("Cannot open the ACME account key %s: %s", path, strerror(e));
                return -e;
        }

        uint8_t *buf = g_malloc(ACCOUNT_KEY_FILE_MAX);
        size_t len = 0;
        int r = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, ACCOUNT_KEY_FILE_MAX - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len == ACCOUNT_KEY_FILE_MAX) {
                        r = -EFBIG;
                        break;
                }
        }
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        if (r >= 0)
                r = key_unseal(mk, buf, len, &k);
        OPENSSL_cleanse(buf, ACCOUNT_KEY_FILE_MAX);
        g_free(buf);
        if (r < 0) {
                *ret_error = g_strdup_printf("Cannot load the ACME account key %s: %s", path, strerror(-r));
                return r;
        }
        if (!key_is_p256(k)) {
                *ret_error = g_strdup_printf("The ACME account key %s is not a P-256 key", path);
                return -EBADMSG;
        }
        *ret = TAKE_PTR(k);
        return 0;
}

int provider_acme_new(const AcmeSettings *s, Provider **ret, char **ret_error) {
        int r;

        if (!s || isempty(s->directory_url) || !g_str_has_prefix(s->directory_url, "https://")) {
                *ret_error = g_strdup_printf("ACME DirectoryURL= must be an https:// URL, not '%s'",
                                             s ? strempty(s->directory_url) : "");
                return -EINVAL;
        }
        if (!!s->eab_key_id != !!s->eab_hmac_key) {
                *ret_error = g_strdup("ACME EABKeyID= and EABHMACKey= must be set together");
                return -EINVAL;
        }
        if (s->account_key_path && !s->master_key) {
                *ret_error = g_strdup("ACME account key path given without a master key");
                return -EINVAL;
        }
        if (s->http_port > 65535) {
                *ret_error = g_strdup_printf("ACME HTTPChallengePort=%u is not a port", s->http_port);
                return -EINVAL;
        }
        if (s->email && (strchr(s->email, '@') == NULL || strpbrk(s->email, " \t\r\n,<>") != NULL)) {
                *ret_error = g_strdup_printf("ACME Email='%s' is not an e-mail address", s->email);
                return -EINVAL;
        }

        if (s->eab_hmac_key) {
                /* Checked before a first start writes an account key for nothing. */
                uint8_t *mac = NULL;
                size_t mac_len = 0;
                r = base64url_decode(s->eab_hmac_key, &mac, &mac_len);
                if (mac) {
                        OPENSSL_cleanse(mac, mac_len);
                        g_free(mac);
                }
                if (r < 0 || mac_len == 0) {
                        *ret_error = g_strdup("ACME EABHMACKey= is not base64url");
                        return -EINVAL;
                }
        }

        _cleanup_(EVP_PKEY_freep) EVP_PKEY *account_key = NULL;
        r = account_key_load(s->account_key_path, s->master_key, &account_key, ret_error);
        if (r < 0)
                return r;

        _cleanup_(acme_client_freep) AcmeClient *client = NULL;
        r = acme_client_new(s->directory_url, s->ca_bundle, s->email, s->eab_key_id, s->eab_hmac_key,
                            account_key, &client, ret_error);
        if (r < 0)
                return r;

        AcmeProvider *a = g_new0(AcmeProvider, 1);
        a->parent.ops = &acme_ops;
        a->parent.name = g_strdup("acme");
        a->client = TAKE_PTR(client);
        a->webroot_path = isempty(s->webroot_path) ? NULL : g_strdup(s->webroot_path);
        a->timeout_sec = s->timeout_sec == 0 ? DEFAULT_TIMEOUT_SEC : s->timeout_sec;
        a->responder = acme_responder_new(s->http_port);

        *ret = &a->parent;
        return 0;
}
