/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: certificate intake (x509_stack_from_data, PEM or DER, as
 * discovery and the external CA helpers feed it) and cert_info_from_x509 on
 * every certificate found, plus the PEM round trip. */

#include <openssl/x509.h>

#include <glib.h>

#include "macro.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        STACK_OF(X509) *sk = x509_stack_from_data(data, size);
        if (!sk)
                return 0;
        for (int i = 0; i < sk_X509_num(sk); i++) {
                X509 *x = sk_X509_value(sk, i);
                CertInfo info = { 0 };
                if (cert_info_from_x509(x, &info) >= 0) {
                        /* The promises of x509.h: never NULL lists, hex serials. */
                        if (!info.sans || !info.serial || !info.fingerprint_sha256)
                                __builtin_trap();
                }
                cert_info_done(&info);
                g_autofree char *pem = x509_to_pem(x);
                (void) pem;
        }
        sk_X509_pop_free(sk, X509_free);
        return 0;
}
