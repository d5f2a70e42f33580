/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <time.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "log.h"
#include "spki.h"
#include "x509.h"

/* key_algorithm_to_string() and key_algorithm_from_string() live in key-algorithm.c. */

char *pkey_describe(EVP_PKEY *pkey, unsigned *ret_rsa_bits) {
        char buf[32];

        if (ret_rsa_bits)
                *ret_rsa_bits = 0;

        if (!pkey)
                return strdup("unknown");

        if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")) {
                int bits = EVP_PKEY_get_bits(pkey);
                if (bits <= 0)
                        return strdup("unknown");
                if (ret_rsa_bits)
                        *ret_rsa_bits = (unsigned) bits;
                (void) snprintf(buf, sizeof buf, "rsa-%i", bits);
                return strdup(buf);
        }

        if (EVP_PKEY_is_a(pkey, "EC")) {
                /* Name the curve by its group rather than by the bit count, so that
                 * e.g. brainpoolP256r1 is not passed off as "ec-256" (P-256). */
                char group[64];
                size_t len = 0;

                if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) != 1)
                        return strdup("unknown");
                if (streq(group, "prime256v1") || streq(group, "P-256"))
                        return strdup("ec-256");
                if (streq(group, "secp384r1") || streq(group, "P-384"))
                        return strdup("ec-384");
                if (streq(group, "secp521r1") || streq(group, "P-521"))
                        return strdup("ec-521");
                return strdup("unknown");
        }

        if (EVP_PKEY_is_a(pkey, "ED25519"))
                return strdup("ed25519");
        if (EVP_PKEY_is_a(pkey, "ED448"))
                return strdup("ed448");

        return strdup("unknown");
}

/* Render untrusted input for an error message: printable ASCII as is, other bytes
 * as \xNN, cut after a sane length. The result is always valid UTF-8 (it goes out
 * in D-Bus error replies). */
static char *quote_untrusted(const char *s, size_t len) {
        const size_t max_shown = 300;
        size_t n = MIN(len, max_shown);
        char *ret = malloc(n * 4 + 4), *p = ret;

        if (!ret)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 0x20 && c < 0x7f)
                        *p++ = (char) c;
                else
                        p += sprintf(p, "\\x%02x", c);
        }
        if (n < len) {
                memcpy(p, "...", 3);
                p += 3;
        }
        *p = 0;
        return ret;
}

_printf_(3, 4) static int set_error(char **ret_error, int r, const char *format, ...) {
        if (ret_error) {
                va_list ap;
                char *m = NULL;

                va_start(ap, format);
                if (vasprintf(&m, format, ap) < 0)
                        m = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = m;
        }
        return r;
}

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

static void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

Csr *csr_free(Csr *c) {
        if (!c)
                return NULL;
        X509_PUBKEY_free(c->pubkey);
        free(c->common_name);
        strv_free(c->dns_names);
        free(c->key_algorithm);
        free(c->der);
        free(c);
        return NULL;
}

/* The first CN of a name as UTF-8. Returns 0 and NULL when there is none, -EBADMSG
 * when it cannot be converted or contains a NUL. */
static int name_get_cn(const X509_NAME *name, char **ret) {
        int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        unsigned char *utf8 = NULL;
        int len;

        *ret = NULL;
        if (idx < 0)
                return 0;

        const ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        len = ASN1_STRING_to_UTF8(&utf8, data);
        if (len < 0)
                return -EBADMSG;
        if (memchr(utf8, 0, (size_t) len)) {
                OPENSSL_free(utf8);
                return -EBADMSG;
        }
        *ret = strndup((const char *) utf8, (size_t) len);
        OPENSSL_free(utf8);
        return *ret ? 0 : -ENOMEM;
}

static bool looks_like_pem(const void *data, size_t size) {
        const char *p = data, *end = p + size;

        while (p < end && isspace((unsigned char) *p))
                p++;
        return (size_t) (end - p) >= STRLEN("-----BEGIN") &&
               memcmp(p, "-----BEGIN", STRLEN("-----BEGIN")) == 0;
}

static void general_names_freep(GENERAL_NAMES **p) {
        if (*p)
                GENERAL_NAMES_free(*p);
}

static void x509_extensions_freep(STACK_OF(X509_EXTENSION) * *p) {
        if (*p)
                sk_X509_EXTENSION_pop_free(*p, X509_EXTENSION_free);
}

int x509_pubkey_set_encoded(X509_PUBKEY *dst, const X509_ALGOR *alg, const unsigned char *key, int key_len) {
        ASN1_OBJECT *aobj_copy = NULL;
        int ptype = V_ASN1_UNDEF;
        const void *pval = NULL;
        const ASN1_OBJECT *aobj = NULL;
        void *pval_copy = NULL;
        unsigned char *penc = NULL;

        if (!dst || !alg || !key || key_len <= 0)
                return -EBADMSG;
        X509_ALGOR_get0(&aobj, &ptype, &pval, alg);

        aobj_copy = OBJ_dup(aobj);
        if (!aobj_copy)
                return -ENOMEM;
        if (ptype == V_ASN1_OBJECT)
                pval_copy = OBJ_dup(pval);
        else if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL && pval)
                pval_copy = ASN1_STRING_dup(pval);
        penc = OPENSSL_memdup(key, (size_t) key_len);
        if ((ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL && pval && !pval_copy) || !penc)
                goto fail;

        if (X509_PUBKEY_set0_param(dst, aobj_copy, ptype, pval_copy, penc, key_len) != 1)
                goto fail;
        return 0;

fail:
        ASN1_OBJECT_free(aobj_copy);
        if (ptype == V_ASN1_OBJECT)
                ASN1_OBJECT_free(pval_copy);
        else
                ASN1_STRING_free(pval_copy);
        OPENSSL_free(penc);
        return -ENOMEM;
}

static int x509_pubkey_new_encoded(const X509_ALGOR *alg, const unsigned char *key, int key_len,
                                   X509_PUBKEY **ret) {
        X509_PUBKEY *pub = X509_PUBKEY_new();
        int r;

        if (!pub)
                return -ENOMEM;
        r = x509_pubkey_set_encoded(pub, alg, key, key_len);
        if (r < 0) {
                X509_PUBKEY_free(pub);
                return r;
        }
        *ret = pub;
        return 0;
}

/* CertificationRequest (RFC 2986) exactly as OpenSSL's X509_REQ template reads
 * it, except that the SubjectPublicKeyInfo stays a plain AlgorithmIdentifier and
 * BIT STRING: the X509_PUBKEY item would decode the key through OSSL_DECODER
 * right away, which is most of the cost of d2i_X509_REQ() in OpenSSL 3.0. The
 * info keeps its received encoding (what the signature covers, and what
 * i2d_X509_REQ() writes back). */
typedef struct CkSpki {
        X509_ALGOR *algor;
        ASN1_BIT_STRING *public_key;
} CkSpki;

ASN1_SEQUENCE(CkSpki) = {
        ASN1_SIMPLE(CkSpki, algor, X509_ALGOR),
        ASN1_SIMPLE(CkSpki, public_key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CkSpki)

typedef struct CkReqInfo {
        ASN1_ENCODING enc;
        ASN1_INTEGER *version;
        X509_NAME *subject;
        CkSpki *spki;
        STACK_OF(X509_ATTRIBUTE) *attributes;
} CkReqInfo;

ASN1_SEQUENCE_enc(CkReqInfo, enc, 0) = {
        ASN1_SIMPLE(CkReqInfo, version, ASN1_INTEGER),
        ASN1_SIMPLE(CkReqInfo, subject, X509_NAME),
        ASN1_SIMPLE(CkReqInfo, spki, CkSpki),
        /* [0] IMPLICIT, not optional in RFC 2986, but as lenient as OpenSSL. */
        ASN1_IMP_SET_OF_OPT(CkReqInfo, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CkReqInfo, CkReqInfo)

typedef struct CkReq {
        CkReqInfo *info;
        X509_ALGOR *sig_alg;
        ASN1_BIT_STRING *signature;
} CkReq;

ASN1_SEQUENCE(CkReq) = {
        ASN1_SIMPLE(CkReq, info, CkReqInfo),
        ASN1_SIMPLE(CkReq, sig_alg, X509_ALGOR),
        ASN1_SIMPLE(CkReq, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CkReq)

static void ck_req_freep(CkReq **p) {
        ASN1_item_free((ASN1_VALUE *) *p, ASN1_ITEM_rptr(CkReq));
}

static int base64_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* The plain shape of a PEM CSR: optional leading white space, a BEGIN line for
 * "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST", lines of base64 (padding
 * only at the very end), the matching END line, anything after it. Returns 1
 * with the DER in *ret (malloc'd), 0 for any other shape (headers, other blocks
 * first, odd white space...), which PEM_read_bio_X509_REQ() then handles, or
 * -ENOMEM. Input is bounded by CSR_MAX_SIZE. */
static int pem_csr_decode(const char *data, size_t size, uint8_t **ret, size_t *ret_len) {
        static const char *const labels[] = { "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST" };
        const char *p = data, *end = data + size, *label = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t n_out = 0, n_pad = 0;
        uint32_t acc = 0;
        unsigned n_acc = 0;

        while (p < end && isspace((unsigned char) *p))
                p++;
        /* PEM_read_bio() skips whole lines only: the BEGIN must start a line. */
        if (p > data && p[-1] != '\n')
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(labels) && !label; i++) {
                size_t l = strlen(labels[i]);
                if ((size_t) (end - p) > STRLEN("-----BEGIN ") + l + STRLEN("-----") &&
                    memcmp(p, "-----BEGIN ", STRLEN("-----BEGIN ")) == 0 &&
                    memcmp(p + STRLEN("-----BEGIN "), labels[i], l) == 0 &&
                    memcmp(p + STRLEN("-----BEGIN ") + l, "-----", STRLEN("-----")) == 0)
                        label = labels[i];
        }
        if (!label)
                return 0;
        p += STRLEN("-----BEGIN ") + strlen(label) + STRLEN("-----");
        if (p < end && *p == '\r')
                p++;
        if (p >= end || *p != '\n')
                return 0;
        p++;

        out = malloc(size / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;

        for (;;) {
                const char *eol = memchr(p, '\n', (size_t) (end - p));
                const char *line_end = eol ? eol : end;

                if (line_end > p && line_end[-1] == '\r')
                        line_end--;
                if (line_end - p >= 5 && memcmp(p, "-----", 5) == 0) {
                        size_t l = strlen(label);
                        if ((size_t) (line_end - p) != STRLEN("-----END ") + l + STRLEN("-----") ||
                            memcmp(p, "-----END ", STRLEN("-----END ")) != 0 ||
                            memcmp(p + STRLEN("-----END "), label, l) != 0 ||
                            memcmp(p + STRLEN("-----END ") + l, "-----", STRLEN("-----")) != 0)
                                return 0;
                        break;
                }
                if (!eol || line_end == p)
                        return 0; /* no END line, or an empty line */
                for (const char *c = p; c < line_end; c++) {
                        int v;
                        if (*c == '=') {
                                n_pad++;
                                continue;
                        }
                        v = base64_value((unsigned char) *c);
                        if (v < 0 || n_pad > 0)
                                return 0; /* not base64, or data after padding */
                        acc = (acc << 6) | (uint32_t) v;
                        if (++n_acc == 4) {
                                out[n_out++] = (uint8_t) (acc >> 16);
                                out[n_out++] = (uint8_t) (acc >> 8);
                                out[n_out++] = (uint8_t) acc;
                                acc = 0;
                                n_acc = 0;
                        }
                }
                p = eol + 1;
        }

        /* Whole quantums only: 2 or 3 characters ended by as many '=' as make four. */
        if (n_pad > 2 || (n_acc + n_pad) % 4 != 0 || (n_pad > 0 && n_acc == 0))
                return 0;
        if (n_acc == 2)
                out[n_out++] = (uint8_t) (acc >> 4);
        else if (n_acc == 3) {
                out[n_out++] = (uint8_t) (acc >> 10);
                out[n_out++] = (uint8_t) (acc >> 2);
        }
        if (n_out == 0)
                return 0;
        *ret = TAKE_PTR(out);
        *ret_len = n_out;
        return 1;
}

/* What csr_parse() takes from a request after the signature has been checked,
 * the same for both ways of reading it: CN, SANs and their limits. */
static int csr_fill_names(Csr *c, const X509_NAME *subject, STACK_OF(X509_EXTENSION) *exts,
                          char **ret_error) {
        _cleanup_(general_names_freep) GENERAL_NAMES *gens = NULL;
        int r;

        r = name_get_cn(subject, &c->common_name);
        if (r == -EBADMSG)
                return set_error(ret_error, r, "the request's common name is not a valid string");
        if (r < 0)
                return r;

        if (exts) {
                int crit = -1;
                gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
                if (!gens && crit == -2)
                        return set_error(ret_error, -EBADMSG,
                                         "the request has more than one subjectAltName");
                if (!gens && crit >= 0)
                        return set_error(ret_error, -EBADMSG,
                                         "the request's subjectAltName cannot be parsed");
        }
        ERR_clear_error();

        int n_gens = gens ? sk_GENERAL_NAME_num(gens) : 0;
        if ((size_t) n_gens > SANS_MAX)
                return set_error(ret_error, -EMSGSIZE,
                                 "the request has %i subject alternative names, more than the limit of %u",
                                 n_gens, SANS_MAX);

        c->dns_names = calloc((size_t) n_gens + 1, sizeof(char *));
        if (!c->dns_names)
                return -ENOMEM;
        for (int i = 0; i < n_gens; i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                int type;
                const ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);

                if (type != GEN_DNS)
                        continue;
                const unsigned char *bytes = ASN1_STRING_get0_data(s);
                int l = ASN1_STRING_length(s);
                if (l < 0 || memchr(bytes, 0, (size_t) l))
                        return set_error(ret_error, -EBADMSG,
                                         "a dNSName in the request contains a NUL byte");
                c->dns_names[c->n_dns_names] = strndup((const char *) bytes, (size_t) l);
                if (!c->dns_names[c->n_dns_names])
                        return -ENOMEM;
                c->n_dns_names++;
        }
        return 0;
}

static int csr_set_der(Csr *c, unsigned char *der, int der_len, char **ret_error) {
        if (der_len <= 0)
                return set_error(ret_error, -EBADMSG, "cannot encode the request: %s", openssl_last_error());
        c->der = malloc((size_t) der_len);
        if (!c->der) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(c->der, der, (size_t) der_len);
        c->der_len = (size_t) der_len;
        OPENSSL_free(der);
        return 0;
}

/* The fast way: the request read with our template, the key checked and the
 * signature verified by spki.c, no OSSL_DECODER. Returns 1 with *ret when the
 * request is plainly good, 0 when anything is unusual (an unhandled key type,
 * a bad signature, trailing data, ...): then csr_parse_openssl() decides and
 * explains, exactly as it always has. Errors after the signature check (names)
 * are final either way. */
static int csr_parse_fast(const uint8_t *der, size_t der_len, Csr **ret, char **ret_error) {
        _cleanup_(ck_req_freep) CkReq *req = NULL;
        _cleanup_(csr_freep) Csr *c = NULL;
        const unsigned char *p = der;
        SpkiKey key;
        int r;

        req = (CkReq *) ASN1_item_d2i(NULL, &p, (long) der_len, ASN1_ITEM_rptr(CkReq));
        if (!req || p != der + der_len) {
                ERR_clear_error();
                return 0;
        }
        const CkReqInfo *info = req->info;
        if (ASN1_INTEGER_get(info->version) != 0 || !info->enc.enc || info->enc.len <= 0)
                return 0;
        if (spki_key_load(info->spki->algor, info->spki->public_key, &key) <= 0)
                return 0;
        r = spki_key_verify(&key, req->sig_alg, req->signature, info->enc.enc, (size_t) info->enc.len);
        if (r <= 0)
                return r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        /* The extensions exactly as X509_REQ_get_extensions() finds them (which
         * attribute, which value, how lenient): on a request that only carries the
         * attributes, so that nothing decodes the key. */
        _cleanup_(x509_extensions_freep) STACK_OF(X509_EXTENSION) *exts = NULL;
        {
                _cleanup_(X509_REQ_freep) X509_REQ *attrs = X509_REQ_new();
                if (!attrs)
                        return -ENOMEM;
                for (int i = 0; i < sk_X509_ATTRIBUTE_num(info->attributes); i++)
                        if (X509_REQ_add1_attr(attrs, sk_X509_ATTRIBUTE_value(info->attributes, i)) != 1)
                                return -ENOMEM;
                exts = X509_REQ_get_extensions(attrs);
        }
        r = csr_fill_names(c, info->subject, exts, ret_error);
        if (r < 0)
                return r;

        c->key_algorithm = spki_key_describe(&key, &c->rsa_bits);
        if (!c->key_algorithm)
                return -ENOMEM;
        r = x509_pubkey_new_encoded(info->spki->algor, ASN1_STRING_get0_data(info->spki->public_key),
                                    ASN1_STRING_length(info->spki->public_key), &c->pubkey);
        if (r < 0)
                return r;

        /* The received info and the re-encoded rest, as i2d_X509_REQ() writes it. */
        unsigned char *out = NULL;
        int out_len = ASN1_item_i2d((const ASN1_VALUE *) req, &out, ASN1_ITEM_rptr(CkReq));
        r = csr_set_der(c, out, out_len, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 1;
}

/* The generic way, through OpenSSL's X509_REQ (which decodes the key with
 * OSSL_DECODER): every key type OpenSSL knows, and the readable reason for
 * every request that is refused. */
static int csr_parse_openssl(const void *data, size_t size, Csr **ret, char **ret_error) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(csr_freep) Csr *c = NULL;
        int r;

        if (looks_like_pem(data, size)) {
                _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int) size);
                if (!bio)
                        return -ENOMEM;
                req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
                if (!req)
                        return set_error(ret_error, -EBADMSG, "not a PEM certificate request: %s",
                                         openssl_last_error());
        } else {
                const unsigned char *p = data;
                req = d2i_X509_REQ(NULL, &p, (long) size);
                if (!req)
                        return set_error(ret_error, -EBADMSG,
                                         "neither a PEM nor a DER certificate request: %s",
                                         openssl_last_error());
                if (p != (const unsigned char *) data + size)
                        return set_error(ret_error, -EBADMSG,
                                         "%zu bytes of trailing data after the DER request",
                                         size - (size_t) (p - (const unsigned char *) data));
        }

        EVP_PKEY *pkey = X509_REQ_get0_pubkey(req);
        if (!pkey)
                return set_error(ret_error, -EBADMSG, "the request's public key cannot be decoded: %s",
                                 openssl_last_error());
        r = X509_REQ_verify(req, pkey);
        if (r <= 0)
                return set_error(ret_error, -EKEYREJECTED,
                                 "the request's signature does not verify with its public key: %s",
                                 openssl_last_error());

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        _cleanup_(x509_extensions_freep) STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        r = csr_fill_names(c, X509_REQ_get_subject_name(req), exts, ret_error);
        if (r < 0)
                return r;

        c->key_algorithm = pkey_describe(pkey, &c->rsa_bits);
        if (!c->key_algorithm)
                return -ENOMEM;

        const unsigned char *key = NULL;
        int key_len = 0;
        X509_ALGOR *alg = NULL;
        if (X509_PUBKEY_get0_param(NULL, &key, &key_len, &alg, X509_REQ_get_X509_PUBKEY(req)) != 1)
                return set_error(ret_error, -EBADMSG, "the request has no public key");
        r = x509_pubkey_new_encoded(alg, key, key_len, &c->pubkey);
        if (r < 0)
                return r;

        unsigned char *der = NULL;
        int der_len = i2d_X509_REQ(req, &der);
        r = csr_set_der(c, der, der_len, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

static X509_REQ *csr_request_assemble(const uint8_t *der, size_t len) {
        _cleanup_(ck_req_freep) CkReq *cr = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        const unsigned char *p = der;
        unsigned char *out = NULL;
        ASN1_BIT_STRING *sig = NULL;
        SpkiKey key;
        int n;

        cr = (CkReq *) ASN1_item_d2i(NULL, &p, (long) len, ASN1_ITEM_rptr(CkReq));
        if (!cr || p != der + len || ASN1_INTEGER_get(cr->info->version) != 0)
                return NULL;
        const CkReqInfo *info = cr->info;
        if (spki_key_load(info->spki->algor, info->spki->public_key, &key) <= 0)
                return NULL;
        pkey = spki_key_to_pkey(&key);
        req = X509_REQ_new();
        if (!pkey || !req)
                return NULL;
        if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
            X509_REQ_set_subject_name(req, info->subject) != 1 || X509_REQ_set_pubkey(req, pkey) != 1)
                return NULL;
        /* The key as it was encoded (parameters and all), the EVP_PKEY still attached. */
        if (x509_pubkey_set_encoded(X509_REQ_get_X509_PUBKEY(req), info->spki->algor,
                                    ASN1_STRING_get0_data(info->spki->public_key),
                                    ASN1_STRING_length(info->spki->public_key)) < 0)
                return NULL;
        for (int i = 0; i < sk_X509_ATTRIBUTE_num(info->attributes); i++)
                if (X509_REQ_add1_attr(req, sk_X509_ATTRIBUTE_value(info->attributes, i)) != 1)
                        return NULL;
        sig = ASN1_STRING_dup(cr->signature);
        if (!sig || X509_REQ_set1_signature_algo(req, cr->sig_alg) != 1) {
                ASN1_BIT_STRING_free(sig);
                return NULL;
        }
        X509_REQ_set0_signature(req, sig);

        /* Only a request that encodes back to the very same bytes: the signature
         * covers them, and providers send this request on. */
        n = i2d_X509_REQ(req, &out);
        bool same = n > 0 && (size_t) n == len && memcmp(out, der, len) == 0;
        OPENSSL_free(out);
        return same ? TAKE_PTR(req) : NULL;
}

X509_REQ *csr_request_from_der(const uint8_t *der, size_t len) {
        X509_REQ *req;

        if (!der || len == 0 || len > LONG_MAX)
                return NULL;
        if (len <= CSR_MAX_SIZE) {
                req = csr_request_assemble(der, len);
                ERR_clear_error();
                if (req)
                        return req;
        }
        const unsigned char *p = der;
        return d2i_X509_REQ(NULL, &p, (long) len);
}

static uint64_t stats_fast, stats_generic;

void csr_parse_stats(uint64_t *ret_fast, uint64_t *ret_generic) {
        if (ret_fast)
                *ret_fast = __atomic_load_n(&stats_fast, __ATOMIC_RELAXED);
        if (ret_generic)
                *ret_generic = __atomic_load_n(&stats_generic, __ATOMIC_RELAXED);
}

int csr_parse(const void *data, size_t size, Csr **ret, char **ret_error) {
        _cleanup_free_ uint8_t *pem_der = NULL;
        const uint8_t *der = data;
        size_t der_len = size;
        int r;

        if (!data && size > 0)
                return -EINVAL;
        if (size > CSR_MAX_SIZE)
                return set_error(ret_error, -EMSGSIZE, "CSR is %zu bytes, more than the limit of %u bytes",
                                 size, CSR_MAX_SIZE);
        if (size == 0)
                return set_error(ret_error, -EBADMSG, "CSR is empty");

        r = 1;
        if (looks_like_pem(data, size)) {
                r = pem_csr_decode(data, size, &pem_der, &der_len);
                der = pem_der;
        }
        if (r < 0)
                return r;
        if (r > 0) {
                r = csr_parse_fast(der, der_len, ret, ret_error);
                if (r != 0) {
                        __atomic_add_fetch(&stats_fast, 1, __ATOMIC_RELAXED);
                        return MIN(r, 0);
                }
        }
        __atomic_add_fetch(&stats_generic, 1, __ATOMIC_RELAXED);
        return csr_parse_openssl(data, size, ret, ret_error);
}

void cert_info_done(CertInfo *i) {
        if (!i)
                return;
        free(i->common_name);
        strv_free(i->sans);
        free(i->subject);
        free(i->issuer);
        free(i->algorithm);
        free(i->digest);
        free(i->fingerprint_sha256);
        free(i->serial);
        free(i->der);
        *i = (CertInfo){0};
}

static char *bio_to_string(BIO *bio) {
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);

        if (len < 0)
                return NULL;
        return strndup(data ? data : "", (size_t) len);
}

static char *name_to_rfc2253(const X509_NAME *name) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());

        if (!bio)
                return NULL;
        /* ESC_MSB (part of XN_FLAG_RFC2253) keeps the result ASCII: these strings
         * come from arbitrary certificates and go out over D-Bus. */
        if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
                return NULL;
        return bio_to_string(bio);
}

static uint64_t asn1_time_to_usec(const ASN1_TIME *t) {
        struct tm tm = {0};
        time_t s;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return 0;
        s = timegm(&tm);
        if (s <= 0)
                return 0;
        return (uint64_t) s * USEC_PER_SEC;
}

static int sans_from_x509(X509 *x, char ***ret) {
        _cleanup_(general_names_freep) GENERAL_NAMES *gens =
                X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
        char **l = calloc((size_t) MAX(n, 0) + 1, sizeof(char *));
        size_t k = 0;

        ERR_clear_error();
        if (!l)
                return -ENOMEM;

        for (int i = 0; i < n; i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                int type;
                const ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);
                const unsigned char *bytes = ASN1_STRING_get0_data(s);
                int len = ASN1_STRING_length(s);
                char buf[INET6_ADDRSTRLEN];

                if (type == GEN_DNS) {
                        l[k] = quote_untrusted((const char *) bytes, (size_t) MAX(len, 0));
                } else if (type == GEN_IPADD && (len == 4 || len == 16)) {
                        if (!inet_ntop(len == 4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf))
                                continue;
                        l[k] = strdup(buf);
                } else
                        continue;
                if (!l[k]) {
                        strv_free(l);
                        return -ENOMEM;
                }
                k++;
        }

        *ret = l;
        return 0;
}

static char *serial_to_hex(const ASN1_INTEGER *serial) {
        _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *hex, *p, *ret;
        bool neg;

        if (!bn)
                return NULL;
        if (BN_is_zero(bn))
                return strdup("0");
        hex = BN_bn2hex(bn);
        if (!hex)
                return NULL;
        p = hex;
        neg = *p == '-';
        if (neg)
                p++;
        while (*p == '0')
                p++;
        if (asprintf(&ret, "%s%s", neg ? "-" : "", p) < 0)
                ret = NULL;
        OPENSSL_free(hex);
        for (char *c = ret; c && *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return ret;
}

static char *digest_from_nid(int mdnid) {
        if (mdnid == NID_undef)
                return strdup("none"); /* Ed25519/Ed448: the algorithm has no separate digest */

        const char *sn = OBJ_nid2sn(mdnid);
        if (!sn)
                return strdup("unknown");
        char *s = strdup(sn);
        for (char *c = s; c && *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return s;
}

static char *digest_name(X509 *x) {
        int mdnid = NID_undef, pknid = NID_undef;

        /* Most signature algorithms name their digest (ecdsa-with-SHA256), and
         * EdDSA has none: X509_get_signature_info() says the same for them, but
         * caches all extensions and a SHA-1 of the certificate first. Only
         * algorithms like RSASSA-PSS carry the digest in their parameters. */
        if (OBJ_find_sigid_algs(X509_get_signature_nid(x), &mdnid, &pknid) == 1 &&
            (mdnid != NID_undef || pknid == NID_ED25519 || pknid == NID_ED448))
                return digest_from_nid(mdnid);

        if (X509_get_signature_info(x, &mdnid, &pknid, NULL, NULL) != 1 &&
            OBJ_find_sigid_algs(X509_get_signature_nid(x), &mdnid, &pknid) != 1) {
                ERR_clear_error();
                return strdup("unknown");
        }
        return digest_from_nid(mdnid);
}

/* ca_sign_leaf() copies a CSR's key without decoding it, so an X509 we made
 * ourselves may have no decoded key in memory: decode one from the encoding then. */
static EVP_PKEY *x509_decode_pubkey(X509 *x) {
        EVP_PKEY *pkey = X509_get0_pubkey(x);
        unsigned char *der = NULL;
        int len;

        if (pkey)
                return EVP_PKEY_dup(pkey);
        ERR_clear_error();
        len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        if (len <= 0)
                return NULL;
        const unsigned char *p = der;
        pkey = d2i_PUBKEY(NULL, &p, len);
        OPENSSL_free(der);
        ERR_clear_error();
        return pkey;
}

/* pkey_describe() of the certificate's key: read from the encoding for the
 * common key types (spki.c), decoded by OpenSSL for the others. */
static char *x509_describe_pubkey(X509 *x) {
        X509_ALGOR *alg = NULL;
        SpkiKey key;

        if (X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, X509_get_X509_PUBKEY(x)) == 1 &&
            spki_key_load(alg, X509_get0_pubkey_bitstr(x), &key) > 0)
                return spki_key_describe(&key, NULL);

        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = x509_decode_pubkey(x);
        return pkey_describe(pkey, NULL);
}

int cert_info_from_x509(X509 *x, CertInfo *ret) {
        CertInfo i = {0};
        unsigned char *der = NULL;
        int der_len, r;

        if (!x || !ret)
                return -EINVAL;

        der_len = i2d_X509(x, &der);
        if (der_len <= 0)
                return -EBADMSG;
        i.der = malloc((size_t) der_len);
        if (!i.der) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(i.der, der, (size_t) der_len);
        i.der_len = (size_t) der_len;
        OPENSSL_free(der);

        r = name_get_cn(X509_get_subject_name(x), &i.common_name);
        if (r == -ENOMEM)
                goto fail;
        if (!i.common_name) {
                /* A CN we cannot read is shown as empty, like a missing one. */
                i.common_name = strdup("");
                if (!i.common_name)
                        goto oom;
        } else {
                char *quoted = quote_untrusted(i.common_name, strlen(i.common_name));
                /* Keep UTF-8 CNs as they are; only control bytes matter here. */
                bool has_ctrl = false;
                for (const char *c = i.common_name; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                has_ctrl = true;
                if (has_ctrl) {
                        free(i.common_name);
                        i.common_name = quoted;
                } else
                        free(quoted);
                if (!i.common_name)
                        goto oom;
        }

        r = sans_from_x509(x, &i.sans);
        if (r < 0)
                goto fail;

        i.subject = name_to_rfc2253(X509_get_subject_name(x));
        i.issuer = name_to_rfc2253(X509_get_issuer_name(x));
        if (!i.subject || !i.issuer)
                goto oom;

        i.algorithm = x509_describe_pubkey(x);
        if (!i.algorithm)
                goto oom;

        i.digest = digest_name(x);
        if (!i.digest)
                goto oom;

        i.not_before = asn1_time_to_usec(X509_get0_notBefore(x));
        i.not_after = asn1_time_to_usec(X509_get0_notAfter(x));

        i.fingerprint_sha256 = malloc(65);
        if (!i.fingerprint_sha256)
                goto oom;
        sha256_hex(i.der, i.der_len, i.fingerprint_sha256);

        i.serial = serial_to_hex(X509_get0_serialNumber(x));
        if (!i.serial)
                goto oom;

        BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
        i.is_ca = bc && bc->ca;
        BASIC_CONSTRAINTS_free(bc);

        /* X509_self_signed() starts with the same name comparison; only a
         * self-issued certificate is worth the extension cache and the signature
         * check (a leaf we signed ourselves, with its undecoded key, is not). */
        i.self_signed = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) == 0 &&
                        X509_self_signed(x, 1) == 1;
        ERR_clear_error();

        *ret = i;
        return 0;

oom:
        r = -ENOMEM;
fail:
        ERR_clear_error();
        cert_info_done(&i);
        return r;
}

char *x509_to_pem(X509 *x) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());

        if (!bio || !x)
                return NULL;
        if (PEM_write_bio_X509(bio, x) != 1)
                return NULL;
        return bio_to_string(bio);
}

X509 *x509_from_der(const uint8_t *der, size_t len) {
        const unsigned char *p = der;
        X509 *x;

        if (!der || len == 0 || len > INT32_MAX)
                return NULL;
        x = d2i_X509(NULL, &p, (long) len);
        if (x && p != der + len) {
                X509_free(x);
                x = NULL;
        }
        if (!x)
                ERR_clear_error();
        return x;
}

X509 *x509_from_pem(const char *pem) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        if (!pem)
                return NULL;
        bio = BIO_new_mem_buf(pem, -1);
        if (!bio)
                return NULL;
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x)
                ERR_clear_error();
        return x;
}

STACK_OF(X509) * x509_stack_from_data(const void *data, size_t len) {
        _cleanup_x509_stack_ STACK_OF(X509) *sk = NULL;

        if (!data || len == 0 || len > INT32_MAX)
                return NULL;

        sk = sk_X509_new_null();
        if (!sk)
                return NULL;

        if (looks_like_pem(data, len)) {
                _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int) len);
                X509 *x;

                if (!bio)
                        return NULL;
                /* PEM_read_bio_X509() skips blocks of other types (keys, parameters). */
                while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
                        if (!sk_X509_push(sk, x)) {
                                X509_free(x);
                                return NULL;
                        }
                ERR_clear_error(); /* the expected "no start line" at the end */
        } else {
                X509 *x = x509_from_der(data, len);
                if (!x)
                        return NULL;
                if (!sk_X509_push(sk, x)) {
                        X509_free(x);
                        return NULL;
                }
        }

        if (sk_X509_num(sk) == 0)
                return NULL;
        return TAKE_PTR(sk);
}

void sha256_hex(const void *data, size_t len, char ret[static 65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;

        if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
                /* Cannot happen with a working default provider; never return garbage. */
                memset(ret, '0', 64);
                ret[64] = 0;
                return;
        }
        for (unsigned i = 0; i < mdlen; i++)
                sprintf(ret + 2 * i, "%02x", md[i]);
        ret[64] = 0;
}
