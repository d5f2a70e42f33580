/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The external CA's helper program: its environment (certmonger's CERTMONGER_* variables), its
 * run, and what it said, made safe to show. provider-external.c acts on the answers. */

#include <arpa/inet.h>
#include <stdarg.h>

#include <openssl/pem.h>

#include "external-helper.h"
#include "log.h"

/* After ours: GLib redefines MIN() and MAX() the same way. */
#include <glib.h>

char *external_strdup_printf(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

/* Helper output is untrusted text: keep at most max bytes of valid UTF-8,
 * control characters (newlines included) turned into spaces, runs of
 * whitespace squeezed, leading and trailing whitespace dropped. */
char *external_text_sanitize(const char *data, size_t len, size_t max) {
        const char *end = data + len;
        g_autofree char *valid = NULL;
        char *out;
        size_t n = 0;
        bool space = false;

        valid = g_utf8_make_valid(data, (gssize) (end - data));
        out = malloc(max + 1);
        if (!out)
                return NULL;

        for (const char *s = valid; *s; ) {
                const char *next = g_utf8_next_char(s);
                size_t clen = (size_t) (next - s);

                if ((unsigned char) *s < 0x20 || *s == 0x7f || *s == ' ') {
                        space = n > 0;
                        s = next;
                        continue;
                }
                if (n + (space ? 1 : 0) + clen > max)
                        break;
                if (space)
                        out[n++] = ' ';
                space = false;
                memcpy(out + n, s, clen);
                n += clen;
                s = next;
        }
        out[n] = 0;
        return out;
}

static char *external_first_line(const char *data, size_t len) {
        const char *nl;

        /* Skip leading empty lines, then stop at the end of the first real one. */
        while (len > 0 && (*data == '\n' || *data == '\r' || *data == ' ' || *data == '\t'))
                data++, len--;
        nl = memchr(data, '\n', len);
        if (nl)
                len = (size_t) (nl - data);
        return external_text_sanitize(data, len, HELPER_MESSAGE_MAX);
}

/* ---- the environment handed to the helper ---------------------------------------------------- */

void helper_env_done(HelperEnv *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->v[i]);
        e->n = 0;
}

static int helper_env_add(HelperEnv *e, const char *key, const char *value) {
        if (!value)
                return 0;
        if (e->n >= HELPER_ENV_MAX)
                return -E2BIG;
        e->v[e->n] = external_strdup_printf("%s=%s", key, value);
        if (!e->v[e->n])
                return -ENOMEM;
        e->v[++e->n] = NULL;
        return 0;
}

int helper_env_init(HelperEnv *e, const ExternalProvider *p, const char *operation) {
        int r;

        *e = (HelperEnv) { .n = 0 };
        r = helper_env_add(e, "PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        if (r >= 0)
                r = helper_env_add(e, "LANG", "C.UTF-8");
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_OPERATION", operation);
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_CA_NICKNAME", p->provider.name);
        return r;
}

/* A value from the CSR goes into the environment only if it is plain text. */
static bool env_value_ok(const char *s, size_t len) {
        if (len == 0 || len > 1024)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

static int strv_join_append(char **joined, const char *s, size_t len) {
        size_t old = *joined ? strlen(*joined) : 0;
        char *n;

        /* certmonger joins multi-valued request fields with newlines. */
        n = realloc(*joined, old + (old > 0 ? 1 : 0) + len + 1);
        if (!n)
                return -ENOMEM;
        if (old > 0)
                n[old++] = '\n';
        memcpy(n + old, s, len);
        n[old + len] = 0;
        *joined = n;
        return 0;
}

int helper_env_add_request(HelperEnv *e, const ProviderRequest *req) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *sans = NULL;
        _cleanup_free_ char *csr_pem = NULL, *subject = NULL, *hostnames = NULL, *emails = NULL,
                            *addresses = NULL;
        STACK_OF(X509_EXTENSION) *exts;
        const char *key_type = NULL;
        char *data;
        long n;
        int r;

        bio = BIO_new(BIO_s_mem());
        if (!bio || PEM_write_bio_X509_REQ(bio, req->csr) != 1)
                return -ENOMEM;
        n = BIO_get_mem_data(bio, &data);
        csr_pem = strndup(data, (size_t) n);
        if (!csr_pem)
                return -ENOMEM;

        (void) BIO_reset(bio);
        if (X509_NAME_print_ex(bio, X509_REQ_get_subject_name(req->csr), 0,
                               XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
                return -ENOMEM;
        n = BIO_get_mem_data(bio, &data);
        if (env_value_ok(data, (size_t) n)) {
                subject = strndup(data, (size_t) n);
                if (!subject)
                        return -ENOMEM;
        }

        /* CERTMONGER_REQ_HOSTNAME holds DNS names; the IP addresses come from the CSR's SAN below. */
        if (req->dns_names)
                for (char *const *d = req->dns_names; *d; d++)
                        if (san_type(*d) == SAN_DNS && env_value_ok(*d, strlen(*d))) {
                                r = strv_join_append(&hostnames, *d, strlen(*d));
                                if (r < 0)
                                        return r;
                        }

        exts = X509_REQ_get_extensions(req->csr);
        if (exts) {
                sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        }
        for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
                const char *s;
                size_t len;
                char ip[INET6_ADDRSTRLEN];

                switch (g->type) {
                case GEN_DNS:
                        if (req->dns_names)
                                continue;
                        s = (const char *) ASN1_STRING_get0_data(g->d.dNSName);
                        len = (size_t) ASN1_STRING_length(g->d.dNSName);
                        if (env_value_ok(s, len) && strv_join_append(&hostnames, s, len) < 0)
                                return -ENOMEM;
                        break;
                case GEN_EMAIL:
                        s = (const char *) ASN1_STRING_get0_data(g->d.rfc822Name);
                        len = (size_t) ASN1_STRING_length(g->d.rfc822Name);
                        if (env_value_ok(s, len) && strv_join_append(&emails, s, len) < 0)
                                return -ENOMEM;
                        break;
                case GEN_IPADD: {
                        int l = ASN1_STRING_length(g->d.iPAddress);
                        const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);

                        if ((l == 4 && inet_ntop(AF_INET, a, ip, sizeof ip)) ||
                            (l == 16 && inet_ntop(AF_INET6, a, ip, sizeof ip)))
                                if (strv_join_append(&addresses, ip, strlen(ip)) < 0)
                                        return -ENOMEM;
                        break;
                }
                default:
                        break;
                }
        }

        switch (EVP_PKEY_get_base_id(X509_REQ_get0_pubkey(req->csr))) {
        case EVP_PKEY_RSA:
                key_type = "RSA";
                break;
        case EVP_PKEY_EC:
                key_type = "EC";
                break;
        default:
                break;
        }

        r = helper_env_add(e, "CERTMONGER_CSR", csr_pem);
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_REQ_SUBJECT", subject);
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_REQ_HOSTNAME", hostnames);
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_REQ_EMAIL", emails);
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_REQ_IP_ADDRESS", addresses);
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_KEY_TYPE", key_type);
        if (r >= 0)
                r = helper_env_add(e, "CERTMONGER_CA_COOKIE", req->cookie);
        return r;
}


/* Runs our helper; a helper that cannot be started gets a readable *ret_error. */
int external_run_helper(const ExternalProvider *p, char **env, HelperRun *ret, char **ret_error) {
        int r = helper_run(p->argv, env, p->timeout_sec, HELPER_STDOUT_MAX, HELPER_STDERR_MAX, ret);

        if (r < 0 && r != -ENOMEM)
                *ret_error = external_strdup_printf("External CA \"%s\": helper %s could not be started: %s",
                                           p->provider.name, p->argv[0], strerror(-r));
        return r;
}

/* Describes a helper run that did not end with an exit code of its own, or
 * NULL if it did. */
char *external_helper_failure(const ExternalProvider *p, const HelperRun *h, const char *operation) {
        _cleanup_free_ char *line = external_first_line(h->err, h->err_len);

        if (!line)
                return NULL;
        if (h->flooded)
                return external_strdup_printf("External CA \"%s\": helper %s flooded its output (more than %u KiB on %s "
                                     "during %s) and was killed",
                                     p->provider.name, p->argv[0],
                                     (h->flooded_stderr ? HELPER_STDERR_MAX : HELPER_STDOUT_MAX) / 1024,
                                     h->flooded_stderr ? "stderr" : "stdout", operation);
        if (h->cancelled)
                return external_strdup_printf("External CA \"%s\": helper %s was stopped during %s: certkeeperd is "
                                     "stopping",
                                     p->provider.name, p->argv[0], operation);
        if (h->timed_out)
                return external_strdup_printf("External CA \"%s\": helper %s did not finish %s within %u s and was "
                                     "killed%s%s",
                                     p->provider.name, p->argv[0], operation, p->timeout_sec,
                                     isempty(line) ? "" : "; it said: ", line);
        if (h->signal != 0)
                return external_strdup_printf("External CA \"%s\": helper %s was killed by signal SIG%s during %s%s%s",
                                     p->provider.name, p->argv[0], strempty(sigabbrev_np(h->signal)),
                                     operation, isempty(line) ? "" : "; it said: ", line);
        if (h->exit_code < 0)
                return external_strdup_printf("External CA \"%s\": helper %s vanished during %s",
                                     p->provider.name, p->argv[0], operation);
        return NULL;
}

/* The helper's own words: stdout by protocol, else the first line of stderr. */
char *external_helper_message(const HelperRun *h) {
        _cleanup_free_ char *s = external_text_sanitize(h->out, h->out_len, HELPER_MESSAGE_MAX);

        if (!s)
                return NULL;
        if (!isempty(s))
                return TAKE_PTR(s);
        free(s);
        s = external_first_line(h->err, h->err_len);
        if (!s || !isempty(s))
                return TAKE_PTR(s);
        return strdup("(no message)");
}
