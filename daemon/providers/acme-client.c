/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The ACME session: transport, directory, nonces, signed requests, account.
 * Shared by concurrent orders; the shared state sits behind a mutex, and each
 * order's requests go through its own AcmeCall (curl handle, deadline, error). */

#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#include "config-build.h"
#include "acme-client.h"
#include "acme-jws.h"
#include "log.h"

#define RESPONSE_MAX (1024U * 1024U) /* a certificate chain is a few KiB */
#define CONNECT_TIMEOUT_USEC (10U * USEC_PER_SEC)
#define REQUEST_TIMEOUT_USEC (30U * USEC_PER_SEC)
#define CANCEL_CHECK_USEC (100U * USEC_PER_MSEC)
#define TRANSPORT_ATTEMPTS 3U /* tries per request on connection failures and 5xx */
/* badNonce is retryable by definition (RFC 8555 §6.5) and some servers reject a
 * fixed share of good nonces, so allow more retries than for other failures; each
 * one is a quick round trip and the order deadline still bounds the total. */
#define BAD_NONCE_RETRIES 15U
#define POLL_MAX_USEC (10U * USEC_PER_SEC)
#define ERROR_MAX 1024U /* bytes of an error message quoting the server */

struct AcmeClient {
        char *directory_url;
        char *email;
        char *ca_bundle;
        char *eab_key_id;
        uint8_t *eab_hmac_key;
        size_t eab_hmac_key_len;

        EVP_PKEY *account_key;
        char *jwk;        /* the account key's public JWK in RFC 7638 canonical form */
        char *thumbprint; /* base64url(SHA-256(jwk)) */

        /* Held while looking up or registering the account, so that concurrent first
         * orders do not all register. Never taken while holding lock. */
        pthread_mutex_t account_lock;

        pthread_mutex_t lock; /* protects everything below */
        bool have_directory;
        char *url_new_nonce, *url_new_account, *url_new_order, *url_revoke_cert;
        bool eab_required;
        char *kid;   /* the account URL */
        char *nonce; /* one spare Replay-Nonce */
        unsigned bad_nonce_retries;
};

/* Sleeps in slices so that a daemon that is stopping is not kept waiting. */
static void sleep_usec(uint64_t usec) {
        while (usec > 0 && !provider_cancelled()) {
                uint64_t slice = MIN(usec, (uint64_t) CANCEL_CHECK_USEC);
                struct timespec ts = {.tv_sec = (time_t) (slice / USEC_PER_SEC),
                                      .tv_nsec = (long) (slice % USEC_PER_SEC) * 1000};
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                usec -= slice;
        }
}

/* libcurl's progress callback: a non-zero answer aborts the transfer. */
static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
        return provider_cancelled() ? 1 : 0;
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

int acme_call_fail(AcmeCall *c, ProviderOutcome outcome, const char *format, ...) {
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

void acme_response_done(AcmeResponse *r) {
        if (r->body)
                g_string_free(r->body, TRUE);
        g_free(r->nonce);
        g_free(r->location);
        g_free(r->retry_after);
        g_free(r->content_type);
        *r = (AcmeResponse){0};
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
        if (provider_cancelled()) {
                *ret_error = g_strdup("certkeeperd is stopping");
                return -ECANCELED;
        }
        if (now >= c->deadline) {
                *ret_error = g_strdup("deadline reached");
                return -ETIMEDOUT;
        }
        uint64_t left = c->deadline - now;

        acme_response_done(resp);
        resp->body = g_string_new(NULL);

        struct curl_slist *headers = NULL;
        g_autofree char *accept_header = g_strdup_printf("Accept: %s", accept ? accept : "application/json");
        headers = curl_slist_append(headers, accept_header);
        if (body)
                headers = curl_slist_append(headers, "Content-Type: application/jose+json");

        CURL *h = c->curl;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         (long) (MIN(left, CONNECT_TIMEOUT_USEC) / USEC_PER_MSEC + 1));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                         (long) (MIN(left, REQUEST_TIMEOUT_USEC) / USEC_PER_MSEC + 1));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
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

uint64_t acme_retry_after_usec(const AcmeResponse *resp, uint64_t fallback) {
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
int acme_call_wait(AcmeCall *c, uint64_t usec) {
        uint64_t now = monotonic_usec();
        if (now + usec >= c->deadline)
                return -ETIMEDOUT;
        sleep_usec(usec);
        return provider_cancelled() ? -ECANCELED : 0;
}

static bool transient_status(long status) {
        return status >= 500 || status == 429;
}

char *acme_json_compact(JsonNode *node) {
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

JsonObject *acme_parse_object(const GString *body, JsonParser **ret_parser) {
        g_autoptr(JsonParser) parser = json_parser_new();

        if (!body || !json_parser_load_from_data(parser, body->str, (gssize) body->len, NULL))
                return NULL;
        JsonNode *root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return NULL;
        *ret_parser = TAKE_PTR(parser);
        return json_node_get_object(root);
}

const char *acme_object_string(JsonObject *o, const char *member) {
        JsonNode *n = o ? json_object_get_member(o, member) : NULL;
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(n);
}

/* The problem type of an error response (RFC 7807), or NULL. */
char *acme_problem_type(const AcmeResponse *resp) {
        g_autoptr(JsonParser) parser = NULL;
        JsonObject *o = acme_parse_object(resp->body, &parser);
        return g_strdup(acme_object_string(o, "type"));
}

/* Record an error response: a readable "type: detail", permanent unless the
 * server says it is temporary. */
int acme_call_fail_response(AcmeCall *c, const AcmeResponse *resp, const char *what) {
        g_autoptr(JsonParser) parser = NULL;
        JsonObject *o = acme_parse_object(resp->body, &parser);
        const char *type = acme_object_string(o, "type"), *detail = acme_object_string(o, "detail");

        if (!type)
                return acme_call_fail(
                        c, transient_status(resp->status) ? PROVIDER_UNREACHABLE : PROVIDER_REJECTED,
                        "%s: HTTP %ld from the ACME server", what, resp->status);

        /* Sub-problems name the identifier that failed; the first one is enough for a message. */
        g_autofree char *sub = NULL;
        JsonNode *subs = json_object_get_member(o, "subproblems");
        if (subs && JSON_NODE_HOLDS_ARRAY(subs) && json_array_get_length(json_node_get_array(subs)) > 0) {
                JsonNode *first = json_array_get_element(json_node_get_array(subs), 0);
                if (JSON_NODE_HOLDS_OBJECT(first)) {
                        const char *sd = acme_object_string(json_node_get_object(first), "detail");
                        if (sd)
                                sub = g_strdup_printf(" (%s)", sd);
                }
        }

        bool transient = streq(type, ACME_PROBLEM_PREFIX "serverInternal") ||
                         streq(type, ACME_PROBLEM_PREFIX "rateLimited") || transient_status(resp->status);
        return acme_call_fail(c, transient ? PROVIDER_UNREACHABLE : PROVIDER_REJECTED, "%s: %s%s", type,
                              detail ? detail : what, strempty(sub));
}

/* GET with retries on transport failures and 5xx. */
static int acme_get(AcmeCall *c, const char *url, AcmeResponse *resp) {
        for (unsigned attempt = 1;; attempt++) {
                g_autofree char *err = NULL;
                int r = http_once(c, url, NULL, false, NULL, resp, &err);
                if (r >= 0 && !transient_status(resp->status))
                        return 0;
                if (attempt >= TRANSPORT_ATTEMPTS || acme_call_wait(c, attempt * 500 * USEC_PER_MSEC) < 0) {
                        if (r < 0)
                                return acme_call_fail(c, PROVIDER_UNREACHABLE, "ACME server unreachable: %s",
                                                      err);
                        return acme_call_fail_response(c, resp, url);
                }
                log_debug("ACME: retrying GET %s: %s", url, r < 0 ? err : "server error");
        }
}

/* ---- directory, nonces ---- */

int acme_directory_ensure(AcmeCall *c) {
        AcmeClient *a = c->client;

        pthread_mutex_lock(&a->lock);
        bool have = a->have_directory;
        pthread_mutex_unlock(&a->lock);
        if (have)
                return 0;

        _cleanup_(acme_response_done) AcmeResponse resp = {0};
        int r = acme_get(c, a->directory_url, &resp);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return acme_call_fail_response(c, &resp, "ACME directory");

        g_autoptr(JsonParser) parser = NULL;
        JsonObject *o = acme_parse_object(resp.body, &parser);
        const char *nn = acme_object_string(o, "newNonce"), *na = acme_object_string(o, "newAccount"),
                   *no = acme_object_string(o, "newOrder"), *rc = acme_object_string(o, "revokeCert");
        if (!nn || !na || !no)
                return acme_call_fail(c, PROVIDER_REJECTED,
                                      "%s is not an ACME directory (newNonce, newAccount or "
                                      "newOrder missing)",
                                      a->directory_url);

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

static void nonce_put(AcmeClient *a, const char *nonce) {
        if (isempty(nonce))
                return;
        pthread_mutex_lock(&a->lock);
        g_free(a->nonce);
        a->nonce = g_strdup(nonce);
        pthread_mutex_unlock(&a->lock);
}

static int nonce_get(AcmeCall *c, char **ret) {
        AcmeClient *a = c->client;

        pthread_mutex_lock(&a->lock);
        char *n = TAKE_PTR(a->nonce);
        pthread_mutex_unlock(&a->lock);
        if (n) {
                *ret = n;
                return 0;
        }

        for (unsigned attempt = 1;; attempt++) {
                _cleanup_(acme_response_done) AcmeResponse resp = {0};
                g_autofree char *err = NULL;
                int r = http_once(c, a->url_new_nonce, NULL, true, NULL, &resp, &err);
                if (r >= 0 && resp.nonce && resp.status < 300) {
                        *ret = TAKE_PTR(resp.nonce);
                        return 0;
                }
                if (attempt >= TRANSPORT_ATTEMPTS || acme_call_wait(c, attempt * 500 * USEC_PER_MSEC) < 0) {
                        if (r < 0)
                                return acme_call_fail(c, PROVIDER_UNREACHABLE, "ACME server unreachable: %s",
                                                      err);
                        return acme_call_fail(
                                c, transient_status(resp.status) ? PROVIDER_UNREACHABLE : PROVIDER_REJECTED,
                                "ACME newNonce: HTTP %ld without Replay-Nonce", resp.status);
                }
        }
}

static void account_forget(AcmeClient *a, const char *kid) {
        pthread_mutex_lock(&a->lock);
        if (streq_ptr(a->kid, kid))
                g_clear_pointer(&a->kid, g_free);
        pthread_mutex_unlock(&a->lock);
}

/* A signed POST: fresh nonce, retried on badNonce with the nonce the error
 * carried, and on transport failures. Signed with the account URL (kid) when
 * use_kid, else with the embedded JWK (newAccount). payload NULL is POST-as-GET. */
int acme_post(AcmeCall *c, const char *url, bool use_kid, const char *payload, const char *accept,
              AcmeResponse *resp) {
        AcmeClient *a = c->client;
        unsigned bad_nonces = 0, transport_failures = 0;
        bool account_refreshed = false;

        for (;;) {
                g_autofree char *nonce = NULL, *jws = NULL, *err = NULL;
                int r = nonce_get(c, &nonce);
                if (r < 0)
                        return r;
                r = acme_jws_sign(a->account_key, a->jwk, use_kid ? c->kid : NULL, nonce, url, payload,
                                  &jws);
                if (r < 0)
                        return acme_call_fail(c, PROVIDER_UNREACHABLE, "Cannot sign the ACME request");

                r = http_once(c, url, jws, false, accept, resp, &err);
                if (r >= 0)
                        nonce_put(a, resp->nonce);

                if (r >= 0 && resp->status >= 400) {
                        g_autofree char *type = acme_problem_type(resp);
                        if (streq_ptr(type, ACME_PROBLEM_PREFIX "badNonce") &&
                            bad_nonces < BAD_NONCE_RETRIES) {
                                bad_nonces++;
                                pthread_mutex_lock(&a->lock);
                                a->bad_nonce_retries++;
                                pthread_mutex_unlock(&a->lock);
                                log_debug("ACME: %s answered badNonce, retrying with a fresh nonce", url);
                                continue;
                        }
                        /* The server forgot the account (a reset test CA, a deactivation):
                         * look it up or register again, once. */
                        if (use_kid && streq_ptr(type, ACME_PROBLEM_PREFIX "accountDoesNotExist") &&
                            !account_refreshed) {
                                account_refreshed = true;
                                account_forget(a, c->kid);
                                g_clear_pointer(&c->kid, g_free);
                                r = acme_account_ensure(c);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                }

                if (r >= 0 && !transient_status(resp->status))
                        return 0;

                transport_failures++;
                if (transport_failures >= TRANSPORT_ATTEMPTS ||
                    acme_call_wait(c, transport_failures * 500 * USEC_PER_MSEC) < 0) {
                        if (r < 0)
                                return acme_call_fail(c, PROVIDER_UNREACHABLE, "ACME server unreachable: %s",
                                                      err);
                        return acme_call_fail_response(c, resp, url);
                }
                log_debug("ACME: retrying POST %s: %s", url, r < 0 ? err : "server error");
        }
}

/* POST that expects a JSON object back with one of the given statuses. */
int acme_post_object(AcmeCall *c, const char *url, const char *payload, const char *what, AcmeResponse *resp,
                     JsonParser **ret_parser, JsonObject **ret) {
        int r = acme_post(c, url, true, payload, NULL, resp);
        if (r < 0)
                return r;
        if (resp->status != 200 && resp->status != 201)
                return acme_call_fail_response(c, resp, what);
        JsonObject *o = acme_parse_object(resp->body, ret_parser);
        if (!o)
                return acme_call_fail(c, PROVIDER_REJECTED,
                                      "%s: the ACME server's answer is not a JSON object", what);
        *ret = o;
        return 0;
}

/* ---- account ---- */

static int account_lookup_or_register(AcmeCall *c);

int acme_account_ensure(AcmeCall *c) {
        AcmeClient *a = c->client;

        pthread_mutex_lock(&a->account_lock);
        pthread_mutex_lock(&a->lock);
        c->kid = g_strdup(a->kid);
        pthread_mutex_unlock(&a->lock);
        int r = c->kid ? 0 : account_lookup_or_register(c);
        pthread_mutex_unlock(&a->account_lock);
        return r;
}

static int account_lookup_or_register(AcmeCall *c) {
        AcmeClient *a = c->client;

        /* After a restart the key is the same, so the account exists: find it first,
         * so that we never register twice. */
        _cleanup_(acme_response_done) AcmeResponse resp = {0};
        int r = acme_post(c, a->url_new_account, false, "{\"onlyReturnExisting\":true}", NULL, &resp);
        if (r < 0)
                return r;

        if (resp.status >= 400) {
                g_autofree char *type = acme_problem_type(&resp);
                if (!streq_ptr(type, ACME_PROBLEM_PREFIX "accountDoesNotExist"))
                        return acme_call_fail_response(c, &resp, "ACME account lookup");

                if (a->eab_required && !a->eab_key_id)
                        return acme_call_fail(
                                c, PROVIDER_REJECTED,
                                ACME_PROBLEM_PREFIX
                                "externalAccountRequired: the ACME "
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
                        g_autofree char *eab =
                                acme_eab_sign(a->eab_key_id, a->eab_hmac_key, a->eab_hmac_key_len, a->jwk,
                                              a->url_new_account);
                        JsonNode *eab_node = eab ? parse_node(eab) : NULL;
                        if (!eab_node)
                                return acme_call_fail(c, PROVIDER_REJECTED, "Cannot compute the EAB MAC");
                        json_builder_set_member_name(b, "externalAccountBinding");
                        json_builder_add_value(b, eab_node);
                }
                json_builder_end_object(b);
                g_autoptr(JsonNode) node = json_builder_get_root(b);
                g_autofree char *payload = acme_json_compact(node);

                r = acme_post(c, a->url_new_account, false, payload, NULL, &resp);
                if (r < 0)
                        return r;
                if (resp.status != 200 && resp.status != 201)
                        return acme_call_fail_response(c, &resp, "ACME account creation");
                if (resp.status == 201)
                        log_info("ACME: registered a new account at %s", a->directory_url);
        }

        if (isempty(resp.location))
                return acme_call_fail(c, PROVIDER_REJECTED,
                                      "ACME newAccount answered without the account URL");

        pthread_mutex_lock(&a->lock);
        a->kid = g_strdup(resp.location);
        pthread_mutex_unlock(&a->lock);
        c->kid = g_strdup(resp.location);
        return 0;
}

void acme_call_done(AcmeCall *c) {
        if (c->curl)
                curl_easy_cleanup(c->curl);
        g_free(c->kid);
        g_free(c->error);
        *c = (AcmeCall){0};
}

int acme_call_init(AcmeCall *c, AcmeClient *a, uint64_t timeout_usec) {
        *c = (AcmeCall){.client = a, .deadline = monotonic_usec() + timeout_usec};

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

/* ---- the client ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int acme_client_new(const char *directory_url, const char *ca_bundle, const char *email,
                    const char *eab_key_id, const char *eab_hmac_key, EVP_PKEY *account_key,
                    AcmeClient **ret, char **ret_error) {
        _cleanup_(acme_client_freep) AcmeClient *a = NULL;
        int r;

        (void) pthread_once(&curl_once, curl_init_once);
        if (curl_init_result != CURLE_OK) {
                *ret_error = g_strdup_printf("libcurl initialisation failed: %s",
                                             curl_easy_strerror(curl_init_result));
                return -EIO;
        }

        a = g_new0(AcmeClient, 1);
        pthread_mutex_init(&a->lock, NULL);
        pthread_mutex_init(&a->account_lock, NULL);
        a->directory_url = g_strdup(directory_url);
        a->email = isempty(email) ? NULL : g_strdup(email);
        a->ca_bundle = isempty(ca_bundle) ? NULL : g_strdup(ca_bundle);
        a->eab_key_id = isempty(eab_key_id) ? NULL : g_strdup(eab_key_id);
        if (a->eab_key_id) {
                r = base64url_decode(strempty(eab_hmac_key), &a->eab_hmac_key, &a->eab_hmac_key_len);
                if (r < 0 || a->eab_hmac_key_len == 0) {
                        *ret_error = g_strdup("ACME EABHMACKey= is not base64url");
                        return -EINVAL;
                }
        }

        if (EVP_PKEY_up_ref(account_key) != 1)
                return -ENOMEM;
        a->account_key = account_key;
        r = acme_jwk(a->account_key, &a->jwk, &a->thumbprint);
        if (r < 0) {
                *ret_error = g_strdup("Cannot compute the ACME account key's JWK (not a P-256 key?)");
                return r;
        }

        *ret = TAKE_PTR(a);
        return 0;
}

AcmeClient *acme_client_free(AcmeClient *a) {
        if (!a)
                return NULL;

        EVP_PKEY_free(a->account_key);
        if (a->eab_hmac_key) {
                OPENSSL_cleanse(a->eab_hmac_key, a->eab_hmac_key_len);
                g_free(a->eab_hmac_key);
        }
        g_free(a->directory_url);
        g_free(a->email);
        g_free(a->ca_bundle);
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
        g_free(a);
        return NULL;
}

const char *acme_client_directory_url(AcmeClient *a) {
        return a->directory_url;
}

const char *acme_client_thumbprint(AcmeClient *a) {
        return a->thumbprint;
}

/* Written once under the lock before have_directory is set, never changed after:
 * a caller that saw acme_directory_ensure() succeed may read them unlocked. */
const char *acme_client_new_order_url(AcmeClient *a) {
        return a->url_new_order;
}

const char *acme_client_revoke_cert_url(AcmeClient *a) {
        return a->url_revoke_cert;
}

unsigned acme_client_bad_nonce_retries(AcmeClient *a) {
        pthread_mutex_lock(&a->lock);
        unsigned n = a->bad_nonce_retries;
        pthread_mutex_unlock(&a->lock);
        return n;
}

char *acme_client_account_url(AcmeClient *a) {
        pthread_mutex_lock(&a->lock);
        char *k = g_strdup(a->kid);
        pthread_mutex_unlock(&a->lock);
        return k;
}
