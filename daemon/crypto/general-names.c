/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Names in certificates: DNS names (validation, normalisation, A-labels). */

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
                return set_error(ret_error, -EINVAL, "'': empty DNS name");

        len = strlen(name);
        q = quote_untrusted(name, len);
        if (!q)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++)
                if ((unsigned char) name[i] >= 0x80)
                        return set_error(ret_error, -EINVAL,
                                         "'%s': contains non-ASCII characters; internationalised names must "
                                         "be given in their A-label (xn--) form",
                                         q);

        /* One trailing dot makes the name absolute; it is not part of what goes in a certificate. */
        if (name[len - 1] == '.')
                len--;
        if (len == 0)
                return set_error(ret_error, -EINVAL, "'%s': empty DNS name", q);
        if (len > DNS_NAME_MAX)
                return set_error(ret_error, -EINVAL, "'%s': name is %zu characters long, more than %u", q,
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
                        return set_error(ret_error, -EINVAL, "'%s': empty label", q);
                if (l > DNS_LABEL_MAX)
                        return set_error(ret_error, -EINVAL,
                                         "'%s': label '%s' is %zu characters long, more than %u", q, ql, l,
                                         DNS_LABEL_MAX);

                if (memchr(label, '*', l)) {
                        if (l != 1)
                                return set_error(
                                        ret_error, -EINVAL,
                                        "'%s': label '%s' contains '*'; a wildcard must be the whole "
                                        "leftmost label",
                                        q, ql);
                        if (index != 0)
                                return set_error(
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
                                        return set_error(ret_error, -EINVAL,
                                                         "'%s': label '%s' contains '%c'", q, ql, c);
                                return set_error(ret_error, -EINVAL,
                                                 "'%s': label '%s' contains the control character \\x%02x",
                                                 q, ql, (unsigned char) c);
                        }
                        if (label[0] == '-')
                                return set_error(ret_error, -EINVAL, "'%s': label '%s' starts with a hyphen",
                                                 q, ql);
                        if (label[l - 1] == '-')
                                return set_error(ret_error, -EINVAL, "'%s': label '%s' ends with a hyphen",
                                                 q, ql);
                        if (l >= 4 && strncasecmp(label, "xn--", 4) == 0 &&
                            !punycode_valid(label + 4, l - 4))
                                return set_error(ret_error, -EINVAL,
                                                 "'%s': label '%s' is not a valid A-label (bad punycode)", q,
                                                 ql);
                }

                n_labels++;
                if (!dot)
                        break;
                label = dot + 1;
        }

        if (n_labels < 2)
                return set_error(ret_error, -EINVAL, "'%s': a certificate name needs at least two labels",
                                 q);
        /* RFC 3696 §2: a top-level label is never all-numeric; such a "name" is an IP address. */
        if (all_numeric)
                return set_error(ret_error, -EINVAL,
                                 "'%s': the last label is all-numeric (an IP address is not a DNS name)", q);

        for (char *p = copy; *p; p++)
                *p = (char) tolower((unsigned char) *p);

        if (ret_normalized)
                *ret_normalized = TAKE_PTR(copy);
        return 0;
}
