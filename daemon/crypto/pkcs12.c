/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>

#include <openssl/err.h>
#include <openssl/provider.h>

#include "keys.h"
#include "log.h"
#include "pkcs12.h"
#include "x509.h"

#define PASSWORD_LENGTH_MAX 1024U

/* The legacy export uses the PKCS#12 KDF with 3DES. Depending on how OpenSSL
 * was built those can live in the legacy provider, which we do not want in the
 * process-wide default context. So legacy exports run in their own library
 * context with "legacy" and "default" loaded, created once on first use and
 * kept (immutable after creation) for the life of the process. */
static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *legacy_libctx;

static void legacy_libctx_init(void) {
        OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

        if (!ctx)
                return;
        if (!OSSL_PROVIDER_load(ctx, "default")) {
                OSSL_LIB_CTX_free(ctx);
                return;
        }
        /* Without the legacy provider, the default one may still do 3DES: try anyway. */
        if (!OSSL_PROVIDER_load(ctx, "legacy"))
                log_debug("Cannot load the OpenSSL legacy provider: %s", openssl_last_error());
        ERR_clear_error();
        legacy_libctx = ctx;
}

static OSSL_LIB_CTX *get_legacy_libctx(void) {
        if (pthread_once(&legacy_once, legacy_libctx_init) != 0)
                return NULL;
        return legacy_libctx;
}

int pkcs12_export(EVP_PKEY *key, X509 *leaf, STACK_OF(X509) * chain, const char *friendly_name,
                  const char *password, bool legacy, uint8_t **ret, size_t *ret_len) {
        _cleanup_(PKCS12_freep) PKCS12 *p12 = NULL;
        OSSL_LIB_CTX *libctx = NULL;
        unsigned char *der = NULL;
        int nid, len;
        const EVP_MD *mac_md;

        if (!key || !leaf || !password || !ret || !ret_len)
                return -EINVAL;

        /* A leaf fresh from ca_sign_leaf() with a CSR carries its key undecoded, and
         * PKCS12_create_ex() checks that the key matches the certificate: decode it. */
        _cleanup_(X509_freep) X509 *decoded = NULL;
        if (!X509_get0_pubkey(leaf)) {
                unsigned char *leaf_der = NULL;
                int l = i2d_X509(leaf, &leaf_der);

                ERR_clear_error();
                if (l <= 0)
                        return -EINVAL;
                decoded = x509_from_der(leaf_der, (size_t) l);
                OPENSSL_free(leaf_der);
                if (!decoded)
                        return -EINVAL;
                leaf = decoded;
        }

        if (legacy) {
                libctx = get_legacy_libctx();
                if (!libctx)
                        return log_debug_errno(EOPNOTSUPP, "No OpenSSL library context for legacy PKCS#12.");
                nid = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
                mac_md = EVP_sha1();
        } else {
                /* A cipher NID makes OpenSSL use PBES2 with PBKDF2-HMAC-SHA256. */
                nid = NID_aes_256_cbc;
                mac_md = EVP_sha256();
        }

        /* mac_iter -1: no MAC from PKCS12_create_ex(), we add our own below with the
         * digest we want (it would pick SHA-1). */
        p12 = PKCS12_create_ex(password, friendly_name, key, leaf, chain, nid, nid, PKCS12_DEFAULT_ITER, -1,
                               0, libctx, NULL);
        if (!p12)
                return log_debug_errno(EIO, "Cannot create PKCS#12: %s", openssl_last_error());
        if (PKCS12_set_mac(p12, password, -1, NULL, 0, PKCS12_DEFAULT_ITER, mac_md) != 1)
                return log_debug_errno(EIO, "Cannot add the PKCS#12 MAC: %s", openssl_last_error());

        len = i2d_PKCS12(p12, &der);
        if (len <= 0)
                return -EIO;
        *ret = malloc((size_t) len);
        if (!*ret) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(*ret, der, (size_t) len);
        *ret_len = (size_t) len;
        OPENSSL_free(der);
        return 0;
}

int password_generate(size_t length, char **ret) {
        /* No 0/O, 1/l/I: the password is read off a screen and typed. */
        static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        char *p;
        int r;

        if (!ret || length < 20 || length > PASSWORD_LENGTH_MAX)
                return -EINVAL;

        p = malloc(length + 1);
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < length; i++) {
                uint32_t v;

                r = random_uniform(sizeof alphabet - 1, &v);
                if (r < 0) {
                        OPENSSL_cleanse(p, i);
                        free(p);
                        return r;
                }
                p[i] = alphabet[v];
        }
        p[length] = 0;
        *ret = p;
        return 0;
}
