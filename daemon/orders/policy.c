/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>

#include "policy.h"

/* After macro.h: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <glib.h>

#define NAME_SHOWN_MAX 256U

/* Names come from the requester: keep control characters and non-ASCII bytes
 * (valid names are ASCII; IDNs arrive as A-labels) out of messages, and bound
 * their length. Returns a GLib string. */
static char *escape_name(const char *s) {
        GString *out = g_string_new(NULL);

        for (const char *p = strempty(s); *p; p++) {
                unsigned char ch = (unsigned char) *p;

                if (out->len >= NAME_SHOWN_MAX) {
                        g_string_append(out, "...");
                        break;
                }
                if (ch < 0x20 || ch >= 0x7f || ch == '\'' || ch == '\\')
                        g_string_append_printf(out, "\\x%02x", ch);
                else
                        g_string_append_c(out, (char) ch);
        }
        return g_string_free(out, false);
}

/* The form names are compared in: ASCII lower-case (A-labels are ASCII, so
 * "XN--BCHER-KVA" and "xn--bcher-kva" are the same label), one trailing dot
 * dropped. */
static char *name_normalize(const char *s) {
        char *n = g_ascii_strdown(s, -1);
        size_t l = strlen(n);

        if (l > 0 && n[l - 1] == '.')
                n[l - 1] = 0;
        return n;
}

/* '*' matches any run of characters, which here never includes '.': the
 * caller matches label by label. */
static bool label_match(const char *pattern, const char *s) {
        const char *star = NULL, *resume = NULL;

        while (*s) {
                if (*pattern == '*') {
                        star = pattern++;
                        resume = s;
                } else if (*pattern == *s) {
                        pattern++;
                        s++;
                } else if (star) {
                        pattern = star + 1;
                        s = ++resume;
                } else
                        return false;
        }
        while (*pattern == '*')
                pattern++;
        return *pattern == 0;
}

static bool label_is_ldh(const char *l) {
        return *l && strspn(l, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(l);
}

/* A glob matches a plain name when both have the same number of labels and
 * each glob label matches the name's label ('*' never crosses a dot).
 *
 * A wildcard name "*.REST" stands for every name "L.REST" with L any single
 * label (that is what a wildcard certificate is valid for, RFC 6125 6.4.3).
 * The glob must therefore cover all of them: the same number of labels, a
 * first glob label made only of '*' (so that it matches every L), and the
 * remaining labels matching REST. Consequences:
 *   "*.example.com"   is allowed by "*.example.com", not by "example.com"
 *                     (a different name) nor by "*.com" (which covers
 *                     "example.com" but not "x.example.com");
 *   "*.a.example.com" is not allowed by "*.example.com": it stands for
 *                     "x.a.example.com", two labels below example.com;
 *   "*.example.com"   is not allowed by "w*.example.com": it would also
 *                     stand for "mail.example.com".
 * A name with '*' anywhere but as its whole first label is not a name a
 * certificate can carry, and matches nothing. */
bool policy_domain_match(const char *glob, const char *name) {
        g_autofree char *g = NULL, *n = NULL;
        g_auto(GStrv) gl = NULL, nl = NULL;
        bool wildcard;

        if (isempty(glob) || isempty(name))
                return false;

        g = name_normalize(glob);
        n = name_normalize(name);
        if (!domain_glob_valid(g) || isempty(n) || strlen(n) > DNS_NAME_MAX)
                return false;

        gl = g_strsplit(g, ".", -1);
        nl = g_strsplit(n, ".", -1);
        if (g_strv_length(gl) != g_strv_length(nl))
                return false;

        wildcard = streq(nl[0], "*");
        for (size_t i = 0; nl[i]; i++) {
                if (i == 0 && wildcard) {
                        if (strspn(gl[0], "*") != strlen(gl[0]))
                                return false;
                        continue;
                }
                if (!label_is_ldh(nl[i]) || !label_match(gl[i], nl[i]))
                        return false;
        }
        return true;
}

bool policy_glob_valid(const char *glob) {
        return domain_glob_valid(glob);
}

void policy_verdict_done(PolicyVerdict *v) {
        if (!v)
                return;
        for (size_t i = 0; i < v->n_violations; i++)
                free(v->violations[i].message);
        free(v->violations);
        *v = (PolicyVerdict) { .violations = NULL };
}

bool policy_verdict_is_hard_fail(const PolicyVerdict *v) {
        if (!v)
                return false;
        for (size_t i = 0; i < v->n_violations; i++)
                if (v->violations[i].enforcement == ENFORCEMENT_HARD)
                        return true;
        return false;
}

_printf_(4, 5) static int verdict_add(PolicyVerdict *v, const char *rule, Enforcement enforcement,
                                      const char *format, ...) {
        PolicyViolation *n;
        char *body = NULL, *message = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&body, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = asprintf(&message, "%s: %s", rule, body);
        free(body);
        if (r < 0)
                return -ENOMEM;

        n = realloc(v->violations, (v->n_violations + 1) * sizeof(PolicyViolation));
        if (!n) {
                free(message);
                return -ENOMEM;
        }
        v->violations = n;
        v->violations[v->n_violations++] = (PolicyViolation) {
                .rule = rule,
                .enforcement = enforcement,
                .message = message,
                .detail = message + strlen(rule) + 2,
        };
        return 0;
}

static bool name_allowed(const PolicyConfig *p, const char *name) {
        for (char **g = p->allowed_domains; *g; g++)
                if (policy_domain_match(*g, name))
                        return true;
        return false;
}

static bool domains_restricted(const PolicyConfig *p) {
        /* Not configured, or configured empty: any domain. */
        return p->allowed_domains_set && p->allowed_domains && p->allowed_domains[0];
}

/* The names of a request by their kind (DESIGN.md: an IP literal is an iPAddress entry, a
 * string with a URI scheme a URI entry, anything else a DNS name). */
typedef struct PolicyNames {
        GPtrArray *dns, *ip, *uri;      /* borrowed strings */
} PolicyNames;

/* AllowedDomains= governs DNS names. Where no rule of their own is configured, it also
 * governs the other kinds, so that a policy written to restrict names keeps restricting
 * every name: an IP address (without AllowedNetworks=) matches no domain glob, and a URI
 * (without AllowedURIPrefixes=) is allowed by its host, which needs a host to begin with. */
static int check_allowed_domains(const PolicyConfig *p, const PolicyNames *n, PolicyVerdict *v) {
        g_autofree char *shown = NULL, *globs = NULL;

        if (!domains_restricted(p))
                return 0;
        globs = g_strjoinv(" ", p->allowed_domains);

        for (size_t i = 0; i < n->dns->len; i++) {
                const char *name = g_ptr_array_index(n->dns, i);

                if (name_allowed(p, name))
                        continue;
                shown = escape_name(name);
                return verdict_add(v, "AllowedDomains", p->allowed_domains_enforcement, "'%s' matches none of %s",
                                   shown, globs);
        }
        if (!p->allowed_networks_set && n->ip->len > 0) {
                shown = escape_name(g_ptr_array_index(n->ip, 0));
                return verdict_add(v, "AllowedDomains", p->allowed_domains_enforcement,
                                   "'%s' is an IP address, which none of %s matches (AllowedNetworks= allows "
                                   "IP addresses)",
                                   shown, globs);
        }
        if (p->allowed_uri_prefixes_set)
                return 0;
        for (size_t i = 0; i < n->uri->len; i++) {
                const char *uri = g_ptr_array_index(n->uri, i);
                g_autofree char *host_shown = NULL;
                _cleanup_free_ char *host = NULL;
                int r = uri_get_host(uri, &host);

                if (r < 0 && r != -EINVAL)
                        return r;
                if (r > 0 && san_type(host) == SAN_IP) {
                        if (p->allowed_networks_set)
                                continue; /* AllowedNetworks= decides */
                } else if (r > 0 && name_allowed(p, host))
                        continue;
                shown = escape_name(uri);
                if (r <= 0)
                        return verdict_add(v, "AllowedDomains", p->allowed_domains_enforcement,
                                           "'%s' has no host for %s to match (AllowedURIPrefixes= allows URIs)",
                                           shown, globs);
                host_shown = escape_name(host);
                return verdict_add(v, "AllowedDomains", p->allowed_domains_enforcement,
                                   "'%s': its host '%s' matches none of %s (AllowedURIPrefixes= allows URIs)",
                                   shown, host_shown, globs);
        }
        return 0;
}

static bool address_allowed(const PolicyConfig *p, const char *text) {
        uint8_t addr[16];
        int l = ip_address_parse(text, addr);

        if (l < 0)
                return false;
        for (char **c = p->allowed_networks; c && *c; c++) {
                IpNetwork net;
                if (ip_network_parse(*c, &net, NULL) >= 0 && ip_network_contains(&net, addr, (size_t) l))
                        return true;
        }
        return false;
}

/* AllowedNetworks= governs IP addresses, and the IP hosts of URIs when AllowedURIPrefixes= is
 * not configured. */
static int check_allowed_networks(const PolicyConfig *p, const PolicyNames *n, PolicyVerdict *v) {
        g_autofree char *shown = NULL, *nets = NULL;

        if (!p->allowed_networks_set || !p->allowed_networks)
                return 0;
        nets = g_strjoinv(" ", p->allowed_networks);

        for (size_t i = 0; i < n->ip->len; i++) {
                const char *ip = g_ptr_array_index(n->ip, i);

                if (address_allowed(p, ip))
                        continue;
                shown = escape_name(ip);
                return verdict_add(v, "AllowedNetworks", p->allowed_networks_enforcement, "'%s' is in none of %s",
                                   shown, nets);
        }
        if (p->allowed_uri_prefixes_set)
                return 0;
        for (size_t i = 0; i < n->uri->len; i++) {
                const char *uri = g_ptr_array_index(n->uri, i);
                _cleanup_free_ char *host = NULL;
                g_autofree char *host_shown = NULL;

                if (uri_get_host(uri, &host) <= 0 || san_type(host) != SAN_IP || address_allowed(p, host))
                        continue;
                shown = escape_name(uri);
                host_shown = escape_name(host);
                return verdict_add(v, "AllowedNetworks", p->allowed_networks_enforcement,
                                   "'%s': its host '%s' is in none of %s", shown, host_shown, nets);
        }
        return 0;
}

/* A prefix ends where a part of the URI does: "spiffe://example.org/ns/prod" allows
 * "spiffe://example.org/ns/prod" and ".../ns/prod/sa/web", not ".../ns/production" nor
 * "spiffe://example.org.evil.test/"; a prefix that ends in a delimiter ("urn:uuid:",
 * ".../ns/") allows whatever follows it. */
bool policy_uri_prefix_match(const char *prefix, const char *uri) {
        size_t l;

        if (isempty(prefix) || isempty(uri))
                return false;
        l = strlen(prefix);
        if (strncmp(uri, prefix, l) != 0)
                return false;
        if (strchr("/:?#=&", prefix[l - 1]))
                return true;
        return uri[l] == 0 || strchr("/?#", uri[l]);
}

static int check_allowed_uri_prefixes(const PolicyConfig *p, const PolicyNames *n, PolicyVerdict *v) {
        g_autofree char *shown = NULL, *prefixes = NULL;

        if (!p->allowed_uri_prefixes_set || !p->allowed_uri_prefixes)
                return 0;

        for (size_t i = 0; i < n->uri->len; i++) {
                const char *uri = g_ptr_array_index(n->uri, i);
                _cleanup_free_ char *norm = san_lookup_form(uri);
                bool ok = false;

                if (!norm)
                        return -ENOMEM;
                for (char **pre = p->allowed_uri_prefixes; *pre && !ok; pre++)
                        ok = policy_uri_prefix_match(*pre, norm);
                if (ok)
                        continue;
                shown = escape_name(uri);
                prefixes = g_strjoinv(" ", p->allowed_uri_prefixes);
                return verdict_add(v, "AllowedURIPrefixes", p->allowed_uri_prefixes_enforcement,
                                   "'%s' starts with none of %s", shown, prefixes);
        }
        return 0;
}

static int check_allow_wildcards(const PolicyConfig *p, GPtrArray *names, PolicyVerdict *v) {
        if (p->allow_wildcards)
                return 0;

        /* Any '*' at all in a DNS name: a malformed wildcard is no less a wildcard. (A '*' in
         * a URI's path is a character like others; in its host the URI is refused anyway.) */
        for (size_t i = 0; i < names->len; i++) {
                const char *name = g_ptr_array_index(names, i);
                g_autofree char *shown = NULL;

                if (!strchr(name, '*'))
                        continue;
                shown = escape_name(name);
                return verdict_add(v, "AllowWildcards", p->allow_wildcards_enforcement,
                                   "'%s' is a wildcard name, and wildcards are not allowed", shown);
        }
        return 0;
}

/* Always evaluated: the default allows exactly the contract's algorithms, so
 * a key that is none of them ("rsa-1024", "ec-521", "ed448", "unknown") is a
 * violation even when AllowedKeyAlgorithms= is not configured. */
static int check_allowed_key_algorithms(const PolicyConfig *p, const PolicyRequest *req, PolicyVerdict *v) {
        KeyAlgorithm a = key_algorithm_from_string(req->key_algorithm);
        g_autofree char *shown = NULL;
        g_autoptr(GString) allowed = g_string_new(NULL);

        if (a != KEY_ALGORITHM_INVALID && p->allowed_key_algorithms[a])
                return 0;

        for (KeyAlgorithm i = 0; i < _KEY_ALGORITHM_MAX; i++)
                if (p->allowed_key_algorithms[i])
                        g_string_append_printf(allowed, "%s%s", allowed->len > 0 ? " " : "",
                                               key_algorithm_to_string(i));
        shown = escape_name(isempty(req->key_algorithm) ? "unknown" : req->key_algorithm);
        return verdict_add(v, "AllowedKeyAlgorithms", p->allowed_key_algorithms_enforcement, "'%s' is not one of %s",
                           shown, allowed->len > 0 ? allowed->str : "(none allowed)");
}

static int check_min_rsa_bits(const PolicyConfig *p, const PolicyRequest *req, PolicyVerdict *v) {
        const char *alg = strempty(req->key_algorithm);
        unsigned bits = req->rsa_bits;
        g_autofree char *shown = NULL;

        if (!g_str_has_prefix(alg, "rsa-") && bits == 0)
                return 0; /* not RSA */
        if (bits == 0) {
                /* Fall back to the size in the description; an unreadable one is 0 bits. */
                const char *n = alg + STRLEN("rsa-");
                if (*n && strlen(n) <= 5 && strspn(n, "0123456789") == strlen(n))
                        bits = (unsigned) strtoul(n, NULL, 10);
        }
        if (bits >= p->min_rsa_bits)
                return 0;

        shown = escape_name(isempty(req->key_algorithm) ? "rsa" : req->key_algorithm);
        return verdict_add(v, "MinRSABits", p->min_rsa_bits_enforcement,
                           "'%s' has %u bits, fewer than the minimum of %u", shown, bits, p->min_rsa_bits);
}

static int check_max_validity_days(const PolicyConfig *p, const PolicyRequest *req, PolicyVerdict *v) {
        if (p->max_validity_days == 0 || req->validity_days <= p->max_validity_days)
                return 0;
        return verdict_add(v, "MaxValidityDays", p->max_validity_days_enforcement,
                           "%u days exceeds the maximum of %u days", req->validity_days, p->max_validity_days);
}

static int check_max_sans(const PolicyConfig *p, const PolicyRequest *req, PolicyVerdict *v) {
        g_autoptr(GHashTable) distinct = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        unsigned n;

        if (p->max_sans == 0 || !req->dns_names)
                return 0; /* 0: no limit */

        /* Distinct as names: "WWW.example.com." and "www.example.com" are one, and so are
         * "2001:db8::1" and "2001:DB8:0::1". */
        for (char *const *s = req->dns_names; *s; s++) {
                char *form = san_lookup_form(*s);
                if (!form)
                        return -ENOMEM;
                g_hash_table_add(distinct, g_strdup(form));
                free(form);
        }

        n = g_hash_table_size(distinct);
        if (n <= p->max_sans)
                return 0;
        return verdict_add(v, "MaxSANs", p->max_sans_enforcement, "%u distinct SANs exceed the maximum of %u", n,
                           p->max_sans);
}

int policy_evaluate(const PolicyConfig *p, const PolicyRequest *req, PolicyVerdict *ret) {
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        PolicyVerdict v = { .violations = NULL };
        int r;

        if (!p || !req || !ret)
                return -EINVAL;

        /* The CN is a name the certificate will carry: it is checked like a SAN. */
        if (!isempty(req->common_name))
                g_ptr_array_add(names, (char *) req->common_name);
        for (char *const *s = req->dns_names; s && *s; s++)
                g_ptr_array_add(names, *s);

        g_autoptr(GPtrArray) dns = g_ptr_array_new(), ip = g_ptr_array_new(), uri = g_ptr_array_new();
        for (size_t i = 0; i < names->len; i++) {
                char *name = g_ptr_array_index(names, i);
                SanType t = san_type(name);
                g_ptr_array_add(t == SAN_IP ? ip : t == SAN_URI ? uri : dns, name);
        }
        const PolicyNames n = { .dns = dns, .ip = ip, .uri = uri };

        r = check_allowed_domains(p, &n, &v);
        if (r >= 0)
                r = check_allowed_networks(p, &n, &v);
        if (r >= 0)
                r = check_allowed_uri_prefixes(p, &n, &v);
        if (r >= 0)
                r = check_allow_wildcards(p, dns, &v);
        if (r >= 0)
                r = check_allowed_key_algorithms(p, req, &v);
        if (r >= 0)
                r = check_min_rsa_bits(p, req, &v);
        if (r >= 0)
                r = check_max_validity_days(p, req, &v);
        if (r >= 0)
                r = check_max_sans(p, req, &v);
        if (r < 0) {
                policy_verdict_done(&v);
                return r;
        }

        *ret = v;
        return 0;
}
