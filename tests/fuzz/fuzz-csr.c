/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: CSR intake (csr_parse) and the normalisation of every DNS
 * name a parsed request carries, as RequestCertificate/SubmitCSR do. Every
 * request csr_parse() accepts (through its own template and spki.c, or through
 * OpenSSL) is checked against OpenSSL's reading of the same bytes: it must be a
 * request OpenSSL decodes, whose signature verifies, with the same DER and key
 * name; csr_request_from_der() must give back the same request and key. */

#include <glib.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "macro.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(csr_freep) Csr *csr = NULL;
        g_autofree char *error = NULL;

        if (csr_parse(data, size, &csr, &error) < 0) {
                /* Every failure explains itself. */
                if (!error)
                        __builtin_trap();
                return 0;
        }

        /* The reference: OpenSSL alone, as csr_parse() read requests before. */
        X509_REQ *req = NULL;
        const char *q = (const char *) data;
        size_t k = 0;
        while (k < size && g_ascii_isspace(q[k]))
                k++;
        if (size - k >= 10 && memcmp(q + k, "-----BEGIN", 10) == 0) {
                BIO *bio = BIO_new_mem_buf(data, (int) size);
                req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
                BIO_free(bio);
        } else {
                const unsigned char *p = data;
                req = d2i_X509_REQ(NULL, &p, (long) size);
        }
        EVP_PKEY *pkey = req ? X509_REQ_get0_pubkey(req) : NULL;
        if (!pkey || X509_REQ_verify(req, pkey) != 1)
                __builtin_trap();
        unsigned char *der = NULL;
        int der_len = i2d_X509_REQ(req, &der);
        if (der_len <= 0 || (size_t) der_len != csr->der_len || memcmp(der, csr->der, csr->der_len) != 0)
                __builtin_trap();
        OPENSSL_free(der);
        g_autofree char *name = pkey_describe(pkey, NULL);
        if (!name || strcmp(name, csr->key_algorithm) != 0)
                __builtin_trap();

        X509_REQ *again = csr_request_from_der(csr->der, csr->der_len);
        der = NULL;
        der_len = again ? i2d_X509_REQ(again, &der) : -1;
        if (der_len <= 0 || (size_t) der_len != csr->der_len || memcmp(der, csr->der, csr->der_len) != 0 ||
            EVP_PKEY_eq(X509_REQ_get0_pubkey(again), pkey) != 1)
                __builtin_trap();
        OPENSSL_free(der);
        X509_REQ_free(again);
        X509_REQ_free(req);
        ERR_clear_error();

        for (size_t i = 0; i < csr->n_dns_names; i++) {
                g_autofree char *norm = NULL, *err = NULL;
                (void) dns_name_normalize(csr->dns_names[i], &norm, &err);
        }
        return 0;
}
