/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: CSR intake (csr_parse) and the normalisation of every DNS
 * name a parsed request carries, as RequestCertificate/SubmitCSR do. */

#include <glib.h>

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
        for (size_t i = 0; i < csr->n_dns_names; i++) {
                g_autofree char *norm = NULL, *err = NULL;
                (void) dns_name_normalize(csr->dns_names[i], &norm, &err);
        }
        return 0;
}
