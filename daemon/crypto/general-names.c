/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Names in certificates: DNS names (validation, normalisation, A-labels), IP addresses
 * and networks, URIs, and the GENERAL_NAME of each. */

#include <arpa/inet.h>
#include <ctype.h>

#include "x509-internal.h"
#include "x509.h"

/* RFC 3492 decoding, used only to check that an A-label is well-formed punycode
 * that decodes to at least one non-ASCII code point. */
static bool punycode_valid(const char *in, size_t len) {
        enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700, INITIAL_BIAS = 72, INITIAL_N = 128 };
        const uint32_t maxint = 0x7fffffffU;
        uint32_t n = INITIAL_N, i = 0, bias = INITIAL_BIAS, out = 0;
        size_t b = 0, pos;
        bool non_basic = false;

        if (len == 0)
                return false;

        for (size_t j = 0; j < len; j++)
                if (in[j] == '-')
                        b = j;
        /* Basic code points before the last delimiter (an LDH label has no others). */
        out = (uint32_t) b;
        pos = b > 0 ? b + 1 : 0;
        if (pos >= len)
                return false; /* nothing encoded: not an A-label */

        while (pos < len) {
                uint32_t oldi = i, w = 1;

                for (uint32_t k = BASE;; k += BASE) {
                        uint32_t digit, t;
                        char c;

                        if (pos >= len)
                                return false;
                        c = in[pos++];
                        if (c >= '0' && c <= '9')
                                digit = (uint32_t) (c - '0') + 26;
                        else if (c >= 'a' && c <= 'z')
                                digit = (uint32_t) (c - 'a');
                        else if (c >= 'A' && c <= 'Z')
                                digit = (uint32_t) (c - 'A');
                        else
                                return false;

                        if (digit > (maxint - i) / w)
                                return false;
                        i += digit * w;
                        t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
                        if (digit < t)
                                break;
                        if (w > maxint / (BASE - t))
                                return false;
                        w *= BASE - t;
                }

                out++;
                /* adapt() */
                uint32_t delta = oldi == 0 ? (i - oldi) / DAMP : (i - oldi) / 2, k = 0;
                delta += delta / out;
                while (delta > ((BASE - TMIN) * TMAX) / 2) {
                        delta /= BASE - TMIN;
                        k += BASE;
                }
                bias = k + (BASE - TMIN + 1) * delta / (delta + SKEW);

                if (i / out > maxint - n)
                        return false;
                n += i / out;
                i %= out;
                if (n < 0x80 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff))
                        return false;
                non_basic = true;
                i++;
        }

        return non_basic;
}

int dns_name_normalize(const char *name, char **ret_normalized, char **ret_error) {
        _cleanup_free_ char *q = NULL, *copy = NULL;
        size_t len, n_labels = 0;

        if (isempty(name))
                return ret_error_set(ret_error, -EINVAL, "'': empty DNS name");

        len = strlen(name);
        q = quote_untrusted(name, len);
        if (!q)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++)
                if ((unsigned char) name[i] >= 0x80)
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': contains non-ASCII characters; internationalised names must "
                                         "be given in their A-label (xn--) form",
                                         q);

        /* One trailing dot makes the name absolute; it is not part of what goes in a certificate. */
        if (name[len - 1] == '.')
                len--;
        if (len == 0)
                return ret_error_set(ret_error, -EINVAL, "'%s': empty DNS name", q);
        if (len > DNS_NAME_MAX)
                return ret_error_set(ret_error, -EINVAL, "'%s': name is %zu characters long, more than %u", q,
                                 len, DNS_NAME_MAX);

        copy = strndup(name, len);
        if (!copy)
                return -ENOMEM;

        const char *label = copy;
        bool all_numeric = false;
        for (size_t index = 0;; index++) {
                const char *dot = strchr(label, '.');
                size_t l = dot ? (size_t) (dot - label) : strlen(label);
                _cleanup_free_ char *ql = quote_untrusted(label, l);

                if (!ql)
                        return -ENOMEM;
                if (l == 0)
                        return ret_error_set(ret_error, -EINVAL, "'%s': empty label", q);
                if (l > DNS_LABEL_MAX)
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': label '%s' is %zu characters long, more than %u", q, ql, l,
                                         DNS_LABEL_MAX);

                if (memchr(label, '*', l)) {
                        if (l != 1)
                                return ret_error_set(
                                        ret_error, -EINVAL,
                                        "'%s': label '%s' contains '*'; a wildcard must be the whole "
                                        "leftmost label",
                                        q, ql);
                        if (index != 0)
                                return ret_error_set(
                                        ret_error, -EINVAL,
                                        "'%s': wildcard '*' is only allowed as the whole leftmost label", q);
                } else {
                        all_numeric = true;
                        for (size_t i = 0; i < l; i++) {
                                char c = label[i];
                                if (isdigit((unsigned char) c))
                                        continue;
                                all_numeric = false;
                                if (isalpha((unsigned char) c) || c == '-')
                                        continue;
                                if (c >= 0x20 && c < 0x7f)
                                        return ret_error_set(ret_error, -EINVAL,
                                                         "'%s': label '%s' contains '%c'", q, ql, c);
                                return ret_error_set(ret_error, -EINVAL,
                                                 "'%s': label '%s' contains the control character \\x%02x",
                                                 q, ql, (unsigned char) c);
                        }
                        if (label[0] == '-')
                                return ret_error_set(ret_error, -EINVAL, "'%s': label '%s' starts with a hyphen",
                                                 q, ql);
                        if (label[l - 1] == '-')
                                return ret_error_set(ret_error, -EINVAL, "'%s': label '%s' ends with a hyphen",
                                                 q, ql);
                        if (l >= 4 && strncasecmp(label, "xn--", 4) == 0 &&
                            !punycode_valid(label + 4, l - 4))
                                return ret_error_set(ret_error, -EINVAL,
                                                 "'%s': label '%s' is not a valid A-label (bad punycode)", q,
                                                 ql);
                }

                n_labels++;
                if (!dot)
                        break;
                label = dot + 1;
        }

        if (n_labels < 2)
                return ret_error_set(ret_error, -EINVAL, "'%s': a certificate name needs at least two labels",
                                 q);
        /* RFC 3696 §2: a top-level label is never all-numeric; such a "name" is an IP address. */
        if (all_numeric)
                return ret_error_set(ret_error, -EINVAL,
                                 "'%s': the last label is all-numeric (an IP address is not a DNS name)", q);

        for (char *p = copy; *p; p++)
                *p = (char) tolower((unsigned char) *p);

        if (ret_normalized)
                *ret_normalized = TAKE_PTR(copy);
        return 0;
}

/* ---- IP addresses and networks ------------------------------------------------------------- */

int ip_address_parse(const char *s, uint8_t ret[static 16]) {
        uint8_t buf[16];

        if (isempty(s))
                return -EINVAL;
        if (inet_pton(AF_INET, s, buf) == 1) {
                memcpy(ret, buf, 4);
                return 4;
        }
        if (inet_pton(AF_INET6, s, buf) == 1) {
                memcpy(ret, buf, 16);
                return 16;
        }
        return -EINVAL;
}

int ip_address_to_string(const uint8_t *addr, size_t len, char ret[static INET6_ADDRSTRLEN]) {
        if ((len != 4 && len != 16) || !inet_ntop(len == 4 ? AF_INET : AF_INET6, addr, ret, INET6_ADDRSTRLEN))
                return -EINVAL;
        return 0;
}

/* What was meant to be an IP address: digits and dots only ("10.0.0.256", "10.0.5"), or hex
 * digits, dots and at least one colon ("fd00:1:2", "::1::2"), or an IPv6 literal in brackets.
 * Such strings are refused as bad addresses rather than read as DNS names or URIs. */
static bool looks_like_ip(const char *s) {
        size_t l = strcspn(s, "%"); /* an IPv6 zone index ("fe80::1%eth0") */

        if (l == 0)
                return false;
        if (s[0] == '[')
                return true;
        if (strspn(s, "0123456789.") == l)
                return true;
        return strchr(s, ':') && strspn(s, "0123456789abcdefABCDEF:.") == l;
}

/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'. Returns its
 * length, or 0. "host:443" is a name with a port, not a URI of scheme "host": a scheme-specific
 * part made of digits alone (or nothing) does not make a URI. */
static size_t uri_scheme_length(const char *s) {
        size_t l;

        if (!isalpha((unsigned char) s[0]))
                return 0;
        l = 1 + strspn(s + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
        if (s[l] != ':')
                return 0;
        if (strspn(s + l + 1, "0123456789") == strlen(s + l + 1))
                return 0;
        return l;
}

SanType san_type(const char *name) {
        uint8_t addr[16];

        if (isempty(name))
                return SAN_DNS;
        if (ip_address_parse(name, addr) > 0 || looks_like_ip(name))
                return SAN_IP;
        if (uri_scheme_length(name) > 0)
                return SAN_URI;
        return SAN_DNS;
}

const char *san_type_to_string(SanType t) {
        switch (t) {
        case SAN_DNS:
                return "DNS name";
        case SAN_IP:
                return "IP address";
        case SAN_URI:
                return "URI";
        }
        return "name";
}

static int ip_normalize(const char *name, const char *q, char **ret_normalized, char **ret_error) {
        uint8_t addr[16];
        char buf[INET6_ADDRSTRLEN];
        int l = ip_address_parse(name, addr);

        if (l < 0) {
                size_t n = strlen(name);
                if (name[0] == '[' && n > 2 && name[n - 1] == ']')
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': an IP address is given without brackets", q);
                if (strchr(name, '%') && strchr(name, ':'))
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': an address with a zone index cannot be certified", q);
                if (strchr(name, ':'))
                        return ret_error_set(ret_error, -EINVAL, "'%s': not a valid IPv6 address", q);
                return ret_error_set(ret_error, -EINVAL,
                                 "'%s': not a valid IPv4 address (four numbers 0..255, no leading zeros) "
                                 "nor a DNS name (a DNS name's last label is never all-numeric)",
                                 q);
        }
        if (ip_address_to_string(addr, (size_t) l, buf) < 0)
                return -EINVAL;
        if (ret_normalized) {
                *ret_normalized = strdup(buf);
                if (!*ret_normalized)
                        return -ENOMEM;
        }
        return 0;
}

int ip_network_parse(const char *s, IpNetwork *ret, char **ret_error) {
        _cleanup_free_ char *q = NULL, *addr_text = NULL;
        const char *slash;
        IpNetwork n = {0};
        int l;

        if (isempty(s))
                return ret_error_set(ret_error, -EINVAL, "'': empty network");
        q = quote_untrusted(s, strlen(s));
        if (!q)
                return -ENOMEM;

        slash = strchr(s, '/');
        addr_text = slash ? strndup(s, (size_t) (slash - s)) : strdup(s);
        if (!addr_text)
                return -ENOMEM;
        l = ip_address_parse(addr_text, n.addr);
        if (l < 0)
                return ret_error_set(ret_error, -EINVAL, "'%s': not an IPv4 or IPv6 address", q);
        n.len = (unsigned) l;
        n.prefix = n.len * 8;
        if (slash) {
                const char *p = slash + 1;
                if (*p == 0 || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p) || (p[0] == '0' && p[1]))
                        return ret_error_set(ret_error, -EINVAL, "'%s': the prefix length is not a number", q);
                n.prefix = (unsigned) strtoul(p, NULL, 10);
                if (n.prefix > n.len * 8)
                        return ret_error_set(ret_error, -EINVAL, "'%s': prefix length %u, more than the %u bits of an %s address",
                                         q, n.prefix, n.len * 8, n.len == 4 ? "IPv4" : "IPv6");
        }

        /* Bits after the prefix are a typo for another network: say which one was meant. */
        for (unsigned bit = n.prefix; bit < n.len * 8; bit++)
                if (n.addr[bit / 8] & (0x80U >> (bit % 8))) {
                        IpNetwork meant = n;
                        _cleanup_free_ char *m = NULL;
                        for (unsigned b = n.prefix; b < n.len * 8; b++)
                                meant.addr[b / 8] &= (uint8_t) ~(0x80U >> (b % 8));
                        m = ip_network_to_string(&meant);
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': bits are set after the first %u (the network is %s)", q, n.prefix,
                                         strempty(m));
                }

        if (ret)
                *ret = n;
        return 0;
}

char *ip_network_to_string(const IpNetwork *n) {
        char buf[INET6_ADDRSTRLEN], *ret;

        if (!n || ip_address_to_string(n->addr, n->len, buf) < 0)
                return NULL;
        if (asprintf(&ret, "%s/%u", buf, n->prefix) < 0)
                return NULL;
        return ret;
}

bool ip_network_contains(const IpNetwork *n, const uint8_t *addr, size_t len) {
        if (!n || !addr || len != n->len)
                return false;
        for (unsigned bit = 0; bit < n->prefix; bit++) {
                uint8_t mask = (uint8_t) (0x80U >> (bit % 8));
                if ((n->addr[bit / 8] & mask) != (addr[bit / 8] & mask))
                        return false;
        }
        return true;
}

/* ---- URIs ---------------------------------------------------------------------------------- */

static bool uri_char_ok(char c) {
        /* RFC 3986 2.2, 2.3: unreserved and reserved characters; '%' is checked by the caller. */
        return isalnum((unsigned char) c) || strchr("-._~:/?#[]@!$&'()*+,;=", c);
}

static bool is_hex(char c) {
        return isxdigit((unsigned char) c);
}

/* Where the host of a URI's authority is: the authority starts after "scheme://" and ends at
 * '/', '?', '#' or the end; the host follows any "userinfo@" and ends at ':' (the port) unless
 * it is an IP literal in brackets. Returns false when the URI has no authority. */
static bool uri_host_span(const char *uri, size_t scheme_len, size_t *ret_start, size_t *ret_len,
                          size_t *ret_authority_end) {
        const char *a, *end, *at, *h, *he;

        if (strncmp(uri + scheme_len, "://", 3) != 0)
                return false;
        a = uri + scheme_len + 3;
        end = a + strcspn(a, "/?#");
        at = memrchr(a, '@', (size_t) (end - a));
        h = at ? at + 1 : a;
        if (*h == '[') {
                he = memchr(h, ']', (size_t) (end - h));
                he = he ? he + 1 : end;
        } else {
                he = memchr(h, ':', (size_t) (end - h));
                if (!he)
                        he = end;
        }
        *ret_start = (size_t) (h - uri);
        *ret_len = (size_t) (he - h);
        *ret_authority_end = (size_t) (end - uri);
        return true;
}

static int uri_normalize(const char *name, const char *q, char **ret_normalized, char **ret_error) {
        size_t len = strlen(name), scheme_len, host_start, host_len, authority_end;
        _cleanup_free_ char *copy = NULL, *host = NULL, *host_norm = NULL, *err = NULL;

        if (len > URI_MAX)
                return ret_error_set(ret_error, -EINVAL, "'%s': URI is %zu characters long, more than %u", q, len,
                                 URI_MAX);
        for (size_t i = 0; i < len; i++) {
                char c = name[i];
                if (c == '%') {
                        if (i + 2 >= len || !is_hex(name[i + 1]) || !is_hex(name[i + 2]))
                                return ret_error_set(ret_error, -EINVAL,
                                                 "'%s': '%%' in a URI must be followed by two hex digits", q);
                        continue;
                }
                if ((unsigned char) c >= 0x80)
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': contains non-ASCII characters; a URI carries them "
                                         "percent-encoded",
                                         q);
                if (!uri_char_ok(c)) {
                        if (c >= 0x20 && c < 0x7f)
                                return ret_error_set(ret_error, -EINVAL, "'%s': a URI cannot contain '%c'", q, c);
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': a URI cannot contain the control character \\x%02x", q,
                                         (unsigned char) c);
                }
        }

        scheme_len = uri_scheme_length(name);
        if (scheme_len == 0 || name[scheme_len + 1] == 0)
                return ret_error_set(ret_error, -EINVAL, "'%s': a URI needs a scheme and what follows it", q);

        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < scheme_len; i++)
                copy[i] = (char) tolower((unsigned char) copy[i]);

        if (uri_host_span(name, scheme_len, &host_start, &host_len, &authority_end)) {
                /* RFC 5280 4.2.1.6: the host of a URI with an authority is a fully qualified
                 * domain name or an IP address. */
                if (host_len == 0)
                        return ret_error_set(ret_error, -EINVAL, "'%s': the URI's host is empty", q);
                host = strndup(name + host_start, host_len);
                if (!host)
                        return -ENOMEM;
                if (host[0] == '[') {
                        uint8_t addr[16];
                        char buf[INET6_ADDRSTRLEN];
                        _cleanup_free_ char *inner = strndup(host + 1, host_len >= 2 ? host_len - 2 : 0);
                        if (!inner)
                                return -ENOMEM;
                        if (host[host_len - 1] != ']' || ip_address_parse(inner, addr) != 16 ||
                            ip_address_to_string(addr, 16, buf) < 0)
                                return ret_error_set(ret_error, -EINVAL,
                                                 "'%s': the URI's host '%s' is not an IPv6 address in brackets",
                                                 q, host);
                        if (asprintf(&host_norm, "[%s]", buf) < 0)
                                return -ENOMEM;
                } else if (san_type(host) == SAN_IP) {
                        int r = ip_normalize(host, host, &host_norm, &err);
                        if (r < 0)
                                return ret_error_set(ret_error, r, "'%s': the URI's host %s", q, strempty(err));
                } else if (strchr(host, '*')) {
                        return ret_error_set(ret_error, -EINVAL, "'%s': the URI's host '%s' is a wildcard", q, host);
                } else if (strchr(host, '%')) {
                        return ret_error_set(ret_error, -EINVAL,
                                         "'%s': the URI's host '%s' is percent-encoded; give it as an A-label",
                                         q, host);
                } else {
                        int r = dns_name_normalize(host, &host_norm, &err);
                        if (r < 0)
                                return ret_error_set(ret_error, r, "'%s': the URI's host %s", q, strempty(err));
                }
                /* Port: digits only. */
                const char *port = name + host_start + host_len;
                if (*port == ':') {
                        size_t pl = authority_end - (host_start + host_len) - 1;
                        if (strspn(port + 1, "0123456789") < pl)
                                return ret_error_set(ret_error, -EINVAL, "'%s': the URI's port is not a number", q);
                }

                _cleanup_free_ char *rebuilt = NULL;
                if (asprintf(&rebuilt, "%.*s%s%s", (int) host_start, copy, host_norm, copy + host_start + host_len) < 0)
                        return -ENOMEM;
                free(copy);
                copy = TAKE_PTR(rebuilt);
        }

        if (ret_normalized)
                *ret_normalized = TAKE_PTR(copy);
        return 0;
}

int uri_get_host(const char *uri, char **ret_host) {
        size_t scheme_len, start, len, end;
        char *h;

        *ret_host = NULL;
        scheme_len = uri ? uri_scheme_length(uri) : 0;
        if (scheme_len == 0)
                return -EINVAL;
        if (!uri_host_span(uri, scheme_len, &start, &len, &end) || len == 0)
                return 0;
        if (uri[start] == '[' && len >= 2 && uri[start + len - 1] == ']')
                h = strndup(uri + start + 1, len - 2);
        else
                h = strndup(uri + start, len);
        if (!h)
                return -ENOMEM;
        for (char *c = h; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        *ret_host = h;
        return 1;
}

/* ---- any name ------------------------------------------------------------------------------ */

int san_normalize(const char *name, SanType *ret_type, char **ret_normalized, char **ret_error) {
        _cleanup_free_ char *q = NULL;
        SanType t = san_type(name);
        int r;

        if (t == SAN_DNS)
                r = dns_name_normalize(name, ret_normalized, ret_error);
        else {
                q = quote_untrusted(name, strlen(name));
                if (!q)
                        return -ENOMEM;
                r = t == SAN_IP ? ip_normalize(name, q, ret_normalized, ret_error)
                                : uri_normalize(name, q, ret_normalized, ret_error);
        }
        if (r >= 0 && ret_type)
                *ret_type = t;
        return r;
}

int general_name_from_san(const char *name, GENERAL_NAME **ret) {
        GENERAL_NAME *g = NULL;
        ASN1_STRING *s = NULL;
        uint8_t addr[16];
        int type, l;

        if (isempty(name) || !ret)
                return -EINVAL;

        l = ip_address_parse(name, addr);
        if (l > 0) {
                s = ASN1_OCTET_STRING_new();
                if (!s || ASN1_OCTET_STRING_set(s, addr, l) != 1)
                        goto oom;
                type = GEN_IPADD;
        } else {
                s = ASN1_IA5STRING_new();
                if (!s || ASN1_STRING_set(s, name, -1) != 1)
                        goto oom;
                type = san_type(name) == SAN_URI ? GEN_URI : GEN_DNS;
        }
        g = GENERAL_NAME_new();
        if (!g)
                goto oom;
        GENERAL_NAME_set0_value(g, type, s);
        *ret = g;
        return 0;

oom:
        ASN1_STRING_free(s);
        return -ENOMEM;
}

bool general_name_equal_san(const GENERAL_NAME *g, const char *name) {
        int t;
        const ASN1_STRING *v;
        uint8_t addr[16];
        int l;

        if (!g || isempty(name))
                return false;
        v = GENERAL_NAME_get0_value(g, &t);
        switch (t) {
        case GEN_DNS:
                /* DNS names compare case-insensitively. */
                return san_type(name) == SAN_DNS && (size_t) ASN1_STRING_length(v) == strlen(name) &&
                       strncasecmp((const char *) ASN1_STRING_get0_data(v), name, strlen(name)) == 0;
        case GEN_URI:
                return san_type(name) == SAN_URI && (size_t) ASN1_STRING_length(v) == strlen(name) &&
                       memcmp(ASN1_STRING_get0_data(v), name, strlen(name)) == 0;
        case GEN_IPADD:
                l = ip_address_parse(name, addr);
                return l > 0 && ASN1_STRING_length(v) == l && memcmp(ASN1_STRING_get0_data(v), addr, (size_t) l) == 0;
        default:
                return false;
        }
}

bool san_equal(const char *a, const char *b) {
        uint8_t x[16], y[16];
        int lx, ly;

        if (!a || !b)
                return false;
        lx = ip_address_parse(a, x);
        ly = ip_address_parse(b, y);
        if (lx > 0 || ly > 0)
                return lx == ly && memcmp(x, y, (size_t) lx) == 0;
        if (san_type(a) == SAN_URI || san_type(b) == SAN_URI)
                return streq(a, b);
        return strcasecmp(a, b) == 0;
}

char *san_lookup_form(const char *name) {
        uint8_t addr[16];
        char buf[INET6_ADDRSTRLEN];
        char *ret;
        size_t l;
        int al;

        if (!name)
                return NULL;
        al = ip_address_parse(name, addr);
        if (al > 0 && ip_address_to_string(addr, (size_t) al, buf) >= 0)
                return strdup(buf);
        if (san_type(name) == SAN_URI) {
                _cleanup_free_ char *norm = NULL;
                if (uri_normalize(name, "", &norm, NULL) >= 0)
                        return TAKE_PTR(norm);
                return strdup(name);
        }
        ret = strdup(name);
        if (!ret)
                return NULL;
        for (char *c = ret; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        l = strlen(ret);
        if (l > 1 && ret[l - 1] == '.')
                ret[l - 1] = 0;
        return ret;
}

char *san_wildcard_parent(const char *name) {
        const char *dot;
        char *ret;

        if (!name || san_type(name) != SAN_DNS || name[0] == '*')
                return NULL;
        dot = strchr(name, '.');
        if (!dot || dot == name || !strchr(dot + 1, '.'))
                return NULL; /* "*.com" covers no name we look up */
        if (asprintf(&ret, "*%s", dot) < 0)
                return NULL;
        return ret;
}
