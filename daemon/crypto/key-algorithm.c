/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The contract names of KeyAlgorithm (DESIGN.md), declared in x509.h. Kept in
 * a file of their own: config.c needs them and must not pull in the X.509
 * code. */

#include "x509.h"

static const char *const key_algorithm_table[_KEY_ALGORITHM_MAX] = {
        [KEY_ALGORITHM_RSA_2048] = "rsa-2048",
        [KEY_ALGORITHM_RSA_3072] = "rsa-3072",
        [KEY_ALGORITHM_RSA_4096] = "rsa-4096",
        [KEY_ALGORITHM_EC_256] = "ec-256",
        [KEY_ALGORITHM_EC_384] = "ec-384",
        [KEY_ALGORITHM_ED25519] = "ed25519",
};

const char *key_algorithm_to_string(KeyAlgorithm a) {
        if (a < 0 || a >= _KEY_ALGORITHM_MAX)
                return NULL;
        return key_algorithm_table[a];
}

KeyAlgorithm key_algorithm_from_string(const char *s) {
        if (!s)
                return KEY_ALGORITHM_INVALID;
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                if (streq(key_algorithm_table[a], s))
                        return a;
        return KEY_ALGORITHM_INVALID;
}
