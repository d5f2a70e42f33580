/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: getting certificates (and, where we hold it, the key) out. */

#include "keys.h"
#include "store.h"

/* The leaf as PEM, with the issuing chain up to the root when chain=true. */
int export_pem(Store *s, uint64_t certificate_id, bool chain, char **ret_pem);

/* PKCS#12 with leaf, chain and key under a fresh random password (returned,
 * to be wiped by the caller). -ENOKEY when we do not hold the key. */
int export_pfx(Store *s, const MasterKey *mk, uint64_t certificate_id, bool legacy, uint8_t **ret_pfx,
               size_t *ret_len, char **ret_password);
