/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1, private to x509.c, general-names.c, csr.c and cert-info.c: what they
 * share. Not for other files (their API is x509.h). */

#include "error.h"
#include "macro.h"
#include "openssl-util.h"

static inline void general_names_freep(GENERAL_NAMES **p) {
        if (*p)
                GENERAL_NAMES_free(*p);
}

/* Render untrusted input for an error message or a display: printable ASCII as is,
 * other bytes as \xNN, cut after a sane length; always valid UTF-8. */
char *quote_untrusted(const char *s, size_t len);

/* Free a NULL-terminated array of malloc'd strings. */
void strv_free(char **l);

/* The first CN of a name as UTF-8. Returns 0 and NULL when there is none, -EBADMSG
 * when it cannot be converted or contains a NUL. */
int name_get_cn(const X509_NAME *name, char **ret);

/* Whether data starts (after white space) with "-----BEGIN". */
bool looks_like_pem(const void *data, size_t size);

/* A memory BIO's contents as a malloc'd string. */
char *bio_to_string(BIO *bio);
