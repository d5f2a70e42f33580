/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The primitives the other x509 files share (x509-internal.h) and the plain
 * conversions: key descriptions, PEM/DER of certificates, SHA-256 in hex. DNS names
 * are in general-names.c, CSRs in csr.c, the inventory's view of a certificate in
 * cert-info.c. */

#include <ctype.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "x509-internal.h"
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
char *quote_untrusted(const char *s, size_t len) {
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
void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

/* The first CN of a name as UTF-8. Returns 0 and NULL when there is none, -EBADMSG
 * when it cannot be converted or contains a NUL. */
int name_get_cn(const X509_NAME *name, char **ret) {
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

bool looks_like_pem(const void *data, size_t size) {
        const char *p = data, *end = p + size;

        while (p < end && isspace((unsigned char) *p))
                p++;
        return (size_t) (end - p) >= STRLEN("-----BEGIN") &&
               memcmp(p, "-----BEGIN", STRLEN("-----BEGIN")) == 0;
}

char *bio_to_string(BIO *bio) {
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);

        if (len < 0)
                return NULL;
        return strndup(data ? data : "", (size_t) len);
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
