/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeper-cfssl-submit URL [--profile P] [--auth-key-file F]
 *
 * A CA helper in certmonger's protocol for a cfssl API server: certkeeperd (or
 * certmonger) runs it with CERTMONGER_OPERATION and CERTMONGER_CSR in the
 * environment. SUBMIT/POLL sign the CSR through /api/v1/cfssl/sign, or
 * /api/v1/cfssl/authsign with an HMAC-SHA256 token when an auth key is given;
 * FETCH-ROOTS prints the CA certificate from /api/v1/cfssl/info; IDENTIFY says
 * who we are. Exit codes are certmonger's: 0 issued, 2 rejected, 3 CA
 * unreachable, 4 under-configured, 6 operation not supported. Messages go to
 * stdout, where the protocol wants them. */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config-build.h"

enum {
        EXIT_ISSUED = 0,
        EXIT_REJECTED = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_UNDERCONFIGURED = 4,
        EXIT_UNSUPPORTED = 6,
};

#define RESPONSE_MAX (1024U * 1024U)
#define AUTH_KEY_FILE_MAX 4096
#define CSR_MAX (64U * 1024U)
#define CONNECT_TIMEOUT_SEC 10L
/* Below certkeeperd's default helper Timeout= of 60 s, so that we report it. */
#define REQUEST_TIMEOUT_SEC 45L

typedef struct Args {
        const char *url;
        const char *profile;
        const char *auth_key_file;
} Args;

static int usage(FILE *f, int status) {
        fprintf(f,
                "Usage: certkeeper-cfssl-submit URL [--profile PROFILE] [--auth-key-file FILE]\n"
                "A certmonger-compatible CA helper for a cfssl API server at URL (e.g. http://ca:8888).\n"
                "  --profile PROFILE      the cfssl signing profile\n"
                "  --auth-key-file FILE   the hex HMAC key of the profile's auth_key: use authsign\n");
        return status;
}

static int parse_args(int argc, char **argv, Args *ret) {
        static const struct option options[] = {
                { "profile", required_argument, NULL, 'p' },
                { "auth-key-file", required_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        int c;

        *ret = (Args) { .url = NULL };
        while ((c = getopt_long(argc, argv, "p:k:h", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        ret->profile = optarg;
                        break;
                case 'k':
                        ret->auth_key_file = optarg;
                        break;
                case 'h':
                        exit(usage(stdout, 0));
                default:
                        return -EINVAL;
                }
        if (optind != argc - 1)
                return -EINVAL;
        ret->url = argv[optind];
        if (strncmp(ret->url, "http://", 7) != 0 && strncmp(ret->url, "https://", 8) != 0)
                return -EINVAL;
        return 0;
}

/* The key file holds the hex key as in cfssl's auth_keys ("standard" type). */
static int read_auth_key(const char *path, unsigned char **ret, size_t *ret_len) {
        char buf[AUTH_KEY_FILE_MAX + 1];
        unsigned char *key;
        size_t n, len = 0, start = 0;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof buf, f);
        (void) fclose(f);
        if (n > AUTH_KEY_FILE_MAX) {
                OPENSSL_cleanse(buf, sizeof buf);
                return -EFBIG;
        }
        while (n > 0 && isspace((unsigned char) buf[n - 1]))
                n--;
        while (start < n && isspace((unsigned char) buf[start]))
                start++;
        if (n == start || (n - start) % 2 != 0) {
                OPENSSL_cleanse(buf, sizeof buf);
                return -EINVAL;
        }

        key = malloc((n - start) / 2);
        if (!key) {
                OPENSSL_cleanse(buf, sizeof buf);
                return -ENOMEM;
        }
        for (size_t i = start; i < n; i += 2) {
                int hi = g_ascii_xdigit_value(buf[i]), lo = g_ascii_xdigit_value(buf[i + 1]);

                if (hi < 0 || lo < 0) {
                        OPENSSL_cleanse(buf, sizeof buf);
                        OPENSSL_cleanse(key, (n - start) / 2);
                        free(key);
                        return -EINVAL;
                }
                key[len++] = (unsigned char) (hi << 4 | lo);
        }
        OPENSSL_cleanse(buf, sizeof buf);
        *ret = key;
        *ret_len = len;
        return 0;
}

typedef struct Response {
        GString *body;
        bool too_big;
} Response;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        Response *r = userdata;
        size_t n = size * nmemb;

        if (r->body->len + n > RESPONSE_MAX) {
                r->too_big = true;
                return 0; /* makes curl fail the transfer */
        }
        g_string_append_len(r->body, data, (gssize) n);
        return n;
}

/* POSTs body to URL/api/v1/cfssl/ENDPOINT. Returns an exit code: 0 with the
 * response body and HTTP status, or EXIT_UNREACHABLE after printing why. */
static int post(const Args *args, const char *endpoint, const char *body, GString **ret_body, long *ret_status) {
        g_autofree char *url = NULL;
        g_autoptr(GString) base = g_string_new(args->url);
        struct curl_slist *headers = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        Response resp = { .body = g_string_new(NULL) };
        CURLcode c;
        CURL *curl;

        while (base->len > 0 && base->str[base->len - 1] == '/')
                g_string_truncate(base, base->len - 1);
        url = g_strdup_printf("%s/api/v1/cfssl/%s", base->str, endpoint);

        curl = curl_easy_init();
        if (!curl) {
                printf("Could not initialise libcurl.\n");
                g_string_free(resp.body, TRUE);
                return EXIT_UNREACHABLE;
        }
        headers = curl_slist_append(headers, "Content-Type: application/json");
        (void) curl_easy_setopt(curl, CURLOPT_URL, url);
        (void) curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        (void) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        (void) curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
        (void) curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
        (void) curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
        (void) curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        (void) curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SEC);
        (void) curl_easy_setopt(curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_SEC);
        (void) curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(curl, CURLOPT_USERAGENT, "certkeeper-cfssl-submit/" PACKAGE_VERSION);

        c = curl_easy_perform(curl);
        if (c == CURLE_OK)
                (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, ret_status);
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);

        if (resp.too_big) {
                printf("The answer from %s is larger than %u KiB.\n", url, RESPONSE_MAX / 1024);
                g_string_free(resp.body, TRUE);
                return EXIT_UNREACHABLE;
        }
        if (c != CURLE_OK) {
                printf("Could not reach cfssl at %s: %s\n", url, errbuf[0] ? errbuf : curl_easy_strerror(c));
                g_string_free(resp.body, TRUE);
                return EXIT_UNREACHABLE;
        }
        *ret_body = resp.body;
        return 0;
}

/* Reads cfssl's {"success":…,"result":{"certificate":…},"errors":[{"message":…}]}.
 * Returns an exit code; on 0 *ret_certificate is set. */
static int parse_answer(const char *url, const GString *body, long status, char **ret_certificate) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        JsonObject *o, *result;
        JsonNode *root;

        if (!json_parser_load_from_data(parser, body->str, (gssize) body->len, &error) ||
            !(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root) ||
            !json_object_has_member(o = json_node_get_object(root), "success")) {
                printf("%s answered HTTP %ld without a cfssl response.\n", url, status);
                return EXIT_UNREACHABLE;
        }

        if (!json_object_get_boolean_member_with_default(o, "success", FALSE)) {
                g_autoptr(GString) msg = g_string_new(NULL);
                JsonNode *en = json_object_get_member(o, "errors");
                JsonArray *errors = en && JSON_NODE_HOLDS_ARRAY(en) ? json_node_get_array(en) : NULL;

                for (guint i = 0; errors && i < json_array_get_length(errors); i++) {
                        JsonNode *n = json_array_get_element(errors, i);
                        const char *m;

                        if (!JSON_NODE_HOLDS_OBJECT(n))
                                continue;
                        m = json_object_get_string_member_with_default(json_node_get_object(n), "message",
                                                                        NULL);
                        if (m)
                                g_string_append_printf(msg, "%s%s", msg->len > 0 ? "; " : "", m);
                }
                printf("cfssl refused the request (HTTP %ld): %s\n", status,
                       msg->len > 0 ? msg->str : "no reason given");
                return EXIT_REJECTED;
        }

        root = json_object_get_member(o, "result");
        result = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
        if (!result || !json_object_get_string_member_with_default(result, "certificate", NULL)) {
                printf("%s reported success but sent no certificate.\n", url);
                return EXIT_REJECTED;
        }
        *ret_certificate = g_strdup(json_object_get_string_member(result, "certificate"));
        return 0;
}

static char *to_json(JsonBuilder *b) {
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = json_builder_get_root(b);

        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
}

static char *authenticate(const char *request, const unsigned char *key, size_t key_len) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        g_autofree char *token = NULL, *req64 = NULL;

        /* cfssl's "standard" auth: token = HMAC-SHA256(key, request bytes); both
         * are base64 in JSON (Go []byte fields). */
        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, (const unsigned char *) request,
                       strlen(request), mac, sizeof mac, &mac_len))
                return NULL;
        token = g_base64_encode(mac, mac_len);
        req64 = g_base64_encode((const guchar *) request, strlen(request));
        OPENSSL_cleanse(mac, sizeof mac);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "token");
        json_builder_add_string_value(b, token);
        json_builder_set_member_name(b, "request");
        json_builder_add_string_value(b, req64);
        json_builder_end_object(b);
        return to_json(b);
}

static void print_pem(const char *pem) {
        size_t n = strlen(pem);

        fputs(pem, stdout);
        if (n == 0 || pem[n - 1] != '\n')
                fputc('\n', stdout);
}

static int do_submit(const Args *args) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *request = NULL, *body = NULL, *cert = NULL;
        g_autoptr(GString) answer = NULL;
        const char *csr = getenv("CERTMONGER_CSR");
        const char *endpoint = "sign";
        long status = 0;
        int r;

        if (!csr || !*csr) {
                printf("No certificate signing request: CERTMONGER_CSR is not set.\n");
                return EXIT_UNDERCONFIGURED;
        }
        if (strlen(csr) > CSR_MAX) {
                printf("The certificate signing request is larger than %u KiB.\n", CSR_MAX / 1024);
                return EXIT_REJECTED;
        }

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "certificate_request");
        json_builder_add_string_value(b, csr);
        if (args->profile) {
                json_builder_set_member_name(b, "profile");
                json_builder_add_string_value(b, args->profile);
        }
        json_builder_end_object(b);
        request = to_json(b);

        if (args->auth_key_file) {
                unsigned char *key = NULL;
                size_t key_len = 0;

                r = read_auth_key(args->auth_key_file, &key, &key_len);
                if (r < 0) {
                        printf("Cannot use auth key file %s: %s\n", args->auth_key_file,
                               r == -EINVAL ? "expected an even number of hex digits" : strerror(-r));
                        return EXIT_UNDERCONFIGURED;
                }
                body = authenticate(request, key, key_len);
                OPENSSL_cleanse(key, key_len);
                free(key);
                if (!body) {
                        printf("Could not compute the authentication token.\n");
                        return EXIT_UNDERCONFIGURED;
                }
                endpoint = "authsign";
        } else
                body = g_strdup(request);

        r = post(args, endpoint, body, &answer, &status);
        if (r != 0)
                return r;
        r = parse_answer(args->url, answer, status, &cert);
        if (r != 0)
                return r;
        print_pem(cert);
        return EXIT_ISSUED;
}

static int do_fetch_roots(const Args *args) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *body = NULL, *cert = NULL;
        g_autoptr(GString) answer = NULL;
        long status = 0;
        int r;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "label");
        json_builder_add_string_value(b, "");
        if (args->profile) {
                json_builder_set_member_name(b, "profile");
                json_builder_add_string_value(b, args->profile);
        }
        json_builder_end_object(b);
        body = to_json(b);

        r = post(args, "info", body, &answer, &status);
        if (r != 0)
                return r;
        r = parse_answer(args->url, answer, status, &cert);
        if (r != 0)
                return r;
        printf("cfssl CA\n");
        print_pem(cert);
        return EXIT_ISSUED;
}

int main(int argc, char **argv) {
        const char *op = getenv("CERTMONGER_OPERATION");
        Args args;
        int r;

        if (parse_args(argc, argv, &args) < 0) {
                /* certmonger shows stdout: say what is wrong there too. */
                printf("Invalid arguments: expected URL (http:// or https://) [--profile P] "
                       "[--auth-key-file F].\n");
                return usage(stderr, EXIT_UNDERCONFIGURED);
        }

        /* As certmonger suggests for manual runs, no operation means SUBMIT. */
        if (!op || !*op)
                op = "SUBMIT";

        if (strcmp(op, "IDENTIFY") == 0) {
                printf("certkeeper-cfssl-submit %s for %s\n", PACKAGE_VERSION, args.url);
                return 0;
        }
        if (strcmp(op, "SUBMIT") != 0 && strcmp(op, "POLL") != 0 && strcmp(op, "FETCH-ROOTS") != 0)
                return EXIT_UNSUPPORTED;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                printf("Could not initialise libcurl.\n");
                return EXIT_UNREACHABLE;
        }
        /* We never answer "wait", so POLL is a fresh SUBMIT of the same CSR. */
        r = strcmp(op, "FETCH-ROOTS") == 0 ? do_fetch_roots(&args) : do_submit(&args);
        curl_global_cleanup();
        fflush(stdout);
        return r;
}
