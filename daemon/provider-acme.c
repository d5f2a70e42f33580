/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The ACME provider: an RFC 8555 client. issue() runs on a worker thread and
 * walks one order from newOrder to the downloaded chain, blocking on the
 * network with bounded timeouts; several issue() calls may run at once, so the
 * shared state (directory, account URL, spare nonce) sits behind a mutex. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "config-build.h"
#include "acme-jws.h"
#include "acme-responder.h"
#include "log.h"
#include "provider-acme.h"

/* After macro.h: GLib redefines MIN() and MAX() the same way. */
#include <glib.h>
#include <json-glib/json-glib.h>

#define PROBLEM_PREFIX "urn:ietf:params:acme:error:"
#define RESPONSE_MAX (1024U * 1024U)          /* a certificate chain is a few KiB */
#define ACCOUNT_KEY_FILE_MAX (64U * 1024U)
#define CONNECT_TIMEOUT_USEC (10U * USEC_PER_SEC)
#define REQUEST_TIMEOUT_USEC (30U * USEC_PER_SEC)
#define DEFAULT_TIMEOUT_SEC 300U
#define TRANSPORT_ATTEMPTS 3U                 /* tries per request on connection failures and 5xx */
/* badNonce is retryable by definition (RFC 8555 6.5) and some servers reject a
 * fixed share of good nonces, so allow more retries than for other failures; each
 * one is a quick round trip and the order deadline still bounds the total. */
#define BAD_NONCE_RETRIES 15U
#define POLL_MIN_USEC (100U * USEC_PER_MSEC)
#define POLL_MAX_USEC (10U * USEC_PER_SEC)
#define WAIT_RETRY_USEC (60U * USEC_PER_SEC)
#define IDENTIFIERS_MAX 100U
#define ERROR_MAX 1024U                       /* bytes of an error message quoting the server */

typedef struct AcmeProvider {
        Provider parent;

        char *directory_url;
        char *email;
        char *ca_bundle;
        char *webroot_path;
        char *eab_key_id;
        uint8_t *eab_hmac_key;
        size_t eab_hmac_key_len;
        unsigned timeout_sec;

        EVP_PKEY *account_key;
        char *jwk;               /* the account key's public JWK in RFC 7638 canonical form */
        char *thumbprint;        /* base64url(SHA-256(jwk)) */

        AcmeResponder *responder;

        /* Held while looking up or registering the account, so that concurrent first
         * orders do not all register. Never taken while holding lock. */
        pthread_mutex_t account_lock;

        pthread_mutex_t lock;    /* protects everything below */
        bool have_directory;
        char *url_new_nonce, *url_new_account, *url_new_order, *url_revoke_cert;
        bool eab_required;
        char *kid;               /* the account URL */
        char *nonce;             /* one spare Replay-Nonce */
        unsigned bad_nonce_retries;
} AcmeProvider;

/* One issue() or revoke() invocation. */
typedef struct AcmeCall {
        AcmeProvider *a;
        CURL *curl;
        uint64_t deadline;       /* CLOCK_MONOTONIC µs */
        char *kid;
        ProviderOutcome outcome; /* of the first failure */
        char *error;
} AcmeCall;

typedef struct AcmeResponse {
        long status;
        GString *body;
        char *nonce;
        char *location;
        char *retry_after;
        char *content_type;
} AcmeResponse;

static uint64_t monotonic_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / USEC_PER_SEC),
                               .tv_nsec = (long) (usec % USEC_PER_SEC) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ---- call context and errors ---- */

/* Errors quote the server (problem details, URLs) and end up in D-Bus
 * properties and the journal: keep them valid UTF-8, on one line, and short. */
static char *text_sanitize(const char *s, size_t max) {
        char *t = g_utf8_make_valid(s, -1);

        for (char *p = t; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        if (strlen(t) > max) {
                const char *cut = g_utf8_find_prev_char(t, t + max);
                size_t keep = cut ? (size_t) (cut - t) : 0;
                t[keep] = 0;
                char *u = g_strconcat(t, "…", NULL);
                g_free(t);
                t = u;
        }
        return t;
}

static int call_fail(AcmeCall *c, ProviderOutcome outcome, const char *format, ...) _printf_(3, 4);
static int call_fail(AcmeCall *c, ProviderOutcome outcome, const char *format, ...) {
        if (!c->error) {
                va_list ap;
                va_start(ap, format);
                g_autofree char *raw = g_strdup_vprintf(format, ap);
                va_end(ap);
                c->error = text_sanitize(raw, ERROR_MAX);
                c->outcome = outcome;
        }
        return outcome == PROVIDER_UNREACHABLE ? -EHOSTUNREACH : -EPROTO;
}

static void response_done(AcmeResponse *r) {
        if (r->body)
                g_string_free(r->body, TRUE);
        g_free(r->nonce);
        g_free(r->location);
        g_free(r->retry_after);
        g_free(r->content_type);
        *r = (AcmeResponse){ 0 };
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        AcmeResponse *r = userdata;
        size_t n = size * nmemb;

        if (r->body->len + n > RESPONSE_MAX)
                return 0; /* curl reports CURLE_WRITE_ERROR */
        g_string_append_len(r->body, ptr, (gssize) n);
        return n;
}

static void header_take(char **field, const char *value, size_t len) {
        g_free(*field);
        *field = g_strndup(value, len);
}

static size_t header_cb(char *buffer, size_t size, size_t nitems, void *userdata) {
        AcmeResponse *r = userdata;
        size_t n = size * nitems;

        /* A new status line (after "100 Continue", say) starts a new set of headers. */
        if (n >= 5 && memcmp(buffer, "HTTP/", 5) == 0) {
                g_clear_pointer(&r->nonce, g_free);
                g_clear_pointer(&r->location, g_free);
                g_clear_pointer(&r->retry_after, g_free);
                g_clear_pointer(&r->content_type, g_free);
                return n;
        }

        const char *colon = memchr(buffer, ':', n);
        if (!colon)
                return n;
        size_t name_len = (size_t) (colon - buffer);
        const char *v = colon + 1, *end = buffer + n;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        size_t vlen = (size_t) (end - v);
        if (vlen > 4096)
                return n;

#define HEADER_IS(s) (name_len == STRLEN(s) && g_ascii_strncasecmp(buffer, s, name_len) == 0)
        if (HEADER_IS("Replay-Nonce"))
                header_take(&r->nonce, v, vlen);
        else if (HEADER_IS("Location"))
                header_take(&r->location, v, vlen);
        else if (HEADER_IS("Retry-After"))
                header_take(&r->retry_after, v, vlen);
        else if (HEADER_IS("Content-Type"))
                header_take(&r->content_type, v, vlen);
#undef HEADER_IS
        return n;
}

/* One HTTP exchange. body NULL: GET (or HEAD when head); else a JOSE POST.
 * Returns 0 with any HTTP answer, or a negative errno on transport failure with
 * the reason in ret_error. */
static int http_once(AcmeCall *c, const char *url, const char *body, bool head, const char *accept,
                     AcmeResponse *resp, char **ret_error) {
        uint64_t now = monotonic_usec();
        if (now >= c->deadline) {
                *ret_error = g_strdup("deadline reached");
                return -ETIMEDOUT;
        }
        uint64_t left = c->deadline - now;

        response_done(resp);
        resp->body = g_string_new(NULL);

        struct curl_slist *headers = NULL;
        g_autofree char *accept_header = g_strdup_printf("Accept: %s", accept ? accept : "application/json");
        headers = curl_slist_append(headers, accept_header);
        if (body)
                headers = curl_slist_append(headers, "Content-Type: application/jose+json");

        CURL *h = c->curl;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) (MIN(left, CONNECT_TIMEOUT_USEC) / USEC_PER_MSEC + 1));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) (MIN(left, REQUEST_TIMEOUT_USEC) / USEC_PER_MSEC + 1));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
        if (body) {
                curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
                curl_easy_setopt(h, CURLOPT_POST, 1L);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        } else if (head) {
                curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else {
                curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
                curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        }

        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode cc = curl_easy_perform(h);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(headers);

        if (cc != CURLE_OK) {
                *ret_error = g_strdup_printf("%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
                return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        return 0;
}

static uint64_t retry_after_usec(const AcmeResponse *resp, uint64_t fallback) {
        if (!resp->retry_after)
                return fallback;

        char *end;
        errno = 0;
        unsigned long long s = strtoull(resp->retry_after, &end, 10);
        if (errno != 0 || end == resp->retry_after || *end != 0)
                return fallback; /* an HTTP-date: not worth parsing, poll at our own pace */
        return MIN((uint64_t) s * USEC_PER_SEC, (uint64_t) POLL_MAX_USEC * 6);
}

/* Sleep before the next attempt, unless that would pass the deadline. */
static int call_wait(AcmeCall *c, uint64_t usec) {
        uint64_t now = monotonic_usec();
        if (now + usec >= c->deadline)
                return -ETIMEDOUT;
        sleep_usec(usec);
        return 0;
}

static bool transient_status(long status) {
        return status >= 500 || status == 429;
}

static char *json_node_to_compact(JsonNode *node) {
        g_autoptr(JsonGenerator) g = json_generator_new();
        json_generator_set_root(g, node);
        return json_generator_to_data(g, NULL);
}

static JsonNode *parse_node(const char *json) {
        g_autoptr(JsonParser) parser = json_parser_new();
        if (!json_parser_load_from_data(parser, json, -1, NULL))
                return NULL;
        return json_node_copy(json_parser_get_root(parser));
}

static JsonObject *parse_object(const GString *body, JsonParser **ret_parser) {
        g_autoptr(JsonParser) parser = json_parser_new();

        if (!body || !json_parser_load_from_data(parser, body->str, (gssize) body->len, NULL))
                return NULL;
        JsonNode *root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return NULL;
        *ret_parser = TAKE_PTR(parser);
        return json_node_get_object(root);
}

static const char *object_string(JsonObject *o, const char *member) {
        JsonNode *n = o ? json_object_get_member(o, member) : NULL;
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(n);
}

/* The problem type of an error response (RFC 7807), or NULL. */
static char *problem_type(const AcmeResponse *resp) {
        g_autoptr(JsonParser) parser = NULL;
        JsonObject *o = parse_object(resp->body, &parser);
        return g_strdup(object_string(o, "type"));
}

/* Record an error response: a readable "type: detail", permanent unless the
 * server says it is temporary. */
static int call_fail_response(AcmeCall *c, const AcmeResponse *resp, const char *what) {
        g_autoptr(JsonParser) parser = NULL;
        JsonObject *o = parse_object(resp->body, &parser);
        const char *type = object_string(o, "type"), *detail = object_string(o, "detail");

        if (!type)
                return call_fail(c, transient_status(resp->status) ? PROVIDER_UNREACHABLE : PROVIDER_REJECTED,
                                 "%s: HTTP %ld from the ACME server", what, resp->status);

        /* Sub-problems name the identifier that failed; the first one is enough for a message. */
        g_autofree char *sub = NULL;
        JsonNode *subs = json_object_get_member(o, "subproblems");
        if (subs && JSON_NODE_HOLDS_ARRAY(subs) && json_array_get_length(json_node_get_array(subs)) > 0) {
                JsonNode *first = json_array_get_element(json_node_get_array(subs), 0);
                if (JSON_NODE_HOLDS_OBJECT(first)) {
                        const char *sd = object_string(json_node_get_object(first), "detail");
                        if (sd)
                                sub = g_strdup_printf(" (%s)", sd);
                }
        }

        bool transient = streq(type, PROBLEM_PREFIX "serverInternal") ||
                         streq(type, PROBLEM_PREFIX "rateLimited") || transient_status(resp->status);
        return call_fail(c, transient ? PROVIDER_UNREACHABLE : PROVIDER_REJECTED, "%s: %s%s", type,
                         detail ? detail : what, strempty(sub));
}

/* GET with retries on transport failures and 5xx. */
static int acme_get(AcmeCall *c, const char *url, AcmeResponse *resp) {
        for (unsigned attempt = 1;; attempt++) {
                g_autofree char *err = NULL;
                int r = http_once(c, url, NULL, false, NULL, resp, &err);
                if (r >= 0 && !transient_status(resp->status))
                        return 0;
                if (attempt >= TRANSPORT_ATTEMPTS || call_wait(c, attempt * 500 * USEC_PER_MSEC) < 0) {
                        if (r < 0)
                                return call_fail(c, PROVIDER_UNREACHABLE, "ACME server unreachable: %s", err);
                        return call_fail_response(c, resp, url);
                }
                log_debug("ACME: retrying GET %s: %s", url, r < 0 ? err : "server error");
        }
}

/* ---- directory, nonces ---- */

static int ensure_directory(AcmeCall *c) {
        AcmeProvider *a = c->a;

        pthread_mutex_lock(&a->lock);
        bool have = a->have_directory;
        pthread_mutex_unlock(&a->lock);
        if (have)
                return 0;

        _cleanup_(response_done) AcmeResponse resp = { 0 };
        int r = acme_get(c, a->directory_url, &resp);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return call_fail_response(c, &resp, "ACME directory");

        g_autoptr(JsonParser) parser = NULL;
        JsonObject *o = parse_object(resp.body, &parser);
        const char *nn = object_string(o, "newNonce"), *na = object_string(o, "newAccount"),
                   *no = object_string(o, "newOrder"), *rc = object_string(o, "revokeCert");
        if (!nn || !na || !no)
                return call_fail(c, PROVIDER_REJECTED, "%s is not an ACME directory (newNonce, newAccount or "
                                 "newOrder missing)", a->directory_url);

        bool eab = false;
        JsonNode *meta = json_object_get_member(o, "meta");
        if (meta && JSON_NODE_HOLDS_OBJECT(meta)) {
                JsonNode *n = json_object_get_member(json_node_get_object(meta), "externalAccountRequired");
                eab = n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
                      json_node_get_boolean(n);
        }

        pthread_mutex_lock(&a->lock);
        if (!a->have_directory) {
                a->url_new_nonce = g_strdup(nn);
                a->url_new_account = g_strdup(na);
                a->url_new_order = g_strdup(no);
                a->url_revoke_cert = g_strdup(rc);
                a->eab_required = eab;
                a->have_directory = true;
        }
        pthread_mutex_unlock(&a->lock);
        return 0;
}

static void nonce_put(AcmeProvider *a, const char *nonce) {
        if (isempty(nonce))
                return;
        pthread_mutex_lock(&a->lock);
        g_free(a->nonce);
        a->nonce = g_strdup(nonce);
        pthread_mutex_unlock(&a->lock);
}

static int nonce_get(AcmeCall *c, char **ret) {
        AcmeProvider *a = c->a;

        pthread_mutex_lock(&a->lock);
        char *n = TAKE_PTR(a->nonce);
        pthread_mutex_unlock(&a->lock);
        if (n) {
                *ret = n;
                return 0;
        }

        for (unsigned attempt = 1;; attempt++) {
                _cleanup_(response_done) AcmeResponse resp = { 0 };
                g_autofree char *err = NULL;
                int r = http_once(c, a->url_new_nonce, NULL, true, NULL, &resp, &err);
                if (r >= 0 && resp.nonce && resp.status < 300) {
                        *ret = TAKE_PTR(resp.nonce);
                        return 0;
                }
                if (attempt >= TRANSPORT_ATTEMPTS || call_wait(c, attempt * 500 * USEC_PER_MSEC) < 0) {
                        if (r < 0)
                                return call_fail(c, PROVIDER_UNREACHABLE, "ACME server unreachable: %s", err);
                        return call_fail(c, transient_status(resp.status) ? PROVIDER_UNREACHABLE : PROVIDER_REJECTED,
                                         "ACME newNonce: HTTP %ld without Replay-Nonce", resp.status);
                }
        }
}

static int ensure_account(AcmeCall *c);

static void account_forget(AcmeProvider *a, const char *kid) {
        pthread_mutex_lock(&a->lock);
        if (streq_ptr(a->kid, kid))
                g_clear_pointer(&a->kid, g_free);
        pthread_mutex_unlock(&a->lock);
}

/* A signed POST: fresh nonce, retried on badNonce with the nonce the error
 * carried, and on transport failures. Signed with the account URL (kid) when
 * use_kid, else with the embedded JWK (newAccount). payload NULL is POST-as-GET. */
static int acme_post(AcmeCall *c, const char *url, bool use_kid, const char *payload, const char *accept,
                     AcmeResponse *resp) {
        AcmeProvider *a = c->a;
        unsigned bad_nonces = 0, transport_failures = 0;
        bool account_refreshed = false;

        for (;;) {
                g_autofree char *nonce = NULL, *jws = NULL, *err = NULL;
                int r = nonce_get(c, &nonce);
                if (r < 0)
                        return r;
                r = acme_jws_sign(a->account_key, a->jwk, use_kid ? c->kid : NULL, nonce, url, payload, &jws);
                if (r < 0)
                        return call_fail(c, PROVIDER_UNREACHABLE, "Cannot sign the ACME request");

                r = http_once(c, url, jws, false, accept, resp, &err);
                if (r >= 0)
                        nonce_put(a, resp->nonce);

                if (r >= 0 && resp->status >= 400) {
                        g_autofree char *type = problem_type(resp);
                        if (streq_ptr(type, PROBLEM_PREFIX "badNonce") && bad_nonces < BAD_NONCE_RETRIES) {
                                bad_nonces++;
                                pthread_mutex_lock(&a->lock);
                                a->bad_nonce_retries++;
                                pthread_mutex_unlock(&a->lock);
                                log_debug("ACME: %s answered badNonce, retrying with a fresh nonce", url);
                                continue;
                        }
                        /* The server forgot the account (a reset test CA, a deactivation):
                         * look it up or register again, once. */
                        if (use_kid && streq_ptr(type, PROBLEM_PREFIX "accountDoesNotExist") &&
                            !account_refreshed) {
                                account_refreshed = true;
                                account_forget(a, c->kid);
                                g_clear_pointer(&c->kid, g_free);
                                r = ensure_account(c);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                }

                if (r >= 0 && !transient_status(resp->status))
                        return 0;

                transport_failures++;
                if (transport_failures >= TRANSPORT_ATTEMPTS ||
                    call_wait(c, transport_failures * 500 * USEC_PER_MSEC) < 0) {
                        if (r < 0)
                                return call_fail(c, PROVIDER_UNREACHABLE, "ACME server unreachable: %s", err);
                        return call_fail_response(c, resp, url);
                }
                log_debug("ACME: retrying POST %s: %s", url, r < 0 ? err : "server error");
        }
}

/* POST that expects a JSON object back with one of the given statuses. */
static int acme_post_object(AcmeCall *c, const char *url, const char *payload, const char *what,
                            AcmeResponse *resp, JsonParser **ret_parser, JsonObject **ret) {
        int r = acme_post(c, url, true, payload, NULL, resp);
        if (r < 0)
                return r;
        if (resp->status != 200 && resp->status != 201)
                return call_fail_response(c, resp, what);
        JsonObject *o = parse_object(resp->body, ret_parser);
        if (!o)
                return call_fail(c, PROVIDER_REJECTED, "%s: the ACME server's answer is not a JSON object", what);
        *ret = o;
        return 0;
}

/* ---- account ---- */

static int account_lookup_or_register(AcmeCall *c);

static int ensure_account(AcmeCall *c) {
        AcmeProvider *a = c->a;

        pthread_mutex_lock(&a->account_lock);
        pthread_mutex_lock(&a->lock);
        c->kid = g_strdup(a->kid);
        pthread_mutex_unlock(&a->lock);
        int r = c->kid ? 0 : account_lookup_or_register(c);
        pthread_mutex_unlock(&a->account_lock);
        return r;
}

static int account_lookup_or_register(AcmeCall *c) {
        AcmeProvider *a = c->a;

        /* After a restart the key is the same, so the account exists: find it first,
         * so that we never register twice. */
        _cleanup_(response_done) AcmeResponse resp = { 0 };
        int r = acme_post(c, a->url_new_account, false, "{\"onlyReturnExisting\":true}", NULL, &resp);
        if (r < 0)
                return r;

        if (resp.status >= 400) {
                g_autofree char *type = problem_type(&resp);
                if (!streq_ptr(type, PROBLEM_PREFIX "accountDoesNotExist"))
                        return call_fail_response(c, &resp, "ACME account lookup");

                if (a->eab_required && !a->eab_key_id)
                        return call_fail(c, PROVIDER_REJECTED, PROBLEM_PREFIX "externalAccountRequired: the ACME "
                                         "server requires External Account Binding; set EABKeyID= and EABHMACKey=");

                g_autoptr(JsonBuilder) b = json_builder_new();
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "termsOfServiceAgreed");
                json_builder_add_boolean_value(b, TRUE);
                if (!isempty(a->email)) {
                        g_autofree char *mailto = g_strconcat("mailto:", a->email, NULL);
                        json_builder_set_member_name(b, "contact");
                        json_builder_begin_array(b);
                        json_builder_add_string_value(b, mailto);
                        json_builder_end_array(b);
                }
                if (a->eab_key_id) {
                        g_autofree char *eab = acme_eab_sign(a->eab_key_id, a->eab_hmac_key, a->eab_hmac_key_len,
                                                             a->jwk, a->url_new_account);
                        JsonNode *eab_node = eab ? parse_node(eab) : NULL;
                        if (!eab_node)
                                return call_fail(c, PROVIDER_REJECTED, "Cannot compute the EAB MAC");
                        json_builder_set_member_name(b, "externalAccountBinding");
                        json_builder_add_value(b, eab_node);
                }
                json_builder_end_object(b);
                g_autoptr(JsonNode) node = json_builder_get_root(b);
                g_autofree char *payload = json_node_to_compact(node);

                r = acme_post(c, a->url_new_account, false, payload, NULL, &resp);
                if (r < 0)
                        return r;
                if (resp.status != 200 && resp.status != 201)
                        return call_fail_response(c, &resp, "ACME account creation");
                if (resp.status == 201)
                        log_info("ACME: registered a new account at %s", a->directory_url);
        }

        if (isempty(resp.location))
                return call_fail(c, PROVIDER_REJECTED, "ACME newAccount answered without the account URL");

        pthread_mutex_lock(&a->lock);
        a->kid = g_strdup(resp.location);
        pthread_mutex_unlock(&a->lock);
        c->kid = g_strdup(resp.location);
        return 0;
}

/* ---- http-01 ---- */

typedef struct Published {
        char *token;
        char *path;              /* webroot file, or NULL when served by the responder */
} Published;

typedef struct Challenges {
        AcmeProvider *a;
        GArray *published;       /* Published */
        bool responder_acquired;
} Challenges;

static void challenges_done(Challenges *ch) {
        if (!ch->published)
                return;
        for (guint i = 0; i < ch->published->len; i++) {
                Published *p = &g_array_index(ch->published, Published, i);
                if (p->path) {
                        if (unlink(p->path) < 0 && errno != ENOENT)
                                log_warning_errno(errno, "Cannot remove %s, ignoring: %s", strerror(errno), p->path);
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

static int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        g_autofree char *tmp = g_strdup_printf("%s.tmp.%ld", path, (long) gettid());
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        const uint8_t *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = -errno;
                        (void) unlink(tmp);
                        return e;
                }
                p += n;
                len -= (size_t) n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                int e = -errno;
                (void) unlink(tmp);
                return e;
        }
        return 0;
}

static int challenge_publish(AcmeCall *c, Challenges *ch, const char *token) {
        AcmeProvider *a = c->a;

        if (!acme_token_is_valid(token))
                return call_fail(c, PROVIDER_REJECTED, "The ACME server sent an invalid http-01 token");

        g_autofree char *keyauth = g_strconcat(token, ".", a->thumbprint, NULL);
        Published pub = { .token = g_strdup(token) };

        if (a->webroot_path) {
                g_autofree char *dir = g_build_filename(a->webroot_path, ".well-known", "acme-challenge", NULL);
                int r = mkdir_p(dir, 0755);
                if (r < 0) {
                        g_free(pub.token);
                        return call_fail(c, PROVIDER_UNREACHABLE, "Cannot create %s: %s", dir, strerror(-r));
                }
                pub.path = g_build_filename(dir, token, NULL);
                r = write_file_atomic(pub.path, keyauth, strlen(keyauth), 0644);
                if (r < 0) {
                        int e = call_fail(c, PROVIDER_UNREACHABLE, "Cannot write %s: %s", pub.path, strerror(-r));
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
                                return call_fail(c, PROVIDER_UNREACHABLE, "%s", err);
                        }
                        ch->responder_acquired = true;
                }
                if (acme_responder_add(a->responder, token, keyauth) < 0) {
                        g_free(pub.token);
                        return call_fail(c, PROVIDER_REJECTED, "The ACME server sent an invalid http-01 token");
                }
        }
        g_array_append_val(ch->published, pub);
        return 0;
}

static const char *authz_identifier(JsonObject *authz) {
        JsonNode *n = json_object_get_member(authz, "identifier");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return "?";
        const char *v = object_string(json_node_get_object(n), "value");
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
                if (JSON_NODE_HOLDS_OBJECT(e) && streq_ptr(object_string(json_node_get_object(e), "type"), "http-01"))
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
                const char *type = object_string(p, "type"), *detail = object_string(p, "detail");
                return call_fail(c, PROVIDER_REJECTED, "%s: %s (authorization for %s)",
                                 type ? type : PROBLEM_PREFIX "unauthorized", detail ? detail : "validation failed",
                                 authz_identifier(authz));
        }
        return call_fail(c, PROVIDER_REJECTED, PROBLEM_PREFIX "unauthorized: authorization for %s is %s",
                         authz_identifier(authz), status);
}

/* Bring every authorization of the order to "valid": answer the pending http-01
 * challenges, then poll. */
static int do_authorizations(AcmeCall *c, JsonObject *order, bool *ret_timed_out) {
        JsonNode *n = json_object_get_member(order, "authorizations");
        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return call_fail(c, PROVIDER_REJECTED, "ACME order without authorizations");
        JsonArray *urls = json_node_get_array(n);
        guint n_authz = json_array_get_length(urls);
        if (n_authz > IDENTIFIERS_MAX)
                return call_fail(c, PROVIDER_REJECTED, "ACME order with %u authorizations", n_authz);

        _cleanup_(challenges_done) Challenges ch = { .a = c->a, .published = g_array_new(FALSE, TRUE,
                                                                                          sizeof(Published)) };
        g_autoptr(GPtrArray) waiting = g_ptr_array_new_with_free_func(g_free);

        for (guint i = 0; i < n_authz; i++) {
                const char *url = json_array_get_string_element(urls, i);
                if (!url)
                        return call_fail(c, PROVIDER_REJECTED, "ACME order with a malformed authorization URL");

                _cleanup_(response_done) AcmeResponse resp = { 0 };
                g_autoptr(JsonParser) parser = NULL;
                JsonObject *authz;
                int r = acme_post_object(c, url, NULL, "ACME authorization", &resp, &parser, &authz);
                if (r < 0)
                        return r;

                const char *status = strempty(object_string(authz, "status"));
                if (streq(status, "valid"))
                        continue;
                if (!streq(status, "pending"))
                        return fail_authz(c, authz, status);

                JsonObject *chal = authz_http01(authz);
                if (!chal)
                        return call_fail(c, PROVIDER_REJECTED, PROBLEM_PREFIX "unsupportedIdentifier: the ACME "
                                         "server offers no http-01 challenge for %s", authz_identifier(authz));
                const char *token = object_string(chal, "token"), *chal_url = object_string(chal, "url"),
                           *chal_status = strempty(object_string(chal, "status"));
                if (!token || !chal_url)
                        return call_fail(c, PROVIDER_REJECTED, "ACME http-01 challenge without token or url");

                if (streq(chal_status, "pending")) {
                        r = challenge_publish(c, &ch, token);
                        if (r < 0)
                                return r;
                        _cleanup_(response_done) AcmeResponse cresp = { 0 };
                        g_autoptr(JsonParser) cparser = NULL;
                        JsonObject *co;
                        r = acme_post_object(c, chal_url, "{}", "ACME challenge response", &cresp, &cparser, &co);
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
                        _cleanup_(response_done) AcmeResponse resp = { 0 };
                        g_autoptr(JsonParser) parser = NULL;
                        JsonObject *authz;
                        int r = acme_post_object(c, url, NULL, "ACME authorization", &resp, &parser, &authz);
                        if (r < 0)
                                return r;
                        const char *status = strempty(object_string(authz, "status"));
                        if (streq(status, "valid"))
                                break;
                        if (!streq(status, "pending"))
                                return fail_authz(c, authz, status);
                        if (call_wait(c, MAX(retry_after_usec(&resp, interval), POLL_MIN_USEC)) < 0) {
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
        return json_node_to_compact(node);
}

static int split_chain(AcmeCall *c, const GString *pem, X509_REQ *csr, ProviderResult *ret) {
        _cleanup_(BIO_free_allp) BIO *in = BIO_new_mem_buf(pem->str, (int) pem->len);
        _cleanup_(BIO_free_allp) BIO *leaf = BIO_new(BIO_s_mem());
        _cleanup_(BIO_free_allp) BIO *chain = BIO_new(BIO_s_mem());
        unsigned n = 0;

        if (!in || !leaf || !chain)
                return call_fail(c, PROVIDER_UNREACHABLE, "Out of memory");

        for (;;) {
                _cleanup_(X509_freep) X509 *x = PEM_read_bio_X509(in, NULL, NULL, NULL);
                if (!x)
                        break;
                if (n == 0 && csr && EVP_PKEY_eq(X509_get0_pubkey(x), X509_REQ_get0_pubkey(csr)) != 1)
                        return call_fail(c, PROVIDER_REJECTED, "The ACME server issued a certificate for "
                                         "another key than the request's");
                if (PEM_write_bio_X509(n == 0 ? leaf : chain, x) != 1)
                        return call_fail(c, PROVIDER_UNREACHABLE, "Cannot encode the certificate");
                n++;
        }
        (void) openssl_last_error(); /* the loop ends on "no start line" */
        if (n == 0)
                return call_fail(c, PROVIDER_REJECTED, "The ACME server's certificate download holds no "
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
static int run_order(AcmeCall *c, const ProviderRequest *req, const char *order_url, ProviderResult *ret,
                     bool *ret_timed_out) {
        bool authorized = false, finalized = false;
        uint64_t interval = POLL_MIN_USEC;

        for (;;) {
                _cleanup_(response_done) AcmeResponse resp = { 0 };
                g_autoptr(JsonParser) parser = NULL;
                JsonObject *order;
                int r = acme_post_object(c, order_url, NULL, "ACME order", &resp, &parser, &order);
                if (r < 0)
                        return r;

                const char *status = strempty(object_string(order, "status"));
                bool wait = false;

                if (streq(status, "pending") && !authorized) {
                        r = do_authorizations(c, order, ret_timed_out);
                        if (r < 0)
                                return r;
                        authorized = true;
                        continue;
                } else if (streq(status, "ready") && !finalized) {
                        const char *finalize = object_string(order, "finalize");
                        if (!finalize)
                                return call_fail(c, PROVIDER_REJECTED, "ACME order without finalize URL");
                        if (!req->csr)
                                return call_fail(c, PROVIDER_REJECTED, "The ACME provider needs a CSR");

                        uint8_t *der = NULL;
                        int len = i2d_X509_REQ(req->csr, &der);
                        if (len <= 0)
                                return call_fail(c, PROVIDER_REJECTED, "Cannot encode the CSR");
                        g_autofree char *csr64 = base64url_encode(der, (size_t) len);
                        OPENSSL_free(der);
                        g_autofree char *payload = g_strdup_printf("{\"csr\":\"%s\"}", csr64);

                        _cleanup_(response_done) AcmeResponse fresp = { 0 };
                        g_autoptr(JsonParser) fparser = NULL;
                        JsonObject *fo;
                        r = acme_post_object(c, finalize, payload, "ACME finalize", &fresp, &fparser, &fo);
                        if (r < 0)
                                return r;
                        finalized = true;
                        continue;
                } else if (streq(status, "valid")) {
                        const char *cert_url = object_string(order, "certificate");
                        if (!cert_url)
                                return call_fail(c, PROVIDER_REJECTED, "Valid ACME order without certificate URL");

                        _cleanup_(response_done) AcmeResponse cresp = { 0 };
                        r = acme_post(c, cert_url, true, NULL, "application/pem-certificate-chain", &cresp);
                        if (r < 0)
                                return r;
                        if (cresp.status != 200)
                                return call_fail_response(c, &cresp, "ACME certificate download");
                        return split_chain(c, cresp.body, req->csr, ret);
                } else if (streq(status, "invalid")) {
                        JsonNode *e = json_object_get_member(order, "error");
                        if (e && JSON_NODE_HOLDS_OBJECT(e)) {
                                JsonObject *p = json_node_get_object(e);
                                const char *type = object_string(p, "type"), *detail = object_string(p, "detail");
                                if (type)
                                        return call_fail(c, PROVIDER_REJECTED, "%s: %s", type, strempty(detail));
                        }
                        return call_fail(c, PROVIDER_REJECTED, "The ACME order became invalid");
                } else if (streq(status, "pending") || streq(status, "ready") || streq(status, "processing"))
                        wait = true;
                else
                        return call_fail(c, PROVIDER_REJECTED, "ACME order in unknown state '%s'", status);

                if (wait) {
                        if (call_wait(c, MAX(retry_after_usec(&resp, interval), POLL_MIN_USEC)) < 0) {
                                *ret_timed_out = true;
                                return -ETIMEDOUT;
                        }
                        interval = MIN(interval * 2, POLL_MAX_USEC);
                }
        }
}

static void call_done(AcmeCall *c) {
        if (c->curl)
                curl_easy_cleanup(c->curl);
        g_free(c->kid);
        g_free(c->error);
        *c = (AcmeCall){ 0 };
}

static int call_init(AcmeCall *c, AcmeProvider *a) {
        *c = (AcmeCall){ .a = a, .deadline = monotonic_usec() + (uint64_t) a->timeout_sec * USEC_PER_SEC };

        c->curl = curl_easy_init();
        if (!c->curl)
                return -ENOMEM;
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "certkeeper/" PACKAGE_VERSION);
        curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) RESPONSE_MAX);
        if (a->ca_bundle)
                curl_easy_setopt(c->curl, CURLOPT_CAINFO, a->ca_bundle);
        return 0;
}

static int acme_issue(Provider *p, const ProviderRequest *req, ProviderResult *ret) {
        AcmeProvider *a = (AcmeProvider *) p;
        _cleanup_(call_done) AcmeCall c = { 0 };
        g_autofree char *order_url = NULL;
        bool timed_out = false;
        int r;

        *ret = (ProviderResult){ 0 };
        if (call_init(&c, a) < 0) {
                ret->outcome = PROVIDER_UNREACHABLE;
                ret->error = g_strdup("Cannot initialise libcurl");
                return 0;
        }

        r = ensure_directory(&c);
        if (r >= 0)
                r = ensure_account(&c);
        if (r >= 0 && req->cookie && g_str_has_prefix(req->cookie, "https://")) {
                /* Resume the order we left waiting rather than place a second one. */
                order_url = g_strdup(req->cookie);
        } else if (r >= 0) {
                g_autofree char *payload = new_order_payload(req);
                if (!payload)
                        r = call_fail(&c, PROVIDER_REJECTED, PROBLEM_PREFIX "malformed: between 1 and %u "
                                      "identifiers are needed", IDENTIFIERS_MAX);
                else {
                        _cleanup_(response_done) AcmeResponse resp = { 0 };
                        r = acme_post(&c, a->url_new_order, true, payload, NULL, &resp);
                        if (r >= 0 && resp.status != 201 && resp.status != 200)
                                r = call_fail_response(&c, &resp, "ACME newOrder");
                        else if (r >= 0 && isempty(resp.location))
                                r = call_fail(&c, PROVIDER_REJECTED, "ACME newOrder answered without order URL");
                        else if (r >= 0)
                                order_url = g_strdup(resp.location);
                }
        }
        if (r >= 0) {
                log_debug("ACME: order %" PRIu64 " is %s", req->order_id, order_url);
                r = run_order(&c, req, order_url, ret, &timed_out);
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
                ret->error = c.error ? TAKE_PTR(c.error)
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
        _cleanup_(call_done) AcmeCall c = { 0 };
        int r;

        if (call_init(&c, a) < 0) {
                *ret_error = g_strdup("Cannot initialise libcurl");
                return -ENOMEM;
        }
        /* A revocation needs no polling: one request with its retries. */
        c.deadline = monotonic_usec() + MIN((uint64_t) a->timeout_sec, 120U) * USEC_PER_SEC;

        r = ensure_directory(&c);
        if (r >= 0 && !a->url_revoke_cert)
                r = call_fail(&c, PROVIDER_REJECTED, "The ACME server does not support revocation");
        if (r >= 0)
                r = ensure_account(&c);
        if (r >= 0) {
                uint8_t *der = NULL;
                int len = i2d_X509(cert, &der);
                if (len <= 0)
                        r = call_fail(&c, PROVIDER_REJECTED, "Cannot encode the certificate");
                else {
                        g_autofree char *cert64 = base64url_encode(der, (size_t) len);
                        OPENSSL_free(der);
                        g_autofree char *payload = g_strdup_printf("{\"certificate\":\"%s\",\"reason\":%d}",
                                                                   cert64, reason);
                        _cleanup_(response_done) AcmeResponse resp = { 0 };
                        r = acme_post(&c, a->url_revoke_cert, true, payload, NULL, &resp);
                        if (r >= 0 && resp.status != 200) {
                                g_autofree char *type = problem_type(&resp);
                                r = call_fail_response(&c, &resp, "ACME revokeCert");
                                if (streq_ptr(type, PROBLEM_PREFIX "alreadyRevoked"))
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
        return g_strdup_printf("ACME %s", a->directory_url);
}

static void acme_free(Provider *p) {
        AcmeProvider *a = (AcmeProvider *) p;
        if (!a)
                return;

        acme_responder_free(a->responder);
        EVP_PKEY_free(a->account_key);
        if (a->eab_hmac_key) {
                OPENSSL_cleanse(a->eab_hmac_key, a->eab_hmac_key_len);
                g_free(a->eab_hmac_key);
        }
        g_free(a->directory_url);
        g_free(a->email);
        g_free(a->ca_bundle);
        g_free(a->webroot_path);
        g_free(a->eab_key_id);
        g_free(a->jwk);
        g_free(a->thumbprint);
        g_free(a->url_new_nonce);
        g_free(a->url_new_account);
        g_free(a->url_new_order);
        g_free(a->url_revoke_cert);
        g_free(a->kid);
        g_free(a->nonce);
        pthread_mutex_destroy(&a->lock);
        pthread_mutex_destroy(&a->account_lock);
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
        AcmeProvider *a = (AcmeProvider *) p;
        pthread_mutex_lock(&a->lock);
        unsigned n = a->bad_nonce_retries;
        pthread_mutex_unlock(&a->lock);
        return n;
}

char *provider_acme_account_url(Provider *p) {
        AcmeProvider *a = (AcmeProvider *) p;
        pthread_mutex_lock(&a->lock);
        char *k = g_strdup(a->kid);
        pthread_mutex_unlock(&a->lock);
        return k;
}

/* ---- account key ---- */

static bool key_is_p256(EVP_PKEY *k) {
        char group[64];
        size_t len = 0;
        return EVP_PKEY_is_a(k, "EC") &&
               EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) == 1 &&
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
                *ret_error = g_strdup_printf("Cannot open the ACME account key %s: %s", path, strerror(errno));
                return -errno;
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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
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

        (void) pthread_once(&curl_once, curl_init_once);
        if (curl_init_result != CURLE_OK) {
                *ret_error = g_strdup_printf("libcurl initialisation failed: %s",
                                             curl_easy_strerror(curl_init_result));
                return -EIO;
        }

        AcmeProvider *a = g_new0(AcmeProvider, 1);
        a->parent.ops = &acme_ops;
        a->parent.name = g_strdup("acme");
        pthread_mutex_init(&a->lock, NULL);
        pthread_mutex_init(&a->account_lock, NULL);
        a->directory_url = g_strdup(s->directory_url);
        a->email = isempty(s->email) ? NULL : g_strdup(s->email);
        a->ca_bundle = isempty(s->ca_bundle) ? NULL : g_strdup(s->ca_bundle);
        a->webroot_path = isempty(s->webroot_path) ? NULL : g_strdup(s->webroot_path);
        a->eab_key_id = isempty(s->eab_key_id) ? NULL : g_strdup(s->eab_key_id);
        a->timeout_sec = s->timeout_sec == 0 ? DEFAULT_TIMEOUT_SEC : s->timeout_sec;
        a->responder = acme_responder_new(s->http_port);

        if (a->eab_key_id) {
                r = base64url_decode(s->eab_hmac_key, &a->eab_hmac_key, &a->eab_hmac_key_len);
                if (r < 0 || a->eab_hmac_key_len == 0) {
                        *ret_error = g_strdup("ACME EABHMACKey= is not base64url");
                        acme_free(&a->parent);
                        return -EINVAL;
                }
        }

        r = account_key_load(s->account_key_path, s->master_key, &a->account_key, ret_error);
        if (r < 0) {
                acme_free(&a->parent);
                return r;
        }
        r = acme_jwk(a->account_key, &a->jwk, &a->thumbprint);
        if (r < 0) {
                *ret_error = g_strdup("Cannot compute the ACME account key's JWK");
                acme_free(&a->parent);
                return r;
        }

        *ret = &a->parent;
        return 0;
}
